/*
 * frontd: the per-request rules of CRI validation (see validate.h).
 *
 * Each rule validates one message at the current error path; sub-messages
 * are entered with SUB, which pushes the field name.  By the time a rule
 * runs the generic walks (validate.c) have checked depth, counts, enums,
 * UTF-8 and NUL, and every string pointer is non-NULL.
 *
 * Where the CRI leaves room, a rule follows what kubelet 1.26 and critest
 * 1.26 actually send (never rejecting it) and what the kernel would accept
 * anyway; each such choice is commented where it is made.
 */
#include <stdint.h>
#include <string.h>

#include "common/util.h"
#include "frontd/validate.h"
#include "frontd/validate_int.h"

#define SUB(c, name, fn, ptr)                                 \
	do {                                                  \
		if ((ptr) != NULL) {                          \
			int r_;                               \
			vc_push(c, name, -1, NULL);           \
			r_ = fn(c, ptr);                      \
			vc_pop(c);                            \
			if (r_ < 0)                           \
				return -1;                    \
		}                                             \
	} while (0)

#define REQUIRE(c, name, ptr)                                  \
	do {                                                   \
		if ((ptr) == NULL)                             \
			return vc_fail(c, name, "required");   \
	} while (0)

#define MAP(x, field) ((ProtobufCMessage *const *)(void *)(x)->field), (x)->n_##field

#define ARG_STRLEN_MAX (128u * 1024)        /* MAX_ARG_STRLEN: one argv/envp string, NUL included */
#define ARGV_BYTES_MAX (2u * 1024 * 1024)   /* execve's default limit (8 MiB stack / 4) */
#define ENV_BYTES_MAX (2u * 1024 * 1024)
#define ARGV_ITEMS_MAX 4096u                /* command + args together */
#define ANNOTATION_BYTES_MAX (2u * 1024 * 1024)
#define AUTH_FIELD_MAX (64u * 1024)
#define DNS_SERVERS_MAX 32u
#define DNS_SEARCHES_MAX 32u
#define DNS_OPTIONS_MAX 64u
#define CAPS_MAX 128u
#define IDMAPS_MAX 340u                     /* the kernel's limit for uid_map/gid_map */
#define ID_T_MAX INT64_C(4294967294)        /* uid_t/gid_t, (uid_t)-1 excluded */

static int check_id(struct vctx *c, const char *field, const char *s, bool required)
{
	if (s[0] == '\0')
		return required ? vc_fail(c, field, "required") : 0;
	if (!cri_valid_id(s))
		return vc_fail(c, field, "must be 1-64 lowercase hex characters");
	return 0;
}

static int check_min(struct vctx *c, const char *field, int64_t v, int64_t min)
{
	if (v < min)
		return vc_fail(c, field, "must be >= %lld", (long long)min);
	return 0;
}

/* Kubernetes label rules for keys; values up to 253, not 63: kubelet puts
 * the pod name (a DNS subdomain) in io.kubernetes.pod.name. */
static int check_labels(struct vctx *c, const char *field, ProtobufCMessage *const *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *k = vc_entry_str(e[i], 0), *v = vc_entry_str(e[i], 1);
		if (!cri_valid_label_key(k))
			return vc_fail_at(c, field, (long)i, k,
					  "key must be [prefix/]name, name 1-63 of [A-Za-z0-9._-], "
					  "prefix a lowercase DNS subdomain");
		if (!cri_valid_label_value(v))
			return vc_fail_at(c, field, (long)i, k,
					  "value must be empty or 1-253 of [A-Za-z0-9._-] alphanumeric at both ends");
	}
	return 0;
}

/* Keys as the API server checks them (qualified names, prefix of any
 * case); values any UTF-8.  The size bound is 2 MiB, not the API server's
 * 256 KiB: kubelet adds its own container annotations (the preStop handler
 * and the ports as JSON) whose size only the pod's size bounds. */
static int check_annotations(struct vctx *c, const char *field, ProtobufCMessage *const *e, size_t n)
{
	size_t total = 0;

	for (size_t i = 0; i < n; i++) {
		const char *k = vc_entry_str(e[i], 0), *v = vc_entry_str(e[i], 1);
		if (!cri_valid_annotation_key(k))
			return vc_fail_at(c, field, (long)i, k,
					  "key must be [prefix/]name, name 1-63 of [A-Za-z0-9._-], "
					  "prefix a DNS subdomain");
		total += strlen(k) + strlen(v);
		if (total > ANNOTATION_BYTES_MAX)
			return vc_fail(c, field, "larger than %u bytes in all", ANNOTATION_BYTES_MAX);
	}
	return 0;
}

/* Filters only match labels, so bound them loosely: a selector that can
 * match nothing is harmless. */
static int check_selector(struct vctx *c, const char *field, ProtobufCMessage *const *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *k = vc_entry_str(e[i], 0), *v = vc_entry_str(e[i], 1);
		if (k[0] == '\0' || !vc_printable(k, 317, false))
			return vc_fail_at(c, field, (long)i, k, "key must be 1-317 printable characters, no space");
		if (!vc_printable(v, 253, false))
			return vc_fail_at(c, field, (long)i, k, "value must be 0-253 printable characters, no space");
	}
	return 0;
}

/* One argv vector (command, args, cmd): each string fits execve's per-string
 * limit; *total accumulates the bytes execve would copy. */
static int check_argv(struct vctx *c, const char *field, char *const *v, size_t n, size_t *total)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(v[i]) + 1;
		if (len > ARG_STRLEN_MAX)
			return vc_fail_at(c, field, (long)i, NULL, "longer than %u bytes", ARG_STRLEN_MAX - 1);
		*total += len;
	}
	if (*total > ARGV_BYTES_MAX)
		return vc_fail(c, field, "command line larger than %u bytes in all", ARGV_BYTES_MAX);
	return 0;
}

static int check_cmd(struct vctx *c, const char *field, char *const *v, size_t n)
{
	size_t total = 0;

	if (n == 0)
		return vc_fail(c, field, "required");
	return check_argv(c, field, v, n, &total);
}

