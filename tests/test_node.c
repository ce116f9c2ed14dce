/*
 * Node tests, lifecycle: supervisors starting real OS processes (this
 * program, re-entered through gr_node_main), their ends (signals, exit
 * statuses, shutdown) handled exactly as actor children's exits under
 * every restart type and strategy, trees of processes, bad starts, and no
 * orphans. Every process started is reaped; bounded waits, no timing
 * assertions. Messaging across nodes is in test_node_msg.c.
 */
#include <spawn.h>

#include "node_env.h"

extern char **environ;

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
    CHECK_EQ(
        gr_supervisor_which_children(e.sys, sup, SUP_WAIT, &info, 1, &count),
        GR_OK);
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
    CHECK_EQ(
        gr_supervisor_terminate_child(e.sys, sup, "n1", GR_REF_NONE, SUP_WAIT),
        GR_OK);
    gr_reason why;
    CHECK(wait_event(GR_EV_NODE_DOWN, "n1", 1, &why));
    CHECK_EQ(why.code, GR_OK); /* It exited by itself, status 0. */
    CHECK(pid_gone(w.pid, 10));
    CHECK_EQ(gr_supervisor_restart_child(e.sys, sup, "n1", SUP_WAIT, NULL),
             GR_OK);
    FIND(&e, "n1", &w);
    CHECK(stop_process(w.pid));
    double t0 = test_now();
    CHECK_EQ(
        gr_supervisor_terminate_child(e.sys, sup, "n1", GR_REF_NONE, SUP_WAIT),
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

/* A node child killed with SIGKILL is one log line for the crash (the
 * supervisor's, naming the signal) and one for the restart; the node's
 * own down and up events show at debug level only. Refs of the node's
 * actors print with its name while it is up. */
static void node_kill_is_one_line(void)
{
    struct capture cap;
    struct env e;
    CHECK(node_env_open_captured(&e, &cap));
    gr_ref sup;
    struct who w;
    CHECK(start_n1(&e, GR_PERMANENT, &sup, &w));
    char buf[GR_REF_FORMAT_MAX], want[GR_REF_FORMAT_MAX];
    snprintf(want, sizeof want, "<%u.%u@n1>", (unsigned)w.self.serial,
             (unsigned)(w.self.serial >> 32));
    CHECK(strcmp(gr_ref_format(e.sys, w.self, buf, sizeof buf), want) == 0);
    CHECK_EQ(kill(w.pid, SIGKILL), 0);
    double end = test_now() + WAIT_LIMIT_S;
    while (capture_count(&cap, GR_LOG_INFO, "restarted as", NULL) == 0 &&
           test_now() < end)
        sleep_ms(1);
    CHECK_EQ(capture_count(&cap, GR_LOG_INFO, "\"n1\" restarted as", NULL), 1);
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, "\"n1\"", "SIGKILL"), 1);
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "node n1", NULL), 0);
    CHECK_EQ(capture_count(&cap, GR_LOG_INFO, "node n1", NULL), 0);
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, "crash <", NULL), 0);
    /* The killed incarnation's ref now prints with its incarnation, the
     * new one's without. */
    struct who w2;
    CHECK(find_echo(e.sys, e.inbox, "n1", &w2, 20));
    CHECK(strcmp(gr_ref_format(e.sys, w2.self, buf, sizeof buf), want) == 0);
    snprintf(want, sizeof want, "<%u.%u@n1/%x>", (unsigned)w.self.serial,
             (unsigned)(w.self.serial >> 32), (unsigned)w.self.incarnation);
    CHECK(strcmp(gr_ref_format(e.sys, w.self, buf, sizeof buf), want) == 0);
    if (test_failed_)
        capture_dump(&cap);
    env_close(&e);
}

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
        /* The root actor crashes: the parent learns its code. */
        {CRASH_FAIL, GR_EFAILED, GR_NODE_EXIT_CRASH - GR_EFAILED,
         "its root crashed"},
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
                CHECK_EQ(gr_supervisor_count_children(e.sys, sup, SUP_WAIT, &n),
                         GR_OK);
                CHECK_EQ(n.active, 0);
                CHECK_EQ(n.specs, types[t] == GR_TEMPORARY ? 0 : 1);
            }
            env_close(&e);
        }
    }
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
    while (gr_supervisor_count_children(e.sys, sup, SUP_WAIT, &n) !=
               GR_ENOACTOR &&
           test_now() < end)
        sleep_ms(5);
    CHECK_EQ(gr_supervisor_count_children(e.sys, sup, SUP_WAIT, &n),
             GR_ENOACTOR);
    CHECK_EQ(count_events(GR_EV_CHILD_RESTARTED, "n1"), 2);
    for (int i = 0; i < 3; i++)
        CHECK(pid_gone(pids[i], 10));
    CHECK(pid_gone(w2.pid, 10)); /* Stopped when the supervisor gave up. */
    env_close(&e);
}

