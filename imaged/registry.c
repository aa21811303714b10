/*
 * imaged: OCI distribution v2 client on libcurl's multi interface, driven
 * by ipc/loop.h through CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION.
 * See registry.h for the contract.  Each request is a small state machine:
 *
 *   start -> transfer -> done: 2xx        -> result (blob: size + digest checked)
 *                              3xx        -> next URL (by hand; no creds off-origin)
 *                              401        -> challenge -> (token request) -> start, once
 *                              429/5xx/io -> backoff timer -> start (bounded)
 *                              else       -> error
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "common/util.h"
#include "imaged/registry.h"
#include "ipc/loop.h"

#define REG_HOST_MAX 256
#define REG_REPO_MAX 256
#define REG_REF_MAX 128
#define REG_URL_MAX 8192
#define REG_SCOPE_MAX 1024
#define REG_TOKEN_MARGIN_S 10
#define REG_TOKEN_DEFAULT_S 60
#define REG_MAX_CACHED_TOKENS 256

static const char accept_manifest[] =
	"Accept: " MF_MT_OCI_MANIFEST ", " MF_MT_OCI_INDEX ", " MF_MT_DOCKER_MANIFEST ", " MF_MT_DOCKER_LIST;

enum req_kind { K_PING, K_MANIFEST, K_BLOB, K_TOKEN };

/* What we learnt about a host's authentication (from its last challenge). */
struct reg_hostinfo {
	struct reg_hostinfo *next;
	char host[REG_HOST_MAX];
	int scheme; /* REG_CHAL_* */
};

struct reg_tok {
	struct reg_tok *next;
	char host[REG_HOST_MAX];
	char scope[REG_SCOPE_MAX];
	char cred_id[2 * crypto_generichash_BYTES + 1]; /* whose credentials got it */
	char *token; /* wiped on free */
	uint64_t expires_ms;
};

struct reg_client {
	struct loop *loop;
	CURLM *multi;
	struct loop_timer *timer;
	struct reg_options o;
	struct reg_req *reqs;
	struct reg_hostinfo *hosts;
	struct reg_tok *toks;
	size_t ntoks;
	unsigned char cred_key[crypto_generichash_KEYBYTES]; /* random, per client */
	uint64_t connections; /* new connections opened (reuse shows as no growth) */
};

struct reg_req {
	struct reg_req *prev, *next;
	struct reg_client *c;
	enum req_kind kind;

	/* where */
	char host[REG_HOST_MAX];
	bool insecure;
	char *ca_file;
	char *ca_pem; /* certs.d trust anchors (PEM), or NULL */
	size_t ca_pem_len;
	char repo[REG_REPO_MAX];
	char ref[REG_REF_MAX];
	char scope[REG_SCOPE_MAX];
	char cred_id[2 * crypto_generichash_BYTES + 1]; /* keyed hash of the credentials */
	char *first_url; /* the registry URL of this request */
	char *url;       /* current URL (after redirects) */
	char origin[REG_URL_MAX]; /* scheme://host:port of first_url */
	bool same_origin;         /* url's origin is origin */
	unsigned redirects;

	/* credentials (wiped) */
	char *user, *pass, *identity_token, *registry_token;
	char *bearer;   /* token to send to the registry */
	bool use_basic; /* send Basic to the registry */
	unsigned auth_rounds;
	struct reg_challenge chal;
	struct reg_req *parent; /* K_TOKEN: the request waiting for it */
	struct reg_req *child;  /* the token request we wait for */

	/* transfer */
	CURL *easy;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	unsigned retries;
	struct loop_timer *retry_timer;
	struct loop_timer *stall_timer; /* our own "no byte for N s" watchdog */
	uint64_t last_progress_ms;

	/* response */
	long status;
	bool status_known;
	size_t hdr_bytes;
	char content_type[REG_CONTENT_TYPE_SIZE];
	char docker_digest[128];
	char www_auth[REG_MAX_CHALLENGE + 1];
	bool www_auth_overflow;
	char location[REG_URL_MAX];
	long retry_after;
	uint8_t *buf;
	size_t len, cap;
	bool body_cut; /* error body longer than we keep: transfer cut on purpose */

	/* blob */
	int fd;
	uint64_t want_size;
	char want_digest[MF_DIGEST_SIZE];
	uint64_t got;
	crypto_hash_sha256_state sha;

	/* an error found inside a libcurl callback */
	bool failed;
	crisp_err_t fail;

	union {
		reg_ping_cb ping;
		reg_manifest_cb manifest;
		reg_blob_cb blob;
	} cb;
	void *arg;
};

static void process_done(struct reg_client *c);
static int req_start(struct reg_req *r, crisp_err_t *err);
static void req_done(struct reg_req *r, CURLcode rc);

/* ---- small helpers ---- */

static void wipe_free(char **p)
{
	if (*p != NULL) {
		sodium_memzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

/* Best effort: a failed blob leaves nothing in the caller's file. */
static void truncate_fd(int fd)
{
	if (ftruncate(fd, 0) < 0) {
		/* nothing more to do: the caller discards the file on error */
	}
}

static bool valid_host(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n >= REG_HOST_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)h[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']'))
			return false;
	}
	return true;
}

/* distribution's name grammar: components [a-z0-9]+ joined by [._-] or __ or -+, '/' between. */
static bool valid_repo(const char *s)
{
	size_t n = strlen(s);
	bool need_alnum = true;

	if (n == 0 || n >= REG_REPO_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
			need_alnum = false;
		} else if (ch == '.' || ch == '_' || ch == '-' || ch == '/') {
			if (need_alnum && !(ch == '_' && i > 0 && s[i - 1] == '_') &&
			    !(ch == '-' && i > 0 && s[i - 1] == '-'))
				return false;
			need_alnum = true;
		} else {
			return false;
		}
	}
	return !need_alnum;
}

static bool valid_tag(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		bool w = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
		if (!w && (i == 0 || (ch != '.' && ch != '-')))
			return false;
	}
	return true;
}

static uint64_t now_ms(void)
{
	return crisp_now_ms();
}

