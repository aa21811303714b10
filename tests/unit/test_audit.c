/* Audit log: chain continuation across opens, detection of edited,
 * removed, reordered and truncated records, torn-tail recovery, and the
 * crispd --verify-audit command. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
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

#include "imaged/audit.h"

static char T[64];
static char P[128];

static int setup(void **state)
{
	(void)state;
	snprintf(T, sizeof T, "/tmp/crisp-audit-XXXXXX");
	if (mkdtemp(T) == NULL)
		return -1;
	snprintf(P, sizeof P, "%s/audit.log", T);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", T);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_n(const char *path, int n, int first)
{
	struct audit_log *log;
	crisp_err_t err = CRISP_ERR_INIT;
	if (audit_open(path, &log, &err) != 0)
		fail_msg("open: %s", err.msg);
	for (int i = 0; i < n; i++) {
		char pod[32];
		snprintf(pod, sizeof pod, "pod-%d", first + i);
		struct audit_record r = {
			.event = i % 2 ? "create" : "pull",
			.allow = i % 3 != 0,
			.namespace_ = "default",
			.pod = pod,
			.reference = "quay.io/ns/app:v1",
			.manifest_digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			.scope = "transports.docker[\"quay.io\"]",
			.requirement = "transports.docker[\"quay.io\"][0] sigstoreSigned",
			.key_fingerprint = i % 3 ? "ab12" : NULL,
			.reason = i % 3 ? NULL : "no valid sigstore signature",
		};
		if (audit_write(log, &r, &err) != 0)
			fail_msg("write: %s", err.msg);
	}
	audit_close(log);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *b = malloc(1 << 20);
	*len = fread(b, 1, 1 << 20, f);
	b[*len] = '\0';
	fclose(f);
	return b;
}

static void spit(const char *path, const char *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	fclose(f);
}

/* Line k (1-based) of b: start offset and length including "\n". */
static void line_at(const char *b, int k, size_t *off, size_t *len)
{
	const char *p = b;
	for (int i = 1; i < k; i++)
		p = strchr(p, '\n') + 1;
	*off = (size_t)(p - b);
	*len = (size_t)(strchr(p, '\n') + 1 - p);
}

static struct audit_verify_result check(const char *path, int want_rc)
{
	struct audit_verify_result r;
	crisp_err_t err = CRISP_ERR_INIT;
	int rc = audit_verify(path, &r, &err);
	if (rc != want_rc)
		fail_msg("verify %s: rc %d (want %d), line %llu: %s %s", path, rc, want_rc,
			 (unsigned long long)r.bad_line, r.reason, err.msg);
	return r;
}

static void fresh(const char *name, int n)
{
	snprintf(P, sizeof P, "%s/%s", T, name);
	unlink(P);
	write_n(P, n, 0);
}

