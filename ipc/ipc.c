/*
 * crisp: authenticated SOCK_SEQPACKET message channels (see ipc.h for the
 * wire format and the order of the receive checks).
 *
 * Decisions that are not obvious from ipc.h:
 *
 * - Direction keys.  crypto_kdf subkey id = (from + 1) << 8 | (to + 1) for
 *   the role pair of the direction, context "crispipc".  Binding both roles
 *   (not just "up"/"down") means a key that crispd wrongly reused for two
 *   channels still yields different keys per role pair.  A channel whose
 *   ends have the same role would have tx key == rx key, so a message could
 *   be reflected to its sender: ipc_chan_new refuses self == peer.
 *
 * - The header travels in host byte order: both ends are on one machine.
 *
 * - Requests, one-way messages and answers.  A type is an *answer* when it
 *   is ERROR or the declared answer of some type (PONG, CONFIG_OK,
 *   CONDITION...); answers are matched to a pending request by reqid and
 *   never reach a handler.  Every other type is a *request* (its answer is
 *   not NONE; PING is one) or *one-way*.  A request must carry a non-zero
 *   reqid and a one-way message reqid 0; a mismatch counts as bad_type.
 *   reserved != 0 counts as bad_size (the header is malformed); unknown
 *   flag bits count as bad_fd, as ipc.h says.
 *
 * - A type this end has no handler for is bad_type, checked in ipc_decode
 *   before the payload is parsed: we never parse what nobody will read.
 *
 * - Credentials.  The kernel attaches SCM_CREDENTIALS when either end of
 *   the pair has SO_PASSCRED at send time; ipc_chan_new sets it on its own
 *   end, so frames this end sends always carry them, even when the peer
 *   has not yet set up its channel.  They are the sender's real uid.
 *
 * - EOF vs. empty datagram.  recvmsg returns 0 for both; an empty datagram
 *   still carries the credentials (SO_PASSCRED), EOF carries nothing.
 *
 * - Sizes.  cfg.maxlen bounds what this end accepts and sends.  The kernel
 *   refuses a datagram larger than the sender's SO_SNDBUF - 32, so
 *   ipc_chan_new raises SO_SNDBUF (SO_SNDBUFFORCE when privileged) to hold
 *   two frames of maxlen.  When the kernel will not go that high, only the
 *   *send* bound is clamped to what fits (sending more is
 *   RESOURCE_EXHAUSTED); the receive bound stays maxlen, so an end with a
 *   bigger buffer is never punished for it.
 *
 * - Closing.  Closing drops the fd at once; the notifications (every
 *   pending request fails with UNAVAILABLE, then on_close) run at once
 *   too, except when the close happens inside ipc_send/ipc_request/
 *   ipc_answer (the send found the peer gone): then they run from a 0 ms
 *   timer, so no callback ever runs inside those calls.
 *
 * - Lifetime.  Every entry point that calls out (fd events, timers,
 *   closing) holds a reference for the duration, so callbacks may close
 *   the channel or drop the last reference.  Dropping the last reference
 *   of an open channel closes it (on_close runs, violation false).  The
 *   loop must outlive its channels; a deferred notification still pending
 *   when the loop is freed is lost (and holds its channel).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sodium.h>

#include "common/util.h"
#include "ipc/ipc.h"
#include "ipc/ipc_internal.h"
#include "proto/ipc.pb-c.h"

_Static_assert(crypto_auth_BYTES == IPC_TAG_SIZE, "tag size");
_Static_assert(crypto_auth_KEYBYTES == IPC_KEY_SIZE, "key size");
_Static_assert(crypto_kdf_KEYBYTES == IPC_KEY_SIZE, "kdf key size");
_Static_assert(sizeof "crispipc" - 1 == crypto_kdf_CONTEXTBYTES, "kdf context");

#define IPC_KDF_CONTEXT "crispipc"
#define IPC_FRAME_OVERHEAD (IPC_HDR_SIZE + IPC_TAG_SIZE)
/* The kernel refuses a unix datagram over sk_sndbuf - 32. */
#define IPC_SNDBUF_SLACK 32
/* Bounds of the send queue (frames waiting for EPOLLOUT). */
#define IPC_TXQ_MAX_FRAMES 4096
#define IPC_TXQ_MAX_BYTES (64u << 20)
/* Datagrams read per wakeup before other fds get their turn. */
#define IPC_RX_BATCH 64
/* recvmsg control buffer: the credentials and up to two fds, so that a
 * second fd is seen (and closed) rather than silently discarded. */
#define IPC_CMSG_SPACE (CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(2 * sizeof(int)))
/* Any fd the kernel can put into that buffer, whatever the cmsg layout. */
#define IPC_MAX_RX_FDS (IPC_CMSG_SPACE / sizeof(int))

struct ipc_txframe {
	struct ipc_txframe *next;
	int fd; /* our duplicate of the caller's fd, or -1 */
	size_t len;
	uint8_t buf[]; /* sealed frame */
};

struct ipc_pending {
	uint64_t reqid;
	uint32_t answer; /* expected answer type (ERROR always fits) */
	ipc_answer_fn cb;
	void *arg;
	struct loop_timer *timer; /* NULL: no timeout, or it fired */
	struct ipc_chan *ch;
};

struct ipc_watch {
	struct ipc_watch *next;
	uint64_t reqid;
	ipc_cancel_fn fn;
	void *arg;
};

struct ipc_chan {
	unsigned refs;
	bool open;
	int fd;
	struct loop *loop;
	enum crisp_role self, peer;
	pid_t peer_pid;
	uid_t peer_uid;
	uint32_t maxlen;    /* payload bound accepted from the peer */
	uint32_t tx_maxlen; /* payload bound we can send (maxlen clamped to SO_SNDBUF) */
	uint8_t txkey[IPC_KEY_SIZE];
	uint8_t rxkey[IPC_KEY_SIZE];
	uint64_t tx_seq;     /* sequence number of the next frame we seal */
	uint64_t rx_seq;     /* sequence number we expect next */
	uint64_t next_reqid; /* ids below this were issued */
	ipc_handler_fn handlers[IPC_NTYPES];
	void *arg;
	ipc_close_fn on_close;
	void *close_arg;
	struct ipc_stats stats;

	struct ipc_txframe *txq_head, **txq_tail;
	size_t txq_frames, txq_bytes;

	/* Pending requests: open addressing, linear probing, load <= 1/2. */
	struct ipc_pending **pend;
	size_t pend_cap, pend_n;

