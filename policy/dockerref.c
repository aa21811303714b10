/*
 * crisp: strict Docker reference parsing (see dockerref.h).
 *
 * Behaviour follows containers/image docker/reference (normalize.go
 * ParseNormalizedNamed, splitDockerDomain; reference.go Parse; regexp.go),
 * written as explicit scanners instead of regular expressions.
 */
#include "policy/dockerref.h"

#include <string.h>

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_word(char c)
{
	return is_alnum(c) || c == '_';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_lower_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9] */
static bool valid_domain_component(const char *s, size_t n)
{
	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

bool dockerref_valid_hostname(const char *s, size_t n)
{
	size_t start = 0;

	if (n == 0)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (!valid_domain_component(s + start, i - start))
				return false;
			start = i + 1;
		}
	}
	return true;
}

bool dockerref_valid_domain(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);

	if (colon == NULL)
		return dockerref_valid_hostname(s, n);
	size_t hn = (size_t)(colon - s);
	if (!dockerref_valid_hostname(s, hn) || hn + 1 == n)
		return false;
	for (size_t i = hn + 1; i < n; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/* [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)* */
bool dockerref_valid_component(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || !is_lower_alnum(s[0]))
		return false;
	while (i < n) {
		while (i < n && is_lower_alnum(s[i]))
			i++;
		if (i == n)
			return true;
		size_t sep = i;
		while (i < n && (s[i] == '.' || s[i] == '_' || s[i] == '-'))
			i++;
		size_t sl = i - sep;
		bool ok = false;
		if (sl == 1 && (s[sep] == '.' || s[sep] == '_'))
			ok = true;
		else if (sl == 2 && s[sep] == '_' && s[sep + 1] == '_')
			ok = true;
		else {
			ok = true;
			for (size_t k = sep; k < i; k++)
				if (s[k] != '-')
					ok = false;
		}
		if (!ok || i == n || !is_lower_alnum(s[i]))
			return false;
	}
	return true;
}

