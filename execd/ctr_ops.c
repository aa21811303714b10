/*
 * execd/ctr_ops: what is done to a running container: ExecSync, the Exec
 * and Attach sessions (execd.h), ReopenContainerLog,
 * UpdateContainerResources, and stats from its cgroups.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "execd/ctr_internal.h"
#include "execd/ctr_podstats.h"
#include "frontd/validate.h"
#include "ipc/loop.h"

/* A container that must be running, with what building a process needs. */
struct running {
	struct state_ctr *c;
	struct state_pod *pod;
	Runtime__V1__ContainerConfig *cfg;
	Cipc__ImageResolved *img;
};

static void running_free(struct running *r)
{
	if (r->cfg)
		runtime__v1__container_config__free_unpacked(r->cfg, NULL);
	if (r->img)
		cipc__image_resolved__free_unpacked(r->img, NULL);
	state_pod_free(r->pod);
	state_ctr_free(r->c);
	memset(r, 0, sizeof *r);
}

static int running_get(struct execd *x, const char *idprefix, struct running *r, crisp_err_t *err)
{
	memset(r, 0, sizeof *r);
	if (state_ctr_get(x->pods.st, idprefix, &r->c, err) < 0)
		return -1;
	if (r->c->state != CTR_RUNNING || ctr_watch_find(x, r->c->id) == NULL ||
	    ctr_proc_start(r->c->pid) != r->c->pid_start) {
		crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "container %.12s is not running", r->c->id);
		goto fail;
	}
	if (state_pod_get(x->pods.st, r->c->pod_id, &r->pod, err) < 0)
		goto fail;
	r->cfg = runtime__v1__container_config__unpack(NULL, r->c->config_len, r->c->config);
	r->img = ctr_image_load(x, r->c->id);
	if (r->cfg == NULL || r->img == NULL) {
		crisp_error(err, CRISP_DATA_LOSS, 0, "container %.12s: its record is unreadable", r->c->id);
		goto fail;
	}
	return 0;
fail:
	running_free(r);
	return -1;
}

static int exec_start(struct execd *x, const char *idprefix, char *const *cmd, size_t ncmd, bool tty, bool want_stdin,
		      int *sockfd, crisp_err_t *err)
{
	struct running r;
	struct ctr_built b;
	pid_t helper;
	int rc = -1;

	if (ncmd == 0 || cmd[0][0] == '\0')
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "exec: no command");
	if (running_get(x, idprefix, &r, err) < 0)
		return -1;
	if (ctr_build(x, r.c, r.pod, r.cfg, r.img, NULL, r.c->pid, cmd, ncmd, &b, err) == 0) {
		if (ctr_exec_spawn(r.c->pid, &b.s, tty, want_stdin, sockfd, &helper, err) == 0) {
			ctr_reap_later(x, helper);
			rc = 0;
		}
		ctr_built_free(&b);
	}
	running_free(&r);
	return rc;
}

/* ---- Exec and Attach sessions ---- */

int ctrs_exec_session(struct execd *x, const char *ctr_id, char *const *cmd, bool tty, bool want_stdin,
	int *sockfd, crisp_err_t *err)
{
	size_t n = 0;

	while (cmd && cmd[n])
		n++;
	if (n == 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "exec: no command");
	return exec_start(x, ctr_id, cmd, n, tty, want_stdin, sockfd, err);
}

int ctrs_attach_session(struct execd *x, const char *ctr_id, bool want_stdin, int *sockfd, crisp_err_t *err)
{
	struct state_ctr *c = NULL;
	char dir[PATH_MAX];
	int rc;

	if (state_ctr_get(x->pods.st, ctr_id, &c, err) < 0)
		return -1;
	if (c->state != CTR_RUNNING || ctr_watch_find(x, c->id) == NULL) {
		crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "container %.12s is not running", c->id);
		state_ctr_free(c);
		return -1;
	}
	if (ctr_run_dir(x, c->id, NULL, dir, sizeof dir) < 0) {
		state_ctr_free(c);
		return crisp_error(err, CRISP_INTERNAL, 0, "path too long");
	}
	rc = ctr_monitor_connect(dir, want_stdin ? 'a' : 'A', sockfd, err);
	state_ctr_free(c);
	return rc;
}

