/*
 * Internal actor representation and lifecycle: spawn, one scheduler turn,
 * exit, finalisation. The public API is in include/grove/actor.h.
 */
#ifndef GROVE_ACTOR_ACTOR_H
#define GROVE_ACTOR_ACTOR_H

#include <setjmp.h>

#include <grove/actor.h>

#include "actor/assert.h"
#include "actor/mailbox.h"

struct gr__worker;

/* Actor flags (owner-only field). */
enum {
    GR__ACTOR_INBOX = 1u << 0, /* An inbox: its owner thread pops it. */
    GR__ACTOR_CALL = 1u << 1,  /* gr_call()'s inbox: it sees node-downs. */
    /* A supervisor's child: the supervisor reports its exits, so the
     * actor's own exit events are GR_EVENT_SUPERVISED. */
    GR__ACTOR_SUPERVISED = 1u << 2,
    /* Runs on the blocking pool (gr_spawn_opts.blocking), never on a
     * worker: its handler may block. */
    GR__ACTOR_BLOCKING = 1u << 3,
};

/*
 * One actor: two cache lines plus its state. The first line holds the
 * mailbox head, which every sender writes, with fields that senders read or
 * that are touched only at spawn and exit; the second holds what the
 * actor's runner uses on every turn, so senders never evict it.
 */
typedef struct gr__actor {
    /* Line 0: senders. */
    _Alignas(64) gr__mailbox_head mb_head;
    uint32_t flags;     /* GR__ACTOR_* bits; fixed at spawn. */
    int32_t exit_code;  /* Its exit reason's code, once it exited. */
    uint32_t mb_cap;    /* Most application messages queued; 0: no limit. */
    uint8_t align_skew; /* Bytes between the malloc block and this header. */
    /* Set by the runner while its mailbox is over GR__MUTE_HIGH, cleared
     * once it is down to GR__MUTE_LOW (see mute.h); senders read it. */
    _Atomic(bool) overloaded;
    /* Messages ever pushed (senders add before pushing, so it never trails
     * popped); depth is pushed - popped. */
    _Atomic(uint64_t) pushed;
    uint64_t seq; /* Spawn order, for newest-first shutdown. */
    /* Senders muted because this actor is overloaded: a stack linked
     * through their sched_next, pushed by them, taken whole by this
     * actor's runner when it catches up or exits (see mute.h). */
    _Atomic(struct gr__actor *) muted;
    struct gr__relations *rel; /* Links, monitors, name (owner-only), or
                                  NULL. */
    /* Its exit reason when that is more than a code (text, detail, flags),
     * kept for the requests still queued at finalisation; else NULL. */
    gr_reason *exit_why;
    /* Line 1: the runner. */
    _Alignas(64) gr__mailbox_tail mb_tail;
    gr_system *sys;
    const gr_behaviour *b;
    uint64_t serial;              /* This actor's id-table serial. */
    struct gr__actor *sched_next; /* Link in the injection queue. */
    _Atomic(uint64_t) popped;     /* Messages popped; the runner stores. */
    /* It answers runtime requests (gr__accept_calls): set once in init,
     * read by senders (relaxed: a request racing with its target's init
     * is refused as if it came first). Others get GR_ENOTSUP. */
    _Atomic(bool) takes_calls;
    /* It is muted (see mute.h): set by itself as it mutes, cleared by
     * whoever resumes it; read by actors about to mute on it. */
    _Atomic(bool) is_muted;
} gr__actor;

_Static_assert(sizeof(gr__actor) == 128, "an actor header is two lines");

/* Returns the behaviour state, which follows the header. */
static inline void *gr__actor_state(gr__actor *a)
{
    return a + 1;
}

/* The context passed to callbacks (see gr_ctx in the public header). */
struct gr_ctx {
    gr__actor *self;
    struct gr__worker *w; /* Worker running the callback, or NULL. */
    sigjmp_buf *fail;     /* Where gr_fail() jumps; NULL: it may not. */
    bool stop_set;        /* gr_stop_with() stored a reason this call. */
    gr__actor *parent;    /* In init: the actor that spawned this one
                             linked, or NULL. */
};

/* The system of ctx's actor. A ctx is valid only in the callback it was
 * passed to: one kept and used later (its actor field found cleared)
 * aborts with a line that says so, rather than a crash. */
static inline gr_system *gr__ctx_sys(const gr_ctx *ctx)
{
    GR_ASSERT(ctx->self != NULL &&
              "a gr_ctx is valid only in the callback it was passed to");
    return ctx->self->sys;
}

/* In init: declares that this actor answers runtime requests (requests of
 * a reserved type, such as a supervisor's calls); a send of one to any
 * other actor is refused with GR_ENOTSUP (its handler never sees it). */
void gr__accept_calls(gr_ctx *ctx);

/* In init: the reference of the actor that spawned the current one linked
 * (a supervisor, say), or GR_REF_NONE. */
gr_ref gr__ctx_parent(const gr_ctx *ctx);

/* Ends the current handler call's turn once it returns, and puts the
 * actor behind every actor already runnable (the injection queue), so a
 * message it sent itself is handled after they have run: OTP's try_again
 * waits its turn so; here a turn would go on with it at once. No effect
 * in an init called off a worker. */
void gr__ctx_yield(gr_ctx *ctx);

/* Whether the current actor is a supervisor's child (its supervisor logs
 * its exits). */
