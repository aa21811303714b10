/*
 * crispd: configuration schema, parsing (libinih) and layering.
 */
#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "crispd/config.h"

const char config_default_text[] =
	"# crisp embedded default configuration\n"
	"[crisp]\n"
	"root = /var/lib/crisp\n"
	"runroot = /run/crisp\n"
	"listen = /run/crisp/crisp.sock\n"
	"log_level = info\n"
	"sandbox_debug = false\n"
	"\n"
	"[frontd]\n"
	"user = crisp-frontd\n"
	"max_connections = 64\n"
	"max_streams = 256\n"
	"max_recv_msg_size = 16777216\n"
	"max_header_list_size = 65536\n"
	"allowed_uids = 0\n"
	"request_timeout_ms = 240000\n"
	"\n"
	"[imaged]\n"
	"user = crisp-imaged\n"
	"signature_policy = /etc/containers/policy.json\n"
	"registries_conf = /etc/containers/registries.conf\n"
	"registries_d = /etc/containers/registries.d\n"
	"signature_policy_dir =\n"
	"audit_log =\n"
	"auth_file = /etc/crisp/auth.json\n"
	"certs_dir = /etc/containers/certs.d\n"
	"stall_timeout_s = 60\n"
	"\n"
	"[execd]\n"
	"cgroup_parent = crisp\n"
	"runtime_policy = /etc/crisp/runtime-policy.json\n"
	"# RuntimeClass handlers run by an external OCI runtime, as\n"
	"# name=/path/to/runtime (e.g. runc=/usr/sbin/runc, crun=/usr/bin/crun);\n"
	"# the default handler \"\" is crisp's own launcher\n"
	"runtime_handlers =\n"
	"\n"
	"[netd]\n"
	"cni_config_dir = /etc/cni/net.d\n"
	"cni_plugin_dirs = /opt/cni/bin, /usr/lib/cni\n"
	"cni_default_network =\n"
	"netns_dir =\n"
	"\n"
	"[streaming]\n"
	"address = 127.0.0.1\n"
	"port = 0\n"
	"tls_cert =\n"
	"tls_key =\n"
	"tls_client_ca =\n";

enum cfg_type {
	CT_STRING,   /* any single-line text, may be empty */
	CT_PATH,     /* absolute, clean path */
	CT_PATH_OPT, /* absolute path or empty */
	CT_UINT,     /* decimal, within [min, max] */
	CT_BOOL,     /* true/false/yes/no/1/0 */
	CT_LOGLEVEL, /* error/warn/info/debug */
	CT_UIDLIST,  /* comma-separated uids */
	CT_PATHLIST, /* comma-separated absolute paths */
	CT_HANDLERLIST, /* comma-separated name=/absolute/path */
	CT_USER,     /* a system user name */
	CT_ADDRESS,  /* an IPv4/IPv6 literal or host name (checked by the role) */
};

enum cfg_target { TGT_MSG, TGT_CRISPD };

struct cfg_key {
	const char *section;
	const char *key;
	enum cfg_type type;
	enum cfg_target target;
	size_t off; /* into Cipc__Config or struct crisp_config */
	size_t count_off; /* lists: offset of the n_ field in Cipc__Config */
	uint64_t min, max;
};

#define M(f) TGT_MSG, offsetof(Cipc__Config, f)
#define ML(f) TGT_MSG, offsetof(Cipc__Config, f), offsetof(Cipc__Config, n_##f)
#define D(f) TGT_CRISPD, offsetof(struct crisp_config, f)

