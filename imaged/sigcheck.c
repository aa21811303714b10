/*
 * imaged: signature policy decisions (see sigcheck.h).
 *
 *   start -> policy for the namespace -> scope -> requirements
 *     reject                      -> refuse
 *     insecureAcceptAnything only -> allow
 *     otherwise, pull: lookaside file:// (read now), sigstore attachments
 *       (registry client: manifest at sha256-<hex>.sig, then each payload
 *       blob) -> verify
 *   verify: sigstoreSigned in-process; signedBy (and http(s) lookaside
 *     fetches) in a forked child with a deadline, whose answer comes back
 *     over a pipe watched by the event loop
 *   -> audit record -> callback.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "common/log.h"
#include "common/util.h"
#include "imaged/audit.h"
#include "imaged/images_int.h"
#include "imaged/lookaside.h"
#include "imaged/regsd.h"
#include "imaged/sigcheck.h"
#include "imaged/sigstore.h"
#include "imaged/sigverify.h"
#include "ipc/loop.h"
#include "policy/nspolicy.h"

#define DENY_PREFIX "SignatureValidationFailed: "

struct sigcheck {
	struct imaged_images *ims;
	sigcheck_cb cb;
	void *arg;
	/* input, copied */
	char *event, *ns, *pod;
	struct sigcheck_candidate *cand;
	size_t ncand, ci;
	bool fetch;
	struct reg_endpoint ep;
	char *host, *repo;
	struct reg_auth auth;
	char *secrets[5];
	/* the policy of this decision */
	struct nsp_handle *h;
	const struct sp_policy *pol;
	struct sp_match m;
	bool need_simple, need_sigstore;
	/* signatures of the current candidate: borrowed (create) or fetched */
	struct store_sig *fetched;
	size_t nfetched;
	const struct store_sig *sigs;
	size_t nsigs;
	char *http_base; /* lookaside base the child fetches from */
	/* sigstore attachment fetch */
	struct reg_req *req;
	struct sigstore_attachment att;
	bool have_att;
	size_t ai;
	int blobfd;
	char tmpname[STORE_TMPNAME_SIZE];
	/* verifier child */
	pid_t pid;
	int rfd;
	struct loop_timer *deadline;
	struct loop_timer *defer;
	uint8_t *out;
	size_t outlen, outcap;
	/* outcome */
	bool allow;
	crisp_err_t err;
	const char *req_where; /* the requirement that decided */
	char req_desc[256];
	char key_fpr[SIGSTORE_FPR_MAX + 8];
	char *verdict;
	bool final; /* no other candidate may change this outcome */
};

static void sc_verify(struct sigcheck *sc);
static void sc_candidate(struct sigcheck *sc);

/* ------------------------------------------------------------ helpers */

static char *dupz(const char *s)
{
	return strdup(s ? s : "");
}

static void sigs_free(struct store_sig *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].data);
		free(v[i].sig);
	}
	free(v);
}

static int sig_add(struct sigcheck *sc, int kind, const uint8_t *data, size_t len, const uint8_t *sig,
		   size_t sig_len)
{
	struct store_sig *nv, *g;

	if (sc->nfetched >= STORE_MAX_SIGS || len == 0 || len > STORE_SIG_MAX)
		return -1;
	nv = realloc(sc->fetched, (sc->nfetched + 1) * sizeof *nv);
	if (!nv)
		return -1;
	sc->fetched = nv;
	g = &nv[sc->nfetched];
	memset(g, 0, sizeof *g);
	g->kind = kind;
	g->data = malloc(len);
	g->sig = sig_len ? malloc(sig_len) : NULL;
	if (!g->data || (sig_len && !g->sig)) {
		free(g->data);
		free(g->sig);
		return -1;
	}
	memcpy(g->data, data, len);
	g->len = len;
	if (sig_len)
		memcpy(g->sig, sig, sig_len);
	g->sig_len = sig_len;
	sc->nfetched++;
	sc->sigs = sc->fetched;
	sc->nsigs = sc->nfetched;
	return 0;
}

