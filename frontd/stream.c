/*
 * frontd streaming server: tokens, connections, sessions and the relay.
 *
 * One connection is one session.  Life of a connection:
 *   HTTP     reading the request head (handshake_ms); token consumed
 *   STREAMS  upgraded; SPDY: waiting for the streams the request needs
 *            (stream_create_ms); WebSocket skips this
 *   RELAY    backend fd(s) open (or being opened); bytes flow
 *   CLOSING  everything sent is being flushed; then the socket closes
 * A protocol error, a limit, a timeout or the client leaving closes the
 * connection and every backend fd it holds: execd sees EOF on the session
 * socket and ends the exec'd process; netd's TCP connection is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/log.h"
#include "common/util.h"
#include "execd/execd.h"
#include "frontd/stream.h"
#include "frontd/stream_http.h"
#include "frontd/stream_spdy.h"
#include "frontd/stream_tls.h"
#include "frontd/stream_ws.h"
#include "proto/cri.pb-c.h"

#define SWEEP_MS 1000
#define LINGER_MS 5000
#define PF_MAX_PAIRS 16
#define IN_MAX (SPDY_HDR_LEN + SPDY_MAX_FRAME)
#define RESIZE_MAX 256

/* SPDY stream kinds of a remotecommand session (index into sid[]). */
enum { K_ERROR, K_STDIN, K_STDOUT, K_STDERR, K_RESIZE, K_N };
static const char *const kind_names[K_N] = { "error", "stdin", "stdout", "stderr", "resize" };

struct token {
	char tok[STREAM_TOKEN_LEN + 1];
	enum stream_verb verb;
	uint8_t *req;
	size_t reqlen;
	uint64_t expires;
	struct token *next;
};

struct obuf {
	uint8_t *b;
	size_t len, cap;
};

struct stream_conn;

/* An open (or opening) backend fd. */
struct backend {
	int fd;            /* -1: none */
	bool seqpacket;    /* exec/attach session: one packet per frame */
	bool opening;      /* an open is in flight */
	bool rd_eof;
	bool shut_wr;      /* shutdown(SHUT_WR) once out drains (port-forward) */
	bool shut_done;
	bool reg;          /* registered with the loop */
	uint32_t ev;
	struct obuf out;   /* seqpacket: records of u16 length + packet */
	struct pend *op;
	struct pf_pair *pair; /* port-forward: its pair */
};

struct pend {
	struct stream_conn *c; /* NULL once the connection is gone */
	struct backend *be;
};

struct pf_pair {
	bool used;
	char reqid[32];
	int32_t port;
	uint32_t err_sid, data_sid;
	bool data_fin_in;   /* the client finished sending */
	bool done;          /* FINs sent, forgotten when backend closes */
	struct backend be;
};

enum cstate { CS_HTTP, CS_STREAMS, CS_RELAY, CS_CLOSING };

struct stream_conn {
	struct stream_server *s;
	struct stream_conn *next, *prev;
	int fd;
	uint32_t ev;
	bool reg;             /* registered with the loop */
	bool wr_shut;         /* CLOSING: our side shut down after the last byte */
	enum cstate state;
	uint8_t *in;          /* HTTP_MAX_HEAD bytes until the upgrade, then IN_MAX */
	size_t inlen, incap;
	struct obuf out;
	uint64_t deadline;    /* state deadline (0 none) */
	uint64_t last_active;
	bool rd_eof;
	bool session_counted;

	/* TLS: NULL on a plain connection */
	SSL *ssl;
	bool tls_hs;          /* handshake not finished */
	uint32_t tls_want;    /* readiness a blocked TLS call waits for */
	struct loop_timer *tls_pend; /* decrypted input waiting inside OpenSSL */

	enum { P_NONE, P_SPDY, P_WS } proto;
	int ver;              /* channel protocol: 1 (channel.k8s.io) .. 5 */
	bool b64;             /* base64 WebSocket variant */
	enum stream_verb verb;
	uint8_t *req;
	size_t reqlen;
	Runtime__V1__PortForwardRequest *pf_req;

	/* exec/attach */
	bool want[K_N];
	uint32_t sid[K_N];
	bool stdin_closed;
	char rsz[RESIZE_MAX];
	size_t rszlen;
	struct backend be;

	/* SPDY */
	struct spdy_zin zin;
	struct spdy_zout zout;
	uint32_t last_sid;

	/* port-forward */
	struct pf_pair pairs[PF_MAX_PAIRS];

	/* WebSocket message reassembly */
	uint8_t *wsmsg;
	size_t wsmsglen;
	uint8_t wsop;
};

struct stream_server {
	struct loop *loop;
	int lfd;
	char base[128];
	struct stream_backend be;
	struct stream_limits lim;
	struct token *tokens;
	uint32_t ntokens;
	struct stream_conn *conns;
	uint32_t nconns, nsessions;
	struct loop_timer *sweep;
	struct stream_stats st;
	struct stream_tls *tls; /* not owned */
};

static void conn_close(struct stream_conn *c, const char *why);
static void sweep_arm(struct stream_server *s);
static void conn_update(struct stream_conn *c);
static void backend_io(struct loop *l, int fd, uint32_t events, void *arg);
static void client_io(struct loop *l, int fd, uint32_t events, void *arg);
static void spdy_input(struct stream_conn *c);
static void ws_input(struct stream_conn *c);

/* ---- buffers ---- */

static int obuf_add(struct obuf *o, const void *p, size_t n)
{
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		uint8_t *b;

		while (cap < o->len + n)
			cap *= 2;
		b = realloc(o->b, cap);
		if (b == NULL)
			return -1;
		o->b = b;
		o->cap = cap;
	}
	memcpy(o->b + o->len, p, n);
	o->len += n;
	return 0;
}

static void obuf_consume(struct obuf *o, size_t n)
{
	memmove(o->b, o->b + n, o->len - n);
	o->len -= n;
	if (o->len == 0 && o->cap > 65536) {
		free(o->b);
		o->b = NULL;
		o->cap = 0;
	}
}

static void obuf_free(struct obuf *o)
{
	free(o->b);
	memset(o, 0, sizeof *o);
}

/* ---- tokens ---- */

static void token_free(struct token *t)
{
	sodium_memzero(t->tok, sizeof t->tok);
	free(t->req);
	free(t);
}

int stream_token_new(struct stream_server *s, enum stream_verb verb, const uint8_t *req, size_t len, char *url,
		     size_t urlsz, crisp_err_t *err)
{
	static const char *const verbs[] = { "", "exec", "attach", "portforward" };
	uint8_t raw[32];
	struct token *t;

	if (s->ntokens >= s->lim.max_tokens)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0,
				   "too many streaming sessions waiting to be opened (%u)", s->lim.max_tokens);
	if (len > STREAM_MAX_REQ)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "request too large to stream");
	t = calloc(1, sizeof *t);
	if (t == NULL || (t->req = malloc(len ? len : 1)) == NULL) {
		free(t);
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
	}
	randombytes_buf(raw, sizeof raw);
	sodium_bin2base64(t->tok, sizeof t->tok, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof raw);
	memcpy(t->req, req, len);
	t->reqlen = len;
	t->verb = verb;
	t->expires = crisp_now_ms() + s->lim.token_ttl_ms;
	if ((size_t)snprintf(url, urlsz, "%s/%s/%s", s->base, verbs[verb], t->tok) >= urlsz) {
		token_free(t);
		return crisp_error(err, CRISP_INTERNAL, 0, "streaming URL too long");
	}
	t->next = s->tokens;
	s->tokens = t;
	s->ntokens++;
	sweep_arm(s);
	return 0;
}

