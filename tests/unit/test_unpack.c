/*
 * imaged layer unpacking: a normal layer extracts exactly (stat of every
 * entry, xattrs, file capabilities, diff id == sha256sum of the tar), gzip
 * and zstd, whiteouts, replacement, and evil layers each refused with
 * nothing written outside the target.  Runs as root (skips otherwise).
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <cap-ng.h>

#include "common/err.h"
#include "common/util.h"
#include "imaged/unpack.h"

#define CANARY "crisp-unpack-canary"

struct fx {
	char tmp[64];  /* /tmp/crisp-unpack.XXXXXX */
	int tmpfd;     /* O_PATH of tmp */
	int target;    /* O_PATH of tmp/target */
	char path[128]; /* scratch */
};

/* One tar entry to write. */
struct ent {
	const char *path;
	mode_t type; /* AE_IF*; 0 with link: hard link */
	mode_t mode;
	int64_t uid, gid;
	const char *data; /* file content, or symlink target */
	const char *link; /* hard link target */
	unsigned maj, min;
	const char *xname;
	const void *xval;
	size_t xlen;
	time_t mtime;
};

/* ---- fixture ----------------------------------------------------------- */

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	int fd;

	if (f == NULL)
		return -1;
	strcpy(f->tmp, "/tmp/crisp-unpack.XXXXXX");
	if (mkdtemp(f->tmp) == NULL)
		return -1;
	f->tmpfd = open(f->tmp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (f->tmpfd < 0 || mkdirat(f->tmpfd, "target", 0755) < 0 ||
	    mkdirat(f->tmpfd, "sentinel", 0755) < 0)
		return -1;
	fd = openat(f->tmpfd, "sentinel/file", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, "sentinel\n", 9) != 9)
		return -1;
	close(fd);
	f->target = openat(f->tmpfd, "target", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (f->target < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	char cmd[128];

	if (f == NULL)
		return 0;
	if (f->target >= 0)
		close(f->target);
	close(f->tmpfd);
	int tmpdir = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int r = unpack_remove_tree(tmpdir, f->tmp + strlen("/tmp/"), &err);
	close(tmpdir);
	if (r < 0 || access(f->tmp, F_OK) == 0) {
		/* Never leave the temp dir behind, even if our remover is wrong. */
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", f->tmp);
	}
	free(f);
	return 0;
}

static const char *fxpath(struct fx *f, const char *rel)
{
	snprintf(f->path, sizeof f->path, "%s/%s", f->tmp, rel);
	return f->path;
}

/* Nothing outside target changed: tmp holds target, sentinel and layer
 * files only; the sentinel is intact; no canary anywhere we aimed at. */
static void check_outside(struct fx *f)
{
	char buf[32] = { 0 };
	struct stat st;
	int fd;

	fd = openat(f->tmpfd, "sentinel/file", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof buf), 9);
	close(fd);
	assert_string_equal(buf, "sentinel\n");
	assert_int_equal(fstatat(f->tmpfd, "sentinel/file", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_size, 9);
	/* The sentinel dir holds exactly one entry. */
	fd = openat(f->tmpfd, "sentinel", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	{
		char cmd[160];
		snprintf(cmd, sizeof cmd, "test $(ls -A '%s/sentinel' | wc -l) -eq 1", f->tmp);
		assert_int_equal(system(cmd), 0);
		snprintf(cmd, sizeof cmd,
			 "test -z \"$(ls -A '%s' | grep -v -e '^target$' -e '^sentinel$' -e '^layer')\"",
			 f->tmp);
		assert_int_equal(system(cmd), 0);
	}
	close(fd);
	assert_int_equal(access("/etc/" CANARY, F_OK), -1);
	assert_int_equal(access("/tmp/" CANARY, F_OK), -1);
	assert_int_equal(access("/abs", F_OK), -1);
	assert_int_equal(access("/escape", F_OK), -1);
	assert_int_equal(stat("/etc/passwd", &st), 0);
	assert_int_equal(st.st_nlink, 1);
}

/* Empty the target again (the caller's job after a failed layer). */
static void reset_target(struct fx *f)
{
	crisp_err_t err = CRISP_ERR_INIT;

	if (f->target >= 0)
		close(f->target);
	f->target = -1;
	if (unpack_remove_tree(f->tmpfd, "target", &err) != 0)
		fail_msg("remove: %s", err.msg);
	assert_int_equal(mkdirat(f->tmpfd, "target", 0755), 0);
	f->target = openat(f->tmpfd, "target", O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->target >= 0);
}

/* ---- building layers ---------------------------------------------------- */

static void write_tar(struct fx *f, const char *name, const struct ent *e, size_t n, int filter)
{
	struct archive *a = archive_write_new();
	struct archive_entry *ae;

	assert_non_null(a);
	assert_int_equal(archive_write_set_format_pax(a), ARCHIVE_OK);
	if (filter == ARCHIVE_FILTER_GZIP)
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	else if (filter == ARCHIVE_FILTER_ZSTD)
		assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(a, fxpath(f, name)), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].path);
		archive_entry_set_uid(ae, e[i].uid);
		archive_entry_set_gid(ae, e[i].gid);
		archive_entry_set_mtime(ae, e[i].mtime != 0 ? e[i].mtime : 1600000000, 123456789);
		if (e[i].link != NULL) {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_hardlink(ae, e[i].link);
		} else {
			archive_entry_set_filetype(ae, e[i].type);
			archive_entry_set_perm(ae, e[i].mode);
			if (e[i].type == AE_IFLNK)
				archive_entry_set_symlink(ae, e[i].data);
			if (e[i].type == AE_IFREG)
				archive_entry_set_size(ae, e[i].data != NULL ? (la_int64_t)strlen(e[i].data) : 0);
			if (e[i].type == AE_IFCHR || e[i].type == AE_IFBLK) {
				archive_entry_set_rdevmajor(ae, e[i].maj);
				archive_entry_set_rdevminor(ae, e[i].min);
			}
		}
		if (e[i].xname != NULL)
			archive_entry_xattr_add_entry(ae, e[i].xname, e[i].xval, e[i].xlen);
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (e[i].link == NULL && e[i].type == AE_IFREG && e[i].data != NULL)
			assert_int_equal(archive_write_data(a, e[i].data, strlen(e[i].data)),
					 (la_ssize_t)strlen(e[i].data));
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

static void sha256sum(struct fx *f, const char *name, char out[72])
{
	char cmd[256], hex[80] = { 0 };
	FILE *p;

	snprintf(cmd, sizeof cmd, "sha256sum '%s/%s'", f->tmp, name);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(hex, sizeof hex, p));
	pclose(p);
	hex[64] = '\0';
	snprintf(out, 72, "sha256:%.64s", hex);
}

