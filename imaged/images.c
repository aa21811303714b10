/*
 * imaged: the image service.  PullImage is imaged/pull.c; this file has
 * the queries (ListImages, ImageStatus), RemoveImage, execd's image
 * resolution and pins, the configuration (registries.conf, the signature
 * policy, registries.d, the audit log); signature decisions are imaged/sigcheck.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "imaged/audit.h"
#include "imaged/images_int.h"
#include "imaged/regsd.h"
#include "imaged/sigcheck.h"
#include "imaged/unpack.h"
#include "policy/dockerref.h"
#include "policy/nspolicy.h"

#define CONF_MAX (1u << 20)

/* ---------------------------------------------------------------- files */

/* Read a whole small file.  1: read, 0: absent, -1: error. */
static int read_file(const char *path, char **buf, size_t *len, crisp_err_t *err)
{
	struct stat sb;
	int fd;

	*buf = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return crisp_error(err, CRISP_INVALID_ARGUMENT, errno,
				   "%s: %s (imaged reads configuration files below /etc/containers "
				   "and /etc/crisp only)",
				   path, strerror(errno));
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > (off_t)CONF_MAX) {
		close(fd);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "%s: not a regular file of at most %u bytes", path, CONF_MAX);
	}
	*buf = malloc((size_t)sb.st_size + 1);
	if (!*buf) {
		close(fd);
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "%s", path);
	}
	if (crisp_read_all(fd, *buf, (size_t)sb.st_size) < 0) {
		int e = errno;
		close(fd);
		free(*buf);
		*buf = NULL;
		return crisp_error(err, CRISP_INTERNAL, e, "%s: read", path);
	}
	close(fd);
	(*buf)[sb.st_size] = '\0';
	*len = (size_t)sb.st_size;
	return 1;
}

static int load_regconf(const char *path, struct regconf **out, crisp_err_t *err)
{
	char *buf;
	size_t len;
	int rc;

	*out = NULL;
	if (!path || !*path)
		return 0;
	rc = read_file(path, &buf, &len, err);
	if (rc <= 0)
		return rc;
	rc = regconf_parse(buf, len, out, err);
	free(buf);
	if (rc < 0)
		return crisp_error_wrap(err, "%s", path);
	return 0;
}

/* ------------------------------------------------------------ lifecycle */

static int remove_tree(int parent, const char *name, crisp_err_t *err)
{
	return unpack_remove_tree(parent, name, err);
}

int images_init(struct imaged *im, crisp_err_t *err)
{
	struct imaged_images *ims;
	struct store_options o = { .remove_tree = remove_tree };

	ims = calloc(1, sizeof *ims);
	if (!ims)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "images");
	ims->im = im;
	snprintf(ims->audit_msg, sizeof ims->audit_msg, "the signature audit log is not open yet");
	mf_platform_default(&ims->platform);
	/* libcurl initialises itself here, before the sandbox. */
	ims->reg = reg_client_new(im->role.loop, NULL, err);
	if (!ims->reg) {
		free(ims);
		return -1;
	}
	(void)o;
	im->images = ims;
	return 0;
}

int images_open_store(struct imaged *im, crisp_err_t *err)
{
	struct imaged_images *ims = im->images;
	struct store_options o = { .remove_tree = remove_tree };

	if (store_open(im->store, &o, &ims->st, err) < 0)
		return crisp_error_wrap(err, "image store %s", im->store);
	return 0;
}

void images_close(struct imaged *im)
{
	struct imaged_images *ims = im->images;

	if (!ims)
		return;
	pull_cancel_all(ims);
	resolve_cancel_all(ims);
	reg_client_free(ims->reg);
	if (ims->st)
		store_close(ims->st);
	regconf_free(ims->regconf);
	authfile_cache_clear(&ims->authf);
	free(ims->certs_dir);
	nsp_cache_free(ims->nsp);
	nsp_cache_free(ims->nsp_global);
	free(ims->policy_path);
	free(ims->policy_dir);
	regsd_free(ims->regsd);
	audit_close(ims->audit);
	free(ims->audit_path);
	free(ims->pending_release);
	free(ims);
	im->images = NULL;
}

int images_config_check(struct imaged *im, const Cipc__Config *c, crisp_err_t *err)
{
	struct regconf *rc = NULL;

	struct regsd *rd = NULL;

	(void)im;
	if (load_regconf(c->registries_conf, &rc, err) < 0)
		return -1;
	regconf_free(rc);
	if (c->auth_file && *c->auth_file) {
		struct authfile *af = NULL;
		struct stat sb;
		if (authfile_load(c->auth_file, &af, &sb, err) < 0)
			return -1;
		authfile_free(af);
	}
	if (c->registries_d && *c->registries_d) {
		if (regsd_load_dir(c->registries_d, &rd, err) < 0)
			return crisp_error_wrap(err, "registries.d %s", c->registries_d);
		regsd_free(rd);
	}
	return 0;
}

