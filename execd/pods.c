/*
 * execd: pod sandboxes.  See pods.h.
 */
#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "execd/containers.h"
#include "execd/ctr.h"
#include "execd/ctr_shm.h"
#include "execd/execd.h"
#include "execd/pods.h"
#include "frontd/validate.h"
#include "proto/ipc.pb-c.h"

#define NET_TIMEOUT_MS 300000

#define NS_NODE RUNTIME__V1__NAMESPACE_MODE__NODE

struct pod_op {
	struct execd_pods *p;
	struct ipc_chan *ch; /* referenced */
	uint64_t reqid;
	char id[STATE_ID_LEN + 1];
	Cipc__PodRun *run;   /* owned (RunPodSandbox) */
	bool remove;         /* Stop/Remove: remove after stopping */
	bool do_net;         /* Stop/Remove: tear the network down */
	crisp_err_t err;     /* a failed run: what the client gets after the rollback */
	struct state_pod *pod; /* Stop/Remove: the record, while containers stop */
	char mcs[LSM_LABEL_MAX]; /* the pod's SELinux level, released with the pod */
};

static void containers_stopped(void *arg);

/* ---- small helpers ---- */

static void answer_error(struct ipc_chan *ch, uint64_t reqid, const crisp_err_t *e)
{
	if (ipc_answer_error(ch, reqid, e) < 0)
		log_debug("error answer not sent (frontd gone?)");
}

/* An answer that cannot be sent (over its size bound, say) becomes an
 * error answer, so the client never waits out its deadline for nothing. */
void pods_answer(struct ipc_chan *ch, uint64_t reqid, uint32_t type, const ProtobufCMessage *pb)
{
	crisp_err_t err = CRISP_ERR_INIT;

	if (ipc_answer(ch, reqid, type, pb, -1, &err) == 0 || err.code == CRISP_UNAVAILABLE)
		return;
	log_warn("answer %u not sent: %s", type, err.msg);
	if (err.code == CRISP_INVALID_ARGUMENT) /* over the type's bound: too much to answer */
		err.code = CRISP_RESOURCE_EXHAUSTED;
	answer_error(ch, reqid, &err);
}

#define answer pods_answer

static int pod_path(const struct execd_pods *p, const char *id, const char *leaf, char *out, size_t n)
{
	int r = leaf ? snprintf(out, n, "%s/%s/%s", p->pods_dir, id, leaf) : snprintf(out, n, "%s/%s", p->pods_dir, id);
	return r < 0 || (size_t)r >= n ? -1 : 0;
}

static int write_file(const char *path, const char *text, crisp_err_t *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);

	if (fd < 0 || crisp_write_all(fd, text, strlen(text)) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return crisp_error(err, CRISP_INTERNAL, e, "%s", path);
	}
	close(fd);
	return 0;
}

static const Runtime__V1__NamespaceOption *ns_options(const Runtime__V1__PodSandboxConfig *c)
{
	if (c->linux && c->linux->security_context)
		return c->linux->security_context->namespace_options;
	return NULL;
}

/* ---- namespaces pinned by bind mounts ---- */

static bool sysctl_is_ipc(const char *k)
{
	return !strncmp(k, "kernel.shm", 10) || !strncmp(k, "kernel/shm", 10) || !strcmp(k, "kernel.msgmax") ||
	       !strcmp(k, "kernel.msgmnb") || !strcmp(k, "kernel.msgmni") || !strcmp(k, "kernel.sem") ||
	       !strncmp(k, "fs.mqueue.", 10) || !strncmp(k, "fs/mqueue/", 10);
}

static bool sysctl_is_net(const char *k)
{
	return !strncmp(k, "net.", 4) || !strncmp(k, "net/", 4);
}

/* Check every sysctl is namespaced and its namespace is the pod's own. */
/*
 * kubelet's bandwidth annotations (kubernetes.io/ingress-bandwidth,
 * egress-bandwidth: a quantity of bits per second such as "10M") for the
 * CNI bandwidth capability, checked as kubelet does: 1k to 1P.  0 when the
 * annotation is absent.
 */
#define BW_INGRESS "kubernetes.io/ingress-bandwidth"
#define BW_EGRESS "kubernetes.io/egress-bandwidth"

static int pod_bandwidth(const Runtime__V1__PodSandboxConfig *c, const char *key, uint64_t *bps, crisp_err_t *err)
{
	*bps = 0;
	for (size_t i = 0; i < c->n_annotations; i++) {
		if (strcmp(c->annotations[i]->key, key) != 0)
			continue;
		if (crisp_parse_quantity(c->annotations[i]->value, bps) < 0)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "annotation %s: \"%.64s\" is not a quantity such as 10M", key,
					   c->annotations[i]->value);
		if (*bps < 1000ULL || *bps > 1000000000000000ULL)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "annotation %s: %.64s is out of range (1k to 1P bits per second)", key,
					   c->annotations[i]->value);
		return 0;
	}
	return 0;
}

static int check_sysctls(const Runtime__V1__LinuxPodSandboxConfig *l, bool host_net, bool host_ipc, crisp_err_t *err)
{
	for (size_t i = 0; l && i < l->n_sysctls; i++) {
		const char *k = l->sysctls[i]->key;
		/* The key becomes a path below /proc/sys written as root: the
		 * validator already refuses empty components, and execd checks
		 * again what would escape, whatever the validator becomes. */
		if (strstr(k, "..") || strstr(k, "//") || k[0] == '/' || k[0] == '.' || strchr(k, '\n'))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "sysctl %.64s: not a sysctl name", k);
		if (sysctl_is_net(k)) {
			if (host_net)
				return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
						   "sysctl %s: not allowed with the host's network namespace", k);
		} else if (sysctl_is_ipc(k)) {
			if (host_ipc)
				return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
						   "sysctl %s: not allowed with the host's IPC namespace", k);
		} else {
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "sysctl %s is not namespaced", k);
		}
	}
	return 0;
}

