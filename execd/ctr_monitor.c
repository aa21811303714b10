/*
 * execd/ctr_monitor: one small process per running container (as conmon).
 *
 * execd forks it at StartContainer.  Before anything else the fork leaves
 * execd's session and closes every fd but the few the launch needs; it
 * makes the container's stdio (a pty, or pipes), opens the CRI log, binds
 * its control socket, launches the container (so it is its parent and
 * reaps it), reports the pid to execd through a pipe, and re-executes
 * itself (/proc/self/exe CTR_MONITOR_ARG ...) so that nothing of execd's
 * memory (channel keys, the state database's pages) stays in a process
 * that lives as long as the container.
 *
 * The monitor then only: copies the container's output into the CRI log
 * and to attached clients, feeds stdin from attached clients, answers
 * "reopen the log", reaps the container, writes the exit record
 * (tmp+fsync+rename) and exits.  execd learns of the exit from the
 * monitor's pidfd and reads the record; a monitor that dies without one
 * is MONITOR_LOST.  Monitors survive execd restarts (own session, no fd
 * shared with execd): the next execd re-adopts them by pid + start time.
 *
 * Control socket (SOCK_SEQPACKET, <run dir>/ctl, 0600 root): the first
 * packet of a connection is one byte, 'R' (reopen the log; the answer is
 * "OK" or "ERR <why>") or 'A' / 'a' (attach without / with stdin; the
 * connection then carries the frames of execd.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "execd/ctr.h"
#include "execd/execd.h"

#define MAX_CLIENTS 16
#define DRAIN_MS 2000

uint64_t ctr_proc_start(pid_t pid)
{
	char path[64], buf[1024];
	int fd;
	ssize_t n;
	unsigned long long v = 0;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may hold spaces and parens: fields resume after the last ')'. */
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	p++;
	/* field 3 is state; starttime is field 22 */
	for (int f = 3; f < 22 && p; f++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p + 1, "%llu", &v) != 1)
		return 0;
	return v;
}

static int open_dir_path(const char *dir, char *sockpath, size_t n, int *dfd)
{
	*dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*dfd < 0)
		return -1;
	/* /proc/self/fd/N/ctl: short whatever the run dir's length (sun_path
	 * holds 108 bytes). */
	snprintf(sockpath, n, "/proc/self/fd/%d/ctl", *dfd);
	return 0;
}

int ctr_monitor_connect(const char *run_dir, char cmd, int *fdp, crisp_err_t *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int dfd, fd;

	if (open_dir_path(run_dir, sa.sun_path, sizeof sa.sun_path, &dfd) < 0)
		return crisp_error(err, CRISP_NOT_FOUND, errno, "container run directory");
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		close(dfd);
		return crisp_error(err, CRISP_INTERNAL, errno, "socket");
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		close(dfd);
		return crisp_error(err, CRISP_FAILED_PRECONDITION, e, "the container's monitor does not answer");
	}
	close(dfd);
	if (send(fd, &cmd, 1, MSG_NOSIGNAL) != 1) {
		int e = errno;
		close(fd);
		return crisp_error(err, CRISP_FAILED_PRECONDITION, e, "the container's monitor does not answer");
	}
	*fdp = fd;
	return 0;
}

int ctr_exit_read(const char *run_dir, int32_t *code, int64_t *finished_ns, int *signo)
{
	char path[PATH_MAX], buf[128];
	int fd, sig = 0;
	ssize_t n;
	long long c, t;

	if ((size_t)snprintf(path, sizeof path, "%s/exit", run_dir) >= sizeof path)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (sscanf(buf, "%lld %lld %d", &c, &t, &sig) != 3 || c < 0 || c > 255 + 128 || t < 0)
		return -1;
	*code = (int32_t)c;
	*finished_ns = t;
	if (signo)
		*signo = sig;
	return 0;
}

