/*
 * syscall_inject PID NR [ARG...]
 *
 * Make process PID execute system call NR with the given arguments, as an
 * attacker with code execution inside a sandboxed role would, and report
 * what happened:
 *
 *   "killed by SIGSYS"              the seccomp filter killed it (exit 0)
 *   "returned N [(errno text)]"     the call ran; registers restored and
 *                                   the process detached unharmed (exit 0)
 *   "killed by signal N" / "exited with status N"           (exit 0)
 *
 * Exit 1: the injection itself failed (attach, registers, no syscall
 * instruction found); 2: usage; 77: not x86_64 (skip).
 *
 * How (x86_64): PTRACE_SEIZE + PTRACE_INTERRUPT; wait for the stop; save the
 * registers.  A process stopped in a system call has rip just past the
 * `syscall` instruction (0f 05): rip-2 is checked with PTRACE_PEEKTEXT and
 * used; otherwise a `syscall` in the vDSO is used.  rax = NR, the
 * arguments in rdi rsi rdx r10 r8 r9, and orig_rax = -1 so the kernel's
 * restart logic does not rewrite rip/rax when the tracee resumes.
 * PTRACE_SYSCALL runs it to the syscall-entry stop (ptrace runs before
 * seccomp), then to the exit stop; a SIGSYS pending there means the filter
 * refused the call, and the tracee is let go on to its death (or to its
 * debug handler).  The saved
 * registers are put back with an interrupted restartable call rewound to
 * run again (as the kernel would have done), and the process is detached.
 * Arguments are decimal or 0x hex; a negative number is allowed.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#if !defined(__x86_64__)
int main(void)
{
	fprintf(stderr, "syscall_inject: x86_64 only\n");
	return 77;
}
#else

#include <sys/user.h>

/* Kernel-internal restart codes seen in rax of an interrupted call. */
#define K_ERESTARTSYS 512
#define K_ERESTARTNOINTR 513
#define K_ERESTARTNOHAND 514
#define K_ERESTART_RESTARTBLOCK 516
#define NR_RESTART_SYSCALL 219

static pid_t pid;
static int pending_sig; /* a signal seen while attached, delivered at detach */

static void die(const char *what)
{
	fprintf(stderr, "syscall_inject: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int parse_num(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0') {
		/* large unsigned values (masks) */
		errno = 0;
		*out = (long long)strtoull(s, &end, 0);
		if (errno != 0 || end == s || *end != '\0')
			return -1;
	}
	return 0;
}

/* Report a terminal status of the tracee and exit. */
static void report_end(int st)
{
	if (WIFSIGNALED(st)) {
		if (WTERMSIG(st) == SIGSYS)
			printf("killed by SIGSYS\n");
		else
			printf("killed by signal %d\n", WTERMSIG(st));
		exit(0);
	}
	if (WIFEXITED(st)) {
		printf("exited with status %d\n", WEXITSTATUS(st));
		exit(0);
	}
}

