/* frontd: GetContainerEvents subscribers (see events.c). */
#ifndef FRONTD_EVENTS_H
#define FRONTD_EVENTS_H

#include "frontd/cri.h"

void cri_get_container_events(struct grpc_call *call, const uint8_t *req, size_t len, void *arg);
/* CTR_EVENT from execd: send it to every subscriber. */
void events_on_ctr_event(struct ipc_chan *ch, struct ipc_msg *m, void *arg);
/* execd (re)started: subscribe again when somebody listens. */
void events_peer_changed(struct frontd *f, enum crisp_role peer, bool up);
void events_close(struct frontd *f);

#endif
