/*
 * execd: exec and attach sessions for frontd's streaming server.
 *
 * frontd sends the CRI request it validated (STREAM_EXEC / STREAM_ATTACH);
 * execd checks it again (it never trusts frontd's checks), has the
 * container module build the session (ctrs_exec_session / ctrs_attach_session:
 * one end of a SOCK_SEQPACKET pair speaking the frame protocol of execd.h)
 * and answers STREAM_ANS with that fd.  execd keeps nothing: the session
 * lives as long as frontd holds its end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "execd/execd.h"

#define PORTFWD_HOST_WAIT_MS 1000

/* Same bounds as frontd's validator: a container id is 1..64 of [0-9a-zA-Z_.-],
 * the command 1..256 arguments, no NUL games (protobuf strings). */
static int check_req(const char *id, bool in, bool out, bool errs, bool tty, crisp_err_t *err)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > 64)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "container_id: 1 to 64 characters required");
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		      c == '-' || c == '.'))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "container_id: bad character");
	}
	if (!in && !out && !errs)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "one of stdin, stdout and stderr must be true");
	if (tty && errs)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "stderr must be false when tty is true");
	return 0;
}

static void answer(struct ipc_chan *ch, struct ipc_msg *m, int fd, const crisp_err_t *e, const char *what)
{
	crisp_err_t err = CRISP_ERR_INIT;

	if (fd < 0) {
		if (ipc_answer_error(ch, m->hdr.reqid, e) < 0)
			log_warn("%s: error answer not sent", what);
		return;
	}
	{
		Cipc__StreamAns a = CIPC__STREAM_ANS__INIT;

		a.detail = (char *)what;
		if (ipc_answer(ch, m->hdr.reqid, IPC_STREAM_ANS, &a.base, fd, &err) < 0)
			log_warn("%s answer: %s", what, err.msg);
	}
	close(fd); /* sent (a copy now lives in frontd) or not: ours is done */
}

int stream_init(struct execd *x, crisp_err_t *err)
{
	(void)x;
	(void)err;
	return 0;
}

void stream_close(struct execd *x)
{
	(void)x;
}

void stream_on_exec(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	const Cipc__StreamExec *w = (const Cipc__StreamExec *)m->pb;
	const Runtime__V1__ExecRequest *rq = w->req;
	crisp_err_t err = CRISP_ERR_INIT;
	char **cmd = NULL;
	int fd = -1;

	if (rq == NULL) {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "Exec: no request");
	} else if (check_req(rq->container_id, rq->stdin, rq->stdout, rq->stderr, rq->tty, &err) == 0) {
		if (rq->n_cmd == 0 || rq->n_cmd > 256) {
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "cmd: 1 to 256 arguments required");
		} else if ((cmd = calloc(rq->n_cmd + 1, sizeof *cmd)) == NULL) {
			crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, 0, "out of memory");
		} else {
			memcpy(cmd, rq->cmd, rq->n_cmd * sizeof *cmd);
			if (ctrs_exec_session(x, rq->container_id, cmd, rq->tty, rq->stdin, &fd, &err) < 0)
				fd = -1;
		}
	}
	free(cmd);
	if (fd < 0)
		log_info("Exec session refused: %s", err.msg);
	answer(ch, m, fd, &err, "Exec");
}

void stream_on_attach(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	const Cipc__StreamAttach *w = (const Cipc__StreamAttach *)m->pb;
	const Runtime__V1__AttachRequest *rq = w->req;
	crisp_err_t err = CRISP_ERR_INIT;
	int fd = -1;

	if (rq == NULL)
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "Attach: no request");
	else if (check_req(rq->container_id, rq->stdin, rq->stdout, rq->stderr, rq->tty, &err) == 0 &&
		 ctrs_attach_session(x, rq->container_id, rq->stdin, &fd, &err) < 0)
		fd = -1;
	if (fd < 0)
		log_info("Attach session refused: %s", err.msg);
	answer(ch, m, fd, &err, "Attach");
}

/* A non-blocking connect to the host's loopback; a listener with room in
 * its backlog completes it at once, a full one gets a short wait. */
static int loopback_connect(int family, int port, crisp_err_t *err)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, e = 0;
	socklen_t el = sizeof e;
	struct pollfd pfd;

	memset(&ss, 0, sizeof ss);
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof *s4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		s6->sin6_addr = in6addr_loopback;
		sl = sizeof *s6;
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "socket");
	if (connect(fd, (struct sockaddr *)&ss, sl) == 0)
		return fd;
	if (errno == EINPROGRESS) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, PORTFWD_HOST_WAIT_MS) == 1 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0)
			return fd;
		errno = e ? e : ETIMEDOUT;
	}
	e = errno;
	close(fd);
	return crisp_error(err, CRISP_UNAVAILABLE, e, "port %d on the host's loopback: %s", port, strerror(e));
}

/*
 * Port-forward to a pod on the host's network (netd forwards every other
 * pod, inside its namespace).  frontd comes here only after netd found no
 * namespace for the pod, and execd checks for itself that the pod exists,
 * is ready and really is a host-network pod: what a compromised frontd can
 * reach this way is what any CRI client reaches by port-forwarding to such
 * a pod, the host's loopback port that pod may serve.
 */
void stream_on_port_forward(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	const Cipc__StreamPortForward *rq = (const Cipc__StreamPortForward *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_pod *pod = NULL;
	int fd = -1;

	if (rq->pod_sandbox_id == NULL || rq->port < 1 || rq->port > 65535)
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "port-forward: bad pod id or port");
	else if (state_pod_get(x->pods.st, rq->pod_sandbox_id, &pod, &err) < 0)
		; /* NOT_FOUND / INVALID_ARGUMENT as the lookup says */
	else if (!(pod->flags & STATE_POD_HOST_NET))
		crisp_error(&err, CRISP_NOT_FOUND, 0, "pod sandbox %s has no network namespace", pod->id);
	else if (pod->state != POD_READY)
		crisp_error(&err, CRISP_FAILED_PRECONDITION, 0, "pod sandbox %s is not ready", pod->id);
	else if ((fd = loopback_connect(AF_INET, rq->port, &err)) < 0)
		fd = loopback_connect(AF_INET6, rq->port, &err);
	state_pod_free(pod);
	if (fd < 0)
		log_info("port-forward refused: %s", err.msg);
	answer(ch, m, fd, &err, "PortForward");
}
