/*
 * imaged: how much of its filesystem the image store uses (ImageFsInfo):
 * bytes allocated and inodes, counted like du(1) -- hard links once,
 * symlinks not followed, no crossing into other filesystems.
 */
#ifndef IMAGED_FSUSAGE_H
#define IMAGED_FSUSAGE_H

#include <stdint.h>

#include "common/err.h"

#define FS_USAGE_MAX_DEPTH 256

/* Walk the tree below top (which is counted too). */
int fs_usage(int top, uint64_t *bytes, uint64_t *inodes, crisp_err_t *err);

#endif
