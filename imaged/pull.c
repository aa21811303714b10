/*
 * imaged: PullImage, as a state machine on imaged's event loop.
 *
 *   reference -> registries.conf sources (mirrors first, then the registry)
 *   -> manifest (an index selects this node's platform; by-digest pulls
 *      check the digest) -> signature policy decision (sigcheck.h, for the pod's namespace)
 *   -> config blob (verified, parsed, checked against the manifest and the
 *      node's platform) -> for each layer, base first: blob (verified by
 *      digest; a present blob is reused; concurrent pulls of one blob share
 *      the download through the store's in-flight table), then
 *      LAYER_UNPACK to execd with an fd of the blob; while execd unpacks
 *      layer i, the blob of layer i + 1 is downloaded
 *   -> store_image_record (only now is the image listed) -> answer.
 *
 * A failure at any step answers the error and leaves no image record; the
 * blobs this pull committed are removed again when nothing references
 * them, and layers execd unpacked for it are released unless some image or
 * another running pull uses them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "common/util.h"
#include "imaged/certsd.h"
#include "imaged/images_int.h"
#include "imaged/sigcheck.h"
#include "imaged/unpack.h"
#include "policy/dockerref.h"

#define UNPACK_TIMEOUT_MS (35u * 60 * 1000) /* execd's own limit is 30 min */

enum phase { PH_MANIFEST = 1, PH_CONFIG, PH_LAYERS };

struct pull {
	struct imaged_images *ims;
	struct pull *next;
	struct ipc_chan *ch; /* referenced: the frontd channel to answer on */
	uint64_t reqid;
	char ref[DOCKERREF_STR_MAX]; /* normalised, as pulled */
	struct dockerref dr;
	bool by_digest;
	struct regconf_source src[REGCONF_MAX_MIRRORS + 1];
	size_t nsrc, cur;
	struct reg_endpoint ep;
	struct reg_auth auth;
	char *secrets[5];
	bool cri_auth;         /* the request carried AuthConfig: it wins over the auth file */
	char *fsecrets[3];     /* the auth file's credentials for the current source */
	char *ca_pem;          /* certs.d trust anchors of the current source */
	size_t ca_pem_len;
	struct reg_req *req;
	crisp_err_t first_err;
	enum phase phase;
	char top_digest[MF_DIGEST_SIZE];
	struct mf_manifest man; /* the current document: index, then the image manifest */
	const struct mf_descriptor *sel;
	uint8_t *man_bytes;
	size_t man_len;
	struct mf_config cfg;
	bool have_cfg;
	uint8_t *cfg_bytes;
	size_t cfg_len;
	char *verdict;
	/* the signature decision: the pod it is for, the check under way,
	 * and the signatures found (kept with the image) */
	char *ns, *pod;
	struct sigcheck *sc;
	struct store_sig *sigs;
	size_t nsigs;
	size_t li;
	/* the blob being fetched */
	char blob[MF_DIGEST_SIZE];
	uint64_t blob_size;
	bool owner;
	int blobfd;
	char tmpname[STORE_TMPNAME_SIZE];
	struct store_waiter *w;
	/* layers */
	char (*chains)[MF_DIGEST_SIZE];
	size_t nunpacked;
	bool unpacking;
	uint64_t unpack_reqid;
	struct ipc_chan *execd; /* referenced while unpacking */
	char (*committed)[MF_DIGEST_SIZE];
	size_t ncommitted;
	bool cancelled; /* the client gave up while a layer was unpacking */
	/* The blob of layer li + 1 is fetched while execd unpacks layer li:
	 * prefetching (under way or done), prefetched (done), pf_err (it
	 * failed: reported once the unpack ends, so that layer is counted). */
	bool prefetching, prefetched;
	crisp_err_t pf_err;
};

static void pull_step_manifest(struct pull *p);
static void pull_blob_step(struct pull *p);
static void pull_blob_fail(struct pull *p, crisp_err_t *err);

/* ---------------------------------------------------------------- end */

static void pull_unlink(struct pull *p)
{
	for (struct pull **pp = &p->ims->pulls; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			return;
		}
}

