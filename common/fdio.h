/*
 * common/fdio: whole reads and writes, closing all but some fds.  libc
 * only (no logging, no allocation but the /proc fallback of closefrom):
 * crisp-monitor, a static libc-only binary, links it as the roles do.
 */
#ifndef CRISP_COMMON_FDIO_H
#define CRISP_COMMON_FDIO_H

#include <stddef.h>

/* Close every fd >= lowfd except those listed in keep (nkeep entries, in
 * any order; duplicates and values below lowfd are ignored). */
int crisp_closefrom(int lowfd, const int *keep, size_t nkeep);
/* Write the whole buffer, retrying on EINTR and short writes. */
int crisp_write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes; returns 0, or -1 (errno EPIPE on early EOF). */
int crisp_read_all(int fd, void *buf, size_t len);

#endif
