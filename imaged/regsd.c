/*
 * crisp: registries.d parser (a strict YAML subset) and lookup.  See
 * regsd.h for what is accepted.
 */
#include "imaged/regsd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "imaged/lookaside.h"

/* ---- small helpers ------------------------------------------------------- */

static void entry_clear(struct regsd_entry *e)
{
	free(e->scope);
	free(e->lookaside);
	free(e->file);
	memset(e, 0, sizeof *e);
}

struct regsd *regsd_new(void)
{
	return calloc(1, sizeof(struct regsd));
}

void regsd_free(struct regsd *c)
{
	if (c == NULL)
		return;
	entry_clear(&c->def);
	for (size_t i = 0; i < c->n; i++)
		entry_clear(&c->scopes[i]);
	free(c->scopes);
	free(c);
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct regsd_entry *)a)->scope, ((const struct regsd_entry *)b)->scope);
}

/* Returns NULL when s is a docker scope that can match something. */
static const char *scope_problem(const char *s)
{
	size_t n = strlen(s);
	crisp_err_t sub = CRISP_ERR_INIT;
	struct dockerref r;
	char buf[DOCKERREF_STR_MAX];

	if (n == 0)
		return "is empty (use default-docker)";
	if (n > DOCKERREF_INPUT_MAX)
		return "is too long";
	if (n >= 2 && s[0] == '*' && s[1] == '.') {
		if (!dockerref_valid_hostname(s + 2, n - 2))
			return "is not a valid wildcard: '*.' must be followed by a host name";
		return NULL;
	}
	if (memchr(s, '*', n) != NULL)
		return "has a '*' elsewhere than a leading '*.'";
	const char *slash = memchr(s, '/', n);
	size_t hl = slash != NULL ? (size_t)(slash - s) : n;
	if (!dockerref_valid_domain(s, hl))
		return "does not start with a valid host[:port]";
	if (memchr(s, '.', hl) == NULL && memchr(s, ':', hl) == NULL && !(hl == 9 && memcmp(s, "localhost", 9) == 0))
		return "is not fully expanded: it must start with a registry host (e.g. docker.io/library/busybox)";
	if (hl == 15 && memcmp(s, "index.docker.io", 15) == 0)
		return "uses index.docker.io: the fully expanded form uses docker.io";
	if (slash == NULL)
		return NULL;
	const char *last = strrchr(s, '/');
	if (memchr(s, '@', n) != NULL || strchr(last, ':') != NULL) {
		if (dockerref_parse(s, &r, &sub) < 0)
			return "is not a valid image reference";
		if (r.tag[0] != '\0' && r.digest[0] != '\0')
			return "has both a tag and a digest";
		dockerref_string(&r, buf);
		if (strcmp(buf, s) != 0)
			return "is not in the fully expanded form (e.g. docker.io/library/busybox:latest)";
		return NULL;
	}
	for (const char *p = slash + 1, *end = s + n;;) {
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

/* ---- the YAML subset ----------------------------------------------------- */

enum ctx { CTX_TOP, CTX_DOCKER, CTX_ENTRY };

enum {
	F_LOOKASIDE = 1 << 0,
	F_SIGSTORE = 1 << 1,
	F_LOOKASIDE_STAGING = 1 << 2,
	F_SIGSTORE_STAGING = 1 << 3,
	F_USE_ATTACHMENTS = 1 << 4,
};

struct tmp_entry {
	struct regsd_entry e;
	unsigned seen;
	unsigned line;
};

struct pfile {
	const char *name;
	unsigned line;
	crisp_err_t *err;
	bool has_default;
	struct tmp_entry def;
	size_t n, cap;
	struct tmp_entry *v;
};

#define PERR(p, ...) perr(p, __VA_ARGS__)

__attribute__((format(printf, 2, 3))) static int perr(struct pfile *p, const char *fmt, ...)
{
	char msg[CRISP_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return crisp_error(p->err, CRISP_INVALID_ARGUMENT, 0, "%.200s:%u: %s", p->name, p->line, msg);
}

static bool is_indicator(char c)
{
	return strchr("-?:,[]{}#&*!|>'\"%@`", c) != NULL;
}

/* A scalar token: [s, e) of the line, unquoted into out (NUL-terminated,
 * REGSD_SCALAR_MAX + 1 bytes).  *endp: first byte after the token. */
static int scalar(struct pfile *p, const char *s, const char *e, bool is_key, char *out, const char **endp,
		  bool *quoted)
{
	size_t o = 0;

	*quoted = false;
	if (s < e && (*s == '\'' || *s == '"')) {
		char q = *s++;
		*quoted = true;
		for (;;) {
			if (s >= e)
				return PERR(p, "unterminated %s-quoted scalar", q == '"' ? "double" : "single");
			char c = *s++;
			if (c == q) {
				if (q == '\'' && s < e && *s == '\'') {
					s++;
				} else {
					break;
				}
			} else if (q == '"' && c == '\\') {
				if (s >= e)
					return PERR(p, "unterminated escape");
				switch (*s++) {
				case '\\': c = '\\'; break;
				case '"': c = '"'; break;
				case '/': c = '/'; break;
				case 't': c = '\t'; break;
				case 'n': c = '\n'; break;
				case 'r': c = '\r'; break;
				default:
					return PERR(p, "unsupported escape \\%c", s[-1]);
				}
			}
			if ((unsigned char)c < 0x20 && c != '\t' && c != '\n' && c != '\r')
				return PERR(p, "control character in a quoted scalar");
			if (o >= REGSD_SCALAR_MAX)
				return PERR(p, "scalar longer than %u bytes", REGSD_SCALAR_MAX);
			out[o++] = c;
		}
		out[o] = '\0';
		if (memchr(out, '\0', o) != NULL)
			return PERR(p, "NUL in a quoted scalar");
		*endp = s;
		return 0;
	}
	if (s >= e)
		return PERR(p, "scalar expected");
	if (*s == '&')
		return PERR(p, "anchors are not supported");
	if (*s == '*')
		return PERR(p, "aliases are not supported");
	if (*s == '!')
		return PERR(p, "tags are not supported");
	if (*s == '{' || *s == '[')
		return PERR(p, "flow collections are not supported");
	if (*s == '|' || *s == '>')
		return PERR(p, "block scalars are not supported");
	if (*s == '-' && (s + 1 == e || s[1] == ' '))
		return PERR(p, "sequences are not supported");
	if (is_indicator(*s))
		return PERR(p, "a plain scalar cannot start with '%c'", *s);
	const char *t = s;
	while (t < e) {
		if (*t == ':' && (t + 1 == e || t[1] == ' ')) {
			if (!is_key)
				return PERR(p, "':' followed by a space in a value: quote it");
			break;
		}
		if (*t == '#' && t[-1] == ' ')
			break;
		t++;
	}
	const char *end = t;
	while (end > s && end[-1] == ' ')
		end--;
	if ((size_t)(end - s) > REGSD_SCALAR_MAX)
		return PERR(p, "scalar longer than %u bytes", REGSD_SCALAR_MAX);
	for (const char *c = s; c < end; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return PERR(p, "control character in a scalar");
	memcpy(out, s, (size_t)(end - s));
	out[end - s] = '\0';
	*endp = end;
	return 0;
}

/* After a value: only spaces, then optionally a comment. */
static int line_end(struct pfile *p, const char *s, const char *e)
{
	bool sp = false;
	while (s < e && *s == ' ') {
		s++;
		sp = true;
	}
	if (s == e)
		return 0;
	if (*s == '#' && sp)
		return 0;
	return PERR(p, "unexpected text after the value");
}

static bool is_null(const char *v, bool quoted)
{
	return !quoted && (v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
			   strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0);
}

static int entry_field(struct pfile *p, struct tmp_entry *t, const char *key, const char *val, bool quoted)
{
	static const struct {
		const char *name;
		unsigned bit;
	} fields[] = {
		{ "lookaside", F_LOOKASIDE },
		{ "sigstore", F_SIGSTORE },
		{ "lookaside-staging", F_LOOKASIDE_STAGING },
		{ "sigstore-staging", F_SIGSTORE_STAGING },
		{ "use-sigstore-attachments", F_USE_ATTACHMENTS },
	};
	unsigned bit = 0;

	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if (strcmp(key, fields[i].name) == 0)
			bit = fields[i].bit;
	if (bit == 0)
		return PERR(p, "unknown key \"%.64s\" (expected lookaside, sigstore, lookaside-staging, "
			       "sigstore-staging, use-sigstore-attachments)", key);
	if (t->seen & bit)
		return PERR(p, "duplicate key \"%s\"", key);
	t->seen |= bit;
	if (is_null(val, quoted))
		return 0;
	switch (bit) {
	case F_LOOKASIDE:
	case F_SIGSTORE: {
		if ((t->seen & (F_LOOKASIDE | F_SIGSTORE)) == (F_LOOKASIDE | F_SIGSTORE) && t->e.lookaside != NULL)
			return PERR(p, "both \"lookaside\" and its legacy name \"sigstore\" are set");
		char url[LOOKASIDE_URL_MAX];
		crisp_err_t sub = CRISP_ERR_INIT;
		if (lookaside_sig_url(val, "docker.io/library/busybox",
				      "sha256:0000000000000000000000000000000000000000000000000000000000000000", 1, url,
				      sizeof url, &sub) < 0)
			return PERR(p, "%s: %s", key, sub.msg);
		t->e.lookaside = xstrdup(val);
		break;
	}
	case F_USE_ATTACHMENTS:
		if (quoted)
			return PERR(p, "use-sigstore-attachments: boolean expected, not a quoted string");
		if (!strcmp(val, "true") || !strcmp(val, "True") || !strcmp(val, "TRUE"))
			t->e.use_attachments = true;
		else if (!strcmp(val, "false") || !strcmp(val, "False") || !strcmp(val, "FALSE"))
			t->e.use_attachments = false;
		else
			return PERR(p, "use-sigstore-attachments: boolean expected, got \"%.64s\"", val);
		t->e.has_use_attachments = true;
		break;
	default: /* staging: only ever written to, crisp never writes */
		break;
	}
	return 0;
}

static void pfile_free(struct pfile *p)
{
	entry_clear(&p->def.e);
	for (size_t i = 0; i < p->n; i++)
		entry_clear(&p->v[i].e);
	free(p->v);
	p->v = NULL;
	p->n = p->cap = 0;
}

static int tmp_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tmp_entry *)a)->e.scope, ((const struct tmp_entry *)b)->e.scope);
}

