/*
 * Unit tests of the id table (actor/idtable.h): serials, pins, kill and the
 * last release, slot recycling with new generations, and a stress where
 * readers pin serials while another thread kills and reallocates them.
 *
 * The table never dereferences its struct gr__actor pointers, so the tests
 * store their own objects there, cast to that opaque type.
 */
#include "actor/idtable.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <grove/common.h>

#include "testing.h"

/* Working time of the stress case; it ends the work, not the checks. */
#define STRESS_BUDGET_S 2.0

enum {
    LIVE = 16,                 /* Actors alive at once in the stress. */
    READERS = 3,               /* Threads that pin and unpin. */
    POOL = LIVE + READERS + 8, /* Stress objects, recycled once finalised. */
    HISTORY = 1024, /* Recent serials, mostly stale, that readers try. */
};

/* An object state in the stress. */
enum { FREE = 0, LIVE_OBJ = 1, FINALISED = 2 };

/* A stand-in actor: what the table resolves a serial to. */
struct fake {
    uint64_t serial;         /* The serial it was allocated under. */
    _Atomic(int) state;      /* FREE, LIVE_OBJ or FINALISED. */
    uint64_t touch[READERS]; /* Plain: each reader counts its pins here. */
};

static struct gr__actor *as_actor(struct fake *f)
{
    return (struct gr__actor *)f;
}

static gr__idtable *new_table(void)
{
    gr__idtable *t = calloc(1, sizeof *t);
    if (t != NULL && gr__idtable_init(t) != 0) {
        free(t);
        t = NULL;
    }
    return t;
}

static void delete_table(gr__idtable *t)
{
    gr__idtable_destroy(t);
    free(t);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* alloc hands out distinct, nonzero serials (across chunk boundaries), and
 * acquire of each live serial returns its own actor. */
static void alloc_distinct_serials(void)
{
    enum { N = 10000 }; /* More than two chunks of slots. */
    static struct fake f[N];
    static uint64_t serial[N], sorted[N];
    gr__idtable *t = new_table();
    CHECK(t != NULL);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(gr__idtable_alloc(t, as_actor(&f[i]), &serial[i]), GR_OK);
        CHECK(serial[i] != 0);
    }
    CHECK_EQ(gr__idtable_extent(t), N);
    memcpy(sorted, serial, sizeof sorted);
    qsort(sorted, N, sizeof sorted[0], cmp_u64);
    for (int i = 1; i < N; i++)
        CHECK(sorted[i] != sorted[i - 1]);
    for (int i = 0; i < N; i++) {
        CHECK(gr__idtable_acquire(t, serial[i]) == as_actor(&f[i]));
        CHECK(!gr__idtable_release(t, serial[i])); /* Alive: no finalise. */
        CHECK(gr__idtable_peek(t, (uint32_t)serial[i]) == as_actor(&f[i]));
    }
    for (int i = 0; i < N; i++) {
        CHECK(gr__idtable_kill(t, serial[i]));
        CHECK(gr__idtable_peek(t, (uint32_t)serial[i]) == NULL);
        gr__idtable_free(t, serial[i]);
    }
    delete_table(t);
}

/* acquire returns NULL for a killed serial, a freed one, one whose slot was
 * reused by a newer actor, and serials that never named anything. */
static void acquire_dead_or_bogus_is_null(void)
{
    struct fake a, b;
    uint64_t sa, sb;
    gr__idtable *t = new_table();
    CHECK(t != NULL);
    CHECK_EQ(gr__idtable_alloc(t, as_actor(&a), &sa), GR_OK);
    CHECK(gr__idtable_acquire(t, sa) == as_actor(&a));
    CHECK(!gr__idtable_release(t, sa));

    /* A serial for the same slot with a newer generation is not ours. */
    CHECK(gr__idtable_acquire(t, sa + ((uint64_t)1 << 32)) == NULL);
    /* Never-named serials: zero, an unused slot in an allocated chunk, a
     * slot in a chunk never allocated, and one beyond the table. */
    CHECK(gr__idtable_acquire(t, 0) == NULL);
    CHECK(gr__idtable_acquire(t, ((uint64_t)1 << 32) | 7) == NULL);
    CHECK(gr__idtable_acquire(t, ((uint64_t)1 << 32) | (1u << 20)) == NULL);
    CHECK(gr__idtable_acquire(t, ((uint64_t)1 << 32) | 0xFFFFFFFFu) == NULL);

    CHECK(gr__idtable_kill(t, sa));
    CHECK(gr__idtable_acquire(t, sa) == NULL); /* Killed, not yet freed. */
    gr__idtable_free(t, sa);
    CHECK(gr__idtable_acquire(t, sa) == NULL); /* Freed. */

    CHECK_EQ(gr__idtable_alloc(t, as_actor(&b), &sb), GR_OK);
    CHECK_EQ((uint32_t)sb, (uint32_t)sa);      /* The slot came back... */
    CHECK(sb != sa);                           /* ...with a new generation. */
    CHECK(gr__idtable_acquire(t, sa) == NULL); /* Stale: not b. */
    CHECK(gr__idtable_acquire(t, sb) == as_actor(&b));
    CHECK(!gr__idtable_release(t, sb));
    CHECK(gr__idtable_kill(t, sb));
    gr__idtable_free(t, sb);
    delete_table(t);
}

