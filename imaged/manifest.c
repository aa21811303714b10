/*
 * imaged: strict parsing of image manifests, indexes and configs.
 * See manifest.h for the contract and the decisions behind it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "common/util.h"
#include "imaged/manifest.h"

#define SCHEMA1_MSG "schema 1 manifests are not supported: re-push the image with a current client"
#define DIGEST_RULE "only sha256:<64 lowercase hex> is accepted"
#define PATH_SIZE 256

/* ---- errors ---------------------------------------------------------------- */

static int fail(crisp_err_t *err, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(crisp_err_t *err, const char *path, const char *fmt, ...)
{
	char msg[CRISP_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: %s", path, msg);
}

static int fail_nomem(crisp_err_t *err, const char *path)
{
	return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "%s", path);
}

/* A registry-supplied string made safe and short for a message: printable
 * ASCII only, at most ~64 bytes. */
static const char *san(char *buf, size_t n, const char *s)
{
	size_t i, o = 0;

	for (i = 0; s[i] != '\0' && o + 4 < n; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (s[i] != '\0')
		for (int k = 0; k < 3; k++)
			buf[o++] = '.';
	buf[o] = '\0';
	return buf;
}
#define S(s) san((char[72]){ 0 }, 72, (s))

/* ---- small string helpers ------------------------------------------------- */

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/*
 * Does key fold to known (ASCII) the way Go's encoding/json matches keys?
 * Go folds ASCII case and, through unicode.SimpleFold, U+017F (long s) to
 * 's' and U+212A (Kelvin sign) to 'k'.
 */
static bool key_folds_to(const char *key, const char *known)
{
	const unsigned char *k = (const unsigned char *)key;
	const char *w = known;

	while (*k != '\0') {
		char c;
		if (k[0] == 0xc5 && k[1] == 0xbf) {
			c = 's';
			k += 2;
		} else if (k[0] == 0xe2 && k[1] == 0x84 && k[2] == 0xaa) {
			c = 'k';
			k += 3;
		} else {
			c = ascii_lower((char)*k);
			k++;
		}
		if (*w == '\0' || ascii_lower(*w) != c)
			return false;
		w++;
	}
	return *w == '\0';
}

/* Refuse keys that a case-insensitive (Go) decoder would take for one we read. */
static int check_keys(json_t *obj, const char *const *known, const char *path, crisp_err_t *err)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		for (size_t i = 0; known[i] != NULL; i++)
			if (strcmp(key, known[i]) != 0 && key_folds_to(key, known[i]))
				return fail(err, path, "key \"%s\" differs only in case from \"%s\"", S(key), known[i]);
	}
	return 0;
}

