/*
 * imaged: registry credentials from a containers-auth.json(5) file.  See
 * authfile.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/util.h"
#include "imaged/authfile.h"

static void wipe_free(char *s)
{
	if (s) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

void authfile_free(struct authfile *af)
{
	if (!af)
		return;
	for (size_t i = 0; i < af->n; i++) {
		free(af->e[i].key);
		wipe_free(af->e[i].username);
		wipe_free(af->e[i].password);
		wipe_free(af->e[i].identity_token);
	}
	free(af->e);
	free(af);
}

/* host[:port][/path]: printable ASCII without spaces, quotes or
 * backslashes, a non-empty host, no empty path component. */
static bool key_is_valid(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n >= AUTHFILE_MAX_KEY || k[0] == '/' || k[n - 1] == '/')
		return false;
	for (const char *s = k; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\' || ch == '@')
			return false;
		if (s[0] == '/' && s[1] == '/')
			return false;
	}
	return true;
}

/* containers/image's normalizeAuthFileKey: a key with a scheme is a legacy
 * Docker key, of which only the host counts. */
static int normalise_key(const char *raw, char *out, size_t outsz)
{
	const char *s = raw;
	bool legacy = false;
	size_t n;

	if (strncmp(s, "https://", 8) == 0) {
		s += 8;
		legacy = true;
	} else if (strncmp(s, "http://", 7) == 0) {
		s += 7;
		legacy = true;
	}
	n = legacy ? strcspn(s, "/") : strlen(s);
	if (n == 0 || n >= outsz)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	if (legacy && (strcmp(out, "index.docker.io") == 0 ||
		       strcmp(out, "registry-1.docker.io") == 0))
		crisp_strlcpy(out, "docker.io", outsz);
	return key_is_valid(out) ? 0 : -1;
}

static bool secret_is_clean(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static int parse_entry(const char *key, json_t *v, struct authfile_entry *e, crisp_err_t *err)
{
	const char *mk;
	json_t *mv;

	if (!json_is_object(v))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "auth file: auths[\"%s\"] is not an object", key);
	json_object_foreach (v, mk, mv) {
		const char *s;
		size_t n;

		if (strcmp(mk, "auth") != 0 && strcmp(mk, "identitytoken") != 0)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "auth file: auths[\"%s\"]: unknown member \"%.64s\"", key,
					   mk);
		if (!json_is_string(mv))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "auth file: auths[\"%s\"].%s is not a string", key, mk);
		s = json_string_value(mv);
		n = json_string_length(mv);
		if (n > AUTHFILE_MAX_SECRET || strlen(s) != n || !secret_is_clean(s, n))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "auth file: auths[\"%s\"].%s is too long or holds "
					   "control characters",
					   key, mk);
		if (n == 0)
			continue;
		if (strcmp(mk, "identitytoken") == 0) {
			e->identity_token = xstrdup(s);
			continue;
		}
		{
			size_t cap = n / 4 * 3 + 3, bl = 0;
			char *dec = xcalloc(1, cap + 1), *colon;

			if (sodium_base642bin((unsigned char *)dec, cap, s, n, NULL, &bl, NULL,
					      sodium_base64_VARIANT_ORIGINAL) != 0 ||
			    strlen(dec) != bl || !secret_is_clean(dec, bl) ||
			    !(colon = strchr(dec, ':')) || colon == dec) {
				sodium_memzero(dec, cap + 1);
				free(dec);
				return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
						   "auth file: auths[\"%s\"].auth is not "
						   "base64(\"user:password\")",
						   key);
			}
			*colon = '\0';
			e->username = xstrdup(dec);
			e->password = xstrdup(colon + 1);
			sodium_memzero(dec, cap + 1);
			free(dec);
		}
	}
	return 0;
}

int authfile_parse(const char *buf, size_t len, struct authfile **out, crisp_err_t *err)
{
	json_error_t je;
	json_t *root, *auths;
	const char *k;
	json_t *v;
	struct authfile *af;

	*out = NULL;
	if (len > AUTHFILE_MAX_SIZE)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "auth file larger than %u bytes", AUTHFILE_MAX_SIZE);
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		/* je.text may quote input (a secret): name the place only */
		if (strstr(je.text, "duplicate"))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "auth file: line %d: duplicate key", je.line);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "auth file: not valid JSON (line %d, column %d)", je.line,
				   je.column);
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "auth file: not a JSON object");
	}
	json_object_foreach (root, k, v) {
		if (strcmp(k, "auths") == 0)
			continue;
		if (strcmp(k, "credHelpers") == 0 || strcmp(k, "credsStore") == 0)
			crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				    "auth file: credential helpers (%s) are not supported", k);
		else
			crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				    "auth file: unknown member \"%.64s\"", k);
		json_decref(root);
		return -1;
	}
	auths = json_object_get(root, "auths");
	if (auths && !json_is_object(auths)) {
		json_decref(root);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "auth file: \"auths\" is not an object");
	}
	if (auths && json_object_size(auths) > AUTHFILE_MAX_ENTRIES) {
		json_decref(root);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "auth file: more than %u registries", AUTHFILE_MAX_ENTRIES);
	}
	af = xcalloc(1, sizeof *af);
	af->e = xcalloc(auths && json_object_size(auths) ? json_object_size(auths) : 1,
			sizeof *af->e);
	if (auths) {
		json_object_foreach (auths, k, v) {
			char key[AUTHFILE_MAX_KEY];
			struct authfile_entry *e = &af->e[af->n];

			if (normalise_key(k, key, sizeof key) < 0) {
				crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					    "auth file: \"%.128s\" is not a registry[/repository] key",
					    k);
				goto fail;
			}
			for (size_t i = 0; i < af->n; i++)
				if (strcmp(af->e[i].key, key) == 0) {
					crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
						    "auth file: \"%s\" given twice", key);
					goto fail;
				}
			e->key = xstrdup(key);
			af->n++;
			if (parse_entry(key, v, e, err) < 0)
				goto fail;
		}
	}
	json_decref(root);
	*out = af;
	return 0;