int ctr_started_read(const char *run_dir, pid_t *pid, uint64_t *pid_start, pid_t *mpid, uint64_t *mstart)
{
	char path[PATH_MAX], buf[160];
	int fd, p, m;
	unsigned long long ps, ms;
	ssize_t n;

	if ((size_t)snprintf(path, sizeof path, "%s/started", run_dir) >= sizeof path ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (sscanf(buf, "OK %d %llu %llu %d", &p, &ps, &ms, &m) != 4 || p <= 0 || m <= 0)
		return -1;
	*pid = p;
	*pid_start = ps;
	*mpid = m;
	*mstart = ms;
	return 0;
}

/* ---------------------------------------------------------------- spawn */

static __attribute__((noreturn)) void spawn_fail(int rfd, int e, const char *what, const char *detail)
{
	char msg[1200];
	int n = snprintf(msg, sizeof msg, "ERR %d %s%s%s", e, what, detail[0] ? ": " : "", detail);
	if (n > 0)
		(void)!write(rfd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
	_exit(1);
}

static int mkdir_parents(const char *path)
{
	char tmp[PATH_MAX];
	char *slash;

	crisp_strlcpy(tmp, path, sizeof tmp);
	slash = strrchr(tmp, '/');
	if (slash == NULL || slash == tmp)
		return 0;
	*slash = '\0';
	return crisp_mkdir_p(tmp, 0755, 0, 0);
}

static int open_log(const char *path)
{
	if (path == NULL || path[0] == '\0')
		return -2;
	if (mkdir_parents(path) < 0)
		return -1;
	/* never a symlink (last component), never a fifo or device: an
	 * existing log must be a regular file with one link */
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0640);
	struct stat st;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	(void)fcntl(fd, F_SETFL, O_WRONLY | O_APPEND);
	return fd;
}

pid_t ctr_monitor_spawn(const struct ctr_monitor_args *a, int *result_fd, crisp_err_t *err)
{
	int rp[2];
	pid_t pid;

	if (pipe2(rp, O_CLOEXEC) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		close(rp[0]);
		close(rp[1]);
		return crisp_error(err, CRISP_INTERNAL, errno, "fork the monitor");
	}
	if (pid > 0) {
		close(rp[1]);
		*result_fd = rp[0];
		return pid;
	}

	/* ---- the monitor, still in execd's image ---- */
	int keep[40], nkeep = 0, rfd = rp[1];
	sigset_t none;
	struct launch_spec *s = a->spec;
	struct launch_result res;
	crisp_err_t e = CRISP_ERR_INIT;
	int outr = -1, errr = -1, inw = -1, logfd, dfd, ls;
	int child_side[3] = { -1, -1, -1 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)signal(sig, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	keep[nkeep++] = rfd;
	for (size_t i = 0; i < a->nkeep && nkeep < (int)(sizeof keep / sizeof keep[0]); i++)
		keep[nkeep++] = a->keep_fds[i];
	crisp_closefrom(3, keep, (size_t)nkeep);
	/* 0, 1, 2: execd's (its log on 2); the monitor has no use for them */
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		close(devnull);
	}

	if (a->tty) {
		char name[128];
		int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof name) != 0)
			spawn_fail(rfd, errno, "pty", "");
		int sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (sl < 0)
			spawn_fail(rfd, errno, "pty ", name);
		struct winsize ws = { .ws_row = 24, .ws_col = 80 };
		(void)ioctl(m, TIOCSWINSZ, &ws);
		outr = m;
		inw = a->want_stdin ? fcntl(m, F_DUPFD_CLOEXEC, 3) : -1;
		child_side[0] = child_side[1] = child_side[2] = sl;
		s->terminal = true;
	} else {
		int o[2], e2[2], i[2] = { -1, -1 };
		if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e2, O_CLOEXEC) < 0 || (a->want_stdin && pipe2(i, O_CLOEXEC) < 0))
			spawn_fail(rfd, errno, "pipes", "");
		outr = o[0];
		errr = e2[0];
		inw = i[1];
		child_side[0] = i[0];
		child_side[1] = o[1];
		child_side[2] = e2[1];
		s->terminal = false;
	}
	for (int i = 0; i < 3; i++)
		s->stdio[i] = child_side[i];

	logfd = open_log(a->log_path);
	if (logfd == -1)
		spawn_fail(rfd, errno, "open the container log ", a->log_path);
	if (open_dir_path(a->run_dir, sa.sun_path, sizeof sa.sun_path, &dfd) < 0)
		spawn_fail(rfd, errno, "run directory ", a->run_dir);
	(void)unlinkat(dfd, "ctl", 0);
	(void)unlinkat(dfd, "exit", 0);
	(void)unlinkat(dfd, "started", 0);
	ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	mode_t old = umask(0077);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 16) < 0)
		spawn_fail(rfd, errno, "control socket", "");
	umask(old);

	if (launch_container(s, &res, &e) < 0) {
		(void)unlinkat(dfd, "ctl", 0);
		spawn_fail(rfd, e.errnum, e.msg, "");
	}
	for (int i = 0; i < 3; i++)
		if (child_side[i] >= 0 && (i == 0 || child_side[i] != child_side[i - 1]))
			close(child_side[i]);
	for (size_t i = 0; i < a->nkeep; i++)
		close(a->keep_fds[i]);

	char msg[128];
	int n = snprintf(msg, sizeof msg, "OK %d %llu %llu", (int)res.pid,
			 (unsigned long long)ctr_proc_start(res.pid), (unsigned long long)ctr_proc_start(getpid()));
	/* The same facts on disk, for an execd that restarts before it read
	 * them (STARTING recovery): tmp + rename. */
	int pf = openat(dfd, "started.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (pf >= 0) {
		char line[140];
		int ln = snprintf(line, sizeof line, "%s %d\n", msg, (int)getpid());
		if (crisp_write_all(pf, line, (size_t)ln) == 0 && fsync(pf) == 0)
			(void)renameat(dfd, "started.tmp", dfd, "started");
		close(pf);
	}
	(void)!write(rfd, msg, (size_t)n);
	close(rfd);

	/* ---- a fresh image: nothing of execd's memory stays ---- */
	char spid[16], sls[16], sout[16], serr[16], sin[16], slog[16], sdir[16];
	snprintf(spid, sizeof spid, "%d", (int)res.pid);
	snprintf(sls, sizeof sls, "%d", ls);
	snprintf(sout, sizeof sout, "%d", outr);
	snprintf(serr, sizeof serr, "%d", errr);
	snprintf(sin, sizeof sin, "%d", inw);
	snprintf(slog, sizeof slog, "%d", logfd < 0 ? -1 : logfd);
	snprintf(sdir, sizeof sdir, "%d", dfd);
	char *argv[] = { "crisp-monitor", CTR_MONITOR_ARG, (char *)a->id, spid, sls, sout, serr, sin, slog, sdir,
			 a->tty ? "1" : "0", a->stdin_once ? "1" : "0", (char *)(a->log_path ? a->log_path : ""),
			 NULL };
	int fds[] = { ls, outr, errr, inw, logfd, dfd };
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (fds[i] >= 0)
			fcntl(fds[i], F_SETFD, 0);
	char *envp[] = { "ASAN_OPTIONS=detect_leaks=0", NULL };
	execve("/proc/self/exe", argv, envp);
	/* Could not re-execute: go on in this image rather than orphan the
	 * container. */
	_exit(ctr_monitor_main((int)(sizeof argv / sizeof argv[0]) - 1, argv));
}