static void deny(struct sigcheck *sc, const struct sp_requirement *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void deny(struct sigcheck *sc, const struct sp_requirement *r, const char *fmt, ...)
{
	char msg[CRISP_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sc->allow = false;
	crisp_error(&sc->err, CRISP_PERMISSION_DENIED, 0, DENY_PREFIX "%s", msg);
	if (r)
		snprintf(sc->req_desc, sizeof sc->req_desc, "%s %s", r->where, sp_req_type_name(r->type));
}

/* --------------------------------------------------------------- end */

static void sc_child_stop(struct sigcheck *sc)
{
	struct loop *l = sc->ims->im->role.loop;

	if (sc->deadline) {
		loop_timer_cancel(l, sc->deadline);
		sc->deadline = NULL;
	}
	if (sc->rfd >= 0) {
		loop_del(l, sc->rfd);
		close(sc->rfd);
		sc->rfd = -1;
	}
	if (sc->pid > 0) {
		int st;
		kill(sc->pid, SIGKILL);
		while (waitpid(sc->pid, &st, 0) < 0 && errno == EINTR)
			;
		sc->pid = -1;
	}
}

static void sc_free(struct sigcheck *sc)
{
	struct loop *l = sc->ims->im->role.loop;

	if (sc->req)
		reg_cancel(sc->ims->reg, sc->req);
	if (sc->blobfd >= 0) {
		close(sc->blobfd);
		store_blob_abort(sc->ims->st, sc->tmpname);
	}
	sc_child_stop(sc);
	if (sc->defer)
		loop_timer_cancel(l, sc->defer);
	if (sc->have_att)
		sigstore_attachment_free(&sc->att);
	if (sc->h)
		nsp_release(sc->h);
	for (size_t i = 0; i < ARRAY_SIZE(sc->secrets); i++)
		if (sc->secrets[i]) {
			sodium_memzero(sc->secrets[i], strlen(sc->secrets[i]));
			free(sc->secrets[i]);
		}
	for (size_t i = 0; i < sc->ncand; i++) {
		free((char *)sc->cand[i].ref);
		free((char *)sc->cand[i].digest);
	}
	free(sc->cand);
	sigs_free(sc->fetched, sc->nfetched);
	free(sc->http_base);
	free(sc->out);
	free(sc->verdict);
	free(sc->event);
	free(sc->ns);
	free(sc->pod);
	free(sc->host);
	free(sc->repo);
	free(sc);
}

void sigcheck_cancel(struct sigcheck *sc)
{
	if (sc)
		sc_free(sc);
}

static void make_verdict(struct sigcheck *sc)
{
	const struct sigcheck_candidate *c = &sc->cand[sc->ci];
	json_t *j;

	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b}", "policy",
		      sc->h ? nsp_path(sc->h) : "none", "namespace", sc->ns, "scope", sc->m.label,
		      "reference", c->ref, "manifest", c->digest, "requirement", sc->req_desc,
		      "key", sc->key_fpr, "signatures", (json_int_t)sc->nsigs, "allowed", 1);
	if (j) {
		sc->verdict = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(j);
	}
}

/* Write the audit record, then tell the caller.  Runs from the loop. */
static void sc_finish(struct sigcheck *sc)
{
	struct imaged_images *ims = sc->ims;
	const struct sigcheck_candidate *c = &sc->cand[sc->ci < sc->ncand ? sc->ci : 0];
	struct sigcheck_result r;
	struct audit_record a;
	crisp_err_t e = CRISP_ERR_INIT;

	memset(&r, 0, sizeof r);
	if (sc->allow) {
		make_verdict(sc);
		if (!sc->verdict) {
			sc->allow = false;
			crisp_error(&sc->err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "verdict");
		}
	}
	memset(&a, 0, sizeof a);
	a.event = sc->event;
	a.allow = sc->allow;
	a.namespace_ = sc->ns[0] ? sc->ns : NULL;
	a.pod = sc->pod[0] ? sc->pod : NULL;
	a.reference = c->ref;
	a.manifest_digest = c->digest;
	a.scope = sc->m.label[0] ? sc->m.label : NULL;
	a.requirement = sc->req_desc[0] ? sc->req_desc : NULL;
	a.key_fingerprint = sc->key_fpr[0] ? sc->key_fpr : NULL;
	a.reason = sc->allow ? "accepted" : sc->err.msg;
	if (!ims->audit) {
		crisp_error(&e, CRISP_UNAVAILABLE, 0, "%s", ims->audit_msg);
	} else {
		audit_write(ims->audit, &a, &e);
	}
	if (e.code) {
		/* Fail closed: a decision that cannot be proven is no decision. */
		log_error("signature audit log: %s", e.msg);
		sc->allow = false;
		crisp_error(&sc->err, CRISP_UNAVAILABLE, 0,
			    "the signature decision could not be recorded in the audit log: %s", e.msg);
	}
	if (sc->allow)
		log_info("signature policy: %s %s allowed (%s, %s)", sc->event, c->ref, sc->m.label,
			 sc->req_desc[0] ? sc->req_desc : "no signature required");
	else
		log_warn("signature policy: %s %s refused: %s", sc->event, c->ref, sc->err.msg);
	r.allow = sc->allow;
	r.err = sc->err;
	r.verdict = sc->verdict;
	r.cand = sc->ci;
	r.sigs = sc->fetched;
	r.nsigs = sc->nfetched;
	sc->cb(sc->arg, &r);
	sc_free(sc);
}

