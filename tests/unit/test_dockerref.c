/* Docker references: normalisation and strict syntax (c/image docker/reference). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/dockerref.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void expect_norm(const char *in, const char *want)
{
	struct dockerref r;
	crisp_err_t err = CRISP_ERR_INIT;
	char buf[DOCKERREF_STR_MAX];

	if (dockerref_parse(in, &r, &err) != 0)
		fail_msg("'%s' did not parse: %s", in, err.msg);
	dockerref_string(&r, buf);
	if (strcmp(buf, want) != 0)
		fail_msg("'%s' -> '%s', want '%s'", in, buf, want);
}

static void expect_bad(const char *in, const char *want)
{
	struct dockerref r;
	crisp_err_t err = CRISP_ERR_INIT;

	if (dockerref_parse(in, &r, &err) == 0)
		fail_msg("'%s' parsed, expected an error", in);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	if (want != NULL && strstr(err.msg, want) == NULL)
		fail_msg("'%s': error '%s' does not contain '%s'", in, err.msg, want);
}

static void test_normalise(void **state)
{
	(void)state;
	expect_norm("busybox", "docker.io/library/busybox");
	expect_norm("busybox:latest", "docker.io/library/busybox:latest");
	expect_norm("library/busybox", "docker.io/library/busybox");
	expect_norm("foo/bar", "docker.io/foo/bar");
	expect_norm("foo/bar/baz:1.0", "docker.io/foo/bar/baz:1.0");
	expect_norm("docker.io/busybox", "docker.io/library/busybox");
	expect_norm("index.docker.io/busybox", "docker.io/library/busybox");
	expect_norm("index.docker.io/foo/bar", "docker.io/foo/bar");
	expect_norm("localhost/foo", "localhost/foo");
	expect_norm("localhost:5000/foo/bar:v1", "localhost:5000/foo/bar:v1");
	expect_norm("quay.io/a/b@sha256:" D64, "quay.io/a/b@sha256:" D64);
	expect_norm("quay.io/a/b:t@sha256:" D64, "quay.io/a/b:t@sha256:" D64);
	expect_norm("busybox@sha256:" D64, "docker.io/library/busybox@sha256:" D64);
	expect_norm("Quay.IO/a/b", "Quay.IO/a/b"); /* domains keep their case */
	expect_norm("example.com:5000", "docker.io/library/example.com:5000"); /* no '/': a tag */
	expect_norm("a-b.c-d.example:1/x", "a-b.c-d.example:1/x");
	expect_norm("r.io/a.b/c_d/e__f/g-h/i--j", "r.io/a.b/c_d/e__f/g-h/i--j");
	expect_norm("r.io/x:_Tag.v-1", "r.io/x:_Tag.v-1");
	expect_norm("r.io/x@sha512:" D64 D64, "r.io/x@sha512:" D64 D64);
	expect_norm("docker.io", "docker.io/library/docker.io");
}

