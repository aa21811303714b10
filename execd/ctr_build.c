/*
 * execd/ctr_build: a container's launch spec from its records: the packed
 * ContainerConfig (validated and admitted at create), the image record
 * imaged resolved, and the pod.  Every path from the request is used as a
 * launch mount, which launch resolves inside the rootfs (launch.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/util.h"
#include "execd/ctr_internal.h"
#include "execd/ctr_shm.h"

#define NS_POD RUNTIME__V1__NAMESPACE_MODE__POD
#define NS_NODE RUNTIME__V1__NAMESPACE_MODE__NODE
#define NS_CONTAINER RUNTIME__V1__NAMESPACE_MODE__CONTAINER
#define NS_TARGET RUNTIME__V1__NAMESPACE_MODE__TARGET

void ctr_built_init(struct ctr_built *b)
{
	memset(b, 0, sizeof *b);
	b->s.seccomp_fd = -1;
	for (int i = 0; i < LAUNCH_NS_COUNT; i++)
		b->nsfd[i] = -1;
	for (int i = 0; i < 3; i++)
		b->s.stdio[i] = -1;
}

void ctr_built_free(struct ctr_built *b)
{
	ctr_strv_free(b->argv);
	ctr_strv_free(b->env);
	for (size_t i = 0; i < b->nstrs; i++)
		free(b->strs[i]);
	for (int i = 0; i < LAUNCH_NS_COUNT; i++)
		if (b->nsfd[i] >= 0)
			close(b->nsfd[i]);
	if (b->s.seccomp_fd >= 0)
		close(b->s.seccomp_fd);
	free(b->seccomp_oci);
	ctr_built_init(b);
}

static const char *keep_str(struct ctr_built *b, const char *s)
{
	char *d;

	if (b->nstrs >= sizeof b->strs / sizeof b->strs[0] || (d = strdup(s)) == NULL)
		return NULL;
	b->strs[b->nstrs++] = d;
	return d;
}

static bool has_mount(const Runtime__V1__ContainerConfig *cfg, const char *path)
{
	for (size_t i = 0; i < cfg->n_mounts; i++)
		if (!strcmp(cfg->mounts[i]->container_path, path))
			return true;
	return false;
}

static int add_mount(struct ctr_built *b, const char *src, const char *dst, bool ro, enum launch_prop prop,
		     crisp_err_t *err)
{
	struct launch_mount *m;

	if (b->nmounts >= sizeof b->mounts / sizeof b->mounts[0])
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "too many mounts");
	m = &b->mounts[b->nmounts];
	memset(m, 0, sizeof *m);
	if ((m->source = keep_str(b, src)) == NULL || (m->target = keep_str(b, dst)) == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "mounts");
	m->readonly = ro;
	m->propagation = prop;
	m->flags = 0;
	b->nmounts++;
	return 0;
}

static int open_ns(struct ctr_built *b, enum launch_ns n, const char *path, crisp_err_t *err)
{
	b->nsfd[n] = open(path, O_RDONLY | O_CLOEXEC);
	if (b->nsfd[n] < 0)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "namespace %s", path);
	b->s.ns[n].mode = LAUNCH_NS_JOIN;
	b->s.ns[n].fd = b->nsfd[n];
	b->keep[b->nkeep++] = b->nsfd[n];
	return 0;
}

/* A running container of the pod that owns the pod's pid namespace. */
static pid_t pod_pid_holder(struct execd *x, const char *pod_id, const char *self)
{
	for (struct ctr_watch *w = x->ctrs->watches; w; w = w->next)
		if (w->pid_pod && !strcmp(w->pod_id, pod_id) && strcmp(w->id, self) != 0 &&
		    ctr_proc_start(w->pid) == w->pid_start)
			return w->pid;
	return 0;
}

