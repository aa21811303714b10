/*
 * crisp: containers-policy.json(5) parser and evaluator (see sigpolicy.h).
 *
 * Behaviour follows containers/image signature/policy_config.go,
 * policy_config_sigstore.go, policy_reference_match.go, policy_eval.go
 * (requirementsForImageRef) and docker/policyconfiguration/naming.go; where
 * crisp is stricter, the comment at the check says so.
 *
 * The JSON is read with jansson (JSON_REJECT_DUPLICATES) and copied into
 * structures owned here; no jansson object outlives sp_policy_parse.
 */
#include "policy/sigpolicy.h"

#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_BUF 400
#define KEY_SHOWN_MAX 160
#define FILE_PATH_MAX 4096

/* ---- JSON paths for error messages ------------------------------------- */

struct jpath {
	char buf[PATH_BUF];
	size_t len;
	bool truncated;
};

static void jp_append(struct jpath *jp, const char *s, size_t n)
{
	if (jp->truncated)
		return;
	if (jp->len + n + 4 >= sizeof jp->buf) {
		memcpy(jp->buf + jp->len, "...", 4);
		jp->len += 3;
		jp->truncated = true;
		return;
	}
	memcpy(jp->buf + jp->len, s, n);
	jp->len += n;
	jp->buf[jp->len] = '\0';
}

static size_t jp_field(struct jpath *jp, const char *name)
{
	size_t saved = jp->len;

	if (jp->len > 0)
		jp_append(jp, ".", 1);
	jp_append(jp, name, strlen(name));
	return saved;
}

static size_t jp_index(struct jpath *jp, size_t i)
{
	char tmp[32];
	size_t saved = jp->len;
	int n = snprintf(tmp, sizeof tmp, "[%zu]", i);

	jp_append(jp, tmp, (size_t)n);
	return saved;
}

/* ["key"], with '"', '\' and control bytes escaped and long keys cut. */
static size_t jp_key(struct jpath *jp, const char *key)
{
	size_t saved = jp->len;
	size_t kl = strlen(key);

	jp_append(jp, "[\"", 2);
	for (size_t i = 0; i < kl && i < KEY_SHOWN_MAX; i++) {
		unsigned char c = (unsigned char)key[i];
		char tmp[8];
		if (c == '"' || c == '\\') {
			tmp[0] = '\\', tmp[1] = (char)c;
			jp_append(jp, tmp, 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(tmp, sizeof tmp, "\\x%02x", c);
			jp_append(jp, tmp, 4);
		} else {
			tmp[0] = (char)c;
			jp_append(jp, tmp, 1);
		}
	}
	if (kl > KEY_SHOWN_MAX)
		jp_append(jp, "...", 3);
	jp_append(jp, "\"]", 2);
	return saved;
}

/* .name when name is a plain identifier, else ["name"]. */
static size_t jp_name(struct jpath *jp, const char *name)
{
	bool plain = name[0] != '\0' && strlen(name) <= KEY_SHOWN_MAX;

	for (const char *c = name; *c != '\0' && plain; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
		      *c == '-'))
			plain = false;
	return plain ? jp_field(jp, name) : jp_key(jp, name);
}

static void jp_restore(struct jpath *jp, size_t saved)
{
	jp->len = saved;
	jp->buf[saved] = '\0';
	jp->truncated = false;
}

static const char *jp_str(const struct jpath *jp)
{
	return jp->len > 0 ? jp->buf : "(top level)";
}

