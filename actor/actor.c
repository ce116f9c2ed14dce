#define _GNU_SOURCE /* pthread_getattr_np: this thread's stack. */
#include "actor/actor.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grove/ask.h>

#include "actor/assert.h"
#include "actor/clock.h"
#include "actor/message.h"
#include "actor/mute.h"
#include "actor/owned.h"
#include "actor/relations.h"
#include "actor/send.h"
#include "actor/system.h"

_Thread_local gr_ctx *gr__ctx_top;
_Thread_local gr_reason gr__exit_why;
/* The reason gr_stop_with() stored; separate from gr__exit_why, which a
 * nested callback's gr_fail() may overwrite meanwhile. */
static _Thread_local gr_reason stop_why;

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
    /* Not a leak: actor_free() frees raw through a->align_skew. */
    /* cppcheck-suppress memleak */
    return a;
}

static void actor_free(gr__actor *a)
{
    free(a->exit_why);
    free((char *)a - a->align_skew);
}

gr_ref gr__actor_ref(const gr__actor *a)
{
    return (gr_ref){a->serial, a->sys->node_id, a->sys->incarnation};
}

/* Runs b's init for a new actor; on failure stores the reason in *why and
 * returns its code. gr_fail() in init lands here. */
/* Stack an init must leave free for itself and what it calls: a nested
 * init is refused below it. A level of supervisor nesting takes ~1.7 KiB
 * (~3 KiB under ASan), so an 8 MiB stack holds ~4 500 levels. */
#define INIT_STACK_RESERVE ((uintptr_t)256 << 10)
/* Nesting refused where the thread's stack cannot be found. */
#define INIT_DEPTH_FALLBACK 1000u

/* The lowest usable address of this thread's stack (1: not known). */
static _Thread_local uintptr_t stack_low;
/* Inits running on this thread, one inside another. */
static _Thread_local unsigned init_depth;

void gr__stack_probe(void)
{
    if (stack_low != 0)
        return;
    pthread_attr_t at;
    void *addr;
    size_t size;
    stack_low = 1;
    if (pthread_getattr_np(pthread_self(), &at) == 0) {
        if (pthread_attr_getstack(&at, &addr, &size) == 0)
            stack_low = (uintptr_t)addr;
        pthread_attr_destroy(&at);
    }
}

/* Whether one more init may nest here: inits nest without bound on the C
 * stack (a supervisor starts its children inside its own init), so a deep
 * enough tree would overflow it; it is refused with GR_ELIMIT instead. */
static bool init_has_room(void)
{
    gr__stack_probe();
    if (stack_low == 1)
        return init_depth < INIT_DEPTH_FALLBACK;
    /* The frame address is on the real stack (ASan's fake stacks aside). */
    return (uintptr_t)__builtin_frame_address(0) >
           stack_low + INIT_STACK_RESERVE;
}

static int run_init(gr_ctx *ctx, const void *arg, size_t arg_len,
                    gr_reason *why)
{
    gr__actor *a = ctx->self;
    if (!init_has_room()) {
        *why = gr_reason_of(GR_ELIMIT);
        snprintf(why->text, sizeof why->text,
                 "inits nested too deep for the stack (%u)", init_depth);
        return GR_ELIMIT;
    }
    sigjmp_buf jb;
    gr_ctx *prev = gr__ctx_top;
    unsigned depth = init_depth;
    if (sigsetjmp(jb, 0) != 0) {
        init_depth = depth; /* gr_fail() jumped out of init. */
        gr__cb_leave(prev);
        *why = gr__exit_why;
        return why->code;
    }
    ctx->fail = &jb;
    gr__cb_enter(ctx);
    init_depth++;
    int rc = a->b->init(ctx, gr__actor_state(a), arg, arg_len);
    init_depth--;
    gr__cb_leave(prev);
    ctx->fail = NULL;
    if (rc == GR_OK)
        return GR_OK;
    *why = gr_reason_of(rc < 0 ? rc : GR_EINIT);
    return why->code;
}

/* Links a spawner and its new actor (both owned by this thread now). */
static int link_both(gr__actor *parent, gr__actor *child)
{
    int rc = gr__link_add(child, gr__actor_ref(parent));
    if (rc == GR_OK &&
        (rc = gr__link_add(parent, gr__actor_ref(child))) != GR_OK)
        gr__link_remove(child, gr__actor_ref(parent));
    return rc;
}

static void unlink_both(gr__actor *parent, gr__actor *child)
{
    gr__link_remove(parent, gr__actor_ref(child));
    gr__link_remove(child, gr__actor_ref(parent));
}

