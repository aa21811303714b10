/*
 * crisp: sigstore attachment manifests and key-based verification with
 * OpenSSL libcrypto.  See sigstore.h for the rules.
 */
#include "imaged/sigstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "common/util.h"

#define SIGSTORE_KEYFILE_MAX (64u * 1024)
#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"

int sigstore_attachment_tag(const char *manifest_digest, char *out, size_t outsz, crisp_err_t *err)
{
	size_t n = manifest_digest != NULL ? strnlen(manifest_digest, DOCKERREF_DIGEST_MAX + 1) : 0;
	const char *colon;

	if (n == 0 || !dockerref_valid_digest(manifest_digest, n))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "invalid manifest digest '%.140s'",
				   manifest_digest != NULL ? manifest_digest : "");
	colon = strchr(manifest_digest, ':');
	int r = snprintf(out, outsz, "%.*s-%s.sig", (int)(colon - manifest_digest), manifest_digest, colon + 1);
	if (r < 0 || (size_t)r >= outsz)
		return crisp_error(err, CRISP_OUT_OF_RANGE, 0, "attachment tag does not fit in %zu bytes", outsz);
	return 0;
}

/* ---- attachment manifest ------------------------------------------------- */

void sigstore_attachment_free(struct sigstore_attachment *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i].sig);
	memset(a, 0, sizeof *a);
}

static int layer_parse(json_t *l, size_t i, struct sigstore_attachment *out, crisp_err_t *err)
{
	json_t *mt = json_object_get(l, "mediaType"), *dg = json_object_get(l, "digest");
	json_t *sz = json_object_get(l, "size"), *ann = json_object_get(l, "annotations");

	if (!json_is_object(l))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "layers[%zu]: JSON object expected", i);
	if (!json_is_string(mt))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "layers[%zu].mediaType: string expected", i);
	if (!json_is_string(dg) || json_string_length(dg) > DOCKERREF_DIGEST_MAX ||
	    !dockerref_valid_digest(json_string_value(dg), json_string_length(dg)))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "layers[%zu].digest: valid digest expected", i);
	if (!json_is_integer(sz) || json_integer_value(sz) < 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "layers[%zu].size: non-negative integer expected", i);
	if (ann != NULL && !json_is_object(ann))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "layers[%zu].annotations: JSON object expected", i);
	if (ann != NULL) {
		const char *k;
		json_t *v;
		json_object_foreach(ann, k, v) {
			if (!json_is_string(v))
				return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
						   "layers[%zu].annotations[\"%.64s\"]: string expected", i, k);
		}
	}
	if (strcmp(json_string_value(mt), SIGSTORE_MEDIA_TYPE) != 0) {
		out->n_ignored++;
		return 0;
	}
	if ((uint64_t)json_integer_value(sz) > SIG_PAYLOAD_MAX)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "layers[%zu]: signature payload of %lld bytes exceeds %u",
				   i, (long long)json_integer_value(sz), SIG_PAYLOAD_MAX);
	if (out->n == SIGSTORE_MAX_SIGS)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "more than %u sigstore signatures", SIGSTORE_MAX_SIGS);

	struct sigstore_layer *sl = &out->v[out->n++];
	memcpy(sl->digest, json_string_value(dg), json_string_length(dg) + 1);
	sl->size = (uint64_t)json_integer_value(sz);
	json_t *s = ann != NULL ? json_object_get(ann, SIGSTORE_SIG_ANNOTATION) : NULL;
	if (s == NULL) {
		sl->problem = "missing " SIGSTORE_SIG_ANNOTATION " annotation";
		return 0;
	}
	const char *b64 = json_string_value(s);
	size_t b64len = json_string_length(s);
	if (b64len == 0 || b64len > 4 * ((SIGSTORE_SIG_MAX + 2) / 3)) {
		sl->problem = "signature annotation is empty or too long";
		return 0;
	}
	uint8_t buf[SIGSTORE_SIG_MAX];
	size_t blen = 0;
	const char *endp = NULL;
	if (sodium_base642bin(buf, sizeof buf, b64, b64len, NULL, &blen, &endp, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    endp != b64 + b64len || blen == 0) {
		sl->problem = "signature annotation is not valid base64";
		return 0;
	}
	sl->sig = xmalloc(blen);
	memcpy(sl->sig, buf, blen);
	sl->sig_len = blen;
	return 0;
}