/* kill returns true only when no pins are held; release returns true
 * exactly for the last pin after kill, and never while alive. */
static void kill_and_last_release(void)
{
    struct fake a;
    uint64_t s;
    gr__idtable *t = new_table();
    CHECK(t != NULL);

    /* No pins: kill finalises. */
    CHECK_EQ(gr__idtable_alloc(t, as_actor(&a), &s), GR_OK);
    CHECK(gr__idtable_kill(t, s));
    gr__idtable_free(t, s);

    /* Pins held while alive: releases never finalise; kill then does. */
    CHECK_EQ(gr__idtable_alloc(t, as_actor(&a), &s), GR_OK);
    for (int i = 0; i < 5; i++)
        CHECK(gr__idtable_acquire(t, s) == as_actor(&a));
    for (int i = 0; i < 5; i++)
        CHECK(!gr__idtable_release(t, s));
    CHECK(gr__idtable_kill(t, s));
    gr__idtable_free(t, s);

    /* Pins held across kill: kill does not finalise, the last release
     * does, and no new pin is granted in between. */
    CHECK_EQ(gr__idtable_alloc(t, as_actor(&a), &s), GR_OK);
    for (int i = 0; i < 3; i++)
        CHECK(gr__idtable_acquire(t, s) == as_actor(&a));
    CHECK(!gr__idtable_kill(t, s));
    CHECK(gr__idtable_acquire(t, s) == NULL);
    CHECK(gr__idtable_peek(t, (uint32_t)s) == NULL);
    CHECK(!gr__idtable_release(t, s));
    CHECK(!gr__idtable_release(t, s));
    CHECK(gr__idtable_acquire(t, s) == NULL);
    CHECK(gr__idtable_release(t, s)); /* The last one. */
    gr__idtable_free(t, s);

    /* One pin: kill false, release true. */
    CHECK_EQ(gr__idtable_alloc(t, as_actor(&a), &s), GR_OK);
    CHECK(gr__idtable_acquire(t, s) == as_actor(&a));
    CHECK(!gr__idtable_kill(t, s));
    CHECK(gr__idtable_release(t, s));
    gr__idtable_free(t, s);
    CHECK_EQ(gr__idtable_extent(t), 1); /* All that used one slot. */
    delete_table(t);
}

/* free recycles the slot under a new generation: every serial it takes is
 * new and nonzero, and no old serial ever resolves again. */
static void free_recycles_slot(void)
{
    enum { ROUNDS = 2000 };
    static uint64_t old[ROUNDS];
    struct fake a[2];
    uint64_t s;
    gr__idtable *t = new_table();
    CHECK(t != NULL);
    for (int r = 0; r < ROUNDS; r++) {
        CHECK_EQ(gr__idtable_alloc(t, as_actor(&a[r % 2]), &s), GR_OK);
        CHECK(s != 0);
        CHECK(gr__idtable_acquire(t, s) == as_actor(&a[r % 2]));
        CHECK(!gr__idtable_release(t, s));
        if (r > 0) {
            CHECK_EQ((uint32_t)s, (uint32_t)old[0]); /* Same slot... */
            for (int k = 0; k < r; k++)
                CHECK(s != old[k]); /* ...never the same serial. */
            /* Old serials stay dead, checked every so often (O(n^2)). */
            if (r % 100 == 0)
                for (int k = 0; k < r; k++)
                    CHECK(gr__idtable_acquire(t, old[k]) == NULL);
        }
        old[r] = s;
        CHECK(gr__idtable_kill(t, s));
        gr__idtable_free(t, s);
    }
    CHECK_EQ(gr__idtable_extent(t), 1);
    delete_table(t);
}

/* Serials stay nonzero when a slot's generation wraps around 2^32. The wrap
 * is simulated by freeing slot 0 under its last generation, 0xFFFFFFFF: the
 * table trusts the serial it is given for the generation to follow. */