static void pull_free(struct pull *p)
{
	if (p->ch)
		ipc_unwatch_cancel(p->ch, p->reqid);
	if (p->req)
		reg_cancel(p->ims->reg, p->req);
	sigcheck_cancel(p->sc);
	for (size_t i = 0; i < p->nsigs; i++) {
		free(p->sigs[i].data);
		free(p->sigs[i].sig);
	}
	free(p->sigs);
	free(p->ns);
	free(p->pod);
	if (p->w)
		store_inflight_cancel(p->ims->st, p->w);
	if (p->owner) {
		crisp_err_t e = CRISP_ERR_INIT;
		crisp_error(&e, CRISP_CANCELLED, 0, "pull cancelled");
		store_blob_abort(p->ims->st, p->tmpname);
		p->owner = false;
		store_inflight_release(p->ims->st, STORE_KIND_BLOB, p->blob, &e);
	}
	if (p->blobfd >= 0)
		close(p->blobfd);
	if (p->unpacking && p->execd)
		ipc_cancel(p->execd, p->unpack_reqid);
	if (p->execd)
		ipc_chan_unref(p->execd);
	for (size_t i = 0; i < ARRAY_SIZE(p->secrets); i++)
		if (p->secrets[i]) {
			sodium_memzero(p->secrets[i], strlen(p->secrets[i]));
			free(p->secrets[i]);
		}
	for (size_t i = 0; i < ARRAY_SIZE(p->fsecrets); i++)
		if (p->fsecrets[i]) {
			sodium_memzero(p->fsecrets[i], strlen(p->fsecrets[i]));
			free(p->fsecrets[i]);
		}
	free(p->ca_pem);
	mf_manifest_free(&p->man);
	if (p->have_cfg)
		mf_config_free(&p->cfg);
	free(p->man_bytes);
	free(p->cfg_bytes);
	free(p->verdict);
	free(p->chains);
	free(p->committed);
	if (p->ch)
		ipc_chan_unref(p->ch);
	free(p);
}

static void pull_fail(struct pull *p, crisp_err_t *err)
{
	struct imaged_images *ims = p->ims;

	struct deferred_answer *d;

	pull_unlink(p);
	crisp_error_wrap(err, "pull %s", p->ref);
	log_warn("%s", err->msg);
	/* The client is answered once execd has released what this pull
	 * unpacked: an error means nothing of the pull is left. */
	d = calloc(1, sizeof *d);
	if (!d) {
		if (ipc_answer_error(p->ch, p->reqid, err) < 0)
			log_debug("PullImage error answer not sent (peer gone?)");
	} else {
		d->ch = ipc_chan_ref(p->ch);
		d->reqid = p->reqid;
		d->err = *err;
	}
	/* Leave nothing behind that no image references: blobs this pull
	 * committed (unless another pull is running, which may share them),
	 * and layers execd unpacked for it. */
	if (!ims->pulls) {
		for (size_t i = 0; i < p->ncommitted; i++) {
			crisp_err_t e = CRISP_ERR_INIT;
			store_blob_remove(ims->st, p->committed[i], &e);
		}
	}
	{
		char (*rel)[MF_DIGEST_SIZE] = NULL;
		size_t n = 0;
		if (p->nunpacked && (rel = calloc(p->nunpacked, sizeof *rel))) {
			for (size_t i = 0; i < p->nunpacked; i++) {
				crisp_err_t e = CRISP_ERR_INIT;
				if (store_layer_has(ims->st, p->chains[i], &e) == 0 &&
				    !pull_uses_chain(ims, p->chains[i]))
					memcpy(rel[n++], p->chains[i], MF_DIGEST_SIZE);
			}
		}
		images_release_layers(ims, rel, n, d ? images_deferred_answer : NULL, d);
		free(rel);
	}
	pull_free(p);
}

static int add_committed(struct pull *p, const char *digest)
{
	void *np = realloc(p->committed, (p->ncommitted + 1) * sizeof *p->committed);

	if (!np)
		return -1;
	p->committed = np;
	memcpy(p->committed[p->ncommitted++], digest, MF_DIGEST_SIZE);
	return 0;
}

bool pull_uses_chain(struct imaged_images *ims, const char *chain_id)
{
	for (struct pull *p = ims->pulls; p; p = p->next)
		for (size_t i = 0; i < p->nunpacked + (p->unpacking ? 1 : 0) && p->chains; i++)
			if (strcmp(p->chains[i], chain_id) == 0)
				return true;
	return false;
}

