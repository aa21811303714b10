/*
 * crisp: event loop.  epoll for fds, a binary min-heap of one-shot timers,
 * signalfd for signals.  Registrations are kept in an array indexed by fd;
 * each carries a generation number that is also stored in the epoll event,
 * so events fetched for a registration that was removed (and maybe
 * replaced) during the same iteration are dropped.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/util.h"
#include "ipc/loop.h"

#define LOOP_MAX_EVENTS 64
#define LOOP_MAX_FD (1 << 20)

struct loop_reg {
	loop_fd_cb cb;
	void *arg;
	uint32_t gen; /* 0: slot empty */
};

struct loop_timer {
	uint64_t due_ms;
	uint64_t order; /* FIFO among equal deadlines */
	size_t idx;     /* position in the heap */
	loop_timer_cb cb;
	void *arg;
};

struct loop_sig {
	int signo;
	loop_signal_cb cb;
	void *arg;
};

struct loop {
	int epfd;
	bool stop;
	struct loop_reg *regs;
	size_t nregs;
	uint32_t gen;
	struct loop_timer **heap;
	size_t nheap, capheap;
	uint64_t order;
	int sigfd;
	sigset_t sigmask;
	struct loop_sig sigs[16];
	size_t nsigs;
};

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof *l);

	if (l == NULL)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	l->sigfd = -1;
	sigemptyset(&l->sigmask);
	return l;
}

void loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->nheap; i++)
		free(l->heap[i]);
	free(l->heap);
	free(l->regs);
	if (l->sigfd >= 0)
		close(l->sigfd);
	close(l->epfd);
	free(l);
}

static int reg_grow(struct loop *l, int fd)
{
	size_t n;
	struct loop_reg *r;

	if (fd < 0 || fd >= LOOP_MAX_FD) {
		errno = EBADF;
		return -1;
	}
	if ((size_t)fd < l->nregs)
		return 0;
	n = l->nregs ? l->nregs : 64;
	while (n <= (size_t)fd)
		n *= 2;
	r = realloc(l->regs, n * sizeof *r);
	if (r == NULL)
		return -1;
	memset(r + l->nregs, 0, (n - l->nregs) * sizeof *r);
	l->regs = r;
	l->nregs = n;
	return 0;
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *arg)
{
	struct epoll_event ev;

	if (reg_grow(l, fd) < 0)
		return -1;
	if (l->regs[fd].gen != 0) {
		errno = EEXIST;
		return -1;
	}
	if (++l->gen == 0)
		l->gen = 1;
	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.u64 = ((uint64_t)l->gen << 32) | (uint32_t)fd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -1;
	l->regs[fd].cb = cb;
	l->regs[fd].arg = arg;
	l->regs[fd].gen = l->gen;
	return 0;
}

int loop_mod(struct loop *l, int fd, uint32_t events)
{
	struct epoll_event ev;

	if (fd < 0 || (size_t)fd >= l->nregs || l->regs[fd].gen == 0) {
		errno = ENOENT;
		return -1;
	}
	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.u64 = ((uint64_t)l->regs[fd].gen << 32) | (uint32_t)fd;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
}

void loop_del(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nregs || l->regs[fd].gen == 0)
		return;
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->regs[fd].gen = 0;
	l->regs[fd].cb = NULL;
	l->regs[fd].arg = NULL;
}

/* ---- timers: binary min-heap on (due_ms, order) ---- */

static bool timer_less(const struct loop_timer *a, const struct loop_timer *b)
{
	return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->order < b->order);
}

static void heap_swap(struct loop *l, size_t i, size_t j)
{
	struct loop_timer *t = l->heap[i];
	l->heap[i] = l->heap[j];
	l->heap[j] = t;
	l->heap[i]->idx = i;
	l->heap[j]->idx = j;
}

static void heap_up(struct loop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!timer_less(l->heap[i], l->heap[p]))
			break;
		heap_swap(l, i, p);
		i = p;
	}
}

static void heap_down(struct loop *l, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1, m = i;
		if (c < l->nheap && timer_less(l->heap[c], l->heap[m]))
			m = c;
		if (c + 1 < l->nheap && timer_less(l->heap[c + 1], l->heap[m]))
			m = c + 1;
		if (m == i)
			break;
		heap_swap(l, i, m);
		i = m;
	}
}

