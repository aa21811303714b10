/*
 * execd/ctr_shm: the pod's /dev/shm.  A pod with its own IPC namespace owns
 * one tmpfs (nosuid, nodev, noexec, mode 1777, 64 MiB as CRI-O's default
 * shm_size) at <runroot>/pods/<id>/shm, made at RunPodSandbox and
 * bind-mounted at /dev/shm into every container of the pod, so that they
 * share POSIX shared memory as they share SysV IPC.  Containers of host-IPC
 * pods bind the node's /dev/shm instead, as CRI-O does.
 */
#ifndef CRISP_EXECD_CTR_SHM_H
#define CRISP_EXECD_CTR_SHM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define CTR_SHM_LEAF "shm"
#define CTR_SHM_OPTS "mode=1777,size=65536k"

/* <pods_dir>/<pod_id>/shm into out; -1 if it does not fit. */
int ctr_shm_path(const char *pods_dir, const char *pod_id, char *out, size_t n);

/* Mount the pod's shm tmpfs unless it is already there (idempotent). */
int ctr_shm_mount(const char *pods_dir, const char *pod_id, crisp_err_t *err);

/* Is the pod's shm tmpfs mounted? */
bool ctr_shm_mounted(const char *pods_dir, const char *pod_id);

/* Unmount it (every layer, lazily) and remove its directory; idempotent. */
void ctr_shm_unmount(const char *pods_dir, const char *pod_id);

#endif
