/*
 * Supervisor behaviour tests, written from the OTP supervisor
 * documentation: starting children in order (and undoing a start whose
 * child fails), the one_for_one, one_for_all and rest_for_one strategies,
 * and the permanent, transient and temporary restart types. Each case
 * compares the exact sequence of worker inits and terminates and of the
 * supervisor's events (see sup_helpers.h). Bounded waits, no timing
 * assertions. Public API only.
 */
#include <grove/grove.h>

#include "sup_helpers.h"

/* Bounded waits in sup_helpers.h; a long intensity window keeps restarts
 * from expiring during a case. */
#define LONG_PERIOD_MS 600000

/* ---- start --------------------------------------------------------------- */

/* OTP: children start in spec order, each synchronously; start_link returns
 * once all are started. */
static void test_start_in_order(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {
        WORKER("a", GR_PERMANENT), WORKER("b", GR_TRANSIENT),
        WORKER("c", GR_TEMPORARY), WORKER("d", GR_PERMANENT)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                      .intensity = 1,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &sp, &sup), GR_OK);
    /* Every init ran before the start returned: no wait needed. */
    CHECK_EQ(trace_len(), 8);
    CHECK(EXPECT_SEQ(0, "init a", "top: child_started a", "init b",
                     "top: child_started b", "init c", "top: child_started c",
                     "init d", "top: child_started d"));
    CHECK(KIDS_ARE(sys, sup, "a", "b", "c", "d"));
    struct kids k = kids_of(sys, sup);
    CHECK_EQ(k.rc, GR_OK);
    for (size_t i = 0; i < k.n; i++) {
        CHECK_EQ(k.c[i].state, GR_CHILD_RUNNING);
        /* The ref which_children reports is the one whose init ran. */
        char s[REC_LEN + 8];
        snprintf(s, sizeof s, "init %s", k.c[i].id);
        CHECK(gr_ref_eq(k.c[i].ref, trace_ref(0, s)));
    }
    sup_system_end(sys);
}

/* A worker whose terminate takes a while (30 ms) before it records. */
static void slow_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    sleep_ms(30);
    worker_terminate(ctx, state, why);
}

static const gr_behaviour slow_term_b = {
    .name = "sup_test_slow_term",
    .state_size = sizeof(struct worker),
    .init = worker_init,
    .handle = worker_handle,
    .terminate = slow_terminate,
};

/* OTP: if a child fails to start, the supervisor stops the children
 * already started one at a time, newest first, each by its shutdown spec,
 * waiting for each before the next, and only then does its start return
 * the error. b's terminate is slow: stopped together, a's would come
 * first. */
