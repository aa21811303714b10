/*
 * crisp: sigstore (cosign) signatures stored as registry attachments, and
 * their verification with public keys (policy "sigstoreSigned" with
 * keyPath / keyPaths / keyData / keyDatas).
 *
 * Where they are (c/image docker_image_src.go, cosign's tag convention):
 * the OCI image manifest at tag "<alg>-<hex>.sig" of the image's
 * repository, where <alg>:<hex> is the image's manifest digest.  Its
 * layers of mediaType application/vnd.dev.cosign.simplesigning.v1+json
 * each hold one signature: the layer blob is the signed payload, its
 * digest and size are the layer's digest and size, and the annotation
 * dev.cosignproject.cosign/signature is the base64 signature over the
 * payload bytes.  Layers of other media types are ignored (c/image).
 *
 * Attachment manifest parsing (sigstore_attachment_parse) is strict: JSON
 * object, no duplicate keys, schemaVersion 2, mediaType (when present)
 * application/vnd.oci.image.manifest.v1+json, no "manifests" (an index
 * is not an attachment), "layers" an array of at most
 * SIGSTORE_MAX_LAYERS objects; every layer must have a string mediaType,
 * a valid digest (sha256/sha384/sha512) and an integral size; a
 * signature layer must have size <= SIG_PAYLOAD_MAX, and at most
 * SIGSTORE_MAX_SIGS of them are accepted.  A signature layer whose
 * annotation is missing or is not strict standard base64 of 1 to
 * SIGSTORE_SIG_MAX bytes is kept with a problem (it can never verify) so
 * the others still count, as c/image reports per signature.
 *
 * Verification (sig_verify_sigstore), per signature, c/image
 * policy_eval_sigstore.go order: the payload blob must match the layer's
 * digest and size; the signature must verify over the payload bytes with
 * one of the requirement's keys; then the payload is parsed
 * (sig_payload_parse_kind, SIG_PAYLOAD_COSIGN), its docker-manifest-digest
 * must equal the pulled manifest digest and its docker-reference must
 * satisfy signedIdentity (sp_identity_matches).  One accepted signature
 * is enough.  Keys: PEM, exactly one "PUBLIC KEY" block
 * (SubjectPublicKeyInfo) per keyPath/keyData; ECDSA on P-256 (signature
 * DER, SHA-256) or Ed25519 (pure); every other key type or curve is
 * refused with FAILED_PRECONDITION naming it.
 *
 * Errors: PERMISSION_DENIED for whatever is the signature's fault (none,
 * bad, wrong digest or identity, malformed payload); FAILED_PRECONDITION
 * for fulcio / pki / rekor requirements ("fulcio/rekor verification is not
 * supported on this node"), and unreadable or unsupported keys;
 * INVALID_ARGUMENT for a requirement that is not sigstoreSigned, and for
 * a malformed attachment manifest.
 */
#ifndef CRISP_IMAGED_SIGSTORE_H
#define CRISP_IMAGED_SIGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "imaged/sigverify.h"
#include "policy/dockerref.h"
#include "policy/sigpolicy.h"

#define SIGSTORE_MEDIA_TYPE "application/vnd.dev.cosign.simplesigning.v1+json"
#define SIGSTORE_SIG_ANNOTATION "dev.cosignproject.cosign/signature"
#define SIGSTORE_MANIFEST_MAX (4u * 1024 * 1024)
#define SIGSTORE_MAX_LAYERS 128
#define SIGSTORE_MAX_SIGS 32
#define SIGSTORE_SIG_MAX 1024 /* decoded signature bytes (P-256 DER <= 72, Ed25519 64) */
#define SIGSTORE_FPR_MAX 64   /* hex SHA-256 of the key's SubjectPublicKeyInfo */

/* "sha256-<hex>.sig" for manifest digest "sha256:<hex>".  INVALID_ARGUMENT
 * for a bad digest, OUT_OF_RANGE when out is too small. */
int sigstore_attachment_tag(const char *manifest_digest, char *out, size_t outsz, crisp_err_t *err);

struct sigstore_layer {
	char digest[DOCKERREF_DIGEST_MAX + 1]; /* of the payload blob, to fetch */
	uint64_t size;
	uint8_t *sig; /* decoded signature; NULL when problem is set */
	size_t sig_len;
	const char *problem; /* static text: why this one can never verify, or NULL */
};

struct sigstore_attachment {
	size_t n;         /* signature layers */
	size_t n_ignored; /* layers of other media types */
	struct sigstore_layer v[SIGSTORE_MAX_SIGS];
};

int sigstore_attachment_parse(const uint8_t *buf, size_t len, struct sigstore_attachment *out, crisp_err_t *err);
void sigstore_attachment_free(struct sigstore_attachment *a);

/* A fetched blob is the layer's payload: exact size and digest.
 * PERMISSION_DENIED otherwise. */
int sigstore_payload_check(const struct sigstore_layer *l, const uint8_t *payload, size_t len, crisp_err_t *err);

/* One signature: the layer (its problem, signature) and its payload blob
 * (NULL when it could not be fetched: then fetch_error says why). */
struct sigstore_sig {
	const struct sigstore_layer *layer;
	const uint8_t *payload;
	size_t payload_len;
	const char *fetch_error;
};

struct sigstore_verified {
	size_t index;                            /* which signature was accepted */
	char key_fingerprint[SIGSTORE_FPR_MAX + 1]; /* "sha256 of SPKI", lower-case hex */
	const char *key_type;                    /* "ecdsa-p256" | "ed25519" (static) */
	struct sig_payload payload;
};

/* Verify one signature over payload with one PEM public key (the
 * primitive, exposed for tests).  0 when it verifies; PERMISSION_DENIED
 * when it does not; FAILED_PRECONDITION for a key that does not load or
 * is of an unsupported type. */
int sigstore_verify_raw(const uint8_t *pem, size_t pem_len, const uint8_t *payload, size_t payload_len,
			const uint8_t *sig, size_t sig_len, char fpr[SIGSTORE_FPR_MAX + 1], const char **key_type,
			crisp_err_t *err);

/* Does req (SP_REQ_SIGSTORE_SIGNED) accept image_ref with manifest digest
 * manifest_digest given sigs[0..n)?  0 and *out on acceptance. */
int sig_verify_sigstore(const struct sp_requirement *req, const char *image_ref, const char *manifest_digest,
			const struct sigstore_sig *sigs, size_t n, struct sigstore_verified *out, crisp_err_t *err);

#endif
