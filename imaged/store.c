/*
 * imaged: the image store (see store.h for the layout, the GC rule and the
 * semantics of names, lookup, removal and pins).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "common/util.h"
#include "imaged/fsusage.h"
#include "imaged/store.h"
#include "imaged/unpack.h"

#define HEX_LEN 64
#define DIGEST_PREFIX "sha256:"
#define DIGEST_PREFIX_LEN 7
#define HOLDER_MAX 128

struct store_waiter {
	struct store_waiter *next;
	struct inflight *in;
	store_wait_cb cb;
	void *arg;
};

struct inflight {
	struct inflight *next;
	enum store_kind kind;
	char key[MF_DIGEST_SIZE];
	struct store_waiter *waiters; /* FIFO */
};

struct store {
	int root;   /* O_RDONLY|O_DIRECTORY */
	int blobs;  /* blobs/sha256 */
	int tmp;    /* tmp */
	int lockfd;
	sqlite3 *db;
	struct inflight *inflight;
	int (*remove_tree)(int, const char *, crisp_err_t *);
	void (*test_hook)(const char *);
};

static void hook(struct store *st, const char *point)
{
	if (st->test_hook != NULL)
		st->test_hook(point);
}

static int db_err(struct store *st, crisp_err_t *err, const char *what)
{
	return crisp_error(err, CRISP_INTERNAL, 0, "store: %s: %s", what, sqlite3_errmsg(st->db));
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool is_hex_name(const char *s)
{
	return strlen(s) == HEX_LEN && is_hex(s, HEX_LEN);
}

static int check_digest(const char *d, const char *what, crisp_err_t *err)
{
	if (d == NULL || !mf_valid_digest(d))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "store: %s: not a sha256 digest", what);
	return 0;
}

static int rand_name(const char *prefix, char out[STORE_TMPNAME_SIZE])
{
	uint8_t r[16];
	char hex[33];

	randombytes_buf(r, sizeof r);
	crisp_hex(r, sizeof r, hex);
	snprintf(out, STORE_TMPNAME_SIZE, "%s%s", prefix, hex);
	return 0;
}

static int open_subdir(int parent, const char *name, int *out, crisp_err_t *err)
{
	int fd;
	struct stat sb;

	if (mkdirat(parent, name, 0700) < 0 && errno != EEXIST)
		return crisp_error(err, CRISP_INTERNAL, errno, "store: mkdir %s", name);
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "store: open %s", name);
	if (fstat(fd, &sb) < 0 || sb.st_uid != geteuid()) {
		close(fd);
		return crisp_error(err, CRISP_PERMISSION_DENIED, 0,
				   "store: %s is not owned by this user", name);
	}
	*out = fd;
	return 0;
}

/* ---- directory walking without fdopendir (imaged's seccomp has no fcntl) -- */

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/*
 * Call fn(dirfd, name, arg) for every entry but . and ..; entries may be
 * removed by fn (the directory is re-read from the start after each batch
 * in which something was removed would be safer, but getdents64 tolerates
 * removal of already-returned entries).
 */
static int walk_dir(int dirfd, int (*fn)(int, const char *, void *), void *arg, crisp_err_t *err)
{
	char buf[8192] __attribute__((aligned(8)));
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "store: open dir");
	for (;;) {
		ssize_t n = getdents64(fd, buf, sizeof buf);

		if (n < 0) {
			int e = errno;
			close(fd);
			return crisp_error(err, CRISP_INTERNAL, e, "store: getdents64");
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);

			off += d->d_reclen;
			if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
				continue;
			if (fn(dirfd, d->d_name, arg) < 0) {
				close(fd);
				return -1;
			}
		}
	}
	close(fd);
	return 0;
}

/* ---- open / close ------------------------------------------------------------ */

