/*
 * crisp: unit tests of ipc/ (channels, framing, authentication, fd passing,
 * requests and answers, and every protocol violation).
 *
 * Two channel ends live in this one process on a socketpair, so the peer
 * pid/uid is our own.  Violations are crafted with ipc_seal on a sending
 * end that sits on a second loop which never runs, and pushed with a raw
 * sendmsg on that end's socket; the receiving end runs on the main loop.
 * Every test checks that the number of open fds is unchanged at its end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/util.h"
#include "ipc/ipc.h"
#include "ipc/ipc_internal.h"
#include "ipc/loop.h"
#include "proto/ipc.pb-c.h"

/* ---- fixture ---- */

enum mode { M_RECORD, M_ANSWER, M_ERROR, M_DEFER, M_CLOSE };

struct end {
	struct ipc_chan *ch;
	enum mode mode;
	int closes;
	bool violation;
	char reason[CRISP_ERR_MSG_MAX];
	int handled;
	uint32_t last_type;
	uint64_t deferred[16];
	int ndeferred;
	uint64_t next_ping; /* PINGs carrying an 8-byte counter must come in order */
	int order_errors;
	int answer_errors;
	int fd; /* fd taken from the last CHAN_OPEN */
	char config_root[70000];
};

struct fx {
	int fds_before;
	struct loop *l;  /* runs */
	struct loop *l2; /* never runs unless a test says so */
	int sv[2];
	uint8_t key[IPC_KEY_SIZE];
	struct end a, b;
};

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

static void on_close(struct ipc_chan *ch, bool violation, const char *reason, void *arg)
{
	struct end *e = arg;

	(void)ch;
	e->closes++;
	e->violation = violation;
	crisp_strlcpy(e->reason, reason, sizeof e->reason);
}

static void answer_condition(struct end *e, struct ipc_chan *ch, uint64_t reqid)
{
	Cipc__Condition c = CIPC__CONDITION__INIT;
	char reason[32];

	snprintf(reason, sizeof reason, "r%llu", (unsigned long long)reqid);
	c.type = "RuntimeReady";
	c.status = true;
	c.reason = reason;
	if (ipc_answer(ch, reqid, IPC_CONDITION, &c.base, -1, NULL) < 0)
		e->answer_errors++;
}

static void h_status(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct end *e = arg;
	crisp_err_t err = CRISP_ERR_INIT;

	e->handled++;
	e->last_type = m->hdr.type;
	switch (e->mode) {
	case M_RECORD:
		break;
	case M_ANSWER:
		answer_condition(e, ch, m->hdr.reqid);
		break;
	case M_ERROR:
		crisp_error(&err, CRISP_NOT_FOUND, 0, "no runtime here");
		if (ipc_answer_error(ch, m->hdr.reqid, &err) < 0)
			e->answer_errors++;
		break;
	case M_DEFER:
		e->deferred[e->ndeferred++] = m->hdr.reqid;
		break;
	case M_CLOSE:
		/* Close and drop our last reference from inside the handler. */
		ipc_chan_close(ch);
		ipc_chan_unref(e->ch);
		e->ch = NULL;
		break;
	}
}

static void h_ping(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct end *e = arg;
	Cipc__Ping *p = (Cipc__Ping *)m->pb;
	Cipc__Ping pong = CIPC__PING__INIT;

	e->handled++;
	e->last_type = m->hdr.type;
	if (p->data.len == 8) {
		uint64_t n;
		memcpy(&n, p->data.data, 8);
		if (n != e->next_ping)
			e->order_errors++;
		e->next_ping = n + 1;
	}
	if (e->mode == M_RECORD)
		return;
	pong.data = p->data;
	if (ipc_answer(ch, m->hdr.reqid, IPC_PONG, &pong.base, -1, NULL) < 0)
		e->answer_errors++;
}

static void h_record(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct end *e = arg;

	(void)ch;
	e->handled++;
	e->last_type = m->hdr.type;
	if (m->hdr.type == IPC_CHAN_OPEN) {
		if (e->fd >= 0)
			close(e->fd);
		e->fd = TAKE_FD(m->fd);
	}
}

static void h_config(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct end *e = arg;
	Cipc__Config *c = (Cipc__Config *)m->pb;
	Cipc__Empty ok = CIPC__EMPTY__INIT;

	e->handled++;
	crisp_strlcpy(e->config_root, c->root, sizeof e->config_root);
	if (ipc_answer(ch, m->hdr.reqid, IPC_CONFIG_OK, &ok.base, -1, NULL) < 0)
		e->answer_errors++;
}

static const struct ipc_handler h_execd[] = {
	{ IPC_RUNTIME_STATUS, h_status },
	{ IPC_PING, h_ping },
};
static const struct ipc_handler h_execd_ping_only[] = {
	{ IPC_PING, h_ping },
};
static const struct ipc_handler h_frontd_from_crispd[] = {
	{ IPC_CHAN_OPEN, h_record },
	{ IPC_SHUTDOWN, h_record },
	{ IPC_CONFIG_PREPARE, h_config },
	{ IPC_PING, h_ping },
};

struct hset {
	const struct ipc_handler *h;
	size_t n;
};

static struct hset handlers_for(enum crisp_role self, enum crisp_role peer)
{
	if (self == ROLE_EXECD)
		return (struct hset){ h_execd, ARRAY_SIZE(h_execd) };
	if (self == ROLE_FRONTD && peer == ROLE_CRISPD)
		return (struct hset){ h_frontd_from_crispd, ARRAY_SIZE(h_frontd_from_crispd) };
	if (self == ROLE_FRONTD || self == ROLE_CRISPD)
		return (struct hset){ h_execd_ping_only, ARRAY_SIZE(h_execd_ping_only) };
	return (struct hset){ NULL, 0 };
}

static struct ipc_chan *mkchan(struct loop *l, int fd, enum crisp_role self, enum crisp_role peer,
			       const uint8_t *key, uint32_t maxlen, pid_t pid, uid_t uid,
			       struct hset h, struct end *e)
{
	crisp_err_t err = CRISP_ERR_INIT;
	struct ipc_chan_cfg cfg = {
		.fd = fd,
		.self = self,
		.peer = peer,
		.peer_pid = pid,
		.peer_uid = uid,
		.key = key,
		.maxlen = maxlen,
		.handlers = h.h,
		.nhandlers = h.n,
		.arg = e,
		.on_close = on_close,
		.close_arg = e,
	};
	struct ipc_chan *ch = ipc_chan_new(l, &cfg, &err);

	if (ch == NULL)
		fail_msg("ipc_chan_new: %s", err.msg);
	return ch;
}

/* a on the running loop, b on l2 (running only when b_runs). */
static void fx_begin(struct fx *f, enum crisp_role a, enum crisp_role b, uint32_t maxlen,
		     bool b_runs)
{
	memset(f, 0, sizeof *f);
	f->fds_before = count_fds();
	f->a.fd = f->b.fd = -1;
	f->l = loop_new();
	f->l2 = loop_new();
	assert_non_null(f->l);
	assert_non_null(f->l2);
	randombytes_buf(f->key, sizeof f->key);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->sv), 0);
	f->a.ch = mkchan(f->l, f->sv[0], a, b, f->key, maxlen, getpid(), getuid(),
			 handlers_for(a, b), &f->a);
	f->b.ch = mkchan(b_runs ? f->l : f->l2, f->sv[1], b, a, f->key, maxlen, getpid(),
			 getuid(), handlers_for(b, a), &f->b);
}

static void fx_end(struct fx *f)
{
	ipc_chan_unref(f->a.ch);
	ipc_chan_unref(f->b.ch);
	/* Deferred close notifications run from 0 ms timers. */
	assert_int_equal(loop_run_once(f->l, 0), 0);
	assert_int_equal(loop_run_once(f->l2, 0), 0);
	loop_free(f->l);
	loop_free(f->l2);
	if (f->a.fd >= 0)
		close(f->a.fd);
	if (f->b.fd >= 0)
		close(f->b.fd);
	assert_int_equal(count_fds(), f->fds_before);
}

static void run_until(struct loop *l, const int *counter, int want, int ms)
{
	uint64_t end = crisp_now_ms() + (uint64_t)ms;

	while (*counter < want && crisp_now_ms() < end)
		assert_int_equal(loop_run_once(l, 5), 0);
	assert_int_equal(*counter, want);
}

