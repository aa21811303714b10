/*
 * monitor/harden: what a monitor may still do once its loop runs.
 *
 * A monitor lives as long as its container, as uid 0, and reads bytes the
 * container controls (its output, and attach frames relayed from frontd).
 * Everything it needs is open before this runs (the control socket, the
 * container's stdio, the log, the run directory, a signalfd), so it keeps:
 *   - no capability at all: bounding, ambient, inheritable, permitted and
 *     effective sets emptied, securebits locked so that uid 0 regains
 *     nothing through execve or setuid;
 *   - no_new_privs;
 *   - a seccomp allowlist of exactly what the loop calls (below), checked
 *     for the native architecture only; anything else kills it.
 * Reopening the log by path still works without capabilities: the
 * monitor is uid 0, the owner of the log's root-owned directories and
 * file, and the owner needs no capability to create, open, chmod or
 * chown (to itself) there.
 *
 * Raw BPF, built from the table: crisp-monitor is a static binary that
 * links no libseccomp.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#ifdef CRISP_SANITIZED
#include <sanitizer/common_interface_defs.h>
#endif

#include "monitor/monitor.h"

/* The kernel ABI, spelled here: musl's headers carry no linux/ uapi. */
struct mon_bpf {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};
struct mon_bpf_prog {
	unsigned short len;
	struct mon_bpf *filter;
};
#define BPF_LD_W_ABS 0x20  /* BPF_LD | BPF_W | BPF_ABS */
#define BPF_JEQ_K 0x15     /* BPF_JMP | BPF_JEQ | BPF_K */
#define BPF_JGE_K 0x35     /* BPF_JMP | BPF_JGE | BPF_K */
#define BPF_RET_K 0x06     /* BPF_RET | BPF_K */
#define SECCOMP_MODE_FILTER_ 2
#define RET_KILL_PROCESS 0x80000000u
#define RET_ALLOW 0x7fff0000u
#define OFF_NR 0                          /* struct seccomp_data */
#define OFF_ARCH 4
#define OFF_ARG(i) (16 + 8 * (i))         /* low word (little endian) */

#if defined(__x86_64__)
#define MON_AUDIT_ARCH 0xc000003eu /* AUDIT_ARCH_X86_64 */
#define MON_X32_BIT 0x40000000u    /* x32 numbers alias native ones */
#elif defined(__aarch64__)
#define MON_AUDIT_ARCH 0xc00000b7u /* AUDIT_ARCH_AARCH64 */
#else
#error "crisp-monitor: no seccomp architecture for this target"
#endif
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "crisp-monitor: argument offsets assume little endian"
#endif

/* capset(2) v3 and securebits, as in linux/capability.h, securebits.h */
struct mon_cap_hdr {
	uint32_t version;
	int pid;
};
struct mon_cap_data {
	uint32_t effective, permitted, inheritable;
};
#define MON_CAP_V3 0x20080522u
#define SECBITS_LOCKED_DOWN 0xefu /* NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, each locked; KEEP_CAPS locked off */

/* One rule: the syscall, optionally one argument that must equal val. */
struct rule {
	long nr;
	int arg; /* -1: any arguments */
	uint32_t val;
};
#define ANY(nr) { nr, -1, 0 }
#define ARG(nr, i, v) { nr, i, (uint32_t)(v) }

static const struct rule rules[] = {
	/* the loop: poll over stdio, control socket, clients, signalfd */
#ifdef SYS_poll
	ANY(SYS_poll),
#endif
	ANY(SYS_ppoll),
	ANY(SYS_read),     /* container output, signalfd */
	ANY(SYS_write),    /* CRI log, container stdin, exit record */
	ANY(SYS_close),
	ANY(SYS_accept4),  /* control connections (CLOEXEC) */
	ANY(SYS_recvfrom), /* recv: a command byte, attach frames */
	ANY(SYS_sendto),   /* send: frames, reopen answers */
	ARG(SYS_setsockopt, 1, SOL_SOCKET), /* SO_SNDBUF of an attach connection */
	ARG(SYS_ioctl, 1, TIOCSWINSZ),      /* resize of the container's tty */
	ARG(SYS_fcntl, 1, F_GETFL),         /* reopened log: blocking again */
	ARG(SYS_fcntl, 1, F_SETFL),
	ARG(SYS_fcntl, 1, F_SETFD),         /* musl's open(O_CLOEXEC) sets it again */
	ANY(SYS_wait4),    /* waitpid(-1): the container, and adopted children */
	ANY(SYS_clock_gettime), /* when the vDSO cannot answer */
	/* reopening the log by path: make its directory, open, check */
#ifdef SYS_open
	ANY(SYS_open),
#endif
	ANY(SYS_openat),   /* also the exit record, relative to the run dir */
#ifdef SYS_mkdir
	ANY(SYS_mkdir),
#endif
	ANY(SYS_mkdirat),
#ifdef SYS_lstat
	ANY(SYS_lstat),
#endif
#ifdef SYS_stat
	ANY(SYS_stat),
#endif
	ANY(SYS_fstat),
	ANY(SYS_newfstatat),
#ifdef SYS_statx
	ANY(SYS_statx),
#endif
#ifdef SYS_lchown
	ANY(SYS_lchown),
#endif
	ANY(SYS_fchownat),
#ifdef SYS_chmod
	ANY(SYS_chmod),
#endif
	ANY(SYS_fchmodat),
	/* the exit record: tmp + fsync + rename, the control socket removed */
	ANY(SYS_fsync),
	ANY(SYS_unlinkat),
#ifdef SYS_renameat
	ANY(SYS_renameat),
#endif
	ANY(SYS_renameat2),
	ANY(SYS_exit_group),
	ANY(SYS_exit),
#ifdef CRISP_SANITIZED
	/* sanitizer builds only: the ASan/UBSan runtime (allocator, reports) */
	ARG(SYS_sigaltstack, 0, 0),
	ANY(SYS_mmap),
	ANY(SYS_munmap),
	ANY(SYS_mprotect),
	ANY(SYS_madvise),
	ANY(SYS_brk),
	ANY(SYS_getpid),
	ANY(SYS_gettid),
	ANY(SYS_futex),
	ANY(SYS_sched_yield),
	ANY(SYS_rt_sigprocmask),
	ANY(SYS_readlink),
	ANY(SYS_tgkill),
	ANY(SYS_rt_sigaction),
	ANY(SYS_getrlimit),
	ANY(SYS_prlimit64),
#endif
};

