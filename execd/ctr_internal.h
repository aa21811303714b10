/*
 * execd/ctr_internal: the container module's private state, shared by
 * ctr_life.c (lifecycle), ctr_build.c (launch specs) and ctr_ops.c
 * (ExecSync, sessions, logs, resources, stats).
 */
#ifndef CRISP_EXECD_CTR_INTERNAL_H
#define CRISP_EXECD_CTR_INTERNAL_H

#include <limits.h>

#include "execd/ctr.h"
#include "execd/ctr_cgroup.h"
#include "execd/execd.h"
#include "execd/state.h"

typedef void (*ctr_exit_fn)(struct execd *x, const char *id, void *arg);

struct ctr_waiter {
	struct ctr_waiter *next;
	ctr_exit_fn fn;
	void *arg;
	void (*drop)(void *arg); /* execd stops before the exit: release arg */
};

/* A container whose monitor runs: execd watches the monitor's pidfd. */
struct ctr_watch {
	struct ctr_watch *next;
	struct execd *x;
	char id[STATE_ID_LEN + 1];
	char pod_id[STATE_ID_LEN + 1];
	pid_t mpid, pid;
	uint64_t pid_start;
	int mpidfd;
	bool own_child;    /* forked by this execd: reap it */
	bool pid_pod;      /* its pid namespace is the pod's (NamespaceMode POD) */
	struct loop_timer *kill_timer;
	struct ctr_waiter *waiters;
};

struct oci_del;

struct execd_ctrs {
	struct execd *x;
	char root[PATH_MAX]; /* <root>/containers */
	char run[PATH_MAX];  /* <runroot>/containers */
	struct ctr_watch *watches;
	struct oci_del *oci_dels; /* external runtimes' deletes running (ctr_life.c) */
};

/* Everything one launch needs, owning its allocations (ctr_build.c). */
struct ctr_built {
	struct launch_spec s;
	char **argv, **env;
	struct ctr_user user;
	struct launch_mount mounts[80];
	size_t nmounts;
	struct launch_device devices[64];
	size_t ndevices;
	char *strs[160];   /* strings the mounts/devices point to */
	size_t nstrs;
	const char *masked[64], *readonly[32];
	int nsfd[LAUNCH_NS_COUNT];
	int keep[LAUNCH_NS_COUNT + 1];
	size_t nkeep;
	char cwd[PATH_MAX];
	struct ctr_cg cg;
	const char *cg_extra[CTR_CG_MAX];
	bool pid_pod;
	char *seccomp_oci;  /* external runtimes: the filter as OCI JSON */
};

void ctr_built_init(struct ctr_built *b);
void ctr_built_free(struct ctr_built *b);

/*
 * Build the launch spec of container c (its packed ContainerConfig, image
 * record and pod).  exec_target > 0: for a process in the running
 * container (user resolved in /proc/<pid>/root; cmd replaces the argv).
 */
int ctr_build(struct execd *x, const struct state_ctr *c, const struct state_pod *pod,
	      const Runtime__V1__ContainerConfig *cfg, const Cipc__ImageResolved *img, const char *rootfs,
	      pid_t exec_target, char *const *cmd, size_t ncmd, struct ctr_built *b, crisp_err_t *err);

/* An external OCI runtime's copy of the seccomp filter ctr_build chose
 * (into b->seccomp_oci; NULL when the container has none). */
int ctr_build_oci_seccomp(const Runtime__V1__ContainerConfig *cfg, struct ctr_built *b, crisp_err_t *err);

/* A container's SELinux process and mount labels and AppArmor profile
 * (execd/lsm.h; "" = none), from its config and its pod's record. */
int ctr_lsm_labels(struct execd *x, const struct state_pod *pod, const Runtime__V1__ContainerConfig *cfg,
		   char process[LSM_LABEL_MAX], char mount[LSM_LABEL_MAX], char apparmor[LSM_PROFILE_MAX],
		   crisp_err_t *err);

/* PID mode TARGET: target (an id or unique prefix) names a RUNNING container
 * of pod other than self (NULL: not created yet); its full id into full.
 * NOT_FOUND, FAILED_PRECONDITION (other pod, not running) or
 * INVALID_ARGUMENT (itself, empty). */
int ctr_target_check(struct execd *x, const struct state_pod *pod, const char *self, const char *target,
		     char full[STATE_ID_LEN + 1], crisp_err_t *err);

/* Paths. */
int ctr_root_dir(struct execd *x, const char *id, const char *leaf, char *out, size_t n);
int ctr_run_dir(struct execd *x, const char *id, const char *leaf, char *out, size_t n);

/* The image record saved at create (free with cipc__image_resolved__free_unpacked). */
Cipc__ImageResolved *ctr_image_load(struct execd *x, const char *id);
/* The pod's cgroup_parent saved at create. */
int ctr_cgroups(struct execd *x, const char *id, struct ctr_cg *cg, crisp_err_t *err);

struct ctr_watch *ctr_watch_find(struct execd *x, const char *id);
/* Signal the container's process (pid + start time checked); 0 or -1. */
int ctr_signal(pid_t pid, uint64_t start, int sig);

/* Add a child of execd (an exec helper) to reap when it exits. */
void ctr_reap_later(struct execd *x, pid_t pid);

void ctr_answer_error(struct ipc_chan *ch, uint64_t reqid, const crisp_err_t *e);

#endif
