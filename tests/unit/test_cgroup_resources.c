/*
 * Unit tests of a container's cgroup limits (execd/ctr_cgroup.c) beyond
 * memory and cpu: cpuset, huge pages, swap and the CRI unified map, on a
 * cgroup v2 layout and a v1 one, both made in a temporary directory (the
 * code's cgroup root and huge page sizes directory point there), so the v2
 * writes are checked on a node that runs v1.  The CRI validator's rules for
 * the same fields, which execd applies again, are checked here too.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/util.h"
#include "execd/ctr_cgroup.h"
#include "frontd/validate.h"

static char g_tmp[64];

static void pathf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	assert_true(r > 0 && (size_t)r < n);
}

static void put(const char *dir, const char *file, const char *val)
{
	char p[PATH_MAX];
	pathf(p, sizeof p, "%s/%s", dir, file);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(crisp_write_all(fd, val, strlen(val)), 0);
	close(fd);
}

/* dir/file without trailing newline ("" when empty); NULL when absent. */
static const char *get(const char *dir, const char *file)
{
	static char buf[4096];
	char p[PATH_MAX];
	pathf(p, sizeof p, "%s/%s", dir, file);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	assert_true(n >= 0);
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return buf;
}

static bool exists(const char *dir, const char *file)
{
	char p[PATH_MAX];
	pathf(p, sizeof p, "%s/%s", dir, file);
	return access(p, F_OK) == 0;
}

/* mkdir -p <tmp>/<sub>/<a> */
static void mkdirs(const char *sub, const char *a)
{
	char p[PATH_MAX];
	pathf(p, sizeof p, "%s/%s/%s", g_tmp, sub, a);
	assert_int_equal(crisp_mkdir_p(p, 0755, 0, 0), 0);
}

static int setup(void **state)
{
	char p[PATH_MAX];

	(void)state;
	snprintf(g_tmp, sizeof g_tmp, "/tmp/crisp-cgtest-XXXXXX");
	assert_non_null(mkdtemp(g_tmp));
	/* the kernel's huge page sizes: 2 MiB and 1 GiB */
	mkdirs("hugepages", "hugepages-2048kB");
	mkdirs("hugepages", "hugepages-1048576kB");
	pathf(p, sizeof p, "%s/hugepages", g_tmp);
	char cg[PATH_MAX];
	pathf(cg, sizeof cg, "%s/cgroup", g_tmp);
	assert_int_equal(mkdir(cg, 0755), 0);
	ctr_cgroup_set_roots(cg, p);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	ctr_cgroup_set_roots(NULL, NULL);
	snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", g_tmp);
	return system(cmd) == 0 ? 0 : -1;
}

/* A v2 hierarchy whose container cgroup offers the given interface files
 * (empty); returns the container's cgroup in cg. */
