/*
 * Node tests: supervisors starting real OS processes (this program,
 * re-entered through gr_node_main), their crashes (signals, exit
 * statuses, protocol errors) handled exactly as actor children's exits,
 * and messages, asks, monitors and links across the process boundary.
 * Every process started is reaped; bounded waits, no timing assertions.
 */
#include <grove/grove.h>

#include <dirent.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "node_helpers.h"
#include "testing.h"

/* ---- recording events -----------------------------------------------------
 */

#define EV_MAX 256

static struct {
    pthread_mutex_t lock;
    gr_event_kind kind[EV_MAX];
    gr_reason reason[EV_MAX];
    char child[EV_MAX][GR_NAME_MAX + 1];
    size_t n;
} evs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void record_event(void *arg, const gr_event *ev)
{
    (void)arg;
    pthread_mutex_lock(&evs.lock);
    /* Supervisor events by child id, node events by node name. */
    const char *who = ev->kind == GR_EV_NODE_UP || ev->kind == GR_EV_NODE_DOWN
                          ? ev->node
                          : ev->child_id;
    if (evs.n < EV_MAX && who != NULL && who[0] != '\0') {
        evs.kind[evs.n] = ev->kind;
        evs.reason[evs.n] = ev->reason;
        snprintf(evs.child[evs.n], sizeof evs.child[0], "%s", who);
        evs.n++;
    }
    pthread_mutex_unlock(&evs.lock);
}

static void events_reset(void)
{
    pthread_mutex_lock(&evs.lock);
    evs.n = 0;
    pthread_mutex_unlock(&evs.lock);
}

/* Waits for the n-th (1-based) event of kind for child; copies its reason.
 * Returns 1 when it came. */
static int wait_event(gr_event_kind kind, const char *child, int nth,
                      gr_reason *why)
{
    double end = test_now() + WAIT_LIMIT_S;
    while (test_now() < end) {
        pthread_mutex_lock(&evs.lock);
        int seen = 0;
        for (size_t i = 0; i < evs.n; i++)
            if (evs.kind[i] == kind && strcmp(evs.child[i], child) == 0 &&
                ++seen == nth) {
                if (why != NULL)
                    *why = evs.reason[i];
                pthread_mutex_unlock(&evs.lock);
                return 1;
            }
        pthread_mutex_unlock(&evs.lock);
        sleep_ms(2);
    }
    return 0;
}

/* Counts events of kind for child so far. */
static int count_events(gr_event_kind kind, const char *child)
{
    pthread_mutex_lock(&evs.lock);
    int seen = 0;
    for (size_t i = 0; i < evs.n; i++)
        seen += evs.kind[i] == kind && strcmp(evs.child[i], child) == 0;
    pthread_mutex_unlock(&evs.lock);
    return seen;
}

static int node_env_open(struct env *e)
{
    events_reset();
    gr_config cfg = {.workers = 2,
                     .no_signals = 1,
                     .log_fn = quiet_log,
                     .event_fn = record_event};
    return env_open(e, &cfg);
}

/* Counts this process's child processes (zombies included), from /proc. */
static int children_alive(void)
{
    int n = 0;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[300], buf[512];
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        const char *p = strrchr(buf, ')'); /* After the command name. */
        int ppid;
        if (p != NULL && sscanf(p + 1, " %*c %d", &ppid) == 1 &&
            ppid == getpid())
            n++;
    }
    closedir(d);
    return n;
}

/* ---- specs ------------------------------------------------------------------
 */

static const gr_node_spec n1_spec = {.name = "n1", .root = "echo"};
static const gr_node_spec n2_spec = {.name = "n2", .root = "echo"};

static int start_sup(gr_system *sys, gr_strategy strategy, uint32_t intensity,
                     const gr_child_spec *kids, size_t n, gr_ref *sup)
{
    gr_sup_spec spec = {.strategy = strategy,
                        .intensity = intensity,
                        .period_ms = 60000,
                        .children = kids,
                        .nchildren = n};
    return gr_supervisor_start(sys, &spec, sup);
}

static void crash(gr_system *sys, gr_inbox *in, gr_ref echo, int32_t how)
{
    (void)gr_send(sys, gr_inbox_ref(in), echo, T_CRASH, &how, sizeof how);
}

/* The pid and ref of the echo on node, waiting for it. */
#define FIND(e, node, w) CHECK(find_echo((e)->sys, (e)->inbox, node, w, 20))

/* ---- cases ------------------------------------------------------------------
 */

/* A node child starts with the supervisor; its root answers an ask from
 * the parent process by ref and is found by "echo@n1"; which_children
 * reports it as a node; shutting the system down stops and reaps it. */
static void start_ask_shutdown(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    struct who w;
    CHECK(find_echo(e.sys, e.inbox, "n1", &w, 10));
    CHECK(w.self.node != 0 && w.self.incarnation != 0);
    CHECK(w.pid != getpid());
    gr_msg *reply = NULL;
    CHECK_EQ(gr_call(e.sys, w.self, T_ECHO, "hello", 5, 5000, &reply), GR_OK);
    CHECK(reply->type == T_REPLY && reply->len == 5 &&
          memcmp(reply->data, "hello", 5) == 0);
    CHECK(gr_ref_eq(reply->from, w.self));
    gr_msg_free(reply);
    gr_child_info info;
    size_t count = 0;
    CHECK_EQ(gr_supervisor_which_children(e.sys, sup, &info, 1, &count), GR_OK);
    CHECK_EQ(count, 1);
    CHECK_EQ(info.type, GR_NODE);
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    env_close(&e);
    CHECK(pid_gone(w.pid, 10));
}

/* Stopping a node child: a shutdown request it obeys (the process exits
 * cleanly); one that cannot obey (SIGSTOPped) is SIGKILLed after
 * shutdown_ms. Either way the process is reaped before long. */
