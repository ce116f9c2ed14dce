/*
 * The environment of the timer suite (test_timer): the timer actor that
 * starts, cancels and counts timers on command, the crowd (a thousand
 * timers, half cancelled) and the racer (starts and cancels racing with
 * firings), all three probes (tests/probe.h) whose scripts take the timer
 * messages in their catch-all, and helpers. Public API only; every wait is
 * bounded.
 */
#ifndef GROVE_TEST_TIMER_ENV_H
#define GROVE_TEST_TIMER_ENV_H

#include <grove/grove.h>

#include <stdint.h>
#include <time.h>

#include "helpers.h"
#include "probe.h"

enum {
    /* Commands to the timer actor (tm_b), told by the test (probe_tell). */
    C_START = 1, /* struct start_cmd: one timer; reports R_STARTED. */
    C_CANCEL,    /* uint64_t id: reports R_CANCELLED. */
    C_QUEUE,     /* struct queue_cmd: start, let queue, cancel; R_QUEUED. */
    C_MANY,      /* struct many_cmd: many timers; reports R_STARTED. */
    C_HOLD,      /* struct hold_cmd: wait, report R_DEPTH, end as told. */
    C_BAD,       /* uint64_t max_payload: bad arguments; reports R_BAD. */
    C_SPAWN,     /* struct tm_arg: gr_spawn a tm_b child (init on a worker);
                  * reports PROBE_RC. */
    C_FLOOD,     /* Reports R_FLOODING, then starts timers until refused. */
    /* Commands to the crowd and racer actors. */
    C_CROWD,  /* struct crowd_cmd */
    C_RACE,   /* struct race_cmd */
    C_BATCH,  /* A racer's next batch, sent to itself. */
    C_REPORT, /* Report the counts (R_COUNTS). */
    /* Timer message types (never a step: the scripts' catch-alls take
     * them). */
    T_TICK = 50,
    T_OTHER = 51,
    /* Reports to the test's inbox. */
    R_STARTED = 100, /* struct started */
    R_FIRED,         /* struct fired */
    R_CANCELLED,     /* struct cancelled */
    R_QUEUED,        /* struct queued */
    R_DEPTH,         /* uint64_t: C_HOLD's own mailbox depth as it ends. */
    R_FLOODING,      /* (empty) */
    R_BAD,           /* struct bad */
    R_TERM,          /* struct term */
    R_COUNTS,        /* struct counts */
};

/* The payload of a timer that carries one: the tag, then a pattern derived
 * from it, so a copy taken too late (after the buffer was scribbled on) or
 * from the wrong timer shows. */
#define TICK_FILL 56
struct tick {
    uint64_t tag;
    uint8_t fill[TICK_FILL];
};

static inline void tick_fill(struct tick *t, uint64_t tag)
{
    t->tag = tag;
    for (unsigned i = 0; i < TICK_FILL; i++)
        t->fill[i] = (uint8_t)(tag * 31u + i * 7u + 1u);
}

static inline int tick_ok(const struct tick *t)
{
    struct tick want;
    tick_fill(&want, t->tag);
    return memcmp(t, &want, sizeof want) == 0;
}

/* Monotonic nanoseconds, for lower bounds compared in integers. */
static inline uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the timer actor ----------------------------------------------------- */

/* C_START: one timer of the given type, after (or every) ms; payload a
 * struct tick with tag, or none when empty. */
struct start_cmd {
    uint64_t ms, tag;
    uint32_t type;
    int32_t every, empty;
};

struct started {
    int32_t rc;
    uint32_t count; /* C_MANY: timers started. */
    uint64_t id;
    uint64_t t0_ns; /* Taken just before the start call. */
};

struct fired {
    uint64_t corr, tag, len;
    uint32_t type, flags;
    gr_ref from, to, self;
    int32_t data_ok; /* The payload is intact (or NULL when empty). */
    uint64_t t_ns;
};

struct cancelled {
    int32_t rc;
    uint64_t id;
};

/* C_QUEUE: in one handler call, n_once one-shots after 1 ms, then n_every
 * periodic timers every 1 ms (tags tag + index); waits until their messages
 * are queued behind the call; cancels those whose bit is in cancel_mask. */
