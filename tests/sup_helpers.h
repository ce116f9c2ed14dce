/*
 * Helpers shared by the supervisor behaviour tests (test_supervisor,
 * test_sup_intensity, test_sup_tree): one trace that records, in the order
 * they happen, worker inits and terminates, the supervisors' events (through
 * gr_config.event_fn) and DOWNs seen by a watcher actor. One mutex-protected
 * array gives a single order that respects causality across actors (an
 * event emitted after a child's exit is recorded after its terminate), so a
 * case can compare an exact expected sequence.
 *
 * Records are short strings:
 *   "init a"                 worker a's init ran (ref kept in the record)
 *   "init_failed c"          failing worker c's init ran and returned GR_EBUSY
 *   "term a shutdown"        worker a's terminate ran with that reason
 *   "top: started a"         supervisor "top" emitted child_started for a
 *   "top: restarted a r1"    child_restarted, restarts in window 1
 *   "top: exited a shutdown" child_exited with that reason
 *   "top: crashed b crash"   child_crashed with that reason
 *   "top: start_failed c GR_EBUSY"
 *   "top: gave_up r2"        gave_up, restarts in window 2
 *   "down top shutdown"      the watcher of "top" got its DOWN
 * Reasons read "normal", "shutdown", "shutdown:DETAIL", "killed", "crash"
 * (the worker's own crash code) or the code's GR_E* name. Public API only.
 */
#ifndef GROVE_TEST_SUP_HELPERS_H
#define GROVE_TEST_SUP_HELPERS_H

#include <grove/grove.h>

#include "helpers.h"

/* The code a worker's handler returns to crash: no runtime path makes it. */
#define CODE_CRASH (-1000)
/* What a failing worker's init returns. */
#define CODE_INIT_FAIL GR_EBUSY

/* Messages a worker understands (from the test thread, sender none). */
enum {
    MSG_CRASH = 1,    /* Returns CODE_CRASH: a crash. */
    MSG_NORMAL,       /* Returns GR_STOP: a normal exit. */
    MSG_SHUTDOWN,     /* int64_t detail: exits with shutdown and detail. */
    MSG_SHUTDOWN_RAW, /* Exits with plain shutdown (gr_stop_with, detail 0). */
};

/* How long a trace wait lasts before the case fails. */
#define TRACE_WAIT_S 10.0

/* ---- the trace ----------------------------------------------------------- */

enum { REC_INIT = 1, REC_TERM = 2, REC_EVENT = 4, REC_DOWN = 8 };

#define REC_MAX 1024
#define REC_LEN 64

struct rec {
    int what;   /* REC_* */
    gr_ref ref; /* INIT/TERM: the worker; EVENT: the child; DOWN: target. */
    char s[REC_LEN];
};

static struct {
    pthread_mutex_t lock;
    size_t n, lost;
    struct rec r[REC_MAX];
} trace_ = {.lock = PTHREAD_MUTEX_INITIALIZER};

static inline void trace_reset(void)
{
    pthread_mutex_lock(&trace_.lock);
    trace_.n = trace_.lost = 0;
    pthread_mutex_unlock(&trace_.lock);
}

static inline void trace_add(int what, gr_ref ref, const char *s)
{
    pthread_mutex_lock(&trace_.lock);
    if (trace_.n < REC_MAX) {
        struct rec *r = &trace_.r[trace_.n++];
        r->what = what;
        r->ref = ref;
        snprintf(r->s, sizeof r->s, "%s", s);
    } else {
        trace_.lost++;
    }
    pthread_mutex_unlock(&trace_.lock);
}

/* Number of records so far: a mark to compare from. */
static inline size_t trace_len(void)
{
    pthread_mutex_lock(&trace_.lock);
    size_t n = trace_.n;
    pthread_mutex_unlock(&trace_.lock);
    return n;
}

/* Number of records after mark whose kind is in mask. */
static inline size_t trace_count(size_t mark, int mask)
{
    pthread_mutex_lock(&trace_.lock);
    size_t k = 0;
    for (size_t i = mark; i < trace_.n; i++)
        k += (trace_.r[i].what & mask) != 0;
    pthread_mutex_unlock(&trace_.lock);
    return k;
}

