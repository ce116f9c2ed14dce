/*
 * Supervisor API tests, against the OTP supervisor documentation: shutdown
 * specs (brutal, timeout then kill, infinity, the worker default), the
 * runtime API (start/terminate/restart/delete/which/count, the *_async
 * forms, wrong thread, dead supervisor), simple-one-for-one, spec
 * validation, restart backoff, failed restarts (OTP's try_again), the
 * restart log (text and JSON, and the formatters' truncation) and a long
 * restart storm that must leave memory and the actor count flat.
 * Public API only.
 */
#include <grove/grove.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "helpers.h"

/* Whether this file is built with AddressSanitizer: freed memory then sits
 * in a quarantine (hundreds of MiB), so RSS measures the quarantine rather
 * than leaks, and the storm test reads the allocator's count instead. */
#if defined(__SANITIZE_ADDRESS__)
#define SUP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SUP_ASAN 1
#endif
#endif
#ifdef SUP_ASAN
/* From the sanitizer runtime (<sanitizer/allocator_interface.h>, which not
 * every compiler ships): heap bytes allocated and not yet freed. */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

/* The code a kid's init fails with when its shared counter says so. */
#define INIT_FAIL_CODE GR_ESYS

/* How long a test waits to see that something does NOT happen. */
#define QUIET_MS 100

/* How long the default-shutdown test lets a trapping child linger after its
 * EXIT: past any plausible small default, far below 5000 ms. */
#define LINGER_MS 200

/* ---- messages and reports ------------------------------------------------ */

enum {
    /* To a kid. */
    KID_QUIT = 1, /* Exit with reason shutdown. */
    KID_CRASH,    /* gr_fail(): crash with GR_EFAILED and a text. */
    KID_STOP,     /* Exit with reason normal. */
    KID_PING,     /* Reply REP_PONG. */
    /* To a client. */
    CL_START = 20, /* struct cl_cmd: start_child_async. */
    CL_SPAWN,      /* struct cl_cmd: spawn_child_async. */
    CL_TERMINATE,  /* struct cl_cmd: terminate_child_async. */
    CL_PROBE,      /* struct cl_cmd: the blocking calls, from a handler. */
    CL_MONITOR,    /* struct cl_cmd: monitors cmd.sup. */
    /* Reports to the test's inbox. */
    REP_INIT = 100, /* A kid's init ran. */
    REP_TERM,       /* A kid's terminate ran; code: its reason. */
    REP_EXIT,       /* A trapping kid got an EXIT; code, from. */
    REP_PONG,       /* A kid answered KID_PING. */
    REP_SENT,       /* A client sent an async request; rc. */
    REP_REPLY,      /* A client got a GR_MSG_SUP_REPLY. */
    REP_PROBE,      /* A client's blocking calls: rcs. */
    REP_MONITORED,  /* A client monitored; rc. */
    REP_DOWN,       /* A client got a DOWN; from: target, code. */
};

/* Everything a kid or a client reports; each report fills what it needs. */
struct rep {
    gr_ref self;
    gr_ref from;  /* REP_EXIT, REP_REPLY, REP_DOWN. */
    gr_ref child; /* REP_REPLY. */
    uint64_t corr;
    int32_t tag;
    int32_t code;    /* REP_TERM, REP_EXIT, REP_DOWN: the reason's code;
                        REP_REPLY: 1 for a GR_MSG_SUP_REPLY, 0 otherwise. */
    int32_t rc;      /* REP_SENT, REP_REPLY, REP_MONITORED. */
    int32_t read_rc; /* REP_SENT: gr_sup_reply_read on a non-reply. */
    int32_t nrcs;
    int32_t rcs[8]; /* REP_PROBE. */
    char why[160];  /* REP_TERM: gr_reason_format of the reason. */
};

/* ---- the kid: a child that reports what happens to it -------------------- */

/* How a kid treats exit signals. */
enum {
    TRAP_NONE = 0, /* Does not trap: a shutdown signal ends it. */
    TRAP_IGNORE,   /* Traps, reports the EXIT, carries on. */
    TRAP_OBEY      /* Traps, reports the EXIT, exits with its reason. */
};

/* What a kid reports. */
#define R_INIT 1
#define R_TERM 2
#define R_EXIT 4
#define R_ALL  (R_INIT | R_TERM | R_EXIT)

/* Counters shared by every incarnation of a kid. */
struct shared {
    atomic_int inits;     /* init calls, failed ones included. */
    atomic_int fail_left; /* init fails while this is > 0, counting down. */
    atomic_int terms;     /* terminate calls. */
};

/* A kid's argument (copied by the supervisor). */
struct kid_arg {
    gr_ref inbox;
    struct shared *sh; /* May be NULL. */
    int32_t tag;
    int32_t trap;    /* TRAP_* */
    int32_t reports; /* R_* bits. */
    int32_t pad;
};

struct kid {
    struct kid_arg a;
};

static void kid_report(gr_ctx *ctx, const struct kid *k, uint32_t type,
                       struct rep *r)
{
    r->self = gr_self(ctx);
    r->tag = k->a.tag;
    (void)gr_tell(ctx, k->a.inbox, type, r, sizeof *r);
}

static int kid_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    struct kid *k = state;
    int rc = read_arg(&k->a, sizeof k->a, arg, len);
    if (rc != GR_OK)
        return rc;
    if (k->a.sh != NULL) {
        atomic_fetch_add(&k->a.sh->inits, 1);
        if (atomic_load(&k->a.sh->fail_left) > 0) {
            atomic_fetch_sub(&k->a.sh->fail_left, 1);
            return INIT_FAIL_CODE;
        }
    }
    if (k->a.trap != TRAP_NONE && gr_trap_exit(ctx, 1) < 0)
        return GR_ENOMEM;
    if (k->a.reports & R_INIT) {
        struct rep r = {0};
        kid_report(ctx, k, REP_INIT, &r);
    }
    return GR_OK;
}

static int kid_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct kid *k = state;
    struct rep r = {0};
    switch (m->type) {
    case GR_MSG_EXIT: {
        gr_exit_msg x;
        if (gr_exit_read(m, &x) != GR_OK)
            return GR_EINVAL;
        if (k->a.reports & R_EXIT) {
            r.code = x.reason.code;
            r.from = x.from;
            kid_report(ctx, k, REP_EXIT, &r);
        }
        if (k->a.trap == TRAP_OBEY)
            return gr_stop_with(ctx, &x.reason);
        return GR_CONTINUE;
    }
    case KID_QUIT:
        return gr_stop_with(ctx, &(gr_reason){.code = GR_ESHUTDOWN});
    case KID_CRASH:
        gr_fail(ctx, "kid \"%d\" \\ boom", (int)k->a.tag);
    case KID_STOP:
        return GR_STOP;
    case KID_PING:
        kid_report(ctx, k, REP_PONG, &r);
        return GR_CONTINUE;
    default:
        return GR_CONTINUE;
    }
}

static void kid_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    struct kid *k = state;
    if (k->a.sh != NULL)
        atomic_fetch_add(&k->a.sh->terms, 1);
    if (k->a.reports & R_TERM) {
        struct rep r = {.code = why->code};
        gr_reason_format(why, r.why, sizeof r.why);
        kid_report(ctx, k, REP_TERM, &r);
    }
}

static const gr_behaviour kid_b = {
    .name = "kid",
    .state_size = sizeof(struct kid),
    .init = kid_init,
    .handle = kid_handle,
    .terminate = kid_terminate,
};

/* A behaviour without a handle: invalid in any spec. */
static const gr_behaviour no_handle_b = {.name = "no_handle"};

/* ---- the client: an actor that uses the API from callbacks --------------- */

/* A client command. */
struct cl_cmd {
    gr_ref sup;
    gr_ref child;        /* CL_TERMINATE by reference (id NULL). */
    uint64_t corr;       /* The test's tag for the request and its answer. */
    const char *id;      /* CL_TERMINATE, CL_PROBE. */
    gr_child_spec spec;  /* CL_START, CL_PROBE (its arg must stay valid). */
    struct kid_arg karg; /* CL_SPAWN. */
};

/* A client's argument: where to report, and a supervisor its init probes
 * (GR_REF_NONE: none). */
struct cl_arg {
    gr_ref inbox;
    gr_ref probe_sup;
};

/* How many requests a client remembers: the runtime's corr of each, and
 * the test's tag for it. */
#define CL_PENDING 16

struct client {
    gr_ref inbox;
    uint64_t corr[CL_PENDING], tag[CL_PENDING];
    unsigned next;
};

/* Calls every blocking supervisor function on sup; stores their codes. */
static void probe_blocking(gr_system *sys, gr_ref sup, const char *id,
                           const gr_child_spec *spec, struct rep *r)
{
    gr_child_info info[4];
    gr_child_counts counts;
    size_t n = 0;
    gr_ref out;
    r->nrcs = 7;
    r->rcs[0] = gr_supervisor_start_child(sys, sup, spec, &out);
    r->rcs[1] = gr_supervisor_spawn_child(sys, sup, NULL, 0, &out);
    r->rcs[2] = gr_supervisor_terminate_child(sys, sup, id, GR_REF_NONE);
    r->rcs[3] = gr_supervisor_restart_child(sys, sup, id, &out);
    r->rcs[4] = gr_supervisor_delete_child(sys, sup, id);
    r->rcs[5] = gr_supervisor_which_children(sys, sup, info, 4, &n);
    r->rcs[6] = gr_supervisor_count_children(sys, sup, &counts);
}

static int client_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    struct client *c = state;
    struct cl_arg a;
    int rc = read_arg(&a, sizeof a, arg, len);
    if (rc != GR_OK)
        return rc;
    c->inbox = a.inbox;
    if (!gr_ref_is_none(a.probe_sup)) {
        /* A spec that would be valid anywhere else. */
        static const struct kid_arg none;
        gr_child_spec spec = {.id = "from_init",
                              .behaviour = &kid_b,
                              .arg = &none,
                              .arg_len = sizeof none};
        struct rep r = {.self = gr_self(ctx)};
        probe_blocking(gr_ctx_system(ctx), a.probe_sup, "a", &spec, &r);
        (void)gr_tell(ctx, c->inbox, REP_PROBE, &r, sizeof r);
    }
    return GR_OK;
}

static int client_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct client *c = state;
    struct rep r = {.self = gr_self(ctx)};
    struct cl_cmd cmd;
    if (m->flags & GR_MSG_REPLY) { /* The answer to one of our requests. */
        gr_sup_reply reply = {0};
        r.read_rc = gr_sup_reply_read(m, &reply);
        r.rc = reply.rc;
        r.child = reply.child;
        r.corr = m->corr;
        r.code = (int32_t)m->type == (int32_t)GR_MSG_SUP_REPLY;
        for (unsigned i = 0; i < CL_PENDING; i++)
            if (c->corr[i] == m->corr)
                r.tag = (int32_t)c->tag[i];
        r.from = m->from;
        (void)gr_tell(ctx, c->inbox, REP_REPLY, &r, sizeof r);
        return GR_CONTINUE;
    }
    if (m->type == GR_MSG_DOWN) {
        gr_down d;
        r.read_rc = gr_down_read(m, &d);
        r.from = d.target;
        r.code = d.reason.code;
        (void)gr_tell(ctx, c->inbox, REP_DOWN, &r, sizeof r);
        return GR_CONTINUE;
    }
    if (!read_payload(m, &cmd, sizeof cmd))
        return GR_CONTINUE;
    r.tag = (int32_t)cmd.corr;
    uint64_t corr = 0;
    switch (m->type) {
    case CL_START:
        r.rc = gr_supervisor_start_child_async(ctx, cmd.sup, &cmd.spec,
                                               GR_DURATION_DEFAULT, &corr);
        break;
    case CL_SPAWN:
        r.rc = gr_supervisor_spawn_child_async(ctx, cmd.sup, &cmd.karg,
                                               sizeof cmd.karg,
                                               GR_DURATION_DEFAULT, &corr);
        break;
    case CL_TERMINATE:
        r.rc = gr_supervisor_terminate_child_async(
            ctx, cmd.sup, cmd.id, cmd.child, GR_DURATION_DEFAULT, &corr);
        break;
    case CL_PROBE:
        probe_blocking(gr_ctx_system(ctx), cmd.sup, cmd.id, &cmd.spec, &r);
        (void)gr_tell(ctx, c->inbox, REP_PROBE, &r, sizeof r);
        return GR_CONTINUE;
    case CL_MONITOR: {
        uint64_t id;
        r.rc = gr_monitor(ctx, cmd.sup, &id);
        (void)gr_tell(ctx, c->inbox, REP_MONITORED, &r, sizeof r);
        return GR_CONTINUE;
    }
    default:
        return GR_CONTINUE;
    }
    /* Remember the runtime's corr for the test's tag. */
    r.corr = corr;
    c->corr[c->next] = corr;
    c->tag[c->next] = cmd.corr;
    c->next = (c->next + 1) % CL_PENDING;
    /* A command is not a reply: gr_sup_reply_read must refuse it. */
    gr_sup_reply junk;
    r.read_rc = gr_sup_reply_read(m, &junk);
    (void)gr_tell(ctx, c->inbox, REP_SENT, &r, sizeof r);
    return GR_CONTINUE;
}

