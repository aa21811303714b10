/*
 * cri_bench: latency of CRI round trips through crisp's frontd, over one
 * persistent HTTP/2 connection on the CRI unix socket (a C nghttp2 client,
 * as close to the wire as a client gets).
 *
 *   cri_bench SOCKET [CALLS [WARMUP]]
 *
 * Runs WARMUP (default 1000) then CALLS (default 10000) sequential
 * RuntimeService/Version calls (answered by frontd itself), then the same
 * numbers of RuntimeService/Status calls (frontd asks execd and netd over
 * ipc), each call timed from submitting the request to the close of its
 * stream.  Every answer is checked (grpc-status 0, a response that decodes
 * to what it must be).  Prints one summary line per method: p50, p99, max
 * in microseconds and calls per second.  Exit status 1 on any error; slow
 * numbers are not an error.
 *
 * Then, unless BENCH_POD_ITERS is 0, RunPodSandbox/StopPodSandbox/
 * RemovePodSandbox (BENCH_POD_ITERS, default 50).  With BENCH_IMAGE (a
 * pullable image with /bin/busybox and /bin/sh) and BENCH_LOGDIR (an
 * absolute directory for the pod's CRI logs), BENCH_ITERS (default 50)
 * times each: PullImage cold (after RemoveImage, which answers once execd
 * has deleted the unpacked layers) and warm, ImageStatus and ListImages
 * (ten times as many), then in one pod Create/Start/Stop/RemoveContainer
 * and ExecSync; with BENCH_CRISPD_PID, the VmRSS of crispd, of its
 * children (the roles) and of one container monitor while that container
 * runs.  Everything it creates it removes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <dirent.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "proto/cri.pb-c.h"

#define RESP_MAX 65536
#define VERSION_TARGET_P50_US 100.0

struct call {
	int32_t sid;
	bool done;
	uint32_t rst;     /* error code of the stream's close */
	int grpc_status;  /* -1: none seen */
	char http_status[8];
	char grpc_message[256];
	uint8_t body[RESP_MAX];
	size_t len;
	bool overflow;
	/* request body */
	const uint8_t *req;
	size_t reqlen, reqoff;
};

struct client {
	int fd;
	nghttp2_session *sess;
	struct call *cur;
	uint8_t out[65536];
	size_t outlen;
	uint8_t in[65536];
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("cri_bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- nghttp2 callbacks ---- */

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *ud)
{
	struct client *c = ud;
	struct call *k = c->cur;

	(void)s;
	(void)flags;
	if (k == NULL || f->hd.stream_id != k->sid)
		return 0;
	if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
		snprintf(k->http_status, sizeof k->http_status, "%.*s", (int)valuelen, value);
	} else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
		char v[16];

		snprintf(v, sizeof v, "%.*s", (int)valuelen, value);
		k->grpc_status = atoi(v);
	} else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
		snprintf(k->grpc_message, sizeof k->grpc_message, "%.*s", (int)valuelen, value);
	}
	return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
		   size_t len, void *ud)
{
	struct client *c = ud;
	struct call *k = c->cur;

	(void)s;
	(void)flags;
	if (k == NULL || id != k->sid)
		return 0;
	if (len > sizeof k->body - k->len) {
		k->overflow = true;
		return 0;
	}
	memcpy(k->body + k->len, data, len);
	k->len += len;
	return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud)
{
	struct client *c = ud;

	(void)s;
	if (c->cur != NULL && id == c->cur->sid) {
		c->cur->done = true;
		c->cur->rst = error_code;
	}
	return 0;
}

static ssize_t req_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
			uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct call *k = src->ptr;
	size_t n = k->reqlen - k->reqoff;

	(void)s;
	(void)id;
	(void)ud;
	if (n > length)
		n = length;
	memcpy(buf, k->req + k->reqoff, n);
	k->reqoff += n;
	if (k->reqoff == k->reqlen)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* ---- I/O ---- */

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write: %s", strerror(errno));
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Everything nghttp2 has to send, in as few writes as fit the buffer. */
static void flush(struct client *c)
{
	for (;;) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(c->sess, &p);

		if (n < 0)
			die("nghttp2_session_mem_send: %s", nghttp2_strerror((int)n));
		if (n == 0)
			break;
		if ((size_t)n > sizeof c->out - c->outlen) {
			write_all(c->fd, c->out, c->outlen);
			c->outlen = 0;
		}
		if ((size_t)n > sizeof c->out) {
			write_all(c->fd, p, (size_t)n);
		} else {
			memcpy(c->out + c->outlen, p, (size_t)n);
			c->outlen += (size_t)n;
		}
	}
	if (c->outlen > 0) {
		write_all(c->fd, c->out, c->outlen);
		c->outlen = 0;
	}
}

static void read_some(struct client *c)
{
	ssize_t n, rv;

	do
		n = read(c->fd, c->in, sizeof c->in);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		die("read: %s", strerror(errno));
	if (n == 0)
		die("the server closed the connection");
	rv = nghttp2_session_mem_recv(c->sess, c->in, (size_t)n);
	if (rv < 0)
		die("nghttp2_session_mem_recv: %s", nghttp2_strerror((int)rv));
}

static int connect_unix(const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;

	if (strlen(path) >= sizeof sa.sun_path)
		die("socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			die("socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			return fd;
		close(fd);
		if (now_ns() > deadline)
			die("connect %s: %s", path, strerror(errno));
		usleep(20000);
	}
}

