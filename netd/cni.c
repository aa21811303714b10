#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "netd/cni.h"

/* ---- result and error parsing ------------------------------------------ */

static int bad(crisp_err_t *err, const char *what)
{
	return crisp_error(err, CRISP_INTERNAL, 0, "invalid CNI result: %s", what);
}

/* "addr/prefix" → family, address text, prefix. */
static int parse_cidr(const char *s, int *family, char *addr, size_t addrsz, unsigned *prefix)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	char a[INET6_ADDRSTRLEN + 1], *end;
	unsigned char bin[16];
	unsigned long p;
	size_t n;

	if (slash == NULL || (n = (size_t)(slash - s)) == 0 || n >= sizeof a)
		return -1;
	memcpy(a, s, n);
	a[n] = '\0';
	if (inet_pton(AF_INET, a, bin) == 1)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, a, bin) == 1)
		*family = AF_INET6;
	else
		return -1;
	if (slash[1] < '0' || slash[1] > '9' || (slash[1] == '0' && slash[2] != '\0'))
		return -1;
	errno = 0;
	p = strtoul(slash + 1, &end, 10);
	if (errno || *end != '\0' || p > (*family == AF_INET ? 32u : 128u))
		return -1;
	if (addr != NULL && crisp_strlcpy(addr, a, addrsz) >= addrsz)
		return -1;
	if (prefix != NULL)
		*prefix = (unsigned)p;
	return 0;
}

static int parse_ip(const char *s, int *family)
{
	unsigned char bin[16];

	if (s == NULL)
		return -1;
	if (inet_pton(AF_INET, s, bin) == 1)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, s, bin) == 1)
		*family = AF_INET6;
	else
		return -1;
	return 0;
}

static int opt_string(json_t *o, const char *k, const char **out)
{
	json_t *v = json_object_get(o, k);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return -1;
	*out = json_string_value(v);
	return 0;
}

static int string_array(json_t *a, size_t max)
{
	size_t i;
	json_t *v;

	if (a == NULL)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > max)
		return -1;
	json_array_foreach(a, i, v)
		if (!json_is_string(v))
			return -1;
	return 0;
}

static int version_major_minor(const char *v, unsigned *maj, unsigned *min)
{
	unsigned a, b, c;
	char tail;

	if (v == NULL || sscanf(v, "%u.%u.%u%c", &a, &b, &c, &tail) != 3)
		return -1;
	*maj = a;
	*min = b;
	return 0;
}

