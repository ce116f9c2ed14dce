/*
 * The environment of the supervisor API suites (test_sup_shutdown,
 * test_sup_calls, test_sup_restarts): a kid that reports what happens to
 * it and a client that uses the API from callbacks (both probes, see
 * probe.h), an event recorder, and a system with the probes' inbox.
 * Public API only.
 */
#ifndef GROVE_TEST_SUP_API_ENV_H
#define GROVE_TEST_SUP_API_ENV_H

#include <grove/grove.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "helpers.h"
#include "probe.h"

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
    /* To a kid (PROBE_PING answers PROBE_PONG; PROBE_END with GR_STOP
     * exits with reason normal). */
    KID_QUIT = 1, /* Exit with reason shutdown. */
    KID_CRASH,    /* gr_fail(): crash with GR_EFAILED and a text. */
    /* To a client. */
    CL_START = 20, /* struct cl_cmd: start_child_async. */
    CL_SPAWN,      /* struct cl_cmd: spawn_child_async. */
    CL_TERMINATE,  /* struct cl_cmd: terminate_child_async. */
    CL_PROBE,      /* struct cl_cmd: the blocking calls, from a handler. */
    CL_MONITOR,    /* gr_ref: monitors that supervisor; PROBE_RC. */
    /* Reports to the test's inbox, each a struct rep. */
    REP_INIT = 100, /* A kid's init ran. */
    REP_TERM,       /* A kid's terminate ran; code: its reason. */
    REP_EXIT,       /* A trapping kid got an EXIT; code, from. */
    REP_SENT,       /* A client sent an async request; rc. */
    REP_REPLY,      /* A client got a GR_MSG_SUP_REPLY. */
    REP_PROBE,      /* A client's blocking calls: rcs. */
    REP_DOWN,       /* A client got a DOWN; from: target, code. */
};

/* Everything a kid or a client reports; each report fills what it needs. */
struct rep {
    gr_ref self;  /* Filled in by take: who sent the report. */
    gr_ref from;  /* REP_EXIT, REP_REPLY, REP_DOWN. */
    gr_ref child; /* REP_REPLY. */
    uint64_t corr;
    int32_t tag;
    int32_t code;    /* REP_TERM, REP_EXIT, REP_DOWN: the reason's code;
                        REP_REPLY: 1 for a GR_MSG_SUP_REPLY, 0 otherwise. */
    int32_t rc;      /* REP_SENT, REP_REPLY. */
    int32_t read_rc; /* REP_SENT: gr_sup_reply_read on a non-reply. */
    int32_t nrcs;
    int32_t rcs[8]; /* REP_PROBE. */
    char why[160];  /* REP_TERM: gr_reason_format of the reason. */
};

/* ---- the kid: a probe child that reports what happens to it -------------- */

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

/* A kid's argument (its spec's arg, copied by the supervisor). */
struct kid_arg {
    struct shared *sh; /* May be NULL. */
    int32_t tag;
    int32_t trap;    /* TRAP_* */
    int32_t reports; /* R_* bits. */
    int32_t pad;
};

struct kid {
    struct kid_arg a;
};

/* Reports r, tagged with the kid's tag. */
static inline void kid_report(gr_ctx *ctx, const struct kid *k, uint32_t type,
                              struct rep *r)
{
    r->tag = k->a.tag;
    probe_report(ctx, type, r, sizeof *r);
}

static inline int kid_init(gr_ctx *ctx, void *state, const void *arg,
                           size_t len)
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

static inline int kid_quit(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state, (void)m;
    return gr_stop_with(ctx, &(gr_reason){.code = GR_ESHUTDOWN});
}

static inline int kid_crash(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)m;
    gr_fail(ctx, "kid \"%d\" \\ boom", (int)((struct kid *)state)->a.tag);
}

/* An EXIT (the kid traps): reported, then ignored or obeyed. */
static inline int kid_other(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct kid *k = state;
    gr_exit_msg x;
    if (m->type != GR_MSG_EXIT)
        return GR_EUNHANDLED;
    if (gr_exit_read(m, &x) != GR_OK)
        return GR_EINVAL;
    if (k->a.reports & R_EXIT) {
        struct rep r = {.code = x.reason.code, .from = x.from};
        kid_report(ctx, k, REP_EXIT, &r);
    }
    if (k->a.trap == TRAP_OBEY)
        return gr_stop_with(ctx, &x.reason);
    return GR_CONTINUE;
}

static inline void kid_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
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

static const struct probe_step kid_steps[] = {
    {KID_QUIT, kid_quit}, {KID_CRASH, kid_crash}, {0, NULL}};