static __attribute__((noreturn)) void child_die(int fd, const char *what, const char *arg)
{
	char msg[512];
	int n = snprintf(msg, sizeof msg, "%s%s: %s", what, arg, strerror(errno));

	if (n > 0)
		(void)!write(fd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
	_exit(1);
}

/*
 * In a child: join the pod's netns (for net.* sysctls), make new UTS and
 * IPC namespaces as asked, set the hostname, apply the sysctls, and pin the
 * namespaces by bind-mounting them onto ns/uts and ns/ipc.
 */
static int pin_namespaces(const char *nsdir, const char *hostname, int netns_fd, bool new_uts, bool new_ipc,
			  const Runtime__V1__LinuxPodSandboxConfig *l, crisp_err_t *err)
{
	int p[2];
	pid_t pid;
	char msg[512];
	ssize_t n;
	int status;

	if (pipe2(p, O_CLOEXEC) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return crisp_error(err, CRISP_INTERNAL, errno, "fork");
	}
	if (pid == 0) {
		char path[PATH_MAX], src[64];
		close(p[0]);
		if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) < 0)
			child_die(p[1], "join the pod network namespace", "");
		if (unshare((new_uts ? CLONE_NEWUTS : 0) | (new_ipc ? CLONE_NEWIPC : 0)) < 0)
			child_die(p[1], "new namespaces", "");
		if (new_uts && sethostname(hostname, strlen(hostname)) < 0)
			child_die(p[1], "sethostname ", hostname);
		for (size_t i = 0; l && i < l->n_sysctls; i++) {
			const char *k = l->sysctls[i]->key, *v = l->sysctls[i]->value;
			size_t o = (size_t)snprintf(path, sizeof path, "/proc/sys/");
			for (const char *c = k; *c && o + 1 < sizeof path; c++)
				path[o++] = strchr(k, '/') ? *c : (*c == '.' ? '/' : *c);
			path[o] = '\0';
			int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0 || crisp_write_all(fd, v, strlen(v)) < 0)
				child_die(p[1], "sysctl ", k);
			close(fd);
		}
		static const char *const kinds[] = { "uts", "ipc" };
		for (int i = 0; i < 2; i++) {
			if ((i == 0 && !new_uts) || (i == 1 && !new_ipc))
				continue;
			if ((size_t)snprintf(path, sizeof path, "%.4000s/%s", nsdir, kinds[i]) >= sizeof path)
				child_die(p[1], "pin ", "path too long");
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
			if (fd < 0)
				child_die(p[1], "pin ", path);
			close(fd);
			snprintf(src, sizeof src, "/proc/self/ns/%s", kinds[i]);
			if (mount(src, path, NULL, MS_BIND, NULL) < 0)
				child_die(p[1], "pin ", path);
		}
		_exit(0);
	}
	close(p[1]);
	n = read(p[0], msg, sizeof msg - 1);
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n > 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		msg[n > 0 ? n : 0] = '\0';
		return crisp_error(err, strncmp(msg, "sysctl", 6) ? CRISP_INTERNAL : CRISP_INVALID_ARGUMENT, 0,
				   "pod namespaces: %s", n > 0 ? msg : "helper died");
	}
	return 0;
}

/* Undo everything below the pod's directory; idempotent. */
static void pod_dir_remove(struct execd_pods *p, const char *id)
{
	char path[PATH_MAX];
	static const char *const leaves[] = { "ns/uts", "ns/ipc", "hostname", "resolv.conf", "hosts" };

	ctr_shm_unmount(p->pods_dir, id);
	for (size_t i = 0; i < ARRAY_SIZE(leaves); i++) {
		if (pod_path(p, id, leaves[i], path, sizeof path) < 0)
			return;
		if (i < 2)
			(void)umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
		(void)unlink(path);
	}
	if (pod_path(p, id, "ns", path, sizeof path) == 0)
		(void)rmdir(path);
	if (pod_path(p, id, "infra", path, sizeof path) == 0)
		(void)rmdir(path);
	if (pod_path(p, id, NULL, path, sizeof path) == 0 && rmdir(path) < 0 && errno != ENOENT)
		log_warn("pod %.12s: %s stays: %s", id, path, strerror(errno));
}

static int pod_files(struct execd_pods *p, const char *id, const Runtime__V1__PodSandboxConfig *c,
		     const char *hostname, const char *ip, crisp_err_t *err)
{
	char path[PATH_MAX], buf[8192];
	size_t o = 0;

	if (pod_path(p, id, "hostname", path, sizeof path) < 0)
		return crisp_error(err, CRISP_INTERNAL, 0, "pod path too long");
	snprintf(buf, sizeof buf, "%s\n", hostname);
	if (write_file(path, buf, err) < 0)
		return -1;
	/* resolv.conf: the pod's DNS config, else the node's. */
	if (c->dns_config && (c->dns_config->n_servers || c->dns_config->n_searches || c->dns_config->n_options)) {
		const Runtime__V1__DNSConfig *d = c->dns_config;
		for (size_t i = 0; i < d->n_servers && o < sizeof buf; i++)
			o += (size_t)snprintf(buf + o, sizeof buf - o, "nameserver %s\n", d->servers[i]);
		if (d->n_searches && o < sizeof buf) {
			o += (size_t)snprintf(buf + o, sizeof buf - o, "search");
			for (size_t i = 0; i < d->n_searches && o < sizeof buf; i++)
				o += (size_t)snprintf(buf + o, sizeof buf - o, " %s", d->searches[i]);
			if (o < sizeof buf)
				o += (size_t)snprintf(buf + o, sizeof buf - o, "\n");
		}
		if (d->n_options && o < sizeof buf) {
			o += (size_t)snprintf(buf + o, sizeof buf - o, "options");
			for (size_t i = 0; i < d->n_options && o < sizeof buf; i++)
				o += (size_t)snprintf(buf + o, sizeof buf - o, " %s", d->options[i]);
			if (o < sizeof buf)
				o += (size_t)snprintf(buf + o, sizeof buf - o, "\n");
		}
		if (o >= sizeof buf)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "dns_config: resolv.conf over %zu bytes",
					   sizeof buf);
	} else {
		int fd = open("/etc/resolv.conf", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : 0;
		buf[n > 0 ? n : 0] = '\0';
		if (fd >= 0)
			close(fd);
	}
	if (pod_path(p, id, "resolv.conf", path, sizeof path) < 0 || write_file(path, buf, err) < 0)
		return -1;
	snprintf(buf, sizeof buf, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s%s%s\n",
		 ip && ip[0] ? ip : "", ip && ip[0] ? "\t" : "", ip && ip[0] ? hostname : "");
	if (pod_path(p, id, "hosts", path, sizeof path) < 0 || write_file(path, buf, err) < 0)
		return -1;
	return 0;
}

/* ---- network through netd ---- */

static void net_teardown_done(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	(void)ch;
	(void)ans;
	if (e != NULL)
		log_warn("pod %.12s: network teardown: %s", (const char *)arg, e->msg);
	free(arg);
}

/* Fire-and-forget teardown (rollback paths): netd's DEL is idempotent. */
static void net_teardown_bg(struct execd_pods *p, const char *id, const char *name, const char *ns, const char *uid)
{
	struct ipc_chan *nd = role_peer(p->role, ROLE_NETD);
	Cipc__NetTeardown t = CIPC__NET_TEARDOWN__INIT;
	crisp_err_t err = CRISP_ERR_INIT;
	char *tag;

	if (nd == NULL || (tag = strdup(id)) == NULL) {
		log_warn("pod %.12s: network not torn down (netd unavailable); it will be at the next removal", id);
		return;
	}
	t.pod_id = (char *)id;
	t.name = (char *)name;
	t.namespace_ = (char *)ns;
	t.uid = (char *)uid;
	if (ipc_request(nd, IPC_NET_TEARDOWN, &t.base, -1, NET_TIMEOUT_MS, net_teardown_done, tag, NULL, &err) < 0) {
		log_warn("pod %.12s: network teardown: %s", id, err.msg);
		free(tag);
	}
}

