/*
 * The I/O thread: one libev loop per system. Only this thread touches the
 * loop; other threads reach it with gr__io_* calls, which use ev_async_send.
 * For now it turns SIGINT/SIGTERM into a stop request; timers, sockets and
 * child watchers will live here too.
 */
#ifndef GROVE_ACTOR_IO_H
#define GROVE_ACTOR_IO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <ev.h>

#include <grove/system.h>

struct gr__timer;

/* The I/O thread of one system. */
typedef struct gr__io {
    struct ev_loop *loop;
    ev_async wake;    /* Any thread -> loop: look at quit. */
    ev_signal sigint; /* Started only when this system owns the signals. */
    ev_signal sigterm;
    pthread_t thread;
    bool owns_signals; /* Loop thread: sigint/sigterm are started. */
    bool started;
    _Atomic(bool) quit;
    _Atomic(bool) take_signals; /* Set when this system is to watch them. */
    struct gr__io *sig_next;    /* Next system waiting for the signals. */
    gr_system *sys;
    /* Timer requests from any thread (see timer.h), guarded by
     * timer_lock; the loop thread moves them into its own lists. */
    pthread_mutex_t timer_lock;
    struct gr__timer *timer_starts; /* Started, not yet armed. */
    uint64_t *timer_cancels;        /* Ids to cancel. */
    size_t ncancels, cancels_cap;
    uint64_t next_timer;     /* Guarded by timer_lock; 0 unused. */
    struct gr__timer *armed; /* Loop thread only. */
} gr__io;

/*
 * Creates the loop and starts the thread. When handle_signals is true the
 * system queues for SIGINT/SIGTERM: the oldest such system in the process
 * watches them (each calls gr_system_stop(sys)), and when it stops the next
 * one takes over. Returns GR_OK, GR_ENOMEM or GR_ESYS.
 */
int gr__io_start(gr__io *io, gr_system *sys, bool handle_signals);

/* Stops the loop, joins the thread and frees the loop. Idempotent. */
void gr__io_stop(gr__io *io);

#endif
