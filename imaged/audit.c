/*
 * crisp: hash-chained audit log of signature-policy decisions.  See
 * audit.h for the format and what it does and does not prove.
 */
#include "imaged/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/util.h"

struct audit_log {
	int fd;
	uint64_t seq;
	uint8_t prev[AUDIT_HASH_LEN];
	/* A damaged line is at the end of the file (short write): the next
	 * record is preceded by "\n" and a recover note chaining it. */
	bool damaged;
	size_t damaged_len;
};

static const char *const KEYS[] = { "ts",    "seq",         "event",           "decision", "namespace",
				    "pod",   "reference",   "manifest_digest", "scope",    "requirement",
				    "key_fingerprint", "reason", "prev" };
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static void line_hash(const void *line, size_t len, uint8_t out[AUDIT_HASH_LEN])
{
	crypto_generichash(out, AUDIT_HASH_LEN, line, len, NULL, 0);
}

/* ---- parsing one line ---------------------------------------------------- */

struct parsed {
	uint64_t seq;
	bool recover;
	uint8_t prev[AUDIT_HASH_LEN];
};

static bool is_hex64(const char *s)
{
	if (strlen(s) != 2 * AUDIT_HASH_LEN)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* 0 when line (without "\n") is a well-formed record; else -1 and why. */
static int parse_line(const char *line, size_t len, struct parsed *out, char *why, size_t whysz)
{
	json_error_t je;
	json_t *root, *v;
	const char *key;
	size_t i = 0;
	int rc = -1;

	if (len > AUDIT_LINE_MAX) {
		snprintf(why, whysz, "record longer than %u bytes", AUDIT_LINE_MAX);
		return -1;
	}
	if (memchr(line, '\0', len) != NULL) {
		snprintf(why, whysz, "NUL byte in record");
		return -1;
	}
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		snprintf(why, whysz, "not JSON (column %d: %.80s)", je.column, je.text);
		return -1;
	}
	if (!json_is_object(root) || json_object_size(root) != NKEYS) {
		snprintf(why, whysz, "not a record: object with %zu fields expected", NKEYS);
		goto out;
	}
	/* Exactly the keys, in order (jansson keeps insertion order). */
	json_object_foreach(root, key, v) {
		if (strcmp(key, KEYS[i]) != 0) {
			snprintf(why, whysz, "field %zu is \"%.40s\", expected \"%s\"", i + 1, key, KEYS[i]);
			goto out;
		}
		if (i == 1) {
			if (!json_is_integer(v) || json_integer_value(v) < 1) {
				snprintf(why, whysz, "seq: positive integer expected");
				goto out;
			}
		} else if (!json_is_string(v) && !(i >= 4 && i <= 11 && json_is_null(v))) {
			snprintf(why, whysz, "%s: string expected", KEYS[i]);
			goto out;
		}
		i++;
	}
	const char *ev = json_string_value(json_object_get(root, "event"));
	const char *dec = json_string_value(json_object_get(root, "decision"));
	const char *prev = json_string_value(json_object_get(root, "prev"));
	out->recover = strcmp(ev, "recover") == 0;
	if (out->recover ? strcmp(dec, "note") != 0
			 : (strcmp(ev, "pull") != 0 && strcmp(ev, "create") != 0) ||
				   (strcmp(dec, "allow") != 0 && strcmp(dec, "deny") != 0)) {
		snprintf(why, whysz, "unknown event/decision \"%.20s\"/\"%.20s\"", ev, dec);
		goto out;
	}
	if (!is_hex64(prev)) {
		snprintf(why, whysz, "prev: 64 lower-case hex digits expected");
		goto out;
	}
	if (sodium_hex2bin(out->prev, sizeof out->prev, prev, strlen(prev), NULL, NULL, NULL) != 0) {
		snprintf(why, whysz, "prev: bad hex");
		goto out;
	}
	out->seq = (uint64_t)json_integer_value(json_object_get(root, "seq"));
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* ---- writing ------------------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
	char buf[AUDIT_FIELD_MAX + 1];
	size_t i;

	if (s == NULL)
		return json_null();
	for (i = 0; s[i] != '\0' && i < AUDIT_FIELD_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	buf[i] = '\0';
	return json_string(buf);
}

/* The line (without "\n") for a record; malloc'd, *len set. */
static char *format_line(const char *event, const char *decision, const struct audit_record *r, uint64_t seq,
			 const uint8_t prev[AUDIT_HASH_LEN], size_t *len)
{
	struct timespec ts;
	struct tm tm;
	char tbuf[64], hex[2 * AUDIT_HASH_LEN + 1];
	json_t *o = json_object();
	char *line;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t tl = strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(tbuf + tl, sizeof tbuf - tl, ".%09ldZ", ts.tv_nsec);
	crisp_hex(prev, AUDIT_HASH_LEN, hex);
	json_object_set_new(o, "ts", json_string(tbuf));
	json_object_set_new(o, "seq", json_integer((json_int_t)seq));
	json_object_set_new(o, "event", json_string(event));
	json_object_set_new(o, "decision", json_string(decision));
	json_object_set_new(o, "namespace", str_or_null(r->namespace_));
	json_object_set_new(o, "pod", str_or_null(r->pod));
	json_object_set_new(o, "reference", str_or_null(r->reference));
	json_object_set_new(o, "manifest_digest", str_or_null(r->manifest_digest));
	json_object_set_new(o, "scope", str_or_null(r->scope));
	json_object_set_new(o, "requirement", str_or_null(r->requirement));
	json_object_set_new(o, "key_fingerprint", str_or_null(r->key_fingerprint));
	json_object_set_new(o, "reason", str_or_null(r->reason));
	json_object_set_new(o, "prev", json_string(hex));
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (line == NULL)
		return NULL;
	*len = strlen(line);
	return line;
}

static void recover_reason(char *buf, size_t sz, size_t len, bool had_newline)
{
	snprintf(buf, sz, "the previous line (%zu bytes%s) is not a record: torn by a crash or a failed write, "
		 "or altered", len, had_newline ? "" : ", no newline");
}

/* Append bytes with one write.  On a short write, the bytes written
 * after the last "\n" among them are a damaged line: its hash becomes
 * prev and the next record is preceded by a recover note. */
static int append(struct audit_log *log, const char *buf, size_t len, crisp_err_t *err)
{
	ssize_t w;

	do {
		w = write(log->fd, buf, len);
	} while (w < 0 && errno == EINTR);
	if (w < 0)
		return crisp_error(err, CRISP_UNAVAILABLE, errno, "audit log write: %s", strerror(errno));
	if ((size_t)w < len) {
		const char *nl = memrchr(buf, '\n', (size_t)w);
		const char *start = nl != NULL ? nl + 1 : buf;
		line_hash(start, (size_t)(buf + w - start), log->prev);
		log->damaged = true;
		log->damaged_len = (size_t)(buf + w - start);
		(void)fdatasync(log->fd);
		return crisp_error(err, CRISP_UNAVAILABLE, 0, "audit log: short write (%zd of %zu bytes)", w, len);
	}
	if (fdatasync(log->fd) != 0)
		return crisp_error(err, CRISP_UNAVAILABLE, errno, "audit log fdatasync: %s", strerror(errno));
	return 0;
}

/* Write "\n" (when the damaged line has none) and a recover note. */
static int write_recover(struct audit_log *log, bool add_newline, crisp_err_t *err)
{
	struct audit_record r = { 0 };
	char reason[200];
	size_t len;

	recover_reason(reason, sizeof reason, log->damaged_len, !add_newline);
	r.reason = reason;
	char *line = format_line("recover", "note", &r, log->seq + 1, log->prev, &len);
	if (line == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
	char *buf = xmalloc(len + 2);
	size_t off = 0;
	if (add_newline)
		buf[off++] = '\n';
	memcpy(buf + off, line, len);
	buf[off + len] = '\n';
	uint8_t h[AUDIT_HASH_LEN];
	line_hash(line, len, h);
	bool was_damaged = log->damaged;
	log->damaged = false; /* a short write below sets it again */
	int rc = append(log, buf, off + len + 1, err);
	if (rc == 0) {
		memcpy(log->prev, h, sizeof h);
		log->seq++;
	} else if (!log->damaged) {
		log->damaged = was_damaged;
	}
	free(buf);
	free(line);
	return rc;
}

int audit_write(struct audit_log *log, const struct audit_record *rec, crisp_err_t *err)
{
	size_t len;

	if (rec->event == NULL || (strcmp(rec->event, "pull") != 0 && strcmp(rec->event, "create") != 0))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "audit: unknown event");
	if (log->damaged && write_recover(log, true, err) != 0)
		return -1;
	char *line = format_line(rec->event, rec->allow ? "allow" : "deny", rec, log->seq + 1, log->prev, &len);
	if (line == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "out of memory");
	if (len > AUDIT_LINE_MAX) { /* cannot happen with bounded fields */
		free(line);
		return crisp_error(err, CRISP_INTERNAL, 0, "audit record too long");
	}
	line[len] = '\n'; /* json_dumps NUL-terminated: room for it */
	uint8_t h[AUDIT_HASH_LEN];
	line_hash(line, len, h);
	int rc = append(log, line, len + 1, err);
	if (rc == 0) {
		memcpy(log->prev, h, sizeof h);
		log->seq++;
	}
	free(line);
	return rc;
}

uint64_t audit_seq(const struct audit_log *log)
{
	return log->seq;
}

/* ---- opening: continue the chain ----------------------------------------- */

void audit_close(struct audit_log *log)
{
	if (log == NULL)
		return;
	if (log->fd >= 0)
		close(log->fd);
	free(log);
}

int audit_open(const char *path, struct audit_log **out, crisp_err_t *err)
{
	struct audit_log *log;
	struct stat st;
	const size_t win = 2 * (AUDIT_LINE_MAX + 1) + 1;
	char *buf = NULL;
	char why[160];

	*out = NULL;
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "opening audit log %s: %s", path,
				   strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "audit log %s is not a regular file", path);
	}
	log = xcalloc(1, sizeof *log);
	log->fd = fd;
	if (st.st_size == 0) {
		*out = log;
		return 0;
	}
	off_t off = st.st_size > (off_t)win ? st.st_size - (off_t)win : 0;
	size_t n = (size_t)(st.st_size - off);
	buf = xmalloc(n);
	if (pread(fd, buf, n, off) != (ssize_t)n) {
		crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "reading audit log %s", path);
		goto fail;
	}
	bool newline = buf[n - 1] == '\n';
	size_t end = newline ? n - 1 : n; /* last line is [start, end) */
	const char *nl = memrchr(buf, '\n', end);
	if (nl == NULL && off > 0) {
		crisp_error(err, CRISP_DATA_LOSS, 0, "audit log %s: last line longer than %u bytes", path,
			    AUDIT_LINE_MAX);
		goto fail;
	}
	size_t start = nl != NULL ? (size_t)(nl - buf) + 1 : 0;
	struct parsed p;
	if (parse_line(buf + start, end - start, &p, why, sizeof why) == 0) {
		/* A whole record that lost only its newline: terminate it. */
		if (!newline && append(log, "\n", 1, err) != 0)
			goto fail;
		log->seq = p.seq;
		line_hash(buf + start, end - start, log->prev);
		free(buf);
		*out = log;
		return 0;
	}
	/* Damaged last line: the one before it gives the sequence. */
	log->seq = 0;
	if (start > 0) {
		size_t pend = start - 1;
		const char *pnl = memrchr(buf, '\n', pend);
		if (pnl == NULL && off > 0) {
			crisp_error(err, CRISP_DATA_LOSS, 0, "audit log %s: line before the damaged last line is too long",
				    path);
			goto fail;
		}
		size_t pstart = pnl != NULL ? (size_t)(pnl - buf) + 1 : 0;
		if (parse_line(buf + pstart, pend - pstart, &p, why, sizeof why) != 0) {
			crisp_error(err, CRISP_DATA_LOSS, 0,
				    "audit log %s: the last two lines are not records (%s): check it with "
				    "--verify-audit and move it aside",
				    path, why);
			goto fail;
		}
		log->seq = p.seq;
	}
	line_hash(buf + start, end - start, log->prev);
	log->damaged = true;
	log->damaged_len = end - start;
	free(buf);
	buf = NULL;
	if (write_recover(log, !newline, err) != 0)
		goto fail;
	*out = log;
	return 0;