/* ---- runtime policy ---- */

void pods_set_handlers(struct execd_pods *p, char *const *h, size_t n)
{
	p->nhandlers = 0;
	for (size_t i = 0; i < n && p->nhandlers < sizeof p->handlers / sizeof p->handlers[0]; i++) {
		const char *eq = strchr(h[i], '=');
		struct pods_handler *d = &p->handlers[p->nhandlers];
		if (eq == NULL || (size_t)(eq - h[i]) >= sizeof d->name || eq[1] != '/')
			continue;
		memcpy(d->name, h[i], (size_t)(eq - h[i]));
		d->name[eq - h[i]] = '\0';
		crisp_strlcpy(d->path, eq + 1, sizeof d->path);
		p->nhandlers++;
	}
}

const char *pods_handler_path(const struct execd_pods *p, const char *name)
{
	for (size_t i = 0; name && name[0] && i < p->nhandlers; i++)
		if (!strcmp(p->handlers[i].name, name))
			return p->handlers[i].path;
	return NULL;
}

bool pods_handler_known(const struct execd_pods *p, const char *name)
{
	return name == NULL || name[0] == '\0' || pods_handler_path(p, name) != NULL;
}

void pods_set_policy_path(struct execd_pods *p, const char *path)
{
	if (strcmp(p->policy_path, path ? path : "") != 0) {
		crisp_strlcpy(p->policy_path, path ? path : "", sizeof p->policy_path);
		p->policy_loaded = false;
	}
}

/* (Re)load the policy when the file is new or changed since last time.  A
 * missing file means the embedded default; one that does not parse fails
 * closed until it is fixed. */
static void policy_refresh(struct execd_pods *p)
{
	struct stat st;
	crisp_err_t err = CRISP_ERR_INIT;
	bool have = p->policy_path[0] && stat(p->policy_path, &st) == 0;
	char *buf = NULL;
	struct rp_policy np;
	int r;

	if (p->policy_loaded && !have && p->policy_st.st_ino == 0)
		return;
	if (p->policy_loaded && have && st.st_ino == p->policy_st.st_ino && st.st_mtim.tv_sec == p->policy_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == p->policy_st.st_mtim.tv_nsec && st.st_size == p->policy_st.st_size)
		return;
	if (!have) {
		r = rp_default(&np, &err);
		memset(&st, 0, sizeof st);
	} else if (!S_ISREG(st.st_mode) || st.st_size > (1 << 20) || (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		r = crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "not a regular file under 1 MiB");
	} else {
		int fd = open(p->policy_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || crisp_read_all(fd, buf, (size_t)st.st_size) < 0)
			r = crisp_error(&err, CRISP_INVALID_ARGUMENT, errno, "read");
		else
			r = rp_parse(buf, (size_t)st.st_size, &np, &err);
		if (fd >= 0)
			close(fd);
	}
	free(buf);
	if (p->policy_ok)
		rp_free(&p->policy);
	p->policy_loaded = true;
	p->policy_st = st;
	p->policy_ok = r == 0;
	if (r == 0) {
		p->policy = np;
		log_info("runtime policy: %s", have ? p->policy_path : "embedded default");
	} else {
		snprintf(p->policy_err, sizeof p->policy_err, "runtime policy %.200s: %.250s", p->policy_path, err.msg);
		log_error("%s: new pods are refused until it is fixed", p->policy_err);
	}
}

/* The current runtime policy for a container admission (containers.c). */
int pods_policy(struct execd_pods *p, const struct rp_policy **out, crisp_err_t *err)
{
	policy_refresh(p);
	if (!p->policy_ok)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "%s", p->policy_err);
	*out = &p->policy;
	return 0;
}

/* ---- RunPodSandbox ---- */

static void op_free(struct pod_op *op)
{
	state_pod_free(op->pod);
	if (op->run)
		protobuf_c_message_free_unpacked(&op->run->base, NULL);
	ipc_chan_unref(op->ch);
	free(op);
}

static void run_abort(struct pod_op *op)
{
	crisp_err_t e2 = CRISP_ERR_INIT;

	if (state_pod_abort(op->p->st, op->id, &e2) < 0)
		log_error("pod %.12s: abort: %s", op->id, e2.msg);
	else
		lsm_mcs_release(op->p->lsm.mcs, op->mcs);
	answer_error(op->ch, op->reqid, &op->err);
	op_free(op);
}

static void run_fail_net_done(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	struct pod_op *op = arg;

	(void)ch;
	(void)ans;
	if (e != NULL)
		log_warn("pod %.12s: network rollback: %s", op->id, e->msg);
	run_abort(op);
}

/* Roll a failed run back -- files, pins, network -- and only then answer:
 * the client never sees an error while half a pod still exists. */
static void run_fail(struct pod_op *op, const crisp_err_t *e, bool net)
{
	struct execd_pods *p = op->p;
	const Runtime__V1__PodSandboxMetadata *md = op->run->req->config->metadata;
	struct ipc_chan *nd = role_peer(p->role, ROLE_NETD);
	Cipc__NetTeardown t = CIPC__NET_TEARDOWN__INIT;
	crisp_err_t e2 = CRISP_ERR_INIT;

	op->err = *e;
	pod_dir_remove(p, op->id);
	if (net && nd != NULL) {
		t.pod_id = op->id;
		t.name = md->name;
		t.namespace_ = md->namespace_;
		t.uid = md->uid;
		if (ipc_request(nd, IPC_NET_TEARDOWN, &t.base, -1, NET_TIMEOUT_MS, run_fail_net_done, op, NULL, &e2) == 0)
			return;
		log_warn("pod %.12s: network rollback: %s", op->id, e2.msg);
	} else if (net) {
		log_warn("pod %.12s: network not rolled back (netd unavailable): the next removal releases it", op->id);
	}
	run_abort(op);
}

/* The pod's SELinux options (all unset when it has none). */
static void pod_selinux_opt(const Runtime__V1__PodSandboxConfig *c, struct lsm_selinux_opt *o)
{
	const Runtime__V1__SELinuxOption *so =
		c && c->linux && c->linux->security_context ? c->linux->security_context->selinux_options : NULL;

	memset(o, 0, sizeof *o);
	if (so != NULL)
		*o = (struct lsm_selinux_opt){ so->user, so->role, so->type, so->level };
}

/* The pod's /dev/shm tmpfs gets the pod's mount label. */
static int pod_shm_label(struct execd_pods *p, const char *id, const char *level,
			 const Runtime__V1__PodSandboxConfig *c, crisp_err_t *err)
{
	char path[PATH_MAX], proc[LSM_LABEL_MAX], mnt[LSM_LABEL_MAX];
	struct lsm_selinux_opt o;

	if (!p->lsm.selinux)
		return 0;
	pod_selinux_opt(c, &o);
	if (ctr_shm_path(p->pods_dir, id, path, sizeof path) < 0)
		return crisp_error(err, CRISP_INTERNAL, 0, "pod shm path too long");
	if (lsm_ctr_selinux(&p->lsm, level, &o, NULL, false, proc, mnt, err) < 0)
		return -1;
	return lsm_label_path(&p->lsm, path, mnt, err);
}