#define QUEUE_MAX 16
struct queue_cmd {
    uint32_t n_once, n_every, cancel_mask;
    uint64_t tag;
};

struct queued {
    int32_t rc_start;
    int32_t rc_cancel[QUEUE_MAX];
    uint64_t id[QUEUE_MAX];
    uint64_t depth_once, depth_all; /* Own mailbox depth seen. */
};

/* C_MANY: n_once one-shots after once_ms + k * once_step, and n_every
 * periodic timers every every_ms; tags from tag. */
struct many_cmd {
    uint32_t n_once, n_every;
    uint64_t once_ms, once_step, every_ms, tag;
};

/* How C_HOLD ends the handler (END_CRASH: with PROBE_CRASH). */
enum { END_CONTINUE, END_STOP, END_CRASH, END_FAIL };

/* C_HOLD: optionally wait at the probe's gate (reporting PROBE_BLOCKED);
 * then wait until the own mailbox holds wait_depth messages and report
 * R_DEPTH; then end as `end` says, all in one handler call. */
struct hold_cmd {
    int32_t gate;
    uint32_t wait_depth;
    int32_t end;
};

struct bad {
    int32_t rc[16];
};

/* Spawn argument of tm_b (optional). */
struct tm_arg {
    int32_t init_timers; /* init starts two timers and reports them. */
    int32_t init_fail;   /* init then fails. */
    int32_t term_report; /* terminate reports R_TERM. */
    int32_t term_timers; /* terminate starts timers first. */
};

struct term {
    int32_t why;
    int32_t rc_after, rc_every;
};

struct tm_state {
    struct tm_arg arg;
};

/* What terminates that started timers saw (for shutdown, where the inbox
 * is closed): how many ran, and their last codes. relaxed: read after
 * gr_system_shutdown() has joined the threads. */
static atomic_int term_count;
static atomic_int term_rc_after, term_rc_every;
/* What C_FLOOD saw: the code that stopped it and how many it started. */
static atomic_int flood_rc;
static atomic_uint flood_n;

/* Most timers C_FLOOD starts, should shutdown never refuse them. */
#define FLOOD_MAX 1000000u
/* Shutdowns during a flood in test_shutdown_pending. */
#define FLOOD_ROUNDS 20

/* The depth of r's mailbox as gr_system_stats lists it (0 when not among
 * the deepest). */
static inline uint64_t depth_of(gr_system *sys, gr_ref r)
{
    gr_stats st;
    gr_system_stats(sys, &st);
    for (int i = 0; i < GR_STATS_DEEPEST; i++)
        if (gr_ref_eq(st.deepest[i].actor, r))
            return st.deepest[i].depth;
    return 0;
}

/* In a handler: waits up to WAIT_MS until the own mailbox holds want
 * messages; returns the depth last seen. */
static inline uint64_t wait_own_depth(gr_ctx *ctx, uint64_t want)
{
    double end = test_now() + WAIT_MS / 1000.0;
    uint64_t d;
    while ((d = depth_of(gr_ctx_system(ctx), gr_self(ctx))) < want &&
           test_now() < end)
        sleep_us(200);
    return d;
}

/* Starts one timer; a payload (when not empty) is built on the stack and
 * scribbled over once the call returns, so only a copy can arrive. */
static inline int start_one(gr_ctx *ctx, const struct start_cmd *s,
                            uint64_t *id)
{
    struct tick t;
    tick_fill(&t, s->tag);
    const void *p = s->empty ? NULL : &t;
    size_t len = s->empty ? 0 : sizeof t;
    int rc = s->every ? gr_timer_every(ctx, s->ms, s->type, p, len, id)
                      : gr_timer_after(ctx, s->ms, s->type, p, len, id);
    memset(&t, 0xee, sizeof t);
    return rc;
}

