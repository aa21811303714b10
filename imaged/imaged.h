/*
 * imaged: the process-wide context imaged's modules hang off (one per
 * process, owned by main.c).
 */
#ifndef CRISP_IMAGED_IMAGED_H
#define CRISP_IMAGED_IMAGED_H

#include "ipc/role.h"

struct imaged_images; /* imaged/images.c: pulls, the store, image queries */

struct imaged {
	struct role_ctx role;
	struct role_args args;
	char store[4096]; /* <root>/images, owned by imaged's user */
	int store_fd;
	struct imaged_images *images;
};

/* Before the sandbox (registry client). */
int images_init(struct imaged *im, crisp_err_t *err);
/* After the sandbox: the store is created and opened as imaged's own user,
 * never as root (Landlock allows its store). */
int images_open_store(struct imaged *im, crisp_err_t *err);
void images_close(struct imaged *im);
/* A peer came up or went down (execd matters: it unpacks layers). */
void images_peer_changed(struct imaged *im, enum crisp_role peer, bool up);
/* Check a configuration (registries.conf must parse); -1 refuses it. */
int images_config_check(struct imaged *im, const Cipc__Config *c, crisp_err_t *err);
/* The configuration (signature policy, registries) was applied. */
void images_config_apply(struct imaged *im, const Cipc__Config *c);

/* frontd -> imaged */
void images_on_pull(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im);
void images_on_list(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im);
void images_on_status(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im);
void images_on_remove(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im);
/* execd -> imaged */
void images_on_resolve(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im);
void images_on_unpin(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im);
void images_on_pins_sync(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im);

#endif