static void pull_record(struct pull *p)
{
	struct imaged_images *ims = p->ims;
	crisp_err_t err = CRISP_ERR_INIT;
	struct store_image img;
	struct store_layer *ls;
	char tagname[DOCKERREF_STR_MAX], dgname[DOCKERREF_STR_MAX + MF_DIGEST_SIZE];
	char *names[2];
	size_t nn = 0;

	memset(&img, 0, sizeof img);
	ls = calloc(p->man.nlayers ? p->man.nlayers : 1, sizeof *ls);
	if (!ls) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "record");
		pull_fail(p, &err);
		return;
	}
	memcpy(img.id, p->man.config.digest, MF_DIGEST_SIZE);
	memcpy(img.manifest_digest, p->man.digest, MF_DIGEST_SIZE);
	img.size = p->man.config.size;
	for (size_t i = 0; i < p->man.nlayers; i++) {
		memcpy(ls[i].chainid, p->chains[i], MF_DIGEST_SIZE);
		memcpy(ls[i].diffid, p->cfg.diff_ids[i], MF_DIGEST_SIZE);
		memcpy(ls[i].blob, p->man.layers[i].digest, MF_DIGEST_SIZE);
		ls[i].size = p->man.layers[i].size;
		img.size += p->man.layers[i].size;
	}
	img.layers = ls;
	img.nlayers = p->man.nlayers;
	img.user = p->cfg.user;
	img.config = p->cfg_bytes;
	img.config_len = p->cfg_len;
	img.manifest = p->man_bytes;
	img.manifest_len = p->man_len;
	img.verdict = p->verdict;
	img.sig_ref = p->ref;
	img.sig_digest = p->top_digest;
	img.sigs = p->sigs;
	img.nsigs = p->nsigs;
	if (!p->by_digest) {
		snprintf(tagname, sizeof tagname, "%s:%s", p->dr.name, p->dr.tag);
		names[nn++] = tagname;
	}
	snprintf(dgname, sizeof dgname, "%s@%s", p->dr.name, p->top_digest);
	names[nn++] = dgname;
	img.names = names;
	img.nnames = nn;
	if (store_image_record(ims->st, &img, &err) < 0) {
		free(ls);
		pull_fail(p, &err);
		return;
	}
	free(ls);
	pull_unlink(p);
	log_info("pulled %s: image %s (%zu layers)", p->ref, img.id, p->man.nlayers);
	{
		Runtime__V1__PullImageResponse r = RUNTIME__V1__PULL_IMAGE_RESPONSE__INIT;
		Cipc__ImgPullAns a = CIPC__IMG_PULL_ANS__INIT;

		r.image_ref = img.id;
		a.resp = &r;
		if (ipc_answer(p->ch, p->reqid, IPC_IMG_PULL_ANS, &a.base, -1, &err) < 0)
			log_warn("PullImage answer: %s", err.msg);
	}
	pull_free(p);
}

/* ------------------------------------------------------------ layers */

static void pull_next_layer(struct pull *p);

static void on_unpacked(struct ipc_chan *ch, struct ipc_msg *answer, const crisp_err_t *err,
			void *arg)
{
	struct pull *p = arg;
	crisp_err_t e = CRISP_ERR_INIT;

	(void)ch;
	p->unpacking = false;
	ipc_chan_unref(p->execd);
	p->execd = NULL;
	if (err) {
		e = *err;
		crisp_error_wrap(&e, "layer %zu (%s)", p->li, p->man.layers[p->li].digest);
		pull_fail(p, &e);
		return;
	}
	{
		const Cipc__LayerUnpackAns *a = (const Cipc__LayerUnpackAns *)answer->pb;
		if (strcmp(a->chain_id, p->chains[p->li]) != 0 ||
		    strcmp(a->diff_id, p->cfg.diff_ids[p->li]) != 0) {
			crisp_error(&e, CRISP_INTERNAL, 0, "execd answered for another layer");
			pull_fail(p, &e);
			return;
		}
	}
	p->nunpacked = p->li + 1;
	p->li++;
	if (p->cancelled) {
		crisp_error(&e, CRISP_CANCELLED, 0, "the client gave up (cancelled, gone, or past its deadline)");
		pull_fail(p, &e);
		return;
	}
	if (p->pf_err.code) {
		e = p->pf_err;
		pull_fail(p, &e);
		return;
	}
	pull_next_layer(p);
}

