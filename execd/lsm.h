/*
 * execd/lsm: SELinux labels and AppArmor profiles for containers, as CRI-O
 * applies them.
 *
 * Two layers.  The pure one (no I/O, unit-tested on any node) allocates
 * per-pod MCS category pairs, composes SELinux contexts from the node's
 * defaults and the CRI SELinuxOption fields, validates MLS levels, picks an
 * AppArmor profile from the CRI fields, and parses the files the thin layer
 * reads.  The thin layer (struct lsm) detects the LSMs at execd start
 * (libselinux is_selinux_enabled(), libapparmor aa_is_enabled()), reads the
 * node's container contexts (selinux_lxc_contexts_path()), loads crisp's
 * default AppArmor profile "crisp-default" (contrib/apparmor/crisp-default,
 * compiled into execd) with apparmor_parser, and relabels host paths.
 *
 * The labels reach the container through struct launch_spec
 * (process_label, mount_label, apparmor_profile; launch.h): the launch
 * child writes them to /proc/thread-self/attr/exec and
 * /proc/thread-self/attr/apparmor/exec, so they take effect at execve.
 *
 * SELinux (enabled):
 *   - every pod gets an MCS level "s0:cA,cB" (A < B < 1024), unique among
 *     live pods, at RunPodSandbox, stored in its state record (reloaded at
 *     execd start); a pod SELinuxOption.level replaces it;
 *   - process label: the node's lxc_contexts "process" context (default
 *     system_u:system_r:container_t:s0) at the pod's level, then the pod's
 *     SELinuxOption fields, then the container's;
 *   - mount label: the lxc_contexts "file" context (default
 *     system_u:object_r:container_file_t:s0) with the same user and level;
 *     given as context="..." to the rootfs overlay and the tmpfs mounts;
 *   - privileged containers: type spc_t, level s0 (unless the container's
 *     own SELinuxOption sets them);
 *   - selinux_relabel host mounts are relabelled to the mount label,
 *     never a system directory (/, /etc, /usr, /home, ...).
 * SELinux (disabled): the options are validated the same way (a malformed
 * level is INVALID_ARGUMENT on every node) and otherwise ignored.  The pod
 * level is still allocated and recorded (it is cheap and keeps one path).
 *
 * AppArmor (enabled): RuntimeDefault (or nothing) -> "crisp-default";
 * Localhost -> that profile, which must be loaded (else FAILED_PRECONDITION);
 * Unconfined -> none; privileged -> none.
 * AppArmor (disabled): RuntimeDefault and Unconfined are accepted and apply
 * nothing (the runtime's default on such a node is no profile, as CRI-O);
 * Localhost is FAILED_PRECONDITION (as containerd): a named profile cannot
 * be enforced, and running without it silently would be a downgrade.
 */
#ifndef CRISP_EXECD_LSM_H
#define CRISP_EXECD_LSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define LSM_LABEL_MAX 256        /* a whole context, NUL included */
#define LSM_PROFILE_MAX 256      /* an AppArmor profile name, NUL included */
#define LSM_MCS_RANGE 1024       /* categories c0..c1023, as containerd's selinux_category_range */
#define LSM_AA_DEFAULT "crisp-default"
#define LSM_SPC_TYPE "spc_t"
#define LSM_DEFAULT_PROCESS "system_u:system_r:container_t:s0"
#define LSM_DEFAULT_FILE "system_u:object_r:container_file_t:s0"

/* ------------------------------------------------------------ MCS pairs */

struct lsm_mcs; /* the set of pairs in use, with a count per pair */

/* range: categories c0..c(range-1), 2..LSM_MCS_RANGE.  NULL without memory. */
struct lsm_mcs *lsm_mcs_new(unsigned range);
void lsm_mcs_free(struct lsm_mcs *m);

/* A random number below upper (libsodium's randombytes_uniform when NULL). */
typedef uint32_t (*lsm_rand_fn)(uint32_t upper, void *arg);

/* A pair no live pod holds, marked used, as "s0:cA,cB" (A < B) into out
 * (LSM_LABEL_MAX).  RESOURCE_EXHAUSTED when every pair is taken. */
int lsm_mcs_alloc(struct lsm_mcs *m, lsm_rand_fn rnd, void *arg, char *out, size_t outsz, crisp_err_t *err);
/* Mark a recorded level used (a pod found at start, a pod's own level).
 * Returns 1 when level is a pair "s0:cA,cB" within the range (counted: two
 * pods may name the same level), 0 when it is some other level (not
 * tracked), -1 without memory. */
int lsm_mcs_reserve(struct lsm_mcs *m, const char *level);
/* Undo one reserve/alloc of level (no-op for untracked levels). */
void lsm_mcs_release(struct lsm_mcs *m, const char *level);
/* Pairs in use; pairs that exist. */
size_t lsm_mcs_used(const struct lsm_mcs *m);
size_t lsm_mcs_capacity(const struct lsm_mcs *m);

/* ---------------------------------------------------- SELinux contexts */

/* An MLS/MCS level or range: s0, s0:c1,c2, s0:c0.c1023, s0-s0:c0.c1023.
 * "s0,c4,c5" is not one. */
bool lsm_level_valid(const char *level);
/* A user, role or type name: 1-127 of [A-Za-z0-9_.-]. */
bool lsm_name_valid(const char *name);

