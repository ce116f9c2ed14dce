/*
 * Timers on the I/O thread's libev loop, started and cancelled from any
 * thread through a command list.
 *
 * Waking the loop costs a system call, too much for every ask. So a start
 * wakes it only when the loop would otherwise look too late: while timers
 * are busy a 1 ms tick takes the commands, and the loop publishes when it
 * will next look (looks_by); a timer due before then, or a start while the
 * loop is idle, wakes it. Cancels never wake it unless many pile up. The
 * loop keeps armed timers in a map by id, so a cancel is O(1) there and
 * libev's heap makes arming O(log n).
 */
#include "actor/timer.h"

#include <grove/timer.h>

#include <stdlib.h>
#include <string.h>

#include "actor/clock.h"
#include "actor/io.h"
#include "actor/relations.h"
#include "actor/send.h"
#include "actor/system.h"

/* The tick's period while commands keep coming. */
#define TICK_NS 1000000u
/* Commands that wake the loop however late they are due. */
#define CMDS_WAKE 4096u

/* The value an actor's timer map holds for a one-shot or periodic timer. */
#define TIMER_ONCE  ((void *)1)
#define TIMER_EVERY ((void *)2)

/* One timer; owned by the command list, then by the loop thread. */
typedef struct gr__timer {
    ev_timer watcher; /* Its data points at the io. */
    uint64_t id;
    uint64_t due_ns;   /* Monotonic time of the first firing. */
    uint64_t every_ns; /* Period; 0 for a one-shot timer. */
    gr_msg msg;        /* What it sends; data points at payload. */
    unsigned char payload[];
} gr__timer;

/* A start (timer set) or a cancel (id only). */
typedef struct gr__timer_cmd {
    gr__timer *timer;
    uint64_t id;
} gr__timer_cmd;

/* Queues cmd; returns whether the loop must be woken for it. */
static int push_cmd(gr__io *io, gr__timer_cmd cmd, bool *wake)
{
    pthread_mutex_lock(&io->timer_lock);
    if (io->ncmds == io->cmds_cap) {
        size_t cap = io->cmds_cap ? io->cmds_cap * 2 : 64;
        gr__timer_cmd *v = realloc(io->cmds, cap * sizeof *v);
        if (v == NULL) {
            pthread_mutex_unlock(&io->timer_lock);
            return GR_ENOMEM;
        }
        io->cmds = v;
        io->cmds_cap = cap;
    }
    io->cmds[io->ncmds++] = cmd;
    *wake = io->ncmds % CMDS_WAKE == 0 ||
            (cmd.timer != NULL &&
             (io->looks_by == 0 || cmd.timer->due_ns < io->looks_by));
    pthread_mutex_unlock(&io->timer_lock);
    return GR_OK;
}

int gr__timer_send(gr_system *sys, uint64_t ms, uint64_t every_ms,
                   const gr_msg *m, uint64_t *id)
{
    gr__io *io = &sys->io;
    if (atomic_load_explicit(&sys->shutting_down, memory_order_relaxed))
        return GR_ESTOPPED;
    gr__timer *t = malloc(sizeof *t + m->len);
    if (t == NULL)
        return GR_ENOMEM;
    /* relaxed: ids only need to be unique. */
    t->id = atomic_fetch_add_explicit(&io->next_timer, 1, memory_order_relaxed);
    t->due_ns = gr__mono_ns() + gr__ms_to_ns(ms);
    t->every_ns = gr__ms_to_ns(every_ms);
    t->msg = *m;
    if (m->len > 0)
        memcpy(t->payload, m->data, m->len);
    t->msg.data = m->len > 0 ? t->payload : NULL;
    if (m->flags & GR_MSG_TIMER)
        t->msg.corr = t->id;
    uint64_t tid = t->id;
    bool wake;
    if (push_cmd(io, (gr__timer_cmd){t, tid}, &wake) != GR_OK) {
        free(t);
        return GR_ENOMEM;
    }
    if (wake)
        ev_async_send(io->loop, &io->wake);
    if (id != NULL)
        *id = tid;
    return GR_OK;
}

