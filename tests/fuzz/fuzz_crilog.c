/* libFuzzer: the CRI log writer on what a container prints (any bytes, any
 * chunking): the first byte of each chunk picks the stream and the chunk
 * length; every record written must parse back as
 * "<timestamp> <stdout|stderr> <F|P> <line>\n" with no '\n' in the line
 * and at most CTR_LOG_LINE_MAX bytes of it. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "execd/ctr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int now(struct timespec *ts)
{
	ts->tv_sec = 1700000000;
	ts->tv_nsec = 999999999;
	return 0;
}

static void check(const char *buf, size_t len)
{
	size_t o = 0;
	while (o < len) {
		const char *nl = memchr(buf + o, '\n', len - o);
		if (nl == NULL)
			abort(); /* a record always ends with '\n' */
		size_t rl = (size_t)(nl - (buf + o));
		/* 30 bytes of timestamp, " stdout F " (10) */
		if (rl < 40 || buf[o + 29] != 'Z' || buf[o + 30] != ' ')
			abort();
		if (memcmp(buf + o + 31, "stdout ", 7) && memcmp(buf + o + 31, "stderr ", 7))
			abort();
		if ((buf[o + 38] != 'F' && buf[o + 38] != 'P') || buf[o + 39] != ' ')
			abort();
		if (rl - 40 > CTR_LOG_LINE_MAX)
			abort();
		o += rl + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cri_log l;
	static char out[1 << 20];
	int fd = memfd_create("crilog", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	memset(&l, 0, sizeof l);
	l.fd = fd;
	l.now = now;
	size_t i = 0;
	while (i < size) {
		uint8_t h = data[i++];
		size_t n = (size_t)(h >> 1) * 97;
		if (n > size - i)
			n = size - i;
		cri_log_feed(&l, h & 1, (const char *)data + i, n);
		i += n;
	}
	cri_log_flush(&l, CRI_LOG_STDOUT);
	cri_log_flush(&l, CRI_LOG_STDERR);
	ssize_t len = pread(fd, out, sizeof out, 0);
	close(fd);
	if (len > 0 && (size_t)len < sizeof out)
		check(out, (size_t)len);
	return 0;
}
