/*
 * netd: pod networks on execd's request.  See pods.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "netd/cni.h"
#include "netd/cniconf.h"
#include "netd/netns.h"
#include "netd/pods.h"

#define CHILD_OUT_MAX (64u << 10)
#define IFNAME "eth0"

struct pod_op {
	struct pod_op *next;
	struct netd_pods *np;
	struct ipc_chan *ch; /* referenced */
	uint64_t reqid;
	bool setup;
	pid_t pid;
	int rfd;
	char pod_id[65];
	char netns_dir[PATH_MAX]; /* where this operation pins (setup) or looks first (teardown) */
	uint8_t *buf;
	size_t len;
};

int netd_pods_init(struct netd_pods *np, struct loop *l, const char *root, const char *runroot,
		   crisp_err_t *err)
{
	memset(np, 0, sizeof *np);
	np->loop = l;
	if ((size_t)snprintf(np->netns_dir, sizeof np->netns_dir, "%s/netns", runroot) >= sizeof np->netns_dir ||
	    (size_t)snprintf(np->cache_dir, sizeof np->cache_dir, "%s/netd/cni-cache", root) >= sizeof np->cache_dir ||
	    (size_t)snprintf(np->cidr_file, sizeof np->cidr_file, "%s/netd/pod-cidrs", root) >= sizeof np->cidr_file ||
	    (size_t)snprintf(np->state_dir, sizeof np->state_dir, "%s/netd/pods", root) >= sizeof np->state_dir)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "netd: state paths too long");
	if (crisp_mkdir_p(np->cache_dir, 0700, 0, 0) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "%s", np->cache_dir);
	if (crisp_mkdir_p(np->state_dir, 0700, 0, 0) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "%s", np->state_dir);
	int fd = open(np->cidr_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		ssize_t n = read(fd, np->pod_cidrs, sizeof np->pod_cidrs - 1);
		np->pod_cidrs[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	return netns_prepare_dir(np->netns_dir, err);
}

static bool pod_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* netd.netns_dir when set (an absolute, clean path: crispd checks), else
 * <runroot>/netns. */
static const char *netns_dir_of(const struct netd_pods *np, const Cipc__Config *cfg)
{
	return cfg != NULL && cfg->netns_dir != NULL && cfg->netns_dir[0] ? cfg->netns_dir : np->netns_dir;
}

/* ---- per-pod records ---- */

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

static int record_path(const struct netd_pods *np, const char *pod_id, char *buf, size_t sz)
{
	int n = snprintf(buf, sz, "%s/%s", np->state_dir, pod_id);
	return n < 0 || (size_t)n >= sz ? -1 : 0;
}

/* Durable before CNI ADD runs: {"netnsDir": dir, "network": name}. */
static int record_write(const struct netd_pods *np, const char *pod_id, const char *nsdir, const char *network,
			crisp_err_t *err)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	json_t *doc = json_pack("{s:s, s:s}", "netnsDir", nsdir, "network", network);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	int fd = -1, r = -1;

	if (text == NULL || record_path(np, pod_id, path, sizeof path) < 0) {
		crisp_error(err, CRISP_INTERNAL, ENOMEM, "netd: pod record");
		goto out;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || crisp_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "writing %s", path);
		if (fd >= 0)
			unlink(tmp);
		goto out;
	}
	r = fsync_dir(np->state_dir);
	if (r < 0)
		crisp_error(err, CRISP_INTERNAL, errno, "syncing %s", np->state_dir);
out:
	if (fd >= 0)
		close(fd);
	free(text);
	json_decref(doc);
	return r;
}

/* 1 with nsdir and network filled, 0 when there is no record, -1 when it
 * exists but cannot be used (the caller then falls back to the current
 * configuration and replaces it by removing it). */
static int record_read(const struct netd_pods *np, const char *pod_id, char *nsdir, size_t nsdirsz, char *network,
		       size_t networksz)
{
	char path[PATH_MAX];
	json_error_t je;
	json_t *doc;
	const char *d, *n;
	int r = -1;

	if (record_path(np, pod_id, path, sizeof path) < 0)
		return -1;
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (doc != NULL && json_unpack(doc, "{s:s, s:s}", "netnsDir", &d, "network", &n) == 0 && d[0] == '/' &&
	    n[0] != '\0' && crisp_strlcpy(nsdir, d, nsdirsz) < nsdirsz && crisp_strlcpy(network, n, networksz) < networksz)
		r = 1;
	else
		log_warn("pod %.12s: record %s is malformed; tearing down from the configuration", pod_id, path);
	json_decref(doc);
	return r;
}

