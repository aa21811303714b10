/*
 * execd: unpacked image layers (see execd/layers.h for the layout and the
 * contract).  imaged sends LAYER_UNPACK with a verified blob; the layer is
 * extracted by a forked child that keeps only what extraction needs, then
 * checked (diff id, chain id), fsync'd and renamed into place here.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "common/util.h"
#include "execd/execd.h"
#include "execd/layers.h"
#include "imaged/unpack.h"

#define DIGEST_SIZE 72
#define HEX_LEN 64
#define TMP_PREFIX ".tmp-"
#define RELEASED_DIR ".released"
#define HOLDS_DIR ".holds"
#define UNPACK_TIMEOUT_MS (30u * 60 * 1000) /* one layer, however large */
#define HOLDS_FILE_MAX (256u * (DIGEST_SIZE + 1))
#define MAX_CHAIN 256

struct waiter {
	struct ipc_chan *ch; /* referenced */
	uint64_t reqid;
	struct waiter *next;
};

/* One running unpack (a child).  Later requests for the same chain wait. */
struct job {
	struct execd_layers *ls;
	char chain[DIGEST_SIZE];
	char diff[DIGEST_SIZE];
	char tmpname[48];
	pid_t pid;
	int pipefd;
	struct loop_timer *timer;
	bool timed_out;
	bool released; /* LAYER_RELEASE arrived while unpacking */
	struct waiter *waiters;
	struct job *next;
};

struct hold {
	char holder[LAYERS_HOLDER_MAX + 1];
	char (*ids)[DIGEST_SIZE];
	size_t n;
	struct hold *next;
};

struct execd_layers {
	struct execd *x;
	char path[4096]; /* <root>/layers */
	int dirfd;
	int relfd;
	int holdfd;
	struct job *jobs;
	struct hold *holds;
	bool debug;
};

/* What the child reports through its pipe (one write, < PIPE_BUF). */
struct child_result {
	int32_t code; /* 0: success */
	int32_t errnum;
	char msg[CRISP_ERR_MSG_MAX];
	char diff_id[DIGEST_SIZE];
	uint64_t uncompressed;
};
_Static_assert(sizeof(struct child_result) <= 4096, "atomic pipe write");

static bool valid_digest(const char *s)
{
	if (!s || strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + HEX_LEN)
		return false;
	for (const char *p = s + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static bool valid_hex_name(const char *s)
{
	if (strlen(s) != HEX_LEN)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static bool valid_holder(const char *h)
{
	size_t n = h ? strlen(h) : 0;

	if (n == 0 || n > LAYERS_HOLDER_MAX || h[0] == '.')
		return false;
	for (; *h; h++)
		if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'z') ||
		      (*h >= 'A' && *h <= 'Z') || *h == '.' || *h == '_' || *h == '-'))
			return false;
	return true;
}

/* OCI chain id: base: diff id; otherwise sha256(parent + " " + diff). */
static void chain_of(const char *parent, const char *diff, char out[DIGEST_SIZE])
{
	uint8_t h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state st;

	if (!parent || !*parent) {
		memcpy(out, diff, DIGEST_SIZE - 1);
		out[DIGEST_SIZE - 1] = '\0';
		return;
	}
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)parent, strlen(parent));
	crypto_hash_sha256_update(&st, (const uint8_t *)" ", 1);
	crypto_hash_sha256_update(&st, (const uint8_t *)diff, strlen(diff));
	crypto_hash_sha256_final(&st, h);
	memcpy(out, "sha256:", 7);
	crisp_hex(h, sizeof h, out + 7);
}

static int fsync_dir(int dirfd)
{
	return fsync(dirfd);
}