static void test_start_failure_undoes(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {WORKER("a", GR_PERMANENT),
                                  {.id = "b",
                                   .behaviour = &slow_term_b,
                                   .arg = "b",
                                   .arg_len = sizeof "b",
                                   .restart = GR_PERMANENT},
                                  FAILING("c"),
                                  WORKER("d", GR_PERMANENT)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                      .intensity = 1,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup = GR_REF_NONE;
    CHECK_EQ(gr_supervisor_start(sys, &sp, &sup), CODE_INIT_FAIL);
    CHECK(EXPECT_SEQ_OF(0, REC_INIT | REC_EVENT, "init a",
                        "top: child_started a", "init b",
                        "top: child_started b", "init_failed c",
                        "top: start_failed c GR_EBUSY"));
    /* Both started children were stopped with shutdown before the start
     * returned, newest first; d never started. */
    CHECK_EQ(trace_count(0, REC_TERM), 2);
    CHECK(EXPECT_SEQ_OF(0, REC_TERM, "term b shutdown", "term a shutdown"));
    /* Nothing left behind: no supervisor, no children, no names. */
    CHECK(only_live(sys, 0));
    gr_ref r;
    CHECK_EQ(gr_whereis(sys, "top", &r), GR_ENOTFOUND);
    sup_system_end(sys);
}

static const gr_child_spec fail_mid_kids[] = {WORKER("m1", GR_PERMANENT),
                                              FAILING("m2")};
static const gr_sup_spec fail_mid = {.strategy = GR_ONE_FOR_ONE,
                                     .intensity = 1,
                                     .children = fail_mid_kids,
                                     .nchildren = NKIDS(fail_mid_kids),
                                     .name = "mid"};

static const gr_child_spec ok_sub_kids[] = {WORKER("s1", GR_PERMANENT),
                                            WORKER("s2", GR_PERMANENT)};
static const gr_sup_spec ok_sub = {.strategy = GR_ONE_FOR_ONE,
                                   .intensity = 1,
                                   .children = ok_sub_kids,
                                   .nchildren = NKIDS(ok_sub_kids),
                                   .name = "sub"};

/* A child supervisor whose own child fails to start fails to start in
 * turn: the error reaches the top's start, and every actor started on
 * the way is stopped, a child supervisor started before it with its own
 * children (in reverse order, as it stops them itself). */
static void test_start_failure_nested(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {
        WORKER("a", GR_PERMANENT), SUPERVISOR("sub", ok_sub),
        SUPERVISOR("mid", fail_mid), WORKER("z", GR_PERMANENT)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                      .intensity = 1,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    CHECK_EQ(gr_supervisor_start(sys, &sp, NULL), CODE_INIT_FAIL);
    CHECK(EXPECT_SEQ_OF(
        0, REC_INIT | REC_EVENT, "init a", "top: child_started a", "init s1",
        "sub: child_started s1", "init s2", "sub: child_started s2",
        "top: child_started sub", "init m1", "mid: child_started m1",
        "init_failed m2", "mid: start_failed m2 GR_EBUSY",
        "top: start_failed mid GR_EBUSY",
        /* sub, told to shut down, stops its children itself, in order. */
        "sub: child_exited s2 shutdown", "sub: child_exited s1 shutdown"));
    CHECK(trace_wait_for(0, "term a shutdown") >= 0);
    CHECK(trace_wait_for(0, "term m1 shutdown") >= 0);
    CHECK(IN_ORDER(0, "term s2 shutdown", "sub: child_exited s2 shutdown",
                   "term s1 shutdown", "sub: child_exited s1 shutdown"));
    CHECK_EQ(trace_count(0, REC_TERM), 4);
    CHECK(only_live(sys, 0));
    sup_system_end(sys);
}

/* ---- strategies ---------------------------------------------------------- */

/* OTP one_for_one: only the child that terminated is restarted; the
 * others keep running. The new child has a new ref, and its registered
 * name (child spec name) points to it. */
static void test_one_for_one(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    gr_child_spec kids[] = {WORKER("a", GR_PERMANENT),
                            WORKER("b", GR_PERMANENT),
                            WORKER("c", GR_PERMANENT)};
    kids[0].name = "sup_a";
    kids[1].name = "sup_b";
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                      .intensity = 1,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &sp, &sup), GR_OK);
    struct kids before = kids_of(sys, sup);
    CHECK_EQ(before.rc, GR_OK);
    CHECK_EQ(before.n, 3);
    gr_ref b_old;
    CHECK_EQ(gr_whereis(sys, "sup_b", &b_old), GR_OK);
    CHECK(gr_ref_eq(b_old, before.c[1].ref));

    size_t mark = trace_len();
    CHECK_EQ(poke(sys, b_old, MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term b crash", "top: child_crashed b crash",
                     "init b", "top: child_restarted b r1"));

    struct kids after = kids_of(sys, sup);
    CHECK_EQ(after.rc, GR_OK);
    CHECK(KIDS_ARE(sys, sup, "a", "b", "c"));
    CHECK(gr_ref_eq(after.c[0].ref, before.c[0].ref));
    CHECK(gr_ref_eq(after.c[2].ref, before.c[2].ref));
    CHECK(!gr_ref_is_none(after.c[1].ref));
    CHECK(!gr_ref_eq(after.c[1].ref, b_old));
    CHECK_EQ(after.c[1].state, GR_CHILD_RUNNING);
    CHECK(gr_ref_eq(after.c[1].ref, trace_ref(mark, "init b")));
    gr_ref b_new, a_now;
    CHECK_EQ(gr_whereis(sys, "sup_b", &b_new), GR_OK);
    CHECK(gr_ref_eq(b_new, after.c[1].ref));
    CHECK_EQ(gr_whereis(sys, "sup_a", &a_now), GR_OK);
    CHECK(gr_ref_eq(a_now, before.c[0].ref));
    sup_system_end(sys);
}

