/*
 * imaged: pure parsers for what a registry says about authentication and
 * errors: WWW-Authenticate challenges, token endpoint answers, OCI error
 * documents.  No I/O, no global state; fuzzed by tests/fuzz/fuzz_wwwauth.c.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "imaged/registry.h"

static bool is_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch != 0 && strchr("!#$%&'*+-.^_`|~/", ch) != NULL; /* '/' : token68 */
}

static bool is_ws(unsigned char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Read a token into out (bounded); returns its length or -1 when too long. */
static int read_token(const char **pp, const char *end, char *out, size_t outsize)
{
	const char *p = *pp;
	size_t n = 0;

	while (p < end && is_tchar((unsigned char)*p)) {
		if (n + 1 >= outsize)
			return -1;
		out[n++] = *p++;
	}
	out[n] = '\0';
	*pp = p;
	return (int)n;
}

struct chal_acc {
	int scheme;
	char realm[sizeof(((struct reg_challenge *)0)->realm)];
	char service[sizeof(((struct reg_challenge *)0)->service)];
	char scope[sizeof(((struct reg_challenge *)0)->scope)];
	unsigned seen; /* bit 0 realm, 1 service, 2 scope */
};

int reg_parse_challenge(const char *value, size_t len, struct reg_challenge *out, crisp_err_t *err)
{
	const char *p = value, *end = value + len;
	struct chal_acc cur, bearer, basic;
	bool have_cur = false, have_bearer = false, have_basic = false;
	char name[64], val[1024];

	memset(out, 0, sizeof *out);
	memset(&cur, 0, sizeof cur);
	memset(&bearer, 0, sizeof bearer);
	memset(&basic, 0, sizeof basic);
	if (len > REG_MAX_CHALLENGE)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "WWW-Authenticate: longer than %u bytes",
				   REG_MAX_CHALLENGE);
	for (;;) {
		while (p < end && (is_ws((unsigned char)*p) || *p == ','))
			p++;
		if (p == end)
			break;
		if (read_token(&p, end, name, sizeof name) <= 0)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "WWW-Authenticate: malformed challenge at offset %zu",
					   (size_t)(p - value));
		while (p < end && is_ws((unsigned char)*p))
			p++;
		if (p < end && *p == '=') {
			/* auth-param (or token68 padding) of the current challenge */
			size_t n = 0;

			p++;
			while (p < end && is_ws((unsigned char)*p))
				p++;
			if (p == end || *p == ',' || *p == '=') {
				while (p < end && *p == '=')
					p++; /* token68 padding: ignored */
				continue;
			}
			if (*p == '"') {
				p++;
				for (;;) {
					unsigned char ch;

					if (p == end)
						return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
								   "WWW-Authenticate: unterminated quoted string");
					ch = (unsigned char)*p++;
					if (ch == '"')
						break;
					if (ch == '\\') {
						if (p == end)
							return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
									   "WWW-Authenticate: unterminated quoted string");
						ch = (unsigned char)*p++;
					}
					if (ch < 0x20 || ch == 0x7f)
						return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
								   "WWW-Authenticate: control character in a value");
					if (n + 1 >= sizeof val)
						return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
								   "WWW-Authenticate: value too long");
					val[n++] = (char)ch;
				}
				val[n] = '\0';
			} else if (read_token(&p, end, val, sizeof val) <= 0) {
				return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
						   "WWW-Authenticate: malformed parameter value");
			}
			if (!have_cur)
				return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
						   "WWW-Authenticate: parameter before any scheme");
			{
				char *dst = NULL;
				size_t dstsize = 0;
				unsigned bit = 0;

				if (strcasecmp(name, "realm") == 0) {
					dst = cur.realm, dstsize = sizeof cur.realm, bit = 1;
				} else if (strcasecmp(name, "service") == 0) {
					dst = cur.service, dstsize = sizeof cur.service, bit = 2;
				} else if (strcasecmp(name, "scope") == 0) {
					dst = cur.scope, dstsize = sizeof cur.scope, bit = 4;
				}
				if (dst != NULL) {
					if (cur.seen & bit)
						return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
								   "WWW-Authenticate: parameter %s given twice", name);
					if (strlen(val) >= dstsize)
						return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
								   "WWW-Authenticate: %s too long", name);
					cur.seen |= bit;
					strcpy(dst, val);
				}
			}
			continue;
		}
		/* a new challenge: close the current one */
		if (have_cur) {
			if (cur.scheme == REG_CHAL_BEARER && !have_bearer)
				bearer = cur, have_bearer = true;
			else if (cur.scheme == REG_CHAL_BASIC && !have_basic)
				basic = cur, have_basic = true;
		}
		memset(&cur, 0, sizeof cur);
		have_cur = true;
		if (strcasecmp(name, "Bearer") == 0)
			cur.scheme = REG_CHAL_BEARER;
		else if (strcasecmp(name, "Basic") == 0)
			cur.scheme = REG_CHAL_BASIC;
		else
			cur.scheme = REG_CHAL_NONE;
	}
	if (have_cur) {
		if (cur.scheme == REG_CHAL_BEARER && !have_bearer)
			bearer = cur, have_bearer = true;
		else if (cur.scheme == REG_CHAL_BASIC && !have_basic)
			basic = cur, have_basic = true;
	}
	if (have_bearer) {
		if (bearer.realm[0] == '\0')
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "WWW-Authenticate: Bearer challenge without a realm");
		out->scheme = REG_CHAL_BEARER;
		memcpy(out->realm, bearer.realm, sizeof out->realm);
		memcpy(out->service, bearer.service, sizeof out->service);
		memcpy(out->scope, bearer.scope, sizeof out->scope);
		return 0;
	}
	if (have_basic) {
		out->scheme = REG_CHAL_BASIC;
		memcpy(out->realm, basic.realm, sizeof out->realm);
		return 0;
	}
	return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
			   "WWW-Authenticate: no Basic or Bearer challenge");
}