static const gr_behaviour client_b = {
    .name = "client",
    .state_size = sizeof(struct client),
    .init = client_init,
    .handle = client_handle,
};

/* ---- the event recorder -------------------------------------------------- */

#define EV_MAX 512

/* One recorded event. */
struct evrec {
    gr_event_kind kind;
    gr_ref sup, child;
    char child_id[GR_NAME_MAX + 1];
    int32_t code;
    unsigned restarts;
    double t; /* test_now() when it arrived. */
};

static struct {
    pthread_mutex_t lock;
    unsigned n; /* All events seen; the first EV_MAX are kept. */
    struct evrec ev[EV_MAX];
} evl = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void ev_reset(void)
{
    pthread_mutex_lock(&evl.lock);
    evl.n = 0;
    pthread_mutex_unlock(&evl.lock);
}

/* The event_fn: records a supervisor event (not actors' own events). */
static void ev_fn(void *arg, const gr_event *ev)
{
    (void)arg;
    if (ev->kind > GR_EV_GAVE_UP)
        return;
    double t = test_now();
    pthread_mutex_lock(&evl.lock);
    if (evl.n < EV_MAX) {
        struct evrec *r = &evl.ev[evl.n];
        r->kind = ev->kind;
        r->sup = ev->supervisor;
        r->child = ev->child;
        snprintf(r->child_id, sizeof r->child_id, "%s",
                 ev->child_id ? ev->child_id : "");
        r->code = ev->reason.code;
        r->restarts = ev->restarts;
        r->t = t;
    }
    evl.n++;
    pthread_mutex_unlock(&evl.lock);
}

/* Finds the k-th (from 0) recorded event of kind for child id (NULL: any);
 * returns 1 and copies it, or 0. */
static int ev_nth(gr_event_kind kind, const char *id, unsigned k,
                  struct evrec *out)
{
    int found = 0;
    pthread_mutex_lock(&evl.lock);
    for (unsigned i = 0; i < evl.n && i < EV_MAX; i++) {
        const struct evrec *r = &evl.ev[i];
        if (r->kind != kind || (id != NULL && strcmp(r->child_id, id) != 0))
            continue;
        if (k-- == 0) {
            *out = *r;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&evl.lock);
    return found;
}

/* Counts recorded events of kind for child id (NULL: any). */
static unsigned ev_count(gr_event_kind kind, const char *id)
{
    unsigned k = 0;
    pthread_mutex_lock(&evl.lock);
    for (unsigned i = 0; i < evl.n && i < EV_MAX; i++)
        if (evl.ev[i].kind == kind &&
            (id == NULL || strcmp(evl.ev[i].child_id, id) == 0))
            k++;
    pthread_mutex_unlock(&evl.lock);
    return k;
}

/* Waits up to WAIT_MS until want events of kind for id are recorded;
 * returns the count then. */
static unsigned ev_wait(gr_event_kind kind, const char *id, unsigned want)
{
    double end = test_now() + WAIT_MS / 1000.0;
    unsigned n;
    while ((n = ev_count(kind, id)) < want && test_now() < end)
        sleep_us(200);
    return n;
}

/* ---- the test's environment: a system, an inbox, a report queue ---------- */

#define Q_MAX 1024

static struct {
    gr_system *sys;
    gr_inbox *in;
    gr_ref me;
    size_t nq; /* Reports received but not yet taken. */
    uint32_t qt[Q_MAX];
    struct rep qr[Q_MAX];
} T;

/* Opens a system from cfg and an inbox for the reports. */
static int open_cfg(gr_config *cfg)
{
    T.nq = 0;
    T.sys = start_system(cfg);
    if (T.sys == NULL)
        return 0;
    if (gr_inbox_open(T.sys, &T.in) != GR_OK) {
        gr_system_shutdown(T.sys);
        return 0;
    }
    T.me = gr_inbox_ref(T.in);
    return 1;
}

/* Opens a quiet two-worker system; with_events records events. */
static int open_env(int with_events)
{
    gr_config cfg = {.workers = 2, .log_fn = quiet_log, .no_signals = 1};
    if (with_events) {
        ev_reset();
        cfg.event_fn = ev_fn;
    }
    return open_cfg(&cfg);
}

/* Closes the inbox and shuts the system down. */
static void close_env(void)
{
    gr_inbox_close(T.in);
    if (T.sys != NULL && gr_system_shutdown(T.sys) != GR_OK)
        test_failed_ = 1;
    T.sys = NULL;
    T.in = NULL;
}

#define ANY_TAG INT32_MIN

static int q_match(size_t i, uint32_t type, int32_t tag, gr_ref who)
{
    return T.qt[i] == type && (tag == ANY_TAG || T.qr[i].tag == tag) &&
           (gr_ref_is_none(who) || gr_ref_eq(T.qr[i].self, who));
}

/* Takes the first report of type (from tag, unless ANY_TAG; from who,
 * unless GR_REF_NONE), waiting up to ms for it; others are kept for later.
 * Returns 1 with it in *out, or 0. */
static int take_x(uint32_t type, int32_t tag, gr_ref who, struct rep *out,
                  int ms)
{
    double end = test_now() + ms / 1000.0;
    for (;;) {
        for (size_t i = 0; i < T.nq; i++) {
            if (!q_match(i, type, tag, who))
                continue;
            if (out != NULL)
                *out = T.qr[i];
            memmove(&T.qt[i], &T.qt[i + 1], (T.nq - i - 1) * sizeof T.qt[0]);
            memmove(&T.qr[i], &T.qr[i + 1], (T.nq - i - 1) * sizeof T.qr[0]);
            T.nq--;
            return 1;
        }
        double left = end - test_now();
        gr_msg *m;
        if (gr_inbox_recv(T.in, &m, left > 0 ? (int)(left * 1000) + 1 : 0) !=
            GR_OK)
            return 0;
        if (T.nq == Q_MAX) {
            fprintf(stderr, "  report queue full; dropping the oldest\n");
            memmove(&T.qt[0], &T.qt[1], (Q_MAX - 1) * sizeof T.qt[0]);
            memmove(&T.qr[0], &T.qr[1], (Q_MAX - 1) * sizeof T.qr[0]);
            T.nq--;
        }
        T.qt[T.nq] = m->type;
        if (!read_payload(m, &T.qr[T.nq], sizeof T.qr[0]))
            memset(&T.qr[T.nq], 0, sizeof T.qr[0]);
        T.nq++;
        gr_msg_free(m);
    }
}

/* Takes a report of type from tag (or ANY_TAG) within WAIT_MS. */
static int take(uint32_t type, int32_t tag, struct rep *out)
{
    int ok = take_x(type, tag, GR_REF_NONE, out, WAIT_MS);
    if (!ok)
        fprintf(stderr, "  no report of type %u (tag %d) came\n",
                (unsigned)type, (int)tag);
    return ok;
}

/* Returns 1 if no report of type from tag arrives within ms. */
static int none_within(uint32_t type, int32_t tag, int ms)
{
    struct rep r;
    if (!take_x(type, tag, GR_REF_NONE, &r, ms))
        return 1;
    fprintf(stderr, "  unexpected report of type %u (tag %d)\n", (unsigned)type,
            (int)r.tag);
    return 0;
}

/* Sends a command to an actor from the test's inbox. */
static int cmd(gr_ref to, uint32_t type, const void *p, size_t len)
{
    return gr_send(T.sys, T.me, to, type, p, len);
}

/* Actors alive now (inboxes included). */
static int64_t live(void)
{
    gr_stats st = stats_of(T.sys);
    return (int64_t)(st.spawned - st.exited);
}

/* Waits up to WAIT_MS for live() to reach want; returns the last value. */
static int64_t wait_live(int64_t want)
{
    double end = test_now() + WAIT_MS / 1000.0;
    int64_t n;
    while ((n = live()) != want && test_now() < end)
        sleep_ms(1);
    return n;
}

/* ---- specs ----------------------------------------------------------------
 */

static struct kid_arg kid_arg(int32_t tag, int32_t trap, int32_t reports,
                              struct shared *sh)
{
    return (struct kid_arg){
        .inbox = T.me, .sh = sh, .tag = tag, .trap = trap, .reports = reports};
}

static gr_child_spec kid_spec(const char *id, const struct kid_arg *a,
                              gr_restart restart, int32_t shutdown_ms)
{
    return (gr_child_spec){.id = id,
                           .behaviour = &kid_b,
                           .arg = a,
                           .arg_len = sizeof *a,
                           .restart = restart,
                           .shutdown_ms = shutdown_ms,
                           .type = GR_WORKER};
}

static gr_sup_spec sup_spec(gr_strategy strategy, uint32_t intensity,
                            const gr_child_spec *kids, size_t n)
{
    return (gr_sup_spec){.strategy = strategy,
                         .intensity = intensity,
                         .period_ms = 60000,
                         .children = kids,
                         .nchildren = n};
}

/* An empty one-for-one supervisor, for a child of type supervisor. */
static const gr_sup_spec empty_sup = {.strategy = GR_ONE_FOR_ONE,
                                      .intensity = 1};

/* ---- supervisor queries ---------------------------------------------------
 */

#define WHICH_MAX 16

/* which_children into out (WHICH_MAX entries); returns the total, or the
 * (negative) error. */
static long which(gr_ref sup, gr_child_info *out)
{
    size_t n = 0;
    int rc = gr_supervisor_which_children(T.sys, sup, out, WHICH_MAX, &n);
    return rc != GR_OK ? rc : (long)n;
}

/* Finds child id among sup's children; returns 1 with it in *out. */
static int child_of(gr_ref sup, const char *id, gr_child_info *out)
{
    gr_child_info v[WHICH_MAX];
    long n = which(sup, v);
    for (long i = 0; i < n && i < WHICH_MAX; i++)
        if (strcmp(v[i].id, id) == 0) {
            *out = v[i];
            return 1;
        }
    return 0;
}

/* Returns sup's spec count, or the (negative) error. */
static long nspecs(gr_ref sup)
{
    gr_child_counts c;
    int rc = gr_supervisor_count_children(T.sys, sup, &c);
    return rc != GR_OK ? rc : (long)c.specs;
}

/* Waits up to WAIT_MS for sup's spec count to be want. */
static long wait_specs(gr_ref sup, long want)
{
    double end = test_now() + WAIT_MS / 1000.0;
    long n;
    while ((n = nspecs(sup)) != want && test_now() < end)
        sleep_ms(1);
    return n;
}

/* Waits up to WAIT_MS for sup to be gone (its calls answer GR_ENOACTOR). */
static int wait_gone(gr_ref sup)
{
    double end = test_now() + WAIT_MS / 1000.0;
    while (nspecs(sup) != GR_ENOACTOR) {
        if (test_now() >= end)
            return 0;
        sleep_ms(1);
    }
    return 1;
}

/* Sends sup a shutdown exit signal, as its parent would. */
static int stop_sup(gr_ref sup)
{
    gr_reason why = {.code = GR_ESHUTDOWN};
    return gr_system_exit(T.sys, sup, &why);
}

/* A terminate_child call on a helper thread. */
struct term_call {
    gr_system *sys;
    gr_ref sup;
    const char *id;
    struct shared *sh;
    pthread_t th;
    atomic_int done;
    int rc;
    int terms_at_return; /* sh->terms when the call returned. */
};

static void *term_thread(void *p)
{
    struct term_call *t = p;
    t->rc = gr_supervisor_terminate_child(t->sys, t->sup, t->id, GR_REF_NONE);
    t->terms_at_return = atomic_load(&t->sh->terms);
    atomic_store(&t->done, 1);
    return NULL;
}

/* Waits up to ms for the helper thread to return; joins it if it did. */
static int term_wait(struct term_call *t, int ms)
{
    double end = test_now() + ms / 1000.0;
    while (!atomic_load(&t->done) && test_now() < end)
        sleep_ms(1);
    if (!atomic_load(&t->done))
        return 0;
    pthread_join(t->th, NULL);
    return 1;
}

/* ---- shutdown specs --------------------------------------------------------
 */

/* GR_SHUTDOWN_BRUTAL kills at once: terminate sees killed, even in a child
 * that traps exits, and no EXIT message reaches it. */
static void test_shutdown_brutal(void)
{
    CHECK(open_env(0));
    struct kid_arg a1 = kid_arg(1, TRAP_IGNORE, R_ALL, NULL);
    struct kid_arg a2 = kid_arg(2, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {
        kid_spec("trapper", &a1, GR_PERMANENT, GR_SHUTDOWN_BRUTAL),
        kid_spec("plain", &a2, GR_PERMANENT, GR_SHUTDOWN_BRUTAL)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 2);
    gr_ref sup;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL) && take(REP_INIT, 2, NULL));

    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "trapper", GR_REF_NONE),
             GR_OK);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_EKILLED);
    CHECK(none_within(REP_EXIT, 1, 0));

    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "plain", GR_REF_NONE),
             GR_OK);
    CHECK(take(REP_TERM, 2, &r));
    CHECK_EQ(r.code, GR_EKILLED);

    /* The supervisor's own ordered shutdown uses the same spec. */
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "trapper", NULL), GR_OK);
    CHECK(take(REP_INIT, 1, NULL));
    CHECK_EQ(stop_sup(sup), GR_OK);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_EKILLED);
    CHECK(none_within(REP_EXIT, 1, 0));
    CHECK(wait_gone(sup));
    close_env();
}

