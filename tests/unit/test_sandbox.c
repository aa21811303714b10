/*
 * Unit tests of common/sandbox.c and the roles' tables (runs as root).
 *
 * Each case forks a child that applies a spec and reports through a pipe;
 * the parent reads /proc/<child>/status while the child waits for a
 * command, then tells it what to do (usually: something forbidden) and
 * checks how it ended.  The representative workloads of frontd and imaged
 * run under the debug trap mode, so a syscall missing from a table shows
 * up by name on the child's stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include <setjmp.h>
#include <cmocka.h>
#include <sodium.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "common/util.h"
#include "ipc/loop.h"
#include "ipc/role.h"

#define TEST_USER "crisp-test-sbx"

static struct {
	bool have_user;
	uid_t uid;
	gid_t gid;
	char empty[64];  /* an empty root-owned dir: the chroot */
	char full[64];   /* a non-empty dir: an invalid chroot */
	char store[64];  /* imaged's store, owned by TEST_USER */
	char root[64];   /* a crisp root: <root>/images owned by TEST_USER */
	char tool[PATH_MAX + 32];
	int landlock_abi;
	int int80_sig; /* how int 0x80 ends in a sandbox: SIGSYS, or SIGSEGV
			* where the kernel has no i386 entry at all */
} T;

/* ---- helpers ---------------------------------------------------------------- */

static int run(const char *const argv[], bool quiet)
{
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		if (quiet) {
			int null = open("/dev/null", O_WRONLY);
			dup2(null, 1);
			dup2(null, 2);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void remove_test_user(void)
{
	const char *ud[] = { "/usr/sbin/userdel", TEST_USER, NULL };
	const char *gd[] = { "/usr/sbin/groupdel", TEST_USER, NULL };

	run(ud, true);
	run(gd, true);
}

/* What a child reports once its sandbox is (or is not) in place. */
struct report {
	int rc;
	int code;
	long v[8];
	char msg[CRISP_ERR_MSG_MAX];
};

struct kid {
	pid_t pid;
	int to, from, err;
};

typedef void (*kid_fn)(int to_parent, int from_parent, void *arg);

static struct kid kid_start(kid_fn fn, void *arg)
{
	int a[2], b[2], e[2];
	struct kid k;

	assert_int_equal(pipe2(a, O_CLOEXEC), 0);
	assert_int_equal(pipe2(b, O_CLOEXEC), 0);
	assert_int_equal(pipe2(e, O_CLOEXEC), 0);
	k.pid = fork();
	assert_true(k.pid >= 0);
	if (k.pid == 0) {
		struct rlimit nocore = { 0, 0 };
		sigset_t none;

		/* cmocka catches SIGSEGV & co to report a failed test: the
		 * child must die of them instead of running the suite on. */
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setrlimit(RLIMIT_CORE, &nocore);
		dup2(e[1], 2);
		close(a[0]);
		close(b[1]);
		close(e[0]);
		fn(a[1], b[0], arg);
		_exit(0);
	}
	close(a[1]);
	close(b[0]);
	close(e[1]);
	k.to = b[1];
	k.from = a[0];
	k.err = e[0];
	return k;
}

static void kid_report(struct kid *k, struct report *r)
{
	memset(r, 0, sizeof *r);
	if (crisp_read_all(k->from, r, sizeof *r) < 0) {
		r->rc = -2;
		snprintf(r->msg, sizeof r->msg, "child died before reporting");
	}
}

static void kid_cmd(struct kid *k, char c)
{
	assert_int_equal(write(k->to, &c, 1), 1);
}

/* Wait for the child; returns its status, and its stderr in errbuf. */
static int kid_wait(struct kid *k, char *errbuf, size_t len)
{
	int st = 0;
	size_t n = 0;
	ssize_t r;

	while (len > 1 && n < len - 1 && (r = read(k->err, errbuf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	if (len > 0)
		errbuf[n] = '\0';
	assert_int_equal(waitpid(k->pid, &st, 0), k->pid);
	close(k->to);
	close(k->from);
	close(k->err);
	return st;
}

static void send_report(int fd, int rc, const crisp_err_t *err, const long *v, size_t nv)
{
	struct report r;

	memset(&r, 0, sizeof r);
	r.rc = rc;
	if (err != NULL) {
		r.code = err->code;
		memcpy(r.msg, err->msg, sizeof r.msg);
	}
	for (size_t i = 0; i < nv && i < ARRAY_SIZE(r.v); i++)
		r.v[i] = v[i];
	(void)!write(fd, &r, sizeof r);
}

/* A field of /proc/PID/status, as text. */
static bool status_field(pid_t pid, const char *name, char *out, size_t len)
{
	char path[64], line[256];
	size_t nl = strlen(name);
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return false;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, name, nl) == 0 && line[nl] == ':') {
			char *v = line + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			v[strcspn(v, "\n")] = '\0';
			crisp_strlcpy(out, v, len);
			fclose(f);
			return true;
		}
	fclose(f);
	return false;
}

static unsigned long long status_hex(pid_t pid, const char *name)
{
	char v[64];

	assert_true(status_field(pid, name, v, sizeof v));
	return strtoull(v, NULL, 16);
}

static long status_long(pid_t pid, const char *name)
{
	char v[64];

	assert_true(status_field(pid, name, v, sizeof v));
	return strtol(v, NULL, 10);
}

/* "Uid:\t1 1 1 1" -> all four equal to want */
static void assert_ids(pid_t pid, const char *name, unsigned want)
{
	char v[64];
	unsigned a, b, c, d;

	assert_true(status_field(pid, name, v, sizeof v));
	assert_int_equal(sscanf(v, "%u %u %u %u", &a, &b, &c, &d), 4);
	assert_int_equal(a, want);
	assert_int_equal(b, want);
	assert_int_equal(c, want);
	assert_int_equal(d, want);
}

static void skip_without_landlock(void)
{
	if (T.landlock_abi < 1) {
		print_message("Landlock not available: skipped\n");
		skip(); /* reason: the kernel has no Landlock */
	}
}

/* ---- what a sandboxed child is told to do ------------------------------------------ */

static pid_t parent_pid;
static int spare_sock = -1; /* a unix socket for setsockopt tests */

static void do_action(char c)
{
	long r = 0;

	switch (c) {
	case 'S': r = socket(AF_INET, SOCK_STREAM, 0); break;
	case 'p': r = socket(AF_PACKET, SOCK_RAW, 0); break;
	case 'M': r = mkdir("/x", 0700); break;
	case 'O': r = open("/", O_RDONLY); break;
	case 'E': {
		char *argv[] = { "/bin/true", NULL };
		r = execve(argv[0], argv, NULL);
		break;
	}
	case 'F': r = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); if (r == 0) _exit(0); break;
	case 'X': r = (long)mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); break;
	case 'x': {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		r = mprotect(p, 4096, PROT_READ | PROT_EXEC);
		break;
	}
	case 'L': {
		struct flock fl = { .l_type = F_WRLCK };
		r = fcntl(2, F_SETLK, &fl);
		break;
	}
	case 'T': {
		int v = 1;
		r = setsockopt(spare_sock, IPPROTO_IP, IP_TOS, &v, sizeof v);
		break;
	}
	case 'G': r = syscall(SYS_tgkill, parent_pid, parent_pid, SIGABRT); break;
	case 'K': r = syscall(SYS_kexec_load, 0, 0, NULL, 0); break;
	case 'I': r = syscall(SYS_init_module, NULL, 0, ""); break;
	case 'B': r = syscall(SYS_bpf, 0, NULL, 0); break;
	case 'R': r = syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0); break;
	case 'U': r = syscall(SYS_io_uring_setup, 1, NULL); break;
	case '8': { /* i386 getpid through int 0x80 */
		long ax = 20;
		__asm__ volatile("int $0x80" : "+a"(ax) : : "memory");
		r = ax;
		break;
	}
	case '3': r = syscall(0x40000000 | SYS_getpid); break; /* x32 */
	case 'A': abort();
	case 'n': /* allowed: an anonymous read/write mapping */
		r = (long)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		_exit(r == (long)MAP_FAILED ? 1 : 0);
	case 'q': _exit(0);
	case 'H': { /* a heap overflow: ASan must report it from inside the sandbox */
		char *h = malloc(8);
		volatile size_t len = 9;
		memset(h, 1, len);
		__asm__ volatile("" : : "r"(h) : "memory");
		free(h);
		_exit(0);
	}
	case 'V': { /* UBSan: signed overflow */
		volatile int i = INT_MAX;
		i = i + 1;
		_exit(i == 0 ? 2 : 0);
	}
	default: _exit(99);
	}
	(void)r;
	_exit(100); /* survived a forbidden call */
}