struct lsm_context {
	char user[128], role[128], type[128], level[LSM_LABEL_MAX];
};
/* "user:role:type:level" (the level may hold ':'); -1 when malformed. */
int lsm_context_parse(const char *s, struct lsm_context *c);
/* Back to text; -1 when it does not fit. */
int lsm_context_format(const struct lsm_context *c, char *out, size_t outsz);

/* The "process" and "file" contexts of an lxc_contexts file (lines
 * key = "value", # comments).  Fields absent from text are left as they
 * are (callers preset the defaults).  Returns how many were found. */
int lsm_lxc_contexts_parse(const char *text, char process[LSM_LABEL_MAX], char file[LSM_LABEL_MAX]);

/* A CRI SELinuxOption; NULL or "" fields are unset. */
struct lsm_selinux_opt {
	const char *user, *role, *type, *level;
};

/* Check every set field of o (names, level); INVALID_ARGUMENT naming
 * what (e.g. "container selinux_options"). */
int lsm_selinux_opt_check(const struct lsm_selinux_opt *o, const char *what, crisp_err_t *err);

/*
 * A container's labels: def_process/def_file (the node's contexts), at
 * pod_level, then pod's and ctr's options over them (user, role, type,
 * level; user and level also reach the mount label), then privileged:
 * type spc_t and level s0 where the container's options do not set them.
 * INVALID_ARGUMENT for a bad option, INTERNAL for bad defaults.
 */
int lsm_selinux_labels(const char *def_process, const char *def_file, const char *pod_level,
		       const struct lsm_selinux_opt *pod, const struct lsm_selinux_opt *ctr, bool privileged,
		       char process[LSM_LABEL_MAX], char mount[LSM_LABEL_MAX], crisp_err_t *err);

/* A host path selinux_relabel must never relabel (/, /etc, /usr, /home,
 * ..., as go-selinux's Relabel refuses them); path is absolute and clean. */
bool lsm_relabel_forbidden(const char *path);

/* ------------------------------------------------------------- AppArmor */

/* CRI SecurityProfile types (same numbers as the proto). */
enum { LSM_AA_RUNTIME_DEFAULT = 0, LSM_AA_UNCONFINED = 1, LSM_AA_LOCALHOST = 2 };

/*
 * The profile a container runs under, into out ("" = none).  type: the
 * SecurityProfile's profile_type, or -1 when the field is absent (then
 * legacy, the deprecated apparmor_profile string, decides: "", "runtime/
 * default", "unconfined", "localhost/<name>").  ref: localhost_ref, with or
 * without "localhost/".  enabled: AppArmor is on.  See the top of the file
 * for the rules.  INVALID_ARGUMENT for a bad name or string,
 * FAILED_PRECONDITION for Localhost on a node without AppArmor.
 */
int lsm_apparmor_choose(int type, const char *ref, const char *legacy, bool privileged, bool enabled, char *out,
			size_t outsz, crisp_err_t *err);
/* A profile name crisp writes to attr/exec: 1-255 printable, no space. */
bool lsm_apparmor_name_valid(const char *name);
/* Is name among the loaded profiles (the text of apparmor/profiles:
 * "name (mode)" lines)? */
bool lsm_apparmor_listed(const char *profiles_text, const char *name);

/* ------------------------------------------------- the node (thin layer) */

struct lsm {
	bool selinux;                      /* is_selinux_enabled() > 0 */
	bool apparmor;                     /* aa_is_enabled() */
	bool aa_default_loaded;            /* crisp-default loaded at start */
	char se_process[LSM_LABEL_MAX];    /* the node's container process context */
	char se_file[LSM_LABEL_MAX];       /* the node's container file context */
	char aa_fs[256];                   /* apparmor securityfs dir */
	struct lsm_mcs *mcs;
};

/* The crisp-default profile text (contrib/apparmor/crisp-default). */
const char *lsm_apparmor_default_text(void);

/* Detect, read the node's contexts, load crisp-default when AppArmor is
 * on; logs what it found once.  Fails only without memory. */
int lsm_init(struct lsm *l, crisp_err_t *err);
void lsm_close(struct lsm *l);

/* The labels of a container of a pod (pod_level: its recorded level).
 * process/mount get "" when SELinux is off (options still checked). */
int lsm_ctr_selinux(const struct lsm *l, const char *pod_level, const struct lsm_selinux_opt *pod,
		    const struct lsm_selinux_opt *ctr, bool privileged, char process[LSM_LABEL_MAX],
		    char mount[LSM_LABEL_MAX], crisp_err_t *err);
/* lsm_apparmor_choose plus, when a profile is chosen, the check that it is
 * loaded (FAILED_PRECONDITION naming it otherwise). */
int lsm_ctr_apparmor(const struct lsm *l, int type, const char *ref, const char *legacy, bool privileged,
		     char *out, size_t outsz, crisp_err_t *err);
/* Relabel a host path (recursively) to label, for selinux_relabel: a
 * no-op when SELinux is off or label is ""; FAILED_PRECONDITION for a
 * system path; skipped when the top already carries label. */
int lsm_relabel(const struct lsm *l, const char *path, const char *label, crisp_err_t *err);
/* Label the root of a tmpfs mounted without context= (the pod's shm). */
int lsm_label_path(const struct lsm *l, const char *path, const char *label, crisp_err_t *err);

#endif
