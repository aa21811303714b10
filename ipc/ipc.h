/*
 * crisp: authenticated message channels between crisp's processes.
 *
 * A channel is one end of a SOCK_SEQPACKET socketpair made by crispd.  One
 * datagram is one message:
 *
 *   struct ipc_hdr (32 bytes) | payload (hdr.len bytes, protobuf-c) | tag (32 bytes)
 *
 * plus at most one fd (SCM_RIGHTS) and the sender's SCM_CREDENTIALS, which
 * the kernel attaches because the receiving end sets SO_PASSCRED.
 * (SO_PEERCRED is useless on a socketpair: it names the process that called
 * socketpair(), i.e. crispd, not the peer.)
 *
 * Each channel has one 32-byte key from crispd.  Both ends derive one key
 * per direction from it (libsodium crypto_kdf), so a message can neither be
 * replayed on the same channel (sequence numbers), nor reflected back to
 * its sender (direction keys), nor moved to another channel (keys differ).
 * The tag is HMAC-SHA-512-256 (crypto_auth) over header and payload.
 *
 * Receiving checks, in this order, and any failure is a protocol violation
 * that closes the channel and is counted in ipc_stats:
 *   MSG_TRUNC / MSG_CTRUNC set             -> truncated
 *   credentials missing or not peer's      -> bad_cred
 *   length < header + tag, > channel max   -> bad_size
 *   tag                                    -> bad_tag
 *   hdr.len != datagram length - hdr - tag,
 *   hdr.reserved != 0                      -> bad_size
 *   hdr.seq != expected                    -> bad_seq
 *   type unknown, not from this peer, not
 *   for this role, payload over its bound  -> bad_type / bad_peer / bad_size
 *   (not from this peer / not for this role are both bad_peer; a request
 *   type with no handler here, a request with reqid 0 or a one-way message
 *   with a reqid are bad_type)
 *   fd count != (flags & IPC_F_FD), wrong
 *   fd kind, unknown flag bits             -> bad_fd
 *   payload not a valid protobuf message   -> bad_payload
 *   answer to a request id never issued,
 *   or of the wrong type                   -> bad_answer
 * An answer to a request that was issued but is no longer pending (it timed
 * out or was cancelled) is dropped and counted as stale, not a violation.
 */
#ifndef CRISP_IPC_H
#define CRISP_IPC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <protobuf-c/protobuf-c.h>

#include "common/err.h"
#include "ipc/loop.h"

enum crisp_role {
	ROLE_CRISPD = 0,
	ROLE_FRONTD = 1,
	ROLE_IMAGED = 2,
	ROLE_EXECD = 3,
	ROLE_NETD = 4,
	ROLE_MAX = 5,
};

#define R_CRISPD (1u << ROLE_CRISPD)
#define R_FRONTD (1u << ROLE_FRONTD)
#define R_IMAGED (1u << ROLE_IMAGED)
#define R_EXECD (1u << ROLE_EXECD)
#define R_NETD (1u << ROLE_NETD)
#define R_ROLES (R_FRONTD | R_IMAGED | R_EXECD | R_NETD)
#define R_ALL (R_CRISPD | R_ROLES)

const char *crisp_role_name(int role); /* "frontd"..., "?" when out of range */

enum ipc_fdkind { FD_NONE = 0, FD_SOCK, FD_DIR, FD_REG, FD_ANY };

enum ipc_type {
	IPC_NONE = 0,
#define MSG(name, num, snd, rcv, max, pb, fd, ans) IPC_##name = num,
#include "ipc/msgs.def"
#undef MSG
};

struct ipc_msgdef {
	uint32_t type;
	const char *name;
	uint32_t senders;   /* R_* mask */
	uint32_t receivers; /* R_* mask */
	uint32_t maxlen;    /* payload bound */
	const ProtobufCMessageDescriptor *desc;
	enum ipc_fdkind fd;
	uint32_t answer; /* IPC_NONE for one-way messages and answers */
};