/* ---- ExecSync ---- */

struct exec_sync {
	struct execd *x;
	struct ipc_chan *ch;
	uint64_t reqid;
	int fd;
	struct loop_timer *timer;
	char *out, *errb;
	size_t nout, nerr, capout, caperr;
	bool got_status, truncated;
	int exit_code;
	char internal[600];
};

static void es_free(struct exec_sync *e)
{
	ipc_unwatch_cancel(e->ch, e->reqid);
	if (e->timer)
		loop_timer_cancel(e->x->role.loop, e->timer);
	if (e->fd >= 0) {
		loop_del(e->x->role.loop, e->fd);
		close(e->fd); /* the helper kills the process if still there */
	}
	ipc_chan_unref(e->ch);
	free(e->out);
	free(e->errb);
	free(e);
}

static void es_answer(struct exec_sync *e)
{
	crisp_err_t err = CRISP_ERR_INIT;

	if (e->internal[0]) {
		crisp_error(&err, CRISP_UNKNOWN, 0, "exec: %s", e->internal);
		ctr_answer_error(e->ch, e->reqid, &err);
	} else if (!e->got_status) {
		crisp_error(&err, CRISP_INTERNAL, 0, "exec: the session ended without a status");
		ctr_answer_error(e->ch, e->reqid, &err);
	} else {
		Cipc__CtrExecSyncAns w = CIPC__CTR_EXEC_SYNC_ANS__INIT;
		Runtime__V1__ExecSyncResponse rs = RUNTIME__V1__EXEC_SYNC_RESPONSE__INIT;
		rs.stdout.data = (uint8_t *)e->out;
		rs.stdout.len = e->nout;
		rs.stderr.data = (uint8_t *)e->errb;
		rs.stderr.len = e->nerr;
		rs.exit_code = e->exit_code;
		w.resp = &rs;
		pods_answer(e->ch, e->reqid, IPC_CTR_EXEC_SYNC_ANS, &w.base);
	}
	es_free(e);
}

static void on_es_timeout(struct loop *l, void *arg)
{
	struct exec_sync *e = arg;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)l;
	e->timer = NULL;
	crisp_error(&err, CRISP_DEADLINE_EXCEEDED, 0, "command timed out");
	ctr_answer_error(e->ch, e->reqid, &err);
	es_free(e); /* closing the socket makes the helper kill the process */
}

/* The client gave up (CANCEL): nobody waits for the output any more. */
static void on_es_cancel(struct ipc_chan *ch, uint64_t reqid, void *arg)
{
	struct exec_sync *e = arg;

	(void)ch;
	(void)reqid;
	log_info("ExecSync cancelled by the client: the command is killed");
	es_free(e); /* closing the socket makes the helper kill the process */
}

static int buf_add(char **b, size_t *n, size_t *cap, const char *d, size_t len)
{
	if (*n + len > *cap) {
		size_t nc = *cap ? *cap : 4096;
		while (nc < *n + len)
			nc *= 2;
		char *nb = realloc(*b, nc);
		if (nb == NULL)
			return -1;
		*b = nb;
		*cap = nc;
	}
	memcpy(*b + *n, d, len);
	*n += len;
	return 0;
}

#define EXIT_CAUSE "\"reason\":\"ExitCode\",\"message\":\""

/* Parse a status frame (execd.h): the exit code, or an internal error. */
static void parse_status(struct exec_sync *e, const char *js, size_t len)
{
	char buf[2048];
	const char *p;

	if (len >= sizeof buf)
		len = sizeof buf - 1;
	memcpy(buf, js, len);
	buf[len] = '\0';
	e->got_status = true;
	if (strstr(buf, "\"Success\"")) {
		e->exit_code = 0;
	} else if ((p = strstr(buf, EXIT_CAUSE)) != NULL) {
		e->exit_code = atoi(p + strlen(EXIT_CAUSE));
	} else if ((p = strstr(buf, "\"message\":\"")) != NULL) {
		snprintf(e->internal, sizeof e->internal, "%.*s", (int)strcspn(p + 11, "\""), p + 11);
	} else {
		snprintf(e->internal, sizeof e->internal, "unreadable status");
	}
}