static inline int tm_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    struct tm_state *s = state;
    if (arg == NULL)
        return GR_OK;
    int rc = read_arg(&s->arg, sizeof s->arg, arg, len);
    if (rc != GR_OK || !s->arg.init_timers)
        return rc;
    /* Tags 900 (0 ms) and 901 (30 ms). */
    for (uint64_t k = 0; k < 2; k++) {
        struct start_cmd c = {.ms = k * 30, .tag = 900 + k, .type = T_TICK};
        struct started st = {.t0_ns = mono_ns()};
        st.rc = start_one(ctx, &c, &st.id);
        probe_report(ctx, R_STARTED, &st, sizeof st);
    }
    return s->arg.init_fail ? GR_EINVAL : GR_OK;
}

/* The catch-all: a timer's message (T_TICK, T_OTHER), reported as the
 * handler saw it. */
static inline int tm_fired(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    if (m->type != T_TICK && m->type != T_OTHER)
        return GR_EUNHANDLED;
    struct fired f = {.corr = m->corr,
                      .len = m->len,
                      .type = m->type,
                      .flags = m->flags,
                      .from = m->from,
                      .to = m->to,
                      .self = gr_self(ctx),
                      .t_ns = mono_ns()};
    struct tick t;
    if (m->len == 0) {
        f.data_ok = m->data == NULL;
        f.tag = UINT64_MAX;
    } else if (read_payload(m, &t, sizeof t)) {
        f.data_ok = tick_ok(&t);
        f.tag = t.tag;
    }
    probe_report(ctx, R_FIRED, &f, sizeof f);
    return GR_CONTINUE;
}

/* Its steps, one per command. */

static inline int tm_start(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    struct start_cmd s;
    if (!read_payload(m, &s, sizeof s))
        return GR_EUNHANDLED;
    struct started st = {.t0_ns = mono_ns()};
    st.rc = start_one(ctx, &s, &st.id);
    probe_report(ctx, R_STARTED, &st, sizeof st);
    return GR_CONTINUE;
}

static inline int tm_cancel(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    struct cancelled r;
    if (!read_payload(m, &r.id, sizeof r.id))
        return GR_EUNHANDLED;
    r.rc = gr_timer_cancel(ctx, r.id);
    probe_report(ctx, R_CANCELLED, &r, sizeof r);
    return GR_CONTINUE;
}

static inline int tm_many(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    struct many_cmd c;
    if (!read_payload(m, &c, sizeof c))
        return GR_EUNHANDLED;
    struct started out = {.rc = GR_OK};
    for (uint32_t k = 0; k < c.n_once + c.n_every; k++) {
        int every = k >= c.n_once;
        struct start_cmd s = {.ms = every ? c.every_ms
                                          : c.once_ms + k * c.once_step,
                              .tag = c.tag + k,
                              .type = T_TICK,
                              .every = every};
        int rc = start_one(ctx, &s, NULL);
        if (rc != GR_OK)
            out.rc = rc;
        else
            out.count++;
    }
    probe_report(ctx, R_STARTED, &out, sizeof out);
    return GR_CONTINUE;
}

static inline int tm_queue(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    struct queue_cmd c;
    if (!read_payload(m, &c, sizeof c))
        return GR_EUNHANDLED;
    struct queued q = {.rc_start = GR_OK};
    uint32_t n = c.n_once + c.n_every;
    if (n > QUEUE_MAX)
        return GR_EINVAL;
    for (uint32_t k = 0; k < n; k++) {
        struct start_cmd s = {
            .ms = 1, .tag = c.tag + k, .type = T_TICK, .every = k >= c.n_once};
        int rc = start_one(ctx, &s, &q.id[k]);
        if (rc != GR_OK)
            q.rc_start = rc;
        /* All one-shots queued first, so each is surely in the mailbox. */
        if (k + 1 == c.n_once)
            q.depth_once = wait_own_depth(ctx, c.n_once);
    }
    /* Then several messages per periodic timer. */
    double until = test_now() + 0.010;
    while (test_now() < until)
        sleep_us(500);
    q.depth_all = wait_own_depth(ctx, c.n_once + 4 * c.n_every);
    for (uint32_t k = 0; k < n; k++)
        if (c.cancel_mask >> k & 1)
            q.rc_cancel[k] = gr_timer_cancel(ctx, q.id[k]);
    probe_report(ctx, R_QUEUED, &q, sizeof q);
    return GR_CONTINUE;
}

