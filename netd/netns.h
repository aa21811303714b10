/*
 * netd: pod network namespaces pinned by a bind mount.
 *
 * A namespace is created by a forked child that unshares CLONE_NEWNET and
 * bind-mounts its /proc/self/ns/net onto an empty file <dir>/<name>; the
 * mount keeps the namespace alive after the child exits.  netd itself
 * never changes namespace and never opens /proc/PID/ns of a process it did
 * not create (no CAP_SYS_PTRACE needed).
 *
 * Propagation: as iproute2 (`ip netns add`), containernetworking's
 * pkg/testutils and podman's pkg/netns do, the directory is made a mount
 * point of its own (bound onto itself when it is not one) and marked
 * MS_SHARED.  A mount namespace cloned later (execd's containers) then
 * receives the *removal* of a pin by propagation: a pin copied into a
 * container's namespace would otherwise keep the netns alive forever after
 * netd unmounts it.  Runtimes make the container's tree rslave/private
 * before pivot_root, so pins never leak into a pod's view; execd gets the
 * namespace as an fd anyway, not by path.
 */
#ifndef NETD_NETNS_H
#define NETD_NETNS_H

#include <stddef.h>

#include "common/err.h"

#define NETNS_NAME_MAX 128

/* Create dir (0711, root) when missing and make it a shared mount point of
 * its own.  Idempotent; netns_create calls it. */
int netns_prepare_dir(const char *dir, crisp_err_t *err);

/* Create and pin a new network namespace at <dir>/<name> (name: no '/', not
 * "." or "..", at most NETNS_NAME_MAX bytes).  ALREADY_EXISTS when the pin
 * exists.  On success path (when not NULL, pathsz bytes) gets the pin's
 * path and *fd (when not NULL) an O_RDONLY|O_CLOEXEC fd of the namespace. */
int netns_create(const char *dir, const char *name, char *path, size_t pathsz, int *fd, crisp_err_t *err);

/* Open an existing pin (checked to be a network namespace). */
int netns_open(const char *dir, const char *name, int *fd, crisp_err_t *err);

/* Unmount (MNT_DETACH) and unlink the pin.  Idempotent: a missing pin, or a
 * file that is no longer mounted, is success. */
int netns_delete(const char *dir, const char *name, crisp_err_t *err);

#endif
