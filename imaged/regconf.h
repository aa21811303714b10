/*
 * imaged: containers-registries.conf(5) version 2, the subset crisp uses.
 *
 * The file is TOML; this parser reads a strict subset of TOML that covers
 * what registries.conf files contain, and refuses anything else with the
 * line number:
 *
 *   # comment
 *   unqualified-search-registries = ["docker.io", "quay.io"]
 *   short-name-mode = "enforcing"            # accepted, ignored
 *   [[registry]]
 *   prefix = "registry.k8s.io"               # default: location
 *   location = "127.0.0.1:5000"              # host[:port][/path]
 *   insecure = true                          # plain http allowed
 *   blocked = false                          # pulls refused
 *   mirror-by-digest-only = false            # mirrors only for @digest pulls
 *   [[registry.mirror]]
 *   location = "mirror.example:5000/k8s"
 *   insecure = true
 *   [aliases]                                # accepted, ignored
 *   "busybox" = "docker.io/library/busybox"
 *
 * Values: basic strings ("..." with \" \\ \b \f \n \r \t escapes; no
 * control characters), literal strings ('...'), true/false, and arrays of
 * strings (possibly over several lines, trailing comma allowed).  Keys:
 * bare ([A-Za-z0-9_-]+) or basic strings.  A key given twice in one table,
 * an unknown key or table, a value of the wrong type, [[registry.mirror]]
 * before any [[registry]], two registries with the same prefix, and a
 * location or prefix that is not a host[:port][/path] (or "*.domain" for a
 * prefix) are errors.  Bounds: REGCONF_MAX_FILE bytes, REGCONF_MAX_REGISTRIES
 * registries, REGCONF_MAX_MIRRORS mirrors each, REGCONF_MAX_STRING bytes per
 * string.
 *
 * Semantics (as containers/image):
 *   - a reference's registry entry is the one whose prefix is the longest
 *     that matches: the reference's name equals the prefix or continues
 *     it with '/'; "*.example.com" matches any host below example.com;
 *   - pulls try every mirror in order, then the location itself; a
 *     mirror's or the location's path replaces the prefix;
 *   - insecure belongs to each endpoint: plain http only to an endpoint
 *     whose own entry says insecure = true.  No address (not even a
 *     loopback one) is plain http without it;
 *   - blocked refuses every pull that matches (PERMISSION_DENIED);
 *   - unqualified-search-registries: a short name ("busybox", "foo/bar")
 *     is qualified with the first entry; docker.io when absent.
 *
 * Pure code: no I/O.
 */
#ifndef CRISP_IMAGED_REGCONF_H
#define CRISP_IMAGED_REGCONF_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define REGCONF_MAX_FILE (1u << 20)
#define REGCONF_MAX_REGISTRIES 256
#define REGCONF_MAX_MIRRORS 16
#define REGCONF_MAX_STRING 1024
#define REGCONF_HOST_MAX 256
#define REGCONF_REPO_MAX 512

struct regconf_mirror {
	char *location;
	bool insecure;
};

struct regconf_registry {
	char *prefix;   /* never NULL (defaults to location) */
	char *location; /* NULL: not rewritten (the prefix itself); for "*." prefixes */
	bool insecure;
	bool blocked;
	bool mirror_by_digest_only;
	struct regconf_mirror *mirrors;
	size_t nmirrors;
};

struct regconf {
	char *search; /* first unqualified-search registry; NULL: docker.io */
	struct regconf_registry *regs;
	size_t nregs;
};

/* Parse buf[0..len).  *out is owned by the caller (regconf_free). */
int regconf_parse(const char *buf, size_t len, struct regconf **out, crisp_err_t *err);
void regconf_free(struct regconf *c);

/*
 * Qualify a pull reference as given by a CRI client: a short name gets the
 * search registry (c may be NULL: docker.io).  out: at least
 * REGCONF_MAX_STRING + 512 bytes.  The result is then normalised by
 * dockerref_parse_pull().
 */
int regconf_qualify(const struct regconf *c, const char *ref, char *out, size_t outsize,
		    crisp_err_t *err);

/* One place to pull from: host[:port], the repository there, and http. */
struct regconf_source {
	char host[REGCONF_HOST_MAX];
	char repo[REGCONF_REPO_MAX];
	bool insecure;
	bool mirror;
};

/*
 * The sources to try, in order, for a normalised name "domain/path"
 * (dockerref name, no tag or digest), pulled by digest or not.  c may be
 * NULL (no file: the name's own registry over https).  docker.io is
 * reached at registry-1.docker.io.  PERMISSION_DENIED when the matching
 * entry is blocked.  max >= REGCONF_MAX_MIRRORS + 1.
 */
int regconf_sources(const struct regconf *c, const char *name, bool by_digest,
		    struct regconf_source *out, size_t max, size_t *n, crisp_err_t *err);

#endif
