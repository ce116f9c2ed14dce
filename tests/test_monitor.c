/*
 * Monitor tests: a watcher gets exactly one GR_MSG_DOWN per monitor,
 * carrying the target's exit reason (normal, stopped, crashed, or
 * GR_ENOACTOR when the target was gone before the request reached it),
 * behind every message the target sent it; gr_demonitor flushes a queued
 * DOWN; monitors vanish with their watcher; inboxes can be watched; the
 * runtime's own messages are neither deliveries nor dead letters. Public
 * API only.
 */
#include <grove/grove.h>

#include "helpers.h"

/* ---- the node actor: watcher and target alike ---------------------------- */

/* Most monitors one command makes, and ids one report carries. */
#define MAX_IDS 8

/* MSG_END code that makes a node gr_stop() itself instead of returning. */
#define CODE_STOP_SELF 0x5e1f
/* A crash code no runtime path produces, so a DOWN carrying it can only
 * have come from the handler's return value. */
#define CODE_CRASH (-1000)

enum {
    /* Commands, from the test's inbox or from another node. */
    MSG_MONITOR = 1,   /* struct mon_cmd: monitors target `times` times. */
    MSG_DEMONITOR,     /* uint64_t id: replies MSG_DEMONITORED. */
    MSG_PING,          /* Replies MSG_PONG to the sender. */
    MSG_END,           /* int32_t code: the handler returns it. */
    MSG_SEQ,           /* uint32_t sequence number: counted. */
    MSG_BLAST,         /* struct blast: k MSG_SEQs to `to`, then ends. */
    MSG_WATCH_BLAST,   /* struct blast: monitors target, sends it BLAST. */
    MSG_RACE,          /* struct race: ends target and monitors it. */
    MSG_WATCH_TRIGGER, /* struct trigger: monitors target, sends TRIGGER. */
    MSG_TRIGGER,       /* struct trigger: replies reply_type, then ends. */
    MSG_DEMON_NOW,     /* Demonitors the last monitor (see the handler). */
    MSG_ARM,           /* struct arm: terminate monitors these. */
    MSG_PROBE,         /* Any payload: replies gr_down_read's code. */
    MSG_HELLO,         /* Sent to a target after monitoring it, if asked. */
    MSG_SPAWN,         /* struct node_arg: spawns a node (init on a worker). */
    /* Reports to the test's inbox. */
    MSG_MONITORED = 100,
    MSG_DEMONITORED,
    MSG_PONG,
    MSG_DOWN_SEEN,
    MSG_FLUSHED,
    MSG_TERM_REPORT,
    MSG_PROBED,
    MSG_SPAWNED, /* rc[0]: gr_spawn's code; from: the child. */
    MSG_GOT,     /* A node got a message it did not expect. */
};

/* MSG_MONITOR's payload. */
struct mon_cmd {
    gr_ref target;
    int32_t times; /* 1..MAX_IDS */
    int32_t hello; /* Nonzero: tell the target MSG_HELLO afterwards. */
};

/* MSG_BLAST's and MSG_WATCH_BLAST's payload. */
struct blast {
    gr_ref target;   /* Who blasts (MSG_WATCH_BLAST only). */
    gr_ref to;       /* Who gets the sequence numbers. */
    uint32_t k;      /* MSG_SEQs sent by the handler, from 0. */
    uint32_t k_term; /* MSG_SEQs terminate sends after those. */
    int32_t code;    /* How the blaster ends: an MSG_END code. */
};

/* How MSG_RACE orders the end of its target and the monitor request. */
enum { RACE_STOP_FIRST, RACE_CRASH_FIRST, RACE_MONITOR_FIRST };

/* MSG_RACE's payload. */
struct race {
    gr_ref target;
    int32_t order; /* RACE_* */
};

/* MSG_WATCH_TRIGGER's and MSG_TRIGGER's payload. */
struct trigger {
    gr_ref target;
    uint64_t want_exited; /* Exit count at which the target is gone. */
    uint32_t reply_type;  /* What the target tells the watcher, */
    int32_t reply_code;   /* with this int32_t payload, */
    int32_t own_code;     /* before it ends with this MSG_END code. */
};

/* MSG_ARM's payload: what terminate tries to monitor. */
struct arm {
    gr_ref target; /* Alive when terminate runs. */
    gr_ref dead;   /* Gone when terminate runs. */
};

/* Spawn argument of a node; lent to init. */
struct node_arg {
    gr_ref inbox;          /* Where reports go. */
    gr_ref init_target[2]; /* What init monitors, */
    int32_t n_init;        /* this many of them (0..2). */
    int32_t init_fail;     /* Nonzero: init fails after monitoring. */
};

struct node {
    gr_ref inbox;
    struct seq_count seq;         /* MSG_SEQs seen so far. */
    uint64_t last_id;             /* The last monitor this node made. */
    uint64_t want_exited;         /* From MSG_WATCH_TRIGGER. */
    gr_ref term_to;               /* Where terminate sends its MSG_SEQs, */
    uint32_t term_next, term_end; /* numbered from, up to. */
    int armed;
    struct arm arm;
};

/* Everything a node reports; each report type fills what it needs. */
struct report {
    gr_ref self; /* The reporting node. */
    int32_t n;
    int32_t rc[MAX_IDS];
    uint64_t id[MAX_IDS];
    int32_t queued; /* MSG_FLUSHED: the target had exited already. */
    /* MSG_DOWN_SEEN: the DOWN as the handler saw it. */
    int32_t read_rc;
    gr_down down;
    gr_ref from;
    uint64_t corr;
    uint32_t type;
    /* MSG_SEQs seen before the DOWN. */
    int32_t count, out_of_order;
};

static void report(gr_ctx *ctx, gr_ref to, uint32_t type, struct report *r)
{
    r->self = gr_self(ctx);
    gr_tell(ctx, to, type, r, sizeof *r);
}

/* Ends the handler as an MSG_END code says. */
static int end_with(gr_ctx *ctx, int32_t code)
{
    if (code != CODE_STOP_SELF)
        return code;
    gr_stop(gr_ctx_system(ctx), gr_self(ctx));
    return GR_CONTINUE;
}

/* The node behaviour, defined below its callbacks; MSG_SPAWN needs it. */
static const gr_behaviour node_b;

static int node_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    struct node *n = state;
    struct node_arg a;
    int rc = read_arg(&a, sizeof a, arg, len);
    if (rc != GR_OK)
        return rc;
    n->inbox = a.inbox;
    if (a.n_init > 0) {
        struct report r = {.n = a.n_init};
        for (int i = 0; i < a.n_init && i < 2; i++)
            r.rc[i] = gr_monitor(ctx, a.init_target[i], &r.id[i]);
        n->last_id = r.id[0];
        report(ctx, n->inbox, MSG_MONITORED, &r);
    }
    return a.init_fail ? GR_EINVAL : GR_OK;
}

/* Forwards a DOWN to the inbox with what was seen before it. */
static void seen_down(gr_ctx *ctx, struct node *n, const gr_msg *m)
{
    struct report r = {.from = m->from,
                       .corr = m->corr,
                       .type = m->type,
                       .count = n->seq.count,
                       .out_of_order = n->seq.out_of_order};
    r.read_rc = gr_down_read(m, &r.down);
    report(ctx, n->inbox, MSG_DOWN_SEEN, &r);
}

