/* imaged: a strict parser for the registries.conf subset (imaged/regconf.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "imaged/regconf.h"
#include "policy/dockerref.h"

enum tbl { T_TOP = 0, T_REGISTRY, T_MIRROR, T_ALIASES };

struct pstate {
	const char *p, *end;
	unsigned line;
	crisp_err_t *err;
	struct regconf *c;
	enum tbl tbl;
	/* keys seen in the current table (duplicate check) */
	unsigned seen;
	bool seen_search;
	bool seen_shortname;
};

/* Keys of [[registry]] and [[registry.mirror]] as bits of pstate.seen. */
enum {
	K_PREFIX = 1u << 0,
	K_LOCATION = 1u << 1,
	K_INSECURE = 1u << 2,
	K_BLOCKED = 1u << 3,
	K_MBDO = 1u << 4,
	K_PULLFROM = 1u << 5,
};

static int perr(struct pstate *s, const char *fmt, const char *a)
{
	return crisp_error(s->err, CRISP_INVALID_ARGUMENT, 0, "registries.conf line %u: %s%s",
			   s->line, fmt, a ? a : "");
}

static void skip_ws(struct pstate *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t'))
		s->p++;
}

/* Whitespace, comments and newlines (inside arrays). */
static void skip_ws_nl(struct pstate *s)
{
	for (;;) {
		skip_ws(s);
		if (s->p < s->end && *s->p == '#') {
			while (s->p < s->end && *s->p != '\n')
				s->p++;
		}
		if (s->p < s->end && *s->p == '\r' && s->p + 1 < s->end && s->p[1] == '\n')
			s->p++;
		if (s->p < s->end && *s->p == '\n') {
			s->p++;
			s->line++;
			continue;
		}
		return;
	}
}

/* The rest of the line must be blank or a comment; consumes the newline. */
static int end_of_line(struct pstate *s)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == '#')
		while (s->p < s->end && *s->p != '\n')
			s->p++;
	if (s->p < s->end && *s->p == '\r')
		s->p++;
	if (s->p < s->end && *s->p != '\n')
		return perr(s, "unexpected text after a value", NULL);
	if (s->p < s->end) {
		s->p++;
		s->line++;
	}
	return 0;
}

/* A basic or literal string; *out malloc'd. */
static int parse_string(struct pstate *s, char **out)
{
	char q = *s->p;
	char buf[REGCONF_MAX_STRING + 1];
	size_t n = 0;

	*out = NULL;
	s->p++;
	for (;;) {
		unsigned char ch;

		if (s->p >= s->end || *s->p == '\n')
			return perr(s, "unterminated string", NULL);
		ch = (unsigned char)*s->p++;
		if (ch == (unsigned char)q)
			break;
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return perr(s, "control character in a string", NULL);
		if (q == '"' && ch == '\\') {
			if (s->p >= s->end)
				return perr(s, "unterminated string", NULL);
			switch (*s->p++) {
			case '"': ch = '"'; break;
			case '\\': ch = '\\'; break;
			case 'b': ch = '\b'; break;
			case 'f': ch = '\f'; break;
			case 'n': ch = '\n'; break;
			case 'r': ch = '\r'; break;
			case 't': ch = '\t'; break;
			default: return perr(s, "unsupported escape in a string", NULL);
			}
		}
		if (n >= REGCONF_MAX_STRING)
			return perr(s, "string too long", NULL);
		buf[n++] = (char)ch;
	}
	buf[n] = '\0';
	*out = strdup(buf);
	if (!*out)
		return crisp_error(s->err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "registries.conf");
	return 0;
}

static int parse_key(struct pstate *s, char *key, size_t size)
{
	size_t n = 0;

	if (s->p < s->end && (*s->p == '"' || *s->p == '\'')) {
		char *k;
		if (parse_string(s, &k) < 0)
			return -1;
		if (strlen(k) >= size) {
			free(k);
			return perr(s, "key too long", NULL);
		}
		strcpy(key, k);
		free(k);
		return 0;
	}
	while (s->p < s->end && (isalnum((unsigned char)*s->p) || *s->p == '_' || *s->p == '-')) {
		if (n + 1 >= size)
			return perr(s, "key too long", NULL);
		key[n++] = *s->p++;
	}
	key[n] = '\0';
	if (n == 0)
		return perr(s, "expected a key", NULL);
	return 0;
}

