/*
 * The environment of the ask suites (test_ask_reply, test_ask_failure,
 * test_call): probes (tests/probe.h) scripted as a callee that answers as
 * each request's mode says, an asker that runs ask commands and reports
 * every answer, and an init_caller; and helpers. Public API only; bounded
 * waits.
 */
#ifndef GROVE_TEST_ASK_ENV_H
#define GROVE_TEST_ASK_ENV_H

#include <grove/grove.h>

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "helpers.h"
#include "probe.h"

/* A timeout no case waits for: a failure must come long before it (a case
 * gives up after WAIT_MS). */
#define LONG_MS 30000u
/* How long a case watches for a message that must not come; longer than
 * the short timeouts the cases use, so a stray timeout would show. */
#define QUIET_MS 200
/* The asker's state holds this once it has run a command. */
#define MAGIC 0x5eed1e55u

/* ---- messages ------------------------------------------------------------ */

/* Waiting at the gate, ending a handler with a code and strays are the
 * probe's (PROBE_BLOCK, PROBE_END, PROBE_STRAY). */
enum {
    Q = 1, /* A request to a callee: struct q. */
    A,     /* The callee's reply: uint32_t, twice q.val. */
    /* Commands to a callee. */
    C_RELEASE,       /* struct release: answer every kept request. */
    C_STOP_WITH,     /* gr_reason: exit with it, requests still kept. */
    C_TELL_ME,       /* A plain tell it tries to reply to; R_RC. */
    C_REPLY_ON_EXIT, /* Answer every kept request from terminate. */
    T_DEFER,         /* The callee's own timer: struct held, answered now. */
    /* Commands to an asker. */
    C_ASK,      /* struct ask_cmd: ask; R_ASKED. */
    C_COUNTS,   /* Report R_COUNTS with the asker's counters. */
    C_BAD_ASKS, /* gr_ref: ask it with bad arguments; R_RC. */
    /* To either. */
    C_CALL, /* gr_ref: gr_call it from the handler; R_RC. */
    /* Reports to the test's inbox, each a struct rep. */
    R_ASKED = 100, /* gr_ask's code and the ask's id. */
    R_ANSWER,      /* One per answer, through handle or a continuation. */
    R_TERM,        /* An asker's terminate ran: why. */
    R_RELEASED,    /* A callee answered its kept requests: rc[0], val. */
    R_HELD,        /* A callee kept a request (mode M_HOLD_TELL). */
    R_RC,          /* Return codes in rc[]. */
    R_COUNTS,      /* An asker's counters. */
};

/* What a callee does with a request. */
enum {
    M_REPLY,     /* Answers at once. */
    M_HOLD,      /* Keeps it (gr_request_of) for C_RELEASE. */
    M_HOLD_TELL, /* Keeps it and reports R_HELD. */
    M_IGNORE,    /* Returns without answering or keeping it. */
    M_CRASH,     /* Returns PROBE_CRASH. */
    M_FAIL,      /* gr_fail("boom <val>"). */
    M_STOP,      /* Returns GR_STOP without answering. */
    M_TWICE,     /* Answers twice. */
    M_DEFER,     /* Answers from a timer, delay_ms later. */
    M_BAD,       /* Tries bad replies (R_RC), then answers. */
    M_REPORT,    /* Reported as a stray: it must never be asked. */
};

struct q {
    uint32_t val;
    int32_t mode;
    uint32_t delay_ms; /* M_DEFER */
    uint32_t pad;
};

/* A kept request and the value it asked about. */
struct held {
    gr_request req;
    uint32_t val;
    uint32_t pad;
};

/* C_RELEASE's payload. */
struct release {
    uint32_t seed; /* 0: newest first; else a shuffle seeded with it. */
    int32_t keep;  /* Nonzero: keep the requests (to answer them again). */
};

