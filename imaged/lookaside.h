/*
 * crisp: lookaside signature stores (containers-registries.d(5),
 * "separate storage" of c/image docs/signature-protocols.md).
 *
 * A signature of the image whose repository is <path> (the repository path
 * WITHOUT the registry host: docker.io/library/busybox -> library/busybox,
 * quay.io/ns/app -> ns/app; c/image reference.Path) and whose manifest
 * digest is <alg>:<hex> lives at
 *
 *     <base>/<path>@<alg>=<hex>/signature-<N>        N = 1, 2, ...
 *
 * read until the first missing N (c/image docker/registries_d.go
 * lookasideStorageBaseURL + lookasideStorageURL).  The base is concatenated
 * as written: a base ending in '/' gives "//" as c/image does.
 *
 * Bases accepted (stricter than c/image's url.Parse, which takes anything):
 *   file:///abs/path            (no host: c/image ignores a host in a file
 *                                URL and reads the path, crisp refuses it)
 *   http://host[:port][/path]   https://host[:port][/path]
 * Refused: other schemes, '?', '#', '%' (no query, fragment or escapes,
 * so the path used is the path written), spaces, control and non-ASCII
 * bytes.
 *
 * Which base applies to an image (registries.d YAML: default-docker,
 * docker.<scope>, lookaside / sigstore keys) is NOT parsed here.  http(s)
 * fetching belongs to the registry client; this file only reads file://.
 */
#ifndef CRISP_IMAGED_LOOKASIDE_H
#define CRISP_IMAGED_LOOKASIDE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define LOOKASIDE_MAX_SIGS 32
#define LOOKASIDE_SIG_MAX (4u * 1024 * 1024)
#define LOOKASIDE_URL_MAX 4096

/* URL (or, for file://, still the URL) of signature n (n >= 1) of the image
 * image_ref (normalised like dockerref_parse; tag/digest ignored) whose
 * manifest digest is manifest_digest.  INVALID_ARGUMENT for a bad base,
 * reference, digest or n; OUT_OF_RANGE when out is too small. */
int lookaside_sig_url(const char *base, const char *image_ref, const char *manifest_digest, unsigned n,
		      char *out, size_t outsz, crisp_err_t *err);

struct lookaside_sig {
	uint8_t *data;
	size_t len;
};

struct lookaside_sigs {
	size_t n;
	struct lookaside_sig v[LOOKASIDE_MAX_SIGS];
};

/* Read signature-1..N from a file:// base until the first one that does
 * not exist (none at all is success with n == 0, like c/image).  Each must
 * be a regular file of at most LOOKASIDE_SIG_MAX bytes; a 33rd signature is
 * RESOURCE_EXHAUSTED.  Free with lookaside_sigs_free (also after failure). */
int lookaside_read_file(const char *base, const char *image_ref, const char *manifest_digest,
			struct lookaside_sigs *out, crisp_err_t *err);
void lookaside_sigs_free(struct lookaside_sigs *s);

#endif