static void terminate_child_shutdown_then_kill(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT)};
    kids[0].shutdown_ms = 300;
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    struct who w;
    FIND(&e, "n1", &w);
    CHECK_EQ(gr_supervisor_terminate_child(e.sys, sup, "n1", GR_REF_NONE),
             GR_OK);
    gr_reason why;
    CHECK(wait_event(GR_EV_NODE_DOWN, "n1", 1, &why));
    CHECK_EQ(why.code, GR_OK); /* It exited by itself, status 0. */
    CHECK(pid_gone(w.pid, 10));
    CHECK_EQ(gr_supervisor_restart_child(e.sys, sup, "n1", NULL), GR_OK);
    FIND(&e, "n1", &w);
    CHECK_EQ(kill(w.pid, SIGSTOP), 0);
    double t0 = test_now();
    CHECK_EQ(gr_supervisor_terminate_child(e.sys, sup, "n1", GR_REF_NONE),
             GR_OK);
    CHECK(test_now() - t0 >= 0.25); /* It waited for the shutdown first. */
    CHECK(wait_event(GR_EV_NODE_DOWN, "n1", 2, &why));
    CHECK_EQ(why.code, GR_ESIGNAL);
    CHECK_EQ(why.detail, SIGKILL);
    CHECK(pid_gone(w.pid, 10));
    /* Only the restart asked for: a terminated child stays down. */
    CHECK_EQ(count_events(GR_EV_CHILD_RESTARTED, "n1"), 1);
    env_close(&e);
}

/* A SIGSEGV kills the node process: the child crashes with reason
 * {signal, SIGSEGV}, is restarted as a new incarnation, and the old ref
 * no longer reaches anything. */
static void sigsegv_restarts(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    struct who w1, w2;
    CHECK(find_echo(e.sys, e.inbox, "n1", &w1, 10));
    crash(e.sys, e.inbox, w1.self, CRASH_SEGV);
    gr_reason why;
    CHECK(wait_event(GR_EV_CHILD_CRASHED, "n1", 1, &why));
    CHECK_EQ(why.code, GR_ESIGNAL);
    CHECK_EQ(why.detail, SIGSEGV);
    CHECK(strcmp(why.text, "signal SIGSEGV") == 0);
    CHECK(wait_event(GR_EV_CHILD_RESTARTED, "n1", 1, NULL));
    /* The node events: up, down with the same reason, up again. */
    gr_reason down;
    CHECK(wait_event(GR_EV_NODE_DOWN, "n1", 1, &down));
    CHECK_EQ(down.code, GR_ESIGNAL);
    CHECK(wait_event(GR_EV_NODE_UP, "n1", 2, NULL));
    CHECK(find_echo(e.sys, e.inbox, "n1", &w2, 10));
    CHECK(w2.pid != w1.pid);
    CHECK(w2.self.node == w1.self.node);
    CHECK(w2.self.incarnation != w1.self.incarnation);
    CHECK(pid_gone(w1.pid, 10));
    gr_msg *reply = NULL;
    CHECK(gr_call(e.sys, w1.self, T_ECHO, "x", 1, 2000, &reply) != GR_OK);
    CHECK_EQ(gr_call(e.sys, w2.self, T_ECHO, "x", 1, 5000, &reply), GR_OK);
    gr_msg_free(reply);
    env_close(&e);
    CHECK(pid_gone(w2.pid, 10));
    /* The restarted node (started from a worker thread) was stopped in
     * order at shutdown, not killed. */
    gr_reason last;
    CHECK(wait_event(GR_EV_NODE_DOWN, "n1", 2, &last));
    CHECK_EQ(last.code, GR_OK);
}

/* ---- a local agent that acts across the boundary ------------------------- */

/* Commands to the agent (from the inbox) and its reports. */
enum {
    A_ASK = 100,     /* struct agent_cmd: ask target `type` with timeout. */
    A_MONITOR = 101, /* struct agent_cmd: monitor target. */
    A_LINK = 102,    /* struct agent_cmd: link to target (it traps). */
    A_BURST = 103,   /* struct agent_cmd: tell target n T_SEQ messages. */
    A_COUNT = 104,   /* Report the T_SEQ count to the inbox. */
    R_ASK = 110,     /* struct report: how an ask ended (what: its type). */
    R_DOWN = 111,    /* struct report: a DOWN (what: monitor id). */
    R_EXIT = 112,    /* struct report: an EXIT. */
    R_COUNT = 113    /* struct counted. */
};

struct agent_cmd {
    gr_ref target;
    uint32_t type, n;
    uint64_t timeout_ms;
    int32_t payload;
    uint32_t pad;
};

struct report {
    int32_t code; /* A call's result, or the reason's code. */
    uint32_t what;
    gr_ref from;
    int64_t detail;
};

struct agent {
    gr_ref inbox;
    struct counted seen;
};

static int agent_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    struct agent *a = state;
    gr_trap_exit(ctx, 1);
    return read_arg(&a->inbox, sizeof a->inbox, arg, len);
}

static void agent_report(gr_ctx *ctx, struct agent *a, uint32_t type,
                         int32_t code, uint32_t what, gr_ref from,
                         int64_t detail)
{
    struct report r = {
        .code = code, .what = what, .from = from, .detail = detail};
    (void)gr_tell(ctx, a->inbox, type, &r, sizeof r);
}

static int agent_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct agent *a = state;
    struct agent_cmd c;
    int rc;
    if (m->flags & GR_MSG_REPLY) {
        gr_reason why = {0};
        if (m->type == GR_MSG_ASK_FAILED)
            (void)gr_ask_failed_read(m, &why);
        else if (m->type == GR_MSG_TIMEOUT)
            why.code = GR_ETIMEDOUT;
        agent_report(ctx, a, R_ASK, why.code, m->type, m->from, 0);
        return GR_CONTINUE;
    }
    switch (m->type) {
    case A_ASK:
    case A_MONITOR:
    case A_LINK:
    case A_BURST:
        if (!read_payload(m, &c, sizeof c))
            return GR_EINVAL;
        break;
    case A_COUNT:
        return gr_tell(ctx, a->inbox, R_COUNT, &a->seen, sizeof a->seen);
    case T_SEQ: {
        uint32_t seq;
        if (!read_payload(m, &seq, sizeof seq))
            return GR_EINVAL;
        count_seq(&a->seen, seq);
        return GR_CONTINUE;
    }
    case GR_MSG_DOWN: {
        gr_down d;
        if (gr_down_read(m, &d) == GR_OK)
            agent_report(ctx, a, R_DOWN, d.reason.code, 0, d.target,
                         d.reason.detail);
        return GR_CONTINUE;
    }
    case GR_MSG_EXIT: {
        gr_exit_msg x;
        if (gr_exit_read(m, &x) != GR_OK)
            return GR_CONTINUE;
        if (x.reason.code == GR_ESHUTDOWN) /* Its supervisor stops it. */
            return gr_stop_with(ctx, &x.reason);
        agent_report(ctx, a, R_EXIT, x.reason.code, 0, x.from, 0);
        return GR_CONTINUE;
    }
    default:
        return GR_CONTINUE;
    }
    switch (m->type) {
    case A_ASK:
        rc = gr_ask(ctx, c.target, c.type, &c.payload, sizeof c.payload,
                    c.timeout_ms, NULL);
        if (rc != GR_OK) /* Refused at once: report it as its result. */
            agent_report(ctx, a, R_ASK, rc, 0, c.target, 1);
        return GR_CONTINUE;
    case A_MONITOR:
        rc = gr_monitor(ctx, c.target, NULL);
        return rc == GR_OK ? GR_CONTINUE : rc;
    case A_LINK:
        rc = gr_link(ctx, c.target);
        return rc == GR_OK ? GR_CONTINUE : rc;
    default: /* A_BURST */
        for (uint32_t i = 0; i < c.n; i++)
            if ((rc = gr_tell(ctx, c.target, T_SEQ, &i, sizeof i)) != GR_OK)
                return rc;
        return GR_CONTINUE;
    }
}

