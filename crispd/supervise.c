/*
 * crispd: starting, connecting, supervising and stopping the roles.
 *
 * Life of a role (state x event; anything not listed is ignored):
 *
 *   DOWN        --restart timer-->  STARTING  (fork+exec, control channel)
 *   STARTING    --READY-->          CONFIGURING (CONFIG_PREPARE sent)
 *   CONFIGURING --CONFIG_OK-->      UP (COMMIT sent, peer channels opened)
 *   CONFIGURING --ERROR-->          kill, DOWN
 *   STARTING    --10 s, no READY--> kill, DOWN
 *   any         --exit-->           DOWN, restart after backoff (unless stopping)
 *   UP          --violation report about it--> kill, DOWN
 *   any         --shutdown-->       EXITING (SHUTDOWN sent, SIGKILL after 5 s)
 *
 * Backoff starts at 100 ms and doubles, up to 10 s, while a role keeps
 * dying within 10 s of its start; a role that ran longer starts again at
 * 100 ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "common/util.h"
#include "crispd/crispd.h"
#include "ipc/role.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define STABLE_MS 10000
#define READY_TIMEOUT_MS 10000
#define CONFIG_TIMEOUT_MS 5000
#define SHUTDOWN_GRACE_MS 5000
#define VIOLATION_WINDOW_MS 60000
#define VIOLATION_MAX 5

/* Who talks to whom: one socketpair per pair, no others. */
static const uint32_t role_peers[ROLE_MAX] = {
	[ROLE_FRONTD] = R_IMAGED | R_EXECD | R_NETD,
	[ROLE_IMAGED] = R_FRONTD | R_EXECD,
	[ROLE_EXECD] = R_FRONTD | R_IMAGED | R_NETD,
	[ROLE_NETD] = R_FRONTD | R_EXECD,
};

static const char *const role_bins[ROLE_MAX] = {
	[ROLE_FRONTD] = "crisp-frontd",
	[ROLE_IMAGED] = "crisp-imaged",
	[ROLE_EXECD] = "crisp-execd",
	[ROLE_NETD] = "crisp-netd",
};

static void proc_spawn(struct role_proc *p);
static void proc_kill(struct role_proc *p, const char *why);

/* ---- logs ---- */

static void relay_line(struct role_proc *p, char *line, size_t len)
{
	char expect[64];
	const char *sp;
	size_t elen;

	for (size_t i = 0; i < len; i++)
		if (((unsigned char)line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f)
			line[i] = '?';
	line[len] = '\0';
	/* Accept the role's own prefix only when it names this role and pid. */
	elen = (size_t)snprintf(expect, sizeof expect, "%s[%d]: ", crisp_role_name(p->role), (int)p->pid);
	sp = memchr(line, ' ', len < 8 ? len : 8);
	if (sp != NULL && strncmp(sp + 1, expect, elen) == 0) {
		line[len] = '\n';
		(void)!write(STDERR_FILENO, line, len + 1);
	} else {
		char out[sizeof p->logbuf + 80];
		int n = snprintf(out, sizeof out, "%s[%d] (raw): %s\n", crisp_role_name(p->role), (int)p->pid, line);
		if (n > 0)
			(void)!write(STDERR_FILENO, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1);
	}
}

static void log_drain(struct role_proc *p, bool eof)
{
	char *nl;

	while ((nl = memchr(p->logbuf, '\n', p->loglen)) != NULL) {
		size_t n = (size_t)(nl - p->logbuf);
		relay_line(p, p->logbuf, n);
		memmove(p->logbuf, nl + 1, p->loglen - n - 1);
		p->loglen -= n + 1;
	}
	if (p->loglen == sizeof p->logbuf - 1 || (eof && p->loglen > 0)) {
		relay_line(p, p->logbuf, p->loglen);
		p->loglen = 0;
	}
}

static void log_close(struct role_proc *p)
{
	if (p->logfd >= 0) {
		loop_del(p->d->loop, p->logfd);
		close(p->logfd);
		p->logfd = -1;
	}
	log_drain(p, true);
}

static void on_log(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct role_proc *p = arg;

	(void)l;
	(void)events;
	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t n = read(fd, p->logbuf + p->loglen, sizeof p->logbuf - 1 - p->loglen);
		if (n > 0) {
			p->loglen += (size_t)n;
			log_drain(p, false);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		log_close(p);
		return;
	}
}

/* ---- channels between roles ---- */

static void open_pair(struct crispd *d, struct role_proc *a, struct role_proc *b)
{
	int sv[2];
	uint8_t key[IPC_KEY_SIZE];
	Cipc__ChanOpen co = CIPC__CHAN_OPEN__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	int bufsz = (int)(2 * (IPC_MAX_PAYLOAD + IPC_HDR_SIZE + IPC_TAG_SIZE));

	(void)d;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error("socketpair %s-%s: %s", crisp_role_name(a->role), crisp_role_name(b->role), strerror(errno));
		return;
	}
	/* Room for the largest message; the roles cannot raise it themselves
	 * once sandboxed.  (SO_*BUFFORCE needs CAP_NET_ADMIN: crispd has it.) */
	for (int i = 0; i < 2; i++) {
		(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof bufsz);
		(void)setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof bufsz);
	}
	randombytes_buf(key, sizeof key);
	co.key.data = key;
	co.key.len = sizeof key;

	co.peer_role = b->role;
	co.peer_pid = b->pid;
	co.peer_uid = b->uid;
	if (ipc_send(a->ctl, IPC_CHAN_OPEN, &co.base, sv[0], &err) < 0)
		log_error("CHAN_OPEN to %s: %s", crisp_role_name(a->role), err.msg);
	co.peer_role = a->role;
	co.peer_pid = a->pid;
	co.peer_uid = a->uid;
	if (ipc_send(b->ctl, IPC_CHAN_OPEN, &co.base, sv[1], &err) < 0)
		log_error("CHAN_OPEN to %s: %s", crisp_role_name(b->role), err.msg);
	sodium_memzero(key, sizeof key);
	close(sv[0]);
	close(sv[1]);
}