static void client_init(struct client *c, const char *path)
{
	nghttp2_session_callbacks *cbs;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 16 * 1024 * 1024 },
	};

	memset(c, 0, sizeof *c);
	c->fd = connect_unix(path, 10000);
	if (nghttp2_session_callbacks_new(&cbs) != 0)
		die("out of memory");
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
	if (nghttp2_session_client_new(&c->sess, cbs, c) != 0)
		die("nghttp2_session_client_new failed");
	nghttp2_session_callbacks_del(cbs);
	if (nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
	    nghttp2_session_set_local_window_size(c->sess, NGHTTP2_FLAG_NONE, 0, 64 * 1024 * 1024) != 0)
		die("cannot submit SETTINGS");
	flush(c);
}

/* ---- calls ---- */

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

/* One unary call; the response message (without its prefix) in k->body. */
static void call(struct client *c, struct call *k, const char *path, const uint8_t *msg, size_t len)
{
	static uint8_t reqbuf[5 + 16384];
	nghttp2_nv nva[] = {
		NV(":method", "POST"), NV(":scheme", "http"), NV(":path", path),
		NV(":authority", "localhost"), NV("content-type", "application/grpc"),
		NV("te", "trailers"),
	};
	nghttp2_data_provider prd;

	if (len > sizeof reqbuf - 5)
		die("request too long");
	reqbuf[0] = 0;
	reqbuf[1] = (uint8_t)(len >> 24);
	reqbuf[2] = (uint8_t)(len >> 16);
	reqbuf[3] = (uint8_t)(len >> 8);
	reqbuf[4] = (uint8_t)len;
	if (len > 0)
		memcpy(reqbuf + 5, msg, len);

	k->done = false;
	k->rst = 0;
	k->grpc_status = -1;
	k->http_status[0] = k->grpc_message[0] = '\0';
	k->len = 0;
	k->overflow = false;
	k->req = reqbuf;
	k->reqlen = 5 + len;
	k->reqoff = 0;
	prd.source.ptr = k;
	prd.read_callback = req_read;
	c->cur = k;
	k->sid = nghttp2_submit_request(c->sess, NULL, nva, sizeof nva / sizeof nva[0], &prd, NULL);
	if (k->sid < 0)
		die("nghttp2_submit_request: %s", nghttp2_strerror(k->sid));
	flush(c);
	while (!k->done) {
		read_some(c);
		flush(c); /* SETTINGS/PING ACKs, WINDOW_UPDATE */
	}
	c->cur = NULL;
}

/* The call went through: grpc-status 0 and one whole message. */
static const uint8_t *check_ok(const struct call *k, const char *what, size_t *mlen)
{
	uint32_t n;

	if (k->rst != NGHTTP2_NO_ERROR)
		die("%s: stream closed with error %u", what, k->rst);
	if (strcmp(k->http_status, "200") != 0 || k->grpc_status != 0)
		die("%s: :status %s grpc-status %d %s", what, k->http_status, k->grpc_status,
		    k->grpc_message);
	if (k->overflow || k->len < 5)
		die("%s: response body of %zu bytes", what, k->len);
	n = (uint32_t)k->body[1] << 24 | (uint32_t)k->body[2] << 16 | (uint32_t)k->body[3] << 8 |
	    k->body[4];
	if (k->body[0] != 0 || n != k->len - 5)
		die("%s: malformed response message (flag %u, %u of %zu bytes)", what, k->body[0], n,
		    k->len - 5);
	*mlen = n;
	return k->body + 5;
}

static void check_version(const struct call *k)
{
	size_t n;
	const uint8_t *m = check_ok(k, "Version", &n);
	Runtime__V1__VersionResponse *r = runtime__v1__version_response__unpack(NULL, n, m);

	if (r == NULL || r->runtime_name == NULL || strcmp(r->runtime_name, "crisp") != 0)
		die("Version: unexpected answer");
	runtime__v1__version_response__free_unpacked(r, NULL);
}