static int node_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct node *n = state;
    gr_system *sys = gr_ctx_system(ctx);
    struct report r = {.type = m->type};
    if (m->type == GR_MSG_DOWN) {
        seen_down(ctx, n, m);
        return GR_CONTINUE;
    }
    switch (m->type) {
    case MSG_MONITOR: {
        struct mon_cmd c;
        if (!read_payload(m, &c, sizeof c) || c.times < 1 || c.times > MAX_IDS)
            break;
        r.n = c.times;
        for (int i = 0; i < c.times; i++)
            r.rc[i] = gr_monitor(ctx, c.target, &r.id[i]);
        n->last_id = r.id[c.times - 1];
        if (c.hello)
            gr_tell(ctx, c.target, MSG_HELLO, NULL, 0);
        report(ctx, n->inbox, MSG_MONITORED, &r);
        return GR_CONTINUE;
    }
    case MSG_DEMONITOR: {
        if (!read_payload(m, &r.id[0], sizeof r.id[0]))
            break;
        r.rc[0] = gr_demonitor(ctx, r.id[0]);
        report(ctx, n->inbox, MSG_DEMONITORED, &r);
        return GR_CONTINUE;
    }
    case MSG_PING:
        report(ctx, m->from, MSG_PONG, &r);
        return GR_CONTINUE;
    case MSG_END: {
        int32_t code;
        if (!read_payload(m, &code, sizeof code))
            break;
        return end_with(ctx, code);
    }
    case MSG_SEQ:
        seq_count_add(&n->seq, m);
        return GR_CONTINUE;
    case MSG_BLAST: {
        struct blast b;
        if (!read_payload(m, &b, sizeof b))
            break;
        for (uint32_t i = 0; i < b.k; i++)
            gr_tell(ctx, b.to, MSG_SEQ, &i, sizeof i);
        n->term_to = b.to;
        n->term_next = b.k;
        n->term_end = b.k + b.k_term;
        return end_with(ctx, b.code);
    }
    case MSG_WATCH_BLAST: {
        struct blast b;
        if (!read_payload(m, &b, sizeof b))
            break;
        r.n = 1;
        r.rc[0] = gr_monitor(ctx, b.target, &r.id[0]);
        b.to = gr_self(ctx);
        gr_tell(ctx, b.target, MSG_BLAST, &b, sizeof b);
        report(ctx, n->inbox, MSG_MONITORED, &r);
        return GR_CONTINUE;
    }
    case MSG_RACE: {
        struct race c;
        int32_t code = CODE_CRASH;
        if (!read_payload(m, &c, sizeof c))
            break;
        r.n = 1;
        if (c.order == RACE_STOP_FIRST)
            gr_stop(sys, c.target);
        else if (c.order == RACE_CRASH_FIRST)
            gr_tell(ctx, c.target, MSG_END, &code, sizeof code);
        r.rc[0] = gr_monitor(ctx, c.target, &r.id[0]);
        if (c.order == RACE_MONITOR_FIRST)
            gr_stop(sys, c.target);
        report(ctx, n->inbox, MSG_MONITORED, &r);
        return GR_CONTINUE;
    }
    case MSG_WATCH_TRIGGER: {
        struct trigger t;
        if (!read_payload(m, &t, sizeof t))
            break;
        r.n = 1;
        r.rc[0] = gr_monitor(ctx, t.target, &r.id[0]);
        n->last_id = r.id[0];
        n->want_exited = t.want_exited;
        gr_tell(ctx, t.target, MSG_TRIGGER, &t, sizeof t);
        report(ctx, n->inbox, MSG_MONITORED, &r);
        return GR_CONTINUE;
    }
    case MSG_TRIGGER: {
        struct trigger t;
        if (!read_payload(m, &t, sizeof t))
            break;
        gr_tell(ctx, m->from, t.reply_type, &t.reply_code, sizeof t.reply_code);
        return end_with(ctx, t.own_code);
    }
    case MSG_DEMON_NOW: {
        /* The exit count moves after the target has sent its DOWNs, so
         * once it is reached the DOWN is in this node's mailbox. */
        gr_stats st;
        gr_system_stats(sys, &st);
        r.queued = st.exited >= n->want_exited;
        r.id[0] = n->last_id;
        r.rc[0] = gr_demonitor(ctx, n->last_id);
        r.rc[1] = gr_demonitor(ctx, n->last_id);
        report(ctx, n->inbox, MSG_FLUSHED, &r);
        return GR_CONTINUE;
    }
    case MSG_ARM:
        if (!read_payload(m, &n->arm, sizeof n->arm))
            break;
        n->armed = 1;
        return GR_CONTINUE;
    case MSG_PROBE:
        r.rc[0] = gr_down_read(m, &r.down);
        report(ctx, m->from, MSG_PROBED, &r);
        return GR_CONTINUE;
    case MSG_HELLO:
        return GR_CONTINUE;
    case MSG_SPAWN: {
        struct node_arg a;
        if (!read_payload(m, &a, sizeof a))
            break;
        r.rc[0] = gr_spawn(ctx, &node_b, &a, sizeof a, &r.from);
        report(ctx, n->inbox, MSG_SPAWNED, &r);
        return GR_CONTINUE;
    }
    default:
        break;
    }
    report(ctx, n->inbox, MSG_GOT, &r);
    return GR_CONTINUE;
}

static void node_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    int reason = why->code;
    struct node *n = state;
    (void)reason;
    for (uint32_t i = n->term_next; i < n->term_end; i++)
        gr_tell(ctx, n->term_to, MSG_SEQ, &i, sizeof i);
    if (!n->armed)
        return;
    /* Monitors made while exiting: accepted, then dropped with the node. */
    struct report r = {.n = 6};
    r.rc[0] = gr_monitor(ctx, n->arm.target, &r.id[0]);
    r.rc[1] = gr_monitor(ctx, n->arm.dead, &r.id[1]);
    r.rc[2] = gr_monitor(ctx, gr_self(ctx), &r.id[2]);
    r.rc[3] = gr_demonitor(ctx, r.id[0]);
    r.id[4] = n->last_id;
    r.rc[4] = gr_demonitor(ctx, n->last_id);
    r.rc[5] = gr_monitor(ctx, n->arm.target, &r.id[5]);
    report(ctx, n->inbox, MSG_TERM_REPORT, &r);
}

static const gr_behaviour node_b = {
    .name = "node",
    .state_size = sizeof(struct node),
    .init = node_init,
    .handle = node_handle,
    .terminate = node_terminate,
};

/* ---- helpers ------------------------------------------------------------- */

static int spawn_node(struct env *e, gr_ref *out)
{
    struct node_arg a = {.inbox = gr_inbox_ref(e->inbox)};
    return gr_system_spawn(e->sys, &node_b, &a, sizeof a, out);
}

/* Sends a command to node `to`, naming the inbox as sender. */
static int cmd(struct env *e, gr_ref to, uint32_t type, const void *p,
               size_t len)
{
    return gr_send(e->sys, gr_inbox_ref(e->inbox), to, type, p, len);
}

static int expect(struct env *e, uint32_t type, struct report *r)
{
    return recv_exact(e->inbox, type, r, sizeof *r);
}

/* Has node w monitor target `times` times; stores the ids. Returns GR_OK,
 * or the first failure (of the command or of a gr_monitor). */
static int monitor_n(struct env *e, gr_ref w, gr_ref target, int times,
                     uint64_t *ids)
{
    struct mon_cmd c = {.target = target, .times = times};
    struct report r;
    int rc = cmd(e, w, MSG_MONITOR, &c, sizeof c);
    if (rc == GR_OK)
        rc = expect(e, MSG_MONITORED, &r);
    for (int i = 0; rc == GR_OK && i < times; i++) {
        rc = r.rc[i];
        ids[i] = r.id[i];
    }
    return rc;
}

/* Has node w demonitor id; returns gr_demonitor's code. */
static int demonitor(struct env *e, gr_ref w, uint64_t id)
{
    struct report r;
    int rc = cmd(e, w, MSG_DEMONITOR, &id, sizeof id);
    if (rc == GR_OK)
        rc = expect(e, MSG_DEMONITORED, &r);
    return rc == GR_OK ? r.rc[0] : rc;
}

/* Sends node p an MSG_END with code. */
static int end_node(struct env *e, gr_ref p, int32_t code)
{
    return cmd(e, p, MSG_END, &code, sizeof code);
}

/* Waits until `more` exits past `base` are counted; returns 1 if they are. */
static int exits_reach(struct env *e, uint64_t base, uint64_t more)
{
    return wait_exited(e->sys, base + more) >= base + more;
}

/* Returns 1 if r is a well-formed DOWN seen by watcher for monitor id of
 * target with reason; says what differs otherwise. */
static int down_is(const struct report *r, gr_ref watcher, gr_ref target,
                   uint64_t id, int reason)
{
    int ok = gr_ref_eq(r->self, watcher) && r->read_rc == GR_OK &&
             r->type == GR_MSG_DOWN && r->corr == id && r->down.monitor == id &&
             gr_ref_eq(r->from, target) && gr_ref_eq(r->down.target, target) &&
             r->down.reason.code == reason;
    if (!ok)
        fprintf(stderr,
                "  DOWN: watcher %llu (want %llu), read %d, corr %llu, "
                "monitor %llu (want %llu), from %llu, target %llu "
                "(want %llu), reason %d (want %d)\n",
                (unsigned long long)r->self.serial,
                (unsigned long long)watcher.serial, r->read_rc,
                (unsigned long long)r->corr,
                (unsigned long long)r->down.monitor, (unsigned long long)id,
                (unsigned long long)r->from.serial,
                (unsigned long long)r->down.target.serial,
                (unsigned long long)target.serial, r->down.reason.code, reason);
    return ok;
}

