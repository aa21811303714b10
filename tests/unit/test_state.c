/*
 * Unit tests of execd/state: two-phase creates, name reservations, the whole
 * pod and container lifecycle tables (checked cell by cell against a second
 * copy of the truth written here, in a different shape: the end state of
 * each cell rather than its effect), lookups and list filters, the events
 * ring, and crash consistency (children that die before COMMIT, one by
 * _exit and one by SIGKILL in the middle of an 8 MiB write).  Every test
 * works in its own temp dir, removed by the teardown even when the test
 * fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "common/err.h"
#include "execd/state.h"

struct fx {
	char dir[PATH_MAX];
	struct state *st;
};

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

static int setup(void **ctx)
{
	struct fx *fx = calloc(1, sizeof *fx);
	crisp_err_t err = CRISP_ERR_INIT;

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof fx->dir, "/tmp/crisp-test-state-XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	*ctx = fx;
	if (state_open(fx->dir, 0, &fx->st, &err) < 0) {
		print_error("state_open: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int teardown(void **ctx)
{
	struct fx *fx = *ctx;

	if (fx == NULL)
		return 0;
	state_close(fx->st);
	nftw(fx->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* ------------------------------------------------------------ helpers */

static const struct state_kv pod_labels[] = { { "app", "web" }, { "tier", "front" } };

static int mkpod(struct state *st, const char *name, uint32_t attempt, const struct state_kv *l,
	size_t nl, char id[STATE_ID_LEN + 1], crisp_err_t *err)
{
	static const uint8_t cfg[] = { 0x0a, 0x03, 'a', 'b', 'c' };
	struct state_pod_spec sp = {
		.name = name, .namespace = "default", .uid = "uid-1", .attempt = attempt,
		.labels = l, .nlabels = nl, .runtime_handler = "", .hostname = name,
		.log_directory = "/var/log/pods/x", .cgroup_parent = "/kubepods",
		.flags = STATE_POD_HOST_IPC, .config = cfg, .config_len = sizeof cfg,
	};
	return state_pod_reserve(st, &sp, id, err);
}

static void ready_pod(struct state *st, const char *name, const struct state_kv *l, size_t nl,
	char id[STATE_ID_LEN + 1])
{
	crisp_err_t err = CRISP_ERR_INIT;
	const char *ips[] = { "10.0.0.5", "fd00::5" };
	struct pod_event_data d = { .netns_path = "/run/netns/x", .ips = ips, .nips = 2,
		.infra_pid = 4242, .infra_start = 777 };

	if (mkpod(st, name, 0, l, nl, id, &err) < 0)
		fail_msg("mkpod %s: %s", name, err.msg);
	if (state_pod_commit(st, id, &d, &err) < 0)
		fail_msg("commit %s: %s", name, err.msg);
}

static int mkctr(struct state *st, const char *pod, const char *name, uint32_t attempt,
	const struct state_kv *l, size_t nl, char id[STATE_ID_LEN + 1], crisp_err_t *err)
{
	static const uint8_t cfg[] = { 1, 2, 3, 4 };
	struct state_ctr_spec sp = {
		.pod_id = pod, .name = name, .attempt = attempt, .image_ref = "busybox:latest",
		.image_id = "sha256:abcd", .log_path = "c/0.log", .labels = l, .nlabels = nl,
		.config = cfg, .config_len = sizeof cfg,
	};
	return state_ctr_reserve(st, &sp, id, err);
}

static int ctr_state_of(struct state *st, const char *id)
{
	struct state_ctr *c = NULL;
	crisp_err_t err = CRISP_ERR_INIT;
	int s;

	if (state_ctr_get(st, id, &c, &err) < 0) {
		assert_int_equal(err.code, CRISP_NOT_FOUND);
		return CTR_ABSENT;
	}
	s = (int)c->state;
	state_ctr_free(c);
	return s;
}

static int pod_state_of(struct state *st, const char *id)
{
	struct state_pod *p = NULL;
	crisp_err_t err = CRISP_ERR_INIT;
	int s;

	if (state_pod_get(st, id, &p, &err) < 0) {
		assert_int_equal(err.code, CRISP_NOT_FOUND);
		return POD_ABSENT;
	}
	s = (int)p->state;
	state_pod_free(p);
	return s;
}

static void drain(struct state *st)
{
	struct state_event e[64];
	while (state_events_take(st, e, 64) > 0)
		;
}

static void db_integrity_ok(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "ok");
	sqlite3_finalize(s);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &s, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_DONE);
	sqlite3_finalize(s);
	sqlite3_close(db);
}

static const char *db_path(const struct fx *fx, char *buf, size_t len)
{
	snprintf(buf, len, "%s/execd/state.db", fx->dir);
	return buf;
}

/* The first n characters of id. */
static void prefix_of(char *dst, const char *id, size_t n)
{
	memcpy(dst, id, n);
	dst[n] = '\0';
}

#define FAKE_ID "00000000000000000000000000000000000000000000000000000000000000ff"

/* ------------------------------------------------------------ tests */

