/*
 * execd/state: execd's durable record of pod sandboxes and containers, and
 * their lifecycle as a total state x event table (STYLE #23).
 *
 * Storage: SQLite at <root>/execd/state.db (dir 0700, file 0600), WAL,
 * synchronous=FULL, foreign_keys=ON.  Written before answering: every
 * mutating call below commits its transaction before it returns, so what a
 * CRI client was told survives a kill -9 of execd at any instant.
 *
 * Creates are two-phase.  state_pod_reserve()/state_ctr_reserve() insert the
 * row in the transitional state CREATING (the name is taken from that moment,
 * so a concurrent or retried create of the same name gets ALREADY_EXISTS
 * naming the owner), execd then builds the real thing, and commits (COMMIT
 * event: CREATING -> READY / CREATED) or aborts (ABORT event: row deleted).
 *
 * Recovery rule (state_recover() lists the rows to act on, at startup, before
 * execd serves any request):
 *   CREATING  (pod or container)  roll BACK: tear down whatever exists under
 *             that id (every cleanup step is idempotent and keyed by id), then
 *             ABORT.  Never complete: the client never received the id, and
 *             kubelet retries the create under the same name, which must not
 *             stay blocked by a half-made object.
 *   STARTING  (container)  look at the recorded pid + its start time: alive
 *             -> STARTED; exit recorded by the monitor -> EXITED; otherwise
 *             START_FAILED.
 *   STOPPING  (container)  complete: kill with no further grace, then EXITED
 *             when the monitor reports (or MONITOR_LOST).
 *   STOPPING  (pod)  complete the stop, then STOPPED.
 *   REMOVING  (pod or container)  complete forward: the client asked for the
 *             removal and Remove* is idempotent; cleanup, then REMOVED.
 * Rows in RUNNING are not "transitional" but execd must still check their
 * monitor (pid + start time, so a reused pid is not mistaken for it):
 * state_ctr_list() with state filter RUNNING gives them.
 *
 * Ids are 64 lower-case hex characters from libsodium's randombytes.  Every
 * lookup takes a full id or a unique prefix; an ambiguous prefix is
 * INVALID_ARGUMENT, an unknown one NOT_FOUND (in a list filter, both give an
 * empty list, as CRI-O and containerd do).
 *
 * Events: each applied transition that the CRI reports (created, started,
 * stopped, deleted) is appended, after its commit, to a bounded in-memory
 * ring for GetContainerEvents; when full the oldest is dropped and counted.
 *
 * No globals: everything hangs off struct state.  Not thread-safe: execd's
 * event loop is the only user.
 */
#ifndef CRISP_EXECD_STATE_H
#define CRISP_EXECD_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

#define STATE_ID_LEN 64
#define STATE_CONFIG_MAX (16u * 1024 * 1024) /* a config blob, bytes */
#define STATE_EVENTS_DEFAULT 1024

struct state;

/* ------------------------------------------------------------ lifecycle */

/* CRI shows READY for POD_READY and NOTREADY for every other state. */
enum pod_state {
	POD_ABSENT = 0, /* pseudo state: no row (makes the table total) */
	POD_CREATING,   /* reserved, being built (transitional) */
	POD_READY,
	POD_NOTREADY,   /* infra exited on its own; resources still held */
	POD_STOPPING,   /* StopPodSandbox in progress (transitional) */
	POD_STOPPED,    /* stopped: containers dead, network released */
	POD_REMOVING,   /* RemovePodSandbox in progress (transitional) */
	POD_STATE_COUNT
};

enum pod_event {
	POD_EV_COMMIT = 0,   /* create finished */
	POD_EV_ABORT,        /* create failed / rolled back */
	POD_EV_STOP,         /* StopPodSandbox */
	POD_EV_STOPPED,      /* execd finished stopping */
	POD_EV_INFRA_EXITED, /* the infra process died */
	POD_EV_REMOVE,       /* RemovePodSandbox */
	POD_EV_REMOVED,      /* execd finished removing (row and its containers go) */
	POD_EV_COUNT
};

/* What execd must do after a successful pod transition. */
enum pod_action {
	POD_DO_NOTHING = 0,
	POD_DO_STOP,        /* kill containers + infra, release network/namespaces */
	POD_DO_STOP_REMOVE, /* the same, then remove containers and the pod */
	POD_DO_REMOVE,      /* already stopped: remove containers and the pod */
	POD_ACTION_COUNT
};