/* Take the token (single use); NULL when unknown, expired or of another verb. */
static struct token *token_take(struct stream_server *s, enum stream_verb verb, const char *tok)
{
	uint64_t now = crisp_now_ms();

	if (strlen(tok) != STREAM_TOKEN_LEN)
		return NULL;
	for (struct token **pp = &s->tokens; *pp; pp = &(*pp)->next) {
		struct token *t = *pp;

		if (sodium_memcmp(t->tok, tok, STREAM_TOKEN_LEN) != 0)
			continue;
		*pp = t->next;
		s->ntokens--;
		if (t->expires <= now || t->verb != verb) {
			token_free(t);
			return NULL;
		}
		return t;
	}
	return NULL;
}

/* ---- output to the client ---- */

static int out_add(struct stream_conn *c, const void *p, size_t n)
{
	if (c->out.len + n > c->s->lim.out_max + IN_MAX || obuf_add(&c->out, p, n) < 0) {
		conn_close(c, "client output buffer full");
		return -1;
	}
	return 0;
}

static int spdy_send_data(struct stream_conn *c, uint32_t sid, uint8_t flags, const uint8_t *p, size_t n)
{
	uint8_t h[SPDY_HDR_LEN];

	do {
		size_t k = n > SPDY_DATA_CHUNK ? SPDY_DATA_CHUNK : n;

		spdy_build_data_hdr(h, sid, k == n ? flags : 0, (uint32_t)k);
		if (out_add(c, h, sizeof h) < 0 || (k && out_add(c, p, k) < 0))
			return -1;
		p += k;
		n -= k;
	} while (n > 0);
	return 0;
}

static int spdy_send_rst(struct stream_conn *c, uint32_t sid, uint32_t status)
{
	uint8_t f[16];

	spdy_build_rst(f, sid, status);
	return out_add(c, f, sizeof f);
}

static int ws_send(struct stream_conn *c, uint8_t op, const uint8_t *p, size_t n)
{
	uint8_t h[10];
	size_t hl = ws_build_hdr(h, op, n);

	if (out_add(c, h, hl) < 0)
		return -1;
	return n ? out_add(c, p, n) : 0;
}

/* One channel message over WebSocket: binary [ch]data, or text with the
 * channel as an ASCII digit and base64 data. */
static int ws_send_chan(struct stream_conn *c, uint8_t ch, const uint8_t *p, size_t n)
{
	uint8_t stackbuf[1 + CTR_FRAME_MAX];
	size_t off = 0;

	do {
		size_t k = n - off > CTR_FRAME_MAX ? CTR_FRAME_MAX : n - off;

		if (c->b64) {
			size_t bl = sodium_base64_ENCODED_LEN(k, sodium_base64_VARIANT_ORIGINAL);
			char *t = malloc(1 + bl);
			int rc;

			if (t == NULL) {
				conn_close(c, "out of memory");
				return -1;
			}
			t[0] = (char)('0' + ch);
			sodium_bin2base64(t + 1, bl, p + off, k, sodium_base64_VARIANT_ORIGINAL);
			rc = ws_send(c, WS_OP_TEXT, (uint8_t *)t, 1 + strlen(t + 1));
			free(t);
			if (rc < 0)
				return -1;
		} else {
			stackbuf[0] = ch;
			memcpy(stackbuf + 1, p + off, k);
			if (ws_send(c, WS_OP_BINARY, stackbuf, 1 + k) < 0)
				return -1;
		}
		off += k;
	} while (off < n);
	return 0;
}

static int ws_send_close(struct stream_conn *c, uint16_t code)
{
	uint8_t p[2] = { (uint8_t)(code >> 8), (uint8_t)code };

	return ws_send(c, WS_OP_CLOSE, p, 2);
}

static void http_error(struct stream_conn *c, int status, const char *reason, const char *msg, const char *extra)
{
	char buf[1024];
	int n = snprintf(buf, sizeof buf,
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n%sContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s\n",
			 status, reason, extra ? extra : "", strlen(msg) + 1, msg);

	if (n > 0 && (size_t)n < sizeof buf)
		(void)out_add(c, buf, (size_t)n);
	c->state = CS_CLOSING;
	c->deadline = crisp_now_ms() + LINGER_MS;
	conn_update(c);
}

/* ---- the session's status message ---- */

/* execd's final status frame is a metav1.Status JSON.  v4/v5 pass it on;
 * the older protocols carry a plain error message (nothing on success). */
static void send_status(struct stream_conn *c, const uint8_t *p, size_t n)
{
	char text[512];
	const uint8_t *msg = p;
	size_t mlen = n;

	if (c->ver < 4) {
		json_t *j = json_loadb((const char *)p, n, 0, NULL);
		const char *st = j ? json_string_value(json_object_get(j, "status")) : NULL;
		const char *m = j ? json_string_value(json_object_get(j, "message")) : NULL;

		if (st != NULL && strcmp(st, "Success") == 0) {
			json_decref(j);
			return;
		}
		snprintf(text, sizeof text, "%s", m && *m ? m : "command failed");
		json_decref(j);
		msg = (const uint8_t *)text;
		mlen = strlen(text);
	}
	if (c->proto == P_SPDY) {
		if (c->sid[K_ERROR])
			(void)spdy_send_data(c, c->sid[K_ERROR], 0, msg, mlen);
	} else {
		(void)ws_send_chan(c, 3, msg, mlen);
	}
}

/* An error before or instead of a session: as a Status on the error
 * stream/channel, then the end. */
static void session_fail(struct stream_conn *c, const char *reason, const char *message)
{
	json_t *j = json_pack("{s:{},s:s,s:s,s:s,s:i}", "metadata", "status", "Failure", "message", message,
			      "reason", reason, "code", 500);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (s != NULL)
		send_status(c, (const uint8_t *)s, strlen(s));
	free(s);
	json_decref(j);
}

/* Finish the session: FIN every stream / close the WebSocket; flush, then
 * close. */
static void session_end(struct stream_conn *c)
{
	if (c->state == CS_CLOSING)
		return;
	if (c->proto == P_SPDY) {
		for (int k = 0; k < K_N; k++)
			if (c->sid[k])
				(void)spdy_send_data(c, c->sid[k], SPDY_FLAG_FIN, NULL, 0);
		for (int i = 0; i < PF_MAX_PAIRS; i++)
			if (c->pairs[i].used && !c->pairs[i].done) {
				(void)spdy_send_data(c, c->pairs[i].err_sid, SPDY_FLAG_FIN, NULL, 0);
				if (c->pairs[i].data_sid)
					(void)spdy_send_data(c, c->pairs[i].data_sid, SPDY_FLAG_FIN, NULL, 0);
			}
	} else if (c->proto == P_WS) {
		(void)ws_send_close(c, 1000);
	}
	c->state = CS_CLOSING;
	c->deadline = crisp_now_ms() + LINGER_MS;
	conn_update(c);
}