int gr__timer_start(gr_system *sys, uint64_t ms, gr_ref to, uint32_t type,
                    uint64_t corr, uint64_t *id)
{
    gr_msg m = {.type = type, .to = to, .corr = corr};
    return gr__timer_send(sys, ms, 0, &m, id);
}

void gr__timer_cancel(gr_system *sys, uint64_t id)
{
    gr__io *io = &sys->io;
    /* Shutting down: the loop may be gone; its timers die with it. */
    if (atomic_load_explicit(&sys->shutting_down, memory_order_relaxed))
        return;
    bool wake;
    /* Out of memory: the timer fires; receivers ignore stale timer
     * messages. */
    if (push_cmd(io, (gr__timer_cmd){NULL, id}, &wake) == GR_OK && wake)
        ev_async_send(io->loop, &io->wake);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    gr__io *io = w->data;
    uint64_t id = ((gr__timer *)w)->id;
    /* A cancel may be waiting in the commands: take them first. That may
     * free this very timer, so look it up again by its id (never reused). */
    gr__timers_poll(io);
    gr__timer *t = gr__refmap_get(&io->armed, gr__id_key(id));
    if (t == NULL)
        return; /* Cancelled just now. */
    int rc = gr__deliver_msg(io->sys, NULL, &t->msg);
    if (t->every_ns == 0 || rc == GR_ENOACTOR) {
        ev_timer_stop(loop, &t->watcher);
        (void)gr__refmap_take(&io->armed, gr__id_key(id));
        free(t);
    }
}

/* Arms t (loop thread). */
static void arm(gr__io *io, gr__timer *t, uint64_t now)
{
    double after = t->due_ns > now ? (double)(t->due_ns - now) / 1e9 : 0.;
    ev_timer_init(&t->watcher, on_timer, after, (double)t->every_ns / 1e9);
    t->watcher.data = io;
    if (gr__refmap_put(&io->armed, gr__id_key(t->id), t) != GR_OK) {
        /* Out of memory: the timer is lost rather than leaked. */
        free(t);
        return;
    }
    ev_timer_start(io->loop, &t->watcher);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    gr__timers_poll(w->data);
}

void gr__timers_poll(gr__io *io)
{
    gr__timer_cmd *cmds;
    size_t n;
    pthread_mutex_lock(&io->timer_lock);
    cmds = io->cmds;
    n = io->ncmds;
    io->cmds = NULL;
    io->ncmds = io->cmds_cap = 0;
    uint64_t now = gr__mono_ns();
    /* Commands came: look again after a tick. None: go idle, so the next
     * start wakes the loop. */
    io->looks_by = n > 0 ? now + TICK_NS : 0;
    pthread_mutex_unlock(&io->timer_lock);
    if (n > 0 && !ev_is_active(&io->tick)) {
        ev_timer_set(&io->tick, 0., (double)TICK_NS / 1e9);
        ev_timer_again(io->loop, &io->tick);
    } else if (n == 0 && ev_is_active(&io->tick)) {
        ev_timer_stop(io->loop, &io->tick);
    }
    ev_now_update(io->loop);
    for (size_t i = 0; i < n; i++) {
        if (cmds[i].timer != NULL) {
            arm(io, cmds[i].timer, now);
            continue;
        }
        gr__timer *t = gr__refmap_take(&io->armed, gr__id_key(cmds[i].id));
        if (t != NULL) {
            ev_timer_stop(io->loop, &t->watcher);
            free(t);
        }
    }
    free(cmds);
}

int gr__timers_init(gr__io *io)
{
    io->cmds = NULL;
    io->ncmds = io->cmds_cap = 0;
    io->looks_by = 0;
    io->armed = (gr__refmap){0};
    atomic_init(&io->next_timer, 1);
    return pthread_mutex_init(&io->timer_lock, NULL) == 0 ? GR_OK : GR_ESYS;
}

