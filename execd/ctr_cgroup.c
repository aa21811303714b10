/*
 * execd/ctr_cgroup: one cgroup per container, <parent>/crisp-<id>, in every
 * hierarchy execd uses: cgroup v2 when /sys/fs/cgroup is unified, else the
 * v1 controllers memory, cpu, cpuacct and pids (whichever are mounted).
 * The parent is the pod's cgroup_parent: a cgroupfs path ("/kubepods/...")
 * or a systemd slice name ("kubepods-besteffort.slice", expanded as
 * systemd does); empty means "/crisp".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"
#include "execd/ctr_cgroup.h"

#define CG_ROOT "/sys/fs/cgroup"

static const char *const v1_ctrls[] = { "memory", "cpu", "cpuacct", "pids" };

static bool is_v2(void)
{
	return access(CG_ROOT "/cgroup.controllers", F_OK) == 0;
}

/* The parent as a cgroupfs path without trailing slash ("" = root). */
static int parent_path(const char *parent, char *out, size_t n, crisp_err_t *err)
{
	size_t o = 0;

	if (parent == NULL || parent[0] == '\0')
		parent = "/crisp";
	if (strstr(parent, "..") || strchr(parent, '\n'))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "cgroup_parent \"%.64s\" is not a cgroup path", parent);
	if (parent[0] == '/') {
		crisp_strlcpy(out, parent, n);
		size_t l = strlen(out);
		while (l > 0 && out[l - 1] == '/')
			out[--l] = '\0';
		return 0;
	}
	size_t pl = strlen(parent);
	if (pl < 7 || strcmp(parent + pl - 6, ".slice") != 0 || strchr(parent, '/'))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "cgroup_parent \"%.64s\": neither a cgroupfs path nor a systemd slice", parent);
	/* a-b-c.slice -> /a.slice/a-b.slice/a-b-c.slice */
	size_t base = pl - 6;
	out[0] = '\0';
	for (size_t i = 0; i <= base; i++) {
		if (i == base || parent[i] == '-') {
			int r = snprintf(out + o, n - o, "/%.*s.slice", (int)i, parent);
			if (r < 0 || (size_t)r >= n - o)
				return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "cgroup_parent too long");
			o += (size_t)r;
		}
	}
	return 0;
}

/* <hierarchy><parent>[/crisp-<id>] in every hierarchy (id NULL: the parent). */
static int cg_paths(const char *parent, const char *id, struct ctr_cg *cg, crisp_err_t *err)
{
	char pp[1024];

	memset(cg, 0, sizeof *cg);
	if (parent_path(parent, pp, sizeof pp, err) < 0)
		return -1;
	cg->v2 = is_v2();
	if (cg->v2) {
		if ((size_t)snprintf(cg->dir[0], sizeof cg->dir[0], CG_ROOT "%s%s%s", pp, id ? "/crisp-" : "",
				     id ? id : "") >= sizeof cg->dir[0])
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "cgroup path too long");
		cg->n = 1;
		return 0;
	}
	for (size_t i = 0; i < sizeof v1_ctrls / sizeof v1_ctrls[0]; i++) {
		char root[64];
		struct stat st;
		snprintf(root, sizeof root, CG_ROOT "/%s", v1_ctrls[i]);
		if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		/* cpu and cpuacct are often one hierarchy (symlinks to cpu,cpuacct) */
		char real[PATH_MAX];
		if (realpath(root, real) == NULL)
			continue;
		bool dup = false;
		for (int j = 0; j < cg->n; j++)
			if (!strncmp(cg->dir[j], real, strlen(real)) && cg->dir[j][strlen(real)] == '/')
				dup = true;
		if (dup)
			continue;
		if (strlen(real) + strlen(pp) + (id ? strlen(id) : 0) + 8 > sizeof cg->dir[0])
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "cgroup path too long");
		memcpy(cg->dir[cg->n], real, strlen(real) + 1);
		strcat(cg->dir[cg->n], pp);
		if (id) {
			strcat(cg->dir[cg->n], "/crisp-");
			strcat(cg->dir[cg->n], id);
		}
		snprintf(cg->ctrl[cg->n], sizeof cg->ctrl[0], "%s", v1_ctrls[i]);
		cg->n++;
	}
	return 0;
}

int ctr_cgroup_paths(const char *parent, const char *id, struct ctr_cg *cg, crisp_err_t *err)
{
	return cg_paths(parent, id, cg, err);
}

int ctr_cgroup_parent_paths(const char *parent, struct ctr_cg *cg, crisp_err_t *err)
{
	return cg_paths(parent, NULL, cg, err);
}

bool ctr_cgroup_exists(const struct ctr_cg *cg)
{
	struct stat st;

	for (int i = 0; i < cg->n; i++)
		if (stat(cg->dir[i], &st) < 0 || !S_ISDIR(st.st_mode))
			return false;
	return cg->n > 0;
}

