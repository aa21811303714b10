/*
 * crisp: Docker image references, parsed strictly and normalised the way
 * containers/image (docker/reference, a fork of docker/distribution) does.
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] component { "/" component }
 *   domain    := dcomp { "." dcomp } [ ":" port ]   dcomp: [A-Za-z0-9] or
 *                [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]; port: [0-9]+
 *   component := [a-z0-9]+ { ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ }
 *   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest    := "sha256:" 64 hex | "sha384:" 96 hex | "sha512:" 128 hex
 *                (lowercase hex, as go-digest requires)
 *
 * Normalisation (ParseNormalizedNamed): the first "/"-separated part is the
 * domain only when it contains '.' or ':' or is "localhost"; otherwise the
 * domain is docker.io.  "index.docker.io" becomes "docker.io", and a
 * docker.io name of a single component gets "library/".  The repository
 * path must be lowercase; a bare 64-hex string is refused (it is an image
 * id, not a name); the name (domain "/" path) is at most 255 bytes.
 *
 * Pure code: no allocation, no I/O.
 */
#ifndef CRISP_POLICY_DOCKERREF_H
#define CRISP_POLICY_DOCKERREF_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define DOCKERREF_NAME_MAX 255
#define DOCKERREF_TAG_MAX 128
#define DOCKERREF_DIGEST_MAX (7 + 128) /* "sha512:" + 128 hex */
/* name ":" tag "@" digest NUL */
#define DOCKERREF_STR_MAX (DOCKERREF_NAME_MAX + 1 + DOCKERREF_TAG_MAX + 1 + DOCKERREF_DIGEST_MAX + 1)
/* Longest input accepted by the parsers (before normalisation adds at most
 * "docker.io/library/"). */
#define DOCKERREF_INPUT_MAX (DOCKERREF_STR_MAX - 1)

struct dockerref {
	char name[DOCKERREF_NAME_MAX + 1];     /* domain "/" path, normalised */
	size_t domain_len;                     /* name[0, domain_len) is the domain */
	char tag[DOCKERREF_TAG_MAX + 1];       /* "" when there is none */
	char digest[DOCKERREF_DIGEST_MAX + 1]; /* "" when none, else "alg:hex" */
};

/* ParseNormalizedNamed: "busybox" -> docker.io/library/busybox.  Both a tag
 * and a digest may be present.  INVALID_ARGUMENT on any syntax error. */
int dockerref_parse(const char *s, struct dockerref *out, crisp_err_t *err);

/* ParseNamed: like dockerref_parse, and s must already be in the fully
 * expanded form (its string form equals s). */
int dockerref_parse_canonical(const char *s, struct dockerref *out, crisp_err_t *err);

/* A reference as pulled by the docker transport: normalised, a name alone
 * gets ":latest", and a reference with both a tag and a digest is refused
 * (c/image: "Docker references with both a tag and digest are currently not
 * supported"). */
int dockerref_parse_pull(const char *s, struct dockerref *out, crisp_err_t *err);

/* Neither tag nor digest. */
bool dockerref_is_name_only(const struct dockerref *r);

/* name[":" tag]["@" digest] into out (DOCKERREF_STR_MAX bytes). */
void dockerref_string(const struct dockerref *r, char *out);

/* Same repository (domain and path). */
bool dockerref_same_name(const struct dockerref *a, const struct dockerref *b);

/* Grammar pieces, on (s, n) without a NUL requirement. */
bool dockerref_valid_domain(const char *s, size_t n);     /* with optional :port */
bool dockerref_valid_hostname(const char *s, size_t n);   /* without port */
bool dockerref_valid_component(const char *s, size_t n);
bool dockerref_valid_tag(const char *s, size_t n);
bool dockerref_valid_digest(const char *s, size_t n);

#endif
