/*
 * execd: pod sandboxes (RunPodSandbox, StopPodSandbox, RemovePodSandbox,
 * PodSandboxStatus, ListPodSandbox).
 *
 * A pod is a record in execd's state database plus, under
 * <runroot>/pods/<id>/: its hostname, resolv.conf and hosts files, and its
 * UTS and IPC namespaces pinned by bind mounts (ns/uts, ns/ipc; no infra
 * process: nothing to pull, nothing to keep alive).  Its network namespace
 * is netd's (NET_SETUP / NET_TEARDOWN); host-network pods get none.
 * Sysctls are applied inside the pod's own namespaces, only the namespaced
 * keys, and refused when the namespace is the host's.
 *
 * Every request is validated again here (frontd's checks are a convenience)
 * and recorded before it is answered; a create that fails half way is
 * rolled back, and one interrupted by a crash is rolled back at the next
 * start (state_recover).
 */
#ifndef EXECD_PODS_H
#define EXECD_PODS_H

#include <limits.h>

#include <sys/stat.h>

#include "execd/lsm.h"
#include "execd/state.h"
#include "ipc/role.h"
#include "policy/runtime.h"

struct execd_pods {
	struct role_ctx *role;
	struct state *st;
	char pods_dir[PATH_MAX]; /* <runroot>/pods */
	struct state_recovery *pending_rollback; /* CREATING pods found at start */
	size_t npending;
	/* runtime admission policy (policy/runtime.h), re-read when the file
	 * changes; a file that does not parse refuses every new pod */
	char policy_path[PATH_MAX];
	struct rp_policy policy;
	bool policy_ok;
	char policy_err[CRISP_ERR_MSG_MAX];
	struct stat policy_st;
	bool policy_loaded;
	/* SELinux/AppArmor state of the node and the pods' MCS pairs */
	struct lsm lsm;
	/* RuntimeClass handlers run by an external OCI runtime (ctr_oci.h),
	 * from [execd] runtime_handlers; "" is crisp's own launcher */
	struct pods_handler {
		char name[64];
		char path[PATH_MAX];
	} handlers[16];
	size_t nhandlers;
};

/* The configured handlers ("name=/path" each, checked by crispd). */
void pods_set_handlers(struct execd_pods *p, char *const *h, size_t n);
/* The runtime binary of handler name; NULL for "" (crisp's launcher) and
 * for a handler that is not configured (see pods_handler_known). */
const char *pods_handler_path(const struct execd_pods *p, const char *name);
bool pods_handler_known(const struct execd_pods *p, const char *name);

/* The configured policy file (empty: the embedded default). */
void pods_set_policy_path(struct execd_pods *p, const char *path);

/* The runtime policy in force (reloaded when its file changed). */
int pods_policy(struct execd_pods *p, const struct rp_policy **out, crisp_err_t *err);

int pods_init(struct execd_pods *p, struct role_ctx *r, const char *root, const char *runroot, crisp_err_t *err);
void pods_close(struct execd_pods *p);
/* Label the pod's /dev/shm tmpfs with its SELinux mount label (no-op
 * without SELinux); after a remount of it. */
int pods_shm_label(struct execd_pods *p, const struct state_pod *pod, crisp_err_t *err);

/* netd (re)connected: finish rolling back pods found half made at start. */
void pods_netd_up(struct execd_pods *p);

/* Answer a request; an answer that cannot be sent becomes an error answer. */
void pods_answer(struct ipc_chan *ch, uint64_t reqid, uint32_t type, const ProtobufCMessage *pb);

/* A state label selector from CRI filter entries (Pod or Container
 * filter: same layout); free() it. */
struct state_kv *pods_selector(void *const *entries, size_t n);

/* map<string,string> entries for CRI answers (free with pods_kv_free). */
void *pods_kv_entries(const struct state_kvs *kvs);
void pods_kv_free(void *entries);

void pods_on_run(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p);
void pods_on_stop(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p);
void pods_on_remove(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p);
void pods_on_status(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p);
void pods_on_list(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p);

#endif
