/*
 * execd: the only broadly privileged role.  It stays root, with every
 * capability and no seccomp filter, on purpose: every container inherits
 * any filter placed on the process that launches it, and privileged pods
 * may need what a filter would take away.  Its defence is that it parses
 * no untrusted bytes, only typed ipc messages, and re-checks their meaning
 * against the runtime policy itself (see SECURITY.md).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "common/util.h"
#include "execd/containers.h"
#include "execd/ctr.h"
#include "execd/events.h"
#include "execd/execd.h"
#include "execd/pods.h"
#include "ipc/role.h"


/* RuntimeReady: execd runs as root, sees a cgroup hierarchy, and can write
 * its state directory. */
static void on_runtime_status(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_ctx *r = arg;
	struct execd *x = r->arg;
	Cipc__Condition c = CIPC__CONDITION__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	struct statfs sfs;
	char msg[1200] = "";

	c.type = "RuntimeReady";
	if (geteuid() != 0)
		snprintf(msg, sizeof msg, "execd is not running as root");
	else if (statfs("/sys/fs/cgroup", &sfs) < 0)
		snprintf(msg, sizeof msg, "no cgroup filesystem at /sys/fs/cgroup: %s", strerror(errno));
	else if (access(x->state_dir, W_OK | X_OK) < 0)
		snprintf(msg, sizeof msg, "state directory %.1000s: %s", x->state_dir, strerror(errno));
	c.status = msg[0] == '\0';
	c.reason = c.status ? "" : "RuntimeNotReady";
	c.message = msg;
	if (ipc_answer(ch, m->hdr.reqid, IPC_CONDITION, &c.base, -1, &err) < 0)
		log_warn("RUNTIME_STATUS answer: %s", err.msg);
}

#define POD_HANDLER(name, fn)                                                   \
	static void name(struct ipc_chan *ch, struct ipc_msg *m, void *arg)     \
	{                                                                       \
		struct role_ctx *r = arg;                                       \
		fn(ch, m, &((struct execd *)r->arg)->pods);                     \
	}
POD_HANDLER(on_pod_run, pods_on_run)
POD_HANDLER(on_pod_stop, pods_on_stop)
POD_HANDLER(on_pod_remove, pods_on_remove)
POD_HANDLER(on_pod_status, pods_on_status)
POD_HANDLER(on_pod_list, pods_on_list)
POD_HANDLER(on_ctr_list, ctrs_on_list)
POD_HANDLER(on_ctr_status, ctrs_on_status)

#define X_HANDLER(name, fn)                                                     \
	static void name(struct ipc_chan *ch, struct ipc_msg *m, void *arg)     \
	{                                                                       \
		struct role_ctx *r = arg;                                       \
		fn(ch, m, (struct execd *)r->arg);                              \
	}
X_HANDLER(on_ctr_create, ctrs_on_create)
X_HANDLER(on_ctr_start, ctrs_on_start)
X_HANDLER(on_ctr_stop, ctrs_on_stop)
X_HANDLER(on_ctr_remove, ctrs_on_remove)
X_HANDLER(on_ctr_exec_sync, ctrs_on_exec_sync)
X_HANDLER(on_ctr_update, ctrs_on_update)
X_HANDLER(on_ctr_reopen_log, ctrs_on_reopen_log)
X_HANDLER(on_ctr_stats, ctrs_on_stats)
X_HANDLER(on_ctr_list_stats, ctrs_on_list_stats)
X_HANDLER(on_pod_stats, ctrs_on_pod_stats)
X_HANDLER(on_pod_list_stats, ctrs_on_pod_list_stats)
X_HANDLER(on_layer_unpack, layers_on_unpack)
X_HANDLER(on_layer_release, layers_on_release)
X_HANDLER(on_stream_exec, stream_on_exec)
X_HANDLER(on_stream_attach, stream_on_attach)
X_HANDLER(on_stream_port_forward, stream_on_port_forward)
X_HANDLER(on_events_subscribe, events_on_subscribe)

