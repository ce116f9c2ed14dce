/*
 * Unit tests of the actor mailbox (actor/mailbox.h): FIFO order, whole-node
 * hand-off, the "marked empty" bit, and two multi-threaded stresses: plain
 * multi-producer delivery, and the schedule-exactly-once protocol that the
 * bit exists for.
 */
/* actor/mailbox.h uses NULL without including <stddef.h>; until it does,
 * include it first so this file builds. */
#include <stddef.h>

#include "actor/mailbox.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "testing.h"

/* Producing time of each stress case; it ends the work, not the checks. */
#define STRESS_BUDGET_S 2.0
/* Past this many seconds a stress case gives up and fails (lost message,
 * lost hand-off or livelock); well under the CTest timeout. */
#define STRESS_DEADLINE_S 25.0

/* A test message: the queue link first, then who sent it and in what order. */
struct msg {
    gr__node node;
    uint32_t producer;
    uint64_t seq;
};

/* A mailbox as an actor holds it: producer end and consumer end. */
struct box {
    gr__mailbox_head h;
    gr__mailbox_tail t;
};

static struct msg *as_msg(gr__node *n)
{
    return (struct msg *)n;
}

static gr__node *pop(struct box *b)
{
    return gr__mailbox_pop(&b->h, &b->t);
}

static bool push(struct box *b, struct msg *m)
{
    return gr__mailbox_push(&b->h, &m->node);
}

/* One thread's messages pop in push order, also when pushes and pops
 * interleave, and pop reports NULL once the mailbox is drained. */
static void fifo_single_thread(void)
{
    enum { N = 3000 };
    static struct msg m[3 * N];
    struct box b;
    gr__mailbox_init(&b.h, &b.t);
    CHECK(pop(&b) == NULL);

    for (int i = 0; i < N; i++) {
        m[i].seq = (uint64_t)i;
        CHECK(!push(&b, &m[i]));
    }
    for (int i = 0; i < N; i++) {
        gr__node *n = pop(&b);
        CHECK(n == &m[i].node);
        CHECK_EQ(as_msg(n)->seq, i);
    }
    CHECK(pop(&b) == NULL);

    /* Interleaved: push one to three, pop one; the backlog grows and then
     * drains, and the stub is recycled whenever it empties. */
    int pushed = 0, popped = 0;
    for (int r = 0; r < N; r++) {
        for (int k = 0; k <= r % 3; k++) {
            m[pushed].seq = (uint64_t)pushed;
            CHECK(!push(&b, &m[pushed]));
            pushed++;
        }
        gr__node *n = pop(&b);
        CHECK(n != NULL);
        CHECK_EQ(as_msg(n)->seq, popped);
        popped++;
    }
    for (gr__node *n; (n = pop(&b)) != NULL; popped++)
        CHECK_EQ(as_msg(n)->seq, popped);
    CHECK_EQ(popped, pushed);
    CHECK(pop(&b) == NULL);
}

/* pop hands the node over whole: the caller may free or re-push it at once,
 * also when the queue drained to that one node and the stub was recycled. */
static void pop_hands_node_whole(void)
{
    struct box b;
    gr__mailbox_init(&b.h, &b.t);

    /* Drain to one node each time: pop must recycle the stub behind it and
     * never touch it again. Scribbled and freed right away, so ASan (or a
     * wild pointer in a plain build) catches any later access. */
    for (int i = 0; i < 200; i++) {
        struct msg *m = malloc(sizeof *m);
        CHECK(m != NULL);
        m->seq = (uint64_t)i;
        CHECK(!push(&b, m));
        gr__node *n = pop(&b);
        CHECK(n == &m->node);
        CHECK_EQ(m->seq, i);
        memset(m, 0xA5, sizeof *m);
        free(m);
        CHECK(pop(&b) == NULL);
    }

    /* Two in flight: the first pop is a plain unlink, the second drains. */
    for (int i = 0; i < 200; i++) {
        struct msg *a = malloc(sizeof *a), *c = malloc(sizeof *c);
        CHECK(a != NULL && c != NULL);
        a->seq = 1;
        c->seq = 2;
        CHECK(!push(&b, a));
        CHECK(!push(&b, c));
        CHECK(pop(&b) == &a->node);
        memset(a, 0xA5, sizeof *a);
        free(a);
        CHECK(pop(&b) == &c->node);
        CHECK_EQ(c->seq, 2);
        memset(c, 0xA5, sizeof *c);
        free(c);
        CHECK(pop(&b) == NULL);
    }

    /* Reuse: a popped node goes straight back in; order must hold. */
    struct msg x = {.seq = 0}, y = {.seq = 1};
    CHECK(!push(&b, &x));
    CHECK(!push(&b, &y));
    uint64_t expect = 0;
    for (int i = 0; i < 1000; i++) {
        gr__node *n = pop(&b);
        CHECK(n != NULL);
        CHECK_EQ(as_msg(n)->seq, expect);
        expect++;
        as_msg(n)->seq = expect + 1; /* It comes back after the other one. */
        CHECK(!gr__mailbox_push(&b.h, n));
    }
    CHECK(pop(&b) != NULL);
    CHECK(pop(&b) != NULL);
    CHECK(pop(&b) == NULL);
    CHECK(gr__mailbox_mark_empty(&b.h, &b.t));
}

