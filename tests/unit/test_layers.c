/*
 * execd/layers: holds, release marks, lowerdir paths and crash recovery,
 * on a real directory (the unpack path itself runs end to end in
 * tests/e2e/test_images.py).
 */
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

#include "execd/execd.h"
#include "execd/layers.h"
#include "ipc/loop.h"

#define A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define C "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

struct fx {
	char root[64];
	char path[96];
	struct execd x;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	crisp_err_t err = CRISP_ERR_INIT;

	strcpy(f->root, "/tmp/crisp-layers-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->path, sizeof f->path, "%s/layers", f->root);
	f->x.args.root = f->root;
	f->x.role.loop = loop_new();
	if (layers_init(&f->x, &err) < 0)
		fail_msg("init: %s", err.msg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	layers_close(&f->x);
	loop_free(f->x.role.loop);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* A restart of execd: init, then the containers' record (want) is
 * reconciled, as ctr_life.c's recovery does. */
static void reopen_with(struct fx *f, const struct layers_holder *want, size_t n)
{
	crisp_err_t err = CRISP_ERR_INIT;

	layers_close(&f->x);
	assert_null(f->x.layers);
	if (layers_init(&f->x, &err) < 0)
		fail_msg("init: %s", err.msg);
	if (layers_reconcile(&f->x, want, n, &err) < 0)
		fail_msg("reconcile: %s", err.msg);
}

static void mk(struct fx *f, const char *rel)
{
	char p[512];

	snprintf(p, sizeof p, "%s/%s", f->path, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void touch(struct fx *f, const char *rel)
{
	char p[512];
	FILE *fp;

	snprintf(p, sizeof p, "%s/%s", f->path, rel);
	fp = fopen(p, "w");
	assert_non_null(fp);
	fclose(fp);
}

static bool there(struct fx *f, const char *rel)
{
	char p[512];
	struct stat sb;

	snprintf(p, sizeof p, "%s/%s", f->path, rel);
	return lstat(p, &sb) == 0;
}

static void test_layout_and_paths(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	struct stat sb;
	char p[LAYERS_PATH_SIZE], want[1024];
	char *lower = NULL;
	const char *chain[] = { A, B };

	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	assert_true(there(f, ".holds") && there(f, ".released"));

	assert_false(layers_present(&f->x, A));
	assert_int_equal(layers_path(&f->x, A, p, sizeof p, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_int_equal(layers_path(&f->x, "sha256:../../etc", p, sizeof p, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);

	mk(f, A + 7);
	mk(f, B + 7);
	assert_true(layers_present(&f->x, A));
	assert_int_equal(layers_path(&f->x, A, p, sizeof p, &err), 0);
	snprintf(want, sizeof want, "%s/%s", f->path, A + 7);
	assert_string_equal(p, want);
	/* lowerdir: top first */
	assert_int_equal(layers_lowerdir(&f->x, chain, 2, &lower, &err), 0);
	snprintf(want, sizeof want, "%s/%s:%s/%s", f->path, B + 7, f->path, A + 7);
	assert_string_equal(lower, want);
	free(lower);
	{
		const char *missing[] = { A, C };
		assert_int_equal(layers_lowerdir(&f->x, missing, 2, &lower, &err), -1);
		assert_int_equal(err.code, CRISP_NOT_FOUND);
		assert_null(lower);
	}
	assert_int_equal(layers_lowerdir(&f->x, chain, 0, &lower, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(layers_unpacking(&f->x), 0);
}

static void test_holds_and_release(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	const char *ab[] = { A, B }, *a[] = { A }, *ac[] = { A, C };

	mk(f, A + 7);
	mk(f, B + 7);
	/* holding needs every layer present; nothing is held on failure */
	assert_int_equal(layers_hold(&f->x, "ctr1", ac, 2, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_false(there(f, ".holds/ctr1"));
	assert_int_equal(layers_hold(&f->x, "bad/holder", ab, 2, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(layers_hold(&f->x, "..", ab, 2, &err), -1);

	assert_int_equal(layers_hold(&f->x, "ctr1", ab, 2, &err), 0);
	assert_int_equal(layers_hold(&f->x, "ctr2", a, 1, &err), 0);
	assert_true(there(f, ".holds/ctr1"));

	/* imaged released both: marked, nothing deleted while held */
	{
		char r[128];
		snprintf(r, sizeof r, ".released/%s", A + 7);
		touch(f, r);
		snprintf(r, sizeof r, ".released/%s", B + 7);
		touch(f, r);
	}
	/* holds survive a restart; recovery deletes nothing held */
	{
		const struct layers_holder want[] = { { "ctr1", ab, 2 }, { "ctr2", a, 1 } };
		reopen_with(f, want, 2);
	}
	assert_true(layers_present(&f->x, A) && layers_present(&f->x, B));
	/* ctr1 goes: B is released and unheld -> deleted; A still held by ctr2 */
	assert_int_equal(layers_unhold(&f->x, "ctr1", &err), 0);
	assert_false(layers_present(&f->x, B));
	assert_false(there(f, ".holds/ctr1"));
	assert_true(layers_present(&f->x, A));
	assert_int_equal(layers_unhold(&f->x, "ctr1", &err), 0); /* idempotent */
	assert_int_equal(layers_unhold(&f->x, "ctr2", &err), 0);
	assert_false(layers_present(&f->x, A));
	{
		char r[128];
		snprintf(r, sizeof r, ".released/%s", A + 7);
		assert_false(there(f, r));
	}
}

static void test_rehold_replaces(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	const char *ab[] = { A, B }, *a[] = { A };
	char r[128];

	mk(f, A + 7);
	mk(f, B + 7);
	assert_int_equal(layers_hold(&f->x, "c", ab, 2, &err), 0);
	snprintf(r, sizeof r, ".released/%s", B + 7);
	touch(f, r);
	/* the new set drops B: B goes now */
	assert_int_equal(layers_hold(&f->x, "c", a, 1, &err), 0);
	assert_false(layers_present(&f->x, B));
	assert_true(layers_present(&f->x, A));
}

static void test_recovery(void **state)
{
	struct fx *f = *state;
	char r[128];
	FILE *fp;

	mk(f, A + 7);
	mk(f, B + 7);
	/* an interrupted unpack, with content */
	mk(f, ".tmp-0123456789abcdef0123456789abcdef");
	mk(f, ".tmp-0123456789abcdef0123456789abcdef/sub");
	touch(f, ".tmp-0123456789abcdef0123456789abcdef/sub/file");
	/* A released and unheld: deleted at start; B released and held: kept */
	snprintf(r, sizeof r, ".released/%s", A + 7);
	touch(f, r);
	snprintf(r, sizeof r, ".released/%s", B + 7);
	touch(f, r);
	snprintf(r, sizeof r, "%.90s/.holds/ctr", f->path);
	fp = fopen(r, "w");
	assert_non_null(fp);
	fprintf(fp, "%s\n", B);
	fclose(fp);
	/* a damaged hold file and a tmp hold file of a crash */
	snprintf(r, sizeof r, "%.90s/.holds/broken", f->path);
	fp = fopen(r, "w");
	fprintf(fp, "not a digest\n");
	fclose(fp);
	touch(f, ".holds/.ctr.tmp");
	/* a release mark of a layer that is not there */
	snprintf(r, sizeof r, ".released/%s", C + 7);
	touch(f, r);

	{
		const char *b[] = { B };
		const struct layers_holder want[] = { { "ctr", b, 1 } };
		reopen_with(f, want, 1);
	}
	assert_false(there(f, ".tmp-0123456789abcdef0123456789abcdef"));
	assert_false(layers_present(&f->x, A));
	assert_true(layers_present(&f->x, B));
	assert_false(there(f, ".holds/broken"));
	assert_false(there(f, ".holds/.ctr.tmp"));
	snprintf(r, sizeof r, ".released/%s", C + 7);
	assert_false(there(f, r));
	{
		crisp_err_t err = CRISP_ERR_INIT;
		assert_int_equal(layers_unhold(&f->x, "ctr", &err), 0);
		assert_false(layers_present(&f->x, B));
	}
}

/* Hold files are not flushed: after an OS crash one may be missing or
 * stale.  The containers' record wins: a lost hold comes back before any
 * released layer is deleted, a stale one is rewritten, a hold of a
 * container that is gone is dropped, one whose record is unreadable
 * (n == 0) is kept. */
static void test_reconcile(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	const char *a[] = { A }, *b[] = { B }, *c[] = { C };
	char r[128], p[512];

	mk(f, A + 7);
	mk(f, B + 7);
	mk(f, C + 7);
	assert_int_equal(layers_hold(&f->x, "lost", a, 1, &err), 0);
	assert_int_equal(layers_hold(&f->x, "stale", a, 1, &err), 0);
	assert_int_equal(layers_hold(&f->x, "gone", c, 1, &err), 0);
	assert_int_equal(layers_hold(&f->x, "unreadable", c, 1, &err), 0);
	/* every layer released by imaged */
	snprintf(r, sizeof r, ".released/%s", A + 7);
	touch(f, r);
	snprintf(r, sizeof r, ".released/%s", B + 7);
	touch(f, r);
	snprintf(r, sizeof r, ".released/%s", C + 7);
	touch(f, r);
	/* the crash: "lost"'s hold file is gone */
	snprintf(p, sizeof p, "%s/.holds/lost", f->path);
	assert_int_equal(unlink(p), 0);
	{
		/* the record: lost holds A, stale now holds B, gone is not there */
		const struct layers_holder want[] = { { "lost", a, 1 }, { "stale", b, 1 }, { "unreadable", NULL, 0 } };
		layers_close(&f->x);
		assert_int_equal(layers_init(&f->x, &err), 0);
		/* before the reconcile nothing released was deleted */
		assert_true(layers_present(&f->x, A) && layers_present(&f->x, B) && layers_present(&f->x, C));
		assert_int_equal(layers_reconcile(&f->x, want, 3, &err), 0);
	}
	assert_true(there(f, ".holds/lost"));
	assert_true(layers_present(&f->x, A));
	assert_true(layers_present(&f->x, B));
	assert_false(there(f, ".holds/gone"));
	assert_true(there(f, ".holds/unreadable"));
	assert_true(layers_present(&f->x, C));
	/* what each now holds is what the record says */
	assert_int_equal(layers_unhold(&f->x, "lost", &err), 0);
	assert_false(layers_present(&f->x, A));
	assert_int_equal(layers_unhold(&f->x, "stale", &err), 0);
	assert_false(layers_present(&f->x, B));
	assert_int_equal(layers_unhold(&f->x, "unreadable", &err), 0);
	assert_false(layers_present(&f->x, C));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layout_and_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holds_and_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rehold_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile, setup, teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_layers: needs root (execd's layer directory is root's)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