static void on_es_frame(struct loop *l, int fd, uint32_t ev, void *arg)
{
	struct exec_sync *e = arg;
	char fr[1 + CTR_FRAME_MAX];
	ssize_t n;

	(void)l;
	(void)ev;
	n = recv(fd, fr, sizeof fr, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		es_answer(e);
		return;
	}
	if (fr[0] == CTR_CH_STATUS) {
		parse_status(e, fr + 1, (size_t)n - 1);
		return;
	}
	if (fr[0] != CTR_CH_STDOUT && fr[0] != CTR_CH_STDERR)
		return;
	size_t len = (size_t)n - 1;
	if (e->nout + e->nerr + len > CTR_EXEC_OUTPUT_MAX) {
		len = CTR_EXEC_OUTPUT_MAX - e->nout - e->nerr;
		e->truncated = true;
	}
	if (len > 0 && (fr[0] == CTR_CH_STDOUT ? buf_add(&e->out, &e->nout, &e->capout, fr + 1, len)
					       : buf_add(&e->errb, &e->nerr, &e->caperr, fr + 1, len)) < 0) {
		snprintf(e->internal, sizeof e->internal, "out of memory");
	}
}

void ctrs_on_exec_sync(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	Cipc__CtrExecSync *w = (Cipc__CtrExecSync *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct exec_sync *e = NULL;
	int fd = -1;

	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "ExecSync: no request");
		goto refuse;
	}
	if (w->req->timeout < 0) {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "ExecSync: negative timeout");
		goto refuse;
	}
	if ((e = calloc(1, sizeof *e)) == NULL) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		goto refuse;
	}
	if (exec_start(x, w->req->container_id, w->req->cmd, w->req->n_cmd, false, false, &fd, &err) < 0)
		goto refuse;
	e->x = x;
	e->fd = fd;
	e->ch = ipc_chan_ref(ch);
	e->reqid = m->hdr.reqid;
	if (loop_add(x->role.loop, fd, EPOLLIN, on_es_frame, e) < 0) {
		e->fd = -1;
		close(fd);
		crisp_error(&err, CRISP_INTERNAL, errno, "exec: loop");
		ctr_answer_error(ch, m->hdr.reqid, &err);
		es_free(e);
		return;
	}
	if (w->req->timeout > 0) {
		int64_t t = w->req->timeout > 86400 ? 86400 : w->req->timeout;
		e->timer = loop_timer_add(x->role.loop, (uint64_t)t * 1000, on_es_timeout, e);
	}
	if (ipc_watch_cancel(ch, e->reqid, on_es_cancel, e, &err) < 0)
		crisp_error_clear(&err); /* no memory: it runs to its end or timeout */
	return;
refuse:
	free(e);
	ctr_answer_error(ch, m->hdr.reqid, &err);
}

/* ---- ReopenContainerLog ---- */

void ctrs_on_reopen_log(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	Cipc__CtrReopenLog *w = (Cipc__CtrReopenLog *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_ctr *c = NULL;
	char dir[PATH_MAX], ans[300];
	int fd = -1;

	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "ReopenContainerLog: no request");
		goto refuse;
	}
	if (state_ctr_get(x->pods.st, w->req->container_id, &c, &err) < 0)
		goto refuse;
	if (c->state != CTR_RUNNING || ctr_watch_find(x, c->id) == NULL) {
		crisp_error(&err, CRISP_FAILED_PRECONDITION, 0, "container %.12s is not running", c->id);
		goto refuse;
	}
	if (ctr_run_dir(x, c->id, NULL, dir, sizeof dir) < 0 || ctr_monitor_connect(dir, 'R', &fd, &err) < 0)
		goto refuse;
	/* the monitor answers at once (it only reopens a file) */
	struct timeval tv = { .tv_sec = 5 };
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	ssize_t n = recv(fd, ans, sizeof ans - 1, 0);
	close(fd);
	if (n <= 0) {
		crisp_error(&err, CRISP_UNAVAILABLE, errno, "the container's monitor did not answer");
		goto refuse;
	}
	ans[n] = '\0';
	if (strncmp(ans, "OK", 2) != 0) {
		crisp_error(&err, CRISP_INTERNAL, 0, "reopen the log: %s", ans + (n > 4 ? 4 : 0));
		goto refuse;
	}
	Cipc__CtrReopenLogAns a = CIPC__CTR_REOPEN_LOG_ANS__INIT;
	Runtime__V1__ReopenContainerLogResponse rs = RUNTIME__V1__REOPEN_CONTAINER_LOG_RESPONSE__INIT;
	a.resp = &rs;
	pods_answer(ch, m->hdr.reqid, IPC_CTR_REOPEN_LOG_ANS, &a.base);
	state_ctr_free(c);
	return;