/* ---- backends ---- */

static void backend_close(struct stream_conn *c, struct backend *be)
{
	if (be->op != NULL) {
		be->op->c = NULL; /* the answer will close the fd */
		be->op = NULL;
	}
	be->opening = false;
	if (be->fd >= 0) {
		if (be->reg)
			loop_del(c->s->loop, be->fd);
		close(be->fd);
		be->fd = -1;
	}
	be->reg = false;
	obuf_free(&be->out);
}

static bool backends_full(const struct stream_conn *c)
{
	if (c->be.out.len >= c->s->lim.backend_max)
		return true;
	for (int i = 0; i < PF_MAX_PAIRS; i++)
		if (c->pairs[i].used && c->pairs[i].be.out.len >= c->s->lim.backend_max)
			return true;
	return false;
}

/* Queue one frame-protocol packet for execd. */
static int be_packet(struct stream_conn *c, uint8_t ch, const uint8_t *p, size_t n)
{
	struct backend *be = &c->be;

	do {
		size_t k = n > CTR_FRAME_MAX ? CTR_FRAME_MAX : n;
		uint8_t h[3] = { (uint8_t)((k + 1) >> 8), (uint8_t)(k + 1), ch };

		if (obuf_add(&be->out, h, 3) < 0 || (k && obuf_add(&be->out, p, k) < 0)) {
			conn_close(c, "out of memory");
			return -1;
		}
		p += k;
		n -= k;
	} while (n > 0);
	conn_update(c);
	return 0;
}

static void stdin_close(struct stream_conn *c)
{
	if (c->stdin_closed)
		return;
	c->stdin_closed = true;
	if (c->want[K_STDIN])
		(void)be_packet(c, CTR_CH_STDIN, NULL, 0);
}

/* Resize JSON arrives as a stream of objects each ended by a newline (Go's
 * json.Encoder); every complete one goes to execd as it is (execd parses
 * it).  A line over RESIZE_MAX is a protocol error. */
static int resize_data(struct stream_conn *c, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (c->rszlen > 0 && c->want[K_RESIZE] &&
			    be_packet(c, CTR_CH_RESIZE, (const uint8_t *)c->rsz, c->rszlen) < 0)
				return -1;
			c->rszlen = 0;
		} else if (c->rszlen >= RESIZE_MAX) {
			c->s->st.protocol_errors++;
			conn_close(c, "resize message too long");
			return -1;
		} else {
			c->rsz[c->rszlen++] = (char)p[i];
		}
	}
	return 0;
}

static void open_failed(struct stream_conn *c, struct backend *be, const crisp_err_t *e)
{
	struct pf_pair *pp = be->pair;

	if (pp != NULL) {
		(void)spdy_send_data(c, pp->err_sid, SPDY_FLAG_FIN, (const uint8_t *)e->msg, strlen(e->msg));
		(void)spdy_send_data(c, pp->data_sid, SPDY_FLAG_FIN, NULL, 0);
		pp->done = true;
		conn_update(c);
	} else {
		session_fail(c, e->code == CRISP_NOT_FOUND ? "NotFound" : "InternalError", e->msg);
		session_end(c);
	}
}

static void pend_done(void *ctx, int fd, const crisp_err_t *e)
{
	struct pend *op = ctx;
	struct stream_conn *c = op->c;
	struct backend *be = op->be;

	free(op);
	if (c == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	be->op = NULL;
	be->opening = false;
	if (fd < 0) {
		open_failed(c, be, e);
		return;
	}
	if (c->state == CS_CLOSING || (be->pair != NULL && be->pair->done)) {
		close(fd);
		return;
	}
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0 || loop_add(c->s->loop, fd, EPOLLIN, backend_io, c) < 0) {
		close(fd);
		conn_close(c, "backend fd");
		return;
	}
	be->fd = fd;
	be->ev = EPOLLIN;
	be->reg = true;
	conn_update(c);
}

static void backend_open(struct stream_conn *c, struct backend *be, int32_t port)
{
	struct stream_open o = { .verb = c->verb, .req = c->req, .reqlen = c->reqlen, .port = port };
	struct pend *op = calloc(1, sizeof *op);
	crisp_err_t err = CRISP_ERR_INIT;

	if (op == NULL) {
		conn_close(c, "out of memory");
		return;
	}
	op->c = c;
	op->be = be;
	be->fd = -1;
	be->seqpacket = c->verb != STREAM_PORT_FORWARD;
	be->opening = true;
	be->op = op;
	if (c->s->be.open(c->s->be.arg, &o, pend_done, op, &err) < 0) {
		be->op = NULL;
		be->opening = false;
		free(op);
		open_failed(c, be, &err);
	}
}

/* A packet from execd's session socket. */
static void exec_packet(struct stream_conn *c, const uint8_t *p, size_t n)
{
	int k;

	switch (p[0]) {
	case CTR_CH_STDOUT:
		k = K_STDOUT;
		break;
	case CTR_CH_STDERR:
		k = K_STDERR;
		break;
	case CTR_CH_STATUS:
		send_status(c, p + 1, n - 1);
		return;
	default:
		log_warn("stream: execd sent a frame on channel %u; ignored", p[0]);
		return;
	}
	if (!c->want[k] || n == 1)
		return;
	if (c->proto == P_SPDY) {
		if (c->sid[k])
			(void)spdy_send_data(c, c->sid[k], 0, p + 1, n - 1);
	} else {
		(void)ws_send_chan(c, (uint8_t)k - 1, p + 1, n - 1);
	}
}

static int backend_flush(struct stream_conn *c, struct backend *be)
{
	while (be->out.len > 0) {
		ssize_t w;
		size_t off = 0, n = be->out.len;

		if (be->seqpacket) {
			off = 2;
			n = (size_t)be->out.b[0] << 8 | be->out.b[1];
		}
		w = send(be->fd, be->out.b + off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return -1;
		}
		obuf_consume(&be->out, be->seqpacket ? n + 2 : (size_t)w);
		c->last_active = crisp_now_ms();
	}
	if (be->shut_wr && !be->shut_done) {
		be->shut_done = true;
		(void)shutdown(be->fd, SHUT_WR);
	}
	return 0;
}

/* The backend side is finished (EOF or error). */
static void backend_eof(struct stream_conn *c, struct backend *be)
{
	struct pf_pair *pp = be->pair;

	if (pp == NULL) {
		backend_close(c, be);
		session_end(c);
		return;
	}
	if (!pp->done) {
		(void)spdy_send_data(c, pp->data_sid, SPDY_FLAG_FIN, NULL, 0);
		(void)spdy_send_data(c, pp->err_sid, SPDY_FLAG_FIN, NULL, 0);
		pp->done = true;
	}
	backend_close(c, be);
	/* Finished both ways: the slot is free again (a client that resets
	 * the streams later is told nothing; one that never does cannot use
	 * up the connection's pairs). */
	if (pp->data_fin_in)
		pp->used = false;
	conn_update(c);
}