int sigstore_attachment_parse(const uint8_t *buf, size_t len, struct sigstore_attachment *out, crisp_err_t *err)
{
	json_error_t je;
	json_t *root, *v;
	int rc = -1;

	memset(out, 0, sizeof *out);
	if (len > SIGSTORE_MANIFEST_MAX)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "attachment manifest of %zu bytes exceeds %u", len,
				   SIGSTORE_MANIFEST_MAX);
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "attachment manifest: invalid JSON at line %d column %d: %.100s", je.line, je.column,
				   je.text);
	if (!json_is_object(root)) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "attachment manifest: JSON object expected");
		goto out;
	}
	v = json_object_get(root, "schemaVersion");
	if (!json_is_integer(v) || json_integer_value(v) != 2) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "attachment manifest: schemaVersion 2 expected");
		goto out;
	}
	v = json_object_get(root, "mediaType");
	if (v != NULL && (!json_is_string(v) || strcmp(json_string_value(v), OCI_MANIFEST) != 0)) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "attachment manifest: mediaType %s expected", OCI_MANIFEST);
		goto out;
	}
	if (json_object_get(root, "manifests") != NULL) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "attachment manifest: an index is not an image manifest");
		goto out;
	}
	v = json_object_get(root, "layers");
	if (!json_is_array(v)) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "attachment manifest: layers array expected");
		goto out;
	}
	if (json_array_size(v) > SIGSTORE_MAX_LAYERS) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "attachment manifest: more than %u layers",
			    SIGSTORE_MAX_LAYERS);
		goto out;
	}
	for (size_t i = 0; i < json_array_size(v); i++)
		if (layer_parse(json_array_get(v, i), i, out, err) != 0)
			goto out;
	rc = 0;
out:
	json_decref(root);
	if (rc != 0)
		sigstore_attachment_free(out);
	return rc;
}

int sigstore_payload_check(const struct sigstore_layer *l, const uint8_t *payload, size_t len, crisp_err_t *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	const EVP_MD *alg;
	const char *colon = strchr(l->digest, ':');

	if (colon == NULL)
		return crisp_error(err, CRISP_PERMISSION_DENIED, 0, "signature layer has no digest");
	if ((uint64_t)len != l->size)
		return crisp_error(err, CRISP_PERMISSION_DENIED, 0, "signature payload is %zu bytes, the layer says %llu",
				   len, (unsigned long long)l->size);
	if (strncmp(l->digest, "sha256:", 7) == 0)
		alg = EVP_sha256();
	else if (strncmp(l->digest, "sha384:", 7) == 0)
		alg = EVP_sha384();
	else
		alg = EVP_sha512();
	if (EVP_Digest(payload, len, md, &mdlen, alg, NULL) != 1)
		return crisp_error(err, CRISP_INTERNAL, 0, "digest computation failed");
	crisp_hex(md, mdlen, hex);
	if (strcmp(hex, colon + 1) != 0)
		return crisp_error(err, CRISP_PERMISSION_DENIED, 0, "signature payload does not match layer digest %s",
				   l->digest);
	return 0;
}

/* ---- keys and signatures ------------------------------------------------- */

/* Exactly one PEM "PUBLIC KEY" block, only whitespace around it. */
static int load_key(const uint8_t *pem, size_t len, EVP_PKEY **out, const char **type, crisp_err_t *err)
{
	BIO *bio;
	EVP_PKEY *k;

	*out = NULL;
	if (len == 0 || len > SIGSTORE_KEYFILE_MAX)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "public key is empty or larger than %u bytes",
				   SIGSTORE_KEYFILE_MAX);
	const char *b = memmem(pem, len, "-----BEGIN ", 11);
	if (b == NULL || (len - (size_t)((const uint8_t *)b - pem)) < 26 ||
	    memcmp(b, "-----BEGIN PUBLIC KEY-----", 26) != 0)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "public key is not a PEM \"PUBLIC KEY\" block");
	for (const uint8_t *p = pem; p < (const uint8_t *)b; p++)
		if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
			return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "text before the PEM public key");
	const char *e = memmem(b, len - (size_t)((const uint8_t *)b - pem), "-----END PUBLIC KEY-----", 24);
	if (e == NULL)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "PEM public key is not terminated");
	for (const uint8_t *p = (const uint8_t *)e + 24; p < pem + len; p++)
		if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
			return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
					   "text after the PEM public key (one key per keyPath/keyData)");
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
	k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (k == NULL)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "PEM public key does not parse");
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_EC: {
		char group[64] = "";
		size_t gl = 0;
		if (EVP_PKEY_get_group_name(k, group, sizeof group, &gl) != 1 || strcmp(group, "prime256v1") != 0) {
			EVP_PKEY_free(k);
			return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
					   "ECDSA key on curve %s is not supported (only P-256)", group[0] ? group : "?");
		}
		*type = "ecdsa-p256";
		break;
	}
	case EVP_PKEY_ED25519:
		*type = "ed25519";
		break;
	default: {
		const char *name = OBJ_nid2sn(EVP_PKEY_get_base_id(k));
		EVP_PKEY_free(k);
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
				   "%s public keys are not supported (only ECDSA P-256 and Ed25519)",
				   name != NULL ? name : "this kind of");
	}
	}
	*out = k;
	return 0;
}