static void check_status(const struct call *k)
{
	size_t n;
	const uint8_t *m = check_ok(k, "Status", &n);
	Runtime__V1__StatusResponse *r = runtime__v1__status_response__unpack(NULL, n, m);

	if (r == NULL || r->status == NULL || r->status->n_conditions != 2)
		die("Status: unexpected answer");
	runtime__v1__status_response__free_unpacked(r, NULL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void bench(struct client *c, const char *name, const char *path, const uint8_t *msg,
		  size_t len, void (*check)(const struct call *), long calls, long warmup,
		  double target_p50_us)
{
	static struct call k;
	uint64_t *lat = calloc((size_t)calls, sizeof *lat), t0, t;
	double p50, p99, max, rate;

	if (lat == NULL)
		die("out of memory");
	for (long i = 0; i < warmup; i++) {
		call(c, &k, path, msg, len);
		check(&k);
	}
	t0 = now_ns();
	for (long i = 0; i < calls; i++) {
		t = now_ns();
		call(c, &k, path, msg, len);
		lat[i] = now_ns() - t;
		check(&k); /* outside the timed part */
	}
	t = now_ns() - t0;
	qsort(lat, (size_t)calls, sizeof *lat, cmp_u64);
	p50 = (double)lat[calls / 2] / 1e3;
	p99 = (double)lat[(calls * 99) / 100] / 1e3;
	max = (double)lat[calls - 1] / 1e3;
	rate = (double)calls / ((double)t / 1e9);
	printf("%-8s %ld calls (after %ld warm-up): p50 %.1f us, p99 %.1f us, max %.1f us, %.0f calls/s",
	       name, calls, warmup, p50, p99, max, rate);
	if (target_p50_us > 0)
		printf(" [target p50 < %.0f us: %s]", target_p50_us, p50 < target_p50_us ? "met" : "MISSED");
	printf("\n");
	fflush(stdout);
	free(lat);
}

static double pct(uint64_t *v, long n, int p)
{
	return (double)v[(n * p) / 100 - (p == 100 ? 1 : 0)] / 1e3;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
	uint8_t *b;

	*n = protobuf_c_message_get_packed_size(m);
	b = malloc(*n ? *n : 1);
	if (b == NULL)
		die("out of memory");
	protobuf_c_message_pack(m, b);
	return b;
}

/* RunPodSandbox + StopPodSandbox + RemovePodSandbox, iters times, with the
 * configured CNI network (a real bridge in run.sh). */
/* The pod lifecycle over the bridge network, or on the host's network (no
 * CNI plugin runs): the difference is the plugins' share. Returns the p50s. */
static void bench_pods_mode(struct client *c, long iters, bool host_net, double p50[3])
{
	static struct call k;
	uint64_t *lat[3], t;
	static const char *const names[] = { "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox" };
	static const char *const hnames[] = { "RunPodSandbox (host net)", "StopPodSandbox (host net)",
					      "RemovePodSandbox (host net)" };
	Runtime__V1__NamespaceOption nso = RUNTIME__V1__NAMESPACE_OPTION__INIT;
	Runtime__V1__LinuxSandboxSecurityContext sc = RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
	Runtime__V1__LinuxPodSandboxConfig lx = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;

	nso.network = host_net ? RUNTIME__V1__NAMESPACE_MODE__NODE : RUNTIME__V1__NAMESPACE_MODE__POD;
	nso.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	sc.namespace_options = &nso;
	lx.security_context = &sc;

	for (int j = 0; j < 3; j++)
		if ((lat[j] = calloc((size_t)iters, sizeof *lat[j])) == NULL)
			die("out of memory");
	for (long i = 0; i < iters; i++) {
		char name[32], uid[32], id[65];
		Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
		Runtime__V1__PodSandboxConfig cfg = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
		Runtime__V1__RunPodSandboxRequest rq = RUNTIME__V1__RUN_POD_SANDBOX_REQUEST__INIT;
		Runtime__V1__StopPodSandboxRequest sq = RUNTIME__V1__STOP_POD_SANDBOX_REQUEST__INIT;
		Runtime__V1__RemovePodSandboxRequest xq = RUNTIME__V1__REMOVE_POD_SANDBOX_REQUEST__INIT;
		size_t n, mlen;
		uint8_t *b;
		const uint8_t *m;

		snprintf(name, sizeof name, "bench-%s%ld", host_net ? "h" : "", i);
		snprintf(uid, sizeof uid, "uid-%s%ld", host_net ? "h" : "", i);
		md.name = name;
		md.namespace_ = "bench";
		md.uid = uid;
		cfg.metadata = &md;
		cfg.hostname = name;
		cfg.linux = &lx;
		rq.config = &cfg;
		b = pack(&rq.base, &n);
		t = now_ns();
		call(c, &k, "/runtime.v1.RuntimeService/RunPodSandbox", b, n);
		lat[0][i] = now_ns() - t;
		free(b);
		m = check_ok(&k, "RunPodSandbox", &mlen);
		Runtime__V1__RunPodSandboxResponse *r = runtime__v1__run_pod_sandbox_response__unpack(NULL, mlen, m);
		if (r == NULL || strlen(r->pod_sandbox_id) != 64)
			die("RunPodSandbox: unexpected answer");
		snprintf(id, sizeof id, "%s", r->pod_sandbox_id);
		runtime__v1__run_pod_sandbox_response__free_unpacked(r, NULL);
		sq.pod_sandbox_id = id;
		b = pack(&sq.base, &n);
		t = now_ns();
		call(c, &k, "/runtime.v1.RuntimeService/StopPodSandbox", b, n);
		lat[1][i] = now_ns() - t;
		free(b);
		check_ok(&k, "StopPodSandbox", &mlen);
		xq.pod_sandbox_id = id;
		b = pack(&xq.base, &n);
		t = now_ns();
		call(c, &k, "/runtime.v1.RuntimeService/RemovePodSandbox", b, n);
		lat[2][i] = now_ns() - t;
		free(b);
		check_ok(&k, "RemovePodSandbox", &mlen);
	}
	for (int j = 0; j < 3; j++) {
		qsort(lat[j], (size_t)iters, sizeof *lat[j], cmp_u64);
		p50[j] = pct(lat[j], iters, 50) / 1e3;
		printf("%-16s %ld iterations: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		       host_net ? hnames[j] : names[j], iters, p50[j], pct(lat[j], iters, 99) / 1e3,
		       pct(lat[j], iters, 100) / 1e3);
		free(lat[j]);
	}
	fflush(stdout);
}

static void bench_pods(struct client *c, long iters)
{
	static const char *const names[] = { "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox" };
	double net[3], host[3];

	bench_pods_mode(c, iters, false, net);
	bench_pods_mode(c, iters, true, host);
	for (int j = 0; j < 3; j++)
		if (net[j] > 0)
			printf("%-16s CNI plugins' share of the p50: %.0f%% (%.2f of %.2f ms)\n", names[j],
			       net[j] > host[j] ? 100.0 * (net[j] - host[j]) / net[j] : 0.0,
			       net[j] > host[j] ? net[j] - host[j] : 0.0, net[j]);
	fflush(stdout);
}

/* ---- images, containers, memory ---- */

/* One call of a packed request, timed; dies unless it succeeded.  The
 * answer (without its prefix) is at *m, *mlen bytes, until the next call. */
static uint64_t rpc(struct client *c, struct call *k, const char *path, const ProtobufCMessage *rq,
		    const char *what, const uint8_t **m, size_t *mlen)
{
	size_t n, ml;
	uint8_t *b = pack(rq, &n);
	const uint8_t *mm;
	uint64_t t = now_ns();

	call(c, k, path, b, n);
	t = now_ns() - t;
	free(b);
	mm = check_ok(k, what, &ml);
	if (m != NULL)
		*m = mm;
	if (mlen != NULL)
		*mlen = ml;
	return t;
}

static uint64_t *lat_new(long n)
{
	uint64_t *v = calloc((size_t)n, sizeof *v);

	if (v == NULL)
		die("out of memory");
	return v;
}

/* One summary line: milliseconds, or microseconds for the fast calls. */
static void report(const char *name, uint64_t *lat, long n, bool us)
{
	double d = us ? 1.0 : 1e3;

	qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
	printf("%-24s %ld iterations: p50 %.*f %s, p99 %.*f %s, max %.*f %s\n", name, n, us ? 1 : 2,
	       pct(lat, n, 50) / d, us ? "us" : "ms", us ? 1 : 2, pct(lat, n, 99) / d, us ? "us" : "ms",
	       us ? 1 : 2, pct(lat, n, 100) / d, us ? "us" : "ms");
	fflush(stdout);
	free(lat);
}

#define RT "/runtime.v1.RuntimeService/"
#define IM "/runtime.v1.ImageService/"

static uint64_t pull(struct client *c, struct call *k, const char *ref)
{
	Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
	Runtime__V1__PullImageRequest rq = RUNTIME__V1__PULL_IMAGE_REQUEST__INIT;
	Runtime__V1__PullImageResponse *r;
	const uint8_t *m;
	size_t ml;
	uint64_t t;

	spec.image = (char *)ref;
	rq.image = &spec;
	t = rpc(c, k, IM "PullImage", &rq.base, "PullImage", &m, &ml);
	r = runtime__v1__pull_image_response__unpack(NULL, ml, m);
	if (r == NULL || strncmp(r->image_ref, "sha256:", 7) != 0)
		die("PullImage: unexpected answer");
	runtime__v1__pull_image_response__free_unpacked(r, NULL);
	return t;
}

/* Cold pulls (RemoveImage first: manifest, config, blobs and unpacked
 * layers absent), warm pulls (image present; resolved and the policy
 * decided again), ImageStatus, ListImages.  Leaves the image pulled. */
static void bench_images(struct client *c, const char *ref, long iters)
{
	static struct call k;
	long fast = iters * 10;
	uint64_t *cold = lat_new(iters), *warm = lat_new(iters), *st = lat_new(fast), *ls = lat_new(fast);
	Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
	Runtime__V1__RemoveImageRequest xq = RUNTIME__V1__REMOVE_IMAGE_REQUEST__INIT;
	Runtime__V1__ImageStatusRequest sq = RUNTIME__V1__IMAGE_STATUS_REQUEST__INIT;
	Runtime__V1__ListImagesRequest lq = RUNTIME__V1__LIST_IMAGES_REQUEST__INIT;
	const uint8_t *m;
	size_t ml;

	spec.image = (char *)ref;
	xq.image = &spec;
	sq.image = &spec;
	for (long i = 0; i < iters; i++) {
		Runtime__V1__ImageStatusResponse *r;

		rpc(c, &k, IM "RemoveImage", &xq.base, "RemoveImage", NULL, NULL);
		rpc(c, &k, IM "ImageStatus", &sq.base, "ImageStatus", &m, &ml);
		r = runtime__v1__image_status_response__unpack(NULL, ml, m);
		if (r == NULL || r->image != NULL)
			die("ImageStatus: image still present after RemoveImage");
		runtime__v1__image_status_response__free_unpacked(r, NULL);
		cold[i] = pull(c, &k, ref);
	}
	for (long i = 0; i < iters; i++)
		warm[i] = pull(c, &k, ref);
	for (long i = 0; i < fast; i++) {
		Runtime__V1__ImageStatusResponse *r;

		st[i] = rpc(c, &k, IM "ImageStatus", &sq.base, "ImageStatus", &m, &ml);
		r = runtime__v1__image_status_response__unpack(NULL, ml, m);
		if (r == NULL || r->image == NULL || r->image->size == 0)
			die("ImageStatus: image not found or unexpected answer");
		runtime__v1__image_status_response__free_unpacked(r, NULL);
	}
	for (long i = 0; i < fast; i++) {
		Runtime__V1__ListImagesResponse *r;

		ls[i] = rpc(c, &k, IM "ListImages", &lq.base, "ListImages", &m, &ml);
		r = runtime__v1__list_images_response__unpack(NULL, ml, m);
		if (r == NULL || r->n_images < 1)
			die("ListImages: image not listed or unexpected answer");
		runtime__v1__list_images_response__free_unpacked(r, NULL);
	}
	report("PullImage (cold)", cold, iters, false);
	report("PullImage (warm)", warm, iters, false);
	report("ImageStatus", st, fast, true);
	report("ListImages", ls, fast, true);
}

/*
 * A large image (BENCH_BIG_IMAGE, BENCH_BIG_BYTES compressed bytes in all
 * its layers) pulled cold: RemoveImage first, so every blob is downloaded,
 * verified and every layer unpacked by execd.  Reported in seconds and
 * MB/s of compressed data, against BENCH_BIG_TAR_MS (tar -xzf of the same
 * layers into a tmpfs: the machine's ceiling) when given.
 */
static void bench_big_pull(struct client *c, const char *ref, double bytes, double tar_ms,
			   long iters)
{
	static struct call k;
	Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
	Runtime__V1__RemoveImageRequest xq = RUNTIME__V1__REMOVE_IMAGE_REQUEST__INIT;
	uint64_t *t = lat_new(iters);
	double best, med;

	spec.image = (char *)ref;
	xq.image = &spec;
	for (long i = 0; i < iters; i++) {
		rpc(c, &k, IM "RemoveImage", &xq.base, "RemoveImage", NULL, NULL);
		t[i] = pull(c, &k, ref);
	}
	rpc(c, &k, IM "RemoveImage", &xq.base, "RemoveImage", NULL, NULL);
	qsort(t, (size_t)iters, sizeof *t, cmp_u64);
	best = (double)t[0] / 1e9;
	med = (double)t[iters / 2] / 1e9;
	printf("PullImage big (cold)     %.0f MB in layers, %ld runs: median %.2f s (%.1f MB/s), "
	       "best %.2f s (%.1f MB/s)\n",
	       bytes / 1e6, iters, med, bytes / 1e6 / med, best, bytes / 1e6 / best);
	if (tar_ms > 0)
		printf("tar -xzf into tmpfs      %.2f s (%.1f MB/s): pull/tar ratio %.2f (median)\n",
		       tar_ms / 1e3, bytes / 1e6 / (tar_ms / 1e3), med / (tar_ms / 1e3));
	free(t);
}

/* VmRSS of a process in kB, and its name (comm); -1 if it is gone. */
static long rss_kb(pid_t pid, char *comm, size_t commsz)
{
	char p[64], line[256];
	FILE *f;
	long kb = -1;

	snprintf(p, sizeof p, "/proc/%d/comm", (int)pid);
	if ((f = fopen(p, "r")) == NULL)
		return -1;
	if (fgets(comm, (int)commsz, f) == NULL)
		comm[0] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	fclose(f);
	snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
	if ((f = fopen(p, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static pid_t ppid_of(pid_t pid)
{
	char p[64], buf[512], *e;
	FILE *f;
	int pp = -1;

	snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
	if ((f = fopen(p, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof buf, f) != NULL && (e = strrchr(buf, ')')) != NULL)
		sscanf(e + 1, " %*c %d", &pp);
	fclose(f);
	return pp;
}

/* argv[1] == "--container-monitor" and argv[2] == the container id. */
static bool is_monitor_of(pid_t pid, const char *cid)
{
	char p[64], buf[512];
	FILE *f;
	size_t n;
	const char *a1, *a2;

	snprintf(p, sizeof p, "/proc/%d/cmdline", (int)pid);
	if ((f = fopen(p, "r")) == NULL)
		return false;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	a1 = buf + strlen(buf) + 1;
	if (a1 >= buf + n)
		return false;
	a2 = a1 + strlen(a1) + 1;
	return a2 < buf + n && strcmp(a1, "--container-monitor") == 0 && strcmp(a2, cid) == 0;
}

/* RSS of crispd, of each of its children (the roles), and of the monitor
 * of container cid. */
static void report_memory(pid_t crispd, const char *cid)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	char comm[64];
	long kb, total;
	int roles = 0, monitors = 0;

	if (d == NULL)
		die("opendir /proc: %s", strerror(errno));
	if ((kb = rss_kb(crispd, comm, sizeof comm)) < 0)
		die("crispd %d is gone", (int)crispd);
	printf("RSS %-20s pid %-7d %6ld kB\n", comm, (int)crispd, kb);
	total = kb;
	while ((de = readdir(d)) != NULL) {
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid <= 0)
			continue;
		if (ppid_of(pid) == crispd) {
			if ((kb = rss_kb(pid, comm, sizeof comm)) < 0)
				continue;
			printf("RSS %-20s pid %-7d %6ld kB\n", comm, (int)pid, kb);
			total += kb;
			roles++;
		} else if (is_monitor_of(pid, cid)) {
			if ((kb = rss_kb(pid, comm, sizeof comm)) < 0)
				continue;
			char lp[64], exe[PATH_MAX] = "?";
			ssize_t en;
			snprintf(lp, sizeof lp, "/proc/%d/exe", (int)pid);
			if ((en = readlink(lp, exe, sizeof exe - 1)) > 0)
				exe[en] = '\0';
			printf("RSS %-20s pid %-7d %6ld kB (%s 1 MiB; exe %s, comm %s, container %.12s, parent pid %d)\n",
			       "container monitor", (int)pid, kb, kb < 1024 ? "under" : "NOT under",
			       strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe, comm, cid, (int)ppid_of(pid));
			monitors++;
		}
	}
	closedir(d);
	printf("RSS crispd + roles total          %6ld kB\n", total);
	fflush(stdout);
	if (roles != 4)
		die("found %d children of crispd %d, not 4 roles", roles, (int)crispd);
	if (monitors != 1)
		die("found %d monitors of container %.12s, not 1", monitors, cid);
}

/* A container config in the pod: the busybox image, its own PID
 * namespace, its CRI log below the pod's log directory. */
struct ctr {
	Runtime__V1__ContainerMetadata md;
	Runtime__V1__ImageSpec image;
	Runtime__V1__NamespaceOption nso;
	Runtime__V1__LinuxContainerSecurityContext sc;
	Runtime__V1__LinuxContainerConfig linux;
	Runtime__V1__ContainerConfig cfg;
	char name[32], log[64];
};

static void ctr_init(struct ctr *x, const char *name, const char *ref, char **cmd, size_t ncmd)
{
	*x = (struct ctr){
		.md = RUNTIME__V1__CONTAINER_METADATA__INIT,
		.image = RUNTIME__V1__IMAGE_SPEC__INIT,
		.nso = RUNTIME__V1__NAMESPACE_OPTION__INIT,
		.sc = RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT,
		.linux = RUNTIME__V1__LINUX_CONTAINER_CONFIG__INIT,
		.cfg = RUNTIME__V1__CONTAINER_CONFIG__INIT,
	};
	snprintf(x->name, sizeof x->name, "%s", name);
	snprintf(x->log, sizeof x->log, "%s.log", name);
	x->md.name = x->name;
	x->image.image = (char *)ref;
	x->nso.network = RUNTIME__V1__NAMESPACE_MODE__POD;
	x->nso.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	x->nso.ipc = RUNTIME__V1__NAMESPACE_MODE__POD;
	x->sc.namespace_options = &x->nso;
	x->linux.security_context = &x->sc;
	x->cfg.metadata = &x->md;
	x->cfg.image = &x->image;
	x->cfg.command = cmd;
	x->cfg.n_command = ncmd;
	x->cfg.log_path = x->log;
	x->cfg.linux = &x->linux;
}

static uint64_t create_ctr(struct client *c, struct call *k, const char *pod,
			   Runtime__V1__PodSandboxConfig *pcfg, struct ctr *x, char id[65])
{
	Runtime__V1__CreateContainerRequest rq = RUNTIME__V1__CREATE_CONTAINER_REQUEST__INIT;
	Runtime__V1__CreateContainerResponse *r;
	const uint8_t *m;
	size_t ml;
	uint64_t t;

	rq.pod_sandbox_id = (char *)pod;
	rq.config = &x->cfg;
	rq.sandbox_config = pcfg;
	t = rpc(c, k, RT "CreateContainer", &rq.base, "CreateContainer", &m, &ml);
	r = runtime__v1__create_container_response__unpack(NULL, ml, m);
	if (r == NULL || strlen(r->container_id) != 64)
		die("CreateContainer: unexpected answer");
	snprintf(id, 65, "%s", r->container_id);
	runtime__v1__create_container_response__free_unpacked(r, NULL);
	return t;
}

static uint64_t ctr_op(struct client *c, struct call *k, const char *op, const char *id, long timeout)
{
	char path[64];

	snprintf(path, sizeof path, RT "%s", op);
	if (strcmp(op, "StartContainer") == 0) {
		Runtime__V1__StartContainerRequest rq = RUNTIME__V1__START_CONTAINER_REQUEST__INIT;

		rq.container_id = (char *)id;
		return rpc(c, k, path, &rq.base, op, NULL, NULL);
	}
	if (strcmp(op, "StopContainer") == 0) {
		Runtime__V1__StopContainerRequest rq = RUNTIME__V1__STOP_CONTAINER_REQUEST__INIT;

		rq.container_id = (char *)id;
		rq.timeout = timeout;
		return rpc(c, k, path, &rq.base, op, NULL, NULL);
	}
	if (strcmp(op, "RemoveContainer") == 0) {
		Runtime__V1__RemoveContainerRequest rq = RUNTIME__V1__REMOVE_CONTAINER_REQUEST__INIT;

		rq.container_id = (char *)id;
		return rpc(c, k, path, &rq.base, op, NULL, NULL);
	}
	die("unknown operation %s", op);
}

/* The container's exit status, which must be EXITED. */
static int32_t exit_code_of(struct client *c, struct call *k, const char *id)
{
	Runtime__V1__ContainerStatusRequest rq = RUNTIME__V1__CONTAINER_STATUS_REQUEST__INIT;
	Runtime__V1__ContainerStatusResponse *r;
	const uint8_t *m;
	size_t ml;
	int32_t code;

	rq.container_id = (char *)id;
	rpc(c, k, RT "ContainerStatus", &rq.base, "ContainerStatus", &m, &ml);
	r = runtime__v1__container_status_response__unpack(NULL, ml, m);
	if (r == NULL || r->status == NULL)
		die("ContainerStatus: unexpected answer");
	if (r->status->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED)
		die("container %.12s not exited after StopContainer (state %d)", id, r->status->state);
	code = r->status->exit_code;
	runtime__v1__container_status_response__free_unpacked(r, NULL);
	return code;
}

/* Wait (up to 10 s) until the container's CRI log holds "ready": its
 * SIGTERM trap is set. */
static void wait_ready(const char *logdir, const char *name)
{
	char p[4096], buf[4096];
	uint64_t deadline = now_ns() + 10000000000u;

	snprintf(p, sizeof p, "%s/%s.log", logdir, name);
	for (;;) {
		FILE *f = fopen(p, "r");

		if (f != NULL) {
			size_t n = fread(buf, 1, sizeof buf - 1, f);

			fclose(f);
			buf[n] = '\0';
			if (strstr(buf, " ready") != NULL)
				return;
		}
		if (now_ns() > deadline)
			die("container %s did not log \"ready\" in 10 s (%s)", name, p);
		usleep(1000);
	}
}

/* In one pod: Create/Start/Stop/RemoveContainer iters times, with a pid 1
 * that exits 0 at once on SIGTERM (sh with a TERM trap waiting on a
 * background sleep: `wait` is interrupted by the trapped signal), so
 * that StopContainer measures SIGTERM, exit and exit record, not a
 * timeout; then ExecSync of `busybox true` in one running container, and
 * the memory of crispd, its roles and that container's monitor. */
static void bench_containers(struct client *c, const char *ref, long iters, const char *logdir,
			     pid_t crispd)
{
	static struct call k;
	static const char *const names[] = { "CreateContainer", "StartContainer", "StopContainer",
					     "RemoveContainer", "ExecSync (true)" };
	static char *polite[] = { "/bin/sh", "-c",
				  "trap 'exit 0' TERM; echo ready; while :; do /bin/busybox sleep 1 & wait; done" };
	static char *sleeper[] = { "/bin/busybox", "sleep", "3600" };
	static char *truecmd[] = { "/bin/busybox", "true" };
	uint64_t *lat[5];
	Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
	Runtime__V1__NamespaceOption pnso = RUNTIME__V1__NAMESPACE_OPTION__INIT;
	Runtime__V1__LinuxSandboxSecurityContext psc = RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
	Runtime__V1__LinuxPodSandboxConfig plinux = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
	Runtime__V1__PodSandboxConfig pcfg = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
	Runtime__V1__RunPodSandboxRequest rq = RUNTIME__V1__RUN_POD_SANDBOX_REQUEST__INIT;
	Runtime__V1__RunPodSandboxResponse *r;
	Runtime__V1__StopPodSandboxRequest sq = RUNTIME__V1__STOP_POD_SANDBOX_REQUEST__INIT;
	Runtime__V1__RemovePodSandboxRequest xq = RUNTIME__V1__REMOVE_POD_SANDBOX_REQUEST__INIT;
	Runtime__V1__ExecSyncRequest eq = RUNTIME__V1__EXEC_SYNC_REQUEST__INIT;
	struct ctr x;
	char pod[65], id[65];
	const uint8_t *m;
	size_t ml;

	for (int j = 0; j < 5; j++)
		lat[j] = lat_new(iters);
	md.name = "bench-ctr";
	md.namespace_ = "bench";
	md.uid = "uid-bench-ctr";
	pnso.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	psc.namespace_options = &pnso;
	plinux.security_context = &psc;
	pcfg.metadata = &md;
	pcfg.hostname = "bench-ctr";
	pcfg.log_directory = (char *)logdir;
	pcfg.linux = &plinux;
	rq.config = &pcfg;
	rpc(c, &k, RT "RunPodSandbox", &rq.base, "RunPodSandbox", &m, &ml);
	r = runtime__v1__run_pod_sandbox_response__unpack(NULL, ml, m);
	if (r == NULL || strlen(r->pod_sandbox_id) != 64)
		die("RunPodSandbox: unexpected answer");
	snprintf(pod, sizeof pod, "%s", r->pod_sandbox_id);
	runtime__v1__run_pod_sandbox_response__free_unpacked(r, NULL);

	for (long i = 0; i < iters; i++) {
		char name[32];
		int32_t code;

		snprintf(name, sizeof name, "polite-%ld", i);
		ctr_init(&x, name, ref, polite, 3);
		lat[0][i] = create_ctr(c, &k, pod, &pcfg, &x, id);
		lat[1][i] = ctr_op(c, &k, "StartContainer", id, 0);
		wait_ready(logdir, name); /* untimed */
		lat[2][i] = ctr_op(c, &k, "StopContainer", id, 10);
		if ((code = exit_code_of(c, &k, id)) != 0)
			die("container %s exited %d on SIGTERM, not 0", name, code);
		lat[3][i] = ctr_op(c, &k, "RemoveContainer", id, 0);
	}

	ctr_init(&x, "sleeper", ref, sleeper, 3);
	create_ctr(c, &k, pod, &pcfg, &x, id);
	ctr_op(c, &k, "StartContainer", id, 0);
	eq.container_id = id;
	eq.cmd = truecmd;
	eq.n_cmd = 2;
	eq.timeout = 10;
	for (long i = 0; i < iters; i++) {
		Runtime__V1__ExecSyncResponse *er;

		lat[4][i] = rpc(c, &k, RT "ExecSync", &eq.base, "ExecSync", &m, &ml);
		er = runtime__v1__exec_sync_response__unpack(NULL, ml, m);
		if (er == NULL || er->exit_code != 0)
			die("ExecSync: true did not exit 0");
		runtime__v1__exec_sync_response__free_unpacked(er, NULL);
	}
	/* the pairs kubelet waits on: a container up, a container gone */
	uint64_t *up = lat_new(iters), *gone = lat_new(iters);
	for (long i = 0; i < iters; i++) {
		up[i] = lat[0][i] + lat[1][i];
		gone[i] = lat[2][i] + lat[3][i];
	}
	for (int j = 0; j < 5; j++)
		report(names[j], lat[j], iters, false);
	report("Create+StartContainer", up, iters, false);
	report("Stop+RemoveContainer", gone, iters, false);
	if (crispd > 0)
		report_memory(crispd, id);

	/* ListContainers with LIST_CTRS containers (created, not started:
	 * the answer is the same size, the machine stays quiet), 10 x iters calls. */
	{
		enum { LIST_CTRS = 100 };
		static char ids[LIST_CTRS][65];
		Runtime__V1__ListContainersRequest lq = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
		long n = iters * 10;
		uint64_t *ll = lat_new(n);

		for (int i = 0; i < LIST_CTRS; i++) {
			char name[32];

			snprintf(name, sizeof name, "listed-%d", i);
			ctr_init(&x, name, ref, sleeper, 3);
			create_ctr(c, &k, pod, &pcfg, &x, ids[i]);
		}
		for (long i = 0; i < n; i++) {
			Runtime__V1__ListContainersResponse *lr;

			ll[i] = rpc(c, &k, RT "ListContainers", &lq.base, "ListContainers", &m, &ml);
			lr = runtime__v1__list_containers_response__unpack(NULL, ml, m);
			if (lr == NULL || lr->n_containers != LIST_CTRS + 1)
				die("ListContainers: expected %d containers", LIST_CTRS + 1);
			runtime__v1__list_containers_response__free_unpacked(lr, NULL);
		}
		report("ListContainers (101 containers)", ll, n, true);
		for (int i = 0; i < LIST_CTRS; i++)
			ctr_op(c, &k, "RemoveContainer", ids[i], 0);
	}

	ctr_op(c, &k, "StopContainer", id, 0);
	ctr_op(c, &k, "RemoveContainer", id, 0);
	sq.pod_sandbox_id = pod;
	rpc(c, &k, RT "StopPodSandbox", &sq.base, "StopPodSandbox", NULL, NULL);
	xq.pod_sandbox_id = pod;
	rpc(c, &k, RT "RemovePodSandbox", &xq.base, "RemovePodSandbox", NULL, NULL);
}

int main(int argc, char **argv)
{
	static const uint8_t version_req[] = { 0x0a, 0x02, 'v', '1' }; /* version: "v1" */
	struct client c;
	long calls = 10000, warmup = 1000;

	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: %s SOCKET [CALLS [WARMUP]]\n", argv[0]);
		return 2;
	}
	if (argc > 2)
		calls = strtol(argv[2], NULL, 10);
	if (argc > 3)
		warmup = strtol(argv[3], NULL, 10);
	if (calls < 1 || warmup < 0)
		die("bad CALLS or WARMUP");
	client_init(&c, argv[1]);
	bench(&c, "Version", "/runtime.v1.RuntimeService/Version", version_req, sizeof version_req,
	      check_version, calls, warmup, VERSION_TARGET_P50_US);
	bench(&c, "Status", "/runtime.v1.RuntimeService/Status", NULL, 0, check_status, calls,
	      warmup, 0);
	if (getenv("BENCH_POD_ITERS") == NULL || atol(getenv("BENCH_POD_ITERS")) > 0)
		bench_pods(&c, getenv("BENCH_POD_ITERS") ? atol(getenv("BENCH_POD_ITERS")) : 50);
	if (getenv("BENCH_IMAGE") != NULL && getenv("BENCH_IMAGE")[0] != '\0') {
		const char *it = getenv("BENCH_ITERS"), *logdir = getenv("BENCH_LOGDIR"),
			   *cp = getenv("BENCH_CRISPD_PID");
		long iters = it ? atol(it) : 30;

		if (iters < 1)
			die("bad BENCH_ITERS");
		bench_images(&c, getenv("BENCH_IMAGE"), iters);
		if (logdir == NULL || logdir[0] != '/')
			die("BENCH_LOGDIR must be an absolute directory");
		bench_containers(&c, getenv("BENCH_IMAGE"), iters, logdir, cp ? (pid_t)atol(cp) : 0);
	}
	if (getenv("BENCH_BIG_IMAGE") != NULL && getenv("BENCH_BIG_IMAGE")[0] != '\0') {
		const char *bb = getenv("BENCH_BIG_BYTES"), *tm = getenv("BENCH_BIG_TAR_MS"),
			   *bi = getenv("BENCH_BIG_ITERS");
		long n = bi ? atol(bi) : 3;

		if (bb == NULL || atof(bb) <= 0 || n < 1)
			die("bad BENCH_BIG_BYTES or BENCH_BIG_ITERS");
		bench_big_pull(&c, getenv("BENCH_BIG_IMAGE"), atof(bb), tm ? atof(tm) : 0, n);
	}
	nghttp2_session_terminate_session(c.sess, NGHTTP2_NO_ERROR);
	flush(&c);
	nghttp2_session_del(c.sess);
	close(c.fd);
	return 0;
}
