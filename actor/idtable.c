#include "actor/idtable.h"

#include <stdlib.h>

#include <grove/common.h>

#include "actor/assert.h"

#define CHUNK_SLOTS (1u << GR__ID_CHUNK_BITS)
#define ALIVE       ((uint64_t)1)
#define PIN         ((uint64_t)2)
#define PINS_MASK   ((uint64_t)0xFFFFFFFEu)

static inline uint32_t serial_index(uint64_t serial)
{
    return (uint32_t)serial;
}

static inline uint32_t serial_gen(uint64_t serial)
{
    return (uint32_t)(serial >> 32);
}

static inline uint32_t word_gen(uint64_t w)
{
    return (uint32_t)(w >> 32);
}

static gr__slot *slot_at(gr__idtable *t, uint32_t i)
{
    uint32_t c = i >> GR__ID_CHUNK_BITS;
    if (c >= GR__ID_MAX_CHUNKS)
        return NULL;
    /* acquire: pairs with the release store that published the chunk. */
    gr__slot *chunk = atomic_load_explicit(&t->chunks[c], memory_order_acquire);
    return chunk ? &chunk[i & (CHUNK_SLOTS - 1)] : NULL;
}

int gr__idtable_init(gr__idtable *t)
{
    /* No memset: the memory is zeroed already, and writing the 128 KiB
     * chunk array would touch its 32 pages in every new system (a node
     * process's start) though most systems use its first entries only. */
    if (pthread_mutex_init(&t->lock, NULL) != 0)
        return -1;
    return 0;
}

void gr__idtable_destroy(gr__idtable *t)
{
    for (uint32_t c = 0; c < GR__ID_MAX_CHUNKS; c++)
        free(atomic_load_explicit(&t->chunks[c], memory_order_relaxed));
    free(t->free);
    pthread_mutex_destroy(&t->lock);
}

/* Returns a free slot index, allocating a chunk if needed; lock held.
 * Returns GR_OK, GR_ELIMIT or GR_ENOMEM. */
static int take_index(gr__idtable *t, uint32_t *out)
{
    if (t->nfree > 0) {
        *out = t->free[--t->nfree];
        return GR_OK;
    }
    uint32_t i = t->fresh;
    uint32_t c = i >> GR__ID_CHUNK_BITS;
    if (c >= GR__ID_MAX_CHUNKS)
        return GR_ELIMIT;
    if (atomic_load_explicit(&t->chunks[c], memory_order_relaxed) == NULL) {
        gr__slot *chunk = calloc(CHUNK_SLOTS, sizeof *chunk);
        if (chunk == NULL)
            return GR_ENOMEM;
        /* Generation 1 first, so that no serial is ever 0. */
        for (uint32_t k = 0; k < CHUNK_SLOTS; k++)
            atomic_init(&chunk[k].word, (uint64_t)1 << 32);
        /* release: lock-free readers of chunks[c] see initialised slots. */
        atomic_store_explicit(&t->chunks[c], chunk, memory_order_release);
    }
    t->fresh = i + 1;
    *out = i;
    return GR_OK;
}

int gr__idtable_alloc(gr__idtable *t, struct gr__actor *a, uint64_t *serial)
{
    uint32_t i;
    pthread_mutex_lock(&t->lock);
    int rc = take_index(t, &i);
    pthread_mutex_unlock(&t->lock);
    if (rc != GR_OK)
        return rc;
    gr__slot *s = slot_at(t, i);
    /* relaxed: the slot is ours until the release store below. */
    uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
    atomic_store_explicit(&s->actor, a, memory_order_relaxed);
    /* release: an acquirer that sees ALIVE also sees the actor pointer and
     * everything spawn initialised before. */
    atomic_store_explicit(&s->word, w | ALIVE, memory_order_release);
    *serial = ((uint64_t)word_gen(w) << 32) | i;
    return GR_OK;
}