static int parse_bool(struct pstate *s, bool *out)
{
	if ((size_t)(s->end - s->p) >= 4 && memcmp(s->p, "true", 4) == 0) {
		*out = true;
		s->p += 4;
	} else if ((size_t)(s->end - s->p) >= 5 && memcmp(s->p, "false", 5) == 0) {
		*out = false;
		s->p += 5;
	} else {
		return perr(s, "expected true or false", NULL);
	}
	if (s->p < s->end && (isalnum((unsigned char)*s->p) || *s->p == '_'))
		return perr(s, "expected true or false", NULL);
	return 0;
}

static int parse_str_value(struct pstate *s, char **out)
{
	if (s->p >= s->end || (*s->p != '"' && *s->p != '\''))
		return perr(s, "expected a string", NULL);
	return parse_string(s, out);
}

/* An array of strings; only the first element is kept (in *first). */
static int parse_str_array_(struct pstate *s, char **first)
{
	size_t count = 0;

	*first = NULL;
	if (s->p >= s->end || *s->p != '[')
		return perr(s, "expected an array of strings", NULL);
	s->p++;
	for (;;) {
		char *v;

		skip_ws_nl(s);
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			return 0;
		}
		if (parse_str_value(s, &v) < 0)
			return -1;
		if (count++ == 0)
			*first = v;
		else
			free(v);
		if (count > REGCONF_MAX_REGISTRIES)
			return perr(s, "array too long", NULL);
		skip_ws_nl(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			return 0;
		}
		return perr(s, "expected ',' or ']' in an array", NULL);
	}
}

static int parse_str_array(struct pstate *s, char **first)
{
	int rc = parse_str_array_(s, first);

	if (rc < 0) {
		free(*first);
		*first = NULL;
	}
	return rc;
}

/* Skip any value (the ignored keys). */
static int skip_value(struct pstate *s)
{
	char *v = NULL;
	bool b;
	int rc;

	if (s->p < s->end && *s->p == '[')
		rc = parse_str_array(s, &v);
	else if (s->p < s->end && (*s->p == '"' || *s->p == '\''))
		rc = parse_string(s, &v);
	else
		rc = parse_bool(s, &b);
	free(v);
	return rc;
}

/* host[:port][/path], host a DNS name or IPv4 address (dockerref rules). */
static bool valid_location(const char *l, bool allow_wildcard)
{
	const char *slash = strchr(l, '/');
	size_t hl = slash ? (size_t)(slash - l) : strlen(l);

	if (hl == 0)
		return false;
	if (allow_wildcard && strncmp(l, "*.", 2) == 0)
		return !slash && dockerref_valid_hostname(l + 2, hl - 2);
	if (!dockerref_valid_domain(l, hl))
		return false;
	while (slash) {
		const char *c = slash + 1, *next = strchr(c, '/');
		size_t cl = next ? (size_t)(next - c) : strlen(c);
		if (!dockerref_valid_component(c, cl))
			return false;
		slash = next;
	}
	return true;
}

static struct regconf_registry *cur_reg(struct pstate *s)
{
	return &s->c->regs[s->c->nregs - 1];
}

static int dup_check(struct pstate *s, unsigned bit, const char *key)
{
	if (s->seen & bit)
		return perr(s, "duplicate key ", key);
	s->seen |= bit;
	return 0;
}

