/*
 * crisp imaged: safe extraction of one OCI layer (see unpack.h for the
 * rules).  libarchive parses; every filesystem change is ours, made with
 * fd-relative syscalls below the layer root, never through a symlink.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <linux/openat2.h>

#include <archive.h>
#include <archive_entry.h>
#include <sodium.h>

#include "common/err.h"
#include "common/util.h"
#include "imaged/unpack.h"

/* setxattrat(2), Linux 6.13; Debian 12's headers do not know it. */
#ifndef SYS_setxattrat
#if defined(__x86_64__) || defined(__aarch64__) || defined(__riscv)
#define SYS_setxattrat 463
#endif
#endif

struct crisp_xattr_args {
	uint64_t value;
	uint32_t size;
	uint32_t flags;
};

#define UNPACK_BUF (128 * 1024)
#define OPAQUE_XATTR "trusted.overlay.opaque"
#define WH_PREFIX ".wh."
#define WH_META ".wh..wh."
#define WH_OPAQUE ".wh..wh..opq"
#define XATTR_VALUE_MAX 65536

/* A directory whose mode and times are applied after the whole layer. */
struct dir_meta {
	char *path; /* cleaned, relative to the root; "" is the root */
	mode_t mode;
	struct timespec ts[2];
};

struct unpacker {
	struct archive *raw; /* decompressor: filters gzip/zstd/none, format raw */
	struct archive *tar; /* tar parser fed from raw through pull_cb */
	int layer_fd;
	int root; /* the target directory */
	uint64_t max_uncompressed, max_entries;
	uint32_t max_path;
	uint64_t total, entries;
	bool raw_eof, over_limit;
	crypto_hash_sha256_state sha;
	uint8_t *inbuf; /* compressed bytes read from layer_fd */

	/* Last resolved parent directory, reused for the next entry. */
	char *cache_path;
	int cache_fd;

	struct dir_meta *dirs;
	size_t ndirs, capdirs;

	char ename[160]; /* printable form of the current entry's path */
	crisp_err_t *err;
};

/* ---- small helpers ------------------------------------------------------ */

