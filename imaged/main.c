/*
 * imaged: pulls images from registries crisp does not trust, verifies them
 * and keeps the image store.  Runs as its own unprivileged user with no
 * capabilities, no_new_privs, Landlock limited to its store, and a seccomp
 * allowlist.  (The registry client and store are built on this skeleton.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "common/util.h"
#include "imaged/fsusage.h"
#include "imaged/imaged.h"
#include "ipc/role.h"

/* ImageFsInfo: what the store uses, measured afresh. */
static void on_image_fs_info(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_ctx *r = arg;
	struct imaged *im = r->arg;
	Cipc__FsUsage u = CIPC__FS_USAGE__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	struct timespec ts;

	if (fs_usage(im->store_fd, &u.used_bytes, &u.inodes_used, &err) < 0) {
		if (ipc_answer_error(ch, m->hdr.reqid, &err) < 0)
			log_warn("IMAGE_FS_INFO error answer not sent");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	u.timestamp_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	u.mountpoint = im->store;
	if (ipc_answer(ch, m->hdr.reqid, IPC_FS_USAGE, &u.base, -1, &err) < 0)
		log_warn("IMAGE_FS_INFO answer: %s", err.msg);
}

#define IM_HANDLER(name, fn)                                                    \
	static void name(struct ipc_chan *ch, struct ipc_msg *m, void *arg)     \
	{                                                                       \
		struct role_ctx *r = arg;                                       \
		fn(ch, m, (struct imaged *)r->arg);                             \
	}
IM_HANDLER(on_img_pull, images_on_pull)
IM_HANDLER(on_img_list, images_on_list)
IM_HANDLER(on_img_status, images_on_status)
IM_HANDLER(on_img_remove, images_on_remove)
IM_HANDLER(on_image_resolve, images_on_resolve)
IM_HANDLER(on_image_unpin, images_on_unpin)
IM_HANDLER(on_image_pins_sync, images_on_pins_sync)

static const struct ipc_handler handlers[] = {
	ROLE_COMMON_HANDLERS,
	{ IPC_IMAGE_FS_INFO, on_image_fs_info },
	{ IPC_IMG_PULL, on_img_pull },
	{ IPC_IMG_LIST, on_img_list },
	{ IPC_IMG_STATUS, on_img_status },
	{ IPC_IMG_REMOVE, on_img_remove },
	{ IPC_IMAGE_RESOLVE, on_image_resolve },
	{ IPC_IMAGE_UNPIN, on_image_unpin },
	{ IPC_IMAGE_PINS_SYNC, on_image_pins_sync },
};

static void peer_changed(struct role_ctx *r, enum crisp_role peer, bool up)
{
	images_peer_changed(r->arg, peer, up);
}

static int config_check(struct role_ctx *r, const Cipc__Config *c, crisp_err_t *err)
{
	return images_config_check(r->arg, c, err);
}

static void config_apply(struct role_ctx *r, const Cipc__Config *c)
{
	images_config_apply(r->arg, c);
}

static void stop(struct role_ctx *r)
{
	images_close(r->arg);
}

static const struct role_ops ops = {
	.config_check = config_check,
	.config_apply = config_apply,
	.peer_changed = peer_changed,
	.stop = stop,
};

int main(int argc, char **argv)
{
	static struct imaged im;
	crisp_err_t err = CRISP_ERR_INIT;

	role_parse_args(argc, argv, &im.args);
	role_init(&im.role, ROLE_IMAGED, &ops, handlers, ARRAY_SIZE(handlers), &im);
	if ((size_t)snprintf(im.store, sizeof im.store, "%s/images", im.args.root) >= sizeof im.store)
		fatal("store path too long");
	im.store_fd = open(im.store, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (im.store_fd < 0)
		fatal("%s: %s", im.store, strerror(errno));
	if (images_init(&im, &err) < 0)
		fatal("%s", err.msg);
	if (sandbox_apply_role(ROLE_IMAGED, &im.args, &err) < 0)
		fatal("sandbox: %s", err.msg);
	if (images_open_store(&im, &err) < 0)
		fatal("%s", err.msg);
	return role_run(&im.role);
}