/* Copies record i (i < trace_len()). */
static inline struct rec trace_at(size_t i)
{
    pthread_mutex_lock(&trace_.lock);
    struct rec r = trace_.r[i];
    pthread_mutex_unlock(&trace_.lock);
    return r;
}

static inline void trace_dump(size_t from)
{
    size_t n = trace_len();
    fprintf(stderr, "    trace from %zu (%zu records):\n", from, n);
    for (size_t i = from; i < n; i++) {
        struct rec r = trace_at(i);
        fprintf(stderr, "    [%zu] %s\n", i, r.s);
    }
}

/* Formats a reason as the records show it. */
static inline const char *reason_str(const gr_reason *r, char *buf, size_t size)
{
    switch (r->code) {
    case GR_OK:
        snprintf(buf, size, "normal");
        break;
    case GR_ESHUTDOWN:
        if (r->detail != 0)
            snprintf(buf, size, "shutdown:%lld", (long long)r->detail);
        else
            snprintf(buf, size, "shutdown");
        break;
    case GR_EKILLED:
        snprintf(buf, size, "killed");
        break;
    case CODE_CRASH:
        snprintf(buf, size, "crash");
        break;
    default:
        snprintf(buf, size, "%s", gr_errname(r->code));
    }
    return buf;
}

/* The gr_config.event_fn: records each supervisor event (and ignores the
 * events of actors themselves). */
static inline void trace_event(void *arg, const gr_event *ev)
{
    (void)arg;
    if (ev->kind > GR_EV_GAVE_UP)
        return; /* An actor's own event, not a supervisor's. */
    char s[REC_LEN], why[32];
    const char *sup = ev->sup_name[0] != '\0' ? ev->sup_name : "?";
    const char *kind = gr_event_kind_name(ev->kind);
    switch (ev->kind) {
    case GR_EV_CHILD_STARTED:
        snprintf(s, sizeof s, "%s: %s %s", sup, kind, ev->child_id);
        break;
    case GR_EV_CHILD_RESTARTED:
        snprintf(s, sizeof s, "%s: %s %s r%u", sup, kind, ev->child_id,
                 ev->restarts);
        break;
    case GR_EV_GAVE_UP:
        snprintf(s, sizeof s, "%s: %s r%u", sup, kind, ev->restarts);
        break;
    default:
        snprintf(s, sizeof s, "%s: %s %s %s", sup, kind, ev->child_id,
                 reason_str(&ev->reason, why, sizeof why));
    }
    trace_add(REC_EVENT, ev->child, s);
}

/*
 * Waits until `want` strings follow mark among the records whose kind is in
 * mask, lets the system settle, and checks that exactly those follow, in
 * that order (want ends with NULL). On a mismatch says what differs and
 * dumps the trace. Returns 1 on a match.
 */
static inline int expect_seq_of(size_t mark, int mask, const char *const *want)
{
    size_t nwant = 0;
    while (want[nwant] != NULL)
        nwant++;
    double end = test_now() + TRACE_WAIT_S;
    size_t have = 0;
    for (int settled = 0;;) {
        have = trace_count(mark, mask);
        if (have >= nwant) {
            if (settled)
                break;
            /* Stay a moment, so that a record beyond the expected shows. */
            sleep_ms(SETTLE_MS);
            settled = 1;
            continue;
        }
        if (test_now() >= end)
            break;
        sleep_ms(1);
    }
    int ok = have == nwant;
    size_t k = 0, n = trace_len();
    for (size_t i = mark; ok && i < n; i++) {
        struct rec r = trace_at(i);
        if (!(r.what & mask))
            continue;
        if (strcmp(r.s, want[k]) != 0) {
            fprintf(stderr, "    record %zu is \"%s\", expected \"%s\"\n", k,
                    r.s, want[k]);
            ok = 0;
        }
        k++;
    }
    if (!ok) {
        fprintf(stderr, "    expected %zu records:\n", nwant);
        for (size_t i = 0; i < nwant; i++)
            fprintf(stderr, "      %s\n", want[i]);
        trace_dump(mark);
        pthread_mutex_lock(&trace_.lock);
        size_t lost = trace_.lost;
        pthread_mutex_unlock(&trace_.lock);
        if (lost)
            fprintf(stderr, "    (%zu records lost)\n", lost);
    }
    return ok;
}