static const struct cfg_key schema[] = {
	{ "crisp", "root", CT_PATH, M(root), 0, 0, 0 },
	{ "crisp", "runroot", CT_PATH, M(runroot), 0, 0, 0 },
	{ "crisp", "listen", CT_PATH, M(listen), 0, 0, 0 },
	{ "crisp", "log_level", CT_LOGLEVEL, M(log_level), 0, 0, 0 },
	{ "crisp", "sandbox_debug", CT_BOOL, D(sandbox_debug), 0, 0, 0 },
	{ "frontd", "user", CT_USER, D(frontd_user), 0, 0, 0 },
	{ "frontd", "max_connections", CT_UINT, M(max_connections), 0, 1, 100000 },
	{ "frontd", "max_streams", CT_UINT, M(max_streams), 0, 1, 100000 },
	{ "frontd", "max_recv_msg_size", CT_UINT, M(max_recv_msg_size), 0, 4096, 1u << 30 },
	{ "frontd", "max_header_list_size", CT_UINT, M(max_header_list_size), 0, 1024, 1u << 24 },
	{ "frontd", "allowed_uids", CT_UIDLIST, ML(allowed_uids), 0, 0 },
	{ "frontd", "request_timeout_ms", CT_UINT, M(request_timeout_ms), 0, 100, 86400000 },
	{ "imaged", "user", CT_USER, D(imaged_user), 0, 0, 0 },
	{ "imaged", "signature_policy", CT_PATH_OPT, M(signature_policy), 0, 0, 0 },
	{ "imaged", "registries_conf", CT_PATH_OPT, M(registries_conf), 0, 0, 0 },
	{ "imaged", "registries_d", CT_PATH_OPT, M(registries_d), 0, 0, 0 },
	{ "imaged", "signature_policy_dir", CT_PATH_OPT, M(signature_policy_dir), 0, 0, 0 },
	{ "imaged", "audit_log", CT_PATH_OPT, M(audit_log), 0, 0, 0 },
	{ "imaged", "auth_file", CT_PATH_OPT, M(auth_file), 0, 0, 0 },
	{ "imaged", "certs_dir", CT_PATH_OPT, M(certs_dir), 0, 0, 0 },
	{ "imaged", "stall_timeout_s", CT_UINT, M(stall_timeout_s), 0, 1, 3600 },
	{ "execd", "cgroup_parent", CT_STRING, M(cgroup_parent), 0, 0, 0 },
	{ "execd", "runtime_policy", CT_PATH_OPT, M(runtime_policy), 0, 0, 0 },
	{ "execd", "runtime_handlers", CT_HANDLERLIST, ML(runtime_handlers), 0, 0 },
	{ "netd", "cni_config_dir", CT_PATH, M(cni_config_dir), 0, 0, 0 },
	{ "netd", "cni_plugin_dirs", CT_PATHLIST, ML(cni_plugin_dirs), 0, 0 },
	{ "netd", "cni_default_network", CT_STRING, M(cni_default_network), 0, 0, 0 },
	{ "netd", "netns_dir", CT_PATH_OPT, M(netns_dir), 0, 0, 0 },
	{ "streaming", "address", CT_ADDRESS, M(stream_address), 0, 0, 0 },
	{ "streaming", "port", CT_UINT, M(stream_port), 0, 0, 65535 },
	{ "streaming", "tls_cert", CT_PATH_OPT, M(stream_tls_cert), 0, 0, 0 },
	{ "streaming", "tls_key", CT_PATH_OPT, M(stream_tls_key), 0, 0, 0 },
	{ "streaming", "tls_client_ca", CT_PATH_OPT, M(stream_tls_client_ca), 0, 0, 0 },
};

#define MAX_LIST 64
#define MAX_VALUE 4096

static bool path_is_clean(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n >= PATH_MAX || p[0] != '/')
		return false;
	if (n > 1 && p[n - 1] == '/')
		return false;
	for (const char *s = p; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
		if (s[0] == '/' && s[1] == '/')
			return false;
		if (s[0] == '/' && s[1] == '.' && (s[2] == '/' || s[2] == '\0'))
			return false;
		if (s[0] == '/' && s[1] == '.' && s[2] == '.' && (s[3] == '/' || s[3] == '\0'))
			return false;
	}
	return true;
}

/* items[i] is "name=/path": name a DNS label (as RuntimeClass handlers
 * are), not named before in the list, and a clean absolute path. */
static bool handler_ok(char (*items)[MAX_VALUE], size_t i)
{
	const char *eq = strchr(items[i], '=');
	size_t n = eq ? (size_t)(eq - items[i]) : 0;

	if (n == 0 || n > 63 || !path_is_clean(eq + 1) || items[i][0] == '-' || items[i][n - 1] == '-')
		return false;
	for (size_t j = 0; j < n; j++) {
		char c = items[i][j];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	for (size_t j = 0; j < i; j++)
		if (!strncmp(items[j], items[i], n + 1))
			return false;
	return true;
}

static bool text_is_clean(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static bool user_is_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32 || s[0] == '-')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}

