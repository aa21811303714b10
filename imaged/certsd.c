/*
 * imaged: per-registry CA files from a certs.d directory.  See certsd.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "imaged/certsd.h"

struct buf {
	char *p;
	size_t len;
};

/* Append the file name (relative to dirfd) to b, bounded. */
static int append_file(int dirfd, const char *name, const char *what, struct buf *b, bool must,
		       crisp_err_t *err)
{
	struct stat sb;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	char *np;

	if (fd < 0) {
		if (!must && (errno == ENOENT || errno == EACCES))
			return 0;
		return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "%s", what);
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "%s: not a regular file",
				   what);
	}
	if ((uint64_t)sb.st_size > CERTSD_MAX_BYTES - b->len) {
		close(fd);
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
				   "%s: CA bundle larger than %u bytes", what, CERTSD_MAX_BYTES);
	}
	np = realloc(b->p, b->len + (size_t)sb.st_size + 2);
	if (!np) {
		close(fd);
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "%s", what);
	}
	b->p = np;
	if (crisp_read_all(fd, b->p + b->len, (size_t)sb.st_size) < 0) {
		int e = errno;
		close(fd);
		return crisp_error(err, CRISP_FAILED_PRECONDITION, e, "%s: read", what);
	}
	close(fd);
	if (must && !memmem(b->p + b->len, (size_t)sb.st_size, "-----BEGIN CERTIFICATE-----", 27))
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
				   "%s: no PEM certificate in it", what);
	b->len += (size_t)sb.st_size;
	b->p[b->len++] = '\n';
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool host_is_clean(const char *h)
{
	if (!*h || strcmp(h, ".") == 0 || strcmp(h, "..") == 0 || strlen(h) > 255)
		return false;
	for (; *h; h++)
		if (*h == '/' || (unsigned char)*h <= 0x20 || (unsigned char)*h >= 0x7f)
			return false;
	return true;
}

int certsd_bundle(const char *dir, const char *host, char **pem, size_t *len, crisp_err_t *err)
{
	char *names[CERTSD_MAX_FILES];
	size_t nn = 0;
	struct buf b = { NULL, 0 };
	struct dirent *de;
	DIR *d;
	int dfd, rc = -1;
	char what[4400];

	*pem = NULL;
	*len = 0;
	if (!dir || !*dir || !host || !host_is_clean(host))
		return 0;
	{
		int top = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (top < 0)
			return 0; /* no certs.d at all */
		dfd = openat(top, host, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		close(top);
	}
	if (dfd < 0)
		return 0;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "%s/%s", dir, host);
	}
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n <= 4 || strcmp(de->d_name + n - 4, ".crt") != 0 || de->d_name[0] == '.')
			continue;
		if (nn == CERTSD_MAX_FILES) {
			crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
				    "%s/%s: more than %d .crt files", dir, host, CERTSD_MAX_FILES);
			goto out;
		}
		names[nn++] = xstrdup(de->d_name);
	}
	if (nn == 0) {
		rc = 0;
		goto out;
	}
	qsort(names, nn, sizeof *names, cmp_names);
	/* system CAs first: certs.d adds to them */
	if (append_file(AT_FDCWD, CERTSD_SYSTEM_BUNDLE, CERTSD_SYSTEM_BUNDLE, &b, false, err) < 0)
		goto out;
	for (size_t i = 0; i < nn; i++) {
		snprintf(what, sizeof what, "%s/%s/%s", dir, host, names[i]);
		if (append_file(dirfd(d), names[i], what, &b, true, err) < 0)
			goto out;
	}
	*pem = b.p;
	*len = b.len;
	b.p = NULL;
	rc = 0;
out:
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(b.p);
	closedir(d);
	return rc;
}
