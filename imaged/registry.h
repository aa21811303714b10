/*
 * imaged: OCI distribution (v2) registry client on libcurl's multi
 * interface, driven by the process's one event loop (ipc/loop.h).
 *
 * Every registry is hostile.  What it sends is bounded and checked here
 * before anyone else sees it:
 *   - response headers: REG_MAX_HEADER_BYTES per response; only the few we
 *     read are kept, each with its own bound; Content-Length is never
 *     trusted (bytes are counted as they arrive);
 *   - manifests: at most REG_MAX_MANIFEST (4 MiB, MF_MAX_MANIFEST_SIZE);
 *     bodies of error responses and token answers: REG_MAX_SMALL_BODY;
 *     tokens: REG_MAX_TOKEN bytes of visible ASCII (no header injection);
 *   - blobs: streamed to the caller's fd, hashed (SHA-256, libsodium) and
 *     counted as they arrive; one byte more than the expected size stops the
 *     transfer; a size or digest mismatch is DATA_LOSS and the fd is
 *     truncated to 0 on any failure.
 *
 * Redirects are followed by hand (REG_MAX_REDIRECTS): only http/https,
 * never https -> http unless the endpoint is insecure, and no credentials
 * (Basic or Bearer) go to any origin other than the registry's own.
 * libcurl is restricted to http,https (CURLOPT_PROTOCOLS_STR and
 * CURLOPT_REDIR_PROTOCOLS_STR) and never follows a Location itself.
 *
 * Authentication.  A request goes out with what is already known for the
 * endpoint (a cached bearer token for its scope, or Basic when the registry
 * asked for Basic before).  On 401 the WWW-Authenticate challenge is parsed:
 *   Bearer realm=..,service=..,scope=..  -> token request to realm (GET with
 *       Basic credentials when given; POST grant_type=refresh_token when an
 *       identity token is given), token cached per (host, scope,
 *       credentials) until expires_in (default 60 s) minus a margin — a
 *       request never rides on a token that other credentials obtained;
 *   Basic                                -> Basic with the given credentials.
 * The request is retried once after a 401; a second 401 is UNAUTHENTICATED
 * and 403 PERMISSION_DENIED, with the registry's own error message (OCI
 * error JSON {"errors":[{"code","message"}]}) when it sent one.  A
 * registry_token is sent as-is as a bearer token.  The realm must be https
 * unless the endpoint is insecure.  Credentials are copied at submission,
 * never logged, and wiped (sodium_memzero) when the request ends.
 *
 * Transport.  https with the system CA store (plus ep->ca_file when given:
 * then that file is the trust anchor set); plain http only when
 * ep->insecure.  One multi handle: connections and DNS answers are reused
 * across requests.  Connect timeout, and a stall timeout (no byte for
 * stall_timeout_s seconds -> DEADLINE_EXCEEDED, not retried; measured by
 * our own watchdog timer on the loop, since libcurl's LOW_SPEED averages
 * over a multi-second window; LOW_SPEED_LIMIT=1/TIME=N stays as a backstop).  5xx, 429 and
 * connection failures/resets are retried (max_retries, exponential backoff
 * from backoff_ms, Retry-After honoured up to REG_MAX_RETRY_AFTER_S); a
 * retried blob restarts from byte 0 (fd truncated, hash reset).
 *
 * Errors (common/err.h codes): NOT_FOUND for 404 ("manifest unknown:
 * repo:tag"), UNAUTHENTICATED / PERMISSION_DENIED as above,
 * DEADLINE_EXCEEDED for stalls, DATA_LOSS for size/digest mismatches,
 * INVALID_ARGUMENT for bad arguments and for responses that break the
 * bounds above, UNAVAILABLE for transport/TLS errors and 5xx/429 after
 * retries, PERMISSION_DENIED also for refused redirects (non-http(s),
 * https -> http) and non-https token realms, FAILED_PRECONDITION for other
 * 4xx, INTERNAL for the rest.  CANCELLED never reaches a callback (see
 * reg_cancel).
 *
 * Threading and callbacks: everything runs on the loop's thread.  A
 * callback is never invoked from inside the call that submitted the
 * request; it is invoked exactly once per request unless the request is
 * cancelled first.  Inside a callback the caller may submit new requests
 * and cancel others, but must not call reg_client_free().  The result
 * pointers given to a callback are valid only during the callback.
 */
#ifndef CRISP_IMAGED_REGISTRY_H
#define CRISP_IMAGED_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "imaged/manifest.h"

struct loop;
struct reg_client;
struct reg_req;

#define REG_MAX_MANIFEST MF_MAX_MANIFEST_SIZE
#define REG_MAX_HEADER_BYTES (64u * 1024)
#define REG_MAX_SMALL_BODY (64u * 1024)
#define REG_MAX_TOKEN (16u * 1024)
#define REG_MAX_CHALLENGE 4096
#define REG_MAX_REDIRECTS 5
#define REG_MAX_RETRY_AFTER_S 30
#define REG_CONTENT_TYPE_SIZE 256

/* Options of a client; zero fields take the defaults in brackets. */
struct reg_options {
	unsigned connect_timeout_ms; /* [15000] TCP + TLS handshake */
	unsigned stall_timeout_s;    /* [30] no progress for this long: fail */
	unsigned max_retries;        /* [3] on 5xx, 429, connection errors; 0 = default */
	bool no_retries;             /* set to disable retries altogether */
	unsigned backoff_ms;         /* [200] first backoff, doubled each retry */
	const char *user_agent;      /* ["crisp"] */
};

