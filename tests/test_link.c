/*
 * Failure primitive tests, one case per rule of the OTP semantics: exit
 * reasons and their formatting, crashing by return code and by gr_fail
 * (from handle, init and terminate), gr_stop_with, links (crash and normal
 * exits, trapping, unlink, both ways, dead targets, duplicates,
 * spawn_link), exit signals sent with gr_exit (kill, normal, shutdown,
 * from outside), the order of messages and signals per pair, propagation
 * along chains, inboxes as link partners, and a stress of many linked
 * pairs crashing at once. Bounded waits, no timing assertions. Public API
 * only.
 */
#include <grove/grove.h>

#include "helpers.h"

/* A crash code no runtime path produces. */
#define CODE_CRASH (-1000)
/* How deep below handle (or init, terminate) gr_fail is called. */
#define FAIL_DEPTH 3
/* Longer than GR_REASON_TEXT_MAX once formatted, so it is truncated. */
#define LONG_TEXT                                                              \
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* Counts code that ran after a gr_fail; must stay zero. */
static atomic_int after_fail;

/* ---- the node actor ------------------------------------------------------ */

enum {
    C_ACT = 1, /* struct act: what the node does. */
    C_SEQ,     /* uint32_t sequence number: counted. */
    C_PING,    /* Replies R_PONG. */
    /* Reports to the test's inbox, each a struct rep. */
    R_RC = 100, /* rc: what a C_ACT's call returned. */
    R_PONG,
    R_EXIT,  /* A GR_MSG_EXIT as the handler saw it. */
    R_DOWN,  /* A GR_MSG_DOWN as the handler saw it. */
    R_TERM,  /* terminate ran with reason. */
    R_AFTER, /* Code after a gr_fail ran: never expected. */
};

/* What a C_ACT calls. */
enum {
    OP_NONE,
    OP_LINK,       /* gr_link(ref) */
    OP_UNLINK,     /* gr_unlink(ref) */
    OP_MONITOR,    /* gr_monitor(ref) */
    OP_EXIT,       /* gr_exit(ref, why) */
    OP_SPAWN,      /* gr_spawn(a); from: the child */
    OP_SPAWN_LINK, /* gr_spawn_link(a); from: the child */
    OP_STOP_WITH,  /* gr_stop_with(why) */
    OP_FAIL,       /* gr_fail, FAIL_DEPTH calls down */
    OP_RELAY,      /* Tells ref C_ACTs: relay_op on this node (reply on),
                      then, unless relay_ret is 0, one returning it. */
};

/* Spawn argument of a node; lent to init. */
struct node_arg {
    gr_ref inbox;      /* Where reports go. */
    int32_t trap;      /* Traps exits from init on. */
    int32_t init_fail; /* 1: init returns GR_EINVAL; 2: init calls gr_fail. */
    int32_t term_fail; /* terminate reports, then calls gr_fail. */
    int32_t tag;       /* Copied into every report (the stress case). */
    gr_ref link;       /* init links it, unless GR_REF_NONE. */
};

/* C_ACT: first k C_SEQs to ref, then op (then R_RC if reply), then the
 * handler returns ret. */
struct act {
    int32_t op;
    gr_ref ref;
    gr_reason why;
    uint32_t k;
    int32_t reply;
    int32_t ret;
    struct node_arg a;
    int32_t relay_op, relay_ret;
};

struct node {
    struct node_arg a;
    struct seq_count seq; /* C_SEQs handled so far. */
};

/* Every report; each type fills what it needs. */
struct rep {
    gr_ref self; /* The reporting node. */
    int32_t tag;
    int32_t rc;
    gr_ref from; /* The message's sender (EXIT, DOWN) or a spawned child. */
    gr_ref who;  /* gr_exit_msg.from or gr_down.target. */
    gr_reason reason;
    int32_t count, out_of_order; /* C_SEQs handled before the report. */
    int32_t linked;              /* gr_exit_msg.linked. */
    int32_t pad;
};

static const gr_behaviour node_b;

static void rep_send(gr_ctx *ctx, struct node *n, uint32_t type, struct rep *r)
{
    r->self = gr_self(ctx);
    r->tag = n->a.tag;
    r->count = n->seq.count;
    r->out_of_order = n->seq.out_of_order;
    gr_tell(ctx, n->a.inbox, type, r, sizeof *r);
}

/* Calls gr_fail `depth` calls down if `really`; returns otherwise. */
static void fail_deep(gr_ctx *ctx, int depth, int really)
{
    if (depth > 0)
        fail_deep(ctx, depth - 1, really);
    else if (really)
        gr_fail(ctx, "failed at depth %d: %s", FAIL_DEPTH, LONG_TEXT);
}

static int node_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    struct node *n = state;
    int rc = read_arg(&n->a, sizeof n->a, arg, len);
    if (rc != GR_OK)
        return rc;
    if (n->a.trap)
        gr_trap_exit(ctx, 1);
    if (!gr_ref_is_none(n->a.link) && gr_link(ctx, n->a.link) != GR_OK)
        return GR_EINIT;
    if (n->a.init_fail == 1)
        return GR_EINVAL;
    fail_deep(ctx, FAIL_DEPTH, n->a.init_fail == 2);
    if (n->a.init_fail == 2)
        atomic_fetch_add(&after_fail, 1);
    return GR_OK;
}

static int node_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct node *n = state;
    struct rep r = {.from = m->from};
    struct act c;
    gr_exit_msg x = {0};
    gr_down d = {0};
    if (m->type == GR_MSG_EXIT || m->type == GR_MSG_DOWN) {
        int exit = m->type == GR_MSG_EXIT;
        r.rc = exit ? gr_exit_read(m, &x) : gr_down_read(m, &d);
        r.who = exit ? x.from : d.target;
        r.reason = exit ? x.reason : d.reason;
        r.linked = (int32_t)x.linked;
        rep_send(ctx, n, exit ? R_EXIT : R_DOWN, &r);
        return GR_CONTINUE;
    }
    if (m->type == C_SEQ)
        seq_count_add(&n->seq, m);
    else if (m->type == C_PING)
        rep_send(ctx, n, R_PONG, &r);
    if (m->type == C_SEQ || m->type == C_PING)
        return GR_CONTINUE;
    if (m->type != C_ACT || !read_payload(m, &c, sizeof c))
        return GR_EUNHANDLED; /* Shows as a wrong exit in the reports. */
    for (uint32_t i = 0; i < c.k; i++)
        gr_tell(ctx, c.ref, C_SEQ, &i, sizeof i);
    struct act u = {c.relay_op, gr_self(ctx), c.why, .reply = 1};
    struct act u2 = {.ret = c.relay_ret};
    c.a.inbox = n->a.inbox;
    if (c.op == OP_LINK)
        r.rc = gr_link(ctx, c.ref);
    else if (c.op == OP_UNLINK)
        r.rc = gr_unlink(ctx, c.ref);
    else if (c.op == OP_MONITOR)
        r.rc = gr_monitor(ctx, c.ref, NULL);
    else if (c.op == OP_EXIT)
        r.rc = gr_exit(ctx, c.ref, &c.why);
    else if (c.op == OP_SPAWN || c.op == OP_SPAWN_LINK)
        r.rc = (c.op == OP_SPAWN ? gr_spawn : gr_spawn_link)(
            ctx, &node_b, &c.a, sizeof c.a, &r.from);
    else if (c.op == OP_STOP_WITH)
        r.rc = gr_stop_with(ctx, &c.why);
    else if (c.op == OP_RELAY &&
             (r.rc = gr_tell(ctx, c.ref, C_ACT, &u, sizeof u)) == GR_OK &&
             c.relay_ret != 0)
        r.rc = gr_tell(ctx, c.ref, C_ACT, &u2, sizeof u2);
    fail_deep(ctx, FAIL_DEPTH, c.op == OP_FAIL);
    if (c.op == OP_FAIL) {
        atomic_fetch_add(&after_fail, 1);
        rep_send(ctx, n, R_AFTER, &r);
    }
    if (c.reply)
        rep_send(ctx, n, R_RC, &r);
    return c.ret;
}