/* An init is about to run on worker w (NULL: not a worker), and may take
 * long (a supervisor starting its children, a node's handshake): the actor
 * in w's run-next slot becomes stealable, so it does not wait for it. */
static void release_run_next(gr__worker *w)
{
    if (w != NULL)
        gr__sched_long_turn(&w->sys->sched, w);
}

int gr__actor_spawn(gr_system *sys, gr__worker *w, const gr_behaviour *b,
                    const gr__spawn_opts *opts, const void *arg, size_t arg_len,
                    gr__actor **out_actor, gr_ref *out, gr_reason *why_out)
{
    static const gr__spawn_opts no_opts;
    if (opts == NULL)
        opts = &no_opts;
    /* relaxed: a late refusal is harmless; shutdown's sweep finds actors
     * spawned just before it. */
    if (atomic_load_explicit(&sys->shutting_down, memory_order_relaxed))
        return GR_ESTOPPED;
    int rc;
    if ((opts->flags & GR__ACTOR_BLOCKING) &&
        (rc = gr__sched_blocking_ready(&sys->sched)) != GR_OK)
        return rc;
    gr__actor *a = actor_alloc(sizeof(gr__actor) + b->state_size);
    if (a == NULL)
        return GR_ENOMEM;
    gr__mailbox_init(&a->mb_head, &a->mb_tail);
    a->sys = sys;
    a->b = b;
    a->flags = opts->flags;
    a->mb_cap = opts->mb_cap;
    atomic_init(&a->pushed, 0);
    atomic_init(&a->popped, 0);
    atomic_init(&a->takes_calls, false);
    /* relaxed: only a total order of spawns is needed, not visibility. */
    a->seq = atomic_fetch_add_explicit(&sys->next_seq, 1, memory_order_relaxed);
    rc = gr__idtable_alloc(&sys->ids, a, &a->serial);
    if (rc != GR_OK) {
        actor_free(a);
        return rc;
    }
    atomic_fetch_add_explicit(&sys->spawned, 1, memory_order_relaxed);
    gr_ctx ctx = {.self = a, .w = w};
    gr_reason why = gr_reason_of(GR_OK);
    gr__actor *parent = opts->link != NULL ? opts->link->self : NULL;
    ctx.parent = parent;
    if (b->init != NULL)
        release_run_next(w);
    if (opts->name != NULL && (rc = gr_register(&ctx, opts->name)) != GR_OK)
        why = gr_reason_of(rc);
    else if (parent != NULL && (rc = link_both(parent, a)) != GR_OK)
        why = gr_reason_of(rc);
    else if (b->init != NULL &&
             (rc = run_init(&ctx, arg, arg_len, &why)) != GR_OK &&
             parent != NULL)
        unlink_both(parent, a);
    if (rc != GR_OK) {
        /* As in OTP, terminate does not run when init fails. A spawn link
         * dissolves silently: the spawner gets the error code instead. */
        gr__actor_exit(a, w, &why, GR__EXIT_INIT_FAILED);
        if (why_out != NULL)
            *why_out = why;
        return rc;
    }
    if (gr__event_wanted(&sys->log, GR_LOG_DEBUG)) {
        gr_event ev = {.kind = GR_EV_SPAWNED,
                       .level = GR_LOG_DEBUG,
                       .actor = gr__actor_ref(a),
                       .behaviour = b->name ? b->name : ""};
        gr__event_emit(&sys->events, &sys->log, &ev);
    }
    if (out != NULL)
        *out = gr__actor_ref(a);
    if (out_actor != NULL)
        *out_actor = a;
    /* The mailbox was owned during init; messages sent meanwhile (also by
     * init to itself) make the actor runnable now. An inbox is never
     * scheduled: its owner's gr_inbox_recv takes what came (it pops
     * before it marks the mailbox empty). Something does reach a new
     * inbox before it is handed out: a node-down broadcast goes to every
     * live actor, and an inbox is live from its id table slot on. */
    if (!gr__mailbox_mark_empty(&a->mb_head, &a->mb_tail) &&
        !(a->flags & GR__ACTOR_INBOX))
        gr__sched_submit(&sys->sched, w, a);
    return GR_OK;
}

/* Turns a handler's return value r (not GR_CONTINUE) for message m into
 * the actor's exit reason. */
static gr_reason handler_reason(const gr_ctx *ctx, int r, const gr_msg *m)
{
    if (r == GR_STOP)
        return ctx->stop_set ? stop_why : gr_reason_of(GR_OK);
    gr_reason why = gr_reason_of(r < 0 ? r : GR_EFAILED);
    why.flags = GR_REASON_IN_HANDLER;
    why.msg_type = m->type;
    return why;
}

