/*
 * policy/runtime: what pods may ask of the node, per Kubernetes namespace.
 * Pure code: it takes the policy file's bytes; execd loads the file and
 * enforces the answers itself (frontd's checks are not the boundary).
 *
 * Format (JSON, unknown keys are errors, duplicate keys refused):
 *
 *   {
 *     "default": { RULES },
 *     "namespaces": { "kube-system": { RULES }, ... }
 *   }
 *
 *   RULES (every key optional; a namespace's rules override the default's
 *   key by key, a missing key inherits it; a key the file's "default"
 *   leaves out keeps the embedded default's value, so a file narrows only
 *   what it names):
 *     "privileged":        bool   privileged containers
 *     "hostNetwork":       bool   pods in the node's network namespace
 *     "hostPID":           bool   ... PID namespace
 *     "hostIPC":           bool   ... IPC namespace
 *     "unconfinedSeccomp": bool   containers without a seccomp filter
 *     "devices":           bool   CRI devices in containers
 *     "hostPathPrefixes":  [path] host paths a mount may come from ("/" = any)
 *     "addCapabilities":   [name] capabilities a container may add ("ALL" = any)
 *     "runtimeHandlers":   [name] runtime handlers a pod may use ("" = crisp's
 *                                own launcher, "*" = any handler crisp.conf
 *                                configures; the embedded default is ["*"])
 *
 * The embedded default allows what Kubernetes itself allows (as CRI-O and
 * containerd do), so a cluster works on first start; a hardened node ships
 * a file that narrows it.  A refusal is PERMISSION_DENIED naming the rule:
 * "runtime policy (namespace web): hostNetwork is not allowed".
 *
 * The namespace comes from the CRI request, i.e. from kubelet: per-namespace
 * rules protect against what kubelet is asked to run, not against a lying
 * kubelet (SECURITY.md).
 */
#ifndef CRISP_POLICY_RUNTIME_H
#define CRISP_POLICY_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define RP_MAX_NAMESPACES 4096
#define RP_MAX_LIST 256

struct rp_list {
	bool set;
	char **v;
	size_t n;
};

struct rp_rules {
	int privileged, host_network, host_pid, host_ipc, unconfined_seccomp, devices; /* -1 unset, 0, 1 */
	struct rp_list host_path_prefixes, add_capabilities, runtime_handlers;
};

struct rp_namespace {
	char *name;
	struct rp_rules rules;
};

struct rp_policy {
	struct rp_rules def;
	struct rp_namespace *ns;
	size_t nns;
};

extern const char rp_default_text[];

int rp_parse(const char *buf, size_t len, struct rp_policy *out, crisp_err_t *err);
int rp_default(struct rp_policy *out, crisp_err_t *err);
void rp_free(struct rp_policy *p);

struct rp_pod {
	const char *ns;
	bool host_network, host_pid, host_ipc;
	const char *runtime_handler;
};

struct rp_container {
	const char *ns;
	bool privileged, unconfined_seccomp;
	const char *const *add_caps; /* "NET_ADMIN" or "CAP_NET_ADMIN" */
	size_t nadd_caps;
	const char *const *host_paths; /* mount sources, resolved by the caller
					* (realpath): a symlink under an allowed
					* prefix can point anywhere */
	size_t nhost_paths;
	size_t ndevices;
};

int rp_check_pod(const struct rp_policy *p, const struct rp_pod *rq, crisp_err_t *err);
int rp_check_container(const struct rp_policy *p, const struct rp_container *rq, crisp_err_t *err);

#endif
