/*
 * crisp: tests of imaged/registry.c against a real registry (Debian's
 * docker-registry on 127.0.0.1, plain and with htpasswd Basic auth) holding
 * a busybox image built offline with umoci and pushed with skopeo, and
 * against tiny scripted HTTP servers (threads) for what a real registry
 * will not do: bearer tokens, redirects to another origin, stalls, resets,
 * 503s.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/util.h"
#include "imaged/certsd.h"
#include "imaged/manifest.h"
#include "imaged/registry.h"
#include "ipc/loop.h"

static char g_dir[256];
static pid_t g_reg_pid = -1, g_auth_pid = -1, g_tls_pid = -1;
static int g_port, g_auth_port, g_tls_port;
static char g_host[64], g_auth_host[64], g_tls_host[64];
static char g_mdigest[MF_DIGEST_SIZE];
static char g_layer[MF_DIGEST_SIZE];
static uint64_t g_layer_size;

/* ---- helpers ---- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st != 0)
		fprintf(stderr, "command failed (%d): %s\n", st, cmd);
	return st;
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) < 0)
		return -1;
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static pid_t start_registry(const char *name, const char *data, int port, const char *extra, bool tls)
{
	char cfg[512], log[512];
	pid_t pid;

	snprintf(cfg, sizeof cfg, "%s/%s.yml", g_dir, name);
	snprintf(log, sizeof log, "%s/%s.log", g_dir, name);
	if (sh("mkdir -p %s/%s-data && printf 'version: 0.1\\nlog:\\n  level: warn\\nstorage:\\n"
	       "  filesystem:\\n    rootdirectory: %s/%s-data\\nhttp:\\n  addr: 127.0.0.1:%d\\n"
	       "  secret: test\\n%s' > %s",
	       g_dir, data, g_dir, data, port, extra, cfg) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* even if the test dies */
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("docker-registry", "docker-registry", "serve", cfg, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		char cmd[128];

		snprintf(cmd, sizeof cmd, "curl -sk -o /dev/null %s://127.0.0.1:%d/v2/", tls ? "https" : "http", port);
		if (system(cmd) == 0)
			return pid;
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void stop_registry(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
		*pid = -1;
	}
}

static int read_file_str(const char *path, char *out, size_t outsize)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(out, 1, outsize - 1, f);
	fclose(f);
	out[n] = '\0';
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return 0;
}

static int group_teardown(void **state);

static int setup_inner(void)
{
	char path[1024];

	if (sodium_init() < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	snprintf(g_dir, sizeof g_dir, "/tmp/crisp-test-registry.XXXXXX");
	if (mkdtemp(g_dir) == NULL)
		return -1;
	/* the image, built offline */
	if (sh("cd %s && umoci init --layout oci >/dev/null && umoci new --image oci:busybox >/dev/null && "
	       "mkdir -p src/bin && cp /bin/busybox src/bin/busybox && ln -s busybox src/bin/sh && "
	       "umoci insert --image oci:busybox src/bin /bin >/dev/null && "
	       "umoci config --image oci:busybox --config.cmd /bin/sh --architecture amd64 --os linux "
	       "--config.env PATH=/bin >/dev/null",
	       g_dir) != 0)
		return -1;
	/* registries */
	g_port = free_port();
	g_reg_pid = start_registry("plain", "plain", g_port, "", false);
	if (g_reg_pid < 0)
		return -1;
	snprintf(g_host, sizeof g_host, "127.0.0.1:%d", g_port);
	if (sh("/usr/bin/python3 -W ignore -c 'import crypt; print(\"tester:\" + crypt.crypt(\"s3cret\", "
	       "crypt.mksalt(crypt.METHOD_BLOWFISH)))' > %s/htpasswd",
	       g_dir) != 0)
		return -1;
	snprintf(path, sizeof path, "auth:\\n  htpasswd:\\n    realm: crisp-test\\n    path: %s/htpasswd\\n", g_dir);
	g_auth_port = free_port();
	g_auth_pid = start_registry("auth", "auth", g_auth_port, path, false);
	if (g_auth_pid < 0)
		return -1;
	snprintf(g_auth_host, sizeof g_auth_host, "127.0.0.1:%d", g_auth_port);
	if (sh("cd %s && skopeo copy -q --dest-tls-verify=false oci:oci:busybox docker://%s/busybox:v1 "
	       ">/dev/null && skopeo copy -q --dest-tls-verify=false --dest-creds tester:s3cret "
	       "oci:oci:busybox docker://%s/private/busybox:v1 >/dev/null",
	       g_dir, g_host, g_auth_host) != 0)
		return -1;
	/* what the registry now holds, as skopeo sees it */
	if (sh("cd %s && skopeo inspect --raw --tls-verify=false docker://%s/busybox:v1 > m.json && "
	       "sha256sum m.json | cut -d' ' -f1 > m.dig && jq -r '.layers[0].digest' m.json > l.dig && "
	       "jq -r '.layers[0].size' m.json > l.size",
	       g_dir, g_host) != 0)
		return -1;
	snprintf(path, sizeof path, "%s/m.dig", g_dir);
	memcpy(g_mdigest, "sha256:", 7);
	if (read_file_str(path, g_mdigest + 7, sizeof g_mdigest - 7) < 0)
		return -1;
	snprintf(path, sizeof path, "%s/l.dig", g_dir);
	if (read_file_str(path, g_layer, sizeof g_layer) < 0)
		return -1;
	{
		char sz[32];
		snprintf(path, sizeof path, "%s/l.size", g_dir);
		if (read_file_str(path, sz, sizeof sz) < 0)
			return -1;
		g_layer_size = strtoull(sz, NULL, 10);
	}
	if (!mf_valid_digest(g_mdigest) || !mf_valid_digest(g_layer) || g_layer_size == 0)
		return -1;
	/* the same storage served over https with a self-signed certificate */
	if (sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	       "-keyout tls.key -out tls.crt -days 2 -subj /CN=127.0.0.1 "
	       "-addext subjectAltName=IP:127.0.0.1 2>/dev/null",
	       g_dir) != 0)
		return -1;
	snprintf(path, sizeof path, "  tls:\\n    certificate: %s/tls.crt\\n    key: %s/tls.key\\n", g_dir, g_dir);
	g_tls_port = free_port();
	g_tls_pid = start_registry("tls", "plain", g_tls_port, path, true);
	if (g_tls_pid < 0)
		return -1;
	snprintf(g_tls_host, sizeof g_tls_host, "127.0.0.1:%d", g_tls_port);
	return 0;
}

