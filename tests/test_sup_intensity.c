/*
 * Supervisor restart intensity tests, written from the OTP supervisor
 * documentation: more than `intensity` restarts within `period` make the
 * supervisor terminate all its children (reverse start order) and then
 * itself with reason shutdown; restarts further apart than the period never
 * do; and that exit escalates: to its parent a child supervisor exiting
 * with shutdown is an exit like any other, so a permanent one is
 * restarted (counted in the parent's window) and a transient one is not.
 * Exact sequences of inits, terminates, events and DOWNs (see
 * sup_helpers.h). Bounded waits, no timing assertions. Public API only.
 */
#include <grove/grove.h>

#include "sup_helpers.h"

/* A window no case outlives. */
#define LONG_PERIOD_MS 600000

/* Starts sp and a watcher of it ("down top ..."); returns GR_OK. */
static int start_watched(gr_system *sys, const gr_sup_spec *sp, gr_ref *sup)
{
    int rc = gr_supervisor_start(sys, sp, sup);
    return rc != GR_OK ? rc : watch(sys, *sup, "top");
}

/* OTP: intensity 0 means the first restart is one too many: the
 * supervisor stops the other children and exits with shutdown. */
static void test_intensity_zero(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {WORKER("a", GR_PERMANENT),
                                  WORKER("b", GR_PERMANENT)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                      .intensity = 0,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(start_watched(sys, &sp, &sup), GR_OK);
    size_t mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "b"), MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term b crash", "top: child_crashed b crash",
                     "top: gave_up r1", "term a shutdown",
                     "top: child_exited a shutdown", "down top shutdown"));
    struct kids k = kids_of(sys, sup);
    CHECK_EQ(k.rc, GR_ENOACTOR);
    gr_ref r;
    CHECK_EQ(gr_whereis(sys, "top", &r), GR_ENOTFOUND);
    CHECK_EQ(stats_of(sys).restarts, 0);
    CHECK(only_live(sys, 1)); /* The watcher. */
    sup_system_end(sys);
}

/* OTP: intensity N allows N restarts in the period, whichever children
 * they were for; the N+1th gives up, stopping the others in reverse start
 * order, and the supervisor exits with shutdown. */
static void test_intensity_n(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {WORKER("a", GR_PERMANENT),
                                  WORKER("b", GR_PERMANENT),
                                  WORKER("c", GR_TRANSIENT)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                      .intensity = 3,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(start_watched(sys, &sp, &sup), GR_OK);

    size_t mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "a"), MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term a crash", "top: child_crashed a crash",
                     "init a", "top: child_restarted a r1"));
    mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "c"), MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term c crash", "top: child_crashed c crash",
                     "init c", "top: child_restarted c r2"));
    /* A clean exit of a transient child is no restart: not counted. */
    mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "c"), MSG_NORMAL), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term c normal", "top: child_exited c normal"));
    mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "b"), MSG_NORMAL), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term b normal", "top: child_exited b normal",
                     "init b", "top: child_restarted b r3"));
    CHECK_EQ(kids_of(sys, sup).rc, GR_OK);

    mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "a"), MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term a crash", "top: child_crashed a crash",
                     "top: gave_up r4", "term b shutdown",
                     "top: child_exited b shutdown", "down top shutdown"));
    CHECK_EQ(kids_of(sys, sup).rc, GR_ENOACTOR);
    CHECK_EQ(stats_of(sys).restarts, 3);
    CHECK(only_live(sys, 1));
    sup_system_end(sys);
}

/* OTP: a one_for_all restart is one restart in the intensity count, however
 * many children it restarts: intensity 2 allows two of them. */
