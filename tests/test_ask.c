/*
 * Ask, reply and call tests, one or more cases per rule of
 * include/grove/ask.h: replies matched by correlation id with hundreds of
 * asks in flight from several askers to several callees and answered in
 * shuffled order; exactly one answer per ask, also when a reply races its
 * timeout; continuations run in the asker's turn with its state and their
 * own arg, for replies, timeouts and failures, and end the asker as handle
 * would; timeouts that come once and never early; late and second replies
 * as expired_reply dead letters; the callee gone, crashing, exiting with
 * requests kept or still queued; the asker exiting with asks pending; bad
 * arguments; and gr_call from several threads, with its timeout, its
 * failures, its default timeout, and from inside callbacks. Public API
 * only; bounded waits; time is checked only as a lower bound.
 */
#include <grove/grove.h>

#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <time.h>

#include "helpers.h"

/* A crash code no runtime path produces. */
#define CODE_CRASH (-1000)
/* A timeout no case waits for: a failure must come long before it (a case
 * gives up after WAIT_MS). */
#define LONG_MS 30000u
/* How long a case watches for a message that must not come; longer than
 * the short timeouts the cases use, so a stray timeout would show. */
#define QUIET_MS 200
/* The asker's state holds this once it has run a command. */
#define MAGIC 0x5eed1e55u

/* ---- messages ------------------------------------------------------------ */

enum {
    Q = 1, /* A request to a callee: struct q. */
    A,     /* The callee's reply: uint32_t, twice q.val. */
    /* Commands to a callee. */
    C_RELEASE,       /* struct release: answer every kept request. */
    C_BLOCK,         /* int32_t: report R_BLOCKED, wait for the gate, return
                        the code (askers too). */
    C_STOP_WITH,     /* gr_reason: exit with it, requests still kept. */
    C_TELL_ME,       /* A plain tell it tries to reply to; R_RC. */
    C_REPLY_ON_EXIT, /* Answer every kept request from terminate. */
    T_DEFER,         /* The callee's own timer: struct held, answered now. */
    /* Commands to an asker. */
    C_ASK,      /* struct ask_cmd: ask; R_ASKED. */
    C_PROBE,    /* Report R_PROBE with the asker's counters. */
    C_BAD_ASKS, /* gr_ref: ask it with bad arguments; R_RC. */
    C_END,      /* int32_t: the handler returns it. */
    /* To either. */
    C_CALL, /* gr_ref: gr_call it from the handler; R_RC. */
    /* Reports to the test's inbox. */
    R_ASKED = 100, /* gr_ask's code and the ask's id. */
    R_ANSWER,      /* One per answer, through handle or a continuation. */
    R_TERM,        /* An asker's terminate ran: why. */
    R_BLOCKED,     /* A callee waits at the gate. */
    R_RELEASED,    /* A callee answered its kept requests: rc[0], val. */
    R_HELD,        /* A callee kept a request (mode M_HOLD_TELL). */
    R_RC,          /* Return codes in rc[]. */
    R_PROBE,       /* An asker's counters. */
    R_GOT,         /* A message nobody expected: a stray. */
};

/* What a callee does with a request. */
enum {
    M_REPLY,     /* Answers at once. */
    M_HOLD,      /* Keeps it (gr_request_of) for C_RELEASE. */
    M_HOLD_TELL, /* Keeps it and reports R_HELD. */
    M_IGNORE,    /* Returns without answering or keeping it. */
    M_CRASH,     /* Returns CODE_CRASH. */
    M_FAIL,      /* gr_fail("boom <val>"). */
    M_STOP,      /* Returns GR_STOP without answering. */
    M_TWICE,     /* Answers twice. */
    M_DEFER,     /* Answers from a timer, delay_ms later. */
    M_BAD,       /* Tries bad replies (R_RC), then answers. */
    M_REPORT,    /* Reports R_GOT: it must never be asked. */
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
    K_CRASH,     /* ... and returns CODE_CRASH. */
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
    gr_ref self;      /* The reporter. */
    gr_ref from, to;  /* The answer's. */
    uint64_t corr;    /* The ask's id (R_ASKED) or the answer's corr. */
    uint64_t corr2;   /* K_CHAIN: the second ask's id. */
    uint64_t t_asked; /* R_ASKED: now_ns() just before asking. */
    uint64_t t;       /* When the report was made (now_ns()). */
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

static gr_ref inbox_ref;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void report(gr_ctx *ctx, uint32_t type, struct rep *r)
{
    r->self = gr_self(ctx);
    if (r->t == 0)
        r->t = now_ns();
    (void)gr_send(gr_ctx_system(ctx), gr_self(ctx), inbox_ref, type, r,
                  sizeof *r);
}

/* Reports a message nobody expected. */
static void stray(gr_ctx *ctx, const gr_msg *m)
{
    struct rep r = {.type = m->type, .flags = m->flags, .from = m->from};
    report(ctx, R_GOT, &r);
}

/* ---- the callee ---------------------------------------------------------- */

#define HELD_MAX 256

struct callee {
    struct held held[HELD_MAX];
    unsigned nheld;
    int reply_on_exit;
};

/* The gate C_BLOCK waits at. */
static sem_t gate;

/* A small deterministic generator for shuffles. */
static uint32_t xorshift(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* C_BLOCK: reports R_BLOCKED, waits at the gate (WAIT_MS at most), and
 * returns the int32_t code the message carries. */
static int block_at_gate(gr_ctx *ctx, const gr_msg *m)
{
    int32_t ret;
    if (!read_payload(m, &ret, sizeof ret))
        return GR_EUNHANDLED;
    struct rep r = {0};
    report(ctx, R_BLOCKED, &r);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    (void)sem_timedwait(&gate, &dl);
    return ret;
}

/* Answers every kept request in the order rel says; returns the first
 * failing gr_reply_to code (GR_OK if none) and stores the count. */
static int release_all(gr_ctx *ctx, struct callee *c, struct release rel,
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
static int bad_replies(gr_ctx *ctx, const gr_msg *m, uint32_t val)
{
    struct rep r = {0};
    uint32_t v = val * 2;
    r.rc[0] = gr_reply(ctx, m, GR_MSG_RESERVED, NULL, 0);
    r.rc[1] = gr_reply(ctx, m, GR_MSG_TIMEOUT, NULL, 0);
    r.rc[2] = gr_reply(ctx, m, A, NULL, sizeof v);
    r.rc[3] = gr_reply(ctx, m, A, &v, 0);
    r.rc[4] = gr_reply(NULL, m, A, &v, sizeof v);
    report(ctx, R_RC, &r);
    /* Nothing above answered it: this reply is the one that counts. */
    return gr_reply(ctx, m, A, &v, sizeof v);
}

static int callee_request(gr_ctx *ctx, struct callee *c, const gr_msg *m)
{
    struct q q;
    if (!(m->flags & GR_MSG_REQUEST) || !read_payload(m, &q, sizeof q)) {
        stray(ctx, m);
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
            report(ctx, R_HELD, &r);
        }
        return GR_CONTINUE;
    case M_IGNORE:
        return GR_CONTINUE;
    case M_CRASH:
        return CODE_CRASH;
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
        stray(ctx, m);
        return GR_CONTINUE;
    }
}

/* A plain tell: every way of replying to it is refused. */
static void reply_to_tell(gr_ctx *ctx, const gr_msg *m)
{
    struct rep r = {0};
    uint32_t v = 1;
    gr_request req = gr_request_of(m);
    r.rc[0] = gr_reply(ctx, m, A, &v, sizeof v);
    r.rc[1] = req.corr == 0;
    r.rc[2] = gr_reply_to(ctx, &req, A, &v, sizeof v);
    r.rc[3] = gr_reply_to(ctx, NULL, A, &v, sizeof v);
    report(ctx, R_RC, &r);
}

/* gr_call from a callback: refused, nothing sent, *reply untouched. */
static void call_from_callback(gr_ctx *ctx, gr_ref target, struct rep *r)
{
    struct q q = {.val = 1, .mode = M_REPORT};
    gr_msg *reply = NULL;
    r->rc[0] =
        gr_call(gr_ctx_system(ctx), target, Q, &q, sizeof q, 100, &reply);
    r->rc[1] = reply == NULL;
}

static int callee_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct callee *c = state;
    struct rep r = {0};
    switch (m->type) {
    case Q:
        return callee_request(ctx, c, m);
    case T_DEFER: {
        struct held h;
        uint32_t v;
        /* A timer's message carries an id in corr but is no request. */
        if (!(m->flags & GR_MSG_TIMER) || gr_request_of(m).corr != 0 ||
            !read_payload(m, &h, sizeof h))
            break;
        v = h.val * 2;
        return gr_reply_to(ctx, &h.req, A, &v, sizeof v);
    }
    case C_RELEASE: {
        struct release rel;
        if (!read_payload(m, &rel, sizeof rel))
            break;
        r.rc[0] = release_all(ctx, c, rel, &r.val);
        report(ctx, R_RELEASED, &r);
        return GR_CONTINUE;
    }
    case C_BLOCK:
        return block_at_gate(ctx, m);
    case C_STOP_WITH: {
        gr_reason why;
        if (!read_payload(m, &why, sizeof why))
            break;
        return gr_stop_with(ctx, &why);
    }
    case C_TELL_ME:
        reply_to_tell(ctx, m);
        return GR_CONTINUE;
    case C_REPLY_ON_EXIT:
        c->reply_on_exit = 1;
        return GR_CONTINUE;
    case C_CALL: {
        gr_ref target;
        if (!read_payload(m, &target, sizeof target))
            break;
        call_from_callback(ctx, target, &r);
        report(ctx, R_RC, &r);
        return GR_CONTINUE;
    }
    default:
        break;
    }
    stray(ctx, m);
    return GR_CONTINUE;
}

static void callee_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)why;
    struct callee *c = state;
    uint32_t n;
    if (c->reply_on_exit)
        (void)release_all(ctx, c, (struct release){0}, &n);
}