static int comp_of(enum mf_compression c)
{
	switch (c) {
	case MF_COMP_NONE: return UNPACK_COMPRESSION_NONE;
	case MF_COMP_GZIP: return UNPACK_COMPRESSION_GZIP;
	case MF_COMP_ZSTD: return UNPACK_COMPRESSION_ZSTD;
	}
	return UNPACK_COMPRESSION_ANY;
}

static void pull_unpack(struct pull *p)
{
	struct imaged_images *ims = p->ims;
	Cipc__LayerUnpack u = CIPC__LAYER_UNPACK__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	struct ipc_chan *x = role_peer(&ims->im->role, ROLE_EXECD);
	const char *parent = p->li ? p->chains[p->li - 1] : NULL;
	int fd = -1;

	if (!x) {
		crisp_error(&err, CRISP_UNAVAILABLE, 0, "execd is not running: layers cannot be unpacked");
		pull_fail(p, &err);
		return;
	}
	if (store_chain_id(parent, p->cfg.diff_ids[p->li], p->chains[p->li], &err) < 0 ||
	    store_blob_open(ims->st, p->man.layers[p->li].digest, &fd, &err) < 0) {
		pull_fail(p, &err);
		return;
	}
	u.chain_id = p->chains[p->li];
	u.parent_chain_id = parent ? (char *)parent : "";
	u.diff_id = p->cfg.diff_ids[p->li];
	u.compression = comp_of(p->man.layers[p->li].comp);
	u.blob_digest = p->man.layers[p->li].digest;
	p->unpacking = true;
	p->execd = ipc_chan_ref(x);
	if (ipc_request(x, IPC_LAYER_UNPACK, &u.base, fd, UNPACK_TIMEOUT_MS, on_unpacked, p,
			&p->unpack_reqid, &err) < 0) {
		close(fd);
		p->unpacking = false;
		ipc_chan_unref(p->execd);
		p->execd = NULL;
		pull_fail(p, &err);
		return;
	}
	close(fd);
	/* Download the next layer's blob while execd unpacks this one. */
	if (p->li + 1 < p->man.nlayers) {
		p->prefetching = true;
		p->prefetched = false;
		memcpy(p->blob, p->man.layers[p->li + 1].digest, MF_DIGEST_SIZE);
		p->blob_size = p->man.layers[p->li + 1].size;
		pull_blob_step(p);
	}
}

static void pull_next_layer(struct pull *p)
{
	if (p->li >= p->man.nlayers) {
		pull_record(p);
		return;
	}
	if (p->prefetching) {
		/* fetched while the previous layer unpacked, or still coming:
		 * then pull_blob_ready unpacks it */
		if (p->prefetched) {
			p->prefetching = p->prefetched = false;
			pull_unpack(p);
		}
		return;
	}
	memcpy(p->blob, p->man.layers[p->li].digest, MF_DIGEST_SIZE);
	p->blob_size = p->man.layers[p->li].size;
	pull_blob_step(p);
}

/* ------------------------------------------------------------ config */

static void pull_config_ready(struct pull *p)
{
	struct imaged_images *ims = p->ims;
	crisp_err_t err = CRISP_ERR_INIT;
	struct stat sb;
	int fd = -1;

	if (store_blob_open(ims->st, p->man.config.digest, &fd, &err) < 0)
		goto fail;
	if (fstat(fd, &sb) < 0 || (uint64_t)sb.st_size != p->man.config.size ||
	    sb.st_size > (off_t)MF_MAX_CONFIG_SIZE) {
		crisp_error(&err, CRISP_DATA_LOSS, 0, "config blob has the wrong size");
		goto fail;
	}
	p->cfg_len = (size_t)sb.st_size;
	p->cfg_bytes = malloc(p->cfg_len ? p->cfg_len : 1);
	if (!p->cfg_bytes) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "config");
		goto fail;
	}
	if (crisp_read_all(fd, p->cfg_bytes, p->cfg_len) < 0) {
		crisp_error(&err, CRISP_INTERNAL, errno, "read config blob");
		goto fail;
	}
	close(fd);
	fd = -1;
	if (mf_verify_blob(&p->man.config, p->cfg_bytes, p->cfg_len, &err) < 0 ||
	    mf_config_parse(p->cfg_bytes, p->cfg_len, &p->cfg, &err) < 0)
		goto fail;
	p->have_cfg = true;
	if (mf_config_check_layers(&p->cfg, &p->man, &err) < 0 ||
	    mf_config_check_platform(&p->cfg, ims->platform.os, ims->platform.arch,
				     ims->platform.variant, &err) < 0)
		goto fail;
	p->chains = calloc(p->man.nlayers ? p->man.nlayers : 1, sizeof *p->chains);
	if (!p->chains) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "chains");
		goto fail;
	}
	p->phase = PH_LAYERS;
	p->li = 0;
	pull_next_layer(p);
	return;
