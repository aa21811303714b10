/*
 * execd/lsm: SELinux labels and AppArmor profiles.  See lsm.h.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/apparmor.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <selinux/selinux.h>
#include <sodium.h>

#include "common/log.h"
#include "common/util.h"
#include "execd/lsm.h"

/* The default AppArmor profile, shipped as contrib/apparmor/crisp-default
 * and compiled in (the build runs from the top of the tree), so execd
 * never depends on an installed copy. */
__asm__(".pushsection .rodata\n"
	".globl crisp_lsm_aa_default\n"
	".hidden crisp_lsm_aa_default\n"
	".type crisp_lsm_aa_default, @object\n"
	"crisp_lsm_aa_default:\n"
	".incbin \"contrib/apparmor/crisp-default\"\n"
	".byte 0\n"
	".popsection\n");
extern const char crisp_lsm_aa_default[];

const char *lsm_apparmor_default_text(void)
{
	return crisp_lsm_aa_default;
}

/* ------------------------------------------------------------ MCS pairs */

struct mcs_ent {
	uint16_t a, b; /* a < b */
	uint32_t refs;
};

struct lsm_mcs {
	unsigned range;
	size_t n, cap;
	struct mcs_ent *v;
};

struct lsm_mcs *lsm_mcs_new(unsigned range)
{
	struct lsm_mcs *m;

	if (range < 2 || range > LSM_MCS_RANGE)
		return NULL;
	if ((m = calloc(1, sizeof *m)) == NULL)
		return NULL;
	m->range = range;
	return m;
}

void lsm_mcs_free(struct lsm_mcs *m)
{
	if (m == NULL)
		return;
	free(m->v);
	free(m);
}

size_t lsm_mcs_used(const struct lsm_mcs *m)
{
	return m->n;
}

size_t lsm_mcs_capacity(const struct lsm_mcs *m)
{
	return (size_t)m->range * (m->range - 1) / 2;
}

static struct mcs_ent *mcs_find(const struct lsm_mcs *m, unsigned a, unsigned b)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].a == a && m->v[i].b == b)
			return &m->v[i];
	return NULL;
}

static int mcs_add(struct lsm_mcs *m, unsigned a, unsigned b)
{
	struct mcs_ent *e = mcs_find(m, a, b);

	if (e != NULL) {
		e->refs++;
		return 0;
	}
	if (m->n == m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 64;
		struct mcs_ent *nv = realloc(m->v, nc * sizeof *nv);
		if (nv == NULL)
			return -1;
		m->v = nv;
		m->cap = nc;
	}
	m->v[m->n++] = (struct mcs_ent){ (uint16_t)a, (uint16_t)b, 1 };
	return 0;
}

/* "s0:cA,cB" with A < B < range; 1 and the pair, or 0. */
static int mcs_parse(const struct lsm_mcs *m, const char *level, unsigned *a, unsigned *b)
{
	unsigned x, y;
	int end = 0;

	if (level == NULL || strncmp(level, "s0:c", 4) != 0 || !isdigit((unsigned char)level[4]))
		return 0;
	if (sscanf(level, "s0:c%4u,c%4u%n", &x, &y, &end) != 2 || level[end] != '\0')
		return 0;
	/* no leading zeros or signs: one spelling per pair */
	char canon[32];
	snprintf(canon, sizeof canon, "s0:c%u,c%u", x, y);
	if (strcmp(canon, level) != 0 || x >= y || y >= m->range)
		return 0;
	*a = x;
	*b = y;
	return 1;
}

static uint32_t sodium_rand(uint32_t upper, void *arg)
{
	(void)arg;
	return randombytes_uniform(upper);
}