/* Receives the next report, which must be a DOWN as down_is() says. */
static int next_down(struct env *e, gr_ref watcher, gr_ref target, uint64_t id,
                     int reason)
{
    struct report r;
    return expect(e, MSG_DOWN_SEEN, &r) == GR_OK &&
           down_is(&r, watcher, target, id, reason);
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

/* Pings node p; returns 1 if the very next inbox message is its pong, so
 * that anything p forwarded before handling the ping would have shown. */
static int pong_next(struct env *e, gr_ref p)
{
    struct report r;
    return cmd(e, p, MSG_PING, NULL, 0) == GR_OK &&
           expect(e, MSG_PONG, &r) == GR_OK && gr_ref_eq(r.self, p);
}

static uint64_t dead_total(struct env *e)
{
    gr_stats st = stats_of(e->sys);
    return stat_dead_total(&st, 0);
}

/* Ends a case: checks that nothing more reaches the inbox for ms and that
 * no dead letter was counted, then closes the inbox and shuts the system
 * down whatever the checks said. Returns 1 when both checks held. */
static int close_quiet(struct env *e, int ms)
{
    int quiet = quiet_for(e, ms);
    uint64_t dead = dead_total(e);
    if (dead != 0)
        fprintf(stderr, "  %" PRIu64 " dead letters\n", dead);
    env_close(e);
    return quiet && dead == 0;
}

/* Reads the delivery count from st (arg unused); a counter for wait_stat. */
static uint64_t stat_delivered(const gr_stats *st, int arg)
{
    (void)arg;
    return st->delivered;
}

/* ---- exit reasons ---------------------------------------------------------
 */

/* One watcher, one target: the target ends with code (an MSG_END code, or
 * 0 for gr_stop from outside); the watcher gets exactly one DOWN with
 * reason, and afterwards the monitor is gone. */
static void one_down(unsigned workers, int32_t code, int reason)
{
    struct env e;
    CHECK(env_open_quiet(&e, workers));
    gr_ref w, t;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    uint64_t id;
    CHECK_EQ(monitor_n(&e, w, t, 1, &id), GR_OK);
    CHECK(id != 0);
    if (code == 0)
        CHECK_EQ(gr_stop(e.sys, t), GR_OK);
    else
        CHECK_EQ(end_node(&e, t, code), GR_OK);
    CHECK(next_down(&e, w, t, id, reason));
    CHECK(quiet_for(&e, 50));
    /* Handled, so no longer active. */
    CHECK_EQ(demonitor(&e, w, id), GR_ENOTFOUND);
    CHECK_EQ(dead_total(&e), 0);
    env_close(&e);
}

/* A handler returning GR_STOP gives reason GR_OK. */
static void test_reason_normal(void)
{
    one_down(2, GR_STOP, GR_OK);
}

/* gr_stop from outside, and gr_stop on itself, give GR_ESHUTDOWN. */
static void test_reason_stopped(void)
{
    one_down(2, 0, GR_ESHUTDOWN);
    if (test_failed_)
        return;
    one_down(2, CODE_STOP_SELF, GR_ESHUTDOWN);
}

/* A crash gives the code the handler returned; a positive non-GR_STOP
 * return, like the terminate reason, becomes GR_EFAILED. */
static void test_reason_crash(void)
{
    one_down(2, CODE_CRASH, CODE_CRASH);
    if (test_failed_)
        return;
    one_down(2, GR_EUNHANDLED, GR_EUNHANDLED);
    if (test_failed_)
        return;
    one_down(2, 7, GR_EFAILED);
}

/* Monitoring what is already gone (an exited actor, a ref that never
 * named one, another node's or incarnation's ref, GR_REF_NONE) succeeds
 * and gives one DOWN with GR_ENOACTOR, and the request is no dead
 * letter. */
static void test_reason_noproc_gone(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref w, t;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    uint64_t exited = stats_of(e.sys).exited;
    CHECK_EQ(gr_stop(e.sys, t), GR_OK);
    CHECK(exits_reach(&e, exited, 1));
    gr_ref never = t, other_node = t, other_inc = t;
    never.serial += 4096 * 5 + 3;
    other_node.node = 9;
    other_inc.incarnation ^= 0x77;
    const gr_ref gone[] = {t, never, other_node, other_inc, GR_REF_NONE};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
        uint64_t id;
        CHECK_EQ(monitor_n(&e, w, gone[i], 1, &id), GR_OK);
        /* Another node, not connected: noconnection, as in OTP. */
        CHECK(next_down(&e, w, gone[i], id,
                        i == 2 ? GR_ENOCONNECTION : GR_ENOACTOR));
    }
    CHECK(close_quiet(&e, 50));
}

/* A target that exits before the monitor request reaches it gives
 * GR_ENOACTOR: the watcher stops it, or tells it to crash, and then
 * monitors it, so the request queues behind the end. Monitoring first
 * and stopping after gives GR_ESHUTDOWN. */
static void test_reason_noproc_request_behind_exit(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 4));
    gr_ref w;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    const int orders[] = {RACE_STOP_FIRST, RACE_CRASH_FIRST,
                          RACE_MONITOR_FIRST};
    const int reasons[] = {GR_ENOACTOR, GR_ENOACTOR, GR_ESHUTDOWN};
    for (int round = 0; round < 20; round++) {
        for (int k = 0; k < 3; k++) {
            gr_ref t;
            CHECK_EQ(spawn_node(&e, &t), GR_OK);
            struct race c = {.target = t, .order = orders[k]};
            CHECK_EQ(cmd(&e, w, MSG_RACE, &c, sizeof c), GR_OK);
            struct report r;
            CHECK_EQ(expect(&e, MSG_MONITORED, &r), GR_OK);
            CHECK_EQ(r.rc[0], GR_OK);
            CHECK(next_down(&e, w, t, r.id[0], reasons[k]));
        }
    }
    CHECK(close_quiet(&e, 50));
}

/* ---- where monitors are made ----------------------------------------------
 */

/* init may monitor: a live target's DOWN comes when it exits, a gone one's
 * at once. An init that fails after monitoring leaves no monitor behind:
 * the target's later exit reaches no one and counts no dead letter. */
static void test_monitor_from_init(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref t, gone;
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    CHECK_EQ(spawn_node(&e, &gone), GR_OK);
    /* Exits are counted from here on: gone, t, t3, the failed init, t2. */
    uint64_t exited = stats_of(e.sys).exited;
    CHECK_EQ(gr_stop(e.sys, gone), GR_OK);
    CHECK(exits_reach(&e, exited, 1));

    struct node_arg a = {
        .inbox = gr_inbox_ref(e.inbox), .init_target = {t, gone}, .n_init = 2};
    gr_ref w;
    CHECK_EQ(gr_system_spawn(e.sys, &node_b, &a, sizeof a, &w), GR_OK);
    struct report r;
    CHECK_EQ(expect(&e, MSG_MONITORED, &r), GR_OK);
    CHECK(gr_ref_eq(r.self, w));
    CHECK_EQ(r.rc[0], GR_OK);
    CHECK_EQ(r.rc[1], GR_OK);
    CHECK(r.id[0] != 0 && r.id[1] != 0 && r.id[0] != r.id[1]);
    CHECK(next_down(&e, w, gone, r.id[1], GR_ENOACTOR));
    CHECK(quiet_for(&e, 20));
    CHECK_EQ(gr_stop(e.sys, t), GR_OK);
    CHECK(next_down(&e, w, t, r.id[0], GR_ESHUTDOWN));

    /* The same from an init that runs on a worker: a node spawns it. */
    gr_ref parent, t3;
    CHECK_EQ(spawn_node(&e, &parent), GR_OK);
    CHECK_EQ(spawn_node(&e, &t3), GR_OK);
    a.init_target[0] = t3;
    a.n_init = 1;
    CHECK_EQ(cmd(&e, parent, MSG_SPAWN, &a, sizeof a), GR_OK);
    struct report child;
    CHECK_EQ(expect(&e, MSG_MONITORED, &child), GR_OK);
    CHECK_EQ(child.rc[0], GR_OK);
    CHECK_EQ(expect(&e, MSG_SPAWNED, &r), GR_OK);
    CHECK_EQ(r.rc[0], GR_OK);
    CHECK(gr_ref_eq(r.from, child.self));
    CHECK_EQ(end_node(&e, t3, GR_STOP), GR_OK);
    CHECK(next_down(&e, child.self, t3, child.id[0], GR_OK));
    /* gone, t and t3 exited. */
    CHECK(exits_reach(&e, exited, 3));

    /* A failed init's monitor dies with it. */
    gr_ref t2;
    CHECK_EQ(spawn_node(&e, &t2), GR_OK);
    a.init_target[0] = t2;
    a.n_init = 1;
    a.init_fail = 1;
    CHECK_EQ(gr_system_spawn(e.sys, &node_b, &a, sizeof a, NULL), GR_EINVAL);
    CHECK_EQ(expect(&e, MSG_MONITORED, &r), GR_OK);
    CHECK_EQ(r.rc[0], GR_OK);
    CHECK(exits_reach(&e, exited, 4));
    CHECK_EQ(end_node(&e, t2, CODE_CRASH), GR_OK);
    CHECK(exits_reach(&e, exited, 5));
    CHECK(close_quiet(&e, 50));
}

/* terminate may monitor and demonitor: gr_monitor of a live or a gone
 * target succeeds, of itself is GR_EINVAL, gr_demonitor of its monitors
 * succeeds; all of them die with the node, so the target's later exit
 * reaches no one and counts no dead letter, while another watcher of the
 * same target still gets its one DOWN. */
