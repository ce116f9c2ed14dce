/*
 * The scheduler: worker threads that run actors to completion, each with a
 * work-stealing deque and a run-next slot, a shared injection queue for
 * other threads, and Go's spin-then-park protocol for idle workers.
 */
#ifndef GROVE_ACTOR_SCHEDULER_H
#define GROVE_ACTOR_SCHEDULER_H

#include <pthread.h>
#include <setjmp.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <grove/system.h>

#include "actor/actor.h"
#include "actor/deque.h"
#include "actor/message.h"

/* Messages one actor handles per turn before yielding its worker (Pony's
 * PONY_SCHED_BATCH is 100). */
#define GR__BATCH 100
/* Consecutive run-next turns after which the worker serves its deque first,
 * so a ping-ponging pair cannot starve the rest of its queue. */
#define GR__RUN_NEXT_LIMIT 64
/* Every this many turns a worker polls the injection queue first, so work
 * from outside threads is never starved by local work (Go uses 61). */
#define GR__INJECT_PERIOD 61
/* Sends within one turn after which the turn counts as long: the worker's
 * run-next actor, which cannot be stolen, moves to the stealable deque so
 * that another worker can run it meanwhile (a power of two). */
#define GR__LONG_TURN_SENDS 64
/* Rounds an idle worker looks for work before parking. Waking a parked
 * thread costs ~90 us on the development VM, so spinning ~20-50 us first
 * keeps bursty traffic off the futex. */
#define GR__SPIN_ROUNDS 2000
/* How long an idle worker leaves a busy worker's only queued actor alone
 * before stealing it: the busy worker will most likely run it within its
 * next few turns, with the messages it handles still in its cache, while
 * a thief would have to pull each one across cores (~100 ns a message on
 * the development VM, more than a whole same-core hop). Longer than a
 * typical turn; short enough that a long handler stalls nobody for long. */
#define GR__STEAL_LONE_NS 50000

/* What a thief last saw of one victim holding a lone queued actor (see
 * GR__STEAL_LONE_NS): the victim's turn count, and since when. */
typedef struct gr__lone_seen {
    uint64_t runs;
    uint64_t since_ns;
} gr__lone_seen;

/* Per-worker counters: written only by their worker (relaxed load+store),
 * read by gr_system_stats() from any thread. */
typedef struct gr__worker_stats {
    _Atomic(uint64_t) runs;
    _Atomic(uint64_t) steals;
    _Atomic(uint64_t) delivered;
    _Atomic(uint64_t) sent;  /* Sends made by turns run here. */
    _Atomic(uint64_t) muted; /* Turns that ended with their actor muted. */
    /* What runs now, for the control endpoint's sampler (the owner
     * stores, relaxed): the actor's serial (0 between turns), the type of
     * the message in its handler, and a count of messages handed to
     * handlers, which moves with each. */
    _Atomic(uint64_t) now_serial;
    _Atomic(uint32_t) now_type;
    _Atomic(uint64_t) now_seq;
} gr__worker_stats;

/* One worker thread and its queues. */
typedef struct gr__worker {
    gr__deque dq; /* Stealable runnable actors (first: cache-aligned). */
    gr_system *sys;
    unsigned index;
    pthread_t thread;
    gr__actor *run_next; /* Owner only: next actor to run, not stealable. */
    unsigned run_next_streak; /* Owner only. */
    unsigned ticks;           /* Owner only: turns run, for inject polling. */
    unsigned turn_sends;      /* Owner only: sends made in the current turn. */
    uint64_t mute_on; /* Owner only: the serial of an overloaded actor the
                         current turn sent to, or 0 (see mute.h). */
    bool turn_yield;  /* Owner only: the current turn ends after this
                         message, behind what is queued (gr__ctx_yield). */
    /* Owner only: the actor the current turn sent to first, kept pinned
     * until the turn ends (pin_serial 0: none); see send.c. */
    uint64_t pin_serial;
    struct gr__actor *pin_actor;
    uint64_t last_target; /* Owner only: the serial of the last send's
                             target, when not pinned. */
    uint64_t rng;         /* Owner only: victim choice. */
    gr__lone_seen *lone;  /* Owner only: one per worker (as a thief). */
    bool spinning;        /* Owner only: counted in nspinning. */
    bool blocking; /* A blocking-pool thread: runs blocking actors only. */
    sem_t park;    /* Posted to wake this worker when parked. */
    bool woken;    /* Guarded by idle_lock: taken off idle list. */
    struct gr__worker *idle_next; /* Guarded by idle_lock. */
    gr__worker_stats stats;
    /* gr_fail() lands here (owner only), with the turn being run: */
    sigjmp_buf fail_jmp;
    struct gr__actor *turn_actor;
    struct gr__env *turn_env;
    unsigned turn_handled;
    bool turn_req_open;       /* turn_env is a request not answered yet. */
    uint64_t id_next, id_end; /* Owner only: ids taken (gr__new_id). */
    /* Set by the runtime for an answer to gr_ask_then(): handle it with
     * this continuation instead of handle. */
    int (*turn_cont)(gr_ctx *ctx, void *state, const gr_msg *m, void *arg);
    void *turn_cont_arg;
    /* Envelopes this worker's sends allocate, one pool per size class. */
    gr__envpool pools[GR__POOL_CLASSES];
} gr__worker;

