#include "actor/scheduler.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "actor/clock.h"
#include "actor/remote.h"
#include "actor/send.h"
#include "actor/system.h"

_Thread_local gr__worker *gr__current_worker;
_Thread_local bool gr__remote_pending;

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* Tries a taker's CAS this many times on one victim before moving on. */
#define STEAL_TRIES 4

static bool stopping(gr__sched *s)
{
    /* relaxed: a stale false only delays the exit by one loop. */
    return atomic_load_explicit(&s->stopping, memory_order_relaxed);
}

/* ---- injection queue --------------------------------------------------- */

static void inject_push(gr__sched *s, gr__actor *a)
{
    a->sched_next = NULL;
    pthread_mutex_lock(&s->inject_lock);
    if (s->inject_tail != NULL)
        s->inject_tail->sched_next = a;
    else
        s->inject_head = a;
    s->inject_tail = a;
    /* seq_cst: a parking worker's recheck (after its fence) must see it. */
    atomic_fetch_add_explicit(&s->inject_len, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&s->inject_lock);
}

static gr__actor *inject_pop(gr__sched *s)
{
    /* relaxed: a hint; the lock below orders the real read. */
    if (atomic_load_explicit(&s->inject_len, memory_order_relaxed) == 0)
        return NULL;
    pthread_mutex_lock(&s->inject_lock);
    gr__actor *a = s->inject_head;
    if (a != NULL) {
        s->inject_head = a->sched_next;
        if (s->inject_head == NULL)
            s->inject_tail = NULL;
        atomic_fetch_sub_explicit(&s->inject_len, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->inject_lock);
    return a;
}

/* ---- the blocking pool ------------------------------------------------- */

static void *blocking_main(void *arg);

/* Creates a thread with the signals a runtime thread never takes blocked
 * (SIGINT/SIGTERM belong to the I/O thread's watchers or the application,
 * and SIGPIPE must surface as EPIPE). Returns pthread_create's result. */
static int create_runtime_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t block, old;
    sigemptyset(&block);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&block, sigs[i]);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* Queues a blocking actor for the pool. When the queue holds more actors
 * than threads wait for one, another thread starts (up to the pool's
 * size), so that a thread woken but not yet running is not counted twice. */
static void block_push(gr__sched *s, gr__actor *a)
{
    a->sched_next = NULL;
    pthread_mutex_lock(&s->block_lock);
    if (s->block_tail != NULL)
        s->block_tail->sched_next = a;
    else
        s->block_head = a;
    s->block_tail = a;
    s->block_len++;
    if (s->block_len > s->block_waiting && s->block_started < s->nblocking &&
        !stopping(s)) {
        gr__worker *bw = &s->workers[s->nworkers + s->block_started];
        /* A thread that cannot be made leaves the actor to those running
         * (gr__sched_blocking_ready made sure there is one). */
        if (create_runtime_thread(&bw->thread, blocking_main, bw) == 0)
            s->block_started++;
    }
    if (s->block_waiting > 0)
        pthread_cond_signal(&s->block_cond);
    pthread_mutex_unlock(&s->block_lock);
}

/* Takes the oldest queued blocking actor, waiting for one; NULL on stop. */
static gr__actor *block_pop(gr__sched *s)
{
    pthread_mutex_lock(&s->block_lock);
    while (s->block_head == NULL && !stopping(s)) {
        s->block_waiting++;
        pthread_cond_wait(&s->block_cond, &s->block_lock);
        s->block_waiting--;
    }
    gr__actor *a = s->block_head;
    if (a != NULL && !stopping(s)) {
        s->block_head = a->sched_next;
        if (s->block_head == NULL)
            s->block_tail = NULL;
        s->block_len--;
    } else {
        a = NULL;
    }
    pthread_mutex_unlock(&s->block_lock);
    return a;
}

/* ---- waking and parking (Go's protocol) -------------------------------- */

/*
 * Wakes one parked worker if none is spinning: a spinning worker will find
 * the new work itself, and waking costs the waker a syscall.
 *
 * fence selects the Dekker fence against park()'s recheck. It is required
 * when the work went to the injection queue, where a missed wake-up could
 * leave it with every worker asleep. A worker pushing to its own deque may
 * skip it: a missed wake-up there only costs parallelism for a moment, as
 * the pusher itself takes that work next, and the fence is the dominant
 * cost of a send that displaces run-next.
 */
