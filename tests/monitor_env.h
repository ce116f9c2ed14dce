/*
 * The environment of the monitor suites (test_monitor_down,
 * test_monitor_lifecycle, test_monitor_stress): a node actor that is
 * watcher and target alike, a probe (probe.h) run by commands from the
 * test or from another node, and helpers. Public API only.
 */
#ifndef GROVE_TEST_MONITOR_ENV_H
#define GROVE_TEST_MONITOR_ENV_H

#include <grove/grove.h>

#include "helpers.h"
#include "probe.h"

/* ---- the node actor: watcher and target alike ---------------------------- */

/* Most monitors one command makes, and ids one report carries. */
#define MAX_IDS 8

enum {
    /* Commands, from the test or from another node. Ending is the probe's
     * PROBE_END (PROBE_CRASH, GR_STOP, PROBE_STOP_SELF, any code). */
    MSG_MONITOR = 1,   /* struct mon_cmd: monitors target `times` times. */
    MSG_DEMONITOR,     /* uint64_t id: reports gr_demonitor's PROBE_RC. */
    MSG_SEQ,           /* uint32_t sequence number: counted. */
    MSG_BLAST,         /* struct blast: k MSG_SEQs to `to`, then ends. */
    MSG_WATCH_BLAST,   /* struct blast: monitors target, sends it BLAST. */
    MSG_RACE,          /* struct race: ends target and monitors it. */
    MSG_WATCH_TRIGGER, /* struct trigger: monitors target, sends TRIGGER. */
    MSG_TRIGGER,       /* struct trigger: replies reply_type, then ends. */
    MSG_DEMON_NOW,     /* Demonitors the last monitor (see its step). */
    MSG_ARM,           /* struct arm: terminate monitors these. */
    MSG_FAKE_DOWN,     /* Any payload: reports gr_down_read's PROBE_RC. */
    MSG_HELLO,         /* Sent to a target after monitoring it, if asked. */
    MSG_SPAWN,         /* struct node_arg: spawns a node (init on a worker). */
    /* Reports (struct report) to the test. */
    MSG_MONITORED = 100,
    MSG_DOWN_SEEN,
    MSG_FLUSHED,
    MSG_TERM_REPORT,
    MSG_SPAWNED, /* rc[0]: gr_spawn's code; from: the child. */
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
    int32_t code;    /* How the blaster ends: a PROBE_END code. */
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
    int32_t own_code;     /* before it ends with this PROBE_END code. */
};

/* MSG_ARM's payload: what terminate tries to monitor. */
struct arm {
    gr_ref target; /* Alive when terminate runs. */
    gr_ref dead;   /* Gone when terminate runs. */
};

/* Spawn argument of a node; lent to init. */
struct node_arg {
    gr_ref init_target[2]; /* What init monitors, */
    int32_t n_init;        /* this many of them (0..2). */
    int32_t init_fail;     /* Nonzero: init fails after monitoring. */
};