static inline int tm_hold(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    struct hold_cmd h;
    if (!read_payload(m, &h, sizeof h))
        return GR_EUNHANDLED;
    if (h.gate)
        probe_block_here(ctx);
    uint64_t depth = wait_own_depth(ctx, h.wait_depth);
    probe_report(ctx, R_DEPTH, &depth, sizeof depth);
    switch (h.end) {
    case END_STOP:
        return GR_STOP;
    case END_CRASH:
        return PROBE_CRASH;
    case END_FAIL:
        gr_fail(ctx, "told to fail");
    default:
        return GR_CONTINUE;
    }
}

/* C_BAD: every refused call, with the system's max_payload given (0: skip
 * the size cases). A refused start must start nothing: all use 1 ms, so a timer
 * started by mistake would show within the test's quiet period. */
static inline int tm_bad(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    uint64_t max_payload;
    if (!read_payload(m, &max_payload, sizeof max_payload))
        return GR_EUNHANDLED;
    static unsigned char big[4096];
    struct bad b;
    uint64_t v = 1, id;
    int i = 0;
    memset(&b, 0, sizeof b);
    b.rc[i++] = gr_timer_after(ctx, 1, GR_MSG_RESERVED, NULL, 0, &id);
    b.rc[i++] = gr_timer_after(ctx, 1, UINT32_MAX, &v, sizeof v, &id);
    b.rc[i++] = gr_timer_every(ctx, 1, GR_MSG_RESERVED + 1, NULL, 0, &id);
    b.rc[i++] = gr_timer_after(ctx, 1, T_TICK, NULL, 4, &id);
    b.rc[i++] = gr_timer_after(ctx, 1, T_TICK, &v, 0, &id);
    b.rc[i++] = gr_timer_every(ctx, 1, T_TICK, NULL, 4, &id);
    b.rc[i++] = gr_timer_every(ctx, 1, T_TICK, &v, 0, &id);
    b.rc[i++] = gr_timer_every(ctx, 0, T_TICK, &v, sizeof v, &id);
    b.rc[i++] = gr_timer_cancel(ctx, 0);
    if (max_payload > 0 && max_payload < sizeof big) {
        b.rc[i++] = gr_timer_after(ctx, 1, T_TICK, big, max_payload + 1, &id);
        b.rc[i++] = gr_timer_every(ctx, 1, T_TICK, big, max_payload + 1, &id);
        /* Exactly the limit is fine; cancelled at once. */
        b.rc[i++] = gr_timer_after(ctx, 1, T_TICK, big, max_payload, &id);
        b.rc[i++] = gr_timer_cancel(ctx, id);
    }
    probe_report(ctx, R_BAD, &b, sizeof b);
    return GR_CONTINUE;
}

/* Runs until shutdown refuses a start (or a bound), so that the last
 * starts are surely still on their way to the I/O loop when it stops. */
static inline int tm_flood(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state, (void)m;
    probe_report(ctx, R_FLOODING, NULL, 0);
    double end = test_now() + WAIT_MS / 1000.0;
    unsigned n = 0;
    int rc = GR_OK;
    uint64_t v = 0;
    while (rc == GR_OK && n < FLOOD_MAX && test_now() < end)
        if ((rc = gr_timer_after(ctx, 60000, T_TICK, &v, sizeof v, NULL)) ==
            GR_OK)
            n++;
    atomic_store(&flood_rc, rc);
    atomic_store(&flood_n, n);
    return GR_CONTINUE;
}

static const gr_behaviour tm_b;

static inline int tm_spawn(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    struct tm_arg a;
    if (!read_payload(m, &a, sizeof a))
        return GR_EUNHANDLED;
    probe_report_rc(ctx, gr_spawn(ctx, &tm_b, &a, sizeof a, NULL));
    return GR_CONTINUE;
}