static void wake_one(gr__sched *s, bool fence)
{
    if (fence)
        atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->nspinning, memory_order_relaxed) != 0 ||
        atomic_load_explicit(&s->nidle, memory_order_relaxed) == 0)
        return;
    unsigned zero = 0;
    /* The woken worker starts out spinning: count it now so that other
     * wakers stand down. relaxed: the idle lock below orders the hand-off. */
    if (!atomic_compare_exchange_strong_explicit(&s->nspinning, &zero, 1,
                                                 memory_order_relaxed,
                                                 memory_order_relaxed))
        return;
    pthread_mutex_lock(&s->idle_lock);
    gr__worker *w = s->idle;
    if (w != NULL) {
        s->idle = w->idle_next;
        w->woken = true;
        atomic_fetch_sub_explicit(&s->nidle, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->idle_lock);
    if (w == NULL) {
        atomic_fetch_sub_explicit(&s->nspinning, 1, memory_order_relaxed);
        return;
    }
    sem_post(&w->park);
}

/* Returns true when some queue another worker can take from holds work. */
static bool work_visible(gr__sched *s)
{
    if (atomic_load_explicit(&s->inject_len, memory_order_relaxed) != 0)
        return true;
    for (unsigned i = 0; i < s->nworkers; i++)
        if (gr__deque_size(&s->workers[i].dq) != 0)
            return true;
    return false;
}

/* Stops counting w as spinning; the last spinner to find work wakes another
 * so that a burst of new work keeps getting picked up (Go's resetspinning). */
static void stop_spinning(gr__sched *s, gr__worker *w, bool found_work)
{
    if (!w->spinning)
        return;
    w->spinning = false;
    unsigned before =
        atomic_fetch_sub_explicit(&s->nspinning, 1, memory_order_relaxed);
    if (found_work && before == 1)
        wake_one(s, true);
}

/* Parks w until a waker or a stop posts it. Returns at once, without
 * sleeping, when work or a stop shows up after w joined the idle list. */
static void park(gr__sched *s, gr__worker *w)
{
    pthread_mutex_lock(&s->idle_lock);
    w->woken = false;
    w->idle_next = s->idle;
    s->idle = w;
    atomic_fetch_add_explicit(&s->nidle, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->idle_lock);
    /* seq_cst: pairs with wake_one's fence (see there). */
    atomic_thread_fence(memory_order_seq_cst);
    if (work_visible(s) ||
        atomic_load_explicit(&s->stopping, memory_order_seq_cst)) {
        pthread_mutex_lock(&s->idle_lock);
        bool woken = w->woken;
        if (!woken) {
            gr__worker **link = &s->idle;
            while (*link != w)
                link = &(*link)->idle_next;
            *link = w->idle_next;
            atomic_fetch_sub_explicit(&s->nidle, 1, memory_order_relaxed);
        }
        pthread_mutex_unlock(&s->idle_lock);
        if (!woken)
            return;
        /* A waker already took us off the list and will post: consume it. */
    }
    while (sem_wait(&w->park) != 0 && errno == EINTR)
        ;
    /* wake_one counted us as spinning before posting. A stop wake-up does
     * not, but then nobody reads the count again. */
    w->spinning = !stopping(s);
}

/* ---- finding work ------------------------------------------------------ */

static uint64_t next_rand(gr__worker *w)
{
    /* xorshift64: cheap victim choice, owner-only state. */
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return w->rng = x;
}

/* Takes the oldest entry of d, retrying lost races a few times. */
static gr__actor *take(gr__deque *d)
{
    for (int i = 0; i < STEAL_TRIES; i++) {
        void *x = gr__deque_steal(d);
        if (x == GR__DEQUE_EMPTY)
            return NULL;
        if (x != GR__DEQUE_ABORT)
            return x;
    }
    return NULL;
}

/* Queues a on w's deque (the injection queue if full) and, when an idle
 * worker could take it, wakes one. Called on w's own thread. */
static void push_local(gr__sched *s, gr__worker *w, gr__actor *a)
{
    if (gr__deque_push(&w->dq, a)) {
        wake_one(s, false);
    } else {
        inject_push(s, a);
        wake_one(s, true);
    }
}

