/*
 * Unit tests of the bounded Chase–Lev deque (actor/deque.h), consumed FIFO:
 * order, capacity, size, stealing by halves, and stresses with the owner
 * pushing while three thieves steal.
 */
#include "actor/deque.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "testing.h"

/* Producing time of the stress case; it ends the work, not the checks. */
#define STRESS_BUDGET_S 2.0

enum {
    THIEVES = 3,   /* The last one takes halves with gr__deque_steal_half. */
    HALF_MAX = 32, /* Most entries one steal_half call takes in a stress. */
    STRESS_MAX = 1 << 24, /* Items the stress pushes, at most. */
    OWNER_TAKE_EVERY = 7, /* The owner takes one itself this often. */
};

/* Entries are addresses in this array, so they are never EMPTY or ABORT
 * and map back to an index. Only addresses are taken: its pages stay
 * untouched. */
static char items[STRESS_MAX];

static void *item(uint32_t i)
{
    return &items[i];
}

/* Index of an entry, or -1 if it is not one of ours. */
static int64_t index_of(void *x)
{
    char *p = x;
    if (p < items || p >= items + STRESS_MAX)
        return -1;
    return p - items;
}

/* gr__deque is 64-byte aligned; plain malloc would not honour that. */
static gr__deque *new_deque(void)
{
    gr__deque *d = aligned_alloc(_Alignof(gr__deque), sizeof(gr__deque));
    if (d != NULL)
        gr__deque_init(d);
    return d;
}

/* Takes one entry, retrying lost races; EMPTY when there is none. */
static void *take(gr__deque *d)
{
    for (;;) {
        void *x = gr__deque_steal(d);
        if (x != GR__DEQUE_ABORT)
            return x;
    }
}

/* Zero-initialised memory is an empty, usable deque. */
static void zeroed_is_empty(void)
{
    static gr__deque z; /* Static: zeroed, and aligned by its type. */
    CHECK_EQ(gr__deque_size(&z), 0);
    CHECK(gr__deque_steal(&z) == GR__DEQUE_EMPTY);
    CHECK(gr__deque_push(&z, item(5)));
    CHECK_EQ(gr__deque_size(&z), 1);
    CHECK(gr__deque_steal(&z) == item(5));
    CHECK(gr__deque_steal(&z) == GR__DEQUE_EMPTY);
}

/* The owner taking its own entries gets them oldest first, also across
 * many wraps of the ring. */
static void owner_takes_fifo(void)
{
    gr__deque *d = new_deque();
    CHECK(d != NULL);
    for (uint32_t i = 0; i < 100; i++)
        CHECK(gr__deque_push(d, item(i)));
    for (uint32_t i = 0; i < 100; i++)
        CHECK(gr__deque_steal(d) == item(i));
    CHECK(gr__deque_steal(d) == GR__DEQUE_EMPTY);

    /* Keep about half a ring in flight for three laps and then some. */
    uint32_t pushed = 0, taken = 0;
    const uint32_t total = 3 * GR__DEQUE_CAPACITY + 123;
    while (taken < total) {
        if (pushed < total &&
            (pushed - taken < GR__DEQUE_CAPACITY / 2 || pushed % 3 != 0)) {
            CHECK(gr__deque_push(d, item(pushed)));
            pushed++;
            continue;
        }
        void *x = gr__deque_steal(d);
        CHECK(x == item(taken));
        taken++;
    }
    CHECK(gr__deque_steal(d) == GR__DEQUE_EMPTY);
    free(d);
}

/* push fails exactly when capacity entries are held, leaves the contents
 * alone when it fails, and succeeds again after one take. */
static void push_fails_when_full(void)
{
    gr__deque *d = new_deque();
    CHECK(d != NULL);
    /* Two starting offsets: index 0, and mid-ring so the full range wraps. */
    for (uint32_t off = 0; off < 2; off++) {
        uint32_t base = off * 37 * 1000;
        for (uint32_t k = 0; k < off * 37; k++) {
            CHECK(gr__deque_push(d, item(0)));
            CHECK(gr__deque_steal(d) == item(0));
        }
        for (uint32_t i = 0; i < GR__DEQUE_CAPACITY; i++)
            CHECK(gr__deque_push(d, item(base + i)));
        CHECK_EQ(gr__deque_size(d), GR__DEQUE_CAPACITY);
        CHECK(!gr__deque_push(d, item(base + GR__DEQUE_CAPACITY)));
        CHECK(!gr__deque_push(d, item(base + GR__DEQUE_CAPACITY)));
        CHECK_EQ(gr__deque_size(d), GR__DEQUE_CAPACITY);

        CHECK(gr__deque_steal(d) == item(base));
        CHECK_EQ(gr__deque_size(d), GR__DEQUE_CAPACITY - 1);
        CHECK(gr__deque_push(d, item(base + GR__DEQUE_CAPACITY)));
        CHECK(!gr__deque_push(d, item(base + GR__DEQUE_CAPACITY + 1)));
        CHECK_EQ(gr__deque_size(d), GR__DEQUE_CAPACITY);

        /* The failed pushes overwrote nothing: 1..CAPACITY in order. */
        for (uint32_t i = 1; i <= GR__DEQUE_CAPACITY; i++)
            CHECK(gr__deque_steal(d) == item(base + i));
        CHECK(gr__deque_steal(d) == GR__DEQUE_EMPTY);
        CHECK_EQ(gr__deque_size(d), 0);
    }
    free(d);
}