/* "scheme://host:port" of url (default port filled in), or -1. */
static int url_origin(const char *url, char *out, size_t outsize)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	int ret = -1;

	if (u == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	for (char *p = host; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if ((size_t)snprintf(out, outsize, "%s://%s:%s", scheme, host, port) >= outsize)
		goto out;
	ret = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return ret;
}

static const char *kind_what(const struct reg_req *r)
{
	switch (r->kind) {
	case K_PING:
		return "ping";
	case K_MANIFEST:
		return "manifest";
	case K_BLOB:
		return "blob";
	case K_TOKEN:
		return "token request";
	}
	return "request";
}

/* Fail the request from inside a libcurl callback (first error wins). */
static void req_fail(struct reg_req *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void req_fail(struct reg_req *r, int code, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return;
	r->failed = true;
	r->fail.code = code;
	r->fail.errnum = 0;
	va_start(ap, fmt);
	vsnprintf(r->fail.msg, sizeof r->fail.msg, fmt, ap);
	va_end(ap);
}

/* ---- token cache ---- */

static void tok_free(struct reg_tok *t)
{
	wipe_free(&t->token);
	free(t);
}

/*
 * Tokens are cached per (host, scope, credentials): a request without
 * credentials (or with other ones) must never ride on a token that another
 * pod's pull secret obtained.
 */
static const char *tok_lookup(struct reg_client *c, const char *host, const char *scope,
			      const char *cred_id)
{
	uint64_t now = now_ms();

	for (struct reg_tok **pp = &c->toks; *pp != NULL;) {
		struct reg_tok *t = *pp;
		if (t->expires_ms <= now) {
			*pp = t->next;
			tok_free(t);
			c->ntoks--;
			continue;
		}
		if (strcmp(t->host, host) == 0 && strcmp(t->scope, scope) == 0 &&
		    strcmp(t->cred_id, cred_id) == 0)
			return t->token;
		pp = &t->next;
	}
	return NULL;
}

static void tok_store(struct reg_client *c, const char *host, const char *scope, const char *cred_id,
		      const char *token, long expires_in)
{
	struct reg_tok *t;

	if (expires_in <= 0)
		expires_in = REG_TOKEN_DEFAULT_S;
	if (expires_in <= REG_TOKEN_MARGIN_S)
		return; /* would be stale at once: use it for this request only */
	for (struct reg_tok **pp = &c->toks; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->host, host) == 0 && strcmp((*pp)->scope, scope) == 0 &&
		    strcmp((*pp)->cred_id, cred_id) == 0) {
			t = *pp;
			*pp = t->next;
			tok_free(t);
			c->ntoks--;
			break;
		}
	}
	if (c->ntoks >= REG_MAX_CACHED_TOKENS && c->toks != NULL) {
		/* drop the oldest (the list's tail) */
		struct reg_tok **pp = &c->toks;
		while ((*pp)->next != NULL)
			pp = &(*pp)->next;
		tok_free(*pp);
		*pp = NULL;
		c->ntoks--;
	}
	t = xcalloc(1, sizeof *t);
	crisp_strlcpy(t->host, host, sizeof t->host);
	crisp_strlcpy(t->scope, scope, sizeof t->scope);
	crisp_strlcpy(t->cred_id, cred_id, sizeof t->cred_id);
	t->token = xstrdup(token);
	t->expires_ms = now_ms() + (uint64_t)(expires_in - REG_TOKEN_MARGIN_S) * 1000;
	t->next = c->toks;
	c->toks = t;
	c->ntoks++;
}

static struct reg_hostinfo *host_info(struct reg_client *c, const char *host, bool create)
{
	for (struct reg_hostinfo *h = c->hosts; h != NULL; h = h->next)
		if (strcmp(h->host, host) == 0)
			return h;
	if (!create)
		return NULL;
	struct reg_hostinfo *h = xcalloc(1, sizeof *h);
	crisp_strlcpy(h->host, host, sizeof h->host);
	h->next = c->hosts;
	c->hosts = h;
	return h;
}

/* ---- loop glue ---- */

static void on_sock(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct reg_client *c = arg;
	int flags = 0, running;

	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	process_done(c);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct reg_client *c = userp;
	uint32_t ev = 0;

	if (what == CURL_POLL_REMOVE) {
		if (socketp != NULL) {
			loop_del(c->loop, s);
			curl_multi_assign(c->multi, s, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev |= EPOLLOUT;
	if (socketp == NULL) {
		if (loop_add(c->loop, s, ev, on_sock, c) < 0) {
			if (errno != EEXIST)
				return -1;
			/* a stale registration of a number curl closed and reused */
			loop_del(c->loop, s);
			if (loop_add(c->loop, s, ev, on_sock, c) < 0)
				return -1;
		}
		curl_multi_assign(c->multi, s, c);
	} else if (loop_mod(c->loop, s, ev) < 0) {
		return -1;
	}
	return 0;
}

static void on_timer(struct loop *l, void *arg)
{
	struct reg_client *c = arg;
	int running;

	c->timer = NULL;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	process_done(c);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct reg_client *c = userp;

	if (c->timer != NULL) {
		loop_timer_cancel(c->loop, c->timer);
		c->timer = NULL;
	}
	if (timeout_ms < 0)
		return 0;
	c->timer = loop_timer_add(c->loop, (uint64_t)timeout_ms, on_timer, c);
	return c->timer != NULL ? 0 : -1;
}

static void process_done(struct reg_client *c)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
		struct reg_req *r = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (r != NULL)
			req_done(r, msg->data.result);
	}
}

/* ---- client ---- */

struct reg_client *reg_client_new(struct loop *l, const struct reg_options *opts, crisp_err_t *err)
{
	static bool inited;
	struct reg_client *c;

	if (!inited) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			crisp_error(err, CRISP_INTERNAL, 0, "curl_global_init failed");
			return NULL;
		}
		if (sodium_init() < 0) {
			crisp_error(err, CRISP_INTERNAL, 0, "sodium_init failed");
			return NULL;
		}
		inited = true;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "registry client: out of memory");
		return NULL;
	}
	if (opts != NULL)
		c->o = *opts;
	if (c->o.connect_timeout_ms == 0)
		c->o.connect_timeout_ms = 15000;
	if (c->o.stall_timeout_s == 0)
		c->o.stall_timeout_s = 30;
	if (c->o.max_retries == 0)
		c->o.max_retries = 3;
	if (c->o.no_retries)
		c->o.max_retries = 0;
	if (c->o.backoff_ms == 0)
		c->o.backoff_ms = 200;
	if (c->o.user_agent == NULL)
		c->o.user_agent = "crisp";
	c->loop = l;
	randombytes_buf(c->cred_key, sizeof c->cred_key);
	c->multi = curl_multi_init();
	if (c->multi == NULL) {
		free(c);
		crisp_error(err, CRISP_INTERNAL, 0, "curl_multi_init failed");
		return NULL;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 8L);
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 32L);
	return c;
}

static void req_free(struct reg_req *r);

void reg_client_set_stall_timeout(struct reg_client *c, unsigned seconds)
{
	c->o.stall_timeout_s = seconds ? seconds : 30;
}