static const char SCHEMA[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS images("
	" id TEXT PRIMARY KEY, manifest_digest TEXT NOT NULL, size INTEGER NOT NULL,"
	" user TEXT, config BLOB NOT NULL, manifest BLOB, pulled_at INTEGER NOT NULL,"
	" verdict TEXT);"
	"CREATE TABLE IF NOT EXISTS names("
	" name TEXT PRIMARY KEY, image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,"
	" is_digest INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS names_image ON names(image_id);"
	"CREATE TABLE IF NOT EXISTS layers("
	" chainid TEXT PRIMARY KEY, diffid TEXT NOT NULL, size INTEGER NOT NULL,"
	" refcount INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS image_layers("
	" image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,"
	" idx INTEGER NOT NULL, chainid TEXT NOT NULL REFERENCES layers(chainid),"
	" blob TEXT NOT NULL, PRIMARY KEY(image_id, idx));"
	"CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chainid);"
	"CREATE TABLE IF NOT EXISTS image_blobs("
	" image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,"
	" digest TEXT NOT NULL, PRIMARY KEY(image_id, digest));"
	"CREATE INDEX IF NOT EXISTS image_blobs_digest ON image_blobs(digest);"
	/* no cascade: a pinned image cannot be deleted even by a bug here */
	"CREATE TABLE IF NOT EXISTS pins("
	" image_id TEXT NOT NULL REFERENCES images(id), holder TEXT NOT NULL,"
	" PRIMARY KEY(image_id, holder));"
	/* Signatures kept with the image (added to schema 1 without a
	 * migration: new tables only). */
	"CREATE TABLE IF NOT EXISTS image_pulls("
	" ref TEXT PRIMARY KEY, image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,"
	" digest TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS image_pulls_image ON image_pulls(image_id);"
	"CREATE TABLE IF NOT EXISTS image_sigs("
	" ref TEXT NOT NULL REFERENCES image_pulls(ref) ON DELETE CASCADE,"
	" idx INTEGER NOT NULL, kind INTEGER NOT NULL, data BLOB NOT NULL, sig BLOB,"
	" PRIMARY KEY(ref, idx));"
	"INSERT OR IGNORE INTO meta(key, value) VALUES('schema', '1');";

static int db_open(struct store *st, const char *root_path, crisp_err_t *err)
{
	char path[PATH_MAX];
	char *msg = NULL;
	int n = snprintf(path, sizeof path, "%s/images.db", root_path);

	if (n < 0 || (size_t)n >= sizeof path)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: path too long");
	if (sqlite3_open_v2(path, &st->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW |
				    SQLITE_OPEN_EXRESCODE,
			    NULL) != SQLITE_OK) {
		if (st->db == NULL)
			return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0, "store: sqlite open");
		return db_err(st, err, "open images.db");
	}
	sqlite3_busy_timeout(st->db, 5000);
	if (sqlite3_exec(st->db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			 "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;"
			 "PRAGMA trusted_schema=OFF;",
			 NULL, NULL, &msg) != SQLITE_OK) {
		crisp_error(err, CRISP_INTERNAL, 0, "store: pragmas: %s", msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE;", NULL, NULL, NULL) != SQLITE_OK)
		return db_err(st, err, "begin");
	if (sqlite3_exec(st->db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
		crisp_error(err, CRISP_INTERNAL, 0, "store: schema: %s", msg ? msg : "?");
		sqlite3_free(msg);
		sqlite3_exec(st->db, "ROLLBACK;", NULL, NULL, NULL);
		return -1;
	}
	if (sqlite3_exec(st->db, "COMMIT;", NULL, NULL, NULL) != SQLITE_OK)
		return db_err(st, err, "commit schema");
	return 0;
}

static int tmp_gc_one(int dirfd, const char *name, void *arg)
{
	struct store *st = arg;
	crisp_err_t e = CRISP_ERR_INIT;

	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	st->remove_tree(dirfd, name, &e); /* a directory someone put there */
	return 0;
}

int store_open(const char *root_path, const struct store_options *opts, struct store **out,
	       crisp_err_t *err)
{
	struct store *st;
	int fd;

	*out = NULL;
	if (root_path == NULL || root_path[0] != '/')
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: root must be absolute");
	if (sodium_init() < 0)
		return crisp_error(err, CRISP_INTERNAL, 0, "store: sodium_init");
	st = calloc(1, sizeof *st);
	if (st == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "store: alloc");
	st->root = st->blobs = st->tmp = st->lockfd = -1;
	st->remove_tree = opts && opts->remove_tree ? opts->remove_tree : unpack_remove_tree;
	st->test_hook = opts ? opts->test_hook : NULL;

	st->root = open(root_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (st->root < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "store: open %s", root_path);
		goto fail;
	}
	st->lockfd = openat(st->root, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (st->lockfd < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "store: open lock");
		goto fail;
	}
	if (flock(st->lockfd, LOCK_EX | LOCK_NB) < 0) {
		crisp_error(err, errno == EWOULDBLOCK ? CRISP_UNAVAILABLE : CRISP_INTERNAL, errno,
			    "store: %s is in use by another process", root_path);
		goto fail;
	}
	if (open_subdir(st->root, "blobs", &fd, err) < 0)
		goto fail;
	if (open_subdir(fd, "sha256", &st->blobs, err) < 0) {
		close(fd);
		goto fail;
	}
	close(fd);
	if (open_subdir(st->root, "tmp", &st->tmp, err) < 0)
		goto fail;
	if (db_open(st, root_path, err) < 0)
		goto fail;
	/* recovery: GC rule 1, then 2-4 */
	if (walk_dir(st->tmp, tmp_gc_one, st, err) < 0)
		goto fail;
	if (store_gc(st, opts ? opts->gc_grace_s : 0, err) < 0)
		goto fail;
	*out = st;
	return 0;
fail:
	store_close(st);
	return -1;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	while (st->inflight != NULL) {
		struct inflight *in = st->inflight;

		st->inflight = in->next;
		while (in->waiters != NULL) {
			struct store_waiter *w = in->waiters;

			in->waiters = w->next;
			free(w);
		}
		free(in);
	}
	if (st->db != NULL)
		sqlite3_close(st->db);
	if (st->blobs >= 0)
		close(st->blobs);
	if (st->tmp >= 0)
		close(st->tmp);
	if (st->root >= 0)
		close(st->root);
	if (st->lockfd >= 0)
		close(st->lockfd); /* releases the flock */
	free(st);
}

int store_usage(struct store *st, uint64_t *bytes, uint64_t *inodes, crisp_err_t *err)
{
	return fs_usage(st->root, bytes, inodes, err);
}

/* ---- GC ---------------------------------------------------------------------- */

struct gc_ctx {
	struct store *st;
	sqlite3_stmt *q; /* bound with "sha256:<hex>", returns a row when referenced */
	enum store_kind kind;
	time_t cutoff;
	bool any;
};

static bool inflight_has(struct store *st, enum store_kind kind, const char *key);

static int gc_one(int dirfd, const char *name, void *arg)
{
	struct gc_ctx *g = arg;
	char digest[MF_DIGEST_SIZE];
	struct stat sb;
	crisp_err_t e = CRISP_ERR_INIT;
	int rc;

	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (!is_hex_name(name) ||
	    !S_ISREG(sb.st_mode))
		goto remove; /* rule 3 */
	snprintf(digest, sizeof digest, DIGEST_PREFIX "%s", name);
	if (inflight_has(g->st, g->kind, digest))
		return 0;
	sqlite3_reset(g->q);
	sqlite3_bind_text(g->q, 1, digest, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(g->q);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return db_err(g->st, NULL, "gc query");
	if (sb.st_ctim.tv_sec > g->cutoff)
		return 0;
remove:
	if (S_ISDIR(sb.st_mode))
		g->st->remove_tree(dirfd, name, &e);
	else
		unlinkat(dirfd, name, 0);
	g->any = true;
	return 0;
}

int store_gc(struct store *st, unsigned grace_s, crisp_err_t *err)
{
	struct gc_ctx g = { .st = st, .cutoff = time(NULL) - (time_t)grace_s };
	int rc = 0;

	if (sqlite3_exec(st->db,
			 "UPDATE layers SET refcount = (SELECT COUNT(*) FROM image_layers"
			 " WHERE image_layers.chainid = layers.chainid);"
			 "DELETE FROM layers WHERE refcount = 0;",
			 NULL, NULL, NULL) != SQLITE_OK)
		return db_err(st, err, "gc refcounts");
	if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM image_blobs WHERE digest = ?1 LIMIT 1", -1,
			       &g.q, NULL) != SQLITE_OK)
		return db_err(st, err, "gc prepare");
	g.kind = STORE_KIND_BLOB;
	rc = walk_dir(st->blobs, gc_one, &g, err);
	sqlite3_finalize(g.q);
	if (rc < 0)
		return -1;
	if (g.any && fsync(st->blobs) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "store: fsync blobs");
	return 0;
}

/* ---- chain ids ------------------------------------------------------------ */

int store_chain_id(const char *parent, const char *diffid, char out[MF_DIGEST_SIZE],
		   crisp_err_t *err)
{
	char buf[2 * MF_DIGEST_LEN + 2];

	if (check_digest(diffid, "diff id", err) < 0)
		return -1;
	if (parent == NULL) {
		memcpy(out, diffid, MF_DIGEST_SIZE);
		return 0;
	}
	if (check_digest(parent, "parent chain id", err) < 0)
		return -1;
	snprintf(buf, sizeof buf, "%s %s", parent, diffid);
	return mf_digest((const uint8_t *)buf, strlen(buf), out);
}

/* ---- blobs --------------------------------------------------------------- */

int store_blob_path(const char *digest, char out[STORE_RELPATH_SIZE], crisp_err_t *err)
{
	if (check_digest(digest, "blob", err) < 0)
		return -1;
	snprintf(out, STORE_RELPATH_SIZE, "blobs/sha256/%s", digest + DIGEST_PREFIX_LEN);
	return 0;
}

int store_blob_has(struct store *st, const char *digest, uint64_t *size, crisp_err_t *err)
{
	struct stat sb;

	if (check_digest(digest, "blob", err) < 0)
		return -1;
	if (fstatat(st->blobs, digest + DIGEST_PREFIX_LEN, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return crisp_error(err, CRISP_INTERNAL, errno, "store: stat blob %s", digest);
	}
	if (!S_ISREG(sb.st_mode))
		return crisp_error(err, CRISP_INTERNAL, 0, "store: blob %s is not a file", digest);
	if (size != NULL)
		*size = (uint64_t)sb.st_size;
	return 1;
}

int store_blob_open(struct store *st, const char *digest, int *fd, crisp_err_t *err)
{
	if (check_digest(digest, "blob", err) < 0)
		return -1;
	*fd = openat(st->blobs, digest + DIGEST_PREFIX_LEN, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return crisp_error(err, errno == ENOENT ? CRISP_NOT_FOUND : CRISP_INTERNAL, errno,
				   "store: blob %s", digest);
	return 0;
}

int store_blob_begin(struct store *st, int *fd, char tmpname[STORE_TMPNAME_SIZE],
		     crisp_err_t *err)
{
	rand_name("blob-", tmpname);
	*fd = openat(st->tmp, tmpname, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (*fd < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "store: create tmp/%s", tmpname);
	return 0;
}

static bool valid_tmpname(const char *t, const char *prefix)
{
	size_t pl = strlen(prefix);

	return t != NULL && strncmp(t, prefix, pl) == 0 && strlen(t) == pl + 32 &&
	       is_hex(t + pl, 32);
}

void store_blob_abort(struct store *st, const char *tmpname)
{
	if (valid_tmpname(tmpname, "blob-"))
		unlinkat(st->tmp, tmpname, 0);
}

static int hash_fd(int fd, char out[MF_DIGEST_SIZE], crisp_err_t *err)
{
	crypto_hash_sha256_state s;
	uint8_t buf[65536], h[crypto_hash_sha256_BYTES];
	off_t off = 0;

	crypto_hash_sha256_init(&s);
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof buf, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return crisp_error(err, CRISP_INTERNAL, errno, "store: read blob");
		if (n == 0)
			break;
		crypto_hash_sha256_update(&s, buf, (size_t)n);
		off += n;
	}
	crypto_hash_sha256_final(&s, h);
	memcpy(out, DIGEST_PREFIX, DIGEST_PREFIX_LEN);
	crisp_hex(h, sizeof h, out + DIGEST_PREFIX_LEN);
	return 0;
}

int store_blob_commit(struct store *st, int fd, const char *tmpname, const char *digest,
		      uint64_t size, unsigned flags, crisp_err_t *err)
{
	struct stat sb;
	char got[MF_DIGEST_SIZE];

	if (!valid_tmpname(tmpname, "blob-"))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: bad tmp name");
	if (check_digest(digest, "blob", err) < 0)
		goto fail;
	if (fstat(fd, &sb) < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "store: fstat blob");
		goto fail;
	}
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != size) {
		crisp_error(err, CRISP_DATA_LOSS, 0,
			    "store: blob %s: size %lld, expected %llu", digest,
			    (long long)sb.st_size, (unsigned long long)size);
		goto fail;
	}
	if (!(flags & STORE_BLOB_VERIFIED)) {
		if (hash_fd(fd, got, err) < 0)
			goto fail;
		if (strcmp(got, digest) != 0) {
			crisp_error(err, CRISP_DATA_LOSS, 0, "store: blob %s: content hashes to %s",
				    digest, got);
			goto fail;
		}
	}
	if (fsync(fd) < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "store: fsync blob");
		goto fail;
	}
	hook(st, "blob:written");
	if (renameat2(st->tmp, tmpname, st->blobs, digest + DIGEST_PREFIX_LEN, RENAME_NOREPLACE) < 0) {
		if (errno != EEXIST) {
			crisp_error(err, CRISP_INTERNAL, errno, "store: rename blob %s", digest);
			goto fail;
		}
		unlinkat(st->tmp, tmpname, 0); /* present already: same bytes */
		return 0;
	}
	if (fsync(st->blobs) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "store: fsync blobs dir");
	return 0;
fail:
	unlinkat(st->tmp, tmpname, 0);
	return -1;
}

int store_blob_remove(struct store *st, const char *digest, crisp_err_t *err)
{
	sqlite3_stmt *q = NULL;
	int rc;

	if (check_digest(digest, "blob", err) < 0)
		return -1;
	if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM image_blobs WHERE digest = ?1 LIMIT 1", -1,
			       &q, NULL) != SQLITE_OK)
		return db_err(st, err, "prepare");
	sqlite3_bind_text(q, 1, digest, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	if (rc == SQLITE_ROW)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
				   "store: blob %s is referenced by an image", digest);
	if (rc != SQLITE_DONE)
		return db_err(st, err, "blob refs");
	if (unlinkat(st->blobs, digest + DIGEST_PREFIX_LEN, 0) < 0 && errno != ENOENT)
		return crisp_error(err, CRISP_INTERNAL, errno, "store: unlink blob %s", digest);
	return 0;
}

