/*
 * crisp: every role's sandbox policy, in one place to review.
 *
 * Each entry says why it is there.  The allowlists were found by running
 * the roles' workloads under the debug trap mode (tests/unit/test_sandbox.c
 * keeps a representative workload per role) and by reading what glibc
 * does on the paths that matter (abort, malloc, stdio).  Adding a syscall
 * here is a security decision: say why in the comment and in SECURITY.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <linux/capability.h>
#include <linux/futex.h>
#include <linux/netlink.h>

#include "common/sandbox.h"
#include "common/util.h"
#include "ipc/role.h"

/* futex(2) op without PRIVATE/CLOCK_REALTIME flags. */
#define FUTEX_CMD(op) SB_MASKED_EQ(1, 0x7f, op)

/* ---- frontd: allowlist, default kill -------------------------------------
 * frontd opens nothing, creates no socket and starts no process: its
 * listening sockets come from crispd, its peers' sockets and fds arrive
 * over ipc.  Everything it does is read, parse, write. */
const struct sandbox_syscall sandbox_frontd_syscalls[] = {
	/* The event loop (ipc/loop.c): epoll plus a signalfd, so no signal
	 * handler ever runs and rt_sigreturn (the SROP primitive) is not
	 * allowed. */
	SB("epoll_create1"),
	SB("epoll_ctl"),
	SB("epoll_wait"),
	SB("signalfd4"),
	SB("rt_sigprocmask"),  /* loop_signal blocks what signalfd takes; abort() */
	/* Connections, only on sockets it was handed: accept, no socket(),
	 * no connect(), no bind(), no listen(). */
	SB("accept4"),
	SB("read"),
	SB("readv"),
	SB("write"),
	SB("writev"),
	SB("recvmsg"),   /* ipc: SCM_RIGHTS + SCM_CREDENTIALS */
	SB("sendmsg"),
	SB("recvfrom"),  /* recv() */
	SB("sendto"),    /* send(), gRPC connections */
	SB("shutdown"),
	SB("close"),
	/* SO_PEERCRED of CRI clients, SO_ACCEPTCONN, SO_TYPE, SO_DOMAIN,
	 * SO_PASSCRED and buffer sizes: socket-level options only; and
	 * TCP_NODELAY for streaming connections.  No options of other
	 * protocol levels (where the kernel bugs live). */
	SB_IF("getsockopt", SB_EQ(1, SOL_SOCKET)),
	SB_IF("setsockopt", SB_EQ(1, SOL_SOCKET)),
	SB_IF("setsockopt", SB_EQ(1, IPPROTO_TCP)),
	/* fd flags (O_NONBLOCK, FD_CLOEXEC) and close-on-exec dups (ipc). */
	SB_IF("fcntl", SB_EQ(1, F_GETFL)),
	SB_IF("fcntl", SB_EQ(1, F_SETFL)),
	SB_IF("fcntl", SB_EQ(1, F_GETFD)),
	SB_IF("fcntl", SB_EQ(1, F_SETFD)),
	SB_IF("fcntl", SB_EQ(1, F_DUPFD_CLOEXEC)),
	/* fstat() of received fds (kind checks): glibc 2.36 implements fstat
	 * as newfstatat(fd, "", AT_EMPTY_PATH); no path lookups. */
	SB_IF("newfstatat", SB_MASKED_EQ(3, AT_EMPTY_PATH, AT_EMPTY_PATH)),
	/* Memory, never executable: no PROT_EXEC in mmap or mprotect. */
	SB("brk"),
	SB_IF("mmap", SB_NOBITS(2, PROT_EXEC)),
	SB_IF("mprotect", SB_NOBITS(2, PROT_EXEC)),
	SB("munmap"),
	SB("mremap"),        /* realloc of large blocks */
	SB_IF("madvise", SB_EQ(2, MADV_DONTNEED)), /* malloc_trim */
	/* Time, randomness, own identity. */
	SB("clock_gettime"), /* vDSO, but the syscall when the clocksource is not vDSO-capable */
	SB("getrandom"),     /* libsodium randombytes, request ids */
	SB("getpid"),
	SB("gettid"),        /* abort() */
	/* glibc internals.  futex: locks under contention (only the simple
	 * wait/wake ops, not PI or requeue).  tgkill: abort() raises SIGABRT
	 * at itself, so an assertion or a fortify/stack-protector failure
	 * ends as SIGABRT, not as a misleading SIGSYS.  rt_sigaction: abort()
	 * resets SIGABRT when a handler returned.  restart_syscall: resuming
	 * an interrupted timed wait after SIGSTOP/SIGCONT or a debugger's
	 * attach. */
	SB_IF("futex", FUTEX_CMD(FUTEX_WAIT)),
	SB_IF("futex", FUTEX_CMD(FUTEX_WAKE)),
	SB_IF("futex", FUTEX_CMD(FUTEX_WAIT_BITSET)),
	SB_IF("futex", FUTEX_CMD(FUTEX_WAKE_BITSET)),
	SB_IF("tgkill", SB_SELF_PID(0), SB_EQ(2, SIGABRT)),
	SB_IF("rt_sigaction", SB_EQ(0, SIGABRT)),
	SB("restart_syscall"),
	SB("exit"),
	SB("exit_group"),
	/* isatty() and friends fail quietly; no ioctl reaches a driver. */
	SB_ERRNO("ioctl", ENOTTY),
};
const size_t sandbox_frontd_nsyscalls = ARRAY_SIZE(sandbox_frontd_syscalls);

