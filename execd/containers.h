/*
 * execd: containers (see containers.c).  They live in the same state
 * database as pods (execd/state.h).
 */
#ifndef EXECD_CONTAINERS_H
#define EXECD_CONTAINERS_H

#include "execd/pods.h"

void ctrs_on_list(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p);
void ctrs_on_status(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p);

struct execd;
/* A pod stops (or goes): SIGKILL its running containers and call done
 * once every one has exited (and, with remove, has been removed). */
void ctrs_pod_stop(struct execd *x, const char *pod_id, bool remove, void (*done)(void *arg), void *arg);

#endif