/* ---- layers -------------------------------------------------------------- */

static int run(struct store *st, const char *sql, const char *a, const char *b, const char *c);

/* Layers are unpacked and kept by execd; here they are only chain ids that
 * images reference (the layers table and its refcounts). */
int store_layer_has(struct store *st, const char *chainid, crisp_err_t *err)
{
	int rc;

	if (check_digest(chainid, "chain id", err) < 0)
		return -1;
	rc = run(st, "SELECT 1 FROM layers WHERE chainid = ?1", chainid, NULL, NULL);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_err(st, err, "layer lookup");
}

/* ---- in-flight table ------------------------------------------------------- */

static struct inflight **inflight_find(struct store *st, enum store_kind kind, const char *key)
{
	struct inflight **p;

	for (p = &st->inflight; *p != NULL; p = &(*p)->next)
		if ((*p)->kind == kind && strcmp((*p)->key, key) == 0)
			return p;
	return NULL;
}

static bool inflight_has(struct store *st, enum store_kind kind, const char *key)
{
	return inflight_find(st, kind, key) != NULL;
}

int store_inflight_acquire(struct store *st, enum store_kind kind, const char *key,
			   store_wait_cb cb, void *arg, struct store_waiter **w, crisp_err_t *err)
{
	struct inflight **p, *in;
	struct store_waiter *nw, **tail;
	int rc;

	*w = NULL;
	if (kind != STORE_KIND_BLOB && kind != STORE_KIND_LAYER)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: bad kind");
	if (check_digest(key, "in-flight key", err) < 0)
		return -1;
	p = inflight_find(st, kind, key);
	if (p == NULL) {
		rc = kind == STORE_KIND_BLOB ? store_blob_has(st, key, NULL, err)
					     : store_layer_has(st, key, err);
		if (rc < 0)
			return -1;
		if (rc == 1)
			return STORE_ACQ_PRESENT;
		in = calloc(1, sizeof *in);
		if (in == NULL)
			return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "store: alloc");
		in->kind = kind;
		memcpy(in->key, key, MF_DIGEST_SIZE);
		in->next = st->inflight;
		st->inflight = in;
		return STORE_ACQ_OWNER;
	}
	if (cb == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: waiter without callback");
	nw = calloc(1, sizeof *nw);
	if (nw == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "store: alloc");
	nw->in = *p;
	nw->cb = cb;
	nw->arg = arg;
	for (tail = &(*p)->waiters; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = nw;
	*w = nw;
	return STORE_ACQ_WAIT;
}

void store_inflight_release(struct store *st, enum store_kind kind, const char *key,
			    const crisp_err_t *result)
{
	struct inflight **p = key ? inflight_find(st, kind, key) : NULL, *in;
	char k[MF_DIGEST_SIZE];

	if (p == NULL)
		return;
	in = *p;
	*p = in->next; /* out of the table before any callback runs */
	memcpy(k, in->key, sizeof k);
	while (in->waiters != NULL) {
		struct store_waiter *w = in->waiters;

		in->waiters = w->next;
		w->cb(w->arg, kind, k, result);
		free(w);
	}
	free(in);
}

void store_inflight_cancel(struct store *st, struct store_waiter *w)
{
	struct store_waiter **p;

	if (w == NULL)
		return;
	for (struct inflight *in = st->inflight; in != NULL; in = in->next) {
		if (in != w->in)
			continue;
		for (p = &in->waiters; *p != NULL; p = &(*p)->next) {
			if (*p == w) {
				*p = w->next;
				free(w);
				return;
			}
		}
	}
}

size_t store_inflight_waiters(struct store *st, enum store_kind kind, const char *key)
{
	struct inflight **p = inflight_find(st, kind, key);
	size_t n = 0;

	if (p == NULL)
		return 0;
	for (struct store_waiter *w = (*p)->waiters; w != NULL; w = w->next)
		n++;
	return n;
}

/* ---- images: helpers ---------------------------------------------------------- */

/* 1: repo digest, 0: tag, -1: invalid */
static int name_kind(const char *n)
{
	size_t len = strnlen(n, STORE_NAME_MAX + 1);
	const char *at, *slash, *colon;

	if (len == 0 || len > STORE_NAME_MAX)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (n[i] <= 0x20 || n[i] >= 0x7f)
			return -1;
	at = strchr(n, '@');
	if (at != NULL)
		return at > n && mf_valid_digest(at + 1) && strchr(at + 1, '@') == NULL ? 1 : -1;
	slash = strrchr(n, '/');
	colon = strrchr(n, ':');
	if (colon == NULL || (slash != NULL && colon < slash) || colon == n || colon[1] == '\0')
		return -1;
	return 0;
}

static bool valid_holder(const char *h)
{
	size_t n = h ? strnlen(h, HOLDER_MAX + 1) : 0;

	if (n == 0 || n > HOLDER_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

void store_image_free(struct store_image *img)
{
	if (img == NULL)
		return;
	free(img->user);
	free(img->config);
	free(img->manifest);
	free(img->verdict);
	for (size_t i = 0; i < img->nnames; i++)
		free(img->names[i]);
	free(img->names);
	free(img->layers);
	memset(img, 0, sizeof *img);
}

static int exec1(struct store *st, const char *sql, crisp_err_t *err)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_err(st, err, sql);
	return 0;
}

/* Prepare, bind text params (NULL-terminated list), step once; returns the sqlite rc. */
static int run(struct store *st, const char *sql, const char *a, const char *b, const char *c)
{
	sqlite3_stmt *q;
	int rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
		return SQLITE_ERROR;
	if (a)
		sqlite3_bind_text(q, 1, a, -1, SQLITE_STATIC);
	if (b)
		sqlite3_bind_text(q, 2, b, -1, SQLITE_STATIC);
	if (c)
		sqlite3_bind_text(q, 3, c, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	return rc;
}

static int validate_image(struct store *st, const struct store_image *img, crisp_err_t *err)
{
	char prev[MF_DIGEST_SIZE] = "", want[MF_DIGEST_SIZE];

	if (check_digest(img->id, "image id", err) < 0 ||
	    check_digest(img->manifest_digest, "manifest digest", err) < 0)
		return -1;
	if (img->config == NULL || img->config_len == 0 || img->config_len > MF_MAX_CONFIG_SIZE)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: config missing or too big");
	if (img->manifest_len > MF_MAX_MANIFEST_SIZE)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: manifest too big");
	if (img->verdict && strlen(img->verdict) > STORE_MAX_VERDICT)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: verdict too long");
	if (img->user && strlen(img->user) > MF_MAX_ARG_LEN)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: user too long");
	if (img->nnames > STORE_MAX_NAMES || img->nlayers > STORE_MAX_LAYERS)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: too many names or layers");
	if (img->size > INT64_MAX)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: size out of range");
	if (img->sig_ref != NULL) {
		if (strlen(img->sig_ref) > STORE_NAME_MAX || img->sig_digest == NULL ||
		    check_digest(img->sig_digest, "signed digest", err) < 0)
			return err && err->code ? -1
						: crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
							      "store: bad signature reference");
		if (img->nsigs > STORE_MAX_SIGS || (img->nsigs && img->sigs == NULL))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: too many signatures");
		for (size_t i = 0; i < img->nsigs; i++) {
			const struct store_sig *g = &img->sigs[i];
			if ((g->kind != STORE_SIG_SIMPLE && g->kind != STORE_SIG_SIGSTORE) ||
			    g->data == NULL || g->len == 0 || g->len > STORE_SIG_MAX ||
			    g->sig_len > STORE_SIG_MAX || (g->sig_len && g->sig == NULL))
				return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
						   "store: signature %zu malformed", i);
		}
	}
	for (size_t i = 0; i < img->nnames; i++)
		if (img->names[i] == NULL || name_kind(img->names[i]) < 0)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "store: names[%zu]: not a tag or repo digest reference", i);
	for (size_t i = 0; i < img->nlayers; i++) {
		const struct store_layer *l = &img->layers[i];

		if (store_chain_id(i ? prev : NULL, l->diffid, want, err) < 0)
			return crisp_error_wrap(err, "layers[%zu]", i);
		if (strcmp(want, l->chainid) != 0)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "store: layers[%zu]: wrong chain id", i);
		if (l->blob[0] != '\0' && check_digest(l->blob, "layer blob", err) < 0)
			return -1;
		if (l->size > INT64_MAX)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: size out of range");
		if (l->blob[0] != '\0' && store_blob_has(st, l->blob, NULL, err) != 1)
			return err && err->code ? -1
						: crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
							      "store: blob %s is not committed", l->blob);
		memcpy(prev, l->chainid, sizeof prev);
	}
	return 0;
}

