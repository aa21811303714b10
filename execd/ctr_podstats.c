/*
 * execd/ctr_podstats: a pod's network counters for PodSandboxStats.
 *
 * /sys/class/net shows the namespace of whoever mounted sysfs, but
 * /proc/self/net/dev follows the reader's own network namespace: a child
 * forked for the purpose joins the pod's namespace (setns on the pinned
 * path), copies that file into a pipe and exits.  execd never changes its
 * own namespaces, waits for the child at most PODNET_TIMEOUT_MS, then kills
 * and reaps it.  The text is parsed here, in execd, with bounds: interface
 * names are chosen by whoever has CAP_NET_ADMIN in the pod.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "execd/ctr_podstats.h"

#define DEV_HEADER "Inter-|"
#define DEV_FIELDS 16

/* One "name: n1 ... n16" line (NUL-terminated copy). */
static int parse_line(char *l, struct podnet_if *o)
{
	uint64_t f[DEV_FIELDS];
	char *p = l, *c;

	while (*p == ' ' || *p == '\t')
		p++;
	if ((c = strchr(p, ':')) == NULL)
		return -1;
	size_t nl = (size_t)(c - p);
	if (nl == 0 || nl >= sizeof o->name)
		return -1;
	for (size_t i = 0; i < nl; i++)
		if (p[i] <= ' ' || p[i] > '~' || p[i] == '/')
			return -1;
	memcpy(o->name, p, nl);
	o->name[nl] = '\0';
	p = c + 1;
	for (int i = 0; i < DEV_FIELDS; i++) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p < '0' || *p > '9')
			return -1;
		uint64_t v = 0;
		for (; *p >= '0' && *p <= '9'; p++) {
			unsigned d = (unsigned)(*p - '0');
			if (v > (UINT64_MAX - d) / 10)
				return -1; /* overflow */
			v = v * 10 + d;
		}
		f[i] = v;
	}
	/* receive: bytes packets errs ...; transmit (from field 8): the same */
	o->rx_bytes = f[0];
	o->rx_errors = f[2];
	o->tx_bytes = f[8];
	o->tx_errors = f[10];
	return 0;
}

int podnet_parse(const char *buf, size_t len, struct podnet_if *out, size_t max)
{
	char line[512];
	size_t pos = 0, lineno = 0, n = 0;

	if (len < strlen(DEV_HEADER) || memcmp(buf, DEV_HEADER, strlen(DEV_HEADER)) != 0)
		return -1;
	while (pos < len && n < max) {
		const char *s = buf + pos;
		const char *e = memchr(s, '\n', len - pos);
		size_t ll = e ? (size_t)(e - s) : len - pos;
		pos += ll + (e ? 1 : 0);
		if (lineno++ < 2 || ll == 0 || ll >= sizeof line)
			continue; /* the two header lines; nothing that long is a counter line */
		if (memchr(s, '\0', ll))
			continue;
		memcpy(line, s, ll);
		line[ll] = '\0';
		struct podnet_if o;
		memset(&o, 0, sizeof o);
		if (parse_line(line, &o) < 0 || strcmp(o.name, "lo") == 0)
			continue;
		out[n++] = o;
	}
	return (int)n;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void child(int nsfd, int out)
{
	char b[4096];
	ssize_t r;
	size_t total = 0;

	if (setns(nsfd, CLONE_NEWNET) < 0)
		_exit(2);
	int fd = open("/proc/self/net/dev", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		_exit(3);
	while (total < PODNET_DEV_MAX && (r = read(fd, b, sizeof b)) > 0) {
		size_t k = (size_t)r;
		if (k > PODNET_DEV_MAX - total)
			k = PODNET_DEV_MAX - total;
		const char *p = b;
		while (k > 0) {
			ssize_t w = write(out, p, k);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				_exit(4);
			p += w;
			k -= (size_t)w;
			total += (size_t)w;
		}
	}
	_exit(r < 0 ? 5 : 0);
}

int podnet_read(const char *netns_path, struct podnet_if *out, size_t max, crisp_err_t *err)
{
	int p[2], nsfd, status = 0;
	pid_t pid;
	char *buf;
	size_t len = 0;
	bool timed_out = false;

	if ((nsfd = open(netns_path, O_RDONLY | O_CLOEXEC)) < 0)
		return crisp_error(err, CRISP_INTERNAL, errno, "pod network namespace %.200s", netns_path);
	if ((buf = malloc(PODNET_DEV_MAX)) == NULL) {
		close(nsfd);
		return crisp_error(err, CRISP_RESOURCE_EXHAUSTED, ENOMEM, "execd");
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		int e = errno;
		free(buf);
		close(nsfd);
		return crisp_error(err, CRISP_INTERNAL, e, "pipe");
	}
	pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		free(buf);
		close(nsfd);
		return crisp_error(err, CRISP_INTERNAL, e, "fork");
	}
	if (pid == 0) {
		close(p[0]);
		child(nsfd, p[1]);
	}
	close(p[1]);
	close(nsfd);
	int64_t deadline = mono_ms() + PODNET_TIMEOUT_MS;
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		int r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			timed_out = r == 0;
			break;
		}
		if (len == PODNET_DEV_MAX)
			break; /* the child stops there */
		ssize_t n = read(p[0], buf + len, PODNET_DEV_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(p[0]);
	if (timed_out)
		(void)kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int n = -1;
	if (timed_out)
		crisp_error(err, CRISP_DEADLINE_EXCEEDED, 0, "reading the pod's network counters timed out");
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		crisp_error(err, CRISP_INTERNAL, 0, "reading the pod's network counters failed (step %d)",
			    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	else if ((n = podnet_parse(buf, len, out, max)) < 0)
		crisp_error(err, CRISP_INTERNAL, 0, "the pod's /proc/net/dev is unreadable");
	free(buf);
	return n;
}