/* ---- imaged: allowlist, default kill --------------------------------------
 * imaged is a network client (libcurl, OpenSSL, the glibc resolver), owns
 * the image store (files below its own directory, Landlock), and runs gpg
 * through gpgme: gpg inherits this filter, so the list includes what the
 * dynamic loader and gpg need at exec. */
const struct sandbox_syscall sandbox_imaged_syscalls[] = {
	/* Event loop and ipc, as frontd. */
	SB("epoll_create1"),
	SB("epoll_ctl"),
	SB("epoll_wait"),
	SB("epoll_pwait"),
	SB("signalfd4"),
	SB("rt_sigprocmask"),
	SB("rt_sigreturn"),
	SB("rt_sigaction"), /* libcurl ignores SIGPIPE; gpg installs handlers */
	SB("poll"),         /* libcurl, the resolver and gpgme wait with poll */
	SB("ppoll"),
	SB("read"),
	SB("readv"),
	SB("write"),
	SB("writev"),
	SB("pread64"),      /* SQLite, the dynamic loader */
	SB("pwrite64"),     /* SQLite */
	SB("recvmsg"),
	SB("sendmsg"),
	SB("recvfrom"),
	SB("sendto"),
	SB("sendmmsg"),     /* the resolver sends A and AAAA queries at once */
	SB("close"),
	SB("close_range"),  /* gpgme's child closes every other fd before exec */
	SB("shutdown"),
	/* Network: registries over TCP (v4/v6), DNS over UDP, unix sockets
	 * (nscd, ipc, gpgme's socketpairs), and a NETLINK_ROUTE socket that
	 * getaddrinfo opens to sort several answers (RFC 3484).  No raw,
	 * packet or other netlink sockets.  Socket options are not filtered:
	 * the families are. */
	SB_IF("socket", SB_EQ(0, AF_UNIX)),
	SB_IF("socket", SB_EQ(0, AF_INET)),
	SB_IF("socket", SB_EQ(0, AF_INET6)),
	SB_IF("socket", SB_EQ(0, AF_NETLINK), SB_EQ(2, NETLINK_ROUTE)),
	SB_IF("socketpair", SB_EQ(0, AF_UNIX)),
	SB("connect"),
	SB("bind"),         /* getaddrinfo's netlink socket (no listening: no listen/accept) */
	SB("getsockname"),
	SB("getpeername"),
	SB("getsockopt"),
	SB("setsockopt"),   /* TCP_NODELAY, keepalive (libcurl) */
	/* The store: files below its directory only (Landlock decides
	 * where), with the *at variants for fd-relative store code. */
	SB("openat"),
	SB("newfstatat"),
	SB("lseek"),
	SB("getdents64"),
	SB("mkdir"),
	SB("mkdirat"),
	SB("rmdir"),
	SB("unlink"),
	SB("unlinkat"),
	SB("rename"),
	SB("renameat2"),
	SB("link"),         /* gpg's dotlock takes its lock with link() */
	SB("linkat"),
	SB("readlink"),     /* gpg: /proc/self/exe (denied by Landlock, handled) */
	SB("access"),
	SB("faccessat2"),
	SB("ftruncate"),
	SB("fsync"),
	SB("fdatasync"),
	SB("flock"),
	SB("umask"),        /* gpg */
	/* fd flags, close-on-exec dups, and record locks (SQLite, gpg). */
	SB_IF("fcntl", SB_EQ(1, F_GETFD)),
	SB_IF("fcntl", SB_EQ(1, F_SETFD)),
	SB_IF("fcntl", SB_EQ(1, F_GETFL)),
	SB_IF("fcntl", SB_EQ(1, F_SETFL)),
	SB_IF("fcntl", SB_EQ(1, F_DUPFD_CLOEXEC)),
	SB_IF("fcntl", SB_EQ(1, F_GETLK)),
	SB_IF("fcntl", SB_EQ(1, F_SETLK)),
	SB_IF("fcntl", SB_EQ(1, F_SETLKW)),
	SB("dup"),
	SB("dup2"),         /* gpgme: the child's stdio before exec */
	SB("dup3"),
	SB("pipe2"),
	/* Memory.  gpg runs under this filter, and the dynamic loader maps
	 * its libraries executable: PROT_EXEC only for file mappings, and
	 * mprotect never adds it. */
	SB("brk"),
	SB_IF("mmap", SB_NOBITS(2, PROT_EXEC)),
	SB_IF("mmap", SB_NOBITS(3, MAP_ANONYMOUS)),
	SB_IF("mprotect", SB_NOBITS(2, PROT_EXEC)),
	SB("munmap"),
	SB("mremap"),
	SB_IF("madvise", SB_EQ(2, MADV_DONTNEED)), /* malloc trimming in thread arenas */
	SB("mlock"),        /* libgcrypt's secure memory in gpg */
	SB("munlock"),
	/* Threads (libcurl's resolver) and processes (gpg, gpgconf), never
	 * in new namespaces: an unprivileged user namespace would hand
	 * imaged every capability over a fresh kernel attack surface.
	 * clone3 takes its flags in memory, where no filter can look:
	 * ENOSYS makes glibc fall back to clone. */
	SB_IF("clone", SB_NOBITS(0, CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
					    CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)),
	SB_ERRNO("clone3", ENOSYS),
	SB("set_robust_list"),
	SB("rseq"),
	SB_IF("futex", FUTEX_CMD(FUTEX_WAIT)),
	SB_IF("futex", FUTEX_CMD(FUTEX_WAKE)),
	SB_IF("futex", FUTEX_CMD(FUTEX_WAIT_BITSET)),
	SB_IF("futex", FUTEX_CMD(FUTEX_WAKE_BITSET)),
	SB("execve"),       /* gpg, gpgconf: Landlock allows no other binary */
	SB("wait4"),
	SB("kill"),         /* gpgme stops a gpg it gave up on (Landlock scopes signals to imaged's own) */
	SB_IF("tgkill", SB_SELF_PID(0)),
	SB("exit"),
	SB("exit_group"),
	SB("restart_syscall"),
	/* Start of an exec'd gpg (dynamic loader, libc and libgcrypt init). */
	SB_IF("arch_prctl", SB_EQ(0, 0x1002 /* ARCH_SET_FS */)),
	SB("set_tid_address"),
	SB("prlimit64"),    /* gpg reads RLIMIT_STACK and sets RLIMIT_CORE to 0 */
	SB("uname"),
	/* Time, randomness, identity. */
	SB("clock_gettime"),
	SB("gettimeofday"),
	SB("getrandom"),
	SB("getpid"),
	SB("gettid"),
	SB("getuid"),
	SB("geteuid"),
	SB("getgid"),
	SB("getegid"),
	/* The resolver sizes its buffer with FIONREAD; anything else (isatty's
	 * TCGETS in gpg) fails quietly without reaching a driver. */
	SB_IF("ioctl", SB_EQ(1, FIONREAD)),
	{ .name = "ioctl", .ret_errno = ENOTTY, .nargs = 1, .args = { { .arg = 1, .op = SANDBOX_CMP_NE, .a = FIONREAD } } },
};
const size_t sandbox_imaged_nsyscalls = ARRAY_SIZE(sandbox_imaged_syscalls);

