/*
 * Unit tests of execd/lsm: MCS pair allocation (uniqueness over many pods,
 * release, reload from the state database, exhaustion), MLS level
 * validation, SELinux label composition from the node's defaults and the
 * CRI options, the privileged spc_t rule, the relabel exclusions, AppArmor
 * profile choice on nodes with and without AppArmor, and the parsers of
 * lxc_contexts and apparmor/profiles.  None of this needs an enabled LSM.
 *
 * The last cases run the thin layer on this node: detection matches
 * libselinux/libapparmor, options are still checked when the LSM is off,
 * and a launch asked to apply a label the kernel cannot take fails with a
 * clear error instead of starting the process unlabelled.
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
#include <sys/apparmor.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>
#include <selinux/selinux.h>
#include <sqlite3.h>

#include "common/err.h"
#include "execd/launch.h"
#include "execd/lsm.h"
#include "execd/state.h"

static void rm_rf(const char *path)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", path);
}

/* ---------------------------------------------------------------- MCS */

static bool pair_of(const char *level, unsigned *a, unsigned *b)
{
	int end = 0;
	return sscanf(level, "s0:c%u,c%u%n", a, b, &end) == 2 && level[end] == '\0';
}

static void test_mcs_unique(void **state)
{
	enum { N = 3000 };
	struct lsm_mcs *m = lsm_mcs_new(LSM_MCS_RANGE);
	static char lv[N][LSM_LABEL_MAX];
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	assert_non_null(m);
	assert_int_equal(lsm_mcs_capacity(m), 1024u * 1023u / 2);
	for (int i = 0; i < N; i++) {
		unsigned a, b;
		assert_int_equal(lsm_mcs_alloc(m, NULL, NULL, lv[i], sizeof lv[i], &err), 0);
		assert_true(pair_of(lv[i], &a, &b));
		assert_true(a < b && b < LSM_MCS_RANGE);
		assert_true(lsm_level_valid(lv[i]));
	}
	assert_int_equal(lsm_mcs_used(m), N);
	/* no two pods share a level: sort-free check through a bitmap */
	static uint8_t seen[1024 * 1024 / 8];
	memset(seen, 0, sizeof seen);
	for (int i = 0; i < N; i++) {
		unsigned a, b;
		assert_true(pair_of(lv[i], &a, &b));
		unsigned k = a * 1024 + b;
		assert_false(seen[k / 8] & (1u << (k % 8)));
		seen[k / 8] |= (uint8_t)(1u << (k % 8));
	}
	/* release half; releasing twice or an unknown level changes nothing */
	for (int i = 0; i < N; i += 2)
		lsm_mcs_release(m, lv[i]);
	assert_int_equal(lsm_mcs_used(m), N / 2);
	lsm_mcs_release(m, lv[0]);
	lsm_mcs_release(m, "s0");
	lsm_mcs_release(m, "s0:c1,c2,c3");
	assert_int_equal(lsm_mcs_used(m), N / 2);
	lsm_mcs_free(m);
}

/* A deterministic "random" source: always the same pair first. */
static uint32_t fixed_rand(uint32_t upper, void *arg)
{
	unsigned *k = arg;
	return (uint32_t)((*k)++ % 2 == 0 ? 1 : 2) % upper;
}

static uint32_t zero_rand(uint32_t upper, void *arg)
{
	(void)upper;
	(void)arg;
	return 0;
}

static void test_mcs_counts_and_reserve(void **state)
{
	struct lsm_mcs *m = lsm_mcs_new(LSM_MCS_RANGE);
	crisp_err_t err = CRISP_ERR_INIT;
	char out[LSM_LABEL_MAX];
	unsigned k = 0;

	(void)state;
	/* what is tracked: exactly "s0:cA,cB", A < B < range, one spelling */
	assert_int_equal(lsm_mcs_reserve(m, "s0:c1,c2"), 1);
	assert_int_equal(lsm_mcs_reserve(m, "s0"), 0);
	assert_int_equal(lsm_mcs_reserve(m, ""), 0);
	assert_int_equal(lsm_mcs_reserve(m, NULL), 0);
	assert_int_equal(lsm_mcs_reserve(m, "s0:c2,c1"), 0);
	assert_int_equal(lsm_mcs_reserve(m, "s0:c1,c1"), 0);
	assert_int_equal(lsm_mcs_reserve(m, "s0:c01,c2"), 0);
	assert_int_equal(lsm_mcs_reserve(m, "s0:c1,c1024"), 0);
	assert_int_equal(lsm_mcs_reserve(m, "s0:c1,c2,c3"), 0);
	assert_int_equal(lsm_mcs_reserve(m, "s0-s0:c0.c1023"), 0);
	assert_int_equal(lsm_mcs_used(m), 1);
	/* two pods naming the same level: it stays held until both go */
	assert_int_equal(lsm_mcs_reserve(m, "s0:c1,c2"), 1);
	assert_int_equal(lsm_mcs_used(m), 1);
	lsm_mcs_release(m, "s0:c1,c2");
	/* the source proposes c1,c2 first: it is still held, so another */
	assert_int_equal(lsm_mcs_alloc(m, fixed_rand, &k, out, sizeof out, &err), 0);
	assert_string_not_equal(out, "s0:c1,c2");
	lsm_mcs_release(m, out);
	lsm_mcs_release(m, "s0:c1,c2");
	assert_int_equal(lsm_mcs_used(m), 0);
	/* now free: the proposal is taken */
	k = 0;
	assert_int_equal(lsm_mcs_alloc(m, fixed_rand, &k, out, sizeof out, &err), 0);
	assert_string_equal(out, "s0:c1,c2");
	lsm_mcs_free(m);
	assert_null(lsm_mcs_new(1));
	assert_null(lsm_mcs_new(LSM_MCS_RANGE + 1));
}

