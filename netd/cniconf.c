#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/util.h"
#include "netd/cniconf.h"

static const char *str_field(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int check_plugin(json_t *p, size_t idx, crisp_err_t *err)
{
	const char *type;

	if (!json_is_object(p))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "plugin %zu is not an object", idx);
	type = str_field(p, "type");
	if (type == NULL || type[0] == '\0' || strlen(type) > 255 || strchr(type, '/') || !strcmp(type, "..") ||
	    !strcmp(type, "."))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "plugin %zu: \"type\" must name a plugin binary", idx);
	return 0;
}

int cni_conf_parse(const char *text, size_t len, int is_list, struct cni_net *net, crisp_err_t *err)
{
	json_error_t je;
	json_t *root, *plugins;
	const char *name, *ver;
	int r = -1;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "line %d: %s", je.line, je.text);
	if (!json_is_object(root)) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "not a JSON object");
		goto out;
	}
	name = str_field(root, "name");
	ver = str_field(root, "cniVersion");
	if (name == NULL || name[0] == '\0' || strlen(name) >= sizeof net->name) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "missing or bad \"name\"");
		goto out;
	}
	if (ver == NULL || strlen(ver) >= sizeof net->cni_version) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "missing or bad \"cniVersion\"");
		goto out;
	}
	if (is_list) {
		plugins = json_object_get(root, "plugins");
		if (!json_is_array(plugins) || json_array_size(plugins) == 0 || json_array_size(plugins) > 64) {
			crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "\"plugins\" must be a non-empty list");
			goto out;
		}
		for (size_t i = 0; i < json_array_size(plugins); i++)
			if (check_plugin(json_array_get(plugins, i), i, err) < 0)
				goto out;
		net->nplugins = json_array_size(plugins);
	} else {
		if (check_plugin(root, 0, err) < 0)
			goto out;
		net->nplugins = 1;
	}
	crisp_strlcpy(net->name, name, sizeof net->name);
	crisp_strlcpy(net->cni_version, ver, sizeof net->cni_version);
	r = 0;
out:
	json_decref(root);
	return r;
}

static int has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n > m && strcmp(s + n - m, suf) == 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_conf(int dfd, const char *name, char **out, size_t *len)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	char *buf;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)CNI_MAX_CONF_SIZE) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL || crisp_read_all(fd, buf, (size_t)st.st_size) < 0) {
		free(buf);
		close(fd);
		return -1;
	}
	close(fd);
	buf[st.st_size] = '\0';
	*out = buf;
	*len = (size_t)st.st_size;
	return 0;
}

/*
 * The answer of cni_conf_find is cached, keyed by the directory and the
 * wanted name plus a fingerprint of what decides it: the directory's
 * identity and times, and every candidate file's name, identity, size and
 * times (lstat, the same view read_conf takes with O_NOFOLLOW).  NetworkReady
 * asks on every CRI Status call; an unchanged directory then costs one
 * readdir and one fstatat per file, no read and no JSON parse.  A file
 * written in place within one timestamp tick of the cached look-up could
 * keep its times: as git does with "racily clean" entries, an answer is not
 * kept while any stamp is within CONF_RACY_NS of the clock when it was
 * computed.  netd is single-threaded; its forked helpers get a copy.
 */
#define CONF_RACY_NS 2000000000ull
#define CONF_MAX_FILES 1024

static struct {
	bool valid;
	char dir[4096];
	char want[256];
	uint64_t fp;
	int r;             /* the answer: 0 found, -1 error */
	struct cni_net net;
	crisp_err_t err;
} conf_cache;

static struct cni_conf_stats conf_stats;

void cni_conf_get_stats(struct cni_conf_stats *st)
{
	*st = conf_stats;
}