static void connect_peers(struct role_proc *p)
{
	struct crispd *d = p->d;

	for (int r = ROLE_FRONTD; r < ROLE_MAX; r++)
		if ((role_peers[p->role] & (1u << r)) && d->procs[r].state == PS_UP)
			open_pair(d, p, &d->procs[r]);
}

/* ---- configuration ---- */

static void on_config_answer(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	struct role_proc *p = arg;
	struct crispd *d = p->d;
	Cipc__ConfigCommit cc = CIPC__CONFIG_COMMIT__INIT;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)ch;
	(void)ans;
	if (p->state != PS_CONFIGURING)
		return;
	if (e != NULL) {
		log_error("%s refused the configuration: %s", crisp_role_name(p->role), e->msg);
		proc_kill(p, "configuration refused");
		return;
	}
	cc.generation = d->generation;
	if (ipc_send(p->ctl, IPC_CONFIG_COMMIT, &cc.base, -1, &err) < 0) {
		proc_kill(p, err.msg);
		return;
	}
	p->state = PS_UP;
	p->backoff_ms = p->backoff_ms ? p->backoff_ms : BACKOFF_MIN_MS;
	log_info("%s up (pid %d)", crisp_role_name(p->role), (int)p->pid);
	connect_peers(p);
}

static void send_config(struct role_proc *p)
{
	crisp_err_t err = CRISP_ERR_INIT;

	p->d->cfg.c->generation = p->d->generation;
	p->state = PS_CONFIGURING;
	if (ipc_request(p->ctl, IPC_CONFIG_PREPARE, &p->d->cfg.c->base, -1, CONFIG_TIMEOUT_MS,
			on_config_answer, p, NULL, &err) < 0)
		proc_kill(p, err.msg);
}

/* ---- control channel ---- */

static void on_ready(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_proc *p = arg;

	(void)ch;
	(void)m;
	if (p->state != PS_STARTING) {
		proc_kill(p, "READY out of order");
		return;
	}
	if (p->ready_timer) {
		loop_timer_cancel(p->d->loop, p->ready_timer);
		p->ready_timer = NULL;
	}
	send_config(p);
}

static void on_violation(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct role_proc *p = arg;
	struct crispd *d = p->d;
	Cipc__PeerViolation *pv = (Cipc__PeerViolation *)m->pb;
	uint64_t now = crisp_now_ms();

	(void)ch;
	if (pv->peer_role <= ROLE_CRISPD || pv->peer_role >= ROLE_MAX ||
	    !(role_peers[p->role] & (1u << pv->peer_role))) {
		proc_kill(p, "violation report about a role it has no channel to");
		return;
	}
	/* A role that keeps accusing its peers is itself suspect: past the
	 * limit, crispd restarts the accuser rather than the accused. */
	if (now - p->violations_window_ms > VIOLATION_WINDOW_MS) {
		p->violations_window_ms = now;
		p->violations_reported = 0;
	}
	if (++p->violations_reported > VIOLATION_MAX) {
		proc_kill(p, "too many violation reports");
		return;
	}
	log_error("%s reports that %s broke the ipc protocol: %.200s", crisp_role_name(p->role),
		  crisp_role_name(pv->peer_role), pv->reason);
	proc_kill(&d->procs[pv->peer_role], "ipc protocol violation");
}

