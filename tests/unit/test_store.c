/*
 * imaged image store: layout, blobs (size/digest checks, nothing partial
 * visible), the in-flight table, layers and chain ids, image records and
 * lookups, tag moves, removal (untag vs remove, layer/blob freeing), pins,
 * and crash consistency (a child killed at several points; the parent
 * reopens and finds nothing partial).  Needs no privilege.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/util.h"
#include "imaged/manifest.h"
#include "imaged/store.h"
#include "imaged/unpack.h"

struct fx {
	char dir[64];
	int dirfd;
	struct store *st;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	crisp_err_t err = CRISP_ERR_INIT;

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/crisp-store.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->dirfd = open(f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0 || store_open(f->dir, NULL, &f->st, &err) < 0) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	int top;

	store_close(f->st);
	top = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
	unpack_remove_tree(top, f->dir + 5, &err); /* temp dirs removed even on failure */
	close(top);
	close(f->dirfd);
	free(f);
	return 0;
}

static void reopen(struct fx *f, const struct store_options *o)
{
	crisp_err_t err = CRISP_ERR_INIT;

	store_close(f->st);
	f->st = NULL;
	if (store_open(f->dir, o, &f->st, &err) < 0)
		fail_msg("reopen: %s", err.msg);
}

static bool exists(struct fx *f, const char *rel)
{
	struct stat sb;

	return fstatat(f->dirfd, rel, &sb, AT_SYMLINK_NOFOLLOW) == 0;
}

static size_t count_dir(struct fx *f, const char *rel)
{
	char cmd[256];
	FILE *p;
	size_t n = 0;
	int c;

	snprintf(cmd, sizeof cmd, "ls -A %s/%s", f->dir, rel);
	p = popen(cmd, "r");
	assert_non_null(p);
	while ((c = fgetc(p)) != EOF)
		if (c == '\n')
			n++;
	pclose(p);
	return n;
}