static void wait_and_act(int from_parent)
{
	char c;

	while (read(from_parent, &c, 1) < 0 && errno == EINTR)
		;
	do_action(c);
}

/* ---- specs ------------------------------------------------------------------------- */

static const struct sandbox_rlimit test_lim[] = { { RLIMIT_CORE, 0 } };

static struct sandbox_spec frontd_spec(bool debug)
{
	struct sandbox_spec s;

	memset(&s, 0, sizeof s);
	s.role = "frontd-test";
	s.user = TEST_USER;
	s.chroot_dir = T.empty;
	s.rlimits = test_lim;
	s.nrlimits = ARRAY_SIZE(test_lim);
	s.landlock = true;
	s.seccomp_mode = SANDBOX_SECCOMP_ALLOW;
	s.syscalls = sandbox_frontd_syscalls;
	s.nsyscalls = sandbox_frontd_nsyscalls;
	s.debug = debug;
	return s;
}

struct frontd_arg {
	bool debug;
	bool with_open; /* frontd's table plus open/openat, to see Landlock and chroot */
};

static void kid_frontd(int to, int from, void *argp)
{
	const struct frontd_arg *a = argp;
	struct sandbox_spec s = frontd_spec(a->debug);
	crisp_err_t err = CRISP_ERR_INIT;
	struct sandbox_syscall table[128];
	long v[4] = { 0 };
	int etc = open("/etc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int sv[2];

	parent_pid = getppid();
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	spare_sock = sv[0];
	if (a->with_open) {
		memcpy(table, sandbox_frontd_syscalls, sandbox_frontd_nsyscalls * sizeof table[0]);
		table[sandbox_frontd_nsyscalls] = (struct sandbox_syscall)SB("openat");
		table[sandbox_frontd_nsyscalls + 1] = (struct sandbox_syscall)SB("open");
		s.syscalls = table;
		s.nsyscalls = sandbox_frontd_nsyscalls + 2;
	}
	int rc = sandbox_apply(&s, &err);
	if (rc == 0 && a->with_open) {
		/* chroot: the real /etc is not there; Landlock: "/" cannot be
		 * read, and not even an fd opened before the sandbox helps. */
		v[0] = open("/etc/passwd", O_RDONLY) < 0 ? errno : 0;
		v[1] = open("/", O_RDONLY | O_DIRECTORY) < 0 ? errno : 0;
		v[2] = openat(etc, "passwd", O_RDONLY) < 0 ? errno : 0;
		v[3] = openat(etc, "newfile", O_WRONLY | O_CREAT, 0600) < 0 ? errno : 0;
	}
	send_report(to, rc, &err, v, ARRAY_SIZE(v));
	if (rc < 0)
		_exit(1);
	wait_and_act(from);
}

/* ---- group fixture ------------------------------------------------------------------ */

static int group_setup(void **state)
{
	crisp_err_t err = CRISP_ERR_INIT;
	char exe[PATH_MAX];
	ssize_t n;
	int fd;

	(void)state;
	if (geteuid() != 0) {
		print_message("test_sandbox needs root\n");
		return -1;
	}
	if (sodium_init() < 0)
		return -1;
	T.landlock_abi = sandbox_landlock_abi();
	/* Some kernels (no IA32 emulation, PVM guests) fault on int 0x80
	 * even unsandboxed: then it is no way around a filter either. */
	pid_t c = fork();
	if (c == 0) {
		long ax = 20;
		signal(SIGSEGV, SIG_DFL);
		__asm__ volatile("int $0x80" : "+a"(ax) : : "memory");
		_exit(ax == getpid() ? 0 : 1);
	}
	int st = 0;
	waitpid(c, &st, 0);
	T.int80_sig = WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV ? SIGSEGV : SIGSYS;
	if (T.int80_sig == SIGSEGV)
		print_message("int 0x80 faults on this kernel even unsandboxed\n");
	remove_test_user(); /* left over from an interrupted run */
	if (sandbox_ensure_user(TEST_USER, NULL, &T.uid, &T.gid, &err) < 0) {
		print_message("sandbox_ensure_user: %s\n", err.msg);
		return -1;
	}
	T.have_user = true;
	strcpy(T.empty, "/tmp/crisp-sbx-empty-XXXXXX");
	strcpy(T.full, "/tmp/crisp-sbx-full-XXXXXX");
	strcpy(T.store, "/tmp/crisp-sbx-store-XXXXXX");
	if (mkdtemp(T.empty) == NULL || mkdtemp(T.full) == NULL || mkdtemp(T.store) == NULL)
		return -1;
	char p[128];
	snprintf(p, sizeof p, "%s/file", T.full);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	if (fd < 0)
		return -1;
	close(fd);
	if (chown(T.store, T.uid, T.gid) < 0)
		return -1;
	strcpy(T.root, "/tmp/crisp-sbx-root-XXXXXX");
	if (mkdtemp(T.root) == NULL || chmod(T.root, 0711) < 0) /* as crispd makes it */
		return -1;
	snprintf(p, sizeof p, "%s/images", T.root);
	if (mkdir(p, 0700) < 0 || chown(p, T.uid, T.gid) < 0)
		return -1;
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(T.tool, sizeof T.tool, "%s/tools/syscall_inject", exe);
	return 0;
}

static int group_teardown(void **state)
{
	char p[128];
	const char *rm[] = { "/bin/rm", "-rf", T.store, NULL };

	(void)state;
	/* Always, also after failures: no test user is left behind. */
	if (T.have_user)
		remove_test_user();
	if (T.empty[0])
		rmdir(T.empty);
	if (T.full[0]) {
		snprintf(p, sizeof p, "%s/file", T.full);
		unlink(p);
		rmdir(T.full);
	}
	if (T.store[0])
		run(rm, true);
	if (T.root[0]) {
		const char *rm2[] = { "/bin/rm", "-rf", T.root, NULL };
		run(rm2, true);
	}
	return 0;
}

/* ---- frontd ---------------------------------------------------------------------------- */

static void test_frontd_status(void **state)
{
	struct frontd_arg a = { .debug = false, .with_open = true };
	struct report r;
	struct kid k;
	char errbuf[1024];
	int st;

	(void)state;
	skip_without_landlock();
	k = kid_start(kid_frontd, &a);
	kid_report(&k, &r);
	if (r.rc != 0)
		print_message("sandbox_apply: %s\n", r.msg);
	assert_int_equal(r.rc, 0);
	assert_ids(k.pid, "Uid", T.uid);
	assert_ids(k.pid, "Gid", T.gid);
	char groups[64];
	assert_true(status_field(k.pid, "Groups", groups, sizeof groups));
	assert_string_equal(groups, "");
	assert_int_equal(status_hex(k.pid, "CapEff"), 0);
	assert_int_equal(status_hex(k.pid, "CapPrm"), 0);
	assert_int_equal(status_hex(k.pid, "CapInh"), 0);
	assert_int_equal(status_hex(k.pid, "CapBnd"), 0);
	assert_int_equal(status_hex(k.pid, "CapAmb"), 0);
	assert_int_equal(status_long(k.pid, "NoNewPrivs"), 1);
	assert_int_equal(status_long(k.pid, "Seccomp"), 2);
	/* chroot: its root is the empty dir (0700 root: not even searchable) */
	char root[PATH_MAX], link[64];
	snprintf(link, sizeof link, "/proc/%d/root", (int)k.pid);
	ssize_t rl = readlink(link, root, sizeof root - 1);
	assert_true(rl > 0);
	root[rl] = '\0';
	assert_string_equal(root, T.empty);
	assert_int_equal(r.v[0], EACCES);
	assert_int_equal(r.v[1], EACCES); /* Landlock */
	assert_int_equal(r.v[2], EACCES); /* Landlock, through an fd from before */
	assert_int_equal(r.v[3], EACCES);
	/* A forbidden syscall kills it. */
	kid_cmd(&k, 'S');
	st = kid_wait(&k, errbuf, sizeof errbuf);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

/* Each forbidden call (or argument) kills frontd; abort() stays SIGABRT. */
static void test_frontd_forbidden(void **state)
{
	static const struct {
		char cmd;
		int sig; /* 0: exits 0; -1: T.int80_sig; -2: survives (exit 100) */
		const char *what;
	} cases[] = {
		{ 'S', SIGSYS, "socket(AF_INET)" },
		{ 'M', SIGSYS, "mkdir" },
#ifdef CRISP_SANITIZED
		{ 'O', -2, "open (EACCES in sanitizer builds)" },
#else
		{ 'O', SIGSYS, "open" },
#endif
		{ 'E', SIGSYS, "execve" },
		{ 'F', SIGSYS, "clone (fork)" },
		{ 'X', SIGSYS, "mmap PROT_EXEC" },
		{ 'x', SIGSYS, "mprotect PROT_EXEC" },
		{ 'L', SIGSYS, "fcntl F_SETLK" },
		{ 'T', SIGSYS, "setsockopt IPPROTO_IP" },
		{ 'G', SIGSYS, "tgkill of another process" },
		{ 'R', SIGSYS, "ptrace" },
		{ '8', -1, "int 0x80 (i386 ABI)" },
		{ '3', SIGSYS, "x32 ABI" },
		{ 'A', SIGABRT, "abort()" },
		{ 'n', 0, "mmap PROT_READ|PROT_WRITE" },
	};
	struct frontd_arg a = { .debug = false, .with_open = false };

	(void)state;
	skip_without_landlock();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct report r;
		char errbuf[1024];
		struct kid k = kid_start(kid_frontd, &a);
		int st, sig = cases[i].sig == -1 ? T.int80_sig : cases[i].sig;

		kid_report(&k, &r);
		assert_int_equal(r.rc, 0);
		kid_cmd(&k, cases[i].cmd);
		st = kid_wait(&k, errbuf, sizeof errbuf);
		if (sig <= 0) {
			if (!WIFEXITED(st) || WEXITSTATUS(st) != (sig == 0 ? 0 : 100))
				fail_msg("%s: status %#x, stderr: %s", cases[i].what, st, errbuf);
		} else if (!WIFSIGNALED(st) || WTERMSIG(st) != sig) {
			fail_msg("%s: status %#x (want signal %d), stderr: %s", cases[i].what, st, sig,
				 errbuf);
		}
	}
}

/* ---- frontd's representative workload, under the debug trap mode ------------------------- */

struct work {
	struct loop *l;
	int lfd, conn, seq;
	int done;
};

static void on_conn(struct loop *l, int fd, uint32_t ev, void *arg)
{
	struct work *w = arg;
	char buf[256];
	struct iovec iov[2] = { { "pong:", 5 }, { buf, 0 } };
	ssize_t n = read(fd, buf, sizeof buf);

	(void)ev;
	if (n <= 0) {
		loop_del(l, fd);
		close(fd);
		return;
	}
	iov[1].iov_len = (size_t)n;
	if (writev(fd, iov, 2) < 0)
		log_error("writev: %s", strerror(errno));
	shutdown(fd, SHUT_WR);
	w->done++;
}

static void on_accept(struct loop *l, int fd, uint32_t ev, void *arg)
{
	struct work *w = arg;
	struct ucred cred;
	socklen_t cl = sizeof cred;
	int sz = 65536;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)ev;
	if (c < 0)
		return;
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
	    setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz) < 0 || crisp_set_nonblock(c, true) < 0 ||
	    crisp_set_cloexec(c, true) < 0)
		log_error("conn setup: %s", strerror(errno));
	w->conn = c;
	loop_add(l, c, EPOLLIN, on_conn, w);
}

