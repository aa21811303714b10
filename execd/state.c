/*
 * execd/state: the SQLite record of pods and containers (see state.h for
 * the contract and the recovery rule, state_table.c for the lifecycle).
 *
 * Every mutation is one BEGIN IMMEDIATE ... COMMIT transaction that reads
 * the row's state, looks the (state, event) cell up in the table and
 * applies it; nothing is answered before COMMIT returns, and with
 * journal_mode=WAL + synchronous=FULL a returned COMMIT is on disk (the
 * steps nobody is answered for commit unflushed: durable() below).
 * Events reach the in-memory ring only after their transaction committed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "common/err.h"
#include "common/util.h"
#include "execd/state.h"

struct state {
	sqlite3 *db;
	char path[PATH_MAX];
	/* events ring */
	struct state_event *ev;
	size_t ev_cap, ev_head, ev_count;
	uint64_t ev_seq, ev_dropped;
	/* events of the open transaction, published after COMMIT */
	struct state_event *pend;
	size_t npend, pend_cap;
	void (*ev_hook)(void *); /* events reached the ring (execd/events.c) */
	void *ev_hook_arg;
	void (*hook)(void *);
	void *hook_arg;
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS pods ("
	" id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 64),"
	" name TEXT NOT NULL, namespace TEXT NOT NULL, uid TEXT NOT NULL,"
	" attempt INTEGER NOT NULL,"
	" state INTEGER NOT NULL, created_at INTEGER NOT NULL,"
	" labels TEXT NOT NULL, annotations TEXT NOT NULL,"
	" runtime_handler TEXT NOT NULL, netns_path TEXT NOT NULL DEFAULT '',"
	" ips TEXT NOT NULL DEFAULT '[]', hostname TEXT NOT NULL,"
	" log_directory TEXT NOT NULL, cgroup_parent TEXT NOT NULL,"
	" config BLOB, infra_pid INTEGER NOT NULL DEFAULT 0,"
	" infra_start INTEGER NOT NULL DEFAULT 0, flags INTEGER NOT NULL,"
	" mcs_level TEXT NOT NULL DEFAULT '',"
	" UNIQUE (name, namespace, uid, attempt));"
	"CREATE TABLE IF NOT EXISTS containers ("
	" id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 64),"
	" pod_id TEXT NOT NULL REFERENCES pods(id),"
	" name TEXT NOT NULL, attempt INTEGER NOT NULL,"
	" image_ref TEXT NOT NULL, image_id TEXT NOT NULL,"
	" state INTEGER NOT NULL, created_at INTEGER NOT NULL,"
	" started_at INTEGER NOT NULL DEFAULT 0, finished_at INTEGER NOT NULL DEFAULT 0,"
	" exit_code INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '',"
	" message TEXT NOT NULL DEFAULT '', log_path TEXT NOT NULL,"
	" pid INTEGER NOT NULL DEFAULT 0, pid_start INTEGER NOT NULL DEFAULT 0,"
	" monitor_pid INTEGER NOT NULL DEFAULT 0, monitor_start INTEGER NOT NULL DEFAULT 0,"
	" labels TEXT NOT NULL, annotations TEXT NOT NULL, config BLOB,"
	" image_rec BLOB,"
	" UNIQUE (pod_id, name, attempt));"
	"CREATE INDEX IF NOT EXISTS containers_pod ON containers(pod_id);"
	"PRAGMA user_version = 1;";

/* ------------------------------------------------------------- helpers */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int sql_code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return CRISP_UNAVAILABLE;
	case SQLITE_FULL:
	case SQLITE_NOMEM:
		return CRISP_RESOURCE_EXHAUSTED;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return CRISP_DATA_LOSS;
	default:
		return CRISP_INTERNAL;
	}
}

static int sql_err(struct state *st, crisp_err_t *err, int rc, const char *what)
{
	return crisp_error(err, sql_code(rc), 0, "state db: %s: %s", what,
		st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
}

static int exec_sql(struct state *st, const char *sql, crisp_err_t *err)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_err(st, err, rc, sql);
	return 0;
}

static int prep(struct state *st, const char *sql, sqlite3_stmt **s, crisp_err_t *err)
{
	int rc = sqlite3_prepare_v2(st->db, sql, -1, s, NULL);
	if (rc != SQLITE_OK)
		return sql_err(st, err, rc, "prepare");
	return 0;
}

static int begin(struct state *st, crisp_err_t *err)
{
	st->npend = 0;
	return exec_sql(st, "BEGIN IMMEDIATE", err);
}

/*
 * Durability per transaction.  Every transaction whose result a client is
 * told (create committed, started, stopped, removed...) is flushed before
 * COMMIT returns (synchronous=FULL).  The steps in between, which no client
 * waits on and which recovery undoes or redoes anyway (the image a
 * CREATING container resolved to, the STARTING mark), commit with
 * synchronous=NORMAL: in WAL mode such a commit is written to the WAL (so a
 * kill -9 of execd loses nothing) and ordered before every later commit,
 * but reaches the disk only with the next flushed one.  An OS crash can
 * lose it; it then loses the container's processes and mounts as well, and
 * the row is as it was before that step.
 */
static void durable(struct state *st, bool flush)
{
	(void)sqlite3_exec(st->db, flush ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL", NULL, NULL,
			   NULL);
}

static void rollback(struct state *st)
{
	st->npend = 0;
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

static void ring_push(struct state *st, const struct state_event *e)
{
	size_t slot;

	if (st->ev_count == st->ev_cap) {
		st->ev_head = (st->ev_head + 1) % st->ev_cap;
		st->ev_count--;
		st->ev_dropped++;
	}
	slot = (st->ev_head + st->ev_count) % st->ev_cap;
	st->ev[slot] = *e;
	st->ev[slot].seq = ++st->ev_seq;
	st->ev_count++;
}

static int commit(struct state *st, crisp_err_t *err)
{
	if (st->hook != NULL)
		st->hook(st->hook_arg);
	if (exec_sql(st, "COMMIT", err) < 0) {
		rollback(st);
		return -1;
	}
	for (size_t i = 0; i < st->npend; i++)
		ring_push(st, &st->pend[i]);
	if (st->npend > 0 && st->ev_hook != NULL) {
		st->npend = 0;
		st->ev_hook(st->ev_hook_arg);
	}
	st->npend = 0;
	return 0;
}

void state_set_event_hook(struct state *st, void (*fn)(void *), void *arg)
{
	st->ev_hook = fn;
	st->ev_hook_arg = arg;
}

static int pend_event(struct state *st, int type, int64_t at, const char *ctr_id,
	const char *pod_id, crisp_err_t *err)
{
	if (type == STATE_EVT_NONE)
		return 0;
	if (st->npend == st->pend_cap) {
		size_t ncap = st->pend_cap ? st->pend_cap * 2 : 8;
		struct state_event *p = realloc(st->pend, ncap * sizeof *p);
		if (p == NULL)
			return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "state: events");
		st->pend = p;
		st->pend_cap = ncap;
	}
	struct state_event *e = &st->pend[st->npend++];
	memset(e, 0, sizeof *e);
	e->type = type;
	e->at_ns = at;
	crisp_strlcpy(e->ctr_id, ctr_id, sizeof e->ctr_id);
	crisp_strlcpy(e->pod_id, pod_id ? pod_id : "", sizeof e->pod_id);
	return 0;
}