void reg_client_free(struct reg_client *c)
{
	if (c == NULL)
		return;
	while (c->reqs != NULL)
		req_free(c->reqs); /* children are in the list too */
	curl_multi_cleanup(c->multi);
	if (c->timer != NULL)
		loop_timer_cancel(c->loop, c->timer);
	while (c->toks != NULL) {
		struct reg_tok *t = c->toks;
		c->toks = t->next;
		tok_free(t);
	}
	while (c->hosts != NULL) {
		struct reg_hostinfo *h = c->hosts;
		c->hosts = h->next;
		free(h);
	}
	sodium_memzero(c, sizeof *c);
	free(c);
}

/* ---- requests ---- */

static void transfer_stop(struct reg_req *r)
{
	if (r->easy != NULL) {
		curl_multi_remove_handle(r->c->multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
	if (r->retry_timer != NULL) {
		loop_timer_cancel(r->c->loop, r->retry_timer);
		r->retry_timer = NULL;
	}
	if (r->stall_timer != NULL) {
		loop_timer_cancel(r->c->loop, r->stall_timer);
		r->stall_timer = NULL;
	}
}

/* Unlink and free, without any callback.  Cancels a pending token child. */
static void req_free(struct reg_req *r)
{
	struct reg_client *c = r->c;

	if (r->child != NULL) {
		r->child->parent = NULL;
		req_free(r->child);
		r->child = NULL;
	}
	if (r->parent != NULL && r->parent->child == r)
		r->parent->child = NULL;
	transfer_stop(r);
	if (r->prev != NULL)
		r->prev->next = r->next;
	else if (c->reqs == r)
		c->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	wipe_free(&r->user);
	wipe_free(&r->pass);
	wipe_free(&r->identity_token);
	wipe_free(&r->registry_token);
	wipe_free(&r->bearer);
	if (r->buf != NULL) {
		sodium_memzero(r->buf, r->cap);
		free(r->buf);
	}
	free(r->ca_file);
	free(r->ca_pem);
	free(r->first_url);
	free(r->url);
	sodium_memzero(r, sizeof *r);
	free(r);
}

static void blob_reset(struct reg_req *r)
{
	if (r->kind != K_BLOB)
		return;
	crypto_hash_sha256_init(&r->sha);
	r->got = 0;
	if (ftruncate(r->fd, 0) < 0 || lseek(r->fd, 0, SEEK_SET) < 0)
		req_fail(r, CRISP_INTERNAL, "blob %s: cannot reset the output file: %s", r->want_digest,
			 strerror(errno));
}

static void continue_after_token(struct reg_req *parent, const char *token, const crisp_err_t *err);

/* Deliver the final result and free the request. */
static void req_finish(struct reg_req *r, const crisp_err_t *err)
{
	transfer_stop(r);
	if (err != NULL && r->kind == K_BLOB)
		truncate_fd(r->fd);
	switch (r->kind) {
	case K_PING: {
		struct reg_ping_result pr = { .status = r->status, .auth_required = r->auth_rounds > 0 };
		reg_ping_cb cb = r->cb.ping;
		void *arg = r->arg;
		req_free(r);
		cb(arg, err == NULL ? &pr : NULL, err);
		return;
	}
	case K_MANIFEST: {
		reg_manifest_cb cb = r->cb.manifest;
		void *arg = r->arg;
		struct reg_manifest_result mr = { .body = r->buf, .len = r->len,
						  .content_type = r->content_type,
						  .docker_digest = r->docker_digest };
		/* unlink first so the callback may do anything but free the client */
		uint8_t *buf = TAKE_PTR(r->buf);
		char ct[REG_CONTENT_TYPE_SIZE], dd[sizeof r->docker_digest];
		memcpy(ct, r->content_type, sizeof ct);
		memcpy(dd, r->docker_digest, sizeof dd);
		mr.body = buf;
		mr.content_type = ct;
		mr.docker_digest = dd;
		req_free(r);
		cb(arg, err == NULL ? &mr : NULL, err);
		free(buf);
		return;
	}
	case K_BLOB: {
		struct reg_blob_result br;
		reg_blob_cb cb = r->cb.blob;
		void *arg = r->arg;
		memcpy(br.digest, r->want_digest, sizeof br.digest);
		br.size = r->got;
		req_free(r);
		cb(arg, err == NULL ? &br : NULL, err);
		return;
	}
	case K_TOKEN: {
		struct reg_req *parent = r->parent;
		char *tok = NULL;
		long exp = 0;
		crisp_err_t e2 = CRISP_ERR_INIT;
		const crisp_err_t *perr = err;

		if (parent == NULL) {
			req_free(r);
			return;
		}
		parent->child = NULL;
		r->parent = NULL;
		if (err == NULL) {
			tok = xmalloc(REG_MAX_TOKEN + 1);
			if (reg_parse_token(r->buf, r->len, tok, &exp, &e2) < 0) {
				crisp_error_wrap(&e2, "token from %s", parent->chal.realm);
				perr = &e2;
			} else {
				tok_store(parent->c, parent->host,
					  parent->chal.scope[0] ? parent->chal.scope : parent->scope,
					  parent->cred_id, tok, exp);
			}
		}
		req_free(r);
		continue_after_token(parent, perr == NULL ? tok : NULL, perr);
		if (tok != NULL) {
			sodium_memzero(tok, REG_MAX_TOKEN + 1);
			free(tok);
		}
		return;
	}
	}
}

static void req_finish_err(struct reg_req *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void req_finish_err(struct reg_req *r, int code, const char *fmt, ...)
{
	crisp_err_t e = CRISP_ERR_INIT;
	va_list ap;

	e.code = code;
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof e.msg, fmt, ap);
	va_end(ap);
	req_finish(r, &e);
}

static void continue_after_token(struct reg_req *parent, const char *token, const crisp_err_t *err)
{
	crisp_err_t e = CRISP_ERR_INIT;

	if (err != NULL) {
		req_finish(parent, err);
		return;
	}
	wipe_free(&parent->bearer);
	parent->bearer = xstrdup(token);
	if (req_start(parent, &e) < 0)
		req_finish(parent, &e);
}

/* ---- libcurl callbacks ---- */

static void capture(char *dst, size_t dstsize, const char *v, size_t vlen)
{
	if (vlen >= dstsize)
		vlen = dstsize - 1;
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
	for (size_t i = 0; i < vlen; i++)
		if ((unsigned char)dst[i] < 0x20 || (unsigned char)dst[i] == 0x7f)
			dst[i] = '?';
}

static size_t header_cb(char *data, size_t size, size_t nitems, void *userp)
{
	struct reg_req *r = userp;
	size_t n = size * nitems, nl, vl;
	const char *colon, *v;

	r->hdr_bytes += n;
	r->last_progress_ms = now_ms();
	if (r->hdr_bytes > REG_MAX_HEADER_BYTES) {
		req_fail(r, CRISP_INVALID_ARGUMENT, "%s: response headers larger than %u bytes",
			 r->host, REG_MAX_HEADER_BYTES);
		return 0;
	}
	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* a new response (after 1xx): forget what the previous one said */
		r->content_type[0] = r->docker_digest[0] = r->www_auth[0] = r->location[0] = '\0';
		r->www_auth_overflow = false;
		r->retry_after = -1;
		return n;
	}
	colon = memchr(data, ':', n);
	if (colon == NULL)
		return n;
	nl = (size_t)(colon - data);
	v = colon + 1;
	vl = n - nl - 1;
	while (vl > 0 && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
#define HDR_IS(s) (nl == sizeof(s) - 1 && strncasecmp(data, s, nl) == 0)
	if (HDR_IS("Content-Type")) {
		capture(r->content_type, sizeof r->content_type, v, vl);
	} else if (HDR_IS("Docker-Content-Digest")) {
		capture(r->docker_digest, sizeof r->docker_digest, v, vl);
	} else if (HDR_IS("WWW-Authenticate")) {
		size_t cur = strlen(r->www_auth);
		if (cur + (cur ? 2 : 0) + vl > REG_MAX_CHALLENGE) {
			r->www_auth_overflow = true;
		} else {
			if (cur) {
				memcpy(r->www_auth + cur, ", ", 2);
				cur += 2;
			}
			memcpy(r->www_auth + cur, v, vl);
			r->www_auth[cur + vl] = '\0';
		}
	} else if (HDR_IS("Location")) {
		if (vl >= sizeof r->location) {
			req_fail(r, CRISP_INVALID_ARGUMENT, "%s: redirect location longer than %zu bytes",
				 r->host, sizeof r->location - 1);
			return 0;
		}
		capture(r->location, sizeof r->location, v, vl);
	} else if (HDR_IS("Retry-After")) {
		long s = 0;
		size_t i;
		for (i = 0; i < vl && i < 6 && v[i] >= '0' && v[i] <= '9'; i++)
			s = s * 10 + (v[i] - '0');
		if (i == vl && vl > 0)
			r->retry_after = s;
	}
#undef HDR_IS
	return n;
}

static int buf_append(struct reg_req *r, const char *data, size_t n, size_t max)
{
	if (r->len + n > max)
		return -1;
	if (r->len + n > r->cap) {
		size_t nc = r->cap ? r->cap : 4096;
		uint8_t *nb;
		while (nc < r->len + n)
			nc *= 2;
		if (nc > max)
			nc = max;
		nb = malloc(nc);
		if (nb == NULL)
			return -1;
		if (r->buf != NULL) {
			memcpy(nb, r->buf, r->len);
			sodium_memzero(r->buf, r->cap);
			free(r->buf);
		}
		r->buf = nb;
		r->cap = nc;
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct reg_req *r = userp;
	size_t n = size * nmemb;

	r->last_progress_ms = now_ms();
	if (!r->status_known) {
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
		r->status_known = true;
	}
	if (r->status >= 300 && r->status < 400)
		return n; /* redirect bodies are dropped */
	if (r->status < 200 || r->status >= 300) {
		/* an error document: keep a bounded prefix, then stop the transfer */
		if (buf_append(r, data, n, REG_MAX_SMALL_BODY) < 0) {
			r->body_cut = true;
			return 0;
		}
		return n;
	}
	switch (r->kind) {
	case K_BLOB:
		if (n > r->want_size - r->got) {
			req_fail(r, CRISP_DATA_LOSS, "blob %s: registry sent more than the %" PRIu64
				 " bytes the descriptor names", r->want_digest, r->want_size);
			return 0;
		}
		if (crisp_write_all(r->fd, data, n) < 0) {
			req_fail(r, CRISP_INTERNAL, "blob %s: write: %s", r->want_digest, strerror(errno));
			return 0;
		}
		crypto_hash_sha256_update(&r->sha, (const unsigned char *)data, n);
		r->got += n;
		return n;
	case K_MANIFEST:
		if (buf_append(r, data, n, REG_MAX_MANIFEST) < 0) {
			req_fail(r, CRISP_INVALID_ARGUMENT, "manifest %s:%s: larger than %u bytes", r->repo,
				 r->ref, REG_MAX_MANIFEST);
			return 0;
		}
		return n;
	case K_TOKEN:
	case K_PING:
		if (buf_append(r, data, n, REG_MAX_SMALL_BODY) < 0) {
			if (r->kind == K_PING) {
				r->body_cut = true; /* nobody reads a ping's body */
				return 0;
			}
			req_fail(r, CRISP_INVALID_ARGUMENT, "token answer from %s larger than %u bytes",
				 r->chal.realm, REG_MAX_SMALL_BODY);
			return 0;
		}
		return n;
	}
	return 0;
}

/* ---- starting a transfer ---- */

static int add_header(struct reg_req *r, const char *h)
{
	struct curl_slist *n = curl_slist_append(r->hdrs, h);

	if (n == NULL)
		return -1;
	r->hdrs = n;
	return 0;
}

static int add_basic(struct reg_req *r)
{
	size_t ul = strlen(r->user), pl = strlen(r->pass), bl = ul + 1 + pl;
	size_t b64 = sodium_base64_ENCODED_LEN(bl, sodium_base64_VARIANT_ORIGINAL);
	char *raw = xmalloc(bl + 1), *h = xmalloc(b64 + 32);
	int ret;

	memcpy(raw, r->user, ul);
	raw[ul] = ':';
	memcpy(raw + ul + 1, r->pass, pl);
	memcpy(h, "Authorization: Basic ", 21);
	sodium_bin2base64(h + 21, b64, (const unsigned char *)raw, bl, sodium_base64_VARIANT_ORIGINAL);
	ret = add_header(r, h);
	sodium_memzero(raw, bl + 1);
	sodium_memzero(h, b64 + 32);
	free(raw);
	free(h);
	return ret;
}

static int add_bearer(struct reg_req *r, const char *tok)
{
	size_t n = strlen(tok) + 32;
	char *h = xmalloc(n);
	int ret;

	snprintf(h, n, "Authorization: Bearer %s", tok);
	ret = add_header(r, h);
	sodium_memzero(h, n);
	free(h);
	return ret;
}

static void what_ref(const struct reg_req *r, char *out, size_t outsize);

/*
 * The stall watchdog.  libcurl's LOW_SPEED_LIMIT/TIME averages the rate
 * over a window of several seconds, so a registry that sends a few bytes
 * and then nothing trips it only after window + N seconds; this timer
 * fails the transfer exactly N seconds after the last byte (of headers or
 * body) arrived.  LOW_SPEED stays set as a second line.
 */
static void on_stall_timer(struct loop *l, void *arg)
{
	struct reg_req *r = arg;
	uint64_t limit = (uint64_t)r->c->o.stall_timeout_s * 1000, idle = now_ms() - r->last_progress_ms;
	char what[400];

	r->stall_timer = NULL;
	if (idle < limit) {
		r->stall_timer = loop_timer_add(l, limit - idle, on_stall_timer, r);
		if (r->stall_timer != NULL)
			return;
	}
	what_ref(r, what, sizeof what);
	req_finish_err(r, CRISP_DEADLINE_EXCEEDED, "%s %s: registry %s stalled: no data for %u s",
		       kind_what(r), what, r->host, r->c->o.stall_timeout_s);
}

static int req_start(struct reg_req *r, crisp_err_t *err)
{
	struct reg_client *c = r->c;
	CURL *e;

	transfer_stop(r);
	r->status = 0;
	r->status_known = false;
	r->hdr_bytes = 0;
	r->content_type[0] = r->docker_digest[0] = r->www_auth[0] = r->location[0] = '\0';
	r->www_auth_overflow = false;
	r->retry_after = -1;
	r->len = 0;
	r->body_cut = false;
	r->failed = false;
	r->errbuf[0] = '\0';
	blob_reset(r);
	if (r->failed) {
		*err = r->fail;
		return -1;
	}

	/* credentials go only to the request's own origin */
	if (r->same_origin) {
		if (r->kind == K_TOKEN) {
			if (r->user != NULL && r->identity_token == NULL && add_basic(r) < 0)
				goto oom;
		} else if (r->registry_token != NULL) {
			if (add_bearer(r, r->registry_token) < 0)
				goto oom;
		} else if (r->bearer != NULL) {
			if (add_bearer(r, r->bearer) < 0)
				goto oom;
		} else if (r->use_basic && r->user != NULL) {
			if (add_basic(r) < 0)
				goto oom;
		}
	}
	if (r->kind == K_MANIFEST && add_header(r, accept_manifest) < 0)
		goto oom;

	e = curl_easy_init();
	if (e == NULL)
		goto oom;
	r->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
	curl_easy_setopt(e, CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->o.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)c->o.stall_timeout_s);
	curl_easy_setopt(e, CURLOPT_USERAGENT, c->o.user_agent);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	if (r->ca_pem != NULL) {
		struct curl_blob b = { r->ca_pem, r->ca_pem_len, CURL_BLOB_COPY };
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	} else if (r->ca_file != NULL) {
		curl_easy_setopt(e, CURLOPT_CAINFO, r->ca_file);
	}
	/* only an early refusal of an announced length: bytes are counted anyway */
	if (r->kind == K_BLOB)
		curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->want_size);
	else if (r->kind == K_MANIFEST)
		curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)REG_MAX_MANIFEST);
	if (r->kind == K_TOKEN && r->identity_token != NULL && r->same_origin) {
		char *svc = curl_easy_escape(e, r->chal.service, 0);
		char *scp = curl_easy_escape(e, r->chal.scope[0] ? r->chal.scope : r->scope, 0);
		char *rt = curl_easy_escape(e, r->identity_token, 0);
		size_t n;
		char *form;
		int ok;

		if (svc == NULL || scp == NULL || rt == NULL) {
			curl_free(svc), curl_free(scp), curl_free(rt);
			goto oom;
		}
		n = strlen(svc) + strlen(scp) + strlen(rt) + 128;
		form = xmalloc(n);
		snprintf(form, n, "grant_type=refresh_token&client_id=crisp&service=%s&scope=%s&refresh_token=%s",
			 svc, scp, rt);
		ok = curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, form) == CURLE_OK;
		sodium_memzero(rt, strlen(rt));
		sodium_memzero(form, n);
		free(form);
		curl_free(svc), curl_free(scp), curl_free(rt);
		if (!ok)
			goto oom;
	} else {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	}
	r->last_progress_ms = now_ms();
	r->stall_timer = loop_timer_add(c->loop, (uint64_t)c->o.stall_timeout_s * 1000, on_stall_timer, r);
	if (r->stall_timer == NULL)
		goto oom;
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
		return crisp_error(err, CRISP_INTERNAL, 0, "curl_multi_add_handle failed");
	return 0;
