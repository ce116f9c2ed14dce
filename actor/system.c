/* System lifecycle: start, stop request, run, shutdown, stats. */
#include "actor/system.h"

#include "actor/request.h"
#include "actor/runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actor/assert.h"
#include "actor/message.h"
#include "actor/mute.h"
#include "actor/owned.h"
#include "actor/remote.h"
#include "actor/send.h"

/* Most worker threads a system accepts. */
#define MAX_WORKERS 1024
/* Threads in the blocking pool when gr_config leaves it 0. */
#define DEFAULT_BLOCKING 4

static unsigned default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Frees what start set up; each part tolerates being unset. */
static void destroy(gr_system *sys)
{
    for (unsigned c = 0; c < GR__POOL_CLASSES; c++)
        if (sys->io_pools[c].out != NULL)
            gr__envpool_destroy(&sys->io_pools[c]);
    gr__sched_destroy(&sys->sched);
    gr__idtable_destroy(&sys->ids);
    gr__names_destroy(&sys->names);
    gr__dead_destroy(&sys->dead);
    gr__control_free(atomic_load(&sys->events.control));
    gr__events_destroy(&sys->events);
    pthread_cond_destroy(&sys->stop_cond);
    pthread_mutex_destroy(&sys->stop_lock);
    free(sys);
}

int gr_system_start(const gr_config *cfg, gr_system **out)
{
    static const gr_config defaults;
    if (out == NULL)
        return GR_EINVAL;
    if (cfg == NULL)
        cfg = &defaults;
    if (getenv(GR__NODE_FD_ENV) != NULL) {
        /* Started as a node, yet not running as one: starting a root
         * system here would start its node children again, and theirs. */
        gr__logger log;
        gr__logger_init(&log, cfg);
        gr__log(&log, GR_LOG_ERROR,
                "this process was started as a node or a node template "
                "(%s is set), but "
                "gr_system_start() was called before gr_node_main(): call "
                "gr_node_main() first in main()",
                GR__NODE_FD_ENV);
        return GR_EINVAL;
    }
    return gr__system_start_named(cfg, GR__ROOT_NODE_NAME, out);
}

int gr__system_start_named(const gr_config *cfg, const char *node_name,
                           gr_system **out)
{
    unsigned nworkers = cfg->workers ? cfg->workers : default_workers();
    if (nworkers > MAX_WORKERS || cfg->blocking_threads > MAX_WORKERS ||
        (cfg->log_level_set && (unsigned)cfg->log_level > GR_LOG_OFF))
        return GR_EINVAL;
    gr_system *sys = calloc(1, sizeof *sys);
    if (sys == NULL)
        return GR_ENOMEM;
    gr__logger_init(&sys->log, cfg);
    sys->log.node = sys->node_name;
    int rc = gr__events_init(&sys->events, cfg, &sys->log);
    sys->events.sys = sys;
    if (rc == GR_OK)
        rc = gr__dead_init(&sys->dead, cfg->dead_letter_log_limit,
                           cfg->dead_letter_summary_ms);
    sys->max_payload =
        cfg->max_payload ? cfg->max_payload : GR__DEFAULT_MAX_PAYLOAD;
    sys->link_buffer = cfg->link_buffer;
    sys->max_frame = cfg->max_frame;
    snprintf(sys->node_name, sizeof sys->node_name, "%s", node_name);
    atomic_init(&sys->next_id, 1);
    atomic_init(&sys->owned_ops, NULL);
    pthread_mutex_init(&sys->stop_lock, NULL);
    pthread_cond_init(&sys->stop_cond, NULL);
    if (rc == GR_OK)
        rc = gr__idtable_init(&sys->ids) != 0 ? GR_ENOMEM : GR_OK;
    /* Random, so that a ref of another system, or of this one before a
     * restart, names none of its actors (a node's is set by its parent). */
    if (rc == GR_OK)
        rc = gr__new_incarnation(&sys->incarnation);
    if (rc == GR_OK)
        rc = gr__envpool_init(sys->io_pools, 0, 1, &sys->io);
    if (rc == GR_OK && (rc = gr__names_init(&sys->names)) == GR_OK &&
        (rc = gr__sched_init(&sys->sched, sys, nworkers,
                             cfg->blocking_threads ? cfg->blocking_threads
                                                   : DEFAULT_BLOCKING)) ==
            GR_OK &&
        (rc = gr__sched_start(&sys->sched)) == GR_OK)
        rc = gr__io_start(&sys->io, sys, !cfg->no_signals);
    if (rc != GR_OK) {
        gr__sched_stop(&sys->sched);
        destroy(sys);
        return rc;
    }
    gr__log(&sys->log, GR_LOG_INFO, "system started: %u workers", nworkers);
    /* The root process listens; a node is seen through its parent, by
     * way of its agent (started by gr_node_main). */
    sys->slow_handler_ms = cfg->slow_handler_ms;
    sys->node_root = GR_REF_NONE;
    gr__control *control = NULL;
    if (strcmp(node_name, GR__ROOT_NODE_NAME) != 0) {
        /* A node. */
    } else if (gr__control_start(sys, cfg, &control) != GR_OK) {
        gr__log(&sys->log, GR_LOG_ERROR,
                "control: no memory for the endpoint; running without it");
    } else {
        atomic_store_explicit(&sys->events.control, control,
                              memory_order_release);
    }
    if (cfg->dist.node_name != NULL &&
        strcmp(node_name, GR__ROOT_NODE_NAME) == 0 &&
        (rc = gr__dist_start(sys, &cfg->dist, &sys->dist)) != GR_OK) {
        gr__log(&sys->log, GR_LOG_ERROR, "distribution: %s; system stopped",
                gr_strerror(rc));
        (void)gr_system_shutdown(sys);
        return rc;
    }
    *out = sys;
    return GR_OK;
}