/* size counts the entries held: up with pushes, down with takes, never
 * below zero. */
static void size_tracks_entries(void)
{
    gr__deque *d = new_deque();
    CHECK(d != NULL);
    CHECK_EQ(gr__deque_size(d), 0);
    for (uint32_t i = 0; i < 500; i++) {
        CHECK(gr__deque_push(d, item(i)));
        CHECK_EQ(gr__deque_size(d), i + 1);
    }
    for (uint32_t i = 0; i < 200; i++) {
        CHECK(gr__deque_steal(d) == item(i));
        CHECK_EQ(gr__deque_size(d), 500 - i - 1);
    }
    for (uint32_t i = 0; i < 300; i++)
        CHECK(gr__deque_steal(d) != GR__DEQUE_EMPTY);
    CHECK_EQ(gr__deque_size(d), 0);
    CHECK(gr__deque_steal(d) == GR__DEQUE_EMPTY);
    CHECK_EQ(gr__deque_size(d), 0);
    /* Re-init empties a non-empty deque. */
    CHECK(gr__deque_push(d, item(1)));
    gr__deque_init(d);
    CHECK_EQ(gr__deque_size(d), 0);
    CHECK(gr__deque_steal(d) == GR__DEQUE_EMPTY);
    free(d);
}

/* steal_half takes the older half of the entries, rounded up and at most
 * max, oldest first; 0 when empty; one entry alone is taken too. */
static void steal_half_takes_older_half(void)
{
    void *out[GR__DEQUE_CAPACITY];
    gr__deque *d = new_deque();
    CHECK(d != NULL);
    CHECK_EQ(gr__deque_steal_half(d, out, GR__DEQUE_CAPACITY), 0);

    /* 10 entries: 5, then 3 of 5, then 1 of 2, then the last one. */
    for (uint32_t i = 0; i < 10; i++)
        CHECK(gr__deque_push(d, item(i)));
    static const int want[] = {5, 3, 1, 1};
    uint32_t next = 0;
    for (int r = 0; r < 4; r++) {
        CHECK_EQ(gr__deque_steal_half(d, out, GR__DEQUE_CAPACITY), want[r]);
        for (int i = 0; i < want[r]; i++)
            CHECK(out[i] == item(next++));
    }
    CHECK_EQ(gr__deque_size(d), 0);
    CHECK_EQ(gr__deque_steal_half(d, out, GR__DEQUE_CAPACITY), 0);
    CHECK(gr__deque_steal(d) == GR__DEQUE_EMPTY);

    /* max caps the take; the rest stays, in order, for other takers. */
    for (uint32_t i = 0; i < 100; i++)
        CHECK(gr__deque_push(d, item(i)));
    CHECK_EQ(gr__deque_steal_half(d, out, 7), 7);
    for (uint32_t i = 0; i < 7; i++)
        CHECK(out[i] == item(i));
    CHECK_EQ(gr__deque_size(d), 93);
    CHECK(gr__deque_steal(d) == item(7));
    CHECK_EQ(gr__deque_steal_half(d, out, 1), 1);
    CHECK(out[0] == item(8));
    while (gr__deque_steal(d) != GR__DEQUE_EMPTY)
        ;

    /* A full ring whose entries wrap past the end of the buffer. */
    for (uint32_t k = 0; k < GR__DEQUE_CAPACITY / 3; k++) {
        CHECK(gr__deque_push(d, item(0)));
        CHECK(gr__deque_steal(d) == item(0));
    }
    for (uint32_t i = 0; i < GR__DEQUE_CAPACITY; i++)
        CHECK(gr__deque_push(d, item(i)));
    CHECK_EQ(gr__deque_steal_half(d, out, GR__DEQUE_CAPACITY),
             GR__DEQUE_CAPACITY / 2);
    for (uint32_t i = 0; i < GR__DEQUE_CAPACITY / 2; i++)
        CHECK(out[i] == item(i));
    /* Room again for exactly as many as were taken. */
    for (uint32_t i = 0; i < GR__DEQUE_CAPACITY / 2; i++)
        CHECK(gr__deque_push(d, item(GR__DEQUE_CAPACITY + i)));
    CHECK(!gr__deque_push(d, item(0)));
    for (uint32_t i = GR__DEQUE_CAPACITY / 2; i < GR__DEQUE_CAPACITY * 3 / 2;
         i++)
        CHECK(gr__deque_steal(d) == item(i));
    CHECK(gr__deque_steal(d) == GR__DEQUE_EMPTY);
    free(d);
}

