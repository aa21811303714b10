/*
 * crisp frontd: gRPC transport, streams and calls.  The nghttp2 callbacks
 * that see requests (headers, the length-prefixed body), the checks made
 * before a handler runs, deadlines, the response path (HEADERS, DATA through
 * a data provider, trailers, or trailers-only), and the call API.
 *
 * A stream's request is accepted or answered with an error in this order:
 *   headers: list too large, content-type, :method, grpc-timeout, :path,
 *            grpc-encoding                                (stream_headers_done)
 *   body:    per message prefix (flag, length), a second message, buffer budget
 *   end:     zero messages or a partial one, deadline already passed
 * then the handler is called once with the complete message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "frontd/grpc_int.h"

/* Pseudo-headers seen on a request (h2_stream.pseudo_seen). */
enum { PS_METHOD = 1, PS_SCHEME = 2, PS_PATH = 4, PS_AUTHORITY = 8 };

#define NV(n, v, vl)                                                                       \
	{                                                                                  \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE \
	}
#define NVS(n, v) NV(n, v, sizeof(v) - 1)

#define CT_GRPC "application/grpc"
#define BAD_PATH_MAX 128
#define OBUF_KEEP (64u * 1024u) /* an empty output buffer larger than this is freed */

static const uint8_t empty_msg[1];

/* ---- wire helpers ---- */