/* The scheduler state shared by a system's workers. */
typedef struct gr__sched {
    gr__worker *workers;
    unsigned nworkers;
    /* Injection queue: FIFO of actors made runnable by non-worker threads. */
    pthread_mutex_t inject_lock;
    gr__actor *inject_head, *inject_tail;
    _Atomic(size_t) inject_len;     /* Lock-free emptiness check. */
    _Atomic(uint64_t) sent_outside; /* Sends from non-worker threads. */
    /* Idle (parked) workers. */
    pthread_mutex_t idle_lock;
    gr__worker *idle;
    _Atomic(unsigned) nidle;
    _Atomic(unsigned) nspinning;
    _Atomic(bool) stopping; /* Workers exit their loops when set. */
    bool threads_started;
    /* The blocking pool: nblocking threads after the nworkers workers in
     * workers[], serving one FIFO of blocking actors (GR__ACTOR_BLOCKING)
     * through block_lock and block_cond. Its threads start on the first
     * blocking actor's first turn (block_started), so a system without
     * blocking actors runs none. */
    unsigned nblocking;
    pthread_mutex_t block_lock;
    pthread_cond_t block_cond;
    gr__actor *block_head, *block_tail;
    size_t block_len;       /* Guarded by block_lock: actors queued. */
    unsigned block_waiting; /* Guarded by block_lock: threads waiting. */
    unsigned block_started; /* Guarded by block_lock: threads running. */
} gr__sched;

/* The worker running on this thread, or NULL on other threads. */
extern _Thread_local gr__worker *gr__current_worker;

/* Returns true inside a Grove callback or on any worker thread: where a
 * call must not block (gr_system_run, gr_system_shutdown, gr_inbox_open). */
static inline bool gr__in_handler(void)
{
    return gr__ctx_top != NULL || gr__current_worker != NULL;
}

/* Returns this thread's worker if it belongs to sys, else NULL. */
static inline gr__worker *gr__worker_of(const gr_system *sys)
{
    gr__worker *w = gr__current_worker;
    return w != NULL && w->sys == sys ? w : NULL;
}

/* Creates (but does not start) n workers and a blocking pool of up to
 * nblocking threads. Returns GR_OK or GR_ENOMEM/ESYS. */
int gr__sched_init(gr__sched *s, gr_system *sys, unsigned n,
                   unsigned nblocking);

/* Starts the worker threads. Returns GR_OK or GR_ESYS. */
int gr__sched_start(gr__sched *s);

/* Stops and joins the workers and the blocking pool; their current turns
 * finish first. */
void gr__sched_stop(gr__sched *s);

/* Frees the scheduler's memory (after gr__sched_stop). Queued actors are
 * forgotten, not touched: shutdown finalises every actor itself. */
void gr__sched_destroy(gr__sched *s);

/*
 * Makes actor a runnable. w is the calling thread's worker of this system
 * (or NULL): then a goes to w's run-next slot; otherwise to the injection
 * queue. Wakes an idle worker when needed. A blocking actor goes to the
 * blocking pool's queue instead, and a blocking thread's sends go to the
 * injection queue (its run-next slot is never used).
 */
void gr__sched_submit(gr__sched *s, gr__worker *w, gr__actor *a);

/* Makes sure the blocking pool has a thread, before the first blocking
 * actor is spawned. Returns GR_OK, GR_EINVAL (the pool has no threads),
 * GR_ESTOPPED (the scheduler is stopping) or GR_ESYS. */
int gr__sched_blocking_ready(gr__sched *s);

/* Puts an actor that still has messages back at the end of w's queue. */
void gr__sched_requeue(gr__sched *s, gr__worker *w, gr__actor *a);

/* Moves w's run-next actor to its stealable deque (see
 * GR__LONG_TURN_SENDS). Called on w's own thread. */
void gr__sched_long_turn(gr__sched *s, gr__worker *w);

/* Counts a send made by the turn running on w (NULL: not a worker). */
static inline void gr__sched_note_send(gr__sched *s, gr__worker *w)
{
    if (w == NULL) {
        /* relaxed: a statistic. */
        atomic_fetch_add_explicit(&s->sent_outside, 1, memory_order_relaxed);
        return;
    }
    if ((++w->turn_sends & (GR__LONG_TURN_SENDS - 1)) == 0)
        gr__sched_long_turn(s, w);
}

/* Bumps an owner-only counter without a locked instruction. */
static inline void gr__stat_inc(_Atomic(uint64_t) *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

#endif