/* ---- answer callbacks ---- */

struct ans {
	int calls;
	int code; /* 0 with an answer */
	int errnum;
	uint32_t type;
	char text[CRISP_ERR_MSG_MAX]; /* CONDITION reason, PONG data, or error message */
	int order;
};

static int ans_order;

static void ans_cb(struct ipc_chan *ch, struct ipc_msg *m, const crisp_err_t *err, void *arg)
{
	struct ans *a = arg;

	(void)ch;
	a->calls++;
	a->order = ++ans_order;
	if (err != NULL) {
		assert_null(m);
		a->code = err->code;
		a->errnum = err->errnum;
		crisp_strlcpy(a->text, err->msg, sizeof a->text);
		return;
	}
	assert_non_null(m);
	a->code = 0;
	a->type = m->hdr.type;
	if (m->hdr.type == IPC_CONDITION)
		crisp_strlcpy(a->text, ((Cipc__Condition *)m->pb)->reason, sizeof a->text);
	else if (m->hdr.type == IPC_PONG) {
		Cipc__Ping *p = (Cipc__Ping *)m->pb;
		size_t n = p->data.len < sizeof a->text - 1 ? p->data.len : sizeof a->text - 1;
		memcpy(a->text, p->data.data, n);
		a->text[n] = '\0';
	}
}

static void request(struct ipc_chan *ch, uint32_t type, const ProtobufCMessage *pb,
		    uint32_t timeout, struct ans *a, uint64_t *id)
{
	crisp_err_t err = CRISP_ERR_INIT;

	if (ipc_request(ch, type, pb, -1, timeout, ans_cb, a, id, &err) < 0)
		fail_msg("ipc_request: %s", err.msg);
}

static void ping(struct ipc_chan *ch, const char *data, struct ans *a, uint64_t *id)
{
	Cipc__Ping p = CIPC__PING__INIT;

	p.data.data = (uint8_t *)data;
	p.data.len = strlen(data);
	request(ch, IPC_PING, &p.base, 0, a, id);
}

/* ---- raw frames ---- */

