/*
 * crisp: netd's CNI runner and network namespaces, against the real
 * plugins (Debian's containernetworking-plugins in /usr/lib/cni) in
 * namespaces the tests create.  Needs root; exits 77 (skip) otherwise or
 * when the plugins are missing.
 *
 * Each test has its own temporary directory (pins, plugin scripts, cache,
 * host-local data), its own bridge "crt<pid%1000><n>" on 10.254.<n>.0/24
 * (no gateway, no masquerade, routes nowhere) and tears everything down in
 * its teardown, which runs even when the test fails.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/magic.h>

#include "common/util.h"
#include "netd/cni.h"
#include "netd/cniconf.h"
#include "netd/netns.h"

#define MAXPODS 4

struct fx {
	char tmp[64];
	char nsdir[128], bin[128], cache[128], ipam[128];
	char bridge[16];
	int subnet;
	const char *dirs[2];
	struct cni_opts o;
	struct cni_list l;
	int have_list;
	/* what teardown undoes */
	char pods[MAXPODS][32];
	char pins[MAXPODS][PATH_MAX];
	int npods;
};

static int test_seq;

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (system(cmd) != 0) {
		/* teardown commands may fail on what is already gone */
	}
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(crisp_write_all(fd, text, strlen(text)), 0);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void plugin_script(struct fx *f, const char *name, const char *body)
{
	char path[PATH_MAX], text[4096];

	snprintf(path, sizeof path, "%s/%s", f->bin, name);
	snprintf(text, sizeof text, "#!/bin/sh\n%s\n", body);
	write_file(path, text, 0755);
}

/* Load a list whose middle plugins are extra (raw JSON, may be ""). */
static void load_list(struct fx *f, const char *extra)
{
	char text[4096];
	crisp_err_t err = CRISP_ERR_INIT;

	snprintf(text, sizeof text,
		 "{\"cniVersion\":\"1.0.0\",\"name\":\"%s\",\"plugins\":["
		 "{\"type\":\"loopback\"},"
		 "{\"type\":\"bridge\",\"bridge\":\"%s\",\"isGateway\":false,\"ipMasq\":false,"
		 "\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"%s\",\"ranges\":[[{\"subnet\":\"10.254.%d.0/24\"}]]}}"
		 "%s,"
		 "{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true},\"snat\":false}]}",
		 f->bridge, f->bridge, f->ipam, f->subnet, extra);
	if (f->have_list)
		cni_list_free(&f->l);
	if (cni_list_parse(text, strlen(text), 1, &f->l, &err) < 0)
		fail_msg("list: %s", err.msg);
	f->have_list = 1;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	snprintf(f->tmp, sizeof f->tmp, "/tmp/crisp-cni-XXXXXX");
	assert_non_null(mkdtemp(f->tmp));
	assert_int_equal(chmod(f->tmp, 0755), 0);
	snprintf(f->nsdir, sizeof f->nsdir, "%s/netns", f->tmp);
	snprintf(f->bin, sizeof f->bin, "%s/bin", f->tmp);
	snprintf(f->cache, sizeof f->cache, "%s/cache", f->tmp);
	snprintf(f->ipam, sizeof f->ipam, "%s/ipam", f->tmp);
	assert_int_equal(mkdir(f->bin, 0755), 0);
	test_seq++;
	f->subnet = 100 + (int)((getpid() * 7 + test_seq) % 150);
	snprintf(f->bridge, sizeof f->bridge, "crt%d%c", (int)(getpid() % 1000), 'a' + test_seq % 26);
	f->dirs[0] = f->bin;
	f->dirs[1] = "/usr/lib/cni";
	f->o.bin_dirs = f->dirs;
	f->o.nbin_dirs = 2;
	f->o.cache_dir = f->cache;
	f->o.timeout_ms = 20000;
	*state = f;
	return 0;
}

static void rt_of(struct fx *f, int i, struct cni_rt *rt)
{
	memset(rt, 0, sizeof *rt);
	rt->container_id = f->pods[i];
	rt->netns = f->pins[i];
	rt->ifname = "eth0";
	rt->k8s_namespace = "default";
	rt->k8s_name = f->pods[i];
	rt->k8s_uid = "0000-1111";
}

