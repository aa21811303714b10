/*
 * crisp: simple-signing signatures: payload parser and gpgme verification
 * in an ephemeral keyring.  See sigverify.h for the rules.
 */
#include "imaged/sigverify.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gpgme.h>
#include <jansson.h>

#include "common/util.h"

static const char SIG_TYPE[] = "atomic container signature";
static const char SIG_TYPE_COSIGN[] = "cosign container image signature";

/* ---- payload ------------------------------------------------------------ */

/* obj must be an object holding exactly the n fields names[] (each once:
 * duplicates are refused by the loader); their values go to vals[]. */
static int exact_fields(json_t *obj, const char *where, const char *const *names, size_t n,
			json_t **vals, crisp_err_t *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: JSON object expected", where);
	for (size_t i = 0; i < n; i++)
		vals[i] = NULL;
	json_object_foreach(obj, key, v) {
		size_t i;
		for (i = 0; i < n; i++)
			if (strcmp(key, names[i]) == 0)
				break;
		if (i == n)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: unknown key \"%.64s\"", where,
					   key);
		vals[i] = v;
	}
	for (size_t i = 0; i < n; i++)
		if (vals[i] == NULL)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: key \"%s\" missing", where,
					   names[i]);
	return 0;
}

static int get_string(json_t *v, const char *where, const char **s, size_t *len, crisp_err_t *err)
{
	if (!json_is_string(v))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: string expected", where);
	*s = json_string_value(v);
	*len = json_string_length(v);
	if (strlen(*s) != *len) /* JSON_ALLOW_NUL is off; belt and braces */
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: NUL in string", where);
	return 0;
}

static int parse_optional(json_t *opt, struct sig_payload *out, crisp_err_t *err)
{
	json_t *v;

	if (!json_is_object(opt))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "optional: JSON object expected");
	/* Unknown members are ignored (c/image), duplicates were refused. */
	if ((v = json_object_get(opt, "creator")) != NULL) {
		const char *s;
		size_t len;
		if (get_string(v, "optional.creator", &s, &len, err) != 0)
			return -1;
		out->has_creator = true;
		crisp_strlcpy(out->creator, s, sizeof out->creator);
	}
	if ((v = json_object_get(opt, "timestamp")) != NULL) {
		if (json_is_integer(v)) {
			out->timestamp = (int64_t)json_integer_value(v);
		} else if (json_is_real(v)) {
			double d = json_real_value(v);
			/* Range first: converting an out-of-range double is UB. */
			if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) ||
			    (double)(int64_t)d != d)
				return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
						   "optional.timestamp is not an integer");
			out->timestamp = (int64_t)d;
		} else {
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "optional.timestamp: number expected");
		}
		out->has_timestamp = true;
	}
	return 0;
}

static int payload_parse(const uint8_t *buf, size_t len, enum sig_payload_kind kind, struct sig_payload *out,
			 crisp_err_t *err);

int sig_payload_parse(const uint8_t *buf, size_t len, struct sig_payload *out, crisp_err_t *err)
{
	return payload_parse(buf, len, SIG_PAYLOAD_SIMPLE_SIGNING, out, err);
}

int sig_payload_parse_kind(const uint8_t *buf, size_t len, enum sig_payload_kind kind, struct sig_payload *out,
			   crisp_err_t *err)
{
	return payload_parse(buf, len, kind, out, err);
}

