/*
 * execd/ctr_cgroup: one cgroup per container, <parent>/crisp-<id>, in every
 * hierarchy execd uses: cgroup v2 when /sys/fs/cgroup is unified, else the
 * v1 controllers memory, cpu, cpuacct, pids, cpuset and hugetlb (whichever
 * are mounted).
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
#define HUGEPAGES_DIR "/sys/kernel/mm/hugepages"

/* memory first: dir[0] is where processes are counted and killed */
static const char *const v1_ctrls[] = { "memory", "cpu", "cpuacct", "pids", "cpuset", "hugetlb" };

static char cg_root[PATH_MAX / 2] = CG_ROOT;
static char hp_dir[PATH_MAX / 2] = HUGEPAGES_DIR;

void ctr_cgroup_set_roots(const char *cgroup_root, const char *hugepages_dir)
{
	crisp_strlcpy(cg_root, cgroup_root ? cgroup_root : CG_ROOT, sizeof cg_root);
	crisp_strlcpy(hp_dir, hugepages_dir ? hugepages_dir : HUGEPAGES_DIR, sizeof hp_dir);
}

static bool is_v2(void)
{
	char p[sizeof cg_root + 32];

	snprintf(p, sizeof p, "%s/cgroup.controllers", cg_root);
	return access(p, F_OK) == 0;
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
		if ((size_t)snprintf(cg->dir[0], sizeof cg->dir[0], "%s%s%s%s", cg_root, pp, id ? "/crisp-" : "",
				     id ? id : "") >= sizeof cg->dir[0])
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "cgroup path too long");
		cg->root_len[0] = strlen(cg_root);
		cg->n = 1;
		return 0;
	}
	for (size_t i = 0; i < sizeof v1_ctrls / sizeof v1_ctrls[0] && cg->n < CTR_CG_MAX; i++) {
		char root[sizeof cg_root + 32];
		struct stat st;
		snprintf(root, sizeof root, "%s/%s", cg_root, v1_ctrls[i]);
		if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		/* cpu and cpuacct are often one hierarchy (symlinks to cpu,cpuacct) */
		char real[PATH_MAX];
		if (realpath(root, real) == NULL)
			continue;
		size_t rl = strlen(real);
		bool dup = false;
		for (int j = 0; j < cg->n; j++)
			if (cg->root_len[j] == rl && !strncmp(cg->dir[j], real, rl))
				dup = true;
		if (dup)
			continue;
		if (rl + strlen(pp) + (id ? strlen(id) : 0) + 8 > sizeof cg->dir[0])
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "cgroup path too long");
		memcpy(cg->dir[cg->n], real, rl + 1);
		strcat(cg->dir[cg->n], pp);
		if (id) {
			strcat(cg->dir[cg->n], "/crisp-");
			strcat(cg->dir[cg->n], id);
		}
		const char *base = strrchr(real, '/');
		crisp_strlcpy(cg->ctrl[cg->n], base ? base + 1 : real, sizeof cg->ctrl[0]);
		cg->root_len[cg->n] = rl;
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

	if (strchr(file, '/') != NULL || file[0] == '.') {
		errno = EINVAL;
		return -1;
	}
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* never O_CREAT: a name the kernel does not offer is an error */
	if ((fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	int r = crisp_write_all(fd, val, strlen(val));
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

/* dir/file without its trailing newlines into buf (n > 1): its length, or
 * -1 when it cannot be read or does not fit. */
static ssize_t read_str(const char *dir, const char *file, char *buf, size_t n)
{
	char path[PATH_MAX + 64];
	ssize_t r;
	int fd;

	snprintf(path, sizeof path, "%s/%s", dir, file);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0 || (size_t)r == n - 1)
		return -1;
	while (r > 0 && buf[r - 1] == '\n')
		r--;
	buf[r] = '\0';
	return r;
}

static bool has_file(const char *dir, const char *file)
{
	char path[PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, file);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Whether the comma-separated list names ctrl ("cpu,cpuacct", "cpuacct"). */
static bool ctrl_has(const char *list, const char *ctrl)
{
	size_t l = strlen(ctrl);

	for (const char *p = list;;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == l && strncmp(p, ctrl, l) == 0)
			return true;
		if (e == NULL)
			return false;
		p = e + 1;
	}
}

/* The container's directory in the hierarchy of ctrl ("memory", "cpu",
 * "cpuacct", ...); with v2 the one directory. */
static const char *find_dir(const struct ctr_cg *cg, const char *ctrl)
{
	if (cg->v2)
		return cg->n > 0 ? cg->dir[0] : NULL;
	for (int i = 0; i < cg->n; i++)
		if (ctrl_has(cg->ctrl[i], ctrl))
			return cg->dir[i];
	return NULL;
}

/* A validated page size ("2MB": [1-9][0-9]* and B, KB, MB, GB, TB or PB,
 * base 1024) in bytes; 0 when it is none or does not fit. */
static uint64_t hugepage_bytes(const char *s)
{
	static const char *const units[] = { "B", "KB", "MB", "GB", "TB", "PB" };
	char *e;

	if (s[0] < '1' || s[0] > '9')
		return 0;
	errno = 0;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno != 0)
		return 0;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(e, units[i]) != 0)
			continue;
		for (size_t k = 0; k < i; k++) {
			if (v > UINT64_MAX / 1024)
				return 0;
			v *= 1024;
		}
		return v;
	}
	return 0;
}