static bool same_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* The signature policy files (read per decision, cached), registries.d
 * and the audit log. */
static void apply_signatures(struct imaged_images *ims, const Cipc__Config *c)
{
	crisp_err_t err = CRISP_ERR_INIT;
	const char *pol = c->signature_policy ? c->signature_policy : "";
	const char *dir = c->signature_policy_dir ? c->signature_policy_dir : "";
	char apath[4200];

	if (!ims->nsp || !same_str(pol, ims->policy_path) || !same_str(dir, ims->policy_dir)) {
		nsp_cache_free(ims->nsp);
		nsp_cache_free(ims->nsp_global);
		ims->nsp = ims->nsp_global = NULL;
		free(ims->policy_path);
		free(ims->policy_dir);
		ims->policy_path = strdup(pol);
		ims->policy_dir = strdup(dir);
		if (*pol) {
			ims->nsp = nsp_cache_new(*dir ? dir : NULL, pol);
			ims->nsp_global = nsp_cache_new(NULL, pol);
			if (!ims->nsp || !ims->nsp_global || !ims->policy_path || !ims->policy_dir)
				fatal("out of memory: signature policy");
			log_info("signature policy: %s%s%s", pol, *dir ? ", per namespace: " : "",
				 dir);
		} else {
			log_warn("no signature_policy configured: every image is accepted");
		}
	}
	if (c->registries_d && *c->registries_d) {
		struct regsd *rd = NULL;
		if (regsd_load_dir(c->registries_d, &rd, &err) < 0) {
			log_error("registries.d %s kept as it was: %s", c->registries_d, err.msg);
		} else {
			regsd_free(ims->regsd);
			ims->regsd = rd;
		}
	} else {
		regsd_free(ims->regsd);
		ims->regsd = NULL;
	}
	if (c->audit_log && *c->audit_log)
		snprintf(apath, sizeof apath, "%s", c->audit_log);
	else
		snprintf(apath, sizeof apath, "%s/audit.log", ims->im->store);
	if (!ims->audit || !same_str(apath, ims->audit_path)) {
		struct audit_log *a = NULL;

		crisp_error_clear(&err);
		if (audit_open(apath, &a, &err) < 0) {
			/* Fail closed: no decision without a record. */
			snprintf(ims->audit_msg, sizeof ims->audit_msg,
				 "signature audit log %.200s: %.200s (imaged can write below its store only)",
				 apath, err.msg);
			log_error("%s; every pull and create is refused", ims->audit_msg);
			if (!ims->audit)
				return;
			log_error("signature audit log: keeping %s", ims->audit_path);
			return;
		}
		audit_close(ims->audit);
		ims->audit = a;
		free(ims->audit_path);
		ims->audit_path = strdup(apath);
		log_info("signature audit log: %s (record %llu)", apath,
			 (unsigned long long)audit_seq(a));
	}
}

void images_config_apply(struct imaged *im, const Cipc__Config *c)
{
	struct imaged_images *ims = im->images;
	crisp_err_t err = CRISP_ERR_INIT;
	struct regconf *rc = NULL;

	if (!ims)
		return;
	if (load_regconf(c->registries_conf, &rc, &err) < 0) {
		/* config_check accepted it; it changed since: keep the old one. */
		log_error("registries configuration kept as it was: %s", err.msg);
	} else {
		regconf_free(ims->regconf);
		ims->regconf = rc;
		log_info("registries configuration: %s (%zu registries)",
			 rc ? c->registries_conf : "defaults", rc ? rc->nregs : (size_t)0);
	}
	crisp_error_clear(&err);
	if (authfile_cache_set(&ims->authf, c->auth_file, &err) < 0)
		log_error("registry credentials kept as they were: %s", err.msg);
	else if (c->auth_file && *c->auth_file)
		log_info("registry credentials: %s (%zu registries)", c->auth_file,
			 ims->authf.af ? ims->authf.af->n : (size_t)0);
	free(ims->certs_dir);
	ims->certs_dir = c->certs_dir && *c->certs_dir ? strdup(c->certs_dir) : NULL;
	reg_client_set_stall_timeout(ims->reg, c->stall_timeout_s);
	apply_signatures(ims, c);
}

/* ----------------------------------------------------------- execd side */

struct release_ctx {
	void (*done)(void *);
	void *arg;
};

static void on_released(struct ipc_chan *ch, struct ipc_msg *answer, const crisp_err_t *err,
			void *arg)
{
	struct release_ctx *r = arg;

	(void)ch;
	(void)answer;
	if (err)
		log_warn("LAYER_RELEASE: %s", err->msg);
	if (r->done)
		r->done(r->arg);
	free(r);
}

static void keep_pending(struct imaged_images *ims, char (*ids)[MF_DIGEST_SIZE], size_t n)
{
	void *p = realloc(ims->pending_release, (ims->npending_release + n) * MF_DIGEST_SIZE);

	if (!p) {
		log_error("out of memory: %zu layers stay unpacked in execd", n);
		return;
	}
	ims->pending_release = p;
	memcpy(ims->pending_release[ims->npending_release], ids, n * MF_DIGEST_SIZE);
	ims->npending_release += n;
}

