/*
 * crisp: the sandbox every role applies at startup.  See sandbox.h for the
 * order of the steps and the rules; the roles' policies are in
 * sandbox_tables.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cap-ng.h>
#include <seccomp.h>

#ifdef CRISP_SANITIZED
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif

#include "common/sandbox.h"
#include "common/util.h"

#define SB_MAX_RULES 64
#define SB_MAX_PORTS 64

/* Per-call state of sandbox_apply (STYLE avoid #6: no file-scope state). */
struct sb {
	const struct sandbox_spec *s;
	const char *role;
	crisp_err_t *err;
	uid_t uid;
	gid_t gid;
	bool change_id;          /* uid != 0: become uid:gid */
	int chroot_fd;
	struct stat chroot_st;
	int rule_fd[SB_MAX_RULES]; /* -1: optional path missing */
	struct stat rule_st[SB_MAX_RULES];
	unsigned last_cap;
	uint64_t keep_mask;      /* bit per kept capability */
	int ll_abi;
};

__attribute__((format(printf, 5, 6)))
static int sb_fail(struct sb *b, const char *step, int code, int errnum, const char *fmt, ...)
{
	char msg[CRISP_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return crisp_error(b->err, code, errnum, "sandbox %s: %s: %s", b->role, step, msg);
}

/* ---- spec ----------------------------------------------------------------- */

static int cmp_op(uint8_t op, enum scmp_compare *out)
{
	switch (op) {
	case SANDBOX_CMP_EQ: *out = SCMP_CMP_EQ; return 0;
	case SANDBOX_CMP_NE: *out = SCMP_CMP_NE; return 0;
	case SANDBOX_CMP_LT: *out = SCMP_CMP_LT; return 0;
	case SANDBOX_CMP_LE: *out = SCMP_CMP_LE; return 0;
	case SANDBOX_CMP_GT: *out = SCMP_CMP_GT; return 0;
	case SANDBOX_CMP_GE: *out = SCMP_CMP_GE; return 0;
	case SANDBOX_CMP_MASKED_EQ: *out = SCMP_CMP_MASKED_EQ; return 0;
	}
	return -1;
}

/* May e, an entry sandbox_apply adds on its own, join table t?  Not when t
 * decides that syscall outright (an unconditional entry), nor when e is
 * unconditional and t has entries for it: the role's table wins. */
static bool may_add(const struct sandbox_syscall *t, size_t n, const struct sandbox_syscall *e)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].name, e->name) == 0 && (t[i].nargs == 0 || e->nargs == 0))
			return false;
	return true;
}

int sandbox_check_table(const struct sandbox_syscall *t, size_t n, crisp_err_t *err)
{
	if (n > 0 && t == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "syscall table is NULL");
	for (size_t i = 0; i < n; i++) {
		const struct sandbox_syscall *e = &t[i];
		enum scmp_compare op;

		/* libseccomp keeps the first of two unconditional rules for one
		 * syscall and silently drops the other: a table may have one
		 * unconditional entry per name, or only conditional ones. */
		for (size_t j = 0; e->name != NULL && j < i; j++)
			if (t[j].name != NULL && strcmp(t[j].name, e->name) == 0 && (t[j].nargs == 0 || e->nargs == 0))
				return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
						   "%s: an unconditional entry must be the only one", e->name);

		if (e->name == NULL)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "syscall table entry %zu has no name", i);
		if (seccomp_syscall_resolve_name(e->name) == __NR_SCMP_ERROR)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "unknown syscall \"%s\"", e->name);
		if (e->ret_errno < 0 || e->ret_errno > 4095)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: errno %d out of range", e->name,
					   e->ret_errno);
		if (e->nargs > SANDBOX_MAX_ARGS)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: %u argument filters (max %d)",
					   e->name, e->nargs, SANDBOX_MAX_ARGS);
		for (unsigned j = 0; j < e->nargs; j++) {
			if (e->args[j].arg > 5 || cmp_op(e->args[j].op, &op) < 0)
				return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
						   "%s: bad argument filter %u (arg %u, op %u)", e->name, j,
						   e->args[j].arg, e->args[j].op);
			if (e->args[j].self_pid && e->args[j].op != SANDBOX_CMP_EQ)
				return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: self_pid needs EQ", e->name);
		}
	}
	return 0;
}

static int probe_last_cap(void)
{
	int c;

	/* PR_CAPBSET_READ fails with EINVAL past the kernel's last cap; it
	 * needs no /proc, which may be gone by the time we verify. */
	for (c = 0; c < 64; c++)
		if (prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) < 0)
			break;
	return c - 1;
}