int ctr_target_check(struct execd *x, const struct state_pod *pod, const char *self, const char *target,
		     char full[STATE_ID_LEN + 1], crisp_err_t *err)
{
	struct state_ctr *t = NULL;
	int rc = -1;

	if (target == NULL || target[0] == '\0')
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "pid namespace mode TARGET needs target_id");
	if (state_ctr_get(x->pods.st, target, &t, err) < 0) {
		if (err->code == CRISP_NOT_FOUND)
			crisp_error(err, CRISP_NOT_FOUND, 0, "pid namespace target %.64s: no such container", target);
		return -1;
	}
	if (self != NULL && !strcmp(t->id, self))
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "pid namespace target is the container itself");
	else if (strcmp(t->pod_id, pod->id) != 0)
		crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
			    "pid namespace target %.12s is not a container of pod %.12s", t->id, pod->id);
	else if (t->state != CTR_RUNNING)
		crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "pid namespace target %.12s is not running (%s)",
			    t->id, ctr_state_name(t->state));
	else
		rc = 0;
	if (rc == 0)
		memcpy(full, t->id, STATE_ID_LEN + 1);
	state_ctr_free(t);
	return rc;
}

/*
 * PID mode TARGET (kubectl debug --target): the pid namespace of a running
 * container of the same pod, through its process's /proc/<pid>/ns/pid.  The
 * start time is checked after the open: the fd is the namespace of the
 * recorded process, never of a reused pid.
 */
static int target_pid_ns(struct execd *x, const struct state_pod *pod, const char *self, const char *target,
			 struct ctr_built *b, crisp_err_t *err)
{
	char full[STATE_ID_LEN + 1], path[64];
	struct ctr_watch *w;

	if (ctr_target_check(x, pod, self, target, full, err) < 0)
		return -1;
	w = ctr_watch_find(x, full);
	if (w == NULL || ctr_proc_start(w->pid) != w->pid_start)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "pid namespace target %.12s is not running",
				   full);
	snprintf(path, sizeof path, "/proc/%d/ns/pid", (int)w->pid);
	if (open_ns(b, LAUNCH_NS_PID, path, err) < 0)
		return -1;
	if (ctr_proc_start(w->pid) != w->pid_start)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "pid namespace target %.12s exited", full);
	b->pid_pod = w->pid_pod;
	return 0;
}

/* Privileged: the host's device nodes (top of /dev), as CRI-O does. */
static int host_devices(struct ctr_built *b, crisp_err_t *err)
{
	DIR *d = opendir("/dev");
	struct dirent *e;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL && b->ndevices < sizeof b->devices / sizeof b->devices[0]) {
		char path[300];
		struct stat st;
		/* launch makes null, zero, full, random, urandom, tty and ptmx itself */
		static const char *const own[] = { "null", "zero", "full", "random", "urandom", "console", "ptmx", "core" };
		bool skip = e->d_name[0] == '.' || !strncmp(e->d_name, "tty", 3);
		for (size_t i = 0; i < sizeof own / sizeof own[0] && !skip; i++)
			skip = !strcmp(e->d_name, own[i]);
		if (skip)
			continue;
		snprintf(path, sizeof path, "/dev/%s", e->d_name);
		if (lstat(path, &st) < 0 || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)))
			continue;
		struct launch_device *dv = &b->devices[b->ndevices];
		if ((dv->path = keep_str(b, path)) == NULL) {
			closedir(d);
			return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "devices");
		}
		dv->type = S_ISCHR(st.st_mode) ? 'c' : 'b';
		dv->major = major(st.st_rdev);
		dv->minor = minor(st.st_rdev);
		dv->mode = st.st_mode & 07777;
		dv->uid = st.st_uid;
		dv->gid = st.st_gid;
		b->ndevices++;
	}
	closedir(d);
	return 0;
}

enum seccomp_kind { SC_NONE, SC_DEFAULT, SC_FILE };