static void printable(char *out, size_t outsz, const char *in)
{
	size_t i, o = 0;

	for (i = 0; in != NULL && in[i] != '\0' && o + 4 < outsz; i++) {
		unsigned char c = (unsigned char)in[i];
		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (in != NULL && in[i] != '\0' && o + 4 <= outsz) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

__attribute__((format(printf, 4, 5)))
static int entry_error(struct unpacker *u, int code, int errnum, const char *fmt, ...)
{
	char msg[CRISP_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return crisp_error(u->err, code, errnum, "layer entry '%s': %s", u->ename, msg);
}

static int openat2_beneath(int dirfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
			   RESOLVE_NO_XDEV,
	};
	long r;

	do
		r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
	while (r < 0 && errno == EAGAIN);
	return (int)r;
}

static int write_all_at(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/*
 * Clean a layer path into out: drop "." components, a leading "./" and one
 * trailing '/'; refuse what unpack.h says.  "" is the root.  Returns NULL
 * or the reason for refusing.
 */
static const char *clean_path(const char *in, char *out, size_t outsz, uint32_t max_path)
{
	size_t len = strlen(in), o = 0;
	const char *p = in;

	if (len == 0)
		return "empty path";
	if (len > max_path || len >= outsz)
		return "path too long";
	if (in[0] == '/')
		return "absolute path";
	while (*p != '\0') {
		const char *slash = strchr(p, '/');
		size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);

		if (n == 0)
			return "empty path component";
		if (n > NAME_MAX)
			return "path component too long";
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return "'..' in path";
		if (!(n == 1 && p[0] == '.')) {
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		if (slash == NULL)
			break;
		p = slash + 1;
		/* One trailing slash ends the path (a directory). */
		if (*p == '\0')
			break;
	}
	out[o] = '\0';
	return NULL;
}

/* ---- the decompressed stream: hashed and counted on the way ---------- */

static la_ssize_t raw_read_cb(struct archive *a, void *p, const void **buf)
{
	struct unpacker *u = p;
	ssize_t n;

	do
		n = read(u->layer_fd, u->inbuf, UNPACK_BUF);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		archive_set_error(a, errno, "read layer");
		return -1;
	}
	*buf = u->inbuf;
	return n;
}

/* Next block of decompressed bytes: 1 with a block, 0 at the end, -1. */
static int pull(struct unpacker *u, const void **buf, size_t *len, struct archive *report)
{
	for (;;) {
		la_int64_t off;
		int r;

		if (u->raw_eof)
			return 0;
		r = archive_read_data_block(u->raw, buf, len, &off);
		if (r == ARCHIVE_EOF) {
			u->raw_eof = true;
			return 0;
		}
		if (r != ARCHIVE_OK) {
			archive_set_error(report, EIO, "decompress: %s",
					  archive_error_string(u->raw) != NULL ?
					  archive_error_string(u->raw) : "error");
			return -1;
		}
		if (*len == 0)
			continue;
		if (*len > u->max_uncompressed - u->total) {
			u->over_limit = true;
			archive_set_error(report, EFBIG, "uncompressed size limit");
			return -1;
		}
		u->total += *len;
		crypto_hash_sha256_update(&u->sha, *buf, *len);
		return 1;
	}
}

static la_ssize_t tar_read_cb(struct archive *a, void *p, const void **buf)
{
	struct unpacker *u = p;
	size_t len = 0;
	int r = pull(u, buf, &len, a);

	if (r < 0)
		return -1;
	return r == 0 ? 0 : (la_ssize_t)len;
}

static int open_readers(struct unpacker *u, enum unpack_compression comp)
{
	struct archive_entry *e;
	int r, code, want;

	u->raw = archive_read_new();
	u->tar = archive_read_new();
	if (u->raw == NULL || u->tar == NULL)
		return crisp_error(u->err, CRISP_INTERNAL, ENOMEM, "layer: archive_read_new");
	/* ARCHIVE_WARN here means "through an external program": refused. */
	if (archive_read_support_filter_none(u->raw) != ARCHIVE_OK ||
	    archive_read_support_filter_gzip(u->raw) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(u->raw) != ARCHIVE_OK ||
	    archive_read_support_format_raw(u->raw) != ARCHIVE_OK)
		return crisp_error(u->err, CRISP_INTERNAL, 0,
				   "layer: libarchive lacks built-in gzip/zstd: %s",
				   archive_error_string(u->raw));
	if (archive_read_support_filter_none(u->tar) != ARCHIVE_OK ||
	    archive_read_support_format_tar(u->tar) != ARCHIVE_OK ||
	    archive_read_support_format_gnutar(u->tar) != ARCHIVE_OK)
		return crisp_error(u->err, CRISP_INTERNAL, 0, "layer: libarchive: %s",
				   archive_error_string(u->tar));
	if (archive_read_open(u->raw, u, NULL, raw_read_cb, NULL) != ARCHIVE_OK)
		return crisp_error(u->err, CRISP_INVALID_ARGUMENT, 0, "layer: %s",
				   archive_error_string(u->raw));
	r = archive_read_next_header(u->raw, &e);
	if (r == ARCHIVE_EOF)
		return crisp_error(u->err, CRISP_INVALID_ARGUMENT, 0, "layer: empty blob");
	if (r != ARCHIVE_OK)
		return crisp_error(u->err, CRISP_INVALID_ARGUMENT, 0, "layer: %s",
				   archive_error_string(u->raw));
	/* Exactly one filter besides "none": no gzip inside zstd. */
	code = archive_filter_code(u->raw, 0);
	if (archive_filter_count(u->raw) > (code == ARCHIVE_FILTER_NONE ? 1 : 2))
		return crisp_error(u->err, CRISP_INVALID_ARGUMENT, 0,
				   "layer: nested compression (%s)", archive_filter_name(u->raw, 0));
	switch (comp) {
	case UNPACK_COMPRESSION_ANY:
		want = code;
		break;
	case UNPACK_COMPRESSION_NONE:
		want = ARCHIVE_FILTER_NONE;
		break;
	case UNPACK_COMPRESSION_GZIP:
		want = ARCHIVE_FILTER_GZIP;
		break;
	case UNPACK_COMPRESSION_ZSTD:
		want = ARCHIVE_FILTER_ZSTD;
		break;
	default:
		return crisp_error(u->err, CRISP_INVALID_ARGUMENT, 0,
				   "layer: unknown compression %d", (int)comp);
	}
	if (code != want)
		return crisp_error(u->err, CRISP_INVALID_ARGUMENT, 0,
				   "layer: compression is %s, the manifest says otherwise",
				   archive_filter_name(u->raw, 0));
	if (archive_read_open(u->tar, u, NULL, tar_read_cb, NULL) != ARCHIVE_OK)
		return crisp_error(u->err, u->over_limit ? CRISP_RESOURCE_EXHAUSTED :
				   CRISP_INVALID_ARGUMENT, 0, "layer: %s",
				   archive_error_string(u->tar));
	return 0;
}

/* ---- directories -------------------------------------------------------- */

static void cache_drop(struct unpacker *u)
{
	if (u->cache_fd >= 0)
		close(u->cache_fd);
	u->cache_fd = -1;
	free(u->cache_path);
	u->cache_path = NULL;
}

/*
 * An fd (O_PATH) of the parent directory dir (cleaned, "" for the root),
 * creating missing components 0755 root:root.  The fd belongs to the
 * cache: do not close it.  Refuses symlinks and non-directories on the way.
 */
static int parent_dir(struct unpacker *u, const char *dir)
{
	char comp[NAME_MAX + 1];
	const char *p;
	int fd;

	if (u->cache_path != NULL && strcmp(u->cache_path, dir) == 0)
		return u->cache_fd;
	cache_drop(u);
	fd = openat2_beneath(u->root, dir[0] != '\0' ? dir : ".", O_PATH | O_DIRECTORY);
	if (fd < 0 && errno == ENOENT) {
		/* Walk and create. */
		fd = openat2_beneath(u->root, ".", O_PATH | O_DIRECTORY);
		for (p = dir; fd >= 0 && *p != '\0';) {
			const char *slash = strchr(p, '/');
			size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
			int next;

			memcpy(comp, p, n);
			comp[n] = '\0';
			p += n + (slash != NULL);
			next = openat2_beneath(fd, comp, O_PATH | O_DIRECTORY);
			if (next < 0 && errno == ENOENT) {
				if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
					int saved = errno;
					close(fd);
					return entry_error(u, CRISP_INTERNAL, saved,
							   "create parent '%s'", comp);
				}
				next = openat2_beneath(fd, comp, O_PATH | O_DIRECTORY);
			}
			int saved = errno;
			close(fd);
			fd = next;
			errno = saved;
		}
	}
	if (fd < 0) {
		if (errno == ELOOP)
			return entry_error(u, CRISP_INVALID_ARGUMENT, 0,
					   "parent path goes through a symlink");
		if (errno == ENOTDIR)
			return entry_error(u, CRISP_INVALID_ARGUMENT, 0,
					   "parent path is not a directory");
		if (errno == EXDEV)
			return entry_error(u, CRISP_INVALID_ARGUMENT, 0,
					   "parent path crosses a mount point");
		return entry_error(u, CRISP_INTERNAL, errno, "open parent");
	}
	u->cache_path = strdup(dir);
	if (u->cache_path == NULL) {
		close(fd);
		return entry_error(u, CRISP_INTERNAL, ENOMEM, "open parent");
	}
	u->cache_fd = fd;
	return fd;
}

static int defer_dir(struct unpacker *u, const char *path, mode_t mode, const struct timespec ts[2])
{
	if (u->ndirs == u->capdirs) {
		size_t cap = u->capdirs != 0 ? u->capdirs * 2 : 64;
		struct dir_meta *d = reallocarray(u->dirs, cap, sizeof *d);
		if (d == NULL)
			return entry_error(u, CRISP_INTERNAL, ENOMEM, "directory list");
		u->dirs = d;
		u->capdirs = cap;
	}
	u->dirs[u->ndirs].path = strdup(path);
	if (u->dirs[u->ndirs].path == NULL)
		return entry_error(u, CRISP_INTERNAL, ENOMEM, "directory list");
	u->dirs[u->ndirs].mode = mode;
	u->dirs[u->ndirs].ts[0] = ts[0];
	u->dirs[u->ndirs].ts[1] = ts[1];
	u->ndirs++;
	return 0;
}

/* Apply deferred directory modes and times; replaced ones are skipped. */
static int finish_dirs(struct unpacker *u)
{
	for (size_t i = 0; i < u->ndirs; i++) {
		const struct dir_meta *d = &u->dirs[i];
		cleanup_close int fd = openat2_beneath(u->root, d->path[0] != '\0' ? d->path : ".",
						       O_RDONLY | O_DIRECTORY);

		printable(u->ename, sizeof u->ename, d->path[0] != '\0' ? d->path : ".");
		if (fd < 0) {
			if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
				continue; /* replaced by a later entry */
			return entry_error(u, CRISP_INTERNAL, errno, "reopen directory");
		}
		if (fchmod(fd, d->mode) < 0)
			return entry_error(u, CRISP_INTERNAL, errno, "chmod");
		if (futimens(fd, d->ts) < 0)
			return entry_error(u, CRISP_INTERNAL, errno, "set times");
	}
	return 0;
}

/*
 * Make room for pfd/name: 0 when free, 1 when a directory is there and
 * keep_dir is set, -1 on error.  Anything else is removed, never followed.
 */
static int make_room(struct unpacker *u, int pfd, const char *name, bool keep_dir)
{
	struct stat st;

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return entry_error(u, CRISP_INTERNAL, errno, "stat");
	}
	if (S_ISDIR(st.st_mode)) {
		crisp_err_t sub = CRISP_ERR_INIT;

		if (keep_dir)
			return 1;
		if (unpack_remove_tree(pfd, name, &sub) < 0)
			return entry_error(u, CRISP_INTERNAL, sub.errnum,
					   "replace directory: %s", sub.msg);
	} else if (unlinkat(pfd, name, 0) < 0) {
		return entry_error(u, CRISP_INTERNAL, errno, "replace");
	}
	/*
	 * pfd is the cached parent; what went is a child of it, so the cache
	 * stays valid (every entry re-resolves its own parent first).
	 */
	return 0;
}

