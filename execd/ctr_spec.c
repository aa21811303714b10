/*
 * execd/ctr_spec: the pure parts of turning a CRI ContainerConfig and an
 * image into a launch spec (see ctr.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <jansson.h>

#include "common/util.h"
#include "execd/ctr.h"

#define PASSWD_MAX (4u * 1024 * 1024)
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

const char *const ctr_default_masked[] = {
	"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
	"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/dev/block",
	"/sys/devices/virtual/powercap", NULL,
};
const char *const ctr_default_readonly[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

void ctr_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int strv_push(char ***v, size_t *n, size_t *cap, const char *s)
{
	if (*n + 2 > *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		char **nv = realloc(*v, nc * sizeof *nv);
		if (nv == NULL)
			return -1;
		*v = nv;
		*cap = nc;
	}
	if (((*v)[*n] = strdup(s)) == NULL)
		return -1;
	(*v)[++*n] = NULL;
	return 0;
}

int ctr_argv(char *const *command, size_t ncommand, char *const *args, size_t nargs,
	     const Cipc__ImageResolved *img, char ***out, crisp_err_t *err)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	int bad = 0;

	if (ncommand > 0) {
		for (size_t i = 0; i < ncommand && !bad; i++)
			bad = strv_push(&v, &n, &cap, command[i]);
	} else {
		for (size_t i = 0; img && i < img->n_entrypoint && !bad; i++)
			bad = strv_push(&v, &n, &cap, img->entrypoint[i]);
	}
	if (nargs > 0) {
		for (size_t i = 0; i < nargs && !bad; i++)
			bad = strv_push(&v, &n, &cap, args[i]);
	} else if (ncommand == 0) {
		for (size_t i = 0; img && i < img->n_cmd && !bad; i++)
			bad = strv_push(&v, &n, &cap, img->cmd[i]);
	}
	if (bad) {
		ctr_strv_free(v);
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
	}
	if (n == 0 || v[0][0] == '\0') {
		ctr_strv_free(v);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "no command: the request has no command and the image no entrypoint or cmd");
	}
	*out = v;
	return 0;
}

static size_t key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* Set key=value in v, replacing an entry with the same key. */
static int env_set(char ***v, size_t *n, size_t *cap, const char *key, size_t klen, const char *val)
{
	size_t len = klen + 1 + strlen(val) + 1;
	char *s = malloc(len);

	if (s == NULL)
		return -1;
	snprintf(s, len, "%.*s=%s", (int)klen, key, val);
	for (size_t i = 0; i < *n; i++) {
		if (key_len((*v)[i]) == klen && !strncmp((*v)[i], key, klen)) {
			free((*v)[i]);
			(*v)[i] = s;
			return 0;
		}
	}
	int r = strv_push(v, n, cap, s);
	free(s);
	return r;
}

int ctr_env(const Cipc__ImageResolved *img, Runtime__V1__KeyValue *const *envs, size_t nenvs,
	    const char *hostname, char ***out, crisp_err_t *err)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	bool have_path = false;
	int bad = 0;

	bad = strv_push(&v, &n, &cap, DEFAULT_PATH);
	for (size_t i = 0; img && i < img->n_env && !bad; i++) {
		const char *e = img->env[i], *eq = strchr(e, '=');
		size_t kl = key_len(e);
		if (kl == 0)
			continue;
		bad = env_set(&v, &n, &cap, e, kl, eq ? eq + 1 : "");
		have_path |= kl == 4 && !strncmp(e, "PATH", 4);
	}
	if (!bad && hostname && hostname[0])
		bad = env_set(&v, &n, &cap, "HOSTNAME", 8, hostname);
	for (size_t i = 0; i < nenvs && !bad; i++) {
		if (envs[i]->key[0] == '\0' || strchr(envs[i]->key, '=')) {
			ctr_strv_free(v);
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "env: invalid name \"%.64s\"", envs[i]->key);
		}
		bad = env_set(&v, &n, &cap, envs[i]->key, strlen(envs[i]->key), envs[i]->value);
	}
	(void)have_path; /* the default PATH came first and was replaced if set */
	if (bad) {
		ctr_strv_free(v);
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
	}
	*out = v;
	return 0;
}

/* ---- users ---- */

