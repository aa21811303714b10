/*
 * execd/ctr_life: CreateContainer, StartContainer, StopContainer,
 * RemoveContainer, exits and their recovery after an execd restart.
 *
 * Lifecycle (execd/state.h is the table):
 *   create  validate + admit (runtime policy), reserve the name, ask imaged
 *           to resolve and pin the image, hold its layers, mount the
 *           overlay rootfs, check the spec builds (user, command), make the
 *           cgroups, commit.  Any failure rolls back everything, then answers.
 *   start   STARTING, fork the monitor (ctr_monitor.c) which launches the
 *           process; its report (pid, start times) makes it RUNNING.
 *   exit    the monitor's pidfd turns readable after it wrote the exit
 *           record: EXITED with code, time and reason (OOMKilled from the
 *           memory cgroup); no record: MONITOR_LOST (the process, if still
 *           there, is killed: nothing could log or reap it).
 *   stop    the image's stop signal (or SIGTERM), SIGKILL at the timeout;
 *           answered at the exit, never blocking the loop.
 *   remove  SIGKILL if running, then unmount, delete the writable layer,
 *           the cgroups, the holds and the pin, then the record.
 * Every cleanup step is idempotent and keyed by id, so recovery repeats
 * them safely.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "execd/containers.h"
#include "execd/ctr_internal.h"
#include "execd/ctr_oci.h"
#include "execd/layers.h"
#include "frontd/validate.h"
#include "ipc/loop.h"

#define IMAGE_TIMEOUT_MS 60000
#define OVERLAYFS_MAGIC 0x794c7630

void ctr_answer_error(struct ipc_chan *ch, uint64_t reqid, const crisp_err_t *e)
{
	if (ipc_answer_error(ch, reqid, e) < 0)
		log_debug("error answer not sent (frontd gone?)");
}

static struct loop *xloop(struct execd *x)
{
	return x->role.loop;
}

/* ---- paths and records ---- */

int ctr_root_dir(struct execd *x, const char *id, const char *leaf, char *out, size_t n)
{
	int r = leaf ? snprintf(out, n, "%s/%s/%s", x->ctrs->root, id, leaf) : snprintf(out, n, "%s/%s", x->ctrs->root, id);
	return r < 0 || (size_t)r >= n ? -1 : 0;
}

int ctr_run_dir(struct execd *x, const char *id, const char *leaf, char *out, size_t n)
{
	int r = leaf ? snprintf(out, n, "%s/%s/%s", x->ctrs->run, id, leaf) : snprintf(out, n, "%s/%s", x->ctrs->run, id);
	return r < 0 || (size_t)r >= n ? -1 : 0;
}

