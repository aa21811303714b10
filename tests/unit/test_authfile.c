/* containers-auth.json credentials: strict parsing, key normalisation,
 * most-specific-first lookup, stat-based reload, and no secrets in errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "imaged/authfile.h"

/* base64 of "user:pass", "alice:s3cret:x", "bob:pw" */
#define B_USERPASS "dXNlcjpwYXNz"
#define B_ALICE "YWxpY2U6czNjcmV0Ong="
#define B_BOB "Ym9iOnB3"

static struct authfile *parse_ok(const char *text)
{
	struct authfile *af = NULL;
	crisp_err_t err = CRISP_ERR_INIT;

	if (authfile_parse(text, strlen(text), &af, &err) != 0)
		fail_msg("did not parse: %s\n%s", err.msg, text);
	assert_non_null(af);
	return af;
}

static void parse_bad(const char *text, const char *want)
{
	struct authfile *af = NULL;
	crisp_err_t err = CRISP_ERR_INIT;

	if (authfile_parse(text, strlen(text), &af, &err) == 0) {
		authfile_free(af);
		fail_msg("parsed, expected an error:\n%s", text);
	}
	assert_null(af);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	if (want && !strstr(err.msg, want))
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
	/* never a secret in the message */
	assert_null(strstr(err.msg, "s3cret"));
	assert_null(strstr(err.msg, B_ALICE));
	assert_null(strstr(err.msg, "SECRETTOKEN"));
}

static void test_parse_and_lookup(void **state)
{
	struct authfile *af;
	const struct authfile_entry *e;

	(void)state;
	af = parse_ok("{\"auths\": {"
		      "\"quay.io\": {\"auth\": \"" B_USERPASS "\"},"
		      "\"quay.io/team\": {\"auth\": \"" B_ALICE "\"},"
		      "\"quay.io/team/app\": {\"identitytoken\": \"tok123\"},"
		      "\"127.0.0.1:5000\": {\"auth\": \"" B_BOB "\", \"identitytoken\": \"\"},"
		      "\"https://index.docker.io/v1/\": {\"auth\": \"" B_BOB "\"}}}");
	assert_int_equal(af->n, 5);

	e = authfile_lookup(af, "quay.io", "other/x");
	assert_non_null(e);
	assert_string_equal(e->key, "quay.io");
	assert_string_equal(e->username, "user");
	assert_string_equal(e->password, "pass");
	assert_null(e->identity_token);

	/* most specific first; the password keeps its own ':' */
	e = authfile_lookup(af, "quay.io", "team/lib");
	assert_non_null(e);
	assert_string_equal(e->key, "quay.io/team");
	assert_string_equal(e->username, "alice");
	assert_string_equal(e->password, "s3cret:x");

	e = authfile_lookup(af, "quay.io", "team/app");
	assert_non_null(e);
	assert_string_equal(e->identity_token, "tok123");
	assert_null(e->username);
	e = authfile_lookup(af, "quay.io", "team/app/sub");
	assert_non_null(e);
	assert_string_equal(e->key, "quay.io/team/app");
	/* a path prefix is a whole component: team/apple is not team/app */
	e = authfile_lookup(af, "quay.io", "team/apple");
	assert_string_equal(e->key, "quay.io/team");

	e = authfile_lookup(af, "127.0.0.1:5000", "x");
	assert_non_null(e);
	assert_string_equal(e->username, "bob");
	assert_null(e->identity_token);
	/* the port is part of the host */
	assert_null(authfile_lookup(af, "127.0.0.1", "x"));
	assert_null(authfile_lookup(af, "127.0.0.1:5001", "x"));
	assert_null(authfile_lookup(af, "quay.io.evil", "x"));
	assert_null(authfile_lookup(af, "evil.io", "quay.io"));

	/* legacy Docker key */
	e = authfile_lookup(af, "docker.io", "library/busybox");
	assert_non_null(e);
	assert_string_equal(e->key, "docker.io");
	authfile_free(af);

	af = parse_ok("{}");
	assert_int_equal(af->n, 0);
	assert_null(authfile_lookup(af, "quay.io", "x"));
	authfile_free(af);
	af = parse_ok("{\"auths\": {}}");
	assert_null(authfile_lookup(af, "quay.io", ""));
	authfile_free(af);
	assert_null(authfile_lookup(NULL, "quay.io", "x"));
}