static void test_monitor_from_terminate(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref w, t, gone, other;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    CHECK_EQ(spawn_node(&e, &gone), GR_OK);
    CHECK_EQ(spawn_node(&e, &other), GR_OK);
    uint64_t exited = stats_of(e.sys).exited;
    CHECK_EQ(gr_stop(e.sys, gone), GR_OK);
    CHECK(exits_reach(&e, exited, 1));
    uint64_t alive_id, other_id;
    CHECK_EQ(monitor_n(&e, w, t, 1, &alive_id), GR_OK);
    CHECK_EQ(monitor_n(&e, other, t, 1, &other_id), GR_OK);
    struct arm arm = {.target = t, .dead = gone};
    CHECK_EQ(cmd(&e, w, MSG_ARM, &arm, sizeof arm), GR_OK);
    CHECK_EQ(gr_stop(e.sys, w), GR_OK);

    struct report r;
    CHECK_EQ(expect(&e, MSG_TERM_REPORT, &r), GR_OK);
    CHECK_EQ(r.rc[0], GR_OK);     /* live target */
    CHECK_EQ(r.rc[1], GR_OK);     /* gone target */
    CHECK_EQ(r.rc[2], GR_EINVAL); /* itself */
    CHECK_EQ(r.rc[3], GR_OK);     /* demonitor of the first */
    CHECK_EQ(r.rc[4], GR_OK);     /* demonitor of one made while alive */
    CHECK_EQ(r.id[4], alive_id);
    CHECK_EQ(r.rc[5], GR_OK); /* left active at the exit */
    CHECK(r.id[0] != 0 && r.id[1] != 0 && r.id[5] != 0);
    CHECK(r.id[0] != r.id[1] && r.id[1] != r.id[5] && r.id[0] != r.id[5]);
    CHECK(exits_reach(&e, exited, 2));

    CHECK_EQ(end_node(&e, t, CODE_CRASH), GR_OK);
    CHECK(next_down(&e, other, t, other_id, CODE_CRASH));
    CHECK(exits_reach(&e, exited, 3));
    CHECK(close_quiet(&e, 50));
}

/* ---- several monitors -----------------------------------------------------
 */

/* Three monitors from one watcher and one each from two more on one target
 * give five DOWNs, one per id, with the crash code; demonitoring one of
 * three leaves the other two. */
static void test_stacked_monitors(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 4));
    gr_ref w[3], t;
    for (int i = 0; i < 3; i++)
        CHECK_EQ(spawn_node(&e, &w[i]), GR_OK);
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    uint64_t ids[5];
    CHECK_EQ(monitor_n(&e, w[0], t, 3, ids), GR_OK);
    CHECK_EQ(monitor_n(&e, w[1], t, 1, &ids[3]), GR_OK);
    CHECK_EQ(monitor_n(&e, w[2], t, 1, &ids[4]), GR_OK);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < i; j++)
            CHECK(ids[i] != ids[j]);
    CHECK_EQ(end_node(&e, t, CODE_CRASH), GR_OK);
    int seen[5] = {0};
    for (int k = 0; k < 5; k++) {
        struct report r;
        CHECK_EQ(expect(&e, MSG_DOWN_SEEN, &r), GR_OK);
        int i = 0;
        while (i < 5 && ids[i] != r.corr)
            i++;
        CHECK(i < 5);
        CHECK(down_is(&r, w[i < 3 ? 0 : i - 2], t, ids[i], CODE_CRASH));
        seen[i]++;
    }
    CHECK(quiet_for(&e, 50));
    for (int i = 0; i < 5; i++)
        CHECK_EQ(seen[i], 1);

    /* Demonitoring the middle one of three. */
    gr_ref t2;
    CHECK_EQ(spawn_node(&e, &t2), GR_OK);
    CHECK_EQ(monitor_n(&e, w[0], t2, 3, ids), GR_OK);
    CHECK_EQ(demonitor(&e, w[0], ids[1]), GR_OK);
    CHECK_EQ(gr_stop(e.sys, t2), GR_OK);
    struct report r1, r2;
    CHECK_EQ(expect(&e, MSG_DOWN_SEEN, &r1), GR_OK);
    CHECK_EQ(expect(&e, MSG_DOWN_SEEN, &r2), GR_OK);
    if (r1.corr != ids[0]) {
        struct report tmp = r1;
        r1 = r2;
        r2 = tmp;
    }
    CHECK(down_is(&r1, w[0], t2, ids[0], GR_ESHUTDOWN));
    CHECK(down_is(&r2, w[0], t2, ids[2], GR_ESHUTDOWN));
    CHECK(close_quiet(&e, 50));
}

/* ---- ordering -------------------------------------------------------------
 */

/* A target sends K numbered messages to its watcher (and terminate a few
 * more) and then exits normally, stopped or crashed: the watcher sees all
 * of them, in order, before the DOWN. */
static void test_down_after_messages(void)
{
    enum { K_TERM = 3 };
    const uint32_t k = (uint32_t)scaled(2000, 200);
    const int rounds = (int)scaled(24, 6);
    const int32_t codes[] = {GR_STOP, CODE_STOP_SELF, CODE_CRASH};
    const int reasons[] = {GR_OK, GR_ESHUTDOWN, CODE_CRASH};
    struct env e;
    CHECK(env_open_quiet(&e, 4));
    for (int round = 0; round < rounds; round++) {
        gr_ref w, t;
        CHECK_EQ(spawn_node(&e, &w), GR_OK);
        CHECK_EQ(spawn_node(&e, &t), GR_OK);
        struct blast b = {
            .target = t, .k = k, .k_term = K_TERM, .code = codes[round % 3]};
        CHECK_EQ(cmd(&e, w, MSG_WATCH_BLAST, &b, sizeof b), GR_OK);
        struct report r;
        CHECK_EQ(expect(&e, MSG_MONITORED, &r), GR_OK);
        CHECK_EQ(r.rc[0], GR_OK);
        uint64_t id = r.id[0];
        CHECK_EQ(expect(&e, MSG_DOWN_SEEN, &r), GR_OK);
        CHECK(down_is(&r, w, t, id, reasons[round % 3]));
        CHECK_EQ(r.count, k + K_TERM);
        CHECK_EQ(r.out_of_order, 0);
        CHECK_EQ(gr_stop(e.sys, w), GR_OK);
    }
    CHECK(close_quiet(&e, 20));
}

/* ---- demonitor ------------------------------------------------------------
 */

/* A monitor removed before its target exits gives no DOWN, ever; a second
 * gr_demonitor of it is GR_ENOTFOUND; the watcher keeps working, and a
 * new monitor of it fires as usual. */
static void test_demonitor_before_exit(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref w, t, t2;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    CHECK_EQ(spawn_node(&e, &t2), GR_OK);
    uint64_t id, id2;
    CHECK_EQ(monitor_n(&e, w, t, 1, &id), GR_OK);
    CHECK_EQ(demonitor(&e, w, id), GR_OK);
    CHECK_EQ(demonitor(&e, w, id), GR_ENOTFOUND);
    uint64_t exited = stats_of(e.sys).exited;
    CHECK_EQ(end_node(&e, t, CODE_CRASH), GR_OK);
    CHECK(exits_reach(&e, exited, 1));
    /* Any DOWN the target sent is in w's mailbox before the ping. */
    CHECK(pong_next(&e, w));
    CHECK(quiet_for(&e, 100));
    CHECK_EQ(monitor_n(&e, w, t2, 1, &id2), GR_OK);
    CHECK(id2 != id);
    CHECK_EQ(gr_stop(e.sys, t2), GR_OK);
    CHECK(next_down(&e, w, t2, id2, GR_ESHUTDOWN));
    CHECK(close_quiet(&e, 50));
}

/* Runs one flush round: w monitors a fresh target t and sends it a
 * trigger; t tells w MSG_DEMON_NOW and then exits, so the DOWN queues
 * right behind that message. w demonitors there (GR_OK, then GR_ENOTFOUND)
 * and its handler must never see the DOWN. Stores whether the DOWN was
 * already queued at the demonitor in *queued. */
static void flush_round(struct env *e, gr_ref w, int32_t own_code, int *queued)
{
    gr_ref t;
    CHECK_EQ(spawn_node(e, &t), GR_OK);
    uint64_t exited = stats_of(e->sys).exited;
    struct trigger tr = {.target = t,
                         .want_exited = exited + 1,
                         .reply_type = MSG_DEMON_NOW,
                         .own_code = own_code};
    CHECK_EQ(cmd(e, w, MSG_WATCH_TRIGGER, &tr, sizeof tr), GR_OK);
    struct report r;
    CHECK_EQ(expect(e, MSG_MONITORED, &r), GR_OK);
    CHECK_EQ(r.rc[0], GR_OK);
    uint64_t id = r.id[0];
    CHECK_EQ(expect(e, MSG_FLUSHED, &r), GR_OK);
    CHECK_EQ(r.id[0], id);
    CHECK_EQ(r.rc[0], GR_OK);
    CHECK_EQ(r.rc[1], GR_ENOTFOUND);
    *queued = r.queued;
    CHECK(exits_reach(e, exited, 1));
    CHECK(pong_next(e, w));
}

/* gr_demonitor with the DOWN already in the watcher's mailbox flushes it.
 * On one worker the target runs its whole exit before the watcher runs
 * again, so the DOWN is certainly queued; on four the two race. */