static void *read_small(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	void *buf;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size > max || (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	if (crisp_read_all(fd, buf, (size_t)st.st_size) < 0) {
		close(fd);
		free(buf);
		return NULL;
	}
	close(fd);
	((char *)buf)[st.st_size] = '\0';
	*len = (size_t)st.st_size;
	return buf;
}

/* The record of the image a container runs: in its state row; a container
 * created before the row kept it has it in <root>/containers/<id>/image.pb. */
Cipc__ImageResolved *ctr_image_load(struct execd *x, const char *id)
{
	char path[PATH_MAX];
	crisp_err_t err = CRISP_ERR_INIT;
	size_t len = 0;
	void *buf = NULL;
	Cipc__ImageResolved *img;
	int r = state_ctr_image_rec(x->pods.st, id, &buf, &len, &err);

	if (r < 0)
		return NULL;
	if (r == 0 &&
	    (ctr_root_dir(x, id, "image.pb", path, sizeof path) < 0 || (buf = read_small(path, 1 << 20, &len)) == NULL))
		return NULL;
	img = cipc__image_resolved__unpack(NULL, len, buf);
	free(buf);
	return img;
}

/* The cgroup parent is the pod's (a container row always has its pod's);
 * the file is what containers created before kept, for a row that is gone. */
int ctr_cgroups(struct execd *x, const char *id, struct ctr_cg *cg, crisp_err_t *err)
{
	char path[PATH_MAX], parent[4096];
	int r = state_ctr_cgroup_parent(x->pods.st, id, parent, sizeof parent, err);

	if (r < 0)
		return -1;
	if (r == 0) {
		size_t len = 0;
		char *p = NULL;
		if (ctr_root_dir(x, id, "cgroup_parent", path, sizeof path) == 0)
			p = read_small(path, sizeof parent - 1, &len);
		crisp_strlcpy(parent, p ? p : "", sizeof parent);
		free(p);
	}
	return ctr_cgroup_paths(parent, id, cg, err);
}

/* ---- processes ---- */

int ctr_signal(pid_t pid, uint64_t start, int sig)
{
	int fd;

	if (pid <= 0)
		return -1;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -1;
	/* the pidfd pins the process: check it is still the one recorded */
	if (start != 0 && ctr_proc_start(pid) != start) {
		close(fd);
		return -1;
	}
	int r = (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
	close(fd);
	return r;
}

struct reap {
	struct execd *x;
	pid_t pid;
	int fd;
};

static void on_reap(struct loop *l, int fd, uint32_t ev, void *arg)
{
	struct reap *r = arg;

	(void)ev;
	loop_del(l, fd);
	close(fd);
	while (waitpid(r->pid, NULL, __WALL) < 0 && errno == EINTR)
		;
	free(r);
}

void ctr_reap_later(struct execd *x, pid_t pid)
{
	struct reap *r = calloc(1, sizeof *r);
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (r == NULL || fd < 0 || loop_add(xloop(x), fd, EPOLLIN, on_reap, r) < 0) {
		/* cannot watch it: wait now (it is short-lived) */
		if (fd >= 0)
			close(fd);
		free(r);
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
			;
		return;
	}
	r->x = x;
	r->pid = pid;
	r->fd = fd;
}

/* ---- teardown (idempotent) ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_DP || flag == FTW_D)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

/* Delete a tree a container wrote: never follows a symlink, never crosses
 * into another filesystem (a mount left inside stays, and is reported). */
static void rm_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return;
	(void)nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (lstat(path, &st) == 0)
		log_warn("%s stays (not empty after removal)", path);
}

static void unpin_done(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	(void)ch;
	(void)ans;
	if (e != NULL)
		log_warn("container %.12s: image unpin: %s", (char *)arg, e->msg);
	free(arg);
}

static void image_unpin(struct execd *x, const char *id)
{
	struct ipc_chan *im = role_peer(&x->role, ROLE_IMAGED);
	Cipc__ImageUnpin u = CIPC__IMAGE_UNPIN__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	char *tag;

	if (im == NULL || (tag = strdup(id)) == NULL) {
		log_warn("container %.12s: image not unpinned (imaged unavailable)", id);
		return;
	}
	u.holder = (char *)id;
	if (ipc_request(im, IPC_IMAGE_UNPIN, &u.base, -1, IMAGE_TIMEOUT_MS, unpin_done, tag, NULL, &err) < 0) {
		log_warn("container %.12s: image unpin: %s", id, err.msg);
		free(tag);
	}
}

static void pins_synced(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	(void)ch;
	(void)ans;
	(void)arg;
	if (e != NULL)
		log_warn("image pins not reconciled with imaged: %s", e->msg);
}

void ctrs_imaged_up(struct execd *x)
{
	struct ipc_chan *im = role_peer(&x->role, ROLE_IMAGED);
	struct state_ctr_filter creating = { .state = CTR_CREATING, .cri_state = -1 };
	struct state_ctr **v = NULL, **vc = NULL;
	size_t nv = 0, nc = 0, n = 0;
	Cipc__ImagePin *pins = NULL, **pp = NULL;
	crisp_err_t err = CRISP_ERR_INIT;

	if (im == NULL)
		return;
	/* Every row (a CREATING one too: its pin is made before its commit)
	 * whose image is known.  A create that is still resolving on a channel
	 * that just went away fails, and unpins, by itself. */
	if (state_ctr_list(x->pods.st, NULL, &v, &nv, &err) < 0 ||
	    state_ctr_list(x->pods.st, &creating, &vc, &nc, &err) < 0) {
		log_error("image pins not reconciled: %s", err.msg);
		goto out;
	}
	pins = calloc(nv + nc + 1, sizeof *pins);
	pp = calloc(nv + nc + 1, sizeof *pp);
	if (pins == NULL || pp == NULL) {
		log_error("image pins not reconciled: out of memory");
		goto out;
	}
	for (size_t i = 0; i < nv + nc; i++) {
		const struct state_ctr *c = i < nv ? v[i] : vc[i - nv];
		if (c->image_id == NULL || c->image_id[0] == '\0')
			continue;
		cipc__image_pin__init(&pins[n]);
		pins[n].holder = (char *)c->id;
		pins[n].image_id = c->image_id;
		pp[n] = &pins[n];
		n++;
	}
	Cipc__ImagePinsSync sync = CIPC__IMAGE_PINS_SYNC__INIT;
	sync.pins = pp;
	sync.n_pins = n;
	if (ipc_request(im, IPC_IMAGE_PINS_SYNC, &sync.base, -1, IMAGE_TIMEOUT_MS, pins_synced, NULL, NULL, &err) < 0)
		log_warn("image pins not reconciled: %s", err.msg);
out:
	free(pins);
	free(pp);
	state_ctr_list_free(v, nv);
	state_ctr_list_free(vc, nc);
}

/* An external runtime's state of the container (ctr_oci.h), before its
 * run dir and cgroups go: the runtime removes what it made itself. */
static void oci_teardown(struct execd *x, const char *id)
{
	char path[PATH_MAX], name[64] = "", root[PATH_MAX];
	crisp_err_t err = CRISP_ERR_INIT;
	const char *rt;
	int fd;

	if (ctr_run_dir(x, id, "oci/handler", path, sizeof path) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return;
	ssize_t n = read(fd, name, sizeof name - 1);
	close(fd);
	name[n > 0 ? n : 0] = '\0';
	if ((rt = pods_handler_path(&x->pods, name)) == NULL) {
		log_warn("container %.12s: runtime handler \"%s\" is no longer configured: its state is left", id, name);
		return;
	}
	snprintf(root, sizeof root, "%s/runtimes/%s", x->args.runroot, name);
	if (ctr_oci_delete(rt, root, id, &err) < 0)
		log_warn("container %.12s: %s", id, err.msg);
}

static void ctr_teardown(struct execd *x, const char *id, bool unpin)
{
	char path[PATH_MAX];
	struct ctr_cg cg;
	crisp_err_t err = CRISP_ERR_INIT;

	oci_teardown(x, id);

	if (ctr_run_dir(x, id, "rootfs", path, sizeof path) == 0) {
		(void)umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
		(void)rmdir(path);
	}
	if (ctr_run_dir(x, id, NULL, path, sizeof path) == 0)
		rm_tree(path);
	if (ctr_cgroups(x, id, &cg, &err) == 0) {
		if (ctr_cgroup_kill_all(&cg) > 0)
			usleep(20000); /* let them die before rmdir */
		ctr_cgroup_remove(&cg);
	}
	if (ctr_root_dir(x, id, NULL, path, sizeof path) == 0)
		rm_tree(path);
	if (layers_unhold(x, id, &err) < 0)
		log_warn("container %.12s: layers: %s", id, err.msg);
	if (unpin)
		image_unpin(x, id);
}

/* ---- watching monitors ---- */

struct answer_arg {
	struct ipc_chan *ch;  /* NULL: nobody to answer */
	uint64_t reqid;
	uint32_t type; /* IPC_CTR_STOP_ANS or IPC_CTR_REMOVE_ANS */
	void (*done)(void *arg); /* a removal: called once it ended, however */
	void *done_arg;
};

static void pod_ctr_exited(struct execd *x, const char *id, void *arg);

struct ctr_watch *ctr_watch_find(struct execd *x, const char *id)
{
	for (struct ctr_watch *w = x->ctrs->watches; w; w = w->next)
		if (!strcmp(w->id, id))
			return w;
	return NULL;
}

static void watch_unlink(struct execd *x, struct ctr_watch *w)
{
	for (struct ctr_watch **pp = &x->ctrs->watches; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	if (w->kill_timer)
		loop_timer_cancel(xloop(x), w->kill_timer);
	w->kill_timer = NULL;
	if (w->mpidfd >= 0) {
		loop_del(xloop(x), w->mpidfd);
		close(w->mpidfd);
	}
}

/* The monitor is gone: record the exit, tell the waiters. */
static void watch_exited(struct execd *x, struct ctr_watch *w)
{
	char dir[PATH_MAX];
	struct ctr_event_data d;
	crisp_err_t err = CRISP_ERR_INIT;
	int64_t fin = 0;
	int32_t code = 0;
	int sig = 0;
	struct ctr_cg cg;

	watch_unlink(x, w);
	if (w->own_child)
		while (waitpid(w->mpid, NULL, __WALL | WNOHANG) < 0 && errno == EINTR)
			;
	memset(&d, 0, sizeof d);
	if (ctr_run_dir(x, w->id, NULL, dir, sizeof dir) == 0 && ctr_exit_read(dir, &code, &fin, &sig) == 0) {
		d.exit_code = code;
		d.at_ns = fin;
		if (ctr_cgroups(x, w->id, &cg, &err) == 0) {
			if (ctr_cgroup_oom_killed(&cg))
				d.reason = "OOMKilled";
			/* With a PID namespace of its own the kernel ended the rest
			 * with the init; sharing the host's or the pod's, it did not. */
			int n = ctr_cgroup_kill_all(&cg);
			if (n > 0)
				log_info("container %.12s: %d process(es) left after its init ended: killed", w->id, n);
		}
		crisp_error_clear(&err);
		if (state_container_transition(x->pods.st, w->id, CTR_EV_EXITED, &d, &err) < 0)
			log_warn("container %.12s: exit: %s", w->id, err.msg);
		else
			log_info("container %.12s exited with %d", w->id, code);
	} else {
		/* Nothing can reap or log it any more: end it. */
		ctr_signal(w->pid, w->pid_start, SIGKILL);
		d.message = "the container's monitor exited without an exit record";
		if (state_container_transition(x->pods.st, w->id, CTR_EV_MONITOR_LOST, &d, &err) < 0)
			log_warn("container %.12s: monitor lost: %s", w->id, err.msg);
		else
			log_warn("container %.12s: monitor lost", w->id);
	}
	struct ctr_waiter *wt = w->waiters;
	char id[STATE_ID_LEN + 1];
	crisp_strlcpy(id, w->id, sizeof id);
	free(w);
	while (wt) {
		struct ctr_waiter *n = wt->next;
		wt->fn(x, id, wt->arg);
		free(wt);
		wt = n;
	}
}

static void on_monitor(struct loop *l, int fd, uint32_t ev, void *arg)
{
	struct ctr_watch *w = arg;

	(void)l;
	(void)fd;
	(void)ev;
	watch_exited(w->x, w);
}

static struct ctr_watch *watch_add(struct execd *x, const char *id, const char *pod_id, pid_t mpid, pid_t pid,
				   uint64_t pid_start, bool own, bool pid_pod)
{
	struct ctr_watch *w = calloc(1, sizeof *w);

	if (w == NULL)
		return NULL;
	w->x = x;
	crisp_strlcpy(w->id, id, sizeof w->id);
	crisp_strlcpy(w->pod_id, pod_id, sizeof w->pod_id);
	w->mpid = mpid;
	w->pid = pid;
	w->pid_start = pid_start;
	w->own_child = own;
	w->pid_pod = pid_pod;
	w->mpidfd = (int)syscall(SYS_pidfd_open, mpid, 0);
	if (w->mpidfd < 0 || loop_add(xloop(x), w->mpidfd, EPOLLIN, on_monitor, w) < 0) {
		if (w->mpidfd >= 0)
			close(w->mpidfd);
		free(w);
		return NULL;
	}
	w->next = x->ctrs->watches;
	x->ctrs->watches = w;
	return w;
}

static void drop_answer(void *arg)
{
	struct answer_arg *a = arg;

	if (a->ch)
		ipc_chan_unref(a->ch);
	free(a);
}

static void drop_pod_wait(void *arg);

static int watch_wait(struct ctr_watch *w, ctr_exit_fn fn, void *arg)
{
	struct ctr_waiter *wt = calloc(1, sizeof *wt);

	if (wt == NULL)
		return -1;
	wt->fn = fn;
	wt->arg = arg;
	wt->drop = fn == pod_ctr_exited ? drop_pod_wait : drop_answer;
	wt->next = w->waiters;
	w->waiters = wt;
	return 0;
}

static void on_kill_timer(struct loop *l, void *arg)
{
	struct ctr_watch *w = arg;

	(void)l;
	w->kill_timer = NULL;
	log_info("container %.12s: stop timeout, SIGKILL", w->id);
	ctr_signal(w->pid, w->pid_start, SIGKILL);
}

/* Send sig now and SIGKILL after timeout_ms (0: SIGKILL now). */
static void watch_kill(struct execd *x, struct ctr_watch *w, int sig, uint64_t timeout_ms)
{
	if (timeout_ms == 0 || sig == SIGKILL) {
		ctr_signal(w->pid, w->pid_start, SIGKILL);
		return;
	}
	ctr_signal(w->pid, w->pid_start, sig);
	if (w->kill_timer == NULL)
		w->kill_timer = loop_timer_add(xloop(x), timeout_ms, on_kill_timer, w);
	if (w->kill_timer == NULL)
		ctr_signal(w->pid, w->pid_start, SIGKILL);
}

/* ---- CreateContainer ---- */

struct create_op {
	struct execd *x;
	struct ipc_chan *ch;
	uint64_t reqid;
	char id[STATE_ID_LEN + 1];
	Cipc__CtrCreate *w;      /* owned */
	struct state_pod *pod;
};

static void create_free(struct create_op *op)
{
	if (op->w)
		protobuf_c_message_free_unpacked(&op->w->base, NULL);
	state_pod_free(op->pod);
	ipc_chan_unref(op->ch);
	free(op);
}

static void create_fail(struct create_op *op, const crisp_err_t *e, bool unpin)
{
	crisp_err_t e2 = CRISP_ERR_INIT;

	ctr_teardown(op->x, op->id, unpin);
	if (state_ctr_abort(op->x->pods.st, op->id, &e2) < 0)
		log_error("container %.12s: abort: %s", op->id, e2.msg);
	ctr_answer_error(op->ch, op->reqid, e);
	create_free(op);
}

static int mount_rootfs(struct execd *x, const char *id, const Cipc__ImageResolved *img, const struct state_pod *pod,
			const Runtime__V1__ContainerConfig *cfg, crisp_err_t *err)
{
	char rootfs[PATH_MAX], upper[PATH_MAX], work[PATH_MAX];
	char proc[LSM_LABEL_MAX], label[LSM_LABEL_MAX], aa[LSM_PROFILE_MAX];
	char *lower = NULL, *opts = NULL;
	struct statfs sfs;

	if (ctr_run_dir(x, id, "rootfs", rootfs, sizeof rootfs) < 0 || ctr_root_dir(x, id, "upper", upper, sizeof upper) < 0 ||
	    ctr_root_dir(x, id, "work", work, sizeof work) < 0)
		return crisp_error(err, CRISP_INTERNAL, 0, "container paths too long");
	if (crisp_mkdir_p(rootfs, 0755, 0, 0) < 0 || crisp_mkdir_p(work, 0700, 0, 0) < 0 ||
	    crisp_mkdir_p(upper, 0755, 0, 0) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "container directories");
	if (statfs(rootfs, &sfs) == 0 && sfs.f_type == OVERLAYFS_MAGIC)
		return 0; /* mounted already */
	/* the SELinux mount label ("" without SELinux) as context= */
	if (ctr_lsm_labels(x, pod, cfg, proc, label, aa, err) < 0)
		return -1;
	if (layers_lowerdir(x, (const char *const *)img->chain_ids, img->n_chain_ids, &lower, err) < 0)
		return -1;
	size_t n = strlen(lower) + strlen(upper) + strlen(work) + strlen(label) + 80;
	if ((opts = malloc(n)) == NULL) {
		free(lower);
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
	}
	snprintf(opts, n, "lowerdir=%s,upperdir=%s,workdir=%s%s%s%s", lower, upper, work, label[0] ? ",context=\"" : "",
		 label, label[0] ? "\"" : "");
	free(lower);
	if (strlen(opts) >= 4096) {
		free(opts);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "image has too many layers for one overlay mount");
	}
	if (mount("overlay", rootfs, "overlay", MS_NODEV, opts) < 0) {
		int e = errno;
		free(opts);
		return crisp_error(err, CRISP_INTERNAL, e, "mount the overlay rootfs");
	}
	free(opts);
	return 0;
}

static void on_resolved(struct ipc_chan *ich, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	struct create_op *op = arg;
	struct execd *x = op->x;
	const Runtime__V1__ContainerConfig *cfg = op->w->req->config;
	crisp_err_t err = CRISP_ERR_INIT;
	Cipc__ImageResolved *img = NULL;
	char path[PATH_MAX];
	uint8_t *buf = NULL;
	struct ctr_built b;
	struct state_ctr *rec = NULL;
	struct ctr_cg cg;

	(void)ich;
	if (e != NULL) {
		err = *e;
		crisp_error_wrap(&err, "image %.200s", cfg->image->image);
		err.code = e->code;
		create_fail(op, &err, e->code != CRISP_NOT_FOUND);
		return;
	}
	img = (Cipc__ImageResolved *)ans->pb;
	if (img->n_chain_ids == 0) {
		crisp_error(&err, CRISP_FAILED_PRECONDITION, 0, "image %.200s has no layers", cfg->image->image);
		goto fail;
	}
	/* the record of what this container runs */
	size_t len = protobuf_c_message_get_packed_size(&img->base);
	if ((buf = malloc(len + 1)) == NULL)
		goto oom;
	protobuf_c_message_pack(&img->base, buf);
	if (ctr_root_dir(x, op->id, NULL, path, sizeof path) < 0 || crisp_mkdir_p(path, 0700, 0, 0) < 0) {
		crisp_error(&err, CRISP_INTERNAL, errno, "container directory");
		goto fail;
	}
	const char *cgp = op->pod->cgroup_parent ? op->pod->cgroup_parent : "";
	if (state_ctr_set_image(x->pods.st, op->id, img->image_id, buf, len, &err) < 0)
		goto fail;
	if (layers_hold(x, op->id, (const char *const *)img->chain_ids, img->n_chain_ids, &err) < 0 ||
	    mount_rootfs(x, op->id, img, op->pod, cfg, &err) < 0)
		goto fail;
	/* check now what start will need: user, command, mounts */
	if (state_ctr_get(x->pods.st, op->id, &rec, &err) < 0)
		goto fail;
	if (ctr_run_dir(x, op->id, "rootfs", path, sizeof path) < 0)
		goto fail;
	/* cgroups before the build, which reads their paths */
	if (ctr_cgroup_paths(cgp, op->id, &cg, &err) < 0 ||
	    ctr_cgroup_create(&cg, cfg->linux ? cfg->linux->resources : NULL, &err) < 0)
		goto fail;
	if (ctr_build(x, rec, op->pod, cfg, img, path, 0, NULL, 0, &b, &err) < 0)
		goto fail;
	ctr_built_free(&b);
	if (state_ctr_commit(x->pods.st, op->id, NULL, &err) < 0)
		goto fail;
	log_info("container %.12s (%s in pod %.12s) created from %s", op->id, cfg->metadata->name, op->pod->id,
		 img->image_id);
	{
		Cipc__CtrCreateAns w = CIPC__CTR_CREATE_ANS__INIT;
		Runtime__V1__CreateContainerResponse rs = RUNTIME__V1__CREATE_CONTAINER_RESPONSE__INIT;
		rs.container_id = op->id;
		w.resp = &rs;
		pods_answer(op->ch, op->reqid, IPC_CTR_CREATE_ANS, &w.base);
	}
	free(buf);
	state_ctr_free(rec);
	create_free(op);
	return;
oom:
	crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
fail:
	free(buf);
	state_ctr_free(rec);
	create_fail(op, &err, true);
}

/* Admission: what only execd decides, against the runtime policy. */
static int admit(struct execd *x, const struct state_pod *pod, const Runtime__V1__ContainerConfig *cfg,
		 crisp_err_t *err)
{
	const Runtime__V1__LinuxContainerSecurityContext *sc = cfg->linux ? cfg->linux->security_context : NULL;
	const struct rp_policy *pol;
	const char *paths[128];
	char *real[128] = { 0 };
	size_t np = 0;
	int rc = -1;

	if (pods_policy(&x->pods, &pol, err) < 0)
		return -1;
	if (cfg->n_mounts > 128)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "more than 128 mounts");
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		const Runtime__V1__Mount *m = cfg->mounts[i];
		if (m->host_path[0] != '/' || m->container_path[0] != '/') {
			crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "mount %.100s -> %.100s: paths must be absolute",
				    m->host_path, m->container_path);
			goto out;
		}
		if ((real[np] = realpath(m->host_path, NULL)) == NULL) {
			crisp_error(err, CRISP_NOT_FOUND, errno, "mount source %.200s", m->host_path);
			goto out;
		}
		paths[np] = real[np];
		np++;
	}
	bool privileged = sc && sc->privileged;
	bool unconfined = !privileged &&
			  (sc == NULL ||
			   (sc->seccomp ? sc->seccomp->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined
					: (sc->seccomp_profile_path[0] == '\0' || !strcmp(sc->seccomp_profile_path, "unconfined"))));
	struct rp_container rq = {
		.ns = pod->namespace,
		.privileged = privileged,
		.unconfined_seccomp = unconfined,
		.add_caps = sc && sc->capabilities ? (const char *const *)sc->capabilities->add_capabilities : NULL,
		.nadd_caps = sc && sc->capabilities ? sc->capabilities->n_add_capabilities : 0,
		.host_paths = paths,
		.nhost_paths = np,
		.ndevices = cfg->n_devices,
	};
	if (rp_check_container(pol, &rq, err) < 0)
		goto out;
	/* host namespaces only as the pod has them */
	const Runtime__V1__NamespaceOption *nso = sc ? sc->namespace_options : NULL;
	if (nso) {
		if ((nso->network == RUNTIME__V1__NAMESPACE_MODE__NODE) != !!(pod->flags & STATE_POD_HOST_NET) ||
		    (nso->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE) != !!(pod->flags & STATE_POD_HOST_IPC) ||
		    ((nso->pid == RUNTIME__V1__NAMESPACE_MODE__NODE) && !(pod->flags & STATE_POD_HOST_PID))) {
			crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				    "the container's host namespaces differ from its pod's");
			goto out;
		}
		/* TARGET (ephemeral containers): a running container of this pod;
		 * checked again when it starts.  A host-PID pod stays on the host's. */
		char full[STATE_ID_LEN + 1];
		if (nso->pid == RUNTIME__V1__NAMESPACE_MODE__TARGET && !(pod->flags & STATE_POD_HOST_PID) &&
		    ctr_target_check(x, pod, NULL, nso->target_id, full, err) < 0)
			goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < np; i++)
		free(real[i]);
	return rc;
}

