/*
 * execd's ListContainers / ContainerStatus answers, through real ipc (a
 * frontd end and an execd end on one loop), from a real state database
 * holding a pod and containers recorded the way CreateContainer records
 * them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "execd/containers.h"
#include "ipc/ipc.h"
#include "proto/ipc.pb-c.h"

static struct {
	char dir[64];
	struct loop *loop;
	struct execd_pods pods;
	struct ipc_chan *execd_end, *front_end;
	char pod[STATE_ID_LEN + 1], c1[STATE_ID_LEN + 1], c2[STATE_ID_LEN + 1];
	bool answered;
	crisp_err_t err;
	bool failed;
	ProtobufCMessage *ans; /* a copy of the answer's payload */
} T;

static void on_list(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	(void)arg;
	ctrs_on_list(ch, m, &T.pods);
}

static void on_status(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	(void)arg;
	ctrs_on_status(ch, m, &T.pods);
}

static const struct ipc_handler handlers[] = {
	{ IPC_CTR_LIST, on_list },
	{ IPC_CTR_STATUS, on_status },
};

static void on_answer(struct ipc_chan *ch, struct ipc_msg *ans, const crisp_err_t *e, void *arg)
{
	(void)ch;
	(void)arg;
	T.answered = true;
	T.failed = e != NULL;
	if (e) {
		T.err = *e;
		return;
	}
	T.ans = ans->pb;
	ans->pb = NULL; /* keep it */
}

static void request(uint32_t type, const ProtobufCMessage *pb)
{
	crisp_err_t err = CRISP_ERR_INIT;
	uint64_t end = crisp_now_ms() + 10000;

	if (T.ans)
		protobuf_c_message_free_unpacked(T.ans, NULL);
	T.ans = NULL;
	T.answered = false;
	if (ipc_request(T.front_end, type, pb, -1, 10000, on_answer, NULL, NULL, &err) < 0)
		fail_msg("request: %s", err.msg);
	while (!T.answered && crisp_now_ms() < end)
		assert_int_equal(loop_run_once(T.loop, 50), 0);
	assert_true(T.answered);
}

static const Runtime__V1__ListContainersResponse *list(const Runtime__V1__ContainerFilter *f)
{
	Runtime__V1__ListContainersRequest rq = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
	Cipc__CtrList w = CIPC__CTR_LIST__INIT;

	rq.filter = (Runtime__V1__ContainerFilter *)f;
	w.req = &rq;
	request(IPC_CTR_LIST, &w.base);
	if (T.failed)
		fail_msg("list: %s", T.err.msg);
	return ((const Cipc__CtrListAns *)T.ans)->resp;
}

static int group_setup(void **state)
{
	int sv[2];
	struct ipc_chan_cfg c;
	uint8_t key[IPC_KEY_SIZE] = { 9 };
	crisp_err_t err = CRISP_ERR_INIT;
	struct state_kv plabels[] = { { "app", "web" } };
	struct state_pod_spec ps = { .name = "web", .namespace = "ns", .uid = "u1", .labels = plabels, .nlabels = 1,
				     .log_directory = "/var/log/pods/ns_web_u1", .runtime_handler = "",
				     .hostname = "web", .cgroup_parent = "" };
	struct state_kv l1[] = { { "tier", "front" } }, l2[] = { { "tier", "back" } };
	Runtime__V1__ContainerConfig cc = RUNTIME__V1__CONTAINER_CONFIG__INIT;
	Runtime__V1__Mount mnt = RUNTIME__V1__MOUNT__INIT, *pm = &mnt;
	uint8_t cbuf[512];
	size_t clen;

	(void)state;
	strcpy(T.dir, "/tmp/crisp-ctrans-XXXXXX");
	assert_non_null(mkdtemp(T.dir));
	T.loop = loop_new();
	assert_non_null(T.loop);
	memset(&T.pods, 0, sizeof T.pods);
	if (state_open(T.dir, 0, &T.pods.st, &err) < 0)
		fail_msg("state_open: %s", err.msg);
	assert_int_equal(state_pod_reserve(T.pods.st, &ps, T.pod, &err), 0);
	assert_int_equal(state_pod_commit(T.pods.st, T.pod, NULL, &err), 0);

	mnt.container_path = "/data";
	mnt.host_path = "/var/lib/kubelet/pods/u1/volumes/data";
	mnt.readonly = true;
	cc.n_mounts = 1;
	cc.mounts = &pm;
	clen = protobuf_c_message_get_packed_size(&cc.base);
	assert_true(clen <= sizeof cbuf);
	protobuf_c_message_pack(&cc.base, cbuf);
	struct state_ctr_spec c1 = { .pod_id = T.pod, .name = "nginx", .image_ref = "docker.io/library/nginx:1",
				     .image_id = "sha256:1111", .log_path = "nginx/0.log", .labels = l1, .nlabels = 1,
				     .config = cbuf, .config_len = clen };
	struct state_ctr_spec c2 = { .pod_id = T.pod, .name = "db", .image_ref = "busybox:latest",
				     .image_id = "sha256:2222", .log_path = "db/0.log", .labels = l2, .nlabels = 1,
				     .config = cbuf, .config_len = clen };
	assert_int_equal(state_ctr_reserve(T.pods.st, &c1, T.c1, &err), 0);
	assert_int_equal(state_ctr_commit(T.pods.st, T.c1, NULL, &err), 0);
	assert_int_equal(state_ctr_reserve(T.pods.st, &c2, T.c2, &err), 0);
	assert_int_equal(state_ctr_commit(T.pods.st, T.c2, NULL, &err), 0);
	/* c2 ran and exited 3 */
	struct ctr_event_data ev = { .pid = 1234, .pid_start = 1 };
	assert_true(state_container_transition(T.pods.st, T.c2, CTR_EV_START, NULL, &err) >= 0);
	assert_true(state_container_transition(T.pods.st, T.c2, CTR_EV_STARTED, &ev, &err) >= 0);
	struct ctr_event_data ex = { .exit_code = 3 };
	assert_true(state_container_transition(T.pods.st, T.c2, CTR_EV_EXITED, &ex, &err) >= 0);

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	memset(&c, 0, sizeof c);
	c.fd = sv[0];
	c.self = ROLE_EXECD;
	c.peer = ROLE_FRONTD;
	c.peer_pid = getpid();
	c.peer_uid = getuid();
	c.key = key;
	c.handlers = handlers;
	c.nhandlers = ARRAY_SIZE(handlers);
	T.execd_end = ipc_chan_new(T.loop, &c, &err);
	assert_non_null(T.execd_end);
	c.fd = sv[1];
	c.self = ROLE_FRONTD;
	c.peer = ROLE_EXECD;
	c.handlers = NULL;
	c.nhandlers = 0;
	T.front_end = ipc_chan_new(T.loop, &c, &err);
	assert_non_null(T.front_end);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (T.ans)
		protobuf_c_message_free_unpacked(T.ans, NULL);
	if (T.front_end) {
		ipc_chan_close(T.front_end);
		ipc_chan_unref(T.front_end);
	}
	if (T.execd_end) {
		ipc_chan_close(T.execd_end);
		ipc_chan_unref(T.execd_end);
	}
	if (T.pods.st)
		state_close(T.pods.st);
	if (T.loop)
		loop_free(T.loop);
	snprintf(cmd, sizeof cmd, "rm -rf %s", T.dir);
	(void)!system(cmd);
	return 0;
}

