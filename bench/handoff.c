/*
 * handoff: what handing messages from one core to another costs on this
 * machine with no actor runtime at all, as a floor to read fjthrput
 * against. One thread sends N messages, another receives them. Each
 * message is an 88-byte block (Grove's smallest envelope) that the sender
 * fills and the receiver reads; blocks go back to the sender through a
 * return ring published every 16, so they cross cores both ways, as
 * pooled envelopes do.
 *
 * One RESULT line per way of handing them over (impl=):
 *  - ring_each: a bounded single-producer ring whose write index the
 *    sender publishes after every message (Lamport's queue; each side
 *    caches the other's index).
 *  - ring_batch16: the same ring, its index published every 16 messages.
 *  - slots: a ring of slots that the receiver polls and clears, with no
 *    index at all (FastForward).
 *  - mailboxes: HANDOFF_A (default 1000) Vyukov queues, one per "actor",
 *    each push an atomic exchange; the sender sends to them in turn, as
 *    fjthrput's sender does, and the receiver sweeps them in the same
 *    order. This keeps fjthrput's two costs (a locked instruction and
 *    different cache lines for every message) and drops the scheduling.
 *  - mailboxes_1p: the same with a plain load and store of head in place
 *    of the exchange, which is correct only with one producer: what the
 *    locked instruction costs.
 *
 * Parameters: HANDOFF_N (default 10000000), HANDOFF_A. Figure: ns_per_msg.
 * Threads are not pinned, as Grove's workers are not.
 */
#include "bench_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define RING       4096u /* Entries in each ring; a power of two. */
#define RETURN_PUB 16u   /* The return ring's index is published this often. */

/* One message: 88 bytes, as Grove's smallest envelope. */
typedef struct block {
    _Atomic(struct block *) next; /* Link in a mailbox. */
    uint64_t word[10];
} block;

/* A single-producer single-consumer ring of pointers. Each side keeps a
 * private copy of the other's index and reads the shared one only when
 * its copy says full (or empty). */
typedef struct ring {
    _Alignas(64) _Atomic(uint64_t) head; /* Written by the producer. */
    uint64_t head_local;                 /* Producer: not yet published. */
    uint64_t tail_seen;                  /* Producer: the last tail read. */
    _Alignas(64) _Atomic(uint64_t) tail; /* Written by the consumer. */
    uint64_t head_seen;                  /* Consumer: the last head read. */
    _Alignas(64) void *slot[RING];
} ring;

/* Appends p; publishes the index when the count reaches a multiple of
 * every. Returns false when full. Producer only. */
static bool ring_put(ring *r, void *p, unsigned every)
{
    uint64_t h = r->head_local;
    if (h - r->tail_seen >= RING) {
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (h - r->tail_seen >= RING)
            return false;
    }
    r->slot[h % RING] = p;
    r->head_local = ++h;
    if (h % every == 0)
        atomic_store_explicit(&r->head, h, memory_order_release);
    return true;
}

/* Takes the oldest entry, or NULL when none is published. Consumer only. */
static void *ring_get(ring *r)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t == r->head_seen) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t == r->head_seen)
            return NULL;
    }
    void *p = r->slot[t % RING];
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return p;
}

/* A Vyukov queue: producers exchange head; the consumer follows links from
 * tail, whose node it has already read (its block goes back once tail
 * moves past it). */
typedef struct mailbox {
    _Alignas(64) _Atomic(block *) head;
    _Alignas(64) block *tail;
    block stub;
} mailbox;

enum mode { RING_EACH, RING_BATCH16, SLOTS, MAILBOXES, MAILBOXES_1P, MODES };
static const char *const mode_name[MODES] = {
    "ring_each", "ring_batch16", "slots", "mailboxes", "mailboxes_1p"};

static struct {
    enum mode mode;
    uint64_t n, a;
    ring forward, back;
    _Alignas(64) _Atomic(block *) slot[RING];
    mailbox *mb;
    uint64_t checksum; /* The receiver's sum of what it read. */
} run;

/* Receiver side: gives a block back to the sender, spinning while the
 * return ring is full. */
static void give_back(block *b)
{
    while (!ring_put(&run.back, b, RETURN_PUB))
        ;
}

/* Receiver side: reads a message as a handler would. */
static void consume(const block *b)
{
    run.checksum += b->word[0] + b->word[9];
}

