/*
 * execd/ctr_exec: a process in a running container, its stdio relayed as
 * frames (execd.h) by a small helper process forked from execd.
 *
 * The helper (not execd's loop) does the relaying so that a process that
 * prints fast or never reads its stdin can never stall execd; execd reads
 * only the frames (ExecSync) or hands the socket to frontd (Exec).  The
 * helper keeps only its socket and the launch's fds, launches the process
 * with launch_exec (it becomes the helper's child), and ends the session
 * with a status frame.  When the other end closes the socket (the client
 * went away, or ExecSync's timeout) it SIGKILLs the process and exits.
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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/util.h"
#include "execd/ctr.h"
#include "execd/execd.h"

#define DRAIN_MS 2000

static void send_status(int sock, int code, const char *internal)
{
	char st[1400];
	int n;

	if (internal)
		n = snprintf(st, sizeof st,
			     "%c{\"status\":\"Failure\",\"reason\":\"InternalError\",\"message\":\"%.1000s\"}",
			     CTR_CH_STATUS, internal);
	else if (code == 0)
		n = snprintf(st, sizeof st, "%c{\"status\":\"Success\"}", CTR_CH_STATUS);
	else
		n = snprintf(st, sizeof st,
			     "%c{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"message\":\"command terminated "
			     "with non-zero exit code\",\"details\":{\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"%d\"}]}}",
			     CTR_CH_STATUS, code);
	if (n > 0)
		(void)send(sock, st, (size_t)n < sizeof st ? (size_t)n : sizeof st - 1, MSG_NOSIGNAL);
}

/* JSON-safe: the message goes inside a JSON string. */
static void json_clean(char *s)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
			*s = '\'';
}

static bool relay_out(int *fd, int sock, int chan)
{
	char buf[1 + CTR_FRAME_MAX];
	ssize_t n = read(*fd, buf + 1, CTR_FRAME_MAX);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return false;
	}
	buf[0] = (char)chan;
	/* blocking send: back-pressure reaches the process, not execd */
	if (send(sock, buf, (size_t)n + 1, MSG_NOSIGNAL) < 0)
		return false;
	return true;
}