static void node_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    struct node *n = state;
    struct rep r = {.reason = *why};
    rep_send(ctx, n, R_TERM, &r);
    fail_deep(ctx, 2, n->a.term_fail);
    if (n->a.term_fail) {
        atomic_fetch_add(&after_fail, 1);
        rep_send(ctx, n, R_AFTER, &r);
    }
}

static const gr_behaviour node_b = {
    .name = "node",
    .state_size = sizeof(struct node),
    .init = node_init,
    .handle = node_handle,
    .terminate = node_terminate,
};

/* ---- helpers ------------------------------------------------------------- */

static int spawn_with(struct env *e, struct node_arg a, gr_ref *out)
{
    a.inbox = gr_inbox_ref(e->inbox);
    return gr_system_spawn(e->sys, &node_b, &a, sizeof a, out);
}

/* Spawns a node that traps exits if trap; GR_REF_NONE on failure. */
static gr_ref spawn(struct env *e, int trap)
{
    gr_ref r = GR_REF_NONE; /* Left so by a failed spawn. */
    spawn_with(e, (struct node_arg){.trap = trap}, &r);
    return r;
}

static int act(struct env *e, gr_ref to, struct act c)
{
    return gr_system_tell(e->sys, gr_inbox_ref(e->inbox), to, C_ACT, &c,
                          sizeof c);
}

static int expect(struct env *e, uint32_t type, struct rep *r)
{
    return recv_exact(e->inbox, type, r, sizeof *r);
}

/* Has node `to` act on c and waits for its R_RC (into *out if not NULL);
 * returns the op's code, or GR_ETIMEDOUT when no reply came from it. */
static int call(struct env *e, gr_ref to, struct act c, struct rep *out)
{
    struct rep r;
    c.reply = 1;
    if (act(e, to, c) != GR_OK || expect(e, R_RC, &r) != GR_OK ||
        !gr_ref_eq(r.self, to))
        return GR_ETIMEDOUT;
    if (out != NULL)
        *out = r;
    return r.rc;
}

static int link_to(struct env *e, gr_ref who, gr_ref target)
{
    return call(e, who, (struct act){.op = OP_LINK, .ref = target}, NULL);
}

static int monitor(struct env *e, gr_ref watcher, gr_ref target)
{
    return call(e, watcher, (struct act){.op = OP_MONITOR, .ref = target},
                NULL);
}

/* Has node k send target an exit signal with why; no reply awaited. */
static int send_exit(struct env *e, gr_ref k, gr_ref target, gr_reason why)
{
    return act(
        e, k,
        (struct act){.op = OP_EXIT, .ref = target, .why = why, .reply = 1});
}

/* Makes node p's handler return code. */
static int end_node(struct env *e, gr_ref p, int32_t code)
{
    return act(e, p, (struct act){.ret = code});
}

/* Has node p spawn a node from a (linked if asked); returns the spawn's
 * code and stores the child in *child. */
static int spawn_from(struct env *e, gr_ref p, struct node_arg a, int linked,
                      gr_ref *child)
{
    struct rep r = {0};
    int op = linked ? OP_SPAWN_LINK : OP_SPAWN;
    int rc = call(e, p, (struct act){.op = op, .a = a}, &r);
    *child = r.from;
    return rc;
}

/* Pings p; returns 1 if the very next report is its pong, so anything p
 * reported before handling the ping would have shown. */
static int alive(struct env *e, gr_ref p)
{
    struct rep r;
    return gr_system_tell(e->sys, GR_REF_NONE, p, C_PING, NULL, 0) == GR_OK &&
           expect(e, R_PONG, &r) == GR_OK && gr_ref_eq(r.self, p);
}

/* Returns 1 if nothing reaches the inbox within ms; names what did. */
static int quiet_for(struct env *e, int ms)
{
    gr_msg *m = NULL;
    if (gr_inbox_recv(e->inbox, &m, ms) == GR_ETIMEDOUT)
        return 1;
    fprintf(stderr, "  unexpected message type %u\n", (unsigned)m->type);
    gr_msg_free(m);
    return 0;
}

/* Ends a case: checks that nothing more comes, then closes whatever the
 * check said. */
static int close_quiet(struct env *e)
{
    int quiet = quiet_for(e, 20);
    env_close(e);
    return quiet;
}

/* Waits until exactly `live` actors (the inbox included) are left, so
 * that every exit reported so far is counted; 1 if so. */
static int settle(struct env *e, uint64_t live)
{
    for (double end = test_now() + WAIT_MS / 1000.0; test_now() < end;) {
        gr_stats st = stats_of(e->sys);
        if (st.spawned - st.exited == live)
            return 1;
        sleep_ms(1);
    }
    fprintf(stderr, "  more than %llu actors left\n", (unsigned long long)live);
    return 0;
}

/* One report a case expects: its type and sender, the reason code (R_RC:
 * the rc), and for R_EXIT and R_DOWN the actor it is about. */
struct want {
    uint32_t type;
    gr_ref self;
    int code;
    gr_ref about;
};

#define GOT_MAX 12

/* Receives n reports, in any order across senders, that match want[]
 * one to one; stores them in out[] (if not NULL) in want's order. */