	uint8_t *rxbuf;
	size_t rxcap;

	struct ipc_watch *watches; /* requests whose handler listens for CANCEL */

	struct loop_timer *close_timer; /* deferred close notification */
	bool close_violation;
	char close_reason[CRISP_ERR_MSG_MAX];
};

static void chan_shutdown(struct ipc_chan *ch, bool violation_, bool defer, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- keys and sealing ---- */

static uint64_t direction_id(enum crisp_role from, enum crisp_role to)
{
	return ((uint64_t)((unsigned)from + 1) << 8) | ((unsigned)to + 1);
}

void ipc_derive_keys(const uint8_t key[IPC_KEY_SIZE], enum crisp_role self, enum crisp_role peer,
		     uint8_t tx[IPC_KEY_SIZE], uint8_t rx[IPC_KEY_SIZE])
{
	/* Idempotent; ipc_chan_new refuses to run when it fails, and the
	 * derivation itself (blake2b) needs nothing it sets up. */
	int r = sodium_init();
	(void)r;
	crypto_kdf_derive_from_key(tx, IPC_KEY_SIZE, direction_id(self, peer), IPC_KDF_CONTEXT,
				   key);
	crypto_kdf_derive_from_key(rx, IPC_KEY_SIZE, direction_id(peer, self), IPC_KDF_CONTEXT,
				   key);
}

ssize_t ipc_seal(const struct ipc_chan *ch, const struct ipc_hdr *hdr, const void *payload,
		 uint8_t *out, size_t outsize)
{
	size_t need;

	if (ch == NULL || hdr == NULL || out == NULL || (hdr->len > 0 && payload == NULL))
		return -1;
	need = IPC_FRAME_OVERHEAD + (size_t)hdr->len;
	if (outsize < need || need > SSIZE_MAX)
		return -1;
	memcpy(out, hdr, IPC_HDR_SIZE);
	/* The send path packs the payload in place; memmove allows that. */
	if (hdr->len > 0 && (const uint8_t *)payload != out + IPC_HDR_SIZE)
		memmove(out + IPC_HDR_SIZE, payload, hdr->len);
	crypto_auth(out + IPC_HDR_SIZE + hdr->len, out, IPC_HDR_SIZE + hdr->len, ch->txkey);
	return (ssize_t)need;
}

/* ---- decoding ---- */

void ipc_msg_release(struct ipc_msg *m)
{
	if (m == NULL)
		return;
	if (m->pb != NULL)
		protobuf_c_message_free_unpacked(m->pb, NULL);
	m->pb = NULL;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

static int violation(crisp_err_t *err, uint64_t *counter, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int violation(crisp_err_t *err, uint64_t *counter, int code, const char *fmt, ...)
{
	va_list ap;

	(*counter)++;
	if (err != NULL) {
		err->code = code;
		err->errnum = 0;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static const char *type_name(uint32_t type)
{
	const struct ipc_msgdef *d = ipc_msgdef(type);

	return d != NULL ? d->name : "?";
}

/* Every check up to and including the fd rules; the payload is not
 * looked at.  Returns the table entry, or NULL after counting a violation. */
static const struct ipc_msgdef *decode_envelope(struct ipc_chan *ch, const uint8_t *buf,
						size_t len, int msg_flags, const int *fds,
						int nfds, const struct ucred *cred,
						struct ipc_hdr *h, crisp_err_t *err)
{
	struct ipc_stats *st = &ch->stats;
	const struct ipc_msgdef *def;
	bool want_fd;
	int idx;

	if (msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		violation(err, &st->truncated, CRISP_INVALID_ARGUMENT,
			  "truncated: datagram%s%s cut short by the receive buffer",
			  (msg_flags & MSG_TRUNC) ? " data" : "",
			  (msg_flags & MSG_CTRUNC) ? " control" : "");
		return NULL;
	}
	if (cred == NULL) {
		violation(err, &st->bad_cred, CRISP_UNAUTHENTICATED,
			  "bad_cred: datagram without credentials");
		return NULL;
	}
	if (cred->pid != ch->peer_pid || cred->uid != ch->peer_uid) {
		violation(err, &st->bad_cred, CRISP_UNAUTHENTICATED,
			  "bad_cred: sender pid %ld uid %lu, expected pid %ld uid %lu",
			  (long)cred->pid, (unsigned long)cred->uid, (long)ch->peer_pid,
			  (unsigned long)ch->peer_uid);
		return NULL;
	}
	if (len < IPC_FRAME_OVERHEAD || len - IPC_FRAME_OVERHEAD > ch->maxlen) {
		violation(err, &st->bad_size, CRISP_INVALID_ARGUMENT,
			  "bad_size: datagram of %zu bytes, bounds %d..%zu", len,
			  IPC_FRAME_OVERHEAD, (size_t)ch->maxlen + IPC_FRAME_OVERHEAD);
		return NULL;
	}
	/* Nothing in the header is believed before this. */
	if (crypto_auth_verify(buf + len - IPC_TAG_SIZE, buf, len - IPC_TAG_SIZE, ch->rxkey) != 0) {
		violation(err, &st->bad_tag, CRISP_UNAUTHENTICATED,
			  "bad_tag: authentication tag does not verify");
		return NULL;
	}
	memcpy(h, buf, IPC_HDR_SIZE);
	if ((size_t)h->len != len - IPC_FRAME_OVERHEAD) {
		violation(err, &st->bad_size, CRISP_INVALID_ARGUMENT,
			  "bad_size: header says %u payload bytes, datagram holds %zu", h->len,
			  len - IPC_FRAME_OVERHEAD);
		return NULL;
	}
	if (h->reserved != 0) {
		violation(err, &st->bad_size, CRISP_INVALID_ARGUMENT,
			  "bad_size: reserved header field is %u", h->reserved);
		return NULL;
	}
	if (h->seq != ch->rx_seq) {
		violation(err, &st->bad_seq, CRISP_INVALID_ARGUMENT,
			  "bad_seq: sequence %llu, expected %llu", (unsigned long long)h->seq,
			  (unsigned long long)ch->rx_seq);
		return NULL;
	}
	idx = ipc_type_index(h->type);
	if (idx < 0) {
		violation(err, &st->bad_type, CRISP_INVALID_ARGUMENT, "bad_type: unknown type %u",
			  h->type);
		return NULL;
	}
	def = ipc_msgdef_at((size_t)idx);
	if (!(def->senders & (1u << ch->peer)) || !(def->receivers & (1u << ch->self))) {
		violation(err, &st->bad_peer, CRISP_PERMISSION_DENIED,
			  "bad_peer: %s may not travel from %s to %s", def->name,
			  crisp_role_name(ch->peer), crisp_role_name(ch->self));
		return NULL;
	}
	if (!ipc_type_is_answer(h->type)) {
		if (ch->handlers[idx] == NULL) {
			violation(err, &st->bad_type, CRISP_INVALID_ARGUMENT,
				  "bad_type: %s has no handler here", def->name);
			return NULL;
		}
		if ((def->answer != IPC_NONE) != (h->reqid != 0)) {
			violation(err, &st->bad_type, CRISP_INVALID_ARGUMENT,
				  "bad_type: %s %s with request id %llu", def->name,
				  def->answer != IPC_NONE ? "request" : "one-way message",
				  (unsigned long long)h->reqid);
			return NULL;
		}
	}
	if (h->len > def->maxlen) {
		violation(err, &st->bad_size, CRISP_INVALID_ARGUMENT,
			  "bad_size: %s payload of %u bytes, bound %u", def->name, h->len,
			  def->maxlen);
		return NULL;
	}
	if (h->flags & ~IPC_F_MASK) {
		violation(err, &st->bad_fd, CRISP_INVALID_ARGUMENT, "bad_fd: unknown flags %#x",
			  h->flags & ~IPC_F_MASK);
		return NULL;
	}
	want_fd = (h->flags & IPC_F_FD) != 0;
	if (nfds != (want_fd ? 1 : 0)) {
		violation(err, &st->bad_fd, CRISP_INVALID_ARGUMENT,
			  "bad_fd: %d fds with a message that %s one", nfds,
			  want_fd ? "announces" : "does not announce");
		return NULL;
	}
	if (want_fd != (def->fd != FD_NONE)) {
		violation(err, &st->bad_fd, CRISP_INVALID_ARGUMENT, "bad_fd: %s %s an fd",
			  def->name, want_fd ? "does not take" : "requires");
		return NULL;
	}
	if (want_fd && !ipc_fdkind_ok(fds[0], def->fd)) {
		violation(err, &st->bad_fd, CRISP_INVALID_ARGUMENT,
			  "bad_fd: %s fd is not of the required kind", def->name);
		return NULL;
	}
	return def;
}

int ipc_decode(struct ipc_chan *ch, const uint8_t *buf, size_t len, int msg_flags, int *fds,
	       int nfds, const struct ucred *cred, struct ipc_msg *out, crisp_err_t *err)
{
	const struct ipc_msgdef *def;
	ProtobufCMessage *pb;
	struct ipc_hdr h;
	int ret = -1;

	memset(out, 0, sizeof *out);
	out->fd = -1;
	if (nfds < 0 || (nfds > 0 && fds == NULL))
		nfds = 0;
	def = decode_envelope(ch, buf, len, msg_flags, fds, nfds, cred, &h, err);
	if (def == NULL)
		goto out;
	/* protobuf-c allocates only within the (already bounded) length. */
	pb = protobuf_c_message_unpack(def->desc, NULL, h.len, buf + IPC_HDR_SIZE);
	if (pb == NULL) {
		violation(err, &ch->stats.bad_payload, CRISP_INVALID_ARGUMENT,
			  "bad_payload: %s payload is not a valid %s", def->name, def->desc->name);
		goto out;
	}
	out->hdr = h;
	out->def = def;
	out->pb = pb;
	if (h.flags & IPC_F_FD)
		out->fd = TAKE_FD(fds[0]); /* ownership moves to the message */
	ch->rx_seq++;
	ch->stats.rx++;
	ret = 0;
out:
	for (int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(TAKE_FD(fds[i]));
	return ret;
}

/* ---- pending requests: a small open-addressing hash on reqid ---- */

static size_t pend_home(uint64_t reqid, size_t cap)
{
	return (size_t)((reqid * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

static struct ipc_pending *pend_find(const struct ipc_chan *ch, uint64_t reqid)
{
	if (ch->pend_n == 0)
		return NULL;
	for (size_t i = pend_home(reqid, ch->pend_cap);; i = (i + 1) & (ch->pend_cap - 1)) {
		struct ipc_pending *p = ch->pend[i];
		if (p == NULL)
			return NULL;
		if (p->reqid == reqid)
			return p;
	}
}

static void pend_place(struct ipc_pending **slots, size_t cap, struct ipc_pending *p)
{
	size_t i = pend_home(p->reqid, cap);

	while (slots[i] != NULL)
		i = (i + 1) & (cap - 1);
	slots[i] = p;
}

/* Make room for one more entry, so that inserting later cannot fail. */
static int pend_reserve(struct ipc_chan *ch)
{
	struct ipc_pending **n;
	size_t cap;

	if ((ch->pend_n + 1) * 2 <= ch->pend_cap)
		return 0;
	cap = ch->pend_cap ? ch->pend_cap * 2 : 16;
	n = calloc(cap, sizeof *n);
	if (n == NULL)
		return -1;
	for (size_t i = 0; i < ch->pend_cap; i++)
		if (ch->pend[i] != NULL)
			pend_place(n, cap, ch->pend[i]);
	free(ch->pend);
	ch->pend = n;
	ch->pend_cap = cap;
	return 0;
}

static void pend_insert(struct ipc_chan *ch, struct ipc_pending *p)
{
	pend_place(ch->pend, ch->pend_cap, p);
	ch->pend_n++;
}

/* Remove p, shifting back the entries of its probe run (no tombstones). */
static void pend_remove(struct ipc_chan *ch, struct ipc_pending *p)
{
	size_t mask = ch->pend_cap - 1, i, j;

	for (i = pend_home(p->reqid, ch->pend_cap); ch->pend[i] != p; i = (i + 1) & mask)
		;
	ch->pend[i] = NULL;
	ch->pend_n--;
	for (j = (i + 1) & mask; ch->pend[j] != NULL; j = (j + 1) & mask) {
		size_t k = pend_home(ch->pend[j]->reqid, ch->pend_cap);
		/* Entry j may move to the hole at i unless its home lies
		 * cyclically in (i, j]. */
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (stays)
			continue;
		ch->pend[i] = ch->pend[j];
		ch->pend[j] = NULL;
		i = j;
	}
}

/* Take p out of the table and stop its timer; the caller owns it then. */
static void pend_detach(struct ipc_chan *ch, struct ipc_pending *p)
{
	pend_remove(ch, p);
	if (p->timer != NULL)
		loop_timer_cancel(ch->loop, TAKE_PTR(p->timer));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Fail every pending request, oldest first.  Callbacks may cancel other
 * requests meanwhile, so each is looked up again before it is failed. */
static void pend_fail_all(struct ipc_chan *ch, const crisp_err_t *e)
{
	cleanup_free uint64_t *ids = NULL;
	size_t n = 0;

	if (ch->pend_n == 0)
		return;
	ids = malloc(ch->pend_n * sizeof *ids);
	if (ids != NULL) {
		for (size_t i = 0; i < ch->pend_cap; i++)
			if (ch->pend[i] != NULL)
				ids[n++] = ch->pend[i]->reqid;
		qsort(ids, n, sizeof *ids, cmp_u64);
	}
	for (size_t k = 0; ch->pend_n > 0; k++) {
		struct ipc_pending *p = NULL;

		if (ids != NULL) {
			if (k >= n)
				break; /* nothing can be added to a closed channel */
			p = pend_find(ch, ids[k]);
			if (p == NULL)
				continue; /* cancelled by an earlier callback */
		} else {
			/* No memory for the id list: rescan each time. */
			for (size_t i = 0; i < ch->pend_cap && p == NULL; i++)
				p = ch->pend[i];
		}
		pend_detach(ch, p);
		p->cb(ch, NULL, e, p->arg);
		free(p);
	}
}

static void send_cancel(struct ipc_chan *ch, uint64_t reqid);

static void watches_free(struct ipc_chan *ch);

static void on_request_timeout(struct loop *l, void *arg)
{
	struct ipc_pending *p = arg;
	struct ipc_chan *ch = p->ch;
	crisp_err_t e = CRISP_ERR_INIT;

	(void)l;
	p->timer = NULL; /* fired: the loop freed it */
	pend_remove(ch, p);
	send_cancel(ch, p->reqid);
	crisp_error(&e, CRISP_DEADLINE_EXCEEDED, 0, "%s request %llu timed out",
		    crisp_role_name(ch->peer), (unsigned long long)p->reqid);
	ipc_chan_ref(ch);
	p->cb(ch, NULL, &e, p->arg);
	free(p);
	ipc_chan_unref(ch);
}

/* ---- sending ---- */

static void txframe_free(struct ipc_txframe *f)
{
	if (f == NULL)
		return;
	if (f->fd >= 0)
		close(f->fd);
	/* Frames may carry secrets (CHAN_OPEN holds a channel key). */
	sodium_memzero(f->buf, f->len);
	free(f);
}

static void txq_clear(struct ipc_chan *ch)
{
	while (ch->txq_head != NULL) {
		struct ipc_txframe *f = ch->txq_head;
		ch->txq_head = f->next;
		txframe_free(f);
	}
	ch->txq_tail = &ch->txq_head;
	ch->txq_frames = 0;
	ch->txq_bytes = 0;
}

/* One sendmsg, non-blocking.  The kernel adds our credentials itself
 * (SO_PASSCRED is set on this end). */
static ssize_t tx_frame(struct ipc_chan *ch, const uint8_t *buf, size_t len, int fd)
{
	union {
		struct cmsghdr align;
		uint8_t buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof cbuf);
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof cbuf.buf;
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	do
		n = sendmsg(ch->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0 && (size_t)n != len) {
		errno = EPROTO; /* SEQPACKET is all or nothing; fail closed if not */
		return -1;
	}
	return n;
}

static bool tx_would_block(int e)
{
	/* ENOBUFS/ENOMEM: the kernel is short of memory right now; waiting
	 * is the only sensible thing to do with a frame already sealed. */
	return e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == ENOMEM;
}

static void txq_flush(struct ipc_chan *ch)
{
	while (ch->open && ch->txq_head != NULL) {
		struct ipc_txframe *f = ch->txq_head;

		if (tx_frame(ch, f->buf, f->len, f->fd) < 0) {
			if (tx_would_block(errno))
				return; /* EPOLLOUT stays armed */
			chan_shutdown(ch, false, false, "sendmsg to %s: %s",
				      crisp_role_name(ch->peer), strerror(errno));
			return;
		}
		ch->txq_head = f->next;
		if (ch->txq_head == NULL)
			ch->txq_tail = &ch->txq_head;
		ch->txq_frames--;
		ch->txq_bytes -= f->len;
		ch->stats.tx++;
		txframe_free(f);
	}
	if (ch->open && loop_mod(ch->loop, ch->fd, EPOLLIN) < 0)
		chan_shutdown(ch, false, false, "epoll: %s", strerror(errno));
}

enum send_kind { SEND_ONEWAY, SEND_REQUEST, SEND_ANSWER };

/* The checks every send makes before anything is built. */
static const struct ipc_msgdef *send_check(struct ipc_chan *ch, uint32_t type,
					   enum send_kind kind, const ProtobufCMessage *pb,
					   int fd, size_t *plen, crisp_err_t *err)
{
	static const char *const kinds[] = { "a one-way message", "a request", "an answer" };
	const struct ipc_msgdef *def = ipc_msgdef(type);
	enum send_kind is;
	size_t len;

	if (ch == NULL) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "no channel");
		return NULL;
	}
	if (def == NULL) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "unknown ipc type %u", type);
		return NULL;
	}
	is = ipc_type_is_answer(type) ? SEND_ANSWER
	     : def->answer != IPC_NONE ? SEND_REQUEST
				       : SEND_ONEWAY;
	if (is != kind) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s is %s, not %s", def->name,
			    kinds[is], kinds[kind]);
		return NULL;
	}
	if (!(def->senders & (1u << ch->self)) || !(def->receivers & (1u << ch->peer))) {
		/* A programming error: the peer would drop the channel. */
		crisp_error(err, CRISP_INTERNAL, 0, "the allow matrix forbids %s from %s to %s",
			    def->name, crisp_role_name(ch->self), crisp_role_name(ch->peer));
		return NULL;
	}
	if (pb != NULL && pb->descriptor != def->desc) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s carries %s, not %s", def->name,
			    def->desc->name, pb->descriptor ? pb->descriptor->name : "?");
		return NULL;
	}
	if ((def->fd == FD_NONE) != (fd < 0)) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s %s an fd", def->name,
			    def->fd == FD_NONE ? "does not take" : "requires");
		return NULL;
	}
	if (fd >= 0 && !ipc_fdkind_ok(fd, def->fd)) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: fd %d is not of the required kind",
			    def->name, fd);
		return NULL;
	}
	if (!ch->open) {
		crisp_error(err, CRISP_UNAVAILABLE, 0, "channel to %s is closed",
			    crisp_role_name(ch->peer));
		return NULL;
	}
	len = pb != NULL ? protobuf_c_message_get_packed_size(pb) : 0;
	if (len > def->maxlen) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s payload of %zu bytes, bound %u",
			    def->name, len, def->maxlen);
		return NULL;
	}
	if (len > ch->tx_maxlen) {
		crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0,
			    "%s payload of %zu bytes, channel bound %u", def->name, len,
			    ch->tx_maxlen);
		return NULL;
	}
	*plen = len;
	return def;
}