/* A timeout: shutdown signal, then kill when the child has not exited in
 * shutdown_ms. A trapping child that ignores its EXIT is killed. */
static void test_shutdown_timeout_kills(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_IGNORE, R_ALL, &sh);
    gr_child_spec kids[] = {kid_spec("stubborn", &a, GR_PERMANENT, 50)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 1);
    gr_ref sup;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL));
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "stubborn", GR_REF_NONE),
             GR_OK);
    /* The EXIT came first, with reason shutdown, from the supervisor. */
    CHECK(take(REP_EXIT, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK(gr_ref_eq(r.from, sup));
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_EKILLED);
    /* Terminated, so not restarted. */
    CHECK(none_within(REP_INIT, 1, QUIET_MS));
    CHECK_EQ(atomic_load(&sh.inits), 1);
    close_env();
}

/* A cooperative child exits with shutdown before its timeout: a trapping
 * one that obeys its EXIT, and one that does not trap at all. */
static void test_shutdown_cooperative(void)
{
    CHECK(open_env(0));
    struct kid_arg a1 = kid_arg(1, TRAP_OBEY, R_ALL, NULL);
    struct kid_arg a2 = kid_arg(2, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("obeys", &a1, GR_PERMANENT, 50),
                            kid_spec("plain", &a2, GR_PERMANENT, 50)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 2);
    gr_ref sup;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL) && take(REP_INIT, 2, NULL));

    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "obeys", GR_REF_NONE),
             GR_OK);
    CHECK(take(REP_EXIT, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);

    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "plain", GR_REF_NONE),
             GR_OK);
    CHECK(take(REP_TERM, 2, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK(none_within(REP_EXIT, 2, 0));
    close_env();
}

/* GR_SHUTDOWN_INFINITY waits as long as the child takes: terminate_child
 * returns only after the child has exited on its own. */
static void test_shutdown_infinity(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_IGNORE, R_ALL, &sh);
    gr_child_spec kids[] = {
        kid_spec("patient", &a, GR_PERMANENT, GR_SHUTDOWN_INFINITY)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 1);
    gr_ref sup;
    struct rep r, init;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &init));

    struct term_call t = {.sys = T.sys, .sup = sup, .id = "patient", .sh = &sh};
    CHECK_EQ(pthread_create(&t.th, NULL, term_thread, &t), 0);
    CHECK(take(REP_EXIT, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    /* Well past any timeout a finite default would use for a test: the
     * child is alive (it answers) and the call is still waiting. */
    sleep_ms(LINGER_MS);
    CHECK_EQ(cmd(init.self, KID_PING, NULL, 0), GR_OK);
    CHECK(take(REP_PONG, 1, NULL));
    CHECK(!atomic_load(&t.done));
    CHECK_EQ(atomic_load(&sh.terms), 0);

    CHECK_EQ(cmd(init.self, KID_QUIT, NULL, 0), GR_OK);
    if (!term_wait(&t, WAIT_MS)) {
        /* The helper is stuck in the call: leave the system behind. */
        fprintf(stderr, "  terminate_child did not return\n");
        test_failed_ = 1;
        return;
    }
    CHECK_EQ(t.rc, GR_OK);
    CHECK_EQ(t.terms_at_return, 1);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    close_env();
}

/* shutdown_ms GR_SHUTDOWN_DEFAULT is 5000 ms for a worker (OTP): a trapping
 * child that exits LINGER_MS after its EXIT is not killed. */
static void test_shutdown_default_worker(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_IGNORE, R_ALL, &sh);
    gr_child_spec kids[] = {
        kid_spec("slow", &a, GR_PERMANENT, GR_SHUTDOWN_DEFAULT)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 1);
    gr_ref sup;
    struct rep r, init;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &init));

    struct term_call t = {.sys = T.sys, .sup = sup, .id = "slow", .sh = &sh};
    CHECK_EQ(pthread_create(&t.th, NULL, term_thread, &t), 0);
    CHECK(take(REP_EXIT, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    sleep_ms(LINGER_MS);
    CHECK_EQ(cmd(init.self, KID_PING, NULL, 0), GR_OK);
    CHECK(take(REP_PONG, 1, NULL));
    CHECK(!atomic_load(&t.done));
    CHECK_EQ(cmd(init.self, KID_QUIT, NULL, 0), GR_OK);
    if (!term_wait(&t, WAIT_MS)) {
        fprintf(stderr, "  terminate_child did not return\n");
        test_failed_ = 1;
        return;
    }
    CHECK_EQ(t.rc, GR_OK);
    CHECK_EQ(t.terms_at_return, 1);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN); /* Not GR_EKILLED. */
    close_env();
}

/* ---- runtime API ----------------------------------------------------------
 */

/* start_child adds a child at the end and starts it; a taken id is
 * GR_EEXIST (running or not); an init failure returns its error and keeps
 * no spec; a simple-one-for-one supervisor refuses it. */
static void test_start_child(void)
{
    CHECK(open_env(0));
    struct shared sh1 = {0}, sh2 = {0};
    struct kid_arg a1 = kid_arg(1, TRAP_NONE, R_ALL, &sh1);
    struct kid_arg a2 = kid_arg(2, TRAP_NONE, R_ALL, &sh2);
    gr_child_spec k1 = kid_spec("a", &a1, GR_PERMANENT, 1000);
    gr_child_spec k2 = kid_spec("b", &a2, GR_PERMANENT, 1000);
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    gr_ref sup, ref = GR_REF_NONE, ref2 = GR_REF_NONE;
    gr_child_info info;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK_EQ(nspecs(sup), 0);

    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &k1, &ref), GR_OK);
    CHECK(!gr_ref_is_none(ref));
    CHECK(take(REP_INIT, 1, &r));
    CHECK(gr_ref_eq(r.self, ref));
    CHECK(child_of(sup, "a", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    CHECK(gr_ref_eq(info.ref, ref));

    /* Duplicate id, running: refused, nothing started. */
    ref2 = GR_REF_NONE;
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &k1, &ref2), GR_EEXIST);
    CHECK_EQ(atomic_load(&sh1.inits), 1);
    CHECK_EQ(nspecs(sup), 1);
    /* Duplicate id, stopped (the spec is kept): refused too. */
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "a", GR_REF_NONE),
             GR_OK);
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &k1, NULL), GR_EEXIST);
    CHECK_EQ(atomic_load(&sh1.inits), 1);

    /* Init fails: its error comes back and the spec is not kept. */
    atomic_store(&sh2.fail_left, 1);
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &k2, &ref2), INIT_FAIL_CODE);
    CHECK_EQ(atomic_load(&sh2.inits), 1);
    CHECK_EQ(nspecs(sup), 1);
    CHECK(!child_of(sup, "b", &info));
    /* So the id is free: the same spec starts now. */
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &k2, &ref2), GR_OK);
    CHECK(take(REP_INIT, 2, &r));
    CHECK(gr_ref_eq(r.self, ref2));
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 2);
    CHECK(strcmp(v[0].id, "a") == 0 && strcmp(v[1].id, "b") == 0);

    /* Simple-one-for-one takes no static children. */
    gr_child_spec tmpl = kid_spec("t", &a1, GR_PERMANENT, 1000);
    gr_sup_spec ssp = sup_spec(GR_SIMPLE_ONE_FOR_ONE, 1, &tmpl, 1);
    gr_ref ssup;
    CHECK_EQ(gr_supervisor_start(T.sys, &ssp, &ssup), GR_OK);
    CHECK_EQ(gr_supervisor_start_child(T.sys, ssup, &k1, NULL), GR_EINVAL);
    CHECK_EQ(nspecs(ssup), 0);
    close_env();
}

/* terminate_child stops the child by its spec, keeps the spec (state
 * STOPPED, no ref) and does not restart it, even when permanent. */
static void test_terminate_child(void)
{
    CHECK(open_env(1));
    struct shared sh = {0};
    struct kid_arg a1 = kid_arg(1, TRAP_NONE, R_ALL, &sh);
    struct kid_arg a2 = kid_arg(2, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("p", &a1, GR_PERMANENT, 1000),
                            kid_spec("q", &a2, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 5, kids, 2);
    gr_ref sup;
    gr_child_info info;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL) && take(REP_INIT, 2, NULL));
    uint64_t restarts0 = stats_of(T.sys).restarts;

    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "p", GR_REF_NONE),
             GR_OK);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK(none_within(REP_INIT, 1, QUIET_MS));
    CHECK_EQ(atomic_load(&sh.inits), 1);
    CHECK(child_of(sup, "p", &info));
    CHECK_EQ(info.state, GR_CHILD_STOPPED);
    CHECK(gr_ref_is_none(info.ref));
    CHECK(child_of(sup, "q", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    gr_child_counts c;
    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, &c), GR_OK);
    CHECK_EQ(c.specs, 2);
    CHECK_EQ(c.active, 1);
    CHECK_EQ(stats_of(T.sys).restarts, restarts0);
    CHECK_EQ(ev_count(GR_EV_CHILD_RESTARTED, NULL), 0);
    CHECK_EQ(ev_wait(GR_EV_CHILD_EXITED, "p", 1), 1);

    /* Again on a stopped child: ok (OTP), nothing changes. */
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "p", GR_REF_NONE),
             GR_OK);
    CHECK(child_of(sup, "p", &info));
    CHECK_EQ(info.state, GR_CHILD_STOPPED);
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "nope", GR_REF_NONE),
             GR_ENOTFOUND);
    close_env();
}