/* Read a small file inside the root, never leaving it.  NULL: absent. */
static char *read_in_root(int rootfd, const char *path, size_t *len, crisp_err_t *err)
{
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV };
	int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
	char *buf;
	struct stat st;

	*len = 0;
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return NULL;
		crisp_error(err, CRISP_INVALID_ARGUMENT, errno, "container %s", path);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > PASSWD_MAX) {
		close(fd);
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "container %s: not a regular file under 4 MiB", path);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		return NULL;
	}
	ssize_t r = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (r < 0) {
		free(buf);
		crisp_error(err, CRISP_INVALID_ARGUMENT, errno, "container %s", path);
		return NULL;
	}
	buf[r] = '\0';
	*len = (size_t)r;
	return buf;
}

static bool parse_id(const char *s, size_t len, unsigned long *out)
{
	char tmp[16], *end;

	if (len == 0 || len >= sizeof tmp)
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (tmp[i] < '0' || tmp[i] > '9')
			return false;
	errno = 0;
	*out = strtoul(tmp, &end, 10);
	return errno == 0 && *end == '\0' && *out <= 0xfffffffeUL;
}

/* Split a passwd/group line into up to max fields (in place). */
static size_t split_fields(char *line, char **f, size_t max)
{
	size_t n = 0;

	f[n++] = line;
	for (char *c = line; *c && n < max; c++)
		if (*c == ':') {
			*c = '\0';
			f[n++] = c + 1;
		}
	return n;
}

/* Find a passwd entry by name (name != NULL) or by uid. */
static bool passwd_find(char *buf, const char *name, unsigned long uid, struct ctr_user *u, bool *found_gid)
{
	char *save = NULL;

	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[7];
		unsigned long id, gid;
		if (line[0] == '#' || split_fields(line, f, 7) < 7)
			continue;
		if (!parse_id(f[2], strlen(f[2]), &id) || !parse_id(f[3], strlen(f[3]), &gid))
			continue;
		if (name ? strcmp(f[0], name) != 0 : id != uid)
			continue;
		u->uid = (uid_t)id;
		u->gid = (gid_t)gid;
		crisp_strlcpy(u->home, f[5], sizeof u->home);
		*found_gid = true;
		return true;
	}
	return false;
}

static bool group_find(char *buf, const char *name, unsigned long *gid)
{
	char *save = NULL;

	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4];
		unsigned long id;
		if (line[0] == '#' || split_fields(line, f, 4) < 3 || !parse_id(f[2], strlen(f[2]), &id))
			continue;
		if (!strcmp(f[0], name)) {
			*gid = id;
			return true;
		}
	}
	return false;
}

static void add_group(struct ctr_user *u, gid_t g)
{
	for (size_t i = 0; i < u->ngroups; i++)
		if (u->groups[i] == g)
			return;
	if (u->ngroups < sizeof u->groups / sizeof u->groups[0])
		u->groups[u->ngroups++] = g;
}

/* Groups listing the user by name as a member (as runc's additional groups). */
static void member_groups(char *buf, const char *user, struct ctr_user *u)
{
	char *save = NULL;

	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4], *s2 = NULL;
		unsigned long id;
		if (line[0] == '#' || split_fields(line, f, 4) < 4 || !parse_id(f[2], strlen(f[2]), &id))
			continue;
		for (char *m = strtok_r(f[3], ",", &s2); m; m = strtok_r(NULL, ",", &s2))
			if (!strcmp(m, user))
				add_group(u, (gid_t)id);
	}
}

