/* imaged: image pulls and queries (not built yet). */
#include "common/log.h"
#include "imaged/imaged.h"

static void unimplemented(struct ipc_chan *ch, struct ipc_msg *m, const char *what)
{
	crisp_err_t err = CRISP_ERR_INIT;

	crisp_error(&err, CRISP_UNIMPLEMENTED, 0, "crisp does not implement %s yet", what);
	if (ipc_answer_error(ch, m->hdr.reqid, &err) < 0)
		log_debug("error answer not sent (peer gone?)");
}

int images_init(struct imaged *im, crisp_err_t *err)
{
	(void)im;
	(void)err;
	return 0;
}

void images_close(struct imaged *im)
{
	(void)im;
}

void images_peer_changed(struct imaged *im, enum crisp_role peer, bool up)
{
	(void)im;
	(void)peer;
	(void)up;
}

void images_config_apply(struct imaged *im, const Cipc__Config *c)
{
	(void)im;
	(void)c;
}

#define STUB(fn, what)                                                          \
	void fn(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im)      \
	{                                                                       \
		(void)im;                                                       \
		unimplemented(ch, m, what);                                     \
	}
STUB(images_on_pull, "PullImage")
STUB(images_on_list, "ListImages")
STUB(images_on_status, "ImageStatus")
STUB(images_on_remove, "RemoveImage")
STUB(images_on_resolve, "image resolution")
STUB(images_on_unpin, "image unpinning")