/* The decision for the current candidate is made: next candidate or end. */
static void sc_decided(struct sigcheck *sc)
{
	if (!sc->allow && !sc->final && sc->ci + 1 < sc->ncand &&
	    sc->err.code == CRISP_PERMISSION_DENIED) {
		sc->ci++;
		sc_candidate(sc);
		return;
	}
	sc_finish(sc);
}

static void on_defer(struct loop *l, void *arg)
{
	struct sigcheck *sc = arg;

	(void)l;
	sc->defer = NULL;
	sc_decided(sc);
}

/* Decide from the loop, never from inside sigcheck_start. */
static void sc_later(struct sigcheck *sc)
{
	sc->defer = loop_timer_add(sc->ims->im->role.loop, 0, on_defer, sc);
	if (!sc->defer) {
		/* Cannot happen short of memory; refusing is the safe answer. */
		sc->allow = false;
		sc->final = true;
		crisp_error(&sc->err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "sigcheck timer");
		log_error("signature check: no timer; refusing %s", sc->cand[sc->ci].ref);
	}
}

/* ------------------------------------------------------------ verify */

/* sigstoreSigned requirements, in-process.  0: all accept (or none). */
static int verify_sigstore(struct sigcheck *sc)
{
	const struct sigcheck_candidate *c = &sc->cand[sc->ci];
	struct sigstore_layer layers[SIGSTORE_MAX_SIGS];
	struct sigstore_sig ss[SIGSTORE_MAX_SIGS];
	size_t n = 0;

	for (size_t i = 0; i < sc->nsigs && n < SIGSTORE_MAX_SIGS; i++) {
		const struct store_sig *g = &sc->sigs[i];
		uint8_t h[32];

		if (g->kind != STORE_SIG_SIGSTORE)
			continue;
		memset(&layers[n], 0, sizeof layers[n]);
		crypto_hash_sha256(h, g->data, g->len);
		memcpy(layers[n].digest, "sha256:", 7);
		sodium_bin2hex(layers[n].digest + 7, sizeof layers[n].digest - 7, h, sizeof h);
		layers[n].size = g->len;
		layers[n].sig = g->sig;
		layers[n].sig_len = g->sig_len;
		if (!g->sig_len)
			layers[n].problem = "no signature";
		ss[n].layer = &layers[n];
		ss[n].payload = g->data;
		ss[n].payload_len = g->len;
		ss[n].fetch_error = NULL;
		n++;
	}
	for (size_t i = 0; i < sc->m.reqs->n; i++) {
		const struct sp_requirement *r = &sc->m.reqs->v[i];
		struct sigstore_verified v;
		crisp_err_t e = CRISP_ERR_INIT;

		if (r->type != SP_REQ_SIGSTORE_SIGNED)
			continue;
		if (sig_verify_sigstore(r, c->ref, c->digest, ss, n, &v, &e) < 0) {
			deny(sc, r, "%s", e.msg);
			return -1;
		}
		snprintf(sc->req_desc, sizeof sc->req_desc, "%s %s", r->where, sp_req_type_name(r->type));
		snprintf(sc->key_fpr, sizeof sc->key_fpr, "%s", v.key_fingerprint);
	}
	return 0;
}

/* -- the verifier child: its answer, written to a pipe --
 *   u32 nfetched, then per signature u32 len + bytes (http lookaside)
 *   u32 nreq, then per signedBy requirement i32 rc, i32 code,
 *       u32 msglen + msg, u32 fprlen + fpr
 */

struct wbuf {
	int fd;
	bool bad;
};

static void wr(struct wbuf *w, const void *p, size_t n)
{
	if (!w->bad && crisp_write_all(w->fd, p, n) < 0)
		w->bad = true;
}

static void wr_u32(struct wbuf *w, uint32_t v)
{
	wr(w, &v, sizeof v);
}

struct http_body {
	uint8_t *p;
	size_t n;
	bool over;
};

static size_t http_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_body *b = arg;
	size_t n = size * nmemb;
	uint8_t *np;

	if (b->n + n > LOOKASIDE_SIG_MAX) {
		b->over = true;
		return 0;
	}
	np = realloc(b->p, b->n + n + 1);
	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->n, data, n);
	b->n += n;
	return n;
}

/* http(s) lookaside: signature-1.. until a 404 (none at all is fine).
 * Runs in the child: blocking is allowed here, bounded by timeouts. */