static bool valid_mt_name(const char *s, size_t n)
{
	if (n == 0 || n > 127 || !ascii_alnum(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!ascii_alnum(s[i]) && strchr("!#$&-^_.+", s[i]) == NULL)
			return false;
	return true;
}

/* RFC 6838 section 4.2: type "/" subtype, restricted-name characters. */
static bool valid_media_type(const char *s)
{
	const char *slash = strchr(s, '/');

	if (slash == NULL)
		return false;
	return valid_mt_name(s, (size_t)(slash - s)) && valid_mt_name(slash + 1, strlen(slash + 1));
}

static bool valid_platform_field(const char *s, bool may_be_empty)
{
	size_t n = strlen(s);

	if (n == 0)
		return may_be_empty;
	if (n >= MF_PLATFORM_FIELD_SIZE)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!ascii_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* ---- digests -------------------------------------------------------------- */

bool mf_valid_digest(const char *s)
{
	if (s == NULL || strncmp(s, "sha256:", 7) != 0)
		return false;
	for (size_t i = 0; i < 64; i++) {
		char c = s[7 + i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return s[71] == '\0';
}

int mf_digest(const uint8_t *buf, size_t len, char out[MF_DIGEST_SIZE])
{
	/* crypto_hash_sha256 is portable code with no CPU dispatch: it needs no
	 * sodium_init() (which would read the random device). */
	unsigned char h[crypto_hash_sha256_BYTES];
	static const uint8_t empty[1];

	crypto_hash_sha256(h, buf != NULL ? buf : empty, (unsigned long long)len);
	memcpy(out, "sha256:", 7);
	crisp_hex(h, sizeof h, out + 7);
	out[MF_DIGEST_LEN] = '\0';
	return 0;
}

static int check_digest(const char *s, const char *path, crisp_err_t *err)
{
	const char *colon;

	if (mf_valid_digest(s))
		return 0;
	colon = strchr(s, ':');
	if (colon != NULL && colon != s && strncmp(s, "sha256:", 7) != 0) {
		size_t n = (size_t)(colon - s);
		return fail(err, path, "digest algorithm '%.*s' is not supported (%s)", (int)(n > 32 ? 32 : n),
			    S(s), DIGEST_RULE);
	}
	return fail(err, path, "not a sha256 digest (%s)", DIGEST_RULE);
}

/* ---- JSON field getters ---------------------------------------------------- */

/* Build a JSON path for a message (truncation is harmless there). */
static void pathf(char *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void pathf(char *dst, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, PATH_SIZE, fmt, ap);
	va_end(ap);
}

static void join(char *dst, const char *path, const char *key)
{
	pathf(dst, "%s.%s", path, key);
}

/* A string value: NUL-free (jansson refuses \u0000 without JSON_ALLOW_NUL;
 * checked again here because a C string would silently truncate) and at
 * most maxlen bytes. */
static int string_value(json_t *v, const char *path, size_t maxlen, const char **out, crisp_err_t *err)
{
	const char *s;

	if (!json_is_string(v))
		return fail(err, path, "not a string");
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return fail(err, path, "contains a NUL byte");
	if (json_string_length(v) > maxlen)
		return fail(err, path, "longer than %zu bytes", maxlen);
	*out = s;
	return 0;
}

/* Optional string member: *out NULL when absent or null. */
static int opt_string(json_t *obj, const char *key, const char *path, size_t maxlen, const char **out,
		      crisp_err_t *err)
{
	char p[PATH_SIZE];
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	join(p, path, key);
	return string_value(v, p, maxlen, out, err);
}

static int req_string(json_t *obj, const char *key, const char *path, size_t maxlen, const char **out,
		      crisp_err_t *err)
{
	char p[PATH_SIZE];

	if (opt_string(obj, key, path, maxlen, out, err) < 0)
		return -1;
	if (*out == NULL) {
		join(p, path, key);
		return fail(err, p, "missing");
	}
	return 0;
}

static int dup_string(const char *s, char **out, const char *path, crisp_err_t *err)
{
	*out = strdup(s);
	return *out == NULL ? fail_nomem(err, path) : 0;
}

static void kv_free(struct mf_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

/* An optional object of string -> string (annotations, Labels). */
static int parse_kv(json_t *obj, const char *key, const char *path, size_t maxn, struct mf_kv **out,
		    size_t *nout, crisp_err_t *err)
{
	char p[PATH_SIZE], q[PATH_SIZE];
	json_t *m = json_object_get(obj, key), *v;
	struct mf_kv *kv;
	const char *k, *s;
	size_t n = 0;

	*out = NULL;
	*nout = 0;
	if (m == NULL || json_is_null(m))
		return 0;
	join(p, path, key);
	if (!json_is_object(m))
		return fail(err, p, "not an object");
	if (json_object_size(m) > maxn)
		return fail(err, p, "%zu entries is more than the limit of %zu", json_object_size(m), maxn);
	if (json_object_size(m) == 0)
		return 0;
	kv = calloc(json_object_size(m), sizeof *kv);
	if (kv == NULL)
		return fail_nomem(err, p);
	json_object_foreach(m, k, v) {
		pathf(q, "%s[\"%s\"]", p, S(k));
		if (k[0] == '\0') {
			fail(err, p, "empty key");
			goto bad;
		}
		if (strlen(k) > MF_MAX_KEY_LEN) {
			fail(err, q, "key longer than %d bytes", MF_MAX_KEY_LEN);
			goto bad;
		}
		if (string_value(v, q, MF_MAX_VALUE_LEN, &s, err) < 0)
			goto bad;
		kv[n].key = strdup(k);
		kv[n].value = strdup(s);
		n++;
		if (kv[n - 1].key == NULL || kv[n - 1].value == NULL) {
			fail_nomem(err, p);
			goto bad;
		}
	}
	*out = kv;
	*nout = n;
	return 0;
bad:
	kv_free(kv, n);
	return -1;
}

/* ---- media types ----------------------------------------------------------- */

enum mt_id {
	MT_NONE = 0, /* unspecified: let the document decide */
	MT_OCI_MANIFEST,
	MT_OCI_INDEX,
	MT_DOCKER_MANIFEST,
	MT_DOCKER_LIST,
	MT_SCHEMA1,
	MT_OTHER,
};

static const struct {
	const char *name;
	enum mt_id id;
} doc_types[] = {
	{ MF_MT_OCI_MANIFEST, MT_OCI_MANIFEST },
	{ MF_MT_OCI_INDEX, MT_OCI_INDEX },
	{ MF_MT_DOCKER_MANIFEST, MT_DOCKER_MANIFEST },
	{ MF_MT_DOCKER_LIST, MT_DOCKER_LIST },
	{ "application/vnd.docker.distribution.manifest.v1+json", MT_SCHEMA1 },
	{ "application/vnd.docker.distribution.manifest.v1+prettyjws", MT_SCHEMA1 },
	/* What a registry says when it does not know (or for schema 1). */
	{ "application/json", MT_NONE },
	{ "application/octet-stream", MT_NONE },
	{ "text/plain", MT_NONE },
};

static const char *mt_name(enum mt_id id)
{
	for (size_t i = 0; i < ARRAY_SIZE(doc_types); i++)
		if (doc_types[i].id == id)
			return doc_types[i].name;
	return "?";
}

/* The document's own mediaType: exact match. */
static enum mt_id classify_doc_type(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(doc_types); i++)
		if (doc_types[i].id != MT_NONE && strcmp(s, doc_types[i].name) == 0)
			return doc_types[i].id;
	return MT_OTHER;
}

/* A Content-Type header: parameters dropped, white space trimmed, case
 * folded (RFC 9110 media types are case-insensitive). */
static enum mt_id classify_content_type(const char *ct, char *base, size_t basesz)
{
	size_t b = 0, e;

	base[0] = '\0';
	if (ct == NULL)
		return MT_NONE;
	while (ct[b] == ' ' || ct[b] == '\t')
		b++;
	e = b;
	while (ct[e] != '\0' && ct[e] != ';')
		e++;
	while (e > b && (ct[e - 1] == ' ' || ct[e - 1] == '\t'))
		e--;
	if (e == b)
		return MT_NONE;
	if (e - b >= basesz)
		e = b + basesz - 1;
	for (size_t i = b; i < e; i++)
		base[i - b] = ascii_lower(ct[i]);
	base[e - b] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(doc_types); i++)
		if (strcmp(base, doc_types[i].name) == 0)
			return doc_types[i].id;
	return MT_OTHER;
}

static bool mt_is_index(enum mt_id id)
{
	return id == MT_OCI_INDEX || id == MT_DOCKER_LIST;
}

static const struct {
	const char *name;
	enum mf_compression comp;
	bool foreign;
} layer_types[] = {
	{ "application/vnd.oci.image.layer.v1.tar", MF_COMP_NONE, false },
	{ "application/vnd.oci.image.layer.v1.tar+gzip", MF_COMP_GZIP, false },
	{ "application/vnd.oci.image.layer.v1.tar+zstd", MF_COMP_ZSTD, false },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar", MF_COMP_NONE, true },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", MF_COMP_GZIP, true },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", MF_COMP_ZSTD, true },
	{ "application/vnd.docker.image.rootfs.diff.tar.gzip", MF_COMP_GZIP, false },
	/* Not in Docker's spec, but written by tools and accepted by containerd. */
	{ "application/vnd.docker.image.rootfs.diff.tar", MF_COMP_NONE, false },
	{ "application/vnd.docker.image.rootfs.diff.tar.zstd", MF_COMP_ZSTD, false },
	{ "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", MF_COMP_GZIP, true },
	{ "application/vnd.docker.image.rootfs.foreign.diff.tar", MF_COMP_NONE, true },
};

/* ---- descriptors ----------------------------------------------------------- */

enum role { ROLE_CONFIG, ROLE_LAYER, ROLE_ENTRY, ROLE_SUBJECT };

static const char *const descriptor_keys[] = { "mediaType", "digest", "size", "urls", "annotations",
					      "platform", "data", "artifactType", NULL };
static const char *const platform_keys[] = { "architecture", "os", "variant", "os.version", "os.features",
					    "features", NULL };

static void descriptor_free(struct mf_descriptor *d)
{
	kv_free(d->annotations, d->nannotations);
	memset(d, 0, sizeof *d);
}

static int platform_field(json_t *obj, const char *key, const char *path, bool required, char *dst,
			  crisp_err_t *err)
{
	char p[PATH_SIZE];
	const char *s;

	if ((required ? req_string : opt_string)(obj, key, path, 255, &s, err) < 0)
		return -1;
	if (s == NULL)
		return 0;
	if (!valid_platform_field(s, !required)) {
		join(p, path, key);
		return fail(err, p, "'%s' is not a valid platform name ([A-Za-z0-9._-], %d bytes at most)", S(s),
			    MF_PLATFORM_FIELD_SIZE - 1);
	}
	crisp_strlcpy(dst, s, MF_PLATFORM_FIELD_SIZE);
	return 0;
}

static int parse_platform(json_t *v, const char *path, struct mf_platform *out, crisp_err_t *err)
{
	char p[PATH_SIZE];
	const char *s;
	json_t *f;

	if (!json_is_object(v))
		return fail(err, path, "not an object");
	if (check_keys(v, platform_keys, path, err) < 0 ||
	    platform_field(v, "architecture", path, true, out->arch, err) < 0 ||
	    platform_field(v, "os", path, true, out->os, err) < 0 ||
	    platform_field(v, "variant", path, false, out->variant, err) < 0)
		return -1;
	/* Ignored for Linux, but must be well-formed. */
	if (opt_string(v, "os.version", path, 255, &s, err) < 0)
		return -1;
	f = json_object_get(v, "os.features");
	if (f != NULL && !json_is_null(f)) {
		join(p, path, "os.features");
		if (!json_is_array(f) || json_array_size(f) > 64)
			return fail(err, p, "not an array of at most 64 strings");
		for (size_t i = 0; i < json_array_size(f); i++)
			if (string_value(json_array_get(f, i), p, 255, &s, err) < 0)
				return -1;
	}
	return 0;
}

static int parse_descriptor(json_t *d, const char *path, enum role role, struct mf_descriptor *out,
			    crisp_err_t *err)
{
	char p[PATH_SIZE];
	const char *mt, *dg, *s;
	json_t *v;
	json_int_t n;
	uint64_t max = MF_MAX_MANIFEST_SIZE;
	const char *maxname = "4 MiB";

	memset(out, 0, sizeof *out);
	if (!json_is_object(d))
		return fail(err, path, "not an object");
	if (check_keys(d, descriptor_keys, path, err) < 0)
		return -1;

	if (req_string(d, "mediaType", path, MF_MEDIA_TYPE_SIZE - 1, &mt, err) < 0)
		return -1;
	join(p, path, "mediaType");
	if (!valid_media_type(mt))
		return fail(err, p, "'%s' is not a valid media type", S(mt));
	crisp_strlcpy(out->media_type, mt, sizeof out->media_type);

	if (req_string(d, "digest", path, 255, &dg, err) < 0)
		return -1;
	join(p, path, "digest");
	if (check_digest(dg, p, err) < 0)
		return -1;
	crisp_strlcpy(out->digest, dg, sizeof out->digest);

	/* What the descriptor points at decides its size bound. */
	switch (role) {
	case ROLE_CONFIG:
		join(p, path, "mediaType");
		if (strcmp(mt, MF_MT_OCI_CONFIG) != 0 && strcmp(mt, MF_MT_DOCKER_CONFIG) != 0)
			return fail(err, p, "not a container image (config media type '%s')", S(mt));
		out->type = MF_DESC_CONFIG;
		max = MF_MAX_CONFIG_SIZE;
		maxname = "8 MiB";
		break;
	case ROLE_LAYER:
		out->type = MF_DESC_LAYER;
		max = MF_MAX_LAYER_SIZE;
		maxname = "64 GiB";
		break;
	case ROLE_ENTRY:
		switch (classify_doc_type(mt)) {
		case MT_OCI_MANIFEST:
		case MT_DOCKER_MANIFEST:
			out->type = MF_DESC_MANIFEST;
			break;
		case MT_OCI_INDEX:
		case MT_DOCKER_LIST:
			out->type = MF_DESC_INDEX;
			break;
		default:
			/* Ignored by selection; never fetched. */
			out->type = MF_DESC_OTHER;
			max = MF_MAX_LAYER_SIZE;
			maxname = "64 GiB";
			break;
		}
		break;
	case ROLE_SUBJECT:
		out->type = MF_DESC_OTHER;
		break;
	}

	v = json_object_get(d, "size");
	join(p, path, "size");
	if (v == NULL)
		return fail(err, p, "missing");
	if (!json_is_integer(v))
		return fail(err, p, "not an integer");
	n = json_integer_value(v);
	if (n < 0)
		return fail(err, p, "negative");
	if ((uint64_t)n > max)
		return fail(err, p, "%lld is larger than the %s limit", (long long)n, maxname);
	out->size = (uint64_t)n;

	v = json_object_get(d, "urls");
	if (v != NULL && !json_is_null(v)) {
		join(p, path, "urls");
		if (!json_is_array(v))
			return fail(err, p, "not an array");
		if (json_array_size(v) > 0)
			return fail(err, p,
				    "blobs served from external URLs are not supported "
				    "(crisp fetches every blob from the registry by digest)");
	}

	if (opt_string(d, "artifactType", path, MF_MEDIA_TYPE_SIZE - 1, &s, err) < 0)
		return -1;
	if (opt_string(d, "data", path, MF_MAX_MANIFEST_SIZE, &s, err) < 0)
		return -1;

	v = json_object_get(d, "platform");
	if (v != NULL && !json_is_null(v)) {
		join(p, path, "platform");
		if (parse_platform(v, p, &out->platform, err) < 0)
			return -1;
		out->has_platform = true;
	}

	if (role == ROLE_LAYER) {
		size_t i;
		for (i = 0; i < ARRAY_SIZE(layer_types); i++)
			if (strcmp(mt, layer_types[i].name) == 0)
				break;
		join(p, path, "mediaType");
		if (i == ARRAY_SIZE(layer_types)) {
			size_t l = strlen(mt);
			if (l > 10 && strcmp(mt + l - 10, "+encrypted") == 0)
				return fail(err, p, "encrypted layers are not supported ('%s')", S(mt));
			return fail(err, p, "unsupported layer media type '%s'", S(mt));
		}
		out->comp = layer_types[i].comp;
		out->foreign = layer_types[i].foreign;
	}

	/* Last: nothing after it can fail, so out owns nothing on error. */
	return parse_kv(d, "annotations", path, MF_MAX_ANNOTATIONS, &out->annotations, &out->nannotations, err);
}

/* ---- manifests and indexes ------------------------------------------------- */

static const char *const top_keys[] = { "schemaVersion", "mediaType", "config", "layers", "manifests",
				       "annotations", "subject", "artifactType", "fsLayers", NULL };

void mf_manifest_free(struct mf_manifest *m)
{
	if (m == NULL)
		return;
	descriptor_free(&m->config);
	for (size_t i = 0; i < m->nlayers; i++)
		descriptor_free(&m->layers[i]);
	free(m->layers);
	for (size_t i = 0; i < m->nmanifests; i++)
		descriptor_free(&m->manifests[i]);
	free(m->manifests);
	kv_free(m->annotations, m->nannotations);
	memset(m, 0, sizeof *m);
}

static int parse_descriptor_array(json_t *root, const char *key, const char *path, size_t max, enum role role,
				  struct mf_descriptor **out, size_t *nout, crisp_err_t *err)
{
	char p[PATH_SIZE], q[PATH_SIZE];
	json_t *a = json_object_get(root, key);
	size_t n;

	join(p, path, key);
	if (a == NULL)
		return fail(err, p, "missing");
	if (!json_is_array(a))
		return fail(err, p, "not an array");
	n = json_array_size(a);
	if (n > max)
		return fail(err, p, "%zu entries is more than the limit of %zu", n, max);
	if (n == 0)
		return 0;
	*out = calloc(n, sizeof **out);
	if (*out == NULL)
		return fail_nomem(err, p);
	for (size_t i = 0; i < n; i++) {
		pathf(q, "%s[%zu]", p, i);
		if (parse_descriptor(json_array_get(a, i), q, role, &(*out)[i], err) < 0)
			return -1; /* the caller frees the *nout entries parsed so far */
		*nout = i + 1;
	}
	return 0;
}

static int parse_root(json_t *root, enum mt_id ctid, const char *ctbase, unsigned depth, struct mf_manifest *out,
		      crisp_err_t *err)
{
	const char *docmt, *path, *s;
	enum mt_id docid = MT_NONE, eff;
	json_t *v;
	json_int_t sv;
	bool has_m, has_c;

	if (!json_is_object(root))
		return fail(err, "manifest", "not a JSON object");
	if (check_keys(root, top_keys, "manifest", err) < 0)
		return -1;

	v = json_object_get(root, "schemaVersion");
	if (v == NULL)
		return fail(err, "manifest.schemaVersion", "missing");
	if (!json_is_integer(v))
		return fail(err, "manifest.schemaVersion", "not an integer");
	sv = json_integer_value(v);
	if (sv == 1)
		return fail(err, "manifest", SCHEMA1_MSG);
	if (sv != 2)
		return fail(err, "manifest.schemaVersion", "%lld is not supported (only 2)", (long long)sv);

	if (opt_string(root, "mediaType", "manifest", MF_MEDIA_TYPE_SIZE - 1, &docmt, err) < 0)
		return -1;
	if (docmt != NULL) {
		docid = classify_doc_type(docmt);
		if (docid == MT_SCHEMA1)
			return fail(err, "manifest", SCHEMA1_MSG);
		if (docid == MT_OTHER)
			return fail(err, "manifest.mediaType", "unsupported media type '%s'", S(docmt));
	}
	if (json_object_get(root, "fsLayers") != NULL)
		return fail(err, "manifest.fsLayers", "a schema 1 field in a schema 2 document");

	if (ctid != MT_NONE && docid != MT_NONE && ctid != docid)
		return fail(err, "manifest.mediaType", "'%s' does not match the Content-Type '%s'", docmt, S(ctbase));
	eff = docid != MT_NONE ? docid : ctid;
	has_m = json_object_get(root, "manifests") != NULL;
	has_c = json_object_get(root, "config") != NULL || json_object_get(root, "layers") != NULL;
	if (docid == MT_NONE && (eff == MT_DOCKER_MANIFEST || eff == MT_DOCKER_LIST))
		return fail(err, "manifest.mediaType", "missing (required in Docker schema 2 documents)");
	if (eff == MT_NONE) {
		/* OCI without mediaType and no useful Content-Type: the shape decides. */
		if (has_m && !has_c)
			eff = MT_OCI_INDEX;
		else if (has_c && !has_m)
			eff = MT_OCI_MANIFEST;
		else
			return fail(err, "manifest",
				    "no mediaType, and its fields are those of neither an image manifest nor an index");
	}
	if (mt_is_index(eff)) {
		path = "index";
		if (json_object_get(root, "config") != NULL)
			return fail(err, "index.config", "an image manifest field in an index");
		if (json_object_get(root, "layers") != NULL)
			return fail(err, "index.layers", "an image manifest field in an index");
		if (depth >= MF_MAX_INDEX_DEPTH)
			return fail(err, "index", "nested more than %d deep", MF_MAX_INDEX_DEPTH);
	} else {
		path = "manifest";
		if (has_m)
			return fail(err, "manifest.manifests", "an index field in an image manifest");
	}
	out->kind = mt_is_index(eff) ? MF_INDEX : MF_MANIFEST;
	out->docker = eff == MT_DOCKER_MANIFEST || eff == MT_DOCKER_LIST;
	out->depth = depth;
	crisp_strlcpy(out->media_type, mt_name(eff), sizeof out->media_type);

	if (opt_string(root, "artifactType", path, MF_MEDIA_TYPE_SIZE - 1, &s, err) < 0)
		return -1;
	if (s != NULL && out->kind == MF_MANIFEST)
		return fail(err, "manifest.artifactType", "not a container image (artifact type '%s')", S(s));
	v = json_object_get(root, "subject");
	if (v != NULL && !json_is_null(v)) {
		struct mf_descriptor subj;
		char p[PATH_SIZE];
		join(p, path, "subject");
		if (parse_descriptor(v, p, ROLE_SUBJECT, &subj, err) < 0)
			return -1;
		descriptor_free(&subj);
	}

	if (out->kind == MF_MANIFEST) {
		v = json_object_get(root, "config");
		if (v == NULL)
			return fail(err, "manifest.config", "missing");
		if (parse_descriptor(v, "manifest.config", ROLE_CONFIG, &out->config, err) < 0)
			return -1;
		if (parse_descriptor_array(root, "layers", path, MF_MAX_LAYERS, ROLE_LAYER, &out->layers,
					   &out->nlayers, err) < 0)
			return -1;
	} else {
		if (parse_descriptor_array(root, "manifests", path, MF_MAX_INDEX_ENTRIES, ROLE_ENTRY,
					   &out->manifests, &out->nmanifests, err) < 0)
			return -1;
	}
	return parse_kv(root, "annotations", path, MF_MAX_ANNOTATIONS, &out->annotations, &out->nannotations, err);
}

static int parse_manifest(const char *content_type, const uint8_t *buf, size_t len, unsigned depth,
			  struct mf_manifest *out, crisp_err_t *err)
{
	char ctbase[MF_MEDIA_TYPE_SIZE];
	enum mt_id ctid;
	json_error_t je;
	json_t *root;
	int r;

	memset(out, 0, sizeof *out);
	if (buf == NULL && len > 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "manifest: no buffer");
	if (len > MF_MAX_MANIFEST_SIZE)
		return fail(err, "manifest", "%zu bytes is larger than the 4 MiB limit", len);
	ctid = classify_content_type(content_type, ctbase, sizeof ctbase);
	if (ctid == MT_SCHEMA1)
		return fail(err, "manifest", SCHEMA1_MSG);
	if (ctid == MT_OTHER)
		return fail(err, "manifest", "unsupported media type '%s' (Content-Type)", S(ctbase));
	if (len == 0)
		return fail(err, "manifest", "empty document");

	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return fail(err, "manifest", "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
	r = parse_root(root, ctid, ctbase, depth, out, err);
	json_decref(root);
	if (r < 0) {
		mf_manifest_free(out);
		return -1;
	}
	mf_digest(buf, len, out->digest);
	out->size = len;
	return 0;
}

int mf_parse(const char *content_type, const uint8_t *buf, size_t len, struct mf_manifest *out,
	     crisp_err_t *err)
{
	return parse_manifest(content_type, buf, len, 0, out, err);
}

int mf_verify_blob(const struct mf_descriptor *d, const uint8_t *buf, size_t len, crisp_err_t *err)
{
	char dg[MF_DIGEST_SIZE];

	if ((uint64_t)len != d->size)
		return crisp_error(err, CRISP_DATA_LOSS, 0, "blob %s: %zu bytes, but its descriptor says %llu",
				   d->digest, len, (unsigned long long)d->size);
	mf_digest(buf, len, dg);
	if (strcmp(dg, d->digest) != 0)
		return crisp_error(err, CRISP_DATA_LOSS, 0, "blob %s: content has digest %s", d->digest, dg);
	return 0;
}

int mf_parse_child(const struct mf_manifest *parent, const struct mf_descriptor *entry,
		   const char *content_type, const uint8_t *buf, size_t len, struct mf_manifest *out,
		   crisp_err_t *err)
{
	memset(out, 0, sizeof *out);
	if (parent == NULL || parent->kind != MF_INDEX || entry == NULL || entry < parent->manifests ||
	    entry >= parent->manifests + parent->nmanifests)
		return crisp_error(err, CRISP_INTERNAL, 0, "mf_parse_child: entry is not one of the index's");
	if (entry->type != MF_DESC_MANIFEST && entry->type != MF_DESC_INDEX)
		return fail(err, "index entry", "'%s' is not a manifest or index", S(entry->media_type));
	if (mf_verify_blob(entry, buf, len, err) < 0)
		return -1;
	/* No Content-Type: the descriptor's media type stands in for it. */
	if (content_type == NULL || content_type[0] == '\0')
		content_type = entry->media_type;
	if (parse_manifest(content_type, buf, len, parent->depth + 1, out, err) < 0)
		return -1;
	if (strcmp(out->media_type, entry->media_type) != 0) {
		fail(err, "manifest.mediaType", "'%s' does not match the index entry's '%s'", out->media_type,
		     S(entry->media_type));
		mf_manifest_free(out);
		return -1;
	}
	return 0;
}

/* ---- platforms -------------------------------------------------------------- */

static void lower_copy(char *dst, const char *src)
{
	size_t i = 0;

	if (src != NULL)
		for (; src[i] != '\0' && i + 1 < MF_PLATFORM_FIELD_SIZE; i++)
			dst[i] = ascii_lower(src[i]);
	dst[i] = '\0';
}

void mf_platform_normalize(const char *os, const char *arch, const char *variant, struct mf_platform *out)
{
	char *a = out->arch, *v = out->variant;

	lower_copy(out->os, os);
	lower_copy(a, arch);
	lower_copy(v, variant);
	if (strcmp(out->os, "macos") == 0)
		strcpy(out->os, "darwin");
	if (strcmp(a, "i386") == 0) {
		strcpy(a, "386");
		v[0] = '\0';
	} else if (!strcmp(a, "x86_64") || !strcmp(a, "x86-64") || !strcmp(a, "amd64")) {
		strcpy(a, "amd64");
		if (strcmp(v, "v1") == 0)
			v[0] = '\0';
	} else if (!strcmp(a, "aarch64") || !strcmp(a, "arm64")) {
		strcpy(a, "arm64");
		if (!strcmp(v, "") || !strcmp(v, "8") || !strcmp(v, "v8") || !strcmp(v, "v8.0"))
			strcpy(v, "v8");
		else if (!strcmp(v, "9") || !strcmp(v, "9.0") || !strcmp(v, "v9.0"))
			strcpy(v, "v9");
	} else if (strcmp(a, "armhf") == 0) {
		strcpy(a, "arm");
		strcpy(v, "v7");
	} else if (strcmp(a, "armel") == 0) {
		strcpy(a, "arm");
		strcpy(v, "v6");
	} else if (strcmp(a, "arm") == 0) {
		if (!strcmp(v, "") || !strcmp(v, "7"))
			strcpy(v, "v7");
		else if (!strcmp(v, "5") || !strcmp(v, "6") || !strcmp(v, "8")) {
			v[1] = v[0];
			v[0] = 'v';
			v[2] = '\0';
		}
	}
}

void mf_platform_default(struct mf_platform *out)
{
	const char *arch = "unknown", *variant = "";

#if defined(__x86_64__)
	arch = "amd64";
#elif defined(__aarch64__)
	arch = "arm64";
	variant = "v8";
#elif defined(__arm__)
	arch = "arm";
#if defined(__ARM_ARCH) && __ARM_ARCH >= 7
	variant = "v7";
#elif defined(__ARM_ARCH) && __ARM_ARCH == 6
	variant = "v6";
#else
	variant = "v5";
#endif
#elif defined(__i386__)
	arch = "386";
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
	arch = "ppc64le";
#elif defined(__s390x__)
	arch = "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
	arch = "riscv64";
#endif
	mf_platform_normalize("linux", arch, variant, out);
}

static void platform_fmt(char *dst, size_t n, const struct mf_platform *p)
{
	snprintf(dst, n, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "", p->variant);
}

static bool platform_eq(const struct mf_platform *a, const struct mf_platform *b)
{
	return !strcmp(a->os, b->os) && !strcmp(a->arch, b->arch) && !strcmp(a->variant, b->variant);
}

int mf_select_platform(const struct mf_manifest *index, const char *os, const char *arch, const char *variant,
		       const struct mf_descriptor **out, crisp_err_t *err)
{
	struct mf_platform node, ep;
	char want[3 * MF_PLATFORM_FIELD_SIZE], one[3 * MF_PLATFORM_FIELD_SIZE], avail[320];
	size_t used = 0;
	bool truncated = false;

	*out = NULL;
	if (index == NULL || index->kind != MF_INDEX)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "platform selection needs an index");
	if (os == NULL || arch == NULL || os[0] == '\0' || arch[0] == '\0')
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "platform selection needs an os and architecture");
	mf_platform_normalize(os, arch, variant, &node);
	for (size_t i = 0; i < index->nmanifests; i++) {
		const struct mf_descriptor *d = &index->manifests[i];
		if ((d->type != MF_DESC_MANIFEST && d->type != MF_DESC_INDEX) || !d->has_platform)
			continue;
		mf_platform_normalize(d->platform.os, d->platform.arch, d->platform.variant, &ep);
		if (platform_eq(&node, &ep)) {
			*out = d;
			return 0;
		}
	}

	/* Nothing: name what there is, once each, in index order. */
	avail[0] = '\0';
	for (size_t i = 0; i < index->nmanifests; i++) {
		const struct mf_descriptor *d = &index->manifests[i];
		bool seen = false;
		if ((d->type != MF_DESC_MANIFEST && d->type != MF_DESC_INDEX) || !d->has_platform)
			continue;
		mf_platform_normalize(d->platform.os, d->platform.arch, d->platform.variant, &ep);
		for (size_t j = 0; j < i && !seen; j++) {
			const struct mf_descriptor *e = &index->manifests[j];
			struct mf_platform q;
			if ((e->type != MF_DESC_MANIFEST && e->type != MF_DESC_INDEX) || !e->has_platform)
				continue;
			mf_platform_normalize(e->platform.os, e->platform.arch, e->platform.variant, &q);
			seen = platform_eq(&ep, &q);
		}
		if (seen)
			continue;
		platform_fmt(one, sizeof one, &ep);
		if (used + strlen(one) + 2 >= sizeof avail - 5) {
			truncated = true;
			break;
		}
		used += (size_t)snprintf(avail + used, sizeof avail - used, "%s%s", used ? ", " : "", one);
	}
	if (truncated)
		snprintf(avail + used, sizeof avail - used, ", ...");
	platform_fmt(want, sizeof want, &node);
	return crisp_error(err, CRISP_NOT_FOUND, 0, "no image for %s in index (available: %s)", want,
			   used ? avail : "none");
}

/* ---- image config ------------------------------------------------------------- */

static const char *const config_top_keys[] = { "architecture", "os", "variant", "config", "rootfs", NULL };
static const char *const config_keys[] = { "User", "Env", "Entrypoint", "Cmd", "WorkingDir", "Labels",
					  "ExposedPorts", "Volumes", "StopSignal", NULL };
static const char *const rootfs_keys[] = { "type", "diff_ids", NULL };

static void strv_free(struct mf_strv *sv)
{
	if (sv->v != NULL)
		for (size_t i = 0; i < sv->n; i++)
			free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

static int strv_alloc(struct mf_strv *sv, size_t n, const char *path, crisp_err_t *err)
{
	sv->v = calloc(n + 1, sizeof *sv->v);
	sv->n = 0;
	return sv->v == NULL ? fail_nomem(err, path) : 0;
}

/* An optional array of strings (Env, Entrypoint, Cmd); null = absent. */
static int parse_strv(json_t *obj, const char *key, const char *path, size_t maxn, bool env, struct mf_strv *out,
		      crisp_err_t *err)
{
	char p[PATH_SIZE], q[PATH_SIZE];
	json_t *a = json_object_get(obj, key);
	const char *s;

	if (a == NULL || json_is_null(a))
		return 0;
	join(p, path, key);
	if (!json_is_array(a))
		return fail(err, p, "not an array");
	if (json_array_size(a) > maxn)
		return fail(err, p, "%zu entries is more than the limit of %zu", json_array_size(a), maxn);
	if (strv_alloc(out, json_array_size(a), p, err) < 0)
		return -1;
	for (size_t i = 0; i < json_array_size(a); i++) {
		pathf(q, "%s[%zu]", p, i);
		if (string_value(json_array_get(a, i), q, MF_MAX_ARG_LEN, &s, err) < 0)
			return -1;
		if (env && (s[0] == '=' || strchr(s, '=') == NULL))
			return fail(err, q, "'%s' is not KEY=value", S(s));
		if (dup_string(s, &out->v[i], q, err) < 0)
			return -1;
		out->n = i + 1;
	}
	return 0;
}

/* An optional object used as a set (ExposedPorts, Volumes): keys kept,
 * values must be objects (Docker writes {}). */
static int parse_set(json_t *obj, const char *key, const char *path, size_t maxn, size_t maxlen, struct mf_strv *out,
		     crisp_err_t *err)
{
	char p[PATH_SIZE], q[PATH_SIZE];
	json_t *m = json_object_get(obj, key), *v;
	const char *k;
	size_t i = 0;

	if (m == NULL || json_is_null(m))
		return 0;
	join(p, path, key);
	if (!json_is_object(m))
		return fail(err, p, "not an object");
	if (json_object_size(m) > maxn)
		return fail(err, p, "%zu entries is more than the limit of %zu", json_object_size(m), maxn);
	if (strv_alloc(out, json_object_size(m), p, err) < 0)
		return -1;
	json_object_foreach(m, k, v) {
		pathf(q, "%s[\"%s\"]", p, S(k));
		if (k[0] == '\0' || strlen(k) > maxlen)
			return fail(err, q, "key is empty or longer than %zu bytes", maxlen);
		if (!json_is_object(v) && !json_is_null(v))
			return fail(err, q, "not an object");
		if (dup_string(k, &out->v[i], q, err) < 0)
			return -1;
		out->n = ++i;
	}
	return 0;
}

static int opt_dup(json_t *obj, const char *key, const char *path, size_t maxlen, char **out, crisp_err_t *err)
{
	const char *s;

	if (opt_string(obj, key, path, maxlen, &s, err) < 0)
		return -1;
	return s == NULL ? 0 : dup_string(s, out, path, err);
}

static int parse_config_root(json_t *root, struct mf_config *out, crisp_err_t *err)
{
	json_t *c, *rootfs, *ids;
	const char *s;

	if (!json_is_object(root))
		return fail(err, "config", "not a JSON object");
	if (check_keys(root, config_top_keys, "config", err) < 0 ||
	    platform_field(root, "architecture", "config", true, out->platform.arch, err) < 0 ||
	    platform_field(root, "os", "config", true, out->platform.os, err) < 0 ||
	    platform_field(root, "variant", "config", false, out->platform.variant, err) < 0)
		return -1;

	c = json_object_get(root, "config");
	if (c != NULL && !json_is_null(c)) {
		const char *p = "config.config";
		if (!json_is_object(c))
			return fail(err, p, "not an object");
		if (check_keys(c, config_keys, p, err) < 0 || opt_dup(c, "User", p, 255, &out->user, err) < 0 ||
		    parse_strv(c, "Env", p, MF_MAX_ENV, true, &out->env, err) < 0 ||
		    parse_strv(c, "Entrypoint", p, MF_MAX_ARGS, false, &out->entrypoint, err) < 0 ||
		    parse_strv(c, "Cmd", p, MF_MAX_ARGS, false, &out->cmd, err) < 0 ||
		    opt_dup(c, "WorkingDir", p, MF_MAX_PATH_LEN, &out->working_dir, err) < 0 ||
		    parse_kv(c, "Labels", p, MF_MAX_LABELS, &out->labels, &out->nlabels, err) < 0 ||
		    parse_set(c, "ExposedPorts", p, MF_MAX_PORTS, 64, &out->exposed_ports, err) < 0 ||
		    parse_set(c, "Volumes", p, MF_MAX_VOLUMES, MF_MAX_PATH_LEN, &out->volumes, err) < 0 ||
		    opt_dup(c, "StopSignal", p, 32, &out->stop_signal, err) < 0)
			return -1;
	}

	rootfs = json_object_get(root, "rootfs");
	if (rootfs == NULL || json_is_null(rootfs))
		return fail(err, "config.rootfs", "missing");
	if (!json_is_object(rootfs))
		return fail(err, "config.rootfs", "not an object");
	if (check_keys(rootfs, rootfs_keys, "config.rootfs", err) < 0 ||
	    req_string(rootfs, "type", "config.rootfs", 64, &s, err) < 0)
		return -1;
	if (strcmp(s, "layers") != 0)
		return fail(err, "config.rootfs.type", "'%s' is not supported (only \"layers\")", S(s));
	ids = json_object_get(rootfs, "diff_ids");
	if (ids == NULL)
		return fail(err, "config.rootfs.diff_ids", "missing");
	if (!json_is_array(ids))
		return fail(err, "config.rootfs.diff_ids", "not an array");
	if (json_array_size(ids) > MF_MAX_LAYERS)
		return fail(err, "config.rootfs.diff_ids", "%zu entries is more than the limit of %d",
			    json_array_size(ids), MF_MAX_LAYERS);
	if (json_array_size(ids) > 0) {
		out->diff_ids = calloc(json_array_size(ids), sizeof *out->diff_ids);
		if (out->diff_ids == NULL)
			return fail_nomem(err, "config.rootfs.diff_ids");
	}
	for (size_t i = 0; i < json_array_size(ids); i++) {
		char q[PATH_SIZE];
		pathf(q, "config.rootfs.diff_ids[%zu]", i);
		if (string_value(json_array_get(ids, i), q, 255, &s, err) < 0 || check_digest(s, q, err) < 0)
			return -1;
		crisp_strlcpy(out->diff_ids[i], s, MF_DIGEST_SIZE);
		out->ndiff_ids = i + 1;
	}
	return 0;
}

int mf_config_parse(const uint8_t *buf, size_t len, struct mf_config *out, crisp_err_t *err)
{
	json_error_t je;
	json_t *root;
	int r;

	memset(out, 0, sizeof *out);
	if (buf == NULL && len > 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "config: no buffer");
	if (len > MF_MAX_CONFIG_SIZE)
		return fail(err, "config", "%zu bytes is larger than the 8 MiB limit", len);
	if (len == 0)
		return fail(err, "config", "empty document");
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return fail(err, "config", "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
	r = parse_config_root(root, out, err);
	json_decref(root);
	if (r < 0)
		mf_config_free(out);
	return r;
}

void mf_config_free(struct mf_config *c)
{
	if (c == NULL)
		return;
	free(c->user);
	strv_free(&c->env);
	strv_free(&c->entrypoint);
	strv_free(&c->cmd);
	free(c->working_dir);
	kv_free(c->labels, c->nlabels);
	strv_free(&c->exposed_ports);
	strv_free(&c->volumes);
	free(c->stop_signal);
	free(c->diff_ids);
	memset(c, 0, sizeof *c);
}

int mf_config_check_layers(const struct mf_config *c, const struct mf_manifest *m, crisp_err_t *err)
{
	if (m->kind != MF_MANIFEST)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "config: checked against an index, not a manifest");
	if (c->ndiff_ids != m->nlayers)
		return fail(err, "config.rootfs.diff_ids", "%zu entries, but the manifest has %zu layers", c->ndiff_ids,
			    m->nlayers);
	return 0;
}

int mf_config_check_platform(const struct mf_config *c, const char *os, const char *arch, const char *variant,
			     crisp_err_t *err)
{
	struct mf_platform node, img;
	char want[3 * MF_PLATFORM_FIELD_SIZE], have[3 * MF_PLATFORM_FIELD_SIZE];

	mf_platform_normalize(os, arch, variant, &node);
	mf_platform_normalize(c->platform.os, c->platform.arch, c->platform.variant, &img);
	/* The variant only when the image names one (many configs omit it). */
	if (strcmp(node.os, img.os) == 0 && strcmp(node.arch, img.arch) == 0 &&
	    (c->platform.variant[0] == '\0' || strcmp(node.variant, img.variant) == 0))
		return 0;
	platform_fmt(want, sizeof want, &node);
	platform_fmt(have, sizeof have, &img);
	return fail(err, "config", "image is for %s, not %s", have, want);
}