/* How an asker takes the answer. */
enum {
    K_NONE,      /* gr_ask: handle gets it. */
    K_CONT,      /* gr_ask_then: a continuation that reports it. */
    K_STOP,      /* ... and returns GR_STOP. */
    K_STOP_WITH, /* ... and stops with shutdown, detail 5. */
    K_CRASH,     /* ... and returns PROBE_CRASH. */
    K_FAIL,      /* ... and calls gr_fail. */
    K_CALL,      /* ... after trying gr_call (rc[0]). */
    K_CHAIN,     /* ... after asking the callee again (K_CONT, arg + 1,
                    val + 1): rc[0] and corr2. */
};

/* C_ASK's payload. */
struct ask_cmd {
    gr_ref target;
    struct q q;
    gr_duration timeout_ms;
    int32_t cont;    /* K_* */
    int32_t arg_idx; /* The continuation's arg: &arg_tokens[arg_idx]. */
    int32_t no_corr; /* Nonzero: pass NULL for corr. */
};

/* Everything a report carries; each report fills what it needs. */
struct rep {
    gr_ref self;      /* The reporter: the report's sender, set on taking. */
    gr_ref from, to;  /* The answer's. */
    uint64_t corr;    /* The ask's id (R_ASKED) or the answer's corr. */
    uint64_t corr2;   /* K_CHAIN: the second ask's id. */
    uint64_t t_asked; /* R_ASKED: now_ns() just before asking. */
    uint64_t t;       /* R_ANSWER: when the answer came (now_ns()). */
    uint64_t len;     /* The answer's payload length. */
    uint32_t type;    /* The answer's type. */
    uint32_t flags;   /* The answer's flags. */
    uint32_t val;     /* R_ASKED: q.val; R_ANSWER: A's payload. */
    int32_t rc[6];    /* Return codes. */
    int32_t via_cont; /* The answer came to a continuation. */
    int32_t arg_idx;  /* Which arg the continuation got (-1: another). */
    int32_t state_ok; /* The continuation got the asker's state and ctx. */
    int32_t read_rc;  /* gr_ask_failed_read on the answer. */
    uint32_t handled; /* The asker's answers through handle so far. */
    uint32_t conts;   /* ... and through continuations. */
    gr_reason why;    /* GR_MSG_ASK_FAILED's reason, or R_TERM's. */
};

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* gr_call from a callback: refused, nothing sent, *reply untouched. */
static inline void call_from_callback(gr_ctx *ctx, gr_ref target, struct rep *r)
{
    struct q q = {.val = 1, .mode = M_REPORT};
    gr_msg *reply = NULL;
    r->rc[0] =
        gr_call(gr_ctx_system(ctx), target, Q, &q, sizeof q, 100, &reply);
    r->rc[1] = reply == NULL;
}

/* C_CALL, to either: gr_ref target; R_RC. */
static inline int step_call(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    gr_ref target;
    if (!read_payload(m, &target, sizeof target))
        return GR_EUNHANDLED;
    struct rep r = {0};
    call_from_callback(ctx, target, &r);
    probe_report(ctx, R_RC, &r, sizeof r);
    return GR_CONTINUE;
}

/* ---- the callee ---------------------------------------------------------- */

#define HELD_MAX 256

struct callee {
    struct held held[HELD_MAX];
    unsigned nheld;
    int reply_on_exit;
};