static bool present(struct execd_layers *ls, const char *chain)
{
	struct stat st;

	return fstatat(ls->dirfd, chain + 7, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static bool held(struct execd_layers *ls, const char *chain)
{
	for (struct hold *h = ls->holds; h; h = h->next)
		for (size_t i = 0; i < h->n; i++)
			if (strcmp(h->ids[i], chain) == 0)
				return true;
	return false;
}

static struct job *job_find(struct execd_layers *ls, const char *chain)
{
	for (struct job *j = ls->jobs; j; j = j->next)
		if (strcmp(j->chain, chain) == 0)
			return j;
	return NULL;
}

static bool release_marked(struct execd_layers *ls, const char *chain)
{
	return faccessat(ls->relfd, chain + 7, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static int unmark_released(struct execd_layers *ls, const char *chain, crisp_err_t *err)
{
	if (unlinkat(ls->relfd, chain + 7, 0) < 0) {
		if (errno == ENOENT)
			return 0;
		return crisp_error(err, CRISP_INTERNAL, errno, "layers: unmark %s", chain);
	}
	if (fsync_dir(ls->relfd) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "layers: fsync %s", RELEASED_DIR);
	return 0;
}

static int mark_released(struct execd_layers *ls, const char *chain, crisp_err_t *err)
{
	int fd = openat(ls->relfd, chain + 7, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "layers: mark %s released", chain);
	close(fd);
	if (fsync_dir(ls->relfd) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "layers: fsync %s", RELEASED_DIR);
	return 0;
}

/* Delete chain when imaged released it and nobody holds or unpacks it. */
static int maybe_delete(struct execd_layers *ls, const char *chain, crisp_err_t *err)
{
	if (!release_marked(ls, chain) || held(ls, chain) || job_find(ls, chain))
		return 0;
	if (unpack_remove_tree(ls->dirfd, chain + 7, err) < 0)
		return crisp_error_wrap(err, "layers: delete %s", chain);
	if (fsync_dir(ls->dirfd) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "layers: fsync %s", ls->path);
	log_info("layer %s deleted (released, unused)", chain);
	return unmark_released(ls, chain, err);
}

/* ---------------------------------------------------------------- holds */

static void hold_free(struct hold *h)
{
	if (h) {
		free(h->ids);
		free(h);
	}
}

static struct hold **hold_slot(struct execd_layers *ls, const char *holder)
{
	struct hold **pp = &ls->holds;

	for (; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->holder, holder) == 0)
			break;
	return pp;
}

static int holds_write(struct execd_layers *ls, const struct hold *h, crisp_err_t *err)
{
	char tmp[LAYERS_HOLDER_MAX + 16];
	char *buf;
	size_t len = 0;
	int fd;

	buf = malloc(h->n * DIGEST_SIZE + 1);
	if (!buf)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "layers: hold");
	for (size_t i = 0; i < h->n; i++)
		len += (size_t)sprintf(buf + len, "%s\n", h->ids[i]);
	snprintf(tmp, sizeof tmp, ".%s.tmp", h->holder);
	fd = openat(ls->holdfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(buf);
		return crisp_error(err, CRISP_INTERNAL, errno, "layers: hold file for %s", h->holder);
	}
	/* Not flushed: the state database is the durable record of what each
	 * container holds (layers_reconcile at start). */
	if (crisp_write_all(fd, buf, len) < 0) {
		int e = errno;
		close(fd);
		free(buf);
		unlinkat(ls->holdfd, tmp, 0);
		return crisp_error(err, CRISP_INTERNAL, e, "layers: write hold file for %s", h->holder);
	}
	close(fd);
	free(buf);
	if (renameat(ls->holdfd, tmp, ls->holdfd, h->holder) < 0) {
		int e = errno;
		unlinkat(ls->holdfd, tmp, 0);
		return crisp_error(err, CRISP_INTERNAL, e, "layers: commit hold file for %s", h->holder);
	}
	return 0;
}

int layers_hold(struct execd *x, const char *holder, const char *const *chain_ids, size_t n,
		crisp_err_t *err)
{
	struct execd_layers *ls = x->layers;
	struct hold *h, **slot;

	if (!ls)
		return crisp_error(err, CRISP_UNAVAILABLE, 0, "layers: not initialised");
	if (!valid_holder(holder))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "layers: invalid holder");
	if (n == 0 || n > MAX_CHAIN)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "layers: %zu layers to hold", n);
	for (size_t i = 0; i < n; i++) {
		if (!valid_digest(chain_ids[i]))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "layers: invalid chain id at %zu", i);
		if (!present(ls, chain_ids[i]))
			return crisp_error(err, CRISP_NOT_FOUND, 0, "layer %s is not unpacked",
					   chain_ids[i]);
	}
	h = calloc(1, sizeof *h);
	if (!h || !(h->ids = calloc(n, sizeof *h->ids))) {
		free(h);
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "layers: hold");
	}
	crisp_strlcpy(h->holder, holder, sizeof h->holder);
	for (size_t i = 0; i < n; i++)
		crisp_strlcpy(h->ids[i], chain_ids[i], DIGEST_SIZE);
	h->n = n;
	if (holds_write(ls, h, err) < 0) {
		hold_free(h);
		return -1;
	}
	slot = hold_slot(ls, holder);
	if (*slot) {
		struct hold *old = *slot;
		h->next = old->next;
		*slot = h;
		/* Layers the old set held and the new does not may go now. */
		for (size_t i = 0; i < old->n; i++) {
			crisp_err_t e2 = CRISP_ERR_INIT;
			if (maybe_delete(ls, old->ids[i], &e2) < 0)
				log_warn("%s", e2.msg);
		}
		hold_free(old);
	} else {
		h->next = ls->holds;
		ls->holds = h;
	}
	return 0;
}

