/*
 * policy/runtime: parse and evaluate the runtime admission policy.
 * See runtime.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "common/util.h"
#include "policy/runtime.h"

const char rp_default_text[] =
	"{\n"
	"  \"default\": {\n"
	"    \"privileged\": true,\n"
	"    \"hostNetwork\": true,\n"
	"    \"hostPID\": true,\n"
	"    \"hostIPC\": true,\n"
	"    \"unconfinedSeccomp\": true,\n"
	"    \"devices\": true,\n"
	"    \"hostPathPrefixes\": [\"/\"],\n"
	"    \"addCapabilities\": [\"ALL\"],\n"
	"    \"runtimeHandlers\": [\"*\"]\n"
	"  }\n"
	"}\n";

static void list_free(struct rp_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static void rules_free(struct rp_rules *r)
{
	list_free(&r->host_path_prefixes);
	list_free(&r->add_capabilities);
	list_free(&r->runtime_handlers);
}

void rp_free(struct rp_policy *p)
{
	rules_free(&p->def);
	for (size_t i = 0; i < p->nns; i++) {
		free(p->ns[i].name);
		rules_free(&p->ns[i].rules);
	}
	free(p->ns);
	memset(p, 0, sizeof *p);
}

static bool clean_abs_path(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || s[0] != '/' || n > 4095 || (n > 1 && s[n - 1] == '/'))
		return false;
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c < 0x20)
			return false;
		if (c[0] == '/' && (c[1] == '/' || (c[1] == '.' && (c[2] == '/' || c[2] == '\0')) ||
				    (c[1] == '.' && c[2] == '.' && (c[3] == '/' || c[3] == '\0'))))
			return false;
	}
	return true;
}

static bool cap_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static bool handler_ok(const char *s)
{
	size_t n = strlen(s);

	if (n > 63)
		return false;
	if (!strcmp(s, "*"))
		return true;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '_'))
			return false;
	return true;
}

static int parse_list(json_t *v, const char *where, const char *key, bool (*ok)(const char *), struct rp_list *out,
		      crisp_err_t *err)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v) || json_array_size(v) > RP_MAX_LIST)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s.%s: must be a list of at most %d strings", where,
				   key, RP_MAX_LIST);
	out->v = calloc(json_array_size(v) + 1, sizeof *out->v);
	if (out->v == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0, "out of memory");
	out->set = true;
	json_array_foreach(v, i, e) {
		const char *s = json_string_value(e);
		if (s == NULL || !ok(s))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s.%s[%zu]: not a valid entry", where, key, i);
		out->v[out->n] = strdup(s);
		if (out->v[out->n] == NULL)
			return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0, "out of memory");
		out->n++;
	}
	return 0;
}

static int parse_rules(json_t *o, const char *where, struct rp_rules *r, crisp_err_t *err)
{
	static const struct {
		const char *key;
		size_t off;
	} bools[] = {
		{ "privileged", offsetof(struct rp_rules, privileged) },
		{ "hostNetwork", offsetof(struct rp_rules, host_network) },
		{ "hostPID", offsetof(struct rp_rules, host_pid) },
		{ "hostIPC", offsetof(struct rp_rules, host_ipc) },
		{ "unconfinedSeccomp", offsetof(struct rp_rules, unconfined_seccomp) },
		{ "devices", offsetof(struct rp_rules, devices) },
	};
	const char *key;
	json_t *v;

	memset(r, 0, sizeof *r);
	r->privileged = r->host_network = r->host_pid = r->host_ipc = r->unconfined_seccomp = r->devices = -1;
	if (!json_is_object(o))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: must be an object", where);
	json_object_foreach(o, key, v) {
		bool done = false;
		for (size_t i = 0; i < ARRAY_SIZE(bools) && !done; i++) {
			if (strcmp(key, bools[i].key))
				continue;
			if (!json_is_boolean(v))
				return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s.%s: must be true or false", where, key);
			*(int *)((char *)r + bools[i].off) = json_is_true(v);
			done = true;
		}
		if (done)
			continue;
		if (!strcmp(key, "hostPathPrefixes")) {
			if (parse_list(v, where, key, clean_abs_path, &r->host_path_prefixes, err) < 0)
				return -1;
		} else if (!strcmp(key, "addCapabilities")) {
			if (parse_list(v, where, key, cap_name_ok, &r->add_capabilities, err) < 0)
				return -1;
		} else if (!strcmp(key, "runtimeHandlers")) {
			if (parse_list(v, where, key, handler_ok, &r->runtime_handlers, err) < 0)
				return -1;
		} else {
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: unknown key \"%.64s\"", where, key);
		}
	}
	return 0;
}

static bool ns_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
			return false;
	return true;
}

static int rp_parse_raw(const char *buf, size_t len, struct rp_policy *out, crisp_err_t *err)
{
	json_error_t je;
	json_t *root, *v;
	const char *key;
	int r = -1;

	memset(out, 0, sizeof *out);
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "line %d: %s", je.line, je.text);
	if (!json_is_object(root)) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "the policy must be a JSON object");
		goto out;
	}
	json_object_foreach(root, key, v) {
		if (strcmp(key, "default") && strcmp(key, "namespaces")) {
			crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "unknown key \"%.64s\"", key);
			goto out;
		}
	}
	v = json_object_get(root, "default");
	if (v == NULL) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "\"default\" is required");
		goto out;
	}
	if (parse_rules(v, "default", &out->def, err) < 0)
		goto out;
	v = json_object_get(root, "namespaces");
	if (v != NULL) {
		json_t *rules;
		if (!json_is_object(v) || json_object_size(v) > RP_MAX_NAMESPACES) {
			crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "namespaces: must be an object of at most %d",
				    RP_MAX_NAMESPACES);
			goto out;
		}
		out->ns = calloc(json_object_size(v) + 1, sizeof *out->ns);
		if (out->ns == NULL) {
			crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0, "out of memory");
			goto out;
		}
		json_object_foreach(v, key, rules) {
			char where[96];
			if (!ns_name_ok(key)) {
				crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "namespaces: \"%.64s\" is not a namespace name", key);
				goto out;
			}
			snprintf(where, sizeof where, "namespaces.%s", key);
			out->ns[out->nns].name = strdup(key);
			if (out->ns[out->nns].name == NULL) {
				crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0, "out of memory");
				goto out;
			}
			out->nns++;
			if (parse_rules(rules, where, &out->ns[out->nns - 1].rules, err) < 0)
				goto out;
		}
	}
	r = 0;
out:
	json_decref(root);
	if (r < 0)
		rp_free(out);
	return r;
}

static int rp_parse_raw(const char *buf, size_t len, struct rp_policy *out, crisp_err_t *err);

int rp_default(struct rp_policy *out, crisp_err_t *err)
{
	return rp_parse(rp_default_text, strlen(rp_default_text), out, err);
}

static int list_copy(struct rp_list *dst, const struct rp_list *src)
{
	dst->v = calloc(src->n + 1, sizeof *dst->v);
	if (dst->v == NULL)
		return -1;
	dst->set = true;
	for (size_t i = 0; i < src->n; i++) {
		if ((dst->v[i] = strdup(src->v[i])) == NULL)
			return -1;
		dst->n++;
	}
	return 0;
}

/* A file's "default" narrows only what it names: keys it leaves out keep
 * the embedded default's value. */
