/*
 * execd/ctr_seccomp: Localhost seccomp profiles (the OCI / Docker JSON
 * format kubelet points at) compiled with libseccomp into a sealed BPF
 * memfd for launch.
 *
 * Accepted: defaultAction, defaultErrnoRet, architectures, archMap (names
 * checked, the native architecture is always in), syscalls[] with names
 * (or name), action, errnoRet, args[] {index, value, valueTwo, op}, and
 * includes/excludes by capability (Docker's profile); comment, minKernel
 * and flags are ignored.  Unknown keys, SCMP_ACT_NOTIFY / listenerPath and
 * SCMP_ACT_TRACE are refused: a profile that cannot be applied as written
 * is INVALID_ARGUMENT, never a weaker filter.  Syscall names this
 * architecture does not know are skipped (as runc and crun do).
 */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "execd/ctr.h"

#define PROFILE_MAX (1u << 20)

static int bad(crisp_err_t *err, const char *what)
{
	return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "seccomp profile: %s", what);
}

static int parse_action(json_t *v, json_t *errno_ret, uint32_t *out, crisp_err_t *err)
{
	const char *s = json_string_value(v);
	int e = EPERM;

	if (s == NULL)
		return bad(err, "an action is not a string");
	if (errno_ret != NULL) {
		if (!json_is_integer(errno_ret) || json_integer_value(errno_ret) < 0 || json_integer_value(errno_ret) > 4095)
			return bad(err, "errnoRet is not an errno");
		e = (int)json_integer_value(errno_ret);
	}
	if (!strcmp(s, "SCMP_ACT_ALLOW"))
		*out = SCMP_ACT_ALLOW;
	else if (!strcmp(s, "SCMP_ACT_ERRNO"))
		*out = SCMP_ACT_ERRNO((uint32_t)e);
	else if (!strcmp(s, "SCMP_ACT_KILL") || !strcmp(s, "SCMP_ACT_KILL_THREAD"))
		*out = SCMP_ACT_KILL;
	else if (!strcmp(s, "SCMP_ACT_KILL_PROCESS"))
		*out = SCMP_ACT_KILL_PROCESS;
	else if (!strcmp(s, "SCMP_ACT_TRAP"))
		*out = SCMP_ACT_TRAP;
	else if (!strcmp(s, "SCMP_ACT_LOG"))
		*out = SCMP_ACT_LOG;
	else
		return bad(err, "unsupported action (ALLOW, ERRNO, KILL, KILL_PROCESS, KILL_THREAD, TRAP, LOG)");
	return 0;
}

static uint32_t parse_arch(const char *s)
{
	static const struct {
		const char *n;
		uint32_t a;
	} t[] = { { "SCMP_ARCH_X86_64", SCMP_ARCH_X86_64 }, { "SCMP_ARCH_X86", SCMP_ARCH_X86 },
		  { "SCMP_ARCH_X32", SCMP_ARCH_X32 },       { "SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64 },
		  { "SCMP_ARCH_ARM", SCMP_ARCH_ARM } };
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(s, t[i].n))
			return t[i].a;
	return 0;
}

static int parse_op(const char *s, enum scmp_compare *op)
{
	static const struct {
		const char *n;
		enum scmp_compare o;
	} t[] = { { "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT }, { "SCMP_CMP_LE", SCMP_CMP_LE },
		  { "SCMP_CMP_EQ", SCMP_CMP_EQ }, { "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
		  { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ } };
	for (size_t i = 0; s && i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(s, t[i].n)) {
			*op = t[i].o;
			return 0;
		}
	return -1;
}

static bool only_keys(json_t *o, const char *const *keys)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		bool ok = false;
		for (size_t i = 0; keys[i] && !ok; i++)
			ok = !strcmp(k, keys[i]);
		if (!ok)
			return false;
	}
	return true;
}