/* ---- metadata ----------------------------------------------------------- */

static int entry_owner(struct unpacker *u, struct archive_entry *e, uid_t *uid, gid_t *gid)
{
	la_int64_t id = archive_entry_uid(e), gd = archive_entry_gid(e);

	if (id < 0 || id >= (la_int64_t)UINT32_MAX || gd < 0 || gd >= (la_int64_t)UINT32_MAX)
		return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "uid or gid out of range");
	*uid = (uid_t)id;
	*gid = (gid_t)gd;
	return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
	long ns;

	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_NOW;
	ts[1] = ts[0];
	if (archive_entry_mtime_is_set(e)) {
		ns = archive_entry_mtime_nsec(e);
		ts[1].tv_sec = (time_t)archive_entry_mtime(e);
		ts[1].tv_nsec = (ns >= 0 && ns < 1000000000L) ? ns : 0;
		ts[0] = ts[1];
	}
	if (archive_entry_atime_is_set(e)) {
		ns = archive_entry_atime_nsec(e);
		ts[0].tv_sec = (time_t)archive_entry_atime(e);
		ts[0].tv_nsec = (ns >= 0 && ns < 1000000000L) ? ns : 0;
	}
}

/* 1: set it, 0: ignore it, -1: refuse the layer. */
static int xattr_policy(const char *name)
{
	if (strncmp(name, "trusted.overlay.", 16) == 0 || strncmp(name, "user.overlay.", 13) == 0)
		return -1;
	if (strncmp(name, "user.", 5) == 0 || strncmp(name, "trusted.", 8) == 0 ||
	    strcmp(name, "security.capability") == 0)
		return 1;
	if (strncmp(name, "security.", 9) == 0 || strncmp(name, "system.", 7) == 0)
		return 0;
	return -1;
}