/* Which filter a container gets (the profile's path for SC_FILE), or -1. */
static int seccomp_choice(const Runtime__V1__LinuxContainerSecurityContext *sc, const char **file, crisp_err_t *err)
{
	const Runtime__V1__SecurityProfile *p = sc ? sc->seccomp : NULL;
	const char *path = sc ? sc->seccomp_profile_path : "";

	if (sc && sc->privileged)
		return SC_NONE; /* as every runtime: privileged ignores seccomp */
	if (p != NULL) {
		if (p->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined)
			return SC_NONE;
		if (p->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost) {
			*file = p->localhost_ref;
			return SC_FILE;
		}
		return SC_DEFAULT;
	}
	if (path == NULL || path[0] == '\0' || !strcmp(path, "unconfined"))
		return SC_NONE;
	if (!strcmp(path, "runtime/default") || !strcmp(path, "docker/default"))
		return SC_DEFAULT;
	if (!strncmp(path, "localhost/", 10)) {
		*file = path + 10;
		return SC_FILE;
	}
	return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
			   "seccomp profile \"%.200s\": not runtime/default, unconfined or localhost/<path>", path);
}

static int seccomp_setup(struct ctr_built *b, const Runtime__V1__LinuxContainerSecurityContext *sc, uint64_t caps,
			 crisp_err_t *err)
{
	const char *file = NULL;

	switch (seccomp_choice(sc, &file, err)) {
	case SC_NONE:
		return 0;
	case SC_DEFAULT:
		return ctr_seccomp_default(caps, &b->s.seccomp_fd, err);
	case SC_FILE:
		return ctr_seccomp_profile_file(file, caps, &b->s.seccomp_fd, err);
	default:
		return -1;
	}
}

int ctr_build_oci_seccomp(const Runtime__V1__ContainerConfig *cfg, struct ctr_built *b, crisp_err_t *err)
{
	const char *file = NULL;
	const Runtime__V1__LinuxContainerSecurityContext *sc = cfg->linux ? cfg->linux->security_context : NULL;

	free(b->seccomp_oci);
	b->seccomp_oci = NULL;
	switch (seccomp_choice(sc, &file, err)) {
	case SC_NONE:
		return 0;
	case SC_DEFAULT:
		b->seccomp_oci = ctr_seccomp_default_oci(b->s.cap_bounding, err);
		break;
	case SC_FILE:
		b->seccomp_oci = ctr_seccomp_profile_file_oci(file, b->s.cap_bounding, err);
		break;
	default:
		return -1;
	}
	return b->seccomp_oci ? 0 : -1;
}

int ctr_lsm_labels(struct execd *x, const struct state_pod *pod, const Runtime__V1__ContainerConfig *cfg,
		   char process[LSM_LABEL_MAX], char mount[LSM_LABEL_MAX], char apparmor[LSM_PROFILE_MAX],
		   crisp_err_t *err)
{
	const struct lsm *l = &x->pods.lsm;
	const Runtime__V1__LinuxContainerSecurityContext *sc =
		cfg->linux ? cfg->linux->security_context : NULL;
	const Runtime__V1__SELinuxOption *cs = sc ? sc->selinux_options : NULL, *ps = NULL;
	const Runtime__V1__SecurityProfile *ap = sc ? sc->apparmor : NULL;
	Runtime__V1__RunPodSandboxRequest *rq = NULL;
	struct lsm_selinux_opt po = { 0 }, co = { 0 };
	bool privileged = sc && sc->privileged;
	int r;

	if (pod->config_len > 0)
		rq = runtime__v1__run_pod_sandbox_request__unpack(NULL, pod->config_len, pod->config);
	if (rq && rq->config && rq->config->linux && rq->config->linux->security_context)
		ps = rq->config->linux->security_context->selinux_options;
	if (ps)
		po = (struct lsm_selinux_opt){ ps->user, ps->role, ps->type, ps->level };
	if (cs)
		co = (struct lsm_selinux_opt){ cs->user, cs->role, cs->type, cs->level };
	r = lsm_ctr_selinux(l, pod->mcs_level, &po, &co, privileged, process, mount, err);
	if (rq)
		runtime__v1__run_pod_sandbox_request__free_unpacked(rq, NULL);
	if (r < 0)
		return -1;
	return lsm_ctr_apparmor(l, ap ? (int)ap->profile_type : -1, ap ? ap->localhost_ref : NULL,
				sc ? sc->apparmor_profile : NULL, privileged, apparmor, LSM_PROFILE_MAX, err);
}