/* ---- Stress ------------------------------------------------------------ */

/* Times each item was taken; exactly once is right. */
static _Atomic(unsigned char) taken_count[STRESS_MAX];

struct stress {
    gr__deque *d;
    _Atomic(int) done; /* The owner pushes no more. */
};

/* One taker's tally. */
struct taker {
    struct stress *s;
    int half; /* Steals with gr__deque_steal_half. */
    uint64_t taken, aborts, strangers, dups, disorder;
    int64_t last; /* Index last taken: a taker's takes only go forward. */
};

/* Records one taken entry. */
static void note(struct taker *k, void *x)
{
    int64_t i = index_of(x);
    if (i < 0) {
        k->strangers++;
        return;
    }
    if (atomic_fetch_add_explicit(&taken_count[i], 1, memory_order_relaxed))
        k->dups++;
    if (i <= k->last)
        k->disorder++;
    k->last = i;
    k->taken++;
}

/* Steals once; returns the number taken (0 when empty), or -1 on a lost
 * race, after noting what it took. */
static int steal_some(struct taker *k)
{
    if (k->half) {
        void *out[HALF_MAX];
        int n = gr__deque_steal_half(k->s->d, out, HALF_MAX);
        for (int i = 0; i < n; i++)
            note(k, out[i]);
        return n;
    }
    void *x = gr__deque_steal(k->s->d);
    if (x == GR__DEQUE_ABORT)
        return -1;
    if (x == GR__DEQUE_EMPTY)
        return 0;
    note(k, x);
    return 1;
}

static void *thief(void *p)
{
    struct taker *k = p;
    for (;;) {
        int n = steal_some(k);
        if (n < 0)
            k->aborts++;
        if (n != 0)
            continue;
        /* acquire: the owner's last push happened before done; a steal
         * after seeing done therefore sees the final bottom, so empty now
         * means empty for good. */
        if (atomic_load_explicit(&k->s->done, memory_order_acquire))
            return NULL;
        sched_yield();
    }
}

/* The owner pushes (and now and then takes) while three thieves steal, one
 * of them by halves: every pushed item is taken exactly once, none is lost,
 * nothing else comes out, and each taker sees items in push order. */
static void steal_stress(void)
{
    static struct stress s;
    static struct taker k[THIEVES + 1]; /* k[THIEVES] is the owner. */
    pthread_t th[THIEVES];
    s.d = new_deque();
    CHECK(s.d != NULL);
    atomic_init(&s.done, 0);
    for (uint32_t i = 0; i < STRESS_MAX; i++)
        atomic_init(&taken_count[i], 0);
    for (int i = 0; i <= THIEVES; i++)
        k[i] = (struct taker){.s = &s, .half = i == THIEVES - 1, .last = -1};
    for (int i = 0; i < THIEVES; i++)
        CHECK(pthread_create(&th[i], NULL, thief, &k[i]) == 0);

    struct taker *own = &k[THIEVES];
    uint32_t pushed = 0;
    uint64_t full = 0;
    double t0 = test_now();
    while (pushed < STRESS_MAX) {
        if (pushed % 4096 == 0 && test_now() - t0 > STRESS_BUDGET_S)
            break;
        if (!gr__deque_push(s.d, item(pushed))) {
            /* Full: the owner makes room itself (where the scheduler would
             * overflow to the injection queue). */
            full++;
            void *x = take(s.d);
            if (x != GR__DEQUE_EMPTY)
                note(own, x);
            continue;
        }
        pushed++;
        if (pushed % OWNER_TAKE_EVERY == 0) {
            void *x = gr__deque_steal(s.d);
            if (x == GR__DEQUE_ABORT)
                own->aborts++;
            else if (x != GR__DEQUE_EMPTY)
                note(own, x);
        }
    }
    atomic_store_explicit(&s.done, 1, memory_order_release);
    /* The owner helps drain. */
    for (void *x; (x = take(s.d)) != GR__DEQUE_EMPTY;)
        note(own, x);
    for (int i = 0; i < THIEVES; i++)
        pthread_join(th[i], NULL);

    uint64_t total = 0, stolen = 0, aborts = 0, dups = 0, strangers = 0;
    uint64_t disorder = 0;
    for (int i = 0; i <= THIEVES; i++) {
        total += k[i].taken;
        aborts += k[i].aborts;
        dups += k[i].dups;
        strangers += k[i].strangers;
        disorder += k[i].disorder;
        if (i < THIEVES)
            stolen += k[i].taken;
    }
    uint32_t missing = 0, extra = 0;
    for (uint32_t i = 0; i < STRESS_MAX; i++) {
        unsigned c =
            atomic_load_explicit(&taken_count[i], memory_order_relaxed);
        if (i < pushed && c != 1)
            missing += c == 0;
        if (i >= pushed && c != 0)
            extra++;
    }
    int64_t left = gr__deque_size(s.d);
    free(s.d);
    fprintf(stderr,
            "  deque: %" PRIu32 " pushed, %" PRIu64
            " stolen by thieves, %" PRIu64 " aborts, %" PRIu64 " full\n",
            pushed, stolen, aborts, full);
    CHECK_EQ(strangers, 0);
    CHECK_EQ(dups, 0);
    CHECK_EQ(missing, 0);
    CHECK_EQ(extra, 0);
    CHECK_EQ(total, pushed);
    CHECK_EQ(disorder, 0);
    CHECK_EQ(left, 0);
    CHECK(pushed > 0);
    CHECK(stolen > 0); /* The thieves really ran against the owner. */
}