static int payload_parse(const uint8_t *buf, size_t len, enum sig_payload_kind kind, struct sig_payload *out,
			 crisp_err_t *err)
{
	const char *want_type = kind == SIG_PAYLOAD_COSIGN ? SIG_TYPE_COSIGN : SIG_TYPE;
	static const char *const top_names[] = { "critical", "optional" };
	static const char *const crit_names[] = { "type", "image", "identity" };
	static const char *const image_names[] = { "docker-manifest-digest" };
	static const char *const ident_names[] = { "docker-reference" };
	json_t *top[2], *crit[3], *image[1], *ident[1];
	json_error_t je;
	json_t *root;
	const char *s;
	size_t slen;
	int rc = -1;

	memset(out, 0, sizeof *out);
	if (len > SIG_PAYLOAD_MAX)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "signature payload of %zu bytes exceeds %u",
				   len, SIG_PAYLOAD_MAX);
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "signature payload: invalid JSON at line %d column %d: %.100s", je.line,
				   je.column, je.text);
	if (exact_fields(root, "signature payload", top_names, 2, top, err) != 0)
		goto out;
	/* cosign writes "optional": null when there are no annotations
	 * (c/image sigstore_payload.go accepts it). */
	if (!(kind == SIG_PAYLOAD_COSIGN && json_is_null(top[1])) && parse_optional(top[1], out, err) != 0)
		goto out;
	if (exact_fields(top[0], "critical", crit_names, 3, crit, err) != 0)
		goto out;
	if (get_string(crit[0], "critical.type", &s, &slen, err) != 0)
		goto out;
	if (strcmp(s, want_type) != 0) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "unrecognized signature type \"%.64s\"", s);
		goto out;
	}
	if (exact_fields(crit[1], "critical.image", image_names, 1, image, err) != 0)
		goto out;
	if (get_string(image[0], "critical.image.docker-manifest-digest", &s, &slen, err) != 0)
		goto out;
	if (slen > DOCKERREF_DIGEST_MAX || !dockerref_valid_digest(s, slen)) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "invalid docker-manifest-digest value \"%.140s\"", s);
		goto out;
	}
	memcpy(out->manifest_digest, s, slen + 1);
	if (exact_fields(crit[2], "critical.identity", ident_names, 1, ident, err) != 0)
		goto out;
	if (get_string(ident[0], "critical.identity.docker-reference", &s, &slen, err) != 0)
		goto out;
	if (slen >= sizeof out->docker_reference) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "critical.identity.docker-reference too long (%zu bytes)",
			    slen);
		goto out;
	}
	memcpy(out->docker_reference, s, slen + 1);
	rc = 0;
out:
	json_decref(root);
	if (rc != 0) {
		crisp_err_t keep = err ? *err : (crisp_err_t)CRISP_ERR_INIT;
		memset(out, 0, sizeof *out);
		if (err)
			*err = keep;
	}
	return rc;
}

/* ---- ephemeral keyring -------------------------------------------------- */

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	/* Keep going: remove as much as possible. */
	if (remove(path) != 0 && errno != ENOENT)
		return 0;
	return 0;
}

static void rm_rf(const char *path)
{
	(void)nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

struct keyring {
	char dir[PATH_MAX];
	gpgme_ctx_t ctx;
	size_t n_fpr;
	char (*fpr)[SIG_FPR_MAX + 1];
};

static void keyring_close(struct keyring *k)
{
	if (k->ctx != NULL)
		gpgme_release(k->ctx);
	k->ctx = NULL;
	if (k->dir[0] != '\0')
		rm_rf(k->dir);
	k->dir[0] = '\0';
	free(k->fpr);
	k->fpr = NULL;
	k->n_fpr = 0;
}

static int gpgme_ready(crisp_err_t *err)
{
	static bool done;
	gpgme_error_t ge;

	if (done)
		return 0;
	if (gpgme_check_version(NULL) == NULL)
		return crisp_error(err, CRISP_INTERNAL, 0, "gpgme_check_version failed");
	ge = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP);
	if (ge != 0)
		return crisp_error(err, CRISP_INTERNAL, 0, "gpgme: no usable OpenPGP engine (gpg): %s",
				   gpgme_strerror(ge));
	done = true;
	return 0;
}

/* gpg.conf of the ephemeral homedir: never start an agent or a dirmngr,
 * never fetch keys. */
static const char GPG_CONF[] = "no-autostart\n"
			       "no-auto-key-retrieve\n"
			       "no-greeting\n";

