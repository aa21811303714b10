/*
 * crisp: libFuzzer target for ipc_decode.
 *
 * Every input is used twice:
 *  (a) as a raw datagram, which exercises the checks before the tag (a
 *      random input almost never passes it);
 *  (b) as [ctl0][ctl1][struct ipc_hdr][payload], sealed with the sending
 *      end's real key, which exercises everything after the tag: sequence,
 *      type and allow matrix, handler presence, size bounds, flags, fd
 *      count and kind, and protobuf unpacking.
 *
 * ctl0: bits 0-1 channel (see pairs[]), bit 2 keep the input's seq (else 1),
 *       bit 3 keep the raw type (else it is mapped onto a real type), bit 4
 *       keep reserved and all flag bits (else reserved 0, known flags only),
 *       bits 5-6 fd to pass (none, socket, directory, regular file), bit 7
 *       pass a second fd (a pipe).
 * ctl1: bit 0 keep the header's len and re-tag (a lying length under a valid
 *       tag), bit 1 wrong credentials, bit 2 MSG_TRUNC, bit 3 MSG_CTRUNC.
 *
 * Channels are made once; before each decode the receiving end's sequence
 * numbers are reset, so every input meets the same state.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sodium.h>

#include "common/util.h"
#include "ipc/ipc.h"
#include "ipc/ipc_internal.h"
#include "ipc/loop.h"

#ifndef CRISP_FUZZING
#error "build with -DCRISP_FUZZING=1 (make fuzz)"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct pair {
	enum crisp_role self, peer; /* of the receiving end */
	uint32_t maxlen;
	struct ipc_chan *rx, *tx;
	uint8_t txkey[IPC_KEY_SIZE]; /* the sending end's tx key, for re-tagging */
	struct ipc_handler handlers[IPC_NTYPES];
};

static struct pair pairs[4] = {
	{ ROLE_EXECD, ROLE_FRONTD, 2048, NULL, NULL, { 0 }, { { 0, NULL } } },
	{ ROLE_FRONTD, ROLE_CRISPD, 0, NULL, NULL, { 0 }, { { 0, NULL } } },
	{ ROLE_FRONTD, ROLE_EXECD, 0, NULL, NULL, { 0 }, { { 0, NULL } } },
	{ ROLE_CRISPD, ROLE_NETD, 0, NULL, NULL, { 0 }, { { 0, NULL } } },
};
static int fd_sock = -1, fd_dir = -1, fd_reg = -1, fd_pipe = -1;
static uint8_t frame[IPC_HDR_SIZE + 65536 + IPC_TAG_SIZE];

static void noop_handler(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	(void)ch;
	(void)m;
	(void)arg;
}

static struct ipc_chan *mk(struct loop *l, int fd, enum crisp_role self, enum crisp_role peer,
			   const uint8_t *key, uint32_t maxlen, const struct ipc_handler *h,
			   size_t nh)
{
	crisp_err_t err = CRISP_ERR_INIT;
	struct ipc_chan_cfg cfg = {
		.fd = fd,
		.self = self,
		.peer = peer,
		.peer_pid = getpid(),
		.peer_uid = getuid(),
		.key = key,
		.maxlen = maxlen,
		.handlers = h,
		.nhandlers = nh,
	};
	struct ipc_chan *ch = ipc_chan_new(l, &cfg, &err);

	if (ch == NULL)
		abort();
	return ch;
}

static void setup(void)
{
	/* Never run: the channels are only used for sealing and decoding. */
	struct loop *l = loop_new();
	uint8_t key[IPC_KEY_SIZE];
	int sv[2], pp[2];

	if (l == NULL || sodium_init() < 0)
		abort();
	memset(key, 0x5a, sizeof key); /* fixed, so that crashes reproduce */
	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		struct pair *p = &pairs[i];
		size_t nh = 0;
		uint8_t rx[IPC_KEY_SIZE];

		/* The receiving end handles everything it may receive. */
		for (size_t t = 0; t < IPC_NTYPES; t++) {
			const struct ipc_msgdef *d = ipc_msgdef_at(t);
			/* CANCEL is ipc's own (ipc_watch_cancel): no role handles it */
			if ((d->receivers & (1u << p->self)) && !ipc_type_is_answer(d->type) &&
			    d->type != IPC_CANCEL)
				p->handlers[nh++] = (struct ipc_handler){ d->type, noop_handler };
		}
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			abort();
		p->rx = mk(l, sv[0], p->self, p->peer, key, p->maxlen, p->handlers, nh);
		p->tx = mk(l, sv[1], p->peer, p->self, key, 0, NULL, 0);
		ipc_derive_keys(key, p->peer, p->self, p->txkey, rx);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(pp, O_CLOEXEC) < 0)
		abort();
	fd_sock = sv[0];
	fd_pipe = pp[0];
	fd_dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fd_reg = (int)syscall(SYS_memfd_create, "fuzz", 1u /* MFD_CLOEXEC */);
	if (fd_dir < 0 || fd_reg < 0)
		abort();
}

