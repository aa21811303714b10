/*
 * execd/mounts: the container's filesystem view, built in the child's new
 * mount namespace before pivot_root.  Every target is resolved inside the
 * rootfs with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) into an O_PATH
 * fd and mounted through /proc/self/fd/N (the host /proc, still visible
 * here), so a symlink in the image ("etc -> /../../etc", "mnt -> /") is
 * followed as if the rootfs were "/" and can never send a mount outside.
 *
 * Deviation from crun's default (MS_REC|MS_PRIVATE on "/"): the namespace is
 * made MS_REC|MS_SLAVE first, as runc does and as kubelet's HostToContainer
 * (rslave) mounts need: host mount events still reach rslave mounts, nothing
 * propagates back to the host.  Mounts asked PRIVATE are made private
 * explicitly.  With a bidirectional (rshared) mount the namespace stays
 * rshared instead and the rootfs mount is made private (see rootfs_setup).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "execd/launch_internal.h"

#define FDPATH_MAX 32

static bool path_ok(const char *p)
{
	const char *q;

	if (p == NULL || p[0] != '/' || strlen(p) >= 4096)
		return false;
	for (q = p; (q = strstr(q, "..")) != NULL; q += 2)
		if (q[-1] == '/' && (q[2] == '/' || q[2] == '\0'))
			return false;
	return true;
}

int resolve_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd;

	if (!path_ok(path)) {
		errno = EINVAL;
		return -1;
	}
	do
		fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
	while (fd < 0 && errno == EAGAIN);
	return fd;
}

int mkpath_in_root(int rootfd, const char *path, bool last_is_dir, mode_t mode)
{
	char buf[4096];
	size_t len, i;
	int fd;

	if (!path_ok(path)) {
		errno = EINVAL;
		return -1;
	}
	fd = resolve_in_root(rootfd, path, O_PATH);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	len = strlen(path);
	memcpy(buf, path, len + 1);
	/* Walk the prefixes: open the existing ones inside the root, create a
	 * missing one as a single component beneath its (resolved) parent. */
	for (i = 1; i <= len; i++) {
		if (i < len && buf[i] != '/')
			continue;
		bool last = (i == len);
		char save = buf[i];
		buf[i] = '\0';
		char *slash = strrchr(buf, '/');
		const char *name = slash + 1;
		if (*name == '\0' || strcmp(name, ".") == 0) {
			buf[i] = save;
			continue;
		}
		fd = resolve_in_root(rootfd, buf, O_PATH);
		if (fd < 0 && errno == ENOENT) {
			int pfd;
			*slash = '\0';
			pfd = resolve_in_root(rootfd, buf[0] ? buf : "/", O_PATH | O_DIRECTORY);
			*slash = '/';
			if (pfd < 0)
				return -1;
			int r;
			if (!last || last_is_dir) {
				r = mkdirat(pfd, name, last ? mode : 0755);
			} else {
				r = openat(pfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW |
					O_CLOEXEC, mode);
				if (r >= 0)
					r = close(r);
			}
			int e = errno;
			close(pfd);
			if (r < 0 && e != EEXIST) {
				errno = e;
				return -1;
			}
			/* Re-resolve: an EEXIST symlink is followed inside the root. */
			fd = resolve_in_root(rootfd, buf, O_PATH);
		}
		if (fd < 0)
			return -1;
		if (!last)
			close(fd);
		buf[i] = save;
	}
	return fd;
}

static void fdpath(char *out, int fd)
{
	snprintf(out, FDPATH_MAX, "/proc/self/fd/%d", fd);
}