static void serial_nonzero_after_wrap(void)
{
    struct fake a;
    uint64_t s;
    gr__idtable *t = new_table();
    CHECK(t != NULL);
    CHECK_EQ(gr__idtable_alloc(t, as_actor(&a), &s), GR_OK);
    CHECK_EQ((uint32_t)s, 0); /* A fresh table starts at slot 0. */
    CHECK(gr__idtable_kill(t, s));
    gr__idtable_free(t, (uint64_t)0xFFFFFFFFu << 32);
    CHECK_EQ(gr__idtable_alloc(t, as_actor(&a), &s), GR_OK);
    CHECK_EQ((uint32_t)s, 0);
    CHECK(s != 0);
    CHECK(gr__idtable_acquire(t, s) == as_actor(&a));
    CHECK(gr__idtable_acquire(t, 0) == NULL);
    CHECK(!gr__idtable_release(t, s));
    CHECK(gr__idtable_kill(t, s));
    gr__idtable_free(t, s);
    delete_table(t);
}

/* ---- Stress ------------------------------------------------------------ */

struct stress {
    gr__idtable *t;
    struct fake objs[POOL];
    _Atomic(uint64_t) live[LIVE];       /* Current serial of each actor. */
    struct fake *live_obj[LIVE];        /* And its object; killer only. */
    _Atomic(uint64_t) history[HISTORY]; /* Recently allocated serials. */
    _Atomic(int) stop;
    _Atomic(uint64_t) finals;        /* Finalisations, all threads. */
    _Atomic(uint64_t) reader_finals; /* Those done by a last release. */
    _Atomic(uint64_t) touches_seen;  /* Pins counted at finalisation. */
    _Atomic(uint64_t) errors;        /* Bad finalisations, see finalise. */
    uint64_t allocs;                 /* Killer only. */
};

struct reader {
    struct stress *s;
    int id;
    uint64_t rng;
    uint64_t pins, stale, early; /* Own tally; read after join. */
};

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/*
 * Finalises f, allocated under serial, and frees its slot: called exactly
 * by whoever got true from kill or release. Counts an error when f is not
 * live under that serial, i.e. a double or misdirected finalisation.
 */
static void finalise(struct stress *s, struct fake *f, uint64_t serial)
{
    uint64_t touches = 0;
    int expect = LIVE_OBJ;
    if (f->serial != serial)
        atomic_fetch_add(&s->errors, 1);
    /* Plain reads of every reader's pins: the kill/release acq_rel must
     * order them after those readers' writes (TSan checks). */
    for (int r = 0; r < READERS; r++)
        touches += f->touch[r];
    atomic_fetch_add(&s->touches_seen, touches);
    /* release (seq_cst): the killer that recycles f sees our reads done. */
    if (!atomic_compare_exchange_strong(&f->state, &expect, FINALISED))
        atomic_fetch_add(&s->errors, 1);
    atomic_fetch_add(&s->finals, 1);
    gr__idtable_free(s->t, serial);
}

static void *reader(void *p)
{
    struct reader *r = p;
    struct stress *s = r->s;
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        uint64_t x = next_rand(&r->rng);
        /* acquire: pairs with the killer's release, so f->serial, written
         * after alloc returned, is visible once we resolve to f. */
        uint64_t serial =
            x & 1 ? atomic_load_explicit(&s->live[(x >> 8) % LIVE],
                                         memory_order_acquire)
                  : atomic_load_explicit(&s->history[(x >> 8) % HISTORY],
                                         memory_order_acquire);
        struct gr__actor *a = gr__idtable_acquire(s->t, serial);
        if (a == NULL)
            continue;
        struct fake *f = (struct fake *)a;
        r->pins++;
        if (f->serial != serial)
            r->stale++; /* A stale serial reached a newer actor. */
        if (atomic_load(&f->state) != LIVE_OBJ)
            r->early++; /* Finalised under our pin. */
        f->touch[r->id]++;
        /* Hold the pin a while now and then, so kills land under it. */
        if ((x >> 40) % 8 == 0)
            sched_yield();
        if (atomic_load(&f->state) != LIVE_OBJ)
            r->early++;
        if (gr__idtable_release(s->t, serial)) {
            atomic_fetch_add(&s->reader_finals, 1);
            finalise(s, f, serial);
        }
    }
    return NULL;
}

/* Picks a finalised (or never used) object for a new actor; NULL if none. */
static struct fake *grab_object(struct stress *s, uint64_t *cursor)
{
    for (int k = 0; k < POOL; k++) {
        struct fake *f = &s->objs[(*cursor)++ % POOL];
        /* acquire: pairs with finalise's CAS, so its plain reads of touch
         * are done before we clear them. */
        if (atomic_load_explicit(&f->state, memory_order_acquire) != LIVE_OBJ) {
            memset(f->touch, 0, sizeof f->touch);
            atomic_store_explicit(&f->state, LIVE_OBJ, memory_order_relaxed);
            return f;
        }
    }
    return NULL;
}