static int check_spec(struct sb *b)
{
	const struct sandbox_spec *s = b->s;
	crisp_err_t terr = CRISP_ERR_INIT;
	const char *st = "spec";

	switch (s->seccomp_mode) {
	case SANDBOX_SECCOMP_NONE:
	case SANDBOX_SECCOMP_ALLOW:
	case SANDBOX_SECCOMP_DENY:
		break;
	default:
		return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "seccomp_mode not set (every role chooses)");
	}
	if (s->seccomp_mode != SANDBOX_SECCOMP_NONE && s->nsyscalls == 0)
		return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "empty seccomp %s",
			       s->seccomp_mode == SANDBOX_SECCOMP_ALLOW ? "allowlist" : "denylist");
	if (s->seccomp_mode == SANDBOX_SECCOMP_NONE && s->nsyscalls != 0)
		return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "syscall table given without a seccomp mode");
	if (sandbox_check_table(s->syscalls, s->nsyscalls, &terr) < 0)
		return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "%s", terr.msg);
	if (s->allow_new_privs && (s->landlock || s->seccomp_mode != SANDBOX_SECCOMP_NONE))
		return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "Landlock and seccomp need no_new_privs");
	if (s->user != NULL && (s->uid != 0 || s->gid != 0))
		return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "both a user name and numeric ids");
	if (s->user == NULL && (s->uid == (uid_t)-1 || s->gid == (gid_t)-1 || (s->uid == 0) != (s->gid == 0)))
		return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "bad ids %d:%d (root is 0:0; others are "
			       "both non-zero)", (int)s->uid, (int)s->gid);
	if (s->keep_all_caps && (s->user != NULL || s->uid != 0 || s->nkeep_caps != 0))
		return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "keep_all_caps is for uid 0 alone");
	if (s->nkeep_caps > 0 && s->keep_caps == NULL)
		return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "keep_caps is NULL");
	for (size_t i = 0; i < s->nkeep_caps; i++) {
		if (s->keep_caps[i] < 0 || (unsigned)s->keep_caps[i] > b->last_cap)
			return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "capability %d unknown to this kernel",
				       s->keep_caps[i]);
		b->keep_mask |= 1ULL << s->keep_caps[i];
	}
	if (!s->landlock && (s->nfs != 0 || s->nports != 0 || s->tcp_unrestricted))
		return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "Landlock rules given with landlock off");
	if (s->nfs > SB_MAX_RULES || s->nports > SB_MAX_PORTS)
		return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "too many Landlock rules");
	if ((s->nfs > 0 && s->fs == NULL) || (s->nports > 0 && s->ports == NULL))
		return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "Landlock rules are NULL");
	if (s->tcp_unrestricted && s->nports != 0)
		return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "port rules with tcp_unrestricted");
	for (size_t i = 0; i < s->nfs; i++)
		if (s->fs[i].path == NULL || s->fs[i].path[0] != '/' || s->fs[i].access == 0)
			return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "Landlock rule %zu: absolute path and "
				       "access needed", i);
	if (s->nrlimits > 0 && s->rlimits == NULL)
		return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "rlimits is NULL");
	for (size_t i = 0; i < s->nrlimits; i++)
		if (s->rlimits[i].resource < 0 || s->rlimits[i].resource >= RLIM_NLIMITS)
			return sb_fail(b, st, CRISP_INVALID_ARGUMENT, 0, "bad rlimit resource %d",
				       s->rlimits[i].resource);
	return 0;
}

/* ---- resolve: everything that needs the real root, before chroot ----------- */

static bool dir_is_empty(int fd)
{
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	DIR *d;
	struct dirent *e;
	bool empty = true;

	if (dfd < 0)
		return false;
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return false;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			empty = false;
			break;
		}
	closedir(d);
	return empty;
}