static void on_seq(struct loop *l, int fd, uint32_t ev, void *arg)
{
	struct work *w = arg;
	char data[64];
	union {
		char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { data, sizeof data };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf };
	int got = -1;
	struct stat st;

	(void)ev;
	(void)l;
	if (recvmsg(fd, &mh, MSG_CMSG_CLOEXEC) <= 0)
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&got, CMSG_DATA(c), sizeof got);
	if (got < 0 || fstat(got, &st) < 0)
		return;
	/* Hand it on (dup'd), as frontd does with streams. */
	int d = fcntl(got, F_DUPFD_CLOEXEC, 3);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} out;
	struct msghdr om = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = out.buf, .msg_controllen = sizeof out.buf };
	struct cmsghdr *c = CMSG_FIRSTHDR(&om);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &d, sizeof d);
	iov.iov_len = 4;
	if (sendmsg(fd, &om, MSG_NOSIGNAL) < 0)
		log_error("sendmsg: %s", strerror(errno));
	close(d);
	close(got);
	w->done++;
}

static void on_sig(struct loop *l, int signo, void *arg)
{
	struct work *w = arg;

	(void)l;
	(void)signo;
	w->done++;
}

static void on_timer(struct loop *l, void *arg)
{
	struct work *w = arg;

	(void)l;
	w->done++;
}