int ctr_user_resolve(int rootfd, const char *image_user, const char *run_as_username,
		     const int64_t *run_as_user, const int64_t *run_as_group, const int64_t *extra,
		     size_t nextra, struct ctr_user *u, crisp_err_t *err)
{
	char user[256] = "", group[256] = "", uname[256] = "";
	size_t plen = 0, glen = 0;
	char *passwd = NULL, *grp = NULL, *tmp = NULL;
	bool found = false;
	unsigned long id;
	int rc = -1;

	memset(u, 0, sizeof *u);
	crisp_strlcpy(u->home, "/", sizeof u->home);
	if (run_as_username && run_as_username[0]) {
		crisp_strlcpy(user, run_as_username, sizeof user);
	} else if (run_as_user) {
		if (*run_as_user < 0 || *run_as_user > 0xfffffffeLL)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "run_as_user %lld out of range",
					   (long long)*run_as_user);
		snprintf(user, sizeof user, "%lld", (long long)*run_as_user);
	} else if (image_user && image_user[0]) {
		const char *colon = strchr(image_user, ':');
		size_t ul = colon ? (size_t)(colon - image_user) : strlen(image_user);
		if (ul >= sizeof user || (colon && strlen(colon + 1) >= sizeof group))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "image user too long");
		memcpy(user, image_user, ul);
		user[ul] = '\0';
		if (colon)
			crisp_strlcpy(group, colon + 1, sizeof group);
	}
	if (user[0] == '\0')
		crisp_strlcpy(user, "0", sizeof user);

	passwd = read_in_root(rootfd, "/etc/passwd", &plen, err);
	if (passwd == NULL && err->code != CRISP_OK)
		goto out;
	grp = read_in_root(rootfd, "/etc/group", &glen, err);
	if (grp == NULL && err->code != CRISP_OK)
		goto out;

	bool numeric = parse_id(user, strlen(user), &id);
	if (passwd != NULL) {
		if ((tmp = strdup(passwd)) == NULL)
			goto oom;
		found = passwd_find(tmp, numeric ? NULL : user, numeric ? id : 0, u, &found);
		free(tmp);
		tmp = NULL;
	}
	if (!numeric && !found) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "user \"%.64s\": no such user in the container's /etc/passwd",
			    user);
		goto out;
	}
	if (numeric && !found) {
		u->uid = (uid_t)id;
		u->gid = 0;
	}
	if (found && passwd) {
		/* the name for group membership */
		if ((tmp = strdup(passwd)) == NULL)
			goto oom;
		char *save = NULL;
		for (char *line = strtok_r(tmp, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char *f[7];
			unsigned long x;
			if (split_fields(line, f, 7) >= 3 && parse_id(f[2], strlen(f[2]), &x) && x == u->uid) {
				crisp_strlcpy(uname, f[0], sizeof uname);
				break;
			}
		}
		free(tmp);
		tmp = NULL;
	}
	if (group[0]) {
		unsigned long g;
		if (parse_id(group, strlen(group), &g)) {
			u->gid = (gid_t)g;
		} else {
			if (grp == NULL || (tmp = strdup(grp)) == NULL || !group_find(tmp, group, &g)) {
				crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					    "group \"%.64s\": no such group in the container's /etc/group", group);
				goto out;
			}
			free(tmp);
			tmp = NULL;
			u->gid = (gid_t)g;
		}
	}
	if (run_as_group) {
		if (*run_as_group < 0 || *run_as_group > 0xfffffffeLL) {
			crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "run_as_group out of range");
			goto out;
		}
		u->gid = (gid_t)*run_as_group;
	}
	add_group(u, u->gid);
	if (uname[0] && grp) {
		if ((tmp = strdup(grp)) == NULL)
			goto oom;
		member_groups(tmp, uname, u);
		free(tmp);
		tmp = NULL;
	}
	for (size_t i = 0; i < nextra; i++) {
		if (extra[i] < 0 || extra[i] > 0xfffffffeLL) {
			crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "supplemental group out of range");
			goto out;
		}
		add_group(u, (gid_t)extra[i]);
	}
	rc = 0;
	goto out;
oom:
	crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
out:
	free(tmp);
	free(passwd);
	free(grp);
	return rc;
}

/* ---- capabilities ---- */

static const char *const cap_names[] = {
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
};
#define CAP_COUNT ((int)(sizeof cap_names / sizeof cap_names[0]))

const char *ctr_cap_name(int n)
{
	return n >= 0 && n < CAP_COUNT ? cap_names[n] : NULL;
}

int ctr_cap_from_name(const char *name)
{
	if (!strncasecmp(name, "CAP_", 4))
		name += 4;
	for (int i = 0; i < CAP_COUNT; i++)
		if (!strcasecmp(name, cap_names[i]))
			return i;
	return -1;
}