static int resolve(struct sb *b)
{
	const struct sandbox_spec *s = b->s;

	if (s->user != NULL) {
		struct passwd *pw;

		errno = 0;
		pw = getpwnam(s->user);
		if (pw == NULL)
			return sb_fail(b, "resolve", errno ? CRISP_INTERNAL : CRISP_NOT_FOUND, errno,
				       "user %s does not exist", s->user);
		if (pw->pw_uid == 0 || pw->pw_gid == 0)
			return sb_fail(b, "resolve", CRISP_PERMISSION_DENIED, 0,
				       "user %s has uid %u gid %u: a sandboxed user may not be root",
				       s->user, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
		b->uid = pw->pw_uid;
		b->gid = pw->pw_gid;
	} else {
		b->uid = s->uid;
		b->gid = s->gid;
	}
	b->change_id = b->uid != 0;

	if (s->chroot_dir != NULL) {
		const char *st = "chroot";

		b->chroot_fd = open(s->chroot_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (b->chroot_fd < 0)
			return sb_fail(b, st, CRISP_FAILED_PRECONDITION, errno, "%s", s->chroot_dir);
		if (fstat(b->chroot_fd, &b->chroot_st) < 0)
			return sb_fail(b, st, CRISP_INTERNAL, errno, "%s", s->chroot_dir);
		if (b->chroot_st.st_uid != 0 || (b->chroot_st.st_mode & 022) != 0)
			return sb_fail(b, st, CRISP_FAILED_PRECONDITION, 0,
				       "%s must be owned by root and not group/other-writable", s->chroot_dir);
		if (!dir_is_empty(b->chroot_fd))
			return sb_fail(b, st, CRISP_FAILED_PRECONDITION, 0, "%s is not empty", s->chroot_dir);
	}

	/* Landlock rules name paths of the real root: open them now, as root. */
	for (size_t i = 0; i < s->nfs; i++) {
		b->rule_fd[i] = open(s->fs[i].path, O_PATH | O_CLOEXEC);
		if (b->rule_fd[i] < 0) {
			if (errno == ENOENT && s->fs[i].optional)
				continue;
			return sb_fail(b, "landlock", CRISP_FAILED_PRECONDITION, errno, "%s", s->fs[i].path);
		}
		if (fstat(b->rule_fd[i], &b->rule_st[i]) < 0)
			return sb_fail(b, "landlock", CRISP_INTERNAL, errno, "%s", s->fs[i].path);
	}
	return 0;
}

static int check_single_threaded(struct sb *b)
{
	char buf[4096];
	ssize_t n;
	int fd, threads = -1;
	const char *p;

	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sb_fail(b, "threads", CRISP_INTERNAL, errno, "/proc/self/status");
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return sb_fail(b, "threads", CRISP_INTERNAL, n < 0 ? errno : 0, "/proc/self/status");
	buf[n] = '\0';
	p = strstr(buf, "\nThreads:");
	if (p != NULL)
		threads = atoi(p + strlen("\nThreads:"));
	if (threads != 1)
		return sb_fail(b, "threads", CRISP_FAILED_PRECONDITION, 0,
			       "%d threads: the sandbox must be applied before any thread starts", threads);
	return 0;
}

/* ---- chroot ---------------------------------------------------------------- */

static int do_chroot(struct sb *b)
{
	struct stat st;

	if (b->s->chroot_dir == NULL)
		return 0;
	if (fchdir(b->chroot_fd) < 0 || chroot(".") < 0 || chdir("/") < 0)
		return sb_fail(b, "chroot", CRISP_PERMISSION_DENIED, errno, "%s", b->s->chroot_dir);
	if (stat("/", &st) < 0 || st.st_dev != b->chroot_st.st_dev || st.st_ino != b->chroot_st.st_ino)
		return sb_fail(b, "chroot", CRISP_INTERNAL, 0, "\"/\" is not %s after chroot", b->s->chroot_dir);
	close(b->chroot_fd);
	b->chroot_fd = -1;
	return 0;
}

/* ---- capabilities and ids ------------------------------------------------------ */

static int drop_privileges(struct sb *b)
{
	const struct sandbox_spec *s = b->s;
	const char *st = "caps/ids";
	int rc;

	if (s->keep_all_caps)
		return 0; /* execd: on purpose, see sandbox_tables.c */

	capng_clear(CAPNG_SELECT_ALL);
	for (size_t i = 0; i < s->nkeep_caps; i++)
		if (capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
				 (unsigned)s->keep_caps[i]) < 0)
			return sb_fail(b, st, CRISP_INTERNAL, 0, "capng_update(%d)", s->keep_caps[i]);

	if (b->change_id) {
		int flags = CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_AMBIENT;

		if (s->nkeep_caps == 0) {
			flags |= CAPNG_CLEAR_BOUNDING;
		} else {
			/* Bounding set = kept caps, while we still hold CAP_SETPCAP. */
			rc = capng_apply(CAPNG_SELECT_BOUNDS);
			if (rc < 0)
				return sb_fail(b, st, CRISP_PERMISSION_DENIED, errno,
					       "capng_apply(bounding set) = %d", rc);
		}
		rc = capng_change_id((int)b->uid, (int)b->gid, flags);
		if (rc < 0)
			return sb_fail(b, st, CRISP_PERMISSION_DENIED, errno, "capng_change_id(%u, %u) = %d",
				       (unsigned)b->uid, (unsigned)b->gid, rc);
	} else {
		/* Stays uid 0 with few capabilities (netd): no supplementary
		 * groups; bounding, effective and permitted = the kept set;
		 * inheritable empty (root's exec'd children get the bounding
		 * set anyway, and an empty inheritable set means no ambient
		 * capability can be raised). */
		if (setgroups(0, NULL) < 0)
			return sb_fail(b, st, CRISP_PERMISSION_DENIED, errno, "setgroups");
		rc = capng_apply(CAPNG_SELECT_BOTH);
		if (rc < 0)
			return sb_fail(b, st, CRISP_PERMISSION_DENIED, errno, "capng_apply = %d", rc);
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return sb_fail(b, st, CRISP_PERMISSION_DENIED, errno, "clearing ambient capabilities");
	return 0;
}

/* Read back with the raw syscalls, not libcap-ng's cached state. */
static int verify_privileges(struct sb *b)
{
	const struct sandbox_spec *s = b->s;
	const char *st = "verify";
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	uid_t r, e, sv;
	gid_t rg, eg, sg;
	uint64_t eff, prm, inh, bnd = 0;

	if (s->keep_all_caps)
		return 0;
	if (getresuid(&r, &e, &sv) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return sb_fail(b, st, CRISP_INTERNAL, errno, "getresuid/getresgid");
	if (r != b->uid || e != b->uid || sv != b->uid || rg != b->gid || eg != b->gid || sg != b->gid)
		return sb_fail(b, st, CRISP_INTERNAL, 0, "ids are %u/%u/%u:%u/%u/%u, not %u:%u", (unsigned)r,
			       (unsigned)e, (unsigned)sv, (unsigned)rg, (unsigned)eg, (unsigned)sg,
			       (unsigned)b->uid, (unsigned)b->gid);
	if (getgroups(0, NULL) != 0)
		return sb_fail(b, st, CRISP_INTERNAL, errno, "supplementary groups remain");
	if (syscall(SYS_capget, &hdr, data) < 0)
		return sb_fail(b, st, CRISP_INTERNAL, errno, "capget");
	eff = data[0].effective | (uint64_t)data[1].effective << 32;
	prm = data[0].permitted | (uint64_t)data[1].permitted << 32;
	inh = data[0].inheritable | (uint64_t)data[1].inheritable << 32;
	for (unsigned c = 0; c <= b->last_cap; c++) {
		int in = prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0);
		int amb = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, (unsigned long)c, 0, 0);

		if (in < 0 || amb < 0)
			return sb_fail(b, st, CRISP_INTERNAL, errno, "reading capability %u", c);
		if (in)
			bnd |= 1ULL << c;
		if (amb)
			return sb_fail(b, st, CRISP_INTERNAL, 0, "ambient capability %u remains", c);
	}
	if (eff != b->keep_mask || prm != b->keep_mask || bnd != b->keep_mask || inh != 0)
		return sb_fail(b, st, CRISP_INTERNAL, 0,
			       "capabilities eff %#llx prm %#llx bnd %#llx inh %#llx, wanted %#llx (inh 0)",
			       (unsigned long long)eff, (unsigned long long)prm, (unsigned long long)bnd,
			       (unsigned long long)inh, (unsigned long long)b->keep_mask);
	return 0;
}

static int set_rlimits(struct sb *b)
{
	for (size_t i = 0; i < b->s->nrlimits; i++) {
		const struct sandbox_rlimit *l = &b->s->rlimits[i];
		struct rlimit rl = { l->limit, l->limit };

		if (setrlimit(l->resource, &rl) < 0)
			return sb_fail(b, "rlimits", CRISP_PERMISSION_DENIED, errno, "setrlimit(%d, %llu)",
				       l->resource, (unsigned long long)l->limit);
	}
	return 0;
}

static int set_nnp(struct sb *b)
{
	if (b->s->allow_new_privs)
		return 0; /* execd: containers would inherit it */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return sb_fail(b, "no_new_privs", CRISP_PERMISSION_DENIED, errno, "PR_SET_NO_NEW_PRIVS");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return sb_fail(b, "verify", CRISP_INTERNAL, errno, "no_new_privs is not set");
	return 0;
}

/* ---- Landlock ---------------------------------------------------------------- */

/* <linux/landlock.h> of Linux 6.1 knows only handled_access_fs. */
struct sb_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;             /* ABI 6 */
};

