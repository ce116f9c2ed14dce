/*
 * Timer tests, one case per rule of include/grove/timer.h: a one-shot
 * timer delivers exactly one copy of its message (type, payload, flag,
 * sender, id), never early; periodic timers repeat until cancelled; a
 * cancel discards even a message already queued and reports whether the
 * timer was live; timers die with their actor without dead letters;
 * thousands of live timers with half cancelled; start/cancel races; bad
 * arguments; shutdown with timers pending. Public API only; bounded waits,
 * lower bounds on time only.
 */
#include <grove/grove.h>

#include <semaphore.h>
#include <time.h>

#include "helpers.h"

enum {
    C_AFTER = 1, /* struct start: start timers; reports R_STARTED. */
    C_CANCEL,    /* uint64_t id: cancel it; reports R_RC. */
    C_BLOCK,     /* Report R_BLOCKED, wait for the gate; then cancel the
                    uint64_t id in the payload (0: none), report R_RC. */
    C_RACE,      /* uint32_t n: start-and-cancel race; reports R_RACE. */
    C_BAD,       /* Bad arguments; reports R_RC with the codes. */
    T_TICK = 50, /* The timers' own messages (type), payload: uint64_t. */
    R_STARTED = 100,
    R_FIRED,   /* struct fired */
    R_RC,      /* struct rc */
    R_BLOCKED, /* (empty) */
    R_RACE,    /* struct rc: handled count in a, cancelled in b */
};

/* C_AFTER: n timers, the k-th with delay ms + k * step, every `every` (0:
 * one-shot), payload tag + k; those with k % cancel_mod == 1 are cancelled
 * at once (cancel_mod 0: none). */
struct start {
    uint64_t ms, step, every, tag;
    uint32_t n, cancel_mod;
    int32_t from_init;
};

struct fired {
    uint64_t id, tag, corr;
    uint32_t type, flags;
    gr_ref from, self;
    double t;
};

struct rc {
    int32_t a, b, c, d, e;
    uint64_t id;
};

static gr_ref inbox_ref;
static sem_t gate;

static void report(gr_ctx *ctx, uint32_t type, const void *p, size_t len)
{
    (void)gr_send(gr_ctx_system(ctx), gr_self(ctx), inbox_ref, type, p, len);
}

/* The ids a C_AFTER started, reported in chunks. */
#define IDS_MAX 64
struct started {
    uint32_t first, n;
    uint64_t id[IDS_MAX];
    int32_t rc;
    uint64_t cancelled_hi; /* Bitmask of the chunk's cancelled ones. */
};

static int start_timers(gr_ctx *ctx, const struct start *s)
{
    struct started out = {0};
    for (uint32_t k = 0; k < s->n; k++) {
        uint64_t tag = s->tag + k, id = 0;
        uint64_t ms = s->ms + k * s->step;
        int rc =
            s->every
                ? gr_timer_every(ctx, s->every, T_TICK, &tag, sizeof tag, &id)
                : gr_timer_after(ctx, ms, T_TICK, &tag, sizeof tag, &id);
        if (rc != GR_OK)
            out.rc = rc;
        uint32_t slot = k % IDS_MAX;
        if (slot == 0) {
            out.first = k;
            out.n = 0;
            out.cancelled_hi = 0;
        }
        out.id[slot] = id;
        out.n++;
        if (s->cancel_mod && k % s->cancel_mod == 1) {
            if (gr_timer_cancel(ctx, id) != GR_OK)
                out.rc = GR_EFAILED;
            out.cancelled_hi |= (uint64_t)1 << slot;
        }
        if (out.n == IDS_MAX || k + 1 == s->n)
            report(ctx, R_STARTED, &out, sizeof out);
    }
    if (s->n == 0)
        report(ctx, R_STARTED, &out, sizeof out);
    return GR_CONTINUE;
}

static int timer_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    struct start s;
    if (arg == NULL)
        return GR_OK;
    if (read_arg(&s, sizeof s, arg, len) != GR_OK)
        return GR_EINVAL;
    return start_timers(ctx, &s);
}

