#include "actor/io.h"

#include "actor/scheduler.h"

/* Only one loop in a process may watch a signal (libev's rule), so the
 * first system to start takes SIGINT/SIGTERM and later ones do without. */
static _Atomic(bool) signals_taken;

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    gr__io *io = w->data;
    gr_system_stop(io->sys);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)revents;
    gr__io *io = w->data;
    /* acquire: pairs with the release store in gr__io_stop. */
    if (!atomic_load_explicit(&io->quit, memory_order_acquire))
        return;
    if (io->owns_signals) {
        ev_signal_stop(loop, &io->sigint);
        ev_signal_stop(loop, &io->sigterm);
    }
    ev_async_stop(loop, &io->wake);
    ev_break(loop, EVBREAK_ALL);
}

static void *io_main(void *arg)
{
    gr__io *io = arg;
    ev_run(io->loop, 0);
    return NULL;
}

int gr__io_start(gr__io *io, gr_system *sys, bool handle_signals)
{
    io->sys = sys;
    io->started = false;
    io->owns_signals = false;
    atomic_init(&io->quit, false);
    io->loop = ev_loop_new(EVFLAG_AUTO);
    if (io->loop == NULL)
        return GR_ENOMEM;
    ev_async_init(&io->wake, on_wake);
    io->wake.data = io;
    ev_async_start(io->loop, &io->wake);
    if (handle_signals) {
        bool expected = false;
        /* acq_rel: the flag hands libev's per-signal state between systems. */
        if (atomic_compare_exchange_strong_explicit(&signals_taken, &expected,
                                                    true, memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            io->owns_signals = true;
            ev_signal_init(&io->sigint, on_signal, SIGINT);
            ev_signal_init(&io->sigterm, on_signal, SIGTERM);
            io->sigint.data = io;
            io->sigterm.data = io;
            ev_signal_start(io->loop, &io->sigint);
            ev_signal_start(io->loop, &io->sigterm);
        }
    }
    if (pthread_create(&io->thread, NULL, io_main, io) != 0) {
        if (io->owns_signals) {
            ev_signal_stop(io->loop, &io->sigint);
            ev_signal_stop(io->loop, &io->sigterm);
            atomic_store_explicit(&signals_taken, false, memory_order_release);
        }
        ev_loop_destroy(io->loop);
        io->loop = NULL;
        return GR_ESYS;
    }
    io->started = true;
    return GR_OK;
}

void gr__io_stop(gr__io *io)
{
    if (!io->started)
        return;
    /* release: on_wake sees quit once it sees the async event. */
    atomic_store_explicit(&io->quit, true, memory_order_release);
    ev_async_send(io->loop, &io->wake);
    pthread_join(io->thread, NULL);
    ev_loop_destroy(io->loop);
    io->loop = NULL;
    io->started = false;
    if (io->owns_signals) {
        io->owns_signals = false;
        atomic_store_explicit(&signals_taken, false, memory_order_release);
    }
}