oom:
	return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "registry request: out of memory");
}

/* ---- completion ---- */

static void on_retry_timer(struct loop *l, void *arg)
{
	struct reg_req *r = arg;
	crisp_err_t e = CRISP_ERR_INIT;

	r->retry_timer = NULL;
	if (req_start(r, &e) < 0)
		req_finish(r, &e);
}

/* Schedule another attempt, or return false when the budget is spent. */
static bool req_retry(struct reg_req *r)
{
	uint64_t ms;

	if (r->retries >= r->c->o.max_retries)
		return false;
	r->retries++;
	ms = (uint64_t)r->c->o.backoff_ms << (r->retries - 1);
	if (r->retry_after >= 0)
		ms = (uint64_t)(r->retry_after > REG_MAX_RETRY_AFTER_S ? REG_MAX_RETRY_AFTER_S
								 : r->retry_after) * 1000;
	transfer_stop(r);
	/* a retry restarts at the registry, not at a storage redirect */
	free(r->url);
	r->url = xstrdup(r->first_url);
	r->same_origin = true;
	r->redirects = 0;
	r->retry_timer = loop_timer_add(r->c->loop, ms, on_retry_timer, r);
	return r->retry_timer != NULL;
}

static void registry_message(struct reg_req *r, char *out, size_t outsize)
{
	if (reg_parse_oci_error(r->buf, r->len, out, outsize) < 0)
		snprintf(out, outsize, "HTTP %ld", r->status);
}