static void test_demonitor_flushes_queued_down(void)
{
    const int32_t codes[] = {GR_STOP, CODE_CRASH, CODE_STOP_SELF};
    struct env e;
    CHECK(env_open_quiet(&e, 1));
    gr_ref w;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    for (int i = 0; i < 3; i++) {
        int queued = 0;
        flush_round(&e, w, codes[i], &queued);
        if (test_failed_)
            break;
        /* gr_stop on itself queues the stop behind the trigger, so the
         * exit may come later; the others exit in the same turn. */
        if (codes[i] != CODE_STOP_SELF)
            CHECK(queued);
    }
    CHECK(close_quiet(&e, 50));

    CHECK(env_open_quiet(&e, 4));
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    const int rounds = (int)scaled(60, 10);
    for (int i = 0; i < rounds; i++) {
        int queued = 0;
        flush_round(&e, w, codes[i % 3], &queued);
        if (test_failed_)
            break;
    }
    CHECK(close_quiet(&e, 50));
}

/* gr_demonitor of an id that is not an active monitor of the caller is
 * GR_ENOTFOUND: a made-up id, 0, another watcher's (whose DOWN still
 * comes), one already handled. */
static void test_demonitor_unknown(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref w, other, t;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    CHECK_EQ(spawn_node(&e, &other), GR_OK);
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    CHECK_EQ(demonitor(&e, w, 987654321), GR_ENOTFOUND);
    CHECK_EQ(demonitor(&e, w, 0), GR_ENOTFOUND);
    uint64_t theirs, mine;
    CHECK_EQ(monitor_n(&e, other, t, 1, &theirs), GR_OK);
    CHECK_EQ(demonitor(&e, w, theirs), GR_ENOTFOUND);
    CHECK_EQ(monitor_n(&e, w, t, 1, &mine), GR_OK);
    CHECK_EQ(demonitor(&e, other, mine), GR_ENOTFOUND);
    CHECK_EQ(end_node(&e, t, GR_STOP), GR_OK);
    struct report r1, r2;
    CHECK_EQ(expect(&e, MSG_DOWN_SEEN, &r1), GR_OK);
    CHECK_EQ(expect(&e, MSG_DOWN_SEEN, &r2), GR_OK);
    if (r1.corr != theirs) {
        struct report tmp = r1;
        r1 = r2;
        r2 = tmp;
    }
    CHECK(down_is(&r1, other, t, theirs, GR_OK));
    CHECK(down_is(&r2, w, t, mine, GR_OK));
    CHECK_EQ(demonitor(&e, w, mine), GR_ENOTFOUND);
    CHECK_EQ(demonitor(&e, other, theirs), GR_ENOTFOUND);
    CHECK(quiet_for(&e, 50));
    env_close(&e);
}

/* gr_monitor of oneself is GR_EINVAL and nothing comes of it; a NULL ctx
 * is GR_EINVAL for both calls. */
static void test_monitor_self_and_null(void)
{
    CHECK_EQ(gr_monitor(NULL, GR_REF_NONE, NULL), GR_EINVAL);
    uint64_t id = 77;
    CHECK_EQ(gr_monitor(NULL, (gr_ref){1, 0, 1}, &id), GR_EINVAL);
    CHECK_EQ(gr_demonitor(NULL, 1), GR_EINVAL);
    CHECK_EQ(gr_demonitor(NULL, 0), GR_EINVAL);

    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref w;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    struct mon_cmd c = {.target = w, .times = 2};
    CHECK_EQ(cmd(&e, w, MSG_MONITOR, &c, sizeof c), GR_OK);
    struct report r;
    CHECK_EQ(expect(&e, MSG_MONITORED, &r), GR_OK);
    CHECK_EQ(r.rc[0], GR_EINVAL);
    CHECK_EQ(r.rc[1], GR_EINVAL);
    CHECK(pong_next(&e, w));
    /* Its own exit reaches no one. */
    uint64_t exited = stats_of(e.sys).exited;
    CHECK_EQ(end_node(&e, w, CODE_CRASH), GR_OK);
    CHECK(exits_reach(&e, exited, 1));
    CHECK(close_quiet(&e, 50));
}

/* ---- watcher exits first --------------------------------------------------
 */

/* A watcher that exits (stopped or crashed) takes its monitors with it:
 * its targets exit later without any DOWN reaching anyone but their other
 * watchers, no dead letter is counted, and the system keeps working. A
 * watcher that exits with a DOWN still queued (one worker: the target
 * runs its exit before the watcher runs again) drops it silently too. */
static void test_watcher_exits_first(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    for (int how = 0; how < 2; how++) {
        gr_ref w, keep, t1, t2;
        CHECK_EQ(spawn_node(&e, &w), GR_OK);
        CHECK_EQ(spawn_node(&e, &keep), GR_OK);
        CHECK_EQ(spawn_node(&e, &t1), GR_OK);
        CHECK_EQ(spawn_node(&e, &t2), GR_OK);
        uint64_t ids[3], kid;
        CHECK_EQ(monitor_n(&e, w, t1, 2, ids), GR_OK);
        CHECK_EQ(monitor_n(&e, w, t2, 1, &ids[2]), GR_OK);
        CHECK_EQ(monitor_n(&e, keep, t1, 1, &kid), GR_OK);
        uint64_t exited = stats_of(e.sys).exited;
        if (how == 0)
            CHECK_EQ(gr_stop(e.sys, w), GR_OK);
        else
            CHECK_EQ(end_node(&e, w, CODE_CRASH), GR_OK);
        CHECK(exits_reach(&e, exited, 1));
        CHECK_EQ(end_node(&e, t1, CODE_CRASH), GR_OK);
        CHECK_EQ(gr_stop(e.sys, t2), GR_OK);
        CHECK(next_down(&e, keep, t1, kid, CODE_CRASH));
        CHECK(exits_reach(&e, exited, 3));
        CHECK(quiet_for(&e, 50));
        CHECK_EQ(dead_total(&e), 0);
        /* Gone before the next round counts exits. */
        exited = stats_of(e.sys).exited;
        CHECK_EQ(gr_stop(e.sys, keep), GR_OK);
        CHECK(exits_reach(&e, exited, 1));
    }
    gr_ref fresh;
    CHECK_EQ(spawn_node(&e, &fresh), GR_OK);
    CHECK(pong_next(&e, fresh));
    env_close(&e);

    /* The DOWN queued behind the message that ends the watcher. */
    CHECK(env_open_quiet(&e, 1));
    for (int round = 0; round < 5; round++) {
        gr_ref w;
        CHECK_EQ(spawn_node(&e, &w), GR_OK);
        gr_ref t;
        CHECK_EQ(spawn_node(&e, &t), GR_OK);
        uint64_t exited = stats_of(e.sys).exited;
        struct trigger tr = {.target = t,
                             .reply_type = MSG_END,
                             .reply_code = round % 2 ? GR_STOP : CODE_CRASH,
                             .own_code = CODE_CRASH};
        CHECK_EQ(cmd(&e, w, MSG_WATCH_TRIGGER, &tr, sizeof tr), GR_OK);
        struct report r;
        CHECK_EQ(expect(&e, MSG_MONITORED, &r), GR_OK);
        CHECK_EQ(r.rc[0], GR_OK);
        CHECK(exits_reach(&e, exited, 2));
    }
    CHECK(close_quiet(&e, 50));
}

/* ---- inboxes --------------------------------------------------------------
 */

/* An actor can monitor an inbox: the request is consumed by the owner's
 * receive, not handed over, and closing the inbox gives one DOWN with
 * GR_OK. An inbox closed before its owner received the request gives one
 * DOWN too. */
static void test_monitor_inbox(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_inbox *b;
    CHECK_EQ(gr_inbox_open(e.sys, &b), GR_OK);
    gr_ref bref = gr_inbox_ref(b);
    gr_ref w;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    struct mon_cmd c = {.target = bref, .times = 2, .hello = 1};
    CHECK_EQ(cmd(&e, w, MSG_MONITOR, &c, sizeof c), GR_OK);
    struct report r;
    CHECK_EQ(expect(&e, MSG_MONITORED, &r), GR_OK);
    CHECK_EQ(r.rc[0], GR_OK);
    CHECK_EQ(r.rc[1], GR_OK);
    uint64_t ids[2] = {r.id[0], r.id[1]};
    /* The requests came first; the owner sees only the hello. */
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(b, &m, WAIT_MS), GR_OK);
    CHECK_EQ(m->type, MSG_HELLO);
    CHECK(gr_ref_eq(m->from, w));
    gr_msg_free(m);
    CHECK_EQ(gr_inbox_recv(b, &m, 20), GR_ETIMEDOUT);
    gr_inbox_close(b);
    struct report r1, r2;
    CHECK_EQ(expect(&e, MSG_DOWN_SEEN, &r1), GR_OK);
    CHECK_EQ(expect(&e, MSG_DOWN_SEEN, &r2), GR_OK);
    if (r1.corr != ids[0]) {
        struct report tmp = r1;
        r1 = r2;
        r2 = tmp;
    }
    CHECK(down_is(&r1, w, bref, ids[0], GR_OK));
    CHECK(down_is(&r2, w, bref, ids[1], GR_OK));
    CHECK(quiet_for(&e, 50));

    /* Closed with the request still queued: one DOWN all the same (which
     * reason is left open: the request had not reached the owner). */
    CHECK_EQ(gr_inbox_open(e.sys, &b), GR_OK);
    bref = gr_inbox_ref(b);
    uint64_t id;
    CHECK_EQ(monitor_n(&e, w, bref, 1, &id), GR_OK);
    gr_inbox_close(b);
    CHECK_EQ(expect(&e, MSG_DOWN_SEEN, &r), GR_OK);
    CHECK(down_is(&r, w, bref, id, r.down.reason.code));
    CHECK(r.down.reason.code == GR_OK || r.down.reason.code == GR_ENOACTOR);
    CHECK(close_quiet(&e, 50));
}