void images_deferred_answer(void *arg)
{
	struct deferred_answer *d = arg;
	crisp_err_t err = CRISP_ERR_INIT;

	if (d->err.code) {
		if (ipc_answer_error(d->ch, d->reqid, &d->err) < 0)
			log_debug("error answer not sent (peer gone?)");
	} else {
		Runtime__V1__RemoveImageResponse resp = RUNTIME__V1__REMOVE_IMAGE_RESPONSE__INIT;
		Cipc__ImgRemoveAns a = CIPC__IMG_REMOVE_ANS__INIT;
		a.resp = &resp;
		if (ipc_answer(d->ch, d->reqid, IPC_IMG_REMOVE_ANS, &a.base, -1, &err) < 0)
			log_warn("RemoveImage answer: %s", err.msg);
	}
	ipc_chan_unref(d->ch);
	free(d);
}

void images_release_layers(struct imaged_images *ims, char (*ids)[MF_DIGEST_SIZE], size_t n,
			   void (*done)(void *arg), void *arg)
{
	Cipc__LayerRelease r = CIPC__LAYER_RELEASE__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	struct release_ctx *rc = NULL;
	struct ipc_chan *x;
	char **v = NULL;

	if (n == 0)
		goto now;
	x = role_peer(&ims->im->role, ROLE_EXECD);
	if (!x || !(v = calloc(n, sizeof *v)) || !(rc = calloc(1, sizeof *rc))) {
		keep_pending(ims, ids, n);
		goto now;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = ids[i];
	r.chain_ids = v;
	r.n_chain_ids = n;
	rc->done = done;
	rc->arg = arg;
	if (ipc_request(x, IPC_LAYER_RELEASE, &r.base, -1, 60000, on_released, rc, NULL, &err) <
	    0) {
		log_warn("LAYER_RELEASE: %s", err.msg);
		keep_pending(ims, ids, n);
		goto now;
	}
	free(v);
	return;
now:
	free(v);
	free(rc);
	if (done)
		done(arg);
}

void images_peer_changed(struct imaged *im, enum crisp_role peer, bool up)
{
	struct imaged_images *ims = im->images;

	if (!ims || peer != ROLE_EXECD || !up || ims->npending_release == 0)
		return;
	{
		char (*ids)[MF_DIGEST_SIZE] = ims->pending_release;
		size_t n = ims->npending_release;
		size_t k = 0;

		ims->pending_release = NULL;
		ims->npending_release = 0;
		/* Only those still unreferenced (a pull may have taken one back). */
		for (size_t i = 0; i < n; i++) {
			crisp_err_t e = CRISP_ERR_INIT;
			if (store_layer_has(ims->st, ids[i], &e) == 0 && !pull_uses_chain(ims, ids[i]))
				memmove(ids[k++], ids[i], MF_DIGEST_SIZE);
		}
		images_release_layers(ims, ids, k, NULL, NULL);
		free(ids);
	}
}

/* -------------------------------------------------------------- lookups */

int images_lookup(struct imaged_images *ims, const char *ref, struct store_image *out,
		  char *found_ref, size_t found_size, crisp_err_t *err)
{
	char q[REGCONF_MAX_STRING + 512];
	struct dockerref dr;
	crisp_err_t e2 = CRISP_ERR_INIT;

	if (!ref || !*ref)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "no image reference");
	if (store_image_lookup(ims->st, ref, out, err) == 0) {
		if (found_ref)
			crisp_strlcpy(found_ref, ref, found_size);
		return 0;
	}
	if (err->code != CRISP_NOT_FOUND)
		return -1;
	/* A name as a client writes it: normalise as a pull does. */
	if (regconf_qualify(ims->regconf, ref, q, sizeof q, &e2) < 0 ||
	    dockerref_parse(q, &dr, &e2) < 0)
		return -1; /* err keeps NOT_FOUND */
	if (dockerref_is_name_only(&dr))
		crisp_strlcpy(dr.tag, "latest", sizeof dr.tag);
	if (dr.tag[0] && dr.digest[0])
		dr.tag[0] = '\0'; /* name:tag@digest: the digest decides */
	dockerref_string(&dr, q);
	crisp_error_clear(err);
	if (store_image_lookup(ims->st, q, out, err) < 0)
		return -1;
	if (found_ref)
		crisp_strlcpy(found_ref, q, found_size);
	return 0;
}

