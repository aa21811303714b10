/*
 * imaged: the signature policy decision of a pull or a container create.
 *
 * One decision: the policy that applies (per namespace, nspolicy.h), the
 * scope of the reference (sp_policy_evaluate), then every requirement of
 * that scope must accept.  Signatures come from the network at pull time
 * (lookaside store per registries.d, file:// read here, http(s) fetched
 * in the verifier child; sigstore attachments through the registry
 * client, asynchronously) and from the image store at create time (no
 * network).  OpenPGP verification (gpgme runs the gpg binary and blocks)
 * happens in a forked child of imaged with a deadline; sigstore keys are
 * checked in-process (OpenSSL, no exec, microseconds).
 *
 * Every decision, allowed or refused, is appended to the audit log before
 * the caller learns it; a record that cannot be written refuses.
 * Refusals are PERMISSION_DENIED "SignatureValidationFailed: <reason>".
 */
#ifndef CRISP_IMAGED_SIGCHECK_H
#define CRISP_IMAGED_SIGCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "imaged/registry.h"
#include "imaged/store.h"

struct imaged_images;
struct sigcheck;

#define SIGCHECK_CHILD_TIMEOUT_MS 60000
#define SIGCHECK_MAX_CANDIDATES 16
#define SIGCHECK_MAX_OUTPUT (16u * 1024 * 1024) /* bytes from the verifier child */

/* A reference to decide: as pulled (normalised), the manifest digest the
 * signatures must attest, and (create) the signatures kept with it. */
struct sigcheck_candidate {
	const char *ref;
	const char *digest;
	const struct store_sig *sigs;
	size_t nsigs;
};

struct sigcheck_input {
	const char *event;      /* "pull" | "create" */
	const char *namespace_; /* NULL or "": the global policy */
	const char *pod;        /* for the audit log, may be NULL */
	/* Candidates, tried in order until one is allowed (create: the
	 * references the image was pulled by).  A pull has exactly one. */
	const struct sigcheck_candidate *cand;
	size_t ncand;
	/* Pull only: fetch signatures of cand[0] from the network. */
	bool fetch;
	const struct reg_endpoint *ep;
	const char *repo;
	const struct reg_auth *auth;
};

struct sigcheck_result {
	bool allow;
	crisp_err_t err;     /* the refusal (or an internal error) when !allow */
	const char *verdict; /* allow: JSON text for the image record */
	size_t cand;         /* which candidate decided */
	/* Pull: the signatures fetched (to keep with the image). */
	const struct store_sig *sigs;
	size_t nsigs;
};

/* Called exactly once unless cancelled, never from inside sigcheck_start;
 * the result is valid during the call only.  The sigcheck is freed after
 * the callback returns. */
typedef void (*sigcheck_cb)(void *arg, const struct sigcheck_result *r);

int sigcheck_start(struct imaged_images *ims, const struct sigcheck_input *in, sigcheck_cb cb,
		   void *arg, struct sigcheck **out, crisp_err_t *err);
/* No callback after this; a verifier child is killed and reaped. */
void sigcheck_cancel(struct sigcheck *sc);

/*
 * The verifier child's answer (a pipe; what it says derives from hostile
 * bytes, so it is parsed as strictly as any outside input):
 *   u32 nfetched, then per signature u32 len (1..STORE_SIG_MAX) + bytes
 *   u32 nreq, then per signedBy requirement
 *       i32 rc (0 or -1), i32 code, u32 msglen (<= 1024) + msg,
 *       u32 fprlen (<= 64, 0 when rc < 0) + fpr (hex)
 * all in host byte order, nothing after.  Pointers point into buf.
 */
#define SIGCHECK_MAX_REQS 64
struct sigcheck_answer {
	size_t nfetched;
	struct {
		const uint8_t *p;
		size_t len;
	} fetched[STORE_MAX_SIGS];
	size_t nres;
	struct {
		int32_t rc, code;
		const char *msg;
		size_t msglen;
		const char *fpr;
		size_t fprlen;
	} res[SIGCHECK_MAX_REQS];
};
/* 0, or -1 when malformed (or nreq != want). */
int sigcheck_parse_answer(const uint8_t *buf, size_t len, size_t want, struct sigcheck_answer *out);

#endif
