/*
 * frontd: decoding and validation of CRI v1 requests (see validate.h).
 *
 * This file: error paths, field-level helpers, the wire walk (UTF-8, NUL,
 * byte budget), the struct walk (depth, counts, enums, duplicate map keys)
 * and the entry points.  validate_rules.c: the per-request rules.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "frontd/validate.h"
#include "frontd/validate_int.h"

/* ---- error paths ----
 * Frames are pushed as the walks descend and formatted only on error:
 * "config.labels[\"app\"]", "config.dns_config.servers[2]". */

void vc_push(struct vctx *c, const char *name, long idx, const char *key)
{
	if (c->depth < VC_MAX_FRAMES) {
		c->fr[c->depth].name = name;
		c->fr[c->depth].idx = idx;
		c->fr[c->depth].key = key;
	}
	c->depth++;
}

/* A key is shown in an error message only when it is short printable ASCII
 * that needs no quoting; otherwise the entry is named by its index. */
static bool key_is_showable(const char *k)
{
	size_t n = 0;

	for (; k[n] != '\0'; n++) {
		unsigned char ch = (unsigned char)k[n];
		if (n >= 64 || ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\')
			return false;
	}
	return true;
}

static size_t format_path(const struct vctx *c, const char *field, char *out, size_t size)
{
	size_t n = 0, depth = c->depth < VC_MAX_FRAMES ? c->depth : VC_MAX_FRAMES;
	int w;

	out[0] = '\0';
#define APPEND(...)                                                        \
	do {                                                               \
		w = snprintf(out + n, size - n, __VA_ARGS__);              \
		if (w < 0 || (size_t)w >= size - n)                        \
			return size - 1;                                   \
		n += (size_t)w;                                            \
	} while (0)
	for (size_t i = 0; i < depth; i++) {
		const struct vframe *f = &c->fr[i];
		if (f->name != NULL)
			APPEND("%s%s", n > 0 ? "." : "", f->name);
		if (f->key != NULL && key_is_showable(f->key))
			APPEND("[\"%s\"]", f->key);
		else if (f->idx >= 0)
			APPEND("[%ld]", f->idx);
	}
	if (field != NULL)
		APPEND("%s%s", n > 0 ? "." : "", field);
#undef APPEND
	return n;
}

int vc_fail(struct vctx *c, const char *field, const char *fmt, ...)
{
	char path[256], msg[CRISP_ERR_MSG_MAX];
	va_list ap;

	format_path(c, field, path, sizeof path);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (path[0] == '\0')
		return crisp_error(c->err, CRISP_INVALID_ARGUMENT, 0, "%s", msg);
	return crisp_error(c->err, CRISP_INVALID_ARGUMENT, 0, "%s: %s", path, msg);
}

int vc_fail_at(struct vctx *c, const char *field, long idx, const char *key, const char *fmt, ...)
{
	char msg[CRISP_ERR_MSG_MAX];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	vc_push(c, field, idx, key);
	r = vc_fail(c, NULL, "%s", msg);
	vc_pop(c);
	return r;
}

/* ---- field-level helpers ---- */

static inline bool is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

static inline bool is_lower_alnum(int ch)
{
	return (ch >= 'a' && ch <= 'z') || is_digit(ch);
}

static inline bool is_alnum(int ch)
{
	return is_lower_alnum(ch) || (ch >= 'A' && ch <= 'Z');
}

/* [A-Za-z0-9._-] */
static inline bool is_name_char(int ch)
{
	return is_alnum(ch) || ch == '.' || ch == '_' || ch == '-';
}

bool cri_valid_utf8(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		/* ASCII fast path, eight bytes at a time. */
		while (len - i >= 8) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (w & UINT64_C(0x8080808080808080))
				break;
			if ((w - UINT64_C(0x0101010101010101)) & ~w & UINT64_C(0x8080808080808080))
				return false; /* a zero byte */
			i += 8;
		}
		if (i >= len)
			break;
		unsigned char b = s[i];
		size_t need;
		unsigned char lo = 0x80, hi = 0xbf;
		if (b < 0x80) {
			if (b == 0)
				return false;
			i++;
			continue;
		} else if (b >= 0xc2 && b <= 0xdf) {
			need = 1;
		} else if (b == 0xe0) {
			need = 2, lo = 0xa0;
		} else if ((b >= 0xe1 && b <= 0xec) || b == 0xee || b == 0xef) {
			need = 2;
		} else if (b == 0xed) {
			need = 2, hi = 0x9f; /* no surrogates */
		} else if (b == 0xf0) {
			need = 3, lo = 0x90;
		} else if (b >= 0xf1 && b <= 0xf3) {
			need = 3;
		} else if (b == 0xf4) {
			need = 3, hi = 0x8f; /* at most U+10FFFF */
		} else {
			return false;
		}
		if (len - i <= need)
			return false;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= need; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		i += need + 1;
	}
	return true;
}

