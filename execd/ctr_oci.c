/*
 * execd/ctr_oci: a container spec as an OCI config.json, run by an external
 * OCI runtime (see ctr_oci.h for the flow and what it guarantees).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "common/util.h"
#include "execd/ctr.h"
#include "execd/ctr_oci.h"

#define RUNTIME_LOG_MAX 65536

/* ------------------------------------------------------------ config.json */

static const char *const ns_type[LAUNCH_NS_COUNT] = {
	[LAUNCH_NS_MNT] = "mount", [LAUNCH_NS_UTS] = "uts", [LAUNCH_NS_IPC] = "ipc",
	[LAUNCH_NS_NET] = "network", [LAUNCH_NS_PID] = "pid", [LAUNCH_NS_CGROUP] = "cgroup",
};

static const struct {
	int res;
	const char *name;
} rlimit_names[] = {
	{ RLIMIT_CPU, "RLIMIT_CPU" },	    { RLIMIT_FSIZE, "RLIMIT_FSIZE" },	{ RLIMIT_DATA, "RLIMIT_DATA" },
	{ RLIMIT_STACK, "RLIMIT_STACK" },   { RLIMIT_CORE, "RLIMIT_CORE" },	{ RLIMIT_RSS, "RLIMIT_RSS" },
	{ RLIMIT_NPROC, "RLIMIT_NPROC" },   { RLIMIT_NOFILE, "RLIMIT_NOFILE" }, { RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK" },
	{ RLIMIT_AS, "RLIMIT_AS" },	    { RLIMIT_LOCKS, "RLIMIT_LOCKS" },	{ RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING" },
	{ RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE" }, { RLIMIT_NICE, "RLIMIT_NICE" }, { RLIMIT_RTPRIO, "RLIMIT_RTPRIO" },
	{ RLIMIT_RTTIME, "RLIMIT_RTTIME" },
};

/* Append s to array a; false on allocation failure. */
static bool push_str(json_t *a, const char *s)
{
	return json_array_append_new(a, json_string(s)) == 0;
}

static json_t *str_array(char *const *v)
{
	json_t *a = json_array();

	for (size_t i = 0; a && v && v[i]; i++)
		if (!push_str(a, v[i])) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *caps_array(uint64_t set)
{
	json_t *a = json_array();
	char name[40];

	for (int i = 0; a && i < 64; i++) {
		const char *n;
		if (!(set & (1ULL << i)) || (n = ctr_cap_name(i)) == NULL)
			continue;
		snprintf(name, sizeof name, "CAP_%s", n);
		if (!push_str(a, name)) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *mount_obj(const char *dst, const char *type, const char *src, const char *const *opts)
{
	json_t *o = json_object(), *a = json_array();

	if (o == NULL || a == NULL)
		goto fail;
	for (size_t i = 0; opts[i]; i++)
		if (!push_str(a, opts[i]))
			goto fail;
	if (json_object_set_new(o, "destination", json_string(dst)) < 0 ||
	    json_object_set_new(o, "type", json_string(type)) < 0 || json_object_set_new(o, "source", json_string(src)) < 0 ||
	    json_object_set_new(o, "options", a) < 0)
		goto fail_o;
	return o;
fail:
	json_decref(a);
fail_o:
	json_decref(o);
	return NULL;
}

/* The default mounts crisp's launcher makes (execd/mounts.c), in its order. */
static int default_mounts(json_t *mounts, const struct launch_spec *s)
{
	bool shm = false;
	static const char *const proc_o[] = { "nosuid", "noexec", "nodev", NULL };
	static const char *const dev_o[] = { "nosuid", "strictatime", "mode=755", "size=65536k", NULL };
	static const char *const pts_o[] = { "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5",
					     NULL };
	static const char *const shm_o[] = { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL };
	static const char *const mq_o[] = { "nosuid", "noexec", "nodev", NULL };
	static const char *const sys_ro[] = { "nosuid", "noexec", "nodev", "ro", NULL };
	static const char *const sys_rw[] = { "nosuid", "noexec", "nodev", "rw", NULL };
	static const char *const cg_ro[] = { "nosuid", "noexec", "nodev", "relatime", "ro", NULL };
	static const char *const cg_rw[] = { "nosuid", "noexec", "nodev", "relatime", "rw", NULL };

	for (size_t i = 0; i < s->nmounts; i++)
		shm |= !strcmp(s->mounts[i].target, "/dev/shm");
	json_t *m[] = {
		mount_obj("/proc", "proc", "proc", proc_o),
		mount_obj("/dev", "tmpfs", "tmpfs", dev_o),
		mount_obj("/dev/pts", "devpts", "devpts", pts_o),
		shm ? json_null() : mount_obj("/dev/shm", "tmpfs", "shm", shm_o),
		mount_obj("/dev/mqueue", "mqueue", "mqueue", mq_o),
		mount_obj("/sys", "sysfs", "sysfs", s->sys_rw ? sys_rw : sys_ro),
		mount_obj("/sys/fs/cgroup", "cgroup", "cgroup", s->sys_rw ? cg_rw : cg_ro),
	};
	int rc = 0;
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
		if (m[i] == NULL)
			rc = -1;
		else if (json_is_null(m[i]))
			json_decref(m[i]);
		else if (rc == 0 && json_array_append_new(mounts, m[i]) < 0)
			rc = -1;
		else if (rc != 0)
			json_decref(m[i]);
	}
	return rc;
}

/* One launch_mount, with the options crisp's launcher applies to it. */
static json_t *spec_mount(const struct launch_mount *lm)
{
	const char *opts[24];
	size_t n = 0;
	char *data = NULL;
	static const char *const prop[] = { [LAUNCH_PROP_PRIVATE] = "rprivate", [LAUNCH_PROP_RSLAVE] = "rslave",
					    [LAUNCH_PROP_RSHARED] = "rshared" };

	if (lm->fstype == NULL)
		opts[n++] = "rbind";
	opts[n++] = lm->readonly || (lm->flags & MS_RDONLY) ? "ro" : "rw";
	if (lm->flags & MS_NOSUID)
		opts[n++] = "nosuid";
	if (lm->flags & MS_NODEV)
		opts[n++] = "nodev";
	if (lm->flags & MS_NOEXEC)
		opts[n++] = "noexec";
	if (lm->fstype == NULL)
		opts[n++] = prop[lm->propagation];
	if (lm->data && lm->data[0]) {
		data = strdup(lm->data);
		if (data == NULL)
			return NULL;
		for (char *save = NULL, *t = strtok_r(data, ",", &save); t && n + 1 < sizeof opts / sizeof opts[0];
		     t = strtok_r(NULL, ",", &save))
			opts[n++] = t;
	}
	opts[n] = NULL;
	json_t *o = mount_obj(lm->target, lm->fstype ? lm->fstype : "bind", lm->source, opts);
	free(data);
	return o;
}

static json_t *devices(const struct launch_spec *s, json_t **allow)
{
	json_t *a = json_array();

	*allow = json_array();
	if (a == NULL || *allow == NULL)
		goto fail;
	/* privileged containers get the host's devices, and the cgroup allows
	 * every device (as every runtime does for privileged) */
	if (s->sys_rw && json_array_append_new(*allow, json_pack("{s:b,s:s}", "allow", 1, "access", "rwm")) < 0)
		goto fail;
	for (size_t i = 0; i < s->ndevices; i++) {
		const struct launch_device *d = &s->devices[i];
		char type[2] = { d->type, '\0' };
		json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "path", d->path, "type", type, "major",
				      (json_int_t)d->major, "minor", (json_int_t)d->minor, "fileMode",
				      (json_int_t)(d->mode & 07777), "uid", (json_int_t)d->uid, "gid", (json_int_t)d->gid);
		if (o == NULL || json_array_append_new(a, o) < 0)
			goto fail;
		if (!s->sys_rw &&
		    json_array_append_new(*allow, json_pack("{s:b,s:s,s:I,s:I,s:s}", "allow", 1, "type", type, "major",
							    (json_int_t)d->major, "minor", (json_int_t)d->minor,
							    "access", "rwm")) < 0)
			goto fail;
	}
	return a;
fail:
	json_decref(a);
	json_decref(*allow);
	*allow = NULL;
	return NULL;
}

static json_t *path_list(const char *const *v)
{
	return str_array((char *const *)v);
}

char *ctr_oci_config(const struct launch_spec *s, const struct ctr_oci *o, pid_t ns_pid, crisp_err_t *err)
{
	json_t *root = NULL, *process, *user, *caps, *linux_, *nss, *mounts, *resources, *allow = NULL, *rl, *devs;
	json_t *groups;
	char *text = NULL;
	char path[64];

	if (s->rootfs == NULL || s->rootfs[0] != '/')
		return crisp_error(err, CRISP_INTERNAL, 0, "oci: the rootfs is not an absolute path"), NULL;
	if (s->ns[LAUNCH_NS_MNT].mode != LAUNCH_NS_NEW)
		return crisp_error(err, CRISP_INTERNAL, 0, "oci: a container needs its own mount namespace"), NULL;

	groups = json_array();
	for (size_t i = 0; groups && i < s->ngroups; i++)
		if (json_array_append_new(groups, json_integer(s->groups[i])) < 0) {
			json_decref(groups);
			groups = NULL;
		}
	user = json_pack("{s:I,s:I,s:o}", "uid", (json_int_t)s->uid, "gid", (json_int_t)s->gid, "additionalGids",
			 groups);
	caps = json_pack("{s:o,s:o,s:o,s:o,s:[]}", "bounding", caps_array(s->cap_bounding), "effective",
			 caps_array(s->cap_effective), "permitted", caps_array(s->cap_permitted), "inheritable",
			 caps_array(s->cap_inheritable), "ambient");
	rl = json_array();
	for (size_t i = 0; rl && i < s->nrlimits; i++) {
		const char *name = NULL;
		for (size_t j = 0; j < sizeof rlimit_names / sizeof rlimit_names[0]; j++)
			if (rlimit_names[j].res == s->rlimits[i].resource)
				name = rlimit_names[j].name;
		if (name == NULL) {
			json_decref(rl);
			json_decref(user);
			json_decref(caps);
			return crisp_error(err, CRISP_INTERNAL, 0, "oci: rlimit %d has no OCI name", s->rlimits[i].resource),
			       NULL;
		}
		if (json_array_append_new(rl, json_pack("{s:s,s:I,s:I}", "type", name, "soft",
							(json_int_t)s->rlimits[i].soft, "hard",
							(json_int_t)s->rlimits[i].hard)) < 0) {
			json_decref(rl);
			rl = NULL;
		}
	}
	/* process.terminal: the runtime makes the pty and sends its master on
	 * the console socket; oomScoreAdj is inherited from the monitor (set
	 * there, clamped as the launcher clamps) */
	process = json_pack("{s:b,s:o,s:o,s:o,s:s,s:o,s:b,s:o}", "terminal", s->terminal, "user", user, "args",
			    str_array(s->argv), "env", str_array(s->envp), "cwd", s->cwd ? s->cwd : "/",
			    "capabilities", caps, "noNewPrivileges", s->no_new_privs, "rlimits", rl);
	if (process == NULL)
		goto oom;
	/* LSM labels execd chose (lsm.h): the runtime applies them at exec */
	if ((s->process_label && json_object_set_new(process, "selinuxLabel", json_string(s->process_label)) < 0) ||
	    (s->apparmor_profile &&
	     json_object_set_new(process, "apparmorProfile", json_string(s->apparmor_profile)) < 0))
		goto oom_p;

	nss = json_array();
	for (int i = 0; nss && i < LAUNCH_NS_COUNT; i++) {
		json_t *n = NULL;
		if (s->ns[i].mode == LAUNCH_NS_NEW) {
			n = json_pack("{s:s}", "type", ns_type[i]);
		} else if (s->ns[i].mode == LAUNCH_NS_JOIN) {
			snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)ns_pid, s->ns[i].fd);
			n = json_pack("{s:s,s:s}", "type", ns_type[i], "path", path);
		} else {
			continue;
		}
		if (n == NULL || json_array_append_new(nss, n) < 0) {
			json_decref(nss);
			nss = NULL;
		}
	}
	devs = devices(s, &allow);
	resources = allow ? json_pack("{s:o}", "devices", allow) : NULL;
	linux_ = json_pack("{s:o,s:o,s:o,s:o,s:o}", "namespaces", nss, "devices", devs, "resources", resources,
			   "maskedPaths", path_list(s->masked_paths), "readonlyPaths", path_list(s->readonly_paths));
	if (linux_ == NULL)
		goto oom_p;
	if (s->mount_label && json_object_set_new(linux_, "mountLabel", json_string(s->mount_label)) < 0)
		goto oom_l;
	if (o->cgroups_path && o->cgroups_path[0] &&
	    json_object_set_new(linux_, "cgroupsPath", json_string(o->cgroups_path)) < 0)
		goto oom_l;
	if (o->seccomp_json) {
		json_error_t je;
		json_t *sc = json_loads(o->seccomp_json, JSON_REJECT_DUPLICATES, &je);
		if (sc == NULL || json_object_set_new(linux_, "seccomp", sc) < 0) {
			json_decref(process);
			json_decref(linux_);
			return crisp_error(err, CRISP_INTERNAL, 0, "oci: the seccomp profile is not JSON"), NULL;
		}
	}

	mounts = json_array();
	if (mounts == NULL || default_mounts(mounts, s) < 0) {
		json_decref(mounts);
		goto oom_l;
	}
	for (size_t i = 0; i < s->nmounts; i++) {
		json_t *m = spec_mount(&s->mounts[i]);
		if (m == NULL || json_array_append_new(mounts, m) < 0) {
			json_decref(mounts);
			goto oom_l;
		}
	}
	root = json_pack("{s:s,s:o,s:{s:s,s:b},s:o,s:o}", "ociVersion", "1.0.2", "process", process, "root", "path",
			 s->rootfs, "readonly", s->readonly_rootfs, "mounts", mounts, "linux", linux_);
	if (root == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "oci config"), NULL;
	/* the pod's UTS namespace carries the hostname; a container with its
	 * own UTS namespace gets the one asked for */
	if (s->hostname && s->ns[LAUNCH_NS_UTS].mode == LAUNCH_NS_NEW &&
	    json_object_set_new(root, "hostname", json_string(s->hostname)) < 0) {
		json_decref(root);
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "oci config"), NULL;
	}
	text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (text == NULL)
		crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "oci config");
	return text;
oom_l:
	json_decref(linux_);
oom_p:
	json_decref(process);
oom:
	crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "oci config");
	return NULL;
}