static int parse_uint(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long x;

	if (*v == '\0' || *v == '-' || *v == '+')
		return -1;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || x < min || x > max)
		return -1;
	*out = x;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
		*out = false;
	else
		return -1;
	return 0;
}

/* Split a comma-separated list into trimmed items (at most MAX_LIST). */
static int split_list(const char *v, char items[][MAX_VALUE], size_t *n)
{
	const char *p = v;

	*n = 0;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0 || len >= MAX_VALUE || *n >= MAX_LIST)
			return -1;
		memcpy(items[*n], p, len);
		items[*n][len] = '\0';
		(*n)++;
		if (e == NULL)
			break;
		p = e + 1;
		if (*p == '\0')
			return -1; /* trailing comma */
	}
	return 0;
}

static void set_string(char **slot, const char *v)
{
	if (*slot != NULL && *slot != protobuf_c_empty_string)
		free(*slot);
	*slot = xstrdup(v);
}

struct parse_state {
	struct crisp_config *cfg;
	const char *name;
	char errkey[128];
	char errmsg[256];
};

static int apply_key(struct crisp_config *cfg, const struct cfg_key *k, const char *v, char *why, size_t whylen)
{
	char *base = k->target == TGT_MSG ? (char *)cfg->c : (char *)cfg;
	void *slot = base + k->off;
	uint64_t u;
	bool b;
	int lvl;

	if (strlen(v) >= MAX_VALUE) {
		snprintf(why, whylen, "value too long");
		return -1;
	}
	switch (k->type) {
	case CT_STRING:
	case CT_ADDRESS:
		if (!text_is_clean(v)) {
			snprintf(why, whylen, "control characters in value");
			return -1;
		}
		set_string(slot, v);
		return 0;
	case CT_PATH_OPT:
		if (*v == '\0') {
			set_string(slot, v);
			return 0;
		}
		__attribute__((fallthrough));
	case CT_PATH:
		if (!path_is_clean(v)) {
			snprintf(why, whylen, "'%.128s' is not an absolute, clean path", v);
			return -1;
		}
		set_string(slot, v);
		return 0;
	case CT_USER:
		if (!user_is_valid(v)) {
			snprintf(why, whylen, "'%.128s' is not a valid user name", v);
			return -1;
		}
		set_string(slot, v);
		return 0;
	case CT_UINT:
		if (parse_uint(v, k->min, k->max, &u) < 0) {
			snprintf(why, whylen, "'%.128s' is not a whole number from %llu to %llu", v,
				 (unsigned long long)k->min, (unsigned long long)k->max);
			return -1;
		}
		*(uint32_t *)slot = (uint32_t)u;
		return 0;
	case CT_BOOL:
		if (parse_bool(v, &b) < 0) {
			snprintf(why, whylen, "'%.128s' is not a boolean (true/false)", v);
			return -1;
		}
		*(bool *)slot = b;
		return 0;
	case CT_LOGLEVEL:
		lvl = log_level_parse(v);
		if (lvl < 0) {
			snprintf(why, whylen, "'%.128s' is not a log level (error, warn, info, debug)", v);
			return -1;
		}
		*(int32_t *)slot = lvl;
		return 0;
	case CT_UIDLIST:
	case CT_HANDLERLIST:
	case CT_PATHLIST: {
		cleanup_free char(*items)[MAX_VALUE] = xcalloc(MAX_LIST, MAX_VALUE);
		size_t n, *count = (size_t *)(base + k->count_off);
		if (split_list(v, items, &n) < 0) {
			snprintf(why, whylen, "bad list (comma-separated, at most %d items)", MAX_LIST);
			return -1;
		}
		if (k->type == CT_UIDLIST) {
			uint32_t *uids = xcalloc(n, sizeof *uids);
			for (size_t i = 0; i < n; i++) {
				if (parse_uint(items[i], 0, 0xfffffffe, &u) < 0) {
					snprintf(why, whylen, "'%.128s' is not a uid", items[i]);
					free(uids);
					return -1;
				}
				uids[i] = (uint32_t)u;
			}
			free(*(uint32_t **)slot);
			*(uint32_t **)slot = uids;
		} else {
			char **paths = xcalloc(n, sizeof *paths);
			for (size_t i = 0; i < n; i++) {
				bool ok = k->type == CT_HANDLERLIST ? handler_ok(items, i)
								    : path_is_clean(items[i]);
				if (!ok) {
					snprintf(why, whylen,
						 k->type == CT_HANDLERLIST
							 ? "'%.128s' is not name=/absolute/path (a DNS label, "
							   "once, then a clean path)"
							 : "'%.128s' is not an absolute, clean path",
						 items[i]);
					for (size_t j = 0; j < i; j++)
						free(paths[j]);
					free(paths);
					return -1;
				}
				paths[i] = xstrdup(items[i]);
			}
			char **old = *(char ***)slot;
			for (size_t j = 0; j < *count; j++)
				free(old[j]);
			free(old);
			*(char ***)slot = paths;
		}
		*count = n;
		return 0;
	}
	}
	snprintf(why, whylen, "internal: unknown type");
	return -1;
}