/* terminate_child on a temporary child removes its spec (OTP). */
static void test_terminate_temporary_removed(void)
{
    CHECK(open_env(0));
    struct kid_arg a1 = kid_arg(1, TRAP_NONE, R_ALL, NULL);
    struct kid_arg a2 = kid_arg(2, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("perm", &a1, GR_PERMANENT, 1000),
                            kid_spec("temp", &a2, GR_TEMPORARY, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 5, kids, 2);
    gr_ref sup;
    gr_child_info info;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL) && take(REP_INIT, 2, NULL));
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "temp", GR_REF_NONE),
             GR_OK);
    CHECK(take(REP_TERM, 2, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK_EQ(nspecs(sup), 1);
    CHECK(!child_of(sup, "temp", &info));
    CHECK(child_of(sup, "perm", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "temp", NULL),
             GR_ENOTFOUND);
    close_env();
}

/* restart_child starts a stopped child again with a new ref; GR_EBUSY when
 * it runs, GR_ENOTFOUND for an unknown id, its init's error when it fails
 * (the spec stays, stopped). */
static void test_restart_child(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, &sh);
    gr_child_spec kids[] = {kid_spec("p", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 1);
    gr_ref sup, ref = GR_REF_NONE;
    gr_child_info info;
    struct rep r, first;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &first));

    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "p", &ref), GR_EBUSY);
    CHECK_EQ(atomic_load(&sh.inits), 1);
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "nope", &ref),
             GR_ENOTFOUND);

    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "p", GR_REF_NONE),
             GR_OK);
    CHECK(take(REP_TERM, 1, NULL));
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "p", &ref), GR_OK);
    CHECK(!gr_ref_is_none(ref));
    CHECK(!gr_ref_eq(ref, first.self));
    CHECK(take(REP_INIT, 1, &r));
    CHECK(gr_ref_eq(r.self, ref));
    CHECK(child_of(sup, "p", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    CHECK(gr_ref_eq(info.ref, ref));

    /* A restart whose init fails: the error, and the spec stays stopped. */
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "p", GR_REF_NONE),
             GR_OK);
    CHECK(take(REP_TERM, 1, NULL));
    atomic_store(&sh.fail_left, 1);
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "p", &ref),
             INIT_FAIL_CODE);
    CHECK(child_of(sup, "p", &info));
    CHECK_EQ(info.state, GR_CHILD_STOPPED);
    CHECK(gr_ref_is_none(info.ref));
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "p", &ref), GR_OK);
    CHECK(take(REP_INIT, 1, &r));
    CHECK(gr_ref_eq(r.self, ref));
    close_env();
}

/* delete_child: GR_EBUSY while running; GR_OK once stopped, and then the
 * child is gone (the id free again). */
static void test_delete_child(void)
{
    CHECK(open_env(0));
    struct kid_arg a1 = kid_arg(1, TRAP_NONE, R_ALL, NULL);
    struct kid_arg a2 = kid_arg(2, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("x", &a1, GR_PERMANENT, 1000),
                            kid_spec("y", &a2, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 2);
    gr_ref sup;
    gr_child_info info;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL) && take(REP_INIT, 2, NULL));

    CHECK_EQ(gr_supervisor_delete_child(T.sys, sup, "x"), GR_EBUSY);
    CHECK(child_of(sup, "x", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "x", GR_REF_NONE),
             GR_OK);
    CHECK(take(REP_TERM, 1, NULL));
    CHECK_EQ(gr_supervisor_delete_child(T.sys, sup, "x"), GR_OK);
    CHECK(!child_of(sup, "x", &info));
    CHECK_EQ(nspecs(sup), 1);
    CHECK_EQ(gr_supervisor_delete_child(T.sys, sup, "x"), GR_ENOTFOUND);
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "x", NULL), GR_ENOTFOUND);
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "x", GR_REF_NONE),
             GR_ENOTFOUND);
    /* The id can be used again; the new child goes at the end. */
    gr_child_spec again = kid_spec("x", &a1, GR_PERMANENT, 1000);
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &again, NULL), GR_OK);
    CHECK(take(REP_INIT, 1, NULL));
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 2);
    CHECK(strcmp(v[0].id, "y") == 0 && strcmp(v[1].id, "x") == 0);
    close_env();
}

/* which_children: start order, states, refs, types and restart types; a
 * cap smaller than the total copies cap entries and still reports the
 * total. */
static void test_which_children(void)
{
    CHECK(open_env(0));
    struct kid_arg a[4];
    for (int i = 0; i < 4; i++)
        a[i] = kid_arg(i + 1, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("a", &a[0], GR_PERMANENT, 1000),
                            kid_spec("b", &a[1], GR_TRANSIENT, 1000),
                            kid_spec("c", &a[2], GR_TEMPORARY, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 3);
    gr_ref sup, refs[4];
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    for (int i = 0; i < 3; i++) {
        CHECK(take(REP_INIT, i + 1, &r));
        refs[i] = r.self;
    }
    gr_child_spec d = kid_spec("d", &a[3], GR_PERMANENT, 1000);
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &d, &refs[3]), GR_OK);
    CHECK(take(REP_INIT, 4, NULL));

    static const char *const ids[] = {"a", "b", "c", "d"};
    static const gr_restart rt[] = {GR_PERMANENT, GR_TRANSIENT, GR_TEMPORARY,
                                    GR_PERMANENT};
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 4);
    for (int i = 0; i < 4; i++) {
        CHECK(strcmp(v[i].id, ids[i]) == 0);
        CHECK_EQ(v[i].state, GR_CHILD_RUNNING);
        CHECK(gr_ref_eq(v[i].ref, refs[i]));
        CHECK_EQ(v[i].type, GR_WORKER);
        CHECK_EQ(v[i].restart, rt[i]);
    }

    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "b", GR_REF_NONE),
             GR_OK);
    CHECK_EQ(which(sup, v), 4);
    CHECK(strcmp(v[1].id, "b") == 0);
    CHECK_EQ(v[1].state, GR_CHILD_STOPPED);
    CHECK(gr_ref_is_none(v[1].ref));
    CHECK_EQ(v[0].state, GR_CHILD_RUNNING);
    CHECK_EQ(v[2].state, GR_CHILD_RUNNING);
    CHECK_EQ(v[3].state, GR_CHILD_RUNNING);

    /* cap 2: two entries copied, the rest untouched, total 4. */
    gr_child_info small[3];
    memset(small, 0x5a, sizeof small);
    gr_child_info sentinel;
    memset(&sentinel, 0x5a, sizeof sentinel);
    size_t n = 0;
    CHECK_EQ(gr_supervisor_which_children(T.sys, sup, small, 2, &n), GR_OK);
    CHECK_EQ(n, 4);
    CHECK(strcmp(small[0].id, "a") == 0 && strcmp(small[1].id, "b") == 0);
    CHECK(memcmp(&small[2], &sentinel, sizeof sentinel) == 0);
    /* cap 0: only the total. */
    n = 0;
    CHECK_EQ(gr_supervisor_which_children(T.sys, sup, NULL, 0, &n), GR_OK);
    CHECK_EQ(n, 4);
    close_env();
}

/* count_children: specs, active, supervisors, workers (OTP). */
static void test_count_children(void)
{
    CHECK(open_env(0));
    struct kid_arg a1 = kid_arg(1, TRAP_NONE, R_ALL, NULL);
    struct kid_arg a2 = kid_arg(2, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("w1", &a1, GR_PERMANENT, 1000),
                            kid_spec("w2", &a2, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 2);
    gr_ref sup;
    gr_child_counts c;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL) && take(REP_INIT, 2, NULL));
    gr_child_spec sub = {.id = "sub",
                         .behaviour = &gr_supervisor_behaviour,
                         .arg = &empty_sup,
                         .arg_len = sizeof empty_sup,
                         .restart = GR_PERMANENT,
                         .type = GR_SUPERVISOR};
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &sub, NULL), GR_OK);

    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, &c), GR_OK);
    CHECK_EQ(c.specs, 3);
    CHECK_EQ(c.active, 3);
    CHECK_EQ(c.supervisors, 1);
    CHECK_EQ(c.workers, 2);

    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "w1", GR_REF_NONE),
             GR_OK);
    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, &c), GR_OK);
    CHECK_EQ(c.specs, 3);
    CHECK_EQ(c.active, 2);
    CHECK_EQ(c.supervisors, 1);
    CHECK_EQ(c.workers, 2);
    CHECK_EQ(gr_supervisor_delete_child(T.sys, sup, "w1"), GR_OK);
    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, &c), GR_OK);
    CHECK_EQ(c.specs, 2);
    CHECK_EQ(c.active, 2);
    CHECK_EQ(c.workers, 1);
    close_env();
}

/* The blocking calls return GR_EWRONGTHREAD inside a callback (init and
 * handle), and do nothing. */
static void test_calls_wrong_thread(void)
{
    CHECK(open_env(0));
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("a", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 1);
    gr_ref sup, cl;
    struct rep r, init;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &init));

    /* From init (run on this thread by gr_system_spawn). */
    struct cl_arg ca = {.inbox = T.me, .probe_sup = sup};
    CHECK_EQ(gr_system_spawn(T.sys, &client_b, &ca, sizeof ca, &cl), GR_OK);
    CHECK(take(REP_PROBE, ANY_TAG, &r));
    CHECK_EQ(r.nrcs, 7);
    for (int i = 0; i < r.nrcs; i++)
        CHECK_EQ(r.rcs[i], GR_EWRONGTHREAD);

    /* From a handler, on a worker. */
    struct kid_arg za = kid_arg(9, TRAP_NONE, R_ALL, NULL);
    struct cl_cmd c = {.sup = sup, .id = "a"};
    c.spec = kid_spec("z", &za, GR_PERMANENT, 1000);
    CHECK_EQ(cmd(cl, CL_PROBE, &c, sizeof c), GR_OK);
    CHECK(take(REP_PROBE, ANY_TAG, &r));
    CHECK_EQ(r.nrcs, 7);
    for (int i = 0; i < r.nrcs; i++)
        CHECK_EQ(r.rcs[i], GR_EWRONGTHREAD);

    /* Nothing happened. */
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 1);
    CHECK(strcmp(v[0].id, "a") == 0);
    CHECK_EQ(v[0].state, GR_CHILD_RUNNING);
    CHECK(gr_ref_eq(v[0].ref, init.self));
    CHECK(none_within(REP_INIT, 9, 0));
    close_env();
}

/* Every call on a supervisor that is gone returns GR_ENOACTOR. */
static void test_calls_dead_supervisor(void)
{
    CHECK(open_env(0));
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("a", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 1);
    gr_ref sup;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL));
    CHECK_EQ(stop_sup(sup), GR_OK);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK(wait_gone(sup));

    gr_child_spec k = kid_spec("b", &a, GR_PERMANENT, 1000);
    gr_child_info v[4];
    gr_child_counts c;
    size_t n;
    gr_ref out;
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &k, &out), GR_ENOACTOR);
    CHECK_EQ(gr_supervisor_spawn_child(T.sys, sup, &a, sizeof a, &out),
             GR_ENOACTOR);
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "a", GR_REF_NONE),
             GR_ENOACTOR);
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "a", &out), GR_ENOACTOR);
    CHECK_EQ(gr_supervisor_delete_child(T.sys, sup, "a"), GR_ENOACTOR);
    CHECK_EQ(gr_supervisor_which_children(T.sys, sup, v, 4, &n), GR_ENOACTOR);
    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, &c), GR_ENOACTOR);
    CHECK(none_within(REP_INIT, 1, 0));
    close_env();
}

/* Calls on an actor that is not a supervisor (a supervisor's worker)
 * return GR_ENOTSUP at once, blocking or async, and do not disturb it: its
 * handler never sees them, it does not crash, and it still works. */