fail:
	free(buf);
	audit_close(log);
	return -1;
}

/* ---- verification -------------------------------------------------------- */

/* One line into buf (cap bytes, "\n" included): its length, 0 at the
 * end, -1 when it does not fit (memory stays bounded whatever the file). */
static ssize_t read_line(FILE *f, char *buf, size_t cap)
{
	size_t n = 0;
	int c;

	while ((c = getc_unlocked(f)) != EOF) {
		if (n == cap)
			return -1;
		buf[n++] = (char)c;
		if (c == '\n')
			break;
	}
	return (ssize_t)n;
}

int audit_verify_fd(int fd, struct audit_verify_result *out, crisp_err_t *err)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	uint64_t lineno = 0, expect = 1;
	uint8_t prev[AUDIT_HASH_LEN] = { 0 }, h[AUDIT_HASH_LEN];
	bool pending = false; /* previous line damaged, waiting for its recover note */
	uint64_t pending_line = 0;
	char pending_why[160] = "", why[160];
	int rc = 0;

	memset(out, 0, sizeof *out);
	int dfd = dup(fd);
	if (dfd < 0 || (f = fdopen(dfd, "r")) == NULL) {
		if (dfd >= 0)
			close(dfd);
		return crisp_error(err, CRISP_INTERNAL, errno, "audit log: %s", strerror(errno));
	}