static inline void tm_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    struct tm_state *s = state;
    struct term t = {.why = why->code};
    if (s->arg.term_timers) {
        t.rc_after = gr_timer_after(ctx, 0, T_TICK, NULL, 0, NULL);
        t.rc_every = gr_timer_every(ctx, 1, T_TICK, NULL, 0, NULL);
        atomic_store_explicit(&term_rc_after, t.rc_after, memory_order_relaxed);
        atomic_store_explicit(&term_rc_every, t.rc_every, memory_order_relaxed);
        atomic_fetch_add_explicit(&term_count, 1, memory_order_relaxed);
    }
    if (s->arg.term_report)
        probe_report(ctx, R_TERM, &t, sizeof t);
}

static const struct probe_step tm_steps[] = {
    {C_START, tm_start}, {C_CANCEL, tm_cancel}, {C_QUEUE, tm_queue},
    {C_MANY, tm_many},   {C_HOLD, tm_hold},     {C_BAD, tm_bad},
    {C_SPAWN, tm_spawn}, {C_FLOOD, tm_flood},   {0, NULL}};

static const struct probe_script tm_script = {.steps = tm_steps,
                                              .other = tm_fired,
                                              .init = tm_init,
                                              .terminate = tm_terminate};
PROBE_BEHAVIOUR(tm_b, "timers", sizeof(struct tm_state), tm_script);

/* ---- the crowd: a thousand timers, half cancelled ------------------------ */

#define CROWD_MAX 1000

/* C_CROWD: n one-shots with delays 1..max_ms drawn from seed; half chosen
 * at random for cancelling, half of those at once and the rest one by one
 * as messages are handled (by then some have fired, some are queued). */
struct crowd_cmd {
    uint64_t seed;
    uint32_t n, max_ms;
};

/* What crowds and racers report. */
struct counts {
    int32_t done;
    uint32_t handled;  /* Distinct one-shots handled. */
    uint32_t expected; /* One-shots started and not cancelled. */
    uint32_t cancelled;
    uint32_t bad_start;  /* A start failed. */
    uint32_t bad_msg;    /* Unknown timer, corr not its id, bad payload. */
    uint32_t bad_cancel; /* A cancelled timer's message was handled. */
    uint32_t bad_dup;    /* A one-shot handled twice. */
    uint32_t bad_rc;     /* A cancel gave the wrong code. */
    uint32_t early;      /* Handled before its delay. */
    uint32_t every_msgs; /* Periodic messages handled (racer). */
};

enum { K_KEEP, K_NOW, K_LATER };

struct crowd {
    uint32_t n;
    uint64_t ids[CROWD_MAX];
    uint64_t due_ns[CROWD_MAX]; /* Start time + delay: the lower bound. */
    uint8_t want[CROWD_MAX];    /* K_* */
    uint8_t cancelled[CROWD_MAX], handled[CROWD_MAX];
    uint32_t later[CROWD_MAX], nlater, next_later;
    struct counts c;
};

static inline uint64_t rng_next(uint64_t *s)
{
    /* xorshift64 */
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Cancels crowd timer k, checking the code against what the crowd knows. */
static inline void crowd_cancel(gr_ctx *ctx, struct crowd *s, uint32_t k)
{
    int rc = gr_timer_cancel(ctx, s->ids[k]);
    /* A one-shot is live until its message is handled. */
    int want = s->handled[k] ? GR_ENOTFOUND : GR_OK;
    if (rc != want)
        s->c.bad_rc++;
    if (rc == GR_OK) {
        s->cancelled[k] = 1;
        s->c.cancelled++;
        s->c.expected--;
    }
}

/* C_CROWD: starts the crowd. */
static inline int crowd_start(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct crowd *s = state;
    struct crowd_cmd c;
    if (!read_payload(m, &c, sizeof c) || c.n > CROWD_MAX || c.max_ms == 0)
        return GR_EUNHANDLED;
    uint64_t rng = c.seed | 1;
    s->n = c.n;
    for (uint64_t k = 0; k < c.n; k++) {
        uint64_t ms = 1 + rng_next(&rng) % c.max_ms;
        uint64_t r = rng_next(&rng) % 4;
        s->want[k] = r == 0 ? K_NOW : r == 1 ? K_LATER : K_KEEP;
        s->due_ns[k] = mono_ns() + ms * 1000000u;
        if (gr_timer_after(ctx, ms, T_TICK, &k, sizeof k, &s->ids[k]) != GR_OK)
            s->c.bad_start++;
        else
            s->c.expected++;
        if (s->want[k] == K_NOW)
            crowd_cancel(ctx, s, (uint32_t)k);
        else if (s->want[k] == K_LATER)
            s->later[s->nlater++] = (uint32_t)k;
    }
    /* The later ones go in random order. */
    for (uint32_t i = s->nlater; i > 1; i--) {
        uint32_t j = (uint32_t)(rng_next(&rng) % i), t = s->later[i - 1];
        s->later[i - 1] = s->later[j];
        s->later[j] = t;
    }
    s->c.done = 1;
    return GR_CONTINUE;
}

static inline int crowd_report(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)m;
    const struct crowd *s = state;
    probe_report(ctx, R_COUNTS, &s->c, sizeof s->c);
    return GR_CONTINUE;
}

