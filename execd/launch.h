/*
 * execd/launch: turn a fully resolved, typed container description into a
 * running process, the way crun does (clone with new namespaces, mounts
 * resolved inside the rootfs, pivot_root, ids, caps, rlimits, NNP, seccomp
 * last, execve).
 *
 * The input is a C struct that execd builds after its policy checks: this
 * library parses no untrusted bytes and re-checks nothing of policy.  It
 * checks only what keeps it safe to run: mount targets are absolute and free
 * of "..", and every path is resolved inside the rootfs with
 * openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) and used through an O_PATH fd
 * (/proc/self/fd/N), so a symlink in the image never redirects a mount out of
 * the rootfs.
 *
 * The launch protocol (launch.c, enum sync_type) fits on one screen:
 *
 *   parent                                child (clone CLONE_VM|CLONE_VFORK,
 *   read seccomp BPF, cap_last_cap,         new namespaces; own stack)
 *   child stack; clone, then wait         timer (timeout_ms) + parent-death
 *   (vfork: until the child executes        signal; "0" -> its cgroup.procs
 *    or dies)                             oom_score_adj (clamped)
 *                                  <----- OOM {value, clamped}
 *                                         setns() the JOIN namespaces
 *                                         [pid JOIN: fork; the middle sends
 *                                          PID and exits, which resumes the
 *                                          parent; the grandchild goes on]
 *                                  <----- PID
 *                                         unshare(CLONE_NEWCGROUP) if NEW
 *                                         rootfs, mounts, pivot_root, LSM
 *                                         exec labels, ids, caps, rlimits,
 *                                         NNP, close fds, timer cleared
 *                                  <----- EXEC
 *                                         seccomp, execve
 *                                  <----- ERROR {errno, "step: detail"}
 *   EOF (CLOEXEC closed by execve) after EXEC and no ERROR = success; EOF
 *   without EXEC: the child died (its timer, or a signal) before it was done.
 *   (uid/gid maps would need a parent step: crisp uses no user namespaces.)
 *
 * Every wait is bounded: the child by its timer, the parent's reads by
 * spec->timeout_ms; nothing sleeps or polls.  The child shares the
 * parent's memory until execve, as posix_spawn's: no copy of the
 * launcher's page tables, no copy-on-write faults, no teardown at execve.
 */
#ifndef CRISP_EXECD_LAUNCH_H
#define CRISP_EXECD_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "common/err.h"

enum launch_prop { LAUNCH_PROP_PRIVATE = 0, LAUNCH_PROP_RSLAVE, LAUNCH_PROP_RSHARED };

struct launch_mount {
	const char *source;       /* host path (bind) or fs source ("tmpfs") */
	const char *target;       /* absolute, inside the rootfs, no ".." */
	const char *fstype;       /* NULL: recursive bind mount */
	unsigned long flags;      /* MS_NOSUID|MS_NODEV|MS_NOEXEC|... */
	const char *data;         /* fs options, or NULL */
	enum launch_prop propagation;
	bool readonly;            /* binds: remount MS_RDONLY keeping nosuid/nodev/noexec */
};

struct launch_device {
	const char *path;         /* absolute inside the container, e.g. /dev/fuse */
	char type;                /* 'c' or 'b' */
	unsigned int major, minor;
	mode_t mode;              /* permission bits */
	uid_t uid;
	gid_t gid;
};

struct launch_rlimit {
	int resource;             /* RLIMIT_* */
	rlim_t soft, hard;
};

/* Namespaces, in this order in launch_spec.ns[]. */
enum launch_ns { LAUNCH_NS_MNT, LAUNCH_NS_UTS, LAUNCH_NS_IPC, LAUNCH_NS_NET, LAUNCH_NS_PID,
	LAUNCH_NS_CGROUP, LAUNCH_NS_COUNT };

enum launch_ns_mode {
	LAUNCH_NS_HOST = 0,       /* stay in the launcher's namespace (refused for mnt) */
	LAUNCH_NS_NEW,            /* a fresh namespace */
	LAUNCH_NS_JOIN,           /* setns() to .fd (an open nsfs fd) */
};

struct launch_ns_spec {
	enum launch_ns_mode mode;
	int fd;                   /* JOIN: an open /proc/PID/ns/<x> fd (not consumed) */
};

struct launch_spec {
	const char *rootfs;       /* absolute dir: overlay mounted, or a plain dir */
	bool readonly_rootfs;

	char *const *argv;        /* argv[0] resolved against envp's PATH in the rootfs */
	char *const *envp;
	const char *cwd;          /* absolute; created (root 0755) when absent, as runc/crun */

	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t ngroups;

	const char *hostname;     /* NULL: leave; needs ns[UTS] NEW */