struct level {
	unsigned indent;
	enum ctx ctx;
	struct tmp_entry *entry; /* CTX_ENTRY */
};

static int parse_file(struct pfile *p, const char *data, size_t len)
{
	struct level st[3];
	int depth = 0; /* st[0..depth] */
	bool open = false; /* last key had no value: children may follow */
	enum ctx open_ctx = CTX_TOP;
	struct tmp_entry *open_entry = NULL;
	bool content = false, doc_start = false;
	unsigned top_seen = 0;
	char key[REGSD_SCALAR_MAX + 1], val[REGSD_SCALAR_MAX + 1];

	st[0] = (struct level){ .indent = 0, .ctx = CTX_TOP };
	if (len > REGSD_FILE_MAX)
		return crisp_error(p->err, CRISP_INVALID_ARGUMENT, 0, "%.200s: larger than %u bytes", p->name,
				   REGSD_FILE_MAX);
	if (memchr(data, '\0', len) != NULL)
		return crisp_error(p->err, CRISP_INVALID_ARGUMENT, 0, "%.200s: NUL byte", p->name);
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) { /* UTF-8 BOM */
		data += 3;
		len -= 3;
	}
	const char *s = data, *end = data + len;
	p->line = 0;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t ll = nl != NULL ? (size_t)(nl - s) : (size_t)(end - s);
		const char *next = nl != NULL ? nl + 1 : end;
		p->line++;
		if (ll > 0 && s[ll - 1] == '\r')
			ll--;
		if (memchr(s, '\t', ll) != NULL)
			return PERR(p, "tab character (indent with spaces)");
		const char *e = s + ll;
		const char *c = s;
		while (c < e && *c == ' ')
			c++;
		unsigned indent = (unsigned)(c - s);
		if (c == e || *c == '#') {
			s = next;
			continue;
		}
		if (indent == 0 && e - c >= 3 && (memcmp(c, "---", 3) == 0 || memcmp(c, "...", 3) == 0) &&
		    (e - c == 3 || c[3] == ' ')) {
			if (c[0] == '.' || content || doc_start)
				return PERR(p, "more than one YAML document");
			if (line_end(p, c + 3, e) < 0)
				return -1;
			doc_start = true;
			s = next;
			continue;
		}
		if (indent == 0 && *c == '%')
			return PERR(p, "directives are not supported");
		content = true;

		/* Find the mapping this line belongs to. */
		if (indent > st[depth].indent) {
			if (!open)
				return PERR(p, "unexpected indentation");
			if (indent < st[depth].indent + 2)
				return PERR(p, "indent children by at least two spaces");
			if (depth == 2)
				return PERR(p, "nesting too deep");
			depth++;
			st[depth] = (struct level){ .indent = indent, .ctx = open_ctx, .entry = open_entry };
		} else {
			while (indent < st[depth].indent)
				depth--;
			if (indent != st[depth].indent)
				return PERR(p, "indentation matches no enclosing mapping");
		}
		open = false;

		const char *t;
		bool kq, vq;
		if (scalar(p, c, e, true, key, &t, &kq) < 0)
			return -1;
		if (t >= e || *t != ':')
			return PERR(p, "\"key: value\" expected");
		t++;
		if (t < e && *t != ' ')
			return PERR(p, "a space must follow ':'");
		while (t < e && *t == ' ')
			t++;
		bool has_val = t < e && *t != '#';
		if (has_val) {
			if (scalar(p, t, e, false, val, &t, &vq) < 0)
				return -1;
			if (line_end(p, t, e) < 0)
				return -1;
		} else {
			val[0] = '\0';
			vq = false;
		}

		switch (st[depth].ctx) {
		case CTX_TOP: {
			unsigned bit = strcmp(key, "default-docker") == 0 ? 1 : strcmp(key, "docker") == 0 ? 2 : 0;
			if (bit == 0)
				return PERR(p, "unknown key \"%.64s\" (expected default-docker or docker)", key);
			if (top_seen & bit)
				return PERR(p, "duplicate key \"%s\"", key);
			top_seen |= bit;
			if (has_val && !is_null(val, vq))
				return PERR(p, "%s: a mapping is expected", key);
			open = !has_val;
			if (bit == 1) {
				open_ctx = CTX_ENTRY;
				open_entry = &p->def;
				p->has_default = true;
				p->def.line = p->line;
			} else {
				open_ctx = CTX_DOCKER;
				open_entry = NULL;
			}
			break;
		}
		case CTX_DOCKER: {
			const char *why = scope_problem(key);
			if (why != NULL)
				return PERR(p, "docker scope \"%.200s\" %s", key, why);
			if (has_val && !is_null(val, vq))
				return PERR(p, "docker scope \"%.200s\": a mapping is expected", key);
			if (p->n == REGSD_MAX_SCOPES)
				return PERR(p, "more than %u docker scopes", REGSD_MAX_SCOPES);
			if (p->n == p->cap) {
				size_t nc = p->cap ? p->cap * 2 : 8;
				struct tmp_entry *nv = realloc(p->v, nc * sizeof *nv);
				if (nv == NULL)
					return crisp_error(p->err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
				p->v = nv;
				p->cap = nc;
			}
			/* Entries only grow at the end: pointers into p->v held by
			 * the stack would move on realloc, so none is kept past
			 * this line except open_entry, refreshed here. */
			memset(&p->v[p->n], 0, sizeof p->v[p->n]);
			p->v[p->n].e.scope = xstrdup(key);
			p->v[p->n].line = p->line;
			open = !has_val;
			open_ctx = CTX_ENTRY;
			open_entry = &p->v[p->n];
			p->n++;
			break;
		}
		case CTX_ENTRY:
			if (entry_field(p, st[depth].entry, key, val, vq) < 0)
				return -1;
			break;
		}
		s = next;
	}
	/* Duplicate scopes: sort, then compare neighbours (n log n). */
	if (p->n > 1) {
		qsort(p->v, p->n, sizeof *p->v, tmp_cmp);
		for (size_t i = 1; i < p->n; i++)
			if (strcmp(p->v[i - 1].e.scope, p->v[i].e.scope) == 0) {
				unsigned a = p->v[i - 1].line, b = p->v[i].line;
				p->line = a > b ? a : b;
				return PERR(p, "docker scope \"%.200s\" defined twice (line %u)", p->v[i].e.scope,
					    a < b ? a : b);
			}
	}
	return 0;
}