/* Build, seal and send (or queue) one frame.  The sequence number is used
 * up only when the frame reached the kernel or the queue. */
static int chan_send(struct ipc_chan *ch, const struct ipc_msgdef *def, uint64_t reqid,
		     const ProtobufCMessage *pb, size_t len, int fd, crisp_err_t *err)
{
	size_t flen = IPC_FRAME_OVERHEAD + len;
	struct ipc_txframe *f;
	struct ipc_hdr h = {
		.type = def->type,
		.len = (uint32_t)len,
		.reqid = reqid,
		.seq = ch->tx_seq,
		.flags = fd >= 0 ? IPC_F_FD : 0,
	};

	if (ch->txq_head != NULL &&
	    (ch->txq_frames >= IPC_TXQ_MAX_FRAMES || ch->txq_bytes + flen > IPC_TXQ_MAX_BYTES))
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0,
				   "send queue to %s is full (%zu frames, %zu bytes)",
				   crisp_role_name(ch->peer), ch->txq_frames, ch->txq_bytes);
	f = malloc(sizeof *f + flen);
	if (f == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, errno, "ipc frame");
	f->next = NULL;
	f->fd = -1;
	f->len = flen;
	if (pb != NULL && protobuf_c_message_pack(pb, f->buf + IPC_HDR_SIZE) != len) {
		txframe_free(f);
		return crisp_error(err, CRISP_INTERNAL, 0, "%s: packed size changed", def->name);
	}
	(void)ipc_seal(ch, &h, f->buf + IPC_HDR_SIZE, f->buf, flen);

	if (ch->txq_head == NULL) {
		if (tx_frame(ch, f->buf, flen, fd) >= 0) {
			ch->tx_seq++;
			ch->stats.tx++;
			txframe_free(f);
			return 0;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			int e = errno;
			txframe_free(f);
			if (e == EMSGSIZE || e == ENOBUFS || e == ENOMEM)
				return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, e, "send %s",
						   def->name);
			/* The peer is gone.  Callbacks must not run inside
			 * this call: notify from the loop. */
			chan_shutdown(ch, false, true, "sendmsg to %s: %s",
				      crisp_role_name(ch->peer), strerror(e));
			return crisp_error(err, CRISP_UNAVAILABLE, e, "send %s", def->name);
		}
		if (loop_mod(ch->loop, ch->fd, EPOLLIN | EPOLLOUT) < 0) {
			int e = errno;
			txframe_free(f);
			return crisp_error(err, CRISP_INTERNAL, e, "epoll");
		}
	}
	/* Queue it.  The caller keeps its fd, so hold our own duplicate. */
	if (fd >= 0) {
		f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (f->fd < 0) {
			int e = errno;
			txframe_free(f);
			if (ch->txq_head == NULL)
				(void)loop_mod(ch->loop, ch->fd, EPOLLIN);
			return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, e, "dup fd");
		}
	}
	*ch->txq_tail = f;
	ch->txq_tail = &f->next;
	ch->txq_frames++;
	ch->txq_bytes += flen;
	ch->tx_seq++;
	return 0;
}

