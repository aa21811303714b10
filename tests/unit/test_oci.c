/*
 * Unit tests of the OCI side of runtime handlers (execd/ctr_oci.c): a
 * launch spec written as config.json says exactly what crisp's launcher
 * would do (namespaces joined by the pinned fds, capabilities, mounts and
 * their propagation, masked paths, devices, the cgroup), and the seccomp
 * filter handed to the runtime is the one crisp chose (RuntimeDefault by
 * capability, Localhost profiles with includes/excludes resolved).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include <setjmp.h>

#include <cmocka.h>
#include <jansson.h>

#include "execd/ctr.h"
#include "execd/ctr_oci.h"

static json_t *find_by(json_t *arr, const char *key, const char *val)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v) {
		const char *s = json_string_value(json_object_get(v, key));
		if (s && !strcmp(s, val))
			return v;
	}
	return NULL;
}

static bool has_str(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), s))
			return true;
	return false;
}

static json_t *config_of(const struct launch_spec *s, const struct ctr_oci *o)
{
	crisp_err_t err = CRISP_ERR_INIT;
	char *text = ctr_oci_config(s, o, 4242, &err);
	assert_non_null(text);
	json_t *j = json_loads(text, 0, NULL);
	free(text);
	assert_non_null(j);
	return j;
}

static void test_config(void **state)
{
	(void)state;
	char *argv[] = { "/bin/sh", "-c", "echo hi", NULL };
	char *envp[] = { "PATH=/bin", "HOSTNAME=pod", NULL };
	gid_t groups[] = { 10, 20 };
	struct launch_mount mounts[] = {
		{ .source = "/var/lib/data", .target = "/data", .readonly = true, .propagation = LAUNCH_PROP_RSLAVE },
		{ .source = "/run/pod/shm", .target = "/dev/shm", .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC },
		{ .source = "/srv/x", .target = "/x", .propagation = LAUNCH_PROP_RSHARED },
	};
	struct launch_device devs[] = { { .path = "/dev/fuse", .type = 'c', .major = 10, .minor = 229, .mode = 0666 } };
	const char *masked[] = { "/proc/kcore", "/sys/firmware", NULL };
	const char *ro[] = { "/proc/sys", NULL };
	struct launch_rlimit rl[] = { { RLIMIT_NOFILE, 1024, 4096 } };
	struct launch_spec s = {
		.rootfs = "/run/crisp/containers/abc/rootfs",
		.readonly_rootfs = true,
		.argv = argv,
		.envp = envp,
		.cwd = "/work",
		.uid = 1000,
		.gid = 1000,
		.groups = groups,
		.ngroups = 2,
		.mounts = mounts,
		.nmounts = 3,
		.devices = devs,
		.ndevices = 1,
		.masked_paths = masked,
		.readonly_paths = ro,
		.cap_effective = (1ULL << 0) | (1ULL << 10), /* CHOWN, NET_BIND_SERVICE */
		.cap_permitted = (1ULL << 0) | (1ULL << 10),
		.cap_bounding = (1ULL << 0) | (1ULL << 10),
		.no_new_privs = true,
		.rlimits = rl,
		.nrlimits = 1,
		.seccomp_fd = -1,
	};
	s.ns[LAUNCH_NS_MNT].mode = LAUNCH_NS_NEW;
	s.ns[LAUNCH_NS_UTS] = (struct launch_ns_spec){ LAUNCH_NS_JOIN, 7 };
	s.ns[LAUNCH_NS_IPC] = (struct launch_ns_spec){ LAUNCH_NS_JOIN, 8 };
	s.ns[LAUNCH_NS_NET] = (struct launch_ns_spec){ LAUNCH_NS_JOIN, 9 };
	s.ns[LAUNCH_NS_PID].mode = LAUNCH_NS_NEW;
	s.ns[LAUNCH_NS_CGROUP].mode = LAUNCH_NS_NEW;
	struct ctr_oci o = { .handler = "runc", .runtime = "/usr/sbin/runc", .state_root = "/run/crisp/runtimes/runc",
			     .bundle = "/run/crisp/containers/abc/oci", .id = "abc", .cgroups_path = "/crisp/crisp-abc",
			     .seccomp_json = "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[]}" };
	json_t *j = config_of(&s, &o);

	assert_string_equal(json_string_value(json_object_get(j, "ociVersion")), "1.0.2");
	json_t *root = json_object_get(j, "root");
	assert_string_equal(json_string_value(json_object_get(root, "path")), s.rootfs);
	assert_true(json_is_true(json_object_get(root, "readonly")));
	assert_null(json_object_get(j, "hostname")); /* the pod's UTS namespace holds it */

	json_t *p = json_object_get(j, "process");
	assert_false(json_is_true(json_object_get(p, "terminal")));
	assert_int_equal(json_array_size(json_object_get(p, "args")), 3);
	assert_string_equal(json_string_value(json_object_get(p, "cwd")), "/work");
	assert_true(json_is_true(json_object_get(p, "noNewPrivileges")));
	json_t *u = json_object_get(p, "user");
	assert_int_equal(json_integer_value(json_object_get(u, "uid")), 1000);
	assert_int_equal(json_array_size(json_object_get(u, "additionalGids")), 2);
	json_t *caps = json_object_get(p, "capabilities");
	assert_int_equal(json_array_size(json_object_get(caps, "bounding")), 2);
	assert_true(has_str(json_object_get(caps, "effective"), "CAP_NET_BIND_SERVICE"));
	assert_true(has_str(json_object_get(caps, "permitted"), "CAP_CHOWN"));
	assert_int_equal(json_array_size(json_object_get(caps, "inheritable")), 0);
	assert_int_equal(json_array_size(json_object_get(caps, "ambient")), 0);
	json_t *r0 = json_array_get(json_object_get(p, "rlimits"), 0);
	assert_string_equal(json_string_value(json_object_get(r0, "type")), "RLIMIT_NOFILE");
	assert_int_equal(json_integer_value(json_object_get(r0, "hard")), 4096);

	json_t *l = json_object_get(j, "linux");
	json_t *ns = json_object_get(l, "namespaces");
	assert_int_equal(json_array_size(ns), 6);
	assert_null(json_object_get(find_by(ns, "type", "mount"), "path"));
	assert_string_equal(json_string_value(json_object_get(find_by(ns, "type", "network"), "path")), "/proc/4242/fd/9");
	assert_string_equal(json_string_value(json_object_get(find_by(ns, "type", "uts"), "path")), "/proc/4242/fd/7");
	assert_non_null(find_by(ns, "type", "cgroup"));
	assert_string_equal(json_string_value(json_object_get(l, "cgroupsPath")), "/crisp/crisp-abc");
	assert_string_equal(json_string_value(json_object_get(json_object_get(l, "seccomp"), "defaultAction")),
			    "SCMP_ACT_ALLOW");
	assert_true(has_str(json_object_get(l, "maskedPaths"), "/sys/firmware"));
	assert_true(has_str(json_object_get(l, "readonlyPaths"), "/proc/sys"));
	json_t *d = json_array_get(json_object_get(l, "devices"), 0);
	assert_string_equal(json_string_value(json_object_get(d, "path")), "/dev/fuse");
	assert_int_equal(json_integer_value(json_object_get(d, "major")), 10);
	json_t *allow = json_array_get(json_object_get(json_object_get(l, "resources"), "devices"), 0);
	assert_true(json_is_true(json_object_get(allow, "allow")));
	assert_int_equal(json_integer_value(json_object_get(allow, "minor")), 229);

	json_t *m = json_object_get(j, "mounts");
	json_t *data = find_by(m, "destination", "/data");
	assert_non_null(data);
	assert_string_equal(json_string_value(json_object_get(data, "type")), "bind");
	assert_true(has_str(json_object_get(data, "options"), "rbind"));
	assert_true(has_str(json_object_get(data, "options"), "ro"));
	assert_true(has_str(json_object_get(data, "options"), "rslave"));
	assert_true(has_str(json_object_get(find_by(m, "destination", "/x"), "options"), "rshared"));
	/* the pod's /dev/shm replaces the default tmpfs: exactly one mount there */
	size_t i, nshm = 0;
	json_t *v;
	json_array_foreach(m, i, v)
		nshm += !strcmp(json_string_value(json_object_get(v, "destination")), "/dev/shm");
	assert_int_equal(nshm, 1);
	assert_true(has_str(json_object_get(find_by(m, "destination", "/dev/shm"), "options"), "noexec"));
	assert_true(has_str(json_object_get(find_by(m, "destination", "/sys"), "options"), "ro"));
	assert_non_null(find_by(m, "destination", "/proc"));
	json_decref(j);

	/* host namespaces are left out; a privileged container gets rw /sys,
	 * every device allowed, a terminal */
	s.ns[LAUNCH_NS_NET].mode = LAUNCH_NS_HOST;
	s.ns[LAUNCH_NS_PID].mode = LAUNCH_NS_HOST;
	s.sys_rw = true;
	s.terminal = true;
	s.ndevices = 0;
	o.seccomp_json = NULL;
	j = config_of(&s, &o);
	l = json_object_get(j, "linux");
	assert_int_equal(json_array_size(json_object_get(l, "namespaces")), 4);
	assert_null(find_by(json_object_get(l, "namespaces"), "type", "network"));
	assert_null(json_object_get(l, "seccomp"));
	allow = json_array_get(json_object_get(json_object_get(l, "resources"), "devices"), 0);
	assert_true(json_is_true(json_object_get(allow, "allow")));
	assert_null(json_object_get(allow, "major"));
	assert_true(has_str(json_object_get(find_by(json_object_get(j, "mounts"), "destination", "/sys"), "options"),
			    "rw"));
	assert_true(json_is_true(json_object_get(json_object_get(j, "process"), "terminal")));
	assert_null(json_object_get(json_object_get(j, "process"), "selinuxLabel"));
	json_decref(j);

	/* LSM labels go to the runtime as the runtime spec names them */
	s.process_label = "system_u:system_r:container_t:s0:c1,c2";
	s.mount_label = "system_u:object_r:container_file_t:s0:c1,c2";
	s.apparmor_profile = "crisp-default";
	j = config_of(&s, &o);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "process"), "selinuxLabel")),
			    s.process_label);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "process"), "apparmorProfile")),
			    "crisp-default");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "linux"), "mountLabel")),
			    s.mount_label);
	json_decref(j);

	/* a spec crisp's launcher would refuse is refused here too */
	crisp_err_t err = CRISP_ERR_INIT;
	s.ns[LAUNCH_NS_MNT].mode = LAUNCH_NS_HOST;
	assert_null(ctr_oci_config(&s, &o, 1, &err));
	s.ns[LAUNCH_NS_MNT].mode = LAUNCH_NS_NEW;
	s.rootfs = "relative";
	assert_null(ctr_oci_config(&s, &o, 1, &err));
}