int pods_shm_label(struct execd_pods *p, const struct state_pod *pod, crisp_err_t *err)
{
	Runtime__V1__RunPodSandboxRequest *rq = NULL;
	int r;

	if (!p->lsm.selinux)
		return 0;
	if (pod->config_len > 0)
		rq = runtime__v1__run_pod_sandbox_request__unpack(NULL, pod->config_len, pod->config);
	r = pod_shm_label(p, pod->id, pod->mcs_level, rq ? rq->config : NULL, err);
	if (rq)
		runtime__v1__run_pod_sandbox_request__free_unpacked(rq, NULL);
	return r;
}

/* The network is there (or not needed): namespaces, files, record. */
static void run_finish(struct pod_op *op, int netns_fd, const char *netns_path, char *const *ips, size_t nips)
{
	struct execd_pods *p = op->p;
	const Runtime__V1__PodSandboxConfig *c = op->run->req->config;
	const Runtime__V1__NamespaceOption *nso = ns_options(c);
	bool host_net = nso && nso->network == NS_NODE, host_ipc = nso && nso->ipc == NS_NODE;
	/* No hostname asked: the node's, as CRI-O and containerd do (a pod's
	 * name can be longer than a hostname may be). */
	char nodename[HOST_NAME_MAX + 1] = "localhost";
	if (gethostname(nodename, sizeof nodename) < 0)
		crisp_strlcpy(nodename, "localhost", sizeof nodename);
	nodename[HOST_NAME_MAX] = '\0';
	const char *hostname = c->hostname[0] ? c->hostname : nodename;
	crisp_err_t err = CRISP_ERR_INIT;
	struct pod_event_data d;
	char nsdir[PATH_MAX];
	Cipc__PodRunAns w = CIPC__POD_RUN_ANS__INIT;
	Runtime__V1__RunPodSandboxResponse rs = RUNTIME__V1__RUN_POD_SANDBOX_RESPONSE__INIT;

	if (pod_path(p, op->id, "ns", nsdir, sizeof nsdir) < 0 ||
	    pin_namespaces(nsdir, hostname, netns_fd, !host_net, !host_ipc, c->linux, &err) < 0 ||
	    pod_files(p, op->id, c, hostname, nips ? ips[0] : NULL, &err) < 0 ||
	    (!host_ipc && ctr_shm_mount(p->pods_dir, op->id, &err) < 0) ||
	    (!host_ipc && pod_shm_label(p, op->id, op->mcs, c, &err) < 0)) {
		run_fail(op, &err, !host_net);
		return;
	}
	memset(&d, 0, sizeof d);
	/* A shared PID namespace needs its pid 1 (ctr_infra.c). */
	if (nso && nso->pid == RUNTIME__V1__NAMESPACE_MODE__POD) {
		char idir[PATH_MAX];
		if (pod_path(p, op->id, "infra", idir, sizeof idir) < 0 || crisp_mkdir_p(idir, 0755, 0, 0) < 0) {
			crisp_error(&err, CRISP_INTERNAL, errno, "pod infra directory");
			run_fail(op, &err, !host_net);
			return;
		}
		/* the infra process runs under the pod's process label, as the
		 * pause container of other runtimes does */
		char proc[LSM_LABEL_MAX] = "", mnt[LSM_LABEL_MAX];
		struct lsm_selinux_opt so;
		pod_selinux_opt(c, &so);
		if (p->lsm.selinux && lsm_ctr_selinux(&p->lsm, op->mcs, &so, NULL, false, proc, mnt, &err) < 0) {
			run_fail(op, &err, !host_net);
			return;
		}
		if (pod_infra_spawn(idir, host_net ? -1 : netns_fd, nsdir, !host_net, !host_ipc, proc, &d.infra_pid,
				    &d.infra_start, &err) < 0) {
			run_fail(op, &err, !host_net);
			return;
		}
	}
	d.netns_path = netns_path;
	d.ips = (const char *const *)ips;
	d.nips = nips;
	if (state_pod_commit(p->st, op->id, &d, &err) < 0) {
		pod_infra_kill(d.infra_pid, d.infra_start);
		run_fail(op, &err, !host_net);
		return;
	}
	log_info("pod %.12s (%s/%s) ready%s%s", op->id, c->metadata->namespace_, c->metadata->name,
		 nips ? " with IP " : "", nips ? ips[0] : "");
	rs.pod_sandbox_id = op->id;
	w.resp = &rs;
	answer(op->ch, op->reqid, IPC_POD_RUN_ANS, &w.base);
	op_free(op);
}

static void on_net_result(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	struct pod_op *op = arg;
	const Cipc__NetResult *r;

	(void)ch;
	if (e != NULL) {
		crisp_err_t e2 = *e;
		crisp_error_wrap(&e2, "pod network");
		e2.code = e->code;
		run_fail(op, &e2, false); /* netd rolled its part back itself */
		return;
	}
	r = (const Cipc__NetResult *)ans->pb;
	run_finish(op, ans->fd, r->netns_path, r->ips, r->n_ips);
}

