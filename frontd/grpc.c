/*
 * crisp frontd: gRPC transport, server side.  This file: the server, the
 * listening socket, connections (accept, SO_PEERCRED, limits), socket I/O
 * that drives one nghttp2 server session per connection with
 * nghttp2_session_mem_recv()/mem_send(), per-connection memory accounting
 * (nghttp2 allocates through us, so its memory counts against the
 * connection's budget), and the connection timers.  Streams, request
 * parsing, responses and the call API are in grpc_call.c.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "frontd/grpc_int.h"

#define MIB (1024u * 1024u)
#define ACCEPT_BATCH 32
#define ACCEPT_PAUSE_MS 100
#define READS_PER_WAKEUP 4
#define TIMER_PERIOD_MAX_MS 60000u

/* ---- limits ---- */

static uint32_t dflt(uint32_t v, uint32_t d)
{
	return v ? v : d;
}

static int limits_fill(struct grpc_limits *out, const struct grpc_limits *in, crisp_err_t *err)
{
	struct grpc_limits z;
	uint64_t buf;

	if (in == NULL) {
		memset(&z, 0, sizeof z);
		in = &z;
	}
	out->max_connections = dflt(in->max_connections, 64);
	out->max_streams_per_conn = dflt(in->max_streams_per_conn, 100);
	out->max_recv_msg_size = dflt(in->max_recv_msg_size, 16 * MIB);
	out->max_send_msg_size = dflt(in->max_send_msg_size, 16 * MIB);
	out->max_header_list_size = dflt(in->max_header_list_size, 16 * 1024);
	out->initial_window_size = dflt(in->initial_window_size, 1 * MIB);
	buf = (uint64_t)out->max_recv_msg_size + out->max_send_msg_size + 4 * MIB;
	if (buf > UINT32_MAX)
		buf = UINT32_MAX;
	out->max_conn_buffer = dflt(in->max_conn_buffer, (uint32_t)buf);
	out->handshake_timeout_ms = dflt(in->handshake_timeout_ms, 10000);
	out->idle_timeout_ms = dflt(in->idle_timeout_ms, 300000);
	out->write_timeout_ms = dflt(in->write_timeout_ms, 30000);

	if (out->initial_window_size > NGHTTP2_MAX_WINDOW_SIZE)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, EINVAL,
				   "grpc: initial_window_size %u over %u", out->initial_window_size,
				   NGHTTP2_MAX_WINDOW_SIZE);
	if (out->max_header_list_size < 1024)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, EINVAL,
				   "grpc: max_header_list_size %u under 1024",
				   out->max_header_list_size);
	if (out->max_conn_buffer < 2 * GRPC_NGHTTP2_RESERVE)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, EINVAL,
				   "grpc: max_conn_buffer %u under %u", out->max_conn_buffer,
				   2 * GRPC_NGHTTP2_RESERVE);
	return 0;
}

/* ---- memory accounting ---- */

bool conn_charge(struct grpc_conn *c, size_t n, size_t reserve)
{
	size_t max = c->srv->lim.max_conn_buffer;

	if (reserve >= max || c->bytes > max - reserve || n > max - reserve - c->bytes)
		return false;
	c->bytes += n;
	c->srv->st.bytes += n;
	return true;
}

void conn_uncharge(struct grpc_conn *c, size_t n)
{
	if (n > c->bytes) {
		/* An accounting bug: never let the counters wrap. */
		log_error("grpc: conn %llu: uncharge %zu of %zu", (unsigned long long)c->id, n,
			  c->bytes);
		n = c->bytes;
	}
	c->bytes -= n;
	c->srv->st.bytes -= n;
}

/* nghttp2's allocator: a size header in front of each block. */
union mem_hdr {
	size_t size;
	max_align_t align;
};

static void *mem_malloc(size_t size, void *ud)
{
	struct grpc_conn *c = ud;
	union mem_hdr *h;

	if (size > SIZE_MAX - sizeof *h || !conn_charge(c, size + sizeof *h, 0))
		return NULL;
	h = malloc(size + sizeof *h);
	if (h == NULL) {
		conn_uncharge(c, size + sizeof *h);
		return NULL;
	}
	h->size = size;
	return h + 1;
}