static int v_image_spec(struct vctx *c, const Runtime__V1__ImageSpec *s, bool required)
{
	if (s->image[0] == '\0' && !required)
		return check_annotations(c, "annotations", MAP(s, annotations));
	if (s->image[0] == '\0')
		return vc_fail(c, "image", "required");
	if (!cri_valid_image_ref(s->image))
		return vc_fail(c, "image", "must be 1-4096 printable characters, no space");
	return check_annotations(c, "annotations", MAP(s, annotations));
}

static int v_image_spec_required(struct vctx *c, const Runtime__V1__ImageSpec *s)
{
	return v_image_spec(c, s, true);
}

static int v_image_spec_optional(struct vctx *c, const Runtime__V1__ImageSpec *s)
{
	return v_image_spec(c, s, false);
}

static int check_id_range(struct vctx *c, const char *field, const Runtime__V1__Int64Value *v)
{
	if (v != NULL && (v->value < 0 || v->value > ID_T_MAX)) {
		int r;
		vc_push(c, field, -1, NULL);
		r = vc_fail(c, "value", "must be 0..%lld", (long long)ID_T_MAX);
		vc_pop(c);
		return r;
	}
	return 0;
}

static int check_groups(struct vctx *c, const int64_t *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (g[i] < 0 || g[i] > ID_T_MAX)
			return vc_fail_at(c, "supplemental_groups", (long)i, NULL, "must be 0..%lld",
					  (long long)ID_T_MAX);
	return 0;
}

static int v_selinux(struct vctx *c, const Runtime__V1__SELinuxOption *o)
{
	const char *const v[] = { o->user, o->role, o->type, o->level };
	static const char *const names[] = { "user", "role", "type", "level" };

	for (size_t i = 0; i < ARRAY_SIZE(v); i++)
		if (!vc_printable(v[i], 256, false))
			return vc_fail(c, names[i], "must be 0-256 printable characters, no space");
	return 0;
}

static int check_idmaps(struct vctx *c, const char *field, Runtime__V1__IDMapping *const *m, size_t n)
{
	if (n > IDMAPS_MAX)
		return vc_fail(c, field, "at most %u mappings", IDMAPS_MAX);
	for (size_t i = 0; i < n; i++) {
		uint64_t len = m[i]->length;
		if (len == 0 || m[i]->host_id + len > UINT64_C(1) << 32 || m[i]->container_id + len > UINT64_C(1) << 32)
			return vc_fail_at(c, field, (long)i, NULL, "length must be >= 1 and ids + length <= 2^32");
	}
	return 0;
}

static int v_userns(struct vctx *c, const Runtime__V1__UserNamespace *u)
{
	/* The CRI: "supports only POD and NODE, not CONTAINER OR TARGET". */
	if (u->mode != RUNTIME__V1__NAMESPACE_MODE__POD && u->mode != RUNTIME__V1__NAMESPACE_MODE__NODE)
		return vc_fail(c, "mode", "must be POD or NODE");
	if (u->mode == RUNTIME__V1__NAMESPACE_MODE__NODE && (u->n_uids > 0 || u->n_gids > 0))
		return vc_fail(c, u->n_uids > 0 ? "uids" : "gids", "must be empty when mode is NODE");
	if (check_idmaps(c, "uids", u->uids, u->n_uids) < 0)
		return -1;
	return check_idmaps(c, "gids", u->gids, u->n_gids);
}

/* kubelet sets network and ipc to POD or NODE, pid to POD, CONTAINER, NODE
 * or TARGET (containers only: a sandbox has no container to target). */
static int check_nsopts(struct vctx *c, const Runtime__V1__NamespaceOption *o, bool sandbox)
{
	if (o->network == RUNTIME__V1__NAMESPACE_MODE__TARGET)
		return vc_fail(c, "network", "TARGET is only valid for pid");
	if (o->ipc == RUNTIME__V1__NAMESPACE_MODE__TARGET)
		return vc_fail(c, "ipc", "TARGET is only valid for pid");
	if (o->pid == RUNTIME__V1__NAMESPACE_MODE__TARGET) {
		if (sandbox)
			return vc_fail(c, "pid", "TARGET is not valid for a sandbox");
		if (check_id(c, "target_id", o->target_id, true) < 0)
			return -1;
	} else if (o->target_id[0] != '\0') {
		return vc_fail(c, "target_id", "must be empty unless pid is TARGET");
	}
	SUB(c, "userns_options", v_userns, o->userns_options);
	return 0;
}

static int v_nsopts_sandbox(struct vctx *c, const Runtime__V1__NamespaceOption *o)
{
	return check_nsopts(c, o, true);
}

static int v_nsopts_container(struct vctx *c, const Runtime__V1__NamespaceOption *o)
{
	return check_nsopts(c, o, false);
}

/* localhost_ref: for seccomp an absolute clean path (kubelet joins its
 * seccomp root with the pod's relative profile); CRI-O also takes the old
 * "localhost/<path>" spelling.  For AppArmor a profile name, with or
 * without "localhost/". */
static bool valid_seccomp_ref(const char *s)
{
	if (strncmp(s, "localhost/", 10) == 0)
		s += 10;
	return cri_valid_clean_abs_path(s);
}

static bool valid_apparmor_ref(const char *s)
{
	if (strncmp(s, "localhost/", 10) == 0)
		s += 10;
	return s[0] != '\0' && vc_printable(s, 4096, false);
}

static int check_profile(struct vctx *c, const Runtime__V1__SecurityProfile *p, bool seccomp)
{
	if (p->profile_type != RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost) {
		if (p->localhost_ref[0] != '\0')
			return vc_fail(c, "localhost_ref", "must be empty unless profile_type is Localhost");
		return 0;
	}
	if (p->localhost_ref[0] == '\0')
		return vc_fail(c, "localhost_ref", "required when profile_type is Localhost");
	if (seccomp ? !valid_seccomp_ref(p->localhost_ref) : !valid_apparmor_ref(p->localhost_ref))
		return vc_fail(c, "localhost_ref",
			       seccomp ? "must be an absolute clean path" : "must be 1-4096 printable characters, no space");
	return 0;
}

static int v_seccomp(struct vctx *c, const Runtime__V1__SecurityProfile *p)
{
	return check_profile(c, p, true);
}