static void memory_churn(void)
{
	static const size_t sizes[] = { 16, 100, 4000, 70000, 200000, 1 << 20, 3 << 20 };
	void *p[64];
	unsigned char key[crypto_auth_KEYBYTES], mac[crypto_auth_BYTES];

	for (int round = 0; round < 4; round++) {
		for (size_t i = 0; i < ARRAY_SIZE(p); i++) {
			p[i] = malloc(sizes[i % ARRAY_SIZE(sizes)]);
			if (p[i] != NULL)
				memset(p[i], (int)i, sizes[i % ARRAY_SIZE(sizes)]);
		}
		for (size_t i = 0; i < ARRAY_SIZE(p); i += 3) {
			void *q = realloc(p[i], sizes[i % ARRAY_SIZE(sizes)] * 5);
			if (q != NULL)
				p[i] = q;
		}
		for (size_t i = 0; i < ARRAY_SIZE(p); i++)
			free(p[i]);
	}
	randombytes_buf(key, sizeof key);
	crypto_auth(mac, key, sizeof key, key);
	(void)crisp_now_ms();
	(void)crisp_now_ns();
	(void)time(NULL);
}

struct frontd_work_arg {
	int lfd, seq;
};

static void kid_frontd_work(int to, int from, void *argp)
{
	const struct frontd_work_arg *a = argp;
	struct sandbox_spec s = frontd_spec(true);
	crisp_err_t err = CRISP_ERR_INIT;
	struct work w = { .lfd = a->lfd, .seq = a->seq, .conn = -1 };
	int on = 1, rc;

	(void)from;
	/* What frontd does before its sandbox: set up ipc sockets. */
	setsockopt(a->seq, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
	log_init("frontd-test", LOG_LVL_DEBUG);
	rc = sandbox_apply(&s, &err);
	send_report(to, rc, &err, NULL, 0);
	if (rc < 0)
		_exit(1);
	w.l = loop_new();
	if (w.l == NULL || loop_signal(w.l, SIGUSR1, on_sig, &w) < 0 ||
	    loop_add(w.l, w.lfd, EPOLLIN, on_accept, &w) < 0 || loop_add(w.l, w.seq, EPOLLIN, on_seq, &w) < 0 ||
	    loop_timer_add(w.l, 5, on_timer, &w) == NULL)
		_exit(2);
	/* Tell the parent the loop is ready for the signal. */
	(void)!write(to, "r", 1);
	memory_churn();
	for (int i = 0; i < 500 && w.done < 4; i++)
		if (loop_run_once(w.l, 20) < 0)
			_exit(3);
	log_info("workload done: %d events", w.done);
	memory_churn();
	loop_free(w.l);
	exit(w.done >= 4 ? 0 : 4);
}

static void test_frontd_workload(void **state)
{
	char dir[] = "/tmp/crisp-sbx-sock-XXXXXX", path[128], buf[64], errbuf[4096];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd, cfd, sp[2], pfd[2], st;
	struct frontd_work_arg a;
	struct report r;
	struct kid k;

	(void)state;
	skip_without_landlock();
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/s", dir);
	crisp_strlcpy(sa.sun_path, path, sizeof sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	a.lfd = lfd;
	a.seq = sp[1];
	k = kid_start(kid_frontd_work, &a);
	close(sp[1]);
	kid_report(&k, &r);
	if (r.rc != 0)
		fail_msg("sandbox_apply: %s", r.msg);
	assert_int_equal(read(k.from, buf, 1), 1);

	/* A CRI-like client connection. */
	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(write(cfd, "ping", 4), 4);
	/* An fd over ipc. */
	{
		union {
			char b[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} cm;
		struct iovec iov = { "fd", 2 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof cm.b };
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pfd[0], sizeof(int));
		assert_true(sendmsg(sp[0], &mh, 0) > 0);
	}
	kill(k.pid, SIGUSR1);
	st = kid_wait(&k, errbuf, sizeof errbuf);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("frontd workload: status %#x, stderr:\n%s", st, errbuf);
	assert_null(strstr(errbuf, "forbidden syscall"));
	memset(buf, 0, sizeof buf);
	assert_true(read(cfd, buf, sizeof buf - 1) > 0);
	assert_string_equal(buf, "pong:ping");
	close(cfd);
	close(lfd);
	close(sp[0]);
	close(pfd[0]);
	close(pfd[1]);
	unlink(path);
	rmdir(dir);
}

/* ---- debug mode ----------------------------------------------------------------------------- */

static void test_debug_names_syscall(void **state)
{
	struct frontd_arg a = { .debug = true, .with_open = false };
	struct report r;
	char errbuf[1024];
	struct kid k;
	int st;

	(void)state;
	skip_without_landlock();
	k = kid_start(kid_frontd, &a);
	kid_report(&k, &r);
	assert_int_equal(r.rc, 0);
	kid_cmd(&k, 'M');
	st = kid_wait(&k, errbuf, sizeof errbuf);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), SANDBOX_DEBUG_EXIT);
	char want[128];
	snprintf(want, sizeof want, "error frontd-test[%d]: sandbox: forbidden syscall mkdir (83)\n", (int)k.pid);
	if (strstr(errbuf, want) == NULL)
		fail_msg("stderr: %s", errbuf);

	/* A foreign-arch call is named as such. */
	if (T.int80_sig != SIGSYS)
		return;
	k = kid_start(kid_frontd, &a);
	kid_report(&k, &r);
	assert_int_equal(r.rc, 0);
	kid_cmd(&k, '8');
	st = kid_wait(&k, errbuf, sizeof errbuf);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), SANDBOX_DEBUG_EXIT);
	assert_non_null(strstr(errbuf, "forbidden syscall of foreign arch"));
}