int store_image_record(struct store *st, const struct store_image *img, crisp_err_t *err)
{
	sqlite3_stmt *q = NULL;
	int exists, rc;
	int64_t now = img->pulled_at ? img->pulled_at : (int64_t)time(NULL);

	if (err)
		crisp_error_clear(err);
	if (validate_image(st, img, err) < 0)
		return -1;
	if (exec1(st, "BEGIN IMMEDIATE;", err) < 0)
		return -1;
	rc = run(st, "SELECT 1 FROM images WHERE id = ?1", img->id, NULL, NULL);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto dberr;
	exists = rc == SQLITE_ROW;
	if (sqlite3_prepare_v2(st->db,
			       exists ? "UPDATE images SET manifest_digest=?2, size=?3, user=?4,"
					" config=?5, manifest=?6, pulled_at=?7, verdict=?8 WHERE id=?1"
				      : "INSERT INTO images(id, manifest_digest, size, user, config,"
					" manifest, pulled_at, verdict) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
			       -1, &q, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(q, 1, img->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, img->manifest_digest, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, (int64_t)img->size);
	if (img->user)
		sqlite3_bind_text(q, 4, img->user, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 5, img->config, (int)img->config_len, SQLITE_STATIC);
	if (img->manifest)
		sqlite3_bind_blob(q, 6, img->manifest, (int)img->manifest_len, SQLITE_STATIC);
	sqlite3_bind_int64(q, 7, now);
	if (img->verdict)
		sqlite3_bind_text(q, 8, img->verdict, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE)
		goto dberr;
	sqlite3_finalize(q);
	q = NULL;

	/* names: a name belongs to one image, the newest claim wins */
	if (sqlite3_prepare_v2(st->db,
			       "INSERT INTO names(name, image_id, is_digest) VALUES(?1, ?2, ?3)"
			       " ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
			       -1, &q, NULL) != SQLITE_OK)
		goto dberr;
	for (size_t i = 0; i < img->nnames; i++) {
		sqlite3_reset(q);
		sqlite3_bind_text(q, 1, img->names[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, img->id, -1, SQLITE_STATIC);
		sqlite3_bind_int(q, 3, name_kind(img->names[i]));
		if (sqlite3_step(q) != SQLITE_DONE)
			goto dberr;
	}
	sqlite3_finalize(q);
	q = NULL;

	if (!exists) {
		for (size_t i = 0; i < img->nlayers; i++) {
			const struct store_layer *l = &img->layers[i];

			if (sqlite3_prepare_v2(st->db,
					       "INSERT INTO layers(chainid, diffid, size, refcount)"
					       " VALUES(?1, ?2, ?3, 1) ON CONFLICT(chainid)"
					       " DO UPDATE SET refcount = refcount + 1"
					       " WHERE diffid = excluded.diffid",
					       -1, &q, NULL) != SQLITE_OK)
				goto dberr;
			sqlite3_bind_text(q, 1, l->chainid, -1, SQLITE_STATIC);
			sqlite3_bind_text(q, 2, l->diffid, -1, SQLITE_STATIC);
			sqlite3_bind_int64(q, 3, (int64_t)l->size);
			if (sqlite3_step(q) != SQLITE_DONE)
				goto dberr;
			sqlite3_finalize(q);
			q = NULL;
			if (sqlite3_changes(st->db) != 1) {
				crisp_error(err, CRISP_INTERNAL, 0, "store: layer %s: diff id differs",
					    l->chainid);
				goto rollback;
			}
			if (sqlite3_prepare_v2(st->db,
					       "INSERT INTO image_layers(image_id, idx, chainid, blob)"
					       " VALUES(?1, ?2, ?3, ?4)",
					       -1, &q, NULL) != SQLITE_OK)
				goto dberr;
			sqlite3_bind_text(q, 1, img->id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(q, 2, (int64_t)i);
			sqlite3_bind_text(q, 3, l->chainid, -1, SQLITE_STATIC);
			sqlite3_bind_text(q, 4, l->blob, -1, SQLITE_STATIC);
			rc = sqlite3_step(q);
			sqlite3_finalize(q);
			q = NULL;
			if (rc != SQLITE_DONE)
				goto dberr;
			if (l->blob[0] != '\0' &&
			    run(st, "INSERT OR IGNORE INTO image_blobs(image_id, digest) VALUES(?1, ?2)",
				img->id, l->blob, NULL) != SQLITE_DONE)
				goto dberr;
		}
	}
	/* The reference and the signatures the policy decided on. */
	if (img->sig_ref != NULL) {
		if (run(st, "INSERT INTO image_pulls(ref, image_id, digest) VALUES(?1, ?2, ?3)"
			    " ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id,"
			    " digest = excluded.digest",
			img->sig_ref, img->id, img->sig_digest) != SQLITE_DONE ||
		    run(st, "DELETE FROM image_sigs WHERE ref = ?1", img->sig_ref, NULL, NULL) !=
			    SQLITE_DONE)
			goto dberr;
		if (img->nsigs &&
		    sqlite3_prepare_v2(st->db,
				       "INSERT INTO image_sigs(ref, idx, kind, data, sig)"
				       " VALUES(?1, ?2, ?3, ?4, ?5)",
				       -1, &q, NULL) != SQLITE_OK)
			goto dberr;
		for (size_t i = 0; i < img->nsigs; i++) {
			const struct store_sig *g = &img->sigs[i];

			sqlite3_reset(q);
			sqlite3_bind_text(q, 1, img->sig_ref, -1, SQLITE_STATIC);
			sqlite3_bind_int64(q, 2, (int64_t)i);
			sqlite3_bind_int(q, 3, g->kind);
			sqlite3_bind_blob(q, 4, g->data, (int)g->len, SQLITE_STATIC);
			if (g->sig_len)
				sqlite3_bind_blob(q, 5, g->sig, (int)g->sig_len, SQLITE_STATIC);
			else
				sqlite3_bind_null(q, 5);
			if (sqlite3_step(q) != SQLITE_DONE)
				goto dberr;
		}
		if (q) {
			sqlite3_finalize(q);
			q = NULL;
		}
	}
	/* The config blob, when the pull kept it: removed with the image. */
	if (store_blob_has(st, img->id, NULL, NULL) == 1 &&
	    run(st, "INSERT OR IGNORE INTO image_blobs(image_id, digest) VALUES(?1, ?2)", img->id,
		img->id, NULL) != SQLITE_DONE)
		goto dberr;
	hook(st, "record:before-commit");
	if (exec1(st, "COMMIT;", err) < 0)
		goto rollback;
	return 0;
dberr:
	db_err(st, err, "record image");
rollback:
	if (q)
		sqlite3_finalize(q);
	sqlite3_exec(st->db, "ROLLBACK;", NULL, NULL, NULL);
	return -1;
}

/* ---- images: reading ------------------------------------------------------------ */

static char *col_strdup(sqlite3_stmt *q, int i);

void store_pulled_free(struct store_pulled *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < v[i].nsigs; j++) {
			free(v[i].sigs[j].data);
			free(v[i].sigs[j].sig);
		}
		free(v[i].sigs);
		free(v[i].ref);
	}
	free(v);
}

static int load_sigs(struct store *st, struct store_pulled *p, crisp_err_t *err)
{
	sqlite3_stmt *q = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db,
			       "SELECT kind, data, sig FROM image_sigs WHERE ref = ?1 ORDER BY idx",
			       -1, &q, NULL) != SQLITE_OK)
		return db_err(st, err, "signatures");
	sqlite3_bind_text(q, 1, p->ref, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_sig *g;
		const void *d = sqlite3_column_blob(q, 1);
		size_t dl = (size_t)sqlite3_column_bytes(q, 1);
		const void *s = sqlite3_column_blob(q, 2);
		size_t sl = (size_t)sqlite3_column_bytes(q, 2);
		void *nv;

		if (p->nsigs >= STORE_MAX_SIGS || dl == 0 || dl > STORE_SIG_MAX || sl > STORE_SIG_MAX) {
			sqlite3_finalize(q);
			return crisp_error(err, CRISP_DATA_LOSS, 0, "store: signatures of %s are damaged",
					   p->ref);
		}
		nv = realloc(p->sigs, (p->nsigs + 1) * sizeof *p->sigs);
		if (nv == NULL)
			goto oom;
		p->sigs = nv;
		g = &p->sigs[p->nsigs];
		memset(g, 0, sizeof *g);
		g->kind = sqlite3_column_int(q, 0);
		g->data = malloc(dl);
		if (g->data == NULL)
			goto oom;
		memcpy(g->data, d, dl);
		g->len = dl;
		p->nsigs++;
		if (sl) {
			g->sig = malloc(sl);
			if (g->sig == NULL)
				goto oom;
			memcpy(g->sig, s, sl);
			g->sig_len = sl;
		}
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : db_err(st, err, "signatures");
oom:
	sqlite3_finalize(q);
	return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "store: signatures");
}