static void backend_io(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct stream_conn *c = arg;
	struct backend *be = NULL;
	static uint8_t buf[1 + CTR_FRAME_MAX + 1];

	(void)l;
	if (c->be.fd == fd)
		be = &c->be;
	for (int i = 0; be == NULL && i < PF_MAX_PAIRS; i++)
		if (c->pairs[i].used && c->pairs[i].be.fd == fd)
			be = &c->pairs[i].be;
	if (be == NULL)
		return;
	if ((events & EPOLLOUT) && backend_flush(c, be) < 0) {
		backend_eof(c, be);
		return;
	}
	/* Room again towards the backends: frames held back in the input
	 * buffer go on now (the client may have nothing more to send, so no
	 * read event would come for them). */
	if ((events & EPOLLOUT) && c->inlen > 0 && c->state != CS_CLOSING && !backends_full(c)) {
		if (c->proto == P_SPDY)
			spdy_input(c);
		else if (c->proto == P_WS)
			ws_input(c);
		if (c->fd < 0)
			return;
		if (be->fd < 0) {
			conn_update(c);
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		/* A bounded number of reads per event: others get their turn. */
		for (int round = 0; round < 8 && be->fd >= 0 && c->out.len < c->s->lim.out_max; round++) {
			ssize_t n = recv(be->fd, buf, be->seqpacket ? sizeof buf : sizeof buf - 1, MSG_DONTWAIT);

			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				backend_eof(c, be);
				return;
			}
			c->last_active = crisp_now_ms();
			if (be->seqpacket) {
				if ((size_t)n > 1 + CTR_FRAME_MAX) {
					log_warn("stream: execd sent an oversized frame; session ended");
					backend_eof(c, be);
					return;
				}
				exec_packet(c, buf, (size_t)n);
			} else if (be->pair != NULL && !be->pair->done) {
				(void)spdy_send_data(c, be->pair->data_sid, 0, buf, (size_t)n);
			}
			if (c->fd < 0)
				return;
		}
	}
	conn_update(c);
}

/* ---- event masks ---- */

/* An fd with nothing wanted leaves the loop altogether: epoll reports
 * EPOLLHUP/EPOLLERR whatever the mask, and a peer that hung up while we
 * do not read it would otherwise wake the loop forever. */
static void set_events(struct stream_conn *c, int fd, bool *reg, uint32_t *cur, uint32_t want, loop_fd_cb cb)
{
	if (fd < 0)
		return;
	if (want == 0) {
		if (*reg)
			loop_del(c->s->loop, fd);
		*reg = false;
		*cur = 0;
	} else if (!*reg) {
		if (loop_add(c->s->loop, fd, want, cb, c) == 0) {
			*reg = true;
			*cur = want;
		}
	} else if (*cur != want && loop_mod(c->s->loop, fd, want) == 0) {
		*cur = want;
	}
}

static void be_update(struct stream_conn *c, struct backend *be)
{
	uint32_t ev = 0;

	if (be->fd < 0)
		return;
	if (!be->rd_eof && c->out.len < c->s->lim.out_max)
		ev |= EPOLLIN;
	if (be->out.len > 0 || (be->shut_wr && !be->shut_done))
		ev |= EPOLLOUT;
	set_events(c, be->fd, &be->reg, &be->ev, ev, backend_io);
}

static void tls_pend_cb(struct loop *l, void *arg)
{
	struct stream_conn *c = arg;

	c->tls_pend = NULL;
	client_io(l, c->fd, EPOLLIN, c);
}

static void conn_update(struct stream_conn *c)
{
	uint32_t ev = 0;

	if (c->fd < 0)
		return;
	if (c->ssl != NULL && c->tls_hs) {
		set_events(c, c->fd, &c->reg, &c->ev, c->tls_want, client_io);
		return;
	}
	if (!c->rd_eof && !backends_full(c))
		ev |= EPOLLIN;
	if (c->out.len > 0 || (c->state == CS_CLOSING && !c->wr_shut))
		ev |= EPOLLOUT;
	if (c->ssl != NULL) {
		/* Records already decrypted inside OpenSSL wake no epoll: read
		 * them from a timer, as soon as the loop turns. */
		if ((ev & EPOLLIN) && c->inlen < c->incap && stream_tls_pending(c->ssl) > 0 && c->tls_pend == NULL)
			c->tls_pend = loop_timer_add(c->s->loop, 0, tls_pend_cb, c);
		/* A read that must write (or the reverse) waits for that. */
		if (ev != 0)
			ev |= c->tls_want;
	}
	set_events(c, c->fd, &c->reg, &c->ev, ev, client_io);
	be_update(c, &c->be);
	for (int i = 0; i < PF_MAX_PAIRS; i++)
		if (c->pairs[i].used)
			be_update(c, &c->pairs[i].be);
}

/* ---- SPDY ---- */

static void spdy_goaway(struct stream_conn *c, const char *why)
{
	uint8_t f[16];

	c->s->st.protocol_errors++;
	log_debug("stream: SPDY protocol error: %s", why);
	spdy_build_goaway(f, c->last_sid, 1);
	(void)out_add(c, f, sizeof f);
	backend_close(c, &c->be);
	for (int i = 0; i < PF_MAX_PAIRS; i++)
		if (c->pairs[i].used)
			backend_close(c, &c->pairs[i].be);
	c->state = CS_CLOSING;
	c->deadline = crisp_now_ms() + LINGER_MS;
	conn_update(c);
}

static int spdy_reply(struct stream_conn *c, uint32_t sid, uint8_t flags)
{
	uint8_t f[128];
	ssize_t n = spdy_build_syn_reply(&c->zout, sid, flags, f, sizeof f);

	if (n < 0) {
		conn_close(c, "header compression");
		return -1;
	}
	return out_add(c, f, (size_t)n);
}

static void session_start(struct stream_conn *c)
{
	c->state = CS_RELAY;
	c->deadline = 0;
	c->s->nsessions++;
	c->session_counted = true;
	backend_open(c, &c->be, 0);
}

static void exec_syn(struct stream_conn *c, uint32_t sid, const char *type)
{
	int k;

	for (k = 0; k < K_N; k++)
		if (strcmp(type, kind_names[k]) == 0)
			break;
	if (k == K_N || c->sid[k] != 0) {
		(void)spdy_send_rst(c, sid, SPDY_RST_REFUSED_STREAM);
		return;
	}
	/* A stream the request did not ask for is accepted and ignored, as
	 * kubelet does (its data goes nowhere, it gets no output). */
	c->sid[k] = sid;
	if (spdy_reply(c, sid, 0) < 0 || c->state != CS_STREAMS)
		return;
	for (k = 0; k < K_N; k++)
		if (c->want[k] && c->sid[k] == 0)
			return;
	session_start(c);
}