static json_t *rule_with(json_t *sc, const char *name)
{
	size_t i;
	json_t *r;

	json_array_foreach(json_object_get(sc, "syscalls"), i, r)
		if (has_str(json_object_get(r, "names"), name))
			return r;
	return NULL;
}

static void test_seccomp_default(void **state)
{
	(void)state;
	crisp_err_t err = CRISP_ERR_INIT;
	uint64_t caps = launch_default_caps();
	char *t = ctr_seccomp_default_oci(caps, &err);
	assert_non_null(t);
	json_t *j = json_loads(t, 0, NULL);
	free(t);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "defaultAction")), "SCMP_ACT_ALLOW");
	json_t *r = rule_with(j, "mount");
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "action")), "SCMP_ACT_ERRNO");
	assert_int_equal(json_integer_value(json_object_get(r, "errnoRet")), EPERM);
	assert_non_null(rule_with(j, "unshare"));
	assert_non_null(rule_with(j, "clone"));
	assert_int_equal(json_integer_value(json_object_get(rule_with(j, "clone3"), "errnoRet")), ENOSYS);
	json_decref(j);

	/* SYS_ADMIN allows mount, unshare and namespace clones back */
	t = ctr_seccomp_default_oci(caps | (1ULL << 21), &err);
	j = json_loads(t, 0, NULL);
	free(t);
	assert_null(rule_with(j, "mount"));
	assert_null(rule_with(j, "clone"));
	assert_non_null(rule_with(j, "bpf")); /* never allowed */
	json_decref(j);
}