static const gr_behaviour callee_b = {
    .name = "callee",
    .state_size = sizeof(struct callee),
    .handle = callee_handle,
    .terminate = callee_terminate,
};

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

static int arg_index(const void *arg)
{
    for (int i = 0; i < ARGS_MAX; i++)
        if (arg == &arg_tokens[i])
            return i;
    return -1;
}

/* Fills r from answer m as the asker s sees it. */
static void answer_rep(gr_ctx *ctx, struct asker *s, const gr_msg *m,
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

static int cont_fn(gr_ctx *ctx, void *state, const gr_msg *m, void *arg);

/* Asks as c says; returns gr_ask's (or gr_ask_then's) code. */
static int do_ask(gr_ctx *ctx, const struct ask_cmd *c, uint64_t *corr)
{
    if (c->cont == K_NONE)
        return gr_ask(ctx, c->target, Q, &c->q, sizeof c->q, c->timeout_ms,
                      corr);
    int idx = c->arg_idx >= 0 && c->arg_idx < ARGS_MAX ? c->arg_idx : 0;
    return gr_ask_then(ctx, c->target, Q, &c->q, sizeof c->q, c->timeout_ms,
                       cont_fn, &arg_tokens[idx], corr);
}

/* Every continuation; the kind is read back from the arg's token. */
static int cont_fn(gr_ctx *ctx, void *state, const gr_msg *m, void *arg)
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
    report(ctx, R_ANSWER, &r);
    switch (kind) {
    case K_STOP:
        return GR_STOP;
    case K_STOP_WITH: {
        gr_reason why = gr_reason_of(GR_ESHUTDOWN);
        why.detail = 5;
        return gr_stop_with(ctx, &why);
    }
    case K_CRASH:
        return CODE_CRASH;
    case K_FAIL:
        gr_fail(ctx, "cont failed");
    default:
        return GR_CONTINUE;
    }
}

/* The asks with a continuation take their kind from their arg's token:
 * arg_idx i runs the continuation kind arg_tokens[i]. */
static void set_arg_kind(int idx, int kind)
{
    arg_tokens[idx] = kind;
}

static int asker_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct asker *s = state;
    struct rep r = {0};
    if (m->flags & GR_MSG_REPLY) {
        if (gr_request_of(m).corr != 0)
            stray(ctx, m); /* An answer is no request. */
        s->handled++;
        answer_rep(ctx, s, m, 0, NULL, &r);
        report(ctx, R_ANSWER, &r);
        return GR_CONTINUE;
    }
    s->magic = MAGIC;
    s->me = gr_self(ctx);
    switch (m->type) {
    case C_ASK: {
        struct ask_cmd c;
        if (!read_payload(m, &c, sizeof c))
            break;
        r.val = c.q.val;
        r.via_cont = c.cont;
        r.t_asked = now_ns();
        r.rc[0] = do_ask(ctx, &c, c.no_corr ? NULL : &r.corr);
        report(ctx, R_ASKED, &r);
        return GR_CONTINUE;
    }
    case C_PROBE:
        r.handled = s->handled;
        r.conts = s->conts;
        report(ctx, R_PROBE, &r);
        return GR_CONTINUE;
    case C_BAD_ASKS: {
        gr_ref t;
        if (!read_payload(m, &t, sizeof t))
            break;
        struct q q = {.val = 1, .mode = M_REPORT};
        r.rc[0] = gr_ask(ctx, t, GR_MSG_RESERVED, &q, sizeof q, 20, NULL);
        r.rc[1] = gr_ask_then(ctx, t, GR_MSG_TIMEOUT, &q, sizeof q, 20, cont_fn,
                              &arg_tokens[0], NULL);
        r.rc[2] = gr_ask(ctx, t, Q, NULL, sizeof q, 20, NULL);
        r.rc[3] = gr_ask(ctx, t, Q, &q, 0, 20, NULL);
        r.rc[4] = gr_ask(NULL, t, Q, &q, sizeof q, 20, NULL);
        r.rc[5] = gr_ask_then(NULL, t, Q, &q, sizeof q, 20, cont_fn,
                              &arg_tokens[0], NULL);
        report(ctx, R_RC, &r);
        return GR_CONTINUE;
    }
    case C_BLOCK:
        return block_at_gate(ctx, m);
    case C_END: {
        int32_t code;
        if (!read_payload(m, &code, sizeof code))
            break;
        return code;
    }
    case C_CALL: {
        gr_ref target;
        if (!read_payload(m, &target, sizeof target))
            break;
        call_from_callback(ctx, target, &r);
        report(ctx, R_RC, &r);
        return GR_CONTINUE;
    }
    default:
        break;
    }
    stray(ctx, m);
    return GR_CONTINUE;
}

static void asker_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)state;
    struct rep r = {.why = *why};
    report(ctx, R_TERM, &r);
}

static const gr_behaviour asker_b = {
    .name = "asker",
    .state_size = sizeof(struct asker),
    .handle = asker_handle,
    .terminate = asker_terminate,
};

/* An actor that tries gr_call in init and terminate (spawn arg: the
 * target), reporting R_RC each time. */
struct init_caller {
    gr_ref target;
};

static int init_caller_init(gr_ctx *ctx, void *state, const void *arg,
                            size_t len)
{
    struct init_caller *s = state;
    int rc = read_arg(&s->target, sizeof s->target, arg, len);
    if (rc != GR_OK)
        return rc;
    struct rep r = {0};
    call_from_callback(ctx, s->target, &r);
    report(ctx, R_RC, &r);
    return GR_OK;
}

static int init_caller_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    stray(ctx, m);
    return GR_CONTINUE;
}

static void init_caller_terminate(gr_ctx *ctx, void *state,
                                  const gr_reason *why)
{
    (void)why;
    struct init_caller *s = state;
    struct rep r = {0};
    call_from_callback(ctx, s->target, &r);
    report(ctx, R_RC, &r);
}

static const gr_behaviour init_caller_b = {
    .name = "init_caller",
    .state_size = sizeof(struct init_caller),
    .init = init_caller_init,
    .handle = init_caller_handle,
    .terminate = init_caller_terminate,
};

/* ---- helpers ------------------------------------------------------------- */

static struct env E;