static struct pf_pair *pf_find(struct stream_conn *c, uint32_t sid)
{
	for (int i = 0; i < PF_MAX_PAIRS; i++)
		if (c->pairs[i].used && (c->pairs[i].err_sid == sid || c->pairs[i].data_sid == sid))
			return &c->pairs[i];
	return NULL;
}

static bool pf_port_ok(const struct stream_conn *c, long port)
{
	if (port < 1 || port > 65535)
		return false;
	if (c->pf_req == NULL || c->pf_req->n_port == 0)
		return true;
	for (size_t i = 0; i < c->pf_req->n_port; i++)
		if (c->pf_req->port[i] == port)
			return true;
	return false;
}

static void pf_syn(struct stream_conn *c, uint32_t sid, const char *type, const char *port, const char *reqid)
{
	struct pf_pair *pp = NULL, *free_slot = NULL;
	char *end = NULL;
	long p = port ? strtol(port, &end, 10) : 0;
	bool data;

	if (type == NULL || (strcmp(type, "error") != 0 && strcmp(type, "data") != 0) || port == NULL ||
	    end == port || *end != '\0' || !pf_port_ok(c, p) || reqid == NULL || strlen(reqid) >= sizeof pp->reqid) {
		(void)spdy_send_rst(c, sid, SPDY_RST_REFUSED_STREAM);
		return;
	}
	data = strcmp(type, "data") == 0;
	for (int i = 0; i < PF_MAX_PAIRS; i++) {
		if (c->pairs[i].used && strcmp(c->pairs[i].reqid, reqid) == 0)
			pp = &c->pairs[i];
		else if (!c->pairs[i].used && free_slot == NULL)
			free_slot = &c->pairs[i];
	}
	if (pp == NULL) {
		if (free_slot == NULL) {
			(void)spdy_send_rst(c, sid, SPDY_RST_REFUSED_STREAM);
			return;
		}
		pp = free_slot;
		memset(pp, 0, sizeof *pp);
		pp->used = true;
		pp->be.fd = -1;
		pp->be.pair = pp;
		snprintf(pp->reqid, sizeof pp->reqid, "%s", reqid);
		pp->port = (int32_t)p;
	}
	if (pp->port != p || (data ? pp->data_sid : pp->err_sid) != 0) {
		(void)spdy_send_rst(c, sid, SPDY_RST_STREAM_IN_USE);
		return;
	}
	if (data)
		pp->data_sid = sid;
	else
		pp->err_sid = sid;
	if (spdy_reply(c, sid, 0) < 0)
		return;
	if (pp->data_sid && pp->err_sid)
		backend_open(c, &pp->be, pp->port);
}

static void spdy_frame(struct stream_conn *c, const struct spdy_frame *f)
{
	struct spdy_header h[SPDY_MAX_PAIRS];
	size_t nh = 0;
	const char *why = NULL;

	if (!f->control) {
		struct pf_pair *pp;
		int k;

		if (c->verb != STREAM_PORT_FORWARD) {
			for (k = 0; k < K_N && c->sid[k] != f->stream_id; k++)
				;
			if (k == K_STDIN && !c->stdin_closed) {
				if (f->len && c->want[K_STDIN] && be_packet(c, CTR_CH_STDIN, f->data, f->len) < 0)
					return;
				if (f->flags & SPDY_FLAG_FIN)
					stdin_close(c);
			} else if (k == K_RESIZE) {
				(void)resize_data(c, f->data, f->len);
			} else if (k == K_N && f->stream_id > c->last_sid) {
				(void)spdy_send_rst(c, f->stream_id, SPDY_RST_INVALID_STREAM);
			}
			return;
		}
		pp = pf_find(c, f->stream_id);
		if (pp == NULL || pp->data_sid != f->stream_id || pp->data_fin_in)
			return;
		if (pp->done) {
			if (f->flags & SPDY_FLAG_FIN)
				pp->used = false; /* finished both ways */
			return;
		}
		if (f->len && obuf_add(&pp->be.out, f->data, f->len) < 0) {
			conn_close(c, "out of memory");
			return;
		}
		if (f->flags & SPDY_FLAG_FIN) {
			pp->data_fin_in = true;
			pp->be.shut_wr = true;
		}
		conn_update(c);
		return;
	}
	switch (f->type) {
	case SPDY_SYN_STREAM:
		if (f->stream_id % 2 == 0 || f->stream_id <= c->last_sid) {
			spdy_goaway(c, "stream id not odd or not increasing");
			return;
		}
		c->last_sid = f->stream_id;
		if (spdy_headers_decode(&c->zin, f->data, f->len, h, &nh, &why) < 0) {
			spdy_goaway(c, why);
			return;
		}
		if (c->state == CS_CLOSING)
			return;
		if (c->verb == STREAM_PORT_FORWARD)
			pf_syn(c, f->stream_id, spdy_header_get(h, nh, "streamtype"), spdy_header_get(h, nh, "port"),
			       spdy_header_get(h, nh, "requestid"));
		else
			exec_syn(c, f->stream_id, spdy_header_get(h, nh, "streamtype") ?: "");
		return;
	case SPDY_HEADERS:
		/* Inflated to keep the shared zlib state in step, then ignored. */
		if (spdy_headers_decode(&c->zin, f->data, f->len, h, &nh, &why) < 0)
			spdy_goaway(c, why);
		return;
	case SPDY_SYN_REPLY:
		spdy_goaway(c, "SYN_REPLY from a client");
		return;
	case SPDY_RST_STREAM:
		if (c->verb == STREAM_PORT_FORWARD) {
			struct pf_pair *pp = pf_find(c, f->stream_id);

			if (pp != NULL) {
				backend_close(c, &pp->be);
				pp->used = false;
			}
		} else if (f->stream_id == c->sid[K_STDIN]) {
			stdin_close(c);
		}
		return;
	case SPDY_PING: {
		uint8_t p[12];

		spdy_build_ping(p, f->value);
		(void)out_add(c, p, sizeof p);
		return;
	}
	case SPDY_GOAWAY:
		backend_close(c, &c->be);
		session_end(c);
		return;
	default:
		return; /* SETTINGS, WINDOW_UPDATE, unknown: ignored */
	}
}

static void spdy_input(struct stream_conn *c)
{
	size_t off = 0;

	while (c->fd >= 0 && c->proto == P_SPDY && !backends_full(c)) {
		struct spdy_frame f;
		ssize_t n = spdy_parse_frame(c->in + off, c->inlen - off, &f);

		if (n == 0)
			break;
		if (n < 0) {
			spdy_goaway(c, "malformed frame");
			off = c->inlen;
			break;
		}
		off += (size_t)n;
		spdy_frame(c, &f);
	}
	if (c->fd >= 0 && off > 0) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
}

/* ---- WebSocket ---- */