int ipc_send(struct ipc_chan *ch, uint32_t type, const ProtobufCMessage *pb, int fd,
	     crisp_err_t *err)
{
	const struct ipc_msgdef *def;
	size_t len;

	def = send_check(ch, type, SEND_ONEWAY, pb, fd, &len, err);
	if (def == NULL)
		return -1;
	return chan_send(ch, def, 0, pb, len, fd, err);
}

int ipc_request(struct ipc_chan *ch, uint32_t type, const ProtobufCMessage *pb, int fd,
		uint32_t timeout_ms, ipc_answer_fn cb, void *arg, uint64_t *reqid,
		crisp_err_t *err)
{
	const struct ipc_msgdef *def;
	struct ipc_pending *p;
	size_t len;

	if (cb == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "request without callback");
	def = send_check(ch, type, SEND_REQUEST, pb, fd, &len, err);
	if (def == NULL)
		return -1;
	/* Everything that can fail is done before the frame leaves, so that a
	 * request that was sent is always pending. */
	if (pend_reserve(ch) < 0)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "pending requests");
	p = calloc(1, sizeof *p);
	if (p == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, errno, "pending request");
	p->reqid = ch->next_reqid;
	p->answer = def->answer;
	p->cb = cb;
	p->arg = arg;
	p->ch = ch;
	if (timeout_ms > 0) {
		p->timer = loop_timer_add(ch->loop, timeout_ms, on_request_timeout, p);
		if (p->timer == NULL) {
			free(p);
			return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "request timer");
		}
	}
	if (chan_send(ch, def, p->reqid, pb, len, fd, err) < 0) {
		if (p->timer != NULL)
			loop_timer_cancel(ch->loop, p->timer);
		free(p);
		return -1;
	}
	ch->next_reqid++;
	pend_insert(ch, p);
	if (reqid != NULL)
		*reqid = p->reqid;
	return 0;
}