/* ---- netd: denylist, default allow ----------------------------------------
 * netd and the CNI plugins it runs (Go binaries, iptables, ip) need a wide
 * and changing syscall set, so netd gets a denylist of what neither may
 * ever do.  Several are already out of reach without the dropped
 * capability; they are listed anyway so that a capability kept by mistake
 * later does not open them.  Denied calls kill the process. */
const struct sandbox_syscall sandbox_netd_denied[] = {
	/* Replace or extend the kernel (CAP_SYS_BOOT / CAP_SYS_MODULE). */
	SB("kexec_load"),
	SB("kexec_file_load"),
	SB("init_module"),
	SB("finit_module"),
	SB("delete_module"),
	SB("reboot"),
	/* Allowed by the CAP_SYS_ADMIN netd keeps, and needed by no plugin:
	 * BPF programs and perf events read kernel memory; swap, quota,
	 * hostname and syslog act on the whole host; fanotify watches every
	 * file; pivot_root/chroot and the new mount API are not how netd
	 * mounts (it bind-mounts netns files with mount(2)). */
	SB("bpf"),
	SB("perf_event_open"),
	SB("swapon"),
	SB("swapoff"),
	SB("quotactl"),
	SB("quotactl_fd"),
	SB("sethostname"),
	SB("setdomainname"),
	SB("syslog"),
	SB("fanotify_init"),
	SB("pivot_root"),
	SB("chroot"),
	SB("fsopen"),
	SB("fsconfig"),
	SB("fsmount"),
	SB("fspick"),
	SB("open_tree"),
	SB("move_mount"),
	SB("mount_setattr"),
	/* Other processes: netd is uid 0 like execd and crispd; it must not
	 * read or write their memory or steal their fds. */
	SB("ptrace"),
	SB("process_vm_readv"),
	SB("process_vm_writev"),
	SB("pidfd_getfd"),
	SB("kcmp"),
	/* The kernel keyring is not namespaced and uid 0's keyrings are
	 * shared with every root process (execd). */
	SB("keyctl"),
	SB("add_key"),
	SB("request_key"),
	/* "Shocker": open any inode by handle (CAP_DAC_READ_SEARCH). */
	SB("open_by_handle_at"),
	/* Hardware and clock (CAP_SYS_RAWIO, CAP_SYS_TIME, CAP_SYS_PACCT). */
	SB("iopl"),
	SB("ioperm"),
	SB("settimeofday"),
	SB("clock_settime"),
	SB("clock_adjtime"),
	SB("adjtimex"),
	SB("acct"),
	SB("vhangup"),
	/* Exploit helpers with no use here: io_uring runs operations seccomp
	 * never sees; userfaultfd stretches kernel race windows; uselib and
	 * lookup_dcookie are obsolete. */
	SB("io_uring_setup"),
	SB("io_uring_enter"),
	SB("io_uring_register"),
	SB("userfaultfd"),
	SB("uselib"),
	SB("lookup_dcookie"),
};
const size_t sandbox_netd_ndenied = ARRAY_SIZE(sandbox_netd_denied);