/* Set one xattr on pfd/name, which must not be opened (symlink, node). */
static int setxattr_nofollow(int pfd, const char *name, const char *key, const void *val,
			     size_t size)
{
#ifdef SYS_setxattrat
	struct crisp_xattr_args args = {
		.value = (uint64_t)(uintptr_t)val, .size = (uint32_t)size, .flags = 0,
	};
	if (syscall(SYS_setxattrat, pfd, name, AT_SYMLINK_NOFOLLOW, key, &args, sizeof args) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
#endif
	/* Older kernels: the O_PATH fd's magic link, if /proc is there. */
	cleanup_close int fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	char proc[64];
	if (fd < 0)
		return -1;
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	return setxattr(proc, key, val, size, 0);
}

/* fd >= 0: a real fd of the entry; else pfd/name not to be opened. */
static int apply_xattrs(struct unpacker *u, struct archive_entry *e, int fd, int pfd,
			const char *name)
{
	const char *key;
	const void *val;
	size_t size;

	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &key, &val, &size) == ARCHIVE_OK) {
		char pk[80];
		int pol, r;

		if (key == NULL || key[0] == '\0' || strlen(key) > XATTR_NAME_MAX)
			return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "bad xattr name");
		printable(pk, sizeof pk, key);
		if (size > XATTR_VALUE_MAX)
			return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "xattr %s too large", pk);
		pol = xattr_policy(key);
		if (pol < 0)
			return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "xattr %s refused", pk);
		if (pol == 0)
			continue;
		if (fd >= 0)
			r = fsetxattr(fd, key, val, size, 0);
		else
			r = setxattr_nofollow(pfd, name, key, val, size);
		if (r < 0)
			return entry_error(u, CRISP_INTERNAL, errno, "set xattr %s", pk);
	}
	return 0;
}

/* ---- one entry ----------------------------------------------------------- */