static const gr_behaviour agent_b = {
    .name = "agent",
    .state_size = sizeof(struct agent),
    .init = agent_init,
    .handle = agent_handle,
};

static int spawn_agent(struct env *e, gr_ref *out)
{
    gr_ref in = gr_inbox_ref(e->inbox);
    return gr_system_spawn(e->sys, &agent_b, &in, sizeof in, out);
}

static int agent_do(struct env *e, gr_ref agent, uint32_t type,
                    struct agent_cmd c)
{
    return gr_send(e->sys, GR_REF_NONE, agent, type, &c, sizeof c);
}

/* Waits for the next report of type; other messages are skipped. */
static int next_report(struct env *e, uint32_t type, struct report *r)
{
    double end = test_now() + WAIT_LIMIT_S;
    while (test_now() < end) {
        gr_msg *m = NULL;
        if (gr_inbox_recv(e->inbox, &m, 100) != GR_OK)
            continue;
        int ok = m->type == type && read_payload(m, r, sizeof *r);
        gr_msg_free(m);
        if (ok)
            return 1;
    }
    return 0;
}

/* ---- more cases -------------------------------------------------------------
 */

/* Every way a node process can end, under every restart type: the exit
 * reason names the signal or status, and the restart type decides exactly
 * as for an actor child (exit status 0 is normal). */
static void exit_kinds_by_restart_type(void)
{
    static const struct {
        int32_t how;
        int32_t code;
        int64_t detail;
        const char *text;
    } kinds[] = {
        {CRASH_SEGV, GR_ESIGNAL, SIGSEGV, "signal SIGSEGV"},
        {CRASH_ABORT, GR_ESIGNAL, SIGABRT, "signal SIGABRT"},
        {CRASH_KILL, GR_ESIGNAL, SIGKILL, "signal SIGKILL"},
        {CRASH_EXIT0, GR_OK, 0, ""},
        {CRASH_EXIT1, GR_EEXITSTATUS, 1, "exit status 1"},
    };
    static const gr_restart types[] = {GR_PERMANENT, GR_TRANSIENT,
                                       GR_TEMPORARY};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (size_t t = 0; t < 3; t++) {
            struct env e;
            CHECK(node_env_open(&e));
            gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, types[t])};
            gr_ref sup;
            CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
            struct who w;
            FIND(&e, "n1", &w);
            crash(e.sys, e.inbox, w.self, kinds[k].how);
            bool clean = kinds[k].code == GR_OK;
            gr_reason why;
            CHECK(wait_event(clean ? GR_EV_CHILD_EXITED : GR_EV_CHILD_CRASHED,
                             "n1", 1, &why));
            CHECK_EQ(why.code, kinds[k].code);
            CHECK_EQ(why.detail, kinds[k].detail);
            CHECK(strcmp(why.text, kinds[k].text) == 0);
            bool restarts = types[t] == GR_PERMANENT ||
                            (types[t] == GR_TRANSIENT && !clean);
            CHECK(pid_gone(w.pid, 10));
            if (restarts) {
                CHECK(wait_event(GR_EV_CHILD_RESTARTED, "n1", 1, NULL));
                struct who w2;
                FIND(&e, "n1", &w2);
                CHECK(w2.pid != w.pid);
            } else {
                sleep_ms(SETTLE_MS);
                CHECK_EQ(count_events(GR_EV_CHILD_RESTARTED, "n1"), 0);
                gr_child_counts n;
                CHECK_EQ(gr_supervisor_count_children(e.sys, sup, &n), GR_OK);
                CHECK_EQ(n.active, 0);
                CHECK_EQ(n.specs, types[t] == GR_TEMPORARY ? 0 : 1);
            }
            env_close(&e);
        }
    }
}