static void test_calls_not_a_supervisor(void)
{
    CHECK(open_env(0));
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("a", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 1);
    gr_ref sup;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &r));
    gr_ref worker = r.self;

    gr_child_spec k = kid_spec("b", &a, GR_PERMANENT, 1000);
    gr_child_info v[4];
    gr_child_counts c;
    size_t n;
    gr_ref out;
    CHECK_EQ(gr_supervisor_start_child(T.sys, worker, &k, &out), GR_ENOTSUP);
    CHECK_EQ(gr_supervisor_spawn_child(T.sys, worker, &a, sizeof a, &out),
             GR_ENOTSUP);
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, worker, "a", GR_REF_NONE),
             GR_ENOTSUP);
    CHECK_EQ(gr_supervisor_restart_child(T.sys, worker, "a", &out), GR_ENOTSUP);
    CHECK_EQ(gr_supervisor_delete_child(T.sys, worker, "a"), GR_ENOTSUP);
    CHECK_EQ(gr_supervisor_which_children(T.sys, worker, v, 4, &n), GR_ENOTSUP);
    CHECK_EQ(gr_supervisor_count_children(T.sys, worker, &c), GR_ENOTSUP);

    /* From an actor: the answer is a GR_MSG_ASK_FAILED read as
     * GR_ENOTSUP. */
    gr_ref cl;
    struct cl_arg ca = {.inbox = T.me};
    CHECK_EQ(gr_system_spawn(T.sys, &client_b, &ca, sizeof ca, &cl), GR_OK);
    struct cl_cmd cmd_start = {.sup = worker, .corr = 201, .spec = k};
    CHECK_EQ(cmd(cl, CL_START, &cmd_start, sizeof cmd_start), GR_OK);
    CHECK(take(REP_SENT, 201, &r));
    CHECK_EQ(r.rc, GR_OK);
    CHECK(take(REP_REPLY, 201, &r));
    CHECK_EQ(r.code, 0); /* Not a GR_MSG_SUP_REPLY. */
    CHECK_EQ(r.read_rc, GR_OK);
    CHECK_EQ(r.rc, GR_ENOTSUP);
    CHECK(gr_ref_is_none(r.child));

    /* The worker was not disturbed: no exit, no restart, still there. */
    CHECK(none_within(REP_TERM, 1, QUIET_MS));
    CHECK_EQ(which(sup, v), 1);
    CHECK(gr_ref_eq(v[0].ref, worker));
    close_env();
}

/* The *_async forms, from an actor: each request is an ask whose one
 * answer, a GR_MSG_SUP_REPLY from the supervisor, carries the corr the
 * call stored, read with gr_sup_reply_read (which refuses other
 * messages). */
static void test_async_replies(void)
{
    CHECK(open_env(0));
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    struct kid_arg tmpl_arg = kid_arg(99, TRAP_NONE, R_ALL, NULL);
    gr_child_spec tmpl = kid_spec("t", &tmpl_arg, GR_PERMANENT, 1000);
    gr_sup_spec ssp = sup_spec(GR_SIMPLE_ONE_FOR_ONE, 1, &tmpl, 1);
    gr_ref sup, ssup, cl;
    struct rep r, k;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK_EQ(gr_supervisor_start(T.sys, &ssp, &ssup), GR_OK);
    struct cl_arg ca = {.inbox = T.me};
    CHECK_EQ(gr_system_spawn(T.sys, &client_b, &ca, sizeof ca, &cl), GR_OK);

    /* start_child_async. */
    struct kid_arg a1 = kid_arg(1, TRAP_NONE, R_ALL, NULL);
    struct cl_cmd c = {.sup = sup, .corr = 101};
    c.spec = kid_spec("k1", &a1, GR_PERMANENT, 1000);
    CHECK_EQ(cmd(cl, CL_START, &c, sizeof c), GR_OK);
    CHECK(take(REP_SENT, 101, &r));
    CHECK_EQ(r.rc, GR_OK);
    CHECK_EQ(r.read_rc, GR_EINVAL);
    uint64_t sent_corr = r.corr;
    CHECK(sent_corr != 0);
    CHECK(take(REP_REPLY, 101, &r));
    CHECK_EQ(r.corr, sent_corr);
    CHECK_EQ(r.code, 1); /* A GR_MSG_SUP_REPLY. */
    CHECK_EQ(r.read_rc, GR_OK);
    CHECK_EQ(r.tag, 101);
    CHECK_EQ(r.rc, GR_OK);
    CHECK(gr_ref_eq(r.from, sup));
    CHECK(take(REP_INIT, 1, &k));
    CHECK(gr_ref_eq(r.child, k.self));

    /* A duplicate: the error comes back the same way. */
    c.corr = 102;
    CHECK_EQ(cmd(cl, CL_START, &c, sizeof c), GR_OK);
    CHECK(take(REP_SENT, 102, &r));
    CHECK_EQ(r.rc, GR_OK);
    CHECK(take(REP_REPLY, 102, &r));
    CHECK_EQ(r.tag, 102);
    CHECK_EQ(r.rc, GR_EEXIST);
    CHECK(gr_ref_is_none(r.child));

    /* terminate_child_async by id. */
    struct cl_cmd t = {.sup = sup, .corr = 103, .id = "k1"};
    CHECK_EQ(cmd(cl, CL_TERMINATE, &t, sizeof t), GR_OK);
    CHECK(take(REP_REPLY, 103, &r));
    CHECK_EQ(r.tag, 103);
    CHECK_EQ(r.rc, GR_OK);
    CHECK(take(REP_TERM, 1, &k));
    CHECK_EQ(k.code, GR_ESHUTDOWN);
    t.corr = 104;
    t.id = "nope";
    CHECK_EQ(cmd(cl, CL_TERMINATE, &t, sizeof t), GR_OK);
    CHECK(take(REP_REPLY, 104, &r));
    CHECK_EQ(r.tag, 104);
    CHECK_EQ(r.rc, GR_ENOTFOUND);

    /* spawn_child_async on the simple-one-for-one supervisor. */
    struct cl_cmd s = {.sup = ssup, .corr = 105};
    s.karg = kid_arg(7, TRAP_NONE, R_ALL, NULL);
    CHECK_EQ(cmd(cl, CL_SPAWN, &s, sizeof s), GR_OK);
    CHECK(take(REP_SENT, 105, &r));
    CHECK_EQ(r.rc, GR_OK);
    CHECK(take(REP_REPLY, 105, &r));
    CHECK_EQ(r.tag, 105);
    CHECK_EQ(r.rc, GR_OK);
    CHECK(gr_ref_eq(r.from, ssup));
    CHECK(take(REP_INIT, 7, &k));
    CHECK(gr_ref_eq(r.child, k.self));
    /* ... and on the static one: GR_EINVAL. */
    s.sup = sup;
    s.corr = 106;
    CHECK_EQ(cmd(cl, CL_SPAWN, &s, sizeof s), GR_OK);
    CHECK(take(REP_REPLY, 106, &r));
    CHECK_EQ(r.tag, 106);
    CHECK_EQ(r.rc, GR_EINVAL);

    /* To a supervisor that is gone: refused at once, no reply. */
    CHECK_EQ(stop_sup(sup), GR_OK);
    CHECK(wait_gone(sup));
    c.corr = 107;
    CHECK_EQ(cmd(cl, CL_START, &c, sizeof c), GR_OK);
    CHECK(take(REP_SENT, 107, &r));
    CHECK_EQ(r.rc, GR_ENOACTOR);
    CHECK(none_within(REP_REPLY, ANY_TAG, QUIET_MS));
    close_env();
}

/* ---- simple-one-for-one ---------------------------------------------------
 */

/* Starts a simple-one-for-one supervisor of kids with restart type rt and
 * a template arg tagged 99. */
static int start_sofo(gr_restart rt, gr_ref *sup)
{
    struct kid_arg ta = kid_arg(99, TRAP_NONE, R_ALL, NULL);
    gr_child_spec tmpl = kid_spec("worker", &ta, rt, 1000);
    gr_sup_spec sp = sup_spec(GR_SIMPLE_ONE_FOR_ONE, 10, &tmpl, 1);
    return gr_supervisor_start(T.sys, &sp, sup);
}

/* Spawns a dynamic kid with tag; returns 1 with its ref (from the call and
 * from its init report, which must agree). */
static int spawn_kid(gr_ref sup, int32_t tag, struct shared *sh, gr_ref *out)
{
    struct kid_arg a = kid_arg(tag, TRAP_NONE, R_ALL, sh);
    struct rep r;
    gr_ref ref = GR_REF_NONE;
    int rc = gr_supervisor_spawn_child(T.sys, sup, &a, sizeof a, &ref);
    if (rc != GR_OK) {
        fprintf(stderr, "  spawn_child: %s\n", gr_errname(rc));
        return 0;
    }
    if (!take(REP_INIT, tag, &r) || !gr_ref_eq(r.self, ref))
        return 0;
    *out = ref;
    return 1;
}

/* spawn_child starts children from the template, each with its own arg;
 * the supervisor starts none by itself. */
static void test_sofo_spawn(void)
{
    CHECK(open_env(0));
    gr_ref sup, refs[3];
    CHECK_EQ(start_sofo(GR_PERMANENT, &sup), GR_OK);
    CHECK_EQ(nspecs(sup), 0);
    for (int i = 0; i < 3; i++)
        CHECK(spawn_kid(sup, i + 1, NULL, &refs[i]));
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 3);
    for (int i = 0; i < 3; i++) {
        CHECK(strcmp(v[i].id, "worker") == 0);
        CHECK_EQ(v[i].state, GR_CHILD_RUNNING);
        CHECK(gr_ref_eq(v[i].ref, refs[i]));
        CHECK_EQ(v[i].restart, GR_PERMANENT);
    }
    gr_child_counts c;
    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, &c), GR_OK);
    CHECK_EQ(c.specs, 3);
    CHECK_EQ(c.active, 3);
    CHECK_EQ(c.workers, 3);
    CHECK_EQ(c.supervisors, 0);
    /* The template's own arg was never used. */
    CHECK(none_within(REP_INIT, 99, 0));
    close_env();
}

/* A crashed permanent dynamic child is restarted with the same arg. */
static void test_sofo_restart_same_arg(void)
{
    CHECK(open_env(0));
    gr_ref sup, r1, r2;
    struct rep r;
    CHECK_EQ(start_sofo(GR_PERMANENT, &sup), GR_OK);
    CHECK(spawn_kid(sup, 1, NULL, &r1));
    CHECK(spawn_kid(sup, 2, NULL, &r2));
    CHECK_EQ(cmd(r1, KID_CRASH, NULL, 0), GR_OK);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_EFAILED);
    CHECK(take(REP_INIT, 1, &r));
    CHECK(!gr_ref_eq(r.self, r1));
    gr_ref n1 = r.self;
    CHECK(none_within(REP_INIT, 2, 0));
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 2);
    CHECK(gr_ref_eq(v[0].ref, n1));
    CHECK(gr_ref_eq(v[1].ref, r2));
    CHECK_EQ(v[0].state, GR_CHILD_RUNNING);
    close_env();
}

/* A transient dynamic child that exits normally is removed (and one that
 * crashes is restarted); a temporary one is removed even after a crash. */
static void test_sofo_transient_normal_removed(void)
{
    CHECK(open_env(0));
    gr_ref sup, r1, r2;
    struct rep r;
    CHECK_EQ(start_sofo(GR_TRANSIENT, &sup), GR_OK);
    CHECK(spawn_kid(sup, 1, NULL, &r1));
    CHECK(spawn_kid(sup, 2, NULL, &r2));
    CHECK_EQ(cmd(r1, KID_STOP, NULL, 0), GR_OK);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_OK);
    CHECK_EQ(wait_specs(sup, 1), 1);
    CHECK(none_within(REP_INIT, 1, QUIET_MS));
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 1);
    CHECK(gr_ref_eq(v[0].ref, r2));
    /* A crash is restarted. */
    CHECK_EQ(cmd(r2, KID_CRASH, NULL, 0), GR_OK);
    CHECK(take(REP_INIT, 2, &r));
    CHECK(!gr_ref_eq(r.self, r2));
    CHECK_EQ(nspecs(sup), 1);

    gr_ref tsup, t1;
    CHECK_EQ(start_sofo(GR_TEMPORARY, &tsup), GR_OK);
    CHECK(spawn_kid(tsup, 3, NULL, &t1));
    CHECK_EQ(cmd(t1, KID_CRASH, NULL, 0), GR_OK);
    CHECK(take(REP_TERM, 3, NULL));
    CHECK_EQ(wait_specs(tsup, 0), 0);
    CHECK(none_within(REP_INIT, 3, QUIET_MS));
    close_env();
}