/* uid or username from config.User ("uid", "uid:gid", "name", "name:group"). */
static void fill_user(Runtime__V1__Image *img, Runtime__V1__Int64Value *uid, const char *user,
		      char *name, size_t namesize)
{
	char u[256];
	char *colon, *end;
	long long v;

	if (!user || !*user)
		return;
	crisp_strlcpy(u, user, sizeof u);
	colon = strchr(u, ':');
	if (colon)
		*colon = '\0';
	if (!u[0])
		return;
	errno = 0;
	v = strtoll(u, &end, 10);
	if (*end == '\0' && errno == 0 && v >= 0 && u[0] != '-' && u[0] != '+') {
		uid->value = v;
		img->uid = uid;
	} else {
		crisp_strlcpy(name, u, namesize);
		img->username = name;
	}
}

/* One CRI Image from a store image (pointers into si and into the holder). */
struct img_holder {
	Runtime__V1__Image img;
	Runtime__V1__Int64Value uid;
	Runtime__V1__ImageSpec spec;
	char username[256];
	char **tags;
	char **digests;
};

static int fill_image(struct img_holder *h, const struct store_image *si)
{
	runtime__v1__image__init(&h->img);
	runtime__v1__int64_value__init(&h->uid);
	runtime__v1__image_spec__init(&h->spec);
	h->tags = calloc(si->nnames + 1, sizeof *h->tags);
	h->digests = calloc(si->nnames + 1, sizeof *h->digests);
	if (!h->tags || !h->digests) {
		free(h->tags);
		free(h->digests);
		h->tags = h->digests = NULL;
		return -1;
	}
	h->img.id = (char *)si->id;
	for (size_t i = 0; i < si->nnames; i++) {
		if (strchr(si->names[i], '@'))
			h->digests[h->img.n_repo_digests++] = si->names[i];
		else
			h->tags[h->img.n_repo_tags++] = si->names[i];
	}
	h->img.repo_tags = h->tags;
	h->img.repo_digests = h->digests;
	h->img.size = si->size;
	fill_user(&h->img, &h->uid, si->user, h->username, sizeof h->username);
	h->spec.image = (char *)si->id;
	h->img.spec = &h->spec;
	h->img.pinned = false;
	return 0;
}

static void holder_free(struct img_holder *h)
{
	free(h->tags);
	free(h->digests);
}

static void answer_error(struct ipc_chan *ch, struct ipc_msg *m, crisp_err_t *err, const char *what)
{
	if (ipc_answer_error(ch, m->hdr.reqid, err) < 0)
		log_debug("%s error answer not sent (peer gone?)", what);
}

/* ------------------------------------------------------------- handlers */

void images_on_pull(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im)
{
	const Cipc__ImgPull *r = (const Cipc__ImgPull *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;

	if (!im->images || !r->req) {
		crisp_error(&err, CRISP_UNAVAILABLE, 0, "image service not ready");
		answer_error(ch, m, &err, "PullImage");
		return;
	}
	pull_start(im->images, ch, m->hdr.reqid, r->req);
}

/* Verbose ImageStatus: what crisp keeps of the image beyond the CRI fields,
 * one JSON object under "info" (crictl inspecti prints it).  The config
 * (digest-verified when pulled) is included when it fits the answer. */
#define VERBOSE_CONFIG_MAX (512u * 1024)

static char *image_info_json(const struct store_image *si)
{
	json_t *o = json_object(), *chain = json_array(), *names = json_array();
	char *out;

	for (size_t i = 0; i < si->nlayers; i++)
		json_array_append_new(chain, json_string(si->layers[i].chainid));
	for (size_t i = 0; i < si->nnames; i++)
		json_array_append_new(names, json_string(si->names[i]));
	json_object_set_new(o, "id", json_string(si->id));
	json_object_set_new(o, "manifestDigest", json_string(si->manifest_digest));
	json_object_set_new(o, "chainIDs", chain);
	json_object_set_new(o, "names", names);
	json_object_set_new(o, "pulledAt", json_integer(si->pulled_at));
	json_object_set_new(o, "pins", json_integer(si->pins));
	if (si->config != NULL && si->config_len <= VERBOSE_CONFIG_MAX) {
		json_t *cfg = json_loadb((const char *)si->config, si->config_len, JSON_REJECT_DUPLICATES, NULL);
		if (cfg != NULL)
			json_object_set_new(o, "imageSpec", cfg);
	}
	if (si->verdict != NULL) {
		json_t *v = json_loads(si->verdict, 0, NULL);
		if (v != NULL)
			json_object_set_new(o, "verdict", v);
	}
	out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return out;
}

void images_on_status(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im)
{
	const Cipc__ImgStatus *r = (const Cipc__ImgStatus *)m->pb;
	Runtime__V1__ImageStatusResponse resp = RUNTIME__V1__IMAGE_STATUS_RESPONSE__INIT;
	Cipc__ImgStatusAns a = CIPC__IMG_STATUS_ANS__INIT;
	Runtime__V1__ImageStatusResponse__InfoEntry ie = RUNTIME__V1__IMAGE_STATUS_RESPONSE__INFO_ENTRY__INIT,
						   *pie = &ie;
	crisp_err_t err = CRISP_ERR_INIT;
	struct store_image si;
	struct img_holder h;
	bool have = false;
	char *info = NULL;

	memset(&si, 0, sizeof si);
	memset(&h, 0, sizeof h);
	if (!im->images || !r->req || !r->req->image) {
		crisp_error(&err, im->images ? CRISP_INVALID_ARGUMENT : CRISP_UNAVAILABLE, 0,
			    "ImageStatus: no image");
		answer_error(ch, m, &err, "ImageStatus");
		return;
	}
	if (images_lookup(im->images, r->req->image->image, &si, NULL, 0, &err) < 0) {
		/* CRI: an unknown image is an empty answer, not an error. */
		if (err.code != CRISP_NOT_FOUND) {
			answer_error(ch, m, &err, "ImageStatus");
			return;
		}
	} else {
		have = true;
		if (fill_image(&h, &si) < 0) {
			store_image_free(&si);
			crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "ImageStatus");
			answer_error(ch, m, &err, "ImageStatus");
			return;
		}
		resp.image = &h.img;
		if (r->req->verbose && (info = image_info_json(&si)) != NULL) {
			ie.key = "info";
			ie.value = info;
			resp.n_info = 1;
			resp.info = &pie;
		}
	}
	a.resp = &resp;
	if (ipc_answer(ch, m->hdr.reqid, IPC_IMG_STATUS_ANS, &a.base, -1, &err) < 0) {
		log_warn("ImageStatus answer: %s", err.msg);
		answer_error(ch, m, &err, "ImageStatus"); /* never leave frontd waiting */
	}
	free(info);
	if (have) {
		holder_free(&h);
		store_image_free(&si);
	}
}