/* Exactly these records (all kinds) follow mark. */
#define EXPECT_SEQ(mark, ...)                                                  \
    expect_seq_of((mark), REC_INIT | REC_TERM | REC_EVENT | REC_DOWN,          \
                  (const char *const[]){__VA_ARGS__, NULL})

/* Exactly these records of the kinds in mask follow mark. */
#define EXPECT_SEQ_OF(mark, mask, ...)                                         \
    expect_seq_of((mark), (mask), (const char *const[]){__VA_ARGS__, NULL})

/* Waits until a record equal to s appears after mark; returns its index,
 * or -1 (with a dump) if none does in time. */
static inline long trace_wait_for(size_t mark, const char *s)
{
    double end = test_now() + TRACE_WAIT_S;
    size_t i = mark;
    for (;;) {
        size_t n = trace_len();
        for (; i < n; i++)
            if (strcmp(trace_at(i).s, s) == 0)
                return (long)i;
        if (test_now() >= end) {
            fprintf(stderr, "    no record \"%s\" after %zu\n", s, mark);
            trace_dump(mark);
            return -1;
        }
        sleep_ms(1);
    }
}

/* Waits until each of want (NULL-terminated) appears after mark, and
 * checks that they appeared in that order (other records may come between).
 * Returns 1 if so; dumps the trace otherwise. */
static inline int in_order(size_t mark, const char *const *want)
{
    long prev = -1;
    for (size_t k = 0; want[k] != NULL; k++) {
        long at = trace_wait_for(mark, want[k]);
        if (at < 0)
            return 0;
        if (at < prev) {
            fprintf(stderr, "    \"%s\" came before \"%s\"\n", want[k],
                    want[k - 1]);
            trace_dump(mark);
            return 0;
        }
        prev = at;
    }
    return 1;
}

#define IN_ORDER(mark, ...)                                                    \
    in_order((mark), (const char *const[]){__VA_ARGS__, NULL})

/* The ref of the first record equal to s after mark (none: GR_REF_NONE). */
static inline gr_ref trace_ref(size_t mark, const char *s)
{
    size_t n = trace_len();
    for (size_t i = mark; i < n; i++) {
        struct rec r = trace_at(i);
        if (strcmp(r.s, s) == 0)
            return r.ref;
    }
    return GR_REF_NONE;
}

/* ---- the worker ---------------------------------------------------------- */

/* A worker's arg is its label, a NUL-terminated string (see WORKER). */
struct worker {
    char label[16];
};

static inline int worker_label(struct worker *w, const void *arg, size_t len)
{
    if (arg == NULL || len == 0 || len > sizeof w->label ||
        ((const char *)arg)[len - 1] != '\0')
        return GR_EINVAL;
    memcpy(w->label, arg, len);
    return GR_OK;
}

/* Reads the worker's label, records "<what> <label>" and returns rc. */
static inline int record_init(gr_ctx *ctx, void *state, const void *arg,
                              size_t len, const char *what, int rc)
{
    struct worker *w = state;
    int bad = worker_label(w, arg, len);
    if (bad != GR_OK)
        return bad;
    char s[REC_LEN];
    snprintf(s, sizeof s, "%s %s", what, w->label);
    trace_add(REC_INIT, gr_self(ctx), s);
    return rc;
}

static inline int worker_init(gr_ctx *ctx, void *state, const void *arg,
                              size_t len)
{
    return record_init(ctx, state, arg, len, "init", GR_OK);
}

static inline int worker_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    switch (m->type) {
    case MSG_CRASH:
        return CODE_CRASH;
    case MSG_NORMAL:
        return GR_STOP;
    case MSG_SHUTDOWN: {
        gr_reason why = {.code = GR_ESHUTDOWN};
        if (!read_payload(m, &why.detail, sizeof why.detail))
            return GR_CONTINUE;
        return gr_stop_with(ctx, &why);
    }
    case MSG_SHUTDOWN_RAW:
        return gr_stop_with(ctx, &(gr_reason){.code = GR_ESHUTDOWN});
    default:
        return GR_CONTINUE;
    }
}