refuse:
	state_ctr_free(c);
	ctr_answer_error(ch, m->hdr.reqid, &err);
}

/* ---- UpdateContainerResources ---- */

void ctrs_on_update(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	Cipc__CtrUpdate *w = (Cipc__CtrUpdate *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_ctr *c = NULL;
	struct ctr_cg cg;

	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "UpdateContainerResources: no request");
		goto refuse;
	}
	if (state_ctr_get(x->pods.st, w->req->container_id, &c, &err) < 0)
		goto refuse;
	if (c->state == CTR_EXITED || c->state == CTR_UNKNOWN || c->state == CTR_REMOVING) {
		crisp_error(&err, CRISP_FAILED_PRECONDITION, 0, "container %.12s is not running", c->id);
		goto refuse;
	}
	if (ctr_cgroups(x, c->id, &cg, &err) < 0 || ctr_cgroup_apply(&cg, w->req->linux, &err) < 0)
		goto refuse;
	Cipc__CtrUpdateAns a = CIPC__CTR_UPDATE_ANS__INIT;
	Runtime__V1__UpdateContainerResourcesResponse rs = RUNTIME__V1__UPDATE_CONTAINER_RESOURCES_RESPONSE__INIT;
	a.resp = &rs;
	pods_answer(ch, m->hdr.reqid, IPC_CTR_UPDATE_ANS, &a.base);
	state_ctr_free(c);
	return;
refuse:
	state_ctr_free(c);
	ctr_answer_error(ch, m->hdr.reqid, &err);
}

/* ---- stats ---- */

struct stats_buf {
	Runtime__V1__ContainerStats st;
	Runtime__V1__ContainerAttributes attr;
	Runtime__V1__ContainerMetadata md;
	Runtime__V1__CpuUsage cpu;
	Runtime__V1__MemoryUsage mem;
	Runtime__V1__UInt64Value cpu_total, mem_ws, mem_usage;
	void *labels, *ann;
};

static int stats_fill(struct execd *x, const struct state_ctr *c, struct stats_buf *s)
{
	struct ctr_cg cg;
	struct ctr_cg_stats cs;
	crisp_err_t err = CRISP_ERR_INIT;
	struct timespec ts;

	runtime__v1__container_stats__init(&s->st);
	runtime__v1__container_attributes__init(&s->attr);
	runtime__v1__container_metadata__init(&s->md);
	runtime__v1__cpu_usage__init(&s->cpu);
	runtime__v1__memory_usage__init(&s->mem);
	runtime__v1__uint64_value__init(&s->cpu_total);
	runtime__v1__uint64_value__init(&s->mem_ws);
	runtime__v1__uint64_value__init(&s->mem_usage);
	memset(&cs, 0, sizeof cs);
	if (ctr_cgroups(x, c->id, &cg, &err) == 0)
		ctr_cgroup_stats(&cg, &cs);
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	s->md.name = c->name;
	s->md.attempt = c->attempt;
	s->attr.id = (char *)c->id;
	s->attr.metadata = &s->md;
	s->labels = pods_kv_entries(&c->labels);
	s->ann = pods_kv_entries(&c->annotations);
	if (s->labels == NULL || s->ann == NULL)
		return -1;
	s->attr.n_labels = c->labels.n;
	s->attr.labels = s->labels;
	s->attr.n_annotations = c->annotations.n;
	s->attr.annotations = s->ann;
	s->cpu_total.value = cs.cpu_ns;
	s->cpu.timestamp = now;
	s->cpu.usage_core_nano_seconds = &s->cpu_total;
	s->mem_ws.value = cs.mem_working_set;
	s->mem_usage.value = cs.mem_usage;
	s->mem.timestamp = now;
	s->mem.working_set_bytes = &s->mem_ws;
	s->mem.usage_bytes = &s->mem_usage;
	s->st.attributes = &s->attr;
	s->st.cpu = &s->cpu;
	s->st.memory = &s->mem;
	return 0;
}

