#include "actor/actor.h"

#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#include "actor/assert.h"
#include "actor/message.h"
#include "actor/monitor.h"
#include "actor/system.h"

_Thread_local int gr__callback_depth;

/* Actors are cache-line aligned so the mailbox head gets a line alone. */
#define ACTOR_ALIGN 64
/* Alignment malloc guarantees on the platforms Grove supports (glibc). */
#define MALLOC_ALIGN 16

/*
 * Allocates size bytes aligned to ACTOR_ALIGN, zeroed. By hand rather than
 * aligned_alloc: glibc's memalign costs ~120 bytes per block here, which is
 * most of an idle actor's footprint; a 48-byte pad inside one malloc block
 * costs at most 48.
 */
static gr__actor *actor_alloc(size_t size)
{
    char *raw = malloc(size + ACTOR_ALIGN - MALLOC_ALIGN);
    if (raw == NULL)
        return NULL;
    size_t skew = (ACTOR_ALIGN - (uintptr_t)raw % ACTOR_ALIGN) % ACTOR_ALIGN;
    gr__actor *a = (gr__actor *)(raw + skew);
    memset(a, 0, size);
    a->align_skew = (uint8_t)skew;
    return a;
}

static void actor_free(gr__actor *a)
{
    free((char *)a - a->align_skew);
}

gr_ref gr__actor_ref(const gr__actor *a)
{
    return (gr_ref){a->serial, 0, a->sys->incarnation};
}

int gr__actor_spawn(gr_system *sys, gr__worker *w, const gr_behaviour *b,
                    uint32_t flags, const void *arg, size_t arg_len,
                    gr__actor **out_actor, gr_ref *out)
{
    /* relaxed: a late refusal is harmless; shutdown's sweep finds actors
     * spawned just before it. */
    if (atomic_load_explicit(&sys->shutting_down, memory_order_relaxed))
        return GR_ESTOPPED;
    gr__actor *a = actor_alloc(sizeof(gr__actor) + b->state_size);
    if (a == NULL)
        return GR_ENOMEM;
    gr__mailbox_init(&a->mb_head, &a->mb_tail);
    a->sys = sys;
    a->b = b;
    a->flags = flags;
    /* relaxed: only a total order of spawns is needed, not visibility. */
    a->seq = atomic_fetch_add_explicit(&sys->next_seq, 1, memory_order_relaxed);
    int rc = gr__idtable_alloc(&sys->ids, a, &a->serial);
    if (rc != GR_OK) {
        actor_free(a);
        return rc;
    }
    atomic_fetch_add_explicit(&sys->spawned, 1, memory_order_relaxed);
    if (b->init != NULL) {
        gr_ctx ctx = {a, w};
        gr__callback_depth++;
        rc = b->init(&ctx, gr__actor_state(a), arg, arg_len);
        gr__callback_depth--;
        if (rc != GR_OK) {
            rc = rc < 0 ? rc : GR_EINIT;
            /* As in OTP, terminate does not run when init fails. */
            gr__actor_exit(a, w, rc, NULL, GR__EXIT_INIT_FAILED);
            return rc;
        }
    }
    if (gr__log_enabled(&sys->log, GR_LOG_DEBUG)) {
        char ref[GR__REF_STR_MAX];
        gr__log(&sys->log, GR_LOG_DEBUG, "spawn %s (%s)",
                gr__ref_format(ref, gr__actor_ref(a)), b->name ? b->name : "");
    }
    if (out != NULL)
        *out = gr__actor_ref(a);
    if (out_actor != NULL)
        *out_actor = a;
    /* The mailbox was owned during init; messages sent meanwhile (also by
     * init to itself) make the actor runnable now. */
    if (!gr__mailbox_mark_empty(&a->mb_head, &a->mb_tail)) {
        GR_ASSERT(!(flags & GR__ACTOR_INBOX));
        gr__sched_submit(&sys->sched, w, a);
    }
    return GR_OK;
}

/* Maps a handler's return value to "keep running" (false) or an exit
 * reason in *reason (true). GR_CONTINUE and GR_OK are both 0, so the
 * normal-exit reason cannot double as the "continue" marker. */
static bool handler_exits(int r, int *reason)
{
    if (r == GR_CONTINUE)
        return false;
    *reason = r == GR_STOP ? GR_OK : r < 0 ? r : GR_EFAILED;
    return true;
}

