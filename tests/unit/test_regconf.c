/* registries.conf: the strict TOML subset, prefixes, mirrors, insecure, blocked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imaged/regconf.h"

static struct regconf *parse_ok(const char *text)
{
	struct regconf *c = NULL;
	crisp_err_t err = CRISP_ERR_INIT;

	if (regconf_parse(text, strlen(text), &c, &err) != 0)
		fail_msg("did not parse: %s\n%s", err.msg, text);
	return c;
}

static void parse_bad(const char *text, const char *want)
{
	struct regconf *c = NULL;
	crisp_err_t err = CRISP_ERR_INIT;

	if (regconf_parse(text, strlen(text), &c, &err) == 0) {
		regconf_free(c);
		fail_msg("parsed, expected an error:\n%s", text);
	}
	assert_null(c);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	if (want && !strstr(err.msg, want))
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
}

static void test_full(void **state)
{
	(void)state;
	struct regconf *c = parse_ok(
		"# a comment\n"
		"unqualified-search-registries = [\n"
		"  \"quay.io\", # trailing comment\n"
		"  'docker.io',\n"
		"]\n"
		"short-name-mode = \"enforcing\"\n"
		"\n"
		"[[registry]]\n"
		"prefix = \"registry.k8s.io\"\n"
		"location = \"127.0.0.1:5000\"\n"
		"insecure = true\n"
		"\n"
		"[[registry]]   # another\n"
		"location = \"gcr.io\"\n"
		"mirror-by-digest-only = false\n"
		"[[registry.mirror]]\n"
		"location = \"mirror.example:5000/gcr\"\n"
		"insecure = true\n"
		"[[registry.mirror]]\n"
		"location = \"m2.example\"\n"
		"pull-from-mirror = \"all\"\n"
		"\n"
		"[[registry]]\n"
		"prefix = \"*.blocked.example\"\n"
		"blocked = true\n"
		"[aliases]\n"
		"\"busybox\" = \"docker.io/library/busybox\"\n");

	assert_string_equal(c->search, "quay.io");
	assert_int_equal(c->nregs, 3);
	assert_string_equal(c->regs[0].prefix, "registry.k8s.io");
	assert_string_equal(c->regs[0].location, "127.0.0.1:5000");
	assert_true(c->regs[0].insecure);
	assert_string_equal(c->regs[1].prefix, "gcr.io");
	assert_int_equal(c->regs[1].nmirrors, 2);
	assert_true(c->regs[1].mirrors[0].insecure);
	assert_false(c->regs[1].mirrors[1].insecure);
	assert_true(c->regs[2].blocked);
	regconf_free(c);
}

static void test_bad(void **state)
{
	(void)state;
	parse_bad("bogus = 1\n", "line 1: unknown key bogus");
	parse_bad("[[registry]]\nlocation = \"x.io\"\nbogus = true\n", "line 3");
	parse_bad("[[registry]]\nlocation = \"x.io\"\nlocation = \"y.io\"\n", "duplicate key");
	parse_bad("[[registry]]\ninsecure = yes\n", "true or false");
	parse_bad("[[registry]]\ninsecure = true\n", "needs a prefix or a location");
	parse_bad("[[registry.mirror]]\nlocation = \"m.io\"\n", "before any [[registry]]");
	parse_bad("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = true\n",
		  "without a location");
	parse_bad("[[registry]]\nlocation = \"a.io\"\n[[registry]]\nlocation = \"a.io\"\n",
		  "two [[registry]] entries");
	parse_bad("[[registry]]\nlocation = \"http://a.io\"\n", "location");
	parse_bad("[[registry]]\nlocation = \"a.io/UPPER\"\n", "location");
	parse_bad("[[registry]]\nprefix = \"*.a.io\"\nlocation = \"b.io\"\n", "cannot have a location");
	parse_bad("[registry]\n", "unknown table");
	parse_bad("[[registry]\n", "unterminated");
	parse_bad("[[registry]]\nlocation = \"a.io\n", "unterminated string");
	parse_bad("[[registry]]\nlocation = \"a.io\" junk\n", "after a value");
	parse_bad("[[registry]]\nlocation = \"a\\q.io\"\n", "escape");
	parse_bad("unqualified-search-registries = [\"a.io\" \"b.io\"]\n", "',' or ']'");
	parse_bad("unqualified-search-registries = []\nunqualified-search-registries = []\n",
		  "duplicate");
	{
		struct regconf *c = NULL;
		crisp_err_t err = CRISP_ERR_INIT;
		assert_int_equal(regconf_parse("x\0y", 3, &c, &err), -1);
		assert_non_null(strstr(err.msg, "NUL"));
	}
	{
		struct regconf *c = NULL;
		crisp_err_t err = CRISP_ERR_INIT;
		char *big = calloc(1, REGCONF_MAX_FILE + 2);
		memset(big, '#', REGCONF_MAX_FILE + 1);
		assert_int_equal(regconf_parse(big, REGCONF_MAX_FILE + 1, &c, &err), -1);
		free(big);
	}
}

static void test_sources(void **state)
{
	(void)state;
	struct regconf *c = parse_ok("[[registry]]\n"
				     "prefix = \"registry.k8s.io\"\n"
				     "location = \"127.0.0.1:5000\"\n"
				     "insecure = true\n"
				     "[[registry]]\n"
				     "prefix = \"example.com/team\"\n"
				     "location = \"internal.example/mirror/team\"\n"
				     "[[registry.mirror]]\n"
				     "location = \"m1.example:5000/x\"\n"
				     "insecure = true\n"
				     "[[registry]]\n"
				     "location = \"digest.example\"\n"
				     "mirror-by-digest-only = true\n"
				     "[[registry.mirror]]\n"
				     "location = \"dm.example\"\n"
				     "[[registry]]\n"
				     "prefix = \"*.blocked.example\"\n"
				     "blocked = true\n");
	struct regconf_source s[REGCONF_MAX_MIRRORS + 1];
	crisp_err_t err = CRISP_ERR_INIT;
	size_t n;

	assert_int_equal(regconf_sources(c, "registry.k8s.io/pause", false, s, 17, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(s[0].host, "127.0.0.1:5000");
	assert_string_equal(s[0].repo, "pause");
	assert_true(s[0].insecure);

	/* a longer name that only shares characters does not match */
	assert_int_equal(regconf_sources(c, "registry.k8s.iox/pause", false, s, 17, &n, &err), 0);
	assert_string_equal(s[0].host, "registry.k8s.iox");
	assert_false(s[0].insecure);

	assert_int_equal(regconf_sources(c, "example.com/team/app", false, s, 17, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(s[0].host, "m1.example:5000");
	assert_string_equal(s[0].repo, "x/app");
	assert_true(s[0].insecure && s[0].mirror);
	assert_string_equal(s[1].host, "internal.example");
	assert_string_equal(s[1].repo, "mirror/team/app");
	assert_false(s[1].insecure);

	/* mirror-by-digest-only */
	assert_int_equal(regconf_sources(c, "digest.example/a", false, s, 17, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(regconf_sources(c, "digest.example/a", true, s, 17, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(s[0].host, "dm.example");

	/* blocked by wildcard */
	assert_int_equal(regconf_sources(c, "x.blocked.example/a", false, s, 17, &n, &err), -1);
	assert_int_equal(err.code, CRISP_PERMISSION_DENIED);

	/* not configured: https to the name's own host; docker.io's real host */
	assert_int_equal(regconf_sources(c, "127.0.0.1:5001/x", false, s, 17, &n, &err), 0);
	assert_false(s[0].insecure);
	assert_int_equal(regconf_sources(NULL, "docker.io/library/busybox", false, s, 17, &n, &err), 0);
	assert_string_equal(s[0].host, "registry-1.docker.io");
	assert_string_equal(s[0].repo, "library/busybox");
	regconf_free(c);
}

static void test_qualify(void **state)
{
	(void)state;
	struct regconf *c = parse_ok("unqualified-search-registries = [\"quay.io\"]\n");
	char out[2048];
	crisp_err_t err = CRISP_ERR_INIT;

	assert_int_equal(regconf_qualify(c, "busybox", out, sizeof out, &err), 0);
	assert_string_equal(out, "quay.io/busybox");
	assert_int_equal(regconf_qualify(c, "foo/bar:1", out, sizeof out, &err), 0);
	assert_string_equal(out, "quay.io/foo/bar:1");
	assert_int_equal(regconf_qualify(c, "localhost/x", out, sizeof out, &err), 0);
	assert_string_equal(out, "localhost/x");
	assert_int_equal(regconf_qualify(c, "a.io/x", out, sizeof out, &err), 0);
	assert_string_equal(out, "a.io/x");
	assert_int_equal(regconf_qualify(c, "h:5000/x", out, sizeof out, &err), 0);
	assert_string_equal(out, "h:5000/x");
	assert_int_equal(regconf_qualify(NULL, "busybox", out, sizeof out, &err), 0);
	assert_string_equal(out, "busybox"); /* docker.io: dockerref normalises */
	regconf_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_sources),
		cmocka_unit_test(test_qualify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