int cni_result_parse(const char *buf, size_t len, struct cni_result *res, crisp_err_t *err)
{
	json_error_t je;
	json_t *root, *ifs, *ips, *routes, *dns, *v;
	const char *ver, *s;
	unsigned maj, min;
	int old; /* 0.3.x / 0.4.0: ips carry "version" */
	size_t i;

	memset(res, 0, sizeof *res);
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return crisp_error(err, CRISP_INTERNAL, 0, "invalid CNI result: line %d: %s", je.line, je.text);
	if (!json_is_object(root)) {
		bad(err, "not an object");
		goto fail;
	}
	if (opt_string(root, "cniVersion", &ver) < 0 || ver == NULL || version_major_minor(ver, &maj, &min) < 0 ||
	    strlen(ver) >= sizeof res->cni_version) {
		bad(err, "missing or bad \"cniVersion\"");
		goto fail;
	}
	if (maj == 1)
		old = 0;
	else if (maj == 0 && (min == 3 || min == 4))
		old = 1;
	else {
		crisp_error(err, CRISP_INTERNAL, 0, "unsupported CNI result version %s", ver);
		goto fail;
	}
	crisp_strlcpy(res->cni_version, ver, sizeof res->cni_version);

	ifs = json_object_get(root, "interfaces");
	if (ifs != NULL) {
		if (!json_is_array(ifs) || json_array_size(ifs) > 256) {
			bad(err, "\"interfaces\" must be a list");
			goto fail;
		}
		json_array_foreach(ifs, i, v) {
			const char *name, *mac, *sb;
			json_t *mtu = json_object_get(v, "mtu");
			if (!json_is_object(v) || opt_string(v, "name", &name) < 0 || name == NULL || name[0] == '\0' ||
			    strlen(name) > 255 || opt_string(v, "mac", &mac) < 0 || opt_string(v, "sandbox", &sb) < 0 ||
			    (mtu != NULL && (!json_is_integer(mtu) || json_integer_value(mtu) < 0)) ||
			    (json_object_get(v, "socketPath") && !json_is_string(json_object_get(v, "socketPath")))) {
				bad(err, "bad interface");
				goto fail;
			}
		}
		res->ninterfaces = json_array_size(ifs);
	}

	ips = json_object_get(root, "ips");
	if (ips != NULL) {
		if (!json_is_array(ips) || json_array_size(ips) > CNI_MAX_IPS) {
			bad(err, "\"ips\" must be a list of at most 16");
			goto fail;
		}
		json_array_foreach(ips, i, v) {
			struct cni_ip *ip = &res->ips[i];
			const char *addr, *gw, *version;
			json_t *iface;
			int gwfam;

			if (!json_is_object(v) || opt_string(v, "address", &addr) < 0 || opt_string(v, "gateway", &gw) < 0 ||
			    opt_string(v, "version", &version) < 0) {
				bad(err, "bad ip entry");
				goto fail;
			}
			if (parse_cidr(addr, &ip->family, ip->addr, sizeof ip->addr, &ip->prefix) < 0) {
				bad(err, "ip \"address\" is not an address/prefix");
				goto fail;
			}
			if (gw != NULL) {
				if (parse_ip(gw, &gwfam) < 0 || gwfam != ip->family) {
					bad(err, "ip \"gateway\" is not an address of the same family");
					goto fail;
				}
				crisp_strlcpy(ip->gateway, gw, sizeof ip->gateway);
			}
			if (old) {
				if (version == NULL || strcmp(version, ip->family == AF_INET ? "4" : "6") != 0) {
					bad(err, "ip \"version\" does not match its address");
					goto fail;
				}
			} else if (version != NULL) {
				bad(err, "ip \"version\" is not part of spec 1.x results");
				goto fail;
			}
			ip->iface = -1;
			iface = json_object_get(v, "interface");
			if (iface != NULL) {
				if (!json_is_integer(iface) || json_integer_value(iface) < 0 ||
				    (size_t)json_integer_value(iface) >= res->ninterfaces) {
					bad(err, "ip \"interface\" index out of bounds");
					goto fail;
				}
				ip->iface = (int)json_integer_value(iface);
			}
		}
		res->nips = json_array_size(ips);
	}

	routes = json_object_get(root, "routes");
	if (routes != NULL) {
		if (!json_is_array(routes) || json_array_size(routes) > 1024) {
			bad(err, "\"routes\" must be a list");
			goto fail;
		}
		json_array_foreach(routes, i, v) {
			const char *dst, *gw;
			int fam, gwfam;

			if (!json_is_object(v) || opt_string(v, "dst", &dst) < 0 || opt_string(v, "gw", &gw) < 0 ||
			    parse_cidr(dst, &fam, NULL, 0, NULL) < 0 ||
			    (gw != NULL && (parse_ip(gw, &gwfam) < 0 || gwfam != fam))) {
				bad(err, "bad route");
				goto fail;
			}
			for (const char *const *k = (const char *const[]){ "mtu", "advmss", "priority", "table", "scope", NULL };
			     *k; k++) {
				json_t *n = json_object_get(v, *k);
				if (n != NULL && (!json_is_integer(n) || json_integer_value(n) < 0)) {
					bad(err, "bad route attribute");
					goto fail;
				}
			}
		}
		res->nroutes = json_array_size(routes);
	}

	dns = json_object_get(root, "dns");
	if (dns != NULL) {
		json_t *ns;
		if (!json_is_object(dns) || opt_string(dns, "domain", &s) < 0 ||
		    string_array(json_object_get(dns, "search"), 64) < 0 ||
		    string_array(json_object_get(dns, "options"), 64) < 0 ||
		    string_array(ns = json_object_get(dns, "nameservers"), 64) < 0) {
			bad(err, "bad \"dns\"");
			goto fail;
		}
		json_array_foreach(ns, i, v) {
			int fam;
			if (parse_ip(json_string_value(v), &fam) < 0) {
				bad(err, "dns nameserver is not an address");
				goto fail;
			}
		}
		res->nnameservers = ns ? json_array_size(ns) : 0;
	}
	res->json = root;
	return 0;
fail:
	json_decref(root);
	memset(res, 0, sizeof *res);
	return -1;
}