int lsm_mcs_alloc(struct lsm_mcs *m, lsm_rand_fn rnd, void *arg, char *out, size_t outsz, crisp_err_t *err)
{
	unsigned a = 0, b = 0;
	bool found = false;

	if (rnd == NULL)
		rnd = sodium_rand;
	if (m->n >= lsm_mcs_capacity(m))
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0,
				   "every SELinux MCS category pair (%zu) is held by a pod", lsm_mcs_capacity(m));
	/* Random pairs, as go-selinux; the live pods are few against the
	 * 523776 pairs, so this nearly always ends at the first try. */
	for (int tries = 0; tries < 64 && !found; tries++) {
		unsigned x = rnd(m->range, arg) % m->range, y = rnd(m->range, arg) % m->range;
		if (x == y)
			continue;
		a = x < y ? x : y;
		b = x < y ? y : x;
		found = mcs_find(m, a, b) == NULL;
	}
	/* A crowded range: the first free pair from a random start. */
	for (unsigned s = rnd(m->range, arg) % m->range, i = 0; i < m->range && !found; i++) {
		a = (s + i) % m->range;
		for (b = a + 1; b < m->range && !found; b++)
			found = mcs_find(m, a, b) == NULL;
		if (found)
			b--;
	}
	if (!found) /* cannot happen: n < capacity */
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, 0, "no free SELinux MCS category pair");
	if ((size_t)snprintf(out, outsz, "s0:c%u,c%u", a, b) >= outsz)
		return crisp_error(err, CRISP_INTERNAL, 0, "MCS level buffer");
	if (mcs_add(m, a, b) < 0)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
	return 0;
}

int lsm_mcs_reserve(struct lsm_mcs *m, const char *level)
{
	unsigned a, b;

	if (!mcs_parse(m, level, &a, &b))
		return 0;
	return mcs_add(m, a, b) < 0 ? -1 : 1;
}

void lsm_mcs_release(struct lsm_mcs *m, const char *level)
{
	unsigned a, b;
	struct mcs_ent *e;

	if (!mcs_parse(m, level, &a, &b) || (e = mcs_find(m, a, b)) == NULL)
		return;
	if (--e->refs == 0)
		*e = m->v[--m->n];
}

/* ---------------------------------------------------- SELinux contexts */

/* digits (1-4, no leading zero unless "0") as a number <= max; advances *p */
static bool num(const char **p, unsigned max, unsigned *out)
{
	const char *s = *p;
	unsigned v = 0;
	int n = 0;

	while (isdigit((unsigned char)s[n]) && n < 5)
		v = v * 10 + (unsigned)(s[n++] - '0');
	if (n == 0 || n > 4 || (n > 1 && s[0] == '0') || v > max)
		return false;
	*p = s + n;
	*out = v;
	return true;
}

/* s<N>[:<cats>] */
static bool level_part(const char **p)
{
	const char *s = *p;
	unsigned v, lo;

	if (*s++ != 's' || !num(&s, 1023, &v))
		return false;
	if (*s == ':') {
		s++;
		for (;;) {
			if (*s++ != 'c' || !num(&s, 1023, &lo))
				return false;
			if (*s == '.') {
				s++;
				if (*s++ != 'c' || !num(&s, 1023, &v) || v <= lo)
					return false;
			}
			if (*s != ',')
				break;
			s++;
		}
	}
	*p = s;
	return true;
}

bool lsm_level_valid(const char *level)
{
	const char *s = level;

	if (s == NULL || *s == '\0' || strlen(s) >= LSM_LABEL_MAX / 2)
		return false;
	if (!level_part(&s))
		return false;
	if (*s == '-') {
		s++;
		if (!level_part(&s))
			return false;
	}
	return *s == '\0';
}

bool lsm_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 127)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '.' && name[i] != '-')
			return false;
	return true;
}

int lsm_context_parse(const char *s, struct lsm_context *c)
{
	char *f[3] = { c->user, c->role, c->type };
	size_t cap[3] = { sizeof c->user, sizeof c->role, sizeof c->type };

	memset(c, 0, sizeof *c);
	if (s == NULL)
		return -1;
	for (int i = 0; i < 3; i++) {
		const char *colon = strchr(s, ':');
		size_t len = colon ? (size_t)(colon - s) : 0;
		if (colon == NULL || len == 0 || len >= cap[i])
			return -1;
		memcpy(f[i], s, len);
		f[i][len] = '\0';
		s = colon + 1;
	}
	if (*s == '\0' || strlen(s) >= sizeof c->level)
		return -1;
	memcpy(c->level, s, strlen(s) + 1);
	return 0;
}

