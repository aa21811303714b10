/*
 * frontd: the only process that parses what kubelet sends.  It runs as its
 * own unprivileged user in an empty chroot, with no capabilities, Landlock
 * denying every filesystem access, and a seccomp allowlist.  It gets the
 * listening CRI socket from crispd as fd 5, the streaming server's TCP
 * listener as fd 6, and opens nothing itself once sandboxed (the streaming
 * TLS files, when configured, are read before: frontd/stream_tls.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "common/util.h"
#include "frontd/cri.h"
#include "frontd/events.h"
#include "frontd/stream_tls.h"

/* [streaming] tls_cert, tls_key, tls_client_ca as crispd passed them
 * (--stream-tls-*): read before the sandbox, fixed for frontd's life. */
static const char *tls_cert = "", *tls_key = "", *tls_client_ca = "";
static struct stream_tls *tls;

/* Who may call: the configured uids (kubelet, crictl as root). */
static bool accept_check(const struct ucred *cred, void *arg)
{
	struct frontd *f = arg;
	const Cipc__Config *c = f->role.config;

	for (size_t i = 0; c != NULL && i < c->n_allowed_uids; i++)
		if (c->allowed_uids[i] == cred->uid) {
			log_debug("CRI client pid %d uid %u gid %u", (int)cred->pid, (unsigned)cred->uid,
				  (unsigned)cred->gid);
			return true;
		}
	log_warn("refused CRI client pid %d uid %u: not in frontd.allowed_uids", (int)cred->pid,
		 (unsigned)cred->uid);
	return false;
}

/* The transport's limits are fixed when it starts: a reload that changes
 * them is refused (the whole reload aborts) rather than silently ignored. */
static int config_check(struct role_ctx *r, const Cipc__Config *c, crisp_err_t *err)
{
	const Cipc__Config *cur = r->config;

	if (strcmp(c->stream_tls_cert, tls_cert) || strcmp(c->stream_tls_key, tls_key) ||
	    strcmp(c->stream_tls_client_ca, tls_client_ca))
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
				   "streaming tls_cert, tls_key and tls_client_ca change only with a restart of crisp");
	if (cur == NULL)
		return 0;
	if (c->max_connections != cur->max_connections || c->max_streams != cur->max_streams ||
	    c->max_recv_msg_size != cur->max_recv_msg_size ||
	    c->max_header_list_size != cur->max_header_list_size)
		return crisp_error(err, CRISP_FAILED_PRECONDITION, 0,
				   "frontd limits (max_connections, max_streams, max_recv_msg_size, "
				   "max_header_list_size) change only with a restart of crisp");
	return 0;
}

static void config_apply(struct role_ctx *r, const Cipc__Config *c)
{
	struct frontd *f = r->arg;
	struct grpc_limits lim;
	crisp_err_t err = CRISP_ERR_INIT;

	if (f->server != NULL)
		return; /* limits are fixed at start; allowed_uids are read per connection */
	memset(&lim, 0, sizeof lim);
	lim.max_connections = c->max_connections;
	lim.max_streams_per_conn = c->max_streams;
	lim.max_recv_msg_size = c->max_recv_msg_size;
	lim.max_header_list_size = c->max_header_list_size;
	f->server = grpc_server_new(r->loop, f->listen_fd, cri_methods, cri_nmethods, &lim, f, &err);
	if (f->server == NULL)
		fatal("gRPC server: %s", err.msg);
	grpc_server_set_accept_check(f->server, accept_check, f);
	log_info("serving CRI");
	if (f->stream == NULL) {
		struct stream_backend be = { stream_ipc_open, &f->role };

		f->stream = stream_server_new(r->loop, f->stream_fd, f->stream_base, &be, NULL, &err);
		if (f->stream == NULL)
			fatal("streaming server: %s", err.msg);
		if (tls != NULL)
			stream_server_set_tls(f->stream, tls);
		log_info("streaming server on %s%s", f->stream_base,
			 tls == NULL				 ? ""
			 : stream_tls_verifies_clients(tls) ? " (TLS, client certificates required)"
							    : " (TLS)");
	}
}

static void stop(struct role_ctx *r)
{
	struct frontd *f = r->arg;

	events_close(f);
	if (f->server) {
		grpc_server_free(f->server);
		f->server = NULL;
	}
	if (f->stream) {
		stream_server_free(f->stream);
		f->stream = NULL;
	}
}