static int got_all(struct env *e, int n, const struct want *w, struct rep *out)
{
    struct rep r[GOT_MAX];
    uint32_t type[GOT_MAX];
    int used[GOT_MAX] = {0};
    for (int i = 0; i < n && i < GOT_MAX; i++) {
        gr_msg *m = NULL;
        if (gr_inbox_recv(e->inbox, &m, WAIT_MS) != GR_OK) {
            fprintf(stderr, "  %d of %d reports came\n", i, n);
            return 0;
        }
        type[i] = m->type;
        int ok = read_payload(m, &r[i], sizeof r[i]);
        gr_msg_free(m);
        if (!ok)
            return 0;
    }
    for (int j = 0; j < n && j < GOT_MAX; j++) {
        int i = 0;
        while (i < n && (used[i] || type[i] != w[j].type ||
                         !gr_ref_eq(r[i].self, w[j].self)))
            i++;
        if (i == n) {
            fprintf(stderr, "  no report %u from %llu\n", (unsigned)w[j].type,
                    (unsigned long long)w[j].self.serial);
            return 0;
        }
        used[i] = 1;
        int about = w[j].type == R_EXIT || w[j].type == R_DOWN;
        int code = w[j].type == R_RC ? r[i].rc : r[i].reason.code;
        if (code != w[j].code ||
            (about && (r[i].rc != GR_OK || !gr_ref_eq(r[i].from, w[j].about) ||
                       !gr_ref_eq(r[i].who, w[j].about)))) {
            fprintf(stderr, "  report %u from %llu: code %d, want %d\n",
                    (unsigned)w[j].type, (unsigned long long)w[j].self.serial,
                    code, w[j].code);
            return 0;
        }
        if (out != NULL)
            out[j] = r[i];
    }
    return n <= GOT_MAX;
}

/* The wants: a report of terminate, of an EXIT or a DOWN about `about`,
 * of a C_ACT's rc. GOT(e, out, wants...) calls got_all on them. */
// clang-format off
#define TERM(self, code) {R_TERM, self, code, GR_REF_NONE}
#define EXIT(self, code, about) {R_EXIT, self, code, about}
#define DOWN(self, code, about) {R_DOWN, self, code, about}
#define RC(self, code) {R_RC, self, code, GR_REF_NONE}
// clang-format on
#define WANTS(...) ((const struct want[]){__VA_ARGS__})
#define GOT(e, out, ...)                                                       \
    got_all(e, (int)(sizeof WANTS(__VA_ARGS__) / sizeof(struct want)),         \
            WANTS(__VA_ARGS__), out)

/* Returns 1 if a and b are the same reason; says how they differ. */
static int same_reason(const gr_reason *a, const gr_reason *b)
{
    if (a->code == b->code && a->flags == b->flags &&
        a->msg_type == b->msg_type && a->detail == b->detail &&
        strcmp(a->text, b->text) == 0)
        return 1;
    fprintf(stderr, "  reason %d/%u/%u/%lld/\"%s\" != %d/%u/%u/%lld/\"%s\"\n",
            a->code, a->flags, a->msg_type, (long long)a->detail, a->text,
            b->code, b->flags, b->msg_type, (long long)b->detail, b->text);
    return 0;
}

/* The reason a node's crash with code (a C_ACT returning it) gives. */
static gr_reason crash_reason(int code)
{
    return (gr_reason){
        .code = code, .flags = GR_REASON_IN_HANDLER, .msg_type = C_ACT};
}

static gr_reason shutdown_reason(int64_t detail)
{
    return (gr_reason){.code = GR_ESHUTDOWN, .detail = detail};
}

/* ---- exit reasons -------------------------------------------------------- */

/* normal, shutdown (with and without detail), killed, noproc, a crash
 * code with the handled message's type, text; bounded by the buffer and
 * by GR_REASON_TEXT_MAX even when the text is unterminated. */
static void test_reason_format(void)
{
    static const struct {
        gr_reason r;
        const char *want;
    } cases[] = {
        {{.code = GR_OK}, "normal"},
        {{.code = GR_ESHUTDOWN}, "shutdown"},
        {{.code = GR_ESHUTDOWN, .detail = 7}, "shutdown (detail 7)"},
        {{.code = GR_EKILLED}, "killed"},
        {{.code = GR_ENOACTOR}, "noproc"},
        {{.code = GR_EUNHANDLED}, "GR_EUNHANDLED (unhandled message)"},
        {{.code = GR_EUNHANDLED, .flags = GR_REASON_IN_HANDLER, .msg_type = 7},
         "GR_EUNHANDLED (unhandled message) while handling type 0x7"},
        {{.code = GR_EUNHANDLED,
          .flags = GR_REASON_IN_HANDLER,
          .msg_type = 0x2a,
          .text = "bad input"},
         "GR_EUNHANDLED (unhandled message) while handling type 0x2a: bad "
         "input"},
        {{.code = GR_EFAILED, .text = "disk on fire"},
         "GR_EFAILED (actor failed): disk on fire"},
    };
    char buf[200], want[200];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(gr_reason_format(&cases[i].r, buf, sizeof buf) == buf);
        if (strcmp(buf, cases[i].want) != 0)
            fprintf(stderr, "  \"%s\" != \"%s\"\n", buf, cases[i].want);
        CHECK(strcmp(buf, cases[i].want) == 0);
    }
    /* Unterminated text: at most GR_REASON_TEXT_MAX bytes of it. */
    gr_reason r = {.code = GR_EFAILED};
    memset(r.text, 'x', sizeof r.text);
    gr_reason_format(&r, buf, sizeof buf);
    snprintf(want, sizeof want, "GR_EFAILED (actor failed): %.*s",
             GR_REASON_TEXT_MAX, r.text);
    CHECK(strcmp(buf, want) == 0);
    /* A small buffer truncates and terminates; size 0 writes nothing. */
    gr_reason_format(&r, buf, 12);
    CHECK(strcmp(buf, "GR_EFAILED ") == 0);
    r = gr_reason_of(GR_OK);
    gr_reason_format(&r, buf, 5);
    CHECK(strcmp(buf, "norm") == 0);
    buf[0] = '#';
    CHECK(gr_reason_format(&r, buf, 0) == buf);
    CHECK_EQ(buf[0], '#');
}

/* A handler returning a negative code crashes with it: terminate and
 * DOWN see the code, GR_REASON_IN_HANDLER and the handled type. */
static void test_handler_crash_code(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    const int codes[] = {CODE_CRASH, GR_EUNHANDLED};
    for (int k = 0; k < 2; k++) {
        gr_ref t = spawn(&e, 0), w = spawn(&e, 0);
        CHECK_EQ(monitor(&e, w, t), GR_OK);
        CHECK_EQ(end_node(&e, t, codes[k]), GR_OK);
        struct rep r[2];
        CHECK(GOT(&e, r, TERM(t, codes[k]), DOWN(w, codes[k], t)));
        gr_reason want = crash_reason(codes[k]);
        CHECK(same_reason(&r[0].reason, &want));
        CHECK(same_reason(&r[1].reason, &want));
    }
    CHECK(close_quiet(&e));
}

