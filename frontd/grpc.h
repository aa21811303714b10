/*
 * crisp frontd: the gRPC server transport.  gRPC over HTTP/2 (nghttp2, server
 * side) on a unix stream socket, non-blocking, driven by crisp's event loop.
 *
 * It knows nothing of CRI or protobuf: it delivers one complete request
 * message (bytes) to the handler of the method named by :path, and sends what
 * the handler answers.  It parses hostile bytes, so everything is bounded
 * (struct grpc_limits) and anything malformed costs the client its stream or
 * its connection, never the process.
 *
 * Wire behaviour (grpc/doc/PROTOCOL-HTTP2.md; where the spec leaves a choice,
 * grpc-go's behaviour is followed):
 *   - Only POST with content-type "application/grpc" (optionally followed by
 *     "+..." or ";...").  Otherwise a trailers-only answer with HTTP status
 *     405 / 415 and grpc-status INTERNAL, as grpc-go does.
 *   - Unknown :path: grpc-status UNIMPLEMENTED (trailers-only).
 *   - grpc-encoding other than "identity": UNIMPLEMENTED, with
 *     grpc-accept-encoding: identity.  No codec is supported, so a message
 *     whose compressed flag is 1 gets INTERNAL (grpc-go: "compressed flag set
 *     with identity or empty encoding"); any other flag value also INTERNAL.
 *   - A message longer than max_recv_msg_size: RESOURCE_EXHAUSTED before any
 *     of it is buffered; the rest of the request is discarded.
 *   - Every method takes exactly one request message (unary and
 *     server-streaming; client streaming is not supported).  Zero messages,
 *     more than one, or a body ending inside a message (truncated) are
 *     answered INTERNAL, as current grpc-go does for cardinality violations.
 *     (The gRPC status-code table suggests UNIMPLEMENTED; grpc-go chose
 *     INTERNAL, and so do we.)
 *   - grpc-timeout (1-8 digits + H M S m u n) starts a deadline when the
 *     request headers arrive; a malformed one is INTERNAL.  When it passes,
 *     the call is cancelled and the transport answers DEADLINE_EXCEEDED.
 *   - A request header list larger than max_header_list_size (advertised in
 *     SETTINGS) is answered RESOURCE_EXHAUSTED.
 *   - Responses: ":status 200", "content-type: application/grpc", DATA with
 *     the 5-byte prefix, then trailers grpc-status and grpc-message (the
 *     latter percent-encoded, and cut to GRPC_MAX_STATUS_MSG bytes).  Errors
 *     found before a handler runs use trailers-only responses.  Once the
 *     response has ended while the client is still sending, the stream is
 *     reset with NO_ERROR so that nothing more is read for it.
 *   - Output beyond max_conn_buffer (the client is not reading) or a write
 *     stalled for write_timeout_ms drops the connection.  So do protocol
 *     errors, floods detected by nghttp2, and a bad client preface; they cost
 *     only that connection.
 *
 * Calls and their lifetime.  A handler gets a struct grpc_call that is valid
 * until the handler returns.  A handler that answers at once just calls
 * grpc_call_reply() (or grpc_call_finish()).  A handler that answers later
 * takes a reference with grpc_call_ref() before returning and drops it with
 * grpc_call_unref() when it is done with the handle, whatever happened to the
 * call in between: the object stays valid (and every operation on a call that
 * is over is a harmless -1) for as long as one reference is held.  If the last
 * reference goes while the call is still unanswered, the transport answers
 * INTERNAL ("call abandoned by handler") itself.
 *
 * All functions run on the loop's thread.  Callbacks (handlers, cancel
 * callbacks, the accept check) must not run the loop and must not free the
 * server.  Answering only queues output: the bytes are written from the loop.
 */
#ifndef CRISP_FRONTD_GRPC_H
#define CRISP_FRONTD_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/err.h"
#include "ipc/loop.h"

struct grpc_server;
struct grpc_call;

/* Every field: 0 means the default shown. */
struct grpc_limits {
	uint32_t max_connections;      /* 64: more are accepted and closed at once */
	uint32_t max_streams_per_conn; /* 100: SETTINGS_MAX_CONCURRENT_STREAMS */
	uint32_t max_recv_msg_size;    /* 16 MiB: one request message */
	uint32_t max_send_msg_size;    /* 16 MiB: one response message */
	uint32_t max_header_list_size; /* 16 KiB: SETTINGS_MAX_HEADER_LIST_SIZE */
	uint32_t initial_window_size;  /* 1 MiB: per stream and per connection */
	/* Bytes one connection may hold: request messages being received,
	 * responses not yet written, and nghttp2's own memory.  Default
	 * max_recv_msg_size + max_send_msg_size + 4 MiB. */
	uint32_t max_conn_buffer;
	/* Timeouts; GRPC_NO_TIMEOUT disables one. */
	uint32_t handshake_timeout_ms; /* 10 s: until the client's SETTINGS */
	uint32_t idle_timeout_ms;      /* 5 min with no stream: GOAWAY and close */
	uint32_t write_timeout_ms;     /* 30 s: output pending, nothing written */
};

#define GRPC_NO_TIMEOUT UINT32_MAX
/* grpc-message bytes kept by grpc_call_finish() (before percent-encoding). */
#define GRPC_MAX_STATUS_MSG 1024