/* ---- the layer unpacker: denylist, default allow ---------------------------
 * A short-lived child of execd (execd/layers.c) that extracts one layer
 * into one directory, as uid 0 with CHOWN, DAC_OVERRIDE, FOWNER, FSETID,
 * MKNOD, SETFCAP and SYS_ADMIN (trusted.* xattrs) only, Landlock limited to
 * that directory.  It needs files, directories, xattrs and its pipe; it
 * never mounts, changes namespaces, talks to the network, runs programs or
 * touches other processes.  CAP_SYS_ADMIN is why this list is long: every
 * call that capability opens and extraction does not use is denied here.
 * Denied calls kill the child; execd then fails the layer. */
const struct sandbox_syscall sandbox_unpack_denied[] = {
	/* Mounts and namespaces (CAP_SYS_ADMIN). */
	SB("mount"),
	SB("umount2"),
	SB("pivot_root"),
	SB("chroot"),
	SB("unshare"),
	SB("setns"),
	SB("fsopen"),
	SB("fsconfig"),
	SB("fsmount"),
	SB("fspick"),
	SB("open_tree"),
	SB("move_mount"),
	SB("mount_setattr"),
	SB("clone3"),
	/* clone with any namespace flag (one entry per flag: alternatives). */
	SB_IF("clone", SB_MASKED_EQ(0, CLONE_NEWNS, CLONE_NEWNS)),
	SB_IF("clone", SB_MASKED_EQ(0, CLONE_NEWUSER, CLONE_NEWUSER)),
	SB_IF("clone", SB_MASKED_EQ(0, CLONE_NEWPID, CLONE_NEWPID)),
	SB_IF("clone", SB_MASKED_EQ(0, CLONE_NEWNET, CLONE_NEWNET)),
	SB_IF("clone", SB_MASKED_EQ(0, CLONE_NEWIPC, CLONE_NEWIPC)),
	SB_IF("clone", SB_MASKED_EQ(0, CLONE_NEWUTS, CLONE_NEWUTS)),
	SB_IF("clone", SB_MASKED_EQ(0, CLONE_NEWCGROUP, CLONE_NEWCGROUP)),
	SB("fork"),
	SB("vfork"),
	/* Running programs. */
	SB("execve"),
	SB("execveat"),
	/* The network: a layer has nothing to send anywhere. */
	SB("socket"),
	SB("socketpair"),
	SB("connect"),
	SB("bind"),
	SB("listen"),
	SB("accept"),
	SB("accept4"),
	/* The kernel itself. */
	SB("kexec_load"),
	SB("kexec_file_load"),
	SB("init_module"),
	SB("finit_module"),
	SB("delete_module"),
	SB("reboot"),
	SB("bpf"),
	SB("perf_event_open"),
	SB("swapon"),
	SB("swapoff"),
	SB("quotactl"),
	SB("quotactl_fd"),
	SB("sethostname"),
	SB("setdomainname"),
	SB("syslog"),
	SB("fanotify_init"),
	SB("iopl"),
	SB("ioperm"),
	SB("settimeofday"),
	SB("clock_settime"),
	SB("clock_adjtime"),
	SB("adjtimex"),
	SB("acct"),
	SB("vhangup"),
	/* Other processes (execd, containers). */
	SB("ptrace"),
	SB("process_vm_readv"),
	SB("process_vm_writev"),
	SB("pidfd_open"),
	SB("pidfd_getfd"),
	SB("pidfd_send_signal"),
	SB("kcmp"),
	SB("keyctl"),
	SB("add_key"),
	SB("request_key"),
	SB("open_by_handle_at"),
	SB("name_to_handle_at"),
	SB("io_uring_setup"),
	SB("io_uring_enter"),
	SB("io_uring_register"),
	SB("userfaultfd"),
	SB("uselib"),
	SB("lookup_dcookie"),
};
const size_t sandbox_unpack_ndenied = ARRAY_SIZE(sandbox_unpack_denied);