static void mem_free(void *p, void *ud)
{
	union mem_hdr *h;

	if (p == NULL)
		return;
	h = (union mem_hdr *)p - 1;
	conn_uncharge(ud, h->size + sizeof *h);
	free(h);
}

static void *mem_calloc(size_t n, size_t size, void *ud)
{
	void *p;

	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	p = mem_malloc(n * size, ud);
	if (p != NULL)
		memset(p, 0, n * size);
	return p;
}

static void *mem_realloc(void *p, size_t size, void *ud)
{
	struct grpc_conn *c = ud;
	union mem_hdr *h, *nh;
	size_t old;

	if (p == NULL)
		return mem_malloc(size, ud);
	if (size > SIZE_MAX - sizeof *h)
		return NULL;
	h = (union mem_hdr *)p - 1;
	old = h->size;
	if (size > old && !conn_charge(c, size - old, 0))
		return NULL;
	nh = realloc(h, size + sizeof *h);
	if (nh == NULL) {
		if (size > old)
			conn_uncharge(c, size - old);
		return NULL;
	}
	if (size < old)
		conn_uncharge(c, old - size);
	nh->size = size;
	return nh + 1;
}

/* ---- connection life ---- */

static void conn_io(struct loop *l, int fd, uint32_t events, void *arg);
static void conn_timer_cb(struct loop *l, void *arg);

static void conn_destroy(struct grpc_conn *c)
{
	struct grpc_server *s = c->srv;
	struct grpc_call *cancels = NULL;
	struct h2_stream *st;

	log_debug("grpc: conn %llu: closed (%s)", (unsigned long long)c->id,
		  c->why ? c->why : "?");
	LIST_REMOVE(c, link);
	s->st.conns--;
	loop_del(s->loop, c->fd);
	close(c->fd);
	if (c->timer != NULL)
		loop_timer_cancel(s->loop, c->timer);
	if (c->kill_timer != NULL)
		loop_timer_cancel(s->loop, c->kill_timer);
	/* nghttp2 calls nothing of ours from here: streams go after it. */
	nghttp2_session_del(c->sess);
	c->sess = NULL;
	while ((st = LIST_FIRST(&c->streams)) != NULL)
		stream_free(st, false, &cancels);
	if (c->bytes != 0) {
		log_error("grpc: conn %llu: %zu bytes still charged", (unsigned long long)c->id,
			  c->bytes);
		s->st.bytes -= c->bytes;
	}
	free(c);
	/* Application callbacks last, when nothing of the connection is left. */
	stream_notify_cancels(cancels);
}

static void conn_kill_cb(struct loop *l, void *arg)
{
	struct grpc_conn *c = arg;

	(void)l;
	c->kill_timer = NULL;
	if (c->in_io)
		return; /* conn_leave will do it */
	conn_enter(c);
	conn_leave(c);
}

static void conn_close(struct grpc_conn *c, const char *why, bool error)
{
	if (c->dead)
		return;
	c->dead = true;
	c->why = why;
	if (error)
		c->srv->st.dropped++;
	if (c->in_io == 0 && c->kill_timer == NULL) {
		c->kill_timer = loop_timer_add(c->srv->loop, 0, conn_kill_cb, c);
		/* Out of memory: the connection timer will do it. */
	}
}

void conn_fail(struct grpc_conn *c, const char *why)
{
	conn_close(c, why, true);
}

void conn_enter(struct grpc_conn *c)
{
	c->in_io++;
}

static void conn_flush(struct grpc_conn *c)
{
	while (!c->dead) {
		ssize_t n;

		if (c->outlen == 0) {
			const uint8_t *p;

			n = nghttp2_session_mem_send(c->sess, &p);
			if (n < 0) {
				conn_fail(c, nghttp2_strerror((int)n));
				return;
			}
			if (n == 0)
				return;
			c->outp = p;
			c->outlen = (size_t)n;
			c->t_progress = crisp_now_ms();
		}
		n = send(c->fd, c->outp, c->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_fail(c, "write error");
			return;
		}
		c->outp += n;
		c->outlen -= (size_t)n;
		c->t_progress = crisp_now_ms();
	}
}