/* Merge p into c (c unchanged on failure). */
static int merge(struct regsd *c, struct pfile *p, crisp_err_t *err)
{
	if (p->has_default && c->has_default)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "\"default-docker\" defined both in %.200s and %.200s",
				   c->def.file, p->name);
	if (c->n + p->n > REGSD_MAX_SCOPES)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "more than %u docker scopes", REGSD_MAX_SCOPES);
	for (size_t i = 0; i < p->n; i++) {
		struct regsd_entry key = { .scope = p->v[i].e.scope };
		const struct regsd_entry *f = c->n ? bsearch(&key, c->scopes, c->n, sizeof *c->scopes, entry_cmp) : NULL;
		if (f != NULL)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "docker scope \"%.200s\" defined both in %.120s and %.120s", key.scope, f->file,
					   p->name);
	}
	if (p->n > 0) {
		struct regsd_entry *nv = realloc(c->scopes, (c->n + p->n) * sizeof *nv);
		if (nv == NULL)
			return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
		c->scopes = nv;
		for (size_t i = 0; i < p->n; i++) {
			c->scopes[c->n + i] = p->v[i].e;
			c->scopes[c->n + i].file = xstrdup(p->name);
			memset(&p->v[i].e, 0, sizeof p->v[i].e);
		}
		c->n += p->n;
		qsort(c->scopes, c->n, sizeof *c->scopes, entry_cmp);
	}
	if (p->has_default) {
		c->has_default = true;
		c->def = p->def.e;
		c->def.file = xstrdup(p->name);
		memset(&p->def.e, 0, sizeof p->def.e);
	}
	return 0;
}