int layers_unhold(struct execd *x, const char *holder, crisp_err_t *err)
{
	struct execd_layers *ls = x->layers;
	struct hold **slot, *h;

	if (!ls)
		return crisp_error(err, CRISP_UNAVAILABLE, 0, "layers: not initialised");
	if (!valid_holder(holder))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "layers: invalid holder");
	slot = hold_slot(ls, holder);
	if (!*slot)
		return 0;
	if (unlinkat(ls->holdfd, holder, 0) < 0 && errno != ENOENT)
		return crisp_error(err, CRISP_INTERNAL, errno, "layers: drop hold file of %s", holder);
	h = *slot;
	*slot = h->next;
	for (size_t i = 0; i < h->n; i++) {
		crisp_err_t e2 = CRISP_ERR_INIT;
		if (maybe_delete(ls, h->ids[i], &e2) < 0)
			log_warn("%s", e2.msg);
	}
	hold_free(h);
	return 0;
}

int layers_path(struct execd *x, const char *chain_id, char *buf, size_t size, crisp_err_t *err)
{
	struct execd_layers *ls = x->layers;

	if (!ls)
		return crisp_error(err, CRISP_UNAVAILABLE, 0, "layers: not initialised");
	if (!valid_digest(chain_id))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "layers: invalid chain id");
	if (!present(ls, chain_id))
		return crisp_error(err, CRISP_NOT_FOUND, 0, "layer %s is not unpacked", chain_id);
	if ((size_t)snprintf(buf, size, "%s/%s", ls->path, chain_id + 7) >= size)
		return crisp_error(err, CRISP_INTERNAL, ENAMETOOLONG, "layers: path too long");
	return 0;
}

int layers_lowerdir(struct execd *x, const char *const *chain_ids, size_t n, char **out,
		    crisp_err_t *err)
{
	char p[LAYERS_PATH_SIZE];
	size_t cap, len = 0;
	char *s;

	*out = NULL;
	if (n == 0 || n > MAX_CHAIN)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "layers: %zu layers", n);
	cap = n * (LAYERS_PATH_SIZE + 1);
	s = malloc(cap);
	if (!s)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "layers: lowerdir");
	for (size_t i = n; i-- > 0;) {
		if (layers_path(x, chain_ids[i], p, sizeof p, err) < 0) {
			free(s);
			return -1;
		}
		len += (size_t)snprintf(s + len, cap - len, "%s%s", len ? ":" : "", p);
	}
	*out = s;
	return 0;
}

bool layers_present(struct execd *x, const char *chain_id)
{
	return x->layers && valid_digest(chain_id) && present(x->layers, chain_id);
}

size_t layers_unpacking(struct execd *x)
{
	size_t n = 0;

	if (x->layers)
		for (struct job *j = x->layers->jobs; j; j = j->next)
			n++;
	return n;
}

/* --------------------------------------------------------------- answers */

static void answer_ok(struct ipc_chan *ch, uint64_t reqid, const char *chain, const char *diff,
		      uint64_t uncompressed)
{
	Cipc__LayerUnpackAns a = CIPC__LAYER_UNPACK_ANS__INIT;
	crisp_err_t err = CRISP_ERR_INIT;

	a.chain_id = (char *)chain;
	a.diff_id = (char *)diff;
	a.uncompressed = uncompressed;
	if (ipc_answer(ch, reqid, IPC_LAYER_UNPACK_ANS, &a.base, -1, &err) < 0)
		log_warn("LAYER_UNPACK answer: %s", err.msg);
}

static void answer_err(struct ipc_chan *ch, uint64_t reqid, crisp_err_t *e)
{
	if (ipc_answer_error(ch, reqid, e) < 0)
		log_debug("LAYER_UNPACK error answer not sent (peer gone?)");
}

/* ------------------------------------------------------------ the child */

static const int unpack_caps[] = {
	CAP_CHOWN,        /* the image's owners */
	CAP_DAC_OVERRIDE, /* write into directories the layer made read-only */
	CAP_FOWNER,       /* chmod/utimes/xattrs on files of other owners */
	CAP_FSETID,       /* keep setuid/setgid bits through chown */
	CAP_MKNOD,        /* device nodes and overlayfs whiteouts (0/0 char) */
	CAP_SETFCAP,      /* security.capability (file capabilities) */
	CAP_SYS_ADMIN,    /* trusted.* xattrs, e.g. trusted.overlay.opaque */
};

