/*
 * execd/ctr: containers -- the pieces shared by the lifecycle handlers
 * (ctr_life.c), the spec builder (ctr_spec.c), the per-container monitor
 * (ctr_monitor.c) and exec sessions (ctr_exec.c).
 *
 * On disk, per container:
 *   <root>/containers/<id>/          0700, survives reboots of execd
 *       image.pb                     the ImageResolved the create used
 *       upper/ work/                 the overlay's writable layer
 *   <runroot>/containers/<id>/       0700
 *       rootfs/                      the overlay mountpoint
 *       ctl                          the monitor's control socket (0600)
 *       exit                         "<code> <finished ns> <signal>\n",
 *                                    written by the monitor (tmp+rename)
 */
#ifndef CRISP_EXECD_CTR_H
#define CRISP_EXECD_CTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/err.h"
#include "execd/launch.h"
#include "proto/ipc.pb-c.h"

#define CTR_EXEC_OUTPUT_MAX (16u * 1024 * 1024) /* ExecSync stdout+stderr */
#define CTR_LOG_LINE_MAX 16384                 /* longer lines become P records */

/* ---- spec building (ctr_spec.c): pure functions, unit-tested ---- */

/* argv per CRI/OCI: command overrides ENTRYPOINT (and drops the image CMD),
 * args override CMD.  NULL-terminated, malloc'd (free with ctr_strv_free). */
int ctr_argv(char *const *command, size_t ncommand, char *const *args, size_t nargs,
	     const Cipc__ImageResolved *img, char ***out, crisp_err_t *err);
/* env: the image's, overridden key by key by the CRI's, plus PATH (when
 * neither sets it) and HOSTNAME. */
int ctr_env(const Cipc__ImageResolved *img, Runtime__V1__KeyValue *const *envs, size_t nenvs,
	    const char *hostname, char ***out, crisp_err_t *err);
void ctr_strv_free(char **v);

struct ctr_user {
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	size_t ngroups;
	char home[256];
};

/*
 * Resolve the user the process runs as.  rootfd: the container's root
 * (an O_PATH dir fd); /etc/passwd and /etc/group are read inside it with
 * openat2(RESOLVE_IN_ROOT), bounded, never following a symlink out.
 * Priority (as kubelet/CRI-O): run_as_username, else run_as_user, else the
 * image's USER ("name", "uid", "name:group", "uid:gid").  run_as_group
 * overrides the gid; extra lists supplemental groups.  A name that the
 * container does not know is INVALID_ARGUMENT.
 */
int ctr_user_resolve(int rootfd, const char *image_user, const char *run_as_username,
		     const int64_t *run_as_user, const int64_t *run_as_group, const int64_t *extra,
		     size_t nextra, struct ctr_user *u, crisp_err_t *err);

/* Capability sets from the security context (names with or without CAP_,
 * "ALL" in add or drop); privileged: every capability. */
int ctr_caps(char *const *add, size_t nadd, char *const *drop, size_t ndrop, bool privileged,
	     uint64_t *out, crisp_err_t *err);
int ctr_cap_from_name(const char *name);

/* The RuntimeDefault seccomp filter (Docker/containerd's default profile
 * semantics: kernel-level and namespace syscalls refused with EPERM, some
 * allowed back by capabilities) as a sealed BPF memfd. */
int ctr_seccomp_default(uint64_t caps, int *fd, crisp_err_t *err);

/* A Localhost profile (OCI/Docker seccomp JSON, ctr_seccomp.c) compiled
 * for a container holding caps (for includes/excludes), as a sealed BPF
 * memfd.  Anything it cannot apply as written is INVALID_ARGUMENT. */
int ctr_seccomp_profile(const char *json, size_t len, uint64_t caps, int *fd, crisp_err_t *err);
int ctr_seccomp_profile_file(const char *path, uint64_t caps, int *fd, crisp_err_t *err);

/* Default masked and read-only paths (CRI-O's). */
extern const char *const ctr_default_masked[];
extern const char *const ctr_default_readonly[];

/* ---- the CRI log format (ctr_log.c) ---- */

enum { CRI_LOG_STDOUT = 0, CRI_LOG_STDERR = 1 };

struct cri_log {
	int fd;                          /* -1: lines are dropped */
	char buf[2][CTR_LOG_LINE_MAX];   /* a pending partial line per stream */
	size_t len[2];
	int (*now)(struct timespec *ts); /* NULL: clock_gettime REALTIME */
	uint64_t write_errors;
};

