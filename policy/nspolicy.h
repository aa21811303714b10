/*
 * crisp: per-namespace signature policies.
 *
 * The policy deciding an image for a pod of namespace NS is
 * <dir>/NS.json when that file exists, else the global policy file.  NS
 * must be a DNS-1123 label (what Kubernetes allows for a namespace name:
 * [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 bytes), so it can never name
 * another file.  Any other problem with the per-namespace file (not a
 * regular file, unreadable, does not parse) is an error for that
 * namespace: it never falls back to the global policy, which may be
 * weaker.
 *
 * Parsed policies are cached, keyed by path and the file's (device,
 * inode, mtime, ctime, size); a lookup stats the path and re-reads it
 * when any of those changed, so replacing a file (write a new one,
 * rename(2) it over the old) takes effect at the next decision.  A file
 * that fails to parse is cached as that failure until it changes: every
 * lookup under it is the same error (a deny).  Edits that keep the inode,
 * the size and both timestamps (within the file system's timestamp
 * granularity) are not noticed: replace files by rename.
 *
 * Handles are reference counted: a policy stays valid for as long as the
 * caller holds its handle, even when the cache reloads the file meanwhile.
 * Not thread-safe (imaged is single-threaded).  Nothing here logs.
 */
#ifndef CRISP_POLICY_NSPOLICY_H
#define CRISP_POLICY_NSPOLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "policy/sigpolicy.h"

#define NSP_CACHE_MAX 1024 /* cached files; the least recently used goes first */
#define NSP_NAMESPACE_MAX 63

struct nsp_cache;
struct nsp_handle;

/* dir may be NULL (no per-namespace policies); global_path is required.
 * Nothing is read until the first lookup. */
struct nsp_cache *nsp_cache_new(const char *dir, const char *global_path);
void nsp_cache_free(struct nsp_cache *c); /* handles still held stay valid */

bool nsp_valid_namespace(const char *ns);

/*
 * The policy for namespace ns.  On success *out is a handle (release it
 * with nsp_release).  Every failure is a deny for the decision at hand:
 *   INVALID_ARGUMENT     ns is not a DNS-1123 label
 *   FAILED_PRECONDITION  the file that applies is missing (the global
 *                        one), not a regular file, unreadable, too large,
 *                        or does not parse (the parse error is in the
 *                        message, prefixed by the path)
 */
int nsp_acquire(struct nsp_cache *c, const char *ns, struct nsp_handle **out, crisp_err_t *err);
void nsp_release(struct nsp_handle *h);

const struct sp_policy *nsp_policy(const struct nsp_handle *h);
const char *nsp_path(const struct nsp_handle *h); /* the file it came from */
bool nsp_is_namespaced(const struct nsp_handle *h); /* <dir>/<ns>.json, not the global file */

/* Counters, for tests and metrics. */
struct nsp_stats {
	unsigned long loads;  /* files read and parsed (successfully or not) */
	unsigned long hits;   /* lookups served from the cache */
	size_t entries;
};
void nsp_cache_stats(const struct nsp_cache *c, struct nsp_stats *out);

#endif