static int open_env(unsigned workers)
{
    if (!env_open_quiet(&E, workers))
        return 0;
    inbox_ref = gr_inbox_ref(E.inbox);
    sem_init(&gate, 0, 0);
    for (int i = 0; i < ARGS_MAX; i++)
        set_arg_kind(i, K_CONT);
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

/* Receives the next report, whatever its type, into *r and *type. */
static int next_rep(struct rep *r, uint32_t *type)
{
    gr_msg *m = NULL;
    if (gr_inbox_recv(E.inbox, &m, WAIT_MS) != GR_OK) {
        fprintf(stderr, "  no report within %d ms\n", WAIT_MS);
        return 0;
    }
    *type = m->type;
    int ok = read_payload(m, r, sizeof *r);
    gr_msg_free(m);
    if (ok && *type == R_GOT)
        fprintf(stderr, "  stray message type %u flags %u\n", (unsigned)r->type,
                (unsigned)r->flags);
    return ok;
}

/* Receives the next report, which must be of type, into *r. */
static int take(uint32_t type, struct rep *r)
{
    uint32_t got;
    if (!next_rep(r, &got))
        return 0;
    if (got != type)
        fprintf(stderr, "  report type %u, wanted %u\n", (unsigned)got,
                (unsigned)type);
    return got == type;
}

/* Returns 1 if no message reaches the inbox for ms milliseconds. */
static int quiet_for(int ms)
{
    gr_msg *m = NULL;
    if (gr_inbox_recv(E.inbox, &m, ms) == GR_ETIMEDOUT)
        return 1;
    fprintf(stderr, "  unexpected report type %u\n", (unsigned)m->type);
    gr_msg_free(m);
    return 0;
}

static int cmd(gr_ref to, uint32_t type, const void *data, size_t len)
{
    return gr_send(E.sys, GR_REF_NONE, to, type, data, len);
}

/* Tells asker to ask as c says and waits for R_ASKED; returns the ask's
 * code (GR_ETIMEDOUT if no report came) and stores its id and time. */
static int ask_t(gr_ref asker, struct ask_cmd c, uint64_t *corr,
                 uint64_t *t_asked)
{
    struct rep r;
    if (cmd(asker, C_ASK, &c, sizeof c) != GR_OK || !take(R_ASKED, &r))
        return GR_ETIMEDOUT;
    if (corr != NULL)
        *corr = r.corr;
    if (t_asked != NULL)
        *t_asked = r.t_asked;
    return r.rc[0];
}

static int ask(gr_ref asker, struct ask_cmd c, uint64_t *corr)
{
    return ask_t(asker, c, corr, NULL);
}

/* An ask command: target, value, mode, timeout, continuation kind. */
static struct ask_cmd ac(gr_ref target, uint32_t val, int mode,
                         gr_duration timeout_ms, int cont)
{
    return (struct ask_cmd){.target = target,
                            .q = {.val = val, .mode = mode},
                            .timeout_ms = timeout_ms,
                            .cont = cont};
}

/* An ask command whose continuation gets arg_idx, of the given kind. */
static struct ask_cmd ac_then(gr_ref target, uint32_t val, int mode,
                              gr_duration timeout_ms, int arg_idx, int kind)
{
    struct ask_cmd c = ac(target, val, mode, timeout_ms, K_CONT);
    c.arg_idx = arg_idx;
    set_arg_kind(arg_idx, kind);
    return c;
}

static int release(gr_ref callee, uint32_t seed, int keep)
{
    struct release rel = {seed, keep};
    return cmd(callee, C_RELEASE, &rel, sizeof rel);
}

static uint64_t dead(gr_dead_reason reason)
{
    return stats_of(E.sys).dead_letters[reason];
}

/* Returns who's mailbox depth as gr_stats lists it (0 if not listed). */
static uint64_t depth_of(gr_ref who)
{
    gr_stats st = stats_of(E.sys);
    for (int i = 0; i < GR_STATS_DEEPEST; i++)
        if (gr_ref_eq(st.deepest[i].actor, who))
            return st.deepest[i].depth;
    return 0;
}

/* Polls until who's mailbox holds want messages; returns 1, or 0 after
 * WAIT_MS. */
static int wait_depth(gr_ref who, uint64_t want)
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
static int is_failure(const struct rep *r, uint64_t corr, gr_ref callee,
                      int code)
{
    return r->type == GR_MSG_ASK_FAILED && r->flags == GR_MSG_REPLY &&
           r->corr == corr && gr_ref_eq(r->from, callee) &&
           r->read_rc == GR_OK && r->len == sizeof(gr_reason) &&
           r->why.code == code;
}

static void stop_callee(gr_ref callee, const char *text, int64_t detail)
{
    gr_reason why = gr_reason_of(GR_ESHUTDOWN);
    why.detail = detail;
    snprintf(why.text, sizeof why.text, "%s", text);
    (void)cmd(callee, C_STOP_WITH, &why, sizeof why);
}

/* ---- cases: replies ------------------------------------------------------ */

/* A reply reaches the asker once, with the ask's id, only the reply flag,
 * the callee as sender and the callee's payload; a reply from a later
 * turn (gr_request_of, gr_reply_to) likewise; each ask has a fresh id,
 * also when corr is NULL; a zero timeout is not an immediate one. */
static void test_reply(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    uint64_t c1 = 0, c2 = 0;
    struct rep r;
    CHECK_EQ(ask(asker, ac(callee, 21, M_REPLY, 1000, K_NONE), &c1), GR_OK);
    CHECK(c1 != 0);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.corr, c1);
    CHECK_EQ(r.flags, GR_MSG_REPLY);
    CHECK_EQ(r.type, A);
    CHECK_EQ(r.val, 42);
    CHECK(gr_ref_eq(r.from, callee));
    CHECK(gr_ref_eq(r.to, asker));
    CHECK(gr_ref_eq(r.self, asker));
    CHECK_EQ(r.via_cont, 0);
    CHECK_EQ(r.read_rc, GR_EINVAL); /* Not a GR_MSG_ASK_FAILED. */
    /* Answered 300 ms later from a timer turn; the default is 5000 ms. */
    struct ask_cmd c = ac(callee, 5, M_DEFER, GR_DURATION_DEFAULT, K_NONE);
    c.q.delay_ms = 300;
    CHECK_EQ(ask(asker, c, &c2), GR_OK);
    CHECK(c2 != 0 && c2 != c1);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.corr, c2);
    CHECK_EQ(r.type, A);
    CHECK_EQ(r.val, 10);
    CHECK_EQ(r.flags, GR_MSG_REPLY);
    CHECK(gr_ref_eq(r.from, callee));
    /* No corr asked for: the answer still carries a fresh one. */
    c = ac(callee, 7, M_REPLY, 1000, K_NONE);
    c.no_corr = 1;
    CHECK_EQ(ask(asker, c, NULL), GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK(r.corr != 0 && r.corr != c1 && r.corr != c2);
    CHECK_EQ(r.val, 14);
    CHECK(quiet_for(QUIET_MS));
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    close_env();
}

#define ASKERS  4
#define CALLEES 3
#define PER     40
#define N_MANY  (ASKERS * CALLEES * PER)

/* Hundreds of asks in flight at once from several askers to several
 * callees, some answered at once, the rest kept and answered in shuffled
 * orders, a third of them through continuations: every ask gets exactly
 * one answer, matched by its id, at its own asker, through the path it
 * asked for, from the callee it asked, with its own value; ids are
 * distinct; nothing else arrives. */
static void test_many_out_of_order(void)
{
    CHECK(open_env(4));
    gr_ref callees[CALLEES], askers[ASKERS];
    for (int i = 0; i < CALLEES; i++)
        callees[i] = spawn(&callee_b);
    for (int i = 0; i < ASKERS; i++)
        askers[i] = spawn(&asker_b);
    static uint64_t corr[N_MANY];
    static gr_ref who[N_MANY], whom[N_MANY];
    static int seen[N_MANY], asked[N_MANY];
    uint32_t per_asker_conts[ASKERS] = {0};
    unsigned kept = 0;
    /* Every asker asks every callee PER times; all commands go out before
     * any report is read, so the askers ask concurrently. */
    for (int n = 0; n < N_MANY; n++) {
        int a = n % ASKERS, c = (n / ASKERS) % CALLEES;
        int cont = n % 3 == 0;
        struct ask_cmd cm =
            ac(callees[c], (uint32_t)n, n % 5 == 0 ? M_REPLY : M_HOLD, LONG_MS,
               cont ? K_CONT : K_NONE);
        cm.arg_idx = n % ARGS_MAX;
        who[n] = askers[a];
        whom[n] = callees[c];
        seen[n] = asked[n] = 0;
        kept += n % 5 != 0;
        per_asker_conts[a] += cont;
        CHECK_EQ(cmd(askers[a], C_ASK, &cm, sizeof cm), GR_OK);
    }
    int nasked = 0, nanswered = 0, nreleased = 0;
    uint32_t released = 0;
    while (nasked < N_MANY || nanswered < N_MANY || nreleased < CALLEES) {
        struct rep r;
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_ASKED) {
            CHECK(r.val < N_MANY);
            CHECK_EQ(asked[r.val], 0);
            CHECK_EQ(r.rc[0], GR_OK);
            CHECK(r.corr != 0);
            CHECK(gr_ref_eq(r.self, who[r.val]));
            asked[r.val] = 1;
            corr[r.val] = r.corr;
            if (++nasked == N_MANY) {
                /* Every request is queued at its callee now (gr_ask
                 * returned): release them behind it. */
                for (int i = 0; i < N_MANY; i++)
                    for (int j = i + 1; j < N_MANY; j++)
                        CHECK(corr[i] != corr[j]);
                for (int c = 0; c < CALLEES; c++)
                    CHECK_EQ(release(callees[c], (uint32_t)c, 0), GR_OK);
            }
        } else if (type == R_ANSWER) {
            int i = 0;
            while (i < N_MANY && !(asked[i] && corr[i] == r.corr))
                i++;
            CHECK(i < N_MANY); /* An answer to an ask already made. */
            CHECK_EQ(seen[i], 0);
            seen[i] = 1;
            nanswered++;
            CHECK(gr_ref_eq(r.self, who[i]));
            CHECK(gr_ref_eq(r.from, whom[i]));
            CHECK_EQ(r.type, A);
            CHECK_EQ(r.flags, GR_MSG_REPLY);
            CHECK_EQ(r.val, 2u * (uint32_t)i);
            CHECK_EQ(r.via_cont, i % 3 == 0);
            if (r.via_cont) {
                CHECK_EQ(r.arg_idx, i % ARGS_MAX);
                CHECK_EQ(r.state_ok, 1);
            }
        } else {
            CHECK_EQ(type, R_RELEASED);
            CHECK_EQ(r.rc[0], GR_OK);
            nreleased++;
            released += r.val;
        }
    }
    CHECK_EQ(released, kept);
    CHECK(quiet_for(QUIET_MS));
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    /* Each asker's state counted its answers by path. */
    for (int a = 0; a < ASKERS; a++) {
        struct rep r;
        CHECK_EQ(cmd(askers[a], C_PROBE, NULL, 0), GR_OK);
        CHECK(take(R_PROBE, &r));
        CHECK_EQ(r.conts, per_asker_conts[a]);
        CHECK_EQ(r.handled + r.conts, N_MANY / ASKERS);
    }
    close_env();
}

/* Two replies to one request, in the handler call or later through a kept
 * request: the first is the answer; the second is an expired_reply dead
 * letter (gr_reply_to still returns GR_OK) and never reaches the asker. */
