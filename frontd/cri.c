/*
 * frontd: CRI v1 handlers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "frontd/cri.h"
#include "frontd/events.h"
#include "frontd/validate.h"
#include "proto/cri.pb-c.h"

#define STATUS_TIMEOUT_MS 10000

/* Pack a response and reply; the call is over afterwards. */
static void reply_pb(struct grpc_call *call, const ProtobufCMessage *pb)
{
	size_t n = protobuf_c_message_get_packed_size(pb);
	uint8_t *buf = malloc(n ? n : 1);

	if (buf == NULL) {
		grpc_call_finish(call, CRISP_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	protobuf_c_message_pack(pb, buf);
	if (grpc_call_reply(call, buf, n) < 0 && errno != ECANCELED)
		log_debug("reply: %s", strerror(errno));
	free(buf);
}

/* Decode a request; on failure the call is answered INVALID_ARGUMENT. */
static ProtobufCMessage *decode(struct grpc_call *call, const ProtobufCMessageDescriptor *d,
				const uint8_t *req, size_t len)
{
	crisp_err_t err = CRISP_ERR_INIT;
	ProtobufCMessage *m = cri_decode_request(d, req, len, &err);

	if (m == NULL)
		grpc_call_finish(call, err.code ? err.code : CRISP_INVALID_ARGUMENT, err.msg);
	return m;
}

/* ---- Version: answered by frontd itself ---- */

static void cri_version(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	Runtime__V1__VersionRequest *rq;
	Runtime__V1__VersionResponse rs = RUNTIME__V1__VERSION_RESPONSE__INIT;

	(void)arg;
	rq = (Runtime__V1__VersionRequest *)decode(call, &runtime__v1__version_request__descriptor, req, len);
	if (rq == NULL)
		return;
	rs.version = "0.1.0";
	rs.runtime_name = "crisp";
	rs.runtime_version = CRISP_VERSION;
	rs.runtime_api_version = CRI_API_VERSION;
	reply_pb(call, &rs.base);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

/* ---- Status: RuntimeReady from execd, NetworkReady from netd ---- */

struct status_op {
	struct frontd *f;
	struct grpc_call *call;
	int pending;
	bool verbose;
	struct {
		char type[32];
		bool status;
		char reason[128];
		char message[1024];
	} cond[2];
};

/* verbose Status: crisp's configuration as JSON under "config", the key
 * crictl info prints (CRI-O and containerd do the same). */
static char *status_info_json(const struct frontd *f)
{
	const Cipc__Config *c = f->role.config;
	json_t *o = json_object(), *dirs = json_array();
	char *s;

	if (o == NULL || dirs == NULL || c == NULL) {
		json_decref(o);
		json_decref(dirs);
		return NULL;
	}
	for (size_t i = 0; i < c->n_cni_plugin_dirs; i++)
		json_array_append_new(dirs, json_string(c->cni_plugin_dirs[i]));
	json_object_set_new(o, "runtimeName", json_string("crisp"));
	json_object_set_new(o, "runtimeVersion", json_string(CRISP_VERSION));
	json_object_set_new(o, "root", json_string(c->root));
	json_object_set_new(o, "runroot", json_string(c->runroot));
	json_object_set_new(o, "listen", json_string(c->listen));
	json_object_set_new(o, "cniConfigDir", json_string(c->cni_config_dir));
	json_object_set_new(o, "cniPluginDirs", dirs);
	json_object_set_new(o, "cniDefaultNetwork", json_string(c->cni_default_network));
	json_object_set_new(o, "cgroupParent", json_string(c->cgroup_parent));
	json_object_set_new(o, "runtimePolicy", json_string(c->runtime_policy));
	json_object_set_new(o, "signaturePolicy", json_string(c->signature_policy));
	json_object_set_new(o, "configGeneration", json_integer((json_int_t)c->generation));
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

static void status_finish(struct status_op *op)
{
	Runtime__V1__StatusResponse rs = RUNTIME__V1__STATUS_RESPONSE__INIT;
	Runtime__V1__RuntimeStatus st = RUNTIME__V1__RUNTIME_STATUS__INIT;
	Runtime__V1__RuntimeCondition conds[2], *pc[2];
	Runtime__V1__StatusResponse__InfoEntry entry = RUNTIME__V1__STATUS_RESPONSE__INFO_ENTRY__INIT, *pe = &entry;
	char *info = op->verbose ? status_info_json(op->f) : NULL;

	for (int i = 0; i < 2; i++) {
		runtime__v1__runtime_condition__init(&conds[i]);
		conds[i].type = op->cond[i].type;
		conds[i].status = op->cond[i].status;
		conds[i].reason = op->cond[i].reason;
		conds[i].message = op->cond[i].message;
		pc[i] = &conds[i];
	}
	st.n_conditions = 2;
	st.conditions = pc;
	rs.status = &st;
	if (info != NULL) {
		entry.key = "config";
		entry.value = info;
		rs.n_info = 1;
		rs.info = &pe;
	}
	reply_pb(op->call, &rs.base);
	free(info);
	grpc_call_unref(op->call);
	free(op);
}

static void status_set(struct status_op *op, int i, bool ok, const char *reason, const char *message)
{
	op->cond[i].status = ok;
	crisp_strlcpy(op->cond[i].reason, reason ? reason : "", sizeof op->cond[i].reason);
	crisp_strlcpy(op->cond[i].message, message ? message : "", sizeof op->cond[i].message);
}

static void status_answer(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg);

struct status_slot {
	struct status_op *op;
	int idx;
};

static void status_answer(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	struct status_slot *slot = arg;
	struct status_op *op = slot->op;
	int i = slot->idx;

	(void)ch;
	free(slot);
	if (e != NULL) {
		char msg[CRISP_ERR_MSG_MAX + 32];
		snprintf(msg, sizeof msg, "%s: %s", i == 0 ? "execd" : "netd", e->msg);
		status_set(op, i, false, i == 0 ? "RuntimeUnavailable" : "NetworkUnavailable", msg);
	} else {
		const Cipc__Condition *c = (const Cipc__Condition *)ans->pb;
		status_set(op, i, c->status, c->reason, c->message);
	}
	if (--op->pending == 0)
		status_finish(op);
}

static void status_ask(struct frontd *f, struct status_op *op, int i, enum crisp_role who, uint32_t type)
{
	struct ipc_chan *ch = role_peer(&f->role, who);
	Cipc__Empty e = CIPC__EMPTY__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	struct status_slot *slot;
	uint64_t timeout = STATUS_TIMEOUT_MS, dl = grpc_call_deadline_ms(op->call), now = crisp_now_ms();

	if (dl && dl > now && dl - now < timeout)
		timeout = dl - now;
	crisp_strlcpy(op->cond[i].type, i == 0 ? "RuntimeReady" : "NetworkReady", sizeof op->cond[i].type);
	if (ch == NULL) {
		char msg[64];
		snprintf(msg, sizeof msg, "%s is not running (restarting)", crisp_role_name(who));
		status_set(op, i, false, i == 0 ? "RuntimeUnavailable" : "NetworkUnavailable", msg);
		return;
	}
	slot = malloc(sizeof *slot);
	if (slot == NULL) {
		status_set(op, i, false, "OutOfMemory", "frontd is out of memory");
		return;
	}
	slot->op = op;
	slot->idx = i;
	op->pending++;
	if (ipc_request(ch, type, &e.base, -1, (uint32_t)timeout, status_answer, slot, NULL, &err) < 0) {
		op->pending--;
		free(slot);
		status_set(op, i, false, i == 0 ? "RuntimeUnavailable" : "NetworkUnavailable", err.msg);
	}
}

static void cri_status(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	struct frontd *f = arg;
	Runtime__V1__StatusRequest *rq;
	struct status_op *op;

	rq = (Runtime__V1__StatusRequest *)decode(call, &runtime__v1__status_request__descriptor, req, len);
	if (rq == NULL)
		return;
	op = calloc(1, sizeof *op);
	if (op == NULL) {
		grpc_call_finish(call, CRISP_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	op->f = f;
	op->call = grpc_call_ref(call);
	op->verbose = rq->verbose;
	op->pending = 1; /* held while asking, so an immediate failure cannot finish early */
	status_ask(f, op, 0, ROLE_EXECD, IPC_RUNTIME_STATUS);
	status_ask(f, op, 1, ROLE_NETD, IPC_NETWORK_STATUS);
	if (--op->pending == 0)
		status_finish(op);
out:
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

/* ---- forwarding a request to the role that owns the answer ---- */

typedef void (*fwd_reply_fn)(struct grpc_call *call, const ProtobufCMessage *answer);

struct fwd_op {
	struct grpc_call *call;
	fwd_reply_fn reply;
	struct ipc_chan *ch; /* referenced */
	uint64_t reqid;
};

static void fwd_free(struct fwd_op *op)
{
	grpc_call_unref(op->call);
	ipc_chan_unref(op->ch);
	free(op);
}

static void fwd_answer(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	struct fwd_op *op = arg;

	(void)ch;
	if (e != NULL)
		grpc_call_finish(op->call, e->code ? e->code : CRISP_INTERNAL, e->msg);
	else
		op->reply(op->call, ans->pb);
	fwd_free(op);
}

/* The client reset the stream, went away or passed its deadline: the
 * owner hears of it (CANCEL) and may stop working for nobody. */
static void fwd_cancelled(struct grpc_call *call, void *arg)
{
	struct fwd_op *op = arg;

	(void)call;
	ipc_cancel(op->ch, op->reqid);
	fwd_free(op);
}

/* Send req to who; answer the call from its answer (through reply) or its
 * error.  A role that is down (restarting) is UNAVAILABLE at once: frontd
 * fails fast rather than hang. */
static void forward(struct frontd *f, struct grpc_call *call, enum crisp_role who, uint32_t type,
		    const ProtobufCMessage *req, fwd_reply_fn reply)
{
	struct ipc_chan *ch = role_peer(&f->role, who);
	crisp_err_t err = CRISP_ERR_INIT;
	uint64_t timeout = f->role.config ? f->role.config->request_timeout_ms : 60000;
	uint64_t dl = grpc_call_deadline_ms(call), now = crisp_now_ms();
	struct fwd_op *op;

	/* A pull of a large image, or an ExecSync with no timeout of its own,
	 * may rightly outlast request_timeout_ms: only the client's deadline
	 * (or an hour) bounds them. */
	if ((type == IPC_IMG_PULL || type == IPC_CTR_EXEC_SYNC) && timeout < 3600000)
		timeout = 3600000;

	if (ch == NULL) {
		char msg[96];
		snprintf(msg, sizeof msg, "%s is not running (restarting); try again", crisp_role_name(who));
		grpc_call_finish(call, CRISP_UNAVAILABLE, msg);
		return;
	}
	if (dl != 0) {
		if (dl <= now) {
			grpc_call_finish(call, CRISP_DEADLINE_EXCEEDED, "deadline exceeded");
			return;
		}
		if (dl - now < timeout)
			timeout = dl - now;
	}
	op = malloc(sizeof *op);
	if (op == NULL) {
		grpc_call_finish(call, CRISP_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	op->call = grpc_call_ref(call);
	op->reply = reply;
	op->ch = ipc_chan_ref(ch);
	if (ipc_request(ch, type, req, -1, (uint32_t)timeout, fwd_answer, op, &op->reqid, &err) < 0) {
		grpc_call_finish(call, err.code ? err.code : CRISP_INTERNAL, err.msg);
		fwd_free(op);
		return;
	}
	/* Fails only when the call is already over: then the answer, which
	 * ipc never delivers from inside ipc_request, finds it finished. */
	(void)grpc_call_on_cancel(call, fwd_cancelled, op);
}

/* ---- ImageFsInfo: imaged measures its store ---- */

static void image_fs_info_reply(struct grpc_call *call, const ProtobufCMessage *answer)
{
	const Cipc__FsUsage *u = (const Cipc__FsUsage *)answer;
	Runtime__V1__ImageFsInfoResponse rs = RUNTIME__V1__IMAGE_FS_INFO_RESPONSE__INIT;
	Runtime__V1__FilesystemUsage fu = RUNTIME__V1__FILESYSTEM_USAGE__INIT, *pfu = &fu;
	Runtime__V1__FilesystemIdentifier id = RUNTIME__V1__FILESYSTEM_IDENTIFIER__INIT;
	Runtime__V1__UInt64Value used = RUNTIME__V1__UINT64_VALUE__INIT, inodes = RUNTIME__V1__UINT64_VALUE__INIT;

	id.mountpoint = u->mountpoint;
	used.value = u->used_bytes;
	inodes.value = u->inodes_used;
	fu.timestamp = u->timestamp_ns;
	fu.fs_id = &id;
	fu.used_bytes = &used;
	fu.inodes_used = &inodes;
	rs.n_image_filesystems = 1;
	rs.image_filesystems = &pfu;
	reply_pb(call, &rs.base);
}

static void cri_image_fs_info(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	ProtobufCMessage *rq = decode(call, &runtime__v1__image_fs_info_request__descriptor, req, len);
	Cipc__Empty e = CIPC__EMPTY__INIT;

	if (rq == NULL)
		return;
	forward(arg, call, ROLE_IMAGED, IPC_IMAGE_FS_INFO, &e.base, image_fs_info_reply);
	protobuf_c_message_free_unpacked(rq, NULL);
}

/* ---- pod sandboxes: execd owns them ---- */

/*
 * FORWARD(fn, crireq, wrap, WRAP, IPCTYPE, ans): decode and validate the CRI
 * request, send it to execd (FORWARD_TO: another owner) wrapped in cipc.<wrap> (execd validates it
 * again), and answer with the CRI response execd wrapped in cipc.<ans>.
 */
#define FORWARD_TO(ROLE, fn, crireq, wrap, WRAP, IPCTYPE, ans, Ans)                            \
	static void fn##_reply(struct grpc_call *call, const ProtobufCMessage *a)               \
	{                                                                                       \
		const Cipc__##Ans *w = (const Cipc__##Ans *)a;                                  \
		if (w->resp == NULL)                                                            \
			grpc_call_finish(call, CRISP_INTERNAL, "the backend answered nothing"); \
		else                                                                            \
			reply_pb(call, &w->resp->base);                                         \
	}                                                                                       \
	static void fn(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)       \
	{                                                                                       \
		ProtobufCMessage *rq = decode(call, &runtime__v1__##crireq##__descriptor, req, len); \
		Cipc__##WRAP w = CIPC__##wrap##__INIT;                                          \
		if (rq == NULL)                                                                 \
			return;                                                                 \
		w.req = (void *)rq;                                                             \
		forward(arg, call, ROLE, IPCTYPE, &w.base, fn##_reply);                         \
		protobuf_c_message_free_unpacked(rq, NULL);                                     \
	}
#define FORWARD(...) FORWARD_TO(ROLE_EXECD, __VA_ARGS__)

FORWARD(cri_run_pod_sandbox, run_pod_sandbox_request, POD_RUN, PodRun, IPC_POD_RUN, pod_run_ans, PodRunAns)
FORWARD(cri_stop_pod_sandbox, stop_pod_sandbox_request, POD_STOP, PodStop, IPC_POD_STOP, pod_stop_ans, PodStopAns)
FORWARD(cri_remove_pod_sandbox, remove_pod_sandbox_request, POD_REMOVE, PodRemove, IPC_POD_REMOVE, pod_remove_ans,
	PodRemoveAns)
FORWARD(cri_pod_sandbox_status, pod_sandbox_status_request, POD_STATUS, PodStatus, IPC_POD_STATUS, pod_status_ans,
	PodStatusAns)
FORWARD(cri_list_pod_sandbox, list_pod_sandbox_request, POD_LIST, PodList, IPC_POD_LIST, pod_list_ans, PodListAns)

FORWARD(cri_list_containers, list_containers_request, CTR_LIST, CtrList, IPC_CTR_LIST, ctr_list_ans, CtrListAns)
FORWARD(cri_container_status, container_status_request, CTR_STATUS, CtrStatus, IPC_CTR_STATUS, ctr_status_ans,
	CtrStatusAns)

FORWARD(cri_create_container, create_container_request, CTR_CREATE, CtrCreate, IPC_CTR_CREATE, ctr_create_ans,
	CtrCreateAns)
FORWARD(cri_start_container, start_container_request, CTR_START, CtrStart, IPC_CTR_START, ctr_start_ans, CtrStartAns)
FORWARD(cri_stop_container, stop_container_request, CTR_STOP, CtrStop, IPC_CTR_STOP, ctr_stop_ans, CtrStopAns)
FORWARD(cri_remove_container, remove_container_request, CTR_REMOVE, CtrRemove, IPC_CTR_REMOVE, ctr_remove_ans,
	CtrRemoveAns)
FORWARD(cri_exec_sync, exec_sync_request, CTR_EXEC_SYNC, CtrExecSync, IPC_CTR_EXEC_SYNC, ctr_exec_sync_ans,
	CtrExecSyncAns)
FORWARD(cri_update_container_resources, update_container_resources_request, CTR_UPDATE, CtrUpdate, IPC_CTR_UPDATE,
	ctr_update_ans, CtrUpdateAns)
FORWARD(cri_reopen_container_log, reopen_container_log_request, CTR_REOPEN_LOG, CtrReopenLog, IPC_CTR_REOPEN_LOG,
	ctr_reopen_log_ans, CtrReopenLogAns)
FORWARD(cri_container_stats, container_stats_request, CTR_STATS, CtrStats, IPC_CTR_STATS, ctr_stats_ans, CtrStatsAns)
FORWARD(cri_list_container_stats, list_container_stats_request, CTR_LIST_STATS, CtrListStats, IPC_CTR_LIST_STATS,
	ctr_list_stats_ans, CtrListStatsAns)
FORWARD(cri_pod_sandbox_stats, pod_sandbox_stats_request, POD_STATS, PodStats, IPC_POD_STATS, pod_stats_ans,
	PodStatsAns)
FORWARD(cri_list_pod_sandbox_stats, list_pod_sandbox_stats_request, POD_LIST_STATS, PodListStats,
	IPC_POD_LIST_STATS, pod_list_stats_ans, PodListStatsAns)

/* ---- images: imaged owns them ---- */

FORWARD_TO(ROLE_IMAGED, cri_pull_image, pull_image_request, IMG_PULL, ImgPull, IPC_IMG_PULL, img_pull_ans, ImgPullAns)
FORWARD_TO(ROLE_IMAGED, cri_list_images, list_images_request, IMG_LIST, ImgList, IPC_IMG_LIST, img_list_ans,
	ImgListAns)
FORWARD_TO(ROLE_IMAGED, cri_image_status, image_status_request, IMG_STATUS, ImgStatus, IPC_IMG_STATUS,
	img_status_ans, ImgStatusAns)
FORWARD_TO(ROLE_IMAGED, cri_remove_image, remove_image_request, IMG_REMOVE, ImgRemove, IPC_IMG_REMOVE,
	img_remove_ans, ImgRemoveAns)

/* ---- UpdateRuntimeConfig: the pod CIDRs go to netd ---- */

static void update_runtime_config_reply(struct grpc_call *call, const ProtobufCMessage *a)
{
	Runtime__V1__UpdateRuntimeConfigResponse rs = RUNTIME__V1__UPDATE_RUNTIME_CONFIG_RESPONSE__INIT;

	(void)a;
	reply_pb(call, &rs.base);
}

static void cri_update_runtime_config(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	Runtime__V1__UpdateRuntimeConfigRequest *rq;
	Cipc__NetRuntimeConfig nc = CIPC__NET_RUNTIME_CONFIG__INIT;
	char *cidrs[8], buf[1024], *save = NULL;

	rq = (Runtime__V1__UpdateRuntimeConfigRequest *)decode(
		call, &runtime__v1__update_runtime_config_request__descriptor, req, len);
	if (rq == NULL)
		return;
	/* "10.0.0.0/24,fd00::/64" (validated: comma-separated CIDRs). */
	if (rq->runtime_config && rq->runtime_config->network_config)
		crisp_strlcpy(buf, rq->runtime_config->network_config->pod_cidr, sizeof buf);
	else
		buf[0] = '\0';
	for (char *t = strtok_r(buf, ",", &save); t && nc.n_pod_cidrs < ARRAY_SIZE(cidrs); t = strtok_r(NULL, ",", &save))
		cidrs[nc.n_pod_cidrs++] = t;
	nc.pod_cidrs = cidrs;
	forward(arg, call, ROLE_NETD, IPC_NET_RUNTIME_CONFIG, &nc.base, update_runtime_config_reply);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

/* ---- streaming: Exec, Attach and PortForward mint a token ---- */

/*
 * The RPC answers a URL of the streaming server (frontd/stream.c) bound to
 * a single-use token; the session itself starts when the client opens it.
 * As CRI-O does, the target is checked first (the container running, the
 * pod ready), so that a client gets the error from the RPC rather than
 * from the stream.  execd and netd check again when the session starts.
 */
struct stream_op {
	struct frontd *f;
	struct grpc_call *call;
	enum stream_verb verb;
	uint8_t *req;
	size_t len;
};

static void stream_reply_url(struct frontd *f, struct grpc_call *call, enum stream_verb verb, const uint8_t *req,
			     size_t len)
{
	crisp_err_t err = CRISP_ERR_INIT;
	char url[256];

	if (f->stream == NULL) {
		grpc_call_finish(call, CRISP_UNAVAILABLE, "the streaming server is not running");
		return;
	}
	if (stream_token_new(f->stream, verb, req, len, url, sizeof url, &err) < 0) {
		grpc_call_finish(call, err.code ? err.code : CRISP_INTERNAL, err.msg);
		return;
	}
	if (verb == STREAM_EXEC) {
		Runtime__V1__ExecResponse rs = RUNTIME__V1__EXEC_RESPONSE__INIT;

		rs.url = url;
		reply_pb(call, &rs.base);
	} else if (verb == STREAM_ATTACH) {
		Runtime__V1__AttachResponse rs = RUNTIME__V1__ATTACH_RESPONSE__INIT;

		rs.url = url;
		reply_pb(call, &rs.base);
	} else {
		Runtime__V1__PortForwardResponse rs = RUNTIME__V1__PORT_FORWARD_RESPONSE__INIT;

		rs.url = url;
		reply_pb(call, &rs.base);
	}
}

static void stream_check_answer(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	struct stream_op *op = arg;

	(void)ch;
	if (e != NULL) {
		grpc_call_finish(op->call, e->code ? e->code : CRISP_INTERNAL, e->msg);
	} else if (op->verb == STREAM_PORT_FORWARD) {
		const Cipc__PodStatusAns *a = (const Cipc__PodStatusAns *)ans->pb;

		if (a->resp == NULL || a->resp->status == NULL ||
		    a->resp->status->state != RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY)
			grpc_call_finish(op->call, CRISP_FAILED_PRECONDITION, "pod sandbox is not ready");
		else
			stream_reply_url(op->f, op->call, op->verb, op->req, op->len);
	} else {
		const Cipc__CtrStatusAns *a = (const Cipc__CtrStatusAns *)ans->pb;

		if (a->resp == NULL || a->resp->status == NULL ||
		    a->resp->status->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING)
			grpc_call_finish(op->call, CRISP_FAILED_PRECONDITION, "container is not created or running");
		else
			stream_reply_url(op->f, op->call, op->verb, op->req, op->len);
	}
	grpc_call_unref(op->call);
	free(op->req);
	free(op);
}

static void stream_rpc(struct frontd *f, struct grpc_call *call, enum stream_verb verb, const char *id,
		       const uint8_t *req, size_t len)
{
	struct ipc_chan *ch = role_peer(&f->role, ROLE_EXECD);
	crisp_err_t err = CRISP_ERR_INIT;
	struct stream_op *op;
	int rc;

	if (ch == NULL) {
		grpc_call_finish(call, CRISP_UNAVAILABLE, "execd is not running (restarting); try again");
		return;
	}
	op = calloc(1, sizeof *op);
	if (op == NULL || (op->req = malloc(len ? len : 1)) == NULL) {
		free(op);
		grpc_call_finish(call, CRISP_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	memcpy(op->req, req, len);
	op->len = len;
	op->f = f;
	op->verb = verb;
	op->call = grpc_call_ref(call);
	if (verb == STREAM_PORT_FORWARD) {
		Runtime__V1__PodSandboxStatusRequest sr = RUNTIME__V1__POD_SANDBOX_STATUS_REQUEST__INIT;
		Cipc__PodStatus w = CIPC__POD_STATUS__INIT;

		sr.pod_sandbox_id = (char *)id;
		w.req = &sr;
		rc = ipc_request(ch, IPC_POD_STATUS, &w.base, -1, STATUS_TIMEOUT_MS, stream_check_answer, op, NULL, &err);
	} else {
		Runtime__V1__ContainerStatusRequest sr = RUNTIME__V1__CONTAINER_STATUS_REQUEST__INIT;
		Cipc__CtrStatus w = CIPC__CTR_STATUS__INIT;

		sr.container_id = (char *)id;
		w.req = &sr;
		rc = ipc_request(ch, IPC_CTR_STATUS, &w.base, -1, STATUS_TIMEOUT_MS, stream_check_answer, op, NULL, &err);
	}
	if (rc < 0) {
		grpc_call_finish(call, err.code ? err.code : CRISP_INTERNAL, err.msg);
		grpc_call_unref(op->call);
		free(op->req);
		free(op);
	}
}

static void cri_exec(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	Runtime__V1__ExecRequest *rq =
		(Runtime__V1__ExecRequest *)decode(call, &runtime__v1__exec_request__descriptor, req, len);

	if (rq == NULL)
		return;
	stream_rpc(arg, call, STREAM_EXEC, rq->container_id, req, len);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

static void cri_attach(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	Runtime__V1__AttachRequest *rq =
		(Runtime__V1__AttachRequest *)decode(call, &runtime__v1__attach_request__descriptor, req, len);

	if (rq == NULL)
		return;
	stream_rpc(arg, call, STREAM_ATTACH, rq->container_id, req, len);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

static void cri_port_forward(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	Runtime__V1__PortForwardRequest *rq =
		(Runtime__V1__PortForwardRequest *)decode(call, &runtime__v1__port_forward_request__descriptor, req, len);

	if (rq == NULL)
		return;
	stream_rpc(arg, call, STREAM_PORT_FORWARD, rq->pod_sandbox_id, req, len);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

/* ---- everything whose backend is not built yet ---- */

/* The request is still decoded and validated: a malformed one is
 * INVALID_ARGUMENT whether or not its backend exists. */
static void unimplemented(struct grpc_call *call, const char *method, const char *owner,
			  const ProtobufCMessageDescriptor *d, const uint8_t *req, size_t len)
{
	ProtobufCMessage *rq = decode(call, d, req, len);
	char msg[256];

	if (rq == NULL)
		return;
	protobuf_c_message_free_unpacked(rq, NULL);
	snprintf(msg, sizeof msg, "crisp does not implement %s yet (its owner, %s, has no backend for it)",
		 method, owner);
	grpc_call_finish(call, CRISP_UNIMPLEMENTED, msg);
}

#define UNIMPL(fn, method, owner, desc)                                                      \
	static void fn(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)    \
	{                                                                                    \
		(void)arg;                                                                   \
		unimplemented(call, method, owner, &runtime__v1__##desc##__descriptor, req, len); \
	}

UNIMPL(cri_checkpoint_container, "CheckpointContainer", "execd", checkpoint_container_request)
UNIMPL(cri_list_metric_descriptors, "ListMetricDescriptors", "execd", list_metric_descriptors_request)
UNIMPL(cri_list_pod_sandbox_metrics, "ListPodSandboxMetrics", "execd", list_pod_sandbox_metrics_request)

#define RS "/runtime.v1.RuntimeService/"
#define IS "/runtime.v1.ImageService/"

const struct grpc_method cri_methods[] = {
	{ RS "Version", cri_version, false },
	{ RS "RunPodSandbox", cri_run_pod_sandbox, false },
	{ RS "StopPodSandbox", cri_stop_pod_sandbox, false },
	{ RS "RemovePodSandbox", cri_remove_pod_sandbox, false },
	{ RS "PodSandboxStatus", cri_pod_sandbox_status, false },
	{ RS "ListPodSandbox", cri_list_pod_sandbox, false },
	{ RS "CreateContainer", cri_create_container, false },
	{ RS "StartContainer", cri_start_container, false },
	{ RS "StopContainer", cri_stop_container, false },
	{ RS "RemoveContainer", cri_remove_container, false },
	{ RS "ListContainers", cri_list_containers, false },
	{ RS "ContainerStatus", cri_container_status, false },
	{ RS "UpdateContainerResources", cri_update_container_resources, false },
	{ RS "ReopenContainerLog", cri_reopen_container_log, false },
	{ RS "ExecSync", cri_exec_sync, false },
	{ RS "Exec", cri_exec, false },
	{ RS "Attach", cri_attach, false },
	{ RS "PortForward", cri_port_forward, false },
	{ RS "ContainerStats", cri_container_stats, false },
	{ RS "ListContainerStats", cri_list_container_stats, false },
	{ RS "PodSandboxStats", cri_pod_sandbox_stats, false },
	{ RS "ListPodSandboxStats", cri_list_pod_sandbox_stats, false },
	{ RS "UpdateRuntimeConfig", cri_update_runtime_config, false },
	{ RS "Status", cri_status, false },
	{ RS "CheckpointContainer", cri_checkpoint_container, false },
	{ RS "GetContainerEvents", cri_get_container_events, true },
	{ RS "ListMetricDescriptors", cri_list_metric_descriptors, false },
	{ RS "ListPodSandboxMetrics", cri_list_pod_sandbox_metrics, false },
	{ IS "ListImages", cri_list_images, false },
	{ IS "ImageStatus", cri_image_status, false },
	{ IS "PullImage", cri_pull_image, false },
	{ IS "RemoveImage", cri_remove_image, false },
	{ IS "ImageFsInfo", cri_image_fs_info, false },
};

const size_t cri_nmethods = ARRAY_SIZE(cri_methods);