static __attribute__((noreturn)) void helper(pid_t target, struct launch_spec *s, bool tty, bool want_stdin,
					     int sock)
{
	int out = -1, err = -1, in = -1, side[3] = { -1, -1, -1 };
	struct launch_result res;
	crisp_err_t e = CRISP_ERR_INIT;
	int status = 0, pidfd;
	bool exited = false;
	uint64_t until = 0;

	if (tty) {
		char name[128];
		int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		int sl = -1;
		if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof name) != 0 ||
		    (sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
			send_status(sock, 0, "pty");
			_exit(1);
		}
		struct winsize ws = { .ws_row = 24, .ws_col = 80 };
		(void)ioctl(m, TIOCSWINSZ, &ws);
		out = m;
		in = want_stdin ? fcntl(m, F_DUPFD_CLOEXEC, 3) : -1;
		side[0] = side[1] = side[2] = sl;
	} else {
		int o[2], e2[2], i[2] = { -1, -1 };
		if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e2, O_CLOEXEC) < 0 || (want_stdin && pipe2(i, O_CLOEXEC) < 0)) {
			send_status(sock, 0, "pipes");
			_exit(1);
		}
		out = o[0];
		err = e2[0];
		in = i[1];
		side[0] = i[0];
		side[1] = o[1];
		side[2] = e2[1];
	}
	for (int i = 0; i < 3; i++)
		s->stdio[i] = side[i];
	s->terminal = tty;
	if (launch_exec(target, s, &res, &e) < 0) {
		json_clean(e.msg);
		send_status(sock, 0, e.msg);
		_exit(1);
	}
	for (int i = 0; i < 3; i++)
		if (side[i] >= 0 && (i == 0 || side[i] != side[i - 1]))
			close(side[i]);
	pidfd = (int)syscall(SYS_pidfd_open, res.pid, 0);
	crisp_set_nonblock(out, true);
	if (err >= 0)
		crisp_set_nonblock(err, true);
	for (;;) {
		struct pollfd p[4];
		int np = 0, i_out = -1, i_err = -1, i_pid = -1, i_sock;
		if (exited && ((out < 0 && err < 0) || crisp_now_ms() >= until))
			break;
		i_sock = np;
		p[np++] = (struct pollfd){ sock, POLLIN, 0 };
		if (out >= 0) {
			i_out = np;
			p[np++] = (struct pollfd){ out, POLLIN, 0 };
		}
		if (err >= 0) {
			i_err = np;
			p[np++] = (struct pollfd){ err, POLLIN, 0 };
		}
		if (!exited && pidfd >= 0) {
			i_pid = np;
			p[np++] = (struct pollfd){ pidfd, POLLIN, 0 };
		}
		int timeout = exited ? (int)(until - crisp_now_ms()) : pidfd < 0 ? 200 : -1;
		if (poll(p, (nfds_t)np, timeout) < 0 && errno != EINTR)
			break;
		if (p[i_sock].revents & (POLLIN | POLLHUP | POLLERR)) {
			char fr[1 + CTR_FRAME_MAX];
			ssize_t n = recv(sock, fr, sizeof fr, MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				/* the peer is gone: so is the process */
				kill(res.pid, SIGKILL);
				while (waitpid(res.pid, &status, __WALL) < 0 && errno == EINTR)
					;
				_exit(0);
			}
			if (n >= 1 && fr[0] == CTR_CH_STDIN && in >= 0) {
				if (n == 1) {
					if (tty) {
						char eot = 4;
						(void)!write(in, &eot, 1);
					} else {
						close(in);
						in = -1;
					}
				} else if (crisp_write_all(in, fr + 1, (size_t)n - 1) < 0) {
					close(in);
					in = -1;
				}
			} else if (n >= 1 && fr[0] == CTR_CH_RESIZE && tty && n < 120) {
				char js[128];
				memcpy(js, fr + 1, (size_t)n - 1);
				js[n - 1] = '\0';
				const char *w = strstr(js, "\"Width\":"), *h = strstr(js, "\"Height\":");
				if (w && h) {
					struct winsize ws = { .ws_col = (unsigned short)strtoul(w + 8, NULL, 10),
							      .ws_row = (unsigned short)strtoul(h + 9, NULL, 10) };
					(void)ioctl(out, TIOCSWINSZ, &ws);
				}
			}
		}
		if (i_out >= 0 && (p[i_out].revents & (POLLIN | POLLHUP | POLLERR)))
			relay_out(&out, sock, CTR_CH_STDOUT);
		if (i_err >= 0 && (p[i_err].revents & (POLLIN | POLLHUP | POLLERR)))
			relay_out(&err, sock, CTR_CH_STDERR);
		if (!exited && (i_pid < 0 || (p[i_pid].revents & POLLIN))) {
			pid_t r = waitpid(res.pid, &status, __WALL | WNOHANG);
			if (r == res.pid || (r < 0 && errno == ECHILD)) {
				exited = true;
				until = crisp_now_ms() + DRAIN_MS;
				if (in >= 0 && in != out)
					close(in);
				in = -1;
			}
		}
	}
	send_status(sock, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), NULL);
	_exit(0);
}

int ctr_exec_spawn(pid_t target, struct launch_spec *spec, bool tty, bool want_stdin, int *sockfd,
		   pid_t *helper_pid, crisp_err_t *err)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "socketpair");
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return crisp_error(err, CRISP_INTERNAL, errno, "fork");
	}
	if (pid == 0) {
		sigset_t none;
		int keep[2] = { sv[1], spec->seccomp_fd };
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				(void)signal(sig, SIG_DFL);
		signal(SIGPIPE, SIG_IGN);
		crisp_closefrom(3, keep, spec->seccomp_fd >= 0 ? 2 : 1);
		int sz = 1 << 20;
		(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
		helper(target, spec, tty, want_stdin, sv[1]);
	}
	close(sv[1]);
	*sockfd = sv[0];
	*helper_pid = pid;
	return 0;
}