static int teardown(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;

	for (int i = 0; i < f->npods; i++) {
		struct cni_rt rt;
		rt_of(f, i, &rt);
		if (cni_del(&f->o, f->bridge, f->have_list ? &f->l : NULL, &rt, &err) < 0)
			fprintf(stderr, "teardown DEL %s: %s\n", f->pods[i], err.msg);
		if (netns_delete(f->nsdir, f->pods[i], &err) < 0)
			fprintf(stderr, "teardown netns %s: %s\n", f->pods[i], err.msg);
	}
	if (f->have_list)
		cni_list_free(&f->l);
	sh("ip link del %s 2>/dev/null", f->bridge);
	/* The netns dir is a (shared) self bind mount: unmount it, then remove. */
	sh("umount -l %s 2>/dev/null", f->nsdir);
	sh("rm -rf %s", f->tmp);
	free(f);
	return 0;
}

static int new_pod(struct fx *f, const char *name)
{
	crisp_err_t err = CRISP_ERR_INIT;
	int i = f->npods, fd = -1;
	struct statfs sf;

	assert_true(i < MAXPODS);
	snprintf(f->pods[i], sizeof f->pods[i], "%s", name);
	if (netns_create(f->nsdir, name, f->pins[i], sizeof f->pins[i], &fd, &err) < 0)
		fail_msg("netns_create: %s", err.msg);
	f->npods++;
	assert_int_equal(fstatfs(fd, &sf), 0);
	assert_true(sf.f_type == NSFS_MAGIC);
	close(fd);
	return i;
}

static int reservation_exists(struct fx *f, const char *ip)
{
	char path[PATH_MAX];

	snprintf(path, sizeof path, "%s/%s/%s", f->ipam, f->bridge, ip);
	return access(path, F_OK) == 0;
}

/* Count host-local reservations (files named like an IPv4 address). */
static int reservations(struct fx *f)
{
	char path[PATH_MAX];
	struct dirent *e;
	unsigned char b[4];
	int n = 0;
	DIR *d;

	snprintf(path, sizeof path, "%s/%s", f->ipam, f->bridge);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (inet_pton(AF_INET, e->d_name, b) == 1)
			n++;
	closedir(d);
	return n;
}

static int bridge_ports(struct fx *f)
{
	char cmd[256], line[512];
	int n = 0;
	FILE *p;

	snprintf(cmd, sizeof cmd, "ip -o link show master %s 2>/dev/null", f->bridge);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof line, p))
		n++;
	pclose(p);
	return n;
}

static void add_pod(struct fx *f, int i, struct cni_result *res)
{
	crisp_err_t err = CRISP_ERR_INIT;
	struct cni_rt rt;

	rt_of(f, i, &rt);
	if (cni_add(&f->o, &f->l, &rt, res, &err) < 0)
		fail_msg("ADD %s: %s", f->pods[i], err.msg);
}

/* ---- tests -------------------------------------------------------------- */

