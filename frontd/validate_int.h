/*
 * frontd: internals shared by validate.c (machinery) and validate_rules.c
 * (per-request rules).  Not for other users: see validate.h.
 */
#ifndef FRONTD_VALIDATE_INT_H
#define FRONTD_VALIDATE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "frontd/validate.h"
#include "proto/cri.pb-c.h"

/* Error paths are a stack of frames, formatted only when a check fails:
 * "config.labels[\"app\"]", "config.dns_config.servers[2]". */
struct vframe {
	const char *name; /* field name, or NULL */
	long idx;         /* index in a repeated field, or -1 */
	const char *key;  /* map key, shown when short and printable */
};

#define VC_MAX_FRAMES (CRI_MAX_DEPTH + 8)
#define PATH_MAX_LEN 4096

struct vctx {
	crisp_err_t *err;
	const ProtobufCMessageDescriptor *top; /* the request */
	size_t depth;                          /* frames pushed */
	size_t str_bytes;                      /* string payload seen */
	bool check_utf8;                       /* the struct walk checks UTF-8 */
	struct vframe fr[VC_MAX_FRAMES];
};

typedef int (*vc_request_fn)(struct vctx *c, const ProtobufCMessage *m);

/* The rule for a request descriptor, NULL when d is not a CRI request. */
vc_request_fn vc_request_validator(const ProtobufCMessageDescriptor *d);

void vc_push(struct vctx *c, const char *name, long idx, const char *key);

static inline void vc_pop(struct vctx *c)
{
	c->depth--;
}

/* INVALID_ARGUMENT "<path>[.field]: <message>"; returns -1. */
int vc_fail(struct vctx *c, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same for element idx (or map key) of field under the path. */
int vc_fail_at(struct vctx *c, const char *field, long idx, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Key (k = 0) or value (k = 1) of a map<string, string> entry. */
const char *vc_entry_str(const ProtobufCMessage *e, unsigned k);

/* At most max bytes, each printable ASCII (space only when allowed). */
bool vc_printable(const char *s, size_t max, bool allow_space);
/* PodSandboxMetadata.uid: 1..128 of [A-Za-z0-9._-], alphanumeric first. */
bool vc_valid_uid(const char *s);
/* cri_valid_clean_abs_path() of s[0..n). */
bool vc_clean_abs_n(const char *s, size_t n);

#endif