/* Nanoseconds on the monotonic clock, for a traced handler call (never
 * 0, which means "not traced"). */
static uint64_t trace_clock(void)
{
    return gr__mono_ns() + 1;
}

void gr__actor_run(gr__worker *w, gr__actor *a)
{
    /* gr_fail() jumps to the worker's loop (see worker_main), which calls
     * gr__actor_failed(): no jump target to set up per turn. */
    gr_ctx ctx = {.self = a, .w = w, .fail = &w->fail_jmp};
    unsigned n = 0;
    bool drained = false; /* The mailbox was found empty. */
    w->turn_actor = a;
    w->turn_handled = 0;
    w->mute_on = 0;
    w->turn_yield = false;
    atomic_store_explicit(&w->stats.now_serial, a->serial,
                          memory_order_relaxed);
    while (n < GR__BATCH) {
        gr__node *node = gr__mailbox_pop(&a->mb_head, &a->mb_tail);
        if (node == NULL) {
            drained = true;
            break;
        }
        n++;
        gr__actor_popped(a);
        gr__env *e = (gr__env *)node;
        gr_reason why;
        /* Runtime messages, replies and timer messages are the runtime's
         * business first; tells and requests go straight to the handler. */
        gr__sig act = e->msg.type >= GR_MSG_RESERVED ||
                              (e->msg.flags & (GR_MSG_REPLY | GR_MSG_TIMER))
                          ? gr__signal(a, w, &e->msg, &why)
                          : GR__SIG_DELIVER;
        if (act == GR__SIG_DELIVER) {
            w->turn_handled++;
            atomic_store_explicit(&w->stats.now_type, e->msg.type,
                                  memory_order_relaxed);
            atomic_store_explicit(
                &w->stats.now_seq,
                atomic_load_explicit(&w->stats.now_seq, memory_order_relaxed) +
                    1,
                memory_order_relaxed);
            w->turn_env = e;
            w->turn_req_open = (e->msg.flags & GR_MSG_REQUEST) != 0;
            /* Tracing: off unless someone traces something here. */
            struct gr__control *tracer = NULL;
            uint64_t t0 = 0;
            if (atomic_load_explicit(&a->sys->tracing, memory_order_relaxed) !=
                    0 &&
                (tracer = atomic_load_explicit(&a->sys->events.control,
                                               memory_order_acquire)) != NULL &&
                gr__control_traced(tracer, a->serial, a->b->name))
                t0 = trace_clock();
            gr__cb_enter(&ctx);
            int r;
            if (w->turn_cont != NULL) {
                gr_ask_fn fn = w->turn_cont;
                w->turn_cont = NULL;
                r = fn(&ctx, gr__actor_state(a), &e->msg, w->turn_cont_arg);
            } else {
                r = a->b->handle(&ctx, gr__actor_state(a), &e->msg);
            }
            gr__cb_leave(NULL);
            if (t0 != 0)
                gr__control_trace(tracer, true, a->serial, a->b->name, &e->msg,
                                  NULL, trace_clock() - t0);
            if (w->turn_req_open)
                gr__ask_hold(a, w);
            if (r != GR_CONTINUE) {
                why = handler_reason(&ctx, r, &e->msg);
                act = GR__SIG_EXIT;
            }
            ctx.stop_set = false;
        }
        if (act == GR__SIG_EXIT) {
            atomic_store_explicit(&w->stats.now_serial, 0,
                                  memory_order_relaxed);
            gr__stat_inc(&w->stats.delivered, w->turn_handled);
            gr__actor_exit(a, w, &why, GR__EXIT_TERMINATE);
            gr__env_free(e);
            return;
        }
        gr__env_free(e);
        if (w->mute_on != 0)
            break; /* It sent to an overloaded actor: end the turn here. */
        if (w->turn_yield)
            break; /* It yields: see below. */
    }
    atomic_store_explicit(&w->stats.now_serial, 0, memory_order_relaxed);
    gr__stat_inc(&w->stats.delivered, w->turn_handled);
    if (gr__mute_due(w, a, n == GR__BATCH) &&
        gr__mute_turn_end(w, a, n == GR__BATCH, drained))
        return; /* Off the run queues until what it sent to catches up. */
    if (n < GR__BATCH && gr__mailbox_mark_empty(&a->mb_head, &a->mb_tail))
        return;
    if (w->turn_yield) /* Behind every actor already runnable, anywhere. */
        gr__sched_submit(&a->sys->sched, NULL, a);
    else
        gr__sched_requeue(&a->sys->sched, w, a);
}