/* terminate_child by ref (id NULL) stops a dynamic child and removes it. */
static void test_sofo_terminate_by_ref(void)
{
    CHECK(open_env(0));
    gr_ref sup, refs[3];
    struct rep r;
    CHECK_EQ(start_sofo(GR_PERMANENT, &sup), GR_OK);
    for (int i = 0; i < 3; i++)
        CHECK(spawn_kid(sup, i + 1, NULL, &refs[i]));
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, NULL, refs[1]), GR_OK);
    CHECK(take(REP_TERM, 2, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 2);
    CHECK(gr_ref_eq(v[0].ref, refs[0]));
    CHECK(gr_ref_eq(v[1].ref, refs[2]));
    CHECK(none_within(REP_INIT, 2, QUIET_MS));
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, NULL, refs[1]),
             GR_ENOTFOUND);
    CHECK_EQ(nspecs(sup), 2);
    close_env();
}

/* Stopping a simple-one-for-one supervisor stops every dynamic child; it
 * then exits with shutdown. */
static void test_sofo_stop_all(void)
{
    CHECK(open_env(0));
    gr_ref sup, cl, refs[4];
    struct rep r;
    CHECK_EQ(start_sofo(GR_PERMANENT, &sup), GR_OK);
    for (int i = 0; i < 4; i++)
        CHECK(spawn_kid(sup, i + 1, NULL, &refs[i]));
    struct cl_arg ca = {.inbox = T.me};
    CHECK_EQ(gr_system_spawn(T.sys, &client_b, &ca, sizeof ca, &cl), GR_OK);
    struct cl_cmd m = {.sup = sup};
    CHECK_EQ(cmd(cl, CL_MONITOR, &m, sizeof m), GR_OK);
    CHECK(take(REP_MONITORED, ANY_TAG, &r));
    CHECK_EQ(r.rc, GR_OK);

    CHECK_EQ(stop_sup(sup), GR_OK);
    for (int i = 0; i < 4; i++) {
        CHECK(take(REP_TERM, i + 1, &r));
        CHECK_EQ(r.code, GR_ESHUTDOWN);
    }
    CHECK(take(REP_DOWN, ANY_TAG, &r));
    CHECK(gr_ref_eq(r.from, sup));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK(wait_gone(sup));
    CHECK(none_within(REP_INIT, ANY_TAG, QUIET_MS));
    close_env();
}

/* A simple-one-for-one spec needs exactly one child spec, with no name;
 * spawn_child is for simple-one-for-one only. No actor is left behind. */
static void test_sofo_malformed(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, &sh);
    gr_child_spec two[] = {kid_spec("x", &a, GR_PERMANENT, 1000),
                           kid_spec("y", &a, GR_PERMANENT, 1000)};
    int64_t before = live();
    gr_ref sup = GR_REF_NONE;
    gr_sup_spec sp = sup_spec(GR_SIMPLE_ONE_FOR_ONE, 1, two, 0);
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_EINVAL);
    sp.nchildren = 2;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_EINVAL);
    two[0].name = "named";
    sp.nchildren = 1;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_EINVAL);
    CHECK_EQ(wait_live(before), before);
    CHECK_EQ(atomic_load(&sh.inits), 0);

    gr_sup_spec st = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    CHECK_EQ(gr_supervisor_start(T.sys, &st, &sup), GR_OK);
    CHECK_EQ(gr_supervisor_spawn_child(T.sys, sup, &a, sizeof a, NULL),
             GR_EINVAL);
    CHECK_EQ(nspecs(sup), 0);
    CHECK_EQ(atomic_load(&sh.inits), 0);
    close_env();
}

/* ---- spec validation ------------------------------------------------------
 */

/* Starts a one-for-one supervisor named "checked" over kids and expects
 * rc, no actor left, no child init run and the name free. Returns 1 if so.
 */
static int start_fails(gr_child_spec *kids, size_t n, int rc, struct shared *sh)
{
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, n);
    sp.name = "checked";
    int64_t before = live();
    gr_ref sup = GR_REF_NONE, found;
    int got = gr_supervisor_start(T.sys, &sp, &sup);
    int ok = got == rc && wait_live(before) == before &&
             atomic_load(&sh->inits) == 0 &&
             gr_whereis(T.sys, "checked", &found) == GR_ENOTFOUND;
    if (!ok)
        fprintf(stderr, "  start gave %s (want %s), live %lld -> %lld\n",
                gr_errname(got), gr_errname(rc), (long long)before,
                (long long)live());
    return ok;
}

/* Adds kid to a running supervisor and expects rc and no new spec. */
static int start_child_fails(gr_ref sup, const gr_child_spec *kid, int rc)
{
    long before = nspecs(sup);
    int got = gr_supervisor_start_child(T.sys, sup, kid, NULL);
    if (got != rc || nspecs(sup) != before) {
        fprintf(stderr, "  start_child gave %s (want %s)\n", gr_errname(got),
                gr_errname(rc));
        return 0;
    }
    return 1;
}

/* A NULL behaviour, or one without handle: GR_EINVAL. */
static void test_spec_null_behaviour(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, &sh);
    gr_child_spec kids[] = {kid_spec("ok", &a, GR_PERMANENT, 1000),
                            kid_spec("bad", &a, GR_PERMANENT, 1000)};
    kids[1].behaviour = NULL;
    CHECK(start_fails(kids, 2, GR_EINVAL, &sh));
    kids[1].behaviour = &no_handle_b;
    CHECK(start_fails(kids, 2, GR_EINVAL, &sh));

    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    kids[1].behaviour = NULL;
    CHECK(start_child_fails(sup, &kids[1], GR_EINVAL));
    kids[1].behaviour = &no_handle_b;
    CHECK(start_child_fails(sup, &kids[1], GR_EINVAL));
    CHECK_EQ(atomic_load(&sh.inits), 0);
    close_env();
}

/* Duplicate ids (and missing or empty ones): GR_EINVAL. */
static void test_spec_duplicate_ids(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, &sh);
    gr_child_spec kids[] = {kid_spec("a", &a, GR_PERMANENT, 1000),
                            kid_spec("b", &a, GR_PERMANENT, 1000),
                            kid_spec("a", &a, GR_PERMANENT, 1000)};
    CHECK(start_fails(kids, 3, GR_EINVAL, &sh));
    kids[2].id = NULL;
    CHECK(start_fails(kids, 3, GR_EINVAL, &sh));
    kids[2].id = "";
    CHECK(start_fails(kids, 3, GR_EINVAL, &sh));

    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(start_child_fails(sup, &kids[2], GR_EINVAL));
    kids[2].id = NULL;
    CHECK(start_child_fails(sup, &kids[2], GR_EINVAL));
    CHECK_EQ(atomic_load(&sh.inits), 0);
    close_env();
}

/* A shutdown value below GR_SHUTDOWN_INFINITY: GR_EINVAL. */
static void test_spec_bad_shutdown(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, &sh);
    gr_child_spec kids[] = {kid_spec("a", &a, GR_PERMANENT, 1000),
                            kid_spec("b", &a, GR_PERMANENT, -3)};
    CHECK(start_fails(kids, 2, GR_EINVAL, &sh));
    kids[1].shutdown_ms = INT32_MIN;
    CHECK(start_fails(kids, 2, GR_EINVAL, &sh));

    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    kids[1].shutdown_ms = GR_SHUTDOWN_INFINITY - 1;
    CHECK(start_child_fails(sup, &kids[1], GR_EINVAL));
    CHECK_EQ(atomic_load(&sh.inits), 0);
    close_env();
}

/* An id longer than GR_NAME_MAX: GR_ENAMETOOLONG; GR_NAME_MAX bytes fit. */
static void test_spec_long_id(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, &sh);
    char longid[GR_NAME_MAX + 2], maxid[GR_NAME_MAX + 1];
    memset(longid, 'L', GR_NAME_MAX + 1);
    longid[GR_NAME_MAX + 1] = '\0';
    memset(maxid, 'M', GR_NAME_MAX);
    maxid[GR_NAME_MAX] = '\0';
    gr_child_spec kids[] = {kid_spec("a", &a, GR_PERMANENT, 1000),
                            kid_spec(longid, &a, GR_PERMANENT, 1000)};
    CHECK(start_fails(kids, 2, GR_ENAMETOOLONG, &sh));

    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(start_child_fails(sup, &kids[1], GR_ENAMETOOLONG));
    CHECK_EQ(atomic_load(&sh.inits), 0);

    gr_child_spec ok = kid_spec(maxid, &a, GR_PERMANENT, 1000);
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &ok, NULL), GR_OK);
    gr_child_info info;
    CHECK(child_of(sup, maxid, &info));
    CHECK_EQ(strlen(info.id), GR_NAME_MAX);
    close_env();
}

/* ---- backoff --------------------------------------------------------------
 */

/* With backoff {20, 80}, a restart waits (the child shows RESTARTING
 * meanwhile) at least the doubling delay, then runs again. */
static void test_backoff_restarting(void)
{
    CHECK(open_env(1));
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_INIT, NULL);
    gr_child_spec kids[] = {kid_spec("b", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 10, kids, 1);
    sp.backoff = (gr_backoff){.min_ms = 20, .max_ms = 80};
    gr_ref sup;
    struct rep r;
    gr_child_info info;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &r));
    gr_ref cur = r.self;
    static const int delay[] = {20, 40, 80, 80};
    for (unsigned k = 0; k < 4; k++) {
        CHECK_EQ(cmd(cur, KID_CRASH, NULL, 0), GR_OK);
        CHECK_EQ(ev_wait(GR_EV_CHILD_CRASHED, "b", k + 1), k + 1);
        struct evrec crash;
        CHECK(ev_nth(GR_EV_CHILD_CRASHED, "b", k, &crash));
        CHECK(child_of(sup, "b", &info));
        /* Waiting out the delay, unless this thread was descheduled for
         * longer than it: then the child may already run, never earlier. */
        if (info.state == GR_CHILD_RUNNING)
            CHECK(test_now() - crash.t >= (delay[k] - 1) / 1000.0);
        else
            CHECK_EQ(info.state, GR_CHILD_RESTARTING);
        CHECK(info.state == GR_CHILD_RUNNING || gr_ref_is_none(info.ref));
        CHECK(take(REP_INIT, 1, &r));
        CHECK(!gr_ref_eq(r.self, cur));
        cur = r.self;
        CHECK(child_of(sup, "b", &info));
        CHECK_EQ(info.state, GR_CHILD_RUNNING);
        CHECK(gr_ref_eq(info.ref, cur));
        struct evrec crashed, restarted;
        CHECK(ev_nth(GR_EV_CHILD_CRASHED, "b", k, &crashed));
        CHECK(ev_nth(GR_EV_CHILD_RESTARTED, "b", k, &restarted));
        CHECK_EQ(restarted.restarts, k + 1);
        CHECK(gr_ref_eq(restarted.child, cur));
        /* A lower bound only (1 ms slack for clock granularity). */
        double waited_ms = (restarted.t - crashed.t) * 1000.0;
        if (waited_ms < delay[k] - 1) {
            fprintf(stderr, "  restart %u after %.1f ms, want >= %d\n", k + 1,
                    waited_ms, delay[k]);
            CHECK(0);
        }
    }
    close_env();
}

/* ---- failed restarts (OTP try_again) --------------------------------------
 */

/* A restart whose init fails is retried, each try counted against the
 * intensity; once init works again the child runs. */
