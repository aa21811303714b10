/*
 * imaged: the image store.  Content-addressed blobs, the chain ids of the
 * layers images reference, and durable image records in SQLite.  The
 * unpacked layers themselves are execd's (execd/layers.h): imaged, an
 * unprivileged user, can neither create nor delete the root-owned trees.
 *
 * Layout below the store directory (`<root>/images`, owned by imaged):
 *
 *   lock                    flock(LOCK_EX) held while a store is open: one
 *                           writer, so recovery/GC at open cannot race a pull
 *   images.db (+ -wal/-shm) SQLite: WAL, synchronous=FULL, foreign_keys=ON,
 *                           temp_store=MEMORY (no files outside the store)
 *   blobs/sha256/<hex>      complete, verified blobs only
 *   tmp/blob-<random>       a blob being downloaded
 *
 * Every access is relative to directory fds opened at store_open() with
 * O_NOFOLLOW; every name built from outside data is a validated
 * "sha256:<64 lowercase hex>" (mf_valid_digest) reduced to its hex.  No
 * /proc (imaged's sandbox denies it): blobs are written to tmp/ files,
 * fsync'd, renamed into place (renameat2) and the directory fsync'd.
 * Landlock: the store's ruleset must allow LANDLOCK_ACCESS_FS_REFER, since
 * tmp/ -> blobs/sha256/ is a cross-directory rename.
 *
 * Visibility and crash consistency.  An image is listed only once its row
 * exists; the row, its names, its layer references and its blob references
 * are written in ONE transaction (store_image_record), after every blob it
 * names was committed (the record checks they exist) and every layer was
 * unpacked by execd (the caller's duty).  A blob on disk without a row is
 * invisible and collected.  Removal commits
 * the database first and deletes files afterwards, so a crash in between
 * leaves only unreferenced files, which the next open collects.
 *
 * Garbage collection rule (store_open, and store_gc on demand):
 *   1. everything in tmp/ is removed (the lock proves no other process is
 *      writing; at open nothing of ours is either);
 *   2. blobs/sha256/<hex> that no image references (image_blobs) are
 *      removed when their ctime is older than `gc_grace_s` seconds before
 *      now, and they are not in flight in this process.  Default grace 0:
 *      at open, everything a dead pull left is removed, and a resumed pull
 *      fetches again;
 *   3. anything else in blobs/sha256/ (a name that is not 64 hex, a
 *      symlink) is removed too: the store is imaged's alone;
 *   4. layer refcounts are recomputed from image_layers (rows at 0 go).
 *
 * Names.  Stored exactly as given: the caller normalises references first
 * (docker.io/library/busybox:latest, docker.io/library/busybox@sha256:..).
 * A name containing '@' is a repo digest ("<repo>@sha256:<hex>"), any
 * other must end in ":<tag>" after its last '/'.  A name belongs to one
 * image: recording an image that claims a name another image holds moves
 * it (the tag moves to the newest image).  An image that loses its last
 * name stays, untagged (listed with no names), until it is removed, as with
 * containerd and CRI-O (kubelet's image GC removes it by id).
 *
 * Lookup (store_image_lookup), in this order:
 *   1. "sha256:<64 hex>" or "<64 hex>": the image id (config digest);
 *   2. an exact name (tag or repo digest);
 *   3. an id prefix: "[sha256:]<hex>" with STORE_MIN_PREFIX (3) to 63 hex
 *      digits; two matches -> INVALID_ARGUMENT "ambiguous".
 *   Else NOT_FOUND.
 *
 * Removal (store_image_remove), CRI RemoveImage: containerd deletes the
 * image with every name whatever ref named it; CRI-O and Docker (`rmi tag`)
 * only untag while other tags remain.  crisp follows CRI-O/Docker, which
 * is the less destructive for `crictl rmi <tag>` and identical for
 * kubelet (which always passes the id):
 *   - by tag: the tag is removed; if the image keeps another tag, that is
 *     all (allowed even while pinned);
 *   - by id, prefix, repo digest, or a tag that was the last tag: the image
 *     with all its names is removed; refused with FAILED_PRECONDITION while
 *     pinned (nothing changes, not even the tag).
 *   Blobs no image references any more are deleted from disk after the
 *   transaction commits; the chain ids whose refcount dropped to 0 are
 *   handed to the caller, which releases them to execd (LAYER_RELEASE).
 *
 * Pins.  A pin is (image id, holder), holder an opaque id chosen by execd
 * (the container id): idempotent and durable, so execd can reconcile after
 * a restart (store_image_unpin_all(holder)) instead of counting.
 *
 * In-flight table.  Pulls run on one event loop.  Before downloading a blob
 * (or unpacking a layer), call store_inflight_acquire(): the first caller
 * becomes the owner and does the work, later callers are queued with a
 * callback that store_inflight_release() calls, with the owner's result, once
 * the owner finishes.  Callbacks run from inside store_inflight_release(),
 * after the entry has left the table (a waiter may acquire again from its
 * callback, e.g. to retry after a failure).
 *
 * Bounds: names per image <= STORE_MAX_NAMES, layers per image <=
 * STORE_MAX_LAYERS (= MF_MAX_LAYERS), a name <= STORE_NAME_MAX bytes of
 * visible ASCII, config and manifest as bounded by manifest.h, verdict <=
 * STORE_MAX_VERDICT bytes.
 *
 * Errors (common/err.h): INVALID_ARGUMENT for malformed arguments, NOT_FOUND,
 * DATA_LOSS for a blob/layer that does not match its digest/size/diff id,
 * FAILED_PRECONDITION for a pinned image or a record whose blobs/layers are
 * missing, UNAVAILABLE when another process holds the store, INTERNAL for
 * I/O and SQLite errors, RESOURCE_EXHAUSTED for memory.
 *
 * Not thread safe: one store per process, used from the event loop's thread.
 * No function here logs.
 */
