#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

size_t crisp_strlcpy(char *dst, const char *src, size_t dstsize)
{
	size_t n = strlen(src);

	if (dstsize > 0) {
		size_t c = n < dstsize - 1 ? n : dstsize - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		fatal("out of memory");
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (p == NULL)
		fatal("out of memory");
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (p == NULL)
		fatal("out of memory");
	return p;
}

static int kept(int fd, const int *keep, size_t nkeep)
{
	for (size_t i = 0; i < nkeep; i++)
		if (keep[i] == fd)
			return 1;
	return 0;
}

int crisp_closefrom(int lowfd, const int *keep, size_t nkeep)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int dfd;

	if (d == NULL) {
		/* No /proc: close a bounded range by hand. */
		long max = sysconf(_SC_OPEN_MAX);
		if (max < 0 || max > 65536)
			max = 65536;
		for (int fd = lowfd; fd < max; fd++)
			if (!kept(fd, keep, nkeep))
				close(fd);
		return 0;
	}
	dfd = dirfd(d);
	while ((e = readdir(d)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end != '\0' || e->d_name[0] == '\0' || fd < lowfd || fd == dfd)
			continue;
		if (!kept((int)fd, keep, nkeep))
			close((int)fd);
	}
	closedir(d);
	return 0;
}

uint64_t crisp_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t crisp_now_ms(void)
{
	return crisp_now_ns() / 1000000ull;
}

int crisp_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int crisp_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EPIPE;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int crisp_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -1;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl);
}

int crisp_set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0)
		return -1;
	fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
	return fcntl(fd, F_SETFD, fl);
}

int crisp_mkdir_p(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	char buf[4096];
	size_t n = strlen(path);
	struct stat st;

	if (n == 0 || n >= sizeof buf || path[0] != '/') {
		errno = EINVAL;
		return -1;
	}
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -1;
	/* Enforce what we want on the final component, refusing a symlink. */
	if (lstat(buf, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && lchown(buf, uid, gid) < 0)
		return -1;
	if ((st.st_mode & 07777) != mode && chmod(buf, mode) < 0)
		return -1;
	return 0;
}

void crisp_hex(const uint8_t *in, size_t len, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int crisp_read_regular(int fd, size_t max, const char *what, uint8_t **out, size_t *outlen, crisp_err_t *err)
{
	struct stat st;
	uint8_t *buf;
	size_t len = 0;

	if (fstat(fd, &st) != 0)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "stat %s: %s", what, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "%s is not a regular file", what);
	if ((uint64_t)st.st_size > max)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "%s is larger than %zu bytes", what, max);
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
	for (;;) {
		/* One byte more than the size: a file that grew is noticed. */
		ssize_t r = read(fd, buf + len, (size_t)st.st_size + 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			return crisp_error(err, CRISP_FAILED_PRECONDITION, e, "reading %s: %s", what, strerror(e));
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > (size_t)st.st_size) {
			free(buf);
			return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "%s changed while read", what);
		}
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

int crisp_read_path(const char *path, size_t max, const char *label, uint8_t **out, size_t *outlen,
		    crisp_err_t *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	char what[4200];
	int rc;

	if (fd < 0)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "opening %s %s: %s", label, path,
				   strerror(errno));
	snprintf(what, sizeof what, "%s %s", label, path);
	rc = crisp_read_regular(fd, max, what, out, outlen, err);
	close(fd);
	return rc;
}
