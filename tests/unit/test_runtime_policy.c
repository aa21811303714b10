/* policy/runtime: parsing, layering per namespace, and every refusal naming its rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/runtime.h"

static const char hardened[] =
	"{ \"default\": { \"privileged\": false, \"hostNetwork\": false, \"hostPID\": false, \"hostIPC\": false,\n"
	"                 \"unconfinedSeccomp\": false, \"devices\": false,\n"
	"                 \"hostPathPrefixes\": [\"/var/lib/kubelet\", \"/var/log/pods\"],\n"
	"                 \"addCapabilities\": [\"NET_BIND_SERVICE\"], \"runtimeHandlers\": [\"\"] },\n"
	"  \"namespaces\": { \"kube-system\": { \"privileged\": true, \"hostNetwork\": true,\n"
	"                                     \"addCapabilities\": [\"ALL\"], \"hostPathPrefixes\": [\"/\"] },\n"
	"                  \"gpu\": { \"devices\": true, \"runtimeHandlers\": [\"\", \"kata\"] } } }\n";

static void expect_denied(int r, const crisp_err_t *err, const char *want)
{
	assert_int_equal(r, -1);
	assert_int_equal(err->code, CRISP_PERMISSION_DENIED);
	if (strstr(err->msg, want) == NULL)
		fail_msg("'%s' does not contain '%s'", err->msg, want);
}

static void test_default_allows_what_kubernetes_allows(void **state)
{
	struct rp_policy p;
	crisp_err_t err = CRISP_ERR_INIT;
	const char *caps[] = { "SYS_ADMIN", "CAP_NET_ADMIN" }, *paths[] = { "/etc", "/" };
	struct rp_pod pod = { .ns = "x", .host_network = true, .host_pid = true, .host_ipc = true };
	struct rp_container c = { .ns = "x", .privileged = true, .unconfined_seccomp = true, .add_caps = caps,
				  .nadd_caps = 2, .host_paths = paths, .nhost_paths = 2, .ndevices = 3 };

	(void)state;
	assert_int_equal(rp_default(&p, &err), 0);
	assert_int_equal(rp_check_pod(&p, &pod, &err), 0);
	assert_int_equal(rp_check_container(&p, &c, &err), 0);
	/* any handler crisp.conf configures ("*"); execd refuses the others */
	pod.runtime_handler = "kata";
	assert_int_equal(rp_check_pod(&p, &pod, &err), 0);
	rp_free(&p);
	/* a file that names handlers allows only those */
	const char *only = "{\"default\": {\"runtimeHandlers\": [\"\", \"runc\"]}}";
	assert_int_equal(rp_parse(only, strlen(only), &p, &err), 0);
	pod.runtime_handler = "runc";
	assert_int_equal(rp_check_pod(&p, &pod, &err), 0);
	pod.runtime_handler = "kata";
	expect_denied(rp_check_pod(&p, &pod, &err), &err, "runtime policy (default): runtime handler \"kata\"");
	rp_free(&p);
}

