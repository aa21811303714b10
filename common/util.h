/*
 * crisp: small helpers shared by every process: cleanup attributes with
 * visible ownership transfer, bounded string copies, fd helpers.
 */
#ifndef CRISP_UTIL_H
#define CRISP_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fdio.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void cleanup_freep(void *p)
{
	free(*(void **)p);
}

static inline void cleanup_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

#define cleanup_free __attribute__((cleanup(cleanup_freep)))
#define cleanup_close __attribute__((cleanup(cleanup_closep)))

/* Hand ownership on: returns the value and leaves the variable empty. */
#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -1; _fd; })
#define TAKE_PTR(p) ({ __typeof__(p) _p = (p); (p) = NULL; _p; })

/* Copy at most dstsize-1 bytes and always NUL-terminate; returns strlen(src). */
size_t crisp_strlcpy(char *dst, const char *src, size_t dstsize);

/* Allocation that aborts on failure: used only where a failure cannot be
 * reported (startup).  Everywhere else check malloc's result. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
char *xstrdup(const char *s);

/* Monotonic clock in milliseconds / nanoseconds. */
uint64_t crisp_now_ms(void);
uint64_t crisp_now_ns(void);

/* The whole regular file open on fd (at most max bytes) into a new
 * NUL-terminated buffer; what names it in errors ("key file /k.pub").
 * FAILED_PRECONDITION when it is not a regular file, is larger than max,
 * cannot be read or grows while read; RESOURCE_EXHAUSTED without memory. */
int crisp_read_regular(int fd, size_t max, const char *what, uint8_t **out, size_t *outlen, crisp_err_t *err);
/* The same for a path (opened O_NONBLOCK: a FIFO cannot stall the reader);
 * label says what it is ("key file"). */
/* A Kubernetes resource quantity without sign or exponent: digits, an
 * optional fraction, and a suffix (k M G T P E, or Ki Mi Gi Ti Pi Ei), as
 * kubelet writes bandwidth annotations ("10M", "1.5Gi").  0, or -1 when
 * malformed or over 2^64-1.  A fraction is rounded up. */
int crisp_parse_quantity(const char *s, uint64_t *out);
int crisp_read_path(const char *path, size_t max, const char *label, uint8_t **out, size_t *outlen,
		    crisp_err_t *err);

/* Set or clear O_NONBLOCK / FD_CLOEXEC. */
int crisp_set_nonblock(int fd, bool on);
int crisp_set_cloexec(int fd, bool on);

/* Create a directory (and parents) with mode and owner; existing ones get
 * their mode and owner enforced.  uid/gid of -1 leave the owner alone. */
int crisp_mkdir_p(const char *path, mode_t mode, uid_t uid, gid_t gid);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void crisp_hex(const uint8_t *in, size_t len, char *out);

#endif