static void stats_free(struct stats_buf *s)
{
	pods_kv_free(s->labels);
	pods_kv_free(s->ann);
}

void ctrs_on_stats(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	Cipc__CtrStats *w = (Cipc__CtrStats *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_ctr *c = NULL;
	struct stats_buf s;

	memset(&s, 0, sizeof s);
	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "ContainerStats: no request");
		goto refuse;
	}
	if (state_ctr_get(x->pods.st, w->req->container_id, &c, &err) < 0)
		goto refuse;
	if (stats_fill(x, c, &s) < 0) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		goto refuse;
	}
	Cipc__CtrStatsAns a = CIPC__CTR_STATS_ANS__INIT;
	Runtime__V1__ContainerStatsResponse rs = RUNTIME__V1__CONTAINER_STATS_RESPONSE__INIT;
	rs.stats = &s.st;
	a.resp = &rs;
	pods_answer(ch, m->hdr.reqid, IPC_CTR_STATS_ANS, &a.base);
	stats_free(&s);
	state_ctr_free(c);
	return;
refuse:
	stats_free(&s);
	state_ctr_free(c);
	ctr_answer_error(ch, m->hdr.reqid, &err);
}

void ctrs_on_list_stats(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	Cipc__CtrListStats *w = (Cipc__CtrListStats *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_ctr_filter f = { .state = -1, .cri_state = -1 };
	struct state_kv *sel = NULL;
	struct state_ctr **v = NULL;
	size_t n = 0;
	struct stats_buf *s = NULL;
	Runtime__V1__ContainerStats **ps = NULL;

	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "ListContainerStats: no request");
		goto refuse;
	}
	if (w->req->filter) {
		const Runtime__V1__ContainerStatsFilter *rf = w->req->filter;
		f.id = rf->id[0] ? rf->id : NULL;
		f.pod_id = rf->pod_sandbox_id[0] ? rf->pod_sandbox_id : NULL;
		if (rf->n_label_selector) {
			if ((sel = pods_selector((void *const *)rf->label_selector, rf->n_label_selector)) == NULL)
				goto oom;
			f.selector = sel;
			f.nselector = rf->n_label_selector;
		}
	}
	if (state_ctr_list(x->pods.st, &f, &v, &n, &err) < 0)
		goto refuse;
	s = calloc(n + 1, sizeof *s);
	ps = calloc(n + 1, sizeof *ps);
	if (s == NULL || ps == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		if (stats_fill(x, v[i], &s[i]) < 0)
			goto oom;
		ps[i] = &s[i].st;
	}
	Cipc__CtrListStatsAns a = CIPC__CTR_LIST_STATS_ANS__INIT;
	Runtime__V1__ListContainerStatsResponse rs = RUNTIME__V1__LIST_CONTAINER_STATS_RESPONSE__INIT;
	rs.n_stats = n;
	rs.stats = ps;
	a.resp = &rs;
	pods_answer(ch, m->hdr.reqid, IPC_CTR_LIST_STATS_ANS, &a.base);
	goto out;
oom:
	crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
refuse:
	ctr_answer_error(ch, m->hdr.reqid, &err);
out:
	for (size_t i = 0; s && i < n; i++)
		stats_free(&s[i]);
	free(s);
	free(ps);
	free(sel);
	if (v)
		state_ctr_list_free(v, n);
}

/* ---- pod stats ---- */