static void what_ref(const struct reg_req *r, char *out, size_t outsize)
{
	if (r->kind == K_MANIFEST)
		snprintf(out, outsize, "%s%s%s", r->repo, strncmp(r->ref, "sha256:", 7) == 0 ? "@" : ":",
			 r->ref);
	else if (r->kind == K_BLOB)
		snprintf(out, outsize, "%s@%s", r->repo, r->want_digest);
	else
		snprintf(out, outsize, "%s", r->host);
}

static void handle_redirect(struct reg_req *r)
{
	CURLU *u;
	char *next = NULL, *scheme = NULL, orig[REG_URL_MAX];
	crisp_err_t e = CRISP_ERR_INIT;
	bool was_https = strncmp(r->url, "https:", 6) == 0;

	if (r->location[0] == '\0') {
		req_finish_err(r, CRISP_UNAVAILABLE, "%s: redirect (HTTP %ld) without a location", r->host,
			       r->status);
		return;
	}
	if (++r->redirects > REG_MAX_REDIRECTS) {
		req_finish_err(r, CRISP_UNAVAILABLE, "%s: more than %d redirects", r->host, REG_MAX_REDIRECTS);
		return;
	}
	u = curl_url();
	if (u == NULL || curl_url_set(u, CURLUPART_URL, r->url, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_URL, r->location, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &next, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		curl_url_cleanup(u);
		curl_free(next);
		curl_free(scheme);
		req_finish_err(r, CRISP_UNAVAILABLE, "%s: malformed redirect location", r->host);
		return;
	}
	curl_url_cleanup(u);
	if (strcasecmp(scheme, "https") != 0 && strcasecmp(scheme, "http") != 0) {
		curl_free(next);
		curl_free(scheme);
		req_finish_err(r, CRISP_PERMISSION_DENIED, "%s: redirect to a non-http(s) URL refused", r->host);
		return;
	}
	if (was_https && strcasecmp(scheme, "http") == 0 && !r->insecure) {
		curl_free(next);
		curl_free(scheme);
		req_finish_err(r, CRISP_PERMISSION_DENIED, "%s: redirect from https to http refused", r->host);
		return;
	}
	curl_free(scheme);
	if (strlen(next) >= REG_URL_MAX || url_origin(next, orig, sizeof orig) < 0) {
		curl_free(next);
		req_finish_err(r, CRISP_UNAVAILABLE, "%s: unusable redirect location", r->host);
		return;
	}
	free(r->url);
	r->url = xstrdup(next);
	curl_free(next);
	r->same_origin = strcmp(orig, r->origin) == 0;
	if (req_start(r, &e) < 0)
		req_finish(r, &e);
}

static void start_token_request(struct reg_req *r)
{
	struct reg_req *t;
	crisp_err_t e = CRISP_ERR_INIT;
	bool https = strncasecmp(r->chal.realm, "https://", 8) == 0;
	bool http = strncasecmp(r->chal.realm, "http://", 7) == 0;
	char *url;
	size_t n;

	if (!https && !(http && r->insecure)) {
		req_finish_err(r, CRISP_PERMISSION_DENIED,
			       "%s: token realm must be an https URL (got a %s one)", r->host,
			       http ? "plain http" : "non-http");
		return;
	}
	t = xcalloc(1, sizeof *t);
	t->c = r->c;
	t->kind = K_TOKEN;
	t->fd = -1;
	memcpy(t->host, r->host, sizeof t->host);
	t->insecure = r->insecure;
	t->ca_file = r->ca_file != NULL ? xstrdup(r->ca_file) : NULL;
	if (r->ca_pem != NULL) {
		t->ca_pem = xmalloc(r->ca_pem_len);
		memcpy(t->ca_pem, r->ca_pem, r->ca_pem_len);
		t->ca_pem_len = r->ca_pem_len;
	}
	t->chal = r->chal;
	memcpy(t->scope, r->scope, sizeof t->scope);
	if (r->user != NULL) {
		t->user = xstrdup(r->user);
		t->pass = xstrdup(r->pass);
	}
	if (r->identity_token != NULL)
		t->identity_token = xstrdup(r->identity_token);
	if (t->identity_token != NULL) {
		url = xstrdup(r->chal.realm);
	} else {
		CURL *tmp = curl_easy_init();
		const char *scope = r->chal.scope[0] ? r->chal.scope : r->scope;
		char *svc = tmp ? curl_easy_escape(tmp, r->chal.service, 0) : NULL;
		char *scp = tmp ? curl_easy_escape(tmp, scope, 0) : NULL;

		if (svc == NULL || scp == NULL) {
			curl_free(svc), curl_free(scp), curl_easy_cleanup(tmp);
			req_free(t);
			req_finish_err(r, CRISP_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		n = strlen(r->chal.realm) + strlen(svc) + strlen(scp) + 32;
		url = xmalloc(n);
		snprintf(url, n, "%s%s%s%s%s%s", r->chal.realm, strchr(r->chal.realm, '?') ? "&" : "?",
			 svc[0] ? "service=" : "", svc, scp[0] ? (svc[0] ? "&scope=" : "scope=") : "", scp);
		curl_free(svc), curl_free(scp), curl_easy_cleanup(tmp);
	}
	t->first_url = url;
	t->url = xstrdup(url);
	if (strlen(url) >= REG_URL_MAX || url_origin(url, t->origin, sizeof t->origin) < 0) {
		req_free(t);
		req_finish_err(r, CRISP_UNAVAILABLE, "%s: unusable token realm", r->host);
		return;
	}
	t->same_origin = true;
	t->parent = r;
	r->child = t;
	t->next = r->c->reqs;
	if (t->next != NULL)
		t->next->prev = t;
	r->c->reqs = t;
	if (req_start(t, &e) < 0) {
		req_free(t);
		req_finish(r, &e);
	}
}

static void handle_401(struct reg_req *r)
{
	crisp_err_t e = CRISP_ERR_INIT;
	char msg[300], what[400];
	bool have_creds = r->user != NULL || r->identity_token != NULL;

	registry_message(r, msg, sizeof msg);
	what_ref(r, what, sizeof what);
	if (r->kind == K_TOKEN) {
		req_finish_err(r, CRISP_UNAUTHENTICATED, "token request to %s refused (%s)%s", r->chal.realm,
			       msg, r->user ? ": check the username and password" : "");
		return;
	}
	if (!r->same_origin) {
		req_finish_err(r, CRISP_UNAUTHENTICATED, "%s: redirected storage refused the request (%s)",
			       what, msg);
		return;
	}
	if (r->auth_rounds >= 1 || r->registry_token != NULL) {
		if (r->kind == K_PING && !have_creds && r->registry_token == NULL) {
			req_finish(r, NULL);
			return;
		}
		req_finish_err(r, CRISP_UNAUTHENTICATED, "%s: authentication failed (%s): %s", what, msg,
			       r->registry_token != NULL ? "the registry token was refused"
			       : have_creds	       ? "check the username and password"
						       : "no credentials were given");
		return;
	}
	r->auth_rounds++;
	if (r->www_auth_overflow ||
	    reg_parse_challenge(r->www_auth, strlen(r->www_auth), &r->chal, &e) < 0) {
		if (r->www_auth_overflow)
			crisp_error(&e, CRISP_INVALID_ARGUMENT, 0, "WWW-Authenticate too long");
		req_finish_err(r, CRISP_UNAUTHENTICATED, "%s: 401 with an unusable challenge: %s", what, e.msg);
		return;
	}
	host_info(r->c, r->host, true)->scheme = r->chal.scheme;
	if (r->chal.scheme == REG_CHAL_BASIC) {
		if (r->user == NULL) {
			if (r->kind == K_PING) {
				req_finish(r, NULL);
				return;
			}
			req_finish_err(r, CRISP_UNAUTHENTICATED,
				       "%s: the registry requires a username and password (%s)", what, msg);
			return;
		}
		r->use_basic = true;
		wipe_free(&r->bearer);
		free(r->url);
		r->url = xstrdup(r->first_url);
		r->same_origin = true;
		r->redirects = 0;
		if (req_start(r, &e) < 0)
			req_finish(r, &e);
		return;
	}
	/* Bearer */
	wipe_free(&r->bearer);
	free(r->url);
	r->url = xstrdup(r->first_url);
	r->same_origin = true;
	r->redirects = 0;
	transfer_stop(r);
	start_token_request(r);
}

static bool rc_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static bool rc_tls(CURLcode rc)
{
	switch (rc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
		return true;
	default:
		return false;
	}
}

static void req_done(struct reg_req *r, CURLcode rc)
{
	char what[400], msg[300];
	const char *detail;
	curl_off_t pretransfer = 0;

	if (!r->status_known && r->easy != NULL)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->easy != NULL) {
		long nc = 0;

		curl_easy_getinfo(r->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
		if (curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &nc) == CURLE_OK && nc > 0)
			r->c->connections += (uint64_t)nc;
	}
	transfer_stop(r);
	what_ref(r, what, sizeof what);
	detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);

	if (r->failed) {
		crisp_err_t e = r->fail;
		req_finish(r, &e);
		return;
	}
	if (rc == CURLE_WRITE_ERROR && r->body_cut)
		rc = CURLE_OK;
	if (rc != CURLE_OK) {
		if (rc == CURLE_OPERATION_TIMEDOUT && pretransfer > 0) {
			req_finish_err(r, CRISP_DEADLINE_EXCEEDED,
				       "%s %s: registry %s stalled: no data for %u s", kind_what(r), what,
				       r->host, r->c->o.stall_timeout_s);
			return;
		}
		if (rc == CURLE_OPERATION_TIMEDOUT || rc_retryable(rc)) {
			if (req_retry(r))
				return;
			req_finish_err(r, CRISP_UNAVAILABLE, "%s %s: %s (after %u retries)", kind_what(r), what,
				       detail, r->retries);
			return;
		}
		if (rc_tls(rc)) {
			req_finish_err(r, CRISP_UNAVAILABLE, "%s %s: TLS with %s failed: %s (%s)", kind_what(r),
				       what, r->host, detail,
				       rc == CURLE_SSL_CONNECT_ERROR
					       ? "a registry that speaks plain http must be configured as insecure"
					       : "a registry with a private CA needs its CA file configured");
			return;
		}
		if (rc == CURLE_FILESIZE_EXCEEDED && r->kind == K_BLOB) {
			req_finish_err(r, CRISP_DATA_LOSS, "blob %s: registry announced more than %" PRIu64 " bytes",
				       what, r->want_size);
			return;
		}
		if (rc == CURLE_FILESIZE_EXCEEDED) {
			req_finish_err(r, CRISP_INVALID_ARGUMENT, "%s %s: larger than %u bytes", kind_what(r), what,
				       REG_MAX_MANIFEST);
			return;
		}
		req_finish_err(r, CRISP_UNAVAILABLE, "%s %s: %s", kind_what(r), what, detail);
		return;
	}

	if (r->status >= 200 && r->status < 300) {
		if (r->kind == K_BLOB) {
			unsigned char h[crypto_hash_sha256_BYTES];
			char got[MF_DIGEST_SIZE];

			if (r->got != r->want_size) {
				req_finish_err(r, CRISP_DATA_LOSS, "blob %s: got %" PRIu64 " bytes, expected %" PRIu64,
					       what, r->got, r->want_size);
				return;
			}
			crypto_hash_sha256_final(&r->sha, h);
			memcpy(got, "sha256:", 7);
			crisp_hex(h, sizeof h, got + 7);
			got[MF_DIGEST_LEN] = '\0';
			if (strcmp(got, r->want_digest) != 0) {
				req_finish_err(r, CRISP_DATA_LOSS, "blob %s: content has digest %s", what, got);
				return;
			}
		}
		req_finish(r, NULL);
		return;
	}
	switch (r->status) {
	case 301:
	case 302:
	case 303:
	case 307:
	case 308:
		handle_redirect(r);
		return;
	case 401:
		handle_401(r);
		return;
	default:
		break;
	}
	registry_message(r, msg, sizeof msg);
	if (r->status == 403) {
		req_finish_err(r, CRISP_PERMISSION_DENIED, "%s %s: access denied (%s)", kind_what(r), what, msg);
		return;
	}
	if (r->status == 404) {
		if (r->kind == K_MANIFEST)
			req_finish_err(r, CRISP_NOT_FOUND, "manifest unknown: %s (%s)", what, msg);
		else if (r->kind == K_BLOB)
			req_finish_err(r, CRISP_NOT_FOUND, "blob unknown: %s (%s)", what, msg);
		else
			req_finish_err(r, CRISP_NOT_FOUND, "%s %s: not found (%s)", kind_what(r), what, msg);
		return;
	}
	if (r->status == 429 || r->status >= 500) {
		if (req_retry(r))
			return;
		req_finish_err(r, CRISP_UNAVAILABLE, "%s %s: registry answered %ld (%s) after %u retries",
			       kind_what(r), what, r->status, msg, r->retries);
		return;
	}
	req_finish_err(r, r->status >= 400 && r->status < 500 ? CRISP_FAILED_PRECONDITION : CRISP_INTERNAL,
		       "%s %s: unexpected HTTP status %ld (%s)", kind_what(r), what, r->status, msg);
}

/* ---- submission ---- */

static struct reg_req *req_new(struct reg_client *c, enum req_kind kind, const struct reg_endpoint *ep,
			       const char *repo, const struct reg_auth *auth, crisp_err_t *err)
{
	struct reg_req *r;
	char url[REG_URL_MAX];
	struct reg_hostinfo *hi;

	if (c == NULL || ep == NULL || ep->host == NULL || !valid_host(ep->host)) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "registry host %s%s%s is not valid",
			    ep && ep->host ? "\"" : "", ep && ep->host ? ep->host : "(none)",
			    ep && ep->host ? "\"" : "");
		return NULL;
	}
	if (repo != NULL && !valid_repo(repo)) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "repository name is not valid");
		return NULL;
	}
	r = xcalloc(1, sizeof *r);
	r->c = c;
	r->kind = kind;
	r->fd = -1;
	crisp_strlcpy(r->host, ep->host, sizeof r->host);
	r->insecure = ep->insecure;
	if (ep->ca_file != NULL)
		r->ca_file = xstrdup(ep->ca_file);
	if (ep->ca_pem != NULL && ep->ca_pem_len > 0) {
		r->ca_pem = xmalloc(ep->ca_pem_len);
		memcpy(r->ca_pem, ep->ca_pem, ep->ca_pem_len);
		r->ca_pem_len = ep->ca_pem_len;
	}
	if (repo != NULL) {
		crisp_strlcpy(r->repo, repo, sizeof r->repo);
		snprintf(r->scope, sizeof r->scope, "repository:%s:pull", repo);
	}
	if (auth != NULL) {
		if (auth->username != NULL && auth->username[0] != '\0') {
			if (strchr(auth->username, ':') != NULL) {
				req_free(r);
				crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "username must not contain ':'");
				return NULL;
			}
			r->user = xstrdup(auth->username);
			r->pass = xstrdup(auth->password != NULL ? auth->password : "");
		} else if (auth->auth != NULL && auth->auth[0] != '\0') {
			size_t al = strlen(auth->auth), bl;
			char *bin = xmalloc(al + 1), *colon;

			if (sodium_base642bin((unsigned char *)bin, al, auth->auth, al, " \n", &bl, NULL,
					      sodium_base64_VARIANT_ORIGINAL) != 0 ||
			    memchr(bin, '\0', bl) != NULL || (bin[bl] = '\0', colon = strchr(bin, ':')) == NULL) {
				sodium_memzero(bin, al + 1);
				free(bin);
				req_free(r);
				crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					    "auth is not base64 of \"username:password\"");
				return NULL;
			}
			*colon = '\0';
			r->user = xstrdup(bin);
			r->pass = xstrdup(colon + 1);
			sodium_memzero(bin, al + 1);
			free(bin);
		}
		if (auth->identity_token != NULL && auth->identity_token[0] != '\0')
			r->identity_token = xstrdup(auth->identity_token);
		if (auth->registry_token != NULL && auth->registry_token[0] != '\0') {
			for (const char *p = auth->registry_token; *p; p++)
				if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e ||
				    p - auth->registry_token >= (long)REG_MAX_TOKEN) {
					req_free(r);
					crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "registry token is not valid");
					return NULL;
				}
			r->registry_token = xstrdup(auth->registry_token);
		}
	}
	{
		crypto_generichash_state st;
		unsigned char h[crypto_generichash_BYTES];
		const char *parts[3] = { r->user, r->pass, r->identity_token };

		crypto_generichash_init(&st, c->cred_key, sizeof c->cred_key, sizeof h);
		for (size_t i = 0; i < 3; i++) {
			const char *p = parts[i] != NULL ? parts[i] : "";
			crypto_generichash_update(&st, (const unsigned char *)p, strlen(p) + 1);
		}
		crypto_generichash_final(&st, h, sizeof h);
		crisp_hex(h, sizeof h, r->cred_id);
		r->cred_id[2 * sizeof h] = '\0';
		sodium_memzero(&st, sizeof st);
	}
	/* what we already know about the host */
	hi = host_info(c, r->host, false);
	if (hi != NULL && hi->scheme == REG_CHAL_BASIC && r->user != NULL)
		r->use_basic = true;
	if (hi != NULL && hi->scheme == REG_CHAL_BEARER) {
		const char *t = tok_lookup(c, r->host, r->scope, r->cred_id);
		if (t != NULL)
			r->bearer = xstrdup(t);
	}
	snprintf(url, sizeof url, "%s://%s/v2/", ep->insecure ? "http" : "https", ep->host);
	r->first_url = xstrdup(url);
	if (url_origin(url, r->origin, sizeof r->origin) < 0) {
		req_free(r);
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "registry host \"%s\" is not valid", ep->host);
		return NULL;
	}
	r->same_origin = true;
	return r;
}

