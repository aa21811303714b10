/*
 * monitor/loop: the life of a container's monitor once it runs as
 * crisp-monitor (argv in monitor.h).
 *
 * It copies the container's output into the CRI log and to attached
 * clients, feeds stdin from attached clients, answers "reopen the log",
 * reaps the container, writes the exit record (tmp+fsync+rename) and
 * exits.  It also reaps any other child it gets (it may be a child
 * subreaper for an external runtime): only the container's status is
 * recorded.
 *
 * Control socket (SOCK_SEQPACKET, <run dir>/ctl, 0600 root): the first
 * packet of a connection is one byte, 'R' (reopen the log; the answer is
 * "OK" or "ERR <why>") or 'A' / 'a' (attach without / with stdin; the
 * connection then carries the frames of execd.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/fdio.h"
#include "monitor/monitor.h"

#ifndef SYS_close_range
#define SYS_close_range 436 /* the same number on every architecture */
#endif

#define MAX_CLIENTS 16
#define DRAIN_MS 2000

struct client {
	int fd;
	bool in; /* may write stdin */
};

struct mon {
	const char *id, *log_path;
	pid_t pid;
	int sfd, ls, out, err, in, dfd;
	bool tty, stdin_once, exited;
	int status;
	struct cri_log log;
	struct client cl[MAX_CLIENTS];
	size_t ncl;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int argint(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return *end == '\0' && end != s && v >= -1 && v <= 0x7fffffff ? (int)v : -1;
}

static void drop_client(struct mon *m, size_t i)
{
	if (m->stdin_once && m->cl[i].in && m->in >= 0) {
		close(m->in);
		m->in = -1;
	}
	close(m->cl[i].fd);
	m->cl[i] = m->cl[--m->ncl];
}

static void broadcast(struct mon *m, int chan, const char *data, size_t len)
{
	char frame[1 + MON_FRAME_MAX];

	while (len > 0) {
		size_t n = len > MON_FRAME_MAX ? MON_FRAME_MAX : len;
		frame[0] = (char)chan;
		memcpy(frame + 1, data, n);
		for (size_t i = 0; i < m->ncl;) {
			/* a client that cannot keep up is detached, never waited for */
			if (send(m->cl[i].fd, frame, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EINTR) {
				drop_client(m, i);
				continue;
			}
			i++;
		}
		data += n;
		len -= n;
	}
}

static void reopen_log(struct mon *m, int cfd)
{
	const char *ans = "OK";
	char buf[300];
	int fd = mon_open_log(m->log_path);

	if (fd == -1) {
		snprintf(buf, sizeof buf, "ERR %.200s: %s", m->log_path, strerror(errno));
		ans = buf;
	} else if (fd >= 0) {
		if (m->log.fd >= 0)
			close(m->log.fd);
		m->log.fd = fd;
	}
	(void)send(cfd, ans, strlen(ans), MSG_NOSIGNAL);
}

static void on_accept(struct mon *m)
{
	int cfd = accept4(m->ls, NULL, NULL, SOCK_CLOEXEC);
	struct pollfd p;
	char cmd;

	if (cfd < 0)
		return;
	p = (struct pollfd){ cfd, POLLIN, 0 };
	if (poll(&p, 1, 1000) != 1 || recv(cfd, &cmd, 1, 0) != 1) {
		close(cfd);
		return;
	}
	if (cmd == 'R') {
		reopen_log(m, cfd);
		close(cfd);
	} else if ((cmd == 'A' || cmd == 'a') && m->ncl < MAX_CLIENTS && !m->exited) {
		int sz = 1 << 20;
		(void)setsockopt(cfd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
		m->cl[m->ncl++] = (struct client){ cfd, cmd == 'a' };
	} else {
		close(cfd);
	}
}

static void set_winsize(struct mon *m, const char *json, size_t len)
{
	char buf[128];
	const char *w, *h;
	struct winsize ws = { 0 };

	if (!m->tty || len >= sizeof buf)
		return;
	memcpy(buf, json, len);
	buf[len] = '\0';
	if ((w = strstr(buf, "\"Width\":")) == NULL || (h = strstr(buf, "\"Height\":")) == NULL)
		return;
	ws.ws_col = (unsigned short)strtoul(w + 8, NULL, 10);
	ws.ws_row = (unsigned short)strtoul(h + 9, NULL, 10);
	(void)ioctl(m->out, TIOCSWINSZ, &ws);
}

static void on_client(struct mon *m, size_t i)
{
	char frame[1 + MON_FRAME_MAX];
	ssize_t n = recv(m->cl[i].fd, frame, sizeof frame, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop_client(m, i);
		return;
	}
	if (frame[0] == MON_CH_STDIN && m->cl[i].in && m->in >= 0) {
		if (n == 1) {
			if (!m->tty) {
				close(m->in);
				m->in = -1;
			} else {
				char eot = 4; /* ^D: the tty's end of input */
				(void)!write(m->in, &eot, 1);
			}
		} else if (crisp_write_all(m->in, frame + 1, (size_t)n - 1) < 0 && errno == EPIPE) {
			close(m->in);
			m->in = -1;
		}
	} else if (frame[0] == MON_CH_RESIZE) {
		set_winsize(m, frame + 1, (size_t)n - 1);
	}
}

/* Read what one stream has; false at its end. */
static bool pump(struct mon *m, int *fd, int stream)
{
	char buf[32768];
	ssize_t n = read(*fd, buf, sizeof buf);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0) { /* EOF, or EIO from a pty whose slave is gone */
		cri_log_flush(&m->log, stream);
		close(*fd);
		*fd = -1;
		return false;
	}
	cri_log_feed(&m->log, stream, buf, (size_t)n);
	broadcast(m, stream == CRI_LOG_STDERR ? MON_CH_STDERR : MON_CH_STDOUT, buf, (size_t)n);
	return true;
}

static void container_exited(struct mon *m, int status, uint64_t *drain_until)
{
	m->status = status;
	m->exited = true;
	*drain_until = now_ms() + DRAIN_MS;
	/* nothing reads stdin any more */
	if (m->in >= 0 && m->in != m->out)
		close(m->in);
	m->in = -1;
}

/* Reap every child that has ended: the container's status is kept, any
 * other child (adopted as a subreaper) is only reaped. */
static void reap(struct mon *m, uint64_t *drain_until)
{
	struct signalfd_siginfo si;

	if (m->sfd >= 0)
		while (read(m->sfd, &si, sizeof si) == (ssize_t)sizeof si)
			;
	for (;;) {
		int st;
		pid_t r = waitpid(-1, &st, __WALL | WNOHANG);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == ECHILD && !m->exited) {
			/* no child at all: the container is not ours to wait for */
			container_exited(m, 255 << 8, drain_until);
			break;
		}
		if (r <= 0)
			break;
		if (r == m->pid && !m->exited)
			container_exited(m, st, drain_until);
	}
}

static void write_exit(struct mon *m, int code)
{
	char buf[128];
	struct timespec ts;
	int fd, n;

	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(buf, sizeof buf, "%d %lld %d\n", code, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec,
		     WIFSIGNALED(m->status) ? WTERMSIG(m->status) : 0);
	(void)unlinkat(m->dfd, "exit.tmp", 0);
	fd = openat(m->dfd, "exit.tmp", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	if (crisp_write_all(fd, buf, (size_t)n) < 0 || fsync(fd) < 0) {
		close(fd);
		return;
	}
	close(fd);
	if (renameat(m->dfd, "exit.tmp", m->dfd, "exit") == 0) {
		int d = openat(m->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (d >= 0) {
			(void)fsync(d);
			close(d);
		}
	}
}

static void set_nonblock(int fd)
{
	int fl;

	if (fd >= 0 && (fl = fcntl(fd, F_GETFL)) >= 0)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int monitor_main(int argc, char **argv)
{
	static struct mon m;
	uint64_t drain_until = 0;
	const char *what = "";
	sigset_t chld;

	if (argc < MON_ARGC || strcmp(argv[1], CTR_MONITOR_ARG) != 0)
		return 2;
	/* The exec that started this image ran at SCHED_IDLE (ctr_monitor.c:
	 * tearing down the copy of execd's memory yields to everything else);
	 * back to the normal class while the capabilities to do so are held. */
	{
		struct sched_param sp = { 0 };
		(void)syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, &sp); /* musl: no wrapper */
	}
	signal(SIGPIPE, SIG_IGN);
	m.id = argv[2];
	m.pid = argint(argv[3]);
	m.ls = argint(argv[4]);
	m.out = argint(argv[5]);
	m.err = argint(argv[6]);
	m.in = argint(argv[7]);
	m.log.fd = argint(argv[8]);
	m.dfd = argint(argv[9]);
	m.tty = argv[10][0] == '1';
	m.stdin_once = argv[11][0] == '1';
	m.log_path = argv[12];
	if (m.pid <= 0 || m.ls < 0 || m.dfd < 0)
		return 2;
	int keep[] = { m.ls, m.out, m.err, m.in, m.log.fd, m.dfd };
	crisp_closefrom(3, keep, sizeof keep / sizeof keep[0]);
	for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
		if (keep[i] >= 0)
			fcntl(keep[i], F_SETFD, FD_CLOEXEC);
	set_nonblock(m.out);
	set_nonblock(m.err);

	/* Children end into a signalfd (the container, and whatever a
	 * subreaper inherits); blocked first, then swept once, so an exit
	 * that came before is not missed. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	m.sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);

	/* Everything the loop needs is open: confine it for good.  A monitor
	 * that cannot be confined does not keep the container running. */
	if (monitor_harden(&what) < 0) {
		kill(m.pid, SIGKILL);
		_exit(3);
	}
	reap(&m, &drain_until);

	for (;;) {
		struct pollfd p[5 + MAX_CLIENTS];
		int np = 0, timeout = -1;
		int i_ls, i_out = -1, i_err = -1, i_sig = -1, i_cl;

		if (m.exited && ((m.out < 0 && m.err < 0) || now_ms() >= drain_until))
			break;
		i_ls = np;
		p[np++] = (struct pollfd){ m.ls, POLLIN, 0 };
		if (m.out >= 0) {
			i_out = np;
			p[np++] = (struct pollfd){ m.out, POLLIN, 0 };
		}
		if (m.err >= 0) {
			i_err = np;
			p[np++] = (struct pollfd){ m.err, POLLIN, 0 };
		}
		if (m.sfd >= 0) {
			i_sig = np;
			p[np++] = (struct pollfd){ m.sfd, POLLIN, 0 };
		}
		i_cl = np;
		for (size_t i = 0; i < m.ncl; i++)
			p[np++] = (struct pollfd){ m.cl[i].fd, POLLIN, 0 };
		if (m.sfd < 0 && !m.exited)
			timeout = 200; /* no signalfd: poll waitpid */
		if (m.exited)
			timeout = (int)(drain_until - now_ms());
		if (poll(p, (nfds_t)np, timeout) < 0 && errno != EINTR)
			break;
		if (i_out >= 0 && (p[i_out].revents & (POLLIN | POLLHUP | POLLERR)))
			pump(&m, &m.out, CRI_LOG_STDOUT);
		if (i_err >= 0 && (p[i_err].revents & (POLLIN | POLLHUP | POLLERR)))
			pump(&m, &m.err, CRI_LOG_STDERR);
		for (size_t i = m.ncl; i-- > 0;)
			if ((int)(i_cl + (int)i) < np && (p[i_cl + (int)i].revents & (POLLIN | POLLHUP | POLLERR)))
				on_client(&m, i);
		if (p[i_ls].revents & POLLIN)
			on_accept(&m);
		if (i_sig < 0 || (p[i_sig].revents & POLLIN))
			reap(&m, &drain_until);
	}
	int code = WIFEXITED(m.status) ? WEXITSTATUS(m.status) : 128 + WTERMSIG(m.status);
	if (m.out >= 0)
		cri_log_flush(&m.log, CRI_LOG_STDOUT);
	if (m.err >= 0)
		cri_log_flush(&m.log, CRI_LOG_STDERR);
	if (m.log.fd >= 0)
		(void)fsync(m.log.fd);
	write_exit(&m, code);
	(void)unlinkat(m.dfd, "ctl", 0);
	/* attached clients get the end: a status frame, then EOF */
	char st[300];
	int n = code == 0 ? snprintf(st, sizeof st, "%c{\"status\":\"Success\"}", MON_CH_STATUS)
			  : snprintf(st, sizeof st,
				     "%c{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"message\":\"command "
				     "terminated with non-zero exit code\",\"details\":{\"causes\":[{\"reason\":\"ExitCode\","
				     "\"message\":\"%d\"}]}}",
				     MON_CH_STATUS, code);
	for (size_t i = 0; i < m.ncl; i++) {
		(void)send(m.cl[i].fd, st, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(m.cl[i].fd);
	}
	_exit(0);
}
