#include "actor/mute.h"

#include "actor/send.h"
#include "actor/system.h"

/* Reschedules a muted actor taken off a stack. */
static void resume(gr__worker *w, gr__actor *a)
{
    atomic_store_explicit(&a->is_muted, false, memory_order_seq_cst);
    gr__sched_submit(&a->sys->sched, w, a);
}

/* Reschedules the actors of a muted stack taken whole. */
static void resume_all(gr__worker *w, gr__actor *list)
{
    while (list != NULL) {
        gr__actor *next = list->sched_next;
        resume(w, list);
        list = next;
    }
}

void gr__mute_release(gr__worker *w, gr__actor *a)
{
    /* seq_cst, both: see the handshake in mute.h. */
    atomic_store_explicit(&a->overloaded, false, memory_order_seq_cst);
    resume_all(w,
               atomic_exchange_explicit(&a->muted, NULL, memory_order_seq_cst));
}

void gr__mute_forget(gr__actor *a)
{
    atomic_store_explicit(&a->overloaded, false, memory_order_relaxed);
    atomic_store_explicit(&a->muted, NULL, memory_order_relaxed);
    atomic_store_explicit(&a->is_muted, false, memory_order_relaxed);
}

/* Resumes the sender muted on a most recently, if any; returns whether
 * any sender is still muted on a. a's runner only. */
static bool resume_one(gr__worker *w, gr__actor *a)
{
    gr__actor *top = atomic_load_explicit(&a->muted, memory_order_acquire);
    /* Only this runner pops, so top cannot be popped and pushed again
     * between the load and the exchange (no ABA). */
    while (top != NULL && !atomic_compare_exchange_weak_explicit(
                              &a->muted, &top, top->sched_next,
                              memory_order_seq_cst, memory_order_acquire))
        ;
    if (top == NULL)
        return false;
    gr__actor *rest = top->sched_next;
    resume(w, top);
    return rest != NULL;
}

void gr__mute_check_depth(gr__worker *w, gr__actor *a, uint64_t before)
{
    if (gr__actor_queued_before(a, before) < GR__MUTE_HIGH)
        return;
    atomic_store_explicit(&a->overloaded, true, memory_order_relaxed);
    w->mute_on = a->serial;
}

/* a's own side of the rule, at the end of its turn. A mailbox found
 * empty while the count says many are queued has a sender stalled between
 * its push's two steps (preempted, say), with everything sent since queued
 * behind it: that is not caught up. */
static void catch_up(gr__worker *w, gr__actor *a, bool full, bool drained)
{
    uint64_t depth = gr__actor_depth(a);
    if (drained && depth <= GR__MUTE_LOW) {
        gr__mute_release(w, a);
        return;
    }
    if (full && depth >= GR__MUTE_HIGH) {
        atomic_store_explicit(&a->overloaded, true, memory_order_relaxed);
    } else if (depth <= GR__MUTE_LOW && !resume_one(w, a)) {
        /* seq_cst: a sender that pushes itself after this reads false and
         * sends GR__MSG_UNMUTE, so the next turn resumes it. */
        atomic_store_explicit(&a->overloaded, false, memory_order_seq_cst);
    }
}

/* Mutes a on the actor whose serial w noted; returns whether it did. */
static bool mute_on(gr__worker *w, gr__actor *a, uint64_t serial)
{
    gr_system *sys = a->sys;
    gr__actor *r = gr__idtable_acquire(&sys->ids, serial);
    if (r == NULL)
        return false; /* It exited: nothing to wait for. */
    bool muted = false;
    /* seq_cst, both: of two actors about to mute on each other, at least
     * one sees the other's flag and backs off, so no ring of muted actors
     * can form (each would wait for the next to resume it). */
    atomic_store_explicit(&a->is_muted, true, memory_order_seq_cst);
    if (r != a && atomic_load_explicit(&r->overloaded, memory_order_relaxed) &&
        !atomic_load_explicit(&r->is_muted, memory_order_seq_cst)) {
        gr_ref self = gr__actor_ref(a), target = gr__actor_ref(r);
        gr__actor *top = atomic_load_explicit(&r->muted, memory_order_relaxed);
        do
            a->sched_next = top;
        while (!atomic_compare_exchange_weak_explicit(
            &r->muted, &top, a, memory_order_seq_cst, memory_order_relaxed));
        /* From here a may be resumed, and run, by r's runner: a is not
         * touched again. */
        muted = true;
        if (!atomic_load_explicit(&r->overloaded, memory_order_seq_cst))
            (void)gr__deliver(sys, w, GR__MSG_UNMUTE, self, target, 0, NULL, 0);
    }
    if (!muted)
        atomic_store_explicit(&a->is_muted, false, memory_order_relaxed);
    if (gr__idtable_release(&sys->ids, serial))
        gr__actor_finalize(r);
    return muted;
}

bool gr__mute_turn_end(gr__worker *w, gr__actor *a, bool full, bool drained)
{
    if (full || atomic_load_explicit(&a->overloaded, memory_order_relaxed) ||
        atomic_load_explicit(&a->muted, memory_order_relaxed) != NULL)
        catch_up(w, a, full, drained);
    uint64_t serial = w->mute_on;
    if (serial == 0)
        return false;
    w->mute_on = 0;
    if (!mute_on(w, a, serial))
        return false;
    gr__stat_inc(&w->stats.muted, 1);
    return true;
}

bool gr__backlogged(gr_system *sys, gr_ref ref, bool held)
{
    if (ref.node != sys->node_id || ref.incarnation != sys->incarnation)
        return false;
    gr__actor *a = gr__idtable_acquire(&sys->ids, ref.serial);
    if (a == NULL)
        return false;
    uint64_t depth = gr__actor_depth(a);
    if (gr__idtable_release(&sys->ids, ref.serial))
        gr__actor_finalize(a);
    return depth >= GR__MUTE_HIGH || (held && depth > GR__MUTE_LOW);
}