static void test_intensity_one_for_all_counts_once(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {WORKER("a", GR_PERMANENT),
                                  WORKER("b", GR_PERMANENT),
                                  WORKER("c", GR_PERMANENT)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ALL,
                      .intensity = 2,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(start_watched(sys, &sp, &sup), GR_OK);
    for (unsigned round = 1; round <= 2; round++) {
        size_t mark = trace_len();
        char r_a[REC_LEN], r_b[REC_LEN], r_c[REC_LEN];
        snprintf(r_a, sizeof r_a, "top: child_restarted a r%u", round);
        snprintf(r_b, sizeof r_b, "top: child_restarted b r%u", round);
        snprintf(r_c, sizeof r_c, "top: child_restarted c r%u", round);
        CHECK_EQ(poke(sys, kid_ref(sys, sup, "a"), MSG_CRASH), GR_OK);
        CHECK(EXPECT_SEQ(mark, "term a crash", "top: child_crashed a crash",
                         "term c shutdown", "top: child_exited c shutdown",
                         "term b shutdown", "top: child_exited b shutdown",
                         "init a", r_a, "init b", r_b, "init c", r_c));
    }
    size_t mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "c"), MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term c crash", "top: child_crashed c crash",
                     "top: gave_up r3", "term b shutdown",
                     "top: child_exited b shutdown", "term a shutdown",
                     "top: child_exited a shutdown", "down top shutdown"));
    CHECK(only_live(sys, 1));
    sup_system_end(sys);
}

/* OTP: only restarts within the last period count. Restarts spaced more
 * than period_ms apart (the test sleeps longer than the period between
 * them: an ordering, not a timing assertion) never give up, even with
 * intensity 1. */
static void test_intensity_spaced_restarts(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {WORKER("a", GR_PERMANENT),
                                  WORKER("b", GR_PERMANENT)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                      .intensity = 1,
                      .period_ms = 50,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(start_watched(sys, &sp, &sup), GR_OK);
    gr_ref a = kid_ref(sys, sup, "a");
    for (int i = 0; i < 6; i++) {
        size_t mark = trace_len();
        CHECK_EQ(poke(sys, kid_ref(sys, sup, "b"), MSG_CRASH), GR_OK);
        CHECK(EXPECT_SEQ(mark, "term b crash", "top: child_crashed b crash",
                         "init b", "top: child_restarted b r1"));
        sleep_ms(120); /* > period_ms: the restart leaves the window. */
    }
    CHECK(gr_ref_eq(kid_ref(sys, sup, "a"), a));
    CHECK_EQ(stats_of(sys).restarts, 6);
    sup_system_end(sys);
}

/* OTP: a restart whose start fails is tried again (try_again_restart),
 * each attempt counting as a restart; a child that starts again within the
 * intensity stays, one that cannot makes the supervisor give up. */
static void test_intensity_failed_restarts_count(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {WORKER("a", GR_PERMANENT), FLAKY("f")};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                      .intensity = 3,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(start_watched(sys, &sp, &sup), GR_OK);
    gr_ref a = kid_ref(sys, sup, "a");

    /* Two failed attempts, then a start: three restarts, within 3. */
    atomic_store(&flaky_fails_, 2);
    size_t mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "f"), MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term f crash", "top: child_crashed f crash",
                     "init_failed f", "top: start_failed f GR_EBUSY",
                     "init_failed f", "top: start_failed f GR_EBUSY", "init f",
                     "top: child_restarted f r3"));
    CHECK(gr_ref_eq(kid_ref(sys, sup, "a"), a));
    CHECK_EQ(kids_of(sys, sup).c[1].state, GR_CHILD_RUNNING);

    /* The window is full: the next restart gives up. */
    mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "f"), MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term f crash", "top: child_crashed f crash",
                     "top: gave_up r4", "term a shutdown",
                     "top: child_exited a shutdown", "down top shutdown"));
    CHECK(only_live(sys, 1));
    sup_system_end(sys);
}

/* A child that cannot start again exhausts the intensity by its failed
 * attempts alone: intensity 2 allows two attempts, the third gives up. */
static void test_intensity_restart_never_starts(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {WORKER("a", GR_PERMANENT), FLAKY("f"),
                                  WORKER("z", GR_PERMANENT)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                      .intensity = 2,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(start_watched(sys, &sp, &sup), GR_OK);
    atomic_store(&flaky_fails_, 1000);
    size_t mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, sup, "f"), MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term f crash", "top: child_crashed f crash",
                     "init_failed f", "top: start_failed f GR_EBUSY",
                     "init_failed f", "top: start_failed f GR_EBUSY",
                     "top: gave_up r3", "term z shutdown",
                     "top: child_exited z shutdown", "term a shutdown",
                     "top: child_exited a shutdown", "down top shutdown"));
    CHECK(only_live(sys, 1));
    sup_system_end(sys);
}

