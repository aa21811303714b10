/*
 * execd/launch_child: the child's side of a launch, from clone to execve.
 *
 * The child is a clone(CLONE_VM | CLONE_VFORK) of the launcher, as glibc's
 * posix_spawn: it runs in the launcher's memory, on a stack of its own,
 * while the launcher waits, until it executes or dies.  So it allocates
 * nothing, takes no locks, never calls raise/abort and writes nothing of
 * the launcher's but the launch_ctx prepared for it; everything it needs
 * was prepared by the parent.  With no parent to step in before execve,
 * it moves itself into its cgroups and sets its own oom_score_adj; a timer
 * (SIGALRM, whose handler exits) bounds its work as the parent's reads
 * did, and PR_SET_PDEATHSIG (the same signal) ends it with the launcher
 * until execve.  Every
 * failure is reported as {errno, "step: detail"} over the sync socket
 * (child_fail) before the child exits.
 *
 * Order (STYLE #13/#20, crun's container_init): timer and parent-death
 * signal, cgroups, oom_score_adj, join namespaces (pid JOIN: fork into it),
 * new cgroup ns, stdio, rootfs + pivot_root, hostname, readonly rootfs,
 * LSM exec labels (SELinux, AppArmor: they act at execve), bounding set, setgroups/setresgid/setresuid with KEEPCAPS, rlimits, NNP,
 * capset + clear ambient, chdir(cwd) as the container user, argv[0] lookup,
 * every fd >= 3 marked CLOEXEC, timer and parent-death signal cleared,
 * EXEC reported, seccomp last, execve.  (Without no_new_privs the filter
 * is loaded with the ids, while CAP_SYS_ADMIN is held: then the timer is
 * cleared and EXEC reported just before.)
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "execd/launch_internal.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

_Noreturn void child_fail(struct launch_ctx *c, int errnum, const char *fmt, ...)
{
	char msg[SYNC_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	(void)sync_send(c->sync, SYNC_ERROR, errnum, 0, msg);
	_exit(127);
}

static const int ns_flag[LAUNCH_NS_COUNT] = {
	[LAUNCH_NS_MNT] = CLONE_NEWNS, [LAUNCH_NS_UTS] = CLONE_NEWUTS,
	[LAUNCH_NS_IPC] = CLONE_NEWIPC, [LAUNCH_NS_NET] = CLONE_NEWNET,
	[LAUNCH_NS_PID] = CLONE_NEWPID, [LAUNCH_NS_CGROUP] = CLONE_NEWCGROUP,
};
static const char *const ns_name[LAUNCH_NS_COUNT] = {
	"mnt", "uts", "ipc", "net", "pid", "cgroup",
};

static void guard(struct launch_ctx *c, bool on);

static void join_namespaces(struct launch_ctx *c)
{
	const struct launch_spec *s = c->s;
	/* mnt last: it changes root and cwd; pid only affects our children. */
	static const enum launch_ns order[] = { LAUNCH_NS_CGROUP, LAUNCH_NS_IPC, LAUNCH_NS_UTS,
		LAUNCH_NS_NET, LAUNCH_NS_PID, LAUNCH_NS_MNT };
	size_t i;

	for (i = 0; i < sizeof order / sizeof order[0]; i++) {
		enum launch_ns n = order[i];
		if (s->ns[n].mode == LAUNCH_NS_JOIN && setns(s->ns[n].fd, ns_flag[n]) < 0)
			child_fail(c, errno, "setns %s", ns_name[n]);
	}
	if (s->ns[LAUNCH_NS_PID].mode == LAUNCH_NS_JOIN) {
		/* Only a child forked now lands in the joined pid namespace.
		 * CLONE_PARENT makes it the launcher's child, so the launcher
		 * reaps it (as runc's nsexec does); clone3 wants exit_signal 0
		 * with it and uses ours (SIGCHLD).  A plain fork: it copies the
		 * memory this (vfork) child shares, and the launcher resumes
		 * when this middle exits.  Cgroups and oom_score_adj are
		 * inherited; the timer and parent-death signal are not. */
		struct clone_args ca = { .flags = CLONE_PARENT, .exit_signal = 0 };
		long pid = syscall(SYS_clone3, &ca, sizeof ca);
		if (pid < 0)
			child_fail(c, errno, "fork into pid namespace");
		if (pid > 0) {
			(void)sync_send(c->sync, SYNC_PID, 0, (pid_t)pid, "");
			_exit(0);
		}
		guard(c, true);
	}
}

