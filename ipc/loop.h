/*
 * crisp: the one event loop of each process (epoll, a timer heap, signalfd).
 *
 * Callbacks run on the loop's thread only.  An fd may be removed (and even
 * closed and reused) from inside any callback: events already fetched for
 * the old registration are dropped, not delivered to the new one.
 */
#ifndef CRISP_LOOP_H
#define CRISP_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;
struct loop_timer;

typedef void (*loop_fd_cb)(struct loop *l, int fd, uint32_t events, void *arg);
typedef void (*loop_timer_cb)(struct loop *l, void *arg);
typedef void (*loop_signal_cb)(struct loop *l, int signo, void *arg);

struct loop *loop_new(void);
void loop_free(struct loop *l);

/* events: EPOLLIN / EPOLLOUT (level-triggered).  Returns 0 or -1 (errno). */
int loop_add(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *arg);
int loop_mod(struct loop *l, int fd, uint32_t events);
/* Remove fd from the loop (does not close it).  Unknown fd: no-op. */
void loop_del(struct loop *l, int fd);

/* One-shot timer after ms milliseconds.  NULL on allocation failure. */
struct loop_timer *loop_timer_add(struct loop *l, uint64_t ms, loop_timer_cb cb, void *arg);
/* Cancel a pending timer (frees it).  Must not be called after it fired. */
void loop_timer_cancel(struct loop *l, struct loop_timer *t);

/* Block the signal and deliver it through the loop (signalfd). */
int loop_signal(struct loop *l, int signo, loop_signal_cb cb, void *arg);

/* Run until loop_stop(); returns 0, or -1 if epoll fails. */
int loop_run(struct loop *l);
/* Run one iteration, waiting at most timeout_ms (-1: until an event). */
int loop_run_once(struct loop *l, int timeout_ms);
void loop_stop(struct loop *l);

#endif
