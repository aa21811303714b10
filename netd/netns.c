#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/magic.h>

#include "common/util.h"
#include "netd/netns.h"

static int check_name(const char *name, crisp_err_t *err)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > NETNS_NAME_MAX || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "bad network namespace name");
	return 0;
}

static int pin_path(const char *dir, const char *name, char *buf, size_t sz, crisp_err_t *err)
{
	int n;

	if (check_name(name, err) < 0)
		return -1;
	n = snprintf(buf, sz, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sz)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, ENAMETOOLONG, "network namespace path too long");
	return 0;
}

int netns_prepare_dir(const char *dir, crisp_err_t *err)
{
	if (crisp_mkdir_p(dir, 0711, 0, 0) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "creating %s", dir);
	/* Shared already (or made so): done.  EINVAL means not a mount point. */
	if (mount("", dir, NULL, MS_SHARED | MS_REC, NULL) == 0)
		return 0;
	if (errno != EINVAL)
		return crisp_error(err, CRISP_INTERNAL, errno, "making %s a shared mount", dir);
	if (mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "bind-mounting %s onto itself", dir);
	if (mount("", dir, NULL, MS_SHARED | MS_REC, NULL) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "making %s a shared mount", dir);
	return 0;
}

static int check_nsfd(int fd, crisp_err_t *err)
{
	struct statfs sf;
	struct stat a, b;

	if (fstatfs(fd, &sf) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "fstatfs of network namespace");
	if (sf.f_type != NSFS_MAGIC)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "pin is not a namespace (not mounted)");
	/* Never hand out netd's own (the host's) namespace. */
	if (fstat(fd, &a) == 0 && stat("/proc/self/ns/net", &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "pin is the host network namespace");
	return 0;
}

int netns_open(const char *dir, const char *name, int *fd, crisp_err_t *err)
{
	char path[PATH_MAX];
	int f;

	if (pin_path(dir, name, path, sizeof path, err) < 0)
		return -1;
	f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0)
		return crisp_error(err, errno == ENOENT ? CRISP_NOT_FOUND : CRISP_INTERNAL, errno, "opening %s", path);
	if (check_nsfd(f, err) < 0) {
		close(f);
		return -1;
	}
	*fd = f;
	return 0;
}

int netns_create(const char *dir, const char *name, char *path_out, size_t pathsz, int *fd_out, crisp_err_t *err)
{
	char path[PATH_MAX];
	int f, status;
	pid_t pid;

	if (pin_path(dir, name, path, sizeof path, err) < 0)
		return -1;
	if (netns_prepare_dir(dir, err) < 0)
		return -1;
	f = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
	if (f < 0)
		return crisp_error(err, errno == EEXIST ? CRISP_ALREADY_EXISTS : CRISP_INTERNAL, errno, "creating %s",
				   path);
	close(f);
	pid = fork();
	if (pid < 0) {
		int e = errno;
		unlink(path);
		return crisp_error(err, CRISP_INTERNAL, e, "fork");
	}
	if (pid == 0) {
		/* Only async-signal-safe calls: netd may hold locks in libraries. */
		if (unshare(CLONE_NEWNET) < 0)
			_exit(1);
		if (mount("/proc/self/ns/net", path, NULL, MS_BIND, NULL) < 0)
			_exit(2);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			status = -1;
			break;
		}
	if (status != 0) {
		unlink(path);
		return crisp_error(err, CRISP_INTERNAL, 0, "creating network namespace %s: %s failed", path,
				   WIFEXITED(status) && WEXITSTATUS(status) == 1 ? "unshare(CLONE_NEWNET)"
										: "bind mount");
	}
	f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0 || check_nsfd(f, err) < 0) {
		int e = errno;
		if (f >= 0)
			close(f);
		umount2(path, MNT_DETACH);
		unlink(path);
		return f < 0 ? crisp_error(err, CRISP_INTERNAL, e, "opening %s", path) : -1;
	}
	if (path_out != NULL && crisp_strlcpy(path_out, path, pathsz) >= pathsz) {
		close(f);
		umount2(path, MNT_DETACH);
		unlink(path);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, ENAMETOOLONG, "path buffer too small");
	}
	if (fd_out != NULL)
		*fd_out = f;
	else
		close(f);
	return 0;
}

int netns_delete(const char *dir, const char *name, crisp_err_t *err)
{
	char path[PATH_MAX];

	if (pin_path(dir, name, path, sizeof path, err) < 0)
		return -1;
	/* A pin might have been mounted twice (it should not); unmount all. */
	for (int i = 0; i < 8; i++)
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
			if (errno == EINVAL || errno == ENOENT)
				break;
			return crisp_error(err, CRISP_INTERNAL, errno, "unmounting %s", path);
		}
	if (unlink(path) < 0 && errno != ENOENT)
		return crisp_error(err, CRISP_INTERNAL, errno, "removing %s", path);
	return 0;
}
