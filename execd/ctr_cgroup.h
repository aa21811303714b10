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

#define CTR_CG_MAX 8            /* hierarchies execd may use */

struct ctr_cg {
	bool v2;
	int n;                      /* hierarchies (1 with v2) */
	char dir[CTR_CG_MAX][PATH_MAX];  /* the container's cgroup in each */
	char ctrl[CTR_CG_MAX][32];  /* v1: the hierarchy's controllers ("cpu,cpuacct") */
	size_t root_len[CTR_CG_MAX];     /* length of the hierarchy's mount point in dir */
};

struct ctr_cg_stats {
	uint64_t cpu_ns, mem_usage, mem_working_set;
};

/* Where the cgroup file system and the kernel's huge page sizes are
 * (defaults /sys/fs/cgroup and /sys/kernel/mm/hugepages; NULL restores
 * the default).  Tests point them at a directory laid out the same way. */
void ctr_cgroup_set_roots(const char *cgroup_root, const char *hugepages_dir);

/* The container's cgroup paths under parent (the pod's cgroup_parent). */
int ctr_cgroup_paths(const char *parent, const char *id, struct ctr_cg *cg, crisp_err_t *err);
/* mkdir every hierarchy's cgroup and apply r (NULL: no limits); on failure
 * nothing is left. */
int ctr_cgroup_create(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err);
/* What of r depends on the node, checked before anything is written:
 * unified only on cgroup v2; huge page sizes the kernel supports; a swap
 * limit only with a memory limit and not below it.  INVALID_ARGUMENT. */
int ctr_cgroup_check(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err);
/* Apply limits (UpdateContainerResources): ctr_cgroup_check, then cpuset,
 * huge pages, memory and swap, cpu, and last the unified (v2) files.  A
 * field left 0 or empty is left as it is; huge page limits are skipped
 * when the node has no hugetlb controller, the swap limit when it has no
 * swap accounting (as CRI-O does). */
int ctr_cgroup_apply(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err);
/* rmdir them (idempotent; the processes must be gone). */
void ctr_cgroup_remove(const struct ctr_cg *cg);
bool ctr_cgroup_oom_killed(const struct ctr_cg *cg);
void ctr_cgroup_stats(const struct ctr_cg *cg, struct ctr_cg_stats *s);

/* The limits in force, read back from the cgroup files (ContainerStatus
 * resources): what UpdateContainerResources changed included.  A field
 * whose file is absent or unreadable keeps the value r had; "no limit"
 * reads as 0 (memory+swap: -1 when only memory is limited). */
void ctr_cgroup_read(const struct ctr_cg *cg, Runtime__V1__LinuxContainerResources *r, char *cpus, char *mems,
		     size_t setsz);

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
