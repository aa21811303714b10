/* crispd configuration: schema, layering, errors naming file, line and key. */
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

#include "crispd/config.h"

static void test_defaults(void **state)
{
	struct crisp_config c;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	assert_int_equal(config_defaults(&c, &err), 0);
	assert_string_equal(c.c->root, "/var/lib/crisp");
	assert_string_equal(c.c->runroot, "/run/crisp");
	assert_string_equal(c.c->listen, "/run/crisp/crisp.sock");
	assert_int_equal(c.c->max_recv_msg_size, 16 * 1024 * 1024);
	assert_int_equal(c.c->n_allowed_uids, 1);
	assert_int_equal(c.c->allowed_uids[0], 0);
	assert_int_equal(c.c->n_cni_plugin_dirs, 2);
	assert_string_equal(c.c->cni_plugin_dirs[1], "/usr/lib/cni");
	assert_string_equal(c.frontd_user, "crisp-frontd");
	assert_false(c.sandbox_debug);
	assert_int_equal(c.c->n_runtime_handlers, 0);
	assert_int_equal(config_validate(&c, &err), 0);
	assert_int_equal(config_parse_string(&c, "[execd]\nruntime_handlers = runc=/usr/sbin/runc, kata-2=/opt/k\n",
					     "t.conf", &err), 0);
	assert_int_equal(c.c->n_runtime_handlers, 2);
	assert_string_equal(c.c->runtime_handlers[1], "kata-2=/opt/k");
	config_free(&c);
}

static void expect_error(const char *text, const char *want)
{
	struct crisp_config c;
	crisp_err_t err = CRISP_ERR_INIT;

	assert_int_equal(config_defaults(&c, &err), 0);
	assert_int_equal(config_parse_string(&c, text, "t.conf", &err), -1);
	if (strstr(err.msg, want) == NULL)
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	config_free(&c);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("[crisp]\nnope = 1\n", "t.conf:2: crisp.nope: unknown key");
	expect_error("\n[zzz]\na = b\n", "t.conf:3: zzz.a: unknown section [zzz]");
	expect_error("toplevel = 1\n", "t.conf:1: .toplevel");
	expect_error("[crisp]\nroot = var/lib\n", "t.conf:2: crisp.root: 'var/lib' is not an absolute, clean path");
	expect_error("[crisp]\nroot = /var/../etc\n", "crisp.root");
	expect_error("[crisp]\nroot = /var//lib\n", "crisp.root");
	expect_error("[crisp]\nroot = /var/lib/\n", "crisp.root");
	expect_error("[crisp]\nlog_level = loud\n", "crisp.log_level: 'loud' is not a log level");
	expect_error("[crisp]\nsandbox_debug = maybe\n", "crisp.sandbox_debug");
	expect_error("[frontd]\nmax_streams = 0\n", "frontd.max_streams: '0' is not a whole number from 1");
	expect_error("[frontd]\nmax_streams = -5\n", "frontd.max_streams");
	expect_error("[frontd]\nmax_streams = 99999999999999999999\n", "frontd.max_streams");
	expect_error("[frontd]\nmax_streams = 12x\n", "frontd.max_streams");
	expect_error("[frontd]\nallowed_uids = 0,,1\n", "frontd.allowed_uids");
	expect_error("[frontd]\nallowed_uids = 0, root\n", "'root' is not a uid");
	expect_error("[frontd]\nuser = Root!\n", "frontd.user");
	expect_error("[netd]\ncni_plugin_dirs = /opt/cni/bin, relative\n", "netd.cni_plugin_dirs");
	expect_error("[execd]\nruntime_handlers = runc\n", "execd.runtime_handlers: 'runc' is not name=/absolute/path");
	expect_error("[execd]\nruntime_handlers = runc=usr/sbin/runc\n", "execd.runtime_handlers");
	expect_error("[execd]\nruntime_handlers = Runc=/usr/sbin/runc\n", "execd.runtime_handlers");
	expect_error("[execd]\nruntime_handlers = -x=/usr/sbin/runc\n", "execd.runtime_handlers");
	expect_error("[execd]\nruntime_handlers = =/usr/sbin/runc\n", "execd.runtime_handlers");
	expect_error("[execd]\nruntime_handlers = a=/x, a=/y\n", "execd.runtime_handlers: 'a=/y'");
	expect_error("[crisp\nroot = /x\n", "t.conf:1: syntax error");
	/* A line longer than the parser's line buffer is an error, never split. */
	{
		static char big[20000];
		memset(big, 'a', sizeof big);
		memcpy(big, "[crisp]\nroot = /", 16);
		big[sizeof big - 1] = '\0';
		expect_error(big, "t.conf:2:");
	}
	expect_error("[crisp]\nthis line has no equals\n", "t.conf:2:");
}