static int timer_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    struct rc r = {0};
    switch (m->type) {
    case T_TICK: {
        struct fired f = {.corr = m->corr,
                          .type = m->type,
                          .flags = m->flags,
                          .from = m->from,
                          .self = gr_self(ctx),
                          .t = test_now()};
        if (!read_payload(m, &f.tag, sizeof f.tag))
            return GR_EUNHANDLED;
        f.id = m->corr;
        report(ctx, R_FIRED, &f, sizeof f);
        return GR_CONTINUE;
    }
    case C_AFTER: {
        struct start s;
        if (!read_payload(m, &s, sizeof s))
            return GR_EUNHANDLED;
        return start_timers(ctx, &s);
    }
    case C_CANCEL:
        if (!read_payload(m, &r.id, sizeof r.id))
            return GR_EUNHANDLED;
        r.a = gr_timer_cancel(ctx, r.id);
        report(ctx, R_RC, &r, sizeof r);
        return GR_CONTINUE;
    case C_BLOCK: {
        if (!read_payload(m, &r.id, sizeof r.id))
            return GR_EUNHANDLED;
        report(ctx, R_BLOCKED, NULL, 0);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += WAIT_MS / 1000;
        (void)sem_timedwait(&gate, &dl);
        r.a = r.id ? gr_timer_cancel(ctx, r.id) : GR_OK;
        report(ctx, R_RC, &r, sizeof r);
        return GR_CONTINUE;
    }
    case C_BAD: {
        uint64_t id, v = 1;
        r.a = gr_timer_after(ctx, 1, GR_MSG_RESERVED, NULL, 0, &id);
        r.b = gr_timer_after(ctx, 1, T_TICK, NULL, 4, &id);
        r.c = gr_timer_after(ctx, 1, T_TICK, &v, 0, &id);
        r.d = gr_timer_every(ctx, 0, T_TICK, &v, sizeof v, &id);
        r.e = gr_timer_cancel(ctx, 0);
        report(ctx, R_RC, &r, sizeof r);
        return GR_CONTINUE;
    }
    default:
        return GR_EUNHANDLED;
    }
}

static const gr_behaviour timer_b = {
    .name = "timers",
    .init = timer_init,
    .handle = timer_handle,
};

/* An actor that races starts against cancels in one handler call. */
struct racer {
    uint64_t *ids;      /* Started. */
    uint8_t *cancelled; /* Per started timer. */
    uint8_t *handled;
    uint32_t n, nhandled, bad;
};

static int racer_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct racer *s = state;
    if (m->type == T_TICK) {
        uint64_t k;
        if (!read_payload(m, &k, sizeof k) || k >= s->n || s->cancelled[k] ||
            s->handled[k] || m->corr != s->ids[k])
            s->bad++;
        else
            s->handled[k] = 1;
        s->nhandled++;
        return GR_CONTINUE;
    }
    if (m->type == C_RACE) {
        uint32_t n;
        if (!read_payload(m, &n, sizeof n))
            return GR_EUNHANDLED;
        s->ids = calloc(n, sizeof *s->ids);
        s->cancelled = calloc(n, 1);
        s->handled = calloc(n, 1);
        if (s->ids == NULL || s->cancelled == NULL || s->handled == NULL)
            return GR_ENOMEM;
        s->n = n;
        for (uint64_t k = 0; k < n; k++) {
            if (gr_timer_after(ctx, k % 3, T_TICK, &k, sizeof k, &s->ids[k]) !=
                GR_OK)
                s->bad++;
            /* Cancel the odd ones at once, and every fourth even one a
             * few starts later (its message may be queued by then). */
            uint64_t victim = k % 2 ? k : k % 8 == 0 && k >= 8 ? k - 8 : n;
            if (victim < n && !s->cancelled[victim]) {
                if (gr_timer_cancel(ctx, s->ids[victim]) != GR_OK)
                    s->bad++;
                s->cancelled[victim] = 1;
            }
        }
        return GR_CONTINUE;
    }
    if (m->type == C_CANCEL) { /* Report. */
        struct rc r = {.a = (int32_t)s->nhandled, .b = (int32_t)s->bad};
        for (uint32_t k = 0; k < s->n; k++)
            r.c += !s->cancelled[k];
        report(ctx, R_RACE, &r, sizeof r);
        return GR_CONTINUE;
    }
    return GR_EUNHANDLED;
}

