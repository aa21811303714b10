/*
 * Unit tests of the container pieces of execd: command/env/user/caps
 * resolution (ctr_spec.c), the CRI log writer (ctr_log.c), and -- as root,
 * with a busybox-static rootfs in a temp dir -- the monitor (ctr_monitor.c:
 * launch, log file, exit record, attach frames, log reopen), exec sessions
 * (ctr_exec.c) and the RuntimeDefault seccomp filter.  Every process a case
 * starts is killed and reaped in teardown even when an assertion fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "common/util.h"
#include "execd/ctr.h"
#include "execd/ctr_shm.h"
#include "execd/execd.h"

static char g_tmp[64], g_root[PATH_MAX], g_run[PATH_MAX];
static pid_t g_pids[8];
static char *const g_env[] = { "PATH=/bin", "HOME=/", NULL };

/* ---------------------------------------------------------- pure parts */

static void test_argv(void **state)
{
	crisp_err_t err = CRISP_ERR_INIT;
	char *ep[] = { "/entry", "-x" }, *cmd[] = { "default-arg" };
	Cipc__ImageResolved img = CIPC__IMAGE_RESOLVED__INIT;
	char **v = NULL;
	char *command[] = { "/bin/sh", "-c" }, *args[] = { "echo hi" };

	(void)state;
	img.n_entrypoint = 2;
	img.entrypoint = ep;
	img.n_cmd = 1;
	img.cmd = cmd;
	/* image only: ENTRYPOINT + CMD */
	assert_int_equal(ctr_argv(NULL, 0, NULL, 0, &img, &v, &err), 0);
	assert_string_equal(v[0], "/entry");
	assert_string_equal(v[2], "default-arg");
	assert_null(v[3]);
	ctr_strv_free(v);
	/* args replace CMD, keep ENTRYPOINT */
	assert_int_equal(ctr_argv(NULL, 0, args, 1, &img, &v, &err), 0);
	assert_string_equal(v[0], "/entry");
	assert_string_equal(v[2], "echo hi");
	ctr_strv_free(v);
	/* command replaces ENTRYPOINT and drops the image CMD */
	assert_int_equal(ctr_argv(command, 2, NULL, 0, &img, &v, &err), 0);
	assert_string_equal(v[0], "/bin/sh");
	assert_string_equal(v[1], "-c");
	assert_null(v[2]);
	ctr_strv_free(v);
	/* nothing at all */
	assert_int_equal(ctr_argv(NULL, 0, NULL, 0, NULL, &v, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
}

static void test_env(void **state)
{
	crisp_err_t err = CRISP_ERR_INIT;
	char *ienv[] = { "A=image", "PATH=/image/bin", "B=keep" };
	Cipc__ImageResolved img = CIPC__IMAGE_RESOLVED__INIT;
	Runtime__V1__KeyValue kv1 = RUNTIME__V1__KEY_VALUE__INIT, kv2 = RUNTIME__V1__KEY_VALUE__INIT;
	Runtime__V1__KeyValue *kvs[] = { &kv1, &kv2 };
	char **v = NULL;

	(void)state;
	img.n_env = 3;
	img.env = ienv;
	kv1.key = "A";
	kv1.value = "cri";
	kv2.key = "C";
	kv2.value = "x=y";
	assert_int_equal(ctr_env(&img, kvs, 2, "host1", &v, &err), 0);
	int seen = 0;
	for (size_t i = 0; v[i]; i++) {
		if (!strncmp(v[i], "PATH=", 5)) {
			assert_string_equal(v[i], "PATH=/image/bin");
			seen |= 1;
		}
		if (!strncmp(v[i], "A=", 2)) {
			assert_string_equal(v[i], "A=cri");
			seen |= 2;
		}
		if (!strcmp(v[i], "C=x=y"))
			seen |= 4;
		if (!strcmp(v[i], "HOSTNAME=host1"))
			seen |= 8;
		if (!strcmp(v[i], "B=keep"))
			seen |= 16;
	}
	assert_int_equal(seen, 31);
	ctr_strv_free(v);
	kv2.key = "BAD=KEY";
	assert_int_equal(ctr_env(&img, kvs, 2, "", &v, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(crisp_write_all(fd, text, strlen(text)), 0);
	close(fd);
}

static void test_user(void **state)
{
	char dir[PATH_MAX], p[PATH_MAX + 32];
	crisp_err_t err = CRISP_ERR_INIT;
	struct ctr_user u;
	int64_t uid = 1000, gid = 55, extra[] = { 7, 8 };

	(void)state;
	snprintf(dir, sizeof dir, "/tmp/crisp-ctr-user-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof p, "%s/etc", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/etc/passwd", dir);
	write_text(p, "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:100:A:/home/alice:/bin/sh\n# c\nbad line\n");
	snprintf(p, sizeof p, "%s/etc/group", dir);
	write_text(p, "root:x:0:\nusers:x:100:\nwheel:x:10:alice,bob\nstaff:x:50:bob\n");
	int rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(rootfd >= 0);

	/* image USER name: uid, gid, home, member groups */
	assert_int_equal(ctr_user_resolve(rootfd, "alice", NULL, NULL, NULL, NULL, 0, &u, &err), 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 100);
	assert_string_equal(u.home, "/home/alice");
	bool wheel = false;
	for (size_t i = 0; i < u.ngroups; i++)
		wheel |= u.groups[i] == 10;
	assert_true(wheel);
	/* "user:group" names */
	assert_int_equal(ctr_user_resolve(rootfd, "alice:staff", NULL, NULL, NULL, NULL, 0, &u, &err), 0);
	assert_int_equal(u.gid, 50);
	/* CRI run_as_user (numeric, known) beats the image, run_as_group, extras */
	assert_int_equal(ctr_user_resolve(rootfd, "root", NULL, &uid, &gid, extra, 2, &u, &err), 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 55);
	bool e7 = false, e8 = false;
	for (size_t i = 0; i < u.ngroups; i++) {
		e7 |= u.groups[i] == 7;
		e8 |= u.groups[i] == 8;
	}
	assert_true(e7 && e8);
	/* unknown numeric uid: gid 0 */
	int64_t u4 = 4242;
	assert_int_equal(ctr_user_resolve(rootfd, "", NULL, &u4, NULL, NULL, 0, &u, &err), 0);
	assert_int_equal(u.uid, 4242);
	assert_int_equal(u.gid, 0);
	/* unknown name: refused */
	assert_int_equal(ctr_user_resolve(rootfd, "", "mallory", NULL, NULL, NULL, 0, &u, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	crisp_error_clear(&err);

	/* /etc/passwd as a symlink to the host's: resolved inside the root */
	snprintf(p, sizeof p, "%s/etc/passwd", dir);
	unlink(p);
	assert_int_equal(symlink("/../../../../etc/passwd", p), 0);
	/* the host has "root" but the link resolves to <dir>/etc/passwd
	 * itself (a loop) or nothing: never the host's file */
	int r = ctr_user_resolve(rootfd, "daemon", NULL, NULL, NULL, NULL, 0, &u, &err);
	assert_int_equal(r, -1);
	close(rootfd);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_caps(void **state)
{
	crisp_err_t err = CRISP_ERR_INIT;
	uint64_t c;
	char *add[] = { "NET_RAW", "CAP_SYS_ADMIN" }, *drop[] = { "chown" }, *all[] = { "ALL" }, *bad[] = { "FLY" };

	(void)state;
	assert_int_equal(ctr_caps(add, 2, drop, 1, false, &c, &err), 0);
	assert_true(c & (1ULL << 13));
	assert_true(c & (1ULL << 21));
	assert_false(c & 1ULL);
	assert_true(c & (1ULL << 5)); /* KILL from the default set */
	assert_int_equal(ctr_caps(NULL, 0, all, 1, false, &c, &err), 0);
	assert_int_equal(c, 0);
	assert_int_equal(ctr_caps(add, 1, all, 1, false, &c, &err), 0);
	assert_int_equal(c, 1ULL << 13);
	assert_int_equal(ctr_caps(all, 1, NULL, 0, false, &c, &err), 0);
	assert_true(c & (1ULL << 21));
	assert_int_equal(ctr_caps(NULL, 0, NULL, 0, true, &c, &err), 0);
	assert_true(c & (1ULL << 16));
	assert_int_equal(ctr_caps(bad, 1, NULL, 0, false, &c, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(ctr_cap_from_name("cap_net_admin"), 12);
}

static int fixed_now(struct timespec *ts)
{
	ts->tv_sec = 1700000000;
	ts->tv_nsec = 123;
	return 0;
}

static char *read_all(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	static char buf[1 << 17];
	ssize_t n;
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_crilog(void **state)
{
	char path[] = "/tmp/crisp-crilog-XXXXXX";
	static struct cri_log l;
	char big[CTR_LOG_LINE_MAX + 10];

	(void)state;
	memset(&l, 0, sizeof l);
	l.fd = mkstemp(path);
	assert_true(l.fd >= 0);
	l.now = fixed_now;
	cri_log_feed(&l, CRI_LOG_STDOUT, "hel", 3);
	cri_log_feed(&l, CRI_LOG_STDERR, "oops\n", 5);
	cri_log_feed(&l, CRI_LOG_STDOUT, "lo\nsecond\n\ntail", 15);
	memset(big, 'x', sizeof big);
	cri_log_feed(&l, CRI_LOG_STDERR, big, sizeof big);
	cri_log_flush(&l, CRI_LOG_STDERR);
	cri_log_flush(&l, CRI_LOG_STDOUT);
	close(l.fd);
	char *t = read_all(path);
	unlink(path);
	const char *ts = "2023-11-14T22:13:20.000000123Z";
	char want[512];
	snprintf(want, sizeof want,
		 "%s stderr F oops\n%s stdout F hello\n%s stdout F second\n%s stdout F \n%s stderr P ", ts, ts, ts, ts,
		 ts);
	assert_memory_equal(t, want, strlen(want));
	/* the P piece holds exactly CTR_LOG_LINE_MAX bytes; the rest is F */
	char *second = strstr(t + strlen(want), ts);
	assert_non_null(second);
	assert_int_equal(second - (t + strlen(want)), CTR_LOG_LINE_MAX + 1);
	assert_memory_equal(second + strlen(ts), " stderr F xxxxxxxxxx\n", 21);
	assert_non_null(strstr(t, " stdout F tail\n"));
	assert_int_equal(l.write_errors, 0);
}

/* ---------------------------------------------------- processes (root) */

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	struct stat st;
	off_t off = 0;
	assert_true(in >= 0);
	assert_int_equal(fstat(in, &st), 0);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	assert_true(out >= 0);
	while (off < st.st_size)
		assert_true(sendfile(out, in, &off, (size_t)(st.st_size - off)) > 0);
	close(in);
	close(out);
}

static int setup(void **state)
{
	static const char *const dirs[] = { "bin", "tmp", "proc", "dev", "sys", "etc" };
	static const char *const applets[] = { "sh", "cat", "echo", "sleep", "unshare", "true", "grep", "hostname",
					       "mkdir" };
	char p[PATH_MAX + 64];

	(void)state;
	snprintf(g_tmp, sizeof g_tmp, "/tmp/crisp-ctr-XXXXXX");
	assert_non_null(mkdtemp(g_tmp));
	snprintf(g_root, sizeof g_root, "%s/rootfs", g_tmp);
	snprintf(g_run, sizeof g_run, "%s/run", g_tmp);
	assert_int_equal(mkdir(g_root, 0755), 0);
	assert_int_equal(mkdir(g_run, 0700), 0);
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", g_root, dirs[i]);
		assert_int_equal(mkdir(p, 0755), 0);
	}
	snprintf(p, sizeof p, "%s/bin/busybox", g_root);
	copy_file("/bin/busybox", p);
	for (size_t i = 0; i < sizeof applets / sizeof applets[0]; i++) {
		char q[PATH_MAX + 64];
		snprintf(q, sizeof q, "%s/bin/%s", g_root, applets[i]);
		assert_int_equal(symlink("busybox", q), 0);
	}
	memset(g_pids, 0, sizeof g_pids);
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
		if (g_pids[i] > 0) {
			kill(g_pids[i], SIGKILL);
			waitpid(g_pids[i], NULL, __WALL);
			g_pids[i] = 0;
		}
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", g_tmp);
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
	s->stdio[0] = s->stdio[1] = s->stdio[2] = -1;
	s->timeout_ms = 5000;
}

/* Read the monitor's report (until EOF); returns the container pid. */
static pid_t read_report(int fd, char *msg, size_t n)
{
	size_t len = 0;
	ssize_t r;
	int pid = 0;
	struct pollfd p = { fd, POLLIN, 0 };

	while (len < n - 1 && poll(&p, 1, 10000) == 1 && (r = read(fd, msg + len, n - 1 - len)) > 0)
		len += (size_t)r;
	msg[len] = '\0';
	close(fd);
	if (sscanf(msg, "OK %d", &pid) != 1)
		return -1;
	return pid;
}

static pid_t spawn(struct launch_spec *s, const char *log, bool want_stdin, pid_t *cpid)
{
	crisp_err_t err = CRISP_ERR_INIT;
	int keep[1] = { s->seccomp_fd };
	struct ctr_monitor_args a = { .id = "0123", .run_dir = g_run, .log_path = log, .want_stdin = want_stdin,
				      .stdin_once = false, .spec = s, .keep_fds = keep, .nkeep = s->seccomp_fd >= 0 };
	int fd;
	char msg[1400];
	pid_t m = ctr_monitor_spawn(&a, &fd, &err);

	assert_true(m > 0);
	track(m);
	*cpid = read_report(fd, msg, sizeof msg);
	if (*cpid <= 0)
		fail_msg("monitor report: %s", msg);
	return m;
}

/* Wait for the monitor to exit (it is our child). */
static void wait_monitor(pid_t m)
{
	int st;
	assert_int_equal(waitpid(m, &st, 0), m);
	for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
		if (g_pids[i] == m)
			g_pids[i] = 0;
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Collect frames until EOF: stdout, stderr, status. */
static void read_frames(int fd, char *out, size_t on, char *err, size_t en, char *status, size_t sn)
{
	size_t lo = 0, le = 0;
	char fr[1 + CTR_FRAME_MAX];
	struct pollfd p = { fd, POLLIN, 0 };

	status[0] = '\0';
	while (poll(&p, 1, 10000) == 1) {
		ssize_t n = recv(fd, fr, sizeof fr, 0);
		if (n <= 0)
			break;
		if (fr[0] == CTR_CH_STDOUT && lo + (size_t)n < on) {
			memcpy(out + lo, fr + 1, (size_t)n - 1);
			lo += (size_t)n - 1;
		} else if (fr[0] == CTR_CH_STDERR && le + (size_t)n < en) {
			memcpy(err + le, fr + 1, (size_t)n - 1);
			le += (size_t)n - 1;
		} else if (fr[0] == CTR_CH_STATUS) {
			snprintf(status, sn, "%.*s", (int)n - 1, fr + 1);
		}
	}
	out[lo] = '\0';
	err[le] = '\0';
}

static void test_monitor(void **state)
{
	struct launch_spec s;
	char *const argv[] = { "sh", "-c", "read line; echo out:$line; echo err >&2; printf partial; exit 3", NULL };
	char log[PATH_MAX + 32], out[256], err[256], st[512];
	pid_t cpid, m;
	int fd, code, sig;
	int64_t fin;
	crisp_err_t e = CRISP_ERR_INIT;

	(void)state;
	snprintf(log, sizeof log, "%s/logs/ctr/0.log", g_tmp);
	base_spec(&s, argv);
	m = spawn(&s, log, true, &cpid);
	/* attach with stdin, feed a line */
	assert_int_equal(ctr_monitor_connect(g_run, 'a', &fd, &e), 0);
	char fr[] = "\0hello\n";
	assert_int_equal(send(fd, fr, sizeof fr - 1, 0), (ssize_t)sizeof fr - 1);
	read_frames(fd, out, sizeof out, err, sizeof err, st, sizeof st);
	close(fd);
	assert_string_equal(out, "out:hello\npartial");
	assert_string_equal(err, "err\n");
	assert_non_null(strstr(st, "\"NonZeroExitCode\""));
	assert_non_null(strstr(st, "\"message\":\"3\""));
	wait_monitor(m);
	assert_int_equal(ctr_exit_read(g_run, &code, &fin, &sig), 0);
	assert_int_equal(code, 3);
	assert_int_equal(sig, 0);
	assert_true(fin > 1600000000LL * 1000000000LL);
	char *t = read_all(log);
	assert_non_null(t);
	assert_non_null(strstr(t, " stdout F out:hello\n"));
	assert_non_null(strstr(t, " stderr F err\n"));
	assert_non_null(strstr(t, " stdout F partial\n"));
	/* RFC3339Nano UTC stamps */
	assert_int_equal(t[4], '-');
	assert_int_equal(t[10], 'T');
	assert_int_equal(t[29], 'Z');
	/* control socket gone with the monitor */
	assert_int_equal(ctr_monitor_connect(g_run, 'A', &fd, &e), -1);
}

static void test_monitor_signal_reopen(void **state)
{
	struct launch_spec s;
	char *const argv[] = { "sh", "-c", "echo one; while true; do sleep 0.05; [ -e /tmp/go ] && break; done; "
					   "echo two; sleep 100", NULL };
	char log[PATH_MAX + 32], moved[PATH_MAX + 32], go[PATH_MAX + 32], ans[64];
	pid_t cpid, m;
	int fd, code, sig;
	int64_t fin;
	crisp_err_t e = CRISP_ERR_INIT;

	(void)state;
	snprintf(log, sizeof log, "%s/c.log", g_tmp);
	snprintf(moved, sizeof moved, "%s/c.log.1", g_tmp);
	snprintf(go, sizeof go, "%s/tmp/go", g_root);
	base_spec(&s, argv);
	m = spawn(&s, log, false, &cpid);
	for (int i = 0; i < 200; i++) {
		char *t = read_all(log);
		if (t && strstr(t, "one"))
			break;
		usleep(20000);
	}
	/* rotate: rename, ask the monitor to reopen, then more output */
	assert_int_equal(rename(log, moved), 0);
	assert_int_equal(ctr_monitor_connect(g_run, 'R', &fd, &e), 0);
	ssize_t n = recv(fd, ans, sizeof ans - 1, 0);
	close(fd);
	assert_true(n >= 2);
	assert_memory_equal(ans, "OK", 2);
	write_text(go, "");
	for (int i = 0; i < 200; i++) {
		char *t = read_all(log);
		if (t && strstr(t, "two"))
			break;
		usleep(20000);
	}
	assert_non_null(strstr(read_all(log), " stdout F two\n"));
	assert_null(strstr(read_all(log), "one"));
	assert_non_null(strstr(read_all(moved), " stdout F one\n"));
	/* a signal ends it: 128 + SIGKILL, the signal recorded */
	assert_int_equal(kill(cpid, SIGKILL), 0);
	wait_monitor(m);
	assert_int_equal(ctr_exit_read(g_run, &code, &fin, &sig), 0);
	assert_int_equal(code, 128 + SIGKILL);
	assert_int_equal(sig, SIGKILL);
}

static void test_exec_session(void **state)
{
	struct launch_spec s, es;
	char *const argv[] = { "sleep", "100", NULL };
	char *const cmd[] = { "sh", "-c", "cat; echo done; echo e >&2; exit 5", NULL };
	char *const slow[] = { "sleep", "100", NULL };
	char out[256], err[256], st[512];
	pid_t cpid, m, helper;
	int sock;
	crisp_err_t e = CRISP_ERR_INIT;

	(void)state;
	base_spec(&s, argv);
	m = spawn(&s, "", false, &cpid);
	/* stdin through frames, output and exit code back */
	base_spec(&es, cmd);
	assert_int_equal(ctr_exec_spawn(cpid, &es, false, true, &sock, &helper, &e), 0);
	track(helper);
	char f1[] = "\0piped\n", f2[] = "\0";
	assert_int_equal(send(sock, f1, sizeof f1 - 1, 0), (ssize_t)sizeof f1 - 1);
	assert_int_equal(send(sock, f2, 1, 0), 1); /* EOF on stdin */
	read_frames(sock, out, sizeof out, err, sizeof err, st, sizeof st);
	close(sock);
	assert_string_equal(out, "piped\ndone\n");
	assert_string_equal(err, "e\n");
	assert_non_null(strstr(st, "\"message\":\"5\""));
	/* closing the session kills the process */
	base_spec(&es, slow);
	assert_int_equal(ctr_exec_spawn(cpid, &es, false, false, &sock, &helper, &e), 0);
	track(helper);
	usleep(100000);
	close(sock);
	int hst;
	assert_int_equal(waitpid(helper, &hst, 0), helper);
	for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
		if (g_pids[i] == helper)
			g_pids[i] = 0;
	/* the exec'd sleep is gone: only the container's own sleep is left */
	char ps[64];
	snprintf(ps, sizeof ps, "/proc/%d/task/%d/children", (int)cpid, (int)cpid);
	char *ch = read_all(ps);
	assert_true(ch == NULL || ch[0] == '\0');
	/* a command that does not exist: an InternalError status */
	char *const nope[] = { "/bin/nope", NULL };
	base_spec(&es, nope);
	assert_int_equal(ctr_exec_spawn(cpid, &es, false, false, &sock, &helper, &e), 0);
	track(helper);
	read_frames(sock, out, sizeof out, err, sizeof err, st, sizeof st);
	close(sock);
	assert_non_null(strstr(st, "InternalError"));
	assert_non_null(strstr(st, "nope"));
	kill(cpid, SIGKILL);
	wait_monitor(m);
}

static void test_seccomp_default(void **state)
{
	struct launch_spec s;
	char *const argv[] = { "sh", "-c", "unshare -u true && echo UNSHARE-OK; hostname x && echo HOST-OK; echo end",
			       NULL };
	char log[PATH_MAX + 32];
	crisp_err_t e = CRISP_ERR_INIT;
	pid_t cpid, m;
	int fd;

	(void)state;
	snprintf(log, sizeof log, "%s/s.log", g_tmp);
	/* with SYS_ADMIN, so only the filter can refuse */
	uint64_t caps = launch_default_caps() | (1ULL << 21);
	assert_int_equal(ctr_seccomp_default(launch_default_caps(), &fd, &e), 0);
	base_spec(&s, argv);
	s.cap_effective = s.cap_permitted = s.cap_bounding = caps;
	s.seccomp_fd = fd;
	m = spawn(&s, log, false, &cpid);
	close(fd);
	wait_monitor(m);
	char *t = read_all(log);
	assert_non_null(strstr(t, "end"));
	assert_null(strstr(t, "UNSHARE-OK"));
	assert_null(strstr(t, "HOST-OK"));
	/* the same filter built for a SYS_ADMIN container allows them */
	assert_int_equal(ctr_seccomp_default(caps, &fd, &e), 0);
	base_spec(&s, argv);
	s.cap_effective = s.cap_permitted = s.cap_bounding = caps;
	s.seccomp_fd = fd;
	unlink(log);
	m = spawn(&s, log, false, &cpid);
	close(fd);
	wait_monitor(m);
	t = read_all(log);
	assert_non_null(strstr(t, "UNSHARE-OK"));
	assert_non_null(strstr(t, "HOST-OK"));
}

static void test_seccomp_profile_parse(void **state)
{
	crisp_err_t err = CRISP_ERR_INIT;
	int fd = -1;
	static const char *const bad[] = {
		"not json",
		"[]",
		"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/x\"}",
		"{\"defaultAction\":\"SCMP_ACT_NOTIFY\"}",
		"{\"defaultAction\":\"SCMP_ACT_TRACE\"}",
		"{}",
		"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"defaultAction\":\"SCMP_ACT_ALLOW\"}",
		"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_PDP11\"]}",
		"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"mkdir\"]}]}",
		"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_ERRNO\","
		"\"args\":[{\"index\":9,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}",
		"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_ERRNO\","
		"\"errnoRet\":99999}]}",
		"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_ERRNO\","
		"\"includes\":{\"caps\":[\"CAP_FLY\"]}}]}",
	};
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		crisp_error_clear(&err);
		if (ctr_seccomp_profile(bad[i], strlen(bad[i]), 0, &fd, &err) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	}
	const char *good = "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,"
			   "\"architectures\":[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\"],\"archMap\":[],"
			   "\"syscalls\":[{\"names\":[\"read\",\"no_such_syscall\"],\"action\":\"SCMP_ACT_ALLOW\"},"
			   "{\"name\":\"write\",\"action\":\"SCMP_ACT_ALLOW\",\"comment\":\"x\"},"
			   "{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,"
			   "\"value\":8,\"valueTwo\":0,\"op\":\"SCMP_CMP_EQ\"}]},"
			   "{\"names\":[\"mount\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":[\"CAP_SYS_ADMIN\"]}}]}";
	assert_int_equal(ctr_seccomp_profile(good, strlen(good), 0, &fd, &err), 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	off_t without = st.st_size;
	close(fd);
	/* the SYS_ADMIN rule only when the container holds SYS_ADMIN */
	assert_int_equal(ctr_seccomp_profile(good, strlen(good), 1ULL << 21, &fd, &err), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_size > without);
	close(fd);
	assert_int_equal(ctr_seccomp_profile_file("relative.json", 0, &fd, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(ctr_seccomp_profile_file("/nonexistent/p.json", 0, &fd, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
}

static void test_seccomp_localhost(void **state)
{
	struct launch_spec s;
	char *const argv[] = { "sh", "-c", "mkdir /tmp/d && echo MKDIR-OK; echo end", NULL };
	char log[PATH_MAX + 32], prof[PATH_MAX + 32];
	crisp_err_t e = CRISP_ERR_INIT;
	pid_t cpid, m;
	int fd;

	(void)state;
	snprintf(log, sizeof log, "%s/l.log", g_tmp);
	snprintf(prof, sizeof prof, "%s/p.json", g_tmp);
	write_text(prof, "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"mkdir\",\"mkdirat\"],"
			 "\"action\":\"SCMP_ACT_ERRNO\"}]}");
	assert_int_equal(ctr_seccomp_profile_file(prof, launch_default_caps(), &fd, &e), 0);
	base_spec(&s, argv);
	s.seccomp_fd = fd;
	m = spawn(&s, log, false, &cpid);
	close(fd);
	wait_monitor(m);
	char *t = read_all(log);
	assert_non_null(strstr(t, "end"));
	assert_null(strstr(t, "MKDIR-OK"));
	assert_non_null(strstr(t, "Operation not permitted"));
}

/* ---- the pod's /dev/shm ---- */

#define SHM_POD "0123456789abcdef"

static int shm_mount_layers(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], mp[PATH_MAX];
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strcmp(mp, path))
			n++;
	fclose(f);
	return n;
}

static int shm_teardown(void **state)
{
	char path[PATH_MAX], pods[PATH_MAX + 8];

	snprintf(pods, sizeof pods, "%s/pods", g_tmp);
	if (ctr_shm_path(pods, SHM_POD, path, sizeof path) == 0)
		for (int i = 0; i < 16 && umount2(path, MNT_DETACH) == 0; i++)
			;
	return teardown(state);
}

static void test_pod_shm(void **state)
{
	char pods[PATH_MAX + 8], dir[PATH_MAX + 32], path[PATH_MAX];
	crisp_err_t err = CRISP_ERR_INIT;
	struct statfs sf;
	struct statvfs sv;
	struct stat st;

	(void)state;
	snprintf(pods, sizeof pods, "%s/pods", g_tmp);
	snprintf(dir, sizeof dir, "%s/" SHM_POD, pods);
	assert_int_equal(mkdir(pods, 0700), 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(ctr_shm_path(pods, SHM_POD, path, 8), -1);
	assert_int_equal(ctr_shm_path(pods, SHM_POD, path, sizeof path), 0);
	assert_false(ctr_shm_mounted(pods, SHM_POD));

	/* made once: a second call finds it and stacks nothing */
	assert_int_equal(ctr_shm_mount(pods, SHM_POD, &err), 0);
	assert_int_equal(ctr_shm_mount(pods, SHM_POD, &err), 0);
	assert_int_equal(shm_mount_layers(path), 1);
	assert_true(ctr_shm_mounted(pods, SHM_POD));
	assert_int_equal(statfs(path, &sf), 0);
	assert_int_equal(sf.f_type, TMPFS_MAGIC);
	assert_int_equal((long long)sf.f_blocks * sf.f_bsize, 64LL * 1024 * 1024);
	assert_int_equal(statvfs(path, &sv), 0);
	assert_true(sv.f_flag & ST_NOSUID);
	assert_true(sv.f_flag & ST_NODEV);
	assert_true(sv.f_flag & ST_NOEXEC);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 01777);

	/* unmount takes every layer a crash may have stacked, then the dir */
	assert_int_equal(mount("shm", path, "tmpfs", MS_NOSUID, "size=4k"), 0);
	assert_int_equal(shm_mount_layers(path), 2);
	ctr_shm_unmount(pods, SHM_POD);
	assert_int_equal(shm_mount_layers(path), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_false(ctr_shm_mounted(pods, SHM_POD));
	ctr_shm_unmount(pods, SHM_POD); /* idempotent */

	/* a plain directory (not a mount) is not taken for the tmpfs */
	assert_int_equal(mkdir(path, 0755), 0);
	assert_false(ctr_shm_mounted(pods, SHM_POD));
	assert_int_equal(ctr_shm_mount(pods, SHM_POD, &err), 0);
	assert_true(ctr_shm_mounted(pods, SHM_POD));
	ctr_shm_unmount(pods, SHM_POD);

	/* something else at the path is refused, never mounted over */
	assert_int_equal(symlink("/tmp", path), 0);
	assert_int_equal(ctr_shm_mount(pods, SHM_POD, &err), -1);
	assert_int_equal(err.code, CRISP_INTERNAL);
	assert_int_equal(shm_mount_layers(path), 0);
	assert_int_equal(unlink(path), 0);
	/* no pod directory: an error, nothing made */
	crisp_error_clear(&err);
	assert_int_equal(ctr_shm_mount(pods, "feedfeedfeedfeed", &err), -1);
	assert_int_equal(err.code, CRISP_INTERNAL);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_crilog),
		cmocka_unit_test(test_seccomp_profile_parse),
	};
	const struct CMUnitTest root[] = {
		cmocka_unit_test(test_user),
		cmocka_unit_test_setup_teardown(test_monitor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_signal_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seccomp_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seccomp_localhost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_shm, setup, shm_teardown),
	};

	/* The monitor re-executes /proc/self/exe: this test binary. */
	if (argc > 1 && strcmp(argv[1], CTR_MONITOR_ARG) == 0)
		return ctr_monitor_main(argc, argv);
	int rc = cmocka_run_group_tests(pure, NULL, NULL);
	if (geteuid() != 0 || access("/bin/busybox", X_OK) != 0) {
		fprintf(stderr, "test_ctr: process cases need root and /bin/busybox, skipped\n");
		return rc;
	}
	return rc | cmocka_run_group_tests(root, NULL, NULL);
}