int lsm_context_format(const struct lsm_context *c, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s:%s:%s:%s", c->user, c->role, c->type, c->level);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

int lsm_lxc_contexts_parse(const char *text, char process[LSM_LABEL_MAX], char file[LSM_LABEL_MAX])
{
	int found = 0;

	for (const char *line = text; line && *line;) {
		const char *eol = strchrnul(line, '\n');
		char key[32], val[LSM_LABEL_MAX];
		size_t kl = 0, vl = 0;
		const char *p = line;

		while (p < eol && isspace((unsigned char)*p))
			p++;
		while (p < eol && (isalnum((unsigned char)*p) || *p == '_') && kl + 1 < sizeof key)
			key[kl++] = *p++;
		key[kl] = '\0';
		while (p < eol && isspace((unsigned char)*p))
			p++;
		if (kl > 0 && p < eol && *p == '=') {
			p++;
			while (p < eol && isspace((unsigned char)*p))
				p++;
			bool q = p < eol && *p == '"';
			p += q;
			while (p < eol && (q ? *p != '"' : !isspace((unsigned char)*p) && *p != '#') &&
			       vl + 1 < sizeof val)
				val[vl++] = *p++;
			val[vl] = '\0';
			struct lsm_context c;
			if (vl > 0 && lsm_context_parse(val, &c) == 0) {
				if (!strcmp(key, "process")) {
					memcpy(process, val, vl + 1);
					found++;
				} else if (!strcmp(key, "file")) {
					memcpy(file, val, vl + 1);
					found++;
				}
			}
		}
		line = *eol ? eol + 1 : eol;
	}
	return found;
}

static bool set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

int lsm_selinux_opt_check(const struct lsm_selinux_opt *o, const char *what, crisp_err_t *err)
{
	const char *names[] = { "user", "role", "type" };
	const char *vals[] = { o ? o->user : NULL, o ? o->role : NULL, o ? o->type : NULL };

	if (o == NULL)
		return 0;
	for (int i = 0; i < 3; i++)
		if (set(vals[i]) && !lsm_name_valid(vals[i]))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "%s.%s \"%.128s\": must be 1-127 of [A-Za-z0-9_.-]", what, names[i], vals[i]);
	if (set(o->level) && !lsm_level_valid(o->level))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "%s.level \"%.128s\" is not an SELinux MLS level (e.g. s0 or s0:c4,c5)", what,
				   o->level);
	return 0;
}

static void apply_opt(struct lsm_context *p, struct lsm_context *f, const struct lsm_selinux_opt *o)
{
	if (o == NULL)
		return;
	if (set(o->user)) {
		crisp_strlcpy(p->user, o->user, sizeof p->user);
		crisp_strlcpy(f->user, o->user, sizeof f->user);
	}
	if (set(o->role))
		crisp_strlcpy(p->role, o->role, sizeof p->role);
	if (set(o->type))
		crisp_strlcpy(p->type, o->type, sizeof p->type);
	if (set(o->level)) {
		crisp_strlcpy(p->level, o->level, sizeof p->level);
		crisp_strlcpy(f->level, o->level, sizeof f->level);
	}
}