void cni_result_free(struct cni_result *res)
{
	if (res == NULL)
		return;
	json_decref(res->json);
	memset(res, 0, sizeof *res);
}

const char *cni_result_ip(const struct cni_result *res, int family)
{
	for (size_t i = 0; i < res->nips; i++)
		if (res->ips[i].family == family)
			return res->ips[i].addr;
	return "";
}

/* Keep printable ASCII only: a plugin's message goes into logs and CRI
 * errors. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = ' ';
}

int cni_error_parse(const char *buf, size_t len, unsigned *code, char *msg, size_t msgsz)
{
	json_error_t je;
	json_t *root, *c;
	const char *m, *d, *v;
	int r = -1;

	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return -1;
	c = json_object_get(root, "code");
	if (!json_is_object(root) || !json_is_integer(c) || json_integer_value(c) < 0 ||
	    json_integer_value(c) > UINT_MAX || opt_string(root, "msg", &m) < 0 || m == NULL ||
	    opt_string(root, "details", &d) < 0 || opt_string(root, "cniVersion", &v) < 0)
		goto out;
	*code = (unsigned)json_integer_value(c);
	if (msgsz > 0) {
		snprintf(msg, msgsz, "%s%s%s", m, d && d[0] ? ": " : "", d ? d : "");
		sanitize(msg);
	}
	r = 0;
out:
	json_decref(root);
	return r;
}

/* ---- per-plugin configuration ------------------------------------------- */

json_t *cni_plugin_config(const struct cni_list *l, size_t idx, json_t *prev, json_t *capability_args)
{
	json_t *p = json_array_get(l->plugins, idx), *conf, *caps, *rc = NULL, *v;
	const char *k;

	if (p == NULL || (conf = json_deep_copy(p)) == NULL)
		return NULL;
	if (json_object_set_new(conf, "name", json_string(l->name)) < 0 ||
	    json_object_set_new(conf, "cniVersion", json_string(l->cni_version)) < 0)
		goto fail;
	json_object_del(conf, "runtimeConfig");
	json_object_del(conf, "prevResult");
	if (prev != NULL && json_object_set(conf, "prevResult", prev) < 0)
		goto fail;
	caps = json_object_get(p, "capabilities");
	if (json_is_object(caps) && json_is_object(capability_args)) {
		json_object_foreach(caps, k, v) {
			json_t *arg = json_object_get(capability_args, k);
			if (!json_is_true(v) || arg == NULL)
				continue;
			if (rc == NULL && (rc = json_object()) == NULL)
				goto fail;
			if (json_object_set(rc, k, arg) < 0)
				goto fail;
		}
	}
	if (rc != NULL && json_object_set_new(conf, "runtimeConfig", TAKE_PTR(rc)) < 0)
		goto fail;
	return conf;
fail:
	json_decref(rc);
	json_decref(conf);
	return NULL;
}

/* ---- exec --------------------------------------------------------------- */

static int find_plugin(const struct cni_opts *o, const char *type, char *path, size_t sz, crisp_err_t *err)
{
	struct stat st;

	if (type == NULL || type[0] == '\0' || strchr(type, '/') || !strcmp(type, ".") || !strcmp(type, ".."))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "bad CNI plugin type");
	for (size_t i = 0; i < o->nbin_dirs; i++) {
		int n = snprintf(path, sz, "%s/%s", o->bin_dirs[i], type);
		if (n < 0 || (size_t)n >= sz)
			continue;
		if (lstat(path, &st) < 0)
			continue;
		if (stat(path, &st) < 0)
			return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "CNI plugin %s", path);
		if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
			return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "CNI plugin %s is not an executable file",
					   path);
		if (st.st_uid != 0 || (st.st_mode & 022))
			return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
					   "CNI plugin %s must be owned by root and not group/world-writable", path);
		return 0;
	}
	return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "failed to find CNI plugin \"%s\" in the plugin directories",
			   type);
}