/* A small deterministic generator for shuffles. */
static inline uint32_t xorshift(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Answers every kept request in the order rel says; returns the first
 * failing gr_reply_to code (GR_OK if none) and stores the count. */
static inline int release_all(gr_ctx *ctx, struct callee *c, struct release rel,
                              uint32_t *count)
{
    unsigned n = c->nheld;
    struct held order[HELD_MAX];
    for (unsigned i = 0; i < n; i++)
        order[i] = c->held[n - 1 - i];
    if (rel.seed != 0) {
        uint32_t s = rel.seed;
        for (unsigned i = n; i > 1; i--) {
            unsigned j = xorshift(&s) % i;
            struct held t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
    }
    int first = GR_OK;
    for (unsigned i = 0; i < n; i++) {
        uint32_t v = order[i].val * 2;
        int rc = gr_reply_to(ctx, &order[i].req, A, &v, sizeof v);
        if (rc != GR_OK && first == GR_OK)
            first = rc;
    }
    if (!rel.keep)
        c->nheld = 0;
    *count = n;
    return first;
}

/* Tries every bad reply to request m; reports R_RC, then answers it. */
static inline int bad_replies(gr_ctx *ctx, const gr_msg *m, uint32_t val)
{
    struct rep r = {0};
    uint32_t v = val * 2;
    r.rc[0] = gr_reply(ctx, m, GR_MSG_RESERVED, NULL, 0);
    r.rc[1] = gr_reply(ctx, m, GR_MSG_TIMEOUT, NULL, 0);
    r.rc[2] = gr_reply(ctx, m, A, NULL, sizeof v);
    r.rc[3] = gr_reply(ctx, m, A, &v, 0);
    r.rc[4] = gr_reply(NULL, m, A, &v, sizeof v);
    probe_report(ctx, R_RC, &r, sizeof r);
    /* Nothing above answered it: this reply is the one that counts. */
    return gr_reply(ctx, m, A, &v, sizeof v);
}

/* Q: answers as the request's mode says. */
static inline int callee_request(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct callee *c = state;
    struct q q;
    if (!(m->flags & GR_MSG_REQUEST) || !read_payload(m, &q, sizeof q)) {
        probe_stray(ctx, m);
        return GR_CONTINUE;
    }
    struct held h = {.req = gr_request_of(m), .val = q.val};
    uint32_t v = q.val * 2;
    switch (q.mode) {
    case M_REPLY:
        return gr_reply(ctx, m, A, &v, sizeof v);
    case M_HOLD:
    case M_HOLD_TELL:
        if (c->nheld == HELD_MAX)
            return GR_EUNHANDLED;
        c->held[c->nheld++] = h;
        if (q.mode == M_HOLD_TELL) {
            struct rep r = {.val = q.val};
            probe_report(ctx, R_HELD, &r, sizeof r);
        }
        return GR_CONTINUE;
    case M_IGNORE:
        return GR_CONTINUE;
    case M_CRASH:
        return PROBE_CRASH;
    case M_FAIL:
        gr_fail(ctx, "boom %u", (unsigned)q.val);
    case M_STOP:
        return GR_STOP;
    case M_TWICE:
        (void)gr_reply(ctx, m, A, &v, sizeof v);
        return gr_reply(ctx, m, A, &v, sizeof v);
    case M_DEFER:
        return gr_timer_after(ctx, q.delay_ms, T_DEFER, &h, sizeof h, NULL);
    case M_BAD:
        return bad_replies(ctx, m, q.val);
    default:
        probe_stray(ctx, m);
        return GR_CONTINUE;
    }
}

static inline int callee_release(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct release rel;
    if (!read_payload(m, &rel, sizeof rel))
        return GR_EUNHANDLED;
    struct rep r = {0};
    r.rc[0] = release_all(ctx, state, rel, &r.val);
    probe_report(ctx, R_RELEASED, &r, sizeof r);
    return GR_CONTINUE;
}

static inline int callee_stop_with(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    gr_reason why;
    if (!read_payload(m, &why, sizeof why))
        return GR_EUNHANDLED;
    return gr_stop_with(ctx, &why);
}

/* C_TELL_ME, a plain tell: every way of replying to it is refused. */
static inline int callee_tell_me(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    struct rep r = {0};
    uint32_t v = 1;
    gr_request req = gr_request_of(m);
    r.rc[0] = gr_reply(ctx, m, A, &v, sizeof v);
    r.rc[1] = req.corr == 0;
    r.rc[2] = gr_reply_to(ctx, &req, A, &v, sizeof v);
    r.rc[3] = gr_reply_to(ctx, NULL, A, &v, sizeof v);
    probe_report(ctx, R_RC, &r, sizeof r);
    return GR_CONTINUE;
}

static inline int callee_reply_on_exit(gr_ctx *ctx, void *state,
                                       const gr_msg *m)
{
    (void)ctx, (void)m;
    ((struct callee *)state)->reply_on_exit = 1;
    return GR_CONTINUE;
}

/* T_DEFER, the callee's own timer: answers the request it carries. A
 * timer's message carries an id in corr but is no request. */
static inline int callee_other(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    struct held h;
    if (m->type != T_DEFER || !(m->flags & GR_MSG_TIMER) ||
        gr_request_of(m).corr != 0 || !read_payload(m, &h, sizeof h))
        return GR_EUNHANDLED;
    uint32_t v = h.val * 2;
    return gr_reply_to(ctx, &h.req, A, &v, sizeof v);
}

static inline void callee_terminate(gr_ctx *ctx, void *state,
                                    const gr_reason *why)
{
    (void)why;
    struct callee *c = state;
    uint32_t n;
    if (c->reply_on_exit)
        (void)release_all(ctx, c, (struct release){0}, &n);
}

static const struct probe_step callee_steps[] = {
    {Q, callee_request},
    {C_RELEASE, callee_release},
    {C_STOP_WITH, callee_stop_with},
    {C_TELL_ME, callee_tell_me},
    {C_REPLY_ON_EXIT, callee_reply_on_exit},
    {C_CALL, step_call},
    {0, NULL}};

static const struct probe_script callee_script = {.steps = callee_steps,
                                                  .other = callee_other,
                                                  .terminate =
                                                      callee_terminate};
PROBE_BEHAVIOUR(callee_b, "callee", sizeof(struct callee), callee_script);

/* ---- the asker ----------------------------------------------------------- */

struct asker {
    uint32_t magic;   /* MAGIC once a command ran. */
    gr_ref me;        /* gr_self, as handle saw it. */
    uint32_t handled; /* Answers through handle. */
    uint32_t conts;   /* Answers through continuations. */
};

/* The continuations' args: an ask with arg_idx i gets &arg_tokens[i]. */
#define ARGS_MAX 16
static int arg_tokens[ARGS_MAX];

static inline int arg_index(const void *arg)
{
    for (int i = 0; i < ARGS_MAX; i++)
        if (arg == &arg_tokens[i])
            return i;
    return -1;
}

/* Fills r from answer m as the asker s sees it. */
static inline void answer_rep(gr_ctx *ctx, struct asker *s, const gr_msg *m,
                              int via_cont, const void *arg, struct rep *r)
{
    r->t = now_ns();
    r->corr = m->corr;
    r->type = m->type;
    r->flags = m->flags;
    r->from = m->from;
    r->to = m->to;
    r->len = m->len;
    r->via_cont = via_cont;
    r->arg_idx = via_cont ? arg_index(arg) : -1;
    r->state_ok = s->magic == MAGIC && gr_ref_eq(s->me, gr_self(ctx));
    if (m->type == A && !read_payload(m, &r->val, sizeof r->val))
        r->val = UINT32_MAX;
    r->read_rc = gr_ask_failed_read(m, &r->why);
    r->handled = s->handled;
    r->conts = s->conts;
}

static inline int cont_fn(gr_ctx *ctx, void *state, const gr_msg *m, void *arg);

/* Asks as c says; returns gr_ask's (or gr_ask_then's) code. */
static inline int do_ask(gr_ctx *ctx, const struct ask_cmd *c, uint64_t *corr)
{
    if (c->cont == K_NONE)
        return gr_ask(ctx, c->target, Q, &c->q, sizeof c->q, c->timeout_ms,
                      corr);
    int idx = c->arg_idx >= 0 && c->arg_idx < ARGS_MAX ? c->arg_idx : 0;
    return gr_ask_then(ctx, c->target, Q, &c->q, sizeof c->q, c->timeout_ms,
                       cont_fn, &arg_tokens[idx], corr);
}

/* Every continuation; the kind is read back from the arg's token. */
static inline int cont_fn(gr_ctx *ctx, void *state, const gr_msg *m, void *arg)
{
    struct asker *s = state;
    s->conts++;
    struct rep r = {0};
    answer_rep(ctx, s, m, 1, arg, &r);
    int kind = arg_index(arg) >= 0 ? *(const int *)arg : K_CONT;
    if (kind == K_CALL)
        call_from_callback(ctx, m->from, &r);
    if (kind == K_CHAIN) {
        struct ask_cmd c = {.target = m->from,
                            .q = {.val = r.val / 2 + 1, .mode = M_REPLY},
                            .timeout_ms = LONG_MS,
                            .cont = K_CONT,
                            .arg_idx = r.arg_idx + 1};
        r.rc[0] = do_ask(ctx, &c, &r.corr2);
    }
    probe_report(ctx, R_ANSWER, &r, sizeof r);
    switch (kind) {
    case K_STOP:
        return GR_STOP;
    case K_STOP_WITH: {
        gr_reason why = gr_reason_of(GR_ESHUTDOWN);
        why.detail = 5;
        return gr_stop_with(ctx, &why);
    }
    case K_CRASH:
        return PROBE_CRASH;
    case K_FAIL:
        gr_fail(ctx, "cont failed");
    default:
        return GR_CONTINUE;
    }
}

/* The asks with a continuation take their kind from their arg's token:
 * arg_idx i runs the continuation kind arg_tokens[i]. */
static inline void set_arg_kind(int idx, int kind)
{
    arg_tokens[idx] = kind;
}

/* The asker's state, marked as seen by a command's handler call. */
static inline struct asker *asker_turn(gr_ctx *ctx, void *state)
{
    struct asker *s = state;
    s->magic = MAGIC;
    s->me = gr_self(ctx);
    return s;
}

static inline int asker_ask(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)asker_turn(ctx, state);
    struct ask_cmd c;
    if (!read_payload(m, &c, sizeof c))
        return GR_EUNHANDLED;
    struct rep r = {0};
    r.val = c.q.val;
    r.via_cont = c.cont;
    r.t_asked = now_ns();
    r.rc[0] = do_ask(ctx, &c, c.no_corr ? NULL : &r.corr);
    probe_report(ctx, R_ASKED, &r, sizeof r);
    return GR_CONTINUE;
}

static inline int asker_counts(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)m;
    struct asker *s = asker_turn(ctx, state);
    struct rep r = {.handled = s->handled, .conts = s->conts};
    probe_report(ctx, R_COUNTS, &r, sizeof r);
    return GR_CONTINUE;
}