static gr__actor *find_local(gr__sched *s, gr__worker *w)
{
    gr__actor *a;
    if (w->ticks % GR__INJECT_PERIOD == 0 && (a = inject_pop(s)) != NULL) {
        w->run_next_streak = 0;
        return a;
    }
    if (w->run_next != NULL) {
        a = w->run_next;
        w->run_next = NULL;
        if (w->run_next_streak < GR__RUN_NEXT_LIMIT ||
            gr__deque_size(&w->dq) == 0) {
            w->run_next_streak++;
            return a;
        }
        push_local(s, w, a);
    }
    w->run_next_streak = 0;
    if ((a = take(&w->dq)) != NULL)
        return a;
    return inject_pop(s);
}

/* Whether w may steal from v, whose deque holds a single actor: only once
 * v has run no new turn for GR__STEAL_LONE_NS (see there). */
static bool lone_stealable(gr__worker *w, gr__worker *v, unsigned vi)
{
    gr__lone_seen *seen = &w->lone[vi];
    uint64_t runs = atomic_load_explicit(&v->stats.runs, memory_order_relaxed);
    uint64_t now = gr__mono_ns();
    if (runs != seen->runs || seen->since_ns == 0) {
        seen->runs = runs;
        seen->since_ns = now;
        return false;
    }
    return now - seen->since_ns >= GR__STEAL_LONE_NS;
}

/* Steals the older half of a random victim's deque: runs the oldest,
 * keeps the rest in w's own deque (as Go's runqsteal does). A lone actor
 * is left to its busy worker for a while (lone_stealable). */
static gr__actor *steal_other(gr__sched *s, gr__worker *w)
{
    unsigned n = s->nworkers;
    if (n < 2)
        return NULL;
    void *got[GR__DEQUE_CAPACITY / 2];
    unsigned start = (unsigned)(next_rand(w) % n);
    for (unsigned i = 0; i < n; i++) {
        unsigned vi = (start + i) % n;
        gr__worker *v = &s->workers[vi];
        if (v == w)
            continue;
        /* Only v's deque and turn count are read here: v's other fields
         * share lines with what its turns write on every send. */
        int64_t size = gr__deque_size(&v->dq);
        if (size <= 0 || (size == 1 && !lone_stealable(w, v, vi)))
            continue;
        int k = -1;
        for (int tries = 0; tries < STEAL_TRIES && k < 0; tries++)
            k = gr__deque_steal_half(&v->dq, got, GR__DEQUE_CAPACITY / 2);
        if (k <= 0)
            continue;
        gr__stat_inc(&w->stats.steals, (uint64_t)k);
        /* Our deque is empty here (find_local came first), so the rest
         * fits; gr__deque_push only fails if a full half arrives. */
        for (int j = 1; j < k; j++)
            if (!gr__deque_push(&w->dq, got[j]))
                inject_push(s, got[j]);
        return got[0];
    }
    return NULL;
}

/* Looks for work elsewhere, spinning then parking. Returns NULL on stop. */
static gr__actor *find_idle(gr__sched *s, gr__worker *w)
{
    for (;;) {
        if (stopping(s))
            return NULL;
        if (!w->spinning) {
            /* Go's limit: at most half the busy workers spin. */
            unsigned spin =
                atomic_load_explicit(&s->nspinning, memory_order_relaxed);
            unsigned idle =
                atomic_load_explicit(&s->nidle, memory_order_relaxed);
            if (2 * spin < s->nworkers - idle) {
                w->spinning = true;
                atomic_fetch_add_explicit(&s->nspinning, 1,
                                          memory_order_relaxed);
            }
        }
        unsigned rounds = w->spinning ? GR__SPIN_ROUNDS : 1;
        for (unsigned r = 0; r < rounds; r++) {
            gr__actor *a = inject_pop(s);
            if (a == NULL)
                a = steal_other(s, w);
            if (a != NULL) {
                stop_spinning(s, w, true);
                return a;
            }
            if ((r & 15) == 15) {
                if (stopping(s))
                    return NULL;
                /* Let a thread waiting for this CPU run (an I/O thread
                 * with a frame to deliver, another process's worker):
                 * spinning must not starve the work it waits for. */
                sched_yield();
            }
            cpu_relax();
        }
        stop_spinning(s, w, false);
        park(s, w);
    }
}

/* Writes the frames this thread's turns queued on node links. */
static void flush_remote(gr__worker *w)
{
    if (gr__remote_pending)
        atomic_load_explicit(&w->sys->remote_ops, memory_order_acquire)
            ->flush(w->sys->remote);
}