static int valid_id(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max || s[0] == '.' || s[0] == '-')
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '-' || *p == '.'))
			return 0;
	return 1;
}

/* CNI_ARGS values: no ';' or '=' or control bytes. */
static int valid_arg(const char *s)
{
	if (s == NULL)
		return 1;
	if (strlen(s) > 253)
		return 0;
	for (; *s; s++)
		if (*s == ';' || *s == '=' || (unsigned char)*s < 0x21 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

struct capbuf {
	char *buf;
	size_t len, max;
	int over;
};

/* Read what is there; 1 on EOF, 0 otherwise, -1 on error. */
static int drain(int fd, struct capbuf *b)
{
	char tmp[16384];

	for (;;) {
		ssize_t n = read(fd, tmp, sizeof tmp);
		if (n == 0)
			return 1;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		if (b->len + (size_t)n > b->max) {
			b->over = 1;
			return 1;
		}
		char *nb = realloc(b->buf, b->len + (size_t)n + 1);
		if (nb == NULL)
			return -1;
		b->buf = nb;
		memcpy(b->buf + b->len, tmp, (size_t)n);
		b->len += (size_t)n;
		b->buf[b->len] = '\0';
	}
}

static void trim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r' || s[n - 1] == '\t'))
		s[--n] = '\0';
}

int cni_exec(const struct cni_opts *o, const char *type, const char *command, const struct cni_rt *rt,
	     const char *stdin_buf, size_t stdin_len, char **out, size_t *outlen, crisp_err_t *err)
{
	char path[PATH_MAX], cnipath[4096], e_cmd[64], e_id[320], e_ns[PATH_MAX + 16], e_if[64], e_args[1200],
		e_path[4200];
	char *envp[9], *argv[2];
	struct capbuf ob = { 0 }, eb = { 0 };
	int sin = -1, po[2] = { -1, -1 }, pe[2] = { -1, -1 }, pidfd = -1, status = 0, r = -1, killed = 0, timedout = 0,
	    exited = 0, reaped = 0;
	unsigned timeout = o->timeout_ms ? o->timeout_ms : CNI_DEFAULT_TIMEOUT_MS;
	uint64_t deadline;
	size_t off = 0;
	pid_t pid;

	*out = NULL;
	if (outlen)
		*outlen = 0;
	ob.max = o->max_stdout ? o->max_stdout : CNI_DEFAULT_MAX_STDOUT;
	eb.max = o->max_stderr ? o->max_stderr : CNI_DEFAULT_MAX_STDERR;
	if (find_plugin(o, type, path, sizeof path, err) < 0)
		return -1;
	if (!valid_id(rt->container_id, 256) || rt->ifname == NULL || rt->ifname[0] == '\0' ||
	    strlen(rt->ifname) > 15 || strchr(rt->ifname, '/') || rt->netns == NULL ||
	    /* DEL may come after the namespace is gone: CNI_NETNS is then
	     * empty, and plugins release what lives outside it (IPAM). */
	    (rt->netns[0] != '/' && !(rt->netns[0] == '\0' && strcmp(command, "DEL") == 0)) ||
	    strlen(rt->netns) >= PATH_MAX || !valid_arg(rt->k8s_namespace) || !valid_arg(rt->k8s_name) ||
	    !valid_arg(rt->k8s_uid))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "bad CNI runtime arguments");
	for (size_t i = 0; i < o->nbin_dirs; i++) {
		if (strchr(o->bin_dirs[i], ':'))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "':' in a CNI plugin directory");
		int n = snprintf(cnipath + off, sizeof cnipath - off, "%s%s", i ? ":" : "", o->bin_dirs[i]);
		if (n < 0 || (size_t)n >= sizeof cnipath - off)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "CNI plugin directories too long");
		off += (size_t)n;
	}
	cnipath[off] = '\0';
	snprintf(e_cmd, sizeof e_cmd, "CNI_COMMAND=%s", command);
	snprintf(e_id, sizeof e_id, "CNI_CONTAINERID=%s", rt->container_id);
	snprintf(e_ns, sizeof e_ns, "CNI_NETNS=%s", rt->netns);
	snprintf(e_if, sizeof e_if, "CNI_IFNAME=%s", rt->ifname);
	off = (size_t)snprintf(e_args, sizeof e_args, "CNI_ARGS=IgnoreUnknown=1");
	if (rt->k8s_namespace)
		off += (size_t)snprintf(e_args + off, sizeof e_args - off, ";K8S_POD_NAMESPACE=%s", rt->k8s_namespace);
	if (rt->k8s_name)
		off += (size_t)snprintf(e_args + off, sizeof e_args - off, ";K8S_POD_NAME=%s", rt->k8s_name);
	off += (size_t)snprintf(e_args + off, sizeof e_args - off, ";K8S_POD_INFRA_CONTAINER_ID=%s",
				rt->container_id);
	if (rt->k8s_uid)
		snprintf(e_args + off, sizeof e_args - off, ";K8S_POD_UID=%s", rt->k8s_uid);
	snprintf(e_path, sizeof e_path, "CNI_PATH=%s", cnipath);
	envp[0] = e_cmd;
	envp[1] = e_id;
	envp[2] = e_ns;
	envp[3] = e_if;
	envp[4] = e_args;
	envp[5] = e_path;
	envp[6] = (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	envp[7] = NULL;
	argv[0] = (char *)type;
	argv[1] = NULL;

	/* stdin: a memfd holding the whole configuration, so no writer has to
	 * be scheduled against the plugin. */
	sin = memfd_create("cni-stdin", MFD_CLOEXEC);
	if (sin < 0 || crisp_write_all(sin, stdin_buf, stdin_len) < 0 || lseek(sin, 0, SEEK_SET) < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "CNI plugin stdin");
		goto out;
	}
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "pipe");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "fork");
		goto out;
	}
	if (pid == 0) {
		sigset_t all;
		struct sigaction dfl;

		setpgid(0, 0);
		memset(&dfl, 0, sizeof dfl);
		dfl.sa_handler = SIG_DFL;
		for (int s = 1; s < NSIG; s++)
			(void)sigaction(s, &dfl, NULL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		if (dup2(sin, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
			_exit(126);
		if (close_range(3, ~0u, 0) < 0)
			_exit(126);
		execve(path, argv, envp);
		_exit(127);
	}
	/* Also from here, so a kill at the deadline cannot race the child's own setpgid. */
	setpgid(pid, pid);
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	pidfd = pidfd_open(pid, 0);
	crisp_set_nonblock(po[0], true);
	crisp_set_nonblock(pe[0], true);
	deadline = crisp_now_ms() + timeout;
	for (;;) {
		struct pollfd pf[3] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 }, { pidfd, POLLIN, 0 } };
		uint64_t now = crisp_now_ms();
		int n, wait_ms;

		/* Done when the plugin exited and its output is read: a plugin
		 * that closes stdout and lingers is still timed out. */
		if (po[0] < 0 && pe[0] < 0 && exited)
			break;
		if (now >= deadline) {
			timedout = 1;
			break;
		}
		if (pidfd < 0 && !exited && waitpid(pid, &status, WNOHANG) == pid)
			exited = reaped = 1;
		wait_ms = (int)(deadline - now > 1000 ? 1000 : deadline - now);
		if (pidfd < 0 && wait_ms > 20)
			wait_ms = 20; /* no pidfd: poll the exit */
		n = poll(pf, 3, exited ? 0 : wait_ms);
		if (n < 0 && errno != EINTR) {
			crisp_error(err, CRISP_INTERNAL, errno, "poll");
			killed = 1;
			break;
		}
		if (pidfd >= 0 && (pf[2].revents & POLLIN))
			exited = 1;
		for (int i = 0; i < 2; i++) {
			int *fd = i ? &pe[0] : &po[0];
			struct capbuf *b = i ? &eb : &ob;
			int d;
			if (*fd < 0 || !(exited || (pf[i].revents & (POLLIN | POLLHUP | POLLERR))))
				continue;
			d = drain(*fd, b);
			/* After the exit, what is in the pipe is all there is (a
			 * grandchild keeping it open is not waited for). */
			if (d != 0 || exited) {
				close(*fd);
				*fd = -1;
			}
		}
		if (ob.over || eb.over)
			break;
	}
	if (timedout || ob.over || eb.over)
		killed = 1;
	/* Kill the whole group while the leader is unreaped (its pgid cannot
	 * be reused before), so helpers it forked go too. */
	if (killed && !reaped)
		kill(-pid, SIGKILL);
	while (!reaped && waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			status = -1;
			break;
		}
	if (killed) {
		if (timedout)
			crisp_error(err, CRISP_DEADLINE_EXCEEDED, 0, "CNI plugin %s (%s) timed out after %u ms, killed",
				    type, command, timeout);
		else if (ob.over || eb.over)
			crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0, "CNI plugin %s (%s) wrote more than %zu bytes to %s, killed",
				    type, command, ob.over ? ob.max : eb.max, ob.over ? "stdout" : "stderr");
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (ob.buf == NULL && (ob.buf = strdup("")) == NULL) {
			crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
			goto out;
		}
		*out = TAKE_PTR(ob.buf);
		if (outlen)
			*outlen = ob.len;
		r = 0;
		goto out;
	}
	{
		char msg[400] = "";
		unsigned code = 0;

		if (ob.buf && cni_error_parse(ob.buf, ob.len, &code, msg, sizeof msg) == 0) {
			crisp_error(err, code == 11 ? CRISP_UNAVAILABLE : CRISP_UNKNOWN, 0,
				    "CNI plugin %s (%s) failed (code %u): %s", type, command, code, msg);
		} else {
			if (eb.buf) {
				trim(eb.buf);
				snprintf(msg, sizeof msg, "%s", eb.buf);
			} else if (ob.buf) {
				trim(ob.buf);
				snprintf(msg, sizeof msg, "%s", ob.buf);
			}
			sanitize(msg);
			if (WIFEXITED(status))
				crisp_error(err, CRISP_UNKNOWN, 0, "CNI plugin %s (%s) exited with status %d%s%s", type, command,
					    WEXITSTATUS(status), msg[0] ? ": " : "", msg);
			else
				crisp_error(err, CRISP_UNKNOWN, 0, "CNI plugin %s (%s) killed by signal %d%s%s", type, command,
					    WIFSIGNALED(status) ? WTERMSIG(status) : 0, msg[0] ? ": " : "", msg);
		}
	}