static const struct probe_script kid_script = {.steps = kid_steps,
                                               .other = kid_other,
                                               .init = kid_init,
                                               .terminate = kid_terminate};
PROBE_BEHAVIOUR(kid_b, "kid", sizeof(struct kid), kid_script);

/* A behaviour without a handle: invalid in any spec. */
static const gr_behaviour no_handle_b = {.name = "no_handle"};

/* ---- the client: a probe that uses the API from callbacks ---------------- */

/* A client command. */
struct cl_cmd {
    gr_ref sup;
    gr_ref child;        /* CL_TERMINATE by reference (id NULL). */
    uint64_t corr;       /* The test's tag for the request and its answer. */
    const char *id;      /* CL_TERMINATE, CL_PROBE. */
    gr_child_spec spec;  /* CL_START, CL_PROBE (its arg must stay valid). */
    struct kid_arg karg; /* CL_SPAWN. */
};

/* How many requests a client remembers: the runtime's corr of each, and
 * the test's tag for it. */
#define CL_PENDING 16

struct client {
    uint64_t corr[CL_PENDING], tag[CL_PENDING];
    unsigned next;
};

/* Calls every blocking supervisor function on sup; stores their codes. */
static inline void probe_blocking(gr_system *sys, gr_ref sup, const char *id,
                                  const gr_child_spec *spec, struct rep *r)
{
    gr_child_info info[4];
    gr_child_counts counts;
    size_t n = 0;
    gr_ref out;
    r->nrcs = 7;
    r->rcs[0] = gr_supervisor_start_child(sys, sup, spec, SUP_WAIT, &out);
    r->rcs[1] = gr_supervisor_spawn_child(sys, sup, NULL, 0, SUP_WAIT, &out);
    r->rcs[2] =
        gr_supervisor_terminate_child(sys, sup, id, GR_REF_NONE, SUP_WAIT);
    r->rcs[3] = gr_supervisor_restart_child(sys, sup, id, SUP_WAIT, &out);
    r->rcs[4] = gr_supervisor_delete_child(sys, sup, id, SUP_WAIT);
    r->rcs[5] = gr_supervisor_which_children(sys, sup, SUP_WAIT, info, 4, &n);
    r->rcs[6] = gr_supervisor_count_children(sys, sup, SUP_WAIT, &counts);
}

/* A client's argument, if any: a supervisor its init calls (REP_PROBE). */
static inline int client_init(gr_ctx *ctx, void *state, const void *arg,
                              size_t len)
{
    (void)state;
    gr_ref sup;
    if (len == 0)
        return GR_OK;
    int rc = read_arg(&sup, sizeof sup, arg, len);
    if (rc != GR_OK)
        return rc;
    /* A spec that would be valid anywhere else. */
    static const struct kid_arg none;
    gr_child_spec spec = {.id = "from_init",
                          .behaviour = &kid_b,
                          .arg = &none,
                          .arg_len = sizeof none};
    struct rep r = {0};
    probe_blocking(gr_ctx_system(ctx), sup, "a", &spec, &r);
    probe_report(ctx, REP_PROBE, &r, sizeof r);
    return GR_OK;
}

/* CL_START, CL_SPAWN, CL_TERMINATE: sends the async request, remembers
 * its corr for the test's tag and reports REP_SENT. */
static inline int client_send(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct client *c = state;
    struct cl_cmd cmd;
    if (!read_payload(m, &cmd, sizeof cmd))
        return GR_EUNHANDLED;
    struct rep r = {.tag = (int32_t)cmd.corr};
    uint64_t corr = 0;
    if (m->type == CL_START)
        r.rc = gr_supervisor_start_child_async(ctx, cmd.sup, &cmd.spec,
                                               GR_DURATION_DEFAULT, &corr);
    else if (m->type == CL_SPAWN)
        r.rc = gr_supervisor_spawn_child_async(ctx, cmd.sup, &cmd.karg,
                                               sizeof cmd.karg,
                                               GR_DURATION_DEFAULT, &corr);
    else
        r.rc = gr_supervisor_terminate_child_async(
            ctx, cmd.sup, cmd.id, cmd.child, GR_DURATION_DEFAULT, &corr);
    r.corr = corr;
    c->corr[c->next] = corr;
    c->tag[c->next] = cmd.corr;
    c->next = (c->next + 1) % CL_PENDING;
    /* A command is not a reply: gr_sup_reply_read must refuse it. */
    gr_sup_reply junk;
    r.read_rc = gr_sup_reply_read(m, &junk);
    probe_report(ctx, REP_SENT, &r, sizeof r);
    return GR_CONTINUE;
}