bool cri_valid_id(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (n >= 64 || !((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n > 0;
}

/* 1..max of [A-Za-z0-9._-], the first a letter or digit. */
static bool valid_token(const char *s, size_t max)
{
	size_t n = 0;

	if (!is_alnum((unsigned char)s[0]))
		return false;
	for (; s[n] != '\0'; n++)
		if (n >= max || !is_name_char((unsigned char)s[n]))
			return false;
	return true;
}

bool cri_valid_name(const char *s)
{
	return valid_token(s, 253);
}

bool vc_valid_uid(const char *s)
{
	return valid_token(s, 128);
}

bool cri_valid_dns_label(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || !is_lower_alnum((unsigned char)s[0]) || !is_lower_alnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_alnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* Dot-separated labels of [a-z0-9-] (any case when ci), each alphanumeric at
 * both ends and at most label_max long, n bytes in all. */
static bool valid_dns_name(const char *s, size_t n, bool ci, size_t label_max)
{
	size_t start = 0;

	if (n == 0)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			size_t len = i - start;
			int first, last;
			if (len == 0 || len > label_max)
				return false;
			first = (unsigned char)s[start];
			last = (unsigned char)s[i - 1];
			if (!(ci ? is_alnum(first) : is_lower_alnum(first)) || !(ci ? is_alnum(last) : is_lower_alnum(last)))
				return false;
			start = i + 1;
			continue;
		}
		int ch = (unsigned char)s[i];
		if (!(ci ? is_alnum(ch) : is_lower_alnum(ch)) && ch != '-')
			return false;
	}
	return true;
}

bool cri_valid_hostname(const char *s)
{
	size_t n = strlen(s);

	return n <= 64 && valid_dns_name(s, n, true, 63);
}

/* The name part of a qualified name, or a label value: 1..max of
 * [A-Za-z0-9._-], alphanumeric at both ends. */
static bool valid_qname_part(const char *s, size_t n, size_t max)
{
	if (n == 0 || n > max || !is_alnum((unsigned char)s[0]) || !is_alnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_name_char((unsigned char)s[i]))
			return false;
	return true;
}

static bool valid_qualified_name(const char *s, bool ci_prefix)
{
	const char *slash = strchr(s, '/');

	if (slash == NULL)
		return valid_qname_part(s, strlen(s), 63);
	if (strchr(slash + 1, '/') != NULL)
		return false;
	if ((size_t)(slash - s) > 253 || !valid_dns_name(s, (size_t)(slash - s), ci_prefix, 253))
		return false;
	return valid_qname_part(slash + 1, strlen(slash + 1), 63);
}

bool cri_valid_label_key(const char *s)
{
	return valid_qualified_name(s, false);
}

bool cri_valid_annotation_key(const char *s)
{
	return valid_qualified_name(s, true);
}

bool cri_valid_label_value(const char *s)
{
	return s[0] == '\0' || valid_qname_part(s, strlen(s), 253);
}

/* Walk the '/'-separated components of s[0..n): flags what was seen. */
enum { P_EMPTY = 1, P_DOT = 2, P_DOTDOT = 4 };

static int path_components(const char *s, size_t n)
{
	int seen = 0;
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '/')
			continue;
		size_t len = i - start;
		if (len == 0)
			seen |= P_EMPTY;
		else if (len == 1 && s[start] == '.')
			seen |= P_DOT;
		else if (len == 2 && s[start] == '.' && s[start + 1] == '.')
			seen |= P_DOTDOT;
		start = i + 1;
	}
	return seen;
}

