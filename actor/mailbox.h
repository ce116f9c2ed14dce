/*
 * The actor mailbox: Vyukov's intrusive multi-producer single-consumer
 * queue, with one extra bit that tells producers when the queue was empty.
 *
 * Any thread may push; only the actor's current runner pops. The consumer
 * "marks" the mailbox empty (bit 0 of head) when it finds nothing left and
 * gives up its turn; the producer whose push replaces a marked head gets
 * `true` back and is the one, and only one, who schedules the actor. A
 * mailbox that is not marked belongs to someone (scheduled, running, in
 * init, or exited), so pushes to it never schedule.
 *
 * Nodes are handed to the consumer whole: pop returns a node the caller now
 * owns. The embedded stub is recycled through the queue when it drains.
 */
#ifndef GROVE_ACTOR_MAILBOX_H
#define GROVE_ACTOR_MAILBOX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A queue link; the first member of every envelope. */
typedef struct gr__node {
    _Atomic(struct gr__node *) next;
} gr__node;

/* Producer end: written by every sender, so it gets its own cache line. */
typedef struct gr__mailbox_head {
    _Atomic(uintptr_t) head; /* Last node pushed; bit 0 set = marked empty. */
} gr__mailbox_head;

/* Consumer end: touched only by the actor's current runner. */
typedef struct gr__mailbox_tail {
    gr__node *tail; /* Oldest node not yet popped (may be the stub). */
    gr__node stub;  /* Placeholder that keeps the list non-empty. */
} gr__mailbox_tail;

/* Initialises an empty mailbox in the unmarked ("owned") state. */
static inline void gr__mailbox_init(gr__mailbox_head *h, gr__mailbox_tail *t)
{
    atomic_init(&t->stub.next, NULL);
    t->tail = &t->stub;
    atomic_init(&h->head, (uintptr_t)&t->stub);
}

/*
 * Appends n. Returns true when the mailbox was marked empty, in which case
 * the caller must schedule the actor. Callable from any thread.
 */
static inline bool gr__mailbox_push(gr__mailbox_head *h, gr__node *n)
{
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    /* acq_rel: release publishes n's contents to the consumer; acquire pairs
     * with the consumer's release in mark_empty so that whoever schedules the
     * actor next also sees everything its last turn wrote. */
    uintptr_t prev =
        atomic_exchange_explicit(&h->head, (uintptr_t)n, memory_order_acq_rel);
    gr__node *p = (gr__node *)(prev & ~(uintptr_t)1);
    /* release: the consumer's acquire load of p->next then sees n whole. */
    atomic_store_explicit(&p->next, n, memory_order_release);
    return (prev & 1) != 0;
}

/*
 * Removes and returns the oldest node, which the caller then owns, or NULL
 * when the mailbox looks empty. NULL can also mean a producer is between its
 * exchange and its link; gr__mailbox_mark_empty() then fails, which tells
 * the consumer to come back later. Consumer only.
 */
static inline gr__node *gr__mailbox_pop(gr__mailbox_head *h,
                                        gr__mailbox_tail *t)
{
    gr__node *tail = t->tail;
    /* acquire: pairs with the producer's release store of next. */
    gr__node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &t->stub) {
        if (next == NULL)
            return NULL;
        t->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next != NULL) {
        t->tail = next;
        return tail;
    }
    /* tail is the last linked node. If head is not tail, a producer has
     * exchanged head but not linked yet: report empty for now. */
    if (atomic_load_explicit(&h->head, memory_order_acquire) != (uintptr_t)tail)
        return NULL;
    /* Put the stub behind tail so tail can be handed out whole. The mailbox
     * is not marked here (only the consumer marks), so this never reports
     * "was empty". */
    (void)gr__mailbox_push(h, &t->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next != NULL) {
        t->tail = next;
        return tail;
    }
    return NULL;
}

/*
 * Marks the mailbox empty if it truly is. Returns true on success: the next
 * push will report "was empty". Returns false when messages are present or
 * on their way; the consumer must then keep the actor scheduled. Consumer
 * only, after gr__mailbox_pop() returned NULL.
 */
static inline bool gr__mailbox_mark_empty(gr__mailbox_head *h,
                                          gr__mailbox_tail *t)
{
    if (t->tail != &t->stub)
        return false;
    uintptr_t expect = (uintptr_t)&t->stub;
    /* acq_rel on success: release hands this turn's writes to the producer
     * that will schedule the actor next (it exchanges with acquire). */
    return atomic_compare_exchange_strong_explicit(
        &h->head, &expect, expect | 1, memory_order_acq_rel,
        memory_order_relaxed);
}

/* Returns true when the mailbox is marked empty. Consumer only. */
static inline bool gr__mailbox_is_marked(gr__mailbox_head *h)
{
    return (atomic_load_explicit(&h->head, memory_order_acquire) & 1) != 0;
}

#endif