/* A new mailbox is unmarked (owned), so pushes report was_empty=false until
 * the consumer marks it; after a mark exactly the next push reports true. */
static void marked_bit_reports_once(void)
{
    struct msg m[8];
    struct box b;
    gr__mailbox_init(&b.h, &b.t);
    CHECK(!gr__mailbox_is_marked(&b.h));
    CHECK(!push(&b, &m[0]));
    CHECK(!push(&b, &m[1]));
    CHECK(pop(&b) == &m[0].node);
    CHECK(pop(&b) == &m[1].node);
    CHECK(pop(&b) == NULL);
    /* Drained but not marked: still owned, still no report. */
    CHECK(!gr__mailbox_is_marked(&b.h));
    CHECK(!push(&b, &m[2]));
    CHECK(pop(&b) == &m[2].node);
    CHECK(pop(&b) == NULL);

    CHECK(gr__mailbox_mark_empty(&b.h, &b.t));
    CHECK(gr__mailbox_is_marked(&b.h));
    CHECK(pop(&b) == NULL);
    CHECK(gr__mailbox_is_marked(&b.h)); /* An empty pop keeps the mark. */
    CHECK(push(&b, &m[3]));
    CHECK(!gr__mailbox_is_marked(&b.h));
    CHECK(!push(&b, &m[4]));
    CHECK(!push(&b, &m[5]));
    CHECK(pop(&b) == &m[3].node);
    CHECK(pop(&b) == &m[4].node);
    CHECK(pop(&b) == &m[5].node);
    CHECK(pop(&b) == NULL);

    /* Many turns: each mark buys exactly one true, whatever follows. */
    for (int r = 0; r < 1000; r++) {
        CHECK(gr__mailbox_mark_empty(&b.h, &b.t));
        int k = 1 + r % 4;
        for (int i = 0; i < k; i++)
            CHECK_EQ(push(&b, &m[i]), i == 0);
        for (int i = 0; i < k; i++)
            CHECK(pop(&b) == &m[i].node);
        CHECK(pop(&b) == NULL);
    }
}

/* mark_empty fails while a message is present (pushed but not yet popped, or
 * still queued behind a popped one), and a failed mark leaves the mailbox
 * unmarked so the next push does not report was_empty. */
static void mark_fails_with_message(void)
{
    struct msg a, c;
    struct box b;
    gr__mailbox_init(&b.h, &b.t);

    /* Pushed onto the untouched stub, never popped. */
    CHECK(!push(&b, &a));
    CHECK(!gr__mailbox_mark_empty(&b.h, &b.t));
    CHECK(!gr__mailbox_is_marked(&b.h));
    CHECK(!push(&b, &c));
    /* One popped, one left behind it. */
    CHECK(pop(&b) == &a.node);
    CHECK(!gr__mailbox_mark_empty(&b.h, &b.t));
    CHECK(!gr__mailbox_is_marked(&b.h));
    CHECK(pop(&b) == &c.node);
    CHECK(pop(&b) == NULL);
    CHECK(gr__mailbox_mark_empty(&b.h, &b.t));
    CHECK(push(&b, &a));

    /* Pushed after the stub was recycled behind a drained node. */
    CHECK(pop(&b) == &a.node);
    CHECK(!push(&b, &c));
    CHECK(!gr__mailbox_mark_empty(&b.h, &b.t));
    CHECK(!push(&b, &a));
    CHECK(pop(&b) == &c.node);
    CHECK(!gr__mailbox_mark_empty(&b.h, &b.t));
    CHECK(pop(&b) == &a.node);
    CHECK(pop(&b) == NULL);
    CHECK(gr__mailbox_mark_empty(&b.h, &b.t));
    CHECK(gr__mailbox_is_marked(&b.h));
}

