/*
 * The environment of the monitor suites (test_monitor_down,
 * test_monitor_lifecycle, test_monitor_stress): a node actor that is
 * watcher and target alike, run by commands from the test's inbox, and
 * helpers. Public API only.
 */
#ifndef GROVE_TEST_MONITOR_ENV_H
#define GROVE_TEST_MONITOR_ENV_H

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

static inline void report(gr_ctx *ctx, gr_ref to, uint32_t type,
                          struct report *r)
{
    r->self = gr_self(ctx);
    gr_tell(ctx, to, type, r, sizeof *r);
}

/* Ends the handler as an MSG_END code says. */
static inline int end_with(gr_ctx *ctx, int32_t code)
{
    if (code != CODE_STOP_SELF)
        return code;
    gr_stop(gr_ctx_system(ctx), gr_self(ctx));
    return GR_CONTINUE;
}

/* The node behaviour, defined below its callbacks; MSG_SPAWN needs it. */
static const gr_behaviour node_b;

static inline int node_init(gr_ctx *ctx, void *state, const void *arg,
                            size_t len)
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
static inline void seen_down(gr_ctx *ctx, struct node *n, const gr_msg *m)
{
    struct report r = {.from = m->from,
                       .corr = m->corr,
                       .type = m->type,
                       .count = n->seq.count,
                       .out_of_order = n->seq.out_of_order};
    r.read_rc = gr_down_read(m, &r.down);
    report(ctx, n->inbox, MSG_DOWN_SEEN, &r);
}

static inline int node_handle(gr_ctx *ctx, void *state, const gr_msg *m)
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

static inline void node_terminate(gr_ctx *ctx, void *state,
                                  const gr_reason *why)
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

static inline int spawn_node(struct env *e, gr_ref *out)
{
    struct node_arg a = {.inbox = gr_inbox_ref(e->inbox)};
    return gr_system_spawn(e->sys, &node_b, &a, sizeof a, out);
}

/* Sends a command to node `to`, naming the inbox as sender. */
static inline int cmd(struct env *e, gr_ref to, uint32_t type, const void *p,
                      size_t len)
{
    return gr_system_tell(e->sys, gr_inbox_ref(e->inbox), to, type, p, len);
}

static inline int expect(struct env *e, uint32_t type, struct report *r)
{
    return recv_exact(e->inbox, type, r, sizeof *r);
}

/* Has node w monitor target `times` times; stores the ids. Returns GR_OK,
 * or the first failure (of the command or of a gr_monitor). */
static inline int monitor_n(struct env *e, gr_ref w, gr_ref target, int times,
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
static inline int demonitor(struct env *e, gr_ref w, uint64_t id)
{
    struct report r;
    int rc = cmd(e, w, MSG_DEMONITOR, &id, sizeof id);
    if (rc == GR_OK)
        rc = expect(e, MSG_DEMONITORED, &r);
    return rc == GR_OK ? r.rc[0] : rc;
}

/* Sends node p an MSG_END with code. */
static inline int end_node(struct env *e, gr_ref p, int32_t code)
{
    return cmd(e, p, MSG_END, &code, sizeof code);
}

/* Waits until `more` exits past `base` are counted; returns 1 if they are. */
static inline int exits_reach(struct env *e, uint64_t base, uint64_t more)
{
    return wait_exited(e->sys, base + more) >= base + more;
}

/* Returns 1 if r is a well-formed DOWN seen by watcher for monitor id of
 * target with reason; says what differs otherwise. */
static inline int down_is(const struct report *r, gr_ref watcher, gr_ref target,
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
static inline int next_down(struct env *e, gr_ref watcher, gr_ref target,
                            uint64_t id, int reason)
{
    struct report r;
    return expect(e, MSG_DOWN_SEEN, &r) == GR_OK &&
           down_is(&r, watcher, target, id, reason);
}

/* Returns 1 if nothing reaches the inbox within ms; names what did. */
static inline int quiet_for(struct env *e, int ms)
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
static inline int pong_next(struct env *e, gr_ref p)
{
    struct report r;
    return cmd(e, p, MSG_PING, NULL, 0) == GR_OK &&
           expect(e, MSG_PONG, &r) == GR_OK && gr_ref_eq(r.self, p);
}

static inline uint64_t dead_total(struct env *e)
{
    gr_stats st = stats_of(e->sys);
    return stat_dead_total(&st, 0);
}

/* Ends a case: checks that nothing more reaches the inbox for ms and that
 * no dead letter was counted, then closes the inbox and shuts the system
 * down whatever the checks said. Returns 1 when both checks held. */
static inline int close_quiet(struct env *e, int ms)
{
    int quiet = quiet_for(e, ms);
    uint64_t dead = dead_total(e);
    if (dead != 0)
        fprintf(stderr, "  %" PRIu64 " dead letters\n", dead);
    env_close(e);
    return quiet && dead == 0;
}

/* Reads the delivery count from st (arg unused); a counter for wait_stat. */
static inline uint64_t stat_delivered(const gr_stats *st, int arg)
{
    (void)arg;
    return st->delivered;
}

#endif