static void test_second_reply(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    uint64_t corr;
    struct rep r;
    CHECK_EQ(ask(asker, ac(callee, 4, M_TWICE, LONG_MS, K_NONE), &corr), GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.val, 8);
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, 1), 1);
    CHECK(quiet_for(QUIET_MS));
    uint64_t no_actor = dead(GR_DL_NO_ACTOR);
    CHECK_EQ(ask(asker, ac(callee, 6, M_HOLD, LONG_MS, K_NONE), &corr), GR_OK);
    CHECK_EQ(release(callee, 0, 1), GR_OK); /* Answers, keeps it. */
    for (int i = 0; i < 2; i++) {
        /* The callee's report and the asker's, in either order. */
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_RELEASED) {
            CHECK_EQ(r.rc[0], GR_OK);
            CHECK_EQ(r.val, 1);
        } else {
            CHECK_EQ(type, R_ANSWER);
            CHECK_EQ(r.corr, corr);
            CHECK_EQ(r.val, 12);
        }
    }
    CHECK_EQ(release(callee, 0, 0), GR_OK); /* Again. */
    CHECK(take(R_RELEASED, &r));
    CHECK_EQ(r.rc[0], GR_OK);
    CHECK_EQ(r.val, 1);
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, 2), 2);
    CHECK_EQ(dead(GR_DL_NO_ACTOR), no_actor);
    CHECK(quiet_for(QUIET_MS));
    close_env();
}

/* ---- cases: timeouts ----------------------------------------------------- */

/* Asks nobody answers, with timeouts given in no particular order behind
 * one of 30 s: each times out exactly once, no earlier than its timeout,
 * as GR_MSG_TIMEOUT with only the reply flag, its id, the callee as sender
 * and no payload, and the long one does not hold the short ones back. The
 * callee's replies after that are expired_reply dead letters that never
 * reach the asker, while the still-waiting long ask gets its reply. */
static void test_timeouts(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    uint64_t long_corr;
    CHECK_EQ(ask(asker, ac(callee, 1000, M_HOLD, LONG_MS, K_NONE), &long_corr),
             GR_OK);
    static const uint64_t tmo[] = {200, 120, 80, 40, 10, 60, 150, 5, 1, 30};
    enum { N = sizeof tmo / sizeof tmo[0] };
    uint64_t corr[N], t_asked[N];
    int seen[N] = {0}, asked[N] = {0};
    /* All at once: the short ones may time out before the last is made. */
    for (int i = 0; i < N; i++) {
        struct ask_cmd c = ac(callee, (uint32_t)i, M_HOLD, tmo[i], K_NONE);
        CHECK_EQ(cmd(asker, C_ASK, &c, sizeof c), GR_OK);
    }
    for (int nasked = 0, nanswered = 0; nasked < N || nanswered < N;) {
        struct rep r;
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_ASKED) {
            CHECK(r.val < N);
            CHECK_EQ(r.rc[0], GR_OK);
            asked[r.val] = 1;
            corr[r.val] = r.corr;
            t_asked[r.val] = r.t_asked;
            nasked++;
            continue;
        }
        CHECK_EQ(type, R_ANSWER);
        int i = 0;
        while (i < N && !(asked[i] && corr[i] == r.corr))
            i++;
        CHECK(i < N);
        CHECK_EQ(seen[i], 0);
        seen[i] = 1;
        nanswered++;
        CHECK_EQ(r.type, GR_MSG_TIMEOUT);
        CHECK_EQ(r.flags, GR_MSG_REPLY);
        CHECK(gr_ref_eq(r.from, callee));
        CHECK(gr_ref_eq(r.to, asker));
        CHECK_EQ(r.len, 0);
        CHECK_EQ(r.read_rc, GR_EINVAL);
        CHECK(r.t - t_asked[i] >= tmo[i] * 1000000u);
    }
    CHECK(quiet_for(QUIET_MS)); /* Each once. */
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    uint64_t no_actor = dead(GR_DL_NO_ACTOR);
    CHECK_EQ(release(callee, 7, 0), GR_OK);
    for (int i = 0; i < 2; i++) {
        struct rep r;
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_RELEASED) {
            CHECK_EQ(r.rc[0], GR_OK);
            CHECK_EQ(r.val, N + 1);
        } else {
            CHECK_EQ(type, R_ANSWER);
            CHECK_EQ(r.corr, long_corr);
            CHECK_EQ(r.type, A);
            CHECK_EQ(r.val, 2000);
        }
    }
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, N), N);
    CHECK_EQ(dead(GR_DL_NO_ACTOR), no_actor);
    CHECK(quiet_for(QUIET_MS));
    close_env();
}

/* A reply that comes after the timeout while the asker is busy, its
 * timeout noticed but not yet handled, is late all the same: the asker
 * gets GR_MSG_TIMEOUT and the reply is an expired_reply dead letter. */
static void test_late_reply_while_busy(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    uint64_t corr = 0, t_asked = 0;
    struct rep r;
    int32_t ret = GR_CONTINUE;
    /* The callee reports that it holds the request before the asker is
     * blocked: an actor woken by a send may wait in its sender's worker,
     * which the blocked handler would then hold up. */
    struct ask_cmd c = ac(callee, 1, M_HOLD_TELL, 30, K_NONE);
    CHECK_EQ(cmd(asker, C_ASK, &c, sizeof c), GR_OK);
    for (int i = 0; i < 2; i++) {
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_ASKED) {
            CHECK_EQ(r.rc[0], GR_OK);
            corr = r.corr;
            t_asked = r.t_asked;
        } else {
            CHECK_EQ(type, R_HELD);
        }
    }
    CHECK_EQ(cmd(asker, C_BLOCK, &ret, sizeof ret), GR_OK);
    CHECK(take(R_BLOCKED, &r));
    /* The timeout reaches the busy asker's mailbox first; then, well past
     * the timeout (100 ms: the runtime may notice a timeout a little late,
     * never early), the reply (the callee's report says it was sent). */
    int timed_out = wait_depth(asker, 1);
    uint64_t late = t_asked + 130 * 1000000u, now = now_ns();
    if (now < late)
        sleep_us((long)((late - now) / 1000u));
    int replied = timed_out && release(callee, 0, 0) == GR_OK &&
                  take(R_RELEASED, &r) && r.val == 1 && wait_depth(asker, 2);
    sem_post(&gate);
    CHECK(timed_out);
    CHECK(replied);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.type, GR_MSG_TIMEOUT);
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, 1), 1);
    CHECK(quiet_for(QUIET_MS));
    close_env();
}

#define T_ASKERS 3
#define T_PER    100
#define N_TMO    (T_ASKERS * T_PER)

/* Hundreds of short timeouts at once from several askers, half of them to
 * continuations: each ask times out exactly once, never early, through the
 * path it asked for. */
static void test_many_timeouts(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), askers[T_ASKERS];
    for (int a = 0; a < T_ASKERS; a++)
        askers[a] = spawn(&asker_b);
    static uint64_t corr[N_TMO], t_asked[N_TMO], tmo[N_TMO];
    static int seen[N_TMO], asked[N_TMO];
    for (int n = 0; n < N_TMO; n++) {
        tmo[n] = 1 + (uint64_t)(n * 7) % 40;
        seen[n] = asked[n] = 0;
        struct ask_cmd c =
            ac(callee, (uint32_t)n, M_IGNORE, tmo[n], n % 2 ? K_CONT : K_NONE);
        CHECK_EQ(cmd(askers[n % T_ASKERS], C_ASK, &c, sizeof c), GR_OK);
    }
    int nasked = 0, nanswered = 0;
    while (nasked < N_TMO || nanswered < N_TMO) {
        struct rep r;
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_ASKED) {
            CHECK(r.val < N_TMO);
            CHECK_EQ(asked[r.val], 0);
            CHECK_EQ(r.rc[0], GR_OK);
            asked[r.val] = 1;
            corr[r.val] = r.corr;
            t_asked[r.val] = r.t_asked;
            nasked++;
            continue;
        }
        CHECK_EQ(type, R_ANSWER);
        /* Its R_ASKED came first: one sender, one order. */
        int i = 0;
        while (i < N_TMO && !(asked[i] && corr[i] == r.corr))
            i++;
        CHECK(i < N_TMO);
        CHECK_EQ(seen[i], 0);
        seen[i] = 1;
        nanswered++;
        CHECK_EQ(r.type, GR_MSG_TIMEOUT);
        CHECK_EQ(r.flags, GR_MSG_REPLY);
        CHECK(gr_ref_eq(r.from, callee));
        CHECK(gr_ref_eq(r.self, askers[i % T_ASKERS]));
        CHECK_EQ(r.via_cont, i % 2);
        CHECK(r.t - t_asked[i] >= tmo[i] * 1000000u);
    }
    CHECK(quiet_for(QUIET_MS));
    close_env();
}

#define R_PER  100
#define N_RACE (T_ASKERS * R_PER)

/* Replies that race their timeouts (the callee answers from a timer about
 * when the ask times out): every ask gets exactly one answer, the reply or
 * the timeout, and exactly the replies of the asks that timed out become
 * expired_reply dead letters. */