/* OTP one_for_all: the others are terminated (reverse start order), then
 * all are started again in order; that is one restart in the intensity
 * count (with intensity 1 a second count would give up). Each registered
 * name follows its child to the new ref. */
static void test_one_for_all(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    gr_child_spec kids[] = {WORKER("a", GR_PERMANENT),
                            WORKER("b", GR_PERMANENT),
                            WORKER("c", GR_PERMANENT)};
    kids[0].name = "sup_a";
    kids[1].name = "sup_b";
    kids[2].name = "sup_c";
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ALL,
                      .intensity = 1,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &sp, &sup), GR_OK);
    struct kids before = kids_of(sys, sup);
    CHECK_EQ(before.n, 3);

    size_t mark = trace_len();
    CHECK_EQ(poke(sys, before.c[1].ref, MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term b crash", "top: child_crashed b crash",
                     "term c shutdown", "top: child_exited c shutdown",
                     "term a shutdown", "top: child_exited a shutdown",
                     "init a", "top: child_restarted a r1", "init b",
                     "top: child_restarted b r1", "init c",
                     "top: child_restarted c r1"));
    struct kids after = kids_of(sys, sup);
    CHECK_EQ(after.rc, GR_OK);
    CHECK(KIDS_ARE(sys, sup, "a", "b", "c"));
    static const char *const names[] = {"sup_a", "sup_b", "sup_c"};
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ(after.c[i].state, GR_CHILD_RUNNING);
        CHECK(!gr_ref_eq(after.c[i].ref, before.c[i].ref));
        gr_ref r;
        CHECK_EQ(gr_whereis(sys, names[i], &r), GR_OK);
        CHECK(gr_ref_eq(r, after.c[i].ref));
    }
    gr_stats st = stats_of(sys);
    CHECK_EQ(st.restarts, 3);
    sup_system_end(sys);
}

/* OTP one_for_all: the group restart starts every child whose spec is
 * kept, a transient child that had exited normally (stopped) included. */
static void test_one_for_all_restarts_stopped_transient(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {WORKER("a", GR_PERMANENT),
                                  WORKER("t", GR_TRANSIENT),
                                  WORKER("c", GR_PERMANENT)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ALL,
                      .intensity = 1,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &sp, &sup), GR_OK);
    size_t mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "t"), MSG_NORMAL), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term t normal", "top: child_exited t normal"));
    CHECK_EQ(kids_of(sys, sup).c[1].state, GR_CHILD_STOPPED);
    mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "c"), MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term c crash", "top: child_crashed c crash",
                     "term a shutdown", "top: child_exited a shutdown",
                     "init a", "top: child_restarted a r1", "init t",
                     "top: child_restarted t r1", "init c",
                     "top: child_restarted c r1"));
    struct kids k = kids_of(sys, sup);
    CHECK(KIDS_ARE(sys, sup, "a", "t", "c"));
    for (size_t i = 0; i < 3; i++)
        CHECK_EQ(k.c[i].state, GR_CHILD_RUNNING);
    sup_system_end(sys);
}

/* OTP rest_for_one: the children started after the one that terminated
 * are terminated (reverse order), then it and they start again in order;
 * the earlier ones keep running. */