static void conn_update_events(struct grpc_conn *c)
{
	bool rd = nghttp2_session_want_read(c->sess) != 0;
	bool wr = nghttp2_session_want_write(c->sess) != 0;
	uint32_t ev;

	if (!rd && !wr && c->outlen == 0) {
		/* GOAWAY exchanged and no stream left: done. */
		conn_close(c, c->why ? c->why : "session ended", false);
		return;
	}
	/* conn_flush ran until EAGAIN or until nghttp2 had nothing more:
	 * EPOLLOUT only for bytes the socket refused. */
	ev = (rd ? EPOLLIN : 0) | (c->outlen ? EPOLLOUT : 0);
	if (ev != c->events) {
		if (loop_mod(c->srv->loop, c->fd, ev) < 0) {
			conn_fail(c, "epoll_ctl");
			return;
		}
		c->events = ev;
	}
}

void conn_leave(struct grpc_conn *c)
{
	if (--c->in_io > 0)
		return;
	if (!c->dead)
		conn_flush(c);
	if (!c->dead)
		conn_update_events(c);
	if (c->dead)
		conn_destroy(c);
}

void conn_kick(struct grpc_conn *c)
{
	if (c->in_io || c->dead)
		return;
	if (c->events & EPOLLOUT)
		return;
	if (loop_mod(c->srv->loop, c->fd, c->events | EPOLLOUT) < 0) {
		conn_fail(c, "epoll_ctl");
		return;
	}
	c->events |= EPOLLOUT;
}

void conn_stream_gone(struct grpc_conn *c)
{
	c->nstreams--;
	c->srv->st.streams--;
	if (c->nstreams == 0)
		c->t_idle = crisp_now_ms();
}

static bool timeout_on(uint32_t ms)
{
	return ms != GRPC_NO_TIMEOUT;
}

static void due_min(uint64_t *due, uint64_t from, uint32_t ms)
{
	if (timeout_on(ms) && from + ms < *due)
		*due = from + ms;
}

/* One timer per connection, at the earliest deadline that applies now, or
 * after a period, to notice deadlines that begin later (e.g. output stuck
 * after the timer was set).  So these timeouts are approximate: they may
 * fire up to one period late. */
static void conn_arm_timer(struct grpc_conn *c)
{
	const struct grpc_limits *lim = &c->srv->lim;
	uint64_t now = crisp_now_ms(), due = UINT64_MAX;
	uint32_t period = TIMER_PERIOD_MAX_MS;

	if (!c->hs_done)
		due_min(&due, c->t_accept, lim->handshake_timeout_ms);
	if (c->nstreams == 0)
		due_min(&due, c->t_idle, lim->idle_timeout_ms);
	if (c->outlen)
		due_min(&due, c->t_progress, lim->write_timeout_ms);
	if (timeout_on(lim->write_timeout_ms) && lim->write_timeout_ms < period)
		period = lim->write_timeout_ms;
	if (timeout_on(lim->idle_timeout_ms) && lim->idle_timeout_ms < period)
		period = lim->idle_timeout_ms;
	if (now + period < due)
		due = now + period;
	c->timer = loop_timer_add(c->srv->loop, due > now ? due - now : 0, conn_timer_cb, c);
	if (c->timer == NULL)
		conn_fail(c, "out of memory");
}

static void conn_timer_cb(struct loop *l, void *arg)
{
	struct grpc_conn *c = arg;
	const struct grpc_limits *lim = &c->srv->lim;
	uint64_t now = crisp_now_ms();

	(void)l;
	c->timer = NULL;
	if (c->in_io) {
		conn_arm_timer(c);
		return;
	}
	conn_enter(c);
	if (c->dead) {
		/* conn_leave destroys it */
	} else if (!c->hs_done && timeout_on(lim->handshake_timeout_ms) &&
		   now >= c->t_accept + lim->handshake_timeout_ms) {
		conn_fail(c, "handshake timeout");
	} else if (c->outlen && timeout_on(lim->write_timeout_ms) &&
		   now >= c->t_progress + lim->write_timeout_ms) {
		conn_fail(c, "write timeout");
	} else if (c->nstreams == 0 && timeout_on(lim->idle_timeout_ms) &&
		   now >= c->t_idle + lim->idle_timeout_ms) {
		if (c->goaway) {
			conn_close(c, "idle after GOAWAY", false);
		} else {
			c->goaway = true;
			c->why = "idle";
			/* GOAWAY; the session ends once it is written. */
			if (nghttp2_session_terminate_session(c->sess, NGHTTP2_NO_ERROR) != 0)
				conn_close(c, "idle", false);
		}
	}
	if (!c->dead)
		conn_arm_timer(c);
	conn_leave(c);
}