/*
 * A handler.  req/len is the request message (req is never NULL); the buffer
 * belongs to the transport and is valid during the call only.  arg is the
 * server's arg.  The handler must answer the call, now or later (see above).
 */
typedef void (*grpc_handler_fn)(struct grpc_call *call, const uint8_t *req, size_t len,
				void *arg);

struct grpc_method {
	const char *path; /* "/runtime.v1.RuntimeService/Version"; must outlive the server */
	grpc_handler_fn fn;
	bool server_streaming; /* answers with grpc_call_send()... grpc_call_finish() */
};

/*
 * A server on listen_fd (a listening unix stream socket, made non-blocking
 * here; the caller keeps ownership and closes it after grpc_server_free()).
 * The method table is copied; the path strings are not.  lim may be NULL.
 * NULL on failure (err filled).
 */
struct grpc_server *grpc_server_new(struct loop *l, int listen_fd, const struct grpc_method *m,
				    size_t n, const struct grpc_limits *lim, void *arg,
				    crisp_err_t *err);

/* Close every connection (cancel callbacks of live calls run from here) and
 * free the server.  Call handles still referenced stay valid, and dead. */
void grpc_server_free(struct grpc_server *s);

/* Stop accepting and send GOAWAY on every connection; calls in progress may
 * finish.  Connections close as their last stream ends (see grpc_server_stats). */
void grpc_server_shutdown(struct grpc_server *s);

/*
 * Peer check: fn runs for each new connection with its SO_PEERCRED; false
 * refuses it (closed at once).  Without one, every peer is accepted.
 */
void grpc_server_set_accept_check(struct grpc_server *s,
				  bool (*fn)(const struct ucred *cred, void *arg), void *arg);

/*
 * Serve an already connected stream socket (ownership passes to the server,
 * even on failure).  cred NULL: read SO_PEERCRED from fd.  The accept check
 * and the connection limit apply.  For tests, fuzzers and inherited
 * connections.  0 or -1.
 */
int grpc_server_adopt(struct grpc_server *s, int fd, const struct ucred *cred);

struct grpc_stats {
	uint32_t conns;    /* open connections */
	uint32_t streams;  /* HTTP/2 streams known to the transport */
	uint64_t bytes;    /* buffered bytes, nghttp2's memory included */
	uint64_t accepted; /* connections served since start */
	uint64_t refused;  /* refused: limit, accept check, errors */
	uint64_t evicted;  /* idle connections closed to make room at the limit */
	uint64_t dropped;  /* closed for a protocol error, a limit or a timeout */
};
void grpc_server_stats(const struct grpc_server *s, struct grpc_stats *st);

/* ---- calls ---- */

struct grpc_call *grpc_call_ref(struct grpc_call *c);
void grpc_call_unref(struct grpc_call *c);

/*
 * Answering.  Each returns 0, or -1 with errno:
 *   ECANCELED  the call was cancelled (reset, connection gone, deadline)
 *   EALREADY   the call was already answered
 *   EINVAL     grpc_call_send() on a method that is not server-streaming
 *   EMSGSIZE   msg is over max_send_msg_size: the call is ended with
 *              RESOURCE_EXHAUSTED
 *   ENOBUFS    the connection's buffer is full (the client does not read):
 *              the connection is being dropped
 */
/* One message, then grpc-status 0: the call is over. */
int grpc_call_reply(struct grpc_call *c, const uint8_t *msg, size_t len);
/* Server streaming: one message; the call goes on. */
int grpc_call_send(struct grpc_call *c, const uint8_t *msg, size_t len);
/* Trailers: grpc-status code (out of 0..16 is sent as UNKNOWN) and message
 * (NULL or "" for none).  Ends an error, or a stream of messages. */
int grpc_call_finish(struct grpc_call *c, int code, const char *message);

/*
 * Cancellation: fn runs once, from the loop, when the call ends without the
 * handler having answered it: the client reset the stream, the connection
 * went away (or the server was freed), or the grpc-timeout deadline passed
 * (the transport then answers DEADLINE_EXCEEDED itself).  From then on the
 * handle is good only for grpc_call_unref() (other functions return -1).
 * Returns 0, or -1 (ECANCELED / EALREADY) when the call is already over, in
 * which case fn will never run.
 */
int grpc_call_on_cancel(struct grpc_call *c, void (*fn)(struct grpc_call *c, void *arg),
			void *arg);

/* The deadline from grpc-timeout, on the crisp_now_ms() clock; 0 = none. */
uint64_t grpc_call_deadline_ms(const struct grpc_call *c);
/* The credentials of the connection the call came on. */
const struct ucred *grpc_call_peer(const struct grpc_call *c);
/* Whether the call can still be answered. */
bool grpc_call_is_live(const struct grpc_call *c);

/* ---- wire helpers, exported for tests ---- */

/* Parse a grpc-timeout value into milliseconds (rounded up).  0 or -1. */
int grpc_timeout_parse(const char *v, size_t len, uint64_t *ms);
/* Percent-encode a grpc-message.  out gets at most outsz-1 bytes and a NUL;
 * input that does not fit is dropped at a whole escape.  Returns strlen(out). */
size_t grpc_percent_encode(const char *in, size_t inlen, char *out, size_t outsz);

#endif