static int extract_file(struct unpacker *u, struct archive_entry *e, int pfd, const char *name,
			uid_t uid, gid_t gid, mode_t mode, const struct timespec ts[2])
{
	cleanup_close int fd = -1;
	la_int64_t end = 0, size = archive_entry_size(e);

	if (make_room(u, pfd, name, false) < 0)
		return -1;
	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return entry_error(u, CRISP_INTERNAL, errno, "create");
	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int r = archive_read_data_block(u->tar, &buf, &len, &off);

		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK)
			return entry_error(u, u->over_limit ? CRISP_RESOURCE_EXHAUSTED :
					   CRISP_INVALID_ARGUMENT, 0, "data: %s%s",
					   archive_error_string(u->tar),
					   u->over_limit ? " (uncompressed size limit)" : "");
		if (off < 0 || (uint64_t)off > (uint64_t)INT64_MAX - len)
			return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "bad data offset");
		if (len > 0 && write_all_at(fd, buf, len, (off_t)off) < 0)
			return entry_error(u, CRISP_INTERNAL, errno, "write");
		if (off + (la_int64_t)len > end)
			end = off + (la_int64_t)len;
	}
	/* Sparse files end in a hole. */
	if (size > end && ftruncate(fd, (off_t)size) < 0)
		return entry_error(u, CRISP_INTERNAL, errno, "truncate");
	/* chown clears setuid and file capabilities: it goes first. */
	if (fchown(fd, uid, gid) < 0)
		return entry_error(u, CRISP_INTERNAL, errno, "chown");
	if (fchmod(fd, mode) < 0)
		return entry_error(u, CRISP_INTERNAL, errno, "chmod");
	if (apply_xattrs(u, e, fd, -1, NULL) < 0)
		return -1;
	if (futimens(fd, ts) < 0)
		return entry_error(u, CRISP_INTERNAL, errno, "set times");
	return 0;
}

static int extract_dir(struct unpacker *u, struct archive_entry *e, const char *path, int pfd,
		       const char *name, uid_t uid, gid_t gid, mode_t mode,
		       const struct timespec ts[2])
{
	cleanup_close int fd = -1;

	if (pfd < 0) {
		/* The root itself ("./"). */
		fd = openat(u->root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else {
		int r = make_room(u, pfd, name, true);
		if (r < 0)
			return -1;
		if (r == 0 && mkdirat(pfd, name, 0700) < 0)
			return entry_error(u, CRISP_INTERNAL, errno, "mkdir");
		fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return entry_error(u, CRISP_INTERNAL, errno, "open directory");
	if (fchown(fd, uid, gid) < 0)
		return entry_error(u, CRISP_INTERNAL, errno, "chown");
	if (apply_xattrs(u, e, fd, -1, NULL) < 0)
		return -1;
	return defer_dir(u, path, mode, ts);
}

static int extract_hardlink(struct unpacker *u, const char *target, int pfd, const char *name)
{
	char clean[PATH_MAX];
	const char *why = clean_path(target, clean, sizeof clean, u->max_path);
	const char *slash, *tname;
	cleanup_close int tpfd = -1;
	struct stat tst, st;

	if (why != NULL)
		return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "hard link target: %s", why);
	if (clean[0] == '\0')
		return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "hard link to the root");
	slash = strrchr(clean, '/');
	if (slash != NULL) {
		clean[slash - clean] = '\0';
		tname = slash + 1;
		tpfd = openat2_beneath(u->root, clean, O_PATH | O_DIRECTORY);
	} else {
		tname = clean;
		tpfd = openat2_beneath(u->root, ".", O_PATH | O_DIRECTORY);
	}
	if (tpfd < 0) {
		if (errno == ELOOP)
			return entry_error(u, CRISP_INVALID_ARGUMENT, 0,
					   "hard link target goes through a symlink");
		return entry_error(u, CRISP_INVALID_ARGUMENT, errno, "hard link target");
	}
	if (fstatat(tpfd, tname, &tst, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_error(u, CRISP_INVALID_ARGUMENT, errno, "hard link target");
	if (S_ISDIR(tst.st_mode))
		return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "hard link to a directory");
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == tst.st_dev &&
	    st.st_ino == tst.st_ino)
		return 0; /* already that file */
	if (make_room(u, pfd, name, false) < 0)
		return -1;
	/* flags 0: a symlink target is linked itself, not followed. */
	if (linkat(tpfd, tname, pfd, name, 0) < 0)
		return entry_error(u, CRISP_INTERNAL, errno, "link");
	return 0;
}

static int extract_other(struct unpacker *u, struct archive_entry *e, int pfd, const char *name,
			 mode_t type, uid_t uid, gid_t gid, mode_t mode, const struct timespec ts[2])
{
	if (make_room(u, pfd, name, false) < 0)
		return -1;
	if (type == S_IFLNK) {
		const char *target = archive_entry_symlink(e);
		if (target == NULL || target[0] == '\0')
			return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "empty symlink target");
		if (strlen(target) > u->max_path)
			return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "symlink target too long");
		if (symlinkat(target, pfd, name) < 0)
			return entry_error(u, CRISP_INTERNAL, errno, "symlink");
	} else {
		dev_t dev = 0;
		if (type == S_IFCHR || type == S_IFBLK)
			dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
		if (mknodat(pfd, name, type | 0600, dev) < 0) {
			if (errno == EPERM)
				return entry_error(u, CRISP_PERMISSION_DENIED, errno,
						   "device node needs CAP_MKNOD");
			return entry_error(u, CRISP_INTERNAL, errno, "mknod");
		}
	}
	if (fchownat(pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_error(u, CRISP_INTERNAL, errno, "chown");
	/* Just created by us, in a tree only we write: not a symlink. */
	if (type != S_IFLNK && fchmodat(pfd, name, mode, 0) < 0)
		return entry_error(u, CRISP_INTERNAL, errno, "chmod");
	if (apply_xattrs(u, e, -1, pfd, name) < 0)
		return -1;
	if (utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_error(u, CRISP_INTERNAL, errno, "set times");
	return 0;
}

static int extract_whiteout(struct unpacker *u, int pfd, const char *base, mode_t type)
{
	if (type == S_IFDIR)
		return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "whiteout is a directory");
	if (strcmp(base, WH_OPAQUE) == 0) {
		cleanup_close int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return entry_error(u, CRISP_INTERNAL, errno, "open opaque directory");
		if (fsetxattr(dfd, OPAQUE_XATTR, "y", 1, 0) < 0)
			return entry_error(u, CRISP_INTERNAL, errno, "set " OPAQUE_XATTR);
		return 0;
	}
	if (strncmp(base, WH_META, strlen(WH_META)) == 0)
		return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "unknown whiteout meta file");
	const char *name = base + strlen(WH_PREFIX);
	if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "whiteout of '%s'", name);
	if (make_room(u, pfd, name, false) < 0)
		return -1;
	/* The overlayfs whiteout: a 0/0 char device (no CAP_MKNOD needed). */
	if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
		return entry_error(u, CRISP_INTERNAL, errno, "create whiteout");
	return 0;
}