static inline void worker_terminate(gr_ctx *ctx, void *state,
                                    const gr_reason *why)
{
    struct worker *w = state;
    char s[REC_LEN], r[32];
    snprintf(s, sizeof s, "term %s %s", w->label, reason_str(why, r, sizeof r));
    trace_add(REC_TERM, gr_self(ctx), s);
}

static const gr_behaviour worker_b = {
    .name = "sup_test_worker",
    .state_size = sizeof(struct worker),
    .init = worker_init,
    .handle = worker_handle,
    .terminate = worker_terminate,
};

/* A worker whose init records itself and fails with CODE_INIT_FAIL. */
static inline int failing_init(gr_ctx *ctx, void *state, const void *arg,
                               size_t len)
{
    return record_init(ctx, state, arg, len, "init_failed", CODE_INIT_FAIL);
}

static const gr_behaviour failing_b = {
    .name = "sup_test_failing",
    .state_size = sizeof(struct worker),
    .init = failing_init,
    .handle = worker_handle,
    .terminate = worker_terminate,
};

/* Inits of flaky workers that are still to fail (then they succeed). */
static atomic_int flaky_fails_;

/* A worker whose init fails as failing_b's does while flaky_fails_ is
 * positive (taking one off), and is a plain worker otherwise. */
static inline int flaky_init(gr_ctx *ctx, void *state, const void *arg,
                             size_t len)
{
    if (atomic_fetch_sub(&flaky_fails_, 1) > 0)
        return failing_init(ctx, state, arg, len);
    atomic_fetch_add(&flaky_fails_, 1);
    return worker_init(ctx, state, arg, len);
}

static const gr_behaviour flaky_b = {
    .name = "sup_test_flaky",
    .state_size = sizeof(struct worker),
    .init = flaky_init,
    .handle = worker_handle,
    .terminate = worker_terminate,
};

/* Child specs: a worker whose id and label are ID, with a restart type. */
#define WORKER(ID, RESTART)                                                    \
    {                                                                          \
        .id = ID, .behaviour = &worker_b, .arg = ID, .arg_len = sizeof(ID),    \
        .restart = RESTART                                                     \
    }

/* A worker whose init fails. */
#define FAILING(ID)                                                            \
    {                                                                          \
        .id = ID, .behaviour = &failing_b, .arg = ID, .arg_len = sizeof(ID),   \
        .restart = GR_PERMANENT                                                \
    }

/* A permanent child supervisor from SPEC (a static gr_sup_spec). */
#define SUPERVISOR(ID, SPEC)                                                   \
    {                                                                          \
        .id = ID, .behaviour = &gr_supervisor_behaviour, .arg = &(SPEC),       \
        .arg_len = sizeof(SPEC), .restart = GR_PERMANENT,                      \
        .type = GR_SUPERVISOR                                                  \
    }

/* A permanent flaky worker (see flaky_b). */
#define FLAKY(ID)                                                              \
    {                                                                          \
        .id = ID, .behaviour = &flaky_b, .arg = ID, .arg_len = sizeof(ID),     \
        .restart = GR_PERMANENT                                                \
    }

#define NKIDS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the watcher --------------------------------------------------------- */

/* Monitors target from its init; records its DOWN as "down LABEL reason". */
struct watch_arg {
    gr_ref target;
    char label[16];
};

static inline int watch_init(gr_ctx *ctx, void *state, const void *arg,
                             size_t len)
{
    struct watch_arg *w = state;
    int rc = read_arg(w, sizeof *w, arg, len);
    return rc != GR_OK ? rc : gr_monitor(ctx, w->target, NULL);
}

static inline int watch_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx;
    struct watch_arg *w = state;
    gr_down d;
    if (m->type != GR_MSG_DOWN || gr_down_read(m, &d) != GR_OK)
        return GR_CONTINUE;
    char s[REC_LEN], r[32];
    snprintf(s, sizeof s, "down %s %s", w->label,
             reason_str(&d.reason, r, sizeof r));
    trace_add(REC_DOWN, d.target, s);
    return GR_CONTINUE;
}

