/*
 * frontd streaming server: CRI Exec, Attach and PortForward.
 *
 * The Exec/Attach/PortForward RPCs only mint a token (stream_token_new):
 * random (libsodium, 256 bits), single use, valid STREAM_TOKEN_TTL_MS,
 * at most max_tokens pending, and bound to the validated request.  The
 * client then opens http://<address>/<verb>/<token> with an HTTP/1.1
 * upgrade to SPDY/3.1 or WebSocket; the server consumes the token, sets
 * up the protocol's streams, asks the owner for the session fd (execd:
 * STREAM_EXEC/STREAM_ATTACH, a SOCK_SEQPACKET speaking the frame protocol
 * of execd/execd.h; netd: STREAM_PORT_FORWARD, a TCP socket connected in
 * the pod's network namespace) and relays bytes.  frontd never runs,
 * opens or connects anything itself.
 *
 * Every resource is bounded: connections, tokens, the request head, frame
 * sizes, header blocks, port-forward pairs per connection, and the buffers
 * in both directions (a full buffer stops reading the other side: the
 * backpressure reaches the producer through TCP or the socket).
 */
#ifndef CRISP_FRONTD_STREAM_H
#define CRISP_FRONTD_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "ipc/loop.h"

struct stream_server;

enum stream_verb { STREAM_EXEC = 1, STREAM_ATTACH, STREAM_PORT_FORWARD };

#define STREAM_TOKEN_LEN 43 /* base64url of 32 random bytes, no padding */
#define STREAM_MAX_REQ (1u << 20)

struct stream_limits {
	uint32_t max_conns;         /* 128 */
	uint32_t max_tokens;        /* 1024 pending */
	uint32_t token_ttl_ms;      /* 60 s */
	uint32_t handshake_ms;      /* 10 s: request head, then the streams (30 s) */
	uint32_t stream_create_ms;  /* 30 s: the SPDY streams a session needs */
	uint32_t idle_ms;           /* 4 h without a byte either way (kubelet's default) */
	uint32_t out_max;           /* 1 MiB buffered towards one client */
	uint32_t backend_max;       /* 256 KiB buffered towards one backend fd */
};

/* What a session asks its owner for. */
struct stream_open {
	enum stream_verb verb;
	const uint8_t *req; /* the packed CRI request of the token */
	size_t reqlen;
	int32_t port;       /* port-forward */
};

/* Called exactly once per successful open: fd (owned by the callee from
 * then on) or -1 with e set. */
typedef void (*stream_open_done)(void *ctx, int fd, const crisp_err_t *e);

struct stream_backend {
	/* Start an open; 0, or -1 with err (done never runs then). */
	int (*open)(void *arg, const struct stream_open *o, stream_open_done done, void *ctx, crisp_err_t *err);
	void *arg;
};

/* listen_fd: a listening TCP socket (made non-blocking; the caller keeps
 * it); base_url "http://127.0.0.1:10010" (no trailing slash). */
struct stream_server *stream_server_new(struct loop *l, int listen_fd, const char *base_url,
					const struct stream_backend *be, const struct stream_limits *lim,
					crisp_err_t *err);
void stream_server_free(struct stream_server *s);

/* Serve TLS on every connection accepted from now on (the server does not
 * own tls; it must outlive the server).  The caller makes base_url
 * https://. */
struct stream_tls;
void stream_server_set_tls(struct stream_server *s, struct stream_tls *tls);

/* Mint a token for a validated request (packed CRI Exec/Attach/
 * PortForwardRequest, copied) and write the URL to url.  RESOURCE_EXHAUSTED
 * when max_tokens are pending. */
int stream_token_new(struct stream_server *s, enum stream_verb verb, const uint8_t *req, size_t len, char *url,
		     size_t urlsz, crisp_err_t *err);

struct stream_stats {
	uint32_t conns, tokens, sessions; /* now */
	uint64_t accepted, refused, bad_token, protocol_errors, closed_idle;
	uint64_t tls_failed; /* TLS handshakes that failed (plain HTTP, no or a bad client certificate) */
};
void stream_server_stats(const struct stream_server *s, struct stream_stats *st);

/* The backend that asks execd and netd over ipc (frontd's). */
struct role_ctx;
int stream_ipc_open(void *role_ctx, const struct stream_open *o, stream_open_done done, void *ctx, crisp_err_t *err);

#endif
