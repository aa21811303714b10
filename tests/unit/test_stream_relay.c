/*
 * crisp: unit tests of frontd's streaming server (frontd/stream.c) in one
 * process: a real TCP listener, a SPDY client built from the same framing
 * code, and a fake backend that hands out one end of a socketpair and
 * speaks execd's frame protocol on the other.  Sessions, tokens (single
 * use, expiry, bound), the idle timeout, a client that goes away, and
 * malformed input.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "common/util.h"
#include "execd/execd.h"
#include "frontd/stream.h"
#include "frontd/stream_spdy.h"
#include "frontd/stream_tls.h"
#include "proto/cri.pb-c.h"

struct fake {
	struct loop *loop;
	int peer;         /* our end of the last session */
	int opens;
	bool fail;
	struct loop_timer *t;
	stream_open_done done;
	void *ctx;
	int give;
};

static void fake_fire(struct loop *l, void *arg)
{
	struct fake *fk = arg;

	(void)l;
	fk->t = NULL;
	if (fk->fail) {
		crisp_err_t e = CRISP_ERR_INIT;

		crisp_error(&e, CRISP_NOT_FOUND, 0, "no such container");
		fk->done(fk->ctx, -1, &e);
	} else {
		fk->done(fk->ctx, fk->give, NULL);
	}
}

static int fake_open(void *arg, const struct stream_open *o, stream_open_done done, void *ctx, crisp_err_t *err)
{
	struct fake *fk = arg;
	int sp[2];

	(void)err;
	assert_int_equal(socketpair(AF_UNIX, (o->verb == STREAM_PORT_FORWARD ? SOCK_STREAM : SOCK_SEQPACKET) | SOCK_CLOEXEC,
				    0, sp), 0);
	fk->peer = sp[1];
	fk->give = sp[0];
	fk->done = done;
	fk->ctx = ctx;
	fk->opens++;
	if (fk->fail) {
		close(sp[0]);
		close(sp[1]);
		fk->peer = fk->give = -1;
	}
	fk->t = loop_timer_add(fk->loop, 1, fake_fire, fk); /* answers later, as ipc does */
	return 0;
}

struct env {
	struct loop *l;
	struct stream_server *s;
	struct fake fk;
	int lfd, port;
	char base[64];
};

static void env_init(struct env *e, const struct stream_limits *lim)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	struct stream_backend be;
	crisp_err_t err = CRISP_ERR_INIT;

	memset(e, 0, sizeof *e);
	e->l = loop_new();
	e->fk.loop = e->l;
	e->fk.peer = -1;
	e->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(e->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(e->lfd, 16), 0);
	assert_int_equal(getsockname(e->lfd, (struct sockaddr *)&sa, &sl), 0);
	e->port = ntohs(sa.sin_port);
	snprintf(e->base, sizeof e->base, "http://127.0.0.1:%d", e->port);
	be.open = fake_open;
	be.arg = &e->fk;
	e->s = stream_server_new(e->l, e->lfd, e->base, &be, lim, &err);
	assert_non_null(e->s);
}

static void env_free(struct env *e)
{
	stream_server_free(e->s);
	if (e->fk.t)
		loop_timer_cancel(e->l, e->fk.t);
	if (e->fk.peer >= 0)
		close(e->fk.peer);
	close(e->lfd);
	loop_free(e->l);
}

static void pump(struct env *e, int ms)
{
	uint64_t end = crisp_now_ms() + (uint64_t)ms;

	while (crisp_now_ms() < end)
		loop_run_once(e->l, 5);
}

static int client(struct env *e)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)e->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 || errno == EINPROGRESS);
	pump(e, 20);
	return fd;
}

static void csend(struct env *e, int fd, const void *p, size_t n)
{
	assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
	pump(e, 30);
}

/* Read what is there after pumping; -1 at EOF with nothing read. */
static ssize_t crecv(struct env *e, int fd, uint8_t *buf, size_t cap, int ms)
{
	size_t got = 0;
	uint64_t end = crisp_now_ms() + (uint64_t)ms;

	while (crisp_now_ms() < end && got < cap) {
		ssize_t n;

		loop_run_once(e->l, 5);
		n = recv(fd, buf + got, cap - got, MSG_DONTWAIT);
		if (n == 0)
			return got ? (ssize_t)got : -1;
		if (n > 0)
			got += (size_t)n;
	}
	return (ssize_t)got;
}