static int parse_kv(struct pstate *s)
{
	char key[REGCONF_MAX_STRING + 1];
	char *v = NULL;

	if (parse_key(s, key, sizeof key) < 0)
		return -1;
	skip_ws(s);
	if (s->p >= s->end || *s->p != '=')
		return perr(s, "expected '=' after ", key);
	s->p++;
	skip_ws(s);
	switch (s->tbl) {
	case T_TOP:
		if (strcmp(key, "unqualified-search-registries") == 0) {
			if (s->seen_search)
				return perr(s, "duplicate key ", key);
			s->seen_search = true;
			if (parse_str_array(s, &v) < 0)
				return -1;
			if (v && !valid_location(v, false)) {
				free(v);
				return perr(s, "unqualified-search-registries: not a registry", NULL);
			}
			s->c->search = v;
			return 0;
		}
		if (strcmp(key, "short-name-mode") == 0) {
			if (s->seen_shortname)
				return perr(s, "duplicate key ", key);
			s->seen_shortname = true;
			if (parse_str_value(s, &v) < 0)
				return -1;
			free(v);
			return 0;
		}
		if (strcmp(key, "credential-helpers") == 0)
			return skip_value(s);
		return perr(s, "unknown key ", key);
	case T_ALIASES:
		if (parse_str_value(s, &v) < 0)
			return -1;
		free(v);
		return 0;
	case T_REGISTRY: {
		struct regconf_registry *r = cur_reg(s);
		if (strcmp(key, "prefix") == 0 || strcmp(key, "location") == 0) {
			bool pfx = key[0] == 'p';
			if (dup_check(s, pfx ? K_PREFIX : K_LOCATION, key) < 0 ||
			    parse_str_value(s, &v) < 0)
				return -1;
			if (!valid_location(v, pfx)) {
				free(v);
				return perr(s, pfx ? "prefix: not a host[:port][/path] or *.domain"
						   : "location: not a host[:port][/path]",
					    NULL);
			}
			if (pfx)
				r->prefix = v;
			else
				r->location = v;
			return 0;
		}
		if (strcmp(key, "insecure") == 0)
			return dup_check(s, K_INSECURE, key) < 0 ? -1 : parse_bool(s, &r->insecure);
		if (strcmp(key, "blocked") == 0)
			return dup_check(s, K_BLOCKED, key) < 0 ? -1 : parse_bool(s, &r->blocked);
		if (strcmp(key, "mirror-by-digest-only") == 0)
			return dup_check(s, K_MBDO, key) < 0 ? -1
							     : parse_bool(s, &r->mirror_by_digest_only);
		return perr(s, "unknown key in [[registry]]: ", key);
	}
	case T_MIRROR: {
		struct regconf_registry *r = cur_reg(s);
		struct regconf_mirror *m = &r->mirrors[r->nmirrors - 1];
		if (strcmp(key, "location") == 0) {
			if (dup_check(s, K_LOCATION, key) < 0 || parse_str_value(s, &v) < 0)
				return -1;
			if (!valid_location(v, false)) {
				free(v);
				return perr(s, "mirror location: not a host[:port][/path]", NULL);
			}
			m->location = v;
			return 0;
		}
		if (strcmp(key, "insecure") == 0)
			return dup_check(s, K_INSECURE, key) < 0 ? -1 : parse_bool(s, &m->insecure);
		if (strcmp(key, "pull-from-mirror") == 0) {
			if (dup_check(s, K_PULLFROM, key) < 0 || parse_str_value(s, &v) < 0)
				return -1;
			if (strcmp(v, "all") && strcmp(v, "digest-only") && strcmp(v, "tag-only")) {
				free(v);
				return perr(s, "pull-from-mirror: all, digest-only or tag-only", NULL);
			}
			free(v);
			return 0;
		}
		return perr(s, "unknown key in [[registry.mirror]]: ", key);
	}
	}
	return perr(s, "internal", NULL);
}

/* Close the current table: check what it must have. */
static int close_table(struct pstate *s)
{
	if (s->tbl == T_MIRROR) {
		struct regconf_registry *r = cur_reg(s);
		if (!r->mirrors[r->nmirrors - 1].location)
			return perr(s, "[[registry.mirror]] without a location (before this line)",
				    NULL);
	}
	return 0;
}

static int finish_registry(struct pstate *s, struct regconf_registry *r)
{
	if (!r->prefix && !r->location)
		return perr(s, "[[registry]] needs a prefix or a location (before this line)", NULL);
	if (!r->prefix) {
		r->prefix = strdup(r->location);
		if (!r->prefix)
			return crisp_error(s->err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "registries.conf");
	}
	if (strncmp(r->prefix, "*.", 2) == 0 && r->location)
		return perr(s, "a \"*.\" prefix cannot have a location: ", r->prefix);
	for (size_t i = 0; i + 1 < s->c->nregs; i++)
		if (strcmp(s->c->regs[i].prefix, r->prefix) == 0)
			return perr(s, "two [[registry]] entries with prefix ", r->prefix);
	return 0;
}