static void conn_read(struct grpc_conn *c)
{
	struct grpc_server *s = c->srv;

	for (int i = 0; i < READS_PER_WAKEUP && !c->dead; i++) {
		ssize_t n = read(c->fd, s->rbuf, sizeof s->rbuf), rv;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_fail(c, "read error");
			return;
		}
		if (n == 0) {
			conn_close(c, "closed by peer", false);
			return;
		}
		rv = nghttp2_session_mem_recv(c->sess, s->rbuf, (size_t)n);
		if (rv < 0) {
			conn_fail(c, nghttp2_strerror((int)rv));
			return;
		}
		if ((size_t)n < sizeof s->rbuf)
			return;
	}
}

static void conn_io(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct grpc_conn *c = arg;

	(void)l;
	(void)fd;
	/* A callback that ran the loop (forbidden): never re-enter nghttp2. */
	if (c->in_io)
		return;
	conn_enter(c);
	if (!c->dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		conn_read(c);
	conn_leave(c);
}

static int conn_start_session(struct grpc_conn *c)
{
	const struct grpc_limits *lim = &c->srv->lim;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim->max_streams_per_conn },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, lim->initial_window_size },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, lim->max_header_list_size },
		{ NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1 },
	};

	c->mem = (nghttp2_mem){ c, mem_malloc, mem_free, mem_calloc, mem_realloc };
	if (nghttp2_session_server_new3(&c->sess, c->srv->cbs, c, c->srv->opt, &c->mem) != 0)
		return -1;
	if (nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, ARRAY_SIZE(iv)) != 0)
		return -1;
	if (lim->initial_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE &&
	    nghttp2_session_set_local_window_size(c->sess, NGHTTP2_FLAG_NONE, 0,
						  (int32_t)lim->initial_window_size) != 0)
		return -1;
	return 0;
}

/*
 * At the connection limit, a new client takes the slot of the connection
 * that has been idle (no stream) the longest, or of one already dying.  An
 * idle HTTP/2 connection closed by the server is routine for a client (it
 * reconnects on its next call), while refusing would let a client that
 * opens connections and never closes them (critest does, one per spec)
 * lock every other client out until the idle timeout.  Connections with
 * calls in flight are never evicted.  Returns whether a slot was freed.
 */
static bool evict_idle(struct grpc_server *s)
{
	struct grpc_conn *c, *victim = NULL;

	LIST_FOREACH(c, &s->conns, link) {
		if (c->in_io)
			continue;
		if (c->dead) {
			victim = c;
			break;
		}
		/* Oldest idle first; between equals, the oldest connection. */
		if (c->nstreams == 0 &&
		    (victim == NULL || c->t_idle < victim->t_idle ||
		     (c->t_idle == victim->t_idle && c->id < victim->id)))
			victim = c;
	}
	if (victim == NULL)
		return false;
	if (!victim->dead)
		victim->why = "evicted: idle at the connection limit";
	s->st.evicted++;
	conn_destroy(victim);
	return true;
}