/* ---- Publication ------------------------------------------------------- */

enum { PUB_N = 1 << 20 };

/* Plain data the owner writes before pushing its address. */
static uint64_t payload[PUB_N];

struct pub {
    gr__deque *d;
    _Atomic(int) halves; /* Hands out the by-halves role once. */
    _Atomic(int) done;
    _Atomic(uint64_t) taken, wrong;
};

static uint64_t payload_value(uint64_t i)
{
    return i * 0x9E3779B97F4A7C15u + 1;
}

static void pub_check(struct pub *p, void *x)
{
    uint64_t *q = x;
    if (q < payload || q >= payload + PUB_N || *q != payload_value(q - payload))
        atomic_fetch_add_explicit(&p->wrong, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->taken, 1, memory_order_relaxed);
}

static void *pub_thief(void *arg)
{
    struct pub *p = arg;
    int half = atomic_exchange(&p->halves, 0); /* Just one thief. */
    for (;;) {
        void *out[HALF_MAX];
        int n;
        if (half) {
            n = gr__deque_steal_half(p->d, out, HALF_MAX);
        } else {
            out[0] = gr__deque_steal(p->d);
            n = out[0] == GR__DEQUE_ABORT   ? -1
                : out[0] == GR__DEQUE_EMPTY ? 0
                                            : 1;
        }
        for (int i = 0; i < n; i++)
            pub_check(p, out[i]);
        if (n != 0)
            continue;
        if (atomic_load_explicit(&p->done, memory_order_acquire))
            return NULL;
        sched_yield();
    }
}

/* A thief sees what the owner wrote before pushing an entry (the scheduler
 * relies on it: a thief runs the actor it stole). Plain writes and reads,
 * so ThreadSanitizer checks the happens-before edge that push and steal
 * claim to make; the owner never takes while thieves run, so that edge is
 * the only one. */
static void steal_sees_pushed_writes(void)
{
    static struct pub p;
    pthread_t th[THIEVES];
    p.d = new_deque();
    CHECK(p.d != NULL);
    atomic_init(&p.done, 0);
    atomic_init(&p.halves, 1);
    atomic_init(&p.taken, 0);
    atomic_init(&p.wrong, 0);
    for (int i = 0; i < THIEVES; i++)
        CHECK(pthread_create(&th[i], NULL, pub_thief, &p) == 0);
    uint32_t pushed = 0;
    double t0 = test_now();
    while (pushed < PUB_N) {
        if (pushed % 4096 == 0 && test_now() - t0 > STRESS_BUDGET_S)
            break;
        payload[pushed] = payload_value(pushed);
        if (gr__deque_push(p.d, &payload[pushed]))
            pushed++;
        else
            sched_yield(); /* Full: wait for the thieves. Taking here would
                              CAS top, an extra edge that hides a missing
                              one from TSan. */
    }
    atomic_store_explicit(&p.done, 1, memory_order_release);
    for (void *x; (x = take(p.d)) != GR__DEQUE_EMPTY;)
        pub_check(&p, x);
    for (int i = 0; i < THIEVES; i++)
        pthread_join(th[i], NULL);
    free(p.d);
    CHECK_EQ(atomic_load(&p.wrong), 0);
    CHECK_EQ(atomic_load(&p.taken), pushed);
    CHECK(pushed > 0);
}

TEST_MAIN(TEST_CASE(zeroed_is_empty), TEST_CASE(owner_takes_fifo),
          TEST_CASE(push_fails_when_full), TEST_CASE(size_tracks_entries),
          TEST_CASE(steal_half_takes_older_half), TEST_CASE(steal_stress),
          TEST_CASE(steal_sees_pushed_writes))