/* A size the kernel has huge pages of (hugepages-<kB>kB), whether or not
 * a hugetlb controller is there to limit them. */
static bool hugepage_supported(const char *size)
{
	char path[sizeof hp_dir + 64];
	uint64_t b = hugepage_bytes(size);
	struct stat st;

	if (b == 0 || b % 1024 != 0)
		return false;
	snprintf(path, sizeof path, "%s/hugepages-%llukB", hp_dir, (unsigned long long)(b / 1024));
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int ctr_cgroup_check(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err)
{
	if (r == NULL)
		return 0;
	if (r->memory_limit_in_bytes < 0 || r->cpu_shares < 0 || r->cpu_quota < -1 || r->cpu_period < 0 ||
	    r->memory_swap_limit_in_bytes < -1)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "negative resource limit");
	/* runc's rules (ConvertMemorySwapToCgroupV2Value) and CRI-O's: memory
	 * plus swap is never below memory, and means nothing without it. */
	if (r->memory_swap_limit_in_bytes > 0 && r->memory_limit_in_bytes == 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "memory_swap_limit_in_bytes is set without memory_limit_in_bytes");
	if (r->memory_swap_limit_in_bytes > 0 && r->memory_swap_limit_in_bytes < r->memory_limit_in_bytes)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "memory_swap_limit_in_bytes %lld is below memory_limit_in_bytes %lld",
				   (long long)r->memory_swap_limit_in_bytes, (long long)r->memory_limit_in_bytes);
	for (size_t i = 0; i < r->n_hugepage_limits; i++) {
		const char *ps = r->hugepage_limits[i]->page_size;
		if (!hugepage_supported(ps))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "huge page size \"%.16s\" is not one of this node's",
					   ps);
		if (r->hugepage_limits[i]->limit > INT64_MAX)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "huge page limit out of range");
	}
	if (r->n_unified > 0 && !cg->v2)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "unified: cgroup v2 settings given, but this node runs cgroup v1");
	for (size_t i = 0; i < r->n_unified; i++) {
		const char *k = r->unified[i]->key;
		/* the CRI validator allows far less; this is the last line */
		if (k[0] == '\0' || k[0] == '.' || strchr(k, '/') || strncmp(k, "cgroup.", 7) == 0)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "unified: \"%.64s\" is not a controller file", k);
	}
	return 0;
}

static int write_fail(crisp_err_t *err, int e, int enoent_code, const char *what, const char *file)
{
	int code = e == EINVAL || e == ERANGE || e == EBUSY || e == EOVERFLOW ? CRISP_INVALID_ARGUMENT
		   : e == ENOENT || e == EACCES || e == EPERM                 ? enoent_code
									       : CRISP_INTERNAL;
	return crisp_error(err, code, e, "%s: %s", what, file);
}