__attribute__((format(printf, 3, 4))) static int perr(crisp_err_t *err, const struct jpath *jp, const char *fmt, ...)
{
	char msg[CRISP_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: %s", jp_str(jp), msg);
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "?";
}

/* ---- small helpers ------------------------------------------------------ */

static bool in_list(const char *s, const char *const *list)
{
	for (size_t i = 0; list[i] != NULL; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

/* Every key of obj must be in allowed (NULL-terminated). */
static int check_fields(const json_t *obj, const char *const *allowed, struct jpath *jp, crisp_err_t *err)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		if (!in_list(key, allowed)) {
			size_t s = jp_name(jp, key);
			perr(err, jp, "unknown field");
			jp_restore(jp, s);
			return -1;
		}
	}
	return 0;
}

static int expect_object(const json_t *v, struct jpath *jp, crisp_err_t *err)
{
	if (!json_is_object(v))
		return perr(err, jp, "must be an object, not %s", json_type_name(v));
	return 0;
}

/* Borrowed string value of obj[name]: NULL in *out when absent and !required. */
static int get_string(const json_t *obj, const char *name, bool required, const char **out, struct jpath *jp,
		      crisp_err_t *err)
{
	json_t *v = json_object_get(obj, name);
	size_t s;

	*out = NULL;
	if (v == NULL) {
		if (!required)
			return 0;
		s = jp_field(jp, name);
		perr(err, jp, "required field is missing");
		jp_restore(jp, s);
		return -1;
	}
	if (!json_is_string(v)) {
		s = jp_field(jp, name);
		perr(err, jp, "must be a string, not %s", json_type_name(v));
		jp_restore(jp, s);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

static int get_nonempty_string(const json_t *obj, const char *name, bool required, char **out, struct jpath *jp,
			       crisp_err_t *err)
{
	const char *s;

	*out = NULL;
	if (get_string(obj, name, required, &s, jp, err) < 0)
		return -1;
	if (s == NULL)
		return 0;
	if (s[0] == '\0') {
		size_t sv = jp_field(jp, name);
		perr(err, jp, "must not be empty");
		jp_restore(jp, sv);
		return -1;
	}
	*out = strdup(s);
	if (*out == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0, "out of memory");
	return 0;
}

static int oom(crisp_err_t *err)
{
	return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0, "out of memory");
}

/* ---- freeing ------------------------------------------------------------ */

static void keys_free(struct sp_keys *k)
{
	for (size_t i = 0; i < k->n; i++) {
		if (k->paths != NULL)
			free(k->paths[i]);
		if (k->data != NULL)
			free(k->data[i].data);
	}
	free(k->paths);
	free(k->data);
	memset(k, 0, sizeof *k);
}

static void identity_free(struct sp_identity *id)
{
	free(id->docker_reference);
	free(id->docker_repository);
	free(id->prefix);
	free(id->signed_prefix);
	memset(id, 0, sizeof *id);
}

static void req_free(struct sp_requirement *r)
{
	free(r->where);
	keys_free(&r->keys);
	keys_free(&r->fulcio.ca);
	free(r->fulcio.oidc_issuer);
	free(r->fulcio.subject_email);
	keys_free(&r->pki.ca_roots);
	keys_free(&r->pki.ca_intermediates);
	free(r->pki.subject_email);
	free(r->pki.subject_hostname);
	keys_free(&r->rekor_keys);
	identity_free(&r->identity);
}

static void reqlist_free(struct sp_reqlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		req_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void sp_policy_free(struct sp_policy *p)
{
	if (p == NULL)
		return;
	reqlist_free(&p->def);
	reqlist_free(&p->docker_default);
	for (size_t i = 0; i < p->n_scopes; i++) {
		free(p->scopes[i].scope);
		reqlist_free(&p->scopes[i].reqs);
	}
	free(p->scopes);
	free(p);
}

/* ---- key sources -------------------------------------------------------- */

static int parse_abs_path(const json_t *v, struct jpath *jp, char **out, crisp_err_t *err)
{
	const char *s;

	if (!json_is_string(v))
		return perr(err, jp, "must be a string, not %s", json_type_name(v));
	s = json_string_value(v);
	/* c/image takes any string; a relative path would depend on the
	 * verifier's working directory, so crisp wants absolute paths. */
	if (s[0] != '/')
		return perr(err, jp, "'%.200s' is not an absolute path", s);
	if (strlen(s) >= FILE_PATH_MAX)
		return perr(err, jp, "path is too long");
	*out = strdup(s);
	return *out == NULL ? oom(err) : 0;
}

static int parse_base64(const json_t *v, struct jpath *jp, struct sp_blob *out, crisp_err_t *err)
{
	const char *s;
	size_t sl, bl = 0;

	if (!json_is_string(v))
		return perr(err, jp, "must be a string (base64), not %s", json_type_name(v));
	s = json_string_value(v);
	sl = json_string_length(v);
	if (sl == 0)
		return perr(err, jp, "must not be empty");
	out->data = malloc(sl / 4 * 3 + 3);
	if (out->data == NULL)
		return oom(err);
	/* Go's encoding/json decodes []byte with base64.StdEncoding: padded,
	 * "\r" and "\n" ignored.  libsodium is also strict about the unused
	 * bits of the last group. */
	if (sodium_base642bin(out->data, sl / 4 * 3 + 3, s, sl, "\r\n", &bl, NULL, sodium_base64_VARIANT_ORIGINAL) !=
		    0 ||
	    bl == 0) {
		free(out->data);
		out->data = NULL;
		return perr(err, jp, "is not valid base64 data");
	}
	out->len = bl;
	return 0;
}

/* One key-source field: a single path, a list of paths, a single base64
 * datum or a list of them. */
enum ksf { KSF_PATH, KSF_PATHS, KSF_DATA, KSF_DATAS };

static int parse_key_field(const json_t *v, enum ksf kind, const char *field, struct sp_keys *k, struct jpath *jp,
			   crisp_err_t *err)
{
	size_t n = 1;

	k->field = field;
	k->kind = (kind == KSF_PATH || kind == KSF_PATHS) ? SP_KEYS_PATHS : SP_KEYS_DATA;
	if (kind == KSF_PATHS || kind == KSF_DATAS) {
		if (!json_is_array(v))
			return perr(err, jp, "must be an array, not %s", json_type_name(v));
		n = json_array_size(v);
		/* c/image refuses an empty list for sigstore and accepts it
		 * (then finds no key) for signedBy; crisp refuses both. */
		if (n == 0)
			return perr(err, jp, "must not be empty");
	}
	if (k->kind == SP_KEYS_PATHS)
		k->paths = calloc(n, sizeof *k->paths);
	else
		k->data = calloc(n, sizeof *k->data);
	if (k->paths == NULL && k->data == NULL)
		return oom(err);
	for (size_t i = 0; i < n; i++) {
		const json_t *e = (kind == KSF_PATHS || kind == KSF_DATAS) ? json_array_get(v, i) : v;
		size_t s = (kind == KSF_PATHS || kind == KSF_DATAS) ? jp_index(jp, i) : jp->len;
		int rc = k->kind == SP_KEYS_PATHS ? parse_abs_path(e, jp, &k->paths[i], err)
						  : parse_base64(e, jp, &k->data[i], err);
		jp_restore(jp, s);
		if (rc < 0)
			return -1;
		k->n = i + 1;
	}
	return 0;
}

struct keyfield {
	const char *name;
	enum ksf kind;
};

/* Of fields[] (NULL-name terminated) how many are present in obj; *which is
 * the index of the last one present. */
static int count_present(const json_t *obj, const struct keyfield *fields, size_t *which)
{
	int c = 0;

	for (size_t i = 0; fields[i].name != NULL; i++)
		if (json_object_get(obj, fields[i].name) != NULL) {
			c++;
			*which = i;
		}
	return c;
}

static int parse_keys_from(const json_t *obj, const struct keyfield *f, struct sp_keys *k, struct jpath *jp,
			   crisp_err_t *err)
{
	size_t s = jp_field(jp, f->name);
	int rc = parse_key_field(json_object_get(obj, f->name), f->kind, f->name, k, jp, err);

	jp_restore(jp, s);
	return rc;
}

/* ---- signedIdentity ----------------------------------------------------- */

/* c/image validateIdentityRemappingPrefix: a host[:port], or a name whose
 * first component is a host[:port] followed by repository components. */
static bool valid_remap_prefix(const char *s)
{
	size_t n = strlen(s);
	const char *slash = memchr(s, '/', n);

	if (slash == NULL)
		return dockerref_valid_domain(s, n);
	if (!dockerref_valid_domain(s, (size_t)(slash - s)))
		return false;
	const char *p = slash + 1, *end = s + n;
	for (;;) {
		const char *q = memchr(p, '/', (size_t)(end - p));
		size_t cl = q != NULL ? (size_t)(q - p) : (size_t)(end - p);
		if (!dockerref_valid_component(p, cl))
			return false;
		if (q == NULL)
			return true;
		p = q + 1;
	}
}

static const struct {
	const char *name;
	enum sp_identity_type type;
} id_types[] = {
	{ "matchExact", SP_ID_MATCH_EXACT },
	{ "matchRepoDigestOrExact", SP_ID_MATCH_REPO_DIGEST_OR_EXACT },
	{ "matchRepository", SP_ID_MATCH_REPOSITORY },
	{ "exactReference", SP_ID_EXACT_REFERENCE },
	{ "exactRepository", SP_ID_EXACT_REPOSITORY },
	{ "remapIdentity", SP_ID_REMAP_IDENTITY },
};

const char *sp_identity_type_name(enum sp_identity_type t)
{
	for (size_t i = 0; i < sizeof id_types / sizeof id_types[0]; i++)
		if (id_types[i].type == t)
			return id_types[i].name;
	return "?";
}

static int parse_identity(const json_t *v, struct sp_identity *id, struct jpath *jp, crisp_err_t *err)
{
	static const char *const f_plain[] = { "type", NULL };
	static const char *const f_ref[] = { "type", "dockerReference", NULL };
	static const char *const f_repo[] = { "type", "dockerRepository", NULL };
	static const char *const f_remap[] = { "type", "prefix", "signedPrefix", NULL };
	const char *type, *s;
	crisp_err_t sub = CRISP_ERR_INIT;
	struct dockerref r;
	size_t sv;

	if (expect_object(v, jp, err) < 0 || get_string(v, "type", true, &type, jp, err) < 0)
		return -1;
	id->type = 0;
	for (size_t i = 0; i < sizeof id_types / sizeof id_types[0]; i++)
		if (strcmp(type, id_types[i].name) == 0)
			id->type = id_types[i].type;
	switch (id->type) {
	case SP_ID_MATCH_EXACT:
	case SP_ID_MATCH_REPO_DIGEST_OR_EXACT:
	case SP_ID_MATCH_REPOSITORY:
		return check_fields(v, f_plain, jp, err);
	case SP_ID_EXACT_REFERENCE:
		if (check_fields(v, f_ref, jp, err) < 0 || get_string(v, "dockerReference", true, &s, jp, err) < 0)
			return -1;
		sv = jp_field(jp, "dockerReference");
		if (dockerref_parse(s, &r, &sub) < 0)
			perr(err, jp, "%s", sub.msg);
		else if (dockerref_is_name_only(&r))
			perr(err, jp, "'%s' contains neither a tag nor a digest", s);
		else if ((id->docker_reference = strdup(s)) == NULL)
			oom(err);
		jp_restore(jp, sv);
		return id->docker_reference != NULL ? 0 : -1;
	case SP_ID_EXACT_REPOSITORY:
		if (check_fields(v, f_repo, jp, err) < 0 || get_string(v, "dockerRepository", true, &s, jp, err) < 0)
			return -1;
		sv = jp_field(jp, "dockerRepository");
		if (dockerref_parse(s, &r, &sub) < 0)
			perr(err, jp, "%s", sub.msg);
		/* c/image accepts a tag or digest here and ignores it; crisp
		 * refuses what can only be a mistake. */
		else if (!dockerref_is_name_only(&r))
			perr(err, jp, "'%s' must name a repository, without a tag or digest", s);
		else if ((id->docker_repository = strdup(s)) == NULL)
			oom(err);
		jp_restore(jp, sv);
		return id->docker_repository != NULL ? 0 : -1;
	case SP_ID_REMAP_IDENTITY:
		if (check_fields(v, f_remap, jp, err) < 0)
			return -1;
		for (int i = 0; i < 2; i++) {
			const char *fname = i == 0 ? "prefix" : "signedPrefix";
			char **dst = i == 0 ? &id->prefix : &id->signed_prefix;
			if (get_string(v, fname, true, &s, jp, err) < 0)
				return -1;
			if (!valid_remap_prefix(s)) {
				sv = jp_field(jp, fname);
				perr(err, jp, "'%.200s' is not a valid host[:port][/namespace...] prefix", s);
				jp_restore(jp, sv);
				return -1;
			}
			if ((*dst = strdup(s)) == NULL)
				return oom(err);
		}
		return 0;
	}
	sv = jp_field(jp, "type");
	perr(err, jp, "unknown signedIdentity type '%.100s'", type);
	jp_restore(jp, sv);
	return -1;
}

static int parse_signed_identity(const json_t *obj, struct sp_identity *id, struct jpath *jp, crisp_err_t *err)
{
	json_t *v = json_object_get(obj, "signedIdentity");
	size_t sv;
	int rc;

	if (v == NULL) {
		id->type = SP_ID_MATCH_REPO_DIGEST_OR_EXACT;
		return 0;
	}
	sv = jp_field(jp, "signedIdentity");
	rc = parse_identity(v, id, jp, err);
	jp_restore(jp, sv);
	return rc;
}

/* ---- requirements ------------------------------------------------------- */

const char *sp_req_type_name(enum sp_req_type t)
{
	switch (t) {
	case SP_REQ_INSECURE_ACCEPT_ANYTHING:
		return "insecureAcceptAnything";
	case SP_REQ_REJECT:
		return "reject";
	case SP_REQ_SIGNED_BY:
		return "signedBy";
	case SP_REQ_SIGSTORE_SIGNED:
		return "sigstoreSigned";
	}
	return "?";
}

static int parse_signed_by(const json_t *v, struct sp_requirement *r, struct jpath *jp, crisp_err_t *err)
{
	static const char *const fields[] = { "type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity",
					      NULL };
	static const struct keyfield kf[] = {
		{ "keyPath", KSF_PATH }, { "keyPaths", KSF_PATHS }, { "keyData", KSF_DATA }, { NULL, KSF_PATH }
	};
	static const char *const unimplemented[] = { "signedByGPGKeys", "X509Certificates", "signedByX509CAs",
						     NULL };
	const char *kt;
	size_t which = 0, sv;
	int c;

	if (check_fields(v, fields, jp, err) < 0 || get_string(v, "keyType", true, &kt, jp, err) < 0)
		return -1;
	if (strcmp(kt, "GPGKeys") != 0) {
		sv = jp_field(jp, "keyType");
		/* c/image parses these and refuses every signature at
		 * evaluation ("Unimplemented keyType"); crisp says so now. */
		if (in_list(kt, unimplemented))
			perr(err, jp, "keyType '%s' is not implemented (only GPGKeys is)", kt);
		else
			perr(err, jp, "unknown keyType '%.100s' (only GPGKeys is supported)", kt);
		jp_restore(jp, sv);
		return -1;
	}
	c = count_present(v, kf, &which);
	if (c != 1)
		return perr(err, jp, "exactly one of keyPath, keyPaths and keyData must be specified, %s",
			    c == 0 ? "none of them present" : "more than one present");
	if (parse_keys_from(v, &kf[which], &r->keys, jp, err) < 0)
		return -1;
	return parse_signed_identity(v, &r->identity, jp, err);
}

static int parse_fulcio(const json_t *v, struct sp_fulcio *f, struct jpath *jp, crisp_err_t *err)
{
	static const char *const fields[] = { "caPath", "caData", "oidcIssuer", "subjectEmail", NULL };
	static const struct keyfield kf[] = { { "caPath", KSF_PATH }, { "caData", KSF_DATA }, { NULL, KSF_PATH } };
	size_t which = 0;
	int c;

	if (expect_object(v, jp, err) < 0 || check_fields(v, fields, jp, err) < 0)
		return -1;
	c = count_present(v, kf, &which);
	if (c != 1)
		return perr(err, jp, "exactly one of caPath and caData must be specified, %s",
			    c == 0 ? "none of them present" : "both present");
	if (parse_keys_from(v, &kf[which], &f->ca, jp, err) < 0)
		return -1;
	if (get_nonempty_string(v, "oidcIssuer", true, &f->oidc_issuer, jp, err) < 0 ||
	    get_nonempty_string(v, "subjectEmail", true, &f->subject_email, jp, err) < 0)
		return -1;
	return 0;
}

static int parse_pki(const json_t *v, struct sp_pki *p, struct jpath *jp, crisp_err_t *err)
{
	static const char *const fields[] = { "caRootsPath",	 "caRootsData",	 "caIntermediatesPath",
					      "caIntermediatesData", "subjectEmail", "subjectHostname",
					      NULL };
	static const struct keyfield roots[] = { { "caRootsPath", KSF_PATH },
						 { "caRootsData", KSF_DATA },
						 { NULL, KSF_PATH } };
	static const struct keyfield inter[] = { { "caIntermediatesPath", KSF_PATH },
						 { "caIntermediatesData", KSF_DATA },
						 { NULL, KSF_PATH } };
	size_t which = 0;
	int c;

	if (expect_object(v, jp, err) < 0 || check_fields(v, fields, jp, err) < 0)
		return -1;
	c = count_present(v, roots, &which);
	if (c != 1)
		return perr(err, jp, "exactly one of caRootsPath and caRootsData must be specified, %s",
			    c == 0 ? "none of them present" : "both present");
	if (parse_keys_from(v, &roots[which], &p->ca_roots, jp, err) < 0)
		return -1;
	c = count_present(v, inter, &which);
	if (c > 1)
		return perr(err, jp, "caIntermediatesPath and caIntermediatesData cannot be used together");
	if (c == 1 && parse_keys_from(v, &inter[which], &p->ca_intermediates, jp, err) < 0)
		return -1;
	if (get_nonempty_string(v, "subjectEmail", false, &p->subject_email, jp, err) < 0 ||
	    get_nonempty_string(v, "subjectHostname", false, &p->subject_hostname, jp, err) < 0)
		return -1;
	if (p->subject_email == NULL && p->subject_hostname == NULL)
		return perr(err, jp, "at least one of subjectEmail and subjectHostname must be specified");
	return 0;
}

static int parse_sigstore(const json_t *v, struct sp_requirement *r, struct jpath *jp, crisp_err_t *err)
{
	static const char *const fields[] = { "type",
					      "keyPath",
					      "keyPaths",
					      "keyData",
					      "keyDatas",
					      "fulcio",
					      "pki",
					      "rekorPublicKeyPath",
					      "rekorPublicKeyPaths",
					      "rekorPublicKeyData",
					      "rekorPublicKeyDatas",
					      "signedIdentity",
					      NULL };
	static const struct keyfield kf[] = { { "keyPath", KSF_PATH }, { "keyPaths", KSF_PATHS },
					      { "keyData", KSF_DATA }, { "keyDatas", KSF_DATAS },
					      { "fulcio", KSF_PATH },  { "pki", KSF_PATH },
					      { NULL, KSF_PATH } };
	static const struct keyfield rk[] = { { "rekorPublicKeyPath", KSF_PATH },
					      { "rekorPublicKeyPaths", KSF_PATHS },
					      { "rekorPublicKeyData", KSF_DATA },
					      { "rekorPublicKeyDatas", KSF_DATAS },
					      { NULL, KSF_PATH } };
	size_t which = 0, rwhich = 0, sv;
	int c, rc;

	if (check_fields(v, fields, jp, err) < 0)
		return -1;
	c = count_present(v, kf, &which);
	if (c != 1)
		return perr(err, jp, "exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio and pki must be "
				     "specified, %s",
			    c == 0 ? "none of them present" : "more than one present");
	rc = count_present(v, rk, &rwhich);
	if (rc > 1)
		return perr(err, jp, "at most one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and "
				     "rekorPublicKeyDatas can be specified");
	if (strcmp(kf[which].name, "fulcio") == 0) {
		if (rc == 0)
			return perr(err, jp, "one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and "
					     "rekorPublicKeyDatas must be specified with fulcio");
		r->trust = SP_SIGSTORE_FULCIO;
		r->needs_cert_roots = true;
		sv = jp_field(jp, "fulcio");
		c = parse_fulcio(json_object_get(v, "fulcio"), &r->fulcio, jp, err);
		jp_restore(jp, sv);
	} else if (strcmp(kf[which].name, "pki") == 0) {
		if (rc != 0)
			return perr(err, jp, "rekor public keys are not supported with pki");
		r->trust = SP_SIGSTORE_PKI;
		r->needs_cert_roots = true;
		sv = jp_field(jp, "pki");
		c = parse_pki(json_object_get(v, "pki"), &r->pki, jp, err);
		jp_restore(jp, sv);
	} else {
		r->trust = SP_SIGSTORE_KEYS;
		c = parse_keys_from(v, &kf[which], &r->keys, jp, err);
	}
	if (c < 0)
		return -1;
	if (rc == 1 && parse_keys_from(v, &rk[rwhich], &r->rekor_keys, jp, err) < 0)
		return -1;
	return parse_signed_identity(v, &r->identity, jp, err);
}

static int parse_requirement(const json_t *v, struct sp_requirement *r, struct jpath *jp, crisp_err_t *err)
{
	static const char *const f_plain[] = { "type", NULL };
	const char *type;
	size_t sv;

	if ((r->where = strdup(jp_str(jp))) == NULL)
		return oom(err);
	if (expect_object(v, jp, err) < 0 || get_string(v, "type", true, &type, jp, err) < 0)
		return -1;
	if (strcmp(type, "insecureAcceptAnything") == 0) {
		r->type = SP_REQ_INSECURE_ACCEPT_ANYTHING;
		return check_fields(v, f_plain, jp, err);
	}
	if (strcmp(type, "reject") == 0) {
		r->type = SP_REQ_REJECT;
		return check_fields(v, f_plain, jp, err);
	}
	if (strcmp(type, "signedBy") == 0) {
		r->type = SP_REQ_SIGNED_BY;
		return parse_signed_by(v, r, jp, err);
	}
	if (strcmp(type, "sigstoreSigned") == 0) {
		r->type = SP_REQ_SIGSTORE_SIGNED;
		return parse_sigstore(v, r, jp, err);
	}
	sv = jp_field(jp, "type");
	/* c/image parses signedBaseLayer and never accepts it. */
	if (strcmp(type, "signedBaseLayer") == 0)
		perr(err, jp, "requirement type 'signedBaseLayer' is not implemented");
	else
		perr(err, jp, "unknown requirement type '%.100s'", type);
	jp_restore(jp, sv);
	return -1;
}

static int parse_reqlist(const json_t *v, struct sp_reqlist *l, struct jpath *jp, crisp_err_t *err)
{
	size_t n;

	if (!json_is_array(v))
		return perr(err, jp, "must be an array of requirements, not %s", json_type_name(v));
	n = json_array_size(v);
	if (n == 0)
		return perr(err, jp, "the list of requirements must not be empty");
	l->v = calloc(n, sizeof *l->v);
	if (l->v == NULL)
		return oom(err);
	l->n = n;
	for (size_t i = 0; i < n; i++) {
		size_t sv = jp_index(jp, i);
		int rc = parse_requirement(json_array_get(v, i), &l->v[i], jp, err);
		jp_restore(jp, sv);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* ---- docker scopes ------------------------------------------------------ */

/* Returns NULL when valid, else a reason. */
static const char *docker_scope_problem(const char *s)
{
	size_t n = strlen(s);
	crisp_err_t sub = CRISP_ERR_INIT;
	struct dockerref r;
	char buf[DOCKERREF_STR_MAX];

	if (n > DOCKERREF_INPUT_MAX)
		return "is too long";
	if (n >= 2 && s[0] == '*' && s[1] == '.') {
		if (!dockerref_valid_hostname(s + 2, n - 2))
			return "is not a valid wildcard: '*.' must be followed by a host name (no port, no path)";
		return NULL;
	}
	if (memchr(s, '*', n) != NULL)
		return "has a '*' elsewhere than a leading '*.'";
	const char *slash = memchr(s, '/', n);
	size_t hl = slash != NULL ? (size_t)(slash - s) : n;
	if (!dockerref_valid_domain(s, hl))
		return "does not start with a valid host[:port]";
	/* Only a registry host can begin a fully expanded reference
	 * (splitDockerDomain); "busybox" or "library/busybox" never match. */
	if (memchr(s, '.', hl) == NULL && memchr(s, ':', hl) == NULL && !(hl == 9 && memcmp(s, "localhost", 9) == 0))
		return "is not in the fully expanded form: the first component must be a registry host "
		       "(with a '.' or a port, or localhost), e.g. docker.io/library/busybox";
	if (hl == 15 && memcmp(s, "index.docker.io", 15) == 0)
		return "uses index.docker.io: the fully expanded form uses docker.io";
	if (slash == NULL)
		return NULL;
	const char *last = strrchr(s, '/');
	if (memchr(s, '@', n) != NULL || strchr(last, ':') != NULL) {
		/* One image: name:tag or name@digest, fully expanded. */
		if (dockerref_parse(s, &r, &sub) < 0)
			return "is not a valid image reference";
		if (r.tag[0] != '\0' && r.digest[0] != '\0')
			return "has both a tag and a digest";
		dockerref_string(&r, buf);
		if (strcmp(buf, s) != 0)
			return "is not in the fully expanded form (e.g. docker.io/library/busybox:latest)";
		return NULL;
	}
	const char *p = slash + 1, *end = s + n;
	for (;;) {
		const char *q = memchr(p, '/', (size_t)(end - p));
		size_t cl = q != NULL ? (size_t)(q - p) : (size_t)(end - p);
		if (!dockerref_valid_component(p, cl))
			return "has an invalid repository path component (lowercase [a-z0-9._-])";
		if (q == NULL)
			break;
		p = q + 1;
	}
	if (n > DOCKERREF_NAME_MAX)
		return "is too long";
	return NULL;
}

static int scope_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sp_scope *)a)->scope, ((const struct sp_scope *)b)->scope);
}

static int parse_docker(const json_t *v, struct sp_policy *p, struct jpath *jp, crisp_err_t *err)
{
	const char *key;
	json_t *val;
	size_t n;

	if (expect_object(v, jp, err) < 0)
		return -1;
	n = json_object_size(v);
	if (n > 0) {
		p->scopes = calloc(n, sizeof *p->scopes);
		if (p->scopes == NULL)
			return oom(err);
	}
	json_object_foreach((json_t *)v, key, val) {
		size_t sv = jp_key(jp, key);
		int rc;
		if (key[0] == '\0') {
			p->has_docker_default = true;
			rc = parse_reqlist(val, &p->docker_default, jp, err);
		} else {
			const char *why = docker_scope_problem(key);
			if (why != NULL) {
				rc = perr(err, jp, "scope %s", why);
			} else {
				struct sp_scope *sc = &p->scopes[p->n_scopes];
				if ((sc->scope = strdup(key)) == NULL) {
					rc = oom(err);
				} else {
					p->n_scopes++;
					rc = parse_reqlist(val, &sc->reqs, jp, err);
				}
			}
		}
		jp_restore(jp, sv);
		if (rc < 0)
			return -1;
	}
	if (p->n_scopes > 1)
		qsort(p->scopes, p->n_scopes, sizeof *p->scopes, scope_cmp);
	return 0;
}

/* Transports c/image knows; crisp checks their requirements and ignores
 * them (its only transport is docker). */
static const char *const other_transports[] = { "atomic", "containers-storage", "dir", "docker-archive",
						"docker-daemon", "oci", "oci-archive", "ostree",
						"sif", "tarball", NULL };

static int parse_other_transport(const json_t *v, struct jpath *jp, crisp_err_t *err)
{
	const char *key;
	json_t *val;

	if (expect_object(v, jp, err) < 0)
		return -1;
	json_object_foreach((json_t *)v, key, val) {
		struct sp_reqlist tmp = { 0, NULL };
		size_t sv = jp_key(jp, key);
		int rc = parse_reqlist(val, &tmp, jp, err);
		jp_restore(jp, sv);
		reqlist_free(&tmp);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int parse_transports(const json_t *v, struct sp_policy *p, struct jpath *jp, crisp_err_t *err)
{
	const char *key;
	json_t *val;

	if (expect_object(v, jp, err) < 0)
		return -1;
	json_object_foreach((json_t *)v, key, val) {
		size_t sv = jp_name(jp, key);
		int rc;
		if (strcmp(key, "docker") == 0) {
			rc = parse_docker(val, p, jp, err);
		} else if (in_list(key, other_transports)) {
			rc = parse_other_transport(val, jp, err);
			p->n_ignored_transports++;
		} else {
			/* c/image accepts unknown transport names; a typo of
			 * "docker" would then silently fall back to "default". */
			rc = perr(err, jp, "unknown transport");
		}
		jp_restore(jp, sv);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int sp_policy_parse(const void *data, size_t len, struct sp_policy **out, crisp_err_t *err)
{
	static const char *const top[] = { "default", "transports", NULL };
	struct jpath jp = { .buf = { 0 }, .len = 0, .truncated = false };
	json_error_t jerr;
	json_t *root;
	struct sp_policy *p;
	size_t sv;
	int rc = -1;

	*out = NULL;
	if (len > SP_POLICY_MAX_BYTES)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "policy is larger than %u bytes",
				   SP_POLICY_MAX_BYTES);
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "line %d column %d: %s", jerr.line, jerr.column,
				   jerr.text);
	p = calloc(1, sizeof *p);
	if (p == NULL) {
		json_decref(root);
		return oom(err);
	}
	if (expect_object(root, &jp, err) < 0 || check_fields(root, top, &jp, err) < 0)
		goto out;
	json_t *def = json_object_get(root, "default");
	sv = jp_field(&jp, "default");
	if (def == NULL)
		perr(err, &jp, "required field is missing");
	else
		rc = parse_reqlist(def, &p->def, &jp, err);
	jp_restore(&jp, sv);
	if (rc < 0)
		goto out;
	json_t *tr = json_object_get(root, "transports");
	if (tr != NULL) {
		sv = jp_field(&jp, "transports");
		rc = parse_transports(tr, p, &jp, err);
		jp_restore(&jp, sv);
	}
out:
	json_decref(root);
	if (rc < 0) {
		sp_policy_free(p);
		return -1;
	}
	*out = p;
	return 0;
}

/* ---- evaluation --------------------------------------------------------- */

static const struct sp_scope *find_scope(const struct sp_policy *p, const char *s)
{
	struct sp_scope key = { .scope = (char *)s, .reqs = { 0, NULL } };

	if (p->n_scopes == 0)
		return NULL;
	return bsearch(&key, p->scopes, p->n_scopes, sizeof *p->scopes, scope_cmp);
}

static void set_match(struct sp_match *out, const struct sp_scope *sc)
{
	out->kind = SP_MATCH_SCOPE;
	out->reqs = &sc->reqs;
	out->scope = sc->scope;
	snprintf(out->label, sizeof out->label, "transports.docker[\"%s\"]", sc->scope);
}

int sp_policy_evaluate(const struct sp_policy *p, const char *image_ref, const char *manifest_digest,
		       struct sp_match *out, crisp_err_t *err)
{
	const struct sp_scope *sc;
	char name[DOCKERREF_NAME_MAX + 1];
	size_t md_len;

	memset(out, 0, sizeof *out);
	if (dockerref_parse_pull(image_ref, &out->ref, err) < 0)
		return -1;
	md_len = manifest_digest != NULL ? strnlen(manifest_digest, DOCKERREF_DIGEST_MAX + 1) : 0;
	if (!dockerref_valid_digest(manifest_digest != NULL ? manifest_digest : "", md_len))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "invalid manifest digest '%.140s'",
				   manifest_digest != NULL ? manifest_digest : "");
	memcpy(out->manifest_digest, manifest_digest, md_len + 1);
	/* c/image validates a by-digest reference against the manifest
	 * before any signature is looked at. */
	if (out->ref.digest[0] != '\0' && strcmp(out->ref.digest, manifest_digest) != 0)
		return crisp_error(err, CRISP_PERMISSION_DENIED, 0,
				   "manifest digest %s does not match the reference's digest %s", manifest_digest,
				   out->ref.digest);
	dockerref_string(&out->ref, out->identity);

	/* 1. the image itself */
	if ((sc = find_scope(p, out->identity)) != NULL) {
		set_match(out, sc);
		return 0;
	}
	/* 2. repository, parent namespaces, host[:port] */
	memcpy(name, out->ref.name, sizeof name);
	for (;;) {
		if ((sc = find_scope(p, name)) != NULL) {
			set_match(out, sc);
			return 0;
		}
		char *slash = strrchr(name, '/');
		if (slash == NULL)
			break;
		*slash = '\0';
	}
	/* 3. "*." wildcards of the host name without port, most specific first */
	char *colon = strchr(name, ':');
	if (colon != NULL)
		*colon = '\0';
	for (char *dot = strchr(name, '.'); dot != NULL; dot = strchr(dot + 1, '.')) {
		char wc[DOCKERREF_NAME_MAX + 3];
		snprintf(wc, sizeof wc, "*.%s", dot + 1);
		if ((sc = find_scope(p, wc)) != NULL) {
			set_match(out, sc);
			return 0;
		}
	}
	/* 4. transport default, 5. global default */
	if (p->has_docker_default) {
		out->kind = SP_MATCH_TRANSPORT_DEFAULT;
		out->reqs = &p->docker_default;
		out->scope = "";
		snprintf(out->label, sizeof out->label, "transports.docker[\"\"]");
		return 0;
	}
	out->kind = SP_MATCH_DEFAULT;
	out->reqs = &p->def;
	out->scope = NULL;
	snprintf(out->label, sizeof out->label, "default");
	return 0;
}

/* ---- identity matching -------------------------------------------------- */

static bool strings_equal(const struct dockerref *a, const struct dockerref *b)
{
	return strcmp(a->name, b->name) == 0 && strcmp(a->tag, b->tag) == 0 && strcmp(a->digest, b->digest) == 0;
}

/* c/image matchRepoDigestOrExactReferenceValues */
static bool repo_digest_or_exact(const struct dockerref *intended, const struct dockerref *sig)
{
	if (dockerref_is_name_only(sig))
		return false;
	if (intended->tag[0] != '\0') /* includes tag + digest */
		return strings_equal(sig, intended);
	if (intended->digest[0] != '\0')
		return dockerref_same_name(sig, intended);
	return false;
}

/* c/image prmRemapIdentity.remapReferencePrefix.  false when the rewritten
 * reference is not valid and fully expanded. */
static bool remap(const struct sp_identity *rule, const struct dockerref *in, struct dockerref *outref)
{
	size_t pl = strlen(rule->prefix), nl = strlen(in->name);
	char s[DOCKERREF_STR_MAX], rewritten[DOCKERREF_STR_MAX + DOCKERREF_NAME_MAX];
	crisp_err_t sub = CRISP_ERR_INIT;

	if (nl < pl || memcmp(in->name, rule->prefix, pl) != 0 || (nl > pl && in->name[pl] != '/')) {
		*outref = *in;
		return true;
	}
	dockerref_string(in, s);
	snprintf(rewritten, sizeof rewritten, "%s%s", rule->signed_prefix, s + pl);
	return dockerref_parse_canonical(rewritten, outref, &sub) == 0;
}

bool sp_identity_matches_ref(const struct sp_identity *rule, const struct dockerref *image,
			     const char *signature_docker_reference)
{
	struct dockerref sig, want;
	crisp_err_t sub = CRISP_ERR_INIT;

	if (rule == NULL || image == NULL || signature_docker_reference == NULL)
		return false;
	if (dockerref_parse(signature_docker_reference, &sig, &sub) < 0)
		return false;
	switch (rule->type) {
	case SP_ID_MATCH_EXACT:
		if (dockerref_is_name_only(image) || dockerref_is_name_only(&sig))
			return false;
		return strings_equal(&sig, image);
	case SP_ID_MATCH_REPO_DIGEST_OR_EXACT:
		return repo_digest_or_exact(image, &sig);
	case SP_ID_MATCH_REPOSITORY:
		return dockerref_same_name(&sig, image);
	case SP_ID_EXACT_REFERENCE:
		if (rule->docker_reference == NULL || dockerref_parse(rule->docker_reference, &want, &sub) < 0)
			return false;
		if (dockerref_is_name_only(&want) || dockerref_is_name_only(&sig))
			return false;
		return strings_equal(&sig, &want);
	case SP_ID_EXACT_REPOSITORY:
		if (rule->docker_repository == NULL || dockerref_parse(rule->docker_repository, &want, &sub) < 0)
			return false;
		return dockerref_same_name(&sig, &want);
	case SP_ID_REMAP_IDENTITY:
		if (rule->prefix == NULL || rule->signed_prefix == NULL || !remap(rule, image, &want))
			return false;
		return repo_digest_or_exact(&want, &sig);
	}
	return false;
}

bool sp_identity_matches(const struct sp_identity *rule, const char *image_ref,
			 const char *signature_docker_reference)
{
	struct dockerref img;
	crisp_err_t sub = CRISP_ERR_INIT;

	if (image_ref == NULL || dockerref_parse_pull(image_ref, &img, &sub) < 0)
		return false;
	return sp_identity_matches_ref(rule, &img, signature_docker_reference);
}