static void test_seccomp_profile(void **state)
{
	(void)state;
	crisp_err_t err = CRISP_ERR_INIT;
	const char *prof = "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,"
			   "\"architectures\":[\"SCMP_ARCH_X86_64\"],\"syscalls\":["
			   "{\"names\":[\"read\",\"write\"],\"action\":\"SCMP_ACT_ALLOW\",\"comment\":\"io\"},"
			   "{\"name\":\"ptrace\",\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":[\"CAP_SYS_PTRACE\"]}},"
			   "{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_ALLOW\",\"excludes\":{\"caps\":[\"CAP_CHOWN\"]}},"
			   "{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,"
			   "\"value\":0,\"op\":\"SCMP_CMP_EQ\"}]}]}";
	char *t = ctr_seccomp_profile_oci(prof, strlen(prof), 1ULL << 0 /* CHOWN */, &err);
	assert_non_null(t);
	json_t *j = json_loads(t, 0, NULL);
	free(t);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "defaultErrnoRet")), 1);
	assert_non_null(json_object_get(j, "architectures"));
	assert_non_null(rule_with(j, "read"));
	assert_null(json_object_get(rule_with(j, "read"), "comment"));
	assert_null(rule_with(j, "ptrace")); /* needs SYS_PTRACE */
	assert_null(rule_with(j, "mkdir"));  /* excluded by CHOWN */
	assert_int_equal(json_array_size(json_object_get(rule_with(j, "personality"), "args")), 1);
	json_decref(j);

	t = ctr_seccomp_profile_oci(prof, strlen(prof), 1ULL << 19 /* SYS_PTRACE */, &err);
	j = json_loads(t, 0, NULL);
	free(t);
	assert_non_null(rule_with(j, "ptrace"));
	assert_non_null(rule_with(j, "mkdir"));
	json_decref(j);

	assert_null(ctr_seccomp_profile_oci("[1]", 3, 0, &err));
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_seccomp_default),
		cmocka_unit_test(test_seccomp_profile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
