/*
 * netd: port-forward connections (see portfwd.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "netd/netns.h"
#include "netd/pods.h"
#include "netd/portfwd.h"
#include "proto/ipc.pb-c.h"

struct pf_op {
	struct netd_portfwd *p;
	struct pf_op *next, *prev;
	struct ipc_chan *ch;
	uint64_t reqid;
	int port;
	int fd4, fd6;
	int cur;        /* the fd being connected (fd4, then fd6) */
	bool v6;
	struct loop_timer *timer;
	char pod[72];
};

struct netd_portfwd {
	struct loop *loop;
	const struct netd_pods *pods; /* where each pod's namespace is pinned */
	struct pf_op *ops;
	unsigned nops;
};

int portfwd_ns_sockets(int nsfd, int *fd4, int *fd6, crisp_err_t *err)
{
	int sp[2], status;
	pid_t pid;
	char byte = 0;
	struct iovec iov = { &byte, 1 };
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh;
	struct cmsghdr *cm;
	ssize_t n;

	*fd4 = *fd6 = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "socketpair");
	pid = fork();
	if (pid < 0) {
		close(sp[0]);
		close(sp[1]);
		return crisp_error(err, CRISP_INTERNAL, errno, "fork");
	}
	if (pid == 0) {
		int fds[2], nfds = 0;

		close(sp[0]);
		if (setns(nsfd, CLONE_NEWNET) < 0)
			_exit(1);
		fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fds[0] < 0)
			_exit(2);
		nfds = 1;
		fds[1] = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fds[1] >= 0)
			nfds = 2;
		memset(&mh, 0, sizeof mh);
		memset(&u, 0, sizeof u);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
		_exit(sendmsg(sp[1], &mh, MSG_NOSIGNAL) == 1 ? 0 : 3);
	}
	close(sp[1]);
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof u.buf;
	do
		n = recvmsg(sp[0], &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	close(sp[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n == 1 && !(mh.msg_flags & MSG_CTRUNC))
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			size_t k;
			int fds[2];

			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			if (k < 1 || k > 2)
				continue;
			memcpy(fds, CMSG_DATA(cm), k * sizeof(int));
			*fd4 = fds[0];
			if (k == 2)
				*fd6 = fds[1];
		}
	if (*fd4 < 0) {
		if (*fd6 >= 0)
			close(*fd6);
		*fd6 = -1;
		return crisp_error(err, CRISP_INTERNAL, 0, "no socket from the pod's network namespace (child status %d)",
				   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	return 0;
}

static void op_free(struct pf_op *op)
{
	struct netd_portfwd *p = op->p;

	if (op->timer)
		loop_timer_cancel(p->loop, op->timer);
	if (op->cur >= 0)
		loop_del(p->loop, op->cur);
	if (op->fd4 >= 0)
		close(op->fd4);
	if (op->fd6 >= 0)
		close(op->fd6);
	if (op->ch)
		ipc_chan_unref(op->ch);
	if (op->prev)
		op->prev->next = op->next;
	else
		p->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	p->nops--;
	free(op);
}

static void op_answer(struct pf_op *op, int fd, const crisp_err_t *e)
{
	crisp_err_t err = CRISP_ERR_INIT;

	if (ipc_chan_is_open(op->ch)) {
		if (fd >= 0) {
			Cipc__StreamAns a = CIPC__STREAM_ANS__INIT;

			a.detail = op->v6 ? "[::1]" : "127.0.0.1";
			if (ipc_answer(op->ch, op->reqid, IPC_STREAM_ANS, &a.base, fd, &err) < 0)
				log_warn("port-forward answer: %s", err.msg);
		} else if (ipc_answer_error(op->ch, op->reqid, e) < 0) {
			log_warn("port-forward error answer not sent");
		}
	}
	op_free(op);
}

static void try_next(struct pf_op *op);

static void on_connected(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct pf_op *op = arg;
	int soerr = 0;
	socklen_t sl = sizeof soerr;

	(void)l;
	(void)events;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	loop_del(op->p->loop, fd);
	op->cur = -1;
	if (op->timer) {
		loop_timer_cancel(op->p->loop, op->timer);
		op->timer = NULL;
	}
	if (soerr == 0) {
		op_answer(op, fd, NULL);
		return;
	}
	errno = soerr;
	try_next(op);
}

static void on_timeout(struct loop *l, void *arg)
{
	struct pf_op *op = arg;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)l;
	op->timer = NULL;
	crisp_error(&err, CRISP_UNAVAILABLE, ETIMEDOUT, "port %d in pod %s: no connection after %d ms", op->port,
		    op->pod, PORTFWD_CONNECT_MS);
	op_answer(op, -1, &err);
}

/* Connect fd4, or fd6 when fd4 failed; answer when neither can. */
static void try_next(struct pf_op *op)
{
	int saved = errno;

	for (;;) {
		int fd;
		struct sockaddr_storage ss;
		socklen_t sl;

		memset(&ss, 0, sizeof ss);
		if (!op->v6) {
			op->v6 = true;
			if (op->fd6 < 0)
				break;
			fd = op->fd6;
			((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
			((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)op->port);
			((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
			sl = sizeof(struct sockaddr_in6);
		} else {
			break;
		}
		if (connect(fd, (struct sockaddr *)&ss, sl) == 0) {
			op_answer(op, fd, NULL);
			return;
		}
		if (errno == EINPROGRESS) {
			op->cur = fd;
			if (loop_add(op->p->loop, fd, EPOLLOUT, on_connected, op) == 0 &&
			    (op->timer = loop_timer_add(op->p->loop, PORTFWD_CONNECT_MS, on_timeout, op)) != NULL)
				return;
			saved = errno;
			break;
		}
		saved = errno;
	}
	{
		crisp_err_t err = CRISP_ERR_INIT;

		crisp_error(&err, CRISP_UNAVAILABLE, saved, "connecting to port %d in pod %s", op->port, op->pod);
		op_answer(op, -1, &err);
	}
}

static void start(struct pf_op *op)
{
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)op->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(op->fd4, (struct sockaddr *)&sa, sizeof sa) == 0) {
		op_answer(op, op->fd4, NULL);
		return;
	}
	if (errno == EINPROGRESS) {
		op->cur = op->fd4;
		if (loop_add(op->p->loop, op->fd4, EPOLLOUT, on_connected, op) == 0 &&
		    (op->timer = loop_timer_add(op->p->loop, PORTFWD_CONNECT_MS, on_timeout, op)) != NULL)
			return;
		if (op->cur >= 0)
			loop_del(op->p->loop, op->cur);
		op->cur = -1;
	}
	try_next(op);
}

static bool pod_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		      id[i] == '_' || id[i] == '-' || (id[i] == '.' && i > 0)))
			return false;
	return true;
}