int regsd_parse(struct regsd *c, const char *name, const void *data, size_t len, crisp_err_t *err)
{
	struct pfile p = { .name = name, .err = err };
	int rc = parse_file(&p, data, len);
	if (rc == 0)
		rc = merge(c, &p, err);
	pfile_free(&p);
	return rc;
}

/* ---- directory ----------------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_file_at(int dfd, const char *name, const char *dir, char **out, size_t *outlen, crisp_err_t *err)
{
	cleanup_close int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0) {
		if (errno == ENOENT) /* removed since readdir (c/image skips it) */
			return 1;
		return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "opening %s/%s: %s", dir, name,
				   strerror(errno));
	}
	char what[PATH_MAX + NAME_MAX + 2];

	snprintf(what, sizeof what, "%s/%s", dir, name);
	return crisp_read_regular(fd, REGSD_FILE_MAX, what, (uint8_t **)out, outlen, err);
}

int regsd_load_dir(const char *dir, struct regsd **out, crisp_err_t *err)
{
	struct regsd *c = regsd_new();
	char **names = NULL;
	size_t n = 0;
	int rc = -1;
	DIR *d;

	*out = NULL;
	if (c == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
	d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT) {
			*out = c;
			return 0;
		}
		crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "opening %s: %s", dir, strerror(errno));
		regsd_free(c);
		return -1;
	}
	names = xcalloc(REGSD_MAX_FILES, sizeof *names);
	for (struct dirent *de; (errno = 0, de = readdir(d)) != NULL;) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 5, ".yaml") != 0)
			continue;
		if (n == REGSD_MAX_FILES) {
			crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: more than %u .yaml files", dir,
				    REGSD_MAX_FILES);
			goto out;
		}
		names[n++] = xstrdup(de->d_name);
	}
	if (errno != 0) {
		crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "reading %s: %s", dir, strerror(errno));
		goto out;
	}
	qsort(names, n, sizeof *names, name_cmp);
	for (size_t i = 0; i < n; i++) {
		char *data = NULL, path[4096];
		size_t len = 0;
		int r = read_file_at(dirfd(d), names[i], dir, &data, &len, err);
		if (r < 0)
			goto out;
		if (r > 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		r = regsd_parse(c, path, data, len, err);
		free(data);
		if (r < 0)
			goto out;
	}
	*out = TAKE_PTR(c);
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	regsd_free(c);
	return rc;
}