static void child_report(int fd, const struct child_result *r)
{
	ssize_t n;

	do
		n = write(fd, r, sizeof *r);
	while (n < 0 && errno == EINTR);
}

static __attribute__((noreturn)) void child_main(struct execd_layers *ls, const char *tmppath,
						 int blobfd, int dirfd, int wfd,
						 enum unpack_compression comp)
{
	struct child_result r;
	crisp_err_t err = CRISP_ERR_INIT;
	struct unpack_result res;
	const struct sandbox_landlock_rule fs[] = {
		{ .path = tmppath,
		  .access = SANDBOX_FS_RW | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
			    LANDLOCK_ACCESS_FS_MAKE_FIFO },
	};
	const struct sandbox_rlimit rl[] = { { RLIMIT_CORE, 0 } };
	struct sandbox_spec s = {
		.role = "unpack",
		.uid = 0,
		.gid = 0,
		.keep_caps = unpack_caps,
		.nkeep_caps = ARRAY_SIZE(unpack_caps),
		.rlimits = rl,
		.nrlimits = ARRAY_SIZE(rl),
		.landlock = true,
		.fs = fs,
		.nfs = ARRAY_SIZE(fs),
		.seccomp_mode = SANDBOX_SECCOMP_DENY,
		.syscalls = sandbox_unpack_denied,
		.nsyscalls = sandbox_unpack_ndenied,
		.debug = ls->debug,
	};
	int keep[] = { STDERR_FILENO, blobfd, dirfd, wfd };

	memset(&r, 0, sizeof r);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Nothing of execd's (channels, databases, containers' fds) stays. */
	if (crisp_closefrom(3, keep, ARRAY_SIZE(keep)) < 0) {
		crisp_error(&err, CRISP_INTERNAL, errno, "close fds");
		goto fail;
	}
	umask(022);
	if (sandbox_apply(&s, &err) < 0)
		goto fail;
	if (unpack_layer(blobfd, comp, dirfd, NULL, &res, &err) < 0)
		goto fail;
	/* Everything the layer wrote reaches the disk before execd renames it. */
	if (syncfs(dirfd) < 0) {
		crisp_error(&err, CRISP_INTERNAL, errno, "syncfs");
		goto fail;
	}
	crisp_strlcpy(r.diff_id, res.diff_id, sizeof r.diff_id);
	r.uncompressed = res.uncompressed;
	child_report(wfd, &r);
	_exit(0);
fail:
	r.code = err.code ? err.code : CRISP_INTERNAL;
	r.errnum = err.errnum;
	crisp_strlcpy(r.msg, err.msg, sizeof r.msg);
	child_report(wfd, &r);
	_exit(1);
}

/* ---------------------------------------------------------------- jobs */