static inline int asker_bad_asks(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)asker_turn(ctx, state);
    gr_ref t;
    if (!read_payload(m, &t, sizeof t))
        return GR_EUNHANDLED;
    struct rep r = {0};
    struct q q = {.val = 1, .mode = M_REPORT};
    r.rc[0] = gr_ask(ctx, t, GR_MSG_RESERVED, &q, sizeof q, 20, NULL);
    r.rc[1] = gr_ask_then(ctx, t, GR_MSG_TIMEOUT, &q, sizeof q, 20, cont_fn,
                          &arg_tokens[0], NULL);
    r.rc[2] = gr_ask(ctx, t, Q, NULL, sizeof q, 20, NULL);
    r.rc[3] = gr_ask(ctx, t, Q, &q, 0, 20, NULL);
    r.rc[4] = gr_ask(NULL, t, Q, &q, sizeof q, 20, NULL);
    r.rc[5] = gr_ask_then(NULL, t, Q, &q, sizeof q, 20, cont_fn, &arg_tokens[0],
                          NULL);
    probe_report(ctx, R_RC, &r, sizeof r);
    return GR_CONTINUE;
}

static inline int asker_call(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)asker_turn(ctx, state);
    return step_call(ctx, state, m);
}

/* An answer to a gr_ask (no continuation): reported as R_ANSWER. */
static inline int asker_other(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct asker *s = state;
    if (!(m->flags & GR_MSG_REPLY))
        return GR_EUNHANDLED;
    if (gr_request_of(m).corr != 0)
        probe_stray(ctx, m); /* An answer is no request. */
    s->handled++;
    struct rep r = {0};
    answer_rep(ctx, s, m, 0, NULL, &r);
    probe_report(ctx, R_ANSWER, &r, sizeof r);
    return GR_CONTINUE;
}