static int wait_stop(void)
{
	int st;

	for (;;) {
		if (waitpid(pid, &st, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			die("waitpid");
		}
		report_end(st);
		if (WIFSTOPPED(st))
			return st;
	}
}

/* Find `syscall` (0f 05) in the tracee's vDSO. */
static unsigned long vdso_syscall(void)
{
	char path[64], line[512];
	unsigned long lo, hi;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL) {
		if (strstr(line, "[vdso]") == NULL || sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		fclose(f);
		for (unsigned long a = lo; a + 8 <= hi; a += 7) {
			long w;

			errno = 0;
			w = ptrace(PTRACE_PEEKTEXT, pid, (void *)a, NULL);
			if (errno != 0)
				return 0;
			for (int i = 0; i < 7; i++) {
				unsigned char b0 = (unsigned char)(w >> (8 * i)), b1 = (unsigned char)(w >> (8 * (i + 1)));

				if (b0 == 0x0f && b1 == 0x05)
					return a + (unsigned long)i;
			}
		}
		return 0;
	}
	fclose(f);
	return 0;
}

/* Is SIGSYS pending for the tracee (thread or process)?  A seccomp kill
 * or trap does not end the call at once: the kernel skips it, reports the
 * syscall-exit stop (rax rolled back to the syscall number), and the
 * forced SIGSYS is delivered when the tracee resumes. */
static int sigsys_pending(void)
{
	char path[64], line[256];
	unsigned long long mask, pend = 0;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		die(path);
	while (fgets(line, sizeof line, f) != NULL)
		if ((strncmp(line, "SigPnd:", 7) == 0 || strncmp(line, "ShdPnd:", 7) == 0) &&
		    sscanf(line + 7, "%llx", &mask) == 1)
			pend |= mask;
	fclose(f);
	return (pend & (1ULL << (SIGSYS - 1))) != 0;
}

static int is_syscall_insn(unsigned long addr)
{
	long w;

	errno = 0;
	w = ptrace(PTRACE_PEEKTEXT, pid, (void *)addr, NULL);
	return errno == 0 && (w & 0xffff) == 0x050f;
}

int main(int argc, char **argv)
{
	struct user_regs_struct saved, regs;
	long long v, args[6] = { 0 };
	unsigned long insn;
	int st;

	if (argc < 3 || argc > 9) {
		fprintf(stderr, "usage: syscall_inject PID NR [ARG...] (at most 6 arguments)\n");
		return 2;
	}
	if (parse_num(argv[1], &v) < 0 || v <= 0) {
		fprintf(stderr, "syscall_inject: bad pid %s\n", argv[1]);
		return 2;
	}
	pid = (pid_t)v;
	long long nr;
	if (parse_num(argv[2], &nr) < 0 || nr < 0) {
		fprintf(stderr, "syscall_inject: bad syscall number %s\n", argv[2]);
		return 2;
	}
	for (int i = 3; i < argc; i++)
		if (parse_num(argv[i], &args[i - 3]) < 0) {
			fprintf(stderr, "syscall_inject: bad argument %s\n", argv[i]);
			return 2;
		}

	if (ptrace(PTRACE_SEIZE, pid, NULL, (void *)(long)PTRACE_O_TRACESYSGOOD) < 0)
		die("PTRACE_SEIZE");
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0)
		die("PTRACE_INTERRUPT");
	/* Wait for the interrupt's stop; a signal-delivery stop that comes
	 * first is kept for later and suppressed now. */
	for (;;) {
		st = wait_stop();
		if ((st >> 16) == PTRACE_EVENT_STOP)
			break;
		pending_sig = WSTOPSIG(st);
		if (ptrace(PTRACE_CONT, pid, NULL, NULL) < 0)
			die("PTRACE_CONT");
	}
	if (ptrace(PTRACE_GETREGS, pid, NULL, &saved) < 0)
		die("PTRACE_GETREGS");

	if ((long)saved.orig_rax >= 0 && saved.rip >= 2 && is_syscall_insn(saved.rip - 2))
		insn = saved.rip - 2;
	else if ((insn = vdso_syscall()) == 0) {
		fprintf(stderr, "syscall_inject: no syscall instruction found\n");
		ptrace(PTRACE_DETACH, pid, NULL, NULL);
		return 1;
	}

	regs = saved;
	regs.rip = insn;
	regs.rax = (unsigned long long)nr;
	regs.orig_rax = (unsigned long long)-1;
	regs.rdi = (unsigned long long)args[0];
	regs.rsi = (unsigned long long)args[1];
	regs.rdx = (unsigned long long)args[2];
	regs.r10 = (unsigned long long)args[3];
	regs.r8 = (unsigned long long)args[4];
	regs.r9 = (unsigned long long)args[5];
	if (ptrace(PTRACE_SETREGS, pid, NULL, &regs) < 0)
		die("PTRACE_SETREGS");

	/* To the entry stop, then (through seccomp) to the exit stop. */
	for (int stops = 0; stops < 2;) {
		if (ptrace(PTRACE_SYSCALL, pid, NULL, NULL) < 0)
			die("PTRACE_SYSCALL");
		st = wait_stop();
		if (WSTOPSIG(st) == (SIGTRAP | 0x80)) {
			stops++;
			continue;
		}
		if ((st >> 16) == 0 && WSTOPSIG(st) != SIGTRAP) {
			/* A real signal: deliver it now (SIGSYS from a trap
			 * filter must reach the tracee's handler). */
			if (ptrace(PTRACE_SYSCALL, pid, NULL, (void *)(long)WSTOPSIG(st)) < 0)
				die("PTRACE_SYSCALL");
			st = wait_stop();
			if (WSTOPSIG(st) == (SIGTRAP | 0x80))
				stops++;
		}
	}
	if (sigsys_pending()) {
		/* Refused by the filter: let the signal do what it does
		 * (kill, or run a debug handler that exits). */
		if (ptrace(PTRACE_CONT, pid, NULL, NULL) < 0)
			die("PTRACE_CONT");
		for (;;) {
			st = wait_stop(); /* returns only while it lives */
			if (ptrace(PTRACE_CONT, pid, NULL, (st >> 16) == 0 ? (void *)(long)WSTOPSIG(st) : NULL) < 0)
				die("PTRACE_CONT");
		}
	}
	if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) < 0)
		die("PTRACE_GETREGS");
	long ret = (long)regs.rax;
	if (ret < 0 && ret > -4096)
		printf("returned %ld (%s)\n", ret, strerror((int)-ret));
	else
		printf("returned %ld\n", ret);

	/* Put the tracee back as the kernel would have resumed it: an
	 * interrupted restartable call runs again. */
	if ((long)saved.orig_rax >= 0) {
		switch (-(long)saved.rax) {
		case K_ERESTARTSYS:
		case K_ERESTARTNOINTR:
		case K_ERESTARTNOHAND:
			saved.rax = saved.orig_rax;
			saved.rip -= 2;
			break;
		case K_ERESTART_RESTARTBLOCK:
			saved.rax = NR_RESTART_SYSCALL;
			saved.rip -= 2;
			break;
		default:
			break;
		}
		saved.orig_rax = (unsigned long long)-1;
	}
	if (ptrace(PTRACE_SETREGS, pid, NULL, &saved) < 0)
		die("PTRACE_SETREGS (restore)");
	if (ptrace(PTRACE_DETACH, pid, NULL, (void *)(long)pending_sig) < 0)
		die("PTRACE_DETACH");
	fflush(stdout);
	return 0;
}
#endif