/* The table entry of a type, or NULL when the type does not exist. */
const struct ipc_msgdef *ipc_msgdef(uint32_t type);

#define IPC_HDR_SIZE 32
#define IPC_TAG_SIZE 32
#define IPC_KEY_SIZE 32
/* Largest payload any channel carries; bulk data travels through fds. */
#define IPC_MAX_PAYLOAD (4u << 20)

#define IPC_F_FD 0x1u
#define IPC_F_MASK IPC_F_FD

struct ipc_hdr {
	uint32_t type;
	uint32_t len; /* payload bytes */
	uint64_t reqid; /* sender's id for requests; the request's id for answers */
	uint64_t seq;   /* per direction, first message is 1 */
	uint32_t flags;
	uint32_t reserved; /* must be 0 */
};
_Static_assert(sizeof(struct ipc_hdr) == IPC_HDR_SIZE, "ipc header layout");

struct ipc_msg {
	struct ipc_hdr hdr;
	const struct ipc_msgdef *def;
	ProtobufCMessage *pb; /* decoded payload; owned by the message */
	int fd;               /* -1, or owned by the message until taken (TAKE_FD) */
};

/* Free the payload and close the fd if still owned. */
void ipc_msg_release(struct ipc_msg *m);

struct ipc_stats {
	uint64_t rx, tx;
	uint64_t truncated, bad_cred, bad_size, bad_tag, bad_seq;
	uint64_t bad_type, bad_peer, bad_fd, bad_payload, bad_answer;
	uint64_t stale_answers;
};

struct ipc_chan;

/* Handler for a request or one-way message.  It may answer at once or
 * later (take a reference with ipc_chan_ref to answer after returning).
 * The message is released by ipc after the handler returns: take its fd
 * (TAKE_FD(m->fd)) and keep pointers into m->pb only for the call. */
typedef void (*ipc_handler_fn)(struct ipc_chan *ch, struct ipc_msg *m, void *arg);

struct ipc_handler {
	uint32_t type;
	ipc_handler_fn fn;
};

/* Called once per request: with the answer (err NULL), or with answer NULL
 * and err set (the ERROR answer, a timeout, or the channel closing). */
typedef void (*ipc_answer_fn)(struct ipc_chan *ch, struct ipc_msg *answer,
			      const crisp_err_t *err, void *arg);

/* Called once when the channel closes: violation is true when this end
 * closed it because the peer broke the protocol (reason says how), false on
 * EOF/hangup or ipc_chan_close. */
typedef void (*ipc_close_fn)(struct ipc_chan *ch, bool violation, const char *reason, void *arg);

struct ipc_chan_cfg {
	int fd;                  /* SOCK_SEQPACKET end; the channel owns it (if
				    ipc_chan_new fails, it closes it) */
	enum crisp_role self;
	enum crisp_role peer;
	pid_t peer_pid;          /* every message must come from this pid ... */
	uid_t peer_uid;          /* ... and uid (SCM_CREDENTIALS) */
	const uint8_t *key;      /* IPC_KEY_SIZE bytes, copied */
	uint32_t maxlen;         /* payload bound for this channel, <= IPC_MAX_PAYLOAD; 0 = max */
	const struct ipc_handler *handlers; /* types this end accepts as requests/one-way */
	size_t nhandlers;
	void *arg;               /* passed to handlers */
	ipc_close_fn on_close;
	void *close_arg;
};

/* Create a channel and register it with the loop.  Fails (INVALID_ARGUMENT)
 * when a handler names a type this role may not receive. */
struct ipc_chan *ipc_chan_new(struct loop *l, const struct ipc_chan_cfg *cfg, crisp_err_t *err);

/* Close the socket now: pending requests get UNAVAILABLE, on_close runs.
 * The structure lives until the last reference is dropped. */
void ipc_chan_close(struct ipc_chan *ch);
struct ipc_chan *ipc_chan_ref(struct ipc_chan *ch);
void ipc_chan_unref(struct ipc_chan *ch); /* ipc_chan_new's reference too */