/* The catch-all: a crowd timer's message (T_TICK); cancels the next
 * later one. */
static inline int crowd_tick(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct crowd *s = state;
    if (m->type != T_TICK)
        return GR_EUNHANDLED;
    uint64_t k, now = mono_ns();
    if (!read_payload(m, &k, sizeof k) || k >= s->n || m->corr != s->ids[k] ||
        m->flags != GR_MSG_TIMER) {
        s->c.bad_msg++;
        return GR_CONTINUE;
    }
    if (s->cancelled[k])
        s->c.bad_cancel++;
    if (s->handled[k])
        s->c.bad_dup++;
    if (now < s->due_ns[k])
        s->c.early++;
    if (!s->handled[k] && !s->cancelled[k])
        s->c.handled++;
    s->handled[k] = 1;
    if (s->next_later < s->nlater)
        crowd_cancel(ctx, s, s->later[s->next_later++]);
    return GR_CONTINUE;
}

static const struct probe_step crowd_steps[] = {
    {C_CROWD, crowd_start}, {C_REPORT, crowd_report}, {0, NULL}};

static const struct probe_script crowd_script = {.steps = crowd_steps,
                                                 .other = crowd_tick};
PROBE_BEHAVIOUR(crowd_b, "crowd", sizeof(struct crowd), crowd_script);

/* ---- the racer: starts and cancels racing with firings ------------------- */

/* C_RACE: batches of starts (one-shots after 0..2 ms, now and then a
 * periodic one every 1 ms), each batch one handler call, the next sent to
 * itself so that timer messages are handled in between. Each timer is
 * cancelled at once, later (a random pending one, from any batch, every
 * other start), or never (one-shots only). */
struct race_cmd {
    uint32_t batches, per_batch;
    uint64_t seed;
    uint32_t spin_us; /* Busy time after each start. */
};

/* Racer timer state bits. */
#define RT_EVERY     1u
#define RT_CANCELLED 2u
#define RT_HANDLED   4u

struct racer {
    struct race_cmd cmd;
    uint32_t n, next, batches_done;
    uint64_t rng;
    uint64_t *ids;
    uint8_t *st;
    uint32_t *later; /* Pending later cancels (unordered). */
    uint32_t nlater;
    struct counts c;
};

static inline void racer_cancel(gr_ctx *ctx, struct racer *s, uint32_t k)
{
    int rc = gr_timer_cancel(ctx, s->ids[k]);
    int dead = (s->st[k] & RT_CANCELLED) ||
               (!(s->st[k] & RT_EVERY) && (s->st[k] & RT_HANDLED));
    if (rc != (dead ? GR_ENOTFOUND : GR_OK))
        s->c.bad_rc++;
    if (rc == GR_OK) {
        s->st[k] |= RT_CANCELLED;
        s->c.cancelled++;
        if (!(s->st[k] & RT_EVERY))
            s->c.expected--;
    }
}

/* Cancels a random pending later one. */
static inline void racer_cancel_later(gr_ctx *ctx, struct racer *s)
{
    if (s->nlater == 0)
        return;
    uint32_t i = (uint32_t)(rng_next(&s->rng) % s->nlater);
    uint32_t k = s->later[i];
    s->later[i] = s->later[--s->nlater];
    racer_cancel(ctx, s, k);
}