static void v2_layout(struct ctr_cg *cg, const char *const *files)
{
	crisp_err_t err = CRISP_ERR_INIT;
	char root[PATH_MAX];

	pathf(root, sizeof root, "%s/cgroup", g_tmp);
	put(root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids\n");
	assert_int_equal(ctr_cgroup_paths("kubepods-burstable.slice", "abc", cg, &err), 0);
	assert_true(cg->v2);
	assert_int_equal(cg->n, 1);
	char want[PATH_MAX];
	pathf(want, sizeof want, "%s/kubepods.slice/kubepods-burstable.slice/crisp-abc", root);
	assert_string_equal(cg->dir[0], want);
	assert_int_equal(crisp_mkdir_p(cg->dir[0], 0755, 0, 0), 0);
	for (size_t i = 0; files[i]; i++)
		put(cg->dir[0], files[i], "");
}

static const char *const v2_files[] = {
	"cgroup.procs",    "cpuset.cpus", "cpuset.mems",     "memory.max",      "memory.swap.max", "memory.high",
	"cpu.weight",      "cpu.max",     "hugetlb.2MB.max", "hugetlb.1GB.max", "pids.max",        NULL,
};

struct res {
	Runtime__V1__LinuxContainerResources r;
	Runtime__V1__HugepageLimit hp[2], *hpp[2];
	Runtime__V1__LinuxContainerResources__UnifiedEntry u[2], *up[2];
};

/* What kubelet sends for a Burstable pod with a memory limit, 2 MiB huge
 * pages and a CPU-manager cpuset, plus two unified settings. */
static void res_init(struct res *x)
{
	memset(x, 0, sizeof *x);
	x->r = (Runtime__V1__LinuxContainerResources)RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	x->r.memory_limit_in_bytes = 256 << 20;
	x->r.memory_swap_limit_in_bytes = 256 << 20;
	x->r.cpu_shares = 512;
	x->r.cpu_quota = 50000;
	x->r.cpu_period = 100000;
	x->r.cpuset_cpus = "0-1";
	x->r.cpuset_mems = "0";
	static const char *const sizes[] = { "2MB", "1GB" };
	for (int i = 0; i < 2; i++) {
		x->hp[i] = (Runtime__V1__HugepageLimit)RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
		x->hp[i].page_size = (char *)sizes[i];
		x->hpp[i] = &x->hp[i];
	}
	x->hp[0].limit = 4 << 20;
	x->r.hugepage_limits = x->hpp;
	x->r.n_hugepage_limits = 2;
	static const char *const kv[][2] = { { "memory.high", "200000000" }, { "pids.max", "100" } };
	for (int i = 0; i < 2; i++) {
		x->u[i] = (Runtime__V1__LinuxContainerResources__UnifiedEntry)
			RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT;
		x->u[i].key = (char *)kv[i][0];
		x->u[i].value = (char *)kv[i][1];
		x->up[i] = &x->u[i];
	}
	x->r.unified = x->up;
	x->r.n_unified = 2;
}

static void test_v2_writes(void **state)
{
	struct ctr_cg cg;
	struct res x;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	v2_layout(&cg, v2_files);
	res_init(&x);
	assert_int_equal(ctr_cgroup_create(&cg, &x.r, &err), 0);
	const char *d = cg.dir[0];
	assert_string_equal(get(d, "cpuset.cpus"), "0-1");
	assert_string_equal(get(d, "cpuset.mems"), "0");
	assert_string_equal(get(d, "memory.max"), "268435456");
	assert_string_equal(get(d, "memory.swap.max"), "0"); /* swap = memory: no swap */
	assert_string_equal(get(d, "cpu.max"), "50000 100000");
	assert_string_equal(get(d, "cpu.weight"), "20");
	assert_string_equal(get(d, "hugetlb.2MB.max"), "4194304");
	assert_string_equal(get(d, "hugetlb.1GB.max"), "0");
	assert_string_equal(get(d, "memory.high"), "200000000");
	assert_string_equal(get(d, "pids.max"), "100");
	assert_string_equal(get(d, "cgroup.procs"), "");
	/* read back for ContainerStatus: the same limits (cpu.weight is
	 * coarser than shares: 512 comes back within a weight step) */
	{
		Runtime__V1__LinuxContainerResources got = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
		char cpus[64], mems[64];
		ctr_cgroup_read(&cg, &got, cpus, mems, sizeof cpus);
		assert_string_equal(got.cpuset_cpus, "0-1");
		assert_string_equal(got.cpuset_mems, "0");
		assert_int_equal(got.memory_limit_in_bytes, 268435456);
		assert_int_equal(got.memory_swap_limit_in_bytes, 268435456);
		assert_int_equal(got.cpu_quota, 50000);
		assert_int_equal(got.cpu_period, 100000);
		assert_true(got.cpu_shares > 512 - 27 && got.cpu_shares < 512 + 27);
		put(d, "memory.swap.max", "max");
		put(d, "cpu.max", "max 100000");
		ctr_cgroup_read(&cg, &got, cpus, mems, sizeof cpus);
		assert_int_equal(got.memory_swap_limit_in_bytes, -1);
		assert_int_equal(got.cpu_quota, 0);
		put(d, "memory.swap.max", "0");
		put(d, "cpu.max", "50000 100000");
	}

	/* UpdateContainerResources: swap above memory, unlimited, unset */
	res_init(&x);
	x.r.cpuset_cpus = "1";
	x.r.cpuset_mems = "";
	x.r.memory_swap_limit_in_bytes = 384 << 20;
	x.r.n_unified = 0;
	x.r.n_hugepage_limits = 1;
	x.hp[0].limit = 8 << 20;
	assert_int_equal(ctr_cgroup_apply(&cg, &x.r, &err), 0);
	assert_string_equal(get(d, "cpuset.cpus"), "1");
	assert_string_equal(get(d, "cpuset.mems"), "0"); /* "" leaves it */
	assert_string_equal(get(d, "memory.swap.max"), "134217728");
	assert_string_equal(get(d, "hugetlb.2MB.max"), "8388608");
	assert_string_equal(get(d, "memory.high"), "200000000");
	x.r.memory_swap_limit_in_bytes = -1;
	assert_int_equal(ctr_cgroup_apply(&cg, &x.r, &err), 0);
	assert_string_equal(get(d, "memory.swap.max"), "max");
	x.r.memory_swap_limit_in_bytes = 0;
	assert_int_equal(ctr_cgroup_apply(&cg, &x.r, &err), 0);
	assert_string_equal(get(d, "memory.swap.max"), "0");
	/* no memory limit: swap is left alone (CRI-O) */
	put(d, "memory.swap.max", "max");
	x.r.memory_limit_in_bytes = 0;
	x.r.memory_swap_limit_in_bytes = -1;
	assert_int_equal(ctr_cgroup_apply(&cg, &x.r, &err), 0);
	assert_string_equal(get(d, "memory.swap.max"), "max");
	ctr_cgroup_remove(&cg); /* not empty here: it is a plain directory */
}

/* What the node lacks is tolerated where peers tolerate it. */
static void test_v2_missing_controllers(void **state)
{
	static const char *const files[] = { "memory.max", "cpu.weight", "cpu.max", "cpuset.cpus", NULL };
	struct ctr_cg cg;
	struct res x;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	v2_layout(&cg, files);
	const char *d = cg.dir[0];
	res_init(&x);
	x.r.n_unified = 0;
	x.r.cpuset_mems = "";
	/* no hugetlb files (controller not enabled), no memory.swap.max (no
	 * swap accounting): both skipped */
	assert_int_equal(ctr_cgroup_apply(&cg, &x.r, &err), 0);
	assert_false(exists(d, "hugetlb.2MB.max"));
	assert_false(exists(d, "memory.swap.max"));
	assert_string_equal(get(d, "memory.max"), "268435456");
	/* a cpuset asked for without the cpuset controller is an error */
	x.r.cpuset_mems = "0";
	assert_int_equal(ctr_cgroup_apply(&cg, &x.r, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	/* a unified file the cgroup does not offer is refused, never created */
	res_init(&x);
	x.r.cpuset_cpus = x.r.cpuset_mems = "";
	x.u[0].key = "memory.nosuchfile";
	assert_int_equal(ctr_cgroup_apply(&cg, &x.r, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_false(exists(d, "memory.nosuchfile"));
}

static void test_checks_before_writes(void **state)
{
	struct ctr_cg cg;
	struct res x;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	v2_layout(&cg, v2_files);
	const char *d = cg.dir[0];

	/* a page size the kernel has no pages of */
	res_init(&x);
	x.hp[1].page_size = "4MB";
	assert_int_equal(ctr_cgroup_apply(&cg, &x.r, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "4MB"));
	/* swap below memory; swap without memory */
	res_init(&x);
	x.r.memory_swap_limit_in_bytes = 128 << 20;
	assert_int_equal(ctr_cgroup_apply(&cg, &x.r, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	res_init(&x);
	x.r.memory_limit_in_bytes = 0;
	assert_int_equal(ctr_cgroup_apply(&cg, &x.r, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	/* core files and paths, even past the CRI validator */
	static const char *const keys[] = { "cgroup.procs", "cgroup.subtree_control", "../x", "a/b", ".hidden" };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		res_init(&x);
		x.u[1].key = (char *)keys[i];
		assert_int_equal(ctr_cgroup_apply(&cg, &x.r, &err), -1);
		assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	}
	/* none of them wrote anything */
	assert_string_equal(get(d, "cpuset.cpus"), "");
	assert_string_equal(get(d, "memory.max"), "");
	assert_string_equal(get(d, "cgroup.procs"), "");
	/* and create leaves no directory behind */
	res_init(&x);
	x.hp[0].page_size = "16GB";
	ctr_cgroup_remove(&cg);
	char p[PATH_MAX];
	pathf(p, sizeof p, "rm -rf -- '%s'", d);
	assert_int_equal(system(p), 0);
	assert_int_equal(ctr_cgroup_create(&cg, &x.r, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(access(d, F_OK), -1);
}

/* v1: a cpuset cgroup starts empty and takes its parent's cpus and mems
 * level by level; memory+swap goes to memsw; unified is refused. */
static void test_v1(void **state)
{
	struct ctr_cg cg;
	struct res x;
	crisp_err_t err = CRISP_ERR_INIT;
	char root[PATH_MAX], d[PATH_MAX];

	(void)state;
	static const char *const ctrls[] = { "memory", "cpu", "cpuacct", "pids", "cpuset" };
	for (size_t i = 0; i < sizeof ctrls / sizeof ctrls[0]; i++)
		mkdirs("cgroup", ctrls[i]);
	pathf(root, sizeof root, "%s/cgroup/cpuset", g_tmp);
	put(root, "cpuset.cpus", "0-3\n");
	put(root, "cpuset.mems", "0\n");
	/* the levels below exist, as the kernel makes them: empty files */
	mkdirs("cgroup/cpuset", "kubepods/crisp-v1");
	pathf(d, sizeof d, "%s/kubepods", root);
	put(d, "cpuset.cpus", "");
	put(d, "cpuset.mems", "");
	pathf(d, sizeof d, "%s/kubepods/crisp-v1", root);
	put(d, "cpuset.cpus", "");
	put(d, "cpuset.mems", "");
	mkdirs("cgroup/memory", "kubepods/crisp-v1");
	pathf(d, sizeof d, "%s/cgroup/memory/kubepods/crisp-v1", g_tmp);
	put(d, "memory.limit_in_bytes", "9223372036854771712\n");
	put(d, "memory.memsw.limit_in_bytes", "9223372036854771712\n");

	assert_int_equal(ctr_cgroup_paths("/kubepods", "v1", &cg, &err), 0);
	assert_false(cg.v2);
	assert_int_equal(cg.n, 5);
	assert_string_equal(cg.ctrl[0], "memory");

	res_init(&x);
	assert_int_equal(ctr_cgroup_create(&cg, &x.r, &err), -1); /* unified on v1 */
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "v1"));

	x.r.n_unified = 0;
	x.r.cpuset_cpus = "";
	x.r.cpuset_mems = "";
	x.r.cpu_shares = x.r.cpu_quota = x.r.cpu_period = 0; /* no cpu files here */
	x.r.memory_swap_limit_in_bytes = 512 << 20;
	if (ctr_cgroup_create(&cg, &x.r, &err) < 0)
		fail_msg("%s", err.msg);
	pathf(d, sizeof d, "%s/kubepods", root);
	assert_string_equal(get(d, "cpuset.cpus"), "0-3");
	assert_string_equal(get(d, "cpuset.mems"), "0");
	pathf(d, sizeof d, "%s/kubepods/crisp-v1", root);
	assert_string_equal(get(d, "cpuset.cpus"), "0-3");
	assert_string_equal(get(d, "cpuset.mems"), "0");
	pathf(d, sizeof d, "%s/cgroup/memory/kubepods/crisp-v1", g_tmp);
	assert_string_equal(get(d, "memory.limit_in_bytes"), "268435456");
	assert_string_equal(get(d, "memory.memsw.limit_in_bytes"), "536870912");
	/* no hugetlb hierarchy: the limits are skipped */
	assert_false(exists(d, "hugetlb.2MB.limit_in_bytes"));

	x.r.cpuset_cpus = "2-3";
	x.r.memory_swap_limit_in_bytes = -1;
	assert_int_equal(ctr_cgroup_apply(&cg, &x.r, &err), 0);
	assert_string_equal(get(d, "memory.memsw.limit_in_bytes"), "-1");
	pathf(d, sizeof d, "%s/kubepods/crisp-v1", root);
	assert_string_equal(get(d, "cpuset.cpus"), "2-3");
}

/* The CRI validator (frontd, and execd again) on the same fields. */
static void test_validator(void **state)
{
	Runtime__V1__UpdateContainerResourcesRequest rq = RUNTIME__V1__UPDATE_CONTAINER_RESOURCES_REQUEST__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	struct res x;

	(void)state;
	rq.container_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	rq.linux = &x.r;
#define EXPECT(ok, stmt)                                                                               \
	do {                                                                                           \
		res_init(&x);                                                                          \
		stmt;                                                                                  \
		int r_ = cri_validate(&rq.base, &err);                                                 \
		if ((ok) != (r_ == 0))                                                                 \
			fail_msg("line %d: %s: %s", __LINE__, #stmt, r_ == 0 ? "accepted" : err.msg); \
		if (!(ok))                                                                             \
			assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);                            \
	} while (0)
	EXPECT(true, (void)0);
	EXPECT(true, x.r.memory_swap_limit_in_bytes = -1);              /* UnlimitedSwap */
	EXPECT(true, x.r.memory_swap_limit_in_bytes = 0);
	EXPECT(true, (x.r.memory_limit_in_bytes = 0, x.r.memory_swap_limit_in_bytes = 0));
	EXPECT(false, x.r.memory_swap_limit_in_bytes = (256 << 20) - 1); /* below memory */
	EXPECT(false, (x.r.memory_limit_in_bytes = 0, x.r.memory_swap_limit_in_bytes = 1 << 20));
	EXPECT(false, x.r.cpuset_cpus = "0-");
	EXPECT(false, x.r.cpuset_cpus = "abc");
	EXPECT(false, x.r.cpuset_mems = "1,,2");
	EXPECT(true, x.r.cpuset_cpus = "0-1,3,5-7");
	EXPECT(true, x.hp[1].page_size = "64KB");
	EXPECT(true, x.hp[1].page_size = "16GB");
	EXPECT(false, x.hp[1].page_size = "3MB");    /* not a power of two */
	EXPECT(false, x.hp[1].page_size = "2048KB"); /* kubelet and the kernel say 2MB */
	EXPECT(false, x.hp[1].page_size = "2M");
	EXPECT(false, x.hp[1].page_size = "");
	EXPECT(false, x.hp[1].limit = (uint64_t)INT64_MAX + 1);
	EXPECT(true, x.u[0].key = "hugetlb.2MB.max");
	EXPECT(true, x.u[0].key = "io.weight");
	EXPECT(true, x.u[0].key = "cpu.idle");
	EXPECT(false, x.u[0].key = "../x");
	EXPECT(false, x.u[0].key = "memory/../../x");
	EXPECT(false, x.u[0].key = "cgroup.procs");
	EXPECT(false, x.u[0].key = "cgroup.subtree_control");
	EXPECT(false, x.u[0].key = "cgroup.kill");
	EXPECT(false, x.u[0].key = "memory.pressure");
	EXPECT(false, x.u[0].key = "devices.allow");
	EXPECT(false, x.u[0].key = "memory.");
	EXPECT(false, x.u[0].key = "memory");
	EXPECT(false, x.u[0].value = "1\n2");
#undef EXPECT
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_v2_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_missing_controllers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checks_before_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1, setup, teardown),
		cmocka_unit_test(test_validator),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