fail:
	json_decref(root);
	authfile_free(af);
	return -1;
}

const struct authfile_entry *authfile_lookup(const struct authfile *af, const char *host,
					     const char *repo)
{
	char cand[AUTHFILE_MAX_KEY];
	size_t n;

	if (!af || !host || !*host)
		return NULL;
	if ((size_t)snprintf(cand, sizeof cand, "%s%s%s", host, repo && *repo ? "/" : "",
			     repo ? repo : "") >= sizeof cand)
		crisp_strlcpy(cand, host, sizeof cand);
	for (;;) {
		for (size_t i = 0; i < af->n; i++)
			if (strcmp(af->e[i].key, cand) == 0)
				return &af->e[i];
		n = strlen(cand);
		while (n > 0 && cand[n - 1] != '/')
			n--;
		if (n == 0)
			return NULL;
		cand[n - 1] = '\0';
	}
}

int authfile_load(const char *path, struct authfile **out, struct stat *sb, crisp_err_t *err)
{
	char *buf;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT) {
			memset(sb, 0, sizeof *sb);
			return 0;
		}
		return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "auth file %s", path);
	}
	if (fstat(fd, sb) < 0 || !S_ISREG(sb->st_mode)) {
		close(fd);
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
				   "auth file %s: not a regular file", path);
	}
	if (sb->st_size > (off_t)AUTHFILE_MAX_SIZE) {
		close(fd);
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
				   "auth file %s: larger than %u bytes", path, AUTHFILE_MAX_SIZE);
	}
	buf = xcalloc(1, (size_t)sb->st_size + 1);
	if (crisp_read_all(fd, buf, (size_t)sb->st_size) < 0) {
		int e = errno;
		close(fd);
		free(buf);
		return crisp_error(err, CRISP_FAILED_PRECONDITION, e, "auth file %s: read", path);
	}
	close(fd);
	rc = authfile_parse(buf, (size_t)sb->st_size, out, err);
	sodium_memzero(buf, (size_t)sb->st_size);
	free(buf);
	if (rc < 0) {
		err->code = CRISP_FAILED_PRECONDITION;
		return crisp_error_wrap(err, "%s", path);
	}
	return 0;
}

static bool ts_eq(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static int cache_load(struct authfile_cache *c, const char *path, crisp_err_t *err)
{
	struct authfile *af = NULL;
	struct stat sb;

	if (authfile_load(path, &af, &sb, err) < 0)
		return -1;
	authfile_free(c->af);
	c->af = af;
	c->loaded = true;
	c->dev = sb.st_dev;
	c->ino = sb.st_ino;
	c->size = sb.st_size;
	c->mtime = sb.st_mtim;
	c->ctime = sb.st_ctim;
	return 0;
}

int authfile_cache_set(struct authfile_cache *c, const char *path, crisp_err_t *err)
{
	if (!path || !*path) {
		authfile_cache_clear(c);
		return 0;
	}
	if (cache_load(c, path, err) < 0)
		return -1;
	if (!c->path || strcmp(c->path, path) != 0) {
		free(c->path);
		c->path = xstrdup(path);
	}
	return 0;
}

int authfile_cache_get(struct authfile_cache *c, const struct authfile **out, crisp_err_t *err)
{
	struct stat sb;
	bool changed;

	*out = NULL;
	if (!c->path || !*c->path)
		return 0;
	if (stat(c->path, &sb) < 0) {
		if (errno != ENOENT)
			return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "auth file %s",
					   c->path);
		memset(&sb, 0, sizeof sb);
	}
	changed = !c->loaded || sb.st_dev != c->dev || sb.st_ino != c->ino ||
		  sb.st_size != c->size || !ts_eq(sb.st_mtim, c->mtime) ||
		  !ts_eq(sb.st_ctim, c->ctime);
	if (changed && cache_load(c, c->path, err) < 0) {
		/* do not keep stale credentials for a file that changed */
		authfile_free(c->af);
		c->af = NULL;
		c->loaded = false;
		return -1;
	}
	*out = c->af;
	return 0;
}

void authfile_cache_clear(struct authfile_cache *c)
{
	authfile_free(c->af);
	free(c->path);
	memset(c, 0, sizeof *c);
}