static int count_fds(void)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n++;
	closedir(d);
	return n;
}

static int unpack_file(struct fx *f, const char *name, enum unpack_compression comp,
		       const struct unpack_limits *lim, struct unpack_result *res, crisp_err_t *err)
{
	int fd = openat(f->tmpfd, name, O_RDONLY | O_CLOEXEC);
	int r;

	int before = count_fds();

	assert_true(fd >= 0);
	r = unpack_layer(fd, comp, f->target, lim, res, err);
	/* Every fd closed on every path, success or refusal. */
	assert_int_equal(count_fds(), before);
	close(fd);
	return r;
}

/* Extract ents (uncompressed); expect refusal with want in the message. */
static void expect_refused(struct fx *f, const struct ent *e, size_t n,
			   const struct unpack_limits *lim, const char *want, int code)
{
	struct unpack_result res;
	crisp_err_t err = CRISP_ERR_INIT;

	write_tar(f, "layer.tar", e, n, ARCHIVE_FILTER_NONE);
	assert_int_equal(unpack_file(f, "layer.tar", UNPACK_COMPRESSION_ANY, lim, &res, &err), -1);
	if (strstr(err.msg, want) == NULL)
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
	if (code >= 0)
		assert_int_equal(err.code, code);
	check_outside(f);
	reset_target(f);
}

/* ---- the normal layer ------------------------------------------------------ */