bool cri_valid_abs_path(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= PATH_MAX_LEN && s[0] == '/' && !(path_components(s, n) & P_DOTDOT);
}

bool vc_clean_abs_n(const char *s, size_t n)
{
	if (n == 1 && s[0] == '/')
		return true;
	/* Components of "/a/b" after the leading slash: "a", "b". */
	return n > 1 && n <= PATH_MAX_LEN && s[0] == '/' && path_components(s + 1, n - 1) == 0;
}

bool cri_valid_clean_abs_path(const char *s)
{
	return vc_clean_abs_n(s, strlen(s));
}

bool cri_valid_clean_rel_path(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= PATH_MAX_LEN && s[0] != '/' && path_components(s, n) == 0;
}

static bool valid_ip_n(const char *s, size_t n, bool allow_zone, int *family)
{
	char buf[INET6_ADDRSTRLEN + 1];
	unsigned char addr[sizeof(struct in6_addr)];

	if (memchr(s, ':', n) != NULL) {
		const char *pct = memchr(s, '%', n);
		if (pct != NULL) {
			size_t zl = n - (size_t)(pct - s) - 1;
			if (!allow_zone || zl == 0 || zl > 15)
				return false;
			for (size_t i = 1; i <= zl; i++)
				if (!is_name_char((unsigned char)pct[i]))
					return false;
			n = (size_t)(pct - s);
		}
		*family = AF_INET6;
	} else {
		*family = AF_INET;
	}
	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(*family, buf, addr) == 1;
}

bool cri_valid_ip(const char *s, bool allow_zone)
{
	int family;

	return valid_ip_n(s, strlen(s), allow_zone, &family);
}

static bool valid_cidr_n(const char *s, size_t n)
{
	const char *slash = memchr(s, '/', n);
	size_t plen;
	unsigned bits = 0;
	int family;

	if (slash == NULL)
		return false;
	plen = n - (size_t)(slash - s) - 1;
	if (plen == 0 || plen > 3 || (plen > 1 && slash[1] == '0'))
		return false;
	for (size_t i = 1; i <= plen; i++) {
		if (!is_digit((unsigned char)slash[i]))
			return false;
		bits = bits * 10 + (unsigned)(slash[i] - '0');
	}
	if (!valid_ip_n(s, (size_t)(slash - s), false, &family))
		return false;
	return bits <= (family == AF_INET ? 32u : 128u);
}

bool cri_valid_cidr(const char *s)
{
	return valid_cidr_n(s, strlen(s));
}

bool cri_valid_pod_cidr(const char *s)
{
	size_t start = 0, n = strlen(s), items = 0;

	if (n == 0)
		return true;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != ',')
			continue;
		if (++items > 8 || !valid_cidr_n(s + start, i - start))
			return false;
		start = i + 1;
	}
	return true;
}

/* A decimal number of 1..6 digits without leading zeros. */
static bool parse_small_uint(const char **p, unsigned long *v)
{
	const char *s = *p;
	size_t n = 0;

	*v = 0;
	while (is_digit((unsigned char)s[n])) {
		if (n >= 6)
			return false;
		*v = *v * 10 + (unsigned long)(s[n] - '0');
		n++;
	}
	if (n == 0 || (n > 1 && s[0] == '0'))
		return false;
	*p = s + n;
	return true;
}

bool cri_valid_cpuset(const char *s)
{
	if (s[0] == '\0')
		return true;
	for (;;) {
		unsigned long a, b;
		if (!parse_small_uint(&s, &a))
			return false;
		if (*s == '-') {
			s++;
			if (!parse_small_uint(&s, &b) || b < a)
				return false;
		}
		if (*s == '\0')
			return true;
		if (*s++ != ',')
			return false;
	}
}