static int keyring_open(struct keyring *k, const char *tmp_parent, crisp_err_t *err)
{
	char conf[PATH_MAX];
	gpgme_error_t ge;
	int fd;

	memset(k, 0, sizeof *k);
	if (gpgme_ready(err) != 0)
		return -1;
	if (snprintf(k->dir, sizeof k->dir, "%s/gpg-XXXXXX", tmp_parent) >= (int)sizeof k->dir) {
		k->dir[0] = '\0';
		return crisp_error(err, CRISP_INTERNAL, 0, "temporary directory path too long");
	}
	if (mkdtemp(k->dir) == NULL) {
		int e = errno;
		k->dir[0] = '\0';
		return crisp_error(err, CRISP_INTERNAL, e, "mkdtemp below %s: %s", tmp_parent, strerror(e));
	}
	/* mkdtemp creates it 0700 (no chmod: imaged's seccomp has none);
	 * checked, since gpg refuses a homedir others can read. */
	{
		struct stat hs;
		if (stat(k->dir, &hs) != 0 || (hs.st_mode & 0077) != 0) {
			int e = errno;
			keyring_close(k);
			return crisp_error(err, CRISP_INTERNAL, e, "%s: not a private directory", k->dir);
		}
	}
	if (snprintf(conf, sizeof conf, "%s/gpg.conf", k->dir) >= (int)sizeof conf) {
		keyring_close(k);
		return crisp_error(err, CRISP_INTERNAL, 0, "temporary directory path too long");
	}
	fd = open(conf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || crisp_write_all(fd, GPG_CONF, sizeof GPG_CONF - 1) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		keyring_close(k);
		return crisp_error(err, CRISP_INTERNAL, e, "writing %s: %s", conf, strerror(e));
	}
	close(fd);

	ge = gpgme_new(&k->ctx);
	if (ge == 0)
		ge = gpgme_set_protocol(k->ctx, GPGME_PROTOCOL_OpenPGP);
	if (ge == 0)
		ge = gpgme_ctx_set_engine_info(k->ctx, GPGME_PROTOCOL_OpenPGP, NULL, k->dir);
	if (ge != 0) {
		keyring_close(k);
		return crisp_error(err, CRISP_INTERNAL, 0, "gpgme context: %s", gpgme_strerror(ge));
	}
	gpgme_set_armor(k->ctx, 0);
	gpgme_set_textmode(k->ctx, 0);
	gpgme_set_offline(k->ctx, 1);
	return 0;
}

static int keyring_import(struct keyring *k, const uint8_t *data, size_t len, const char *what,
			  crisp_err_t *err)
{
	gpgme_data_t d = NULL;
	gpgme_import_result_t res;
	gpgme_import_status_t st;
	gpgme_error_t ge;

	ge = gpgme_data_new_from_mem(&d, (const char *)data, len, 0);
	if (ge != 0)
		return crisp_error(err, CRISP_INTERNAL, 0, "gpgme data: %s", gpgme_strerror(ge));
	ge = gpgme_op_import(k->ctx, d);
	gpgme_data_release(d);
	if (ge != 0)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "importing %s: %s", what, gpgme_strerror(ge));
	res = gpgme_op_import_result(k->ctx);
	for (st = res ? res->imports : NULL; st != NULL; st = st->next) {
		size_t fl;
		void *nv;
		if (st->result != 0 || st->fpr == NULL)
			continue;
		fl = strlen(st->fpr);
		if (fl == 0 || fl > SIG_FPR_MAX)
			continue;
		nv = realloc(k->fpr, (k->n_fpr + 1) * sizeof *k->fpr);
		if (nv == NULL)
			return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
		k->fpr = nv;
		memcpy(k->fpr[k->n_fpr], st->fpr, fl + 1);
		k->n_fpr++;
	}
	return 0;
}

static int keyring_load(struct keyring *k, const struct sp_requirement *req, crisp_err_t *err)
{
	if (req->keys.kind == SP_KEYS_PATHS) {
		for (size_t i = 0; i < req->keys.n; i++) {
			uint8_t *buf = NULL;
			size_t len = 0;
			int rc;
			if (crisp_read_path(req->keys.paths[i], SIG_KEYFILE_MAX, "key file", &buf, &len, err) != 0)
				return -1;
			rc = keyring_import(k, buf, len, req->keys.paths[i], err);
			free(buf);
			if (rc != 0)
				return -1;
		}
	} else if (req->keys.kind == SP_KEYS_DATA) {
		for (size_t i = 0; i < req->keys.n; i++)
			if (keyring_import(k, req->keys.data[i].data, req->keys.data[i].len, req->keys.field, err) !=
			    0)
				return -1;
	} else {
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: requirement names no keys", req->where);
	}
	if (k->n_fpr == 0)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "%s: no public keys imported from %s",
				   req->where, req->keys.field ? req->keys.field : "keys");
	return 0;
}

/* Plaintext sink with a cap: a compressed literal packet cannot make us
 * buffer more than SIG_PAYLOAD_MAX + 1 bytes. */
struct capbuf {
	uint8_t buf[SIG_PAYLOAD_MAX + 1];
	size_t len;
	bool overflow;
};

static ssize_t capbuf_write(void *handle, const void *data, size_t size)
{
	struct capbuf *c = handle;

	if (size > sizeof c->buf - c->len) {
		c->overflow = true;
		errno = EFBIG;
		return -1;
	}
	memcpy(c->buf + c->len, data, size);
	c->len += size;
	return (ssize_t)size;
}