/* ---- escalation ---------------------------------------------------------- */

static const gr_child_spec esc_bot_kids[] = {{.id = "w",
                                              .behaviour = &worker_b,
                                              .arg = "w",
                                              .arg_len = 2,
                                              .restart = GR_PERMANENT,
                                              .name = "esc_w"}};
static const gr_sup_spec esc_bot = {.strategy = GR_ONE_FOR_ONE,
                                    .intensity = 0,
                                    .period_ms = LONG_PERIOD_MS,
                                    .children = esc_bot_kids,
                                    .nchildren = 1,
                                    .name = "bot"};
static const gr_child_spec esc_mid_kids[] = {SUPERVISOR("bot", esc_bot)};
/* Intensity 0: gives up when bot exits. */
static const gr_sup_spec esc_mid0 = {.strategy = GR_ONE_FOR_ONE,
                                     .intensity = 0,
                                     .period_ms = LONG_PERIOD_MS,
                                     .children = esc_mid_kids,
                                     .nchildren = 1,
                                     .name = "mid"};
/* Intensity 1: restarts bot once, gives up the second time. */
static const gr_sup_spec esc_mid1 = {.strategy = GR_ONE_FOR_ONE,
                                     .intensity = 1,
                                     .period_ms = LONG_PERIOD_MS,
                                     .children = esc_mid_kids,
                                     .nchildren = 1,
                                     .name = "mid"};

/* Crashes the current bottom worker (registered as esc_w). */
static int crash_w(gr_system *sys)
{
    gr_ref w;
    int rc = gr_whereis(sys, "esc_w", &w);
    return rc != GR_OK ? rc : poke(sys, w, MSG_CRASH);
}

/* Returns 1 if none of the tree's names is registered any more. */
static int names_gone(gr_system *sys)
{
    static const char *const names[] = {"top", "mid", "bot", "esc_w"};
    gr_ref r;
    for (size_t i = 0; i < NKIDS(names); i++)
        if (gr_whereis(sys, names[i], &r) != GR_ENOTFOUND) {
            fprintf(stderr, "    %s still registered\n", names[i]);
            return 0;
        }
    return 1;
}

/* top (one_for_one, intensity 1) -> mid (intensity 0) -> bot (intensity 0)
 * -> worker w, and a sibling worker s under top. A crash of w makes bot give
 * up (exit shutdown); mid, whose permanent child bot exited, must restart it
 * but may not (intensity 0) and gives up too; top restarts mid (one restart
 * in its window), which starts a fresh bot and w. The second crash goes the
 * same way up to top, whose second restart exceeds intensity 1: top stops s
 * and exits with shutdown. */
static void test_escalation_three_levels(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {WORKER("s", GR_PERMANENT),
                                  SUPERVISOR("mid", esc_mid0)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                      .intensity = 1,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(start_watched(sys, &sp, &sup), GR_OK);
    CHECK(EXPECT_SEQ(0, "init s", "top: child_started s", "init w",
                     "bot: child_started w", "mid: child_started bot",
                     "top: child_started mid"));
    gr_ref s = kid_ref(sys, sup, "s");
    gr_ref mid = kid_ref(sys, sup, "mid");

    size_t mark = trace_len();
    CHECK_EQ(crash_w(sys), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term w crash", "bot: child_crashed w crash",
                     "bot: gave_up r1", "mid: child_exited bot shutdown",
                     "mid: gave_up r1", "top: child_exited mid shutdown",
                     "init w", "bot: child_started w", "mid: child_started bot",
                     "top: child_restarted mid r1"));
    struct kids k = kids_of(sys, sup);
    CHECK(KIDS_ARE(sys, sup, "s", "mid"));
    CHECK(gr_ref_eq(k.c[0].ref, s));
    CHECK(!gr_ref_is_none(k.c[1].ref));
    CHECK(!gr_ref_eq(k.c[1].ref, mid));
    CHECK_EQ(k.c[1].type, GR_SUPERVISOR);

    mark = trace_len();
    CHECK_EQ(crash_w(sys), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term w crash", "bot: child_crashed w crash",
                     "bot: gave_up r1", "mid: child_exited bot shutdown",
                     "mid: gave_up r1", "top: child_exited mid shutdown",
                     "top: gave_up r2", "term s shutdown",
                     "top: child_exited s shutdown", "down top shutdown"));
    CHECK_EQ(kids_of(sys, sup).rc, GR_ENOACTOR);
    CHECK(names_gone(sys));
    CHECK(only_live(sys, 1));
    sup_system_end(sys);
}

