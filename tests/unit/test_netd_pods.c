/*
 * netd's pod network service through real ipc (an execd end and a netd end
 * on one loop) with real CNI plugins (loopback, bridge, host-local) in
 * network namespaces the test creates and removes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "ipc/ipc.h"
#include "netd/pods.h"

#define POD_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define POD_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static struct {
	char dir[64], root[128], run[128], netd_dir[160], cni[128], ipam[128], bridge[16], bridge6[16];
	int subnet;
	struct loop *loop;
	struct netd_pods np;
	struct ipc_chan *netd_end, *execd_end;
	Cipc__Config cfg;
	char *plugin_dirs[1];
	/* the answer of the last request */
	bool answered;
	crisp_err_t err;
	bool failed;
	int fd;
	char ips[2][64];
	size_t nips;
	char network[64];
} T;

static void write_conf(const char *name, const char *text)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof p, "%s/%s", T.cni, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void on_setup(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	(void)arg;
	netd_pods_setup(&T.np, &T.cfg, ch, m);
}

static void on_teardown(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	(void)arg;
	netd_pods_teardown(&T.np, &T.cfg, ch, m);
}

static void on_runtime_config(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	(void)arg;
	netd_pods_runtime_config(&T.np, ch, m);
}

static const struct ipc_handler netd_handlers[] = {
	{ IPC_NET_SETUP, on_setup },
	{ IPC_NET_TEARDOWN, on_teardown },
	{ IPC_NET_RUNTIME_CONFIG, on_runtime_config },
};

static void on_answer(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	(void)ch;
	(void)arg;
	T.answered = true;
	T.failed = e != NULL;
	if (e != NULL) {
		T.err = *e;
		return;
	}
	if (ans->hdr.type == IPC_NET_RESULT) {
		const Cipc__NetResult *r = (const Cipc__NetResult *)ans->pb;
		T.fd = TAKE_FD(ans->fd);
		T.nips = r->n_ips < 2 ? r->n_ips : 2;
		for (size_t i = 0; i < T.nips; i++)
			crisp_strlcpy(T.ips[i], r->ips[i], sizeof T.ips[i]);
		crisp_strlcpy(T.network, r->network, sizeof T.network);
	}
}

static void wait_answer(void)
{
	uint64_t end = crisp_now_ms() + 60000;

	while (!T.answered && crisp_now_ms() < end)
		assert_int_equal(loop_run_once(T.loop, 100), 0);
	assert_true(T.answered);
}

static void request(uint32_t type, const ProtobufCMessage *pb)
{
	crisp_err_t err = CRISP_ERR_INIT;

	T.answered = false;
	T.failed = false;
	T.fd = -1;
	T.nips = 0;
	if (ipc_request(T.execd_end, type, pb, -1, 120000, on_answer, NULL, NULL, &err) < 0)
		fail_msg("request: %s", err.msg);
	wait_answer();
}

static void setup_pod(const char *id)
{
	Cipc__NetSetup rq = CIPC__NET_SETUP__INIT;

	rq.pod_id = (char *)id;
	rq.name = "pod";
	rq.namespace_ = "default";
	rq.uid = "uid-1";
	request(IPC_NET_SETUP, &rq.base);
}

static void teardown_pod(const char *id, const char *network)
{
	Cipc__NetTeardown rq = CIPC__NET_TEARDOWN__INIT;

	rq.pod_id = (char *)id;
	rq.name = "pod";
	rq.namespace_ = "default";
	rq.uid = "uid-1";
	rq.network = (char *)(network ? network : "");
	request(IPC_NET_TEARDOWN, &rq.base);
}

