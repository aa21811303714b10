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
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	static uint8_t reqbuf[5 + 256];
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
static void bench_pods(struct client *c, long iters)
{
	static struct call k;
	uint64_t *lat[3], t;
	static const char *const names[] = { "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox" };

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

		snprintf(name, sizeof name, "bench-%ld", i);
		snprintf(uid, sizeof uid, "uid-%ld", i);
		md.name = name;
		md.namespace_ = "bench";
		md.uid = uid;
		cfg.metadata = &md;
		cfg.hostname = name;
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
		printf("%-16s %ld iterations: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", names[j], iters,
		       pct(lat[j], iters, 50) / 1e3, pct(lat[j], iters, 99) / 1e3, pct(lat[j], iters, 100) / 1e3);
		free(lat[j]);
	}
	fflush(stdout);
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
	nghttp2_session_terminate_session(c.sess, NGHTTP2_NO_ERROR);
	flush(&c);
	nghttp2_session_del(c.sess);
	close(c.fd);
	return 0;
}
