/*
 * frontd streaming server: TLS context and non-blocking connections.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "common/log.h"
#include "frontd/stream_tls.h"

struct stream_tls {
	SSL_CTX *ctx;
	bool verify_clients;
};

/* TLS 1.2 suites: forward secret AEAD only (TLS 1.3 suites are all such). */
#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

/* OpenSSL's last error as text (reasons name no key material). */
static void ssl_reason(char *buf, size_t sz)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, sz, "unknown error");
	else
		ERR_error_string_n(e, buf, sz);
	ERR_clear_error();
}

static int tls_fail(crisp_err_t *err, const char *what)
{
	char r[256];

	ssl_reason(r, sizeof r);
	return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "streaming TLS: %s: %s", what, r);
}

int stream_tls_init(crisp_err_t *err)
{
	if (OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, NULL) != 1)
		return tls_fail(err, "OpenSSL initialisation");
	return 0;
}

/* A regular file, at most STREAM_TLS_MAX_FILE bytes, read whole and NUL
 * terminated. */
static char *read_file(const char *path, size_t *len, bool secret, crisp_err_t *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	char *b;
	size_t off = 0;

	if (fd < 0) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, errno, "streaming TLS: %s", path);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (uint64_t)st.st_size > STREAM_TLS_MAX_FILE) {
		close(fd);
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
			    "streaming TLS: %s: not a regular, non-empty file of at most %u bytes", path,
			    STREAM_TLS_MAX_FILE);
		return NULL;
	}
	if (secret && (st.st_mode & 0077))
		log_warn("streaming TLS: the key file %s is readable by group or others (mode %04o)", path,
			 (unsigned)(st.st_mode & 07777));
	b = malloc((size_t)st.st_size + 1);
	if (b == NULL) {
		close(fd);
		crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
		return NULL;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, b + off, (size_t)st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : 0;

			close(fd);
			sodium_memzero(b, off);
			free(b);
			crisp_error(err, CRISP_INVALID_ARGUMENT, e, "streaming TLS: %s: short read", path);
			return NULL;
		}
		off += (size_t)n;
	}
	close(fd);
	b[off] = '\0';
	*len = off;
	return b;
}

/* Encrypted keys are refused: never prompt on a terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

static int load_chain(SSL_CTX *ctx, const char *pem, size_t len, crisp_err_t *err)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x;
	int rc = -1;

	if (b == NULL)
		return tls_fail(err, "out of memory");
	x = PEM_read_bio_X509_AUX(b, NULL, no_password, NULL);
	if (x == NULL) {
		tls_fail(err, "tls_cert: no PEM certificate");
		goto out;
	}
	if (SSL_CTX_use_certificate(ctx, x) != 1) {
		X509_free(x);
		tls_fail(err, "tls_cert: certificate refused");
		goto out;
	}
	X509_free(x);
	while ((x = PEM_read_bio_X509(b, NULL, no_password, NULL)) != NULL) {
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) { /* takes x on success */
			X509_free(x);
			tls_fail(err, "tls_cert: chain certificate refused");
			goto out;
		}
	}
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		tls_fail(err, "tls_cert: bad PEM after the first certificate");
		goto out;
	}
	ERR_clear_error();
	rc = 0;
out:
	BIO_free(b);
	return rc;
}

static int load_key(SSL_CTX *ctx, const char *pem, size_t len, crisp_err_t *err)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k;
	int rc = -1;

	if (b == NULL)
		return tls_fail(err, "out of memory");
	k = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
	if (k == NULL)
		tls_fail(err, "tls_key: no unencrypted PEM private key");
	else if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), k) != 1)
		tls_fail(err, "tls_key: the key does not match tls_cert");
	else if (SSL_CTX_use_PrivateKey(ctx, k) != 1 || SSL_CTX_check_private_key(ctx) != 1)
		tls_fail(err, "tls_key: key refused");
	else
		rc = 0;
	EVP_PKEY_free(k);
	BIO_free(b);
	return rc;
}

static int load_client_ca(SSL_CTX *ctx, const char *pem, size_t len, crisp_err_t *err)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
	X509 *x;
	int n = 0, rc = -1;

	if (b == NULL || names == NULL) {
		tls_fail(err, "out of memory");
		goto out;
	}
	while ((x = PEM_read_bio_X509(b, NULL, no_password, NULL)) != NULL) {
		X509_NAME *nm = X509_NAME_dup(X509_get_subject_name(x));

		if (X509_STORE_add_cert(store, x) != 1 || nm == NULL || sk_X509_NAME_push(names, nm) <= 0) {
			X509_NAME_free(nm);
			X509_free(x);
			tls_fail(err, "tls_client_ca: certificate refused");
			goto out;
		}
		X509_free(x);
		n++;
	}
	if (n == 0 || ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		tls_fail(err, n == 0 ? "tls_client_ca: no PEM certificate" : "tls_client_ca: bad PEM");
		goto out;
	}
	ERR_clear_error();
	SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
	names = NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 8);
	rc = 0;
out:
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	BIO_free(b);
	return rc;
}