static int group_setup(void **state)
{
	if (setup_inner() < 0) {
		fprintf(stderr, "registry test setup failed (tmp dir %s)\n", g_dir);
		group_teardown(state);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	stop_registry(&g_reg_pid);
	stop_registry(&g_auth_pid);
	stop_registry(&g_tls_pid);
	if (g_dir[0] != '\0' && getenv("KEEP_TMP") == NULL)
		sh("rm -rf %s", g_dir);
	return 0;
}

/* ---- driving the loop ---- */

struct res {
	bool done;
	int calls;
	crisp_err_t err;
	bool ok;
	long ping_status;
	bool auth_required;
	uint8_t *body;
	size_t len;
	char ct[256];
	char dd[128];
	char digest[MF_DIGEST_SIZE];
	uint64_t size;
};

static void res_free(struct res *r)
{
	free(r->body);
	memset(r, 0, sizeof *r);
}

static void save_err(struct res *s, const crisp_err_t *err)
{
	s->done = true;
	s->calls++;
	s->ok = err == NULL;
	if (err != NULL)
		s->err = *err;
}

static void ping_cb(void *arg, const struct reg_ping_result *r, const crisp_err_t *err)
{
	struct res *s = arg;

	save_err(s, err);
	if (r != NULL) {
		s->ping_status = r->status;
		s->auth_required = r->auth_required;
	}
}

static void manifest_cb(void *arg, const struct reg_manifest_result *r, const crisp_err_t *err)
{
	struct res *s = arg;

	save_err(s, err);
	if (r != NULL) {
		s->body = malloc(r->len);
		memcpy(s->body, r->body, r->len);
		s->len = r->len;
		crisp_strlcpy(s->ct, r->content_type, sizeof s->ct);
		crisp_strlcpy(s->dd, r->docker_digest, sizeof s->dd);
	}
}

static void blob_cb(void *arg, const struct reg_blob_result *r, const crisp_err_t *err)
{
	struct res *s = arg;

	save_err(s, err);
	if (r != NULL) {
		memcpy(s->digest, r->digest, sizeof s->digest);
		s->size = r->size;
	}
}

static void run_until(struct loop *l, struct res *s, int max_ms)
{
	uint64_t end = crisp_now_ms() + (uint64_t)max_ms;

	while (!s->done && crisp_now_ms() < end)
		loop_run_once(l, 50);
	if (!s->done)
		fail_msg("no callback within %d ms", max_ms);
	/* a callback is delivered once */
	for (int i = 0; i < 3; i++)
		loop_run_once(l, 10);
	assert_int_equal(s->calls, 1);
}

struct env {
	struct loop *l;
	struct reg_client *c;
};

static struct env env_new(const struct reg_options *o)
{
	struct env e;
	crisp_err_t err = CRISP_ERR_INIT;

	e.l = loop_new();
	assert_non_null(e.l);
	e.c = reg_client_new(e.l, o, &err);
	if (e.c == NULL)
		fail_msg("%s", err.msg);
	return e;
}

static void env_free(struct env *e)
{
	reg_client_free(e->c);
	loop_free(e->l);
}

static int tmpfile_fd(void)
{
	char p[300];
	int fd;

	snprintf(p, sizeof p, "%s/blob.XXXXXX", g_dir);
	fd = mkstemp(p);
	assert_true(fd >= 0);
	unlink(p);
	return fd;
}

static off_t fd_size(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_size;
}

/* ---- real registry ---- */

static void test_ping(void **state)
{
	struct env e = env_new(NULL);
	struct reg_endpoint ep = { .host = g_host, .insecure = true };
	struct res s = { 0 };
	crisp_err_t err = CRISP_ERR_INIT;

	assert_non_null(reg_ping(e.c, &ep, NULL, ping_cb, &s, &err));
	assert_false(s.done); /* never from inside the call */
	run_until(e.l, &s, 5000);
	assert_true(s.ok);
	assert_int_equal(s.ping_status, 200);
	assert_false(s.auth_required);
	env_free(&e);
}

static void get_manifest(struct env *e, const struct reg_endpoint *ep, const char *repo,
			 const char *ref, const struct reg_auth *auth, struct res *s)
{
	crisp_err_t err = CRISP_ERR_INIT;

	if (reg_get_manifest(e->c, ep, repo, ref, auth, manifest_cb, s, &err) == NULL)
		fail_msg("submit: %s", err.msg);
	assert_false(s->done);
	run_until(e->l, s, 10000);
}

static void test_manifest_by_tag_and_digest(void **state)
{
	struct env e = env_new(NULL);
	struct reg_endpoint ep = { .host = g_host, .insecure = true };
	struct res s = { 0 };
	char dig[MF_DIGEST_SIZE];
	struct mf_manifest m;
	crisp_err_t err = CRISP_ERR_INIT;

	get_manifest(&e, &ep, "busybox", "v1", NULL, &s);
	if (!s.ok)
		fail_msg("%s", s.err.msg);
	assert_string_equal(s.ct, MF_MT_OCI_MANIFEST);
	mf_digest(s.body, s.len, dig);
	assert_string_equal(dig, g_mdigest);
	assert_string_equal(s.dd, g_mdigest);
	assert_int_equal(mf_parse(s.ct, s.body, s.len, &m, &err), 0);
	assert_int_equal(m.kind, MF_MANIFEST);
	assert_string_equal(m.layers[0].digest, g_layer);
	mf_manifest_free(&m);
	res_free(&s);

	get_manifest(&e, &ep, "busybox", g_mdigest, NULL, &s);
	if (!s.ok)
		fail_msg("%s", s.err.msg);
	mf_digest(s.body, s.len, dig);
	assert_string_equal(dig, g_mdigest);
	assert_string_equal(s.ct, MF_MT_OCI_MANIFEST);
	res_free(&s);
	env_free(&e);
}

static void test_reuse_and_concurrency(void **state)
{
	struct env e = env_new(NULL);
	struct reg_endpoint ep = { .host = g_host, .insecure = true };
	struct res s = { 0 }, b[3];
	int fds[3];
	crisp_err_t err = CRISP_ERR_INIT;
	uint64_t t0;

	get_manifest(&e, &ep, "busybox", "v1", NULL, &s);
	assert_true(s.ok);
	res_free(&s);
	get_manifest(&e, &ep, "busybox", "v1", NULL, &s);
	assert_true(s.ok);
	res_free(&s);
	assert_int_equal(reg_client_connections(e.c), 1); /* the second one reused it */

	/* three blobs at once on the one loop */
	memset(b, 0, sizeof b);
	for (int i = 0; i < 3; i++) {
		fds[i] = tmpfile_fd();
		assert_non_null(reg_get_blob(e.c, &ep, "busybox", g_layer, g_layer_size, fds[i], NULL,
					     blob_cb, &b[i], &err));
	}
	t0 = crisp_now_ms();
	while (!(b[0].done && b[1].done && b[2].done) && crisp_now_ms() - t0 < 10000)
		loop_run_once(e.l, 50);
	for (int i = 0; i < 3; i++) {
		if (!b[i].ok)
			fail_msg("blob %d: %s", i, b[i].err.msg);
		assert_int_equal(fd_size(fds[i]), (off_t)g_layer_size);
		close(fds[i]);
	}
	env_free(&e);
}

static void test_manifest_404(void **state)
{
	struct env e = env_new(NULL);
	struct reg_endpoint ep = { .host = g_host, .insecure = true };
	struct res s = { 0 };

	get_manifest(&e, &ep, "busybox", "nope", NULL, &s);
	assert_false(s.ok);
	assert_int_equal(s.err.code, CRISP_NOT_FOUND);
	assert_non_null(strstr(s.err.msg, "manifest unknown: busybox:nope"));
	res_free(&s);
	get_manifest(&e, &ep, "nosuchrepo", "v1", NULL, &s);
	assert_int_equal(s.err.code, CRISP_NOT_FOUND);
	res_free(&s);
	env_free(&e);
}

static void test_bad_arguments(void **state)
{
	struct env e = env_new(NULL);
	struct reg_endpoint ep = { .host = g_host, .insecure = true };
	struct reg_endpoint bad = { .host = "evil/host@x", .insecure = true };
	struct res s = { 0 };
	crisp_err_t err = CRISP_ERR_INIT;

	assert_null(reg_get_manifest(e.c, &ep, "busybox", "../../x", NULL, manifest_cb, &s, &err));
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_null(reg_get_manifest(e.c, &ep, "Busybox", "v1", NULL, manifest_cb, &s, &err));
	assert_null(reg_get_manifest(e.c, &ep, "a//b", "v1", NULL, manifest_cb, &s, &err));
	assert_null(reg_get_manifest(e.c, &bad, "busybox", "v1", NULL, manifest_cb, &s, &err));
	assert_null(reg_get_blob(e.c, &ep, "busybox", "sha256:abc", 1, 0, NULL, blob_cb, &s, &err));
	assert_false(s.done);
	env_free(&e);
}

static void get_blob(struct env *e, const struct reg_endpoint *ep, const char *repo,
		     const char *digest, uint64_t size, int fd, const struct reg_auth *auth,
		     struct res *s, int max_ms)
{
	crisp_err_t err = CRISP_ERR_INIT;

	if (reg_get_blob(e->c, ep, repo, digest, size, fd, auth, blob_cb, s, &err) == NULL)
		fail_msg("submit: %s", err.msg);
	assert_false(s->done);
	run_until(e->l, s, max_ms);
}

static void test_blob(void **state)
{
	struct env e = env_new(NULL);
	struct reg_endpoint ep = { .host = g_host, .insecure = true };
	struct res s = { 0 };
	int fd = tmpfile_fd();
	char cmd[512];

	get_blob(&e, &ep, "busybox", g_layer, g_layer_size, fd, NULL, &s, 10000);
	if (!s.ok)
		fail_msg("%s", s.err.msg);
	assert_string_equal(s.digest, g_layer);
	assert_int_equal(s.size, g_layer_size);
	assert_int_equal(fd_size(fd), (off_t)g_layer_size);
	/* the bytes really are the blob */
	snprintf(cmd, sizeof cmd, "sha256sum /proc/%d/fd/%d | grep -q %s", getpid(), fd, g_layer + 7);
	assert_int_equal(system(cmd), 0);
	close(fd);
	env_free(&e);
}

static void test_blob_wrong_digest(void **state)
{
	struct env e = env_new(NULL);
	struct reg_endpoint ep = { .host = g_host, .insecure = true };
	struct res s = { 0 };
	char wrong[MF_DIGEST_SIZE];
	int fd = tmpfile_fd();

	/* a digest the registry does not have: 404 */
	memcpy(wrong, g_layer, sizeof wrong);
	wrong[7] = wrong[7] == '0' ? '1' : '0';
	get_blob(&e, &ep, "busybox", wrong, g_layer_size, fd, NULL, &s, 10000);
	assert_int_equal(s.err.code, CRISP_NOT_FOUND);
	assert_int_equal(fd_size(fd), 0);
	res_free(&s);

	/* the right digest but a smaller size than the registry sends */
	get_blob(&e, &ep, "busybox", g_layer, g_layer_size - 1, fd, NULL, &s, 10000);
	assert_false(s.ok);
	assert_int_equal(s.err.code, CRISP_DATA_LOSS);
	assert_int_equal(fd_size(fd), 0);
	res_free(&s);

	/* a larger size: short */
	get_blob(&e, &ep, "busybox", g_layer, g_layer_size + 1, fd, NULL, &s, 10000);
	assert_int_equal(s.err.code, CRISP_DATA_LOSS);
	assert_int_equal(fd_size(fd), 0);
	close(fd);
	env_free(&e);
}

static void test_blob_bytes_do_not_match(void **state);


static void test_insecure_refused(void **state)
{
	struct env e = env_new(NULL);
	struct reg_endpoint ep = { .host = g_host, .insecure = false };
	struct res s = { 0 };

	get_manifest(&e, &ep, "busybox", "v1", NULL, &s);
	assert_false(s.ok);
	assert_int_equal(s.err.code, CRISP_UNAVAILABLE);
	assert_non_null(strstr(s.err.msg, "TLS"));
	assert_non_null(strstr(s.err.msg, "insecure"));
	res_free(&s);
	env_free(&e);
}

static void test_tls(void **state)
{
	struct env e = env_new(NULL);
	char ca[300], dig[MF_DIGEST_SIZE];
	struct reg_endpoint ep = { .host = g_tls_host, .ca_file = ca };
	struct reg_endpoint noca = { .host = g_tls_host };
	struct res s = { 0 };
	int fd = tmpfile_fd();

	snprintf(ca, sizeof ca, "%s/tls.crt", g_dir);
	get_manifest(&e, &ep, "busybox", "v1", NULL, &s);
	if (!s.ok)
		fail_msg("%s", s.err.msg);
	mf_digest(s.body, s.len, dig);
	assert_string_equal(dig, g_mdigest);
	res_free(&s);
	get_blob(&e, &ep, "busybox", g_layer, g_layer_size, fd, NULL, &s, 10000);
	if (!s.ok)
		fail_msg("%s", s.err.msg);
	res_free(&s);

	/* the system store does not know the self-signed certificate */
	get_manifest(&e, &noca, "busybox", "v1", NULL, &s);
	assert_int_equal(s.err.code, CRISP_UNAVAILABLE);
	assert_non_null(strstr(s.err.msg, "TLS"));
	fprintf(stderr, "    unknown CA: %s\n", s.err.msg);
	res_free(&s);
	close(fd);
	env_free(&e);
}

/* certs.d: the CA as PEM bytes in memory, found by host:port below a
 * directory (imaged/certsd.h); the system bundle alone does not do. */
static void test_tls_certsd(void **state)
{
	struct env e = env_new(NULL);
	char dir[300], hd[400], cmd[4096];
	struct res s = { 0 };
	char *pem = NULL;
	size_t len = 0;
	crisp_err_t err = CRISP_ERR_INIT;
	struct reg_endpoint ep = { .host = g_tls_host };

	snprintf(dir, sizeof dir, "%s/certs.d", g_dir);
	snprintf(hd, sizeof hd, "%s/%s", dir, g_tls_host);
	snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s/127.0.0.1:1' && cp %s/tls.crt '%s/127.0.0.1:1/ca.crt'",
		 hd, dir, g_dir, dir);
	assert_int_equal(system(cmd), 0);
	/* nothing for this host (another host's CA is not used) */
	assert_int_equal(certsd_bundle(dir, g_tls_host, &pem, &len, &err), 0);
	assert_null(pem);
	/* a .crt that is no certificate is an error */
	snprintf(cmd, sizeof cmd, "echo junk > '%s/bad.crt'", hd);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(certsd_bundle(dir, g_tls_host, &pem, &len, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	crisp_error_clear(&err);
	snprintf(cmd, sizeof cmd, "rm '%s/bad.crt' && cp %s/tls.crt '%s/ca.crt'", hd, g_dir, hd);
	assert_int_equal(system(cmd), 0);
	/* path tricks are not hosts */
	assert_int_equal(certsd_bundle(dir, "..", &pem, &len, &err), 0);
	assert_null(pem);
	assert_int_equal(certsd_bundle(dir, "a/../127.0.0.1:1", &pem, &len, &err), 0);
	assert_null(pem);
	assert_int_equal(certsd_bundle(dir, g_tls_host, &pem, &len, &err), 0);
	assert_non_null(pem);
	ep.ca_pem = pem;
	ep.ca_pem_len = len;
	get_manifest(&e, &ep, "busybox", "v1", NULL, &s);
	if (!s.ok)
		fail_msg("%s", s.err.msg);
	res_free(&s);
	/* the bytes were copied by the call */
	memset(pem, 0, len);
	free(pem);
	ep.ca_pem = NULL;
	ep.ca_pem_len = 0;
	get_manifest(&e, &ep, "busybox", "v1", NULL, &s);
	assert_int_equal(s.err.code, CRISP_UNAVAILABLE);
	res_free(&s);
	env_free(&e);
}

static void test_basic_auth(void **state)
{
	struct env e = env_new(NULL);
	struct reg_endpoint ep = { .host = g_auth_host, .insecure = true };
	struct reg_auth good = { .username = "tester", .password = "s3cret" };
	struct reg_auth bad = { .username = "tester", .password = "wrong" };
	struct reg_auth b64 = { .auth = "dGVzdGVyOnMzY3JldA==" }; /* tester:s3cret */
	struct res s = { 0 };
	char dig[MF_DIGEST_SIZE];
	int fd = tmpfile_fd();

	get_manifest(&e, &ep, "private/busybox", "v1", NULL, &s);
	assert_int_equal(s.err.code, CRISP_UNAUTHENTICATED);
	assert_non_null(strstr(s.err.msg, "username and password"));
	res_free(&s);

	get_manifest(&e, &ep, "private/busybox", "v1", &bad, &s);
	assert_int_equal(s.err.code, CRISP_UNAUTHENTICATED);
	assert_non_null(strstr(s.err.msg, "authentication failed"));
	fprintf(stderr, "    wrong password: %s\n", s.err.msg);
	res_free(&s);

	get_manifest(&e, &ep, "private/busybox", "v1", &good, &s);
	if (!s.ok)
		fail_msg("%s", s.err.msg);
	mf_digest(s.body, s.len, dig);
	assert_string_equal(dig, g_mdigest);
	res_free(&s);

	/* the host is now known to want Basic: sent at once */
	get_blob(&e, &ep, "private/busybox", g_layer, g_layer_size, fd, &b64, &s, 10000);
	if (!s.ok)
		fail_msg("%s", s.err.msg);
	assert_int_equal(fd_size(fd), (off_t)g_layer_size);
	res_free(&s);

	{
		struct res p = { 0 };
		crisp_err_t err = CRISP_ERR_INIT;
		assert_non_null(reg_ping(e.c, &ep, NULL, ping_cb, &p, &err));
		run_until(e.l, &p, 5000);
		assert_true(p.ok);
		assert_true(p.auth_required);
		assert_int_equal(p.ping_status, 401);
	}
	close(fd);
	env_free(&e);
}

/* ---- scripted HTTP servers ---- */

enum srv_mode { SRV_HUGE_HEADERS, SRV_STALL, SRV_CLOSE_MID, SRV_BEARER, SRV_REDIRECT, SRV_STORAGE, SRV_503, SRV_BIG_MANIFEST };

struct srv {
	enum srv_mode mode;
	int lfd;
	int port;
	int stop_pipe[2];
	pthread_t th;
	int requests, token_requests, fails_left;
	bool saw_auth; /* an Authorization header reached this server */
	char redirect_to[128];
	char last_req[4096];
	pthread_mutex_t mu;
};

static const char blob_data[] = "hello, blob world\n";

static void blob_digest(char out[MF_DIGEST_SIZE])
{
	mf_digest((const uint8_t *)blob_data, sizeof blob_data - 1, out);
}

static void srv_send(int fd, const char *s)
{
	(void)crisp_write_all(fd, s, strlen(s));
}

static void srv_handle(struct srv *v, int fd)
{
	char req[4096], resp[8192];
	size_t n = 0;
	bool auth;

	while (n < sizeof req - 1) {
		ssize_t k = read(fd, req + n, sizeof req - 1 - n);
		if (k <= 0)
			return;
		n += (size_t)k;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL) {
			const char *cl = strcasestr(req, "\r\nContent-Length:");
			size_t want = cl ? strtoul(cl + 17, NULL, 10) : 0;
			size_t have = n - (size_t)(strstr(req, "\r\n\r\n") + 4 - req);
			if (have >= want)
				break;
		}
	}
	pthread_mutex_lock(&v->mu);
	v->requests++;
	auth = strcasestr(req, "\r\nAuthorization:") != NULL;
	if (auth)
		v->saw_auth = true;
	crisp_strlcpy(v->last_req, req, sizeof v->last_req);
	pthread_mutex_unlock(&v->mu);

	switch (v->mode) {
	case SRV_STALL: {
		struct pollfd p = { .fd = v->stop_pipe[0], .events = POLLIN };
		srv_send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\nabcdefghij");
		poll(&p, 1, 20000);
		return;
	}
	case SRV_CLOSE_MID:
		srv_send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\nabcdefghij");
		return;
	case SRV_503:
		if (v->fails_left > 0) {
			v->fails_left--;
			srv_send(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
			return;
		}
		snprintf(resp, sizeof resp,
			 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 sizeof blob_data - 1, blob_data);
		srv_send(fd, resp);
		return;
	case SRV_BIG_MANIFEST: {
		char chunk[65536];
		memset(chunk, ' ', sizeof chunk);
		srv_send(fd, "HTTP/1.1 200 OK\r\nContent-Type: " MF_MT_OCI_MANIFEST "\r\n"
			     "Connection: close\r\n\r\n");
		/* no length: 8 MiB until the connection closes */
		for (int i = 0; i < 128; i++)
			if (crisp_write_all(fd, chunk, sizeof chunk) < 0)
				return;
		return;
	}
	case SRV_HUGE_HEADERS: {
		char line[1024];
		srv_send(fd, "HTTP/1.1 200 OK\r\n");
		memset(line, 'a', sizeof line);
		memcpy(line, "X-Filler: ", 10);
		line[sizeof line - 2] = '\r';
		line[sizeof line - 1] = '\n';
		for (int i = 0; i < 100; i++)
			if (crisp_write_all(fd, line, sizeof line) < 0)
				return;
		srv_send(fd, "Content-Length: 0\r\n\r\n");
		return;
	}
	case SRV_BEARER:
		if (strncmp(req, "POST /token ", 12) == 0) {
			pthread_mutex_lock(&v->mu);
			v->token_requests++;
			pthread_mutex_unlock(&v->mu);
			if (strstr(req, "grant_type=refresh_token") == NULL ||
			    strstr(req, "refresh_token=rt-xyz") == NULL || strstr(req, "service=testsvc") == NULL ||
			    strstr(req, "\r\nAuthorization:") != NULL) {
				srv_send(fd, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
				return;
			}
			srv_send(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 30\r\n"
				     "Connection: close\r\n\r\n{\"access_token\":\"tok-123.abc\"}");
			return;
		}
		if (strncmp(req, "GET /token?", 11) == 0) {
			pthread_mutex_lock(&v->mu);
			v->token_requests++;
			pthread_mutex_unlock(&v->mu);
			/* tester:s3cret */
			if (strstr(req, "Authorization: Basic dGVzdGVyOnMzY3JldA==\r\n") == NULL ||
			    strstr(req, "service=testsvc") == NULL ||
			    strstr(req, "scope=repository%3Abusybox%3Apull") == NULL) {
				const char *eb = "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"bad credentials\"}]}";
				snprintf(resp, sizeof resp,
					 "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
					 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
					 strlen(eb), eb);
				srv_send(fd, resp);
				return;
			}
			srv_send(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n"
				     "Connection: close\r\n\r\n{\"token\":\"tok-123.abc\",\"expires_in\":300}");
			return;
		}
		if (strstr(req, "Authorization: Bearer tok-123.abc\r\n") == NULL) {
			snprintf(resp, sizeof resp,
				 "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer "
				 "realm=\"http://127.0.0.1:%d/token\",service=\"testsvc\","
				 "scope=\"repository:busybox:pull\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
				 v->port);
			srv_send(fd, resp);
			return;
		}
		snprintf(resp, sizeof resp,
			 "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
			 MF_MT_OCI_MANIFEST);
		srv_send(fd, resp);
		return;
	case SRV_REDIRECT:
		if (!auth) {
			srv_send(fd, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\n"
				     "Content-Length: 0\r\nConnection: close\r\n\r\n");
			return;
		}
		snprintf(resp, sizeof resp,
			 "HTTP/1.1 307 Temporary Redirect\r\nLocation: %s\r\nContent-Length: 0\r\n"
			 "Connection: close\r\n\r\n",
			 v->redirect_to);
		srv_send(fd, resp);
		return;
	case SRV_STORAGE:
		snprintf(resp, sizeof resp,
			 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 sizeof blob_data - 1, blob_data);
		srv_send(fd, resp);
		return;
	}
}

static void *srv_main(void *arg)
{
	struct srv *v = arg;

	for (;;) {
		struct pollfd p[2] = { { .fd = v->lfd, .events = POLLIN }, { .fd = v->stop_pipe[0], .events = POLLIN } };
		int fd;

		if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
			return NULL;
		fd = accept(v->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		srv_handle(v, fd);
		close(fd);
	}
}

static void srv_start(struct srv *v, enum srv_mode mode)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	int one = 1;

	memset(v, 0, sizeof *v);
	v->mode = mode;
	pthread_mutex_init(&v->mu, NULL);
	v->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(v->lfd >= 0);
	setsockopt(v->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	assert_int_equal(bind(v->lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(v->lfd, (struct sockaddr *)&a, &al), 0);
	assert_int_equal(listen(v->lfd, 16), 0);
	v->port = ntohs(a.sin_port);
	assert_int_equal(pipe2(v->stop_pipe, O_CLOEXEC), 0);
}

static void srv_run(struct srv *v)
{
	assert_int_equal(pthread_create(&v->th, NULL, srv_main, v), 0);
}

static void srv_stop(struct srv *v)
{
	assert_int_equal(write(v->stop_pipe[1], "x", 1), 1);
	pthread_join(v->th, NULL);
	close(v->lfd);
	close(v->stop_pipe[0]);
	close(v->stop_pipe[1]);
	pthread_mutex_destroy(&v->mu);
}

static void test_stall(void **state)
{
	struct reg_options o = { .stall_timeout_s = 2 };
	struct env e = env_new(&o);
	struct srv v;
	char host[64], dig[MF_DIGEST_SIZE];
	struct reg_endpoint ep = { .host = host, .insecure = true };
	struct res s = { 0 };
	int fd = tmpfile_fd();
	uint64_t t0;

	srv_start(&v, SRV_STALL);
	srv_run(&v);
	snprintf(host, sizeof host, "127.0.0.1:%d", v.port);
	blob_digest(dig);
	t0 = crisp_now_ms();
	get_blob(&e, &ep, "busybox", dig, 100000, fd, NULL, &s, 10000);
	assert_false(s.ok);
	assert_int_equal(s.err.code, CRISP_DEADLINE_EXCEEDED);
	assert_non_null(strstr(s.err.msg, "stalled"));
	fprintf(stderr, "    stall: %s (%llu ms)\n", s.err.msg, (unsigned long long)(crisp_now_ms() - t0));
	assert_true(crisp_now_ms() - t0 >= 1900);
	assert_true(crisp_now_ms() - t0 < 3500);
	assert_int_equal(fd_size(fd), 0);
	srv_stop(&v);
	close(fd);
	env_free(&e);
}

static void test_close_mid_blob(void **state)
{
	struct reg_options o = { .backoff_ms = 10 };
	struct env e = env_new(&o);
	struct srv v;
	char host[64], dig[MF_DIGEST_SIZE];
	struct reg_endpoint ep = { .host = host, .insecure = true };
	struct res s = { 0 };
	int fd = tmpfile_fd();

	srv_start(&v, SRV_CLOSE_MID);
	srv_run(&v);
	snprintf(host, sizeof host, "127.0.0.1:%d", v.port);
	blob_digest(dig);
	get_blob(&e, &ep, "busybox", dig, 100000, fd, NULL, &s, 10000);
	assert_false(s.ok);
	assert_int_equal(s.err.code, CRISP_UNAVAILABLE);
	assert_int_equal(fd_size(fd), 0);
	assert_int_equal(v.requests, 4); /* 1 + 3 retries */
	fprintf(stderr, "    closed mid-blob: %s\n", s.err.msg);
	srv_stop(&v);
	close(fd);
	env_free(&e);
}

static void test_retry_503(void **state)
{
	struct reg_options o = { .backoff_ms = 10 };
	struct env e = env_new(&o);
	struct srv v;
	char host[64], dig[MF_DIGEST_SIZE];
	struct reg_endpoint ep = { .host = host, .insecure = true };
	struct res s = { 0 };
	int fd = tmpfile_fd();

	srv_start(&v, SRV_503);
	v.fails_left = 2;
	srv_run(&v);
	snprintf(host, sizeof host, "127.0.0.1:%d", v.port);
	blob_digest(dig);
	get_blob(&e, &ep, "busybox", dig, sizeof blob_data - 1, fd, NULL, &s, 10000);
	if (!s.ok)
		fail_msg("%s", s.err.msg);
	assert_int_equal(v.requests, 3);
	assert_int_equal(fd_size(fd), (off_t)(sizeof blob_data - 1));
	res_free(&s);

	/* more failures than the budget */
	v.fails_left = 10;
	v.requests = 0;
	get_blob(&e, &ep, "busybox", dig, sizeof blob_data - 1, fd, NULL, &s, 10000);
	assert_int_equal(s.err.code, CRISP_UNAVAILABLE);
	assert_non_null(strstr(s.err.msg, "503"));
	assert_int_equal(v.requests, 4);
	srv_stop(&v);
	close(fd);
	env_free(&e);
}

/* A registry that serves other bytes than the digest names: DATA_LOSS, file emptied. */
static void test_blob_bytes_do_not_match(void **state)
{
	struct env e = env_new(NULL);
	struct srv v;
	char host[64], dig[MF_DIGEST_SIZE];
	struct reg_endpoint ep = { .host = host, .insecure = true };
	struct res s = { 0 };
	int fd = tmpfile_fd();

	srv_start(&v, SRV_STORAGE);
	srv_run(&v);
	snprintf(host, sizeof host, "127.0.0.1:%d", v.port);
	blob_digest(dig);
	dig[MF_DIGEST_LEN - 1] = dig[MF_DIGEST_LEN - 1] == '0' ? '1' : '0';
	get_blob(&e, &ep, "busybox", dig, sizeof blob_data - 1, fd, NULL, &s, 10000);
	assert_false(s.ok);
	assert_int_equal(s.err.code, CRISP_DATA_LOSS);
	assert_non_null(strstr(s.err.msg, "content has digest"));
	assert_int_equal(fd_size(fd), 0);
	assert_int_equal(v.requests, 1); /* not retried */
	srv_stop(&v);
	close(fd);
	env_free(&e);
}

static void test_manifest_too_big(void **state)
{
	struct env e = env_new(NULL);
	struct srv v;
	char host[64];
	struct reg_endpoint ep = { .host = host, .insecure = true };
	struct res s = { 0 };

	srv_start(&v, SRV_BIG_MANIFEST);
	srv_run(&v);
	snprintf(host, sizeof host, "127.0.0.1:%d", v.port);
	get_manifest(&e, &ep, "busybox", "v1", NULL, &s);
	assert_false(s.ok);
	assert_int_equal(s.err.code, CRISP_INVALID_ARGUMENT);
	assert_non_null(strstr(s.err.msg, "larger than"));
	srv_stop(&v);
	env_free(&e);
}

static void test_huge_headers(void **state)
{
	struct env e = env_new(NULL);
	struct srv v;
	char host[64];
	struct reg_endpoint ep = { .host = host, .insecure = true };
	struct res s = { 0 };

	srv_start(&v, SRV_HUGE_HEADERS);
	srv_run(&v);
	snprintf(host, sizeof host, "127.0.0.1:%d", v.port);
	get_manifest(&e, &ep, "busybox", "v1", NULL, &s);
	assert_int_equal(s.err.code, CRISP_INVALID_ARGUMENT);
	assert_non_null(strstr(s.err.msg, "headers larger"));
	srv_stop(&v);
	env_free(&e);
}

static void test_bearer(void **state)
{
	struct env e = env_new(NULL);
	struct srv v;
	char host[64];
	struct reg_endpoint ep = { .host = host, .insecure = true };
	struct reg_auth good = { .username = "tester", .password = "s3cret" };
	struct reg_auth bad = { .username = "tester", .password = "nope" };
	struct res s = { 0 };

	srv_start(&v, SRV_BEARER);
	srv_run(&v);
	snprintf(host, sizeof host, "127.0.0.1:%d", v.port);

	get_manifest(&e, &ep, "busybox", "v1", &bad, &s);
	assert_int_equal(s.err.code, CRISP_UNAUTHENTICATED);
	assert_non_null(strstr(s.err.msg, "bad credentials"));
	fprintf(stderr, "    bearer, wrong password: %s\n", s.err.msg);
	res_free(&s);

	get_manifest(&e, &ep, "busybox", "v1", &good, &s);
	if (!s.ok)
		fail_msg("%s", s.err.msg);
	assert_int_equal(s.len, 2);
	assert_int_equal(v.token_requests, 2);
	res_free(&s);

	/* the token is cached for the scope: no new token request, no 401 */
	v.requests = 0;
	get_manifest(&e, &ep, "busybox", "v1", &good, &s);
	assert_true(s.ok);
	assert_int_equal(v.token_requests, 2);
	assert_int_equal(v.requests, 1);
	res_free(&s);

	/* ... but only for the same credentials: anonymous gets no free ride */
	get_manifest(&e, &ep, "busybox", "v1", NULL, &s);
	assert_int_equal(s.err.code, CRISP_UNAUTHENTICATED);
	assert_int_equal(v.token_requests, 3);
	res_free(&s);

	/* a registry token goes straight to the registry */
	{
		struct reg_auth rt = { .registry_token = "tok-123.abc" };
		struct reg_auth evil = { .registry_token = "tok\r\nX-Evil: 1" };
		crisp_err_t err = CRISP_ERR_INIT;

		v.requests = 0;
		get_manifest(&e, &ep, "busybox", "v1", &rt, &s);
		assert_true(s.ok);
		assert_int_equal(v.requests, 1);
		assert_int_equal(v.token_requests, 3);
		res_free(&s);
		assert_null(reg_get_manifest(e.c, &ep, "busybox", "v1", &evil, manifest_cb, &s, &err));
		assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	}

	/* an identity (refresh) token is exchanged at the realm with a POST */
	{
		struct reg_auth it = { .identity_token = "rt-xyz" };

		get_manifest(&e, &ep, "busybox", "v1", &it, &s);
		if (!s.ok)
			fail_msg("%s", s.err.msg);
		assert_int_equal(v.token_requests, 4);
		res_free(&s);
	}
	srv_stop(&v);
	env_free(&e);
}

static void test_redirect_no_creds(void **state)
{
	struct env e = env_new(NULL);
	struct srv reg, store;
	char host[64], dig[MF_DIGEST_SIZE];
	struct reg_endpoint ep = { .host = host, .insecure = true };
	struct reg_auth good = { .username = "tester", .password = "s3cret" };
	struct res s = { 0 };
	int fd = tmpfile_fd();

	srv_start(&store, SRV_STORAGE);
	srv_run(&store);
	srv_start(&reg, SRV_REDIRECT);
	snprintf(reg.redirect_to, sizeof reg.redirect_to, "http://127.0.0.1:%d/storage/blob?sig=x", store.port);
	srv_run(&reg);
	snprintf(host, sizeof host, "127.0.0.1:%d", reg.port);
	blob_digest(dig);
	get_blob(&e, &ep, "busybox", dig, sizeof blob_data - 1, fd, &good, &s, 10000);
	if (!s.ok)
		fail_msg("%s", s.err.msg);
	assert_true(reg.saw_auth);
	assert_int_equal(store.requests, 1);
	assert_false(store.saw_auth); /* credentials stay with the registry */
	assert_non_null(strstr(store.last_req, "GET /storage/blob?sig=x "));
	res_free(&s);

	/* a redirect to file:// is refused */
	srv_stop(&reg);
	srv_start(&reg, SRV_REDIRECT);
	snprintf(reg.redirect_to, sizeof reg.redirect_to, "file:///etc/passwd");
	srv_run(&reg);
	snprintf(host, sizeof host, "127.0.0.1:%d", reg.port);
	get_blob(&e, &ep, "busybox", dig, sizeof blob_data - 1, fd, &good, &s, 10000);
	assert_int_equal(s.err.code, CRISP_PERMISSION_DENIED);
	assert_int_equal(fd_size(fd), 0);
	srv_stop(&reg);
	srv_stop(&store);
	close(fd);
	env_free(&e);
}

static void test_cancel(void **state)
{
	struct env e = env_new(NULL);
	struct srv v;
	char host[64], dig[MF_DIGEST_SIZE];
	struct reg_endpoint ep = { .host = host, .insecure = true };
	struct res s = { 0 };
	struct reg_req *r;
	crisp_err_t err = CRISP_ERR_INIT;
	int fd = tmpfile_fd();

	srv_start(&v, SRV_STALL);
	srv_run(&v);
	snprintf(host, sizeof host, "127.0.0.1:%d", v.port);
	blob_digest(dig);
	r = reg_get_blob(e.c, &ep, "busybox", dig, 100000, fd, NULL, blob_cb, &s, &err);
	assert_non_null(r);
	for (int i = 0; i < 10; i++)
		loop_run_once(e.l, 20);
	reg_cancel(e.c, r);
	for (int i = 0; i < 10; i++)
		loop_run_once(e.l, 20);
	assert_false(s.done);
	assert_int_equal(fd_size(fd), 0);
	/* and one left pending when the client goes away */
	assert_non_null(reg_get_blob(e.c, &ep, "busybox", dig, 100000, fd, NULL, blob_cb, &s, &err));
	loop_run_once(e.l, 20);
	srv_stop(&v);
	close(fd);
	env_free(&e);
	assert_false(s.done);
}

/* ---- pure parsers ---- */

static void test_parse_challenge(void **state)
{
	struct reg_challenge ch;
	crisp_err_t err = CRISP_ERR_INIT;
	const char *v;

	v = "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
	    "scope=\"repository:library/busybox:pull\"";
	assert_int_equal(reg_parse_challenge(v, strlen(v), &ch, &err), 0);
	assert_int_equal(ch.scheme, REG_CHAL_BEARER);
	assert_string_equal(ch.realm, "https://auth.docker.io/token");
	assert_string_equal(ch.service, "registry.docker.io");
	assert_string_equal(ch.scope, "repository:library/busybox:pull");

	v = "Basic realm=\"Registry Realm\"";
	assert_int_equal(reg_parse_challenge(v, strlen(v), &ch, &err), 0);
	assert_int_equal(ch.scheme, REG_CHAL_BASIC);
	assert_string_equal(ch.realm, "Registry Realm");

	v = "Basic realm=\"x\", Bearer realm=\"https://a/t\", service=s";
	assert_int_equal(reg_parse_challenge(v, strlen(v), &ch, &err), 0);
	assert_int_equal(ch.scheme, REG_CHAL_BEARER);
	assert_string_equal(ch.service, "s");

	v = "Negotiate abc==, Basic realm=\"q\\\"x\"";
	assert_int_equal(reg_parse_challenge(v, strlen(v), &ch, &err), 0);
	assert_int_equal(ch.scheme, REG_CHAL_BASIC);
	assert_string_equal(ch.realm, "q\"x");

	const char *bad[] = { "", "Bearer", "Bearer service=\"x\"", "Bearer realm=\"unterminated",
			      "Bearer realm=\"a\", realm=\"b\"", "realm=\"x\"", "Negotiate",
			      "Bearer realm=\"a\x01\"", "Bearer realm=@" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (reg_parse_challenge(bad[i], strlen(bad[i]), &ch, &err) == 0)
			fail_msg("accepted: %s", bad[i]);
}

static void test_parse_error_and_token(void **state)
{
	char out[400], tok[REG_MAX_TOKEN + 1];
	long exp;
	crisp_err_t err = CRISP_ERR_INIT;
	const char *b;

	b = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\",\"detail\":{}}]}";
	assert_int_equal(reg_parse_oci_error((const uint8_t *)b, strlen(b), out, sizeof out), 0);
	assert_string_equal(out, "MANIFEST_UNKNOWN: manifest unknown");
	b = "{\"errors\":[{\"message\":\"a\\nb\"}]}";
	assert_int_equal(reg_parse_oci_error((const uint8_t *)b, strlen(b), out, sizeof out), 0);
	assert_string_equal(out, "a?b");
	b = "<html>";
	assert_int_equal(reg_parse_oci_error((const uint8_t *)b, strlen(b), out, sizeof out), -1);

	b = "{\"token\":\"abc\",\"access_token\":\"def\",\"expires_in\":120}";
	assert_int_equal(reg_parse_token((const uint8_t *)b, strlen(b), tok, &exp, &err), 0);
	assert_string_equal(tok, "def");
	assert_int_equal(exp, 120);
	b = "{\"token\":\"a b\"}";
	assert_int_equal(reg_parse_token((const uint8_t *)b, strlen(b), tok, &exp, &err), -1);
	b = "{\"token\":\"a\\r\\nX-Evil: 1\"}";
	assert_int_equal(reg_parse_token((const uint8_t *)b, strlen(b), tok, &exp, &err), -1);
	b = "{\"token\":\"\"}";
	assert_int_equal(reg_parse_token((const uint8_t *)b, strlen(b), tok, &exp, &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_challenge),
		cmocka_unit_test(test_parse_error_and_token),
		cmocka_unit_test(test_ping),
		cmocka_unit_test(test_manifest_by_tag_and_digest),
		cmocka_unit_test(test_manifest_404),
		cmocka_unit_test(test_reuse_and_concurrency),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_blob),
		cmocka_unit_test(test_blob_wrong_digest),
		cmocka_unit_test(test_insecure_refused),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_tls_certsd),
		cmocka_unit_test(test_basic_auth),
		cmocka_unit_test(test_stall),
		cmocka_unit_test(test_close_mid_blob),
		cmocka_unit_test(test_retry_503),
		cmocka_unit_test(test_blob_bytes_do_not_match),
		cmocka_unit_test(test_manifest_too_big),
		cmocka_unit_test(test_huge_headers),
		cmocka_unit_test(test_bearer),
		cmocka_unit_test(test_redirect_no_creds),
		cmocka_unit_test(test_cancel),
	};

	return cmocka_run_group_tests_name("registry", tests, group_setup, group_teardown);
}
