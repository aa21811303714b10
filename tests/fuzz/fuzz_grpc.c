/*
 * libFuzzer target: frontd's gRPC transport fed hostile client bytes.
 *
 * Each input is one client connection: a socketpair whose server end is
 * adopted by one grpc_server (made once), the input written into the client
 * end while the loop runs, the server's output read and thrown away, then the
 * client end closed.  Every crisp callback runs for real: nghttp2 session,
 * header checks, framing, deadlines, handlers that answer at once, later
 * (timer), never (abandon), hold the call until it is cancelled, stream, or
 * overflow the connection's budget.  After each input the server must be back
 * at zero: no connection, no stream, no buffered byte (and ASan checks that
 * nothing leaked or was used after free).
 *
 * Input: byte 0 selects the mode, the rest is the client's byte stream.
 *   bit 0     prepend the client preface and an empty SETTINGS frame
 *   bit 1     write in chunks of 1 + (byte0 >> 2) bytes, running the loop
 *             between them (parsing across reads)
 * Seeds (tests/fuzz/corpus/grpc) are real client streams captured by
 * tests/unit/test_grpc.c (CRISP_GRPC_CORPUS_OUT), with byte 0 = 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "frontd/grpc.h"
#include "ipc/loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HELD 64

static struct {
	struct loop *loop;
	struct grpc_server *srv;
	int lfd;
	struct grpc_call *held[MAX_HELD];
	int nheld;
	int later_pending;
} F;

static void on_cancel(struct grpc_call *c, void *arg)
{
	(void)arg;
	if (grpc_call_reply(c, (const uint8_t *)"x", 1) != -1)
		abort(); /* a cancelled call must refuse answers */
}

static void h_echo(struct grpc_call *c, const uint8_t *req, size_t len, void *arg)
{
	(void)arg;
	(void)grpc_call_reply(c, req, len);
}

static void h_fail(struct grpc_call *c, const uint8_t *req, size_t len, void *arg)
{
	char msg[2048];
	size_t n = len > 1 ? len - 1 : 0;

	(void)arg;
	if (n >= sizeof msg)
		n = sizeof msg - 1;
	if (n > 0)
		memcpy(msg, req + 1, n);
	msg[n] = '\0';
	(void)grpc_call_finish(c, len > 0 ? (int)(int8_t)req[0] : 2, msg);
}

static void h_stream(struct grpc_call *c, const uint8_t *req, size_t len, void *arg)
{
	unsigned count = len > 0 ? req[0] % 8 : 1;

	(void)arg;
	for (unsigned i = 0; i < count; i++)
		if (grpc_call_send(c, req, len) < 0)
			return;
	(void)grpc_call_finish(c, 0, NULL);
}

static void h_hold(struct grpc_call *c, const uint8_t *req, size_t len, void *arg)
{
	(void)req;
	(void)len;
	(void)arg;
	if (F.nheld == MAX_HELD) {
		(void)grpc_call_finish(c, 8, "too many held");
		return;
	}
	F.held[F.nheld++] = grpc_call_ref(c);
	if (grpc_call_on_cancel(c, on_cancel, NULL) != 0)
		abort();
}

struct later {
	struct grpc_call *call;
	size_t len;
	uint8_t msg[];
};

static void later_cb(struct loop *l, void *arg)
{
	struct later *lt = arg;

	(void)l;
	F.later_pending--;
	(void)grpc_call_reply(lt->call, lt->msg, lt->len);
	grpc_call_unref(lt->call);
	free(lt);
}

static void h_later(struct grpc_call *c, const uint8_t *req, size_t len, void *arg)
{
	struct later *lt = malloc(sizeof *lt + len);

	(void)arg;
	if (lt == NULL)
		return;
	lt->call = grpc_call_ref(c);
	lt->len = len;
	memcpy(lt->msg, req, len);
	if (loop_timer_add(F.loop, 0, later_cb, lt) == NULL) {
		grpc_call_unref(lt->call);
		free(lt);
		return;
	}
	F.later_pending++;
}

static void h_abandon(struct grpc_call *c, const uint8_t *req, size_t len, void *arg)
{
	(void)c;
	(void)req;
	(void)len;
	(void)arg;
}

static void h_big(struct grpc_call *c, const uint8_t *req, size_t len, void *arg)
{
	static uint8_t big[9000];

	(void)req;
	(void)len;
	(void)arg;
	(void)grpc_call_reply(c, big, sizeof big);
}

