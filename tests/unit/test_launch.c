/*
 * Unit tests of execd/launch (runs as root; exit 77 otherwise).  Each case
 * launches real processes from a busybox-static rootfs built in a temp dir,
 * reads what they print through a pipe, and kills and reaps them even when
 * an assertion fails (teardown).  The last case checks that the test
 * process's own mounts and fd count did not change.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <setjmp.h>
#include <cmocka.h>

#include "execd/launch.h"

static char g_tmp[PATH_MAX], g_root[PATH_MAX];
static char *g_mountinfo;
static int g_nfds;
static pid_t g_pids[8];

static const char *const applets[] = { "sh", "cat", "ls", "id", "mount", "grep", "sleep",
	"stat", "hostname", "mkdir", "unshare", "echo", "touch", "wc", "head", "true" };
static char *const g_env[] = { "PATH=/usr/bin:/bin", "HOME=/", NULL };

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;
	if (f == NULL)
		return NULL;
	FILE *m = open_memstream(&buf, &len);
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		fwrite(tmp, 1, n, m);
	fclose(f);
	fclose(m);
	return buf;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	struct stat st;
	assert_true(in >= 0);
	assert_int_equal(fstat(in, &st), 0);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	assert_true(out >= 0);
	off_t off = 0;
	while (off < st.st_size)
		assert_true(sendfile(out, in, &off, (size_t)(st.st_size - off)) > 0);
	close(in);
	close(out);
}

static void pathf(char *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, PATH_MAX, fmt, ap);
	va_end(ap);
}

static int setup(void **state)
{
	char p[PATH_MAX], q[PATH_MAX];
	static const char *const dirs[] = { "bin", "tmp", "proc", "dev", "sys", "usr" };

	snprintf(g_tmp, sizeof g_tmp, "/tmp/crisp-launch-XXXXXX");
	assert_non_null(mkdtemp(g_tmp));
	pathf(g_root, "%s/rootfs", g_tmp);
	assert_int_equal(mkdir(g_root, 0755), 0);
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		pathf(p, "%s/%s", g_root, dirs[i]);
		assert_int_equal(mkdir(p, 0755), 0);
	}
	pathf(p, "%s/tmp", g_root);
	chmod(p, 01777);
	pathf(p, "%s/bin/busybox", g_root);
	copy_file("/bin/busybox", p);
	for (size_t i = 0; i < sizeof applets / sizeof applets[0]; i++) {
		pathf(q, "%s/bin/%s", g_root, applets[i]);
		assert_int_equal(symlink("busybox", q), 0);
	}
	memset(g_pids, 0, sizeof g_pids);
	(void)state;
	return 0;
}

static void rm_rf(const char *path)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", path);
}

static int teardown(void **state)
{
	for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
		if (g_pids[i] > 0) {
			kill(g_pids[i], SIGKILL);
			waitpid(g_pids[i], NULL, 0);
			g_pids[i] = 0;
		}
	rm_rf(g_tmp);
	(void)state;
	return 0;
}

static void track(pid_t pid)
{
	for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
		if (g_pids[i] == 0) {
			g_pids[i] = pid;
			return;
		}
	fail_msg("too many pids");
}

static void base_spec(struct launch_spec *s, char *const *argv)
{
	memset(s, 0, sizeof *s);
	s->rootfs = g_root;
	s->argv = argv;
	s->envp = g_env;
	s->cwd = "/";
	for (int i = 0; i < LAUNCH_NS_COUNT; i++) {
		s->ns[i].mode = LAUNCH_NS_NEW;
		s->ns[i].fd = -1;
	}
	s->cap_effective = s->cap_permitted = s->cap_bounding = launch_default_caps();
	s->no_new_privs = true;
	s->seccomp_fd = -1;
	s->stdio[0] = -1;
	s->stdio[1] = s->stdio[2] = -1;
	s->timeout_ms = 5000;
}

/* Launch (or exec into `target` when > 0), collect stdout+stderr, reap. */
static int run_capture(struct launch_spec *s, pid_t target, char *out, size_t outsz,
	crisp_err_t *err)
{
	struct launch_result res;
	int p[2], rc, status = -1;
	size_t len = 0;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	s->stdio[1] = s->stdio[2] = p[1];
	rc = target > 0 ? launch_exec(target, s, &res, err) : launch_container(s, &res, err);
	close(p[1]);
	if (rc < 0) {
		close(p[0]);
		if (getenv("LAUNCH_DEBUG"))
			fprintf(stderr, "---- error: %s\n", err->msg);
		return -1;
	}
	track(res.pid);
	for (;;) {
		struct pollfd pfd = { p[0], POLLIN, 0 };
		assert_true(poll(&pfd, 1, 10000) == 1);
		ssize_t n = read(p[0], out + len, outsz - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == outsz - 1)
			break;
	}
	out[len] = '\0';
	close(p[0]);
	if (getenv("LAUNCH_DEBUG"))
		fprintf(stderr, "---- output:\n%s----\n", out);
	assert_int_equal(waitpid(res.pid, &status, 0), res.pid);
	for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
		if (g_pids[i] == res.pid)
			g_pids[i] = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define SH(script) ((char *const[]){ "sh", "-c", script, NULL })

static void test_status(void **state)
{
	static const gid_t groups[] = { 1000, 5 };
	struct launch_spec s;
	crisp_err_t err = CRISP_ERR_INIT;
	char out[16384];
	int rc;

	base_spec(&s, SH("cat /proc/self/status; echo pid=$$; hostname; id -G; pwd"));
	s.uid = 1000;
	s.gid = 1000;
	s.groups = groups;
	s.ngroups = 2;
	s.hostname = "crisp-test";
	s.cwd = "/srv/appdir";
	s.set_oom_score_adj = true;
	s.oom_score_adj = -500;
	rc = run_capture(&s, 0, out, sizeof out, &err);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "Uid:\t1000\t1000\t1000\t1000"));
	assert_non_null(strstr(out, "Gid:\t1000\t1000\t1000\t1000"));
	assert_non_null(strstr(out, "Groups:\t5 1000"));
	assert_non_null(strstr(out, "CapInh:\t0000000000000000"));
	/* Non-root without ambient caps: execve clears permitted/effective
	 * (as with CRI-O and containerd); the bounding set stays. */
	assert_non_null(strstr(out, "CapPrm:\t0000000000000000"));
	assert_non_null(strstr(out, "CapEff:\t0000000000000000"));
	assert_non_null(strstr(out, "CapBnd:\t00000000000005fb"));
	assert_non_null(strstr(out, "CapAmb:\t0000000000000000"));
	assert_non_null(strstr(out, "NoNewPrivs:\t1"));
	assert_non_null(strstr(out, "Seccomp:\t0"));
	assert_non_null(strstr(out, "pid=1\n"));
	assert_non_null(strstr(out, "\ncrisp-test\n"));
	assert_non_null(strstr(out, "/srv/appdir"));

	/* uid 0: exactly the asked sets. */
	base_spec(&s, SH("grep Cap /proc/self/status"));
	rc = run_capture(&s, 0, out, sizeof out, &err);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "CapInh:\t0000000000000000"));
	assert_non_null(strstr(out, "CapPrm:\t00000000000005fb"));
	assert_non_null(strstr(out, "CapEff:\t00000000000005fb"));
	assert_non_null(strstr(out, "CapBnd:\t00000000000005fb"));
	assert_non_null(strstr(out, "CapAmb:\t0000000000000000"));

	/* oom_score_adj: -500 is refused here (no CAP_SYS_RESOURCE): clamped. */
	base_spec(&s, SH("cat /proc/self/oom_score_adj"));
	s.set_oom_score_adj = true;
	s.oom_score_adj = -500;
	rc = run_capture(&s, 0, out, sizeof out, &err);
	assert_int_equal(rc, 0);
	assert_true(strcmp(out, "0\n") == 0 || strcmp(out, "-500\n") == 0);
	(void)state;
}

