/*
 * Ask, reply and call tests, one case per rule of include/grove/ask.h:
 * replies matched by correlation id with many asks in flight answered out
 * of order, exactly one answer per ask, continuations, timeouts that fire
 * once and never early, late and second replies as expired_reply dead
 * letters, the callee gone, crashing, exiting with requests held or
 * queued, the asker exiting, bad arguments, and gr_call from several
 * threads, with timeouts, failures, and from inside a handler. Public API
 * only; bounded waits, no speed assertions.
 */
#include <grove/grove.h>

#include <pthread.h>
#include <semaphore.h>
#include <time.h>

#include "helpers.h"

/* A crash code no runtime path produces. */
#define CODE_CRASH (-1000)
/* A timeout no case waits for: a failure must come long before it. */
#define LONG_MS 30000u

/* ---- messages ------------------------------------------------------------ */

enum {
    Q = 1,         /* A request to a callee: struct q. */
    A,             /* Its reply: uint32_t, twice the value asked. */
    C_RELEASE,     /* To a callee: answer every held request, newest first. */
    C_BLOCK,       /* To a callee: report R_BLOCKED, wait for the gate, then
                      return the int32_t payload. */
    C_ASK,         /* To an asker: struct ask_cmd. */
    C_TELL_ME,     /* To a callee: a plain tell it tries to gr_reply to. */
    C_CALL,        /* To an actor: try gr_call from inside a handler. */
    R_ASKED = 100, /* Asker -> inbox: struct rep (rc, corr). */
    R_ANSWER,      /* Asker -> inbox: struct rep, one per answer. */
    R_BLOCKED,     /* Callee -> inbox. */
    R_RC,          /* Any -> inbox: struct rep with rc. */
    R_TERM,        /* Asker -> inbox: struct rep with code (terminate). */
};

/* What a callee does with a request. */
enum { M_REPLY, M_HOLD, M_IGNORE, M_CRASH, M_TWICE };

struct q {
    uint32_t val;
    int32_t mode;
};

/* C_ASK: ask target for val in mode; with cont, through gr_ask_then. */
struct ask_cmd {
    gr_ref target;
    struct q q;
    uint64_t timeout_ms;
    int32_t cont;      /* 0: handle; 1: continuation returning GR_CONTINUE;
                          2: ... returning GR_STOP; 3: ... returning
                          CODE_CRASH. */
    uint32_t reserved; /* Nonzero: ask with a reserved type. */
};

/* A report to the test's inbox. */
struct rep {
    int32_t rc;
    int32_t via_cont; /* The answer came to the continuation. */
    uint64_t corr;
    uint32_t type;  /* The answer's type. */
    uint32_t flags; /* The answer's flags. */
    uint32_t val;   /* A's payload. */
    int32_t code;   /* GR_MSG_ASK_FAILED's reason code (or R_TERM's). */
    int32_t arg_ok; /* The continuation got its arg. */
    gr_ref from;    /* The answer's sender. */
    gr_ref self;    /* The reporter. */
    double t;       /* When the answer came (test_now()). */
};

static gr_ref inbox_ref;

static void report(gr_ctx *ctx, uint32_t type, struct rep *r)
{
    r->self = gr_self(ctx);
    r->t = test_now();
    (void)gr_send(gr_ctx_system(ctx), gr_self(ctx), inbox_ref, type, r,
                  sizeof *r);
}

/* ---- the callee ---------------------------------------------------------- */

#define HELD_MAX 256

struct callee {
    gr_request held[HELD_MAX];
    uint32_t vals[HELD_MAX];
    unsigned nheld;
};

static sem_t gate;