static int v_apparmor(struct vctx *c, const Runtime__V1__SecurityProfile *p)
{
	return check_profile(c, p, false);
}

/* The deprecated string forms.  A bare path is refused, as critest's
 * "should not support a custom seccomp profile without using localhost/"
 * expects. */
static int check_seccomp_path(struct vctx *c, const char *s)
{
	if (s[0] == '\0' || strcmp(s, "unconfined") == 0 || strcmp(s, "runtime/default") == 0 ||
	    strcmp(s, "docker/default") == 0)
		return 0;
	if (strncmp(s, "localhost/", 10) == 0 && cri_valid_clean_abs_path(s + 10))
		return 0;
	return vc_fail(c, "seccomp_profile_path",
		       "must be runtime/default, docker/default, unconfined or localhost/<absolute clean path>");
}

static int check_apparmor_profile(struct vctx *c, const char *s)
{
	if (s[0] == '\0' || strcmp(s, "unconfined") == 0 || strcmp(s, "runtime/default") == 0)
		return 0;
	if (strncmp(s, "localhost/", 10) == 0 && valid_apparmor_ref(s))
		return 0;
	return vc_fail(c, "apparmor_profile", "must be runtime/default, unconfined or localhost/<profile>");
}

static int v_sandbox_sc(struct vctx *c, const Runtime__V1__LinuxSandboxSecurityContext *sc)
{
	SUB(c, "namespace_options", v_nsopts_sandbox, sc->namespace_options);
	SUB(c, "selinux_options", v_selinux, sc->selinux_options);
	/* run_as_group without run_as_user is legal here: kubelet sends the
	 * pod's runAsGroup alone when the pod sets only that. */
	if (check_id_range(c, "run_as_user", sc->run_as_user) < 0 ||
	    check_id_range(c, "run_as_group", sc->run_as_group) < 0 ||
	    check_groups(c, sc->supplemental_groups, sc->n_supplemental_groups) < 0)
		return -1;
	SUB(c, "seccomp", v_seccomp, sc->seccomp);
	SUB(c, "apparmor", v_apparmor, sc->apparmor);
	return check_seccomp_path(c, sc->seccomp_profile_path);
}

static int check_caps(struct vctx *c, const char *field, char *const *v, size_t n)
{
	if (n > CAPS_MAX)
		return vc_fail(c, field, "at most %u capabilities", CAPS_MAX);
	for (size_t i = 0; i < n; i++)
		if (!cri_valid_capability(v[i]))
			return vc_fail_at(c, field, (long)i, NULL, "must be 1-64 of [A-Za-z0-9_]");
	return 0;
}

static int v_caps(struct vctx *c, const Runtime__V1__Capability *k)
{
	if (check_caps(c, "add_capabilities", k->add_capabilities, k->n_add_capabilities) < 0 ||
	    check_caps(c, "drop_capabilities", k->drop_capabilities, k->n_drop_capabilities) < 0)
		return -1;
	return check_caps(c, "add_ambient_capabilities", k->add_ambient_capabilities, k->n_add_ambient_capabilities);
}

static int check_clean_paths(struct vctx *c, const char *field, char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!cri_valid_clean_abs_path(v[i]))
			return vc_fail_at(c, field, (long)i, NULL, "must be an absolute clean path");
	return 0;
}

static int v_container_sc(struct vctx *c, const Runtime__V1__LinuxContainerSecurityContext *sc)
{
	SUB(c, "capabilities", v_caps, sc->capabilities);
	SUB(c, "namespace_options", v_nsopts_container, sc->namespace_options);
	SUB(c, "selinux_options", v_selinux, sc->selinux_options);
	if (check_id_range(c, "run_as_user", sc->run_as_user) < 0 ||
	    check_id_range(c, "run_as_group", sc->run_as_group) < 0)
		return -1;
	/* The CRI: "otherwise, the runtime MUST error" (critest SC13).  kubelet
	 * always sends one of the two (root when the image names no user). */
	if (sc->run_as_group != NULL && sc->run_as_user == NULL && sc->run_as_username[0] == '\0')
		return vc_fail(c, "run_as_group", "requires run_as_user or run_as_username");
	/* A name from the image's USER, looked up in the image's /etc/passwd. */
	if (!vc_printable(sc->run_as_username, 256, false) || strchr(sc->run_as_username, ':') != NULL ||
	    strchr(sc->run_as_username, '/') != NULL)
		return vc_fail(c, "run_as_username", "must be 0-256 printable characters, no space, ':' or '/'");
	if (check_groups(c, sc->supplemental_groups, sc->n_supplemental_groups) < 0 ||
	    check_clean_paths(c, "masked_paths", sc->masked_paths, sc->n_masked_paths) < 0 ||
	    check_clean_paths(c, "readonly_paths", sc->readonly_paths, sc->n_readonly_paths) < 0)
		return -1;
	SUB(c, "seccomp", v_seccomp, sc->seccomp);
	SUB(c, "apparmor", v_apparmor, sc->apparmor);
	if (check_apparmor_profile(c, sc->apparmor_profile) < 0)
		return -1;
	return check_seccomp_path(c, sc->seccomp_profile_path);
}

/* kubelet's form of a huge page size (HugePageUnitSizeFromByteSize), which
 * is also the kernel's in hugetlb.<size>.*: a power of two in the largest
 * unit that keeps it whole ("2MB", "1GB", "64KB"; never "2048KB"). */
static bool hugepage_size_ok(const char *s)
{
	uint64_t v = 0;
	size_t n = 0;

	if (!cri_valid_hugepage_size(s))
		return false;
	while (s[n] >= '0' && s[n] <= '9')
		v = v * 10 + (uint64_t)(s[n++] - '0');
	if (v == 0 || (v & (v - 1)) != 0)
		return false;
	return v < 1024 || strcmp(s + n, "PB") == 0;
}

/* A unified key: a file of a v2 controller's interface ("memory.high",
 * "hugetlb.2MB.max"), never a core file (cgroup.procs, .subtree_control,
 * .kill, .freeze ...: they move processes or reshape the tree) nor a PSI
 * trigger (*.pressure: it lives only while the writer keeps it open). */