bool cri_valid_hugepage_size(const char *s)
{
	static const char *const units[] = { "B", "KB", "MB", "GB", "TB", "PB" };
	size_t n = 0;

	if (s[0] < '1' || s[0] > '9')
		return false;
	while (is_digit((unsigned char)s[n]))
		if (++n > 10)
			return false;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (strcmp(s + n, units[i]) == 0)
			return true;
	return false;
}

bool cri_valid_unified_key(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 255 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_name_char((unsigned char)s[i]))
			return false;
	return strchr(s, '.') != NULL && strstr(s, "..") == NULL;
}

bool cri_valid_sysctl_name(const char *s)
{
	size_t n = strlen(s), start = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.' && s[i] != '/') {
			if (!is_lower_alnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
				return false;
			continue;
		}
		if (i == start || !is_lower_alnum((unsigned char)s[start]) || !is_lower_alnum((unsigned char)s[i - 1]))
			return false;
		start = i + 1;
	}
	return true;
}

bool cri_valid_capability(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (n >= 64 || !(is_alnum((unsigned char)s[n]) || s[n] == '_'))
			return false;
	return n > 0;
}

bool vc_printable(const char *s, size_t max, bool allow_space)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		unsigned char ch = (unsigned char)s[n];
		if (n >= max || ch > 0x7e || ch < (allow_space ? 0x20 : 0x21))
			return false;
	}
	return true;
}

bool cri_valid_image_ref(const char *s)
{
	return s[0] != '\0' && vc_printable(s, 4096, false);
}

bool cri_valid_cgroup_parent(const char *s)
{
	size_t n = strlen(s);

	if (n == 0)
		return true;
	if (!vc_printable(s, PATH_MAX_LEN, false))
		return false;
	if (s[0] == '/')
		return vc_clean_abs_n(s, n);
	/* A systemd slice: unit-name characters, ending in ".slice". */
	if (n <= 6 || n > 255 || strcmp(s + n - 6, ".slice") != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_name_char((unsigned char)s[i]) && s[i] != ':' && s[i] != '\\')
			return false;
	return true;
}

/* ---- wire walk: UTF-8, NUL, byte budget ----
 * protobuf-c has already unpacked these bytes, so they are well formed as
 * far as it cares; anything this walk cannot follow is still "malformed". */

static bool read_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
	uint64_t r = 0;

	for (unsigned shift = 0; shift < 64 && *i < len; shift += 7) {
		uint8_t b = p[(*i)++];
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return true;
		}
	}
	return false;
}

#define OCC_MAX 32 /* fields per message whose occurrences are counted (CRI: <= 16) */

static int malformed(struct vctx *c)
{
	return crisp_error(c->err, CRISP_INVALID_ARGUMENT, 0, "malformed %s message", c->top->short_name);
}

/* The wire type a field of this type is sent with; repeated scalars may
 * also come packed (length-delimited).  protobuf-c lets some mismatches
 * through (a bool sent length-delimited); no real encoder makes them. */
static bool wire_type_ok(const ProtobufCFieldDescriptor *f, unsigned wt)
{
	unsigned want;

	switch (f->type) {
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		want = 1;
		break;
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		want = 5;
		break;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_MESSAGE:
		return wt == 2;
	default:
		want = 0;
		break;
	}
	return wt == want || (wt == 2 && f->label == PROTOBUF_C_LABEL_REPEATED);
}

/*
 * Strings that may hold arbitrary bytes (never NUL): environment values and
 * argv.  kubelet's protobuf library does not check UTF-8, and an env value
 * taken from a Secret may be binary; CRI-O and containerd pass such bytes
 * on, so refusing them would break pods that run elsewhere.  They go to
 * execve as bytes, which is what they are.
 */