/* ---- gr_fail ------------------------------------------------------------- */

/* gr_fail FAIL_DEPTH calls below handle: the handler does not return, the
 * actor exits with GR_EFAILED and the truncated text, its terminate runs,
 * messages behind it are not handled, and the one worker goes on running
 * other actors, again and again. */
static void test_fail_from_handler(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 1));
    atomic_store(&after_fail, 0);
    char want[128];
    snprintf(want, sizeof want, "failed at depth %d: %s", FAIL_DEPTH,
             LONG_TEXT);
    want[GR_REASON_TEXT_MAX] = '\0';
    gr_ref other = spawn(&e, 0);
    for (int round = 0; round < 10; round++) {
        gr_ref t = spawn(&e, 0), w = spawn(&e, 0);
        CHECK_EQ(monitor(&e, w, t), GR_OK);
        CHECK_EQ(act(&e, t, (struct act){.op = OP_FAIL}), GR_OK);
        /* Never handled; t may be gone already. */
        int rc = gr_system_tell(e.sys, GR_REF_NONE, t, C_PING, NULL, 0);
        CHECK(rc == GR_OK || rc == GR_ENOACTOR);
        struct rep r[2];
        CHECK(GOT(&e, r, TERM(t, GR_EFAILED), DOWN(w, GR_EFAILED, t)));
        CHECK(same_reason(&r[0].reason, &r[1].reason));
        CHECK(strcmp(r[0].reason.text, want) == 0);
        CHECK_EQ(r[0].reason.flags, GR_REASON_IN_HANDLER);
        CHECK_EQ(r[0].reason.msg_type, C_ACT);
        for (int i = 0; i < 20; i++)
            CHECK(alive(&e, other));
    }
    CHECK_EQ(atomic_load(&after_fail), 0);
    CHECK(close_quiet(&e));
}

/* gr_fail in init: the spawn returns GR_EFAILED, from the test thread and
 * from a handler (whose actor lives on); no actor is left, and terminate
 * does not run. */
static void test_fail_in_init(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    atomic_store(&after_fail, 0);
    gr_stats s0 = stats_of(e.sys);
    gr_ref t;
    CHECK_EQ(spawn_with(&e, (struct node_arg){.init_fail = 2}, &t), GR_EFAILED);
    CHECK_EQ(spawn_with(&e, (struct node_arg){.init_fail = 1}, &t), GR_EINVAL);
    gr_stats s1 = stats_of(e.sys);
    CHECK_EQ(s1.spawned, s0.spawned + 2);
    CHECK_EQ(s1.exited, s0.exited + 2);

    gr_ref p = spawn(&e, 0);
    CHECK_EQ(spawn_from(&e, p, (struct node_arg){.init_fail = 2}, 0, &t),
             GR_EFAILED);
    CHECK(alive(&e, p));
    gr_stats s2 = stats_of(e.sys);
    CHECK_EQ(s2.spawned, s1.spawned + 2);
    CHECK_EQ(s2.exited, s1.exited + 1);
    CHECK_EQ(atomic_load(&after_fail), 0);
    CHECK(close_quiet(&e));
}

/* gr_fail in terminate only ends terminate: the exit completes with the
 * reason it had (normal, or the handler's own gr_fail), and the DOWN is
 * sent; also when shutdown runs terminate. */
static void test_fail_in_terminate(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    atomic_store(&after_fail, 0);
    for (int k = 0; k < 2; k++) {
        gr_ref t, w = spawn(&e, 0);
        CHECK_EQ(spawn_with(&e, (struct node_arg){.term_fail = 1}, &t), GR_OK);
        CHECK_EQ(monitor(&e, w, t), GR_OK);
        uint64_t exited = stats_of(e.sys).exited;
        struct act c = {.op = k ? OP_FAIL : OP_NONE, .ret = GR_STOP};
        CHECK_EQ(act(&e, t, c), GR_OK);
        int want = k ? GR_EFAILED : GR_OK;
        struct rep r[2];
        CHECK(GOT(&e, r, TERM(t, want), DOWN(w, want, t)));
        CHECK_EQ(r[1].reason.msg_type, k ? C_ACT : 0);
        CHECK(wait_exited(e.sys, exited + 1) >= exited + 1);
    }
    gr_ref left;
    CHECK_EQ(spawn_with(&e, (struct node_arg){.term_fail = 1}, &left), GR_OK);
    CHECK(close_quiet(&e)); /* Runs left's failing terminate. */
    CHECK_EQ(atomic_load(&after_fail), 0);
}

/* ---- gr_stop_with -------------------------------------------------------- */

/* gr_stop_with's reason reaches terminate, DOWN and a trapping link;
 * plain GR_STOP gives normal, also right after a gr_stop_with in an
 * earlier call that returned GR_CONTINUE: on one worker, a relays both
 * calls to t2 before t2 runs, so t2 handles them in one turn. */
static void test_stop_with(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 1));
    gr_ref t = spawn(&e, 0), w = spawn(&e, 0), y = spawn(&e, 1);
    CHECK_EQ(monitor(&e, w, t), GR_OK);
    CHECK_EQ(link_to(&e, y, t), GR_OK);
    gr_reason why = shutdown_reason(7);
    snprintf(why.text, sizeof why.text, "bye");
    struct act c = {.op = OP_STOP_WITH, .why = why, .ret = GR_STOP};
    CHECK_EQ(act(&e, t, c), GR_OK);
    struct rep r[3];
    CHECK(GOT(&e, r, TERM(t, GR_ESHUTDOWN), DOWN(w, GR_ESHUTDOWN, t),
              EXIT(y, GR_ESHUTDOWN, t)));
    for (int i = 0; i < 3; i++)
        CHECK(same_reason(&r[i].reason, &why));

    gr_ref a = spawn(&e, 0), t2 = spawn(&e, 0), w2 = spawn(&e, 0);
    CHECK_EQ(monitor(&e, w2, t2), GR_OK);
    c = (struct act){.op = OP_RELAY,
                     .ref = t2,
                     .why = why,
                     .relay_op = OP_STOP_WITH,
                     .relay_ret = GR_STOP};
    CHECK_EQ(act(&e, a, c), GR_OK);
    CHECK(GOT(&e, r, TERM(t2, GR_OK), DOWN(w2, GR_OK, t2), RC(t2, GR_STOP)));
    gr_reason normal = gr_reason_of(GR_OK);
    CHECK(same_reason(&r[0].reason, &normal));
    CHECK(same_reason(&r[1].reason, &normal));
    CHECK(close_quiet(&e));
}

/* ---- links --------------------------------------------------------------- */

