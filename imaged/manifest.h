/*
 * imaged: strict parsing of image manifests, indexes and image configs.
 *
 * Pure code: no I/O, no logging, no global state.  The registry client
 * hands it the exact bytes a registry sent (and the Content-Type it sent);
 * it hands back owned C structures (no jansson object outlives a call) or an
 * error whose message starts with the JSON path of the offending value:
 *
 *     manifest.layers[2].digest: not a sha256 digest (only sha256:<64 lowercase hex> is accepted)
 *
 * Formats accepted (schemaVersion 2 only):
 *   application/vnd.oci.image.manifest.v1+json                  MF_MANIFEST
 *   application/vnd.oci.image.index.v1+json                     MF_INDEX
 *   application/vnd.docker.distribution.manifest.v2+json        MF_MANIFEST
 *   application/vnd.docker.distribution.manifest.list.v2+json   MF_INDEX
 * Docker schema 1 (by Content-Type, mediaType or schemaVersion 1) is refused
 * with "schema 1 manifests are not supported: re-push the image with a
 * current client".  OCI artifacts (config media type other than an image
 * config, or an artifactType) are refused as "not a container image".
 *
 * Type detection.  The Content-Type header (parameters after ';' dropped,
 * compared case-insensitively) and the document's own mediaType must agree
 * when both name a type.  A Content-Type that says nothing (NULL, "",
 * application/json, application/octet-stream, text/plain) lets the document
 * decide.  An OCI document may omit mediaType (the spec only says SHOULD;
 * umoci writes none): then the Content-Type decides, or when that says
 * nothing too, the shape does ("manifests" => OCI index, "config"/"layers"
 * => OCI manifest).  Docker schema 2 documents must carry mediaType.  A
 * document whose fields belong to another type ("manifests" in a manifest,
 * "config"/"layers" in an index, schema 1's "fsLayers") is refused.
 *
 * Strictness beyond the specs, and why:
 *   - duplicate keys are refused (JSON_REJECT_DUPLICATES): two parsers that
 *     pick different duplicates see different images;
 *   - a key that differs only in case (with Go's Unicode folding of
 *     U+017F and U+212A) from one we read is refused: Go decoders
 *     (containerd, Docker, c/image) match keys case-insensitively, so
 *     {"Cmd":..,"cmd":..} would mean different things to them and to us;
 *   - digests: only sha256:<64 lowercase hex>;
 *   - descriptor "urls" are refused everywhere: every blob is fetched from
 *     the registry by digest.  Non-distributable ("foreign") layer media
 *     types are accepted without urls (the registry must serve them; most
 *     do), flagged with mf_descriptor.foreign;
 *   - unknown fields are ignored, as the OCI spec requires, after the checks
 *     above; sizes, counts and string lengths are bounded (MF_MAX_*).
 * Deliberately lenient: an OCI manifest may use Docker layer/config media
 * types and vice versa (containerd and CRI-O accept the mix; the bytes are
 * the same tar); an index entry with an unknown media type is kept as
 * MF_DESC_OTHER and never selected (the OCI spec asks to ignore them).
 *
 * Errors use common/err.h: INVALID_ARGUMENT for malformed or unsupported
 * content, NOT_FOUND when an index has no image for the node, DATA_LOSS when
 * bytes do not match the descriptor that named them, RESOURCE_EXHAUSTED
 * when memory runs out.
 */
#ifndef CRISP_IMAGED_MANIFEST_H
#define CRISP_IMAGED_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Bounds (compile-time; override with -D). */
#ifndef MF_MAX_LAYERS
#define MF_MAX_LAYERS 256 /* layers per manifest and diff_ids per config */
#endif
#define MF_MAX_MANIFEST_SIZE (4u * 1024 * 1024) /* a manifest or index document */
#define MF_MAX_CONFIG_SIZE (8u * 1024 * 1024)   /* an image config document */
#define MF_MAX_LAYER_SIZE (64ull * 1024 * 1024 * 1024) /* one (compressed) layer blob */
#define MF_MAX_INDEX_ENTRIES 1024 /* manifests[] of an index */
#define MF_MAX_INDEX_DEPTH 2      /* top index + one nested index */
#define MF_MAX_ANNOTATIONS 256    /* per annotations object */
#define MF_MAX_LABELS 1024        /* config.Labels */
#define MF_MAX_ENV 1024           /* config.Env entries */
#define MF_MAX_ARGS 1024          /* config.Entrypoint / config.Cmd entries */
#define MF_MAX_PORTS 1024         /* config.ExposedPorts */
#define MF_MAX_VOLUMES 256        /* config.Volumes */
#define MF_MAX_KEY_LEN 1024       /* annotation / label keys */
#define MF_MAX_VALUE_LEN 65536    /* annotation / label values */
#define MF_MAX_ARG_LEN 131072     /* one Env / Entrypoint / Cmd string (MAX_ARG_STRLEN) */
#define MF_MAX_PATH_LEN 4096      /* WorkingDir, Volumes keys */