static bool utf8_required(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
	if (d == &runtime__v1__key_value__descriptor && strcmp(f->name, "value") == 0)
		return false;
	if (d == &runtime__v1__container_config__descriptor &&
	    (strcmp(f->name, "command") == 0 || strcmp(f->name, "args") == 0))
		return false;
	if ((d == &runtime__v1__exec_sync_request__descriptor || d == &runtime__v1__exec_request__descriptor) &&
	    strcmp(f->name, "cmd") == 0)
		return false;
	return true;
}

static int wire_walk(struct vctx *c, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len)
{
	uint32_t occ[OCC_MAX] = { 0 };
	size_t i = 0;

	if (c->depth >= CRI_MAX_DEPTH)
		return vc_fail(c, NULL, "nested more than %d deep", CRI_MAX_DEPTH);
	while (i < len) {
		const ProtobufCFieldDescriptor *f = NULL;
		uint64_t key, n;
		long idx = -1;

		/* Field numbers are 1..2^29-1; protobuf-c lets 0 through when
		 * its tag is spelled with a redundant varint byte. */
		if (!read_varint(p, len, &i, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
			return malformed(c);
		f = protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3));
		if (f != NULL && !wire_type_ok(f, (unsigned)(key & 7)))
			return malformed(c);
		switch (key & 7) {
		case 0:
			if (!read_varint(p, len, &i, &n))
				return malformed(c);
			break;
		case 1:
			if (len - i < 8)
				return malformed(c);
			i += 8;
			break;
		case 5:
			if (len - i < 4)
				return malformed(c);
			i += 4;
			break;
		case 2:
			if (!read_varint(p, len, &i, &n) || n > len - i)
				return malformed(c);
			if (f != NULL && f->label == PROTOBUF_C_LABEL_REPEATED) {
				size_t k = (size_t)(f - d->fields);
				if (k < OCC_MAX)
					idx = occ[k]++;
			}
			if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				int r;
				vc_push(c, f->name, idx, NULL);
				r = wire_walk(c, f->descriptor, p + i, (size_t)n);
				vc_pop(c);
				if (r < 0)
					return r;
			} else {
				/* strings, bytes, unknown fields, packed scalars */
				if (n > CRI_MAX_STRING_BYTES - c->str_bytes)
					return crisp_error(c->err, CRISP_INVALID_ARGUMENT, 0,
							   "%s: strings exceed %u bytes in all",
							   c->top->short_name, CRI_MAX_STRING_BYTES);
				c->str_bytes += (size_t)n;
				if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING) {
					const char *s = (const char *)p + i;
					if (memchr(s, '\0', (size_t)n) != NULL)
						return vc_fail_at(c, f->name, idx, NULL, "contains a NUL byte");
					if (utf8_required(d, f) && !cri_valid_utf8(s, (size_t)n))
						return vc_fail_at(c, f->name, idx, NULL, "is not valid UTF-8");
				}
			}
			i += (size_t)n;
			break;
		default:
			return malformed(c);
		}
	}
	return 0;
}

/* ---- struct walk: depth, counts, enums, duplicate map keys ---- */

static size_t repeated_limit(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
	if (d == &runtime__v1__container_config__descriptor && strcmp(f->name, "envs") == 0)
		return CRI_MAX_ENVS;
	return CRI_MAX_REPEATED;
}

/* map<string, V> entries: protobuf-c makes them messages "FooEntry" with
 * fields key = 1 and value = 2. */
static bool is_string_map_entry(const ProtobufCMessageDescriptor *d)
{
	size_t sn = strlen(d->short_name);

	/* Nested in its map's message ("runtime.v1.Foo.LabelsEntry"), unlike
	 * a top-level look-alike such as runtime.v1.KeyValue. */
	if (sn < 5 || strcmp(d->short_name + sn - 5, "Entry") != 0 ||
	    strlen(d->name) <= strlen(d->package_name) + 1 + sn)
		return false;
	return d->n_fields == 2 && d->fields[0].id == 1 && d->fields[1].id == 2 &&
	       d->fields[0].type == PROTOBUF_C_TYPE_STRING && strcmp(d->fields[0].name, "key") == 0 &&
	       strcmp(d->fields[1].name, "value") == 0;
}