static bool unified_key_ok(const char *k)
{
	static const char *const ctrls[] = { "cpu.", "cpuset.", "io.", "memory.", "pids.", "hugetlb.", "rdma.", "misc." };
	size_t n = strlen(k);

	if (!cri_valid_unified_key(k) || strchr(k, '/') != NULL)
		return false;
	if (n > 9 && strcmp(k + n - 9, ".pressure") == 0)
		return false;
	for (size_t i = 0; i < sizeof ctrls / sizeof ctrls[0]; i++)
		if (strncmp(k, ctrls[i], strlen(ctrls[i])) == 0 && n > strlen(ctrls[i]))
			return true;
	return false;
}

#define HUGEPAGE_LIMITS_MAX 16 /* kubelet sends one per size the node has: a handful */
#define UNIFIED_MAX 64
#define UNIFIED_VALUE_MAX 4096

static int v_resources(struct vctx *c, const Runtime__V1__LinuxContainerResources *r)
{
	/* 0 means "not set" throughout; -1 for quota and swap means
	 * unlimited (runc; kubelet's UnlimitedSwap sends swap -1). */
	if (check_min(c, "cpu_period", r->cpu_period, 0) < 0 || check_min(c, "cpu_quota", r->cpu_quota, -1) < 0 ||
	    check_min(c, "cpu_shares", r->cpu_shares, 0) < 0 ||
	    check_min(c, "memory_limit_in_bytes", r->memory_limit_in_bytes, 0) < 0 ||
	    check_min(c, "memory_swap_limit_in_bytes", r->memory_swap_limit_in_bytes, -1) < 0)
		return -1;
	if (r->oom_score_adj < -1000 || r->oom_score_adj > 1000)
		return vc_fail(c, "oom_score_adj", "must be -1000..1000");
	/* swap is memory+swap (runc, CRI-O): -1 unlimited, else not below the
	 * memory limit and only with one (kubelet 1.26 sends swap = memory, or
	 * -1 with UnlimitedSwap) */
	if (r->memory_swap_limit_in_bytes > 0 && r->memory_limit_in_bytes == 0)
		return vc_fail(c, "memory_swap_limit_in_bytes", "requires memory_limit_in_bytes");
	if (r->memory_swap_limit_in_bytes > 0 && r->memory_swap_limit_in_bytes < r->memory_limit_in_bytes)
		return vc_fail(c, "memory_swap_limit_in_bytes", "must be -1 or not below memory_limit_in_bytes");
	if (!cri_valid_cpuset(r->cpuset_cpus) || strlen(r->cpuset_cpus) > 1024)
		return vc_fail(c, "cpuset_cpus", "must be a cpu list like \"0-3,5\"");
	if (!cri_valid_cpuset(r->cpuset_mems) || strlen(r->cpuset_mems) > 1024)
		return vc_fail(c, "cpuset_mems", "must be a node list like \"0-1\"");
	if (r->n_hugepage_limits > HUGEPAGE_LIMITS_MAX)
		return vc_fail(c, "hugepage_limits", "at most %d", HUGEPAGE_LIMITS_MAX);
	for (size_t i = 0; i < r->n_hugepage_limits; i++) {
		const char *why = NULL, *field = "page_size";
		if (!hugepage_size_ok(r->hugepage_limits[i]->page_size))
			why = "must be a size like \"2MB\" or \"1GB\" (a power of two, in its largest whole unit)";
		else if (r->hugepage_limits[i]->limit > INT64_MAX)
			why = "must be at most 2^63-1", field = "limit";
		if (why != NULL) {
			int rc;
			vc_push(c, "hugepage_limits", (long)i, NULL);
			rc = vc_fail(c, field, "%s", why);
			vc_pop(c);
			return rc;
		}
	}
	if (r->n_unified > UNIFIED_MAX)
		return vc_fail(c, "unified", "at most %d entries", UNIFIED_MAX);
	for (size_t i = 0; i < r->n_unified; i++) {
		const char *k = r->unified[i]->key, *v = r->unified[i]->value;
		if (!unified_key_ok(k))
			return vc_fail_at(c, "unified", (long)i, k,
					  "key must be a cgroup v2 file name of a controller (cpu, cpuset, io, memory, pids, "
					  "hugetlb, rdma, misc) like \"memory.high\"");
		if (!vc_printable(v, UNIFIED_VALUE_MAX, true))
			return vc_fail_at(c, "unified", (long)i, k, "value must be 0-%d printable characters",
					  UNIFIED_VALUE_MAX);
	}
	return 0;
}

static int v_container_linux(struct vctx *c, const Runtime__V1__LinuxContainerConfig *l)
{
	SUB(c, "resources", v_resources, l->resources);
	SUB(c, "security_context", v_container_sc, l->security_context);
	return 0;
}

static int v_sandbox_linux(struct vctx *c, const Runtime__V1__LinuxPodSandboxConfig *l)
{
	if (!cri_valid_cgroup_parent(l->cgroup_parent))
		return vc_fail(c, "cgroup_parent", "must be empty, an absolute clean path or a systemd slice name");
	SUB(c, "security_context", v_sandbox_sc, l->security_context);
	for (size_t i = 0; i < l->n_sysctls; i++) {
		const char *k = l->sysctls[i]->key, *v = l->sysctls[i]->value;
		if (!cri_valid_sysctl_name(k))
			return vc_fail_at(c, "sysctls", (long)i, k, "key must be a sysctl name like \"net.ipv4.ip_forward\"");
		if (!vc_printable(v, 4096, true))
			return vc_fail_at(c, "sysctls", (long)i, k, "value must be 0-4096 printable characters");
	}
	SUB(c, "overhead", v_resources, l->overhead);
	SUB(c, "resources", v_resources, l->resources);
	return 0;
}

/* Servers may carry an IPv6 zone (copied from the node's resolv.conf);
 * searches and options go into resolv.conf, so no blanks or controls. */
