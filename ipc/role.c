/*
 * crisp: the common life of a role process.  See role.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "common/util.h"
#include "ipc/role.h"

static void role_send_violation(struct role_ctx *r, enum crisp_role peer, const char *reason)
{
	Cipc__PeerViolation pv = CIPC__PEER_VIOLATION__INIT;
	crisp_err_t err = CRISP_ERR_INIT;

	pv.peer_role = peer;
	pv.reason = (char *)reason;
	if (r->parent == NULL || ipc_send(r->parent, IPC_PEER_VIOLATION, &pv.base, -1, &err) < 0)
		log_error("cannot report %s's violation to crispd: %s", crisp_role_name(peer), err.msg);
}

static void on_peer_close(struct ipc_chan *ch, bool violation, const char *reason, void *arg)
{
	struct role_ctx *r = arg;
	enum crisp_role peer = ipc_chan_peer(ch);

	if (violation) {
		log_error("%s broke the ipc protocol (%s): channel dropped", crisp_role_name(peer), reason);
		role_send_violation(r, peer, reason);
	} else {
		log_info("channel to %s closed", crisp_role_name(peer));
	}
	if (r->peers[peer] == ch) {
		r->peers[peer] = NULL;
		if (r->ops->peer_changed)
			r->ops->peer_changed(r, peer, false);
		ipc_chan_unref(ch);
	}
}

void role_on_ping(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	crisp_err_t err = CRISP_ERR_INIT;

	(void)arg;
	/* PONG echoes the payload (bounded by the table). */
	if (ipc_answer(ch, m->hdr.reqid, IPC_PONG, m->pb, -1, &err) < 0)
		log_warn("ping answer: %s", err.msg);
}