static inline int client_probe(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    struct cl_cmd cmd;
    if (!read_payload(m, &cmd, sizeof cmd))
        return GR_EUNHANDLED;
    struct rep r = {.tag = (int32_t)cmd.corr};
    probe_blocking(gr_ctx_system(ctx), cmd.sup, cmd.id, &cmd.spec, &r);
    probe_report(ctx, REP_PROBE, &r, sizeof r);
    return GR_CONTINUE;
}

static inline int client_monitor(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    gr_ref sup;
    if (!read_payload(m, &sup, sizeof sup))
        return GR_EUNHANDLED;
    probe_report_rc(ctx, gr_monitor(ctx, sup, NULL));
    return GR_CONTINUE;
}

/* Answers to the client's requests (REP_REPLY, tagged with the test's tag
 * for the request) and DOWNs (REP_DOWN). */
static inline int client_other(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct client *c = state;
    struct rep r = {0};
    if (m->flags & GR_MSG_REPLY) {
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
        probe_report(ctx, REP_REPLY, &r, sizeof r);
        return GR_CONTINUE;
    }
    if (m->type == GR_MSG_DOWN) {
        gr_down d;
        r.read_rc = gr_down_read(m, &d);
        r.from = d.target;
        r.code = d.reason.code;
        probe_report(ctx, REP_DOWN, &r, sizeof r);
        return GR_CONTINUE;
    }
    return GR_EUNHANDLED;
}

static const struct probe_step client_steps[] = {
    {CL_START, client_send},      {CL_SPAWN, client_send},
    {CL_TERMINATE, client_send},  {CL_PROBE, client_probe},
    {CL_MONITOR, client_monitor}, {0, NULL}};

static const struct probe_script client_script = {
    .steps = client_steps, .other = client_other, .init = client_init};
PROBE_BEHAVIOUR(client_b, "client", sizeof(struct client), client_script);

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

static inline void ev_reset(void)
{
    pthread_mutex_lock(&evl.lock);
    evl.n = 0;
    pthread_mutex_unlock(&evl.lock);
}