static const char *nz(const char *s)
{
	return s != NULL ? s : "";
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	sqlite3_bind_text(s, i, nz(v), -1, SQLITE_TRANSIENT);
}

/* {"k":"v",...} with sorted keys; NULL on allocation failure. */
static char *kvs_json(const struct state_kv *kv, size_t n)
{
	json_t *o = json_object();
	char *s;

	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (kv[i].key == NULL ||
		    json_object_set_new(o, kv[i].key, json_string(nz(kv[i].value))) < 0) {
			json_decref(o);
			return NULL;
		}
	}
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

static char *strv_json(const char *const *v, size_t n)
{
	json_t *a = json_array();
	char *s;

	if (a == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (json_array_append_new(a, json_string(nz(v[i]))) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

static void kvs_free(struct state_kvs *k)
{
	for (size_t i = 0; i < k->n; i++) {
		free((char *)k->kv[i].key);
		free((char *)k->kv[i].value);
	}
	free(k->kv);
	k->kv = NULL;
	k->n = 0;
}

static int json_kvs(const char *text, struct state_kvs *out)
{
	json_t *o = json_loads(nz(text), 0, NULL);
	const char *k;
	json_t *v;
	size_t i = 0;

	out->n = 0;
	out->kv = NULL;
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		return -1;
	}
	out->kv = calloc(json_object_size(o) + 1, sizeof *out->kv);
	if (out->kv == NULL) {
		json_decref(o);
		return -1;
	}
	json_object_foreach(o, k, v) {
		char *kk = strdup(k), *vv = strdup(json_is_string(v) ? json_string_value(v) : "");
		if (kk == NULL || vv == NULL) {
			free(kk);
			free(vv);
			json_decref(o);
			kvs_free(out);
			return -1;
		}
		out->kv[i].key = kk;
		out->kv[i].value = vv;
		out->n = ++i;
	}
	json_decref(o);
	return 0;
}

static const char *kvs_get(const struct state_kvs *k, const char *key)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->kv[i].key, key) == 0)
			return k->kv[i].value;
	return NULL;
}

static bool selector_match(const struct state_kvs *labels, const struct state_kv *sel, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = kvs_get(labels, nz(sel[i].key));
		if (v == NULL || strcmp(v, nz(sel[i].value)) != 0)
			return false;
	}
	return true;
}

static char *col_dup(sqlite3_stmt *s, int i, bool *oom)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	char *r = strdup(t ? (const char *)t : "");
	if (r == NULL)
		*oom = true;
	return r;
}

static void *col_blob(sqlite3_stmt *s, int i, size_t *len, bool *oom)
{
	const void *b = sqlite3_column_blob(s, i);
	int n = sqlite3_column_bytes(s, i);
	void *r;

	*len = 0;
	if (b == NULL || n <= 0)
		return NULL;
	r = malloc((size_t)n);
	if (r == NULL) {
		*oom = true;
		return NULL;
	}
	memcpy(r, b, (size_t)n);
	*len = (size_t)n;
	return r;
}

/* ------------------------------------------------------------- ids */

static void new_id(char out[STATE_ID_LEN + 1])
{
	uint8_t b[STATE_ID_LEN / 2];
	randombytes_buf(b, sizeof b);
	crisp_hex(b, sizeof b, out);
}

/*
 * Resolve a full id or a unique prefix in table ("pods"/"containers").
 * Returns 1 found, 0 not found, -1 error (ambiguous: INVALID_ARGUMENT).
 * Only lower-case hex can be an id: anything else is simply not found.
 */
static int resolve(struct state *st, const char *table, const char *what, const char *prefix,
	char out[STATE_ID_LEN + 1], crisp_err_t *err)
{
	char sql[128];
	sqlite3_stmt *s = NULL;
	size_t len = prefix ? strlen(prefix) : 0;
	int rc, found = 0;

	if (len == 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s id is empty", what);
	if (len > STATE_ID_LEN || strspn(prefix, "0123456789abcdef") != len)
		return 0;
	snprintf(sql, sizeof sql, "SELECT id FROM %s WHERE id GLOB ?1 || '*' LIMIT 2", table);
	if (prep(st, sql, &s, err) < 0)
		return -1;
	sqlite3_bind_text(s, 1, prefix, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (++found == 1)
			crisp_strlcpy(out, (const char *)sqlite3_column_text(s, 0), STATE_ID_LEN + 1);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return sql_err(st, err, rc, "resolve");
	if (found > 1)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
			"%s id prefix %s is ambiguous", what, prefix);
	return found;
}

int state_pod_resolve(struct state *st, const char *idprefix, char id_out[STATE_ID_LEN + 1],
	crisp_err_t *err)
{
	int r = resolve(st, "pods", "pod sandbox", idprefix, id_out, err);
	if (r == 0)
		return crisp_error(err, CRISP_NOT_FOUND, 0, "pod sandbox %s not found",
			nz(idprefix));
	return r < 0 ? -1 : 0;
}

int state_ctr_resolve(struct state *st, const char *idprefix, char id_out[STATE_ID_LEN + 1],
	crisp_err_t *err)
{
	int r = resolve(st, "containers", "container", idprefix, id_out, err);
	if (r == 0)
		return crisp_error(err, CRISP_NOT_FOUND, 0, "container %s not found",
			nz(idprefix));
	return r < 0 ? -1 : 0;
}

/* ------------------------------------------------------------- open */

static int mkdirs(const char *root, char *dir, size_t dirsz, crisp_err_t *err)
{
	if ((size_t)snprintf(dir, dirsz, "%s/execd", root) >= dirsz)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "state root too long");
	if (crisp_mkdir_p(dir, 0700, (uid_t)-1, (gid_t)-1) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "state: mkdir %s", dir);
	return 0;
}

/* ALTER TABLE ADD COLUMN unless the table has it (names are literals). */
static int add_column(struct state *st, const char *table, const char *col, const char *decl, crisp_err_t *err)
{
	char sql[256];
	sqlite3_stmt *s = NULL;
	int rc;

	snprintf(sql, sizeof sql, "SELECT 1 FROM pragma_table_info('%s') WHERE name = '%s'", table, col);
	if (prep(st, sql, &s, err) < 0)
		return -1;
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return sql_err(st, err, rc, "table info");
	snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s", table, col, decl);
	return exec_sql(st, sql, err);
}

