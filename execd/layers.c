/* execd: unpacked image layers (not built yet). */
#include "execd/execd.h"

int layers_init(struct execd *x, crisp_err_t *err)
{
	(void)x;
	(void)err;
	return 0;
}

void layers_close(struct execd *x)
{
	(void)x;
}

void layers_on_unpack(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	(void)x;
	execd_unimplemented(ch, m, "layer unpacking");
}

void layers_on_release(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	(void)x;
	execd_unimplemented(ch, m, "layer release");
}