/* Escalation: the node's own supervisor gives up, so its root exits with
 * shutdown and so does the process; the parent's supervisor sees a
 * shutdown exit of that child and restarts it (permanent). The root is a
 * behaviour that starts the supervisor ("tree"), or the supervisor itself
 * with the spec its gr_node_root entry holds ("sup"). */
static void escalation_from_node_supervisor(void)
{
    static const gr_node_spec tree = {.name = "t1", .root = "tree"};
    static const gr_node_spec sup_root = {.name = "t1", .root = "sup"};
    const gr_node_spec *roots[] = {&tree, &sup_root};
    for (int r = 0; r < 2; r++) {
        struct env e;
        CHECK(node_env_open(&e));
        gr_child_spec kids[] = {NODE_CHILD("t1", *roots[r], GR_PERMANENT)};
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
}

/* A lookup of a name on a node, made right after the node's process is
 * SIGKILLed, finds the restarted node's actor (its supervisor restarts
 * it within milliseconds) instead of waiting out its whole timeout for
 * an answer that the dead process can never give. */
static void whereis_right_after_a_kill(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_ref sup, found = GR_REF_NONE;
    struct who w;
    CHECK(start_n1(&e, GR_PERMANENT, &sup, &w));
    CHECK_EQ(kill(w.pid, SIGKILL), 0);
    double t0 = test_now();
    int rc = gr_whereis_any(e.sys, "echo@n1", 20000, &found);
    double took = test_now() - t0;
    if (took >= 10)
        fprintf(stderr, "  the lookup took %.1f s\n", took);
    CHECK_EQ(rc, GR_OK);
    CHECK(!gr_ref_eq(found, w.self)); /* The new incarnation's. */
    CHECK(took < 10);
    env_close(&e);
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
    /* Right after the start, before the grandchild's NODE_UP has
     * reached this process: the lookup waits for the node. */
    gr_ref found;
    CHECK_EQ(gr_whereis_any(e.sys, "echo@g1", 5000, &found), GR_OK);
    struct who g, g2;
    FIND(&e, "g1", &g);
    CHECK_EQ(gr_whereis_any(e.sys, "echo@g1", 5000, &found), GR_OK);
    CHECK(gr_ref_eq(found, g.self));
    CHECK_EQ(gr_whereis_any(e.sys, "echo", 5000, &found), GR_OK);
    CHECK(gr_ref_eq(found, g.self)); /* The only echo in the system. */
    CHECK_EQ(gr_whereis_any(e.sys, "nobody", 5000, &found), GR_ENOTFOUND);
    CHECK_EQ(gr_whereis_any(e.sys, "echo@m1", 5000, &found), GR_ENOTFOUND);
    /* A node that never comes: not found once the timeout has passed. */
    CHECK_EQ(gr_whereis_any(e.sys, "echo@nowhere", 50, &found), GR_ENOTFOUND);
    gr_msg *reply = NULL;
    CHECK_EQ(gr_call(e.sys, g.self, T_ECHO, "deep", 4, 5000, &reply), GR_OK);
    CHECK(reply->len == 4 && memcmp(reply->data, "deep", 4) == 0);
    gr_msg_free(reply);
    /* The middle node's pid: the grandchild's parent. */
    proc_stat st;
    CHECK(proc_stat_read((int)g.pid, &st));
    int mid_pid = st.ppid;
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

/* Node names are unique in a system: a second child with a name already
 * up fails its start with GR_EEXIST before any process is started; bad
 * names (the root's, '@', empty, unprintable) and specs are GR_EINVAL. */
static void node_names_checked(void)
{
    static const gr_node_spec bad[] = {
        {.name = "root", .root = "echo"}, {.name = "a@b", .root = "echo"},
        {.name = "", .root = "echo"},     {.name = "x", .root = NULL},
        {.name = "x", .root = ""},        {.name = "a\nb", .root = "echo"},
        {.name = "\xff", .root = "echo"}, {.name = "x", .root = "e\ncho"}};
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("a", n1_spec, GR_PERMANENT),
                            NODE_CHILD("b", n1_spec, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 2, &sup), GR_EEXIST);
    /* The first one was stopped as the start failed, and is reaped (its
     * program's fork server template stays until the system stops). */
    double end = test_now() + WAIT_LIMIT_S;
    while (nodes_alive() != 0 && test_now() < end)
        sleep_ms(2);
    CHECK_EQ(nodes_alive(), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gr_child_spec one[] = {NODE_CHILD("c", bad[i], GR_PERMANENT)};
        CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, one, 1, &sup), GR_EINVAL);
    }
    env_close(&e);
}