static inline void asker_terminate(gr_ctx *ctx, void *state,
                                   const gr_reason *why)
{
    (void)state;
    struct rep r = {.why = *why};
    probe_report(ctx, R_TERM, &r, sizeof r);
}

static const struct probe_step asker_steps[] = {{C_ASK, asker_ask},
                                                {C_COUNTS, asker_counts},
                                                {C_BAD_ASKS, asker_bad_asks},
                                                {C_CALL, asker_call},
                                                {0, NULL}};

static const struct probe_script asker_script = {
    .steps = asker_steps, .other = asker_other, .terminate = asker_terminate};
PROBE_BEHAVIOUR(asker_b, "asker", sizeof(struct asker), asker_script);

/* ---- the init_caller ----------------------------------------------------- */

/* An actor that tries gr_call in init and terminate (spawn arg: the
 * target), reporting R_RC each time; it takes no commands of its own. */
struct init_caller {
    gr_ref target;
};

static inline int init_caller_init(gr_ctx *ctx, void *state, const void *arg,
                                   size_t len)
{
    struct init_caller *s = state;
    int rc = read_arg(&s->target, sizeof s->target, arg, len);
    if (rc != GR_OK)
        return rc;
    struct rep r = {0};
    call_from_callback(ctx, s->target, &r);
    probe_report(ctx, R_RC, &r, sizeof r);
    return GR_OK;
}

