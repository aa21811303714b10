/*
 * execd: containers as the state database records them (ListContainers,
 * ContainerStatus).  Creating and running them builds on execd/launch.c;
 * these answer from the same records, so they hold whatever exists.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "execd/containers.h"
#include "execd/ctr_cgroup.h"
#include "frontd/validate.h"
#include "proto/ipc.pb-c.h"

static void answer_error(struct ipc_chan *ch, uint64_t reqid, const crisp_err_t *e)
{
	if (ipc_answer_error(ch, reqid, e) < 0)
		log_debug("error answer not sent (frontd gone?)");
}

void ctrs_on_list(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p)
{
	Cipc__CtrList *w = (Cipc__CtrList *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_ctr_filter f = { .state = -1, .cri_state = -1 };
	struct state_kv *sel = NULL;
	struct state_ctr **ctrs = NULL;
	size_t n = 0;
	Runtime__V1__ListContainersResponse rs = RUNTIME__V1__LIST_CONTAINERS_RESPONSE__INIT;
	Runtime__V1__Container *items = NULL, **pitems = NULL;
	Runtime__V1__ContainerMetadata *mds = NULL;
	Runtime__V1__ImageSpec *imgs = NULL;
	Cipc__CtrListAns ans = CIPC__CTR_LIST_ANS__INIT;

	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "ListContainers: no request");
		goto refuse;
	}
	if (w->req->filter) {
		const Runtime__V1__ContainerFilter *rf = w->req->filter;
		f.id = rf->id[0] ? rf->id : NULL;
		f.pod_id = rf->pod_sandbox_id[0] ? rf->pod_sandbox_id : NULL;
		if (rf->state)
			f.cri_state = rf->state->state;
		if (rf->n_label_selector) {
			if ((sel = pods_selector((void *const *)rf->label_selector, rf->n_label_selector)) == NULL)
				goto oom;
			f.selector = sel;
			f.nselector = rf->n_label_selector;
		}
	}
	if (state_ctr_list(p->st, &f, &ctrs, &n, &err) < 0)
		goto refuse;
	items = calloc(n + 1, sizeof *items);
	pitems = calloc(n + 1, sizeof *pitems);
	mds = calloc(n + 1, sizeof *mds);
	imgs = calloc(n + 1, sizeof *imgs);
	if (items == NULL || pitems == NULL || mds == NULL || imgs == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		runtime__v1__container__init(&items[i]);
		runtime__v1__container_metadata__init(&mds[i]);
		runtime__v1__image_spec__init(&imgs[i]);
		mds[i].name = ctrs[i]->name;
		mds[i].attempt = ctrs[i]->attempt;
		imgs[i].image = ctrs[i]->image_ref;
		items[i].id = ctrs[i]->id;
		items[i].pod_sandbox_id = ctrs[i]->pod_id;
		items[i].metadata = &mds[i];
		items[i].image = &imgs[i];
		items[i].image_ref = ctrs[i]->image_id;
		items[i].state = ctr_state_cri(ctrs[i]->state);
		items[i].created_at = ctrs[i]->created_at;
		items[i].n_labels = ctrs[i]->labels.n;
		items[i].labels = pods_kv_entries(&ctrs[i]->labels);
		items[i].n_annotations = ctrs[i]->annotations.n;
		items[i].annotations = pods_kv_entries(&ctrs[i]->annotations);
		pitems[i] = &items[i];
		if (items[i].labels == NULL || items[i].annotations == NULL)
			goto oom;
	}
	rs.n_containers = n;
	rs.containers = pitems;
	ans.resp = &rs;
	pods_answer(ch, m->hdr.reqid, IPC_CTR_LIST_ANS, &ans.base);
	goto out;
oom:
	crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
refuse:
	answer_error(ch, m->hdr.reqid, &err);
out:
	for (size_t i = 0; items && i < n; i++) {
		pods_kv_free(items[i].labels);
		pods_kv_free(items[i].annotations);
	}
	free(items);
	free(pitems);
	free(mds);
	free(imgs);
	free(sel);
	if (ctrs)
		state_ctr_list_free(ctrs, n);
}

void ctrs_on_status(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p)
{
	Cipc__CtrStatus *w = (Cipc__CtrStatus *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_ctr *c = NULL;
	struct state_pod *pod = NULL;
	Runtime__V1__ContainerConfig *cfg = NULL;
	Runtime__V1__ContainerStatusResponse rs = RUNTIME__V1__CONTAINER_STATUS_RESPONSE__INIT;
	Runtime__V1__ContainerStatus st = RUNTIME__V1__CONTAINER_STATUS__INIT;
	Runtime__V1__ContainerMetadata md = RUNTIME__V1__CONTAINER_METADATA__INIT;
	Runtime__V1__ImageSpec img = RUNTIME__V1__IMAGE_SPEC__INIT;
	Cipc__CtrStatusAns ans = CIPC__CTR_STATUS_ANS__INIT;
	Runtime__V1__ContainerStatusResponse__InfoEntry ie =
		RUNTIME__V1__CONTAINER_STATUS_RESPONSE__INFO_ENTRY__INIT, *pie = &ie;
	void *labels = NULL, *ann = NULL;
	char logpath[8192], *info = NULL;
	Runtime__V1__LinuxContainerResources lres = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	Runtime__V1__ContainerResources cres = RUNTIME__V1__CONTAINER_RESOURCES__INIT;
	char cpus[256], mems[256];

	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "ContainerStatus: no request");
		goto refuse;
	}
	if (state_ctr_get(p->st, w->req->container_id, &c, &err) < 0)
		goto refuse;
	md.name = c->name;
	md.attempt = c->attempt;
	img.image = c->image_ref;
	st.id = c->id;
	st.metadata = &md;
	st.state = ctr_state_cri(c->state);
	st.created_at = c->created_at;
	st.started_at = c->started_at;
	st.finished_at = c->finished_at;
	st.exit_code = c->exit_code;
	st.image = &img;
	st.image_ref = c->image_id;
	st.reason = c->reason ? c->reason : "";
	st.message = c->message ? c->message : "";
	/* The log path kubelet reads: the pod's log directory + the container's. */
	logpath[0] = '\0';
	if (c->log_path && c->log_path[0] && state_pod_get(p->st, c->pod_id, &pod, &err) == 0 && pod->log_directory)
		snprintf(logpath, sizeof logpath, "%s/%s", pod->log_directory, c->log_path);
	crisp_error_clear(&err);
	st.log_path = logpath;
	cfg = c->config ? runtime__v1__container_config__unpack(NULL, c->config_len, c->config) : NULL;
	if (cfg != NULL) {
		st.n_mounts = cfg->n_mounts;
		st.mounts = cfg->mounts;
	}
	/* resources: what the request asked, then what the cgroup holds now
	 * (UpdateContainerResources included), while the container has one */
	if (cfg != NULL && cfg->linux != NULL && cfg->linux->resources != NULL)
		lres = *cfg->linux->resources;
	if (c->state == CTR_CREATED || c->state == CTR_RUNNING) {
		struct ctr_cg cg;
		if (pod == NULL)
			(void)state_pod_get(p->st, c->pod_id, &pod, &err);
		if (pod != NULL &&
		    ctr_cgroup_paths(pod->cgroup_parent ? pod->cgroup_parent : "", c->id, &cg, &err) == 0 &&
		    ctr_cgroup_exists(&cg))
			ctr_cgroup_read(&cg, &lres, cpus, mems, sizeof cpus);
		crisp_error_clear(&err);
	}
	cres.linux = &lres;
	st.resources = &cres;
	labels = pods_kv_entries(&c->labels);
	ann = pods_kv_entries(&c->annotations);
	if (labels == NULL || ann == NULL) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		goto refuse;
	}
	st.n_labels = c->labels.n;
	st.labels = labels;
	st.n_annotations = c->annotations.n;
	st.annotations = ann;
	rs.status = &st;
	/* verbose: what crisp knows of the container beyond the CRI fields, as
	 * one JSON object under "info" (crictl inspect prints it). */
	if (w->req->verbose) {
		json_t *o = json_object();

		json_object_set_new(o, "sandboxID", json_string(c->pod_id));
		json_object_set_new(o, "state", json_string(ctr_state_name(c->state)));
		json_object_set_new(o, "pid", json_integer(c->pid));
		json_object_set_new(o, "monitorPid", json_integer(c->monitor_pid));
		json_object_set_new(o, "imageRef", json_string(c->image_ref ? c->image_ref : ""));
		json_object_set_new(o, "imageID", json_string(c->image_id ? c->image_id : ""));
		json_object_set_new(o, "logPath", json_string(logpath));
		json_object_set_new(o, "runtimeType", json_string("crisp"));
		if (cfg != NULL && cfg->linux != NULL && cfg->linux->security_context != NULL)
			json_object_set_new(o, "privileged",
					    json_boolean(cfg->linux->security_context->privileged));
		info = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(o);
		if (info == NULL) {
			crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
			goto refuse;
		}
		ie.key = "info";
		ie.value = info;
		rs.n_info = 1;
		rs.info = &pie;
	}
	ans.resp = &rs;
	pods_answer(ch, m->hdr.reqid, IPC_CTR_STATUS_ANS, &ans.base);
	goto out;
refuse:
	answer_error(ch, m->hdr.reqid, &err);
out:
	free(info);
	pods_kv_free(labels);
	pods_kv_free(ann);
	if (cfg)
		runtime__v1__container_config__free_unpacked(cfg, NULL);
	state_pod_free(pod);
	state_ctr_free(c);
}