#define BAD(l, ...)                                                      \
	do {                                                             \
		out->bad_line = (l);                                     \
		snprintf(out->reason, sizeof out->reason, __VA_ARGS__);  \
		rc = 1;                                                  \
		goto done;                                               \
	} while (0)
	line = xmalloc(cap = AUDIT_LINE_MAX + 2);
	while ((len = read_line(f, line, cap)) != 0) {
		struct parsed p;
		lineno++;
		if (len < 0)
			BAD(lineno, "line longer than %u bytes", AUDIT_LINE_MAX);
		bool has_nl = line[len - 1] == '\n';
		size_t l = has_nl ? (size_t)len - 1 : (size_t)len;
		if (!has_nl) {
			if (pending)
				BAD(pending_line, "damaged record not followed by a recover note (%s)", pending_why);
			BAD(lineno, "truncated: the last line has no newline (torn write, or the log was cut)");
		}
		if (parse_line(line, l, &p, why, sizeof why) != 0) {
			if (pending)
				BAD(pending_line, "damaged record not followed by a recover note (%s)", pending_why);
			pending = true;
			pending_line = lineno;
			memcpy(pending_why, why, sizeof why);
			line_hash(line, l, prev);
			continue;
		}
		if (p.recover != pending) {
			if (pending)
				BAD(pending_line, "%s", pending_why);
			BAD(lineno, "recover note without a damaged line before it");
		}
		if (p.seq != expect)
			BAD(lineno, "sequence %llu where %llu was expected: records removed, inserted or reordered",
			    (unsigned long long)p.seq, (unsigned long long)expect);
		if (sodium_memcmp(p.prev, prev, sizeof prev) != 0) {
			if (lineno == 1)
				BAD(1, "the first record does not start the chain: records removed before it");
			BAD(lineno - 1,
			    "its hash is not the prev of line %llu: this line was altered (or that line's prev), or "
			    "lines were removed or reordered",
			    (unsigned long long)lineno);
		}
		line_hash(line, l, h);
		memcpy(prev, h, sizeof h);
		if (pending)
			out->recovered++;
		pending = false;
		expect++;
		out->records++;
	}
	if (ferror(f)) {
		rc = -1;
		crisp_error(err, CRISP_INTERNAL, errno, "reading audit log: %s", strerror(errno));
		goto done;
	}
	if (pending)
		BAD(pending_line, "%s", pending_why);
	crisp_hex(prev, sizeof prev, out->head);
#undef BAD
done:
	free(line);
	fclose(f);
	return rc;
}

int audit_verify(const char *path, struct audit_verify_result *out, crisp_err_t *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		memset(out, 0, sizeof *out);
		return crisp_error(err, CRISP_NOT_FOUND, errno, "opening %s: %s", path, strerror(errno));
	}
	int rc = audit_verify_fd(fd, out, err);
	close(fd);
	return rc;
}