#ifndef CRISP_IMAGED_STORE_H
#define CRISP_IMAGED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "imaged/manifest.h"

#define STORE_MAX_NAMES 256
#define STORE_MAX_LAYERS MF_MAX_LAYERS
#define STORE_NAME_MAX 1024    /* bytes of one name, without the NUL */
#define STORE_MAX_VERDICT (64u * 1024)
#define STORE_MIN_PREFIX 3     /* hex digits of an id prefix */
#define STORE_TMPNAME_SIZE 64  /* tmp/blob-<32 hex> */
#define STORE_RELPATH_SIZE 96  /* "blobs/sha256/<hex>" */

struct store;

struct store_options {
	unsigned gc_grace_s; /* [0] see the GC rule above */
	/* Removes parent/name and its tree ([unpack_remove_tree]): stray
	 * directories in tmp/. */
	int (*remove_tree)(int parent_dirfd, const char *name, crisp_err_t *err);
	/*
	 * Tests only: called at named points ("blob:written",
	 * "record:before-commit", "remove:after-commit"); may _exit/raise.
	 */
	void (*test_hook)(const char *point);
};

/* One layer of an image, base first. */
struct store_layer {
	char chainid[MF_DIGEST_SIZE];
	char diffid[MF_DIGEST_SIZE];
	char blob[MF_DIGEST_SIZE]; /* compressed blob digest; "" when not kept */
	uint64_t size;             /* bytes (the caller's measure: blob size) */
};

/*
 * An image.  For store_image_record() the caller fills it (pointers it
 * owns; pins ignored).  From store_image_lookup() everything is owned by
 * the struct: release with store_image_free().  In store_image_list()
 * callbacks it is valid during the callback only, and config/manifest are
 * NULL (look the image up for them).
 */
struct store_image {
	char id[MF_DIGEST_SIZE];              /* config digest */
	char manifest_digest[MF_DIGEST_SIZE]; /* the manifest the pull chose */
	uint64_t size;
	char *user;                           /* config.User, NULL when unset */
	uint8_t *config;                      /* config JSON as pulled */
	size_t config_len;
	uint8_t *manifest;                    /* manifest JSON, may be NULL */
	size_t manifest_len;
	char *verdict;                        /* policy verdict (JSON text), may be NULL */
	int64_t pulled_at;                    /* unix seconds; 0 on record: now */
	char **names;                         /* tags and repo digests */
	size_t nnames;
	struct store_layer *layers;
	size_t nlayers;
	uint32_t pins;                        /* output: number of holders */
	/* store_image_record only (caller-owned, never filled by lookups):
	 * the reference this pull used (normalised), the manifest digest the
	 * policy decided on, and the signatures found for it, kept so that
	 * CreateContainer can re-evaluate the policy without the network.
	 * sig_ref NULL: nothing recorded. */
	const char *sig_ref;
	const char *sig_digest;
	const struct store_sig *sigs;
	size_t nsigs;
};

/* A stored signature.  kind STORE_SIG_SIMPLE: data is the OpenPGP
 * signature blob (sig unused).  kind STORE_SIG_SIGSTORE: data is the
 * signed payload, sig the raw signature over it. */