/* The event_fn: records a supervisor event (not actors' own events). */
static inline void ev_fn(void *arg, const gr_event *ev)
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
static inline int ev_nth(gr_event_kind kind, const char *id, unsigned k,
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
static inline unsigned ev_count(gr_event_kind kind, const char *id)
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
static inline unsigned ev_wait(gr_event_kind kind, const char *id,
                               unsigned want)
{
    double end = test_now() + WAIT_MS / 1000.0;
    unsigned n;
    while ((n = ev_count(kind, id)) < want && test_now() < end)
        sleep_us(200);
    return n;
}

/* ---- the test's environment: a system and the probes' inbox ------------ */

static struct env T;

/* Opens a system from cfg and the inbox the probes report to. */
static inline int open_cfg(gr_config *cfg)
{
    if (!env_open(&T, cfg))
        return 0;
    probe_attach(&T);
    return 1;
}

/* The log lines of the case's system. */
static struct capture T_log;

/* Opens a quiet two-worker system; with_events records events. */
static inline int open_env(int with_events)
{
    capture_init(&T_log);
    gr_config cfg = {
        .workers = 2, .log_fn = capture_fn, .log_arg = &T_log, .no_signals = 1};
    if (with_events) {
        ev_reset();
        cfg.event_fn = ev_fn;
    }
    return open_cfg(&cfg);
}

/* Closes the inbox and shuts the system down. */
static inline void close_env(void)
{
    probe_close(&T);
}

#define ANY_TAG INT32_MIN

/* What a take wants: a report of type, from tag (unless ANY_TAG), sent by
 * who (unless GR_REF_NONE). */
struct want {
    uint32_t type;
    int32_t tag;
    gr_ref who;
};

static inline int rep_wanted(const gr_msg *m, const void *arg)
{
    const struct want *w = arg;
    struct rep r;
    return m->type == w->type &&
           (gr_ref_is_none(w->who) || gr_ref_eq(m->from, w->who)) &&
           (w->tag == ANY_TAG ||
            (read_payload(m, &r, sizeof r) && r.tag == w->tag));
}

/* Takes the first report of type (from tag, unless ANY_TAG; sent by who,
 * unless GR_REF_NONE), waiting up to ms for it; others are kept for later.
 * Returns 1 with it in *out (self: its sender), or 0. */
static inline int take_x(uint32_t type, int32_t tag, gr_ref who,
                         struct rep *out, int ms)
{
    struct want w = {type, tag, who};
    gr_msg *m;
    if (!probe_take_match(rep_wanted, &w, ms, &m))
        return 0;
    if (out != NULL) {
        if (!read_payload(m, out, sizeof *out))
            memset(out, 0, sizeof *out);
        out->self = m->from;
    }
    gr_msg_free(m);
    return 1;
}

/* Takes a report of type from tag (or ANY_TAG) within WAIT_MS. */
static inline int take(uint32_t type, int32_t tag, struct rep *out)
{
    int ok = take_x(type, tag, GR_REF_NONE, out, WAIT_MS);
    if (!ok)
        fprintf(stderr, "  no report of type %u (tag %d) came\n",
                (unsigned)type, (int)tag);
    return ok;
}

/* Takes a report of type sent by who within WAIT_MS. */
static inline int take_from(uint32_t type, gr_ref who)
{
    int ok = take_x(type, ANY_TAG, who, NULL, WAIT_MS);
    if (!ok)
        fprintf(stderr, "  no report of type %#x from actor %llu came\n",
                (unsigned)type, (unsigned long long)who.serial);
    return ok;
}

/* Takes who's PROBE_RC report within WAIT_MS; returns 1 with its code in
 * *rc. */
static inline int take_rc(gr_ref who, int32_t *rc)
{
    struct want w = {PROBE_RC, ANY_TAG, who};
    gr_msg *m;
    if (!probe_take_match(rep_wanted, &w, WAIT_MS, &m)) {
        fprintf(stderr, "  no return code from actor %llu came\n",
                (unsigned long long)who.serial);
        return 0;
    }
    int ok = read_payload(m, rc, sizeof *rc);
    gr_msg_free(m);
    return ok;
}

/* Returns 1 if no report of type from tag arrives within ms. */
static inline int none_within(uint32_t type, int32_t tag, int ms)
{
    struct rep r;
    if (!take_x(type, tag, GR_REF_NONE, &r, ms))
        return 1;
    fprintf(stderr, "  unexpected report of type %u (tag %d)\n", (unsigned)type,
            (int)r.tag);
    return 0;
}

/* Actors alive now (inboxes included). */
static inline int64_t live(void)
{
    gr_stats st = stats_of(T.sys);
    return (int64_t)(st.spawned - st.exited);
}

/* Waits up to WAIT_MS for live() to reach want; returns the last value. */
static inline int64_t wait_live(int64_t want)
{
    double end = test_now() + WAIT_MS / 1000.0;
    int64_t n;
    while ((n = live()) != want && test_now() < end)
        sleep_ms(1);
    return n;
}

/* ---- specs ----------------------------------------------------------------
 */

static inline struct kid_arg kid_arg(int32_t tag, int32_t trap, int32_t reports,
                                     struct shared *sh)
{
    return (struct kid_arg){
        .sh = sh, .tag = tag, .trap = trap, .reports = reports};
}

static inline gr_child_spec kid_spec(const char *id, const struct kid_arg *a,
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

static inline gr_sup_spec sup_spec(gr_strategy strategy, uint32_t intensity,
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
static inline long which(gr_ref sup, gr_child_info *out)
{
    size_t n = 0;
    int rc =
        gr_supervisor_which_children(T.sys, sup, SUP_WAIT, out, WHICH_MAX, &n);
    return rc != GR_OK ? rc : (long)n;
}

/* Finds child id among sup's children; returns 1 with it in *out. */
static inline int child_of(gr_ref sup, const char *id, gr_child_info *out)
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
static inline long nspecs(gr_ref sup)
{
    gr_child_counts c;
    int rc = gr_supervisor_count_children(T.sys, sup, SUP_WAIT, &c);
    return rc != GR_OK ? rc : (long)c.specs;
}

/* Waits up to WAIT_MS for sup's spec count to be want. */
static inline long wait_specs(gr_ref sup, long want)
{
    double end = test_now() + WAIT_MS / 1000.0;
    long n;
    while ((n = nspecs(sup)) != want && test_now() < end)
        sleep_ms(1);
    return n;
}

/* Waits up to WAIT_MS for sup to be gone (its calls answer GR_ENOACTOR). */
static inline int wait_gone(gr_ref sup)
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
static inline int stop_sup(gr_ref sup)
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

static inline void *term_thread(void *p)
{
    struct term_call *t = p;
    t->rc = gr_supervisor_terminate_child(t->sys, t->sup, t->id, GR_REF_NONE,
                                          SUP_WAIT);
    t->terms_at_return = atomic_load(&t->sh->terms);
    atomic_store(&t->done, 1);
    return NULL;
}

/* Waits up to ms for the helper thread to return; joins it if it did. */
static inline int term_wait(struct term_call *t, int ms)
{
    double end = test_now() + ms / 1000.0;
    while (!atomic_load(&t->done) && test_now() < end)
        sleep_ms(1);
    if (!atomic_load(&t->done))
        return 0;
    pthread_join(t->th, NULL);
    return 1;
}

#endif