static void job_free(struct execd_layers *ls, struct job *j)
{
	struct job **pp;

	for (pp = &ls->jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	if (j->timer)
		loop_timer_cancel(ls->x->role.loop, j->timer);
	if (j->pipefd >= 0) {
		loop_del(ls->x->role.loop, j->pipefd);
		close(j->pipefd);
	}
	while (j->waiters) {
		struct waiter *w = j->waiters;
		j->waiters = w->next;
		ipc_chan_unref(w->ch);
		free(w);
	}
	free(j);
}

/* Reap the child; kill it first only when it may still run (timeout,
 * shutdown).  A child that reported or closed its pipe is exiting: it is
 * waited for, never signalled, so a pid reaped and reused elsewhere could
 * not be hit.  (execd must not reap with waitpid(-1).) */
static void job_reap(struct job *j, bool kill_it)
{
	if (j->pid > 0) {
		if (kill_it)
			kill(j->pid, SIGKILL);
		while (waitpid(j->pid, NULL, 0) < 0 && errno == EINTR)
			;
		j->pid = -1;
	}
}

/* The child is done (result read, EOF, or timeout): commit or clean up,
 * answer every waiter, forget the job. */
static void job_finish(struct execd_layers *ls, struct job *j, const struct child_result *r,
		       bool got)
{
	crisp_err_t err = CRISP_ERR_INIT;
	int rc = -1;

	job_reap(j, j->timed_out);
	if (j->timed_out)
		crisp_error(&err, CRISP_DEADLINE_EXCEEDED, 0, "layer %s: unpack timed out after %u s",
			    j->chain, UNPACK_TIMEOUT_MS / 1000);
	else if (!got)
		crisp_error(&err, CRISP_INTERNAL, 0, "layer %s: unpacker died without a result",
			    j->chain);
	else if (r->code != 0)
		crisp_error(&err, r->code, r->errnum, "layer %s: %s", j->chain, r->msg);
	else if (strcmp(r->diff_id, j->diff) != 0)
		crisp_error(&err, CRISP_DATA_LOSS, 0,
			    "layer %s: diff id mismatch: the image config says %s, the layer is %s",
			    j->chain, j->diff, r->diff_id);
	else if (renameat(ls->dirfd, j->tmpname, ls->dirfd, j->chain + 7) < 0)
		crisp_error(&err, CRISP_INTERNAL, errno, "layer %s: rename into place", j->chain);
	else if (fsync_dir(ls->dirfd) < 0)
		crisp_error(&err, CRISP_INTERNAL, errno, "layer %s: fsync %s", j->chain, ls->path);
	else
		rc = 0;

	if (rc < 0) {
		crisp_err_t e2 = CRISP_ERR_INIT;
		if (unpack_remove_tree(ls->dirfd, j->tmpname, &e2) < 0)
			log_error("layer %s: removing partial tree %s: %s", j->chain, j->tmpname,
				  e2.msg);
		log_warn("%s", err.msg);
	} else {
		log_info("layer %s unpacked (%llu bytes)", j->chain,
			 (unsigned long long)r->uncompressed);
	}
	for (struct waiter *w = j->waiters; w; w = w->next) {
		if (rc == 0)
			answer_ok(w->ch, w->reqid, j->chain, j->diff, r->uncompressed);
		else
			answer_err(w->ch, w->reqid, &err);
	}
	{
		bool released = j->released && rc == 0;
		char chain[DIGEST_SIZE];

		memcpy(chain, j->chain, sizeof chain);
		job_free(ls, j);
		if (released) {
			crisp_err_t e3 = CRISP_ERR_INIT;
			if (maybe_delete(ls, chain, &e3) < 0)
				log_warn("%s", e3.msg);
		}
	}
}

static void job_readable(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct job *j = arg;
	struct child_result r;
	ssize_t n;

	(void)l;
	(void)fd;
	(void)events;
	do
		n = read(j->pipefd, &r, sizeof r);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	r.msg[sizeof r.msg - 1] = '\0';
	r.diff_id[sizeof r.diff_id - 1] = '\0';
	job_finish(j->ls, j, &r, n == (ssize_t)sizeof r);
}

static void job_timeout(struct loop *l, void *arg)
{
	struct job *j = arg;

	(void)l;
	j->timer = NULL;
	j->timed_out = true;
	job_finish(j->ls, j, NULL, false);
}

static int job_start(struct execd_layers *ls, struct job *j, int blobfd,
		     enum unpack_compression comp, crisp_err_t *err)
{
	uint8_t rnd[16];
	char hex[33], tmppath[4200];
	int dirfd, p[2];
	pid_t pid;

	randombytes_buf(rnd, sizeof rnd);
	crisp_hex(rnd, sizeof rnd, hex);
	snprintf(j->tmpname, sizeof j->tmpname, TMP_PREFIX "%s", hex);
	if ((size_t)snprintf(tmppath, sizeof tmppath, "%s/%s", ls->path, j->tmpname) >=
	    sizeof tmppath)
		return crisp_error(err, CRISP_INTERNAL, ENAMETOOLONG, "layers: path too long");
	if (mkdirat(ls->dirfd, j->tmpname, 0755) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "layers: mkdir %s", j->tmpname);
	dirfd = openat(ls->dirfd, j->tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0 || pipe2(p, O_CLOEXEC) < 0) {
		int e = errno;
		if (dirfd >= 0)
			close(dirfd);
		unlinkat(ls->dirfd, j->tmpname, AT_REMOVEDIR);
		return crisp_error(err, CRISP_INTERNAL, e, "layers: prepare %s", j->tmpname);
	}
	pid = fork();
	if (pid < 0) {
		int e = errno;
		close(dirfd);
		close(p[0]);
		close(p[1]);
		unlinkat(ls->dirfd, j->tmpname, AT_REMOVEDIR);
		return crisp_error(err, CRISP_INTERNAL, e, "layers: fork");
	}
	if (pid == 0) {
		close(p[0]);
		child_main(ls, tmppath, blobfd, dirfd, p[1], comp);
	}
	close(p[1]);
	close(dirfd);
	j->pid = pid;
	j->pipefd = p[0];
	crisp_set_nonblock(j->pipefd, true);
	if (loop_add(ls->x->role.loop, j->pipefd, EPOLLIN, job_readable, j) < 0) {
		int e = errno;
		crisp_err_t e2 = CRISP_ERR_INIT;
		close(j->pipefd);
		j->pipefd = -1;
		job_reap(j, true);
		unpack_remove_tree(ls->dirfd, j->tmpname, &e2);
		return crisp_error(err, CRISP_INTERNAL, e, "layers: watch unpacker");
	}
	j->timer = loop_timer_add(ls->x->role.loop, UNPACK_TIMEOUT_MS, job_timeout, j);
	if (!j->timer) {
		crisp_err_t e2 = CRISP_ERR_INIT;
		loop_del(ls->x->role.loop, j->pipefd);
		close(j->pipefd);
		j->pipefd = -1;
		job_reap(j, true);
		unpack_remove_tree(ls->dirfd, j->tmpname, &e2);
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "layers: timer");
	}
	return 0;
}