static void token(struct env *e, enum stream_verb verb, bool in, bool tty, char *url)
{
	Runtime__V1__ExecRequest rq = RUNTIME__V1__EXEC_REQUEST__INIT;
	char *cmd[] = { "sh" };
	uint8_t buf[256];
	size_t n;
	crisp_err_t err = CRISP_ERR_INIT;

	rq.container_id = "abc";
	rq.cmd = cmd;
	rq.n_cmd = 1;
	rq.stdin = in;
	rq.stdout = true;
	rq.stderr = !tty;
	rq.tty = tty;
	n = protobuf_c_message_pack(&rq.base, buf);
	assert_int_equal(stream_token_new(e->s, verb, buf, n, url, 256, &err), 0);
}

static const char *path_of(const char *url)
{
	return strchr(url + 7, '/');
}

static void upgrade(struct env *e, int fd, const char *url, int want_status)
{
	char req[512];
	uint8_t resp[1024];
	ssize_t n;

	snprintf(req, sizeof req,
		 "POST %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
		 "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n",
		 path_of(url));
	csend(e, fd, req, strlen(req));
	n = crecv(e, fd, resp, sizeof resp - 1, 100);
	assert_true(n > 12);
	resp[n] = 0;
	assert_int_equal(atoi((char *)resp + 9), want_status);
	if (want_status == 101)
		assert_non_null(strstr((char *)resp, "X-Stream-Protocol-Version: v4.channel.k8s.io"));
}

static void syn(struct env *e, int fd, struct spdy_zout *zo, uint32_t sid, const char *type)
{
	struct spdy_header h;
	uint8_t f[256];
	ssize_t n;

	memset(&h, 0, sizeof h);
	strcpy(h.name, "streamtype");
	strcpy(h.value, type);
	n = spdy_build_syn_stream(zo, sid, 0, &h, 1, f, sizeof f);
	assert_true(n > 0);
	csend(e, fd, f, (size_t)n);
}

/* Collect frames: data per stream id (1..9), FIN flags, replies. */
struct seen {
	uint8_t data[10][256];
	size_t len[10];
	bool fin[10], reply[10], goaway;
};

static void parse_all(const uint8_t *b, size_t n, struct seen *s)
{
	size_t off = 0;
	struct spdy_frame f;
	ssize_t k;

	while ((k = spdy_parse_frame(b + off, n - off, &f)) > 0) {
		off += (size_t)k;
		if (f.control && f.type == SPDY_SYN_REPLY && f.stream_id < 10)
			s->reply[f.stream_id] = true;
		if (f.control && f.type == SPDY_GOAWAY)
			s->goaway = true;
		if (!f.control && f.stream_id < 10) {
			memcpy(s->data[f.stream_id] + s->len[f.stream_id], f.data, f.len);
			s->len[f.stream_id] += f.len;
			if (f.flags & SPDY_FLAG_FIN)
				s->fin[f.stream_id] = true;
		}
	}
}