fail:
	if (fd >= 0)
		close(fd);
	pull_fail(p, &err);
}

/* ------------------------------------------------------------- blobs */

static void pull_blob_ready(struct pull *p)
{
	if (p->phase == PH_CONFIG) {
		pull_config_ready(p);
		return;
	}
	if (p->unpacking) { /* a prefetch: on_unpacked goes on with it */
		p->prefetched = true;
		return;
	}
	p->prefetching = p->prefetched = false;
	pull_unpack(p);
}

/* A blob failed.  While a layer is unpacking, the pull waits for it (so
 * that layer is counted and released with the others) and fails then. */
static void pull_blob_fail(struct pull *p, crisp_err_t *err)
{
	if (p->unpacking) {
		if (!p->pf_err.code)
			p->pf_err = *err;
		return;
	}
	pull_fail(p, err);
}

static void on_blob(void *arg, const struct reg_blob_result *r, const crisp_err_t *err)
{
	struct pull *p = arg;
	struct imaged_images *ims = p->ims;
	crisp_err_t e = CRISP_ERR_INIT;
	int rc;

	p->req = NULL;
	if (err) {
		e = *err;
		store_blob_abort(ims->st, p->tmpname);
	} else if ((rc = store_blob_commit(ims->st, p->blobfd, p->tmpname, p->blob, r->size,
					   STORE_BLOB_VERIFIED, &e)) == 0) {
		add_committed(p, p->blob);
	}
	close(p->blobfd);
	p->blobfd = -1;
	p->owner = false;
	/* Waiters (other pulls of the same blob) learn the result now. */
	store_inflight_release(ims->st, STORE_KIND_BLOB, p->blob, e.code ? &e : NULL);
	if (e.code) {
		crisp_error_wrap(&e, "blob %s", p->blob);
		pull_blob_fail(p, &e);
		return;
	}
	pull_blob_ready(p);
}

static void on_blob_wait(void *arg, enum store_kind kind, const char *key, const crisp_err_t *err)
{
	struct pull *p = arg;

	(void)kind;
	(void)key;
	(void)err; /* the owner failed: try ourselves */
	p->w = NULL;
	pull_blob_step(p);
}

static void pull_blob_step(struct pull *p)
{
	struct imaged_images *ims = p->ims;
	crisp_err_t err = CRISP_ERR_INIT;
	int rc;

	rc = store_inflight_acquire(ims->st, STORE_KIND_BLOB, p->blob, on_blob_wait, p, &p->w, &err);
	if (rc < 0) {
		pull_blob_fail(p, &err);
		return;
	}
	if (rc == STORE_ACQ_WAIT)
		return;
	if (rc == STORE_ACQ_PRESENT) {
		uint64_t size = 0;
		if (store_blob_has(ims->st, p->blob, &size, &err) != 1 || size != p->blob_size) {
			if (!err.code)
				crisp_error(&err, CRISP_DATA_LOSS, 0,
					    "blob %s in the store has size %llu, the manifest says %llu",
					    p->blob, (unsigned long long)size,
					    (unsigned long long)p->blob_size);
			pull_blob_fail(p, &err);
			return;
		}
		pull_blob_ready(p);
		return;
	}
	/* Owner: download it. */
	p->owner = true;
	if (store_blob_begin(ims->st, &p->blobfd, p->tmpname, &err) < 0) {
		p->owner = false;
		store_inflight_release(ims->st, STORE_KIND_BLOB, p->blob, &err);
		pull_blob_fail(p, &err);
		return;
	}
	p->req = reg_get_blob(ims->reg, &p->ep, p->src[p->cur].repo, p->blob, p->blob_size,
			      p->blobfd, &p->auth, on_blob, p, &err);
	if (!p->req) {
		store_blob_abort(ims->st, p->tmpname);
		close(p->blobfd);
		p->blobfd = -1;
		p->owner = false;
		store_inflight_release(ims->st, STORE_KIND_BLOB, p->blob, &err);
		pull_blob_fail(p, &err);
	}
}

