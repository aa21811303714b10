/*
 * crisp imaged: extract one OCI image layer into an empty directory.
 *
 * The layer comes from a registry crisp does not trust.  Extraction is
 * written for a hostile tar: nothing is ever created, changed or followed
 * outside the target directory, and the layer either extracts completely
 * or fails (the caller then removes the partial tree with
 * unpack_remove_tree()).  It is meant to run in the short-lived sandboxed
 * unpacker (SECURITY.md), but is safe on its own too.
 *
 * What a layer may contain, and what is refused (the error names the entry):
 *
 *  - Paths are relative.  A leading "./" and "." components and trailing
 *    '/' are accepted.  Refused: absolute paths (the OCI image spec says
 *    layer paths are relative; we do not silently strip '/' as GNU tar does),
 *    any ".." component (even one that would stay inside), empty components
 *    ("a//b"), components longer than NAME_MAX, paths longer than
 *    lim->max_path.
 *  - A path whose parent goes through a symlink is refused, even a symlink
 *    that would resolve inside the layer: every parent is resolved with
 *    openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
 *    RESOLVE_NO_XDEV).  Missing parents are created (0755, root:root), as
 *    tar does.
 *  - Types: regular file (sparse maps honoured), directory, symlink (target
 *    stored verbatim, never followed; at most max_path bytes), hard link,
 *    char and block device, fifo.  Sockets and any other type are refused.
 *    Device nodes need CAP_MKNOD; without it the layer fails with an error
 *    that says so.
 *  - Hard links: the target obeys the path rules above, is resolved beneath
 *    the root without following any symlink (final component included), and
 *    must already exist and not be a directory.  The root starts empty, so
 *    a target that exists was extracted from this layer.
 *  - A later entry replaces an earlier one with the same path (tar
 *    semantics): the old entry is removed without following symlinks (a
 *    directory with its whole tree), unless both are directories, in which
 *    case only the metadata is updated.
 *  - Metadata: owner (numeric uid/gid; names ignored), mode including
 *    setuid/setgid/sticky, mtime and atime, xattrs.  Directory mode and
 *    times are applied after the whole layer is extracted.
 *  - Xattrs kept: user.*, trusted.*, security.capability (file
 *    capabilities).  Refused: trusted.overlay.* and user.overlay.* (overlayfs
 *    internals: redirects, metacopy, origin; a layer must not forge them).
 *    Ignored: other security.* (SELinux and IMA labels are the node's
 *    business, not the image's) and system.* (ACLs are not kept).
 *    Regular files and directories get them with fsetxattr(); symlinks,
 *    devices and fifos (which must not be opened) with setxattrat(2)
 *    (Linux 6.13, called by number as Debian 12's headers predate it), or,
 *    on older kernels, through /proc/self/fd of an O_PATH fd when /proc is
 *    reachable; otherwise the entry fails.
 *  - OCI whiteouts: "<dir>/.wh.<name>" becomes an overlayfs whiteout (a
 *    0/0 char device "<dir>/<name>"); "<dir>/.wh..wh..opq" sets
 *    trusted.overlay.opaque=y on <dir> (created if needed).  A whiteout of
 *    "", "." or "..", and any other ".wh..wh." name, is refused.
 *  - Limits: more than lim->max_entries entries, or more than
 *    lim->max_uncompressed bytes of uncompressed tar (checked as the bytes
 *    are decompressed, so a decompression bomb stops as soon as it passes),
 *    fail the layer.
 *
 * Formats: tar only (ustar, pax, GNU), compressed with gzip or zstd or not
 * at all; libarchive is used to read, never to write to disk.
 *
 * The diff id is the sha256 of the whole decompressed stream (what
 * `sha256sum` of the uncompressed tar prints), trailing bytes after the
 * end-of-archive blocks included.  Design: one libarchive reader with
 * filters {gzip, zstd, none} and the "raw" format only decompresses; a
 * second reader with the tar format and no filter reads the tar from a
 * callback that pulls decompressed bytes from the first, hashing and
 * counting them on the way.  Single pass over the blob, the hash covers
 * exactly the bytes the tar parser saw, and when the tar ends the rest of
 * the stream is drained through the same hash.
 *
 * No process-wide state, no chdir, every fd CLOEXEC and closed on every
 * path.  Calls on different target directories may run concurrently.
 */
#ifndef CRISP_IMAGED_UNPACK_H
#define CRISP_IMAGED_UNPACK_H

#include <stdint.h>

#include "common/err.h"

/* Compression the manifest announced for the layer. */
enum unpack_compression {
	UNPACK_COMPRESSION_ANY = 0, /* detect; accept none, gzip or zstd */
	UNPACK_COMPRESSION_NONE,    /* application/vnd.oci.image.layer.v1.tar */
	UNPACK_COMPRESSION_GZIP,    /* ...tar+gzip, docker ...rootfs.diff.tar.gzip */
	UNPACK_COMPRESSION_ZSTD,    /* ...tar+zstd */
};

struct unpack_limits {
	uint64_t max_uncompressed; /* bytes of decompressed tar; 0: default */
	uint64_t max_entries;      /* tar entries (headers); 0: default */
	uint32_t max_path;         /* bytes of a path or link target; 0: default */
};

/* Defaults used for a zero field (and when lim is NULL). */
#define UNPACK_DEFAULT_MAX_UNCOMPRESSED (64ULL << 30) /* 64 GiB */
#define UNPACK_DEFAULT_MAX_ENTRIES 1000000ULL
#define UNPACK_DEFAULT_MAX_PATH 4095U /* PATH_MAX - 1; also the hard cap */

struct unpack_result {
	char diff_id[72];      /* "sha256:<64 hex>" of the uncompressed tar */
	uint64_t uncompressed; /* bytes of uncompressed tar */
	uint64_t entries;      /* tar entries processed */
};

/*
 * Extract the layer read from layer_fd (from its current offset to EOF)
 * into the directory dirfd (an O_PATH or O_RDONLY fd of an empty
 * directory; every path is resolved beneath it).  comp is what the manifest
 * says; a stream whose detected compression differs is refused.
 *
 * Returns 0 and fills res, or -1 with err set (INVALID_ARGUMENT for a
 * malformed or hostile layer, naming the entry; RESOURCE_EXHAUSTED for a
 * limit; PERMISSION_DENIED for a device node without CAP_MKNOD; INTERNAL
 * for I/O errors).  On failure the directory holds a partial layer that the
 * caller must remove.
 */
int unpack_layer(int layer_fd, enum unpack_compression comp, int dirfd,
		 const struct unpack_limits *lim, struct unpack_result *res, crisp_err_t *err);

/*
 * Remove parent_dirfd/name and, if it is a directory, everything below it,
 * never following a symlink and never crossing into another filesystem (a
 * mount point below refuses the removal).  Iterative: constant fd use and
 * no recursion whatever the depth.  A missing name is success.
 */
int unpack_remove_tree(int parent_dirfd, const char *name, crisp_err_t *err);

#endif
