/* execd: helpers shared by execd's modules. */
#include "common/log.h"
#include "execd/execd.h"

void execd_unimplemented(struct ipc_chan *ch, struct ipc_msg *m, const char *what)
{
	crisp_err_t err = CRISP_ERR_INIT;

	crisp_error(&err, CRISP_UNIMPLEMENTED, 0, "crisp does not implement %s yet", what);
	if (ipc_answer_error(ch, m->hdr.reqid, &err) < 0)
		log_debug("error answer not sent (peer gone?)");
}