/* The refs of a supervisor's children, in start order. */
static int children_of(gr_system *sys, gr_ref sup, gr_ref *out, size_t n)
{
    gr_child_info info[8];
    size_t count = 0;
    if (gr_supervisor_which_children(sys, sup, info, 8, &count) != GR_OK ||
        count != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        out[i] = info[i].ref;
    return 1;
}

/* One-for-all and rest-for-one with actor and node children mixed: a node
 * crash restarts exactly the siblings OTP says, processes included. */
static void strategies_with_mixed_children(void)
{
    static const gr_node_spec n3_spec = {.name = "n3", .root = "echo"};
    for (int round = 0; round < 2; round++) {
        gr_strategy strategy = round == 0 ? GR_ONE_FOR_ALL : GR_REST_FOR_ONE;
        struct env e;
        CHECK(node_env_open(&e));
        gr_child_spec kids[] = {
            {.id = "a",
             .behaviour = &agent_b,
             .arg = &(gr_ref){0},
             .arg_len = sizeof(gr_ref),
             .restart = GR_PERMANENT},
            NODE_CHILD("n1", n1_spec, GR_PERMANENT),
            {.id = "b",
             .behaviour = &agent_b,
             .arg = &(gr_ref){0},
             .arg_len = sizeof(gr_ref),
             .restart = GR_PERMANENT},
            NODE_CHILD("n3", n3_spec, GR_PERMANENT),
        };
        gr_ref sup, before[4], after[4];
        CHECK_EQ(start_sup(e.sys, strategy, 3, kids, 4, &sup), GR_OK);
        CHECK(children_of(e.sys, sup, before, 4));
        struct who w1, w3, w1b, w3b;
        FIND(&e, "n1", &w1);
        FIND(&e, "n3", &w3);
        crash(e.sys, e.inbox, w1.self, CRASH_KILL);
        CHECK(wait_event(GR_EV_CHILD_RESTARTED, "n1", 1, NULL));
        CHECK(wait_event(GR_EV_CHILD_RESTARTED, "n3", 1, NULL));
        CHECK(children_of(e.sys, sup, after, 4));
        /* a restarts only under one-for-all; b and n3 in both. */
        CHECK_EQ(gr_ref_eq(before[0], after[0]), strategy == GR_REST_FOR_ONE);
        for (int i = 1; i < 4; i++)
            CHECK(!gr_ref_eq(before[i], after[i]));
        FIND(&e, "n1", &w1b);
        FIND(&e, "n3", &w3b);
        CHECK(w1b.pid != w1.pid && w3b.pid != w3.pid);
        CHECK(pid_gone(w1.pid, 10) && pid_gone(w3.pid, 10));
        CHECK_EQ(count_events(GR_EV_CHILD_RESTARTED, "a"),
                 strategy == GR_ONE_FOR_ALL);
        env_close(&e);
        CHECK(pid_gone(w1b.pid, 10) && pid_gone(w3b.pid, 10));
    }
}

/* A node that keeps crashing exhausts the intensity: the supervisor gives
 * up, stops the rest and exits; no process is left. */
static void crash_loop_exceeds_intensity(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT),
                            NODE_CHILD("n2", n2_spec, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 2, kids, 2, &sup), GR_OK);
    struct who w2;
    FIND(&e, "n2", &w2);
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        struct who w;
        FIND(&e, "n1", &w);
        pids[i] = w.pid;
        crash(e.sys, e.inbox, w.self, CRASH_SEGV);
        CHECK(wait_event(GR_EV_CHILD_CRASHED, "n1", i + 1, NULL));
    }
    double end = test_now() + WAIT_LIMIT_S;
    gr_child_counts n;
    while (gr_supervisor_count_children(e.sys, sup, &n) != GR_ENOACTOR &&
           test_now() < end)
        sleep_ms(5);
    CHECK_EQ(gr_supervisor_count_children(e.sys, sup, &n), GR_ENOACTOR);
    CHECK_EQ(count_events(GR_EV_CHILD_RESTARTED, "n1"), 2);
    for (int i = 0; i < 3; i++)
        CHECK(pid_gone(pids[i], 10));
    CHECK(pid_gone(w2.pid, 10)); /* Stopped when the supervisor gave up. */
    env_close(&e);
}

/* Escalation: the node's own supervisor gives up, so its root exits with
 * shutdown and so does the process; the parent's supervisor sees a
 * shutdown exit of that child and restarts it (permanent). */
static void escalation_from_node_supervisor(void)
{
    static const gr_node_spec tree = {.name = "t1", .root = "tree"};
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("t1", tree, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    struct who w, w2;
    FIND(&e, "t1", &w);
    crash(e.sys, e.inbox, w.self, CRASH_FAIL);
    FIND(&e, "t1", &w2); /* Restarted inside the node: same process. */
    CHECK(w2.pid == w.pid && !gr_ref_eq(w2.self, w.self));
    crash(e.sys, e.inbox, w2.self, CRASH_FAIL); /* Past intensity 1. */
    gr_reason why;
    CHECK(wait_event(GR_EV_CHILD_EXITED, "t1", 1, &why));
    CHECK_EQ(why.code, GR_ESHUTDOWN);
    CHECK(wait_event(GR_EV_CHILD_RESTARTED, "t1", 1, NULL));
    CHECK(pid_gone(w.pid, 10));
    struct who w3;
    FIND(&e, "t1", &w3);
    CHECK(w3.pid != w.pid);
    env_close(&e);
    CHECK(pid_gone(w3.pid, 10));
}

/* Monitors, links and asks across the boundary fire with noconnection
 * when the node dies, at once rather than at the ask's timeout; a monitor
 * of an actor that does not exist there gives noproc; a fresh ask to the
 * dead incarnation fails when it is made. */
static void monitor_link_ask_across_nodes(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_TEMPORARY)};
    gr_ref sup, agent;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    CHECK_EQ(spawn_agent(&e, &agent), GR_OK);
    struct who w;
    FIND(&e, "n1", &w);
    struct report r;
    /* noproc from the node itself. */
    gr_ref ghost = w.self;
    ghost.serial += 1000;
    CHECK_EQ(
        agent_do(&e, agent, A_MONITOR, (struct agent_cmd){.target = ghost}),
        GR_OK);
    CHECK(next_report(&e, R_DOWN, &r));
    CHECK_EQ(r.code, GR_ENOACTOR);
    /* An ask answered across the boundary. */
    CHECK_EQ(agent_do(&e, agent, A_ASK,
                      (struct agent_cmd){.target = w.self,
                                         .type = T_ECHO,
                                         .timeout_ms = 10000}),
             GR_OK);
    CHECK(next_report(&e, R_ASK, &r));
    CHECK_EQ(r.code, GR_OK);
    CHECK_EQ(r.what, T_REPLY);
    /* Monitor, link, and an ask the node will never answer. */
    CHECK_EQ(
        agent_do(&e, agent, A_MONITOR, (struct agent_cmd){.target = w.self}),
        GR_OK);
    CHECK_EQ(agent_do(&e, agent, A_LINK, (struct agent_cmd){.target = w.self}),
             GR_OK);
    CHECK_EQ(agent_do(&e, agent, A_ASK,
                      (struct agent_cmd){.target = w.self,
                                         .type = T_CRASH,
                                         .payload = 0,
                                         .timeout_ms = 60000}),
             GR_OK);
    sleep_ms(SETTLE_MS);
    double t0 = test_now();
    CHECK_EQ(kill(w.pid, SIGKILL), 0);
    /* The three come in no promised order. */
    bool down = false, exited = false, failed = false;
    double end = test_now() + WAIT_LIMIT_S;
    while (!(down && exited && failed) && test_now() < end) {
        gr_msg *m = NULL;
        if (gr_inbox_recv(e.inbox, &m, 100) != GR_OK)
            continue;
        int ok = read_payload(m, &r, sizeof r);
        uint32_t type = m->type;
        gr_msg_free(m);
        CHECK(ok);
        CHECK_EQ(r.code, GR_ENOCONNECTION);
        CHECK(gr_ref_eq(r.from, w.self));
        CHECK(type == R_DOWN || type == R_EXIT ||
              (type == R_ASK && r.what == GR_MSG_ASK_FAILED));
        down |= type == R_DOWN;
        exited |= type == R_EXIT;
        failed |= type == R_ASK;
    }
    CHECK(down && exited && failed);
    CHECK(test_now() - t0 < 30); /* Not the ask's 60 s timeout. */
    /* The dead incarnation: an ask fails when made; a tell is a node_down
     * dead letter. */
    CHECK_EQ(agent_do(&e, agent, A_ASK,
                      (struct agent_cmd){.target = w.self,
                                         .type = T_ECHO,
                                         .timeout_ms = 60000}),
             GR_OK);
    CHECK(next_report(&e, R_ASK, &r));
    CHECK_EQ(r.code, GR_ENOCONNECTION);
    CHECK_EQ(r.detail, 1);
    uint64_t dead = stats_of(e.sys).dead_letters[GR_DL_NODE_DOWN];
    CHECK_EQ(gr_send(e.sys, GR_REF_NONE, w.self, T_WHO, NULL, 0),
             GR_ENOCONNECTION);
    CHECK_EQ(stats_of(e.sys).dead_letters[GR_DL_NODE_DOWN], dead + 1);
    CHECK_EQ(gr_send_name(e.sys, GR_REF_NONE, "echo@n1", T_WHO, NULL, 0),
             GR_ENOCONNECTION);
    env_close(&e);
    CHECK(pid_gone(w.pid, 10));
}

