/*
 * execd: the process-wide context every execd module hangs off.  One per
 * process, owned by main.c; modules keep their own private state behind an
 * opaque pointer and receive the whole context in their handlers.
 */
#ifndef CRISP_EXECD_EXECD_H
#define CRISP_EXECD_EXECD_H

#include "execd/pods.h"
#include "ipc/role.h"

struct execd_layers;  /* execd/layers.c: unpacked image layers */
struct execd_ctrs;    /* execd/containers.c: container lifecycle */
struct execd_stream;  /* execd/stream.c: exec/attach sessions */

struct execd {
	struct role_ctx role;
	struct role_args args;
	char state_dir[4096];
	struct execd_pods pods;
	struct execd_layers *layers;
	struct execd_ctrs *ctrs;
	struct execd_stream *stream;
	bool events_subscribed; /* frontd has GetContainerEvents listeners */
};

/* An execd ipc handler: the usual ipc handler with the context resolved. */
typedef void (*execd_handler_fn)(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);

/* Answer "not built yet" (UNIMPLEMENTED) naming the message. */
void execd_unimplemented(struct ipc_chan *ch, struct ipc_msg *m, const char *what);

/* Module lifecycles, called by main.c in this order (close in reverse). */
int layers_init(struct execd *x, crisp_err_t *err);
void layers_close(struct execd *x);
int ctrs_init(struct execd *x, crisp_err_t *err);
void ctrs_close(struct execd *x);
/* The channel to imaged came up: send it every pin holder this execd has a
 * record of (IMAGE_PINS_SYNC), so its pins match the containers' rows. */
void ctrs_imaged_up(struct execd *x);
int stream_init(struct execd *x, crisp_err_t *err);
void stream_close(struct execd *x);

/* execd/layers.c (imaged -> execd) */
void layers_on_unpack(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);
void layers_on_release(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);

/* execd/containers.c and friends (frontd -> execd) */
void ctrs_on_create(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);
void ctrs_on_start(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);
void ctrs_on_stop(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);
void ctrs_on_remove(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);
void ctrs_on_exec_sync(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);
void ctrs_on_update(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);
void ctrs_on_reopen_log(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);
void ctrs_on_stats(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);
void ctrs_on_list_stats(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);
void ctrs_on_pod_stats(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);
void ctrs_on_pod_list_stats(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);

/*
 * Stdio sessions, built by the container module and handed (as the fd of a
 * STREAM_ANS) to frontd by execd/stream.c.  Both return one end of a
 * SOCK_SEQPACKET socketpair (CLOEXEC) whose packets are frames: one channel
 * byte then at most CTR_FRAME_MAX data bytes.
 *   0 stdin   frontd -> process; a frame with no data closes stdin
 *   1 stdout  process -> frontd
 *   2 stderr  process -> frontd (never with a tty: the tty merges it)
 *   3 status  process -> frontd, the last frame before EOF: a k8s
 *             metav1.Status JSON ({"status":"Success"}, or "Failure" with
 *             reason "NonZeroExitCode" and a cause {"reason":"ExitCode",
 *             "message":"<code>"}, or "InternalError" with a message)
 *   4 resize  frontd -> process: {"Width":W,"Height":H} (tty only)
 * Then EOF.  frontd closing its end ends the session (an exec'd process
 * gets SIGHUP/EOF, an attach just detaches).
 */
#define CTR_FRAME_MAX 32768
enum ctr_frame_chan { CTR_CH_STDIN = 0, CTR_CH_STDOUT, CTR_CH_STDERR, CTR_CH_STATUS, CTR_CH_RESIZE };

/* A new process in a running container (CRI Exec): cmd as given, the
 * container's user, env, caps, seccomp, cgroup; tty allocates a pty. */
int ctrs_exec_session(struct execd *x, const char *ctr_id, char *const *cmd, bool tty, bool want_stdin,
	int *sockfd, crisp_err_t *err);
/* The container's own stdio (CRI Attach), through its monitor. */
int ctrs_attach_session(struct execd *x, const char *ctr_id, bool want_stdin, int *sockfd, crisp_err_t *err);

/* execd/stream.c (frontd -> execd) */
void stream_on_exec(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);
void stream_on_attach(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);
void stream_on_port_forward(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x);

#endif