static void test_bad(void **state)
{
	char *big;

	(void)state;
	parse_bad("", "not valid JSON");
	parse_bad("[]", "not a JSON object");
	parse_bad("{\"auths\": []}", "\"auths\" is not an object");
	parse_bad("{\"auths\": {\"a\": {\"auth\": \"" B_ALICE "\"}, \"a\": {}}}", "duplicate key");
	parse_bad("{\"auths\": {\"a\": {\"auth\": \"" B_ALICE "\", \"auth\": \"x\"}}}",
		  "duplicate key");
	/* two spellings of one registry */
	parse_bad("{\"auths\": {\"docker.io\": {}, \"https://index.docker.io/v1/\": {}}}",
		  "given twice");
	parse_bad("{\"auths\": {}, \"credHelpers\": {\"quay.io\": \"x\"}}", "credential helpers");
	parse_bad("{\"credsStore\": \"desktop\"}", "credential helpers");
	parse_bad("{\"auths\": {}, \"other\": 1}", "unknown member");
	parse_bad("{\"auths\": {\"quay.io\": {\"auth\": \"" B_ALICE "\", \"email\": \"x\"}}}",
		  "unknown member");
	parse_bad("{\"auths\": {\"quay.io\": \"" B_ALICE "\"}}", "not an object");
	parse_bad("{\"auths\": {\"quay.io\": {\"auth\": 5}}}", "not a string");
	/* not base64, no ':', empty user, NUL inside */
	parse_bad("{\"auths\": {\"quay.io\": {\"auth\": \"s3cret!!\"}}}", "base64");
	parse_bad("{\"auths\": {\"quay.io\": {\"auth\": \"czNjcmV0\"}}}", "base64");
	parse_bad("{\"auths\": {\"quay.io\": {\"auth\": \"OnMzY3JldA==\"}}}", "base64");
	parse_bad("{\"auths\": {\"quay.io\": {\"auth\": \"YQA6czNjcmV0\"}}}", "base64");
	parse_bad("{\"auths\": {\"quay.io\": {\"identitytoken\": \"SECRETTOKEN\\n\"}}}",
		  "control characters");
	parse_bad("{\"auths\": {\"quay.io\": {\"identitytoken\": \"SECRET\\u0000TOKEN\"}}}",
		  "line 1");
	/* bad keys */
	parse_bad("{\"auths\": {\"\": {}}}", "registry[/repository] key");
	parse_bad("{\"auths\": {\"quay.io/\": {}}}", "registry[/repository] key");
	parse_bad("{\"auths\": {\"quay.io//x\": {}}}", "registry[/repository] key");
	parse_bad("{\"auths\": {\"qu ay.io\": {}}}", "registry[/repository] key");
	parse_bad("{\"auths\": {\"https://\": {}}}", "registry[/repository] key");
	/* JSON errors name the place, not the input */
	parse_bad("{\"auths\": {\"quay.io\": {\"auth\": \"s3cret\" x}}}", "line 1");

	big = malloc(AUTHFILE_MAX_SIZE + 2);
	assert_non_null(big);
	memset(big, ' ', AUTHFILE_MAX_SIZE + 1);
	big[0] = '{';
	big[AUTHFILE_MAX_SIZE] = '}';
	big[AUTHFILE_MAX_SIZE + 1] = '\0';
	parse_bad(big, "larger than");
	free(big);
}

static void test_too_many(void **state)
{
	size_t cap = (AUTHFILE_MAX_ENTRIES + 2) * 32 + 64, n = 0;
	char *s = malloc(cap);

	(void)state;
	assert_non_null(s);
	n += (size_t)snprintf(s + n, cap - n, "{\"auths\": {");
	for (unsigned i = 0; i <= AUTHFILE_MAX_ENTRIES; i++)
		n += (size_t)snprintf(s + n, cap - n, "%s\"h%u.io\": {}", i ? "," : "", i);
	snprintf(s + n, cap - n, "}}");
	parse_bad(s, "more than");
	free(s);
}

static void write_file(const char *path, const char *text)
{
	char tmp[512];
	FILE *f;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0);
}

static void test_cache_reload(void **state)
{
	char dir[] = "/tmp/crisp-authfile-XXXXXX", path[256];
	struct authfile_cache c;
	const struct authfile *af;
	const struct authfile_entry *e;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	memset(&c, 0, sizeof c);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/auth.json", dir);

	/* absent: no credentials, not an error */
	assert_int_equal(authfile_cache_set(&c, path, &err), 0);
	assert_int_equal(authfile_cache_get(&c, &af, &err), 0);
	assert_null(af);

	write_file(path, "{\"auths\": {\"quay.io\": {\"auth\": \"" B_USERPASS "\"}}}");
	assert_int_equal(authfile_cache_get(&c, &af, &err), 0);
	assert_non_null(af);
	e = authfile_lookup(af, "quay.io", "x");
	assert_non_null(e);
	assert_string_equal(e->username, "user");

	/* changed (a new inode): re-read */
	write_file(path, "{\"auths\": {\"quay.io\": {\"auth\": \"" B_BOB "\"}}}");
	assert_int_equal(authfile_cache_get(&c, &af, &err), 0);
	e = authfile_lookup(af, "quay.io", "x");
	assert_non_null(e);
	assert_string_equal(e->username, "bob");

	/* broken now: an error, and the old credentials are gone */
	write_file(path, "{\"auths\": {\"quay.io\": {\"auth\": \"" B_ALICE "\"},}}");
	assert_int_equal(authfile_cache_get(&c, &af, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	assert_non_null(strstr(err.msg, path));
	assert_null(strstr(err.msg, B_ALICE));
	crisp_error_clear(&err);
	assert_int_equal(authfile_cache_get(&c, &af, &err), -1);
	crisp_error_clear(&err);

	/* fixed again */
	write_file(path, "{\"auths\": {\"quay.io\": {\"auth\": \"" B_ALICE "\"}}}");
	assert_int_equal(authfile_cache_get(&c, &af, &err), 0);
	assert_string_equal(authfile_lookup(af, "quay.io", "x")->username, "alice");

	/* removed: no credentials */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(authfile_cache_get(&c, &af, &err), 0);
	assert_null(af);

	/* a directory is not a file; set() refuses and keeps the old state */
	assert_int_equal(authfile_cache_set(&c, dir, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	assert_string_equal(c.path, path);
	crisp_error_clear(&err);

	/* none configured */
	assert_int_equal(authfile_cache_set(&c, "", &err), 0);
	assert_int_equal(authfile_cache_get(&c, &af, &err), 0);
	assert_null(af);
	authfile_cache_clear(&c);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_lookup),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_cache_reload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
