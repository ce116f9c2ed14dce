#include "actor/io.h"

#include <stdlib.h>

#include "actor/scheduler.h"
#include "actor/system.h"
#include "actor/timer.h"

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    gr__io *io = w->data;
    gr_system_stop(io->sys);
}

/*
 * Only one loop in a process may watch a signal (libev's rule). Systems that
 * want SIGINT/SIGTERM queue up here, oldest first; the head watches them.
 * When the head stops, the next one is told to take over.
 */
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static gr__io *sig_queue; /* Guarded by sig_lock; linked by sig_next. */

static void start_signals(gr__io *io)
{
    ev_signal_init(&io->sigint, on_signal, SIGINT);
    ev_signal_init(&io->sigterm, on_signal, SIGTERM);
    io->sigint.data = io;
    io->sigterm.data = io;
    ev_signal_start(io->loop, &io->sigint);
    ev_signal_start(io->loop, &io->sigterm);
    io->owns_signals = true;
}

static void stop_signals(gr__io *io)
{
    if (!io->owns_signals)
        return;
    ev_signal_stop(io->loop, &io->sigint);
    ev_signal_stop(io->loop, &io->sigterm);
    io->owns_signals = false;
}

/* Leaves the signal queue; if io was its head, hands the signals to the
 * next system. io's own watchers must be stopped already. */
static void leave_signal_queue(gr__io *io)
{
    pthread_mutex_lock(&sig_lock);
    gr__io **link = &sig_queue;
    while (*link != NULL && *link != io)
        link = &(*link)->sig_next;
    if (*link == io) {
        bool was_head = link == &sig_queue;
        *link = io->sig_next;
        if (was_head && sig_queue != NULL) {
            /* The next system's loop stays alive while it is queued (it
             * leaves under this lock before destroying its loop). release:
             * its on_wake sees the request with the async event. */
            atomic_store_explicit(&sig_queue->take_signals, true,
                                  memory_order_release);
            ev_async_send(sig_queue->loop, &sig_queue->wake);
        }
    }
    pthread_mutex_unlock(&sig_lock);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)revents;
    gr__io *io = w->data;
    /* acquire: pairs with the release store in gr__io_stop. */
    if (atomic_load_explicit(&io->quit, memory_order_acquire)) {
        stop_signals(io);
        ev_async_stop(loop, &io->wake);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    /* acquire: pairs with the release store in leave_signal_queue. */
    if (atomic_exchange_explicit(&io->take_signals, false,
                                 memory_order_acquire))
        start_signals(io);
    pthread_mutex_lock(&io->timer_lock);
    gr__io_job *job = io->jobs;
    io->jobs = io->jobs_tail = NULL;
    pthread_mutex_unlock(&io->timer_lock);
    while (job != NULL) {
        gr__io_job *next = job->next;
        bool owned = job->owned;
        job->fn(job->arg); /* An owned job may be posted again from here. */
        if (!owned)
            free(job);
        job = next;
    }
    gr__timers_poll(io);
}

static void on_dead_summary(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    gr__io *io = w->data;
    gr__dead_summary(&io->sys->dead, &io->sys->log);
}

static void *io_main(void *arg)
{
    gr__io *io = arg;
    /* Messages this thread delivers (from other nodes) come from its own
     * envelope pools rather than malloc. */
    gr__envpool_enter(io->sys->io_pools);
    ev_run(io->loop, 0);
    return NULL;
}

int gr__io_start(gr__io *io, gr_system *sys, bool handle_signals)
{
    io->sys = sys;
    io->started = false;
    io->owns_signals = false;
    io->sig_next = NULL;
    if (gr__timers_init(io) != GR_OK)
        return GR_ESYS;
    atomic_init(&io->quit, false);
    atomic_init(&io->take_signals, false);
    io->loop = ev_loop_new(EVFLAG_AUTO);
    if (io->loop == NULL) {
        gr__timers_destroy(io);
        return GR_ENOMEM;
    }
    ev_async_init(&io->wake, on_wake);
    io->wake.data = io;
    ev_async_start(io->loop, &io->wake);
    gr__timers_attach(io);
    double period = (double)sys->dead.summary_ms / 1000.0;
    ev_timer_init(&io->dead_summary, on_dead_summary, period, period);
    io->dead_summary.data = io;
    ev_timer_start(io->loop, &io->dead_summary);
    if (handle_signals) {
        pthread_mutex_lock(&sig_lock);
        gr__io **link = &sig_queue;
        while (*link != NULL)
            link = &(*link)->sig_next;
        *link = io;
        /* First in the queue: watch now, before the loop runs. */
        if (link == &sig_queue)
            start_signals(io);
        pthread_mutex_unlock(&sig_lock);
    }
    if (pthread_create(&io->thread, NULL, io_main, io) != 0) {
        stop_signals(io);
        leave_signal_queue(io);
        gr__timers_destroy(io);
        ev_loop_destroy(io->loop);
        io->loop = NULL;
        return GR_ESYS;
    }
    io->started = true;
    return GR_OK;
}

/* Queues job; frees it on refusal unless the caller owns it. */
static int enqueue(gr__io *io, gr__io_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&io->timer_lock);
    /* relaxed: under the lock that gr__io_stop's drain also takes. */
    if (atomic_load_explicit(&io->quit, memory_order_relaxed)) {
        pthread_mutex_unlock(&io->timer_lock);
        if (!job->owned)
            free(job);
        return GR_ESTOPPED;
    }
    if (io->jobs_tail != NULL)
        io->jobs_tail->next = job;
    else
        io->jobs = job;
    io->jobs_tail = job;
    pthread_mutex_unlock(&io->timer_lock);
    ev_async_send(io->loop, &io->wake);
    return GR_OK;
}

int gr__io_call(gr__io *io, void (*fn)(void *arg), void *arg)
{
    /* After gr__io_stop (workers are joined by then: only the stopping
     * thread gets here). */
    if (!io->started)
        return GR_ESTOPPED;
    gr__io_job *job = malloc(sizeof *job);
    if (job == NULL)
        return GR_ENOMEM;
    *job = (gr__io_job){fn, arg, NULL, false};
    return enqueue(io, job);
}

int gr__io_post(gr__io *io, gr__io_job *job)
{
    if (!io->started)
        return GR_ESTOPPED;
    job->owned = true;
    return enqueue(io, job);
}

bool gr__io_on_loop_thread(const gr__io *io)
{
    return io->started && pthread_equal(pthread_self(), io->thread);
}

struct ev_loop *gr__io_loop(gr__io *io)
{
    return io->loop;
}

void gr__io_stop(gr__io *io)
{
    if (!io->started)
        return;
    /* release: on_wake sees quit once it sees the async event. Under the
     * lock, so no job is queued after the loop's last look. */
    pthread_mutex_lock(&io->timer_lock);
    atomic_store_explicit(&io->quit, true, memory_order_release);
    pthread_mutex_unlock(&io->timer_lock);
    ev_async_send(io->loop, &io->wake);
    pthread_join(io->thread, NULL);
    /* Our watchers are stopped (on_wake did it): now the next system may
     * take the signals. */
    leave_signal_queue(io);
    /* Jobs the loop never ran run here, with the loop ended and not yet
     * destroyed, so what they own is not lost. */
    for (gr__io_job *job = io->jobs, *next; job != NULL; job = next) {
        next = job->next;
        bool owned = job->owned;
        job->fn(job->arg);
        if (!owned)
            free(job);
    }
    io->jobs = io->jobs_tail = NULL;
    gr__timers_destroy(io);
    ev_loop_destroy(io->loop);
    io->loop = NULL;
    io->started = false;
}