static const uint8_t cap_net_bind[20] = {
	/* vfs_cap_data v2: magic|effective, permitted CAP_NET_BIND_SERVICE */
	0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static const struct ent normal[] = {
	{ .path = "./", .type = AE_IFDIR, .mode = 0755 },
	{ .path = "bin/", .type = AE_IFDIR, .mode = 0755, .mtime = 1500000000 },
	{ .path = "bin/busybox", .type = AE_IFREG, .mode = 0755, .data = "\177ELF busybox" },
	{ .path = "bin/sh", .type = AE_IFLNK, .mode = 0777, .data = "busybox" },
	{ .path = "bin/ls", .link = "bin/busybox" },
	{ .path = "bin/su", .type = AE_IFREG, .mode = 04755, .data = "setuid" },
	{ .path = "bin/ping", .type = AE_IFREG, .mode = 0755, .data = "ping",
	  .xname = "security.capability", .xval = cap_net_bind, .xlen = sizeof cap_net_bind },
	{ .path = "etc/", .type = AE_IFDIR, .mode = 0755 },
	{ .path = "etc/passwd", .type = AE_IFREG, .mode = 0644, .data = "root:x:0:0::/root:/bin/sh\n" },
	{ .path = "etc/shadow", .type = AE_IFREG, .mode = 0640, .gid = 42, .data = "root:*:1::::::\n" },
	{ .path = "etc/attr", .type = AE_IFREG, .mode = 0600, .uid = 1000, .gid = 1000, .data = "x",
	  .xname = "user.crisp", .xval = "hello", .xlen = 5 },
	{ .path = "etc/trusted", .type = AE_IFREG, .mode = 0600, .data = "",
	  .xname = "trusted.crisp", .xval = "t", .xlen = 1 },
	{ .path = "etc/mtab", .type = AE_IFLNK, .mode = 0777, .data = "/proc/self/mounts" },
	{ .path = "dev/", .type = AE_IFDIR, .mode = 0755 },
	{ .path = "dev/null", .type = AE_IFCHR, .mode = 0666, .maj = 1, .min = 3 },
	{ .path = "dev/loop9", .type = AE_IFBLK, .mode = 0660, .gid = 6, .maj = 7, .min = 9 },
	{ .path = "run/initctl", .type = AE_IFIFO, .mode = 0600 },
	{ .path = "tmp/", .type = AE_IFDIR, .mode = 01777, .mtime = 1400000000 },
	{ .path = "home/user/", .type = AE_IFDIR, .mode = 0700, .uid = 1000, .gid = 1000 },
	{ .path = "home/user/.profile", .type = AE_IFREG, .mode = 0644, .uid = 1000, .gid = 1000,
	  .data = "export PS1\n" },
	{ .path = "srv", .type = AE_IFDIR, .mode = 02775, .gid = 50 },
};

static void check_normal(struct fx *f)
{
	struct stat st, st2;
	char buf[256];
	ssize_t n;

	for (size_t i = 0; i < ARRAY_SIZE(normal); i++) {
		const struct ent *e = &normal[i];
		if (e->link != NULL)
			continue;
		if (fstatat(f->target, strcmp(e->path, "./") == 0 ? "." : e->path, &st,
			    AT_SYMLINK_NOFOLLOW) < 0)
			fail_msg("%s missing", e->path);
		assert_int_equal(st.st_mode & S_IFMT, e->type);
		if (e->type != AE_IFLNK)
			assert_int_equal(st.st_mode & 07777, e->mode);
		assert_int_equal(st.st_uid, e->uid);
		assert_int_equal(st.st_gid, e->gid);
		assert_int_equal(st.st_mtim.tv_sec, e->mtime != 0 ? e->mtime : 1600000000);
		assert_int_equal(st.st_mtim.tv_nsec, 123456789);
		if (e->type == AE_IFREG) {
			int fd = openat(f->target, e->path, O_RDONLY | O_CLOEXEC);
			assert_true(fd >= 0);
			n = read(fd, buf, sizeof buf);
			close(fd);
			assert_int_equal(n, (ssize_t)strlen(e->data));
			assert_memory_equal(buf, e->data, (size_t)n);
		}
		if (e->type == AE_IFLNK) {
			n = readlinkat(f->target, e->path, buf, sizeof buf);
			assert_int_equal(n, (ssize_t)strlen(e->data));
			assert_memory_equal(buf, e->data, (size_t)n);
		}
		if (e->type == AE_IFCHR || e->type == AE_IFBLK) {
			assert_int_equal(major(st.st_rdev), e->maj);
			assert_int_equal(minor(st.st_rdev), e->min);
		}
		if (e->xname != NULL) {
			snprintf(buf, sizeof buf, "%s/target/%s", f->tmp, e->path);
			char v[64];
			n = lgetxattr(buf, e->xname, v, sizeof v);
			assert_int_equal(n, (ssize_t)e->xlen);
			assert_memory_equal(v, e->xval, e->xlen);
		}
	}
	/* The hard link shares the inode; implicit parent run/ was created. */
	assert_int_equal(fstatat(f->target, "bin/busybox", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(fstatat(f->target, "bin/ls", &st2, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(fstatat(f->target, "run", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0755);
}

static void test_normal(void **state)
{
	struct fx *f = *state;
	struct unpack_result res;
	crisp_err_t err = CRISP_ERR_INIT;
	char want[72];

	write_tar(f, "layer.tar", normal, ARRAY_SIZE(normal), ARCHIVE_FILTER_NONE);
	sha256sum(f, "layer.tar", want);
	if (unpack_file(f, "layer.tar", UNPACK_COMPRESSION_NONE, NULL, &res, &err) != 0)
		fail_msg("unpack: %s", err.msg);
	assert_string_equal(res.diff_id, want);
	assert_int_equal(res.entries, ARRAY_SIZE(normal));
	check_normal(f);
	check_outside(f);
}

static void compressed(struct fx *f, const char *tool, const char *ext, enum unpack_compression comp,
		       enum unpack_compression wrong)
{
	struct unpack_result res;
	crisp_err_t err = CRISP_ERR_INIT;
	char want[72], name[32];

	write_tar(f, "layer.tar", normal, ARRAY_SIZE(normal), ARCHIVE_FILTER_NONE);
	sha256sum(f, "layer.tar", want);
	sh("%s -q -c '%s/layer.tar' > '%s/layer.tar.%s'", tool, f->tmp, f->tmp, ext);
	snprintf(name, sizeof name, "layer.tar.%s", ext);
	/* The manifest's compression must match the blob. */
	assert_int_equal(unpack_file(f, name, wrong, NULL, &res, &err), -1);
	assert_non_null(strstr(err.msg, "compression"));
	if (unpack_file(f, name, comp, NULL, &res, &err) != 0)
		fail_msg("unpack: %s", err.msg);
	assert_string_equal(res.diff_id, want);
	check_normal(f);
	check_outside(f);
}

static void test_gzip(void **state)
{
	compressed(*state, "gzip", "gz", UNPACK_COMPRESSION_GZIP, UNPACK_COMPRESSION_ZSTD);
}

static void test_zstd(void **state)
{
	compressed(*state, "zstd", "zst", UNPACK_COMPRESSION_ZSTD, UNPACK_COMPRESSION_NONE);
}

/* A tree on disk, packed by GNU tar (with setcap'd file), compared with lstat. */
static void test_gnu_tar(void **state)
{
	struct fx *f = *state;
	struct unpack_result res;
	crisp_err_t err = CRISP_ERR_INIT;
	char want[72];
	char cmd[1024];

	sh("mkdir -p %s/src/a/b/c %s/src/d && cd %s/src && echo hi > a/f && "
	   "printf 'x%%.0s' $(seq 1 5000) > a/b/big && ln a/f a/b/hl && ln -s ../f a/b/sl && "
	   "mkfifo d/fifo && mknod d/tty c 5 0 && cp /bin/true d/capped && "
	   "setcap cap_net_raw+ep d/capped && chmod 4711 a/b/c && chown -h 7:8 a/b/sl && "
	   "chmod 2750 d && touch -h -d @1234567890 a/b/sl a/b a && "
	   "dd if=/dev/zero of=d/sparse bs=1 count=1 seek=1000000 2>/dev/null",
	   f->tmp, f->tmp, f->tmp);
	sh("tar --xattrs --xattrs-include='*' --sparse --numeric-owner -C %s/src -cf %s/layer.tar .",
	   f->tmp, f->tmp);
	sha256sum(f, "layer.tar", want);
	if (unpack_file(f, "layer.tar", UNPACK_COMPRESSION_ANY, NULL, &res, &err) != 0)
		fail_msg("unpack: %s", err.msg);
	assert_string_equal(res.diff_id, want);
	/* Compare every entry: type, mode, owner, size, mtime, rdev, links. */
	snprintf(cmd, sizeof cmd,
		 "cd %s/src && find . -printf '%%p %%y %%m %%U %%G %%s %%T@ %%n %%l\\n' | "
		 "grep -v '^\\. ' | sort > ../l1 && cd ../target && "
		 "find . -printf '%%p %%y %%m %%U %%G %%s %%T@ %%n %%l\\n' | grep -v '^\\. ' | sort > ../l2 && "
		 "diff ../l1 ../l2 && cmp ../src/a/b/big a/b/big && cmp ../src/d/sparse d/sparse && "
		 "test \"$(stat -c %%t:%%T d/tty)\" = 5:0 && "
		 "getcap d/capped | grep -q cap_net_raw=ep && rm -f ../l1 ../l2",
		 f->tmp);
	assert_int_equal(system(cmd), 0);
	sh("rm -rf %s/src", f->tmp);
	check_outside(f);
}

static void test_trailing_bytes(void **state)
{
	struct fx *f = *state;
	struct unpack_result res;
	crisp_err_t err = CRISP_ERR_INIT;
	char want[72];

	write_tar(f, "layer.tar", normal, 3, ARCHIVE_FILTER_NONE);
	sh("head -c 70000 /dev/zero >> %s/layer.tar && echo trailing >> %s/layer.tar", f->tmp, f->tmp);
	sha256sum(f, "layer.tar", want);
	if (unpack_file(f, "layer.tar", UNPACK_COMPRESSION_ANY, NULL, &res, &err) != 0)
		fail_msg("unpack: %s", err.msg);
	assert_string_equal(res.diff_id, want);
}

static void test_whiteouts(void **state)
{
	struct fx *f = *state;
	struct unpack_result res;
	crisp_err_t err = CRISP_ERR_INIT;
	struct stat st;
	char v[8];
	const struct ent e[] = {
		{ .path = "etc/", .type = AE_IFDIR, .mode = 0755 },
		{ .path = "etc/.wh.motd", .type = AE_IFREG, .mode = 0644, .data = "" },
		{ .path = ".wh.var", .type = AE_IFREG, .mode = 0644, .data = "" },
		{ .path = "opt/app/.wh..wh..opq", .type = AE_IFREG, .mode = 0644, .data = "" },
		{ .path = "opt/app/kept", .type = AE_IFREG, .mode = 0644, .data = "k" },
		{ .path = "usr/", .type = AE_IFDIR, .mode = 0755 },
		{ .path = "usr/.wh..wh..opq", .type = AE_IFREG, .mode = 0644, .data = "" },
	};

	write_tar(f, "layer.tar", e, ARRAY_SIZE(e), ARCHIVE_FILTER_NONE);
	if (unpack_file(f, "layer.tar", UNPACK_COMPRESSION_ANY, NULL, &res, &err) != 0)
		fail_msg("unpack: %s", err.msg);
	const char *wh[] = { "etc/motd", "var" };
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(fstatat(f->target, wh[i], &st, AT_SYMLINK_NOFOLLOW), 0);
		assert_true(S_ISCHR(st.st_mode));
		assert_int_equal(st.st_rdev, makedev(0, 0));
	}
	assert_int_equal(fstatat(f->target, "etc/.wh.motd", &st, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(fstatat(f->target, "usr/.wh..wh..opq", &st, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(getxattr(fxpath(f, "target/opt/app"), "trusted.overlay.opaque", v, sizeof v), 1);
	assert_int_equal(v[0], 'y');
	assert_int_equal(getxattr(fxpath(f, "target/usr"), "trusted.overlay.opaque", v, sizeof v), 1);
	assert_int_equal(getxattr(fxpath(f, "target/etc"), "trusted.overlay.opaque", v, sizeof v), -1);
	check_outside(f);
}

/* Later entries win; a directory re-declared keeps its children. */
static void test_replace(void **state)
{
	struct fx *f = *state;
	struct unpack_result res;
	crisp_err_t err = CRISP_ERR_INIT;
	struct stat st;
	char buf[8];
	const struct ent e[] = {
		{ .path = "a", .type = AE_IFREG, .mode = 0644, .data = "1" },
		{ .path = "a", .type = AE_IFREG, .mode = 0600, .data = "2" },
		{ .path = "d/x", .type = AE_IFREG, .mode = 0644, .data = "x" },
		{ .path = "d", .type = AE_IFDIR, .mode = 0711 },
		{ .path = "e/y/z", .type = AE_IFREG, .mode = 0644, .data = "z" },
		{ .path = "e", .type = AE_IFLNK, .mode = 0777, .data = "/" },
		{ .path = "s", .type = AE_IFLNK, .mode = 0777, .data = "/etc" },
		{ .path = "s", .type = AE_IFDIR, .mode = 0755 },
		{ .path = "s/" CANARY, .type = AE_IFREG, .mode = 0644, .data = "in" },
		{ .path = "wh", .type = AE_IFDIR, .mode = 0755 },
		{ .path = "wh/f", .type = AE_IFREG, .mode = 0644, .data = "f" },
		{ .path = ".wh.wh", .type = AE_IFREG, .mode = 0644, .data = "" },
	};

	write_tar(f, "layer.tar", e, ARRAY_SIZE(e), ARCHIVE_FILTER_NONE);
	if (unpack_file(f, "layer.tar", UNPACK_COMPRESSION_ANY, NULL, &res, &err) != 0)
		fail_msg("unpack: %s", err.msg);
	int fd = openat(f->target, "a", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof buf), 1);
	close(fd);
	assert_int_equal(buf[0], '2');
	assert_int_equal(fstatat(f->target, "a", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(fstatat(f->target, "d/x", &st, 0), 0);
	assert_int_equal(fstatat(f->target, "d", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0711);
	assert_int_equal(fstatat(f->target, "e", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(fstatat(f->target, "s/" CANARY, &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(fstatat(f->target, "wh", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISCHR(st.st_mode));
	check_outside(f);
}

/* ---- evil layers ---------------------------------------------------------- */

#define REFUSED(f, e, want) expect_refused(f, e, ARRAY_SIZE(e), NULL, want, CRISP_INVALID_ARGUMENT)

static void test_evil_dotdot(void **state)
{
	const struct ent e1[] = { { .path = "../escape", .type = AE_IFREG, .mode = 0644, .data = "x" } };
	const struct ent e2[] = { { .path = "a/../../escape", .type = AE_IFREG, .mode = 0644, .data = "x" } };
	const struct ent e3[] = { { .path = "a/../b", .type = AE_IFREG, .mode = 0644, .data = "x" } };
	const struct ent e4[] = { { .path = "..", .type = AE_IFDIR, .mode = 0777 } };

	REFUSED(*state, e1, "'..' in path");
	REFUSED(*state, e2, "'..' in path");
	REFUSED(*state, e3, "'..' in path");
	REFUSED(*state, e4, "'..' in path");
}

static void test_evil_absolute(void **state)
{
	const struct ent e1[] = { { .path = "/abs/path", .type = AE_IFREG, .mode = 0644, .data = "x" } };
	const struct ent e2[] = { { .path = "/etc/" CANARY, .type = AE_IFREG, .mode = 0644, .data = "x" } };

	REFUSED(*state, e1, "absolute path");
	REFUSED(*state, e2, "absolute path");
}

static void test_evil_symlink_parent(void **state)
{
	struct fx *f = *state;
	char sentinel[128];
	const struct ent e1[] = {
		{ .path = "a", .type = AE_IFLNK, .mode = 0777, .data = "/etc" },
		{ .path = "a/" CANARY, .type = AE_IFREG, .mode = 0644, .data = "x" },
	};
	const struct ent e2[] = {
		{ .path = "a", .type = AE_IFLNK, .mode = 0777, .data = ".." },
		{ .path = "a/x", .type = AE_IFREG, .mode = 0644, .data = "x" },
	};
	snprintf(sentinel, sizeof sentinel, "%s/sentinel", f->tmp);
	const struct ent e3[] = {
		{ .path = "a", .type = AE_IFLNK, .mode = 0777, .data = sentinel },
		{ .path = "a/file", .type = AE_IFREG, .mode = 0644, .data = "x" },
	};
	const struct ent e4[] = {
		{ .path = "d/", .type = AE_IFDIR, .mode = 0755 },
		{ .path = "d/l", .type = AE_IFLNK, .mode = 0777, .data = "../../../tmp" },
		{ .path = "d/l/" CANARY "/x", .type = AE_IFREG, .mode = 0644, .data = "x" },
	};
	const struct ent e5[] = { /* a symlink staying inside is refused too */
		{ .path = "in/", .type = AE_IFDIR, .mode = 0755 },
		{ .path = "l", .type = AE_IFLNK, .mode = 0777, .data = "in" },
		{ .path = "l/x", .type = AE_IFDIR, .mode = 0755 },
	};
	const struct ent e6[] = {
		{ .path = "f", .type = AE_IFREG, .mode = 0644, .data = "x" },
		{ .path = "f/x", .type = AE_IFREG, .mode = 0644, .data = "x" },
	};

	REFUSED(f, e1, "through a symlink");
	REFUSED(f, e2, "through a symlink");
	REFUSED(f, e3, "through a symlink");
	REFUSED(f, e4, "through a symlink");
	REFUSED(f, e5, "through a symlink");
	REFUSED(f, e6, "not a directory");
}

static void test_evil_hardlink(void **state)
{
	struct fx *f = *state;
	const struct ent e1[] = { { .path = "x", .link = "../sentinel/file" } };
	const struct ent e2[] = { { .path = "x", .link = "/etc/passwd" } };
	const struct ent e3[] = {
		{ .path = "a", .type = AE_IFLNK, .mode = 0777, .data = "/etc" },
		{ .path = "x", .link = "a/passwd" },
	};
	const struct ent e4[] = { { .path = "x", .link = "etc/passwd" } }; /* not in the layer */
	const struct ent e5[] = {
		{ .path = "d/", .type = AE_IFDIR, .mode = 0755 },
		{ .path = "x", .link = "d" },
	};
	const struct ent e6[] = { /* a symlink target is linked, never followed */
		{ .path = "a", .type = AE_IFLNK, .mode = 0777, .data = "/etc/passwd" },
		{ .path = "x", .link = "a" },
	};
	struct unpack_result res;
	crisp_err_t err = CRISP_ERR_INIT;
	struct stat st;

	REFUSED(f, e1, "'..' in path");
	REFUSED(f, e2, "absolute path");
	REFUSED(f, e3, "through a symlink");
	REFUSED(f, e4, "hard link target");
	REFUSED(f, e5, "hard link to a directory");
	write_tar(f, "layer.tar", e6, ARRAY_SIZE(e6), ARCHIVE_FILTER_NONE);
	assert_int_equal(unpack_file(f, "layer.tar", UNPACK_COMPRESSION_ANY, NULL, &res, &err), 0);
	assert_int_equal(fstatat(f->target, "x", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISLNK(st.st_mode));
	check_outside(f);
}

static void test_evil_whiteout(void **state)
{
	const struct ent e1[] = { { .path = ".wh...", .type = AE_IFREG, .mode = 0644, .data = "" } };
	const struct ent e2[] = { { .path = "a/.wh..", .type = AE_IFREG, .mode = 0644, .data = "" } };
	const struct ent e3[] = { { .path = ".wh.", .type = AE_IFREG, .mode = 0644, .data = "" } };
	const struct ent e4[] = { { .path = "a/.wh..wh.plnk", .type = AE_IFREG, .mode = 0644, .data = "" } };
	const struct ent e5[] = { { .path = ".wh.d/", .type = AE_IFDIR, .mode = 0755 } };

	REFUSED(*state, e1, "whiteout of '..'");
	REFUSED(*state, e2, "whiteout of '.'");
	REFUSED(*state, e3, "whiteout of ''");
	REFUSED(*state, e4, "whiteout meta");
	REFUSED(*state, e5, "whiteout is a directory");
}

static void test_evil_names(void **state)
{
	struct unpack_limits lim = { .max_path = 100 };
	char longp[160];
	memset(longp, 'p', 150);
	longp[150] = '\0';
	const struct ent e1[] = { { .path = longp, .type = AE_IFREG, .mode = 0644, .data = "" } };
	const struct ent e2[] = { { .path = "a//b", .type = AE_IFREG, .mode = 0644, .data = "" } };
	const struct ent e3[] = { { .path = "l", .type = AE_IFLNK, .mode = 0777, .data = longp } };
	const struct ent e4[] = {
		{ .path = "f", .type = AE_IFREG, .mode = 0644, .data = "x",
		  .xname = "trusted.overlay.redirect", .xval = "/etc", .xlen = 4 },
	};
	const struct ent e5[] = { { .path = "f", .type = AE_IFREG, .mode = 0644, .data = "", .uid = 4294967295LL } };
	const struct ent e6[] = { { .path = "s", .type = AE_IFSOCK, .mode = 0644 } };
	char big[300];
	memset(big, 'n', 299);
	big[299] = '\0';
	const struct ent e7[] = { { .path = big, .type = AE_IFREG, .mode = 0644, .data = "" } };

	expect_refused(*state, e1, 1, &lim, "path too long", CRISP_INVALID_ARGUMENT);
	REFUSED(*state, e2, "empty path component");
	expect_refused(*state, e3, 1, &lim, "symlink target too long", CRISP_INVALID_ARGUMENT);
	REFUSED(*state, e4, "xattr trusted.overlay.redirect refused");
	REFUSED(*state, e5, "out of range");
	(void)e6; /* pax cannot carry a socket: libarchive refuses to write one */
	REFUSED(*state, e7, "component too long");
}

static void test_evil_limits(void **state)
{
	struct fx *f = *state;
	struct unpack_limits lim = { .max_entries = 10 };
	struct ent many[20];
	char names[20][16];

	for (int i = 0; i < 20; i++) {
		snprintf(names[i], sizeof names[i], "f%d", i);
		many[i] = (struct ent){ .path = names[i], .type = AE_IFREG, .mode = 0644, .data = "" };
	}
	expect_refused(f, many, 20, &lim, "more than 10 entries", CRISP_RESOURCE_EXHAUSTED);
}

/* 1 GiB of zeros, zstd'd to ~32 KiB; limit 10 MiB: stops early. */
static void test_evil_bomb(void **state)
{
	struct fx *f = *state;
	struct unpack_limits lim = { .max_uncompressed = 10 << 20 };
	struct unpack_result res;
	crisp_err_t err = CRISP_ERR_INIT;
	struct stat st;
	const char *tool[] = { "zstd -q -c", "gzip -1 -c" };
	const char *ext[] = { "zst", "gz" };

	for (int i = 0; i < 2; i++) {
		char name[32];
		uint64_t t0;

		/* gzip of 1 GiB takes seconds: 200 MiB is bomb enough for it. */
		sh("cd %s && mkdir -p layersrc && truncate -s %s layersrc/zeros && "
		   "tar -C layersrc -cf - zeros | %s > layer.%s && rm -rf layersrc",
		   f->tmp, i == 0 ? "1G" : "200M", tool[i], ext[i]);
		snprintf(name, sizeof name, "layer.%s", ext[i]);
		assert_int_equal(stat(fxpath(f, name), &st), 0);
		assert_true(st.st_size < (i == 0 ? 1 << 20 : 2 << 20));
		t0 = crisp_now_ms();
		assert_int_equal(unpack_file(f, name, UNPACK_COMPRESSION_ANY, &lim, &res, &err), -1);
		assert_true(crisp_now_ms() - t0 < 2000);
		assert_int_equal(err.code, CRISP_RESOURCE_EXHAUSTED);
		if (strstr(err.msg, "limit") == NULL)
			fail_msg("error '%s'", err.msg);
		/* Partial: the file stopped near the limit. */
		assert_int_equal(fstatat(f->target, "zeros", &st, 0), 0);
		assert_true(st.st_size <= (10 << 20));
		check_outside(f);
		/* The caller removes the partial layer. */
		reset_target(f);
	}
}

static void test_evil_malformed(void **state)
{
	struct fx *f = *state;
	struct unpack_result res;
	crisp_err_t err = CRISP_ERR_INIT;
	const struct ent big[] = {
		{ .path = "a", .type = AE_IFREG, .mode = 0644,
		  .data = "0123456789012345678901234567890123456789012345678901234567890123456789"
			  "0123456789012345678901234567890123456789012345678901234567890123456789"
			  "0123456789012345678901234567890123456789012345678901234567890123456789"
			  "0123456789012345678901234567890123456789012345678901234567890123456789"
			  "0123456789012345678901234567890123456789012345678901234567890123456789"
			  "0123456789012345678901234567890123456789012345678901234567890123456789"
			  "0123456789012345678901234567890123456789012345678901234567890123456789"
			  "0123456789012345678901234567890123456789012345678901234567890123456789" },
	};

	/* Truncated in the middle of a file's data. */
	write_tar(f, "layer.tar", big, 1, ARCHIVE_FILTER_NONE);
	sh("truncate -s 1700 %s/layer.tar", f->tmp);
	assert_int_equal(unpack_file(f, "layer.tar", UNPACK_COMPRESSION_ANY, NULL, &res, &err), -1);
	assert_non_null(strstr(err.msg, "runcated"));
	check_outside(f);
	reset_target(f);
	/* Not a tar at all. */
	sh("head -c 5000 /dev/urandom > %s/layer.bin", f->tmp);
	assert_int_equal(unpack_file(f, "layer.bin", UNPACK_COMPRESSION_ANY, NULL, &res, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	reset_target(f);
	/* Empty blob. */
	sh(": > %s/layer.empty", f->tmp);
	assert_int_equal(unpack_file(f, "layer.empty", UNPACK_COMPRESSION_ANY, NULL, &res, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	reset_target(f);
	/* Truncated gzip. */
	write_tar(f, "layer.tar", normal, ARRAY_SIZE(normal), ARCHIVE_FILTER_NONE);
	sh("gzip -c %s/layer.tar | head -c 300 > %s/layer.gz", f->tmp, f->tmp);
	assert_int_equal(unpack_file(f, "layer.gz", UNPACK_COMPRESSION_ANY, NULL, &res, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	reset_target(f);
	/* gzip inside gzip. */
	sh("gzip -c %s/layer.tar | gzip -c > %s/layer.gz2", f->tmp, f->tmp);
	assert_int_equal(unpack_file(f, "layer.gz2", UNPACK_COMPRESSION_ANY, NULL, &res, &err), -1);
	assert_non_null(strstr(err.msg, "nested"));
	reset_target(f);
	/* A zip is not a tar. */
	sh("cd %s && printf 'PK\\003\\004' > layer.zip && head -c 200 /dev/zero >> layer.zip", f->tmp);
	assert_int_equal(unpack_file(f, "layer.zip", UNPACK_COMPRESSION_ANY, NULL, &res, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	check_outside(f);
}

/* Target must be empty: hard links could otherwise reach what was there. */
static void test_target_not_empty(void **state)
{
	struct fx *f = *state;
	struct unpack_result res;
	crisp_err_t err = CRISP_ERR_INIT;

	write_tar(f, "layer.tar", normal, 2, ARCHIVE_FILTER_NONE);
	assert_int_equal(mkdirat(f->target, "x", 0755), 0);
	assert_int_equal(unpack_file(f, "layer.tar", UNPACK_COMPRESSION_ANY, NULL, &res, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
}

/* Without CAP_MKNOD a device node fails clearly (whiteouts still work). */
static void test_no_mknod(void **state)
{
	struct fx *f = *state;
	const struct ent e[] = {
		{ .path = ".wh.x", .type = AE_IFREG, .mode = 0644, .data = "" },
		{ .path = "null", .type = AE_IFCHR, .mode = 0666, .maj = 1, .min = 3 },
	};
	int status;
	pid_t pid;

	write_tar(f, "layer.tar", e, ARRAY_SIZE(e), ARCHIVE_FILTER_NONE);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct unpack_result res;
		crisp_err_t err = CRISP_ERR_INIT;
		int fd = openat(f->tmpfd, "layer.tar", O_RDONLY | O_CLOEXEC);

		capng_get_caps_process();
		capng_update(CAPNG_DROP, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_MKNOD);
		if (capng_apply(CAPNG_SELECT_CAPS) != 0)
			_exit(2);
		if (unpack_layer(fd, UNPACK_COMPRESSION_ANY, f->target, NULL, &res, &err) == 0)
			_exit(3);
		if (err.code != CRISP_PERMISSION_DENIED || strstr(err.msg, "CAP_MKNOD") == NULL ||
		    strstr(err.msg, "'null'") == NULL)
			_exit(4);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	check_outside(f);
}

/* ---- removal --------------------------------------------------------------- */

static void test_remove_tree(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	int fd, next;
	char sentinel[128];

	snprintf(sentinel, sizeof sentinel, "%s/sentinel", f->tmp);
	/* 3000 levels: deeper than PATH_MAX and than the fd limit. */
	assert_int_equal(mkdirat(f->target, "deep", 0755), 0);
	fd = openat(f->target, "deep", O_PATH | O_DIRECTORY | O_CLOEXEC);
	for (int i = 0; i < 3000 && fd >= 0; i++) {
		assert_int_equal(mkdirat(fd, "d", i % 7 == 0 ? 0 : 0755), 0);
		assert_int_equal(symlinkat(sentinel, fd, "s"), 0);
		assert_int_equal(symlinkat("/etc", fd, "e"), 0);
		int ffd = openat(fd, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0);
		assert_true(ffd >= 0);
		close(ffd);
		next = openat(fd, "d", O_PATH | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		fd = next;
	}
	assert_true(fd >= 0);
	close(fd);
	/* Wide too: many files and empty dirs side by side. */
	for (int i = 0; i < 300; i++) {
		char n[16];
		snprintf(n, sizeof n, "w%d", i);
		assert_int_equal(mkdirat(f->target, n, 0755), 0);
	}
	assert_int_equal(symlinkat(sentinel, f->target, "link"), 0);
	close(f->target);
	f->target = -1;
	if (unpack_remove_tree(f->tmpfd, "target", &err) != 0)
		fail_msg("remove: %s", err.msg);
	assert_int_equal(faccessat(f->tmpfd, "target", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	check_outside(f);
	/* Missing is fine; a symlink is removed, not followed. */
	assert_int_equal(unpack_remove_tree(f->tmpfd, "target", &err), 0);
	assert_int_equal(symlinkat("sentinel", f->tmpfd, "layerlink"), 0);
	assert_int_equal(unpack_remove_tree(f->tmpfd, "layerlink", &err), 0);
	assert_int_equal(unpack_remove_tree(f->tmpfd, "..", &err), -1);
	assert_int_equal(unpack_remove_tree(f->tmpfd, "a/b", &err), -1);
	check_outside(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_normal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gzip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zstd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gnu_tar, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trailing_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_whiteouts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evil_dotdot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evil_absolute, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evil_symlink_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evil_hardlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evil_whiteout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evil_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evil_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evil_bomb, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evil_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_target_not_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_mknod, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_tree, setup, teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_unpack: needs root (chown, mknod, trusted xattrs); skipped\n");
		return 77;
	}
	return cmocka_run_group_tests_name("unpack", tests, NULL, NULL);
}
