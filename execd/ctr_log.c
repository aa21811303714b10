/*
 * execd/ctr_log: the CRI container log format, written by the monitor from
 * what the container prints (untrusted bytes: any length, any content;
 * only '\n' has a meaning).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "execd/ctr.h"

size_t cri_log_format(char *out, size_t outsz, const struct timespec *ts, int stream, bool partial,
		      const char *line, size_t len)
{
	struct tm tm;
	time_t sec = ts->tv_sec;
	int n;

	if (gmtime_r(&sec, &tm) == NULL)
		return 0;
	n = snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ %s %c ", tm.tm_year + 1900, tm.tm_mon + 1,
		     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)ts->tv_nsec,
		     stream == CRI_LOG_STDERR ? "stderr" : "stdout", partial ? 'P' : 'F');
	if (n < 0 || (size_t)n + len + 1 > outsz)
		return 0;
	memcpy(out + n, line, len);
	out[(size_t)n + len] = '\n';
	return (size_t)n + len + 1;
}

static void emit(struct cri_log *l, int stream, bool partial, const char *line, size_t len)
{
	char rec[CTR_LOG_LINE_MAX + 128];
	struct timespec ts;
	size_t n;

	if (l->fd < 0)
		return;
	if (l->now == NULL || l->now(&ts) < 0)
		clock_gettime(CLOCK_REALTIME, &ts);
	n = cri_log_format(rec, sizeof rec, &ts, stream, partial, line, len);
	if (n == 0 || crisp_write_all(l->fd, rec, n) < 0)
		l->write_errors++;
}

void cri_log_feed(struct cri_log *l, int stream, const char *data, size_t len)
{
	stream = stream == CRI_LOG_STDERR ? CRI_LOG_STDERR : CRI_LOG_STDOUT;
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		size_t room = CTR_LOG_LINE_MAX - l->len[stream];

		if (take > room || (take == room && nl == NULL)) {
			/* The line fills the buffer: out as a partial piece. */
			memcpy(l->buf[stream] + l->len[stream], data, room);
			emit(l, stream, true, l->buf[stream], CTR_LOG_LINE_MAX);
			l->len[stream] = 0;
			data += room;
			len -= room;
			continue;
		}
		memcpy(l->buf[stream] + l->len[stream], data, take);
		l->len[stream] += take;
		data += take;
		len -= take;
		if (nl == NULL)
			break;
		emit(l, stream, false, l->buf[stream], l->len[stream]);
		l->len[stream] = 0;
		data++;
		len--;
	}
}

void cri_log_flush(struct cri_log *l, int stream)
{
	stream = stream == CRI_LOG_STDERR ? CRI_LOG_STDERR : CRI_LOG_STDOUT;
	if (l->len[stream] > 0)
		emit(l, stream, false, l->buf[stream], l->len[stream]);
	l->len[stream] = 0;
}