/* Nodes supervise nodes: a node whose supervisor starts a grandchild
 * process. The grandchild is reached through its parent (by ref and by a
 * lookup on every node); SIGKILLing the middle node takes the grandchild
 * down with it (EOF on its link), and the restart brings both back. */
static void tree_of_processes(void)
{
    static const gr_node_spec mid = {
        .name = "m1", .root = "tree", .arg = "gtree", .arg_len = 5};
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("m1", mid, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    struct who g, g2;
    FIND(&e, "g1", &g);
    gr_ref found;
    CHECK_EQ(gr_whereis_any(e.sys, "echo@g1", 5000, &found), GR_OK);
    CHECK(gr_ref_eq(found, g.self));
    CHECK_EQ(gr_whereis_any(e.sys, "echo", 5000, &found), GR_OK);
    CHECK(gr_ref_eq(found, g.self)); /* The only echo in the system. */
    CHECK_EQ(gr_whereis_any(e.sys, "nobody", 5000, &found), GR_ENOTFOUND);
    CHECK_EQ(gr_whereis_any(e.sys, "echo@m1", 5000, &found), GR_ENOTFOUND);
    gr_msg *reply = NULL;
    CHECK_EQ(gr_call(e.sys, g.self, T_ECHO, "deep", 4, 5000, &reply), GR_OK);
    CHECK(reply->len == 4 && memcmp(reply->data, "deep", 4) == 0);
    gr_msg_free(reply);
    /* The middle node's pid: the grandchild's parent. */
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)g.pid);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    int mid_pid = 0;
    CHECK(sscanf(strrchr(buf, ')') + 1, " %*c %d", &mid_pid) == 1);
    CHECK(mid_pid != getpid());
    CHECK_EQ(kill(mid_pid, SIGKILL), 0);
    CHECK(wait_event(GR_EV_CHILD_RESTARTED, "m1", 1, NULL));
    CHECK(pid_gone(mid_pid, 10));
    CHECK(pid_gone(g.pid, 20)); /* No orphan: it saw its link close. */
    FIND(&e, "g1", &g2);
    CHECK(g2.pid != g.pid);
    CHECK(g2.self.incarnation != g.self.incarnation);
    env_close(&e);
    CHECK(pid_gone(g2.pid, 20));
}

/* gr_call() from a plain thread to an actor whose node dies before it
 * answers returns GR_ENOCONNECTION at once, not at its timeout. */
static void call_fails_when_node_dies(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_TEMPORARY)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    struct who w;
    FIND(&e, "n1", &w);
    int32_t how = CRASH_SEGV;
    gr_msg *reply = NULL;
    double t0 = test_now();
    CHECK_EQ(gr_call(e.sys, w.self, T_CRASH, &how, sizeof how, 60000, &reply),
             GR_ENOCONNECTION);
    CHECK(reply == NULL);
    CHECK(test_now() - t0 < 30);
    CHECK_EQ(gr_call(e.sys, w.self, T_ECHO, "x", 1, 60000, &reply),
             GR_ENOCONNECTION);
    env_close(&e);
    CHECK(pid_gone(w.pid, 10));
}

/* Per sender-receiver order holds across the boundary, both ways at once,
 * and through the parent between two sibling nodes; nothing is lost or
 * duplicated. */
static void ordering_under_load(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT),
                            NODE_CHILD("n2", n2_spec, GR_PERMANENT)};
    gr_ref sup, agent;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 2, &sup), GR_OK);
    CHECK_EQ(spawn_agent(&e, &agent), GR_OK);
    struct who w1, w2;
    FIND(&e, "n1", &w1);
    FIND(&e, "n2", &w2);
    uint32_t n = (uint32_t)scaled(40000, 2000);
    /* node -> here and here -> node, concurrently. */
    struct burst b = {.to = agent, .n = n};
    CHECK_EQ(gr_send(e.sys, GR_REF_NONE, w1.self, T_BURST, &b, sizeof b),
             GR_OK);
    CHECK_EQ(agent_do(&e, agent, A_BURST,
                      (struct agent_cmd){.target = w1.self, .n = n}),
             GR_OK);
    double end = test_now() + WAIT_LIMIT_S;
    struct counted c = {0};
    while (test_now() < end) {
        CHECK_EQ(gr_send(e.sys, gr_inbox_ref(e.inbox), agent, A_COUNT, NULL, 0),
                 GR_OK);
        gr_msg *m = NULL;
        CHECK_EQ(gr_inbox_recv(e.inbox, &m, 5000), GR_OK);
        int ok = m->type == R_COUNT && read_payload(m, &c, sizeof c);
        gr_msg_free(m);
        if (ok && c.count >= n)
            break;
        sleep_ms(10);
    }
    CHECK_EQ(c.count, n);
    CHECK_EQ(c.out_of_order, 0);
    gr_msg *reply = NULL;
    end = test_now() + WAIT_LIMIT_S;
    struct counted at_node = {0};
    while (test_now() < end) {
        CHECK_EQ(gr_call(e.sys, w1.self, T_COUNT, NULL, 0, 5000, &reply),
                 GR_OK);
        CHECK(read_payload(reply, &at_node, sizeof at_node));
        gr_msg_free(reply);
        if (at_node.count >= n)
            break;
        sleep_ms(10);
    }
    CHECK_EQ(at_node.count, n);
    CHECK_EQ(at_node.out_of_order, 0);
    /* Sibling to sibling, through the parent: n1 forwards a burst request
     * to n2, and n2 bursts to n1. */
    CHECK_EQ(
        gr_send(e.sys, GR_REF_NONE, w1.self, T_FWD, &w2.self, sizeof w2.self),
        GR_OK);
    struct burst back = {.to = w1.self, .n = n};
    CHECK_EQ(gr_send(e.sys, GR_REF_NONE, w1.self, T_BURST, &back, sizeof back),
             GR_OK);
    end = test_now() + WAIT_LIMIT_S;
    while (test_now() < end) {
        CHECK_EQ(gr_call(e.sys, w1.self, T_COUNT, NULL, 0, 5000, &reply),
                 GR_OK);
        CHECK(read_payload(reply, &at_node, sizeof at_node));
        gr_msg_free(reply);
        if (at_node.count >= 2 * n)
            break;
        sleep_ms(10);
    }
    CHECK_EQ(at_node.count, 2 * n);
    CHECK_EQ(at_node.out_of_order, 0);
    env_close(&e);
}