/* ---- gr_down_read ---------------------------------------------------------
 */

/* gr_down_read accepts only a well-formed DOWN: a user message with a
 * payload of the right size, a wrong size, NULL arguments are GR_EINVAL. */
static void test_down_read_rejects(void)
{
    gr_down want = {
        .monitor = 42, .target = {7, 0, 1}, .reason = {.code = GR_OK}};
    gr_down got;
    gr_msg m = {.type = GR_MSG_DOWN, .data = &want, .len = sizeof want};
    CHECK_EQ(gr_down_read(&m, &got), GR_OK);
    CHECK_EQ(got.monitor, 42);
    CHECK(gr_ref_eq(got.target, want.target));
    CHECK_EQ(gr_down_read(NULL, &got), GR_EINVAL);
    CHECK_EQ(gr_down_read(&m, NULL), GR_EINVAL);
    m.len = sizeof want - 1;
    CHECK_EQ(gr_down_read(&m, &got), GR_EINVAL);
    m.len = sizeof want + 1;
    CHECK_EQ(gr_down_read(&m, &got), GR_EINVAL);
    m.len = sizeof want;
    m.type = MSG_PROBE;
    CHECK_EQ(gr_down_read(&m, &got), GR_EINVAL);

    /* A real user message of the right size, in a handler and an inbox. */
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref w;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    CHECK_EQ(cmd(&e, w, MSG_PROBE, &want, sizeof want), GR_OK);
    struct report r;
    CHECK_EQ(expect(&e, MSG_PROBED, &r), GR_OK);
    CHECK_EQ(r.rc[0], GR_EINVAL);
    CHECK_EQ(gr_send(e.sys, GR_REF_NONE, gr_inbox_ref(e.inbox), MSG_PROBE,
                     &want, sizeof want),
             GR_OK);
    gr_msg *in = NULL;
    CHECK_EQ(gr_inbox_recv(e.inbox, &in, WAIT_MS), GR_OK);
    int rc = gr_down_read(in, &got);
    gr_msg_free(in);
    CHECK_EQ(rc, GR_EINVAL);
    /* And a real DOWN reads back. */
    uint64_t id;
    CHECK_EQ(monitor_n(&e, w, GR_REF_NONE, 1, &id), GR_OK);
    CHECK(next_down(&e, w, GR_REF_NONE, id, GR_ENOACTOR));
    env_close(&e);
}

/* ---- counters and shutdown ------------------------------------------------
 */

/* Waits until the delivery count settles at exactly want; returns 1 if it
 * did, saying what it saw otherwise. */
static int delivered_is(struct env *e, uint64_t want)
{
    uint64_t n = wait_stat_settled(e->sys, stat_delivered, 0, want);
    if (n != want)
        fprintf(stderr, "  delivered %llu, want %llu\n", (unsigned long long)n,
                (unsigned long long)want);
    return n == want;
}

/* Monitor requests, demonitors and flushed DOWNs are not deliveries; a
 * DOWN handed to a handler is one, and a request an inbox's receive
 * consumed is not. */
static void test_delivered_counts(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2));
    gr_ref w, t, t2, gone;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    CHECK_EQ(spawn_node(&e, &t2), GR_OK);
    CHECK_EQ(spawn_node(&e, &gone), GR_OK);
    uint64_t exited = stats_of(e.sys).exited;
    CHECK_EQ(gr_stop(e.sys, gone), GR_OK);
    CHECK(exits_reach(&e, exited, 1));
    uint64_t d = stats_of(e.sys).delivered;

    /* Command + report, then DOWN + its report: 4. */
    uint64_t id;
    CHECK_EQ(monitor_n(&e, w, t, 1, &id), GR_OK);
    CHECK_EQ(gr_stop(e.sys, t), GR_OK);
    CHECK(next_down(&e, w, t, id, GR_ESHUTDOWN));
    CHECK(delivered_is(&e, d += 4));

    /* The same for a target already gone. */
    CHECK_EQ(monitor_n(&e, w, gone, 1, &id), GR_OK);
    CHECK(next_down(&e, w, gone, id, GR_ENOACTOR));
    CHECK(delivered_is(&e, d += 4));

    /* Monitor, demonitor (2 each), then the exit delivers nothing, and
     * neither does a flushed DOWN (trigger: 2 + 2; ping: 2). */
    CHECK_EQ(monitor_n(&e, w, t2, 1, &id), GR_OK);
    CHECK_EQ(demonitor(&e, w, id), GR_OK);
    exited = stats_of(e.sys).exited;
    CHECK_EQ(gr_stop(e.sys, t2), GR_OK);
    CHECK(exits_reach(&e, exited, 1));
    CHECK(delivered_is(&e, d += 4));
    int queued = 0;
    flush_round(&e, w, GR_STOP, &queued);
    if (test_failed_)
        return;
    /* watch-trigger + report, trigger at the target, demon-now + report,
     * ping + pong. */
    CHECK(delivered_is(&e, d += 7));

    /* An inbox: the request is consumed, only the hello counts. */
    gr_inbox *b;
    CHECK_EQ(gr_inbox_open(e.sys, &b), GR_OK);
    struct mon_cmd c = {.target = gr_inbox_ref(b), .times = 1, .hello = 1};
    CHECK_EQ(cmd(&e, w, MSG_MONITOR, &c, sizeof c), GR_OK);
    struct report r;
    CHECK_EQ(expect(&e, MSG_MONITORED, &r), GR_OK);
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(b, &m, WAIT_MS), GR_OK);
    CHECK_EQ(m->type, MSG_HELLO);
    gr_msg_free(m);
    CHECK(delivered_is(&e, d += 3));
    gr_inbox_close(b);
    CHECK_EQ(expect(&e, MSG_DOWN_SEEN, &r), GR_OK);
    CHECK(delivered_is(&e, d += 2));
    CHECK_EQ(dead_total(&e), 0);
    env_close(&e);
}

/* Runs in terminate during shutdown: monitoring then is refused (sends
 * are), and must neither crash nor leak. */
static int shutdown_rc = 1;

static int closer_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    return GR_CONTINUE;
}

static void closer_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    int reason = why->code;
    gr_ref *target = state;
    (void)reason;
    uint64_t id;
    shutdown_rc = gr_monitor(ctx, *target, &id);
}

static int closer_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    gr_ref *target = state;
    int rc = read_arg(target, sizeof *target, arg, len);
    if (rc == GR_OK)
        rc = gr_monitor(ctx, *target, NULL);
    return rc;
}

static const gr_behaviour closer_b = {
    .name = "closer",
    .state_size = sizeof(gr_ref),
    .init = closer_init,
    .handle = closer_handle,
    .terminate = closer_terminate,
};

/* Shutting down with monitors in every state (established both ways,
 * requests likely still queued, DOWNs likely still queued, monitors made
 * in terminate) counts no dead letter and frees everything (the sanitizer
 * builds check that). */
static void test_shutdown_with_monitors(void)
{
    struct capture cap;
    capture_init(&cap);
    gr_config cfg = {
        .workers = 2, .log_fn = capture_fn, .log_arg = &cap, .no_signals = 1};
    struct env e;
    CHECK(env_open(&e, &cfg));
    enum { N = 16 };
    gr_ref p[N];
    for (int i = 0; i < N; i++)
        CHECK_EQ(spawn_node(&e, &p[i]), GR_OK);
    /* A ring of monitors each way round, two and three deep. */
    for (int i = 0; i < N; i++) {
        uint64_t ids[3];
        CHECK_EQ(monitor_n(&e, p[i], p[(i + 1) % N], 2, ids), GR_OK);
        CHECK_EQ(monitor_n(&e, p[(i + 1) % N], p[i], 3, ids), GR_OK);
    }
    /* Closers monitor from init on this thread, so their requests may
     * still be queued at shutdown; last's crash queues DOWNs to the
     * closers watching it, which may not have run yet either. */
    gr_ref last;
    CHECK_EQ(spawn_node(&e, &last), GR_OK);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(gr_system_spawn(e.sys, &closer_b, &p[i], sizeof p[i], NULL),
                 GR_OK);
        CHECK_EQ(gr_system_spawn(e.sys, &closer_b, &last, sizeof last, NULL),
                 GR_OK);
    }
    uint64_t exited = stats_of(e.sys).exited;
    CHECK_EQ(end_node(&e, last, CODE_CRASH), GR_OK);
    /* Its exit counted, so the message that ended it is no dead letter. */
    CHECK(exits_reach(&e, exited, 1));
    gr_inbox_close(e.inbox);
    CHECK_EQ(gr_system_shutdown(e.sys), GR_OK);
    /* Refused like a send; the exact code is the runtime's. */
    CHECK(shutdown_rc != 1 && shutdown_rc != GR_OK);
    unsigned dl = capture_count(&cap, GR_LOG_WARN, "dead letter", NULL);
    if (dl != 0)
        capture_dump(&cap);
    CHECK_EQ(dl, 0);
    pthread_mutex_destroy(&cap.lock);
}

