/*
 * execd/ctr_oci: runtime handlers that hand a container to an external OCI
 * runtime (runc, crun) instead of crisp's own launcher.
 *
 * The container is described once, as the struct launch_spec execd builds
 * after its policy checks (ctr_build.c).  For an external handler that same
 * spec is written out as an OCI runtime-spec config.json: nothing the
 * runtime sees was decided anywhere else, so the policy, the capabilities,
 * the seccomp filter, the mounts and the masked paths are the ones crisp's
 * own launcher would apply.  What changes is only who performs the steps.
 *
 * Flow (in the monitor, still in execd's image, before it re-executes):
 *   <run dir>/oci/config.json   written 0600 from the spec
 *   prctl(PR_SET_CHILD_SUBREAPER)  the container's init, orphaned when the
 *                               runtime exits, becomes the monitor's child
 *   <runtime> --root <runroot>/runtimes/<handler> --log=<run dir>/oci/log
 *       --log-format=json run --detach --bundle <run dir>/oci
 *       --pid-file <run dir>/oci/pid [--console-socket ...] <id>
 *                               bounded by the spec's timeout, then killed
 *   pid file -> the container's pid; a tty's master arrives on the console
 *   socket (SCM_RIGHTS)
 * The namespaces execd opened and checked (pod uts/ipc/net, a pid namespace
 * to join) are named by /proc/<monitor>/fd/<n>: the runtime joins exactly
 * the namespace execd pinned, never a path that could be swapped.
 *
 * After that the container is crisp's like any other: the monitor reaps it
 * and writes its log and exit record; stop signals its pid; ExecSync and
 * exec sessions join its namespaces with crisp's launcher; stats read its
 * cgroup (the runtime is given crisp's cgroup path).  RemoveContainer runs
 * "<runtime> delete --force <id>" so the runtime's own state goes too.
 * Only namespace-based runtimes fit this model: VM-based ones (kata) and
 * gVisor are not supported.
 */
#ifndef CRISP_EXECD_CTR_OCI_H
#define CRISP_EXECD_CTR_OCI_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"
#include "execd/launch.h"

struct ctr_oci {
	const char *handler;      /* the RuntimeClass handler name */
	const char *runtime;      /* absolute path of the runtime binary */
	const char *state_root;   /* --root: <runroot>/runtimes/<handler> */
	const char *bundle;       /* <run dir>/oci */
	const char *id;           /* the container id, the runtime's id too */
	const char *cgroups_path; /* linux.cgroupsPath ("" = none) */
	const char *seccomp_json; /* linux.seccomp as OCI JSON (NULL = none) */
};

/*
 * The OCI config.json of spec s (malloc'd text).  ns_pid: the process that
 * holds the spec's JOIN namespace fds (paths /proc/<ns_pid>/fd/<n>).
 * Pure apart from reading nothing: unit-tested.
 */
char *ctr_oci_config(const struct launch_spec *s, const struct ctr_oci *o, pid_t ns_pid, crisp_err_t *err);

/*
 * Run the container through the runtime (called in the monitor before it
 * re-executes; the caller is a child subreaper).  stdio: the container's
 * 0/1/2 (-1: /dev/null) when !tty; with tty the runtime makes the pty and
 * its master is returned in *pty_master.  res->pid is the container's init,
 * now a child of the caller.  On failure nothing is left running.
 */
int ctr_oci_run(const struct launch_spec *s, const struct ctr_oci *o, const int stdio[3], bool tty,
		int *pty_master, struct launch_result *res, crisp_err_t *err);

/* "<runtime> --root <root> delete --force <id>", bounded: the runtime's
 * state of a container that is gone (idempotent). */
int ctr_oci_delete(const char *runtime, const char *state_root, const char *id, crisp_err_t *err);
/* The same delete as a child the caller waits for (its pid, or -1). */
pid_t ctr_oci_delete_spawn(const char *runtime, const char *state_root, const char *id, crisp_err_t *err);

/* The cgroupsPath a runtime's cgroupfs driver wants for a cgroup directory
 * (the path below the hierarchy's mount point); "" when unknown. */
void ctr_oci_cgroups_path(const char *cgroup_dir, char *out, size_t n);

#endif
