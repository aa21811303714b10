/*
 * imaged: state shared by images.c (queries, removal, resolution, config)
 * and pull.c (the pull state machine).  Internal to imaged.
 */
#ifndef CRISP_IMAGED_IMAGES_INT_H
#define CRISP_IMAGED_IMAGES_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "imaged/authfile.h"
#include "imaged/imaged.h"
#include "imaged/manifest.h"
#include "imaged/regconf.h"
#include "imaged/registry.h"
#include "imaged/store.h"
#include "policy/sigpolicy.h"

struct pull;
struct resolve_op;
struct nsp_cache;
struct regsd;
struct audit_log;

struct imaged_images {
	struct imaged *im;
	struct store *st;
	struct reg_client *reg;
	struct regconf *regconf;  /* NULL: no file (defaults) */
	struct authfile_cache authf; /* [imaged] auth_file, re-read when it changes */
	char *certs_dir;          /* [imaged] certs_dir; NULL or "": none */
	/* Signature policy: NULL when signature_policy is not configured
	 * (every image accepted, and recorded so).  nsp: per-namespace files
	 * over the global one; nsp_global: the global file alone (pulls
	 * without a pod). */
	struct nsp_cache *nsp;
	struct nsp_cache *nsp_global;
	char *policy_dir, *policy_path;
	struct regsd *regsd;      /* NULL: no registries.d (nothing configured) */
	struct audit_log *audit;  /* NULL: every decision refused (audit_msg says why) */
	char *audit_path;
	char audit_msg[CRISP_ERR_MSG_MAX];
	struct mf_platform platform;
	struct pull *pulls;       /* running pulls */
	struct resolve_op *resolves; /* CreateContainer decisions under way */
	/* Chain ids released while execd was away: sent when it is back. */
	char (*pending_release)[MF_DIGEST_SIZE];
	size_t npending_release;
};

/* Normalise a CRI image reference for lookups: the id, a prefix or an
 * exact name first; else the pull normalisation ("busybox" ->
 * docker.io/library/busybox:latest).  Returns the store lookup's result. */
int images_lookup(struct imaged_images *ims, const char *ref, struct store_image *out,
		  char *found_ref, size_t found_size, crisp_err_t *err);

/* Is chain_id needed by a pull that has not recorded its image yet? */
bool pull_uses_chain(struct imaged_images *ims, const char *chain_id);

/* Start a pull for a PULL request; answers it when done. */
void pull_start(struct imaged_images *ims, struct ipc_chan *ch, uint64_t reqid,
		const Runtime__V1__PullImageRequest *req);
/* Drop every running pull (shutdown): no answers. */
void pull_cancel_all(struct imaged_images *ims);
/* Drop every CreateContainer decision under way (shutdown): no answers. */
void resolve_cancel_all(struct imaged_images *ims);

/*
 * Send chain ids to execd (LAYER_RELEASE), or keep them for when execd is
 * back.  done(arg), when not NULL, runs once execd acknowledged (so a
 * client answered from it sees the layers gone), or at once when nothing
 * was sent; never from inside this call when a request went out.
 */
void images_release_layers(struct imaged_images *ims, char (*ids)[MF_DIGEST_SIZE], size_t n,
			   void (*done)(void *arg), void *arg);

/* An answer to send later: an error (err.code != 0) or type's empty-ish
 * answer pb.  images_deferred_answer frees it. */
struct deferred_answer {
	struct ipc_chan *ch; /* referenced */
	uint64_t reqid;
	crisp_err_t err;
};
void images_deferred_answer(void *arg);

#endif