static void test_mcs_exhaustion(void **state)
{
	struct lsm_mcs *m = lsm_mcs_new(4); /* c0..c3: 6 pairs */
	crisp_err_t err = CRISP_ERR_INIT;
	char lv[6][LSM_LABEL_MAX], out[LSM_LABEL_MAX];

	(void)state;
	assert_int_equal(lsm_mcs_capacity(m), 6);
	/* a source that never helps: the scan still finds every pair */
	for (int i = 0; i < 6; i++) {
		assert_int_equal(lsm_mcs_alloc(m, zero_rand, NULL, lv[i], sizeof lv[i], &err), 0);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(lv[i], lv[j]);
	}
	assert_int_equal(lsm_mcs_alloc(m, zero_rand, NULL, out, sizeof out, &err), -1);
	assert_int_equal(err.code, CRISP_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(err.msg, "MCS"));
	assert_int_equal(lsm_mcs_alloc(m, NULL, NULL, out, sizeof out, &err), -1);
	/* one pod goes: its pair is the only one left, and is handed out */
	lsm_mcs_release(m, lv[3]);
	assert_int_equal(lsm_mcs_alloc(m, NULL, NULL, out, sizeof out, &err), 0);
	assert_string_equal(out, lv[3]);
	lsm_mcs_free(m);
}

/* Levels recorded with pods survive a restart: a new allocator loaded
 * from the state database never hands them out again. */
static void test_mcs_reload_from_state(void **state)
{
	char dir[PATH_MAX] = "/tmp/crisp-test-lsm-XXXXXX";
	crisp_err_t err = CRISP_ERR_INIT;
	struct state *st = NULL;
	struct lsm_mcs *m = lsm_mcs_new(16), *m2;
	char lv[40][LSM_LABEL_MAX], name[32];
	char id[STATE_ID_LEN + 1];

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(state_open(dir, 0, &st, &err), 0);
	for (int i = 0; i < 40; i++) {
		struct state_pod_spec sp = { 0 };
		snprintf(name, sizeof name, "pod%d", i);
		sp.name = name;
		sp.namespace = "ns";
		sp.uid = name;
		sp.runtime_handler = sp.hostname = sp.log_directory = sp.cgroup_parent = "";
		assert_int_equal(lsm_mcs_alloc(m, NULL, NULL, lv[i], sizeof lv[i], &err), 0);
		sp.mcs_level = lv[i];
		assert_int_equal(state_pod_reserve(st, &sp, id, &err), 0);
		if (i < 30) /* ten stay CREATING: rolled back at start, not reloaded */
			assert_int_equal(state_pod_commit(st, id, NULL, &err), 0);
	}
	state_close(st);
	st = NULL;
	assert_int_equal(state_open(dir, 0, &st, &err), 0);
	struct state_pod **v = NULL;
	size_t n = 0;
	assert_int_equal(state_pod_list(st, NULL, &v, &n, &err), 0);
	assert_int_equal(n, 30);
	m2 = lsm_mcs_new(16);
	for (size_t i = 0; i < n; i++) {
		bool known = false;
		for (int j = 0; j < 30 && !known; j++)
			known = !strcmp(v[i]->mcs_level, lv[j]);
		assert_true(known);
		assert_int_equal(lsm_mcs_reserve(m2, v[i]->mcs_level), 1);
	}
	state_pod_list_free(v, n);
	assert_int_equal(lsm_mcs_used(m2), 30);
	/* the other 90 pairs of the range: none collides with a reloaded one */
	for (int i = 0; i < 90; i++) {
		char out[LSM_LABEL_MAX];
		assert_int_equal(lsm_mcs_alloc(m2, NULL, NULL, out, sizeof out, &err), 0);
		for (int j = 0; j < 30; j++)
			assert_string_not_equal(out, lv[j]);
	}
	assert_int_equal(lsm_mcs_used(m2), 120);
	lsm_mcs_free(m);
	lsm_mcs_free(m2);
	state_close(st);
	rm_rf(dir);
}