/* Best effort: a peer that misses it just finishes the work for nothing. */
static void send_cancel(struct ipc_chan *ch, uint64_t reqid)
{
	Cipc__Cancel c = CIPC__CANCEL__INIT;

	if (!ch->open)
		return;
	c.reqid = reqid;
	(void)ipc_send(ch, IPC_CANCEL, &c.base, -1, NULL);
}

void ipc_cancel(struct ipc_chan *ch, uint64_t reqid)
{
	struct ipc_pending *p;

	if (ch == NULL || (p = pend_find(ch, reqid)) == NULL)
		return;
	pend_detach(ch, p);
	free(p);
	send_cancel(ch, reqid);
}

int ipc_watch_cancel(struct ipc_chan *ch, uint64_t reqid, ipc_cancel_fn fn, void *arg,
		     crisp_err_t *err)
{
	struct ipc_watch *w;

	if (ch == NULL || reqid == 0 || fn == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "ipc_watch_cancel: bad arguments");
	ipc_unwatch_cancel(ch, reqid);
	if ((w = calloc(1, sizeof *w)) == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
	w->reqid = reqid;
	w->fn = fn;
	w->arg = arg;
	w->next = ch->watches;
	ch->watches = w;
	return 0;
}

static struct ipc_watch *watch_take(struct ipc_chan *ch, uint64_t reqid)
{
	for (struct ipc_watch **pp = &ch->watches; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->reqid == reqid) {
			struct ipc_watch *w = *pp;
			*pp = w->next;
			return w;
		}
	return NULL;
}

void ipc_unwatch_cancel(struct ipc_chan *ch, uint64_t reqid)
{
	if (ch != NULL)
		free(watch_take(ch, reqid));
}

static void watches_free(struct ipc_chan *ch)
{
	while (ch->watches != NULL) {
		struct ipc_watch *w = ch->watches;
		ch->watches = w->next;
		free(w);
	}
}

/* The built-in handler of CANCEL. */
static void on_cancel_msg(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	const Cipc__Cancel *c = (const Cipc__Cancel *)m->pb;
	struct ipc_watch *w = watch_take(ch, c->reqid);

	(void)arg;
	if (w == NULL)
		return; /* answered already, or nobody listens */
	w->fn(ch, w->reqid, w->arg);
	free(w);
}

int ipc_answer(struct ipc_chan *ch, uint64_t reqid, uint32_t type, const ProtobufCMessage *pb,
	       int fd, crisp_err_t *err)
{
	const struct ipc_msgdef *def;
	size_t len;

	if (reqid == 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "answer to request id 0");
	ipc_unwatch_cancel(ch, reqid);
	def = send_check(ch, type, SEND_ANSWER, pb, fd, &len, err);
	if (def == NULL)
		return -1;
	return chan_send(ch, def, reqid, pb, len, fd, err);
}

int ipc_answer_error(struct ipc_chan *ch, uint64_t reqid, const crisp_err_t *e)
{
	Cipc__Error pe = CIPC__ERROR__INIT;
	char msg[CRISP_ERR_MSG_MAX];

	if (e != NULL) {
		pe.code = e->code > CRISP_OK && e->code <= CRISP_UNAUTHENTICATED ? e->code
										: CRISP_UNKNOWN;
		pe.errnum = e->errnum;
		crisp_strlcpy(msg, e->msg, sizeof msg); /* e->msg may lack its NUL */
		pe.message = msg;
	} else {
		pe.code = CRISP_UNKNOWN;
	}
	return ipc_answer(ch, reqid, IPC_ERROR, &pe.base, -1, NULL);
}

/* ---- receiving ---- */

static void error_from_msg(const struct ipc_msg *m, crisp_err_t *e)
{
	const Cipc__Error *pe = (const Cipc__Error *)m->pb;

	/* The peer chooses these: keep the code in range, never CRISP_OK. */
	e->code = pe->code > CRISP_OK && pe->code <= CRISP_UNAUTHENTICATED ? pe->code
									    : CRISP_UNKNOWN;
	e->errnum = pe->errnum > 0 ? pe->errnum : 0;
	crisp_strlcpy(e->msg, pe->message != NULL ? pe->message : "", sizeof e->msg);
}

static void dispatch_answer(struct ipc_chan *ch, struct ipc_msg *m)
{
	uint64_t id = m->hdr.reqid;
	struct ipc_pending *p;

	if (id == 0 || id >= ch->next_reqid) {
		ch->stats.bad_answer++;
		chan_shutdown(ch, true, false, "bad_answer: %s to request id %llu, never issued",
			      m->def->name, (unsigned long long)id);
		return;
	}
	p = pend_find(ch, id);
	if (p == NULL) {
		ch->stats.stale_answers++; /* timed out or cancelled */
		return;
	}
	if (m->hdr.type != IPC_ERROR && m->hdr.type != p->answer) {
		ch->stats.bad_answer++;
		chan_shutdown(ch, true, false, "bad_answer: %s to request %llu, expected %s",
			      m->def->name, (unsigned long long)id, type_name(p->answer));
		return;
	}
	pend_detach(ch, p);
	if (m->hdr.type == IPC_ERROR) {
		crisp_err_t e = CRISP_ERR_INIT;
		error_from_msg(m, &e);
		p->cb(ch, NULL, &e, p->arg);
	} else {
		p->cb(ch, m, NULL, p->arg);
	}
	free(p);
}

static void dispatch(struct ipc_chan *ch, struct ipc_msg *m)
{
	if (ipc_type_is_answer(m->hdr.type)) {
		dispatch_answer(ch, m);
		return;
	}
	/* ipc_decode made sure there is a handler. */
	ch->handlers[ipc_type_index(m->hdr.type)](ch, m, ch->arg);
}

/* Read and handle one datagram; false when the caller should stop. */
static bool rx_one(struct ipc_chan *ch)
{
	union {
		struct cmsghdr align;
		uint8_t buf[IPC_CMSG_SPACE];
	} cbuf;
	struct iovec iov = { .iov_base = ch->rxbuf, .iov_len = ch->rxcap };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf.buf,
		.msg_controllen = sizeof cbuf.buf,
	};
	int fds[IPC_MAX_RX_FDS];
	int nfds = 0;
	struct ucred cred;
	bool have_cred = false;
	struct ipc_msg m;
	crisp_err_t e = CRISP_ERR_INIT;
	ssize_t n;

	do
		n = recvmsg(ch->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return false;
		chan_shutdown(ch, false, false, "recvmsg from %s: %s", crisp_role_name(ch->peer),
			      strerror(errno));
		return false;
	}
	/* Collect every fd first, whatever else is wrong: each one ends in
	 * the message or is closed by ipc_decode. */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_len < CMSG_LEN(0))
			continue;
		if (c->cmsg_type == SCM_RIGHTS) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t j = 0; j < k; j++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + j * sizeof(int), sizeof fd);
				if ((size_t)nfds < ARRAY_SIZE(fds))
					fds[nfds++] = fd;
				else
					close(fd); /* cannot happen: fds fits the buffer */
			}
		} else if (c->cmsg_type == SCM_CREDENTIALS && !have_cred &&
			   c->cmsg_len >= CMSG_LEN(sizeof cred)) {
			memcpy(&cred, CMSG_DATA(c), sizeof cred);
			have_cred = true;
		}
	}
	if (n == 0 && mh.msg_controllen == 0 && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		/* EOF: an empty datagram would carry credentials. */
		chan_shutdown(ch, false, false, "%s closed the channel", crisp_role_name(ch->peer));
		return false;
	}
	if (ipc_decode(ch, ch->rxbuf, (size_t)n, mh.msg_flags, fds, nfds,
		       have_cred ? &cred : NULL, &m, &e) < 0) {
		sodium_memzero(ch->rxbuf, (size_t)n < ch->rxcap ? (size_t)n : ch->rxcap);
		chan_shutdown(ch, true, false, "%s", e.msg);
		return false;
	}
	/* The payload was copied out by protobuf-c; do not leave secrets. */
	sodium_memzero(ch->rxbuf, (size_t)n);
	dispatch(ch, &m);
	ipc_msg_release(&m);
	return ch->open;
}

