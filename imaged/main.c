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
#include "ipc/role.h"

struct imaged {
	struct role_ctx role;
	struct role_args args;
	char store[4096]; /* <root>/images, owned by imaged's user */
	int store_fd;
};

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

static const struct ipc_handler handlers[] = {
	ROLE_COMMON_HANDLERS,
	{ IPC_IMAGE_FS_INFO, on_image_fs_info },
};

static const struct role_ops ops = { 0 };

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
	if (sandbox_apply_role(ROLE_IMAGED, &im.args, &err) < 0)
		fatal("sandbox: %s", err.msg);
	return role_run(&im.role);
}