static bool exists(const char *dir, const char *name)
{
	char p[8192];
	struct stat st;

	snprintf(p, sizeof p, "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

static bool reserved(const char *ip)
{
	char dir[256];

	snprintf(dir, sizeof dir, "%s/podnet", T.ipam);
	return exists(dir, ip);
}

static int group_setup(void **state)
{
	int sv[2];
	struct ipc_chan_cfg c;
	uint8_t key[IPC_KEY_SIZE] = { 7 };
	crisp_err_t err = CRISP_ERR_INIT;
	char text[1024];

	(void)state;
	if (geteuid() != 0 || access("/usr/lib/cni/bridge", X_OK) != 0)
		return 0; /* the tests skip themselves */
	strcpy(T.dir, "/tmp/crisp-netdpods-XXXXXX");
	assert_non_null(mkdtemp(T.dir));
	snprintf(T.root, sizeof T.root, "%s/root", T.dir);
	snprintf(T.run, sizeof T.run, "%s/run", T.dir);
	snprintf(T.netd_dir, sizeof T.netd_dir, "%s/netd", T.root);
	snprintf(T.cni, sizeof T.cni, "%s/net.d", T.dir);
	snprintf(T.ipam, sizeof T.ipam, "%s/ipam", T.dir);
	assert_int_equal(crisp_mkdir_p(T.netd_dir, 0700, 0, 0), 0);
	assert_int_equal(crisp_mkdir_p(T.run, 0711, 0, 0), 0);
	assert_int_equal(crisp_mkdir_p(T.cni, 0755, 0, 0), 0);
	T.subnet = 200 + (int)(getpid() % 50);
	snprintf(T.bridge, sizeof T.bridge, "crnp%d", (int)(getpid() % 10000));
	snprintf(T.bridge6, sizeof T.bridge6, "crnq%d", (int)(getpid() % 10000));
	snprintf(text, sizeof text,
		 "{\"cniVersion\":\"1.0.0\",\"name\":\"podnet\",\"plugins\":["
		 "{\"type\":\"loopback\"},"
		 "{\"type\":\"bridge\",\"bridge\":\"%s\",\"isGateway\":true,\"ipMasq\":false,"
		 "\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"%s\",\"ranges\":[[{\"subnet\":\"10.253.%d.0/24\"}]]}}]}",
		 T.bridge, T.ipam, T.subnet);
	write_conf("10-podnet.conflist", text);

	cipc__config__init(&T.cfg);
	T.cfg.cni_config_dir = T.cni;
	T.plugin_dirs[0] = "/usr/lib/cni";
	T.cfg.cni_plugin_dirs = T.plugin_dirs;
	T.cfg.n_cni_plugin_dirs = 1;
	T.cfg.cni_default_network = "";

	T.loop = loop_new();
	assert_non_null(T.loop);
	assert_int_equal(netd_pods_init(&T.np, T.loop, T.root, T.run, &err), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	memset(&c, 0, sizeof c);
	c.fd = sv[0];
	c.self = ROLE_NETD;
	c.peer = ROLE_EXECD;
	c.peer_pid = getpid();
	c.peer_uid = getuid();
	c.key = key;
	c.handlers = netd_handlers;
	c.nhandlers = ARRAY_SIZE(netd_handlers);
	T.netd_end = ipc_chan_new(T.loop, &c, &err);
	assert_non_null(T.netd_end);
	c.fd = sv[1];
	c.self = ROLE_EXECD;
	c.peer = ROLE_NETD;
	c.handlers = NULL;
	c.nhandlers = 0;
	T.execd_end = ipc_chan_new(T.loop, &c, &err);
	assert_non_null(T.execd_end);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[512];
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	if (T.loop == NULL)
		return 0;
	if (T.execd_end)
		teardown_pod(POD_A, NULL);
	if (T.execd_end)
		teardown_pod(POD_B, NULL);
	netd_pods_stop(&T.np);
	ipc_chan_close(T.execd_end);
	ipc_chan_unref(T.execd_end);
	ipc_chan_close(T.netd_end);
	ipc_chan_unref(T.netd_end);
	loop_free(T.loop);
	(void)err;
	snprintf(cmd, sizeof cmd, "ip link del %s 2>/dev/null", T.bridge);
	(void)!system(cmd);
	snprintf(cmd, sizeof cmd, "ip link del %s 2>/dev/null", T.bridge6);
	(void)!system(cmd);
	(void)umount2(T.np.netns_dir, MNT_DETACH);
	snprintf(cmd, sizeof cmd, "%s/altns/%s", T.dir, POD_A);
	(void)umount2(cmd, MNT_DETACH);
	snprintf(cmd, sizeof cmd, "%s/altns", T.dir);
	(void)umount2(cmd, MNT_DETACH);
	snprintf(cmd, sizeof cmd, "rm -rf %s", T.dir);
	(void)!system(cmd);
	return 0;
}

static void skip_unless_ready(void)
{
	if (T.loop == NULL)
		skip(); /* reason: needs root and Debian's containernetworking-plugins */
}

static void test_setup_and_teardown(void **state)
{
	struct stat pod, host;

	(void)state;
	skip_unless_ready();
	setup_pod(POD_A);
	if (T.failed)
		fail_msg("setup: %s", T.err.msg);
	assert_true(T.fd >= 0);
	/* The fd is a network namespace, and not the host's. */
	assert_int_equal(ioctl(T.fd, NS_GET_NSTYPE), CLONE_NEWNET);
	assert_int_equal(fstat(T.fd, &pod), 0);
	assert_int_equal(stat("/proc/self/ns/net", &host), 0);
	assert_true(pod.st_ino != host.st_ino);
	close(T.fd);
	assert_int_equal(T.nips, 1);
	char prefix[32];
	snprintf(prefix, sizeof prefix, "10.253.%d.", T.subnet);
	assert_int_equal(strncmp(T.ips[0], prefix, strlen(prefix)), 0);
	assert_string_equal(T.network, "podnet");
	assert_true(exists(T.np.netns_dir, POD_A));
	assert_true(reserved(T.ips[0]));
	char ip[64];
	crisp_strlcpy(ip, T.ips[0], sizeof ip);

	/* A second setup of the same pod is refused, the first untouched. */
	setup_pod(POD_A);
	assert_true(T.failed);
	assert_int_equal(T.err.code, CRISP_ALREADY_EXISTS);

	/* Another pod gets another address. */
	setup_pod(POD_B);
	if (T.failed)
		fail_msg("setup B: %s", T.err.msg);
	close(T.fd);
	assert_string_not_equal(T.ips[0], ip);

	teardown_pod(POD_A, "podnet");
	if (T.failed)
		fail_msg("teardown: %s", T.err.msg);
	assert_false(exists(T.np.netns_dir, POD_A));
	assert_false(reserved(ip));
	/* Idempotent. */
	teardown_pod(POD_A, "podnet");
	if (T.failed)
		fail_msg("second teardown: %s", T.err.msg);
	teardown_pod(POD_B, NULL);
	assert_false(T.failed);
}

static void test_broken_network_leaves_nothing(void **state)
{
	char text[1024];

	(void)state;
	skip_unless_ready();
	snprintf(text, sizeof text,
		 "{\"cniVersion\":\"1.0.0\",\"name\":\"aaa-broken\",\"plugins\":["
		 "{\"type\":\"bridge\",\"bridge\":\"%s\",\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"%s\","
		 "\"ranges\":[[{\"subnet\":\"10.253.%d.0/24\"}]]}},{\"type\":\"no-such-plugin\"}]}",
		 T.bridge, T.ipam, T.subnet);
	write_conf("00-broken.conflist", text);
	setup_pod(POD_A);
	char p[256];
	snprintf(p, sizeof p, "%s/00-broken.conflist", T.cni);
	unlink(p);
	assert_true(T.failed);
	if (strstr(T.err.msg, "no-such-plugin") == NULL)
		fail_msg("error does not name the plugin: %s", T.err.msg);
	assert_false(exists(T.np.netns_dir, POD_A));
	/* host-local's reservation for the half-made pod was released. */
	snprintf(p, sizeof p, "ls %s/aaa-broken 2>/dev/null | grep -q '^10\\.'", T.ipam);
	assert_int_not_equal(system(p), 0);

	/* No configuration at all: FAILED_PRECONDITION naming the directory. */
	T.cfg.cni_config_dir = T.ipam;
	setup_pod(POD_A);
	T.cfg.cni_config_dir = T.cni;
	assert_true(T.failed);
	assert_int_equal(T.err.code, CRISP_FAILED_PRECONDITION);
	assert_false(exists(T.np.netns_dir, POD_A));
}

static void test_bad_requests(void **state)
{
	(void)state;
	skip_unless_ready();
	setup_pod("not-a-pod-id");
	assert_true(T.failed);
	assert_int_equal(T.err.code, CRISP_INVALID_ARGUMENT);
}

/* netd checks the pod CIDRs itself (frontd's checks are a convenience). */
static void test_runtime_config_cidrs(void **state)
{
	static const struct {
		const char *cidrs[2];
		size_t n;
		bool ok;
	} cases[] = {
		{ { "10.247.0.0/24" }, 1, true },
		{ { "10.247.0.0/24", "fd00::/64" }, 2, true },
		{ { "10.247.0.0/33" }, 1, false },
		{ { "10.247.0.0" }, 1, false },
		{ { "10.247.0.0/24\n" }, 1, false },
		{ { "10.247.0.0/24,10.1.0.0/24" }, 1, false },
		{ { "not-an-ip/8" }, 1, false },
		{ { "fd00::/129" }, 1, false },
	};
	int sv[2];
	struct ipc_chan_cfg c;
	uint8_t key[IPC_KEY_SIZE] = { 8 };
	crisp_err_t err = CRISP_ERR_INIT;
	struct ipc_chan *netd_end, *front_end;
	char path[256];

	(void)state;
	skip_unless_ready();
	/* A frontd end: the table lets only frontd send NET_RUNTIME_CONFIG. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	memset(&c, 0, sizeof c);
	c.fd = sv[0];
	c.self = ROLE_NETD;
	c.peer = ROLE_FRONTD;
	c.peer_pid = getpid();
	c.peer_uid = getuid();
	c.key = key;
	c.handlers = netd_handlers;
	c.nhandlers = ARRAY_SIZE(netd_handlers);
	netd_end = ipc_chan_new(T.loop, &c, &err);
	assert_non_null(netd_end);
	c.fd = sv[1];
	c.self = ROLE_FRONTD;
	c.peer = ROLE_NETD;
	c.handlers = NULL;
	c.nhandlers = 0;
	front_end = ipc_chan_new(T.loop, &c, &err);
	assert_non_null(front_end);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		Cipc__NetRuntimeConfig rc = CIPC__NET_RUNTIME_CONFIG__INIT;
		uint64_t end = crisp_now_ms() + 10000;
		rc.pod_cidrs = (char **)cases[i].cidrs;
		rc.n_pod_cidrs = cases[i].n;
		T.answered = false;
		T.failed = false;
		assert_int_equal(ipc_request(front_end, IPC_NET_RUNTIME_CONFIG, &rc.base, -1, 10000, on_answer, NULL,
					     NULL, &err), 0);
		while (!T.answered && crisp_now_ms() < end)
			assert_int_equal(loop_run_once(T.loop, 50), 0);
		assert_true(T.answered);
		if (T.failed == cases[i].ok)
			fail_msg("case %zu (%s): %s", i, cases[i].cidrs[0], T.failed ? T.err.msg : "accepted");
		if (!cases[i].ok)
			assert_int_equal(T.err.code, CRISP_INVALID_ARGUMENT);
	}
	/* The last good value is what netd kept, durably. */
	assert_string_equal(T.np.pod_cidrs, "10.247.0.0/24,fd00::/64");
	snprintf(path, sizeof path, "%s/pod-cidrs", T.netd_dir);
	FILE *f = fopen(path, "r");
	char buf[128] = "";
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof buf, f));
	fclose(f);
	assert_string_equal(buf, "10.247.0.0/24,fd00::/64");
	ipc_chan_close(front_end);
	ipc_chan_unref(front_end);
	ipc_chan_close(netd_end);
	ipc_chan_unref(netd_end);
}

static int count_lines(const char *path, const char *word)
{
	FILE *f = fopen(path, "r");
	char line[128];
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, word, strlen(word)) == 0)
			n++;
	fclose(f);
	return n;
}

