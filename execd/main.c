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
#include "execd/pods.h"
#include "ipc/role.h"

struct execd {
	struct role_ctx role;
	struct role_args args;
	char state_dir[4096];
	struct execd_pods pods;
};

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
};

static void peer_changed(struct role_ctx *r, enum crisp_role peer, bool up)
{
	struct execd *x = r->arg;

	if (peer == ROLE_NETD && up)
		pods_netd_up(&x->pods);
}

static void config_apply(struct role_ctx *r, const Cipc__Config *c)
{
	struct execd *x = r->arg;

	pods_set_policy_path(&x->pods, c->runtime_policy);
}

static void stop(struct role_ctx *r)
{
	struct execd *x = r->arg;

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

	role_parse_args(argc, argv, &x.args);
	role_init(&x.role, ROLE_EXECD, &ops, handlers, ARRAY_SIZE(handlers), &x);
	snprintf(x.state_dir, sizeof x.state_dir, "%s/execd", x.args.root);
	if (pods_init(&x.pods, &x.role, x.args.root, x.args.runroot, &err) < 0)
		fatal("%s", err.msg);
	if (sandbox_apply_role(ROLE_EXECD, &x.args, &err) < 0)
		fatal("sandbox: %s", err.msg);
	return role_run(&x.role);
}