/* A linked actor that does not trap dies with its partner's reason. */
static void test_link_crash_kills_partner(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref a = spawn(&e, 0), b = spawn(&e, 0);
    CHECK_EQ(link_to(&e, b, a), GR_OK);
    CHECK_EQ(act(&e, a, (struct act){.op = OP_FAIL}), GR_OK);
    struct rep r[2];
    CHECK(GOT(&e, r, TERM(a, GR_EFAILED), TERM(b, GR_EFAILED)));
    CHECK(same_reason(&r[1].reason, &r[0].reason));
    CHECK(r[1].reason.text[0] != '\0');
    CHECK(close_quiet(&e));
}

/* A trapping linked actor gets an EXIT instead, and keeps running. */
static void test_link_trap_exit(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref a = spawn(&e, 0), b = spawn(&e, 1);
    CHECK_EQ(link_to(&e, b, a), GR_OK);
    CHECK_EQ(end_node(&e, a, CODE_CRASH), GR_OK);
    struct rep r[2];
    CHECK(GOT(&e, r, TERM(a, CODE_CRASH), EXIT(b, CODE_CRASH, a)));
    gr_reason want = crash_reason(CODE_CRASH);
    CHECK(same_reason(&r[1].reason, &want));
    CHECK_EQ(r[1].linked, 1); /* A link carried a's exit. */
    CHECK(alive(&e, b));
    CHECK(close_quiet(&e));
}

/* A partner's normal exit is ignored by a non-trapping linked actor and
 * arrives as EXIT normal at a trapping one; shutdown is not normal. */
static void test_link_normal_exit(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref a = spawn(&e, 0), b = spawn(&e, 0), c = spawn(&e, 1);
    CHECK_EQ(link_to(&e, b, a), GR_OK);
    CHECK_EQ(link_to(&e, c, a), GR_OK);
    CHECK_EQ(end_node(&e, a, GR_STOP), GR_OK);
    CHECK(GOT(&e, NULL, TERM(a, GR_OK), EXIT(c, GR_OK, a)));
    CHECK(alive(&e, b));
    CHECK(alive(&e, c));
    CHECK_EQ(link_to(&e, b, c), GR_OK);
    CHECK_EQ(gr_stop(e.sys, c), GR_OK);
    CHECK(GOT(&e, NULL, TERM(c, GR_ESHUTDOWN), TERM(b, GR_ESHUTDOWN)));
    CHECK(close_quiet(&e));
}

/* gr_unlink prevents the signal, from either side, and also one already
 * queued: on one worker, a tells b to unlink it and crashes before b runs,
 * so b's mailbox holds the unlink request and then a's signal. */
static void test_unlink(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 1));
    for (int side = 0; side < 2; side++) {
        gr_ref a = spawn(&e, 0), b = spawn(&e, 0);
        CHECK_EQ(link_to(&e, b, a), GR_OK);
        gr_ref unlinker = side ? a : b, other = side ? b : a;
        struct act c = {.op = OP_UNLINK, .ref = other};
        CHECK_EQ(call(&e, unlinker, c, NULL), GR_OK);
        CHECK_EQ(end_node(&e, other, CODE_CRASH), GR_OK);
        CHECK(GOT(&e, NULL, TERM(other, CODE_CRASH)));
        CHECK(alive(&e, unlinker));
    }
    for (int trap = 0; trap < 2; trap++) {
        gr_ref a = spawn(&e, 0), b = spawn(&e, trap);
        CHECK_EQ(link_to(&e, b, a), GR_OK);
        struct act c = {
            .op = OP_RELAY, .ref = b, .ret = CODE_CRASH, .relay_op = OP_UNLINK};
        CHECK_EQ(act(&e, a, c), GR_OK);
        CHECK(GOT(&e, NULL, TERM(a, CODE_CRASH), RC(b, GR_OK)));
        CHECK(alive(&e, b));
    }
    CHECK(close_quiet(&e));
}

/* A link works both ways: whichever side made it, either side's crash
 * reaches the other. */
static void test_link_both_ways(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    for (int k = 0; k < 2; k++) {
        gr_ref a = spawn(&e, 0), b = spawn(&e, 0);
        CHECK_EQ(link_to(&e, a, b), GR_OK);
        gr_ref dying = k ? b : a, partner = k ? a : b;
        CHECK_EQ(end_node(&e, dying, CODE_CRASH - k), GR_OK);
        CHECK(GOT(&e, NULL, TERM(dying, CODE_CRASH - k),
                  TERM(partner, CODE_CRASH - k)));
    }
    CHECK(close_quiet(&e));
}

/* Linking to an actor already gone (exited, another incarnation's, never
 * spawned) succeeds and brings a noproc signal: a non-trapping caller
 * dies with GR_ENOACTOR, a trapping one gets an EXIT and lives on.
 * GR_REF_NONE is refused with GR_EINVAL. */
static void test_link_dead_ref(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref dead = spawn(&e, 0);
    CHECK_EQ(end_node(&e, dead, GR_STOP), GR_OK);
    CHECK(GOT(&e, NULL, TERM(dead, GR_OK)));
    CHECK(settle(&e, 1));
    gr_ref other_inc = dead, never = dead;
    other_inc.incarnation ^= 0x55;
    never.serial += 4096 * 7 + 5;
    const gr_ref gone[] = {dead, other_inc, never};
    for (int i = 0; i < 3; i++) {
        gr_ref b = spawn(&e, 0), c = spawn(&e, 1);
        CHECK_EQ(link_to(&e, b, gone[i]), GR_OK);
        CHECK(GOT(&e, NULL, TERM(b, GR_ENOACTOR)));
        CHECK_EQ(link_to(&e, c, gone[i]), GR_OK);
        CHECK(GOT(&e, NULL, EXIT(c, GR_ENOACTOR, gone[i])));
        CHECK(alive(&e, c));
    }
    /* GR_REF_NONE names no actor: refused, many times over, with nothing
     * stored and no signal. */
    gr_ref b = spawn(&e, 0), c = spawn(&e, 1);
    for (int i = 0; i < 1000; i++) {
        CHECK_EQ(link_to(&e, i % 2 ? b : c, GR_REF_NONE), GR_EINVAL);
        CHECK_EQ(call(&e, b, (struct act){.op = OP_UNLINK, .ref = GR_REF_NONE},
                      NULL),
                 GR_EINVAL);
    }
    CHECK(alive(&e, b));
    CHECK(alive(&e, c));
    CHECK(close_quiet(&e));
}

/* Linking twice, from both sides, or on top of a spawn link gives one
 * signal: a trapping partner gets exactly one EXIT. Linking to oneself
 * does nothing. */