/* A node that stops reading (SIGSTOP): sends to it are refused with
 * GR_EBACKPRESSURE and backpressure dead letters once the link's buffer is
 * full, so memory stays bounded; after SIGCONT every accepted message
 * arrives, in order. */
static void backpressure_when_node_stops_reading(void)
{
    struct env e;
    events_reset();
    gr_config cfg = {.workers = 2,
                     .no_signals = 1,
                     .log_fn = quiet_log,
                     .event_fn = record_event,
                     .link_buffer = 64 << 10};
    CHECK(env_open(&e, &cfg));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    struct who w;
    FIND(&e, "n1", &w);
    CHECK_EQ(kill(w.pid, SIGSTOP), 0);
    static uint8_t pad[1024];
    uint32_t accepted = 0;
    int rc = GR_OK;
    /* Bounded: the socket buffers plus 64 KiB hold far less than 64 MiB. */
    for (uint32_t i = 0; i < 65536 && rc == GR_OK; i++) {
        memcpy(pad, &accepted, sizeof accepted);
        rc = gr_send(e.sys, GR_REF_NONE, w.self, T_SEQ, pad, sizeof pad);
        accepted += rc == GR_OK;
    }
    CHECK_EQ(rc, GR_EBACKPRESSURE);
    CHECK_EQ(stats_of(e.sys).dead_letters[GR_DL_BACKPRESSURE], 1);
    CHECK(accepted > 0);
    CHECK((uint64_t)accepted * sizeof pad < (16u << 20));
    /* Still refused, still counted. */
    CHECK_EQ(gr_send(e.sys, GR_REF_NONE, w.self, T_SEQ, pad, sizeof pad),
             GR_EBACKPRESSURE);
    CHECK_EQ(stats_of(e.sys).dead_letters[GR_DL_BACKPRESSURE], 2);
    CHECK_EQ(kill(w.pid, SIGCONT), 0);
    double end = test_now() + WAIT_LIMIT_S;
    struct counted c = {0};
    while (test_now() < end) {
        gr_msg *reply = NULL;
        CHECK_EQ(gr_call(e.sys, w.self, T_COUNT, NULL, 0, 10000, &reply),
                 GR_OK);
        CHECK(read_payload(reply, &c, sizeof c));
        gr_msg_free(reply);
        if (c.count >= accepted)
            break;
        sleep_ms(10);
    }
    CHECK_EQ(c.count, accepted);
    CHECK_EQ(c.out_of_order, 0);
    env_close(&e);
    CHECK(pid_gone(w.pid, 10));
}

/* From a node (not the root): a tell to a sibling node that is gone fails
 * at once with GR_ENOCONNECTION, and a monitor of it fires with
 * noconnection, whether the news of its end has arrived or not. */
static void dead_sibling_seen_from_a_node(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT),
                            NODE_CHILD("n2", n2_spec, GR_TEMPORARY)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 2, &sup), GR_OK);
    struct who w1, w2;
    FIND(&e, "n1", &w1);
    FIND(&e, "n2", &w2);
    CHECK_EQ(kill(w2.pid, SIGKILL), 0);
    CHECK(wait_event(GR_EV_NODE_DOWN, "n2", 1, NULL));
    sleep_ms(SETTLE_MS); /* The NODE_DOWN reaches n1 too. */
    struct probe p = {.target = w2.self, .report_to = gr_inbox_ref(e.inbox)};
    CHECK_EQ(gr_send(e.sys, GR_REF_NONE, w1.self, T_PROBE, &p, sizeof p),
             GR_OK);
    struct probed r;
    CHECK_EQ(recv_exact(e.inbox, T_PROBED, &r, sizeof r), GR_OK);
    CHECK_EQ(r.tell_rc, GR_ENOCONNECTION);
    CHECK_EQ(r.monitor_rc, GR_OK);
    CHECK_EQ(recv_exact(e.inbox, T_PROBED, &r, sizeof r), GR_OK);
    CHECK_EQ(r.down, 1);
    CHECK_EQ(r.down_code, GR_ENOCONNECTION);
    env_close(&e);
}

/* Node names are unique in a system: a second child with a name already
 * up fails its start with GR_EEXIST before any process is started; bad
 * names and specs are GR_EINVAL. */
static void node_names_checked(void)
{
    static const gr_node_spec bad[] = {{.name = "root", .root = "echo"},
                                       {.name = "a@b", .root = "echo"},
                                       {.name = "", .root = "echo"},
                                       {.name = "x", .root = NULL}};
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("a", n1_spec, GR_PERMANENT),
                            NODE_CHILD("b", n1_spec, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 2, &sup), GR_EEXIST);
    /* The first one was stopped as the start failed, and is reaped. */
    double end = test_now() + WAIT_LIMIT_S;
    while (children_alive() != 0 && test_now() < end)
        sleep_ms(2);
    CHECK_EQ(children_alive(), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gr_child_spec one[] = {NODE_CHILD("c", bad[i], GR_PERMANENT)};
        CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, one, 1, &sup), GR_EINVAL);
    }
    env_close(&e);
}

/* A process that never answers the handshake fails its start with
 * GR_ETIMEDOUT after start_timeout_ms, and is reaped. */
static void silent_child_times_out(void)
{
    static const char *const argv[] = {"/proc/self/exe", "--silent-node", NULL};
    static const gr_node_spec silent = {.name = "silent",
                                        .root = "echo",
                                        .argv = argv,
                                        .start_timeout_ms = 300};
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("silent", silent, GR_PERMANENT)};
    gr_ref sup;
    double t0 = test_now();
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_ETIMEDOUT);
    CHECK(test_now() - t0 < 10);
    env_close(&e);
    CHECK_EQ(children_alive(), 0);
}