/* The container's labels into the launch spec (NULL: none). */
static int lsm_setup(struct execd *x, const struct state_pod *pod, const Runtime__V1__ContainerConfig *cfg,
		     struct ctr_built *b, crisp_err_t *err)
{
	char proc[LSM_LABEL_MAX], mnt[LSM_LABEL_MAX], aa[LSM_PROFILE_MAX];

	if (ctr_lsm_labels(x, pod, cfg, proc, mnt, aa, err) < 0)
		return -1;
	if ((proc[0] && (b->s.process_label = keep_str(b, proc)) == NULL) ||
	    (mnt[0] && (b->s.mount_label = keep_str(b, mnt)) == NULL) ||
	    (aa[0] && (b->s.apparmor_profile = keep_str(b, aa)) == NULL))
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
	return 0;
}

/* The launch joins every hierarchy's cgroup of container id. */
/* The container's cgroups for launch.  existing_only (exec into a running
 * container): only the hierarchies the container has, so a container
 * started by an older execd that made fewer of them can still be exec'd. */
static int spec_cgroups(struct execd *x, const char *id, bool existing_only, struct ctr_built *b, crisp_err_t *err)
{
	const char *dirs[CTR_CG_MAX];
	int n = 0;

	if (ctr_cgroups(x, id, &b->cg, err) < 0)
		return -1;
	for (int i = 0; i < b->cg.n && n < CTR_CG_MAX; i++)
		if (!existing_only || access(b->cg.dir[i], F_OK) == 0)
			dirs[n++] = b->cg.dir[i];
	if (n > 0) {
		b->s.cgroup_procs = dirs[0];
		for (int i = 1; i < n; i++)
			b->cg_extra[i - 1] = dirs[i];
		b->cg_extra[n - 1] = NULL;
		b->s.cgroup_procs_extra = b->cg_extra;
	}
	return 0;
}