/* As above with mid at intensity 1: mid absorbs every other bot failure
 * (restarting bot), and escalates the ones that exceed its intensity; a
 * restarted mid starts with an empty window. Four crashes exhaust top. */
static void test_escalation_each_level_exhausted(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {SUPERVISOR("mid", esc_mid1)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                      .intensity = 1,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(start_watched(sys, &sp, &sup), GR_OK);

    for (int round = 0; round < 2; round++) {
        /* mid absorbs the first failure of bot. */
        size_t mark = trace_len();
        CHECK_EQ(crash_w(sys), GR_OK);
        CHECK(EXPECT_SEQ(mark, "term w crash", "bot: child_crashed w crash",
                         "bot: gave_up r1", "mid: child_exited bot shutdown",
                         "init w", "bot: child_started w",
                         "mid: child_restarted bot r1"));
        /* The second exceeds mid's intensity: top restarts mid (first
         * round) or gives up (second round). */
        mark = trace_len();
        CHECK_EQ(crash_w(sys), GR_OK);
        if (round == 0)
            CHECK(EXPECT_SEQ(
                mark, "term w crash", "bot: child_crashed w crash",
                "bot: gave_up r1", "mid: child_exited bot shutdown",
                "mid: gave_up r2", "top: child_exited mid shutdown", "init w",
                "bot: child_started w", "mid: child_started bot",
                "top: child_restarted mid r1"));
        else
            CHECK(
                EXPECT_SEQ(mark, "term w crash", "bot: child_crashed w crash",
                           "bot: gave_up r1", "mid: child_exited bot shutdown",
                           "mid: gave_up r2", "top: child_exited mid shutdown",
                           "top: gave_up r2", "down top shutdown"));
    }
    CHECK(names_gone(sys));
    CHECK(only_live(sys, 1));
    sup_system_end(sys);
}

/* OTP: a transient child supervisor that gives up exits with shutdown, a
 * clean exit: its parent does not restart it and keeps running. */
static void test_escalation_transient_child_supervisor(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    gr_child_spec kids[] = {WORKER("s", GR_PERMANENT),
                            SUPERVISOR("mid", esc_mid0)};
    kids[1].restart = GR_TRANSIENT;
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ALL,
                      .intensity = 0,
                      .period_ms = LONG_PERIOD_MS,
                      .children = kids,
                      .nchildren = NKIDS(kids),
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(start_watched(sys, &sp, &sup), GR_OK);
    gr_ref s = kid_ref(sys, sup, "s");
    size_t mark = trace_len();
    CHECK_EQ(crash_w(sys), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term w crash", "bot: child_crashed w crash",
                     "bot: gave_up r1", "mid: child_exited bot shutdown",
                     "mid: gave_up r1", "top: child_exited mid shutdown"));
    struct kids k = kids_of(sys, sup);
    CHECK_EQ(k.rc, GR_OK);
    CHECK(KIDS_ARE(sys, sup, "s", "mid"));
    CHECK(gr_ref_eq(k.c[0].ref, s));
    CHECK_EQ(k.c[1].state, GR_CHILD_STOPPED);
    CHECK_EQ(stats_of(sys).restarts, 0);
    sup_system_end(sys);
}

TEST_MAIN(TEST_CASE(test_intensity_zero), TEST_CASE(test_intensity_n),
          TEST_CASE(test_intensity_one_for_all_counts_once),
          TEST_CASE(test_intensity_spaced_restarts),
          TEST_CASE(test_intensity_failed_restarts_count),
          TEST_CASE(test_intensity_restart_never_starts),
          TEST_CASE(test_escalation_three_levels),
          TEST_CASE(test_escalation_each_level_exhausted),
          TEST_CASE(test_escalation_transient_child_supervisor))