static void raw_send(int fd, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr align;
		uint8_t b[CMSG_SPACE(4 * sizeof(int))];
	} c;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds > 0) {
		struct cmsghdr *cm;
		memset(&c, 0, sizeof c);
		mh.msg_control = c.b;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static uint8_t frame[IPC_HDR_SIZE + 70000 + IPC_TAG_SIZE];

/* Seal with the sending end s (so the tag is right) and return the length. */
static size_t craft(struct ipc_chan *s, uint32_t type, uint64_t reqid, uint64_t seq,
		    uint32_t flags, uint32_t reserved, const void *payload, uint32_t len)
{
	struct ipc_hdr h = { type, len, reqid, seq, flags, reserved };
	ssize_t n = ipc_seal(s, &h, payload, frame, sizeof frame);

	assert_true(n > 0);
	return (size_t)n;
}

/* Seal with the violation fixture's sending end and push it raw. */
static void send_sealed(struct fx *f, uint32_t type, uint64_t reqid, uint64_t seq,
			uint32_t flags, uint32_t reserved, const void *payload, uint32_t len)
{
	raw_send(f->sv[1], frame, craft(f->b.ch, type, reqid, seq, flags, reserved, payload, len),
		 NULL, 0);
}

static size_t craft_pb(struct ipc_chan *s, uint32_t type, uint64_t reqid, uint64_t seq,
		       uint32_t flags, const ProtobufCMessage *pb)
{
	static uint8_t buf[70000];
	size_t len = pb != NULL ? protobuf_c_message_pack(pb, buf) : 0;

	return craft(s, type, reqid, seq, flags, 0, buf, (uint32_t)len);
}

/* ---- pure parts ---- */

static void test_table(void **state)
{
	const struct ipc_msgdef *d;

	(void)state;
	assert_int_equal(ipc_table_check(NULL), 0);
	d = ipc_msgdef(IPC_PING);
	assert_non_null(d);
	assert_string_equal(d->name, "PING");
	assert_int_equal(d->answer, IPC_PONG);
	assert_ptr_equal(d->desc, &cipc__ping__descriptor);
	assert_int_equal(ipc_msgdef(IPC_CHAN_OPEN)->fd, FD_SOCK);
	assert_int_equal(ipc_msgdef(IPC_CONFIG_PREPARE)->maxlen, 65536);
	assert_null(ipc_msgdef(IPC_NONE));
	assert_null(ipc_msgdef(9999));
	assert_null(ipc_msgdef(UINT32_MAX));
	for (size_t i = 0; i < IPC_NTYPES; i++) {
		d = ipc_msgdef_at(i);
		assert_ptr_equal(ipc_msgdef(d->type), d);
		for (size_t j = i + 1; j < IPC_NTYPES; j++)
			assert_int_not_equal(d->type, ipc_msgdef_at(j)->type);
	}
	assert_null(ipc_msgdef_at(IPC_NTYPES));
	/* Answers: ERROR and every declared answer; nothing else. */
	assert_true(ipc_type_is_answer(IPC_ERROR));
	assert_true(ipc_type_is_answer(IPC_PONG));
	assert_true(ipc_type_is_answer(IPC_CONFIG_OK));
	assert_true(ipc_type_is_answer(IPC_CONDITION));
	assert_false(ipc_type_is_answer(IPC_PING));
	assert_false(ipc_type_is_answer(IPC_READY));
	assert_false(ipc_type_is_answer(IPC_RUNTIME_STATUS));
	assert_false(ipc_type_is_answer(9999));
	assert_string_equal(crisp_role_name(ROLE_CRISPD), "crispd");
	assert_string_equal(crisp_role_name(ROLE_EXECD), "execd");
	assert_string_equal(crisp_role_name(ROLE_NETD), "netd");
	assert_string_equal(crisp_role_name(ROLE_MAX), "?");
	assert_string_equal(crisp_role_name(-1), "?");
}

static void test_keys(void **state)
{
	uint8_t key[IPC_KEY_SIZE], key2[IPC_KEY_SIZE];
	uint8_t atx[32], arx[32], btx[32], brx[32], ctx[32], crx[32];

	(void)state;
	randombytes_buf(key, sizeof key);
	memcpy(key2, key, sizeof key);
	key2[0] ^= 1;
	ipc_derive_keys(key, ROLE_FRONTD, ROLE_EXECD, atx, arx);
	ipc_derive_keys(key, ROLE_EXECD, ROLE_FRONTD, btx, brx);
	assert_memory_equal(atx, brx, 32);
	assert_memory_equal(arx, btx, 32);
	assert_memory_not_equal(atx, arx, 32); /* no reflection */
	assert_memory_not_equal(atx, key, 32);
	ipc_derive_keys(key, ROLE_FRONTD, ROLE_NETD, ctx, crx); /* another pair */
	assert_memory_not_equal(atx, ctx, 32);
	assert_memory_not_equal(arx, crx, 32);
	ipc_derive_keys(key2, ROLE_FRONTD, ROLE_EXECD, ctx, crx); /* another key */
	assert_memory_not_equal(atx, ctx, 32);
}

static void test_fdkind(void **state)
{
	int before = count_fds();
	int sv[2], p[2], dir, reg;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	reg = (int)syscall(SYS_memfd_create, "t", 1u /* MFD_CLOEXEC */);
	assert_true(dir >= 0 && reg >= 0);
	assert_true(ipc_fdkind_ok(sv[0], FD_SOCK));
	assert_false(ipc_fdkind_ok(p[0], FD_SOCK));
	assert_false(ipc_fdkind_ok(dir, FD_SOCK));
	assert_true(ipc_fdkind_ok(dir, FD_DIR));
	assert_false(ipc_fdkind_ok(reg, FD_DIR));
	assert_true(ipc_fdkind_ok(reg, FD_REG));
	assert_false(ipc_fdkind_ok(p[1], FD_REG));
	assert_false(ipc_fdkind_ok(sv[0], FD_REG));
	assert_true(ipc_fdkind_ok(p[0], FD_ANY));
	assert_true(ipc_fdkind_ok(dir, FD_ANY));
	assert_false(ipc_fdkind_ok(sv[0], FD_NONE));
	assert_false(ipc_fdkind_ok(-1, FD_ANY));
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
	close(dir);
	close(reg);
	assert_int_equal(count_fds(), before);
}

/* ipc_seal + ipc_decode without sockets. */
static void test_seal_decode(void **state)
{
	struct fx f;
	struct ucred me = { getpid(), getuid(), getgid() };
	struct ucred other = { getpid() + 1, getuid(), getgid() };
	Cipc__Ping p = CIPC__PING__INIT;
	struct ipc_msg m;
	crisp_err_t err = CRISP_ERR_INIT;
	size_t n;

	(void)state;
	fx_begin(&f, ROLE_EXECD, ROLE_FRONTD, 0, false);
	p.data.data = (uint8_t *)"hello";
	p.data.len = 5;
	n = craft_pb(f.b.ch, IPC_PING, 7, 1, 0, &p.base);
	assert_int_equal(n, IPC_HDR_SIZE + 7 + IPC_TAG_SIZE);
	/* Too small an output buffer. */
	struct ipc_hdr h = { IPC_PING, 5, 7, 1, 0, 0 };
	uint8_t small[IPC_HDR_SIZE + 5 + IPC_TAG_SIZE - 1];
	assert_int_equal(ipc_seal(f.b.ch, &h, "hello", small, sizeof small), -1);

	assert_int_equal(ipc_decode(f.a.ch, frame, n, 0, NULL, 0, &me, &m, &err), 0);
	assert_int_equal(m.hdr.type, IPC_PING);
	assert_int_equal(m.hdr.reqid, 7);
	assert_int_equal(m.fd, -1);
	assert_ptr_equal(m.def, ipc_msgdef(IPC_PING));
	assert_int_equal(((Cipc__Ping *)m.pb)->data.len, 5);
	assert_memory_equal(((Cipc__Ping *)m.pb)->data.data, "hello", 5);
	ipc_msg_release(&m);
	assert_null(m.pb);
	assert_int_equal(ipc_chan_stats(f.a.ch)->rx, 1);
	/* The same frame again: replay. */
	assert_int_equal(ipc_decode(f.a.ch, frame, n, 0, NULL, 0, &me, &m, &err), -1);
	assert_int_equal(ipc_chan_stats(f.a.ch)->bad_seq, 1);
	assert_non_null(strstr(err.msg, "bad_seq"));
	/* Missing or foreign credentials. */
	assert_int_equal(ipc_decode(f.a.ch, frame, n, 0, NULL, 0, NULL, &m, &err), -1);
	assert_int_equal(ipc_decode(f.a.ch, frame, n, 0, NULL, 0, &other, &m, &err), -1);
	assert_int_equal(ipc_chan_stats(f.a.ch)->bad_cred, 2);
	/* Truncation flags are checked first. */
	assert_int_equal(ipc_decode(f.a.ch, frame, n, MSG_CTRUNC, NULL, 0, NULL, &m, &err), -1);
	assert_int_equal(ipc_chan_stats(f.a.ch)->truncated, 1);
	/* A frame sealed by the wrong direction (reflected) fails the tag. */
	n = craft_pb(f.a.ch, IPC_PING, 7, 2, 0, &p.base);
	assert_int_equal(ipc_decode(f.a.ch, frame, n, 0, NULL, 0, &me, &m, &err), -1);
	assert_int_equal(ipc_chan_stats(f.a.ch)->bad_tag, 1);
	/* An fd handed to a failing decode is closed. */
	int pp[2];
	assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
	assert_int_equal(ipc_decode(f.a.ch, frame, n, 0, &pp[0], 1, &me, &m, &err), -1);
	assert_int_equal(pp[0], -1);
	close(pp[1]);
	/* Decoding never closes the channel: that is the caller's call. */
	assert_true(ipc_chan_is_open(f.a.ch));
	fx_end(&f);
}

/* ---- channels on a loop ---- */

static void test_roundtrip(void **state)
{
	struct fx f;
	struct ans a1 = { 0 }, a2 = { 0 };
	uint64_t id1 = 0, id2 = 0;

	(void)state;
	fx_begin(&f, ROLE_FRONTD, ROLE_EXECD, 0, true);
	f.b.mode = M_ANSWER;
	assert_int_equal(ipc_chan_peer(f.a.ch), ROLE_EXECD);
	assert_ptr_equal(ipc_chan_arg(f.a.ch), &f.a);
	request(f.a.ch, IPC_RUNTIME_STATUS, NULL, 1000, &a1, &id1);
	ping(f.a.ch, "data", &a2, &id2);
	assert_int_equal(id1, 1);
	assert_int_equal(id2, 2);
	/* Never from inside ipc_request. */
	assert_int_equal(a1.calls + a2.calls, 0);
	run_until(f.l, &a2.calls, 1, 2000);
	assert_int_equal(a1.calls, 1);
	assert_int_equal(a1.code, 0);
	assert_int_equal(a1.type, IPC_CONDITION);
	assert_string_equal(a1.text, "r1");
	assert_int_equal(a2.code, 0);
	assert_int_equal(a2.type, IPC_PONG);
	assert_string_equal(a2.text, "data");
	assert_int_equal(f.b.handled, 2);
	assert_int_equal(f.b.answer_errors, 0);
	const struct ipc_stats *sa = ipc_chan_stats(f.a.ch), *sb = ipc_chan_stats(f.b.ch);
	assert_int_equal(sa->tx, 2);
	assert_int_equal(sa->rx, 2);
	assert_int_equal(sb->tx, 2);
	assert_int_equal(sb->rx, 2);
	assert_int_equal(f.a.closes + f.b.closes, 0);
	fx_end(&f);
	/* Releasing open channels closes them once each, not as violations. */
	assert_int_equal(f.a.closes, 1);
	assert_int_equal(f.b.closes, 1);
	assert_false(f.a.violation);
	assert_false(f.b.violation);
}

static void test_out_of_order(void **state)
{
	struct fx f;
	struct ans a[3] = { { 0 } };
	uint64_t id[3];
	int total = 0;

	(void)state;
	fx_begin(&f, ROLE_FRONTD, ROLE_EXECD, 0, true);
	f.b.mode = M_DEFER;
	for (int i = 0; i < 3; i++)
		request(f.a.ch, IPC_RUNTIME_STATUS, NULL, 0, &a[i], &id[i]);
	run_until(f.l, &f.b.ndeferred, 3, 2000);
	/* Answer 3, 1, 2. */
	answer_condition(&f.b, f.b.ch, f.b.deferred[2]);
	answer_condition(&f.b, f.b.ch, f.b.deferred[0]);
	answer_condition(&f.b, f.b.ch, f.b.deferred[1]);
	while (total < 3) {
		assert_int_equal(loop_run_once(f.l, 100), 0);
		total = a[0].calls + a[1].calls + a[2].calls;
	}
	for (int i = 0; i < 3; i++) {
		char want[32];
		snprintf(want, sizeof want, "r%llu", (unsigned long long)id[i]);
		assert_int_equal(a[i].calls, 1);
		assert_string_equal(a[i].text, want);
	}
	assert_true(a[2].order < a[0].order);
	assert_true(a[0].order < a[1].order);
	fx_end(&f);
}

static void test_error_answer(void **state)
{
	struct fx f;
	struct ans a = { 0 };

	(void)state;
	fx_begin(&f, ROLE_FRONTD, ROLE_EXECD, 0, true);
	f.b.mode = M_ERROR;
	request(f.a.ch, IPC_RUNTIME_STATUS, NULL, 1000, &a, NULL);
	run_until(f.l, &a.calls, 1, 2000);
	assert_int_equal(a.code, CRISP_NOT_FOUND);
	assert_string_equal(a.text, "no runtime here");
	assert_int_equal(f.b.answer_errors, 0);
	assert_true(ipc_chan_is_open(f.a.ch));
	fx_end(&f);
}

static void test_fd_passing(void **state)
{
	struct fx f;
	Cipc__ChanOpen co = CIPC__CHAN_OPEN__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	int s[2];
	char buf[8] = { 0 };

	(void)state;
	fx_begin(&f, ROLE_CRISPD, ROLE_FRONTD, 0, true);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	co.peer_role = ROLE_EXECD;
	co.key.data = f.key;
	co.key.len = sizeof f.key;
	assert_int_equal(ipc_send(f.a.ch, IPC_CHAN_OPEN, &co.base, s[0], &err), 0);
	close(s[0]); /* the caller keeps its fd; ipc passed a copy */
	run_until(f.l, &f.b.handled, 1, 2000);
	assert_int_equal(f.b.last_type, IPC_CHAN_OPEN);
	assert_true(f.b.fd >= 0);
	/* Received with MSG_CMSG_CLOEXEC. */
	assert_true(fcntl(f.b.fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(write(s[1], "ping", 4), 4);
	assert_int_equal(read(f.b.fd, buf, sizeof buf), 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(write(f.b.fd, "pong", 4), 4);
	assert_int_equal(read(s[1], buf, sizeof buf), 4);
	assert_memory_equal(buf, "pong", 4);
	close(s[1]);
	fx_end(&f);
}

static void test_big_message(void **state)
{
	struct fx f;
	Cipc__Config c = CIPC__CONFIG__INIT;
	struct ans a = { 0 };
	char *root = malloc(60001);

	(void)state;
	assert_non_null(root);
	memset(root, 'r', 60000);
	root[60000] = '\0';
	fx_begin(&f, ROLE_CRISPD, ROLE_FRONTD, 0, true);
	c.root = root;
	request(f.a.ch, IPC_CONFIG_PREPARE, &c.base, 1000, &a, NULL);
	run_until(f.l, &a.calls, 1, 2000);
	assert_int_equal(a.code, 0);
	assert_int_equal(a.type, IPC_CONFIG_OK);
	assert_int_equal(strlen(f.b.config_root), 60000);
	free(root);
	fx_end(&f);
}

static void test_timeout_then_stale(void **state)
{
	struct fx f;
	struct ans a = { 0 };
	uint64_t id = 0;
	uint64_t t0 = crisp_now_ms();

	(void)state;
	fx_begin(&f, ROLE_FRONTD, ROLE_EXECD, 0, false); /* b never reads */
	request(f.a.ch, IPC_RUNTIME_STATUS, NULL, 50, &a, &id);
	run_until(f.l, &a.calls, 1, 2000);
	assert_true(crisp_now_ms() - t0 >= 50);
	assert_int_equal(a.code, CRISP_DEADLINE_EXCEEDED);
	/* The late answer is stale: counted, dropped, channel stays up. */
	answer_condition(&f.b, f.b.ch, id);
	assert_int_equal(f.b.answer_errors, 0);
	const struct ipc_stats *st = ipc_chan_stats(f.a.ch);
	for (int i = 0; i < 20 && st->rx == 0; i++)
		assert_int_equal(loop_run_once(f.l, 10), 0);
	assert_int_equal(st->rx, 1);
	assert_int_equal(st->stale_answers, 1);
	assert_int_equal(st->bad_answer, 0);
	assert_int_equal(a.calls, 1);
	assert_true(ipc_chan_is_open(f.a.ch));
	fx_end(&f);
}

static void test_cancel(void **state)
{
	struct fx f;
	struct ans a = { 0 }, b = { 0 };
	uint64_t id = 0, id2 = 0;

	(void)state;
	fx_begin(&f, ROLE_FRONTD, ROLE_EXECD, 0, false);
	request(f.a.ch, IPC_RUNTIME_STATUS, NULL, 30, &a, &id);
	request(f.a.ch, IPC_RUNTIME_STATUS, NULL, 0, &b, &id2);
	ipc_cancel(f.a.ch, id);
	ipc_cancel(f.a.ch, 12345); /* unknown: nothing happens */
	answer_condition(&f.b, f.b.ch, id);
	answer_condition(&f.b, f.b.ch, id2);
	run_until(f.l, &b.calls, 1, 2000);
	/* Wait past the cancelled request's timeout too. */
	for (uint64_t end = crisp_now_ms() + 60; crisp_now_ms() < end;)
		assert_int_equal(loop_run_once(f.l, 10), 0);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 1);
	assert_string_equal(b.text, "r2");
	assert_int_equal(ipc_chan_stats(f.a.ch)->stale_answers, 1);
	assert_true(ipc_chan_is_open(f.a.ch));
	fx_end(&f);
}

struct cancels {
	int n;
	uint64_t ids[8];
};

static void on_peer_cancel(struct ipc_chan *ch, uint64_t reqid, void *arg)
{
	struct cancels *c = arg;

	(void)ch;
	if (c->n < 8)
		c->ids[c->n] = reqid;
	c->n++;
}

/* The requester's ipc_cancel and its timeouts reach the handler that
 * watches; answered or unwatched requests hear nothing. */
static void test_cancel_reaches_peer(void **state)
{
	struct fx f;
	struct ans a1 = { 0 }, a2 = { 0 }, a3 = { 0 }, a4 = { 0 };
	struct cancels c = { 0 };
	uint64_t id1 = 0, id2 = 0, id3 = 0, id4 = 0;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	fx_begin(&f, ROLE_FRONTD, ROLE_EXECD, 0, true);
	f.b.mode = M_DEFER;
	request(f.a.ch, IPC_RUNTIME_STATUS, NULL, 0, &a1, &id1);
	request(f.a.ch, IPC_RUNTIME_STATUS, NULL, 40, &a2, &id2);
	request(f.a.ch, IPC_RUNTIME_STATUS, NULL, 0, &a3, &id3);
	request(f.a.ch, IPC_RUNTIME_STATUS, NULL, 0, &a4, &id4);
	run_until(f.l, &f.b.handled, 4, 2000);
	for (int i = 0; i < 3; i++) /* id4 is not watched */
		assert_int_equal(ipc_watch_cancel(f.b.ch, f.b.deferred[i], on_peer_cancel, &c, &err), 0);

	ipc_cancel(f.a.ch, id1);
	run_until(f.l, &c.n, 1, 2000);
	assert_int_equal(c.ids[0], f.b.deferred[0]);
	/* The timeout of id2 cancels it on both sides. */
	run_until(f.l, &c.n, 2, 2000);
	assert_int_equal(c.ids[1], f.b.deferred[1]);
	assert_int_equal(a2.code, CRISP_DEADLINE_EXCEEDED);
	/* Answered: the watch is gone, a late cancel is not delivered. */
	answer_condition(&f.b, f.b.ch, f.b.deferred[2]);
	run_until(f.l, &a3.calls, 1, 2000);
	ipc_cancel(f.a.ch, id3); /* not pending any more: nothing is sent */
	/* Not watched: the CANCEL is ignored and the channel stays up. */
	ipc_cancel(f.a.ch, id4);
	for (uint64_t end = crisp_now_ms() + 50; crisp_now_ms() < end;)
		assert_int_equal(loop_run_once(f.l, 5), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(a1.calls + a4.calls, 0);
	assert_true(ipc_chan_is_open(f.a.ch) && ipc_chan_is_open(f.b.ch));
	/* A watch left when the channel goes is freed with it (LSan checks). */
	assert_int_equal(ipc_watch_cancel(f.b.ch, 999, on_peer_cancel, &c, &err), 0);
	fx_end(&f);
}

static void test_peer_eof(void **state)
{
	struct fx f;
	struct ans a = { 0 };

	(void)state;
	fx_begin(&f, ROLE_FRONTD, ROLE_EXECD, 0, false);
	request(f.a.ch, IPC_RUNTIME_STATUS, NULL, 0, &a, NULL);
	ipc_chan_unref(TAKE_PTR(f.b.ch));
	assert_int_equal(f.b.closes, 1);
	assert_false(f.b.violation);
	run_until(f.l, &f.a.closes, 1, 2000);
	assert_false(f.a.violation);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.code, CRISP_UNAVAILABLE);
	assert_false(ipc_chan_is_open(f.a.ch));
	/* Sending on a closed channel. */
	crisp_err_t err = CRISP_ERR_INIT;
	assert_int_equal(ipc_request(f.a.ch, IPC_RUNTIME_STATUS, NULL, -1, 0, ans_cb, &a, NULL,
				     &err),
			 -1);
	assert_int_equal(err.code, CRISP_UNAVAILABLE);
	ipc_chan_close(f.a.ch); /* closing twice: on_close still ran once */
	assert_int_equal(f.a.closes, 1);
	assert_int_equal(a.calls, 1);
	fx_end(&f);
}

/* The peer is gone but we have not noticed yet: the failing send returns
 * UNAVAILABLE and no callback runs inside it; they run from the loop. */
static void test_send_to_gone_peer(void **state)
{
	struct fx f;
	struct ans a = { 0 }, b = { 0 };
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	fx_begin(&f, ROLE_FRONTD, ROLE_EXECD, 0, false);
	request(f.a.ch, IPC_RUNTIME_STATUS, NULL, 0, &a, NULL);
	ipc_chan_unref(TAKE_PTR(f.b.ch));
	assert_int_equal(ipc_request(f.a.ch, IPC_RUNTIME_STATUS, NULL, -1, 0, ans_cb, &b, NULL,
				     &err),
			 -1);
	assert_int_equal(err.code, CRISP_UNAVAILABLE);
	assert_false(ipc_chan_is_open(f.a.ch));
	assert_int_equal(a.calls, 0);
	assert_int_equal(f.a.closes, 0);
	run_until(f.l, &f.a.closes, 1, 2000);
	assert_false(f.a.violation);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.code, CRISP_UNAVAILABLE);
	assert_int_equal(b.calls, 0); /* the failed request never existed */
	fx_end(&f);
	assert_int_equal(f.a.closes, 1);
}

static void test_close_in_handler(void **state)
{
	struct fx f;
	struct ans a = { 0 };

	(void)state;
	fx_begin(&f, ROLE_FRONTD, ROLE_EXECD, 0, true);
	f.b.mode = M_CLOSE;
	request(f.a.ch, IPC_RUNTIME_STATUS, NULL, 0, &a, NULL);
	run_until(f.l, &a.calls, 1, 2000);
	assert_null(f.b.ch); /* freed from inside its own handler */
	assert_int_equal(f.b.closes, 1);
	assert_int_equal(a.code, CRISP_UNAVAILABLE);
	assert_int_equal(f.a.closes, 1);
	fx_end(&f);
}

/* An answer callback that closes its channel and drops the last reference
 * while another request is pending. */
struct closer {
	struct fx *f;
	int calls;
};

static void closing_cb(struct ipc_chan *ch, struct ipc_msg *m, const crisp_err_t *err, void *arg)
{
	struct closer *c = arg;

	(void)m;
	(void)err;
	c->calls++;
	ipc_chan_close(ch);
	ipc_chan_unref(TAKE_PTR(c->f->a.ch));
}

static void test_close_in_answer_cb(void **state)
{
	struct fx f;
	struct closer c = { &f, 0 };
	struct ans b = { 0 };
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	fx_begin(&f, ROLE_FRONTD, ROLE_EXECD, 0, true);
	f.b.mode = M_DEFER;
	assert_int_equal(ipc_request(f.a.ch, IPC_RUNTIME_STATUS, NULL, -1, 0, closing_cb, &c,
				     NULL, &err),
			 0);
	request(f.a.ch, IPC_RUNTIME_STATUS, NULL, 0, &b, NULL);
	run_until(f.l, &f.b.ndeferred, 2, 2000);
	answer_condition(&f.b, f.b.ch, f.b.deferred[0]);
	run_until(f.l, &c.calls, 1, 2000);
	assert_null(f.a.ch);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.code, CRISP_UNAVAILABLE);
	assert_int_equal(f.a.closes, 1);
	assert_false(f.a.violation);
	fx_end(&f);
}

static void test_send_checks(void **state)
{
	struct fx f;
	crisp_err_t err = CRISP_ERR_INIT;
	Cipc__Ping p = CIPC__PING__INIT;
	Cipc__Empty e = CIPC__EMPTY__INIT;
	static uint8_t big[5000];
	int pp[2];

	(void)state;
	fx_begin(&f, ROLE_FRONTD, ROLE_EXECD, 1024, false);
	assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
	/* The allow matrix: frontd may not send CONFIG_OK to execd. */
	assert_int_equal(ipc_answer(f.a.ch, 1, IPC_CONFIG_OK, &e.base, -1, &err), -1);
	assert_int_equal(err.code, CRISP_INTERNAL);
	/* Wrong call for the type. */
	assert_int_equal(ipc_send(f.a.ch, IPC_RUNTIME_STATUS, NULL, -1, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(ipc_request(f.a.ch, IPC_PONG, NULL, -1, 0, ans_cb, NULL, NULL, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(ipc_request(f.a.ch, IPC_PING, NULL, -1, 0, NULL, NULL, NULL, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(ipc_send(f.a.ch, 9999, NULL, -1, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(ipc_answer(f.a.ch, 0, IPC_PONG, NULL, -1, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	/* Payload of the wrong message type. */
	assert_int_equal(ipc_request(f.a.ch, IPC_PING, &e.base, -1, 0, ans_cb, NULL, NULL, &err),
			 -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	/* Over the type's bound (4096), then over the channel's (1024). */
	p.data.data = big;
	p.data.len = sizeof big;
	assert_int_equal(ipc_request(f.a.ch, IPC_PING, &p.base, -1, 0, ans_cb, NULL, NULL, &err),
			 -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	p.data.len = 2000;
	assert_int_equal(ipc_request(f.a.ch, IPC_PING, &p.base, -1, 0, ans_cb, NULL, NULL, &err),
			 -1);
	assert_int_equal(err.code, CRISP_RESOURCE_EXHAUSTED);
	/* An fd where the type takes none. */
	p.data.len = 10;
	assert_int_equal(ipc_request(f.a.ch, IPC_PING, &p.base, pp[0], 0, ans_cb, NULL, NULL,
				     &err),
			 -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(ipc_chan_stats(f.a.ch)->tx, 0); /* nothing left */
	close(pp[0]);
	close(pp[1]);
	fx_end(&f);

	/* crispd -> frontd: CHAN_OPEN requires a socket. */
	fx_begin(&f, ROLE_CRISPD, ROLE_FRONTD, 0, false);
	assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
	assert_int_equal(ipc_send(f.a.ch, IPC_CHAN_OPEN, NULL, -1, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(ipc_send(f.a.ch, IPC_CHAN_OPEN, NULL, pp[0], &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	/* frontd may not send SHUTDOWN. */
	assert_int_equal(ipc_send(f.b.ch, IPC_SHUTDOWN, NULL, -1, &err), -1);
	assert_int_equal(err.code, CRISP_INTERNAL);
	assert_int_equal(ipc_chan_stats(f.a.ch)->tx, 0);
	close(pp[0]);
	close(pp[1]);
	fx_end(&f);
}

static void test_chan_new_checks(void **state)
{
	int before = count_fds();
	struct loop *l = loop_new();
	uint8_t key[IPC_KEY_SIZE] = { 1 };
	crisp_err_t err = CRISP_ERR_INIT;
	int sv[2], pp[2];
	static const struct ipc_handler not_mine[] = { { IPC_RUNTIME_STATUS, h_record } };
	static const struct ipc_handler answer[] = { { IPC_PONG, h_record } };
	static const struct ipc_handler twice[] = { { IPC_PING, h_record },
						    { IPC_PING, h_record } };
	static const struct ipc_handler unknown[] = { { 9999, h_record } };
	static const struct ipc_handler nofn[] = { { IPC_PING, NULL } };
	struct {
		enum crisp_role self, peer;
		const struct ipc_handler *h;
		size_t n;
		pid_t pid;
		uint32_t maxlen;
		bool pipe;
	} bad[] = {
		{ ROLE_FRONTD, ROLE_EXECD, not_mine, 1, 1, 0, false },
		{ ROLE_FRONTD, ROLE_EXECD, answer, 1, 1, 0, false },
		{ ROLE_FRONTD, ROLE_EXECD, twice, 2, 1, 0, false },
		{ ROLE_FRONTD, ROLE_EXECD, unknown, 1, 1, 0, false },
		{ ROLE_FRONTD, ROLE_EXECD, nofn, 1, 1, 0, false },
		{ ROLE_FRONTD, ROLE_FRONTD, NULL, 0, 1, 0, false },
		{ ROLE_FRONTD, ROLE_MAX, NULL, 0, 1, 0, false },
		{ ROLE_FRONTD, ROLE_EXECD, NULL, 0, 0, 0, false },
		{ ROLE_FRONTD, ROLE_EXECD, NULL, 0, 1, IPC_MAX_PAYLOAD + 1, false },
		{ ROLE_FRONTD, ROLE_EXECD, NULL, 0, 1, 0, true },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
		assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
		struct ipc_chan_cfg cfg = {
			.fd = bad[i].pipe ? pp[0] : sv[0],
			.self = bad[i].self,
			.peer = bad[i].peer,
			.peer_pid = bad[i].pid,
			.key = key,
			.maxlen = bad[i].maxlen,
			.handlers = bad[i].h,
			.nhandlers = bad[i].n,
		};
		err.code = 0;
		if (ipc_chan_new(l, &cfg, &err) != NULL)
			fail_msg("case %zu accepted", i);
		assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
		/* The fd was handed over: ipc_chan_new closed it. */
		assert_int_equal(fcntl(cfg.fd, F_GETFD), -1);
		close(bad[i].pipe ? sv[0] : pp[0]);
		close(sv[1]);
		close(pp[1]);
	}
	loop_free(l);
	assert_int_equal(count_fds(), before);
}

/* crispd sizes a role's sockets with SO_SNDBUFFORCE, beyond net.core.
 * wmem_max; the role (without CAP_NET_ADMIN) must not cut that down when
 * it wants even more.  Runs in a child that drops CAP_NET_ADMIN. */
static int sockbuf_child(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct cap[2];
	uint8_t key[IPC_KEY_SIZE] = { 2 };
	crisp_err_t err = CRISP_ERR_INIT;
	int sv[2], half, before, after, fd;
	socklen_t sl = sizeof after;
	char buf[32] = { 0 };
	long wmem_max;
	struct loop *l = loop_new();
	struct ipc_chan *ch;

	fd = open("/proc/sys/net/core/wmem_max", O_RDONLY | O_CLOEXEC);
	if (l == NULL || fd < 0 || read(fd, buf, sizeof buf - 1) <= 0)
		return 10;
	close(fd);
	wmem_max = strtol(buf, NULL, 10);
	/* Meaningful only when 2 * wmem_max is below what a 4 MiB channel
	 * asks for; otherwise there is nothing to protect. */
	if (2 * wmem_max + 100 >= 2 * (IPC_MAX_PAYLOAD + 64 + 32))
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return 11;
	half = (int)wmem_max + 50;
	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &half, sizeof half) < 0 ||
	    getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &before, &sl) < 0)
		return 12;
	if (syscall(SYS_capget, &hdr, cap) < 0)
		return 13;
	cap[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
	if (syscall(SYS_capset, &hdr, cap) < 0)
		return 14;
	if (setsockopt(sv[1], SOL_SOCKET, SO_SNDBUFFORCE, &half, sizeof half) == 0)
		return 15; /* still privileged: the test would prove nothing */
	struct ipc_chan_cfg cfg = {
		.fd = sv[0], .self = ROLE_FRONTD, .peer = ROLE_EXECD,
		.peer_pid = getpid(), .key = key,
	};
	ch = ipc_chan_new(l, &cfg, &err);
	if (ch == NULL)
		return 16;
	sl = sizeof after;
	if (getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &after, &sl) < 0)
		return 17;
	if (after < before)
		return 18;
	ipc_chan_unref(ch);
	close(sv[1]);
	loop_free(l);
	return 0;
}

static void test_sockbuf_never_shrinks(void **state)
{
	int status = 0;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip(); /* reason: needs root to send with another uid's credentials */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(sockbuf_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Fill the kernel buffer, then the send queue up to its bound; the queue
 * drains in order once the peer reads, fds included. */
static void test_queue(void **state)
{
	struct fx f;
	crisp_err_t err = CRISP_ERR_INIT;
	Cipc__Ping p = CIPC__PING__INIT;
	Cipc__ChanOpen co = CIPC__CHAN_OPEN__INIT;
	static struct ans a[6000];
	uint64_t n = 0, chan_open_at = 0;
	int s[2], answered;
	char buf[4];

	(void)state;
	memset(a, 0, sizeof a);
	fx_begin(&f, ROLE_CRISPD, ROLE_FRONTD, 4096, false);
	f.b.mode = M_ANSWER;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	p.data.data = (uint8_t *)&n;
	p.data.len = 8;
	for (;;) {
		assert_true(n < ARRAY_SIZE(a));
		if (ipc_request(f.a.ch, IPC_PING, &p.base, -1, 0, ans_cb, &a[n], NULL, &err) < 0)
			break;
		n++;
		/* Once frames queue, slip in an fd-carrying message. */
		if (chan_open_at == 0 && ipc_chan_stats(f.a.ch)->tx < n) {
			uint64_t tx = ipc_chan_stats(f.a.ch)->tx;

			assert_int_equal(ipc_send(f.a.ch, IPC_CHAN_OPEN, &co.base, s[0], &err), 0);
			close(s[0]); /* ipc holds its own duplicate */
			chan_open_at = n;
			/* The peer reads a little, so the kernel has room again;
			 * a new frame must still wait behind the queued ones. */
			assert_int_equal(loop_run_once(f.l2, 0), 0);
			assert_true(f.b.handled > 0);
			assert_int_equal(ipc_request(f.a.ch, IPC_PING, &p.base, -1, 0, ans_cb,
						     &a[n], NULL, &err),
					 0);
			n++;
			assert_int_equal(ipc_chan_stats(f.a.ch)->tx, tx);
		}
	}
	assert_int_equal(err.code, CRISP_RESOURCE_EXHAUSTED);
	assert_true(chan_open_at > 0);
	/* queued = PINGs + the CHAN_OPEN not yet handed to the kernel */
	assert_int_equal(n + 1 - ipc_chan_stats(f.a.ch)->tx, 4096);
	assert_true(ipc_chan_is_open(f.a.ch));

	/* Let both ends run until every request is answered. */
	answered = 0;
	for (uint64_t end = crisp_now_ms() + 10000; answered < (int)n && crisp_now_ms() < end;) {
		assert_int_equal(loop_run_once(f.l2, 0), 0);
		assert_int_equal(loop_run_once(f.l, 0), 0);
		answered = 0;
		for (uint64_t i = 0; i < n; i++)
			answered += a[i].calls;
	}
	assert_int_equal(answered, (int)n);
	assert_int_equal(f.a.closes + f.b.closes, 0);
	for (uint64_t i = 0; i < n; i++) {
		assert_int_equal(a[i].code, 0);
		assert_int_equal(a[i].type, IPC_PONG);
	}
	assert_int_equal(f.b.order_errors, 0);
	assert_int_equal(f.b.answer_errors, 0);
	assert_int_equal(f.b.handled, (int)n + 1);
	assert_int_equal(f.b.last_type, IPC_PING);
	/* The fd that travelled through the queue works. */
	assert_true(f.b.fd >= 0);
	assert_int_equal(write(s[1], "abc", 3), 3);
	assert_int_equal(read(f.b.fd, buf, sizeof buf), 3);
	close(s[1]);
	fx_end(&f);
}

/* ---- violations ---- */

struct vcase {
	const char *name;
	const char *counter;          /* name of the ipc_stats field, also the reason prefix */
	size_t off;                   /* offsetof(struct ipc_stats, field) */
	enum crisp_role self, peer;   /* of the receiving end */
	uint32_t maxlen;
	pid_t pid_delta;
	uid_t uid_delta;
	bool status_handler_off;
	void (*send)(struct fx *f);
	uint64_t rx; /* valid messages before the violation */
};

#define STAT(x) #x, offsetof(struct ipc_stats, x)

static void v_bad_tag(struct fx *f)
{
	size_t n = craft(f->b.ch, IPC_RUNTIME_STATUS, 1, 1, 0, 0, NULL, 0);
	frame[n - 1] ^= 0x01;
	raw_send(f->sv[1], frame, n, NULL, 0);
}

static void v_bad_tag_header(struct fx *f)
{
	size_t n = craft(f->b.ch, IPC_RUNTIME_STATUS, 1, 1, 0, 0, NULL, 0);
	frame[0] ^= 0x80; /* type */
	raw_send(f->sv[1], frame, n, NULL, 0);
}

static void v_replay(struct fx *f)
{
	size_t n = craft(f->b.ch, IPC_RUNTIME_STATUS, 1, 1, 0, 0, NULL, 0);
	raw_send(f->sv[1], frame, n, NULL, 0);
	raw_send(f->sv[1], frame, n, NULL, 0);
}

static void v_skip(struct fx *f)
{
	send_sealed(f, IPC_RUNTIME_STATUS, 1, 2, 0, 0, NULL, 0);
}

static void v_status(struct fx *f)
{
	send_sealed(f, IPC_RUNTIME_STATUS, 1, 1, 0, 0, NULL, 0);
}

static void v_unknown_type(struct fx *f)
{
	send_sealed(f, 9999, 1, 1, 0, 0, NULL, 0);
}

static void v_request_without_id(struct fx *f)
{
	send_sealed(f, IPC_RUNTIME_STATUS, 0, 1, 0, 0, NULL, 0);
}

static void v_oneway_with_id(struct fx *f)
{
	send_sealed(f, IPC_SHUTDOWN, 5, 1, 0, 0, NULL, 0);
}

static uint8_t junk[8192];

static void v_oversize_by_one(struct fx *f) /* channel bound 1024 */
{
	send_sealed(f, IPC_PING, 1, 1, 0, 0, junk, 1025);
}

static void v_oversize(struct fx *f)
{
	send_sealed(f, IPC_PING, 1, 1, 0, 0, junk, 4000);
}

static void v_over_type_bound(struct fx *f) /* PING bound 4096, channel 4 MiB */
{
	send_sealed(f, IPC_PING, 1, 1, 0, 0, junk, 4097);
}

static void v_short(struct fx *f)
{
	size_t n = craft(f->b.ch, IPC_RUNTIME_STATUS, 1, 1, 0, 0, NULL, 0);
	raw_send(f->sv[1], frame, n - 1, NULL, 0);
}

static void v_zero(struct fx *f)
{
	raw_send(f->sv[1], frame, 0, NULL, 0);
}

/* A header whose len disagrees with the datagram, under a valid tag. */
static void v_len_mismatch(struct fx *f)
{
	uint8_t tx[32], rx[32];
	struct ipc_hdr h = { IPC_PING, 3, 1, 1, 0, 0 };
	size_t n = IPC_HDR_SIZE + 4 + IPC_TAG_SIZE;

	ipc_derive_keys(f->key, ROLE_FRONTD, ROLE_EXECD, tx, rx);
	memcpy(frame, &h, sizeof h);
	memset(frame + IPC_HDR_SIZE, 0, 4);
	crypto_auth(frame + IPC_HDR_SIZE + 4, frame, IPC_HDR_SIZE + 4, tx);
	raw_send(f->sv[1], frame, n, NULL, 0);
}

static void v_reserved(struct fx *f)
{
	send_sealed(f, IPC_RUNTIME_STATUS, 1, 1, 0, 7, NULL, 0);
}

static void v_unknown_flag(struct fx *f)
{
	send_sealed(f, IPC_RUNTIME_STATUS, 1, 1, 0x10, 0, NULL, 0);
}

static void v_flag_without_fd(struct fx *f)
{
	send_sealed(f, IPC_CHAN_OPEN, 0, 1, IPC_F_FD, 0, NULL, 0);
}

/* A PING with a socket, announced by flags or not: PING takes no fd. */
static void send_ping_with_fd(struct fx *f, uint32_t flags)
{
	int s[2];
	size_t n = craft(f->b.ch, IPC_PING, 1, 1, flags, 0, NULL, 0);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	raw_send(f->sv[1], frame, n, s, 1);
	close(s[0]);
	close(s[1]);
}

static void v_fd_without_flag(struct fx *f)
{
	send_ping_with_fd(f, 0);
}

static void v_fd_on_fdless_type(struct fx *f)
{
	send_ping_with_fd(f, IPC_F_FD);
}

static void send_chan_open_fds(struct fx *f, int nfds, bool sockets)
{
	int fds[4];
	size_t n = craft(f->b.ch, IPC_CHAN_OPEN, 0, 1, IPC_F_FD, 0, NULL, 0);

	for (int i = 0; i < nfds; i += 2) {
		int pair[2];
		if (sockets)
			assert_int_equal(
				socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
		else
			assert_int_equal(pipe2(pair, O_CLOEXEC), 0);
		fds[i] = pair[0];
		fds[i + 1] = pair[1];
	}
	raw_send(f->sv[1], frame, n, fds, nfds);
	/* Our copies go; the receiver must close its own. */
	for (int i = 0; i < (nfds + 1) / 2 * 2; i++)
		close(fds[i]);
}

static void v_two_fds(struct fx *f)
{
	send_chan_open_fds(f, 2, true);
}

static void v_four_fds(struct fx *f)
{
	send_chan_open_fds(f, 4, true);
}

static void v_wrong_kind(struct fx *f)
{
	int pp[2];
	size_t n = craft(f->b.ch, IPC_CHAN_OPEN, 0, 1, IPC_F_FD, 0, NULL, 0);

	assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
	raw_send(f->sv[1], frame, n, pp, 1);
	close(pp[0]);
	close(pp[1]);
}

static void send_condition(struct fx *f, uint64_t reqid)
{
	Cipc__Condition c = CIPC__CONDITION__INIT;

	raw_send(f->sv[1], frame, craft_pb(f->b.ch, IPC_CONDITION, reqid, 1, 0, &c.base), NULL, 0);
}

static void v_never_issued(struct fx *f)
{
	send_condition(f, 5);
}

static void v_answer_id_zero(struct fx *f)
{
	send_sealed(f, IPC_ERROR, 0, 1, 0, 0, NULL, 0);
}

/* The fixture's pending PING (request 1) answered with a CONDITION. */
static void v_wrong_answer_type(struct fx *f)
{
	send_condition(f, 1);
}

static void v_garbage_payload(struct fx *f)
{
	/* field 1, length-delimited, claims 16 bytes, has 1 */
	static const uint8_t g[] = { 0x0a, 0x10, 'a' };
	size_t n = craft(f->b.ch, IPC_PING, 1, 1, 0, 0, g, sizeof g);
	raw_send(f->sv[1], frame, n, NULL, 0);
}

static void v_garbage_wiretype(struct fx *f)
{
	static const uint8_t g[] = { 0xff, 0xff, 0xff, 0xff };
	size_t n = craft(f->b.ch, IPC_RUNTIME_STATUS, 1, 1, 0, 0, g, sizeof g);
	raw_send(f->sv[1], frame, n, NULL, 0);
}

static const struct vcase vcases[] = {
	{ "violation: tag byte flipped",
	  STAT(bad_tag), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_bad_tag, 0 },
	{ "violation: header byte flipped",
	  STAT(bad_tag), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_bad_tag_header, 0 },
	{ "violation: replayed sequence number",
	  STAT(bad_seq), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_replay, 1 },
	{ "violation: skipped sequence number",
	  STAT(bad_seq), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_skip, 0 },
	{ "violation: RUNTIME_STATUS from netd",
	  STAT(bad_peer), ROLE_EXECD, ROLE_NETD, 0, 0, 0, false, v_status, 0 },
	{ "violation: type without a handler",
	  STAT(bad_type), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, true, v_status, 0 },
	{ "violation: unknown type",
	  STAT(bad_type), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_unknown_type, 0 },
	{ "violation: request with id 0",
	  STAT(bad_type), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_request_without_id, 0 },
	{ "violation: one-way message with an id",
	  STAT(bad_type), ROLE_FRONTD, ROLE_CRISPD, 0, 0, 0, false, v_oneway_with_id, 0 },
	{ "violation: one byte over the channel bound",
	  STAT(bad_size), ROLE_EXECD, ROLE_FRONTD, 1024, 0, 0, false, v_oversize_by_one, 0 },
	{ "violation: far over the channel bound (MSG_TRUNC)",
	  STAT(truncated), ROLE_EXECD, ROLE_FRONTD, 1024, 0, 0, false, v_oversize, 0 },
	{ "violation: over the type bound",
	  STAT(bad_size), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_over_type_bound, 0 },
	{ "violation: shorter than header + tag",
	  STAT(bad_size), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_short, 0 },
	{ "violation: zero-length datagram",
	  STAT(bad_size), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_zero, 0 },
	{ "violation: header length disagrees",
	  STAT(bad_size), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_len_mismatch, 0 },
	{ "violation: reserved field set",
	  STAT(bad_size), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_reserved, 0 },
	{ "violation: unknown flag bit",
	  STAT(bad_fd), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_unknown_flag, 0 },
	{ "violation: fd flag without fd",
	  STAT(bad_fd), ROLE_FRONTD, ROLE_CRISPD, 0, 0, 0, false, v_flag_without_fd, 0 },
	{ "violation: fd without fd flag",
	  STAT(bad_fd), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_fd_without_flag, 0 },
	{ "violation: fd on a type without fd",
	  STAT(bad_fd), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_fd_on_fdless_type, 0 },
	{ "violation: two fds",
	  STAT(bad_fd), ROLE_FRONTD, ROLE_CRISPD, 0, 0, 0, false, v_two_fds, 0 },
	{ "violation: four fds (MSG_CTRUNC)",
	  STAT(truncated), ROLE_FRONTD, ROLE_CRISPD, 0, 0, 0, false, v_four_fds, 0 },
	{ "violation: pipe where a socket is required",
	  STAT(bad_fd), ROLE_FRONTD, ROLE_CRISPD, 0, 0, 0, false, v_wrong_kind, 0 },
	{ "violation: wrong peer pid",
	  STAT(bad_cred), ROLE_EXECD, ROLE_FRONTD, 0, 1, 0, false, v_status, 0 },
	{ "violation: wrong peer uid",
	  STAT(bad_cred), ROLE_EXECD, ROLE_FRONTD, 0, 0, 1, false, v_status, 0 },
	{ "violation: answer to a request never issued",
	  STAT(bad_answer), ROLE_FRONTD, ROLE_EXECD, 0, 0, 0, false, v_never_issued, 1 },
	{ "violation: answer to request id 0",
	  STAT(bad_answer), ROLE_FRONTD, ROLE_EXECD, 0, 0, 0, false, v_answer_id_zero, 1 },
	{ "violation: answer of the wrong type",
	  STAT(bad_answer), ROLE_FRONTD, ROLE_EXECD, 0, 0, 0, false, v_wrong_answer_type, 1 },
	{ "violation: truncated protobuf field",
	  STAT(bad_payload), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_garbage_payload, 0 },
	{ "violation: garbage protobuf",
	  STAT(bad_payload), ROLE_EXECD, ROLE_FRONTD, 0, 0, 0, false, v_garbage_wiretype, 0 },
};

static const struct {
	const char *name;
	size_t off;
} counters[] = {
	{ STAT(truncated) }, { STAT(bad_cred) },    { STAT(bad_size) },
	{ STAT(bad_tag) },   { STAT(bad_seq) },	    { STAT(bad_type) },
	{ STAT(bad_peer) },  { STAT(bad_fd) },	    { STAT(bad_payload) },
	{ STAT(bad_answer) }, { STAT(stale_answers) },
};

static uint64_t stat_at(const struct ipc_stats *st, size_t off)
{
	uint64_t v;

	memcpy(&v, (const uint8_t *)st + off, sizeof v);
	return v;
}

static void test_violation(void **state)
{
	const struct vcase *vc = *state;
	enum crisp_role sender = vc->peer;
	struct ans pending = { 0 };
	struct hset h;
	struct fx f;

	memset(&f, 0, sizeof f);
	f.fds_before = count_fds();
	f.a.fd = f.b.fd = -1;
	f.l = loop_new();
	f.l2 = loop_new();
	randombytes_buf(f.key, sizeof f.key);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f.sv), 0);
	h = handlers_for(vc->self, vc->peer);
	if (vc->status_handler_off)
		h = (struct hset){ h_execd_ping_only, 1 };
	f.a.ch = mkchan(f.l, f.sv[0], vc->self, vc->peer, f.key, vc->maxlen,
			getpid() + vc->pid_delta, getuid() + vc->uid_delta, h, &f.a);
	f.b.ch = mkchan(f.l2, f.sv[1], sender, vc->self, f.key, 0, getpid(), getuid(),
			handlers_for(sender, vc->self), &f.b);

	/* A request of the receiving end is pending when the violation hits. */
	ping(f.a.ch, "x", &pending, NULL);
	vc->send(&f);
	run_until(f.l, &f.a.closes, 1, 2000);

	assert_true(f.a.violation);
	if (strncmp(f.a.reason, vc->counter, strlen(vc->counter)) != 0)
		fail_msg("reason \"%s\" is not a %s", f.a.reason, vc->counter);
	assert_false(ipc_chan_is_open(f.a.ch));
	const struct ipc_stats *st = ipc_chan_stats(f.a.ch);
	for (size_t i = 0; i < ARRAY_SIZE(counters); i++) {
		uint64_t want = counters[i].off == vc->off ? 1 : 0;
		if (stat_at(st, counters[i].off) != want)
			fail_msg("%s is %llu, want %llu", counters[i].name,
				 (unsigned long long)stat_at(st, counters[i].off),
				 (unsigned long long)want);
	}
	assert_int_equal(st->rx, vc->rx);
	assert_int_equal(f.a.handled, vc->rx > 0 && vc->self == ROLE_EXECD ? 1 : 0);
	assert_int_equal(pending.calls, 1);
	assert_int_equal(pending.code, CRISP_UNAVAILABLE);
	/* Nothing more happens, and on_close ran exactly once. */
	assert_int_equal(loop_run_once(f.l, 10), 0);
	assert_int_equal(f.a.closes, 1);
	fx_end(&f);
}

/* crisp_closefrom: everything from lowfd on goes but the kept fds, whatever
 * their order, duplicates or values below lowfd (close_range over the gaps). */
static void test_closefrom(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		for (int fd = 40; fd <= 60; fd++)
			if (dup2(nul, fd) < 0)
				_exit(10);
		const int keep[] = { 47, 43, 47, 2, 60, 41 };
		if (crisp_closefrom(41, keep, sizeof keep / sizeof keep[0]) < 0)
			_exit(11);
		for (int fd = 0; fd <= 70; fd++) {
			bool open_ = fcntl(fd, F_GETFD) >= 0;
			bool want = fd <= 2 || fd == 40 || fd == 41 || fd == 43 || fd == 47 || fd == 60 ||
				    (fd < 40 && fd == nul);
			if (fd >= 3 && fd < 40 && fd != nul)
				continue; /* whatever cmocka had open below 40 is not ours to judge */
			if (open_ != want)
				_exit(20 + (fd > 49 ? 49 : fd));
		}
		/* none kept: all from lowfd on */
		if (crisp_closefrom(3, NULL, 0) < 0 || fcntl(40, F_GETFD) >= 0 || fcntl(nul, F_GETFD) >= 0 ||
		    fcntl(2, F_GETFD) < 0)
			_exit(12);
		_exit(0);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_fdkind),
		cmocka_unit_test(test_seal_decode),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_error_answer),
		cmocka_unit_test(test_fd_passing),
		cmocka_unit_test(test_big_message),
		cmocka_unit_test(test_timeout_then_stale),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_peer_eof),
		cmocka_unit_test(test_send_to_gone_peer),
		cmocka_unit_test(test_close_in_handler),
		cmocka_unit_test(test_close_in_answer_cb),
		cmocka_unit_test(test_send_checks),
		cmocka_unit_test(test_cancel_reaches_peer),
		cmocka_unit_test(test_chan_new_checks),
		cmocka_unit_test(test_sockbuf_never_shrinks),
		cmocka_unit_test(test_queue),
		cmocka_unit_test(test_closefrom),
	};
	struct CMUnitTest tests[ARRAY_SIZE(fixed) + ARRAY_SIZE(vcases)];

	memcpy(tests, fixed, sizeof fixed);
	for (size_t i = 0; i < ARRAY_SIZE(vcases); i++)
		tests[ARRAY_SIZE(fixed) + i] = (struct CMUnitTest){
			.name = vcases[i].name,
			.test_func = test_violation,
			.initial_state = (void *)&vcases[i],
		};
	return cmocka_run_group_tests_name("ipc", tests, NULL, NULL);
}