int ctr_build(struct execd *x, const struct state_ctr *c, const struct state_pod *pod,
	      const Runtime__V1__ContainerConfig *cfg, const Cipc__ImageResolved *img, const char *rootfs,
	      pid_t exec_target, char *const *cmd, size_t ncmd, struct ctr_built *b, crisp_err_t *err)
{
	const Runtime__V1__LinuxContainerSecurityContext *sc =
		cfg->linux ? cfg->linux->security_context : NULL;
	const Runtime__V1__LinuxContainerResources *res = cfg->linux ? cfg->linux->resources : NULL;
	const Runtime__V1__NamespaceOption *nso = sc ? sc->namespace_options : NULL;
	bool privileged = sc && sc->privileged;
	char path[PATH_MAX];
	uint64_t caps;
	int rootfd;

	ctr_built_init(b);
	/* argv and env */
	if (exec_target > 0) {
		if (ctr_argv(cmd, ncmd, NULL, 0, NULL, &b->argv, err) < 0)
			goto fail;
	} else if (ctr_argv(cfg->command, cfg->n_command, cfg->args, cfg->n_args, img, &b->argv, err) < 0) {
		goto fail;
	}
	if (ctr_env(img, cfg->envs, cfg->n_envs, pod->hostname && pod->hostname[0] ? pod->hostname : pod->name,
		    &b->env, err) < 0)
		goto fail;

	/* user, read inside the container's root */
	if (sc && sc->run_as_group && !sc->run_as_user && !(sc->run_as_username && sc->run_as_username[0])) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "run_as_group needs run_as_user or run_as_username");
		goto fail;
	}
	if (exec_target > 0)
		snprintf(path, sizeof path, "/proc/%d/root", (int)exec_target);
	else
		crisp_strlcpy(path, rootfs, sizeof path);
	if ((rootfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "container root %s", path);
		goto fail;
	}
	int64_t rau = sc && sc->run_as_user ? sc->run_as_user->value : 0;
	int64_t rag = sc && sc->run_as_group ? sc->run_as_group->value : 0;
	int r = ctr_user_resolve(rootfd, img ? img->user : "", sc ? sc->run_as_username : NULL,
				 sc && sc->run_as_user ? &rau : NULL, sc && sc->run_as_group ? &rag : NULL,
				 sc ? sc->supplemental_groups : NULL, sc ? sc->n_supplemental_groups : 0, &b->user, err);
	close(rootfd);
	if (r < 0)
		goto fail;
	b->s.uid = b->user.uid;
	b->s.gid = b->user.gid;
	b->s.groups = b->user.groups;
	b->s.ngroups = b->user.ngroups;
	/* HOME from passwd unless set */
	bool have_home = false;
	for (size_t i = 0; b->env[i]; i++)
		have_home |= !strncmp(b->env[i], "HOME=", 5);
	if (!have_home) {
		size_t n = 0;
		while (b->env[n])
			n++;
		char **ne = realloc(b->env, (n + 2) * sizeof *ne);
		if (ne == NULL)
			goto oom;
		b->env = ne;
		size_t hl = strlen(b->user.home) + 6;
		if ((ne[n] = malloc(hl)) == NULL)
			goto oom;
		snprintf(ne[n], hl, "HOME=%s", b->user.home[0] ? b->user.home : "/");
		ne[n + 1] = NULL;
	}
	b->s.argv = b->argv;
	b->s.envp = b->env;
	crisp_strlcpy(b->cwd, cfg->working_dir[0] ? cfg->working_dir : img && img->working_dir[0] ? img->working_dir : "/",
		      sizeof b->cwd);
	if (b->cwd[0] != '/') {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "working_dir %.200s is not absolute", b->cwd);
		goto fail;
	}
	b->s.cwd = b->cwd;

	/* capabilities, NNP, seccomp */
	if (ctr_caps(sc && sc->capabilities ? sc->capabilities->add_capabilities : NULL,
		     sc && sc->capabilities ? sc->capabilities->n_add_capabilities : 0,
		     sc && sc->capabilities ? sc->capabilities->drop_capabilities : NULL,
		     sc && sc->capabilities ? sc->capabilities->n_drop_capabilities : 0, privileged, &caps, err) < 0)
		goto fail;
	b->s.cap_effective = b->s.cap_permitted = b->s.cap_bounding = caps;
	b->s.cap_inheritable = 0;
	b->s.no_new_privs = sc && sc->no_new_privs;
	if (seccomp_setup(b, sc, caps, err) < 0)
		goto fail;
	if (b->s.seccomp_fd >= 0)
		b->keep[b->nkeep++] = b->s.seccomp_fd;
	/* SELinux labels and AppArmor profile (exec'd processes get the
	 * container's too) */
	if (lsm_setup(x, pod, cfg, b, err) < 0)
		goto fail;
	b->s.timeout_ms = 10000;
	if (exec_target > 0) { /* it joins the container's cgroups, as runc exec does */
		if (spec_cgroups(x, c->id, true, b, err) < 0)
			goto fail;
		return 0;
	}

	/* rootfs, mounts, paths */
	b->s.rootfs = rootfs;
	b->s.readonly_rootfs = sc && sc->readonly_rootfs;
	b->s.ns[LAUNCH_NS_MNT].mode = LAUNCH_NS_NEW;
	b->s.ns[LAUNCH_NS_CGROUP].mode = LAUNCH_NS_NEW;
	bool host_net = pod->flags & STATE_POD_HOST_NET, host_ipc = pod->flags & STATE_POD_HOST_IPC;
	if (!host_net) {
		if (snprintf(path, sizeof path, "%s/%s/ns/uts", x->pods.pods_dir, pod->id) >= (int)sizeof path ||
		    open_ns(b, LAUNCH_NS_UTS, path, err) < 0)
			goto fail;
		if (pod->netns_path && pod->netns_path[0] && open_ns(b, LAUNCH_NS_NET, pod->netns_path, err) < 0)
			goto fail;
	}
	if (!host_ipc) {
		if (snprintf(path, sizeof path, "%s/%s/ns/ipc", x->pods.pods_dir, pod->id) >= (int)sizeof path ||
		    open_ns(b, LAUNCH_NS_IPC, path, err) < 0)
			goto fail;
	}
	int pidmode = nso ? nso->pid : NS_CONTAINER;
	if (pod->flags & STATE_POD_HOST_PID)
		pidmode = NS_NODE;
	if (pidmode == NS_NODE) {
		b->s.ns[LAUNCH_NS_PID].mode = LAUNCH_NS_HOST;
	} else if (pidmode == NS_POD) {
		pid_t holder = pod->infra_pid > 0 && ctr_proc_start(pod->infra_pid) == pod->infra_start
				       ? pod->infra_pid
				       : pod_pid_holder(x, pod->id, c->id);
		b->pid_pod = true;
		if (holder > 0) {
			snprintf(path, sizeof path, "/proc/%d/ns/pid", (int)holder);
			if (open_ns(b, LAUNCH_NS_PID, path, err) < 0)
				goto fail;
		} else {
			b->s.ns[LAUNCH_NS_PID].mode = LAUNCH_NS_NEW;
		}
	} else if (pidmode == NS_CONTAINER) {
		b->s.ns[LAUNCH_NS_PID].mode = LAUNCH_NS_NEW;
	} else if (pidmode == NS_TARGET) {
		if (target_pid_ns(x, pod, c->id, nso->target_id, b, err) < 0)
			goto fail;
	} else {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "pid namespace mode %d is not supported", pidmode);
		goto fail;
	}
	b->s.host_sys = host_net;
	b->s.sys_rw = privileged;

	static const char *const podfiles[][2] = { { "hosts", "/etc/hosts" },
						   { "resolv.conf", "/etc/resolv.conf" },
						   { "hostname", "/etc/hostname" } };
	for (size_t i = 0; i < sizeof podfiles / sizeof podfiles[0]; i++) {
		if (has_mount(cfg, podfiles[i][1]))
			continue;
		if (snprintf(path, sizeof path, "%s/%s/%s", x->pods.pods_dir, pod->id, podfiles[i][0]) >=
			    (int)sizeof path ||
		    access(path, F_OK) < 0)
			continue;
		if (add_mount(b, path, podfiles[i][1], b->s.readonly_rootfs, LAUNCH_PROP_PRIVATE, err) < 0)
			goto fail;
	}
	/* /dev/shm: the pod's (or, with host IPC, the node's), unless the
	 * request mounts something there itself */
	if (!has_mount(cfg, "/dev/shm")) {
		if (host_ipc) {
			crisp_strlcpy(path, "/dev/shm", sizeof path);
		} else {
			if (ctr_shm_path(x->pods.pods_dir, pod->id, path, sizeof path) < 0) {
				crisp_error(err, CRISP_INTERNAL, 0, "pod shm path too long");
				goto fail;
			}
			if (!ctr_shm_mounted(x->pods.pods_dir, pod->id)) {
				/* gone with a node reboot, or a pod older than it: remake it
				 * for a ready pod; a stopped pod has none any more */
				if (pod->state != POD_READY) {
					crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
						    "pod %.12s is not ready: its /dev/shm is gone", pod->id);
					goto fail;
				}
				if (ctr_shm_mount(x->pods.pods_dir, pod->id, err) < 0 ||
				    pods_shm_label(&x->pods, pod, err) < 0)
					goto fail;
			}
		}
		if (add_mount(b, path, "/dev/shm", false, LAUNCH_PROP_PRIVATE, err) < 0)
			goto fail;
		b->mounts[b->nmounts - 1].flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	}
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		const Runtime__V1__Mount *m = cfg->mounts[i];
		char real[PATH_MAX];
		enum launch_prop prop = m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL
						? LAUNCH_PROP_RSHARED
					: m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER
						? LAUNCH_PROP_RSLAVE
						: LAUNCH_PROP_PRIVATE;
		if (realpath(m->host_path, real) == NULL) {
			crisp_error(err, CRISP_NOT_FOUND, errno, "mount source %.200s", m->host_path);
			goto fail;
		}
		/* selinux_relabel: the container's mount label, as CRI-O */
		if (m->selinux_relabel && lsm_relabel(&x->pods.lsm, real, b->s.mount_label, err) < 0)
			goto fail;
		if (add_mount(b, real, m->container_path, m->readonly, prop, err) < 0)
			goto fail;
	}
	b->s.mounts = b->mounts;
	b->s.nmounts = b->nmounts;

	for (size_t i = 0; i < cfg->n_devices; i++) {
		const Runtime__V1__Device *d = cfg->devices[i];
		struct stat st;
		if (b->ndevices >= sizeof b->devices / sizeof b->devices[0]) {
			crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "too many devices");
			goto fail;
		}
		if (stat(d->host_path, &st) < 0 || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
			crisp_error(err, CRISP_INVALID_ARGUMENT, errno, "device %.200s is not a device node", d->host_path);
			goto fail;
		}
		struct launch_device *dv = &b->devices[b->ndevices];
		if ((dv->path = keep_str(b, d->container_path)) == NULL)
			goto oom;
		dv->type = S_ISCHR(st.st_mode) ? 'c' : 'b';
		dv->major = major(st.st_rdev);
		dv->minor = minor(st.st_rdev);
		dv->mode = st.st_mode & 0777;
		b->ndevices++;
	}
	if (privileged && host_devices(b, err) < 0)
		goto fail;
	b->s.devices = b->devices;
	b->s.ndevices = b->ndevices;

	if (!privileged) {
		size_t n = 0;
		if (sc && sc->n_masked_paths) {
			for (size_t i = 0; i < sc->n_masked_paths && n + 1 < sizeof b->masked / sizeof b->masked[0]; i++)
				b->masked[n++] = sc->masked_paths[i];
		} else {
			for (size_t i = 0; ctr_default_masked[i]; i++)
				b->masked[n++] = ctr_default_masked[i];
		}
		b->masked[n] = NULL;
		n = 0;
		if (sc && sc->n_readonly_paths) {
			for (size_t i = 0; i < sc->n_readonly_paths && n + 1 < sizeof b->readonly / sizeof b->readonly[0];
			     i++)
				b->readonly[n++] = sc->readonly_paths[i];
		} else {
			for (size_t i = 0; ctr_default_readonly[i]; i++)
				b->readonly[n++] = ctr_default_readonly[i];
		}
		b->readonly[n] = NULL;
		b->s.masked_paths = b->masked;
		b->s.readonly_paths = b->readonly;
	}

	/* resources: cgroups made at create; oom_score_adj */
	if (spec_cgroups(x, c->id, false, b, err) < 0)
		goto fail;
	if (res) {
		b->s.set_oom_score_adj = true;
		b->s.oom_score_adj = (int)(res->oom_score_adj < -1000 ? -1000
					   : res->oom_score_adj > 1000 ? 1000
								       : res->oom_score_adj);
	}
	return 0;
oom:
	crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
fail:
	ctr_built_free(b);
	return -1;
}
