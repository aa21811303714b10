/*
 * crisp: unit tests of frontd's CRI request decoding and validation
 * (frontd/validate.h).
 *
 * Requests are built as protobuf-c structs shaped like what kubelet 1.26
 * and critest 1.26 send, packed, and run through cri_decode_request() (the
 * real path); every accepted or refused struct is also run through
 * cri_validate(), which must agree.  Refusals must be INVALID_ARGUMENT and
 * name the field.  Wire-level cases (NUL, bad UTF-8) patch the packed bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "frontd/validate.h"
#include "proto/cri.pb-c.h"

/* ---- harness ---- */

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *buf;

	*len = protobuf_c_message_get_packed_size(m);
	buf = malloc(*len + 1);
	assert_non_null(buf);
	assert_int_equal(protobuf_c_message_pack(m, buf), *len);
	return buf;
}

static void check_ok(const ProtobufCMessage *m, int line)
{
	crisp_err_t err = CRISP_ERR_INIT;
	size_t len;
	uint8_t *buf = pack(m, &len);
	ProtobufCMessage *r = cri_decode_request(m->descriptor, buf, len, &err);

	free(buf);
	if (r == NULL)
		fail_msg("line %d: %s refused: %s", line, m->descriptor->short_name, err.msg);
	assert_ptr_equal(r->descriptor, m->descriptor);
	protobuf_c_message_free_unpacked(r, NULL);
	if (cri_validate(m, &err) != 0)
		fail_msg("line %d: cri_validate refused %s: %s", line, m->descriptor->short_name, err.msg);
}

static void check_bad(const ProtobufCMessage *m, const char *want, int line)
{
	crisp_err_t err = CRISP_ERR_INIT, err2 = CRISP_ERR_INIT;
	size_t len;
	uint8_t *buf = pack(m, &len);
	ProtobufCMessage *r = cri_decode_request(m->descriptor, buf, len, &err);

	free(buf);
	if (r != NULL) {
		protobuf_c_message_free_unpacked(r, NULL);
		fail_msg("line %d: %s accepted, wanted '%s'", line, m->descriptor->short_name, want);
	}
	if (err.code != CRISP_INVALID_ARGUMENT || strstr(err.msg, want) == NULL)
		fail_msg("line %d: got %s '%s', wanted '%s'", line, crisp_code_name(err.code), err.msg, want);
	if (cri_validate(m, &err2) != -1 || strcmp(err.msg, err2.msg) != 0)
		fail_msg("line %d: cri_validate said '%s', decode said '%s'", line, err2.msg, err.msg);
}

/* Pack m, replace the bytes of marker (the same length as repl) and decode. */
static void check_patched(const ProtobufCMessage *m, const char *marker, const char *repl, size_t rlen,
			  const char *want, int line)
{
	crisp_err_t err = CRISP_ERR_INIT;
	size_t len;
	uint8_t *buf = pack(m, &len), *at;
	ProtobufCMessage *r;

	assert_int_equal(strlen(marker), rlen);
	at = memmem(buf, len, marker, rlen);
	if (at == NULL)
		fail_msg("line %d: marker '%s' not in the packed message", line, marker);
	memcpy(at, repl, rlen);
	r = cri_decode_request(m->descriptor, buf, len, &err);
	free(buf);
	if (r != NULL) {
		protobuf_c_message_free_unpacked(r, NULL);
		if (want == NULL)
			return;
		fail_msg("line %d: patched %s accepted, wanted '%s'", line, m->descriptor->short_name, want);
	}
	if (want == NULL)
		fail_msg("line %d: patched %s refused: %s", line, m->descriptor->short_name, err.msg);
	if (err.code != CRISP_INVALID_ARGUMENT || strstr(err.msg, want) == NULL)
		fail_msg("line %d: got '%s', wanted '%s'", line, err.msg, want);
}

#define OK(rq) check_ok(&(rq)->base, __LINE__)
#define BAD(rq, want) check_bad(&(rq)->base, want, __LINE__)
#define PATCHED(rq, marker, repl, want) check_patched(&(rq)->base, marker, repl, sizeof(repl) - 1, want, __LINE__)

/* Fill a map<string,string> (entries arr, pointer array ptrs) from kv. */
#define FILL_MAP(arr, ptrs, init, kv)                                        \
	do {                                                                 \
		for (size_t i_ = 0; i_ < ARRAY_SIZE(kv); i_++) {             \
			(arr)[i_] = (__typeof__((arr)[0]))init;              \
			(arr)[i_].key = (char *)(kv)[i_][0];                 \
			(arr)[i_].value = (char *)(kv)[i_][1];               \
			(ptrs)[i_] = &(arr)[i_];                             \
		}                                                            \
	} while (0)