/* CRI shows CREATED for CREATING/CREATED/STARTING, RUNNING for RUNNING and
 * STOPPING, EXITED for EXITED, UNKNOWN for UNKNOWN and REMOVING. */
enum ctr_state {
	CTR_ABSENT = 0, /* pseudo state: no row */
	CTR_CREATING,   /* reserved, being built (transitional) */
	CTR_CREATED,
	CTR_STARTING,   /* StartContainer in progress (transitional) */
	CTR_RUNNING,
	CTR_STOPPING,   /* StopContainer in progress (transitional) */
	CTR_EXITED,
	CTR_UNKNOWN,    /* monitor lost without an exit record */
	CTR_REMOVING,   /* RemoveContainer in progress (transitional) */
	CTR_STATE_COUNT
};

enum ctr_event {
	CTR_EV_COMMIT = 0,   /* create finished (monitor pid recorded) */
	CTR_EV_ABORT,        /* create failed / rolled back */
	CTR_EV_START,        /* StartContainer */
	CTR_EV_STARTED,      /* the process runs (pid + start time recorded) */
	CTR_EV_START_FAILED, /* exec failed: EXITED with 128 "StartError" */
	CTR_EV_STOP,         /* StopContainer */
	CTR_EV_EXITED,       /* the monitor reported an exit */
	CTR_EV_REMOVE,       /* RemoveContainer */
	CTR_EV_REMOVED,      /* execd finished removing: row deleted */
	CTR_EV_MONITOR_LOST, /* monitor gone with no exit record */
	CTR_EV_COUNT
};

enum ctr_action {
	CTR_DO_NOTHING = 0,
	CTR_DO_LAUNCH,       /* tell the monitor to exec the process */
	CTR_DO_KILL,         /* signal, SIGKILL after the timeout */
	CTR_DO_CLEANUP,      /* not running: remove rootfs, cgroup, logs state */
	CTR_DO_KILL_CLEANUP, /* force removal: SIGKILL, wait, then cleanup */
	CTR_ACTION_COUNT
};

/* Effect of a table cell on the record. */
enum state_effect {
	STATE_EFF_ERROR = 0, /* refuse with code + phrase, nothing written */
	STATE_EFF_NOP,       /* success, nothing written */
	STATE_EFF_SET,       /* success, state := next (and data recorded) */
	STATE_EFF_DELETE,    /* success, row deleted */
};

enum state_evtype {
	STATE_EVT_NONE = -1,
	/* Same numbers as CRI's ContainerEventType. */
	STATE_EVT_CREATED = 0,
	STATE_EVT_STARTED = 1,
	STATE_EVT_STOPPED = 2,
	STATE_EVT_DELETED = 3,
};

struct state_rule {
	int next;            /* enum pod_state / ctr_state (only for SET/DELETE) */
	int effect;          /* enum state_effect */
	int action;          /* enum pod_action / ctr_action, on success */
	int code;            /* enum crisp_code, for STATE_EFF_ERROR */
	const char *phrase;  /* error text after "container <id> " */
	int evtype;          /* enum state_evtype emitted on success */
};

/* The tables themselves (state_table.c), for execd's docs and for tests. */
const struct state_rule *state_pod_rule(enum pod_state s, enum pod_event e);
const struct state_rule *state_ctr_rule(enum ctr_state s, enum ctr_event e);
const char *pod_state_name(int s);
const char *pod_event_name(int e);
const char *ctr_state_name(int s);
const char *ctr_event_name(int e);
/* CRI enum values: PodSandboxState (0 READY, 1 NOTREADY) and ContainerState
 * (0 CREATED, 1 RUNNING, 2 EXITED, 3 UNKNOWN). */
int pod_state_cri(enum pod_state s);
int ctr_state_cri(enum ctr_state s);

/* --------------------------------------------------------------- records */

struct state_kv {
	const char *key;
	const char *value;
};

struct state_kvs {
	size_t n;
	struct state_kv *kv; /* owned by the record when returned */
};

#define STATE_POD_HOST_NET 0x1u
#define STATE_POD_HOST_PID 0x2u
#define STATE_POD_HOST_IPC 0x4u