/* netd stays uid 0 with: CAP_NET_ADMIN (links, addresses, routes,
 * iptables rules), CAP_NET_RAW (iptables' raw socket, ARP/NDP in
 * plugins), CAP_SYS_ADMIN (unshare(CLONE_NEWNET), setns into a pod's
 * netns, bind-mounting netns files).  Not CAP_SYS_PTRACE: netd creates
 * the namespaces itself and holds their fds, so it never opens
 * /proc/PID/ns of another process; execd joins a netns through an fd netd
 * passes (absorb #12). */
const int sandbox_netd_caps[] = { CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN };
const size_t sandbox_netd_ncaps = ARRAY_SIZE(sandbox_netd_caps);

/* ---- sanitizer builds ------------------------------------------------------ */
#ifdef CRISP_SANITIZED
/* What the ASan/UBSan runtime needs on its report path inside a sandbox
 * (allocator, stack unwinding, report, die).  Sanitizer builds only. */
const struct sandbox_syscall sandbox_sanitizer_syscalls[] = {
	/* __asan_handle_no_return (before _exit, abort, longjmp) asks
	 * where the signal stack is; it never sets one here. */
	SB_IF("sigaltstack", SB_EQ(0, 0)),
	/* The report names modules from /proc/self/exe and
	 * /proc/self/cmdline: they cannot be read in the sandbox anyway,
	 * so the calls fail here, before reaching the kernel. */
	SB_ERRNO("open", EACCES),
	SB_ERRNO("openat", EACCES),
	SB_ERRNO("readlink", EACCES),
	/* The allocator maps new regions (shadow, quarantine) without huge
	 * pages and out of core dumps. */
	SB_IF("madvise", SB_EQ(2, MADV_NOHUGEPAGE)),
	SB_IF("madvise", SB_EQ(2, MADV_DONTDUMP)),
	/* The report would start llvm-symbolizer through a pipe: no
	 * processes here.  Symbolize offline (module+offset are printed). */
	SB_ERRNO("pipe2", EPERM),
	SB_ERRNO("pipe", EPERM),
};
const size_t sandbox_sanitizer_nsyscalls = ARRAY_SIZE(sandbox_sanitizer_syscalls);
#else
const struct sandbox_syscall sandbox_sanitizer_syscalls[1] = { { 0 } };
const size_t sandbox_sanitizer_nsyscalls = 0;
#endif