struct sb_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
};

#define SB_LANDLOCK_RULE_NET_PORT 2

#define SB_FS_FILE_RIGHTS                                                                      \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
	 LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)

int sandbox_landlock_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return abi < 0 ? -1 : (int)abi;
}

/* Every right the running ABI knows is handled, so anything not granted
 * by a rule is denied.  Rights of ABIs newer than 7 are unknown here and
 * stay unhandled until this function learns them. */
static uint64_t ll_fs_rights(int abi)
{
	uint64_t r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */

	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return r;
}

static int apply_landlock(struct sb *b)
{
	const struct sandbox_spec *s = b->s;
	const char *st = "landlock";
	struct sb_ruleset_attr attr = { 0 };
	size_t attr_size = sizeof attr.handled_access_fs;
	cleanup_close int rfd = -1;
	struct stat root;

	if (!s->landlock)
		return 0;
	b->ll_abi = sandbox_landlock_abi();
	if (b->ll_abi < 1)
		return sb_fail(b, st, CRISP_FAILED_PRECONDITION, errno, "Landlock is not available");
	attr.handled_access_fs = ll_fs_rights(b->ll_abi);
	if (b->ll_abi >= 4) {
		if (!s->tcp_unrestricted)
			attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
		attr_size = offsetof(struct sb_ruleset_attr, scoped);
	} else if (s->nports > 0) {
		return sb_fail(b, st, CRISP_FAILED_PRECONDITION, 0, "port rules need Landlock ABI 4, have %d",
			       b->ll_abi);
	}
	if (b->ll_abi >= 6) {
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
		attr_size = sizeof attr;
	}
	rfd = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (rfd < 0)
		return sb_fail(b, st, CRISP_INTERNAL, errno, "landlock_create_ruleset (ABI %d)", b->ll_abi);

	for (size_t i = 0; i < s->nfs; i++) {
		struct landlock_path_beneath_attr pb = { 0 };

		if (b->rule_fd[i] < 0)
			continue; /* optional and missing */
		pb.parent_fd = b->rule_fd[i];
		pb.allowed_access = s->fs[i].access & attr.handled_access_fs;
		if (!S_ISDIR(b->rule_st[i].st_mode))
			pb.allowed_access &= SB_FS_FILE_RIGHTS;
		if (pb.allowed_access == 0)
			continue; /* nothing this kernel can grant on it */
		if (syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
			return sb_fail(b, st, CRISP_INTERNAL, errno, "rule %s (%#llx)", s->fs[i].path,
				       (unsigned long long)pb.allowed_access);
	}
	for (size_t i = 0; i < s->nports; i++) {
		struct sb_net_port_attr np = { s->ports[i].access & attr.handled_access_net, s->ports[i].port };

		if (np.allowed_access == 0)
			continue;
		if (syscall(SYS_landlock_add_rule, rfd, SB_LANDLOCK_RULE_NET_PORT, &np, 0) < 0)
			return sb_fail(b, st, CRISP_INTERNAL, errno, "rule port %u", (unsigned)s->ports[i].port);
	}
	if (syscall(SYS_landlock_restrict_self, rfd, 0) < 0)
		return sb_fail(b, st, CRISP_PERMISSION_DENIED, errno, "landlock_restrict_self");

	/* Verify: "/" must now be unreadable, unless a rule grants it. */
	if (stat("/", &root) < 0)
		return sb_fail(b, "verify", CRISP_INTERNAL, errno, "stat /");
	for (size_t i = 0; i < s->nfs; i++)
		if (b->rule_fd[i] >= 0 && b->rule_st[i].st_dev == root.st_dev && b->rule_st[i].st_ino == root.st_ino)
			return 0;
	{
		int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd >= 0) {
			close(fd);
			return sb_fail(b, "verify", CRISP_INTERNAL, 0, "Landlock is not enforced: \"/\" opens");
		}
		if (errno != EACCES)
			return sb_fail(b, "verify", CRISP_INTERNAL, errno, "Landlock check: open /");
	}
	return 0;
}