static void h_flood(struct grpc_call *c, const uint8_t *req, size_t len, void *arg)
{
	static uint8_t chunk[8192];

	(void)req;
	(void)len;
	(void)arg;
	/* 800 KiB against a 512 KiB budget: the connection is dropped. */
	for (int i = 0; i < 100; i++)
		if (grpc_call_send(c, chunk, sizeof chunk) < 0)
			return;
	(void)grpc_call_finish(c, 0, NULL);
}

static const struct grpc_method methods[] = {
	{ "/test.Echo/Echo", h_echo, false },	  { "/test.Echo/Fail", h_fail, false },
	{ "/test.Echo/Stream", h_stream, true }, { "/test.Echo/Hold", h_hold, false },
	{ "/test.Echo/Later", h_later, false },  { "/test.Echo/Abandon", h_abandon, false },
	{ "/test.Echo/Big", h_big, false },	  { "/test.Echo/Flood", h_flood, true },
};

static void init(void)
{
	struct grpc_limits lim = {
		.max_connections = 4,
		.max_streams_per_conn = 8,
		.max_recv_msg_size = 4096,
		.max_send_msg_size = 8192,
		.max_header_list_size = 4096,
		.max_conn_buffer = 512 * 1024,
	};
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	crisp_err_t err = CRISP_ERR_INIT;

	signal(SIGPIPE, SIG_IGN);
	log_init("fuzz_grpc", LOG_LVL_ERROR + (getenv("CRISP_DEBUG") ? 3 : 0));
	F.loop = loop_new();
	F.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "crisp-fuzz-grpc-%d", (int)getpid());
	if (F.loop == NULL || F.lfd < 0 ||
	    bind(F.lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(F.lfd, 4) < 0)
		abort();
	F.srv = grpc_server_new(F.loop, F.lfd, methods, ARRAY_SIZE(methods), &lim, NULL, &err);
	if (F.srv == NULL) {
		fprintf(stderr, "grpc_server_new: %s\n", err.msg);
		abort();
	}
}

static void drain(int fd)
{
	uint8_t buf[65536];

	while (read(fd, buf, sizeof buf) > 0)
		;
}

static void spin(int cfd, int n)
{
	for (int i = 0; i < n; i++) {
		if (loop_run_once(F.loop, 0) < 0)
			abort();
		if (cfd >= 0)
			drain(cfd);
	}
}

static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
				 "\x00\x00\x00\x04\x00\x00\x00\x00\x00";

static void feed(int cfd, const uint8_t *p, size_t len, size_t chunk)
{
	int stuck = 0;

	while (len > 0 && stuck < 64) {
		size_t n = len < chunk ? len : chunk;
		ssize_t w = write(cfd, p, n);

		if (w > 0) {
			p += w;
			len -= (size_t)w;
			stuck = 0;
		} else if (w < 0 && errno != EAGAIN) {
			return; /* the server closed: fine */
		} else {
			stuck++;
		}
		spin(cfd, 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct grpc_stats st;
	struct ucred cred;
	int sv[2];
	uint8_t mode;
	size_t chunk;

	if (F.loop == NULL)
		init();
	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	chunk = (mode & 2) ? 1 + (size_t)(mode >> 2) : 65536;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	cred.pid = getpid();
	cred.uid = getuid();
	cred.gid = getgid();
	if (grpc_server_adopt(F.srv, sv[0], &cred) < 0)
		abort();
	if (mode & 1)
		feed(sv[1], preface, sizeof preface - 1, 65536);
	feed(sv[1], data, size, chunk);
	spin(sv[1], 4); /* later answers, flushes */

	/* The application lets go of what it held, then the client leaves. */
	for (int i = 0; i < F.nheld; i++)
		grpc_call_unref(F.held[i]);
	F.nheld = 0;
	spin(sv[1], 2);
	close(sv[1]);
	for (int i = 0; i < 1000; i++) {
		grpc_server_stats(F.srv, &st);
		if (st.conns == 0 && F.later_pending == 0)
			break;
		spin(-1, 1);
	}
	grpc_server_stats(F.srv, &st);
	if (st.conns != 0 || st.streams != 0 || st.bytes != 0 || F.later_pending != 0) {
		fprintf(stderr, "fuzz_grpc: not back to zero: conns %u streams %u bytes %llu later %d\n",
			st.conns, st.streams, (unsigned long long)st.bytes, F.later_pending);
		abort();
	}
	return 0;
}