/* What a runtime thread does after every turn, a failed one too (its loop
 * comes back here after gr_fail's jump), before it looks for work or
 * parks: drops the turn's pin, counts its sends (so that an idle worker's
 * last turn is counted) and writes the frames it queued on node links. */
static void after_turn(gr__worker *w)
{
    if (w->pin_serial != 0)
        gr__send_unpin(w);
    gr__stat_inc(&w->stats.sent, w->turn_sends);
    w->turn_sends = 0;
    flush_remote(w);
}

/* What a runtime thread does as it ends. */
static void *thread_end(gr__worker *w)
{
    after_turn(w);
    for (unsigned c = 0; c < GR__POOL_CLASSES; c++)
        gr__envpool_flush(&w->pools[c]);
    gr__envpool_enter(NULL);
    gr__current_worker = NULL;
    return NULL;
}

/* Runs one turn of a on w. */
static void run_turn(gr__worker *w, gr__actor *a)
{
    w->ticks++;
    gr__stat_inc(&w->stats.runs, 1);
    gr__actor_run(w, a);
}

static void *worker_main(void *arg)
{
    gr__worker *w = arg;
    gr__sched *s = &w->sys->sched;
    gr__current_worker = w;
    gr__envpool_enter(w->pools);
    /* A handler's gr_fail() jumps here, abandoning the turn's frames; the
     * loop below keeps no state across turns, so it simply goes on. Only w
     * and s are live across the jump, and neither changes. */
    if (sigsetjmp(w->fail_jmp, 0) != 0)
        gr__actor_failed(w);
    for (;;) {
        after_turn(w); /* Before anything else, parking too. */
        if (stopping(s))
            break;
        gr__actor *a = find_local(s, w);
        if (a == NULL && (a = find_idle(s, w)) == NULL)
            break;
        run_turn(w, a);
    }
    return thread_end(w);
}

/* A blocking-pool thread: runs blocking actors, one turn at a time, and
 * nothing else. Its handlers may block, so it is never a victim for
 * stealing nor a target of run-next. */
static void *blocking_main(void *arg)
{
    gr__worker *w = arg;
    gr__sched *s = &w->sys->sched;
    gr__current_worker = w;
    gr__envpool_enter(w->pools);
    if (sigsetjmp(w->fail_jmp, 0) != 0) /* As in worker_main. */
        gr__actor_failed(w);
    for (;;) {
        after_turn(w);
        gr__actor *a = block_pop(s);
        if (a == NULL)
            break;
        run_turn(w, a);
    }
    return thread_end(w);
}

/* ---- public (internal) entry points ------------------------------------ */

void gr__sched_submit(gr__sched *s, gr__worker *w, gr__actor *a)
{
    if (a->flags & GR__ACTOR_BLOCKING) {
        block_push(s, a);
    } else if (w != NULL && !w->blocking) {
        gr__actor *prev = w->run_next;
        w->run_next = a;
        /* A pair that keeps handing work to each other stays on this core;
         * nobody else needs waking until something becomes stealable. */
        if (prev == NULL)
            return;
        push_local(s, w, prev);
    } else {
        inject_push(s, a);
        wake_one(s, true);
    }
}

void gr__sched_requeue(gr__sched *s, gr__worker *w, gr__actor *a)
{
    if (a->flags & GR__ACTOR_BLOCKING)
        block_push(s, a);
    else
        push_local(s, w, a);
}

int gr__sched_blocking_ready(gr__sched *s)
{
    pthread_mutex_lock(&s->block_lock);
    int rc = GR_OK;
    if (s->nblocking == 0)
        rc = GR_EINVAL;
    else if (stopping(s)) /* A thread made now would never be joined. */
        rc = GR_ESTOPPED;
    else if (s->block_started == 0 &&
             create_runtime_thread(&s->workers[s->nworkers].thread,
                                   blocking_main,
                                   &s->workers[s->nworkers]) != 0)
        rc = GR_ESYS;
    else if (s->block_started == 0)
        s->block_started = 1;
    pthread_mutex_unlock(&s->block_lock);
    return rc;
}

void gr__sched_long_turn(gr__sched *s, gr__worker *w)
{
    gr__actor *a = w->run_next;
    if (a == NULL)
        return;
    w->run_next = NULL;
    push_local(s, w, a);
}