static int callee_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct callee *c = state;
    struct q q;
    struct rep r = {0};
    switch (m->type) {
    case Q:
        if (!read_payload(m, &q, sizeof q))
            return GR_EUNHANDLED;
        if (q.mode == M_CRASH)
            return CODE_CRASH;
        if (q.mode == M_IGNORE)
            return GR_CONTINUE;
        if (q.mode == M_HOLD) {
            if (c->nheld == HELD_MAX)
                return GR_EUNHANDLED;
            c->vals[c->nheld] = q.val;
            c->held[c->nheld++] = gr_request_of(m);
            return GR_CONTINUE;
        }
        q.val *= 2;
        if (q.mode == M_TWICE)
            (void)gr_reply(ctx, m, A, &q.val, sizeof q.val);
        return gr_reply(ctx, m, A, &q.val, sizeof q.val);
    case C_RELEASE:
        while (c->nheld > 0) {
            c->nheld--;
            uint32_t v = c->vals[c->nheld] * 2;
            int rc = gr_reply_to(ctx, &c->held[c->nheld], A, &v, sizeof v);
            if (rc != GR_OK)
                return rc;
        }
        return GR_CONTINUE;
    case C_BLOCK: {
        int32_t ret;
        if (!read_payload(m, &ret, sizeof ret))
            return GR_EUNHANDLED;
        report(ctx, R_BLOCKED, &r);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += WAIT_MS / 1000;
        (void)sem_timedwait(&gate, &dl);
        return ret;
    }
    case C_TELL_ME: {
        r.rc = gr_reply(ctx, m, A, NULL, 0);
        struct rep r2 = {0};
        gr_msg fake = *m;
        fake.flags = GR_MSG_REQUEST;
        fake.corr = 7;
        r2.rc = gr_reply(ctx, &fake, GR_MSG_RESERVED + 5, NULL, 0);
        r.code = r2.rc;
        gr_request none = gr_request_of(m);
        r.corr = none.corr;
        report(ctx, R_RC, &r);
        return GR_CONTINUE;
    }
    case C_CALL: {
        gr_msg *reply = NULL;
        r.rc =
            gr_call(gr_ctx_system(ctx), gr_self(ctx), Q, NULL, 0, 10, &reply);
        r.val = reply == NULL;
        report(ctx, R_RC, &r);
        return GR_CONTINUE;
    }
    default:
        return GR_EUNHANDLED;
    }
}

static const gr_behaviour callee_b = {
    .name = "callee",
    .state_size = sizeof(struct callee),
    .handle = callee_handle,
};

/* ---- the asker ----------------------------------------------------------- */

struct asker {
    uint32_t answers; /* Answers seen, through either path. */
};

/* Reports answer m (via handle or a continuation). */
static void report_answer(gr_ctx *ctx, const gr_msg *m, int via_cont,
                          int arg_ok)
{
    struct rep r = {.corr = m->corr,
                    .type = m->type,
                    .flags = m->flags,
                    .from = m->from,
                    .via_cont = via_cont,
                    .arg_ok = arg_ok};
    if (m->type == A && !read_payload(m, &r.val, sizeof r.val))
        r.rc = GR_EINVAL;
    if (m->type == GR_MSG_ASK_FAILED) {
        gr_reason why;
        r.rc = gr_ask_failed_read(m, &why);
        r.code = why.code;
    }
    report(ctx, R_ANSWER, &r);
}

static int cont_arg_token;

static int cont_fn(gr_ctx *ctx, void *state, const gr_msg *m, void *arg)
{
    struct asker *s = state;
    s->answers++;
    report_answer(ctx, m, 1, arg == &cont_arg_token);
    return GR_CONTINUE;
}

static int cont_stop(gr_ctx *ctx, void *state, const gr_msg *m, void *arg)
{
    (void)cont_fn(ctx, state, m, arg);
    return GR_STOP;
}

static int cont_crash(gr_ctx *ctx, void *state, const gr_msg *m, void *arg)
{
    (void)cont_fn(ctx, state, m, arg);
    return CODE_CRASH;
}

static int asker_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct asker *s = state;
    if (m->flags & GR_MSG_REPLY) {
        s->answers++;
        report_answer(ctx, m, 0, 0);
        return GR_CONTINUE;
    }
    struct ask_cmd c;
    if (m->type != C_ASK || !read_payload(m, &c, sizeof c))
        return GR_EUNHANDLED;
    static const gr_ask_fn conts[] = {NULL, cont_fn, cont_stop, cont_crash};
    struct rep r = {0};
    uint32_t type = c.reserved ? GR_MSG_RESERVED + 9 : Q;
    if (c.cont == 0)
        r.rc = gr_ask(ctx, c.target, type, &c.q, sizeof c.q, c.timeout_ms,
                      &r.corr);
    else
        r.rc = gr_ask_then(ctx, c.target, type, &c.q, sizeof c.q, c.timeout_ms,
                           conts[c.cont], &cont_arg_token, &r.corr);
    report(ctx, R_ASKED, &r);
    return GR_CONTINUE;
}