/* Does the first half of gr__mailbox_push(): swaps head to m but does not
 * link it yet, like a producer preempted mid-push. Returns the node whose
 * next m must still be linked from. */
static gr__node *half_push(struct box *b, struct msg *m)
{
    atomic_store(&m->node.next, NULL);
    uintptr_t prev = atomic_exchange(&b->h.head, (uintptr_t)&m->node);
    return (gr__node *)(prev & ~(uintptr_t)1);
}

/* While a producer is between its exchange and its link, pop reports
 * nothing and mark_empty fails, also in the window where pop has already
 * put the stub back behind the unlinked node; once linked, nothing is lost.
 * (White-box: the interleaving is built step by step.) */
static void mark_fails_while_link_pending(void)
{
    struct msg a, c;
    struct box b;
    gr__mailbox_init(&b.h, &b.t);

    /* Pending on the stub itself. */
    gr__node *prev = half_push(&b, &a);
    CHECK(prev == &b.t.stub);
    CHECK(pop(&b) == NULL);
    CHECK(!gr__mailbox_mark_empty(&b.h, &b.t));
    atomic_store(&prev->next, &a.node);
    CHECK(pop(&b) == &a.node);
    CHECK(pop(&b) == NULL);

    /* The window inside pop: pop finds a as the last node with head == a,
     * a producer then swaps head to c, and pop pushes the stub behind c
     * before c is linked after a. Head is the stub again, but c is
     * still on its way: marking now would strand it. */
    CHECK(!push(&b, &a));
    CHECK(pop(&b) == &a.node); /* Drains; the stub is recycled. */
    CHECK(!push(&b, &a));
    prev = half_push(&b, &c);
    CHECK(prev == &a.node);
    CHECK(pop(&b) == NULL); /* Sees a, not linked onwards, head is c. */
    CHECK(b.t.tail == &a.node);
    CHECK(!gr__mailbox_push(&b.h, &b.t.stub)); /* What pop does next. */
    CHECK(atomic_load(&b.h.head) == (uintptr_t)&b.t.stub);
    CHECK(pop(&b) == NULL);
    CHECK(!gr__mailbox_mark_empty(&b.h, &b.t));
    CHECK(!gr__mailbox_is_marked(&b.h));
    atomic_store(&prev->next, &c.node); /* The producer finishes. */
    CHECK(pop(&b) == &a.node);
    CHECK(pop(&b) == &c.node);
    CHECK(pop(&b) == NULL);
    CHECK(gr__mailbox_mark_empty(&b.h, &b.t));
}

/* ---- Multi-producer delivery ------------------------------------------ */

enum {
    MPSC_PRODUCERS = 4,
    MPSC_ROUND = 20000, /* Messages per producer per round; reused. */
};

struct mpsc {
    struct box b;
    struct msg *msgs[MPSC_PRODUCERS];
    _Atomic(uint64_t) rounds_open; /* Producers may fill rounds below it. */
    _Atomic(int) stop;             /* No further rounds. */
    _Atomic(uint64_t) bad_true;    /* Pushes that said was_empty. */
};

struct producer_arg {
    struct mpsc *c;
    uint32_t id;
};

static void *mpsc_producer(void *p)
{
    struct producer_arg *a = p;
    struct mpsc *c = a->c;
    struct msg *m = c->msgs[a->id];
    for (uint64_t r = 0;; r++) {
        /* acquire: the consumer has popped every message of round r-1, so
         * reusing the array is safe (this is the whole-node hand-off). */
        while (atomic_load_explicit(&c->rounds_open, memory_order_acquire) <=
               r) {
            if (atomic_load_explicit(&c->stop, memory_order_acquire))
                return NULL;
            sched_yield();
        }
        for (uint32_t i = 0; i < MPSC_ROUND; i++) {
            m[i].producer = a->id;
            m[i].seq = r * MPSC_ROUND + i;
            if (push(&c->b, &m[i]))
                atomic_fetch_add(&c->bad_true, 1);
        }
    }
}

