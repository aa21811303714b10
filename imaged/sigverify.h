/*
 * crisp: containers "simple signing" (OpenPGP) signatures, verified with
 * gpgme in a throw-away keyring, and their signed payload.
 *
 * The payload (docs/containers-signature.5 / c/image signature/simple.go):
 *
 *   {"critical": {"type": "atomic container signature",
 *                 "image": {"docker-manifest-digest": "sha256:<hex>"},
 *                 "identity": {"docker-reference": "<reference>"}},
 *    "optional": {"creator": "...", "timestamp": <integer>, ...}}
 *
 * Parsed as c/image's strictUnmarshalJSON does, with jansson and duplicate
 * keys refused: the top level and "critical" must hold exactly their fields
 * (unknown or missing ones refused), "image" and "identity" exactly their one
 * field; "optional" must be an object whose unknown members are ignored,
 * "creator" (when present) a string, "timestamp" an integral number.  The
 * digest must be a valid digest (sha256/sha384/sha512, lowercase hex).
 * Beyond c/image: the payload is at most SIG_PAYLOAD_MAX bytes, strings hold
 * no NUL, and a docker-reference longer than any valid reference is refused
 * (it could never match).
 *
 * Verification (sig_verify_gpg): a fresh GNUPGHOME (mkdtemp, 0700) below a
 * directory the caller owns receives exactly the keys the requirement names
 * (keyPath/keyPaths files, or keyData); the signature blob (an OpenPGP
 * signed message, as skopeo writes signature-N) is verified with
 * gpgme_op_verify, the plaintext captured with a size cap (a compressed
 * packet cannot balloon), and the signature accepted only when it is the
 * one signature in the message, its status is GPG_ERR_NO_ERROR, its summary
 * carries no red / revoked / expired / missing-key / policy / system-error
 * bit, its validity is not NEVER, it has no validity reason nor wrong key
 * usage, and the signing key (primary key, subkeys mapped to it) is one the
 * import reported.  Key trust is not consulted: the requirement *is* the
 * trust.  Then the payload: docker-manifest-digest must equal the digest
 * actually pulled (string comparison: crisp pulls sha256 only), and the
 * docker-reference must satisfy the requirement's signedIdentity
 * (sp_identity_matches).  The homedir is removed before returning, whatever
 * happened.  gpg runs with `no-autostart` (no gpg-agent is ever started),
 * gpgme offline mode, no key retrieval.
 *
 * Errors: PERMISSION_DENIED for every refusal that is the signature's fault
 * (bad, unknown key, wrong digest, wrong identity, malformed payload, no
 * signatures), with a message fit for `SignatureValidationFailed: ...`;
 * INVALID_ARGUMENT for a requirement that is not signedBy or names no keys;
 * FAILED_PRECONDITION when the keys cannot be read or none imports;
 * INTERNAL for gpgme / filesystem failures of our own.
 */
#ifndef CRISP_IMAGED_SIGVERIFY_H
#define CRISP_IMAGED_SIGVERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "policy/dockerref.h"
#include "policy/sigpolicy.h"

/* Largest signed payload accepted (skopeo's are ~300 bytes). */
#define SIG_PAYLOAD_MAX (64u * 1024)
/* Largest signature blob handed to gpg. */
#define SIG_BLOB_MAX (4u * 1024 * 1024)
/* Largest key file (keyPath / keyPaths entry) read. */
#define SIG_KEYFILE_MAX (4u * 1024 * 1024)
/* OpenPGP v4 fingerprints are 40 hex digits, v5 64. */
#define SIG_FPR_MAX 64
#define SIG_CREATOR_MAX 255

struct sig_payload {
	char manifest_digest[DOCKERREF_DIGEST_MAX + 1]; /* critical.image.docker-manifest-digest */
	char docker_reference[DOCKERREF_STR_MAX];       /* critical.identity.docker-reference, unvalidated */
	bool has_creator;
	char creator[SIG_CREATOR_MAX + 1]; /* optional.creator, truncated (audit only) */
	bool has_timestamp;
	int64_t timestamp; /* optional.timestamp */
};

/* Parse a signed payload (the plaintext of a verified signature).  Pure
 * code.  INVALID_ARGUMENT naming the offending field on any deviation. */
int sig_payload_parse(const uint8_t *buf, size_t len, struct sig_payload *out, crisp_err_t *err);

/* The same parser for both payload kinds.  SIG_PAYLOAD_COSIGN (sigstore,
 * c/image signature/internal/sigstore_payload.go) differs in two points:
 * critical.type is "cosign container image signature", and "optional" may
 * be null (cosign writes that when there are no annotations). */
enum sig_payload_kind {
	SIG_PAYLOAD_SIMPLE_SIGNING = 0, /* "atomic container signature" */
	SIG_PAYLOAD_COSIGN,             /* "cosign container image signature" */
};
int sig_payload_parse_kind(const uint8_t *buf, size_t len, enum sig_payload_kind kind, struct sig_payload *out,
			   crisp_err_t *err);

struct sig_blob {
	const uint8_t *data;
	size_t len;
};

struct sig_verified {
	char fingerprint[SIG_FPR_MAX + 1]; /* primary key of the accepted signer, upper-case hex */
	size_t index;                      /* which of the signatures was accepted */
	struct sig_payload payload;
};

/*
 * Does req (SP_REQ_SIGNED_BY) accept the image pulled as image_ref whose
 * manifest digest is manifest_digest, given its signatures sigs[0..n)?
 * One accepted signature is enough (c/image); with n == 0 the answer is
 * "A signature was required, but no signature exists".  One keyring is
 * built for all n signatures, in a new directory below tmp_parent (which
 * must exist and be private to the caller), and removed before returning.
 * On acceptance returns 0 and fills *out; otherwise -1 with the reasons of
 * (up to the first few) refused signatures in err->msg.
 */
int sig_verify_gpg(const char *tmp_parent, const struct sp_requirement *req, const char *image_ref,
		   const char *manifest_digest, const struct sig_blob *sigs, size_t n,
		   struct sig_verified *out, crisp_err_t *err);

#endif
