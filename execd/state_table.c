/*
 * execd/state_table: the pod and container lifecycles as total
 * state x event tables (STYLE #23, after s6-supervise's actions[][]).
 * Every pair names its effect: an error with the code the CRI client sees,
 * a nop success, a state change, or the deletion of the row; and what execd
 * must do next.  tests/unit/test_state.c holds a second, independent copy
 * of these tables and checks every cell against the running code.
 *
 * Where the CRI (k8s.io/cri-api runtime/v1 api.proto comments) or the peers
 * decide a cell, the choice follows them:
 *  - StopPodSandbox "is idempotent, and must not return an error if all
 *    relevant resources have already been reclaimed": STOP on STOPPED,
 *    REMOVING or an absent pod succeeds (CRI-O 1.26 also answers success
 *    for an unknown sandbox; containerd says NotFound).
 *  - RemovePodSandbox "must not return an error if the sandbox has already
 *    been removed" and forcibly terminates and removes running containers:
 *    REMOVE on an absent pod is success; on READY/NOTREADY/STOPPING it
 *    stops first (PEERS 1c: critest needs Remove to succeed with running
 *    containers).
 *  - StopContainer "must not return an error if the container has already
 *    been stopped": STOP on EXITED is a nop success; on CREATED a nop too,
 *    as containerd does ("return without error if container is not
 *    running").  An unknown id is NOT_FOUND (both peers).
 *  - RemoveContainer "If the container is running, the container must be
 *    forcibly removed ... must not return an error if the container has
 *    already been removed": REMOVE on RUNNING/STOPPING/UNKNOWN kills then
 *    cleans up; on an absent id succeeds.
 *  - StartContainer on anything but CREATED is refused; CRI-O says
 *    "container %s is not in created state", containerd "container is in
 *    %s state" (both as gRPC Unknown); crisp uses FAILED_PRECONDITION, the
 *    gRPC code for exactly this.
 *  - A failed exec is recorded as containerd does: EXITED, exit code 128,
 *    reason "StartError".
 * Cells that only execd itself can trigger in the wrong state (COMMIT,
 * STARTED, REMOVED ...) are FAILED_PRECONDITION: a bug in execd, refused
 * rather than papered over.
 */
#include <stddef.h>

#include "common/err.h"
#include "common/util.h"
#include "execd/state.h"

#define ERR(c, p) { 0, STATE_EFF_ERROR, 0, CRISP_##c, p, STATE_EVT_NONE }
#define NOP(a) { 0, STATE_EFF_NOP, a, CRISP_OK, NULL, STATE_EVT_NONE }
#define SET(n, a, ev) { n, STATE_EFF_SET, a, CRISP_OK, NULL, ev }
#define DEL(a, ev) { 0, STATE_EFF_DELETE, a, CRISP_OK, NULL, ev }
#define NONE STATE_EVT_NONE

#define P_NF ERR(NOT_FOUND, "not found")
#define P_BUSY ERR(FAILED_PRECONDITION, "is being created")
#define P_BAD(p) ERR(FAILED_PRECONDITION, p)

static const struct state_rule pod_table[POD_STATE_COUNT][POD_EV_COUNT] = {
	/*              COMMIT  ABORT  STOP  STOPPED  INFRA_EXITED  REMOVE  REMOVED */
	[POD_ABSENT] = {
		P_NF,
		NOP(POD_DO_NOTHING),
		NOP(POD_DO_NOTHING),
		P_NF,
		P_NF,
		NOP(POD_DO_NOTHING),
		NOP(POD_DO_NOTHING),
	},
	[POD_CREATING] = {
		SET(POD_READY, POD_DO_NOTHING, NONE),
		DEL(POD_DO_NOTHING, NONE),
		P_BUSY,
		P_BAD("is not stopping"),
		NOP(POD_DO_NOTHING),       /* the create fails and aborts */
		P_BUSY,
		P_BAD("is not being removed"),
	},
	[POD_READY] = {
		P_BAD("is not being created"),
		P_BAD("is not being created"),
		SET(POD_STOPPING, POD_DO_STOP, NONE),
		P_BAD("is not stopping"),
		SET(POD_NOTREADY, POD_DO_NOTHING, NONE),
		SET(POD_REMOVING, POD_DO_STOP_REMOVE, NONE),
		P_BAD("is not being removed"),
	},
	[POD_NOTREADY] = {
		P_BAD("is not being created"),
		P_BAD("is not being created"),
		SET(POD_STOPPING, POD_DO_STOP, NONE),
		P_BAD("is not stopping"),
		NOP(POD_DO_NOTHING),
		SET(POD_REMOVING, POD_DO_STOP_REMOVE, NONE),
		P_BAD("is not being removed"),
	},
	[POD_STOPPING] = {
		P_BAD("is not being created"),
		P_BAD("is not being created"),
		SET(POD_STOPPING, POD_DO_STOP, NONE), /* retry, idempotent */
		SET(POD_STOPPED, POD_DO_NOTHING, NONE),
		NOP(POD_DO_NOTHING),                  /* expected while stopping */
		SET(POD_REMOVING, POD_DO_STOP_REMOVE, NONE),
		P_BAD("is not being removed"),
	},
	[POD_STOPPED] = {
		P_BAD("is not being created"),
		P_BAD("is not being created"),
		NOP(POD_DO_NOTHING),
		NOP(POD_DO_NOTHING),
		NOP(POD_DO_NOTHING),
		SET(POD_REMOVING, POD_DO_REMOVE, NONE),
		P_BAD("is not being removed"),
	},
	[POD_REMOVING] = {
		P_BAD("is not being created"),
		P_BAD("is not being created"),
		NOP(POD_DO_NOTHING),
		NOP(POD_DO_NOTHING),
		NOP(POD_DO_NOTHING),
		SET(POD_REMOVING, POD_DO_STOP_REMOVE, NONE), /* retry, idempotent */
		DEL(POD_DO_NOTHING, NONE),
	},
};