static const struct ipc_handler handlers[] = {
	ROLE_COMMON_HANDLERS,
	{ IPC_RUNTIME_STATUS, on_runtime_status },
	{ IPC_POD_RUN, on_pod_run },
	{ IPC_POD_STOP, on_pod_stop },
	{ IPC_POD_REMOVE, on_pod_remove },
	{ IPC_POD_STATUS, on_pod_status },
	{ IPC_POD_LIST, on_pod_list },
	{ IPC_CTR_LIST, on_ctr_list },
	{ IPC_CTR_STATUS, on_ctr_status },
	{ IPC_CTR_CREATE, on_ctr_create },
	{ IPC_CTR_START, on_ctr_start },
	{ IPC_CTR_STOP, on_ctr_stop },
	{ IPC_CTR_REMOVE, on_ctr_remove },
	{ IPC_CTR_EXEC_SYNC, on_ctr_exec_sync },
	{ IPC_CTR_UPDATE, on_ctr_update },
	{ IPC_CTR_REOPEN_LOG, on_ctr_reopen_log },
	{ IPC_CTR_STATS, on_ctr_stats },
	{ IPC_CTR_LIST_STATS, on_ctr_list_stats },
	{ IPC_POD_STATS, on_pod_stats },
	{ IPC_POD_LIST_STATS, on_pod_list_stats },
	{ IPC_LAYER_UNPACK, on_layer_unpack },
	{ IPC_LAYER_RELEASE, on_layer_release },
	{ IPC_STREAM_EXEC, on_stream_exec },
	{ IPC_STREAM_ATTACH, on_stream_attach },
	{ IPC_STREAM_PORT_FORWARD, on_stream_port_forward },
	{ IPC_EVENTS_SUBSCRIBE, on_events_subscribe },
};

static void peer_changed(struct role_ctx *r, enum crisp_role peer, bool up)
{
	struct execd *x = r->arg;

	if (peer == ROLE_NETD && up)
		pods_netd_up(&x->pods);
	if (peer == ROLE_IMAGED && up)
		ctrs_imaged_up(x);
	events_peer_changed(x, peer, up);
}

static void config_apply(struct role_ctx *r, const Cipc__Config *c)
{
	struct execd *x = r->arg;

	pods_set_policy_path(&x->pods, c->runtime_policy);
	pods_set_handlers(&x->pods, c->runtime_handlers, c->n_runtime_handlers);
}

static void stop(struct role_ctx *r)
{
	struct execd *x = r->arg;

	stream_close(x);
	ctrs_close(x);
	layers_close(x);
	pods_close(&x->pods);
}

static const struct role_ops ops = {
	.config_apply = config_apply,
	.peer_changed = peer_changed,
	.stop = stop,
};

int main(int argc, char **argv)
{
	static struct execd x;
	crisp_err_t err = CRISP_ERR_INIT;

	/* A container's monitor re-executes this binary (execd/ctr_monitor.c). */
	if (argc > 1 && strcmp(argv[1], CTR_MONITOR_ARG) == 0)
		return ctr_monitor_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], POD_INFRA_ARG) == 0)
		return pod_infra_main(argc, argv);

	role_parse_args(argc, argv, &x.args);
	/* crisp-monitor, beside this binary: executed by fd for every container */
	if (ctr_monitor_exe_open(&err) < 0)
		fatal("%s", err.msg);
	role_init(&x.role, ROLE_EXECD, &ops, handlers, ARRAY_SIZE(handlers), &x);
	snprintf(x.state_dir, sizeof x.state_dir, "%s/execd", x.args.root);
	if (pods_init(&x.pods, &x.role, x.args.root, x.args.runroot, &err) < 0)
		fatal("%s", err.msg);
	events_init(&x);
	if (layers_init(&x, &err) < 0 || ctrs_init(&x, &err) < 0 || stream_init(&x, &err) < 0)
		fatal("%s", err.msg);
	if (sandbox_apply_role(ROLE_EXECD, &x.args, &err) < 0)
		fatal("sandbox: %s", err.msg);
	return role_run(&x.role);
}
