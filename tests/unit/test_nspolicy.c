/* Per-namespace signature policies: selection, no fallback on a broken
 * file, caching keyed by the file's identity, atomic replacement. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/nspolicy.h"

static char T[64], DIR_[96], GLOBAL[96];

#define ACCEPT "{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}"
#define REJECT "{\"default\":[{\"type\":\"reject\"}]}"

static void put(const char *path, const char *content)
{
	char tmp[256];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0); /* atomic replacement */
}

static void put_ns(const char *ns, const char *content)
{
	char p[160];
	snprintf(p, sizeof p, "%s/%s.json", DIR_, ns);
	put(p, content);
}

static int setup(void **state)
{
	(void)state;
	snprintf(T, sizeof T, "/tmp/crisp-nsp-XXXXXX");
	if (mkdtemp(T) == NULL)
		return -1;
	snprintf(DIR_, sizeof DIR_, "%s/policy.d", T);
	snprintf(GLOBAL, sizeof GLOBAL, "%s/policy.json", T);
	return mkdir(DIR_, 0700);
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", T);
	return system(cmd) == 0 ? 0 : -1;
}

static enum sp_req_type first_req(const struct nsp_handle *h)
{
	return nsp_policy(h)->def.v[0].type;
}

static void test_names(void **state)
{
	(void)state;
	assert_true(nsp_valid_namespace("default"));
	assert_true(nsp_valid_namespace("kube-system"));
	assert_true(nsp_valid_namespace("a"));
	assert_true(nsp_valid_namespace("0abc9"));
	assert_false(nsp_valid_namespace(""));
	assert_false(nsp_valid_namespace(NULL));
	assert_false(nsp_valid_namespace("-a"));
	assert_false(nsp_valid_namespace("a-"));
	assert_false(nsp_valid_namespace("A"));
	assert_false(nsp_valid_namespace("a.b"));
	assert_false(nsp_valid_namespace("../x"));
	assert_false(nsp_valid_namespace("a/b"));
	assert_false(nsp_valid_namespace("0123456789012345678901234567890123456789012345678901234567890123"));
	assert_true(nsp_valid_namespace("012345678901234567890123456789012345678901234567890123456789012"));
}

