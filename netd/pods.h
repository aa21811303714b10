/*
 * netd: pod networks on execd's request.
 *
 * NET_SETUP pins a new network namespace under <netns dir>/<pod id> (the
 * netd.netns_dir setting, e.g. /run/netns where `ip netns` lists them;
 * default <runroot>/netns) and
 * runs the CNI ADD chain of the default network in it; the answer carries
 * the pod's IPs and an fd of the namespace (execd joins it by fd, never by
 * path).  NET_TEARDOWN runs CNI DEL (from the durable cache when there is
 * one, so a crisp restart in between changes nothing) and removes the pin;
 * both are idempotent.
 *
 * Each operation runs in a forked child of netd: CNI plugins are processes
 * anyway, different pods proceed in parallel, the event loop never blocks,
 * and a plugin result that crashes the parser costs one child.  The child
 * reports through a pipe watched by the loop: one tag byte ('R' result,
 * 'E' error) and a packed cipc message.
 */
#ifndef NETD_PODS_H
#define NETD_PODS_H

#include <limits.h>

#include "ipc/ipc.h"
#include "proto/ipc.pb-c.h"

struct pod_op;

struct netd_pods {
	struct loop *loop;
	char netns_dir[PATH_MAX]; /* <runroot>/netns, unless netd.netns_dir is set */
	char cache_dir[PATH_MAX]; /* <root>/netd/cni-cache */
	/* <root>/netd/pods: one record per pod whose network may exist
	 * (written after the pin, before CNI ADD; removed once DEL and the
	 * unpin succeeded).  A teardown that finds no record, no pin and no
	 * CNI cache entry has nothing to undo and runs no plugin. */
	char state_dir[PATH_MAX];
	struct pod_op *ops;       /* in flight */
	unsigned nops;
	/* UpdateRuntimeConfig's pod CIDRs, kept in <root>/netd/pod-cidrs so a
	 * restart keeps them; offered as the ipRanges capability */
	char pod_cidrs[1024];     /* comma-separated, "" when none */
	char cidr_file[PATH_MAX];
};

void netd_pods_runtime_config(struct netd_pods *np, struct ipc_chan *ch, struct ipc_msg *m);

/* Open the network namespace of a pod netd set up (O_RDONLY|O_CLOEXEC fd,
 * checked to be a netns), wherever it was pinned: the pod's record names
 * the directory (netd.netns_dir may have changed since), else the default
 * directory.  NOT_FOUND when the pod has no pinned namespace. */
int netd_pods_netns_open(const struct netd_pods *np, const char *pod_id, int *fd, crisp_err_t *err);

#define NETD_MAX_OPS 256

int netd_pods_init(struct netd_pods *np, struct loop *l, const char *root, const char *runroot,
		   crisp_err_t *err);
/* Kill and reap every child still running (their callers get nothing). */
void netd_pods_stop(struct netd_pods *np);

/* Handlers: cfg is netd's committed configuration (may be NULL). */
void netd_pods_setup(struct netd_pods *np, const Cipc__Config *cfg, struct ipc_chan *ch, struct ipc_msg *m);
void netd_pods_teardown(struct netd_pods *np, const Cipc__Config *cfg, struct ipc_chan *ch, struct ipc_msg *m);

#endif