void pods_on_run(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p)
{
	Cipc__PodRun *w = (Cipc__PodRun *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_pod_spec spec;
	struct state_kv *labels = NULL, *ann = NULL;
	struct pod_op *op = NULL;
	char dir[PATH_MAX];

	if (w->req == NULL || w->req->config == NULL || w->req->config->metadata == NULL) {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "RunPodSandbox: config.metadata is required");
		goto refuse;
	}
	/* The boundary: execd checks again what frontd already checked. */
	if (cri_validate(&w->req->base, &err) < 0)
		goto refuse;
	const Runtime__V1__RunPodSandboxRequest *rq = w->req;
	const Runtime__V1__PodSandboxConfig *c = rq->config;
	const Runtime__V1__NamespaceOption *nso = ns_options(c);
	bool host_net = nso && nso->network == NS_NODE, host_ipc = nso && nso->ipc == NS_NODE;
	policy_refresh(p);
	if (!p->policy_ok) {
		crisp_error(&err, CRISP_FAILED_PRECONDITION, 0, "%s", p->policy_err);
		goto refuse;
	}
	struct rp_pod prq = { .ns = c->metadata->namespace_, .host_network = host_net, .host_ipc = host_ipc,
			      .host_pid = nso && nso->pid == NS_NODE, .runtime_handler = rq->runtime_handler };
	if (rp_check_pod(&p->policy, &prq, &err) < 0)
		goto refuse;
	if (!pods_handler_known(p, rq->runtime_handler)) {
		crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "runtime handler \"%.64s\" is not configured",
			    rq->runtime_handler);
		goto refuse;
	}
	if (check_sysctls(c->linux, host_net, host_ipc, &err) < 0)
		goto refuse;
	/* The pod's SELinux level: its own, else a fresh MCS pair (checked
	 * and recorded on every node; applied where SELinux is on). */
	struct lsm_selinux_opt sopt;
	char mcs[LSM_LABEL_MAX];
	pod_selinux_opt(c, &sopt);
	if (lsm_selinux_opt_check(&sopt, "pod selinux_options", &err) < 0)
		goto refuse;
	uint64_t bw_in, bw_out;
	if (pod_bandwidth(c, BW_INGRESS, &bw_in, &err) < 0 || pod_bandwidth(c, BW_EGRESS, &bw_out, &err) < 0)
		goto refuse;
	if (!host_net && role_peer(p->role, ROLE_NETD) == NULL) {
		crisp_error(&err, CRISP_UNAVAILABLE, 0, "netd is not running (restarting); try again");
		goto refuse;
	}

	memset(&spec, 0, sizeof spec);
	labels = calloc(c->n_labels + 1, sizeof *labels);
	ann = calloc(c->n_annotations + 1, sizeof *ann);
	if (labels == NULL || ann == NULL) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		goto refuse;
	}
	for (size_t i = 0; i < c->n_labels; i++)
		labels[i] = (struct state_kv){ c->labels[i]->key, c->labels[i]->value };
	for (size_t i = 0; i < c->n_annotations; i++)
		ann[i] = (struct state_kv){ c->annotations[i]->key, c->annotations[i]->value };
	size_t clen = protobuf_c_message_get_packed_size(&rq->base);
	uint8_t *cbuf = malloc(clen ? clen : 1);
	if (cbuf == NULL) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		goto refuse;
	}
	protobuf_c_message_pack(&rq->base, cbuf);
	spec.name = c->metadata->name;
	spec.namespace = c->metadata->namespace_;
	spec.uid = c->metadata->uid;
	spec.attempt = c->metadata->attempt;
	spec.labels = labels;
	spec.nlabels = c->n_labels;
	spec.annotations = ann;
	spec.nannotations = c->n_annotations;
	spec.runtime_handler = rq->runtime_handler;
	spec.hostname = c->hostname;
	spec.log_directory = c->log_directory;
	spec.cgroup_parent = c->linux ? c->linux->cgroup_parent : "";
	spec.flags = (host_net ? STATE_POD_HOST_NET : 0) | (host_ipc ? STATE_POD_HOST_IPC : 0) |
		     (nso && nso->pid == NS_NODE ? STATE_POD_HOST_PID : 0);
	spec.config = cbuf;
	spec.config_len = clen;
	op = calloc(1, sizeof *op);
	if (op == NULL) {
		free(cbuf);
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		goto refuse;
	}
	if (sopt.level && sopt.level[0]) {
		crisp_strlcpy(mcs, sopt.level, sizeof mcs);
		if (lsm_mcs_reserve(p->lsm.mcs, mcs) < 0) {
			free(cbuf);
			crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
			goto refuse;
		}
	} else if (lsm_mcs_alloc(p->lsm.mcs, NULL, NULL, mcs, sizeof mcs, &err) < 0) {
		free(cbuf);
		goto refuse;
	}
	spec.mcs_level = mcs;
	int r = state_pod_reserve(p->st, &spec, op->id, &err);
	free(cbuf);
	if (r < 0) {
		lsm_mcs_release(p->lsm.mcs, mcs);
		goto refuse;
	}
	crisp_strlcpy(op->mcs, mcs, sizeof op->mcs);
	op->p = p;
	op->ch = ipc_chan_ref(ch);
	op->reqid = m->hdr.reqid;
	op->run = w;
	m->pb = NULL; /* the op owns the request now */
	free(labels);
	free(ann);
	labels = ann = NULL;

	if (pod_path(p, op->id, "ns", dir, sizeof dir) < 0 || crisp_mkdir_p(dir, 0711, 0, 0) < 0) {
		crisp_error(&err, CRISP_INTERNAL, errno, "pod directory");
		run_fail(op, &err, false);
		return;
	}
	if (host_net) {
		run_finish(op, -1, "", NULL, 0);
		return;
	}
	Cipc__NetSetup ns = CIPC__NET_SETUP__INIT;
	Cipc__PortMapping *pms = NULL, **ppms = NULL;
	ns.pod_id = op->id;
	ns.name = c->metadata->name;
	ns.namespace_ = c->metadata->namespace_;
	ns.uid = c->metadata->uid;
	if (c->n_port_mappings) {
		pms = calloc(c->n_port_mappings, sizeof *pms);
		ppms = calloc(c->n_port_mappings, sizeof *ppms);
		if (pms == NULL || ppms == NULL) {
			free(pms);
			free(ppms);
			crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
			run_fail(op, &err, false);
			return;
		}
		static const char *const protos[] = { "tcp", "udp", "sctp" };
		for (size_t i = 0; i < c->n_port_mappings; i++) {
			const Runtime__V1__PortMapping *pm = c->port_mappings[i];
			cipc__port_mapping__init(&pms[i]);
			pms[i].protocol = (char *)(pm->protocol >= 0 && pm->protocol < 3 ? protos[pm->protocol] : "tcp");
			pms[i].container_port = pm->container_port;
			pms[i].host_port = pm->host_port;
			pms[i].host_ip = pm->host_ip;
			ppms[i] = &pms[i];
		}
		ns.n_port_mappings = c->n_port_mappings;
		ns.port_mappings = ppms;
	}
	{
		crisp_err_t bwerr = CRISP_ERR_INIT; /* checked before the pod was reserved */
		(void)pod_bandwidth(c, BW_INGRESS, &ns.ingress_bps, &bwerr);
		(void)pod_bandwidth(c, BW_EGRESS, &ns.egress_bps, &bwerr);
	}
	if (c->dns_config) {
		ns.n_dns_servers = c->dns_config->n_servers;
		ns.dns_servers = c->dns_config->servers;
		ns.n_dns_searches = c->dns_config->n_searches;
		ns.dns_searches = c->dns_config->searches;
		ns.n_dns_options = c->dns_config->n_options;
		ns.dns_options = c->dns_config->options;
	}
	r = ipc_request(role_peer(p->role, ROLE_NETD), IPC_NET_SETUP, &ns.base, -1, NET_TIMEOUT_MS, on_net_result, op,
			NULL, &err);
	free(pms);
	free(ppms);
	if (r < 0)
		run_fail(op, &err, false);
	return;
refuse:
	free(labels);
	free(ann);
	free(op);
	answer_error(ch, m->hdr.reqid, &err);
}

/* ---- StopPodSandbox and RemovePodSandbox ---- */