out:
	free(ob.buf);
	free(eb.buf);
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	if (pidfd >= 0)
		close(pidfd);
	if (sin >= 0)
		close(sin);
	return r;
}

/* ---- cache -------------------------------------------------------------- */

int cni_cache_path(const struct cni_opts *o, const char *network, const struct cni_rt *rt, char *buf, size_t sz,
		   crisp_err_t *err)
{
	int n;

	if (o->cache_dir == NULL || !valid_id(network, 255) || !valid_id(rt->container_id, 256) ||
	    !valid_id(rt->ifname, 15))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "bad CNI cache key (network, container id, ifname)");
	n = snprintf(buf, sz, "%s/%s-%s-%s", o->cache_dir, network, rt->container_id, rt->ifname);
	if (n < 0 || (size_t)n >= sz)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, ENAMETOOLONG, "CNI cache path too long");
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

static int cache_write(const struct cni_opts *o, const struct cni_list *l, const struct cni_rt *rt, json_t *result,
		       crisp_err_t *err)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	json_t *doc;
	char *text = NULL;
	int fd = -1, r = -1;

	if (cni_cache_path(o, l->name, rt, path, sizeof path, err) < 0)
		return -1;
	if (crisp_mkdir_p(o->cache_dir, 0700, (uid_t)-1, (gid_t)-1) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "creating %s", o->cache_dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	/* The capability arguments (portMappings, ipRanges, ...) go in too:
	 * DEL must give the plugins what ADD gave them (portmap removes its
	 * rules by them, host-local finds its range by them). */
	doc = json_pack("{s:s, s:s, s:s, s:s, s:b, s:O, s:O, s:O?}", "kind", "crispCNICacheV1", "containerId",
			rt->container_id, "ifName", rt->ifname, "networkName", l->name, "isList",
			json_object_get(l->root, "plugins") != NULL, "config", l->root, "result", result,
			"capabilityArgs", rt->capability_args);
	if (doc == NULL || (text = json_dumps(doc, JSON_COMPACT)) == NULL) {
		crisp_error(err, CRISP_INTERNAL, ENOMEM, "serialising the CNI cache");
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || crisp_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "writing %s", tmp);
		if (fd >= 0)
			unlink(tmp);
		goto out;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) < 0 || fsync_dir(o->cache_dir) < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "committing %s", path);
		unlink(tmp);
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(text);
	json_decref(doc);
	return r;
}