void gr__ctx_yield(gr_ctx *ctx)
{
    if (ctx->w != NULL)
        ctx->w->turn_yield = true;
}

void gr__actor_failed(gr__worker *w)
{
    gr__cb_leave(NULL);
    atomic_store_explicit(&w->stats.now_serial, 0, memory_order_relaxed);
    gr__actor *a = w->turn_actor;
    gr__env *e = w->turn_env;
    if (w->turn_req_open)
        gr__ask_hold(a, w);
    gr_reason why = gr__exit_why;
    why.flags |= GR_REASON_IN_HANDLER;
    why.msg_type = e->msg.type;
    gr__stat_inc(&w->stats.delivered, w->turn_handled);
    gr__actor_exit(a, w, &why, GR__EXIT_TERMINATE);
    gr__env_free(e);
}

/* Emits an actor's exit event: crashes and failed inits at error level,
 * kills as warnings, normal and shutdown exits at debug level. A
 * supervisor's child's is flagged GR_EVENT_SUPERVISED: its supervisor
 * reports the exit too, so log lines show one of the two. */
static void log_exit(gr__actor *a, const gr_reason *why, unsigned how)
{
    gr_system *sys = a->sys;
    gr_log_level level = gr_reason_is_clean(why)   ? GR_LOG_DEBUG
                         : why->code == GR_EKILLED ? GR_LOG_WARN
                                                   : GR_LOG_ERROR;
    if (!gr__event_wanted(&sys->log, level))
        return;
    gr_event ev = {
        .kind = how & GR__EXIT_INIT_FAILED ? GR_EV_INIT_FAILED
                : level == GR_LOG_ERROR    ? GR_EV_CRASHED
                                           : GR_EV_EXITED,
        .level = level,
        .flags = a->flags & GR__ACTOR_SUPERVISED ? GR_EVENT_SUPERVISED : 0u,
        .reason = *why,
        .actor = gr__actor_ref(a),
        .behaviour = a->b->name ? a->b->name : ""};
    gr__event_emit(&sys->events, &sys->log, &ev);
}

/* Runs a's terminate with why; gr_fail() there only ends it early. */
static void run_terminate(gr__actor *a, gr__worker *w, const gr_reason *why)
{
    gr_ctx ctx = {.self = a, .w = w};
    gr_ctx *prev = gr__ctx_top;
    sigjmp_buf jb;
    if (sigsetjmp(jb, 0) != 0) {
        gr__cb_leave(prev);
        return;
    }
    ctx.fail = &jb;
    gr__cb_enter(&ctx);
    a->b->terminate(&ctx, gr__actor_state(a), why);
    gr__cb_leave(prev);
}

void gr__actor_exit(gr__actor *a, gr__worker *w, const gr_reason *why,
                    unsigned how)
{
    gr_system *sys = a->sys;
    a->exit_code = why->code;
    bool plain = why->flags == 0 && why->msg_type == 0 && why->detail == 0 &&
                 why->text[0] == '\0';
    /* Out of memory: queued requests get the code alone. */
    if (!plain && (a->exit_why = malloc(sizeof *a->exit_why)) != NULL)
        *a->exit_why = *why;
    if ((how & GR__EXIT_TERMINATE) && a->b->terminate != NULL)
        run_terminate(a, w, why);
    if (a->rel != NULL && a->rel->name != NULL) {
        gr__names_remove(&sys->names, a->rel->name, gr__actor_ref(a));
        free(a->rel->name);
        a->rel->name = NULL;
    }
    gr__relations_exit(a, w, why);
    gr__mute_release(w, a);
    log_exit(a, why, how);
    struct gr__control *tracer;
    const char *b = a->b->name != NULL ? a->b->name : ""; /* Inboxes: "". */
    if (atomic_load_explicit(&sys->tracing, memory_order_relaxed) != 0 &&
        (tracer = atomic_load_explicit(&sys->events.control,
                                       memory_order_acquire)) != NULL &&
        gr__control_traced(tracer, a->serial, b))
        gr__control_trace_exit(tracer, a->serial, b, why);
    gr_ref self = gr__actor_ref(a); /* a may be freed once it is killed. */
    bool unpinned = gr__idtable_kill(&sys->ids, a->serial);
    /* After the kill, so a resource given to a just before cannot be
     * missed (see owned.h). acquire: pairs with gr__owned_get. */
    const gr__owned_ops *owned =
        atomic_load_explicit(&sys->owned_ops, memory_order_acquire);
    if (owned != NULL)
        owned->owner_exit(sys->owned, self);
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
            gr__dead_message(sys, &e->msg, GR_DL_STOPPED,
                             a->exit_why != NULL
                                 ? a->exit_why
                                 : &(gr_reason){.code = a->exit_code});
        else
            gr__signal_orphan(sys, &e->msg);
        gr__env_free(e);
    }
    /* Senders that muted themselves as it exited, after its last
     * release (their GR__MSG_UNMUTE found it gone). */
    gr__mute_release(gr__worker_of(sys), a);
    if (a->flags & GR__ACTOR_INBOX)
        sem_destroy((sem_t *)gr__actor_state(a));
    uint64_t serial = a->serial;
    actor_free(a);
    gr__idtable_free(&sys->ids, serial);
}