static void test_seccomp(void **state)
{
	struct launch_spec s;
	crisp_err_t err = CRISP_ERR_INIT;
	char out[16384];
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int fd = -1, rc;

	assert_non_null(ctx);
	assert_int_equal(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mkdir), 0), 0);
	assert_int_equal(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mkdirat), 0), 0);
	assert_int_equal(launch_seccomp_export(ctx, &fd, &err), 0);
	seccomp_release(ctx);

	base_spec(&s, SH("grep Seccomp: /proc/self/status; mkdir /tmp/x; echo rc=$?"));
	s.seccomp_fd = fd;
	rc = run_capture(&s, 0, out, sizeof out, &err);
	close(fd);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "Seccomp:\t2"));
	assert_non_null(strstr(out, "Operation not permitted"));
	assert_non_null(strstr(out, "rc=1"));

	/* Without no_new_privs the filter is loaded before capset (it needs
	 * CAP_SYS_ADMIN then); same result. */
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	assert_non_null(ctx);
	assert_int_equal(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mkdir), 0), 0);
	assert_int_equal(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mkdirat), 0), 0);
	assert_int_equal(launch_seccomp_export(ctx, &fd, &err), 0);
	seccomp_release(ctx);
	base_spec(&s, SH("grep -E 'Seccomp:|NoNewPrivs' /proc/self/status; mkdir /tmp/x; echo rc=$?"));
	s.seccomp_fd = fd;
	s.no_new_privs = false;
	rc = run_capture(&s, 0, out, sizeof out, &err);
	close(fd);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "NoNewPrivs:\t0"));
	assert_non_null(strstr(out, "Seccomp:\t2"));
	assert_non_null(strstr(out, "rc=1"));
	(void)state;
}

