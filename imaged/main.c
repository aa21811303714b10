/*
 * imaged: pulls images from registries crisp does not trust, verifies them
 * and keeps the image store.  Runs as its own unprivileged user with no
 * capabilities, no_new_privs, Landlock limited to its store, and a seccomp
 * allowlist.  (The registry client and store are built on this skeleton.)
 */
#include <stdio.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "common/util.h"
#include "ipc/role.h"

struct imaged {
	struct role_ctx role;
	struct role_args args;
};

static const struct ipc_handler handlers[] = {
	ROLE_COMMON_HANDLERS,
};

static const struct role_ops ops = { 0 };

int main(int argc, char **argv)
{
	static struct imaged im;
	crisp_err_t err = CRISP_ERR_INIT;

	role_parse_args(argc, argv, &im.args);
	role_init(&im.role, ROLE_IMAGED, &ops, handlers, ARRAY_SIZE(handlers), &im);
	if (sandbox_apply_role(ROLE_IMAGED, &im.args, &err) < 0)
		fatal("sandbox: %s", err.msg);
	return role_run(&im.role);
}