struct list_ctx {
	Runtime__V1__Image **v;
	struct img_holder *h;
	struct store_image *si;
	size_t n, cap;
	bool oom;
};

static int copy_image(const struct store_image *src, struct store_image *dst)
{
	memset(dst, 0, sizeof *dst);
	memcpy(dst->id, src->id, sizeof dst->id);
	dst->size = src->size;
	dst->user = src->user ? strdup(src->user) : NULL;
	dst->names = calloc(src->nnames + 1, sizeof *dst->names);
	if ((src->user && !dst->user) || !dst->names)
		return -1;
	for (size_t i = 0; i < src->nnames; i++) {
		dst->names[i] = strdup(src->names[i]);
		if (!dst->names[i])
			return -1;
		dst->nnames++;
	}
	return 0;
}

static int list_cb(void *arg, const struct store_image *img)
{
	struct list_ctx *l = arg;

	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		struct store_image *nsi = realloc(l->si, nc * sizeof *nsi);
		if (!nsi) {
			l->oom = true;
			return 1;
		}
		l->si = nsi;
		l->cap = nc;
	}
	if (copy_image(img, &l->si[l->n]) < 0) {
		store_image_free(&l->si[l->n]);
		l->oom = true;
		return 1;
	}
	l->n++;
	return 0;
}

void images_on_list(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im)
{
	const Cipc__ImgList *r = (const Cipc__ImgList *)m->pb;
	Runtime__V1__ListImagesResponse resp = RUNTIME__V1__LIST_IMAGES_RESPONSE__INIT;
	Cipc__ImgListAns a = CIPC__IMG_LIST_ANS__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	struct list_ctx l = { 0 };
	const char *filter = NULL;

	if (!im->images) {
		crisp_error(&err, CRISP_UNAVAILABLE, 0, "image service not ready");
		answer_error(ch, m, &err, "ListImages");
		return;
	}
	if (r->req && r->req->filter && r->req->filter->image && r->req->filter->image->image &&
	    r->req->filter->image->image[0])
		filter = r->req->filter->image->image;
	if (filter) {
		struct store_image si;
		if (images_lookup(im->images, filter, &si, NULL, 0, &err) == 0) {
			list_cb(&l, &si);
			store_image_free(&si);
		} else if (err.code != CRISP_NOT_FOUND) {
			answer_error(ch, m, &err, "ListImages");
			return;
		}
	} else if (store_image_list(im->images->st, list_cb, &l, &err) < 0) {
		answer_error(ch, m, &err, "ListImages");
		goto out;
	}
	if (l.oom) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "ListImages");
		answer_error(ch, m, &err, "ListImages");
		goto out;
	}
	l.h = calloc(l.n + 1, sizeof *l.h);
	l.v = calloc(l.n + 1, sizeof *l.v);
	if (!l.h || !l.v) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "ListImages");
		answer_error(ch, m, &err, "ListImages");
		goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		if (fill_image(&l.h[i], &l.si[i]) < 0) {
			for (size_t j = 0; j < i; j++)
				holder_free(&l.h[j]);
			crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "ListImages");
			answer_error(ch, m, &err, "ListImages");
			goto out;
		}
		l.v[i] = &l.h[i].img;
	}
	resp.images = l.v;
	resp.n_images = l.n;
	a.resp = &resp;
	if (ipc_answer(ch, m->hdr.reqid, IPC_IMG_LIST_ANS, &a.base, -1, &err) < 0) {
		log_warn("ListImages answer: %s", err.msg);
		if (err.code == CRISP_RESOURCE_EXHAUSTED)
			answer_error(ch, m, &err, "ListImages");
	}
	for (size_t i = 0; i < l.n; i++)
		holder_free(&l.h[i]);