void layers_on_unpack(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	struct execd_layers *ls = x->layers;
	const Cipc__LayerUnpack *u = (const Cipc__LayerUnpack *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	char want[DIGEST_SIZE];
	struct waiter *w;
	struct job *j;

	if (!ls) {
		crisp_error(&err, CRISP_UNAVAILABLE, 0, "layers: not initialised");
		goto fail;
	}
	if (!valid_digest(u->chain_id) || !valid_digest(u->diff_id) ||
	    (u->parent_chain_id[0] && !valid_digest(u->parent_chain_id))) {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0,
			    "LAYER_UNPACK: chain, parent and diff ids must be sha256 digests");
		goto fail;
	}
	if (u->compression < UNPACK_COMPRESSION_ANY || u->compression > UNPACK_COMPRESSION_ZSTD) {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "LAYER_UNPACK: unknown compression %d",
			    u->compression);
		goto fail;
	}
	chain_of(u->parent_chain_id, u->diff_id, want);
	if (strcmp(want, u->chain_id) != 0) {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0,
			    "LAYER_UNPACK: chain id %s does not follow from parent %s and diff id %s",
			    u->chain_id, u->parent_chain_id[0] ? u->parent_chain_id : "(none)",
			    u->diff_id);
		goto fail;
	}
	if (u->parent_chain_id[0] && !present(ls, u->parent_chain_id)) {
		crisp_error(&err, CRISP_FAILED_PRECONDITION, 0,
			    "LAYER_UNPACK: parent layer %s is not unpacked", u->parent_chain_id);
		goto fail;
	}
	if (present(ls, u->chain_id)) {
		/* Already here: the diff id is part of the chain id, and the
		 * chain id was checked against the measured diff id when the
		 * layer was committed.  imaged references it again. */
		if (unmark_released(ls, u->chain_id, &err) < 0)
			goto fail;
		answer_ok(ch, m->hdr.reqid, u->chain_id, u->diff_id, 0);
		return;
	}
	w = calloc(1, sizeof *w);
	if (!w) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "layers: waiter");
		goto fail;
	}
	w->ch = ipc_chan_ref(ch);
	w->reqid = m->hdr.reqid;
	j = job_find(ls, u->chain_id);
	if (j) {
		/* Someone is unpacking it: wait for that result. */
		if (unmark_released(ls, u->chain_id, &err) < 0)
			goto fail_w;
		j->released = false;
		w->next = j->waiters;
		j->waiters = w;
		return;
	}
	if (unmark_released(ls, u->chain_id, &err) < 0)
		goto fail_w;
	if (m->fd < 0) {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "LAYER_UNPACK: no blob fd");
		goto fail_w;
	}
	j = calloc(1, sizeof *j);
	if (!j) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "layers: job");
		goto fail_w;
	}
	j->ls = ls;
	j->pipefd = -1;
	j->pid = -1;
	crisp_strlcpy(j->chain, u->chain_id, sizeof j->chain);
	crisp_strlcpy(j->diff, u->diff_id, sizeof j->diff);
	if (job_start(ls, j, m->fd, (enum unpack_compression)u->compression, &err) < 0) {
		free(j);
		goto fail_w;
	}
	j->waiters = w;
	j->next = ls->jobs;
	ls->jobs = j;
	log_info("layer %s: unpacking blob %s", u->chain_id,
		 u->blob_digest[0] ? u->blob_digest : "?");
	return;
fail_w:
	ipc_chan_unref(w->ch);
	free(w);
fail:
	answer_err(ch, m->hdr.reqid, &err);
}