static inline void racer_batch(gr_ctx *ctx, struct racer *s)
{
    for (uint32_t i = 0; i < s->cmd.per_batch && s->next < s->n; i++) {
        uint64_t k = s->next++;
        uint64_t r = rng_next(&s->rng);
        int every = r % 64 == 0;
        int rc = every
                     ? gr_timer_every(ctx, 1, T_TICK, &k, sizeof k, &s->ids[k])
                     : gr_timer_after(ctx, (r >> 8) % 3, T_TICK, &k, sizeof k,
                                      &s->ids[k]);
        if (rc != GR_OK) {
            s->c.bad_start++;
            s->st[k] = RT_CANCELLED; /* Nothing may come. */
            continue;
        }
        s->st[k] = every ? RT_EVERY : 0;
        if (!every)
            s->c.expected++;
        /* Periodic ones are always cancelled, one-shots half the time. */
        unsigned how = (unsigned)(r >> 16) % (every ? 2 : 4);
        if (how == 0)
            racer_cancel(ctx, s, (uint32_t)k);
        else if (how == 1)
            s->later[s->nlater++] = (uint32_t)k;
        if (i % 2)
            racer_cancel_later(ctx, s);
        if (s->cmd.spin_us) {
            double until = test_now() + s->cmd.spin_us / 1e6;
            while (test_now() < until)
                ;
        }
    }
    if (++s->batches_done < s->cmd.batches) {
        (void)gr_tell(ctx, gr_self(ctx), C_BATCH, NULL, 0);
        return;
    }
    while (s->nlater > 0)
        racer_cancel_later(ctx, s);
    s->c.done = 1;
}

/* C_RACE: starts the race with the first batch. */
static inline int racer_start(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct racer *s = state;
    if (!read_payload(m, &s->cmd, sizeof s->cmd) || s->ids != NULL)
        return GR_EUNHANDLED;
    s->n = s->cmd.batches * s->cmd.per_batch;
    s->rng = s->cmd.seed | 1;
    s->ids = calloc(s->n, sizeof *s->ids);
    s->st = calloc(s->n, 1);
    s->later = calloc(s->n, sizeof *s->later);
    if (s->ids == NULL || s->st == NULL || s->later == NULL)
        return GR_ENOMEM;
    racer_batch(ctx, s);
    return GR_CONTINUE;
}

static inline int racer_next(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)m;
    racer_batch(ctx, state);
    return GR_CONTINUE;
}

static inline int racer_report(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)m;
    const struct racer *s = state;
    probe_report(ctx, R_COUNTS, &s->c, sizeof s->c);
    return GR_CONTINUE;
}

/* The catch-all: a racer timer's message (T_TICK). */
static inline int racer_tick(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx;
    struct racer *s = state;
    if (m->type != T_TICK)
        return GR_EUNHANDLED;
    uint64_t k;
    if (!read_payload(m, &k, sizeof k) || k >= s->next ||
        m->corr != s->ids[k] || m->flags != GR_MSG_TIMER) {
        s->c.bad_msg++;
        return GR_CONTINUE;
    }
    if (s->st[k] & RT_CANCELLED)
        s->c.bad_cancel++;
    else if (s->st[k] & RT_EVERY)
        s->c.every_msgs++;
    else if (s->st[k] & RT_HANDLED)
        s->c.bad_dup++;
    else
        s->c.handled++;
    s->st[k] |= RT_HANDLED;
    return GR_CONTINUE;
}

static inline void racer_terminate(gr_ctx *ctx, void *state,
                                   const gr_reason *why)
{
    (void)ctx;
    (void)why;
    struct racer *s = state;
    free(s->ids);
    free(s->st);
    free(s->later);
}

static const struct probe_step racer_steps[] = {{C_RACE, racer_start},
                                                {C_BATCH, racer_next},
                                                {C_REPORT, racer_report},
                                                {0, NULL}};

static const struct probe_script racer_script = {
    .steps = racer_steps, .other = racer_tick, .terminate = racer_terminate};