/* Four producers push concurrently to one consumer: every message arrives
 * once, none is lost, each producer's messages keep their order, and an
 * unmarked mailbox never reports was_empty. */
static void mpsc_stress(void)
{
    static struct mpsc c;
    static struct producer_arg args[MPSC_PRODUCERS];
    pthread_t th[MPSC_PRODUCERS];
    gr__mailbox_init(&c.b.h, &c.b.t);
    atomic_init(&c.rounds_open, 0);
    atomic_init(&c.stop, 0);
    atomic_init(&c.bad_true, 0);
    for (int p = 0; p < MPSC_PRODUCERS; p++) {
        c.msgs[p] = calloc(MPSC_ROUND, sizeof(struct msg));
        CHECK(c.msgs[p] != NULL);
    }
    for (int p = 0; p < MPSC_PRODUCERS; p++) {
        args[p] = (struct producer_arg){&c, (uint32_t)p};
        CHECK(pthread_create(&th[p], NULL, mpsc_producer, &args[p]) == 0);
    }

    uint64_t expect[MPSC_PRODUCERS] = {0};
    uint64_t disorder = 0, strangers = 0, rounds = 0;
    int timed_out = 0;
    double t0 = test_now();
    atomic_store(&c.rounds_open, 1);
    while (!timed_out) {
        uint64_t got = 0;
        while (got < (uint64_t)MPSC_PRODUCERS * MPSC_ROUND) {
            gr__node *n = pop(&c.b);
            if (n == NULL) {
                if (test_now() - t0 > STRESS_DEADLINE_S) {
                    timed_out = 1;
                    break;
                }
                sched_yield();
                continue;
            }
            struct msg *m = as_msg(n);
            if (m->producer >= MPSC_PRODUCERS) {
                strangers++;
                continue;
            }
            if (m->seq != expect[m->producer])
                disorder++;
            expect[m->producer] = m->seq + 1;
            got++;
        }
        if (timed_out)
            break;
        rounds++;
        if (test_now() - t0 > STRESS_BUDGET_S)
            break;
        atomic_store(&c.rounds_open, rounds + 1);
    }
    atomic_store(&c.stop, 1);
    for (int p = 0; p < MPSC_PRODUCERS; p++)
        pthread_join(th[p], NULL);

    /* Nothing more may come out: no duplicates, and the mailbox is truly
     * empty (mark succeeds). */
    gr__node *extra = pop(&c.b);
    bool marked = extra == NULL && gr__mailbox_mark_empty(&c.b.h, &c.b.t);
    for (int p = 0; p < MPSC_PRODUCERS; p++)
        free(c.msgs[p]);
    fprintf(stderr, "  mpsc: %" PRIu64 " rounds, %" PRIu64 " messages\n",
            rounds, rounds * MPSC_PRODUCERS * MPSC_ROUND);
    CHECK(!timed_out);
    CHECK_EQ(strangers, 0);
    CHECK_EQ(disorder, 0);
    CHECK(rounds > 0);
    for (int p = 0; p < MPSC_PRODUCERS; p++)
        CHECK_EQ(expect[p], rounds * MPSC_ROUND);
    CHECK(extra == NULL);
    CHECK(marked);
    CHECK_EQ(atomic_load(&c.bad_true), 0);
}

/* ---- The scheduling protocol ------------------------------------------ */

enum {
    HS_PRODUCERS = 4,
    HS_WORKERS = 2,
    /* Messages per turn before the actor is requeued. */
    HS_BATCH = 8,
    /* Messages per producer, at most (the time budget usually ends first). */
    HS_MAX = 2000000,
    /* Producers yield this often so the actor drains and marks, i.e. so
     * that hand-offs happen. */
    HS_PAUSE_EVERY = 16,
};

/*
 * A toy scheduler: workers take actor turns from a semaphore run queue. The
 * instrumentation atomics are relaxed on purpose, so that the only
 * happens-before edge from one turn to the next hand-off is the mailbox's
 * own (mark_empty's release, push's acquire); TSan then checks that claim
 * on the plain "actor state" fields.
 */
