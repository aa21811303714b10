/*
 * crisp: the one sandboxing module.  Every role calls it at startup, after
 * it has opened what it needs and before it reads any input.
 *
 * sandbox_apply() performs, in this fixed order (STYLE absorb #13), and
 * stops at the first failure with -1 and a message naming the step:
 *
 *   spec       the spec is checked as a whole before anything changes
 *   resolve    user -> uid/gid (getpwnam, before the chroot hides
 *              /etc/passwd); Landlock rule paths are opened O_PATH now,
 *              as root, because they name the real root
 *   threads    the process must be single-threaded: capset and
 *              Landlock act on the calling thread only
 *   chroot     chroot(dir) + chdir("/"), while CAP_SYS_CHROOT is held;
 *              dir must be an empty, root-owned, not group/other-writable
 *              directory
 *   caps/ids   libcap-ng: setgroups(0), setresgid, setresuid, effective,
 *              permitted and bounding set reduced to keep_caps,
 *              inheritable and ambient emptied
 *   rlimits    as listed in the spec
 *   nnp        PR_SET_NO_NEW_PRIVS
 *   landlock   every access right of the running ABI handled (fs, TCP,
 *              scopes), only the spec's rules granted
 *   seccomp    last: libseccomp, native arch only (x32, i386 and any
 *              other ABI kill the process), loaded
 *   verify     read back uids, gids, groups, capabilities (capget and
 *              prctl, not libcap-ng's cache), no_new_privs, seccomp mode
 *              and that "/" cannot be opened under Landlock
 *
 * Nothing is optional: a step that cannot be applied is an error, never a
 * warning (STYLE avoid #3).  A failed sandbox_apply() leaves the process
 * half-sandboxed; the caller must exit.
 *
 * A zero-initialised spec is rejected (seccomp_mode unset); every role
 * states each choice.  The roles' specs and syscall tables live in
 * common/sandbox_tables.c so they are reviewed in one place.
 */
#ifndef CRISP_SANDBOX_H
#define CRISP_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <linux/landlock.h>

#include "common/err.h"

/* Landlock rights newer than Debian 12's <linux/landlock.h> (Linux 6.1). */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)  /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)   /* ABI 4 */
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

/* Convenience masks.  Rights the running kernel does not know are dropped
 * (nothing can be granted or denied with them), and for a rule on a file
 * the directory-only rights are dropped. */
#define SANDBOX_FS_RO (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define SANDBOX_FS_RW                                                                          \
	(SANDBOX_FS_RO | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |          \
	 LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |                       \
	 LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SYM | \
	 LANDLOCK_ACCESS_FS_REFER)
/* execve needs READ_FILE as well as EXECUTE. */
#define SANDBOX_FS_EXEC (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE)

struct sandbox_landlock_rule {
	const char *path;
	uint64_t access;  /* LANDLOCK_ACCESS_FS_* bits or SANDBOX_FS_* */
	bool optional;    /* a path that does not exist is skipped (not an error) */
};

struct sandbox_landlock_port {
	uint16_t port;
	uint64_t access;  /* LANDLOCK_ACCESS_NET_* */
};

/* seccomp argument filters.  All comparisons of one entry must hold;
 * several entries with the same name are alternatives (OR). */
enum sandbox_cmp {
	SANDBOX_CMP_EQ = 1,
	SANDBOX_CMP_NE,
	SANDBOX_CMP_LT,
	SANDBOX_CMP_LE,
	SANDBOX_CMP_GT,
	SANDBOX_CMP_GE,
	SANDBOX_CMP_MASKED_EQ, /* (arg & a) == b */
};

struct sandbox_arg {
	uint8_t arg;     /* 0..5 */
	uint8_t op;      /* enum sandbox_cmp */
	bool self_pid;   /* compare with getpid() at apply time instead of a */
	uint64_t a;
	uint64_t b;
};

#define SANDBOX_MAX_ARGS 3

struct sandbox_syscall {
	const char *name;  /* libseccomp name; an unknown name is an error */
	int ret_errno;     /* 0: the mode's action (allowlist: allow, denylist:
			    * kill); > 0: fail with this errno instead */
	unsigned nargs;
	struct sandbox_arg args[SANDBOX_MAX_ARGS];
};

/* Table helpers: SB(name), SB_ERRNO(name, e), SB_IF(name, cmp...). */
#define SB(n) { .name = (n) }
#define SB_ERRNO(n, e) { .name = (n), .ret_errno = (e) }
#define SB_NARGS_(...) (sizeof((struct sandbox_arg[]){ __VA_ARGS__ }) / sizeof(struct sandbox_arg))
#define SB_IF(n, ...) { .name = (n), .nargs = SB_NARGS_(__VA_ARGS__), .args = { __VA_ARGS__ } }
#define SB_EQ(i, v) { .arg = (i), .op = SANDBOX_CMP_EQ, .a = (uint64_t)(v) }
#define SB_LE(i, v) { .arg = (i), .op = SANDBOX_CMP_LE, .a = (uint64_t)(v) }
#define SB_MASKED_EQ(i, m, v) { .arg = (i), .op = SANDBOX_CMP_MASKED_EQ, .a = (uint64_t)(m), .b = (uint64_t)(v) }
#define SB_NOBITS(i, m) SB_MASKED_EQ(i, m, 0)
#define SB_SELF_PID(i) { .arg = (i), .op = SANDBOX_CMP_EQ, .self_pid = true }