void ctrs_on_create(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	Cipc__CtrCreate *w = (Cipc__CtrCreate *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_pod *pod = NULL;
	struct state_ctr_spec spec;
	struct state_kv *labels = NULL, *ann = NULL;
	struct create_op *op = NULL;
	uint8_t *cbuf = NULL;

	if (w->req == NULL || w->req->config == NULL || w->req->config->metadata == NULL ||
	    w->req->config->image == NULL || w->req->config->image->image[0] == '\0') {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "CreateContainer: config.metadata and config.image are required");
		goto refuse;
	}
	if (cri_validate(&w->req->base, &err) < 0)
		goto refuse;
	const Runtime__V1__ContainerConfig *c = w->req->config;
	if (state_pod_get(x->pods.st, w->req->pod_sandbox_id, &pod, &err) < 0)
		goto refuse;
	if (pod->state != POD_READY) {
		crisp_error(&err, CRISP_FAILED_PRECONDITION, 0, "pod %.12s is not ready", pod->id);
		goto refuse;
	}
	if (admit(x, pod, c, &err) < 0)
		goto refuse;
	if (role_peer(&x->role, ROLE_IMAGED) == NULL) {
		crisp_error(&err, CRISP_UNAVAILABLE, 0, "imaged is not running (restarting); try again");
		goto refuse;
	}
	labels = calloc(c->n_labels + 1, sizeof *labels);
	ann = calloc(c->n_annotations + 1, sizeof *ann);
	size_t clen = protobuf_c_message_get_packed_size(&c->base);
	cbuf = malloc(clen ? clen : 1);
	op = calloc(1, sizeof *op);
	if (labels == NULL || ann == NULL || cbuf == NULL || op == NULL) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		goto refuse;
	}
	for (size_t i = 0; i < c->n_labels; i++)
		labels[i] = (struct state_kv){ c->labels[i]->key, c->labels[i]->value };
	for (size_t i = 0; i < c->n_annotations; i++)
		ann[i] = (struct state_kv){ c->annotations[i]->key, c->annotations[i]->value };
	protobuf_c_message_pack(&c->base, cbuf);
	memset(&spec, 0, sizeof spec);
	spec.pod_id = pod->id;
	spec.name = c->metadata->name;
	spec.attempt = c->metadata->attempt;
	spec.image_ref = c->image->image;
	spec.image_id = "";
	spec.log_path = c->log_path;
	spec.labels = labels;
	spec.nlabels = c->n_labels;
	spec.annotations = ann;
	spec.nannotations = c->n_annotations;
	spec.config = cbuf;
	spec.config_len = clen;
	if (state_ctr_reserve(x->pods.st, &spec, op->id, &err) < 0)
		goto refuse;
	free(labels);
	free(ann);
	free(cbuf);
	op->x = x;
	op->ch = ipc_chan_ref(ch);
	op->reqid = m->hdr.reqid;
	op->w = w;
	op->pod = pod;
	m->pb = NULL; /* the op owns the request */

	Cipc__ImageResolve rr = CIPC__IMAGE_RESOLVE__INIT;
	rr.image = c->image->image;
	rr.holder = op->id;
	rr.namespace_ = pod->namespace;
	rr.pod_name = pod->name;
	rr.pod_id = pod->id;
	if (ipc_request(role_peer(&x->role, ROLE_IMAGED), IPC_IMAGE_RESOLVE, &rr.base, -1, IMAGE_TIMEOUT_MS, on_resolved,
			op, NULL, &err) < 0)
		create_fail(op, &err, false);
	return;