static void asker_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)state;
    struct rep r = {.code = why->code};
    report(ctx, R_TERM, &r);
}

static const gr_behaviour asker_b = {
    .name = "asker",
    .state_size = sizeof(struct asker),
    .handle = asker_handle,
    .terminate = asker_terminate,
};

/* ---- helpers ------------------------------------------------------------- */

static struct env E;

static int open_env(unsigned workers)
{
    if (!env_open_quiet(&E, workers))
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

static gr_ref spawn(const gr_behaviour *b)
{
    gr_ref r = GR_REF_NONE;
    (void)gr_system_spawn(E.sys, b, NULL, 0, &r);
    return r;
}

/* Receives the next report of type into *r (bounded). */
static int take(uint32_t type, struct rep *r)
{
    return recv_exact(E.inbox, type, r, sizeof *r) == GR_OK;
}

/* Returns 1 if no message reaches the inbox for ms milliseconds. */
static int quiet_for(int ms)
{
    gr_msg *m = NULL;
    if (gr_inbox_recv(E.inbox, &m, ms) == GR_ETIMEDOUT)
        return 1;
    fprintf(stderr, "  unexpected message type %u\n", (unsigned)m->type);
    gr_msg_free(m);
    return 0;
}

/* Tells asker to ask; returns gr_ask's code and stores the id in *corr. */
static int ask(gr_ref asker, struct ask_cmd c, uint64_t *corr)
{
    struct rep r;
    if (gr_send(E.sys, GR_REF_NONE, asker, C_ASK, &c, sizeof c) != GR_OK ||
        !take(R_ASKED, &r))
        return GR_ETIMEDOUT;
    if (corr != NULL)
        *corr = r.corr;
    return r.rc;
}

static int cmd(gr_ref to, uint32_t type, const void *data, size_t len)
{
    return gr_send(E.sys, GR_REF_NONE, to, type, data, len);
}

static uint64_t dead(int reason)
{
    return stats_of(E.sys).dead_letters[reason];
}

/* Waits until the dead letters of reason reach want; returns the count. */
static uint64_t wait_dead_of(int reason, uint64_t want)
{
    return wait_dead(E.sys, (gr_dead_reason)reason, want);
}

/* An ask command: target, value, mode, timeout, continuation kind. */
static struct ask_cmd ac(gr_ref target, uint32_t val, int mode,
                         uint64_t timeout_ms, int cont)
{
    return (struct ask_cmd){.target = target,
                            .q = {.val = val, .mode = mode},
                            .timeout_ms = timeout_ms,
                            .cont = cont};
}

/* An ask command with a reserved request type. */
static struct ask_cmd ac_reserved(gr_ref target, uint32_t val, int mode,
                                  uint64_t timeout_ms)
{
    struct ask_cmd c = ac(target, val, mode, timeout_ms, 0);
    c.reserved = 1;
    return c;
}

/* ---- cases --------------------------------------------------------------- */

/* A reply comes back with the ask's corr, the reply flag, the callee as
 * sender and the callee's payload; exactly one answer per ask. */
static void test_reply(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    uint64_t corr, corr2;
    CHECK_EQ(ask(asker, ac(callee, 21, M_REPLY, 1000, 0), &corr), GR_OK);
    CHECK(corr != 0);
    struct rep r;
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.type, A);
    CHECK_EQ(r.flags, GR_MSG_REPLY);
    CHECK_EQ(r.val, 42);
    CHECK(gr_ref_eq(r.from, callee));
    CHECK_EQ(r.via_cont, 0);
    /* A second ask gets a fresh id. */
    CHECK_EQ(ask(asker, ac(callee, 5, M_REPLY, 0, 0), &corr2), GR_OK);
    CHECK(corr2 != corr);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.corr, corr2);
    CHECK_EQ(r.val, 10);
    CHECK(quiet_for(100));
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    close_env();
}