static void test_rest_for_one(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {
        WORKER("a", GR_PERMANENT), WORKER("b", GR_PERMANENT),
        WORKER("c", GR_PERMANENT), WORKER("d", GR_PERMANENT)};
    gr_sup_spec sp = {.strategy = GR_REST_FOR_ONE,
                      .intensity = 2,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &sp, &sup), GR_OK);
    struct kids before = kids_of(sys, sup);
    CHECK_EQ(before.n, 4);

    size_t mark = trace_len();
    CHECK_EQ(poke(sys, before.c[1].ref, MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term b crash", "top: child_crashed b crash",
                     "term d shutdown", "top: child_exited d shutdown",
                     "term c shutdown", "top: child_exited c shutdown",
                     "init b", "top: child_restarted b r1", "init c",
                     "top: child_restarted c r1", "init d",
                     "top: child_restarted d r1"));
    struct kids after = kids_of(sys, sup);
    CHECK(KIDS_ARE(sys, sup, "a", "b", "c", "d"));
    CHECK(gr_ref_eq(after.c[0].ref, before.c[0].ref));
    for (size_t i = 1; i < 4; i++) {
        CHECK_EQ(after.c[i].state, GR_CHILD_RUNNING);
        CHECK(!gr_ref_eq(after.c[i].ref, before.c[i].ref));
    }

    /* The last child crashing restarts only itself. */
    mark = trace_len();
    CHECK_EQ(poke(sys, after.c[3].ref, MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term d crash", "top: child_crashed d crash",
                     "init d", "top: child_restarted d r2"));
    sup_system_end(sys);
}

/* ---- restart types ------------------------------------------------------- */

/* OTP permanent: always restarted, whatever the reason (normal, shutdown,
 * crash). */
static void test_permanent_always_restarted(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {WORKER("p", GR_PERMANENT)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                      .intensity = 10,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = 1,
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &sp, &sup), GR_OK);

    size_t mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "p"), MSG_NORMAL), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term p normal", "top: child_exited p normal",
                     "init p", "top: child_restarted p r1"));
    mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "p"), MSG_SHUTDOWN_RAW), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term p shutdown", "top: child_exited p shutdown",
                     "init p", "top: child_restarted p r2"));
    mark = trace_len();
    int64_t detail = 7;
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, kid_ref(sys, sup, "p"),
                            MSG_SHUTDOWN, &detail, sizeof detail),
             GR_OK);
    CHECK(EXPECT_SEQ(mark, "term p shutdown:7",
                     "top: child_exited p shutdown:7", "init p",
                     "top: child_restarted p r3"));
    mark = trace_len();
    CHECK_EQ(gr_stop(sys, kid_ref(sys, sup, "p")), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term p shutdown", "top: child_exited p shutdown",
                     "init p", "top: child_restarted p r4"));
    mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "p"), MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term p crash", "top: child_crashed p crash",
                     "init p", "top: child_restarted p r5"));
    CHECK_EQ(kids_of(sys, sup).c[0].state, GR_CHILD_RUNNING);
    sup_system_end(sys);
}

/* OTP transient: restarted only after an abnormal exit; not after normal,
 * shutdown or {shutdown, Term}. Its spec is kept (stopped). */
static void test_transient_restarted_only_on_crash(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {
        WORKER("t1", GR_TRANSIENT), WORKER("t2", GR_TRANSIENT),
        WORKER("t3", GR_TRANSIENT), WORKER("t4", GR_TRANSIENT),
        WORKER("t5", GR_TRANSIENT)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                      .intensity = 1,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &sp, &sup), GR_OK);
    struct kids k = kids_of(sys, sup);
    CHECK_EQ(k.n, 5);

    size_t mark = trace_len();
    CHECK_EQ(poke(sys, k.c[0].ref, MSG_NORMAL), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term t1 normal", "top: child_exited t1 normal"));
    mark = trace_len();
    CHECK_EQ(poke(sys, k.c[1].ref, MSG_SHUTDOWN_RAW), GR_OK);
    CHECK(
        EXPECT_SEQ(mark, "term t2 shutdown", "top: child_exited t2 shutdown"));
    mark = trace_len();
    int64_t detail = 42;
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, k.c[2].ref, MSG_SHUTDOWN, &detail,
                            sizeof detail),
             GR_OK);
    CHECK(EXPECT_SEQ(mark, "term t3 shutdown:42",
                     "top: child_exited t3 shutdown:42"));
    mark = trace_len();
    CHECK_EQ(gr_stop(sys, k.c[3].ref), GR_OK);
    CHECK(
        EXPECT_SEQ(mark, "term t4 shutdown", "top: child_exited t4 shutdown"));
    /* The clean exits counted no restart: the crash is the first. */
    mark = trace_len();
    CHECK_EQ(poke(sys, k.c[4].ref, MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term t5 crash", "top: child_crashed t5 crash",
                     "init t5", "top: child_restarted t5 r1"));

    struct kids after = kids_of(sys, sup);
    CHECK(KIDS_ARE(sys, sup, "t1", "t2", "t3", "t4", "t5"));
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ(after.c[i].state, GR_CHILD_STOPPED);
        CHECK(gr_ref_is_none(after.c[i].ref));
    }
    CHECK_EQ(after.c[4].state, GR_CHILD_RUNNING);
    CHECK(!gr_ref_eq(after.c[4].ref, k.c[4].ref));
    sup_system_end(sys);
}