static uint64_t all_caps(void)
{
	int last = CAP_COUNT - 1;
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (f) {
		if (fscanf(f, "%d", &last) != 1 || last < 0 || last > 63)
			last = CAP_COUNT - 1;
		fclose(f);
	}
	uint64_t all = last >= 63 ? ~0ULL : (1ULL << (last + 1)) - 1;
	/* what execd's own bounding set lacks no container can get */
	for (int i = 0; i <= last && i < 64; i++)
		if (prctl(PR_CAPBSET_READ, (unsigned long)i, 0, 0, 0) == 0)
			all &= ~(1ULL << i);
	return all;
}

int ctr_caps(char *const *add, size_t nadd, char *const *drop, size_t ndrop, bool privileged,
	     uint64_t *out, crisp_err_t *err)
{
	uint64_t c = launch_default_caps();

	if (privileged) {
		*out = all_caps();
		return 0;
	}
	/* As CRI-O: add first, then drop; ALL in either is the whole set. */
	for (size_t i = 0; i < nadd; i++) {
		if (!strcasecmp(add[i], "ALL")) {
			c = all_caps();
			continue;
		}
		int n = ctr_cap_from_name(add[i]);
		if (n < 0)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "unknown capability \"%.64s\" to add", add[i]);
		c |= 1ULL << n;
	}
	for (size_t i = 0; i < ndrop; i++) {
		if (!strcasecmp(drop[i], "ALL")) {
			c = 0;
			/* added ones survive a drop of ALL, as CRI-O does */
			for (size_t j = 0; j < nadd; j++) {
				int n = ctr_cap_from_name(add[j]);
				if (n >= 0)
					c |= 1ULL << n;
				else if (!strcasecmp(add[j], "ALL"))
					c = all_caps();
			}
			continue;
		}
		int n = ctr_cap_from_name(drop[i]);
		if (n < 0)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "unknown capability \"%.64s\" to drop", drop[i]);
		c &= ~(1ULL << n);
	}
	*out = c & all_caps();
	return 0;
}

/* ---- seccomp RuntimeDefault ---- */

/* Refused unless a capability says otherwise (Docker's default profile:
 * what it leaves out of its allowlist, by the capability that allows it
 * back; 0 = never). */
static const struct {
	const char *name;
	int cap; /* -1: always refused */
} denied[] = {
	{ "acct", 20 /* SYS_PACCT */ },
	{ "add_key", -1 },
	{ "bpf", -1 },
	{ "clock_adjtime", 25 },
	{ "clock_settime", 25 },
	{ "settimeofday", 25 },
	{ "stime", 25 },
	{ "create_module", 16 },
	{ "delete_module", 16 },
	{ "finit_module", 16 },
	{ "init_module", 16 },
	{ "get_kernel_syms", -1 },
	{ "query_module", -1 },
	{ "get_mempolicy", -1 },
	{ "set_mempolicy", -1 },
	{ "mbind", -1 },
	{ "move_pages", -1 },
	{ "ioperm", 17 },
	{ "iopl", 17 },
	{ "kcmp", 19 },
	{ "kexec_file_load", 22 },
	{ "kexec_load", 22 },
	{ "reboot", 22 },
	{ "keyctl", -1 },
	{ "request_key", -1 },
	{ "lookup_dcookie", 21 },
	{ "mount", 21 },
	{ "umount", 21 },
	{ "umount2", 21 },
	{ "pivot_root", 21 },
	{ "unshare", 21 },
	{ "setns", 21 },
	{ "fsopen", 21 },
	{ "fsconfig", 21 },
	{ "fsmount", 21 },
	{ "fspick", 21 },
	{ "move_mount", 21 },
	{ "open_tree", 21 },
	{ "mount_setattr", 21 },
	{ "quotactl", 21 },
	{ "swapon", 21 },
	{ "swapoff", 21 },
	{ "sethostname", 21 },
	{ "setdomainname", 21 },
	{ "name_to_handle_at", 2 /* DAC_READ_SEARCH */ },
	{ "open_by_handle_at", 2 },
	{ "nfsservctl", -1 },
	{ "perf_event_open", 38 /* PERFMON */ },
	{ "process_vm_readv", 19 },
	{ "process_vm_writev", 19 },
	{ "ptrace", 19 },
	{ "syslog", 34 },
	{ "sysfs", -1 },
	{ "_sysctl", -1 },
	{ "uselib", -1 },
	{ "userfaultfd", -1 },
	{ "ustat", -1 },
	{ "vm86", -1 },
	{ "vm86old", -1 },
	{ "fanotify_init", 21 },
	{ "vhangup", 26 },
};

