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

int crisp_parse_quantity(const char *s, uint64_t *out)
{
	static const struct { const char *suf; uint64_t mul; } sufs[] = {
		{ "Ki", 1ULL << 10 }, { "Mi", 1ULL << 20 }, { "Gi", 1ULL << 30 },
		{ "Ti", 1ULL << 40 }, { "Pi", 1ULL << 50 }, { "Ei", 1ULL << 60 },
		{ "k", 1000ULL }, { "M", 1000000ULL }, { "G", 1000000000ULL },
		{ "T", 1000000000000ULL }, { "P", 1000000000000000ULL }, { "E", 1000000000000000000ULL },
		{ "", 1 },
	};
	uint64_t ip = 0, frac = 0, fscale = 1, mul = 0;
	const char *p = s;
	size_t nd = 0;
	bool sticky = false; /* a non-zero digit past the 18 kept */

	if (s == NULL || *s == '\0' || strlen(s) > 64)
		return -1;
	for (; *p >= '0' && *p <= '9'; p++, nd++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (ip > UINT64_MAX / 10 || (ip == UINT64_MAX / 10 && d > UINT64_MAX % 10))
			return -1;
		ip = ip * 10 + d;
	}
	if (*p == '.') {
		size_t fd = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, fd++) {
			if (fd < 18) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				fscale *= 10;
			} else if (*p != '0') {
				sticky = true;
			}
		}
		if (fd == 0)
			return -1;
		nd += fd;
	}
	if (nd == 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(sufs); i++)
		if (strcmp(p, sufs[i].suf) == 0) {
			mul = sufs[i].mul;
			break;
		}
	if (mul == 0)
		return -1;
	if (ip != 0 && mul > UINT64_MAX / ip)
		return -1;
	ip *= mul;
	/* the fraction, rounded up as Kubernetes rounds quantities up */
	if (frac != 0 || sticky) {
		/* frac < fscale <= 10^18 and mul <= 2^60: the product fits 128 bits.
		 * Rounded up; digits past the 18th only matter when the rest is exact. */
		unsigned __int128 prod = (unsigned __int128)frac * mul;
		unsigned __int128 f = (prod + fscale - 1) / fscale;
		if (sticky && prod % fscale == 0)
			f++;
		if (f > UINT64_MAX - ip)
			return -1;
		ip += (uint64_t)f;
	}
	*out = ip;
	return 0;
}