int state_open(const char *root, size_t events_cap, struct state **out, crisp_err_t *err)
{
	char dir[PATH_MAX];
	struct state *st;
	sqlite3_stmt *s = NULL;
	int rc, fd;

	*out = NULL;
	if (sodium_init() < 0)
		return crisp_error(err, CRISP_INTERNAL, 0, "state: sodium_init failed");
	if (mkdirs(root, dir, sizeof dir, err) < 0)
		return -1;
	st = calloc(1, sizeof *st);
	if (st == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "state");
	st->ev_cap = events_cap ? events_cap : STATE_EVENTS_DEFAULT;
	st->ev = calloc(st->ev_cap, sizeof *st->ev);
	if (st->ev == NULL) {
		free(st);
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "state: events");
	}
	if ((size_t)snprintf(st->path, sizeof st->path, "%s/state.db", dir) >= sizeof st->path) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "state root too long");
		goto fail;
	}
	/* Create it 0600 ourselves (SQLite would use 0644 less umask); the WAL
	 * and shm files copy the database's mode. */
	fd = open(st->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "state: open %s", st->path);
		goto fail;
	}
	if (fchmod(fd, 0600) < 0) {
		crisp_error(err, CRISP_INTERNAL, errno, "state: chmod %s", st->path);
		close(fd);
		goto fail;
	}
	close(fd);
	rc = sqlite3_open_v2(st->path, &st->db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW |
		SQLITE_OPEN_EXRESCODE, NULL);
	if (rc != SQLITE_OK) {
		sql_err(st, err, rc, "open");
		goto fail;
	}
	sqlite3_busy_timeout(st->db, 5000);
	if (exec_sql(st, "PRAGMA journal_mode = WAL", err) < 0 ||
	    exec_sql(st, "PRAGMA synchronous = FULL", err) < 0 ||
	    exec_sql(st, "PRAGMA foreign_keys = ON", err) < 0 ||
	    exec_sql(st, "PRAGMA trusted_schema = OFF", err) < 0)
		goto fail;
	/* A damaged file is reported, never silently rebuilt: it holds the
	 * only record of running containers. */
	if (prep(st, "PRAGMA quick_check", &s, err) < 0)
		goto fail;
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(s, 0), "ok") != 0) {
		crisp_error(err, CRISP_DATA_LOSS, 0, "state db %s fails its integrity check: %s",
			st->path, rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) :
			sqlite3_errmsg(st->db));
		sqlite3_finalize(s);
		goto fail;
	}
	sqlite3_finalize(s);
	/* journal_mode answers with a row; check it took. */
	if (prep(st, "PRAGMA journal_mode", &s, err) < 0)
		goto fail;
	if (sqlite3_step(s) != SQLITE_ROW ||
	    strcmp((const char *)sqlite3_column_text(s, 0), "wal") != 0) {
		sqlite3_finalize(s);
		crisp_error(err, CRISP_INTERNAL, 0, "state db %s: WAL mode refused", st->path);
		goto fail;
	}
	sqlite3_finalize(s);
	if (exec_sql(st, schema, err) < 0)
		goto fail;
	/* Databases made before pods had an SELinux level, or containers their
	 * image record in the row, get the column. */
	if (add_column(st, "pods", "mcs_level", "TEXT NOT NULL DEFAULT ''", err) < 0 ||
	    add_column(st, "containers", "image_rec", "BLOB", err) < 0)
		goto fail;
	*out = st;
	return 0;
fail:
	state_close(st);
	return -1;
}

void state_close(struct state *st)
{
	if (st == NULL)
		return;
	if (st->db != NULL)
		sqlite3_close_v2(st->db);
	free(st->ev);
	free(st->pend);
	free(st);
}

const char *state_db_path(const struct state *st)
{
	return st->path;
}

void state_set_precommit_hook(struct state *st, void (*fn)(void *), void *arg)
{
	st->hook = fn;
	st->hook_arg = arg;
}

/* ------------------------------------------------------------- recover */

int state_recover(struct state *st, struct state_recovery **out, size_t *n, crisp_err_t *err)
{
	static const char sql[] =
		"SELECT 1, id, '', state, infra_pid, infra_start, 0, 0, created_at FROM pods"
		" WHERE state IN (?1, ?2, ?3)"
		" UNION ALL "
		"SELECT 0, id, pod_id, state, pid, pid_start, monitor_pid, monitor_start, created_at"
		" FROM containers WHERE state IN (?4, ?5, ?6, ?7)"
		" ORDER BY 1 DESC, 9, 2";
	sqlite3_stmt *s = NULL;
	struct state_recovery *v = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (prep(st, sql, &s, err) < 0)
		return -1;
	sqlite3_bind_int(s, 1, POD_CREATING);
	sqlite3_bind_int(s, 2, POD_STOPPING);
	sqlite3_bind_int(s, 3, POD_REMOVING);
	sqlite3_bind_int(s, 4, CTR_CREATING);
	sqlite3_bind_int(s, 5, CTR_STARTING);
	sqlite3_bind_int(s, 6, CTR_STOPPING);
	sqlite3_bind_int(s, 7, CTR_REMOVING);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct state_recovery *p = realloc(v, ncap * sizeof *p);
			if (p == NULL) {
				free(v);
				sqlite3_finalize(s);
				return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "state");
			}
			v = p;
			cap = ncap;
		}
		struct state_recovery *r = &v[cnt++];
		memset(r, 0, sizeof *r);
		r->is_pod = sqlite3_column_int(s, 0) != 0;
		crisp_strlcpy(r->id, (const char *)sqlite3_column_text(s, 1), sizeof r->id);
		crisp_strlcpy(r->pod_id, (const char *)sqlite3_column_text(s, 2), sizeof r->pod_id);
		r->state = sqlite3_column_int(s, 3);
		r->pid = (pid_t)sqlite3_column_int64(s, 4);
		r->pid_start = (uint64_t)sqlite3_column_int64(s, 5);
		r->monitor_pid = (pid_t)sqlite3_column_int64(s, 6);
		r->monitor_start = (uint64_t)sqlite3_column_int64(s, 7);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return sql_err(st, err, rc, "recover");
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* ------------------------------------------------------------- pods */