/* ---- stress ---------------------------------------------------------------
 */

/* Monitors each stress watcher makes (random targets, repeats allowed). */
#define SM 8

enum {
    MSG_S_END = 200, /* int32_t code, as MSG_END. */
    MSG_S_WATCH,     /* struct s_watch: monitor these. */
    MSG_S_WATCHING,  /* struct s_watching: the ids. */
    MSG_S_DOWN,      /* struct s_down: a DOWN a watcher handled. */
    MSG_S_GOT,       /* A stress actor got a message it did not expect. */
};

struct s_watch {
    gr_ref t[SM];
};

struct s_watching {
    int32_t idx;
    int32_t rc[SM];
    uint64_t id[SM];
};

struct s_down {
    int32_t idx;
    int32_t read_rc;
    gr_ref from;
    uint64_t corr;
    gr_down d;
};

struct s_arg {
    gr_ref inbox;
    int32_t idx;
};

static int s_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    return read_arg(state, sizeof(struct s_arg), arg, len);
}

static int s_target_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct s_arg *s = state;
    int32_t code;
    if (m->type == MSG_S_END && read_payload(m, &code, sizeof code))
        return end_with(ctx, code);
    gr_tell(ctx, s->inbox, MSG_S_GOT, &m->type, sizeof m->type);
    return GR_CONTINUE;
}

static int s_watcher_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct s_arg *s = state;
    if (m->type == GR_MSG_DOWN) {
        struct s_down d = {.idx = s->idx, .from = m->from, .corr = m->corr};
        d.read_rc = gr_down_read(m, &d.d);
        gr_tell(ctx, s->inbox, MSG_S_DOWN, &d, sizeof d);
        return GR_CONTINUE;
    }
    struct s_watch w;
    if (m->type == MSG_S_WATCH && read_payload(m, &w, sizeof w)) {
        struct s_watching r = {.idx = s->idx};
        for (int k = 0; k < SM; k++)
            r.rc[k] = gr_monitor(ctx, w.t[k], &r.id[k]);
        gr_tell(ctx, s->inbox, MSG_S_WATCHING, &r, sizeof r);
        return GR_CONTINUE;
    }
    gr_tell(ctx, s->inbox, MSG_S_GOT, &m->type, sizeof m->type);
    return GR_CONTINUE;
}

static const gr_behaviour s_target_b = {
    .name = "s_target",
    .state_size = sizeof(struct s_arg),
    .init = s_init,
    .handle = s_target_handle,
};

static const gr_behaviour s_watcher_b = {
    .name = "s_watcher",
    .state_size = sizeof(struct s_arg),
    .init = s_init,
    .handle = s_watcher_handle,
};

/* When a stress target exits, relative to the monitors on it. */
enum { T_EARLY, T_RACING, T_LATE };

/* A stress target. */
struct s_target {
    gr_ref ref;
    int when;   /* T_* */
    int how;    /* 0: GR_STOP, 1: crash, 2: gr_stop, 3: stop itself. */
    int reason; /* The exit reason that gives. */
};

/* A stress watcher. */
struct s_watcher {
    gr_ref ref;
    int doomed;   /* 0: lives on; 1, 2: stopped in phase 1 or 2. */
    int watched;  /* Its MSG_S_WATCH was sent. */
    int reported; /* Its MSG_S_WATCHING came. */
    int tgt[SM];  /* Target index per monitor. */
    uint64_t id[SM];
    int got[SM]; /* DOWNs seen per monitor. */
};

/* Everything one stress round keeps. */
struct stress {
    struct env e;
    unsigned seed;
    int nt, nw;
    struct s_target *t;
    struct s_watcher *w;
    int reported;
    uint64_t live_downs; /* DOWNs seen by watchers that live on. */
    int bad;             /* Set when a message was wrong; already said. */
};

static int s_rand(struct stress *s, int n)
{
    return (int)(rand_r(&s->seed) % (unsigned)n);
}

static void s_shuffle(struct stress *s, int *v, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = s_rand(s, i + 1);
        int x = v[i];
        v[i] = v[j];
        v[j] = x;
    }
}

/* Makes target i exit as planned. */
static int s_end_target(struct stress *s, int i)
{
    struct s_target *t = &s->t[i];
    if (t->how == 2)
        return gr_stop(s->e.sys, t->ref);
    int32_t code = t->how == 0   ? GR_STOP
                   : t->how == 1 ? CODE_CRASH - i
                                 : CODE_STOP_SELF;
    return gr_send(s->e.sys, GR_REF_NONE, t->ref, MSG_S_END, &code,
                   sizeof code);
}

static int s_watch(struct stress *s, int i)
{
    struct s_watcher *w = &s->w[i];
    struct s_watch c;
    for (int k = 0; k < SM; k++)
        c.t[k] = s->t[w->tgt[k]].ref;
    w->watched = 1;
    return gr_send(s->e.sys, GR_REF_NONE, w->ref, MSG_S_WATCH, &c, sizeof c);
}

/* Takes one message off the inbox and checks it; returns GR_OK,
 * GR_ETIMEDOUT, or GR_EINVAL (said why) for a wrong message. */
static int s_take(struct stress *s, int timeout_ms)
{
    gr_msg *m = NULL;
    int rc = gr_inbox_recv(s->e.inbox, &m, timeout_ms);
    if (rc != GR_OK)
        return rc;
    rc = GR_EINVAL;
    struct s_watching wr;
    struct s_down d;
    if (m->type == MSG_S_WATCHING && read_payload(m, &wr, sizeof wr) &&
        wr.idx >= 0 && wr.idx < s->nw && !s->w[wr.idx].reported) {
        struct s_watcher *w = &s->w[wr.idx];
        rc = GR_OK;
        for (int k = 0; k < SM; k++) {
            if (wr.rc[k] != GR_OK || wr.id[k] == 0)
                rc = GR_EINVAL;
            w->id[k] = wr.id[k];
        }
        w->reported = 1;
        s->reported++;
        if (rc != GR_OK)
            fprintf(stderr, "  watcher %d: gr_monitor failed\n", wr.idx);
    } else if (m->type == MSG_S_DOWN && read_payload(m, &d, sizeof d) &&
               d.idx >= 0 && d.idx < s->nw && s->w[d.idx].reported) {
        struct s_watcher *w = &s->w[d.idx];
        int k = 0;
        while (k < SM && w->id[k] != d.corr)
            k++;
        if (k == SM) {
            fprintf(stderr, "  watcher %d: DOWN for unknown id %llu\n", d.idx,
                    (unsigned long long)d.corr);
        } else {
            struct s_target *t = &s->t[w->tgt[k]];
            int reason_ok = t->when == T_EARLY ? d.d.reason.code == GR_ENOACTOR
                            : t->when == T_LATE
                                ? d.d.reason.code == t->reason
                                : d.d.reason.code == t->reason ||
                                      d.d.reason.code == GR_ENOACTOR;
            if (d.read_rc == GR_OK && d.d.monitor == d.corr &&
                gr_ref_eq(d.from, t->ref) && gr_ref_eq(d.d.target, t->ref) &&
                reason_ok && w->got[k] == 0)
                rc = GR_OK;
            else
                fprintf(stderr,
                        "  watcher %d monitor %d (target %d, when %d): "
                        "reason %d (want %d), copy %d, read %d\n",
                        d.idx, k, w->tgt[k], t->when, d.d.reason.code,
                        t->reason, w->got[k] + 1, d.read_rc);
            w->got[k]++;
            if (!w->doomed)
                s->live_downs++;
        }
    } else {
        fprintf(stderr, "  stress: unexpected message type %u\n",
                (unsigned)m->type);
    }
    gr_msg_free(m);
    if (rc != GR_OK)
        s->bad = 1;
    return rc;
}

/* Receives until cond(s) holds, a message is wrong, or the watch gives
 * up; returns 1 if cond came to hold. */
static int s_until(struct stress *s, int (*cond)(const struct stress *))
{
    struct watch wt;
    watch_start(&wt, s->e.sys);
    while (!cond(s)) {
        int rc = s_take(s, 10);
        if (rc == GR_EINVAL || (rc == GR_ETIMEDOUT && watch_over(&wt)))
            return 0;
    }
    return 1;
}

static int s_all_reported(const struct stress *s)
{
    return s->reported == s->nw;
}