static void on_ctl_close(struct ipc_chan *ch, bool violation, const char *reason, void *arg)
{
	struct role_proc *p = arg;

	(void)ch;
	if (violation) {
		log_error("%s broke the control protocol (%s)", crisp_role_name(p->role), reason);
		proc_kill(p, "control protocol violation");
	}
}

static const struct ipc_handler ctl_handlers[] = {
	ROLE_COMMON_HANDLERS,
	{ IPC_READY, on_ready },
	{ IPC_PEER_VIOLATION, on_violation },
};

/* ---- processes ---- */

static void ctl_drop(struct role_proc *p)
{
	if (p->ctl != NULL) {
		struct ipc_chan *c = p->ctl;
		p->ctl = NULL;
		ipc_chan_close(c);
		ipc_chan_unref(c);
	}
}

static void proc_kill(struct role_proc *p, const char *why)
{
	if (p->pid > 0 && p->state != PS_DOWN) {
		log_warn("killing %s (pid %d): %s", crisp_role_name(p->role), (int)p->pid, why);
		kill(p->pid, SIGKILL);
		ctl_drop(p);
	}
}

static void on_restart_timer(struct loop *l, void *arg)
{
	struct role_proc *p = arg;

	(void)l;
	p->restart_timer = NULL;
	if (!p->d->stopping && p->state == PS_DOWN)
		proc_spawn(p);
}

static void on_ready_timeout(struct loop *l, void *arg)
{
	struct role_proc *p = arg;

	(void)l;
	p->ready_timer = NULL;
	if (p->state == PS_STARTING)
		proc_kill(p, "no READY in time");
}

static void child_exec(struct role_proc *p, int ctl, int keyr, int logw, char *const argv[], char *const envp[])
{
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	int extra = p->role == ROLE_FRONTD ? p->d->listen_fd : -1;
	int extra2 = p->role == ROLE_FRONTD ? p->d->stream_fd : -1;
	sigset_t none;

	/* Move every fd we keep above the fixed slots first, then into place. */
	int hi_ctl = fcntl(ctl, F_DUPFD_CLOEXEC, 16), hi_key = fcntl(keyr, F_DUPFD_CLOEXEC, 16);
	int hi_log = fcntl(logw, F_DUPFD_CLOEXEC, 16);
	int hi_extra = extra >= 0 ? fcntl(extra, F_DUPFD_CLOEXEC, 16) : -1;
	int hi_extra2 = extra2 >= 0 ? fcntl(extra2, F_DUPFD_CLOEXEC, 16) : -1;
	if (devnull < 0 || hi_ctl < 0 || hi_key < 0 || hi_log < 0 || (extra >= 0 && hi_extra < 0) ||
	    (extra2 >= 0 && hi_extra2 < 0))
		_exit(127);
	if (dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(hi_log, 2) < 0 ||
	    dup2(hi_ctl, ROLE_FD_CONTROL) < 0 || dup2(hi_key, ROLE_FD_KEY) < 0 ||
	    (hi_extra >= 0 && dup2(hi_extra, ROLE_FD_FIRST_EXTRA) < 0) ||
	    (hi_extra2 >= 0 && dup2(hi_extra2, ROLE_FD_FIRST_EXTRA + 1) < 0))
		_exit(127);
	crisp_closefrom(ROLE_FD_FIRST_EXTRA + (hi_extra >= 0) + (hi_extra2 >= 0), NULL, 0);
	/* crispd blocks the signals it takes through signalfd: undo that. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	/* Own process group: a terminal's ^C reaches crispd, which stops
	 * the roles in order. */
	setpgid(0, 0);
	execve(p->bin, argv, envp);
	_exit(127);
}

