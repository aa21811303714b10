/*
 * execd/ctr_infra: the process that holds a pod's shared PID namespace
 * (NamespaceMode POD, shareProcessNamespace) and is its pid 1: it reaps
 * the orphans of the pod's containers, as the pause process does.
 *
 * It holds nothing a container could use against the node, although every
 * container of the pod sees it as /proc/1: it joins the pod's network, UTS
 * and IPC namespaces; it is re-executed from execd (no execd memory); in
 * its own mount namespace it pivots into an empty directory (so neither
 * /proc/1/root nor its mount namespace leads to the node's files); it runs
 * as nobody (65534) with no capabilities, no_new_privs, non-dumpable (so
 * only CAP_SYS_PTRACE in the pod could even look at it), every fd closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "execd/ctr.h"

#define INFRA_UID 65534

static __attribute__((noreturn)) void die(int fd, const char *what)
{
	char msg[256];
	int n = snprintf(msg, sizeof msg, "ERR %s: %s", what, strerror(errno));
	if (n > 0)
		(void)!write(fd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
	_exit(1);
}

int pod_infra_spawn(const char *dir, int netns_fd, const char *nsdir, bool uts, bool ipc, const char *label,
		    pid_t *out, uint64_t *start, crisp_err_t *err)
{
	int p[2];
	pid_t mid;
	char msg[300];
	ssize_t n;
	int st;

	if (pipe2(p, O_CLOEXEC) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "pipe");
	mid = fork();
	if (mid < 0) {
		close(p[0]);
		close(p[1]);
		return crisp_error(err, CRISP_INTERNAL, errno, "fork");
	}
	if (mid == 0) {
		char path[PATH_MAX];
		int keep[1] = { p[1] };
		sigset_t none;
		close(p[0]);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				(void)signal(s, SIG_DFL);
		if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) < 0)
			die(p[1], "join the pod network namespace");
		static const char *const kinds[] = { "uts", "ipc" };
		static const int flags[] = { CLONE_NEWUTS, CLONE_NEWIPC };
		for (int i = 0; i < 2; i++) {
			if ((i == 0 && !uts) || (i == 1 && !ipc))
				continue;
			snprintf(path, sizeof path, "%.4000s/%s", nsdir, kinds[i]);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0 || setns(fd, flags[i]) < 0)
				die(p[1], path);
			close(fd);
		}
		crisp_closefrom(3, keep, 1);
		/* an SELinux exec label: kept by the fork below, applied at its
		 * execve */
		if (label != NULL && label[0] != '\0') {
			int fd = open("/proc/thread-self/attr/exec", O_WRONLY | O_CLOEXEC);
			if (fd < 0 || write(fd, label, strlen(label)) != (ssize_t)strlen(label))
				die(p[1], "SELinux exec label");
			close(fd);
		}
		if (unshare(CLONE_NEWPID) < 0)
			die(p[1], "unshare the pid namespace");
		pid_t inf = fork();
		if (inf < 0)
			die(p[1], "fork");
		if (inf > 0) {
			/* the middle leaves: init adopts the infra */
			int m = snprintf(path, sizeof path, "OK %d %llu", (int)inf,
					 (unsigned long long)ctr_proc_start(inf));
			(void)!write(p[1], path, (size_t)m);
			_exit(0);
		}
		/* pid 1 of the new namespace */
		setsid();
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
			close(devnull);
		}
		char *argv[] = { "crisp-pod-infra", POD_INFRA_ARG, (char *)dir, NULL };
		char *envp[] = { "ASAN_OPTIONS=detect_leaks=0", NULL };
		close(p[1]);
		execve("/proc/self/exe", argv, envp);
		_exit(127);
	}
	close(p[1]);
	n = read(p[0], msg, sizeof msg - 1);
	close(p[0]);
	while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
		;
	msg[n > 0 ? n : 0] = '\0';
	int ipid = 0;
	unsigned long long s = 0;
	if (sscanf(msg, "OK %d %llu", &ipid, &s) != 2 || ipid <= 0)
		return crisp_error(err, CRISP_INTERNAL, 0, "pod infra process: %s", n > 0 ? msg + (n > 4 ? 4 : 0) : "died");
	*out = ipid;
	*start = s;
	return 0;
}

void pod_infra_kill(pid_t pid, uint64_t start)
{
	int fd;

	if (pid <= 0 || (fd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0)
		return;
	if (ctr_proc_start(pid) == start)
		(void)syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
	close(fd);
}

static void on_chld(int s)
{
	(void)s;
}

int pod_infra_main(int argc, char **argv)
{
	const char *dir;
	sigset_t chld, none;

	if (argc != 3 || strcmp(argv[1], POD_INFRA_ARG) != 0 || getpid() != 1)
		return 2;
	dir = argv[2];
	crisp_closefrom(3, NULL, 0);
	/* an empty root in a mount namespace of its own */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount(dir, dir, NULL, MS_BIND, NULL) < 0 || chdir(dir) < 0 ||
	    syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		_exit(1);
	/* nobody, nothing */
	if (setgroups(0, NULL) < 0 || setresgid(INFRA_UID, INFRA_UID, INFRA_UID) < 0 ||
	    setresuid(INFRA_UID, INFRA_UID, INFRA_UID) < 0)
		_exit(1);
	for (int c = 0; c < 64; c++)
		(void)prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* reap whatever the pod's containers orphan */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	signal(SIGCHLD, on_chld);
	sigemptyset(&none);
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
			;
		sigsuspend(&none);
	}
}