static int s_all_down(const struct stress *s)
{
    uint64_t live = 0;
    for (int i = 0; i < s->nw; i++)
        live += !s->w[i].doomed;
    return s->live_downs >= live * SM;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* One stress round on `workers` workers. Targets exit: some before any
 * monitor (GR_ENOACTOR), some while monitors are being made (their reason
 * or GR_ENOACTOR), the rest after, in random order, normally, stopped or
 * crashed, while a quarter of the watchers are stopped along the way.
 * Every watcher that lives on gets exactly one DOWN per monitor with the
 * right reason; a stopped one at most one; ids are unique; no dead
 * letters. */
static void stress_round(unsigned workers, unsigned seed)
{
    struct stress s = {.seed = seed};
    s.nt = (int)scaled(200, 24);
    s.nw = (int)scaled(200, 24);
    s.t = calloc((size_t)s.nt, sizeof *s.t);
    s.w = calloc((size_t)s.nw, sizeof *s.w);
    int n_ev = s.nt + 2 * s.nw;
    int *ev = calloc((size_t)n_ev, sizeof *ev);
    uint64_t *ids = calloc((size_t)s.nw * SM, sizeof *ids);
    int opened = s.t && s.w && ev && ids && env_open_quiet(&s.e, workers);
    if (!opened) {
        fprintf(stderr, "  stress: setup failed\n");
        test_failed_ = 1;
        goto out;
    }
    gr_ref inbox = gr_inbox_ref(s.e.inbox);
    for (int i = 0; i < s.nt; i++) {
        struct s_target *t = &s.t[i];
        struct s_arg a = {.inbox = inbox, .idx = i};
        if (gr_system_spawn(s.e.sys, &s_target_b, &a, sizeof a, &t->ref) !=
            GR_OK) {
            test_failed_ = 1;
            goto close;
        }
        int r = s_rand(&s, 8);
        t->when = r == 0 ? T_EARLY : r == 1 ? T_RACING : T_LATE;
        t->how = s_rand(&s, 4);
        t->reason = t->how == 0   ? GR_OK
                    : t->how == 1 ? CODE_CRASH - i
                                  : GR_ESHUTDOWN;
    }
    int doomed = 0;
    for (int i = 0; i < s.nw; i++) {
        struct s_watcher *w = &s.w[i];
        struct s_arg a = {.inbox = inbox, .idx = i};
        if (gr_system_spawn(s.e.sys, &s_watcher_b, &a, sizeof a, &w->ref) !=
            GR_OK) {
            test_failed_ = 1;
            goto close;
        }
        w->doomed = s_rand(&s, 4) == 0 ? 1 + s_rand(&s, 2) : 0;
        doomed += w->doomed != 0;
        for (int k = 0; k < SM; k++)
            w->tgt[k] = s_rand(&s, s.nt);
    }

    /* Early targets exit before anything watches them. */
    uint64_t exited = stats_of(s.e.sys).exited;
    uint64_t early = 0;
    for (int i = 0; i < s.nt; i++)
        if (s.t[i].when == T_EARLY) {
            if (s_end_target(&s, i) != GR_OK)
                test_failed_ = 1;
            early++;
        }
    if (test_failed_ || !exits_reach(&s.e, exited, early)) {
        fprintf(stderr, "  stress: early exits failed\n");
        test_failed_ = 1;
        goto close;
    }

    /* Phase 1: watch commands, racing exits, phase-1 stops, shuffled.
     * Events: i < nt: target i ends; nt + i: watcher i watches; nt + nw
     * + i: watcher i is stopped (after its watch, which it handles
     * first). */
    int n = 0;
    for (int i = 0; i < s.nt; i++)
        if (s.t[i].when == T_RACING)
            ev[n++] = i;
    for (int i = 0; i < s.nw; i++) {
        ev[n++] = s.nt + i;
        if (s.w[i].doomed == 1)
            ev[n++] = s.nt + s.nw + i;
    }
    s_shuffle(&s, ev, n);
    for (int j = 0; j < n && !test_failed_; j++) {
        int x = ev[j];
        int rc = GR_OK;
        if (x < s.nt) {
            rc = s_end_target(&s, x);
        } else if (x < s.nt + s.nw) {
            if (!s.w[x - s.nt].watched)
                rc = s_watch(&s, x - s.nt);
        } else {
            int i = x - s.nt - s.nw;
            if (!s.w[i].watched)
                rc = s_watch(&s, i);
            if (rc == GR_OK)
                rc = gr_stop(s.e.sys, s.w[i].ref);
        }
        if (rc != GR_OK) {
            fprintf(stderr, "  stress: phase 1 send failed: %d\n", rc);
            test_failed_ = 1;
        }
        if (j % 16 == 0)
            sched_yield();
    }
    if (test_failed_ || !s_until(&s, s_all_reported)) {
        fprintf(stderr, "  stress: %d of %d watchers reported\n", s.reported,
                s.nw);
        test_failed_ = 1;
        goto close;
    }

    /* Phase 2: the late targets and the phase-2 stops, shuffled. */
    n = 0;
    for (int i = 0; i < s.nt; i++)
        if (s.t[i].when == T_LATE)
            ev[n++] = i;
    for (int i = 0; i < s.nw; i++)
        if (s.w[i].doomed == 2)
            ev[n++] = s.nt + s.nw + i;
    s_shuffle(&s, ev, n);
    for (int j = 0; j < n && !test_failed_; j++) {
        int x = ev[j];
        int rc = x < s.nt ? s_end_target(&s, x)
                          : gr_stop(s.e.sys, s.w[x - s.nt - s.nw].ref);
        if (rc != GR_OK) {
            fprintf(stderr, "  stress: phase 2 send failed: %d\n", rc);
            test_failed_ = 1;
        }
    }
    if (test_failed_ || !s_until(&s, s_all_down)) {
        fprintf(stderr, "  stress: %llu DOWNs to live watchers\n",
                (unsigned long long)s.live_downs);
        test_failed_ = 1;
        goto close;
    }
    /* Everything has exited; then nothing more may come but DOWNs to
     * doomed watchers within their limit. */
    if (!exits_reach(&s.e, exited, (uint64_t)s.nt + (uint64_t)doomed)) {
        fprintf(stderr, "  stress: not all exits counted\n");
        test_failed_ = 1;
        goto close;
    }
    while (s_take(&s, SETTLE_MS) == GR_OK)
        ;
    if (s.bad)
        test_failed_ = 1;
    for (int i = 0; i < s.nw; i++)
        for (int k = 0; k < SM; k++) {
            int g = s.w[i].got[k];
            if (s.w[i].doomed ? g > 1 : g != 1) {
                fprintf(stderr,
                        "  watcher %d (doomed %d) monitor %d: %d DOWNs\n", i,
                        s.w[i].doomed, k, g);
                test_failed_ = 1;
            }
            ids[(size_t)i * SM + (size_t)k] = s.w[i].id[k];
        }
    qsort(ids, (size_t)s.nw * SM, sizeof *ids, cmp_u64);
    for (size_t i = 0; i < (size_t)s.nw * SM; i++)
        if (ids[i] == 0 || (i > 0 && ids[i] == ids[i - 1])) {
            fprintf(stderr, "  monitor id %llu repeated or zero\n",
                    (unsigned long long)ids[i]);
            test_failed_ = 1;
            break;
        }
    if (dead_total(&s.e) != 0) {
        fprintf(stderr, "  stress: %llu dead letters\n",
                (unsigned long long)dead_total(&s.e));
        test_failed_ = 1;
    }
close:
    if (test_failed_)
        fprintf(stderr, "  stress: %u workers, seed %u\n", workers, seed);
    env_close(&s.e);
out:
    free(s.t);
    free(s.w);
    free(ev);
    free(ids);
}

/* Many watchers on many targets, on two and on four workers. */
static void test_stress_many_watchers(void)
{
    const unsigned workers[] = {2, 4};
    const int rounds = (int)scaled(16, 1);
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < rounds; r++) {
            stress_round(workers[k], 0x6d6f6e + 97u * (unsigned)(k * 8 + r));
            if (test_failed_)
                return;
        }
}

TEST_MAIN(TEST_CASE(test_reason_normal), TEST_CASE(test_reason_stopped),
          TEST_CASE(test_reason_crash), TEST_CASE(test_reason_noproc_gone),
          TEST_CASE(test_reason_noproc_request_behind_exit),
          TEST_CASE(test_monitor_from_init),
          TEST_CASE(test_monitor_from_terminate),
          TEST_CASE(test_stacked_monitors), TEST_CASE(test_down_after_messages),
          TEST_CASE(test_demonitor_before_exit),
          TEST_CASE(test_demonitor_flushes_queued_down),
          TEST_CASE(test_demonitor_unknown),
          TEST_CASE(test_monitor_self_and_null),
          TEST_CASE(test_watcher_exits_first), TEST_CASE(test_monitor_inbox),
          TEST_CASE(test_down_read_rejects), TEST_CASE(test_delivered_counts),
          TEST_CASE(test_shutdown_with_monitors),
          TEST_CASE(test_stress_many_watchers))