/* A frame bigger than link_buffer still goes when the link is idle (it
 * could never fit otherwise); a second one behind it is backpressure. */
static void frame_bigger_than_link_buffer(void)
{
    struct env e;
    events_reset();
    gr_config cfg = {.workers = 2,
                     .no_signals = 1,
                     .log_fn = quiet_log,
                     .event_fn = record_event,
                     .link_buffer = 64 << 10};
    CHECK(env_open(&e, &cfg));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    struct who w;
    FIND(&e, "n1", &w);
    static uint8_t big[1 << 20]; /* 16 x link_buffer. */
    CHECK_EQ(gr_send(e.sys, GR_REF_NONE, w.self, T_SEQ, big, sizeof big),
             GR_OK);
    /* Behind it, until it has left, even a small one waits its turn. */
    gr_msg *reply = NULL;
    struct counted c = {0};
    double end = test_now() + WAIT_LIMIT_S;
    while (c.count < 1 && test_now() < end) {
        int rc = gr_call(e.sys, w.self, T_COUNT, NULL, 0, 5000, &reply);
        if (rc == GR_EBACKPRESSURE) {
            sleep_ms(1);
            continue;
        }
        CHECK_EQ(rc, GR_OK);
        CHECK(read_payload(reply, &c, sizeof c));
        gr_msg_free(reply);
    }
    CHECK_EQ(c.count, 1);
    env_close(&e);
}

/* A frame left half written in a link's buffer (a SIGSTOPped node) does
 * not hide what queued behind it: when the node dies the rest become
 * node_down dead letters; and at shutdown a node whose link holds a half
 * written frame still gets its stop request (after the rest of the
 * frame), and stops cleanly. */
static void half_written_frames(void)
{
    static uint8_t big[4 << 20];
    for (int round = 0; round < 2; round++) {
        struct env e;
        CHECK(node_env_open(&e));
        gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_TEMPORARY)};
        gr_ref sup;
        CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
        struct who w;
        FIND(&e, "n1", &w);
        CHECK_EQ(kill(w.pid, SIGSTOP), 0);
        CHECK_EQ(gr_send(e.sys, GR_REF_NONE, w.self, T_SEQ, big, sizeof big),
                 GR_OK);
        for (int i = 0; i < 20; i++)
            CHECK_EQ(gr_send(e.sys, GR_REF_NONE, w.self, T_SEQ, &i, sizeof i),
                     GR_OK);
        if (round == 0) {
            CHECK_EQ(kill(w.pid, SIGKILL), 0);
            CHECK(wait_event(GR_EV_NODE_DOWN, "n1", 1, NULL));
            CHECK(stats_of(e.sys).dead_letters[GR_DL_NODE_DOWN] >= 20);
            env_close(&e);
        } else {
            CHECK_EQ(kill(w.pid, SIGCONT), 0);
            double t0 = test_now();
            env_close(&e);
            CHECK(test_now() - t0 < 4); /* Not the 5 s before SIGKILL. */
            gr_reason why;
            CHECK(wait_event(GR_EV_NODE_DOWN, "n1", 1, &why));
            CHECK_EQ(why.code, GR_OK);
        }
        CHECK(pid_gone(w.pid, 10));
    }
}

/* Messages still queued on a link when its node dies become node_down
 * dead letters (those already in the socket's buffers are lost with the
 * process, uncounted). */
static void in_flight_become_node_down(void)
{
    struct env e;
    events_reset();
    gr_config cfg = {.workers = 2,
                     .no_signals = 1,
                     .log_fn = quiet_log,
                     .event_fn = record_event,
                     .link_buffer = 64 << 10};
    CHECK(env_open(&e, &cfg));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_TEMPORARY)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    struct who w;
    FIND(&e, "n1", &w);
    CHECK_EQ(kill(w.pid, SIGSTOP), 0);
    static uint8_t pad[1024];
    uint32_t accepted = 0;
    while (accepted < 65536 &&
           gr_send(e.sys, GR_REF_NONE, w.self, T_SEQ, pad, sizeof pad) == GR_OK)
        accepted++;
    CHECK_EQ(stats_of(e.sys).dead_letters[GR_DL_NODE_DOWN], 0);
    CHECK_EQ(kill(w.pid, SIGKILL), 0);
    CHECK(wait_event(GR_EV_NODE_DOWN, "n1", 1, NULL));
    uint64_t dropped = stats_of(e.sys).dead_letters[GR_DL_NODE_DOWN];
    CHECK(dropped >= (64 << 10) / sizeof pad / 2); /* The queue's worth. */
    CHECK(dropped <= accepted);
    env_close(&e);
}

/* Bytes that are no frame, a header announcing 4 GiB (refused before
 * anything is allocated), a wrong protocol version, each written into a
 * link: that link is closed with a protocol error naming it, the node
 * killed and restarted; a sibling node and its link are untouched. */
static void bad_frames_in_a_link(void)
{
    static const struct {
        int32_t how;
        const char *text;
    } bad[] = {{CRASH_GARBAGE, "expected an array"},
               {CRASH_HUGE, "exceeds"},
               {CRASH_VERSION, "wrong protocol version"}};
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT),
                            NODE_CHILD("n2", n2_spec, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 5, kids, 2, &sup), GR_OK);
    struct who w2;
    FIND(&e, "n2", &w2);
    for (int i = 0; i < 3; i++) {
        struct who w1;
        FIND(&e, "n1", &w1);
        crash(e.sys, e.inbox, w1.self, bad[i].how);
        gr_reason why;
        CHECK(wait_event(GR_EV_CHILD_CRASHED, "n1", i + 1, &why));
        CHECK_EQ(why.code, GR_EPROTO);
        if (strstr(why.text, bad[i].text) == NULL)
            fprintf(stderr, "  reason text: %s\n", why.text);
        CHECK(strstr(why.text, bad[i].text) != NULL);
        CHECK(wait_event(GR_EV_CHILD_RESTARTED, "n1", i + 1, NULL));
        CHECK(pid_gone(w1.pid, 10));
    }
    struct who w1b, w2b;
    FIND(&e, "n1", &w1b);
    FIND(&e, "n2", &w2b);
    CHECK(w2b.pid == w2.pid && gr_ref_eq(w2b.self, w2.self));
    CHECK_EQ(count_events(GR_EV_CHILD_CRASHED, "n2"), 0);
    env_close(&e);
}