static void test_exec_session(void **state)
{
	struct env e;
	char url[256];
	struct spdy_zout zo;
	uint8_t buf[8192], pkt[64];
	struct seen s;
	ssize_t n;
	int fd;
	static const char status[] = "{\"status\":\"Success\"}";

	(void)state;
	env_init(&e, NULL);
	token(&e, STREAM_EXEC, true, false, url);
	assert_int_equal(strlen(strrchr(url, '/') + 1), STREAM_TOKEN_LEN);
	fd = client(&e);
	upgrade(&e, fd, url, 101);
	spdy_zout_init(&zo);
	syn(&e, fd, &zo, 1, "error");
	syn(&e, fd, &zo, 3, "stdin");
	syn(&e, fd, &zo, 5, "stdout");
	assert_int_equal(e.fk.opens, 0); /* not before every stream is there */
	syn(&e, fd, &zo, 7, "stderr");
	pump(&e, 30);
	assert_int_equal(e.fk.opens, 1);
	assert_true(e.fk.peer >= 0);

	/* stdin with FIN: a frame, then the empty frame that closes stdin */
	spdy_build_data_hdr(buf, 3, SPDY_FLAG_FIN, 5);
	memcpy(buf + 8, "hello", 5);
	csend(&e, fd, buf, 13);
	n = recv(e.fk.peer, pkt, sizeof pkt, MSG_DONTWAIT);
	assert_int_equal(n, 6);
	assert_int_equal(pkt[0], CTR_CH_STDIN);
	assert_memory_equal(pkt + 1, "hello", 5);
	assert_int_equal(recv(e.fk.peer, pkt, sizeof pkt, MSG_DONTWAIT), 1);
	assert_int_equal(pkt[0], CTR_CH_STDIN);

	/* output, status, EOF */
	assert_int_equal(send(e.fk.peer, "\1out", 4, 0), 4);
	assert_int_equal(send(e.fk.peer, "\2err", 4, 0), 4);
	pkt[0] = CTR_CH_STATUS;
	memcpy(pkt + 1, status, sizeof status - 1);
	assert_int_equal(send(e.fk.peer, pkt, sizeof status, 0), (ssize_t)sizeof status);
	close(e.fk.peer);
	e.fk.peer = -1;
	memset(&s, 0, sizeof s);
	n = crecv(&e, fd, buf, sizeof buf, 200);
	assert_true(n > 0);
	parse_all(buf, (size_t)n, &s);
	assert_true(s.reply[1] && s.reply[3] && s.reply[5] && s.reply[7]);
	assert_int_equal(s.len[5], 3);
	assert_memory_equal(s.data[5], "out", 3);
	assert_int_equal(s.len[7], 3);
	assert_memory_equal(s.data[7], "err", 3);
	assert_int_equal(s.len[1], sizeof status - 1);
	assert_true(s.fin[1] && s.fin[5] && s.fin[7]);
	close(fd);
	pump(&e, 30);
	{
		struct stream_stats st;

		stream_server_stats(e.s, &st);
		assert_int_equal(st.conns, 0);
		assert_int_equal(st.sessions, 0);
	}
	spdy_zout_free(&zo);
	env_free(&e);
}

static void test_resize_lines_reach_backend(void **state)
{
	struct env e;
	char url[256];
	struct spdy_zout zo;
	uint8_t buf[256], pkt[300];
	const char *rz = "{\"Width\":80,\"Height\":24}\n{\"Width\":100,";
	int fd;

	(void)state;
	env_init(&e, NULL);
	token(&e, STREAM_EXEC, true, true, url);
	fd = client(&e);
	upgrade(&e, fd, url, 101);
	spdy_zout_init(&zo);
	syn(&e, fd, &zo, 1, "error");
	syn(&e, fd, &zo, 3, "stdin");
	syn(&e, fd, &zo, 5, "stdout");
	syn(&e, fd, &zo, 7, "resize");
	pump(&e, 30);
	assert_int_equal(e.fk.opens, 1);
	spdy_build_data_hdr(buf, 7, 0, (uint32_t)strlen(rz));
	memcpy(buf + 8, rz, strlen(rz));
	csend(&e, fd, buf, 8 + strlen(rz));
	assert_int_equal(recv(e.fk.peer, pkt, sizeof pkt, MSG_DONTWAIT), 25);
	assert_int_equal(pkt[0], CTR_CH_RESIZE);
	assert_memory_equal(pkt + 1, "{\"Width\":80,\"Height\":24}", 24);
	/* the second object is not complete yet */
	assert_int_equal(recv(e.fk.peer, pkt, sizeof pkt, MSG_DONTWAIT), -1);
	spdy_build_data_hdr(buf, 7, 0, 13);
	memcpy(buf + 8, "\"Height\":40}\n", 13);
	csend(&e, fd, buf, 21);
	assert_int_equal(recv(e.fk.peer, pkt, sizeof pkt, MSG_DONTWAIT), 26);
	close(fd);
	spdy_zout_free(&zo);
	env_free(&e);
}