int store_image_sigs(struct store *st, const char *image_id, struct store_pulled **out, size_t *n,
		     crisp_err_t *err)
{
	sqlite3_stmt *q = NULL;
	struct store_pulled *v = NULL;
	size_t k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (check_digest(image_id, "image id", err) < 0)
		return -1;
	if (sqlite3_prepare_v2(st->db,
			       "SELECT ref, digest FROM image_pulls WHERE image_id = ?1 ORDER BY ref",
			       -1, &q, NULL) != SQLITE_OK)
		return db_err(st, err, "pulls");
	sqlite3_bind_text(q, 1, image_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		void *nv = realloc(v, (k + 1) * sizeof *v);
		const unsigned char *d = sqlite3_column_text(q, 1);

		if (nv == NULL)
			goto oom;
		v = nv;
		memset(&v[k], 0, sizeof v[k]);
		v[k].ref = col_strdup(q, 0);
		k++;
		if (v[k - 1].ref == NULL)
			goto oom;
		snprintf(v[k - 1].digest, sizeof v[k - 1].digest, "%s", d ? (const char *)d : "");
	}
	sqlite3_finalize(q);
	q = NULL;
	if (rc != SQLITE_DONE) {
		store_pulled_free(v, k);
		return db_err(st, err, "pulls");
	}
	for (size_t i = 0; i < k; i++)
		if (load_sigs(st, &v[i], err) < 0) {
			store_pulled_free(v, k);
			return -1;
		}
	*out = v;
	*n = k;
	return 0;
oom:
	if (q)
		sqlite3_finalize(q);
	store_pulled_free(v, k);
	return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "store: pulls");
}