/* Load the entry: 1 with *cl and *result set, 0 when absent, -1 on error. */
static int cache_read(const struct cni_opts *o, const char *network, const struct cni_rt *rt, struct cni_list *cl,
		      json_t **result, json_t **caps, crisp_err_t *err)
{
	char path[PATH_MAX];
	json_error_t je;
	json_t *doc, *conf, *res, *il;
	const char *kind, *id, *ifn, *net;

	if (cni_cache_path(o, network, rt, path, sizeof path, err) < 0)
		return -1;
	doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL) {
		if (access(path, F_OK) < 0 && errno == ENOENT)
			return 0;
		return crisp_error(err, CRISP_DATA_LOSS, 0, "CNI cache %s: %s", path, je.text);
	}
	conf = json_object_get(doc, "config");
	res = json_object_get(doc, "result");
	il = json_object_get(doc, "isList");
	if (json_unpack(doc, "{s:s, s:s, s:s, s:s}", "kind", &kind, "containerId", &id, "ifName", &ifn, "networkName",
			&net) < 0 ||
	    strcmp(kind, "crispCNICacheV1") || strcmp(id, rt->container_id) || strcmp(ifn, rt->ifname) ||
	    strcmp(net, network) || !json_is_object(conf) || !json_is_object(res) || !json_is_boolean(il)) {
		json_decref(doc);
		return crisp_error(err, CRISP_DATA_LOSS, 0, "CNI cache %s is malformed", path);
	}
	if (cni_list_from_json(conf, json_is_true(il), cl, err) < 0) {
		json_decref(doc);
		return crisp_error_wrap(err, "CNI cache %s", path);
	}
	*result = json_incref(res);
	if (caps != NULL) {
		json_t *ca = json_object_get(doc, "capabilityArgs");
		*caps = json_is_object(ca) ? json_incref(ca) : NULL;
	}
	json_decref(doc);
	return 1;
}

