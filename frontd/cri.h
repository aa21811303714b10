/*
 * frontd: the CRI v1 services on top of the gRPC transport.  Each request is
 * decoded and validated here, turned into a typed ipc request and routed to
 * the role that owns the answer; frontd keeps no state that matters.
 */
#ifndef FRONTD_CRI_H
#define FRONTD_CRI_H

#include <stddef.h>

#include "frontd/grpc.h"
#include "frontd/stream.h"
#include "ipc/role.h"

struct frontd {
	struct role_ctx role;
	struct role_args args;
	struct grpc_server *server;
	int listen_fd;
	struct stream_server *stream; /* Exec/Attach/PortForward (frontd/stream.h) */
	int stream_fd;                /* its TCP listener, fd 6 */
	char stream_base[96];         /* "http://127.0.0.1:PORT" */
	struct grpc_call *subs[64]; /* GetContainerEvents listeners (events.c) */
	size_t nsubs;
};

/* The method table: every RPC of runtime.v1 RuntimeService and ImageService. */
extern const struct grpc_method cri_methods[];
extern const size_t cri_nmethods;

#define CRISP_VERSION "0.1.0"
#define CRI_API_VERSION "v1"

#endif