static int key_fpr(EVP_PKEY *k, char fpr[SIGSTORE_FPR_MAX + 1])
{
	unsigned char *der = NULL;
	unsigned char md[32];
	int n = i2d_PUBKEY(k, &der);
	if (n <= 0)
		return -1;
	SHA256(der, (size_t)n, md);
	OPENSSL_free(der);
	crisp_hex(md, sizeof md, fpr);
	return 0;
}

static int verify_with(EVP_PKEY *k, const char *type, const uint8_t *payload, size_t plen, const uint8_t *sig,
		       size_t slen, crisp_err_t *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (ctx == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
	if (EVP_DigestVerifyInit(ctx, NULL, strcmp(type, "ed25519") == 0 ? NULL : EVP_sha256(), NULL, k) != 1) {
		EVP_MD_CTX_free(ctx);
		return crisp_error(err, CRISP_INTERNAL, 0, "EVP_DigestVerifyInit failed");
	}
	ok = EVP_DigestVerify(ctx, sig, slen, payload, plen);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	if (ok != 1)
		return crisp_error(err, CRISP_PERMISSION_DENIED, 0, "cryptographic signature verification failed");
	return 0;
}

int sigstore_verify_raw(const uint8_t *pem, size_t pem_len, const uint8_t *payload, size_t payload_len,
			const uint8_t *sig, size_t sig_len, char fpr[SIGSTORE_FPR_MAX + 1], const char **key_type,
			crisp_err_t *err)
{
	EVP_PKEY *k;
	const char *type;
	int rc;

	if (load_key(pem, pem_len, &k, &type, err) != 0)
		return -1;
	rc = verify_with(k, type, payload, payload_len, sig, sig_len, err);
	if (rc == 0 && fpr != NULL && key_fpr(k, fpr) != 0)
		rc = crisp_error(err, CRISP_INTERNAL, 0, "cannot encode the public key");
	if (rc == 0 && key_type != NULL)
		*key_type = type;
	EVP_PKEY_free(k);
	return rc;
}

struct keyset {
	size_t n;
	EVP_PKEY **k;
	const char **type;
};

static void keyset_free(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		EVP_PKEY_free(ks->k[i]);
	free(ks->k);
	free(ks->type);
	memset(ks, 0, sizeof *ks);
}

static int keyset_load(const struct sp_requirement *req, struct keyset *ks, crisp_err_t *err)
{
	const struct sp_keys *keys = &req->keys;

	memset(ks, 0, sizeof *ks);
	if (keys->n == 0 || (keys->kind != SP_KEYS_PATHS && keys->kind != SP_KEYS_DATA))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: sigstoreSigned requirement names no keys",
				   req->where ? req->where : "requirement");
	ks->k = xcalloc(keys->n, sizeof *ks->k);
	ks->type = xcalloc(keys->n, sizeof *ks->type);
	for (size_t i = 0; i < keys->n; i++) {
		uint8_t *data = NULL;
		size_t len = 0;
		int rc;
		if (keys->kind == SP_KEYS_PATHS) {
			if (crisp_read_path(keys->paths[i], SIGSTORE_KEYFILE_MAX, "key file", &data, &len, err) != 0)
				goto fail;
			rc = load_key(data, len, &ks->k[i], &ks->type[i], err);
			free(data);
		} else {
			rc = load_key(keys->data[i].data, keys->data[i].len, &ks->k[i], &ks->type[i], err);
		}
		ks->n = i + 1;
		if (rc != 0) {
			crisp_error_wrap(err, "%s: %s[%zu]", req->where ? req->where : "requirement", keys->field, i);
			goto fail;
		}
	}
	return 0;
fail:
	keyset_free(ks);
	return -1;
}