static int extract_entry(struct unpacker *u, struct archive_entry *e)
{
	char path[PATH_MAX];
	const char *raw = archive_entry_pathname(e), *why, *base;
	const char *hardlink = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	mode_t mode = archive_entry_perm(e) & 07777;
	struct timespec ts[2];
	uid_t uid = 0;
	gid_t gid = 0;
	char *slash;
	int pfd;

	printable(u->ename, sizeof u->ename, raw);
	if (raw == NULL)
		return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "no path");
	why = clean_path(raw, path, sizeof path, u->max_path);
	if (why != NULL)
		return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "%s", why);
	if (entry_owner(u, e, &uid, &gid) < 0)
		return -1;
	entry_times(e, ts);
	if (hardlink == NULL && type != S_IFREG && type != S_IFDIR && type != S_IFLNK &&
	    type != S_IFCHR && type != S_IFBLK && type != S_IFIFO)
		return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "unsupported entry type 0%o",
				   (unsigned)type);
	if (path[0] == '\0') {
		if (type != S_IFDIR || hardlink != NULL)
			return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "root entry is not a directory");
		return extract_dir(u, e, "", -1, NULL, uid, gid, mode, ts);
	}
	slash = strrchr(path, '/');
	if (slash != NULL) {
		*slash = '\0';
		base = slash + 1;
		pfd = parent_dir(u, path);
	} else {
		base = path;
		pfd = parent_dir(u, "");
	}
	if (pfd < 0)
		return -1;
	if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)) == 0)
		return extract_whiteout(u, pfd, base, type);
	if (hardlink != NULL) {
		if (strlen(hardlink) > u->max_path)
			return entry_error(u, CRISP_INVALID_ARGUMENT, 0, "hard link target too long");
		return extract_hardlink(u, hardlink, pfd, base);
	}
	switch (type) {
	case S_IFREG:
		return extract_file(u, e, pfd, base, uid, gid, mode, ts);
	case S_IFDIR:
		if (slash != NULL)
			*slash = '/';
		return extract_dir(u, e, path, pfd, base, uid, gid, mode, ts);
	default:
		return extract_other(u, e, pfd, base, type, uid, gid, mode, ts);
	}
}

/* ---- the layer ---------------------------------------------------------- */