/* A string of n copies of ch (caller frees). */
static char *repeat(char ch, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

#define POD_ID "5f3a8c1b2d4e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"
#define CTR_ID "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define POD_NAME "nginx-7c5ddbdf54-x8kqz"
#define POD_UID "3c5a8e0e-7a1e-4b9e-9d1a-6f0e5c3b2a10"
#define POD_NS "default"
#define KUBELET_POD_DIR "/var/lib/kubelet/pods/" POD_UID
#define DNS_SERVERS_TEST 32

/* ---- a pod sandbox config as kubelet 1.26 builds it ---- */

static const char *const sandbox_labels[][2] = {
	{ "app", "nginx" },
	{ "pod-template-hash", "7c5ddbdf54" },
	{ "io.kubernetes.pod.name", POD_NAME },
	{ "io.kubernetes.pod.namespace", POD_NS },
	{ "io.kubernetes.pod.uid", POD_UID },
};

static const char *const sandbox_annotations[][2] = {
	{ "kubernetes.io/config.seen", "2024-05-02T10:11:12.123456789Z" },
	{ "kubernetes.io/config.source", "api" },
	{ "kubectl.kubernetes.io/last-applied-configuration",
	  "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"nginx\",\"annotations\":"
	  "{\"note\":\"caf\xc3\xa9 \xe2\x9c\x93\"}}}\n" },
};

static const char *const sandbox_sysctls[][2] = {
	{ "net.ipv4.ip_unprivileged_port_start", "0" },
	{ "net.ipv4.ping_group_range", "0 2147483647" },
};

struct sandbox_fx {
	Runtime__V1__PodSandboxConfig cfg;
	Runtime__V1__PodSandboxMetadata md;
	Runtime__V1__DNSConfig dns;
	char *servers[2], *searches[3], *options[1];
	Runtime__V1__PortMapping pm[2], *pmp[2];
	Runtime__V1__PodSandboxConfig__LabelsEntry lab[ARRAY_SIZE(sandbox_labels)];
	Runtime__V1__PodSandboxConfig__LabelsEntry *labp[ARRAY_SIZE(sandbox_labels)];
	Runtime__V1__PodSandboxConfig__AnnotationsEntry ann[ARRAY_SIZE(sandbox_annotations)];
	Runtime__V1__PodSandboxConfig__AnnotationsEntry *annp[ARRAY_SIZE(sandbox_annotations)];
	Runtime__V1__LinuxPodSandboxConfig linux;
	Runtime__V1__LinuxSandboxSecurityContext sc;
	Runtime__V1__NamespaceOption ns;
	Runtime__V1__SecurityProfile seccomp;
	Runtime__V1__Int64Value group;
	int64_t groups[2];
	Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry sys[ARRAY_SIZE(sandbox_sysctls)];
	Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry *sysp[ARRAY_SIZE(sandbox_sysctls)];
	Runtime__V1__LinuxContainerResources overhead, res;
};

static void sandbox_fx_init(struct sandbox_fx *f)
{
	memset(f, 0, sizeof *f);
	f->cfg = (Runtime__V1__PodSandboxConfig)RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
	f->md = (Runtime__V1__PodSandboxMetadata)RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
	f->md.name = POD_NAME;
	f->md.uid = POD_UID;
	f->md.namespace_ = POD_NS;
	f->md.attempt = 0;
	f->cfg.metadata = &f->md;
	f->cfg.hostname = POD_NAME;
	f->cfg.log_directory = "/var/log/pods/" POD_NS "_" POD_NAME "_" POD_UID;

	f->dns = (Runtime__V1__DNSConfig)RUNTIME__V1__DNSCONFIG__INIT;
	f->servers[0] = "10.96.0.10";
	f->servers[1] = "fd00:10:96::a";
	f->searches[0] = "default.svc.cluster.local";
	f->searches[1] = "svc.cluster.local";
	f->searches[2] = "cluster.local";
	f->options[0] = "ndots:5";
	f->dns.n_servers = 2, f->dns.servers = f->servers;
	f->dns.n_searches = 3, f->dns.searches = f->searches;
	f->dns.n_options = 1, f->dns.options = f->options;
	f->cfg.dns_config = &f->dns;

	for (int i = 0; i < 2; i++) {
		f->pm[i] = (Runtime__V1__PortMapping)RUNTIME__V1__PORT_MAPPING__INIT;
		f->pmp[i] = &f->pm[i];
	}
	f->pm[0].protocol = RUNTIME__V1__PROTOCOL__TCP;
	f->pm[0].container_port = 80;
	f->pm[1].protocol = RUNTIME__V1__PROTOCOL__UDP;
	f->pm[1].container_port = 53;
	f->pm[1].host_port = 5353;
	f->pm[1].host_ip = "127.0.0.1";
	f->cfg.n_port_mappings = 2, f->cfg.port_mappings = f->pmp;

	FILL_MAP(f->lab, f->labp, RUNTIME__V1__POD_SANDBOX_CONFIG__LABELS_ENTRY__INIT, sandbox_labels);
	f->cfg.n_labels = ARRAY_SIZE(sandbox_labels), f->cfg.labels = f->labp;
	FILL_MAP(f->ann, f->annp, RUNTIME__V1__POD_SANDBOX_CONFIG__ANNOTATIONS_ENTRY__INIT, sandbox_annotations);
	f->cfg.n_annotations = ARRAY_SIZE(sandbox_annotations), f->cfg.annotations = f->annp;

	f->linux = (Runtime__V1__LinuxPodSandboxConfig)RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
	f->linux.cgroup_parent = "/kubepods/besteffort/pod" POD_UID;
	f->sc = (Runtime__V1__LinuxSandboxSecurityContext)RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
	f->ns = (Runtime__V1__NamespaceOption)RUNTIME__V1__NAMESPACE_OPTION__INIT;
	f->ns.network = RUNTIME__V1__NAMESPACE_MODE__POD;
	f->ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	f->ns.ipc = RUNTIME__V1__NAMESPACE_MODE__POD;
	f->sc.namespace_options = &f->ns;
	f->group = (Runtime__V1__Int64Value)RUNTIME__V1__INT64_VALUE__INIT;
	f->group.value = 3000; /* runAsGroup without runAsUser: legal for a sandbox */
	f->sc.run_as_group = &f->group;
	f->groups[0] = 2000;
	f->groups[1] = 3000;
	f->sc.n_supplemental_groups = 2, f->sc.supplemental_groups = f->groups;
	f->seccomp = (Runtime__V1__SecurityProfile)RUNTIME__V1__SECURITY_PROFILE__INIT;
	f->seccomp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
	f->sc.seccomp = &f->seccomp;
	f->sc.seccomp_profile_path = "runtime/default";
	f->linux.security_context = &f->sc;
	FILL_MAP(f->sys, f->sysp, RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__SYSCTLS_ENTRY__INIT, sandbox_sysctls);
	f->linux.n_sysctls = ARRAY_SIZE(sandbox_sysctls), f->linux.sysctls = f->sysp;
	f->overhead = (Runtime__V1__LinuxContainerResources)RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	f->overhead.cpu_period = 100000;
	f->overhead.cpu_quota = 25000;
	f->overhead.cpu_shares = 256;
	f->overhead.memory_limit_in_bytes = 128 << 20;
	f->linux.overhead = &f->overhead;
	f->res = f->overhead;
	f->res.memory_limit_in_bytes = 512 << 20;
	f->linux.resources = &f->res;
	f->cfg.linux = &f->linux;
}

/* ---- a container config as kubelet 1.26 builds it ---- */

static const char *const container_labels[][2] = {
	{ "io.kubernetes.container.name", "nginx" },
	{ "io.kubernetes.pod.name", POD_NAME },
	{ "io.kubernetes.pod.namespace", POD_NS },
	{ "io.kubernetes.pod.uid", POD_UID },
};

static const char *const container_annotations[][2] = {
	{ "io.kubernetes.container.hash", "4a3b2c1d" },
	{ "io.kubernetes.container.restartCount", "0" },
	{ "io.kubernetes.container.terminationMessagePath", "/dev/termination-log" },
	{ "io.kubernetes.container.terminationMessagePolicy", "File" },
	{ "io.kubernetes.pod.terminationGracePeriod", "30" },
	{ "io.kubernetes.container.ports", "[{\"name\":\"http\",\"containerPort\":80,\"protocol\":\"TCP\"}]" },
};

static const char *const kubelet_masked[] = {
	"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
	"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
};

static const char *const kubelet_readonly[] = {
	"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

struct container_fx {
	Runtime__V1__ContainerConfig cfg;
	Runtime__V1__ContainerMetadata md;
	Runtime__V1__ImageSpec image;
	char *args[3];
	Runtime__V1__KeyValue env[4], *envp[4];
	Runtime__V1__Mount mnt[3], *mntp[3];
	Runtime__V1__Device dev[1], *devp[1];
	Runtime__V1__ContainerConfig__LabelsEntry lab[ARRAY_SIZE(container_labels)];
	Runtime__V1__ContainerConfig__LabelsEntry *labp[ARRAY_SIZE(container_labels)];
	Runtime__V1__ContainerConfig__AnnotationsEntry ann[ARRAY_SIZE(container_annotations)];
	Runtime__V1__ContainerConfig__AnnotationsEntry *annp[ARRAY_SIZE(container_annotations)];
	Runtime__V1__LinuxContainerConfig linux;
	Runtime__V1__LinuxContainerResources res;
	Runtime__V1__HugepageLimit hp[2], *hpp[2];
	Runtime__V1__LinuxContainerResources__UnifiedEntry uni[1], *unip[1];
	Runtime__V1__LinuxContainerSecurityContext sc;
	Runtime__V1__Capability caps;
	char *add[1], *drop[1];
	Runtime__V1__NamespaceOption ns;
	Runtime__V1__Int64Value user;
	char *masked[ARRAY_SIZE(kubelet_masked)], *readonly[ARRAY_SIZE(kubelet_readonly)];
	Runtime__V1__SecurityProfile seccomp;
};

static void container_fx_init(struct container_fx *f)
{
	static const char *const unified[][2] = { { "memory.high", "429496729" } };

	memset(f, 0, sizeof *f);
	f->cfg = (Runtime__V1__ContainerConfig)RUNTIME__V1__CONTAINER_CONFIG__INIT;
	f->md = (Runtime__V1__ContainerMetadata)RUNTIME__V1__CONTAINER_METADATA__INIT;
	f->md.name = "nginx";
	f->cfg.metadata = &f->md;
	f->image = (Runtime__V1__ImageSpec)RUNTIME__V1__IMAGE_SPEC__INIT;
	f->image.image = "sha256:0f8498f13f3adef3f3c8b52cdf069ecc880b081159be6349163d144e8aa5fb29";
	f->cfg.image = &f->image;
	f->args[0] = "nginx";
	f->args[1] = "-g";
	f->args[2] = "daemon off;";
	f->cfg.n_args = 3, f->cfg.args = f->args;
	f->cfg.working_dir = "/usr/share/nginx/html/";

	static const char *const env[][2] = {
		{ "KUBERNETES_SERVICE_HOST", "10.96.0.1" },
		{ "KUBERNETES_PORT", "tcp://10.96.0.1:443" },
		{ "GREETING", "gr\xc3\xbc\xc3\x9f gott" },
		{ "EMPTY", "" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(env); i++) {
		f->env[i] = (Runtime__V1__KeyValue)RUNTIME__V1__KEY_VALUE__INIT;
		f->env[i].key = (char *)env[i][0];
		f->env[i].value = (char *)env[i][1];
		f->envp[i] = &f->env[i];
	}
	f->cfg.n_envs = ARRAY_SIZE(env), f->cfg.envs = f->envp;

	static const char *const mnt[][2] = {
		{ "/etc/hosts", KUBELET_POD_DIR "/etc-hosts" },
		{ "/dev/termination-log", KUBELET_POD_DIR "/containers/nginx/1f2e3d4c" },
		{ "/var/run/secrets/kubernetes.io/serviceaccount",
		  KUBELET_POD_DIR "/volumes/kubernetes.io~projected/kube-api-access-x2v9p" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(mnt); i++) {
		f->mnt[i] = (Runtime__V1__Mount)RUNTIME__V1__MOUNT__INIT;
		f->mnt[i].container_path = (char *)mnt[i][0];
		f->mnt[i].host_path = (char *)mnt[i][1];
		f->mntp[i] = &f->mnt[i];
	}
	f->mnt[2].readonly = true;
	f->mnt[2].propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
	f->cfg.n_mounts = 3, f->cfg.mounts = f->mntp;
	f->dev[0] = (Runtime__V1__Device)RUNTIME__V1__DEVICE__INIT;
	f->dev[0].container_path = "/dev/fuse";
	f->dev[0].host_path = "/dev/fuse";
	f->dev[0].permissions = "rwm";
	f->devp[0] = &f->dev[0];
	f->cfg.n_devices = 1, f->cfg.devices = f->devp;

	FILL_MAP(f->lab, f->labp, RUNTIME__V1__CONTAINER_CONFIG__LABELS_ENTRY__INIT, container_labels);
	f->cfg.n_labels = ARRAY_SIZE(container_labels), f->cfg.labels = f->labp;
	FILL_MAP(f->ann, f->annp, RUNTIME__V1__CONTAINER_CONFIG__ANNOTATIONS_ENTRY__INIT, container_annotations);
	f->cfg.n_annotations = ARRAY_SIZE(container_annotations), f->cfg.annotations = f->annp;
	f->cfg.log_path = "nginx/0.log";

	f->linux = (Runtime__V1__LinuxContainerConfig)RUNTIME__V1__LINUX_CONTAINER_CONFIG__INIT;
	f->res = (Runtime__V1__LinuxContainerResources)RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	f->res.cpu_period = 100000;
	f->res.cpu_quota = 50000;
	f->res.cpu_shares = 512;
	f->res.memory_limit_in_bytes = 256 << 20;
	f->res.oom_score_adj = 968;
	f->res.cpuset_cpus = "0-3,6";
	f->res.cpuset_mems = "0";
	for (int i = 0; i < 2; i++) {
		f->hp[i] = (Runtime__V1__HugepageLimit)RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
		f->hpp[i] = &f->hp[i];
	}
	f->hp[0].page_size = "2MB";
	f->hp[1].page_size = "1GB";
	f->res.n_hugepage_limits = 2, f->res.hugepage_limits = f->hpp;
	FILL_MAP(f->uni, f->unip, RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT, unified);
	f->res.n_unified = 1, f->res.unified = f->unip;
	f->linux.resources = &f->res;

	f->sc = (Runtime__V1__LinuxContainerSecurityContext)RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
	f->caps = (Runtime__V1__Capability)RUNTIME__V1__CAPABILITY__INIT;
	f->add[0] = "NET_BIND_SERVICE";
	f->drop[0] = "ALL";
	f->caps.n_add_capabilities = 1, f->caps.add_capabilities = f->add;
	f->caps.n_drop_capabilities = 1, f->caps.drop_capabilities = f->drop;
	f->sc.capabilities = &f->caps;
	f->ns = (Runtime__V1__NamespaceOption)RUNTIME__V1__NAMESPACE_OPTION__INIT;
	f->ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	f->sc.namespace_options = &f->ns;
	f->user = (Runtime__V1__Int64Value)RUNTIME__V1__INT64_VALUE__INIT;
	f->user.value = 101;
	f->sc.run_as_user = &f->user;
	f->sc.no_new_privs = true;
	for (size_t i = 0; i < ARRAY_SIZE(kubelet_masked); i++)
		f->masked[i] = (char *)kubelet_masked[i];
	for (size_t i = 0; i < ARRAY_SIZE(kubelet_readonly); i++)
		f->readonly[i] = (char *)kubelet_readonly[i];
	f->sc.n_masked_paths = ARRAY_SIZE(kubelet_masked), f->sc.masked_paths = f->masked;
	f->sc.n_readonly_paths = ARRAY_SIZE(kubelet_readonly), f->sc.readonly_paths = f->readonly;
	f->seccomp = (Runtime__V1__SecurityProfile)RUNTIME__V1__SECURITY_PROFILE__INIT;
	f->seccomp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	f->seccomp.localhost_ref = "/var/lib/kubelet/seccomp/profiles/audit.json";
	f->sc.seccomp = &f->seccomp;
	f->sc.seccomp_profile_path = "localhost//var/lib/kubelet/seccomp/profiles/audit.json";
	f->sc.apparmor_profile = "runtime/default";
	f->linux.security_context = &f->sc;
	f->cfg.linux = &f->linux;
}

/* ---- helpers ---- */

static void test_helper_utf8(void **state)
{
#define U(lit) lit, sizeof(lit) - 1
	static const struct {
		const char *s;
		size_t n;
		bool ok;
	} cases[] = {
		{ U(""), true },
		{ U("plain ascii, long enough for the word loop"), true },
		{ U("caf\xc3\xa9"), true },
		{ U("\xe2\x9c\x93\xf0\x9f\x90\xb3"), true },
		{ U("\xf4\x8f\xbf\xbf"), true },         /* U+10FFFF */
		{ U("\xef\xbf\xbf"), true },             /* U+FFFF */
		{ U("\xed\x9f\xbf"), true },             /* U+D7FF */
		{ U("0123456789abcdef\xc3\xa9" "0123456789"), true },
		{ U("abc\0def"), false },               /* NUL */
		{ U("abcdefgh\0"), false },             /* NUL found by the word loop */
		{ U("abcdefghijklmnop\0q"), false },
		{ U("\xff"), false },
		{ U("\xc0\xaf"), false },                /* overlong '/' */
		{ U("\xc1\xbf"), false },                /* overlong */
		{ U("\xe0\x80\xaf"), false },            /* overlong */
		{ U("\xf0\x80\x80\xaf"), false },        /* overlong */
		{ U("\xed\xa0\x80"), false },            /* surrogate D800 */
		{ U("\xed\xbf\xbf"), false },            /* surrogate DFFF */
		{ U("\xf4\x90\x80\x80"), false },        /* > U+10FFFF */
		{ U("\xf5\x80\x80\x80"), false },
		{ U("\xc3"), false },                    /* truncated */
		{ U("abcdefg\xe2\x9c"), false },         /* truncated after ASCII */
		{ U("\xe2\x28\xa1"), false },            /* bad continuation */
		{ U("\x80"), false },                    /* lone continuation */
	};
#undef U

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (cri_valid_utf8(cases[i].s, cases[i].n) != cases[i].ok)
			fail_msg("utf8 case %zu: expected %d", i, cases[i].ok);
}

struct str_case {
	const char *s;
	bool ok;
};

static void run_cases(const char *what, bool (*fn)(const char *), const struct str_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fn(c[i].s) != c[i].ok)
			fail_msg("%s(\"%s\"): expected %s", what, c[i].s, c[i].ok ? "true" : "false");
}

#define RUN(fn, cases) run_cases(#fn, fn, cases, ARRAY_SIZE(cases))

static bool dns_label63(const char *s)
{
	return cri_valid_dns_label(s, 63);
}

static bool ip_nozone(const char *s)
{
	return cri_valid_ip(s, false);
}

static bool ip_zone(const char *s)
{
	return cri_valid_ip(s, true);
}

static void test_helper_names(void **state)
{
	static const struct str_case id[] = {
		{ CTR_ID, true }, { "a", true }, { "0123abcd", true }, { "", false },
		{ CTR_ID "0", false }, { "ABCDEF", false }, { "abcg", false }, { "12 34", false },
		{ "../etc", false }, { "sha256:abcd", false },
	};
	static const struct str_case name[] = {
		{ "nginx", true }, { "create-PodSandbox-for-container-3c5a8e0e-7a1e-4b9e-9d1a-6f0e5c3b2a10", true },
		{ "seccomp-container-localhost--tmp-seccomp-tests1-block-chmod.json-1-2", true },
		{ "a", true }, { "9lives", true }, { "under_score", true },
		{ "", false }, { "-dash", false }, { ".dot", false }, { "..", false }, { "a/b", false },
		{ "a b", false }, { "caf\xc3\xa9", false },
	};
	static const struct str_case label[] = {
		{ "default", true }, { "kube-system", true }, { "a", true }, { "0abc", true },
		{ "", false }, { "Default", false }, { "-a", false }, { "a-", false }, { "a.b", false },
		{ "a_b", false },
		{ "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghi", false }, /* 64 */
		{ "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefgh", true },   /* 63 */
	};
	static const struct str_case host[] = {
		{ "nginx", true }, { "web-0.nginx.default.svc.cluster.local", true }, { "UPPER.case", true },
		{ "a", true }, { "", false }, { "a..b", false }, { ".a", false }, { "a.", false },
		{ "a_b", false }, { "-a", false }, { "a-.b", false },
		{ "abcdefghij-abcdefghij-abcdefghij.abcdefghij-abcdefghij-abcdefghij", false }, /* 65 */
		{ "abcdefghij-abcdefghij-abcdefghij.abcdefghij-abcdefghij-abcdefghi", true },   /* 64 */
	};

	(void)state;
	RUN(cri_valid_id, id);
	RUN(cri_valid_name, name);
	RUN(dns_label63, label);
	RUN(cri_valid_hostname, host);
	{
		char *s = repeat('a', 253);
		assert_true(cri_valid_name(s));
		free(s);
		s = repeat('a', 254);
		assert_false(cri_valid_name(s));
		free(s);
	}
}

static void test_helper_labels(void **state)
{
	static const struct str_case lkey[] = {
		{ "app", true }, { "io.kubernetes.pod.name", true }, { "app.kubernetes.io/name", true },
		{ "example.com/Some_Name.v2", true }, { "a", true },
		{ "", false }, { "/name", false }, { "prefix/", false }, { "a/b/c", false },
		{ "Example.com/name", false }, /* label prefixes are lower case */
		{ "bad key", false }, { "-app", false }, { "app-", false }, { "ex_ample.com/a", false },
		{ "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghi", false }, /* 64 */
		{ "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefgh", true },   /* 63 */
	};
	static const struct str_case akey[] = {
		{ "kubernetes.io/config.seen", true }, { "Example.COM/Name", true },
		{ "kubectl.kubernetes.io/last-applied-configuration", true }, { "cdi.k8s.io/vendor_dev0", true },
		{ "", false }, { "a/b/c", false }, { "bad key", false }, { "x/", false },
	};
	static const struct str_case lval[] = {
		{ "", true }, { "nginx", true }, { "v1.2_3-rc", true }, { "A", true },
		{ "-x", false }, { "x-", false }, { "a b", false }, { "a/b", false }, { "caf\xc3\xa9", false },
	};

	(void)state;
	RUN(cri_valid_label_key, lkey);
	RUN(cri_valid_annotation_key, akey);
	RUN(cri_valid_label_value, lval);
	{
		/* prefix 253 + "/" + name 63 is the longest key */
		char key[253 + 1 + 63 + 1];
		memset(key, 'a', sizeof key - 1);
		key[sizeof key - 1] = '\0';
		for (size_t i = 50; i < 253; i += 50)
			key[i] = '.';
		key[253] = '/';
		assert_true(cri_valid_label_key(key));
		key[253] = 'a';
		key[252] = '/';
		assert_false(cri_valid_label_key(key)); /* name part 64 */
		char *v = repeat('v', 253);
		assert_true(cri_valid_label_value(v));
		free(v);
		v = repeat('v', 254);
		assert_false(cri_valid_label_value(v));
		free(v);
	}
}

static void test_helper_paths(void **state)
{
	static const struct str_case abs[] = {
		{ "/", true }, { "/data", true }, { "/data/", true }, { "/a//b", true }, { "/a/./b", true },
		{ "/a/..b/c..", true }, { "/...", true },
		{ "", false }, { "data", false }, { "/a/../b", false }, { "/..", false }, { "/a/..", false },
		{ "./a", false },
	};
	static const struct str_case clean_abs[] = {
		{ "/", true }, { "/var/log/pods/ns_name_uid", true }, { "/a/.b/c.", true },
		{ "", false }, { "var/log", false }, { "/var/", false }, { "//var", false }, { "/a//b", false },
		{ "/a/./b", false }, { "/a/../b", false }, { "/.", false }, { "/..", false }, { "/a/.", false },
	};
	static const struct str_case clean_rel[] = {
		{ "nginx/0.log", true }, { "c.log", true }, { "a/.b/c", true },
		{ "", false }, { "/abs.log", false }, { "../x.log", false }, { "a/../b", false }, { "./a", false },
		{ "a//b", false }, { "a/", false }, { ".", false }, { "..", false },
	};

	(void)state;
	RUN(cri_valid_abs_path, abs);
	RUN(cri_valid_clean_abs_path, clean_abs);
	RUN(cri_valid_clean_rel_path, clean_rel);
	{
		char *p = repeat('a', 4096);
		p[0] = '/';
		assert_true(cri_valid_clean_abs_path(p));
		free(p);
		p = repeat('a', 4097);
		p[0] = '/';
		assert_false(cri_valid_abs_path(p));
		free(p);
	}
}

static void test_helper_net(void **state)
{
	static const struct str_case ip[] = {
		{ "10.96.0.10", true }, { "0.0.0.0", true }, { "::", true }, { "fd00:10:96::a", true },
		{ "::ffff:10.0.0.1", true }, { "2001:db8::1", true },
		{ "", false }, { "10.96.0", false }, { "10.96.0.256", false }, { "010.1.1.1", false },
		{ "localhost", false }, { "10.0.0.1 ", false }, { "fe80::1%eth0", false }, { "[::1]", false },
		{ "1.2.3.4/32", false },
	};
	static const struct str_case zip[] = {
		{ "fe80::1%eth0", true }, { "10.0.0.1", true },
		{ "fe80::1%", false }, { "fe80::1%eth0/x", false }, { "10.0.0.1%eth0", false },
		{ "fe80::1%abcdefghijklmnop", false },
	};
	static const struct str_case cidr[] = {
		{ "10.244.0.0/16", true }, { "10.244.1.0/24", true }, { "0.0.0.0/0", true }, { "fd00::/64", true },
		{ "fd00::/128", true }, { "10.0.0.1/32", true },
		{ "10.244.0.0", false }, { "10.244.0.0/33", false }, { "fd00::/129", false }, { "10.0.0.0/", false },
		{ "10.0.0.0/08", false }, { "10.0.0.0/a", false }, { "/24", false }, { "fe80::%eth0/64", false },
	};
	static const struct str_case pod_cidr[] = {
		{ "", true }, { "10.244.1.0/24", true }, { "10.244.1.0/24,fd00:10:244:1::/64", true },
		{ ",", false }, { "10.244.1.0/24,", false }, { "10.0.0.0/24,,fd00::/64", false },
		{ "10.0.0.0/24, fd00::/64", false },
		{ "1.0.0.0/8,2.0.0.0/8,3.0.0.0/8,4.0.0.0/8,5.0.0.0/8,6.0.0.0/8,7.0.0.0/8,8.0.0.0/8,9.0.0.0/8",
		  false },
	};

	(void)state;
	RUN(ip_nozone, ip);
	RUN(ip_zone, zip);
	RUN(cri_valid_cidr, cidr);
	RUN(cri_valid_pod_cidr, pod_cidr);
}

static void test_helper_linux(void **state)
{
	static const struct str_case cpuset[] = {
		{ "", true }, { "0", true }, { "0-3", true }, { "0-3,5", true }, { "1,3,5-7,9", true },
		{ "2-2", true }, { "0-1023", true },
		{ ",", false }, { "0-", false }, { "-1", false }, { "3-1", false }, { "0-3,", false },
		{ "0,,1", false }, { "a", false }, { "0 -3", false }, { "01", false }, { "1234567", false },
		{ "0-3:2", false },
	};
	static const struct str_case huge[] = {
		{ "2MB", true }, { "1GB", true }, { "64KB", true }, { "32MB", true }, { "16GB", true },
		{ "512B", true },
		{ "", false }, { "2M", false }, { "2mb", false }, { "MB", false }, { "0MB", false },
		{ "02MB", false }, { "2 MB", false }, { "2MiB", false }, { "99999999999MB", false },
	};
	static const struct str_case unified[] = {
		{ "memory.high", true }, { "memory.max", true }, { "cpu.weight", true }, { "hugetlb.2MB.max", true },
		{ "io.bfq.weight", true }, { "memory.oom.group", true },
		{ "", false }, { "memory", false }, { ".memory", false }, { "memory..max", false },
		{ "../cgroup.procs", false }, { "memory/max", false }, { "1memory.max", false },
	};
	static const struct str_case sysctl[] = {
		{ "kernel.shm_rmid_forced", true }, { "net.ipv4.ip_local_port_range", true },
		{ "fs.mqueue.msg_max", true }, { "net/ipv4/conf/eth0.100/forwarding", true },
		{ "net.ipv4.conf.all.route_localnet", true }, { "kernel.sem", true },
		{ "", false }, { "net..ipv4", false }, { ".net", false }, { "net.", false }, { "net._x", false },
		{ "net.ipv4.conf.Eth0.x", false }, { "net/../kernel", false }, { "net ipv4", false },
	};
	static const struct str_case cap[] = {
		{ "CAP_SYS_ADMIN", true }, { "NET_ADMIN", true }, { "ALL", true }, { "net_raw", true },
		{ "", false }, { "CAP SYS", false }, { "CAP-NET", false },
		{ "ABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDE", false }, /* 65 */
	};
	static const struct str_case image[] = {
		{ "nginx", true }, { "registry.k8s.io/e2e-test-images/busybox:1.29-2", true },
		{ "gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:"
		  "9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf",
		  true },
		{ "sha256:0f8498f13f3adef3f3c8b52cdf069ecc880b081159be6349163d144e8aa5fb29", true },
		{ "", false }, { "nginx latest", false }, { "nginx\t", false }, { "caf\xc3\xa9", false },
	};
	static const struct str_case cgroup[] = {
		{ "", true }, { "/kubepods/besteffort/pod" POD_UID, true },
		{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3c5a8e0e_7a1e.slice", true },
		{ "kubepods-besteffort.slice", true }, { "system.slice", true },
		{ ".slice", false }, { "kubepods", false }, { "../kubepods", false }, { "/kubepods/../x", false },
		{ "/kubepods/", false }, { "kube pods.slice", false }, { "a/b.slice", false },
	};

	(void)state;
	RUN(cri_valid_cpuset, cpuset);
	RUN(cri_valid_hugepage_size, huge);
	RUN(cri_valid_unified_key, unified);
	RUN(cri_valid_sysctl_name, sysctl);
	RUN(cri_valid_capability, cap);
	RUN(cri_valid_image_ref, image);
	RUN(cri_valid_cgroup_parent, cgroup);
}

/* ---- the generic walks ---- */

static void test_generic_utf8_nul(void **state)
{
	struct sandbox_fx f;
	Runtime__V1__RunPodSandboxRequest rq = RUNTIME__V1__RUN_POD_SANDBOX_REQUEST__INIT;
	static struct container_fx cf;
	Runtime__V1__CreateContainerRequest cr = RUNTIME__V1__CREATE_CONTAINER_REQUEST__INIT;

	(void)state;
	sandbox_fx_init(&f);
	rq.config = &f.cfg;
	f.ann[1].value = "MARKER";
	OK(&rq);
	/* Bad UTF-8 in a nested map value: invalid byte, overlong, surrogate, truncated. */
	PATCHED(&rq, "MARKER", "MARK\xff\xfe", "config.annotations[1].value: is not valid UTF-8");
	PATCHED(&rq, "MARKER", "MAR\xc0\xafR", "config.annotations[1].value: is not valid UTF-8");
	PATCHED(&rq, "MARKER", "MA\xed\xa0\x80R", "config.annotations[1].value: is not valid UTF-8");
	PATCHED(&rq, "MARKER", "MARKE\xe2", "config.annotations[1].value: is not valid UTF-8");
	PATCHED(&rq, "MARKER", "MA\xc3\xa9" "ER", NULL); /* valid UTF-8 passes */
	/* NUL inside a string (protobuf-c would silently shorten it). */
	PATCHED(&rq, "MARKER", "MAR\0ER", "config.annotations[1].value: contains a NUL byte");
	/* A map key and a repeated string. */
	f.ann[1].value = "api";
	f.ann[0].key = "kubernetes.io/MARKER";
	PATCHED(&rq, "MARKER", "MA\xffKER", "config.annotations[0].key: is not valid UTF-8");
	sandbox_fx_init(&f);
	f.searches[2] = "MARKER";
	PATCHED(&rq, "MARKER", "MAR\0ER", "config.dns_config.searches[2]: contains a NUL byte");
	/* Deep: config.linux.security_context.selinux_options.level */
	sandbox_fx_init(&f);
	Runtime__V1__SELinuxOption se = RUNTIME__V1__SELINUX_OPTION__INIT;
	se.level = "s0:MARKER";
	f.sc.selinux_options = &se;
	OK(&rq);
	PATCHED(&rq, "MARKER", "MARK\x80R", "config.linux.security_context.selinux_options.level: is not valid UTF-8");

	/* cri_validate sees the same bad UTF-8 in a hand-built struct and names
	 * it the same way (BAD checks both paths agree). */
	sandbox_fx_init(&f);
	f.ann[1].value = "\xff\xfe";
	BAD(&rq, "config.annotations[1].value: is not valid UTF-8");
	f.ann[1].value = "api";
	f.lab[3].key = "io.kubernetes.pod.\xc3namespace";
	BAD(&rq, "config.labels[3].key: is not valid UTF-8");

	/* An env value in a container config (NUL cannot reach execve). */
	container_fx_init(&cf);
	cr.pod_sandbox_id = POD_ID;
	cr.config = &cf.cfg;
	cf.env[1].value = "MARKER";
	PATCHED(&cr, "MARKER", "MA\0KER", "config.envs[1].value: contains a NUL byte");
	/* ...but env values and argv may be any other bytes: kubelet does not
	 * check UTF-8 and a value from a Secret may be binary. */
	PATCHED(&cr, "MARKER", "MA\xff\xfe" "ER", NULL);
	cf.env[1].value = "v";
	cf.env[1].key = "MARKER";
	PATCHED(&cr, "MARKER", "MA\xff\xfe" "ER", "config.envs[1].key: is not valid UTF-8");
	cf.env[1].key = "HOME";
	cf.env[1].value = "\xff\xfe";
	OK(&cr);
	/* bytes fields are exempt; unknown fields are not strings. */
}

static void test_generic_enums(void **state)
{
	struct sandbox_fx f;
	Runtime__V1__RunPodSandboxRequest rq = RUNTIME__V1__RUN_POD_SANDBOX_REQUEST__INIT;
	static struct container_fx cf;
	Runtime__V1__CreateContainerRequest cr = RUNTIME__V1__CREATE_CONTAINER_REQUEST__INIT;
	Runtime__V1__ListContainersRequest lc = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
	Runtime__V1__ContainerFilter filt = RUNTIME__V1__CONTAINER_FILTER__INIT;
	Runtime__V1__ContainerStateValue st = RUNTIME__V1__CONTAINER_STATE_VALUE__INIT;

	(void)state;
	sandbox_fx_init(&f);
	rq.config = &f.cfg;
	f.pm[1].protocol = 3;
	BAD(&rq, "config.port_mappings[1].protocol: 3 is not a Protocol value");
	f.pm[1].protocol = -1;
	BAD(&rq, "config.port_mappings[1].protocol: -1 is not a Protocol value");
	sandbox_fx_init(&f);
	f.ns.ipc = 4;
	BAD(&rq, "config.linux.security_context.namespace_options.ipc: 4 is not a NamespaceMode value");
	sandbox_fx_init(&f);
	f.seccomp.profile_type = 3;
	BAD(&rq, "config.linux.security_context.seccomp.profile_type: 3 is not a ProfileType value");

	container_fx_init(&cf);
	cr.pod_sandbox_id = POD_ID;
	cr.config = &cf.cfg;
	cf.mnt[0].propagation = 1000;
	BAD(&cr, "config.mounts[0].propagation: 1000 is not a MountPropagation value");

	lc.filter = &filt;
	filt.state = &st;
	st.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
	OK(&lc);
	st.state = 4;
	BAD(&lc, "filter.state.state: 4 is not a ContainerState value");
}

static void test_generic_counts(void **state)
{
	struct sandbox_fx f;
	Runtime__V1__RunPodSandboxRequest rq = RUNTIME__V1__RUN_POD_SANDBOX_REQUEST__INIT;
	static int64_t groups[CRI_MAX_REPEATED + 1];
	static Runtime__V1__PodSandboxConfig__LabelsEntry lab[CRI_MAX_REPEATED + 1], *labp[CRI_MAX_REPEATED + 1];
	static char keys[CRI_MAX_REPEATED + 1][16];

	(void)state;
	sandbox_fx_init(&f);
	rq.config = &f.cfg;
	f.sc.supplemental_groups = groups;
	f.sc.n_supplemental_groups = CRI_MAX_REPEATED;
	OK(&rq);
	f.sc.n_supplemental_groups = CRI_MAX_REPEATED + 1;
	BAD(&rq, "config.linux.security_context.supplemental_groups: at most 4096 items (got 4097)");

	/* A large map: 4096 labels pass (duplicates are looked for by sorting). */
	sandbox_fx_init(&f);
	for (size_t i = 0; i <= CRI_MAX_REPEATED; i++) {
		lab[i] = (Runtime__V1__PodSandboxConfig__LabelsEntry)RUNTIME__V1__POD_SANDBOX_CONFIG__LABELS_ENTRY__INIT;
		snprintf(keys[i], sizeof keys[i], "k%zu", i);
		lab[i].key = keys[i];
		lab[i].value = "v";
		labp[i] = &lab[i];
	}
	f.cfg.labels = labp;
	f.cfg.n_labels = CRI_MAX_REPEATED;
	OK(&rq);
	f.cfg.n_labels = CRI_MAX_REPEATED + 1;
	BAD(&rq, "config.labels: at most 4096 items");
	/* duplicate keys, in a large and in a small map */
	f.cfg.n_labels = 100;
	lab[77].key = "k12";
	BAD(&rq, "config.labels[\"k12\"]: duplicate key");
	lab[77].key = keys[77];
	f.cfg.n_labels = 3;
	lab[2].key = "k0";
	BAD(&rq, "config.labels[\"k0\"]: duplicate key");
	lab[2].key = keys[2];
}

static void test_generic_wire(void **state)
{
	crisp_err_t err = CRISP_ERR_INIT;
	Runtime__V1__StopPodSandboxRequest rq = RUNTIME__V1__STOP_POD_SANDBOX_REQUEST__INIT;
	Runtime__V1__VersionRequest vr = RUNTIME__V1__VERSION_REQUEST__INIT;
	ProtobufCMessage *m;
	uint8_t buf[256];
	size_t n;

	(void)state;
	/* Malformed protobuf. */
	m = cri_decode_request(&runtime__v1__stop_pod_sandbox_request__descriptor, (const uint8_t *)"\x0a\x05" "ab", 4,
			       &err);
	assert_null(m);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_string_equal(err.msg, "malformed StopPodSandboxRequest message");
	/* Wire types that do not match the field: protobuf-c takes a bool sent
	 * length-delimited; no encoder sends that, so it is malformed here. */
	m = cri_decode_request(&runtime__v1__status_request__descriptor, (const uint8_t *)"\x0a\x01x", 3, &err);
	assert_null(m);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_string_equal(err.msg, "malformed StatusRequest message");
	m = cri_decode_request(&runtime__v1__version_request__descriptor, (const uint8_t *)"\x08\x01", 2, &err);
	assert_null(m);
	assert_string_equal(err.msg, "malformed VersionRequest message");
	m = cri_decode_request(&runtime__v1__stop_container_request__descriptor, (const uint8_t *)"\x15\x01\x00\x00\x00",
			       5, &err);
	assert_null(m);
	assert_string_equal(err.msg, "malformed StopContainerRequest message");
	/* Field number 0, which protobuf-c takes when its tag has a redundant
	 * varint byte (found by fuzz_cri: re-encoded, it is refused). */
	m = cri_decode_request(&runtime__v1__status_request__descriptor,
			       (const uint8_t *)"\x81\x00\x00\x00\x00\x00\x00\x00\x00\x20", 10, &err);
	assert_null(m);
	assert_string_equal(err.msg, "malformed StatusRequest message");
	/* Redundant varint bytes are legal elsewhere: pod_sandbox_id tag 0x0a as 0x8a 0x00. */
	m = cri_decode_request(&runtime__v1__stop_pod_sandbox_request__descriptor, (const uint8_t *)"\x8a\x00\x01" "a",
			       4, &err);
	if (m == NULL)
		fail_msg("long tag refused: %s", err.msg);
	protobuf_c_message_free_unpacked(m, NULL);
	/* The largest field number, unknown here, is fine. */
	m = cri_decode_request(&runtime__v1__status_request__descriptor, (const uint8_t *)"\xf8\xff\xff\xff\x0f\x01", 6,
			       &err);
	if (m == NULL)
		fail_msg("field 2^29-1 refused: %s", err.msg);
	protobuf_c_message_free_unpacked(m, NULL);
	/* Repeated scalars come packed or not: both are fine. */
	m = cri_decode_request(&runtime__v1__port_forward_request__descriptor,
			       (const uint8_t *)"\x0a\x01" "a" "\x10\x50\x10\x51\x12\x02\x52\x53", 11, &err);
	if (m == NULL)
		fail_msg("packed/unpacked ports refused: %s", err.msg);
	assert_int_equal(((Runtime__V1__PortForwardRequest *)m)->n_port, 4);
	protobuf_c_message_free_unpacked(m, NULL);

	/* Empty input is a valid empty message (and then fails its rule). */
	m = cri_decode_request(&runtime__v1__stop_pod_sandbox_request__descriptor, NULL, 0, &err);
	assert_null(m);
	assert_string_equal(err.msg, "pod_sandbox_id: required");
	m = cri_decode_request(&runtime__v1__status_request__descriptor, NULL, 0, &err);
	assert_non_null(m);
	protobuf_c_message_free_unpacked(m, NULL);

	/* Unknown fields are kept for forward compatibility, even "strings". */
	rq.pod_sandbox_id = POD_ID;
	n = protobuf_c_message_pack(&rq.base, buf);
	memcpy(buf + n, "\xf8\x06\x2a" "\xa2\x06\x02\xff\x00", 8); /* field 111 varint, field 100 len 2 */
	m = cri_decode_request(&runtime__v1__stop_pod_sandbox_request__descriptor, buf, n + 8, &err);
	if (m == NULL)
		fail_msg("unknown fields refused: %s", err.msg);
	protobuf_c_message_free_unpacked(m, NULL);

	/* Not a CRI request. */
	m = cri_decode_request(&runtime__v1__version_response__descriptor, buf, 0, &err);
	assert_null(m);
	assert_int_equal(err.code, CRISP_INTERNAL);
	assert_int_equal(cri_validate(&vr.base, &err), 0);
	{
		Runtime__V1__VersionResponse resp = RUNTIME__V1__VERSION_RESPONSE__INIT;
		assert_int_equal(cri_validate(&resp.base, &err), -1);
		assert_int_equal(err.code, CRISP_INTERNAL);
	}

	/* The string budget. */
	vr.version = repeat('v', CRI_MAX_STRING_BYTES + 1);
	BAD(&vr, "VersionRequest: strings exceed 8388608 bytes in all");
	free(vr.version);

	/* cri_validate on a hand-built message: NULL where protobuf-c never
	 * leaves one, and a sub-message of the wrong type. */
	{
		Runtime__V1__ExecSyncRequest es = RUNTIME__V1__EXEC_SYNC_REQUEST__INIT;
		Runtime__V1__ListContainersRequest lc = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
		Runtime__V1__PodSandboxFilter wrong = RUNTIME__V1__POD_SANDBOX_FILTER__INIT;
		char *cmd[2] = { "true", NULL };
		es.container_id = CTR_ID;
		es.cmd = cmd;
		es.n_cmd = 2;
		assert_int_equal(cri_validate(&es.base, &err), -1);
		assert_string_equal(err.msg, "cmd[1]: is NULL");
		es.container_id = NULL;
		es.n_cmd = 1;
		assert_int_equal(cri_validate(&es.base, &err), -1);
		assert_string_equal(err.msg, "container_id: is NULL");
		lc.filter = (Runtime__V1__ContainerFilter *)(void *)&wrong;
		assert_int_equal(cri_validate(&lc.base, &err), -1);
		assert_string_equal(err.msg, "filter: is not a ContainerFilter");
	}
}

/* Every request type refuses broken protobuf with the same message. */
static void test_all_types_malformed(void **state)
{
	static const struct {
		const char *b;
		size_t n;
	} bad[] = {
		{ "\x0a\x10" "abc", 5 },            /* length past the end */
		{ "\x08", 1 },                      /* tag, no value */
		{ "\x0f", 1 },                      /* wire type 7 */
		{ "\x00\x01", 2 },                  /* field number 0 */
		{ "\x83\x00", 2 },                  /* field 0 with a long tag, start group */
		{ "\xf8\xff\xff\xff\x1f\x01", 6 },  /* field number 2^30-1 (> 2^29-1) */
		{ "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12 }, /* varint over 10 bytes */
	};

	(void)state;
	for (size_t t = 0; t < CRI_NREQUESTS; t++) {
		const ProtobufCMessageDescriptor *d = cri_request_descriptors[t];
		char want[128];
		snprintf(want, sizeof want, "malformed %s message", d->short_name);
		for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
			crisp_err_t err = CRISP_ERR_INIT;
			ProtobufCMessage *m = cri_decode_request(d, (const uint8_t *)bad[i].b, bad[i].n, &err);
			if (m != NULL) {
				protobuf_c_message_free_unpacked(m, NULL);
				fail_msg("%s accepted bad input %zu", d->short_name, i);
			}
			if (err.code != CRISP_INVALID_ARGUMENT || strcmp(err.msg, want) != 0)
				fail_msg("%s, bad input %zu: '%s'", d->short_name, i, err.msg);
		}
		/* and the table holds 33 distinct requests */
		for (size_t u = 0; u < t; u++)
			assert_ptr_not_equal(cri_request_descriptors[u], d);
		assert_non_null(strstr(d->short_name, "Request"));
	}
}

/* ---- the 33 requests ---- */

static void test_version(void **state)
{
	Runtime__V1__VersionRequest rq = RUNTIME__V1__VERSION_REQUEST__INIT;

	(void)state;
	OK(&rq);
	rq.version = "0.1.0"; /* kubelet's kubeRuntimeAPIVersion */
	OK(&rq);
	rq.version = "v1";
	OK(&rq);
	rq.version = "0.1.0\n";
	BAD(&rq, "version: must be 0-64 printable characters");
	rq.version = "01234567890123456789012345678901234567890123456789012345678901234";
	BAD(&rq, "version: must be 0-64 printable characters");
}

static void test_run_pod_sandbox(void **state)
{
	static struct sandbox_fx f;
	Runtime__V1__RunPodSandboxRequest rq = RUNTIME__V1__RUN_POD_SANDBOX_REQUEST__INIT;
	char *s;

	(void)state;
	sandbox_fx_init(&f);
	rq.config = &f.cfg;
	OK(&rq);
	rq.runtime_handler = "runc";
	OK(&rq);
	rq.runtime_handler = "kata-qemu";
	OK(&rq);
	rq.runtime_handler = "Kata_QEMU";
	BAD(&rq, "runtime_handler: must be empty or a DNS label");
	rq.runtime_handler = "";

	rq.config = NULL;
	BAD(&rq, "config: required");
	rq.config = &f.cfg;
	f.cfg.metadata = NULL;
	BAD(&rq, "config.metadata: required");
	sandbox_fx_init(&f);
	f.md.name = "";
	BAD(&rq, "config.metadata.name: must be 1-253 of [A-Za-z0-9._-], starting with a letter or digit");
	f.md.name = "../../etc";
	BAD(&rq, "config.metadata.name: must be 1-253");
	s = repeat('n', 254);
	f.md.name = s;
	BAD(&rq, "config.metadata.name: must be 1-253");
	free(s);
	sandbox_fx_init(&f);
	f.md.namespace_ = "Default";
	BAD(&rq, "config.metadata.namespace: must be a DNS label: 1-63 of [a-z0-9-], alphanumeric at both ends");
	f.md.namespace_ = "";
	BAD(&rq, "config.metadata.namespace: must be a DNS label");
	sandbox_fx_init(&f);
	f.md.uid = "";
	BAD(&rq, "config.metadata.uid: must be 1-128");
	f.md.uid = "3c5a8e0e 7a1e";
	BAD(&rq, "config.metadata.uid: must be 1-128");

	sandbox_fx_init(&f);
	f.cfg.hostname = ""; /* host network */
	OK(&rq);
	f.cfg.hostname = "web-0.nginx.default.svc.cluster.local"; /* setHostnameAsFQDN */
	OK(&rq);
	f.cfg.hostname = "bad_host";
	BAD(&rq, "config.hostname: must be an RFC 1123 host name of at most 64 characters");
	f.cfg.hostname = "abcdefghij-abcdefghij-abcdefghij.abcdefghij-abcdefghij-abcdefghij";
	BAD(&rq, "config.hostname: must be an RFC 1123 host name");

	sandbox_fx_init(&f);
	f.cfg.log_directory = "";
	OK(&rq);
	f.cfg.log_directory = "/var/log/pods/" POD_UID "/"; /* the CRI's own example */
	OK(&rq);
	f.cfg.log_directory = "var/log/pods";
	BAD(&rq, "config.log_directory: must be empty or an absolute clean path");
	f.cfg.log_directory = "/var/log/pods/../../etc";
	BAD(&rq, "config.log_directory");
	f.cfg.log_directory = "/var//log/pods";
	BAD(&rq, "config.log_directory");
	f.cfg.log_directory = "/var/./log";
	BAD(&rq, "config.log_directory");
	f.cfg.log_directory = "/var/log//";
	BAD(&rq, "config.log_directory");

	sandbox_fx_init(&f);
	f.servers[0] = "10.96.0";
	BAD(&rq, "config.dns_config.servers[0]: must be an IPv4 or IPv6 address");
	f.servers[0] = "fe80::1%eth0"; /* copied from the node's resolv.conf */
	OK(&rq);
	f.searches[1] = "svc.cluster.local\nnameserver 6.6.6.6";
	BAD(&rq, "config.dns_config.searches[1]: must be 1-254 printable characters, no space");
	f.searches[1] = "";
	BAD(&rq, "config.dns_config.searches[1]");
	sandbox_fx_init(&f);
	f.options[0] = "ndots:5 rotate";
	BAD(&rq, "config.dns_config.options[0]: must be 1-256 printable characters, no space");
	{
		char *many[DNS_SERVERS_TEST + 1];
		for (size_t i = 0; i < ARRAY_SIZE(many); i++)
			many[i] = "10.0.0.1";
		sandbox_fx_init(&f);
		f.dns.servers = many;
		f.dns.n_servers = DNS_SERVERS_TEST;
		OK(&rq);
		f.dns.n_servers = DNS_SERVERS_TEST + 1;
		BAD(&rq, "config.dns_config.servers: at most 32");
	}

	sandbox_fx_init(&f);
	f.pm[1].container_port = 0;
	BAD(&rq, "config.port_mappings[1].container_port: must be 1..65535");
	f.pm[1].container_port = 65536;
	BAD(&rq, "config.port_mappings[1].container_port: must be 1..65535");
	sandbox_fx_init(&f);
	f.pm[0].host_port = 65536;
	BAD(&rq, "config.port_mappings[0].host_port: must be 0..65535");
	f.pm[0].host_port = -1;
	BAD(&rq, "config.port_mappings[0].host_port");
	sandbox_fx_init(&f);
	f.pm[1].host_ip = "localhost";
	BAD(&rq, "config.port_mappings[1].host_ip: must be empty or an IPv4 or IPv6 address");
	f.pm[1].host_ip = "::1";
	OK(&rq);
	f.pm[1].protocol = RUNTIME__V1__PROTOCOL__SCTP;
	OK(&rq);

	sandbox_fx_init(&f);
	f.lab[0].key = "bad key";
	BAD(&rq, "config.labels[\"bad key\"]: key must be [prefix/]name");
	f.lab[0].key = "Example.com/app";
	BAD(&rq, "config.labels[\"Example.com/app\"]: key must be");
	sandbox_fx_init(&f);
	f.lab[0].value = "-nginx";
	BAD(&rq, "config.labels[\"app\"]: value must be empty or 1-253 of [A-Za-z0-9._-]");
	f.lab[0].value = "";
	OK(&rq);
	/* kubelet puts a pod name of up to 253 in io.kubernetes.pod.name */
	s = repeat('p', 253);
	f.lab[2].value = s;
	OK(&rq);
	free(s);
	s = repeat('p', 254);
	f.lab[2].value = s;
	BAD(&rq, "config.labels[\"io.kubernetes.pod.name\"]: value must be");
	free(s);

	sandbox_fx_init(&f);
	f.ann[0].key = "Example.COM/Thing"; /* the API server lower-cases annotation keys */
	OK(&rq);
	f.ann[0].key = "a/b/c";
	BAD(&rq, "config.annotations[\"a/b/c\"]: key must be");
	sandbox_fx_init(&f);
	s = repeat('x', 2u * 1024 * 1024);
	f.ann[2].value = s;
	BAD(&rq, "config.annotations: larger than 2097152 bytes in all");
	free(s);

	sandbox_fx_init(&f);
	f.linux.cgroup_parent = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod3c5a8e0e.slice";
	OK(&rq);
	f.linux.cgroup_parent = "kubepods-besteffort.slice";
	OK(&rq);
	f.linux.cgroup_parent = "/kubepods/../../sys";
	BAD(&rq, "config.linux.cgroup_parent: must be empty, an absolute clean path or a systemd slice name");
	sandbox_fx_init(&f);
	f.sys[0].key = "net..ipv4";
	BAD(&rq, "config.linux.sysctls[\"net..ipv4\"]: key must be a sysctl name");
	sandbox_fx_init(&f);
	f.sys[1].value = "0 1\n";
	BAD(&rq, "config.linux.sysctls[\"net.ipv4.ping_group_range\"]: value must be 0-4096 printable characters");

	sandbox_fx_init(&f);
	f.ns.pid = RUNTIME__V1__NAMESPACE_MODE__TARGET;
	BAD(&rq, "config.linux.security_context.namespace_options.pid: TARGET is not valid for a sandbox");
	sandbox_fx_init(&f);
	f.ns.network = RUNTIME__V1__NAMESPACE_MODE__TARGET;
	BAD(&rq, "config.linux.security_context.namespace_options.network: TARGET is only valid for pid");
	sandbox_fx_init(&f);
	f.ns.target_id = CTR_ID;
	BAD(&rq, "config.linux.security_context.namespace_options.target_id: must be empty unless pid is TARGET");
	sandbox_fx_init(&f);
	f.ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE; /* hostNetwork */
	f.ns.pid = RUNTIME__V1__NAMESPACE_MODE__NODE;
	f.ns.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
	f.cfg.hostname = "";
	OK(&rq);
	{
		Runtime__V1__UserNamespace u = RUNTIME__V1__USER_NAMESPACE__INIT;
		Runtime__V1__IDMapping m = RUNTIME__V1__IDMAPPING__INIT, *mp[1] = { &m };
		sandbox_fx_init(&f);
		f.ns.userns_options = &u;
		u.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
		m.host_id = 65536;
		m.container_id = 0;
		m.length = 65536;
		u.uids = mp, u.n_uids = 1;
		u.gids = mp, u.n_gids = 1;
		OK(&rq);
		m.length = 0;
		BAD(&rq, "config.linux.security_context.namespace_options.userns_options.uids[0]: length must be >= 1");
		m.length = 65536;
		m.host_id = 4294967295u;
		BAD(&rq, "userns_options.uids[0]: length must be >= 1 and ids + length <= 2^32");
		m.host_id = 65536;
		u.mode = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
		BAD(&rq, "config.linux.security_context.namespace_options.userns_options.mode: must be POD or NODE");
		u.mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
		BAD(&rq, "userns_options.uids: must be empty when mode is NODE");
		u.n_uids = u.n_gids = 0;
		OK(&rq);
	}

	sandbox_fx_init(&f);
	{
		Runtime__V1__Int64Value u = RUNTIME__V1__INT64_VALUE__INIT;
		f.sc.run_as_user = &u;
		u.value = 0;
		OK(&rq);
		u.value = -1;
		BAD(&rq, "config.linux.security_context.run_as_user.value: must be 0..4294967294");
		u.value = 4294967295;
		BAD(&rq, "config.linux.security_context.run_as_user.value: must be 0..4294967294");
	}
	sandbox_fx_init(&f);
	f.group.value = -3;
	BAD(&rq, "config.linux.security_context.run_as_group.value: must be 0..4294967294");
	sandbox_fx_init(&f);
	f.groups[1] = -5;
	BAD(&rq, "config.linux.security_context.supplemental_groups[1]: must be 0..4294967294");

	sandbox_fx_init(&f);
	f.seccomp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	BAD(&rq, "config.linux.security_context.seccomp.localhost_ref: required when profile_type is Localhost");
	f.seccomp.localhost_ref = "profiles/audit.json";
	BAD(&rq, "config.linux.security_context.seccomp.localhost_ref: must be an absolute clean path");
	f.seccomp.localhost_ref = "/var/lib/kubelet/seccomp/../../../etc/x.json";
	BAD(&rq, "config.linux.security_context.seccomp.localhost_ref");
	f.seccomp.localhost_ref = "/var/lib/kubelet/seccomp/profiles/audit.json";
	OK(&rq);
	f.seccomp.localhost_ref = "localhost//var/lib/kubelet/seccomp/profiles/audit.json";
	OK(&rq);
	f.seccomp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
	BAD(&rq, "config.linux.security_context.seccomp.localhost_ref: must be empty unless profile_type is Localhost");
	sandbox_fx_init(&f);
	f.sc.seccomp_profile_path = "/tmp/seccomp-tests/block-host-name.json"; /* bare path: critest SC29 */
	BAD(&rq, "config.linux.security_context.seccomp_profile_path: must be runtime/default, docker/default, "
		 "unconfined or localhost/<absolute clean path>");
	f.sc.seccomp_profile_path = "localhost//tmp/seccomp-tests/block-host-name.json";
	OK(&rq);
	f.sc.seccomp_profile_path = "docker/default";
	OK(&rq);
	f.sc.seccomp_profile_path = "unconfined";
	OK(&rq);
	f.sc.seccomp_profile_path = "localhost/relative.json";
	BAD(&rq, "config.linux.security_context.seccomp_profile_path");

	sandbox_fx_init(&f);
	f.overhead.oom_score_adj = -1001;
	BAD(&rq, "config.linux.overhead.oom_score_adj: must be -1000..1000");
	sandbox_fx_init(&f);
	f.res.cpu_shares = -2;
	BAD(&rq, "config.linux.resources.cpu_shares: must be >= 0");

	/* The sandboxes critest creates. */
	{
		static const char *const ctl[][2] = { { "kernel.shm_rmid_forced", "1" }, { "fs.mqueue.msg_max", "100" } };
		Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry e[2], *ep[2];
		sandbox_fx_init(&f);
		f.md.name = "create-PodSandbox-for-container-0c5d6d3e-1a2b-11ee-8c90-0242ac120002";
		f.md.uid = "cri-test-uid0c5d6d3e-1a2b-11ee-8c90-0242ac120002";
		f.md.namespace_ = "cri-test-namespace0c5d6d3e-1a2b-11ee-8c90-0242ac120002";
		f.md.attempt = 1;
		f.cfg.hostname = "test-hostname";
		f.cfg.log_directory = "/tmp/podLogTest1827364/PodSandbox-with-log-directory-0c5d6d3e-1a2b-11ee";
		f.servers[0] = "10.10.10.10";
		f.dns.n_servers = 1;
		f.searches[0] = "google.com";
		f.dns.n_searches = 1;
		f.options[0] = "ndots:8";
		f.pm[0].container_port = 80;
		f.pm[0].host_port = 12000;
		f.cfg.n_port_mappings = 1;
		f.cfg.n_labels = 0;
		f.cfg.n_annotations = 0;
		FILL_MAP(e, ep, RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__SYSCTLS_ENTRY__INIT, ctl);
		f.linux.sysctls = ep;
		f.linux.cgroup_parent = "";
		f.sc.seccomp = NULL;
		f.sc.seccomp_profile_path = "docker/default";
		f.linux.overhead = f.linux.resources = NULL;
		OK(&rq);
		f.cfg.linux = NULL;
		f.cfg.dns_config = NULL;
		OK(&rq);
	}
}

static void test_sandbox_id_requests(void **state)
{
	Runtime__V1__StopPodSandboxRequest stop = RUNTIME__V1__STOP_POD_SANDBOX_REQUEST__INIT;
	Runtime__V1__RemovePodSandboxRequest rm = RUNTIME__V1__REMOVE_POD_SANDBOX_REQUEST__INIT;
	Runtime__V1__PodSandboxStatusRequest st = RUNTIME__V1__POD_SANDBOX_STATUS_REQUEST__INIT;
	Runtime__V1__PodSandboxStatsRequest stats = RUNTIME__V1__POD_SANDBOX_STATS_REQUEST__INIT;

	(void)state;
	/* StopPodSandbox */
	BAD(&stop, "pod_sandbox_id: required");
	stop.pod_sandbox_id = POD_ID;
	OK(&stop);
	stop.pod_sandbox_id = "5f3a8c1b"; /* a prefix (crictl) */
	OK(&stop);
	stop.pod_sandbox_id = POD_ID "0";
	BAD(&stop, "pod_sandbox_id: must be 1-64 lowercase hex characters");
	stop.pod_sandbox_id = "5F3A8C1B";
	BAD(&stop, "pod_sandbox_id: must be 1-64 lowercase hex characters");
	/* RemovePodSandbox */
	BAD(&rm, "pod_sandbox_id: required");
	rm.pod_sandbox_id = POD_ID;
	OK(&rm);
	rm.pod_sandbox_id = "../../var/lib";
	BAD(&rm, "pod_sandbox_id: must be 1-64 lowercase hex characters");
	/* PodSandboxStatus */
	st.pod_sandbox_id = POD_ID;
	st.verbose = true;
	OK(&st);
	st.pod_sandbox_id = "";
	BAD(&st, "pod_sandbox_id: required");
	st.pod_sandbox_id = "nginx";
	BAD(&st, "pod_sandbox_id: must be 1-64");
	/* PodSandboxStats */
	stats.pod_sandbox_id = POD_ID;
	OK(&stats);
	stats.pod_sandbox_id = "";
	BAD(&stats, "pod_sandbox_id: required");
	stats.pod_sandbox_id = "xyz";
	BAD(&stats, "pod_sandbox_id: must be 1-64");
}

static void test_list_pod_sandbox(void **state)
{
	Runtime__V1__ListPodSandboxRequest rq = RUNTIME__V1__LIST_POD_SANDBOX_REQUEST__INIT;
	Runtime__V1__PodSandboxFilter f = RUNTIME__V1__POD_SANDBOX_FILTER__INIT;
	Runtime__V1__PodSandboxStateValue st = RUNTIME__V1__POD_SANDBOX_STATE_VALUE__INIT;
	static const char *const sel[][2] = { { "io.kubernetes.pod.uid", POD_UID }, { "app", "nginx" } };
	Runtime__V1__PodSandboxFilter__LabelSelectorEntry e[2], *ep[2];

	(void)state;
	OK(&rq); /* kubelet: no filter */
	rq.filter = &f;
	OK(&rq);
	f.id = "5f3a";
	st.state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY;
	f.state = &st;
	FILL_MAP(e, ep, RUNTIME__V1__POD_SANDBOX_FILTER__LABEL_SELECTOR_ENTRY__INIT, sel);
	f.label_selector = ep, f.n_label_selector = 2;
	OK(&rq);
	f.id = "not-an-id";
	BAD(&rq, "filter.id: must be 1-64 lowercase hex characters");
	f.id = "";
	st.state = 2;
	BAD(&rq, "filter.state.state: 2 is not a PodSandboxState value");
	st.state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
	e[1].key = "";
	BAD(&rq, "filter.label_selector[\"\"]: key must be 1-317 printable characters, no space");
	e[1].key = "app";
	e[1].value = "a b";
	BAD(&rq, "filter.label_selector[\"app\"]: value must be 0-253 printable characters, no space");
}

static void test_create_container(void **state)
{
	static struct container_fx c;
	static struct sandbox_fx s;
	Runtime__V1__CreateContainerRequest rq = RUNTIME__V1__CREATE_CONTAINER_REQUEST__INIT;
	char *big;

	(void)state;
	container_fx_init(&c);
	sandbox_fx_init(&s);
	rq.pod_sandbox_id = POD_ID;
	rq.config = &c.cfg;
	rq.sandbox_config = &s.cfg;
	OK(&rq);
	rq.sandbox_config = NULL;
	OK(&rq);
	rq.sandbox_config = &s.cfg;
	s.md.name = "";
	BAD(&rq, "sandbox_config.metadata.name: must be 1-253");
	sandbox_fx_init(&s);

	rq.pod_sandbox_id = "";
	BAD(&rq, "pod_sandbox_id: required");
	rq.pod_sandbox_id = "pod";
	BAD(&rq, "pod_sandbox_id: must be 1-64 lowercase hex characters");
	rq.pod_sandbox_id = POD_ID;
	rq.config = NULL;
	BAD(&rq, "config: required");
	rq.config = &c.cfg;

	c.cfg.metadata = NULL;
	BAD(&rq, "config.metadata: required");
	container_fx_init(&c);
	c.md.name = "";
	BAD(&rq, "config.metadata.name: must be 1-253 of [A-Za-z0-9._-]");
	c.md.name = "nginx/../../x";
	BAD(&rq, "config.metadata.name");
	/* critest's container names: long, upper case, dots */
	c.md.name = "container-with-SupplementalGroups-and-predefined-group-image-test-0c5d6d3e-1a2b-11ee-8c90-0242ac1";
	OK(&rq);
	c.md.name = "seccomp-container-localhost--tmp-seccomp-tests1827364-block-chmod.json-0c5d6d3e-1a2b-11ee-"
		    "8c90-0242ac120002-0c5d6d3f-1a2b-11ee-8c90-0242ac120002";
	OK(&rq);

	container_fx_init(&c);
	c.cfg.image = NULL;
	BAD(&rq, "config.image: required");
	container_fx_init(&c);
	c.image.image = "";
	BAD(&rq, "config.image.image: required");
	c.image.image = "registry.k8s.io/e2e-test-images/busybox:1.29-2";
	OK(&rq);
	c.image.image = "busybox; rm -rf /";
	BAD(&rq, "config.image.image: must be 1-4096 printable characters, no space");

	container_fx_init(&c);
	big = repeat('a', 128u * 1024);
	c.args[1] = big;
	BAD(&rq, "config.args[1]: longer than 131071 bytes");
	big[128u * 1024 - 1] = '\0';
	OK(&rq);
	{
		char *many[20];
		for (size_t i = 0; i < ARRAY_SIZE(many); i++)
			many[i] = big;
		c.cfg.args = many;
		c.cfg.n_args = 16;
		OK(&rq);
		c.cfg.n_args = 17;
		BAD(&rq, "config.args: command line larger than 2097152 bytes in all");
		c.cfg.command = many;
		c.cfg.n_command = 16;
		c.cfg.n_args = 1;
		BAD(&rq, "config.args: command line larger than");
	}
	free(big);
	{
		static char *items[CRI_MAX_REPEATED + 1];
		for (size_t i = 0; i < ARRAY_SIZE(items); i++)
			items[i] = "x";
		container_fx_init(&c);
		c.cfg.command = items, c.cfg.n_command = 2048;
		c.cfg.args = items, c.cfg.n_args = 2048;
		OK(&rq);
		c.cfg.n_args = 2049;
		BAD(&rq, "config.args: at most 4096 command and args items together");
		c.cfg.n_command = 0;
		c.cfg.n_args = CRI_MAX_REPEATED + 1;
		BAD(&rq, "config.args: at most 4096 items");
	}

	container_fx_init(&c);
	c.cfg.working_dir = "";
	OK(&rq);
	c.cfg.working_dir = "app";
	BAD(&rq, "config.working_dir: must be empty or an absolute path");

	container_fx_init(&c);
	c.env[0].key = "";
	BAD(&rq, "config.envs[0]: key must be non-empty without '='");
	c.env[0].key = "A=B";
	BAD(&rq, "config.envs[0]: key must be non-empty without '='");
	container_fx_init(&c);
	big = repeat('v', 128u * 1024);
	c.env[2].value = big;
	BAD(&rq, "config.envs[2]: longer than 131071 bytes");
	free(big);
	{
		/* kubelet's service links: thousands of variables are legitimate */
		static Runtime__V1__KeyValue kv[CRI_MAX_ENVS + 1], *kvp[CRI_MAX_ENVS + 1];
		for (size_t i = 0; i < ARRAY_SIZE(kv); i++) {
			kv[i] = (Runtime__V1__KeyValue)RUNTIME__V1__KEY_VALUE__INIT;
			kv[i].key = "S";
			kv[i].value = "1";
			kvp[i] = &kv[i];
		}
		container_fx_init(&c);
		c.cfg.envs = kvp, c.cfg.n_envs = 7000;
		OK(&rq);
		c.cfg.n_envs = CRI_MAX_ENVS + 1;
		BAD(&rq, "config.envs: at most 65536 items");
		big = repeat('v', 100000);
		for (size_t i = 0; i < 21; i++)
			kv[i].value = big;
		c.cfg.n_envs = 21;
		BAD(&rq, "config.envs: larger than 2097152 bytes in all");
		free(big);
	}

	container_fx_init(&c);
	c.mnt[0].container_path = "etc/hosts";
	BAD(&rq, "config.mounts[0].container_path: must be an absolute path without \"..\"");
	c.mnt[0].container_path = "/data/"; /* mountPath as a user wrote it */
	OK(&rq);
	c.mnt[1].host_path = "/var/lib/kubelet/../../etc";
	BAD(&rq, "config.mounts[1].host_path: must be an absolute path without \"..\"");
	c.mnt[1].host_path = "";
	BAD(&rq, "config.mounts[1].host_path");
	container_fx_init(&c);
	c.dev[0].container_path = "dev/fuse";
	BAD(&rq, "config.devices[0].container_path");
	container_fx_init(&c);
	c.dev[0].host_path = "/dev/../etc/shadow";
	BAD(&rq, "config.devices[0].host_path");
	container_fx_init(&c);
	c.dev[0].permissions = "rwx";
	BAD(&rq, "config.devices[0].permissions: must be made of r, w and m, each at most once");
	c.dev[0].permissions = "rww";
	BAD(&rq, "config.devices[0].permissions");
	c.dev[0].permissions = "mrw";
	OK(&rq);
	c.dev[0].permissions = "";
	OK(&rq);

	container_fx_init(&c);
	c.lab[0].value = "nginx!";
	BAD(&rq, "config.labels[\"io.kubernetes.container.name\"]: value must be");
	container_fx_init(&c);
	c.ann[0].key = "io.kubernetes.container.hash/x/y";
	BAD(&rq, "config.annotations[\"io.kubernetes.container.hash/x/y\"]: key must be");
	c.ann[0].key = "quote\"d";
	BAD(&rq, "config.annotations[0]: key must be"); /* not shown quoted */
	container_fx_init(&c);
	c.cfg.log_path = "/var/log/x.log";
	BAD(&rq, "config.log_path: must be empty or a clean relative path");
	c.cfg.log_path = "../../etc/cron.d/x";
	BAD(&rq, "config.log_path");
	c.cfg.log_path = "nginx//0.log";
	BAD(&rq, "config.log_path");
	c.cfg.log_path = "container-for-reopen-log-test-0c5d6d3e.log";
	OK(&rq);

	/* resources */
	container_fx_init(&c);
	c.res.cpu_quota = -1;
	c.res.memory_swap_limit_in_bytes = -1; /* UnlimitedSwap */
	OK(&rq);
	c.res.cpu_quota = -2;
	BAD(&rq, "config.linux.resources.cpu_quota: must be >= -1");
	container_fx_init(&c);
	c.res.cpu_period = -1;
	BAD(&rq, "config.linux.resources.cpu_period: must be >= 0");
	container_fx_init(&c);
	c.res.memory_limit_in_bytes = -1;
	BAD(&rq, "config.linux.resources.memory_limit_in_bytes: must be >= 0");
	container_fx_init(&c);
	c.res.memory_swap_limit_in_bytes = -2;
	BAD(&rq, "config.linux.resources.memory_swap_limit_in_bytes: must be >= -1");
	container_fx_init(&c);
	c.res.oom_score_adj = 1001;
	BAD(&rq, "config.linux.resources.oom_score_adj: must be -1000..1000");
	c.res.oom_score_adj = -998;
	OK(&rq);
	c.res.cpuset_cpus = "3-1";
	BAD(&rq, "config.linux.resources.cpuset_cpus: must be a cpu list like \"0-3,5\"");
	container_fx_init(&c);
	c.res.cpuset_mems = "0,";
	BAD(&rq, "config.linux.resources.cpuset_mems");
	container_fx_init(&c);
	c.hp[1].page_size = "1G";
	BAD(&rq, "config.linux.resources.hugepage_limits[1].page_size: must be a size like \"2MB\" or \"1GB\"");
	container_fx_init(&c);
	c.uni[0].key = "../../cgroup.procs";
	BAD(&rq, "config.linux.resources.unified[\"../../cgroup.procs\"]: key must be a cgroup v2 file name");
	container_fx_init(&c);
	c.uni[0].value = "max\nmore";
	BAD(&rq, "config.linux.resources.unified[\"memory.high\"]: value must be 0-4096 printable characters");

	/* security context */
	container_fx_init(&c);
	c.add[0] = "CAP_SYS_ADMIN";
	OK(&rq);
	c.add[0] = "net_raw";
	OK(&rq);
	c.add[0] = "CAP SYS_ADMIN";
	BAD(&rq, "config.linux.security_context.capabilities.add_capabilities[0]: must be 1-64 of [A-Za-z0-9_]");
	{
		static char *caps[129];
		for (size_t i = 0; i < ARRAY_SIZE(caps); i++)
			caps[i] = "CHOWN";
		container_fx_init(&c);
		c.caps.add_ambient_capabilities = caps;
		c.caps.n_add_ambient_capabilities = 128;
		OK(&rq);
		c.caps.n_add_ambient_capabilities = 129;
		BAD(&rq, "config.linux.security_context.capabilities.add_ambient_capabilities: at most 128");
	}
	container_fx_init(&c);
	{
		Runtime__V1__Int64Value g = RUNTIME__V1__INT64_VALUE__INIT;
		g.value = 1002;
		c.sc.run_as_group = &g;
		OK(&rq);
		c.sc.run_as_user = NULL; /* critest SC13 */
		BAD(&rq, "config.linux.security_context.run_as_group: requires run_as_user or run_as_username");
		c.sc.run_as_username = "nobody";
		OK(&rq);
		c.sc.run_as_username = "www-data:www-data";
		BAD(&rq, "config.linux.security_context.run_as_username: must be 0-256 printable characters");
		c.sc.run_as_username = "nobody";
		g.value = -1;
		BAD(&rq, "config.linux.security_context.run_as_group.value: must be 0..4294967294");
	}
	container_fx_init(&c);
	c.user.value = -1;
	BAD(&rq, "config.linux.security_context.run_as_user.value: must be 0..4294967294");
	container_fx_init(&c);
	c.masked[3] = "/proc/../etc/shadow";
	BAD(&rq, "config.linux.security_context.masked_paths[3]: must be an absolute clean path");
	container_fx_init(&c);
	c.readonly[0] = "proc/asound";
	BAD(&rq, "config.linux.security_context.readonly_paths[0]: must be an absolute clean path");
	container_fx_init(&c);
	c.sc.apparmor_profile = "localhost/non-existent-profile"; /* critest AA1: execd's to refuse */
	OK(&rq);
	c.sc.apparmor_profile = "unconfined";
	OK(&rq);
	c.sc.apparmor_profile = "crisp-default";
	BAD(&rq, "config.linux.security_context.apparmor_profile: must be runtime/default, unconfined or "
		 "localhost/<profile>");
	c.sc.apparmor_profile = "localhost/";
	BAD(&rq, "config.linux.security_context.apparmor_profile");
	container_fx_init(&c);
	{
		Runtime__V1__SecurityProfile aa = RUNTIME__V1__SECURITY_PROFILE__INIT;
		c.sc.apparmor = &aa;
		aa.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
		aa.localhost_ref = "crisp-default";
		OK(&rq);
		aa.localhost_ref = "localhost/crisp-default";
		OK(&rq);
		aa.localhost_ref = "crisp default";
		BAD(&rq, "config.linux.security_context.apparmor.localhost_ref: must be 1-4096 printable");
	}
	container_fx_init(&c);
	c.sc.seccomp_profile_path = "/tmp/seccomp-tests/block-host-name.json";
	BAD(&rq, "config.linux.security_context.seccomp_profile_path: must be runtime/default");
	container_fx_init(&c);
	c.seccomp.localhost_ref = "";
	BAD(&rq, "config.linux.security_context.seccomp.localhost_ref: required when profile_type is Localhost");
	container_fx_init(&c);
	c.ns.pid = RUNTIME__V1__NAMESPACE_MODE__TARGET; /* ephemeral container */
	BAD(&rq, "config.linux.security_context.namespace_options.target_id: required");
	c.ns.target_id = CTR_ID;
	OK(&rq);
	c.ns.target_id = "Z";
	BAD(&rq, "config.linux.security_context.namespace_options.target_id: must be 1-64 lowercase hex");
	container_fx_init(&c);
	{
		Runtime__V1__SELinuxOption se = RUNTIME__V1__SELINUX_OPTION__INIT;
		c.sc.selinux_options = &se;
		se.user = "system_u";
		se.role = "system_r";
		se.type = "svirt_lxc_net_t";
		se.level = "s0:c4,c5";
		OK(&rq);
		se.level = "s0,c4,c5"; /* critest SE3: execd's to refuse */
		OK(&rq);
		se.type = "container t";
		BAD(&rq, "config.linux.security_context.selinux_options.type: must be 0-256 printable characters");
	}
}

static void test_container_id_requests(void **state)
{
	Runtime__V1__StartContainerRequest start = RUNTIME__V1__START_CONTAINER_REQUEST__INIT;
	Runtime__V1__StopContainerRequest stop = RUNTIME__V1__STOP_CONTAINER_REQUEST__INIT;
	Runtime__V1__RemoveContainerRequest rm = RUNTIME__V1__REMOVE_CONTAINER_REQUEST__INIT;
	Runtime__V1__ContainerStatusRequest st = RUNTIME__V1__CONTAINER_STATUS_REQUEST__INIT;
	Runtime__V1__ReopenContainerLogRequest reopen = RUNTIME__V1__REOPEN_CONTAINER_LOG_REQUEST__INIT;
	Runtime__V1__ContainerStatsRequest stats = RUNTIME__V1__CONTAINER_STATS_REQUEST__INIT;

	(void)state;
	/* StartContainer */
	BAD(&start, "container_id: required");
	start.container_id = CTR_ID;
	OK(&start);
	start.container_id = "a1b2 c3";
	BAD(&start, "container_id: must be 1-64 lowercase hex characters");
	/* StopContainer */
	stop.container_id = CTR_ID;
	stop.timeout = 30;
	OK(&stop);
	stop.timeout = 0;
	OK(&stop);
	stop.timeout = -1;
	BAD(&stop, "timeout: must be >= 0");
	stop.timeout = 2;
	stop.container_id = "";
	BAD(&stop, "container_id: required");
	/* RemoveContainer */
	rm.container_id = "a1b2";
	OK(&rm);
	rm.container_id = "";
	BAD(&rm, "container_id: required");
	rm.container_id = CTR_ID CTR_ID;
	BAD(&rm, "container_id: must be 1-64");
	/* ContainerStatus */
	st.container_id = CTR_ID;
	st.verbose = true;
	OK(&st);
	st.container_id = "g";
	BAD(&st, "container_id: must be 1-64");
	/* ReopenContainerLog */
	reopen.container_id = CTR_ID;
	OK(&reopen);
	reopen.container_id = "";
	BAD(&reopen, "container_id: required");
	/* ContainerStats */
	stats.container_id = CTR_ID;
	OK(&stats);
	stats.container_id = "-1";
	BAD(&stats, "container_id: must be 1-64");
}

static void test_list_containers(void **state)
{
	Runtime__V1__ListContainersRequest rq = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
	Runtime__V1__ContainerFilter f = RUNTIME__V1__CONTAINER_FILTER__INIT;
	Runtime__V1__ContainerStateValue st = RUNTIME__V1__CONTAINER_STATE_VALUE__INIT;
	static const char *const sel[][2] = { { "io.kubernetes.pod.uid", POD_UID } };
	Runtime__V1__ContainerFilter__LabelSelectorEntry e[1], *ep[1];

	(void)state;
	OK(&rq);
	rq.filter = &f;
	f.pod_sandbox_id = POD_ID;
	st.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
	f.state = &st;
	FILL_MAP(e, ep, RUNTIME__V1__CONTAINER_FILTER__LABEL_SELECTOR_ENTRY__INIT, sel);
	f.label_selector = ep, f.n_label_selector = 1;
	OK(&rq);
	f.id = "a1b2c3";
	OK(&rq);
	f.pod_sandbox_id = "POD";
	BAD(&rq, "filter.pod_sandbox_id: must be 1-64 lowercase hex characters");
	f.pod_sandbox_id = "";
	f.id = "a1b2c3/..";
	BAD(&rq, "filter.id: must be 1-64 lowercase hex characters");
	f.id = "";
	e[0].value = "\x7f";
	BAD(&rq, "filter.label_selector[\"io.kubernetes.pod.uid\"]: value must be");
}

static void test_update_container_resources(void **state)
{
	Runtime__V1__UpdateContainerResourcesRequest rq = RUNTIME__V1__UPDATE_CONTAINER_RESOURCES_REQUEST__INIT;
	Runtime__V1__LinuxContainerResources r = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	static const char *const ann[][2] = { { "io.kubernetes.cri.update-reason", "cpu-manager" } };
	Runtime__V1__UpdateContainerResourcesRequest__AnnotationsEntry e[1], *ep[1];

	(void)state;
	rq.container_id = CTR_ID;
	OK(&rq);
	r.cpu_period = 100000;
	r.cpu_quota = -1;
	r.cpu_shares = 1024;
	r.memory_limit_in_bytes = 1 << 30;
	r.cpuset_cpus = "2-3";
	r.cpuset_mems = "0";
	rq.linux = &r;
	FILL_MAP(e, ep, RUNTIME__V1__UPDATE_CONTAINER_RESOURCES_REQUEST__ANNOTATIONS_ENTRY__INIT, ann);
	rq.annotations = ep, rq.n_annotations = 1;
	OK(&rq);
	r.cpuset_cpus = "2-3 ";
	BAD(&rq, "linux.cpuset_cpus: must be a cpu list");
	r.cpuset_cpus = "2-3";
	r.oom_score_adj = -1001;
	BAD(&rq, "linux.oom_score_adj: must be -1000..1000");
	r.oom_score_adj = 0;
	e[0].key = "bad key";
	BAD(&rq, "annotations[\"bad key\"]: key must be");
	e[0].key = "ok";
	rq.container_id = "";
	BAD(&rq, "container_id: required");
}

static void test_exec_sync(void **state)
{
	Runtime__V1__ExecSyncRequest rq = RUNTIME__V1__EXEC_SYNC_REQUEST__INIT;
	char *cmd[3] = { "echo", "-n", "hello" };
	char *big;

	(void)state;
	rq.container_id = CTR_ID;
	rq.cmd = cmd, rq.n_cmd = 3;
	rq.timeout = 30;
	OK(&rq);
	rq.timeout = 0;
	OK(&rq);
	rq.timeout = -1;
	BAD(&rq, "timeout: must be >= 0");
	rq.timeout = 1;
	rq.n_cmd = 0;
	BAD(&rq, "cmd: required");
	rq.n_cmd = 3;
	big = repeat('x', 128u * 1024);
	cmd[2] = big;
	BAD(&rq, "cmd[2]: longer than 131071 bytes");
	free(big);
	cmd[2] = "hello";
	rq.container_id = "";
	BAD(&rq, "container_id: required");
}

static void test_exec_attach(void **state)
{
	Runtime__V1__ExecRequest ex = RUNTIME__V1__EXEC_REQUEST__INIT;
	Runtime__V1__AttachRequest at = RUNTIME__V1__ATTACH_REQUEST__INIT;
	char *cmd[3] = { "echo", "-n", "hello" };

	(void)state;
	/* critest S1: tty=false stdin=false */
	ex.container_id = CTR_ID;
	ex.cmd = cmd, ex.n_cmd = 3;
	ex.stdout = ex.stderr = true;
	OK(&ex);
	/* critest S2: tty=true stdin=true */
	ex.stderr = false;
	ex.tty = ex.stdin = true;
	OK(&ex);
	ex.stderr = true;
	BAD(&ex, "stderr: must be false when tty is true");
	ex.tty = ex.stdin = ex.stdout = ex.stderr = false;
	BAD(&ex, "stdout: one of stdin, stdout and stderr must be true");
	ex.stdin = true;
	OK(&ex);
	ex.n_cmd = 0;
	BAD(&ex, "cmd: required");
	ex.n_cmd = 3;
	ex.container_id = "";
	BAD(&ex, "container_id: required");

	/* critest S3: stdin, stdout, stderr, no tty */
	at.container_id = CTR_ID;
	at.stdin = at.stdout = at.stderr = true;
	OK(&at);
	at.tty = true;
	BAD(&at, "stderr: must be false when tty is true");
	at.stderr = false;
	OK(&at);
	at.stdin = at.stdout = false;
	BAD(&at, "stdout: one of stdin, stdout and stderr must be true");
	at.stdout = true;
	at.container_id = "xyz";
	BAD(&at, "container_id: must be 1-64");
}

static void test_port_forward(void **state)
{
	Runtime__V1__PortForwardRequest rq = RUNTIME__V1__PORT_FORWARD_REQUEST__INIT;
	int32_t ports[3] = { 80, 8080, 65535 };

	(void)state;
	rq.pod_sandbox_id = POD_ID;
	OK(&rq); /* critest S4, kubelet: ports come with the stream */
	rq.port = ports, rq.n_port = 3;
	OK(&rq);
	ports[1] = 0;
	BAD(&rq, "port[1]: must be 1..65535");
	ports[1] = 65536;
	BAD(&rq, "port[1]: must be 1..65535");
	ports[1] = 8080;
	rq.pod_sandbox_id = "";
	BAD(&rq, "pod_sandbox_id: required");
}

static void test_list_stats(void **state)
{
	Runtime__V1__ListContainerStatsRequest lc = RUNTIME__V1__LIST_CONTAINER_STATS_REQUEST__INIT;
	Runtime__V1__ContainerStatsFilter cf = RUNTIME__V1__CONTAINER_STATS_FILTER__INIT;
	Runtime__V1__ListPodSandboxStatsRequest lp = RUNTIME__V1__LIST_POD_SANDBOX_STATS_REQUEST__INIT;
	Runtime__V1__PodSandboxStatsFilter pf = RUNTIME__V1__POD_SANDBOX_STATS_FILTER__INIT;
	static const char *const sel[][2] = { { "io.kubernetes.pod.namespace", POD_NS } };
	Runtime__V1__ContainerStatsFilter__LabelSelectorEntry ce[1], *cep[1];
	Runtime__V1__PodSandboxStatsFilter__LabelSelectorEntry pe[1], *pep[1];

	(void)state;
	/* ListContainerStats: critest C11 sends no filter */
	OK(&lc);
	lc.filter = &cf;
	cf.id = CTR_ID;
	cf.pod_sandbox_id = POD_ID;
	FILL_MAP(ce, cep, RUNTIME__V1__CONTAINER_STATS_FILTER__LABEL_SELECTOR_ENTRY__INIT, sel);
	cf.label_selector = cep, cf.n_label_selector = 1;
	OK(&lc);
	cf.id = "nope";
	BAD(&lc, "filter.id: must be 1-64");
	cf.id = "";
	cf.pod_sandbox_id = "nope";
	BAD(&lc, "filter.pod_sandbox_id: must be 1-64");
	cf.pod_sandbox_id = "";
	ce[0].key = "a b";
	BAD(&lc, "filter.label_selector[\"a b\"]: key must be");

	/* ListPodSandboxStats */
	OK(&lp);
	lp.filter = &pf;
	pf.id = POD_ID;
	FILL_MAP(pe, pep, RUNTIME__V1__POD_SANDBOX_STATS_FILTER__LABEL_SELECTOR_ENTRY__INIT, sel);
	pf.label_selector = pep, pf.n_label_selector = 1;
	OK(&lp);
	pf.id = "POD";
	BAD(&lp, "filter.id: must be 1-64");
}

static void test_update_runtime_config(void **state)
{
	Runtime__V1__UpdateRuntimeConfigRequest rq = RUNTIME__V1__UPDATE_RUNTIME_CONFIG_REQUEST__INIT;
	Runtime__V1__RuntimeConfig rc = RUNTIME__V1__RUNTIME_CONFIG__INIT;
	Runtime__V1__NetworkConfig nc = RUNTIME__V1__NETWORK_CONFIG__INIT;

	(void)state;
	OK(&rq);
	rq.runtime_config = &rc;
	OK(&rq);
	rc.network_config = &nc;
	OK(&rq);
	nc.pod_cidr = "10.244.1.0/24";
	OK(&rq);
	nc.pod_cidr = "10.244.1.0/24,fd00:10:244:1::/64";
	OK(&rq);
	nc.pod_cidr = "10.244.1.0";
	BAD(&rq, "runtime_config.network_config.pod_cidr: must be empty or comma-separated CIDRs");
	nc.pod_cidr = "10.244.1.0/33";
	BAD(&rq, "runtime_config.network_config.pod_cidr");
	nc.pod_cidr = "10.244.1.0/24;fd00::/64";
	BAD(&rq, "runtime_config.network_config.pod_cidr");
}

static void test_simple_requests(void **state)
{
	Runtime__V1__StatusRequest st = RUNTIME__V1__STATUS_REQUEST__INIT;
	Runtime__V1__GetEventsRequest ev = RUNTIME__V1__GET_EVENTS_REQUEST__INIT;
	Runtime__V1__ListMetricDescriptorsRequest md = RUNTIME__V1__LIST_METRIC_DESCRIPTORS_REQUEST__INIT;
	Runtime__V1__ListPodSandboxMetricsRequest pm = RUNTIME__V1__LIST_POD_SANDBOX_METRICS_REQUEST__INIT;
	Runtime__V1__ImageFsInfoRequest fs = RUNTIME__V1__IMAGE_FS_INFO_REQUEST__INIT;

	(void)state;
	OK(&st);
	st.verbose = true;
	OK(&st);
	OK(&ev);
	OK(&md);
	OK(&pm);
	OK(&fs);
}

static void test_checkpoint_container(void **state)
{
	Runtime__V1__CheckpointContainerRequest rq = RUNTIME__V1__CHECKPOINT_CONTAINER_REQUEST__INIT;

	(void)state;
	rq.container_id = CTR_ID;
	rq.location = "/var/lib/kubelet/checkpoints/checkpoint-nginx_default-nginx-2024-05-02T10:11:12Z.tar";
	OK(&rq);
	rq.timeout = 60;
	OK(&rq);
	rq.timeout = -1;
	BAD(&rq, "timeout: must be >= 0");
	rq.timeout = 0;
	rq.location = "";
	BAD(&rq, "location: required");
	rq.location = "checkpoint.tar";
	BAD(&rq, "location: must be an absolute path without \"..\"");
	rq.location = "/var/lib/kubelet/../../etc/cron.d/x";
	BAD(&rq, "location: must be an absolute path");
	rq.location = "/tmp/x.tar";
	rq.container_id = "";
	BAD(&rq, "container_id: required");
}

static void test_list_images(void **state)
{
	Runtime__V1__ListImagesRequest rq = RUNTIME__V1__LIST_IMAGES_REQUEST__INIT;
	Runtime__V1__ImageFilter f = RUNTIME__V1__IMAGE_FILTER__INIT;
	Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;

	(void)state;
	OK(&rq);
	rq.filter = &f;
	OK(&rq);
	f.image = &spec;
	OK(&rq); /* empty image: no filter */
	spec.image = "gcr.io/k8s-staging-cri-tools/test-image-tag:all";
	OK(&rq);
	spec.image = "busybox latest";
	BAD(&rq, "filter.image.image: must be 1-4096 printable characters, no space");
}

static void test_image_status_remove(void **state)
{
	Runtime__V1__ImageStatusRequest st = RUNTIME__V1__IMAGE_STATUS_REQUEST__INIT;
	Runtime__V1__RemoveImageRequest rm = RUNTIME__V1__REMOVE_IMAGE_REQUEST__INIT;
	Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
	static const char *const ann[][2] = { { "kubernetes.io/runtimehandler", "runc" } };
	Runtime__V1__ImageSpec__AnnotationsEntry e[1], *ep[1];
	char *big;

	(void)state;
	/* ImageStatus */
	BAD(&st, "image: required");
	st.image = &spec;
	BAD(&st, "image.image: required");
	spec.image = "registry.k8s.io/e2e-test-images/busybox:1.29-2";
	OK(&st);
	st.verbose = true;
	spec.image = "sha256:0f8498f13f3adef3f3c8b52cdf069ecc880b081159be6349163d144e8aa5fb29";
	FILL_MAP(e, ep, RUNTIME__V1__IMAGE_SPEC__ANNOTATIONS_ENTRY__INIT, ann);
	spec.annotations = ep, spec.n_annotations = 1;
	OK(&st);
	big = repeat('a', 4097);
	spec.image = big;
	BAD(&st, "image.image: must be 1-4096 printable characters");
	free(big);
	spec.image = "nginx\r\n";
	BAD(&st, "image.image: must be 1-4096");
	spec.image = "nginx";
	e[0].key = "-bad";
	BAD(&st, "image.annotations[\"-bad\"]: key must be");
	e[0].key = "ok";

	/* RemoveImage: critest removes by id */
	BAD(&rm, "image: required");
	rm.image = &spec;
	spec.image = "sha256:0f8498f13f3adef3f3c8b52cdf069ecc880b081159be6349163d144e8aa5fb29";
	OK(&rm);
	spec.image = "";
	BAD(&rm, "image.image: required");
	spec.image = "a b";
	BAD(&rm, "image.image: must be");
}

static void test_pull_image(void **state)
{
	static struct sandbox_fx s;
	Runtime__V1__PullImageRequest rq = RUNTIME__V1__PULL_IMAGE_REQUEST__INIT;
	Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
	Runtime__V1__AuthConfig auth = RUNTIME__V1__AUTH_CONFIG__INIT;
	char *big;

	(void)state;
	BAD(&rq, "image: required");
	rq.image = &spec;
	spec.image = "gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:"
		     "9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf";
	OK(&rq); /* critest: no sandbox config */
	sandbox_fx_init(&s);
	rq.sandbox_config = &s.cfg;
	auth.username = "robot$puller";
	auth.password = "s3cr3t p\xc3\xa4ss";
	auth.server_address = "registry.example.com:5000";
	rq.auth = &auth;
	OK(&rq);
	big = repeat('p', 64u * 1024 + 1);
	auth.identity_token = big;
	BAD(&rq, "auth.identity_token: longer than 65536 bytes");
	free(big);
	auth.identity_token = "";
	s.md.namespace_ = "kube_system";
	BAD(&rq, "sandbox_config.metadata.namespace: must be a DNS label");
	sandbox_fx_init(&s);
	/* critest's pulls carry a pod config without metadata: informational. */
	s.cfg.metadata = NULL;
	OK(&rq);
	s.cfg.hostname = "not a hostname";
	BAD(&rq, "sandbox_config.hostname: must be an RFC 1123 host name of at most 64 characters");
	sandbox_fx_init(&s);
	spec.image = "";
	BAD(&rq, "image.image: required");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_helper_utf8),
		cmocka_unit_test(test_helper_names),
		cmocka_unit_test(test_helper_labels),
		cmocka_unit_test(test_helper_paths),
		cmocka_unit_test(test_helper_net),
		cmocka_unit_test(test_helper_linux),
		cmocka_unit_test(test_generic_utf8_nul),
		cmocka_unit_test(test_generic_enums),
		cmocka_unit_test(test_generic_counts),
		cmocka_unit_test(test_generic_wire),
		cmocka_unit_test(test_all_types_malformed),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_run_pod_sandbox),
		cmocka_unit_test(test_sandbox_id_requests),
		cmocka_unit_test(test_list_pod_sandbox),
		cmocka_unit_test(test_create_container),
		cmocka_unit_test(test_container_id_requests),
		cmocka_unit_test(test_list_containers),
		cmocka_unit_test(test_update_container_resources),
		cmocka_unit_test(test_exec_sync),
		cmocka_unit_test(test_exec_attach),
		cmocka_unit_test(test_port_forward),
		cmocka_unit_test(test_list_stats),
		cmocka_unit_test(test_update_runtime_config),
		cmocka_unit_test(test_simple_requests),
		cmocka_unit_test(test_checkpoint_container),
		cmocka_unit_test(test_list_images),
		cmocka_unit_test(test_image_status_remove),
		cmocka_unit_test(test_pull_image),
	};

	/* Every request type has a test above. */
	_Static_assert(CRI_NREQUESTS == 33, "a request type without tests");
	return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