static int add_denied(scmp_filter_ctx ctx, uint64_t caps)
{
	int r = 0;

	for (size_t i = 0; i < sizeof denied / sizeof denied[0] && r == 0; i++) {
		if (denied[i].cap >= 0 && (caps & (1ULL << denied[i].cap)))
			continue;
		int nr = seccomp_syscall_resolve_name(denied[i].name);
		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue; /* not on this architecture */
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
	}
	/* clone with a namespace flag needs SYS_ADMIN; clone3 carries its
	 * flags in memory a filter cannot read: ENOSYS, and libc falls back
	 * to clone (as Docker's profile does). */
	if (r == 0 && !(caps & (1ULL << 21))) {
		static const uint64_t bits[] = { 0x00020000 /* NEWNS */, 0x02000000 /* NEWCGROUP */,
						 0x04000000 /* NEWUTS */, 0x08000000 /* NEWIPC */,
						 0x10000000 /* NEWUSER */, 0x20000000 /* NEWPID */,
						 0x40000000 /* NEWNET */ };
		for (size_t i = 0; i < sizeof bits / sizeof bits[0] && r == 0; i++)
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
					     SCMP_A0(SCMP_CMP_MASKED_EQ, bits[i], bits[i]));
		if (r == 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	}
	return r;
}

int ctr_seccomp_default(uint64_t caps, int *fd, crisp_err_t *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r;

	if (ctx == NULL)
		return crisp_error(err, CRISP_INTERNAL, ENOMEM, "seccomp_init");
	r = add_denied(ctx, caps);
	if (r < 0) {
		seccomp_release(ctx);
		return crisp_error(err, CRISP_INTERNAL, -r, "seccomp rule");
	}
	r = launch_seccomp_export(ctx, fd, err);
	seccomp_release(ctx);
	return r;
}

char *ctr_seccomp_default_oci(uint64_t caps, crisp_err_t *err)
{
	json_t *names = json_array(), *rules = json_array(), *root;
	char *text;

	if (names == NULL || rules == NULL)
		goto oom;
	for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
		if (denied[i].cap >= 0 && (caps & (1ULL << denied[i].cap)))
			continue;
		int nr = seccomp_syscall_resolve_name(denied[i].name);
		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue;
		if (json_array_append_new(names, json_string(denied[i].name)) < 0)
			goto oom;
	}
	if (json_array_append_new(rules, json_pack("{s:o,s:s,s:i}", "names", names, "action", "SCMP_ACT_ERRNO",
						   "errnoRet", EPERM)) < 0) {
		names = NULL;
		goto oom;
	}
	names = NULL;
	if (!(caps & (1ULL << 21))) {
		static const uint64_t bits[] = { 0x00020000, 0x02000000, 0x04000000, 0x08000000,
						 0x10000000, 0x20000000, 0x40000000 };
		for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
			if (json_array_append_new(rules, json_pack("{s:[s],s:s,s:i,s:[{s:i,s:I,s:I,s:s}]}", "names",
								   "clone", "action", "SCMP_ACT_ERRNO", "errnoRet",
								   EPERM, "args", "index", 0, "value",
								   (json_int_t)bits[i], "valueTwo", (json_int_t)bits[i],
								   "op", "SCMP_CMP_MASKED_EQ")) < 0)
				goto oom;
		if (json_array_append_new(rules, json_pack("{s:[s],s:s,s:i}", "names", "clone3", "action",
							   "SCMP_ACT_ERRNO", "errnoRet", ENOSYS)) < 0)
			goto oom;
	}
	root = json_pack("{s:s,s:o}", "defaultAction", "SCMP_ACT_ALLOW", "syscalls", rules);
	if (root == NULL)
		goto oom_r;
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (text == NULL)
		goto oom_r;
	return text;
oom:
	json_decref(names);
	json_decref(rules);
oom_r:
	crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "seccomp profile");
	return NULL;
}