/* ---- lookup -------------------------------------------------------------- */

static const struct regsd_entry *find(const struct regsd *c, const char *scope)
{
	struct regsd_entry key = { .scope = (char *)scope };
	if (c->n == 0)
		return NULL;
	return bsearch(&key, c->scopes, c->n, sizeof *c->scopes, entry_cmp);
}

static void consider(struct regsd_result *out, const struct regsd_entry *e, const char *from)
{
	if (e == NULL)
		return;
	if (out->lookaside_from == NULL && e->lookaside != NULL) {
		out->lookaside = e->lookaside;
		out->lookaside_from = from;
	}
	if (out->attachments_from == NULL && e->has_use_attachments) {
		out->use_attachments = e->use_attachments;
		out->attachments_from = from;
	}
}

int regsd_lookup(const struct regsd *c, const char *image_ref, struct regsd_result *out, crisp_err_t *err)
{
	struct dockerref r;
	char id[DOCKERREF_STR_MAX], name[DOCKERREF_NAME_MAX + 1], wc[DOCKERREF_NAME_MAX + 3];
	const struct regsd_entry *e;

	memset(out, 0, sizeof *out);
	if (dockerref_parse_pull(image_ref, &r, err) < 0)
		return -1;
	dockerref_string(&r, id);
	if ((e = find(c, id)) != NULL)
		consider(out, e, e->scope);
	memcpy(name, r.name, sizeof name);
	for (;;) {
		if ((e = find(c, name)) != NULL)
			consider(out, e, e->scope);
		char *slash = strrchr(name, '/');
		if (slash == NULL)
			break;
		*slash = '\0';
	}
	char *colon = strchr(name, ':');
	if (colon != NULL)
		*colon = '\0';
	for (char *dot = strchr(name, '.'); dot != NULL; dot = strchr(dot + 1, '.')) {
		snprintf(wc, sizeof wc, "*.%s", dot + 1);
		if ((e = find(c, wc)) != NULL)
			consider(out, e, e->scope);
	}
	if (c->has_default)
		consider(out, &c->def, "");
	if (out->attachments_from == NULL)
		out->use_attachments = false;
	return 0;
}