static int record_remove(const struct netd_pods *np, const char *pod_id, crisp_err_t *err)
{
	char path[PATH_MAX];

	if (record_path(np, pod_id, path, sizeof path) < 0)
		return crisp_error(err, CRISP_INTERNAL, 0, "netd: pod record path too long");
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return 0;
		return crisp_error(err, CRISP_INTERNAL, errno, "removing %s", path);
	}
	(void)fsync_dir(np->state_dir);
	return 0;
}

/* ---- in the child ---- */

static void child_write(int fd, char tag, const ProtobufCMessage *pb)
{
	size_t n = protobuf_c_message_get_packed_size(pb);
	uint8_t *buf = malloc(n + 1);

	if (buf == NULL)
		_exit(1);
	buf[0] = (uint8_t)tag;
	protobuf_c_message_pack(pb, buf + 1);
	if (crisp_write_all(fd, buf, n + 1) < 0)
		_exit(1);
	free(buf);
}

static __attribute__((noreturn)) void child_fail(int fd, const crisp_err_t *e)
{
	Cipc__Error pe = CIPC__ERROR__INIT;

	pe.code = e->code ? e->code : CRISP_INTERNAL;
	pe.errnum = e->errnum;
	pe.message = (char *)e->msg;
	child_write(fd, 'E', &pe.base);
	_exit(0);
}

static int child_opts(const Cipc__Config *cfg, const struct netd_pods *np, struct cni_opts *o)
{
	memset(o, 0, sizeof *o);
	o->bin_dirs = (const char *const *)cfg->cni_plugin_dirs;
	o->nbin_dirs = cfg->n_cni_plugin_dirs;
	o->cache_dir = np->cache_dir;
	return 0;
}

/* CNI capability arguments: portMappings (host ports only), dns, the pod
 * CIDRs as ipRanges (one range set per CIDR: dual-stack gets two), and
 * bandwidth from the pod's annotations (execd parsed and bounded them; the
 * burst is left unlimited, as CRI-O and containerd do). */
static json_t *capability_args(const Cipc__NetSetup *rq, const char *pod_cidrs)
{
	json_t *caps = json_object(), *pm = json_array();
	char buf[1024], *save = NULL;

	crisp_strlcpy(buf, pod_cidrs, sizeof buf);
	if (buf[0]) {
		json_t *ranges = json_array();
		for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
			json_array_append_new(ranges, json_pack("[{s:s}]", "subnet", t));
		json_object_set_new(caps, "ipRanges", ranges);
	}

	for (size_t i = 0; i < rq->n_port_mappings; i++) {
		const Cipc__PortMapping *p = rq->port_mappings[i];
		if (p->host_port <= 0)
			continue;
		json_t *e = json_pack("{s:i, s:i, s:s}", "hostPort", p->host_port, "containerPort",
				      p->container_port, "protocol", p->protocol[0] ? p->protocol : "tcp");
		if (e != NULL && p->host_ip[0])
			json_object_set_new(e, "hostIP", json_string(p->host_ip));
		if (e != NULL)
			json_array_append_new(pm, e);
	}
	json_object_set_new(caps, "portMappings", pm);
	if (rq->ingress_bps || rq->egress_bps) {
		json_t *bw = json_object();
		if (rq->ingress_bps) {
			json_object_set_new(bw, "ingressRate", json_integer((json_int_t)rq->ingress_bps));
			json_object_set_new(bw, "ingressBurst", json_integer(INT32_MAX));
		}
		if (rq->egress_bps) {
			json_object_set_new(bw, "egressRate", json_integer((json_int_t)rq->egress_bps));
			json_object_set_new(bw, "egressBurst", json_integer(INT32_MAX));
		}
		json_object_set_new(caps, "bandwidth", bw);
	}
	if (rq->n_dns_servers || rq->n_dns_searches || rq->n_dns_options) {
		json_t *dns = json_object(), *sv = json_array(), *se = json_array(), *op = json_array();
		for (size_t i = 0; i < rq->n_dns_servers; i++)
			json_array_append_new(sv, json_string(rq->dns_servers[i]));
		for (size_t i = 0; i < rq->n_dns_searches; i++)
			json_array_append_new(se, json_string(rq->dns_searches[i]));
		for (size_t i = 0; i < rq->n_dns_options; i++)
			json_array_append_new(op, json_string(rq->dns_options[i]));
		json_object_set_new(dns, "servers", sv);
		json_object_set_new(dns, "searches", se);
		json_object_set_new(dns, "options", op);
		json_object_set_new(caps, "dns", dns);
	}
	return caps;
}