#define MAX_INSNS 512

static void emit(struct mon_bpf *f, size_t *n, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
	f[(*n)++] = (struct mon_bpf){ code, jt, jf, k };
}

/* arch check; then per rule either "nr? allow" or "nr? (arg? allow)";
 * default: kill the process. */
static size_t build(struct mon_bpf *f)
{
	size_t n = 0;

	emit(f, &n, BPF_LD_W_ABS, OFF_ARCH, 0, 0);
	emit(f, &n, BPF_JEQ_K, MON_AUDIT_ARCH, 1, 0);
	emit(f, &n, BPF_RET_K, RET_KILL_PROCESS, 0, 0);
	emit(f, &n, BPF_LD_W_ABS, OFF_NR, 0, 0);
#ifdef MON_X32_BIT
	emit(f, &n, BPF_JGE_K, MON_X32_BIT, 0, 1);
	emit(f, &n, BPF_RET_K, RET_KILL_PROCESS, 0, 0);
#endif
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		const struct rule *r = &rules[i];
		if (r->arg < 0) {
			emit(f, &n, BPF_JEQ_K, (uint32_t)r->nr, 0, 1);
			emit(f, &n, BPF_RET_K, RET_ALLOW, 0, 0);
			continue;
		}
		emit(f, &n, BPF_JEQ_K, (uint32_t)r->nr, 0, 4);
		emit(f, &n, BPF_LD_W_ABS, (uint32_t)OFF_ARG(r->arg), 0, 0);
		emit(f, &n, BPF_JEQ_K, r->val, 0, 1);
		emit(f, &n, BPF_RET_K, RET_ALLOW, 0, 0);
		emit(f, &n, BPF_LD_W_ABS, OFF_NR, 0, 0);
	}
	emit(f, &n, BPF_RET_K, RET_KILL_PROCESS, 0, 0);
	return n;
}

_Static_assert(8 + 5 * sizeof rules / sizeof rules[0] < MAX_INSNS, "seccomp program too long");

static int drop_caps(void)
{
	struct mon_cap_hdr h = { MON_CAP_V3, 0 };
	struct mon_cap_data d[2] = { { 0, 0, 0 }, { 0, 0, 0 } };

	/* while CAP_SETPCAP is still held: uid 0 must not regain
	 * capabilities (execve, setuid), and the bounding set goes */
	if (prctl(PR_SET_SECUREBITS, SECBITS_LOCKED_DOWN, 0, 0, 0) < 0)
		return -1;
	for (unsigned long c = 0; prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			return -1;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	if (syscall(SYS_capset, &h, d) < 0)
		return -1;
	/* verify: nothing left */
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	if (d[0].effective | d[0].permitted | d[0].inheritable | d[1].effective | d[1].permitted | d[1].inheritable) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

int monitor_harden(const char **what)
{
	static struct mon_bpf f[MAX_INSNS];
	struct mon_bpf_prog prog;
	struct timespec ts = { 0, 0 };
	struct tm tm;

	/* what libc reads once, read now (glibc's gmtime_r looks at the
	 * local time zone the first time) */
	(void)gmtime_r(&ts.tv_sec, &tm);
#ifdef CRISP_SANITIZED
	__sanitizer_sandbox_on_notify(NULL);
#endif
	*what = "capabilities";
	if (drop_caps() < 0)
		return -1;
	*what = "no_new_privs";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	*what = "seccomp";
	prog.len = (unsigned short)build(f);
	prog.filter = f;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER_, &prog, 0, 0) < 0)
		return -1;
	*what = "";
	return 0;
}