void gr_system_stop(gr_system *sys)
{
    if (sys == NULL)
        return;
    /* Owners waiting in empty inboxes learn it now (GR_ESTOPPED), so they
     * can close them before the shutdown. First: once the stop request is
     * seen, gr_system_run may free sys. */
    if (!atomic_exchange(&sys->stopping, true) &&
        atomic_load(&sys->open_inboxes) > 0)
        (void)gr__inboxes_wake(sys);
    pthread_mutex_lock(&sys->stop_lock);
    sys->stop_requested = true;
    pthread_cond_broadcast(&sys->stop_cond);
    /* Nothing of sys may be touched after this unlock. */
    pthread_mutex_unlock(&sys->stop_lock);
}

int gr_system_run(gr_system *sys)
{
    if (sys == NULL)
        return GR_EINVAL;
    if (gr__in_handler())
        return GR_EWRONGTHREAD;
    pthread_mutex_lock(&sys->stop_lock);
    while (!sys->stop_requested)
        pthread_cond_wait(&sys->stop_cond, &sys->stop_lock);
    pthread_mutex_unlock(&sys->stop_lock);
    return gr_system_shutdown(sys);
}

/* Orders actors newest first. */
static int by_seq_desc(const void *x, const void *y)
{
    const gr__actor *a = *(gr__actor *const *)x;
    const gr__actor *b = *(gr__actor *const *)y;
    return a->seq < b->seq ? 1 : a->seq > b->seq ? -1 : 0;
}

/* Makes every live actor exit, newest first. Single-threaded: workers are
 * joined and sends are refused, so no actor changes underneath. */
static void terminate_all(gr_system *sys)
{
    const gr_reason shutdown = {.code = GR_ESHUTDOWN};
    uint32_t extent = gr__idtable_extent(&sys->ids);
    gr__actor **live = malloc((extent ? extent : 1) * sizeof *live);
    size_t n = 0;
    /* A muted actor is stopped here like any other, so no stack of muted
     * senders may point at it when its target exits. */
    for (uint32_t i = 0; i < extent; i++) {
        gr__actor *a = gr__idtable_peek(&sys->ids, i);
        if (a != NULL)
            gr__mute_forget(a);
    }
    for (uint32_t i = 0; i < extent; i++) {
        gr__actor *a = gr__idtable_peek(&sys->ids, i);
        if (a == NULL)
            continue;
        if (live != NULL)
            live[n++] = a;
        else /* Out of memory: still stop everyone, in slot order. */
            gr__actor_exit(a, NULL, &shutdown, GR__EXIT_TERMINATE);
    }
    if (live == NULL)
        return;
    qsort(live, n, sizeof *live, by_seq_desc);
    for (size_t i = 0; i < n; i++)
        gr__actor_exit(live[i], NULL, &shutdown, GR__EXIT_TERMINATE);
    free(live);
}

/* How long a shutdown waits for other threads to close their inboxes. */
#define INBOX_CLOSE_WAIT_MS 5000