void layers_on_release(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	struct execd_layers *ls = x->layers;
	const Cipc__LayerRelease *r = (const Cipc__LayerRelease *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;

	if (!ls) {
		crisp_error(&err, CRISP_UNAVAILABLE, 0, "layers: not initialised");
		goto fail;
	}
	for (size_t i = 0; i < r->n_chain_ids; i++)
		if (!valid_digest(r->chain_ids[i])) {
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0,
				    "LAYER_RELEASE: chain id %zu is not a sha256 digest", i);
			goto fail;
		}
	for (size_t i = 0; i < r->n_chain_ids; i++) {
		const char *c = r->chain_ids[i];
		struct job *j = job_find(ls, c);

		if (j) {
			j->released = true;
			if (mark_released(ls, c, &err) < 0)
				goto fail;
			continue;
		}
		if (!present(ls, c))
			continue;
		if (mark_released(ls, c, &err) < 0 || maybe_delete(ls, c, &err) < 0)
			goto fail;
	}
	{
		Cipc__Empty e = CIPC__EMPTY__INIT;
		if (ipc_answer(ch, m->hdr.reqid, IPC_LAYER_RELEASE_OK, &e.base, -1, &err) < 0)
			log_warn("LAYER_RELEASE answer: %s", err.msg);
	}
	return;
fail:
	log_warn("%s", err.msg);
	if (ipc_answer_error(ch, m->hdr.reqid, &err) < 0)
		log_debug("LAYER_RELEASE error answer not sent");
}

/* ------------------------------------------------------------ lifecycle */

static int open_sub(struct execd_layers *ls, const char *name, crisp_err_t *err)
{
	int fd;

	if (mkdirat(ls->dirfd, name, 0700) < 0 && errno != EEXIST)
		return crisp_error(err, CRISP_INTERNAL, errno, "layers: mkdir %s/%s", ls->path, name);
	fd = openat(ls->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "layers: open %s/%s", ls->path, name);
	return fd;
}

/* Read one holder's file; a damaged one is dropped (logged). */
static void load_hold(struct execd_layers *ls, const char *name)
{
	char buf[HOLDS_FILE_MAX + 1];
	struct hold *h;
	ssize_t n;
	size_t cnt = 0;
	int fd;

	fd = openat(ls->holdfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof buf);
	close(fd);
	if (n <= 0 || (size_t)n > HOLDS_FILE_MAX)
		goto bad;
	buf[n] = '\0';
	for (ssize_t i = 0; i < n; i++)
		cnt += buf[i] == '\n';
	if (cnt == 0 || cnt > MAX_CHAIN)
		goto bad;
	h = calloc(1, sizeof *h);
	if (!h || !(h->ids = calloc(cnt, sizeof *h->ids))) {
		free(h);
		return;
	}
	crisp_strlcpy(h->holder, name, sizeof h->holder);
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!valid_digest(line) || h->n == cnt) {
			hold_free(h);
			goto bad;
		}
		crisp_strlcpy(h->ids[h->n++], line, DIGEST_SIZE);
	}
	h->next = ls->holds;
	ls->holds = h;
	return;
bad:
	log_warn("layers: hold file %s is damaged; dropped", name);
	unlinkat(ls->holdfd, name, 0);
}

static void recover(struct execd_layers *ls)
{
	crisp_err_t err = CRISP_ERR_INIT;
	struct dirent *e;
	DIR *d;
	int fd;

	/* Unpacks a crash interrupted. */
	fd = openat(ls->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && (d = fdopendir(fd))) {
		while ((e = readdir(d)))
			if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
				if (unpack_remove_tree(ls->dirfd, e->d_name, &err) < 0)
					log_error("layers: %s", err.msg);
				else
					log_info("layers: removed interrupted unpack %s", e->d_name);
			}
		closedir(d);
	} else if (fd >= 0) {
		close(fd);
	}
	/* Holds. */
	fd = openat(ls->holdfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && (d = fdopendir(fd))) {
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.') {
				if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
					unlinkat(ls->holdfd, e->d_name, 0); /* tmp of a crash */
				continue;
			}
			if (valid_holder(e->d_name))
				load_hold(ls, e->d_name);
		}
		closedir(d);
	} else if (fd >= 0) {
		close(fd);
	}
}