bool gr__ctx_supervised(const gr_ctx *ctx);

/* The innermost callback running on this thread, or NULL. */
extern _Thread_local gr_ctx *gr__ctx_top;

/* Aborts, saying why, unless ctx is the innermost running callback's on
 * this thread: a gr_ctx kept past its callback, or used from another
 * thread, is a programmer error that would race with its actor. */
static inline void gr__ctx_check(const gr_ctx *ctx)
{
    GR_ASSERT(ctx == gr__ctx_top &&
              "a gr_ctx is valid only in the callback it was passed to");
}

/* The reason gr_fail() and gr_stop_with() leave for the runtime (thread
 * storage, so it survives the longjmp). */
extern _Thread_local gr_reason gr__exit_why;

/* Marks ctx as the innermost callback; returns the previous one, for
 * gr__cb_leave(). */
static inline gr_ctx *gr__cb_enter(gr_ctx *ctx)
{
    gr_ctx *prev = gr__ctx_top;
    gr__ctx_top = ctx;
    return prev;
}

/* Ends the callback gr__cb_enter() began. */
static inline void gr__cb_leave(gr_ctx *prev)
{
    gr__ctx_top = prev;
}

/* Extra ways to spawn (all optional). */
typedef struct gr__spawn_opts {
    uint32_t flags;   /* GR__ACTOR_* bits. */
    uint32_t mb_cap;  /* Mailbox capacity (gr_spawn_opts.mailbox_cap). */
    gr_ctx *link;     /* Link the new actor to this callback's actor. */
    const char *name; /* Register this name before init runs. */
} gr__spawn_opts;

/*
 * Allocates, registers and initialises an actor (runs init on the calling
 * thread), then schedules it if init left messages queued. w is the calling
 * worker or NULL; opts may be NULL. On success stores the actor in
 * *out_actor (may be NULL) and its reference in *out (may be NULL). When
 * init fails its reason is stored in *why (may be NULL).
 */
int gr__actor_spawn(gr_system *sys, struct gr__worker *w, const gr_behaviour *b,
                    const gr__spawn_opts *opts, const void *arg, size_t arg_len,
                    gr__actor **out_actor, gr_ref *out, gr_reason *why);

/*
 * Runs one turn of actor a on worker w: up to GR__BATCH messages, then either
 * reschedules it or marks its mailbox empty, or makes it exit.
 */
void gr__actor_run(struct gr__worker *w, gr__actor *a);

/*
 * Ends the turn whose handler called gr_fail(): the actor exits with the
 * failure as its reason. Called by the worker loop after the jump, with
 * the turn's actor and message in w.
 */
void gr__actor_failed(struct gr__worker *w);

/* How an actor exits (bits for gr__actor_exit). */
enum {
    GR__EXIT_TERMINATE = 1u << 0,   /* Run the behaviour's terminate. */
    GR__EXIT_INIT_FAILED = 1u << 1, /* Its init failed (logged as such). */
};

/*
 * Makes a exit with reason why: runs terminate (if how says so), removes
 * its name, tells its links and monitors, logs the exit, marks it dead, and
 * finalises it once no sender holds it.
 */
void gr__actor_exit(gr__actor *a, struct gr__worker *w, const gr_reason *why,
                    unsigned how);

/*
 * Frees an actor that is dead and unpinned: queued messages become dead
 * letters with reason stopped, then its slot is recycled.
 */
void gr__actor_finalize(gr__actor *a);

/* Returns the actor's reference. */
gr_ref gr__actor_ref(const gr__actor *a);

/* Finds and keeps the calling thread's stack bounds, which the first init
 * run on a thread needs (glibc reads /proc/self/maps for the main
 * thread's). A fork server template calls it once, so that its clones,
 * whose main thread has the template's stack, need not. */
void gr__stack_probe(void);

/* Counts one message popped by a's runner (or inbox owner). */
static inline void gr__actor_popped(gr__actor *a)
{
    /* relaxed: a counter read by senders of a bounded mailbox and by
     * gr_system_stats; the owner alone writes it. */
    atomic_store_explicit(
        &a->popped, atomic_load_explicit(&a->popped, memory_order_relaxed) + 1,
        memory_order_relaxed);
}

/* Returns how many messages were queued at a when a sender counted its
 * own as number `before` of a's pushes (the runner may have popped past
 * it since). */
static inline uint64_t gr__actor_queued_before(gr__actor *a, uint64_t before)
{
    uint64_t popped = atomic_load_explicit(&a->popped, memory_order_relaxed);
    return before > popped ? before - popped : 0;
}

/* Returns how many messages wait in a's mailbox (a snapshot). */
static inline uint64_t gr__actor_depth(gr__actor *a)
{
    uint64_t popped = atomic_load_explicit(&a->popped, memory_order_relaxed);
    uint64_t pushed = atomic_load_explicit(&a->pushed, memory_order_relaxed);
    return pushed > popped ? pushed - popped : 0;
}

struct gr_inbox;

/* gr_inbox_open() with extra GR__ACTOR_* flags (GR__ACTOR_CALL). */
int gr__inbox_open(gr_system *sys, uint32_t flags, struct gr_inbox **out);

/* Wakes every inbox's waiting owner (after sys->stopping is set, so its
 * gr_inbox_recv() returns GR_ESTOPPED once the inbox is empty); returns
 * how many of them the calling thread owns. */
int gr__inboxes_wake(gr_system *sys);

#endif