struct gr__actor *gr__idtable_acquire(gr__idtable *t, uint64_t serial)
{
    gr__slot *s = slot_at(t, serial_index(serial));
    if (s == NULL)
        return NULL;
    uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
    for (;;) {
        if (word_gen(w) != serial_gen(serial) || !(w & ALIVE))
            return NULL;
        /* acquire on success: pairs with alloc's release, so the actor
         * pointer and its initialised fields are visible. */
        if (atomic_compare_exchange_weak_explicit(&s->word, &w, w + PIN,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            break;
    }
    return atomic_load_explicit(&s->actor, memory_order_relaxed);
}

bool gr__idtable_release(gr__idtable *t, uint64_t serial)
{
    gr__slot *s = slot_at(t, serial_index(serial));
    /* acq_rel: release orders our use of the actor (the push) before its
     * finalisation; acquire lets the last releaser see the exit's writes. */
    uint64_t old =
        atomic_fetch_sub_explicit(&s->word, PIN, memory_order_acq_rel);
    GR_ASSERT((old & PINS_MASK) != 0);
    return !(old & ALIVE) && (old & PINS_MASK) == PIN;
}

bool gr__idtable_kill(gr__idtable *t, uint64_t serial)
{
    gr__slot *s = slot_at(t, serial_index(serial));
    /* acq_rel: as in release, the finaliser sees both sides' writes. */
    uint64_t old =
        atomic_fetch_and_explicit(&s->word, ~ALIVE, memory_order_acq_rel);
    GR_ASSERT((old & ALIVE) && word_gen(old) == serial_gen(serial));
    return (old & PINS_MASK) == 0;
}

bool gr__idtable_alive(gr__idtable *t, uint64_t serial)
{
    uint64_t w = atomic_load_explicit(&slot_at(t, serial_index(serial))->word,
                                      memory_order_relaxed);
    return (w & ALIVE) && word_gen(w) == serial_gen(serial);
}

void gr__idtable_free(gr__idtable *t, uint64_t serial)
{
    uint32_t i = serial_index(serial);
    gr__slot *s = slot_at(t, i);
    uint32_t gen = serial_gen(serial) + 1;
    if (gen == 0)
        gen = 1; /* Keep serials nonzero after a full wrap. */
    atomic_store_explicit(&s->actor, NULL, memory_order_relaxed);
    /* relaxed: the new word is not alive, so no acquirer reads through it;
     * the next alloc publishes with release. */
    atomic_store_explicit(&s->word, (uint64_t)gen << 32, memory_order_relaxed);
    pthread_mutex_lock(&t->lock);
    if (t->nfree == t->cfree) {
        uint32_t cap = t->cfree ? t->cfree * 2 : 1024;
        uint32_t *grown = realloc(t->free, cap * sizeof *grown);
        if (grown == NULL) {
            /* Out of memory: leak the index (the slot stays dead forever)
             * rather than fail an exit. */
            pthread_mutex_unlock(&t->lock);
            return;
        }
        t->free = grown;
        t->cfree = cap;
    }
    t->free[t->nfree++] = i;
    pthread_mutex_unlock(&t->lock);
}

struct gr__actor *gr__idtable_peek(gr__idtable *t, uint32_t i)
{
    gr__slot *s = slot_at(t, i);
    if (s == NULL)
        return NULL;
    uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    if (!(w & ALIVE))
        return NULL;
    return atomic_load_explicit(&s->actor, memory_order_relaxed);
}

uint64_t gr__idtable_serial_at(gr__idtable *t, uint32_t i)
{
    gr__slot *s = slot_at(t, i);
    if (s == NULL)
        return 0;
    uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
    return (w & ALIVE) ? ((uint64_t)word_gen(w) << 32 | i) : 0;
}

uint32_t gr__idtable_extent(gr__idtable *t)
{
    pthread_mutex_lock(&t->lock);
    uint32_t n = t->fresh;
    pthread_mutex_unlock(&t->lock);
    return n;
}