static void test_mounts(void **state)
{
	static const char *const masked[] = { "/proc/kcore", "/proc/acpi", "/sys/firmware",
		"/proc/does-not-exist", NULL };
	static const char *const ro[] = { "/proc/sys", "/proc/sysrq-trigger", NULL };
	struct launch_spec s;
	crisp_err_t err = CRISP_ERR_INIT;
	char out[32768];
	int rc;

	base_spec(&s, SH("cat /proc/mounts; echo ==; ls /dev; echo ==; "
		"echo kcore=$(cat /proc/kcore | wc -c); ls /sys/firmware | wc -l; "
		"echo 1 > /proc/sys/vm/drop_caches; touch /x; touch /dev/shm/y && echo shm-ok; "
		"ls /sys/fs/cgroup"));
	s.masked_paths = masked;
	s.readonly_paths = ro;
	s.readonly_rootfs = true;
	rc = run_capture(&s, 0, out, sizeof out, &err);
	(void)rc;
	assert_non_null(strstr(out, "proc /proc proc rw,nosuid,nodev,noexec"));
	assert_non_null(strstr(out, " / "));
	assert_non_null(strstr(out, "/dev tmpfs rw,nosuid"));
	assert_non_null(strstr(out, "/dev/pts devpts rw,nosuid,noexec"));
	assert_non_null(strstr(out, "/dev/shm tmpfs rw,nosuid,nodev,noexec"));
	assert_non_null(strstr(out, "/dev/mqueue mqueue rw,nosuid,nodev,noexec"));
	assert_non_null(strstr(out, "/sys sysfs ro,nosuid,nodev,noexec"));
	assert_non_null(strstr(out, "/proc/sys proc ro,"));
	char *devs = strstr(out, "==\n");
	assert_non_null(devs);
	for (const char *d = "null zero full random urandom tty ptmx pts shm mqueue"; *d; ) {
		char name[32];
		size_t n = strcspn(d, " ");
		snprintf(name, sizeof name, "\n%.*s\n", (int)n, d);
		assert_non_null(strstr(devs - 1, name));
		d += n + (d[n] == ' ');
	}
	assert_null(strstr(devs, "\nkmsg\n"));
	assert_null(strstr(devs, "\nmem\n"));
	assert_non_null(strstr(out, "kcore=0"));
	assert_non_null(strstr(out, "Read-only file system"));
	assert_non_null(strstr(out, "shm-ok"));
	assert_non_null(strstr(out, "memory"));
	(void)state;
}

