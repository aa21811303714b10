/*
 * frontd: GetContainerEvents.  Each call is a server-streaming subscriber;
 * while there is at least one, execd is subscribed (EVENTS_SUBSCRIBE) and
 * pushes CTR_EVENT, which is packed once and sent to every subscriber.
 * Bounded: at most EVENTS_MAX_SUBS calls; a client that does not read fills
 * its connection's buffer and loses the connection (grpc.c), not memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "frontd/events.h"
#include "frontd/validate.h"
#include "proto/ipc.pb-c.h"

#define EVENTS_MAX_SUBS 64

static void subscribe(struct frontd *f, bool on)
{
	struct ipc_chan *ch = role_peer(&f->role, ROLE_EXECD);
	Cipc__EventsSubscribe s = CIPC__EVENTS_SUBSCRIBE__INIT;
	crisp_err_t err = CRISP_ERR_INIT;

	if (ch == NULL)
		return; /* peer_changed subscribes when execd is back */
	s.on = on;
	if (ipc_send(ch, IPC_EVENTS_SUBSCRIBE, &s.base, -1, &err) < 0)
		log_warn("events subscription not sent: %s", err.msg);
}

static void drop_sub(struct frontd *f, struct grpc_call *call)
{
	for (size_t i = 0; i < f->nsubs; i++)
		if (f->subs[i] == call) {
			f->subs[i] = f->subs[--f->nsubs];
			grpc_call_unref(call);
			if (f->nsubs == 0)
				subscribe(f, false);
			return;
		}
}

static void on_cancel(struct grpc_call *call, void *arg)
{
	drop_sub(arg, call);
}

void cri_get_container_events(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	struct frontd *f = arg;
	crisp_err_t err = CRISP_ERR_INIT;
	ProtobufCMessage *rq = cri_decode_request(&runtime__v1__get_events_request__descriptor, req, len, &err);

	if (rq == NULL) {
		grpc_call_finish(call, err.code, err.msg);
		return;
	}
	protobuf_c_message_free_unpacked(rq, NULL);
	if (f->nsubs == EVENTS_MAX_SUBS) {
		grpc_call_finish(call, CRISP_RESOURCE_EXHAUSTED, "too many GetContainerEvents listeners");
		return;
	}
	if (grpc_call_on_cancel(call, on_cancel, f) < 0)
		return; /* already over */
	f->subs[f->nsubs++] = grpc_call_ref(call);
	if (f->nsubs == 1)
		subscribe(f, true);
}

void events_on_ctr_event(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_ctx *r = arg;
	struct frontd *f = r->arg;
	const Cipc__CtrEvent *w = (const Cipc__CtrEvent *)m->pb;
	struct grpc_call *snap[EVENTS_MAX_SUBS];
	size_t n, len;
	uint8_t *buf;

	(void)ch;
	if (w->ev == NULL || f->nsubs == 0)
		return;
	len = protobuf_c_message_get_packed_size(&w->ev->base);
	if ((buf = malloc(len ? len : 1)) == NULL) {
		log_warn("container event dropped: out of memory");
		return;
	}
	protobuf_c_message_pack(&w->ev->base, buf);
	/* A send may end a call (and its cancel callback edit the list). */
	n = f->nsubs;
	for (size_t i = 0; i < n; i++)
		snap[i] = grpc_call_ref(f->subs[i]);
	for (size_t i = 0; i < n; i++) {
		if (grpc_call_send(snap[i], buf, len) < 0 && errno != ECANCELED)
			log_debug("container event not sent: %s", strerror(errno));
		grpc_call_unref(snap[i]);
	}
	free(buf);
}

void events_peer_changed(struct frontd *f, enum crisp_role peer, bool up)
{
	if (peer == ROLE_EXECD && up && f->nsubs > 0)
		subscribe(f, true);
}

void events_close(struct frontd *f)
{
	while (f->nsubs > 0) {
		struct grpc_call *c = f->subs[--f->nsubs];
		grpc_call_finish(c, CRISP_UNAVAILABLE, "crisp is shutting down");
		grpc_call_unref(c);
	}
}