static void test_restart_retry_succeeds(void)
{
    CHECK(open_env(1));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_INIT, &sh);
    gr_child_spec kids[] = {kid_spec("r", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 5, kids, 1);
    gr_ref sup;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &r));
    atomic_store(&sh.fail_left, 2);
    CHECK_EQ(cmd(r.self, KID_CRASH, NULL, 0), GR_OK);
    CHECK(take(REP_INIT, 1, &r));
    CHECK_EQ(atomic_load(&sh.inits), 4); /* 1 + 2 failed + 1. */
    CHECK_EQ(ev_wait(GR_EV_START_FAILED, "r", 2), 2);
    CHECK_EQ(ev_wait(GR_EV_CHILD_RESTARTED, "r", 1), 1);
    struct evrec ev;
    CHECK(ev_nth(GR_EV_START_FAILED, "r", 0, &ev));
    CHECK_EQ(ev.code, INIT_FAIL_CODE);
    CHECK_EQ(ev.restarts, 1);
    CHECK(ev_nth(GR_EV_START_FAILED, "r", 1, &ev));
    CHECK_EQ(ev.restarts, 2);
    CHECK(ev_nth(GR_EV_CHILD_RESTARTED, "r", 0, &ev));
    CHECK_EQ(ev.restarts, 3);
    CHECK(gr_ref_eq(ev.child, r.self));
    gr_child_info info;
    CHECK(child_of(sup, "r", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    CHECK(gr_ref_eq(info.ref, r.self));
    CHECK_EQ(ev_count(GR_EV_GAVE_UP, NULL), 0);
    close_env();
}

/* A child that cannot start again exhausts the intensity: intensity 3
 * allows three tries, the fourth restart gives up and the supervisor exits
 * with shutdown. */
static void test_restart_retry_gives_up(void)
{
    CHECK(open_env(1));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_INIT, &sh);
    gr_child_spec kids[] = {kid_spec("r", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 3, kids, 1);
    gr_ref sup, cl;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &r));
    gr_ref child = r.self;
    struct cl_arg ca = {.inbox = T.me};
    CHECK_EQ(gr_system_spawn(T.sys, &client_b, &ca, sizeof ca, &cl), GR_OK);
    struct cl_cmd m = {.sup = sup};
    CHECK_EQ(cmd(cl, CL_MONITOR, &m, sizeof m), GR_OK);
    CHECK(take(REP_MONITORED, ANY_TAG, &r));
    CHECK_EQ(r.rc, GR_OK);

    atomic_store(&sh.fail_left, 1000);
    CHECK_EQ(cmd(child, KID_CRASH, NULL, 0), GR_OK);
    CHECK(take(REP_DOWN, ANY_TAG, &r));
    CHECK(gr_ref_eq(r.from, sup));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK(wait_gone(sup));
    CHECK_EQ(atomic_load(&sh.inits), 4); /* 1 + 3 tries. */
    CHECK_EQ(ev_wait(GR_EV_START_FAILED, "r", 3), 3);
    CHECK_EQ(ev_wait(GR_EV_GAVE_UP, NULL, 1), 1);
    CHECK_EQ(ev_count(GR_EV_CHILD_RESTARTED, NULL), 0);
    struct evrec ev;
    for (unsigned k = 0; k < 3; k++) {
        CHECK(ev_nth(GR_EV_START_FAILED, "r", k, &ev));
        CHECK_EQ(ev.restarts, k + 1);
        CHECK_EQ(ev.code, INIT_FAIL_CODE);
    }
    CHECK(ev_nth(GR_EV_GAVE_UP, NULL, 0, &ev));
    CHECK_EQ(ev.restarts, 4);
    CHECK(gr_ref_eq(ev.sup, sup));
    close_env();
}

/* ---- the restart log ------------------------------------------------------
 */

#define LOG_MAX  256
#define LOG_LINE 1024

/* A log capture with room for whole lines. */
static struct {
    pthread_mutex_t lock;
    unsigned n;
    gr_log_level level[LOG_MAX];
    char line[LOG_MAX][LOG_LINE];
} logc = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void log_fn(void *arg, gr_log_level level, const char *line)
{
    (void)arg;
    pthread_mutex_lock(&logc.lock);
    if (logc.n < LOG_MAX) {
        logc.level[logc.n] = level;
        snprintf(logc.line[logc.n], LOG_LINE, "%s", line);
    }
    logc.n++;
    pthread_mutex_unlock(&logc.lock);
}

/* Index of the first captured line containing a, b and c (b, c: NULL for
 * none), or -1. */
static int log_find(const char *a, const char *b, const char *c)
{
    int at = -1;
    pthread_mutex_lock(&logc.lock);
    for (unsigned i = 0; i < logc.n && i < LOG_MAX; i++)
        if (strstr(logc.line[i], a) && (!b || strstr(logc.line[i], b)) &&
            (!c || strstr(logc.line[i], c))) {
            at = (int)i;
            break;
        }
    pthread_mutex_unlock(&logc.lock);
    return at;
}

static void log_dump(void)
{
    pthread_mutex_lock(&logc.lock);
    for (unsigned i = 0; i < logc.n && i < LOG_MAX; i++)
        fprintf(stderr, "    log %s: %s\n", gr_log_level_name(logc.level[i]),
                logc.line[i]);
    pthread_mutex_unlock(&logc.lock);
}

/* Formats a ref as the log does: <node.index.generation>. */
static const char *ref_str(gr_ref r, char *buf, size_t size)
{
    snprintf(buf, size, "<%u.%u.%u>", (unsigned)r.node, (unsigned)r.serial,
             (unsigned)(r.serial >> 32));
    return buf;
}

/* A tiny JSON checker: one object of string keys and scalar values (string,
 * number, true, false, null), nothing after it. Keeps up to 16 pairs, the
 * string values unescaped. */
struct jobj {
    int n;
    char key[16][32];
    char val[16][256];
};

static void j_ws(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

/* Parses a string at *p into out (size bytes, truncating); 0 if bad. */
static int j_string(const char **p, char *out, size_t size)
{
    size_t n = 0;
    if (**p != '"')
        return 0;
    (*p)++;
    for (;;) {
        unsigned char ch = (unsigned char)**p;
        if (ch == '\0' || ch < 0x20)
            return 0;
        (*p)++;
        if (ch == '"')
            break;
        if (ch == '\\') {
            char e = **p;
            (*p)++;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                ch = (unsigned char)e;
                break;
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                ch = ' ';
                break;
            case 'u':
                for (int i = 0; i < 4; i++, (*p)++)
                    if (!strchr("0123456789abcdefABCDEF", **p) || !**p)
                        return 0;
                ch = '?';
                break;
            default:
                return 0;
            }
        }
        if (n + 1 < size)
            out[n++] = (char)ch;
    }
    if (size > 0)
        out[n] = '\0';
    return 1;
}

static int j_digits(const char **p)
{
    const char *s = *p;
    while (**p >= '0' && **p <= '9')
        (*p)++;
    return *p > s;
}

/* Parses a scalar value at *p into out; 0 if bad. */
static int j_value(const char **p, char *out, size_t size)
{
    if (**p == '"')
        return j_string(p, out, size);
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++)
        if (strncmp(*p, lits[i], strlen(lits[i])) == 0) {
            snprintf(out, size, "%s", lits[i]);
            *p += strlen(lits[i]);
            return 1;
        }
    const char *s = *p;
    if (**p == '-')
        (*p)++;
    if (!j_digits(p))
        return 0;
    if (**p == '.') {
        (*p)++;
        if (!j_digits(p))
            return 0;
    }
    if (**p == 'e' || **p == 'E') {
        (*p)++;
        if (**p == '+' || **p == '-')
            (*p)++;
        if (!j_digits(p))
            return 0;
    }
    snprintf(out, size, "%.*s", (int)(*p - s), s);
    return 1;
}

/* Returns 1 if s is exactly one such JSON object; fills o. */
static int json_parse(const char *s, struct jobj *o)
{
    const char *p = s;
    char key[32], val[256];
    o->n = 0;
    j_ws(&p);
    if (*p++ != '{')
        return 0;
    j_ws(&p);
    if (*p == '}') {
        p++;
    } else {
        for (;;) {
            j_ws(&p);
            if (!j_string(&p, key, sizeof key))
                return 0;
            j_ws(&p);
            if (*p++ != ':')
                return 0;
            j_ws(&p);
            if (!j_value(&p, val, sizeof val))
                return 0;
            if (o->n < 16) {
                snprintf(o->key[o->n], sizeof o->key[0], "%s", key);
                snprintf(o->val[o->n], sizeof o->val[0], "%s", val);
                o->n++;
            }
            j_ws(&p);
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p++ != '}')
                return 0;
            break;
        }
    }
    j_ws(&p);
    return *p == '\0';
}

/* The value of key in o, or NULL. */
static const char *j_get(const struct jobj *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->key[i], key) == 0)
            return o->val[i];
    return NULL;
}

/* The keys include/grove/event.h documents. */
static const char *const json_keys[] = {"event",    "time_ns",  "supervisor",
                                        "sup_name", "child_id", "child",
                                        "reason",   "code",     "restarts"};

/* Returns 1 if o has every documented key. */
static int json_has_keys(const struct jobj *o)
{
    for (size_t i = 0; i < sizeof json_keys / sizeof json_keys[0]; i++)
        if (j_get(o, json_keys[i]) == NULL) {
            fprintf(stderr, "  JSON event lacks key \"%s\"\n", json_keys[i]);
            return 0;
        }
    return 1;
}

/* Names long enough to test the line limit: GR_NAME_MAX bytes each. */
static char long_sup_name[GR_NAME_MAX + 1];
static char long_child_id[GR_NAME_MAX + 1];

/* Makes every kind of event happen under a supervisor named `name` with a
 * child `id`, and waits for the give-up. Fills the refs it saw. Returns 1
 * if all went as planned. */
static int log_scenario(const char *name, const char *id, gr_ref *sup,
                        gr_ref *first, gr_ref *second, struct rep *crash)
{
    static struct shared sh;
    atomic_store(&sh.inits, 0);
    atomic_store(&sh.fail_left, 0);
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_INIT | R_TERM, &sh);
    gr_child_spec kids[] = {kid_spec(id, &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 2, kids, 1);
    sp.name = name;
    struct rep r;
    gr_ref ref;
    pthread_mutex_lock(&logc.lock);
    logc.n = 0;
    pthread_mutex_unlock(&logc.lock);
    /* child_started */
    if (gr_supervisor_start(T.sys, &sp, sup) != GR_OK || !take(REP_INIT, 1, &r))
        return 0;
    *first = r.self;
    /* child_crashed, child_restarted */
    if (cmd(r.self, KID_CRASH, NULL, 0) != GR_OK || !take(REP_TERM, 1, crash) ||
        !take(REP_INIT, 1, &r))
        return 0;
    *second = r.self;
    /* child_exited */
    if (gr_supervisor_terminate_child(T.sys, *sup, id, GR_REF_NONE) != GR_OK ||
        !take(REP_TERM, 1, NULL))
        return 0;
    /* start_failed (restart_child: not counted) */
    atomic_store(&sh.fail_left, 1);
    if (gr_supervisor_restart_child(T.sys, *sup, id, &ref) != INIT_FAIL_CODE)
        return 0;
    if (gr_supervisor_restart_child(T.sys, *sup, id, &ref) != GR_OK ||
        !take(REP_INIT, 1, &r))
        return 0;
    /* child_crashed, start_failed (the second restart in the window),
     * then gave_up: the retry would be the third. The give-up is logged
     * before the supervisor exits. */
    atomic_store(&sh.fail_left, 1000);
    return cmd(r.self, KID_CRASH, NULL, 0) == GR_OK && wait_gone(*sup);
}

/* With event_json, every event is one line holding one valid JSON object
 * with the documented keys, even with the longest names. */