/* ---- seccomp ----------------------------------------------------------------- */

/* Debug mode only.  A signal handler can reach nothing but file-scope
 * state, so the names are resolved into this table before the filter
 * loads: the handler calls no malloc, no libseccomp, only write+_exit. */
#define SB_NR_NAMES 512
#define SB_NAME_LEN 32
static char sb_dbg_names[SB_NR_NAMES][SB_NAME_LEN];
static char sb_dbg_role[32];
static uint32_t sb_dbg_arch;
static pid_t sb_dbg_pid;

static size_t dbg_puts(char *buf, size_t n, size_t cap, const char *s)
{
	while (*s != '\0' && n < cap)
		buf[n++] = *s++;
	return n;
}

static size_t dbg_putu(char *buf, size_t n, size_t cap, unsigned long v, unsigned base)
{
	char tmp[24];
	size_t k = 0;

	do {
		tmp[k++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v != 0 && k < sizeof tmp);
	while (k > 0 && n < cap)
		buf[n++] = tmp[--k];
	return n;
}

static void sb_sigsys(int sig, siginfo_t *si, void *uc)
{
	char buf[192];
	size_t n = 0, cap = sizeof buf - 1;
	unsigned nr = (unsigned)si->si_syscall;

	(void)sig;
	(void)uc;
	/* A log line as log.h writes them (crispd relays it as such); the
	 * pid is the one at sandbox time (a forked child reports its parent's). */
	n = dbg_puts(buf, n, cap, "error ");
	n = dbg_puts(buf, n, cap, sb_dbg_role);
	n = dbg_puts(buf, n, cap, "[");
	n = dbg_putu(buf, n, cap, (unsigned long)sb_dbg_pid, 10);
	n = dbg_puts(buf, n, cap, "]: sandbox: forbidden syscall ");
	if (si->si_arch != sb_dbg_arch) {
		n = dbg_puts(buf, n, cap, "of foreign arch 0x");
		n = dbg_putu(buf, n, cap, si->si_arch, 16);
		n = dbg_puts(buf, n, cap, " ");
	} else if (nr & 0x40000000u) {
		n = dbg_puts(buf, n, cap, "x32 ");
	} else if (nr < SB_NR_NAMES && sb_dbg_names[nr][0] != '\0') {
		n = dbg_puts(buf, n, cap, sb_dbg_names[nr]);
		n = dbg_puts(buf, n, cap, " ");
	}
	n = dbg_puts(buf, n, cap, "(");
	n = dbg_putu(buf, n, cap, nr, 10);
	n = dbg_puts(buf, n, cap, ")\n");
	(void)!write(STDERR_FILENO, buf, n);
	_exit(SANDBOX_DEBUG_EXIT);
}

static int prepare_debug(struct sb *b)
{
	struct sigaction sa;
	sigset_t set;

	crisp_strlcpy(sb_dbg_role, b->role, sizeof sb_dbg_role);
	sb_dbg_arch = seccomp_arch_native();
	sb_dbg_pid = getpid();
	for (int nr = 0; nr < SB_NR_NAMES; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

		sb_dbg_names[nr][0] = '\0';
		if (name != NULL) {
			crisp_strlcpy(sb_dbg_names[nr], name, SB_NAME_LEN);
			free(name);
		}
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = sb_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return sb_fail(b, "seccomp", CRISP_INTERNAL, errno, "sigaction(SIGSYS)");
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	if (sigprocmask(SIG_UNBLOCK, &set, NULL) < 0)
		return sb_fail(b, "seccomp", CRISP_INTERNAL, errno, "unblocking SIGSYS");
	return 0;
}

static int add_rule(struct sb *b, scmp_filter_ctx ctx, uint32_t action, const struct sandbox_syscall *e)
{
	struct scmp_arg_cmp cmp[SANDBOX_MAX_ARGS];
	int nr = seccomp_syscall_resolve_name(e->name);
	int rc;

	for (unsigned j = 0; j < e->nargs; j++) {
		enum scmp_compare op = SCMP_CMP_EQ;

		(void)cmp_op(e->args[j].op, &op); /* checked in check_spec */
		cmp[j].arg = e->args[j].arg;
		cmp[j].op = op;
		cmp[j].datum_a = e->args[j].self_pid ? (uint64_t)getpid() : e->args[j].a;
		cmp[j].datum_b = e->args[j].b;
	}
	rc = seccomp_rule_add_exact_array(ctx, action, nr, e->nargs, cmp);
	if (rc < 0)
		return sb_fail(b, "seccomp", CRISP_INTERNAL, -rc, "rule for %s", e->name);
	return 0;
}

static int apply_seccomp(struct sb *b)
{
	const struct sandbox_spec *s = b->s;
	const char *st = "seccomp";
	bool allow = s->seccomp_mode == SANDBOX_SECCOMP_ALLOW;
	uint32_t kill = s->debug ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS;
	scmp_filter_ctx ctx;
	int rc;

	if (s->seccomp_mode == SANDBOX_SECCOMP_NONE)
		return 0;
	if (s->debug && prepare_debug(b) < 0)
		return -1;
	ctx = seccomp_init(allow ? kill : SCMP_ACT_ALLOW);
	if (ctx == NULL)
		return sb_fail(b, st, CRISP_INTERNAL, 0, "seccomp_init");
	/* Only the native arch is in the filter; any other (i386 through
	 * int 0x80, x32) kills the process, so a denylist cannot be
	 * sidestepped through another syscall table.  no_new_privs was set
	 * and checked by us; libseccomp returns the kernel's errno. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, kill)) < 0 ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0 ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1)) < 0 ||
	    /* Debug: also log to the audit log (dmesg), which names the
	     * call in exec'd children (gpg), where our handler is gone. */
	    (s->debug && (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1)) < 0)) {
		seccomp_release(ctx);
		return sb_fail(b, st, CRISP_INTERNAL, -rc, "seccomp_attr_set");
	}
	for (size_t i = 0; i < s->nsyscalls; i++) {
		const struct sandbox_syscall *e = &s->syscalls[i];
		uint32_t action = e->ret_errno ? SCMP_ACT_ERRNO((uint32_t)e->ret_errno) : allow ? SCMP_ACT_ALLOW : kill;

		if (add_rule(b, ctx, action, e) < 0) {
			seccomp_release(ctx);
			return -1;
		}
	}
	if (allow) {
		/* What sandbox_apply itself needs after the load (the check
		 * below), the debug handler, and the sanitizer runtime; each
		 * only where the role's table does not decide that syscall
		 * itself (the role's entries win). */
		static const struct sandbox_syscall self[] = {
			SB_IF("prctl", SB_EQ(0, PR_GET_SECCOMP)),
		};
		static const struct sandbox_syscall dbg[] = { SB("write"), SB("exit_group") };
		const struct {
			const struct sandbox_syscall *t;
			size_t n;
		} extra[] = {
			{ self, ARRAY_SIZE(self) },
			{ dbg, s->debug ? ARRAY_SIZE(dbg) : 0 },
			{ sandbox_sanitizer_syscalls, sandbox_sanitizer_nsyscalls },
		};

		for (size_t x = 0; x < ARRAY_SIZE(extra); x++)
			for (size_t i = 0; i < extra[x].n; i++) {
				const struct sandbox_syscall *e = &extra[x].t[i];
				uint32_t action = e->ret_errno ? SCMP_ACT_ERRNO((uint32_t)e->ret_errno) : SCMP_ACT_ALLOW;

				if (may_add(s->syscalls, s->nsyscalls, e) && add_rule(b, ctx, action, e) < 0)
					goto fail;
			}
	}
	rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0)
		return sb_fail(b, st, CRISP_PERMISSION_DENIED, -rc, "seccomp_load");
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2)
		return sb_fail(b, "verify", CRISP_INTERNAL, errno, "seccomp filter is not in force");
	return 0;
