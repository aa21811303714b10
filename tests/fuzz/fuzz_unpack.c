/*
 * libFuzzer: imaged layer unpacking (tar entry handling, whiteouts, limits,
 * decompression).  Each input is a layer blob (memfd), extracted into a
 * fresh directory that is then removed with unpack_remove_tree(); after
 * each input the base directory must hold only its untouched sentinel, so
 * anything written outside the target aborts.  Best run as root (chown,
 * mknod and trusted.* xattrs are then exercised; CI runs as root).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "common/err.h"
#include "imaged/unpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int base_fd = -1;
static char base_name[64];

static void cleanup(void)
{
	int tmp = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (tmp >= 0) {
		(void)unpack_remove_tree(tmp, base_name, NULL);
		close(tmp);
	}
}

static void check_base(void)
{
	char buf[16] = { 0 };
	struct dirent *de;
	int n = 0, fd;
	DIR *d;

	fd = openat(base_fd, "sentinel", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof buf) != 9 || memcmp(buf, "sentinel\n", 9) != 0)
		abort();
	close(fd);
	fd = openat(base_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fdopendir(fd);
	if (d == NULL)
		abort();
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (strcmp(de->d_name, "sentinel") != 0)
			abort(); /* something escaped the target, or was left behind */
		n++;
	}
	closedir(d);
	if (n != 1)
		abort();
}

static void init(void)
{
	char tmpl[] = "/tmp/crisp-fuzz-unpack.XXXXXX";
	int fd;

	if (mkdtemp(tmpl) == NULL)
		abort();
	base_fd = open(tmpl, O_PATH | O_DIRECTORY | O_CLOEXEC);
	fd = openat(base_fd, "sentinel", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (base_fd < 0 || fd < 0 || write(fd, "sentinel\n", 9) != 9)
		abort();
	close(fd);
	snprintf(base_name, sizeof base_name, "%s", tmpl + strlen("/tmp/"));
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct unpack_limits lim = {
		.max_uncompressed = 8 << 20, .max_entries = 2000, .max_path = 1024,
	};
	struct unpack_result res;
	crisp_err_t err = CRISP_ERR_INIT;
	int mfd, target;

	if (size > (1 << 20))
		return 0;
	if (base_fd < 0)
		init();
	mfd = memfd_create("layer", MFD_CLOEXEC);
	if (mfd < 0)
		abort();
	if (size > 0 && write(mfd, data, size) != (ssize_t)size)
		abort();
	if (lseek(mfd, 0, SEEK_SET) != 0)
		abort();
	if (mkdirat(base_fd, "t", 0755) < 0)
		abort();
	target = openat(base_fd, "t", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (target < 0)
		abort();
	(void)unpack_layer(mfd, UNPACK_COMPRESSION_ANY, target, &lim, &res, &err);
	close(target);
	close(mfd);
	if (unpack_remove_tree(base_fd, "t", &err) != 0) {
		fprintf(stderr, "remove: %s\n", err.msg);
		abort();
	}
	check_base();
	return 0;
}