/* ---------------------------------------------------------- manifests */

static void on_decided(void *arg, const struct sigcheck_result *r)
{
	struct pull *p = arg;
	crisp_err_t err = CRISP_ERR_INIT;

	p->sc = NULL; /* freed by sigcheck after this returns */
	if (!r->allow) {
		err = r->err;
		pull_fail(p, &err);
		return;
	}
	p->verdict = strdup(r->verdict);
	if (r->nsigs)
		p->sigs = calloc(r->nsigs, sizeof *p->sigs);
	if (!p->verdict || (r->nsigs && !p->sigs))
		goto oom;
	for (size_t i = 0; i < r->nsigs; i++) {
		struct store_sig *g = &p->sigs[i];
		g->kind = r->sigs[i].kind;
		g->data = malloc(r->sigs[i].len);
		g->sig = r->sigs[i].sig_len ? malloc(r->sigs[i].sig_len) : NULL;
		p->nsigs++;
		if (!g->data || (r->sigs[i].sig_len && !g->sig))
			goto oom;
		memcpy(g->data, r->sigs[i].data, r->sigs[i].len);
		g->len = r->sigs[i].len;
		if (g->sig)
			memcpy(g->sig, r->sigs[i].sig, r->sigs[i].sig_len);
		g->sig_len = r->sigs[i].sig_len;
	}
	p->phase = PH_CONFIG;
	memcpy(p->blob, p->man.config.digest, MF_DIGEST_SIZE);
	p->blob_size = p->man.config.size;
	if (p->blob_size > MF_MAX_CONFIG_SIZE) {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "config larger than %u bytes",
			    MF_MAX_CONFIG_SIZE);
		pull_fail(p, &err);
		return;
	}
	pull_blob_step(p);
	return;
oom:
	crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "signatures");
	pull_fail(p, &err);
}

static void pull_manifest_done(struct pull *p)
{
	crisp_err_t err = CRISP_ERR_INIT;
	struct sigcheck_candidate c = { p->ref, p->top_digest, NULL, 0 };
	struct sigcheck_input in;

	/* The policy decides on the digest of what the reference named,
	 * before any config or layer is fetched, every time (an image
	 * already present is decided again). */
	memset(&in, 0, sizeof in);
	in.event = "pull";
	in.namespace_ = p->ns;
	in.pod = p->pod;
	in.cand = &c;
	in.ncand = 1;
	in.fetch = true;
	in.ep = &p->ep;
	in.repo = p->src[p->cur].repo;
	in.auth = &p->auth;
	if (sigcheck_start(p->ims, &in, on_decided, p, &p->sc, &err) < 0)
		pull_fail(p, &err);
}