struct sched {
    struct box b;
    sem_t runq;                    /* One post per turn granted. */
    _Atomic(int) owner;            /* 1 from a hand-off until the turn ends. */
    _Atomic(int) running;          /* 1 while a worker runs the actor. */
    _Atomic(int) stop;             /* Workers exit. */
    _Atomic(uint64_t) overlaps;    /* Hand-offs or turns that overlapped. */
    _Atomic(uint64_t) handoffs;    /* Pushes that returned was_empty. */
    _Atomic(uint64_t) marks;       /* Successful mark_empty calls. */
    _Atomic(uint64_t) consumed;    /* Messages popped (for main to poll). */
    _Atomic(uint64_t) nomem;       /* Producers that ran out of memory. */
    uint64_t pushed[HS_PRODUCERS]; /* Per producer; read after join. */
    /* Actor state: touched only during a turn, deliberately not atomic. */
    uint64_t expect[HS_PRODUCERS];
    uint64_t disorder;
    uint64_t turns;
};

struct sched_arg {
    struct sched *s;
    uint32_t id;
    double t0;
};

static void sched_producer_push(struct sched *s, struct msg *m)
{
    if (!push(&s->b, m))
        return;
    /* We saw the mark: the actor is ours to schedule, and nobody else's. */
    atomic_fetch_add_explicit(&s->handoffs, 1, memory_order_relaxed);
    if (atomic_exchange_explicit(&s->owner, 1, memory_order_relaxed) != 0)
        atomic_fetch_add_explicit(&s->overlaps, 1, memory_order_relaxed);
    sem_post(&s->runq);
}

static void *sched_producer(void *p)
{
    struct sched_arg *a = p;
    struct sched *s = a->s;
    uint32_t i = 0;
    for (; i < HS_MAX; i++) {
        if (i % 256 == 0 && test_now() - a->t0 > STRESS_BUDGET_S)
            break;
        /* Freed by the consumer: nodes change hands whole. */
        struct msg *m = malloc(sizeof *m);
        if (m == NULL) {
            atomic_fetch_add_explicit(&s->nomem, 1, memory_order_relaxed);
            break;
        }
        m->producer = a->id;
        m->seq = i;
        sched_producer_push(s, m);
        if ((i + a->id) % HS_PAUSE_EVERY == 0)
            sched_yield();
    }
    s->pushed[a->id] = i;
    return NULL;
}

/* Runs one turn of the actor: up to a batch of messages, then either
 * requeues (still owned) or gives the mailbox up by marking it empty. */
static void sched_turn(struct sched *s)
{
    if (atomic_exchange_explicit(&s->running, 1, memory_order_relaxed) != 0)
        atomic_fetch_add_explicit(&s->overlaps, 1, memory_order_relaxed);
    if (atomic_load_explicit(&s->owner, memory_order_relaxed) != 1)
        atomic_fetch_add_explicit(&s->overlaps, 1, memory_order_relaxed);
    s->turns++;
    for (;;) {
        int n = 0;
        gr__node *node;
        while (n < HS_BATCH && (node = pop(&s->b)) != NULL) {
            struct msg *m = as_msg(node);
            if (m->producer >= HS_PRODUCERS || m->seq != s->expect[m->producer])
                s->disorder++;
            else
                s->expect[m->producer]++;
            free(m);
            atomic_fetch_add_explicit(&s->consumed, 1, memory_order_relaxed);
            n++;
        }
        if (n == HS_BATCH) {
            /* Batch used up: back of the run queue, still owned. */
            atomic_store_explicit(&s->running, 0, memory_order_relaxed);
            sem_post(&s->runq);
            return;
        }
        /* Give the turn up before marking: once marked, a producer may
         * schedule us again at once. */
        atomic_store_explicit(&s->running, 0, memory_order_relaxed);
        atomic_store_explicit(&s->owner, 0, memory_order_relaxed);
        if (gr__mailbox_mark_empty(&s->b.h, &s->b.t)) {
            atomic_fetch_add_explicit(&s->marks, 1, memory_order_relaxed);
            return;
        }
        /* Not empty after all (or a push is half done): still ours, and
         * nobody can have been handed the actor meanwhile. */
        if (atomic_exchange_explicit(&s->owner, 1, memory_order_relaxed) != 0)
            atomic_fetch_add_explicit(&s->overlaps, 1, memory_order_relaxed);
        if (atomic_exchange_explicit(&s->running, 1, memory_order_relaxed) != 0)
            atomic_fetch_add_explicit(&s->overlaps, 1, memory_order_relaxed);
        if (atomic_load_explicit(&s->stop, memory_order_relaxed))
            return; /* Only on a failed run: keeps the loop bounded. */
        sched_yield();
    }
}