void ctr_oci_cgroups_path(const char *cgroup_dir, char *out, size_t n)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], best[PATH_MAX] = "";
	size_t bestlen = 0;

	out[0] = '\0';
	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f)) {
		char mp[PATH_MAX];
		const char *dash = strstr(line, " - ");
		/* fields: id parent maj:min root mountpoint ... - fstype ... */
		if (dash == NULL || (strncmp(dash + 3, "cgroup ", 7) != 0 && strncmp(dash + 3, "cgroup2 ", 8) != 0) ||
		    sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		size_t l = strlen(mp);
		if (l > bestlen && !strncmp(cgroup_dir, mp, l) && cgroup_dir[l] == '/') {
			crisp_strlcpy(best, mp, sizeof best);
			bestlen = l;
		}
	}
	fclose(f);
	if (bestlen > 0)
		crisp_strlcpy(out, cgroup_dir + bestlen, n);
}

/* ------------------------------------------------------------- running it */

static int bundle_path(const struct ctr_oci *o, const char *leaf, char *out, size_t n, crisp_err_t *err)
{
	if ((size_t)snprintf(out, n, "%s/%s", o->bundle, leaf) >= n)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "oci: bundle path too long");
	return 0;
}

/* The last "error" message of the runtime's JSON log (or its last line). */
static void runtime_error(const struct ctr_oci *o, char *out, size_t n)
{
	char path[PATH_MAX];
	size_t len = 0;
	uint8_t *raw = NULL;
	crisp_err_t e = CRISP_ERR_INIT;

	out[0] = '\0';
	if (snprintf(path, sizeof path, "%s/log", o->bundle) >= (int)sizeof path ||
	    crisp_read_path(path, RUNTIME_LOG_MAX, "runtime log", &raw, &len, &e) < 0)
		return;
	char *buf = (char *)raw; /* NUL-terminated */
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(l, 0, NULL);
		const char *lvl = j ? json_string_value(json_object_get(j, "level")) : NULL;
		const char *msg = j ? json_string_value(json_object_get(j, "msg")) : NULL;
		if (lvl && msg && (!strcmp(lvl, "error") || !strcmp(lvl, "fatal")))
			crisp_strlcpy(out, msg, n);
		else if (j == NULL && out[0] == '\0')
			crisp_strlcpy(out, l, n);
		json_decref(j);
	}
	free(buf);
}