/*
 * Before a shutdown: wakes every inbox's owner (an empty inbox now answers
 * GR_ESTOPPED) and waits for them to close their inboxes. Returns GR_OK
 * once none is open, or GR_EBUSY, logged, when one stays open: the
 * calling thread's own (it cannot close them while it waits here) or
 * another thread's for INBOX_CLOSE_WAIT_MS.
 */
static int wait_inboxes_closed(gr_system *sys)
{
    atomic_store(&sys->stopping, true);
    for (int waited_ms = 0;; waited_ms++) {
        /* The count, not the walk, says when they are closed: a closing
         * inbox leaves the id table first and drops the count last, its
         * last touch of sys (acquire: pairs with that release). None open,
         * the usual case, costs no walk. */
        if (atomic_load_explicit(&sys->open_inboxes, memory_order_acquire) == 0)
            return GR_OK;
        int mine = gr__inboxes_wake(sys);
        int open =
            atomic_load_explicit(&sys->open_inboxes, memory_order_acquire);
        if (open == 0)
            return GR_OK;
        if (open == mine || waited_ms >= INBOX_CLOSE_WAIT_MS) {
            gr__log(&sys->log, GR_LOG_ERROR,
                    "shutdown refused: %d inbox(es) still open, %d of them "
                    "this thread's; close every inbox (gr_inbox_close) "
                    "before shutting the system down",
                    open, mine);
            return GR_EBUSY;
        }
        struct timespec ms = {0, 1000000}; /* At least 1 ms a round. */
        (void)nanosleep(&ms, NULL);
    }
}

int gr_system_shutdown(gr_system *sys)
{
    if (sys == NULL)
        return GR_EINVAL;
    if (gr__in_handler())
        return GR_EWRONGTHREAD;
    int rc = wait_inboxes_closed(sys);
    if (rc != GR_OK)
        return rc;
    /* First, while everything it asks still answers; its tap stays (and
     * drops what comes) until destroy(). None is installed after this. */
    pthread_mutex_lock(&sys->stop_lock);
    sys->control_closed = true;
    pthread_mutex_unlock(&sys->stop_lock);
    gr__control_stop(gr__system_control(sys));
    /* seq_cst: from here on every send and spawn is refused. */
    atomic_store(&sys->shutting_down, true);
    gr__sched_stop(&sys->sched);
    gr__io_stop(&sys->io);
    terminate_all(sys);
    gr__dist_stop(sys->dist);
    const gr__remote_ops *ops = atomic_load(&sys->remote_ops);
    if (ops != NULL)
        ops->shutdown(sys->remote);
    const gr__owned_ops *owned = atomic_load(&sys->owned_ops);
    if (owned != NULL)
        owned->shutdown(sys->owned);
    gr__dead_summary(&sys->dead, &sys->log);
    gr__log(&sys->log, GR_LOG_INFO, "system stopped");
    destroy(sys);
    return GR_OK;
}

uint64_t gr__new_id(gr_system *sys, gr__worker *w)
{
    /* relaxed: ids only need to be unique. A worker takes them in blocks,
     * so its asks do not all hit one shared counter. */
    if (w == NULL)
        return atomic_fetch_add_explicit(&sys->next_id, 1,
                                         memory_order_relaxed);
    if (w->id_next == w->id_end) {
        w->id_next = atomic_fetch_add_explicit(&sys->next_id, GR__ID_BLOCK,
                                               memory_order_relaxed);
        w->id_end = w->id_next + GR__ID_BLOCK;
    }
    return w->id_next++;
}

/* Inserts (actor, depth) into list, deepest first, if it is deep enough. */
static void note_depth(gr_mailbox_depth *list, gr_ref actor, uint64_t depth)
{
    if (depth == 0 || depth <= list[GR_STATS_DEEPEST - 1].depth)
        return;
    int i = GR_STATS_DEEPEST - 1;
    for (; i > 0 && list[i - 1].depth < depth; i--)
        list[i] = list[i - 1];
    list[i] = (gr_mailbox_depth){actor, depth};
}