static void test_cri_mounts(void **state)
{
	char src[PATH_MAX], src2[PATH_MAX], via[PATH_MAX];
	struct launch_spec s;
	crisp_err_t err = CRISP_ERR_INIT;
	char out[32768];

	pathf(src, "%s/src", g_tmp);
	pathf(src2, "%s/src2", g_tmp);
	assert_int_equal(mkdir(src, 0755), 0);
	assert_int_equal(mkdir(src2, 0755), 0);
	/* Bidirectional mounts need the rootfs to be a mount point (crisp's
	 * overlay always is) and the source to be shared on the host (as
	 * kubelet makes it): both arranged here, and undone below. */
	assert_int_equal(mount(g_root, g_root, NULL, MS_BIND, NULL), 0);
	assert_int_equal(mount(src2, src2, NULL, MS_BIND, NULL), 0);
	assert_int_equal(mount(NULL, src2, NULL, MS_SHARED, NULL), 0);
	/* /slave binds the mount that /shared made shared: a slave of it. */
	pathf(via, "%s/shared", g_root);
	struct launch_mount m[] = {
		{ .source = src, .target = "/data", .readonly = true,
		  .flags = MS_NOSUID | MS_NODEV },
		{ .source = src2, .target = "/shared", .propagation = LAUNCH_PROP_RSHARED },
		{ .source = via, .target = "/slave", .propagation = LAUNCH_PROP_RSLAVE },
	};
	base_spec(&s, SH("touch /data/f; echo ==; cat /proc/self/mountinfo; mkdir /shared/sub; "
			 "mount -t tmpfs -o size=1m back /shared/sub && touch /shared/sub/from-container"));
	s.cap_effective = s.cap_permitted = s.cap_bounding = launch_default_caps() | (1ULL << 21);
	s.mounts = m;
	s.nmounts = 3;
	int rc = run_capture(&s, 0, out, sizeof out, &err);
	char back[PATH_MAX + 64];
	snprintf(back, sizeof back, "%s/sub/from-container", src2);
	/* the container's mount reached the host through the shared source */
	bool propagated = access(back, F_OK) == 0;
	snprintf(back, sizeof back, "%s/sub", src2);
	(void)umount2(back, MNT_DETACH);
	(void)umount2(src2, MNT_DETACH);
	(void)umount2(g_root, MNT_DETACH);
	if (rc < 0)
		fail_msg("%s", err.msg);
	assert_true(propagated);
	assert_non_null(strstr(out, "Read-only file system"));
	char *l = strstr(out, " /data ro,nosuid,nodev");
	assert_non_null(l);
	l = strstr(out, " /shared ");
	assert_non_null(l);
	assert_true(strstr(l, "shared:") < strchr(l, '\n') && strstr(l, "shared:"));
	l = strstr(out, " /slave ");
	assert_non_null(l);
	assert_true(strstr(l, "master:") && strstr(l, "master:") < strchr(l, '\n'));
	(void)state;
}

