/*
 * What a DOWN says and when it comes: exactly one per monitor, carrying
 * the target's exit reason (normal, stopped, crashed, or GR_ENOACTOR when
 * the target was gone before the request reached it), from init,
 * handlers and terminate, several monitors at once, and behind every
 * message the target sent the watcher. Public API only.
 */
#include "monitor_env.h"

/* ---- exit reasons ---------------------------------------------------------
 */

/* One watcher, one target: the target ends with code (a PROBE_END code, or
 * 0 for gr_stop from outside); the watcher gets exactly one DOWN with
 * reason, and afterwards the monitor is gone. */
static void one_down(unsigned workers, int32_t code, int reason)
{
    struct env e;
    CHECK(open_env(&e, workers));
    gr_ref w, t;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    uint64_t id;
    CHECK_EQ(monitor_n(w, t, 1, &id), GR_OK);
    CHECK(id != 0);
    if (code == 0)
        CHECK_EQ(gr_stop(e.sys, t), GR_OK);
    else
        CHECK_EQ(probe_end(t, code), GR_OK);
    CHECK(next_down(w, t, id, reason));
    CHECK(probe_quiet_for(50));
    /* Handled, so no longer active. */
    CHECK_EQ(demonitor(w, id), GR_ENOTFOUND);
    CHECK_EQ(dead_total(&e), 0);
    close_env(&e);
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
    one_down(2, PROBE_STOP_SELF, GR_ESHUTDOWN);
}

/* A crash gives the code the handler returned; a positive non-GR_STOP
 * return, like the terminate reason, becomes GR_EFAILED. */