static void test_tokens(void **state)
{
	struct stream_limits lim = { .max_tokens = 2, .token_ttl_ms = 50 };
	struct env e;
	char url[256], url2[256], url3[256];
	crisp_err_t err = CRISP_ERR_INIT;
	int fd;

	(void)state;
	env_init(&e, &lim);
	token(&e, STREAM_EXEC, false, false, url);
	token(&e, STREAM_EXEC, false, false, url2);
	assert_int_equal(stream_token_new(e.s, STREAM_EXEC, (const uint8_t *)"", 0, url3, sizeof url3, &err), -1);
	assert_int_equal(err.code, CRISP_RESOURCE_EXHAUSTED);
	assert_string_not_equal(url, url2);
	/* used once */
	fd = client(&e);
	upgrade(&e, fd, url, 101);
	close(fd);
	fd = client(&e);
	upgrade(&e, fd, url, 404);
	close(fd);
	/* expired (the check at use does not wait for the sweep) */
	pump(&e, 80);
	fd = client(&e);
	upgrade(&e, fd, url2, 404);
	close(fd);
	/* the sweep frees expired tokens: room again */
	token(&e, STREAM_EXEC, false, false, url);
	pump(&e, 1100);
	{
		struct stream_stats st;

		stream_server_stats(e.s, &st);
		assert_int_equal(st.tokens, 0);
		assert_int_equal(st.bad_token, 2);
	}
	env_free(&e);
}

static void session(struct env *e, int *fd, struct spdy_zout *zo)
{
	char url[256];

	token(e, STREAM_EXEC, false, false, url);
	*fd = client(e);
	upgrade(e, *fd, url, 101);
	spdy_zout_init(zo);
	syn(e, *fd, zo, 1, "error");
	syn(e, *fd, zo, 3, "stdout");
	syn(e, *fd, zo, 5, "stderr");
	pump(e, 30);
	assert_true(e->fk.peer >= 0);
}

static void test_client_gone_closes_backend(void **state)
{
	struct env e;
	struct spdy_zout zo;
	uint8_t b[8];
	int fd;

	(void)state;
	env_init(&e, NULL);
	session(&e, &fd, &zo);
	close(fd);
	pump(&e, 50);
	assert_int_equal(recv(e.fk.peer, b, sizeof b, MSG_DONTWAIT), 0); /* EOF: execd ends the process */
	spdy_zout_free(&zo);
	env_free(&e);
}

static void test_idle_timeout(void **state)
{
	struct stream_limits lim = { .idle_ms = 100 };
	struct env e;
	struct spdy_zout zo;
	uint8_t b[64];
	int fd;
	struct stream_stats st;

	(void)state;
	env_init(&e, &lim);
	session(&e, &fd, &zo);
	pump(&e, 1300);
	assert_int_equal(recv(e.fk.peer, b, sizeof b, MSG_DONTWAIT), 0);
	stream_server_stats(e.s, &st);
	assert_int_equal(st.closed_idle, 1);
	assert_int_equal(st.conns, 0);
	close(fd);
	spdy_zout_free(&zo);
	env_free(&e);
}

static void test_backend_error_on_error_stream(void **state)
{
	struct env e;
	struct spdy_zout zo;
	char url[256];
	uint8_t buf[2048];
	struct seen s;
	ssize_t n;
	int fd;

	(void)state;
	env_init(&e, NULL);
	e.fk.fail = true;
	token(&e, STREAM_EXEC, false, false, url);
	fd = client(&e);
	upgrade(&e, fd, url, 101);
	spdy_zout_init(&zo);
	syn(&e, fd, &zo, 1, "error");
	syn(&e, fd, &zo, 3, "stdout");
	syn(&e, fd, &zo, 5, "stderr");
	memset(&s, 0, sizeof s);
	n = crecv(&e, fd, buf, sizeof buf, 100);
	parse_all(buf, (size_t)n, &s);
	assert_true(s.fin[1] && s.fin[3] && s.fin[5]);
	s.data[1][s.len[1]] = 0;
	assert_non_null(strstr((char *)s.data[1], "\"status\":\"Failure\""));
	assert_non_null(strstr((char *)s.data[1], "no such container"));
	close(fd);
	spdy_zout_free(&zo);
	env_free(&e);
}