static int v_dns(struct vctx *c, const Runtime__V1__DNSConfig *d)
{
	if (d->n_servers > DNS_SERVERS_MAX)
		return vc_fail(c, "servers", "at most %u", DNS_SERVERS_MAX);
	if (d->n_searches > DNS_SEARCHES_MAX)
		return vc_fail(c, "searches", "at most %u", DNS_SEARCHES_MAX);
	if (d->n_options > DNS_OPTIONS_MAX)
		return vc_fail(c, "options", "at most %u", DNS_OPTIONS_MAX);
	for (size_t i = 0; i < d->n_servers; i++)
		if (!cri_valid_ip(d->servers[i], true))
			return vc_fail_at(c, "servers", (long)i, NULL, "must be an IPv4 or IPv6 address");
	for (size_t i = 0; i < d->n_searches; i++)
		if (d->searches[i][0] == '\0' || !vc_printable(d->searches[i], 254, false))
			return vc_fail_at(c, "searches", (long)i, NULL, "must be 1-254 printable characters, no space");
	for (size_t i = 0; i < d->n_options; i++)
		if (d->options[i][0] == '\0' || !vc_printable(d->options[i], 256, false))
			return vc_fail_at(c, "options", (long)i, NULL, "must be 1-256 printable characters, no space");
	return 0;
}

static int v_port_mapping(struct vctx *c, const Runtime__V1__PortMapping *p)
{
	if (p->container_port < 1 || p->container_port > 65535)
		return vc_fail(c, "container_port", "must be 1..65535");
	if (p->host_port < 0 || p->host_port > 65535)
		return vc_fail(c, "host_port", "must be 0..65535");
	if (p->host_ip[0] != '\0' && !cri_valid_ip(p->host_ip, false))
		return vc_fail(c, "host_ip", "must be empty or an IPv4 or IPv6 address");
	return 0;
}

static int v_sandbox_metadata(struct vctx *c, const Runtime__V1__PodSandboxMetadata *md)
{
	if (!cri_valid_name(md->name))
		return vc_fail(c, "name", "must be 1-253 of [A-Za-z0-9._-], starting with a letter or digit");
	if (!vc_valid_uid(md->uid))
		return vc_fail(c, "uid", "must be 1-128 of [A-Za-z0-9._-], starting with a letter or digit");
	if (!cri_valid_dns_label(md->namespace_, 63))
		return vc_fail(c, "namespace", "must be a DNS label: 1-63 of [a-z0-9-], alphanumeric at both ends");
	return 0;
}

/* log_directory: kubelet sends /var/log/pods/<ns>_<name>_<uid>; one
 * trailing slash is tolerated (the CRI's own example has one). */
static bool valid_log_directory(const char *s)
{
	size_t n = strlen(s);

	if (n > 1 && s[n - 1] == '/')
		n--;
	return n == 0 ? s[0] == '\0' : vc_clean_abs_n(s, n);
}

/* The pod config itself, metadata aside (see v_sandbox_config). */
static int v_sandbox_config_body(struct vctx *c, const Runtime__V1__PodSandboxConfig *cfg)
{
	SUB(c, "metadata", v_sandbox_metadata, cfg->metadata);
	/* Empty only for host-network pods; at most 64 (kubelet refuses a
	 * longer FQDN hostname; sethostname() too). */
	if (cfg->hostname[0] != '\0' && !cri_valid_hostname(cfg->hostname))
		return vc_fail(c, "hostname", "must be an RFC 1123 host name of at most 64 characters");
	if (!valid_log_directory(cfg->log_directory))
		return vc_fail(c, "log_directory", "must be empty or an absolute clean path");
	SUB(c, "dns_config", v_dns, cfg->dns_config);
	for (size_t i = 0; i < cfg->n_port_mappings; i++) {
		int r;
		vc_push(c, "port_mappings", (long)i, NULL);
		r = v_port_mapping(c, cfg->port_mappings[i]);
		vc_pop(c);
		if (r < 0)
			return -1;
	}
	if (check_labels(c, "labels", MAP(cfg, labels)) < 0 ||
	    check_annotations(c, "annotations", MAP(cfg, annotations)) < 0)
		return -1;
	SUB(c, "linux", v_sandbox_linux, cfg->linux);
	return 0;
}

static int v_sandbox_config(struct vctx *c, const Runtime__V1__PodSandboxConfig *cfg)
{
	REQUIRE(c, "metadata", cfg->metadata);
	return v_sandbox_config_body(c, cfg);
}

/* PullImage and CreateContainer carry the pod's config for information
 * only: what is there is checked, but critest (and kubelet for a pull
 * outside any pod) may leave the metadata out. */
static int v_sandbox_config_info(struct vctx *c, const Runtime__V1__PodSandboxConfig *cfg)
{
	return v_sandbox_config_body(c, cfg);
}

static int v_mount(struct vctx *c, const Runtime__V1__Mount *m)
{
	/* Absolute without "..", but not necessarily clean: kubelet passes a
	 * user's mountPath / hostPath as written ("/data/"); the API server
	 * has refused ".." in both. */
	if (!cri_valid_abs_path(m->container_path))
		return vc_fail(c, "container_path", "must be an absolute path without \"..\"");
	if (!cri_valid_abs_path(m->host_path))
		return vc_fail(c, "host_path", "must be an absolute path without \"..\"");
	return 0;
}

static int v_device(struct vctx *c, const Runtime__V1__Device *d)
{
	bool seen[3] = { false, false, false };

	if (!cri_valid_abs_path(d->container_path))
		return vc_fail(c, "container_path", "must be an absolute path without \"..\"");
	if (!cri_valid_abs_path(d->host_path))
		return vc_fail(c, "host_path", "must be an absolute path without \"..\"");
	for (const char *p = d->permissions; *p != '\0'; p++) {
		const char *at = strchr("rwm", *p);
		if (at == NULL || seen[at - "rwm"])
			return vc_fail(c, "permissions", "must be made of r, w and m, each at most once");
		seen[at - "rwm"] = true;
	}
	return 0;
}

static int v_container_metadata(struct vctx *c, const Runtime__V1__ContainerMetadata *md)
{
	/* Up to 253, not 63: critest names containers "<prefix><uuid>" that
	 * reach 140 characters. */
	if (!cri_valid_name(md->name))
		return vc_fail(c, "name", "must be 1-253 of [A-Za-z0-9._-], starting with a letter or digit");
	return 0;
}