#define MF_DIGEST_LEN 71      /* "sha256:" + 64 hex */
#define MF_DIGEST_SIZE 72     /* with the NUL */
#define MF_MEDIA_TYPE_SIZE 256 /* RFC 6838: 127 + '/' + 127, plus NUL */
#define MF_PLATFORM_FIELD_SIZE 32

#define MF_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MF_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MF_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MF_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MF_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MF_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

enum mf_kind {
	MF_MANIFEST = 1, /* an image manifest: config + layers */
	MF_INDEX = 2,    /* an index / manifest list: manifests */
};

/* What a descriptor points at. */
enum mf_desc_type {
	MF_DESC_CONFIG = 1, /* manifest.config: an image config */
	MF_DESC_LAYER,      /* manifest.layers[i] */
	MF_DESC_MANIFEST,   /* index entry: an image manifest (OCI or Docker) */
	MF_DESC_INDEX,      /* index entry: a nested index / manifest list */
	MF_DESC_OTHER,      /* index entry of an unknown type: never selected */
};

enum mf_compression {
	MF_COMP_NONE = 0, /* plain tar */
	MF_COMP_GZIP,
	MF_COMP_ZSTD,
};

/* os / architecture / variant, each [A-Za-z0-9._-]{1,31} (variant may be ""). */
struct mf_platform {
	char os[MF_PLATFORM_FIELD_SIZE];
	char arch[MF_PLATFORM_FIELD_SIZE];
	char variant[MF_PLATFORM_FIELD_SIZE];
};

/* A key/value pair (annotations, labels); both owned, NUL-free strings. */
struct mf_kv {
	char *key;
	char *value;
};

struct mf_descriptor {
	enum mf_desc_type type;
	char media_type[MF_MEDIA_TYPE_SIZE];
	char digest[MF_DIGEST_SIZE]; /* always valid "sha256:<hex>" */
	uint64_t size;
	enum mf_compression comp; /* layers only */
	bool foreign;             /* layers: non-distributable media type */
	bool has_platform;        /* index entries: a platform object was given */
	struct mf_platform platform; /* as written (not normalised) */
	struct mf_kv *annotations;
	size_t nannotations;
};

struct mf_manifest {
	enum mf_kind kind;
	char media_type[MF_MEDIA_TYPE_SIZE]; /* effective type (see above) */
	bool docker;                         /* Docker schema 2 rather than OCI */
	char digest[MF_DIGEST_SIZE];         /* sha256 of the exact bytes parsed */
	uint64_t size;                       /* their length */
	unsigned depth;                      /* 0 top level, 1 under an index, ... */
	/* MF_MANIFEST */
	struct mf_descriptor config;
	struct mf_descriptor *layers;
	size_t nlayers;
	/* MF_INDEX */
	struct mf_descriptor *manifests;
	size_t nmanifests;
	struct mf_kv *annotations;
	size_t nannotations;
};

/* A NULL-terminated array of owned strings with its count; NULL = absent. */
struct mf_strv {
	char **v;
	size_t n;
};

struct mf_config {
	struct mf_platform platform; /* architecture, os, variant (may be "") */
	/* config.* — every pointer NULL when the image does not set it */
	char *user;
	struct mf_strv env;        /* "KEY=value", KEY non-empty */
	struct mf_strv entrypoint; /* v != NULL, n == 0 for an explicit [] */
	struct mf_strv cmd;
	char *working_dir;
	struct mf_kv *labels;
	size_t nlabels;
	struct mf_strv exposed_ports; /* keys, e.g. "80/tcp" */
	struct mf_strv volumes;       /* keys, e.g. "/data" */
	char *stop_signal;
	/* rootfs */
	char (*diff_ids)[MF_DIGEST_SIZE];
	size_t ndiff_ids;
};