/* A refused node spec says which field is wrong. */
static void node_spec_refusal_says_why(void)
{
    static const gr_node_spec root_named = {.name = "root", .root = "echo"};
    static const gr_node_spec no_root = {.name = "x", .root = NULL};
    struct capture cap;
    struct env e;
    CHECK(node_env_open_captured(&e, &cap));
    gr_ref sup;
    gr_child_spec a[] = {NODE_CHILD("c", root_named, GR_PERMANENT)};
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, a, 1, &sup), GR_EINVAL);
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, "node spec refused: name",
                           "\"root\""),
             1);
    gr_child_spec b[] = {NODE_CHILD("c", no_root, GR_PERMANENT)};
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, b, 1, &sup), GR_EINVAL);
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, "node spec refused: root", NULL),
             1);
    /* A supervisor root given its spec (pointers) by the parent: the node
     * refuses to start it, and exits (it used to crash on the pointers,
     * or run when addresses happened to match). */
    static const gr_node_spec sup_arg = {.name = "c",
                                         .root = "sup",
                                         .arg = &tree_spec,
                                         .arg_len = sizeof tree_spec};
    gr_child_spec c[] = {NODE_CHILD("c", sup_arg, GR_PERMANENT)};
    CHECK(start_sup(e.sys, GR_ONE_FOR_ONE, 3, c, 1, &sup) != GR_OK);
    /* It exits (or the parent, seeing its link close first, kills it),
     * but never dies of SIGSEGV on the parent's pointers. */
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, "node c failed to start", NULL),
             1);
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, "node c failed to start",
                           "signal 11"),
             0);
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
/* The parent process of parent_sigkilled_children_exit: starts a node,
 * writes its pid to fd, and waits to be killed. */
static int parent_of_node(int fd)
{
    gr_system *sys;
    gr_config cfg = {.workers = 2, .no_signals = 1, .log_fn = quiet_log};
    if (gr_system_start(&cfg, &sys) != GR_OK)
        return 2;
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT)};
    gr_ref sup;
    gr_inbox *in;
    struct who w;
    if (start_sup(sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup) != GR_OK ||
        gr_inbox_open(sys, &in) != GR_OK || !find_echo(sys, in, "n1", &w, 20))
        return 3;
    int32_t pid = w.pid;
    if (write(fd, &pid, sizeof pid) != sizeof pid)
        return 4;
    for (;;)
        pause();
}

static void parent_sigkilled_children_exit(void)
{
    CHECK_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    int pfd[2];
    CHECK_EQ(pipe(pfd), 0);
    /* The parent is this program run afresh (not a fork of this
     * multi-threaded process): see parent_of_node(). */
    char fd_arg[16];
    snprintf(fd_arg, sizeof fd_arg, "%d", pfd[1]);
    char *const argv[] = {"/proc/self/exe", "--parent-of-node", fd_arg, NULL};
    pid_t parent;
    CHECK_EQ(posix_spawn(&parent, "/proc/self/exe", NULL, NULL, argv, environ),
             0);
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

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--fake-node") == 0)
        return fake_node();
    if (argc > 2 && strcmp(argv[1], "--parent-of-node") == 0)
        return parent_of_node(atoi(argv[2]));
    if (argc > 1 && strcmp(argv[1], "--silent-node") == 0) {
        pause(); /* Never answers; killed when the start gives up. */
        return 0;
    }
    static const struct test_case cases[] = {
        {"start_ask_shutdown", start_ask_shutdown},
        {"terminate_child_shutdown_then_kill",
         terminate_child_shutdown_then_kill},
        {"sigsegv_restarts", sigsegv_restarts},
        {"node_kill_is_one_line", node_kill_is_one_line},
        {"whereis_right_after_a_kill", whereis_right_after_a_kill},
        {"exit_kinds_by_restart_type", exit_kinds_by_restart_type},
        {"strategies_with_mixed_children", strategies_with_mixed_children},
        {"crash_loop_exceeds_intensity", crash_loop_exceeds_intensity},
        {"escalation_from_node_supervisor", escalation_from_node_supervisor},
        {"tree_of_processes", tree_of_processes},
        {"node_names_checked", node_names_checked},
        {"node_spec_refusal_says_why", node_spec_refusal_says_why},
        {"silent_child_times_out", silent_child_times_out},
        {"wrong_secret_refused", wrong_secret_refused},
        {"parent_sigkilled_children_exit", parent_sigkilled_children_exit},
    };
    return node_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