/* ---- operations --------------------------------------------------------- */

static int run_plugin(const struct cni_opts *o, const struct cni_list *l, size_t idx, const char *command,
		      const struct cni_rt *rt, json_t *prev, char **out, size_t *outlen, crisp_err_t *err)
{
	json_t *conf = cni_plugin_config(l, idx, prev, rt->capability_args);
	const char *type = json_string_value(json_object_get(json_array_get(l->plugins, idx), "type"));
	char *text;
	int r;

	if (conf == NULL || (text = json_dumps(conf, JSON_COMPACT)) == NULL) {
		json_decref(conf);
		return crisp_error(err, CRISP_INTERNAL, ENOMEM, "building the configuration of CNI plugin %zu", idx);
	}
	json_decref(conf);
	r = cni_exec(o, type, command, rt, text, strlen(text), out, outlen, err);
	free(text);
	return r;
}

static int del_list(const struct cni_opts *o, const struct cni_list *l, const struct cni_rt *rt, json_t *prev,
		    crisp_err_t *err)
{
	int r = 0;

	for (size_t i = json_array_size(l->plugins); i-- > 0;) {
		crisp_err_t e2 = CRISP_ERR_INIT;
		char *out = NULL;

		if (run_plugin(o, l, i, "DEL", rt, prev, &out, NULL, &e2) < 0 && r == 0) {
			if (err)
				*err = e2;
			r = -1;
		}
		free(out);
	}
	return r;
}