#define C_NF ERR(NOT_FOUND, "not found")
#define C_NOTCREATED ERR(FAILED_PRECONDITION, "is not in created state")

static const struct state_rule ctr_table[CTR_STATE_COUNT][CTR_EV_COUNT] = {
	/* COMMIT ABORT START STARTED START_FAILED STOP EXITED REMOVE REMOVED MONITOR_LOST */
	[CTR_ABSENT] = {
		C_NF,
		NOP(CTR_DO_NOTHING),
		C_NF,
		C_NF,
		C_NF,
		C_NF,
		C_NF,
		NOP(CTR_DO_NOTHING),
		NOP(CTR_DO_NOTHING),
		C_NF,
	},
	[CTR_CREATING] = {
		SET(CTR_CREATED, CTR_DO_NOTHING, STATE_EVT_CREATED),
		DEL(CTR_DO_NOTHING, NONE),
		C_NOTCREATED,
		P_BAD("is not starting"),
		P_BAD("is not starting"),
		P_BUSY,
		P_BAD("is being created"),
		P_BUSY,
		P_BAD("is not being removed"),
		NOP(CTR_DO_NOTHING),        /* the create fails and aborts */
	},
	[CTR_CREATED] = {
		P_BAD("is not being created"),
		P_BAD("is not being created"),
		SET(CTR_STARTING, CTR_DO_LAUNCH, NONE),
		P_BAD("is not starting"),
		P_BAD("is not starting"),
		NOP(CTR_DO_NOTHING),        /* containerd: not running, nothing to stop */
		SET(CTR_EXITED, CTR_DO_NOTHING, STATE_EVT_STOPPED),
		SET(CTR_REMOVING, CTR_DO_CLEANUP, NONE),
		P_BAD("is not being removed"),
		SET(CTR_UNKNOWN, CTR_DO_NOTHING, NONE),
	},
	[CTR_STARTING] = {
		P_BAD("is not being created"),
		P_BAD("is not being created"),
		C_NOTCREATED,
		SET(CTR_RUNNING, CTR_DO_NOTHING, STATE_EVT_STARTED),
		SET(CTR_EXITED, CTR_DO_NOTHING, STATE_EVT_STOPPED),
		SET(CTR_STOPPING, CTR_DO_KILL, NONE),
		SET(CTR_EXITED, CTR_DO_NOTHING, STATE_EVT_STOPPED),
		SET(CTR_REMOVING, CTR_DO_KILL_CLEANUP, NONE),
		P_BAD("is not being removed"),
		SET(CTR_UNKNOWN, CTR_DO_NOTHING, NONE),
	},
	[CTR_RUNNING] = {
		P_BAD("is not being created"),
		P_BAD("is not being created"),
		C_NOTCREATED,
		NOP(CTR_DO_NOTHING),        /* repeated report */
		P_BAD("is not starting"),
		SET(CTR_STOPPING, CTR_DO_KILL, NONE),
		SET(CTR_EXITED, CTR_DO_NOTHING, STATE_EVT_STOPPED),
		SET(CTR_REMOVING, CTR_DO_KILL_CLEANUP, NONE),
		P_BAD("is not being removed"),
		SET(CTR_UNKNOWN, CTR_DO_NOTHING, NONE),
	},
	[CTR_STOPPING] = {
		P_BAD("is not being created"),
		P_BAD("is not being created"),
		C_NOTCREATED,
		SET(CTR_STOPPING, CTR_DO_KILL, NONE), /* started while a stop waited */
		SET(CTR_EXITED, CTR_DO_NOTHING, STATE_EVT_STOPPED),
		SET(CTR_STOPPING, CTR_DO_KILL, NONE), /* retry, maybe a shorter timeout */
		SET(CTR_EXITED, CTR_DO_NOTHING, STATE_EVT_STOPPED),
		SET(CTR_REMOVING, CTR_DO_KILL_CLEANUP, NONE),
		P_BAD("is not being removed"),
		SET(CTR_UNKNOWN, CTR_DO_NOTHING, NONE),
	},
	[CTR_EXITED] = {
		P_BAD("is not being created"),
		P_BAD("is not being created"),
		C_NOTCREATED,
		P_BAD("is not starting"),
		P_BAD("is not starting"),
		NOP(CTR_DO_NOTHING),        /* CRI: already stopped is success */
		NOP(CTR_DO_NOTHING),        /* first exit record wins */
		SET(CTR_REMOVING, CTR_DO_CLEANUP, NONE),
		P_BAD("is not being removed"),
		NOP(CTR_DO_NOTHING),        /* the exit is already recorded */
	},
	[CTR_UNKNOWN] = {
		P_BAD("is not being created"),
		P_BAD("is not being created"),
		C_NOTCREATED,
		SET(CTR_RUNNING, CTR_DO_NOTHING, NONE), /* re-adopted after recovery */
		P_BAD("is not starting"),
		SET(CTR_STOPPING, CTR_DO_KILL, NONE),
		SET(CTR_EXITED, CTR_DO_NOTHING, STATE_EVT_STOPPED),
		SET(CTR_REMOVING, CTR_DO_KILL_CLEANUP, NONE),
		P_BAD("is not being removed"),
		NOP(CTR_DO_NOTHING),
	},
	[CTR_REMOVING] = {
		P_BAD("is not being created"),
		P_BAD("is not being created"),
		C_NOTCREATED,
		P_BAD("is being removed"),
		P_BAD("is being removed"),
		NOP(CTR_DO_NOTHING),        /* going away: stopping is moot */
		NOP(CTR_DO_NOTHING),
		SET(CTR_REMOVING, CTR_DO_KILL_CLEANUP, NONE), /* retry, idempotent */
		DEL(CTR_DO_NOTHING, STATE_EVT_DELETED),
		NOP(CTR_DO_NOTHING),
	},
};