static void proc_spawn(struct role_proc *p)
{
	struct crispd *d = p->d;
	int sv[2] = { -1, -1 }, kp[2] = { -1, -1 }, lp[2] = { -1, -1 };
	uint8_t key[IPC_KEY_SIZE];
	char uidarg[16], gidarg[16], lvl[8];
	char *argv[24];
	char *envp[8];
	int argc = 0, envc = 0;
	struct ipc_chan_cfg cc;
	crisp_err_t err = CRISP_ERR_INIT;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(kp, O_CLOEXEC) < 0 ||
	    pipe2(lp, O_CLOEXEC) < 0) {
		log_error("spawn %s: %s", crisp_role_name(p->role), strerror(errno));
		goto fail;
	}
	snprintf(uidarg, sizeof uidarg, "%u", (unsigned)p->uid);
	snprintf(gidarg, sizeof gidarg, "%u", (unsigned)p->gid);
	snprintf(lvl, sizeof lvl, "%d", (int)d->cfg.c->log_level);
	argv[argc++] = p->bin;
	argv[argc++] = "--uid";
	argv[argc++] = uidarg;
	argv[argc++] = "--gid";
	argv[argc++] = gidarg;
	argv[argc++] = "--root";
	argv[argc++] = d->cfg.c->root;
	argv[argc++] = "--runroot";
	argv[argc++] = d->cfg.c->runroot;
	if (p->role == ROLE_FRONTD) {
		argv[argc++] = "--chroot";
		argv[argc++] = d->empty_dir;
		/* frontd reads the streaming TLS files before its sandbox. */
		if (*d->cfg.c->stream_tls_cert != '\0') {
			argv[argc++] = "--stream-tls-cert";
			argv[argc++] = d->cfg.c->stream_tls_cert;
		}
		if (*d->cfg.c->stream_tls_key != '\0') {
			argv[argc++] = "--stream-tls-key";
			argv[argc++] = d->cfg.c->stream_tls_key;
		}
		if (*d->cfg.c->stream_tls_client_ca != '\0') {
			argv[argc++] = "--stream-tls-client-ca";
			argv[argc++] = d->cfg.c->stream_tls_client_ca;
		}
	}
	if (d->cfg.sandbox_debug)
		argv[argc++] = "--sandbox-debug";
	argv[argc] = NULL;
	/* A minimal environment; sanitizer options pass through for SAN builds. */
	envp[envc++] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	static const char *const passthrough[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" };
	static char envbuf[3][512];
	for (size_t i = 0; i < ARRAY_SIZE(passthrough); i++) {
		const char *v = getenv(passthrough[i]);
		if (v && (size_t)snprintf(envbuf[i], sizeof envbuf[i], "%s=%s", passthrough[i], v) < sizeof envbuf[i])
			envp[envc++] = envbuf[i];
	}
	envp[envc] = NULL;

	randombytes_buf(key, sizeof key);
	pid = fork();
	if (pid < 0) {
		log_error("fork %s: %s", crisp_role_name(p->role), strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child_exec(p, sv[1], kp[0], lp[1], argv, envp);

	close(sv[1]);
	sv[1] = -1;
	close(kp[0]);
	kp[0] = -1;
	close(lp[1]);
	lp[1] = -1;
	if (crisp_write_all(kp[1], key, sizeof key) < 0)
		log_error("key to %s: %s", crisp_role_name(p->role), strerror(errno));
	close(kp[1]);
	kp[1] = -1;

	p->pid = pid;
	p->state = PS_STARTING;
	p->started_ms = crisp_now_ms();
	p->logfd = lp[0];
	lp[0] = -1;
	p->loglen = 0;
	crisp_set_nonblock(p->logfd, true);
	if (loop_add(d->loop, p->logfd, EPOLLIN, on_log, p) < 0)
		log_error("log pipe of %s: %s", crisp_role_name(p->role), strerror(errno));

	memset(&cc, 0, sizeof cc);
	cc.fd = sv[0];
	sv[0] = -1;
	cc.self = ROLE_CRISPD;
	cc.peer = p->role;
	cc.peer_pid = pid;
	cc.peer_uid = p->uid;
	cc.key = key;
	cc.handlers = ctl_handlers;
	cc.nhandlers = ARRAY_SIZE(ctl_handlers);
	cc.arg = p;
	cc.on_close = on_ctl_close;
	cc.close_arg = p;
	p->ctl = ipc_chan_new(d->loop, &cc, &err);
	sodium_memzero(key, sizeof key);
	if (p->ctl == NULL) {
		log_error("control channel of %s: %s", crisp_role_name(p->role), err.msg);
		kill(pid, SIGKILL);
	}
	p->ready_timer = loop_timer_add(d->loop, READY_TIMEOUT_MS, on_ready_timeout, p);
	log_debug("started %s (pid %d)", crisp_role_name(p->role), (int)pid);
	return;
fail:
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (kp[i] >= 0)
			close(kp[i]);
		if (lp[i] >= 0)
			close(lp[i]);
	}
	p->restart_timer = loop_timer_add(d->loop, BACKOFF_MAX_MS, on_restart_timer, p);
}

static void proc_exited(struct role_proc *p, int status)
{
	struct crispd *d = p->d;
	uint64_t ran = crisp_now_ms() - p->started_ms;
	char how[64];

	if (WIFEXITED(status))
		snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(how, sizeof how, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(how, sizeof how, "ended (status 0x%x)", status);
	log_close(p);
	ctl_drop(p);
	if (p->ready_timer) {
		loop_timer_cancel(d->loop, p->ready_timer);
		p->ready_timer = NULL;
	}
	p->pid = 0;
	p->state = PS_DOWN;
	if (d->stopping) {
		log_info("%s %s", crisp_role_name(p->role), how);
		return;
	}
	if (ran >= STABLE_MS || p->backoff_ms == 0)
		p->backoff_ms = BACKOFF_MIN_MS;
	else if (p->backoff_ms < BACKOFF_MAX_MS)
		p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
	p->restarts++;
	log_warn("%s %s after %llu ms; restart %u in %u ms", crisp_role_name(p->role), how,
		 (unsigned long long)ran, p->restarts, p->backoff_ms);
	p->restart_timer = loop_timer_add(d->loop, p->backoff_ms, on_restart_timer, p);
}

void sup_on_sigchld(struct crispd *d)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int r = ROLE_FRONTD; r < ROLE_MAX; r++) {
			if (d->procs[r].pid == pid) {
				proc_exited(&d->procs[r], status);
				break;
			}
		}
	}
	if (d->stopping && sup_all_down(d))
		loop_stop(d->loop);
}