static void test_open_modes(void **ctx)
{
	struct fx *fx = *ctx;
	char p[PATH_MAX + 16];
	struct stat sb;

	snprintf(p, sizeof p, "%s/execd", fx->dir);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	assert_int_equal(stat(state_db_path(fx->st), &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
}

static void test_pod_reserve_commit_abort(void **ctx)
{
	struct fx *fx = *ctx;
	crisp_err_t err = CRISP_ERR_INIT;
	char a[STATE_ID_LEN + 1], b[STATE_ID_LEN + 1];
	struct state_pod *p = NULL, **v = NULL;
	size_t n;
	struct state_pod_filter fcreating = { .state = POD_CREATING, .cri_state = -1 };

	assert_int_equal(mkpod(fx->st, "web", 0, pod_labels, 2, a, &err), 0);
	assert_int_equal(strlen(a), 64);
	assert_int_equal(strspn(a, "0123456789abcdef"), 64);
	assert_int_equal(pod_state_of(fx->st, a), POD_CREATING);
	/* not listed until committed, except when asked for by state */
	assert_int_equal(state_pod_list(fx->st, NULL, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	state_pod_list_free(v, n);
	assert_int_equal(state_pod_list(fx->st, &fcreating, &v, &n, &err), 0);
	assert_int_equal(n, 1);
	state_pod_list_free(v, n);

	const char *ips[] = { "10.0.0.5", "fd00::5" };
	struct pod_event_data d = { .netns_path = "/run/netns/x", .ips = ips, .nips = 2,
		.infra_pid = 4242, .infra_start = 777 };
	assert_int_equal(state_pod_commit(fx->st, a, &d, &err), 0);
	assert_int_equal(state_pod_get(fx->st, a, &p, &err), 0);
	assert_int_equal(p->state, POD_READY);
	assert_string_equal(p->name, "web");
	assert_string_equal(p->namespace, "default");
	assert_string_equal(p->uid, "uid-1");
	assert_string_equal(p->netns_path, "/run/netns/x");
	assert_int_equal(p->nips, 2);
	assert_string_equal(p->ips[0], "10.0.0.5");
	assert_string_equal(p->ips[1], "fd00::5");
	assert_int_equal(p->infra_pid, 4242);
	assert_int_equal(p->infra_start, 777);
	assert_int_equal(p->flags, STATE_POD_HOST_IPC);
	assert_int_equal(p->labels.n, 2);
	assert_int_equal(p->config_len, 5);
	assert_memory_equal(p->config, "\x0a\x03" "abc", 5);
	assert_string_equal(p->cgroup_parent, "/kubepods");
	assert_true(p->created_at > 1600000000LL * 1000000000LL);
	state_pod_free(p);
	/* commit twice is a bug in execd: refused */
	assert_int_equal(state_pod_commit(fx->st, a, &d, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);

	assert_int_equal(mkpod(fx->st, "db", 0, NULL, 0, b, &err), 0);
	assert_int_equal(state_pod_abort(fx->st, b, &err), 0);
	assert_int_equal(pod_state_of(fx->st, b), POD_ABSENT);
	assert_int_equal(state_pod_abort(fx->st, b, &err), 0); /* idempotent */
	/* the name is free again */
	assert_int_equal(mkpod(fx->st, "db", 0, NULL, 0, b, &err), 0);
}

static void test_names(void **ctx)
{
	struct fx *fx = *ctx;
	crisp_err_t err = CRISP_ERR_INIT;
	char a[STATE_ID_LEN + 1], b[STATE_ID_LEN + 1], c[STATE_ID_LEN + 1];
	char x[STATE_ID_LEN + 1], y[STATE_ID_LEN + 1];

	ready_pod(fx->st, "web", NULL, 0, a);
	assert_int_equal(mkpod(fx->st, "web", 0, NULL, 0, b, &err), -1);
	assert_int_equal(err.code, CRISP_ALREADY_EXISTS);
	assert_non_null(strstr(err.msg, a));
	assert_non_null(strstr(err.msg, "web_default_uid-1_0"));
	assert_string_equal(b, "");
	/* a CREATING reservation holds the name too */
	assert_int_equal(mkpod(fx->st, "web", 1, NULL, 0, b, &err), 0);
	assert_int_equal(mkpod(fx->st, "web", 1, NULL, 0, c, &err), -1);
	assert_int_equal(err.code, CRISP_ALREADY_EXISTS);
	assert_non_null(strstr(err.msg, b));

	/* containers */
	assert_int_equal(mkctr(fx->st, a, "app", 0, NULL, 0, x, &err), 0);
	assert_int_equal(mkctr(fx->st, a, "app", 0, NULL, 0, y, &err), -1);
	assert_int_equal(err.code, CRISP_ALREADY_EXISTS);
	assert_non_null(strstr(err.msg, x));
	assert_int_equal(mkctr(fx->st, a, "app", 1, NULL, 0, y, &err), 0);
	/* the same name in another pod is fine */
	ready_pod(fx->st, "other", NULL, 0, c);
	assert_int_equal(mkctr(fx->st, c, "app", 0, NULL, 0, y, &err), 0);
	/* a pod that is not READY takes no containers */
	assert_int_equal(mkctr(fx->st, b, "app", 0, NULL, 0, y, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	assert_int_equal(state_pod_transition(fx->st, c, POD_EV_STOP, NULL, &err), POD_DO_STOP);
	assert_int_equal(mkctr(fx->st, c, "late", 0, NULL, 0, y, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	assert_int_equal(mkctr(fx->st, FAKE_ID, "app", 0, NULL, 0, y, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	/* and the name is freed by abort */
	assert_int_equal(state_ctr_abort(fx->st, x, &err), 0);
	assert_int_equal(mkctr(fx->st, a, "app", 0, NULL, 0, y, &err), 0);
	/* bad input */
	assert_int_equal(mkpod(fx->st, "", 0, NULL, 0, b, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	struct state_pod_spec big = { .name = "big", .namespace = "n", .uid = "u",
		.config = "", .config_len = STATE_CONFIG_MAX + 1 };
	assert_int_equal(state_pod_reserve(fx->st, &big, b, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
}

/*
 * The second copy of the container table: for each (state, event), the
 * code returned, and on success the action and the state afterwards and
 * the event emitted.
 */
struct want {
	int code;   /* CRISP_OK or the error */
	int action; /* on success */
	int after;  /* state afterwards (CTR_ABSENT when deleted) */
	int evt;
};

#define WANT_OK(a, s, e) { CRISP_OK, a, s, e }
#define W_FP { CRISP_FAILED_PRECONDITION, 0, -1, -1 }
#define W_NF { CRISP_NOT_FOUND, 0, -1, -1 }
#define NOEV STATE_EVT_NONE

static const struct want ctr_want[CTR_STATE_COUNT][CTR_EV_COUNT] = {
	/* COMMIT, ABORT, START, STARTED, START_FAILED, STOP, EXITED, REMOVE, REMOVED, MONITOR_LOST */
	[CTR_ABSENT] = { W_NF, WANT_OK(CTR_DO_NOTHING, CTR_ABSENT, NOEV), W_NF, W_NF, W_NF, W_NF,
		W_NF, WANT_OK(CTR_DO_NOTHING, CTR_ABSENT, NOEV),
		WANT_OK(CTR_DO_NOTHING, CTR_ABSENT, NOEV), W_NF },
	[CTR_CREATING] = { WANT_OK(CTR_DO_NOTHING, CTR_CREATED, STATE_EVT_CREATED),
		WANT_OK(CTR_DO_NOTHING, CTR_ABSENT, NOEV), W_FP, W_FP, W_FP, W_FP, W_FP, W_FP, W_FP,
		WANT_OK(CTR_DO_NOTHING, CTR_CREATING, NOEV) },
	[CTR_CREATED] = { W_FP, W_FP, WANT_OK(CTR_DO_LAUNCH, CTR_STARTING, NOEV), W_FP, W_FP,
		WANT_OK(CTR_DO_NOTHING, CTR_CREATED, NOEV),
		WANT_OK(CTR_DO_NOTHING, CTR_EXITED, STATE_EVT_STOPPED),
		WANT_OK(CTR_DO_CLEANUP, CTR_REMOVING, NOEV), W_FP,
		WANT_OK(CTR_DO_NOTHING, CTR_UNKNOWN, NOEV) },
	[CTR_STARTING] = { W_FP, W_FP, W_FP,
		WANT_OK(CTR_DO_NOTHING, CTR_RUNNING, STATE_EVT_STARTED),
		WANT_OK(CTR_DO_NOTHING, CTR_EXITED, STATE_EVT_STOPPED),
		WANT_OK(CTR_DO_KILL, CTR_STOPPING, NOEV),
		WANT_OK(CTR_DO_NOTHING, CTR_EXITED, STATE_EVT_STOPPED),
		WANT_OK(CTR_DO_KILL_CLEANUP, CTR_REMOVING, NOEV), W_FP,
		WANT_OK(CTR_DO_NOTHING, CTR_UNKNOWN, NOEV) },
	[CTR_RUNNING] = { W_FP, W_FP, W_FP, WANT_OK(CTR_DO_NOTHING, CTR_RUNNING, NOEV), W_FP,
		WANT_OK(CTR_DO_KILL, CTR_STOPPING, NOEV),
		WANT_OK(CTR_DO_NOTHING, CTR_EXITED, STATE_EVT_STOPPED),
		WANT_OK(CTR_DO_KILL_CLEANUP, CTR_REMOVING, NOEV), W_FP,
		WANT_OK(CTR_DO_NOTHING, CTR_UNKNOWN, NOEV) },
	[CTR_STOPPING] = { W_FP, W_FP, W_FP, WANT_OK(CTR_DO_KILL, CTR_STOPPING, NOEV),
		WANT_OK(CTR_DO_NOTHING, CTR_EXITED, STATE_EVT_STOPPED),
		WANT_OK(CTR_DO_KILL, CTR_STOPPING, NOEV),
		WANT_OK(CTR_DO_NOTHING, CTR_EXITED, STATE_EVT_STOPPED),
		WANT_OK(CTR_DO_KILL_CLEANUP, CTR_REMOVING, NOEV), W_FP,
		WANT_OK(CTR_DO_NOTHING, CTR_UNKNOWN, NOEV) },
	[CTR_EXITED] = { W_FP, W_FP, W_FP, W_FP, W_FP,
		WANT_OK(CTR_DO_NOTHING, CTR_EXITED, NOEV), WANT_OK(CTR_DO_NOTHING, CTR_EXITED, NOEV),
		WANT_OK(CTR_DO_CLEANUP, CTR_REMOVING, NOEV), W_FP,
		WANT_OK(CTR_DO_NOTHING, CTR_EXITED, NOEV) },
	[CTR_UNKNOWN] = { W_FP, W_FP, W_FP, WANT_OK(CTR_DO_NOTHING, CTR_RUNNING, NOEV), W_FP,
		WANT_OK(CTR_DO_KILL, CTR_STOPPING, NOEV),
		WANT_OK(CTR_DO_NOTHING, CTR_EXITED, STATE_EVT_STOPPED),
		WANT_OK(CTR_DO_KILL_CLEANUP, CTR_REMOVING, NOEV), W_FP,
		WANT_OK(CTR_DO_NOTHING, CTR_UNKNOWN, NOEV) },
	[CTR_REMOVING] = { W_FP, W_FP, W_FP, W_FP, W_FP,
		WANT_OK(CTR_DO_NOTHING, CTR_REMOVING, NOEV), WANT_OK(CTR_DO_NOTHING, CTR_REMOVING, NOEV),
		WANT_OK(CTR_DO_KILL_CLEANUP, CTR_REMOVING, NOEV),
		WANT_OK(CTR_DO_NOTHING, CTR_ABSENT, STATE_EVT_DELETED),
		WANT_OK(CTR_DO_NOTHING, CTR_REMOVING, NOEV) },
};

/* Events that lead from a fresh reservation to each state. */
static const int ctr_path[CTR_STATE_COUNT][4] = {
	[CTR_ABSENT] = { -1 },
	[CTR_CREATING] = { -1 },
	[CTR_CREATED] = { CTR_EV_COMMIT, -1 },
	[CTR_STARTING] = { CTR_EV_COMMIT, CTR_EV_START, -1 },
	[CTR_RUNNING] = { CTR_EV_COMMIT, CTR_EV_START, CTR_EV_STARTED, -1 },
	[CTR_STOPPING] = { CTR_EV_COMMIT, CTR_EV_START, CTR_EV_STARTED, CTR_EV_STOP },
	[CTR_EXITED] = { CTR_EV_COMMIT, CTR_EV_START, CTR_EV_STARTED, CTR_EV_EXITED },
	[CTR_UNKNOWN] = { CTR_EV_COMMIT, CTR_EV_START, CTR_EV_STARTED, CTR_EV_MONITOR_LOST },
	[CTR_REMOVING] = { CTR_EV_COMMIT, CTR_EV_START, CTR_EV_STOP, CTR_EV_REMOVE },
};

static void test_ctr_table(void **ctx)
{
	struct fx *fx = *ctx;
	crisp_err_t err = CRISP_ERR_INIT;
	char pod[STATE_ID_LEN + 1], id[STATE_ID_LEN + 1], name[32];
	struct ctr_event_data d = { .pid = 100, .pid_start = 5, .monitor_pid = 99,
		.monitor_start = 4, .exit_code = 3 };
	int n = 0;

	ready_pod(fx->st, "p", NULL, 0, pod);
	for (int s = 0; s < CTR_STATE_COUNT; s++) {
		for (int e = 0; e < CTR_EV_COUNT; e++) {
			const struct want *w = &ctr_want[s][e];
			struct state_event evs[4];
			int rc;

			if (s == CTR_ABSENT) {
				snprintf(id, sizeof id, "%s", FAKE_ID);
			} else {
				snprintf(name, sizeof name, "c%d_%d", s, e);
				assert_int_equal(mkctr(fx->st, pod, name, 0, NULL, 0, id, &err), 0);
				for (int k = 0; k < 4 && ctr_path[s][k] >= 0; k++) {
					if (k > 0 && ctr_path[s][k] == 0)
						break;
					rc = state_container_transition(fx->st, id,
						(enum ctr_event)ctr_path[s][k], &d, &err);
					if (rc < 0)
						fail_msg("path to %s: %s", ctr_state_name(s), err.msg);
				}
			}
			assert_int_equal(ctr_state_of(fx->st, id), s);
			drain(fx->st);
			crisp_error_clear(&err);
			rc = state_container_transition(fx->st, id, (enum ctr_event)e, &d, &err);
			if (w->code != CRISP_OK) {
				if (rc != -1 || err.code != w->code)
					fail_msg("%s x %s: want %s, got rc %d %s (%s)", ctr_state_name(s),
						ctr_event_name(e), crisp_code_name(w->code), rc,
						crisp_code_name(err.code), err.msg);
				assert_non_null(strstr(err.msg, id));
				assert_int_equal(ctr_state_of(fx->st, id), s);
				assert_int_equal(state_events_pending(fx->st), 0);
			} else {
				if (rc != w->action)
					fail_msg("%s x %s: want action %d, got %d (%s)", ctr_state_name(s),
						ctr_event_name(e), w->action, rc, err.msg);
				int after = ctr_state_of(fx->st, id);
				if (after != w->after)
					fail_msg("%s x %s: want %s, got %s", ctr_state_name(s),
						ctr_event_name(e), ctr_state_name(w->after),
						ctr_state_name(after));
				size_t k = state_events_take(fx->st, evs, 4);
				if (w->evt == NOEV) {
					assert_int_equal(k, 0);
				} else {
					assert_int_equal(k, 1);
					assert_int_equal(evs[0].type, w->evt);
					assert_string_equal(evs[0].ctr_id, id);
					assert_string_equal(evs[0].pod_id, pod);
				}
			}
			/* and the exported table agrees */
			const struct state_rule *r = state_ctr_rule((enum ctr_state)s,
				(enum ctr_event)e);
			assert_non_null(r);
			assert_int_equal(r->effect == STATE_EFF_ERROR ? r->code : CRISP_OK, w->code);
			n++;
		}
	}
	assert_int_equal(n, CTR_STATE_COUNT * CTR_EV_COUNT);
	assert_null(state_ctr_rule(CTR_STATE_COUNT, 0));
}

static const struct want pod_want[POD_STATE_COUNT][POD_EV_COUNT] = {
	/* COMMIT, ABORT, STOP, STOPPED, INFRA_EXITED, REMOVE, REMOVED */
	[POD_ABSENT] = { W_NF, WANT_OK(POD_DO_NOTHING, POD_ABSENT, NOEV),
		WANT_OK(POD_DO_NOTHING, POD_ABSENT, NOEV), W_NF, W_NF,
		WANT_OK(POD_DO_NOTHING, POD_ABSENT, NOEV), WANT_OK(POD_DO_NOTHING, POD_ABSENT, NOEV) },
	[POD_CREATING] = { WANT_OK(POD_DO_NOTHING, POD_READY, NOEV),
		WANT_OK(POD_DO_NOTHING, POD_ABSENT, NOEV), W_FP, W_FP,
		WANT_OK(POD_DO_NOTHING, POD_CREATING, NOEV), W_FP, W_FP },
	[POD_READY] = { W_FP, W_FP, WANT_OK(POD_DO_STOP, POD_STOPPING, NOEV), W_FP,
		WANT_OK(POD_DO_NOTHING, POD_NOTREADY, NOEV),
		WANT_OK(POD_DO_STOP_REMOVE, POD_REMOVING, NOEV), W_FP },
	[POD_NOTREADY] = { W_FP, W_FP, WANT_OK(POD_DO_STOP, POD_STOPPING, NOEV), W_FP,
		WANT_OK(POD_DO_NOTHING, POD_NOTREADY, NOEV),
		WANT_OK(POD_DO_STOP_REMOVE, POD_REMOVING, NOEV), W_FP },
	[POD_STOPPING] = { W_FP, W_FP, WANT_OK(POD_DO_STOP, POD_STOPPING, NOEV),
		WANT_OK(POD_DO_NOTHING, POD_STOPPED, NOEV), WANT_OK(POD_DO_NOTHING, POD_STOPPING, NOEV),
		WANT_OK(POD_DO_STOP_REMOVE, POD_REMOVING, NOEV), W_FP },
	[POD_STOPPED] = { W_FP, W_FP, WANT_OK(POD_DO_NOTHING, POD_STOPPED, NOEV),
		WANT_OK(POD_DO_NOTHING, POD_STOPPED, NOEV), WANT_OK(POD_DO_NOTHING, POD_STOPPED, NOEV),
		WANT_OK(POD_DO_REMOVE, POD_REMOVING, NOEV), W_FP },
	[POD_REMOVING] = { W_FP, W_FP, WANT_OK(POD_DO_NOTHING, POD_REMOVING, NOEV),
		WANT_OK(POD_DO_NOTHING, POD_REMOVING, NOEV), WANT_OK(POD_DO_NOTHING, POD_REMOVING, NOEV),
		WANT_OK(POD_DO_STOP_REMOVE, POD_REMOVING, NOEV),
		WANT_OK(POD_DO_NOTHING, POD_ABSENT, NOEV) },
};

static const int pod_path[POD_STATE_COUNT][3] = {
	[POD_ABSENT] = { -1 },
	[POD_CREATING] = { -1 },
	[POD_READY] = { POD_EV_COMMIT, -1 },
	[POD_NOTREADY] = { POD_EV_COMMIT, POD_EV_INFRA_EXITED, -1 },
	[POD_STOPPING] = { POD_EV_COMMIT, POD_EV_STOP, -1 },
	[POD_STOPPED] = { POD_EV_COMMIT, POD_EV_STOP, POD_EV_STOPPED },
	[POD_REMOVING] = { POD_EV_COMMIT, POD_EV_INFRA_EXITED, POD_EV_REMOVE },
};

static void test_pod_table(void **ctx)
{
	struct fx *fx = *ctx;
	crisp_err_t err = CRISP_ERR_INIT;
	char id[STATE_ID_LEN + 1], name[32];

	for (int s = 0; s < POD_STATE_COUNT; s++) {
		for (int e = 0; e < POD_EV_COUNT; e++) {
			const struct want *w = &pod_want[s][e];
			int rc;

			if (s == POD_ABSENT) {
				snprintf(id, sizeof id, "%s", FAKE_ID);
			} else {
				snprintf(name, sizeof name, "p%d_%d", s, e);
				assert_int_equal(mkpod(fx->st, name, 0, NULL, 0, id, &err), 0);
				for (int k = 0; k < 3 && pod_path[s][k] >= 0; k++) {
					if (k > 0 && pod_path[s][k] == 0)
						break;
					if (state_pod_transition(fx->st, id,
						(enum pod_event)pod_path[s][k], NULL, &err) < 0)
						fail_msg("path to %s: %s", pod_state_name(s), err.msg);
				}
			}
			assert_int_equal(pod_state_of(fx->st, id), s);
			crisp_error_clear(&err);
			rc = state_pod_transition(fx->st, id, (enum pod_event)e, NULL, &err);
			if (w->code != CRISP_OK) {
				if (rc != -1 || err.code != w->code)
					fail_msg("%s x %s: want %s, got rc %d %s (%s)", pod_state_name(s),
						pod_event_name(e), crisp_code_name(w->code), rc,
						crisp_code_name(err.code), err.msg);
				assert_non_null(strstr(err.msg, id));
				assert_int_equal(pod_state_of(fx->st, id), s);
			} else {
				if (rc != w->action)
					fail_msg("%s x %s: want action %d, got %d (%s)", pod_state_name(s),
						pod_event_name(e), w->action, rc, err.msg);
				int after = pod_state_of(fx->st, id);
				if (after != w->after)
					fail_msg("%s x %s: want %s, got %s", pod_state_name(s),
						pod_event_name(e), pod_state_name(w->after),
						pod_state_name(after));
			}
			const struct state_rule *r = state_pod_rule((enum pod_state)s,
				(enum pod_event)e);
			assert_non_null(r);
			assert_int_equal(r->effect == STATE_EFF_ERROR ? r->code : CRISP_OK, w->code);
		}
	}
	assert_null(state_pod_rule(POD_STATE_COUNT, 0));
	assert_int_equal(pod_state_cri(POD_READY), 0);
	assert_int_equal(pod_state_cri(POD_STOPPED), 1);
}

/* RemovePodSandbox of a pod with a running container: the record of the
 * containers goes with the pod, each with a DELETED event. */
static void test_pod_remove_with_containers(void **ctx)
{
	struct fx *fx = *ctx;
	crisp_err_t err = CRISP_ERR_INIT;
	char pod[STATE_ID_LEN + 1], c1[STATE_ID_LEN + 1], c2[STATE_ID_LEN + 1];
	struct state_event ev[8];

	ready_pod(fx->st, "p", NULL, 0, pod);
	assert_int_equal(mkctr(fx->st, pod, "a", 0, NULL, 0, c1, &err), 0);
	assert_int_equal(state_ctr_commit(fx->st, c1, NULL, &err), 0);
	assert_int_equal(state_container_transition(fx->st, c1, CTR_EV_START, NULL, &err),
		CTR_DO_LAUNCH);
	assert_int_equal(state_container_transition(fx->st, c1, CTR_EV_STARTED, NULL, &err),
		CTR_DO_NOTHING);
	assert_int_equal(mkctr(fx->st, pod, "b", 0, NULL, 0, c2, &err), 0);
	assert_int_equal(state_ctr_commit(fx->st, c2, NULL, &err), 0);
	drain(fx->st);
	assert_int_equal(state_pod_transition(fx->st, pod, POD_EV_REMOVE, NULL, &err),
		POD_DO_STOP_REMOVE);
	assert_int_equal(state_pod_transition(fx->st, pod, POD_EV_REMOVED, NULL, &err),
		POD_DO_NOTHING);
	assert_int_equal(ctr_state_of(fx->st, c1), CTR_ABSENT);
	assert_int_equal(ctr_state_of(fx->st, c2), CTR_ABSENT);
	assert_int_equal(state_events_take(fx->st, ev, 8), 2);
	assert_int_equal(ev[0].type, STATE_EVT_DELETED);
	assert_int_equal(ev[1].type, STATE_EVT_DELETED);
	assert_string_equal(ev[0].ctr_id, c1);
	assert_string_equal(ev[1].ctr_id, c2);
	/* idempotent */
	assert_int_equal(state_pod_transition(fx->st, pod, POD_EV_REMOVE, NULL, &err),
		POD_DO_NOTHING);
	assert_int_equal(state_pod_transition(fx->st, pod, POD_EV_STOP, NULL, &err),
		POD_DO_NOTHING);
}

static void test_exit_records(void **ctx)
{
	struct fx *fx = *ctx;
	crisp_err_t err = CRISP_ERR_INIT;
	char pod[STATE_ID_LEN + 1], c[STATE_ID_LEN + 1];
	struct state_ctr *r = NULL;
	struct ctr_event_data d = { .at_ns = 1000, .pid = 77, .pid_start = 12345 };

	ready_pod(fx->st, "p", NULL, 0, pod);
	/* normal exit 0 -> Completed */
	assert_int_equal(mkctr(fx->st, pod, "a", 0, NULL, 0, c, &err), 0);
	d.monitor_pid = 76;
	d.monitor_start = 999;
	assert_int_equal(state_ctr_commit(fx->st, c, &d, &err), 0);
	assert_int_equal(state_container_transition(fx->st, c, CTR_EV_START, NULL, &err), 1);
	d.at_ns = 2000;
	assert_int_equal(state_container_transition(fx->st, c, CTR_EV_STARTED, &d, &err), 0);
	struct ctr_event_data x = { .at_ns = 3000, .exit_code = 0 };
	assert_int_equal(state_container_transition(fx->st, c, CTR_EV_EXITED, &x, &err), 0);
	/* a second report does not overwrite the first */
	struct ctr_event_data x2 = { .at_ns = 4000, .exit_code = 9, .reason = "Error" };
	assert_int_equal(state_container_transition(fx->st, c, CTR_EV_EXITED, &x2, &err), 0);
	assert_int_equal(state_ctr_get(fx->st, c, &r, &err), 0);
	assert_int_equal(r->state, CTR_EXITED);
	assert_int_equal(r->pid, 77);
	assert_int_equal(r->pid_start, 12345);
	assert_int_equal(r->monitor_pid, 76);
	assert_int_equal(r->monitor_start, 999);
	assert_int_equal(r->started_at, 2000);
	assert_int_equal(r->finished_at, 3000);
	assert_int_equal(r->exit_code, 0);
	assert_string_equal(r->reason, "Completed");
	assert_string_equal(r->image_ref, "busybox:latest");
	assert_string_equal(r->image_id, "sha256:abcd");
	assert_string_equal(r->log_path, "c/0.log");
	assert_int_equal(r->config_len, 4);
	assert_int_equal(ctr_state_cri(r->state), 2);
	state_ctr_free(r);

	/* OOM kill as the monitor reports it */
	assert_int_equal(mkctr(fx->st, pod, "b", 0, NULL, 0, c, &err), 0);
	assert_int_equal(state_ctr_commit(fx->st, c, NULL, &err), 0);
	assert_int_equal(state_container_transition(fx->st, c, CTR_EV_START, NULL, &err), 1);
	assert_int_equal(state_container_transition(fx->st, c, CTR_EV_STARTED, &d, &err), 0);
	struct ctr_event_data oom = { .exit_code = 137, .reason = "OOMKilled",
		.message = "memory limit" };
	assert_int_equal(state_container_transition(fx->st, c, CTR_EV_EXITED, &oom, &err), 0);
	assert_int_equal(state_ctr_get(fx->st, c, &r, &err), 0);
	assert_int_equal(r->exit_code, 137);
	assert_string_equal(r->reason, "OOMKilled");
	assert_string_equal(r->message, "memory limit");
	state_ctr_free(r);

	/* non-zero without a reason -> Error; failed exec -> 128 StartError */
	assert_int_equal(mkctr(fx->st, pod, "c", 0, NULL, 0, c, &err), 0);
	assert_int_equal(state_ctr_commit(fx->st, c, NULL, &err), 0);
	assert_int_equal(state_container_transition(fx->st, c, CTR_EV_START, NULL, &err), 1);
	struct ctr_event_data sf = { .message = "exec: no such file" };
	assert_int_equal(state_container_transition(fx->st, c, CTR_EV_START_FAILED, &sf, &err), 0);
	assert_int_equal(state_ctr_get(fx->st, c, &r, &err), 0);
	assert_int_equal(r->exit_code, 128);
	assert_string_equal(r->reason, "StartError");
	assert_string_equal(r->message, "exec: no such file");
	state_ctr_free(r);
	assert_int_equal(mkctr(fx->st, pod, "d", 0, NULL, 0, c, &err), 0);
	assert_int_equal(state_ctr_commit(fx->st, c, NULL, &err), 0);
	struct ctr_event_data e1 = { .exit_code = 1 };
	assert_int_equal(state_container_transition(fx->st, c, CTR_EV_EXITED, &e1, &err), 0);
	assert_int_equal(state_ctr_get(fx->st, c, &r, &err), 0);
	assert_string_equal(r->reason, "Error");
	state_ctr_free(r);
}

/* The image id is recorded once imaged resolved it, only while CREATING. */
static void test_ctr_set_image(void **ctx)
{
	struct fx *fx = *ctx;
	crisp_err_t err = CRISP_ERR_INIT;
	char pod[STATE_ID_LEN + 1], c[STATE_ID_LEN + 1];
	struct state_ctr *r = NULL;

	ready_pod(fx->st, "p", NULL, 0, pod);
	assert_int_equal(mkctr(fx->st, pod, "a", 0, NULL, 0, c, &err), 0);
	void *rec = NULL;
	size_t len = 0;
	char pg[64];

	/* no record yet */
	assert_int_equal(state_ctr_image_rec(fx->st, c, &rec, &len, &err), 0);
	assert_null(rec);
	assert_int_equal(state_ctr_set_image(fx->st, c, "sha256:feed", "\x0a\x03" "abc", 5, &err), 0);
	assert_int_equal(state_ctr_commit(fx->st, c, NULL, &err), 0);
	assert_int_equal(state_ctr_get(fx->st, c, &r, &err), 0);
	assert_string_equal(r->image_id, "sha256:feed");
	assert_string_equal(r->image_ref, "busybox:latest");
	state_ctr_free(r);
	assert_int_equal(state_ctr_image_rec(fx->st, c, &rec, &len, &err), 1);
	assert_int_equal(len, 5);
	assert_memory_equal(rec, "\x0a\x03" "abc", 5);
	free(rec);
	/* committed: refused, nothing changed */
	assert_int_equal(state_ctr_set_image(fx->st, c, "sha256:beef", "x", 1, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_int_equal(state_ctr_get(fx->st, c, &r, &err), 0);
	assert_string_equal(r->image_id, "sha256:feed");
	state_ctr_free(r);
	assert_int_equal(state_ctr_image_rec(fx->st, c, &rec, &len, &err), 1);
	assert_memory_equal(rec, "\x0a\x03" "abc", 5);
	free(rec);
	/* the cgroup parent is the pod's; none for an unknown container */
	assert_int_equal(state_ctr_cgroup_parent(fx->st, c, pg, sizeof pg, &err), 1);
	assert_string_equal(pg, "/kubepods");
	assert_int_equal(state_ctr_cgroup_parent(fx->st, "0000000000000000000000000000000000000000000000000000000000000000",
						 pg, sizeof pg, &err), 0);
	assert_int_equal(state_ctr_image_rec(fx->st, "0000000000000000000000000000000000000000000000000000000000000000",
						 &rec, &len, &err), 0);
}

static void test_prefix_lookup(void **ctx)
{
	struct fx *fx = *ctx;
	crisp_err_t err = CRISP_ERR_INIT;
	char ids[17][STATE_ID_LEN + 1], out[STATE_ID_LEN + 1], name[16], pre[STATE_ID_LEN + 1];
	int i, j, amb = -1;

	for (i = 0; i < 17; i++) {
		snprintf(name, sizeof name, "p%d", i);
		ready_pod(fx->st, name, NULL, 0, ids[i]);
	}
	/* 17 ids, 16 first digits: two share one (pigeonhole) */
	for (i = 0; i < 17 && amb < 0; i++)
		for (j = i + 1; j < 17; j++)
			if (ids[i][0] == ids[j][0])
				amb = i;
	assert_true(amb >= 0);
	prefix_of(pre, ids[amb], 2 - 1);
	assert_int_equal(state_pod_resolve(fx->st, pre, out, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "ambiguous"));
	struct state_pod *p = NULL;
	assert_int_equal(state_pod_get(fx->st, pre, &p, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	/* each full id and a 20-digit prefix (unique, with overwhelming odds) */
	for (i = 0; i < 17; i++) {
		assert_int_equal(state_pod_resolve(fx->st, ids[i], out, &err), 0);
		assert_string_equal(out, ids[i]);
		prefix_of(pre, ids[i], 21 - 1);
		assert_int_equal(state_pod_resolve(fx->st, pre, out, &err), 0);
		assert_string_equal(out, ids[i]);
	}
	/* not hex, upper case, too long, empty */
	snprintf(pre, sizeof pre, "%s", ids[0]);
	pre[0] = (char)(pre[0] >= 'a' ? pre[0] - 32 : 'G');
	assert_int_equal(state_pod_resolve(fx->st, pre, out, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_int_equal(state_pod_resolve(fx->st, "x'; DROP TABLE pods; --", out, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_int_equal(state_pod_resolve(fx->st, "*", out, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_int_equal(state_pod_resolve(fx->st, "", out, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	char longid[STATE_ID_LEN + 2];
	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	assert_int_equal(state_pod_resolve(fx->st, longid, out, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	/* transitions take prefixes too */
	prefix_of(pre, ids[3], 21 - 1);
	assert_int_equal(state_pod_transition(fx->st, pre, POD_EV_STOP, NULL, &err), POD_DO_STOP);
	assert_int_equal(pod_state_of(fx->st, ids[3]), POD_STOPPING);
	/* an ambiguous prefix on a transition is refused, not guessed */
	prefix_of(pre, ids[amb], 2 - 1);
	assert_int_equal(state_pod_transition(fx->st, pre, POD_EV_REMOVE, NULL, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
}

static size_t count_pods(struct state *st, const struct state_pod_filter *f)
{
	struct state_pod **v = NULL;
	size_t n = 0;
	crisp_err_t err = CRISP_ERR_INIT;

	if (state_pod_list(st, f, &v, &n, &err) < 0)
		fail_msg("list: %s", err.msg);
	state_pod_list_free(v, n);
	return n;
}

static size_t count_ctrs(struct state *st, const struct state_ctr_filter *f)
{
	struct state_ctr **v = NULL;
	size_t n = 0;
	crisp_err_t err = CRISP_ERR_INIT;

	if (state_ctr_list(st, f, &v, &n, &err) < 0)
		fail_msg("list: %s", err.msg);
	state_ctr_list_free(v, n);
	return n;
}

static void test_list_filters(void **ctx)
{
	struct fx *fx = *ctx;
	crisp_err_t err = CRISP_ERR_INIT;
	char a[STATE_ID_LEN + 1], b[STATE_ID_LEN + 1], c[STATE_ID_LEN + 1];
	char x[STATE_ID_LEN + 1], y[STATE_ID_LEN + 1], z[STATE_ID_LEN + 1];
	static const struct state_kv lb[] = { { "app", "db" }, { "tier", "back" } };
	static const struct state_kv sel_web[] = { { "app", "web" } };
	static const struct state_kv sel_both[] = { { "app", "web" }, { "tier", "front" } };
	static const struct state_kv sel_mixed[] = { { "app", "web" }, { "tier", "back" } };
	static const struct state_kv sel_missing[] = { { "zone", "a" } };
	static const struct state_kv sel_empty_val[] = { { "app", "" } };

	ready_pod(fx->st, "a", pod_labels, 2, a);
	ready_pod(fx->st, "b", lb, 2, b);
	ready_pod(fx->st, "c", pod_labels, 1, c); /* app=web only */
	assert_int_equal(state_pod_transition(fx->st, c, POD_EV_STOP, NULL, &err), POD_DO_STOP);
	assert_int_equal(state_pod_transition(fx->st, c, POD_EV_STOPPED, NULL, &err), 0);

	struct state_pod_filter f = { .state = -1, .cri_state = -1 };
	assert_int_equal(count_pods(fx->st, &f), 3);
	assert_int_equal(count_pods(fx->st, NULL), 3);
	f.selector = sel_web, f.nselector = 1;
	assert_int_equal(count_pods(fx->st, &f), 2);
	f.selector = sel_both, f.nselector = 2;
	assert_int_equal(count_pods(fx->st, &f), 1);
	f.selector = sel_mixed, f.nselector = 2;
	assert_int_equal(count_pods(fx->st, &f), 0);
	f.selector = sel_missing, f.nselector = 1;
	assert_int_equal(count_pods(fx->st, &f), 0);
	f.selector = sel_empty_val, f.nselector = 1;
	assert_int_equal(count_pods(fx->st, &f), 0);
	f.selector = sel_web, f.nselector = 1, f.cri_state = 0; /* READY */
	assert_int_equal(count_pods(fx->st, &f), 1);
	f.cri_state = 1;
	assert_int_equal(count_pods(fx->st, &f), 1);
	f.selector = NULL, f.nselector = 0, f.cri_state = -1, f.state = POD_STOPPED;
	assert_int_equal(count_pods(fx->st, &f), 1);
	f.state = -1;
	char pre[8];
	snprintf(pre, sizeof pre, "%.6s", b);
	f.id = pre;
	struct state_pod **pv = NULL;
	size_t pn = 0;
	assert_int_equal(state_pod_list(fx->st, &f, &pv, &pn, &err), 0);
	assert_int_equal(pn, 1);
	assert_string_equal(pv[0]->id, b);
	state_pod_list_free(pv, pn);
	f.id = FAKE_ID;
	assert_int_equal(count_pods(fx->st, &f), 0);
	f.id = "zz";
	assert_int_equal(count_pods(fx->st, &f), 0);

	/* containers */
	static const struct state_kv cl[] = { { "io.kubernetes.container.name", "app" } };
	assert_int_equal(mkctr(fx->st, a, "app", 0, cl, 1, x, &err), 0);
	assert_int_equal(state_ctr_commit(fx->st, x, NULL, &err), 0);
	assert_int_equal(mkctr(fx->st, a, "side", 0, NULL, 0, y, &err), 0);
	assert_int_equal(state_ctr_commit(fx->st, y, NULL, &err), 0);
	assert_int_equal(state_container_transition(fx->st, y, CTR_EV_START, NULL, &err), 1);
	assert_int_equal(state_container_transition(fx->st, y, CTR_EV_STARTED, NULL, &err), 0);
	assert_int_equal(mkctr(fx->st, b, "app", 0, cl, 1, z, &err), 0);
	assert_int_equal(state_ctr_commit(fx->st, z, NULL, &err), 0);
	char w[STATE_ID_LEN + 1];
	assert_int_equal(mkctr(fx->st, b, "creating", 0, cl, 1, w, &err), 0); /* hidden */

	struct state_ctr_filter g = { .state = -1, .cri_state = -1 };
	assert_int_equal(count_ctrs(fx->st, &g), 3);
	assert_int_equal(count_ctrs(fx->st, NULL), 3);
	g.pod_id = a;
	assert_int_equal(count_ctrs(fx->st, &g), 2);
	snprintf(pre, sizeof pre, "%.6s", b);
	g.pod_id = pre;
	assert_int_equal(count_ctrs(fx->st, &g), 1);
	g.pod_id = FAKE_ID;
	assert_int_equal(count_ctrs(fx->st, &g), 0);
	g.pod_id = NULL;
	g.selector = cl, g.nselector = 1;
	assert_int_equal(count_ctrs(fx->st, &g), 2);
	g.pod_id = a;
	assert_int_equal(count_ctrs(fx->st, &g), 1);
	g.pod_id = NULL, g.selector = NULL, g.nselector = 0;
	g.state = CTR_RUNNING;
	assert_int_equal(count_ctrs(fx->st, &g), 1);
	g.state = -1, g.cri_state = 0; /* CREATED */
	assert_int_equal(count_ctrs(fx->st, &g), 2);
	g.cri_state = -1, g.state = CTR_CREATING;
	assert_int_equal(count_ctrs(fx->st, &g), 1);
	g.state = -1;
	snprintf(pre, sizeof pre, "%.6s", y);
	g.id = pre;
	struct state_ctr **cv = NULL;
	size_t cn = 0;
	assert_int_equal(state_ctr_list(fx->st, &g, &cv, &cn, &err), 0);
	assert_int_equal(cn, 1);
	assert_string_equal(cv[0]->id, y);
	assert_string_equal(cv[0]->pod_id, a);
	state_ctr_list_free(cv, cn);
	g.pod_id = b; /* id and pod disagree */
	assert_int_equal(count_ctrs(fx->st, &g), 0);
}

static void test_events_ring(void **ctx)
{
	struct fx *fx = *ctx;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state *st = NULL;
	char pod[STATE_ID_LEN + 1], c[STATE_ID_LEN + 1], c2[STATE_ID_LEN + 1];
	struct state_event ev[8];
	size_t n;

	/* reopen on the same directory with a 4-slot ring */
	state_close(fx->st);
	fx->st = NULL;
	assert_int_equal(state_open(fx->dir, 4, &st, &err), 0);
	fx->st = st;
	ready_pod(st, "p", NULL, 0, pod);
	assert_int_equal(mkctr(st, pod, "a", 0, NULL, 0, c, &err), 0);
	assert_int_equal(state_events_pending(st), 0); /* no event before commit */
	struct ctr_event_data d = { .at_ns = 10 };
	assert_int_equal(state_ctr_commit(st, c, &d, &err), 0);
	assert_int_equal(state_container_transition(st, c, CTR_EV_START, NULL, &err), 1);
	d.at_ns = 20;
	assert_int_equal(state_container_transition(st, c, CTR_EV_STARTED, &d, &err), 0);
	/* refused and nop transitions add nothing */
	assert_int_equal(state_container_transition(st, c, CTR_EV_START, NULL, &err), -1);
	assert_int_equal(state_container_transition(st, c, CTR_EV_STARTED, &d, &err), 0);
	d.at_ns = 30;
	assert_int_equal(state_container_transition(st, c, CTR_EV_EXITED, &d, &err), 0);
	assert_int_equal(state_container_transition(st, c, CTR_EV_REMOVE, NULL, &err),
		CTR_DO_CLEANUP);
	d.at_ns = 40;
	assert_int_equal(state_container_transition(st, c, CTR_EV_REMOVED, &d, &err), 0);
	assert_int_equal(state_events_pending(st), 4);
	assert_int_equal(state_events_dropped(st), 0);
	n = state_events_take(st, ev, 8);
	assert_int_equal(n, 4);
	static const int order[] = { STATE_EVT_CREATED, STATE_EVT_STARTED, STATE_EVT_STOPPED,
		STATE_EVT_DELETED };
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(ev[i].type, order[i]);
		assert_int_equal(ev[i].at_ns, (int64_t)(i + 1) * 10);
		assert_int_equal(ev[i].seq, i + 1);
		assert_string_equal(ev[i].ctr_id, c);
		assert_string_equal(ev[i].pod_id, pod);
	}
	assert_int_equal(state_events_take(st, ev, 8), 0);

	/* overflow: 6 events into 4 slots drop the 2 oldest */
	assert_int_equal(mkctr(st, pod, "b", 0, NULL, 0, c2, &err), 0);
	assert_int_equal(state_ctr_commit(st, c2, NULL, &err), 0);          /* seq 5 */
	assert_int_equal(state_container_transition(st, c2, CTR_EV_START, NULL, &err), 1);
	assert_int_equal(state_container_transition(st, c2, CTR_EV_STARTED, NULL, &err), 0); /* 6 */
	assert_int_equal(state_container_transition(st, c2, CTR_EV_MONITOR_LOST, NULL, &err), 0);
	assert_int_equal(state_container_transition(st, c2, CTR_EV_STARTED, NULL, &err), 0);
	assert_int_equal(state_container_transition(st, c2, CTR_EV_EXITED, NULL, &err), 0); /* 7 */
	assert_int_equal(state_container_transition(st, c2, CTR_EV_REMOVE, NULL, &err), 3);
	assert_int_equal(state_container_transition(st, c2, CTR_EV_REMOVED, NULL, &err), 0); /* 8 */
	assert_int_equal(mkctr(st, pod, "c", 0, NULL, 0, c, &err), 0);
	assert_int_equal(state_ctr_commit(st, c, NULL, &err), 0);           /* 9 */
	assert_int_equal(state_container_transition(st, c, CTR_EV_EXITED, NULL, &err), 0); /* 10 */
	assert_int_equal(state_events_pending(st), 4);
	assert_int_equal(state_events_dropped(st), 2);
	n = state_events_take(st, ev, 3);
	assert_int_equal(n, 3);
	assert_int_equal(ev[0].seq, 7);
	assert_int_equal(ev[0].type, STATE_EVT_STOPPED);
	assert_int_equal(ev[1].seq, 8);
	assert_int_equal(ev[1].type, STATE_EVT_DELETED);
	assert_int_equal(ev[2].seq, 9);
	assert_int_equal(ev[2].type, STATE_EVT_CREATED);
	n = state_events_take(st, ev, 3);
	assert_int_equal(n, 1);
	assert_int_equal(ev[0].seq, 10);
	assert_int_equal(state_events_dropped(st), 2);
}

/* ------------------------------------------------------------ crashes */

static void child_die_before_commit(const char *dir)
{
	crisp_err_t err = CRISP_ERR_INIT;
	struct state *st = NULL;
	char a[STATE_ID_LEN + 1], b[STATE_ID_LEN + 1], c[STATE_ID_LEN + 1], s[STATE_ID_LEN + 1];

	if (state_open(dir, 0, &st, &err) < 0)
		_exit(10);
	if (mkpod(st, "committed", 0, pod_labels, 2, a, &err) < 0 ||
	    state_pod_commit(st, a, NULL, &err) < 0)
		_exit(11);
	if (mkctr(st, a, "running", 0, NULL, 0, s, &err) < 0 ||
	    state_ctr_commit(st, s, NULL, &err) < 0 ||
	    state_container_transition(st, s, CTR_EV_START, NULL, &err) < 0)
		_exit(12);
	struct ctr_event_data d = { .pid = 4321, .pid_start = 555, .monitor_pid = 4320 };
	if (state_container_transition(st, s, CTR_EV_STARTED, &d, &err) < 0)
		_exit(13);
	if (mkpod(st, "half", 0, NULL, 0, b, &err) < 0)
		_exit(14);
	if (mkctr(st, a, "half", 0, NULL, 0, c, &err) < 0)
		_exit(15);
	/* StartContainer asked, not finished; StopContainer asked, not finished */
	if (mkctr(st, a, "starting", 0, NULL, 0, c, &err) < 0 ||
	    state_ctr_commit(st, c, NULL, &err) < 0 ||
	    state_container_transition(st, c, CTR_EV_START, NULL, &err) != CTR_DO_LAUNCH)
		_exit(16);
	/* no close, no cleanup: as if kill -9 landed here */
	_exit(0);
}

static void test_recover_after_exit(void **ctx)
{
	struct fx *fx = *ctx;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_recovery *r = NULL;
	char path[PATH_MAX + 32];
	size_t n = 0;
	int status;
	pid_t pid;

	state_close(fx->st);
	fx->st = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_die_before_commit(fx->dir);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	db_integrity_ok(db_path(fx, path, sizeof path));
	assert_int_equal(state_open(fx->dir, 0, &fx->st, &err), 0);
	assert_int_equal(state_recover(fx->st, &r, &n, &err), 0);
	/* pods first, then containers, each by creation time */
	assert_int_equal(n, 3);
	assert_true(r[0].is_pod);
	assert_int_equal(r[0].state, POD_CREATING);
	assert_false(r[1].is_pod);
	assert_int_equal(r[1].state, CTR_CREATING);
	assert_false(r[2].is_pod);
	assert_int_equal(r[2].state, CTR_STARTING);
	assert_int_equal(pod_state_of(fx->st, r[0].id), POD_CREATING);

	/* the committed rows are intact */
	struct state_pod_filter f = { .state = -1, .cri_state = -1 };
	struct state_pod **pv = NULL;
	size_t pn = 0;
	assert_int_equal(state_pod_list(fx->st, &f, &pv, &pn, &err), 0);
	assert_int_equal(pn, 1);
	assert_string_equal(pv[0]->name, "committed");
	assert_int_equal(pv[0]->state, POD_READY);
	assert_int_equal(pv[0]->labels.n, 2);
	assert_string_equal(r[1].pod_id, pv[0]->id);
	struct state_ctr_filter g = { .state = CTR_RUNNING, .cri_state = -1 };
	struct state_ctr **cv = NULL;
	size_t cn = 0;
	assert_int_equal(state_ctr_list(fx->st, &g, &cv, &cn, &err), 0);
	assert_int_equal(cn, 1);
	assert_string_equal(cv[0]->name, "running");
	assert_int_equal(cv[0]->pid, 4321);
	assert_int_equal(cv[0]->pid_start, 555);
	assert_int_equal(cv[0]->monitor_pid, 4320);
	state_ctr_list_free(cv, cn);

	/* apply the rule: roll back the CREATING rows, settle the STARTING one */
	for (size_t i = 0; i < n; i++) {
		if (r[i].is_pod)
			assert_int_equal(state_pod_abort(fx->st, r[i].id, &err), 0);
		else if (r[i].state == CTR_CREATING)
			assert_int_equal(state_ctr_abort(fx->st, r[i].id, &err), 0);
		else
			assert_int_equal(state_container_transition(fx->st, r[i].id,
				CTR_EV_START_FAILED, NULL, &err), 0);
	}
	free(r);
	assert_int_equal(state_recover(fx->st, &r, &n, &err), 0);
	assert_int_equal(n, 0);
	free(r);
	/* and the names taken by the dead creates are free again */
	char id[STATE_ID_LEN + 1];
	assert_int_equal(mkpod(fx->st, "half", 0, NULL, 0, id, &err), 0);
	assert_int_equal(mkctr(fx->st, pv[0]->id, "half", 0, NULL, 0, id, &err), 0);
	state_pod_list_free(pv, pn);
}

static void kill_self(void *arg)
{
	(void)arg;
	raise(SIGKILL);
}

#define BIG (8u * 1024 * 1024)

static void child_sigkill_mid_write(const char *dir)
{
	crisp_err_t err = CRISP_ERR_INIT;
	struct state *st = NULL;
	char a[STATE_ID_LEN + 1], b[STATE_ID_LEN + 1];
	uint8_t *big = malloc(BIG);

	if (big == NULL || state_open(dir, 0, &st, &err) < 0)
		_exit(10);
	/* no cmocka assertions in a child: they would unwind into the parent's
	 * test runner; exit codes instead */
	if (mkpod(st, "survivor", 0, NULL, 0, a, &err) < 0 ||
	    state_pod_commit(st, a, NULL, &err) < 0)
		_exit(13);
	if (mkctr(st, a, "kept", 0, NULL, 0, b, &err) < 0 ||
	    state_ctr_commit(st, b, NULL, &err) < 0)
		_exit(11);
	/* random bytes: no page compresses or repeats */
	for (size_t i = 0; i < BIG; i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	struct state_pod_spec sp = { .name = "victim", .namespace = "n", .uid = "u",
		.config = big, .config_len = BIG };
	state_set_precommit_hook(st, kill_self, NULL);
	state_pod_reserve(st, &sp, b, &err);
	_exit(12); /* not reached */
}

static void test_recover_after_sigkill(void **ctx)
{
	struct fx *fx = *ctx;
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_recovery *r = NULL;
	char path[PATH_MAX + 32], wal[PATH_MAX + 40];
	struct stat sb;
	size_t n = 0;
	int status;
	pid_t pid;

	state_close(fx->st);
	fx->st = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_sigkill_mid_write(fx->dir);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	/* the uncommitted 8 MiB really reached the WAL before the kill */
	snprintf(wal, sizeof wal, "%s-wal", db_path(fx, path, sizeof path));
	assert_int_equal(stat(wal, &sb), 0);
	print_message("wal after kill: %lld bytes\n", (long long)sb.st_size);
	assert_true(sb.st_size > (off_t)BIG / 2); /* the rest was still in the cache */

	db_integrity_ok(path);
	assert_int_equal(state_open(fx->dir, 0, &fx->st, &err), 0);
	assert_int_equal(state_recover(fx->st, &r, &n, &err), 0);
	assert_int_equal(n, 0); /* the killed transaction left nothing */
	free(r);
	struct state_pod_filter f = { .state = -1, .cri_state = -1 };
	struct state_pod **pv = NULL;
	size_t pn = 0;
	assert_int_equal(state_pod_list(fx->st, &f, &pv, &pn, &err), 0);
	assert_int_equal(pn, 1);
	assert_string_equal(pv[0]->name, "survivor");
	assert_int_equal(pv[0]->state, POD_READY);
	state_pod_list_free(pv, pn);
	assert_int_equal(count_ctrs(fx->st, NULL), 1);
	char id[STATE_ID_LEN + 1];
	assert_int_equal(mkpod(fx->st, "victim", 0, NULL, 0, id, &err), 0);
	db_integrity_ok(path);
}

/* A damaged file is refused with DATA_LOSS, not rebuilt. */
static void test_corrupt_refused(void **ctx)
{
	struct fx *fx = *ctx;
	crisp_err_t err = CRISP_ERR_INIT;
	char path[PATH_MAX + 32], id[STATE_ID_LEN + 1];
	int fd;

	for (int i = 0; i < 50; i++) {
		char name[16];
		snprintf(name, sizeof name, "p%d", i);
		ready_pod(fx->st, name, pod_labels, 2, id);
	}
	state_close(fx->st); /* checkpoints the WAL into the file */
	fx->st = NULL;
	db_path(fx, path, sizeof path);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	char junk[4096];
	memset(junk, 0xa5, sizeof junk);
	assert_int_equal(pwrite(fd, junk, sizeof junk, 4096), (ssize_t)sizeof junk);
	close(fd);
	assert_int_equal(state_open(fx->dir, 0, &fx->st, &err), -1);
	assert_null(fx->st);
	assert_int_equal(err.code, CRISP_DATA_LOSS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_reserve_commit_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctr_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_remove_with_containers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctr_set_image, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_after_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_after_sigkill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