refuse:
	free(labels);
	free(ann);
	free(cbuf);
	free(op);
	state_pod_free(pod);
	ctr_answer_error(ch, m->hdr.reqid, &err);
}

/* ---- StartContainer ---- */

struct start_op {
	struct execd *x;
	struct ipc_chan *ch;
	uint64_t reqid;
	char id[STATE_ID_LEN + 1];
	char pod_id[STATE_ID_LEN + 1];
	pid_t mpid;
	int fd;
	bool pid_pod;
	char buf[1400];
	size_t len;
};

static void start_done(struct start_op *op)
{
	struct execd *x = op->x;
	crisp_err_t err = CRISP_ERR_INIT;
	struct ctr_event_data d;
	int pid = 0;
	unsigned long long ps = 0, ms = 0;

	loop_del(xloop(x), op->fd);
	op->buf[op->len] = '\0';
	memset(&d, 0, sizeof d);
	if (sscanf(op->buf, "OK %d %llu %llu", &pid, &ps, &ms) == 3 && pid > 0) {
		d.pid = pid;
		d.pid_start = ps;
		d.monitor_pid = op->mpid;
		d.monitor_start = ms;
		if (state_container_transition(x->pods.st, op->id, CTR_EV_STARTED, &d, &err) < 0) {
			log_error("container %.12s: started but not recorded: %s", op->id, err.msg);
			ctr_signal(pid, ps, SIGKILL);
			ctr_answer_error(op->ch, op->reqid, &err);
		} else {
			if (watch_add(x, op->id, op->pod_id, op->mpid, pid, ps, true, op->pid_pod) == NULL)
				log_error("container %.12s: cannot watch its monitor", op->id);
			log_info("container %.12s started (pid %d)", op->id, pid);
			Cipc__CtrStartAns w = CIPC__CTR_START_ANS__INIT;
			Runtime__V1__StartContainerResponse rs = RUNTIME__V1__START_CONTAINER_RESPONSE__INIT;
			w.resp = &rs;
			pods_answer(op->ch, op->reqid, IPC_CTR_START_ANS, &w.base);
		}
	} else {
		int en = 0, off = 0;
		const char *why = "the monitor died";
		if (sscanf(op->buf, "ERR %d %n", &en, &off) == 1 && off > 0)
			why = op->buf + off;
		while (waitpid(op->mpid, NULL, __WALL) < 0 && errno == EINTR)
			;
		crisp_error(&err, CRISP_UNKNOWN, 0, "start container %.12s: %s", op->id, why);
		d.exit_code = 128;
		d.message = why;
		crisp_err_t e2 = CRISP_ERR_INIT;
		if (state_container_transition(x->pods.st, op->id, CTR_EV_START_FAILED, &d, &e2) < 0)
			log_error("container %.12s: %s", op->id, e2.msg);
		log_warn("%s", err.msg);
		ctr_answer_error(op->ch, op->reqid, &err);
	}
	/* Closed only now: the monitor executes its own binary once it sees
	 * this end closed (ctr_monitor.c), after the answer went out. */
	close(op->fd);
	ipc_chan_unref(op->ch);
	free(op);
}