/* includes/excludes: {"caps": [...], "arches": [...], "minKernel": ...} */
static int cond_caps(json_t *c, uint64_t caps, bool want_all, bool *match, crisp_err_t *err)
{
	static const char *const keys[] = { "caps", "arches", "minKernel", NULL };
	json_t *l, *v;
	size_t i;

	*match = want_all;
	if (c == NULL)
		return 0;
	if (!json_is_object(c) || !only_keys(c, keys))
		return bad(err, "includes/excludes: unknown key");
	l = json_object_get(c, "caps");
	if (l == NULL || json_array_size(l) == 0) {
		*match = want_all;
		return 0;
	}
	if (!json_is_array(l))
		return bad(err, "caps is not a list");
	bool all = true, any = false;
	json_array_foreach(l, i, v) {
		int n = json_is_string(v) ? ctr_cap_from_name(json_string_value(v)) : -1;
		if (n < 0)
			return bad(err, "unknown capability in includes/excludes");
		bool has = caps & (1ULL << n);
		all &= has;
		any |= has;
	}
	*match = want_all ? all : any;
	return 0;
}

static int add_rule(scmp_filter_ctx ctx, json_t *r, uint32_t defact, uint64_t caps, crisp_err_t *err)
{
	static const char *const keys[] = { "names", "name", "action", "errnoRet", "args", "comment", "includes",
					    "excludes", NULL };
	uint32_t act;
	struct scmp_arg_cmp cmp[6];
	unsigned ncmp = 0;
	json_t *names, *args, *v;
	size_t i;
	bool inc, exc;

	if (!json_is_object(r) || !only_keys(r, keys))
		return bad(err, "a syscalls entry has an unknown key");
	if (cond_caps(json_object_get(r, "includes"), caps, true, &inc, err) < 0 ||
	    cond_caps(json_object_get(r, "excludes"), caps, false, &exc, err) < 0)
		return -1;
	if (json_object_get(r, "excludes") && json_array_size(json_object_get(json_object_get(r, "excludes"), "caps")) == 0)
		exc = false;
	if (parse_action(json_object_get(r, "action"), json_object_get(r, "errnoRet"), &act, err) < 0)
		return -1;
	args = json_object_get(r, "args");
	if (args != NULL && !json_is_null(args)) {
		static const char *const akeys[] = { "index", "value", "valueTwo", "op", NULL };
		if (!json_is_array(args) || json_array_size(args) > 6)
			return bad(err, "args is not a list of at most 6");
		json_array_foreach(args, i, v) {
			enum scmp_compare op;
			json_t *ix = json_object_get(v, "index"), *val = json_object_get(v, "value"),
			       *v2 = json_object_get(v, "valueTwo");
			if (!json_is_object(v) || !only_keys(v, akeys) || !json_is_integer(ix) ||
			    json_integer_value(ix) < 0 || json_integer_value(ix) > 5 || !json_is_integer(val) ||
			    (v2 && !json_is_integer(v2)) || parse_op(json_string_value(json_object_get(v, "op")), &op) < 0)
				return bad(err, "an args entry is malformed");
			cmp[ncmp++] = (struct scmp_arg_cmp){ .arg = (unsigned)json_integer_value(ix),
							     .op = op,
							     .datum_a = (scmp_datum_t)json_integer_value(val),
							     .datum_b = v2 ? (scmp_datum_t)json_integer_value(v2) : 0 };
		}
	}
	if (!inc || exc || act == defact)
		return 0; /* not for this container, or the default already */
	names = json_object_get(r, "names");
	json_t *one = json_object_get(r, "name");
	json_t *tmp = NULL;
	if (names == NULL && json_is_string(one))
		names = tmp = json_pack("[O]", one);
	if (!json_is_array(names)) {
		json_decref(tmp);
		return bad(err, "a syscalls entry has no names");
	}
	int rc = 0;
	json_array_foreach(names, i, v) {
		if (!json_is_string(v)) {
			rc = bad(err, "a syscall name is not a string");
			break;
		}
		int nr = seccomp_syscall_resolve_name(json_string_value(v));
		if (nr == __NR_SCMP_ERROR)
			continue;
		int r2 = seccomp_rule_add_array(ctx, act, nr, ncmp, cmp);
		if (r2 < 0 && r2 != -EEXIST) {
			rc = crisp_error(err, CRISP_INVALID_ARGUMENT, -r2, "seccomp profile: rule for %.64s",
					 json_string_value(v));
			break;
		}
	}
	json_decref(tmp);
	return rc;
}

