/*
 * Timer tests, one or more cases per rule of include/grove/timer.h:
 *
 * - a one-shot timer delivers exactly one message: its type, a copy of its
 *   payload, GR_MSG_TIMER, from the actor itself, corr its id; never before
 *   its delay (lower bounds only, on the monotonic clock); delay 0 and
 *   timers started in init work;
 * - a periodic timer repeats, its k-th message not before k periods; a zero
 *   period is refused; a cancel stops it, and the loop stops firing it;
 * - a cancel discards messages already queued (one-shot and periodic) and
 *   reports GR_ENOTFOUND for timers that are not live, GR_EINVAL for id 0;
 * - timers die with their actor, whatever the exit, without dead letters
 *   and without leaks (ASan's leak check at exit);
 * - ten thousand live timers, half cancelled at random: exactly the others
 *   are handled, each once;
 * - starts and cancels racing with firings;
 * - bad arguments; shutdown with timers pending.
 *
 * Public API only; every wait is bounded.
 */
#include <grove/grove.h>

#include <semaphore.h>
#include <stdint.h>
#include <time.h>

#include "helpers.h"

enum {
    /* Commands to the timer actor (tm_b), from the test's inbox. */
    C_START = 1, /* struct start_cmd: one timer; reports R_STARTED. */
    C_CANCEL,    /* uint64_t id: reports R_RC. */
    C_QUEUE,     /* struct queue_cmd: start, let queue, cancel; R_QUEUED. */
    C_MANY,      /* struct many_cmd: many timers; reports R_STARTED. */
    C_HOLD,      /* struct hold_cmd: wait, then end the handler as told. */
    C_BAD,       /* uint64_t max_payload: bad arguments; reports R_BAD. */
    C_SPAWN,     /* struct tm_arg: gr_spawn a tm_b child (init on a worker). */
    C_FLOOD,     /* Reports R_HELD, then starts timers until refused. */
    /* Commands to the crowd and racer actors. */
    C_CROWD,  /* struct crowd_cmd */
    C_RACE,   /* struct race_cmd */
    C_BATCH,  /* A racer's next batch, sent to itself. */
    C_REPORT, /* Report the counts (R_COUNTS). */
    /* Timer message types. */
    T_TICK = 50,
    T_OTHER = 51,
    /* Reports to the test's inbox. */
    R_STARTED = 100, /* struct started */
    R_FIRED,         /* struct fired */
    R_RC,            /* struct rc_rep */
    R_QUEUED,        /* struct queued */
    R_HELD,          /* (empty) */
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

static void tick_fill(struct tick *t, uint64_t tag)
{
    t->tag = tag;
    for (unsigned i = 0; i < TICK_FILL; i++)
        t->fill[i] = (uint8_t)(tag * 31u + i * 7u + 1u);
}

static int tick_ok(const struct tick *t)
{
    struct tick want;
    tick_fill(&want, t->tag);
    return memcmp(t, &want, sizeof want) == 0;
}

/* Monotonic nanoseconds, for lower bounds compared in integers. */
static uint64_t mono_ns(void)
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

struct rc_rep {
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

/* How C_HOLD ends the handler. */
enum { END_CONTINUE, END_STOP, END_CRASH, END_FAIL };
#define CODE_CRASH (-1000)

/* C_HOLD: optionally report R_HELD and wait for the gate; then wait until
 * the own mailbox holds wait_depth messages; then end as `end` says. */
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

static gr_ref inbox_ref;
static sem_t gate;
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

static void report(gr_ctx *ctx, uint32_t type, const void *p, size_t len)
{
    (void)gr_system_tell(gr_ctx_system(ctx), gr_self(ctx), inbox_ref, type, p,
                         len);
}

/* The depth of r's mailbox as gr_system_stats lists it (0 when not among
 * the deepest). */
static uint64_t depth_of(gr_system *sys, gr_ref r)
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
static uint64_t wait_own_depth(gr_ctx *ctx, uint64_t want)
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
static int start_one(gr_ctx *ctx, const struct start_cmd *s, uint64_t *id)
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

static int start_many(gr_ctx *ctx, const struct many_cmd *c)
{
    struct started out = {.rc = GR_OK};
    for (uint32_t k = 0; k < c->n_once + c->n_every; k++) {
        int every = k >= c->n_once;
        struct start_cmd s = {.ms = every ? c->every_ms
                                          : c->once_ms + k * c->once_step,
                              .tag = c->tag + k,
                              .type = T_TICK,
                              .every = every};
        int rc = start_one(ctx, &s, NULL);
        if (rc != GR_OK)
            out.rc = rc;
        else
            out.count++;
    }
    report(ctx, R_STARTED, &out, sizeof out);
    return GR_CONTINUE;
}

static int tm_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
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
        report(ctx, R_STARTED, &st, sizeof st);
    }
    return s->arg.init_fail ? GR_EINVAL : GR_OK;
}

/* A timer's message: reported as the handler saw it. */
static void fired(gr_ctx *ctx, const gr_msg *m)
{
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
    report(ctx, R_FIRED, &f, sizeof f);
}

static int do_queue(gr_ctx *ctx, const struct queue_cmd *c)
{
    struct queued q = {.rc_start = GR_OK};
    uint32_t n = c->n_once + c->n_every;
    if (n > QUEUE_MAX)
        return GR_EINVAL;
    for (uint32_t k = 0; k < n; k++) {
        struct start_cmd s = {.ms = 1,
                              .tag = c->tag + k,
                              .type = T_TICK,
                              .every = k >= c->n_once};
        int rc = start_one(ctx, &s, &q.id[k]);
        if (rc != GR_OK)
            q.rc_start = rc;
        /* All one-shots queued first, so each is surely in the mailbox. */
        if (k + 1 == c->n_once)
            q.depth_once = wait_own_depth(ctx, c->n_once);
    }
    /* Then several messages per periodic timer. */
    double until = test_now() + 0.010;
    while (test_now() < until)
        sleep_us(500);
    q.depth_all = wait_own_depth(ctx, c->n_once + 4 * c->n_every);
    for (uint32_t k = 0; k < n; k++)
        if (c->cancel_mask >> k & 1)
            q.rc_cancel[k] = gr_timer_cancel(ctx, q.id[k]);
    report(ctx, R_QUEUED, &q, sizeof q);
    return GR_CONTINUE;
}