static int v_container_config(struct vctx *c, const Runtime__V1__ContainerConfig *cfg)
{
	size_t argv_bytes = 0, env_bytes = 0;

	REQUIRE(c, "metadata", cfg->metadata);
	SUB(c, "metadata", v_container_metadata, cfg->metadata);
	REQUIRE(c, "image", cfg->image);
	SUB(c, "image", v_image_spec_required, cfg->image);
	if (cfg->n_command + cfg->n_args > ARGV_ITEMS_MAX)
		return vc_fail(c, "args", "at most %u command and args items together", ARGV_ITEMS_MAX);
	if (check_argv(c, "command", cfg->command, cfg->n_command, &argv_bytes) < 0 ||
	    check_argv(c, "args", cfg->args, cfg->n_args, &argv_bytes) < 0)
		return -1;
	/* Absolute (runc requires it), not necessarily clean: users write
	 * "workingDir: /app/". */
	if (cfg->working_dir[0] != '\0' && (cfg->working_dir[0] != '/' || strlen(cfg->working_dir) > PATH_MAX_LEN))
		return vc_fail(c, "working_dir", "must be empty or an absolute path");
	for (size_t i = 0; i < cfg->n_envs; i++) {
		const char *k = cfg->envs[i]->key;
		size_t len = strlen(k) + strlen(cfg->envs[i]->value) + 2;
		if (k[0] == '\0' || strchr(k, '=') != NULL)
			return vc_fail_at(c, "envs", (long)i, NULL, "key must be non-empty without '='");
		if (len > ARG_STRLEN_MAX)
			return vc_fail_at(c, "envs", (long)i, NULL, "longer than %u bytes", ARG_STRLEN_MAX - 1);
		env_bytes += len;
		if (env_bytes > ENV_BYTES_MAX)
			return vc_fail(c, "envs", "larger than %u bytes in all", ENV_BYTES_MAX);
	}
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		int r;
		vc_push(c, "mounts", (long)i, NULL);
		r = v_mount(c, cfg->mounts[i]);
		vc_pop(c);
		if (r < 0)
			return -1;
	}
	for (size_t i = 0; i < cfg->n_devices; i++) {
		int r;
		vc_push(c, "devices", (long)i, NULL);
		r = v_device(c, cfg->devices[i]);
		vc_pop(c);
		if (r < 0)
			return -1;
	}
	if (check_labels(c, "labels", MAP(cfg, labels)) < 0 ||
	    check_annotations(c, "annotations", MAP(cfg, annotations)) < 0)
		return -1;
	/* kubelet: "<container name>/<restart count>.log". */
	if (cfg->log_path[0] != '\0' && !cri_valid_clean_rel_path(cfg->log_path))
		return vc_fail(c, "log_path", "must be empty or a clean relative path");
	SUB(c, "linux", v_container_linux, cfg->linux);
	return 0;
}

static int v_auth(struct vctx *c, const Runtime__V1__AuthConfig *a)
{
	const char *const v[] = { a->username, a->password, a->auth, a->server_address, a->identity_token,
				  a->registry_token };
	static const char *const names[] = { "username", "password", "auth", "server_address", "identity_token",
					     "registry_token" };

	for (size_t i = 0; i < ARRAY_SIZE(v); i++)
		if (strlen(v[i]) > AUTH_FIELD_MAX)
			return vc_fail(c, names[i], "longer than %u bytes", AUTH_FIELD_MAX);
	return 0;
}

/* ---- the 33 requests ---- */

#define REQ(T, m) const T *rq = (const T *)(m)

static int r_version(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__VersionRequest, m);
	if (!vc_printable(rq->version, 64, true))
		return vc_fail(c, "version", "must be 0-64 printable characters");
	return 0;
}

static int r_run_pod_sandbox(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__RunPodSandboxRequest, m);
	REQUIRE(c, "config", rq->config);
	SUB(c, "config", v_sandbox_config, rq->config);
	/* A RuntimeClass handler: the API server requires a DNS label. */
	if (rq->runtime_handler[0] != '\0' && !cri_valid_dns_label(rq->runtime_handler, 63))
		return vc_fail(c, "runtime_handler", "must be empty or a DNS label");
	return 0;
}

static int r_stop_pod_sandbox(struct vctx *c, const ProtobufCMessage *m)
{
	return check_id(c, "pod_sandbox_id", ((const Runtime__V1__StopPodSandboxRequest *)m)->pod_sandbox_id, true);
}

static int r_remove_pod_sandbox(struct vctx *c, const ProtobufCMessage *m)
{
	return check_id(c, "pod_sandbox_id", ((const Runtime__V1__RemovePodSandboxRequest *)m)->pod_sandbox_id, true);
}

static int r_pod_sandbox_status(struct vctx *c, const ProtobufCMessage *m)
{
	return check_id(c, "pod_sandbox_id", ((const Runtime__V1__PodSandboxStatusRequest *)m)->pod_sandbox_id, true);
}

static int v_sandbox_filter(struct vctx *c, const Runtime__V1__PodSandboxFilter *f)
{
	if (check_id(c, "id", f->id, false) < 0)
		return -1;
	return check_selector(c, "label_selector", MAP(f, label_selector));
}

static int r_list_pod_sandbox(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__ListPodSandboxRequest, m);
	SUB(c, "filter", v_sandbox_filter, rq->filter);
	return 0;
}

static int r_create_container(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__CreateContainerRequest, m);
	if (check_id(c, "pod_sandbox_id", rq->pod_sandbox_id, true) < 0)
		return -1;
	REQUIRE(c, "config", rq->config);
	SUB(c, "config", v_container_config, rq->config);
	/* Informational copy of the sandbox's config: kubelet and critest
	 * always send it, but the CRI does not require it. */
	SUB(c, "sandbox_config", v_sandbox_config_info, rq->sandbox_config);
	return 0;
}

static int r_start_container(struct vctx *c, const ProtobufCMessage *m)
{
	return check_id(c, "container_id", ((const Runtime__V1__StartContainerRequest *)m)->container_id, true);
}

static int r_stop_container(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__StopContainerRequest, m);
	if (check_id(c, "container_id", rq->container_id, true) < 0)
		return -1;
	return check_min(c, "timeout", rq->timeout, 0);
}