/* Released layers nobody holds (at start, once holds are reconciled). */
static void gc_released(struct execd_layers *ls)
{
	crisp_err_t err = CRISP_ERR_INIT;
	struct dirent *e;
	DIR *d;
	int fd;

	fd = openat(ls->relfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && (d = fdopendir(fd))) {
		char chain[DIGEST_SIZE];
		while ((e = readdir(d))) {
			if (!valid_hex_name(e->d_name))
				continue;
			snprintf(chain, sizeof chain, "sha256:%.64s", e->d_name);
			if (!present(ls, chain)) {
				unlinkat(ls->relfd, e->d_name, 0);
				continue;
			}
			if (maybe_delete(ls, chain, &err) < 0)
				log_error("%s", err.msg);
		}
		closedir(d);
	} else if (fd >= 0) {
		close(fd);
	}
}

static bool same_hold(const struct hold *h, const struct layers_holder *w)
{
	if (h == NULL || h->n != w->n)
		return false;
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(h->ids[i], w->chain_ids[i]) != 0)
			return false;
	return true;
}

int layers_reconcile(struct execd *x, const struct layers_holder *w, size_t n, crisp_err_t *err)
{
	struct execd_layers *ls = x->layers;

	if (!ls)
		return crisp_error(err, CRISP_UNAVAILABLE, 0, "layers: not initialised");
	/* holders the record lists: held as it says */
	for (size_t i = 0; i < n; i++) {
		crisp_err_t e2 = CRISP_ERR_INIT;
		/* n == 0: its record is unreadable; it keeps what it holds */
		if (w[i].n == 0 || !valid_holder(w[i].holder) || same_hold(*hold_slot(ls, w[i].holder), &w[i]))
			continue;
		if (layers_hold(x, w[i].holder, w[i].chain_ids, w[i].n, &e2) < 0)
			log_warn("layers: %s cannot hold its layers again: %s", w[i].holder, e2.msg);
		else
			log_info("layers: hold of %s restored from its record", w[i].holder);
	}
	/* the others: gone (their record is the authority) */
	for (struct hold *h = ls->holds, *next; h; h = next) {
		bool listed = false;
		next = h->next;
		for (size_t i = 0; i < n && !listed; i++)
			listed = strcmp(w[i].holder, h->holder) == 0;
		if (!listed) {
			crisp_err_t e2 = CRISP_ERR_INIT;
			char holder[LAYERS_HOLDER_MAX + 1];
			crisp_strlcpy(holder, h->holder, sizeof holder);
			if (layers_unhold(x, holder, &e2) < 0)
				log_warn("layers: %s", e2.msg);
			else
				log_info("layers: dropped the hold of %s (no such container)", holder);
		}
	}
	gc_released(ls);
	return 0;
}

int layers_init(struct execd *x, crisp_err_t *err)
{
	struct execd_layers *ls;

	ls = calloc(1, sizeof *ls);
	if (!ls)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "layers");
	ls->x = x;
	ls->dirfd = ls->relfd = ls->holdfd = -1;
	ls->debug = x->args.sandbox_debug;
	if ((size_t)snprintf(ls->path, sizeof ls->path, "%s/layers", x->args.root) >=
	    sizeof ls->path) {
		free(ls);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, ENAMETOOLONG, "layers: root too long");
	}
	if (crisp_mkdir_p(ls->path, 0700, 0, 0) < 0) {
		int e = errno;
		free(ls);
		return crisp_error(err, CRISP_INTERNAL, e, "layers: mkdir %s", ls->path);
	}
	ls->dirfd = open(ls->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ls->dirfd < 0) {
		int e = errno;
		free(ls);
		return crisp_error(err, CRISP_INTERNAL, e, "layers: open %s", ls->path);
	}
	if (fchmod(ls->dirfd, 0700) < 0 ||
	    (ls->relfd = open_sub(ls, RELEASED_DIR, err)) < 0 ||
	    (ls->holdfd = open_sub(ls, HOLDS_DIR, err)) < 0) {
		if (!err->msg[0])
			crisp_error(err, CRISP_INTERNAL, errno, "layers: chmod %s", ls->path);
		if (ls->relfd >= 0)
			close(ls->relfd);
		close(ls->dirfd);
		free(ls);
		return -1;
	}
	x->layers = ls;
	recover(ls);
	return 0;
}

void layers_close(struct execd *x)
{
	struct execd_layers *ls = x->layers;

	if (!ls)
		return;
	while (ls->jobs) {
		struct job *j = ls->jobs;
		crisp_err_t e = CRISP_ERR_INIT;
		job_reap(j, true);
		unpack_remove_tree(ls->dirfd, j->tmpname, &e);
		job_free(ls, j);
	}
	while (ls->holds) {
		struct hold *h = ls->holds;
		ls->holds = h->next;
		hold_free(h);
	}
	close(ls->holdfd);
	close(ls->relfd);
	close(ls->dirfd);
	free(ls);
	x->layers = NULL;
}