static void test_malformed_costs_the_connection(void **state)
{
	struct env e;
	char url[256];
	uint8_t buf[256];
	struct seen s;
	ssize_t n;
	int fd;
	static const uint8_t bad[] = { 0x80, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00 };

	(void)state;
	env_init(&e, NULL);
	token(&e, STREAM_EXEC, false, false, url);
	fd = client(&e);
	upgrade(&e, fd, url, 101);
	csend(&e, fd, bad, sizeof bad);
	memset(&s, 0, sizeof s);
	n = crecv(&e, fd, buf, sizeof buf, 100);
	parse_all(buf, (size_t)n, &s);
	assert_true(s.goaway);
	assert_int_equal(e.fk.opens, 0);
	close(fd);
	/* Not HTTP at all: 400, and the server goes on. */
	fd = client(&e);
	csend(&e, fd, "\x16\x03\x01\r\n\r\n", 7);
	n = crecv(&e, fd, buf, sizeof buf - 1, 100);
	assert_true(n > 12);
	assert_memory_equal(buf, "HTTP/1.1 400", 12);
	close(fd);
	token(&e, STREAM_EXEC, false, false, url);
	fd = client(&e);
	upgrade(&e, fd, url, 101);
	close(fd);
	env_free(&e);
}

/* The client does not read: frontd stops reading the backend once its
 * buffer towards the client is full, so the backend's writes block; when
 * the client reads, every byte arrives, in order. */
