#include "actor/message.h"

#include <stdlib.h>
#include <string.h>

#include "actor/assert.h"

static const size_t class_block[GR__POOL_CLASSES] = {GR__ENV_CLASS0,
                                                     GR__ENV_CLASS1};

_Static_assert(sizeof(gr__env) + 8 <= GR__ENV_CLASS0, "a u64 payload fits");
_Static_assert(GR__POOL_CLASSES == 2, "class_block lists every class");

/* The pools of the worker running on this thread, or NULL. */
static _Thread_local gr__envpool *my_pools;

void gr__envpool_enter(gr__envpool *pools)
{
    my_pools = pools;
}

gr__envpool *gr__envpool_mine(void)
{
    return my_pools;
}

int gr__envpool_init(gr__envpool *pools, unsigned index, unsigned nworkers,
                     const void *group)
{
    int rc = GR_OK;
    for (unsigned c = 0; c < GR__POOL_CLASSES; c++) {
        gr__envpool *p = &pools[c];
        p->free = NULL;
        p->nfree = 0;
        p->index = index;
        p->cls = c;
        p->block = class_block[c];
        p->group = group;
        p->out = calloc(nworkers, sizeof *p->out);
        p->nout = nworkers;
        atomic_init(&p->returned, NULL);
        if (p->out == NULL)
            rc = GR_ENOMEM;
    }
    return rc;
}

static void free_list(gr__node *n)
{
    while (n != NULL) {
        gr__node *next = atomic_load_explicit(&n->next, memory_order_relaxed);
        free(n);
        n = next;
    }
}

void gr__envpool_destroy(gr__envpool *p)
{
    free_list(p->free);
    free_list(atomic_load_explicit(&p->returned, memory_order_acquire));
    for (unsigned i = 0; i < p->nout; i++)
        free_list(p->out[i].head);
    free(p->out);
    p->out = NULL;
}

/*
 * A run of n free envelopes given back at once, linked first to last: its
 * first envelope's bytes after the link say how long it is and where it
 * ends, so that the owner takes a whole stack of runs by reading two
 * envelopes per run instead of every one (each was last written on the
 * core that freed it: a cache miss).
 */
typedef struct gr__envrun {
    gr__node node;
    gr__node *last;
    size_t n;
} gr__envrun;

_Static_assert(sizeof(gr__envrun) <= GR__ENV_CLASS0, "a run head fits");

/* Pushes the run head..tail of n envelopes onto owner's returned stack.
 * Any thread. */
static void give_back(gr__envpool *owner, gr__node *head, gr__node *tail,
                      size_t n)
{
    gr__envrun *run = (gr__envrun *)head;
    run->last = tail;
    run->n = n;
    gr__node *top =
        atomic_load_explicit(&owner->returned, memory_order_relaxed);
    do {
        atomic_store_explicit(&tail->next, top, memory_order_relaxed);
        /* release: the owner's acquire exchange sees the links and the
         * envelopes' last writes before it reuses them. */
    } while (!atomic_compare_exchange_weak_explicit(&owner->returned, &top,
                                                    head, memory_order_release,
                                                    memory_order_relaxed));
}

void gr__envpool_flush(gr__envpool *p)
{
    for (unsigned i = 0; i < p->nout; i++) {
        gr__envbatch *b = &p->out[i];
        if (b->n > 0)
            give_back(b->dest, b->head, b->tail, b->n);
        b->head = b->tail = NULL;
        b->n = 0;
    }
}

/* Puts n on the owner's own free list, or back to malloc past the cap. */
static void keep(gr__envpool *p, gr__node *n)
{
    if (p->nfree >= GR__POOL_KEEP) {
        free(n);
        return;
    }
    atomic_store_explicit(&n->next, p->free, memory_order_relaxed);
    p->free = n;
    p->nfree++;
}

/* Refills an empty free list from the returned stack: its runs are one
 * chain already, so only their heads and ends are read. Runs past
 * GR__POOL_KEEP go back to malloc. */
static void refill(gr__envpool *p)
{
    /* acquire: pairs with give_back's release. */
    gr__node *n =
        atomic_exchange_explicit(&p->returned, NULL, memory_order_acquire);
    gr__node *first = n, *last = NULL;
    while (n != NULL && p->nfree < GR__POOL_KEEP) {
        gr__envrun *run = (gr__envrun *)n;
        last = run->last;
        p->nfree += (unsigned)run->n;
        n = atomic_load_explicit(&last->next, memory_order_relaxed);
    }
    if (last != NULL) {
        atomic_store_explicit(&last->next, NULL, memory_order_relaxed);
        p->free = first;
    }
    free_list(n);
}

gr__env *gr__env_new(gr__envpool *pools, const gr_msg *m)
{
    gr__env *e;
    gr__envpool *p = NULL;
    if (pools != NULL) {
        /* A gr_ctx kept past its callback and used from another thread. */
        GR_ASSERT(pools == my_pools &&
                  "a gr_ctx is valid only in the callback it was passed to");
        size_t need = sizeof(gr__env) + m->len;
        for (unsigned c = 0; c < GR__POOL_CLASSES && p == NULL; c++)
            if (need <= class_block[c])
                p = &pools[c];
    }
    if (p != NULL) {
        if (p->free == NULL)
            refill(p);
        if (p->free != NULL) {
            e = (gr__env *)p->free;
            p->free =
                atomic_load_explicit(&p->free->next, memory_order_relaxed);
            p->nfree--;
            /* The next one was most likely freed on another core: fetch
             * its first line for writing while this send goes on (also
             * fetching its second line measured slower). */
            if (p->free != NULL)
                __builtin_prefetch(p->free, 1);
        } else if ((e = malloc(p->block)) == NULL) {
            return NULL;
        }
        e->pool = p;
    } else {
        if ((e = malloc(sizeof *e + m->len)) == NULL)
            return NULL;
        e->pool = NULL;
    }
    e->msg = *m;
    if (m->len > 0) {
        memcpy(e->payload, m->data, m->len);
        e->msg.data = e->payload;
    } else {
        e->msg.data = NULL;
    }
    return e;
}

void gr__env_free(gr__env *e)
{
    gr__envpool *owner = e->pool;
    gr__envpool *me =
        my_pools != NULL && owner != NULL ? &my_pools[owner->cls] : NULL;
    if (owner == NULL) {
        free(e);
    } else if (owner == me) {
        keep(me, &e->node);
    } else if (me != NULL && me->group == owner->group) {
        gr__envbatch *b = &me->out[owner->index];
        b->dest = owner;
        atomic_store_explicit(&e->node.next, b->head, memory_order_relaxed);
        if (b->head == NULL)
            b->tail = &e->node;
        b->head = &e->node;
        if (++b->n == GR__POOL_BATCH) {
            give_back(owner, b->head, b->tail, b->n);
            b->head = b->tail = NULL;
            b->n = 0;
        }
    } else {
        give_back(owner, &e->node, &e->node, 1);
    }
}
