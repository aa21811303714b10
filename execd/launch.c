/*
 * execd/launch: the parent side of a container launch and the sync protocol
 * (the only place that defines and speaks it; diagram in launch.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "execd/launch_internal.h"

/* ---- sync protocol ------------------------------------------------------ */

int sync_send(int fd, enum sync_type type, int errnum, pid_t pid, const char *msg)
{
	struct sync_msg m;
	ssize_t n;

	memset(&m, 0, sizeof m);
	m.type = type;
	m.errnum = errnum;
	m.pid = pid;
	if (msg)
		snprintf(m.msg, sizeof m.msg, "%s", msg);
	do
		n = send(fd, &m, sizeof m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	return n == (ssize_t)sizeof m ? 0 : (errno = EPROTO, -1);
}

int sync_recv(int fd, struct sync_msg *m, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t deadline = crisp_now_ms() + (uint64_t)timeout_ms;
	struct iovec iov = { m, sizeof *m };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	for (;;) {
		uint64_t now = crisp_now_ms();
		int r;
		if (now >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		r = poll(&pfd, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r > 0)
			break;
	}
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? 0 : -1;
	if (n == 0)
		return 0;
	if (n != (ssize_t)sizeof *m || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    m->type < SYNC_OOM || m->type > SYNC_ERROR) {
		errno = EPROTO;
		return -1;
	}
	m->msg[sizeof m->msg - 1] = '\0';
	return 1;
}

/* ---- parent helpers ----------------------------------------------------- */

static void kill_reap(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
}

static int read_int_file(const char *path, int *v)
{
	char buf[32];
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	*v = atoi(buf);
	return 0;
}

static int load_bpf(int fd, struct sock_fprog *prog, crisp_err_t *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "seccomp: fstat");
	if (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) ||
	    st.st_size > (off_t)(BPF_MAXINSNS * sizeof(struct sock_filter)))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
			"seccomp: program size %lld", (long long)st.st_size);
	prog->filter = malloc((size_t)st.st_size);
	if (prog->filter == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, errno, "seccomp");
	if (pread(fd, prog->filter, (size_t)st.st_size, 0) != st.st_size) {
		free(prog->filter);
		prog->filter = NULL;
		return crisp_error(err, CRISP_INTERNAL, errno ? errno : EIO, "seccomp: read");
	}
	prog->len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
	return 0;
}

static int check_spec(const struct launch_spec *s, bool exec_mode, crisp_err_t *err)
{
	if (s->argv == NULL || s->argv[0] == NULL || s->argv[0][0] == '\0')
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "launch: empty argv");
	if (s->cwd && s->cwd[0] != '/')
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "launch: cwd not absolute");
	if (exec_mode)
		return 0;
	if (s->rootfs == NULL || s->rootfs[0] != '/')
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "launch: rootfs not absolute");
	if (s->ns[LAUNCH_NS_MNT].mode != LAUNCH_NS_NEW)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
			"launch: a container needs a new mount namespace");
	if (s->hostname && s->ns[LAUNCH_NS_UTS].mode != LAUNCH_NS_NEW)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
			"launch: hostname needs a new uts namespace");
	for (int i = 0; i < LAUNCH_NS_COUNT; i++)
		if (s->ns[i].mode == LAUNCH_NS_JOIN && s->ns[i].fd < 0)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "launch: ns %d: no fd", i);
	return 0;
}

/* ---- the launch --------------------------------------------------------- */

/* The child's stack: it runs in the parent's memory (CLONE_VM) until it
 * executes, on a stack of its own; a guard page below. */
#define CHILD_STACK (256u * 1024u)