static inline void init_caller_terminate(gr_ctx *ctx, void *state,
                                         const gr_reason *why)
{
    (void)why;
    struct init_caller *s = state;
    struct rep r = {0};
    call_from_callback(ctx, s->target, &r);
    probe_report(ctx, R_RC, &r, sizeof r);
}

static const struct probe_step no_steps[] = {{0, NULL}};

static const struct probe_script init_caller_script = {
    .steps = no_steps,
    .init = init_caller_init,
    .terminate = init_caller_terminate};
PROBE_BEHAVIOUR(init_caller_b, "init_caller", sizeof(struct init_caller),
                init_caller_script);

/* ---- helpers ------------------------------------------------------------- */

static struct env E;

static inline int open_env(unsigned workers)
{
    if (!env_open_quiet(&E, workers))
        return 0;
    probe_attach(&E);
    for (int i = 0; i < ARGS_MAX; i++)
        set_arg_kind(i, K_CONT);
    return 1;
}

static inline void close_env(void)
{
    env_close(&E);
    probe_detach();
}

static inline gr_ref spawn(const gr_behaviour *b)
{
    gr_ref r = GR_REF_NONE;
    (void)gr_system_spawn(E.sys, b, NULL, 0, &r);
    return r;
}

/* Takes the next report, whatever its type, into *r (its sender in
 * r->self) and *type. */
static inline int next_rep(struct rep *r, uint32_t *type)
{
    gr_msg *m;
    if (!probe_next(&m))
        return 0;
    *type = m->type;
    int ok = read_payload(m, r, sizeof *r);
    r->self = m->from;
    if (!ok)
        fprintf(stderr, "  report type %#x (%zu bytes) is no struct rep\n",
                (unsigned)m->type, m->len);
    gr_msg_free(m);
    return ok;
}