fail:
	seccomp_release(ctx);
	return -1;
}

/* ---- the whole ------------------------------------------------------------------ */

#ifdef CRISP_SANITIZED
/* LeakSanitizer's exit-time check stops the world with ptrace-like
 * clone+PTRACE_ATTACH and reads /proc: inside a sandbox that is a SIGSYS
 * (a false "attack") or a failure.  Turn it off in sandboxed processes
 * only; leaks are found in the unit tests and fuzzers, which run
 * unsandboxed.  The runtime calls this hook at exit. */
static volatile int sb_sandboxed;
int __lsan_is_turned_off(void)
{
	return sb_sandboxed;
}
#endif

int sandbox_apply(const struct sandbox_spec *s, crisp_err_t *err)
{
	struct sb b;
	int rc = -1;

	memset(&b, 0, sizeof b);
	b.s = s;
	b.err = err;
	b.role = s != NULL && s->role != NULL ? s->role : "?";
	b.chroot_fd = -1;
	for (size_t i = 0; i < SB_MAX_RULES; i++)
		b.rule_fd[i] = -1;
	if (s == NULL)
		return sb_fail(&b, "spec", CRISP_INVALID_ARGUMENT, 0, "no spec");
	b.last_cap = (unsigned)probe_last_cap();

#ifdef CRISP_SANITIZED
	/* ASan reads /proc/self/maps to print reports: cache it while it
	 * can still be read. */
	__sanitizer_sandbox_on_notify(NULL);
#endif
	if (check_spec(&b) < 0 || resolve(&b) < 0 || check_single_threaded(&b) < 0 || do_chroot(&b) < 0 ||
	    drop_privileges(&b) < 0 || verify_privileges(&b) < 0 || set_rlimits(&b) < 0 || set_nnp(&b) < 0 ||
	    apply_landlock(&b) < 0)
		goto out;
#ifdef CRISP_SANITIZED
	if (s->seccomp_mode != SANDBOX_SECCOMP_NONE || s->landlock || s->chroot_dir != NULL)
		sb_sandboxed = 1;
#endif
	if (apply_seccomp(&b) < 0)
		goto out;
	rc = 0;
out:
	if (b.chroot_fd >= 0)
		close(b.chroot_fd);
	for (size_t i = 0; i < SB_MAX_RULES; i++)
		if (b.rule_fd[i] >= 0)
			close(b.rule_fd[i]);
	return rc;
}