static int write_str(const char *dir, const char *file, const char *val)
{
	char path[PATH_MAX + 64];
	int fd;

	snprintf(path, sizeof path, "%s/%s", dir, file);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	int r = crisp_write_all(fd, val, strlen(val));
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

static const char *find_dir(const struct ctr_cg *cg, const char *needle)
{
	if (cg->v2)
		return cg->dir[0];
	for (int i = 0; i < cg->n; i++)
		if (strstr(cg->dir[i], needle))
			return cg->dir[i];
	return NULL;
}

int ctr_cgroup_apply(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err)
{
	char v[64];
	const char *d;

	if (r == NULL)
		return 0;
	if (r->memory_limit_in_bytes < 0 || r->cpu_shares < 0 || r->cpu_quota < -1 || r->cpu_period < 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "negative resource limit");
	if (cg->v2) {
		d = cg->dir[0];
		if (r->memory_limit_in_bytes > 0) {
			snprintf(v, sizeof v, "%lld", (long long)r->memory_limit_in_bytes);
			if (write_str(d, "memory.max", v) < 0)
				goto fail_mem;
		}
		if (r->cpu_shares > 0) {
			long long w = 1 + ((r->cpu_shares - 2) * 9999) / 262142;
			snprintf(v, sizeof v, "%lld", w < 1 ? 1 : w > 10000 ? 10000 : w);
			if (write_str(d, "cpu.weight", v) < 0)
				goto fail_cpu;
		}
		if (r->cpu_quota != 0 || r->cpu_period > 0) {
			if (r->cpu_quota > 0)
				snprintf(v, sizeof v, "%lld %lld", (long long)r->cpu_quota,
					 (long long)(r->cpu_period > 0 ? r->cpu_period : 100000));
			else
				snprintf(v, sizeof v, "max %lld", (long long)(r->cpu_period > 0 ? r->cpu_period : 100000));
			if (write_str(d, "cpu.max", v) < 0)
				goto fail_cpu;
		}
		return 0;
	}
	if (r->memory_limit_in_bytes > 0 && (d = find_dir(cg, "/memory")) != NULL) {
		snprintf(v, sizeof v, "%lld", (long long)r->memory_limit_in_bytes);
		if (write_str(d, "memory.limit_in_bytes", v) < 0)
			goto fail_mem;
	}
	if ((d = find_dir(cg, "/cpu")) != NULL) {
		if (r->cpu_shares > 0) {
			snprintf(v, sizeof v, "%lld", (long long)(r->cpu_shares < 2 ? 2 : r->cpu_shares));
			if (write_str(d, "cpu.shares", v) < 0)
				goto fail_cpu;
		}
		if (r->cpu_period > 0) {
			snprintf(v, sizeof v, "%lld", (long long)r->cpu_period);
			if (write_str(d, "cpu.cfs_period_us", v) < 0)
				goto fail_cpu;
		}
		if (r->cpu_quota != 0) {
			snprintf(v, sizeof v, "%lld", (long long)(r->cpu_quota > 0 ? r->cpu_quota : -1));
			if (write_str(d, "cpu.cfs_quota_us", v) < 0)
				goto fail_cpu;
		}
	}
	return 0;
fail_mem:
	return crisp_error(err, errno == EBUSY || errno == EINVAL ? CRISP_INVALID_ARGUMENT : CRISP_INTERNAL, errno,
			   "memory limit %lld", (long long)r->memory_limit_in_bytes);
fail_cpu:
	return crisp_error(err, errno == EINVAL || errno == ERANGE ? CRISP_INVALID_ARGUMENT : CRISP_INTERNAL, errno,
			   "cpu limits");
}

int ctr_cgroup_create(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err)
{
	for (int i = 0; i < cg->n; i++) {
		if (crisp_mkdir_p(cg->dir[i], 0755, 0, 0) < 0) {
			int e = errno;
			ctr_cgroup_remove(cg);
			return crisp_error(err, CRISP_INTERNAL, e, "cgroup %s", cg->dir[i]);
		}
	}
	if (ctr_cgroup_apply(cg, r, err) < 0) {
		ctr_cgroup_remove(cg);
		return -1;
	}
	return 0;
}

void ctr_cgroup_remove(const struct ctr_cg *cg)
{
	for (int i = 0; i < cg->n; i++)
		if (rmdir(cg->dir[i]) < 0 && errno != ENOENT) {
			/* a process may still be dying: one short retry */
			usleep(20000);
			(void)rmdir(cg->dir[i]);
		}
}

static long long read_ll(const char *dir, const char *file, const char *key)
{
	char path[PATH_MAX + 64], buf[4096];
	int fd;
	ssize_t n;

	snprintf(path, sizeof path, "%s/%s", dir, file);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (key == NULL)
		return strtoll(buf, NULL, 10);
	size_t kl = strlen(key);
	for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, key, kl) && l[kl] == ' ')
			return strtoll(l + kl + 1, NULL, 10);
	return -1;
}