static void test_link_twice(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    for (int k = 0; k < 3; k++) {
        gr_ref a, b = spawn(&e, 1);
        if (k == 2) {
            CHECK_EQ(spawn_from(&e, b, (struct node_arg){0}, 1, &a), GR_OK);
        } else {
            a = spawn(&e, 0);
            CHECK_EQ(link_to(&e, b, a), GR_OK);
        }
        CHECK_EQ(link_to(&e, k == 1 ? a : b, k == 1 ? b : a), GR_OK);
        CHECK_EQ(link_to(&e, b, b), GR_OK);
        CHECK_EQ(end_node(&e, a, CODE_CRASH), GR_OK);
        CHECK(GOT(&e, NULL, TERM(a, CODE_CRASH), EXIT(b, CODE_CRASH, a)));
        CHECK(alive(&e, b));
    }
    CHECK(close_quiet(&e));
}

/* gr_spawn_link links from birth: the child's crash reaches the parent
 * (killing it, or as an EXIT when it traps). A
 * spawn_link whose init fails (by code or gr_fail) returns the error and
 * sends no signal. */
static void test_spawn_link(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref p, c;
    for (int trap = 0; trap < 2; trap++) {
        p = spawn(&e, trap);
        CHECK_EQ(spawn_from(&e, p, (struct node_arg){0}, 1, &c), GR_OK);
        CHECK_EQ(end_node(&e, c, CODE_CRASH), GR_OK);
        if (trap)
            CHECK(GOT(&e, NULL, TERM(c, CODE_CRASH), EXIT(p, CODE_CRASH, c)));
        else
            CHECK(GOT(&e, NULL, TERM(c, CODE_CRASH), TERM(p, CODE_CRASH)));
    }
    CHECK(alive(&e, p));
    for (int trap = 0; trap < 2; trap++) {
        gr_ref q = spawn(&e, trap);
        CHECK(settle(&e, 3 + (uint64_t)trap)); /* inbox, p, q(s) */
        uint64_t exited = stats_of(e.sys).exited;
        CHECK_EQ(spawn_from(&e, q, (struct node_arg){.init_fail = 1}, 1, &c),
                 GR_EINVAL);
        CHECK_EQ(spawn_from(&e, q, (struct node_arg){.init_fail = 2}, 1, &c),
                 GR_EFAILED);
        CHECK_EQ(stats_of(e.sys).exited, exited + 2);
        CHECK(alive(&e, q)); /* A signal would have come before the pong. */
    }
    CHECK(close_quiet(&e));
}

/* ---- gr_exit ------------------------------------------------------------- */

/* A direct kill ends even a trapping actor with killed, terminate
 * included; its watchers see killed and its links get killed as an
 * ordinary, trappable reason. From outside it works the same. */
static void test_kill(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref b = spawn(&e, 1), w = spawn(&e, 0), c = spawn(&e, 1),
           d = spawn(&e, 0), k = spawn(&e, 0);
    CHECK_EQ(monitor(&e, w, b), GR_OK);
    CHECK_EQ(link_to(&e, c, b), GR_OK);
    CHECK_EQ(link_to(&e, d, b), GR_OK);
    gr_reason kill = gr_reason_of(GR_EKILL);
    CHECK_EQ(send_exit(&e, k, b, kill), GR_OK);
    CHECK(GOT(&e, NULL, RC(k, GR_OK), TERM(b, GR_EKILLED),
              DOWN(w, GR_EKILLED, b), EXIT(c, GR_EKILLED, b),
              TERM(d, GR_EKILLED)));
    CHECK(alive(&e, c));
    gr_ref t = spawn(&e, 1);
    CHECK_EQ(gr_system_exit(e.sys, t, &kill), GR_OK);
    CHECK(GOT(&e, NULL, TERM(t, GR_EKILLED)));
    CHECK(close_quiet(&e));
}

/* An exit signal with reason normal is ignored by a non-trapping actor,
 * from another actor or from outside, arrives as EXIT normal at a
 * trapping one, and makes an actor that sends it to itself exit normal
 * (or, trapping, get the EXIT). */
static void test_exit_normal(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref b = spawn(&e, 0), c = spawn(&e, 1), k = spawn(&e, 0),
           w = spawn(&e, 0);
    gr_reason normal = gr_reason_of(GR_OK);
    CHECK_EQ(send_exit(&e, k, b, normal), GR_OK);
    CHECK(GOT(&e, NULL, RC(k, GR_OK)));
    CHECK(alive(&e, b));
    CHECK_EQ(gr_system_exit(e.sys, b, &normal), GR_OK);
    CHECK(alive(&e, b));
    CHECK_EQ(send_exit(&e, k, c, normal), GR_OK);
    CHECK(GOT(&e, NULL, RC(k, GR_OK), EXIT(c, GR_OK, k)));
    CHECK_EQ(send_exit(&e, c, c, normal), GR_OK);
    CHECK(GOT(&e, NULL, RC(c, GR_OK), EXIT(c, GR_OK, c)));
    CHECK(alive(&e, c));
    CHECK_EQ(monitor(&e, w, b), GR_OK);
    CHECK_EQ(send_exit(&e, b, b, normal), GR_OK);
    CHECK(GOT(&e, NULL, RC(b, GR_OK), TERM(b, GR_OK), DOWN(w, GR_OK, b)));
    CHECK(close_quiet(&e));
}

/* shutdown arrives as EXIT at a trapping actor and ends another one, from
 * an actor or from outside (where from is GR_REF_NONE); a gone target
 * gives GR_ENOACTOR. */
static void test_exit_shutdown(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref c = spawn(&e, 1), d = spawn(&e, 0), k = spawn(&e, 0);
    gr_reason why = shutdown_reason(3);
    struct rep r[2];
    CHECK_EQ(send_exit(&e, k, c, why), GR_OK);
    CHECK(GOT(&e, r, EXIT(c, GR_ESHUTDOWN, k), RC(k, GR_OK)));
    CHECK(same_reason(&r[0].reason, &why));
    CHECK_EQ(r[0].linked, 0); /* Sent: k is alive. */
    CHECK_EQ(send_exit(&e, k, d, why), GR_OK);
    CHECK(GOT(&e, r, TERM(d, GR_ESHUTDOWN), RC(k, GR_OK)));
    CHECK(same_reason(&r[0].reason, &why));
    CHECK(settle(&e, 3)); /* inbox, c, k */
    CHECK_EQ(
        call(&e, k, (struct act){.op = OP_EXIT, .ref = d, .why = why}, NULL),
        GR_ENOACTOR);
    CHECK_EQ(gr_system_exit(e.sys, d, &why), GR_ENOACTOR);
    CHECK_EQ(gr_system_exit(e.sys, c, NULL), GR_EINVAL);

    why.detail = 4;
    CHECK_EQ(gr_system_exit(e.sys, c, &why), GR_OK);
    CHECK(GOT(&e, r, EXIT(c, GR_ESHUTDOWN, GR_REF_NONE)));
    CHECK(same_reason(&r[0].reason, &why));
    CHECK(alive(&e, c));
    CHECK(close_quiet(&e));
}