/* Use a configuration directory and plugin directories of the test's own
 * for the length of one test. */
struct alt_net {
	char cni[160], bin[160], log[200], failflag[200];
	char *saved_cni;
	char *dirs[2];
};

static void alt_net_begin(struct alt_net *a, const char *conflist)
{
	char p[512], text[1024];
	FILE *f;

	snprintf(a->cni, sizeof a->cni, "%s/net-count.d", T.dir);
	snprintf(a->bin, sizeof a->bin, "%s/bin", T.dir);
	snprintf(a->log, sizeof a->log, "%s/count.log", T.dir);
	snprintf(a->failflag, sizeof a->failflag, "%s/count.fail", T.dir);
	unlink(a->log);
	unlink(a->failflag);
	assert_int_equal(crisp_mkdir_p(a->cni, 0755, 0, 0), 0);
	assert_int_equal(crisp_mkdir_p(a->bin, 0755, 0, 0), 0);
	/* A chained plugin that logs every call, passes prevResult through,
	 * and fails DEL while the flag file exists. */
	snprintf(p, sizeof p, "%s/crisp-count", a->bin);
	f = fopen(p, "w");
	assert_non_null(f);
	fprintf(f,
		"#!/bin/sh\n"
		"echo \"$CNI_COMMAND\" >>%s\n"
		"if [ \"$CNI_COMMAND\" = DEL ] && [ -e %s ]; then\n"
		"  echo '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"told to fail\"}'; exit 1\n"
		"fi\n"
		"if [ \"$CNI_COMMAND\" = ADD ]; then\n"
		"  exec /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[\"prevResult\"]))'\n"
		"fi\n"
		"exit 0\n",
		a->log, a->failflag);
	fclose(f);
	assert_int_equal(chmod(p, 0755), 0);
	snprintf(p, sizeof p, "%s/10-count.conflist", a->cni);
	snprintf(text, sizeof text, "%s", conflist);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	a->saved_cni = T.cfg.cni_config_dir;
	a->dirs[0] = "/usr/lib/cni";
	a->dirs[1] = a->bin;
	T.cfg.cni_config_dir = a->cni;
	T.cfg.cni_plugin_dirs = a->dirs;
	T.cfg.n_cni_plugin_dirs = 2;
}

