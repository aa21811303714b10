/*
 * monitor/: crisp-monitor, one small process per running container (as
 * conmon).  execd forks, prepares the container's stdio, log, control
 * socket and launches the container (execd/ctr_monitor.c), then executes
 * this binary, which only runs the loop (loop.c).
 *
 * This code is built twice: statically (musl when present) into
 * crisp-monitor, which links nothing else -- no protobuf, no sqlite, no
 * libcrisp -- so that it stays well under 1 MiB of RSS; and into execd
 * (and the unit tests), which share the CRI log writer and can run the
 * loop in their own image when the binary cannot be executed.  So it
 * includes only libc and kernel interfaces.
 */
#ifndef CRISP_MONITOR_MONITOR_H
#define CRISP_MONITOR_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- the argv contract between execd and the monitor ----
 *   argv[0]  "crisp-monitor"
 *   argv[1]  CTR_MONITOR_ARG
 *   argv[2]  container id
 *   argv[3]  container pid (a child of this process)
 *   argv[4]  listening control socket fd
 *   argv[5]  stdout fd (or the pty master), -1 for none
 *   argv[6]  stderr fd, -1 for none (a tty merges it)
 *   argv[7]  stdin fd (write end), -1 for none
 *   argv[8]  CRI log fd, -1 for none
 *   argv[9]  run directory fd (O_PATH): exit record, control socket
 *   argv[10] "1" when stdio is a tty
 *   argv[11] "1" when stdin closes after the first attach ends
 *   argv[12] CRI log path ("" for none), reopened by path on request
 * Every fd is inherited without FD_CLOEXEC. */
#define CTR_MONITOR_ARG "--container-monitor"
#define MON_ARGC 13
#define MON_EXE_NAME "crisp-monitor"

/* Frames of an attach connection (one channel byte, then at most
 * MON_FRAME_MAX data bytes); the same as execd.h's CTR_FRAME_MAX and
 * CTR_CH_* (execd/ctr_monitor.c checks it at compile time). */
#define MON_FRAME_MAX 32768
enum { MON_CH_STDIN = 0, MON_CH_STDOUT, MON_CH_STDERR, MON_CH_STATUS, MON_CH_RESIZE };

/* ---- the CRI log format (cri_log.c) ---- */

#define CTR_LOG_LINE_MAX 16384 /* longer lines become P records */

enum { CRI_LOG_STDOUT = 0, CRI_LOG_STDERR = 1 };

struct cri_log {
	int fd;                          /* -1: lines are dropped */
	char buf[2][CTR_LOG_LINE_MAX];   /* a pending partial line per stream */
	size_t len[2];
	int (*now)(struct timespec *ts); /* NULL: clock_gettime REALTIME */
	uint64_t write_errors;
};

/* "<RFC3339Nano UTC> <stdout|stderr> <F|P> <line>\n" into out; returns
 * the length, or 0 when out is too small. */
size_t cri_log_format(char *out, size_t outsz, const struct timespec *ts, int stream, bool partial,
		      const char *line, size_t len);
/* Feed bytes of one stream: every complete line is written (F), a line
 * reaching CTR_LOG_LINE_MAX is written in P pieces. */
void cri_log_feed(struct cri_log *l, int stream, const char *data, size_t len);
/* The stream ended: a pending partial line is written (F). */
void cri_log_flush(struct cri_log *l, int stream);

/*
 * Open (create) a container's CRI log for appending: its parent directory
 * is made (0755 root) when missing; never through a symlink (last
 * component), never a fifo or device: an existing log must be a regular
 * file with one link.  Returns the fd (O_CLOEXEC, blocking), -2 when path
 * is NULL or empty (no log), or -1 with errno.
 */
int mon_open_log(const char *path);

/* ---- the loop (loop.c) and its confinement (harden.c) ---- */

/* The monitor's entry: argv as above.  Returns 2 on a bad argv, otherwise
 * does not return (the monitor _exits once the container's exit is
 * recorded). */
int monitor_main(int argc, char **argv);

/*
 * Confine the monitor for the rest of its life: every capability dropped
 * (bounding, ambient, inheritable, permitted, effective; securebits locked
 * so uid 0 cannot regain them), no_new_privs, and a seccomp allowlist of
 * what the loop uses (default: kill the process).  0, or -1 with errno;
 * what failed is named in *what.
 */
int monitor_harden(const char **what);

#endif
