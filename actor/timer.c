#include "actor/timer.h"

#include <stdlib.h>

#include "actor/io.h"
#include "actor/send.h"
#include "actor/system.h"

/* One timer; owned by the request list, then by the loop thread. */
typedef struct gr__timer {
    ev_timer watcher; /* Its data points at the io. */
    uint64_t id;
    gr_ref to;
    uint32_t type;
    uint64_t corr;
    double after; /* Seconds. */
    struct gr__timer *prev, *next;
} gr__timer;

static void unlink_armed(gr__io *io, gr__timer *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        io->armed = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    gr__timer *t = (gr__timer *)w;
    gr__io *io = w->data;
    unlink_armed(io, t);
    (void)gr__deliver(io->sys, NULL, t->type, GR_REF_NONE, t->to, t->corr, NULL,
                      0);
    free(t);
}

int gr__timer_start(gr_system *sys, uint64_t ms, gr_ref to, uint32_t type,
                    uint64_t corr, uint64_t *id)
{
    gr__io *io = &sys->io;
    if (atomic_load_explicit(&sys->shutting_down, memory_order_relaxed))
        return GR_ESTOPPED;
    gr__timer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return GR_ENOMEM;
    t->to = to;
    t->type = type;
    t->corr = corr;
    t->after = (double)ms / 1000.0;
    pthread_mutex_lock(&io->timer_lock);
    t->id = io->next_timer++;
    t->next = io->timer_starts;
    io->timer_starts = t;
    pthread_mutex_unlock(&io->timer_lock);
    if (id != NULL)
        *id = t->id;
    ev_async_send(io->loop, &io->wake);
    return GR_OK;
}

void gr__timer_cancel(gr_system *sys, uint64_t id)
{
    gr__io *io = &sys->io;
    /* Shutting down: the loop may be gone; its timers die with it. */
    if (atomic_load_explicit(&sys->shutting_down, memory_order_relaxed))
        return;
    pthread_mutex_lock(&io->timer_lock);
    /* Not armed yet: drop it here. */
    for (gr__timer **p = &io->timer_starts; *p != NULL; p = &(*p)->next) {
        if ((*p)->id == id) {
            gr__timer *t = *p;
            *p = t->next;
            pthread_mutex_unlock(&io->timer_lock);
            free(t);
            return;
        }
    }
    if (io->ncancels == io->cancels_cap) {
        size_t cap = io->cancels_cap ? io->cancels_cap * 2 : 16;
        uint64_t *v = realloc(io->timer_cancels, cap * sizeof *v);
        if (v == NULL) {
            /* The timer fires; its receiver ignores stale timer messages. */
            pthread_mutex_unlock(&io->timer_lock);
            return;
        }
        io->timer_cancels = v;
        io->cancels_cap = cap;
    }
    io->timer_cancels[io->ncancels++] = id;
    pthread_mutex_unlock(&io->timer_lock);
    ev_async_send(io->loop, &io->wake);
}

void gr__timers_poll(gr__io *io)
{
    pthread_mutex_lock(&io->timer_lock);
    gr__timer *starts = io->timer_starts;
    io->timer_starts = NULL;
    uint64_t *cancels = io->timer_cancels;
    size_t ncancels = io->ncancels;
    io->timer_cancels = NULL;
    io->ncancels = io->cancels_cap = 0;
    pthread_mutex_unlock(&io->timer_lock);
    ev_now_update(io->loop);
    while (starts != NULL) {
        gr__timer *t = starts;
        starts = t->next;
        ev_timer_init(&t->watcher, on_timer, t->after, 0.);
        t->watcher.data = io;
        t->prev = NULL;
        t->next = io->armed;
        if (io->armed != NULL)
            io->armed->prev = t;
        io->armed = t;
        ev_timer_start(io->loop, &t->watcher);
    }
    /* Cancels scan the armed list: few timers are pending at once (one
     * per supervisor stopping a child, one per backoff). */
    for (size_t i = 0; i < ncancels; i++) {
        for (gr__timer *t = io->armed; t != NULL; t = t->next) {
            if (t->id == cancels[i]) {
                ev_timer_stop(io->loop, &t->watcher);
                unlink_armed(io, t);
                free(t);
                break;
            }
        }
    }
    free(cancels);
}

void gr__timers_destroy(gr__io *io)
{
    for (gr__timer *t = io->armed, *next; t != NULL; t = next) {
        next = t->next;
        ev_timer_stop(io->loop, &t->watcher);
        free(t);
    }
    io->armed = NULL;
    for (gr__timer *t = io->timer_starts, *next; t != NULL; t = next) {
        next = t->next;
        free(t);
    }
    io->timer_starts = NULL;
    free(io->timer_cancels);
    io->timer_cancels = NULL;
    io->ncancels = io->cancels_cap = 0;
}