#ifdef CRISP_SANITIZED
/* Sanitizer builds: reports from inside the sandbox come out whole,
 * without any forbidden syscall on the way. */
static void test_sanitizer_reports(void **state)
{
	static const struct {
		char cmd;
		const char *want;
	} cases[] = { { 'H', "AddressSanitizer: heap-buffer-overflow" }, { 'V', "runtime error: signed integer overflow" } };
	struct frontd_arg a = { .debug = true, .with_open = false };

	(void)state;
	skip_without_landlock();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct report r;
		static char errbuf[65536];
		struct kid k = kid_start(kid_frontd, &a);
		int st;

		kid_report(&k, &r);
		assert_int_equal(r.rc, 0);
		kid_cmd(&k, cases[i].cmd);
		st = kid_wait(&k, errbuf, sizeof errbuf);
		if (strstr(errbuf, cases[i].want) == NULL || strstr(errbuf, "forbidden syscall") != NULL ||
		    !WIFEXITED(st) || WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == SANDBOX_DEBUG_EXIT) {
			print_message("%s\n", errbuf);
			fail_msg("case %c: status %#x", cases[i].cmd, st);
		}
		if (getenv("SHOW_REPORTS") != NULL)
			print_message("%s\n", errbuf);
	}
}
#endif

/* ---- netd ------------------------------------------------------------------------------------- */

static void kid_netd(int to, int from, void *arg)
{
	struct sandbox_spec s;
	crisp_err_t err = CRISP_ERR_INIT;
	long v[4] = { -1, -1, -1, -1 };
	int rc;

	(void)arg;
	memset(&s, 0, sizeof s);
	s.role = "netd-test";
	s.keep_caps = sandbox_netd_caps;
	s.nkeep_caps = sandbox_netd_ncaps;
	s.rlimits = test_lim;
	s.nrlimits = ARRAY_SIZE(test_lim);
	s.seccomp_mode = SANDBOX_SECCOMP_DENY;
	s.syscalls = sandbox_netd_denied;
	s.nsyscalls = sandbox_netd_ndenied;
	rc = sandbox_apply(&s, &err);
	if (rc == 0) {
		/* Ordinary calls work: files, netlink, a new netns. */
		int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
		int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
		int p[2];
		char out[4096];
		size_t n = 0;
		ssize_t k;

		v[0] = fd >= 0 && nl >= 0;
		v[1] = unshare(CLONE_NEWNET) == 0;
		/* What an exec'd CNI plugin gets: the kept set, no more. */
		if (pipe(p) == 0) {
			pid_t c = fork();
			if (c == 0) {
				char *argv[] = { "/bin/cat", "/proc/self/status", NULL };
				dup2(p[1], 1);
				execv(argv[0], argv);
				_exit(127);
			}
			close(p[1]);
			while (n < sizeof out - 1 && (k = read(p[0], out + n, sizeof out - 1 - n)) > 0)
				n += (size_t)k;
			out[n] = '\0';
			close(p[0]);
			waitpid(c, NULL, 0);
			char *e = strstr(out, "CapEff:");
			char *b = strstr(out, "CapBnd:");
			v[2] = e ? (long)strtoull(e + 7, NULL, 16) : -1;
			v[3] = b ? (long)strtoull(b + 7, NULL, 16) : -1;
		}
	}
	send_report(to, rc, &err, v, ARRAY_SIZE(v));
	if (rc < 0)
		_exit(1);
	wait_and_act(from);
}

static void test_netd(void **state)
{
	const unsigned long long mask = (1ULL << CAP_NET_ADMIN) | (1ULL << CAP_NET_RAW) | (1ULL << CAP_SYS_ADMIN);
	static const struct {
		char cmd;
		const char *what;
	} denied[] = {
		{ 'K', "kexec_load" }, { 'I', "init_module" }, { 'B', "bpf" }, { 'R', "ptrace" },
		{ 'U', "io_uring_setup" }, { '8', "int 0x80" }, { '3', "x32" },
	};
	struct report r;
	char errbuf[1024];
	struct kid k;
	int st;

	(void)state;
	k = kid_start(kid_netd, NULL);
	kid_report(&k, &r);
	if (r.rc != 0)
		fail_msg("sandbox_apply: %s", r.msg);
	assert_ids(k.pid, "Uid", 0);
	assert_ids(k.pid, "Gid", 0);
	assert_int_equal(status_hex(k.pid, "CapEff"), mask);
	assert_int_equal(status_hex(k.pid, "CapPrm"), mask);
	assert_int_equal(status_hex(k.pid, "CapBnd"), mask);
	assert_int_equal(status_hex(k.pid, "CapInh"), 0);
	assert_int_equal(status_hex(k.pid, "CapAmb"), 0);
	assert_int_equal(status_long(k.pid, "NoNewPrivs"), 1);
	assert_int_equal(status_long(k.pid, "Seccomp"), 2);
	assert_int_equal(r.v[0], 1);
	assert_int_equal(r.v[1], 1);
	assert_int_equal((unsigned long long)r.v[2], mask); /* exec'd child's CapEff */
	assert_int_equal((unsigned long long)r.v[3], mask); /* and CapBnd */
	kid_cmd(&k, 'n');
	st = kid_wait(&k, errbuf, sizeof errbuf);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);

	for (size_t i = 0; i < ARRAY_SIZE(denied); i++) {
		k = kid_start(kid_netd, NULL);
		kid_report(&k, &r);
		assert_int_equal(r.rc, 0);
		kid_cmd(&k, denied[i].cmd);
		st = kid_wait(&k, errbuf, sizeof errbuf);
		if (!WIFSIGNALED(st) || WTERMSIG(st) != (denied[i].cmd == '8' ? T.int80_sig : SIGSYS))
			fail_msg("netd %s: status %#x, stderr: %s", denied[i].what, st, errbuf);
	}
}

/* ---- imaged ---------------------------------------------------------------------------------- */

struct imaged_arg {
	int port; /* a TCP listener of the parent on 127.0.0.1 */
	bool debug;
};