/* OTP temporary: never restarted, whatever the reason, and its spec is
 * removed when it exits. Under one_for_all, a temporary child's own exit
 * restarts nothing: the others keep running. */
static void test_temporary_never_restarted(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {
        WORKER("a", GR_PERMANENT), WORKER("x", GR_TEMPORARY),
        WORKER("y", GR_TEMPORARY), WORKER("z", GR_TEMPORARY),
        WORKER("c", GR_PERMANENT)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ALL,
                      .intensity = 0,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &sp, &sup), GR_OK);
    struct kids k = kids_of(sys, sup);
    CHECK_EQ(k.n, 5);

    size_t mark = trace_len();
    CHECK_EQ(poke(sys, k.c[1].ref, MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term x crash", "top: child_crashed x crash"));
    CHECK(KIDS_ARE(sys, sup, "a", "y", "z", "c"));
    mark = trace_len();
    CHECK_EQ(poke(sys, k.c[2].ref, MSG_NORMAL), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term y normal", "top: child_exited y normal"));
    CHECK(KIDS_ARE(sys, sup, "a", "z", "c"));
    mark = trace_len();
    CHECK_EQ(gr_stop(sys, k.c[3].ref), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term z shutdown", "top: child_exited z shutdown"));
    CHECK(KIDS_ARE(sys, sup, "a", "c"));

    /* Intensity 0: any restart would have stopped the supervisor. */
    struct kids after = kids_of(sys, sup);
    CHECK_EQ(after.rc, GR_OK);
    CHECK(gr_ref_eq(after.c[0].ref, k.c[0].ref));
    CHECK(gr_ref_eq(after.c[1].ref, k.c[4].ref));
    CHECK_EQ(stats_of(sys).restarts, 0);
    sup_system_end(sys);
}

/* OTP: a temporary child terminated as collateral of a one_for_all restart
 * is removed, not restarted. */
static void test_temporary_collateral_removed(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {WORKER("a", GR_PERMANENT),
                                  WORKER("t", GR_TEMPORARY),
                                  WORKER("c", GR_PERMANENT)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ALL,
                      .intensity = 1,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &sp, &sup), GR_OK);
    size_t mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "c"), MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term c crash", "top: child_crashed c crash",
                     "term t shutdown", "top: child_exited t shutdown",
                     "term a shutdown", "top: child_exited a shutdown",
                     "init a", "top: child_restarted a r1", "init c",
                     "top: child_restarted c r1"));
    CHECK(KIDS_ARE(sys, sup, "a", "c"));
    gr_child_counts cc;
    CHECK_EQ(gr_supervisor_count_children(sys, sup, SUP_WAIT, &cc), GR_OK);
    CHECK_EQ(cc.specs, 2);
    CHECK_EQ(cc.active, 2);
    sup_system_end(sys);
}

/* OTP rest_for_one: a temporary child after the one that terminated is
 * removed too, not restarted; one before it is untouched. */