static void racer_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)ctx;
    (void)why;
    struct racer *s = state;
    free(s->ids);
    free(s->cancelled);
    free(s->handled);
}

static const gr_behaviour racer_b = {
    .name = "racer",
    .state_size = sizeof(struct racer),
    .handle = racer_handle,
    .terminate = racer_terminate,
};

/* ---- helpers ------------------------------------------------------------- */

static struct env E;

static int open_env(void)
{
    if (!env_open_quiet(&E, 2))
        return 0;
    inbox_ref = gr_inbox_ref(E.inbox);
    sem_init(&gate, 0, 0);
    return 1;
}

static void close_env(void)
{
    env_close(&E);
    sem_destroy(&gate);
}

static gr_ref spawn_with(const struct start *s)
{
    gr_ref r = GR_REF_NONE;
    (void)gr_system_spawn(E.sys, &timer_b, s, s ? sizeof *s : 0, &r);
    return r;
}

static int take(uint32_t type, void *out, size_t len)
{
    return recv_exact(E.inbox, type, out, len) == GR_OK;
}

/* Receives the next message, which must be an empty one of type. */
static int take_empty(uint32_t type)
{
    gr_msg *m = NULL;
    if (gr_inbox_recv(E.inbox, &m, WAIT_MS) != GR_OK)
        return 0;
    int ok = m->type == type && m->len == 0;
    gr_msg_free(m);
    return ok;
}

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

static int cmd(gr_ref to, uint32_t type, const void *p, size_t len)
{
    return gr_send(E.sys, GR_REF_NONE, to, type, p, len);
}

/* ---- cases --------------------------------------------------------------- */

/* A one-shot timer delivers one copy of its message: the type and payload
 * given, GR_MSG_TIMER, from the actor itself, corr its id; not before its
 * delay. Delay 0 comes promptly; a timer started in init works. */
static void test_after(void)
{
    CHECK(open_env());
    gr_ref a = spawn_with(NULL);
    struct start s = {.ms = 80, .tag = 7, .n = 1};
    double t0 = test_now();
    CHECK_EQ(cmd(a, C_AFTER, &s, sizeof s), GR_OK);
    struct started st;
    CHECK(take(R_STARTED, &st, sizeof st));
    CHECK_EQ(st.rc, GR_OK);
    CHECK(st.id[0] != 0);
    struct fired f;
    CHECK(take(R_FIRED, &f, sizeof f));
    CHECK(f.t - t0 >= 0.080);
    CHECK_EQ(f.type, T_TICK);
    CHECK_EQ(f.flags, GR_MSG_TIMER);
    CHECK_EQ(f.tag, 7);
    CHECK_EQ(f.corr, st.id[0]);
    CHECK(gr_ref_eq(f.from, a));
    CHECK(quiet_for(150));
    /* Zero delay, and from init. */
    struct start z = {.ms = 0, .tag = 9, .n = 1};
    gr_ref b = spawn_with(&z);
    CHECK(take(R_STARTED, &st, sizeof st));
    CHECK(take(R_FIRED, &f, sizeof f));
    CHECK(gr_ref_eq(f.self, b));
    CHECK_EQ(f.tag, 9);
    CHECK(quiet_for(50));
    close_env();
}

/* A periodic timer repeats, the k-th message not before k periods; after
 * its cancel nothing more comes; a zero period is refused. */