const struct state_rule *state_pod_rule(enum pod_state s, enum pod_event e)
{
	if ((unsigned)s >= POD_STATE_COUNT || (unsigned)e >= POD_EV_COUNT)
		return NULL;
	return &pod_table[s][e];
}

const struct state_rule *state_ctr_rule(enum ctr_state s, enum ctr_event e)
{
	if ((unsigned)s >= CTR_STATE_COUNT || (unsigned)e >= CTR_EV_COUNT)
		return NULL;
	return &ctr_table[s][e];
}

static const char *name_of(const char *const *v, size_t n, int i)
{
	return i >= 0 && (size_t)i < n && v[i] != NULL ? v[i] : "?";
}

const char *pod_state_name(int s)
{
	static const char *const n[] = { "ABSENT", "CREATING", "READY", "NOTREADY", "STOPPING",
		"STOPPED", "REMOVING" };
	return name_of(n, ARRAY_SIZE(n), s);
}

const char *pod_event_name(int e)
{
	static const char *const n[] = { "COMMIT", "ABORT", "STOP", "STOPPED", "INFRA_EXITED",
		"REMOVE", "REMOVED" };
	return name_of(n, ARRAY_SIZE(n), e);
}

const char *ctr_state_name(int s)
{
	static const char *const n[] = { "ABSENT", "CREATING", "CREATED", "STARTING", "RUNNING",
		"STOPPING", "EXITED", "UNKNOWN", "REMOVING" };
	return name_of(n, ARRAY_SIZE(n), s);
}

const char *ctr_event_name(int e)
{
	static const char *const n[] = { "COMMIT", "ABORT", "START", "STARTED", "START_FAILED",
		"STOP", "EXITED", "REMOVE", "REMOVED", "MONITOR_LOST" };
	return name_of(n, ARRAY_SIZE(n), e);
}

int pod_state_cri(enum pod_state s)
{
	return s == POD_READY ? 0 : 1;
}

int ctr_state_cri(enum ctr_state s)
{
	switch (s) {
	case CTR_CREATING:
	case CTR_CREATED:
	case CTR_STARTING:
		return 0;
	case CTR_RUNNING:
	case CTR_STOPPING:
		return 1;
	case CTR_EXITED:
		return 2;
	default:
		return 3;
	}
}