static int do_hold(gr_ctx *ctx, const struct hold_cmd *h)
{
    if (h->gate) {
        report(ctx, R_HELD, NULL, 0);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += WAIT_MS / 1000;
        (void)sem_timedwait(&gate, &dl);
    }
    struct rc_rep r = {.id = wait_own_depth(ctx, h->wait_depth)};
    report(ctx, R_RC, &r, sizeof r);
    switch (h->end) {
    case END_STOP:
        return GR_STOP;
    case END_CRASH:
        return CODE_CRASH;
    case END_FAIL:
        gr_fail(ctx, "told to fail");
    default:
        return GR_CONTINUE;
    }
}

/* C_BAD: every refused call, with the system's max_payload given (0: skip
 * the size cases). A
 * refused start must start nothing: all use 1 ms, so a timer started by
 * mistake would show within the test's quiet period. */
static int do_bad(gr_ctx *ctx, uint64_t max_payload)
{
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
    report(ctx, R_BAD, &b, sizeof b);
    return GR_CONTINUE;
}

static const gr_behaviour tm_b;

static int tm_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    switch (m->type) {
    case T_TICK:
    case T_OTHER:
        fired(ctx, m);
        return GR_CONTINUE;
    case C_START: {
        struct start_cmd s;
        if (!read_payload(m, &s, sizeof s))
            return GR_EUNHANDLED;
        struct started st = {.t0_ns = mono_ns()};
        st.rc = start_one(ctx, &s, &st.id);
        report(ctx, R_STARTED, &st, sizeof st);
        return GR_CONTINUE;
    }
    case C_CANCEL: {
        struct rc_rep r;
        if (!read_payload(m, &r.id, sizeof r.id))
            return GR_EUNHANDLED;
        r.rc = gr_timer_cancel(ctx, r.id);
        report(ctx, R_RC, &r, sizeof r);
        return GR_CONTINUE;
    }
    case C_QUEUE: {
        struct queue_cmd c;
        if (!read_payload(m, &c, sizeof c))
            return GR_EUNHANDLED;
        return do_queue(ctx, &c);
    }
    case C_MANY: {
        struct many_cmd c;
        if (!read_payload(m, &c, sizeof c))
            return GR_EUNHANDLED;
        return start_many(ctx, &c);
    }
    case C_HOLD: {
        struct hold_cmd h;
        if (!read_payload(m, &h, sizeof h))
            return GR_EUNHANDLED;
        return do_hold(ctx, &h);
    }
    case C_BAD: {
        uint64_t max;
        if (!read_payload(m, &max, sizeof max))
            return GR_EUNHANDLED;
        return do_bad(ctx, max);
    }
    case C_FLOOD: {
        /* Runs until shutdown refuses a start (or a bound), so that the
         * last starts are surely still on their way to the I/O loop when
         * it stops. */
        report(ctx, R_HELD, NULL, 0);
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
    case C_SPAWN: {
        struct tm_arg a;
        if (!read_payload(m, &a, sizeof a))
            return GR_EUNHANDLED;
        struct rc_rep r = {0};
        r.rc = gr_spawn(ctx, &tm_b, &a, sizeof a, NULL);
        report(ctx, R_RC, &r, sizeof r);
        return GR_CONTINUE;
    }
    default:
        return GR_EUNHANDLED;
    }
}

static void tm_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
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
        report(ctx, R_TERM, &t, sizeof t);
}

static const gr_behaviour tm_b = {
    .name = "timers",
    .state_size = sizeof(struct tm_state),
    .init = tm_init,
    .handle = tm_handle,
    .terminate = tm_terminate,
};

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

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64 */
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Cancels crowd timer k, checking the code against what the crowd knows. */
static void crowd_cancel(gr_ctx *ctx, struct crowd *s, uint32_t k)
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