static void test_chain(void **state)
{
	(void)state;
	fresh("chain.log", 5);
	write_n(P, 3, 5); /* reopen: continues */
	struct audit_verify_result r = check(P, 0);
	assert_int_equal(r.records, 8);
	assert_int_equal(r.recovered, 0);
	assert_int_equal(strlen(r.head), 64);

	size_t len;
	char *b = slurp(P, &len);
	assert_non_null(strstr(b, "\"seq\":8,"));
	assert_non_null(strstr(b, "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"}\n"));
	assert_non_null(strstr(b, "\"key_fingerprint\":null"));
	assert_non_null(strstr(b, "{\"ts\":\""));
	free(b);
	struct stat st;
	assert_int_equal(stat(P, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	struct audit_log *log;
	crisp_err_t err = CRISP_ERR_INIT;
	assert_int_equal(audit_open(P, &log, &err), 0);
	assert_int_equal(audit_seq(log), 8);
	struct audit_record bad = { .event = "delete" };
	assert_int_equal(audit_write(log, &bad, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	/* hostile strings stay one line of printable ASCII */
	struct audit_record weird = { .event = "pull", .pod = "a\nb\"c\x01\xc3\xa9", .reason = "x\ty" };
	assert_int_equal(audit_write(log, &weird, &err), 0);
	audit_close(log);
	b = slurp(P, &len);
	assert_non_null(strstr(b, "\"pod\":\"a?b\\\"c???\""));
	assert_non_null(strstr(b, "\"reason\":\"x?y\""));
	free(b);
	assert_int_equal(check(P, 0).records, 9);
}

static void test_tamper(void **state)
{
	(void)state;
	size_t len, off, ll, off2, ll2;
	char *b;
	struct audit_verify_result r;

	/* edit one byte of line 3 (its pod name): line 4's prev no longer matches */
	fresh("edit.log", 6);
	b = slurp(P, &len);
	line_at(b, 3, &off, &ll);
	char *pod = strstr(b + off, "pod-2");
	assert_non_null(pod);
	pod[4] = '9';
	spit(P, b, len);
	r = check(P, 1);
	assert_int_equal(r.bad_line, 3);
	free(b);

	/* edit the decision of line 2 */
	fresh("edit2.log", 6);
	b = slurp(P, &len);
	line_at(b, 2, &off, &ll);
	char *d = strstr(b + off, "\"decision\":\"allow\"");
	assert_true(d != NULL && d < b + off + ll);
	memcpy(d + 12, "deny\" ", 6); /* "allow" -> "deny" + space: still JSON */
	spit(P, b, len);
	assert_int_equal(check(P, 1).bad_line, 2);
	free(b);

	/* remove line 3 */
	fresh("remove.log", 6);
	b = slurp(P, &len);
	line_at(b, 3, &off, &ll);
	memmove(b + off, b + off + ll, len - off - ll);
	spit(P, b, len - ll);
	r = check(P, 1);
	assert_int_equal(r.bad_line, 3);
	assert_non_null(strstr(r.reason, "sequence 4 where 3"));
	free(b);

	/* remove the first line */
	fresh("remove1.log", 3);
	b = slurp(P, &len);
	line_at(b, 1, &off, &ll);
	spit(P, b + ll, len - ll);
	assert_int_equal(check(P, 1).bad_line, 1);
	free(b);

	/* swap lines 2 and 3 */
	fresh("reorder.log", 5);
	b = slurp(P, &len);
	line_at(b, 2, &off, &ll);
	line_at(b, 3, &off2, &ll2);
	char *sw = malloc(len);
	memcpy(sw, b, off);
	memcpy(sw + off, b + off2, ll2);
	memcpy(sw + off + ll2, b + off, ll);
	memcpy(sw + off + ll2 + ll, b + off2 + ll2, len - off2 - ll2);
	spit(P, sw, len);
	assert_int_equal(check(P, 1).bad_line, 2);
	free(sw);
	free(b);

	/* rewrite a seq and renumber nothing else */
	fresh("seq.log", 4);
	b = slurp(P, &len);
	char *s3 = strstr(b, "\"seq\":3,");
	s3[6] = '7';
	spit(P, b, len);
	assert_int_equal(check(P, 1).bad_line, 3);
	free(b);

	/* truncated inside the last line */
	fresh("trunc.log", 4);
	b = slurp(P, &len);
	spit(P, b, len - 10);
	r = check(P, 1);
	assert_int_equal(r.bad_line, 4);
	assert_non_null(strstr(r.reason, "truncated"));
	free(b);

	/* a forged line inserted in the middle (copy of line 2) */
	fresh("insert.log", 4);
	b = slurp(P, &len);
	line_at(b, 2, &off, &ll);
	char *ins = malloc(len + ll);
	memcpy(ins, b, off + ll);
	memcpy(ins + off + ll, b + off, ll);
	memcpy(ins + off + 2 * ll, b + off + ll, len - off - ll);
	spit(P, ins, len + ll);
	assert_int_equal(check(P, 1).bad_line, 3);
	free(ins);
	free(b);

	/* garbage line in the middle */
	fresh("garbage.log", 4);
	b = slurp(P, &len);
	line_at(b, 2, &off, &ll);
	memset(b + off, 'x', ll - 1);
	spit(P, b, len);
	assert_int_equal(check(P, 1).bad_line, 2);
	free(b);

	/* an enormous line: refused without reading it into memory */
	fresh("huge.log", 2);
	FILE *hf = fopen(P, "a");
	for (int i = 0; i < 100000; i++)
		fputc('x', hf);
	fputc('\n', hf);
	fclose(hf);
	r = check(P, 1);
	assert_int_equal(r.bad_line, 3);
	assert_non_null(strstr(r.reason, "longer than"));
	struct audit_log *hl;
	crisp_err_t herr = CRISP_ERR_INIT;
	assert_int_equal(audit_open(P, &hl, &herr), -1);
	assert_int_equal(herr.code, CRISP_DATA_LOSS);

	/* limit: removing whole trailing records is not detectable from the file,
	 * but the head changes (that is what off-node copies compare) */
	fresh("tail.log", 4);
	char head[80];
	strcpy(head, check(P, 0).head);
	b = slurp(P, &len);
	line_at(b, 4, &off, &ll);
	spit(P, b, off);
	r = check(P, 0);
	assert_int_equal(r.records, 3);
	assert_string_not_equal(r.head, head);
	free(b);
}

static void test_torn(void **state)
{
	(void)state;
	size_t len;
	char *b;

	/* crash mid-write: the last line has no newline */
	fresh("torn.log", 4);
	b = slurp(P, &len);
	spit(P, b, len - 25);
	free(b);
	check(P, 1);
	write_n(P, 2, 10); /* open notes the damage, then writes */
	struct audit_verify_result r = check(P, 0);
	assert_int_equal(r.records, 3 + 1 + 2);
	assert_int_equal(r.recovered, 1);
	b = slurp(P, &len);
	assert_non_null(strstr(b, "\"event\":\"recover\",\"decision\":\"note\""));
	assert_non_null(strstr(b, "no newline"));
	free(b);

	/* open alone (no record written) already notes it */
	fresh("torn2.log", 2);
	b = slurp(P, &len);
	spit(P, b, len - 1); /* only the newline is missing */
	free(b);
	struct audit_log *log;
	crisp_err_t err = CRISP_ERR_INIT;
	assert_int_equal(audit_open(P, &log, &err), 0);
	assert_int_equal(audit_seq(log), 2); /* a whole record: just terminated */
	audit_close(log);
	r = check(P, 0);
	assert_int_equal(r.records, 2);
	assert_int_equal(r.recovered, 0);

	/* a complete last line that is not a record */
	fresh("junk.log", 2);
	FILE *f = fopen(P, "a");
	fputs("not a record\n", f);
	fclose(f);
	write_n(P, 1, 0);
	r = check(P, 0);
	assert_int_equal(r.records, 4);
	assert_int_equal(r.recovered, 1);

	/* two damaged lines in a row: refused, nothing appended */
	fresh("junk2.log", 2);
	f = fopen(P, "a");
	fputs("junk\nmore junk\n", f);
	fclose(f);
	struct stat st1, st2;
	stat(P, &st1);
	assert_int_equal(audit_open(P, &log, &err), -1);
	assert_int_equal(err.code, CRISP_DATA_LOSS);
	stat(P, &st2);
	assert_int_equal(st1.st_size, st2.st_size);

	/* a damaged line followed by an ordinary record: bad at the damaged line */
	fresh("junk3.log", 2);
	b = slurp(P, &len);
	size_t off, ll;
	line_at(b, 1, &off, &ll);
	b[5] = '#';
	spit(P, b, len);
	free(b);
	assert_int_equal(check(P, 1).bad_line, 1);

	/* not a regular file; a symlink is not followed */
	assert_int_equal(audit_open(T, &log, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	char ln[160];
	snprintf(ln, sizeof ln, "%s/link.log", T);
	assert_int_equal(symlink(P, ln), 0);
	assert_int_equal(audit_open(ln, &log, &err), -1);
}

/* crispd --verify-audit, when the binary is built beside the tests. */
static void test_cli(void **state)
{
	(void)state;
	char self[PATH_MAX], crispd[PATH_MAX + 32], cmd[PATH_MAX * 2], out[512];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	assert_true(n > 0);
	self[n] = '\0';
	snprintf(crispd, sizeof crispd, "%s/../bin/crispd", dirname(self));
	if (access(crispd, X_OK) != 0)
		fail_msg("%s not built: build the whole tree (make) before the unit tests", crispd);
	fresh("cli.log", 3);
	snprintf(cmd, sizeof cmd, "%s --verify-audit %s", crispd, P);
	FILE *p = popen(cmd, "r");
	assert_non_null(fgets(out, sizeof out, p));
	assert_int_equal(WEXITSTATUS(pclose(p)), 0);
	assert_string_equal(out, "ok: 3 records\n");

	size_t len, off, ll;
	char *b = slurp(P, &len);
	line_at(b, 2, &off, &ll);
	memmove(b + off, b + off + ll, len - off - ll);
	spit(P, b, len - ll);
	free(b);
	p = popen(cmd, "r");
	assert_non_null(fgets(out, sizeof out, p));
	assert_int_equal(WEXITSTATUS(pclose(p)), 1);
	assert_non_null(strstr(out, "bad record at line 2: "));

	snprintf(cmd, sizeof cmd, "%s --verify-audit %s/missing 2>/dev/null", crispd, T);
	assert_int_equal(WEXITSTATUS(system(cmd)), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_torn),
		cmocka_unit_test(test_cli),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