enum { STORE_SIG_SIMPLE = 1, STORE_SIG_SIGSTORE = 2 };
#define STORE_MAX_SIGS 64
#define STORE_SIG_MAX (4u * 1024 * 1024)
struct store_sig {
	int kind;
	uint8_t *data;
	size_t len;
	uint8_t *sig;
	size_t sig_len;
};

/* One reference an image was pulled by, with its signatures (owned). */
struct store_pulled {
	char *ref;
	char digest[MF_DIGEST_SIZE];
	struct store_sig *sigs;
	size_t nsigs;
};

void store_image_free(struct store_image *img);

/* ---- store --------------------------------------------------------------- */

/*
 * Open (creating when missing) the store at root_path, an absolute path to a
 * directory that must exist (its last component not a symlink).  Takes the
 * lock (UNAVAILABLE when held), creates the layout and the schema, and runs
 * recovery and GC.  opts may be NULL.
 */
int store_open(const char *root_path, const struct store_options *opts, struct store **out,
	       crisp_err_t *err);
/* Closes the database and fds; in-flight waiters are dropped silently. */
void store_close(struct store *st);

/* Run GC (rule 2-4 above; tmp files of live transfers are kept). */
int store_gc(struct store *st, unsigned grace_s, crisp_err_t *err);

/* Bytes allocated and inodes below the store (ImageFsInfo), like du(1). */
int store_usage(struct store *st, uint64_t *bytes, uint64_t *inodes, crisp_err_t *err);

/* ---- chain ids ------------------------------------------------------------ */

/*
 * OCI chain id: parent NULL (base layer): chainid = diffid; otherwise
 * sha256(parent + " " + diffid).  Both must be valid digests.
 */
int store_chain_id(const char *parent, const char *diffid, char out[MF_DIGEST_SIZE],
		   crisp_err_t *err);

/* ---- blobs --------------------------------------------------------------- */

/* "blobs/sha256/<hex>" relative to the store root (for logs and helpers). */
int store_blob_path(const char *digest, char out[STORE_RELPATH_SIZE], crisp_err_t *err);
/* 1 when the blob is present (size into *size when not NULL), 0 when not, -1 on error. */
int store_blob_has(struct store *st, const char *digest, uint64_t *size, crisp_err_t *err);
/* O_RDONLY|O_CLOEXEC fd of a present blob; NOT_FOUND when absent. */
int store_blob_open(struct store *st, const char *digest, int *fd, crisp_err_t *err);

/*
 * Start a blob: *fd is a new empty O_RDWR|O_CLOEXEC file tmp/<tmpname>
 * (mode 0600) on the store's filesystem.  The caller writes it (it stays
 * the caller's: neither commit nor abort closes it), then calls exactly
 * one of commit or abort.
 */
int store_blob_begin(struct store *st, int *fd, char tmpname[STORE_TMPNAME_SIZE],
		     crisp_err_t *err);

#define STORE_BLOB_VERIFIED 0x1u /* the caller hashed the bytes as they arrived */

/*
 * Make the blob visible as blobs/sha256/<hex of digest>: checks the size
 * (fstat), and the digest by reading the file back unless flags has
 * STORE_BLOB_VERIFIED; fsyncs the file, renames it into place, fsyncs the
 * directory.  A blob already present is kept (same content by definition)
 * and the temporary removed.  On any failure (DATA_LOSS for a mismatch) the
 * temporary is removed and nothing becomes visible.  fd stays open; after
 * success it reads the committed blob.
 */
int store_blob_commit(struct store *st, int fd, const char *tmpname, const char *digest,
		      uint64_t size, unsigned flags, crisp_err_t *err);
/* Remove the temporary (fd stays open: the caller closes it). */
void store_blob_abort(struct store *st, const char *tmpname);
/*
 * Remove a blob that no image references (a pull that keeps no compressed
 * blobs after unpacking).  FAILED_PRECONDITION when referenced; a missing
 * blob is success.
 */
int store_blob_remove(struct store *st, const char *digest, crisp_err_t *err);

/* ---- layers -------------------------------------------------------------- */

/* 1 when some image references chainid (a row of the layers table), 0 when
 * none does, -1 on error.  The tree itself is execd's. */
int store_layer_has(struct store *st, const char *chainid, crisp_err_t *err);

/* ---- in-flight table ------------------------------------------------------- */

enum store_kind {
	STORE_KIND_BLOB = 1,  /* key: blob digest */
	STORE_KIND_LAYER = 2, /* key: chain id ("present": referenced by an image) */
};

