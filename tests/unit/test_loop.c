/*
 * crisp: unit tests of ipc/loop.c (fd callbacks, removal and replacement
 * inside callbacks, timers, signals).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "ipc/loop.h"

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

struct fdrec {
	int calls;
	int fd;
	uint32_t events;
	int del_fd; /* loop_del and close this one inside the callback */
};

static void fd_cb(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct fdrec *r = arg;
	char c;

	r->calls++;
	r->fd = fd;
	r->events = events;
	if (events & EPOLLIN)
		assert_int_equal(read(fd, &c, 1), 1);
	if (r->del_fd >= 0) {
		loop_del(l, r->del_fd);
		close(r->del_fd);
		r->del_fd = -1;
	}
}

static void test_fd_callback(void **state)
{
	int before = count_fds();
	struct loop *l = loop_new();
	struct fdrec r = { .del_fd = -1 };
	int p[2];

	(void)state;
	assert_non_null(l);
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(loop_add(l, p[0], EPOLLIN, fd_cb, &r), 0);
	/* Nothing readable: a bounded wait returns without a call. */
	assert_int_equal(loop_run_once(l, 10), 0);
	assert_int_equal(r.calls, 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(loop_run_once(l, 1000), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.fd, p[0]);
	assert_true(r.events & EPOLLIN);
	/* The byte was consumed: level-triggered, no second call. */
	assert_int_equal(loop_run_once(l, 10), 0);
	assert_int_equal(r.calls, 1);

	/* Adding twice is refused; unknown fds are ignored by del/mod. */
	errno = 0;
	assert_int_equal(loop_add(l, p[0], EPOLLIN, fd_cb, &r), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(loop_add(l, -1, EPOLLIN, fd_cb, &r), -1);
	loop_del(l, 9999);
	assert_int_equal(loop_mod(l, p[1], EPOLLOUT), -1);

	/* loop_mod: the write end, registered for nothing, then EPOLLOUT. */
	struct fdrec w = { .del_fd = -1 };
	assert_int_equal(loop_add(l, p[1], 0, fd_cb, &w), 0);
	assert_int_equal(loop_run_once(l, 10), 0);
	assert_int_equal(w.calls, 0);
	assert_int_equal(loop_mod(l, p[1], EPOLLOUT), 0);
	assert_int_equal(loop_run_once(l, 1000), 0);
	assert_int_equal(w.calls, 1);
	assert_true(w.events & EPOLLOUT);

	/* Deleted fds get no more calls. */
	loop_del(l, p[1]);
	loop_del(l, p[0]);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(loop_run_once(l, 10), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(w.calls, 1);
	close(p[0]);
	close(p[1]);
	loop_free(l);
	assert_int_equal(count_fds(), before);
}

/* Two readable fds; whichever runs first deletes and closes the other, then
 * opens a new readable pipe (it reuses the number) and registers it.  The
 * event already fetched for the old registration must not reach the new
 * one in this iteration; the new one gets its own event next time. */
struct pair {
	struct loop *l;
	int fd[2];
	int calls[2];
	int newfd[2]; /* read end of the replacement pipe */
	int newwr;
	int newcalls;
};

static void new_cb(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct pair *p = arg;
	char c;

	(void)l;
	(void)events;
	p->newcalls++;
	assert_int_equal(read(fd, &c, 1), 1);
}

static void pair_cb(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct pair *p = arg;
	int me = fd == p->fd[0] ? 0 : 1, other = 1 - me;
	int np[2];
	char c;

	(void)events;
	p->calls[me]++;
	assert_int_equal(read(fd, &c, 1), 1);
	if (p->fd[other] < 0)
		return;
	loop_del(l, p->fd[other]);
	close(p->fd[other]);
	assert_int_equal(pipe2(np, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(np[0], p->fd[other]); /* the number was reused */
	p->fd[other] = -1;
	p->newfd[0] = np[0];
	p->newwr = np[1];
	assert_int_equal(write(np[1], "y", 1), 1);
	assert_int_equal(loop_add(l, np[0], EPOLLIN, new_cb, p), 0);
}

static void test_fd_replace_in_callback(void **state)
{
	int before = count_fds();
	struct loop *l = loop_new();
	struct pair p = { .l = l, .newfd = { -1, -1 }, .newwr = -1 };
	int a[2], b[2];

	(void)state;
	assert_int_equal(pipe2(a, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(pipe2(b, O_CLOEXEC | O_NONBLOCK), 0);
	p.fd[0] = a[0];
	p.fd[1] = b[0];
	assert_int_equal(loop_add(l, a[0], EPOLLIN, pair_cb, &p), 0);
	assert_int_equal(loop_add(l, b[0], EPOLLIN, pair_cb, &p), 0);
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "x", 1), 1);
	/* Make sure both events are fetched by one epoll_wait. */
	usleep(1000);
	assert_int_equal(loop_run_once(l, 1000), 0);
	assert_int_equal(p.calls[0] + p.calls[1], 1);
	assert_int_equal(p.newcalls, 0);
	assert_int_equal(loop_run_once(l, 1000), 0);
	assert_int_equal(p.newcalls, 1);
	assert_int_equal(p.calls[0] + p.calls[1], 1);

	loop_del(l, p.newfd[0]);
	for (int i = 0; i < 2; i++)
		if (p.fd[i] >= 0) {
			loop_del(l, p.fd[i]);
			close(p.fd[i]);
		}
	close(p.newfd[0]);
	close(p.newwr);
	close(a[1]);
	close(b[1]);
	loop_free(l);
	assert_int_equal(count_fds(), before);
}

/* A callback that deletes its own fd and the one after it. */
static void test_fd_delete_self(void **state)
{
	int before = count_fds();
	struct loop *l = loop_new();
	struct fdrec r = { .del_fd = -1 };
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	r.del_fd = p[0];
	assert_int_equal(loop_add(l, p[0], EPOLLIN, fd_cb, &r), 0);
	assert_int_equal(write(p[1], "xx", 2), 2);
	assert_int_equal(loop_run_once(l, 1000), 0);
	assert_int_equal(r.calls, 1);
	/* Its fd is closed and gone from the loop: no further calls. */
	assert_int_equal(loop_run_once(l, 10), 0);
	assert_int_equal(r.calls, 1);
	close(p[1]);
	loop_free(l);
	assert_int_equal(count_fds(), before);
}

struct trec {
	int order[16];
	int n;
};

struct tctx {
	struct trec *rec;
	int id;
	struct loop_timer **cancel; /* cancel this timer when firing */
};

static void timer_cb(struct loop *l, void *arg)
{
	struct tctx *t = arg;

	t->rec->order[t->rec->n++] = t->id;
	if (t->cancel != NULL && *t->cancel != NULL) {
		loop_timer_cancel(l, *t->cancel);
		*t->cancel = NULL;
	}
}

static void run_for(struct loop *l, int ms)
{
	uint64_t end = crisp_now_ms() + (uint64_t)ms;

	while (crisp_now_ms() < end)
		assert_int_equal(loop_run_once(l, 5), 0);
}

static void test_timers(void **state)
{
	int before = count_fds();
	struct loop *l = loop_new();
	struct trec rec = { 0 };
	struct loop_timer *t40, *t25;
	struct tctx c30 = { &rec, 30, NULL }, c10a = { &rec, 10, NULL },
		    c20 = { &rec, 20, NULL }, c10b = { &rec, 11, NULL },
		    c40 = { &rec, 40, NULL }, c0 = { &rec, 0, NULL },
		    c25 = { &rec, 25, NULL }, c5 = { &rec, 5, NULL };

	(void)state;
	assert_non_null(loop_timer_add(l, 30, timer_cb, &c30));
	assert_non_null(loop_timer_add(l, 10, timer_cb, &c10a));
	assert_non_null(loop_timer_add(l, 20, timer_cb, &c20));
	assert_non_null(loop_timer_add(l, 10, timer_cb, &c10b)); /* same deadline: FIFO */
	t40 = loop_timer_add(l, 40, timer_cb, &c40);
	assert_non_null(t40);
	assert_non_null(loop_timer_add(l, 0, timer_cb, &c0));
	t25 = loop_timer_add(l, 25, timer_cb, &c25);
	assert_non_null(t25);
	/* 5 fires first and cancels 25 from inside its callback. */
	c5.cancel = &t25;
	assert_non_null(loop_timer_add(l, 5, timer_cb, &c5));
	loop_timer_cancel(l, t40);
	run_for(l, 80);
	int want[] = { 0, 5, 10, 11, 20, 30 };
	assert_int_equal(rec.n, (int)ARRAY_SIZE(want));
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		assert_int_equal(rec.order[i], want[i]);
	/* A timer still pending when the loop is freed is freed with it. */
	assert_non_null(loop_timer_add(l, 100000, timer_cb, &c30));
	loop_free(l);
	assert_int_equal(count_fds(), before);
}

/* Many timers in random order come out sorted (exercises the heap). */
static void test_timer_heap(void **state)
{
	struct loop *l = loop_new();
	struct trec rec = { 0 };
	struct tctx c[16];
	struct loop_timer *t[16];
	unsigned seed = 12345;

	(void)state;
	for (int i = 0; i < 16; i++) {
		seed = seed * 1103515245u + 12345u;
		c[i] = (struct tctx){ &rec, (int)((seed >> 16) % 40), NULL };
		t[i] = loop_timer_add(l, (uint64_t)c[i].id, timer_cb, &c[i]);
		assert_non_null(t[i]);
	}
	/* Cancel a few from the middle of the heap. */
	loop_timer_cancel(l, t[3]);
	loop_timer_cancel(l, t[7]);
	loop_timer_cancel(l, t[11]);
	run_for(l, 80);
	assert_int_equal(rec.n, 13);
	for (int i = 1; i < rec.n; i++)
		assert_true(rec.order[i - 1] <= rec.order[i]);
	loop_free(l);
}

struct sigrec {
	int calls;
	int signo;
};

static void sig_cb(struct loop *l, int signo, void *arg)
{
	struct sigrec *s = arg;

	s->calls++;
	s->signo = signo;
	loop_stop(l);
}

static void test_signals(void **state)
{
	int before = count_fds();
	struct loop *l = loop_new();
	struct sigrec s1 = { 0 }, s2 = { 0 };
	sigset_t set;

	(void)state;
	assert_int_equal(loop_signal(l, SIGUSR1, sig_cb, &s1), 0);
	assert_int_equal(loop_signal(l, SIGUSR2, sig_cb, &s2), 0);
	assert_int_equal(raise(SIGUSR2), 0); /* blocked: waits in the signalfd */
	assert_int_equal(loop_run(l), 0);     /* sig_cb stops the loop */
	assert_int_equal(s2.calls, 1);
	assert_int_equal(s2.signo, SIGUSR2);
	assert_int_equal(s1.calls, 0);
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(s1.calls, 1);
	assert_int_equal(s2.calls, 1);
	loop_free(l);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	assert_int_equal(sigprocmask(SIG_UNBLOCK, &set, NULL), 0);
	assert_int_equal(count_fds(), before);
}

static void stop_cb(struct loop *l, void *arg)
{
	(*(int *)arg)++;
	loop_stop(l);
}

static void test_run_stop(void **state)
{
	struct loop *l = loop_new();
	int n = 0;

	(void)state;
	assert_non_null(loop_timer_add(l, 5, stop_cb, &n));
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(n, 1);
	/* loop_run starts again after a stop. */
	assert_non_null(loop_timer_add(l, 1, stop_cb, &n));
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(n, 2);
	loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fd_callback),
		cmocka_unit_test(test_fd_replace_in_callback),
		cmocka_unit_test(test_fd_delete_self),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_timer_heap),
		cmocka_unit_test(test_signals),
		cmocka_unit_test(test_run_stop),
	};

	return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