int gr_spawn(gr_ctx *ctx, const gr_behaviour *b, const void *arg,
             size_t arg_len, gr_ref *out)
{
    return gr_spawn_opt(ctx, b, arg, arg_len, NULL, out);
}

int gr_system_spawn(gr_system *sys, const gr_behaviour *b, const void *arg,
                    size_t arg_len, gr_ref *out)
{
    return gr_system_spawn_opt(sys, b, arg, arg_len, NULL, out);
}

int gr_spawn_opt(gr_ctx *ctx, const gr_behaviour *b, const void *arg,
                 size_t arg_len, const gr_spawn_opts *opts, gr_ref *out)
{
    if (ctx == NULL)
        return GR_EINVAL;
    return gr_system_spawn_opt(gr__ctx_sys(ctx), b, arg, arg_len, opts, out);
}

int gr_system_spawn_opt(gr_system *sys, const gr_behaviour *b, const void *arg,
                        size_t arg_len, const gr_spawn_opts *opts, gr_ref *out)
{
    if (sys == NULL || b == NULL || b->handle == NULL ||
        (arg == NULL && arg_len > 0))
        return GR_EINVAL;
    gr__spawn_opts o = {0};
    if (opts != NULL) {
        o.mb_cap = opts->mailbox_cap;
        o.flags = opts->blocking ? GR__ACTOR_BLOCKING : 0u;
    }
    return gr__actor_spawn(sys, gr__worker_of(sys), b, &o, arg, arg_len, NULL,
                           out, NULL);
}

int gr_spawn_link(gr_ctx *ctx, const gr_behaviour *b, const void *arg,
                  size_t arg_len, gr_ref *out)
{
    if (ctx == NULL || b == NULL || b->handle == NULL ||
        (arg == NULL && arg_len > 0))
        return GR_EINVAL;
    gr__spawn_opts opts = {.link = ctx};
    return gr__actor_spawn(gr__ctx_sys(ctx), ctx->w, b, &opts, arg, arg_len,
                           NULL, out, NULL);
}

void gr_fail(gr_ctx *ctx, const char *fmt, ...)
{
    GR_ASSERT(ctx != NULL && ctx == gr__ctx_top && ctx->fail != NULL &&
              "gr_fail needs the innermost running callback's ctx");
    gr_reason why = gr_reason_of(GR_EFAILED);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why.text, sizeof why.text, fmt, ap);
    va_end(ap);
    gr__exit_why = why;
    siglongjmp(*ctx->fail, 1);
}

int gr_stop_with(gr_ctx *ctx, const gr_reason *why)
{
    if (ctx == NULL || why == NULL)
        return GR_EINVAL;
    stop_why = *why;
    stop_why.text[GR_REASON_TEXT_MAX] = '\0';
    ctx->stop_set = true;
    return GR_STOP;
}

void gr__accept_calls(gr_ctx *ctx)
{
    atomic_store_explicit(&ctx->self->takes_calls, true, memory_order_relaxed);
}

gr_ref gr__ctx_parent(const gr_ctx *ctx)
{
    return ctx->parent != NULL ? gr__actor_ref(ctx->parent) : GR_REF_NONE;
}

bool gr__ctx_supervised(const gr_ctx *ctx)
{
    return (ctx->self->flags & GR__ACTOR_SUPERVISED) != 0;
}

gr_ref gr_self(const gr_ctx *ctx)
{
    return ctx != NULL ? gr__actor_ref(ctx->self) : GR_REF_NONE;
}

gr_system *gr_ctx_system(const gr_ctx *ctx)
{
    return ctx != NULL ? gr__ctx_sys(ctx) : NULL;
}