static void on_chan_open(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_ctx *r = arg;
	Cipc__ChanOpen *co = (Cipc__ChanOpen *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct ipc_chan_cfg cc;
	struct ipc_chan *pc;

	(void)ch;
	if (co->peer_role <= ROLE_CRISPD || co->peer_role >= ROLE_MAX || co->peer_role == (int)r->self ||
	    co->key.len != IPC_KEY_SIZE || co->peer_pid <= 0 || m->fd < 0)
		fatal("crispd sent a malformed CHAN_OPEN");
	memset(&cc, 0, sizeof cc);
	cc.fd = TAKE_FD(m->fd);
	cc.self = r->self;
	cc.peer = (enum crisp_role)co->peer_role;
	cc.peer_pid = co->peer_pid;
	cc.peer_uid = co->peer_uid;
	cc.key = co->key.data;
	cc.handlers = r->handlers;
	cc.nhandlers = r->nhandlers;
	cc.arg = r;
	cc.on_close = on_peer_close;
	cc.close_arg = r;
	pc = ipc_chan_new(r->loop, &cc, &err);
	sodium_memzero(co->key.data, co->key.len);
	if (pc == NULL)
		fatal("channel to %s: %s", crisp_role_name(co->peer_role), err.msg);
	if (r->peers[cc.peer] != NULL) {
		/* The old channel belonged to a previous instance of the peer. */
		struct ipc_chan *old = r->peers[cc.peer];
		r->peers[cc.peer] = NULL;
		ipc_chan_close(old);
		ipc_chan_unref(old);
	}
	r->peers[cc.peer] = pc;
	log_debug("channel to %s (pid %d) open", crisp_role_name(cc.peer), co->peer_pid);
	if (r->ops->peer_changed)
		r->ops->peer_changed(r, cc.peer, true);
}

static void on_config_prepare(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_ctx *r = arg;
	Cipc__Config *c = (Cipc__Config *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	Cipc__Empty ok = CIPC__EMPTY__INIT;

	if (r->ops->config_check && r->ops->config_check(r, c, &err) < 0) {
		if (ipc_answer_error(ch, m->hdr.reqid, &err) < 0)
			log_warn("config refusal not sent");
		return;
	}
	if (r->pending)
		protobuf_c_message_free_unpacked(&r->pending->base, NULL);
	r->pending = c;
	m->pb = NULL; /* kept until commit or abort */
	if (ipc_answer(ch, m->hdr.reqid, IPC_CONFIG_OK, &ok.base, -1, &err) < 0)
		log_warn("config answer: %s", err.msg);
}

static void on_config_commit(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_ctx *r = arg;
	Cipc__ConfigCommit *cc = (Cipc__ConfigCommit *)m->pb;

	(void)ch;
	if (r->pending == NULL || r->pending->generation != cc->generation)
		fatal("crispd committed configuration %llu that was not prepared",
		      (unsigned long long)cc->generation);
	if (r->config)
		protobuf_c_message_free_unpacked((ProtobufCMessage *)&r->config->base, NULL);
	r->config = r->pending;
	r->pending = NULL;
	log_set_level(r->config->log_level);
	if (r->ops->config_apply)
		r->ops->config_apply(r, r->config);
	log_debug("configuration %llu applied", (unsigned long long)cc->generation);
}

static void on_config_abort(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_ctx *r = arg;

	(void)ch;
	(void)m;
	if (r->pending) {
		protobuf_c_message_free_unpacked(&r->pending->base, NULL);
		r->pending = NULL;
	}
}

static void on_shutdown(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_ctx *r = arg;

	(void)ch;
	(void)m;
	log_debug("shutdown requested");
	r->stopping = true;
	loop_stop(r->loop);
}

static void on_parent_close(struct ipc_chan *ch, bool violation, const char *reason, void *arg)
{
	struct role_ctx *r = arg;

	(void)ch;
	if (r->stopping)
		return;
	/* Without crispd there is no supervision and no new channels: leave. */
	if (violation)
		fatal("control channel violation (%s)", reason);
	log_info("crispd went away; exiting");
	r->stopping = true;
	loop_stop(r->loop);
}

static const struct ipc_handler parent_handlers[] = {
	ROLE_COMMON_HANDLERS,
	{ IPC_CHAN_OPEN, on_chan_open },
	{ IPC_CONFIG_PREPARE, on_config_prepare },
	{ IPC_CONFIG_COMMIT, on_config_commit },
	{ IPC_CONFIG_ABORT, on_config_abort },
	{ IPC_SHUTDOWN, on_shutdown },
};

static void check_fd_layout(void)
{
	struct stat st;

	if (fstat(ROLE_FD_CONTROL, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    fstat(ROLE_FD_KEY, &st) < 0 || !S_ISFIFO(st.st_mode))
		fatal("must be started by crispd (fd %d: control socket, fd %d: key pipe)",
		      ROLE_FD_CONTROL, ROLE_FD_KEY);
}

void role_init(struct role_ctx *r, enum crisp_role self, const struct role_ops *ops,
	       const struct ipc_handler *handlers, size_t nhandlers, void *arg)
{
	uint8_t key[IPC_KEY_SIZE];
	struct ipc_chan_cfg cc;
	crisp_err_t err = CRISP_ERR_INIT;

	memset(r, 0, sizeof *r);
	r->self = self;
	r->ops = ops;
	r->handlers = handlers;
	r->nhandlers = nhandlers;
	r->arg = arg;
	log_init(crisp_role_name(self), LOG_LVL_INFO);
	check_fd_layout();
	/* Die with crispd: a role must never outlive its supervisor. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		fatal("PR_SET_PDEATHSIG: %s", strerror(errno));
	if (sodium_init() < 0)
		fatal("libsodium init failed");
	if (crisp_read_all(ROLE_FD_KEY, key, sizeof key) < 0)
		fatal("cannot read the control key: %s", strerror(errno));
	close(ROLE_FD_KEY);
	r->loop = loop_new();
	if (r->loop == NULL)
		fatal("event loop: %s", strerror(errno));
	memset(&cc, 0, sizeof cc);
	cc.fd = ROLE_FD_CONTROL;
	cc.self = self;
	cc.peer = ROLE_CRISPD;
	cc.peer_pid = getppid();
	cc.peer_uid = 0;
	cc.key = key;
	cc.handlers = parent_handlers;
	cc.nhandlers = ARRAY_SIZE(parent_handlers);
	cc.arg = r;
	cc.on_close = on_parent_close;
	cc.close_arg = r;
	r->parent = ipc_chan_new(r->loop, &cc, &err);
	sodium_memzero(key, sizeof key);
	if (r->parent == NULL)
		fatal("control channel: %s", err.msg);
	/* Terminal signals: crispd stops roles with SHUTDOWN; a stray SIGPIPE
	 * from a vanished peer is an error return, not a death. */
	signal(SIGPIPE, SIG_IGN);
}

void role_parse_args(int argc, char **argv, struct role_args *a)
{
	memset(a, 0, sizeof *a);
	a->uid = (uid_t)-1;
	a->gid = (gid_t)-1;
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;
		unsigned long n;

		if (!strcmp(f, "--sandbox-debug")) {
			a->sandbox_debug = true;
			continue;
		}
		if (v == NULL)
			fatal("%s needs a value (roles are started by crispd)", f);
		i++;
		if (!strcmp(f, "--uid") || !strcmp(f, "--gid")) {
			errno = 0;
			n = strtoul(v, &end, 10);
			if (errno || *end || end == v || n >= 0xffffffffUL)
				fatal("%s %s: not an id", f, v);
			if (f[2] == 'u')
				a->uid = (uid_t)n;
			else
				a->gid = (gid_t)n;
		} else if (!strcmp(f, "--root")) {
			a->root = v;
		} else if (!strcmp(f, "--runroot")) {
			a->runroot = v;
		} else if (!strcmp(f, "--chroot")) {
			a->chroot = v;
		} else {
			fatal("unknown flag %s (roles are started by crispd)", f);
		}
	}
	if (a->uid == (uid_t)-1 || a->gid == (gid_t)-1 || a->root == NULL || a->runroot == NULL)
		fatal("missing --uid/--gid/--root/--runroot (roles are started by crispd)");
}

struct ipc_chan *role_peer(struct role_ctx *r, enum crisp_role peer)
{
	if (peer <= ROLE_CRISPD || peer >= ROLE_MAX)
		return NULL;
	return r->peers[peer];
}

static void on_term(struct loop *l, int signo, void *arg)
{
	struct role_ctx *r = arg;

	(void)signo;
	r->stopping = true;
	loop_stop(l);
}

int role_run(struct role_ctx *r)
{
	Cipc__Empty e = CIPC__EMPTY__INIT;
	crisp_err_t err = CRISP_ERR_INIT;

	if (loop_signal(r->loop, SIGTERM, on_term, r) < 0 || loop_signal(r->loop, SIGINT, on_term, r) < 0)
		fatal("signals: %s", strerror(errno));
	if (ipc_send(r->parent, IPC_READY, &e.base, -1, &err) < 0)
		fatal("READY: %s", err.msg);
	if (loop_run(r->loop) < 0)
		fatal("event loop: %s", strerror(errno));
	r->stopping = true;
	if (r->ops->stop)
		r->ops->stop(r);
	for (int i = 0; i < ROLE_MAX; i++) {
		if (r->peers[i]) {
			ipc_chan_close(r->peers[i]);
			ipc_chan_unref(r->peers[i]);
			r->peers[i] = NULL;
		}
	}
	r->stopping = true;
	ipc_chan_close(r->parent);
	ipc_chan_unref(r->parent);
	r->parent = NULL;
	if (r->config)
		protobuf_c_message_free_unpacked((ProtobufCMessage *)&r->config->base, NULL);
	if (r->pending)
		protobuf_c_message_free_unpacked(&r->pending->base, NULL);
	r->config = r->pending = NULL;
	loop_free(r->loop);
	r->loop = NULL;
	return 0;
}
