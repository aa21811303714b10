/*
 * netd: running CNI plugins (spec 1.0.0; 0.4.0 and 0.3.x results read too)
 * for a network list: ADD (chained through prevResult), CHECK, DEL.
 *
 * Execution model.  These calls are synchronous: each plugin is fork+exec'd
 * and waited for with poll() on its stdout, stderr and a pidfd, under a
 * deadline.  netd must not block its event loop on them (a bridge ADD takes
 * tens of ms, a hung plugin up to the timeout), so netd runs each pod
 * operation in a forked helper process (netd is single-threaded) that calls
 * cni_add/cni_del and writes the serialized answer to a pipe that the loop
 * watches.  Reasons over an asynchronous state machine inside netd: the
 * plugins are processes anyway; a helper per operation gives parallelism
 * across pods for free; a crash or leak in the parser dies with the helper;
 * and the durable cache (below) is the only state shared, written
 * atomically per attachment.
 *
 * Plugin binaries.  `type` must not contain '/' (cniconf checks).  It is
 * looked up in the configured directories in order; the first entry that
 * exists must be (after following symlinks: distributions and operators
 * symlink plugins, e.g. /opt/cni/bin -> /usr/lib/cni) a regular file,
 * executable, owned by root and not group/world-writable; otherwise the
 * lookup fails (it does not fall through to the next directory: a broken
 * entry is an operator error to report, not to hide).
 *
 * Environment: CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,
 * CNI_ARGS (IgnoreUnknown=1;K8S_POD_NAMESPACE=..;K8S_POD_NAME=..;
 * K8S_POD_INFRA_CONTAINER_ID=..;K8S_POD_UID=..), CNI_PATH and
 * PATH=/usr/sbin:/usr/bin:/sbin:/bin, nothing else.  stdin is a memfd with
 * the configuration; stdout/stderr are pipes with size limits (exceeding
 * one kills the plugin's process group); every other fd is closed; the
 * plugin runs in its own process group, killed with SIGKILL at the
 * deadline; signal mask and dispositions are reset.
 *
 * Cache.  After a successful ADD, {config, result, ids} is written
 * atomically to <cache_dir>/<network>-<containerid>-<ifname>; DEL and
 * CHECK use the cached config and prevResult when present (so a DEL after
 * a restart, or after the config changed, undoes what was done); DEL
 * removes it after every plugin succeeded.
 */
#ifndef NETD_CNI_H
#define NETD_CNI_H

#include <netinet/in.h>
#include <stddef.h>

#include <jansson.h>

#include "common/err.h"
#include "netd/cniconf.h"

#define CNI_DEFAULT_TIMEOUT_MS 60000u
#define CNI_DEFAULT_MAX_STDOUT (1u << 20)
#define CNI_DEFAULT_MAX_STDERR (64u << 10)
#define CNI_MAX_IPS 16

struct cni_opts {
	const char *const *bin_dirs; /* plugin directories, in search order */
	size_t nbin_dirs;
	const char *cache_dir;       /* created (0700) when missing */
	unsigned timeout_ms;         /* per plugin call; 0: default */
	size_t max_stdout;           /* 0: default */
	size_t max_stderr;           /* 0: default */
};

/* One attachment of a pod to a network. */
struct cni_rt {
	const char *container_id; /* sandbox id: [A-Za-z0-9_.-], no leading '.' */
	const char *netns;        /* pinned path (netns.h) */
	const char *ifname;       /* e.g. "eth0" */
	const char *k8s_namespace, *k8s_name, *k8s_uid; /* CNI_ARGS; NULL: left out */
	/* Capability arguments offered to plugins, e.g.
	 * {"portMappings":[...],"dns":{...},"bandwidth":{...}}; a plugin gets
	 * in runtimeConfig only the keys its "capabilities" declare true.
	 * Borrowed, may be NULL. */
	json_t *capability_args;
};

struct cni_ip {
	int family;                     /* AF_INET or AF_INET6 */
	char addr[INET6_ADDRSTRLEN];    /* without prefix */
	unsigned prefix;
	char gateway[INET6_ADDRSTRLEN]; /* "" when none */
	int iface;                      /* index in interfaces, -1 when none */
};

struct cni_result {
	char cni_version[32];
	size_t ninterfaces;
	size_t nips;
	struct cni_ip ips[CNI_MAX_IPS];
	size_t nroutes;
	size_t nnameservers;
	json_t *json; /* the result as parsed (owned), the next prevResult */
};

/* Strict result parser (1.x, 0.4.0, 0.3.x shapes). */
int cni_result_parse(const char *buf, size_t len, struct cni_result *res, crisp_err_t *err);
void cni_result_free(struct cni_result *res);
/* First IPv4 / IPv6 address of the result ("" when none). */
const char *cni_result_ip(const struct cni_result *res, int family);

/* Parse a CNI error object {"cniVersion","code","msg","details"}: 0 and
 * the code and "msg: details" in msg, or -1 when buf is not one. */
int cni_error_parse(const char *buf, size_t len, unsigned *code, char *msg, size_t msgsz);

/* The stdin configuration of plugin idx of l: the plugin object plus name,
 * cniVersion, prevResult (when not NULL) and runtimeConfig.  Owned. */
json_t *cni_plugin_config(const struct cni_list *l, size_t idx, json_t *prev, json_t *capability_args);

/* Run one plugin.  On exit 0, *out (NUL-terminated, malloc'd) holds its
 * stdout; otherwise err says why, with the plugin's own error message. */
int cni_exec(const struct cni_opts *o, const char *type, const char *command, const struct cni_rt *rt,
	     const char *stdin_buf, size_t stdin_len, char **out, size_t *outlen, crisp_err_t *err);

/* ADD the list; on failure every plugin gets DEL (in reverse) before the
 * ADD error is returned.  res is filled on success (free it). */
int cni_add(const struct cni_opts *o, const struct cni_list *l, const struct cni_rt *rt, struct cni_result *res,
	    crisp_err_t *err);
/* CHECK (spec >= 0.4.0, skipped when disableCheck).  Needs the cache. */
int cni_check(const struct cni_opts *o, const struct cni_list *l, const struct cni_rt *rt, crisp_err_t *err);
/* DEL, in reverse order, every plugin even after one failed (the first
 * error is returned).  Uses the cached config and result of network when
 * one exists, else l (no cache and l NULL: nothing to do).  Idempotent. */
int cni_del(const struct cni_opts *o, const char *network, const struct cni_list *l, const struct cni_rt *rt,
	    crisp_err_t *err);

/* Path of the cache entry; -1 when a component is invalid. */
int cni_cache_path(const struct cni_opts *o, const char *network, const struct cni_rt *rt, char *buf, size_t sz,
		   crisp_err_t *err);

#endif