static void test_two_pods(void **state)
{
	struct fx *f = *state;
	struct cni_result ra, rb;
	crisp_err_t err = CRISP_ERR_INIT;
	struct cni_rt rt;
	char ipa[64], ipb[64], prefix[32], cache[PATH_MAX];
	int a, b;

	load_list(f, "");
	a = new_pod(f, "poda");
	b = new_pod(f, "podb");
	add_pod(f, a, &ra);
	/* CHECK while pod a is alone on the bridge: the bridge plugin's CHECK
	 * compares the bridge's MAC with the one in the result, and a Linux
	 * bridge takes the lowest MAC of its ports, which the next veth may
	 * change (a limitation of the plugin, not of the runner). */
	rt_of(f, a, &rt);
	if (cni_check(&f->o, &f->l, &rt, &err) < 0)
		fail_msg("CHECK: %s", err.msg);
	add_pod(f, b, &rb);
	snprintf(ipa, sizeof ipa, "%s", cni_result_ip(&ra, AF_INET));
	snprintf(ipb, sizeof ipb, "%s", cni_result_ip(&rb, AF_INET));
	snprintf(prefix, sizeof prefix, "10.254.%d.", f->subnet);
	assert_true(strncmp(ipa, prefix, strlen(prefix)) == 0);
	assert_true(strncmp(ipb, prefix, strlen(prefix)) == 0);
	assert_string_not_equal(ipa, ipb);
	assert_int_equal(ra.ips[0].prefix, 24);
	assert_true(ra.ips[0].iface >= 0 && (size_t)ra.ips[0].iface < ra.ninterfaces);
	cni_result_free(&ra);
	cni_result_free(&rb);
	assert_true(reservation_exists(f, ipa));
	assert_true(reservation_exists(f, ipb));
	assert_int_equal(bridge_ports(f), 2);

	/* The two namespaces reach each other over the bridge. */
	assert_int_equal(run("nsenter --net=%s busybox ping -c1 -W2 %s >/dev/null 2>&1", f->pins[a], ipb), 0);
	assert_int_equal(run("nsenter --net=%s busybox ping -c1 -W2 %s >/dev/null 2>&1", f->pins[b], ipa), 0);

	/* DEL releases the IP, removes the veth and the cache entry. */
	assert_int_equal(cni_cache_path(&f->o, f->l.name, &rt, cache, sizeof cache, &err), 0);
	assert_int_equal(access(cache, F_OK), 0);
	if (cni_del(&f->o, NULL, &f->l, &rt, &err) < 0)
		fail_msg("DEL: %s", err.msg);
	assert_false(reservation_exists(f, ipa));
	assert_true(reservation_exists(f, ipb));
	assert_int_equal(bridge_ports(f), 1);
	assert_int_equal(access(cache, F_OK), -1);
	/* DEL twice is fine. */
	if (cni_del(&f->o, NULL, &f->l, &rt, &err) < 0)
		fail_msg("second DEL: %s", err.msg);
	/* CHECK without an attachment says so. */
	assert_int_equal(cni_check(&f->o, &f->l, &rt, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
}

static void test_del_from_cache(void **state)
{
	struct fx *f = *state;
	struct cni_result r;
	crisp_err_t err = CRISP_ERR_INIT;
	struct cni_rt rt;
	char ip[64];
	int a;

	load_list(f, "");
	a = new_pod(f, "podc");
	add_pod(f, a, &r);
	snprintf(ip, sizeof ip, "%s", cni_result_ip(&r, AF_INET));
	cni_result_free(&r);
	assert_true(reservation_exists(f, ip));
	/* A fresh process state: no configuration in memory at all. */
	cni_list_free(&f->l);
	f->have_list = 0;
	rt_of(f, a, &rt);
	if (cni_del(&f->o, f->bridge, NULL, &rt, &err) < 0)
		fail_msg("DEL from cache: %s", err.msg);
	assert_false(reservation_exists(f, ip));
	assert_int_equal(bridge_ports(f), 0);
	/* Without cache and without config: nothing to do, success. */
	assert_int_equal(cni_del(&f->o, f->bridge, NULL, &rt, &err), 0);
}

static void test_half_failed_add(void **state)
{
	struct fx *f = *state;
	struct cni_result r;
	crisp_err_t err = CRISP_ERR_INIT;
	struct cni_rt rt;
	int a;

	load_list(f, ",{\"type\":\"crisp-no-such-plugin\"}");
	a = new_pod(f, "podd");
	rt_of(f, a, &rt);
	assert_int_equal(cni_add(&f->o, &f->l, &rt, &r, &err), -1);
	assert_non_null(strstr(err.msg, "crisp-no-such-plugin"));
	/* ADD undid itself: no veth on the bridge, no reservation. */
	assert_int_equal(bridge_ports(f), 0);
	assert_int_equal(reservations(f), 0);
	assert_int_equal(run("nsenter --net=%s ip -o link show eth0 >/dev/null 2>&1", f->pins[a]) == 0, 0);
	/* An explicit DEL afterwards (what netd does) still succeeds? The
	 * missing plugin makes DEL report an error, but the others ran. */
	(void)cni_del(&f->o, NULL, &f->l, &rt, &err);
	assert_int_equal(bridge_ports(f), 0);
	assert_int_equal(reservations(f), 0);
}

static void one_plugin_list(struct fx *f, const char *type)
{
	char text[512];
	crisp_err_t err = CRISP_ERR_INIT;

	snprintf(text, sizeof text, "{\"cniVersion\":\"1.0.0\",\"name\":\"%s\",\"type\":\"%s\"}", f->bridge, type);
	if (f->have_list)
		cni_list_free(&f->l);
	if (cni_list_parse(text, strlen(text), 0, &f->l, &err) < 0)
		fail_msg("list: %s", err.msg);
	f->have_list = 1;
}

static void test_plugin_errors(void **state)
{
	struct fx *f = *state;
	struct cni_result r;
	crisp_err_t err = CRISP_ERR_INIT;
	struct cni_rt rt;
	int a;

	a = new_pod(f, "pode");
	rt_of(f, a, &rt);
	plugin_script(f, "errjson",
		      "cat >/dev/null; [ \"$CNI_COMMAND\" = DEL ] && exit 0\n"
		      "echo '{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"no more addresses\",\"details\":\"pool 10.0.0.0/8\"}'\n"
		      "exit 1");
	one_plugin_list(f, "errjson");
	assert_int_equal(cni_add(&f->o, &f->l, &rt, &r, &err), -1);
	assert_non_null(strstr(err.msg, "no more addresses: pool 10.0.0.0/8"));
	assert_non_null(strstr(err.msg, "code 7"));

	plugin_script(f, "garbage", "echo 'this is not json'; exit 0");
	one_plugin_list(f, "garbage");
	assert_int_equal(cni_add(&f->o, &f->l, &rt, &r, &err), -1);
	assert_non_null(strstr(err.msg, "invalid CNI result"));
	assert_non_null(strstr(err.msg, "garbage"));

	plugin_script(f, "stderr", "echo 'boom: cannot frobnicate' >&2; exit 3");
	one_plugin_list(f, "stderr");
	assert_int_equal(cni_add(&f->o, &f->l, &rt, &r, &err), -1);
	assert_non_null(strstr(err.msg, "status 3"));
	assert_non_null(strstr(err.msg, "boom: cannot frobnicate"));

	/* Environment: only what the spec names, and the closed fd set. */
	plugin_script(f, "envdump",
		      "[ \"$CNI_COMMAND\" = DEL ] && exit 0\n"
		      "env | sort > $(dirname $0)/../env.txt; ls /proc/self/fd > $(dirname $0)/../fds.txt\n"
		      "cat > $(dirname $0)/../stdin.txt\n"
		      "echo '{\"cniVersion\":\"1.0.0\"}'");
	one_plugin_list(f, "envdump");
	if (cni_add(&f->o, &f->l, &rt, &r, &err) < 0)
		fail_msg("envdump: %s", err.msg);
	cni_result_free(&r);
	assert_int_equal(run("cd %s && grep -qx 'CNI_COMMAND=ADD' env.txt && grep -qx 'CNI_IFNAME=eth0' env.txt && "
			     "grep -qx 'CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pode;"
			     "K8S_POD_INFRA_CONTAINER_ID=pode;K8S_POD_UID=0000-1111' env.txt && "
			     "grep -qx 'CNI_NETNS=%s' env.txt && ! grep -q '^HOME=' env.txt && "
			     "grep -q '\"name\":\"%s\"' stdin.txt",
			     f->tmp, f->pins[a], f->bridge),
			 0);
	/* ls's own fds: 0 1 2 and the one of the directory it reads */
	assert_int_equal(run("test $(wc -l < %s/fds.txt) -le 4", f->tmp), 0);
	/* A damaged cache entry: DEL falls back to the configuration and
	 * removes the entry instead of failing forever. */
	{
		char cache[PATH_MAX];
		assert_int_equal(cni_cache_path(&f->o, f->l.name, &rt, cache, sizeof cache, &err), 0);
		write_file(cache, "{\"kind\":", 0600);
		assert_int_equal(cni_del(&f->o, f->bridge, NULL, &rt, &err), -1);
		assert_int_equal(err.code, CRISP_DATA_LOSS);
		assert_int_equal(cni_del(&f->o, NULL, &f->l, &rt, &err), 0);
		assert_int_equal(access(cache, F_OK), -1);
	}
}

static void test_timeout_and_limits(void **state)
{
	struct fx *f = *state;
	struct cni_result r;
	crisp_err_t err = CRISP_ERR_INIT;
	struct cni_rt rt;
	uint64_t t0;
	char path[PATH_MAX], buf[64] = "";
	int a, fd;

	a = new_pod(f, "podf");
	rt_of(f, a, &rt);
	plugin_script(f, "hang", "sleep 100 & echo $! > $(dirname $0)/../sleep.pid; wait");
	one_plugin_list(f, "hang");
	f->o.timeout_ms = 500;
	t0 = crisp_now_ms();
	assert_int_equal(cni_add(&f->o, &f->l, &rt, &r, &err), -1);
	assert_int_equal(err.code, CRISP_DEADLINE_EXCEEDED);
	/* ADD timed out, then its DEL too: about two timeouts. */
	assert_true(crisp_now_ms() - t0 < 5000);
	/* The plugin's child went with its process group. */
	snprintf(path, sizeof path, "%s/sleep.pid", f->tmp);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof buf - 1) > 0);
	close(fd);
	usleep(100000);
	{
		char st[PATH_MAX], line[512] = "";
		FILE *s;
		snprintf(st, sizeof st, "/proc/%d/stat", atoi(buf));
		s = fopen(st, "r");
		if (s != NULL) { /* gone, or a zombie of the reaper */
			assert_non_null(fgets(line, sizeof line, s));
			fclose(s);
			assert_non_null(strstr(line, ") Z "));
		}
	}

	/* Closing stdout/stderr and lingering is no escape from the deadline. */
	plugin_script(f, "linger", "exec >&- 2>&-; exec sleep 100");
	one_plugin_list(f, "linger");
	t0 = crisp_now_ms();
	assert_int_equal(cni_add(&f->o, &f->l, &rt, &r, &err), -1);
	assert_int_equal(err.code, CRISP_DEADLINE_EXCEEDED);
	assert_true(crisp_now_ms() - t0 < 5000);

	f->o.timeout_ms = 20000;
	f->o.max_stdout = 4096;
	plugin_script(f, "big", "head -c 100000 /dev/zero | tr '\\0' x; exit 0");
	one_plugin_list(f, "big");
	assert_int_equal(cni_add(&f->o, &f->l, &rt, &r, &err), -1);
	assert_int_equal(err.code, CRISP_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(err.msg, "stdout"));

	/* A symlinked, group-writable or missing plugin. */
	plugin_script(f, "gw", "exit 0");
	snprintf(path, sizeof path, "%s/gw", f->bin);
	assert_int_equal(chmod(path, 0775), 0);
	one_plugin_list(f, "gw");
	assert_int_equal(cni_add(&f->o, &f->l, &rt, &r, &err), -1);
	assert_non_null(strstr(err.msg, "writable"));
}