/* ---- order, chains, inboxes ---------------------------------------------- */

/* Every message a sent b before its exit signal is handled before the
 * signal: a link's EXIT (trapped, or killing b), a gr_exit's EXIT, and a
 * kill. The reports count the SEQs b handled before. */
static void test_order_messages_before_signal(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 4));
    const uint32_t k = (uint32_t)scaled(2000, 100);
    for (int round = 0; round < 3; round++)
        for (int mode = 0; mode < 4; mode++) {
            /* 0: link, b traps; 1: link, b dies; 2: gr_exit shutdown, b
             * traps; 3: gr_exit kill, b traps (in vain). */
            gr_ref a = spawn(&e, 0), b = spawn(&e, mode != 1);
            if (mode < 2)
                CHECK_EQ(link_to(&e, b, a), GR_OK);
            struct act c = {.op = mode < 2 ? OP_NONE : OP_EXIT,
                            .ref = b,
                            .k = k,
                            .ret = mode < 2 ? CODE_CRASH : GR_CONTINUE};
            c.why = gr_reason_of(mode == 2 ? GR_ESHUTDOWN : GR_EKILL);
            CHECK_EQ(act(&e, a, c), GR_OK);
            struct rep r[2];
            int ok = mode == 0 ? GOT(&e, r, EXIT(b, CODE_CRASH, a),
                                     TERM(a, CODE_CRASH))
                     : mode == 1
                         ? GOT(&e, r, TERM(b, CODE_CRASH), TERM(a, CODE_CRASH))
                     : mode == 2 ? GOT(&e, r, EXIT(b, GR_ESHUTDOWN, a))
                                 : GOT(&e, r, TERM(b, GR_EKILLED));
            CHECK(ok);
            CHECK_EQ(r[0].count, k);
            CHECK_EQ(r[0].out_of_order, 0);
        }
    CHECK(close_quiet(&e));
}

/* A crash propagates along a chain of links, every actor dying with the
 * first one's reason; a trapping actor in the chain stops it and keeps
 * its other links. */
static void test_chain(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 4));
    enum { N = 6 };
    gr_ref n[N];
    for (int i = 0; i < N; i++) {
        n[i] = spawn(&e, 0);
        if (i > 0)
            CHECK_EQ(link_to(&e, n[i], n[i - 1]), GR_OK);
    }
    CHECK_EQ(end_node(&e, n[N - 1], CODE_CRASH), GR_OK);
    struct rep r[N];
    CHECK(GOT(&e, r, TERM(n[0], CODE_CRASH), TERM(n[1], CODE_CRASH),
              TERM(n[2], CODE_CRASH), TERM(n[3], CODE_CRASH),
              TERM(n[4], CODE_CRASH), TERM(n[5], CODE_CRASH)));
    gr_reason want = crash_reason(CODE_CRASH);
    for (int i = 0; i < N; i++)
        CHECK(same_reason(&r[i].reason, &want));

    gr_ref a = spawn(&e, 0), b = spawn(&e, 1), c = spawn(&e, 0);
    CHECK_EQ(link_to(&e, b, a), GR_OK);
    CHECK_EQ(link_to(&e, c, b), GR_OK);
    CHECK_EQ(end_node(&e, c, CODE_CRASH), GR_OK);
    CHECK(GOT(&e, NULL, TERM(c, CODE_CRASH), EXIT(b, CODE_CRASH, c)));
    CHECK(alive(&e, a));
    CHECK(alive(&e, b));
    CHECK_EQ(end_node(&e, b, CODE_CRASH - 1), GR_OK);
    CHECK(GOT(&e, NULL, TERM(b, CODE_CRASH - 1), TERM(a, CODE_CRASH - 1)));
    CHECK(close_quiet(&e));
}

/* Receives the next inbox message, which must be an EXIT from `from`
 * with reason code `code`. */
static int inbox_exit(gr_inbox *in, gr_ref from, int code)
{
    gr_msg *m = NULL;
    if (gr_inbox_recv(in, &m, WAIT_MS) != GR_OK)
        return 0;
    gr_exit_msg x;
    int ok = m->type == GR_MSG_EXIT && gr_exit_read(m, &x) == GR_OK &&
             gr_ref_eq(m->from, from) && gr_ref_eq(x.from, from) &&
             x.reason.code == code;
    if (!ok)
        fprintf(stderr, "  inbox: type %u from %llu, want EXIT %d from %llu\n",
                (unsigned)m->type, (unsigned long long)m->from.serial, code,
                (unsigned long long)from.serial);
    gr_msg_free(m);
    return ok;
}

/* An inbox linked by an actor traps: it gets an EXIT for every exit
 * signal (normal, crash, killed, direct, even a kill) and never dies. A
 * closed inbox's links get normal. */
static void test_inbox_link(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref in = gr_inbox_ref(e.inbox);
    const int ends[] = {GR_STOP, CODE_CRASH};
    for (int i = 0; i < 2; i++) {
        gr_ref a = spawn(&e, 0);
        CHECK_EQ(link_to(&e, a, in), GR_OK);
        CHECK_EQ(end_node(&e, a, ends[i]), GR_OK);
        CHECK(GOT(&e, NULL, TERM(a, i ? CODE_CRASH : GR_OK)));
        CHECK(inbox_exit(e.inbox, a, i ? CODE_CRASH : GR_OK));
    }
    gr_ref a = spawn(&e, 1), k = spawn(&e, 0);
    CHECK_EQ(link_to(&e, a, in), GR_OK);
    gr_reason kill = gr_reason_of(GR_EKILL);
    CHECK_EQ(gr_system_exit(e.sys, a, &kill), GR_OK);
    CHECK(GOT(&e, NULL, TERM(a, GR_EKILLED)));
    CHECK(inbox_exit(e.inbox, a, GR_EKILLED));
    CHECK_EQ(gr_system_exit(e.sys, in, &kill), GR_OK);
    CHECK(inbox_exit(e.inbox, GR_REF_NONE, GR_EKILL));
    CHECK_EQ(send_exit(&e, k, in, shutdown_reason(2)), GR_OK);
    CHECK(inbox_exit(e.inbox, k, GR_ESHUTDOWN)); /* Sent before the R_RC. */
    CHECK(GOT(&e, NULL, RC(k, GR_OK)));
    CHECK(alive(&e, k));

    gr_inbox *in2;
    CHECK_EQ(gr_inbox_open(e.sys, &in2), GR_OK);
    gr_ref ref2 = gr_inbox_ref(in2), t = spawn(&e, 1), t2 = spawn(&e, 0);
    int ok = link_to(&e, t, ref2) == GR_OK && link_to(&e, t2, ref2) == GR_OK;
    gr_msg *m = NULL;
    /* Takes the link requests; nothing else is there. */
    ok = ok && gr_inbox_recv(in2, &m, 0) == GR_ETIMEDOUT;
    gr_inbox_close(in2);
    CHECK(ok);
    CHECK(GOT(&e, NULL, EXIT(t, GR_OK, ref2)));
    CHECK(alive(&e, t2));
    CHECK(close_quiet(&e));
}