static void *sched_worker(void *p)
{
    struct sched *s = p;
    for (;;) {
        while (sem_wait(&s->runq) != 0 && errno == EINTR)
            ;
        if (atomic_load(&s->stop))
            return NULL;
        sched_turn(s);
    }
}

/* The marked bit schedules the actor exactly once per mark: turns never
 * overlap, each was_empty push is matched by one earlier successful mark,
 * one turn's writes are visible to the next turn (TSan), and every message
 * is consumed with no turn left pending. */
static void schedule_handoff_stress(void)
{
    static struct sched s;
    static struct sched_arg args[HS_PRODUCERS];
    pthread_t prod[HS_PRODUCERS], work[HS_WORKERS];
    memset(&s, 0, sizeof s);
    gr__mailbox_init(&s.b.h, &s.b.t);
    CHECK(sem_init(&s.runq, 0, 0) == 0);
    /* A new mailbox is owned (as during an actor's init); its first turn
     * comes from the spawner, not from a push. */
    atomic_store(&s.owner, 1);
    sem_post(&s.runq);
    for (int w = 0; w < HS_WORKERS; w++)
        CHECK(pthread_create(&work[w], NULL, sched_worker, &s) == 0);
    double t0 = test_now();
    for (int p = 0; p < HS_PRODUCERS; p++) {
        args[p] = (struct sched_arg){&s, (uint32_t)p, t0};
        CHECK(pthread_create(&prod[p], NULL, sched_producer, &args[p]) == 0);
    }
    for (int p = 0; p < HS_PRODUCERS; p++)
        pthread_join(prod[p], NULL);

    uint64_t total = 0;
    for (int p = 0; p < HS_PRODUCERS; p++)
        total += s.pushed[p];
    /* Wait for the actor to go idle: all consumed and the last turn's mark
     * not yet answered by any push. */
    uint64_t handoffs = atomic_load(&s.handoffs); /* Final: pushes ended. */
    int idle = 0;
    while (test_now() - t0 < STRESS_DEADLINE_S) {
        if (atomic_load(&s.consumed) == total &&
            atomic_load(&s.marks) == handoffs + 1) {
            idle = 1;
            break;
        }
        sched_yield();
    }
    atomic_store(&s.stop, 1);
    for (int w = 0; w < HS_WORKERS; w++)
        sem_post(&s.runq);
    for (int w = 0; w < HS_WORKERS; w++)
        pthread_join(work[w], NULL);

    int leftover = 0;
    while (sem_trywait(&s.runq) == 0)
        leftover++;
    sem_destroy(&s.runq);
    fprintf(stderr,
            "  sched: %" PRIu64 " messages, %" PRIu64 " hand-offs, %" PRIu64
            " marks, %" PRIu64 " turns\n",
            total, handoffs, atomic_load(&s.marks), s.turns);
    CHECK_EQ(atomic_load(&s.overlaps), 0);
    CHECK_EQ(atomic_load(&s.nomem), 0);
    CHECK(idle);
    CHECK_EQ(s.disorder, 0);
    CHECK_EQ(atomic_load(&s.consumed), total);
    for (int p = 0; p < HS_PRODUCERS; p++)
        CHECK_EQ(s.expect[p], s.pushed[p]);
    CHECK_EQ(atomic_load(&s.marks), handoffs + 1);
    CHECK(gr__mailbox_is_marked(&s.b.h));
    CHECK_EQ(atomic_load(&s.owner), 0);
    CHECK_EQ(leftover, 0);
    CHECK(handoffs > 0); /* The protocol was exercised at all. */
}

TEST_MAIN(TEST_CASE(fifo_single_thread), TEST_CASE(pop_hands_node_whole),
          TEST_CASE(marked_bit_reports_once),
          TEST_CASE(mark_fails_with_message),
          TEST_CASE(mark_fails_while_link_pending), TEST_CASE(mpsc_stress),
          TEST_CASE(schedule_handoff_stress))