struct podstats_buf {
	Runtime__V1__PodSandboxStats st;
	Runtime__V1__PodSandboxAttributes attr;
	Runtime__V1__PodSandboxMetadata md;
	Runtime__V1__LinuxPodSandboxStats lx;
	Runtime__V1__CpuUsage cpu;
	Runtime__V1__MemoryUsage mem;
	Runtime__V1__ProcessUsage proc;
	Runtime__V1__NetworkUsage net;
	Runtime__V1__UInt64Value cpu_total, mem_ws, mem_usage, nproc;
	struct podnet_if ifs[PODNET_IFS_MAX];
	Runtime__V1__NetworkInterfaceUsage ifu[PODNET_IFS_MAX];
	Runtime__V1__NetworkInterfaceUsage *pifu[PODNET_IFS_MAX];
	Runtime__V1__UInt64Value ifv[PODNET_IFS_MAX][4];
	struct stats_buf *cs;
	Runtime__V1__ContainerStats **pcs;
	size_t ncs;
	struct state_ctr **records; /* the pod's containers: cs points into them */
	size_t nrecords;
	void *labels, *ann;
};

static void podstats_free(struct podstats_buf *s)
{
	for (size_t i = 0; s->cs && i < s->ncs; i++)
		stats_free(&s->cs[i]);
	free(s->cs);
	free(s->pcs);
	pods_kv_free(s->labels);
	pods_kv_free(s->ann);
	if (s->records)
		state_ctr_list_free(s->records, s->nrecords);
	s->records = NULL;
	s->nrecords = 0;
	s->cs = NULL;
	s->pcs = NULL;
	s->labels = s->ann = NULL;
	s->ncs = 0;
}

/*
 * The pod's own cgroup when it has one: a cgroup_parent that no other pod
 * uses (kubelet gives each pod its own, kubepods/<qos>/pod<uid>), which then
 * also counts what exited containers used.  Otherwise (none given: the
 * shared default) the sum of its containers' cgroups.
 */
static bool pod_cgroup(const struct state_pod *pod, struct state_pod *const *all, size_t nall, struct ctr_cg *cg)
{
	crisp_err_t err = CRISP_ERR_INIT;

	if (pod->cgroup_parent == NULL || pod->cgroup_parent[0] == '\0')
		return false;
	for (size_t i = 0; i < nall; i++)
		if (strcmp(all[i]->id, pod->id) != 0 && all[i]->cgroup_parent &&
		    strcmp(all[i]->cgroup_parent, pod->cgroup_parent) == 0)
			return false;
	return ctr_cgroup_parent_paths(pod->cgroup_parent, cg, &err) == 0 && ctr_cgroup_exists(cg);
}

static void podstats_net(const struct state_pod *pod, struct podstats_buf *s, int64_t now)
{
	crisp_err_t err = CRISP_ERR_INIT;
	int n;

	/* host-network pods report no network, as CRI-O and containerd */
	if ((pod->flags & STATE_POD_HOST_NET) || pod->state != POD_READY || pod->netns_path == NULL ||
	    pod->netns_path[0] == '\0')
		return;
	if ((n = podnet_read(pod->netns_path, s->ifs, PODNET_IFS_MAX, &err)) < 0) {
		log_warn("pod %.12s: network stats: %s", pod->id, err.msg);
		return;
	}
	runtime__v1__network_usage__init(&s->net);
	s->net.timestamp = now;
	for (int i = 0; i < n; i++) {
		Runtime__V1__NetworkInterfaceUsage *u = &s->ifu[i];
		runtime__v1__network_interface_usage__init(u);
		for (int k = 0; k < 4; k++)
			runtime__v1__uint64_value__init(&s->ifv[i][k]);
		u->name = s->ifs[i].name;
		s->ifv[i][0].value = s->ifs[i].rx_bytes;
		s->ifv[i][1].value = s->ifs[i].rx_errors;
		s->ifv[i][2].value = s->ifs[i].tx_bytes;
		s->ifv[i][3].value = s->ifs[i].tx_errors;
		u->rx_bytes = &s->ifv[i][0];
		u->rx_errors = &s->ifv[i][1];
		u->tx_bytes = &s->ifv[i][2];
		u->tx_errors = &s->ifv[i][3];
		s->pifu[i] = u;
		if (strcmp(u->name, "eth0") == 0)
			s->net.default_interface = u;
	}
	s->net.n_interfaces = (size_t)n;
	s->net.interfaces = s->pifu;
	s->lx.network = &s->net;
}

/* Fill s for pod (all: every pod, to tell whether its cgroup is its own);
 * -1 with err on failure, s freed by podstats_free either way. */
