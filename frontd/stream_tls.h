/*
 * frontd streaming server: TLS (OpenSSL libssl).
 *
 * The context is built once, before the sandbox: the certificate chain,
 * the private key and the optional client CA bundle are read from files
 * named by [streaming] tls_cert, tls_key and tls_client_ca while frontd
 * can still open files; the key file's bytes are zeroed as soon as the
 * key is parsed.  TLS 1.2 is the minimum, with ECDHE AEAD suites only on
 * 1.2; renegotiation, compression, session tickets and the session cache
 * are off.  With a client CA, a client must present a certificate that
 * chains to it, or the handshake fails.
 *
 * Connections are non-blocking and driven by the event loop: every call
 * that would block reports which readiness it waits for (EPOLLIN or
 * EPOLLOUT) instead.
 */
#ifndef CRISP_FRONTD_STREAM_TLS_H
#define CRISP_FRONTD_STREAM_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "common/err.h"

struct stream_tls;

#define STREAM_TLS_MAX_FILE (1u << 20) /* a PEM file larger than this is refused */

/* Initialise libssl without reading openssl.cnf (the sandbox forbids
 * every open afterwards).  Idempotent. */
int stream_tls_init(crisp_err_t *err);

/* Build the server context from PEM files: cert (the chain, leaf first)
 * and key are required, client_ca may be NULL or "".  INVALID_ARGUMENT
 * with the file and OpenSSL's reason on any failure. */
struct stream_tls *stream_tls_new(const char *cert, const char *key, const char *client_ca, crisp_err_t *err);
/* The same from PEM text in memory (tests, fuzzing).  keypem is zeroed
 * by neither: the caller owns it. */
struct stream_tls *stream_tls_new_mem(const char *certpem, size_t certlen, const char *keypem, size_t keylen,
				      const char *capem, size_t calen, crisp_err_t *err);
void stream_tls_free(struct stream_tls *t);
bool stream_tls_verifies_clients(const struct stream_tls *t);

/* A server-side connection on a connected non-blocking socket (the
 * caller keeps the fd).  NULL on allocation failure. */
SSL *stream_tls_conn_new(struct stream_tls *t, int fd);

/* One step of the handshake: 1 done, 0 again once *want (EPOLLIN or
 * EPOLLOUT) is ready, -1 failed (why set, never secret). */
int stream_tls_handshake(SSL *ssl, uint32_t *want, char *why, size_t whysz);

/* As recv/send: >0 bytes, 0 end of stream (read only), -1 with errno:
 * EAGAIN (and *want set) when the call must be repeated once *want is
 * ready, ECONNRESET on any TLS or socket error. */
ssize_t stream_tls_read(SSL *ssl, void *buf, size_t n, uint32_t *want);
ssize_t stream_tls_write(SSL *ssl, const void *buf, size_t n, uint32_t *want);

/* Decrypted bytes held inside OpenSSL: epoll does not see them. */
size_t stream_tls_pending(const SSL *ssl);

/* Best effort close_notify (non-blocking, never waits for the peer's). */
void stream_tls_shutdown(SSL *ssl);

#endif