enum sandbox_seccomp {
	SANDBOX_SECCOMP_UNSET = 0, /* rejected: each role says what it wants */
	SANDBOX_SECCOMP_NONE,      /* no filter (execd: containers inherit it) */
	SANDBOX_SECCOMP_ALLOW,     /* kill the process unless the table allows */
	SANDBOX_SECCOMP_DENY,      /* allow unless the table denies (kills) */
};

struct sandbox_rlimit {
	int resource;  /* RLIMIT_* */
	rlim_t limit;  /* soft = hard = limit (may only be lowered) */
};

struct sandbox_spec {
	const char *role;        /* for messages */

	/* Identity.  user: a system user resolved with getpwnam; or, with
	 * user NULL, uid/gid given as numbers.  user NULL and uid 0: stay
	 * root (supplementary groups are still dropped unless keep_all_caps). */
	const char *user;
	uid_t uid;
	gid_t gid;

	const char *chroot_dir;  /* empty root-owned dir, NULL: no chroot */

	/* Capabilities kept in effective, permitted and bounding sets;
	 * nothing else, inheritable and ambient empty.  keep_all_caps
	 * (execd only, uid 0) leaves every capability set alone. */
	const int *keep_caps;
	size_t nkeep_caps;
	bool keep_all_caps;

	const struct sandbox_rlimit *rlimits;
	size_t nrlimits;

	/* no_new_privs is set unless allow_new_privs (execd only: containers
	 * would inherit it).  Landlock and seccomp require no_new_privs. */
	bool allow_new_privs;

	/* Landlock: landlock true and nfs 0 denies every filesystem access.
	 * TCP bind/connect are denied except the listed ports, unless
	 * tcp_unrestricted.  Abstract unix sockets and signals are scoped to
	 * the domain (ABI >= 6). */
	bool landlock;
	const struct sandbox_landlock_rule *fs;
	size_t nfs;
	const struct sandbox_landlock_port *ports;
	size_t nports;
	bool tcp_unrestricted;

	enum sandbox_seccomp seccomp_mode;
	const struct sandbox_syscall *syscalls;
	size_t nsyscalls;

	/* Forbidden syscalls trap instead of killing: a SIGSYS handler writes
	 * "error <role>[<pid>]: sandbox: forbidden syscall <name> (<nr>)" to
	 * stderr and _exits with SANDBOX_DEBUG_EXIT.  The filter also logs to
	 * the audit log, which names calls in exec'd children too. */
	bool debug;
};

#define SANDBOX_DEBUG_EXIT 159 /* 128 + SIGSYS, as a shell reports a kill */

int sandbox_apply(const struct sandbox_spec *s, crisp_err_t *err);

/* Check a syscall table without applying it: every name known to
 * libseccomp for the native arch, argument indices and operators valid. */
int sandbox_check_table(const struct sandbox_syscall *t, size_t n, crisp_err_t *err);

/* The Landlock ABI of the running kernel, or -1 with errno. */
int sandbox_landlock_abi(void);

/* Find or create a system user and group called name (no login shell, no
 * home files: home is only recorded, "/nonexistent" when NULL) by running
 * groupadd/useradd from the passwd package with a clean environment.
 * Refuses a name that resolves to uid or gid 0 or whose uid is shared with
 * another user name. */
int sandbox_ensure_user(const char *name, const char *home, uid_t *uid, gid_t *gid, crisp_err_t *err);

/* ---- the roles' policies (common/sandbox_tables.c) ------------------- */

extern const struct sandbox_syscall sandbox_frontd_syscalls[];
extern const size_t sandbox_frontd_nsyscalls;
extern const struct sandbox_syscall sandbox_imaged_syscalls[];
extern const size_t sandbox_imaged_nsyscalls;
extern const struct sandbox_syscall sandbox_netd_denied[];
extern const size_t sandbox_netd_ndenied;
/* Added to every allowlist in sanitizer builds (empty otherwise). */
extern const struct sandbox_syscall sandbox_sanitizer_syscalls[];
extern const size_t sandbox_sanitizer_nsyscalls;

/* The layer unpacker execd forks (execd/layers.c): a denylist. */
extern const struct sandbox_syscall sandbox_unpack_denied[];
extern const size_t sandbox_unpack_ndenied;
extern const int sandbox_netd_caps[];
extern const size_t sandbox_netd_ncaps;
/* System paths imaged reads (TLS roots, resolver, registries config). */
extern const struct sandbox_landlock_rule sandbox_imaged_fs_system[];
extern const size_t sandbox_imaged_nfs_system;

/* Build and apply the spec of a crisp role (ROLE_* from ipc/ipc.h) from
 * what crispd passed on its command line (struct role_args, ipc/role.h). */
struct role_args;
int sandbox_apply_role(int role, const struct role_args *a, crisp_err_t *err);

#endif