static void stop_finish(struct pod_op *op, const crisp_err_t *neterr)
{
	struct execd_pods *p = op->p;
	crisp_err_t err = CRISP_ERR_INIT;

	if (neterr != NULL) {
		/* Stays STOPPING: kubelet retries, teardown is idempotent. */
		answer_error(op->ch, op->reqid, neterr);
		op_free(op);
		return;
	}
	if (op->remove) {
		pod_dir_remove(p, op->id);
		if (state_pod_transition(p->st, op->id, POD_EV_REMOVED, NULL, &err) < 0) {
			answer_error(op->ch, op->reqid, &err);
		} else {
			Cipc__PodRemoveAns w = CIPC__POD_REMOVE_ANS__INIT;
			Runtime__V1__RemovePodSandboxResponse rs = RUNTIME__V1__REMOVE_POD_SANDBOX_RESPONSE__INIT;
			w.resp = &rs;
			lsm_mcs_release(p->lsm.mcs, op->mcs);
			log_info("pod %.12s removed", op->id);
			answer(op->ch, op->reqid, IPC_POD_REMOVE_ANS, &w.base);
		}
	} else {
		if (state_pod_transition(p->st, op->id, POD_EV_STOPPED, NULL, &err) < 0) {
			answer_error(op->ch, op->reqid, &err);
		} else {
			Cipc__PodStopAns w = CIPC__POD_STOP_ANS__INIT;
			Runtime__V1__StopPodSandboxResponse rs = RUNTIME__V1__STOP_POD_SANDBOX_RESPONSE__INIT;
			w.resp = &rs;
			log_info("pod %.12s stopped", op->id);
			answer(op->ch, op->reqid, IPC_POD_STOP_ANS, &w.base);
		}
	}
	op_free(op);
}

static void on_net_down(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	struct pod_op *op = arg;

	(void)ch;
	(void)ans;
	if (e != NULL) {
		crisp_err_t e2 = *e;
		crisp_error_wrap(&e2, "pod network teardown");
		e2.code = e->code;
		stop_finish(op, &e2);
		return;
	}
	stop_finish(op, NULL);
}

static void stop_or_remove(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p, const char *idprefix,
			   bool remove)
{
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_pod *pod = NULL;
	struct pod_op *op;
	int act;

	if (state_pod_get(p->st, idprefix, &pod, &err) < 0) {
		if (err.code != CRISP_NOT_FOUND)
			goto refuse;
		/* Already gone: Stop and Remove are idempotent (CRI). */
		crisp_error_clear(&err);
		op = calloc(1, sizeof *op);
		if (op == NULL)
			goto oom;
		op->p = p;
		op->ch = ipc_chan_ref(ch);
		op->reqid = m->hdr.reqid;
		if (remove) {
			Cipc__PodRemoveAns w = CIPC__POD_REMOVE_ANS__INIT;
			Runtime__V1__RemovePodSandboxResponse rs = RUNTIME__V1__REMOVE_POD_SANDBOX_RESPONSE__INIT;
			w.resp = &rs;
			answer(ch, m->hdr.reqid, IPC_POD_REMOVE_ANS, &w.base);
		} else {
			Cipc__PodStopAns w = CIPC__POD_STOP_ANS__INIT;
			Runtime__V1__StopPodSandboxResponse rs = RUNTIME__V1__STOP_POD_SANDBOX_RESPONSE__INIT;
			w.resp = &rs;
			answer(ch, m->hdr.reqid, IPC_POD_STOP_ANS, &w.base);
		}
		op_free(op);
		return;
	}
	act = state_pod_transition(p->st, pod->id, remove ? POD_EV_REMOVE : POD_EV_STOP, NULL, &err);
	if (act < 0)
		goto refuse;
	op = calloc(1, sizeof *op);
	if (op == NULL)
		goto oom;
	op->p = p;
	op->ch = ipc_chan_ref(ch);
	op->reqid = m->hdr.reqid;
	op->remove = remove;
	crisp_strlcpy(op->id, pod->id, sizeof op->id);
	crisp_strlcpy(op->mcs, pod->mcs_level ? pod->mcs_level : "", sizeof op->mcs);
	/* A removal that finds the pod stopped still asks netd: DEL is
	 * idempotent, and a stop that failed half way may have left an IP. */
	op->do_net = act != POD_DO_NOTHING && !(pod->flags & STATE_POD_HOST_NET);
	if (act == POD_DO_NOTHING && !remove) {
		stop_finish(op, NULL);
		state_pod_free(pod);
		return;
	}
	/* Containers first (killed; removed too for a removal), then the
	 * network: containers_stopped() goes on. */
	op->pod = pod;
	ctrs_pod_stop((struct execd *)((char *)p - offsetof(struct execd, pods)), pod->id, remove, containers_stopped, op);
	return;
oom:
	crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
refuse:
	state_pod_free(pod);
	answer_error(ch, m->hdr.reqid, &err);
}

static void containers_stopped(void *arg)
{
	struct pod_op *op = arg;
	struct execd_pods *p = op->p;
	struct state_pod *pod = op->pod;
	crisp_err_t err = CRISP_ERR_INIT;

	op->pod = NULL;
	/* its containers are gone: so goes the shared PID namespace */
	pod_infra_kill(pod->infra_pid, pod->infra_start);
	/* and the pod's /dev/shm (CRI-O unmounts it at stop too) */
	ctr_shm_unmount(p->pods_dir, pod->id);
	if (op->do_net) {
		struct ipc_chan *nd = role_peer(p->role, ROLE_NETD);
		Cipc__NetTeardown t = CIPC__NET_TEARDOWN__INIT;
		t.pod_id = pod->id;
		t.name = pod->name;
		t.namespace_ = pod->namespace;
		t.uid = pod->uid;
		if (nd == NULL) {
			crisp_error(&err, CRISP_UNAVAILABLE, 0, "netd is not running (restarting); try again");
			stop_finish(op, &err);
		} else if (ipc_request(nd, IPC_NET_TEARDOWN, &t.base, -1, NET_TIMEOUT_MS, on_net_down, op, NULL, &err) < 0) {
			stop_finish(op, &err);
		}
	} else {
		stop_finish(op, NULL);
	}
	state_pod_free(pod);
}

void pods_on_stop(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p)
{
	Cipc__PodStop *w = (Cipc__PodStop *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;

	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "StopPodSandbox: no request");
		answer_error(ch, m->hdr.reqid, &err);
		return;
	}
	stop_or_remove(ch, m, p, w->req->pod_sandbox_id, false);
}

void pods_on_remove(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p)
{
	Cipc__PodRemove *w = (Cipc__PodRemove *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;

	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "RemovePodSandbox: no request");
		answer_error(ch, m->hdr.reqid, &err);
		return;
	}
	stop_or_remove(ch, m, p, w->req->pod_sandbox_id, true);
}

/* ---- PodSandboxStatus and ListPodSandbox ---- */

struct state_kv *pods_selector(void *const *entries, size_t n)
{
	struct state_kv *sel = calloc(n + 1, sizeof *sel);

	for (size_t i = 0; sel != NULL && i < n; i++) {
		const Runtime__V1__PodSandboxFilter__LabelSelectorEntry *e = entries[i];
		sel[i] = (struct state_kv){ e->key, e->value };
	}
	return sel;
}

_Static_assert(sizeof(Runtime__V1__PodSandboxFilter__LabelSelectorEntry) ==
		       sizeof(Runtime__V1__ContainerFilter__LabelSelectorEntry),
	       "label selector entry layouts");