bool sup_all_down(const struct crispd *d)
{
	for (int r = ROLE_FRONTD; r < ROLE_MAX; r++)
		if (d->procs[r].pid > 0)
			return false;
	return true;
}

void sup_init(struct crispd *d, const char *bindir)
{
	for (int r = ROLE_FRONTD; r < ROLE_MAX; r++) {
		struct role_proc *p = &d->procs[r];
		memset(p, 0, sizeof *p);
		p->d = d;
		p->role = (enum crisp_role)r;
		p->logfd = -1;
		if ((size_t)snprintf(p->bin, sizeof p->bin, "%s/%s", bindir, role_bins[r]) >= sizeof p->bin)
			fatal("binary path too long");
		if (access(p->bin, X_OK) < 0)
			fatal("%s: %s", p->bin, strerror(errno));
	}
}

void sup_start_all(struct crispd *d)
{
	/* Owners first, the front last: frontd's first calls find their peers. */
	static const enum crisp_role order[] = { ROLE_EXECD, ROLE_IMAGED, ROLE_NETD, ROLE_FRONTD };

	for (size_t i = 0; i < ARRAY_SIZE(order); i++)
		proc_spawn(&d->procs[order[i]]);
}

static void on_kill_timer(struct loop *l, void *arg)
{
	struct crispd *d = arg;

	(void)l;
	d->kill_timer = NULL;
	for (int r = ROLE_FRONTD; r < ROLE_MAX; r++)
		if (d->procs[r].pid > 0) {
			log_warn("%s did not stop in time: killing it", crisp_role_name(r));
			kill(d->procs[r].pid, SIGKILL);
		}
}

void sup_shutdown(struct crispd *d)
{
	Cipc__Empty e = CIPC__EMPTY__INIT;
	crisp_err_t err = CRISP_ERR_INIT;

	if (d->stopping)
		return;
	d->stopping = true;
	log_info("stopping");
	/* The front first, so no new calls arrive while the owners stop. */
	static const enum crisp_role order[] = { ROLE_FRONTD, ROLE_NETD, ROLE_IMAGED, ROLE_EXECD };
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		struct role_proc *p = &d->procs[order[i]];
		if (p->restart_timer) {
			loop_timer_cancel(d->loop, p->restart_timer);
			p->restart_timer = NULL;
		}
		if (p->pid <= 0)
			continue;
		p->state = PS_EXITING;
		if (p->ctl == NULL || ipc_send(p->ctl, IPC_SHUTDOWN, &e.base, -1, &err) < 0)
			kill(p->pid, SIGTERM);
	}
	if (sup_all_down(d))
		loop_stop(d->loop);
	else
		d->kill_timer = loop_timer_add(d->loop, SHUTDOWN_GRACE_MS, on_kill_timer, d);
}