int state_pod_reserve(struct state *st, const struct state_pod_spec *sp,
	char id_out[STATE_ID_LEN + 1], crisp_err_t *err)
{
	static const char ins[] =
		"INSERT INTO pods (id, name, namespace, uid, attempt, state, created_at, labels,"
		" annotations, runtime_handler, hostname, log_directory, cgroup_parent, config,"
		" flags, mcs_level) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)";
	cleanup_free char *labels = NULL, *annots = NULL;
	sqlite3_stmt *s = NULL;
	char id[STATE_ID_LEN + 1];
	int rc;

	id_out[0] = '\0';
	if (sp->name == NULL || sp->name[0] == '\0' || sp->namespace == NULL ||
	    sp->uid == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
			"pod sandbox metadata needs name, namespace and uid");
	if (sp->config_len > STATE_CONFIG_MAX || (sp->config_len > 0 && sp->config == NULL))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
			"pod sandbox config of %zu bytes (max %u)", sp->config_len,
			STATE_CONFIG_MAX);
	labels = kvs_json(sp->labels, sp->nlabels);
	annots = kvs_json(sp->annotations, sp->nannotations);
	if (labels == NULL || annots == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
			"pod sandbox labels/annotations cannot be encoded");
	if (begin(st, err) < 0)
		return -1;
	if (prep(st, "SELECT id FROM pods WHERE name=?1 AND namespace=?2 AND uid=?3"
		" AND attempt=?4", &s, err) < 0)
		goto fail;
	bind_text(s, 1, sp->name);
	bind_text(s, 2, sp->namespace);
	bind_text(s, 3, sp->uid);
	sqlite3_bind_int64(s, 4, sp->attempt);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		/* Worded as CRI-O's reservePodName ("conflict, name %q already
		 * reserved for pod %q"; containerd: "name %q is reserved for %q"):
		 * the owner id tells kubelet's operator which sandbox holds it. */
		crisp_error(err, CRISP_ALREADY_EXISTS, 0,
			"conflict, name \"%s_%s_%s_%u\" already reserved for pod \"%s\"", sp->name,
			sp->namespace, sp->uid, sp->attempt,
			(const char *)sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
		goto fail;
	}
	sqlite3_finalize(s);
	s = NULL;
	if (rc != SQLITE_DONE) {
		sql_err(st, err, rc, "pod name lookup");
		goto fail;
	}
	for (int tries = 0;; tries++) {
		char dummy[STATE_ID_LEN + 1];
		new_id(id);
		rc = resolve(st, "pods", "pod sandbox", id, dummy, err);
		if (rc < 0)
			goto fail;
		if (rc == 0)
			break;
		if (tries > 3) {
			crisp_error(err, CRISP_INTERNAL, 0, "state: random ids collide");
			goto fail;
		}
	}
	if (prep(st, ins, &s, err) < 0)
		goto fail;
	bind_text(s, 1, id);
	bind_text(s, 2, sp->name);
	bind_text(s, 3, sp->namespace);
	bind_text(s, 4, sp->uid);
	sqlite3_bind_int64(s, 5, sp->attempt);
	sqlite3_bind_int(s, 6, POD_CREATING);
	sqlite3_bind_int64(s, 7, now_ns());
	bind_text(s, 8, labels);
	bind_text(s, 9, annots);
	bind_text(s, 10, sp->runtime_handler);
	bind_text(s, 11, sp->hostname);
	bind_text(s, 12, sp->log_directory);
	bind_text(s, 13, sp->cgroup_parent);
	if (sp->config_len > 0)
		sqlite3_bind_blob64(s, 14, sp->config, sp->config_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 14);
	sqlite3_bind_int64(s, 15, sp->flags);
	bind_text(s, 16, sp->mcs_level ? sp->mcs_level : "");
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		sql_err(st, err, rc, "insert pod");
		goto fail;
	}
	if (commit(st, err) < 0)
		return -1;
	memcpy(id_out, id, sizeof id);
	return 0;
fail:
	rollback(st);
	return -1;
}

static int row_state(struct state *st, const char *table, const char *id, int absent,
	int *state, char *pod_id, crisp_err_t *err)
{
	char sql[128];
	sqlite3_stmt *s = NULL;
	int rc;

	snprintf(sql, sizeof sql, "SELECT state, %s FROM %s WHERE id = ?1",
		strcmp(table, "pods") == 0 ? "id" : "pod_id", table);
	if (prep(st, sql, &s, err) < 0)
		return -1;
	bind_text(s, 1, id);
	rc = sqlite3_step(s);
	*state = absent;
	if (rc == SQLITE_ROW) {
		*state = sqlite3_column_int(s, 0);
		if (pod_id != NULL)
			crisp_strlcpy(pod_id, (const char *)sqlite3_column_text(s, 1),
				STATE_ID_LEN + 1);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_err(st, err, rc, "read state");
	return 0;
}

static int step_done(struct state *st, sqlite3_stmt *s, const char *what, crisp_err_t *err)
{
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return sql_err(st, err, rc, what);
	return 0;
}

static int rule_error(crisp_err_t *err, const char *what, const char *id,
	const struct state_rule *r, const char *state_name, bool absent)
{
	if (absent)
		return crisp_error(err, r->code, 0, "%s %s %s", what, id, r->phrase);
	return crisp_error(err, r->code, 0, "%s %s %s: %s", what, id, r->phrase, state_name);
}

/* Delete a pod's containers (emitting DELETED for each) and the pod. */
static int pod_delete(struct state *st, const char *id, int64_t at, crisp_err_t *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (prep(st, "SELECT id FROM containers WHERE pod_id = ?1 ORDER BY created_at, id",
		&s, err) < 0)
		return -1;
	bind_text(s, 1, id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (pend_event(st, STATE_EVT_DELETED, at, (const char *)sqlite3_column_text(s, 0),
			id, err) < 0) {
			sqlite3_finalize(s);
			return -1;
		}
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return sql_err(st, err, rc, "pod containers");
	if (prep(st, "DELETE FROM containers WHERE pod_id = ?1", &s, err) < 0)
		return -1;
	bind_text(s, 1, id);
	if (step_done(st, s, "delete containers", err) < 0)
		return -1;
	if (prep(st, "DELETE FROM pods WHERE id = ?1", &s, err) < 0)
		return -1;
	bind_text(s, 1, id);
	return step_done(st, s, "delete pod", err);
}

int state_pod_transition(struct state *st, const char *idarg, enum pod_event ev,
	const struct pod_event_data *d, crisp_err_t *err)
{
	char id[STATE_ID_LEN + 1];
	const struct state_rule *r;
	int64_t at = d && d->at_ns ? d->at_ns : now_ns();
	sqlite3_stmt *s = NULL;
	int cur, found;

	if ((unsigned)ev >= POD_EV_COUNT)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "unknown pod event %d", ev);
	if (begin(st, err) < 0)
		return -1;
	found = resolve(st, "pods", "pod sandbox", idarg, id, err);
	if (found < 0)
		goto fail;
	if (found == 0)
		crisp_strlcpy(id, nz(idarg), sizeof id);
	if (row_state(st, "pods", id, POD_ABSENT, &cur, NULL, err) < 0)
		goto fail;
	r = state_pod_rule((enum pod_state)cur, ev);
	if (r == NULL) {
		crisp_error(err, CRISP_DATA_LOSS, 0, "pod sandbox %s has invalid state %d", id, cur);
		goto fail;
	}
	switch (r->effect) {
	case STATE_EFF_ERROR:
		rule_error(err, "pod sandbox", id, r, pod_state_name(cur), cur == POD_ABSENT);
		goto fail;
	case STATE_EFF_NOP:
		rollback(st);
		return r->action;
	case STATE_EFF_DELETE:
		if (pod_delete(st, id, at, err) < 0)
			goto fail;
		break;
	case STATE_EFF_SET:
		if (ev == POD_EV_COMMIT && d != NULL) {
			cleanup_free char *ips = strv_json(d->ips, d->nips);
			if (ips == NULL) {
				crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "state: ips");
				goto fail;
			}
			if (prep(st, "UPDATE pods SET state=?2, netns_path=?3, ips=?4,"
				" infra_pid=?5, infra_start=?6 WHERE id=?1", &s, err) < 0)
				goto fail;
			bind_text(s, 3, d->netns_path);
			bind_text(s, 4, ips);
			sqlite3_bind_int64(s, 5, d->infra_pid);
			sqlite3_bind_int64(s, 6, (sqlite3_int64)d->infra_start);
		} else if (prep(st, "UPDATE pods SET state=?2 WHERE id=?1", &s, err) < 0) {
			goto fail;
		}
		bind_text(s, 1, id);
		sqlite3_bind_int(s, 2, r->next);
		if (step_done(st, s, "update pod", err) < 0)
			goto fail;
		break;
	}
	if (commit(st, err) < 0)
		return -1;
	return r->action;
fail:
	rollback(st);
	return -1;
}

