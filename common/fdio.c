/* common/fdio: see fdio.h. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fdio.h"

static int kept(int fd, const int *keep, size_t nkeep)
{
	for (size_t i = 0; i < nkeep; i++)
		if (keep[i] == fd)
			return 1;
	return 0;
}

/* close_range(2) over the gaps between the kept fds: no /proc, no memory
 * allocated (a forked child of a large process would fault in copy-on-write
 * pages for opendir's buffer), one syscall per gap.  -1 when the kernel
 * lacks it (before 5.9). */
static int close_gaps(int lowfd, const int *keep, size_t nkeep)
{
	int sorted[64];
	size_t n = 0;

	if (nkeep > sizeof sorted / sizeof sorted[0])
		return -1;
	for (size_t i = 0; i < nkeep; i++) {
		if (keep[i] < lowfd)
			continue;
		size_t j = n++;
		while (j > 0 && sorted[j - 1] > keep[i]) {
			sorted[j] = sorted[j - 1];
			j--;
		}
		sorted[j] = keep[i];
	}
	unsigned int from = (unsigned int)lowfd;
	for (size_t i = 0; i <= n; i++) {
		unsigned int to = i < n ? (unsigned int)sorted[i] : 0U;
		if (i < n && to <= from) {
			if (to == from)
				from = to + 1;
			continue;
		}
		if (syscall(SYS_close_range, from, i < n ? to - 1 : ~0U, 0U) < 0)
			return -1;
		if (i < n)
			from = to + 1;
	}
	return 0;
}

int crisp_closefrom(int lowfd, const int *keep, size_t nkeep)
{
	if (lowfd < 0)
		lowfd = 0;
	if (close_gaps(lowfd, keep, nkeep) == 0)
		return 0;

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