#define ASKERS  3
#define CALLEES 2
#define PER     40

/* Many asks in flight from several askers to several callees, held and
 * answered newest first: every ask gets exactly one answer, matched by
 * corr, with its own value. */
static void test_many_out_of_order(void)
{
    CHECK(open_env(2));
    gr_ref callees[CALLEES], askers[ASKERS];
    for (int i = 0; i < CALLEES; i++)
        callees[i] = spawn(&callee_b);
    for (int i = 0; i < ASKERS; i++)
        askers[i] = spawn(&asker_b);
    enum { N = ASKERS * CALLEES * PER };
    static uint64_t corr[N];
    static uint32_t val[N];
    static gr_ref who[N];
    static int seen[N];
    int n = 0;
    for (int k = 0; k < PER; k++)
        for (int a = 0; a < ASKERS; a++)
            for (int c = 0; c < CALLEES; c++) {
                val[n] = (uint32_t)(1000 * a + 100 * c + k);
                who[n] = askers[a];
                seen[n] = 0;
                CHECK_EQ(ask(askers[a],
                             ac(callees[c], val[n], M_HOLD, LONG_MS, 0),
                             &corr[n]),
                         GR_OK);
                n++;
            }
    CHECK(quiet_for(50)); /* Held: no answer yet. */
    for (int c = 0; c < CALLEES; c++)
        CHECK_EQ(cmd(callees[c], C_RELEASE, NULL, 0), GR_OK);
    for (int got = 0; got < N; got++) {
        struct rep r;
        CHECK(take(R_ANSWER, &r));
        int i = 0;
        while (i < N && corr[i] != r.corr)
            i++;
        CHECK(i < N);
        CHECK_EQ(seen[i], 0);
        seen[i] = 1;
        CHECK(gr_ref_eq(r.self, who[i]));
        CHECK_EQ(r.type, A);
        CHECK_EQ(r.val, 2 * val[i]);
    }
    CHECK(quiet_for(100));
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    close_env();
}

/* An ask nobody answers times out once, not before its timeout, with the
 * callee as sender; the reply that comes later, and a second reply to one
 * request, are expired_reply dead letters that never reach the asker. */
static void test_timeout_and_late_reply(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    uint64_t corr;
    double t0 = test_now();
    CHECK_EQ(ask(asker, ac(callee, 1, M_HOLD, 60, 0), &corr), GR_OK);
    struct rep r;
    CHECK(take(R_ANSWER, &r));
    CHECK(r.t - t0 >= 0.060);
    CHECK_EQ(r.type, GR_MSG_TIMEOUT);
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.flags, GR_MSG_REPLY);
    CHECK(gr_ref_eq(r.from, callee));
    CHECK(quiet_for(100)); /* Once. */
    CHECK_EQ(cmd(callee, C_RELEASE, NULL, 0), GR_OK);
    CHECK_EQ(wait_dead_of(GR_DL_EXPIRED_REPLY, 1), 1);
    CHECK(quiet_for(50));
    /* Two replies to one request: the first is the answer. */
    CHECK_EQ(ask(asker, ac(callee, 4, M_TWICE, 1000, 0), &corr), GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.val, 8);
    CHECK_EQ(wait_dead_of(GR_DL_EXPIRED_REPLY, 2), 2);
    CHECK(quiet_for(50));
    CHECK_EQ(stats_of(E.sys).dead_letters[GR_DL_EXPIRED_REPLY], 2);
    close_env();
}

