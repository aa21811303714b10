/*
 * execd/layers: unpacked image layers, owned by execd.
 *
 * Why execd and not imaged: an unpacked layer is a root-owned tree (the
 * image's uids, device nodes, setuid bits, file capabilities) that imaged,
 * an unprivileged user, can neither create nor delete; and a compromised
 * imaged must not be able to swap one layer directory for another after it
 * was verified.  imaged keeps blobs, manifests, configs and image records;
 * it sends LAYER_UNPACK with an fd of each verified blob, base layer first,
 * and LAYER_RELEASE when no image of its store references a layer any more.
 *
 * On disk, below <root>/layers (root:root 0700):
 *
 *   <chain hex>/           a committed layer: its measured diff id matched
 *                          what imaged claimed, and its chain id follows
 *                          from its parent's chain id and that diff id
 *   .tmp-<32 hex>/         a layer being unpacked (removed at start: a
 *                          crash interrupted it)
 *   .released/<chain hex>  imaged released the layer; it is deleted as soon
 *                          as no holder holds it (at once when none does)
 *   .holds/<holder>        the chain ids one holder (a container) holds,
 *                          one per line, written atomically (tmp+rename)
 *
 * A directory <chain hex> exists only after its tree was fsync'd and
 * renamed into place; release markers are fsync'd before the call
 * returns.  Hold files are written atomically but not flushed: the
 * durable record of what a container holds is its row in the state
 * database, and layers_reconcile() restores the holds from it at start
 * (an OS crash may leave a hold file missing or stale; a kill -9 of execd
 * never does).  Released layers nobody holds are deleted only then.
 *
 * Unpacking runs in a forked child of execd that keeps only the
 * capabilities extraction needs (CHOWN, DAC_OVERRIDE, FOWNER, FSETID,
 * MKNOD, SETFCAP, SYS_ADMIN for trusted.* xattrs such as overlayfs'
 * opaque marker), no_new_privs, Landlock to the one temporary directory, a
 * seccomp denylist (no mount, namespaces, ptrace, network, exec), and a
 * timeout after which execd kills it.  See SECURITY.md.
 *
 * The unpacker children are reaped by pid (waitpid(pid)): nothing else in
 * execd may reap with waitpid(-1)/P_ALL, or their results are lost.
 *
 * Containers: CreateContainer asks imaged (IMAGE_RESOLVE) for the chain
 * ids, then layers_hold(x, ctr_id, chain_ids, n) and layers_lowerdir() for
 * the overlay; RemoveContainer calls layers_unhold(x, ctr_id) (and
 * IMAGE_UNPIN).  At start, holds are loaded from disk; once the
 * containers are recovered, layers_reconcile() makes them what the
 * containers' records say.
 *
 * All functions run on execd's event loop thread.  chain ids are
 * "sha256:<64 lowercase hex>"; a holder is 1..128 bytes of
 * [A-Za-z0-9._-] (execd uses the container id).
 */
#ifndef CRISP_EXECD_LAYERS_H
#define CRISP_EXECD_LAYERS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

struct execd;

#define LAYERS_PATH_SIZE 4200 /* "<root>/layers/<64 hex>" + NUL, with room */
#define LAYERS_HOLDER_MAX 128

/*
 * Absolute path of the committed layer chain_id into buf (size bytes).
 * NOT_FOUND when the layer is not present (never unpacked, or deleted);
 * INVALID_ARGUMENT for a malformed chain id.
 */
int layers_path(struct execd *x, const char *chain_id, char *buf, size_t size,
		crisp_err_t *err);

/*
 * The overlayfs lowerdir option for an image: chain_ids are given base
 * first (as IMAGE_RESOLVED lists them); *out (malloc'd, the caller frees)
 * is "<top>:...:<base>", the paths of layers_path().  NOT_FOUND when any
 * layer is missing.  n == 0 is INVALID_ARGUMENT (an image has at least one
 * layer).
 */
int layers_lowerdir(struct execd *x, const char *const *chain_ids, size_t n, char **out,
		    crisp_err_t *err);

/*
 * holder holds every layer of chain_ids (durably): none of them is deleted
 * while held, even when imaged releases it.  All must be present
 * (NOT_FOUND otherwise, and nothing is held).  Holding again replaces the
 * holder's previous set (idempotent for the same set).
 */
int layers_hold(struct execd *x, const char *holder, const char *const *chain_ids, size_t n,
		crisp_err_t *err);

/*
 * Drop every hold of holder (idempotent: an unknown holder is success).
 * Layers that imaged released and that nobody holds any more are deleted.
 */
int layers_unhold(struct execd *x, const char *holder, crisp_err_t *err);

/*
 * At start, once the holders' own durable record was read (execd: every
 * container row with its image's chain ids), make the holds match it:
 * each listed holder holds its chain ids (rewritten only when its hold
 * file is missing or differs; a layer that is gone is logged), holders not
 * listed are unheld (one listed with n == 0, whose record could not be
 * read, keeps what it holds), and then layers imaged released that nobody holds
 * are deleted (not before: a hold file an OS crash lost must not let a
 * layer in use go).
 */
struct layers_holder {
	const char *holder;
	const char *const *chain_ids;
	size_t n;
};
int layers_reconcile(struct execd *x, const struct layers_holder *h, size_t n, crisp_err_t *err);

/* True when chain_id is committed (present on disk). */
bool layers_present(struct execd *x, const char *chain_id);

/* Number of unpacks running (children alive) and committed layers (tests). */
size_t layers_unpacking(struct execd *x);

#endif