static void test_reply_races_timeout(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), askers[T_ASKERS];
    for (int a = 0; a < T_ASKERS; a++)
        askers[a] = spawn(&asker_b);
    static uint64_t corr[N_RACE], t_asked[N_RACE], tmo[N_RACE];
    static int seen[N_RACE], asked[N_RACE];
    for (int n = 0; n < N_RACE; n++) {
        tmo[n] = 5 + (uint64_t)n % 10;
        seen[n] = asked[n] = 0;
        struct ask_cmd c =
            ac(callee, (uint32_t)n, M_DEFER, tmo[n], n % 2 ? K_CONT : K_NONE);
        c.q.delay_ms = (uint32_t)(tmo[n] - 2 + (uint64_t)n % 5);
        CHECK_EQ(cmd(askers[n % T_ASKERS], C_ASK, &c, sizeof c), GR_OK);
    }
    int nasked = 0, nanswered = 0;
    uint64_t timeouts = 0;
    while (nasked < N_RACE || nanswered < N_RACE) {
        struct rep r;
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_ASKED) {
            CHECK(r.val < N_RACE);
            CHECK_EQ(r.rc[0], GR_OK);
            asked[r.val] = 1;
            corr[r.val] = r.corr;
            t_asked[r.val] = r.t_asked;
            nasked++;
            continue;
        }
        CHECK_EQ(type, R_ANSWER);
        int i = 0;
        while (i < N_RACE && !(asked[i] && corr[i] == r.corr))
            i++;
        CHECK(i < N_RACE);
        CHECK_EQ(seen[i], 0);
        seen[i] = 1;
        nanswered++;
        CHECK_EQ(r.via_cont, i % 2);
        CHECK_EQ(r.flags, GR_MSG_REPLY);
        CHECK(gr_ref_eq(r.from, callee));
        if (r.type == GR_MSG_TIMEOUT) {
            timeouts++;
            CHECK(r.t - t_asked[i] >= tmo[i] * 1000000u);
        } else {
            CHECK_EQ(r.type, A);
            CHECK_EQ(r.val, 2u * (uint32_t)i);
        }
    }
    /* Every deferred reply is sent, in time or not: wait for the late. */
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, timeouts), timeouts);
    sleep_ms(50); /* The longest deferral is 17 ms. */
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), timeouts);
    CHECK(quiet_for(QUIET_MS));
    close_env();
}

/* ---- cases: the callee gone or exiting ----------------------------------- */

/* A target already gone: gr_ask and gr_ask_then say GR_ENOACTOR, and no
 * answer follows, not even a timeout; the asker goes on asking. */
static void test_callee_gone(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    gr_ref live = spawn(&callee_b);
    CHECK_EQ(gr_stop(E.sys, callee), GR_OK);
    CHECK_EQ(wait_exited(E.sys, 1), 1);
    CHECK_EQ(ask(asker, ac(callee, 1, M_REPLY, 20, K_NONE), NULL), GR_ENOACTOR);
    CHECK_EQ(ask(asker, ac(callee, 2, M_REPLY, 20, K_CONT), NULL), GR_ENOACTOR);
    CHECK(quiet_for(QUIET_MS));
    struct rep r;
    CHECK_EQ(cmd(asker, C_PROBE, NULL, 0), GR_OK);
    CHECK(take(R_PROBE, &r));
    CHECK_EQ(r.handled, 0);
    CHECK_EQ(r.conts, 0);
    uint64_t corr;
    CHECK_EQ(ask(asker, ac(live, 3, M_REPLY, 1000, K_NONE), &corr), GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.val, 6);
    CHECK(quiet_for(QUIET_MS));
    close_env();
}

/* A callee that crashes handling the request, by returning an error or
 * through gr_fail: the ask fails at once (not after its 30 s) with the
 * crash reason, read with gr_ask_failed_read. */
static void test_callee_crashes(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    uint64_t corr;
    struct rep r;
    CHECK_EQ(ask(asker, ac(callee, 1, M_CRASH, LONG_MS, K_NONE), &corr), GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK(is_failure(&r, corr, callee, CODE_CRASH));
    CHECK(r.why.flags & GR_REASON_IN_HANDLER);
    CHECK_EQ(r.why.msg_type, Q);
    callee = spawn(&callee_b);
    CHECK_EQ(ask(asker, ac(callee, 7, M_FAIL, LONG_MS, K_NONE), &corr), GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK(is_failure(&r, corr, callee, GR_EFAILED));
    CHECK(strcmp(r.why.text, "boom 7") == 0);
    CHECK(quiet_for(QUIET_MS));
    close_env();
}

/* A callee that exits holding requests, kept for later (gr_request_of) or
 * returned from unanswered, fails each at once with its exit reason, and
 * only those: an answered ask keeps its reply. Returning GR_STOP from the
 * request's own handler call fails it with reason normal. A callee that
 * answers its kept requests from terminate: the askers get those
 * replies, not failures. */
static void test_callee_exits_holding(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b);
    gr_ref a1 = spawn(&asker_b), a2 = spawn(&asker_b);
    uint64_t c[3], answered;
    struct rep r;
    CHECK_EQ(ask(a1, ac(callee, 1, M_HOLD, LONG_MS, K_NONE), &c[0]), GR_OK);
    CHECK_EQ(ask(a1, ac(callee, 2, M_IGNORE, LONG_MS, K_NONE), &c[1]), GR_OK);
    CHECK_EQ(ask(a2, ac(callee, 3, M_HOLD, LONG_MS, K_NONE), &c[2]), GR_OK);
    CHECK_EQ(ask(a2, ac(callee, 4, M_REPLY, LONG_MS, K_NONE), &answered),
             GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.corr, answered);
    CHECK(quiet_for(50));
    stop_callee(callee, "going", 42);
    int seen[3] = {0};
    for (int k = 0; k < 3; k++) {
        CHECK(take(R_ANSWER, &r));
        int i = 0;
        while (i < 3 && c[i] != r.corr)
            i++;
        CHECK(i < 3);
        CHECK_EQ(seen[i], 0);
        seen[i] = 1;
        CHECK(is_failure(&r, c[i], callee, GR_ESHUTDOWN));
        CHECK(gr_ref_eq(r.self, i < 2 ? a1 : a2));
        CHECK_EQ(r.why.detail, 42);
        CHECK(strcmp(r.why.text, "going") == 0);
    }
    CHECK(quiet_for(QUIET_MS));
    /* GR_STOP in the request's own handler call. */
    callee = spawn(&callee_b);
    CHECK_EQ(ask(a1, ac(callee, 5, M_STOP, LONG_MS, K_NONE), &c[0]), GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK(is_failure(&r, c[0], callee, GR_OK));
    CHECK(quiet_for(QUIET_MS));
    /* Answered from terminate. */
    callee = spawn(&callee_b);
    CHECK_EQ(cmd(callee, C_REPLY_ON_EXIT, NULL, 0), GR_OK);
    CHECK_EQ(ask(a1, ac(callee, 6, M_HOLD, LONG_MS, K_NONE), &c[0]), GR_OK);
    CHECK_EQ(ask(a2, ac(callee, 7, M_HOLD, LONG_MS, K_NONE), &c[1]), GR_OK);
    CHECK_EQ(gr_stop(E.sys, callee), GR_OK);
    for (int k = 0; k < 2; k++) {
        CHECK(take(R_ANSWER, &r));
        CHECK_EQ(r.type, A);
        CHECK(r.corr == c[0] || r.corr == c[1]);
        CHECK_EQ(r.val, r.corr == c[0] ? 12 : 14);
    }
    CHECK(quiet_for(QUIET_MS));
    close_env();
}

/* A request still queued when the callee exits (behind a gr_stop, behind
 * a kill, or behind the message it crashes on) fails at once with the
 * exit's code. */
static void test_request_queued_at_exit(void)
{
    CHECK(open_env(2));
    gr_ref asker = spawn(&asker_b);
    const int want[] = {GR_ESHUTDOWN, GR_EKILLED, CODE_CRASH - 1};
    for (int v = 0; v < 3; v++) {
        gr_ref callee = spawn(&callee_b);
        int32_t ret = v == 2 ? CODE_CRASH - 1 : GR_CONTINUE;
        struct rep r;
        CHECK_EQ(cmd(callee, C_BLOCK, &ret, sizeof ret), GR_OK);
        CHECK(take(R_BLOCKED, &r));
        if (v == 0)
            CHECK_EQ(gr_stop(E.sys, callee), GR_OK);
        if (v == 1)
            CHECK_EQ(
                gr_system_exit(E.sys, callee, &(gr_reason){.code = GR_EKILL}),
                GR_OK);
        uint64_t corr;
        CHECK_EQ(ask(asker, ac(callee, (uint32_t)v, M_REPLY, LONG_MS, K_NONE),
                     &corr),
                 GR_OK);
        sem_post(&gate);
        CHECK(take(R_ANSWER, &r));
        CHECK(is_failure(&r, corr, callee, want[v]));
        CHECK(quiet_for(50));
    }
    close_env();
}

/* The exit reason a queued request fails with is the whole reason, as a
 * kept request's is: the same code, flags, message type, detail and text
 * for both, for an exit signal with a detail and text and for a crash in
 * a handler. */
static void test_queued_request_full_reason(void)
{
    CHECK(open_env(2));
    gr_ref asker = spawn(&asker_b);
    int differ = 0;
    for (int v = 0; v < 2; v++) {
        gr_ref callee = spawn(&callee_b);
        uint64_t kept, queued;
        struct rep r, got[2];
        CHECK_EQ(ask(asker, ac(callee, 1, M_HOLD, LONG_MS, K_NONE), &kept),
                 GR_OK);
        int32_t ret = v == 0 ? GR_CONTINUE : CODE_CRASH;
        CHECK_EQ(cmd(callee, C_BLOCK, &ret, sizeof ret), GR_OK);
        CHECK(take(R_BLOCKED, &r));
        if (v == 0) {
            gr_reason why = gr_reason_of(GR_ESHUTDOWN);
            why.detail = 77;
            snprintf(why.text, sizeof why.text, "drain");
            CHECK_EQ(gr_system_exit(E.sys, callee, &why), GR_OK);
        }
        CHECK_EQ(ask(asker, ac(callee, 2, M_REPLY, LONG_MS, K_NONE), &queued),
                 GR_OK);
        sem_post(&gate);
        CHECK(take(R_ANSWER, &got[0]));
        CHECK(take(R_ANSWER, &got[1]));
        const struct rep *k = got[0].corr == kept ? &got[0] : &got[1];
        const struct rep *q = got[0].corr == kept ? &got[1] : &got[0];
        int code = v == 0 ? GR_ESHUTDOWN : CODE_CRASH;
        CHECK(is_failure(k, kept, callee, code));
        CHECK(is_failure(q, queued, callee, code));
        if (v == 0) {
            CHECK_EQ(k->why.detail, 77);
            CHECK(strcmp(k->why.text, "drain") == 0);
        } else {
            CHECK(k->why.flags & GR_REASON_IN_HANDLER);
            CHECK_EQ(k->why.msg_type, C_BLOCK);
        }
        if (q->why.flags != k->why.flags ||
            q->why.msg_type != k->why.msg_type ||
            q->why.detail != k->why.detail ||
            strcmp(q->why.text, k->why.text) != 0) {
            char kb[160], qb[160];
            fprintf(stderr,
                    "  kept request failed with \"%s\",\n"
                    "  queued one with \"%s\"\n",
                    gr_reason_format(&k->why, kb, sizeof kb),
                    gr_reason_format(&q->why, qb, sizeof qb));
            differ++;
        }
        CHECK(quiet_for(50));
    }
    /* Checked after the shutdown, so that a difference leaks nothing. */
    close_env();
    CHECK_EQ(differ, 0);
}

/* ---- cases: continuations ------------------------------------------------ */

/* gr_ask_then hands a reply, a timeout and a failure to the continuation,
 * never to handle, in the asker's turn (its ctx, its state, which keeps
 * what the continuations counted) with the arg of that ask; a plain
 * gr_ask beside them still goes to handle; a continuation may ask again. */
static void test_continuations(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), crasher = spawn(&callee_b);
    gr_ref asker = spawn(&asker_b);
    uint64_t corr, t_asked;
    struct rep r;
    CHECK_EQ(ask(asker, ac_then(callee, 3, M_REPLY, 1000, 1, K_CONT), &corr),
             GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.via_cont, 1);
    CHECK_EQ(r.arg_idx, 1);
    CHECK_EQ(r.state_ok, 1);
    CHECK(gr_ref_eq(r.self, asker));
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.type, A);
    CHECK_EQ(r.flags, GR_MSG_REPLY);
    CHECK_EQ(r.val, 6);
    CHECK(gr_ref_eq(r.from, callee));
    CHECK_EQ(r.conts, 1);
    CHECK_EQ(r.handled, 0);
    CHECK_EQ(ask_t(asker, ac_then(callee, 4, M_HOLD, 30, 2, K_CONT), &corr,
                   &t_asked),
             GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.via_cont, 1);
    CHECK_EQ(r.arg_idx, 2);
    CHECK_EQ(r.state_ok, 1);
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.type, GR_MSG_TIMEOUT);
    CHECK_EQ(r.flags, GR_MSG_REPLY);
    CHECK(gr_ref_eq(r.from, callee));
    CHECK(r.t - t_asked >= 30 * 1000000u);
    CHECK_EQ(r.conts, 2);
    CHECK_EQ(
        ask(asker, ac_then(crasher, 5, M_CRASH, LONG_MS, 3, K_CONT), &corr),
        GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.via_cont, 1);
    CHECK_EQ(r.arg_idx, 3);
    CHECK_EQ(r.state_ok, 1);
    CHECK(is_failure(&r, corr, crasher, CODE_CRASH));
    CHECK_EQ(r.conts, 3);
    /* A plain ask beside them. */
    CHECK_EQ(ask(asker, ac(callee, 6, M_REPLY, 1000, K_NONE), &corr), GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.via_cont, 0);
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.handled, 1);
    CHECK_EQ(r.conts, 3);
    /* A continuation that asks again, with a continuation. */
    CHECK_EQ(ask(asker, ac_then(callee, 7, M_REPLY, 1000, 4, K_CHAIN), &corr),
             GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.arg_idx, 4);
    CHECK_EQ(r.val, 14);
    CHECK_EQ(r.rc[0], GR_OK);
    uint64_t corr2 = r.corr2;
    CHECK(corr2 != 0 && corr2 != corr);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.via_cont, 1);
    CHECK_EQ(r.corr, corr2);
    CHECK_EQ(r.arg_idx, 5);
    CHECK_EQ(r.val, 16);
    CHECK_EQ(r.state_ok, 1);
    CHECK_EQ(cmd(asker, C_PROBE, NULL, 0), GR_OK);
    CHECK(take(R_PROBE, &r));
    CHECK_EQ(r.handled, 1);
    CHECK_EQ(r.conts, 5);
    CHECK(quiet_for(QUIET_MS));
    close_env();
}