/* The monitor's report is whole: "OK ...\n" once its line is, an error
 * ("ERR ...") at EOF (the monitor exits after writing it). */
static bool start_result_whole(const struct start_op *op)
{
	return op->len >= 3 && memcmp(op->buf, "OK ", 3) == 0 && memchr(op->buf, '\n', op->len) != NULL;
}

static void on_start_result(struct loop *l, int fd, uint32_t ev, void *arg)
{
	struct start_op *op = arg;
	ssize_t n;

	(void)l;
	(void)ev;
	n = read(fd, op->buf + op->len, sizeof op->buf - 1 - op->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0) {
		op->len += (size_t)n;
		if (!start_result_whole(op) && op->len < sizeof op->buf - 1)
			return;
	}
	start_done(op);
}

void ctrs_on_start(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	Cipc__CtrStart *w = (Cipc__CtrStart *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_ctr *c = NULL;
	struct state_pod *pod = NULL;
	Runtime__V1__ContainerConfig *cfg = NULL;
	Cipc__ImageResolved *img = NULL;
	struct ctr_built b;
	struct start_op *op = NULL;
	char rootfs[PATH_MAX], rundir[PATH_MAX], logpath[PATH_MAX];
	int act;

	ctr_built_init(&b);
	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "StartContainer: no request");
		goto refuse;
	}
	if (state_ctr_get(x->pods.st, w->req->container_id, &c, &err) < 0 ||
	    state_pod_get(x->pods.st, c->pod_id, &pod, &err) < 0)
		goto refuse;
	if (pod->state != POD_READY) {
		crisp_error(&err, CRISP_FAILED_PRECONDITION, 0, "pod %.12s is not ready", pod->id);
		goto refuse;
	}
	cfg = runtime__v1__container_config__unpack(NULL, c->config_len, c->config);
	img = ctr_image_load(x, c->id);
	if (cfg == NULL || img == NULL) {
		crisp_error(&err, CRISP_DATA_LOSS, 0, "container %.12s: its record is unreadable", c->id);
		goto refuse;
	}
	if (ctr_run_dir(x, c->id, "rootfs", rootfs, sizeof rootfs) < 0 || ctr_run_dir(x, c->id, NULL, rundir, sizeof rundir) < 0) {
		crisp_error(&err, CRISP_INTERNAL, 0, "paths too long");
		goto refuse;
	}
	logpath[0] = '\0';
	if (c->log_path && c->log_path[0] && pod->log_directory && pod->log_directory[0] &&
	    (size_t)snprintf(logpath, sizeof logpath, "%s/%s", pod->log_directory, c->log_path) >= sizeof logpath) {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "log path too long");
		goto refuse;
	}
	if (strstr(logpath, "/../") || (logpath[0] && logpath[0] != '/')) {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "log path %.200s is not a clean absolute path", logpath);
		goto refuse;
	}
	act = state_container_transition(x->pods.st, c->id, CTR_EV_START, NULL, &err);
	if (act < 0)
		goto refuse;
	if (act != CTR_DO_LAUNCH) {
		Cipc__CtrStartAns a = CIPC__CTR_START_ANS__INIT;
		Runtime__V1__StartContainerResponse rs = RUNTIME__V1__START_CONTAINER_RESPONSE__INIT;
		a.resp = &rs;
		pods_answer(ch, m->hdr.reqid, IPC_CTR_START_ANS, &a.base);
		goto out;
	}
	/* From here a failure is START_FAILED: the container is EXITED. */
	if (mount_rootfs(x, c->id, img, pod, cfg, &err) < 0 || ctr_build(x, c, pod, cfg, img, rootfs, 0, NULL, 0, &b, &err) < 0)
		goto start_failed;
	op = calloc(1, sizeof *op);
	if (op == NULL) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		goto start_failed;
	}
	/* a RuntimeClass handler run by an external OCI runtime */
	const char *rt = pods_handler_path(&x->pods, pod->runtime_handler);
	char oci_root[PATH_MAX], oci_bundle[PATH_MAX], cgpath[PATH_MAX];
	struct ctr_oci oci = { 0 };
	if (rt != NULL) {
		if ((size_t)snprintf(oci_root, sizeof oci_root, "%s/runtimes/%s", x->args.runroot, pod->runtime_handler) >=
			    sizeof oci_root ||
		    (size_t)snprintf(oci_bundle, sizeof oci_bundle, "%s/oci", rundir) >= sizeof oci_bundle) {
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "runtime paths too long");
			goto start_failed;
		}
		if (ctr_build_oci_seccomp(cfg, &b, &err) < 0)
			goto start_failed;
		ctr_oci_cgroups_path(b.cg.n > 0 ? b.cg.dir[0] : "", cgpath, sizeof cgpath);
		oci = (struct ctr_oci){ .handler = pod->runtime_handler,
					.runtime = rt,
					.state_root = oci_root,
					.bundle = oci_bundle,
					.id = c->id,
					.cgroups_path = cgpath,
					.seccomp_json = b.seccomp_oci };
	} else if (!pods_handler_known(&x->pods, pod->runtime_handler)) {
		crisp_error(&err, CRISP_FAILED_PRECONDITION, 0, "runtime handler \"%.64s\" is no longer configured",
			    pod->runtime_handler);
		goto start_failed;
	}
	struct ctr_monitor_args ma = {
		.oci = rt != NULL ? &oci : NULL,
		.id = c->id,
		.run_dir = rundir,
		.log_path = logpath,
		.tty = cfg->tty,
		.want_stdin = cfg->stdin,
		.stdin_once = cfg->stdin_once,
		.spec = &b.s,
		.keep_fds = b.keep,
		.nkeep = b.nkeep,
	};
	op->mpid = ctr_monitor_spawn(&ma, &op->fd, &err);
	if (op->mpid < 0)
		goto start_failed;
	op->x = x;
	op->ch = ipc_chan_ref(ch);
	op->reqid = m->hdr.reqid;
	op->pid_pod = b.pid_pod;
	crisp_strlcpy(op->id, c->id, sizeof op->id);
	crisp_strlcpy(op->pod_id, c->pod_id, sizeof op->pod_id);
	if (loop_add(xloop(x), op->fd, EPOLLIN, on_start_result, op) < 0) {
		/* cannot wait asynchronously: wait here (bounded by launch's timeouts) */
		op->len = 0;
		ssize_t n;
		while (!start_result_whole(op) && op->len < sizeof op->buf - 1 &&
		       (n = read(op->fd, op->buf + op->len, sizeof op->buf - 1 - op->len)) > 0)
			op->len += (size_t)n;
		loop_add(xloop(x), op->fd, EPOLLIN, on_start_result, op); /* harmless if it fails */
		start_done(op);
	}
	op = NULL;
	goto out;
start_failed: {
	struct ctr_event_data d = { .exit_code = 128, .message = err.msg };
	crisp_err_t e2 = CRISP_ERR_INIT;
	if (state_container_transition(x->pods.st, c->id, CTR_EV_START_FAILED, &d, &e2) < 0)
		log_error("container %.12s: %s", c->id, e2.msg);
	free(op);
}
refuse:
	ctr_answer_error(ch, m->hdr.reqid, &err);
out:
	ctr_built_free(&b);
	if (cfg)
		runtime__v1__container_config__free_unpacked(cfg, NULL);
	if (img)
		cipc__image_resolved__free_unpacked(img, NULL);
	state_pod_free(pod);
	state_ctr_free(c);
}

/* ---- StopContainer ---- */

static void answer_empty(struct ipc_chan *ch, uint64_t reqid, uint32_t type)
{
	if (type == IPC_CTR_STOP_ANS) {
		Cipc__CtrStopAns w = CIPC__CTR_STOP_ANS__INIT;
		Runtime__V1__StopContainerResponse rs = RUNTIME__V1__STOP_CONTAINER_RESPONSE__INIT;
		w.resp = &rs;
		pods_answer(ch, reqid, type, &w.base);
	} else {
		Cipc__CtrRemoveAns w = CIPC__CTR_REMOVE_ANS__INIT;
		Runtime__V1__RemoveContainerResponse rs = RUNTIME__V1__REMOVE_CONTAINER_RESPONSE__INIT;
		w.resp = &rs;
		pods_answer(ch, reqid, type, &w.base);
	}
}