/* Under AddressSanitizer the child's frames leave their poison in the
 * shadow of that stack (it never returns: it executes or exits), and the
 * next mapping at the same address would inherit it: clean it around
 * each use. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define STACK_CLEAN(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define STACK_CLEAN(p, n) ((void)(p), (void)(n))
#endif

static int do_launch(struct launch_ctx *c, struct launch_result *res, crisp_err_t *err)
{
	const struct launch_spec *s = c->s;
	int timeout = s->timeout_ms > 0 ? s->timeout_ms : 10000;
	int sv[2] = { -1, -1 };
	pid_t pid = -1, middle = -1;
	struct sync_msg m;
	int r, rc = -1, flags = 0;
	bool execd = false, joined = false;
	void *stack;

	if (s->ns[LAUNCH_NS_MNT].mode == LAUNCH_NS_NEW)
		flags |= CLONE_NEWNS;
	if (s->ns[LAUNCH_NS_UTS].mode == LAUNCH_NS_NEW)
		flags |= CLONE_NEWUTS;
	if (s->ns[LAUNCH_NS_IPC].mode == LAUNCH_NS_NEW)
		flags |= CLONE_NEWIPC;
	if (s->ns[LAUNCH_NS_NET].mode == LAUNCH_NS_NEW)
		flags |= CLONE_NEWNET;
	if (s->ns[LAUNCH_NS_PID].mode == LAUNCH_NS_NEW)
		flags |= CLONE_NEWPID;
	/* cgroup: unshared by the child after it moved into its cgroup. */

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "launch: socketpair");
	stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED) {
		crisp_error(err, CRISP_RESOURCE_EXHAUSTED, errno, "launch: child stack");
		goto out;
	}
	(void)mprotect(stack, 4096, PROT_NONE);
	STACK_CLEAN((char *)stack + 4096, CHILD_STACK - 4096);
	c->sync = sv[1];
	c->parent = getpid();
	/* vfork semantics: no copy of this process's memory to make, fault in
	 * and tear down again at execve (on a virtualised node each page fault
	 * costs microseconds); this process waits until the child executed
	 * (or died), the child's own timer bounding that wait. */
	pid = clone(child_main, (char *)stack + CHILD_STACK, flags | CLONE_VM | CLONE_VFORK | SIGCHLD, c);
	int clone_errno = errno;
	STACK_CLEAN((char *)stack + 4096, CHILD_STACK - 4096);
	munmap(stack, CHILD_STACK);
	if (pid < 0) {
		crisp_error(err, CRISP_INTERNAL, clone_errno, "launch: clone");
		goto out;
	}
	close(TAKE_FD(sv[1]));

	/* What the child sent before it executed, or the middle's report and
	 * then the grandchild's (pid JOIN), until EOF: the last copy of the
	 * child's end closed at execve, or with the child. */
	for (;;) {
		r = sync_recv(sv[0], &m, timeout);
		if (r == 0)
			break;
		if (r == 1 && m.type == SYNC_OOM) {
			res->oom_score_adj = m.pid;
			res->oom_clamped = m.errnum != 0;
		} else if (r == 1 && m.type == SYNC_PID && !joined && m.pid > 0) {
			middle = pid;
			pid = m.pid;
			kill_reap(middle); /* it exits by itself; make sure */
			middle = -1;
			joined = true;
		} else if (r == 1 && m.type == SYNC_EXEC) {
			execd = true;
		} else if (r == 1 && m.type == SYNC_ERROR) {
			crisp_error(err, CRISP_INTERNAL, m.errnum, "%s", m.msg);
			goto out;
		} else {
			crisp_error(err, CRISP_INTERNAL, r < 0 ? errno : EPROTO, "launch: waiting for exec");
			goto out;
		}
	}
	if (!execd) {
		crisp_error(err, CRISP_INTERNAL, ETIMEDOUT,
			    "launch: the container's process died before it executed (timed out after %d ms, or killed)",
			    timeout);
		goto out;
	}
	res->pid = pid;
	pid = -1; /* owned by the caller now */
	rc = 0;
out:
	kill_reap(middle);
	kill_reap(pid);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	return rc;
}

static int launch_common(const struct launch_spec *s, bool exec_mode, struct launch_result *res,
	crisp_err_t *err)
{
	struct launch_ctx *c;
	int rc;

	if (check_spec(s, exec_mode, err) < 0)
		return -1;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, errno, "launch");
	c->s = s;
	c->sync = -1;
	c->exec_mode = exec_mode;
	c->cap_last = 40;
	(void)read_int_file("/proc/sys/kernel/cap_last_cap", &c->cap_last);
	if (c->cap_last < 0 || c->cap_last > 63)
		c->cap_last = 63;
	memset(res, 0, sizeof *res);
	res->pid = -1;
	res->oom_score_adj = s->oom_score_adj;
	if (s->seccomp_fd >= 0 && load_bpf(s->seccomp_fd, &c->prog, err) < 0) {
		free(c);
		return -1;
	}
	rc = do_launch(c, res, err);
	free(c->prog.filter);
	free(c);
	return rc;
}

int launch_container(const struct launch_spec *s, struct launch_result *res, crisp_err_t *err)
{
	return launch_common(s, false, res, err);
}

int launch_exec(pid_t target, const struct launch_spec *s, struct launch_result *res,
	crisp_err_t *err)
{
	static const char *const names[LAUNCH_NS_COUNT] = {
		"mnt", "uts", "ipc", "net", "pid", "cgroup",
	};
	struct launch_spec js = *s;
	int fds[LAUNCH_NS_COUNT], i, rc = -1;
	char path[64];

	for (i = 0; i < LAUNCH_NS_COUNT; i++)
		fds[i] = -1;
	for (i = 0; i < LAUNCH_NS_COUNT; i++) {
		snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)target, names[i]);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0) {
			crisp_error(err, errno == ENOENT ? CRISP_NOT_FOUND : CRISP_INTERNAL, errno,
				"exec: open %s", path);
			goto out;
		}
		js.ns[i].mode = LAUNCH_NS_JOIN;
		js.ns[i].fd = fds[i];
	}
	js.hostname = NULL;
	js.mounts = NULL;
	js.nmounts = 0;
	js.devices = NULL;
	js.ndevices = 0;
	js.masked_paths = NULL;
	js.readonly_paths = NULL;
	js.readonly_rootfs = false;
	rc = launch_common(&js, true, res, err);
out:
	for (i = 0; i < LAUNCH_NS_COUNT; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

int launch_seccomp_export(void *ctx, int *fd, crisp_err_t *err)
{
	int mfd = memfd_create("crisp-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int r;

	if (mfd < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "seccomp: memfd_create");
	r = seccomp_export_bpf((scmp_filter_ctx)ctx, mfd);
	if (r < 0) {
		close(mfd);
		return crisp_error(err, CRISP_INTERNAL, -r, "seccomp: export");
	}
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		close(mfd);
		return crisp_error(err, CRISP_INTERNAL, errno, "seccomp: seal");
	}
	*fd = mfd;
	return 0;
}

uint64_t launch_default_caps(void)
{
	return (1ULL << 0) /* CHOWN */ | (1ULL << 1) /* DAC_OVERRIDE */ |
		(1ULL << 4) /* FSETID */ | (1ULL << 3) /* FOWNER */ |
		(1ULL << 6) /* SETGID */ | (1ULL << 7) /* SETUID */ |
		(1ULL << 8) /* SETPCAP */ | (1ULL << 10) /* NET_BIND_SERVICE */ |
		(1ULL << 5) /* KILL */;
}