static void ws_message(struct stream_conn *c, uint8_t op, uint8_t *p, size_t n)
{
	uint8_t ch;
	size_t dlen;

	if (n == 0)
		return;
	if (c->b64) {
		if (op != WS_OP_TEXT || p[0] < '0' || p[0] > '9') {
			conn_close(c, "base64 protocol: text message with a channel digit expected");
			return;
		}
		ch = (uint8_t)(p[0] - '0');
		if (sodium_base642bin(p + 1, n - 1, (const char *)p + 1, n - 1, NULL, &dlen, NULL,
				      sodium_base64_VARIANT_ORIGINAL) != 0) {
			conn_close(c, "bad base64");
			return;
		}
		memmove(p + 1, p + 1, dlen);
		n = 1 + dlen;
	} else {
		ch = p[0];
	}
	switch (ch) {
	case 0:
		if (!c->stdin_closed && c->want[K_STDIN] && n > 1)
			(void)be_packet(c, CTR_CH_STDIN, p + 1, n - 1);
		break;
	case 4:
		if (c->want[K_RESIZE] && n > 1 && n - 1 <= RESIZE_MAX)
			(void)be_packet(c, CTR_CH_RESIZE, p + 1, n - 1);
		break;
	case 255:
		/* v5: the client closes one of its channels. */
		if (c->ver >= 5 && n == 2 && p[1] == 0)
			stdin_close(c);
		break;
	default:
		break; /* writes to read-only channels are ignored, as kubelet does */
	}
}

static void ws_input(struct stream_conn *c)
{
	size_t off = 0;

	while (c->fd >= 0 && !backends_full(c)) {
		struct ws_frame f;
		const char *why;
		ssize_t n = ws_parse_frame(c->in + off, c->inlen - off, &f, &why);

		if (n == 0)
			break;
		if (n < 0) {
			c->s->st.protocol_errors++;
			log_debug("stream: WebSocket protocol error: %s", why);
			(void)ws_send_close(c, 1002);
			backend_close(c, &c->be);
			c->state = CS_CLOSING;
			c->deadline = crisp_now_ms() + LINGER_MS;
			off = c->inlen;
			conn_update(c);
			break;
		}
		off += (size_t)n;
		if (c->state == CS_CLOSING)
			continue;
		if (f.opcode == WS_OP_PING) {
			(void)ws_send(c, WS_OP_PONG, f.payload, f.len);
		} else if (f.opcode == WS_OP_CLOSE) {
			backend_close(c, &c->be);
			session_end(c);
		} else if (f.opcode == WS_OP_PONG) {
			;
		} else if (f.opcode == WS_OP_CONT && c->wsmsg == NULL) {
			c->s->st.protocol_errors++;
			conn_close(c, "WebSocket continuation without a message");
			return;
		} else if (f.opcode != WS_OP_CONT && c->wsmsg != NULL) {
			c->s->st.protocol_errors++;
			conn_close(c, "WebSocket message interleaved");
			return;
		} else if (f.fin && c->wsmsg == NULL) {
			ws_message(c, f.opcode, f.payload, f.len);
		} else {
			uint8_t *m;

			if (c->wsmsglen + f.len > WS_MAX_PAYLOAD ||
			    (m = realloc(c->wsmsg, c->wsmsglen + f.len + 1)) == NULL) {
				conn_close(c, "WebSocket message too large");
				return;
			}
			if (c->wsmsg == NULL)
				c->wsop = f.opcode;
			c->wsmsg = m;
			memcpy(m + c->wsmsglen, f.payload, f.len);
			c->wsmsglen += f.len;
			if (f.fin) {
				ws_message(c, c->wsop, c->wsmsg, c->wsmsglen);
				free(c->wsmsg);
				c->wsmsg = NULL;
				c->wsmsglen = 0;
			}
		}
	}
	if (c->fd >= 0 && off > 0) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
}

/* ---- HTTP upgrade ---- */

static const char *const spdy_exec_protos[] = { "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
						 "channel.k8s.io" };
static const int spdy_exec_vers[] = { 4, 3, 2, 1 };
static const char *const ws_protos[] = { "v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
					 "channel.k8s.io", "base64.channel.k8s.io" };
static const int ws_vers[] = { 5, 4, 4, 1, 1 };
static const bool ws_b64[] = { false, false, true, false, true };

/* The first of the client's protocols that we speak (client order, as
 * k8s.io/apimachinery/pkg/util/httpstream.Handshake). */
static int negotiate(const char (*cl)[HTTP_PROTO_LEN], int ncl, const char *const *ours, size_t nours)
{
	for (int i = 0; i < ncl; i++)
		for (size_t j = 0; j < nours; j++)
			if (strcmp(cl[i], ours[j]) == 0)
				return (int)j;
	return -1;
}

static bool req_wants(struct stream_conn *c)
{
	bool in = false, out = false, err = false, tty = false;

	if (c->verb == STREAM_EXEC) {
		Runtime__V1__ExecRequest *r = runtime__v1__exec_request__unpack(NULL, c->reqlen, c->req);

		if (r == NULL)
			return false;
		in = r->stdin, out = r->stdout, err = r->stderr, tty = r->tty;
		protobuf_c_message_free_unpacked(&r->base, NULL);
	} else if (c->verb == STREAM_ATTACH) {
		Runtime__V1__AttachRequest *r = runtime__v1__attach_request__unpack(NULL, c->reqlen, c->req);

		if (r == NULL)
			return false;
		in = r->stdin, out = r->stdout, err = r->stderr, tty = r->tty;
		protobuf_c_message_free_unpacked(&r->base, NULL);
	} else {
		c->pf_req = runtime__v1__port_forward_request__unpack(NULL, c->reqlen, c->req);
		return c->pf_req != NULL;
	}
	c->want[K_ERROR] = true;
	c->want[K_STDIN] = in;
	c->want[K_STDOUT] = out;
	c->want[K_STDERR] = err && !tty;
	c->want[K_RESIZE] = tty && c->ver >= 3;
	return true;
}

