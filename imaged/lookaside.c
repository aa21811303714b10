/*
 * crisp: lookaside signature URLs and the file:// reader.  See lookaside.h.
 */
#include "imaged/lookaside.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "policy/dockerref.h"

enum base_kind { BASE_FILE, BASE_HTTP };

/* Validate base; *path_off is where a file:// base's path starts. */
static int check_base(const char *base, enum base_kind *kind, size_t *path_off, crisp_err_t *err)
{
	const char *rest;

	for (const char *p = base; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '%' || c == '\\')
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "lookaside URL %.200s: character 0x%02x not allowed", base, c);
	}
	if (strncasecmp(base, "file://", 7) == 0) {
		*kind = BASE_FILE;
		*path_off = 7;
		if (base[7] != '/')
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "lookaside URL %.200s: file URLs must be file:///absolute/path", base);
		return 0;
	}
	if (strncasecmp(base, "https://", 8) == 0)
		rest = base + 8;
	else if (strncasecmp(base, "http://", 7) == 0)
		rest = base + 7;
	else
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "lookaside URL %.200s: scheme must be file, http or https", base);
	*kind = BASE_HTTP;
	*path_off = 0;
	if (*rest == '\0' || *rest == '/' || *rest == '@' || strchr(rest, '@') != NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "lookaside URL %.200s: a host (and no user info) is required", base);
	return 0;
}

static int sig_path(const char *base, size_t base_off, const char *image_ref, const char *manifest_digest,
		    unsigned n, char *out, size_t outsz, crisp_err_t *err)
{
	struct dockerref ref;
	const char *colon, *repo;
	int w;

	if (dockerref_parse(image_ref, &ref, err) != 0)
		return crisp_error_wrap(err, "lookaside");
	if (manifest_digest == NULL || !dockerref_valid_digest(manifest_digest, strlen(manifest_digest)))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "lookaside: invalid manifest digest");
	if (n < 1)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "lookaside: signature index starts at 1");
	colon = strchr(manifest_digest, ':');
	repo = ref.name + ref.domain_len + 1; /* reference.Path: without the host */
	w = snprintf(out, outsz, "%s/%s@%.*s=%s/signature-%u", base + base_off, repo,
		     (int)(colon - manifest_digest), manifest_digest, colon + 1, n);
	if (w < 0 || (size_t)w >= outsz)
		return crisp_error(err, CRISP_OUT_OF_RANGE, 0, "lookaside URL too long");
	return 0;
}

int lookaside_sig_url(const char *base, const char *image_ref, const char *manifest_digest, unsigned n,
		      char *out, size_t outsz, crisp_err_t *err)
{
	enum base_kind kind;
	size_t off;

	if (check_base(base, &kind, &off, err) != 0)
		return -1;
	return sig_path(base, 0, image_ref, manifest_digest, n, out, outsz, err);
}

/* 0 and *data set; 1 when path does not exist; -1 on error. */
static int read_sig(const char *path, uint8_t **data, size_t *len, crisp_err_t *err)
{
	cleanup_close int fd = -1;
	struct stat st;
	uint8_t *buf;
	size_t got = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		return 1;
	if (fd < 0)
		return crisp_error(err, CRISP_UNAVAILABLE, errno, "opening %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0)
		return crisp_error(err, CRISP_UNAVAILABLE, errno, "stat %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return crisp_error(err, CRISP_PERMISSION_DENIED, 0, "%s is not a regular file", path);
	if ((uint64_t)st.st_size > LOOKASIDE_SIG_MAX)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0, "%s is larger than %u bytes", path,
				   LOOKASIDE_SIG_MAX);
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
	for (;;) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			return crisp_error(err, CRISP_UNAVAILABLE, e, "reading %s: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got > (size_t)st.st_size) {
			free(buf);
			return crisp_error(err, CRISP_UNAVAILABLE, 0, "%s changed while read", path);
		}
	}
	*data = buf;
	*len = got;
	return 0;
}

int lookaside_read_file(const char *base, const char *image_ref, const char *manifest_digest,
			struct lookaside_sigs *out, crisp_err_t *err)
{
	char path[LOOKASIDE_URL_MAX];
	enum base_kind kind;
	size_t off;

	memset(out, 0, sizeof *out);
	if (check_base(base, &kind, &off, err) != 0)
		return -1;
	if (kind != BASE_FILE)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "lookaside %.200s is not a file:// URL", base);
	for (unsigned n = 1;; n++) {
		uint8_t *data = NULL;
		size_t len = 0;
		int r;

		if (sig_path(base, off, image_ref, manifest_digest, n, path, sizeof path, err) != 0)
			return -1;
		r = read_sig(path, &data, &len, err);
		if (r < 0)
			return -1;
		if (r == 1)
			return 0;
		if (n > LOOKASIDE_MAX_SIGS) {
			free(data);
			return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0, "more than %u lookaside signatures",
					   LOOKASIDE_MAX_SIGS);
		}
		out->v[out->n].data = data;
		out->v[out->n].len = len;
		out->n++;
	}
}

void lookaside_sigs_free(struct lookaside_sigs *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].data);
	s->n = 0;
}