static int dupfd(int fd)
{
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);

	if (d < 0)
		abort();
	return d;
}

static void decode(struct ipc_chan *ch, const uint8_t *buf, size_t len, int flags, int *fds,
		   int nfds, const struct ucred *cred)
{
	struct ipc_msg m;
	crisp_err_t err = CRISP_ERR_INIT;

	ipc_chan_fuzz_reset(ch);
	if (ipc_decode(ch, buf, len, flags, fds, nfds, cred, &m, &err) == 0) {
		/* A decoded message must be what the table allows. */
		if (m.def == NULL || m.pb == NULL || m.def->type != m.hdr.type ||
		    (m.fd >= 0) != (m.def->fd != FD_NONE))
			abort();
		ipc_msg_release(&m);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct ucred good = { getpid(), getuid(), getgid() }, bad = good;
	const uint8_t *payload;
	struct ipc_hdr h;
	struct pair *p;
	uint8_t c0, c1;
	int fds[2], nfds = 0, flags = 0;
	size_t plen;
	ssize_t n;

	if (!ready) {
		setup();
		ready = true;
	}

	/* (a) the raw bytes */
	decode(pairs[0].rx, data, size, 0, NULL, 0, &good);

	/* (b) header fields and payload, sealed for real */
	if (size < 2 + IPC_HDR_SIZE)
		return 0;
	c0 = data[0];
	c1 = data[1];
	memcpy(&h, data + 2, IPC_HDR_SIZE);
	payload = data + 2 + IPC_HDR_SIZE;
	plen = size - 2 - IPC_HDR_SIZE;
	if (plen > 65536)
		plen = 65536;
	p = &pairs[c0 & 3];
	if (!(c0 & 4))
		h.seq = 1;
	if (!(c0 & 8))
		h.type = ipc_msgdef_at(h.type % IPC_NTYPES)->type;
	if (!(c0 & 16)) {
		h.reserved = 0;
		h.flags &= IPC_F_MASK;
	}
	uint32_t claimed = h.len;
	h.len = (uint32_t)plen;
	n = ipc_seal(p->tx, &h, payload, frame, sizeof frame);
	if (n < 0)
		abort();
	if ((c1 & 1) && claimed != h.len) {
		/* A lying length under a valid tag. */
		memcpy(frame + offsetof(struct ipc_hdr, len), &claimed, sizeof claimed);
		crypto_auth(frame + IPC_HDR_SIZE + plen, frame, IPC_HDR_SIZE + plen, p->txkey);
	}
	switch ((c0 >> 5) & 3) {
	case 1:
		fds[nfds++] = dupfd(fd_sock);
		break;
	case 2:
		fds[nfds++] = dupfd(fd_dir);
		break;
	case 3:
		fds[nfds++] = dupfd(fd_reg);
		break;
	default:
		break;
	}
	if (c0 & 0x80)
		fds[nfds++] = dupfd(fd_pipe);
	if (c1 & 2)
		bad.uid++;
	if (c1 & 4)
		flags |= MSG_TRUNC;
	if (c1 & 8)
		flags |= MSG_CTRUNC;
	/* ipc_decode owns the fds from here: they are closed or released. */
	int nums[2] = { nfds > 0 ? fds[0] : -1, nfds > 1 ? fds[1] : -1 };
	decode(p->rx, frame, (size_t)n, flags, fds, nfds, (c1 & 2) ? &bad : &good);
	for (int i = 0; i < nfds; i++)
		if (fcntl(nums[i], F_GETFD) >= 0)
			abort(); /* an fd survived: it leaked */
	return 0;
}
