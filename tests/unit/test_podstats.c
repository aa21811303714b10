/* Pod stats helpers: the /proc/net/dev parser (bounds, lo skipped, bad
 * lines skipped, overflow refused), reading the counters of a network
 * namespace through a child, and a pod's own cgroup paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "execd/ctr_cgroup.h"
#include "execd/ctr_podstats.h"

#define HDR "Inter-|   Receive                                                |  Transmit\n" \
	    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
#define LO "    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n"

static void test_parse(void **state)
{
	(void)state;
	const char *t = HDR LO
		"  eth0:  905342    4410    7    0    0     0          0         0   170219    2211    9    0    0     0       0          0\n"
		"  net1: 18446744073709551615 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n";
	struct podnet_if ifs[4];

	int n = podnet_parse(t, strlen(t), ifs, 4);
	assert_int_equal(n, 2);
	assert_string_equal(ifs[0].name, "eth0");
	assert_true(ifs[0].rx_bytes == 905342 && ifs[0].rx_errors == 7);
	assert_true(ifs[0].tx_bytes == 170219 && ifs[0].tx_errors == 9);
	assert_string_equal(ifs[1].name, "net1");
	assert_true(ifs[1].rx_bytes == UINT64_MAX && ifs[1].tx_bytes == 5);
	/* bounded by max */
	assert_int_equal(podnet_parse(t, strlen(t), ifs, 1), 1);
	assert_int_equal(podnet_parse(t, strlen(t), ifs, 0), 0);
	/* no newline at the end: the last line still counts */
	assert_int_equal(podnet_parse(t, strlen(t) - 1, ifs, 4), 2);
}

static void test_parse_bad(void **state)
{
	(void)state;
	struct podnet_if ifs[4];
	const char *t = HDR
		"  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n"             /* a counter short */
		"  eth1: 18446744073709551616 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n" /* overflow */
		"  eth2: -1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
		"  a/b: 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
		"  0123456789abcdef: 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"       /* longer than IFNAMSIZ-1 */
		"  : 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
		"no colon here\n"
		"  ok0: 1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0\n";

	assert_int_equal(podnet_parse(t, strlen(t), ifs, 4), 1);
	assert_string_equal(ifs[0].name, "ok0");
	assert_int_equal(podnet_parse("garbage\n", 8, ifs, 4), -1);
	assert_int_equal(podnet_parse("", 0, ifs, 4), -1);
	/* only the header, or only lo: nothing */
	assert_int_equal(podnet_parse(HDR, strlen(HDR), ifs, 4), 0);
	assert_int_equal(podnet_parse(HDR LO, strlen(HDR LO), ifs, 4), 0);
	/* an embedded NUL drops that line only */
	char b[sizeof HDR + 64];
	int l = snprintf(b, sizeof b, HDR "  x0: 1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0\n");
	b[strlen(HDR) + 3] = '\0';
	assert_int_equal(podnet_parse(b, (size_t)l, ifs, 4), 0);
}

static void test_read_own_netns(void **state)
{
	(void)state;
	struct podnet_if ifs[PODNET_IFS_MAX];
	crisp_err_t err = CRISP_ERR_INIT;

	/* our own namespace through the same path as a pod's: never lo */
	int n = podnet_read("/proc/self/ns/net", ifs, PODNET_IFS_MAX, &err);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++)
		assert_string_not_equal(ifs[i].name, "lo");
	assert_int_equal(podnet_read("/nonexistent/netns", ifs, PODNET_IFS_MAX, &err), -1);
	assert_int_equal(err.code, CRISP_INTERNAL);
	/* not a namespace: the child's setns fails, reported */
	crisp_err_t e2 = CRISP_ERR_INIT;
	assert_int_equal(podnet_read("/dev/null", ifs, PODNET_IFS_MAX, &e2), -1);
	assert_int_equal(e2.code, CRISP_INTERNAL);
}

static void test_parent_paths(void **state)
{
	(void)state;
	struct ctr_cg pod, ctr;
	crisp_err_t err = CRISP_ERR_INIT;

	assert_int_equal(ctr_cgroup_parent_paths("/kubepods/burstable/podabc", &pod, &err), 0);
	assert_int_equal(ctr_cgroup_paths("/kubepods/burstable/podabc", "ab12", &ctr, &err), 0);
	assert_int_equal(pod.n, ctr.n);
	for (int i = 0; i < pod.n; i++) {
		size_t l = strlen(pod.dir[i]);
		assert_true(l > strlen("/kubepods/burstable/podabc"));
		assert_string_equal(pod.dir[i] + l - strlen("/kubepods/burstable/podabc"), "/kubepods/burstable/podabc");
		assert_memory_equal(ctr.dir[i], pod.dir[i], l);
		assert_string_equal(ctr.dir[i] + l, "/crisp-ab12");
	}
	assert_int_equal(ctr_cgroup_parent_paths("kubepods-besteffort-podx.slice", &pod, &err), 0);
	for (int i = 0; i < pod.n; i++)
		assert_non_null(strstr(pod.dir[i], "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podx.slice"));
	assert_int_equal(ctr_cgroup_parent_paths("/a/../b", &pod, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	/* a parent that does not exist is not the pod's own cgroup */
	assert_int_equal(ctr_cgroup_parent_paths("/crisp-test-absent-parent", &pod, &err), 0);
	assert_false(ctr_cgroup_exists(&pod));
	assert_true(ctr_cgroup_procs(&pod) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_read_own_netns),
		cmocka_unit_test(test_parent_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