static void on_io(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct ipc_chan *ch = arg;

	(void)l;
	(void)fd;
	ipc_chan_ref(ch); /* handlers may close or drop the channel */
	if ((events & EPOLLOUT) && ch->open)
		txq_flush(ch);
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && ch->open)
		for (int i = 0; i < IPC_RX_BATCH && rx_one(ch); i++)
			;
	ipc_chan_unref(ch);
}

/* ---- closing and lifetime ---- */

static void chan_notify(struct ipc_chan *ch)
{
	crisp_err_t e = CRISP_ERR_INIT;

	ipc_chan_ref(ch);
	crisp_error(&e, CRISP_UNAVAILABLE, 0, "channel to %s closed: %s",
		    crisp_role_name(ch->peer), ch->close_reason);
	pend_fail_all(ch, &e);
	if (ch->on_close != NULL)
		ch->on_close(ch, ch->close_violation, ch->close_reason, ch->close_arg);
	ipc_chan_unref(ch);
}

static void on_deferred_close(struct loop *l, void *arg)
{
	struct ipc_chan *ch = arg;

	(void)l;
	ch->close_timer = NULL;
	chan_notify(ch);
	ipc_chan_unref(ch); /* the timer's reference */
}

static void chan_shutdown(struct ipc_chan *ch, bool violation_, bool defer, const char *fmt, ...)
{
	va_list ap;

	if (!ch->open)
		return;
	ch->open = false;
	loop_del(ch->loop, ch->fd);
	close(TAKE_FD(ch->fd));
	txq_clear(ch);
	watches_free(ch);
	ch->close_violation = violation_;
	va_start(ap, fmt);
	vsnprintf(ch->close_reason, sizeof ch->close_reason, fmt, ap);
	va_end(ap);
	if (defer) {
		ch->close_timer = loop_timer_add(ch->loop, 0, on_deferred_close, ch);
		if (ch->close_timer != NULL) {
			ipc_chan_ref(ch);
			return;
		}
		/* No memory for a timer: notifying now beats never. */
	}
	chan_notify(ch);
}