static void test_bad(void **state)
{
	char big[600];

	(void)state;
	expect_bad("", "empty");
	expect_bad("Busybox", "lowercase");
	expect_bad("foo/Bar", "lowercase");
	expect_bad("quay.io/A", "lowercase");
	expect_bad(D64, "64-byte hexadecimal");
	expect_bad("quay.io/a:", "invalid tag");
	expect_bad("quay.io/a:t:u", "invalid tag");
	expect_bad("quay.io/a:.t", "invalid tag");
	expect_bad("quay.io/a@sha256:abc", "invalid digest");
	expect_bad("quay.io/a@md5:" D64, "invalid digest");
	expect_bad("quay.io/a@sha256:" "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		   "invalid digest");
	expect_bad("quay.io/a@", "invalid digest");
	expect_bad("quay.io//a", "invalid path component");
	expect_bad("quay.io/a/", "invalid path component");
	expect_bad("quay.io/", "empty repository path");
	expect_bad("quay.io/a__-b", "invalid path component");
	expect_bad("quay.io/a..b", "invalid path component");
	expect_bad("quay.io/a___b", "invalid path component");
	expect_bad("quay.io/_a", "invalid path component");
	expect_bad("quay.io/a-", "invalid path component");
	expect_bad("-a.com/b", "invalid domain");
	expect_bad("a-.com/b", "invalid domain");
	expect_bad("a.com:/b", "invalid domain");
	expect_bad("a.com:50x/b", "invalid domain");
	expect_bad("a..com/b", "invalid domain");
	expect_bad("foo:bar/baz", "invalid domain");
	expect_bad("[::1]:5000/a", "invalid domain"); /* c/image has no IPv6 hosts */
	expect_bad("a/b:c/d", "invalid tag");
	expect_bad("a b", NULL);
	expect_bad("quay.io/a\n", NULL);

	memset(big, 'a', sizeof big);
	memcpy(big, "r.io/", 5);
	big[5 + 251] = '\0'; /* name of 256 bytes */
	expect_bad(big, "255");
	big[5 + 250] = '\0';
	expect_norm(big, big);
	memset(big, 'a', sizeof big);
	big[sizeof big - 1] = '\0';
	expect_bad(big, "longer than");
	/* tags: 128 characters at most */
	snprintf(big, sizeof big, "r.io/x:%0128d", 0);
	expect_norm(big, big);
	snprintf(big, sizeof big, "r.io/x:%0129d", 0);
	expect_bad(big, "invalid tag");
}

static void test_components(void **state)
{
	(void)state;
	assert_true(dockerref_valid_component("a", 1));
	assert_true(dockerref_valid_component("a-b", 3));
	assert_true(dockerref_valid_component("a---b", 5));
	assert_true(dockerref_valid_component("a__b", 4));
	assert_true(dockerref_valid_component("a.b_c", 5));
	assert_false(dockerref_valid_component("a._b", 4));
	assert_false(dockerref_valid_component("a-_b", 4));
	assert_false(dockerref_valid_component("a-", 2));
	assert_false(dockerref_valid_component("", 0));
	assert_false(dockerref_valid_component("aB", 2));
	assert_true(dockerref_valid_domain("localhost", 9));
	assert_true(dockerref_valid_domain("a.b:1", 5));
	assert_false(dockerref_valid_domain("a.b:", 4));
	assert_false(dockerref_valid_domain("a_b.c", 5));
	assert_true(dockerref_valid_hostname("example.com", 11));
	assert_false(dockerref_valid_hostname("example.com:1", 13));
	assert_false(dockerref_valid_hostname("", 0));
	assert_true(dockerref_valid_digest("sha256:" D64, 71));
	assert_false(dockerref_valid_digest("sha256:" D64 "0", 72));
	assert_true(dockerref_valid_tag("_", 1));
	assert_false(dockerref_valid_tag("-a", 2));
}

static void test_canonical_and_pull(void **state)
{
	struct dockerref r;
	crisp_err_t err = CRISP_ERR_INIT;
	char buf[DOCKERREF_STR_MAX];

	(void)state;
	assert_int_equal(dockerref_parse_canonical("docker.io/library/busybox:1", &r, &err), 0);
	assert_int_equal(dockerref_parse_canonical("busybox:1", &r, &err), -1);
	assert_non_null(strstr(err.msg, "fully expanded"));
	assert_int_equal(dockerref_parse_canonical("docker.io/busybox", &r, &err), -1);
	assert_int_equal(dockerref_parse_canonical("index.docker.io/library/busybox", &r, &err), -1);

	assert_int_equal(dockerref_parse_pull("busybox", &r, &err), 0);
	dockerref_string(&r, buf);
	assert_string_equal(buf, "docker.io/library/busybox:latest");
	assert_int_equal(r.domain_len, 9);
	assert_false(dockerref_is_name_only(&r));
	assert_int_equal(dockerref_parse_pull("quay.io/a@sha256:" D64, &r, &err), 0);
	assert_string_equal(r.tag, "");
	assert_string_equal(r.digest, "sha256:" D64);
	assert_int_equal(dockerref_parse_pull("quay.io/a:t@sha256:" D64, &r, &err), -1);
	assert_non_null(strstr(err.msg, "both a tag and a digest"));
	assert_int_equal(dockerref_parse(NULL, &r, &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_components),
		cmocka_unit_test(test_canonical_and_pull),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