/* ---- stress -------------------------------------------------------------- */

/* What one stress actor reported. */
struct tally {
    int terms, exits, code;
};

/* Receives reports until *seen reaches want, counting TERMs and EXITs
 * (which must carry the partner's code) per tag; 0 on a wrong report or
 * when the watch gives up. */
static int s_recv(struct env *e, struct tally *t, int n2, int *seen, int want)
{
    struct watch w;
    watch_start(&w, e->sys);
    while (*seen < want) {
        gr_msg *m = NULL;
        struct rep r;
        if (gr_inbox_recv(e->inbox, &m, 10) != GR_OK) {
            if (watch_over(&w))
                return 0;
            continue;
        }
        int ok =
            read_payload(m, &r, sizeof r) && r.tag >= 0 && r.tag < n2 &&
            (m->type == R_TERM ||
             (m->type == R_EXIT && r.reason.code == CODE_CRASH - (r.tag - 1)));
        if (ok && m->type == R_TERM) {
            t[r.tag].terms++;
            t[r.tag].code = r.reason.code;
        } else if (ok) {
            t[r.tag].exits++;
        } else {
            fprintf(stderr, "  stress: bad report type %u\n",
                    (unsigned)m->type);
        }
        gr_msg_free(m);
        if (!ok)
            return 0;
        (*seen)++;
    }
    return 1;
}

/* n pairs x (tag 2i) and y (tag 2i + 1), y linked to x by its init, of
 * kind i % 3: 0, y traps; 1, y dies with x; 2, both crash at once. Every
 * x, and every y of kind 2, crashes with a code of its tag, in random
 * order. Each actor exits exactly once (a kind 2 one of its own crash or
 * of its partner's, never crosswise), each trapping y gets exactly one
 * EXIT and lives until stopped, and in the end every actor has exited. */
static void stress_round(unsigned workers, unsigned seed)
{
    struct env e;
    CHECK(env_open_quiet(&e, workers));
    int n = (int)scaled(500, 24), n2 = 2 * n, k = 0, seen = 0, rc;
    struct tally *t = calloc((size_t)n2, sizeof *t);
    gr_ref *ref = calloc((size_t)n2, sizeof *ref);
    int *order = calloc((size_t)n2, sizeof *order);
    int ok = t != NULL && ref != NULL && order != NULL;
    for (int i = 0; ok && i < n2; i++) {
        struct node_arg a = {.tag = i, .trap = i % 6 == 1};
        if (i & 1)
            a.link = ref[i - 1];
        ok = spawn_with(&e, a, &ref[i]) == GR_OK;
        if (i % 2 == 0 || i % 6 == 5)
            order[k++] = i;
    }
    for (int j = k - 1; j > 0; j--) {
        int r = (int)(rand_r(&seed) % (unsigned)(j + 1)), x = order[j];
        order[j] = order[r];
        order[r] = x;
    }
    /* A kind 2 actor may be gone already, killed by its partner. */
    for (int j = 0; ok && j < k; j++) {
        rc = end_node(&e, ref[order[j]], CODE_CRASH - order[j]);
        ok = rc == GR_OK || (rc == GR_ENOACTOR && order[j] % 6 >= 4);
    }
    ok = ok && s_recv(&e, t, n2, &seen, n2);
    for (int i = 1; ok && i < n2; i += 6)
        ok = gr_stop(e.sys, ref[i]) == GR_OK;
    ok = ok && s_recv(&e, t, n2, &seen, n2 + (n + 2) / 3) && settle(&e, 1) &&
         quiet_for(&e, SETTLE_MS);
    for (int i = 0; ok && i < n; i++) {
        struct tally *x = &t[2 * i], *y = &t[2 * i + 1];
        int cx = CODE_CRASH - 2 * i, cy = cx - 1, kind = i % 3;
        int good = x->terms == 1 && x->exits == 0 && y->terms == 1 &&
                   y->exits == (kind == 0);
        if (kind < 2)
            good = good && x->code == cx &&
                   y->code == (kind == 0 ? GR_ESHUTDOWN : cx);
        else
            good = good && (x->code == cx ? y->code == cx || y->code == cy
                                          : x->code == cy && y->code == cy);
        if (!good)
            fprintf(stderr,
                    "  pair %d (kind %d): x %d exits (%d), y %d (%d), "
                    "%d EXITs\n",
                    i, kind, x->terms, x->code, y->terms, y->code, y->exits);
        ok = good;
    }
    gr_stats st = stats_of(e.sys);
    if (!ok || stat_dead_total(&st, 0) > (uint64_t)(n + 2) / 3) {
        fprintf(stderr,
                "  stress: %u workers, seed %u, %d reports, %llu dead"
                " letters\n",
                workers, seed, seen,
                (unsigned long long)stat_dead_total(&st, 0));
        test_failed_ = 1;
    }
    env_close(&e);
    free(t);
    free(ref);
    free(order);
}

/* Many linked pairs crashing at once, on two and on four workers. */
static void test_stress_linked_pairs(void)
{
    const unsigned workers[] = {2, 4};
    const int rounds = (int)scaled(4, 1);
    for (int w = 0; w < 2; w++)
        for (int r = 0; r < rounds && !test_failed_; r++)
            stress_round(workers[w], 0x6c696e6bu + 31u * (unsigned)(w * 8 + r));
}

TEST_MAIN(TEST_CASE(test_reason_format), TEST_CASE(test_handler_crash_code),
          TEST_CASE(test_fail_from_handler), TEST_CASE(test_fail_in_init),
          TEST_CASE(test_fail_in_terminate), TEST_CASE(test_stop_with),
          TEST_CASE(test_link_crash_kills_partner),
          TEST_CASE(test_link_trap_exit), TEST_CASE(test_link_normal_exit),
          TEST_CASE(test_unlink), TEST_CASE(test_link_both_ways),
          TEST_CASE(test_link_dead_ref), TEST_CASE(test_link_twice),
          TEST_CASE(test_spawn_link), TEST_CASE(test_kill),
          TEST_CASE(test_exit_normal), TEST_CASE(test_exit_shutdown),
          TEST_CASE(test_order_messages_before_signal), TEST_CASE(test_chain),
          TEST_CASE(test_inbox_link), TEST_CASE(test_stress_linked_pairs))