static char *col_strdup(sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);

	return t ? strdup((const char *)t) : NULL;
}

static uint8_t *col_blobdup(sqlite3_stmt *q, int i, size_t *len)
{
	const void *b = sqlite3_column_blob(q, i);
	int n = sqlite3_column_bytes(q, i);
	uint8_t *p;

	*len = 0;
	if (b == NULL)
		return NULL;
	p = malloc(n ? (size_t)n : 1);
	if (p == NULL)
		return NULL;
	memcpy(p, b, (size_t)n);
	*len = (size_t)n;
	return p;
}

/* Fill out (zeroed by the caller) for id; with_docs: config + manifest too. */
static int load_image(struct store *st, const char *id, bool with_docs, struct store_image *out,
		      crisp_err_t *err)
{
	sqlite3_stmt *q = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db,
			       "SELECT manifest_digest, size, user, pulled_at, verdict,"
			       " (SELECT COUNT(*) FROM pins WHERE pins.image_id = images.id),"
			       " config, manifest FROM images WHERE id = ?1",
			       -1, &q, NULL) != SQLITE_OK)
		return db_err(st, err, "prepare");
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(q);
		if (rc == SQLITE_DONE)
			return crisp_error(err, CRISP_NOT_FOUND, 0, "store: image %s not found", id);
		return db_err(st, err, "load image");
	}
	crisp_strlcpy(out->id, id, sizeof out->id);
	crisp_strlcpy(out->manifest_digest, (const char *)sqlite3_column_text(q, 0),
		      sizeof out->manifest_digest);
	out->size = (uint64_t)sqlite3_column_int64(q, 1);
	out->pulled_at = sqlite3_column_int64(q, 3);
	out->pins = (uint32_t)sqlite3_column_int64(q, 5);
	if ((sqlite3_column_type(q, 2) != SQLITE_NULL && (out->user = col_strdup(q, 2)) == NULL) ||
	    (sqlite3_column_type(q, 4) != SQLITE_NULL && (out->verdict = col_strdup(q, 4)) == NULL))
		goto oom;
	if (with_docs) {
		if ((out->config = col_blobdup(q, 6, &out->config_len)) == NULL)
			goto oom;
		if (sqlite3_column_type(q, 7) != SQLITE_NULL &&
		    (out->manifest = col_blobdup(q, 7, &out->manifest_len)) == NULL)
			goto oom;
	}
	sqlite3_finalize(q);

	if (sqlite3_prepare_v2(st->db,
			       "SELECT name FROM names WHERE image_id = ?1 ORDER BY is_digest, name",
			       -1, &q, NULL) != SQLITE_OK)
		return db_err(st, err, "prepare");
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		char **nv;

		if (out->nnames >= STORE_MAX_NAMES)
			break;
		nv = realloc(out->names, (out->nnames + 1) * sizeof *nv);
		if (nv == NULL)
			goto oom;
		out->names = nv;
		if ((nv[out->nnames] = col_strdup(q, 0)) == NULL)
			goto oom;
		out->nnames++;
	}
	sqlite3_finalize(q);

	if (sqlite3_prepare_v2(st->db,
			       "SELECT il.chainid, l.diffid, il.blob, l.size FROM image_layers il"
			       " JOIN layers l ON l.chainid = il.chainid WHERE il.image_id = ?1"
			       " ORDER BY il.idx",
			       -1, &q, NULL) != SQLITE_OK)
		return db_err(st, err, "prepare");
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_layer *lv, *l;

		if (out->nlayers >= STORE_MAX_LAYERS)
			break;
		lv = realloc(out->layers, (out->nlayers + 1) * sizeof *lv);
		if (lv == NULL)
			goto oom;
		out->layers = lv;
		l = &lv[out->nlayers++];
		memset(l, 0, sizeof *l);
		crisp_strlcpy(l->chainid, (const char *)sqlite3_column_text(q, 0), sizeof l->chainid);
		crisp_strlcpy(l->diffid, (const char *)sqlite3_column_text(q, 1), sizeof l->diffid);
		crisp_strlcpy(l->blob, (const char *)sqlite3_column_text(q, 2), sizeof l->blob);
		l->size = (uint64_t)sqlite3_column_int64(q, 3);
	}
	sqlite3_finalize(q);
	return 0;
