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

#include "actor/refmap.h"

struct gr__timer_cmd;

/* A function to run on the loop thread (see gr__io_call, gr__io_post). */
typedef struct gr__io_job {
    void (*fn)(void *arg);
    void *arg;
    struct gr__io_job *next;
    bool owned; /* The caller's storage (gr__io_post): not freed. */
} gr__io_job;

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
    /* Timer commands from any thread (see timer.h), guarded by
     * timer_lock; the loop thread takes them all at once. */
    pthread_mutex_t timer_lock;
    struct gr__timer_cmd *cmds;
    size_t ncmds, cmds_cap;
    /* Guarded by timer_lock: when the loop will next look at the commands
     * by itself (monotonic ns); 0 when it will not, so a start must wake
     * it. */
    uint64_t looks_by;
    _Atomic(uint64_t) next_timer; /* Timer ids; 0 is never used. */
    /* Loop thread only: armed timers by id, and the tick that takes
     * commands while timers are busy. */
    gr__refmap armed;
    ev_timer tick;
    ev_timer dead_summary; /* Logs the periodic dead-letter summary. */
    /* Jobs for the loop thread, oldest first; guarded by timer_lock. */
    gr__io_job *jobs, *jobs_tail;
} gr__io;

/*
 * Creates the loop and starts the thread. When handle_signals is true the
 * system queues for SIGINT/SIGTERM: the oldest such system in the process
 * watches them (each calls gr_system_stop(sys)), and when it stops the next
 * one takes over. Returns GR_OK, GR_ENOMEM or GR_ESYS.
 */
int gr__io_start(gr__io *io, gr_system *sys, bool handle_signals);

/*
 * Runs fn(arg) on the loop thread soon, after the jobs queued before it
 * (or, if the loop stops first, on the thread that stops it, after the
 * loop has ended); from any thread. Returns GR_OK, GR_ENOMEM, or
 * GR_ESTOPPED when the loop has stopped (fn then never runs).
 */
int gr__io_call(gr__io *io, void (*fn)(void *arg), void *arg);

/*
 * gr__io_call() with the caller's job storage (fn and arg set; the rest is
 * the queue's): no allocation, so it fails only with GR_ESTOPPED. The job
 * must stay put, and not be posted again, until fn has run.
 */
int gr__io_post(gr__io *io, gr__io_job *job);

/* Returns true on the loop's own thread. */
bool gr__io_on_loop_thread(const gr__io *io);

/* Returns the loop; only the loop thread may use it while it runs. */
struct ev_loop *gr__io_loop(gr__io *io);

/* Stops the loop, joins the thread and frees the loop. Idempotent. */
void gr__io_stop(gr__io *io);

#endif