static void test_escape(void **state)
{
	char p[PATH_MAX], src[PATH_MAX], marker[PATH_MAX];
	struct launch_spec s;
	crisp_err_t err = CRISP_ERR_INIT;
	char out[8192];
	struct stat before, after;
	char *hosts_before = slurp("/etc/hosts");

	assert_int_equal(stat("/etc/hosts", &before), 0);
	pathf(p, "%s/etc", g_root);
	assert_int_equal(symlink("/../../../../etc", p), 0);
	pathf(p, "%s/mnt", g_root);
	assert_int_equal(symlink("/", p), 0);
	pathf(p, "%s/lnk", g_root);
	assert_int_equal(symlink("/../../../../../tmp", p), 0);
	pathf(src, "%s/hostsrc", g_tmp);
	assert_int_equal(mkdir(src, 0755), 0);
	pathf(marker, "%s/marker", src);
	int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "INSIDE\n", 7), 7);
	close(fd);

	/* mnt -> / and lnk -> /../../../../../tmp: land inside the rootfs. */
	struct launch_mount m[] = {
		{ .source = src, .target = "/mnt/x" },
		{ .source = marker, .target = "/lnk/hosts" },
	};
	base_spec(&s, SH("cat /x/marker /tmp/hosts"));
	s.mounts = m;
	s.nmounts = 2;
	assert_int_equal(run_capture(&s, 0, out, sizeof out, &err), 0);
	assert_string_equal(out, "INSIDE\nINSIDE\n");
	pathf(p, "%s/x", g_root);
	assert_int_equal(stat(p, &after), 0);
	pathf(p, "%s/tmp/hosts", g_root);
	assert_int_equal(stat(p, &after), 0);
	assert_int_equal(access("/x", F_OK), -1);

	/* etc -> /../../../../etc is a loop inside the root: refused, and the
	 * host's /etc/hosts is untouched. */
	struct launch_mount m2[] = { { .source = marker, .target = "/etc/hosts" } };
	base_spec(&s, SH("cat /etc/hosts"));
	s.mounts = m2;
	s.nmounts = 1;
	int rc = run_capture(&s, 0, out, sizeof out, &err);
	if (rc == 0)
		assert_string_equal(out, "INSIDE\n");
	else
		assert_int_equal(err.errnum, ELOOP);
	assert_int_equal(stat("/etc/hosts", &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
	assert_int_equal(before.st_mtime, after.st_mtime);
	char *hosts_after = slurp("/etc/hosts");
	assert_string_equal(hosts_before, hosts_after);
	free(hosts_before);
	free(hosts_after);

	/* A target with "..": refused. */
	struct launch_mount m3[] = { { .source = src, .target = "../../x" } };
	s.mounts = m3;
	assert_int_equal(run_capture(&s, 0, out, sizeof out, &err), -1);
	assert_int_equal(err.errnum, EINVAL);
	struct launch_mount m4[] = { { .source = src, .target = "/a/../../x" } };
	s.mounts = m4;
	assert_int_equal(run_capture(&s, 0, out, sizeof out, &err), -1);
	assert_int_equal(err.errnum, EINVAL);
	(void)state;
}

static void test_enoent(void **state)
{
	struct launch_spec s;
	crisp_err_t err = CRISP_ERR_INIT;
	char out[1024];

	base_spec(&s, (char *const[]){ "/bin/nope", NULL });
	assert_int_equal(run_capture(&s, 0, out, sizeof out, &err), -1);
	assert_int_equal(err.errnum, ENOENT);
	assert_non_null(strstr(err.msg, "exec /bin/nope"));

	base_spec(&s, (char *const[]){ "nope", NULL });
	assert_int_equal(run_capture(&s, 0, out, sizeof out, &err), -1);
	assert_int_equal(err.errnum, ENOENT);
	assert_non_null(strstr(err.msg, "exec nope"));
	(void)state;
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static int self_oom(void)
{
	char b[32] = "";
	int fd = open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_true(read(fd, b, sizeof b - 1) > 0);
	close(fd);
	return atoi(b);
}

/* The child shares the launcher's memory until execve (CLONE_VM|CLONE_VFORK):
 * what it sets for itself stays its own; a child that cannot finish is
 * ended by its own timer and the launch fails, leaving no process. */
static void test_vfork_child(void **state)
{
	struct launch_spec s;
	crisp_err_t err = CRISP_ERR_INIT;
	char out[1024], fifo[PATH_MAX];
	int before = self_oom();

	base_spec(&s, SH("cat /proc/self/oom_score_adj"));
	s.set_oom_score_adj = true;
	s.oom_score_adj = 700;
	assert_int_equal(run_capture(&s, 0, out, sizeof out, &err), 0);
	assert_string_equal(out, "700\n");
	assert_int_equal(self_oom(), before);

	/* a cgroup.procs that blocks the child's open (a FIFO nobody reads) */
	pathf(fifo, "%s/blocking-procs", g_tmp);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	base_spec(&s, SH("echo never"));
	s.cgroup_procs = fifo;
	s.timeout_ms = 300;
	uint64_t t0 = now_ms();
	assert_int_equal(run_capture(&s, 0, out, sizeof out, &err), -1);
	uint64_t took = now_ms() - t0;
	assert_non_null(strstr(err.msg, "died before it executed"));
	assert_true(took >= 250 && took < 5000);
	/* reaped: no child of this process is left */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	unlink(fifo);
	(void)state;
}

static void test_exec(void **state)
{
	struct launch_spec s;
	struct launch_result res;
	crisp_err_t err = CRISP_ERR_INIT;
	char out[8192];

	base_spec(&s, (char *const[]){ "sleep", "100", NULL });
	s.hostname = "podhost";
	assert_int_equal(launch_container(&s, &res, &err), 0);
	track(res.pid);

	base_spec(&s, SH("head -c 5 /proc/1/cmdline; echo; hostname; echo pid=$$; "
		"grep -E 'CapEff|NoNewPrivs|Uid' /proc/self/status"));
	s.uid = 1000;
	s.gid = 1000;
	assert_int_equal(run_capture(&s, res.pid, out, sizeof out, &err), 0);
	assert_non_null(strstr(out, "sleep"));
	assert_non_null(strstr(out, "podhost\n"));
	assert_null(strstr(out, "pid=1\n"));
	assert_non_null(strstr(out, "CapEff:\t0000000000000000"));
	assert_non_null(strstr(out, "NoNewPrivs:\t1"));
	(void)state;
}

static void test_cgroup_devices(void **state)
{
	static const struct launch_device devs[] = {
		{ .path = "/dev/mynull", .type = 'c', .major = 1, .minor = 3, .mode = 0660,
		  .uid = 1000, .gid = 1000 },
		{ .path = "/dev/sub/zero", .type = 'c', .major = 1, .minor = 5, .mode = 0600 },
	};
	char cg[PATH_MAX], out[8192];
	struct launch_spec s;
	crisp_err_t err = CRISP_ERR_INIT;
	int rc;

	pathf(cg, "/sys/fs/cgroup/pids/crisp-test-launch-%d", (int)getpid());
	if (mkdir(cg, 0755) < 0 && errno != EEXIST)
		skip(); /* reason: no cgroup v1 pids hierarchy on this node */
	base_spec(&s, SH("grep pids /proc/self/cgroup; cat /sys/fs/cgroup/pids/cgroup.procs; "
		"stat -c '%n %t:%T %a %u:%g' /dev/mynull /dev/sub/zero; "
		"echo x > /dev/mynull && echo write-ok"));
	s.cgroup_procs = cg;
	s.devices = devs;
	s.ndevices = 2;
	rc = run_capture(&s, 0, out, sizeof out, &err);
	rmdir(cg);
	if (rc < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "pids:/\n"));       /* the cgroup ns is rooted there */
	assert_non_null(strstr(out, "\n1\n"));          /* and we are in it */
	assert_non_null(strstr(out, "/dev/mynull 1:3 660 1000:1000"));
	assert_non_null(strstr(out, "/dev/sub/zero 1:5 600 0:0"));
	assert_non_null(strstr(out, "write-ok"));
	(void)state;
}

/* The mount points of mountinfo text, one per line, leaving out those of
 * other programs' temporary trees (crisp's e2e tests may run alongside):
 * what a launch could leak shows up under this test's own /tmp/crisp-launch-
 * tree or at a node path, never there. */
static char *mount_points(const char *mi)
{
	char *out = calloc(1, strlen(mi) + 1), *o = out;
	const char *l = mi;

	while (out && l && *l) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		char line[4096], f1[16], f2[16], f3[16], root[2048], mp[2048];
		snprintf(line, sizeof line, "%.*s", (int)len, l);
		if (sscanf(line, "%15s %15s %15s %2047s %2047s", f1, f2, f3, root, mp) == 5 &&
		    strncmp(mp, "/tmp/", 5) != 0)
			o += sprintf(o, "%s %s\n", root, mp);
		else if (strstr(line, "/tmp/crisp-launch-"))
			o += sprintf(o, "%s\n", line);
		l = nl ? nl + 1 : NULL;
	}
	return out;
}

static void test_unchanged(void **state)
{
	char *now = slurp("/proc/self/mountinfo");
	char *a = mount_points(now), *b = mount_points(g_mountinfo);
	assert_string_equal(a, b);
	free(a);
	free(b);
	free(now);
	assert_int_equal(count_fds(), g_nfds);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seccomp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cri_mounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_escape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enoent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vfork_child, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cgroup_devices, setup, teardown),
		cmocka_unit_test(test_unchanged),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_launch: needs root, skipped\n");
		return 77;
	}
	if (access("/bin/busybox", X_OK) != 0) {
		fprintf(stderr, "test_launch: needs /bin/busybox (busybox-static), skipped\n");
		return 77;
	}
	g_mountinfo = slurp("/proc/self/mountinfo");
	g_nfds = count_fds();
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(g_mountinfo);
	return rc;
}
