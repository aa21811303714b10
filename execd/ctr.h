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
#include "monitor/monitor.h"
#include "proto/ipc.pb-c.h"

#define CTR_EXEC_OUTPUT_MAX (16u * 1024 * 1024) /* ExecSync stdout+stderr */

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
/* The name of capability n without "CAP_" ("CHOWN"), or NULL. */
const char *ctr_cap_name(int n);

/* The RuntimeDefault seccomp filter (Docker/containerd's default profile
 * semantics: kernel-level and namespace syscalls refused with EPERM, some
 * allowed back by capabilities) as a sealed BPF memfd. */
int ctr_seccomp_default(uint64_t caps, int *fd, crisp_err_t *err);
/* The same filter as OCI runtime-spec seccomp JSON (for external runtimes;
 * malloc'd text). */
char *ctr_seccomp_default_oci(uint64_t caps, crisp_err_t *err);

/* A Localhost profile (OCI/Docker seccomp JSON, ctr_seccomp.c) compiled
 * for a container holding caps (for includes/excludes), as a sealed BPF
 * memfd.  Anything it cannot apply as written is INVALID_ARGUMENT. */
int ctr_seccomp_profile(const char *json, size_t len, uint64_t caps, int *fd, crisp_err_t *err);
int ctr_seccomp_profile_file(const char *path, uint64_t caps, int *fd, crisp_err_t *err);
/* A Localhost profile that ctr_seccomp_profile accepted, as OCI
 * runtime-spec JSON for a container holding caps: includes/excludes
 * resolved, only the keys the runtime spec knows (malloc'd text). */
char *ctr_seccomp_profile_oci(const char *json, size_t len, uint64_t caps, crisp_err_t *err);
char *ctr_seccomp_profile_file_oci(const char *path, uint64_t caps, crisp_err_t *err);

/* Default masked and read-only paths (CRI-O's). */
extern const char *const ctr_default_masked[];
extern const char *const ctr_default_readonly[];

/* ---- the CRI log format: monitor/monitor.h (monitor/cri_log.c) ---- */

/* ---- the monitor (ctr_monitor.c) ---- */

/* CTR_MONITOR_ARG and the monitor's argv: monitor/monitor.h.  The monitor
 * is its own binary, crisp-monitor, beside crisp-execd. */

/* At execd's start: open crisp-monitor beside this binary (O_PATH), to be
 * executed by fd for every container.  An error when it is missing. */
int ctr_monitor_exe_open(crisp_err_t *err);

struct ctr_oci;

/* What execd hands a monitor it forks at StartContainer. */
struct ctr_monitor_args {
	const char *id;
	const char *run_dir;   /* <runroot>/containers/<id> */
	const char *log_path;  /* absolute, or "" for none */
	bool tty, want_stdin, stdin_once;
	struct launch_spec *spec; /* stdio and terminal are filled in by the monitor */
	const int *keep_fds;   /* fds of spec the monitor must keep (ns, seccomp) */
	size_t nkeep;
	const struct ctr_oci *oci; /* NULL: crisp's launcher; else an external runtime */
};

/*
 * Fork the monitor: it detaches (setsid, every other fd closed), makes the
 * container's stdio, launches the container, writes to *result_fd (a
 * socket execd reads) "OK <pid> <starttime> <monitor starttime>\n" or
 * "ERR <errno> <message>" (then exits), waits until execd closes
 * *result_fd (at most 5 s), then executes crisp-monitor (the fd opened by
 * ctr_monitor_exe_open; without one, /proc/self/exe CTR_MONITOR_ARG ...)
 * as a fresh monitor that holds nothing of execd.  Returns the monitor's
 * pid.
 */
pid_t ctr_monitor_spawn(const struct ctr_monitor_args *a, int *result_fd, crisp_err_t *err);

/* The monitor's loop in this image (monitor_main): the entry of
 * /proc/self/exe CTR_MONITOR_ARG ..., and the fallback when crisp-monitor
 * cannot be executed. */
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
 * asked); dir is an empty directory it pivots into; label: its SELinux
 * process label (NULL or "": none).  *pid and *start (/proc stat
 * starttime) identify it against pid reuse. */
int pod_infra_spawn(const char *dir, int netns_fd, const char *nsdir, bool uts, bool ipc, const char *label,
		    pid_t *pid, uint64_t *start, crisp_err_t *err);
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