static void test_plugin_config(void **state)
{
	const char *text = "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":["
			   "{\"type\":\"a\",\"capabilities\":{\"portMappings\":true,\"bandwidth\":false},"
			   "\"runtimeConfig\":{\"evil\":1}},{\"type\":\"b\"}]}";
	struct cni_list l;
	crisp_err_t err = CRISP_ERR_INIT;
	json_t *args = json_pack("{s:[{s:i}], s:{s:i}, s:s}", "portMappings", "hostPort", 80, "bandwidth", "rate", 1,
				 "ips", "x");
	json_t *prev = json_pack("{s:s}", "cniVersion", "1.0.0");
	json_t *c;

	(void)state;
	assert_int_equal(cni_list_parse(text, strlen(text), 1, &l, &err), 0);
	c = cni_plugin_config(&l, 0, prev, args);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "name")), "n");
	assert_string_equal(json_string_value(json_object_get(c, "cniVersion")), "1.0.0");
	assert_non_null(json_object_get(c, "prevResult"));
	assert_int_equal(json_object_size(json_object_get(c, "runtimeConfig")), 1);
	assert_non_null(json_object_get(json_object_get(c, "runtimeConfig"), "portMappings"));
	json_decref(c);
	c = cni_plugin_config(&l, 1, NULL, args);
	assert_null(json_object_get(c, "runtimeConfig"));
	assert_null(json_object_get(c, "prevResult"));
	json_decref(c);
	json_decref(args);
	json_decref(prev);
	cni_list_free(&l);
	/* Duplicate keys and bad types are refused. */
	assert_int_equal(cni_list_parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"name\":\"m\",\"type\":\"x\"}", 59, 0,
					&l, &err),
			 -1);
	assert_int_equal(cni_list_parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"../x\"}", 46, 0, &l, &err),
			 -1);
}