int lsm_selinux_labels(const char *def_process, const char *def_file, const char *pod_level,
		       const struct lsm_selinux_opt *pod, const struct lsm_selinux_opt *ctr, bool privileged,
		       char process[LSM_LABEL_MAX], char mount[LSM_LABEL_MAX], crisp_err_t *err)
{
	struct lsm_context p, f;

	process[0] = mount[0] = '\0';
	if (lsm_selinux_opt_check(pod, "pod selinux_options", err) < 0 ||
	    lsm_selinux_opt_check(ctr, "container selinux_options", err) < 0)
		return -1;
	if (lsm_context_parse(def_process, &p) < 0 || lsm_context_parse(def_file, &f) < 0)
		return crisp_error(err, CRISP_INTERNAL, 0, "the node's container SELinux contexts are malformed");
	if (set(pod_level)) {
		if (!lsm_level_valid(pod_level))
			return crisp_error(err, CRISP_INTERNAL, 0, "pod SELinux level \"%.64s\" is malformed", pod_level);
		crisp_strlcpy(p.level, pod_level, sizeof p.level);
		crisp_strlcpy(f.level, pod_level, sizeof f.level);
	}
	apply_opt(&p, &f, pod);
	apply_opt(&p, &f, ctr);
	if (privileged) {
		/* As CRI-O: a privileged container runs as spc_t at s0. */
		if (!(ctr && set(ctr->type)))
			crisp_strlcpy(p.type, LSM_SPC_TYPE, sizeof p.type);
		if (!(ctr && set(ctr->level)))
			crisp_strlcpy(p.level, "s0", sizeof p.level);
	}
	if (lsm_context_format(&p, process, LSM_LABEL_MAX) < 0 || lsm_context_format(&f, mount, LSM_LABEL_MAX) < 0) {
		process[0] = mount[0] = '\0';
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "SELinux label longer than %d bytes",
				   LSM_LABEL_MAX - 1);
	}
	return 0;
}

bool lsm_relabel_forbidden(const char *path)
{
	/* go-selinux's exclude list (label.Relabel), which CRI-O relies on */
	static const char *const never[] = {
		"/", "/bin", "/boot", "/dev", "/etc", "/etc/passwd", "/etc/pki", "/etc/shadow", "/home",
		"/lib", "/lib32", "/lib64", "/media", "/opt", "/proc", "/root", "/run", "/sbin", "/srv",
		"/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/log",
	};
	size_t n;

	if (path == NULL || path[0] != '/')
		return true;
	n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
		if (strlen(never[i]) == n && !strncmp(never[i], path, n))
			return true;
	return false;
}

/* ------------------------------------------------------------- AppArmor */

bool lsm_apparmor_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n >= LSM_PROFILE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)name[i]))
			return false;
	return true;
}

int lsm_apparmor_choose(int type, const char *ref, const char *legacy, bool privileged, bool enabled, char *out,
			size_t outsz, crisp_err_t *err)
{
	const char *name = NULL;

	out[0] = '\0';
	if (type < 0) {
		/* the deprecated string */
		if (!set(legacy) || !strcmp(legacy, "runtime/default"))
			type = LSM_AA_RUNTIME_DEFAULT;
		else if (!strcmp(legacy, "unconfined"))
			type = LSM_AA_UNCONFINED;
		else if (!strncmp(legacy, "localhost/", 10))
			type = LSM_AA_LOCALHOST, ref = legacy;
		else
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "apparmor profile \"%.200s\": not runtime/default, unconfined or "
					   "localhost/<profile>", legacy);
	}
	switch (type) {
	case LSM_AA_RUNTIME_DEFAULT:
		name = enabled && !privileged ? LSM_AA_DEFAULT : NULL;
		break;
	case LSM_AA_UNCONFINED:
		break;
	case LSM_AA_LOCALHOST:
		name = ref ? ref : "";
		if (!strncmp(name, "localhost/", 10))
			name += 10;
		if (!lsm_apparmor_name_valid(name) || !strcmp(name, "unconfined"))
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
					   "apparmor localhost profile \"%.200s\": must be a profile name (1-255 printable, "
					   "no space)", name);
		if (!enabled)
			return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
					   "apparmor profile \"%.200s\": AppArmor is not enabled on this node", name);
		if (privileged)
			name = NULL; /* as CRI-O and containerd: privileged runs unconfined */
		break;
	default:
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "apparmor profile_type %d is unknown", type);
	}
	if (name != NULL && (size_t)snprintf(out, outsz, "%s", name) >= outsz) {
		out[0] = '\0';
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "apparmor profile name too long");
	}
	return 0;
}

bool lsm_apparmor_listed(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *line = text; line && *line;) {
		const char *eol = strchrnul(line, '\n');
		/* "name (enforce)"; a name may itself hold spaces only when
		 * quoted, which crisp never writes: match "name (" exactly */
		if ((size_t)(eol - line) > n + 1 && !strncmp(line, name, n) && line[n] == ' ' && line[n + 1] == '(')
			return true;
		line = *eol ? eol + 1 : eol;
	}
	return false;
}

