/*
 * crisp: registries.d, containers-registries.d(5): where the signatures of
 * an image live (a lookaside store) and whether sigstore attachments are
 * read from the registry.
 *
 * Every "*.yaml" file of a directory is read in strcmp order of its name
 * and merged; "default-docker" in two files, or one docker scope in two
 * files, is an error naming both files (c/image loadAndMergeConfig).
 *
 * Each file is a strict YAML subset, exactly this shape:
 *
 *   default-docker:                 # optional
 *     lookaside: URL                # or the legacy name "sigstore"
 *     lookaside-staging: URL        # parsed, ignored (crisp never writes)
 *     sigstore-staging: URL         # parsed, ignored
 *     use-sigstore-attachments: true|false
 *   docker:                         # optional
 *     SCOPE:                        # same four-plus-one keys as above
 *       lookaside: URL
 *
 * Accepted YAML: block mappings only, indented by spaces (a child at least
 * two columns deeper than its parent, siblings aligned); keys and values
 * plain, 'single-quoted' ('' is a quote) or "double-quoted" (escapes \\ \"
 * \/ \t \n \r only); `#` comments (at line start or after a space); one
 * leading `---`; a key with no value and no children is null (absent).
 * Booleans true/True/TRUE/false/False/FALSE.  Refused, with
 * "file:line: message": tabs, anchors (&), aliases (*), tags (!), flow
 * collections ({} []), sequences (-), block scalars (| >), directives (%),
 * a second document or `...`, duplicate keys, unknown keys (c/image ignores
 * them; here a typo must not silently drop a lookaside), both "lookaside"
 * and "sigstore" in one entry, a lookaside URL lookaside.h refuses, and a
 * scope that is not a fully expanded docker scope (host[:port][/path],
 * host[:port]/repo:tag or @digest, or *.domain) since it could never match.
 *
 * Lookup (c/image registries_d.go), per field: the image's full reference
 * (name:tag or name@digest), its repository, each parent namespace, the
 * host[:port], the "*." wildcards of the host name, then default-docker;
 * the first of those that sets the field wins, one that exists without
 * setting it is skipped for that field.
 *
 * Pure code except regsd_load_dir (reads the directory).
 */
#ifndef CRISP_IMAGED_REGSD_H
#define CRISP_IMAGED_REGSD_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "policy/dockerref.h"

#define REGSD_FILE_MAX (1u << 20)  /* bytes per file */
#define REGSD_MAX_FILES 256
#define REGSD_MAX_SCOPES 4096      /* docker scopes over all files */
#define REGSD_SCALAR_MAX 4096      /* bytes of one key or value */

struct regsd_entry {
	char *scope;     /* NULL for default-docker */
	char *lookaside; /* NULL when not set (either key name) */
	bool has_use_attachments;
	bool use_attachments;
	char *file;      /* where it was defined (for messages) */
};

struct regsd {
	bool has_default;
	struct regsd_entry def;
	size_t n;                   /* docker scopes, sorted by strcmp(scope) */
	struct regsd_entry *scopes;
};

/* Empty configuration (no files): no lookaside, no attachments. */
struct regsd *regsd_new(void);
void regsd_free(struct regsd *c);

/* Parse one file's bytes (name is used in messages and for duplicate
 * reports) and merge it into c.  INVALID_ARGUMENT "name:line: message";
 * on failure c is unchanged. */
int regsd_parse(struct regsd *c, const char *name, const void *data, size_t len, crisp_err_t *err);

/* Read and merge every *.yaml of dir, sorted.  A missing dir is an empty
 * configuration (c/image).  FAILED_PRECONDITION when a file cannot be
 * read, INVALID_ARGUMENT when one does not parse. */
int regsd_load_dir(const char *dir, struct regsd **out, crisp_err_t *err);

struct regsd_result {
	const char *lookaside;      /* borrowed from c; NULL: no lookaside store */
	const char *lookaside_from; /* scope that gave it ("" for default-docker), NULL if none */
	bool use_attachments;
	const char *attachments_from;
};

/* What applies to image_ref (normalised as a pull: a bare name gets
 * ":latest").  INVALID_ARGUMENT for a malformed reference. */
int regsd_lookup(const struct regsd *c, const char *image_ref, struct regsd_result *out, crisp_err_t *err);

#endif