static __attribute__((noreturn)) void child_setup(const struct netd_pods *np, const char *nsdir,
						  const Cipc__Config *cfg, const Cipc__NetSetup *rq, int wfd)
{
	crisp_err_t err = CRISP_ERR_INIT, e2 = CRISP_ERR_INIT;
	struct cni_net net;
	struct cni_list list;
	struct cni_result res;
	struct cni_opts o;
	struct cni_rt rt;
	char path[PATH_MAX];
	int nsfd = -1;
	Cipc__NetResult out = CIPC__NET_RESULT__INIT;
	char *ips[2];

	memset(&net, 0, sizeof net);
	memset(&res, 0, sizeof res);
	if (cni_conf_find(cfg->cni_config_dir, cfg->cni_default_network, &net, &err) < 0) {
		err.code = CRISP_FAILED_PRECONDITION;
		child_fail(wfd, &err);
	}
	if (cni_list_load(&net, &list, &err) < 0)
		child_fail(wfd, &err);
	/* The pin first: its creation is the atomic "this pod has no network
	 * yet" check (ALREADY_EXISTS leaves the existing pod's record alone). */
	if (netns_create(nsdir, rq->pod_id, path, sizeof path, &nsfd, &err) < 0)
		child_fail(wfd, &err);
	close(nsfd);
	if (record_write(np, rq->pod_id, nsdir, net.name, &err) < 0) {
		(void)netns_delete(nsdir, rq->pod_id, &e2);
		child_fail(wfd, &err);
	}
	child_opts(cfg, np, &o);
	memset(&rt, 0, sizeof rt);
	rt.container_id = rq->pod_id;
	rt.netns = path;
	rt.ifname = IFNAME;
	rt.k8s_namespace = rq->namespace_;
	rt.k8s_name = rq->name;
	rt.k8s_uid = rq->uid;
	rt.capability_args = capability_args(rq, np->pod_cidrs);
	if (cni_add(&o, &list, &rt, &res, &err) < 0) {
		/* cni_add has run DEL already; the pin and the record go too:
		 * nothing half made stays. */
		if (netns_delete(nsdir, rq->pod_id, &e2) == 0)
			(void)record_remove(np, rq->pod_id, &e2);
		child_fail(wfd, &err);
	}
	out.netns_path = path;
	out.network = net.name;
	const char *v4 = cni_result_ip(&res, AF_INET), *v6 = cni_result_ip(&res, AF_INET6);
	if (v4[0]) /* cni_result_ip: "" when the family has no address */
		ips[out.n_ips++] = (char *)v4;
	if (v6[0])
		ips[out.n_ips++] = (char *)v6;
	out.ips = ips;
	child_write(wfd, 'R', &out.base);
	_exit(0);
}