static struct reg_req *req_submit(struct reg_req *r, const char *path, crisp_err_t *err)
{
	struct reg_client *c = r->c;

	if (path != NULL) {
		size_t n = strlen(r->first_url) + strlen(path) + 1;
		char *u = xmalloc(n);
		snprintf(u, n, "%s%s", r->first_url, path);
		free(r->first_url);
		r->first_url = u;
	}
	r->url = xstrdup(r->first_url);
	r->next = c->reqs;
	if (r->next != NULL)
		r->next->prev = r;
	c->reqs = r;
	if (req_start(r, err) < 0) {
		req_free(r);
		return NULL;
	}
	return r;
}

struct reg_req *reg_ping(struct reg_client *c, const struct reg_endpoint *ep,
			 const struct reg_auth *auth, reg_ping_cb cb, void *arg, crisp_err_t *err)
{
	struct reg_req *r = req_new(c, K_PING, ep, NULL, auth, err);

	if (r == NULL)
		return NULL;
	r->cb.ping = cb;
	r->arg = arg;
	return req_submit(r, NULL, err);
}

struct reg_req *reg_get_manifest(struct reg_client *c, const struct reg_endpoint *ep,
				 const char *repo, const char *ref, const struct reg_auth *auth,
				 reg_manifest_cb cb, void *arg, crisp_err_t *err)
{
	struct reg_req *r;
	char path[REG_REPO_MAX + REG_REF_MAX + 32];

	if (repo == NULL || ref == NULL || (!valid_tag(ref) && !mf_valid_digest(ref))) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
			    "manifest reference must be a tag or a sha256 digest");
		return NULL;
	}
	r = req_new(c, K_MANIFEST, ep, repo, auth, err);
	if (r == NULL)
		return NULL;
	crisp_strlcpy(r->ref, ref, sizeof r->ref);
	r->cb.manifest = cb;
	r->arg = arg;
	snprintf(path, sizeof path, "%s/manifests/%s", repo, ref);
	return req_submit(r, path, err);
}