/* Takes the next report, which must be of type, into *r (its sender in
 * r->self). */
static inline int take_rep(uint32_t type, struct rep *r)
{
    gr_ref self;
    if (!probe_take_from(type, r, sizeof *r, &self))
        return 0;
    r->self = self;
    return 1;
}

/* Tells asker to ask as c says and waits for R_ASKED; returns the ask's
 * code (GR_ETIMEDOUT if no report came) and stores its id and time. */
static inline int ask_t(gr_ref asker, struct ask_cmd c, uint64_t *corr,
                        uint64_t *t_asked)
{
    struct rep r;
    if (probe_tell(asker, C_ASK, &c, sizeof c) != GR_OK ||
        !take_rep(R_ASKED, &r))
        return GR_ETIMEDOUT;
    if (corr != NULL)
        *corr = r.corr;
    if (t_asked != NULL)
        *t_asked = r.t_asked;
    return r.rc[0];
}

static inline int ask(gr_ref asker, struct ask_cmd c, uint64_t *corr)
{
    return ask_t(asker, c, corr, NULL);
}

/* An ask command: target, value, mode, timeout, continuation kind. */
static inline struct ask_cmd ac(gr_ref target, uint32_t val, int mode,
                                gr_duration timeout_ms, int cont)
{
    return (struct ask_cmd){.target = target,
                            .q = {.val = val, .mode = mode},
                            .timeout_ms = timeout_ms,
                            .cont = cont};
}

/* An ask command whose continuation gets arg_idx, of the given kind. */
static inline struct ask_cmd ac_then(gr_ref target, uint32_t val, int mode,
                                     gr_duration timeout_ms, int arg_idx,
                                     int kind)
{
    struct ask_cmd c = ac(target, val, mode, timeout_ms, K_CONT);
    c.arg_idx = arg_idx;
    set_arg_kind(arg_idx, kind);
    return c;
}

static inline int release(gr_ref callee, uint32_t seed, int keep)
{
    struct release rel = {seed, keep};
    return probe_tell(callee, C_RELEASE, &rel, sizeof rel);
}

static inline uint64_t dead(gr_dead_reason reason)
{
    return stats_of(E.sys).dead_letters[reason];
}

/* Returns who's mailbox depth as gr_stats lists it (0 if not listed). */
static inline uint64_t depth_of(gr_ref who)
{
    gr_stats st = stats_of(E.sys);
    for (int i = 0; i < GR_STATS_DEEPEST; i++)
        if (gr_ref_eq(st.deepest[i].actor, who))
            return st.deepest[i].depth;
    return 0;
}

/* Polls until who's mailbox holds want messages; returns 1, or 0 after
 * WAIT_MS. */
static inline int wait_depth(gr_ref who, uint64_t want)
{
    double end = test_now() + WAIT_MS / 1000.0;
    while (depth_of(who) < want)
        if (test_now() > end)
            return 0;
        else
            sleep_ms(1);
    return 1;
}

/* Checks an answer r is GR_MSG_ASK_FAILED for ask corr from callee, with
 * a readable reason of the given code. */
static inline int is_failure(const struct rep *r, uint64_t corr, gr_ref callee,
                             int code)
{
    return r->type == GR_MSG_ASK_FAILED && r->flags == GR_MSG_REPLY &&
           r->corr == corr && gr_ref_eq(r->from, callee) &&
           r->read_rc == GR_OK && r->len == sizeof(gr_reason) &&
           r->why.code == code;
}

static inline void stop_callee(gr_ref callee, const char *text, int64_t detail)
{
    gr_reason why = gr_reason_of(GR_ESHUTDOWN);
    why.detail = detail;
    snprintf(why.text, sizeof why.text, "%s", text);
    (void)probe_tell(callee, C_STOP_WITH, &why, sizeof why);
}

/* Callees in the cases that spread asks or calls over several. */
#define CALLEES 3

#endif