static int root_is_empty_dir(int dirfd, crisp_err_t *err)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, errno, "layer target directory");
	d = fdopendir(fd);
	if (d == NULL) {
		int saved = errno;
		close(fd);
		return crisp_error(err, CRISP_INTERNAL, saved, "layer target directory");
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			closedir(d);
			return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
					   "layer target directory is not empty");
		}
	}
	closedir(d);
	return 0;
}

static void unpacker_free(struct unpacker *u)
{
	if (u->tar != NULL)
		archive_read_free(u->tar);
	if (u->raw != NULL)
		archive_read_free(u->raw);
	cache_drop(u);
	for (size_t i = 0; i < u->ndirs; i++)
		free(u->dirs[i].path);
	free(u->dirs);
	free(u->inbuf);
}

static int run(struct unpacker *u, enum unpack_compression comp)
{
	const void *buf;
	size_t len;
	int r;

	if (open_readers(u, comp) < 0)
		return -1;
	for (;;) {
		struct archive_entry *e;

		r = archive_read_next_header(u->tar, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			if (u->over_limit)
				return crisp_error(u->err, CRISP_RESOURCE_EXHAUSTED, 0,
						   "layer: uncompressed size passes the limit of %llu bytes",
						   (unsigned long long)u->max_uncompressed);
			return crisp_error(u->err, CRISP_INVALID_ARGUMENT, 0,
					   "layer: after %llu entries: %s",
					   (unsigned long long)u->entries,
					   archive_error_string(u->tar) != NULL ?
					   archive_error_string(u->tar) : "bad tar");
		}
		if (++u->entries > u->max_entries)
			return crisp_error(u->err, CRISP_RESOURCE_EXHAUSTED, 0,
					   "layer: more than %llu entries",
					   (unsigned long long)u->max_entries);
		if (extract_entry(u, e) < 0) {
			if (u->over_limit) {
				u->err->code = CRISP_RESOURCE_EXHAUSTED;
				return crisp_error_wrap(u->err, "layer: uncompressed size passes the limit of %llu bytes",
							(unsigned long long)u->max_uncompressed);
			}
			return -1;
		}
	}
	/* Bytes after the tar's end are part of the diff id. */
	while ((r = pull(u, &buf, &len, u->tar)) > 0)
		;
	if (r < 0) {
		if (u->over_limit)
			return crisp_error(u->err, CRISP_RESOURCE_EXHAUSTED, 0,
					   "layer: uncompressed size passes the limit of %llu bytes",
					   (unsigned long long)u->max_uncompressed);
		return crisp_error(u->err, CRISP_INVALID_ARGUMENT, 0, "layer: %s",
				   archive_error_string(u->tar));
	}
	return finish_dirs(u);
}

int unpack_layer(int layer_fd, enum unpack_compression comp, int dirfd,
		 const struct unpack_limits *lim, struct unpack_result *res, crisp_err_t *err)
{
	struct unpacker u;
	uint8_t digest[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];
	struct stat st;
	int r;

	if (res == NULL || layer_fd < 0 || dirfd < 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, EINVAL, "unpack_layer");
	memset(res, 0, sizeof *res);
	if (fstat(dirfd, &st) < 0 || !S_ISDIR(st.st_mode))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, ENOTDIR, "layer target directory");
	if (root_is_empty_dir(dirfd, err) < 0)
		return -1;

	memset(&u, 0, sizeof u);
	u.layer_fd = layer_fd;
	u.root = dirfd;
	u.cache_fd = -1;
	u.err = err;
	u.max_uncompressed = lim != NULL && lim->max_uncompressed != 0 ?
			     lim->max_uncompressed : UNPACK_DEFAULT_MAX_UNCOMPRESSED;
	u.max_entries = lim != NULL && lim->max_entries != 0 ?
			lim->max_entries : UNPACK_DEFAULT_MAX_ENTRIES;
	u.max_path = lim != NULL && lim->max_path != 0 && lim->max_path < UNPACK_DEFAULT_MAX_PATH ?
		     lim->max_path : UNPACK_DEFAULT_MAX_PATH;
	crypto_hash_sha256_init(&u.sha);
	u.inbuf = malloc(UNPACK_BUF);
	if (u.inbuf == NULL) {
		unpacker_free(&u);
		return crisp_error(err, CRISP_INTERNAL, ENOMEM, "unpack_layer");
	}
	/* err may be NULL: keep a local one so entry_error always has a target. */
	crisp_err_t local = CRISP_ERR_INIT;
	if (err == NULL)
		u.err = &local;

	r = run(&u, comp);
	if (r == 0) {
		crypto_hash_sha256_final(&u.sha, digest);
		crisp_hex(digest, sizeof digest, hex);
		snprintf(res->diff_id, sizeof res->diff_id, "sha256:%s", hex);
		res->uncompressed = u.total;
		res->entries = u.entries;
	}
	unpacker_free(&u);
	return r;
}