/* gr__each_live_actor over the id table's slots [from, end) only. */
static void each_live_in(gr_system *sys, uint32_t from, uint32_t end,
                         void (*fn)(gr__actor *a, gr_ref ref, void *arg),
                         void *arg)
{
    for (uint32_t i = from; i < end; i++) {
        uint64_t serial = gr__idtable_serial_at(&sys->ids, i);
        gr__actor *a =
            serial != 0 ? gr__idtable_acquire(&sys->ids, serial) : NULL;
        if (a == NULL)
            continue;
        /* The ref from the serial we hold: a->serial is written by the
         * spawner just after the slot is published. */
        fn(a, (gr_ref){serial, sys->node_id, sys->incarnation}, arg);
        if (gr__idtable_release(&sys->ids, serial))
            gr__actor_finalize(a);
    }
}

void gr__each_live_actor(gr_system *sys,
                         void (*fn)(gr__actor *a, gr_ref ref, void *arg),
                         void *arg)
{
    each_live_in(sys, 0, gr__idtable_extent(&sys->ids), fn, arg);
}

static void note_actor_depth(gr__actor *a, gr_ref ref, void *list)
{
    note_depth(list, ref, gr__actor_depth(a));
}

/* Fills list with the deepest mailboxes of the live actors. */
static void find_deepest(gr_system *sys, gr_mailbox_depth *list)
{
    gr__each_live_actor(sys, note_actor_depth, list);
}

void gr_system_stats(gr_system *sys, gr_stats *out)
{
    if (sys == NULL || out == NULL)
        return;
    memset(out, 0, sizeof *out);
    gr__sched *s = &sys->sched;
    out->workers = s->nworkers;
    out->spawned = atomic_load_explicit(&sys->spawned, memory_order_relaxed);
    /* acquire: pairs with gr__actor_exit, so every exit counted here has
     * already made its reference stop resolving. */
    out->exited = atomic_load_explicit(&sys->exited, memory_order_acquire);
    out->delivered =
        atomic_load_explicit(&sys->inbox_delivered, memory_order_relaxed);
    out->restarts = atomic_load_explicit(&sys->restarts, memory_order_relaxed);
    /* An actor spawned and gone between the two loads counts only in
     * exited. */
    out->alive = out->spawned > out->exited ? out->spawned - out->exited : 0;
    out->sent = atomic_load_explicit(&s->sent_outside, memory_order_relaxed);
    for (int i = 0; i < GR_DL_COUNT; i++)
        out->dead_letters[i] =
            atomic_load_explicit(&sys->dead.count[i], memory_order_relaxed);
    for (unsigned i = 0; i < s->nworkers; i++) {
        gr__worker_stats *ws = &s->workers[i].stats;
        out->delivered +=
            atomic_load_explicit(&ws->delivered, memory_order_relaxed);
        out->sent += atomic_load_explicit(&ws->sent, memory_order_relaxed);
        out->muted += atomic_load_explicit(&ws->muted, memory_order_relaxed);
        if (i < GR_STATS_MAX_WORKERS) {
            out->runs[i] =
                atomic_load_explicit(&ws->runs, memory_order_relaxed);
            out->steals[i] =
                atomic_load_explicit(&ws->steals, memory_order_relaxed);
        }
    }
    pthread_mutex_lock(&s->block_lock);
    out->blocking_threads = s->block_started;
    pthread_mutex_unlock(&s->block_lock);
    for (unsigned i = s->nworkers; i < s->nworkers + s->nblocking; i++) {
        gr__worker_stats *ws = &s->workers[i].stats;
        out->delivered +=
            atomic_load_explicit(&ws->delivered, memory_order_relaxed);
        out->sent += atomic_load_explicit(&ws->sent, memory_order_relaxed);
        out->muted += atomic_load_explicit(&ws->muted, memory_order_relaxed);
        out->blocking_runs +=
            atomic_load_explicit(&ws->runs, memory_order_relaxed);
    }
    const gr__owned_ops *owned =
        atomic_load_explicit(&sys->owned_ops, memory_order_acquire);
    if (owned != NULL)
        owned->stats(sys->owned, out);
    find_deepest(sys, out->deepest);
}

void *gr__owned_get(gr_system *sys, const gr__owned_ops *ops,
                    void *(*make)(gr_system *sys))
{
    /* acquire: pairs with the release below, so t is seen with ops. */
    if (atomic_load_explicit(&sys->owned_ops, memory_order_acquire) != NULL)
        return sys->owned;
    pthread_mutex_lock(&sys->stop_lock);
    if (atomic_load_explicit(&sys->owned_ops, memory_order_relaxed) == NULL &&
        (sys->owned = make(sys)) != NULL)
        atomic_store_explicit(&sys->owned_ops, ops, memory_order_release);
    void *t = sys->owned;
    pthread_mutex_unlock(&sys->stop_lock);
    return t;
}

