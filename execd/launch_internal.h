/*
 * execd/launch internals shared by launch.c (parent side and the sync
 * protocol), launch_child.c (the child's steps) and mounts.c (the rootfs).
 */
#ifndef CRISP_EXECD_LAUNCH_INTERNAL_H
#define CRISP_EXECD_LAUNCH_INTERNAL_H

#include <linux/filter.h>
#include <stdarg.h>

#include "execd/launch.h"

/* The one definition of the launch protocol (see launch.h for the diagram). */
enum sync_type {
	SYNC_OOM = 1,   /* child -> parent: oom_score_adj set to pid, errnum 1 if clamped */
	SYNC_PID,       /* middle -> parent: pid of the process forked into a joined pid ns */
	SYNC_EXEC,      /* child -> parent: every step done; execve (and seccomp) next */
	SYNC_ERROR,     /* child -> parent: {errnum, "step: detail"}, then the child exits */
};

#define SYNC_MSG_MAX 400

struct sync_msg {
	uint32_t type;  /* enum sync_type */
	int32_t errnum;
	int32_t pid;
	char msg[SYNC_MSG_MAX]; /* NUL-terminated (forced on receipt) */
};

int sync_send(int fd, enum sync_type type, int errnum, pid_t pid, const char *msg);
/* Receive exactly one message within timeout_ms.  Returns 1 with *m filled,
 * 0 on EOF, -1 with errno (ETIMEDOUT, EPROTO for a wrong size or type). */
int sync_recv(int fd, struct sync_msg *m, int timeout_ms);

/* What the child works from; prepared by the parent before clone so the
 * child allocates nothing (it runs in the parent's memory until execve). */
struct launch_ctx {
	const struct launch_spec *s;
	int sync;                  /* child's end of the socketpair */
	pid_t parent;              /* the launcher: the child dies with it until execve */
	struct sock_fprog prog;    /* prog.filter NULL: no seccomp */
	int cap_last;              /* /proc/sys/kernel/cap_last_cap */
	bool exec_mode;            /* launch_exec: joined mnt ns, no rootfs work */
	bool exec_reported;        /* the child sent SYNC_EXEC */
	char exe[4096];            /* argv[0] resolved (filled in the child) */
};

/* In the child: report {errnum, "fmt"} to the parent and _exit(1). */
_Noreturn void child_fail(struct launch_ctx *c, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The child's body after clone (launch_child.c); int for clone(). */
int child_main(void *c);

/* mounts.c: build the rootfs in the (new, slave) mount namespace and
 * pivot_root into it.  Exits through child_fail on error. */
void rootfs_setup(struct launch_ctx *c);

/* Open path (absolute, no "..") inside root with RESOLVE_IN_ROOT|
 * RESOLVE_NO_MAGICLINKS.  Returns an fd or -1 with errno. */
int resolve_in_root(int rootfd, const char *path, int flags);
/* Same, creating missing components (dirs, and the last one as a directory
 * or an empty file) beneath the root. */
int mkpath_in_root(int rootfd, const char *path, bool last_is_dir, mode_t mode);

#endif