int state_pod_commit(struct state *st, const char *id, const struct pod_event_data *d,
	crisp_err_t *err)
{
	return state_pod_transition(st, id, POD_EV_COMMIT, d, err) < 0 ? -1 : 0;
}

int state_pod_abort(struct state *st, const char *id, crisp_err_t *err)
{
	return state_pod_transition(st, id, POD_EV_ABORT, NULL, err) < 0 ? -1 : 0;
}

static const char pod_cols[] =
	"SELECT id, name, namespace, uid, attempt, state, created_at, labels, annotations,"
	" runtime_handler, netns_path, ips, hostname, log_directory, cgroup_parent, config,"
	" infra_pid, infra_start, flags, mcs_level FROM pods";

void state_pod_free(struct state_pod *p)
{
	if (p == NULL)
		return;
	free(p->name);
	free(p->namespace);
	free(p->uid);
	kvs_free(&p->labels);
	kvs_free(&p->annotations);
	free(p->runtime_handler);
	free(p->netns_path);
	free(p->hostname);
	free(p->log_directory);
	free(p->cgroup_parent);
	free(p->mcs_level);
	if (p->ips != NULL)
		for (size_t i = 0; i < p->nips; i++)
			free(p->ips[i]);
	free(p->ips);
	free(p->config);
	free(p);
}

static int json_strv(const char *text, char ***out, size_t *n)
{
	json_t *a = json_loads(nz(text), 0, NULL);
	size_t i;
	json_t *v;

	*out = NULL;
	*n = 0;
	if (a == NULL || !json_is_array(a)) {
		json_decref(a);
		return -1;
	}
	*out = calloc(json_array_size(a) + 1, sizeof **out);
	if (*out == NULL) {
		json_decref(a);
		return -1;
	}
	json_array_foreach(a, i, v) {
		(*out)[i] = strdup(json_is_string(v) ? json_string_value(v) : "");
		if ((*out)[i] == NULL) {
			json_decref(a);
			return -1;
		}
		*n = i + 1;
	}
	json_decref(a);
	return 0;
}

static struct state_pod *pod_row(sqlite3_stmt *s)
{
	struct state_pod *p = calloc(1, sizeof *p);
	bool oom = false;

	if (p == NULL)
		return NULL;
	crisp_strlcpy(p->id, (const char *)sqlite3_column_text(s, 0), sizeof p->id);
	p->name = col_dup(s, 1, &oom);
	p->namespace = col_dup(s, 2, &oom);
	p->uid = col_dup(s, 3, &oom);
	p->attempt = (uint32_t)sqlite3_column_int64(s, 4);
	p->state = (enum pod_state)sqlite3_column_int(s, 5);
	p->created_at = sqlite3_column_int64(s, 6);
	if (json_kvs((const char *)sqlite3_column_text(s, 7), &p->labels) < 0 ||
	    json_kvs((const char *)sqlite3_column_text(s, 8), &p->annotations) < 0)
		oom = true;
	p->runtime_handler = col_dup(s, 9, &oom);
	p->netns_path = col_dup(s, 10, &oom);
	if (json_strv((const char *)sqlite3_column_text(s, 11), &p->ips, &p->nips) < 0)
		oom = true;
	p->hostname = col_dup(s, 12, &oom);
	p->log_directory = col_dup(s, 13, &oom);
	p->cgroup_parent = col_dup(s, 14, &oom);
	p->config = col_blob(s, 15, &p->config_len, &oom);
	p->infra_pid = (pid_t)sqlite3_column_int64(s, 16);
	p->infra_start = (uint64_t)sqlite3_column_int64(s, 17);
	p->flags = (unsigned)sqlite3_column_int64(s, 18);
	p->mcs_level = col_dup(s, 19, &oom);
	if (oom) {
		state_pod_free(p);
		return NULL;
	}
	return p;
}

int state_pod_get(struct state *st, const char *idprefix, struct state_pod **out,
	crisp_err_t *err)
{
	char id[STATE_ID_LEN + 1], sql[sizeof pod_cols + 32];
	sqlite3_stmt *s = NULL;
	int rc;

	*out = NULL;
	if (state_pod_resolve(st, idprefix, id, err) < 0)
		return -1;
	snprintf(sql, sizeof sql, "%s WHERE id = ?1", pod_cols);
	if (prep(st, sql, &s, err) < 0)
		return -1;
	bind_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = pod_row(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_DONE)
		return crisp_error(err, CRISP_NOT_FOUND, 0, "pod sandbox %s not found", id);
	if (rc != SQLITE_ROW)
		return sql_err(st, err, rc, "get pod");
	if (*out == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "state: pod %s", id);
	return 0;
}

void state_pod_list_free(struct state_pod **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		state_pod_free(v[i]);
	free(v);
}

/* Append to a growing pointer vector; -1 on allocation failure. */
static int vec_push(void ***v, size_t *n, size_t *cap, void *x)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		void **p = realloc(*v, ncap * sizeof *p);
		if (p == NULL)
			return -1;
		*v = p;
		*cap = ncap;
	}
	(*v)[(*n)++] = x;
	return 0;
}