static void test_backpressure(void **state)
{
	struct stream_limits lim = { .out_max = 64 * 1024 };
	struct env e;
	struct spdy_zout zo;
	uint8_t pkt[1 + 4096];
	size_t sent = 0, got = 0, off = 0;
	uint8_t *rx = malloc(16 << 20);
	int fd, stalls = 0;

	(void)state;
	env_init(&e, &lim);
	session(&e, &fd, &zo);
	assert_int_equal(fcntl(e.fk.peer, F_SETFL, O_NONBLOCK), 0);
	pkt[0] = CTR_CH_STDOUT;
	while (stalls < 20 && sent < (8u << 20)) {
		for (size_t i = 1; i < sizeof pkt; i++)
			pkt[i] = (uint8_t)((sent + i - 1) % 251);
		if (send(e.fk.peer, pkt, sizeof pkt, MSG_DONTWAIT) == (ssize_t)sizeof pkt) {
			sent += sizeof pkt - 1;
			stalls = 0;
		} else {
			stalls++;
			pump(&e, 5);
		}
	}
	/* Bounded: frontd's 64 KiB (+ one frame) and the kernel's socket buffers. */
	print_message("bytes the backend could write while the client read nothing: %zu\n", sent);
	assert_true(sent < (6u << 20));
	close(e.fk.peer);
	e.fk.peer = -1;
	for (;;) {
		ssize_t n = crecv(&e, fd, rx + got, (16u << 20) - got, 50);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	/* Walk the frames: stream 3 (stdout) carries 0,1,2.. mod 251. */
	size_t pos = 0;
	bool fin = false;

	while (off < got) {
		struct spdy_frame f;
		ssize_t k = spdy_parse_frame(rx + off, got - off, &f);

		assert_true(k > 0);
		off += (size_t)k;
		if (!f.control && f.stream_id == 3)
			for (size_t i = 0; i < f.len; i++, pos++)
				assert_int_equal(f.data[i], pos % 251);
		if (!f.control && f.stream_id == 3 && (f.flags & SPDY_FLAG_FIN)) {
			assert_int_equal(pos, sent);
			fin = true;
		}
	}
	assert_true(fin);
	free(rx);
	close(fd);
	spdy_zout_free(&zo);
	env_free(&e);
}

/* ---- TLS ---- */

/* A P-256 key and a certificate for it, signed by signer (NULL: itself),
 * as PEM text. */
struct pem {
	char cert[4096], key[1024];
	EVP_PKEY *k;
	X509 *x;
};

static void pem_make(struct pem *p, const char *cn, const struct pem *signer)
{
	BIO *b;
	long n;
	char *d;

	memset(p, 0, sizeof *p);
	p->k = EVP_EC_gen("P-256");
	assert_non_null(p->k);
	p->x = X509_new();
	assert_non_null(p->x);
	X509_set_version(p->x, 0); /* v1: a self-signed v1 certificate is a CA */
	ASN1_INTEGER_set(X509_get_serialNumber(p->x), (long)randombytes_random() & 0x7fffffff);
	X509_gmtime_adj(X509_getm_notBefore(p->x), -60);
	X509_gmtime_adj(X509_getm_notAfter(p->x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(p->x), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
				   -1, 0);
	X509_set_issuer_name(p->x, X509_get_subject_name(signer ? signer->x : p->x));
	X509_set_pubkey(p->x, p->k);
	assert_true(X509_sign(p->x, signer ? signer->k : p->k, EVP_sha256()) > 0);
	b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_X509(b, p->x), 1);
	n = BIO_get_mem_data(b, &d);
	assert_true(n > 0 && (size_t)n < sizeof p->cert);
	memcpy(p->cert, d, (size_t)n);
	BIO_free(b);
	b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey(b, p->k, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &d);
	assert_true(n > 0 && (size_t)n < sizeof p->key);
	memcpy(p->key, d, (size_t)n);
	BIO_free(b);
}

static void pem_free(struct pem *p)
{
	EVP_PKEY_free(p->k);
	X509_free(p->x);
}

/* A non-blocking client handshake pumped with the server's loop: 1 done,
 * -1 failed or the server closed (TLS 1.3 reports a refused client
 * certificate on the first read: one is attempted). */
static int tls_client(struct env *e, SSL *ssl, int fd)
{
	uint64_t end = crisp_now_ms() + 3000;
	uint8_t b[64];

	SSL_set_fd(ssl, fd);
	while (crisp_now_ms() < end) {
		int rc = SSL_connect(ssl);

		if (rc == 1)
			break;
		rc = SSL_get_error(ssl, rc);
		if (rc != SSL_ERROR_WANT_READ && rc != SSL_ERROR_WANT_WRITE)
			return -1;
		loop_run_once(e->l, 5);
	}
	if (!SSL_is_init_finished(ssl))
		return -1;
	pump(e, 30);
	if (SSL_read(ssl, b, sizeof b) <= 0 && SSL_get_error(ssl, 0) != SSL_ERROR_WANT_READ) {
		int err = SSL_get_error(ssl, -1);

		if (err != SSL_ERROR_WANT_READ)
			return -1;
	}
	return 1;
}

static SSL_CTX *client_ctx(const struct pem *trust, const struct pem *mine, int maxver)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	assert_non_null(ctx);
	X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), trust->x);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (maxver) {
		SSL_CTX_set_min_proto_version(ctx, maxver);
		SSL_CTX_set_max_proto_version(ctx, maxver);
		SSL_CTX_set_security_level(ctx, 0);
	}
	if (mine != NULL) {
		assert_int_equal(SSL_CTX_use_certificate(ctx, mine->x), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey(ctx, mine->k), 1);
	}
	return ctx;
}

static int tls_try(struct env *e, const struct pem *trust, const struct pem *mine, int maxver)
{
	SSL_CTX *ctx = client_ctx(trust, mine, maxver);
	SSL *ssl = SSL_new(ctx);
	int fd = client(e), rc = tls_client(e, ssl, fd);

	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	pump(e, 20);
	return rc;
}

