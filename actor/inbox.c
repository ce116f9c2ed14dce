/*
 * Inboxes: actors without a handler whose mailbox is popped by a non-actor
 * thread. The mailbox's "was empty" signal posts a semaphore instead of
 * scheduling; the semaphore lives in the actor's state area.
 */
#define _GNU_SOURCE /* sem_clockwait */
#include <grove/inbox.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <time.h>

#include "actor/assert.h"
#include "actor/message.h"
#include "actor/relations.h"
#include "actor/request.h"
#include "actor/system.h"

/* Never called: inboxes are popped by their owner, not scheduled. */
static int inbox_handle(gr_ctx *ctx, void *state, const gr_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    return GR_EUNHANDLED;
}

/* An inbox's state: the semaphore a sender posts when it finds the mailbox
 * empty (first, see gr__actor_state's users), and the owner thread. */
typedef struct inbox_state {
    sem_t posted;
    pthread_t owner;
    /* Set once init has run: an inbox is reachable (by a stop's wake)
     * from its id table slot on, before its semaphore exists. */
    _Atomic(bool) ready;
} inbox_state;

/* Runs in the opening thread, which owns the inbox. */
static int inbox_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    (void)arg;
    (void)len;
    inbox_state *s = state;
    s->owner = pthread_self();
    if (sem_init(&s->posted, 0, 0) != 0)
        return GR_ESYS;
    /* release: the wake that sees it sees the semaphore and owner. */
    atomic_store_explicit(&s->ready, true, memory_order_release);
    return GR_OK;
}

static const gr_behaviour inbox_behaviour = {
    .name = "inbox",
    .state_size = sizeof(inbox_state),
    .init = inbox_init,
    .handle = inbox_handle,
};

static gr__actor *actor_of(const gr_inbox *inbox)
{
    return (gr__actor *)inbox;
}

int gr_inbox_open(gr_system *sys, gr_inbox **out)
{
    return gr__inbox_open(sys, 0, out);
}

int gr__inbox_open(gr_system *sys, uint32_t flags, gr_inbox **out)
{
    if (sys == NULL || out == NULL)
        return GR_EINVAL;
    if (gr__in_handler())
        return GR_EWRONGTHREAD;
    gr__actor *a;
    const gr__spawn_opts opts = {.flags = GR__ACTOR_INBOX | flags};
    int rc = gr__actor_spawn(sys, NULL, &inbox_behaviour, &opts, NULL, 0, &a,
                             NULL, NULL);
    if (rc != GR_OK)
        return rc;
    atomic_fetch_add_explicit(&sys->open_inboxes, 1, memory_order_relaxed);
    *out = (gr_inbox *)a;
    return GR_OK;
}

gr_ref gr_inbox_ref(const gr_inbox *inbox)
{
    return gr__actor_ref(actor_of(inbox));
}

/* Waits for a post on sem until deadline (NULL: forever). Returns false on
 * timeout. */
static bool wait_post(sem_t *sem, const struct timespec *deadline)
{
    for (;;) {
        int rc = deadline ? sem_clockwait(sem, CLOCK_MONOTONIC, deadline)
                          : sem_wait(sem);
        if (rc == 0)
            return true;
        if (errno != EINTR)
            return false;
    }
}

int gr_inbox_recv(gr_inbox *inbox, gr_msg **out, gr_duration timeout)
{
    if (inbox == NULL || out == NULL || timeout < GR_DURATION_DEFAULT)
        return GR_EINVAL;
    /* Only the owner receives (two threads popping one mailbox would race),
     * and never with a wait inside a callback (an init run on the owner's
     * thread included). */
    if (!pthread_equal(((inbox_state *)gr__actor_state(actor_of(inbox)))->owner,
                       pthread_self()) ||
        (timeout != GR_DURATION_ZERO && gr__in_handler()))
        return GR_EWRONGTHREAD;
    /* Receiving has no limit of its own: the default is to wait. */
    int32_t timeout_ms = timeout < 0 ? -1 : timeout;
    gr__actor *a = actor_of(inbox);
    struct timespec deadline;
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    for (bool last_try = false;;) {
        gr__node *node = gr__mailbox_pop(&a->mb_head, &a->mb_tail);
        if (node != NULL)
            gr__actor_popped(a);
        gr_reason unused;
        if (node != NULL && ((gr__env *)node)->msg.type >= GR_MSG_RESERVED &&
            gr__signal(a, NULL, &((gr__env *)node)->msg, &unused) !=
                GR__SIG_DELIVER) {
            /* A monitor or link request: the runtime's business. An inbox
             * never exits on a signal (it traps them all). */
            gr__env_free((gr__env *)node);
            continue;
        }
        if (node != NULL) {
            atomic_fetch_add_explicit(&a->sys->inbox_delivered, 1,
                                      memory_order_relaxed);
            *out = &((gr__env *)node)->msg;
            return GR_OK;
        }
        if (last_try)
            return GR_ETIMEDOUT;
        if (!gr__mailbox_is_marked(&a->mb_head) &&
            !gr__mailbox_mark_empty(&a->mb_head, &a->mb_tail)) {
            /* A sender is between its exchange and its link. */
            sched_yield();
            continue;
        }
        /* Empty and marked. Checked after the mark: a stop that comes
         * later posts the semaphore, so the wait below ends. */
        if (atomic_load(&a->sys->stopping))
            return GR_ESTOPPED;
        /* Marked: the next sender posts the semaphore. A post left over
         * from a message already taken only causes one more loop. */
        if (timeout_ms == 0 ||
            !wait_post(&((inbox_state *)gr__actor_state(a))->posted,
                       timeout_ms > 0 ? &deadline : NULL))
            last_try = true;
    }
}

/* What gr__inboxes_wake counts: the caller's inboxes. */
struct wake_count {
    pthread_t self;
    int mine;
};

static void wake_inbox(gr__actor *a, gr_ref ref, void *arg)
{
    (void)ref;
    struct wake_count *c = arg;
    if (!(a->flags & GR__ACTOR_INBOX))
        return;
    inbox_state *s = gr__actor_state(a);
    if (!atomic_load_explicit(&s->ready, memory_order_acquire))
        return; /* Being opened: its owner is not waiting yet. */
    c->mine += pthread_equal(s->owner, c->self) != 0;
    sem_post(&s->posted);
}

int gr__inboxes_wake(gr_system *sys)
{
    struct wake_count c = {.self = pthread_self()};
    gr__each_live_actor(sys, wake_inbox, &c);
    return c.mine;
}

void gr_msg_free(gr_msg *msg)
{
    if (msg != NULL)
        gr__env_free(gr__env_of(msg));
}

void gr_inbox_close(gr_inbox *inbox)
{
    if (inbox == NULL)
        return;
    gr__actor *a = actor_of(inbox);
    /* Another thread's close would free it under its owner's wait. */
    GR_ASSERT(pthread_equal(((inbox_state *)gr__actor_state(a))->owner,
                            pthread_self()) &&
              "gr_inbox_close: only the thread that opened it may close it");
    gr_system *sys = a->sys;
    gr__actor_exit(a, NULL, &(gr_reason){.code = GR_OK}, 0);
    /* Last: a shutdown waiting for inboxes to close may free sys once the
     * count drops (release: pairs with its acquire). */
    atomic_fetch_sub_explicit(&sys->open_inboxes, 1, memory_order_release);
}