/* A continuation's return value counts as handle's would: GR_STOP (after
 * a reply) exits normally, gr_stop_with (after a timeout) with its
 * reason, an error code (after a failure) crashes with it, and gr_fail
 * crashes with GR_EFAILED and its text. */
static void test_continuation_ends_asker(void)
{
    CHECK(open_env(2));
    struct {
        int mode, kind, code;
    } v[] = {{M_REPLY, K_STOP, GR_OK},
             {M_HOLD, K_STOP_WITH, GR_ESHUTDOWN},
             {M_CRASH, K_CRASH, CODE_CRASH},
             {M_REPLY, K_FAIL, GR_EFAILED}};
    for (int i = 0; i < 4; i++) {
        gr_ref asker = spawn(&asker_b), callee = spawn(&callee_b);
        uint64_t timeout = v[i].mode == M_HOLD ? 20 : LONG_MS;
        uint64_t corr;
        struct rep r;
        CHECK_EQ(ask(asker,
                     ac_then(callee, 1, v[i].mode, timeout, i + 1, v[i].kind),
                     &corr),
                 GR_OK);
        CHECK(take(R_ANSWER, &r));
        CHECK_EQ(r.via_cont, 1);
        CHECK_EQ(r.corr, corr);
        CHECK(take(R_TERM, &r));
        CHECK(gr_ref_eq(r.self, asker));
        CHECK_EQ(r.why.code, v[i].code);
        if (v[i].kind == K_STOP_WITH)
            CHECK_EQ(r.why.detail, 5);
        if (v[i].kind == K_CRASH || v[i].kind == K_FAIL)
            CHECK(r.why.flags & GR_REASON_IN_HANDLER);
        if (v[i].kind == K_FAIL)
            CHECK(strcmp(r.why.text, "cont failed") == 0);
    }
    CHECK(quiet_for(QUIET_MS));
    close_env();
}

/* ---- cases: the asker exiting -------------------------------------------- */

/* Askers that exit (stopped, killed, crashed) with asks pending, to
 * handle and to continuations, some about to time out: nothing reaches
 * anyone afterwards, not even a timeout; the callees' replies after that
 * succeed (GR_OK) and are expired_reply dead letters, not no_actor ones;
 * a callee exiting with requests from a dead asker sends nothing anyone
 * sees. ASan checks that nothing leaks. */
static void test_asker_exits(void)
{
    CHECK(open_env(2));
    gr_ref c1 = spawn(&callee_b), c2 = spawn(&callee_b);
    gr_ref c3 = spawn(&callee_b);
    const int want[] = {GR_ESHUTDOWN, GR_EKILLED, CODE_CRASH};
    for (int how = 0; how < 3; how++) {
        gr_ref asker = spawn(&asker_b);
        struct ask_cmd c[16];
        for (uint32_t i = 0; i < 5; i++) {
            c[3 * i] = ac(c1, i, M_HOLD, LONG_MS, K_NONE);
            c[3 * i + 1] = ac(c2, i, M_HOLD, 400, K_NONE);
            c[3 * i + 2] = ac(c1, i, M_HOLD, LONG_MS, K_CONT);
        }
        c[15] = ac(c3, 9, M_HOLD, LONG_MS, K_NONE);
        /* The end goes right behind the asks, long before 400 ms. */
        for (int i = 0; i < 16; i++)
            CHECK_EQ(cmd(asker, C_ASK, &c[i], sizeof c[i]), GR_OK);
        if (how == 0)
            CHECK_EQ(gr_stop(E.sys, asker), GR_OK);
        else if (how == 1)
            CHECK_EQ(
                gr_system_exit(E.sys, asker, &(gr_reason){.code = GR_EKILL}),
                GR_OK);
        else
            CHECK_EQ(cmd(asker, C_END, &(int32_t){CODE_CRASH}, sizeof(int32_t)),
                     GR_OK);
        struct rep r;
        for (int i = 0; i < 16; i++) {
            CHECK(take(R_ASKED, &r));
            CHECK_EQ(r.rc[0], GR_OK);
        }
        CHECK(take(R_TERM, &r));
        CHECK_EQ(r.why.code, want[how]);
    }
    CHECK(quiet_for(600)); /* Past the 400 ms timeouts. */
    uint64_t expired = dead(GR_DL_EXPIRED_REPLY);
    uint64_t no_actor = dead(GR_DL_NO_ACTOR);
    CHECK_EQ(expired, 0);
    CHECK_EQ(release(c1, 3, 0), GR_OK);
    CHECK_EQ(release(c2, 0, 0), GR_OK);
    for (int i = 0; i < 2; i++) {
        struct rep r;
        CHECK(take(R_RELEASED, &r));
        CHECK_EQ(r.rc[0], GR_OK);
        CHECK_EQ(r.val, gr_ref_eq(r.self, c1) ? 30 : 15);
    }
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, 45), 45);
    CHECK_EQ(dead(GR_DL_NO_ACTOR), no_actor);
    CHECK_EQ(gr_stop(E.sys, c3), GR_OK);
    CHECK(quiet_for(QUIET_MS));
    close_env();
}