/* Takes ownership of fd. */
static int conn_new(struct grpc_server *s, int fd, const struct ucred *cred_in)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	struct grpc_conn *c;

	if (cred_in != NULL) {
		cred = *cred_in;
	} else if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		   len != sizeof cred) {
		log_warn("grpc: SO_PEERCRED: %s", strerror(errno));
		goto refuse;
	}
	if (s->shutting_down) {
		log_debug("grpc: refusing pid %d uid %u: shutting down", (int)cred.pid,
			  (unsigned)cred.uid);
		goto refuse;
	}
	if (s->st.conns >= s->lim.max_connections && !evict_idle(s)) {
		log_info("grpc: refusing pid %d uid %u: %u connections open, none idle", (int)cred.pid,
			 (unsigned)cred.uid, s->st.conns);
		goto refuse;
	}
	if (s->check != NULL && !s->check(&cred, s->check_arg)) {
		log_info("grpc: refusing pid %d uid %u gid %u: peer check", (int)cred.pid,
			 (unsigned)cred.uid, (unsigned)cred.gid);
		goto refuse;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL)
		goto refuse;
	c->srv = s;
	c->fd = fd;
	c->id = ++s->next_id;
	c->cred = cred;
	LIST_INIT(&c->streams);
	c->t_accept = c->t_idle = c->t_progress = crisp_now_ms();
	if (conn_start_session(c) < 0) {
		log_warn("grpc: cannot start an HTTP/2 session");
		goto fail;
	}
	c->events = EPOLLIN | EPOLLOUT; /* our SETTINGS go out at once */
	if (loop_add(s->loop, fd, c->events, conn_io, c) < 0) {
		log_warn("grpc: loop_add: %s", strerror(errno));
		goto fail;
	}
	LIST_INSERT_HEAD(&s->conns, c, link);
	s->st.conns++;
	s->st.accepted++;
	log_debug("grpc: conn %llu: accepted pid %d uid %u gid %u", (unsigned long long)c->id,
		  (int)cred.pid, (unsigned)cred.uid, (unsigned)cred.gid);
	conn_arm_timer(c);
	if (c->dead) {
		conn_destroy(c);
		return -1;
	}
	return 0;

fail:
	if (c->sess != NULL)
		nghttp2_session_del(c->sess);
	free(c);
refuse:
	s->st.refused++;
	close(fd);
	return -1;
}

/* ---- listening ---- */

static void on_accept(struct loop *l, int fd, uint32_t events, void *arg);

static void accept_resume(struct loop *l, void *arg)
{
	struct grpc_server *s = arg;

	s->accept_timer = NULL;
	if (s->shutting_down || s->listening)
		return;
	if (loop_add(l, s->lfd, EPOLLIN, on_accept, s) == 0)
		s->listening = true;
	else
		log_error("grpc: cannot listen again: %s", strerror(errno));
}

static void accept_pause(struct grpc_server *s)
{
	if (!s->listening || s->accept_timer != NULL)
		return;
	s->accept_timer = loop_timer_add(s->loop, ACCEPT_PAUSE_MS, accept_resume, s);
	if (s->accept_timer == NULL)
		return; /* keep listening: better a busy loop than a dead socket */
	loop_del(s->loop, s->lfd);
	s->listening = false;
}

static void on_accept(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct grpc_server *s = arg;

	(void)l;
	(void)events;
	for (int i = 0; i < ACCEPT_BATCH && s->listening; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EAGAIN:
#if EAGAIN != EWOULDBLOCK
			case EWOULDBLOCK:
#endif
				return;
			default:
				/* EMFILE, ENFILE, ENOBUFS, ENOMEM: wait a little. */
				log_warn("grpc: accept: %s", strerror(errno));
				accept_pause(s);
				return;
			}
		}
		(void)conn_new(s, cfd, NULL);
	}
}

/* ---- public ---- */

