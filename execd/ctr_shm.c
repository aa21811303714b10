/*
 * execd/ctr_shm: the pod's shared /dev/shm (see ctr_shm.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "common/log.h"
#include "execd/ctr_shm.h"

int ctr_shm_path(const char *pods_dir, const char *pod_id, char *out, size_t n)
{
	int r = snprintf(out, n, "%s/%s/%s", pods_dir, pod_id, CTR_SHM_LEAF);

	return r < 0 || (size_t)r >= n ? -1 : 0;
}

/* A tmpfs mounted right on path (not the tmpfs the run dir may live on). */
static bool is_tmpfs_mountpoint(const char *path)
{
	char parent[4096];
	struct stat st, pst;
	struct statfs sf;
	const char *slash = strrchr(path, '/');

	if (slash == NULL || (size_t)(slash - path) >= sizeof parent)
		return false;
	memcpy(parent, path, (size_t)(slash - path));
	parent[slash - path] = '\0';
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) || lstat(parent[0] ? parent : "/", &pst) < 0)
		return false;
	if (statfs(path, &sf) < 0 || sf.f_type != TMPFS_MAGIC)
		return false;
	return st.st_dev != pst.st_dev;
}

bool ctr_shm_mounted(const char *pods_dir, const char *pod_id)
{
	char path[4096];

	return ctr_shm_path(pods_dir, pod_id, path, sizeof path) == 0 && is_tmpfs_mountpoint(path);
}

int ctr_shm_mount(const char *pods_dir, const char *pod_id, crisp_err_t *err)
{
	char path[4096];
	struct stat st;

	if (ctr_shm_path(pods_dir, pod_id, path, sizeof path) < 0)
		return crisp_error(err, CRISP_INTERNAL, 0, "pod shm path too long");
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return crisp_error(err, CRISP_INTERNAL, errno, "pod shm directory %s", path);
	/* execd's own tree: anything but a plain directory is not ours to use */
	if (lstat(path, &st) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "pod shm directory %s", path);
	if (!S_ISDIR(st.st_mode))
		return crisp_error(err, CRISP_INTERNAL, ENOTDIR, "pod shm %s is not a directory", path);
	if (is_tmpfs_mountpoint(path))
		return 0;
	if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, CTR_SHM_OPTS) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "mount the pod's shm tmpfs on %s", path);
	/* private: nothing mounted below it reaches another namespace */
	if (mount(NULL, path, NULL, MS_PRIVATE, NULL) < 0) {
		int e = errno;
		(void)umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
		return crisp_error(err, CRISP_INTERNAL, e, "make the pod's shm %s private", path);
	}
	return 0;
}

void ctr_shm_unmount(const char *pods_dir, const char *pod_id)
{
	char path[4096];

	if (ctr_shm_path(pods_dir, pod_id, path, sizeof path) < 0)
		return;
	/* every layer a crash between mount and record may have stacked */
	for (int i = 0; i < 16; i++)
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
			break;
	if (rmdir(path) < 0 && errno != ENOENT)
		log_warn("pod %.12s: %s stays: %s", pod_id, path, strerror(errno));
}