/*
 * Where a repository lives: host[:port] (no scheme, no path), whether it
 * is reached over plain http, and an optional CA bundle for https (a file,
 * or PEM bytes copied by the call).
 */
struct reg_endpoint {
	const char *host;
	bool insecure;
	const char *ca_file;
	/* PEM trust anchors in memory (certs.d): when given, they are the
	 * trust anchor set instead of ca_file and the system store. */
	const char *ca_pem;
	size_t ca_pem_len;
};

/*
 * Credentials for one request, as CRI's AuthConfig carries them; all
 * optional.  username+password, or auth = base64("user:pass"), for Basic
 * and for token requests; identity_token: an OAuth2 refresh token exchanged
 * at the realm; registry_token: a bearer token sent to the registry as is.
 * Copied by the call (the caller may wipe its copy at once).
 */
struct reg_auth {
	const char *username;
	const char *password;
	const char *auth;
	const char *identity_token;
	const char *registry_token;
};

struct reg_ping_result {
	long status;        /* final HTTP status (200, or 401 when no credentials) */
	bool auth_required; /* a 401 was seen */
};

struct reg_manifest_result {
	const uint8_t *body; /* exactly the bytes sent; len <= REG_MAX_MANIFEST */
	size_t len;
	const char *content_type; /* "" when none was sent */
	const char *docker_digest; /* Docker-Content-Digest, "" when absent (unchecked!) */
};

struct reg_blob_result {
	char digest[MF_DIGEST_SIZE]; /* verified: equals the one asked for */
	uint64_t size;               /* bytes written to out_fd */
};

typedef void (*reg_ping_cb)(void *arg, const struct reg_ping_result *r, const crisp_err_t *err);
/* r is NULL on failure, err NULL on success. */
typedef void (*reg_manifest_cb)(void *arg, const struct reg_manifest_result *r,
				const crisp_err_t *err);
typedef void (*reg_blob_cb)(void *arg, const struct reg_blob_result *r, const crisp_err_t *err);

/* opts may be NULL (defaults).  The loop must outlive the client. */
struct reg_client *reg_client_new(struct loop *l, const struct reg_options *opts, crisp_err_t *err);
/* Change the stall timeout of requests submitted from now on (0: the
 * default). */
void reg_client_set_stall_timeout(struct reg_client *c, unsigned seconds);
/* Cancels every pending request (no callbacks) and wipes cached tokens. */
void reg_client_free(struct reg_client *c);

/*
 * GET /v2/ (with the auth dance when credentials are given).  Returns a
 * handle for reg_cancel() or NULL with err filled (no callback then).
 */
struct reg_req *reg_ping(struct reg_client *c, const struct reg_endpoint *ep,
			 const struct reg_auth *auth, reg_ping_cb cb, void *arg, crisp_err_t *err);

/*
 * GET /v2/<repo>/manifests/<ref>, ref a tag or a sha256 digest, with
 * Accept: OCI manifest, OCI index, Docker v2s2 manifest, Docker manifest
 * list (never schema 1).  The caller verifies the bytes (mf_digest,
 * mf_parse): when ref is a digest, mf_digest(body) must equal it.
 */
struct reg_req *reg_get_manifest(struct reg_client *c, const struct reg_endpoint *ep,
				 const char *repo, const char *ref, const struct reg_auth *auth,
				 reg_manifest_cb cb, void *arg, crisp_err_t *err);

/*
 * GET /v2/<repo>/blobs/<digest> into out_fd (a regular file the caller
 * owns, written from offset 0; not closed).  Success only when exactly
 * `size` bytes hashing to `digest` arrived.
 */
struct reg_req *reg_get_blob(struct reg_client *c, const struct reg_endpoint *ep, const char *repo,
			     const char *digest, uint64_t size, int out_fd,
			     const struct reg_auth *auth, reg_blob_cb cb, void *arg,
			     crisp_err_t *err);

/* Abort a pending request; its callback is not called.  req is freed. */
void reg_cancel(struct reg_client *c, struct reg_req *req);

/* Connections opened so far (for tests and metrics: reuse keeps it flat). */
uint64_t reg_client_connections(const struct reg_client *c);

/* ---- pure parsers (exposed for tests and the fuzzer) ---- */

#define REG_CHAL_NONE 0
#define REG_CHAL_BASIC 1
#define REG_CHAL_BEARER 2

struct reg_challenge {
	int scheme; /* REG_CHAL_* */
	char realm[1024];
	char service[256];
	char scope[1024];
};

/*
 * Parse a WWW-Authenticate value (RFC 7235 challenges; several may be
 * given, comma separated).  The first Bearer challenge wins, else the first
 * Basic one.  Returns 0 with out->scheme set, or -1 (INVALID_ARGUMENT) when
 * the value is malformed, too long, or names neither scheme.
 */
int reg_parse_challenge(const char *value, size_t len, struct reg_challenge *out, crisp_err_t *err);

/*
 * Turn an OCI error body into "CODE: message" (first error, printable
 * ASCII only, bounded) in out.  Returns 0, or -1 when the body is not such
 * a document (out is then "").
 */
int reg_parse_oci_error(const uint8_t *body, size_t len, char *out, size_t outsize);

/*
 * Parse a token endpoint answer: {"token": T} or {"access_token": T},
 * optional "expires_in" (seconds).  T: 1..REG_MAX_TOKEN visible ASCII
 * bytes.  tok must hold REG_MAX_TOKEN + 1 bytes.
 */
int reg_parse_token(const uint8_t *body, size_t len, char *tok, long *expires_in,
		    crisp_err_t *err);

#endif