	struct launch_ns_spec ns[LAUNCH_NS_COUNT];

	/* Used only when ns[MNT] is NEW.  Default mounts (/proc, /dev, /dev/pts,
	 * /dev/shm, /dev/mqueue, /sys, /sys/fs/cgroup) come first, then these;
	 * a mount with target /dev/shm replaces the default /dev/shm tmpfs. */
	const struct launch_mount *mounts;
	size_t nmounts;
	const struct launch_device *devices;
	size_t ndevices;
	const char *const *masked_paths;   /* NULL-terminated, or NULL */
	const char *const *readonly_paths; /* NULL-terminated, or NULL */
	bool host_sys;            /* bind the host's /sys ro (host netns) instead of sysfs */
	bool sys_rw;              /* /sys and /sys/fs/cgroup read-write (privileged) */

	/* Capability bitmasks (bit n = capability n).  Ambient is always cleared. */
	uint64_t cap_effective, cap_permitted, cap_inheritable, cap_bounding;
	bool no_new_privs;
	/* -1: no filter.  Otherwise an fd (memfd or file) holding a classic BPF
	 * program (struct sock_filter[]), e.g. from launch_seccomp_export().  The
	 * parent reads it before clone; the child loads it with seccomp(2): last,
	 * right before execve, when no_new_privs; without NNP the kernel needs
	 * CAP_SYS_ADMIN, so (as crun) it is loaded before capset and the filter
	 * must then allow capset, prctl, close_range and execve. */
	int seccomp_fd;

	/* LSM labels (execd/lsm.h computes them); NULL or "": none.
	 * process_label: the SELinux context the process gets at execve
	 *   ("system_u:system_r:container_t:s0:c4,c5"), written to
	 *   /proc/thread-self/attr/exec.
	 * mount_label: the SELinux context of the container's files
	 *   ("system_u:object_r:container_file_t:s0:c4,c5"): context="..." on
	 *   every tmpfs the launch mounts (/dev, /dev/shm, spec tmpfs mounts);
	 *   execd gives it to the rootfs overlay mount itself.
	 * apparmor_profile: an AppArmor profile name ("crisp-default"),
	 *   "exec <name>" written to /proc/thread-self/attr/apparmor/exec (or
	 *   /proc/self/attr/exec).
	 * The exec attributes are written after the mounts and before ids,
	 * caps, NNP and seccomp (the filter may refuse open/write); nothing
	 * runs between them and execve that the label would confine. */
	const char *process_label;
	const char *mount_label;
	const char *apparmor_profile;

	const struct launch_rlimit *rlimits;
	size_t nrlimits;

	bool set_oom_score_adj;
	int oom_score_adj;        /* clamped to 0 if the node refuses negatives */

	const char *cgroup_procs; /* NULL, or a cgroup.procs file or a cgroup dir */
	const char *const *cgroup_procs_extra; /* more (v1 hierarchies), NULL-terminated */

	int stdio[3];             /* fds for the container's 0, 1, 2 (-1: /dev/null) */
	bool terminal;            /* stdio[0] is a pty slave: setsid + TIOCSCTTY */

	int timeout_ms;           /* per sync step; 0: 10000 */
};

struct launch_result {
	pid_t pid;                /* in the launcher's pid namespace */
	int oom_score_adj;        /* what was written (after clamping) */
	bool oom_clamped;
};

/*
 * Start a container.  Returns 0 once the child has exec'd (the sync socket
 * was closed by execve), or -1 with err set: a failure inside the child
 * comes back as {errno, "step: detail"} ("mount /proc: Operation not
 * permitted", "exec /bin/nope: No such file or directory").  On failure
 * no child is left: it is killed and reaped.  The caller reaps res->pid.
 */
int launch_container(const struct launch_spec *s, struct launch_result *res, crisp_err_t *err);

/*
 * Start a process inside a running container (ExecSync, Exec): joins the
 * namespaces of `target` (mnt, uts, ipc, net, pid, cgroup through
 * /proc/<target>/ns/<x>), is forked after setns(CLONE_NEWPID) so it lands in
 * the container's pid namespace, and applies s's uid/gid/groups/caps/NNP/
 * seccomp/rlimits/cwd/env/stdio.  s->ns, mounts, devices, masked and
 * readonly paths, rootfs and hostname are ignored.
 */
int launch_exec(pid_t target, const struct launch_spec *s, struct launch_result *res,
	crisp_err_t *err);

/* Export a libseccomp context as BPF into a sealed memfd (for seccomp_fd). */
int launch_seccomp_export(void *scmp_filter_ctx, int *fd, crisp_err_t *err);

/* CRI-O's default capabilities (PEERS.md 4.2) as a bitmask. */
uint64_t launch_default_caps(void);

#endif