/* ---- system users ---------------------------------------------------------------- */

static bool valid_user_name(const char *n)
{
	size_t len = strlen(n);

	/* Debian's rule for system users, and never an option. */
	if (len == 0 || len > 32 || !((n[0] >= 'a' && n[0] <= 'z') || n[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_' || n[i] == '-'))
			return false;
	return true;
}

/* Run argv[0] (absolute) with a clean environment; its output goes to
 * out (NUL-terminated, truncated).  Returns its exit status or -1. */
static int run_tool(char *const argv[], char *out, size_t outlen)
{
	static char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };
	int p[2], status;
	size_t n = 0;
	pid_t pid;

	out[0] = '\0';
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
			_exit(127);
		crisp_closefrom(3, NULL, 0);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		char tmp[256];
		ssize_t r = read(p[0], tmp, sizeof tmp);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r && n + 1 < outlen; i++)
			out[n++] = tmp[i] == '\n' ? ' ' : tmp[i];
	}
	out[n] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *find_tool(const char *name, char *buf, size_t len)
{
	static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(buf, len, "%s/%s", dirs[i], name);
		if (access(buf, X_OK) == 0)
			return buf;
	}
	return NULL;
}

static int check_user(const char *name, struct passwd *pw, uid_t *uid, gid_t *gid, crisp_err_t *err)
{
	uid_t u = pw->pw_uid;
	gid_t g = pw->pw_gid;
	struct passwd *o;

	if (u == 0 || g == 0)
		return crisp_error(err, CRISP_PERMISSION_DENIED, 0,
				   "sandbox user %s has uid %u gid %u: it must not be root", name, (unsigned)u,
				   (unsigned)g);
	/* A role's uid must be its own: another name with the same uid
	 * could own files or processes the role would then control. */
	setpwent();
	while ((o = getpwent()) != NULL)
		if (o->pw_uid == u && strcmp(o->pw_name, name) != 0) {
			crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "sandbox user %s: uid %u is shared with %s",
				    name, (unsigned)u, o->pw_name);
			endpwent();
			return -1;
		}
	endpwent();
	*uid = u;
	*gid = g;
	return 0;
}

