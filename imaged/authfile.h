/*
 * imaged: registry credentials from a containers-auth.json(5) file
 *
 *   {"auths": {"<host[:port][/repo/path]>": {"auth": "<base64 user:pass>",
 *                                            "identitytoken": "<token>"}, ...}}
 *
 * Parsed strictly: at most AUTHFILE_MAX_SIZE bytes, duplicate keys, unknown
 * members, credential helpers (credHelpers, credsStore) and malformed
 * entries are refused, never skipped.  Keys of the legacy form
 * "https://index.docker.io/v1/" (a scheme) keep their host only, and
 * docker.io's historic hosts become docker.io, as containers/image does.
 *
 * Lookup is containers/image's: for host/a/b the keys host/a/b, host/a,
 * host are tried in that order; the first present one answers.
 *
 * The parsed credentials are secrets: they are wiped (sodium_memzero)
 * when freed and never appear in an error message.
 */
#ifndef CRISP_IMAGED_AUTHFILE_H
#define CRISP_IMAGED_AUTHFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "common/err.h"

#define AUTHFILE_MAX_SIZE (1u << 20)
#define AUTHFILE_MAX_ENTRIES 1024
#define AUTHFILE_MAX_KEY 512
#define AUTHFILE_MAX_SECRET 8192

struct authfile_entry {
	char *key;            /* normalised: host[:port][/path] */
	char *username;       /* NULL when only an identity token is given */
	char *password;
	char *identity_token; /* NULL when none */
};

struct authfile {
	struct authfile_entry *e;
	size_t n;
};

/* Parse a whole file.  Returns 0 with *out set (an empty "auths" gives an
 * empty set), or -1 with err (INVALID_ARGUMENT) naming what is wrong but
 * never a secret. */
int authfile_parse(const char *buf, size_t len, struct authfile **out, crisp_err_t *err);
void authfile_free(struct authfile *af);

/* Credentials for repository repo (no tag) at host[:port], or NULL. */
const struct authfile_entry *authfile_lookup(const struct authfile *af, const char *host,
					     const char *repo);

/*
 * A file followed by its path: authfile_cache_get() re-reads it when its
 * identity, size or times changed since the last read (stat-based), so an
 * edited file is used by the next pull without a configuration reload.
 */
struct authfile_cache {
	char *path;           /* NULL or "": no file configured */
	struct authfile *af;  /* NULL: the file is absent (no credentials) */
	bool loaded;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

/* Point the cache at path ("" or NULL: none) and load it now.  On error
 * the cache is left as it was. */
int authfile_cache_set(struct authfile_cache *c, const char *path, crisp_err_t *err);
/* The current credentials (NULL: none), re-read when the file changed.  A
 * file that became unreadable or malformed is an error (FAILED_PRECONDITION)
 * rather than a silent loss of credentials. */
int authfile_cache_get(struct authfile_cache *c, const struct authfile **out, crisp_err_t *err);
void authfile_cache_clear(struct authfile_cache *c);

/* Read and parse path; absent file: 0 with *out NULL. */
int authfile_load(const char *path, struct authfile **out, struct stat *sb, crisp_err_t *err);

#endif