out:
	for (size_t i = 0; i < l.n; i++)
		store_image_free(&l.si[i]);
	free(l.si);
	free(l.h);
	free(l.v);
}

void images_on_remove(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im)
{
	const Cipc__ImgRemove *r = (const Cipc__ImgRemove *)m->pb;
	Runtime__V1__RemoveImageResponse resp = RUNTIME__V1__REMOVE_IMAGE_RESPONSE__INIT;
	Cipc__ImgRemoveAns a = CIPC__IMG_REMOVE_ANS__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	char found[DOCKERREF_STR_MAX + MF_DIGEST_SIZE];
	char (*rel)[MF_DIGEST_SIZE] = NULL;
	size_t nrel = 0;
	struct store_image si;
	bool removed = false;

	if (!im->images || !r->req || !r->req->image) {
		crisp_error(&err, im->images ? CRISP_INVALID_ARGUMENT : CRISP_UNAVAILABLE, 0,
			    "RemoveImage: no image");
		answer_error(ch, m, &err, "RemoveImage");
		return;
	}
	if (images_lookup(im->images, r->req->image->image, &si, found, sizeof found, &err) < 0) {
		if (err.code != CRISP_NOT_FOUND) {
			answer_error(ch, m, &err, "RemoveImage");
			return;
		}
		goto ok; /* idempotent: an unknown image is already removed */
	}
	store_image_free(&si);
	if (store_image_remove(im->images->st, found, &removed, &rel, &nrel, &err) < 0) {
		if (err.code != CRISP_NOT_FOUND) {
			answer_error(ch, m, &err, "RemoveImage");
			return;
		}
	}
	log_info("RemoveImage %s: %s", found, removed ? "image removed" : "tag removed");
	if (nrel) {
		/* Answer once execd has deleted the layers nobody uses. */
		struct deferred_answer *d = calloc(1, sizeof *d);
		size_t k = 0;
		for (size_t i = 0; i < nrel; i++)
			if (!pull_uses_chain(im->images, rel[i]))
				memmove(rel[k++], rel[i], MF_DIGEST_SIZE);
		if (d) {
			d->ch = ipc_chan_ref(ch);
			d->reqid = m->hdr.reqid;
		}
		images_release_layers(im->images, rel, k, d ? images_deferred_answer : NULL, d);
		free(rel);
		if (d)
			return;
	}
	free(rel);
ok:
	a.resp = &resp;
	if (ipc_answer(ch, m->hdr.reqid, IPC_IMG_REMOVE_ANS, &a.base, -1, &err) < 0)
		log_warn("RemoveImage answer: %s", err.msg);
}

static void strv_or_empty(const struct mf_strv *s, size_t *n, char ***v)
{
	*n = s->v ? s->n : 0;
	*v = s->v;
}

/* Answer IMAGE_RESOLVE for image id, which the policy allowed. */
static void resolve_answer(struct imaged_images *ims, struct ipc_chan *ch, uint64_t reqid,
			   const char *id, const char *holder)
{
	Cipc__ImageResolved a = CIPC__IMAGE_RESOLVED__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	struct store_image si;
	struct mf_config cfg;
	struct img_holder h;
	char **chains = NULL;

	memset(&si, 0, sizeof si);
	memset(&h, 0, sizeof h);
	memset(&cfg, 0, sizeof cfg);
	if (store_image_lookup(ims->st, id, &si, &err) < 0) {
		if (err.code == CRISP_NOT_FOUND)
			crisp_error(&err, CRISP_NOT_FOUND, 0, "image %s was removed", id);
		if (ipc_answer_error(ch, reqid, &err) < 0)
			log_debug("IMAGE_RESOLVE error answer not sent (peer gone?)");
		return;
	}
	if (mf_config_parse(si.config, si.config_len, &cfg, &err) < 0) {
		store_image_free(&si);
		if (ipc_answer_error(ch, reqid, &err) < 0)
			log_debug("IMAGE_RESOLVE error answer not sent (peer gone?)");
		return;
	}
	chains = calloc(si.nlayers + 1, sizeof *chains);
	if (!chains || fill_image(&h, &si) < 0) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "IMAGE_RESOLVE");
		goto fail;
	}
	if (store_image_pin(ims->st, si.id, holder, &err) < 0)
		goto fail;
	a.image_id = si.id;
	a.repo_tags = h.img.repo_tags;
	a.n_repo_tags = h.img.n_repo_tags;
	a.repo_digests = h.img.repo_digests;
	a.n_repo_digests = h.img.n_repo_digests;
	for (size_t i = 0; i < si.nlayers; i++)
		chains[i] = si.layers[i].chainid;
	a.chain_ids = chains;
	a.n_chain_ids = si.nlayers;
	a.user = cfg.user ? cfg.user : "";
	strv_or_empty(&cfg.env, &a.n_env, &a.env);
	strv_or_empty(&cfg.entrypoint, &a.n_entrypoint, &a.entrypoint);
	strv_or_empty(&cfg.cmd, &a.n_cmd, &a.cmd);
	a.working_dir = cfg.working_dir ? cfg.working_dir : "";
	a.stop_signal = cfg.stop_signal ? cfg.stop_signal : "";
	strv_or_empty(&cfg.volumes, &a.n_volumes, &a.volumes);
	/* Should the answer be lost, the pin stays until execd's IMAGE_UNPIN
	 * for this holder (it unpins every holder it does not know). */
	if (ipc_answer(ch, reqid, IPC_IMAGE_RESOLVED, &a.base, -1, &err) < 0)
		log_warn("IMAGE_RESOLVED answer: %s", err.msg);
	goto out;