/* SIGALRM, from the timer or as the parent-death signal: the child is often
 * the init of a new pid namespace, which no signal at its default action
 * reaches from inside (not even SIGKILL from a timer); a handler does. */
static void on_guard(int sig)
{
	(void)sig;
	_exit(126);
}

/* The bound on the child's work and its tie to the launcher: armed first,
 * cleared just before execve (an interval timer survives execve; the
 * handler does not). */
static void guard(struct launch_ctx *c, bool on)
{
	int ms = c->s->timeout_ms > 0 ? c->s->timeout_ms : 10000;
	struct itimerval it = { .it_value = { .tv_sec = on ? ms / 1000 : 0, .tv_usec = on ? (ms % 1000) * 1000 : 0 } };
	struct sigaction sa = { .sa_handler = on_guard };

	if (on && sigaction(SIGALRM, &sa, NULL) < 0)
		child_fail(c, errno, "launch timer: handler");
	if (setitimer(ITIMER_REAL, &it, NULL) < 0)
		child_fail(c, errno, "launch timer");
	if (prctl(PR_SET_PDEATHSIG, on ? SIGALRM : 0, 0, 0, 0) < 0)
		child_fail(c, errno, "parent-death signal");
	/* The launcher may have died before the signal was armed (in a new
	 * pid namespace the parent is outside it and reads as 0). */
	pid_t pp = getppid();
	if (on && pp != 0 && pp != c->parent)
		_exit(127);
}

/* Into every cgroup of the spec ("0": this process), before anything else:
 * the namespaces joined next may hide the host's cgroupfs. */
static void join_cgroups(struct launch_ctx *c)
{
	const struct launch_spec *s = c->s;

	for (size_t i = 0; s->cgroup_procs && (i == 0 || (s->cgroup_procs_extra && s->cgroup_procs_extra[i - 1])); i++) {
		const char *path = i == 0 ? s->cgroup_procs : s->cgroup_procs_extra[i - 1];
		char file[4096];
		struct stat st;
		int fd;

		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			snprintf(file, sizeof file, "%s/cgroup.procs", path);
		else
			snprintf(file, sizeof file, "%s", path);
		if ((fd = open(file, O_WRONLY | O_CLOEXEC)) < 0)
			child_fail(c, errno, "cgroup: open %s", file);
		if (write(fd, "0\n", 2) != 2)
			child_fail(c, errno, "cgroup: write %s", file);
		close(fd);
	}
}

/* oom_score_adj of this process (its own, not the launcher's: a vfork
 * child's value is not shared with the memory's other users), clamped to 0
 * when the node forbids lowering it; reported as SYNC_OOM. */
static void set_oom(struct launch_ctx *c)
{
	char buf[32];
	int n, v = c->s->oom_score_adj, clamped = 0;
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		child_fail(c, errno, "oom_score_adj: open");
	for (;;) {
		n = snprintf(buf, sizeof buf, "%d", v);
		if (pwrite(fd, buf, (size_t)n, 0) == n)
			break;
		if (v < 0 && (errno == EACCES || errno == EPERM)) {
			v = 0;
			clamped = 1;
			continue;
		}
		child_fail(c, errno, "oom_score_adj %d", v);
	}
	close(fd);
	if (sync_send(c->sync, SYNC_OOM, clamped, v, "") < 0)
		_exit(127);
}