static void heap_remove(struct loop *l, size_t i)
{
	l->nheap--;
	if (i != l->nheap) {
		l->heap[i] = l->heap[l->nheap];
		l->heap[i]->idx = i;
		heap_down(l, i);
		heap_up(l, i);
	}
}

struct loop_timer *loop_timer_add(struct loop *l, uint64_t ms, loop_timer_cb cb, void *arg)
{
	struct loop_timer *t;

	if (l->nheap == l->capheap) {
		size_t n = l->capheap ? 2 * l->capheap : 16;
		struct loop_timer **h = realloc(l->heap, n * sizeof *h);
		if (h == NULL)
			return NULL;
		l->heap = h;
		l->capheap = n;
	}
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return NULL;
	t->due_ms = crisp_now_ms() + ms;
	t->order = l->order++;
	t->cb = cb;
	t->arg = arg;
	t->idx = l->nheap;
	l->heap[l->nheap++] = t;
	heap_up(l, t->idx);
	return t;
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	if (t == NULL)
		return;
	if (t->idx < l->nheap && l->heap[t->idx] == t)
		heap_remove(l, t->idx);
	free(t);
}

static void run_timers(struct loop *l)
{
	uint64_t now = crisp_now_ms();

	while (l->nheap > 0 && l->heap[0]->due_ms <= now && !l->stop) {
		struct loop_timer *t = l->heap[0];
		heap_remove(l, 0);
		t->idx = (size_t)-1;
		loop_timer_cb cb = t->cb;
		void *arg = t->arg;
		free(t);
		cb(l, arg);
	}
}

static int next_timeout(struct loop *l, int timeout_ms)
{
	uint64_t now, wait;

	if (l->nheap == 0)
		return timeout_ms;
	now = crisp_now_ms();
	wait = l->heap[0]->due_ms > now ? l->heap[0]->due_ms - now : 0;
	if (wait > 60000)
		wait = 60000;
	if (timeout_ms >= 0 && (uint64_t)timeout_ms < wait)
		return timeout_ms;
	return (int)wait;
}

/* ---- signals ---- */

static void on_signalfd(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	(void)events;
	(void)arg;
	while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
		for (size_t i = 0; i < l->nsigs; i++)
			if (l->sigs[i].signo == (int)si.ssi_signo)
				l->sigs[i].cb(l, (int)si.ssi_signo, l->sigs[i].arg);
	}
}

int loop_signal(struct loop *l, int signo, loop_signal_cb cb, void *arg)
{
	int fd;

	if (l->nsigs == ARRAY_SIZE(l->sigs)) {
		errno = ENOSPC;
		return -1;
	}
	sigaddset(&l->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &l->sigmask, NULL) < 0)
		return -1;
	fd = signalfd(l->sigfd, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (l->sigfd < 0) {
		l->sigfd = fd;
		if (loop_add(l, fd, EPOLLIN, on_signalfd, NULL) < 0)
			return -1;
	}
	l->sigs[l->nsigs].signo = signo;
	l->sigs[l->nsigs].cb = cb;
	l->sigs[l->nsigs].arg = arg;
	l->nsigs++;
	return 0;
}

/* ---- running ---- */

int loop_run_once(struct loop *l, int timeout_ms)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];
	int n;

	n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, next_timeout(l, timeout_ms));
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		return -1;
	}
	for (int i = 0; i < n && !l->stop; i++) {
		int fd = (int)(uint32_t)evs[i].data.u64;
		uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
		struct loop_reg *r;

		if ((size_t)fd >= l->nregs)
			continue;
		r = &l->regs[fd];
		if (r->gen != gen || r->cb == NULL)
			continue; /* removed or replaced during this iteration */
		r->cb(l, fd, evs[i].events, r->arg);
	}
	run_timers(l);
	return 0;
}

int loop_run(struct loop *l)
{
	l->stop = false;
	while (!l->stop)
		if (loop_run_once(l, -1) < 0)
			return -1;
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}
