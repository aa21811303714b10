/* registries.d: the YAML subset, merging across files, lookup order. */
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

#include "imaged/regsd.h"

static struct regsd *parse_ok(const char *yaml)
{
	struct regsd *c = regsd_new();
	crisp_err_t err = CRISP_ERR_INIT;
	if (regsd_parse(c, "t.yaml", yaml, strlen(yaml), &err) != 0)
		fail_msg("unexpected error: %s", err.msg);
	return c;
}

static void parse_bad(const char *yaml, const char *needle)
{
	struct regsd *c = regsd_new();
	crisp_err_t err = CRISP_ERR_INIT;
	if (regsd_parse(c, "t.yaml", yaml, strlen(yaml), &err) == 0)
		fail_msg("accepted: %s", yaml);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	if (strstr(err.msg, needle) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
	assert_int_equal(c->n, 0);
	assert_false(c->has_default);
	regsd_free(c);
}

static void test_full(void **state)
{
	(void)state;
	struct regsd *c = parse_ok("---\n"
				   "# registries.d\n"
				   "default-docker:\n"
				   "  lookaside: file:///var/lib/sigs   # trailing comment\n"
				   "  lookaside-staging: file:///tmp/ignored\n"
				   "docker:\n"
				   "    registry.example.com:\n"
				   "        lookaside: 'https://sigs.example.com/it''s'\n"
				   "        use-sigstore-attachments: true\n"
				   "    \"quay.io/ns\":\n"
				   "        sigstore: \"https://legacy.example.com\\/x\"\n"
				   "    quay.io/ns/app:v1:\n"
				   "        use-sigstore-attachments: false\n"
				   "    localhost:5000:\n"
				   "    '*.example.org':\n"
				   "        lookaside: http://wild.example.org\n"
				   "\n");
	assert_true(c->has_default);
	assert_string_equal(c->def.lookaside, "file:///var/lib/sigs");
	assert_int_equal(c->n, 5);
	struct regsd_result r;
	crisp_err_t err = CRISP_ERR_INIT;

	assert_int_equal(regsd_lookup(c, "registry.example.com/a/b:1", &r, &err), 0);
	assert_string_equal(r.lookaside, "https://sigs.example.com/it's");
	assert_string_equal(r.lookaside_from, "registry.example.com");
	assert_true(r.use_attachments);

	/* exact image: attachments off from the image scope, lookaside from the namespace */
	assert_int_equal(regsd_lookup(c, "quay.io/ns/app:v1", &r, &err), 0);
	assert_string_equal(r.lookaside, "https://legacy.example.com/x");
	assert_string_equal(r.lookaside_from, "quay.io/ns");
	assert_false(r.use_attachments);
	assert_string_equal(r.attachments_from, "quay.io/ns/app:v1");

	/* other tag: namespace lookaside, no attachments anywhere */
	assert_int_equal(regsd_lookup(c, "quay.io/ns/app:v2", &r, &err), 0);
	assert_string_equal(r.lookaside_from, "quay.io/ns");
	assert_null(r.attachments_from);
	assert_false(r.use_attachments);

	/* a scope without fields falls through to default-docker */
	assert_int_equal(regsd_lookup(c, "localhost:5000/x", &r, &err), 0);
	assert_string_equal(r.lookaside, "file:///var/lib/sigs");
	assert_string_equal(r.lookaside_from, "");

	/* wildcard */
	assert_int_equal(regsd_lookup(c, "a.b.example.org/x", &r, &err), 0);
	assert_string_equal(r.lookaside, "http://wild.example.org");
	assert_int_equal(regsd_lookup(c, "example.org/x", &r, &err), 0);
	assert_string_equal(r.lookaside_from, "");

	/* normalised: busybox is docker.io/library/busybox:latest */
	assert_int_equal(regsd_lookup(c, "busybox", &r, &err), 0);
	assert_string_equal(r.lookaside_from, "");
	assert_int_equal(regsd_lookup(c, "Not A Ref", &r, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	regsd_free(c);
}

static void test_bom_crlf(void **state)
{
	(void)state;
	struct regsd *c = parse_ok("\xef\xbb\xbf# windows editor\r\ndocker:\r\n  x.io:\r\n    lookaside: file:///a\r\n");
	struct regsd_result r;
	crisp_err_t err = CRISP_ERR_INIT;
	assert_int_equal(regsd_lookup(c, "x.io/y", &r, &err), 0);
	assert_string_equal(r.lookaside, "file:///a");
	regsd_free(c);
	static const char nul[] = "docker:\n  x.io:\n\0";
	c = regsd_new();
	assert_int_equal(regsd_parse(c, "t.yaml", nul, sizeof nul - 1, &err), -1);
	assert_non_null(strstr(err.msg, "NUL"));
	regsd_free(c);
}

static void test_empty(void **state)
{
	(void)state;
	struct regsd *c = parse_ok("# nothing\n\ndocker:\ndefault-docker:\n");
	struct regsd_result r;
	crisp_err_t err = CRISP_ERR_INIT;
	assert_int_equal(regsd_lookup(c, "quay.io/x/y", &r, &err), 0);
	assert_null(r.lookaside);
	assert_false(r.use_attachments);
	regsd_free(c);
}

static void test_refused(void **state)
{
	(void)state;
	parse_bad("docker:\n\tx.io:\n", "t.yaml:2: tab");
	parse_bad("docker: &a\n", "anchors");
	parse_bad("docker:\n  x.io: *a\n", "aliases");
	parse_bad("docker: !!map\n", "tags");
	parse_bad("docker: {}\n", "flow");
	parse_bad("docker:\n  x.io: [a]\n", "flow");
	parse_bad("docker:\n  - x.io\n", "sequences");
	parse_bad("default-docker:\n  lookaside: |\n    file:///x\n", "block scalars");
	parse_bad("%YAML 1.2\n---\ndocker:\n", "directives");
	parse_bad("docker:\n---\ndocker:\n", "t.yaml:2: more than one YAML document");
	parse_bad("docker:\n...\n", "more than one");
	parse_bad("docker:\ndocker:\n", "t.yaml:2: duplicate key");
	parse_bad("default-docker:\n  lookaside: file:///a\n  lookaside: file:///b\n", "t.yaml:3: duplicate key");
	parse_bad("docker:\n  x.io:\n  x.io:\n", "t.yaml:3: docker scope \"x.io\" defined twice (line 2)");
	parse_bad("docker:\n  'x.io':\n  \"x.io\":\n", "defined twice");
	parse_bad("default-docker:\n  lookside: file:///a\n", "unknown key \"lookside\"");
	parse_bad("registries:\n", "unknown key");
	parse_bad("default-docker:\n  lookaside: file:///a\n  sigstore: file:///b\n", "both");
	parse_bad("default-docker:\n  lookaside: ftp://x\n", "lookaside:");
	parse_bad("default-docker:\n  lookaside: file:///a?b\n", "lookaside:");
	parse_bad("default-docker:\n  use-sigstore-attachments: yes\n", "boolean expected");
	parse_bad("default-docker:\n  use-sigstore-attachments: \"true\"\n", "boolean expected");
	parse_bad("docker:\n  busybox:\n", "fully expanded");
	parse_bad("docker:\n  docker.io/library/busybox:latest@sha256:"
		  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef:\n",
		  "both a tag and a digest");
	parse_bad("docker:\n  docker.io/Library:\n", "invalid repository path");
	parse_bad("docker:\n  index.docker.io/x:\n", "index.docker.io");
	parse_bad("docker:\n  x.*.io:\n", "'*'");
	parse_bad("docker:\n x.io:\n", "at least two spaces");
	parse_bad("docker:\n  x.io:\n     lookaside: file:///a\n    use-sigstore-attachments: true\n",
		  "t.yaml:4: indentation matches no");
	parse_bad("default-docker:\n  lookaside: file:///a\n    sigstore: file:///b\n", "unexpected indentation");
	parse_bad("  docker:\n", "unexpected indentation");
	parse_bad("docker:\n  x.io:\n    lookaside:\n      deeper: 1\n", "t.yaml:4: unexpected indentation");
	parse_bad("docker: x\n", "a mapping is expected");
	parse_bad("docker: ~\n  x.io:\n", "t.yaml:2: unexpected indentation");
	parse_bad("docker:\n  x.io: null\n    lookaside: file:///a\n", "t.yaml:3: unexpected indentation");
	parse_bad("docker:x\n", "\"key: value\" expected");
	parse_bad("'docker':x\n", "space must follow");
	parse_bad("docker\n", "\"key: value\" expected");
	parse_bad("default-docker:\n  lookaside: 'file:///a\n", "unterminated");
	parse_bad("default-docker:\n  lookaside: \"file:///\\x41\"\n", "unsupported escape");
	parse_bad("default-docker:\n  lookaside: 'file:///a' junk\n", "unexpected text");
	parse_bad("default-docker:\n  lookaside: file:///a b: c\n", "quote it");
	parse_bad("docker:\n  x.io:\n    lookaside: \"file:///a\x01\"\n", "control character");
	parse_bad("docker:\n  x.io:\n    lookaside: file:///a\x01\n", "control character");
}

static void write_file(const char *dir, const char *name, const char *content)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void test_dir(void **state)
{
	(void)state;
	char dir[] = "/tmp/crisp-regsd-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct regsd *c = NULL;
	crisp_err_t err = CRISP_ERR_INIT;
	struct regsd_result r;

	write_file(dir, "10-a.yaml", "docker:\n  quay.io:\n    lookaside: file:///a\n");
	write_file(dir, "20-b.yaml", "default-docker:\n  lookaside: file:///def\n"
				     "docker:\n  quay.io/ns:\n    lookaside: file:///b\n");
	write_file(dir, "30-c.yml", "this is not yaml {\n"); /* not *.yaml: ignored */
	write_file(dir, "notes.txt", "ignored\n");
	assert_int_equal(regsd_load_dir(dir, &c, &err), 0);
	assert_int_equal(c->n, 2);
	assert_int_equal(regsd_lookup(c, "quay.io/ns/x", &r, &err), 0);
	assert_string_equal(r.lookaside, "file:///b");
	assert_int_equal(regsd_lookup(c, "quay.io/other/x", &r, &err), 0);
	assert_string_equal(r.lookaside, "file:///a");
	assert_int_equal(regsd_lookup(c, "ghcr.io/x", &r, &err), 0);
	assert_string_equal(r.lookaside, "file:///def");
	regsd_free(c);

	/* a scope in two files: error naming both */
	write_file(dir, "40-d.yaml", "docker:\n  quay.io:\n    lookaside: file:///d\n");
	assert_int_equal(regsd_load_dir(dir, &c, &err), -1);
	assert_null(c);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "10-a.yaml"));
	assert_non_null(strstr(err.msg, "40-d.yaml"));
	write_file(dir, "40-d.yaml", "default-docker:\n  lookaside: file:///d\n");
	assert_int_equal(regsd_load_dir(dir, &c, &err), -1);
	assert_non_null(strstr(err.msg, "\"default-docker\" defined both"));
	write_file(dir, "40-d.yaml", "docker:\n  quay.io: x\n");
	assert_int_equal(regsd_load_dir(dir, &c, &err), -1);
	assert_non_null(strstr(err.msg, "40-d.yaml:2:"));
	char path[512];
	snprintf(path, sizeof path, "%s/40-d.yaml", dir);
	unlink(path);
	assert_int_equal(mkdir(path, 0700), 0); /* a directory named *.yaml */
	assert_int_equal(regsd_load_dir(dir, &c, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	rmdir(path);

	/* missing directory: empty configuration */
	assert_int_equal(regsd_load_dir("/nonexistent/crisp-regsd", &c, &err), 0);
	assert_int_equal(c->n, 0);
	regsd_free(c);

	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* Deterministic mutations of a valid file: never a crash, and either an
 * error with a line number or a consistent configuration. */
static void test_mutations(void **state)
{
	(void)state;
	static const char base[] = "default-docker:\n  lookaside: file:///var/lib/sigs\n"
				   "docker:\n  quay.io/ns:\n    sigstore: 'https://s.example.com'\n"
				   "    use-sigstore-attachments: true\n";
	char buf[sizeof base];
	static const char bytes[] = { ' ', '\t', ':', '#', '\'', '"', '-', '{', '&', '\n', 'x', '\0' };
	for (size_t i = 0; i < sizeof base - 1; i++) {
		for (size_t b = 0; b < sizeof bytes; b++) {
			memcpy(buf, base, sizeof base);
			buf[i] = bytes[b];
			struct regsd *c = regsd_new();
			crisp_err_t err = CRISP_ERR_INIT;
			if (regsd_parse(c, "m.yaml", buf, sizeof base - 1, &err) != 0) {
				assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
				assert_non_null(strstr(err.msg, "m.yaml"));
			}
			regsd_free(c);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),     cmocka_unit_test(test_bom_crlf),  cmocka_unit_test(test_empty),     cmocka_unit_test(test_refused),
		cmocka_unit_test(test_dir),      cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