static void add_reason(char *acc, size_t accsz, size_t idx, const char *msg)
{
	size_t l = strlen(acc);
	if (l + 1 < accsz)
		snprintf(acc + l, accsz - l, "%s[%zu] %.200s", l ? "; " : "", idx, msg);
}

int sig_verify_sigstore(const struct sp_requirement *req, const char *image_ref, const char *manifest_digest,
			const struct sigstore_sig *sigs, size_t n, struct sigstore_verified *out, crisp_err_t *err)
{
	struct keyset ks;
	char reasons[CRISP_ERR_MSG_MAX] = "";

	memset(out, 0, sizeof *out);
	if (req->type != SP_REQ_SIGSTORE_SIGNED)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "requirement is %s, not sigstoreSigned",
				   sp_req_type_name(req->type));
	if (req->needs_cert_roots || req->trust != SP_SIGSTORE_KEYS || req->rekor_keys.kind != SP_KEYS_NONE)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
				   "%s: fulcio/rekor verification is not supported on this node",
				   req->where ? req->where : "sigstoreSigned");
	if (n == 0)
		return crisp_error(err, CRISP_PERMISSION_DENIED, 0, "A signature was required, but no signature exists");
	if (keyset_load(req, &ks, err) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct sigstore_sig *s = &sigs[i];
		crisp_err_t e = CRISP_ERR_INIT;
		if (s->layer == NULL || s->layer->problem != NULL) {
			add_reason(reasons, sizeof reasons, i, s->layer ? s->layer->problem : "no layer");
			continue;
		}
		if (s->payload == NULL) {
			add_reason(reasons, sizeof reasons, i, s->fetch_error ? s->fetch_error : "payload not fetched");
			continue;
		}
		if (sigstore_payload_check(s->layer, s->payload, s->payload_len, &e) != 0) {
			add_reason(reasons, sizeof reasons, i, e.msg);
			continue;
		}
		size_t k;
		for (k = 0; k < ks.n; k++)
			if (verify_with(ks.k[k], ks.type[k], s->payload, s->payload_len, s->layer->sig, s->layer->sig_len,
					&e) == 0)
				break;
		if (k == ks.n) {
			add_reason(reasons, sizeof reasons, i, "signature does not verify with any key of the policy");
			continue;
		}
		if (sig_payload_parse_kind(s->payload, s->payload_len, SIG_PAYLOAD_COSIGN, &out->payload, &e) != 0) {
			add_reason(reasons, sizeof reasons, i, e.msg);
			continue;
		}
		if (strcmp(out->payload.manifest_digest, manifest_digest) != 0) {
			char m[CRISP_ERR_MSG_MAX];
			snprintf(m, sizeof m, "signature is for digest %s, not %s", out->payload.manifest_digest,
				 manifest_digest);
			add_reason(reasons, sizeof reasons, i, m);
			continue;
		}
		if (!sp_identity_matches(&req->identity, image_ref, out->payload.docker_reference)) {
			char m[CRISP_ERR_MSG_MAX];
			snprintf(m, sizeof m, "signature identity \"%.200s\" does not match %s (%s)",
				 out->payload.docker_reference, image_ref, sp_identity_type_name(req->identity.type));
			add_reason(reasons, sizeof reasons, i, m);
			continue;
		}
		out->index = i;
		out->key_type = ks.type[k];
		if (key_fpr(ks.k[k], out->key_fingerprint) != 0) {
			keyset_free(&ks);
			memset(out, 0, sizeof *out);
			return crisp_error(err, CRISP_INTERNAL, 0, "cannot encode the public key");
		}
		keyset_free(&ks);
		return 0;
	}
	keyset_free(&ks);
	memset(out, 0, sizeof *out);
	return crisp_error(err, CRISP_PERMISSION_DENIED, 0, "no valid sigstore signature: %.480s", reasons);
}