oom:
	sqlite3_finalize(q);
	store_image_free(out);
	return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "store: alloc");
}

/* Resolve ref to a full id (see store.h for the order). */
static int resolve(struct store *st, const char *ref, char id[MF_DIGEST_SIZE], bool *by_tag,
		   crisp_err_t *err)
{
	sqlite3_stmt *q;
	size_t len;
	const char *hex;
	int rc, n = 0;

	*by_tag = false;
	if (ref == NULL || (len = strnlen(ref, STORE_NAME_MAX + 1)) == 0 || len > STORE_NAME_MAX)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: bad image reference");
	hex = strncmp(ref, DIGEST_PREFIX, DIGEST_PREFIX_LEN) == 0 ? ref + DIGEST_PREFIX_LEN : ref;
	if (is_hex_name(hex)) {
		snprintf(id, MF_DIGEST_SIZE, DIGEST_PREFIX "%s", hex);
		rc = run(st, "SELECT 1 FROM images WHERE id = ?1", id, NULL, NULL);
		if (rc == SQLITE_ROW)
			return 0;
		if (rc != SQLITE_DONE)
			return db_err(st, err, "lookup");
		return crisp_error(err, CRISP_NOT_FOUND, 0, "store: image %s not found", ref);
	}
	if (sqlite3_prepare_v2(st->db, "SELECT image_id, is_digest FROM names WHERE name = ?1", -1,
			       &q, NULL) != SQLITE_OK)
		return db_err(st, err, "prepare");
	sqlite3_bind_text(q, 1, ref, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		crisp_strlcpy(id, (const char *)sqlite3_column_text(q, 0), MF_DIGEST_SIZE);
		*by_tag = sqlite3_column_int(q, 1) == 0;
		sqlite3_finalize(q);
		return 0;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return db_err(st, err, "lookup name");
	len = strlen(hex);
	if (len >= STORE_MIN_PREFIX && len < HEX_LEN && is_hex(hex, len)) {
		char pat[MF_DIGEST_SIZE + 1];

		snprintf(pat, sizeof pat, DIGEST_PREFIX "%s%%", hex); /* hex: no LIKE wildcards */
		if (sqlite3_prepare_v2(st->db, "SELECT id FROM images WHERE id LIKE ?1 LIMIT 2", -1,
				       &q, NULL) != SQLITE_OK)
			return db_err(st, err, "prepare");
		sqlite3_bind_text(q, 1, pat, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			if (n++ == 0)
				crisp_strlcpy(id, (const char *)sqlite3_column_text(q, 0),
					      MF_DIGEST_SIZE);
		}
		sqlite3_finalize(q);
		if (rc != SQLITE_DONE)
			return db_err(st, err, "lookup prefix");
		if (n == 1)
			return 0;
		if (n > 1)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "store: image id prefix %s is ambiguous", ref);
	}
	return crisp_error(err, CRISP_NOT_FOUND, 0, "store: image %s not found", ref);
}

int store_image_lookup(struct store *st, const char *ref, struct store_image *out,
		       crisp_err_t *err)
{
	char id[MF_DIGEST_SIZE];
	bool by_tag;

	memset(out, 0, sizeof *out);
	if (resolve(st, ref, id, &by_tag, err) < 0)
		return -1;
	return load_image(st, id, true, out, err);
}

int store_image_list(struct store *st, store_image_cb cb, void *arg, crisp_err_t *err)
{
	sqlite3_stmt *q;
	char (*ids)[MF_DIGEST_SIZE] = NULL;
	size_t n = 0, cap = 0;
	int rc;

	/* Collect ids first: the callback may call back into the store. */
	if (sqlite3_prepare_v2(st->db, "SELECT id FROM images ORDER BY pulled_at, id", -1, &q,
			       NULL) != SQLITE_OK)
		return db_err(st, err, "prepare");
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			void *p = realloc(ids, nc * sizeof *ids);

			if (p == NULL) {
				sqlite3_finalize(q);
				free(ids);
				return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "store: alloc");
			}
			ids = p;
			cap = nc;
		}
		crisp_strlcpy(ids[n++], (const char *)sqlite3_column_text(q, 0), MF_DIGEST_SIZE);
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE) {
		free(ids);
		return db_err(st, err, "list");
	}
	for (size_t i = 0; i < n; i++) {
		struct store_image img = { 0 };
		int stop;

		if (load_image(st, ids[i], false, &img, err) < 0) {
			if (err && err->code == CRISP_NOT_FOUND)
				continue; /* removed by an earlier callback */
			free(ids);
			return -1;
		}
		stop = cb(arg, &img);
		store_image_free(&img);
		if (stop)
			break;
	}
	free(ids);
	if (err)
		crisp_error_clear(err);
	return 0;
}

/* ---- removal ------------------------------------------------------------------- */

struct doomed {
	char (*v)[MF_DIGEST_SIZE];
	size_t n;
};

