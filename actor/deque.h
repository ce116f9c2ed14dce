/*
 * A bounded Chase–Lev work-stealing deque of actor pointers.
 *
 * The owning worker pushes at the bottom; any thread, the owner included,
 * takes the oldest entry from the top. The owner consumes FIFO on purpose
 * (as Go's and Tokio's local run queues do): an actor that used up its batch
 * goes to the back of the line, so no actor starves while the run-next slot
 * keeps communicating pairs on one core. Capacity is fixed; a full deque
 * makes push fail and the caller sends the actor to the injection queue.
 */
#ifndef GROVE_ACTOR_DEQUE_H
#define GROVE_ACTOR_DEQUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Entries one worker's deque holds before overflowing; a power of two. */
#define GR__DEQUE_CAPACITY 1024u

/* The deque; zero-initialised memory is an empty deque. */
typedef struct gr__deque {
    _Alignas(64) _Atomic(int64_t) top;    /* Next entry to take; thieves CAS. */
    _Alignas(64) _Atomic(int64_t) bottom; /* Next free slot; owner writes. */
    _Atomic(void *) buf[GR__DEQUE_CAPACITY];
} gr__deque;

/* Result of gr__deque_steal() besides an entry. */
#define GR__DEQUE_EMPTY ((void *)0)
/* A lost race with another taker; the deque may still hold entries. */
#define GR__DEQUE_ABORT ((void *)1)

/* Empties the deque. Not thread-safe; for set-up only. */
void gr__deque_init(gr__deque *d);

/* Appends x at the bottom. Returns false when full. Owner thread only. */
bool gr__deque_push(gr__deque *d, void *x);

/*
 * Takes the oldest entry. Returns it, GR__DEQUE_EMPTY, or GR__DEQUE_ABORT
 * when another taker won the race. Any thread.
 */
void *gr__deque_steal(gr__deque *d);

/*
 * Takes the oldest half (rounded up, at most max) of the entries into out,
 * oldest first, with one CAS, as Go's runqsteal does. Returns the number
 * taken, 0 when empty, or -1 when another taker won the race. Any thread.
 */
int gr__deque_steal_half(gr__deque *d, void **out, unsigned max);

/* Returns an estimate of the number of entries. Any thread. */
int64_t gr__deque_size(gr__deque *d);

#endif