/* ---- cases: bad arguments ------------------------------------------------ */

/* gr_reply on a plain tell (or gr_reply_to a request with no id, or NULL)
 * is GR_EINVAL; so is a reply with a reserved type, a payload whose data
 * and len disagree, or no ctx, and none of those answers the request: the
 * good reply after them is the one answer, and no dead letter is made.
 * gr_ask and gr_ask_then refuse reserved types, bad payloads and no ctx,
 * and send nothing; gr_ask_failed_read refuses what is not a well-formed
 * failure; gr_call refuses reserved types, bad payloads, no system and no
 * place for the reply. */
static void test_bad_arguments(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    struct rep r;
    CHECK_EQ(cmd(callee, C_TELL_ME, NULL, 0), GR_OK);
    CHECK(take(R_RC, &r));
    CHECK_EQ(r.rc[0], GR_EINVAL); /* gr_reply to a tell */
    CHECK_EQ(r.rc[1], 1);         /* gr_request_of a tell: corr 0 */
    CHECK_EQ(r.rc[2], GR_EINVAL); /* gr_reply_to that */
    CHECK_EQ(r.rc[3], GR_EINVAL); /* gr_reply_to NULL */
    /* The callee's R_RC and the asker's reports, in any order (the
     * asker's R_ASKED comes before its R_ANSWER). */
    struct ask_cmd c = ac(callee, 9, M_BAD, LONG_MS, K_NONE);
    CHECK_EQ(cmd(asker, C_ASK, &c, sizeof c), GR_OK);
    uint64_t corr = 0;
    for (int i = 0; i < 3; i++) {
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_RC) {
            for (int k = 0; k < 5; k++)
                CHECK_EQ(r.rc[k], GR_EINVAL);
        } else if (type == R_ASKED) {
            CHECK_EQ(r.rc[0], GR_OK);
            corr = r.corr;
        } else {
            CHECK_EQ(type, R_ANSWER);
            CHECK(corr != 0);
            CHECK_EQ(r.corr, corr);
            CHECK_EQ(r.type, A);
            CHECK_EQ(r.val, 18);
        }
    }
    CHECK(quiet_for(QUIET_MS));
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    /* Bad asks: each would time out within 20 ms if it had been made, and
     * the callee reports any request it gets. */
    CHECK_EQ(cmd(asker, C_BAD_ASKS, &callee, sizeof callee), GR_OK);
    CHECK(take(R_RC, &r));
    for (int k = 0; k < 6; k++)
        CHECK_EQ(r.rc[k], GR_EINVAL);
    CHECK(quiet_for(QUIET_MS));
    /* gr_ask_failed_read on messages that are not failures. */
    gr_reason why;
    gr_msg m = {.type = GR_MSG_ASK_FAILED,
                .flags = GR_MSG_REPLY,
                .data = &why,
                .len = sizeof why - 1};
    CHECK_EQ(gr_ask_failed_read(NULL, &why), GR_EINVAL);
    CHECK_EQ(gr_ask_failed_read(&m, &why), GR_EINVAL);
    m.len = sizeof why;
    m.type = GR_MSG_TIMEOUT;
    CHECK_EQ(gr_ask_failed_read(&m, &why), GR_EINVAL);
    /* gr_call: nothing reaches the callee, nothing is stored. */
    struct q q = {.val = 1, .mode = M_REPORT};
    gr_msg *reply = NULL;
    CHECK_EQ(gr_call(E.sys, callee, GR_MSG_RESERVED, &q, sizeof q, 100, &reply),
             GR_EINVAL);
    CHECK_EQ(gr_call(E.sys, callee, Q, NULL, sizeof q, 100, &reply), GR_EINVAL);
    CHECK_EQ(gr_call(E.sys, callee, Q, &q, 0, 100, &reply), GR_EINVAL);
    CHECK_EQ(gr_call(NULL, callee, Q, &q, sizeof q, 100, &reply), GR_EINVAL);
    CHECK_EQ(gr_call(E.sys, callee, Q, &q, sizeof q, 100, NULL), GR_EINVAL);
    CHECK(reply == NULL);
    CHECK(quiet_for(QUIET_MS));
    close_env();
}

/* ---- cases: gr_call ------------------------------------------------------ */

#define CALL_THREADS 4
#define CALLS        1000

struct call_arg {
    gr_ref callee[CALLEES];
    int id;
    unsigned n;
    atomic_int *go;
    atomic_int *bad;
    uint64_t *corrs; /* n ids, one per call. */
};

static void *call_thread(void *p)
{
    struct call_arg *a = p;
    go_wait(a->go);
    for (unsigned i = 0; i < a->n; i++) {
        int c = (int)(i % CALLEES);
        struct q q = {.val = (uint32_t)a->id * 100000u + i,
                      .mode = i % 4 == 3 ? M_DEFER : M_REPLY,
                      .delay_ms = i % 3};
        gr_msg *reply = NULL;
        int rc = gr_call(E.sys, a->callee[c], Q, &q, sizeof q, WAIT_MS, &reply);
        uint32_t v = 0;
        if (rc != GR_OK || reply == NULL || reply->type != A ||
            reply->flags != GR_MSG_REPLY ||
            !gr_ref_eq(reply->from, a->callee[c]) || reply->corr == 0 ||
            !read_payload(reply, &v, sizeof v) || v != 2 * q.val) {
            if (atomic_fetch_add(a->bad, 1) == 0)
                fprintf(stderr, "  call %d/%u: rc %d\n", a->id, i, rc);
            gr_msg_free(reply);
            break; /* One is enough, and the rest might each wait. */
        }
        a->corrs[i] = reply != NULL ? reply->corr : 0;
        gr_msg_free(reply);
    }
    return NULL;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* gr_call from four threads at once to three callees, a quarter answered
 * later from timers: every call gets its own answer, with distinct ids,
 * and nothing is dead-lettered. */
static void test_call_threads(void)
{
    CHECK(open_env(2));
    unsigned n = (unsigned)scaled(CALLS, 100);
    static uint64_t corrs[CALL_THREADS * CALLS];
    atomic_int bad = 0, go = 0;
    struct call_arg args[CALL_THREADS];
    pthread_t t[CALL_THREADS];
    gr_ref callees[CALLEES];
    for (int c = 0; c < CALLEES; c++)
        callees[c] = spawn(&callee_b);
    int started = 0;
    for (int i = 0; i < CALL_THREADS; i++) {
        memcpy(args[i].callee, callees, sizeof callees);
        args[i].id = i;
        args[i].n = n;
        args[i].go = &go;
        args[i].bad = &bad;
        args[i].corrs = &corrs[i * n];
        if (pthread_create(&t[i], NULL, call_thread, &args[i]) != 0)
            break;
        started++;
    }
    go_open(&go);
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(started, CALL_THREADS);
    CHECK_EQ(atomic_load(&bad), 0);
    qsort(corrs, CALL_THREADS * (size_t)n, sizeof corrs[0], cmp_u64);
    for (size_t i = 1; i < CALL_THREADS * (size_t)n; i++)
        CHECK(corrs[i] != corrs[i - 1]);
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    CHECK_EQ(dead(GR_DL_NO_ACTOR), 0);
    CHECK(quiet_for(50));
    close_env();
}

/* gr_call's timeout: GR_ETIMEDOUT, nothing stored; the reply that comes
 * later is an expired_reply dead letter; the next call works.
 * GR_DURATION_DEFAULT is 5000 ms (a reply 300 ms later is taken),
 * GR_DURATION_INFINITE waits, GR_DURATION_ZERO takes only an answer that
 * is there already, and a timeout below GR_DURATION_DEFAULT is refused.
 * (test_call_never_early checks how long it waits.) */
static void test_call_timeout(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b);
    struct q q = {.val = 1, .mode = M_HOLD};
    gr_msg *reply = NULL;
    CHECK_EQ(gr_call(E.sys, callee, Q, &q, sizeof q, 50, &reply), GR_ETIMEDOUT);
    CHECK(reply == NULL);
    uint64_t no_actor = dead(GR_DL_NO_ACTOR);
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    struct rep r;
    CHECK_EQ(release(callee, 0, 0), GR_OK);
    CHECK(take(R_RELEASED, &r));
    CHECK_EQ(r.rc[0], GR_OK);
    CHECK_EQ(r.val, 1);
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, 1), 1);
    CHECK_EQ(dead(GR_DL_NO_ACTOR), no_actor);
    const gr_duration timeouts[] = {1000, GR_DURATION_DEFAULT,
                                    GR_DURATION_INFINITE};
    const uint32_t delays[] = {0, 300, 100};
    for (int i = 0; i < 3; i++) {
        q = (struct q){
            .val = 2 + (uint32_t)i, .mode = M_DEFER, .delay_ms = delays[i]};
        uint32_t v = 0;
        CHECK_EQ(gr_call(E.sys, callee, Q, &q, sizeof q, timeouts[i], &reply),
                 GR_OK);
        CHECK(reply != NULL);
        int ok = reply->type == A && reply->flags == GR_MSG_REPLY &&
                 read_payload(reply, &v, sizeof v);
        gr_msg_free(reply);
        reply = NULL;
        CHECK(ok);
        CHECK_EQ(v, 2 * q.val);
    }
    CHECK(quiet_for(QUIET_MS));
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 1);
    /* Zero: no waiting for a reply that takes 100 ms (it expires). */
    q = (struct q){.val = 9, .mode = M_DEFER, .delay_ms = 100};
    CHECK_EQ(gr_call(E.sys, callee, Q, &q, sizeof q, GR_DURATION_ZERO, &reply),
             GR_ETIMEDOUT);
    CHECK(reply == NULL);
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, 2), 2);
    CHECK_EQ(gr_call(E.sys, callee, Q, &q, sizeof q, -3, &reply), GR_EINVAL);
    CHECK(reply == NULL);
    close_env();
}

