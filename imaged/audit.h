/*
 * crisp: the signature-policy audit log.  One JSON line per decision,
 * hash-chained:
 *
 *   {"ts":"2026-01-02T03:04:05.123456789Z","seq":7,"event":"pull",
 *    "decision":"deny","namespace":"ns","pod":"p","reference":"quay.io/x:1",
 *    "manifest_digest":"sha256:...","scope":"transports.docker[\"quay.io\"]",
 *    "requirement":"transports.docker[\"quay.io\"][0] sigstoreSigned",
 *    "key_fingerprint":null,"reason":"...","prev":"<64 hex>"}
 *
 * Keys always in this order, compact, one line each, "\n"-terminated.
 * seq counts from 1; prev is the hex BLAKE2b-256 (libsodium
 * crypto_generichash, 32 bytes, no key) of the previous line's bytes
 * without its "\n"; the first line's prev is 64 zeros.  Strings are
 * printable ASCII (other bytes become '?') of at most AUDIT_FIELD_MAX
 * bytes; an absent field is null.
 *
 * Events: "pull" and "create" with decision "allow" or "deny", and
 * "recover" with decision "note": written when the log was found to end
 * in a damaged record (torn by a crash or a short write, or not a record)
 * whose bytes its prev then hashes, so the chain continues through it.
 *
 * The file is opened once (O_RDWR|O_APPEND|O_CREAT|O_NOFOLLOW, 0600)
 * before the caller's sandbox; every record is one write(2) followed by
 * fdatasync.  A record that cannot be written is an error the caller must
 * treat as a deny (fail closed).
 *
 * Tamper evidence, and its limits: an edited, removed, inserted or
 * reordered line breaks the chain at the next line; a log cut inside a
 * line is detected; but removing whole trailing lines, or rewriting the
 * whole chain from some point on, is not detectable from the file alone:
 * ship the lines (or at least the last hash, audit_verify's head) off the
 * node.
 */
#ifndef CRISP_IMAGED_AUDIT_H
#define CRISP_IMAGED_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define AUDIT_LINE_MAX 16384
#define AUDIT_FIELD_MAX 1024
#define AUDIT_HASH_LEN 32

struct audit_log;

struct audit_record {
	const char *event; /* "pull" | "create" */
	bool allow;
	const char *namespace_; /* any field may be NULL (null) */
	const char *pod;
	const char *reference;
	const char *manifest_digest;
	const char *scope;
	const char *requirement;
	const char *key_fingerprint;
	const char *reason;
};

/* Open (create) the log at path and continue its chain from its last
 * record; a damaged last record is noted in a "recover" record at once.
 * Only the tail is read (the whole chain is checked by audit_verify, e.g.
 * crispd --verify-audit, not at every start).
 * DATA_LOSS when the end of the log cannot be made sense of (a last line
 * longer than AUDIT_LINE_MAX, or two damaged lines in a row): run
 * audit_verify and move the file aside.  FAILED_PRECONDITION for open
 * errors or a path that is not a regular file. */
int audit_open(const char *path, struct audit_log **out, crisp_err_t *err);
void audit_close(struct audit_log *log);

/* Append one record.  INVALID_ARGUMENT for an unknown event; UNAVAILABLE
 * when it could not be written (then nothing or a damaged line was
 * written; the next record starts with a "recover" note). */
int audit_write(struct audit_log *log, const struct audit_record *rec, crisp_err_t *err);

/* Records written (seq of the last one). */
uint64_t audit_seq(const struct audit_log *log);

struct audit_verify_result {
	uint64_t records;   /* valid records read (recover notes included) */
	uint64_t recovered; /* damaged lines bridged by a recover note */
	uint64_t bad_line;  /* 0 when the log is intact, else the first bad line (1-based) */
	char reason[256];
	char head[2 * AUDIT_HASH_LEN + 1]; /* hash of the last good line: compare with a copy kept elsewhere */
};

/* Check a whole log.  Returns 0 when intact, 1 when a bad record was
 * found (bad_line, reason), -1 on I/O errors (err). */
int audit_verify(const char *path, struct audit_verify_result *out, crisp_err_t *err);
int audit_verify_fd(int fd, struct audit_verify_result *out, crisp_err_t *err);

#endif