static int parse(const char *s)
{
	struct cni_result r;
	crisp_err_t err = CRISP_ERR_INIT;
	int rc = cni_result_parse(s, strlen(s), &r, &err);

	cni_result_free(&r);
	return rc;
}

static void test_result_parse(void **state)
{
	const char *v1 = "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\",\"mac\":\"aa:bb:cc:dd:ee:ff\","
			 "\"sandbox\":\"/run/netns/x\"}],\"ips\":[{\"address\":\"10.1.2.3/24\",\"gateway\":\"10.1.2.1\","
			 "\"interface\":0},{\"address\":\"fd00::5/64\",\"interface\":0}],"
			 "\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.1.2.1\"}],"
			 "\"dns\":{\"nameservers\":[\"10.0.0.10\"],\"search\":[\"a.b\"],\"options\":[\"ndots:5\"]}}";
	struct cni_result r;
	crisp_err_t err = CRISP_ERR_INIT;
	unsigned code;
	char msg[128];

	(void)state;
	assert_int_equal(cni_result_parse(v1, strlen(v1), &r, &err), 0);
	assert_int_equal(r.nips, 2);
	assert_string_equal(cni_result_ip(&r, AF_INET), "10.1.2.3");
	assert_string_equal(cni_result_ip(&r, AF_INET6), "fd00::5");
	assert_int_equal(r.ips[1].prefix, 64);
	assert_int_equal(r.nnameservers, 1);
	cni_result_free(&r);
	assert_int_equal(parse("{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":\"4\",\"address\":\"10.1.2.3/24\"}]}"), 0);
	assert_int_equal(parse("{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":\"6\",\"address\":\"10.1.2.3/24\"}]}"),
			 -1);
	assert_int_equal(parse("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.1.2.3/24\",\"interface\":0}]}"), -1);
	assert_int_equal(parse("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.1.2.3/33\"}]}"), -1);
	assert_int_equal(parse("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.1.2.3\"}]}"), -1);
	assert_int_equal(parse("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.1.2.3/24\",\"gateway\":\"fd00::1\"}]}"),
			 -1);
	assert_int_equal(parse("{\"cniVersion\":\"1.0.0\",\"cniVersion\":\"1.0.0\"}"), -1);
	assert_int_equal(parse("{\"cniVersion\":\"2.0.0\"}"), -1);
	assert_int_equal(parse("{\"cniVersion\":\"1.0.0\",\"routes\":[{\"dst\":\"x\"}]}"), -1);
	assert_int_equal(parse("{\"cniVersion\":\"1.0.0\",\"dns\":{\"nameservers\":[\"not-an-ip\"]}}"), -1);
	assert_int_equal(parse("[]"), -1);
	assert_int_equal(cni_error_parse("{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"try\"}", 44, &code, msg,
					 sizeof msg),
			 0);
	assert_int_equal(code, 11);
	assert_string_equal(msg, "try");
	assert_int_equal(cni_error_parse("{\"code\":\"x\",\"msg\":\"m\"}", 22, &code, msg, sizeof msg), -1);
}