static int child_fetch_http(struct sigcheck *sc, crisp_err_t *err)
{
	const struct sigcheck_candidate *c = &sc->cand[0];

	for (unsigned n = 1; n <= LOOKASIDE_MAX_SIGS + 1; n++) {
		char url[LOOKASIDE_URL_MAX];
		struct http_body b = { 0 };
		long status = 0;
		CURLcode rc;
		CURL *e;

		if (lookaside_sig_url(sc->http_base, c->ref, c->digest, n, url, sizeof url, err) < 0)
			return -1;
		if (n > LOOKASIDE_MAX_SIGS)
			return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0, "more than %d signatures at %s",
					   LOOKASIDE_MAX_SIGS, sc->http_base);
		e = curl_easy_init();
		if (!e)
			return crisp_error(err, CRISP_INTERNAL, 0, "curl");
		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 15000L);
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(e, CURLOPT_USERAGENT, "crisp");
		rc = curl_easy_perform(e);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_cleanup(e);
		if (rc == CURLE_OK && status == 404) {
			free(b.p);
			return 0;
		}
		if (rc != CURLE_OK || status != 200 || b.n == 0) {
			free(b.p);
			return crisp_error(err, CRISP_UNAVAILABLE, 0, "lookaside %s: %s", url,
					   b.over ? "signature too large"
					   : rc != CURLE_OK ? curl_easy_strerror(rc)
							    : "unexpected HTTP status");
		}
		if (sig_add(sc, STORE_SIG_SIMPLE, b.p, b.n, NULL, 0) < 0) {
			free(b.p);
			return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "signatures");
		}
		free(b.p);
	}
	return 0;
}

static void child_main(struct sigcheck *sc, int wfd)
{
	const struct sigcheck_candidate *c = &sc->cand[sc->ci];
	struct wbuf w = { wfd, false };
	struct sig_blob blobs[STORE_MAX_SIGS];
	size_t nb = 0, nreq = 0, fetched_before = sc->nfetched;
	crisp_err_t ferr = CRISP_ERR_INIT;
	char tmp[4200];
	int frc = 0;

	snprintf(tmp, sizeof tmp, "%s/tmp", sc->ims->im->store);
	if (sc->http_base)
		frc = child_fetch_http(sc, &ferr);
	wr_u32(&w, (uint32_t)(sc->nfetched - fetched_before));
	for (size_t i = fetched_before; i < sc->nfetched; i++) {
		wr_u32(&w, (uint32_t)sc->fetched[i].len);
		wr(&w, sc->fetched[i].data, sc->fetched[i].len);
	}
	for (size_t i = 0; i < sc->nsigs; i++)
		if (sc->sigs[i].kind == STORE_SIG_SIMPLE) {
			blobs[nb].data = sc->sigs[i].data;
			blobs[nb].len = sc->sigs[i].len;
			nb++;
		}
	for (size_t i = 0; i < sc->m.reqs->n; i++)
		if (sc->m.reqs->v[i].type == SP_REQ_SIGNED_BY)
			nreq++;
	wr_u32(&w, (uint32_t)nreq);
	for (size_t i = 0; i < sc->m.reqs->n; i++) {
		const struct sp_requirement *r = &sc->m.reqs->v[i];
		struct sig_verified v;
		crisp_err_t e = CRISP_ERR_INIT;
		int32_t rc, code;

		if (r->type != SP_REQ_SIGNED_BY)
			continue;
		memset(&v, 0, sizeof v);
		if (frc < 0) {
			e = ferr;
			rc = -1;
		} else {
			rc = sig_verify_gpg(tmp, r, c->ref, c->digest, blobs, nb, &v, &e);
		}
		code = rc < 0 ? e.code : 0;
		wr(&w, &rc, sizeof rc);
		wr(&w, &code, sizeof code);
		{
			size_t ml = rc < 0 ? strnlen(e.msg, 1024) : 0;
			wr_u32(&w, (uint32_t)ml);
			wr(&w, e.msg, ml);
		}
		wr_u32(&w, rc < 0 ? 0 : (uint32_t)strlen(v.fingerprint));
		if (rc == 0)
			wr(&w, v.fingerprint, strlen(v.fingerprint));
	}
	_exit(w.bad ? 1 : 0);
}

struct rbuf {
	const uint8_t *p;
	size_t n, off;
	bool bad;
};

