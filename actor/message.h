/*
 * Envelopes: the runtime's allocation for one message. The public gr_msg
 * view and the payload live in the same block, so a send copies the payload
 * exactly once.
 *
 * Small envelopes sent by a worker come from that worker's pool. Whoever
 * frees one gives it back to the owning pool: directly on the owner's own
 * thread, in batches of GR__POOL_BATCH from another worker of the system,
 * one at a time from any other thread. This replaces glibc's cross-thread
 * malloc/free, which costs ~150 ns per block on the development VM when
 * one core allocates and another frees (every message between actors on
 * different workers does that).
 */
#ifndef GROVE_ACTOR_MESSAGE_H
#define GROVE_ACTOR_MESSAGE_H

#include <stdatomic.h>

#include <grove/actor.h>

#include "actor/mailbox.h"

/*
 * Runtime-internal message types (from GR_MSG_RESERVED up). actor/'s own
 * are here, below GR_MSG_RESERVED + 0x20; the layers above keep theirs:
 * + 0x20 to + 0x3F supervisor/ (supervisor/sup.h), + 0x40 to + 0x5F
 * transport/ (transport/transport.h). Public types start at + 0x100.
 */
enum {
    GR__MSG_STOP = GR_MSG_RESERVED + 1,         /* gr_stop(): exit, shutdown. */
    GR__MSG_MONITOR = GR_MSG_RESERVED + 2,      /* corr: id; from: watcher. */
    GR__MSG_DEMONITOR = GR_MSG_RESERVED + 3,    /* corr: id of a monitor. */
    GR__MSG_LINK = GR_MSG_RESERVED + 4,         /* from: the linker. */
    GR__MSG_UNLINK = GR_MSG_RESERVED + 5,       /* from: the unlinker. */
    GR__MSG_SIGNAL = GR_MSG_RESERVED + 6,       /* An exit signal. */
    GR__MSG_KILL = GR_MSG_RESERVED + 7,         /* A direct kill, no payload
                                                   (sent by timers). */
    GR__MSG_ASK_TIMEOUT = GR_MSG_RESERVED + 10, /* corr: an ask timed out. */
    GR__MSG_ASK_FORGET = GR_MSG_RESERVED + 11,  /* corr: the asker stopped
                                                   waiting for this reply. */
    GR__MSG_ASK_SWEEP = GR_MSG_RESERVED + 12,   /* corr: the timer id; time
                                                   out expired asks. */
    GR__MSG_NODE_DOWN = GR_MSG_RESERVED + 13,   /* A node is gone (payload:
                                                   gr__node_down). */
    GR__MSG_UNMUTE = GR_MSG_RESERVED + 14,      /* from: a sender that muted
                                                   itself as this actor caught
                                                   up (see mute.h). */
};

struct gr__envpool;

/* One message in flight; owned by whoever holds it (sender, mailbox,
 * handler's runner, or an inbox's owner). */
typedef struct gr__env {
    gr__node node;            /* Mailbox or pool link; must stay first. */
    gr_msg msg;               /* What handlers see; data points into payload. */
    struct gr__envpool *pool; /* Owning pool, or NULL: plain malloc. */
    _Alignas(16) unsigned char payload[];
} gr__env;

/* Pooled envelope sizes, header (80 bytes) included: payloads up to 8 and
 * up to 104 bytes. Two classes, because most messages carry an integer or
 * two while msgpack records often need a hundred bytes; larger payloads use
 * malloc. Each size plus malloc's 8-byte chunk header is a multiple of 16,
 * so a block wastes nothing in glibc (88 -> 96-byte chunk, 184 -> 192). */
#define GR__POOL_CLASSES 2
#define GR__ENV_CLASS0   88
#define GR__ENV_CLASS1   184
/* Free envelopes a pool keeps; beyond that they go back to malloc, so a
 * burst does not pin its peak memory forever. */
#define GR__POOL_KEEP 4096
/* Envelopes a worker gathers for another worker's pool before handing
 * them over with one CAS. */
#define GR__POOL_BATCH 32

/* Envelopes being gathered for one destination pool; owner-only. */
typedef struct gr__envbatch {
    gr__node *head, *tail;
    unsigned n;
    struct gr__envpool *dest; /* The pool the batch goes back to. */
} gr__envbatch;

/* One worker's pool of envelopes of one size class. */
typedef struct gr__envpool {
    /* Set once: read by every thread that frees one of its envelopes, so
     * kept off the lines its owner writes on every send. */
    unsigned index;    /* This pool's worker index. */
    unsigned cls;      /* Size class: index into a worker's pools. */
    size_t block;      /* Bytes per envelope of this class. */
    const void *group; /* Pools of one system share this tag. */
    /* Owner only. */
    _Alignas(64) gr__node *free; /* Free list. */
    unsigned nfree;              /* Its length. */
    unsigned nout;
    gr__envbatch *out; /* One batch per worker of the system. */
    /* Envelopes given back by other threads: a stack of runs (linked
     * into one chain) that any thread pushes a run onto and the owner
     * empties whole (no ABA: it never pops one).
     * Its own cache line, as every other thread writes it. */
    _Alignas(64) _Atomic(gr__node *) returned;
} gr__envpool;

/* Sets up a worker's GR__POOL_CLASSES empty pools (worker index of
 * nworkers in group). Returns GR_OK or GR_ENOMEM. */
int gr__envpool_init(gr__envpool *pools, unsigned index, unsigned nworkers,
                     const void *group);

/* Makes pools (a worker's GR__POOL_CLASSES) the calling thread's, or none
 * (NULL). */
void gr__envpool_enter(gr__envpool *pools);

/* Returns the calling thread's pools (a worker's, the I/O thread's), or
 * NULL. */
gr__envpool *gr__envpool_mine(void);

/* Hands every batch the calling worker gathered back to its pool; called
 * when the worker's thread ends. */
void gr__envpool_flush(gr__envpool *p);

/* Frees every envelope the pool holds. No thread may use it any more. */
void gr__envpool_destroy(gr__envpool *p);

/*
 * Allocates an envelope for m (header fields and m->len payload bytes from
 * m->data, copied once): from pools (a worker's GR__POOL_CLASSES, which must
 * be the caller's own) when the payload fits a class, else from malloc; NULL
 * pools means malloc. The caller owns the result and frees it with
 * gr__env_free(). Returns NULL when out of memory.
 */
gr__env *gr__env_new(gr__envpool *pools, const gr_msg *m);

/* Frees an envelope from gr__env_new(), on any thread. */
void gr__env_free(gr__env *e);

/* Returns the envelope that contains msg. */
static inline gr__env *gr__env_of(const gr_msg *msg)
{
    return (gr__env *)((char *)msg - offsetof(gr__env, msg));
}

#endif