const char *vc_entry_str(const ProtobufCMessage *e, unsigned k)
{
	const char *s = *(const char *const *)((const char *)e + e->descriptor->fields[k].offset);
	return s != NULL ? s : "";
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int check_dup_keys(struct vctx *c, const ProtobufCFieldDescriptor *f, ProtobufCMessage *const *e, size_t n)
{
	if (n <= 32) {
		for (size_t i = 1; i < n; i++)
			for (size_t j = 0; j < i; j++)
				if (strcmp(vc_entry_str(e[i], 0), vc_entry_str(e[j], 0)) == 0)
					return vc_fail_at(c, f->name, (long)i, vc_entry_str(e[i], 0), "duplicate key");
		return 0;
	}
	const char **keys = malloc(n * sizeof *keys);
	int r = 0;
	if (keys == NULL)
		return crisp_error(c->err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "validating %s", f->name);
	for (size_t i = 0; i < n; i++)
		keys[i] = vc_entry_str(e[i], 0);
	qsort(keys, n, sizeof *keys, cmp_strp);
	for (size_t i = 1; i < n && r == 0; i++)
		if (strcmp(keys[i], keys[i - 1]) == 0)
			r = vc_fail_at(c, f->name, -1, keys[i], "duplicate key");
	free(keys);
	return r;
}

static int check_enum(struct vctx *c, const ProtobufCFieldDescriptor *f, long idx, int v)
{
	if (protobuf_c_enum_descriptor_get_value(f->descriptor, v) == NULL)
		return vc_fail_at(c, f->name, idx, NULL, "%d is not a %s value", v,
				  ((const ProtobufCEnumDescriptor *)f->descriptor)->short_name);
	return 0;
}

static int check_string(struct vctx *c, const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
			long idx, const char *s)
{
	size_t n;

	if (s == NULL)
		return vc_fail_at(c, f->name, idx, NULL, "is NULL");
	if (!c->check_utf8)
		return 0;
	n = strlen(s);
	if (n > CRI_MAX_STRING_BYTES - c->str_bytes)
		return crisp_error(c->err, CRISP_INVALID_ARGUMENT, 0, "%s: strings exceed %u bytes in all",
				   c->top->short_name, CRI_MAX_STRING_BYTES);
	c->str_bytes += n;
	if (utf8_required(d, f) && !cri_valid_utf8(s, n))
		return vc_fail_at(c, f->name, idx, NULL, "is not valid UTF-8");
	return 0;
}

static int struct_walk(struct vctx *c, const ProtobufCMessage *m);

static int walk_sub(struct vctx *c, const ProtobufCFieldDescriptor *f, long idx, const char *key,
		    const ProtobufCMessage *sub)
{
	int r;

	if (sub == NULL)
		return vc_fail_at(c, f->name, idx, key, "is NULL");
	if (sub->descriptor != f->descriptor)
		return vc_fail_at(c, f->name, idx, key, "is not a %s",
				  ((const ProtobufCMessageDescriptor *)f->descriptor)->short_name);
	vc_push(c, f->name, idx, key);
	r = struct_walk(c, sub);
	vc_pop(c);
	return r;
}

static bool field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const char *base = (const char *)m;

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
	    f->type != PROTOBUF_C_TYPE_STRING)
		return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
	return true;
}

