#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "imaged/fsusage.h"

/* Inodes with more than one link, so each is counted once. */
struct inoset {
	uint64_t *keys; /* ino ^ (dev << 32) ... stored as pairs */
	uint64_t *devs;
	size_t cap, n;
};

static size_t ino_home(uint64_t dev, uint64_t ino, size_t cap)
{
	return (size_t)(((ino * 0x9e3779b97f4a7c15ull) ^ dev) >> 17) & (cap - 1);
}

/* 1: newly added, 0: already there, -1: out of memory. */
static int inoset_add(struct inoset *s, uint64_t dev, uint64_t ino)
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *k = calloc(cap, sizeof *k), *d = calloc(cap, sizeof *d);
		if (k == NULL || d == NULL) {
			free(k);
			free(d);
			return -1;
		}
		for (size_t i = 0; i < s->cap; i++) {
			if (s->keys[i] == 0)
				continue;
			size_t j = ino_home(s->devs[i], s->keys[i], cap);
			while (k[j] != 0)
				j = (j + 1) & (cap - 1);
			k[j] = s->keys[i];
			d[j] = s->devs[i];
		}
		free(s->keys);
		free(s->devs);
		s->keys = k;
		s->devs = d;
		s->cap = cap;
	}
	/* inode 0 does not exist on Linux filesystems: it marks a free slot. */
	for (size_t j = ino_home(dev, ino, s->cap);; j = (j + 1) & (s->cap - 1)) {
		if (s->keys[j] == 0) {
			s->keys[j] = ino;
			s->devs[j] = dev;
			s->n++;
			return 1;
		}
		if (s->keys[j] == ino && s->devs[j] == dev)
			return 0;
	}
}

int fs_usage(int top, uint64_t *bytes, uint64_t *inodes, crisp_err_t *err)
{
	DIR *stack[FS_USAGE_MAX_DEPTH];
	int depth = 0, r = -1;
	struct inoset seen = { 0 };
	struct stat root;
	int fd;

	*bytes = 0;
	*inodes = 0;
	if (fstat(top, &root) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "image store");
	*bytes += (uint64_t)root.st_blocks * 512;
	*inodes += 1;
	fd = openat(top, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (stack[0] = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return crisp_error(err, CRISP_INTERNAL, errno, "image store");
	}
	depth = 1;
	while (depth > 0) {
		DIR *d = stack[depth - 1];
		struct dirent *e;
		struct stat st;

		errno = 0;
		e = readdir(d);
		if (e == NULL) {
			if (errno != 0) {
				crisp_error(err, CRISP_INTERNAL, errno, "image store: reading a directory");
				goto out;
			}
			closedir(d);
			depth--;
			continue;
		}
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* removed while we walk */
			crisp_error(err, CRISP_INTERNAL, errno, "image store: %s", e->d_name);
			goto out;
		}
		if (st.st_dev != root.st_dev)
			continue; /* a mount inside the store is not the store */
		if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
			int added = inoset_add(&seen, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
			if (added < 0) {
				crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "image store walk");
				goto out;
			}
			if (added == 0)
				continue;
		}
		*bytes += (uint64_t)st.st_blocks * 512;
		*inodes += 1;
		if (S_ISDIR(st.st_mode)) {
			if (depth == FS_USAGE_MAX_DEPTH) {
				crisp_error(err, CRISP_INTERNAL, 0, "image store deeper than %d levels", FS_USAGE_MAX_DEPTH);
				goto out;
			}
			fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				if (errno == ENOENT)
					continue;
				crisp_error(err, CRISP_INTERNAL, errno, "image store: %s", e->d_name);
				goto out;
			}
			if ((stack[depth] = fdopendir(fd)) == NULL) {
				close(fd);
				crisp_error(err, CRISP_INTERNAL, errno, "image store: %s", e->d_name);
				goto out;
			}
			depth++;
		}
	}
	r = 0;
out:
	while (depth > 0)
		closedir(stack[--depth]);
	free(seen.keys);
	free(seen.devs);
	return r;
}