int state_pod_list(struct state *st, const struct state_pod_filter *f,
	struct state_pod ***out, size_t *n, crisp_err_t *err)
{
	char id[STATE_ID_LEN + 1] = "", sql[sizeof pod_cols + 128];
	sqlite3_stmt *s = NULL;
	void **v = NULL;
	size_t cnt = 0, cap = 0;
	int rc, state = f ? f->state : -1;

	*out = NULL;
	*n = 0;
	if (f != NULL && f->id != NULL && f->id[0] != '\0') {
		crisp_err_t e2 = CRISP_ERR_INIT;
		/* As CRI-O and containerd: an unknown or ambiguous id lists nothing. */
		if (resolve(st, "pods", "pod sandbox", f->id, id, &e2) != 1)
			return 0;
	}
	/* Rows being created are not shown unless asked for by state: the
	 * client has not been given their id yet. */
	snprintf(sql, sizeof sql, "%s WHERE (?1 = '' OR id = ?1) AND"
		" (?2 < 0 AND state != %d OR state = ?2) ORDER BY created_at, id",
		pod_cols, POD_CREATING);
	if (prep(st, sql, &s, err) < 0)
		return -1;
	bind_text(s, 1, id);
	sqlite3_bind_int(s, 2, state);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct state_pod *p = pod_row(s);
		if (p == NULL)
			goto oom;
		if (f != NULL && ((f->cri_state >= 0 && pod_state_cri(p->state) != f->cri_state) ||
		    !selector_match(&p->labels, f->selector, f->nselector))) {
			state_pod_free(p);
			continue;
		}
		if (vec_push(&v, &cnt, &cap, p) < 0) {
			state_pod_free(p);
			goto oom;
		}
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		state_pod_list_free((struct state_pod **)v, cnt);
		return sql_err(st, err, rc, "list pods");
	}
	*out = (struct state_pod **)v;
	*n = cnt;
	return 0;
oom:
	sqlite3_finalize(s);
	state_pod_list_free((struct state_pod **)v, cnt);
	return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "state: list pods");
}

/* ------------------------------------------------------------- containers */

int state_ctr_reserve(struct state *st, const struct state_ctr_spec *sp,
	char id_out[STATE_ID_LEN + 1], crisp_err_t *err)
{
	static const char ins[] =
		"INSERT INTO containers (id, pod_id, name, attempt, image_ref, image_id, state,"
		" created_at, log_path, labels, annotations, config)"
		" VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)";
	cleanup_free char *labels = NULL, *annots = NULL;
	char id[STATE_ID_LEN + 1], pod[STATE_ID_LEN + 1];
	sqlite3_stmt *s = NULL;
	int rc, pstate;

	id_out[0] = '\0';
	if (sp->name == NULL || sp->name[0] == '\0')
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "container metadata needs a name");
	if (sp->config_len > STATE_CONFIG_MAX || (sp->config_len > 0 && sp->config == NULL))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
			"container config of %zu bytes (max %u)", sp->config_len, STATE_CONFIG_MAX);
	labels = kvs_json(sp->labels, sp->nlabels);
	annots = kvs_json(sp->annotations, sp->nannotations);
	if (labels == NULL || annots == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
			"container labels/annotations cannot be encoded");
	if (begin(st, err) < 0)
		return -1;
	if (state_pod_resolve(st, sp->pod_id, pod, err) < 0)
		goto fail;
	if (row_state(st, "pods", pod, POD_ABSENT, &pstate, NULL, err) < 0)
		goto fail;
	if (pstate != POD_READY) {
		/* CRI-O: "CreateContainer failed as the sandbox was stopped";
		 * containerd: "sandbox container is not running". */
		crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "pod sandbox %s is not ready: %s",
			pod, pod_state_name(pstate));
		goto fail;
	}
	if (prep(st, "SELECT id FROM containers WHERE pod_id=?1 AND name=?2 AND attempt=?3",
		&s, err) < 0)
		goto fail;
	bind_text(s, 1, pod);
	bind_text(s, 2, sp->name);
	sqlite3_bind_int64(s, 3, sp->attempt);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		crisp_error(err, CRISP_ALREADY_EXISTS, 0,
			"conflict, name \"%s/%s_%u\" already reserved for ctr \"%s\"", pod, sp->name,
			sp->attempt, (const char *)sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
		goto fail;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		sql_err(st, err, rc, "container name lookup");
		goto fail;
	}
	for (int tries = 0;; tries++) {
		char dummy[STATE_ID_LEN + 1];
		new_id(id);
		rc = resolve(st, "containers", "container", id, dummy, err);
		if (rc < 0)
			goto fail;
		/* A container id never equals a pod id either (crictl inspect
		 * accepts both kinds). */
		if (rc == 0)
			rc = resolve(st, "pods", "pod sandbox", id, dummy, err);
		if (rc < 0)
			goto fail;
		if (rc == 0)
			break;
		if (tries > 3) {
			crisp_error(err, CRISP_INTERNAL, 0, "state: random ids collide");
			goto fail;
		}
	}
	if (prep(st, ins, &s, err) < 0)
		goto fail;
	bind_text(s, 1, id);
	bind_text(s, 2, pod);
	bind_text(s, 3, sp->name);
	sqlite3_bind_int64(s, 4, sp->attempt);
	bind_text(s, 5, sp->image_ref);
	bind_text(s, 6, sp->image_id);
	sqlite3_bind_int(s, 7, CTR_CREATING);
	sqlite3_bind_int64(s, 8, now_ns());
	bind_text(s, 9, sp->log_path);
	bind_text(s, 10, labels);
	bind_text(s, 11, annots);
	if (sp->config_len > 0)
		sqlite3_bind_blob64(s, 12, sp->config, sp->config_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 12);
	if (step_done(st, s, "insert container", err) < 0)
		goto fail;
	/* CREATING is answered to nobody: the create's own commit (or its
	 * rollback) follows.  What it leads to before that commit is undone
	 * whether or not an OS crash lost the row: pins by IMAGE_PINS_SYNC,
	 * holds by layers_reconcile, directories by the start's sweep. */
	durable(st, false);
	rc = commit(st, err);
	durable(st, true);
	if (rc < 0)
		return -1;
	memcpy(id_out, id, sizeof id);
	return 0;
fail:
	rollback(st);
	return -1;
}

static const char *exit_reason(enum ctr_event ev, const struct ctr_event_data *d,
	int32_t code)
{
	if (d != NULL && d->reason != NULL && d->reason[0] != '\0')
		return d->reason;
	if (ev == CTR_EV_START_FAILED)
		return "StartError";
	return code == 0 ? "Completed" : "Error";
}