/* A process that answers the handshake with the wrong secret is refused:
 * the child's start fails with GR_EPROTO and the process is reaped. */
static void wrong_secret_refused(void)
{
    static const char *const argv[] = {"/proc/self/exe", "--fake-node", NULL};
    static const gr_node_spec fake = {
        .name = "fake", .root = "echo", .argv = argv};
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("fake", fake, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_EPROTO);
    env_close(&e);
    CHECK_EQ(children_alive(), 0); /* Reaped. */
}

/* The fake node: reads the HELLO, answers with a zero secret. */
static int fake_node(void)
{
    const char *v = getenv("GROVE_NODE_FD");
    if (v == NULL)
        return 2;
    int fd = atoi(v);
    uint8_t buf[4096];
    if (read(fd, buf, sizeof buf) <= 0)
        return 3;
    uint8_t welcome[6 + 1 + 18 + 3] = {1, 2, 0, 0, 0, 22, 0x94, 0xc4, 16};
    welcome[6 + 1 + 18] = 1;     /* node */
    welcome[6 + 1 + 18 + 1] = 1; /* incarnation */
    welcome[6 + 1 + 18 + 2] = 1; /* pid */
    if (write(fd, welcome, sizeof welcome) != (ssize_t)sizeof welcome)
        return 4;
    (void)read(fd, buf, sizeof buf); /* Until the parent hangs up. */
    return 0;
}

/* The parent process is SIGKILLed: its node children exit by themselves
 * (no orphans). This test process is a subreaper, so the orphaned node is
 * reparented here and its end can be waited for. */
static void parent_sigkilled_children_exit(void)
{
    CHECK_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    int pfd[2];
    CHECK_EQ(pipe(pfd), 0);
    pid_t parent = fork();
    CHECK(parent >= 0);
    if (parent == 0) {
        close(pfd[0]);
        gr_system *sys;
        gr_config cfg = {.workers = 2, .no_signals = 1, .log_fn = quiet_log};
        if (gr_system_start(&cfg, &sys) != GR_OK)
            _exit(2);
        gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT)};
        gr_ref sup;
        gr_inbox *in;
        struct who w;
        if (start_sup(sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup) != GR_OK ||
            gr_inbox_open(sys, &in) != GR_OK ||
            !find_echo(sys, in, "n1", &w, 20))
            _exit(3);
        int32_t pid = w.pid;
        if (write(pfd[1], &pid, sizeof pid) != sizeof pid)
            _exit(4);
        for (;;)
            pause();
    }
    close(pfd[1]);
    int32_t node_pid = 0;
    CHECK_EQ(read(pfd[0], &node_pid, sizeof node_pid), sizeof node_pid);
    close(pfd[0]);
    CHECK_EQ(kill(parent, SIGKILL), 0);
    int status;
    CHECK_EQ(waitpid(parent, &status, 0), parent);
    /* The node is ours now; it must end on its own. */
    double end = test_now() + WAIT_LIMIT_S;
    pid_t got = 0;
    while (got == 0 && test_now() < end) {
        got = waitpid(node_pid, &status, WNOHANG);
        if (got == 0)
            sleep_ms(5);
    }
    CHECK_EQ(got, node_pid);
    CHECK_EQ(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

/* Sanitizer reports of node processes go to files under this directory
 * (their stderr is ours, but their exit status is not checked by every
 * case); main fails the run if any appear. */
static char san_dir[] = "/tmp/grove-node-san-XXXXXX";

static void route_sanitizer_reports(void)
{
    if (mkdtemp(san_dir) == NULL)
        return;
    static const char *const vars[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS",
                                       "TSAN_OPTIONS"};
    for (size_t i = 0; i < 3; i++) {
        char buf[1024];
        const char *old = getenv(vars[i]);
        snprintf(buf, sizeof buf, "%s%slog_path=%s/report", old ? old : "",
                 old && old[0] ? ":" : "", san_dir);
        setenv(vars[i], buf, 1);
    }
}

/* Prints and removes the reports; returns how many there were. */
static int sanitizer_reports(void)
{
    int n = 0;
    DIR *d = opendir(san_dir);
    if (d == NULL)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[512], line[512];
        snprintf(path, sizeof path, "%s/%s", san_dir, de->d_name);
        FILE *f = fopen(path, "r");
        fprintf(stderr, "node sanitizer report %s:\n", path);
        while (f != NULL && fgets(line, sizeof line, f) != NULL)
            fputs(line, stderr);
        if (f != NULL)
            fclose(f);
        remove(path);
        n++;
    }
    closedir(d);
    rmdir(san_dir);
    return n;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--fake-node") == 0)
        return fake_node();
    if (argc > 1 && strcmp(argv[1], "--silent-node") == 0) {
        pause(); /* Never answers; killed when the start gives up. */
        return 0;
    }
    node_main_or_continue();
    route_sanitizer_reports();
    static const struct test_case cases[] = {
        {"start_ask_shutdown", start_ask_shutdown},
        {"sigsegv_restarts", sigsegv_restarts},
        {"terminate_child_shutdown_then_kill",
         terminate_child_shutdown_then_kill},
        {"exit_kinds_by_restart_type", exit_kinds_by_restart_type},
        {"strategies_with_mixed_children", strategies_with_mixed_children},
        {"crash_loop_exceeds_intensity", crash_loop_exceeds_intensity},
        {"escalation_from_node_supervisor", escalation_from_node_supervisor},
        {"monitor_link_ask_across_nodes", monitor_link_ask_across_nodes},
        {"call_fails_when_node_dies", call_fails_when_node_dies},
        {"tree_of_processes", tree_of_processes},
        {"ordering_under_load", ordering_under_load},
        {"backpressure_when_node_stops_reading",
         backpressure_when_node_stops_reading},
        {"in_flight_become_node_down", in_flight_become_node_down},
        {"half_written_frames", half_written_frames},
        {"frame_bigger_than_link_buffer", frame_bigger_than_link_buffer},
        {"dead_sibling_seen_from_a_node", dead_sibling_seen_from_a_node},
        {"silent_child_times_out", silent_child_times_out},
        {"node_names_checked", node_names_checked},
        {"bad_frames_in_a_link", bad_frames_in_a_link},
        {"wrong_secret_refused", wrong_secret_refused},
        {"parent_sigkilled_children_exit", parent_sigkilled_children_exit},
    };
    int rc = test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
    if (sanitizer_reports() != 0) {
        fprintf(stderr, "FAIL: a node process had sanitizer reports\n");
        rc = 1;
    }
    return rc;
}