static void setup_stdio(struct launch_ctx *c)
{
	const struct launch_spec *s = c->s;
	int tmp[3], i;

	for (i = 0; i < 3; i++) {
		if (s->stdio[i] >= 0)
			tmp[i] = fcntl(s->stdio[i], F_DUPFD_CLOEXEC, 3);
		else
			tmp[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (tmp[i] < 0)
			child_fail(c, errno, "stdio %d", i);
	}
	for (i = 0; i < 3; i++) {
		if (dup2(tmp[i], i) < 0)
			child_fail(c, errno, "stdio dup2 %d", i);
		close(tmp[i]);
	}
	if (setsid() < 0 && errno != EPERM)
		child_fail(c, errno, "setsid");
	if (s->terminal && ioctl(0, TIOCSCTTY, 0) < 0)
		child_fail(c, errno, "terminal: TIOCSCTTY");
}

/* Nothing left that can wait: clear the guard, tell the launcher (once). */
static void ready_to_exec(struct launch_ctx *c)
{
	if (c->exec_reported)
		return;
	guard(c, false);
	if (sync_send(c->sync, SYNC_EXEC, 0, 0, "") < 0)
		_exit(127);
	c->exec_reported = true;
}

static void set_ids_and_caps(struct launch_ctx *c)
{
	const struct launch_spec *s = c->s;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	size_t i;
	int cap;

	for (cap = 0; cap <= c->cap_last; cap++)
		if (!(s->cap_bounding & (1ULL << cap)) &&
		    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			child_fail(c, errno, "capabilities: drop bounding %d", cap);
	if (setgroups(s->ngroups, s->groups) < 0)
		child_fail(c, errno, "setgroups");
	if (setresgid(s->gid, s->gid, s->gid) < 0)
		child_fail(c, errno, "setresgid %u", (unsigned)s->gid);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		child_fail(c, errno, "prctl KEEPCAPS");
	if (setresuid(s->uid, s->uid, s->uid) < 0)
		child_fail(c, errno, "setresuid %u", (unsigned)s->uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		child_fail(c, errno, "prctl KEEPCAPS");
	for (i = 0; i < s->nrlimits; i++) {
		struct rlimit rl = { s->rlimits[i].soft, s->rlimits[i].hard };
		if (setrlimit((__rlimit_resource_t)s->rlimits[i].resource, &rl) < 0)
			child_fail(c, errno, "setrlimit %d", s->rlimits[i].resource);
	}
	if (s->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(c, errno, "prctl NO_NEW_PRIVS");
	/* Without NNP the kernel wants CAP_SYS_ADMIN to load a filter: load it
	 * now, while we still hold it (crun does the same).  What follows it
	 * must be allowed by the container's own filter: the guard goes and
	 * EXEC is reported first. */
	if (!s->no_new_privs && c->prog.filter) {
		ready_to_exec(c);
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &c->prog) < 0)
			child_fail(c, errno, "seccomp");
	}
	memset(data, 0, sizeof data);
	data[0].effective = (uint32_t)s->cap_effective;
	data[1].effective = (uint32_t)(s->cap_effective >> 32);
	data[0].permitted = (uint32_t)s->cap_permitted;
	data[1].permitted = (uint32_t)(s->cap_permitted >> 32);
	data[0].inheritable = (uint32_t)s->cap_inheritable;
	data[1].inheritable = (uint32_t)(s->cap_inheritable >> 32);
	if (syscall(SYS_capset, &hdr, data) < 0)
		child_fail(c, errno, "capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		child_fail(c, errno, "clear ambient capabilities");
}

/* Write one /proc attribute of this thread; -1 with errno. */
static int write_attr(const char *path, const char *val)
{
	size_t len = strlen(val);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = write(fd, val, len);
	int e = errno;
	close(fd);
	if (r < 0 || (size_t)r != len) {
		errno = r < 0 ? e : EIO;
		return -1;
	}
	return 0;
}

/* The labels the process gets at execve (runc and crun set them at the
 * same point: after the mounts, before the ids and seccomp). */
static void apply_lsm(struct launch_ctx *c)
{
	const struct launch_spec *s = c->s;

	if (s->process_label && s->process_label[0] &&
	    write_attr("/proc/thread-self/attr/exec", s->process_label) < 0)
		child_fail(c, errno, "SELinux exec label %s", s->process_label);
	if (s->apparmor_profile && s->apparmor_profile[0]) {
		char buf[300];
		if ((size_t)snprintf(buf, sizeof buf, "exec %s", s->apparmor_profile) >= sizeof buf)
			child_fail(c, ENAMETOOLONG, "AppArmor profile %s", s->apparmor_profile);
		/* the per-LSM file (5.8+) when there is one, else the shared one */
		if (write_attr("/proc/thread-self/attr/apparmor/exec", buf) < 0 &&
		    (errno != ENOENT || write_attr("/proc/self/attr/exec", buf) < 0))
			child_fail(c, errno, "AppArmor profile %s", s->apparmor_profile);
	}
}

static const char *env_path(const struct launch_spec *s)
{
	for (size_t i = 0; s->envp && s->envp[i]; i++)
		if (strncmp(s->envp[i], "PATH=", 5) == 0)
			return s->envp[i] + 5;
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

/* argv[0] against PATH; we are inside the container root already, so even
 * absolute symlinks resolve inside it. */
static void resolve_exe(struct launch_ctx *c)
{
	const char *a0 = c->s->argv[0], *p;
	struct stat st;
	int last = ENOENT;

	if (strchr(a0, '/')) {
		if (strlen(a0) >= sizeof c->exe)
			child_fail(c, ENAMETOOLONG, "exec %s", a0);
		memcpy(c->exe, a0, strlen(a0) + 1);
		return;
	}
	for (p = env_path(c->s); ; ) {
		const char *e = strchrnul(p, ':');
		size_t dl = (size_t)(e - p);
		if (dl == 0) {
			dl = 1;
			p = ".";
		}
		if (dl + 1 + strlen(a0) < sizeof c->exe) {
			memcpy(c->exe, p, dl);
			c->exe[dl] = '/';
			memcpy(c->exe + dl + 1, a0, strlen(a0) + 1);
			if (stat(c->exe, &st) == 0 && S_ISREG(st.st_mode)) {
				if (faccessat(AT_FDCWD, c->exe, X_OK, AT_EACCESS) == 0)
					return;
				last = errno;
			}
		}
		if (*e == '\0')
			break;
		p = e + 1;
	}
	child_fail(c, last, "exec %s", a0);
}

int child_main(void *arg)
{
	struct launch_ctx *c = arg;
	const struct launch_spec *s = c->s;

	umask(022);
	/* The launcher may block signals it takes through a signalfd and
	 * ignore SIGPIPE: the container starts with the defaults. */
	{
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				(void)signal(sig, SIG_DFL);
	}
	guard(c, true);
	join_cgroups(c);
	if (s->set_oom_score_adj)
		set_oom(c);
	join_namespaces(c);
	/* After the move into our cgroup: the new cgroup namespace is rooted
	 * there. */
	if (s->ns[LAUNCH_NS_CGROUP].mode == LAUNCH_NS_NEW && unshare(CLONE_NEWCGROUP) < 0)
		child_fail(c, errno, "unshare cgroup namespace");
	setup_stdio(c);

	if (!c->exec_mode) {
		rootfs_setup(c);
		if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
			child_fail(c, errno, "sethostname %s", s->hostname);
		if (s->readonly_rootfs) {
			struct statvfs sv;
			unsigned long f = MS_BIND | MS_REMOUNT | MS_RDONLY;
			if (statvfs("/", &sv) == 0) {
				f |= (sv.f_flag & ST_NOSUID) ? MS_NOSUID : 0;
				f |= (sv.f_flag & ST_NODEV) ? MS_NODEV : 0;
				f |= (sv.f_flag & ST_NOEXEC) ? MS_NOEXEC : 0;
			}
			if (mount(NULL, "/", NULL, f, NULL) < 0)
				child_fail(c, errno, "remount / read-only");
		}
	}

	apply_lsm(c);
	set_ids_and_caps(c);
	if (s->cwd && chdir(s->cwd) < 0)
		child_fail(c, errno, "chdir %s", s->cwd);
	resolve_exe(c);
	/* Every fd >= 3 closes at execve; the sync socket stays usable until
	 * then to report an execve failure. */
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		child_fail(c, errno, "close_range");
	ready_to_exec(c);
	if (s->no_new_privs && c->prog.filter &&
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &c->prog) < 0)
		child_fail(c, errno, "seccomp");
	execve(c->exe, s->argv, s->envp);
	/* May be refused by the filter itself: then the parent sees EOF and the
	 * exit status 127 tells the rest. */
	child_fail(c, errno, "exec %s", s->argv[0]);
}