int state_container_transition(struct state *st, const char *idarg, enum ctr_event ev,
	const struct ctr_event_data *d, crisp_err_t *err)
{
	char id[STATE_ID_LEN + 1], pod[STATE_ID_LEN + 1] = "";
	const struct state_rule *r;
	int64_t at = d && d->at_ns ? d->at_ns : now_ns();
	sqlite3_stmt *s = NULL;
	int cur, found;

	if ((unsigned)ev >= CTR_EV_COUNT)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "unknown container event %d", ev);
	if (begin(st, err) < 0)
		return -1;
	found = resolve(st, "containers", "container", idarg, id, err);
	if (found < 0)
		goto fail;
	if (found == 0)
		crisp_strlcpy(id, nz(idarg), sizeof id);
	if (row_state(st, "containers", id, CTR_ABSENT, &cur, pod, err) < 0)
		goto fail;
	r = state_ctr_rule((enum ctr_state)cur, ev);
	if (r == NULL) {
		crisp_error(err, CRISP_DATA_LOSS, 0, "container %s has invalid state %d", id, cur);
		goto fail;
	}
	switch (r->effect) {
	case STATE_EFF_ERROR:
		rule_error(err, "container", id, r, ctr_state_name(cur), cur == CTR_ABSENT);
		goto fail;
	case STATE_EFF_NOP:
		rollback(st);
		return r->action;
	case STATE_EFF_DELETE:
		if (prep(st, "DELETE FROM containers WHERE id = ?1", &s, err) < 0)
			goto fail;
		bind_text(s, 1, id);
		if (step_done(st, s, "delete container", err) < 0)
			goto fail;
		break;
	case STATE_EFF_SET:
		if (ev == CTR_EV_COMMIT) {
			if (prep(st, "UPDATE containers SET state=?2, pid=?3, pid_start=?4,"
				" monitor_pid=?5, monitor_start=?6 WHERE id=?1", &s, err) < 0)
				goto fail;
			sqlite3_bind_int64(s, 3, d ? d->pid : 0);
			sqlite3_bind_int64(s, 4, d ? (sqlite3_int64)d->pid_start : 0);
			sqlite3_bind_int64(s, 5, d ? d->monitor_pid : 0);
			sqlite3_bind_int64(s, 6, d ? (sqlite3_int64)d->monitor_start : 0);
		} else if (ev == CTR_EV_STARTED) {
			/* A monitor pid given here (re-adopted after recovery) replaces
			 * the recorded one; 0 keeps it. */
			if (prep(st, "UPDATE containers SET state=?2, pid=?3, pid_start=?4,"
				" started_at = CASE WHEN started_at = 0 THEN ?5 ELSE started_at END,"
				" monitor_pid = CASE WHEN ?6 != 0 THEN ?6 ELSE monitor_pid END,"
				" monitor_start = CASE WHEN ?6 != 0 THEN ?7 ELSE monitor_start END"
				" WHERE id=?1", &s, err) < 0)
				goto fail;
			sqlite3_bind_int64(s, 3, d ? d->pid : 0);
			sqlite3_bind_int64(s, 4, d ? (sqlite3_int64)d->pid_start : 0);
			sqlite3_bind_int64(s, 5, at);
			sqlite3_bind_int64(s, 6, d ? d->monitor_pid : 0);
			sqlite3_bind_int64(s, 7, d ? (sqlite3_int64)d->monitor_start : 0);
		} else if (ev == CTR_EV_EXITED || ev == CTR_EV_START_FAILED) {
			int32_t code = d ? d->exit_code : 0;
			if (ev == CTR_EV_START_FAILED && (d == NULL || d->exit_code == 0))
				code = 128;
			if (prep(st, "UPDATE containers SET state=?2, finished_at=?3, exit_code=?4,"
				" reason=?5, message=?6 WHERE id=?1", &s, err) < 0)
				goto fail;
			sqlite3_bind_int64(s, 3, at);
			sqlite3_bind_int(s, 4, code);
			bind_text(s, 5, exit_reason(ev, d, code));
			bind_text(s, 6, d ? d->message : NULL);
		} else if (prep(st, "UPDATE containers SET state=?2 WHERE id=?1", &s, err) < 0) {
			goto fail;
		}
		bind_text(s, 1, id);
		sqlite3_bind_int(s, 2, r->next);
		if (step_done(st, s, "update container", err) < 0)
			goto fail;
		break;
	}
	if (pend_event(st, r->evtype, at, id, pod, err) < 0)
		goto fail;
	/* STARTING is answered to nobody: STARTED (or START_FAILED) follows */
	bool relaxed = ev == CTR_EV_START && r->effect == STATE_EFF_SET;
	if (relaxed)
		durable(st, false);
	int rc = commit(st, err);
	if (relaxed)
		durable(st, true);
	if (rc < 0)
		return -1;
	return r->action;
fail:
	rollback(st);
	return -1;
}

int state_ctr_commit(struct state *st, const char *id, const struct ctr_event_data *d,
	crisp_err_t *err)
{
	return state_container_transition(st, id, CTR_EV_COMMIT, d, err) < 0 ? -1 : 0;
}

int state_ctr_abort(struct state *st, const char *id, crisp_err_t *err)
{
	return state_container_transition(st, id, CTR_EV_ABORT, NULL, err) < 0 ? -1 : 0;
}

/* The image a container runs, once imaged resolved it (CREATING only):
 * flushed with the COMMIT that ends the create. */
int state_ctr_set_image(struct state *st, const char *id, const char *image_id, const void *rec, size_t rec_len,
			crisp_err_t *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (prep(st, "UPDATE containers SET image_id = ?1, image_rec = ?4 WHERE id = ?2 AND state = ?3", &s, err) < 0)
		return -1;
	sqlite3_bind_text(s, 1, image_id ? image_id : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 3, CTR_CREATING);
	if (rec != NULL)
		sqlite3_bind_blob(s, 4, rec, (int)rec_len, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, 4);
	durable(st, false);
	rc = sqlite3_step(s);
	durable(st, true);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return sql_err(st, err, rc, "set image");
	if (sqlite3_changes(st->db) != 1)
		return crisp_error(err, CRISP_NOT_FOUND, 0, "container %s is not being created", id);
	return 0;
}

int state_ctr_image_rec(struct state *st, const char *id, void **rec, size_t *len, crisp_err_t *err)
{
	sqlite3_stmt *s = NULL;
	bool oom = false;
	int rc;

	*rec = NULL;
	*len = 0;
	if (prep(st, "SELECT image_rec FROM containers WHERE id = ?1", &s, err) < 0)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_BLOB)
		*rec = col_blob(s, 0, len, &oom);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_err(st, err, rc, "image record");
	if (oom)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "state: image record");
	return *rec != NULL ? 1 : 0;
}

