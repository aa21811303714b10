/*
 * crispd: entry point.  See crispd.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "common/util.h"
#include "crispd/crispd.h"
#include "imaged/audit.h"

#define CRISP_VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: crispd [options]\n"
		"  --config FILE          configuration file (default " CRISP_DEFAULT_CONFIG
		", drop-ins in FILE.d/*.conf)\n"
		"  --root DIR             persistent state (default /var/lib/crisp)\n"
		"  --runroot DIR          runtime state (default /run/crisp)\n"
		"  --listen PATH          CRI socket (default /run/crisp/crisp.sock)\n"
		"  --log-level LEVEL      error, warn, info or debug\n"
		"  --check-config         load and check the configuration, then exit\n"
		"  --print-default-config print the embedded default configuration\n"
		"  --verify-audit FILE    check the hash chain of a signature audit log, then exit\n"
		"  --version, --help\n");
}

/* --verify-audit: 0 intact, 1 a bad record or an unreadable log. */
static int verify_audit(const char *path)
{
	struct audit_verify_result r;
	crisp_err_t err = CRISP_ERR_INIT;
	int rc = audit_verify(path, &r, &err);

	if (rc < 0) {
		fprintf(stderr, "crispd: %s\n", err.msg);
		return 1;
	}
	if (rc > 0) {
		printf("bad record at line %llu: %s\n", (unsigned long long)r.bad_line, r.reason);
		return 1;
	}
	printf("ok: %llu records\n", (unsigned long long)r.records);
	if (r.recovered > 0)
		printf("note: %llu damaged record(s) bridged by recover notes\n", (unsigned long long)r.recovered);
	printf("head: %s\n", r.head);
	return 0;
}

static void parse_flags(int argc, char **argv, struct crisp_flags *f, bool *check_only)
{
	enum { O_CONFIG = 256, O_ROOT, O_RUNROOT, O_LISTEN, O_LOGLEVEL, O_CHECK, O_PRINT, O_VERSION, O_HELP,
	       O_VERIFY_AUDIT };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, O_CONFIG },
		{ "root", required_argument, NULL, O_ROOT },
		{ "runroot", required_argument, NULL, O_RUNROOT },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "log-level", required_argument, NULL, O_LOGLEVEL },
		{ "check-config", no_argument, NULL, O_CHECK },
		{ "print-default-config", no_argument, NULL, O_PRINT },
		{ "verify-audit", required_argument, NULL, O_VERIFY_AUDIT },
		{ "version", no_argument, NULL, O_VERSION },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(f, 0, sizeof *f);
	*check_only = false;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_CONFIG:
			f->config = optarg;
			f->config_given = true;
			break;
		case O_ROOT:
			f->root = optarg;
			break;
		case O_RUNROOT:
			f->runroot = optarg;
			break;
		case O_LISTEN:
			f->listen = optarg;
			break;
		case O_LOGLEVEL:
			f->log_level = optarg;
			break;
		case O_CHECK:
			*check_only = true;
			break;
		case O_PRINT:
			fputs(config_default_text, stdout);
			exit(0);
		case O_VERIFY_AUDIT:
			exit(verify_audit(optarg));
		case O_VERSION:
			printf("crisp %s\n", CRISP_VERSION);
			exit(0);
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
}

/* The directory this binary lives in: the role binaries live beside it. */
static void self_dir(char *out, size_t len)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);

	if (n < 0)
		fatal("/proc/self/exe: %s", strerror(errno));
	buf[n] = '\0';
	crisp_strlcpy(out, dirname(buf), len);
}