static void test_log_json(void)
{
    gr_config cfg = {
        .workers = 2, .log_fn = log_fn, .no_signals = 1, .event_json = 1};
    CHECK(open_cfg(&cfg));
    memset(long_sup_name, 'S', GR_NAME_MAX);
    memset(long_child_id, 'C', GR_NAME_MAX);
    static const char *const names[][2] = {{"logsup", "w1"},
                                           {long_sup_name, long_child_id}};
    for (int round = 0; round < 2; round++) {
        const char *name = names[round][0], *id = names[round][1];
        gr_ref sup, first, second;
        struct rep crash;
        int ok = log_scenario(name, id, &sup, &first, &second, &crash);
        if (!ok)
            log_dump();
        CHECK(ok);
        char sref[48], r1[48], r2[48];
        ref_str(sup, sref, sizeof sref);
        ref_str(first, r1, sizeof r1);
        ref_str(second, r2, sizeof r2);
        unsigned kinds[GR_EV_KIND_COUNT] = {0};
        int bad = 0;
        pthread_mutex_lock(&logc.lock);
        unsigned n = logc.n < LOG_MAX ? logc.n : LOG_MAX;
        for (unsigned i = 0; i < n; i++) {
            const char *line = logc.line[i];
            if (line[0] != '{' || strstr(line, "\"supervisor\"") == NULL)
                continue; /* Not a supervisor event: an actor's own. */
            struct jobj o;
            if (strchr(line, '\n') || !json_parse(line, &o) ||
                !json_has_keys(&o)) {
                fprintf(stderr, "  bad JSON event line: %s\n", line);
                bad = 1;
                continue;
            }
            const char *ev = j_get(&o, "event");
            int kind = -1;
            for (int k = 0; k < GR_EV_KIND_COUNT; k++)
                if (strcmp(ev, gr_event_kind_name((gr_event_kind)k)) == 0)
                    kind = k;
            if (kind < 0 || strcmp(j_get(&o, "supervisor"), sref) != 0 ||
                strcmp(j_get(&o, "sup_name"), name) != 0 ||
                (kind != GR_EV_GAVE_UP &&
                 strcmp(j_get(&o, "child_id"), id) != 0)) {
                fprintf(stderr, "  unexpected JSON event: %s\n", line);
                bad = 1;
                continue;
            }
            /* The first start and the first crash are of the first
             * child; every crash has the same reason. */
            int first_of_kind = kinds[kind]++ == 0;
            if (kind == GR_EV_CHILD_STARTED &&
                strcmp(j_get(&o, "child"), r1) != 0)
                bad = 1;
            if (kind == GR_EV_CHILD_CRASHED &&
                ((first_of_kind && strcmp(j_get(&o, "child"), r1) != 0) ||
                 strcmp(j_get(&o, "code"), "GR_EFAILED") != 0 ||
                 strcmp(j_get(&o, "reason"), crash.why) != 0)) {
                fprintf(stderr, "  crash event: %s (want reason %s)\n", line,
                        crash.why);
                bad = 1;
            }
        }
        pthread_mutex_unlock(&logc.lock);
        if (bad)
            log_dump();
        CHECK(!bad);
        CHECK_EQ(kinds[GR_EV_CHILD_STARTED], 1);
        CHECK_EQ(kinds[GR_EV_CHILD_CRASHED], 2);
        CHECK_EQ(kinds[GR_EV_CHILD_RESTARTED], 2);
        CHECK_EQ(kinds[GR_EV_CHILD_EXITED], 1);
        CHECK_EQ(kinds[GR_EV_START_FAILED], 2);
        CHECK_EQ(kinds[GR_EV_GAVE_UP], 1);
    }
    close_env();
}

/* As text (the default), the lines name the supervisor (ref and name), the
 * child id, its ref and the reason. */
static void test_log_text(void)
{
    gr_config cfg = {.workers = 2, .log_fn = log_fn, .no_signals = 1};
    CHECK(open_cfg(&cfg));
    gr_ref sup, first, second;
    struct rep crash;
    int ok = log_scenario("logsup", "w1", &sup, &first, &second, &crash);
    if (!ok)
        log_dump();
    CHECK(ok);
    char sref[64], r1[48], r2[48];
    ref_str(sup, sref, sizeof sref);
    ref_str(first, r1, sizeof r1);
    ref_str(second, r2, sizeof r2);
    char failed_why[160];
    gr_reason fr = gr_reason_of(INIT_FAIL_CODE);
    gr_reason_format(&fr, failed_why, sizeof failed_why);
    struct {
        const char *what, *ref, *why;
        gr_log_level level;
    } want[] = {
        {"started", r1, NULL, GR_LOG_INFO},
        {"crashed", r1, crash.why, GR_LOG_ERROR},
        {"restarted", r2, NULL, GR_LOG_INFO},
        {"exited", r2, "shutdown", GR_LOG_INFO},
        {"failed to start", "\"w1\"", failed_why, GR_LOG_ERROR},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int at = log_find(want[i].what, want[i].ref, want[i].why);
        if (at < 0) {
            fprintf(stderr, "  no line: %s %s %s\n", want[i].what, want[i].ref,
                    want[i].why ? want[i].why : "");
            bad = 1;
            continue;
        }
        const char *line = logc.line[at];
        if (!strstr(line, sref) || !strstr(line, "logsup") ||
            !strstr(line, "\"w1\"") || logc.level[at] != want[i].level) {
            fprintf(stderr, "  line lacks sup/name/id/level: %s\n", line);
            bad = 1;
        }
    }
    int at = log_find("intensity", sref, "logsup");
    if (at < 0 || logc.level[at] != GR_LOG_ERROR) {
        fprintf(stderr, "  no give-up line\n");
        bad = 1;
    }
    if (bad)
        log_dump();
    CHECK(!bad);
    close_env();
}

/* The formatters write at most size bytes, always NUL-terminated: text is
 * cut (a prefix of the whole line), JSON is whole or still valid JSON. */
static void test_event_format_truncation(void)
{
    char sup_name[GR_NAME_MAX + 1], child_id[GR_NAME_MAX + 1];
    for (int i = 0; i < GR_NAME_MAX; i++) {
        sup_name[i] = "ab\"c\\"[i % 5];
        child_id[i] = "x\"y\\z\001"[i % 6];
    }
    sup_name[GR_NAME_MAX] = child_id[GR_NAME_MAX] = '\0';
    gr_event ev = {
        .time_ns = UINT64_MAX,
        .supervisor = {UINT64_MAX, UINT32_MAX, UINT32_MAX},
        .sup_name = sup_name,
        .child_id = child_id,
        .child = {UINT64_MAX - 1, UINT32_MAX, UINT32_MAX},
        .reason = {.code = GR_EFAILED,
                   .flags = GR_REASON_IN_HANDLER,
                   .msg_type = 0xdeadbeefu,
                   .detail = INT64_MIN},
        .restarts = UINT32_MAX,
    };
    for (int i = 0; i < GR_REASON_TEXT_MAX; i++)
        ev.reason.text[i] = "q\"\\\n"[i % 4];
    ev.reason.text[GR_REASON_TEXT_MAX] = '\0';
    /* The truncation marker fits from here on. */
    const size_t json_min = 64;
    for (int kind = 0; kind <= GR_EV_GAVE_UP; kind++) {
        ev.kind = (gr_event_kind)kind;
        static char full_text[8192], full_json[8192];
        CHECK(gr_event_format_text(&ev, full_text, sizeof full_text) ==
              full_text);
        CHECK(gr_event_format_json(&ev, full_json, sizeof full_json) ==
              full_json);
        size_t tl = strlen(full_text), jl = strlen(full_json);
        CHECK(tl + 1 < sizeof full_text && jl + 1 < sizeof full_json);
        struct jobj o;
        CHECK(json_parse(full_json, &o));
        CHECK(json_has_keys(&o));
        CHECK(strcmp(j_get(&o, "sup_name"), sup_name) == 0);
        size_t most = (tl > jl ? tl : jl) + 2;
        for (size_t size = 0; size <= most; size++) {
            /* Exactly size bytes (one when 0), so ASan sees any overrun. */
            size_t alloc = size ? size : 1;
            char *buf = malloc(alloc);
            CHECK(buf != NULL);
            memset(buf, 0x7f, alloc);
            char *got = gr_event_format_text(&ev, buf, size);
            int ok = got == buf;
            if (size == 0) {
                ok = ok && (unsigned char)buf[0] == 0x7f;
            } else {
                size_t n = strnlen(buf, size);
                size_t want = tl < size - 1 ? tl : size - 1;
                ok = ok && n == want && memcmp(buf, full_text, n) == 0;
            }
            if (!ok)
                fprintf(stderr, "  text kind %d size %zu: \"%.*s\"\n", kind,
                        size, (int)strnlen(buf, alloc), buf);
            memset(buf, 0x7f, alloc);
            got = gr_event_format_json(&ev, buf, size);
            int jok = got == buf;
            if (size == 0) {
                jok = jok && (unsigned char)buf[0] == 0x7f;
            } else {
                size_t n = strnlen(buf, size);
                jok = jok && n < size;
                if (jok && size > jl)
                    jok = strcmp(buf, full_json) == 0;
                else if (jok && size >= json_min)
                    jok = json_parse(buf, &o);
            }
            if (!jok)
                fprintf(stderr, "  json kind %d size %zu: \"%.*s\"\n", kind,
                        size, (int)strnlen(buf, alloc), buf);
            free(buf);
            CHECK(ok && jok);
        }
    }
}

/* ---- restart storm --------------------------------------------------------
 */

/* Reads the restart count from st (arg unused); a counter for wait_stat. */
static uint64_t stat_restarts(const gr_stats *st, int arg)
{
    (void)arg;
    return st->restarts;
}

/* Memory in use, in bytes: RSS from /proc/self/statm, or, under ASan
 * (whose quarantine RSS would measure), the heap bytes its allocator
 * reports in use. */
static uint64_t mem_in_use(void)
{
#ifdef SUP_ASAN
    return (uint64_t)__sanitizer_get_current_allocated_bytes();
#else
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
#endif
}

/* One permanent worker crashed many times in a row: every crash is
 * restarted, the actor count comes back to exactly supervisor + child +
 * inbox, and memory stays flat after the first thousand crashes. */
static void test_restart_storm(void)
{
    CHECK(open_env(0));
    uint64_t n = scaled(20000, 2000);
    const uint64_t warm = 1000;
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_INIT, NULL);
    gr_child_spec kids[] = {kid_spec("storm", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, (uint32_t)(n + 100), kids, 1);
    gr_ref sup;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &r));
    gr_ref cur = r.self;
    uint64_t restarts0 = stats_of(T.sys).restarts;
    uint64_t mem_warm = 0;
    for (uint64_t i = 0; i < n; i++) {
        int rc = cmd(cur, KID_CRASH, NULL, 0);
        if (rc != GR_OK || !take(REP_INIT, 1, &r) || gr_ref_eq(r.self, cur)) {
            fprintf(stderr, "  crash %llu: send %s\n", (unsigned long long)i,
                    gr_errname(rc));
            CHECK(0);
        }
        cur = r.self;
        if (i + 1 == warm)
            mem_warm = mem_in_use();
    }
    /* The last restart is counted just after the child's init. */
    CHECK_EQ(wait_stat(T.sys, stat_restarts, 0, restarts0 + n) - restarts0, n);
    CHECK_EQ(wait_live(3), 3);
    uint64_t mem_end = mem_in_use();
    fprintf(stderr,
            "  %llu crashes; memory in use after %llu: %llu KiB, at end: "
            "%llu KiB\n",
            (unsigned long long)n, (unsigned long long)warm,
            (unsigned long long)(mem_warm >> 10),
            (unsigned long long)(mem_end >> 10));
    CHECK(mem_end <= mem_warm + (8u << 20));
    gr_child_info info;
    CHECK(child_of(sup, "storm", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    CHECK(gr_ref_eq(info.ref, cur));
    /* Exactly supervisor + child + inbox (the call's inbox is gone). */
    CHECK_EQ(wait_live(3), 3);
    close_env();
}

TEST_MAIN(TEST_CASE(test_shutdown_brutal),
          TEST_CASE(test_shutdown_timeout_kills),
          TEST_CASE(test_shutdown_cooperative),
          TEST_CASE(test_shutdown_infinity),
          TEST_CASE(test_shutdown_default_worker), TEST_CASE(test_start_child),
          TEST_CASE(test_terminate_child),
          TEST_CASE(test_terminate_temporary_removed),
          TEST_CASE(test_restart_child), TEST_CASE(test_delete_child),
          TEST_CASE(test_which_children), TEST_CASE(test_count_children),
          TEST_CASE(test_calls_wrong_thread),
          TEST_CASE(test_calls_dead_supervisor),
          TEST_CASE(test_calls_not_a_supervisor), TEST_CASE(test_async_replies),
          TEST_CASE(test_sofo_spawn), TEST_CASE(test_sofo_restart_same_arg),
          TEST_CASE(test_sofo_transient_normal_removed),
          TEST_CASE(test_sofo_terminate_by_ref), TEST_CASE(test_sofo_stop_all),
          TEST_CASE(test_sofo_malformed), TEST_CASE(test_spec_null_behaviour),
          TEST_CASE(test_spec_duplicate_ids), TEST_CASE(test_spec_bad_shutdown),
          TEST_CASE(test_spec_long_id), TEST_CASE(test_backoff_restarting),
          TEST_CASE(test_restart_retry_succeeds),
          TEST_CASE(test_restart_retry_gives_up), TEST_CASE(test_log_json),
          TEST_CASE(test_log_text), TEST_CASE(test_event_format_truncation),
          TEST_CASE(test_restart_storm))