fail:
	if (ipc_answer_error(ch, reqid, &err) < 0)
		log_debug("IMAGE_RESOLVE error answer not sent (peer gone?)");
out:
	free(chains);
	holder_free(&h);
	mf_config_free(&cfg);
	store_image_free(&si);
}

/* A CreateContainer's image: the signature policy of the pod's namespace
 * re-evaluated over the signatures kept with the image (no network). */
struct resolve_op {
	struct imaged_images *ims;
	struct resolve_op *next;
	struct ipc_chan *ch; /* referenced */
	uint64_t reqid;
	char id[MF_DIGEST_SIZE];
	char *holder;
	struct store_pulled *pl;
	size_t npl;
	struct sigcheck *sc;
};

static void resolve_op_free(struct resolve_op *op)
{
	for (struct resolve_op **pp = &op->ims->resolves; *pp; pp = &(*pp)->next)
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	sigcheck_cancel(op->sc);
	store_pulled_free(op->pl, op->npl);
	free(op->holder);
	ipc_chan_unref(op->ch);
	free(op);
}

void resolve_cancel_all(struct imaged_images *ims)
{
	while (ims->resolves)
		resolve_op_free(ims->resolves);
}

static void on_resolve_decided(void *arg, const struct sigcheck_result *r)
{
	struct resolve_op *op = arg;
	crisp_err_t err;

	op->sc = NULL; /* freed by sigcheck after this returns */
	if (r->allow) {
		resolve_answer(op->ims, op->ch, op->reqid, op->id, op->holder);
	} else {
		err = r->err;
		if (ipc_answer_error(op->ch, op->reqid, &err) < 0)
			log_debug("IMAGE_RESOLVE error answer not sent (peer gone?)");
	}
	resolve_op_free(op);
}

/* The digest part of the image's first repo digest name, else the
 * manifest the pull chose. */
static void fallback_candidate(const struct store_image *si, const char **ref, char *digest,
			       size_t dsize)
{
	*ref = NULL;
	snprintf(digest, dsize, "%s", si->manifest_digest);
	for (size_t i = 0; i < si->nnames; i++) {
		const char *at = strchr(si->names[i], '@');
		if (!at && !*ref)
			*ref = si->names[i];
		if (at && strlen(at + 1) < dsize) {
			snprintf(digest, dsize, "%s", at + 1);
			if (!*ref)
				*ref = si->names[i];
		}
	}
}