/* Run argv (the runtime), stdio as given, bounded by timeout_ms; its exit
 * status, or -1 (timeout: killed and reaped). */
/* Fork and execute the runtime (argv), stdio as given or /dev/null;
 * the child's pid, or -1. */
static pid_t spawn_runtime(char *const *argv, const int stdio[3])
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		for (int i = 0; i < 3; i++) {
			int fd = stdio && stdio[i] >= 0 ? stdio[i] : null;
			if (fd >= 0 && dup2(fd, 100 + i) < 0)
				_exit(127);
		}
		for (int i = 0; i < 3; i++)
			if (dup2(100 + i, i) < 0)
				_exit(127);
		for (int i = 0; i < 3; i++)
			close(100 + i);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		char *envp[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL };
		execve(argv[0], argv, envp);
		_exit(127);
	}
	return pid;
}

static int run_bounded(char *const *argv, const int stdio[3], int timeout_ms)
{
	pid_t pid = spawn_runtime(argv, stdio);
	int status;

	if (pid < 0)
		return -1;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	uint64_t deadline = crisp_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			status = -1;
			break;
		}
		uint64_t now = crisp_now_ms();
		if (now >= deadline) {
			kill(pid, SIGKILL);
			(void)waitpid(pid, &status, 0);
			status = -1;
			break;
		}
		if (pfd >= 0) {
			struct pollfd p = { pfd, POLLIN, 0 };
			(void)poll(&p, 1, (int)(deadline - now));
		} else {
			usleep(10000);
		}
	}
	if (pfd >= 0)
		close(pfd);
	if (status == -1)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