static void kid_imaged(int to, int from, void *argp)
{
	const struct imaged_arg *a = argp;
	struct sandbox_landlock_rule fs[64];
	struct sandbox_spec s;
	crisp_err_t err = CRISP_ERR_INIT;
	long v[8] = { 0 };
	char p1[128], p2[128], p3[128];
	int rc;

	memset(&s, 0, sizeof s);
	fs[0] = (struct sandbox_landlock_rule){ T.store, SANDBOX_FS_RW, false };
	memcpy(fs + 1, sandbox_imaged_fs_system, sandbox_imaged_nfs_system * sizeof fs[0]);
	s.role = "imaged-test";
	s.user = TEST_USER;
	s.rlimits = test_lim;
	s.nrlimits = ARRAY_SIZE(test_lim);
	s.landlock = true;
	s.fs = fs;
	s.nfs = 1 + sandbox_imaged_nfs_system;
	s.tcp_unrestricted = true;
	s.seccomp_mode = SANDBOX_SECCOMP_ALLOW;
	s.syscalls = sandbox_imaged_syscalls;
	s.nsyscalls = sandbox_imaged_nsyscalls;
	s.debug = a->debug;
	rc = sandbox_apply(&s, &err);
	if (rc == 0) {
		int fd;
		char buf[64];

		/* The store: create, write, rename across directories, remove. */
		snprintf(p1, sizeof p1, "%s/blob.tmp", T.store);
		snprintf(p2, sizeof p2, "%s/sha256", T.store);
		snprintf(p3, sizeof p3, "%s/sha256/abc", T.store);
		fd = open(p1, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		v[0] = fd >= 0 && write(fd, "x", 1) == 1 && fsync(fd) == 0 && close(fd) == 0 &&
		       mkdir(p2, 0700) == 0 && rename(p1, p3) == 0 && unlink(p3) == 0 && rmdir(p2) == 0;
		/* System files: read-only; the rest of the fs: nothing. */
		fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
		v[1] = fd >= 0 && read(fd, buf, sizeof buf) > 0;
		if (fd >= 0)
			close(fd);
		v[2] = open("/etc/shells", O_RDONLY | O_CLOEXEC) < 0 ? errno : 0;
		v[3] = open("/tmp/crisp-sbx-nope", O_WRONLY | O_CREAT | O_CLOEXEC, 0600) < 0 ? errno : 0;
		/* The resolver and a TCP connection. */
		struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
		v[4] = getaddrinfo("localhost", "443", &hints, &res) == 0;
		if (res != NULL)
			freeaddrinfo(res);
		int s4 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)a->port),
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		v[5] = s4 >= 0 && connect(s4, (struct sockaddr *)&sin, sizeof sin) == 0 && write(s4, "GET", 3) == 3;
		if (s4 >= 0)
			close(s4);
		/* gpg runs under the filter and Landlock; /bin/true is not allowed. */
		int pp[2];
		if (access("/usr/bin/gpg", X_OK) == 0 && pipe2(pp, O_CLOEXEC) == 0) {
			pid_t c = fork();
			if (c == 0) {
				char *argv[] = { "/usr/bin/gpg", "--homedir", T.store, "--version", NULL };
				char *envp[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };
				dup2(pp[1], 1);
				execve(argv[0], argv, envp);
				_exit(errno == EACCES ? 126 : 127);
			}
			close(pp[1]);
			char out[256] = "";
			ssize_t n = read(pp[0], out, sizeof out - 1);
			int st = -1;
			close(pp[0]);
			waitpid(c, &st, 0);
			v[6] = n > 0 && strstr(out, "GnuPG") != NULL && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 1 : st;
		} else {
			v[6] = 1;
		}
		pid_t c = fork();
		if (c == 0) {
			char *argv[] = { "/bin/true", NULL };
			execve(argv[0], argv, NULL);
			_exit(errno == EACCES ? 126 : 127);
		}
		int st = -1;
		waitpid(c, &st, 0);
		v[7] = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	}
	send_report(to, rc, &err, v, ARRAY_SIZE(v));
	if (rc < 0)
		_exit(1);
	wait_and_act(from);
}

static void test_imaged(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sin;
	struct imaged_arg a = { .debug = true };
	struct report r;
	char errbuf[4096];
	struct kid k;
	int lfd, st;

	(void)state;
	skip_without_landlock();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	a.port = ntohs(sin.sin_port);

	k = kid_start(kid_imaged, &a);
	kid_report(&k, &r);
	if (r.rc != 0) {
		kid_wait(&k, errbuf, sizeof errbuf);
		fail_msg("imaged: rc %d: %s; stderr: %s", r.rc, r.msg, errbuf);
	}
	assert_ids(k.pid, "Uid", T.uid);
	assert_int_equal(status_hex(k.pid, "CapEff"), 0);
	assert_int_equal(status_hex(k.pid, "CapBnd"), 0);
	assert_int_equal(status_long(k.pid, "NoNewPrivs"), 1);
	assert_int_equal(status_long(k.pid, "Seccomp"), 2);
	assert_int_equal(r.v[0], 1);      /* store read-write */
	assert_int_equal(r.v[1], 1);      /* /etc/hosts readable */
	assert_int_equal(r.v[2], EACCES); /* /etc/shells is not */
	assert_int_equal(r.v[3], EACCES); /* nor may it write elsewhere */
	assert_int_equal(r.v[4], 1);      /* getaddrinfo */
	assert_int_equal(r.v[5], 1);      /* TCP connect */
	assert_int_equal(r.v[6], 1);      /* gpg runs */
	assert_int_equal(r.v[7], 126);    /* /bin/true may not be executed */
	kid_cmd(&k, 'p');                 /* AF_PACKET socket */
	st = kid_wait(&k, errbuf, sizeof errbuf);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != SANDBOX_DEBUG_EXIT || strstr(errbuf, "forbidden syscall socket") == NULL)
		fail_msg("imaged: status %#x, stderr: %s", st, errbuf);
	/* Nothing but that one call was forbidden. */
	assert_null(strstr(strstr(errbuf, "forbidden syscall") + 1, "forbidden syscall"));
	close(lfd);
}

/* ---- failures are fatal and say which step ---------------------------------------------------- */

struct fail_arg {
	struct sandbox_spec spec;
	bool thread;
};