static int fill_from_embedded(struct rp_rules *r, crisp_err_t *err)
{
	struct rp_policy emb;
	int rc = 0;

	if (rp_parse_raw(rp_default_text, strlen(rp_default_text), &emb, err) < 0)
		return -1;
	int *mine[] = { &r->privileged, &r->host_network, &r->host_pid, &r->host_ipc, &r->unconfined_seccomp,
			&r->devices };
	const int theirs[] = { emb.def.privileged, emb.def.host_network, emb.def.host_pid, emb.def.host_ipc,
			       emb.def.unconfined_seccomp, emb.def.devices };
	for (size_t i = 0; i < ARRAY_SIZE(mine); i++)
		if (*mine[i] < 0)
			*mine[i] = theirs[i];
	if ((!r->host_path_prefixes.set && list_copy(&r->host_path_prefixes, &emb.def.host_path_prefixes) < 0) ||
	    (!r->add_capabilities.set && list_copy(&r->add_capabilities, &emb.def.add_capabilities) < 0) ||
	    (!r->runtime_handlers.set && list_copy(&r->runtime_handlers, &emb.def.runtime_handlers) < 0))
		rc = crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0, "out of memory");
	rp_free(&emb);
	return rc;
}

int rp_parse(const char *buf, size_t len, struct rp_policy *out, crisp_err_t *err)
{
	if (rp_parse_raw(buf, len, out, err) < 0)
		return -1;
	if (fill_from_embedded(&out->def, err) < 0) {
		rp_free(out);
		return -1;
	}
	return 0;
}

/* The rules for a namespace: its own entry, key by key over the default. */
struct eff {
	const char *scope; /* "default" or the namespace */
	const struct rp_rules *ns, *def;
};

static void eff_init(const struct rp_policy *p, const char *ns, struct eff *e)
{
	e->def = &p->def;
	e->ns = NULL;
	e->scope = "default";
	for (size_t i = 0; ns && i < p->nns; i++)
		if (!strcmp(p->ns[i].name, ns)) {
			e->ns = &p->ns[i].rules;
			e->scope = ns;
		}
}

/* A bool rule: the namespace's value when set, else the default's, else no. */
static bool eff_bool(const struct eff *e, size_t off, const char **from)
{
	int v = e->ns ? *(const int *)((const char *)e->ns + off) : -1;

	*from = v >= 0 ? e->scope : "default";
	if (v < 0)
		v = *(const int *)((const char *)e->def + off);
	return v == 1;
}

