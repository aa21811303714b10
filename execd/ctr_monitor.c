/*
 * execd/ctr_monitor: one small process per running container (as conmon).
 *
 * execd forks it at StartContainer.  Before anything else the fork leaves
 * execd's session and closes every fd but the few the launch needs; it
 * makes the container's stdio (a pty, or pipes), opens the CRI log, binds
 * its control socket, launches the container (so it is its parent and
 * reaps it), reports the pid to execd through a socket ("OK <pid> <start
 * times>\n", or "ERR <errno> <why>" and exit), waits until execd closes its
 * end (it recorded the start and answered: see the exec's cost below), and executes
 * crisp-monitor (monitor/, a small static binary beside crisp-execd,
 * opened once at execd's start and executed by fd) so that nothing of
 * execd's memory (channel keys, the state database's pages) stays in a
 * process that lives as long as the container.
 *
 * The monitor then only (monitor/loop.c, confined by monitor/harden.c):
 * copies the container's output into the CRI log and to attached clients,
 * feeds stdin from attached clients, answers "reopen the log", reaps the
 * container, writes the exit record (tmp+fsync+rename) and exits.  execd
 * learns of the exit from the monitor's pidfd and reads the record; a
 * monitor that dies without one is MONITOR_LOST.  Monitors survive execd
 * restarts (own session, no fd shared with execd): the next execd
 * re-adopts them by pid + start time.
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
#include <sys/prctl.h>
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
#include "execd/ctr_oci.h"
#include "execd/execd.h"

#define MAX_CLIENTS 16
#define DRAIN_MS 2000
#define START_ACK_MS 5000 /* the most the exec waits for execd's acknowledgement */

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

/* The monitor's binary, opened once at execd's start (ctr_monitor_exe_open):
 * every monitor runs the same file even if the installed one is replaced
 * while execd runs.  -1: none (unit tests re-execute themselves). */
static int monitor_exe = -1;

int ctr_monitor_exe_open(crisp_err_t *err)
{
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
	struct stat st, self;
	char *slash;
	int fd;

	if (n < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "/proc/self/exe");
	path[n] = '\0';
	if ((slash = strrchr(path, '/')) == NULL || (size_t)(slash + 1 - path) + sizeof MON_EXE_NAME > sizeof path)
		return crisp_error(err, CRISP_INTERNAL, ENAMETOOLONG, "/proc/self/exe");
	memcpy(slash + 1, MON_EXE_NAME, sizeof MON_EXE_NAME);
	if ((fd = open(path, O_PATH | O_CLOEXEC)) < 0)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, errno,
				   "the container monitor %s (installed beside crisp-execd)", path);
	/* installed as crisp-execd is: same owner, writable by nobody else */
	if (fstat(fd, &st) < 0 || stat("/proc/self/exe", &self) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != self.st_uid || (st.st_mode & 0022) != 0 || (st.st_mode & 0100) == 0) {
		close(fd);
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
				   "the container monitor %s is not an executable owned like crisp-execd and "
				   "writable only by its owner", path);
	}
	if (monitor_exe >= 0)
		close(monitor_exe);
	monitor_exe = fd;
	return 0;
}

pid_t ctr_monitor_spawn(const struct ctr_monitor_args *a, int *result_fd, crisp_err_t *err)
{
	int rp[2];
	pid_t pid;

	/* A socket, not a pipe: execd answers "OK" by closing its end (see
	 * below). */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, rp) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "socketpair");
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
	if (monitor_exe >= 0)
		keep[nkeep++] = monitor_exe;
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

	if (a->tty && a->oci != NULL) {
		/* the runtime makes the pty; its master arrives after the launch */
		s->terminal = true;
	} else if (a->tty) {
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

	logfd = mon_open_log(a->log_path);
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

	if (a->oci != NULL) {
		/* the container's init is orphaned when the runtime exits: it
		 * must become this process's child (ctr_oci.h) */
		int master = -1;
		if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
			spawn_fail(rfd, errno, "PR_SET_CHILD_SUBREAPER", "");
		if (ctr_oci_run(s, a->oci, child_side, a->tty, &master, &res, &e) < 0) {
			(void)unlinkat(dfd, "ctl", 0);
			spawn_fail(rfd, e.errnum, e.msg, "");
		}
		if (a->tty) {
			struct winsize ws = { .ws_row = 24, .ws_col = 80 };
			(void)ioctl(master, TIOCSWINSZ, &ws);
			outr = master;
			inw = a->want_stdin ? fcntl(master, F_DUPFD_CLOEXEC, 3) : -1;
		}
	} else if (launch_container(s, &res, &e) < 0) {
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
	/* The line ends the answer: execd acts on it without waiting for EOF
	 * (which would follow only once this process ran on to its exec). */
	msg[n++] = '\n';
	/* Then wait until execd has recorded the start and answered (it
	 * closes its end; EOF also if execd died).  The exec below tears down
	 * this process's copy of execd's memory (milliseconds on a small VM);
	 * the wakeup of execd is a "sync" one that puts it on this CPU, where
	 * that teardown would delay its answer.  The container runs already;
	 * only the start of log draining waits (its pipes buffer meanwhile). */
	if (crisp_write_all(rfd, msg, (size_t)n) == 0) {
		struct pollfd pfd = { .fd = rfd, .events = POLLIN };
		char c;
		(void)shutdown(rfd, SHUT_WR);
		while (poll(&pfd, 1, START_ACK_MS) < 0 && errno == EINTR)
			;
		(void)!read(rfd, &c, 1);
	}
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
	/* The exec tears down this process's copy of execd's memory: CPU time
	 * (milliseconds here) that nobody waits for, while the client's answer
	 * is relayed and the container starts.  At SCHED_IDLE it takes only
	 * what is left over; crisp-monitor's first step restores SCHED_OTHER. */
	{
		struct sched_param sp = { 0 };
		(void)sched_setscheduler(0, SCHED_IDLE, &sp);
	}
	if (monitor_exe >= 0)
		execveat(monitor_exe, "", argv, envp, AT_EMPTY_PATH);
	else
		execve("/proc/self/exe", argv, envp);
	/* Could not execute: run the same loop (confined the same way) in
	 * this image rather than orphan the container. */
	_exit(ctr_monitor_main((int)(sizeof argv / sizeof argv[0]) - 1, argv));
}

/* ----------------------------------------------------------------- main */

/* monitor.h mirrors execd.h's attach frames: crisp-monitor cannot include
 * execd.h (it links nothing but libc). */
_Static_assert(MON_FRAME_MAX == CTR_FRAME_MAX, "monitor frame size");
_Static_assert((int)MON_CH_STDIN == (int)CTR_CH_STDIN && (int)MON_CH_STDOUT == (int)CTR_CH_STDOUT &&
		       (int)MON_CH_STDERR == (int)CTR_CH_STDERR && (int)MON_CH_STATUS == (int)CTR_CH_STATUS &&
		       (int)MON_CH_RESIZE == (int)CTR_CH_RESIZE,
	       "monitor frame channels");

int ctr_monitor_main(int argc, char **argv)
{
	return monitor_main(argc, argv);
}