static void *idle_thread(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

static void kid_fail(int to, int from, void *argp)
{
	struct fail_arg *a = argp;
	crisp_err_t err = CRISP_ERR_INIT;
	pthread_t t;
	int rc;

	(void)from;
	if (a->thread)
		pthread_create(&t, NULL, idle_thread, NULL);
	rc = sandbox_apply(&a->spec, &err);
	send_report(to, rc, &err, NULL, 0);
	_exit(0);
}

static void expect_failure(struct fail_arg *a, const char *want1, const char *want2)
{
	struct report r;
	char errbuf[512];
	struct kid k = kid_start(kid_fail, a);

	kid_report(&k, &r);
	kid_wait(&k, errbuf, sizeof errbuf);
	if (r.rc != -1 || strstr(r.msg, want1) == NULL || (want2 && strstr(r.msg, want2) == NULL))
		fail_msg("rc %d msg \"%s\", wanted \"%s\"/\"%s\"", r.rc, r.msg, want1, want2 ? want2 : "");
}

static void test_failures(void **state)
{
	static const struct sandbox_syscall bad[] = { SB("read"), SB("no_such_syscall") };
	static const struct sandbox_landlock_rule rule[] = { { "/etc", SANDBOX_FS_RO, false } };
	static const struct sandbox_landlock_rule missing[] = { { "/nonexistent/x", SANDBOX_FS_RO, false } };
	struct fail_arg a;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	/* Zero spec: seccomp mode not chosen. */
	memset(&a, 0, sizeof a);
	expect_failure(&a, "spec", "seccomp_mode not set");

	a.spec = frontd_spec(false);
	a.spec.user = "crisp-no-such-user";
	expect_failure(&a, "sandbox frontd-test: resolve", "does not exist");

	a.spec = frontd_spec(false);
	a.spec.chroot_dir = "/nonexistent-crisp-dir";
	expect_failure(&a, "sandbox frontd-test: chroot", "No such file");

	a.spec = frontd_spec(false);
	a.spec.chroot_dir = T.full;
	expect_failure(&a, "chroot", "not empty");

	a.spec = frontd_spec(false);
	a.spec.chroot_dir = "/tmp"; /* world-writable */
	expect_failure(&a, "chroot", "not group/other-writable");

	a.spec = frontd_spec(false);
	a.spec.landlock = false;
	a.spec.fs = rule;
	a.spec.nfs = 1;
	expect_failure(&a, "spec", "landlock off");

	a.spec = frontd_spec(false);
	a.spec.fs = missing;
	a.spec.nfs = 1;
	expect_failure(&a, "landlock", "/nonexistent/x");

	a.spec = frontd_spec(false);
	a.spec.syscalls = bad;
	a.spec.nsyscalls = ARRAY_SIZE(bad);
	expect_failure(&a, "spec", "no_such_syscall");

	a.spec = frontd_spec(false);
	a.spec.allow_new_privs = true;
	expect_failure(&a, "spec", "no_new_privs");

	a.spec = frontd_spec(false);
	a.spec.user = "root";
	expect_failure(&a, "resolve", "may not be root");

	a.spec = frontd_spec(false);
	a.thread = true;
	expect_failure(&a, "threads", "2 threads");
	a.thread = false;

	/* The roles' own checks. */
	struct role_args ra = { .uid = 0, .gid = 0, .root = "/var/lib/crisp", .runroot = "/run/crisp" };
	assert_int_equal(sandbox_apply_role(ROLE_FRONTD, &ra, &err), -1);
	assert_non_null(strstr(err.msg, "frontd"));
	ra.uid = 1000;
	ra.gid = 1000;
	assert_int_equal(sandbox_apply_role(ROLE_NETD, &ra, &err), -1);
	assert_non_null(strstr(err.msg, "uid 0"));

	/* Users. */
	uid_t u;
	gid_t g;
	assert_int_equal(sandbox_ensure_user("-o", NULL, &u, &g, &err), -1);
	assert_int_equal(sandbox_ensure_user("root", NULL, &u, &g, &err), -1);
	assert_non_null(strstr(err.msg, "must not be root"));
	assert_int_equal(sandbox_ensure_user(TEST_USER, NULL, &u, &g, &err), 0); /* exists: found */
	assert_int_equal(u, T.uid);
	assert_int_equal(g, T.gid);
}

/* Every shipped table resolves and is well formed. */
static void test_tables(void **state)
{
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	assert_int_equal(sandbox_check_table(sandbox_frontd_syscalls, sandbox_frontd_nsyscalls, &err), 0);
	assert_int_equal(sandbox_check_table(sandbox_imaged_syscalls, sandbox_imaged_nsyscalls, &err), 0);
	assert_int_equal(sandbox_check_table(sandbox_netd_denied, sandbox_netd_ndenied, &err), 0);
	assert_int_equal(sandbox_check_table(sandbox_sanitizer_syscalls, sandbox_sanitizer_nsyscalls, &err), 0);
	/* frontd never creates sockets, processes or files, nor maps code. */
	for (size_t i = 0; i < sandbox_frontd_nsyscalls; i++) {
		const char *n = sandbox_frontd_syscalls[i].name;
		static const char *const never[] = { "socket", "connect", "bind", "listen", "open", "openat",
						     "execve", "execveat", "clone", "clone3", "fork", "vfork",
						     "ptrace", "mkdir", "unlink", "ioctl_allowed" };
		for (size_t j = 0; j < ARRAY_SIZE(never); j++)
			if (strcmp(n, never[j]) == 0)
				fail_msg("frontd allows %s", n);
		if (!strcmp(n, "mmap") || !strcmp(n, "mprotect"))
			assert_int_equal(sandbox_frontd_syscalls[i].nargs, 1);
	}
}

/* A non-root user that keeps one capability (e.g. a future helper). */
static void kid_user_caps(int to, int from, void *arg)
{
	static const int keep[] = { CAP_NET_BIND_SERVICE };
	struct sandbox_spec s;
	crisp_err_t err = CRISP_ERR_INIT;
	int rc;

	(void)arg;
	memset(&s, 0, sizeof s);
	s.role = "caps-test";
	s.user = TEST_USER;
	s.keep_caps = keep;
	s.nkeep_caps = ARRAY_SIZE(keep);
	s.seccomp_mode = SANDBOX_SECCOMP_NONE;
	rc = sandbox_apply(&s, &err);
	send_report(to, rc, &err, NULL, 0);
	if (rc < 0)
		_exit(1);
	wait_and_act(from);
}

static void test_user_keeps_cap(void **state)
{
	const unsigned long long mask = 1ULL << CAP_NET_BIND_SERVICE;
	struct kid k = kid_start(kid_user_caps, NULL);
	char errbuf[512];
	struct report r;
	int st;

	(void)state;
	kid_report(&k, &r);
	if (r.rc != 0)
		fail_msg("sandbox_apply: %s", r.msg);
	assert_ids(k.pid, "Uid", T.uid);
	assert_int_equal(status_hex(k.pid, "CapEff"), mask);
	assert_int_equal(status_hex(k.pid, "CapPrm"), mask);
	assert_int_equal(status_hex(k.pid, "CapBnd"), mask);
	assert_int_equal(status_hex(k.pid, "CapInh"), 0);
	assert_int_equal(status_hex(k.pid, "CapAmb"), 0);
	assert_int_equal(status_long(k.pid, "NoNewPrivs"), 1);
	assert_int_equal(status_long(k.pid, "Seccomp"), 0);
	kid_cmd(&k, 'q');
	st = kid_wait(&k, errbuf, sizeof errbuf);
	assert_true(WIFEXITED(st));
}

/* ---- the roles' own specs (sandbox_apply_role) ------------------------------------------------ */

static void kid_role(int to, int from, void *argp)
{
	const int *role = argp;
	crisp_err_t err = CRISP_ERR_INIT;
	struct role_args ra;
	long v[2] = { 0 };
	int rc;

	memset(&ra, 0, sizeof ra);
	ra.root = ra.runroot = T.root;
	if (*role == ROLE_FRONTD || *role == ROLE_IMAGED) {
		ra.uid = T.uid;
		ra.gid = T.gid;
	}
	ra.chroot = T.empty;
	ra.sandbox_debug = getenv("SANDBOX_DEBUG") != NULL;
	rc = sandbox_apply_role(*role, &ra, &err);
	if (rc == 0 && *role == ROLE_IMAGED) {
		char p[128];
		snprintf(p, sizeof p, "%s/images/x", T.root);
		int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		v[0] = fd >= 0 && unlink(p) == 0;
		v[1] = open("/etc/shells", O_RDONLY | O_CLOEXEC) < 0 ? errno : 0;
	}
	send_report(to, rc, &err, v, ARRAY_SIZE(v));
	if (rc < 0)
		_exit(1);
	wait_and_act(from);
}

static void test_roles(void **state)
{
	const unsigned long long netd_caps = (1ULL << CAP_NET_ADMIN) | (1ULL << CAP_NET_RAW) | (1ULL << CAP_SYS_ADMIN);
	static const int roles[] = { ROLE_FRONTD, ROLE_IMAGED, ROLE_NETD, ROLE_EXECD };
	unsigned long long full = status_hex(getpid(), "CapBnd");

	(void)state;
	skip_without_landlock();
	for (size_t i = 0; i < ARRAY_SIZE(roles); i++) {
		struct report r;
		char errbuf[512];
		struct kid k = kid_start(kid_role, (void *)&roles[i]);
		int st;

		kid_report(&k, &r);
		if (r.rc != 0)
			fail_msg("role %s: %s", crisp_role_name(roles[i]), r.msg);
		switch (roles[i]) {
		case ROLE_FRONTD:
		case ROLE_IMAGED:
			assert_ids(k.pid, "Uid", T.uid);
			assert_int_equal(status_hex(k.pid, "CapEff"), 0);
			assert_int_equal(status_hex(k.pid, "CapBnd"), 0);
			assert_int_equal(status_long(k.pid, "NoNewPrivs"), 1);
			assert_int_equal(status_long(k.pid, "Seccomp"), 2);
			if (roles[i] == ROLE_IMAGED) {
				assert_int_equal(r.v[0], 1);
				assert_int_equal(r.v[1], EACCES);
			}
			break;
		case ROLE_NETD:
			assert_ids(k.pid, "Uid", 0);
			assert_int_equal(status_hex(k.pid, "CapEff"), netd_caps);
			assert_int_equal(status_hex(k.pid, "CapBnd"), netd_caps);
			assert_int_equal(status_long(k.pid, "NoNewPrivs"), 1);
			assert_int_equal(status_long(k.pid, "Seccomp"), 2);
			break;
		case ROLE_EXECD: /* untouched, on purpose */
			assert_ids(k.pid, "Uid", 0);
			assert_int_equal(status_hex(k.pid, "CapEff"), full);
			assert_int_equal(status_hex(k.pid, "CapBnd"), full);
			assert_int_equal(status_long(k.pid, "NoNewPrivs"), 0);
			assert_int_equal(status_long(k.pid, "Seccomp"), 0);
			break;
		}
		kid_cmd(&k, 'q');
		st = kid_wait(&k, errbuf, sizeof errbuf);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("role %s: status %#x, stderr: %s", crisp_role_name(roles[i]), st, errbuf);
	}
}

/* ---- syscall_inject: an attacker's syscall in a sandboxed process ------------------------------ */

static void kid_plain(int to, int from, void *arg)
{
	char c;
	ssize_t n;

	(void)arg;
	send_report(to, 0, NULL, NULL, 0);
	/* Sleep in read(); the injection interrupts it, and it must be
	 * restarted and still get the byte. */
	while ((n = read(from, &c, 1)) < 0 && errno == EINTR)
		;
	_exit(n == 1 && c == 'q' ? 0 : 10 + (int)n);
}

static int inject(pid_t pid, long nr, const char *args, char *out, size_t len)
{
	char cmd[PATH_MAX + 128];
	FILE *p;
	size_t n;
	int st;

	snprintf(cmd, sizeof cmd, "%s %d %ld %s", T.tool, (int)pid, nr, args);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, len - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_syscall_inject(void **state)
{
	struct frontd_arg a = { .debug = false, .with_open = false };
	char out[256], errbuf[512], want[64];
	struct report r;
	struct kid k;
	int st;

	(void)state;
	skip_without_landlock();
	if (access(T.tool, X_OK) != 0) {
		print_message("%s missing: skipped\n", T.tool);
		skip(); /* reason: syscall_inject is x86_64-only and not built elsewhere */
	}
	/* Sandboxed frontd, asleep in read(): socket(AF_INET) kills it. */
	k = kid_start(kid_frontd, &a);
	kid_report(&k, &r);
	assert_int_equal(r.rc, 0);
	usleep(50 * 1000);
	st = inject(k.pid, SYS_socket, "2 1 0", out, sizeof out);
	if (st != 0 || strstr(out, "killed by SIGSYS") == NULL)
		fail_msg("syscall_inject: exit %d, output: %s", st, out);
	st = kid_wait(&k, errbuf, sizeof errbuf);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);

	/* Unsandboxed: getpid works and the process goes on unharmed. */
	k = kid_start(kid_plain, NULL);
	kid_report(&k, &r);
	usleep(50 * 1000);
	assert_int_equal(inject(k.pid, SYS_getpid, "", out, sizeof out), 0);
	snprintf(want, sizeof want, "returned %d\n", (int)k.pid);
	assert_string_equal(out, want);
	kid_cmd(&k, 'q');
	st = kid_wait(&k, errbuf, sizeof errbuf);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_frontd_status),
		cmocka_unit_test(test_frontd_forbidden),
		cmocka_unit_test(test_frontd_workload),
		cmocka_unit_test(test_debug_names_syscall),
#ifdef CRISP_SANITIZED
		cmocka_unit_test(test_sanitizer_reports),
#endif
		cmocka_unit_test(test_netd),
		cmocka_unit_test(test_imaged),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_user_keeps_cap),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_syscall_inject),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_sandbox: needs root (creates a user, changes ids): skipped\n");
		return 77;
	}
	/* TEST_FILTER=test_imaged runs one case (e.g. under strace -f). */
	if (getenv("TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests_name("sandbox", tests, group_setup, group_teardown);
}