static void test_temporary_collateral_rest_for_one(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {
        WORKER("t0", GR_TEMPORARY), WORKER("b", GR_PERMANENT),
        WORKER("t", GR_TEMPORARY), WORKER("d", GR_TRANSIENT)};
    gr_sup_spec sp = {.strategy = GR_REST_FOR_ONE,
                      .intensity = 1,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &sp, &sup), GR_OK);
    gr_ref t0 = kid_ref(sys, sup, "t0");
    size_t mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "b"), MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term b crash", "top: child_crashed b crash",
                     "term d shutdown", "top: child_exited d shutdown",
                     "term t shutdown", "top: child_exited t shutdown",
                     "init b", "top: child_restarted b r1", "init d",
                     "top: child_restarted d r1"));
    CHECK(KIDS_ARE(sys, sup, "t0", "b", "d"));
    CHECK(gr_ref_eq(kid_ref(sys, sup, "t0"), t0));
    sup_system_end(sys);
}

/* Levels of the child_started and child_exited events seen, per kind of
 * child (0: static, 1: simple-one-for-one). */
static _Atomic int level_seen[2][2];

static void level_event(void *arg, const gr_event *ev)
{
    (void)arg;
    int dyn = ev->child_id[0] == '\0';
    if (ev->kind == GR_EV_CHILD_STARTED)
        atomic_store(&level_seen[dyn][0], (int)ev->level + 1);
    if (ev->kind == GR_EV_CHILD_EXITED)
        atomic_store(&level_seen[dyn][1], (int)ev->level + 1);
}

/* A simple-one-for-one child's clean start and exit are debug events (a
 * session per connection must not fill the log); a static child's are
 * info, as before. */
static void test_dynamic_children_log_quietly(void)
{
    gr_config cfg = {.workers = 2,
                     .no_signals = 1,
                     .log_level = GR_LOG_DEBUG,
                     .log_level_set = 1,
                     .event_fn = level_event};
    gr_system *sys = NULL;
    CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
    static const gr_child_spec tmpl[] = {
        {.behaviour = &worker_b, .restart = GR_TEMPORARY}};
    static const gr_sup_spec dyn = {
        .strategy = GR_SIMPLE_ONE_FOR_ONE, .children = tmpl, .nchildren = 1};
    static const gr_child_spec kids[] = {{.id = "pool",
                                          .behaviour = &gr_supervisor_behaviour,
                                          .arg = &dyn,
                                          .arg_len = sizeof dyn,
                                          .restart = GR_PERMANENT,
                                          .type = GR_SUPERVISOR}};
    gr_sup_spec top = {.strategy = GR_ONE_FOR_ONE,
                       .intensity = 3,
                       .children = kids,
                       .nchildren = 1};
    gr_ref sup, pool, child;
    CHECK_EQ(gr_supervisor_start(sys, &top, &sup), GR_OK);
    pool = kid_ref(sys, sup, "pool");
    CHECK_EQ(gr_supervisor_spawn_child(sys, pool, "w", 2, SUP_WAIT, &child),
             GR_OK);
    CHECK_EQ(gr_supervisor_terminate_child(sys, pool, NULL, child, SUP_WAIT),
             GR_OK);
    CHECK_EQ(atomic_load(&level_seen[0][0]), GR_LOG_INFO + 1);
    CHECK_EQ(atomic_load(&level_seen[1][0]), GR_LOG_DEBUG + 1);
    CHECK_EQ(atomic_load(&level_seen[1][1]), GR_LOG_DEBUG + 1);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

TEST_MAIN(TEST_CASE(test_start_in_order), TEST_CASE(test_start_failure_undoes),
          TEST_CASE(test_start_failure_nested), TEST_CASE(test_one_for_one),
          TEST_CASE(test_one_for_all),
          TEST_CASE(test_one_for_all_restarts_stopped_transient),
          TEST_CASE(test_rest_for_one),
          TEST_CASE(test_permanent_always_restarted),
          TEST_CASE(test_transient_restarted_only_on_crash),
          TEST_CASE(test_temporary_never_restarted),
          TEST_CASE(test_temporary_collateral_removed),
          TEST_CASE(test_temporary_collateral_rest_for_one),
          TEST_CASE(test_dynamic_children_log_quietly))