struct reg_req *reg_get_blob(struct reg_client *c, const struct reg_endpoint *ep, const char *repo,
			     const char *digest, uint64_t size, int out_fd,
			     const struct reg_auth *auth, reg_blob_cb cb, void *arg,
			     crisp_err_t *err)
{
	struct reg_req *r;
	char path[REG_REPO_MAX + MF_DIGEST_SIZE + 32];

	if (repo == NULL || digest == NULL || !mf_valid_digest(digest)) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "blob digest must be sha256:<64 hex>");
		return NULL;
	}
	if (out_fd < 0) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "blob output fd is not valid");
		return NULL;
	}
	if (size > MF_MAX_LAYER_SIZE) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "blob size %" PRIu64 " exceeds the limit", size);
		return NULL;
	}
	r = req_new(c, K_BLOB, ep, repo, auth, err);
	if (r == NULL)
		return NULL;
	memcpy(r->want_digest, digest, MF_DIGEST_SIZE);
	r->want_size = size;
	r->fd = out_fd;
	r->cb.blob = cb;
	r->arg = arg;
	snprintf(path, sizeof path, "%s/blobs/%s", repo, digest);
	return req_submit(r, path, err);
}

void reg_cancel(struct reg_client *c, struct reg_req *req)
{
	if (c == NULL || req == NULL)
		return;
	if (req->kind == K_BLOB && req->fd >= 0)
		truncate_fd(req->fd);
	req_free(req);
}

uint64_t reg_client_connections(const struct reg_client *c)
{
	return c->connections;
}