static int podstats_fill(struct execd *x, const struct state_pod *pod, struct state_pod *const *all, size_t nall,
			 struct podstats_buf *s, crisp_err_t *err)
{
	struct state_ctr_filter f = { .state = -1, .cri_state = -1, .pod_id = pod->id };
	struct state_ctr **v = NULL;
	size_t n = 0;
	struct ctr_cg cg;
	struct ctr_cg_stats sum, cs;
	uint64_t nproc = 0;
	bool own;
	struct timespec ts;

	runtime__v1__pod_sandbox_stats__init(&s->st);
	runtime__v1__pod_sandbox_attributes__init(&s->attr);
	runtime__v1__pod_sandbox_metadata__init(&s->md);
	runtime__v1__linux_pod_sandbox_stats__init(&s->lx);
	runtime__v1__cpu_usage__init(&s->cpu);
	runtime__v1__memory_usage__init(&s->mem);
	runtime__v1__process_usage__init(&s->proc);
	runtime__v1__uint64_value__init(&s->cpu_total);
	runtime__v1__uint64_value__init(&s->mem_ws);
	runtime__v1__uint64_value__init(&s->mem_usage);
	runtime__v1__uint64_value__init(&s->nproc);
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;

	s->md.name = pod->name;
	s->md.namespace_ = pod->namespace;
	s->md.uid = pod->uid;
	s->md.attempt = pod->attempt;
	s->attr.id = (char *)pod->id;
	s->attr.metadata = &s->md;
	s->labels = pods_kv_entries(&pod->labels);
	s->ann = pods_kv_entries(&pod->annotations);
	if (s->labels == NULL || s->ann == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
	s->attr.n_labels = pod->labels.n;
	s->attr.labels = s->labels;
	s->attr.n_annotations = pod->annotations.n;
	s->attr.annotations = s->ann;

	if (state_ctr_list(x->pods.st, &f, &v, &n, err) < 0)
		return -1;
	s->records = v; /* freed with s */
	s->nrecords = n;
	memset(&sum, 0, sizeof sum);
	own = pod_cgroup(pod, all, nall, &cg);
	if (own) {
		ctr_cgroup_stats(&cg, &sum);
		nproc = ctr_cgroup_procs(&cg);
	}
	s->cs = calloc(n + 1, sizeof *s->cs);
	s->pcs = calloc(n + 1, sizeof *s->pcs);
	if (s->cs == NULL || s->pcs == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
	for (size_t i = 0; i < n; i++) {
		crisp_err_t e2 = CRISP_ERR_INIT;
		if (!own && ctr_cgroups(x, v[i]->id, &cg, &e2) == 0) {
			ctr_cgroup_stats(&cg, &cs);
			sum.cpu_ns += cs.cpu_ns;
			sum.mem_usage += cs.mem_usage;
			sum.mem_working_set += cs.mem_working_set;
			nproc += ctr_cgroup_procs(&cg);
		}
		if (v[i]->state != CTR_RUNNING)
			continue;
		if (stats_fill(x, v[i], &s->cs[s->ncs]) < 0) {
			stats_free(&s->cs[s->ncs]);
			return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		}
		s->pcs[s->ncs] = &s->cs[s->ncs].st;
		s->ncs++;
	}
	/* the pod's pid 1 (shared PID namespace) lives outside every cgroup */
	if (pod->infra_pid > 0 && ctr_proc_start(pod->infra_pid) == pod->infra_start)
		nproc++;

	s->cpu_total.value = sum.cpu_ns;
	s->cpu.timestamp = now;
	s->cpu.usage_core_nano_seconds = &s->cpu_total;
	s->mem_ws.value = sum.mem_working_set;
	s->mem_usage.value = sum.mem_usage;
	s->mem.timestamp = now;
	s->mem.working_set_bytes = &s->mem_ws;
	s->mem.usage_bytes = &s->mem_usage;
	s->nproc.value = nproc;
	s->proc.timestamp = now;
	s->proc.process_count = &s->nproc;
	s->lx.cpu = &s->cpu;
	s->lx.memory = &s->mem;
	s->lx.process = &s->proc;
	s->lx.n_containers = s->ncs;
	s->lx.containers = s->pcs;
	podstats_net(pod, s, now);
	s->st.attributes = &s->attr;
	s->st.linux = &s->lx;
	return 0;
}

void ctrs_on_pod_stats(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	Cipc__PodStats *w = (Cipc__PodStats *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_pod_filter all_f = { .state = -1, .cri_state = -1 };
	struct state_pod *pod = NULL, **all = NULL;
	size_t nall = 0;
	struct podstats_buf *s = NULL;

	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "PodSandboxStats: no request");
		goto refuse;
	}
	if (w->req->pod_sandbox_id == NULL || w->req->pod_sandbox_id[0] == '\0') {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "PodSandboxStats: no pod sandbox id");
		goto refuse;
	}
	if (state_pod_get(x->pods.st, w->req->pod_sandbox_id, &pod, &err) < 0 ||
	    state_pod_list(x->pods.st, &all_f, &all, &nall, &err) < 0)
		goto refuse;
	if ((s = calloc(1, sizeof *s)) == NULL) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		goto refuse;
	}
	if (podstats_fill(x, pod, all, nall, s, &err) < 0)
		goto refuse;
	Cipc__PodStatsAns a = CIPC__POD_STATS_ANS__INIT;
	Runtime__V1__PodSandboxStatsResponse rs = RUNTIME__V1__POD_SANDBOX_STATS_RESPONSE__INIT;
	rs.stats = &s->st;
	a.resp = &rs;
	pods_answer(ch, m->hdr.reqid, IPC_POD_STATS_ANS, &a.base);
	goto out;