static void alt_net_end(struct alt_net *a)
{
	T.cfg.cni_config_dir = a->saved_cni;
	T.cfg.cni_plugin_dirs = T.plugin_dirs;
	T.cfg.n_cni_plugin_dirs = 1;
	T.cfg.netns_dir = "";
}

#define COUNT_NET                                                                                                   \
	"{\"cniVersion\":\"1.0.0\",\"name\":\"countnet\",\"plugins\":[{\"type\":\"loopback\"},{\"type\":\"crisp-count\"}]}"

/* StopPodSandbox's teardown runs DEL; RemovePodSandbox's teardown after it
 * finds the pod's record gone and runs no plugin at all.  A DEL that fails
 * keeps the record, so the next teardown runs DEL again. */
static void test_teardown_after_teardown_runs_no_plugin(void **state)
{
	struct alt_net a;
	char rec[512];

	(void)state;
	skip_unless_ready();
	alt_net_begin(&a, COUNT_NET);
	snprintf(rec, sizeof rec, "%s/pods/%s", T.netd_dir, POD_A);

	setup_pod(POD_A);
	if (T.failed)
		fail_msg("setup: %s", T.err.msg);
	close(T.fd);
	assert_int_equal(count_lines(a.log, "ADD"), 1);
	assert_int_equal(access(rec, F_OK), 0);

	teardown_pod(POD_A, NULL); /* stop */
	if (T.failed)
		fail_msg("teardown: %s", T.err.msg);
	assert_int_equal(count_lines(a.log, "DEL"), 1);
	assert_int_equal(access(rec, F_OK), -1);
	assert_false(exists(T.np.netns_dir, POD_A));
	teardown_pod(POD_A, NULL); /* remove */
	assert_false(T.failed);
	teardown_pod(POD_A, "countnet"); /* remove again, network named */
	assert_false(T.failed);
	assert_int_equal(count_lines(a.log, "DEL"), 1);

	/* DEL fails: the error reaches the caller, the record stays, and the
	 * next teardown runs DEL again (and then no more). */
	setup_pod(POD_A);
	if (T.failed)
		fail_msg("setup 2: %s", T.err.msg);
	close(T.fd);
	FILE *f = fopen(a.failflag, "w");
	assert_non_null(f);
	fclose(f);
	teardown_pod(POD_A, NULL);
	assert_true(T.failed);
	assert_non_null(strstr(T.err.msg, "told to fail"));
	assert_int_equal(access(rec, F_OK), 0);
	assert_int_equal(count_lines(a.log, "DEL"), 2);
	unlink(a.failflag);
	teardown_pod(POD_A, NULL);
	if (T.failed)
		fail_msg("teardown after failure: %s", T.err.msg);
	assert_int_equal(count_lines(a.log, "DEL"), 3);
	assert_int_equal(access(rec, F_OK), -1);
	assert_false(exists(T.np.netns_dir, POD_A));
	teardown_pod(POD_A, NULL);
	assert_false(T.failed);
	assert_int_equal(count_lines(a.log, "DEL"), 3);

	/* A pin left without a record (netd died between the pin and the
	 * record) is still torn down. */
	setup_pod(POD_A);
	if (T.failed)
		fail_msg("setup 3: %s", T.err.msg);
	close(T.fd);
	assert_int_equal(unlink(rec), 0);
	teardown_pod(POD_A, NULL);
	assert_false(T.failed);
	assert_int_equal(count_lines(a.log, "DEL"), 4);
	assert_false(exists(T.np.netns_dir, POD_A));
	alt_net_end(&a);
}