static void test_every(void)
{
    CHECK(open_env());
    gr_ref a = spawn_with(NULL);
    struct start s = {.every = 20, .tag = 3, .n = 1};
    double t0 = test_now();
    CHECK_EQ(cmd(a, C_AFTER, &s, sizeof s), GR_OK);
    struct started st;
    CHECK(take(R_STARTED, &st, sizeof st));
    for (int k = 1; k <= 5; k++) {
        struct fired f;
        CHECK(take(R_FIRED, &f, sizeof f));
        CHECK(f.t - t0 >= 0.020 * k);
        CHECK_EQ(f.corr, st.id[0]);
        CHECK_EQ(f.tag, 3);
    }
    CHECK_EQ(cmd(a, C_CANCEL, &st.id[0], sizeof st.id[0]), GR_OK);
    /* Messages that came before the cancel's report may still be in the
     * inbox; after the report, nothing. */
    for (;;) {
        gr_msg *m = NULL;
        CHECK_EQ(gr_inbox_recv(E.inbox, &m, WAIT_MS), GR_OK);
        uint32_t type = m->type;
        struct rc r = {0};
        int ok = type != R_RC || read_payload(m, &r, sizeof r);
        gr_msg_free(m);
        CHECK(ok);
        if (type == R_RC) {
            CHECK_EQ(r.a, GR_OK);
            break;
        }
        CHECK_EQ(type, R_FIRED);
    }
    CHECK(quiet_for(100));
    CHECK_EQ(cmd(a, C_BAD, NULL, 0), GR_OK);
    struct rc r;
    CHECK(take(R_RC, &r, sizeof r));
    CHECK_EQ(r.d, GR_EINVAL);
    close_env();
}

/* A cancel made while the timer's message waits in the mailbox discards
 * it; cancel reports GR_ENOTFOUND for a timer handled already, cancelled
 * already, or unknown. */
static void test_cancel_queued(void)
{
    CHECK(open_env());
    gr_ref a = spawn_with(NULL);
    struct start s = {.ms = 1, .tag = 1, .n = 1};
    CHECK_EQ(cmd(a, C_AFTER, &s, sizeof s), GR_OK);
    struct started st;
    CHECK(take(R_STARTED, &st, sizeof st));
    /* The timer may fire before the block; then its message is handled
     * first, and the cancel finds nothing. */
    struct fired f;
    CHECK_EQ(cmd(a, C_BLOCK, &st.id[0], sizeof st.id[0]), GR_OK);
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(E.inbox, &m, WAIT_MS), GR_OK);
    uint32_t first = m->type;
    gr_msg_free(m);
    if (first == R_FIRED) {
        /* Fired and handled before the block: cancel finds nothing. */
        CHECK(take_empty(R_BLOCKED));
        sem_post(&gate);
        struct rc r;
        CHECK(take(R_RC, &r, sizeof r));
        CHECK_EQ(r.a, GR_ENOTFOUND);
    } else {
        CHECK_EQ(first, R_BLOCKED);
        sleep_ms(30); /* The 1 ms timer fires: its message is queued. */
        sem_post(&gate);
        struct rc r;
        CHECK(take(R_RC, &r, sizeof r));
        CHECK_EQ(r.a, GR_OK);
        CHECK(quiet_for(100)); /* Its message was discarded. */
    }
    /* Handled one-shot, second cancel, unknown id. */
    CHECK_EQ(cmd(a, C_AFTER, &s, sizeof s), GR_OK);
    CHECK(take(R_STARTED, &st, sizeof st));
    CHECK(take(R_FIRED, &f, sizeof f));
    CHECK_EQ(cmd(a, C_CANCEL, &st.id[0], sizeof st.id[0]), GR_OK);
    struct rc r;
    CHECK(take(R_RC, &r, sizeof r));
    CHECK_EQ(r.a, GR_ENOTFOUND);
    s.ms = 10000;
    CHECK_EQ(cmd(a, C_AFTER, &s, sizeof s), GR_OK);
    CHECK(take(R_STARTED, &st, sizeof st));
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(cmd(a, C_CANCEL, &st.id[0], sizeof st.id[0]), GR_OK);
        CHECK(take(R_RC, &r, sizeof r));
        CHECK_EQ(r.a, i == 0 ? GR_OK : GR_ENOTFOUND);
    }
    uint64_t unknown = st.id[0] + 1000000;
    CHECK_EQ(cmd(a, C_CANCEL, &unknown, sizeof unknown), GR_OK);
    CHECK(take(R_RC, &r, sizeof r));
    CHECK_EQ(r.a, GR_ENOTFOUND);
    CHECK(quiet_for(50));
    close_env();
}