int ctr_seccomp_profile(const char *buf, size_t len, uint64_t caps, int *fd, crisp_err_t *err)
{
	static const char *const keys[] = { "defaultAction", "defaultErrnoRet", "architectures", "archMap", "syscalls",
					    "flags", "comment", NULL };
	json_error_t je;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je), *v;
	scmp_filter_ctx ctx = NULL;
	uint32_t defact;
	size_t i;
	int rc = -1;

	if (root == NULL)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "seccomp profile: not JSON (line %d column %d)",
				   je.line, je.column);
	if (!json_is_object(root) || !only_keys(root, keys)) {
		bad(err, "unknown top-level key (listenerPath and notify actions are not supported)");
		goto out;
	}
	if (parse_action(json_object_get(root, "defaultAction"), json_object_get(root, "defaultErrnoRet"), &defact,
			 err) < 0)
		goto out;
	if ((ctx = seccomp_init(defact)) == NULL) {
		crisp_error(err, CRISP_INTERNAL, ENOMEM, "seccomp_init");
		goto out;
	}
	v = json_object_get(root, "architectures");
	if (v != NULL && !json_is_null(v)) {
		json_t *a;
		if (!json_is_array(v)) {
			bad(err, "architectures is not a list");
			goto out;
		}
		json_array_foreach(v, i, a) {
			uint32_t arch = json_is_string(a) ? parse_arch(json_string_value(a)) : 0;
			if (arch == 0) {
				bad(err, "unknown architecture");
				goto out;
			}
			int r = seccomp_arch_add(ctx, arch);
			if (r < 0 && r != -EEXIST) {
				crisp_error(err, CRISP_INVALID_ARGUMENT, -r, "seccomp profile: architecture");
				goto out;
			}
		}
	}
	v = json_object_get(root, "archMap");
	if (v != NULL && !json_is_null(v) && !json_is_array(v)) {
		bad(err, "archMap is not a list");
		goto out;
	}
	v = json_object_get(root, "syscalls");
	if (v != NULL && !json_is_null(v)) {
		json_t *r;
		if (!json_is_array(v)) {
			bad(err, "syscalls is not a list");
			goto out;
		}
		json_array_foreach(v, i, r)
			if (add_rule(ctx, r, defact, caps, err) < 0)
				goto out;
	}
	rc = launch_seccomp_export(ctx, fd, err);
out:
	if (ctx)
		seccomp_release(ctx);
	json_decref(root);
	return rc;
}

/* A profile file, bounded: malloc'd bytes and their length. */
static char *read_profile(const char *path, size_t *len, crisp_err_t *err)
{
	struct stat st;
	char *buf;
	int f;

	if (path[0] != '/' || strstr(path, "/../"))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "seccomp profile %.200s: not an absolute path", path),
		       NULL;
	f = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (f < 0)
		return crisp_error(err, errno == ENOENT ? CRISP_NOT_FOUND : CRISP_INVALID_ARGUMENT, errno,
				   "seccomp profile %.200s", path),
		       NULL;
	if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || (size_t)st.st_size > PROFILE_MAX) {
		close(f);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "seccomp profile %.200s: not a regular file under 1 MiB", path),
		       NULL;
	}
	if ((buf = malloc((size_t)st.st_size)) == NULL) {
		close(f);
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd"), NULL;
	}
	ssize_t n = read(f, buf, (size_t)st.st_size);
	close(f);
	if (n != st.st_size) {
		free(buf);
		return crisp_error(err, CRISP_INVALID_ARGUMENT, errno, "seccomp profile %.200s: read", path), NULL;
	}
	*len = (size_t)n;
	return buf;
}