static int parse_header(struct pstate *s)
{
	bool arr = s->end - s->p >= 2 && s->p[1] == '[';
	const char *start = s->p + (arr ? 2 : 1);
	const char *close = memchr(start, ']', (size_t)(s->end - start));
	char name[32];
	size_t n;

	if (!close)
		return perr(s, "unterminated table header", NULL);
	n = (size_t)(close - start);
	if (n >= sizeof name)
		return perr(s, "unknown table", NULL);
	memcpy(name, start, n);
	name[n] = '\0';
	s->p = close + 1;
	if (arr) {
		if (s->p >= s->end || *s->p != ']')
			return perr(s, "unterminated table header", NULL);
		s->p++;
	}
	if (close_table(s) < 0)
		return -1;
	if (arr && strcmp(name, "registry") == 0) {
		void *p;
		if (s->c->nregs > 0 && finish_registry(s, cur_reg(s)) < 0)
			return -1;
		if (s->c->nregs >= REGCONF_MAX_REGISTRIES)
			return perr(s, "too many [[registry]] entries", NULL);
		p = realloc(s->c->regs, (s->c->nregs + 1) * sizeof *s->c->regs);
		if (!p)
			return crisp_error(s->err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "registries.conf");
		s->c->regs = p;
		memset(&s->c->regs[s->c->nregs++], 0, sizeof *s->c->regs);
		s->tbl = T_REGISTRY;
	} else if (arr && strcmp(name, "registry.mirror") == 0) {
		struct regconf_registry *r;
		void *p;
		if (s->c->nregs == 0)
			return perr(s, "[[registry.mirror]] before any [[registry]]", NULL);
		r = cur_reg(s);
		if (r->nmirrors >= REGCONF_MAX_MIRRORS)
			return perr(s, "too many mirrors", NULL);
		p = realloc(r->mirrors, (r->nmirrors + 1) * sizeof *r->mirrors);
		if (!p)
			return crisp_error(s->err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "registries.conf");
		r->mirrors = p;
		memset(&r->mirrors[r->nmirrors++], 0, sizeof *r->mirrors);
		s->tbl = T_MIRROR;
	} else if (!arr && strcmp(name, "aliases") == 0) {
		s->tbl = T_ALIASES;
	} else {
		return perr(s, "unknown table ", name);
	}
	s->seen = 0;
	return end_of_line(s);
}

int regconf_parse(const char *buf, size_t len, struct regconf **out, crisp_err_t *err)
{
	struct pstate s = { .p = buf, .end = buf + len, .line = 1, .err = err };

	*out = NULL;
	if (len > REGCONF_MAX_FILE)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "registries.conf: larger than %u bytes",
				   REGCONF_MAX_FILE);
	if (memchr(buf, '\0', len))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "registries.conf: NUL byte");
	s.c = calloc(1, sizeof *s.c);
	if (!s.c)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "registries.conf");
	for (;;) {
		skip_ws_nl(&s);
		if (s.p >= s.end)
			break;
		if (*s.p == '[') {
			if (parse_header(&s) < 0)
				goto fail;
			continue;
		}
		if (parse_kv(&s) < 0 || end_of_line(&s) < 0)
			goto fail;
	}
	if (close_table(&s) < 0 || (s.c->nregs > 0 && finish_registry(&s, cur_reg(&s)) < 0))
		goto fail;
	*out = s.c;
	return 0;
fail:
	regconf_free(s.c);
	return -1;
}

void regconf_free(struct regconf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nregs; i++) {
		struct regconf_registry *r = &c->regs[i];
		for (size_t j = 0; j < r->nmirrors; j++)
			free(r->mirrors[j].location);
		free(r->mirrors);
		free(r->prefix);
		free(r->location);
	}
	free(c->regs);
	free(c->search);
	free(c);
}