int sandbox_ensure_user(const char *name, const char *home, uid_t *uid, gid_t *gid, crisp_err_t *err)
{
	char tool[64], out[256];
	struct passwd *pw;
	int rc;

	if (name == NULL || !valid_user_name(name))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "sandbox user name \"%s\" is not valid",
				   name ? name : "(null)");
	if (home == NULL)
		home = "/nonexistent";
	errno = 0;
	pw = getpwnam(name);
	if (pw != NULL)
		return check_user(name, pw, uid, gid, err);
	if (errno != 0 && errno != ENOENT && errno != ESRCH)
		return crisp_error(err, CRISP_INTERNAL, errno, "getpwnam(%s)", name);

	errno = 0;
	if (getgrnam(name) == NULL) {
		char *argv[] = { tool, "--system", (char *)name, NULL };

		if (find_tool("groupadd", tool, sizeof tool) == NULL)
			return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
					   "creating group %s: groupadd not found (Debian package passwd)", name);
		rc = run_tool(argv, out, sizeof out);
		/* 9: the name exists (someone else was quicker). */
		if (rc != 0 && rc != 9)
			return crisp_error(err, CRISP_INTERNAL, rc < 0 ? errno : 0, "groupadd %s: status %d: %s",
					   name, rc, out);
	}
	{
		char *argv[] = { tool, "--system", "--gid", (char *)name, "--no-create-home", "--home-dir",
				 (char *)home, "--shell", "/usr/sbin/nologin", "--no-log-init", "--comment",
				 "crisp sandbox user", (char *)name, NULL };

		if (find_tool("useradd", tool, sizeof tool) == NULL)
			return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
					   "creating user %s: useradd not found (Debian package passwd)", name);
		rc = run_tool(argv, out, sizeof out);
		if (rc != 0 && rc != 9)
			return crisp_error(err, CRISP_INTERNAL, rc < 0 ? errno : 0, "useradd %s: status %d: %s",
					   name, rc, out);
	}
	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL)
		return crisp_error(err, CRISP_INTERNAL, errno, "user %s missing after useradd", name);
	return check_user(name, pw, uid, gid, err);
}