static __attribute__((noreturn)) void child_teardown(const struct netd_pods *np, const char *cur_nsdir,
						     const Cipc__Config *cfg, const Cipc__NetTeardown *rq, int wfd)
{
	crisp_err_t err = CRISP_ERR_INIT;
	struct cni_net net;
	struct cni_list list, *lp = NULL;
	struct cni_opts o;
	struct cni_rt rt;
	char path[PATH_MAX + 80], cache[PATH_MAX], nsdir[PATH_MAX], rec_network[256] = "";
	Cipc__Empty done = CIPC__EMPTY__INIT;
	const char *network;
	int rec;

	memset(&net, 0, sizeof net);
	rec = record_read(np, rq->pod_id, nsdir, sizeof nsdir, rec_network, sizeof rec_network);
	if (rec <= 0)
		crisp_strlcpy(nsdir, cur_nsdir, sizeof nsdir);
	if ((size_t)snprintf(path, sizeof path, "%s/%.64s", nsdir, rq->pod_id) >= sizeof path) {
		crisp_error(&err, CRISP_INTERNAL, 0, "netns path too long");
		child_fail(wfd, &err);
	}
	/* The current network is only the fallback: DEL uses what the cache
	 * says ADD used.  No configuration at all is fine when nothing was
	 * ever added. */
	if (cni_conf_find(cfg->cni_config_dir, cfg->cni_default_network, &net, &err) == 0 &&
	    cni_list_load(&net, &list, &err) == 0)
		lp = &list;
	child_opts(cfg, np, &o);
	memset(&rt, 0, sizeof rt);
	rt.container_id = rq->pod_id;
	rt.netns = access(path, F_OK) == 0 ? path : "";
	rt.ifname = IFNAME;
	rt.k8s_namespace = rq->namespace_;
	rt.k8s_name = rq->name;
	rt.k8s_uid = rq->uid;
	network = rq->network[0] ? rq->network : rec_network[0] ? rec_network : lp ? lp->name : NULL;
	/* No record (a teardown that already succeeded, typically the
	 * RemovePodSandbox after a StopPodSandbox, or a pod netd never set
	 * up), no pin and no cache entry: nothing to undo, no plugin to run.
	 * A record that exists but is damaged (rec < 0) is not this case. */
	if (rec == 0 && rt.netns[0] == '\0' &&
	    (network == NULL || (cni_cache_path(&o, network, &rt, cache, sizeof cache, &err) == 0 &&
				 access(cache, F_OK) < 0 && errno == ENOENT))) {
		child_write(wfd, 'D', &done.base);
		_exit(0);
	}
	if (network != NULL && cni_del(&o, network, lp && !strcmp(lp->name, network) ? lp : NULL, &rt, &err) < 0)
		child_fail(wfd, &err);
	if (netns_delete(nsdir, rq->pod_id, &err) < 0)
		child_fail(wfd, &err);
	/* Last: a failure before leaves the record, so the next teardown
	 * (RemovePodSandbox after a failed stop) runs DEL again. */
	if (record_remove(np, rq->pod_id, &err) < 0)
		child_fail(wfd, &err);
	child_write(wfd, 'D', &done.base);
	_exit(0);
}

/* ---- in netd ---- */

static void op_free(struct pod_op *op)
{
	struct netd_pods *np = op->np;

	for (struct pod_op **pp = &np->ops; *pp; pp = &(*pp)->next)
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	np->nops--;
	if (op->rfd >= 0) {
		loop_del(np->loop, op->rfd);
		close(op->rfd);
	}
	if (op->pid > 0) {
		kill(op->pid, SIGKILL);
		(void)waitpid(op->pid, NULL, 0);
	}
	ipc_chan_unref(op->ch);
	free(op->buf);
	free(op);
}

static void op_answer_error(struct pod_op *op, int code, const char *msg)
{
	crisp_err_t e = CRISP_ERR_INIT;

	crisp_error(&e, code, 0, "%s", msg);
	if (ipc_answer_error(op->ch, op->reqid, &e) < 0)
		log_debug("pod %s: error answer not sent (execd gone?)", op->pod_id);
}

static void op_finish(struct pod_op *op)
{
	crisp_err_t err = CRISP_ERR_INIT;
	int status = 0;

	(void)waitpid(op->pid, &status, 0);
	op->pid = 0;
	if (op->len < 1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		op_answer_error(op, CRISP_INTERNAL, "netd: the network helper died");
	} else if (op->buf[0] == 'E') {
		Cipc__Error *pe = cipc__error__unpack(NULL, op->len - 1, op->buf + 1);
		if (pe == NULL) {
			op_answer_error(op, CRISP_INTERNAL, "netd: malformed helper answer");
		} else {
			op_answer_error(op, pe->code, pe->message);
			cipc__error__free_unpacked(pe, NULL);
		}
	} else if (op->buf[0] == 'R' && op->setup) {
		Cipc__NetResult *r = cipc__net_result__unpack(NULL, op->len - 1, op->buf + 1);
		int fd = -1;
		if (r == NULL) {
			op_answer_error(op, CRISP_INTERNAL, "netd: malformed helper answer");
		} else if (netns_open(op->netns_dir, op->pod_id, &fd, &err) < 0) {
			op_answer_error(op, err.code, err.msg);
		} else {
			if (ipc_answer(op->ch, op->reqid, IPC_NET_RESULT, &r->base, fd, &err) < 0)
				log_warn("pod %s: NET_RESULT not sent: %s", op->pod_id, err.msg);
			close(fd);
		}
		if (r != NULL)
			cipc__net_result__free_unpacked(r, NULL);
	} else if (op->buf[0] == 'D' && !op->setup) {
		Cipc__Empty e = CIPC__EMPTY__INIT;
		if (ipc_answer(op->ch, op->reqid, IPC_NET_DONE, &e.base, -1, &err) < 0)
			log_debug("pod %s: NET_DONE not sent: %s", op->pod_id, err.msg);
	} else {
		op_answer_error(op, CRISP_INTERNAL, "netd: unexpected helper answer");
	}
	op_free(op);
}