bool ctr_cgroup_oom_killed(const struct ctr_cg *cg)
{
	const char *d = find_dir(cg, "/memory");

	if (d == NULL)
		return false;
	if (cg->v2)
		return read_ll(d, "memory.events", "oom_kill") > 0;
	return read_ll(d, "memory.oom_control", "oom_kill") > 0;
}

void ctr_cgroup_stats(const struct ctr_cg *cg, struct ctr_cg_stats *s)
{
	const char *d;

	memset(s, 0, sizeof *s);
	if (cg->v2) {
		long long u = read_ll(cg->dir[0], "cpu.stat", "usage_usec");
		s->cpu_ns = u > 0 ? (uint64_t)u * 1000 : 0;
		long long m = read_ll(cg->dir[0], "memory.current", NULL);
		long long inact = read_ll(cg->dir[0], "memory.stat", "inactive_file");
		s->mem_usage = m > 0 ? (uint64_t)m : 0;
		s->mem_working_set = m > 0 ? (uint64_t)(inact > 0 && inact < m ? m - inact : m) : 0;
		return;
	}
	if ((d = find_dir(cg, "cpuacct")) != NULL) {
		long long u = read_ll(d, "cpuacct.usage", NULL);
		s->cpu_ns = u > 0 ? (uint64_t)u : 0;
	}
	if ((d = find_dir(cg, "/memory")) != NULL) {
		long long m = read_ll(d, "memory.usage_in_bytes", NULL);
		long long inact = read_ll(d, "memory.stat", "total_inactive_file");
		s->mem_usage = m > 0 ? (uint64_t)m : 0;
		s->mem_working_set = m > 0 ? (uint64_t)(inact > 0 && inact < m ? m - inact : m) : 0;
	}
}

/* Lines of <dir>/cgroup.procs in dir and its sub-cgroups (depth-bounded). */
static uint64_t count_procs(const char *dir, int depth)
{
	char path[PATH_MAX + 64], buf[8192];
	uint64_t n = 0;
	ssize_t r;
	int fd;

	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		while ((r = read(fd, buf, sizeof buf)) > 0)
			for (ssize_t i = 0; i < r; i++)
				n += buf[i] == '\n';
		close(fd);
	}
	if (depth <= 0)
		return n;
	DIR *d = opendir(dir);
	if (d == NULL)
		return n;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= PATH_MAX)
			continue;
		n += count_procs(path, depth - 1);
	}
	closedir(d);
	return n;
}

uint64_t ctr_cgroup_procs(const struct ctr_cg *cg)
{
	const char *d = cg->v2 ? cg->dir[0] : find_dir(cg, "/pids");
	long long v;

	if (d != NULL && (v = read_ll(d, "pids.current", NULL)) >= 0)
		return (uint64_t)v;
	/* no pids controller: count the member processes */
	return cg->n > 0 ? count_procs(cg->dir[0], 3) : 0;
}

/* Whether /proc/<pid>/cgroup names dir's path relative to its hierarchy's
 * mount (dir = /sys/fs/cgroup/<ctrl>/<rel> in v1, /sys/fs/cgroup/<rel> in v2). */
static bool pid_in_cgroup(pid_t pid, const struct ctr_cg *cg)
{
	char path[64], buf[8192], want[PATH_MAX + 2];
	const char *rel = cg->dir[0] + strlen("/sys/fs/cgroup");
	ssize_t n;
	int fd;

	if (!cg->v2) {
		rel = strchr(rel + 1, '/'); /* past "/<ctrl>" */
		if (rel == NULL)
			return false;
	}
	snprintf(want, sizeof want, ":%s\n", rel);
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, want) != NULL;
}

int ctr_cgroup_kill_all(const struct ctr_cg *cg)
{
	char path[PATH_MAX + 32], buf[16384];
	int killed = 0;

	if (cg->n == 0)
		return 0;
	if (cg->v2) {
		/* Linux 5.14+: the kernel kills every member, no race at all. */
		snprintf(path, sizeof path, "%s/cgroup.kill", cg->dir[0]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			bool ok = write(fd, "1", 1) == 1;
			close(fd);
			if (ok)
				return 1;
		}
	}
	/* Each pid is pinned with a pidfd first and checked to be a member
	 * afterwards, so a pid reused by a process outside the container in
	 * between is never signalled.  A few rounds catch forks in flight. */
	for (int round = 0; round < 8; round++) {
		ssize_t n;
		int fd, found = 0;

		snprintf(path, sizeof path, "%s/cgroup.procs", cg->dir[0]);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			break;
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0)
			break;
		buf[n] = '\0';
		for (char *l = buf, *e; *l; l = e) {
			long pid = strtol(l, &e, 10);
			int pfd;

			if (e == l)
				break;
			while (*e == '\n')
				e++;
			if (pid <= 1 || (pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0)) < 0)
				continue;
			if (pid_in_cgroup((pid_t)pid, cg) &&
			    syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0) == 0) {
				killed++;
				found++;
			}
			close(pfd);
		}
		if (found == 0)
			break;
		usleep(2000);
	}
	return killed;
}