/* fd 6: a listening TCP socket; its address makes the URLs we hand out. */
static void stream_listener(struct frontd *f)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[INET6_ADDRSTRLEN];
	int acc = 0, port;
	socklen_t al = sizeof acc;

	f->stream_fd = ROLE_FD_FIRST_EXTRA + 1;
	if (getsockopt(f->stream_fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0 || !acc ||
	    getsockname(f->stream_fd, (struct sockaddr *)&ss, &sl) < 0)
		fatal("fd %d is not the streaming listener", f->stream_fd);
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
		port = ntohs(s4->sin_port);
		snprintf(f->stream_base, sizeof f->stream_base, "%s://%s:%d", tls ? "https" : "http", host, port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
		port = ntohs(s6->sin6_port);
		snprintf(f->stream_base, sizeof f->stream_base, "%s://[%s]:%d", tls ? "https" : "http", host, port);
	} else {
		fatal("fd %d: the streaming listener is not TCP", f->stream_fd);
	}
}

static const struct ipc_handler handlers[] = {
	ROLE_COMMON_HANDLERS,
	{ IPC_CTR_EVENT, events_on_ctr_event },
};

static void peer_changed(struct role_ctx *r, enum crisp_role peer, bool up)
{
	events_peer_changed(r->arg, peer, up);
}

static const struct role_ops ops = {
	.config_check = config_check,
	.config_apply = config_apply,
	.peer_changed = peer_changed,
	.stop = stop,
};

/* Take frontd's own flags out of argv (the rest are every role's). */
static int tls_args(int argc, char **argv)
{
	int n = 1;

	for (int i = 1; i < argc; i++) {
		const char **slot = NULL;

		if (!strcmp(argv[i], "--stream-tls-cert"))
			slot = &tls_cert;
		else if (!strcmp(argv[i], "--stream-tls-key"))
			slot = &tls_key;
		else if (!strcmp(argv[i], "--stream-tls-client-ca"))
			slot = &tls_client_ca;
		if (slot != NULL && i + 1 < argc) {
			*slot = argv[++i];
			continue;
		}
		argv[n++] = argv[i];
	}
	argv[n] = NULL;
	return n;
}

/* Build the TLS context while files can still be opened (frontd is root
 * and outside its chroot until sandbox_apply_role).  libssl must not read
 * openssl.cnf: at runtime the sandbox would kill frontd for it. */
static void tls_setup(void)
{
	crisp_err_t err = CRISP_ERR_INIT;

	if (*tls_cert == '\0' && *tls_key == '\0') {
		if (*tls_client_ca != '\0')
			fatal("streaming: tls_client_ca needs tls_cert and tls_key");
		return;
	}
	tls = stream_tls_new(tls_cert, tls_key, tls_client_ca, &err);
	if (tls == NULL)
		fatal("%s", err.msg);
	/* Checking a certificate's dates goes through mktime, whose first call
	 * reads /etc/localtime: load it now, once. */
	tzset();
}

int main(int argc, char **argv)
{
	static struct frontd f;
	crisp_err_t err = CRISP_ERR_INIT;
	struct stat st;
	int acc = 0;
	socklen_t sl = sizeof acc;

	argc = tls_args(argc, argv);
	role_parse_args(argc, argv, &f.args);
	role_init(&f.role, ROLE_FRONTD, &ops, handlers, ARRAY_SIZE(handlers), &f);
	f.listen_fd = ROLE_FD_FIRST_EXTRA;
	if (fstat(f.listen_fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    getsockopt(f.listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl) < 0 || !acc)
		fatal("fd %d is not the listening CRI socket", f.listen_fd);
	tls_setup();
	stream_listener(&f);
	if (f.args.chroot == NULL)
		fatal("frontd needs --chroot (its empty root)");
	/* jansson seeds its hash tables from /dev/urandom on first use, which
	 * the sandbox forbids: seed it now, from libsodium. */
	json_object_seed(randombytes_random() | 1u);
	if (sandbox_apply_role(ROLE_FRONTD, &f.args, &err) < 0)
		fatal("sandbox: %s", err.msg);
	return role_run(&f.role);
}