PROBE_BEHAVIOUR(racer_b, "racer", sizeof(struct racer), racer_script);

/* ---- helpers ------------------------------------------------------------- */

static struct env E;

static inline int open_env_cfg(gr_config *cfg)
{
    if (!env_open(&E, cfg))
        return 0;
    probe_attach(&E);
    return 1;
}

static inline int open_env(void)
{
    gr_config cfg = {.workers = 2, .log_fn = quiet_log, .no_signals = 1};
    return open_env_cfg(&cfg);
}

static inline void close_env(void)
{
    env_close(&E);
    probe_detach();
}

static inline gr_ref spawn_tm(const struct tm_arg *a)
{
    gr_ref r = GR_REF_NONE;
    if (gr_system_spawn(E.sys, &tm_b, a, a ? sizeof *a : 0, &r) != GR_OK)
        return GR_REF_NONE;
    return r;
}

/* Starts one timer on actor a; returns its report (rc GR_EFAILED when the
 * report did not come). */
static inline struct started start_on(gr_ref a, const struct start_cmd *s)
{
    struct started st = {.rc = GR_EFAILED};
    if (probe_tell(a, C_START, s, sizeof *s) != GR_OK ||
        !probe_take(R_STARTED, &st, sizeof st))
        st.rc = GR_EFAILED;
    return st;
}

/* Has actor a cancel id; returns gr_timer_cancel's code. */
static inline int cancel_on(gr_ref a, uint64_t id)
{
    struct cancelled r = {.rc = GR_EFAILED};
    if (probe_tell(a, C_CANCEL, &id, sizeof id) != GR_OK ||
        !probe_take(R_CANCELLED, &r, sizeof r) || r.id != id)
        return GR_EFAILED;
    return r.rc;
}

static inline uint64_t total_dead(void)
{
    gr_stats st = stats_of(E.sys);
    uint64_t n = 0;
    for (int i = 0; i < GR_DL_COUNT; i++)
        n += st.dead_letters[i];
    return n;
}

/* Checks the message the handler of actor self saw for timer id. */
static inline int fired_is(const struct fired *f, gr_ref self, uint64_t id,
                           uint32_t type)
{
    int ok = f->type == type && f->flags == GR_MSG_TIMER && f->corr == id &&
             gr_ref_eq(f->from, self) && gr_ref_eq(f->to, self) &&
             gr_ref_eq(f->self, self) && f->data_ok;
    if (!ok)
        fprintf(stderr,
                "  timer message: type %u (want %u), flags %#x, corr %llu "
                "(want %llu), from %llu, to %llu, self %llu (want %llu), "
                "data_ok %d\n",
                (unsigned)f->type, (unsigned)type, (unsigned)f->flags,
                (unsigned long long)f->corr, (unsigned long long)id,
                (unsigned long long)f->from.serial,
                (unsigned long long)f->to.serial,
                (unsigned long long)f->self.serial,
                (unsigned long long)self.serial, f->data_ok);
    return ok;
}

/* Takes reports until one of type `until` (copied to out); every one
 * before it must be an R_FIRED. */
static inline int drain_until(uint32_t until, void *out, size_t len)
{
    for (;;) {
        gr_msg *m;
        if (!probe_next(&m))
            return 0;
        uint32_t type = m->type;
        int ok = type == until
                     ? (len == 0 ? m->len == 0 : read_payload(m, out, len))
                 : type == R_FIRED ? m->len == sizeof(struct fired)
                                   : 0;
        if (!ok)
            fprintf(stderr, "  report type %#x (%zu bytes), wanted %#x\n",
                    (unsigned)type, m->len, (unsigned)until);
        gr_msg_free(m);
        if (!ok || type == until)
            return ok;
    }
}

/* Waits (a few seconds at most) until r's mailbox depth reaches want. */
static inline uint64_t wait_depth(gr_ref r, uint64_t want)
{
    double end = test_now() + WAIT_MS / 1000.0;
    uint64_t d;
    while ((d = depth_of(E.sys, r)) < want && test_now() < end)
        sleep_us(200);
    return d;
}

#endif