static void test_list_and_filters(void **state)
{
	const Runtime__V1__ListContainersResponse *r;
	Runtime__V1__ContainerFilter f = RUNTIME__V1__CONTAINER_FILTER__INIT;
	Runtime__V1__ContainerStateValue sv = RUNTIME__V1__CONTAINER_STATE_VALUE__INIT;
	Runtime__V1__ContainerFilter__LabelSelectorEntry e = RUNTIME__V1__CONTAINER_FILTER__LABEL_SELECTOR_ENTRY__INIT,
						       *pe = &e;

	(void)state;
	r = list(NULL);
	assert_int_equal(r->n_containers, 2);
	for (size_t i = 0; i < 2; i++) {
		const Runtime__V1__Container *c = r->containers[i];
		assert_string_equal(c->pod_sandbox_id, T.pod);
		if (!strcmp(c->id, T.c1)) {
			assert_string_equal(c->metadata->name, "nginx");
			assert_string_equal(c->image->image, "docker.io/library/nginx:1");
			assert_string_equal(c->image_ref, "sha256:1111");
			assert_int_equal(c->state, RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED);
			assert_int_equal(c->n_labels, 1);
			assert_string_equal(c->labels[0]->value, "front");
		} else {
			assert_string_equal(c->id, T.c2);
			assert_int_equal(c->state, RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED);
		}
	}
	sv.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
	f.state = &sv;
	r = list(&f);
	assert_int_equal(r->n_containers, 1);
	assert_string_equal(r->containers[0]->id, T.c2);
	f.state = NULL;
	e.key = "tier";
	e.value = "front";
	f.n_label_selector = 1;
	f.label_selector = &pe;
	r = list(&f);
	assert_int_equal(r->n_containers, 1);
	assert_string_equal(r->containers[0]->id, T.c1);
	f.n_label_selector = 0;
	char prefix[13];
	memcpy(prefix, T.c2, 12);
	prefix[12] = '\0';
	f.id = prefix;
	r = list(&f);
	assert_int_equal(r->n_containers, 1);
	f.id = "";
	f.pod_sandbox_id = "ffffffffffff";
	r = list(&f);
	assert_int_equal(r->n_containers, 0);
}

static void test_status(void **state)
{
	Runtime__V1__ContainerStatusRequest rq = RUNTIME__V1__CONTAINER_STATUS_REQUEST__INIT;
	Cipc__CtrStatus w = CIPC__CTR_STATUS__INIT;
	const Runtime__V1__ContainerStatus *st;

	(void)state;
	rq.container_id = T.c2;
	w.req = &rq;
	request(IPC_CTR_STATUS, &w.base);
	if (T.failed)
		fail_msg("status: %s", T.err.msg);
	st = ((const Cipc__CtrStatusAns *)T.ans)->resp->status;
	assert_string_equal(st->id, T.c2);
	assert_int_equal(st->state, RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED);
	assert_int_equal(st->exit_code, 3);
	assert_string_equal(st->reason, "Error");
	assert_true(st->started_at > 0 && st->finished_at >= st->started_at);
	assert_string_equal(st->log_path, "/var/log/pods/ns_web_u1/db/0.log");
	assert_int_equal(st->n_mounts, 1);
	assert_string_equal(st->mounts[0]->container_path, "/data");
	assert_true(st->mounts[0]->readonly);

	rq.container_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	request(IPC_CTR_STATUS, &w.base);
	assert_true(T.failed);
	assert_int_equal(T.err.code, CRISP_NOT_FOUND);
	rq.container_id = "NOT-AN-ID";
	request(IPC_CTR_STATUS, &w.base);
	assert_true(T.failed);
	assert_int_equal(T.err.code, CRISP_INVALID_ARGUMENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_and_filters),
		cmocka_unit_test(test_status),
	};
	return cmocka_run_group_tests_name("ctr_answers", tests, group_setup, group_teardown);
}
