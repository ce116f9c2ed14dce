/*
 * Backpressure between actors, after Pony's muting: an actor whose mailbox
 * runs deep marks itself overloaded; an actor that sends it an application
 * message is then held back ("muted") after that message, off every run
 * queue, until the overloaded actor has caught up. Senders are slowed
 * without a worker ever blocking and without a message being lost or
 * refused.
 *
 * The rule, exactly:
 *  - An actor is marked overloaded when a turn of its handles a full batch
 *    (GR__BATCH) and leaves at least GR__MUTE_HIGH messages queued, or when
 *    a sender sees that many queued (senders sample the depth, one send in
 *    GR__MUTE_SAMPLE).
 *  - A turn that sends an application message (not a reply) to an
 *    overloaded actor on this node ends after that message, with the
 *    sender muted on it, unless the target is itself muted. So muted
 *    actors form chains that end in one that runs, never rings in which
 *    each waits for the next; and a relay that others wait on is held
 *    back by a slow consumer in turn, so the whole chain is bounded.
 *  - At the end of each of its turns with at most GR__MUTE_LOW messages
 *    queued, the overloaded actor resumes one muted sender (oldest muted
 *    last); when it finds its mailbox empty (and its count agrees), or it
 *    exits, it resumes them all.
 *    It stays overloaded while any sender is muted on it, so new senders
 *    queue up behind those already waiting.
 *  - A muted actor's mailbox stays owned, so messages sent to it queue
 *    without scheduling it; it handles them, exit signals included, once
 *    it is resumed.
 *
 * Limits: a single message's handler is never cut short (one that sends a
 * million messages in one call queues them all); inboxes and threads that
 * are not workers (the I/O thread, timers, gr_system_tell from outside)
 * are never muted, and an inbox is never overloaded; sends to other nodes
 * are bounded by the node link's window instead.
 *
 * The muted senders form a stack (linked through sched_next) that senders
 * push and only the overloaded actor's runner pops, so popping one at a
 * time is free of ABA. A sender pushes itself, then reads the flag again:
 * if the actor has meanwhile caught up (cleared the flag), the sender sends
 * it GR__MSG_UNMUTE, whose turn will find the sender on the stack. With the
 * flag's clear and the stack's pops and pushes sequentially consistent, no
 * sender is left on a stack nobody looks at.
 */
#ifndef GROVE_ACTOR_MUTE_H
#define GROVE_ACTOR_MUTE_H

#include <stdbool.h>

#include "actor/actor.h"
#include "actor/scheduler.h"

/* Queued messages at which an actor counts as overloaded (a few batches:
 * a short burst mutes nobody). */
#define GR__MUTE_HIGH 1024
/* Queued messages at or below which an overloaded actor resumes a muted
 * sender: early enough that it still has work while the sender runs. */
#define GR__MUTE_LOW 256
/* One send in this many to an actor (by its count of pushes) also reads
 * its runner's count of pops, to see a deep mailbox whose runner has not
 * had a turn to notice (a power of two). */
#define GR__MUTE_SAMPLE 64

/* Marks a overloaded and notes it as w's turn's target when it holds at
 * least GR__MUTE_HIGH messages (before: its pushes before this send). */
void gr__mute_check_depth(gr__worker *w, gr__actor *a, uint64_t before);

/* Notes, in the sending worker's turn, that a send of m went to a (before:
 * a's pushes before this one): one relaxed load per send, and a read of
 * the runner's line one send in GR__MUTE_SAMPLE. */
static inline void gr__mute_note(gr__worker *w, gr__actor *a, const gr_msg *m,
                                 uint64_t before)
{
    if (w == NULL || m->type >= GR_MSG_RESERVED || (m->flags & GR_MSG_REPLY))
        return;
    if (atomic_load_explicit(&a->overloaded, memory_order_relaxed))
        w->mute_on = a->serial;
    else if ((before & (GR__MUTE_SAMPLE - 1)) == 0 &&
             !(a->flags & GR__ACTOR_INBOX)) /* Inboxes never catch up. */
        gr__mute_check_depth(w, a, before);
}

/* Whether a's turn on w must end in gr__mute_turn_end: it was full, it
 * sent to an overloaded actor, or a is overloaded or has senders muted. */
static inline bool gr__mute_due(const gr__worker *w, gr__actor *a, bool full)
{
    return full || w->mute_on != 0 ||
           atomic_load_explicit(&a->overloaded, memory_order_relaxed) ||
           atomic_load_explicit(&a->muted, memory_order_relaxed) != NULL;
}

/*
 * At the end of a's turn on w, when gr__mute_due(), before a's mailbox is
 * marked empty or a is requeued: updates a's overloaded flag and resumes
 * its muted senders as the rule says (full: the turn handled a full batch;
 * drained: it found the mailbox empty), then mutes a if its turn sent to
 * an overloaded actor. Returns true when a was muted: the caller must then
 * leave a alone, as it may already be running elsewhere.
 */
bool gr__mute_turn_end(gr__worker *w, gr__actor *a, bool full, bool drained);

/* Clears a's overloaded flag and resumes every actor muted on it (w: the
 * calling worker, or NULL). Called as a exits and as it is finalised. */
void gr__mute_release(gr__worker *w, gr__actor *a);

/* Empties a's muted stack without resuming anyone and clears its flag:
 * for the shutdown sweep, which stops every actor itself once the workers
 * are gone (single-threaded). */
void gr__mute_forget(gr__actor *a);

#endif
