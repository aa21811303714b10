/*
 * execd/ctr_cgroup: a container's cgroups (see ctr_cgroup.c).
 */
#ifndef CRISP_EXECD_CTR_CGROUP_H
#define CRISP_EXECD_CTR_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "proto/cri.pb-c.h"

struct ctr_cg {
	bool v2;
	int n;                      /* hierarchies (1 with v2) */
	char dir[4][PATH_MAX];      /* the container's cgroup in each */
	char ctrl[4][16];           /* v1 controller names */
};

struct ctr_cg_stats {
	uint64_t cpu_ns, mem_usage, mem_working_set;
};

/* The container's cgroup paths under parent (the pod's cgroup_parent). */
int ctr_cgroup_paths(const char *parent, const char *id, struct ctr_cg *cg, crisp_err_t *err);
/* mkdir every hierarchy's cgroup and apply r (NULL: no limits); on failure
 * nothing is left. */
int ctr_cgroup_create(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err);
/* Apply limits (UpdateContainerResources). */
int ctr_cgroup_apply(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err);
/* rmdir them (idempotent; the processes must be gone). */
void ctr_cgroup_remove(const struct ctr_cg *cg);
bool ctr_cgroup_oom_killed(const struct ctr_cg *cg);
void ctr_cgroup_stats(const struct ctr_cg *cg, struct ctr_cg_stats *s);

/* The parent's own cgroup in every hierarchy (a pod's cgroup_parent). */
int ctr_cgroup_parent_paths(const char *parent, struct ctr_cg *cg, crisp_err_t *err);
/* Every hierarchy's directory exists. */
bool ctr_cgroup_exists(const struct ctr_cg *cg);
/* Tasks in the cgroup and below: pids.current, else the member processes
 * counted from cgroup.procs (depth-bounded walk). */
uint64_t ctr_cgroup_procs(const struct ctr_cg *cg);
/* SIGKILL every process still in the container's cgroup: what outlives
 * the container's init when it shares a PID namespace (the host's, or the
 * pod's) instead of dying with its own.  cgroup.kill on v2; on v1 each pid
 * is pinned with a pidfd and checked to be a member before the signal.
 * Returns how many were signalled. */
int ctr_cgroup_kill_all(const struct ctr_cg *cg);

#endif