struct node {
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

/* Reports r to the test as type, naming this node in r->self. */
static inline void report(gr_ctx *ctx, uint32_t type, struct report *r)
{
    r->self = gr_self(ctx);
    probe_report(ctx, type, r, sizeof *r);
}

/* The node behaviour, defined below its steps; MSG_SPAWN needs it. */
static const gr_behaviour node_b;

static inline int node_init(gr_ctx *ctx, void *state, const void *arg,
                            size_t len)
{
    struct node *n = state;
    struct node_arg a;
    int rc = read_arg(&a, sizeof a, arg, len);
    if (rc != GR_OK)
        return rc;
    if (a.n_init > 0) {
        struct report r = {.n = a.n_init};
        for (int i = 0; i < a.n_init && i < 2; i++)
            r.rc[i] = gr_monitor(ctx, a.init_target[i], &r.id[i]);
        n->last_id = r.id[0];
        report(ctx, MSG_MONITORED, &r);
    }
    return a.init_fail ? GR_EINVAL : GR_OK;
}

static inline int node_monitor(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct node *n = state;
    struct mon_cmd c;
    if (!read_payload(m, &c, sizeof c) || c.times < 1 || c.times > MAX_IDS)
        return GR_EUNHANDLED;
    struct report r = {.n = c.times};
    for (int i = 0; i < c.times; i++)
        r.rc[i] = gr_monitor(ctx, c.target, &r.id[i]);
    n->last_id = r.id[c.times - 1];
    if (c.hello)
        gr_tell(ctx, c.target, MSG_HELLO, NULL, 0);
    report(ctx, MSG_MONITORED, &r);
    return GR_CONTINUE;
}

static inline int node_demonitor(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    uint64_t id;
    if (!read_payload(m, &id, sizeof id))
        return GR_EUNHANDLED;
    probe_report_rc(ctx, gr_demonitor(ctx, id));
    return GR_CONTINUE;
}

static inline int node_seq(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx;
    seq_count_add(&((struct node *)state)->seq, m);
    return GR_CONTINUE;
}

/* Sends k MSG_SEQs, leaves k_term more to terminate, and ends. */
static inline int node_blast(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct node *n = state;
    struct blast b;
    if (!read_payload(m, &b, sizeof b))
        return GR_EUNHANDLED;
    for (uint32_t i = 0; i < b.k; i++)
        gr_tell(ctx, b.to, MSG_SEQ, &i, sizeof i);
    n->term_to = b.to;
    n->term_next = b.k;
    n->term_end = b.k + b.k_term;
    return probe_end_with(ctx, b.code);
}

static inline int node_watch_blast(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    struct blast b;
    if (!read_payload(m, &b, sizeof b))
        return GR_EUNHANDLED;
    struct report r = {.n = 1};
    r.rc[0] = gr_monitor(ctx, b.target, &r.id[0]);
    b.to = gr_self(ctx);
    gr_tell(ctx, b.target, MSG_BLAST, &b, sizeof b);
    report(ctx, MSG_MONITORED, &r);
    return GR_CONTINUE;
}

static inline int node_race(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    gr_system *sys = gr_ctx_system(ctx);
    struct race c;
    int32_t code = PROBE_CRASH;
    if (!read_payload(m, &c, sizeof c))
        return GR_EUNHANDLED;
    struct report r = {.n = 1};
    if (c.order == RACE_STOP_FIRST)
        gr_stop(sys, c.target);
    else if (c.order == RACE_CRASH_FIRST)
        gr_tell(ctx, c.target, PROBE_END, &code, sizeof code);
    r.rc[0] = gr_monitor(ctx, c.target, &r.id[0]);
    if (c.order == RACE_MONITOR_FIRST)
        gr_stop(sys, c.target);
    report(ctx, MSG_MONITORED, &r);
    return GR_CONTINUE;
}

static inline int node_watch_trigger(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct node *n = state;
    struct trigger t;
    if (!read_payload(m, &t, sizeof t))
        return GR_EUNHANDLED;
    struct report r = {.n = 1};
    r.rc[0] = gr_monitor(ctx, t.target, &r.id[0]);
    n->last_id = r.id[0];
    n->want_exited = t.want_exited;
    gr_tell(ctx, t.target, MSG_TRIGGER, &t, sizeof t);
    report(ctx, MSG_MONITORED, &r);
    return GR_CONTINUE;
}

/* Tells the watcher that sent it reply_type, then ends. */
static inline int node_trigger(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    struct trigger t;
    if (!read_payload(m, &t, sizeof t))
        return GR_EUNHANDLED;
    gr_tell(ctx, m->from, t.reply_type, &t.reply_code, sizeof t.reply_code);
    return probe_end_with(ctx, t.own_code);
}

static inline int node_demon_now(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)m;
    struct node *n = state;
    /* The exit count moves after the target has sent its DOWNs, so once it
     * is reached the DOWN is in this node's mailbox. */
    gr_stats st;
    gr_system_stats(gr_ctx_system(ctx), &st);
    struct report r = {.queued = st.exited >= n->want_exited};
    r.id[0] = n->last_id;
    r.rc[0] = gr_demonitor(ctx, n->last_id);
    r.rc[1] = gr_demonitor(ctx, n->last_id);
    report(ctx, MSG_FLUSHED, &r);
    return GR_CONTINUE;
}

static inline int node_arm(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx;
    struct node *n = state;
    if (!read_payload(m, &n->arm, sizeof n->arm))
        return GR_EUNHANDLED;
    n->armed = 1;
    return GR_CONTINUE;
}

static inline int node_fake_down(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    gr_down d;
    probe_report_rc(ctx, gr_down_read(m, &d));
    return GR_CONTINUE;
}

static inline int node_spawn(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    struct node_arg a;
    if (!read_payload(m, &a, sizeof a))
        return GR_EUNHANDLED;
    struct report r = {0};
    r.rc[0] = gr_spawn(ctx, &node_b, &a, sizeof a, &r.from);
    report(ctx, MSG_SPAWNED, &r);
    return GR_CONTINUE;
}

