#include "actor/refmap.h"

#include <assert.h>
#include <stdlib.h>

static size_t hash(gr_ref r)
{
    /* Serials of live actors are dense; a multiplicative mix spreads them
     * (and folds in the rest of the reference). */
    uint64_t h = r.serial ^ ((uint64_t)r.node << 32) ^ r.incarnation;
    h *= 0x9E3779B97F4A7C15u;
    return (size_t)(h ^ (h >> 29));
}

/* Returns the slot holding key, or the free slot where it would go. */
static gr__refmap_slot *find(const gr__refmap *m, gr_ref key)
{
    size_t mask = m->cap - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
        gr__refmap_slot *s = &m->slots[i];
        if (s->key.serial == 0 || gr_ref_eq(s->key, key))
            return s;
    }
}

void *gr__refmap_get(const gr__refmap *m, gr_ref key)
{
    if (m->n == 0)
        return NULL;
    gr__refmap_slot *s = find(m, key);
    return s->key.serial != 0 ? s->value : NULL;
}

static int grow(gr__refmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 8;
    gr__refmap_slot *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return GR_ENOMEM;
    gr__refmap old = *m;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].key.serial != 0)
            *find(m, old.slots[i].key) = old.slots[i];
    free(old.slots);
    return GR_OK;
}

int gr__refmap_put(gr__refmap *m, gr_ref key, void *value)
{
    assert(key.serial != 0 && "serial 0 marks a free slot");
    /* Load factor at most 1/2 keeps probe runs short. */
    if ((m->n + 1) * 2 > m->cap && grow(m) != GR_OK)
        return GR_ENOMEM;
    gr__refmap_slot *s = find(m, key);
    if (s->key.serial == 0)
        m->n++;
    s->key = key;
    s->value = value;
    return GR_OK;
}

void *gr__refmap_take(gr__refmap *m, gr_ref key)
{
    if (m->n == 0)
        return NULL;
    gr__refmap_slot *hole = find(m, key);
    if (hole->key.serial == 0)
        return NULL;
    void *value = hole->value;
    m->n--;
    /* Backward shift: move later entries of the run into the hole when
     * their home slot does not lie between the hole and them. */
    size_t mask = m->cap - 1;
    size_t i = (size_t)(hole - m->slots);
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        gr__refmap_slot *s = &m->slots[j];
        if (s->key.serial == 0)
            break;
        size_t home = hash(s->key) & mask;
        /* Distance from home to j versus from home to the hole. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = *s;
            i = j;
        }
    }
    m->slots[i] = (gr__refmap_slot){0};
    return value;
}

void gr__refmap_each(const gr__refmap *m,
                     void (*fn)(void *arg, gr_ref key, void *value), void *arg)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key.serial != 0)
            fn(arg, m->slots[i].key, m->slots[i].value);
}

void gr__refmap_clear(gr__refmap *m)
{
    free(m->slots);
    *m = (gr__refmap){0};
}