static void test_tls_context_refuses_bad_pem(void **state)
{
	struct pem srv, other;
	struct stream_tls *t;
	crisp_err_t err = CRISP_ERR_INIT;
	static const char junk[] = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";

	(void)state;
	pem_make(&srv, "127.0.0.1", NULL);
	pem_make(&other, "other", NULL);
	t = stream_tls_new_mem(srv.cert, strlen(srv.cert), srv.key, strlen(srv.key), NULL, 0, &err);
	assert_non_null(t);
	assert_false(stream_tls_verifies_clients(t));
	stream_tls_free(t);
	/* garbage certificate, key of another certificate, no key, garbage CA */
	assert_null(stream_tls_new_mem(junk, strlen(junk), srv.key, strlen(srv.key), NULL, 0, &err));
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_null(stream_tls_new_mem(srv.cert, strlen(srv.cert), other.key, strlen(other.key), NULL, 0, &err));
	assert_non_null(strstr(err.msg, "does not match"));
	assert_null(stream_tls_new_mem(srv.cert, strlen(srv.cert), "", 0, NULL, 0, &err));
	assert_null(stream_tls_new_mem(srv.cert, strlen(srv.cert), srv.key, strlen(srv.key), junk, strlen(junk), &err));
	assert_null(stream_tls_new("/nonexistent/cert.pem", "/nonexistent/key.pem", NULL, &err));
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	pem_free(&srv);
	pem_free(&other);
}

static void test_tls_handshakes(void **state)
{
	struct env e;
	struct pem ca, srv, cli, rogue;
	struct stream_tls *t;
	struct stream_stats st;
	crisp_err_t err = CRISP_ERR_INIT;
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	char resp[512];
	static const char req[] = "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t got = 0;

	(void)state;
	pem_make(&ca, "ca", NULL);
	pem_make(&srv, "127.0.0.1", &ca);
	pem_make(&cli, "client", &ca);
	pem_make(&rogue, "rogue", NULL);
	t = stream_tls_new_mem(srv.cert, strlen(srv.cert), srv.key, strlen(srv.key), ca.cert, strlen(ca.cert), &err);
	assert_non_null(t);
	assert_true(stream_tls_verifies_clients(t));
	env_init(&e, NULL);
	stream_server_set_tls(e.s, t);

	/* no client certificate, a self-signed one, TLS 1.1: refused */
	assert_int_equal(tls_try(&e, &ca, NULL, 0), -1);
	assert_int_equal(tls_try(&e, &ca, &rogue, 0), -1);
	assert_int_equal(tls_try(&e, &ca, &cli, TLS1_1_VERSION), -1);
	/* plain HTTP */
	fd = client(&e);
	csend(&e, fd, req, strlen(req));
	assert_int_equal(crecv(&e, fd, (uint8_t *)resp, sizeof resp, 200), -1);
	close(fd);
	pump(&e, 20);
	stream_server_stats(e.s, &st);
	assert_int_equal(st.tls_failed, 4);
	assert_int_equal(st.conns, 0);

	/* a good certificate, TLS 1.2 and 1.3: an HTTP answer through TLS */
	assert_int_equal(tls_try(&e, &ca, &cli, TLS1_2_VERSION), 1);
	ctx = client_ctx(&ca, &cli, 0);
	ssl = SSL_new(ctx);
	fd = client(&e);
	assert_int_equal(tls_client(&e, ssl, fd), 1);
	assert_string_equal(SSL_get_version(ssl), "TLSv1.3");
	assert_int_equal(SSL_write(ssl, req, (int)strlen(req)), (int)strlen(req));
	for (uint64_t end = crisp_now_ms() + 2000; crisp_now_ms() < end && got < sizeof resp - 1;) {
		int n;

		loop_run_once(e.l, 5);
		n = SSL_read(ssl, resp + got, (int)(sizeof resp - 1 - got));
		if (n > 0)
			got += (size_t)n;
		else if (SSL_get_error(ssl, n) != SSL_ERROR_WANT_READ)
			break;
	}
	resp[got] = '\0';
	assert_non_null(strstr(resp, "HTTP/1.1 404 Not Found"));
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	pump(&e, 20);
	stream_server_stats(e.s, &st);
	assert_int_equal(st.tls_failed, 4);

	env_free(&e);
	stream_tls_free(t);
	pem_free(&ca);
	pem_free(&srv);
	pem_free(&cli);
	pem_free(&rogue);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exec_session),
		cmocka_unit_test(test_resize_lines_reach_backend),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_client_gone_closes_backend),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_backend_error_on_error_stream),
		cmocka_unit_test(test_malformed_costs_the_connection),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_tls_context_refuses_bad_pem),
		cmocka_unit_test(test_tls_handshakes),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("stream_relay", tests, NULL, NULL);
}
