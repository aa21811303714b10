/*
 * crisp: signature policy, containers-policy.json(5).
 *
 * Pure code: sp_policy_parse takes the file's bytes, evaluation takes
 * strings; nothing here opens a file, verifies a signature or logs.  The
 * result of an evaluation says which requirements apply to an image, which
 * keys each names and how the signed identity is checked; imaged's verifier
 * does the cryptography.
 *
 * Accepted syntax (strict: any unknown field, unknown type, wrong JSON type,
 * duplicate key or missing required field rejects the whole file, with a
 * message naming the JSON path, e.g. `transports.docker["quay.io/x"][0].keyPath`):
 *
 *   { "default": [req, ...],                       required, non-empty
 *     "transports": { "docker": { scope: [req, ...], ... },
 *                     <other c/image transport>: { ... } } }
 *
 * docker scopes (checked; c/image accepts any string and simply never
 * matches a malformed one, crisp refuses it so a typo cannot silently fall
 * through to a weaker scope):
 *   ""                          transport default
 *   host[:port]                 host must be a registry host: it contains
 *                               '.' or ':' or is "localhost"
 *   host[:port]/ns[/...]        namespace or repository, fully expanded
 *   host[:port]/repo:tag  /  host[:port]/repo@digest
 *                               one image; must be the fully expanded form
 *                               (docker.io/library/busybox:latest, not
 *                               busybox:latest)
 *   *.domain                    every host below domain (not domain itself),
 *                               any port
 * Other transports (atomic, containers-storage, dir, docker-archive,
 * docker-daemon, oci, oci-archive, ostree, sif, tarball): their requirement
 * lists are parsed and checked like docker's (so a broken requirement is an
 * error wherever it is), their scopes are not interpreted, and they never
 * apply: crisp pulls only through docker.  Unknown transport names are
 * errors.
 *
 * Requirements:
 *   {"type":"insecureAcceptAnything"}   {"type":"reject"}
 *   {"type":"signedBy", "keyType":"GPGKeys",
 *    exactly one of "keyPath": abs path | "keyPaths": [abs path, ...] |
 *                   "keyData": base64,
 *    "signedIdentity": identity (default matchRepoDigestOrExact)}
 *   {"type":"sigstoreSigned",
 *    exactly one of "keyPath" | "keyPaths" | "keyData" | "keyDatas" |
 *                   "fulcio": {caPath|caData, oidcIssuer, subjectEmail} |
 *                   "pki": {caRootsPath|caRootsData,
 *                           [caIntermediatesPath|caIntermediatesData],
 *                           subjectEmail and/or subjectHostname},
 *    at most one of "rekorPublicKeyPath(s)" | "rekorPublicKeyData(s)"
 *    (required with fulcio, refused with pki),
 *    "signedIdentity": identity}
 * Identities: matchExact, matchRepoDigestOrExact, matchRepository,
 *   exactReference {dockerReference}, exactRepository {dockerRepository},
 *   remapIdentity {prefix, signedPrefix}.
 */
#ifndef CRISP_POLICY_SIGPOLICY_H
#define CRISP_POLICY_SIGPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "policy/dockerref.h"

/* Largest policy file accepted (keyData blobs make files big, not deep). */
#define SP_POLICY_MAX_BYTES (4u * 1024 * 1024)

enum sp_identity_type {
	SP_ID_MATCH_EXACT = 1,
	SP_ID_MATCH_REPO_DIGEST_OR_EXACT,
	SP_ID_MATCH_REPOSITORY,
	SP_ID_EXACT_REFERENCE,
	SP_ID_EXACT_REPOSITORY,
	SP_ID_REMAP_IDENTITY,
};

struct sp_identity {
	enum sp_identity_type type;
	char *docker_reference;  /* exactReference: as written (validated, has a tag or digest) */
	char *docker_repository; /* exactRepository: as written (validated) */
	char *prefix;            /* remapIdentity */
	char *signed_prefix;     /* remapIdentity */
};

struct sp_blob {
	uint8_t *data;
	size_t len;
};

/* Where keys (or CA certificates) come from.  Paths are absolute and are
 * read by the verifier, not here. */
enum sp_keys_kind {
	SP_KEYS_NONE = 0, /* field absent (optional ones only) */
	SP_KEYS_PATHS,    /* keyPath (n == 1) or keyPaths */
	SP_KEYS_DATA,     /* keyData (n == 1) or keyDatas, base64-decoded */
};

struct sp_keys {
	enum sp_keys_kind kind;
	const char *field; /* the JSON field they came from, e.g. "keyPaths" (static) */
	size_t n;
	char **paths;         /* SP_KEYS_PATHS */
	struct sp_blob *data; /* SP_KEYS_DATA */
};

enum sp_req_type {
	SP_REQ_INSECURE_ACCEPT_ANYTHING = 1,
	SP_REQ_REJECT,
	SP_REQ_SIGNED_BY,       /* simple signing, OpenPGP (keyType GPGKeys) */
	SP_REQ_SIGSTORE_SIGNED, /* cosign / sigstore */
};

enum sp_sigstore_trust {
	SP_SIGSTORE_KEYS = 1, /* public keys in .keys */
	SP_SIGSTORE_FULCIO,   /* Fulcio-issued certificate: .fulcio */
	SP_SIGSTORE_PKI,      /* certificate from a private CA: .pki */
};