static int struct_walk(struct vctx *c, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;

	if (c->depth >= CRI_MAX_DEPTH)
		return vc_fail(c, NULL, "nested more than %d deep", CRI_MAX_DEPTH);
	for (unsigned k = 0; k < d->n_fields; k++) {
		const ProtobufCFieldDescriptor *f = &d->fields[k];
		const void *at = base + f->offset;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset), lim = repeated_limit(d, f);
			const void *arr = *(const void *const *)at;
			if (n == 0)
				continue;
			if (n > lim)
				return vc_fail(c, f->name, "at most %zu items (got %zu)", lim, n);
			if (arr == NULL)
				return vc_fail(c, f->name, "is NULL");
			switch (f->type) {
			case PROTOBUF_C_TYPE_ENUM:
				for (size_t i = 0; i < n; i++)
					if (check_enum(c, f, (long)i, ((const int *)arr)[i]) < 0)
						return -1;
				break;
			case PROTOBUF_C_TYPE_STRING:
				for (size_t i = 0; i < n; i++)
					if (check_string(c, d, f, (long)i, ((char *const *)arr)[i]) < 0)
						return -1;
				break;
			case PROTOBUF_C_TYPE_MESSAGE: {
				ProtobufCMessage *const *e = arr;
				bool map = is_string_map_entry(f->descriptor);
				/* Entries are named by index, as the wire walk (which
				 * cannot know the key) names them. */
				for (size_t i = 0; i < n; i++)
					if (walk_sub(c, f, (long)i, NULL, e[i]) < 0)
						return -1;
				if (map && n > 1 && check_dup_keys(c, f, e, n) < 0)
					return -1;
				break;
			}
			default:
				break;
			}
			continue;
		}
		if (!field_present(m, f))
			continue;
		switch (f->type) {
		case PROTOBUF_C_TYPE_ENUM:
			if (check_enum(c, f, -1, *(const int *)at) < 0)
				return -1;
			break;
		case PROTOBUF_C_TYPE_STRING:
			if (f->label == PROTOBUF_C_LABEL_OPTIONAL && *(char *const *)at == NULL)
				break;
			if (check_string(c, d, f, -1, *(char *const *)at) < 0)
				return -1;
			break;
		case PROTOBUF_C_TYPE_MESSAGE: {
			const ProtobufCMessage *sub = *(ProtobufCMessage *const *)at;
			if (sub != NULL && walk_sub(c, f, -1, NULL, sub) < 0)
				return -1;
			break;
		}
		default:
			break;
		}
	}
	return 0;
}

/* ---- entry points ---- */

static int validate(struct vctx *c, const ProtobufCMessage *m)
{
	vc_request_fn fn = vc_request_validator(m->descriptor);

	if (fn == NULL)
		return crisp_error(c->err, CRISP_INTERNAL, 0, "%s is not a CRI request", m->descriptor->name);
	c->top = m->descriptor;
	if (struct_walk(c, m) < 0)
		return -1;
	c->depth = 0;
	return fn(c, m);
}

int cri_validate(const ProtobufCMessage *m, crisp_err_t *err)
{
	struct vctx c;

	memset(&c, 0, sizeof c);
	c.err = err;
	c.check_utf8 = true;
	if (m == NULL || m->descriptor == NULL)
		return crisp_error(err, CRISP_INTERNAL, 0, "no message to validate");
	return validate(&c, m);
}

ProtobufCMessage *cri_decode_request(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
				     crisp_err_t *err)
{
	struct vctx c;
	ProtobufCMessage *m;

	if (d == NULL || vc_request_validator(d) == NULL) {
		crisp_error(err, CRISP_INTERNAL, 0, "%s is not a CRI request", d != NULL ? d->name : "(null)");
		return NULL;
	}
	if (len > 0 && buf == NULL) {
		crisp_error(err, CRISP_INTERNAL, 0, "no buffer for %s", d->short_name);
		return NULL;
	}
	errno = 0;
	m = protobuf_c_message_unpack(d, NULL, len, buf != NULL ? buf : (const uint8_t *)"");
	if (m == NULL) {
		if (errno == ENOMEM)
			crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "decoding %s", d->short_name);
		else
			crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "malformed %s message", d->short_name);
		return NULL;
	}
	memset(&c, 0, sizeof c);
	c.err = err;
	c.top = d;
	if (wire_walk(&c, d, buf, len) < 0 || (c.depth = 0, validate(&c, m)) < 0) {
		protobuf_c_message_free_unpacked(m, NULL);
		return NULL;
	}
	return m;
}