static const struct rp_list *eff_list(const struct eff *e, size_t off, const char **from)
{
	const struct rp_list *l = e->ns ? (const struct rp_list *)((const char *)e->ns + off) : NULL;

	if (l && l->set) {
		*from = e->scope;
		return l;
	}
	*from = "default";
	return (const struct rp_list *)((const char *)e->def + off);
}

/* what: the refused thing, already phrased ("hostPID is not allowed"). */
static int deny(crisp_err_t *err, const char *from, const char *what)
{
	const char *msg = what;

	if (!strcmp(from, "default"))
		return crisp_error(err, CRISP_PERMISSION_DENIED, 0, "runtime policy (default): %s", msg);
	return crisp_error(err, CRISP_PERMISSION_DENIED, 0, "runtime policy (namespace %s): %s", from, msg);
}

#define BOOL_RULE(e, field, from) eff_bool(e, offsetof(struct rp_rules, field), from)
#define LIST_RULE(e, field, from) eff_list(e, offsetof(struct rp_rules, field), from)

int rp_check_pod(const struct rp_policy *p, const struct rp_pod *rq, crisp_err_t *err)
{
	struct eff e;
	const char *from;
	const struct rp_list *l;
	const char *h = rq->runtime_handler ? rq->runtime_handler : "";
	bool ok = false;

	eff_init(p, rq->ns, &e);
	if (rq->host_network && !BOOL_RULE(&e, host_network, &from))
		return deny(err, from, "hostNetwork is not allowed");
	if (rq->host_pid && !BOOL_RULE(&e, host_pid, &from))
		return deny(err, from, "hostPID is not allowed");
	if (rq->host_ipc && !BOOL_RULE(&e, host_ipc, &from))
		return deny(err, from, "hostIPC is not allowed");
	l = LIST_RULE(&e, runtime_handlers, &from);
	for (size_t i = 0; i < l->n && !ok; i++)
		ok = !strcmp(l->v[i], h) || !strcmp(l->v[i], "*");
	if (!ok) {
		char m[160];
		snprintf(m, sizeof m, "runtime handler \"%.63s\" is not in runtimeHandlers", h);
		return deny(err, from, m);
	}
	return 0;
}

/* prefix is clean (checked at parse); path is normalised here: repeated
 * and trailing slashes folded.  ".." never reaches here (the CRI
 * validator refuses it) and symlinks are the caller's to resolve. */
static bool path_under(const char *raw, const char *prefix)
{
	char path[4096];
	size_t n = strlen(prefix), o = 0;

	for (const char *c = raw; *c && o + 1 < sizeof path; c++)
		if (!(*c == '/' && o > 0 && path[o - 1] == '/'))
			path[o++] = *c;
	while (o > 1 && path[o - 1] == '/')
		o--;
	path[o] = '\0';

	if (!strcmp(prefix, "/"))
		return path[0] == '/';
	return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

int rp_check_container(const struct rp_policy *p, const struct rp_container *rq, crisp_err_t *err)
{
	struct eff e;
	const char *from;
	const struct rp_list *l;

	eff_init(p, rq->ns, &e);
	if (rq->privileged && !BOOL_RULE(&e, privileged, &from))
		return deny(err, from, "privileged containers are not allowed");
	if (rq->unconfined_seccomp && !BOOL_RULE(&e, unconfined_seccomp, &from))
		return deny(err, from, "Unconfined seccomp is not allowed");
	if (rq->ndevices > 0 && !BOOL_RULE(&e, devices, &from))
		return deny(err, from, "devices are not allowed");
	l = LIST_RULE(&e, add_capabilities, &from);
	for (size_t i = 0; i < rq->nadd_caps; i++) {
		const char *c = rq->add_caps[i];
		bool ok = false;
		/* as execd reads the name (ctr_cap_from_name): any case, with
		 * or without CAP_; the file's entries are upper case */
		if (!strncasecmp(c, "CAP_", 4))
			c += 4;
		for (size_t j = 0; j < l->n && !ok; j++) {
			const char *a = l->v[j];
			if (!strncmp(a, "CAP_", 4))
				a += 4;
			ok = !strcmp(a, "ALL") || !strcasecmp(a, c);
		}
		if (!ok) {
			char m[160];
			snprintf(m, sizeof m, "capability %.64s is not in addCapabilities", rq->add_caps[i]);
			return deny(err, from, m);
		}
	}
	l = LIST_RULE(&e, host_path_prefixes, &from);
	for (size_t i = 0; i < rq->nhost_paths; i++) {
		bool ok = false;
		for (size_t j = 0; j < l->n && !ok; j++)
			ok = path_under(rq->host_paths[i], l->v[j]);
		if (!ok) {
			char m[300];
			snprintf(m, sizeof m, "host path %.200s is not under hostPathPrefixes", rq->host_paths[i]);
			return deny(err, from, m);
		}
	}
	return 0;
}