void images_on_resolve(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im)
{
	const Cipc__ImageResolve *r = (const Cipc__ImageResolve *)m->pb;
	struct imaged_images *ims = im->images;
	struct sigcheck_candidate cand[SIGCHECK_MAX_CANDIDATES];
	struct sigcheck_input in;
	crisp_err_t err = CRISP_ERR_INIT;
	char found[DOCKERREF_STR_MAX + MF_DIGEST_SIZE];
	char fdigest[MF_DIGEST_SIZE];
	struct resolve_op *op;
	struct store_image si;
	size_t nc = 0;

	memset(&si, 0, sizeof si);
	if (!ims) {
		crisp_error(&err, CRISP_UNAVAILABLE, 0, "image service not ready");
		answer_error(ch, m, &err, "IMAGE_RESOLVE");
		return;
	}
	if (images_lookup(ims, r->image, &si, found, sizeof found, &err) < 0) {
		if (err.code == CRISP_NOT_FOUND)
			crisp_error(&err, CRISP_NOT_FOUND, 0, "image %s is not pulled", r->image);
		answer_error(ch, m, &err, "IMAGE_RESOLVE");
		return;
	}
	op = calloc(1, sizeof *op);
	if (!op || !(op->holder = strdup(r->holder ? r->holder : ""))) {
		free(op);
		store_image_free(&si);
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "IMAGE_RESOLVE");
		answer_error(ch, m, &err, "IMAGE_RESOLVE");
		return;
	}
	op->ims = ims;
	op->ch = ipc_chan_ref(ch);
	op->reqid = m->hdr.reqid;
	memcpy(op->id, si.id, sizeof op->id);
	op->next = ims->resolves;
	ims->resolves = op;
	if (store_image_sigs(ims->st, si.id, &op->pl, &op->npl, &err) < 0)
		goto fail;
	/* The references it was pulled by: the one the container names when
	 * it names one, else every one (one allowed is enough). */
	for (size_t i = 0; i < op->npl && nc < SIGCHECK_MAX_CANDIDATES; i++)
		if (strcmp(op->pl[i].ref, found) == 0)
			cand[nc++] = (struct sigcheck_candidate){ op->pl[i].ref, op->pl[i].digest,
								  op->pl[i].sigs, op->pl[i].nsigs };
	for (size_t i = 0; nc == 0 && i < op->npl && i < SIGCHECK_MAX_CANDIDATES; i++)
		cand[i] = (struct sigcheck_candidate){ op->pl[i].ref, op->pl[i].digest, op->pl[i].sigs,
						       op->pl[i].nsigs };
	if (nc == 0)
		nc = op->npl < SIGCHECK_MAX_CANDIDATES ? op->npl : SIGCHECK_MAX_CANDIDATES;
	if (nc == 0) {
		/* Recorded before signatures were kept: its name, no signatures. */
		const char *ref;
		fallback_candidate(&si, &ref, fdigest, sizeof fdigest);
		if (!ref) {
			crisp_error(&err, CRISP_PERMISSION_DENIED, 0,
				    "SignatureValidationFailed: image %s has no name to evaluate the "
				    "signature policy for",
				    si.id);
			goto fail;
		}
		cand[nc++] = (struct sigcheck_candidate){ ref, fdigest, NULL, 0 };
	}
	memset(&in, 0, sizeof in);
	in.event = "create";
	in.namespace_ = r->namespace_;
	in.pod = r->pod_name;
	in.cand = cand;
	in.ncand = nc;
	if (sigcheck_start(ims, &in, on_resolve_decided, op, &op->sc, &err) < 0)
		goto fail;
	store_image_free(&si);
	return;
fail:
	store_image_free(&si);
	answer_error(ch, m, &err, "IMAGE_RESOLVE");
	resolve_op_free(op);
}

void images_on_unpin(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im)
{
	const Cipc__ImageUnpin *r = (const Cipc__ImageUnpin *)m->pb;
	Cipc__Empty e = CIPC__EMPTY__INIT;
	crisp_err_t err = CRISP_ERR_INIT;

	if (!im->images) {
		crisp_error(&err, CRISP_UNAVAILABLE, 0, "image service not ready");
		answer_error(ch, m, &err, "IMAGE_UNPIN");
		return;
	}
	if (store_image_unpin_all(im->images->st, r->holder, &err) < 0) {
		answer_error(ch, m, &err, "IMAGE_UNPIN");
		return;
	}
	if (ipc_answer(ch, m->hdr.reqid, IPC_IMAGE_UNPIN_OK, &e.base, -1, &err) < 0)
		log_warn("IMAGE_UNPIN answer: %s", err.msg);
}

/* execd's record of every pin holder, when their channel comes up. */
void images_on_pins_sync(struct ipc_chan *ch, struct ipc_msg *m, struct imaged *im)
{
	const Cipc__ImagePinsSync *r = (const Cipc__ImagePinsSync *)m->pb;
	Cipc__Empty e = CIPC__EMPTY__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	const char **holders = NULL, **ids = NULL;
	size_t made = 0, dropped = 0;

	if (!im->images) {
		crisp_error(&err, CRISP_UNAVAILABLE, 0, "image service not ready");
		answer_error(ch, m, &err, "IMAGE_PINS_SYNC");
		return;
	}
	holders = calloc(r->n_pins + 1, sizeof *holders);
	ids = calloc(r->n_pins + 1, sizeof *ids);
	if (holders == NULL || ids == NULL) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "IMAGE_PINS_SYNC");
		goto fail;
	}
	for (size_t i = 0; i < r->n_pins; i++) {
		if (r->pins[i] == NULL) {
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "IMAGE_PINS_SYNC: empty pin %zu", i);
			goto fail;
		}
		holders[i] = r->pins[i]->holder;
		ids[i] = r->pins[i]->image_id;
	}
	if (store_pins_sync(im->images->st, holders, ids, r->n_pins, &made, &dropped, &err) < 0)
		goto fail;
	if (made || dropped)
		log_info("pins: %zu made again, %zu dropped (%zu holders in execd's record)", made, dropped,
			 r->n_pins);
	free(holders);
	free(ids);
	if (ipc_answer(ch, m->hdr.reqid, IPC_IMAGE_PINS_SYNC_OK, &e.base, -1, &err) < 0)
		log_warn("IMAGE_PINS_SYNC answer: %s", err.msg);
	return;
fail:
	free(holders);
	free(ids);
	answer_error(ch, m, &err, "IMAGE_PINS_SYNC");
}