static int crowd_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct crowd *s = state;
    switch (m->type) {
    case T_TICK: {
        uint64_t k, now = mono_ns();
        if (!read_payload(m, &k, sizeof k) || k >= s->n ||
            m->corr != s->ids[k] || m->flags != GR_MSG_TIMER) {
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
    case C_CROWD: {
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
            if (gr_timer_after(ctx, ms, T_TICK, &k, sizeof k, &s->ids[k]) !=
                GR_OK)
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
    case C_REPORT:
        report(ctx, R_COUNTS, &s->c, sizeof s->c);
        return GR_CONTINUE;
    default:
        return GR_EUNHANDLED;
    }
}

static const gr_behaviour crowd_b = {
    .name = "crowd",
    .state_size = sizeof(struct crowd),
    .handle = crowd_handle,
};

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

static void racer_cancel(gr_ctx *ctx, struct racer *s, uint32_t k)
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
static void racer_cancel_later(gr_ctx *ctx, struct racer *s)
{
    if (s->nlater == 0)
        return;
    uint32_t i = (uint32_t)(rng_next(&s->rng) % s->nlater);
    uint32_t k = s->later[i];
    s->later[i] = s->later[--s->nlater];
    racer_cancel(ctx, s, k);
}

static void racer_batch(gr_ctx *ctx, struct racer *s)
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

static int racer_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct racer *s = state;
    switch (m->type) {
    case T_TICK: {
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
    case C_RACE: {
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
    case C_BATCH:
        racer_batch(ctx, s);
        return GR_CONTINUE;
    case C_REPORT:
        report(ctx, R_COUNTS, &s->c, sizeof s->c);
        return GR_CONTINUE;
    default:
        return GR_EUNHANDLED;
    }
}

static void racer_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)ctx;
    (void)why;
    struct racer *s = state;
    free(s->ids);
    free(s->st);
    free(s->later);
}

static const gr_behaviour racer_b = {
    .name = "racer",
    .state_size = sizeof(struct racer),
    .handle = racer_handle,
    .terminate = racer_terminate,
};

/* ---- helpers ------------------------------------------------------------- */

static struct env E;

static int open_env_cfg(gr_config *cfg)
{
    if (!env_open(&E, cfg))
        return 0;
    inbox_ref = gr_inbox_ref(E.inbox);
    sem_init(&gate, 0, 0);
    return 1;
}

static int open_env(void)
{
    gr_config cfg = {.workers = 2, .log_fn = quiet_log, .no_signals = 1};
    return open_env_cfg(&cfg);
}

static void close_env(void)
{
    env_close(&E);
    sem_destroy(&gate);
}

static gr_ref spawn_tm(const struct tm_arg *a)
{
    gr_ref r = GR_REF_NONE;
    if (gr_system_spawn(E.sys, &tm_b, a, a ? sizeof *a : 0, &r) != GR_OK)
        return GR_REF_NONE;
    return r;
}

static int cmd(gr_ref to, uint32_t type, const void *p, size_t len)
{
    return gr_system_tell(E.sys, inbox_ref, to, type, p, len);
}

static int take(uint32_t type, void *out, size_t len)
{
    return recv_exact(E.inbox, type, out, len) == GR_OK;
}

/* Starts one timer on actor a; returns its report (rc GR_EFAILED when the
 * report did not come). */
static struct started start_on(gr_ref a, const struct start_cmd *s)
{
    struct started st = {.rc = GR_EFAILED};
    if (cmd(a, C_START, s, sizeof *s) != GR_OK ||
        !take(R_STARTED, &st, sizeof st))
        st.rc = GR_EFAILED;
    return st;
}

/* Has actor a cancel id; returns gr_timer_cancel's code. */
static int cancel_on(gr_ref a, uint64_t id)
{
    struct rc_rep r = {.rc = GR_EFAILED};
    if (cmd(a, C_CANCEL, &id, sizeof id) != GR_OK ||
        !take(R_RC, &r, sizeof r) || r.id != id)
        return GR_EFAILED;
    return r.rc;
}

/* Returns 1 when no message comes for ms; says what came otherwise. */
static int quiet_for(int ms)
{
    gr_msg *m = NULL;
    if (gr_inbox_recv(E.inbox, &m, ms) == GR_ETIMEDOUT)
        return 1;
    fprintf(stderr, "  unexpected message type %u\n", (unsigned)m->type);
    gr_msg_free(m);
    return 0;
}

static uint64_t total_dead(void)
{
    gr_stats st = stats_of(E.sys);
    uint64_t n = 0;
    for (int i = 0; i < GR_DL_COUNT; i++)
        n += st.dead_letters[i];
    return n;
}

/* Checks the message the handler of actor self saw for timer id. */
static int fired_is(const struct fired *f, gr_ref self, uint64_t id,
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

/* Receives messages until one of type `until` (copied to out); every one
 * before it must be an R_FIRED, counted in *nfired and checked against
 * forbid (a corr that must not appear; 0: none). */
static int drain_until(uint32_t until, void *out, size_t len, unsigned *nfired,
                       uint64_t forbid)
{
    for (;;) {
        gr_msg *m = NULL;
        if (gr_inbox_recv(E.inbox, &m, WAIT_MS) != GR_OK)
            return 0;
        int ok;
        if (m->type == until) {
            ok = len == 0 ? m->len == 0 : read_payload(m, out, len);
            gr_msg_free(m);
            return ok;
        }
        struct fired f;
        ok = m->type == R_FIRED && read_payload(m, &f, sizeof f) &&
             (forbid == 0 || f.corr != forbid);
        if (!ok)
            fprintf(stderr, "  unexpected message type %u\n",
                    (unsigned)m->type);
        gr_msg_free(m);
        if (!ok)
            return 0;
        if (nfired != NULL)
            (*nfired)++;
    }
}

/* Waits (a few seconds at most) until r's mailbox depth reaches want. */
static uint64_t wait_depth(gr_ref r, uint64_t want)
{
    double end = test_now() + WAIT_MS / 1000.0;
    uint64_t d;
    while ((d = depth_of(E.sys, r)) < want && test_now() < end)
        sleep_us(200);
    return d;
}

/* ---- cases --------------------------------------------------------------- */

/* A one-shot timer delivers exactly one message: its type, a copy of its
 * payload (the caller's buffer is scribbled over after the call), the flag
 * GR_MSG_TIMER, from and to the actor itself, corr its id; never before its
 * delay. An empty payload arrives as NULL, 0; ids differ.
 * Mutants caught: ms scaled down (early), one-shots that repeat, a missing
 * flag or corr, the payload referenced instead of copied. */
static void test_after(void)
{
    CHECK(open_env());
    gr_ref a = spawn_tm(NULL);
    CHECK(!gr_ref_is_none(a));
    struct start_cmd s = {.ms = 80, .tag = 7, .type = T_TICK};
    struct started st = start_on(a, &s);
    CHECK_EQ(st.rc, GR_OK);
    CHECK(st.id != 0);
    struct fired f;
    CHECK(take(R_FIRED, &f, sizeof f)); /* Within WAIT_MS. */
    CHECK(fired_is(&f, a, st.id, T_TICK));
    CHECK_EQ(f.tag, 7);
    CHECK_EQ(f.len, sizeof(struct tick));
    CHECK(f.t_ns - st.t0_ns >= 80000000u);
    CHECK(quiet_for(200)); /* Exactly one. */

    /* No payload, another type. */
    struct start_cmd e = {.ms = 20, .type = T_OTHER, .empty = 1};
    struct started st2 = start_on(a, &e);
    CHECK_EQ(st2.rc, GR_OK);
    CHECK(st2.id != 0 && st2.id != st.id);
    CHECK(take(R_FIRED, &f, sizeof f));
    CHECK(fired_is(&f, a, st2.id, T_OTHER));
    CHECK_EQ(f.len, 0);
    CHECK(f.t_ns - st2.t0_ns >= 20000000u);
    CHECK(quiet_for(100));
    CHECK_EQ(total_dead(), 0);
    close_env();
}

/* Delay 0 comes promptly, in a fresh system whose I/O loop is idle (a
 * start must wake it); timers started in init work, whether init runs on
 * the spawning thread or on a worker (gr_spawn from a handler).
 * Mutants caught: no wake on start (the loop would sleep till its next
 * own timer, seconds away). */
static void test_zero_and_init(void)
{
    CHECK(open_env());
    gr_ref a = spawn_tm(NULL);
    sleep_ms(50); /* Let the I/O loop go idle. */
    struct start_cmd z = {.ms = 0, .tag = 1, .type = T_TICK};
    struct started st = start_on(a, &z);
    CHECK_EQ(st.rc, GR_OK);
    struct fired f;
    CHECK(take(R_FIRED, &f, sizeof f));
    CHECK(fired_is(&f, a, st.id, T_TICK));
    CHECK_EQ(f.tag, 1);
    CHECK(quiet_for(50));

    /* From init: a 0 ms one (tag 900) and a 30 ms one (tag 901). The
     * second round spawns from a handler, so init runs on a worker. */
    for (int round = 0; round < 2; round++) {
        struct tm_arg arg = {.init_timers = 1};
        gr_ref b = GR_REF_NONE;
        if (round == 0) {
            sleep_ms(50);
            CHECK_EQ(gr_system_spawn(E.sys, &tm_b, &arg, sizeof arg, &b),
                     GR_OK);
        } else {
            CHECK_EQ(cmd(a, C_SPAWN, &arg, sizeof arg), GR_OK);
        }
        struct started s0, s1;
        CHECK(take(R_STARTED, &s0, sizeof s0));
        CHECK(take(R_STARTED, &s1, sizeof s1));
        CHECK_EQ(s0.rc, GR_OK);
        CHECK_EQ(s1.rc, GR_OK);
        /* Round 1: the spawn's report comes from a, in any order with the
         * child's firings (it runs on another worker at once). */
        int seen = 0, spawn_rc = round == 0 ? GR_OK : 1;
        while (seen != 3 || spawn_rc == 1) {
            gr_msg *m = NULL;
            CHECK_EQ(gr_inbox_recv(E.inbox, &m, WAIT_MS), GR_OK);
            struct rc_rep r;
            int ok = 0;
            if (m->type == R_RC && spawn_rc == 1 &&
                read_payload(m, &r, sizeof r)) {
                spawn_rc = r.rc;
                ok = 1;
            } else if (m->type == R_FIRED) {
                ok = read_payload(m, &f, sizeof f);
            }
            uint32_t type = m->type;
            gr_msg_free(m);
            CHECK(ok);
            if (type == R_RC)
                continue;
            if (gr_ref_is_none(b))
                b = f.self;
            CHECK(f.tag == 900 || f.tag == 901);
            CHECK(!(seen >> (f.tag - 900) & 1));
            const struct started *sx = f.tag == 900 ? &s0 : &s1;
            CHECK(fired_is(&f, b, sx->id, T_TICK));
            CHECK(f.t_ns - sx->t0_ns >= (f.tag - 900) * 30000000u);
            seen |= 1 << (f.tag - 900);
        }
        CHECK_EQ(spawn_rc, GR_OK);
        CHECK_EQ(seen, 3);
        CHECK(!gr_ref_eq(a, b));
        CHECK(quiet_for(60));
    }
    close_env();
}

/* A periodic timer repeats: at least six messages, the k-th not before k
 * periods after the start, all with the same id and payload; after its
 * cancel returns, none is handled, and a second cancel finds nothing. A
 * zero period is refused.
 * Mutants caught: periodic timers made one-shot, a first firing at 0. */
static void test_every(void)
{
    CHECK(open_env());
    gr_ref a = spawn_tm(NULL);
    struct start_cmd s = {.ms = 20, .tag = 3, .type = T_TICK, .every = 1};
    struct started st = start_on(a, &s);
    CHECK_EQ(st.rc, GR_OK);
    for (uint64_t k = 1; k <= 6; k++) {
        struct fired f;
        CHECK(take(R_FIRED, &f, sizeof f));
        CHECK(fired_is(&f, a, st.id, T_TICK));
        CHECK_EQ(f.tag, 3);
        CHECK(f.t_ns - st.t0_ns >= k * 20000000u);
    }
    struct rc_rep r;
    CHECK_EQ(cmd(a, C_CANCEL, &st.id, sizeof st.id), GR_OK);
    /* Firings handled before the cancel may come before its report. */
    CHECK(drain_until(R_RC, &r, sizeof r, NULL, 0));
    CHECK_EQ(r.rc, GR_OK);
    CHECK(quiet_for(150));
    CHECK_EQ(cancel_on(a, st.id), GR_ENOTFOUND);

    uint64_t max = 0; /* No payload-size cases. */
    CHECK_EQ(cmd(a, C_BAD, &max, sizeof max), GR_OK);
    struct bad b;
    CHECK(take(R_BAD, &b, sizeof b));
    CHECK_EQ(b.rc[7], GR_EINVAL); /* gr_timer_every(ms = 0) */
    CHECK(quiet_for(50));
    close_env();
}

/* A cancelled periodic timer stops firing: the system's sent counter
 * (timer messages included) stands still afterwards, where a live 1 ms
 * timer moves it every millisecond.
 * Mutants caught: gr__timer_cancel that never reaches the loop (the
 * receiver would still drop the messages, but the timer would fire
 * forever). */
static void test_cancel_stops_firing(void)
{
    CHECK(open_env());
    gr_ref a = spawn_tm(NULL);
    struct start_cmd s = {.ms = 1, .type = T_TICK, .every = 1};
    struct started st = start_on(a, &s);
    CHECK_EQ(st.rc, GR_OK);
    uint64_t s0 = stats_of(E.sys).sent;
    sleep_ms(200);
    uint64_t live = stats_of(E.sys).sent - s0;
    CHECK(live >= 10); /* The measure can see a live timer. */
    struct rc_rep r;
    CHECK_EQ(cmd(a, C_CANCEL, &st.id, sizeof st.id), GR_OK);
    CHECK(drain_until(R_RC, &r, sizeof r, NULL, 0));
    CHECK_EQ(r.rc, GR_OK);
    sleep_ms(50); /* One may have been on its way. */
    uint64_t s1 = stats_of(E.sys).sent;
    sleep_ms(200);
    uint64_t after = stats_of(E.sys).sent - s1;
    if (after > 1)
        fprintf(stderr, "  sent moved by %llu after the cancel (%llu live)\n",
                (unsigned long long)after, (unsigned long long)live);
    CHECK(after <= 1);
    CHECK(quiet_for(20));
    close_env();
}

/* Cancels of timers whose messages already wait in the mailbox: one-shots
 * and periodic ones, queued behind a busy handler (its own depth proves
 * it). The cancelled ones are never handled; the others are, one-shots
 * exactly once. Then cancel reports GR_ENOTFOUND for every dead timer.
 * Mutants caught: no cancel filter in gr__timer_arrived; a one-shot kept
 * live after its message was handled. */
static void test_cancel_queued(void)
{
    CHECK(open_env());
    gr_ref a = spawn_tm(NULL);
    /* Six one-shots (tags 0..5), three periodic (6..8); cancel one-shots
     * 1, 3, 5 and periodic 6, 8. */
    const uint32_t mask = 1u << 1 | 1u << 3 | 1u << 5 | 1u << 6 | 1u << 8;
    struct queue_cmd c = {.n_once = 6, .n_every = 3, .cancel_mask = mask};
    CHECK_EQ(cmd(a, C_QUEUE, &c, sizeof c), GR_OK);
    struct queued q;
    CHECK(take(R_QUEUED, &q, sizeof q));
    CHECK_EQ(q.rc_start, GR_OK);
    CHECK(q.depth_once >= 6);
    CHECK(q.depth_all >= 6 + 4 * 3);
    for (int k = 0; k < 9; k++)
        CHECK_EQ(q.rc_cancel[k], (mask >> k & 1) ? GR_OK : 0);
    /* What is handled now: one-shots 0, 2, 4 once each, periodic 7 again
     * and again, nothing else. */
    int once[6] = {0};
    unsigned every7 = 0;
    int cancel_sent = 0;
    double end = test_now() + 0.3;
    for (;;) {
        /* After a while, cancel periodic 7 too; read up to its report. */
        if (!cancel_sent && test_now() >= end && every7 >= 5) {
            CHECK_EQ(cmd(a, C_CANCEL, &q.id[7], sizeof q.id[7]), GR_OK);
            cancel_sent = 1;
        }
        gr_msg *m = NULL;
        CHECK_EQ(gr_inbox_recv(E.inbox, &m, WAIT_MS), GR_OK);
        struct fired f;
        struct rc_rep r;
        uint32_t type = m->type;
        int ok = type == R_RC
                     ? cancel_sent && read_payload(m, &r, sizeof r)
                     : type == R_FIRED && read_payload(m, &f, sizeof f);
        gr_msg_free(m);
        CHECK(ok);
        if (type == R_RC) {
            CHECK_EQ(r.rc, GR_OK);
            break;
        }
        CHECK(f.tag < 9);
        CHECK(!(mask >> f.tag & 1));
        CHECK(fired_is(&f, a, q.id[f.tag], T_TICK));
        if (f.tag < 6)
            once[f.tag]++;
        else
            every7++;
    }
    for (int k = 0; k < 6; k++)
        CHECK_EQ(once[k], (mask >> k & 1) ? 0 : 1);
    CHECK(quiet_for(100));
    /* Every one is dead now: handled, cancelled, or cancelled twice. */
    for (int k = 0; k < 9; k++)
        CHECK_EQ(cancel_on(a, q.id[k]), GR_ENOTFOUND);
    CHECK(quiet_for(20));
    CHECK_EQ(total_dead(), 0);
    close_env();
}

/* What gr_timer_cancel returns: GR_OK for a live timer (a periodic one that
 * has fired and been handled included), then GR_ENOTFOUND; GR_ENOTFOUND
 * for a fired-and-handled one-shot, an unknown id, and another actor's
 * live timer, which it leaves running; GR_EINVAL for id 0 and a NULL ctx.
 * Mutants caught: a cancel that reports GR_OK for any id, or that does
 * not look at the owner. */
static void test_cancel_codes(void)
{
    CHECK(open_env());
    gr_ref a = spawn_tm(NULL), b = spawn_tm(NULL);
    struct fired f;
    /* Fired and handled. */
    struct start_cmd s = {.ms = 1, .tag = 1, .type = T_TICK};
    struct started st = start_on(a, &s);
    CHECK_EQ(st.rc, GR_OK);
    CHECK(take(R_FIRED, &f, sizeof f));
    CHECK_EQ(f.corr, st.id);
    CHECK_EQ(cancel_on(a, st.id), GR_ENOTFOUND);
    /* Live, then cancelled twice. */
    s.ms = 10000;
    st = start_on(a, &s);
    CHECK_EQ(st.rc, GR_OK);
    CHECK_EQ(cancel_on(a, st.id), GR_OK);
    CHECK_EQ(cancel_on(a, st.id), GR_ENOTFOUND);
    /* Unknown ids. */
    CHECK_EQ(cancel_on(a, st.id + 1000000), GR_ENOTFOUND);
    CHECK_EQ(cancel_on(a, UINT64_MAX), GR_ENOTFOUND);
    /* A periodic timer that has fired is still live. */
    struct start_cmd p = {.ms = 5, .tag = 2, .type = T_TICK, .every = 1};
    st = start_on(a, &p);
    CHECK_EQ(st.rc, GR_OK);
    CHECK(take(R_FIRED, &f, sizeof f));
    CHECK(take(R_FIRED, &f, sizeof f));
    struct rc_rep r;
    CHECK_EQ(cmd(a, C_CANCEL, &st.id, sizeof st.id), GR_OK);
    CHECK(drain_until(R_RC, &r, sizeof r, NULL, 0));
    CHECK_EQ(r.rc, GR_OK);
    CHECK_EQ(cancel_on(a, st.id), GR_ENOTFOUND);
    CHECK(quiet_for(30));
    /* b's live timer: a cannot cancel it, and it still fires for b. */
    s.ms = 100;
    s.tag = 5;
    st = start_on(b, &s);
    CHECK_EQ(st.rc, GR_OK);
    CHECK_EQ(cancel_on(a, st.id), GR_ENOTFOUND);
    CHECK(take(R_FIRED, &f, sizeof f));
    CHECK(fired_is(&f, b, st.id, T_TICK));
    CHECK_EQ(f.tag, 5);
    /* id 0; NULL ctx (callable from anywhere: it only returns). */
    uint64_t max = 0;
    CHECK_EQ(cmd(a, C_BAD, &max, sizeof max), GR_OK);
    struct bad bad;
    CHECK(take(R_BAD, &bad, sizeof bad));
    CHECK_EQ(bad.rc[8], GR_EINVAL);
    CHECK_EQ(gr_timer_cancel(NULL, 1), GR_EINVAL);
    CHECK(quiet_for(50));
    close_env();
}

/* How a holder ends in test_die_with_owner. */
enum {
    HOW_STOP,   /* gr_stop from outside, queued behind timer messages. */
    HOW_KILL,   /* gr_system_exit with GR_EKILL. */
    HOW_CRASH,  /* The handler returns an error code. */
    HOW_FAIL,   /* gr_fail. */
    HOW_NORMAL, /* The handler returns GR_STOP. */
    HOW_COUNT
};

/* An actor's timers die with it, whatever the exit: it has 60 one-shots
 * (20 due at once, 40 due over 100..295 ms) and 15 periodic ones (10 every
 * 1 ms, 5 every 50 ms), and timer messages queued behind its last handler
 * call when it goes. None of them becomes a dead letter, none is handled
 * afterwards, and nothing leaks (ASan). Also: timers started by an init
 * that then fails, and by terminate, die the same way; a fresh actor gets
 * nothing of them.
 * Mutants caught: dead letters for timer messages (the filter in
 * gr__dead_message); no gr__timers_exit (its map leaks: ASan). */
static void test_die_with_owner(void)
{
    CHECK(open_env());
    for (int how = 0; how < HOW_COUNT; how++) {
        struct tm_arg arg = {.term_report = 1, .term_timers = how == 0};
        gr_ref a = spawn_tm(&arg);
        CHECK(!gr_ref_is_none(a));
        struct many_cmd m0 = {.n_once = 20, .tag = 0};
        struct many_cmd m1 = {.n_once = 40,
                              .once_ms = 100,
                              .once_step = 5,
                              .n_every = 10,
                              .every_ms = 1,
                              .tag = 100};
        struct many_cmd m2 = {.n_every = 5, .every_ms = 50, .tag = 200};
        struct started st;
        CHECK_EQ(cmd(a, C_MANY, &m0, sizeof m0), GR_OK);
        CHECK(drain_until(R_STARTED, &st, sizeof st, NULL, 0));
        CHECK_EQ(st.rc, GR_OK);
        CHECK_EQ(st.count, 20);
        CHECK_EQ(cmd(a, C_MANY, &m1, sizeof m1), GR_OK);
        CHECK(drain_until(R_STARTED, &st, sizeof st, NULL, 0));
        CHECK_EQ(st.rc, GR_OK);
        CHECK_EQ(st.count, 50);
        CHECK_EQ(cmd(a, C_MANY, &m2, sizeof m2), GR_OK);
        CHECK(drain_until(R_STARTED, &st, sizeof st, NULL, 0));
        CHECK_EQ(st.count, 5);
        /* Hold the actor; the periodic timers queue messages meanwhile. */
        struct hold_cmd h = {.gate = 1,
                             .wait_depth = 30,
                             .end = how == HOW_CRASH    ? END_CRASH
                                    : how == HOW_FAIL   ? END_FAIL
                                    : how == HOW_NORMAL ? END_STOP
                                                        : END_CONTINUE};
        CHECK_EQ(cmd(a, C_HOLD, &h, sizeof h), GR_OK);
        CHECK(drain_until(R_HELD, NULL, 0, NULL, 0));
        if (how == HOW_STOP || how == HOW_KILL) {
            uint64_t d = wait_depth(a, 10);
            const gr_reason kill = gr_reason_of(GR_EKILL);
            if (how == HOW_STOP)
                CHECK_EQ(gr_stop(E.sys, a), GR_OK);
            else
                CHECK_EQ(gr_system_exit(E.sys, a, &kill), GR_OK);
            /* Timer messages behind the stop or kill too. */
            CHECK(wait_depth(a, d + 11) >= d + 11);
        }
        sem_post(&gate);
        struct rc_rep r;
        CHECK(drain_until(R_RC, &r, sizeof r, NULL, 0));
        CHECK(r.id >= 30); /* Queued behind the handler as it ended. */
        struct term t;
        CHECK(drain_until(R_TERM, &t, sizeof t, NULL, 0));
        const int why[HOW_COUNT] = {GR_ESHUTDOWN, GR_EKILLED, CODE_CRASH,
                                    GR_EFAILED, GR_OK};
        CHECK_EQ(t.why, why[how]);
        if (arg.term_timers) {
            CHECK_EQ(t.rc_after, GR_OK);
            CHECK_EQ(t.rc_every, GR_OK);
        }
        /* Past every due time: nothing more, no dead letters. */
        CHECK(quiet_for(400));
        CHECK_EQ(total_dead(), 0);
    }

    /* An init that starts timers and then fails. */
    struct tm_arg fail = {.init_timers = 1, .init_fail = 1};
    gr_ref dead = GR_REF_NONE;
    CHECK_EQ(gr_system_spawn(E.sys, &tm_b, &fail, sizeof fail, &dead),
             GR_EINVAL);
    struct started st;
    CHECK(take(R_STARTED, &st, sizeof st));
    CHECK_EQ(st.rc, GR_OK);
    CHECK(take(R_STARTED, &st, sizeof st));
    CHECK_EQ(st.rc, GR_OK);
    /* A fresh actor, perhaps in the same slot, gets none of it. */
    gr_ref fresh = spawn_tm(NULL);
    CHECK(!gr_ref_is_none(fresh));
    CHECK(quiet_for(150));
    CHECK_EQ(total_dead(), 0);
    close_env(); /* ASan: every timer and timer map freed. */
}

#define CROWDS       10
#define CROWD_N      1000
#define CROWD_MAX_MS 200

/* Ten thousand live timers: ten actors start a thousand one-shots each
 * with delays spread over 1..200 ms; a random quarter is cancelled at once
 * and another quarter one by one while the others fire. Exactly the
 * uncancelled ones are handled, each once, none early, with its own id;
 * cancels return GR_OK until a one-shot is handled, then GR_ENOTFOUND.
 * Mutants caught: no cancel filter, a cancel that forgets the timer but
 * lets it fire, lost or duplicated timers under load. */
static void test_thousands(void)
{
    CHECK(open_env());
    gr_ref who[CROWDS];
    uint32_t n = (uint32_t)scaled(CROWD_N, 100);
    for (int i = 0; i < CROWDS; i++) {
        CHECK_EQ(gr_system_spawn(E.sys, &crowd_b, NULL, 0, &who[i]), GR_OK);
        struct crowd_cmd c = {.seed = 0x9e3779b97f4a7c15u * (uint64_t)(i + 1),
                              .n = n,
                              .max_ms = CROWD_MAX_MS};
        CHECK_EQ(cmd(who[i], C_CROWD, &c, sizeof c), GR_OK);
    }
    struct counts c[CROWDS];
    struct watch w;
    watch_start(&w, E.sys);
    int settled = 0;
    for (;;) {
        for (int i = 0; i < CROWDS; i++)
            CHECK_EQ(cmd(who[i], C_REPORT, NULL, 0), GR_OK);
        int all = 1;
        for (int i = 0; i < CROWDS; i++) {
            gr_msg *m = NULL;
            CHECK_EQ(gr_inbox_recv(E.inbox, &m, WAIT_MS), GR_OK);
            int k = 0;
            while (k < CROWDS && !gr_ref_eq(who[k], m->from))
                k++;
            int ok = m->type == R_COUNTS && k < CROWDS &&
                     read_payload(m, &c[k], sizeof c[k]);
            gr_msg_free(m);
            CHECK(ok);
        }
        for (int i = 0; i < CROWDS; i++)
            all &= c[i].done && c[i].handled == c[i].expected &&
                   c[i].cancelled + c[i].expected == n;
        if (all && settled)
            break;
        if (all) {
            /* Past the last due time: nothing more may come. */
            sleep_ms(CROWD_MAX_MS + 100);
            settled = 1;
            continue;
        }
        settled = 0;
        if (watch_over(&w))
            break;
        sleep_ms(20);
    }
    uint32_t cancelled = 0;
    for (int i = 0; i < CROWDS; i++) {
        if (c[i].handled != c[i].expected || c[i].bad_msg || c[i].bad_dup ||
            c[i].bad_cancel || c[i].bad_rc || c[i].bad_start || c[i].early)
            fprintf(stderr,
                    "  crowd %d: handled %u expected %u cancelled %u; bad: "
                    "msg %u dup %u cancel %u rc %u start %u early %u\n",
                    i, c[i].handled, c[i].expected, c[i].cancelled,
                    c[i].bad_msg, c[i].bad_dup, c[i].bad_cancel, c[i].bad_rc,
                    c[i].bad_start, c[i].early);
        CHECK(c[i].done);
        CHECK_EQ(c[i].handled, c[i].expected);
        CHECK_EQ(c[i].cancelled + c[i].expected, n);
        CHECK_EQ(c[i].bad_msg, 0);
        CHECK_EQ(c[i].bad_dup, 0);
        CHECK_EQ(c[i].bad_cancel, 0);
        CHECK_EQ(c[i].bad_rc, 0);
        CHECK_EQ(c[i].bad_start, 0);
        CHECK_EQ(c[i].early, 0);
        cancelled += c[i].cancelled;
    }
    /* About half were cancelled (a quarter at once, most of the later
     * quarter in time). */
    CHECK(cancelled >= CROWDS * n / 4);
    CHECK(quiet_for(20));
    CHECK_EQ(total_dead(), 0);
    close_env();
}

/* Starts and cancels racing with firings: one actor, thousands of timers
 * due in 0..2 ms (and some 1 ms periodic ones), cancelled at once, a few
 * starts later, in a later batch, or never, while it stays busy so that
 * timers fire and queue mid-batch. Every handled message belongs to a
 * timer not cancelled before it was handled; each uncancelled one-shot is
 * handled exactly once; every cancel's code fits what the actor knew.
 * Mutants caught: no cancel filter; cancels that report GR_ENOTFOUND for
 * a fired but unhandled one-shot. */
static void test_cancel_race(void)
{
    CHECK(open_env());
    for (int round = 0; round < 2; round++) {
        gr_ref r = GR_REF_NONE;
        CHECK_EQ(gr_system_spawn(E.sys, &racer_b, NULL, 0, &r), GR_OK);
        struct race_cmd rc = {.batches = (uint32_t)scaled(20, 4),
                              .per_batch = 250,
                              .seed = 12345u + (uint64_t)round,
                              .spin_us = round == 0 ? 4 : 0};
        CHECK_EQ(cmd(r, C_RACE, &rc, sizeof rc), GR_OK);
        struct counts c = {0};
        struct watch w;
        watch_start(&w, E.sys);
        int settled = 0;
        for (;;) {
            CHECK_EQ(cmd(r, C_REPORT, NULL, 0), GR_OK);
            CHECK(take(R_COUNTS, &c, sizeof c));
            int all = c.done && c.handled == c.expected;
            if (all && settled)
                break;
            if (all) {
                sleep_ms(50);
                settled = 1;
                continue;
            }
            settled = 0;
            if (watch_over(&w))
                break;
            sleep_ms(10);
        }
        if (c.bad_msg || c.bad_dup || c.bad_cancel || c.bad_rc || c.bad_start)
            fprintf(stderr,
                    "  racer: handled %u expected %u cancelled %u periodic "
                    "msgs %u; bad: msg %u dup %u cancel %u rc %u start %u\n",
                    c.handled, c.expected, c.cancelled, c.every_msgs, c.bad_msg,
                    c.bad_dup, c.bad_cancel, c.bad_rc, c.bad_start);
        CHECK(c.done);
        CHECK_EQ(c.handled, c.expected);
        CHECK_EQ(c.bad_msg, 0);
        CHECK_EQ(c.bad_dup, 0);
        CHECK_EQ(c.bad_cancel, 0);
        CHECK_EQ(c.bad_rc, 0);
        CHECK_EQ(c.bad_start, 0);
        CHECK(c.cancelled >= rc.batches * rc.per_batch / 4);
        CHECK(c.expected >= rc.batches * rc.per_batch / 4);
        CHECK_EQ(gr_stop(E.sys, r), GR_OK);
    }
    CHECK_EQ(total_dead(), 0);
    close_env();
}

/* Refused arguments: reserved types, data and len that disagree, a zero
 * period, id 0, payloads over max_payload (exactly max_payload is fine),
 * a NULL ctx; a refused start starts nothing. */
static void test_bad_args(void)
{
    gr_config cfg = {
        .workers = 2, .log_fn = quiet_log, .no_signals = 1, .max_payload = 256};
    CHECK(open_env_cfg(&cfg));
    gr_ref a = spawn_tm(NULL);
    uint64_t max = 256;
    CHECK_EQ(cmd(a, C_BAD, &max, sizeof max), GR_OK);
    struct bad b;
    CHECK(take(R_BAD, &b, sizeof b));
    for (int i = 0; i < 9; i++)
        CHECK_EQ(b.rc[i], GR_EINVAL);
    CHECK_EQ(b.rc[9], GR_EMSGSIZE);
    CHECK_EQ(b.rc[10], GR_EMSGSIZE);
    CHECK_EQ(b.rc[11], GR_OK);
    CHECK_EQ(b.rc[12], GR_OK); /* Its cancel. */
    uint64_t id = 0, v = 1;
    CHECK_EQ(gr_timer_after(NULL, 1, T_TICK, &v, sizeof v, &id), GR_EINVAL);
    CHECK_EQ(gr_timer_every(NULL, 1, T_TICK, &v, sizeof v, &id), GR_EINVAL);
    CHECK(quiet_for(100)); /* No refused start fired. */
    close_env();
}

/* A delay so long that ms * 10^6 would overflow 64 bits still does not
 * fire early (it once fired at once). */
static void test_huge_delay(void)
{
    CHECK(open_env());
    gr_ref a = spawn_tm(NULL);
    const uint64_t huge[] = {UINT64_MAX, UINT64_MAX / 1000000u + 1};
    for (int i = 0; i < 2; i++) {
        for (int every = 0; every < 2; every++) {
            struct start_cmd s = {.ms = huge[i],
                                  .tag = (uint64_t)(10 * i + every),
                                  .type = T_TICK,
                                  .every = every};
            struct started st = start_on(a, &s);
            CHECK_EQ(st.rc, GR_OK);
            CHECK(quiet_for(100)); /* Not due for centuries. */
            CHECK_EQ(cancel_on(a, st.id), GR_OK);
        }
    }
    close_env();
}

/* Shutting the system down with timers pending is clean: thousands of
 * one-shots not due for a minute, periodic ones firing every millisecond
 * into busy mailboxes, starts still on their way to the I/O loop (an actor
 * starting timers nonstop until shutdown refuses them with GR_ESTOPPED);
 * terminate runs for every actor, and a start there is refused with
 * GR_ESTOPPED; nothing leaks (ASan).
 * Mutants caught (ASan): shutdown not freeing armed timers, or timers
 * still in the command list. */
static void test_shutdown_pending(void)
{
    for (int round = 0; round < 3 + FLOOD_ROUNDS; round++) {
        CHECK(open_env());
        atomic_store(&term_count, 0);
        atomic_store(&term_rc_after, 0);
        atomic_store(&term_rc_every, 0);
        struct tm_arg arg = {.term_timers = 1};
        struct many_cmd m = {.n_once = 500,
                             .once_ms = 60000,
                             .once_step = 1,
                             .n_every = 5,
                             .every_ms = 1};
        struct many_cmd z = {.n_once = 50}; /* Due at once. */
        /* Rounds from 3: shut down while one actor starts timers nonstop.
         * Many rounds: the I/O loop often takes the last starts before it
         * stops (they are then freed as armed timers); about one round in
         * three leaves some in the command list. */
        atomic_store(&flood_rc, GR_EFAILED);
        atomic_store(&flood_n, 0);
        if (round >= 3) {
            gr_ref f = spawn_tm(NULL);
            CHECK_EQ(cmd(f, C_FLOOD, NULL, 0), GR_OK);
            CHECK(drain_until(R_HELD, NULL, 0, NULL, 0));
            sleep_ms(5);
        }
        for (int i = 0; i < 4; i++) {
            gr_ref a = spawn_tm(&arg);
            CHECK(!gr_ref_is_none(a));
            CHECK_EQ(cmd(a, C_MANY, &m, sizeof m), GR_OK);
            CHECK_EQ(cmd(a, C_MANY, &z, sizeof z), GR_OK);
        }
        /* Round 0 waits for the starts; the others shut down at once. */
        if (round == 0) {
            int got = 0;
            while (got < 8) {
                struct started st;
                CHECK(drain_until(R_STARTED, &st, sizeof st, NULL, 0));
                CHECK_EQ(st.rc, GR_OK);
                got++;
            }
            sleep_ms(20);
        }
        gr_inbox_close(E.inbox);
        E.inbox = NULL;
        CHECK_EQ(gr_system_shutdown(E.sys), GR_OK);
        E.sys = NULL;
        sem_destroy(&gate);
        CHECK_EQ(atomic_load(&term_count), 4);
        CHECK_EQ(atomic_load(&term_rc_after), GR_ESTOPPED);
        CHECK_EQ(atomic_load(&term_rc_every), GR_ESTOPPED);
        if (round >= 3) {
            CHECK_EQ(atomic_load(&flood_rc), GR_ESTOPPED);
            CHECK(atomic_load(&flood_n) > 0);
        }
    }
}

TEST_MAIN(TEST_CASE(test_after), TEST_CASE(test_zero_and_init),
          TEST_CASE(test_every), TEST_CASE(test_cancel_stops_firing),
          TEST_CASE(test_cancel_queued), TEST_CASE(test_cancel_codes),
          TEST_CASE(test_die_with_owner), TEST_CASE(test_thousands),
          TEST_CASE(test_cancel_race), TEST_CASE(test_bad_args),
          TEST_CASE(test_shutdown_pending), TEST_CASE(test_huge_delay))