bool dockerref_valid_tag(const char *s, size_t n)
{
	if (n == 0 || n > DOCKERREF_TAG_MAX || !is_word(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_word(s[i]) && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

bool dockerref_valid_digest(const char *s, size_t n)
{
	static const struct {
		const char *alg;
		size_t hexlen;
	} algs[] = { { "sha256", 64 }, { "sha384", 96 }, { "sha512", 128 } };

	for (size_t a = 0; a < sizeof algs / sizeof algs[0]; a++) {
		size_t al = strlen(algs[a].alg);
		if (n != al + 1 + algs[a].hexlen || memcmp(s, algs[a].alg, al) != 0 || s[al] != ':')
			continue;
		for (size_t i = al + 1; i < n; i++)
			if (!is_lower_hex(s[i]))
				return false;
		return true;
	}
	return false;
}

static bool is_image_id(const char *s, size_t n)
{
	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_hex(s[i]))
			return false;
	return true;
}

static bool has_upper(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			return true;
	return false;
}

int dockerref_parse(const char *s, struct dockerref *out, crisp_err_t *err)
{
	static const char def_domain[] = "docker.io";
	size_t n;
	const char *dom, *rem, *slash;
	size_t dlen, rlen;
	bool library = false;

	memset(out, 0, sizeof *out);
	if (s == NULL || s[0] == '\0')
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "invalid reference: empty");
	n = strnlen(s, DOCKERREF_INPUT_MAX + 1);
	if (n > DOCKERREF_INPUT_MAX)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "invalid reference: longer than %d bytes",
				   DOCKERREF_INPUT_MAX);
	if (is_image_id(s, n))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "invalid reference '%s': cannot specify 64-byte hexadecimal strings", s);

	/* splitDockerDomain */
	slash = memchr(s, '/', n);
	if (slash == NULL) {
		dom = def_domain, dlen = sizeof def_domain - 1;
		rem = s, rlen = n;
	} else {
		size_t fl = (size_t)(slash - s);
		if (memchr(s, '.', fl) == NULL && memchr(s, ':', fl) == NULL &&
		    !(fl == 9 && memcmp(s, "localhost", 9) == 0)) {
			dom = def_domain, dlen = sizeof def_domain - 1;
			rem = s, rlen = n;
		} else {
			dom = s, dlen = fl;
			rem = slash + 1, rlen = n - fl - 1;
		}
	}
	if (dlen == 15 && memcmp(dom, "index.docker.io", 15) == 0)
		dom = def_domain, dlen = sizeof def_domain - 1;
	if (dlen == 9 && memcmp(dom, def_domain, 9) == 0 && memchr(rem, '/', rlen) == NULL)
		library = true;

	if (!dockerref_valid_domain(dom, dlen))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "invalid reference '%s': invalid domain '%.*s'", s,
				   (int)dlen, dom);

	/* remainder: path [":" tag] ["@" digest] */
	const char *at = memchr(rem, '@', rlen);
	size_t nt_len = at != NULL ? (size_t)(at - rem) : rlen; /* path[:tag] */
	const char *colon = memchr(rem, ':', nt_len);
	size_t plen = colon != NULL ? (size_t)(colon - rem) : nt_len;

	if (has_upper(rem, plen))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "invalid reference '%s': repository name must be lowercase", s);
	if (plen == 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "invalid reference '%s': empty repository path",
				   s);
	size_t start = 0;
	for (size_t i = 0; i <= plen; i++) {
		if (i == plen || rem[i] == '/') {
			if (!dockerref_valid_component(rem + start, i - start))
				return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
						   "invalid reference '%s': invalid path component '%.*s'", s,
						   (int)(i - start), rem + start);
			start = i + 1;
		}
	}
	size_t name_len = dlen + 1 + (library ? 8 : 0) + plen;
	if (name_len > DOCKERREF_NAME_MAX)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "invalid reference '%.64s...': repository name must not be more than %d characters",
				   s, DOCKERREF_NAME_MAX);
	if (colon != NULL) {
		size_t tl = nt_len - plen - 1;
		if (!dockerref_valid_tag(colon + 1, tl))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "invalid reference '%s': invalid tag '%.*s'",
					   s, (int)tl, colon + 1);
		memcpy(out->tag, colon + 1, tl);
		out->tag[tl] = '\0';
	}
	if (at != NULL) {
		size_t gl = rlen - nt_len - 1;
		if (!dockerref_valid_digest(at + 1, gl))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "invalid reference '%s': invalid digest '%.*s'", s, (int)gl, at + 1);
		memcpy(out->digest, at + 1, gl);
		out->digest[gl] = '\0';
	}

	char *p = out->name;
	memcpy(p, dom, dlen);
	p += dlen;
	*p++ = '/';
	if (library) {
		memcpy(p, "library/", 8);
		p += 8;
	}
	memcpy(p, rem, plen);
	p[plen] = '\0';
	out->domain_len = dlen;
	return 0;
}

bool dockerref_is_name_only(const struct dockerref *r)
{
	return r->tag[0] == '\0' && r->digest[0] == '\0';
}

void dockerref_string(const struct dockerref *r, char *out)
{
	size_t n = strlen(r->name);

	memcpy(out, r->name, n);
	if (r->tag[0] != '\0') {
		size_t t = strlen(r->tag);
		out[n++] = ':';
		memcpy(out + n, r->tag, t);
		n += t;
	}
	if (r->digest[0] != '\0') {
		size_t d = strlen(r->digest);
		out[n++] = '@';
		memcpy(out + n, r->digest, d);
		n += d;
	}
	out[n] = '\0';
}

bool dockerref_same_name(const struct dockerref *a, const struct dockerref *b)
{
	return strcmp(a->name, b->name) == 0;
}

int dockerref_parse_canonical(const char *s, struct dockerref *out, crisp_err_t *err)
{
	char buf[DOCKERREF_STR_MAX];

	if (dockerref_parse(s, out, err) < 0)
		return -1;
	dockerref_string(out, buf);
	if (strcmp(buf, s) != 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "reference '%s' is not in the fully expanded form (that is '%s')", s, buf);
	return 0;
}

int dockerref_parse_pull(const char *s, struct dockerref *out, crisp_err_t *err)
{
	if (dockerref_parse(s, out, err) < 0)
		return -1;
	if (out->tag[0] != '\0' && out->digest[0] != '\0')
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "reference '%s': references with both a tag and a digest are not supported", s);
	if (dockerref_is_name_only(out))
		memcpy(out->tag, "latest", sizeof "latest");
	return 0;
}
