/*
 * netd: network namespaces and CNI plugins for pods.  Stays uid 0 but keeps
 * only the capabilities network setup needs (its bounding set too, so the
 * CNI plugins it runs get no more), with no_new_privs and a seccomp
 * denylist of what no network setup needs (see SECURITY.md).
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "common/util.h"
#include "ipc/role.h"
#include "netd/cniconf.h"
#include "netd/pods.h"
#include "netd/portfwd.h"

struct netd {
	struct role_ctx role;
	struct role_args args;
	struct netd_pods pods;
	struct netd_portfwd *portfwd;
};

/* NetworkReady: a usable CNI configuration exists (checked afresh on each
 * call, so a directory that changes is picked up). */
static void on_network_status(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_ctx *r = arg;
	Cipc__Condition c = CIPC__CONDITION__INIT;
	crisp_err_t err = CRISP_ERR_INIT, e2 = CRISP_ERR_INIT;
	struct cni_net net;

	c.type = "NetworkReady";
	memset(&net, 0, sizeof net);
	if (r->config == NULL) {
		c.status = false;
		c.reason = "NetworkPluginNotReady";
		c.message = "netd has no configuration yet";
	} else if (cni_conf_find(r->config->cni_config_dir, r->config->cni_default_network, &net, &e2) < 0) {
		c.status = false;
		c.reason = "NetworkPluginNotReady";
		c.message = e2.msg;
	} else {
		c.status = true;
		c.reason = "";
		c.message = "";
	}
	if (ipc_answer(ch, m->hdr.reqid, IPC_CONDITION, &c.base, -1, &err) < 0)
		log_warn("NETWORK_STATUS answer: %s", err.msg);
}

static void on_net_setup(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_ctx *r = arg;
	struct netd *n = r->arg;

	netd_pods_setup(&n->pods, r->config, ch, m);
}

static void on_net_teardown(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_ctx *r = arg;
	struct netd *n = r->arg;

	netd_pods_teardown(&n->pods, r->config, ch, m);
}

static void on_net_runtime_config(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_ctx *r = arg;
	struct netd *n = r->arg;

	netd_pods_runtime_config(&n->pods, ch, m);
}

static void stop(struct role_ctx *r)
{
	struct netd *n = r->arg;

	netd_pods_stop(&n->pods);
	portfwd_free(n->portfwd);
	n->portfwd = NULL;
}

static void on_port_forward(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_ctx *r = arg;
	struct netd *n = r->arg;

	portfwd_on_request(n->portfwd, ch, m);
}

static const struct ipc_handler handlers[] = {
	ROLE_COMMON_HANDLERS,
	{ IPC_NETWORK_STATUS, on_network_status },
	{ IPC_NET_SETUP, on_net_setup },
	{ IPC_NET_TEARDOWN, on_net_teardown },
	{ IPC_NET_RUNTIME_CONFIG, on_net_runtime_config },
	{ IPC_STREAM_PORT_FORWARD, on_port_forward },
};

static const struct role_ops ops = {
	.stop = stop,
};

int main(int argc, char **argv)
{
	static struct netd n;
	crisp_err_t err = CRISP_ERR_INIT;

	role_parse_args(argc, argv, &n.args);
	role_init(&n.role, ROLE_NETD, &ops, handlers, ARRAY_SIZE(handlers), &n);
	if (netd_pods_init(&n.pods, n.role.loop, n.args.root, n.args.runroot, &err) < 0)
		fatal("%s", err.msg);
	n.portfwd = portfwd_new(n.role.loop, &n.pods);
	if (n.portfwd == NULL)
		fatal("port-forward: out of memory");
	if (sandbox_apply_role(ROLE_NETD, &n.args, &err) < 0)
		fatal("sandbox: %s", err.msg);
	return role_run(&n.role);
}