bool ipc_chan_is_open(const struct ipc_chan *ch);
enum crisp_role ipc_chan_peer(const struct ipc_chan *ch);
const struct ipc_stats *ipc_chan_stats(const struct ipc_chan *ch);
void *ipc_chan_arg(const struct ipc_chan *ch);

/* Send a one-way message.  fd (or -1) is not taken: the caller still owns
 * it and may close it when this returns.  pb NULL sends an empty payload. */
int ipc_send(struct ipc_chan *ch, uint32_t type, const ProtobufCMessage *pb, int fd, crisp_err_t *err);

/* Send a request; cb runs exactly once (see ipc_answer_fn), never from
 * inside this call.  timeout_ms 0 means no timeout.  *reqid (if not NULL)
 * receives the request id for ipc_cancel.  When this fails, cb never runs. */
int ipc_request(struct ipc_chan *ch, uint32_t type, const ProtobufCMessage *pb, int fd,
		uint32_t timeout_ms, ipc_answer_fn cb, void *arg, uint64_t *reqid, crisp_err_t *err);

/* Forget a pending request: its cb will not run; a later answer is stale.
 * The peer is told (a CANCEL message, best effort) so it may stop working
 * on it; a request that times out is cancelled the same way. */
void ipc_cancel(struct ipc_chan *ch, uint64_t reqid);

/*
 * The receiving side of cancellation.  A handler that works on request
 * reqid for a while (a pull, an ExecSync) may ask to hear when the
 * requester gives up: fn runs at most once, from the loop, when CANCEL for
 * reqid arrives.  The watch ends by itself when the request is answered
 * (ipc_answer / ipc_answer_error) or the channel closes, or with
 * ipc_unwatch_cancel.  A CANCEL for a request nobody watches is ignored.
 * Returns 0, or -1 (RESOURCE_EXHAUSTED) without memory.
 */
typedef void (*ipc_cancel_fn)(struct ipc_chan *ch, uint64_t reqid, void *arg);
int ipc_watch_cancel(struct ipc_chan *ch, uint64_t reqid, ipc_cancel_fn fn, void *arg,
		     crisp_err_t *err);
void ipc_unwatch_cancel(struct ipc_chan *ch, uint64_t reqid);

/* Answer request reqid with its declared answer type, or with ERROR. */
int ipc_answer(struct ipc_chan *ch, uint64_t reqid, uint32_t type, const ProtobufCMessage *pb,
	       int fd, crisp_err_t *err);
int ipc_answer_error(struct ipc_chan *ch, uint64_t reqid, const crisp_err_t *e);

/*
 * Below: the pure parts, exposed for the unit tests and the fuzzer.
 */

/* Derive the two direction keys of a channel from its key. */
void ipc_derive_keys(const uint8_t key[IPC_KEY_SIZE], enum crisp_role self, enum crisp_role peer,
		     uint8_t tx[IPC_KEY_SIZE], uint8_t rx[IPC_KEY_SIZE]);

/* Seal hdr + payload into out with the channel's tx key; hdr is taken as
 * given (the sequence number too: ipc_send fills it, tests may lie).
 * Returns the frame length, or -1 when outsize is too small. */
ssize_t ipc_seal(const struct ipc_chan *ch, const struct ipc_hdr *hdr, const void *payload,
		 uint8_t *out, size_t outsize);

/* Validate and decode one received datagram (see the order above).
 * fds: the nfds fds that arrived with it; ownership passes to ipc_decode
 * (they end in out->fd or are closed).  cred may be NULL (missing).
 * On success out is filled and the channel's rx sequence advanced; on a
 * violation -1 with err->msg saying which check failed and the matching
 * stats counter incremented.  Answers are not matched to requests here. */
struct ucred;
int ipc_decode(struct ipc_chan *ch, const uint8_t *buf, size_t len, int msg_flags,
	       int *fds, int nfds, const struct ucred *cred, struct ipc_msg *out, crisp_err_t *err);

#endif