static void test_select_and_cache(void **state)
{
	(void)state;
	struct nsp_cache *c = nsp_cache_new(DIR_, GLOBAL);
	struct nsp_handle *h;
	crisp_err_t err = CRISP_ERR_INIT;
	struct nsp_stats st;

	/* no global policy: deny */
	assert_int_equal(nsp_acquire(c, "default", &h, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	assert_null(h);

	put(GLOBAL, REJECT);
	put_ns("team-a", ACCEPT);
	assert_int_equal(nsp_acquire(c, "default", &h, &err), 0);
	assert_false(nsp_is_namespaced(h));
	assert_string_equal(nsp_path(h), GLOBAL);
	assert_int_equal(first_req(h), SP_REQ_REJECT);
	nsp_release(h);
	assert_int_equal(nsp_acquire(c, "team-a", &h, &err), 0);
	assert_true(nsp_is_namespaced(h));
	assert_int_equal(first_req(h), SP_REQ_INSECURE_ACCEPT_ANYTHING);
	nsp_release(h);

	/* bad names never reach the file system */
	assert_int_equal(nsp_acquire(c, "../policy", &h, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);

	/* cached: 10 more lookups, no new loads */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(nsp_acquire(c, i % 2 ? "team-a" : "other", &h, &err), 0);
		nsp_release(h);
	}
	nsp_cache_stats(c, &st);
	assert_int_equal(st.loads, 2);
	assert_int_equal(st.hits, 10);
	assert_int_equal(st.entries, 2);

	/* a handle held across an atomic replacement stays valid; the next
	 * lookup sees the new file */
	struct nsp_handle *old;
	assert_int_equal(nsp_acquire(c, "team-a", &old, &err), 0);
	put_ns("team-a", REJECT);
	assert_int_equal(nsp_acquire(c, "team-a", &h, &err), 0);
	assert_int_equal(first_req(h), SP_REQ_REJECT);
	assert_int_equal(first_req(old), SP_REQ_INSECURE_ACCEPT_ANYTHING);
	nsp_release(old);
	nsp_release(h);
	nsp_cache_stats(c, &st);
	assert_int_equal(st.loads, 3);

	/* a broken per-namespace file: deny with the parse error, never the
	 * global policy; cached as broken until it changes */
	put_ns("team-a", "{\"default\":[{\"type\":\"signedBy\"}]}");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(nsp_acquire(c, "team-a", &h, &err), -1);
		assert_null(h);
		assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
		assert_non_null(strstr(err.msg, "team-a.json"));
		assert_non_null(strstr(err.msg, "default[0]"));
	}
	nsp_cache_stats(c, &st);
	assert_int_equal(st.loads, 4);
	put_ns("team-a", ACCEPT);
	assert_int_equal(nsp_acquire(c, "team-a", &h, &err), 0);
	assert_int_equal(first_req(h), SP_REQ_INSECURE_ACCEPT_ANYTHING);
	nsp_release(h);

	/* in-place rewrite of a different size is noticed too */
	char p[160];
	snprintf(p, sizeof p, "%s/team-a.json", DIR_);
	FILE *f = fopen(p, "w");
	fputs(REJECT "\n\n", f);
	fclose(f);
	assert_int_equal(nsp_acquire(c, "team-a", &h, &err), 0);
	assert_int_equal(first_req(h), SP_REQ_REJECT);
	nsp_release(h);

	/* removing the namespace file falls back to the global one (it no
	 * longer exists); a broken global policy denies everyone */
	unlink(p);
	put(GLOBAL, "not json");
	assert_int_equal(nsp_acquire(c, "team-a", &h, &err), -1);
	assert_non_null(strstr(err.msg, "policy.json"));

	/* the namespace "file" is a directory: an error, not a fallback */
	put(GLOBAL, ACCEPT);
	snprintf(p, sizeof p, "%s/team-b.json", DIR_);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(nsp_acquire(c, "team-b", &h, &err), -1);
	assert_non_null(strstr(err.msg, "not a regular file"));
	rmdir(p);
	/* unreadable (a dangling symlink loop) */
	assert_int_equal(symlink(p, p), 0);
	assert_int_equal(nsp_acquire(c, "team-b", &h, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	unlink(p);
	assert_int_equal(nsp_acquire(c, "team-b", &h, &err), 0);
	assert_false(nsp_is_namespaced(h));

	/* handles outlive the cache */
	nsp_cache_free(c);
	assert_int_equal(first_req(h), SP_REQ_INSECURE_ACCEPT_ANYTHING);
	nsp_release(h);
}

static void test_no_dir_and_eviction(void **state)
{
	(void)state;
	struct nsp_cache *c = nsp_cache_new(NULL, GLOBAL);
	struct nsp_handle *h;
	crisp_err_t err = CRISP_ERR_INIT;
	put(GLOBAL, ACCEPT);
	put_ns("team-c", REJECT);
	assert_int_equal(nsp_acquire(c, "team-c", &h, &err), 0);
	assert_false(nsp_is_namespaced(h));
	nsp_release(h);
	nsp_cache_free(c);

	/* more namespace files than cache slots */
	c = nsp_cache_new(DIR_, GLOBAL);
	char ns[32];
	for (int i = 0; i < NSP_CACHE_MAX + 5; i++) {
		snprintf(ns, sizeof ns, "n%d", i);
		put_ns(ns, i % 2 ? ACCEPT : REJECT);
		assert_int_equal(nsp_acquire(c, ns, &h, &err), 0);
		assert_int_equal(first_req(h), i % 2 ? SP_REQ_INSECURE_ACCEPT_ANYTHING : SP_REQ_REJECT);
		nsp_release(h);
	}
	struct nsp_stats st;
	nsp_cache_stats(c, &st);
	assert_int_equal(st.entries, NSP_CACHE_MAX);
	nsp_cache_free(c);
	assert_null(nsp_cache_new(DIR_, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_select_and_cache),
		cmocka_unit_test(test_no_dir_and_eviction),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