/* ---- reload: a transaction across every running role ---- */

static void reload_finish(struct crispd *d)
{
	struct reload_txn *t = &d->reload;
	Cipc__ConfigCommit cc = CIPC__CONFIG_COMMIT__INIT;
	crisp_err_t err = CRISP_ERR_INIT;

	if (t->timer) {
		loop_timer_cancel(d->loop, t->timer);
		t->timer = NULL;
	}
	cc.generation = t->generation;
	for (int r = ROLE_FRONTD; r < ROLE_MAX; r++) {
		struct role_proc *p = &d->procs[r];
		if (t->members[r] == 0 || t->members[r] != p->pid)
			continue; /* restarted meanwhile: it runs the configuration it was started with */
		if (p->state == PS_UP && p->ctl &&
		    ipc_send(p->ctl, t->failed ? IPC_CONFIG_ABORT : IPC_CONFIG_COMMIT, &cc.base, -1, &err) < 0)
			proc_kill(p, err.msg);
	}
	if (t->failed) {
		log_error("reload refused, configuration %llu stays: %s", (unsigned long long)d->generation, t->why);
		config_free(&t->next);
	} else {
		config_free(&d->cfg);
		d->cfg = t->next;
		d->generation = t->generation;
		log_set_level(d->cfg.c->log_level);
		log_info("configuration %llu committed", (unsigned long long)d->generation);
	}
	memset(&t->next, 0, sizeof t->next);
	t->active = false;
}

static void on_reload_answer(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	struct role_proc *p = arg;
	struct reload_txn *t = &p->d->reload;

	(void)ch;
	(void)ans;
	if (!t->active)
		return;
	if (e != NULL && !t->failed) {
		t->failed = true;
		snprintf(t->why, sizeof t->why, "%s: %.*s", crisp_role_name(p->role), CRISP_ERR_MSG_MAX - 1, e->msg);
	}
	if (--t->waiting == 0)
		reload_finish(p->d);
}

static void on_reload_timeout(struct loop *l, void *arg)
{
	struct crispd *d = arg;

	(void)l;
	d->reload.timer = NULL;
	/* The answer callbacks fire with DEADLINE_EXCEEDED on their own. */
}

void sup_reload(struct crispd *d)
{
	struct reload_txn *t = &d->reload;
	struct crisp_config next;
	crisp_err_t err = CRISP_ERR_INIT;

	if (t->active) {
		log_warn("reload already in progress");
		return;
	}
	if (config_load(&d->flags, &next, &err) < 0) {
		log_error("reload: %s; configuration %llu stays", err.msg, (unsigned long long)d->generation);
		return;
	}
	/* crispd's own vote: what it set up at start cannot change live. */
	if (strcmp(next.c->root, d->cfg.c->root) || strcmp(next.c->runroot, d->cfg.c->runroot) ||
	    strcmp(next.c->listen, d->cfg.c->listen) || strcmp(next.frontd_user, d->cfg.frontd_user) ||
	    strcmp(next.imaged_user, d->cfg.imaged_user) || next.sandbox_debug != d->cfg.sandbox_debug ||
	    strcmp(next.c->stream_address, d->cfg.c->stream_address) || next.c->stream_port != d->cfg.c->stream_port) {
		log_error("reload: root, runroot, listen, users, sandbox_debug and the streaming address need a "
			  "restart; "
			  "configuration %llu stays", (unsigned long long)d->generation);
		config_free(&next);
		return;
	}
	memset(t, 0, sizeof *t);
	t->active = true;
	t->generation = d->generation + 1;
	t->next = next;
	t->next.c->generation = t->generation;
	for (int r = ROLE_FRONTD; r < ROLE_MAX; r++) {
		struct role_proc *p = &d->procs[r];
		if (p->state != PS_UP || p->ctl == NULL)
			continue;
		if (ipc_request(p->ctl, IPC_CONFIG_PREPARE, &t->next.c->base, -1, CONFIG_TIMEOUT_MS,
				on_reload_answer, p, NULL, &err) < 0) {
			t->failed = true;
			snprintf(t->why, sizeof t->why, "%s: %.*s", crisp_role_name(r), CRISP_ERR_MSG_MAX - 1, err.msg);
			continue;
		}
		t->members[r] = p->pid;
		t->waiting++;
	}
	if (t->waiting == 0)
		reload_finish(d);
	else
		t->timer = loop_timer_add(d->loop, CONFIG_TIMEOUT_MS + 1000, on_reload_timeout, d);
}