void gr__timers_attach(gr__io *io)
{
    ev_init(&io->tick, on_tick);
    io->tick.data = io;
}

static void free_timer(void *arg, gr_ref key, void *value)
{
    (void)arg;
    (void)key;
    free(value);
}

void gr__timers_destroy(gr__io *io)
{
    /* The loop is stopped or gone: its watchers need no stopping. */
    gr__refmap_each(&io->armed, free_timer, NULL);
    gr__refmap_clear(&io->armed);
    for (size_t i = 0; i < io->ncmds; i++)
        free(io->cmds[i].timer);
    free(io->cmds);
    io->cmds = NULL;
    io->ncmds = io->cmds_cap = 0;
    pthread_mutex_destroy(&io->timer_lock);
}

/* ---- an actor's own timers (grove/timer.h) ------------------------------ */

static int start_own(gr_ctx *ctx, uint64_t ms, uint64_t every_ms, uint32_t type,
                     const void *data, size_t len, uint64_t *id)
{
    if (ctx == NULL || type >= GR_MSG_RESERVED)
        return GR_EINVAL;
    gr__ctx_check(ctx); /* Its timers are its own, unlocked. */
    gr__actor *a = ctx->self;
    int rc = gr__check_payload(a->sys, data, len);
    if (rc != GR_OK)
        return rc;
    gr__relations *rel = gr__relations_of(a);
    if (rel == NULL)
        return GR_ENOMEM;
    gr_ref self = gr__actor_ref(a);
    gr_msg m = {.type = type,
                .flags = GR_MSG_TIMER,
                .from = self,
                .to = self,
                .data = data,
                .len = len};
    uint64_t tid;
    if ((rc = gr__timer_send(a->sys, ms, every_ms, &m, &tid)) != GR_OK)
        return rc;
    if (gr__refmap_put(&rel->timers, gr__id_key(tid),
                       every_ms ? TIMER_EVERY : TIMER_ONCE) != GR_OK) {
        gr__timer_cancel(a->sys, tid);
        return GR_ENOMEM;
    }
    if (id != NULL)
        *id = tid;
    return GR_OK;
}

int gr_timer_after(gr_ctx *ctx, uint64_t ms, uint32_t type, const void *data,
                   size_t len, uint64_t *id)
{
    return start_own(ctx, ms, 0, type, data, len, id);
}

int gr_timer_every(gr_ctx *ctx, uint64_t ms, uint32_t type, const void *data,
                   size_t len, uint64_t *id)
{
    if (ms == 0)
        return GR_EINVAL;
    return start_own(ctx, ms, ms, type, data, len, id);
}

int gr_timer_cancel(gr_ctx *ctx, uint64_t id)
{
    if (ctx == NULL || id == 0)
        return GR_EINVAL;
    gr__ctx_check(ctx);
    gr__actor *a = ctx->self;
    if (a->rel == NULL ||
        gr__refmap_take(&a->rel->timers, gr__id_key(id)) == NULL)
        return GR_ENOTFOUND;
    gr__timer_cancel(a->sys, id);
    return GR_OK;
}

gr__sig gr__timer_arrived(gr__actor *a, const gr_msg *m)
{
    void *kind = a->rel != NULL
                     ? gr__refmap_get(&a->rel->timers, gr__id_key(m->corr))
                     : NULL;
    if (kind == NULL)
        return GR__SIG_CONSUMED; /* Cancelled after it fired. */
    if (kind == TIMER_ONCE)
        (void)gr__refmap_take(&a->rel->timers, gr__id_key(m->corr));
    return GR__SIG_DELIVER;
}

/* Cancels one timer of an exiting actor. */
static void cancel_one(void *arg, gr_ref key, void *value)
{
    (void)value;
    gr__timer_cancel(arg, key.serial);
}

void gr__timers_exit(gr__actor *a)
{
    gr__refmap_each(&a->rel->timers, cancel_one, a->sys);
    gr__refmap_clear(&a->rel->timers);
}