void gr__remote_install(gr_system *sys, const gr__remote_ops *ops, void *t)
{
    sys->remote = t;
    /* release: a sender that sees ops sees t. */
    atomic_store_explicit(&sys->remote_ops, ops, memory_order_release);
}

void *gr__remote_get(gr_system *sys)
{
    /* acquire: pairs with gr__remote_install. */
    return atomic_load_explicit(&sys->remote_ops, memory_order_acquire) != NULL
               ? sys->remote
               : NULL;
}

void gr__system_set_node(gr_system *sys, const char *name, uint32_t id,
                         uint32_t incarnation)
{
    snprintf(sys->node_name, sizeof sys->node_name, "%s", name);
    sys->node_id = id;
    sys->incarnation = incarnation;
}

void gr__broadcast_node_down(gr_system *sys, uint32_t node, uint32_t inc)
{
    gr__node_down d = {node, inc};
    uint32_t extent = gr__idtable_extent(&sys->ids);
    for (uint32_t i = 0; i < extent; i++) {
        uint64_t serial = gr__idtable_serial_at(&sys->ids, i);
        if (serial != 0)
            (void)gr__deliver(sys, gr__worker_of(sys), GR__MSG_NODE_DOWN,
                              GR_REF_NONE,
                              (gr_ref){serial, sys->node_id, sys->incarnation},
                              0, &d, sizeof d);
    }
}

/* ---- the internal API for supervisor/ and transport/ (runtime.h) ---- */

const gr__logger *gr__system_log(const gr_system *sys)
{
    return &sys->log;
}

void gr__system_emit(gr_system *sys, gr_event *ev)
{
    gr__event_emit(&sys->events, &sys->log, ev);
}

gr__dist *gr__system_dist(gr_system *sys)
{
    return sys->dist;
}

gr__control *gr__system_control(gr_system *sys)
{
    return atomic_load_explicit(&sys->events.control, memory_order_acquire);
}

bool gr__system_install_control(gr_system *sys, gr__control *c)
{
    pthread_mutex_lock(&sys->stop_lock);
    bool ok = !sys->control_closed && gr__system_control(sys) == NULL;
    if (ok)
        atomic_store_explicit(&sys->events.control, c, memory_order_release);
    pthread_mutex_unlock(&sys->stop_lock);
    return ok;
}

uint32_t gr__system_slow_handler_ms(const gr_system *sys)
{
    return sys->slow_handler_ms;
}

void gr__system_set_node_root(gr_system *sys, gr_ref root)
{
    pthread_mutex_lock(&sys->stop_lock);
    sys->node_root = root;
    pthread_mutex_unlock(&sys->stop_lock);
}

gr_ref gr__system_node_root(gr_system *sys)
{
    pthread_mutex_lock(&sys->stop_lock);
    gr_ref root = sys->node_root;
    pthread_mutex_unlock(&sys->stop_lock);
    return root;
}

void gr__system_tracing(gr_system *sys, int delta)
{
    atomic_fetch_add_explicit(&sys->tracing, (unsigned)delta,
                              memory_order_relaxed);
}

unsigned gr__system_threads(const gr_system *sys)
{
    return sys->sched.nworkers + sys->sched.nblocking;
}

void gr__system_thread_now(gr_system *sys, unsigned i, uint64_t *serial,
                           uint32_t *type, uint64_t *seq)
{
    gr__worker_stats *st = &sys->sched.workers[i].stats;
    *serial = atomic_load_explicit(&st->now_serial, memory_order_relaxed);
    *type = atomic_load_explicit(&st->now_type, memory_order_relaxed);
    *seq = atomic_load_explicit(&st->now_seq, memory_order_relaxed);
}

/* The caller's function and argument, for actor_info. */
typedef struct actors_walk {
    void (*fn)(const gr__actor_info *info, void *arg);
    void *arg;
} actors_walk;

static void actor_info(gr__actor *a, gr_ref ref, void *arg)
{
    const actors_walk *w = arg;
    gr__actor_info info = {
        .ref = ref,
        .behaviour = a->b != NULL && a->b->name != NULL ? a->b->name : "",
        .depth = gr__actor_depth(a),
        .handled = atomic_load_explicit(&a->popped, memory_order_relaxed)};
    w->fn(&info, w->arg);
}