static int r_remove_container(struct vctx *c, const ProtobufCMessage *m)
{
	return check_id(c, "container_id", ((const Runtime__V1__RemoveContainerRequest *)m)->container_id, true);
}

static int v_container_filter(struct vctx *c, const Runtime__V1__ContainerFilter *f)
{
	if (check_id(c, "id", f->id, false) < 0 || check_id(c, "pod_sandbox_id", f->pod_sandbox_id, false) < 0)
		return -1;
	return check_selector(c, "label_selector", MAP(f, label_selector));
}

static int r_list_containers(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__ListContainersRequest, m);
	SUB(c, "filter", v_container_filter, rq->filter);
	return 0;
}

static int r_container_status(struct vctx *c, const ProtobufCMessage *m)
{
	return check_id(c, "container_id", ((const Runtime__V1__ContainerStatusRequest *)m)->container_id, true);
}

static int r_update_container_resources(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__UpdateContainerResourcesRequest, m);
	if (check_id(c, "container_id", rq->container_id, true) < 0)
		return -1;
	SUB(c, "linux", v_resources, rq->linux);
	return check_annotations(c, "annotations", MAP(rq, annotations));
}

static int r_reopen_container_log(struct vctx *c, const ProtobufCMessage *m)
{
	return check_id(c, "container_id", ((const Runtime__V1__ReopenContainerLogRequest *)m)->container_id, true);
}

static int r_exec_sync(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__ExecSyncRequest, m);
	if (check_id(c, "container_id", rq->container_id, true) < 0 || check_cmd(c, "cmd", rq->cmd, rq->n_cmd) < 0)
		return -1;
	return check_min(c, "timeout", rq->timeout, 0);
}

/* The CRI: one of stdin, stdout, stderr MUST be true; with tty, stderr
 * MUST be false (kubelet's streaming server refuses both the same way). */
static int check_streams(struct vctx *c, bool in, bool out, bool err, bool tty)
{
	if (!in && !out && !err)
		return vc_fail(c, "stdout", "one of stdin, stdout and stderr must be true");
	if (tty && err)
		return vc_fail(c, "stderr", "must be false when tty is true");
	return 0;
}

static int r_exec(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__ExecRequest, m);
	if (check_id(c, "container_id", rq->container_id, true) < 0 || check_cmd(c, "cmd", rq->cmd, rq->n_cmd) < 0)
		return -1;
	return check_streams(c, rq->stdin, rq->stdout, rq->stderr, rq->tty);
}

static int r_attach(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__AttachRequest, m);
	if (check_id(c, "container_id", rq->container_id, true) < 0)
		return -1;
	return check_streams(c, rq->stdin, rq->stdout, rq->stderr, rq->tty);
}

static int r_port_forward(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__PortForwardRequest, m);
	if (check_id(c, "pod_sandbox_id", rq->pod_sandbox_id, true) < 0)
		return -1;
	/* May be empty: kubelet and critest name the ports in the stream. */
	for (size_t i = 0; i < rq->n_port; i++)
		if (rq->port[i] < 1 || rq->port[i] > 65535)
			return vc_fail_at(c, "port", (long)i, NULL, "must be 1..65535");
	return 0;
}

static int r_container_stats(struct vctx *c, const ProtobufCMessage *m)
{
	return check_id(c, "container_id", ((const Runtime__V1__ContainerStatsRequest *)m)->container_id, true);
}

static int v_container_stats_filter(struct vctx *c, const Runtime__V1__ContainerStatsFilter *f)
{
	if (check_id(c, "id", f->id, false) < 0 || check_id(c, "pod_sandbox_id", f->pod_sandbox_id, false) < 0)
		return -1;
	return check_selector(c, "label_selector", MAP(f, label_selector));
}

static int r_list_container_stats(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__ListContainerStatsRequest, m);
	SUB(c, "filter", v_container_stats_filter, rq->filter);
	return 0;
}

static int r_pod_sandbox_stats(struct vctx *c, const ProtobufCMessage *m)
{
	return check_id(c, "pod_sandbox_id", ((const Runtime__V1__PodSandboxStatsRequest *)m)->pod_sandbox_id, true);
}

static int v_sandbox_stats_filter(struct vctx *c, const Runtime__V1__PodSandboxStatsFilter *f)
{
	if (check_id(c, "id", f->id, false) < 0)
		return -1;
	return check_selector(c, "label_selector", MAP(f, label_selector));
}

static int r_list_pod_sandbox_stats(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__ListPodSandboxStatsRequest, m);
	SUB(c, "filter", v_sandbox_stats_filter, rq->filter);
	return 0;
}

static int v_network_config(struct vctx *c, const Runtime__V1__NetworkConfig *n)
{
	/* kubelet joins the node's podCIDRs with ",". */
	if (!cri_valid_pod_cidr(n->pod_cidr))
		return vc_fail(c, "pod_cidr", "must be empty or comma-separated CIDRs");
	return 0;
}

static int v_runtime_config(struct vctx *c, const Runtime__V1__RuntimeConfig *rc)
{
	SUB(c, "network_config", v_network_config, rc->network_config);
	return 0;
}

static int r_update_runtime_config(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__UpdateRuntimeConfigRequest, m);
	SUB(c, "runtime_config", v_runtime_config, rq->runtime_config);
	return 0;
}

static int r_checkpoint_container(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__CheckpointContainerRequest, m);
	if (check_id(c, "container_id", rq->container_id, true) < 0)
		return -1;
	/* kubelet: <checkpoints dir>/checkpoint-<pod>-<container>-<time>.tar */
	if (rq->location[0] == '\0')
		return vc_fail(c, "location", "required");
	if (!cri_valid_abs_path(rq->location))
		return vc_fail(c, "location", "must be an absolute path without \"..\"");
	return check_min(c, "timeout", rq->timeout, 0);
}

/* Status, GetContainerEvents, ListMetricDescriptors, ListPodSandboxMetrics,
 * ImageFsInfo: nothing beyond the generic walks. */
static int r_nothing(struct vctx *c, const ProtobufCMessage *m)
{
	(void)c;
	(void)m;
	return 0;
}

static int v_image_filter(struct vctx *c, const Runtime__V1__ImageFilter *f)
{
	SUB(c, "image", v_image_spec_optional, f->image);
	return 0;
}