static void on_child_out(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct pod_op *op = arg;
	uint8_t tmp[4096];
	ssize_t n;

	(void)l;
	(void)events;
	n = read(fd, tmp, sizeof tmp);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		op_finish(op);
		return;
	}
	if (op->len + (size_t)n > CHILD_OUT_MAX) {
		op_answer_error(op, CRISP_INTERNAL, "netd: helper answer too large");
		op_free(op);
		return;
	}
	uint8_t *nb = realloc(op->buf, op->len + (size_t)n);
	if (nb == NULL) {
		op_answer_error(op, CRISP_RESOURCE_EXHAUSTED, "netd: out of memory");
		op_free(op);
		return;
	}
	memcpy(nb + op->len, tmp, (size_t)n);
	op->buf = nb;
	op->len += (size_t)n;
}

/* Start an operation; the child runs fn and never returns. */
static void op_start(struct netd_pods *np, const Cipc__Config *cfg, struct ipc_chan *ch, struct ipc_msg *m,
		     const char *pod_id, bool setup)
{
	crisp_err_t e = CRISP_ERR_INIT;
	struct pod_op *op;
	int p[2];

	if (cfg == NULL) {
		crisp_error(&e, CRISP_UNAVAILABLE, 0, "netd has no configuration yet");
		goto refuse;
	}
	if (!pod_id_ok(pod_id)) {
		crisp_error(&e, CRISP_INVALID_ARGUMENT, 0, "pod id must be 64 hex characters");
		goto refuse;
	}
	for (op = np->ops; op; op = op->next)
		if (!strcmp(op->pod_id, pod_id)) {
			crisp_error(&e, CRISP_ABORTED, 0, "a network operation for pod %s is in progress", pod_id);
			goto refuse;
		}
	if (np->nops >= NETD_MAX_OPS) {
		crisp_error(&e, CRISP_RESOURCE_EXHAUSTED, 0, "too many network operations in progress");
		goto refuse;
	}
	op = calloc(1, sizeof *op);
	if (op == NULL || pipe2(p, O_CLOEXEC) < 0) {
		free(op);
		crisp_error(&e, CRISP_RESOURCE_EXHAUSTED, errno, "netd");
		goto refuse;
	}
	op->np = np;
	op->reqid = m->hdr.reqid;
	op->setup = setup;
	crisp_strlcpy(op->pod_id, pod_id, sizeof op->pod_id);
	crisp_strlcpy(op->netns_dir, netns_dir_of(np, cfg), sizeof op->netns_dir);
	op->pid = fork();
	if (op->pid < 0) {
		close(p[0]);
		close(p[1]);
		free(op);
		crisp_error(&e, CRISP_RESOURCE_EXHAUSTED, errno, "netd: fork");
		goto refuse;
	}
	if (op->pid == 0) {
		close(p[0]);
		signal(SIGPIPE, SIG_IGN);
		if (setup)
			child_setup(np, op->netns_dir, cfg, (const Cipc__NetSetup *)m->pb, p[1]);
		child_teardown(np, op->netns_dir, cfg, (const Cipc__NetTeardown *)m->pb, p[1]);
	}
	close(p[1]);
	op->rfd = p[0];
	op->ch = ipc_chan_ref(ch);
	crisp_set_nonblock(op->rfd, true);
	op->next = np->ops;
	np->ops = op;
	np->nops++;
	if (loop_add(np->loop, op->rfd, EPOLLIN, on_child_out, op) < 0) {
		op_answer_error(op, CRISP_INTERNAL, "netd: cannot watch the helper");
		op_free(op);
	}
	return;
refuse:
	if (ipc_answer_error(ch, m->hdr.reqid, &e) < 0)
		log_debug("network refusal not sent");
}

