/*
 * crisp: unit tests of netd's port-forward sockets (netd/portfwd.c): the
 * sockets a forked child creates after joining a pinned network namespace
 * belong to that namespace, not to netd's.  Needs root (skips otherwise).
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "netd/netns.h"
#include "netd/portfwd.h"

static int listener(int *port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static int connect_lo(int fd, int port)
{
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 ? 0 : errno;
}

/* The namespace pin and its directory, removed by the teardown even when
 * an assertion fails half way. */
static char dir[64];

static int cleanup(void **state)
{
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	if (dir[0] == '\0')
		return 0;
	(void)netns_delete(dir, "pod", &err);
	(void)umount2(dir, MNT_DETACH);
	(void)rmdir(dir);
	dir[0] = '\0';
	return 0;
}

static void test_sockets_live_in_the_pod_namespace(void **state)
{
	char path[256];
	crisp_err_t err = CRISP_ERR_INIT;
	int nsfd = -1, fd4 = -1, fd6 = -1, lfd, port, host, rc;

	(void)state;
	if (geteuid() != 0)
		skip(); /* reason: creating a network namespace needs root */
	strcpy(dir, "/tmp/crisp-pf-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(netns_create(dir, "pod", path, sizeof path, &nsfd, &err), 0);
	assert_int_equal(portfwd_ns_sockets(nsfd, &fd4, &fd6, &err), 0);
	assert_true(fd4 >= 0);
	lfd = listener(&port);
	/* A socket of netd's namespace reaches the host listener ... */
	host = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect_lo(host, port), 0);
	/* ... one made in the new namespace (its lo is down, nothing listens)
	 * does not. */
	rc = connect_lo(fd4, port);
	assert_true(rc == ENETUNREACH || rc == ECONNREFUSED || rc == EINPROGRESS);
	if (rc == EINPROGRESS) {
		int soerr = 0;
		socklen_t sl = sizeof soerr;

		usleep(100000);
		assert_int_equal(getsockopt(fd4, SOL_SOCKET, SO_ERROR, &soerr, &sl), 0);
		assert_int_not_equal(soerr, 0);
	}
	close(host);
	close(lfd);
	close(fd4);
	if (fd6 >= 0)
		close(fd6);
	close(nsfd);
	assert_int_equal(netns_delete(dir, "pod", &err), 0);
}

static void test_bad_namespace_fd(void **state)
{
	crisp_err_t err = CRISP_ERR_INIT;
	int fd4 = 7, fd6 = 7, nul;

	(void)state;
	if (geteuid() != 0)
		skip(); /* reason: the forked child's setns needs root */
	/* Not a namespace: the child's setns fails, nothing comes back. */
	nul = dup(STDIN_FILENO);
	assert_int_equal(portfwd_ns_sockets(nul, &fd4, &fd6, &err), -1);
	assert_int_equal(fd4, -1);
	assert_int_equal(fd6, -1);
	assert_int_equal(err.code, CRISP_INTERNAL);
	close(nul);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_sockets_live_in_the_pod_namespace, cleanup),
		cmocka_unit_test(test_bad_namespace_fd),
	};

	return cmocka_run_group_tests_name("stream_portfwd", tests, NULL, NULL);
}