void gr__actor_run(gr__worker *w, gr__actor *a)
{
    gr_ctx ctx = {a, w};
    unsigned n = 0, handled = 0;
    while (n < GR__BATCH) {
        gr__node *node = gr__mailbox_pop(&a->mb_head, &a->mb_tail);
        if (node == NULL)
            break;
        n++;
        gr__env *e = (gr__env *)node;
        int reason = GR_ESHUTDOWN;
        bool exits;
        if (e->msg.type == GR__MSG_STOP) {
            exits = true;
        } else if (e->msg.type >= GR_MSG_RESERVED &&
                   gr__monitor_signal(a, w, &e->msg)) {
            exits = false; /* The runtime's own business. */
        } else {
            handled++;
            gr__callback_depth++;
            int r = a->b->handle(&ctx, gr__actor_state(a), &e->msg);
            gr__callback_depth--;
            exits = handler_exits(r, &reason);
        }
        if (exits) {
            gr__stat_inc(&w->stats.delivered, handled);
            gr__actor_exit(a, w, reason, &e->msg, GR__EXIT_TERMINATE);
            gr__env_free(e);
            return;
        }
        gr__env_free(e);
    }
    gr__stat_inc(&w->stats.delivered, handled);
    if (n == GR__BATCH || !gr__mailbox_mark_empty(&a->mb_head, &a->mb_tail))
        gr__sched_requeue(&a->sys->sched, w, a);
}

/* Logs an exit: crashes and failed inits at error level, the rest at
 * debug level. */
static void log_exit(gr__actor *a, int reason, const gr_msg *during,
                     unsigned how)
{
    gr_system *sys = a->sys;
    bool failed = reason != GR_OK && reason != GR_ESHUTDOWN;
    gr_log_level level = failed ? GR_LOG_ERROR : GR_LOG_DEBUG;
    if (!gr__log_enabled(&sys->log, level))
        return;
    char ref[GR__REF_STR_MAX];
    const char *name = a->b->name ? a->b->name : "";
    gr__ref_format(ref, gr__actor_ref(a));
    if (!failed)
        gr__log(&sys->log, level, "exit %s (%s): %s", ref, name,
                reason == GR_OK ? "normal" : "shutdown");
    else if (how & GR__EXIT_INIT_FAILED)
        gr__log(&sys->log, level, "init failed %s (%s): %s (%s)", ref, name,
                gr_errname(reason), gr_strerror(reason));
    else if (during != NULL && during->type < GR_MSG_RESERVED)
        gr__log(&sys->log, level,
                "crash %s (%s): %s (%s) while handling type 0x%x", ref, name,
                gr_errname(reason), gr_strerror(reason), during->type);
    else
        gr__log(&sys->log, level, "crash %s (%s): %s (%s)", ref, name,
                gr_errname(reason), gr_strerror(reason));
}

void gr__actor_exit(gr__actor *a, gr__worker *w, int reason,
                    const gr_msg *during, unsigned how)
{
    gr_system *sys = a->sys;
    if ((how & GR__EXIT_TERMINATE) && a->b->terminate != NULL) {
        gr_ctx ctx = {a, w};
        gr__callback_depth++;
        a->b->terminate(&ctx, gr__actor_state(a), reason);
        gr__callback_depth--;
    }
    if (a->name != NULL) {
        gr__names_remove(&sys->names, a->name, gr__actor_ref(a));
        free(a->name);
        a->name = NULL;
    }
    gr__monitor_exit(a, w, reason);
    log_exit(a, reason, during, how);
    bool unpinned = gr__idtable_kill(&sys->ids, a->serial);
    /* release, after the kill: whoever reads the new count with acquire
     * (gr_system_stats) knows the reference no longer resolves. */
    atomic_fetch_add_explicit(&sys->exited, 1, memory_order_release);
    if (unpinned)
        gr__actor_finalize(a);
}

void gr__actor_finalize(gr__actor *a)
{
    gr_system *sys = a->sys;
    gr__node *node;
    /* No sender holds the actor any more, so the mailbox is quiescent. */
    while ((node = gr__mailbox_pop(&a->mb_head, &a->mb_tail)) != NULL) {
        gr__env *e = (gr__env *)node;
        if (e->msg.type < GR_MSG_RESERVED)
            gr__dead_letter(&sys->dead, &sys->log, &e->msg, GR_DL_STOPPED);
        else
            gr__monitor_orphan(sys, &e->msg);
        gr__env_free(e);
    }
    if (a->flags & GR__ACTOR_INBOX)
        sem_destroy((sem_t *)gr__actor_state(a));
    uint64_t serial = a->serial;
    actor_free(a);
    gr__idtable_free(&sys->ids, serial);
}

int gr_spawn(gr_ctx *ctx, const gr_behaviour *b, const void *arg,
             size_t arg_len, gr_ref *out)
{
    if (ctx == NULL)
        return GR_EINVAL;
    return gr_system_spawn(ctx->self->sys, b, arg, arg_len, out);
}

int gr_system_spawn(gr_system *sys, const gr_behaviour *b, const void *arg,
                    size_t arg_len, gr_ref *out)
{
    if (sys == NULL || b == NULL || b->handle == NULL ||
        (arg == NULL && arg_len > 0))
        return GR_EINVAL;
    return gr__actor_spawn(sys, gr__worker_of(sys), b, 0, arg, arg_len, NULL,
                           out);
}

gr_ref gr_self(const gr_ctx *ctx)
{
    return gr__actor_ref(ctx->self);
}

gr_system *gr_ctx_system(const gr_ctx *ctx)
{
    return ctx->self->sys;
}