/* Many short timeouts at once: each fires exactly once. */
static void test_timeouts_fire_once(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    enum { N = 200 };
    static uint64_t asked[N], answered[N];
    int nasked = 0, nanswered = 0;
    for (int i = 0; i < N; i++) {
        struct ask_cmd c =
            ac(callee, (uint32_t)i, M_IGNORE, (uint64_t)(1 + i % 20), 0);
        CHECK_EQ(cmd(asker, C_ASK, &c, sizeof c), GR_OK);
    }
    /* The asks' and the timeouts' reports interleave. */
    while (nasked < N || nanswered < N) {
        gr_msg *m = NULL;
        CHECK_EQ(gr_inbox_recv(E.inbox, &m, WAIT_MS), GR_OK);
        struct rep r;
        int ok = read_payload(m, &r, sizeof r);
        uint32_t type = m->type;
        gr_msg_free(m);
        CHECK(ok);
        if (type == R_ASKED) {
            CHECK_EQ(r.rc, GR_OK);
            CHECK(nasked < N);
            asked[nasked++] = r.corr;
        } else {
            CHECK_EQ(type, R_ANSWER);
            CHECK_EQ(r.type, GR_MSG_TIMEOUT);
            CHECK(nanswered < N);
            answered[nanswered++] = r.corr;
        }
    }
    /* Each asked id answered exactly once. */
    for (int i = 0; i < N; i++) {
        int hits = 0;
        for (int j = 0; j < N; j++)
            hits += answered[j] == asked[i];
        CHECK_EQ(hits, 1);
    }
    CHECK(quiet_for(100));
    close_env();
}

/* A target already gone: gr_ask says so and no answer follows. */
static void test_callee_gone(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    CHECK_EQ(gr_stop(E.sys, callee), GR_OK);
    CHECK_EQ(wait_stat(E.sys, stat_exited, 0, 1), 1);
    CHECK_EQ(ask(asker, ac(callee, 1, M_REPLY, 50, 0), NULL), GR_ENOACTOR);
    CHECK(quiet_for(150));
    close_env();
}

/* A callee that crashes on the request fails the ask at once with its
 * crash reason, long before the timeout. */
static void test_callee_crashes(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    uint64_t corr;
    double t0 = test_now();
    CHECK_EQ(ask(asker, ac(callee, 1, M_CRASH, LONG_MS, 0), &corr), GR_OK);
    struct rep r;
    CHECK(take(R_ANSWER, &r));
    CHECK(r.t - t0 < 5.0);
    CHECK_EQ(r.type, GR_MSG_ASK_FAILED);
    CHECK_EQ(r.flags, GR_MSG_REPLY);
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.rc, GR_OK);
    CHECK_EQ(r.code, CODE_CRASH);
    CHECK(gr_ref_eq(r.from, callee));
    CHECK(quiet_for(100));
    close_env();
}

/* A callee that exits holding requests (kept for a deferred reply, or
 * left unanswered) fails each one with its exit reason. */
static void test_callee_exits_holding(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    uint64_t c1, c2;
    CHECK_EQ(ask(asker, ac(callee, 1, M_HOLD, LONG_MS, 0), &c1), GR_OK);
    CHECK_EQ(ask(asker, ac(callee, 2, M_IGNORE, LONG_MS, 0), &c2), GR_OK);
    CHECK(quiet_for(50));
    CHECK_EQ(gr_stop(E.sys, callee), GR_OK);
    int got1 = 0, got2 = 0;
    for (int i = 0; i < 2; i++) {
        struct rep r;
        CHECK(take(R_ANSWER, &r));
        CHECK_EQ(r.type, GR_MSG_ASK_FAILED);
        CHECK_EQ(r.code, GR_ESHUTDOWN);
        got1 += r.corr == c1;
        got2 += r.corr == c2;
    }
    CHECK_EQ(got1, 1);
    CHECK_EQ(got2, 1);
    CHECK(quiet_for(100));
    close_env();
}

/* A request still queued when the callee exits is a stopped dead letter,
 * and its asker gets GR_MSG_ASK_FAILED with the exit reason. */
static void test_request_queued_at_exit(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    int32_t ret = CODE_CRASH - 1;
    CHECK_EQ(cmd(callee, C_BLOCK, &ret, sizeof ret), GR_OK);
    struct rep r;
    CHECK(take(R_BLOCKED, &r));
    uint64_t corr;
    CHECK_EQ(ask(asker, ac(callee, 1, M_REPLY, LONG_MS, 0), &corr), GR_OK);
    sem_post(&gate); /* The handler returns ret: the callee crashes. */
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.type, GR_MSG_ASK_FAILED);
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.code, CODE_CRASH - 1);
    CHECK_EQ(wait_dead_of(GR_DL_STOPPED, 1), 1);
    CHECK(quiet_for(100));
    close_env();
}