int ctr_seccomp_profile_file(const char *path, uint64_t caps, int *fd, crisp_err_t *err)
{
	size_t len;
	char *buf = read_profile(path, &len, err);

	if (buf == NULL)
		return -1;
	int rc = ctr_seccomp_profile(buf, len, caps, fd, err);
	free(buf);
	if (rc < 0)
		crisp_error_wrap(err, "%.200s", path);
	return rc;
}

char *ctr_seccomp_profile_file_oci(const char *path, uint64_t caps, crisp_err_t *err)
{
	size_t len;
	int fd = -1;
	char *buf = read_profile(path, &len, err), *text = NULL;

	if (buf == NULL)
		return NULL;
	/* what crisp's launcher would refuse, the runtime never gets */
	if (ctr_seccomp_profile(buf, len, caps, &fd, err) == 0) {
		close(fd);
		text = ctr_seccomp_profile_oci(buf, len, caps, err);
	}
	free(buf);
	if (text == NULL)
		crisp_error_wrap(err, "%.200s", path);
	return text;
}

/* One syscalls entry of an accepted profile, for a container holding caps:
 * NULL when it does not apply (includes/excludes), else the entry with
 * only the runtime spec's keys. */
static json_t *oci_rule(json_t *r, uint64_t caps, bool *skip, crisp_err_t *err)
{
	bool inc, exc;
	json_t *o, *names = json_object_get(r, "names"), *v;

	*skip = false;
	if (cond_caps(json_object_get(r, "includes"), caps, true, &inc, err) < 0 ||
	    cond_caps(json_object_get(r, "excludes"), caps, false, &exc, err) < 0)
		return NULL;
	if (json_object_get(r, "excludes") && json_array_size(json_object_get(json_object_get(r, "excludes"), "caps")) == 0)
		exc = false;
	if (!inc || exc) {
		*skip = true;
		return NULL;
	}
	if ((o = json_object()) == NULL)
		goto oom;
	if (names == NULL && json_is_string(json_object_get(r, "name")))
		v = json_pack("[O]", json_object_get(r, "name"));
	else
		v = json_deep_copy(names);
	if (v == NULL || json_object_set_new(o, "names", v) < 0)
		goto oom_o;
	static const char *const keep[] = { "action", "errnoRet", "args", NULL };
	for (size_t i = 0; keep[i]; i++) {
		json_t *x = json_object_get(r, keep[i]);
		if (x != NULL && !json_is_null(x) && json_object_set_new(o, keep[i], json_deep_copy(x)) < 0)
			goto oom_o;
	}
	return o;
oom_o:
	json_decref(o);
oom:
	crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "seccomp profile");
	return NULL;
}

char *ctr_seccomp_profile_oci(const char *buf, size_t len, uint64_t caps, crisp_err_t *err)
{
	json_t *in = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL), *out = NULL, *rules, *r;
	char *text = NULL;
	size_t i;

	if (in == NULL || !json_is_object(in)) {
		json_decref(in);
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "seccomp profile: not a JSON object");
		return NULL;
	}
	if ((out = json_object()) == NULL || (rules = json_array()) == NULL ||
	    json_object_set_new(out, "syscalls", rules) < 0)
		goto oom;
	static const char *const keep[] = { "defaultAction", "defaultErrnoRet", "architectures", NULL };
	for (i = 0; keep[i]; i++) {
		json_t *x = json_object_get(in, keep[i]);
		if (x != NULL && !json_is_null(x) && json_object_set_new(out, keep[i], json_deep_copy(x)) < 0)
			goto oom;
	}
	json_array_foreach(json_object_get(in, "syscalls"), i, r) {
		bool skip;
		json_t *o = oci_rule(r, caps, &skip, err);
		if (o == NULL && !skip)
			goto fail;
		if (o != NULL && json_array_append_new(rules, o) < 0)
			goto oom;
	}
	if ((text = json_dumps(out, JSON_COMPACT)) == NULL)
		goto oom;
	goto out;
oom:
	crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "seccomp profile");
fail:
out:
	json_decref(out);
	json_decref(in);
	return text;
}