static void on_manifest(void *arg, const struct reg_manifest_result *r, const crisp_err_t *err)
{
	struct pull *p = arg;
	struct imaged_images *ims = p->ims;
	crisp_err_t e = CRISP_ERR_INIT;
	struct mf_manifest m;

	p->req = NULL;
	memset(&m, 0, sizeof m);
	if (err) {
		e = *err;
		/* The next mirror, or the registry itself, may have it. */
		if (!p->sel && p->cur + 1 < p->nsrc) {
			log_info("pull %s: %s%s: %s; trying the next source", p->ref,
				 p->src[p->cur].host, p->src[p->cur].mirror ? " (mirror)" : "",
				 err->msg);
			if (!p->first_err.code)
				p->first_err = *err;
			p->cur++;
			pull_step_manifest(p);
			return;
		}
		pull_fail(p, &e);
		return;
	}
	if (p->sel) {
		if (mf_parse_child(&p->man, p->sel, r->content_type, r->body, r->len, &m, &e) < 0) {
			pull_fail(p, &e);
			return;
		}
		mf_manifest_free(&p->man);
		p->sel = NULL;
	} else {
		if (mf_parse(r->content_type, r->body, r->len, &m, &e) < 0) {
			pull_fail(p, &e);
			return;
		}
		memcpy(p->top_digest, m.digest, MF_DIGEST_SIZE);
		if (p->by_digest && strcmp(m.digest, p->dr.digest) != 0) {
			mf_manifest_free(&m);
			crisp_error(&e, CRISP_DATA_LOSS, 0,
				    "the registry sent a manifest with digest %s", p->top_digest);
			pull_fail(p, &e);
			return;
		}
	}
	p->man = m;
	if (m.kind == MF_INDEX) {
		if (mf_select_platform(&p->man, ims->platform.os, ims->platform.arch,
				       ims->platform.variant, &p->sel, &e) < 0) {
			pull_fail(p, &e);
			return;
		}
		p->req = reg_get_manifest(ims->reg, &p->ep, p->src[p->cur].repo, p->sel->digest,
					  &p->auth, on_manifest, p, &e);
		if (!p->req)
			pull_fail(p, &e);
		return;
	}
	free(p->man_bytes);
	p->man_bytes = malloc(r->len ? r->len : 1);
	if (!p->man_bytes) {
		crisp_error(&e, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "manifest");
		pull_fail(p, &e);
		return;
	}
	memcpy(p->man_bytes, r->body, r->len);
	p->man_len = r->len;
	pull_manifest_done(p);
}

/* Credentials from the auth file for the current source (each mirror has
 * its own), unless the request carried its own. */
static int source_auth(struct pull *p, crisp_err_t *err)
{
	const struct authfile *af;
	const struct authfile_entry *e;

	if (p->cri_auth)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(p->fsecrets); i++)
		if (p->fsecrets[i]) {
			sodium_memzero(p->fsecrets[i], strlen(p->fsecrets[i]));
			free(p->fsecrets[i]);
			p->fsecrets[i] = NULL;
		}
	memset(&p->auth, 0, sizeof p->auth);
	if (authfile_cache_get(&p->ims->authf, &af, err) < 0)
		return -1;
	e = authfile_lookup(af, p->src[p->cur].host, p->src[p->cur].repo);
	if (!e)
		return 0;
	if ((e->username && !(p->fsecrets[0] = strdup(e->username))) ||
	    (e->password && !(p->fsecrets[1] = strdup(e->password))) ||
	    (e->identity_token && !(p->fsecrets[2] = strdup(e->identity_token))))
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "credentials");
	p->auth.username = p->fsecrets[0];
	p->auth.password = p->fsecrets[1];
	p->auth.identity_token = p->fsecrets[2];
	log_debug("pull %s: credentials for %s from the auth file (key %s)", p->ref,
		  p->src[p->cur].host, e->key);
	return 0;
}

static void pull_step_manifest(struct pull *p)
{
	crisp_err_t err = CRISP_ERR_INIT;

	p->ep.host = p->src[p->cur].host;
	p->ep.insecure = p->src[p->cur].insecure;
	p->ep.ca_file = NULL;
	free(p->ca_pem);
	p->ca_pem = NULL;
	p->ca_pem_len = 0;
	if (!p->ep.insecure &&
	    certsd_bundle(p->ims->certs_dir, p->ep.host, &p->ca_pem, &p->ca_pem_len, &err) < 0) {
		pull_fail(p, &err);
		return;
	}
	p->ep.ca_pem = p->ca_pem;
	p->ep.ca_pem_len = p->ca_pem_len;
	if (source_auth(p, &err) < 0) {
		pull_fail(p, &err);
		return;
	}
	p->req = reg_get_manifest(p->ims->reg, &p->ep, p->src[p->cur].repo,
				  p->by_digest ? p->dr.digest : p->dr.tag, &p->auth, on_manifest, p,
				  &err);
	if (!p->req)
		pull_fail(p, &err);
}

/* ------------------------------------------------------------- start */

static char *secret(struct pull *p, size_t i, const char *s)
{
	if (!s || !*s)
		return NULL;
	p->secrets[i] = strdup(s);
	return p->secrets[i];
}

