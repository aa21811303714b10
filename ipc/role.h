/*
 * crisp: the common life of a role process (frontd, imaged, execd, netd).
 *
 * crispd fork+execs each role binary with a fixed fd layout:
 *   0  /dev/null
 *   1  /dev/null
 *   2  a pipe to crispd (log lines; crispd sanitises and relays them)
 *   3  the control channel to crispd (SOCK_SEQPACKET)
 *   4  a pipe holding the control channel's 32-byte key, then EOF
 *   5+ role-specific (frontd: 5 the CRI listening socket, 6 the streaming listener)
 * and nothing else open.  argv: <binary> --log-level N [role flags].
 *
 * Startup: role_init reads the key, builds the control channel, and
 * returns; the role then opens what it needs and applies its sandbox
 * (common/sandbox.h) before role_run, which sends READY and runs the loop.
 * Over the control channel crispd sends CONFIG_PREPARE/COMMIT/ABORT (a
 * reload is a transaction: every role checks the new config in prepare,
 * and only when all accept does crispd commit), CHAN_OPEN (a socket to a
 * peer role, with its pid, uid and key) and SHUTDOWN.
 */
#ifndef CRISP_ROLE_H
#define CRISP_ROLE_H

#include "ipc/ipc.h"
#include "proto/ipc.pb-c.h"

#define ROLE_FD_LOG 2
#define ROLE_FD_CONTROL 3
#define ROLE_FD_KEY 4
#define ROLE_FD_FIRST_EXTRA 5

struct role_ctx;

struct role_ops {
	/* Check a new configuration; -1 + err refuses it (the reload aborts). */
	int (*config_check)(struct role_ctx *r, const Cipc__Config *c, crisp_err_t *err);
	/* Apply a committed configuration (the first one arrives at start). */
	void (*config_apply)(struct role_ctx *r, const Cipc__Config *c);
	/* A channel to a peer role came up (up=true) or went away. */
	void (*peer_changed)(struct role_ctx *r, enum crisp_role peer, bool up);
	/* The loop has stopped: release what uses it (before it is freed). */
	void (*stop)(struct role_ctx *r);
};

struct role_ctx {
	enum crisp_role self;
	struct loop *loop;
	struct ipc_chan *parent;
	struct ipc_chan *peers[ROLE_MAX];
	const Cipc__Config *config; /* committed; NULL until the first commit */
	Cipc__Config *pending;      /* prepared, not yet committed */
	const struct ipc_handler *handlers; /* what peers may send this role */
	size_t nhandlers;
	const struct role_ops *ops;
	void *arg; /* the role's own state */
	bool stopping;
};

/* What crispd tells every role on its command line. */
struct role_args {
	uid_t uid;            /* the uid/gid to run as once sandboxed */
	gid_t gid;
	const char *root;     /* crisp.root and crisp.runroot */
	const char *runroot;
	const char *chroot;   /* frontd: its empty root */
	bool sandbox_debug;   /* seccomp traps and names the syscall */
};

/* Parse the flags crispd passes; exits with a usage message on anything else. */
void role_parse_args(int argc, char **argv, struct role_args *a);

/* Parse the common flags (--log-level), read the key, build the control
 * channel.  Fatal on any failure: a role that cannot talk to crispd has
 * nothing to do. */
void role_init(struct role_ctx *r, enum crisp_role self, const struct role_ops *ops,
	       const struct ipc_handler *handlers, size_t nhandlers, void *arg);

/* Send READY and run the loop until SHUTDOWN or the loss of crispd; then
 * ops->stop, close every channel and free the loop. */
int role_run(struct role_ctx *r);

/* The open channel to a peer, or NULL. */
struct ipc_chan *role_peer(struct role_ctx *r, enum crisp_role peer);

/* Handlers every role accepts from its peers; role handler tables start
 * with ROLE_COMMON_HANDLERS. */
void role_on_ping(struct ipc_chan *ch, struct ipc_msg *m, void *arg);
#define ROLE_COMMON_HANDLERS { IPC_PING, role_on_ping }

#endif
