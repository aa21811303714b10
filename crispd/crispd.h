/*
 * crispd: the parent.  Root, small, parses nothing from the network.  It
 * reads the configuration, prepares directories and the CRI socket, makes
 * one socketpair per pair of roles that must talk (and no others), fork+execs
 * every role with a fixed fd layout (ipc/role.h), relays their logs, and
 * supervises them: a role that dies is restarted with backoff.
 */
#ifndef CRISPD_H
#define CRISPD_H

#include <stdbool.h>
#include <sys/types.h>

#include "crispd/config.h"
#include "ipc/ipc.h"

enum proc_state {
	PS_DOWN,        /* not running; a restart may be scheduled */
	PS_STARTING,    /* forked, waiting for READY */
	PS_CONFIGURING, /* READY, configuration being prepared */
	PS_UP,          /* configured and connected to its peers */
	PS_EXITING,     /* asked to stop */
};

struct crispd;

struct role_proc {
	struct crispd *d;
	enum crisp_role role;
	char bin[4096];
	uid_t uid; /* the uid the role runs as once sandboxed */
	gid_t gid;
	pid_t pid;
	enum proc_state state;
	struct ipc_chan *ctl;
	int logfd;
	char logbuf[4096];
	size_t loglen;
	uint64_t started_ms;
	uint32_t backoff_ms;
	unsigned restarts;
	struct loop_timer *restart_timer;
	struct loop_timer *ready_timer;
	uint64_t violations_window_ms; /* start of the window counting reports */
	unsigned violations_reported;  /* reports this role made in the window */
};

struct reload_txn {
	bool active;
	uint64_t generation;
	struct crisp_config next;
	unsigned waiting; /* roles that have not answered */
	pid_t members[ROLE_MAX]; /* the role instances that prepared it */
	bool failed;
	char why[CRISP_ERR_MSG_MAX + 32];
	struct loop_timer *timer;
};

struct crispd {
	struct loop *loop;
	struct crisp_flags flags;
	struct crisp_config cfg;
	uint64_t generation;
	int listen_fd;
	int stream_fd; /* the streaming server's TCP listener (frontd's fd 6) */
	char empty_dir[4096]; /* frontd's chroot */
	struct role_proc procs[ROLE_MAX]; /* index ROLE_CRISPD unused */
	bool stopping;
	struct loop_timer *kill_timer;
	struct reload_txn reload;
	int exit_code;
};

/* supervise.c */
void sup_init(struct crispd *d, const char *bindir);
void sup_start_all(struct crispd *d);
void sup_on_sigchld(struct crispd *d);
void sup_shutdown(struct crispd *d);
void sup_reload(struct crispd *d);
bool sup_all_down(const struct crispd *d);

#endif