void ipc_chan_close(struct ipc_chan *ch)
{
	if (ch == NULL)
		return;
	ipc_chan_ref(ch);
	chan_shutdown(ch, false, false, "closed by %s", crisp_role_name(ch->self));
	ipc_chan_unref(ch);
}

struct ipc_chan *ipc_chan_ref(struct ipc_chan *ch)
{
	if (ch != NULL)
		ch->refs++;
	return ch;
}

static void chan_free(struct ipc_chan *ch)
{
	watches_free(ch);
	free(ch->pend); /* empty: a closed channel has no pending requests */
	if (ch->rxbuf != NULL)
		free(ch->rxbuf);
	sodium_memzero(ch, sizeof *ch); /* the keys */
	free(ch);
}

void ipc_chan_unref(struct ipc_chan *ch)
{
	if (ch == NULL || --ch->refs > 0)
		return;
	if (ch->open) {
		/* Last reference of an open channel: close it properly, which
		 * runs callbacks that may briefly take references. */
		ch->refs = 1;
		chan_shutdown(ch, false, false, "released by %s", crisp_role_name(ch->self));
		if (--ch->refs > 0)
			return;
	}
	chan_free(ch);
}

bool ipc_chan_is_open(const struct ipc_chan *ch)
{
	return ch != NULL && ch->open;
}

enum crisp_role ipc_chan_peer(const struct ipc_chan *ch)
{
	return ch->peer;
}

const struct ipc_stats *ipc_chan_stats(const struct ipc_chan *ch)
{
	return &ch->stats;
}

void *ipc_chan_arg(const struct ipc_chan *ch)
{
	return ch->arg;
}

#ifdef CRISP_FUZZING
void ipc_chan_fuzz_reset(struct ipc_chan *ch)
{
	ch->tx_seq = 1;
	ch->rx_seq = 1;
	memset(&ch->stats, 0, sizeof ch->stats);
}
#endif

/* ---- creation ---- */

/* A net.core sysctl such as wmem_max, or -1 when it cannot be read (a
 * sandboxed role may have no /proc). */
static long read_sysctl(const char *path)
{
	char buf[32];
	long v;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	v = strtol(buf, NULL, 10);
	return v > 0 ? v : -1;
}

/* Raise a socket buffer to at least want and return what the kernel
 * granted.  Never shrinks it: crispd may already have forced it above the
 * sysctl limit, and plain SO_SNDBUF/SO_RCVBUF would cut it down to that
 * limit, so they are used only when the limit is known to be higher. */
static int grow_sockbuf(int fd, int opt, int force_opt, const char *limit_path, int want)
{
	int cur = 0, half = want / 2 + 1; /* the kernel doubles what it is given */
	socklen_t sl = sizeof cur;

	if (getsockopt(fd, SOL_SOCKET, opt, &cur, &sl) < 0)
		return -1;
	if (cur >= want)
		return cur;
	if (setsockopt(fd, SOL_SOCKET, force_opt, &half, sizeof half) < 0) {
		long limit = read_sysctl(limit_path);
		if (limit > 0 && 2 * (limit < half ? limit : half) > cur)
			(void)setsockopt(fd, SOL_SOCKET, opt, &half, sizeof half);
	}
	sl = sizeof cur;
	if (getsockopt(fd, SOL_SOCKET, opt, &cur, &sl) < 0)
		return -1;
	return cur;
}