/*
 * frontd's client went away or its deadline passed (CANCEL): stop, and
 * leave nothing behind, exactly as for a failure.  A download in progress
 * is abandoned (another pull waiting on the same blob then fetches it
 * itself); a layer execd is unpacking is waited for, so that it is counted
 * and released with the others rather than left on disk.
 */
static void on_pull_cancel(struct ipc_chan *ch, uint64_t reqid, void *arg)
{
	struct pull *p = arg;
	crisp_err_t e = CRISP_ERR_INIT;

	(void)ch;
	(void)reqid;
	log_info("pull %s: cancelled by the client", p->ref);
	if (p->unpacking) {
		p->cancelled = true;
		return;
	}
	crisp_error(&e, CRISP_CANCELLED, 0, "the client gave up (cancelled, gone, or past its deadline)");
	pull_fail(p, &e);
}

void pull_start(struct imaged_images *ims, struct ipc_chan *ch, uint64_t reqid,
		const Runtime__V1__PullImageRequest *req)
{
	crisp_err_t err = CRISP_ERR_INIT;
	char q[REGCONF_MAX_STRING + 512];
	struct pull *p;

	p = calloc(1, sizeof *p);
	if (!p) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "pull");
		if (ipc_answer_error(ch, reqid, &err) < 0)
			log_debug("PullImage error answer not sent");
		return;
	}
	p->ims = ims;
	p->ch = ipc_chan_ref(ch);
	p->reqid = reqid;
	p->blobfd = -1;
	crisp_strlcpy(p->ref, req->image && req->image->image ? req->image->image : "",
		      sizeof p->ref);
	p->next = ims->pulls;
	ims->pulls = p;
	if (ipc_watch_cancel(ch, reqid, on_pull_cancel, p, &err) < 0)
		crisp_error_clear(&err); /* no memory: the pull just runs to its end */
	if (!req->image || !req->image->image || !*req->image->image) {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "no image reference");
		pull_fail(p, &err);
		return;
	}
	if (regconf_qualify(ims->regconf, req->image->image, q, sizeof q, &err) < 0 ||
	    dockerref_parse_pull(q, &p->dr, &err) < 0) {
		pull_fail(p, &err);
		return;
	}
	dockerref_string(&p->dr, p->ref);
	p->by_digest = p->dr.digest[0] != '\0';
	if (p->by_digest && !mf_valid_digest(p->dr.digest)) {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "only sha256 digests are supported");
		pull_fail(p, &err);
		return;
	}
	if (regconf_sources(ims->regconf, p->dr.name, p->by_digest, p->src, ARRAY_SIZE(p->src),
			    &p->nsrc, &err) < 0) {
		pull_fail(p, &err);
		return;
	}
	if (req->sandbox_config && req->sandbox_config->metadata) {
		const Runtime__V1__PodSandboxMetadata *md = req->sandbox_config->metadata;
		p->ns = md->namespace_ && *md->namespace_ ? strdup(md->namespace_) : NULL;
		p->pod = md->name && *md->name ? strdup(md->name) : NULL;
		if ((md->namespace_ && *md->namespace_ && !p->ns) || (md->name && *md->name && !p->pod)) {
			crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "pull");
			pull_fail(p, &err);
			return;
		}
	}
	if (req->auth && ((req->auth->username && *req->auth->username) ||
			  (req->auth->password && *req->auth->password) ||
			  (req->auth->auth && *req->auth->auth) ||
			  (req->auth->identity_token && *req->auth->identity_token) ||
			  (req->auth->registry_token && *req->auth->registry_token))) {
		p->cri_auth = true;
		p->auth.username = secret(p, 0, req->auth->username);
		p->auth.password = secret(p, 1, req->auth->password);
		p->auth.auth = secret(p, 2, req->auth->auth);
		p->auth.identity_token = secret(p, 3, req->auth->identity_token);
		p->auth.registry_token = secret(p, 4, req->auth->registry_token);
	}
	p->phase = PH_MANIFEST;
	log_info("pull %s: from %s%s", p->ref, p->src[0].host,
		 p->src[0].insecure ? " (insecure: plain http)" : "");
	pull_step_manifest(p);
}

void pull_cancel_all(struct imaged_images *ims)
{
	while (ims->pulls) {
		struct pull *p = ims->pulls;
		ims->pulls = p->next;
		pull_free(p);
	}
}