static void http_input(struct stream_conn *c)
{
	struct http_req r;
	int status;
	const char *why, *verb, *tok;
	char resp[512], extra[256];
	ssize_t n = http_parse_request((const char *)c->in, c->inlen, &r, &status, &why);
	struct token *t;
	int idx;

	if (n == 0)
		return;
	if (n < 0) {
		c->s->st.protocol_errors++;
		http_error(c, status, status == 431 ? "Request Header Fields Too Large" : "Bad Request", why, NULL);
		return;
	}
	memmove(c->in, c->in + n, c->inlen - (size_t)n);
	c->inlen -= (size_t)n;

	if (strncmp(r.path, "/exec/", 6) == 0)
		c->verb = STREAM_EXEC, verb = "exec", tok = r.path + 6;
	else if (strncmp(r.path, "/attach/", 8) == 0)
		c->verb = STREAM_ATTACH, verb = "attach", tok = r.path + 8;
	else if (strncmp(r.path, "/portforward/", 13) == 0)
		c->verb = STREAM_PORT_FORWARD, verb = "portforward", tok = r.path + 13;
	else {
		http_error(c, 404, "Not Found", "not found", NULL);
		return;
	}
	if (strcmp(r.method, "GET") != 0 && strcmp(r.method, "POST") != 0) {
		http_error(c, 405, "Method Not Allowed", "GET or POST", "Allow: GET, POST\r\n");
		return;
	}
	if (!r.conn_upgrade || (!r.up_spdy && !r.up_websocket)) {
		http_error(c, 400, "Bad Request", "an upgrade to SPDY/3.1 or websocket is required", NULL);
		return;
	}
	t = token_take(c->s, c->verb, tok);
	if (t == NULL) {
		c->s->st.bad_token++;
		log_info("stream: %s with an unknown, used or expired token refused", verb);
		http_error(c, 404, "Not Found", "unknown, used or expired streaming token", NULL);
		return;
	}
	c->req = t->req;
	c->reqlen = t->reqlen;
	t->req = NULL;
	token_free(t);
	{
		/* Frames are larger than a request head: the input buffer grows
		 * once the connection is a session (idle heads stay small). */
		uint8_t *in = realloc(c->in, IN_MAX);

		if (in == NULL) {
			http_error(c, 503, "Service Unavailable", "out of memory", NULL);
			return;
		}
		c->in = in;
		c->incap = IN_MAX;
	}

	if (r.up_spdy) {
		const char *proto;

		if (c->verb == STREAM_PORT_FORWARD) {
			static const char *const pf[] = { "portforward.k8s.io" };

			idx = negotiate(r.protos, r.nprotos, pf, 1);
			proto = pf[0];
			c->ver = 1;
		} else {
			idx = negotiate(r.protos, r.nprotos, spdy_exec_protos, ARRAY_SIZE(spdy_exec_protos));
			proto = idx >= 0 ? spdy_exec_protos[idx] : NULL;
			c->ver = idx >= 0 ? spdy_exec_vers[idx] : 0;
		}
		if (idx < 0) {
			snprintf(extra, sizeof extra, "X-Accepted-Stream-Protocol-Versions: %s\r\n",
				 c->verb == STREAM_PORT_FORWARD ? "portforward.k8s.io"
								: "v4.channel.k8s.io, v3.channel.k8s.io, "
								  "v2.channel.k8s.io, channel.k8s.io");
			http_error(c, 403, "Forbidden", "unable to upgrade: unable to negotiate protocol", extra);
			return;
		}
		if (!req_wants(c) || spdy_zin_init(&c->zin) < 0 || spdy_zout_init(&c->zout) < 0) {
			http_error(c, 500, "Internal Server Error", "session setup failed", NULL);
			return;
		}
		c->proto = P_SPDY;
		snprintf(resp, sizeof resp,
			 "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
			 "X-Stream-Protocol-Version: %s\r\n\r\n",
			 proto);
		if (out_add(c, resp, strlen(resp)) < 0)
			return;
		if (c->verb == STREAM_PORT_FORWARD) {
			c->state = CS_RELAY;
			c->deadline = 0;
			c->s->nsessions++;
			c->session_counted = true;
		} else {
			c->state = CS_STREAMS;
			c->deadline = crisp_now_ms() + c->s->lim.stream_create_ms;
		}
		conn_update(c);
		if (c->inlen > 0)
			spdy_input(c);
		return;
	}

	/* WebSocket */
	{
		char accept[29];

		if (c->verb == STREAM_PORT_FORWARD) {
			http_error(c, 400, "Bad Request", "port-forward is served over SPDY/3.1 only", NULL);
			return;
		}
		if (r.ws_version != 13) {
			http_error(c, 426, "Upgrade Required", "Sec-WebSocket-Version 13 required",
				   "Sec-WebSocket-Version: 13\r\n");
			return;
		}
		if (ws_accept_key(r.ws_key, accept) < 0) {
			http_error(c, 400, "Bad Request", "bad Sec-WebSocket-Key", NULL);
			return;
		}
		idx = negotiate(r.ws_protos, r.nws_protos, ws_protos, ARRAY_SIZE(ws_protos));
		if (idx < 0) {
			http_error(c, 403, "Forbidden", "unable to upgrade: unable to negotiate protocol", NULL);
			return;
		}
		c->ver = ws_vers[idx];
		c->b64 = ws_b64[idx];
		if (!req_wants(c)) {
			http_error(c, 500, "Internal Server Error", "session setup failed", NULL);
			return;
		}
		c->proto = P_WS;
		snprintf(resp, sizeof resp,
			 "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
			 "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
			 accept, ws_protos[idx]);
		if (out_add(c, resp, strlen(resp)) < 0)
			return;
		session_start(c);
		conn_update(c);
		if (c->fd >= 0 && c->inlen > 0)
			ws_input(c);
	}
}

/* ---- connections ---- */

static void conn_close(struct stream_conn *c, const char *why)
{
	struct stream_server *s = c->s;

	if (c->fd < 0)
		return;
	log_debug("stream: connection closed: %s", why);
	backend_close(c, &c->be);
	for (int i = 0; i < PF_MAX_PAIRS; i++)
		if (c->pairs[i].used)
			backend_close(c, &c->pairs[i].be);
	if (c->reg)
		loop_del(s->loop, c->fd);
	if (c->tls_pend != NULL)
		loop_timer_cancel(s->loop, c->tls_pend);
	SSL_free(c->ssl);
	close(c->fd);
	c->fd = -1;
	if (c->session_counted)
		s->nsessions--;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	spdy_zin_free(&c->zin); /* no-ops when never initialised */
	spdy_zout_free(&c->zout);
	if (c->pf_req)
		protobuf_c_message_free_unpacked(&c->pf_req->base, NULL);
	free(c->req);
	free(c->in);
	free(c->wsmsg);
	obuf_free(&c->out);
	free(c);
}

/* The client socket, through TLS when the server has it. */
static ssize_t conn_recv(struct stream_conn *c, void *buf, size_t n)
{
	uint32_t want = 0;
	ssize_t r;

	if (c->ssl == NULL)
		return recv(c->fd, buf, n, MSG_DONTWAIT);
	r = stream_tls_read(c->ssl, buf, n, &want);
	c->tls_want |= want;
	return r;
}