/* Input of state_pod_reserve(): what the validated RunPodSandboxRequest says. */
struct state_pod_spec {
	const char *name, *namespace, *uid;
	uint32_t attempt;
	const struct state_kv *labels;
	size_t nlabels;
	const struct state_kv *annotations;
	size_t nannotations;
	const char *runtime_handler; /* "" = default */
	const char *hostname;
	const char *log_directory;
	const char *cgroup_parent;
	unsigned flags;              /* STATE_POD_HOST_* */
	const char *mcs_level;       /* the pod's SELinux level (execd/lsm.h), NULL = "" */
	const void *config;          /* packed RunPodSandboxRequest (protobuf) */
	size_t config_len;           /* <= STATE_CONFIG_MAX */
};

/* Data recorded by pod transitions (may be NULL: nothing to record). */
struct pod_event_data {
	int64_t at_ns;               /* 0: now */
	const char *netns_path;      /* COMMIT */
	const char *const *ips;      /* COMMIT: first is the primary */
	size_t nips;
	pid_t infra_pid;             /* COMMIT: 0 when no infra process */
	uint64_t infra_start;        /* /proc/PID/stat starttime, against pid reuse */
};

struct state_pod {
	char id[STATE_ID_LEN + 1];
	char *name, *namespace, *uid;
	uint32_t attempt;
	enum pod_state state;
	int64_t created_at;          /* ns since the epoch */
	struct state_kvs labels, annotations;
	char *runtime_handler, *netns_path, *hostname, *log_directory, *cgroup_parent;
	char **ips;                  /* NULL-terminated */
	size_t nips;
	void *config;
	size_t config_len;
	pid_t infra_pid;
	uint64_t infra_start;
	unsigned flags;
	char *mcs_level;             /* "" when none was recorded */
};

struct state_ctr_spec {
	const char *pod_id;          /* full id or unique prefix */
	const char *name;
	uint32_t attempt;
	const char *image_ref, *image_id;
	const char *log_path;        /* relative to the pod's log directory */
	const struct state_kv *labels;
	size_t nlabels;
	const struct state_kv *annotations;
	size_t nannotations;
	const void *config;          /* packed ContainerConfig (protobuf) */
	size_t config_len;
};

/* Data recorded by container transitions (may be NULL). */
struct ctr_event_data {
	int64_t at_ns;               /* 0: now (CLOCK_REALTIME) */
	pid_t pid;                   /* COMMIT, STARTED */
	uint64_t pid_start;
	pid_t monitor_pid;           /* COMMIT; STARTED when not 0 */
	uint64_t monitor_start;
	int32_t exit_code;           /* EXITED, START_FAILED */
	const char *reason;          /* NULL: "Completed"/"Error" by exit code
	                                ("StartError" for START_FAILED) */
	const char *message;
};

struct state_ctr {
	char id[STATE_ID_LEN + 1];
	char pod_id[STATE_ID_LEN + 1];
	char *name;
	uint32_t attempt;
	char *image_ref, *image_id;
	enum ctr_state state;
	int64_t created_at, started_at, finished_at;
	int32_t exit_code;
	char *reason, *message, *log_path;
	pid_t pid, monitor_pid;
	uint64_t pid_start, monitor_start;
	struct state_kvs labels, annotations;
	void *config;
	size_t config_len;
};

/* List filters (CRI PodSandboxFilter / ContainerFilter).  NULL/empty fields
 * do not filter; state -1 does not filter; every selector pair must match
 * (a missing key never matches).  Rows in CREATING are listed only when
 * state == CREATING exactly: the client has not been given their id yet.
 * A NULL filter lists everything else.  Order: creation time, then id. */
struct state_pod_filter {
	const char *id;              /* full id or unique prefix */
	int state;                   /* enum pod_state, or -1 */
	int cri_state;               /* PodSandboxState (0/1), or -1 */
	const struct state_kv *selector;
	size_t nselector;
};

struct state_ctr_filter {
	const char *id;
	int state;                   /* enum ctr_state, or -1 */
	int cri_state;               /* ContainerState (0..3), or -1 */
	const char *pod_id;          /* full id or unique prefix */
	const struct state_kv *selector;
	size_t nselector;
};

/* A row found in a transitional state at open. */
struct state_recovery {
	bool is_pod;
	char id[STATE_ID_LEN + 1];
	char pod_id[STATE_ID_LEN + 1]; /* containers only */
	int state;                     /* enum pod_state / ctr_state */
	pid_t pid, monitor_pid;        /* containers; pid = infra pid for pods */
	uint64_t pid_start, monitor_start;
};

struct state_event {
	uint64_t seq;                /* 1, 2, ... in order of append */
	int type;                    /* enum state_evtype */
	int64_t at_ns;
	char ctr_id[STATE_ID_LEN + 1];
	char pod_id[STATE_ID_LEN + 1];
};