/* netd.netns_dir: pins go there (a shared mount point of its own, as
 * `ip netns add` makes /run/netns); a teardown after the setting changed
 * still finds the pin through the pod's record. */
static void test_netns_dir_setting(void **state)
{
	struct alt_net a;
	char alt[160];

	(void)state;
	skip_unless_ready();
	alt_net_begin(&a, COUNT_NET);
	snprintf(alt, sizeof alt, "%s/altns", T.dir);
	T.cfg.netns_dir = alt;
	setup_pod(POD_A);
	if (T.failed)
		fail_msg("setup: %s", T.err.msg);
	assert_true(T.fd >= 0);
	assert_int_equal(ioctl(T.fd, NS_GET_NSTYPE), CLONE_NEWNET);
	close(T.fd);
	assert_true(exists(alt, POD_A));
	assert_false(exists(T.np.netns_dir, POD_A));
	char cmd[512];
	snprintf(cmd, sizeof cmd, "findmnt -n -o PROPAGATION %s | grep -q shared", alt);
	assert_int_equal(system(cmd), 0);

	T.cfg.netns_dir = "";
	/* Others in netd (port-forward) find the pin through the record. */
	crisp_err_t err = CRISP_ERR_INIT;
	int fd = -1;
	assert_int_equal(netd_pods_netns_open(&T.np, POD_A, &fd, &err), 0);
	assert_int_equal(ioctl(fd, NS_GET_NSTYPE), CLONE_NEWNET);
	close(fd);
	assert_int_equal(netd_pods_netns_open(&T.np, "../x", &fd, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	teardown_pod(POD_A, NULL);
	if (T.failed)
		fail_msg("teardown: %s", T.err.msg);
	assert_false(exists(alt, POD_A));
	assert_int_equal(netd_pods_netns_open(&T.np, POD_A, &fd, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_int_equal(count_lines(a.log, "DEL"), 1);
	alt_net_end(&a);
}

/* Dual stack: host-local with an IPv4 and an IPv6 range set; the answer
 * lists the IPv4 address first, then the IPv6 one, and both are on the
 * pod's eth0. */
static void test_dual_stack(void **state)
{
	struct alt_net a;
	char text[1024], cmd[8192];

	(void)state;
	skip_unless_ready();
	snprintf(text, sizeof text,
		 "{\"cniVersion\":\"1.0.0\",\"name\":\"dualnet\",\"plugins\":[{\"type\":\"loopback\"},"
		 "{\"type\":\"bridge\",\"bridge\":\"%s\",\"isGateway\":true,\"ipMasq\":false,"
		 "\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"%s\",\"ranges\":["
		 "[{\"subnet\":\"fd00:253:%d::/64\"}],[{\"subnet\":\"10.252.%d.0/24\"}]]}}]}",
		 T.bridge6, T.ipam, T.subnet, T.subnet);
	alt_net_begin(&a, text);
	setup_pod(POD_B);
	if (T.failed)
		fail_msg("setup: %s", T.err.msg);
	close(T.fd);
	assert_int_equal(T.nips, 2);
	char v4[32], v6[32];
	snprintf(v4, sizeof v4, "10.252.%d.", T.subnet);
	snprintf(v6, sizeof v6, "fd00:253:%d::", T.subnet);
	if (strncmp(T.ips[0], v4, strlen(v4)) != 0 || strncmp(T.ips[1], v6, strlen(v6)) != 0)
		fail_msg("ips %s, %s", T.ips[0], T.ips[1]);
	snprintf(cmd, sizeof cmd, "nsenter --net=%s/%s ip -6 -o addr show dev eth0 | grep -q ' %s/64 '", T.np.netns_dir,
		 POD_B, T.ips[1]);
	assert_int_equal(system(cmd), 0);
	teardown_pod(POD_B, NULL);
	if (T.failed)
		fail_msg("teardown: %s", T.err.msg);
	char ipamnet[200];
	snprintf(ipamnet, sizeof ipamnet, "%s/dualnet", T.ipam);
	assert_false(exists(ipamnet, T.ips[0]));
	assert_false(exists(ipamnet, T.ips[1]));
	alt_net_end(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setup_and_teardown),
		cmocka_unit_test(test_broken_network_leaves_nothing),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_runtime_config_cidrs),
		cmocka_unit_test(test_teardown_after_teardown_runs_no_plugin),
		cmocka_unit_test(test_netns_dir_setting),
		cmocka_unit_test(test_dual_stack),
	};
	return cmocka_run_group_tests_name("netd_pods", tests, group_setup, group_teardown);
}