static int apply_cpuset(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err)
{
	const char *d;

	if (r->cpuset_cpus[0] == '\0' && r->cpuset_mems[0] == '\0')
		return 0;
	if ((d = find_dir(cg, "cpuset")) == NULL)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "cpuset: no cpuset controller on this node");
	if (r->cpuset_cpus[0] && write_str(d, "cpuset.cpus", r->cpuset_cpus) < 0)
		return write_fail(err, errno, CRISP_FAILED_PRECONDITION, "cpuset_cpus (cpus the node's cgroup has?)",
				  "cpuset.cpus");
	if (r->cpuset_mems[0] && write_str(d, "cpuset.mems", r->cpuset_mems) < 0)
		return write_fail(err, errno, CRISP_FAILED_PRECONDITION, "cpuset_mems (nodes the node's cgroup has?)",
				  "cpuset.mems");
	return 0;
}

/* Skipped without a hugetlb controller (v1: no hierarchy; v2: not enabled
 * for the cgroup): CRI-O ignores the limits then, containerd too by default
 * (tolerate_missing_hugetlb_controller), and kubelet sends one for every
 * size the node has. */
static int apply_hugetlb(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err)
{
	const char *d = find_dir(cg, "hugetlb");
	char f[64], v[32];

	for (size_t i = 0; d != NULL && i < r->n_hugepage_limits; i++) {
		snprintf(f, sizeof f, "hugetlb.%.16s.%s", r->hugepage_limits[i]->page_size,
			 cg->v2 ? "max" : "limit_in_bytes");
		if (cg->v2 && !has_file(d, f))
			continue;
		snprintf(v, sizeof v, "%llu", (unsigned long long)r->hugepage_limits[i]->limit);
		if (write_str(d, f, v) < 0)
			return write_fail(err, errno, CRISP_FAILED_PRECONDITION, "huge page limit", f);
	}
	return 0;
}

/* Memory and memory+swap.  As CRI-O: swap is set only with a memory limit,
 * unset (0) means no swap (memory+swap = memory), -1 unlimited; nothing
 * when the node does not account swap.  kubelet 1.26 sends swap = memory
 * (no swap) unless NodeSwap is on, and -1 for UnlimitedSwap.  v2 takes the
 * swap alone: memory.swap.max = swap - memory. */
static int apply_memory(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err)
{
	long long mem = r->memory_limit_in_bytes, swap = r->memory_swap_limit_in_bytes;
	const char *d = find_dir(cg, "memory");
	char v[32], sv[32], cur[64];

	if (mem <= 0 || d == NULL)
		return 0;
	long long total = swap != 0 ? swap : mem;
	snprintf(v, sizeof v, "%lld", mem);
	if (cg->v2) {
		if (write_str(d, "memory.max", v) < 0)
			goto fail_mem;
		if (!has_file(d, "memory.swap.max"))
			return 0;
		if (total < 0)
			snprintf(sv, sizeof sv, "max");
		else
			snprintf(sv, sizeof sv, "%lld", total - mem);
		if (write_str(d, "memory.swap.max", sv) < 0)
			return write_fail(err, errno, CRISP_INTERNAL, "swap limit", "memory.swap.max");
		return 0;
	}
	if (!has_file(d, "memory.memsw.limit_in_bytes")) {
		if (write_str(d, "memory.limit_in_bytes", v) < 0)
			goto fail_mem;
		return 0;
	}
	/* The kernel keeps memory <= memory+swap at every step: memsw goes
	 * first when it is not below the current memory limit, else memory
	 * does (it is then below the current memsw, which is above it). */
	snprintf(sv, sizeof sv, "%lld", total); /* -1: unlimited */
	long long curmem = read_str(d, "memory.limit_in_bytes", cur, sizeof cur) > 0 ? strtoll(cur, NULL, 10) : LLONG_MAX;
	if (total < 0 || total >= curmem) {
		if (write_str(d, "memory.memsw.limit_in_bytes", sv) < 0)
			goto fail_swap;
		if (write_str(d, "memory.limit_in_bytes", v) < 0)
			goto fail_mem;
	} else {
		if (write_str(d, "memory.limit_in_bytes", v) < 0)
			goto fail_mem;
		if (write_str(d, "memory.memsw.limit_in_bytes", sv) < 0)
			goto fail_swap;
	}
	return 0;
fail_mem:
	return crisp_error(err, errno == EBUSY || errno == EINVAL ? CRISP_INVALID_ARGUMENT : CRISP_INTERNAL, errno,
			   "memory limit %lld", mem);
fail_swap:
	return crisp_error(err, errno == EBUSY || errno == EINVAL ? CRISP_INVALID_ARGUMENT : CRISP_INTERNAL, errno,
			   "memory+swap limit %lld", total);
}