/* ------------------------------------------------------------------ API */

/* Open (creating) <root>/execd/state.db; root must be absolute.  events_cap
 * 0 = default.  Runs a quick integrity check: a corrupt database is
 * DATA_LOSS, never rebuilt behind the operator's back. */
int state_open(const char *root, size_t events_cap, struct state **out, crisp_err_t *err);
void state_close(struct state *st);
const char *state_db_path(const struct state *st);

/* Rows in transitional states (see the recovery rule above). */
int state_recover(struct state *st, struct state_recovery **out, size_t *n, crisp_err_t *err);

/* Pods. */
int state_pod_reserve(struct state *st, const struct state_pod_spec *spec,
	char id_out[STATE_ID_LEN + 1], crisp_err_t *err);
int state_pod_commit(struct state *st, const char *id, const struct pod_event_data *d,
	crisp_err_t *err);
int state_pod_abort(struct state *st, const char *id, crisp_err_t *err);
/* Apply the table; returns enum pod_action (>= 0), or -1 with err being what
 * the CRI client should see. */
int state_pod_transition(struct state *st, const char *id, enum pod_event ev,
	const struct pod_event_data *d, crisp_err_t *err);
int state_pod_resolve(struct state *st, const char *idprefix, char id_out[STATE_ID_LEN + 1],
	crisp_err_t *err);
int state_pod_get(struct state *st, const char *idprefix, struct state_pod **out,
	crisp_err_t *err);
void state_pod_free(struct state_pod *p);
int state_pod_list(struct state *st, const struct state_pod_filter *f,
	struct state_pod ***out, size_t *n, crisp_err_t *err);
void state_pod_list_free(struct state_pod **v, size_t n);

/* Containers.  Reserve refuses (FAILED_PRECONDITION) unless the pod is READY. */
int state_ctr_reserve(struct state *st, const struct state_ctr_spec *spec,
	char id_out[STATE_ID_LEN + 1], crisp_err_t *err);
int state_ctr_commit(struct state *st, const char *id, const struct ctr_event_data *d,
	crisp_err_t *err);
int state_ctr_abort(struct state *st, const char *id, crisp_err_t *err);
/* Record the resolved image of a container in CREATING: its id and the
 * record execd keeps of it (Cipc.ImageResolved, packed; NULL: none).  Not
 * flushed by itself: the create's final commit flushes it. */
int state_ctr_set_image(struct state *st, const char *id, const char *image_id, const void *rec, size_t rec_len,
			crisp_err_t *err);
/* The image record of a container (malloc'd into *rec): 1, or 0 when the
 * row has none (no such container, or made before records were kept in
 * the row), -1 on error. */
int state_ctr_image_rec(struct state *st, const char *id, void **rec, size_t *len, crisp_err_t *err);
/* The cgroup parent of a container's pod: 1, 0 when there is no such
 * container, -1 on error. */
int state_ctr_cgroup_parent(struct state *st, const char *id, char *out, size_t n, crisp_err_t *err);
/* Returns enum ctr_action (>= 0), or -1 with the error for the CRI client. */
int state_container_transition(struct state *st, const char *id, enum ctr_event ev,
	const struct ctr_event_data *d, crisp_err_t *err);
int state_ctr_resolve(struct state *st, const char *idprefix, char id_out[STATE_ID_LEN + 1],
	crisp_err_t *err);
int state_ctr_get(struct state *st, const char *idprefix, struct state_ctr **out,
	crisp_err_t *err);
void state_ctr_free(struct state_ctr *c);
int state_ctr_list(struct state *st, const struct state_ctr_filter *f,
	struct state_ctr ***out, size_t *n, crisp_err_t *err);
void state_ctr_list_free(struct state_ctr **v, size_t n);

/* Events ring: take up to max oldest events (removing them); returns the count. */
size_t state_events_take(struct state *st, struct state_event *out, size_t max);
size_t state_events_pending(const struct state *st);
uint64_t state_events_dropped(const struct state *st);

/* Called (from the committing call, after COMMIT) whenever events reached
 * the ring; NULL to clear.  The hook may read the state and take events. */
void state_set_event_hook(struct state *st, void (*fn)(void *), void *arg);

/* Testing seam: called inside every write transaction just before COMMIT
 * (crash-consistency tests SIGKILL themselves from it).  NULL to clear. */
void state_set_precommit_hook(struct state *st, void (*fn)(void *), void *arg);

#endif