static void test_hardened_and_namespaces(void **state)
{
	struct rp_policy p;
	crisp_err_t err = CRISP_ERR_INIT;
	struct rp_pod pod = { .ns = "web" };
	struct rp_container c = { .ns = "web" };
	const char *caps[] = { "CAP_NET_BIND_SERVICE", "NET_ADMIN" };
	const char *ok_paths[] = { "/var/lib/kubelet/pods/x/volumes", "/var/log/pods//a/" };
	const char *bad_paths[] = { "/var/lib/kubelet2/x" };
	const char *root_paths[] = { "/etc" };

	(void)state;
	assert_int_equal(rp_parse(hardened, strlen(hardened), &p, &err), 0);
	assert_int_equal(rp_check_pod(&p, &pod, &err), 0);
	pod.host_network = true;
	expect_denied(rp_check_pod(&p, &pod, &err), &err, "runtime policy (default): hostNetwork is not allowed");
	pod.ns = "kube-system";
	assert_int_equal(rp_check_pod(&p, &pod, &err), 0);
	pod.host_pid = true; /* kube-system does not override hostPID: the default refuses */
	expect_denied(rp_check_pod(&p, &pod, &err), &err, "runtime policy (default): hostPID");
	pod = (struct rp_pod){ .ns = "gpu", .runtime_handler = "kata" };
	assert_int_equal(rp_check_pod(&p, &pod, &err), 0);

	c.privileged = true;
	expect_denied(rp_check_container(&p, &c, &err), &err, "(default): privileged containers are not allowed");
	c.ns = "kube-system";
	assert_int_equal(rp_check_container(&p, &c, &err), 0);
	c = (struct rp_container){ .ns = "web", .add_caps = caps, .nadd_caps = 1 };
	assert_int_equal(rp_check_container(&p, &c, &err), 0);
	c.nadd_caps = 2;
	expect_denied(rp_check_container(&p, &c, &err), &err, "capability NET_ADMIN is not in addCapabilities");
	c = (struct rp_container){ .ns = "web", .host_paths = ok_paths, .nhost_paths = 2 };
	assert_int_equal(rp_check_container(&p, &c, &err), 0);
	c.host_paths = bad_paths;
	c.nhost_paths = 1;
	expect_denied(rp_check_container(&p, &c, &err), &err, "host path /var/lib/kubelet2/x is not under");
	c.host_paths = root_paths;
	expect_denied(rp_check_container(&p, &c, &err), &err, "/etc");
	c.ns = "kube-system";
	assert_int_equal(rp_check_container(&p, &c, &err), 0);
	c = (struct rp_container){ .ns = "web", .ndevices = 1 };
	expect_denied(rp_check_container(&p, &c, &err), &err, "devices are not allowed");
	c.ns = "gpu";
	assert_int_equal(rp_check_container(&p, &c, &err), 0);
	c = (struct rp_container){ .ns = "gpu", .unconfined_seccomp = true };
	expect_denied(rp_check_container(&p, &c, &err), &err, "Unconfined seccomp");
	rp_free(&p);
}

static void test_a_file_narrows_only_what_it_names(void **state)
{
	struct rp_policy p;
	crisp_err_t err = CRISP_ERR_INIT;
	const char *text = "{\"default\": {\"hostNetwork\": false}}";
	struct rp_pod pod = { .ns = "a", .host_pid = true, .runtime_handler = "" };
	struct rp_container c = { .ns = "a", .privileged = true };

	(void)state;
	assert_int_equal(rp_parse(text, strlen(text), &p, &err), 0);
	assert_int_equal(rp_check_pod(&p, &pod, &err), 0);
	assert_int_equal(rp_check_container(&p, &c, &err), 0);
	pod.host_network = true;
	expect_denied(rp_check_pod(&p, &pod, &err), &err, "hostNetwork is not allowed");
	rp_free(&p);
}

static void expect_parse_error(const char *text, const char *want)
{
	struct rp_policy p;
	crisp_err_t err = CRISP_ERR_INIT;

	assert_int_equal(rp_parse(text, strlen(text), &p, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	if (strstr(err.msg, want) == NULL)
		fail_msg("'%s' does not contain '%s'", err.msg, want);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_parse_error("[]", "must be a JSON object");
	expect_parse_error("{}", "\"default\" is required");
	expect_parse_error("{\"default\":{}, \"extra\":1}", "unknown key \"extra\"");
	expect_parse_error("{\"default\":{\"privileged\":1}}", "default.privileged: must be true or false");
	expect_parse_error("{\"default\":{\"hostNet\":true}}", "default: unknown key \"hostNet\"");
	expect_parse_error("{\"default\":{\"hostPathPrefixes\":[\"relative\"]}}", "default.hostPathPrefixes[0]");
	expect_parse_error("{\"default\":{\"hostPathPrefixes\":[\"/var/../etc\"]}}", "default.hostPathPrefixes[0]");
	expect_parse_error("{\"default\":{\"addCapabilities\":[\"sys_admin\"]}}", "default.addCapabilities[0]");
	expect_parse_error("{\"default\":{},\"namespaces\":{\"Bad_NS\":{}}}", "is not a namespace name");
	expect_parse_error("{\"default\":{},\"namespaces\":{\"a\":{\"devices\":\"yes\"}}}", "namespaces.a.devices");
	expect_parse_error("{\"default\":{}, \"default\":{}}", "duplicate");
	expect_parse_error("{\"default\":", "line 1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_allows_what_kubernetes_allows),
		cmocka_unit_test(test_hardened_and_namespaces),
		cmocka_unit_test(test_a_file_narrows_only_what_it_names),
		cmocka_unit_test(test_parse_errors),
	};
	return cmocka_run_group_tests_name("runtime_policy", tests, NULL, NULL);
}