int grpc_timeout_parse(const char *v, size_t len, uint64_t *ms)
{
	uint64_t n = 0;

	/* TimeoutValue: 1 to 8 ASCII digits; TimeoutUnit: one of HMSmun. */
	if (len < 2 || len > 9)
		return -1;
	for (size_t i = 0; i + 1 < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	switch (v[len - 1]) {
	case 'H':
		*ms = n * 3600000u;
		break;
	case 'M':
		*ms = n * 60000u;
		break;
	case 'S':
		*ms = n * 1000u;
		break;
	case 'm':
		*ms = n;
		break;
	case 'u':
		*ms = (n + 999u) / 1000u;
		break;
	case 'n':
		*ms = (n + 999999u) / 1000000u;
		break;
	default:
		return -1;
	}
	return 0;
}

size_t grpc_percent_encode(const char *in, size_t inlen, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (outsz == 0)
		return 0;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char ch = (unsigned char)in[i];

		/* Percent-Byte-Unencoded: %x20-%x24 / %x26-%x7E */
		if (ch >= 0x20 && ch <= 0x7e && ch != '%') {
			if (o + 1 >= outsz)
				break;
			out[o++] = (char)ch;
		} else {
			if (o + 3 >= outsz)
				break;
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return o;
}

/* Encode at most GRPC_MAX_STATUS_MSG bytes of msg, cut before a partial
 * UTF-8 sequence.  out has 3 * GRPC_MAX_STATUS_MSG + 1 bytes. */
static size_t status_msg_encode(const char *msg, char *out)
{
	size_t len;

	if (msg == NULL) {
		out[0] = '\0';
		return 0;
	}
	len = strnlen(msg, GRPC_MAX_STATUS_MSG + 1);
	if (len > GRPC_MAX_STATUS_MSG) {
		len = GRPC_MAX_STATUS_MSG;
		while (len > 0 && ((unsigned char)msg[len] & 0xc0) == 0x80)
			len--;
	}
	return grpc_percent_encode(msg, len, out, 3 * GRPC_MAX_STATUS_MSG + 1);
}

static bool hdr_is(const uint8_t *name, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(name, lit, len) == 0;
}

/* "application/grpc", optionally followed by "+subtype" or ";params". */
static bool content_type_ok(const uint8_t *v, size_t len)
{
	size_t n = sizeof(CT_GRPC) - 1;

	if (len < n || memcmp(v, CT_GRPC, n) != 0)
		return false;
	return len == n || v[n] == '+' || v[n] == ';';
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- streams ---- */

static struct h2_stream *stream_get(nghttp2_session *sess, int32_t id)
{
	return nghttp2_session_get_stream_user_data(sess, id);
}

static struct h2_stream *stream_new(struct grpc_conn *c, int32_t id)
{
	struct h2_stream *st;

	if (!conn_charge(c, sizeof *st, GRPC_NGHTTP2_RESERVE))
		return NULL;
	st = calloc(1, sizeof *st);
	if (st == NULL) {
		conn_uncharge(c, sizeof *st);
		return NULL;
	}
	st->conn = c;
	st->id = id;
	LIST_INSERT_HEAD(&c->streams, st, link);
	c->nstreams++;
	c->srv->st.streams++;
	return st;
}

static void stream_drop_request(struct h2_stream *st)
{
	if (st->mbuf != NULL) {
		free(st->mbuf);
		conn_uncharge(st->conn, st->mcap);
		st->mbuf = NULL;
		st->mcap = 0;
	}
}

static void stream_drop_output(struct h2_stream *st)
{
	if (st->obuf != NULL) {
		free(st->obuf);
		conn_uncharge(st->conn, st->ocap);
		st->obuf = NULL;
		st->ocap = st->olen = st->ooff = 0;
	}
}

void stream_free(struct h2_stream *st, bool notify, struct grpc_call **cancel_list)
{
	struct grpc_conn *c = st->conn;
	struct grpc_call *call = st->call;

	if (st->deadline != NULL)
		loop_timer_cancel(c->srv->loop, st->deadline);
	LIST_REMOVE(st, link);
	conn_stream_gone(c);
	stream_drop_request(st);
	stream_drop_output(st);
	if (st->tr_msg != NULL) {
		free(st->tr_msg);
		conn_uncharge(c, st->tr_msg_size);
	}
	if (st->bad_path != NULL) {
		conn_uncharge(c, st->bad_path_size);
		free(st->bad_path);
	}
	free(st);
	conn_uncharge(c, sizeof *st);

	if (call == NULL)
		return;
	call->st = NULL;
	if (call->state != CALL_LIVE) {
		if (call->refs == 0)
			free(call);
		return;
	}
	call->state = CALL_CANCELLED;
	if (call->on_cancel == NULL) {
		if (call->refs == 0)
			free(call); /* cannot happen: a live call has a reference */
		return;
	}
	call->refs++;
	if (notify) {
		call->on_cancel(call, call->cancel_arg);
		grpc_call_unref(call);
	} else {
		call->cancel_next = *cancel_list;
		*cancel_list = call;
	}
}

void stream_notify_cancels(struct grpc_call *list)
{
	while (list != NULL) {
		struct grpc_call *call = list;

		list = call->cancel_next;
		call->cancel_next = NULL;
		call->on_cancel(call, call->cancel_arg);
		grpc_call_unref(call);
	}
}

/* ---- responses ---- */

static void stream_reset(struct h2_stream *st, uint32_t code)
{
	if (nghttp2_submit_rst_stream(st->conn->sess, NGHTTP2_FLAG_NONE, st->id, code) != 0)
		conn_fail(st->conn, "cannot reset a stream");
}

/* HEADERS with END_STREAM: the whole answer in one frame. */
static void stream_trailers_only(struct h2_stream *st, const char *http_status, int code,
				 const char *msg, bool accept_encoding)
{
	char codebuf[16], enc[3 * GRPC_MAX_STATUS_MSG + 1];
	size_t elen = status_msg_encode(msg, enc);
	nghttp2_nv nva[5] = {
		NV(":status", http_status, strlen(http_status)),
		NVS("content-type", CT_GRPC),
	};
	size_t n = 2;

	snprintf(codebuf, sizeof codebuf, "%d", code);
	nva[n++] = (nghttp2_nv)NV("grpc-status", codebuf, strlen(codebuf));
	if (elen > 0)
		nva[n++] = (nghttp2_nv)NV("grpc-message", enc, elen);
	if (accept_encoding)
		nva[n++] = (nghttp2_nv)NVS("grpc-accept-encoding", "identity");
	st->answered = true;
	st->ended = true;
	stream_drop_request(st);
	if (nghttp2_submit_response(st->conn->sess, st->id, nva, n, NULL) != 0)
		stream_reset(st, NGHTTP2_INTERNAL_ERROR);
}

/* An error found before the handler ran. */
static void stream_reject(struct h2_stream *st, const char *http_status, int code,
			  const char *msg)
{
	log_debug("grpc: conn %llu stream %d: %s: %s", (unsigned long long)st->conn->id,
		  (int)st->id, crisp_code_name(code), msg);
	stream_trailers_only(st, http_status, code, msg, false);
}

static void stream_fail(struct h2_stream *st, int code, const char *msg)
{
	stream_reject(st, "200", code, msg);
}

static ssize_t data_read(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *src, void *ud);

static int stream_start_response(struct h2_stream *st)
{
	nghttp2_nv nva[] = {
		NVS(":status", "200"),
		NVS("content-type", CT_GRPC),
	};
	nghttp2_data_provider prd;

	if (st->resp_started)
		return 0;
	prd.source.ptr = st;
	prd.read_callback = data_read;
	if (nghttp2_submit_response(st->conn->sess, st->id, nva, ARRAY_SIZE(nva), &prd) != 0)
		return -1;
	st->resp_started = true;
	return 0;
}

static void stream_resume(struct h2_stream *st)
{
	if (!st->deferred)
		return;
	st->deferred = false;
	if (nghttp2_session_resume_data(st->conn->sess, st->id) != 0)
		conn_fail(st->conn, "cannot resume a stream");
}

static void submit_trailers(nghttp2_session *sess, struct h2_stream *st)
{
	char codebuf[16];
	nghttp2_nv nva[2];
	size_t n = 0;

	snprintf(codebuf, sizeof codebuf, "%d", st->tr_code);
	nva[n++] = (nghttp2_nv)NV("grpc-status", codebuf, strlen(codebuf));
	if (st->tr_msg != NULL)
		nva[n++] = (nghttp2_nv)NV("grpc-message", st->tr_msg, strlen(st->tr_msg));
	if (nghttp2_submit_trailer(sess, st->id, nva, n) != 0)
		stream_reset(st, NGHTTP2_INTERNAL_ERROR);
}

static ssize_t data_read(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2_stream *st = src->ptr;
	size_t n = st->olen - st->ooff;

	(void)id;
	(void)ud;
	if (n > length)
		n = length;
	if (n > 0) {
		memcpy(buf, st->obuf + st->ooff, n);
		st->ooff += n;
		if (st->ooff == st->olen) {
			st->ooff = st->olen = 0;
			if (st->ocap > OBUF_KEEP)
				stream_drop_output(st);
		}
	}
	if (st->olen == 0 && st->trailer_pending) {
		st->trailer_pending = false;
		*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		submit_trailers(sess, st);
		return (ssize_t)n;
	}
	if (n == 0) {
		st->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

/* End the response: trailers after what was sent, or trailers-only. */
static void stream_end(struct h2_stream *st, int code, const char *msg)
{
	char enc[3 * GRPC_MAX_STATUS_MSG + 1];
	size_t elen;

	if (st->ended)
		return;
	if (!st->resp_started) {
		stream_trailers_only(st, "200", code, msg, false);
		return;
	}
	st->answered = true;
	st->ended = true;
	st->tr_code = code;
	elen = status_msg_encode(msg, enc);
	if (elen > 0 && conn_charge(st->conn, elen + 1, 0)) {
		st->tr_msg = malloc(elen + 1);
		if (st->tr_msg != NULL) {
			memcpy(st->tr_msg, enc, elen + 1);
			st->tr_msg_size = elen + 1;
		} else {
			conn_uncharge(st->conn, elen + 1);
		}
	}
	/* Without memory for the message, the status goes alone. */
	st->trailer_pending = true;
	stream_resume(st);
}

/* Queue one length-prefixed message.  -1: over the connection's budget. */
static int stream_queue_msg(struct h2_stream *st, const uint8_t *msg, size_t len)
{
	size_t live = st->olen - st->ooff, need;

	if (len > SIZE_MAX - GRPC_PREFIX_LEN - live)
		return -1;
	need = live + GRPC_PREFIX_LEN + len;
	if (st->ooff > 0) {
		memmove(st->obuf, st->obuf + st->ooff, live);
		st->olen = live;
		st->ooff = 0;
	}
	if (need > st->ocap) {
		size_t cap = need + (need / 4 < OBUF_KEEP ? need / 4 : OBUF_KEEP);
		uint8_t *p;

		if (cap < 1024)
			cap = 1024;
		if (!conn_charge(st->conn, cap - st->ocap, GRPC_NGHTTP2_RESERVE))
			return -1;
		p = realloc(st->obuf, cap);
		if (p == NULL) {
			conn_uncharge(st->conn, cap - st->ocap);
			return -1;
		}
		st->obuf = p;
		st->ocap = cap;
	}
	st->obuf[st->olen] = 0;
	st->obuf[st->olen + 1] = (uint8_t)(len >> 24);
	st->obuf[st->olen + 2] = (uint8_t)(len >> 16);
	st->obuf[st->olen + 3] = (uint8_t)(len >> 8);
	st->obuf[st->olen + 4] = (uint8_t)len;
	if (len > 0)
		memcpy(st->obuf + st->olen + GRPC_PREFIX_LEN, msg, len);
	st->olen += GRPC_PREFIX_LEN + len;
	return 0;
}

/* ---- deadlines ---- */

static void call_cancel(struct grpc_call *call)
{
	if (call == NULL || call->state != CALL_LIVE)
		return;
	call->state = CALL_CANCELLED;
	if (call->on_cancel == NULL)
		return;
	call->refs++;
	call->on_cancel(call, call->cancel_arg);
	grpc_call_unref(call);
}

static void deadline_cb(struct loop *l, void *arg)
{
	struct h2_stream *st = arg;
	struct grpc_conn *c = st->conn;

	(void)l;
	st->deadline = NULL;
	conn_enter(c);
	if (!c->dead && !st->ended) {
		log_debug("grpc: conn %llu stream %d: deadline exceeded",
			  (unsigned long long)c->id, (int)st->id);
		stream_end(st, CRISP_DEADLINE_EXCEEDED, "deadline exceeded");
		call_cancel(st->call);
	}
	conn_leave(c);
}

/* ---- requests ---- */

/* The request headers are complete: check them (in grpc-go's order). */
static void stream_headers_done(struct h2_stream *st)
{
	struct grpc_conn *c = st->conn;
	char msg[BAD_PATH_MAX + 32];

	if (st->answered)
		return;
	st->headers_done = true;
	if (st->hdr_malformed ||
	    (st->pseudo_seen & (PS_METHOD | PS_SCHEME | PS_PATH)) != (PS_METHOD | PS_SCHEME | PS_PATH)) {
		log_debug("grpc: conn %llu stream %d: malformed request headers",
			  (unsigned long long)c->id, (int)st->id);
		st->answered = true;
		stream_reset(st, NGHTTP2_PROTOCOL_ERROR);
	} else if (st->hdr_too_big) {
		stream_fail(st, CRISP_RESOURCE_EXHAUSTED, "grpc: request header list too large");
	} else if (!st->ct_ok) {
		stream_reject(st, "415", CRISP_INTERNAL, "invalid gRPC request content-type");
	} else if (!st->is_post) {
		stream_reject(st, "405", CRISP_INTERNAL, "gRPC requests must be POST");
	} else if (st->timeout_bad) {
		stream_reject(st, "400", CRISP_INTERNAL, "malformed grpc-timeout");
	} else if (st->method == NULL) {
		snprintf(msg, sizeof msg, "unknown method %s", st->bad_path ? st->bad_path : "");
		stream_fail(st, CRISP_UNIMPLEMENTED, msg);
	} else if (st->enc_bad) {
		log_debug("grpc: conn %llu stream %d: unsupported grpc-encoding",
			  (unsigned long long)c->id, (int)st->id);
		stream_trailers_only(st, "200", CRISP_UNIMPLEMENTED,
				     "grpc: unsupported grpc-encoding", true);
	} else if (st->timeout_seen) {
		uint64_t now = crisp_now_ms();

		st->deadline_ms = st->timeout_ms > UINT64_MAX - now ? UINT64_MAX : now + st->timeout_ms;
		st->deadline = loop_timer_add(c->srv->loop, st->timeout_ms, deadline_cb, st);
		if (st->deadline == NULL)
			stream_fail(st, CRISP_RESOURCE_EXHAUSTED, "out of memory");
	}
}

static void stream_dispatch(struct h2_stream *st)
{
	struct grpc_conn *c = st->conn;
	struct grpc_call *call;

	call = calloc(1, sizeof *call);
	if (call == NULL) {
		stream_fail(st, CRISP_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	call->st = st;
	call->refs = 1; /* the handler's, dropped when it returns */
	call->state = CALL_LIVE;
	call->streaming = st->method->server_streaming;
	call->deadline_ms = st->deadline_ms;
	call->peer = c->cred;
	st->call = call;
	st->dispatched = true;
	/* Neither the stream nor the connection can go away during the call:
	 * both are only freed from nghttp2 callbacks or conn_leave, which the
	 * handler cannot reach. */
	st->method->fn(call, st->mbuf != NULL ? st->mbuf : empty_msg, st->mlen, c->srv->arg);
	stream_drop_request(st);
	grpc_call_unref(call);
}

/* END_STREAM from the client. */
static void stream_request_end(struct h2_stream *st)
{
	st->req_ended = true;
	if (st->answered || !st->headers_done)
		return;
	if (st->hdr_malformed) {
		/* malformed trailers (RFC 9113 8.1): the request is malformed */
		st->answered = true;
		stream_reset(st, NGHTTP2_PROTOCOL_ERROR);
	} else if (st->hdr_too_big)
		stream_fail(st, CRISP_RESOURCE_EXHAUSTED, "grpc: request header list too large");
	else if (!st->msg_done && st->pfx_have > 0)
		stream_fail(st, CRISP_INTERNAL, "grpc: truncated message");
	else if (!st->msg_done)
		stream_fail(st, CRISP_INTERNAL, "grpc: no request message");
	else if (st->deadline_ms != 0 && crisp_now_ms() >= st->deadline_ms)
		stream_fail(st, CRISP_DEADLINE_EXCEEDED, "deadline exceeded");
	else
		stream_dispatch(st);
}

/* The 5-byte prefix is complete: check it.  false: the stream was answered. */
static bool stream_prefix_done(struct h2_stream *st)
{
	uint32_t max = st->conn->srv->lim.max_recv_msg_size;
	char msg[96];

	st->mlen = be32(st->pfx + 1);
	if (st->pfx[0] == 1) {
		stream_fail(st, CRISP_INTERNAL,
			    "grpc: compressed flag set with identity or empty encoding");
		return false;
	}
	if (st->pfx[0] != 0) {
		stream_fail(st, CRISP_INTERNAL, "grpc: received unexpected payload format");
		return false;
	}
	if (st->mlen > max) {
		snprintf(msg, sizeof msg, "grpc: received message larger than max (%u vs. %u)",
			 st->mlen, max);
		stream_fail(st, CRISP_RESOURCE_EXHAUSTED, msg);
		return false;
	}
	if (st->mlen == 0)
		st->msg_done = true;
	return true;
}

static bool stream_grow(struct h2_stream *st, uint32_t need)
{
	uint32_t cap;
	uint8_t *p;

	if (need <= st->mcap)
		return true;
	cap = st->mcap ? (st->mcap > UINT32_MAX / 2 ? UINT32_MAX : st->mcap * 2) : 4096;
	if (cap < need)
		cap = need;
	if (cap > st->mlen)
		cap = st->mlen;
	if (!conn_charge(st->conn, cap - st->mcap, GRPC_NGHTTP2_RESERVE))
		return false;
	p = realloc(st->mbuf, cap);
	if (p == NULL) {
		conn_uncharge(st->conn, cap - st->mcap);
		return false;
	}
	st->mbuf = p;
	st->mcap = cap;
	return true;
}

static void stream_body(struct h2_stream *st, const uint8_t *data, size_t len)
{
	while (len > 0 && !st->answered) {
		size_t take;

		if (st->msg_done) {
			stream_fail(st, CRISP_INTERNAL, "grpc: more than one request message");
			return;
		}
		if (st->pfx_have < GRPC_PREFIX_LEN) {
			take = GRPC_PREFIX_LEN - st->pfx_have;
			if (take > len)
				take = len;
			memcpy(st->pfx + st->pfx_have, data, take);
			st->pfx_have = (uint8_t)(st->pfx_have + take);
			data += take;
			len -= take;
			if (st->pfx_have == GRPC_PREFIX_LEN && !stream_prefix_done(st))
				return;
			continue;
		}
		take = st->mlen - st->mhave;
		if (take > len)
			take = len;
		if (!stream_grow(st, st->mhave + (uint32_t)take)) {
			stream_fail(st, CRISP_RESOURCE_EXHAUSTED,
				    "grpc: connection buffer limit reached");
			return;
		}
		memcpy(st->mbuf + st->mhave, data, take);
		st->mhave += (uint32_t)take;
		data += take;
		len -= take;
		if (st->mhave == st->mlen)
			st->msg_done = true;
	}
}

/* ---- nghttp2 callbacks ---- */

int h2_on_begin_headers(nghttp2_session *sess, const nghttp2_frame *f, void *ud)
{
	struct grpc_conn *c = ud;
	struct h2_stream *st;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (c->dead)
		return 0;
	/* nghttp2 enforces our SETTINGS_MAX_CONCURRENT_STREAMS already; this
	 * also holds before the client has seen them. */
	if (c->nstreams >= c->srv->lim.max_streams_per_conn ||
	    (st = stream_new(c, f->hd.stream_id)) == NULL) {
		if (nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, f->hd.stream_id,
					      NGHTTP2_REFUSED_STREAM) != 0)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		return 0;
	}
	if (nghttp2_session_set_stream_user_data(sess, f->hd.stream_id, st) != 0) {
		stream_free(st, true, NULL);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return 0;
}

/*
 * RFC 9113 section 8 request rules, which nghttp2 would enforce with HTTP
 * messaging on (it is off, see grpc.c): names are lower-case tokens;
 * pseudo-headers are :method, :scheme, :path and :authority, each at most
 * once, all before any regular field; no connection-specific fields; "te"
 * only "trailers"; values without NUL, CR or LF.  :authority may be any
 * visible ASCII (grpc-go puts the socket path there).  A request that breaks
 * a rule is reset with PROTOCOL_ERROR once its headers are complete.
 */
static bool tchar(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool h2_check_header(struct h2_stream *st, const uint8_t *name, size_t namelen,
			    const uint8_t *value, size_t valuelen)
{
	static const char *const conn_specific[] = { "connection", "keep-alive", "proxy-connection",
						     "transfer-encoding", "upgrade" };

	if (namelen == 0)
		return false;
	for (size_t i = 0; i < valuelen; i++)
		if (value[i] == '\0' || value[i] == '\r' || value[i] == '\n')
			return false;
	if (name[0] == ':') {
		uint8_t bit;

		if (st->regular_seen)
			return false;
		if (hdr_is(name, namelen, ":method"))
			bit = PS_METHOD;
		else if (hdr_is(name, namelen, ":scheme"))
			bit = PS_SCHEME;
		else if (hdr_is(name, namelen, ":path"))
			bit = PS_PATH;
		else if (hdr_is(name, namelen, ":authority"))
			bit = PS_AUTHORITY;
		else
			return false;
		if (st->pseudo_seen & bit)
			return false;
		st->pseudo_seen |= bit;
		if (bit == PS_SCHEME)
			return (valuelen == 4 && !memcmp(value, "http", 4)) ||
			       (valuelen == 5 && !memcmp(value, "https", 5));
		if (bit == PS_PATH)
			return valuelen > 0 && value[0] == '/';
		if (bit == PS_AUTHORITY)
			for (size_t i = 0; i < valuelen; i++)
				if (value[i] < 0x21 || value[i] > 0x7e)
					return false;
		return true;
	}
	st->regular_seen = true;
	for (size_t i = 0; i < namelen; i++)
		if (!tchar(name[i]))
			return false;
	for (size_t i = 0; i < ARRAY_SIZE(conn_specific); i++)
		if (hdr_is(name, namelen, conn_specific[i]))
			return false;
	if (hdr_is(name, namelen, "te") && !(valuelen == 8 && !memcmp(value, "trailers", 8)))
		return false;
	return true;
}

int h2_on_header(nghttp2_session *sess, const nghttp2_frame *f, const uint8_t *name,
		 size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	struct grpc_conn *c = ud;
	struct h2_stream *st;
	uint32_t max = c->srv->lim.max_header_list_size;
	size_t add = namelen + valuelen + 32; /* RFC 9113 6.5.2 */

	(void)flags;
	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	st = stream_get(sess, f->hd.stream_id);
	if (st == NULL || st->answered || st->hdr_too_big)
		return 0;
	if (add > max - st->hdr_bytes) {
		st->hdr_too_big = true;
		return 0;
	}
	st->hdr_bytes += (uint32_t)add;
	if (f->headers.cat != NGHTTP2_HCAT_REQUEST) {
		/* trailers: counted, checked (no pseudo-headers, the same name
		 * and value rules), otherwise ignored */
		st->regular_seen = true;
		if ((namelen > 0 && name[0] == ':') || !h2_check_header(st, name, namelen, value, valuelen))
			st->hdr_malformed = true;
		return 0;
	}
	if (!h2_check_header(st, name, namelen, value, valuelen)) {
		st->hdr_malformed = true;
		return 0;
	}

	if (hdr_is(name, namelen, ":method")) {
		st->is_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
	} else if (hdr_is(name, namelen, ":path")) {
		st->method = grpc_server_method(c->srv, value, valuelen);
		if (st->method == NULL && st->bad_path == NULL) {
			size_t n = valuelen < BAD_PATH_MAX ? valuelen : BAD_PATH_MAX;

			if (conn_charge(c, n + 1, GRPC_NGHTTP2_RESERVE)) {
				st->bad_path = malloc(n + 1);
				if (st->bad_path != NULL) {
					memcpy(st->bad_path, value, n);
					st->bad_path[n] = '\0';
					st->bad_path_size = n + 1;
				} else {
					conn_uncharge(c, n + 1);
				}
			}
		}
	} else if (hdr_is(name, namelen, "content-type")) {
		/* A repeated content-type is not a gRPC request. */
		st->ct_ok = !st->ct_seen && content_type_ok(value, valuelen);
		st->ct_seen = true;
	} else if (hdr_is(name, namelen, "grpc-encoding")) {
		if (!(valuelen == 8 && memcmp(value, "identity", 8) == 0))
			st->enc_bad = true;
	} else if (hdr_is(name, namelen, "grpc-timeout")) {
		if (st->timeout_seen ||
		    grpc_timeout_parse((const char *)value, valuelen, &st->timeout_ms) < 0)
			st->timeout_bad = true;
		st->timeout_seen = true;
	}
	return 0;
}

int h2_on_frame_recv(nghttp2_session *sess, const nghttp2_frame *f, void *ud)
{
	struct grpc_conn *c = ud;
	struct h2_stream *st;

	switch (f->hd.type) {
	case NGHTTP2_SETTINGS:
		c->hs_done = true;
		break;
	case NGHTTP2_GOAWAY:
		log_debug("grpc: conn %llu: GOAWAY from client (error %u)",
			  (unsigned long long)c->id, f->goaway.error_code);
		break;
	case NGHTTP2_HEADERS:
		st = stream_get(sess, f->hd.stream_id);
		if (st == NULL)
			break;
		if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
			stream_headers_done(st);
		else if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
			st->hdr_malformed = true; /* a second header block must end the request */
		if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
			stream_request_end(st);
		break;
	case NGHTTP2_DATA:
		st = stream_get(sess, f->hd.stream_id);
		if (st != NULL && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
			stream_request_end(st);
		break;
	default:
		break;
	}
	return 0;
}

int h2_on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data,
		     size_t len, void *ud)
{
	struct h2_stream *st = stream_get(sess, id);

	(void)flags;
	(void)ud;
	if (st == NULL || st->answered || !st->headers_done || st->dispatched)
		return 0;
	stream_body(st, data, len);
	return 0;
}

int h2_on_frame_send(nghttp2_session *sess, const nghttp2_frame *f, void *ud)
{
	struct h2_stream *st;

	(void)ud;
	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	st = stream_get(sess, f->hd.stream_id);
	/* Our answer is complete while the client still sends: stop it, so
	 * that the stream closes and nothing more is read for it. */
	if (st != NULL && !st->req_ended)
		stream_reset(st, NGHTTP2_NO_ERROR);
	return 0;
}

int h2_on_stream_close(nghttp2_session *sess, int32_t id, uint32_t error_code, void *ud)
{
	struct h2_stream *st = stream_get(sess, id);

	(void)ud;
	if (st == NULL)
		return 0;
	if (error_code != NGHTTP2_NO_ERROR)
		log_debug("grpc: conn %llu stream %d: reset (error %u)",
			  (unsigned long long)st->conn->id, (int)id, error_code);
	nghttp2_session_set_stream_user_data(sess, id, NULL);
	stream_free(st, true, NULL);
	return 0;
}

/* ---- the call API ---- */

/* The stream of a call that can still be answered, or NULL with errno. */
static struct h2_stream *call_stream(const struct grpc_call *c)
{
	if (c == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if (c->state == CALL_DONE) {
		errno = EALREADY;
		return NULL;
	}
	if (c->state == CALL_CANCELLED || c->st == NULL || c->st->conn->dead) {
		errno = ECANCELED;
		return NULL;
	}
	return c->st;
}

struct grpc_call *grpc_call_ref(struct grpc_call *c)
{
	if (c != NULL)
		c->refs++;
	return c;
}

void grpc_call_unref(struct grpc_call *c)
{
	if (c == NULL)
		return;
	if (c->refs == 0) {
		log_error("grpc: call unreferenced once too often");
		return;
	}
	if (--c->refs > 0)
		return;
	if (c->state == CALL_LIVE) {
		/* Nobody can answer it any more. */
		c->state = CALL_DONE;
		if (c->st != NULL && !c->st->conn->dead) {
			stream_end(c->st, CRISP_INTERNAL, "call abandoned by handler");
			conn_kick(c->st->conn);
		}
	}
	if (c->st == NULL)
		free(c);
}

/* The message is over max_send_msg_size: end the call, as grpc-go does. */
static int call_too_big(struct grpc_call *c, struct h2_stream *st, size_t len)
{
	char msg[96];

	snprintf(msg, sizeof msg, "grpc: trying to send message larger than max (%zu vs. %u)",
		 len, st->conn->srv->lim.max_send_msg_size);
	c->state = CALL_DONE;
	stream_end(st, CRISP_RESOURCE_EXHAUSTED, msg);
	conn_kick(st->conn);
	errno = EMSGSIZE;
	return -1;
}

static int call_queue(struct h2_stream *st, const uint8_t *msg, size_t len)
{
	if (stream_queue_msg(st, msg, len) < 0) {
		log_info("grpc: conn %llu: output buffer full, dropping the connection",
			 (unsigned long long)st->conn->id);
		conn_fail(st->conn, "output buffer full");
		errno = ENOBUFS;
		return -1;
	}
	if (stream_start_response(st) < 0) {
		conn_fail(st->conn, "cannot submit a response");
		errno = ENOBUFS;
		return -1;
	}
	stream_resume(st);
	return 0;
}

int grpc_call_send(struct grpc_call *c, const uint8_t *msg, size_t len)
{
	struct h2_stream *st = call_stream(c);

	if (st == NULL)
		return -1;
	if (!c->streaming || (msg == NULL && len > 0)) {
		errno = EINVAL;
		return -1;
	}
	if (len > st->conn->srv->lim.max_send_msg_size)
		return call_too_big(c, st, len);
	if (call_queue(st, msg, len) < 0)
		return -1;
	conn_kick(st->conn);
	return 0;
}

int grpc_call_reply(struct grpc_call *c, const uint8_t *msg, size_t len)
{
	struct h2_stream *st = call_stream(c);

	if (st == NULL)
		return -1;
	if (msg == NULL && len > 0) {
		errno = EINVAL;
		return -1;
	}
	if (len > st->conn->srv->lim.max_send_msg_size)
		return call_too_big(c, st, len);
	if (call_queue(st, msg, len) < 0)
		return -1;
	c->state = CALL_DONE;
	stream_end(st, CRISP_OK, NULL);
	conn_kick(st->conn);
	return 0;
}

int grpc_call_finish(struct grpc_call *c, int code, const char *message)
{
	struct h2_stream *st = call_stream(c);

	if (st == NULL)
		return -1;
	if (code < 0 || code > CRISP_UNAUTHENTICATED)
		code = CRISP_UNKNOWN;
	c->state = CALL_DONE;
	stream_end(st, code, message);
	conn_kick(st->conn);
	return 0;
}

int grpc_call_on_cancel(struct grpc_call *c, void (*fn)(struct grpc_call *c, void *arg),
			void *arg)
{
	if (call_stream(c) == NULL)
		return -1;
	c->on_cancel = fn;
	c->cancel_arg = arg;
	return 0;
}

uint64_t grpc_call_deadline_ms(const struct grpc_call *c)
{
	return c->deadline_ms;
}

const struct ucred *grpc_call_peer(const struct grpc_call *c)
{
	return &c->peer;
}

bool grpc_call_is_live(const struct grpc_call *c)
{
	return call_stream(c) != NULL;
}