/* ------------------------------------------------------------ resolution */

int regconf_qualify(const struct regconf *c, const char *ref, char *out, size_t outsize,
		    crisp_err_t *err)
{
	const char *slash = strchr(ref, '/');
	const char *search = c && c->search ? c->search : "docker.io";
	bool qualified = false;

	if (slash) {
		size_t n = (size_t)(slash - ref);
		qualified = memchr(ref, '.', n) || memchr(ref, ':', n) ||
			    (n == 9 && memcmp(ref, "localhost", 9) == 0);
	}
	if (qualified || strcmp(search, "docker.io") == 0) {
		if ((size_t)snprintf(out, outsize, "%s", ref) >= outsize)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "image reference too long");
		return 0;
	}
	if ((size_t)snprintf(out, outsize, "%s/%s", search, ref) >= outsize)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "image reference too long");
	return 0;
}

/* Does prefix match name (name equals it or continues with '/')? */
static size_t prefix_match(const char *prefix, const char *name)
{
	size_t n = strlen(prefix);

	if (strncmp(prefix, "*.", 2) == 0) {
		const char *slash = strchr(name, '/');
		size_t hl = slash ? (size_t)(slash - name) : strlen(name);
		const char *colon = memchr(name, ':', hl);
		size_t dl = n - 1; /* ".example.com" */
		if (colon)
			hl = (size_t)(colon - name);
		if (hl > dl && memcmp(name + hl - dl, prefix + 1, dl) == 0)
			return n;
		return 0;
	}
	if (strncmp(prefix, name, n) == 0 && (name[n] == '\0' || name[n] == '/'))
		return n;
	return 0;
}

static int add_source(const char *location, const char *rest, bool insecure, bool mirror,
		      struct regconf_source *o, crisp_err_t *err)
{
	char full[REGCONF_HOST_MAX + REGCONF_REPO_MAX + 8];
	const char *slash;
	size_t hl;

	if ((size_t)snprintf(full, sizeof full, "%s%s", location, rest) >= sizeof full)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "rewritten reference too long");
	slash = strchr(full, '/');
	if (!slash || slash[1] == '\0')
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "registries.conf: %s has no repository path", full);
	hl = (size_t)(slash - full);
	if (hl >= sizeof o->host || strlen(slash + 1) >= sizeof o->repo)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "rewritten reference too long");
	memcpy(o->host, full, hl);
	o->host[hl] = '\0';
	strcpy(o->repo, slash + 1);
	if (strcmp(o->host, "docker.io") == 0)
		strcpy(o->host, "registry-1.docker.io");
	o->insecure = insecure;
	o->mirror = mirror;
	return 0;
}

int regconf_sources(const struct regconf *c, const char *name, bool by_digest,
		    struct regconf_source *out, size_t max, size_t *n, crisp_err_t *err)
{
	const struct regconf_registry *best = NULL;
	size_t best_len = 0;

	*n = 0;
	if (max < REGCONF_MAX_MIRRORS + 1)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "regconf_sources: max too small");
	for (size_t i = 0; c && i < c->nregs; i++) {
		size_t l = prefix_match(c->regs[i].prefix, name);
		if (l > best_len) {
			best = &c->regs[i];
			best_len = l;
		}
	}
	if (!best)
		return add_source("", name, false, false, &out[(*n)++], err);
	if (best->blocked)
		return crisp_error(err, CRISP_PERMISSION_DENIED, 0,
				   "registry %s is blocked by registries.conf", best->prefix);
	{
		bool wildcard = strncmp(best->prefix, "*.", 2) == 0;
		const char *rest = wildcard ? name : name + best_len;
		if (!best->mirror_by_digest_only || by_digest)
			for (size_t i = 0; i < best->nmirrors; i++)
				if (add_source(best->mirrors[i].location, rest,
					       best->mirrors[i].insecure, true, &out[(*n)++], err) < 0)
					return -1;
		if (add_source(wildcard || !best->location ? "" : best->location,
			       wildcard || !best->location ? name : rest, best->insecure, false,
			       &out[(*n)++], err) < 0)
			return -1;
	}
	return 0;
}