int state_ctr_cgroup_parent(struct state *st, const char *id, char *out, size_t n, crisp_err_t *err)
{
	sqlite3_stmt *s = NULL;
	int rc, found = 0;

	if (prep(st, "SELECT p.cgroup_parent FROM containers c JOIN pods p ON p.id = c.pod_id WHERE c.id = ?1", &s,
		 err) < 0)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(s, 0);
		if (strlen(v ? v : "") >= n) {
			sqlite3_finalize(s);
			return crisp_error(err, CRISP_INTERNAL, ENAMETOOLONG, "state: cgroup parent");
		}
		crisp_strlcpy(out, v ? v : "", n);
		found = 1;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_err(st, err, rc, "cgroup parent");
	return found;
}

static const char ctr_cols[] =
	"SELECT id, pod_id, name, attempt, image_ref, image_id, state, created_at, started_at,"
	" finished_at, exit_code, reason, message, log_path, pid, pid_start, monitor_pid,"
	" monitor_start, labels, annotations, config FROM containers";

void state_ctr_free(struct state_ctr *c)
{
	if (c == NULL)
		return;
	free(c->name);
	free(c->image_ref);
	free(c->image_id);
	free(c->reason);
	free(c->message);
	free(c->log_path);
	kvs_free(&c->labels);
	kvs_free(&c->annotations);
	free(c->config);
	free(c);
}

static struct state_ctr *ctr_row(sqlite3_stmt *s)
{
	struct state_ctr *c = calloc(1, sizeof *c);
	bool oom = false;

	if (c == NULL)
		return NULL;
	crisp_strlcpy(c->id, (const char *)sqlite3_column_text(s, 0), sizeof c->id);
	crisp_strlcpy(c->pod_id, (const char *)sqlite3_column_text(s, 1), sizeof c->pod_id);
	c->name = col_dup(s, 2, &oom);
	c->attempt = (uint32_t)sqlite3_column_int64(s, 3);
	c->image_ref = col_dup(s, 4, &oom);
	c->image_id = col_dup(s, 5, &oom);
	c->state = (enum ctr_state)sqlite3_column_int(s, 6);
	c->created_at = sqlite3_column_int64(s, 7);
	c->started_at = sqlite3_column_int64(s, 8);
	c->finished_at = sqlite3_column_int64(s, 9);
	c->exit_code = sqlite3_column_int(s, 10);
	c->reason = col_dup(s, 11, &oom);
	c->message = col_dup(s, 12, &oom);
	c->log_path = col_dup(s, 13, &oom);
	c->pid = (pid_t)sqlite3_column_int64(s, 14);
	c->pid_start = (uint64_t)sqlite3_column_int64(s, 15);
	c->monitor_pid = (pid_t)sqlite3_column_int64(s, 16);
	c->monitor_start = (uint64_t)sqlite3_column_int64(s, 17);
	if (json_kvs((const char *)sqlite3_column_text(s, 18), &c->labels) < 0 ||
	    json_kvs((const char *)sqlite3_column_text(s, 19), &c->annotations) < 0)
		oom = true;
	c->config = col_blob(s, 20, &c->config_len, &oom);
	if (oom) {
		state_ctr_free(c);
		return NULL;
	}
	return c;
}

int state_ctr_get(struct state *st, const char *idprefix, struct state_ctr **out,
	crisp_err_t *err)
{
	char id[STATE_ID_LEN + 1], sql[sizeof ctr_cols + 32];
	sqlite3_stmt *s = NULL;
	int rc;

	*out = NULL;
	if (state_ctr_resolve(st, idprefix, id, err) < 0)
		return -1;
	snprintf(sql, sizeof sql, "%s WHERE id = ?1", ctr_cols);
	if (prep(st, sql, &s, err) < 0)
		return -1;
	bind_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = ctr_row(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_DONE)
		return crisp_error(err, CRISP_NOT_FOUND, 0, "container %s not found", id);
	if (rc != SQLITE_ROW)
		return sql_err(st, err, rc, "get container");
	if (*out == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "state: container %s", id);
	return 0;
}

void state_ctr_list_free(struct state_ctr **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		state_ctr_free(v[i]);
	free(v);
}

int state_ctr_list(struct state *st, const struct state_ctr_filter *f,
	struct state_ctr ***out, size_t *n, crisp_err_t *err)
{
	char id[STATE_ID_LEN + 1] = "", pod[STATE_ID_LEN + 1] = "";
	char sql[sizeof ctr_cols + 160];
	sqlite3_stmt *s = NULL;
	void **v = NULL;
	size_t cnt = 0, cap = 0;
	int rc, state = f ? f->state : -1;
	crisp_err_t e2 = CRISP_ERR_INIT;

	*out = NULL;
	*n = 0;
	/* As CRI-O and containerd: an unknown or ambiguous id lists nothing. */
	if (f != NULL && f->id != NULL && f->id[0] != '\0' &&
	    resolve(st, "containers", "container", f->id, id, &e2) != 1)
		return 0;
	if (f != NULL && f->pod_id != NULL && f->pod_id[0] != '\0' &&
	    resolve(st, "pods", "pod sandbox", f->pod_id, pod, &e2) != 1)
		return 0;
	snprintf(sql, sizeof sql, "%s WHERE (?1 = '' OR id = ?1) AND (?3 = '' OR pod_id = ?3)"
		" AND (?2 < 0 AND state != %d OR state = ?2) ORDER BY created_at, id",
		ctr_cols, CTR_CREATING);
	if (prep(st, sql, &s, err) < 0)
		return -1;
	bind_text(s, 1, id);
	sqlite3_bind_int(s, 2, state);
	bind_text(s, 3, pod);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct state_ctr *c = ctr_row(s);
		if (c == NULL)
			goto oom;
		if (f != NULL && ((f->cri_state >= 0 && ctr_state_cri(c->state) != f->cri_state) ||
		    !selector_match(&c->labels, f->selector, f->nselector))) {
			state_ctr_free(c);
			continue;
		}
		if (vec_push(&v, &cnt, &cap, c) < 0) {
			state_ctr_free(c);
			goto oom;
		}
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		state_ctr_list_free((struct state_ctr **)v, cnt);
		return sql_err(st, err, rc, "list containers");
	}
	*out = (struct state_ctr **)v;
	*n = cnt;
	return 0;
oom:
	sqlite3_finalize(s);
	state_ctr_list_free((struct state_ctr **)v, cnt);
	return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "state: list containers");
}

/* ------------------------------------------------------------- events */

size_t state_events_take(struct state *st, struct state_event *out, size_t max)
{
	size_t k = 0;

	while (k < max && st->ev_count > 0) {
		out[k++] = st->ev[st->ev_head];
		st->ev_head = (st->ev_head + 1) % st->ev_cap;
		st->ev_count--;
	}
	return k;
}

size_t state_events_pending(const struct state *st)
{
	return st->ev_count;
}

uint64_t state_events_dropped(const struct state *st)
{
	return st->ev_dropped;
}