static void *receiver(void *arg)
{
    (void)arg;
    uint64_t got = 0;
    uint64_t i = 0; /* slots: the next slot; mailboxes: the next queue. */
    while (got < run.n) {
        block *b = NULL;
        switch (run.mode) {
        case RING_EACH:
        case RING_BATCH16:
            b = ring_get(&run.forward);
            break;
        case SLOTS:
            b = atomic_load_explicit(&run.slot[i % RING], memory_order_acquire);
            if (b != NULL) {
                atomic_store_explicit(&run.slot[i % RING], NULL,
                                      memory_order_relaxed);
                i++;
            }
            break;
        case MAILBOXES:
        case MAILBOXES_1P: {
            mailbox *m = &run.mb[i];
            i = i + 1 == run.a ? 0 : i + 1;
            block *next;
            while ((next = atomic_load_explicit(
                        &m->tail->next, memory_order_acquire)) != NULL) {
                consume(next);
                if (m->tail != &m->stub)
                    give_back(m->tail);
                m->tail = next;
                got++;
            }
            continue;
        }
        case MODES:
            break;
        }
        if (b != NULL) {
            consume(b);
            give_back(b);
            got++;
        }
    }
    return NULL;
}

/* Sender side: takes a block the receiver gave back, spinning while none
 * is published. */
static block *take(void)
{
    block *b;
    while ((b = ring_get(&run.back)) == NULL)
        ;
    return b;
}

static void send_all(void)
{
    uint64_t target = 0;
    for (uint64_t i = 0; i < run.n; i++) {
        block *b = take();
        for (unsigned w = 0; w < 10; w++)
            b->word[w] = i + w;
        switch (run.mode) {
        case RING_EACH:
            while (!ring_put(&run.forward, b, 1))
                ;
            break;
        case RING_BATCH16:
            while (!ring_put(&run.forward, b, 16))
                ;
            break;
        case SLOTS:
            while (atomic_load_explicit(&run.slot[i % RING],
                                        memory_order_relaxed) != NULL)
                ;
            atomic_store_explicit(&run.slot[i % RING], b, memory_order_release);
            break;
        case MAILBOXES:
        case MAILBOXES_1P: {
            mailbox *m = &run.mb[target];
            target = target + 1 == run.a ? 0 : target + 1;
            atomic_store_explicit(&b->next, NULL, memory_order_relaxed);
            block *prev;
            if (run.mode == MAILBOXES) {
                prev =
                    atomic_exchange_explicit(&m->head, b, memory_order_acq_rel);
            } else {
                prev = atomic_load_explicit(&m->head, memory_order_relaxed);
                atomic_store_explicit(&m->head, b, memory_order_relaxed);
            }
            atomic_store_explicit(&prev->next, b, memory_order_release);
            break;
        }
        case MODES:
            break;
        }
    }
    /* Whatever a batched index still holds back goes out now. */
    atomic_store_explicit(&run.forward.head, run.forward.head_local,
                          memory_order_release);
}

/* Runs one mode and prints its RESULT line. */
static void measure(enum mode mode, block *blocks, uint64_t nblocks)
{
    memset(&run.forward, 0, sizeof run.forward);
    memset(&run.back, 0, sizeof run.back);
    for (unsigned i = 0; i < RING; i++)
        atomic_init(&run.slot[i], NULL);
    for (uint64_t i = 0; i < run.a; i++) {
        mailbox *m = &run.mb[i];
        atomic_init(&m->stub.next, NULL);
        atomic_init(&m->head, &m->stub);
        m->tail = &m->stub;
    }
    /* Every block starts on the return ring, published. */
    for (uint64_t i = 0; i < nblocks; i++)
        ring_put(&run.back, &blocks[i], 1);
    run.mode = mode;
    run.checksum = 0;

    pthread_t t;
    if (pthread_create(&t, NULL, receiver, NULL) != 0)
        bench_die("pthread_create failed");
    uint64_t t0 = bench_now_ns();
    send_all();
    pthread_join(t, NULL);
    uint64_t t1 = bench_now_ns();

    /* Every message was read once: word[0] + word[9] = 2i + 9. */
    uint64_t n = run.n;
    if (run.checksum != n * (n - 1) + 9 * n)
        bench_die("handoff %s: the receiver read wrong messages",
                  mode_name[mode]);
    double s = bench_seconds(t0, t1);
    printf("RESULT bench=handoff impl=%s n=%" PRIu64
           " seconds=%.6f rate=%" PRIu64 "/s unit=msg ns_per_msg=%.2f\n",
           mode_name[mode], n, s, (uint64_t)((double)n / s + 0.5),
           s * 1e9 / (double)n);
    fflush(stdout);
}

int main(void)
{
    run.n = bench_env_u64("HANDOFF_N", 10000000);
    run.a = bench_env_u64("HANDOFF_A", 1000);
    /* Enough blocks that the return ring never runs dry: each mailbox
     * keeps its last block until the next arrives. */
    uint64_t nblocks = run.a + RING / 2;
    if (nblocks > RING)
        bench_die("HANDOFF_A=%" PRIu64 ": at most %u", run.a, RING / 2);
    block *blocks = malloc(nblocks * sizeof *blocks);
    run.mb = aligned_alloc(64, run.a * sizeof *run.mb);
    if (blocks == NULL || run.mb == NULL)
        bench_die("out of memory");
    for (enum mode m = 0; m < MODES; m++)
        measure(m, blocks, nblocks);
    free(run.mb);
    free(blocks);
    return 0;
}
