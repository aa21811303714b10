/*
 * execd: containers (see containers.c).  They live in the same state
 * database as pods (execd/state.h).
 */
#ifndef EXECD_CONTAINERS_H
#define EXECD_CONTAINERS_H

#include "execd/pods.h"

void ctrs_on_list(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p);
void ctrs_on_status(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p);

#endif