/* True when s is exactly "sha256:" followed by 64 lowercase hex digits. */
bool mf_valid_digest(const char *s);

/* Write "sha256:<hex>" of buf[0..len) into out (NUL-terminated).  Returns 0. */
int mf_digest(const uint8_t *buf, size_t len, char out[MF_DIGEST_SIZE]);

/*
 * Parse a top-level manifest or index (what GET /v2/<name>/manifests/<ref>
 * returned).  content_type is the response's Content-Type or NULL.  On
 * success *out is filled (kind, digest of buf, ...) and must be released
 * with mf_manifest_free(); on failure *out is left empty (freeing it is
 * harmless) and err says why.  A caller that pulled by digest compares
 * out->digest with it.
 */
int mf_parse(const char *content_type, const uint8_t *buf, size_t len, struct mf_manifest *out,
	     crisp_err_t *err);

/*
 * Parse the document that the index entry `entry` of `parent` (parsed
 * earlier) names.  On top of mf_parse: len must equal entry->size and the
 * bytes must hash to entry->digest (DATA_LOSS otherwise), the document's type
 * must be entry->media_type, and an index nested deeper than
 * MF_MAX_INDEX_DEPTH allows is refused.
 */
int mf_parse_child(const struct mf_manifest *parent, const struct mf_descriptor *entry,
		   const char *content_type, const uint8_t *buf, size_t len, struct mf_manifest *out,
		   crisp_err_t *err);

void mf_manifest_free(struct mf_manifest *m);

/*
 * Normalise a platform as containerd's platforms package does: lower case;
 * x86_64/x86-64 -> amd64 (variant v1 -> ""); aarch64 -> arm64 (variant
 * ""/8/v8 -> "v8"; 9 -> v9); armhf -> arm/v7, armel -> arm/v6, arm with
 * "" or a bare number -> v7 / v<n>; i386 -> 386; macos -> darwin.  Unlike
 * containerd, arm64's default variant is spelled "v8" (not "") so that
 * "arm64" and "arm64/v8" compare equal either way.  variant may be NULL.
 * Fields that do not fit are truncated (inputs are bounded by the parser).
 */
void mf_platform_normalize(const char *os, const char *arch, const char *variant,
			   struct mf_platform *out);

/* The platform this binary was built for (linux/<arch>[/<variant>]). */
void mf_platform_default(struct mf_platform *out);

/*
 * Choose the entry of an index for the node os/arch/variant (variant may be
 * NULL or ""): the first entry of type MF_DESC_MANIFEST or MF_DESC_INDEX
 * whose platform equals the node's after both are normalised.  os.version
 * and os.features are ignored.  Entries without a platform never match.
 * *out points into index->manifests.  When nothing matches: NOT_FOUND,
 * "no image for linux/amd64 in index (available: linux/arm64/v8, ...)".
 * A chosen nested index is parsed with mf_parse_child() and selected again.
 */
int mf_select_platform(const struct mf_manifest *index, const char *os, const char *arch,
		       const char *variant, const struct mf_descriptor **out, crisp_err_t *err);

/*
 * Check that buf is the blob d names: length d->size and digest d->digest.
 * DATA_LOSS when not.  Used for the config (fetched into memory whole).
 */
int mf_verify_blob(const struct mf_descriptor *d, const uint8_t *buf, size_t len, crisp_err_t *err);

/* Parse an image config (OCI or Docker; they share the format). */
int mf_config_parse(const uint8_t *buf, size_t len, struct mf_config *out, crisp_err_t *err);

/* rootfs.diff_ids must have one entry per layer of the manifest m. */
int mf_config_check_layers(const struct mf_config *c, const struct mf_manifest *m, crisp_err_t *err);

/*
 * The config's os and architecture must be the node's (normalised); the
 * variant is compared only when both sides name one.  An index is only a
 * hint: this is the check that the image really is for this node.
 */
int mf_config_check_platform(const struct mf_config *c, const char *os, const char *arch,
			     const char *variant, crisp_err_t *err);

void mf_config_free(struct mf_config *c);

#endif