refuse:
	ctr_answer_error(ch, m->hdr.reqid, &err);
out:
	if (s)
		podstats_free(s);
	free(s);
	if (all)
		state_pod_list_free(all, nall);
	state_pod_free(pod);
}

void ctrs_on_pod_list_stats(struct ipc_chan *ch, struct ipc_msg *m, struct execd *x)
{
	Cipc__PodListStats *w = (Cipc__PodListStats *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	/* only READY pods, as containerd */
	struct state_pod_filter f = { .state = POD_READY, .cri_state = -1 };
	struct state_pod_filter all_f = { .state = -1, .cri_state = -1 };
	struct state_kv *sel = NULL;
	struct state_pod **v = NULL, **all = NULL;
	size_t n = 0, nall = 0, nfilled = 0;
	struct podstats_buf *s = NULL;
	Runtime__V1__PodSandboxStats **ps = NULL;

	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "ListPodSandboxStats: no request");
		goto refuse;
	}
	if (w->req->filter) {
		const Runtime__V1__PodSandboxStatsFilter *rf = w->req->filter;
		f.id = rf->id && rf->id[0] ? rf->id : NULL;
		if (rf->n_label_selector) {
			if ((sel = pods_selector((void *const *)rf->label_selector, rf->n_label_selector)) == NULL)
				goto oom;
			f.selector = sel;
			f.nselector = rf->n_label_selector;
		}
	}
	if (state_pod_list(x->pods.st, &f, &v, &n, &err) < 0 ||
	    state_pod_list(x->pods.st, &all_f, &all, &nall, &err) < 0)
		goto refuse;
	s = calloc(n + 1, sizeof *s);
	ps = calloc(n + 1, sizeof *ps);
	if (s == NULL || ps == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		nfilled = i + 1;
		if (podstats_fill(x, v[i], all, nall, &s[i], &err) < 0)
			goto refuse;
		ps[i] = &s[i].st;
	}
	Cipc__PodListStatsAns a = CIPC__POD_LIST_STATS_ANS__INIT;
	Runtime__V1__ListPodSandboxStatsResponse rs = RUNTIME__V1__LIST_POD_SANDBOX_STATS_RESPONSE__INIT;
	rs.n_stats = n;
	rs.stats = ps;
	a.resp = &rs;
	pods_answer(ch, m->hdr.reqid, IPC_POD_LIST_STATS_ANS, &a.base);
	goto out;
oom:
	crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
refuse:
	ctr_answer_error(ch, m->hdr.reqid, &err);
out:
	for (size_t i = 0; s && i < nfilled; i++)
		podstats_free(&s[i]);
	free(s);
	free(ps);
	free(sel);
	if (v)
		state_pod_list_free(v, n);
	if (all)
		state_pod_list_free(all, nall);
}