/* ---- imaged's filesystem --------------------------------------------------- */

/* Read-only system files: TLS roots, resolver and name service config,
 * containers-policy.json and registries.d, time zones.  Optional: a node
 * may lack some (no /etc/containers means no policy, which imaged then
 * refuses to use, with its own message). */
const struct sandbox_landlock_rule sandbox_imaged_fs_system[] = {
	{ "/etc/ssl/certs", SANDBOX_FS_RO, true },
	{ "/usr/share/ca-certificates", SANDBOX_FS_RO, true },
	{ "/etc/ssl/openssl.cnf", SANDBOX_FS_RO, true },
	{ "/etc/resolv.conf", SANDBOX_FS_RO, true },
	{ "/etc/hosts", SANDBOX_FS_RO, true },
	{ "/etc/nsswitch.conf", SANDBOX_FS_RO, true },
	/* gpg looks up its own user: with the (world-readable) user
	 * database readable, glibc answers from "files" and never loads
	 * the next NSS module (libnss_systemd, which would dlopen libcap
	 * and talk to systemd-userdbd). */
	{ "/etc/passwd", SANDBOX_FS_RO, true },
	{ "/etc/group", SANDBOX_FS_RO, true },
	{ "/etc/gai.conf", SANDBOX_FS_RO, true },
	{ "/etc/host.conf", SANDBOX_FS_RO, true },
	{ "/etc/containers", SANDBOX_FS_RO, true },
	/* imaged.registries_conf and imaged.signature_policy are read at
	 * each configuration apply, after the sandbox: they must live below
	 * /etc/containers or crisp's own /etc/crisp. */
	{ "/etc/crisp", SANDBOX_FS_RO, true },
	{ "/etc/localtime", SANDBOX_FS_RO, true },
	{ "/usr/share/zoneinfo", SANDBOX_FS_RO, true },
	/* gpg, exec'd by gpgme: the binary, the loader's cache and the
	 * libraries it maps. */
	{ "/usr/bin/gpg", SANDBOX_FS_EXEC, true },
	{ "/usr/bin/gpgconf", SANDBOX_FS_EXEC, true }, /* gpgme finds gpg with it */
	/* The kernel opens the ELF interpreter for execution too. */
#if defined(__x86_64__)
	{ "/lib64/ld-linux-x86-64.so.2", SANDBOX_FS_EXEC, false },
#elif defined(__aarch64__)
	{ "/lib/ld-linux-aarch64.so.1", SANDBOX_FS_EXEC, false },
#endif
	{ "/etc/ld.so.cache", SANDBOX_FS_RO, true },
	{ "/usr/lib", SANDBOX_FS_RO, false },
	{ "/dev/null", LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE, false },
	/* SQLite's VFS seeds its PRNG from it (getrandom elsewhere). */
	{ "/dev/urandom", LANDLOCK_ACCESS_FS_READ_FILE, false },
};
const size_t sandbox_imaged_nfs_system = ARRAY_SIZE(sandbox_imaged_fs_system);

