/*
 * crisp: per-namespace signature policy selection and cache.  See
 * nspolicy.h.
 */
#include "policy/nspolicy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

struct file_key {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct nsp_handle {
	unsigned refs;
	char *path;
	bool namespaced;
	struct file_key key;
	struct sp_policy *policy; /* NULL: the file did not parse, see error */
	crisp_err_t error;
	unsigned long last_used;
};

struct nsp_cache {
	char *dir;
	char *global;
	size_t n;
	struct nsp_handle *v[NSP_CACHE_MAX];
	unsigned long tick;
	unsigned long loads, hits;
};

bool nsp_valid_namespace(const char *ns)
{
	size_t n = ns != NULL ? strnlen(ns, NSP_NAMESPACE_MAX + 1) : 0;

	if (n == 0 || n > NSP_NAMESPACE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = ns[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i != 0 && i != n - 1)))
			return false;
	}
	return true;
}

struct nsp_cache *nsp_cache_new(const char *dir, const char *global_path)
{
	struct nsp_cache *c;

	if (global_path == NULL)
		return NULL;
	c = xcalloc(1, sizeof *c);
	c->dir = dir != NULL ? xstrdup(dir) : NULL;
	c->global = xstrdup(global_path);
	return c;
}

void nsp_release(struct nsp_handle *h)
{
	if (h == NULL || --h->refs > 0)
		return;
	sp_policy_free(h->policy);
	free(h->path);
	free(h);
}

void nsp_cache_free(struct nsp_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		nsp_release(c->v[i]);
	free(c->dir);
	free(c->global);
	free(c);
}

const struct sp_policy *nsp_policy(const struct nsp_handle *h)
{
	return h->policy;
}

const char *nsp_path(const struct nsp_handle *h)
{
	return h->path;
}

bool nsp_is_namespaced(const struct nsp_handle *h)
{
	return h->namespaced;
}

void nsp_cache_stats(const struct nsp_cache *c, struct nsp_stats *out)
{
	out->loads = c->loads;
	out->hits = c->hits;
	out->entries = c->n;
}

static void key_of(const struct stat *st, struct file_key *k)
{
	memset(k, 0, sizeof *k);
	k->dev = st->st_dev;
	k->ino = st->st_ino;
	k->size = st->st_size;
	k->mtime = st->st_mtim;
	k->ctime = st->st_ctim;
}

static bool key_eq(const struct file_key *a, const struct file_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static struct nsp_handle *find(struct nsp_cache *c, const char *path, size_t *idx)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->v[i]->path, path) == 0) {
			*idx = i;
			return c->v[i];
		}
	return NULL;
}

static void drop(struct nsp_cache *c, size_t i)
{
	nsp_release(c->v[i]);
	c->v[i] = c->v[--c->n];
}

/* Read and parse path into a new handle (a parse failure is a handle
 * holding the error; only I/O problems fail). */
static int load(const char *path, bool namespaced, struct nsp_handle **out, crisp_err_t *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	uint8_t *buf;
	size_t len = 0;
	char what[PATH_MAX + 32];

	if (fd < 0)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "signature policy %s: %s", path,
				   strerror(errno));
	snprintf(what, sizeof what, "signature policy %s", path);
	if (crisp_read_regular(fd, SP_POLICY_MAX_BYTES, what, &buf, &len, err) < 0)
		return -1;
	if (fstat(fd, &st) != 0) {
		free(buf);
		return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "%s: %s", what, strerror(errno));
	}
	struct nsp_handle *h = xcalloc(1, sizeof *h);
	h->refs = 1;
	h->path = xstrdup(path);
	h->namespaced = namespaced;
	key_of(&st, &h->key);
	if (sp_policy_parse(buf, len, &h->policy, &h->error) != 0) {
		h->policy = NULL;
		crisp_error_wrap(&h->error, "signature policy %s", path);
		h->error.code = CRISP_FAILED_PRECONDITION;
	}
	free(buf);
	*out = h;
	return 0;
}

int nsp_acquire(struct nsp_cache *c, const char *ns, struct nsp_handle **out, crisp_err_t *err)
{
	char path[PATH_MAX];
	bool namespaced = false;
	struct stat st;
	struct nsp_handle *h;
	size_t idx = 0;

	*out = NULL;
	if (!nsp_valid_namespace(ns))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "namespace \"%.80s\" is not a DNS-1123 label", ns != NULL ? ns : "");
	if (c->dir != NULL) {
		int r = snprintf(path, sizeof path, "%s/%s.json", c->dir, ns);
		if (r < 0 || (size_t)r >= sizeof path)
			return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "policy directory path too long");
		if (stat(path, &st) == 0) {
			namespaced = true;
		} else if (errno != ENOENT) {
			/* ENOTDIR, EACCES, ELOOP...: never fall back */
			return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "signature policy %s: %s", path,
					   strerror(errno));
		}
	}
	if (!namespaced) {
		if (crisp_strlcpy(path, c->global, sizeof path) >= sizeof path)
			return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "policy path too long");
		if (stat(path, &st) != 0)
			return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "signature policy %s: %s", path,
					   strerror(errno));
	}
	c->tick++;
	h = find(c, path, &idx);
	struct file_key k;
	key_of(&st, &k);
	if (h != NULL && key_eq(&h->key, &k)) {
		c->hits++;
	} else {
		struct nsp_handle *nh = NULL;
		if (load(path, namespaced, &nh, err) != 0)
			return -1;
		c->loads++;
		if (h != NULL) {
			nsp_release(h);
			c->v[idx] = nh;
		} else {
			if (c->n == NSP_CACHE_MAX) {
				size_t lru = 0;
				for (size_t i = 1; i < c->n; i++)
					if (c->v[i]->last_used < c->v[lru]->last_used)
						lru = i;
				drop(c, lru);
			}
			c->v[c->n++] = nh;
		}
		h = nh;
	}
	h->last_used = c->tick;
	if (h->policy == NULL) {
		if (err != NULL)
			*err = h->error;
		return -1;
	}
	h->refs++;
	*out = h;
	return 0;
}