static int crisp_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *ps = user;

	if (name == NULL)
		return 1; /* a section header alone: checked when its keys come */
	for (size_t i = 0; i < ARRAY_SIZE(schema); i++) {
		if (strcmp(schema[i].section, section) || strcmp(schema[i].key, name))
			continue;
		if (apply_key(ps->cfg, &schema[i], value ? value : "", ps->errmsg, sizeof ps->errmsg) < 0) {
			snprintf(ps->errkey, sizeof ps->errkey, "%s.%s", section, name);
			return 0;
		}
		return 1;
	}
	snprintf(ps->errkey, sizeof ps->errkey, "%s.%s", section, name);
	bool known_section = false;
	for (size_t i = 0; i < ARRAY_SIZE(schema); i++)
		if (!strcmp(schema[i].section, section))
			known_section = true;
	snprintf(ps->errmsg, sizeof ps->errmsg, known_section ? "unknown key" : "unknown section [%s]",
		 section);
	return 0;
}

int config_parse_string(struct crisp_config *cfg, const char *text, const char *name, crisp_err_t *err)
{
	struct parse_state ps = { .cfg = cfg, .name = name };
	int line;

	/* libinih's settings (process-wide; only crispd parses INI): stop at the
	 * first error so the line reported is the one that failed; no
	 * continuation lines; inline comments after whitespace, as in the
	 * README's example; lines up to 8 KiB on the heap. */
	int lineno = 1;
	for (const char *p = text, *nl; *p; p = nl + 1, lineno++) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p) - 1;
		if (nl - p + 1 >= 8000)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s:%d: line too long", name, lineno);
	}
	ini_stop_on_first_error = true;
	ini_allow_multiline = false;
	ini_allow_inline_comments = true;
	ini_inline_comment_prefixes = (char *)"#;";
	ini_use_stack = false;
	ini_allow_realloc = false;
	ini_max_line = 8192;
	/* Keys outside any section have section "" and are reported unknown. */
	line = ini_parse_string(text, crisp_ini_handler, &ps);
	if (line == 0)
		return 0;
	if (line < 0)
		return crisp_error(err, CRISP_INTERNAL, 0, "%s: cannot parse", name);
	if (ps.errkey[0] == '\0')
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s:%d: syntax error", name, line);
	return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s:%d: %s: %s", name, line, ps.errkey, ps.errmsg);
}

int config_defaults(struct crisp_config *cfg, crisp_err_t *err)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->c = xcalloc(1, sizeof *cfg->c);
	cipc__config__init(cfg->c);
	return config_parse_string(cfg, config_default_text, "<embedded default>", err);
}

void config_free(struct crisp_config *cfg)
{
	if (cfg->c != NULL)
		protobuf_c_message_free_unpacked(&cfg->c->base, NULL);
	free(cfg->frontd_user);
	free(cfg->imaged_user);
	memset(cfg, 0, sizeof *cfg);
}