/* An actor's timers die with it, whatever the exit: no message comes
 * after, none is a dead letter, nothing leaks (ASan). */
static void test_die_with_owner(void)
{
    CHECK(open_env());
    for (int how = 0; how < 2; how++) {
        gr_ref a = spawn_with(NULL);
        struct start once = {.ms = 30, .step = 1, .tag = 0, .n = 40};
        struct start every = {.every = 5, .tag = 100, .n = 20};
        CHECK_EQ(cmd(a, C_AFTER, &once, sizeof once), GR_OK);
        CHECK_EQ(cmd(a, C_AFTER, &every, sizeof every), GR_OK);
        struct started st;
        CHECK(take(R_STARTED, &st, sizeof st));
        CHECK(take(R_STARTED, &st, sizeof st));
        const gr_reason kill = gr_reason_of(GR_EKILL);
        if (how == 0)
            CHECK_EQ(gr_stop(E.sys, a), GR_OK);
        else
            CHECK_EQ(gr_system_exit(E.sys, a, &kill), GR_OK);
        CHECK_EQ(wait_stat(E.sys, stat_exited, 0, (uint64_t)how + 1),
                 (uint64_t)how + 1);
        /* Drain what fired before the exit, then silence. */
        gr_msg *m = NULL;
        while (gr_inbox_recv(E.inbox, &m, 100) == GR_OK) {
            CHECK_EQ(m->type, R_FIRED);
            gr_msg_free(m);
        }
        CHECK(quiet_for(100));
    }
    CHECK_EQ(total_dead(), 0);
    close_env();
}

#define ACTORS 10
#define PER    300

/* Thousands of live timers, half cancelled at once: exactly the others
 * fire, each once, each with its own tag and id. */
static void test_thousands(void)
{
    CHECK(open_env());
    static uint64_t ids[ACTORS][PER];
    static uint8_t seen[ACTORS][PER], cancelled[ACTORS][PER];
    gr_ref who[ACTORS];
    memset(seen, 0, sizeof seen);
    memset(cancelled, 0, sizeof cancelled);
    for (int i = 0; i < ACTORS; i++) {
        who[i] = spawn_with(NULL);
        struct start s = {.ms = 1,
                          .step = 1,
                          .tag = (uint64_t)i * PER,
                          .n = PER,
                          .cancel_mod = 2};
        s.step = 100 / PER + 1;
        CHECK_EQ(cmd(who[i], C_AFTER, &s, sizeof s), GR_OK);
    }
    unsigned expected = 0, chunks = 0;
    const unsigned want_chunks = ACTORS * ((PER + IDS_MAX - 1) / IDS_MAX);
    unsigned fired = 0;
    /* Started reports and firings interleave. */
    static struct fired early[ACTORS * PER];
    unsigned nearly = 0;
    while (chunks < want_chunks) {
        gr_msg *m = NULL;
        CHECK_EQ(gr_inbox_recv(E.inbox, &m, WAIT_MS), GR_OK);
        if (m->type == R_FIRED) {
            CHECK(read_payload(m, &early[nearly++], sizeof early[0]));
            gr_msg_free(m);
            continue;
        }
        struct started st;
        int ok = m->type == R_STARTED && read_payload(m, &st, sizeof st);
        gr_ref from = m->from;
        gr_msg_free(m);
        CHECK(ok);
        CHECK_EQ(st.rc, GR_OK);
        int i = 0;
        while (i < ACTORS && !gr_ref_eq(who[i], from))
            i++;
        CHECK(i < ACTORS);
        for (uint32_t j = 0; j < st.n; j++) {
            ids[i][st.first + j] = st.id[j];
            cancelled[i][st.first + j] = (st.cancelled_hi >> j) & 1;
            expected += !cancelled[i][st.first + j];
        }
        chunks++;
    }
    for (unsigned got = 0; got < expected; got++) {
        struct fired f;
        if (got < nearly)
            f = early[got];
        else
            CHECK(take(R_FIRED, &f, sizeof f));
        uint64_t i = f.tag / PER, k = f.tag % PER;
        CHECK(i < ACTORS);
        CHECK(gr_ref_eq(who[i], f.self));
        CHECK_EQ(cancelled[i][k], 0);
        CHECK_EQ(seen[i][k], 0);
        CHECK_EQ(f.corr, ids[i][k]);
        seen[i][k] = 1;
        fired++;
    }
    CHECK_EQ(fired, expected);
    CHECK(quiet_for(200));
    CHECK_EQ(total_dead(), 0);
    close_env();
}