/* ---- removal ------------------------------------------------------------ */

struct dev_ino {
	dev_t dev;
	ino_t ino;
};

/* One pass over fd's entries: unlink what can be, return an fd of the first
 * non-empty subdirectory (1), or 0 when the pass found nothing left. */
static int remove_pass(int fd, dev_t dev, int *sub, bool *removed, crisp_err_t *err)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int ret = 0;

	*sub = -1;
	*removed = false;
	if (dfd < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "remove tree: open");
	d = fdopendir(dfd);
	if (d == NULL) {
		int saved = errno;
		close(dfd);
		return crisp_error(err, CRISP_INTERNAL, saved, "remove tree: opendir");
	}
	for (;;) {
		struct stat st;

		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				ret = crisp_error(err, CRISP_INTERNAL, errno, "remove tree: readdir");
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, de->d_name, 0) == 0 || errno == ENOENT) {
			*removed = true;
			continue;
		}
		if (errno != EISDIR && errno != EPERM) {
			ret = crisp_error(err, CRISP_INTERNAL, errno, "remove tree: unlink");
			break;
		}
		if (unlinkat(fd, de->d_name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
			*removed = true;
			continue;
		}
		if (errno != ENOTEMPTY && errno != EEXIST) {
			ret = crisp_error(err, CRISP_INTERNAL, errno, "remove tree: rmdir");
			break;
		}
		*sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (*sub < 0) {
			ret = crisp_error(err, CRISP_INTERNAL, errno, "remove tree: open");
			break;
		}
		if (fstat(*sub, &st) < 0 || st.st_dev != dev) {
			close(*sub);
			*sub = -1;
			ret = crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
					  "remove tree: a mount point is below");
			break;
		}
		ret = 1;
		break;
	}
	closedir(d);
	return ret;
}

int unpack_remove_tree(int parent_dirfd, const char *name, crisp_err_t *err)
{
	cleanup_close int fd = -1;
	cleanup_free struct dev_ino *stack = NULL;
	size_t depth = 0, cap = 0;
	struct stat st;

	if (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, EINVAL, "remove tree: bad name");
	fd = openat(parent_dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno != ENOTDIR && errno != ELOOP)
			return crisp_error(err, CRISP_INTERNAL, errno, "remove tree: open");
		if (unlinkat(parent_dirfd, name, 0) < 0 && errno != ENOENT)
			return crisp_error(err, CRISP_INTERNAL, errno, "remove tree: unlink");
		return 0;
	}
	if (fstat(fd, &st) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "remove tree: stat");
	const dev_t dev = st.st_dev;
	for (;;) {
		int sub, r;
		bool removed;

		r = remove_pass(fd, dev, &sub, &removed, err);
		if (r < 0)
			return -1;
		if (r == 1) {
			/* Descend, remembering where we were to check the way back. */
			if (depth == cap) {
				size_t ncap = cap != 0 ? cap * 2 : 32;
				struct dev_ino *n = reallocarray(stack, ncap, sizeof *n);
				if (n == NULL) {
					close(sub);
					return crisp_error(err, CRISP_INTERNAL, ENOMEM, "remove tree");
				}
				stack = n;
				cap = ncap;
			}
			if (fstat(fd, &st) < 0) {
				close(sub);
				return crisp_error(err, CRISP_INTERNAL, errno, "remove tree: stat");
			}
			stack[depth].dev = st.st_dev;
			stack[depth].ino = st.st_ino;
			depth++;
			close(fd);
			fd = sub;
			continue;
		}
		if (removed)
			continue; /* one more pass: readdir may skip while we unlink */
		if (depth == 0)
			break;
		/* Empty: go back up; the parent's next pass removes it. */
		int up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (up < 0)
			return crisp_error(err, CRISP_INTERNAL, errno, "remove tree: open ..");
		depth--;
		if (fstat(up, &st) < 0 || st.st_dev != stack[depth].dev ||
		    st.st_ino != stack[depth].ino) {
			close(up);
			return crisp_error(err, CRISP_ABORTED, 0, "remove tree: tree moved during removal");
		}
		close(fd);
		fd = up;
	}
	close(TAKE_FD(fd));
	if (unlinkat(parent_dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return crisp_error(err, CRISP_INTERNAL, errno, "remove tree: rmdir");
	return 0;
}