/* CRI map<string,string> entries from state key/values (pointers borrowed).
 * protobuf-c gives every map its own entry type, all with the same layout
 * (base, key, value) and wire form; one layout serves them all. */
void *pods_kv_entries(const struct state_kvs *kvs)
{
	/* One allocation: the pointer array, then the entries it points to. */
	size_t n = kvs->n;
	void **pe = calloc(1, (n + 1) * sizeof *pe + (n + 1) * sizeof(Runtime__V1__PodSandbox__LabelsEntry));
	Runtime__V1__PodSandbox__LabelsEntry *e;

	if (pe == NULL)
		return NULL;
	e = (Runtime__V1__PodSandbox__LabelsEntry *)(pe + n + 1);
	for (size_t i = 0; i < n; i++) {
		runtime__v1__pod_sandbox__labels_entry__init(&e[i]);
		e[i].key = (char *)kvs->kv[i].key;
		e[i].value = (char *)kvs->kv[i].value;
		pe[i] = &e[i];
	}
	return pe;
}

void pods_kv_free(void *pe)
{
	free(pe);
}

_Static_assert(sizeof(Runtime__V1__PodSandbox__LabelsEntry) == sizeof(Runtime__V1__PodSandboxStatus__LabelsEntry),
	       "map entry layouts");

void pods_on_status(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p)
{
	Cipc__PodStatus *w = (Cipc__PodStatus *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_pod *pod = NULL;
	Runtime__V1__RunPodSandboxRequest *orig = NULL;
	Runtime__V1__PodSandboxStatusResponse rs = RUNTIME__V1__POD_SANDBOX_STATUS_RESPONSE__INIT;
	Runtime__V1__PodSandboxStatus st = RUNTIME__V1__POD_SANDBOX_STATUS__INIT;
	Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
	Runtime__V1__PodSandboxNetworkStatus net = RUNTIME__V1__POD_SANDBOX_NETWORK_STATUS__INIT;
	Runtime__V1__LinuxPodSandboxStatus lx = RUNTIME__V1__LINUX_POD_SANDBOX_STATUS__INIT;
	Runtime__V1__Namespace nsp = RUNTIME__V1__NAMESPACE__INIT;
	Runtime__V1__NamespaceOption nso = RUNTIME__V1__NAMESPACE_OPTION__INIT;
	Runtime__V1__PodIP extra[8], *pextra[8];
	void *labels = NULL, *ann = NULL;
	Cipc__PodStatusAns ans = CIPC__POD_STATUS_ANS__INIT;

	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "PodSandboxStatus: no request");
		goto refuse;
	}
	if (state_pod_get(p->st, w->req->pod_sandbox_id, &pod, &err) < 0)
		goto refuse;
	md.name = pod->name;
	md.namespace_ = pod->namespace;
	md.uid = pod->uid;
	md.attempt = pod->attempt;
	st.id = pod->id;
	st.metadata = &md;
	st.state = pod_state_cri(pod->state);
	st.created_at = pod->created_at;
	st.runtime_handler = pod->runtime_handler;
	if (pod->nips > 0) {
		net.ip = pod->ips[0];
		for (size_t i = 1; i < pod->nips && i - 1 < ARRAY_SIZE(extra); i++) {
			runtime__v1__pod_ip__init(&extra[i - 1]);
			extra[i - 1].ip = pod->ips[i];
			pextra[i - 1] = &extra[i - 1];
			net.n_additional_ips = i;
		}
		net.additional_ips = pextra;
		st.network = &net;
	}
	orig = runtime__v1__run_pod_sandbox_request__unpack(NULL, pod->config_len, pod->config);
	if (orig != NULL && orig->config != NULL) {
		const Runtime__V1__NamespaceOption *o = ns_options(orig->config);
		if (o != NULL) {
			nso.network = o->network;
			nso.pid = o->pid;
			nso.ipc = o->ipc;
		}
	}
	nsp.options = &nso;
	lx.namespaces = &nsp;
	st.linux = &lx;
	labels = pods_kv_entries(&pod->labels);
	ann = pods_kv_entries(&pod->annotations);
	if (labels == NULL || ann == NULL) {
		crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
		goto refuse;
	}
	st.n_labels = pod->labels.n;
	st.labels = labels;
	st.n_annotations = pod->annotations.n;
	st.annotations = ann;
	rs.status = &st;
	/* verbose: what execd knows of the pod beyond the CRI fields, as the
	 * JSON object under "info" (crictl inspectp prints it). */
	Runtime__V1__PodSandboxStatusResponse__InfoEntry ie = RUNTIME__V1__POD_SANDBOX_STATUS_RESPONSE__INFO_ENTRY__INIT,
							 *pie = &ie;
	char *info = NULL;
	if (w->req->verbose) {
		char path[PATH_MAX];
		json_t *o = json_object(), *ips = json_array();
		for (size_t i = 0; i < pod->nips; i++)
			json_array_append_new(ips, json_string(pod->ips[i]));
		json_object_set_new(o, "netnsPath", json_string(pod->netns_path ? pod->netns_path : ""));
		json_object_set_new(o, "ips", ips);
		json_object_set_new(o, "hostname", json_string(pod->hostname ? pod->hostname : ""));
		json_object_set_new(o, "logDirectory", json_string(pod->log_directory ? pod->log_directory : ""));
		json_object_set_new(o, "cgroupParent", json_string(pod->cgroup_parent ? pod->cgroup_parent : ""));
		json_object_set_new(o, "state", json_string(pod_state_name(pod->state)));
		json_object_set_new(o, "hostNetwork", json_boolean(pod->flags & STATE_POD_HOST_NET));
		json_object_set_new(o, "hostPID", json_boolean(pod->flags & STATE_POD_HOST_PID));
		json_object_set_new(o, "hostIPC", json_boolean(pod->flags & STATE_POD_HOST_IPC));
		if (pod_path(p, pod->id, NULL, path, sizeof path) == 0)
			json_object_set_new(o, "podDirectory", json_string(path));
		/* the LSMs as this pod sees them (its containers may add their own
		 * options over the pod's labels) */
		{
			char proc[LSM_LABEL_MAX] = "", mnt[LSM_LABEL_MAX] = "";
			struct lsm_selinux_opt so;
			crisp_err_t le = CRISP_ERR_INIT;
			pod_selinux_opt(orig ? orig->config : NULL, &so);
			(void)lsm_ctr_selinux(&p->lsm, pod->mcs_level, &so, NULL, false, proc, mnt, &le);
			json_object_set_new(o, "selinux",
					    json_pack("{s:b, s:s, s:s, s:s}", "enabled", p->lsm.selinux, "mcsLevel",
						      pod->mcs_level ? pod->mcs_level : "", "processLabel", proc,
						      "mountLabel", mnt));
			json_object_set_new(o, "apparmor",
					    json_pack("{s:b, s:s, s:b}", "enabled", p->lsm.apparmor, "defaultProfile",
						      p->lsm.apparmor ? LSM_AA_DEFAULT : "", "defaultProfileLoaded",
						      p->lsm.aa_default_loaded));
		}
		info = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(o);
		if (info != NULL) {
			ie.key = "info";
			ie.value = info;
			rs.n_info = 1;
			rs.info = &pie;
		}
	}
	ans.resp = &rs;
	answer(ch, m->hdr.reqid, IPC_POD_STATUS_ANS, &ans.base);
	free(info);
	goto out;