void netd_pods_setup(struct netd_pods *np, const Cipc__Config *cfg, struct ipc_chan *ch, struct ipc_msg *m)
{
	const Cipc__NetSetup *rq = (const Cipc__NetSetup *)m->pb;

	op_start(np, cfg, ch, m, rq->pod_id, true);
}

void netd_pods_teardown(struct netd_pods *np, const Cipc__Config *cfg, struct ipc_chan *ch, struct ipc_msg *m)
{
	const Cipc__NetTeardown *rq = (const Cipc__NetTeardown *)m->pb;

	op_start(np, cfg, ch, m, rq->pod_id, false);
}

/* "addr/prefix" with a valid IPv4 or IPv6 address and prefix length: netd
 * checks what frontd sent before a plugin sees it. */
static bool cidr_ok(const char *s)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	unsigned char buf[16];
	char *end;
	long prefix;

	if (slash == NULL || (size_t)(slash - s) >= sizeof addr)
		return false;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	errno = 0;
	prefix = strtol(slash + 1, &end, 10);
	if (errno || *end || end == slash + 1 || prefix < 0)
		return false;
	if (inet_pton(AF_INET, addr, buf) == 1)
		return prefix <= 32;
	return inet_pton(AF_INET6, addr, buf) == 1 && prefix <= 128;
}

void netd_pods_runtime_config(struct netd_pods *np, struct ipc_chan *ch, struct ipc_msg *m)
{
	const Cipc__NetRuntimeConfig *rc = (const Cipc__NetRuntimeConfig *)m->pb;
	Cipc__Empty ok = CIPC__EMPTY__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	char next[sizeof np->pod_cidrs] = "", tmp[PATH_MAX + 8];
	size_t o = 0;
	int fd;

	for (size_t i = 0; i < rc->n_pod_cidrs; i++) {
		int n = snprintf(next + o, sizeof next - o, "%s%s", i ? "," : "", rc->pod_cidrs[i]);
		if (n < 0 || (size_t)n >= sizeof next - o || !cidr_ok(rc->pod_cidrs[i])) {
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "pod CIDRs too long or malformed");
			goto refuse;
		}
		o += (size_t)n;
	}
	/* Durable before answering: written, synced, renamed into place. */
	snprintf(tmp, sizeof tmp, "%s.tmp", np->cidr_file);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || crisp_write_all(fd, next, strlen(next)) < 0 || fsync(fd) < 0 || rename(tmp, np->cidr_file) < 0) {
		crisp_error(&err, CRISP_INTERNAL, errno, "%s", np->cidr_file);
		if (fd >= 0)
			close(fd);
		goto refuse;
	}
	close(fd);
	if (strcmp(next, np->pod_cidrs))
		log_info("pod CIDRs: %s", next[0] ? next : "(none)");
	crisp_strlcpy(np->pod_cidrs, next, sizeof np->pod_cidrs);
	if (ipc_answer(ch, m->hdr.reqid, IPC_NET_RUNTIME_CONFIG_OK, &ok.base, -1, &err) < 0)
		log_debug("runtime config answer not sent: %s", err.msg);
	return;
refuse:
	if (ipc_answer_error(ch, m->hdr.reqid, &err) < 0)
		log_debug("runtime config refusal not sent");
}

int netd_pods_netns_open(const struct netd_pods *np, const char *pod_id, int *fd, crisp_err_t *err)
{
	char nsdir[PATH_MAX], network[256];

	if (!pod_id_ok(pod_id))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "pod id must be 64 hex characters");
	if (record_read(np, pod_id, nsdir, sizeof nsdir, network, sizeof network) == 1)
		return netns_open(nsdir, pod_id, fd, err);
	return netns_open(np->netns_dir, pod_id, fd, err);
}

void netd_pods_stop(struct netd_pods *np)
{
	while (np->ops != NULL)
		op_free(np->ops);
}