pid_t ctr_oci_delete_spawn(const char *runtime, const char *state_root, const char *id, crisp_err_t *err)
{
	char *argv[] = { (char *)runtime, "--root", (char *)state_root, "delete", "--force", (char *)id, NULL };
	pid_t pid = spawn_runtime(argv, NULL);

	if (pid < 0)
		crisp_error(err, CRISP_INTERNAL, errno, "%s delete %.12s: fork", runtime, id);
	return pid;
}

int ctr_oci_delete(const char *runtime, const char *state_root, const char *id, crisp_err_t *err)
{
	char *argv[] = { (char *)runtime, "--root", (char *)state_root, "delete", "--force", (char *)id, NULL };
	int rc = run_bounded(argv, NULL, 10000);

	if (rc != 0)
		return crisp_error(err, CRISP_INTERNAL, 0, "%s delete %.12s: %s", runtime, id,
				   rc < 0 ? "timed out" : "failed");
	return 0;
}

/* The pty master the runtime sends on the console socket (SCM_RIGHTS). */
static int recv_master(int ls, int timeout_ms)
{
	struct pollfd p = { ls, POLLIN, 0 };
	char data[4096];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { data, sizeof data };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	int cfd, fd = -1;

	if (poll(&p, 1, timeout_ms) != 1 || (cfd = accept4(ls, NULL, NULL, SOCK_CLOEXEC)) < 0)
		return -1;
	p = (struct pollfd){ cfd, POLLIN, 0 };
	if (poll(&p, 1, timeout_ms) == 1 && recvmsg(cfd, &mh, MSG_CMSG_CLOEXEC) >= 0) {
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(c), sizeof fd);
	}
	close(cfd);
	return fd;
}