/* Write content as a blob; returns its digest in d. */
static void put_blob(struct fx *f, const char *content, char d[MF_DIGEST_SIZE])
{
	crisp_err_t err = CRISP_ERR_INIT;
	char tmp[STORE_TMPNAME_SIZE];
	int fd;

	mf_digest((const uint8_t *)content, strlen(content), d);
	assert_int_equal(store_blob_begin(f->st, &fd, tmp, &err), 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	if (store_blob_commit(f->st, fd, tmp, d, strlen(content), 0, &err) < 0)
		fail_msg("commit: %s", err.msg);
	close(fd);
}

static void fake_digest(const char *seed, char d[MF_DIGEST_SIZE])
{
	mf_digest((const uint8_t *)seed, strlen(seed), d);
}

/* A layer (its tree is execd's): diffid from seed, chain on parent, and
 * its compressed blob (content = seed). */
static void put_layer(struct fx *f, const char *parent, const char *seed,
		      struct store_layer *l)
{
	crisp_err_t err = CRISP_ERR_INIT;

	memset(l, 0, sizeof *l);
	fake_digest(seed, l->diffid);
	assert_int_equal(store_chain_id(parent, l->diffid, l->chainid, &err), 0);
	put_blob(f, seed, l->blob);
	l->size = strlen(seed);
}

/* An image with id from seed, layers from seeds (blob content = seed), names. */
static void mk_image(struct fx *f, struct store_image *img, struct store_layer *ls,
		     const char *idseed, const char *const *lseeds, size_t nl, char **names,
		     size_t nn)
{
	memset(img, 0, sizeof *img);
	fake_digest(idseed, img->id);
	fake_digest("manifest", img->manifest_digest);
	img->config = (uint8_t *)"{\"config\":{}}";
	img->config_len = strlen((const char *)img->config);
	img->user = "1000";
	img->verdict = "{\"allowed\":true}";
	img->size = 1234;
	for (size_t i = 0; i < nl; i++)
		put_layer(f, i ? ls[i - 1].chainid : NULL, lseeds[i], &ls[i]);
	img->layers = ls;
	img->nlayers = nl;
	img->names = names;
	img->nnames = nn;
}

static void record(struct fx *f, const struct store_image *img)
{
	crisp_err_t err = CRISP_ERR_INIT;

	if (store_image_record(f->st, img, &err) < 0)
		fail_msg("record: %s", err.msg);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_open_layout(void **state)
{
	struct fx *f = *state;
	struct store *st2 = NULL;
	crisp_err_t err = CRISP_ERR_INIT;

	assert_true(exists(f, "blobs/sha256"));
	assert_false(exists(f, "layers")); /* unpacked layers are execd's */
	assert_true(exists(f, "tmp"));
	assert_true(exists(f, "images.db"));
	assert_int_equal(store_open(f->dir, NULL, &st2, &err), -1);
	assert_int_equal(err.code, CRISP_UNAVAILABLE);
	assert_null(st2);
	assert_int_equal(store_open("relative", NULL, &st2, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	reopen(f, NULL); /* reopen of an existing store */
	assert_true(exists(f, "images.db"));
}

static void test_blob(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	char d[MF_DIGEST_SIZE], other[MF_DIGEST_SIZE], tmp[STORE_TMPNAME_SIZE], rel[STORE_RELPATH_SIZE];
	uint64_t size;
	int fd, rfd;
	char buf[16] = { 0 };

	put_blob(f, "hello", d);
	assert_int_equal(store_blob_has(f->st, d, &size, &err), 1);
	assert_int_equal(size, 5);
	assert_int_equal(store_blob_path(d, rel, &err), 0);
	assert_true(exists(f, rel));
	assert_int_equal(store_blob_open(f->st, d, &rfd, &err), 0);
	assert_int_equal(read(rfd, buf, sizeof buf), 5);
	assert_string_equal(buf, "hello");
	close(rfd);
	assert_int_equal(count_dir(f, "tmp"), 0);

	/* wrong size */
	fake_digest("world", other);
	assert_int_equal(store_blob_begin(f->st, &fd, tmp, &err), 0);
	assert_int_equal(write(fd, "world", 5), 5);
	assert_int_equal(store_blob_commit(f->st, fd, tmp, other, 6, 0, &err), -1);
	assert_int_equal(err.code, CRISP_DATA_LOSS);
	close(fd);
	assert_int_equal(store_blob_has(f->st, other, NULL, &err), 0);
	assert_int_equal(count_dir(f, "tmp"), 0);

	/* wrong digest (right size) */
	assert_int_equal(store_blob_begin(f->st, &fd, tmp, &err), 0);
	assert_int_equal(write(fd, "wOrld", 5), 5);
	assert_int_equal(store_blob_commit(f->st, fd, tmp, other, 5, 0, &err), -1);
	assert_int_equal(err.code, CRISP_DATA_LOSS);
	close(fd);
	assert_int_equal(store_blob_has(f->st, other, NULL, &err), 0);
	assert_int_equal(count_dir(f, "tmp"), 0);

	/* abort */
	assert_int_equal(store_blob_begin(f->st, &fd, tmp, &err), 0);
	assert_int_equal(count_dir(f, "tmp"), 1);
	store_blob_abort(f->st, tmp);
	close(fd);
	assert_int_equal(count_dir(f, "tmp"), 0);

	/* the same blob twice: kept, tmp removed */
	put_blob(f, "hello", d);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "blobs/sha256"), 1);

	/* bad digests never reach a path */
	assert_int_equal(store_blob_has(f->st, "sha256:../../etc", NULL, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(store_blob_open(f->st, other, &rfd, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_int_equal(store_blob_commit(f->st, 0, "../x", d, 5, 0, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
}

struct waited {
	int calls;
	int code;
};

static void wait_cb(void *arg, enum store_kind kind, const char *key, const crisp_err_t *e)
{
	struct waited *w = arg;

	w->calls++;
	w->code = e ? e->code : 0;
}

static void test_inflight(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT, fail = CRISP_ERR_INIT;
	char d[MF_DIGEST_SIZE], tmp[STORE_TMPNAME_SIZE];
	struct store_waiter *w1, *w2, *w3;
	struct waited a = { 0 }, b = { 0 }, c = { 0 };
	int downloads = 0, fd;

	fake_digest("shared", d);
	assert_int_equal(store_inflight_acquire(f->st, STORE_KIND_BLOB, d, wait_cb, &a, &w1, &err),
			 STORE_ACQ_OWNER);
	downloads++;
	assert_int_equal(store_inflight_acquire(f->st, STORE_KIND_BLOB, d, wait_cb, &a, &w1, &err),
			 STORE_ACQ_WAIT);
	assert_int_equal(store_inflight_acquire(f->st, STORE_KIND_BLOB, d, wait_cb, &b, &w2, &err),
			 STORE_ACQ_WAIT);
	assert_int_equal(store_inflight_acquire(f->st, STORE_KIND_BLOB, d, wait_cb, &c, &w3, &err),
			 STORE_ACQ_WAIT);
	assert_int_equal(store_inflight_waiters(f->st, STORE_KIND_BLOB, d), 3);
	store_inflight_cancel(f->st, w3);
	assert_int_equal(store_inflight_waiters(f->st, STORE_KIND_BLOB, d), 2);
	/* same key, other kind: independent */
	assert_int_equal(store_inflight_acquire(f->st, STORE_KIND_LAYER, d, wait_cb, &c, &w3, &err),
			 STORE_ACQ_OWNER);
	store_inflight_release(f->st, STORE_KIND_LAYER, d, NULL);
	/* the owner downloads */
	assert_int_equal(store_blob_begin(f->st, &fd, tmp, &err), 0);
	assert_int_equal(write(fd, "shared", 6), 6);
	assert_int_equal(store_blob_commit(f->st, fd, tmp, d, 6, 0, &err), 0);
	close(fd);
	assert_int_equal(a.calls + b.calls, 0);
	store_inflight_release(f->st, STORE_KIND_BLOB, d, NULL);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(a.code, 0);
	assert_int_equal(c.calls, 0);
	assert_int_equal(downloads, 1);
	assert_int_equal(store_inflight_acquire(f->st, STORE_KIND_BLOB, d, wait_cb, &a, &w1, &err),
			 STORE_ACQ_PRESENT);

	/* a failed owner: the waiter gets its error */
	fake_digest("doomed", d);
	memset(&a, 0, sizeof a);
	assert_int_equal(store_inflight_acquire(f->st, STORE_KIND_BLOB, d, wait_cb, &a, &w1, &err),
			 STORE_ACQ_OWNER);
	assert_int_equal(store_inflight_acquire(f->st, STORE_KIND_BLOB, d, wait_cb, &a, &w1, &err),
			 STORE_ACQ_WAIT);
	crisp_error(&fail, CRISP_UNAVAILABLE, 0, "registry went away");
	store_inflight_release(f->st, STORE_KIND_BLOB, d, &fail);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.code, CRISP_UNAVAILABLE);
	/* and may become the owner next */
	assert_int_equal(store_inflight_acquire(f->st, STORE_KIND_BLOB, d, wait_cb, &a, &w1, &err),
			 STORE_ACQ_OWNER);
	/* left pending: store_close frees it */
	assert_int_equal(store_inflight_acquire(f->st, STORE_KIND_BLOB, d, wait_cb, &a, &w1, &err),
			 STORE_ACQ_WAIT);
}

static void test_chain_id(void **state)
{
	crisp_err_t err = CRISP_ERR_INIT;
	char a[MF_DIGEST_SIZE], b[MF_DIGEST_SIZE], c[MF_DIGEST_SIZE], want[MF_DIGEST_SIZE] = "sha256:";
	char cmd[512];
	FILE *p;

	(void)state;
	fake_digest("layer0", a);
	fake_digest("layer1", b);
	assert_int_equal(store_chain_id(NULL, a, c, &err), 0);
	assert_string_equal(c, a);
	snprintf(cmd, sizeof cmd, "printf '%%s %%s' '%s' '%s' | sha256sum", a, b);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(want + 7, 65, p));
	pclose(p);
	assert_int_equal(store_chain_id(a, b, c, &err), 0);
	assert_string_equal(c, want);
	/* the known vector of the OCI image spec's example is the same formula */
	assert_int_equal(store_chain_id(a, "sha256:xyz", c, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
}

/* Layers are chain ids that images reference: present once recorded, gone
 * with the last image that references them. */
static void test_layer(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	struct store_image img;
	struct store_layer ls[2];
	const char *seeds[] = { "base", "top" };
	char *names[] = { "docker.io/library/l:1" };
	char (*rel)[MF_DIGEST_SIZE] = NULL;
	size_t nrel = 0;
	bool removed;

	mk_image(f, &img, ls, "img-l", seeds, 2, names, 1);
	assert_string_not_equal(ls[1].chainid, ls[1].diffid);
	assert_int_equal(store_layer_has(f->st, ls[0].chainid, &err), 0);
	assert_int_equal(store_layer_has(f->st, "sha256:xyz", &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	record(f, &img);
	assert_int_equal(store_layer_has(f->st, ls[0].chainid, &err), 1);
	assert_int_equal(store_layer_has(f->st, ls[1].chainid, &err), 1);
	/* the in-flight table sees a referenced layer as present */
	{
		struct store_waiter *w;
		assert_int_equal(store_inflight_acquire(f->st, STORE_KIND_LAYER, ls[1].chainid, NULL,
							NULL, &w, &err),
				 STORE_ACQ_PRESENT);
	}
	assert_int_equal(store_image_remove(f->st, img.id, &removed, &rel, &nrel, &err), 0);
	assert_true(removed);
	assert_int_equal(nrel, 2);
	assert_true((strcmp(rel[0], ls[0].chainid) == 0 && strcmp(rel[1], ls[1].chainid) == 0) ||
		    (strcmp(rel[1], ls[0].chainid) == 0 && strcmp(rel[0], ls[1].chainid) == 0));
	free(rel);
	assert_int_equal(store_layer_has(f->st, ls[0].chainid, &err), 0);
}

static int count_cb(void *arg, const struct store_image *img)
{
	(*(int *)arg)++;
	assert_null(img->config);
	return 0;
}

static void test_record_lookup(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	struct store_image img, out;
	struct store_layer ls[2];
	const char *seeds[] = { "l0", "l1" };
	char rd[300], *names[2];
	char ref[80];
	char ids[MF_DIGEST_SIZE * 2];
	int n = 0;

	fake_digest("manifest", rd + 200);
	snprintf(rd, 200, "docker.io/library/busybox@%s", rd + 200);
	names[0] = "docker.io/library/busybox:latest";
	names[1] = rd;
	mk_image(f, &img, ls, "config-a", seeds, 2, names, 2);
	record(f, &img);

	assert_int_equal(store_image_lookup(f->st, img.id, &out, &err), 0);
	assert_string_equal(out.id, img.id);
	assert_string_equal(out.user, "1000");
	assert_string_equal(out.verdict, "{\"allowed\":true}");
	assert_int_equal(out.config_len, img.config_len);
	assert_memory_equal(out.config, img.config, img.config_len);
	assert_int_equal(out.nnames, 2);
	assert_string_equal(out.names[0], "docker.io/library/busybox:latest"); /* tags first */
	assert_string_equal(out.names[1], rd);
	assert_int_equal(out.nlayers, 2);
	assert_string_equal(out.layers[1].chainid, ls[1].chainid);
	assert_string_equal(out.layers[1].blob, ls[1].blob);
	assert_int_equal(out.size, 1234);
	assert_true(out.pulled_at > 0);
	store_image_free(&out);

	assert_int_equal(store_image_lookup(f->st, img.id + 7, &out, &err), 0); /* bare hex */
	store_image_free(&out);
	snprintf(ref, sizeof ref, "%.12s", img.id + 7);
	assert_int_equal(store_image_lookup(f->st, ref, &out, &err), 0);
	assert_string_equal(out.id, img.id);
	store_image_free(&out);
	snprintf(ref, sizeof ref, "%.10s", img.id); /* sha256:abc */
	assert_int_equal(store_image_lookup(f->st, ref, &out, &err), 0);
	store_image_free(&out);
	snprintf(ref, sizeof ref, "%.2s", img.id + 7); /* too short */
	assert_int_equal(store_image_lookup(f->st, ref, &out, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_int_equal(store_image_lookup(f->st, "docker.io/library/busybox:latest", &out, &err), 0);
	assert_string_equal(out.id, img.id);
	store_image_free(&out);
	assert_int_equal(store_image_lookup(f->st, rd, &out, &err), 0);
	store_image_free(&out);
	assert_int_equal(store_image_lookup(f->st, "docker.io/library/nginx:latest", &out, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);

	/* ambiguous prefix: find a second id sharing the first hex digits */
	{
		struct store_image img2;
		struct store_layer l2[1];
		const char *s2[] = { "l0" };
		char seed[32];

		for (int i = 0;; i++) {
			snprintf(seed, sizeof seed, "cfg-%d", i);
			fake_digest(seed, ids);
			if (memcmp(ids + 7, img.id + 7, 3) == 0 && strcmp(ids, img.id) != 0)
				break;
		}
		mk_image(f, &img2, l2, seed, s2, 1, NULL, 0);
		record(f, &img2);
		snprintf(ref, sizeof ref, "%.3s", img.id + 7);
		assert_int_equal(store_image_lookup(f->st, ref, &out, &err), -1);
		assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
		assert_non_null(strstr(err.msg, "ambiguous"));
		/* a longer prefix resolves */
		snprintf(ref, sizeof ref, "%.20s", img.id + 7);
		assert_int_equal(store_image_lookup(f->st, ref, &out, &err), 0);
		store_image_free(&out);
	}

	assert_int_equal(store_image_list(f->st, count_cb, &n, &err), 0);
	assert_int_equal(n, 2);

	/* a record whose layer blob is missing is refused and nothing is listed */
	{
		struct store_image bad = img;
		struct store_layer bl[1];

		fake_digest("nope", bad.id);
		memset(bl, 0, sizeof bl);
		fake_digest("never-unpacked", bl[0].diffid);
		memcpy(bl[0].chainid, bl[0].diffid, MF_DIGEST_SIZE);
		fake_digest("never-downloaded", bl[0].blob);
		bad.layers = bl;
		bad.nlayers = 1;
		bad.names = NULL;
		bad.nnames = 0;
		assert_int_equal(store_image_record(f->st, &bad, &err), -1);
		assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
		n = 0;
		assert_int_equal(store_image_list(f->st, count_cb, &n, &err), 0);
		assert_int_equal(n, 2);
		/* bad names */
		char *bn[] = { "busybox" };
		bad = img;
		bad.names = bn;
		bad.nnames = 1;
		assert_int_equal(store_image_record(f->st, &bad, &err), -1);
		assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	}

	/* layers_of */
	{
		char ch[STORE_MAX_LAYERS][MF_DIGEST_SIZE];
		size_t nl;

		assert_int_equal(store_layers_of(f->st, img.id, ch, STORE_MAX_LAYERS, &nl, &err), 0);
		assert_int_equal(nl, 2);
		assert_string_equal(ch[0], ls[0].chainid);
		assert_string_equal(ch[1], ls[1].chainid);
	}
}

static void test_tag_moves(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	struct store_image a, b, out;
	struct store_layer la[1], lb[1];
	const char *sa[] = { "v1" }, *sb[] = { "v2" };
	char *na[] = { "docker.io/library/app:latest", "docker.io/library/app:1" };
	char *nb[] = { "docker.io/library/app:latest" };

	mk_image(f, &a, la, "app-1", sa, 1, na, 2);
	record(f, &a);
	mk_image(f, &b, lb, "app-2", sb, 1, nb, 1);
	record(f, &b);
	assert_int_equal(store_image_lookup(f->st, "docker.io/library/app:latest", &out, &err), 0);
	assert_string_equal(out.id, b.id);
	store_image_free(&out);
	assert_int_equal(store_image_lookup(f->st, a.id, &out, &err), 0);
	assert_int_equal(out.nnames, 1);
	assert_string_equal(out.names[0], "docker.io/library/app:1");
	store_image_free(&out);
	/* re-recording an image: idempotent layers, names added */
	record(f, &a);
	assert_int_equal(store_image_lookup(f->st, "docker.io/library/app:latest", &out, &err), 0);
	assert_string_equal(out.id, a.id);
	assert_int_equal(out.nlayers, 1);
	store_image_free(&out);
	assert_int_equal(store_image_lookup(f->st, b.id, &out, &err), 0);
	assert_int_equal(out.nnames, 0); /* dangling, still listed */
	store_image_free(&out);
}

/* Signatures kept with the image: per pulled reference, replaced when the
 * reference is pulled again, moved with a tag, gone with the image;
 * malformed ones refused without a half-written record. */
static void test_signatures(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	struct store_image a, b;
	struct store_layer la[1], lb[1];
	const char *sa[] = { "s1" }, *sb[] = { "s2" };
	char *na[] = { "quay.io/x/app:1" }, *nb[] = { "quay.io/x/app:2" };
	char dig[MF_DIGEST_SIZE];
	uint8_t g1[] = { 1, 2, 3 }, p2[] = "{\"payload\":1}", s2[] = { 9, 9 };
	struct store_sig sigs[2] = { { STORE_SIG_SIMPLE, g1, sizeof g1, NULL, 0 },
				     { STORE_SIG_SIGSTORE, p2, sizeof p2 - 1, s2, sizeof s2 } };
	struct store_pulled *pl = NULL;
	size_t n = 0;
	bool removed;

	fake_digest("top-manifest", dig);
	mk_image(f, &a, la, "sig-a", sa, 1, na, 1);
	a.sig_ref = "quay.io/x/app:1";
	a.sig_digest = dig;
	a.sigs = sigs;
	a.nsigs = 2;
	record(f, &a);
	assert_int_equal(store_image_sigs(f->st, a.id, &pl, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(pl[0].ref, "quay.io/x/app:1");
	assert_string_equal(pl[0].digest, dig);
	assert_int_equal(pl[0].nsigs, 2);
	assert_int_equal(pl[0].sigs[0].kind, STORE_SIG_SIMPLE);
	assert_memory_equal(pl[0].sigs[0].data, g1, sizeof g1);
	assert_int_equal(pl[0].sigs[0].sig_len, 0);
	assert_int_equal(pl[0].sigs[1].kind, STORE_SIG_SIGSTORE);
	assert_memory_equal(pl[0].sigs[1].sig, s2, sizeof s2);
	store_pulled_free(pl, n);

	/* pulled again by the same reference: its signatures are replaced */
	a.nsigs = 1;
	record(f, &a);
	assert_int_equal(store_image_sigs(f->st, a.id, &pl, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pl[0].nsigs, 1);
	store_pulled_free(pl, n);

	/* a malformed signature refuses the record and changes nothing */
	sigs[0].len = 0;
	a.nsigs = 2;
	assert_int_equal(store_image_record(f->st, &a, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	sigs[0].len = sizeof g1;
	crisp_error_clear(&err);
	assert_int_equal(store_image_sigs(f->st, a.id, &pl, &n, &err), 0);
	assert_int_equal(pl[0].nsigs, 1);
	store_pulled_free(pl, n);

	/* the reference moves to another image: its row moves with it */
	mk_image(f, &b, lb, "sig-b", sb, 1, nb, 1);
	b.sig_ref = "quay.io/x/app:1";
	b.sig_digest = dig;
	record(f, &b);
	assert_int_equal(store_image_sigs(f->st, a.id, &pl, &n, &err), 0);
	assert_int_equal(n, 0);
	store_pulled_free(pl, n);
	assert_int_equal(store_image_sigs(f->st, b.id, &pl, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pl[0].nsigs, 0);
	store_pulled_free(pl, n);

	/* removed with the image */
	assert_int_equal(store_image_remove(f->st, b.id, &removed, NULL, NULL, &err), 0);
	assert_true(removed);
	assert_int_equal(store_image_sigs(f->st, b.id, &pl, &n, &err), 0);
	assert_int_equal(n, 0);
	store_pulled_free(pl, n);
	assert_int_equal(store_image_sigs(f->st, "nonsense", &pl, &n, &err), -1);
}

static void test_remove(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	struct store_image a, b, out;
	struct store_layer la[2], lb[2];
	const char *sa[] = { "base", "a-top" }, *sb[] = { "base", "b-top" };
	char *na[] = { "docker.io/library/a:1", "docker.io/library/a:2" };
	char *nb[] = { "docker.io/library/b:1" };
	char pfx[STORE_RELPATH_SIZE];
	char (*rel)[MF_DIGEST_SIZE] = NULL;
	size_t nrel = 0;
	bool removed;

	mk_image(f, &a, la, "img-a", sa, 2, na, 2);
	record(f, &a);
	mk_image(f, &b, lb, "img-b", sb, 2, nb, 1);
	record(f, &b);
	assert_string_equal(la[0].chainid, lb[0].chainid); /* shared base */
	assert_int_equal(count_dir(f, "blobs/sha256"), 3);

	/* untag: a keeps its other tag */
	assert_int_equal(store_image_remove(f->st, "docker.io/library/a:1", &removed, &rel, &nrel,
					    &err),
			 0);
	assert_false(removed);
	assert_int_equal(nrel, 0);
	assert_null(rel);
	assert_int_equal(store_image_lookup(f->st, "docker.io/library/a:1", &out, &err), -1);
	assert_int_equal(store_image_lookup(f->st, a.id, &out, &err), 0);
	assert_int_equal(out.nnames, 1);
	store_image_free(&out);

	/* pinned: refusal changes nothing (not even the last tag) */
	assert_int_equal(store_image_pin(f->st, a.id, "ctr-1", &err), 0);
	assert_int_equal(store_image_pin(f->st, a.id, "ctr-1", &err), 0); /* idempotent */
	assert_int_equal(store_image_pin(f->st, a.id, "ctr-2", &err), 0);
	assert_int_equal(store_image_lookup(f->st, a.id, &out, &err), 0);
	assert_int_equal(out.pins, 2);
	store_image_free(&out);
	assert_int_equal(store_image_remove(f->st, "docker.io/library/a:2", &removed, NULL, NULL,
					    &err),
			 -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	assert_int_equal(store_image_remove(f->st, a.id, &removed, NULL, NULL, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	assert_int_equal(store_image_lookup(f->st, "docker.io/library/a:2", &out, &err), 0);
	store_image_free(&out);
	assert_int_equal(store_image_unpin(f->st, a.id, "ctr-1", &err), 0);
	assert_int_equal(store_image_unpin_all(f->st, "ctr-2", &err), 0);
	assert_int_equal(store_image_pin(f->st, a.id, "bad holder!", &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);

	/* last tag: the image goes; its own layer and blob go, the shared stay */
	assert_int_equal(store_image_remove(f->st, "docker.io/library/a:2", &removed, &rel, &nrel,
					    &err),
			 0);
	assert_true(removed);
	/* only a's own top layer is released; the shared base stays */
	assert_int_equal(nrel, 1);
	assert_string_equal(rel[0], la[1].chainid);
	free(rel);
	rel = NULL;
	assert_int_equal(store_image_lookup(f->st, a.id, &out, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_int_equal(store_layer_has(f->st, la[1].chainid, &err), 0);
	assert_int_equal(store_layer_has(f->st, la[0].chainid, &err), 1);
	assert_int_equal(store_blob_has(f->st, la[1].blob, NULL, &err), 0);
	assert_int_equal(store_blob_has(f->st, la[0].blob, NULL, &err), 1);

	/* by prefix: removes b with everything */
	snprintf(pfx, sizeof pfx, "%.12s", b.id + 7);
	assert_int_equal(store_image_remove(f->st, pfx, &removed, &rel, &nrel, &err), 0);
	assert_true(removed);
	assert_int_equal(nrel, 2); /* the base and b's top */
	free(rel);
	assert_int_equal(store_layer_has(f->st, lb[0].chainid, &err), 0);
	assert_int_equal(count_dir(f, "blobs/sha256"), 0);
	assert_int_equal(store_image_remove(f->st, b.id, &removed, NULL, NULL, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_int_equal(store_image_pin(f->st, b.id, "ctr-3", &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
}

/* execd's record is the authority on pins: unlisted holders go, listed
 * pins come back (for images that exist), a bad entry changes nothing. */
static void test_pins_sync(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	struct store_image a, b, out;
	struct store_layer la[1], lb[1];
	const char *sa[] = { "pin-a" }, *sb[] = { "pin-b" };
	char *na[] = { "docker.io/library/pa:1" }, *nb[] = { "docker.io/library/pb:1" };
	size_t made = 9, dropped = 9;

	mk_image(f, &a, la, "pins-a", sa, 1, na, 1);
	record(f, &a);
	mk_image(f, &b, lb, "pins-b", sb, 1, nb, 1);
	record(f, &b);
	assert_int_equal(store_image_pin(f->st, a.id, "kept", &err), 0);
	assert_int_equal(store_image_pin(f->st, a.id, "gone-1", &err), 0);
	assert_int_equal(store_image_pin(f->st, b.id, "gone-2", &err), 0);
	{
		/* kept stays, lost comes back, gone-* go, the image nobody has is skipped */
		const char *h[] = { "kept", "lost", "ghost" };
		const char *ids[] = { a.id, b.id, "sha256:0000000000000000000000000000000000000000000000000000000000000000" };
		assert_int_equal(store_pins_sync(f->st, h, ids, 3, &made, &dropped, &err), 0);
		assert_int_equal(made, 1);
		assert_int_equal(dropped, 2);
	}
	assert_int_equal(store_image_lookup(f->st, a.id, &out, &err), 0);
	assert_int_equal(out.pins, 1);
	store_image_free(&out);
	assert_int_equal(store_image_lookup(f->st, b.id, &out, &err), 0);
	assert_int_equal(out.pins, 1);
	store_image_free(&out);
	/* b is pinned by "lost" now: removal refused */
	assert_int_equal(store_image_remove(f->st, b.id, NULL, NULL, NULL, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	{
		/* a bad holder refuses the whole set */
		const char *h[] = { "kept", "bad holder!" };
		const char *ids[] = { a.id, a.id };
		assert_int_equal(store_pins_sync(f->st, h, ids, 2, NULL, NULL, &err), -1);
		assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	}
	assert_int_equal(store_image_lookup(f->st, b.id, &out, &err), 0);
	assert_int_equal(out.pins, 1);
	store_image_free(&out);
	/* nothing listed: no pin stays; idempotent */
	assert_int_equal(store_pins_sync(f->st, NULL, NULL, 0, &made, &dropped, &err), 0);
	assert_int_equal(dropped, 2);
	assert_int_equal(made, 0);
	assert_int_equal(store_pins_sync(f->st, NULL, NULL, 0, &made, &dropped, &err), 0);
	assert_int_equal(dropped, 0);
	assert_int_equal(store_image_remove(f->st, b.id, NULL, NULL, NULL, &err), 0);
}

/* ---- crash consistency --------------------------------------------------- */

static const char *crash_point;

static void crash_hook(const char *point)
{
	if (strcmp(point, crash_point) == 0)
		raise(SIGKILL);
}

/* In a child: open the store, write a whole image, die at crash_point. */
static void crash_child(const char *dir)
{
	struct fx f = { 0 };
	struct store_options o = { .test_hook = crash_hook };
	struct store_image img;
	struct store_layer ls[2];
	const char *seeds[] = { "crash-0", "crash-1" };
	char *names[] = { "docker.io/library/crash:latest" };
	crisp_err_t err = CRISP_ERR_INIT;
	int fd;
	char tmp[STORE_TMPNAME_SIZE];

	strcpy(f.dir, dir);
	f.dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (store_open(dir, &o, &f.st, &err) < 0)
		_exit(3);
	/* leftovers of a pull in progress: a tmp blob */
	if (store_blob_begin(f.st, &fd, tmp, &err) < 0 || write(fd, "partial", 7) != 7)
		_exit(4);
	mk_image(&f, &img, ls, "crash-img", seeds, 2, names, 1);
	store_image_record(f.st, &img, &err);
	_exit(6); /* not reached for the points tested */
}

static void test_crash(void **state)
{
	struct fx *f = *state;
	const char *points[] = { "blob:written", "record:before-commit" };
	crisp_err_t err = CRISP_ERR_INIT;
	struct store_image good, out;
	struct store_layer lg[1];
	const char *sg[] = { "good" };
	char *ng[] = { "docker.io/library/good:1" };

	mk_image(f, &good, lg, "good-img", sg, 1, ng, 1);
	record(f, &good);
	store_close(f->st);
	f->st = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(points); i++) {
		pid_t pid;
		int status;
		int n = 0;

		crash_point = points[i];
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			crash_child(f->dir);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGKILL);
		/* the child left temp files behind */
		assert_true(count_dir(f, "tmp") >= 1);

		reopen(f, NULL);
		/* nothing partial listed, temp files collected */
		assert_int_equal(store_image_list(f->st, count_cb, &n, &err), 0);
		assert_int_equal(n, 1);
		assert_int_equal(store_image_lookup(f->st, "docker.io/library/crash:latest", &out, &err),
				 -1);
		assert_int_equal(err.code, CRISP_NOT_FOUND);
		assert_int_equal(count_dir(f, "tmp"), 0);
		/* only the good image's layer and blob remain */
		assert_int_equal(store_layer_has(f->st, lg[0].chainid, &err), 1);
		assert_int_equal(count_dir(f, "blobs/sha256"), 1);
		assert_int_equal(store_image_lookup(f->st, "docker.io/library/good:1", &out, &err), 0);
		assert_string_equal(out.id, good.id);
		store_image_free(&out);
		store_close(f->st);
		f->st = NULL;
	}
	/* a new record works after all that, and survives a reopen */
	reopen(f, NULL);
	{
		struct store_image img;
		struct store_layer ls[2];
		const char *seeds[] = { "crash-0", "crash-1" };
		char *names[] = { "docker.io/library/crash:latest" };

		mk_image(f, &img, ls, "crash-img", seeds, 2, names, 1);
		record(f, &img);
	}
	reopen(f, NULL);
	assert_int_equal(store_image_lookup(f->st, "docker.io/library/crash:latest", &out, &err), 0);
	assert_int_equal(out.nlayers, 2);
	assert_int_equal(store_layer_has(f->st, out.layers[1].chainid, &err), 1);
	store_image_free(&out);
	assert_int_equal(count_dir(f, "blobs/sha256"), 3);
}

/* GC at open: unreferenced blobs and junk go; grace keeps young ones. */
static void test_gc(void **state)
{
	struct fx *f = *state;
	struct store_layer l;
	struct store_options keep = { .gc_grace_s = 3600 };
	int fd;

	put_layer(f, NULL, "orphan", &l);
	fd = openat(f->dirfd, "blobs/sha256/not-a-digest", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	close(fd);
	assert_int_equal(symlinkat("/etc", f->dirfd, "blobs/sha256/evil"), 0);
	reopen(f, &keep);
	assert_int_equal(count_dir(f, "blobs/sha256"), 1); /* young orphan kept, junk gone */
	reopen(f, NULL);
	assert_int_equal(count_dir(f, "blobs/sha256"), 0);
	assert_true(exists(f, "images.db"));
	{
		uint64_t bytes = 0, inodes = 0;
		crisp_err_t err = CRISP_ERR_INIT;

		assert_int_equal(store_usage(f->st, &bytes, &inodes, &err), 0);
		assert_true(bytes > 0 && inodes >= 5);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blob, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inflight, setup, teardown),
		cmocka_unit_test(test_chain_id),
		cmocka_unit_test_setup_teardown(test_layer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tag_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pins_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signatures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