#define BAD_SUMMARY                                                                                       \
	(GPGME_SIGSUM_RED | GPGME_SIGSUM_KEY_REVOKED | GPGME_SIGSUM_KEY_EXPIRED | GPGME_SIGSUM_SIG_EXPIRED | \
	 GPGME_SIGSUM_KEY_MISSING | GPGME_SIGSUM_CRL_MISSING | GPGME_SIGSUM_CRL_TOO_OLD |                    \
	 GPGME_SIGSUM_BAD_POLICY | GPGME_SIGSUM_SYS_ERROR)

/* Verify one blob; on success the payload is in *cb and the signer's
 * primary fingerprint in fpr.  Reasons go to err (PERMISSION_DENIED). */
static int verify_one(struct keyring *k, const uint8_t *blob, size_t len, struct capbuf *cb,
		      char fpr[SIG_FPR_MAX + 1], crisp_err_t *err)
{
	static struct gpgme_data_cbs cbs = { .write = capbuf_write };
	gpgme_data_t sig = NULL, plain = NULL;
	gpgme_verify_result_t vr;
	gpgme_signature_t s;
	gpgme_key_t key = NULL;
	gpgme_error_t ge;
	const char *pfpr;
	bool known = false;
	int rc = -1;

	cb->len = 0;
	cb->overflow = false;
	if (len == 0)
		return crisp_error(err, CRISP_PERMISSION_DENIED, 0, "empty signature");
	if (len > SIG_BLOB_MAX)
		return crisp_error(err, CRISP_PERMISSION_DENIED, 0, "signature of %zu bytes exceeds %u", len,
				   SIG_BLOB_MAX);
	ge = gpgme_data_new_from_mem(&sig, (const char *)blob, len, 0);
	if (ge == 0)
		ge = gpgme_data_new_from_cbs(&plain, &cbs, cb);
	if (ge != 0) {
		crisp_error(err, CRISP_INTERNAL, 0, "gpgme data: %s", gpgme_strerror(ge));
		goto out;
	}
	ge = gpgme_op_verify(k->ctx, sig, NULL, plain);
	if (cb->overflow) {
		crisp_error(err, CRISP_PERMISSION_DENIED, 0, "signed payload larger than %u bytes", SIG_PAYLOAD_MAX);
		goto out;
	}
	if (ge != 0) {
		crisp_error(err, CRISP_PERMISSION_DENIED, 0, "invalid GPG signature: %s", gpgme_strerror(ge));
		goto out;
	}
	vr = gpgme_op_verify_result(k->ctx);
	if (vr == NULL || vr->signatures == NULL || vr->signatures->next != NULL) {
		size_t n = 0;
		for (s = vr ? vr->signatures : NULL; s != NULL; s = s->next)
			n++;
		crisp_error(err, CRISP_PERMISSION_DENIED, 0, "unexpected GPG signature count %zu", n);
		goto out;
	}
	s = vr->signatures;
	if (s->status != 0) {
		crisp_error(err, CRISP_PERMISSION_DENIED, 0, "invalid GPG signature by %.64s: %s",
			    s->fpr ? s->fpr : "?", gpgme_strerror(s->status));
		goto out;
	}
	if ((s->summary & BAD_SUMMARY) != 0 || s->validity == GPGME_VALIDITY_NEVER || s->validity_reason != 0 ||
	    s->wrong_key_usage) {
		crisp_error(err, CRISP_PERMISSION_DENIED, 0,
			    "invalid GPG signature by %.64s: summary 0x%x validity %d reason %s%s",
			    s->fpr ? s->fpr : "?", (unsigned)s->summary, (int)s->validity,
			    gpgme_strerror(s->validity_reason), s->wrong_key_usage ? " wrong key usage" : "");
		goto out;
	}
	if (s->fpr == NULL) {
		crisp_error(err, CRISP_PERMISSION_DENIED, 0, "GPG signature names no key");
		goto out;
	}
	/* Map a subkey (or a bare key id) to its primary key. */
	ge = gpgme_get_key(k->ctx, s->fpr, &key, 0);
	if (ge != 0 || key == NULL || key->subkeys == NULL || key->subkeys->fpr == NULL) {
		crisp_error(err, CRISP_PERMISSION_DENIED, 0, "signature by key %.64s is not accepted (%s)", s->fpr,
			    ge ? gpgme_strerror(ge) : "no key");
		goto out;
	}
	pfpr = key->subkeys->fpr;
	for (size_t i = 0; i < k->n_fpr; i++)
		if (strcasecmp(k->fpr[i], pfpr) == 0)
			known = true;
	if (!known || strlen(pfpr) > SIG_FPR_MAX) {
		crisp_error(err, CRISP_PERMISSION_DENIED, 0, "signature by key %.64s is not accepted", pfpr);
		goto out;
	}
	crisp_strlcpy(fpr, pfpr, SIG_FPR_MAX + 1);
	rc = 0;
out:
	if (key != NULL)
		gpgme_key_unref(key);
	gpgme_data_release(sig);
	gpgme_data_release(plain);
	return rc;
}