static int apply_cpu(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err)
{
	char v[64];
	const char *d;

	if (cg->v2) {
		d = cg->dir[0];
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
	if ((d = find_dir(cg, "cpu")) != NULL) {
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
fail_cpu:
	return crisp_error(err, errno == EINVAL || errno == ERANGE ? CRISP_INVALID_ARGUMENT : CRISP_INTERNAL, errno,
			   "cpu limits");
}

/* The unified map, after the typed fields (as runc): files of the
 * container's own v2 cgroup, never created (no O_CREAT), never followed. */
static int apply_unified(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err)
{
	for (size_t i = 0; cg->v2 && i < r->n_unified; i++) {
		const char *k = r->unified[i]->key;
		if (write_str(cg->dir[0], k, r->unified[i]->value) < 0)
			return write_fail(err, errno, CRISP_INVALID_ARGUMENT,
					  "unified (no such file: controller not enabled or unknown?)", k);
	}
	return 0;
}

int ctr_cgroup_apply(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err)
{
	if (r == NULL)
		return 0;
	/* everything checkable first; then what the kernel is likeliest to
	 * refuse (cpus outside the parent's) before what is easiest to take */
	if (ctr_cgroup_check(cg, r, err) < 0 || apply_cpuset(cg, r, err) < 0 || apply_hugetlb(cg, r, err) < 0 ||
	    apply_memory(cg, r, err) < 0 || apply_cpu(cg, r, err) < 0 || apply_unified(cg, r, err) < 0)
		return -1;
	return 0;
}

/* Give dir its parent's cpuset.cpus or .mems when its own is empty: a v1
 * cpuset starts with neither, and then no task may join it and no child
 * may take any. */
static int cpuset_inherit(char *dir, const char *file)
{
	char v[4096], *slash;
	ssize_t n;

	if ((n = read_str(dir, file, v, sizeof v)) != 0)
		return n < 0 ? -1 : 0;
	if ((slash = strrchr(dir, '/')) == NULL)
		return -1;
	*slash = '\0';
	n = read_str(dir, file, v, sizeof v);
	*slash = '/';
	if (n <= 0) {
		errno = n == 0 ? ENOSPC : errno;
		return -1;
	}
	return write_str(dir, file, v);
}

/* mkdir -p of dir in the v1 cpuset hierarchy (mounted at dir[0..root_len)),
 * each level given its parent's cpus and mems where it has none. */
static int cpuset_mkdir(const char *dir, size_t root_len)
{
	char p[PATH_MAX];

	if (crisp_strlcpy(p, dir, sizeof p) >= sizeof p || strlen(p) <= root_len + 1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (size_t i = root_len + 1;; i++) {
		char c = p[i];
		if (c != '/' && c != '\0')
			continue;
		p[i] = '\0';
		if ((mkdir(p, 0755) < 0 && errno != EEXIST) || cpuset_inherit(p, "cpuset.cpus") < 0 ||
		    cpuset_inherit(p, "cpuset.mems") < 0)
			return -1;
		p[i] = c;
		if (c == '\0')
			return 0;
	}
}

int ctr_cgroup_create(const struct ctr_cg *cg, const Runtime__V1__LinuxContainerResources *r, crisp_err_t *err)
{
	if (ctr_cgroup_check(cg, r, err) < 0)
		return -1;
	for (int i = 0; i < cg->n; i++) {
		int rc = !cg->v2 && ctrl_has(cg->ctrl[i], "cpuset") ? cpuset_mkdir(cg->dir[i], cg->root_len[i])
								    : crisp_mkdir_p(cg->dir[i], 0755, 0, 0);
		if (rc < 0) {
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
	const char *d = find_dir(cg, "memory");

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
	if ((d = find_dir(cg, "memory")) != NULL) {
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
	const char *d = cg->v2 ? cg->dir[0] : find_dir(cg, "pids");
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
	const char *rel = cg->dir[0] + cg->root_len[0];
	ssize_t n;
	int fd;

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

/* A whole-number file ("max" and v1's page-aligned LLONG_MAX are "no
 * limit"): 1 and *v set, 0 for no limit, -1 unreadable. */
static int read_limit(const char *dir, const char *file, long long *v)
{
	char buf[64], *end;

	if (dir == NULL || read_str(dir, file, buf, sizeof buf) <= 0)
		return -1;
	if (!strcmp(buf, "max"))
		return 0;
	errno = 0;
	long long x = strtoll(buf, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	if (x >= (1LL << 62) || x < 0)
		return 0;
	*v = x;
	return 1;
}

void ctr_cgroup_read(const struct ctr_cg *cg, Runtime__V1__LinuxContainerResources *r, char *cpus, char *mems,
		     size_t setsz)
{
	const char *cpu = find_dir(cg, "cpu"), *mem = find_dir(cg, "memory"), *cs = find_dir(cg, "cpuset");
	long long v = 0, m = 0;
	char buf[64];
	int k, km;

	if (cg->n <= 0)
		return;
	if (cs != NULL && read_str(cs, "cpuset.cpus", cpus, setsz) >= 0)
		r->cpuset_cpus = cpus;
	if (cs != NULL && read_str(cs, "cpuset.mems", mems, setsz) >= 0)
		r->cpuset_mems = mems;
	km = read_limit(mem, cg->v2 ? "memory.max" : "memory.limit_in_bytes", &m);
	if (km >= 0)
		r->memory_limit_in_bytes = km ? m : 0;
	if (cg->v2) {
		if ((k = read_limit(mem, "memory.swap.max", &v)) >= 0 && km >= 0)
			r->memory_swap_limit_in_bytes = km == 0 ? 0 : k == 0 ? -1 : m + v;
		if (cpu != NULL && read_limit(cpu, "cpu.weight", &v) > 0)
			r->cpu_shares = 2 + ((v - 1) * 262142) / 9999; /* the inverse of the write */
		if (cpu != NULL && read_str(cpu, "cpu.max", buf, sizeof buf) > 0) {
			long long q = 0, pd = 0;
			char qs[32];
			if (sscanf(buf, "%31s %lld", qs, &pd) == 2) {
				q = strcmp(qs, "max") ? strtoll(qs, NULL, 10) : 0;
				r->cpu_quota = q > 0 ? q : 0;
				r->cpu_period = pd;
			}
		}
		return;
	}
	if ((k = read_limit(mem, "memory.memsw.limit_in_bytes", &v)) >= 0 && km >= 0)
		r->memory_swap_limit_in_bytes = km == 0 ? 0 : k == 0 ? -1 : v;
	if (read_limit(cpu, "cpu.shares", &v) > 0)
		r->cpu_shares = v;
	if (cpu != NULL && read_str(cpu, "cpu.cfs_quota_us", buf, sizeof buf) > 0)
		r->cpu_quota = strtoll(buf, NULL, 10) > 0 ? strtoll(buf, NULL, 10) : 0;
	if (read_limit(cpu, "cpu.cfs_period_us", &v) > 0)
		r->cpu_period = v;
}