static void test_inline_comments(void **state)
{
	struct crisp_config c;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	assert_int_equal(config_defaults(&c, &err), 0);
	assert_int_equal(config_parse_string(&c, "# top\n[crisp]\nroot = /srv/x   # where\nlog_level = warn ; why\n",
					     "t", &err), 0);
	assert_string_equal(c.c->root, "/srv/x");
	assert_int_equal(c.c->log_level, 1);
	config_free(&c);
}

static void test_layering(void **state)
{
	struct crisp_config c;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	assert_int_equal(config_defaults(&c, &err), 0);
	assert_int_equal(config_parse_string(&c, "[frontd]\nmax_streams = 10\nallowed_uids = 0, 1000\n", "a", &err), 0);
	assert_int_equal(config_parse_string(&c, "[frontd]\nmax_streams = 20\n", "b", &err), 0);
	assert_int_equal(c.c->max_streams, 20);
	assert_int_equal(c.c->n_allowed_uids, 2);
	assert_int_equal(c.c->allowed_uids[1], 1000);
	assert_int_equal(config_parse_string(&c, "[imaged]\nuser = crisp-frontd\n", "c", &err), 0);
	assert_int_equal(config_validate(&c, &err), -1);
	assert_non_null(strstr(err.msg, "must differ"));
	config_free(&c);
}

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof p, "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_load_files_and_flags(void **state)
{
	struct crisp_config c;
	struct crisp_flags fl;
	crisp_err_t err = CRISP_ERR_INIT;
	char conf[128], d[160];

	(void)state;
	strcpy(tmpdir, "/tmp/crisp-cfg-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(conf, sizeof conf, "%s/crisp.conf", tmpdir);
	snprintf(d, sizeof d, "%s.d", conf);
	assert_int_equal(mkdir(d, 0700), 0);
	write_file("crisp.conf", "[crisp]\nlog_level = error\n[frontd]\nmax_streams = 5\n");
	write_file("crisp.conf.d/20-b.conf", "[frontd]\nmax_streams = 7\n");
	write_file("crisp.conf.d/10-a.conf", "[frontd]\nmax_streams = 6\nmax_connections = 3\n");
	write_file("crisp.conf.d/ignored.txt", "garbage\n");

	memset(&fl, 0, sizeof fl);
	fl.config = conf;
	fl.config_given = true;
	fl.root = "/srv/crisp";
	assert_int_equal(config_load(&fl, &c, &err), 0);
	assert_int_equal(c.c->max_streams, 7);      /* 20-b after 10-a */
	assert_int_equal(c.c->max_connections, 3);
	assert_int_equal(c.c->log_level, 0);
	assert_string_equal(c.c->root, "/srv/crisp"); /* flag wins */
	config_free(&c);

	fl.log_level = "chatty";
	assert_int_equal(config_load(&fl, &c, &err), -1);
	assert_non_null(strstr(err.msg, "--log-level"));
	fl.log_level = NULL;

	write_file("crisp.conf.d/30-c.conf", "[frontd]\n\nmax_streams = many\n");
	assert_int_equal(config_load(&fl, &c, &err), -1);
	assert_non_null(strstr(err.msg, "30-c.conf:3: frontd.max_streams"));

	/* A missing file is an error only when named explicitly. */
	snprintf(conf, sizeof conf, "%s/none.conf", tmpdir);
	fl.config = conf;
	assert_int_equal(config_load(&fl, &c, &err), -1);
	fl.config_given = false;
	assert_int_equal(config_load(&fl, &c, &err), 0);
	config_free(&c);

	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_layering),
		cmocka_unit_test(test_inline_comments),
		cmocka_unit_test(test_load_files_and_flags),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