refuse:
	answer_error(ch, m->hdr.reqid, &err);
out:
	pods_kv_free(labels);
	pods_kv_free(ann);
	if (orig)
		runtime__v1__run_pod_sandbox_request__free_unpacked(orig, NULL);
	state_pod_free(pod);
}

void pods_on_list(struct ipc_chan *ch, struct ipc_msg *m, struct execd_pods *p)
{
	Cipc__PodList *w = (Cipc__PodList *)m->pb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_pod_filter f = { .state = -1, .cri_state = -1 };
	struct state_kv *sel = NULL;
	struct state_pod **pods = NULL;
	size_t n = 0;
	Runtime__V1__ListPodSandboxResponse rs = RUNTIME__V1__LIST_POD_SANDBOX_RESPONSE__INIT;
	Runtime__V1__PodSandbox *items = NULL, **pitems = NULL;
	Runtime__V1__PodSandboxMetadata *mds = NULL;
	Cipc__PodListAns ans = CIPC__POD_LIST_ANS__INIT;

	if (w->req == NULL || cri_validate(&w->req->base, &err) < 0) {
		if (w->req == NULL)
			crisp_error(&err, CRISP_INVALID_ARGUMENT, 0, "ListPodSandbox: no request");
		goto refuse;
	}
	if (w->req->filter) {
		const Runtime__V1__PodSandboxFilter *rf = w->req->filter;
		f.id = rf->id[0] ? rf->id : NULL;
		if (rf->state)
			f.cri_state = rf->state->state;
		if (rf->n_label_selector) {
			if ((sel = pods_selector((void *const *)rf->label_selector, rf->n_label_selector)) == NULL)
				goto oom;
			f.selector = sel;
			f.nselector = rf->n_label_selector;
		}
	}
	if (state_pod_list(p->st, &f, &pods, &n, &err) < 0)
		goto refuse;
	items = calloc(n + 1, sizeof *items);
	pitems = calloc(n + 1, sizeof *pitems);
	mds = calloc(n + 1, sizeof *mds);
	if (items == NULL || pitems == NULL || mds == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		runtime__v1__pod_sandbox__init(&items[i]);
		runtime__v1__pod_sandbox_metadata__init(&mds[i]);
		mds[i].name = pods[i]->name;
		mds[i].namespace_ = pods[i]->namespace;
		mds[i].uid = pods[i]->uid;
		mds[i].attempt = pods[i]->attempt;
		items[i].id = pods[i]->id;
		items[i].metadata = &mds[i];
		items[i].state = pod_state_cri(pods[i]->state);
		items[i].created_at = pods[i]->created_at;
		items[i].runtime_handler = pods[i]->runtime_handler;
		items[i].n_labels = pods[i]->labels.n;
		items[i].labels = (void *)pods_kv_entries(&pods[i]->labels);
		items[i].n_annotations = pods[i]->annotations.n;
		items[i].annotations = (void *)pods_kv_entries(&pods[i]->annotations);
		pitems[i] = &items[i];
		if (items[i].labels == NULL || items[i].annotations == NULL)
			goto oom;
	}
	rs.n_items = n;
	rs.items = pitems;
	ans.resp = &rs;
	answer(ch, m->hdr.reqid, IPC_POD_LIST_ANS, &ans.base);
	goto out;
oom:
	crisp_error(&err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
refuse:
	answer_error(ch, m->hdr.reqid, &err);
out:
	for (size_t i = 0; items && i < n; i++) {
		pods_kv_free(items[i].labels);
		pods_kv_free(items[i].annotations);
	}
	free(items);
	free(pitems);
	free(mds);
	free(sel);
	if (pods)
		state_pod_list_free(pods, n);
}

/* ---- life ---- */

int pods_init(struct execd_pods *p, struct role_ctx *r, const char *root, const char *runroot, crisp_err_t *err)
{
	memset(p, 0, sizeof *p);
	p->role = r;
	if ((size_t)snprintf(p->pods_dir, sizeof p->pods_dir, "%s/pods", runroot) >= sizeof p->pods_dir)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "runroot too long");
	if (crisp_mkdir_p(p->pods_dir, 0711, 0, 0) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "%s", p->pods_dir);
	if (state_open(root, 0, &p->st, err) < 0)
		return -1;
	if (state_recover(p->st, &p->pending_rollback, &p->npending, err) < 0)
		return -1;
	/* The LSMs of the node, and the MCS pairs of the pods it has (pods
	 * still CREATING are rolled back: their pairs go with them). */
	if (lsm_init(&p->lsm, err) < 0)
		return -1;
	{
		struct state_pod **v = NULL;
		size_t n = 0;
		if (state_pod_list(p->st, NULL, &v, &n, err) < 0)
			return -1;
		for (size_t i = 0; i < n; i++)
			if (lsm_mcs_reserve(p->lsm.mcs, v[i]->mcs_level) < 0) {
				state_pod_list_free(v, n);
				return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
			}
		state_pod_list_free(v, n);
	}
	/* Pods caught half made: their files go now, their network when netd
	 * is connected (pods_netd_up), then the record. */
	for (size_t i = 0; i < p->npending; i++)
		if (p->pending_rollback[i].is_pod && p->pending_rollback[i].state == POD_CREATING)
			pod_dir_remove(p, p->pending_rollback[i].id);
	return 0;
}

void pods_netd_up(struct execd_pods *p)
{
	crisp_err_t err = CRISP_ERR_INIT;

	for (size_t i = 0; i < p->npending; i++) {
		struct state_recovery *rv = &p->pending_rollback[i];
		struct state_pod *pod = NULL;
		if (!rv->is_pod || rv->state != POD_CREATING)
			continue;
		if (state_pod_get(p->st, rv->id, &pod, &err) == 0) {
			if (!(pod->flags & STATE_POD_HOST_NET))
				net_teardown_bg(p, pod->id, pod->name, pod->namespace, pod->uid);
			state_pod_free(pod);
		}
		if (state_pod_abort(p->st, rv->id, &err) < 0)
			log_error("pod %.12s: rollback: %s", rv->id, err.msg);
		else
			log_info("pod %.12s: half-made pod rolled back", rv->id);
	}
	free(p->pending_rollback);
	p->pending_rollback = NULL;
	p->npending = 0;
}

void pods_close(struct execd_pods *p)
{
	if (p->policy_ok)
		rp_free(&p->policy);
	p->policy_ok = false;
	free(p->pending_rollback);
	p->pending_rollback = NULL;
	if (p->st)
		state_close(p->st);
	p->st = NULL;
	lsm_close(&p->lsm);
}