int gr__sched_init(gr__sched *s, gr_system *sys, unsigned n, unsigned nblocking)
{
    /* aligned_alloc: workers hold cache-line-aligned deques. The size is a
     * multiple of the alignment because the struct's alignment is 64. */
    unsigned all = n + nblocking;
    s->workers = aligned_alloc(_Alignof(gr__worker), all * sizeof *s->workers);
    if (s->workers == NULL)
        return GR_ENOMEM;
    memset(s->workers, 0, all * sizeof *s->workers);
    s->nworkers = n;
    s->nblocking = nblocking;
    s->block_head = s->block_tail = NULL;
    s->block_len = s->block_waiting = s->block_started = 0;
    pthread_mutex_init(&s->block_lock, NULL);
    pthread_cond_init(&s->block_cond, NULL);
    s->inject_head = s->inject_tail = NULL;
    s->idle = NULL;
    s->threads_started = false;
    atomic_init(&s->inject_len, 0);
    atomic_init(&s->sent_outside, 0);
    atomic_init(&s->nidle, 0);
    atomic_init(&s->nspinning, 0);
    atomic_init(&s->stopping, false);
    pthread_mutex_init(&s->inject_lock, NULL);
    pthread_mutex_init(&s->idle_lock, NULL);
    for (unsigned i = 0; i < all; i++) {
        gr__worker *w = &s->workers[i];
        gr__deque_init(&w->dq);
        w->sys = sys;
        w->index = i;
        w->blocking = i >= n;
        w->rng = 0x9E3779B97F4A7C15ull * (i + 1);
        sem_init(&w->park, 0, 0);
        atomic_init(&w->stats.runs, 0);
        atomic_init(&w->stats.steals, 0);
        atomic_init(&w->stats.muted, 0);
        atomic_init(&w->stats.delivered, 0);
        w->lone = calloc(all, sizeof *w->lone);
        if (w->lone == NULL || gr__envpool_init(w->pools, i, all, s) != GR_OK) {
            /* Destroy frees the pools made so far. */
            s->nworkers = i + 1;
            s->nblocking = 0;
            return GR_ENOMEM;
        }
    }
    return GR_OK;
}

int gr__sched_start(gr__sched *s)
{
    unsigned started = 0;
    for (; started < s->nworkers; started++)
        if (create_runtime_thread(&s->workers[started].thread, worker_main,
                                  &s->workers[started]) != 0)
            break;
    if (started < s->nworkers) {
        unsigned n = s->nworkers;
        s->nworkers = started; /* Join only those that exist. */
        s->threads_started = true;
        gr__sched_stop(s);
        s->nworkers = n;
        s->threads_started = false;
        return GR_ESYS;
    }
    s->threads_started = true;
    return GR_OK;
}

void gr__sched_stop(gr__sched *s)
{
    if (!s->threads_started)
        return;
    /* seq_cst: pairs with park()'s fence and recheck. */
    atomic_store_explicit(&s->stopping, true, memory_order_seq_cst);
    pthread_mutex_lock(&s->idle_lock);
    for (gr__worker *w = s->idle; w != NULL; w = w->idle_next) {
        w->woken = true;
        sem_post(&w->park);
    }
    s->idle = NULL;
    atomic_store_explicit(&s->nidle, 0, memory_order_relaxed);
    pthread_mutex_unlock(&s->idle_lock);
    for (unsigned i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i].thread, NULL);
    /* No thread starts once stopping is seen under the lock. */
    pthread_mutex_lock(&s->block_lock);
    pthread_cond_broadcast(&s->block_cond);
    unsigned nblock = s->block_started;
    pthread_mutex_unlock(&s->block_lock);
    for (unsigned i = 0; i < nblock; i++)
        pthread_join(s->workers[s->nworkers + i].thread, NULL);
    s->threads_started = false;
}

void gr__sched_destroy(gr__sched *s)
{
    for (unsigned i = 0; i < s->nworkers + s->nblocking; i++) {
        sem_destroy(&s->workers[i].park);
        free(s->workers[i].lone);
        for (unsigned c = 0; c < GR__POOL_CLASSES; c++)
            gr__envpool_destroy(&s->workers[i].pools[c]);
    }
    pthread_mutex_destroy(&s->inject_lock);
    pthread_mutex_destroy(&s->idle_lock);
    pthread_mutex_destroy(&s->block_lock);
    pthread_cond_destroy(&s->block_cond);
    free(s->workers);
    s->workers = NULL;
}
