/*
 * Chase–Lev deque (array, top and bottom indices as in Lê, Pop, Cohen and
 * Zappa Nardelli, PPoPP 2013). Because the owner also takes from the top,
 * there is no owner-side take from the bottom to race with, so the steal
 * path needs no seq_cst fence: takers settle every entry with one CAS on
 * top, as Go's runqget/runqsteal do.
 */
#include "actor/deque.h"

#include <stddef.h>

void gr__deque_init(gr__deque *d)
{
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    for (unsigned i = 0; i < GR__DEQUE_CAPACITY; i++)
        atomic_init(&d->buf[i], NULL);
}

bool gr__deque_push(gr__deque *d, void *x)
{
    /* relaxed: only the owner writes bottom. */
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    /* acquire: a slot is reusable only once the take that freed it is seen. */
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
    if (b - t >= (int64_t)GR__DEQUE_CAPACITY)
        return false;
    atomic_store_explicit(&d->buf[b & (GR__DEQUE_CAPACITY - 1)], x,
                          memory_order_relaxed);
    /* release: a taker that sees the new bottom also sees the entry (a
     * release store rather than a fence, which ThreadSanitizer models). */
    atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
    return true;
}

void *gr__deque_steal(gr__deque *d)
{
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
    /* acquire: pairs with push's release fence, so the entry is visible. */
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_acquire);
    if (t >= b)
        return GR__DEQUE_EMPTY;
    void *x = atomic_load_explicit(&d->buf[t & (GR__DEQUE_CAPACITY - 1)],
                                   memory_order_relaxed);
    /* Exactly one taker claims index t. release: our read of the entry
     * happens before the owner, seeing the new top, reuses the slot. */
    if (!atomic_compare_exchange_strong_explicit(
            &d->top, &t, t + 1, memory_order_acq_rel, memory_order_relaxed))
        return GR__DEQUE_ABORT;
    return x;
}

int64_t gr__deque_size(gr__deque *d)
{
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
    return b > t ? b - t : 0;
}

int gr__deque_steal_half(gr__deque *d, void **out, unsigned max)
{
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
    /* acquire: pairs with push's release store of bottom. */
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_acquire);
    int64_t n = b - t;
    if (n <= 0)
        return 0;
    n -= n / 2; /* Half, rounded up: a single entry is taken too. */
    if (n > (int64_t)max)
        n = max;
    for (int64_t i = 0; i < n; i++)
        out[i] = atomic_load_explicit(
            &d->buf[(t + i) & (GR__DEQUE_CAPACITY - 1)], memory_order_relaxed);
    /* One CAS claims all n entries; release as in gr__deque_steal. */
    if (!atomic_compare_exchange_strong_explicit(
            &d->top, &t, t + n, memory_order_acq_rel, memory_order_relaxed))
        return -1;
    return (int)n;
}