static int collect(struct store *st, const char *sql, const char *id, struct doomed *d)
{
	sqlite3_stmt *q;
	int rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		void *p = realloc(d->v, (d->n + 1) * sizeof *d->v);

		if (p == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		d->v = p;
		crisp_strlcpy(d->v[d->n++], (const char *)sqlite3_column_text(q, 0), MF_DIGEST_SIZE);
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_image_remove(struct store *st, const char *ref, bool *removed,
		       char (**released)[MF_DIGEST_SIZE], size_t *nreleased, crisp_err_t *err)
{
	char id[MF_DIGEST_SIZE];
	bool by_tag;
	struct doomed layers = { 0 }, blobs = { 0 };
	int rc;

	if (removed)
		*removed = false;
	if (released)
		*released = NULL;
	if (nreleased)
		*nreleased = 0;
	if (resolve(st, ref, id, &by_tag, err) < 0)
		return -1;
	if (exec1(st, "BEGIN IMMEDIATE;", err) < 0)
		return -1;
	if (by_tag) {
		if (run(st, "DELETE FROM names WHERE name = ?1", ref, NULL, NULL) != SQLITE_DONE)
			goto dberr;
		rc = run(st, "SELECT 1 FROM names WHERE image_id = ?1 AND is_digest = 0", id, NULL,
			 NULL);
		if (rc == SQLITE_ROW) /* other tags remain: untag only */
			goto commit;
		if (rc != SQLITE_DONE)
			goto dberr;
	}
	rc = run(st, "SELECT 1 FROM pins WHERE image_id = ?1", id, NULL, NULL);
	if (rc == SQLITE_ROW) {
		crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
			    "store: image %s is in use by a container", id);
		goto rollback;
	}
	if (rc != SQLITE_DONE)
		goto dberr;
	if (run(st, "UPDATE layers SET refcount = refcount - 1 WHERE chainid IN"
		    " (SELECT chainid FROM image_layers WHERE image_id = ?1)",
		id, NULL, NULL) != SQLITE_DONE)
		goto dberr;
	if (collect(st, "SELECT digest FROM image_blobs WHERE image_id = ?1", id, &blobs) < 0)
		goto dberr;
	if (run(st, "DELETE FROM images WHERE id = ?1", id, NULL, NULL) != SQLITE_DONE)
		goto dberr;
	if (collect(st, "SELECT chainid FROM layers WHERE refcount <= 0", id, &layers) < 0 ||
	    run(st, "DELETE FROM layers WHERE refcount <= 0", NULL, NULL, NULL) != SQLITE_DONE)
		goto dberr;
	if (removed)
		*removed = true;
commit:
	if (exec1(st, "COMMIT;", err) < 0)
		goto rollback;
	hook(st, "remove:after-commit");
	/* The layers themselves are execd's: the caller tells it. */
	if (released && nreleased) {
		*released = layers.v;
		*nreleased = layers.n;
	} else {
		free(layers.v);
	}
	/* Blobs of the removed image that no other image references.  Only
	 * these: a blob a running pull committed but has not recorded yet
	 * is left alone (a full GC here would take it). */
	for (size_t i = 0; i < blobs.n; i++) {
		crisp_err_t e = CRISP_ERR_INIT;

		if (!inflight_has(st, STORE_KIND_BLOB, blobs.v[i]))
			store_blob_remove(st, blobs.v[i], &e);
	}
	free(blobs.v);
	return 0;
dberr:
	db_err(st, err, "remove image");
rollback:
	free(layers.v);
	free(blobs.v);
	sqlite3_exec(st->db, "ROLLBACK;", NULL, NULL, NULL);
	return -1;
}

/* ---- pins and layer chains ------------------------------------------------------ */

int store_image_pin(struct store *st, const char *image_id, const char *holder, crisp_err_t *err)
{
	int rc;

	if (check_digest(image_id, "image id", err) < 0)
		return -1;
	if (!valid_holder(holder))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: bad pin holder");
	/* written, ordered, flushed with the next flushed commit */
	(void)sqlite3_exec(st->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
	rc = run(st, "INSERT OR IGNORE INTO pins(image_id, holder) VALUES(?1, ?2)", image_id,
		 holder, NULL);
	(void)sqlite3_exec(st->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY || rc == SQLITE_CONSTRAINT)
		return crisp_error(err, CRISP_NOT_FOUND, 0, "store: image %s not found", image_id);
	if (rc != SQLITE_DONE)
		return db_err(st, err, "pin");
	return 0;
}

int store_image_unpin(struct store *st, const char *image_id, const char *holder,
		      crisp_err_t *err)
{
	if (check_digest(image_id, "image id", err) < 0)
		return -1;
	if (!valid_holder(holder))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: bad pin holder");
	if (run(st, "DELETE FROM pins WHERE image_id = ?1 AND holder = ?2", image_id, holder,
		NULL) != SQLITE_DONE)
		return db_err(st, err, "unpin");
	return 0;
}

int store_image_unpin_all(struct store *st, const char *holder, crisp_err_t *err)
{
	if (!valid_holder(holder))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: bad pin holder");
	if (run(st, "DELETE FROM pins WHERE holder = ?1", holder, NULL, NULL) != SQLITE_DONE)
		return db_err(st, err, "unpin");
	return 0;
}

static int pin_count(struct store *st)
{
	sqlite3_stmt *q = NULL;
	int n = -1;

	if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM pins", -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	return n;
}

int store_pins_sync(struct store *st, const char *const *holders, const char *const *image_ids, size_t n,
		    size_t *made, size_t *dropped, crisp_err_t *err)
{
	sqlite3_stmt *q = NULL;
	int before = 0, after = 0, gone = 0;

	for (size_t i = 0; i < n; i++) {
		if (!valid_holder(holders[i]))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "store: bad pin holder at %zu", i);
		if (check_digest(image_ids[i], "image id", err) < 0)
			return -1;
	}
	if (exec1(st, "BEGIN IMMEDIATE;", err) < 0)
		return -1;
	if (exec1(st, "CREATE TEMP TABLE IF NOT EXISTS want(holder TEXT NOT NULL, image_id TEXT NOT NULL);"
		      "DELETE FROM temp.want;",
		  err) < 0)
		goto fail;
	if (sqlite3_prepare_v2(st->db, "INSERT INTO temp.want(holder, image_id) VALUES(?1, ?2)", -1, &q, NULL) !=
	    SQLITE_OK)
		goto dberr;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(q);
		sqlite3_bind_text(q, 1, holders[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, image_ids[i], -1, SQLITE_STATIC);
		if (sqlite3_step(q) != SQLITE_DONE)
			goto dberr;
	}
	sqlite3_finalize(q);
	q = NULL;
	if ((before = pin_count(st)) < 0)
		goto dberr;
	if (exec1(st, "DELETE FROM pins WHERE holder NOT IN (SELECT holder FROM temp.want);", err) < 0)
		goto fail;
	gone = sqlite3_changes(st->db);
	if (exec1(st, "INSERT OR IGNORE INTO pins(image_id, holder) SELECT w.image_id, w.holder FROM temp.want w"
		      " WHERE w.image_id IN (SELECT id FROM images);"
		      "DELETE FROM temp.want;",
		  err) < 0)
		goto fail;
	if ((after = pin_count(st)) < 0)
		goto dberr;
	if (exec1(st, "COMMIT;", err) < 0)
		goto fail;
	if (dropped)
		*dropped = (size_t)gone;
	if (made)
		*made = (size_t)(after - (before - gone));
	return 0;
dberr:
	db_err(st, err, "pins sync");
fail:
	if (q)
		sqlite3_finalize(q);
	sqlite3_exec(st->db, "ROLLBACK;", NULL, NULL, NULL);
	return -1;
}

int store_layers_of(struct store *st, const char *image_id, char (*chainids)[MF_DIGEST_SIZE],
		    size_t max, size_t *n, crisp_err_t *err)
{
	sqlite3_stmt *q;
	int rc;

	*n = 0;
	if (check_digest(image_id, "image id", err) < 0)
		return -1;
	rc = run(st, "SELECT 1 FROM images WHERE id = ?1", image_id, NULL, NULL);
	if (rc == SQLITE_DONE)
		return crisp_error(err, CRISP_NOT_FOUND, 0, "store: image %s not found", image_id);
	if (rc != SQLITE_ROW)
		return db_err(st, err, "layers of");
	if (sqlite3_prepare_v2(st->db,
			       "SELECT chainid FROM image_layers WHERE image_id = ?1 ORDER BY idx", -1,
			       &q, NULL) != SQLITE_OK)
		return db_err(st, err, "prepare");
	sqlite3_bind_text(q, 1, image_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(q, 0);

		if (*n >= max) {
			sqlite3_finalize(q);
			return crisp_error(err, CRISP_OUT_OF_RANGE, 0, "store: too many layers");
		}
		crisp_strlcpy(chainids[*n], c, MF_DIGEST_SIZE);
		(*n)++;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return db_err(st, err, "layers of");
	return 0;
}
