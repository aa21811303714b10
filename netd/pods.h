/*
 * netd: pod networks on execd's request.
 *
 * NET_SETUP pins a new network namespace under <runroot>/netns/<pod id> and
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
	char netns_dir[PATH_MAX]; /* <runroot>/netns */
	char cache_dir[PATH_MAX]; /* <root>/netd/cni-cache */
	struct pod_op *ops;       /* in flight */
	unsigned nops;
	/* UpdateRuntimeConfig's pod CIDRs, kept in <root>/netd/pod-cidrs so a
	 * restart keeps them; offered as the ipRanges capability */
	char pod_cidrs[1024];     /* comma-separated, "" when none */
	char cidr_file[PATH_MAX];
};

void netd_pods_runtime_config(struct netd_pods *np, struct ipc_chan *ch, struct ipc_msg *m);

#define NETD_MAX_OPS 256

int netd_pods_init(struct netd_pods *np, struct loop *l, const char *root, const char *runroot,
		   crisp_err_t *err);
/* Kill and reap every child still running (their callers get nothing). */
void netd_pods_stop(struct netd_pods *np);

/* Handlers: cfg is netd's committed configuration (may be NULL). */
void netd_pods_setup(struct netd_pods *np, const Cipc__Config *cfg, struct ipc_chan *ch, struct ipc_msg *m);
void netd_pods_teardown(struct netd_pods *np, const Cipc__Config *cfg, struct ipc_chan *ch, struct ipc_msg *m);

#endif
