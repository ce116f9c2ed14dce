/*
 * Internal actor representation and lifecycle: spawn, one scheduler turn,
 * exit, finalisation. The public API is in include/grove/actor.h.
 */
#ifndef GROVE_ACTOR_ACTOR_H
#define GROVE_ACTOR_ACTOR_H

#include <grove/actor.h>

#include "actor/mailbox.h"

struct gr__worker;

/* Actor flags (owner-only field). */
enum {
    GR__ACTOR_INBOX = 1u << 0, /* An inbox: its owner thread pops it. */
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
    uint8_t align_skew; /* Bytes between the malloc block and this header. */
    uint64_t seq;       /* Spawn order, for newest-first shutdown. */
    char *name;         /* Registered name (owned), or NULL. */
    struct gr__monitors *mon; /* Monitors (owner-only), or NULL. */
    /* Line 1: the runner. */
    _Alignas(64) gr__mailbox_tail mb_tail;
    gr_system *sys;
    const gr_behaviour *b;
    uint64_t serial;              /* This actor's id-table serial. */
    struct gr__actor *sched_next; /* Link in the injection queue. */
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
};

/* Nonzero while this thread is inside a Grove callback (any system). */
extern _Thread_local int gr__callback_depth;

/*
 * Allocates, registers and initialises an actor (runs init on the calling
 * thread), then schedules it if init left messages queued. w is the calling
 * worker or NULL. flags are GR__ACTOR_* bits. On success stores the actor in
 * *out_actor (may be NULL) and its reference in *out.
 */
int gr__actor_spawn(gr_system *sys, struct gr__worker *w, const gr_behaviour *b,
                    uint32_t flags, const void *arg, size_t arg_len,
                    gr__actor **out_actor, gr_ref *out);

/*
 * Runs one turn of actor a on worker w: up to GR__BATCH messages, then either
 * reschedules it or marks its mailbox empty, or makes it exit.
 */
void gr__actor_run(struct gr__worker *w, gr__actor *a);

/* How an actor exits (bits for gr__actor_exit). */
enum {
    GR__EXIT_TERMINATE = 1u << 0,   /* Run the behaviour's terminate. */
    GR__EXIT_INIT_FAILED = 1u << 1, /* Its init failed (logged as such). */
};

/*
 * Makes a exit with reason: runs terminate (if how says so), removes its
 * name, logs the exit (naming the message being handled, if any), marks it
 * dead, and finalises it once no sender holds it.
 */
void gr__actor_exit(gr__actor *a, struct gr__worker *w, int reason,
                    const gr_msg *during, unsigned how);

/*
 * Frees an actor that is dead and unpinned: queued messages become dead
 * letters with reason stopped, then its slot is recycled.
 */
void gr__actor_finalize(gr__actor *a);

/* Returns the actor's reference. */
gr_ref gr__actor_ref(const gr__actor *a);

#endif