static const uint8_t *rd(struct rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || n > r->n - r->off) {
		r->bad = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

static uint32_t rd_u32(struct rbuf *r)
{
	const uint8_t *p = rd(r, 4);
	uint32_t v = 0;

	if (p)
		memcpy(&v, p, 4);
	return v;
}

int sigcheck_parse_answer(const uint8_t *buf, size_t len, size_t want, struct sigcheck_answer *out)
{
	struct rbuf r = { buf, len, 0, false };
	uint32_t nf, nreq;

	memset(out, 0, sizeof *out);
	nf = rd_u32(&r);
	if (r.bad || nf > STORE_MAX_SIGS)
		return -1;
	for (uint32_t i = 0; i < nf; i++) {
		uint32_t l = rd_u32(&r);
		const uint8_t *p;

		if (r.bad || l == 0 || l > STORE_SIG_MAX || !(p = rd(&r, l)))
			return -1;
		out->fetched[i].p = p;
		out->fetched[i].len = l;
	}
	out->nfetched = nf;
	nreq = rd_u32(&r);
	if (r.bad || nreq != want || nreq > SIGCHECK_MAX_REQS)
		return -1;
	for (uint32_t i = 0; i < nreq; i++) {
		const uint8_t *p;
		uint32_t l;

		if ((p = rd(&r, 4)))
			memcpy(&out->res[i].rc, p, 4);
		if ((p = rd(&r, 4)))
			memcpy(&out->res[i].code, p, 4);
		l = rd_u32(&r);
		if (r.bad || (out->res[i].rc != 0 && out->res[i].rc != -1) || l > 1024 ||
		    !(p = rd(&r, l)))
			return -1;
		out->res[i].msg = (const char *)p;
		out->res[i].msglen = l;
		l = rd_u32(&r);
		if (r.bad || l > SIG_FPR_MAX || (out->res[i].rc != 0 && l != 0) ||
		    (out->res[i].rc == 0 && l == 0) || !(p = rd(&r, l)))
			return -1;
		for (uint32_t k = 0; k < l; k++)
			if (!((p[k] >= '0' && p[k] <= '9') || (p[k] >= 'A' && p[k] <= 'F') ||
			      (p[k] >= 'a' && p[k] <= 'f')))
				return -1;
		out->res[i].fpr = (const char *)p;
		out->res[i].fprlen = l;
	}
	out->nres = nreq;
	return r.off == r.n ? 0 : -1;
}

static size_t n_signed_by(const struct sigcheck *sc)
{
	size_t n = 0;

	for (size_t i = 0; i < sc->m.reqs->n; i++)
		if (sc->m.reqs->v[i].type == SP_REQ_SIGNED_BY)
			n++;
	return n;
}

/* The child's answer is complete (EOF): decide the signedBy requirements. */
static void child_answer(struct sigcheck *sc, int status)
{
	struct sigcheck_answer *a;

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		deny(sc, NULL, "signature verifier failed (%s %d)",
		     WIFEXITED(status) ? "exit" : "signal",
		     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		sc->err.code = CRISP_INTERNAL;
		goto out;
	}
	a = malloc(sizeof *a);
	if (!a) {
		crisp_error(&sc->err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "verifier answer");
		goto out;
	}
	if (sigcheck_parse_answer(sc->out, sc->outlen, n_signed_by(sc), a) < 0) {
		free(a);
		deny(sc, NULL, "the signature verifier's answer is malformed");
		sc->err.code = CRISP_INTERNAL;
		goto out;
	}
	for (size_t i = 0; i < a->nfetched; i++)
		if (sig_add(sc, STORE_SIG_SIMPLE, a->fetched[i].p, a->fetched[i].len, NULL, 0) < 0) {
			free(a);
			crisp_error(&sc->err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "signatures");
			goto out;
		}
	for (size_t i = 0, k = 0; i < sc->m.reqs->n; i++) {
		const struct sp_requirement *q = &sc->m.reqs->v[i];

		if (q->type != SP_REQ_SIGNED_BY)
			continue;
		if (a->res[k].rc < 0) {
			deny(sc, q, "%.*s", (int)a->res[k].msglen, a->res[k].msg);
			free(a);
			goto out;
		}
		snprintf(sc->key_fpr, sizeof sc->key_fpr, "%.*s", (int)a->res[k].fprlen, a->res[k].fpr);
		snprintf(sc->req_desc, sizeof sc->req_desc, "%s %s", q->where, sp_req_type_name(q->type));
		k++;
	}
	free(a);
	if (verify_sigstore(sc) < 0)
		goto out;
	sc->allow = true;
out:
	sc_decided(sc);
}

static void on_child_out(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct sigcheck *sc = arg;
	int st = 0;

	(void)l;
	(void)events;
	for (;;) {
		ssize_t n;

		if (sc->outlen == sc->outcap) {
			size_t nc = sc->outcap ? sc->outcap * 2 : 65536;
			uint8_t *np;
			if (nc > SIGCHECK_MAX_OUTPUT)
				nc = SIGCHECK_MAX_OUTPUT;
			if (sc->outlen == nc) {
				sc_child_stop(sc);
				deny(sc, NULL, "the signature verifier's answer is too large");
				sc->err.code = CRISP_RESOURCE_EXHAUSTED;
				sc_decided(sc);
				return;
			}
			np = realloc(sc->out, nc);
			if (!np) {
				sc_child_stop(sc);
				crisp_error(&sc->err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "verifier");
				sc_decided(sc);
				return;
			}
			sc->out = np;
			sc->outcap = nc;
		}
		n = read(fd, sc->out + sc->outlen, sc->outcap - sc->outlen);
		if (n > 0) {
			sc->outlen += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break; /* EOF or error */
	}
	loop_del(sc->ims->im->role.loop, sc->rfd);
	close(sc->rfd);
	sc->rfd = -1;
	loop_timer_cancel(sc->ims->im->role.loop, sc->deadline);
	sc->deadline = NULL;
	while (waitpid(sc->pid, &st, 0) < 0 && errno == EINTR)
		;
	sc->pid = -1;
	child_answer(sc, st);
}

static void on_child_deadline(struct loop *l, void *arg)
{
	struct sigcheck *sc = arg;

	(void)l;
	sc->deadline = NULL;
	sc_child_stop(sc);
	deny(sc, NULL, "signature verification did not finish within %u s",
	     SIGCHECK_CHILD_TIMEOUT_MS / 1000);
	sc->err.code = CRISP_DEADLINE_EXCEEDED;
	sc_decided(sc);
}

static int start_child(struct sigcheck *sc, crisp_err_t *err)
{
	struct loop *l = sc->ims->im->role.loop;
	int p[2];

	sc->outlen = 0; /* a previous candidate's answer is done with */
	if (pipe2(p, O_CLOEXEC) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "verifier pipe");
	sc->pid = fork();
	if (sc->pid < 0) {
		close(p[0]);
		close(p[1]);
		return crisp_error(err, CRISP_INTERNAL, errno, "verifier fork");
	}
	if (sc->pid == 0) {
		close(p[0]);
		child_main(sc, p[1]);
		_exit(1);
	}
	close(p[1]);
	sc->rfd = p[0];
	if (fcntl(sc->rfd, F_SETFL, O_NONBLOCK) < 0 ||
	    loop_add(l, sc->rfd, EPOLLIN, on_child_out, sc) < 0 ||
	    !(sc->deadline = loop_timer_add(l, SIGCHECK_CHILD_TIMEOUT_MS, on_child_deadline, sc))) {
		sc_child_stop(sc);
		return crisp_error(err, CRISP_INTERNAL, errno, "verifier watch");
	}
	return 0;
}

static void sc_verify(struct sigcheck *sc)
{
	crisp_err_t e = CRISP_ERR_INIT;

	if (sc->need_simple) {
		if (start_child(sc, &e) < 0) {
			sc->allow = false;
			sc->err = e;
			sc_later(sc);
		}
		return;
	}
	if (verify_sigstore(sc) == 0)
		sc->allow = true;
	sc_later(sc);
}

/* ------------------------------------------------ sigstore attachments */

static void att_next(struct sigcheck *sc);

static void on_att_blob(void *arg, const struct reg_blob_result *r, const crisp_err_t *err)
{
	struct sigcheck *sc = arg;
	struct sigstore_layer *l = &sc->att.v[sc->ai];
	crisp_err_t e = CRISP_ERR_INIT;
	uint8_t *buf = NULL;

	sc->req = NULL;
	if (err) {
		deny(sc, NULL, "sigstore signature %s: %s", l->digest, err->msg);
		goto fail;
	}
	buf = malloc(r->size ? r->size : 1);
	if (!buf || pread(sc->blobfd, buf, r->size, 0) != (ssize_t)r->size) {
		crisp_error(&sc->err, CRISP_INTERNAL, errno, "sigstore signature: read back");
		goto fail;
	}
	if (sigstore_payload_check(l, buf, r->size, &e) < 0) {
		deny(sc, NULL, "%s", e.msg);
		goto fail;
	}
	if (sig_add(sc, STORE_SIG_SIGSTORE, buf, r->size, l->sig, l->sig_len) < 0) {
		crisp_error(&sc->err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "signatures");
		goto fail;
	}
	free(buf);
	close(sc->blobfd);
	sc->blobfd = -1;
	store_blob_abort(sc->ims->st, sc->tmpname);
	sc->ai++;
	att_next(sc);
	return;
fail:
	free(buf);
	close(sc->blobfd);
	sc->blobfd = -1;
	store_blob_abort(sc->ims->st, sc->tmpname);
	sc->allow = false;
	sc_decided(sc);
}

static void att_next(struct sigcheck *sc)
{
	crisp_err_t e = CRISP_ERR_INIT;

	while (sc->ai < sc->att.n && sc->att.v[sc->ai].problem)
		sc->ai++; /* can never verify: not fetched */
	if (sc->ai >= sc->att.n) {
		sc_verify(sc);
		return;
	}
	if (store_blob_begin(sc->ims->st, &sc->blobfd, sc->tmpname, &e) < 0) {
		sc->err = e;
		sc->allow = false;
		sc_decided(sc);
		return;
	}
	sc->req = reg_get_blob(sc->ims->reg, &sc->ep, sc->repo, sc->att.v[sc->ai].digest,
			       sc->att.v[sc->ai].size, sc->blobfd, &sc->auth, on_att_blob, sc, &e);
	if (!sc->req) {
		close(sc->blobfd);
		sc->blobfd = -1;
		store_blob_abort(sc->ims->st, sc->tmpname);
		deny(sc, NULL, "sigstore signature: %s", e.msg);
		sc_decided(sc);
	}
}

static void on_att_manifest(void *arg, const struct reg_manifest_result *r, const crisp_err_t *err)
{
	struct sigcheck *sc = arg;
	crisp_err_t e = CRISP_ERR_INIT;

	sc->req = NULL;
	if (err) {
		if (err->code == CRISP_NOT_FOUND) { /* no attachment: no signatures */
			sc_verify(sc);
			return;
		}
		deny(sc, NULL, "sigstore attachment: %s", err->msg);
		sc_decided(sc);
		return;
	}
	if (sigstore_attachment_parse(r->body, r->len, &sc->att, &e) < 0) {
		deny(sc, NULL, "sigstore attachment: %s", e.msg);
		sc_decided(sc);
		return;
	}
	sc->have_att = true;
	sc->ai = 0;
	att_next(sc);
}

/* ------------------------------------------------------------- start */

/* Fetch (pull) what the requirements need, then verify. */
static void sc_gather(struct sigcheck *sc)
{
	const struct sigcheck_candidate *c = &sc->cand[sc->ci];
	struct regsd_result rr;
	crisp_err_t e = CRISP_ERR_INIT;

	memset(&rr, 0, sizeof rr);
	if (sc->ims->regsd && regsd_lookup(sc->ims->regsd, c->ref, &rr, &e) < 0) {
		deny(sc, NULL, "%s", e.msg);
		goto now;
	}
	if (sc->need_simple && rr.lookaside) {
		if (strncmp(rr.lookaside, "file://", 7) == 0) {
			struct lookaside_sigs ls;

			memset(&ls, 0, sizeof ls);
			if (lookaside_read_file(rr.lookaside, c->ref, c->digest, &ls, &e) < 0) {
				lookaside_sigs_free(&ls);
				deny(sc, NULL, "lookaside %s: %s", rr.lookaside, e.msg);
				goto now;
			}
			for (size_t i = 0; i < ls.n; i++)
				if (sig_add(sc, STORE_SIG_SIMPLE, ls.v[i].data, ls.v[i].len, NULL, 0) < 0) {
					lookaside_sigs_free(&ls);
					crisp_error(&sc->err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "signatures");
					goto now;
				}
			lookaside_sigs_free(&ls);
		} else if (!(sc->http_base = strdup(rr.lookaside))) {
			crisp_error(&sc->err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "lookaside");
			goto now;
		}
	}
	if (sc->need_sigstore && rr.use_attachments) {
		char tag[128];

		if (sigstore_attachment_tag(c->digest, tag, sizeof tag, &e) < 0) {
			deny(sc, NULL, "%s", e.msg);
			goto now;
		}
		sc->req = reg_get_manifest(sc->ims->reg, &sc->ep, sc->repo, tag, &sc->auth,
					   on_att_manifest, sc, &e);
		if (!sc->req) {
			deny(sc, NULL, "sigstore attachment: %s", e.msg);
			goto now;
		}
		return;
	}
	sc_verify(sc);
	return;
now:
	sc->allow = false;
	sc_later(sc);
}

/* Evaluate the policy for candidate ci and go on. */
static void sc_candidate(struct sigcheck *sc)
{
	const struct sigcheck_candidate *c = &sc->cand[sc->ci];
	crisp_err_t e = CRISP_ERR_INIT;
	bool reject = false;

	sc->need_simple = sc->need_sigstore = false;
	sc->req_desc[0] = sc->key_fpr[0] = '\0';
	crisp_error_clear(&sc->err);
	memset(&sc->m, 0, sizeof sc->m);
	if (!sc->fetch) {
		sc->sigs = c->sigs;
		sc->nsigs = c->nsigs;
	}
	if (!sc->ims->nsp) {
		/* No signature_policy configured: every image is accepted
		 * (and that is recorded). */
		snprintf(sc->m.label, sizeof sc->m.label, "none");
		snprintf(sc->req_desc, sizeof sc->req_desc, "no signature policy configured");
		sc->allow = true;
		goto defer;
	}
	if (sp_policy_evaluate(sc->pol, c->ref, c->digest, &sc->m, &e) < 0) {
		deny(sc, NULL, "%s", e.msg);
		goto defer;
	}
	for (size_t i = 0; i < sc->m.reqs->n; i++) {
		const struct sp_requirement *r = &sc->m.reqs->v[i];

		switch (r->type) {
		case SP_REQ_REJECT:
			if (!reject)
				deny(sc, r, "%s is rejected by the signature policy (%s of %s)", c->ref,
				     sc->m.label, nsp_path(sc->h));
			reject = true;
			break;
		case SP_REQ_SIGNED_BY:
			sc->need_simple = true;
			break;
		case SP_REQ_SIGSTORE_SIGNED:
			sc->need_sigstore = true;
			break;
		case SP_REQ_INSECURE_ACCEPT_ANYTHING:
			break;
		}
	}
	if (reject)
		goto defer;
	if (n_signed_by(sc) > SIGCHECK_MAX_REQS) {
		deny(sc, NULL, "scope %s has more than %d signedBy requirements", sc->m.label,
		     SIGCHECK_MAX_REQS);
		goto defer;
	}
	if (!sc->need_simple && !sc->need_sigstore) {
		snprintf(sc->req_desc, sizeof sc->req_desc, "%s insecureAcceptAnything",
			 sc->m.reqs->n ? sc->m.reqs->v[0].where : "?");
		sc->allow = true;
		goto defer;
	}
	if (sc->fetch) {
		sc_gather(sc);
		return;
	}
	sc_verify(sc);
	return;
defer:
	sc_later(sc);
}

int sigcheck_start(struct imaged_images *ims, const struct sigcheck_input *in, sigcheck_cb cb,
		   void *arg, struct sigcheck **out, crisp_err_t *err)
{
	struct sigcheck *sc;
	crisp_err_t e = CRISP_ERR_INIT;

	*out = NULL;
	if (in->ncand == 0 || in->ncand > SIGCHECK_MAX_CANDIDATES || (in->fetch && in->ncand != 1))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "sigcheck: bad candidates");
	sc = calloc(1, sizeof *sc);
	if (!sc)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "sigcheck");
	sc->ims = ims;
	sc->cb = cb;
	sc->arg = arg;
	sc->pid = -1;
	sc->rfd = -1;
	sc->blobfd = -1;
	sc->fetch = in->fetch;
	sc->event = dupz(in->event);
	sc->ns = dupz(in->namespace_);
	sc->pod = dupz(in->pod);
	sc->cand = calloc(in->ncand, sizeof *sc->cand);
	if (!sc->event || !sc->ns || !sc->pod || !sc->cand)
		goto oom;
	for (size_t i = 0; i < in->ncand; i++) {
		sc->cand[i] = in->cand[i];
		sc->cand[i].ref = dupz(in->cand[i].ref);
		sc->cand[i].digest = dupz(in->cand[i].digest);
		sc->ncand++;
		if (!sc->cand[i].ref || !sc->cand[i].digest)
			goto oom;
	}
	if (in->fetch) {
		sc->host = dupz(in->ep ? in->ep->host : NULL);
		sc->repo = dupz(in->repo);
		if (!sc->host || !sc->repo)
			goto oom;
		sc->ep.host = sc->host;
		sc->ep.insecure = in->ep && in->ep->insecure;
		if (in->auth) {
			const char *s[5] = { in->auth->username, in->auth->password, in->auth->auth,
					     in->auth->identity_token, in->auth->registry_token };
			for (size_t i = 0; i < 5; i++)
				if (s[i] && *s[i] && !(sc->secrets[i] = strdup(s[i])))
					goto oom;
			sc->auth.username = sc->secrets[0];
			sc->auth.password = sc->secrets[1];
			sc->auth.auth = sc->secrets[2];
			sc->auth.identity_token = sc->secrets[3];
			sc->auth.registry_token = sc->secrets[4];
		}
	}
	*out = sc;
	if (ims->nsp) {
		struct nsp_cache *c = sc->ns[0] ? ims->nsp : ims->nsp_global;
		if (nsp_acquire(c, sc->ns[0] ? sc->ns : "global", &sc->h, &e) < 0) {
			deny(sc, NULL, "%s", e.msg);
			sc->final = true;
			sc->defer = loop_timer_add(ims->im->role.loop, 0, on_defer, sc);
			if (!sc->defer) {
				*out = NULL;
				sc_free(sc);
				return crisp_error(err, CRISP_INTERNAL, 0, "sigcheck: timer");
			}
			return 0;
		}
		sc->pol = nsp_policy(sc->h);
	}
	sc_candidate(sc);
	return 0;
oom:
	sc_free(sc);
	return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "sigcheck");
}