static unsigned long kept_flags(int fd)
{
	struct statvfs sv;
	unsigned long f = 0;

	if (fstatvfs(fd, &sv) < 0)
		return MS_NOSUID | MS_NODEV | MS_NOEXEC; /* the safe side */
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

/* Remount what is now at target read-only (a new O_PATH fd: the old one
 * names the covered mount). */
static int remount_ro(int rootfd, const char *target, unsigned long extra)
{
	char p[FDPATH_MAX];
	int fd = resolve_in_root(rootfd, target, O_PATH);
	int r;

	if (fd < 0)
		return -1;
	fdpath(p, fd);
	r = mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags(fd) | extra, NULL);
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

static void do_mount(struct launch_ctx *c, int rootfd, const char *source, const char *target,
	const char *fstype, unsigned long flags, const char *data, bool is_dir)
{
	char p[FDPATH_MAX];
	int fd = mkpath_in_root(rootfd, target, is_dir, is_dir ? 0755 : 0644);

	if (fd < 0)
		child_fail(c, errno, "mount %s: resolve target", target);
	fdpath(p, fd);
	if (mount(source, p, fstype, flags, data) < 0)
		child_fail(c, errno, "mount %s", target);
	close(fd);
}

/* tmpfs options plus the SELinux mount label (context="..."), if any, in
 * buf; the child allocates nothing. */
static const char *tmpfs_data(struct launch_ctx *c, const char *base, char *buf, size_t n)
{
	const char *l = c->s->mount_label;

	if (l == NULL || l[0] == '\0')
		return base;
	if ((size_t)snprintf(buf, n, "%s%scontext=\"%s\"", base ? base : "", base && base[0] ? "," : "", l) >= n)
		child_fail(c, ENAMETOOLONG, "tmpfs options with the mount label %s", l);
	return buf;
}

static void set_propagation(struct launch_ctx *c, int rootfd, const char *target,
	enum launch_prop prop)
{
	static const unsigned long how[] = {
		[LAUNCH_PROP_PRIVATE] = MS_REC | MS_PRIVATE,
		[LAUNCH_PROP_RSLAVE] = MS_REC | MS_SLAVE,
		[LAUNCH_PROP_RSHARED] = MS_REC | MS_SHARED,
	};
	char p[FDPATH_MAX];
	int fd;

	if ((unsigned)prop >= 3)
		child_fail(c, EINVAL, "mount %s: propagation", target);
	fd = resolve_in_root(rootfd, target, O_PATH);
	if (fd < 0)
		child_fail(c, errno, "mount %s: propagation: resolve", target);
	fdpath(p, fd);
	if (mount(NULL, p, NULL, how[prop], NULL) < 0)
		child_fail(c, errno, "mount %s: propagation", target);
	close(fd);
}

static void setup_dev(struct launch_ctx *c, int rootfd)
{
	static const char *const devs[] = { "null", "zero", "full", "random", "urandom", "tty" };
	static const char *const links[][2] = {
		{ "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" },
		{ "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" },
		{ "pts/ptmx", "ptmx" }, { "/proc/kcore", "core" },
	};
	const struct launch_spec *s = c->s;
	char tgt[64];
	size_t i;
	int devfd;

	char opts[600];
	do_mount(c, rootfd, "tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME,
		tmpfs_data(c, "mode=755,size=65536k", opts, sizeof opts), true);
	/* Bind the host's nodes: works in a user namespace too, unlike mknod. */
	for (i = 0; i < sizeof devs / sizeof devs[0]; i++) {
		snprintf(tgt, sizeof tgt, "/dev/%s", devs[i]);
		do_mount(c, rootfd, tgt, tgt, NULL, MS_BIND, NULL, false);
	}
	devfd = resolve_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY);
	if (devfd < 0)
		child_fail(c, errno, "mount /dev: reopen");
	for (i = 0; i < sizeof links / sizeof links[0]; i++)
		if (symlinkat(links[i][0], devfd, links[i][1]) < 0)
			child_fail(c, errno, "symlink /dev/%s", links[i][1]);
	close(devfd);
	do_mount(c, rootfd, "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		"newinstance,ptmxmode=0666,mode=0620,gid=5", true);
	/* a /dev/shm of the spec (the pod's) replaces the private one */
	bool own_shm = true;
	for (i = 0; i < s->nmounts && own_shm; i++)
		own_shm = !(s->mounts[i].target && strcmp(s->mounts[i].target, "/dev/shm") == 0);
	if (own_shm)
		do_mount(c, rootfd, "shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			tmpfs_data(c, "mode=1777,size=65536k", opts, sizeof opts), true);
	do_mount(c, rootfd, "mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		NULL, true);

	for (i = 0; i < s->ndevices; i++) {
		const struct launch_device *d = &s->devices[i];
		char dir[4096];
		const char *base;
		int dfd;

		if (!path_ok(d->path) || strlen(d->path) >= sizeof dir ||
		    (d->type != 'c' && d->type != 'b'))
			child_fail(c, EINVAL, "device %s", d->path ? d->path : "(null)");
		memcpy(dir, d->path, strlen(d->path) + 1);
		base = strrchr(dir, '/') + 1;
		dir[base - dir - 1] = '\0';
		dfd = mkpath_in_root(rootfd, dir[0] ? dir : "/", true, 0755);
		if (dfd < 0)
			child_fail(c, errno, "device %s: resolve", d->path);
		mode_t type = d->type == 'c' ? S_IFCHR : S_IFBLK;
		unlinkat(dfd, base, 0);
		if (mknodat(dfd, base, type | (d->mode & 07777), makedev(d->major, d->minor)) < 0)
			child_fail(c, errno, "device %s: mknod", d->path);
		if (fchownat(dfd, base, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0 ||
		    fchmodat(dfd, base, d->mode & 07777, 0) < 0)
			child_fail(c, errno, "device %s: owner/mode", d->path);
		close(dfd);
	}
}

/* /sys/fs/cgroup: a read-only tmpfs with each hierarchy of /proc/self/cgroup
 * mounted read-only (the cgroup namespace, when new, roots them at the
 * container's cgroup); read-write for a privileged container (sys_rw), as
 * containerd and CRI-O mount it. */
static void setup_cgroup(struct launch_ctx *c, int rootfd)
{
	char buf[4096], tgt[256], opts[256];
	unsigned long ro = c->s->sys_rw ? 0 : MS_RDONLY;
	ssize_t n;
	int fd;

	do_mount(c, rootfd, "tmpfs", "/sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		"mode=755,size=64k", true);
	fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		child_fail(c, errno, "open /proc/self/cgroup");
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		child_fail(c, errno, "read /proc/self/cgroup");
	buf[n] = '\0';
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *ctrl = strchr(line, ':');
		char *end = ctrl ? strchr(ctrl + 1, ':') : NULL;
		if (end == NULL)
			continue;
		*end = '\0';
		ctrl++;
		if (*ctrl == '\0') {
			do_mount(c, rootfd, "cgroup2", "/sys/fs/cgroup/unified", "cgroup2",
				MS_NOSUID | MS_NODEV | MS_NOEXEC | ro, NULL, true);
			continue;
		}
		if (strncmp(ctrl, "name=", 5) == 0) {
			snprintf(tgt, sizeof tgt, "/sys/fs/cgroup/%s", ctrl + 5);
			snprintf(opts, sizeof opts, "none,%s", ctrl);
		} else {
			snprintf(tgt, sizeof tgt, "/sys/fs/cgroup/%s", ctrl);
			snprintf(opts, sizeof opts, "%s", ctrl);
		}
		do_mount(c, rootfd, "cgroup", tgt, "cgroup",
			MS_NOSUID | MS_NODEV | MS_NOEXEC | ro, opts, true);
	}
	if (ro && remount_ro(rootfd, "/sys/fs/cgroup", 0) < 0)
		child_fail(c, errno, "remount /sys/fs/cgroup ro");
}

static void mask_path(struct launch_ctx *c, int rootfd, const char *path)
{
	char p[FDPATH_MAX];
	struct stat st;
	int fd = resolve_in_root(rootfd, path, O_PATH);

	if (fd < 0) {
		if (errno == ENOENT)
			return; /* nothing to mask (crun: same) */
		child_fail(c, errno, "masked path %s", path);
	}
	if (fstat(fd, &st) < 0)
		child_fail(c, errno, "masked path %s: stat", path);
	fdpath(p, fd);
	if (S_ISDIR(st.st_mode)) {
		if (mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			"size=0k") < 0)
			child_fail(c, errno, "masked path %s", path);
	} else if (mount("/dev/null", p, NULL, MS_BIND, NULL) < 0) {
		child_fail(c, errno, "masked path %s", path);
	}
	close(fd);
}

static void readonly_path(struct launch_ctx *c, int rootfd, const char *path)
{
	char p[FDPATH_MAX];
	int fd = resolve_in_root(rootfd, path, O_PATH);

	if (fd < 0) {
		if (errno == ENOENT)
			return;
		child_fail(c, errno, "readonly path %s", path);
	}
	fdpath(p, fd);
	if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
		child_fail(c, errno, "readonly path %s: bind", path);
	close(fd);
	if (remount_ro(rootfd, path, MS_NOSUID | MS_NODEV | MS_NOEXEC) < 0)
		child_fail(c, errno, "readonly path %s: remount", path);
}

static void spec_mount(struct launch_ctx *c, int rootfd, const struct launch_mount *m)
{
	bool is_dir = true;
	struct stat st;

	if (!path_ok(m->target))
		child_fail(c, EINVAL, "mount %s: target must be absolute without \"..\"",
			m->target ? m->target : "(null)");
	if (m->fstype == NULL) {
		if (m->source == NULL || stat(m->source, &st) < 0)
			child_fail(c, m->source ? errno : EINVAL, "mount %s: source %s", m->target,
				m->source ? m->source : "(null)");
		is_dir = S_ISDIR(st.st_mode);
		do_mount(c, rootfd, m->source, m->target, NULL,
			MS_BIND | MS_REC | (m->flags & ~(unsigned long)MS_RDONLY), NULL, is_dir);
		if (m->readonly && remount_ro(rootfd, m->target, m->flags &
			(MS_NOSUID | MS_NODEV | MS_NOEXEC)) < 0)
			child_fail(c, errno, "mount %s: remount ro", m->target);
	} else {
		char opts[1200];
		do_mount(c, rootfd, m->source, m->target, m->fstype,
			m->flags | (m->readonly ? MS_RDONLY : 0),
			strcmp(m->fstype, "tmpfs") ? m->data : tmpfs_data(c, m->data, opts, sizeof opts), true);
	}
	set_propagation(c, rootfd, m->target, m->propagation);
}

void rootfs_setup(struct launch_ctx *c)
{
	const struct launch_spec *s = c->s;
	size_t i;
	int rootfd;

	/* A bidirectional (rshared) mount must stay a peer of the host's: then
	 * the namespace stays rshared (as CRI-O's rootfsPropagation), and the
	 * rootfs mount is made private first so that nothing mounted below it
	 * propagates to the host.  That needs the rootfs to be a mount point
	 * (crisp's overlay always is). */
	bool rshared = false;
	for (i = 0; i < s->nmounts; i++)
		rshared |= s->mounts[i].propagation == LAUNCH_PROP_RSHARED;
	if (mount(NULL, "/", NULL, MS_REC | (rshared ? MS_SHARED : MS_SLAVE), NULL) < 0)
		child_fail(c, errno, "mount / %s", rshared ? "rshared" : "rslave");
	if (rshared && mount(NULL, s->rootfs, NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fail(c, errno, "bidirectional mounts need the rootfs to be a mount point: make %s private",
			   s->rootfs);
	if (mount(s->rootfs, s->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		child_fail(c, errno, "bind rootfs %s", s->rootfs);
	rootfd = open(s->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		child_fail(c, errno, "open rootfs %s", s->rootfs);

	do_mount(c, rootfd, "proc", "/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL, true);
	setup_dev(c, rootfd);
	if (s->host_sys) {
		do_mount(c, rootfd, "/sys", "/sys", NULL, MS_BIND | MS_REC, NULL, true);
		if (!s->sys_rw && remount_ro(rootfd, "/sys", MS_NOSUID | MS_NODEV | MS_NOEXEC) < 0)
			child_fail(c, errno, "remount /sys ro");
	} else {
		do_mount(c, rootfd, "sysfs", "/sys", "sysfs",
			(s->sys_rw ? 0 : MS_RDONLY) | MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL, true);
	}
	setup_cgroup(c, rootfd);

	for (i = 0; i < s->nmounts; i++)
		spec_mount(c, rootfd, &s->mounts[i]);
	for (i = 0; s->masked_paths && s->masked_paths[i]; i++)
		mask_path(c, rootfd, s->masked_paths[i]);
	for (i = 0; s->readonly_paths && s->readonly_paths[i]; i++)
		readonly_path(c, rootfd, s->readonly_paths[i]);

	/* cwd: created when absent (root:root 0755), as runc and crun do. */
	if (s->cwd) {
		int fd = mkpath_in_root(rootfd, s->cwd, true, 0755);
		if (fd < 0)
			child_fail(c, errno, "cwd %s", s->cwd);
		close(fd);
	}

	/* crun's do_pivot: no put_old directory needed. */
	int oldroot = rshared ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	if (rshared && oldroot < 0)
		child_fail(c, errno, "open the old root");
	if (fchdir(rootfd) < 0)
		child_fail(c, errno, "chdir rootfs");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		child_fail(c, errno, "pivot_root");
	/* crun and runc make "." rslave here so the detach cannot propagate to
	 * the host; "." names the new root at this point, so MS_REC would also
	 * turn the container's rshared mounts into slaves.  Not needed: the
	 * whole namespace was made rslave before anything was mounted, so the
	 * old root has no shared mount left to propagate through. */
	/* With an rshared namespace the old root is still a peer of the
	 * host's: make it (entered through its own fd, so "." is the old root
	 * and not the new one) rslave so that detaching it cannot propagate,
	 * as runc's pivotRoot does. */
	if (rshared) {
		if (fchdir(oldroot) < 0 || mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
			child_fail(c, errno, "pivot_root: old root rslave");
		close(oldroot);
	}
	if (umount2(".", MNT_DETACH) < 0)
		child_fail(c, errno, "pivot_root: detach old root");
	if (chdir("/") < 0)
		child_fail(c, errno, "chdir /");
	close(rootfd);
}