static const gr_behaviour watch_b = {
    .name = "sup_test_watch",
    .state_size = sizeof(struct watch_arg),
    .init = watch_init,
    .handle = watch_handle,
};

/* Spawns a watcher of target whose DOWN reads "down LABEL ...". */
static inline int watch(gr_system *sys, gr_ref target, const char *label)
{
    struct watch_arg a = {.target = target};
    snprintf(a.label, sizeof a.label, "%s", label);
    return gr_system_spawn(sys, &watch_b, &a, sizeof a, NULL);
}

/* ---- systems and children ------------------------------------------------ */

/* Starts a quiet system whose events go to the trace; resets the trace. */
static inline gr_system *sup_system(void)
{
    trace_reset();
    atomic_store(&flaky_fails_, 0);
    gr_config cfg = {.workers = 4,
                     .log_fn = quiet_log,
                     .no_signals = 1,
                     .event_fn = trace_event};
    return start_system(&cfg);
}

/* Shuts sys down, failing the case if that fails. */
static inline void sup_system_end(gr_system *sys)
{
    if (sys != NULL && gr_system_shutdown(sys) != GR_OK)
        test_failed_ = 1;
}

/* Most children a case asks about. */
#define KIDS_MAX 16

/* The supervisor's children, as which_children reports them. */
struct kids {
    int rc;
    size_t n;
    gr_child_info c[KIDS_MAX];
};

static inline struct kids kids_of(gr_system *sys, gr_ref sup)
{
    struct kids k = {0};
    k.rc =
        gr_supervisor_which_children(sys, sup, SUP_WAIT, k.c, KIDS_MAX, &k.n);
    return k;
}

/* The child with id, or NULL. */
static inline const gr_child_info *kid(const struct kids *k, const char *id)
{
    for (size_t i = 0; i < k->n && i < KIDS_MAX; i++)
        if (strcmp(k->c[i].id, id) == 0)
            return &k->c[i];
    return NULL;
}

/* The running child's ref by id (GR_REF_NONE if not running or absent). */
static inline gr_ref kid_ref(gr_system *sys, gr_ref sup, const char *id)
{
    struct kids k = kids_of(sys, sup);
    const gr_child_info *c = k.rc == GR_OK ? kid(&k, id) : NULL;
    return c != NULL ? c->ref : GR_REF_NONE;
}

/* Returns 1 if which_children lists exactly these ids, in this order
 * (ids ends with NULL); says what it got otherwise. */
static inline int kids_are(gr_system *sys, gr_ref sup, const char *const *ids)
{
    struct kids k = kids_of(sys, sup);
    size_t n = 0;
    while (ids[n] != NULL)
        n++;
    int ok = k.rc == GR_OK && k.n == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = strcmp(k.c[i].id, ids[i]) == 0;
    if (!ok) {
        fprintf(stderr,
                "    which_children: rc %s, %zu children:", gr_errname(k.rc),
                k.n);
        for (size_t i = 0; i < k.n && i < KIDS_MAX; i++)
            fprintf(stderr, " %s", k.c[i].id);
        fprintf(stderr, "\n");
    }
    return ok;
}

#define KIDS_ARE(sys, sup, ...)                                                \
    kids_are((sys), (sup), (const char *const[]){__VA_ARGS__, NULL})

/* Sends a worker message (no payload) from no sender. */
static inline int poke(gr_system *sys, gr_ref to, uint32_t type)
{
    return gr_system_tell(sys, GR_REF_NONE, to, type, NULL, 0);
}

/* Waits until every actor spawned has exited but `live`; returns 1 if so,
 * printing the counts otherwise. */
static inline int only_live(gr_system *sys, uint64_t live)
{
    double end = test_now() + TRACE_WAIT_S;
    gr_stats st;
    for (;;) {
        gr_system_stats(sys, &st);
        if (st.spawned == st.exited + live || test_now() >= end)
            break;
        sleep_ms(1);
    }
    if (st.spawned != st.exited + live)
        fprintf(stderr, "    spawned %llu, exited %llu, expected %llu live\n",
                (unsigned long long)st.spawned, (unsigned long long)st.exited,
                (unsigned long long)live);
    return st.spawned == st.exited + live;
}

#endif