struct grpc_server *grpc_server_new(struct loop *l, int listen_fd, const struct grpc_method *m,
				    size_t n, const struct grpc_limits *lim, void *arg,
				    crisp_err_t *err)
{
	struct grpc_server *s;

	if (l == NULL || listen_fd < 0 || m == NULL || n == 0 || n > 4096) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, EINVAL, "grpc: bad server arguments");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (m[i].path == NULL || m[i].path[0] != '/' || m[i].fn == NULL) {
			crisp_error(err, CRISP_INVALID_ARGUMENT, EINVAL, "grpc: bad method %zu", i);
			return NULL;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(m[i].path, m[j].path) == 0) {
				crisp_error(err, CRISP_INVALID_ARGUMENT, EINVAL,
					    "grpc: method %s twice", m[i].path);
				return NULL;
			}
	}
	s = calloc(1, sizeof *s);
	if (s == NULL) {
		crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "grpc: out of memory");
		return NULL;
	}
	s->loop = l;
	s->lfd = listen_fd;
	s->arg = arg;
	LIST_INIT(&s->conns);
	if (limits_fill(&s->lim, lim, err) < 0)
		goto fail;
	s->methods = calloc(n, sizeof *s->methods);
	if (s->methods == NULL) {
		crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "grpc: out of memory");
		goto fail;
	}
	memcpy(s->methods, m, n * sizeof *m);
	s->nmethods = n;

	if (nghttp2_session_callbacks_new(&s->cbs) != 0 || nghttp2_option_new(&s->opt) != 0) {
		crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "grpc: out of memory");
		goto fail;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(s->cbs, h2_on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(s->cbs, h2_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(s->cbs, h2_on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(s->cbs, h2_on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_send_callback(s->cbs, h2_on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(s->cbs, h2_on_stream_close);

	/* crisp checks the HTTP/2 request rules itself (h2_check_header in
	 * grpc_call.c): nghttp2's own checks reject an :authority holding a
	 * unix socket path, which is what grpc-go clients of kubelet's and
	 * crictl's generation send ("/run/crisp/crisp.sock"), so the whole
	 * call would fail with PROTOCOL_ERROR. */
	nghttp2_option_set_no_http_messaging(s->opt, 1);
	/* Closed streams are forgotten at once (no RFC 7540 priority tree). */
	nghttp2_option_set_no_closed_streams(s->opt, 1);
	/* A peer that makes us queue this many SETTINGS/PING ACKs without
	 * reading them is dropped. */
	nghttp2_option_set_max_outbound_ack(s->opt, 256);
	nghttp2_option_set_max_settings(s->opt, 16);
	nghttp2_option_set_max_continuations(s->opt, 8);
	/* RST_STREAM flood ("rapid reset"): nghttp2's default token bucket. */
	nghttp2_option_set_stream_reset_rate_limit(s->opt, 1000, 33);

	if (crisp_set_nonblock(listen_fd, true) < 0 ||
	    loop_add(l, listen_fd, EPOLLIN, on_accept, s) < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "grpc: cannot watch the listening socket");
		goto fail;
	}
	s->listening = true;
	return s;

fail:
	if (s->opt != NULL)
		nghttp2_option_del(s->opt);
	if (s->cbs != NULL)
		nghttp2_session_callbacks_del(s->cbs);
	free(s->methods);
	free(s);
	return NULL;
}

void grpc_server_free(struct grpc_server *s)
{
	struct grpc_conn *c;

	if (s == NULL)
		return;
	s->shutting_down = true;
	if (s->listening)
		loop_del(s->loop, s->lfd);
	s->listening = false;
	if (s->accept_timer != NULL)
		loop_timer_cancel(s->loop, s->accept_timer);
	while ((c = LIST_FIRST(&s->conns)) != NULL) {
		if (!c->dead)
			c->why = "server freed";
		c->dead = true;
		conn_destroy(c);
	}
	nghttp2_option_del(s->opt);
	nghttp2_session_callbacks_del(s->cbs);
	free(s->methods);
	free(s);
}

void grpc_server_shutdown(struct grpc_server *s)
{
	struct grpc_conn *c;

	s->shutting_down = true;
	if (s->listening)
		loop_del(s->loop, s->lfd);
	s->listening = false;
	LIST_FOREACH(c, &s->conns, link) {
		if (c->dead)
			continue;
		c->goaway = true;
		c->why = "shutdown";
		if (nghttp2_submit_goaway(c->sess, NGHTTP2_FLAG_NONE,
					  nghttp2_session_get_last_proc_stream_id(c->sess),
					  NGHTTP2_NO_ERROR, NULL, 0) != 0)
			conn_fail(c, "GOAWAY failed");
		conn_kick(c);
	}
}

void grpc_server_set_accept_check(struct grpc_server *s,
				  bool (*fn)(const struct ucred *cred, void *arg), void *arg)
{
	s->check = fn;
	s->check_arg = arg;
}

int grpc_server_adopt(struct grpc_server *s, int fd, const struct ucred *cred)
{
	if (fd < 0)
		return -1;
	if (crisp_set_nonblock(fd, true) < 0 || crisp_set_cloexec(fd, true) < 0) {
		s->st.refused++;
		close(fd);
		return -1;
	}
	return conn_new(s, fd, cred);
}

void grpc_server_stats(const struct grpc_server *s, struct grpc_stats *st)
{
	*st = s->st;
}

const struct grpc_method *grpc_server_method(const struct grpc_server *s, const uint8_t *path,
					     size_t len)
{
	for (size_t i = 0; i < s->nmethods; i++) {
		const char *p = s->methods[i].path;

		if (strlen(p) == len && memcmp(p, path, len) == 0)
			return &s->methods[i];
	}
	return NULL;
}
