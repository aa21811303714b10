/*
 * frontd streaming server: HTTP/1.1 request head parser (RFC 9112), strict:
 * CRLF line ends only, no obs-fold, token header names, no control bytes in
 * values, no body.  Headers that are not needed are checked and skipped.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "frontd/stream_http.h"

static bool is_tchar(unsigned char c)
{
	return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool ieq(const char *a, size_t alen, const char *b)
{
	return alen == strlen(b) && strncasecmp(a, b, alen) == 0;
}

static void trim(const char **v, size_t *n)
{
	while (*n > 0 && (**v == ' ' || **v == '\t')) {
		(*v)++;
		(*n)--;
	}
	while (*n > 0 && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
		(*n)--;
}

bool http_list_has(const char *list, size_t len, const char *name)
{
	size_t i = 0;

	while (i < len) {
		size_t j = i;
		const char *t;
		size_t tn;

		while (j < len && list[j] != ',')
			j++;
		t = list + i;
		tn = j - i;
		trim(&t, &tn);
		if (ieq(t, tn, name))
			return true;
		i = j + 1;
	}
	return false;
}

/* Append each element of a comma list; more than HTTP_MAX_PROTOS or an
 * element longer than HTTP_PROTO_LEN-1 is refused. */
static int add_list(char (*dst)[HTTP_PROTO_LEN], int *n, const char *v, size_t len)
{
	size_t i = 0;

	while (i <= len) {
		size_t j = i;
		const char *t;
		size_t tn;

		while (j < len && v[j] != ',')
			j++;
		t = v + i;
		tn = j - i;
		trim(&t, &tn);
		if (tn > 0) {
			if (*n >= HTTP_MAX_PROTOS || tn >= HTTP_PROTO_LEN)
				return -1;
			memcpy(dst[*n], t, tn);
			dst[*n][tn] = '\0';
			(*n)++;
		}
		i = j + 1;
	}
	return 0;
}

#define FAIL(st, w)            \
	do {                   \
		*status = (st); \
		*why = (w);     \
		return -1;      \
	} while (0)

static int parse_header(struct http_req *r, const char *name, size_t nlen, const char *v, size_t vlen,
			int *status, const char **why)
{
	if (ieq(name, nlen, "connection")) {
		if (http_list_has(v, vlen, "upgrade"))
			r->conn_upgrade = true;
	} else if (ieq(name, nlen, "upgrade")) {
		if (http_list_has(v, vlen, "SPDY/3.1"))
			r->up_spdy = true;
		if (http_list_has(v, vlen, "websocket"))
			r->up_websocket = true;
	} else if (ieq(name, nlen, "x-stream-protocol-version")) {
		if (add_list(r->protos, &r->nprotos, v, vlen) < 0)
			FAIL(400, "too many or too long X-Stream-Protocol-Version values");
	} else if (ieq(name, nlen, "sec-websocket-protocol")) {
		if (add_list(r->ws_protos, &r->nws_protos, v, vlen) < 0)
			FAIL(400, "too many or too long Sec-WebSocket-Protocol values");
	} else if (ieq(name, nlen, "sec-websocket-key")) {
		if (vlen == 0 || vlen >= sizeof r->ws_key || r->ws_key[0])
			FAIL(400, "bad Sec-WebSocket-Key");
		memcpy(r->ws_key, v, vlen);
		r->ws_key[vlen] = '\0';
	} else if (ieq(name, nlen, "sec-websocket-version")) {
		int x = 0;

		if (vlen == 0 || vlen > 3)
			FAIL(400, "bad Sec-WebSocket-Version");
		for (size_t i = 0; i < vlen; i++) {
			if (!isdigit((unsigned char)v[i]))
				FAIL(400, "bad Sec-WebSocket-Version");
			x = x * 10 + (v[i] - '0');
		}
		r->ws_version = x;
	} else if (ieq(name, nlen, "transfer-encoding")) {
		FAIL(413, "a request body is not accepted");
	} else if (ieq(name, nlen, "content-length")) {
		for (size_t i = 0; i < vlen; i++)
			if (v[i] != '0')
				FAIL(413, "a request body is not accepted");
		if (vlen == 0)
			FAIL(400, "bad Content-Length");
	}
	return 0;
}

ssize_t http_parse_request(const char *buf, size_t len, struct http_req *r, int *status, const char **why)
{
	const char *end = NULL, *p, *eol, *sp1, *sp2, *q;
	size_t headlen, nheaders = 0;

	*status = 0;
	*why = "";
	/* Find the end of the head first: nothing is parsed twice. */
	for (size_t i = 0; i + 3 < len && i + 4 <= HTTP_MAX_HEAD; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
			end = buf + i;
			break;
		}
	if (end == NULL) {
		if (len >= HTTP_MAX_HEAD)
			FAIL(431, "request head too large");
		return 0;
	}
	headlen = (size_t)(end - buf) + 4;
	memset(r, 0, sizeof *r);

	/* Request line: method SP origin-form SP HTTP/1.1 */
	eol = memchr(buf, '\r', (size_t)(end - buf) + 1);
	if (eol[1] != '\n')
		FAIL(400, "bare CR");
	sp1 = memchr(buf, ' ', (size_t)(eol - buf));
	if (sp1 == NULL || sp1 == buf || (size_t)(sp1 - buf) >= sizeof r->method)
		FAIL(400, "bad request line");
	for (p = buf; p < sp1; p++)
		if (!is_tchar((unsigned char)*p))
			FAIL(400, "bad method");
	memcpy(r->method, buf, (size_t)(sp1 - buf));
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (sp2 == NULL || sp2 == sp1 + 1 || sp1[1] != '/')
		FAIL(400, "bad request target");
	if ((size_t)(eol - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		FAIL(400, "bad HTTP version");
	if (sp2[8] != '1')
		FAIL(505, "HTTP/1.1 is required to upgrade");
	for (p = sp1 + 1; p < sp2; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			FAIL(400, "bad request target");
	q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
	if ((size_t)((q ? q : sp2) - sp1 - 1) >= sizeof r->path)
		FAIL(414, "request target too long");
	memcpy(r->path, sp1 + 1, (size_t)((q ? q : sp2) - sp1 - 1));
	if (q != NULL) {
		if ((size_t)(sp2 - q - 1) >= sizeof r->query)
			FAIL(414, "request target too long");
		memcpy(r->query, q + 1, (size_t)(sp2 - q - 1));
	}

	/* Header lines. */
	for (p = eol + 2; p < end + 2; p = eol + 2) {
		const char *colon, *v;
		size_t vlen;
		int rc;

		eol = memchr(p, '\r', (size_t)(end + 2 - p));
		if (eol == NULL || eol[1] != '\n')
			FAIL(400, "bare CR");
		if (++nheaders > HTTP_MAX_HEADERS)
			FAIL(431, "too many header lines");
		if (*p == ' ' || *p == '\t')
			FAIL(400, "obsolete line folding");
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL || colon == p)
			FAIL(400, "bad header line");
		for (const char *c = p; c < colon; c++)
			if (!is_tchar((unsigned char)*c))
				FAIL(400, "bad header name");
		for (const char *c = colon + 1; c < eol; c++)
			if (((unsigned char)*c < ' ' && *c != '\t') || (unsigned char)*c == 0x7f)
				FAIL(400, "control byte in header value");
		v = colon + 1;
		vlen = (size_t)(eol - v);
		trim(&v, &vlen);
		rc = parse_header(r, p, (size_t)(colon - p), v, vlen, status, why);
		if (rc < 0)
			return -1;
	}
	return (ssize_t)headlen;
}
