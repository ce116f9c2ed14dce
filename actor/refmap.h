/*
 * A hash map from actor references to pointers: open addressing with
 * linear probing and backward-shift deletion, so lookups, inserts and
 * removals are O(1) on average however many entries come and go. Owned by
 * one thread (no locking). Used for an actor's links and a supervisor's
 * children.
 */
#ifndef GROVE_ACTOR_REFMAP_H
#define GROVE_ACTOR_REFMAP_H

#include <stdbool.h>
#include <stddef.h>

#include <grove/actor.h>

/* One slot; serial 0 marks it free. */
typedef struct gr__refmap_slot {
    gr_ref key;
    void *value;
} gr__refmap_slot;

/* The map; zero-initialised it is empty and allocates nothing. */
typedef struct gr__refmap {
    gr__refmap_slot *slots;
    size_t cap; /* A power of two, or 0. */
    size_t n;
} gr__refmap;

/* The key under which a map stores a 64-bit id (a timer, an ask) rather
 * than an actor: node and incarnation 0. id must not be 0. */
static inline gr_ref gr__id_key(uint64_t id)
{
    return (gr_ref){id, 0, 0};
}

/* Returns the value stored for key, or NULL. */
void *gr__refmap_get(const gr__refmap *m, gr_ref key);

/* Stores value for key (replacing any). key must name an actor (nonzero
 * serial). Returns GR_OK or GR_ENOMEM (the map is then unchanged). */
int gr__refmap_put(gr__refmap *m, gr_ref key, void *value);

/* Removes key; returns its value, or NULL when it was absent. */
void *gr__refmap_take(gr__refmap *m, gr_ref key);

/* Calls fn(arg, key, value) for every entry, in no particular order. fn
 * must not change the map. */
void gr__refmap_each(const gr__refmap *m,
                     void (*fn)(void *arg, gr_ref key, void *value), void *arg);

/* Frees the map's memory; it is then empty. */
void gr__refmap_clear(gr__refmap *m);

#endif