static void test_netns(void **state)
{
	struct fx *f = *state;
	crisp_err_t err = CRISP_ERR_INIT;
	struct stat a, b;
	int fd = -1, i;

	i = new_pod(f, "nsonly");
	assert_int_equal(netns_open(f->nsdir, "nsonly", &fd, &err), 0);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(stat("/proc/self/ns/net", &b), 0);
	assert_true(a.st_ino != b.st_ino);
	close(fd);
	assert_int_equal(netns_create(f->nsdir, "nsonly", NULL, 0, NULL, &err), -1);
	assert_int_equal(err.code, CRISP_ALREADY_EXISTS);
	assert_int_equal(netns_create(f->nsdir, "../x", NULL, 0, NULL, &err), -1);
	assert_int_equal(netns_delete(f->nsdir, "nsonly", &err), 0);
	assert_int_equal(access(f->pins[i], F_OK), -1);
	assert_int_equal(netns_delete(f->nsdir, "nsonly", &err), 0);
	assert_int_equal(netns_open(f->nsdir, "nsonly", &fd, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
}

static void write_file_at(const char *dir, const char *name, const char *text, time_t mtime)
{
	char p[512];
	int fd;

	snprintf(p, sizeof p, "%s/%s", dir, name);
	/* In place (same inode) when it exists: what an editor without a
	 * rename does. */
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(crisp_write_all(fd, text, strlen(text)), 0);
	if (mtime) {
		struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
		assert_int_equal(futimens(fd, ts), 0);
	}
	close(fd);
}

/* cni_conf_find's cache: an unchanged directory is answered without
 * reading a file; a file that appears, changes in place or goes is seen at
 * the next call. */
static void test_conf_find_cache(void **state)
{
	char dir[64] = "/tmp/crisp-cniconf-XXXXXX", missing[128];
	struct cni_conf_stats a, b;
	struct cni_net net;
	crisp_err_t err = CRISP_ERR_INIT;
	time_t old = time(NULL) - 3600;

	(void)state;
	assert_non_null(mkdtemp(dir));
	cni_conf_cache_drop();
	snprintf(missing, sizeof missing, "%s/none", dir);
	assert_int_equal(cni_conf_find(missing, NULL, &net, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_int_equal(cni_conf_find(dir, NULL, &net, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);

	/* A configuration appears: found at once. */
	write_file_at(dir, "10-a.conflist", "{\"cniVersion\":\"1.0.0\",\"name\":\"net-a\",\"plugins\":[{\"type\":\"loopback\"}]}",
		      old);
	write_file_at(dir, "20-junk.conf", "{not json", old);
	memset(&net, 0, sizeof net);
	assert_int_equal(cni_conf_find(dir, NULL, &net, &err), 0);
	assert_string_equal(net.name, "net-a");
	/* The directory changed just now (racily): not cached yet, every call
	 * reads.  Once its times are old enough, one more scan, then hits. */
	struct timespec dts[2] = { { old, 0 }, { old, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, dir, dts, 0), 0);
	sleep(3); /* the directory's ctime cannot be set back: let it age */
	cni_conf_get_stats(&a);
	for (int i = 0; i < 100; i++) {
		memset(&net, 0, sizeof net);
		assert_int_equal(cni_conf_find(dir, NULL, &net, &err), 0);
		assert_string_equal(net.name, "net-a");
	}
	cni_conf_get_stats(&b);
	assert_int_equal(b.lookups - a.lookups, 100);
	assert_int_equal(b.scans - a.scans, 1);
	assert_int_equal(b.hits - a.hits, 99);
	/* Another wanted name is another key. */
	assert_int_equal(cni_conf_find(dir, "net-x", &net, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_non_null(strstr(err.msg, "net-x"));
	/* The failure is cached too, with its message. */
	memset(&err, 0, sizeof err);
	assert_int_equal(cni_conf_find(dir, "net-x", &net, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_non_null(strstr(err.msg, "net-x"));

	/* Rewritten in place, same size, mtime set back to another old
	 * time: the change of times is enough. */
	write_file_at(dir, "10-a.conflist", "{\"cniVersion\":\"1.0.0\",\"name\":\"net-b\",\"plugins\":[{\"type\":\"loopback\"}]}",
		      old + 1);
	assert_int_equal(cni_conf_find(dir, NULL, &net, &err), 0);
	assert_string_equal(net.name, "net-b");
	/* Gone: NOT_FOUND naming the last error (the junk file). */
	char p[512];
	snprintf(p, sizeof p, "%s/10-a.conflist", dir);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(cni_conf_find(dir, NULL, &net, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_non_null(strstr(err.msg, "20-junk.conf"));
	snprintf(p, sizeof p, "%s/20-junk.conf", dir);
	unlink(p);
	rmdir(dir);
	cni_conf_cache_drop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plugin_config),
		cmocka_unit_test(test_result_parse),
		cmocka_unit_test(test_conf_find_cache),
		cmocka_unit_test_setup_teardown(test_netns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_pods, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del_from_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_failed_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plugin_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_and_limits, setup, teardown),
	};

	if (geteuid() != 0 || access("/usr/lib/cni/bridge", X_OK) != 0) {
		fprintf(stderr, "test_cni: needs root and /usr/lib/cni/bridge, skipped\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
