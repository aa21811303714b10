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
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "execd/execd.h"

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
