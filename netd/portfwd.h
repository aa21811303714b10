/*
 * netd: port-forward connections for frontd's streaming server.
 *
 * STREAM_PORT_FORWARD {pod, port} -> STREAM_ANS with a TCP socket connected
 * to localhost:<port> inside the pod's network namespace.  The sockets are
 * created by a short-lived forked child that joins the namespace (setns on
 * the pin's fd) and sends them back over a socketpair: a socket belongs to
 * the namespace it was created in, so netd itself never changes namespace
 * and connects from its own loop (non-blocking, PORTFWD_CONNECT_MS), to
 * 127.0.0.1 first and ::1 when that fails.  An unknown pod is NOT_FOUND, a
 * refused or timed-out connection UNAVAILABLE.
 */
#ifndef NETD_PORTFWD_H
#define NETD_PORTFWD_H

#include "ipc/ipc.h"

#define PORTFWD_CONNECT_MS 5000
#define PORTFWD_MAX_OPS 64

struct netd_portfwd;

struct netd_pods;
/* Pods' namespaces are found through their records in pods (netd/pods.h:
 * netd_pods_netns_open), wherever netd.netns_dir was when they were made. */
struct netd_portfwd *portfwd_new(struct loop *l, const struct netd_pods *pods);
/* Abandon every connection in progress (their requests get nothing). */
void portfwd_free(struct netd_portfwd *p);
void portfwd_on_request(struct netd_portfwd *p, struct ipc_chan *ch, struct ipc_msg *m);

/* Create an IPv4 and an IPv6 TCP socket (non-blocking, CLOEXEC) inside the
 * network namespace nsfd; fd6 may come back -1 (no IPv6 there).  Exported
 * for the tests. */
int portfwd_ns_sockets(int nsfd, int *fd4, int *fd6, crisp_err_t *err);

#endif