/* Calls that nobody answers, with a timeout of 50 ms, then many of 1 ms
 * (the more calls, the likelier an early one shows): none returns
 * GR_ETIMEDOUT before its timeout, measured from before the call. */
static void test_call_never_early(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b);
    struct q q = {.val = 1, .mode = M_IGNORE};
    unsigned n = (unsigned)scaled(300, 50), early = 0;
    uint64_t shortest = UINT64_MAX;
    for (unsigned i = 0; i <= n; i++) {
        uint64_t ms = i == 0 ? 50 : 1;
        gr_msg *reply = NULL;
        uint64_t t0 = now_ns();
        CHECK_EQ(gr_call(E.sys, callee, Q, &q, sizeof q, (int)ms, &reply),
                 GR_ETIMEDOUT);
        uint64_t took = now_ns() - t0;
        CHECK(reply == NULL);
        if (took < ms * 1000000u) {
            if (early++ == 0 || took < shortest)
                fprintf(stderr, "  a %d ms call timed out after %.3f ms\n",
                        (int)ms, (double)took / 1e6);
            shortest = took < shortest ? took : shortest;
        }
    }
    CHECK(quiet_for(50));
    close_env();
    CHECK_EQ(early, 0);
}

/* A gr_call made on a thread of its own. */
struct call_job {
    gr_ref target;
    struct q q;
    int rc;
    gr_msg *reply;
    uint64_t ns; /* How long it took. */
    pthread_t th;
};

static void *call_job_run(void *p)
{
    struct call_job *j = p;
    uint64_t t0 = now_ns();
    j->rc = gr_call(E.sys, j->target, Q, &j->q, sizeof j->q, (int)LONG_MS,
                    &j->reply);
    j->ns = now_ns() - t0;
    return NULL;
}

/* gr_call to a callee that is gone, crashes on the request, exits holding
 * it, or exits with it still queued behind a gr_stop or a kill: each is
 * GR_ENOACTOR at once (not after the 30 s timeout), nothing stored. */
static void test_call_callee_fails(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b);
    CHECK_EQ(gr_stop(E.sys, callee), GR_OK);
    CHECK_EQ(wait_exited(E.sys, 1), 1);
    struct call_job j = {.target = callee, .q = {.val = 1, .mode = M_REPLY}};
    (void)call_job_run(&j);
    CHECK_EQ(j.rc, GR_ENOACTOR);
    CHECK(j.reply == NULL);
    /* Crashes on it. */
    j = (struct call_job){.target = spawn(&callee_b),
                          .q = {.val = 1, .mode = M_CRASH}};
    (void)call_job_run(&j);
    CHECK_EQ(j.rc, GR_ENOACTOR);
    CHECK(j.reply == NULL);
    CHECK(j.ns < WAIT_MS * 1000000ull);
    /* Exits holding it. */
    struct rep r;
    j = (struct call_job){.target = spawn(&callee_b),
                          .q = {.val = 1, .mode = M_HOLD_TELL}};
    CHECK(pthread_create(&j.th, NULL, call_job_run, &j) == 0);
    int got = take(R_HELD, &r);
    (void)gr_stop(E.sys, j.target);
    pthread_join(j.th, NULL);
    CHECK(got);
    CHECK_EQ(j.rc, GR_ENOACTOR);
    CHECK(j.reply == NULL);
    CHECK(j.ns < WAIT_MS * 1000000ull);
    /* Queued behind a stop, then behind a kill. */
    for (int v = 0; v < 2; v++) {
        int32_t ret = GR_CONTINUE;
        j = (struct call_job){.target = spawn(&callee_b),
                              .q = {.val = 1, .mode = M_REPLY}};
        CHECK_EQ(cmd(j.target, C_BLOCK, &ret, sizeof ret), GR_OK);
        CHECK(take(R_BLOCKED, &r));
        if (v == 0)
            CHECK_EQ(gr_stop(E.sys, j.target), GR_OK);
        else
            CHECK_EQ(
                gr_system_exit(E.sys, j.target, &(gr_reason){.code = GR_EKILL}),
                GR_OK);
        CHECK(pthread_create(&j.th, NULL, call_job_run, &j) == 0);
        got = wait_depth(j.target, 2); /* The request behind the signal. */
        sem_post(&gate);
        pthread_join(j.th, NULL);
        CHECK(got);
        CHECK_EQ(j.rc, GR_ENOACTOR);
        CHECK(j.reply == NULL);
        CHECK(j.ns < WAIT_MS * 1000000ull);
    }
    CHECK(quiet_for(50));
    close_env();
}

/* gr_call from inside callbacks (handle, a continuation, init on the
 * spawning thread, terminate) is GR_EWRONGTHREAD, and sends nothing. */
static void test_call_in_callbacks(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), target = spawn(&callee_b);
    gr_ref asker = spawn(&asker_b);
    struct rep r;
    CHECK_EQ(cmd(callee, C_CALL, &target, sizeof target), GR_OK);
    CHECK(take(R_RC, &r));
    CHECK_EQ(r.rc[0], GR_EWRONGTHREAD);
    CHECK_EQ(r.rc[1], 1);
    CHECK_EQ(cmd(asker, C_CALL, &target, sizeof target), GR_OK);
    CHECK(take(R_RC, &r));
    CHECK_EQ(r.rc[0], GR_EWRONGTHREAD);
    CHECK_EQ(r.rc[1], 1);
    /* In a continuation (its gr_call goes to the answering callee). */
    CHECK_EQ(ask(asker, ac_then(target, 1, M_REPLY, 1000, 1, K_CALL), NULL),
             GR_OK);
    CHECK(take(R_ANSWER, &r));
    CHECK_EQ(r.via_cont, 1);
    CHECK_EQ(r.rc[0], GR_EWRONGTHREAD);
    CHECK_EQ(r.rc[1], 1);
    /* In init, run here on the spawning thread, and in terminate. */
    gr_ref ic = GR_REF_NONE;
    CHECK_EQ(
        gr_system_spawn(E.sys, &init_caller_b, &target, sizeof target, &ic),
        GR_OK);
    CHECK(take(R_RC, &r));
    CHECK_EQ(r.rc[0], GR_EWRONGTHREAD);
    CHECK_EQ(r.rc[1], 1);
    CHECK_EQ(gr_stop(E.sys, ic), GR_OK);
    CHECK(take(R_RC, &r));
    CHECK_EQ(r.rc[0], GR_EWRONGTHREAD);
    CHECK_EQ(r.rc[1], 1);
    CHECK(quiet_for(QUIET_MS)); /* The target got no request. */
    close_env();
}

TEST_MAIN(TEST_CASE(test_reply), TEST_CASE(test_many_out_of_order),
          TEST_CASE(test_second_reply), TEST_CASE(test_timeouts),
          TEST_CASE(test_late_reply_while_busy), TEST_CASE(test_many_timeouts),
          TEST_CASE(test_reply_races_timeout), TEST_CASE(test_callee_gone),
          TEST_CASE(test_callee_crashes), TEST_CASE(test_callee_exits_holding),
          TEST_CASE(test_request_queued_at_exit),
          TEST_CASE(test_queued_request_full_reason),
          TEST_CASE(test_continuations),
          TEST_CASE(test_continuation_ends_asker), TEST_CASE(test_asker_exits),
          TEST_CASE(test_bad_arguments), TEST_CASE(test_call_threads),
          TEST_CASE(test_call_timeout), TEST_CASE(test_call_never_early),
          TEST_CASE(test_call_callee_fails), TEST_CASE(test_call_in_callbacks))
