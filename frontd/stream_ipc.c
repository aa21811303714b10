/*
 * frontd streaming server: the backend that opens sessions over ipc, execd
 * for exec and attach (STREAM_EXEC / STREAM_ATTACH), netd for port-forward
 * (STREAM_PORT_FORWARD).  Each answer carries the session's one fd.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "frontd/stream.h"
#include "ipc/role.h"
#include "proto/cri.pb-c.h"
#include "proto/ipc.pb-c.h"

struct ipc_open {
	stream_open_done done;
	void *ctx;
	/* port-forward: netd first; execd for a pod on the host's network */
	struct role_ctx *r;
	bool pf_netd;
	char pod[72];
	int port;
};

static void ipc_open_answer(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg);

/* netd has no network namespace for the pod: if it is a host-network pod,
 * execd (which checks exactly that) connects on the host's loopback. */
static bool pf_try_execd(struct ipc_open *op, crisp_err_t *err)
{
	struct ipc_chan *ch = role_peer(op->r, ROLE_EXECD);
	Cipc__StreamPortForward w = CIPC__STREAM_PORT_FORWARD__INIT;

	if (ch == NULL)
		return false;
	op->pf_netd = false;
	w.pod_sandbox_id = op->pod;
	w.port = op->port;
	return ipc_request(ch, IPC_STREAM_PORT_FORWARD, &w.base, -1, 30000, ipc_open_answer, op, NULL, err) == 0;
}

static void ipc_open_answer(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	struct ipc_open *op = arg;

	(void)ch;
	if (e != NULL) {
		crisp_err_t e2 = CRISP_ERR_INIT;

		if (op->pf_netd && e->code == CRISP_NOT_FOUND && pf_try_execd(op, &e2))
			return; /* asked again: the answer comes to this function */
		op->done(op->ctx, -1, e);
	} else {
		int fd = ans->fd;

		ans->fd = -1;
		op->done(op->ctx, fd, NULL);
	}
	free(op);
}

int stream_ipc_open(void *role_ctx, const struct stream_open *o, stream_open_done done, void *ctx, crisp_err_t *err)
{
	struct role_ctx *r = role_ctx;
	struct ipc_chan *ch = role_peer(r, o->verb == STREAM_PORT_FORWARD ? ROLE_NETD : ROLE_EXECD);
	ProtobufCMessage *rq = NULL;
	struct ipc_open *op;
	int rc;

	if (ch == NULL)
		return crisp_error(err, CRISP_UNAVAILABLE, 0, "%s is not running (restarting); try again",
				   o->verb == STREAM_PORT_FORWARD ? "netd" : "execd");
	op = calloc(1, sizeof *op);
	if (op == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
	op->done = done;
	op->ctx = ctx;
	if (o->verb == STREAM_EXEC) {
		Cipc__StreamExec w = CIPC__STREAM_EXEC__INIT;

		rq = (ProtobufCMessage *)runtime__v1__exec_request__unpack(NULL, o->reqlen, o->req);
		w.req = (Runtime__V1__ExecRequest *)rq;
		rc = rq ? ipc_request(ch, IPC_STREAM_EXEC, &w.base, -1, 30000, ipc_open_answer, op, NULL, err) : -1;
	} else if (o->verb == STREAM_ATTACH) {
		Cipc__StreamAttach w = CIPC__STREAM_ATTACH__INIT;

		rq = (ProtobufCMessage *)runtime__v1__attach_request__unpack(NULL, o->reqlen, o->req);
		w.req = (Runtime__V1__AttachRequest *)rq;
		rc = rq ? ipc_request(ch, IPC_STREAM_ATTACH, &w.base, -1, 30000, ipc_open_answer, op, NULL, err) : -1;
	} else {
		Cipc__StreamPortForward w = CIPC__STREAM_PORT_FORWARD__INIT;
		Runtime__V1__PortForwardRequest *pf;

		pf = runtime__v1__port_forward_request__unpack(NULL, o->reqlen, o->req);
		rq = (ProtobufCMessage *)pf;
		if (pf != NULL) {
			w.pod_sandbox_id = pf->pod_sandbox_id;
			w.port = o->port;
			op->r = r;
			op->pf_netd = true;
			op->port = o->port;
			snprintf(op->pod, sizeof op->pod, "%s", pf->pod_sandbox_id);
		}
		rc = rq ? ipc_request(ch, IPC_STREAM_PORT_FORWARD, &w.base, -1, 30000, ipc_open_answer, op, NULL, err)
			: -1;
	}
	if (rq == NULL)
		crisp_error(err, CRISP_INTERNAL, 0, "stored request does not decode");
	else
		protobuf_c_message_free_unpacked(rq, NULL);
	if (rc < 0)
		free(op);
	return rc;
}
