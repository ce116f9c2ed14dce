/*
 * The id table: resolves actor serials to actors in O(1), safely against the
 * actor exiting at the same moment.
 *
 * A serial is (generation << 32 | slot index). Each slot holds one atomic
 * word: generation (high 32 bits), a count of in-flight resolvers (bits
 * 1..31) and an "alive" bit (bit 0). Resolving increments the count only if
 * the generation matches and the actor is alive; the actor's memory is
 * finalised by whoever brings the word to "dead with no resolvers", and only
 * then does the slot get a new generation and go back to the free list. So a
 * stale serial never reaches a newer actor, and a sender never touches freed
 * memory. Generations would repeat only after 2^32 reuses of one slot.
 */
#ifndef GROVE_ACTOR_IDTABLE_H
#define GROVE_ACTOR_IDTABLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* log2 of the slots in one lazily allocated chunk. */
#define GR__ID_CHUNK_BITS 12
/* Chunks the table can hold: up to 2^12 * 2^14 = 64 Mi live actors. */
#define GR__ID_MAX_CHUNKS (1u << 14)

struct gr__actor;

/* One slot; see the file comment for the word's layout. */
typedef struct gr__slot {
    _Atomic(uint64_t) word;
    _Atomic(struct gr__actor *) actor;
} gr__slot;

/* The table. Lookups are lock-free; allocation and freeing take a mutex. */
typedef struct gr__idtable {
    _Atomic(gr__slot *) chunks[GR__ID_MAX_CHUNKS];
    pthread_mutex_t lock;  /* Guards the fields below. */
    uint32_t fresh;        /* Next never-used slot index. */
    uint32_t *free;        /* Stack of free slot indices. */
    uint32_t nfree, cfree; /* Its size and capacity. */
} gr__idtable;

/* Initialises an empty table in zeroed memory (calloc'd or static).
 * Returns 0 or -1 (out of memory). */
int gr__idtable_init(gr__idtable *t);

/* Frees the table's memory; every slot must be dead. */
void gr__idtable_destroy(gr__idtable *t);

/*
 * Takes a free slot for actor a, publishes it as alive, and stores its
 * serial in *serial. Returns GR_OK, GR_ELIMIT (no slot left) or GR_ENOMEM.
 */
int gr__idtable_alloc(gr__idtable *t, struct gr__actor *a, uint64_t *serial);

/*
 * Resolves a serial to its live actor and pins it: the actor's memory stays
 * valid until the matching gr__idtable_release(). Returns NULL when the
 * serial names no live actor. Any thread.
 */
struct gr__actor *gr__idtable_acquire(gr__idtable *t, uint64_t serial);

/*
 * Unpins an actor pinned by gr__idtable_acquire(). Returns true when the
 * caller was the last pin on an actor already marked dead: the caller must
 * then finalise the actor and call gr__idtable_free().
 */
bool gr__idtable_release(gr__idtable *t, uint64_t serial);

/*
 * Marks the actor dead so no new acquire succeeds. Returns true when no pins
 * are left: the caller must then finalise it and call gr__idtable_free().
 * Called once per actor, by the thread that runs its exit.
 */
bool gr__idtable_kill(gr__idtable *t, uint64_t serial);

/* Returns true while the actor serial names is alive. For a caller that
 * holds a pin on it (so that the slot keeps its generation): one load, no
 * write. Any thread. */
bool gr__idtable_alive(gr__idtable *t, uint64_t serial);

/* Gives the slot a new generation and returns it to the free list. */
void gr__idtable_free(gr__idtable *t, uint64_t serial);

/*
 * Returns the live actor in slot index i, unpinned, or NULL. Only for
 * single-threaded sweeps (shutdown), when no actor can exit concurrently.
 */
struct gr__actor *gr__idtable_peek(gr__idtable *t, uint32_t i);

/* Returns the serial of the actor alive in slot index i, or 0; it may exit
 * at any moment, so resolve it with gr__idtable_acquire(). Any thread. */
uint64_t gr__idtable_serial_at(gr__idtable *t, uint32_t i);

/* Returns one past the highest slot index ever used. */
uint32_t gr__idtable_extent(gr__idtable *t);

#endif