/* A database from before pods had a level gains the column; its pods
 * read back with no level (they get none: nothing to reserve). */
static void test_state_migration(void **state)
{
	char dir[PATH_MAX] = "/tmp/crisp-test-lsm-XXXXXX", path[PATH_MAX + 32];
	crisp_err_t err = CRISP_ERR_INIT;
	struct state *st = NULL;
	sqlite3 *db = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/execd", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof path, "%s/execd/state.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
		"CREATE TABLE pods (id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 64),"
		" name TEXT NOT NULL, namespace TEXT NOT NULL, uid TEXT NOT NULL, attempt INTEGER NOT NULL,"
		" state INTEGER NOT NULL, created_at INTEGER NOT NULL, labels TEXT NOT NULL, annotations TEXT NOT NULL,"
		" runtime_handler TEXT NOT NULL, netns_path TEXT NOT NULL DEFAULT '', ips TEXT NOT NULL DEFAULT '[]',"
		" hostname TEXT NOT NULL, log_directory TEXT NOT NULL, cgroup_parent TEXT NOT NULL, config BLOB,"
		" infra_pid INTEGER NOT NULL DEFAULT 0, infra_start INTEGER NOT NULL DEFAULT 0, flags INTEGER NOT NULL,"
		" UNIQUE (name, namespace, uid, attempt));"
		"INSERT INTO pods (id, name, namespace, uid, attempt, state, created_at, labels, annotations,"
		" runtime_handler, hostname, log_directory, cgroup_parent, flags) VALUES ("
		" '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'old', 'ns', 'u', 0, 2, 1,"
		" '{}', '{}', '', '', '', '', 0);",
		NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(state_open(dir, 0, &st, &err), 0);
	struct state_pod *pod = NULL;
	assert_int_equal(state_pod_get(st, "0123456789ab", &pod, &err), 0);
	assert_string_equal(pod->name, "old");
	assert_string_equal(pod->mcs_level, "");
	state_pod_free(pod);
	state_close(st);
	/* and opening it again is a no-op */
	assert_int_equal(state_open(dir, 0, &st, &err), 0);
	state_close(st);
	rm_rf(dir);
}

/* ------------------------------------------------------------- levels */