enum store_acquire {
	STORE_ACQ_PRESENT = 1, /* already committed: nothing to do */
	STORE_ACQ_OWNER,       /* do the work, then store_inflight_release() */
	STORE_ACQ_WAIT,        /* queued: cb runs when the owner finishes */
};

struct store_waiter;

/* err NULL: the owner committed it; otherwise the owner's error. */
typedef void (*store_wait_cb)(void *arg, enum store_kind kind, const char *key,
			      const crisp_err_t *err);

/*
 * Returns an enum store_acquire, or -1 with err.  *w is set for
 * STORE_ACQ_WAIT (for store_inflight_cancel), NULL otherwise.
 */
int store_inflight_acquire(struct store *st, enum store_kind kind, const char *key,
			   store_wait_cb cb, void *arg, struct store_waiter **w, crisp_err_t *err);
/* The owner finished: result NULL on success.  Calls and frees every waiter. */
void store_inflight_release(struct store *st, enum store_kind kind, const char *key,
			    const crisp_err_t *result);
/* A waiter gives up (its callback will not run). */
void store_inflight_cancel(struct store *st, struct store_waiter *w);
/* Waiters queued behind key (tests, metrics). */
size_t store_inflight_waiters(struct store *st, enum store_kind kind, const char *key);

/* ---- images ---------------------------------------------------------------- */

/*
 * Record an image in one transaction: the image row (insert, or update of
 * verdict/pulled_at/manifest when the id exists), its names (moved from
 * other images when they held them), its layers (layers table refcounts)
 * and blob references.  Every non-empty layer blob must be present
 * (FAILED_PRECONDITION otherwise), chain ids must follow from the diff ids,
 * and layer diff ids must match an existing row of the same chain id.  The
 * caller has had every layer unpacked by execd first.
 */
int store_image_record(struct store *st, const struct store_image *img, crisp_err_t *err);

int store_image_lookup(struct store *st, const char *ref, struct store_image *out,
		       crisp_err_t *err);

/* Every reference image_id (a full id) was pulled by, with the signatures
 * recorded then (*out malloc'd, *n may be 0; free with
 * store_pulled_free).  Rows go with the image (ON DELETE CASCADE); a
 * reference pulled again replaces its row and signatures. */
int store_image_sigs(struct store *st, const char *image_id, struct store_pulled **out, size_t *n,
		     crisp_err_t *err);
void store_pulled_free(struct store_pulled *v, size_t n);

/* Non-zero from cb stops the walk (store_image_list then returns 0). */
typedef int (*store_image_cb)(void *arg, const struct store_image *img);
int store_image_list(struct store *st, store_image_cb cb, void *arg, crisp_err_t *err);

/*
 * *removed: true when the image went, false when only the tag did (may be
 * NULL).  *released (malloc'd, the caller frees; NULL when none) gets the
 * *nreleased chain ids that no image references any more: the caller
 * sends them to execd (LAYER_RELEASE).  released/nreleased may be NULL.
 */
int store_image_remove(struct store *st, const char *ref, bool *removed,
		       char (**released)[MF_DIGEST_SIZE], size_t *nreleased, crisp_err_t *err);

/* image_id: a full id.  holder: 1..128 bytes of [A-Za-z0-9._:-].  Not
 * flushed by itself (written to the WAL, ordered): execd's pins sync makes
 * the pins again from its own record after an OS crash. */
int store_image_pin(struct store *st, const char *image_id, const char *holder, crisp_err_t *err);
int store_image_unpin(struct store *st, const char *image_id, const char *holder,
		      crisp_err_t *err);
/* Drop every pin of holder (execd reconciling after a restart). */
int store_image_unpin_all(struct store *st, const char *holder, crisp_err_t *err);
/*
 * Make the pins exactly (holders[i], image_ids[i]), i < n, in one flushed
 * transaction: pins of holders not listed are dropped; listed pins of
 * images the store has are made (those of images it lacks are skipped).
 * *made and *dropped (may be NULL) count the changes.  An invalid holder
 * or image id refuses the whole set (INVALID_ARGUMENT), changing nothing.
 */
int store_pins_sync(struct store *st, const char *const *holders, const char *const *image_ids, size_t n,
		    size_t *made, size_t *dropped, crisp_err_t *err);

/*
 * The layer chain of image_id (full id), base first: chain ids into
 * chainids[0..*n).  max must be >= the image's layer count (STORE_MAX_LAYERS is).
 */
int store_layers_of(struct store *st, const char *image_id, char (*chainids)[MF_DIGEST_SIZE],
		    size_t max, size_t *n, crisp_err_t *err);

#endif