/* The launcher's oom_score_adj semantics for the process tree the runtime
 * starts: set on the caller (inherited), lowered values clamped to 0 when
 * the node refuses them. */
static void inherit_oom(const struct launch_spec *s, struct launch_result *res, char *saved, size_t n)
{
	char buf[32];
	int fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);

	saved[0] = '\0';
	if (fd < 0)
		return;
	ssize_t r = read(fd, saved, n - 1);
	saved[r > 0 ? r : 0] = '\0';
	if (s->set_oom_score_adj) {
		int v = s->oom_score_adj;
		for (;;) {
			int l = snprintf(buf, sizeof buf, "%d", v);
			if (pwrite(fd, buf, (size_t)l, 0) == l)
				break;
			if (v < 0) {
				v = 0;
				res->oom_clamped = true;
				continue;
			}
			break;
		}
		res->oom_score_adj = v;
	}
	close(fd);
}

static void restore_oom(const char *saved)
{
	int fd;

	if (saved[0] && (fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC)) >= 0) {
		(void)!pwrite(fd, saved, strlen(saved), 0);
		close(fd);
	}
}

int ctr_oci_run(const struct launch_spec *s, const struct ctr_oci *o, const int stdio[3], bool tty,
		int *pty_master, struct launch_result *res, crisp_err_t *err)
{
	char cfgp[PATH_MAX], pidp[PATH_MAX], logarg[PATH_MAX + 8], sockp[PATH_MAX], why[512], oom[32];
	struct launch_spec spec = *s;
	char *text;
	int fd, ls = -1, rc;

	memset(res, 0, sizeof *res);
	*pty_master = -1;
	spec.terminal = tty;
	if (crisp_mkdir_p(o->state_root, 0700, 0, 0) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "oci: runtime state dir %s", o->state_root);
	if (mkdir(o->bundle, 0700) < 0 && errno != EEXIST)
		return crisp_error(err, CRISP_INTERNAL, errno, "oci: bundle %s", o->bundle);
	if (bundle_path(o, "config.json", cfgp, sizeof cfgp, err) < 0 || bundle_path(o, "pid", pidp, sizeof pidp, err) < 0 ||
	    bundle_path(o, "console.sock", sockp, sizeof sockp, err) < 0)
		return -1;
	snprintf(logarg, sizeof logarg, "--log=%s/log", o->bundle);
	if ((text = ctr_oci_config(&spec, o, getpid(), err)) == NULL)
		return -1;
	(void)unlink(pidp);
	/* which handler's state to delete at RemoveContainer (by name: the
	 * binary is looked up in the configuration again then) */
	if (bundle_path(o, "handler", sockp, sizeof sockp, err) < 0)
		return -1;
	fd = open(sockp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	rc = fd < 0 ? -1 : crisp_write_all(fd, o->handler, strlen(o->handler));
	if (fd >= 0)
		close(fd);
	if (rc < 0 || bundle_path(o, "console.sock", sockp, sizeof sockp, err) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "oci: write the handler record");
	fd = open(cfgp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	rc = fd < 0 ? -1 : crisp_write_all(fd, text, strlen(text));
	free(text);
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "oci: write %s", cfgp);

	char *argv[16];
	int n = 0;
	argv[n++] = (char *)o->runtime;
	argv[n++] = "--root";
	argv[n++] = (char *)o->state_root;
	argv[n++] = logarg;
	argv[n++] = "--log-format=json";
	argv[n++] = "run";
	argv[n++] = "--detach";
	argv[n++] = "--bundle";
	argv[n++] = (char *)o->bundle;
	argv[n++] = "--pid-file";
	argv[n++] = pidp;
	int bfd = -1;
	if (tty) {
		/* sun_path holds 108 bytes: name the socket through a directory fd
		 * of this process, which the runtime (a child) can resolve too */
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		(void)unlink(sockp);
		bfd = open(o->bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (bfd < 0)
			return crisp_error(err, CRISP_INTERNAL, errno, "oci: bundle %s", o->bundle);
		snprintf(sockp, sizeof sockp, "/proc/%d/fd/%d/console.sock", (int)getpid(), bfd);
		memcpy(sa.sun_path, sockp, strlen(sockp) + 1);
		ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		mode_t old = umask(0077);
		if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 1) < 0) {
			umask(old);
			int e = errno;
			if (ls >= 0)
				close(ls);
			close(bfd);
			return crisp_error(err, CRISP_INTERNAL, e, "oci: console socket");
		}
		umask(old);
		argv[n++] = "--console-socket";
		argv[n++] = sockp;
	}
	argv[n++] = (char *)o->id;
	argv[n] = NULL;

	inherit_oom(s, res, oom, sizeof oom);
	rc = run_bounded(argv, tty ? NULL : stdio, s->timeout_ms > 0 ? s->timeout_ms : 10000);
	restore_oom(oom);
	if (rc != 0) {
		runtime_error(o, why, sizeof why);
		crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "%s (runtime handler %s): %s", o->runtime, o->handler,
			    rc < 0 ? "timed out"
			    : why[0] ? why
				     : "failed without a message");
		goto fail;
	}
	char pidtxt[32] = "";
	int pf = open(pidp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (pf >= 0) {
		ssize_t r = read(pf, pidtxt, sizeof pidtxt - 1);
		pidtxt[r > 0 ? r : 0] = '\0';
		close(pf);
	}
	long v = strtol(pidtxt, NULL, 10);
	if (v <= 0) {
		crisp_error(err, CRISP_INTERNAL, 0, "%s: no pid file after run", o->runtime);
		goto fail;
	}
	res->pid = (pid_t)v;
	/* the runtime exited: its orphaned init is now ours (subreaper) */
	siginfo_t si = { 0 };
	if (waitid(P_PID, (id_t)res->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "%s: container pid %ld is not the monitor's child",
			    o->runtime, v);
		goto fail;
	}
	if (tty) {
		*pty_master = recv_master(ls, 2000);
		close(ls);
		ls = -1;
		(void)unlink(sockp);
		close(bfd);
		bfd = -1;
		if (*pty_master < 0) {
			crisp_error(err, CRISP_INTERNAL, 0, "%s: no terminal on the console socket", o->runtime);
			goto fail;
		}
	}
	return 0;
fail:
	if (ls >= 0) {
		close(ls);
		(void)unlink(sockp);
	}
	if (bfd >= 0)
		close(bfd);
	if (res->pid > 0) {
		kill(res->pid, SIGKILL);
		(void)waitpid(res->pid, NULL, 0);
		res->pid = 0;
	}
	crisp_err_t e2 = CRISP_ERR_INIT;
	(void)ctr_oci_delete(o->runtime, o->state_root, o->id, &e2);
	return -1;
}
