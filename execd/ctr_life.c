/* execd: container lifecycle (not built yet). */
#include "execd/execd.h"

int ctrs_init(struct execd *x, crisp_err_t *err)
{
	(void)x;
	(void)err;
	return 0;
}

void ctrs_close(struct execd *x)
{
	(void)x;
}

int ctrs_exec_session(struct execd *x, const char *ctr_id, char *const *cmd, bool tty, bool want_stdin,
	int *sockfd, crisp_err_t *err)
{
	(void)x, (void)ctr_id, (void)cmd, (void)tty, (void)want_stdin, (void)sockfd;
	return crisp_error(err, CRISP_UNIMPLEMENTED, 0, "crisp does not implement Exec yet");
}

int ctrs_attach_session(struct execd *x, const char *ctr_id, bool want_stdin, int *sockfd, crisp_err_t *err)
{
	(void)x, (void)ctr_id, (void)want_stdin, (void)sockfd;
	return crisp_error(err, CRISP_UNIMPLEMENTED, 0, "crisp does not implement Attach yet");
}

#define STUB(fn, what)                                                          \
	void fn(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)        \
	{                                                                       \
		(void)x;                                                        \
		execd_unimplemented(ch, m, what);                               \
	}
STUB(ctrs_on_create, "CreateContainer")
STUB(ctrs_on_start, "StartContainer")
STUB(ctrs_on_stop, "StopContainer")
STUB(ctrs_on_remove, "RemoveContainer")
STUB(ctrs_on_exec_sync, "ExecSync")
STUB(ctrs_on_update, "UpdateContainerResources")
STUB(ctrs_on_reopen_log, "ReopenContainerLog")
STUB(ctrs_on_stats, "ContainerStats")
STUB(ctrs_on_list_stats, "ListContainerStats")
STUB(ctrs_on_pod_stats, "PodSandboxStats")
STUB(ctrs_on_pod_list_stats, "ListPodSandboxStats")
