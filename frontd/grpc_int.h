/*
 * crisp frontd: internals of the gRPC transport, shared by grpc.c
 * (server, connections, socket I/O, nghttp2 session) and grpc_call.c
 * (streams: request parsing, responses, the call API).  Not an API.
 *
 * Ownership:
 *   server ─┬─ conn (list) ─┬─ nghttp2 session
 *           │               └─ h2_stream (list) ── grpc_call (while attached)
 *   A stream lives from the request's HEADERS to nghttp2's stream close.  A
 *   call is made when the request is complete and handed to the handler; it
 *   is freed when it is detached from its stream AND no application
 *   reference is left.  The stream and the call point at each other while
 *   attached; detaching clears both pointers, so a call never reaches a freed
 *   stream or connection.
 *
 * Re-entrancy: conn->in_io counts the frames of our own loop callbacks
 * working on the connection.  Inside them, output is flushed and a failed
 * connection is destroyed on the way out (conn_leave).  Outside them
 * (application code answering later) we only mark: conn_kick() arms EPOLLOUT
 * and conn_fail() schedules a zero timer, so no application callback ever
 * runs from inside another application call into this API.
 */
#ifndef CRISP_FRONTD_GRPC_INT_H
#define CRISP_FRONTD_GRPC_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <nghttp2/nghttp2.h>

#include "frontd/grpc.h"
#include "ipc/loop.h"

#define GRPC_PREFIX_LEN 5
/* Our own buffers leave this much of a connection's budget to nghttp2. */
#define GRPC_NGHTTP2_RESERVE (256u * 1024u)

enum call_state {
	CALL_LIVE = 0,  /* the handler may answer */
	CALL_DONE,      /* answered (by the handler, or for it) */
	CALL_CANCELLED, /* reset, connection gone, deadline: cancel callback ran */
};

struct h2_stream;

struct grpc_call {
	struct h2_stream *st; /* NULL once detached */
	uint32_t refs;        /* application references */
	uint8_t state;        /* enum call_state */
	bool streaming;
	void (*on_cancel)(struct grpc_call *, void *);
	void *cancel_arg;
	uint64_t deadline_ms;
	struct ucred peer;
	struct grpc_call *cancel_next; /* conn_destroy's list of calls to notify */
};

struct h2_stream {
	LIST_ENTRY(h2_stream) link;
	struct grpc_conn *conn;
	int32_t id;
	struct grpc_call *call;
	const struct grpc_method *method; /* NULL: unknown :path */

	/* request headers */
	uint32_t hdr_bytes;
	bool hdr_too_big, is_post, path_seen, ct_seen, ct_ok, enc_bad, timeout_seen,
		timeout_bad;
	/* HTTP/2 request rules, checked by crisp (see h2_check_header) */
	bool hdr_malformed, regular_seen;
	uint8_t pseudo_seen; /* bits: :method :scheme :path :authority */
	uint64_t timeout_ms;
	char *bad_path; /* unknown :path (cut), for the error message */
	size_t bad_path_size;
	bool headers_done; /* request HEADERS validated: body may follow */
	bool req_ended;    /* END_STREAM from the client */
	bool answered;     /* response decided: request bytes are ignored */
	bool dispatched;   /* handed to the handler */

	/* request body: one length-prefixed message */
	uint8_t pfx[GRPC_PREFIX_LEN];
	uint8_t pfx_have;
	bool msg_done;
	uint32_t mlen, mhave, mcap;
	uint8_t *mbuf;

	/* deadline */
	struct loop_timer *deadline;
	uint64_t deadline_ms;

	/* response */
	bool resp_started; /* HEADERS with a data provider submitted */
	bool ended;        /* trailers queued or trailers-only submitted */
	bool deferred;     /* the data provider returned NGHTTP2_ERR_DEFERRED */
	bool trailer_pending;
	int tr_code;
	char *tr_msg; /* percent-encoded, or NULL */
	size_t tr_msg_size;
	uint8_t *obuf;
	size_t olen, ooff, ocap;
};

LIST_HEAD(h2_stream_list, h2_stream);

struct grpc_conn {
	LIST_ENTRY(grpc_conn) link;
	struct grpc_server *srv;
	uint64_t id;
	int fd;
	struct ucred cred;
	nghttp2_session *sess;
	nghttp2_mem mem; /* allocator of sess: charges this connection */
	struct h2_stream_list streams;
	uint32_t nstreams;
	size_t bytes; /* charged against srv->lim.max_conn_buffer */

	/* output: a chunk from nghttp2_session_mem_send() not yet written */
	const uint8_t *outp;
	size_t outlen;

	uint32_t events; /* registered with the loop */
	int in_io;
	bool dead;
	bool hs_done; /* client SETTINGS received */
	bool goaway;  /* we sent (or queued) GOAWAY */
	const char *why; /* reason for dropping, for the log */

	uint64_t t_accept, t_idle, t_progress;
	struct loop_timer *timer;      /* handshake / idle / write stall */
	struct loop_timer *kill_timer; /* deferred destroy */
};

LIST_HEAD(grpc_conn_list, grpc_conn);

struct grpc_server {
	struct loop *loop;
	int lfd;
	bool listening, shutting_down;
	struct loop_timer *accept_timer; /* accept paused after EMFILE and friends */
	struct grpc_method *methods;
	size_t nmethods;
	struct grpc_limits lim;
	void *arg;
	bool (*check)(const struct ucred *, void *);
	void *check_arg;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	struct grpc_conn_list conns;
	uint64_t next_id;
	struct grpc_stats st;
	uint8_t rbuf[16384];
};

/* grpc.c */
bool conn_charge(struct grpc_conn *c, size_t n, size_t reserve);
void conn_uncharge(struct grpc_conn *c, size_t n);
void conn_fail(struct grpc_conn *c, const char *why);
void conn_kick(struct grpc_conn *c);
void conn_enter(struct grpc_conn *c);
void conn_leave(struct grpc_conn *c);
void conn_stream_gone(struct grpc_conn *c);
const struct grpc_method *grpc_server_method(const struct grpc_server *s, const uint8_t *path,
					     size_t len);

/* grpc_call.c: nghttp2 callbacks and stream life */
int h2_on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud);
int h2_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
		 const uint8_t *value, size_t valuelen, uint8_t flags, void *ud);
int h2_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud);
int h2_on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
		     size_t len, void *ud);
int h2_on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud);
int h2_on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud);
/* Detach a stream from its call and free it.  With notify, a live call's
 * cancel callback runs now; without, the call is put on *cancel_list (with a
 * reference) for the caller to notify with stream_notify_cancels(). */
void stream_free(struct h2_stream *st, bool notify, struct grpc_call **cancel_list);
void stream_notify_cancels(struct grpc_call *list);

#endif