static void make_dirs(struct crispd *d)
{
	const Cipc__Config *c = d->cfg.c;
	const struct role_proc *im = &d->procs[ROLE_IMAGED];
	char path[PATH_MAX], sockdir[PATH_MAX];

	/* 0711: roles reach their own subdirectories, nobody lists them. */
	if (crisp_mkdir_p(c->root, 0711, 0, 0) < 0 || crisp_mkdir_p(c->runroot, 0711, 0, 0) < 0)
		fatal("%s / %s: %s", c->root, c->runroot, strerror(errno));
	/* Each role owns its own state; no directory is written by two. */
	snprintf(path, sizeof path, "%s/images", c->root);
	if (crisp_mkdir_p(path, 0700, im->uid, im->gid) < 0)
		fatal("%s: %s", path, strerror(errno));
	snprintf(path, sizeof path, "%s/execd", c->root);
	if (crisp_mkdir_p(path, 0700, 0, 0) < 0)
		fatal("%s: %s", path, strerror(errno));
	snprintf(path, sizeof path, "%s/netd", c->root);
	if (crisp_mkdir_p(path, 0700, 0, 0) < 0)
		fatal("%s: %s", path, strerror(errno));
	/* frontd's root: empty, root-owned, read-only for everyone. */
	snprintf(d->empty_dir, sizeof d->empty_dir, "%s/empty", c->runroot);
	if (crisp_mkdir_p(d->empty_dir, 0555, 0, 0) < 0)
		fatal("%s: %s", d->empty_dir, strerror(errno));
	DIR *dir = opendir(d->empty_dir);
	struct dirent *e;
	if (dir == NULL)
		fatal("%s: %s", d->empty_dir, strerror(errno));
	while ((e = readdir(dir)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			fatal("%s must be empty (it is frontd's root); found %s", d->empty_dir, e->d_name);
	closedir(dir);
	crisp_strlcpy(sockdir, c->listen, sizeof sockdir);
	if (crisp_mkdir_p(dirname(sockdir), 0711, (uid_t)-1, (gid_t)-1) < 0 && errno != EEXIST)
		fatal("%s: %s", c->listen, strerror(errno));
}

static int open_cri_socket(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd;
	mode_t old;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path)
		fatal("%s: socket path too long", path);
	memcpy(sa.sun_path, path, strlen(path));
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			fatal("%s exists and is not a socket", path);
		/* A live socket means another runtime serves it. */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			fatal("%s is in use by another process", path);
		if (fd >= 0)
			close(fd);
		if (unlink(path) < 0)
			fatal("%s: %s", path, strerror(errno));
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fatal("socket: %s", strerror(errno));
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		fatal("bind %s: %s", path, strerror(errno));
	umask(old);
	if (chmod(path, 0660) < 0 || listen(fd, 512) < 0)
		fatal("%s: %s", path, strerror(errno));
	return fd;
}

/* The streaming server's TCP listener ([streaming] address and port; port
 * 0 picks a free one, frontd reads which with getsockname).  A numeric
 * address, or "localhost": crispd resolves no names. */
static int open_stream_socket(const char *addr, uint32_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl;
	int fd, one = 1;

	memset(&ss, 0, sizeof ss);
	if (strcmp(addr, "localhost") == 0)
		addr = "127.0.0.1";
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		sl = sizeof *s4;
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		sl = sizeof *s6;
	} else {
		fatal("streaming.address %s: not an IPv4 or IPv6 address", addr);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		fatal("streaming socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0)
		fatal("streaming listener %s port %u: %s", addr, (unsigned)port, strerror(errno));
	return fd;
}

static void on_term(struct loop *l, int signo, void *arg)
{
	struct crispd *d = arg;

	(void)l;
	log_info("%s received", strsignal(signo));
	sup_shutdown(d);
}

static void on_hup(struct loop *l, int signo, void *arg)
{
	(void)l;
	(void)signo;
	log_info("reloading configuration");
	sup_reload(arg);
}

static void on_chld(struct loop *l, int signo, void *arg)
{
	(void)l;
	(void)signo;
	sup_on_sigchld(arg);
}

int main(int argc, char **argv)
{
	struct crispd d;
	crisp_err_t err = CRISP_ERR_INIT;
	char bindir[PATH_MAX];
	bool check_only;

	memset(&d, 0, sizeof d);
	d.listen_fd = -1;
	d.stream_fd = -1;
	log_init("crispd", LOG_LVL_INFO);
	parse_flags(argc, argv, &d.flags, &check_only);
	if (config_load(&d.flags, &d.cfg, &err) < 0) {
		log_error("configuration: %s", err.msg);
		return 1;
	}
	log_set_level(d.cfg.c->log_level);
	if (check_only) {
		printf("configuration OK\n");
		config_free(&d.cfg);
		return 0;
	}
	if (geteuid() != 0)
		fatal("crispd must run as root (it drops privileges per role)");
	if (sodium_init() < 0)
		fatal("libsodium init failed");
	signal(SIGPIPE, SIG_IGN);

	self_dir(bindir, sizeof bindir);
	sup_init(&d, bindir);
	/* The unprivileged roles' system users, created when missing. */
	if (sandbox_ensure_user(d.cfg.frontd_user, d.cfg.c->runroot, &d.procs[ROLE_FRONTD].uid,
				&d.procs[ROLE_FRONTD].gid, &err) < 0 ||
	    sandbox_ensure_user(d.cfg.imaged_user, d.cfg.c->root, &d.procs[ROLE_IMAGED].uid,
				&d.procs[ROLE_IMAGED].gid, &err) < 0)
		fatal("%s", err.msg);
	make_dirs(&d);
	d.listen_fd = open_cri_socket(d.cfg.c->listen);
	d.stream_fd = open_stream_socket(d.cfg.c->stream_address, d.cfg.c->stream_port);

	d.loop = loop_new();
	if (d.loop == NULL)
		fatal("event loop: %s", strerror(errno));
	if (loop_signal(d.loop, SIGTERM, on_term, &d) < 0 || loop_signal(d.loop, SIGINT, on_term, &d) < 0 ||
	    loop_signal(d.loop, SIGHUP, on_hup, &d) < 0 || loop_signal(d.loop, SIGCHLD, on_chld, &d) < 0)
		fatal("signals: %s", strerror(errno));

	d.generation = 1;
	sup_start_all(&d);
	log_info("crisp %s serving CRI on unix://%s", CRISP_VERSION, d.cfg.c->listen);
	/* Also on stdout, for scripts and people starting it by hand. */
	printf("unix://%s\n", d.cfg.c->listen);
	fflush(stdout);

	if (loop_run(d.loop) < 0)
		fatal("event loop: %s", strerror(errno));

	if (d.kill_timer)
		loop_timer_cancel(d.loop, d.kill_timer);
	unlink(d.cfg.c->listen);
	close(d.listen_fd);
	close(d.stream_fd);
	log_info("stopped");
	loop_free(d.loop);
	config_free(&d.cfg);
	return d.exit_code;
}
