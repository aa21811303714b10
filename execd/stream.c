/* execd: exec and attach sessions (not built yet). */
#include "execd/execd.h"

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
	(void)x;
	execd_unimplemented(ch, m, "Exec");
}

void stream_on_attach(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	(void)x;
	execd_unimplemented(ch, m, "Attach");
}