/* ------------------------------------------------- the node (thin layer) */

/* A whole small file (securityfs and selinuxfs report size 0). */
static char *slurp(const char *path, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t len = 0, cap = 4096;
	char *buf;
	ssize_t r;

	if (fd < 0)
		return NULL;
	if ((buf = malloc(cap + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	for (;;) {
		if (len == cap) {
			char *nb;
			if (cap >= max || (nb = realloc(buf, cap * 2 + 1)) == NULL)
				break;
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

/* apparmor_parser -Kr < text: load or replace a profile. */
static int aa_load(const char *text, crisp_err_t *err)
{
	static const char *const parsers[] = { "/sbin/apparmor_parser", "/usr/sbin/apparmor_parser" };
	const char *parser = NULL;
	int pfd[2], status;
	pid_t pid;

	for (size_t i = 0; i < sizeof parsers / sizeof parsers[0] && !parser; i++)
		if (access(parsers[i], X_OK) == 0)
			parser = parsers[i];
	if (parser == NULL)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, ENOENT, "apparmor_parser not found");
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return crisp_error(err, CRISP_INTERNAL, errno, "fork");
	}
	if (pid == 0) {
		char *const argv[] = { (char *)parser, (char *)"-Kr", NULL };
		char *const envp[] = { (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
		if (dup2(pfd[0], 0) < 0)
			_exit(127);
		execve(parser, argv, envp);
		_exit(127);
	}
	close(pfd[0]);
	int w = crisp_write_all(pfd[1], text, strlen(text));
	close(pfd[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (w < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "apparmor_parser: write the profile");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "%s -Kr failed (status %d)", parser, status);
	return 0;
}

int lsm_init(struct lsm *l, crisp_err_t *err)
{
	memset(l, 0, sizeof *l);
	if ((l->mcs = lsm_mcs_new(LSM_MCS_RANGE)) == NULL)
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
	crisp_strlcpy(l->se_process, LSM_DEFAULT_PROCESS, sizeof l->se_process);
	crisp_strlcpy(l->se_file, LSM_DEFAULT_FILE, sizeof l->se_file);
	l->selinux = is_selinux_enabled() > 0;
	if (l->selinux) {
		const char *p = selinux_lxc_contexts_path();
		char *text = p ? slurp(p, 65536) : NULL;
		int n = text ? lsm_lxc_contexts_parse(text, l->se_process, l->se_file) : 0;
		free(text);
		log_info("lsm: SELinux enabled: containers run as %s, files %s%s", l->se_process, l->se_file,
			 n == 2 ? "" : " (built-in defaults for what the node's lxc_contexts lacks)");
	} else {
		log_info("lsm: SELinux is not enabled: SELinux options are checked, not applied");
	}
	l->apparmor = aa_is_enabled() == 1;
	if (l->apparmor) {
		char *mnt = NULL;
		if (aa_find_mountpoint(&mnt) == 0 && mnt != NULL)
			crisp_strlcpy(l->aa_fs, mnt, sizeof l->aa_fs);
		else
			crisp_strlcpy(l->aa_fs, "/sys/kernel/security/apparmor", sizeof l->aa_fs);
		free(mnt);
		crisp_err_t e = CRISP_ERR_INIT;
		if (aa_load(lsm_apparmor_default_text(), &e) == 0) {
			l->aa_default_loaded = true;
			log_info("lsm: AppArmor enabled: profile %s loaded", LSM_AA_DEFAULT);
		} else {
			log_error("lsm: AppArmor enabled but profile %s not loaded: %s; containers asking for the "
				  "runtime default will fail to create", LSM_AA_DEFAULT, e.msg);
		}
	} else {
		log_info("lsm: AppArmor is not enabled: runtime/default and unconfined apply nothing, "
			 "localhost profiles are refused");
	}
	return 0;
}

void lsm_close(struct lsm *l)
{
	lsm_mcs_free(l->mcs);
	l->mcs = NULL;
}

int lsm_ctr_selinux(const struct lsm *l, const char *pod_level, const struct lsm_selinux_opt *pod,
		    const struct lsm_selinux_opt *ctr, bool privileged, char process[LSM_LABEL_MAX],
		    char mount[LSM_LABEL_MAX], crisp_err_t *err)
{
	/* Checked on every node, applied only where SELinux is on. */
	if (lsm_selinux_labels(l->se_process, l->se_file, pod_level, pod, ctr, privileged, process, mount, err) < 0)
		return -1;
	if (!l->selinux)
		process[0] = mount[0] = '\0';
	return 0;
}

int lsm_ctr_apparmor(const struct lsm *l, int type, const char *ref, const char *legacy, bool privileged,
		     char *out, size_t outsz, crisp_err_t *err)
{
	char path[300];
	char *text;
	bool ok;

	if (lsm_apparmor_choose(type, ref, legacy, privileged, l->apparmor, out, outsz, err) < 0)
		return -1;
	if (out[0] == '\0')
		return 0;
	snprintf(path, sizeof path, "%s/profiles", l->aa_fs);
	text = slurp(path, 16u << 20);
	ok = text != NULL && lsm_apparmor_listed(text, out);
	free(text);
	if (!ok) {
		crisp_error(err, CRISP_FAILED_PRECONDITION, 0, "apparmor profile \"%.200s\" is not loaded%s", out,
			    strcmp(out, LSM_AA_DEFAULT) ? "" : " (execd loads it at start: is apparmor_parser installed?)");
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/* Label path and, for a directory on the same filesystem, everything
 * below it (symlinks labelled, never followed; other mounts left alone).
 * path is a PATH_MAX buffer the walk extends in place. */
static int relabel_tree(char *path, size_t len, dev_t dev, const char *label, int depth)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int r = 0;

	if (lstat(path, &st) < 0)
		return -1;
	if (st.st_dev != dev)
		return 0;
	if (lsetfilecon(path, label) < 0 && errno != ENOTSUP)
		return -1;
	if (!S_ISDIR(st.st_mode))
		return 0;
	if (depth > 256) {
		errno = ELOOP;
		return -1;
	}
	if ((d = opendir(path)) == NULL)
		return -1;
	while (r == 0 && (e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (len + 1 + n >= PATH_MAX) {
			errno = ENAMETOOLONG;
			r = -1;
			break;
		}
		path[len] = '/';
		memcpy(path + len + 1, e->d_name, n + 1);
		r = relabel_tree(path, len + 1 + n, dev, label, depth + 1);
		path[len] = '\0';
	}
	int e2 = errno;
	closedir(d);
	errno = e2;
	return r;
}

int lsm_relabel(const struct lsm *l, const char *path, const char *label, crisp_err_t *err)
{
	char *cur = NULL;

	if (!l->selinux || label == NULL || label[0] == '\0')
		return 0;
	if (lsm_relabel_forbidden(path))
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
				   "SELinux relabeling of %.200s is not allowed (a system directory)", path);
	if (lgetfilecon(path, &cur) >= 0 && cur != NULL && !strcmp(cur, label)) {
		freecon(cur);
		return 0; /* labelled already (CRI-O's maybeRelabel) */
	}
	freecon(cur);
	char buf[PATH_MAX];
	struct stat st;
	size_t len = strlen(path);
	if (len >= sizeof buf || lstat(path, &st) < 0)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, len >= sizeof buf ? ENAMETOOLONG : errno,
				   "SELinux relabel of %.200s", path);
	memcpy(buf, path, len + 1);
	if (relabel_tree(buf, len, st.st_dev, label, 0) < 0)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, errno, "SELinux relabel of %.200s to %.200s", path,
				   label);
	return 0;
}

int lsm_label_path(const struct lsm *l, const char *path, const char *label, crisp_err_t *err)
{
	if (!l->selinux || label == NULL || label[0] == '\0')
		return 0;
	if (lsetfilecon(path, label) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "SELinux label of %.200s", path);
	return 0;
}
