/* execd: container events pushed to frontd (see events.c). */
#ifndef CRISP_EXECD_EVENTS_H
#define CRISP_EXECD_EVENTS_H

#include "execd/execd.h"

void events_init(struct execd *x);
void events_on_subscribe(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);
void events_peer_changed(struct execd *x, enum crisp_role peer, bool up);

#endif