struct sp_fulcio {
	struct sp_keys ca; /* caPath | caData */
	char *oidc_issuer;
	char *subject_email;
};

struct sp_pki {
	struct sp_keys ca_roots;         /* caRootsPath | caRootsData */
	struct sp_keys ca_intermediates; /* optional: kind SP_KEYS_NONE when absent */
	char *subject_email;             /* NULL when absent */
	char *subject_hostname;          /* NULL when absent */
};

struct sp_requirement {
	enum sp_req_type type;
	char *where; /* JSON path for audit and messages, e.g. `default[0]` */
	/* SP_REQ_SIGNED_BY: the OpenPGP keyrings.  SP_REQ_SIGSTORE_SIGNED with
	 * SP_SIGSTORE_KEYS: the public keys (PEM). */
	struct sp_keys keys;
	/* SP_REQ_SIGSTORE_SIGNED only */
	enum sp_sigstore_trust trust;
	struct sp_fulcio fulcio;
	struct sp_pki pki;
	struct sp_keys rekor_keys; /* kind SP_KEYS_NONE when absent */
	/* Set for fulcio and pki: certificate-chain verification is not
	 * implemented on this node yet, so the verifier must refuse these
	 * requirements with a message that says so (they never accept). */
	bool needs_cert_roots;
	/* SP_REQ_SIGNED_BY and SP_REQ_SIGSTORE_SIGNED */
	struct sp_identity identity;
};

struct sp_reqlist {
	size_t n;
	struct sp_requirement *v;
};

struct sp_scope {
	char *scope; /* as written in the file (validated, fully expanded) */
	struct sp_reqlist reqs;
};

struct sp_policy {
	struct sp_reqlist def;           /* "default" */
	bool has_docker_default;         /* transports.docker[""] present */
	struct sp_reqlist docker_default;
	size_t n_scopes;                 /* transports.docker, "" excluded, sorted by strcmp */
	struct sp_scope *scopes;
	size_t n_ignored_transports;     /* other transports: parsed, never applied */
};

/* Parse a policy file's bytes.  On success *out is a new policy (free it
 * with sp_policy_free).  On failure INVALID_ARGUMENT naming the JSON path
 * (or the line and column for JSON syntax errors and duplicate keys). */
int sp_policy_parse(const void *data, size_t len, struct sp_policy **out, crisp_err_t *err);
void sp_policy_free(struct sp_policy *p);

enum sp_match_kind {
	SP_MATCH_DEFAULT = 1,       /* the global "default" */
	SP_MATCH_TRANSPORT_DEFAULT, /* transports.docker[""] */
	SP_MATCH_SCOPE,             /* transports.docker[scope] */
};

struct sp_match {
	const struct sp_reqlist *reqs; /* borrowed from the policy; all must accept */
	enum sp_match_kind kind;
	const char *scope;             /* borrowed; NULL for the global default, "" for the transport default */
	char label[DOCKERREF_STR_MAX + 32]; /* `default`, `transports.docker[""]`, `transports.docker["quay.io/x"]` */
	struct dockerref ref;          /* the image reference as evaluated (normalised, :latest added) */
	char identity[DOCKERREF_STR_MAX]; /* ref as a string: the most specific scope looked up */
	char manifest_digest[DOCKERREF_DIGEST_MAX + 1]; /* what signatures must attest */
};

/*
 * Which requirements apply to image_ref (as pulled; normalised here, a
 * bare name gets ":latest") whose manifest has digest manifest_digest.
 * The most specific scope wins, as c/image's docker transport orders them:
 * the exact reference (name:tag or name@digest), the repository, each
 * parent namespace from the longest, the host[:port], then "*." wildcards
 * of the host name (port stripped) from the most specific, then
 * transports.docker[""], then "default".  A scope host without a port
 * does not match a reference whose host has one (c/image behaviour).
 *
 * Errors: INVALID_ARGUMENT for a malformed reference or digest;
 * PERMISSION_DENIED when image_ref is by digest and that digest is not
 * manifest_digest.
 */
int sp_policy_evaluate(const struct sp_policy *p, const char *image_ref, const char *manifest_digest,
		       struct sp_match *out, crisp_err_t *err);

/*
 * Does a signature claiming signature_docker_reference (critical.identity.
 * docker-reference of the signed payload) satisfy rule for the image pulled
 * as image_ref?  c/image semantics (signature/policy_reference_match.go);
 * anything that does not parse is a mismatch.
 *   matchExact              both have a tag or digest, and are equal
 *   matchRepoDigestOrExact  image by tag: equal; image by digest: same
 *                           repository (signature must carry a tag/digest)
 *   matchRepository         same repository
 *   exactReference          signature equals dockerReference (both tag/digest)
 *   exactRepository         signature's repository is dockerRepository's
 *   remapIdentity           if the image's repository is prefix or below it,
 *                           replace prefix by signedPrefix (the result must
 *                           be fully expanded), then matchRepoDigestOrExact
 */
bool sp_identity_matches(const struct sp_identity *rule, const char *image_ref,
			 const char *signature_docker_reference);
/* The same with the image reference already parsed (e.g. sp_match.ref). */
bool sp_identity_matches_ref(const struct sp_identity *rule, const struct dockerref *image,
			     const char *signature_docker_reference);

/* Names for messages and audit records ("signedBy", "matchRepository"). */
const char *sp_req_type_name(enum sp_req_type t);
const char *sp_identity_type_name(enum sp_identity_type t);

#endif