static void add_reason(char *acc, size_t accsz, size_t idx, const char *msg);

static void note_reason(crisp_err_t *first, char *acc, size_t accsz, size_t idx, const crisp_err_t *e)
{
	if (first->code == 0) {
		*first = *e;
		first->code = CRISP_PERMISSION_DENIED;
	}
	add_reason(acc, accsz, idx, e->msg);
}

static void add_reason(char *acc, size_t accsz, size_t idx, const char *msg)
{
	size_t l = strlen(acc);

	if (l + 1 >= accsz)
		return;
	if (snprintf(acc + l, accsz - l, "%s[signature-%zu] %s", l ? "; " : "", idx + 1, msg) < 0)
		acc[l] = '\0';
}

int sig_verify_gpg(const char *tmp_parent, const struct sp_requirement *req, const char *image_ref,
		   const char *manifest_digest, const struct sig_blob *sigs, size_t n,
		   struct sig_verified *out, crisp_err_t *err)
{
	struct keyring k;
	struct capbuf *cb = NULL;
	char reasons[CRISP_ERR_MSG_MAX];
	crisp_err_t first = CRISP_ERR_INIT;
	int rc = -1;

	memset(out, 0, sizeof *out);
	reasons[0] = '\0';
	if (req == NULL || req->type != SP_REQ_SIGNED_BY)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "requirement is not signedBy");
	if (n == 0)
		return crisp_error(err, CRISP_PERMISSION_DENIED, 0,
				   "A signature was required, but no signature exists");
	cb = malloc(sizeof *cb);
	if (cb == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
	if (keyring_open(&k, tmp_parent, err) != 0) {
		free(cb);
		return -1;
	}
	if (keyring_load(&k, req, err) != 0)
		goto out;

	for (size_t i = 0; i < n; i++) {
		crisp_err_t e = CRISP_ERR_INIT;
		struct sig_payload pl;
		char fpr[SIG_FPR_MAX + 1];

		if (verify_one(&k, sigs[i].data, sigs[i].len, cb, fpr, &e) != 0) {
			if (e.code == CRISP_INTERNAL) {
				if (err != NULL)
					*err = e;
				goto out;
			}
			note_reason(&first, reasons, sizeof reasons, i, &e);
			continue;
		}
		if (sig_payload_parse(cb->buf, cb->len, &pl, &e) != 0) {
			note_reason(&first, reasons, sizeof reasons, i, &e);
			continue;
		}
		if (strcmp(pl.manifest_digest, manifest_digest) != 0) {
			crisp_error(&e, CRISP_PERMISSION_DENIED, 0, "signature for digest %s does not match",
				    pl.manifest_digest);
			note_reason(&first, reasons, sizeof reasons, i, &e);
			continue;
		}
		if (!sp_identity_matches(&req->identity, image_ref, pl.docker_reference)) {
			crisp_error(&e, CRISP_PERMISSION_DENIED, 0, "signature for identity %.300s is not accepted (%s)",
				    pl.docker_reference, sp_identity_type_name(req->identity.type));
			note_reason(&first, reasons, sizeof reasons, i, &e);
			continue;
		}
		memcpy(out->fingerprint, fpr, sizeof fpr);
		out->index = i;
		out->payload = pl;
		rc = 0;
		break;
	}
	if (rc != 0) {
		if (n == 1 && err != NULL)
			*err = first;
		else
			crisp_error(err, CRISP_PERMISSION_DENIED, 0, "none of the %zu signatures were accepted: %s", n,
				    reasons);
	}
out:
	keyring_close(&k);
	free(cb);
	return rc;
}