/* "<RFC3339Nano UTC> <stdout|stderr> <F|P> <line>\n" into out; returns
 * the length, or 0 when out is too small. */
size_t cri_log_format(char *out, size_t outsz, const struct timespec *ts, int stream, bool partial,
		      const char *line, size_t len);
/* Feed bytes of one stream: every complete line is written (F), a line
 * reaching CTR_LOG_LINE_MAX is written in P pieces. */
void cri_log_feed(struct cri_log *l, int stream, const char *data, size_t len);
/* The stream ended: a pending partial line is written (F). */
void cri_log_flush(struct cri_log *l, int stream);

/* ---- the monitor (ctr_monitor.c) ---- */

/* argv[1] of crisp-execd that makes it a monitor. */
#define CTR_MONITOR_ARG "--container-monitor"

/* What execd hands a monitor it forks at StartContainer. */
struct ctr_monitor_args {
	const char *id;
	const char *run_dir;   /* <runroot>/containers/<id> */
	const char *log_path;  /* absolute, or "" for none */
	bool tty, want_stdin, stdin_once;
	struct launch_spec *spec; /* stdio and terminal are filled in by the monitor */
	const int *keep_fds;   /* fds of spec the monitor must keep (ns, seccomp) */
	size_t nkeep;
};

/*
 * Fork the monitor: it detaches (setsid, every other fd closed), makes the
 * container's stdio, launches the container, writes to *result_fd (a pipe
 * execd reads) "OK <pid> <starttime> <monitor starttime>" or
 * "ERR <errno> <message>", then re-executes itself (/proc/self/exe) as a
 * fresh monitor that holds nothing of execd.  Returns the monitor's pid.
 */
pid_t ctr_monitor_spawn(const struct ctr_monitor_args *a, int *result_fd, crisp_err_t *err);

/* The entry of a re-executed monitor (crisp-execd CTR_MONITOR_ARG ...). */
int ctr_monitor_main(int argc, char **argv);

/* Connect to a container's monitor control socket and send cmd ('R'
 * reopen log; 'A' attach; 'a' attach with stdin).  Returns the connected
 * SOCK_SEQPACKET fd (CLOEXEC). */
int ctr_monitor_connect(const char *run_dir, char cmd, int *fd, crisp_err_t *err);

/* Read the exit record; 0 and fields set, or -1 (absent or malformed). */
int ctr_exit_read(const char *run_dir, int32_t *code, int64_t *finished_ns, int *signo);

/* The monitor's "started" record (container pid and start time, monitor
 * pid and start time), written before it reports to execd. */
int ctr_started_read(const char *run_dir, pid_t *pid, uint64_t *pid_start, pid_t *mpid, uint64_t *mstart);

/* /proc/<pid>/stat starttime, or 0. */
uint64_t ctr_proc_start(pid_t pid);

/* ---- a pod's shared PID namespace (ctr_infra.c) ---- */

#define POD_INFRA_ARG "--pod-infra"

/* Start the pid 1 of a new PID namespace for a pod (joining its network
 * namespace netns_fd if >= 0, and its pinned uts/ipc under nsdir when
 * asked); dir is an empty directory it pivots into.  *pid and *start
 * (/proc stat starttime) identify it against pid reuse. */
int pod_infra_spawn(const char *dir, int netns_fd, const char *nsdir, bool uts, bool ipc, pid_t *pid,
		    uint64_t *start, crisp_err_t *err);
/* SIGKILL it if pid still is the process that started at start. */
void pod_infra_kill(pid_t pid, uint64_t start);
/* The entry of a re-executed infra process. */
int pod_infra_main(int argc, char **argv);

/* ---- exec sessions (ctr_exec.c) ---- */

/*
 * Fork a helper that runs spec (argv, env, ids, caps, seccomp) inside the
 * running container whose init is target (launch_exec) and relays its
 * stdio as frames (execd.h) over a new SOCK_SEQPACKET socketpair: *sockfd
 * is execd's end.  The helper ends the session with a status frame; when
 * the peer closes its end, it SIGKILLs the process.  *helper gets the pid
 * of the helper (a child of execd, to be reaped).
 */
int ctr_exec_spawn(pid_t target, struct launch_spec *spec, bool tty, bool want_stdin, int *sockfd,
		   pid_t *helper, crisp_err_t *err);

#endif