static void stop_exited(struct execd *x, const char *id, void *arg)
{
	struct answer_arg *a = arg;

	(void)x;
	(void)id;
	if (a->ch)
		answer_empty(a->ch, a->reqid, a->type);
	drop_answer(a);
}

static int parse_signal(const char *s)
{
	static const struct {
		const char *n;
		int v;
	} t[] = { { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
		  { "USR2", SIGUSR2 }, { "TERM", SIGTERM }, { "STOP", SIGSTOP }, { "WINCH", SIGWINCH }, { "PWR", SIGPWR } };
	if (s == NULL || s[0] == '\0')
		return SIGTERM;
	if (s[0] >= '0' && s[0] <= '9') {
		int v = atoi(s);
		return v > 0 && v < 65 ? v : SIGTERM;
	}
	if (!strncmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(s, t[i].n))
			return t[i].v;
	if (!strncmp(s, "RTMIN+", 6))
		return SIGRTMIN + atoi(s + 6);
	return SIGTERM;
}

void ctrs_on_stop(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	Cipc__CtrStop *w = (Cipc__CtrStop *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_ctr *c = NULL;
	struct ctr_watch *wa;
	struct answer_arg *a;
	int act;

	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "StopContainer: no request");
		goto refuse;
	}
	if (state_ctr_get(x->pods.st, w->req->container_id, &c, &err) < 0)
		goto refuse;
	act = state_container_transition(x->pods.st, c->id, CTR_EV_STOP, NULL, &err);
	if (act < 0)
		goto refuse;
	wa = ctr_watch_find(x, c->id);
	if (act == CTR_DO_NOTHING && wa == NULL) {
		answer_empty(ch, m->hdr.reqid, IPC_CTR_STOP_ANS);
		goto out;
	}
	if (wa == NULL) {
		/* running by the record but no monitor to watch: lost */
		struct ctr_event_data d = { .message = "no monitor" };
		ctr_signal(c->pid, c->pid_start, SIGKILL);
		if (state_container_transition(x->pods.st, c->id, CTR_EV_MONITOR_LOST, &d, &err) < 0)
			goto refuse;
		answer_empty(ch, m->hdr.reqid, IPC_CTR_STOP_ANS);
		goto out;
	}
	if ((a = calloc(1, sizeof *a)) == NULL) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		goto refuse;
	}
	a->ch = ipc_chan_ref(ch);
	a->reqid = m->hdr.reqid;
	a->type = IPC_CTR_STOP_ANS;
	if (watch_wait(wa, stop_exited, a) < 0) {
		drop_answer(a);
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		goto refuse;
	}
	Cipc__ImageResolved *img = ctr_image_load(x, c->id);
	int sig = parse_signal(img ? img->stop_signal : NULL);
	if (img)
		cipc__image_resolved__free_unpacked(img, NULL);
	int64_t t = w->req->timeout;
	log_info("container %.12s: stop (signal %d, timeout %llds)", c->id, sig, (long long)t);
	watch_kill(x, wa, sig, t <= 0 ? 0 : (uint64_t)(t > 86400 ? 86400 : t) * 1000);
	goto out;
refuse:
	ctr_answer_error(ch, m->hdr.reqid, &err);
out:
	state_ctr_free(c);
}

/* ---- RemoveContainer ---- */

/* The end of a removal, once the external runtime (if any) deleted its
 * state: teardown, the REMOVED commit, the answer. */
static void remove_teardown(struct execd *x, const char *id, struct ipc_chan *ch, uint64_t reqid)
{
	crisp_err_t err = CRISP_ERR_INIT;

	ctr_teardown(x, id, true);
	if (state_container_transition(x->pods.st, id, CTR_EV_REMOVED, NULL, &err) < 0) {
		if (ch)
			ctr_answer_error(ch, reqid, &err);
		else
			log_warn("container %.12s: %s", id, err.msg);
		return;
	}
	log_info("container %.12s removed", id);
	if (ch)
		answer_empty(ch, reqid, IPC_CTR_REMOVE_ANS);
}

/* ---- an external runtime's delete, off execd's loop ----
 *
 * "<runtime> delete --force" of a RuntimeClass container runs as a child
 * that execd watches through a pidfd, bounded at 10 s: a wedged runtime
 * delays only the removals waiting on it, never execd. */

#define OCI_DELETE_MS 10000

struct oci_del {
	struct execd *x;
	char id[STATE_ID_LEN + 1];
	pid_t pid;
	int pidfd;
	struct loop_timer *timer;
	struct answer_arg *waiters[16]; /* removals of this container waiting */
	size_t nwaiters;
	struct oci_del *next;
};

static void remove_continue(struct execd *x, const char *id, struct answer_arg *a)
{
	remove_teardown(x, id, a->ch, a->reqid);
	if (a->done)
		a->done(a->done_arg);
	drop_answer(a);
}