struct stream_tls *stream_tls_new_mem(const char *certpem, size_t certlen, const char *keypem, size_t keylen,
				      const char *capem, size_t calen, crisp_err_t *err)
{
	struct stream_tls *t;
	SSL_CTX *ctx;

	if (certlen > STREAM_TLS_MAX_FILE || keylen > STREAM_TLS_MAX_FILE || calen > STREAM_TLS_MAX_FILE) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "streaming TLS: PEM too large");
		return NULL;
	}
	if (stream_tls_init(err) < 0)
		return NULL;
	ERR_clear_error();
	t = calloc(1, sizeof *t);
	ctx = SSL_CTX_new(TLS_server_method());
	if (t == NULL || ctx == NULL) {
		free(t);
		SSL_CTX_free(ctx);
		tls_fail(err, "context");
		return NULL;
	}
	t->ctx = ctx;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		tls_fail(err, "protocol settings");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* The output buffer may grow (move) between a blocked write and its
	 * retry, and every record written counts. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	if (load_chain(ctx, certpem, certlen, err) < 0 || load_key(ctx, keypem, keylen, err) < 0)
		goto fail;
	if (capem != NULL && calen > 0) {
		if (load_client_ca(ctx, capem, calen, err) < 0)
			goto fail;
		t->verify_clients = true;
	}
	return t;
fail:
	stream_tls_free(t);
	return NULL;
}

struct stream_tls *stream_tls_new(const char *cert, const char *key, const char *client_ca, crisp_err_t *err)
{
	char *c = NULL, *k = NULL, *ca = NULL;
	size_t cl = 0, kl = 0, cal = 0;
	struct stream_tls *t = NULL;

	if (cert == NULL || *cert == '\0' || key == NULL || *key == '\0') {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "streaming TLS needs both tls_cert and tls_key");
		return NULL;
	}
	if ((c = read_file(cert, &cl, false, err)) == NULL || (k = read_file(key, &kl, true, err)) == NULL ||
	    (client_ca != NULL && *client_ca != '\0' && (ca = read_file(client_ca, &cal, false, err)) == NULL))
		goto out;
	t = stream_tls_new_mem(c, cl, k, kl, ca, cal, err);
out:
	if (k != NULL) {
		sodium_memzero(k, kl);
		free(k);
	}
	free(c);
	free(ca);
	return t;
}

void stream_tls_free(struct stream_tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx); /* frees the key, cleansed by OpenSSL */
	free(t);
}

bool stream_tls_verifies_clients(const struct stream_tls *t)
{
	return t != NULL && t->verify_clients;
}

SSL *stream_tls_conn_new(struct stream_tls *t, int fd)
{
	SSL *ssl = SSL_new(t->ctx);

	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

/* Map a failed call: 0 would block (*want set), -1 end or error. */
static int io_error(SSL *ssl, int rc, uint32_t *want, int *eof)
{
	int e = SSL_get_error(ssl, rc);

	*eof = 0;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		*want = EPOLLIN;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		*want = EPOLLOUT;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		*eof = 1;
		return -1;
	case SSL_ERROR_SYSCALL:
		/* errno from the socket; none: the peer closed without close_notify. */
		*eof = ERR_peek_error() == 0 && (errno == 0 || errno == EPIPE || errno == ECONNRESET);
		return -1;
	default:
		return -1;
	}
}

int stream_tls_handshake(SSL *ssl, uint32_t *want, char *why, size_t whysz)
{
	int rc, eof;

	ERR_clear_error();
	errno = 0;
	rc = SSL_do_handshake(ssl);
	if (rc == 1)
		return 1;
	if (io_error(ssl, rc, want, &eof) == 0)
		return 0;
	if (ERR_peek_last_error() != 0) {
		ssl_reason(why, whysz);
	} else if (eof) {
		snprintf(why, whysz, "the client closed the connection");
	} else {
		long v = SSL_get_verify_result(ssl);

		snprintf(why, whysz, "%s", v != X509_V_OK ? X509_verify_cert_error_string(v) : strerror(errno));
	}
	ERR_clear_error();
	return -1;
}

ssize_t stream_tls_read(SSL *ssl, void *buf, size_t n, uint32_t *want)
{
	size_t got = 0;
	int rc, eof;

	ERR_clear_error();
	errno = 0;
	rc = SSL_read_ex(ssl, buf, n, &got);
	if (rc == 1)
		return (ssize_t)got;
	if (io_error(ssl, rc, want, &eof) == 0) {
		errno = EAGAIN;
		return -1;
	}
	ERR_clear_error();
	if (eof)
		return 0;
	errno = ECONNRESET;
	return -1;
}

ssize_t stream_tls_write(SSL *ssl, const void *buf, size_t n, uint32_t *want)
{
	size_t put = 0;
	int rc, eof;

	ERR_clear_error();
	errno = 0;
	rc = SSL_write_ex(ssl, buf, n, &put);
	if (rc == 1)
		return (ssize_t)put;
	if (io_error(ssl, rc, want, &eof) == 0) {
		errno = EAGAIN;
		return -1;
	}
	ERR_clear_error();
	errno = ECONNRESET;
	return -1;
}

size_t stream_tls_pending(const SSL *ssl)
{
	int n = SSL_pending(ssl);

	return n > 0 ? (size_t)n : 0;
}

void stream_tls_shutdown(SSL *ssl)
{
	ERR_clear_error();
	if (SSL_is_init_finished(ssl))
		(void)SSL_shutdown(ssl);
	ERR_clear_error();
}