/* Allocates a new actor in live position k; false on failure. */
static bool spawn(struct stress *s, int k, uint64_t *cursor)
{
    struct fake *f = grab_object(s, cursor);
    uint64_t serial;
    if (f == NULL || gr__idtable_alloc(s->t, as_actor(f), &serial) != GR_OK)
        return false;
    f->serial = serial;
    s->live_obj[k] = f;
    /* release: readers that load this serial see f->serial set. */
    atomic_store_explicit(&s->live[k], serial, memory_order_release);
    atomic_store_explicit(&s->history[s->allocs % HISTORY], serial,
                          memory_order_release);
    s->allocs++;
    return true;
}

/* Kills the actor in live position k, finalising it if no pin is held. */
static void kill_live(struct stress *s, int k)
{
    struct fake *f = s->live_obj[k];
    uint64_t serial = f->serial;
    if (gr__idtable_kill(s->t, serial))
        finalise(s, f, serial);
}

/* Readers pin and unpin current and stale serials while a killer kills and
 * reallocates: every actor is finalised exactly once (by kill or by its
 * last release), never while pinned, no stale serial reaches a newer actor,
 * and freed slots are recycled. */
static void concurrent_stress(void)
{
    static struct stress s;
    static struct reader rd[READERS];
    pthread_t th[READERS];
    memset(&s, 0, sizeof s);
    s.t = new_table();
    CHECK(s.t != NULL);
    uint64_t cursor = 0;
    int spawn_failed = 0;
    for (int k = 0; k < LIVE; k++)
        spawn_failed |= !spawn(&s, k, &cursor);
    CHECK(!spawn_failed);
    for (int i = 0; i < READERS; i++) {
        rd[i] = (struct reader){
            .s = &s, .id = i, .rng = 0x9E3779B97F4A7C15u * (uint64_t)(i + 1)};
        CHECK(pthread_create(&th[i], NULL, reader, &rd[i]) == 0);
    }

    double t0 = test_now();
    for (uint64_t it = 0; !spawn_failed; it++) {
        if (it % 64 == 0 && test_now() - t0 > STRESS_BUDGET_S)
            break;
        int k = (int)(it % LIVE);
        kill_live(&s, k);
        spawn_failed |= !spawn(&s, k, &cursor);
        if (it % 16 == 0)
            sched_yield(); /* Let readers catch live serials too. */
    }
    atomic_store(&s.stop, 1);
    for (int i = 0; i < READERS; i++)
        pthread_join(th[i], NULL);

    /* Readers are gone: every kill now finds no pin. */
    int kill_pinned = 0;
    for (int k = 0; k < LIVE && !spawn_failed; k++) {
        struct fake *f = s.live_obj[k];
        if (gr__idtable_kill(s.t, f->serial))
            finalise(&s, f, f->serial);
        else
            kill_pinned++;
    }
    int resolves = 0;
    for (int h = 0; h < HISTORY; h++)
        resolves +=
            gr__idtable_acquire(s.t, atomic_load(&s.history[h])) != NULL;
    uint64_t pins = 0, stale = 0, early = 0;
    for (int i = 0; i < READERS; i++) {
        pins += rd[i].pins;
        stale += rd[i].stale;
        early += rd[i].early;
    }
    int not_final = 0;
    for (int i = 0; i < POOL; i++)
        not_final += atomic_load(&s.objs[i].state) == LIVE_OBJ;
    uint32_t extent = gr__idtable_extent(s.t);
    delete_table(s.t);
    fprintf(stderr,
            "  idtable: %" PRIu64 " actors, %" PRIu64 " pins, %" PRIu64
            " finalised by last release, extent %" PRIu32 "\n",
            s.allocs, pins, atomic_load(&s.reader_finals), extent);
    CHECK(!spawn_failed);
    CHECK_EQ(stale, 0);
    CHECK_EQ(early, 0);
    CHECK_EQ(atomic_load(&s.errors), 0);
    CHECK_EQ(kill_pinned, 0);
    CHECK_EQ(atomic_load(&s.finals), s.allocs);
    CHECK_EQ(not_final, 0);
    CHECK_EQ(atomic_load(&s.touches_seen), pins);
    CHECK_EQ(resolves, 0);
    /* At most LIVE live plus one dead-but-pinned per reader at a time. */
    CHECK(extent <= LIVE + READERS);
    CHECK(pins > 0);
    CHECK(atomic_load(&s.reader_finals) > 0); /* The race was exercised. */
}

TEST_MAIN(TEST_CASE(alloc_distinct_serials),
          TEST_CASE(acquire_dead_or_bogus_is_null),
          TEST_CASE(kill_and_last_release), TEST_CASE(free_recycles_slot),
          TEST_CASE(serial_nonzero_after_wrap), TEST_CASE(concurrent_stress))