static void oci_del_end(struct oci_del *d, bool timed_out)
{
	struct execd *x = d->x;
	char path[PATH_MAX], id[STATE_ID_LEN + 1];
	struct answer_arg *w[16];
	size_t nw = d->nwaiters;
	int status = 0;

	if (timed_out)
		kill(d->pid, SIGKILL);
	while (waitpid(d->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		log_warn("container %.12s: the runtime's delete %s: its state may be left", d->id,
			 timed_out ? "took over 10 s and was killed" : "failed");
	loop_del(xloop(x), d->pidfd);
	close(d->pidfd);
	if (d->timer && !timed_out)
		loop_timer_cancel(xloop(x), d->timer);
	for (struct oci_del **pp = &x->ctrs->oci_dels; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	/* done: the teardown's own (synchronous) delete has nothing left */
	if (ctr_run_dir(x, d->id, "oci/handler", path, sizeof path) == 0)
		(void)unlink(path);
	crisp_strlcpy(id, d->id, sizeof id);
	memcpy(w, d->waiters, nw * sizeof w[0]);
	free(d);
	for (size_t i = 0; i < nw; i++)
		remove_continue(x, id, w[i]);
}

static void on_oci_del_exit(struct loop *l, int fd, uint32_t ev, void *arg)
{
	(void)l;
	(void)fd;
	(void)ev;
	oci_del_end(arg, false);
}

static void on_oci_del_timeout(struct loop *l, void *arg)
{
	struct oci_del *d = arg;

	(void)l;
	d->timer = NULL;
	oci_del_end(d, true);
}

/* Remove container id once its external runtime's state is deleted: at
 * once when it has none (crisp's own launcher); else when the delete ends.
 * Takes a. */
static void oci_delete_then(struct execd *x, const char *id, struct answer_arg *a)
{
	char path[PATH_MAX], name[64] = "", root[PATH_MAX];
	crisp_err_t err = CRISP_ERR_INIT;
	struct oci_del *d;
	const char *rt;
	ssize_t n;
	int fd;

	for (d = x->ctrs->oci_dels; d; d = d->next)
		if (strcmp(d->id, id) == 0) {
			if (d->nwaiters < sizeof d->waiters / sizeof d->waiters[0]) {
				d->waiters[d->nwaiters++] = a; /* a second RemoveContainer: same end */
				return;
			}
			break;
		}
	if (d != NULL || ctr_run_dir(x, id, "oci/handler", path, sizeof path) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		goto now;
	n = read(fd, name, sizeof name - 1);
	close(fd);
	name[n > 0 ? n : 0] = '\0';
	if ((rt = pods_handler_path(&x->pods, name)) == NULL)
		goto now; /* the teardown says it is no longer configured */
	snprintf(root, sizeof root, "%s/runtimes/%s", x->args.runroot, name);
	if ((d = calloc(1, sizeof *d)) == NULL)
		goto now;
	d->x = x;
	crisp_strlcpy(d->id, id, sizeof d->id);
	if ((d->pid = ctr_oci_delete_spawn(rt, root, id, &err)) < 0) {
		log_warn("container %.12s: %s", id, err.msg);
		free(d);
		goto now;
	}
	d->pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
	if (d->pidfd < 0 || loop_add(xloop(x), d->pidfd, EPOLLIN, on_oci_del_exit, d) < 0) {
		/* cannot watch it: wait here, bounded as before */
		if (d->pidfd >= 0)
			close(d->pidfd);
		kill(d->pid, SIGKILL);
		while (waitpid(d->pid, NULL, 0) < 0 && errno == EINTR)
			;
		free(d);
		goto now;
	}
	d->timer = loop_timer_add(xloop(x), OCI_DELETE_MS, on_oci_del_timeout, d);
	d->waiters[d->nwaiters++] = a;
	d->next = x->ctrs->oci_dels;
	x->ctrs->oci_dels = d;
	return;
now:
	remove_continue(x, id, a);
}

/* Takes a (its answer, and done once the removal ended). */
static void remove_finish(struct execd *x, const char *id, struct answer_arg *a)
{
	oci_delete_then(x, id, a);
}

static struct answer_arg *answer_new(struct ipc_chan *ch, uint64_t reqid, void (*done)(void *), void *done_arg)
{
	struct answer_arg *a = calloc(1, sizeof *a);

	if (a != NULL) {
		a->ch = ch ? ipc_chan_ref(ch) : NULL;
		a->reqid = reqid;
		a->type = IPC_CTR_REMOVE_ANS;
		a->done = done;
		a->done_arg = done_arg;
	}
	return a;
}

static void remove_exited(struct execd *x, const char *id, void *arg)
{
	struct answer_arg *a = arg;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_ctr *c = NULL;

	/* the exit moved it to EXITED (or UNKNOWN): remove again */
	if (state_ctr_get(x->pods.st, id, &c, &err) == 0) {
		int act = state_container_transition(x->pods.st, id, CTR_EV_REMOVE, NULL, &err);
		state_ctr_free(c);
		if (act < 0 && err.code != CRISP_NOT_FOUND) {
			if (a->ch)
				ctr_answer_error(a->ch, a->reqid, &err);
			if (a->done)
				a->done(a->done_arg);
			drop_answer(a);
			return;
		}
	}
	remove_finish(x, id, a);
}

/* Remove (kill first when running); answer on ch, or just log (ch NULL);
 * done(done_arg), when given, once the removal ended however it ended. */
static void remove_one(struct execd *x, const char *idprefix, struct ipc_chan *ch, uint64_t reqid,
		       void (*done)(void *), void *done_arg)
{
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_ctr *c = NULL;
	struct ctr_watch *wa;
	struct answer_arg *a = NULL;
	int act;

	if (state_ctr_get(x->pods.st, idprefix, &c, &err) < 0) {
		if (err.code == CRISP_NOT_FOUND) {
			if (ch)
				answer_empty(ch, reqid, IPC_CTR_REMOVE_ANS);
			if (done)
				done(done_arg);
			return;
		}
		goto refuse;
	}
	if ((a = answer_new(ch, reqid, done, done_arg)) == NULL) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		goto refuse;
	}
	wa = ctr_watch_find(x, c->id);
	if (wa != NULL) {
		/* running: kill, remove at the exit */
		if (watch_wait(wa, remove_exited, a) < 0) {
			drop_answer(a);
			crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
			goto refuse;
		}
		watch_kill(x, wa, SIGKILL, 0);
		state_ctr_free(c);
		return;
	}
	act = state_container_transition(x->pods.st, c->id, CTR_EV_REMOVE, NULL, &err);
	if (act < 0) {
		drop_answer(a);
		goto refuse;
	}
	if (act == CTR_DO_KILL_CLEANUP)
		ctr_signal(c->pid, c->pid_start, SIGKILL); /* no monitor: best effort */
	remove_finish(x, c->id, a);
	state_ctr_free(c);
	return;
refuse:
	state_ctr_free(c);
	if (ch)
		ctr_answer_error(ch, reqid, &err);
	else
		log_warn("remove container: %s", err.msg);
	if (done)
		done(done_arg);
}

void ctrs_on_remove(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	Cipc__CtrRemove *w = (Cipc__CtrRemove *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;

	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "RemoveContainer: no request");
		ctr_answer_error(ch, m->hdr.reqid, &err);
		return;
	}
	remove_one(x, w->req->container_id, ch, m->hdr.reqid, NULL, NULL);
}

/* ---- pods: stop and remove their containers ---- */

struct pod_wait {
	struct execd *x;
	size_t pending;
	bool remove, done_called;
	char pod_id[STATE_ID_LEN + 1];
	void (*done)(void *arg);
	void *arg;
};

/* A pod's removal waits for its containers' (an external runtime's delete
 * ends later): the pod's cgroup and namespaces go after theirs. */
struct pod_removals {
	size_t pending;
	void (*done)(void *arg);
	void *arg;
};

static void pod_removal_done(void *arg)
{
	struct pod_removals *pr = arg;

	if (--pr->pending == 0) {
		pr->done(pr->arg);
		free(pr);
	}
}

static void pod_wait_finish(struct pod_wait *pw)
{
	struct execd *x = pw->x;
	struct pod_removals *pr = NULL;

	if (pw->remove && (pr = calloc(1, sizeof *pr)) != NULL) {
		struct state_ctr_filter f = { .state = -1, .cri_state = -1, .pod_id = pw->pod_id };
		struct state_ctr **v = NULL;
		size_t n = 0;
		crisp_err_t err = CRISP_ERR_INIT;
		pr->pending = 1; /* held until every removal is under way */
		pr->done = pw->done;
		pr->arg = pw->arg;
		if (state_ctr_list(x->pods.st, &f, &v, &n, &err) == 0) {
			for (size_t i = 0; i < n; i++) {
				pr->pending++;
				remove_one(x, v[i]->id, NULL, 0, pod_removal_done, pr);
			}
			state_ctr_list_free(v, n);
		}
		free(pw);
		pod_removal_done(pr);
		return;
	}
	if (pw->remove) {
		/* no memory to wait with: remove, and go on at once */
		struct state_ctr_filter f = { .state = -1, .cri_state = -1, .pod_id = pw->pod_id };
		struct state_ctr **v = NULL;
		size_t n = 0;
		crisp_err_t err = CRISP_ERR_INIT;
		if (state_ctr_list(x->pods.st, &f, &v, &n, &err) == 0) {
			for (size_t i = 0; i < n; i++)
				remove_one(x, v[i]->id, NULL, 0, NULL, NULL);
			state_ctr_list_free(v, n);
		}
	}
	pw->done(pw->arg);
	free(pw);
}

static void pod_ctr_exited(struct execd *x, const char *id, void *arg)
{
	struct pod_wait *pw = arg;

	(void)x;
	(void)id;
	if (--pw->pending == 0)
		pod_wait_finish(pw);
}

static void drop_pod_wait(void *arg)
{
	struct pod_wait *pw = arg;

	if (--pw->pending == 0)
		free(pw);
}

void ctrs_pod_stop(struct execd *x, const char *pod_id, bool remove, void (*done)(void *arg), void *arg)
{
	struct pod_wait *pw = calloc(1, sizeof *pw);

	if (pw == NULL) {
		done(arg);
		return;
	}
	pw->x = x;
	pw->remove = remove;
	pw->done = done;
	pw->arg = arg;
	crisp_strlcpy(pw->pod_id, pod_id, sizeof pw->pod_id);
	pw->pending = 1; /* held until every waiter is registered */
	for (struct ctr_watch *w = x->ctrs->watches; w; w = w->next) {
		if (strcmp(w->pod_id, pod_id) != 0)
			continue;
		crisp_err_t err = CRISP_ERR_INIT;
		(void)state_container_transition(x->pods.st, w->id, CTR_EV_STOP, NULL, &err);
		if (watch_wait(w, pod_ctr_exited, pw) == 0)
			pw->pending++;
		watch_kill(x, w, SIGKILL, 0);
	}
	pod_ctr_exited(x, NULL, pw);
}

/* ---- recovery and life ---- */

static void adopt(struct execd *x, const char *id)
{
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_ctr *c = NULL;
	Runtime__V1__ContainerConfig *cfg = NULL;
	bool pid_pod = false;

	if (state_ctr_get(x->pods.st, id, &c, &err) < 0)
		return;
	cfg = runtime__v1__container_config__unpack(NULL, c->config_len, c->config);
	if (cfg && cfg->linux && cfg->linux->security_context && cfg->linux->security_context->namespace_options)
		pid_pod = cfg->linux->security_context->namespace_options->pid == RUNTIME__V1__NAMESPACE_MODE__POD;
	if (cfg)
		runtime__v1__container_config__free_unpacked(cfg, NULL);
	struct ctr_watch *w = NULL;
	if (c->monitor_pid > 0 && ctr_proc_start(c->monitor_pid) == c->monitor_start)
		w = watch_add(x, c->id, c->pod_id, c->monitor_pid, c->pid, c->pid_start, false, pid_pod);
	if (w != NULL) {
		log_info("container %.12s: monitor %d adopted", c->id, (int)c->monitor_pid);
		if (c->state == CTR_STOPPING)
			watch_kill(x, w, SIGKILL, 0);
	} else {
		/* gone while execd was away: its exit record tells the rest */
		struct ctr_watch tmp = { .x = x, .mpid = c->monitor_pid, .pid = c->pid, .pid_start = c->pid_start,
					 .mpidfd = -1 };
		struct ctr_watch *t = malloc(sizeof *t);
		if (t != NULL) {
			*t = tmp;
			crisp_strlcpy(t->id, c->id, sizeof t->id);
			crisp_strlcpy(t->pod_id, c->pod_id, sizeof t->pod_id);
			t->next = x->ctrs->watches;
			x->ctrs->watches = t;
			watch_exited(x, t);
		}
	}
	state_ctr_free(c);
}

/* Directories of containers with no row: a create whose reservation an OS
 * crash lost before its commit (the reservation is not flushed on its own).
 * Torn down as a failed create is. */
static void sweep_orphans(struct execd *x)
{
	const char *dirs[] = { x->ctrs->root, x->ctrs->run };

	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *e;
		if (d == NULL)
			continue;
		while ((e = readdir(d)) != NULL) {
			crisp_err_t err = CRISP_ERR_INIT;
			struct state_ctr *c = NULL;
			char id[STATE_ID_LEN + 1];
			if (strlen(e->d_name) != STATE_ID_LEN || strspn(e->d_name, "0123456789abcdef") != STATE_ID_LEN)
				continue;
			crisp_strlcpy(id, e->d_name, sizeof id);
			if (state_ctr_get(x->pods.st, id, &c, &err) == 0) {
				state_ctr_free(c);
				continue;
			}
			if (err.code != CRISP_NOT_FOUND)
				continue; /* only what is surely gone */
			log_info("container %.12s: no record (a create an OS crash interrupted): removed", id);
			ctr_teardown(x, id, false);
		}
		closedir(d);
	}
}

/* The layers every container holds, from its row (the durable record). */
static void reconcile_layers(struct execd *x)
{
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_ctr **v = NULL;
	size_t nv = 0, n = 0;
	struct layers_holder *h = NULL;
	Cipc__ImageResolved **imgs = NULL;

	if (state_ctr_list(x->pods.st, NULL, &v, &nv, &err) < 0) {
		/* without the record, deleting nothing is the safe side */
		log_error("layers: cannot list the containers, holds left as they are: %s", err.msg);
		return;
	}
	h = calloc(nv + 1, sizeof *h);
	imgs = calloc(nv + 1, sizeof *imgs);
	if (h == NULL || imgs == NULL) {
		log_error("layers: out of memory, holds left as they are");
		goto out;
	}
	for (size_t i = 0; i < nv; i++) {
		Cipc__ImageResolved *img = ctr_image_load(x, v[i]->id);
		if (img == NULL || img->n_chain_ids == 0) {
			if (img)
				cipc__image_resolved__free_unpacked(img, NULL);
			/* Unreadable: its hold, if any, is kept (see below). */
			h[n++] = (struct layers_holder){ .holder = v[i]->id };
			continue;
		}
		imgs[i] = img;
		h[n++] = (struct layers_holder){ .holder = v[i]->id,
						 .chain_ids = (const char *const *)img->chain_ids,
						 .n = img->n_chain_ids };
	}
	if (layers_reconcile(x, h, n, &err) < 0)
		log_error("layers: %s", err.msg);
out:
	for (size_t i = 0; imgs && i < nv; i++)
		if (imgs[i])
			cipc__image_resolved__free_unpacked(imgs[i], NULL);
	free(imgs);
	free(h);
	state_ctr_list_free(v, nv);
}

static void recover(struct execd *x)
{
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_recovery *rv = NULL;
	size_t n = 0;
	struct state_ctr_filter f = { .state = CTR_RUNNING, .cri_state = -1 };
	struct state_ctr **v = NULL;
	size_t nv = 0;

	if (state_recover(x->pods.st, &rv, &n, &err) < 0) {
		log_error("container recovery: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (rv[i].is_pod)
			continue;
		const char *id = rv[i].id;
		char dir[PATH_MAX];
		int32_t code;
		int64_t fin;
		switch (rv[i].state) {
		case CTR_CREATING:
			ctr_teardown(x, id, true);
			if (state_ctr_abort(x->pods.st, id, &err) < 0)
				log_error("container %.12s: rollback: %s", id, err.msg);
			else
				log_info("container %.12s: half-made container rolled back", id);
			break;
		case CTR_STARTING: {
			struct ctr_event_data sd = { 0 };
			if (ctr_run_dir(x, id, NULL, dir, sizeof dir) == 0 &&
			    ctr_started_read(dir, &sd.pid, &sd.pid_start, &sd.monitor_pid, &sd.monitor_start) == 0 &&
			    ctr_proc_start(sd.monitor_pid) == sd.monitor_start &&
			    state_container_transition(x->pods.st, id, CTR_EV_STARTED, &sd, &err) >= 0) {
				/* launched just before execd went away */
				adopt(x, id);
			} else if (ctr_run_dir(x, id, NULL, dir, sizeof dir) == 0 && ctr_exit_read(dir, &code, &fin, NULL) == 0) {
				struct ctr_event_data d = { .exit_code = code, .at_ns = fin };
				(void)state_container_transition(x->pods.st, id, CTR_EV_EXITED, &d, &err);
			} else {
				struct ctr_event_data d = { .exit_code = 128, .message = "execd restarted while starting" };
				(void)state_container_transition(x->pods.st, id, CTR_EV_START_FAILED, &d, &err);
			}
			break;
		}
		case CTR_STOPPING:
			adopt(x, id);
			break;
		case CTR_REMOVING: {
			struct answer_arg *a = answer_new(NULL, 0, NULL, NULL);
			ctr_signal(rv[i].pid, rv[i].pid_start, SIGKILL);
			if (a != NULL)
				remove_finish(x, id, a);
			else
				remove_teardown(x, id, NULL, 0);
			break;
		}
		default:
			break;
		}
	}
	free(rv);
	if (state_ctr_list(x->pods.st, &f, &v, &nv, &err) == 0) {
		for (size_t i = 0; i < nv; i++)
			adopt(x, v[i]->id);
		state_ctr_list_free(v, nv);
	}
	sweep_orphans(x);
	reconcile_layers(x);
}

int ctrs_init(struct execd *x, crisp_err_t *err)
{
	struct execd_ctrs *c = calloc(1, sizeof *c);

	if (c == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
	c->x = x;
	if ((size_t)snprintf(c->root, sizeof c->root, "%s/containers", x->args.root) >= sizeof c->root ||
	    (size_t)snprintf(c->run, sizeof c->run, "%s/containers", x->args.runroot) >= sizeof c->run) {
		free(c);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "root or runroot too long");
	}
	if (crisp_mkdir_p(c->root, 0700, 0, 0) < 0 || crisp_mkdir_p(c->run, 0700, 0, 0) < 0) {
		int e = errno;
		free(c);
		return crisp_error(err, CRISP_INTERNAL, e, "container directories");
	}
	x->ctrs = c;
	recover(x);
	return 0;
}

void ctrs_close(struct execd *x)
{
	struct execd_ctrs *c = x->ctrs;

	if (c == NULL)
		return;
	/* Containers keep running: their monitors are not execd's to stop. */
	while (c->watches) {
		struct ctr_watch *w = c->watches;
		watch_unlink(x, w);
		for (struct ctr_waiter *wt = w->waiters, *n; wt; wt = n) {
			n = wt->next;
			wt->drop(wt->arg);
			free(wt);
		}
		free(w);
	}
	/* Runtime deletes under way finish by themselves; the containers stay
	 * REMOVING and the next start removes them again. */
	while (c->oci_dels) {
		struct oci_del *d = c->oci_dels;
		c->oci_dels = d->next;
		loop_del(xloop(x), d->pidfd);
		close(d->pidfd);
		if (d->timer)
			loop_timer_cancel(xloop(x), d->timer);
		for (size_t i = 0; i < d->nwaiters; i++)
			drop_answer(d->waiters[i]);
		free(d);
	}
	free(c);
	x->ctrs = NULL;
}