void gr__system_actors(gr_system *sys, uint32_t from, uint32_t count,
                       void (*fn)(const gr__actor_info *info, void *arg),
                       void *arg, uint32_t *next)
{
    uint32_t extent = gr__idtable_extent(&sys->ids);
    uint32_t end =
        from >= extent || extent - from <= count ? extent : from + count;
    actors_walk w = {fn, arg};
    each_live_in(sys, from, end, actor_info, &w);
    *next = end < extent ? end : 0;
}

bool gr__system_behaviour_of(gr_system *sys, uint64_t serial, char *buf,
                             size_t size)
{
    gr__actor *a = gr__idtable_acquire(&sys->ids, serial);
    if (a == NULL)
        return false;
    snprintf(buf, size, "%s",
             a->b != NULL && a->b->name != NULL ? a->b->name : "");
    if (gr__idtable_release(&sys->ids, serial))
        gr__actor_finalize(a);
    return true;
}

gr__io *gr__system_io(gr_system *sys)
{
    return &sys->io;
}

uint32_t gr__system_node_id(const gr_system *sys)
{
    return sys->node_id;
}

uint32_t gr__system_incarnation(const gr_system *sys)
{
    return sys->incarnation;
}

const char *gr__system_node_name(const gr_system *sys)
{
    return sys->node_name;
}

bool gr__ref_alive(gr_system *sys, gr_ref ref)
{
    if (ref.node != sys->node_id || ref.incarnation != sys->incarnation)
        return false;
    gr__actor *a = gr__idtable_acquire(&sys->ids, ref.serial);
    if (a == NULL)
        return false;
    if (gr__idtable_release(&sys->ids, ref.serial))
        gr__actor_finalize(a);
    return true;
}

unsigned gr__system_workers(const gr_system *sys)
{
    return sys->sched.nworkers;
}

char *gr_ref_format(gr_system *sys, gr_ref ref, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return buf;
    if (gr_ref_is_none(ref)) {
        snprintf(buf, size, "<none>");
        return buf;
    }
    char node[GR_NAME_MAX + 1];
    uint32_t inc = 0; /* The node's incarnation now, if it is known. */
    bool known = true;
    const gr__remote_ops *ops =
        sys != NULL
            ? atomic_load_explicit(&sys->remote_ops, memory_order_acquire)
            : NULL;
    if (sys != NULL && ref.node == sys->node_id) {
        snprintf(node, sizeof node, "%s", sys->node_name);
        inc = sys->incarnation;
    } else if (ref.node == GR__ROOT_NODE_ID) {
        /* A node's root outlives it: its refs show no incarnation. */
        snprintf(node, sizeof node, "%s", GR__ROOT_NODE_NAME);
        inc = ref.incarnation;
    } else if ((ops == NULL || !ops->node_name(sys->remote, ref.node, node,
                                               sizeof node, &inc)) &&
               (sys == NULL || sys->dist == NULL ||
                !gr__dist_node_label(sys->dist, ref.node, node, sizeof node,
                                     &inc))) {
        snprintf(node, sizeof node, "#%08" PRIx32, ref.node);
        known = false;
    }
    int n = snprintf(buf, size, "<%" PRIu32 ".%" PRIu32 "@%s",
                     (uint32_t)ref.serial, (uint32_t)(ref.serial >> 32), node);
    /* Another incarnation than the node's now (a node restarted since),
     * or a node not known: its incarnation too. */
    if (n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n,
                 !known || ref.incarnation != inc ? "/%" PRIx32 ">" : ">",
                 ref.incarnation);
    return buf;
}

bool gr__system_shutting_down(const gr_system *sys)
{
    /* relaxed: a hint for stopping; shutdown itself orders what matters. */
    return atomic_load_explicit(&sys->shutting_down, memory_order_relaxed);
}

size_t gr__system_max_payload(const gr_system *sys)
{
    return sys->max_payload;
}

size_t gr__system_max_frame(const gr_system *sys)
{
    return sys->max_frame;
}

size_t gr__system_link_buffer(const gr_system *sys)
{
    return sys->link_buffer;
}

void gr__system_count_restart(gr_system *sys)
{
    /* relaxed: a statistic. */
    atomic_fetch_add_explicit(&sys->restarts, 1, memory_order_relaxed);
}