static void test_reason_crash(void)
{
    one_down(2, PROBE_CRASH, PROBE_CRASH);
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
    CHECK(open_env(&e, 2));
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
        CHECK_EQ(monitor_n(w, gone[i], 1, &id), GR_OK);
        /* Another node, not connected: noconnection, as in OTP. */
        CHECK(
            next_down(w, gone[i], id, i == 2 ? GR_ENOCONNECTION : GR_ENOACTOR));
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
    CHECK(open_env(&e, 4));
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
            CHECK_EQ(probe_tell(w, MSG_RACE, &c, sizeof c), GR_OK);
            struct report r;
            CHECK(probe_take(MSG_MONITORED, &r, sizeof r));
            CHECK_EQ(r.rc[0], GR_OK);
            CHECK(next_down(w, t, r.id[0], reasons[k]));
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
    CHECK(open_env(&e, 2));
    gr_ref t, gone;
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    CHECK_EQ(spawn_node(&e, &gone), GR_OK);
    /* Exits are counted from here on: gone, t, t3, the failed init, t2. */
    uint64_t exited = stats_of(e.sys).exited;
    CHECK_EQ(gr_stop(e.sys, gone), GR_OK);
    CHECK(exits_reach(&e, exited, 1));

    struct node_arg a = {.init_target = {t, gone}, .n_init = 2};
    gr_ref w;
    CHECK_EQ(gr_system_spawn(e.sys, &node_b, &a, sizeof a, &w), GR_OK);
    struct report r;
    CHECK(probe_take(MSG_MONITORED, &r, sizeof r));
    CHECK(gr_ref_eq(r.self, w));
    CHECK_EQ(r.rc[0], GR_OK);
    CHECK_EQ(r.rc[1], GR_OK);
    CHECK(r.id[0] != 0 && r.id[1] != 0 && r.id[0] != r.id[1]);
    CHECK(next_down(w, gone, r.id[1], GR_ENOACTOR));
    CHECK(probe_quiet_for(20));
    CHECK_EQ(gr_stop(e.sys, t), GR_OK);
    CHECK(next_down(w, t, r.id[0], GR_ESHUTDOWN));

    /* The same from an init that runs on a worker: a node spawns it. */
    gr_ref parent, t3;
    CHECK_EQ(spawn_node(&e, &parent), GR_OK);
    CHECK_EQ(spawn_node(&e, &t3), GR_OK);
    a.init_target[0] = t3;
    a.n_init = 1;
    CHECK_EQ(probe_tell(parent, MSG_SPAWN, &a, sizeof a), GR_OK);
    struct report child;
    CHECK(probe_take(MSG_MONITORED, &child, sizeof child));
    CHECK_EQ(child.rc[0], GR_OK);
    CHECK(probe_take(MSG_SPAWNED, &r, sizeof r));
    CHECK_EQ(r.rc[0], GR_OK);
    CHECK(gr_ref_eq(r.from, child.self));
    CHECK_EQ(probe_end(t3, GR_STOP), GR_OK);
    CHECK(next_down(child.self, t3, child.id[0], GR_OK));
    /* gone, t and t3 exited. */
    CHECK(exits_reach(&e, exited, 3));

    /* A failed init's monitor dies with it. */
    gr_ref t2;
    CHECK_EQ(spawn_node(&e, &t2), GR_OK);
    a.init_target[0] = t2;
    a.n_init = 1;
    a.init_fail = 1;
    CHECK_EQ(gr_system_spawn(e.sys, &node_b, &a, sizeof a, NULL), GR_EINVAL);
    CHECK(probe_take(MSG_MONITORED, &r, sizeof r));
    CHECK_EQ(r.rc[0], GR_OK);
    CHECK(exits_reach(&e, exited, 4));
    CHECK_EQ(probe_end(t2, PROBE_CRASH), GR_OK);
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
    CHECK(open_env(&e, 2));
    gr_ref w, t, gone, other;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    CHECK_EQ(spawn_node(&e, &gone), GR_OK);
    CHECK_EQ(spawn_node(&e, &other), GR_OK);
    uint64_t exited = stats_of(e.sys).exited;
    CHECK_EQ(gr_stop(e.sys, gone), GR_OK);
    CHECK(exits_reach(&e, exited, 1));
    uint64_t alive_id, other_id;
    CHECK_EQ(monitor_n(w, t, 1, &alive_id), GR_OK);
    CHECK_EQ(monitor_n(other, t, 1, &other_id), GR_OK);
    struct arm arm = {.target = t, .dead = gone};
    CHECK_EQ(probe_tell(w, MSG_ARM, &arm, sizeof arm), GR_OK);
    CHECK_EQ(gr_stop(e.sys, w), GR_OK);

    struct report r;
    CHECK(probe_take(MSG_TERM_REPORT, &r, sizeof r));
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

    CHECK_EQ(probe_end(t, PROBE_CRASH), GR_OK);
    CHECK(next_down(other, t, other_id, PROBE_CRASH));
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
    CHECK(open_env(&e, 4));
    gr_ref w[3], t;
    for (int i = 0; i < 3; i++)
        CHECK_EQ(spawn_node(&e, &w[i]), GR_OK);
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    uint64_t ids[5];
    CHECK_EQ(monitor_n(w[0], t, 3, ids), GR_OK);
    CHECK_EQ(monitor_n(w[1], t, 1, &ids[3]), GR_OK);
    CHECK_EQ(monitor_n(w[2], t, 1, &ids[4]), GR_OK);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < i; j++)
            CHECK(ids[i] != ids[j]);
    CHECK_EQ(probe_end(t, PROBE_CRASH), GR_OK);
    int seen[5] = {0};
    for (int k = 0; k < 5; k++) {
        struct report r;
        CHECK(probe_take(MSG_DOWN_SEEN, &r, sizeof r));
        int i = 0;
        while (i < 5 && ids[i] != r.corr)
            i++;
        CHECK(i < 5);
        CHECK(down_is(&r, w[i < 3 ? 0 : i - 2], t, ids[i], PROBE_CRASH));
        seen[i]++;
    }
    CHECK(probe_quiet_for(50));
    for (int i = 0; i < 5; i++)
        CHECK_EQ(seen[i], 1);

    /* Demonitoring the middle one of three. */
    gr_ref t2;
    CHECK_EQ(spawn_node(&e, &t2), GR_OK);
    CHECK_EQ(monitor_n(w[0], t2, 3, ids), GR_OK);
    CHECK_EQ(demonitor(w[0], ids[1]), GR_OK);
    CHECK_EQ(gr_stop(e.sys, t2), GR_OK);
    struct report r1, r2;
    CHECK(probe_take(MSG_DOWN_SEEN, &r1, sizeof r1));
    CHECK(probe_take(MSG_DOWN_SEEN, &r2, sizeof r2));
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
    const int32_t codes[] = {GR_STOP, PROBE_STOP_SELF, PROBE_CRASH};
    const int reasons[] = {GR_OK, GR_ESHUTDOWN, PROBE_CRASH};
    struct env e;
    CHECK(open_env(&e, 4));
    for (int round = 0; round < rounds; round++) {
        gr_ref w, t;
        CHECK_EQ(spawn_node(&e, &w), GR_OK);
        CHECK_EQ(spawn_node(&e, &t), GR_OK);
        struct blast b = {
            .target = t, .k = k, .k_term = K_TERM, .code = codes[round % 3]};
        CHECK_EQ(probe_tell(w, MSG_WATCH_BLAST, &b, sizeof b), GR_OK);
        struct report r;
        CHECK(probe_take(MSG_MONITORED, &r, sizeof r));
        CHECK_EQ(r.rc[0], GR_OK);
        uint64_t id = r.id[0];
        CHECK(probe_take(MSG_DOWN_SEEN, &r, sizeof r));
        CHECK(down_is(&r, w, t, id, reasons[round % 3]));
        CHECK_EQ(r.count, k + K_TERM);
        CHECK_EQ(r.out_of_order, 0);
        CHECK_EQ(gr_stop(e.sys, w), GR_OK);
    }
    CHECK(close_quiet(&e, 20));
}

TEST_MAIN(TEST_CASE(test_reason_normal), TEST_CASE(test_reason_stopped),
          TEST_CASE(test_reason_crash), TEST_CASE(test_reason_noproc_gone),
          TEST_CASE(test_reason_noproc_request_behind_exit),
          TEST_CASE(test_monitor_from_init),
          TEST_CASE(test_monitor_from_terminate),
          TEST_CASE(test_stacked_monitors), TEST_CASE(test_down_after_messages))