int cni_add(const struct cni_opts *o, const struct cni_list *l, const struct cni_rt *rt, struct cni_result *res,
	    crisp_err_t *err)
{
	json_t *prev = NULL;
	char path[PATH_MAX];

	memset(res, 0, sizeof *res);
	if (cni_cache_path(o, l->name, rt, path, sizeof path, err) < 0)
		return -1;
	for (size_t i = 0; i < json_array_size(l->plugins); i++) {
		char *out = NULL;
		size_t outlen = 0;
		struct cni_result r1;
		const char *type = json_string_value(json_object_get(json_array_get(l->plugins, i), "type"));

		if (run_plugin(o, l, i, "ADD", rt, prev, &out, &outlen, err) < 0)
			goto fail;
		if (cni_result_parse(out, outlen, &r1, err) < 0) {
			free(out);
			crisp_error_wrap(err, "CNI plugin %s (ADD)", type);
			goto fail;
		}
		free(out);
		json_decref(prev);
		prev = json_incref(r1.json);
		cni_result_free(res);
		*res = r1;
	}
	if (cache_write(o, l, rt, prev, err) < 0)
		goto fail;
	json_decref(prev);
	return 0;
fail:
	/* Undo what the plugins that ran may have done; keep the ADD error. */
	(void)del_list(o, l, rt, prev, NULL);
	json_decref(prev);
	cni_result_free(res);
	return -1;
}

int cni_del(const struct cni_opts *o, const char *network, const struct cni_list *l, const struct cni_rt *rt,
	    crisp_err_t *err)
{
	struct cni_list cl;
	json_t *prev = NULL, *caps = NULL;
	struct cni_rt crt;
	char path[PATH_MAX];
	int c;

	if (network == NULL && l != NULL)
		network = l->name;
	if (cni_cache_path(o, network, rt, path, sizeof path, err) < 0)
		return -1;
	c = cache_read(o, network, rt, &cl, &prev, &caps, err);
	if (c > 0 && rt->capability_args == NULL && caps != NULL) {
		crt = *rt;
		crt.capability_args = caps;
		rt = &crt;
	}
	if (c < 0) {
		/* A damaged entry must not make DEL fail forever: fall back to
		 * the current configuration (without prevResult) when we have
		 * one, and replace the entry by removing it on success. */
		if (l == NULL)
			return -1;
		c = 0;
	}
	if (c == 0 && l == NULL)
		return 0;
	if (del_list(o, c ? &cl : l, rt, prev, err) < 0) {
		if (c)
			cni_list_free(&cl);
		json_decref(prev);
		json_decref(caps);
		return -1;
	}
	if (c)
		cni_list_free(&cl);
	json_decref(prev);
	json_decref(caps);
	if (unlink(path) < 0 && errno != ENOENT)
		return crisp_error(err, CRISP_INTERNAL, errno, "removing %s", path);
	if (c)
		(void)fsync_dir(o->cache_dir);
	return 0;
}

int cni_check(const struct cni_opts *o, const struct cni_list *l, const struct cni_rt *rt, crisp_err_t *err)
{
	struct cni_list cl;
	json_t *prev = NULL;
	unsigned maj, min;
	int c, r = 0;

	c = cache_read(o, l->name, rt, &cl, &prev, NULL, err);
	if (c < 0)
		return -1;
	if (c == 0)
		return crisp_error(err, CRISP_NOT_FOUND, 0, "no cached CNI result for %s on network %s", rt->container_id,
				   l->name);
	if (version_major_minor(cl.cni_version, &maj, &min) < 0 || (maj == 0 && min < 4) || cl.disable_check)
		goto out;
	for (size_t i = 0; i < json_array_size(cl.plugins); i++) {
		char *out = NULL;
		r = run_plugin(o, &cl, i, "CHECK", rt, prev, &out, NULL, err);
		free(out);
		if (r < 0)
			break;
	}
out:
	cni_list_free(&cl);
	json_decref(prev);
	return r;
}