/* ---- the roles --------------------------------------------------------------- */

int sandbox_apply_role(int role, const struct role_args *a, crisp_err_t *err)
{
	struct sandbox_spec s;

	memset(&s, 0, sizeof s);
	s.role = crisp_role_name(role);
	s.debug = a->sandbox_debug;
	switch (role) {
	case ROLE_FRONTD: {
		/* No core files (channel keys), no processes. */
		static const struct sandbox_rlimit lim[] = { { RLIMIT_CORE, 0 }, { RLIMIT_NPROC, 0 } };

		if (a->uid == 0 || a->gid == 0 || a->chroot == NULL)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "sandbox frontd: spec: needs a non-root uid/gid and a chroot");
		s.uid = a->uid;
		s.gid = a->gid;
		s.chroot_dir = a->chroot;
		s.rlimits = lim;
		s.nrlimits = ARRAY_SIZE(lim);
		s.landlock = true; /* no rules: every filesystem access denied */
		s.seccomp_mode = SANDBOX_SECCOMP_ALLOW;
		s.syscalls = sandbox_frontd_syscalls;
		s.nsyscalls = sandbox_frontd_nsyscalls;
		return sandbox_apply(&s, err);
	}
	case ROLE_IMAGED: {
		static const struct sandbox_rlimit lim[] = { { RLIMIT_CORE, 0 } };
		struct sandbox_landlock_rule fs[ARRAY_SIZE(sandbox_imaged_fs_system) + 1];
		char store[4096];

		if (a->uid == 0 || a->gid == 0 || a->root == NULL)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "sandbox imaged: spec: needs a non-root uid/gid and --root");
		if ((size_t)snprintf(store, sizeof store, "%s/images", a->root) >= sizeof store)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "sandbox imaged: spec: root too long");
		fs[0] = (struct sandbox_landlock_rule){ store, SANDBOX_FS_RW, false };
		memcpy(fs + 1, sandbox_imaged_fs_system, sizeof sandbox_imaged_fs_system);
		s.uid = a->uid;
		s.gid = a->gid;
		s.rlimits = lim;
		s.nrlimits = ARRAY_SIZE(lim);
		s.landlock = true;
		s.fs = fs;
		s.nfs = ARRAY_SIZE(fs);
		/* Registries listen on any port; seccomp limits the families. */
		s.tcp_unrestricted = true;
		s.seccomp_mode = SANDBOX_SECCOMP_ALLOW;
		s.syscalls = sandbox_imaged_syscalls;
		s.nsyscalls = sandbox_imaged_nsyscalls;
		return sandbox_apply(&s, err);
	}
	case ROLE_NETD: {
		static const struct sandbox_rlimit lim[] = { { RLIMIT_CORE, 0 } };

		if (a->uid != 0 || a->gid != 0)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "sandbox netd: spec: netd runs as uid 0");
		s.keep_caps = sandbox_netd_caps;
		s.nkeep_caps = sandbox_netd_ncaps;
		s.rlimits = lim;
		s.nrlimits = ARRAY_SIZE(lim);
		s.seccomp_mode = SANDBOX_SECCOMP_DENY;
		s.syscalls = sandbox_netd_denied;
		s.nsyscalls = sandbox_netd_ndenied;
		return sandbox_apply(&s, err);
	}
	case ROLE_EXECD:
		/* Root, every capability, no seccomp, no Landlock and no
		 * no_new_privs, on purpose: containers inherit all of these
		 * from their launcher.  No rlimits either (containers inherit
		 * them too).  execd's defence is that it parses only typed ipc
		 * and re-checks it against policy. */
		if (a->uid != 0 || a->gid != 0)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "sandbox execd: spec: execd runs as uid 0");
		s.keep_all_caps = true;
		s.allow_new_privs = true;
		s.seccomp_mode = SANDBOX_SECCOMP_NONE;
		return sandbox_apply(&s, err);
	default:
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "sandbox: no policy for role %d", role);
	}
}