static void test_level_valid(void **state)
{
	static const char *const good[] = {
		"s0", "s0:c4,c5", "s0:c0.c1023", "s0-s0:c0.c1023", "s15:c1,c2.c9,c100", "s0:c1023", "s1-s2",
	};
	static const char *const bad[] = {
		"s0,c4,c5", "", "s0:", "s0:c4,", "c4", "s0:c5.c4", "s0:c1024", "s0:c01", "s0 :c1", "S0",
		"s0:c1,c2:x", "s0-", "-s0", "s0:c4.c4", "s01", "s0:c", "s0::c1", "s0:c1 ", "s0:c1,,c2", "s99999",
	};

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (!lsm_level_valid(good[i]))
			fail_msg("%s should be valid", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (lsm_level_valid(bad[i]))
			fail_msg("%s should be refused", bad[i]);
	assert_false(lsm_level_valid(NULL));
	assert_true(lsm_name_valid("svirt_lxc_net_t"));
	assert_true(lsm_name_valid("system_u"));
	assert_false(lsm_name_valid("a:b"));
	assert_false(lsm_name_valid(""));
	assert_false(lsm_name_valid("a b"));
}

/* ------------------------------------------------------------- labels */

static void labels_ok(const char *pod_level, const struct lsm_selinux_opt *pod, const struct lsm_selinux_opt *ctr,
		      bool priv, const char *want_proc, const char *want_mount)
{
	char proc[LSM_LABEL_MAX], mnt[LSM_LABEL_MAX];
	crisp_err_t err = CRISP_ERR_INIT;

	if (lsm_selinux_labels(LSM_DEFAULT_PROCESS, LSM_DEFAULT_FILE, pod_level, pod, ctr, priv, proc, mnt, &err) < 0)
		fail_msg("labels: %s", err.msg);
	assert_string_equal(proc, want_proc);
	assert_string_equal(mnt, want_mount);
}

static void test_labels(void **state)
{
	(void)state;
	/* the pod's pair over the node's defaults */
	labels_ok("s0:c1,c2", NULL, NULL, false, "system_u:system_r:container_t:s0:c1,c2",
		  "system_u:object_r:container_file_t:s0:c1,c2");
	/* SE1: just a level */
	struct lsm_selinux_opt lvl = { .level = "s0" };
	labels_ok("s0:c1,c2", NULL, &lvl, false, "system_u:system_r:container_t:s0",
		  "system_u:object_r:container_file_t:s0");
	/* SE2: the whole context in the container's options */
	struct lsm_selinux_opt all = { "system_u", "system_r", "svirt_lxc_net_t", "s0:c4,c5" };
	labels_ok("s0:c1,c2", NULL, &all, false, "system_u:system_r:svirt_lxc_net_t:s0:c4,c5",
		  "system_u:object_r:container_file_t:s0:c4,c5");
	/* pod options, then the container's over them; user reaches the files */
	struct lsm_selinux_opt pod = { .user = "user_u", .type = "pod_t", .level = "s0:c7,c8" };
	struct lsm_selinux_opt ctr = { .role = "other_r", .type = "ctr_t", .user = "" };
	labels_ok("s0:c1,c2", &pod, &ctr, false, "user_u:other_r:ctr_t:s0:c7,c8",
		  "user_u:object_r:container_file_t:s0:c7,c8");
	labels_ok("s0:c1,c2", &pod, NULL, false, "user_u:system_r:pod_t:s0:c7,c8",
		  "user_u:object_r:container_file_t:s0:c7,c8");
	/* SE6/SE7: privileged is spc_t at s0; its files keep the pod's level */
	labels_ok("s0:c1,c2", NULL, NULL, true, "system_u:system_r:spc_t:s0",
		  "system_u:object_r:container_file_t:s0:c1,c2");
	labels_ok("s0:c1,c2", &pod, NULL, true, "user_u:system_r:spc_t:s0",
		  "user_u:object_r:container_file_t:s0:c7,c8");
	/* ... unless the container itself names a type or level */
	labels_ok("s0:c1,c2", NULL, &all, true, "system_u:system_r:svirt_lxc_net_t:s0:c4,c5",
		  "system_u:object_r:container_file_t:s0:c4,c5");
	/* no pod level (not allocated): the defaults' level */
	labels_ok("", NULL, NULL, false, LSM_DEFAULT_PROCESS, LSM_DEFAULT_FILE);
	/* a level with ranges and ':' inside survives the round trip */
	struct lsm_selinux_opt rng = { .level = "s0-s0:c0.c1023" };
	labels_ok("s0:c1,c2", NULL, &rng, false, "system_u:system_r:container_t:s0-s0:c0.c1023",
		  "system_u:object_r:container_file_t:s0-s0:c0.c1023");
}

static void test_labels_refused(void **state)
{
	char proc[LSM_LABEL_MAX], mnt[LSM_LABEL_MAX];
	crisp_err_t err = CRISP_ERR_INIT;
	struct lsm_selinux_opt bad_level = { .level = "s0,c4,c5" };
	struct lsm_selinux_opt bad_type = { .type = "container_t:s0" };
	struct lsm_selinux_opt bad_user = { .user = "a b" };

	(void)state;
	/* SE3: "s0,c4,c5" is an error on create */
	assert_int_equal(lsm_selinux_labels(LSM_DEFAULT_PROCESS, LSM_DEFAULT_FILE, "s0:c1,c2", NULL, &bad_level, false,
					    proc, mnt, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "container selinux_options.level \"s0,c4,c5\""));
	assert_string_equal(proc, "");
	assert_int_equal(lsm_selinux_labels(LSM_DEFAULT_PROCESS, LSM_DEFAULT_FILE, "s0:c1,c2", &bad_level, NULL, false,
					    proc, mnt, &err), -1);
	assert_non_null(strstr(err.msg, "pod selinux_options.level"));
	assert_int_equal(lsm_selinux_labels(LSM_DEFAULT_PROCESS, LSM_DEFAULT_FILE, "s0:c1,c2", NULL, &bad_type, false,
					    proc, mnt, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, ".type"));
	assert_int_equal(lsm_selinux_labels(LSM_DEFAULT_PROCESS, LSM_DEFAULT_FILE, "s0:c1,c2", NULL, &bad_user, true,
					    proc, mnt, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	/* a node whose defaults are garbage is the node's fault */
	assert_int_equal(lsm_selinux_labels("container_t", LSM_DEFAULT_FILE, "s0:c1,c2", NULL, NULL, false, proc, mnt,
					    &err), -1);
	assert_int_equal(err.code, CRISP_INTERNAL);
	/* a label that would not fit */
	char longt[120];
	memset(longt, 't', sizeof longt - 1);
	longt[sizeof longt - 1] = '\0';
	struct lsm_selinux_opt huge = { longt, longt, longt, "s0:c1,c2" };
	assert_int_equal(lsm_selinux_labels(LSM_DEFAULT_PROCESS, LSM_DEFAULT_FILE, "", NULL, &huge, false, proc, mnt,
					    &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
}

static void test_lxc_contexts(void **state)
{
	/* the shape container-selinux ships */
	const char *text = "process = \"system_u:system_r:container_t:s0\"\n"
			   "content = \"system_u:object_r:virt_var_lib_t:s0\"\n"
			   "# a comment = \"x:y:z:s0\"\n"
			   "file = \"system_u:object_r:container_file_t:s0\"\n"
			   "ro_file=\"system_u:object_r:container_ro_file_t:s0\"\n"
			   "sandbox_kvm_process = \"system_u:system_r:container_kvm_t:s0\"\n";
	char p[LSM_LABEL_MAX] = "unset", f[LSM_LABEL_MAX] = "unset";
	struct lsm_context c;

	(void)state;
	assert_int_equal(lsm_lxc_contexts_parse(text, p, f), 2);
	assert_string_equal(p, "system_u:system_r:container_t:s0");
	assert_string_equal(f, "system_u:object_r:container_file_t:s0");
	/* unquoted, custom types; a malformed value leaves the default */
	strcpy(p, "keep");
	strcpy(f, "keep");
	assert_int_equal(lsm_lxc_contexts_parse("  process=u:r:my_t:s0:c0.c1023 # tail\nfile = \"broken\"\n", p, f), 1);
	assert_string_equal(p, "u:r:my_t:s0:c0.c1023");
	assert_string_equal(f, "keep");
	assert_int_equal(lsm_lxc_contexts_parse("", p, f), 0);
	/* context split keeps ':' in the level */
	assert_int_equal(lsm_context_parse("a:b:c:s0-s0:c0.c1023", &c), 0);
	assert_string_equal(c.type, "c");
	assert_string_equal(c.level, "s0-s0:c0.c1023");
	assert_int_equal(lsm_context_parse("a:b:c", &c), -1);
	assert_int_equal(lsm_context_parse("a::c:s0", &c), -1);
}

static void test_relabel_forbidden(void **state)
{
	static const char *const never[] = { "/", "/etc", "/etc/", "/usr", "/home", "/var/lib", "/root", "/tmp",
					     "/etc/shadow", "relative" };
	static const char *const fine[] = { "/var/lib/kubelet/pods/x/volumes/v", "/tmp/critest-volume", "/etc/foo",
					    "/srv/data", "/home/user" };

	(void)state;
	for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
		if (!lsm_relabel_forbidden(never[i]))
			fail_msg("%s must never be relabelled", never[i]);
	for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++)
		if (lsm_relabel_forbidden(fine[i]))
			fail_msg("%s may be relabelled", fine[i]);
}

/* The relabel walk, on this node's filesystem: without an LSM the kernel
 * still stores security.selinux as written, so the walk can be checked
 * (a struct lsm that believes SELinux is on). */
static void xattr_is(const char *path, const char *want)
{
	char v[LSM_LABEL_MAX] = "";
	ssize_t n = lgetxattr(path, "security.selinux", v, sizeof v - 1);
	if (want == NULL) {
		assert_true(n < 0);
		return;
	}
	if (n < 0)
		fail_msg("%s: no label (%s)", path, strerror(errno));
	v[n] = '\0';
	assert_string_equal(v, want);
}

static void test_relabel_walk(void **state)
{
	char dir[PATH_MAX] = "/tmp/crisp-test-lsm-XXXXXX", p[PATH_MAX + 64], t[PATH_MAX + 64];
	const char *lbl = "system_u:object_r:container_file_t:s0:c3,c9";
	crisp_err_t err = CRISP_ERR_INIT;
	struct lsm l;

	(void)state;
	memset(&l, 0, sizeof l);
	l.selinux = true;
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof p, "%s/vol", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/vol/sub", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/vol/sub/f", dir);
	fclose(fopen(p, "w"));
	snprintf(t, sizeof t, "%s/outside", dir);
	fclose(fopen(t, "w"));
	snprintf(p, sizeof p, "%s/vol/link", dir);
	assert_int_equal(symlink(t, p), 0);
	if (lsetxattr(t, "security.selinux", "x", 1, 0) < 0 && (errno == ENOTSUP || errno == EPERM)) {
		rm_rf(dir);
		skip(); /* reason: this filesystem stores no security.* attributes */
	}
	assert_int_equal(lremovexattr(t, "security.selinux"), 0);

	snprintf(p, sizeof p, "%s/vol", dir);
	if (lsm_relabel(&l, p, lbl, &err) < 0)
		fail_msg("relabel: %s", err.msg);
	xattr_is(p, lbl);
	snprintf(p, sizeof p, "%s/vol/sub", dir);
	xattr_is(p, lbl);
	snprintf(p, sizeof p, "%s/vol/sub/f", dir);
	xattr_is(p, lbl);
	snprintf(p, sizeof p, "%s/vol/link", dir);
	xattr_is(p, lbl);  /* the link itself ... */
	xattr_is(t, NULL); /* ... never what it points to */
	/* system directories are refused before anything is touched */
	assert_int_equal(lsm_relabel(&l, "/etc", lbl, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	assert_non_null(strstr(err.msg, "not allowed"));
	assert_int_equal(lsm_relabel(&l, "/usr/", lbl, &err), -1);
	/* a missing path is a clear error; "" or no SELinux is a no-op */
	snprintf(p, sizeof p, "%s/nope", dir);
	assert_int_equal(lsm_relabel(&l, p, lbl, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	assert_int_equal(lsm_relabel(&l, "/etc", "", &err), 0);
	l.selinux = false;
	assert_int_equal(lsm_relabel(&l, "/etc", lbl, &err), 0);
	/* the pod's shm root */
	l.selinux = true;
	assert_int_equal(lsm_label_path(&l, t, lbl, &err), 0);
	xattr_is(t, lbl);
	rm_rf(dir);
}

/* ----------------------------------------------------------- AppArmor */

static void aa(int type, const char *ref, const char *legacy, bool priv, bool enabled, int want_rc, int want_code,
	       const char *want)
{
	char out[LSM_PROFILE_MAX] = "junk";
	crisp_err_t err = CRISP_ERR_INIT;
	int rc = lsm_apparmor_choose(type, ref, legacy, priv, enabled, out, sizeof out, &err);

	if (rc != want_rc)
		fail_msg("type %d ref %s legacy %s priv %d enabled %d: rc %d (%s)", type, ref ? ref : "-",
			 legacy ? legacy : "-", priv, enabled, rc, err.msg);
	if (rc < 0) {
		assert_int_equal(err.code, want_code);
		assert_string_equal(out, "");
	} else {
		assert_string_equal(out, want);
	}
}

static void test_apparmor_choose(void **state)
{
	(void)state;
	/* AppArmor on */
	aa(-1, NULL, NULL, false, true, 0, 0, LSM_AA_DEFAULT);
	aa(-1, NULL, "", false, true, 0, 0, LSM_AA_DEFAULT);
	aa(-1, NULL, "runtime/default", false, true, 0, 0, LSM_AA_DEFAULT);
	aa(-1, NULL, "unconfined", false, true, 0, 0, "");
	aa(-1, NULL, "localhost/my-profile", false, true, 0, 0, "my-profile");
	aa(LSM_AA_RUNTIME_DEFAULT, "", "", false, true, 0, 0, LSM_AA_DEFAULT);
	aa(LSM_AA_UNCONFINED, "", "runtime/default", false, true, 0, 0, ""); /* the field wins */
	aa(LSM_AA_LOCALHOST, "my-profile", "", false, true, 0, 0, "my-profile");
	aa(LSM_AA_LOCALHOST, "localhost/my-profile", "", false, true, 0, 0, "my-profile");
	aa(LSM_AA_LOCALHOST, "/usr/bin/foo", "", false, true, 0, 0, "/usr/bin/foo");
	/* privileged: unconfined whatever is asked */
	aa(LSM_AA_RUNTIME_DEFAULT, "", "", true, true, 0, 0, "");
	aa(LSM_AA_LOCALHOST, "my-profile", "", true, true, 0, 0, "");
	aa(-1, NULL, "", true, true, 0, 0, "");
	/* bad input, on any node */
	aa(-1, NULL, "my-profile", false, true, -1, CRISP_INVALID_ARGUMENT, NULL);
	aa(-1, NULL, "docker/default", false, false, -1, CRISP_INVALID_ARGUMENT, NULL);
	aa(LSM_AA_LOCALHOST, "", "", false, true, -1, CRISP_INVALID_ARGUMENT, NULL);
	aa(LSM_AA_LOCALHOST, "localhost/", "", false, true, -1, CRISP_INVALID_ARGUMENT, NULL);
	aa(LSM_AA_LOCALHOST, "two words", "", false, true, -1, CRISP_INVALID_ARGUMENT, NULL);
	aa(LSM_AA_LOCALHOST, "a\nexec b", "", false, true, -1, CRISP_INVALID_ARGUMENT, NULL);
	aa(LSM_AA_LOCALHOST, "unconfined", "", false, true, -1, CRISP_INVALID_ARGUMENT, NULL);
	aa(7, "", "", false, true, -1, CRISP_INVALID_ARGUMENT, NULL);
	/* AppArmor off: the default and unconfined apply nothing; a named
	 * profile cannot be honoured */
	aa(-1, NULL, "", false, false, 0, 0, "");
	aa(-1, NULL, "runtime/default", false, false, 0, 0, "");
	aa(LSM_AA_RUNTIME_DEFAULT, "", "", false, false, 0, 0, "");
	aa(LSM_AA_UNCONFINED, "", "", false, false, 0, 0, "");
	aa(LSM_AA_LOCALHOST, "my-profile", "", false, false, -1, CRISP_FAILED_PRECONDITION, NULL);
	aa(-1, NULL, "localhost/my-profile", false, false, -1, CRISP_FAILED_PRECONDITION, NULL);

	char longname[LSM_PROFILE_MAX + 8];
	memset(longname, 'p', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	aa(LSM_AA_LOCALHOST, longname, "", false, true, -1, CRISP_INVALID_ARGUMENT, NULL);
}

static void test_apparmor_listed_and_profile(void **state)
{
	const char *profiles = "crisp-default (enforce)\n"
			       "/usr/sbin/ntpd (enforce)\n"
			       "my-profile//child (complain)\n"
			       "docker-default (enforce)\n";
	const char *t = lsm_apparmor_default_text();

	(void)state;
	assert_true(lsm_apparmor_listed(profiles, "crisp-default"));
	assert_true(lsm_apparmor_listed(profiles, "/usr/sbin/ntpd"));
	assert_true(lsm_apparmor_listed(profiles, "docker-default"));
	assert_false(lsm_apparmor_listed(profiles, "crisp"));
	assert_false(lsm_apparmor_listed(profiles, "my-profile"));
	assert_false(lsm_apparmor_listed(profiles, "default"));
	assert_false(lsm_apparmor_listed("", "crisp-default"));
	/* the shipped profile is compiled in whole */
	assert_non_null(t);
	assert_non_null(strstr(t, "profile crisp-default flags=(attach_disconnected,mediate_deleted) {"));
	assert_non_null(strstr(t, "deny mount,"));
	assert_non_null(strstr(t, "signal (receive) peer=unconfined,"));
	size_t n = strlen(t);
	assert_true(n > 200);
	assert_string_equal(t + n - 2, "}\n");
}

/* ------------------------------------------------- this node (thin layer) */

static void test_node_detection(void **state)
{
	struct lsm l;
	crisp_err_t err = CRISP_ERR_INIT;
	char proc[LSM_LABEL_MAX], mnt[LSM_LABEL_MAX], prof[LSM_PROFILE_MAX];
	struct lsm_selinux_opt bad = { .level = "s0,c4,c5" }, good = { .level = "s0:c4,c5" };

	(void)state;
	assert_int_equal(lsm_init(&l, &err), 0);
	assert_int_equal(l.selinux, is_selinux_enabled() > 0);
	assert_int_equal(l.apparmor, aa_is_enabled() == 1);
	/* options are checked on every node */
	assert_int_equal(lsm_ctr_selinux(&l, "s0:c1,c2", NULL, &bad, false, proc, mnt, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(lsm_ctr_selinux(&l, "s0:c1,c2", NULL, &good, false, proc, mnt, &err), 0);
	if (!l.selinux) {
		/* ... and applied only where SELinux is on */
		assert_string_equal(proc, "");
		assert_string_equal(mnt, "");
		assert_int_equal(lsm_relabel(&l, "/etc", "system_u:object_r:container_file_t:s0", &err), 0);
	} else {
		assert_string_equal(proc + strlen(proc) - 8, "s0:c4,c5");
		assert_int_equal(lsm_relabel(&l, "/etc", mnt, &err), -1);
		assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	}
	if (!l.apparmor) {
		assert_int_equal(lsm_ctr_apparmor(&l, LSM_AA_RUNTIME_DEFAULT, "", "", false, prof, sizeof prof, &err), 0);
		assert_string_equal(prof, "");
		assert_int_equal(lsm_ctr_apparmor(&l, LSM_AA_LOCALHOST, "x", "", false, prof, sizeof prof, &err), -1);
		assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
		assert_non_null(strstr(err.msg, "not enabled"));
	} else {
		assert_int_equal(lsm_ctr_apparmor(&l, LSM_AA_LOCALHOST, "crisp-no-such-profile", "", false, prof,
						  sizeof prof, &err), -1);
		assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
		assert_non_null(strstr(err.msg, "is not loaded"));
	}
	lsm_close(&l);
}

/* A launch asked for a label the kernel cannot apply fails, with the step
 * named, and runs nothing: on this node (no SELinux, no AppArmor) any
 * label is such a label. */
static char g_tmp[256];

static int launch_setup(void **state)
{
	char p[PATH_MAX + 32];
	static const char *const dirs[] = { "bin", "proc", "dev", "sys", "tmp" };

	(void)state;
	snprintf(g_tmp, sizeof g_tmp, "/tmp/crisp-lsm-XXXXXX");
	if (mkdtemp(g_tmp) == NULL)
		return -1;
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", g_tmp, dirs[i]);
		if (mkdir(p, 0755) < 0)
			return -1;
	}
	int in = open("/bin/busybox", O_RDONLY | O_CLOEXEC);
	snprintf(p, sizeof p, "%s/bin/busybox", g_tmp);
	int out = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
	struct stat st;
	if (in < 0 || out < 0 || fstat(in, &st) < 0)
		return -1;
	off_t off = 0;
	while (off < st.st_size)
		if (sendfile(out, in, &off, (size_t)(st.st_size - off)) <= 0)
			return -1;
	close(in);
	close(out);
	return 0;
}

static int launch_teardown(void **state)
{
	(void)state;
	rm_rf(g_tmp);
	return 0;
}

static int launch_with(const char *proc, const char *mnt, const char *aa_prof, crisp_err_t *err)
{
	static char *const argv[] = { "/bin/busybox", "true", NULL };
	static char *const envp[] = { "PATH=/bin", NULL };
	struct launch_spec s;
	struct launch_result res;

	memset(&s, 0, sizeof s);
	s.rootfs = g_tmp;
	s.argv = argv;
	s.envp = envp;
	s.cwd = "/";
	s.ns[LAUNCH_NS_MNT].mode = LAUNCH_NS_NEW;
	s.ns[LAUNCH_NS_PID].mode = LAUNCH_NS_NEW;
	s.cap_effective = s.cap_permitted = s.cap_bounding = launch_default_caps();
	s.seccomp_fd = -1;
	s.stdio[0] = s.stdio[1] = s.stdio[2] = -1;
	s.process_label = proc;
	s.mount_label = mnt;
	s.apparmor_profile = aa_prof;
	if (launch_container(&s, &res, err) < 0)
		return -1;
	int status = -1;
	waitpid(res.pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void test_launch_labels_or_nothing(void **state)
{
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	if (geteuid() != 0) {
		skip(); /* reason: launching a container needs root */
	}
	if (is_selinux_enabled() > 0 || aa_is_enabled() == 1) {
		skip(); /* reason: an LSM is enabled here: labels apply; tests/e2e/test_lsm.py checks them */
	}
	/* no label: the process runs */
	assert_int_equal(launch_with(NULL, NULL, NULL, &err), 0);
	assert_int_equal(launch_with("", "", "", &err), 0);
	/* SELinux exec label: the kernel refuses it, the launch says so */
	assert_int_equal(launch_with("system_u:system_r:container_t:s0:c1,c2", NULL, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "SELinux exec label system_u:system_r:container_t:s0:c1,c2"));
	/* AppArmor profile */
	crisp_error_clear(&err);
	assert_int_equal(launch_with(NULL, NULL, "crisp-default", &err), -1);
	assert_non_null(strstr(err.msg, "AppArmor profile crisp-default"));
	/* mount label: the tmpfs mounts carry context=, which only an SELinux
	 * kernel takes */
	crisp_error_clear(&err);
	assert_int_equal(launch_with(NULL, "system_u:object_r:container_file_t:s0:c1,c2", NULL, &err), -1);
	assert_non_null(strstr(err.msg, "mount /dev"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mcs_unique),
		cmocka_unit_test(test_mcs_counts_and_reserve),
		cmocka_unit_test(test_mcs_exhaustion),
		cmocka_unit_test(test_mcs_reload_from_state),
		cmocka_unit_test(test_state_migration),
		cmocka_unit_test(test_level_valid),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_labels_refused),
		cmocka_unit_test(test_lxc_contexts),
		cmocka_unit_test(test_relabel_forbidden),
		cmocka_unit_test(test_relabel_walk),
		cmocka_unit_test(test_apparmor_choose),
		cmocka_unit_test(test_apparmor_listed_and_profile),
		cmocka_unit_test(test_node_detection),
		cmocka_unit_test_setup_teardown(test_launch_labels_or_nothing, launch_setup, launch_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
