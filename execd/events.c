/*
 * execd: container events for GetContainerEvents.  Every committed
 * container transition lands in the state's event ring (execd/state.c);
 * the ring's hook drains it here and, while frontd has subscribers, pushes
 * each event as CTR_EVENT with the pod's and the container's status as
 * they are after the transition (what kubelet's evented PLEG reads).
 * Without a subscriber events are dropped: CRI events are live, never
 * replayed (as containerd).
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "execd/events.h"
#include "proto/ipc.pb-c.h"

static void fill_pod(Runtime__V1__PodSandboxStatus *ps, Runtime__V1__PodSandboxMetadata *md,
		     const struct state_pod *p)
{
	md->name = p->name;
	md->uid = p->uid;
	md->namespace_ = p->namespace;
	md->attempt = p->attempt;
	ps->id = (char *)p->id;
	ps->metadata = md;
	ps->state = (Runtime__V1__PodSandboxState)pod_state_cri(p->state);
	ps->created_at = p->created_at;
	ps->runtime_handler = p->runtime_handler ? p->runtime_handler : "";
}

static void send_event(struct execd *x, struct ipc_chan *ch, const struct state_event *e)
{
	Runtime__V1__ContainerEventResponse r = RUNTIME__V1__CONTAINER_EVENT_RESPONSE__INIT;
	Runtime__V1__PodSandboxStatus ps = RUNTIME__V1__POD_SANDBOX_STATUS__INIT;
	Runtime__V1__PodSandboxMetadata pmd = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
	Runtime__V1__ContainerStatus cs = RUNTIME__V1__CONTAINER_STATUS__INIT, *pcs = &cs;
	Runtime__V1__ContainerMetadata cmd = RUNTIME__V1__CONTAINER_METADATA__INIT;
	Runtime__V1__ImageSpec img = RUNTIME__V1__IMAGE_SPEC__INIT;
	Cipc__CtrEvent w = CIPC__CTR_EVENT__INIT;
	struct state_pod *pod = NULL;
	struct state_ctr *c = NULL;
	crisp_err_t err = CRISP_ERR_INIT;
	void *labels = NULL, *annots = NULL;

	r.container_id = (char *)e->ctr_id;
	r.container_event_type = (Runtime__V1__ContainerEventType)e->type;
	r.created_at = e->at_ns;
	if (e->pod_id[0] && state_pod_get(x->pods.st, e->pod_id, &pod, &err) == 0) {
		fill_pod(&ps, &pmd, pod);
		r.pod_sandbox_status = &ps;
	}
	/* A deleted container has no row any more: its status is its id. */
	cs.id = (char *)e->ctr_id;
	cs.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
	if (e->type != STATE_EVT_DELETED && state_ctr_get(x->pods.st, e->ctr_id, &c, &err) == 0) {
		cmd.name = c->name;
		cmd.attempt = c->attempt;
		cs.metadata = &cmd;
		cs.state = (Runtime__V1__ContainerState)ctr_state_cri(c->state);
		cs.created_at = c->created_at;
		cs.started_at = c->started_at;
		cs.finished_at = c->finished_at;
		cs.exit_code = c->exit_code;
		img.image = c->image_ref ? c->image_ref : "";
		cs.image = &img;
		cs.image_ref = c->image_id ? c->image_id : "";
		cs.reason = c->reason ? c->reason : "";
		cs.message = c->message ? c->message : "";
		cs.log_path = c->log_path ? c->log_path : "";
		labels = pods_kv_entries(&c->labels);
		annots = pods_kv_entries(&c->annotations);
		if ((labels == NULL && c->labels.n) || (annots == NULL && c->annotations.n))
			goto out; /* out of memory: this event is lost, logged below */
		cs.n_labels = c->labels.n;
		cs.labels = labels;
		cs.n_annotations = c->annotations.n;
		cs.annotations = annots;
	}
	r.n_containers_statuses = 1;
	r.containers_statuses = &pcs;
	w.ev = &r;
	if (ipc_send(ch, IPC_CTR_EVENT, &w.base, -1, &err) < 0)
		log_warn("container event for %.12s not sent: %s", e->ctr_id, err.msg);
out:
	if (labels == NULL && c != NULL && c->labels.n)
		log_warn("container event for %.12s lost: out of memory", e->ctr_id);
	pods_kv_free(labels);
	pods_kv_free(annots);
	state_ctr_free(c);
	state_pod_free(pod);
}

static void drain(void *arg)
{
	struct execd *x = arg;
	struct ipc_chan *ch = x->events_subscribed ? role_peer(&x->role, ROLE_FRONTD) : NULL;
	struct state_event ev[32];
	size_t n;

	while ((n = state_events_take(x->pods.st, ev, ARRAY_SIZE(ev))) > 0)
		for (size_t i = 0; ch != NULL && i < n; i++)
			send_event(x, ch, &ev[i]);
}

void events_init(struct execd *x)
{
	state_set_event_hook(x->pods.st, drain, x);
}

void events_on_subscribe(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	const Cipc__EventsSubscribe *w = (const Cipc__EventsSubscribe *)m->pb;
	struct state_event ev[32];

	(void)ch;
	/* What happened before anyone listened is not replayed. */
	while (state_events_take(x->pods.st, ev, ARRAY_SIZE(ev)) > 0)
		;
	x->events_subscribed = w->on;
	log_debug("container events %s", w->on ? "subscribed" : "unsubscribed");
}

void events_peer_changed(struct execd *x, enum crisp_role peer, bool up)
{
	if (peer == ROLE_FRONTD && !up)
		x->events_subscribed = false; /* a new frontd subscribes again */
}