/* Starts and cancels racing with firings: no cancelled timer's message is
 * handled, every other one exactly once. */
static void test_cancel_race(void)
{
    CHECK(open_env());
    gr_ref r = GR_REF_NONE;
    CHECK_EQ(gr_system_spawn(E.sys, &racer_b, NULL, 0, &r), GR_OK);
    uint32_t n = 4000;
    CHECK_EQ(cmd(r, C_RACE, &n, sizeof n), GR_OK);
    struct rc out = {0};
    double end = test_now() + WAIT_MS / 1000.0;
    do {
        sleep_ms(20);
        CHECK_EQ(cmd(r, C_CANCEL, NULL, 0), GR_OK);
        CHECK(take(R_RACE, &out, sizeof out));
    } while (out.a < out.c && test_now() < end);
    CHECK_EQ(out.b, 0);     /* No cancelled, duplicate or wrong message. */
    CHECK_EQ(out.a, out.c); /* Every live one handled. */
    sleep_ms(50);
    CHECK_EQ(cmd(r, C_CANCEL, NULL, 0), GR_OK);
    CHECK(take(R_RACE, &out, sizeof out));
    CHECK_EQ(out.a, out.c);
    CHECK_EQ(out.b, 0);
    close_env();
}

/* Bad arguments are refused; shutting down with timers pending is clean. */
static void test_bad_args_and_shutdown(void)
{
    CHECK(open_env());
    gr_ref a = spawn_with(NULL);
    CHECK_EQ(cmd(a, C_BAD, NULL, 0), GR_OK);
    struct rc r;
    CHECK(take(R_RC, &r, sizeof r));
    CHECK_EQ(r.a, GR_EINVAL);
    CHECK_EQ(r.b, GR_EINVAL);
    CHECK_EQ(r.c, GR_EINVAL);
    CHECK_EQ(r.d, GR_EINVAL);
    CHECK_EQ(r.e, GR_EINVAL);
    struct start s = {.ms = 60000, .n = 50};
    struct start e = {.every = 60000, .n = 50};
    CHECK_EQ(cmd(a, C_AFTER, &s, sizeof s), GR_OK);
    CHECK_EQ(cmd(a, C_AFTER, &e, sizeof e), GR_OK);
    struct started st;
    CHECK(take(R_STARTED, &st, sizeof st));
    CHECK(take(R_STARTED, &st, sizeof st));
    close_env(); /* ASan: every timer freed. */
}

TEST_MAIN(TEST_CASE(test_after), TEST_CASE(test_every),
          TEST_CASE(test_cancel_queued), TEST_CASE(test_die_with_owner),
          TEST_CASE(test_thousands), TEST_CASE(test_cancel_race),
          TEST_CASE(test_bad_args_and_shutdown))