void cni_conf_cache_drop(void)
{
	conf_cache.valid = false;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t ts_ns(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec;
}

/* Mix one stat into h; *newest gets the latest of its times. */
static uint64_t fp_stat(uint64_t h, const struct stat *st, uint64_t *newest)
{
	uint64_t v[7] = { (uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_mode,
			  (uint64_t)st->st_size, ts_ns(&st->st_mtim), ts_ns(&st->st_ctim), 0 };

	if (v[4] > *newest)
		*newest = v[4];
	if (v[5] > *newest)
		*newest = v[5];
	return fnv(h, v, sizeof v);
}

int cni_conf_find(const char *dir, const char *want_name, struct cni_net *net, crisp_err_t *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	char **names = NULL, last_err[CRISP_ERR_MSG_MAX] = "";
	size_t n = 0, cap = 0;
	int found = -1, r;
	uint64_t fp = 0xcbf29ce484222325ull, newest = 0;
	bool fp_ok;

	conf_stats.lookups++;
	if (want_name == NULL)
		want_name = "";
	if (d == NULL)
		return crisp_error(err, CRISP_NOT_FOUND, errno, "CNI configuration directory %s", dir);
	fp_ok = fstat(dirfd(d), &st) == 0 && strlen(dir) < sizeof conf_cache.dir &&
		strlen(want_name) < sizeof conf_cache.want;
	if (fp_ok)
		fp = fp_stat(fp, &st, &newest);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' ||
		    !(has_suffix(e->d_name, ".conflist") || has_suffix(e->d_name, ".conf") || has_suffix(e->d_name, ".json")))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof *names);
			if (nn == NULL) {
				fp_ok = false;
				break;
			}
			names = nn;
		}
		if ((names[n] = strdup(e->d_name)) != NULL)
			n++;
		else
			fp_ok = false;
		if (n >= CONF_MAX_FILES)
			break;
	}
	if (n > 1)
		qsort(names, n, sizeof *names, cmp_names);
	for (size_t i = 0; i < n && fp_ok; i++) {
		fp = fnv(fp, names[i], strlen(names[i]) + 1);
		if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
			fp = fp_stat(fp, &st, &newest);
		else
			fp = fnv(fp, "-", 1);
	}
	if (fp_ok && conf_cache.valid && conf_cache.fp == fp && !strcmp(conf_cache.dir, dir) &&
	    !strcmp(conf_cache.want, want_name)) {
		conf_stats.hits++;
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		closedir(d);
		if (conf_cache.r == 0) {
			*net = conf_cache.net;
			return 0;
		}
		if (err != NULL)
			*err = conf_cache.err;
		return -1;
	}
	conf_stats.scans++;
	for (size_t i = 0; i < n && found < 0; i++) {
		char *text = NULL;
		size_t len = 0;
		crisp_err_t e2 = CRISP_ERR_INIT;
		struct cni_net cand;

		memset(&cand, 0, sizeof cand);
		if (read_conf(dirfd(d), names[i], &text, &len) < 0) {
			snprintf(last_err, sizeof last_err, "%.200s: %s", names[i], strerror(errno));
			continue;
		}
		if (cni_conf_parse(text, len, has_suffix(names[i], ".conflist"), &cand, &e2) < 0) {
			snprintf(last_err, sizeof last_err, "%.200s: %.300s", names[i], e2.msg);
		} else if (want_name[0] == '\0' || !strcmp(want_name, cand.name)) {
			snprintf(cand.file, sizeof cand.file, "%s/%s", dir, names[i]);
			*net = cand;
			found = 0;
		}
		free(text);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	if (found == 0) {
		r = 0;
	} else {
		crisp_err_t e3 = CRISP_ERR_INIT;
		if (want_name[0])
			crisp_error(&e3, CRISP_NOT_FOUND, 0, "no valid CNI network named %s in %s%s%s", want_name, dir,
				    last_err[0] ? "; last error: " : "", last_err);
		else
			crisp_error(&e3, CRISP_NOT_FOUND, 0, "no valid CNI network configuration in %s%s%s", dir,
				    last_err[0] ? "; last error: " : "", last_err);
		if (err != NULL)
			*err = e3;
		r = -1;
		conf_cache.err = e3;
	}
	conf_cache.valid = false;
	struct timespec now;
	if (fp_ok && clock_gettime(CLOCK_REALTIME, &now) == 0 && newest + CONF_RACY_NS < ts_ns(&now)) {
		conf_cache.valid = true;
		conf_cache.fp = fp;
		conf_cache.r = r;
		if (r == 0)
			conf_cache.net = *net;
		crisp_strlcpy(conf_cache.dir, dir, sizeof conf_cache.dir);
		crisp_strlcpy(conf_cache.want, want_name, sizeof conf_cache.want);
	}
	return r;
}

void cni_list_free(struct cni_list *l)
{
	if (l == NULL)
		return;
	json_decref(l->root);
	json_decref(l->plugins);
	l->root = l->plugins = NULL;
}

int cni_list_from_json(json_t *root, int is_list, struct cni_list *l, crisp_err_t *err)
{
	char *text;
	int r;

	memset(l, 0, sizeof *l);
	text = json_dumps(root, JSON_COMPACT);
	if (text == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "network configuration cannot be serialised");
	r = cni_list_parse(text, strlen(text), is_list, l, err);
	free(text);
	return r;
}

int cni_list_parse(const char *text, size_t len, int is_list, struct cni_list *l, crisp_err_t *err)
{
	struct cni_net net;
	json_error_t je;
	json_t *dc;

	memset(l, 0, sizeof *l);
	memset(&net, 0, sizeof net);
	if (cni_conf_parse(text, len, is_list, &net, err) < 0)
		return -1;
	l->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (l->root == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "line %d: %s", je.line, je.text);
	if (is_list) {
		l->plugins = json_incref(json_object_get(l->root, "plugins"));
		dc = json_object_get(l->root, "disableCheck");
		if (dc != NULL && !json_is_boolean(dc)) {
			cni_list_free(l);
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "\"disableCheck\" must be a boolean");
		}
		l->disable_check = json_is_true(dc);
	} else {
		l->plugins = json_array();
		if (l->plugins == NULL || json_array_append(l->plugins, l->root) < 0) {
			cni_list_free(l);
			return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
		}
	}
	crisp_strlcpy(l->name, net.name, sizeof l->name);
	crisp_strlcpy(l->cni_version, net.cni_version, sizeof l->cni_version);
	return 0;
}

int cni_list_load(const struct cni_net *net, struct cni_list *l, crisp_err_t *err)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	memset(l, 0, sizeof *l);
	if (read_conf(AT_FDCWD, net->file, &text, &len) < 0)
		return crisp_error(err, CRISP_NOT_FOUND, errno, "CNI configuration %s", net->file);
	r = cni_list_parse(text, len, has_suffix(net->file, ".conflist"), l, err);
	free(text);
	if (r == 0 && strcmp(l->name, net->name) != 0) {
		cni_list_free(l);
		return crisp_error(err, CRISP_ABORTED, 0, "CNI configuration %s changed while being read", net->file);
	}
	return r;
}