static ssize_t conn_send(struct stream_conn *c, const void *buf, size_t n)
{
	uint32_t want = 0;
	ssize_t r;

	if (c->ssl == NULL)
		return send(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	r = stream_tls_write(c->ssl, buf, n, &want);
	c->tls_want |= want;
	return r;
}

static void client_io(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct stream_conn *c = arg;

	(void)l;
	(void)fd;
	if (c->ssl != NULL) {
		if (c->tls_hs) {
			char why[256];
			int rc = stream_tls_handshake(c->ssl, &c->tls_want, why, sizeof why);

			if (rc < 0) {
				c->s->st.tls_failed++;
				log_info("stream: TLS handshake failed: %s", why);
				conn_close(c, "TLS handshake");
				return;
			}
			if (rc == 0) {
				conn_update(c);
				return;
			}
			c->tls_hs = false;
		}
		/* Either readiness may unblock either direction (a TLS read may
		 * need to write and the reverse): try both; a call that cannot
		 * proceed only says so. */
		c->tls_want = 0;
		events |= EPOLLIN | EPOLLOUT;
	}
	if (events & EPOLLOUT) {
		while (c->out.len > 0) {
			ssize_t w = conn_send(c, c->out.b, c->out.len);

			if (w < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (w <= 0) {
				conn_close(c, "write error");
				return;
			}
			obuf_consume(&c->out, (size_t)w);
			c->last_active = crisp_now_ms();
		}
		if (c->out.len == 0 && c->state == CS_CLOSING) {
			if (c->rd_eof) {
				conn_close(c, "done");
				return;
			}
			if (!c->wr_shut && c->ssl != NULL)
				stream_tls_shutdown(c->ssl);
			(void)shutdown(c->fd, SHUT_WR);
			c->wr_shut = true;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (int round = 0; round < 4 && c->fd >= 0 && !c->rd_eof && !backends_full(c); round++) {
			size_t room = c->incap - c->inlen;
			ssize_t n;

			if (c->state == CS_CLOSING)
				c->inlen = 0, room = c->incap; /* read and discard */
			if (room == 0)
				break;
			n = conn_recv(c, c->in + c->inlen, room);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				c->rd_eof = true;
				if (c->state != CS_CLOSING || c->out.len == 0) {
					conn_close(c, n == 0 ? "client closed" : "read error");
					return;
				}
				break;
			}
			c->last_active = crisp_now_ms();
			if (c->state == CS_CLOSING) {
				c->inlen = 0;
				continue;
			}
			c->inlen += (size_t)n;
			if (c->state == CS_HTTP)
				http_input(c);
			else if (c->proto == P_SPDY)
				spdy_input(c);
			else if (c->proto == P_WS)
				ws_input(c);
			if (c->fd >= 0 && c->state == CS_HTTP && c->inlen == c->incap) {
				http_error(c, 431, "Request Header Fields Too Large", "request head too large", NULL);
				break;
			}
		}
	}
	if (c->fd >= 0)
		conn_update(c);
}

static void on_accept(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct stream_server *s = arg;

	(void)l;
	(void)events;
	for (int i = 0; i < 16; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct stream_conn *c;

		if (cfd < 0)
			return;
		if (s->nconns >= s->lim.max_conns) {
			s->st.refused++;
			log_warn("stream: connection refused: %u connections open", s->nconns);
			close(cfd);
			continue;
		}
		(void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c = calloc(1, sizeof *c);
		if (c == NULL || (c->in = malloc(HTTP_MAX_HEAD)) == NULL) {
			free(c);
			close(cfd);
			s->st.refused++;
			continue;
		}
		c->s = s;
		c->incap = HTTP_MAX_HEAD;
		c->fd = cfd;
		c->be.fd = -1;
		c->state = CS_HTTP;
		c->last_active = crisp_now_ms();
		c->deadline = c->last_active + s->lim.handshake_ms;
		if (s->tls != NULL) {
			/* The handshake shares the request head's deadline. */
			c->ssl = stream_tls_conn_new(s->tls, cfd);
			c->tls_hs = true;
			c->tls_want = EPOLLIN;
		}
		if ((s->tls != NULL && c->ssl == NULL) || loop_add(s->loop, cfd, EPOLLIN, client_io, c) < 0) {
			SSL_free(c->ssl);
			free(c->in);
			free(c);
			close(cfd);
			s->st.refused++;
			continue;
		}
		c->ev = EPOLLIN;
		c->reg = true;
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		s->st.accepted++;
		sweep_arm(s);
	}
}

/* ---- timers: token expiry, handshake, stream creation, idle, linger ---- */

static void sweep_cb(struct loop *l, void *arg)
{
	struct stream_server *s = arg;
	uint64_t now = crisp_now_ms();
	struct stream_conn *c, *next;

	(void)l;
	s->sweep = NULL;
	for (struct token **pp = &s->tokens; *pp;) {
		struct token *t = *pp;

		if (t->expires <= now) {
			*pp = t->next;
			s->ntokens--;
			token_free(t);
		} else {
			pp = &t->next;
		}
	}
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->deadline && c->deadline <= now) {
			if (c->state == CS_STREAMS) {
				session_fail(c, "Timeout", "timed out waiting for the client to create streams");
				session_end(c);
			} else {
				conn_close(c, c->state == CS_HTTP ? "handshake timeout" : "linger timeout");
			}
		} else if (c->last_active + s->lim.idle_ms <= now) {
			s->st.closed_idle++;
			log_info("stream: session idle for %u ms: closed", s->lim.idle_ms);
			conn_close(c, "idle");
		}
	}
	sweep_arm(s);
}

static void sweep_arm(struct stream_server *s)
{
	if (s->sweep == NULL && (s->ntokens > 0 || s->nconns > 0))
		s->sweep = loop_timer_add(s->loop, SWEEP_MS, sweep_cb, s);
}

/* ---- server ---- */

struct stream_server *stream_server_new(struct loop *l, int listen_fd, const char *base_url,
					const struct stream_backend *be, const struct stream_limits *lim,
					crisp_err_t *err)
{
	struct stream_server *s = calloc(1, sizeof *s);

	if (s == NULL) {
		crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
		return NULL;
	}
	s->loop = l;
	s->lfd = listen_fd;
	s->be = *be;
	if (lim)
		s->lim = *lim;
#define DEF(f, v) \
	if (s->lim.f == 0) \
	s->lim.f = (v)
	DEF(max_conns, 128);
	DEF(max_tokens, 1024);
	DEF(token_ttl_ms, 60000);
	DEF(handshake_ms, 10000);
	DEF(stream_create_ms, 30000);
	DEF(idle_ms, 4u * 3600 * 1000);
	DEF(out_max, 1u << 20);
	DEF(backend_max, 256u << 10);
#undef DEF
	if ((size_t)snprintf(s->base, sizeof s->base, "%s", base_url) >= sizeof s->base) {
		free(s);
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "streaming base URL too long");
		return NULL;
	}
	if (fcntl(listen_fd, F_SETFL, O_NONBLOCK) < 0 || loop_add(l, listen_fd, EPOLLIN, on_accept, s) < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "streaming listener");
		free(s);
		return NULL;
	}
	return s;
}

void stream_server_free(struct stream_server *s)
{
	if (s == NULL)
		return;
	loop_del(s->loop, s->lfd);
	while (s->conns)
		conn_close(s->conns, "server stopping");
	while (s->tokens) {
		struct token *t = s->tokens;

		s->tokens = t->next;
		token_free(t);
	}
	if (s->sweep)
		loop_timer_cancel(s->loop, s->sweep);
	free(s);
}

void stream_server_set_tls(struct stream_server *s, struct stream_tls *tls)
{
	s->tls = tls;
}

void stream_server_stats(const struct stream_server *s, struct stream_stats *st)
{
	*st = s->st;
	st->conns = s->nconns;
	st->tokens = s->ntokens;
	st->sessions = s->nsessions;
}