/* gr_ask_then routes every kind of answer to the continuation, with its
 * arg and the asker's state, not to handle; a continuation's return value
 * counts as handle's would. */
static void test_continuations(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    const int modes[] = {M_REPLY, M_HOLD, M_CRASH};
    const uint32_t want[] = {A, GR_MSG_TIMEOUT, GR_MSG_ASK_FAILED};
    for (int i = 0; i < 3; i++) {
        if (modes[i] == M_CRASH)
            callee = spawn(&callee_b);
        uint64_t corr;
        CHECK_EQ(
            ask(asker,
                ac(callee, 3, modes[i], modes[i] == M_HOLD ? 30 : LONG_MS, 1),
                &corr),
            GR_OK);
        struct rep r;
        CHECK(take(R_ANSWER, &r));
        CHECK_EQ(r.via_cont, 1);
        CHECK_EQ(r.arg_ok, 1);
        CHECK_EQ(r.corr, corr);
        CHECK_EQ(r.type, want[i]);
    }
    CHECK(quiet_for(50));
    /* GR_STOP from a continuation: the asker exits normally. */
    callee = spawn(&callee_b);
    CHECK_EQ(ask(asker, ac(callee, 3, M_REPLY, 1000, 2), NULL), GR_OK);
    struct rep r;
    CHECK(take(R_ANSWER, &r));
    CHECK(take(R_TERM, &r));
    CHECK_EQ(r.code, GR_OK);
    /* An error: it crashes with it. */
    asker = spawn(&asker_b);
    CHECK_EQ(ask(asker, ac(callee, 3, M_REPLY, 1000, 3), NULL), GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK(take(R_TERM, &r));
    CHECK_EQ(r.code, CODE_CRASH);
    close_env();
}

/* An asker that exits with asks pending gets nothing more; the callee's
 * later reply is an expired_reply dead letter. */
static void test_asker_exits(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(ask(asker, ac(callee, (uint32_t)i, M_HOLD, 50, 0), NULL),
                 GR_OK);
    CHECK_EQ(gr_stop(E.sys, asker), GR_OK);
    struct rep r;
    CHECK(take(R_TERM, &r));
    CHECK(quiet_for(150)); /* Its timeouts died with it. */
    CHECK_EQ(cmd(callee, C_RELEASE, NULL, 0), GR_OK);
    CHECK_EQ(wait_dead_of(GR_DL_EXPIRED_REPLY, 3), 3);
    CHECK(quiet_for(50));
    close_env();
}

/* Bad arguments: replying to a plain tell, reserved types. */
static void test_bad_arguments(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    CHECK_EQ(cmd(callee, C_TELL_ME, NULL, 0), GR_OK);
    struct rep r;
    CHECK(take(R_RC, &r));
    CHECK_EQ(r.rc, GR_EINVAL);   /* gr_reply to a tell */
    CHECK_EQ(r.code, GR_EINVAL); /* a reserved reply type */
    CHECK_EQ(r.corr, 0);         /* gr_request_of a tell */
    CHECK_EQ(ask(asker, ac_reserved(callee, 1, M_REPLY, 100), NULL), GR_EINVAL);
    CHECK_EQ(gr_ask(NULL, callee, Q, NULL, 0, 0, NULL), GR_EINVAL);
    gr_msg *reply = (gr_msg *)&r;
    CHECK_EQ(gr_call(E.sys, callee, GR_MSG_RESERVED, NULL, 0, 10, &reply),
             GR_EINVAL);
    CHECK_EQ(gr_call(E.sys, callee, Q, NULL, 0, 10, NULL), GR_EINVAL);
    CHECK(quiet_for(50));
    close_env();
}

#define CALL_THREADS 4
#define CALLS        500

struct call_arg {
    gr_ref callee[CALLEES];
    int id;
    atomic_int *bad;
};

static void *call_thread(void *p)
{
    struct call_arg *a = p;
    for (int i = 0; i < CALLS; i++) {
        struct q q = {(uint32_t)(a->id * CALLS + i), M_REPLY};
        gr_msg *reply = NULL;
        int rc = gr_call(E.sys, a->callee[i % CALLEES], Q, &q, sizeof q,
                         WAIT_MS, &reply);
        uint32_t v = 0;
        if (rc != GR_OK || reply->type != A || !(reply->flags & GR_MSG_REPLY) ||
            !read_payload(reply, &v, sizeof v) || v != 2 * q.val)
            atomic_fetch_add(a->bad, 1);
        gr_msg_free(reply);
    }
    return NULL;
}

/* gr_call from several threads at once: every caller gets its own
 * answer. */
static void test_call_threads(void)
{
    CHECK(open_env(2));
    atomic_int bad = 0;
    struct call_arg args[CALL_THREADS];
    pthread_t t[CALL_THREADS];
    for (int i = 0; i < CALL_THREADS; i++) {
        for (int c = 0; c < CALLEES; c++)
            args[i].callee[c] = i == 0 ? spawn(&callee_b) : args[0].callee[c];
        args[i].id = i;
        args[i].bad = &bad;
        CHECK(pthread_create(&t[i], NULL, call_thread, &args[i]) == 0);
    }
    for (int i = 0; i < CALL_THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(atomic_load(&bad), 0);
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    close_env();
}

static void *stop_later(void *p)
{
    sleep_ms(50);
    (void)gr_stop(E.sys, *(gr_ref *)p);
    return NULL;
}

/* gr_call's timeout, its late reply (expired_reply), a target gone, a
 * target that exits holding the request (fails at once), and gr_call
 * inside a handler (refused). */
static void test_call_failures(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b);
    struct q q = {1, M_HOLD};
    gr_msg *reply = (gr_msg *)&q;
    double t0 = test_now();
    CHECK_EQ(gr_call(E.sys, callee, Q, &q, sizeof q, 50, &reply), GR_ETIMEDOUT);
    CHECK(test_now() - t0 >= 0.050);
    CHECK(reply == NULL);
    CHECK_EQ(cmd(callee, C_RELEASE, NULL, 0), GR_OK);
    CHECK_EQ(wait_dead_of(GR_DL_EXPIRED_REPLY, 1), 1);
    /* Held, then the callee stops: the call fails long before 30 s. */
    pthread_t stopper;
    CHECK(pthread_create(&stopper, NULL, stop_later, &callee) == 0);
    t0 = test_now();
    int rc = gr_call(E.sys, callee, Q, &q, sizeof q, (int)LONG_MS, &reply);
    pthread_join(stopper, NULL);
    CHECK_EQ(rc, GR_ENOACTOR);
    CHECK(reply == NULL);
    CHECK(test_now() - t0 < 5.0);
    /* Gone already. */
    /* The callee and both calls' inboxes. */
    CHECK_EQ(wait_stat(E.sys, stat_exited, 0, 3), 3);
    CHECK_EQ(gr_call(E.sys, callee, Q, &q, sizeof q, 1000, &reply),
             GR_ENOACTOR);
    /* Inside a handler: refused, nothing sent. */
    callee = spawn(&callee_b);
    CHECK_EQ(cmd(callee, C_CALL, NULL, 0), GR_OK);
    struct rep r;
    CHECK(take(R_RC, &r));
    CHECK_EQ(r.rc, GR_EWRONGTHREAD);
    CHECK_EQ(r.val, 1);
    CHECK(quiet_for(50));
    close_env();
}

TEST_MAIN(TEST_CASE(test_reply), TEST_CASE(test_many_out_of_order),
          TEST_CASE(test_timeout_and_late_reply),
          TEST_CASE(test_timeouts_fire_once), TEST_CASE(test_callee_gone),
          TEST_CASE(test_callee_crashes), TEST_CASE(test_callee_exits_holding),
          TEST_CASE(test_request_queued_at_exit), TEST_CASE(test_continuations),
          TEST_CASE(test_asker_exits), TEST_CASE(test_bad_arguments),
          TEST_CASE(test_call_threads), TEST_CASE(test_call_failures))