static int r_list_images(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__ListImagesRequest, m);
	SUB(c, "filter", v_image_filter, rq->filter);
	return 0;
}

static int r_image_status(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__ImageStatusRequest, m);
	REQUIRE(c, "image", rq->image);
	SUB(c, "image", v_image_spec_required, rq->image);
	return 0;
}

static int r_pull_image(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__PullImageRequest, m);
	REQUIRE(c, "image", rq->image);
	SUB(c, "image", v_image_spec_required, rq->image);
	SUB(c, "auth", v_auth, rq->auth);
	SUB(c, "sandbox_config", v_sandbox_config_info, rq->sandbox_config);
	return 0;
}

static int r_remove_image(struct vctx *c, const ProtobufCMessage *m)
{
	REQ(Runtime__V1__RemoveImageRequest, m);
	REQUIRE(c, "image", rq->image);
	SUB(c, "image", v_image_spec_required, rq->image);
	return 0;
}

static const struct {
	const ProtobufCMessageDescriptor *d;
	vc_request_fn fn;
} requests[CRI_NREQUESTS] = {
	{ &runtime__v1__version_request__descriptor, r_version },
	{ &runtime__v1__run_pod_sandbox_request__descriptor, r_run_pod_sandbox },
	{ &runtime__v1__stop_pod_sandbox_request__descriptor, r_stop_pod_sandbox },
	{ &runtime__v1__remove_pod_sandbox_request__descriptor, r_remove_pod_sandbox },
	{ &runtime__v1__pod_sandbox_status_request__descriptor, r_pod_sandbox_status },
	{ &runtime__v1__list_pod_sandbox_request__descriptor, r_list_pod_sandbox },
	{ &runtime__v1__create_container_request__descriptor, r_create_container },
	{ &runtime__v1__start_container_request__descriptor, r_start_container },
	{ &runtime__v1__stop_container_request__descriptor, r_stop_container },
	{ &runtime__v1__remove_container_request__descriptor, r_remove_container },
	{ &runtime__v1__list_containers_request__descriptor, r_list_containers },
	{ &runtime__v1__container_status_request__descriptor, r_container_status },
	{ &runtime__v1__update_container_resources_request__descriptor, r_update_container_resources },
	{ &runtime__v1__reopen_container_log_request__descriptor, r_reopen_container_log },
	{ &runtime__v1__exec_sync_request__descriptor, r_exec_sync },
	{ &runtime__v1__exec_request__descriptor, r_exec },
	{ &runtime__v1__attach_request__descriptor, r_attach },
	{ &runtime__v1__port_forward_request__descriptor, r_port_forward },
	{ &runtime__v1__container_stats_request__descriptor, r_container_stats },
	{ &runtime__v1__list_container_stats_request__descriptor, r_list_container_stats },
	{ &runtime__v1__pod_sandbox_stats_request__descriptor, r_pod_sandbox_stats },
	{ &runtime__v1__list_pod_sandbox_stats_request__descriptor, r_list_pod_sandbox_stats },
	{ &runtime__v1__update_runtime_config_request__descriptor, r_update_runtime_config },
	{ &runtime__v1__status_request__descriptor, r_nothing },
	{ &runtime__v1__checkpoint_container_request__descriptor, r_checkpoint_container },
	{ &runtime__v1__get_events_request__descriptor, r_nothing },
	{ &runtime__v1__list_metric_descriptors_request__descriptor, r_nothing },
	{ &runtime__v1__list_pod_sandbox_metrics_request__descriptor, r_nothing },
	{ &runtime__v1__list_images_request__descriptor, r_list_images },
	{ &runtime__v1__image_status_request__descriptor, r_image_status },
	{ &runtime__v1__pull_image_request__descriptor, r_pull_image },
	{ &runtime__v1__remove_image_request__descriptor, r_remove_image },
	{ &runtime__v1__image_fs_info_request__descriptor, r_nothing },
};

const ProtobufCMessageDescriptor *const cri_request_descriptors[CRI_NREQUESTS] = {
	&runtime__v1__version_request__descriptor,
	&runtime__v1__run_pod_sandbox_request__descriptor,
	&runtime__v1__stop_pod_sandbox_request__descriptor,
	&runtime__v1__remove_pod_sandbox_request__descriptor,
	&runtime__v1__pod_sandbox_status_request__descriptor,
	&runtime__v1__list_pod_sandbox_request__descriptor,
	&runtime__v1__create_container_request__descriptor,
	&runtime__v1__start_container_request__descriptor,
	&runtime__v1__stop_container_request__descriptor,
	&runtime__v1__remove_container_request__descriptor,
	&runtime__v1__list_containers_request__descriptor,
	&runtime__v1__container_status_request__descriptor,
	&runtime__v1__update_container_resources_request__descriptor,
	&runtime__v1__reopen_container_log_request__descriptor,
	&runtime__v1__exec_sync_request__descriptor,
	&runtime__v1__exec_request__descriptor,
	&runtime__v1__attach_request__descriptor,
	&runtime__v1__port_forward_request__descriptor,
	&runtime__v1__container_stats_request__descriptor,
	&runtime__v1__list_container_stats_request__descriptor,
	&runtime__v1__pod_sandbox_stats_request__descriptor,
	&runtime__v1__list_pod_sandbox_stats_request__descriptor,
	&runtime__v1__update_runtime_config_request__descriptor,
	&runtime__v1__status_request__descriptor,
	&runtime__v1__checkpoint_container_request__descriptor,
	&runtime__v1__get_events_request__descriptor,
	&runtime__v1__list_metric_descriptors_request__descriptor,
	&runtime__v1__list_pod_sandbox_metrics_request__descriptor,
	&runtime__v1__list_images_request__descriptor,
	&runtime__v1__image_status_request__descriptor,
	&runtime__v1__pull_image_request__descriptor,
	&runtime__v1__remove_image_request__descriptor,
	&runtime__v1__image_fs_info_request__descriptor,
};

vc_request_fn vc_request_validator(const ProtobufCMessageDescriptor *d)
{
	for (size_t i = 0; i < CRI_NREQUESTS; i++)
		if (requests[i].d == d)
			return requests[i].fn;
	return NULL;
}