/* A DOWN: reported with the MSG_SEQs seen before it. */
static inline int node_other(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct node *n = state;
    if (m->type != GR_MSG_DOWN)
        return GR_EUNHANDLED;
    struct report r = {.from = m->from,
                       .corr = m->corr,
                       .type = m->type,
                       .count = n->seq.count,
                       .out_of_order = n->seq.out_of_order};
    r.read_rc = gr_down_read(m, &r.down);
    report(ctx, MSG_DOWN_SEEN, &r);
    return GR_CONTINUE;
}

static inline void node_terminate(gr_ctx *ctx, void *state,
                                  const gr_reason *why)
{
    (void)why;
    struct node *n = state;
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
    report(ctx, MSG_TERM_REPORT, &r);
}

static const struct probe_step node_steps[] = {
    {MSG_MONITOR, node_monitor},
    {MSG_DEMONITOR, node_demonitor},
    {MSG_SEQ, node_seq},
    {MSG_BLAST, node_blast},
    {MSG_WATCH_BLAST, node_watch_blast},
    {MSG_RACE, node_race},
    {MSG_WATCH_TRIGGER, node_watch_trigger},
    {MSG_TRIGGER, node_trigger},
    {MSG_DEMON_NOW, node_demon_now},
    {MSG_ARM, node_arm},
    {MSG_FAKE_DOWN, node_fake_down},
    {MSG_SPAWN, node_spawn},
    {0, NULL}};

static const struct probe_script node_script = {.steps = node_steps,
                                                .other = node_other,
                                                .init = node_init,
                                                .terminate = node_terminate};
PROBE_BEHAVIOUR(node_b, "node", sizeof(struct node), node_script);

/* ---- helpers ------------------------------------------------------------- */

/* env_open_quiet() with the probes reporting to e's inbox. */
static inline int open_env(struct env *e, unsigned workers)
{
    if (!env_open_quiet(e, workers))
        return 0;
    probe_attach(e);
    return 1;
}

static inline void close_env(struct env *e)
{
    env_close(e);
    probe_detach();
}

static inline int spawn_node(struct env *e, gr_ref *out)
{
    struct node_arg a = {0};
    return gr_system_spawn(e->sys, &node_b, &a, sizeof a, out);
}

/* Has node w monitor target `times` times; stores the ids. Returns GR_OK,
 * or the first failure (of the command, GR_ETIMEDOUT for a missing report,
 * or of a gr_monitor). */
static inline int monitor_n(gr_ref w, gr_ref target, int times, uint64_t *ids)
{
    struct mon_cmd c = {.target = target, .times = times};
    struct report r;
    int rc = probe_tell(w, MSG_MONITOR, &c, sizeof c);
    if (rc == GR_OK && !probe_take(MSG_MONITORED, &r, sizeof r))
        rc = GR_ETIMEDOUT;
    for (int i = 0; rc == GR_OK && i < times; i++) {
        rc = r.rc[i];
        ids[i] = r.id[i];
    }
    return rc;
}

/* Has node w demonitor id; returns gr_demonitor's code. */
static inline int demonitor(gr_ref w, uint64_t id)
{
    int rc = probe_tell(w, MSG_DEMONITOR, &id, sizeof id);
    return rc == GR_OK ? probe_take_rc() : rc;
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

/* Takes the next report, which must be a DOWN as down_is() says. */
static inline int next_down(gr_ref watcher, gr_ref target, uint64_t id,
                            int reason)
{
    struct report r;
    return probe_take(MSG_DOWN_SEEN, &r, sizeof r) &&
           down_is(&r, watcher, target, id, reason);
}

static inline uint64_t dead_total(struct env *e)
{
    gr_stats st = stats_of(e->sys);
    return stat_dead_total(&st, 0);
}

/* Ends a case: checks that no report comes for ms and that no dead letter
 * was counted, then closes the environment whatever the checks said.
 * Returns 1 when both checks held. */
static inline int close_quiet(struct env *e, int ms)
{
    int quiet = probe_quiet_for(ms);
    uint64_t dead = dead_total(e);
    if (dead != 0)
        fprintf(stderr, "  %" PRIu64 " dead letters\n", dead);
    close_env(e);
    return quiet && dead == 0;
}

/* Reads the delivery count from st (arg unused); a counter for wait_stat. */
static inline uint64_t stat_delivered(const gr_stats *st, int arg)
{
    (void)arg;
    return st->delivered;
}

#endif