static int chan_setup_socket(struct ipc_chan *ch, int fd, crisp_err_t *err)
{
	size_t frame = IPC_FRAME_OVERHEAD + (size_t)ch->maxlen;
	int on = 1, type = 0, domain = 0, sndbuf;
	socklen_t sl = sizeof type;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) < 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, errno, "ipc fd %d", fd);
	sl = sizeof domain;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &sl) < 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, errno, "ipc fd %d", fd);
	if (type != SOCK_SEQPACKET || domain != AF_UNIX)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "ipc fd %d is not an AF_UNIX SOCK_SEQPACKET socket", fd);
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "SO_PASSCRED");
	if (crisp_set_nonblock(fd, true) < 0 || crisp_set_cloexec(fd, true) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "fcntl");

	/* Room for two largest frames, so one can be queued in the kernel
	 * while the peer reads the other.  The receive buffer is set alike
	 * (best effort: unix datagrams are charged to the sender). */
	sndbuf = grow_sockbuf(fd, SO_SNDBUF, SO_SNDBUFFORCE, "/proc/sys/net/core/wmem_max",
			      (int)(2 * (frame + IPC_SNDBUF_SLACK)));
	(void)grow_sockbuf(fd, SO_RCVBUF, SO_RCVBUFFORCE, "/proc/sys/net/core/rmem_max",
			   (int)(2 * (frame + IPC_SNDBUF_SLACK)));
	if (sndbuf < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "SO_SNDBUF");
	if ((size_t)sndbuf < IPC_SNDBUF_SLACK + IPC_FRAME_OVERHEAD)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0, "SO_SNDBUF of %d bytes",
				   sndbuf);
	ch->tx_maxlen = ch->maxlen;
	if ((size_t)sndbuf - IPC_SNDBUF_SLACK < frame)
		ch->tx_maxlen = (uint32_t)((size_t)sndbuf - IPC_SNDBUF_SLACK - IPC_FRAME_OVERHEAD);
	return 0;
}

static int chan_set_handlers(struct ipc_chan *ch, const struct ipc_chan_cfg *cfg,
			     crisp_err_t *err)
{
	if (cfg->nhandlers > 0 && cfg->handlers == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "handlers missing");
	ch->handlers[ipc_type_index(IPC_CANCEL)] = on_cancel_msg;
	for (size_t i = 0; i < cfg->nhandlers; i++) {
		const struct ipc_handler *h = &cfg->handlers[i];
		int idx = ipc_type_index(h->type);
		const struct ipc_msgdef *def = idx < 0 ? NULL : ipc_msgdef_at((size_t)idx);

		if (def == NULL)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "handler for unknown type %u", h->type);
		if (h->fn == NULL || ch->handlers[idx] != NULL)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "handler for %s missing or given twice", def->name);
		if (!(def->receivers & (1u << ch->self)))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "%s may not receive %s", crisp_role_name(ch->self),
					   def->name);
		if (ipc_type_is_answer(h->type))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "%s is an answer: it goes to the request's callback",
					   def->name);
		ch->handlers[idx] = h->fn;
	}
	return 0;
}

/* The argument checks of ipc_chan_new. */
static int chan_check_cfg(const struct loop *l, const struct ipc_chan_cfg *cfg, crisp_err_t *err)
{
	if (l == NULL || cfg == NULL || cfg->fd < 0 || cfg->key == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "ipc channel: missing loop, fd or key");
	if ((unsigned)cfg->self >= ROLE_MAX || (unsigned)cfg->peer >= ROLE_MAX ||
	    cfg->self == cfg->peer)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "ipc channel: bad roles %d -> %d",
				   (int)cfg->self, (int)cfg->peer);
	/* pid 0 is what the kernel reports for a datagram that carries no
	 * credentials: it must never be acceptable. */
	if (cfg->peer_pid <= 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "ipc channel: bad peer pid %ld",
				   (long)cfg->peer_pid);
	if (cfg->maxlen > IPC_MAX_PAYLOAD)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "ipc channel: bound %u over %u",
				   cfg->maxlen, IPC_MAX_PAYLOAD);
	return 0;
}

struct ipc_chan *ipc_chan_new(struct loop *l, const struct ipc_chan_cfg *cfg, crisp_err_t *err)
{
	/* The fd is ours whatever happens: callers hand it over and forget. */
	cleanup_close int fd = cfg != NULL ? cfg->fd : -1;
	struct ipc_chan *ch;

	if (ipc_table_check(err) < 0 || chan_check_cfg(l, cfg, err) < 0)
		return NULL;
	if (sodium_init() < 0) {
		crisp_error(err, CRISP_INTERNAL, 0, "sodium_init failed");
		return NULL;
	}
	ch = calloc(1, sizeof *ch);
	if (ch == NULL) {
		crisp_error(err, CRISP_RESOURCE_EXHAUSTED, errno, "ipc channel");
		return NULL;
	}
	ch->refs = 1;
	ch->fd = -1;
	ch->loop = l;
	ch->self = cfg->self;
	ch->peer = cfg->peer;
	ch->peer_pid = cfg->peer_pid;
	ch->peer_uid = cfg->peer_uid;
	ch->maxlen = cfg->maxlen != 0 ? cfg->maxlen : IPC_MAX_PAYLOAD;
	ch->tx_seq = 1;
	ch->rx_seq = 1;
	ch->next_reqid = 1;
	ch->arg = cfg->arg;
	ch->on_close = cfg->on_close;
	ch->close_arg = cfg->close_arg;
	ch->txq_tail = &ch->txq_head;
	if (chan_set_handlers(ch, cfg, err) < 0 || chan_setup_socket(ch, fd, err) < 0)
		goto fail;
	/* +1: a datagram over the bound arrives whole and fails the size
	 * check; anything longer is cut and shows as MSG_TRUNC. */
	ch->rxcap = IPC_FRAME_OVERHEAD + (size_t)ch->maxlen + 1;
	ch->rxbuf = malloc(ch->rxcap);
	if (ch->rxbuf == NULL) {
		crisp_error(err, CRISP_RESOURCE_EXHAUSTED, errno, "ipc receive buffer");
		goto fail;
	}
	ipc_derive_keys(cfg->key, ch->self, ch->peer, ch->txkey, ch->rxkey);
	if (loop_add(l, fd, EPOLLIN, on_io, ch) < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "epoll add ipc fd %d", fd);
		goto fail;
	}
	ch->fd = TAKE_FD(fd);
	ch->open = true;
	return ch;
fail:
	chan_free(ch);
	return NULL;
}