void portfwd_on_request(struct netd_portfwd *p, struct ipc_chan *ch, struct ipc_msg *m)
{
	const Cipc__StreamPortForward *rq = (const Cipc__StreamPortForward *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct pf_op *op;
	int nsfd = -1;

	if (rq->pod_sandbox_id == NULL || !pod_id_ok(rq->pod_sandbox_id) || rq->port < 1 || rq->port > 65535) {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "port-forward: bad pod id or port");
		goto fail;
	}
	if (p->nops >= PORTFWD_MAX_OPS) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, 0, "port-forward: too many connections in progress");
		goto fail;
	}
	if (netd_pods_netns_open(p->pods, rq->pod_sandbox_id, &nsfd, &err) < 0) {
		if (err.code == CRISP_NOT_FOUND)
			crisp_error(&err, CRISP_NOT_FOUND, 0, "pod sandbox %s has no network namespace",
				    rq->pod_sandbox_id);
		goto fail;
	}
	op = calloc(1, sizeof *op);
	if (op == NULL) {
		close(nsfd);
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
		goto fail;
	}
	op->p = p;
	op->fd4 = op->fd6 = op->cur = -1;
	op->port = rq->port;
	op->reqid = m->hdr.reqid;
	snprintf(op->pod, sizeof op->pod, "%s", rq->pod_sandbox_id);
	op->ch = ipc_chan_ref(ch);
	op->next = p->ops;
	if (p->ops)
		p->ops->prev = op;
	p->ops = op;
	p->nops++;
	if (portfwd_ns_sockets(nsfd, &op->fd4, &op->fd6, &err) < 0) {
		close(nsfd);
		op_answer(op, -1, &err);
		return;
	}
	close(nsfd);
	start(op);
	return;
fail:
	if (ipc_answer_error(ch, m->hdr.reqid, &err) < 0)
		log_warn("port-forward error answer not sent");
}

struct netd_portfwd *portfwd_new(struct loop *l, const struct netd_pods *pods)
{
	struct netd_portfwd *p = calloc(1, sizeof *p);

	if (p == NULL)
		return NULL;
	p->loop = l;
	p->pods = pods;
	return p;
}

void portfwd_free(struct netd_portfwd *p)
{
	if (p == NULL)
		return;
	while (p->ops)
		op_free(p->ops);
	free(p);
}