/* Read a whole config file (bounded) into memory. */
static char *read_file(const char *path, bool must_exist, bool *missing, crisp_err_t *err)
{
	FILE *f = fopen(path, "re");
	struct stat st;
	char *buf;
	size_t n;

	*missing = false;
	if (f == NULL) {
		if (errno == ENOENT && !must_exist) {
			*missing = true;
			return NULL;
		}
		crisp_error(err, CRISP_INVALID_ARGUMENT, errno, "%s", path);
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
		fclose(f);
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: not a regular file under 1 MiB", path);
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	n = fread(buf, 1, (size_t)st.st_size, f);
	buf[n] = '\0';
	fclose(f);
	if (memchr(buf, '\0', n) != NULL) {
		free(buf);
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: contains a NUL byte", path);
		return NULL;
	}
	return buf;
}

static int load_file(struct crisp_config *cfg, const char *path, bool must_exist, crisp_err_t *err)
{
	bool missing;
	char *text = read_file(path, must_exist, &missing, err);
	int r;

	if (text == NULL)
		return missing ? 0 : -1;
	r = config_parse_string(cfg, text, path, err);
	free(text);
	return r;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_dropins(struct crisp_config *cfg, const char *dir, crisp_err_t *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (d == NULL)
		return errno == ENOENT ? 0 : crisp_error(err, CRISP_INVALID_ARGUMENT, errno, "%s", dir);
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".conf"))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names = realloc(names, cap * sizeof *names);
			if (names == NULL)
				fatal("out of memory");
		}
		names[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof *names, cmp_names);
	for (size_t i = 0; i < n && r == 0; i++) {
		char path[PATH_MAX];
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path)
			r = crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s/%s: path too long", dir, names[i]);
		else
			r = load_file(cfg, path, true, err);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

static int apply_flag(struct crisp_config *cfg, const char *section, const char *key, const char *v,
		      crisp_err_t *err)
{
	char why[256];

	for (size_t i = 0; i < ARRAY_SIZE(schema); i++) {
		if (strcmp(schema[i].section, section) || strcmp(schema[i].key, key))
			continue;
		if (apply_key(cfg, &schema[i], v, why, sizeof why) < 0)
			return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "command line: --%s: %s",
					   !strcmp(key, "log_level") ? "log-level" : key, why);
		return 0;
	}
	return crisp_error(err, CRISP_INTERNAL, 0, "no key %s.%s", section, key);
}

int config_validate(const struct crisp_config *cfg, crisp_err_t *err)
{
	const Cipc__Config *c = cfg->c;

	if (c->n_allowed_uids == 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "frontd.allowed_uids: must name at least one uid");
	if (c->n_cni_plugin_dirs == 0)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "netd.cni_plugin_dirs: must name at least one directory");
	if (strlen(c->listen) >= 108)
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "crisp.listen: socket path longer than 107 bytes");
	if (!strcmp(c->root, c->runroot))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "crisp.root and crisp.runroot must differ");
	if (!strcmp(cfg->frontd_user, cfg->imaged_user))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "frontd.user and imaged.user must differ (each role owns its own uid)");
	if ((c->stream_tls_cert[0] == '\0') != (c->stream_tls_key[0] == '\0'))
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "streaming.tls_cert and streaming.tls_key: set both or neither");
	if (c->stream_tls_client_ca[0] != '\0' && c->stream_tls_cert[0] == '\0')
		return crisp_error(err, CRISP_INVALID_ARGUMENT, 0,
				   "streaming.tls_client_ca needs streaming.tls_cert and tls_key (TLS)");
	return 0;
}

int config_load(const struct crisp_flags *f, struct crisp_config *out, crisp_err_t *err)
{
	const char *path = f->config ? f->config : CRISP_DEFAULT_CONFIG;
	char dropdir[PATH_MAX];

	if (config_defaults(out, err) < 0)
		goto fail;
	if (load_file(out, path, f->config_given, err) < 0)
		goto fail;
	if ((size_t)snprintf(dropdir, sizeof dropdir, "%s.d", path) >= sizeof dropdir) {
		crisp_error(err, CRISP_INVALID_ARGUMENT, 0, "%s: path too long", path);
		goto fail;
	}
	if (load_dropins(out, dropdir, err) < 0)
		goto fail;
	if ((f->root && apply_flag(out, "crisp", "root", f->root, err) < 0) ||
	    (f->runroot && apply_flag(out, "crisp", "runroot", f->runroot, err) < 0) ||
	    (f->listen && apply_flag(out, "crisp", "listen", f->listen, err) < 0) ||
	    (f->log_level && apply_flag(out, "crisp", "log_level", f->log_level, err) < 0))
		goto fail;
	if (config_validate(out, err) < 0)
		goto fail;
	return 0;
fail:
	config_free(out);
	return -1;
}