/* ----------------------------------------------------------------- main */

struct client {
	int fd;
	bool in; /* may write stdin */
};

struct mon {
	const char *id, *log_path;
	pid_t pid;
	int pidfd, ls, out, err, in, dfd;
	bool tty, stdin_once, exited;
	int status;
	struct cri_log log;
	struct client cl[MAX_CLIENTS];
	size_t ncl;
};

static int argint(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return *end == '\0' ? (int)v : -1;
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
	char frame[1 + CTR_FRAME_MAX];

	while (len > 0) {
		size_t n = len > CTR_FRAME_MAX ? CTR_FRAME_MAX : len;
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
	int fd = open_log(m->log_path);

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
	char frame[1 + CTR_FRAME_MAX];
	ssize_t n = recv(m->cl[i].fd, frame, sizeof frame, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop_client(m, i);
		return;
	}
	if (frame[0] == CTR_CH_STDIN && m->cl[i].in && m->in >= 0) {
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
	} else if (frame[0] == CTR_CH_RESIZE) {
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
	broadcast(m, stream == CRI_LOG_STDERR ? CTR_CH_STDERR : CTR_CH_STDOUT, buf, (size_t)n);
	return true;
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

int ctr_monitor_main(int argc, char **argv)
{
	static struct mon m;
	uint64_t drain_until = 0;

	if (argc < 13 || strcmp(argv[1], CTR_MONITOR_ARG) != 0)
		return 2;
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
	if (m.out >= 0)
		crisp_set_nonblock(m.out, true);
	if (m.err >= 0)
		crisp_set_nonblock(m.err, true);
	m.pidfd = (int)syscall(SYS_pidfd_open, m.pid, 0);

	for (;;) {
		struct pollfd p[5 + MAX_CLIENTS];
		int np = 0, timeout = -1;
		int i_ls, i_out = -1, i_err = -1, i_pid = -1, i_cl;

		if (m.exited && ((m.out < 0 && m.err < 0) || crisp_now_ms() >= drain_until))
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
		if (!m.exited && m.pidfd >= 0) {
			i_pid = np;
			p[np++] = (struct pollfd){ m.pidfd, POLLIN, 0 };
		}
		i_cl = np;
		for (size_t i = 0; i < m.ncl; i++)
			p[np++] = (struct pollfd){ m.cl[i].fd, POLLIN, 0 };
		if (m.pidfd < 0 && !m.exited)
			timeout = 200; /* no pidfd: poll waitpid */
		if (m.exited)
			timeout = (int)(drain_until - crisp_now_ms());
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
		if (!m.exited && (i_pid < 0 || (p[i_pid].revents & POLLIN))) {
			pid_t r = waitpid(m.pid, &m.status, __WALL | WNOHANG);
			if (r == m.pid || (r < 0 && errno == ECHILD)) {
				if (r < 0)
					m.status = 255 << 8;
				m.exited = true;
				drain_until = crisp_now_ms() + DRAIN_MS;
				/* nothing reads stdin any more */
				if (m.in >= 0 && m.in != m.out)
					close(m.in);
				m.in = -1;
			}
		}
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
	int n = code == 0 ? snprintf(st, sizeof st, "%c{\"status\":\"Success\"}", CTR_CH_STATUS)
			  : snprintf(st, sizeof st,
				     "%c{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"message\":\"command "
				     "terminated with non-zero exit code\",\"details\":{\"causes\":[{\"reason\":\"ExitCode\","
				     "\"message\":\"%d\"}]}}",
				     CTR_CH_STATUS, code);
	for (size_t i = 0; i < m.ncl; i++) {
		(void)send(m.cl[i].fd, st, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(m.cl[i].fd);
	}
	_exit(0);
}