/* Copy printable ASCII (others as '?'), at most max bytes. */
static void copy_printable(char *dst, size_t dstsize, const char *src, size_t max)
{
	size_t n = 0;

	if (dstsize == 0)
		return;
	for (; *src != '\0' && n + 1 < dstsize && n < max; src++) {
		unsigned char ch = (unsigned char)*src;
		dst[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	dst[n] = '\0';
}

int reg_parse_oci_error(const uint8_t *body, size_t len, char *out, size_t outsize)
{
	json_t *root, *errs, *e0, *code, *msg;
	json_error_t jerr;
	char c[65] = "", m[257] = "";
	int ret = -1;

	if (outsize > 0)
		out[0] = '\0';
	if (body == NULL || len == 0 || len > REG_MAX_SMALL_BODY || outsize == 0)
		return -1;
	root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return -1;
	errs = json_object_get(root, "errors");
	if (!json_is_array(errs) || json_array_size(errs) == 0)
		goto out;
	e0 = json_array_get(errs, 0);
	if (!json_is_object(e0))
		goto out;
	code = json_object_get(e0, "code");
	msg = json_object_get(e0, "message");
	if (json_is_string(code))
		copy_printable(c, sizeof c, json_string_value(code), 64);
	if (json_is_string(msg))
		copy_printable(m, sizeof m, json_string_value(msg), 256);
	if (c[0] == '\0' && m[0] == '\0')
		goto out;
	if (c[0] != '\0' && m[0] != '\0')
		snprintf(out, outsize, "%s: %s", c, m);
	else
		snprintf(out, outsize, "%s", c[0] != '\0' ? c : m);
	ret = 0;
out:
	json_decref(root);
	return ret;
}

int reg_parse_token(const uint8_t *body, size_t len, char *tok, long *expires_in,
		    crisp_err_t *err)
{
	json_t *root, *t, *exp;
	json_error_t jerr;
	const char *s;
	size_t n;

	tok[0] = '\0';
	*expires_in = 0;
	if (len > REG_MAX_SMALL_BODY)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "token answer larger than %u bytes",
				   REG_MAX_SMALL_BODY);
	root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "token answer is not a JSON object");
	}
	t = json_object_get(root, "access_token");
	if (!json_is_string(t) || json_string_length(t) == 0)
		t = json_object_get(root, "token");
	if (!json_is_string(t)) {
		json_decref(root);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "token answer holds no token");
	}
	s = json_string_value(t);
	n = json_string_length(t);
	if (n == 0 || n > REG_MAX_TOKEN) {
		json_decref(root);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "token length %zu out of bounds", n);
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x21 || ch > 0x7e) {
			json_decref(root);
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "token holds a byte that cannot go in a header");
		}
	}
	memcpy(tok, s, n);
	tok[n] = '\0';
	exp = json_object_get(root, "expires_in");
	if (json_is_integer(exp) && json_integer_value(exp) > 0)
		*expires_in = json_integer_value(exp) > 86400 ? 86400 : (long)json_integer_value(exp);
	json_decref(root);
	return 0;
}
