/*
 * Supervision tree tests, written from the OTP supervisor documentation:
 * a tree starts depth-first in spec order, each child's init done before
 * the next starts; a supervisor told to shut down terminates its children
 * in reverse start order, each completely (a child supervisor first
 * terminates its own children the same way) before the next, then exits
 * with the same reason. Exact sequences of inits, terminates, events and
 * DOWNs (see sup_helpers.h). Bounded waits, no timing assertions. Public
 * API only.
 */
#include <grove/grove.h>

#include <pthread.h>
#include <stdbool.h>

#include "sup_helpers.h"

/* top[a, s1[b, c], d, s2[e, s3[f, g]]] */
static const gr_child_spec s1_kids[] = {WORKER("b", GR_PERMANENT),
                                        WORKER("c", GR_TRANSIENT)};
static const gr_sup_spec s1 = {.strategy = GR_ONE_FOR_ONE,
                               .intensity = 1,
                               .children = s1_kids,
                               .nchildren = NKIDS(s1_kids),
                               .name = "s1"};
static const gr_child_spec s3_kids[] = {WORKER("f", GR_PERMANENT),
                                        WORKER("g", GR_TEMPORARY)};
static const gr_sup_spec s3 = {.strategy = GR_REST_FOR_ONE,
                               .intensity = 1,
                               .children = s3_kids,
                               .nchildren = NKIDS(s3_kids),
                               .name = "s3"};
static const gr_child_spec s2_kids[] = {WORKER("e", GR_PERMANENT),
                                        SUPERVISOR("s3", s3)};
static const gr_sup_spec s2 = {.strategy = GR_ONE_FOR_ALL,
                               .intensity = 1,
                               .children = s2_kids,
                               .nchildren = NKIDS(s2_kids),
                               .name = "s2"};
static const gr_child_spec top_kids[] = {
    WORKER("a", GR_PERMANENT), SUPERVISOR("s1", s1), WORKER("d", GR_PERMANENT),
    SUPERVISOR("s2", s2)};
static const gr_sup_spec top = {.strategy = GR_ONE_FOR_ONE,
                                .intensity = 1,
                                .children = top_kids,
                                .nchildren = NKIDS(top_kids),
                                .name = "top"};

/* Returns 1 if none of names (NULL-terminated) is registered. */
static int none_registered(gr_system *sys, const char *const *names)
{
    gr_ref r;
    for (size_t i = 0; names[i] != NULL; i++)
        if (gr_whereis(sys, names[i], &r) != GR_ENOTFOUND) {
            fprintf(stderr, "    %s still registered\n", names[i]);
            return 0;
        }
    return 1;
}

/* OTP: the tree starts depth-first in spec order; gr_supervisor_start
 * returns with all of it up. A shutdown exit signal to the top stops it
 * depth-first in reverse start order: each child supervisor stops its own
 * children (reverse order) and exits before its elder sibling is told to
 * stop; then the top exits with shutdown. */
static void test_tree_orderly_stop(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &top, &sup), GR_OK);
    /* The whole tree was up when the start returned. */
    CHECK_EQ(trace_len(), 17);
    CHECK(EXPECT_SEQ(0, "init a", "top: child_started a", "init b",
                     "s1: child_started b", "init c", "s1: child_started c",
                     "top: child_started s1", "init d", "top: child_started d",
                     "init e", "s2: child_started e", "init f",
                     "s3: child_started f", "init g", "s3: child_started g",
                     "s2: child_started s3", "top: child_started s2"));
    CHECK_EQ(watch(sys, sup, "top"), GR_OK);
    CHECK(KIDS_ARE(sys, sup, "a", "s1", "d", "s2"));

    /* A normal exit signal from outside is not a reason to stop (a
     * trapping supervisor gets it as a message and ignores it). The
     * request below is queued behind it, so its answer comes after. */
    size_t mark = trace_len();
    CHECK_EQ(gr_system_exit(sys, sup, &(gr_reason){.code = GR_OK}), GR_OK);
    CHECK(KIDS_ARE(sys, sup, "a", "s1", "d", "s2"));
    CHECK_EQ(trace_len(), mark);

    mark = trace_len();
    CHECK_EQ(gr_system_exit(sys, sup, &(gr_reason){.code = GR_ESHUTDOWN}),
             GR_OK);
    CHECK(EXPECT_SEQ(mark, "term g shutdown", "s3: child_exited g shutdown",
                     "term f shutdown", "s3: child_exited f shutdown",
                     "s2: child_exited s3 shutdown", "term e shutdown",
                     "s2: child_exited e shutdown",
                     "top: child_exited s2 shutdown", "term d shutdown",
                     "top: child_exited d shutdown", "term c shutdown",
                     "s1: child_exited c shutdown", "term b shutdown",
                     "s1: child_exited b shutdown",
                     "top: child_exited s1 shutdown", "term a shutdown",
                     "top: child_exited a shutdown", "down top shutdown"));
    CHECK_EQ(kids_of(sys, sup).rc, GR_ENOACTOR);
    CHECK(none_registered(
        sys, (const char *const[]){"top", "s1", "s2", "s3", NULL}));
    CHECK_EQ(stats_of(sys).restarts, 0);
    CHECK(only_live(sys, 1)); /* The watcher. */
    sup_system_end(sys);
}

/* OTP: a supervisor told to shut down exits with the reason it was sent
 * (here shutdown with a detail), after terminating its children with a
 * plain shutdown; so a child supervisor exits with shutdown. */
static void test_tree_stop_reason_passed_down(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    const gr_child_spec kids[] = {SUPERVISOR("s1", s1)};
    gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                      .intensity = 1,
                      .children = kids,
                      .nchildren = 1,
                      .name = "top"};
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &sp, &sup), GR_OK);
    CHECK_EQ(watch(sys, sup, "top"), GR_OK);
    size_t mark = trace_len();
    CHECK_EQ(gr_system_exit(sys, sup,
                            &(gr_reason){.code = GR_ESHUTDOWN, .detail = 9}),
             GR_OK);
    /* Children are told plain shutdown (OTP: exit(Child, shutdown)); a
     * supervisor exits with the reason it was given. */
    CHECK(EXPECT_SEQ(mark, "term c shutdown", "s1: child_exited c shutdown",
                     "term b shutdown", "s1: child_exited b shutdown",
                     "top: child_exited s1 shutdown", "down top shutdown:9"));
    CHECK(only_live(sys, 1));
    sup_system_end(sys);
}

/* L1[w1, L2[w2, L3[w3, L4[w4a, w4b], w3b], w2b], w1b]: four levels. */
static const gr_child_spec l4_kids[] = {WORKER("w4a", GR_PERMANENT),
                                        WORKER("w4b", GR_PERMANENT)};
static const gr_sup_spec l4 = {.strategy = GR_ONE_FOR_ALL,
                               .intensity = 1,
                               .children = l4_kids,
                               .nchildren = NKIDS(l4_kids),
                               .name = "l4"};
static const gr_child_spec l3_kids[] = {WORKER("w3", GR_PERMANENT),
                                        SUPERVISOR("l4", l4),
                                        WORKER("w3b", GR_TRANSIENT)};
static const gr_sup_spec l3 = {.strategy = GR_REST_FOR_ONE,
                               .intensity = 1,
                               .children = l3_kids,
                               .nchildren = NKIDS(l3_kids),
                               .name = "l3"};
static const gr_child_spec l2_kids[] = {WORKER("w2", GR_PERMANENT),
                                        SUPERVISOR("l3", l3),
                                        WORKER("w2b", GR_PERMANENT)};
static const gr_sup_spec l2 = {.strategy = GR_ONE_FOR_ONE,
                               .intensity = 1,
                               .children = l2_kids,
                               .nchildren = NKIDS(l2_kids),
                               .name = "l2"};
static const gr_child_spec l1_kids[] = {WORKER("w1", GR_PERMANENT),
                                        SUPERVISOR("l2", l2),
                                        WORKER("w1b", GR_PERMANENT)};
static const gr_sup_spec l1 = {.strategy = GR_ONE_FOR_ONE,
                               .intensity = 1,
                               .children = l1_kids,
                               .nchildren = NKIDS(l1_kids),
                               .name = "l1"};

/* A four-level tree starts depth-first, every level reports its children
 * running, and a shutdown of the top stops every worker in exactly the
 * reverse of their start order, each supervisor after its children, with
 * nothing left behind. Done several times in one system. */
static void test_tree_nested_four_levels(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    for (int round = 0; round < 3; round++) {
        size_t mark = trace_len();
        gr_ref sup;
        CHECK_EQ(gr_supervisor_start(sys, &l1, &sup), GR_OK);
        CHECK(EXPECT_SEQ(
            mark, "init w1", "l1: child_started w1", "init w2",
            "l2: child_started w2", "init w3", "l3: child_started w3",
            "init w4a", "l4: child_started w4a", "init w4b",
            "l4: child_started w4b", "l3: child_started l4", "init w3b",
            "l3: child_started w3b", "l2: child_started l3", "init w2b",
            "l2: child_started w2b", "l1: child_started l2", "init w1b",
            "l1: child_started w1b"));
        static const char *const levels[] = {"l1", "l2", "l3", "l4", NULL};
        for (size_t i = 0; i < 4; i++) {
            gr_ref l;
            CHECK_EQ(gr_whereis(sys, levels[i], &l), GR_OK);
            gr_child_counts cc;
            CHECK_EQ(gr_supervisor_count_children(sys, l, SUP_WAIT, &cc),
                     GR_OK);
            CHECK_EQ(cc.specs, i < 3 ? 3 : 2);
            CHECK_EQ(cc.active, cc.specs);
            CHECK_EQ(cc.supervisors, i < 3 ? 1 : 0);
        }
        CHECK_EQ(watch(sys, sup, "l1"), GR_OK);

        mark = trace_len();
        CHECK_EQ(gr_system_exit(sys, sup, &(gr_reason){.code = GR_ESHUTDOWN}),
                 GR_OK);
        CHECK(EXPECT_SEQ(
            mark, "term w1b shutdown", "l1: child_exited w1b shutdown",
            "term w2b shutdown", "l2: child_exited w2b shutdown",
            "term w3b shutdown", "l3: child_exited w3b shutdown",
            "term w4b shutdown", "l4: child_exited w4b shutdown",
            "term w4a shutdown", "l4: child_exited w4a shutdown",
            "l3: child_exited l4 shutdown", "term w3 shutdown",
            "l3: child_exited w3 shutdown", "l2: child_exited l3 shutdown",
            "term w2 shutdown", "l2: child_exited w2 shutdown",
            "l1: child_exited l2 shutdown", "term w1 shutdown",
            "l1: child_exited w1 shutdown", "down l1 shutdown"));
        CHECK(none_registered(sys, levels));
        /* Only this round's watcher, and the earlier ones, are alive. */
        CHECK(only_live(sys, (uint64_t)round + 1));
    }
    CHECK_EQ(stats_of(sys).restarts, 0);
    sup_system_end(sys);
}

/* A crash deep in the tree is handled where it happens: only the bottom
 * level restarts (one_for_all there), and the levels above keep their
 * children. Then the tree still stops in order. */
static void test_tree_deep_crash_stays_local(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &l1, &sup), GR_OK);
    gr_ref l3r, l4r;
    CHECK_EQ(gr_whereis(sys, "l3", &l3r), GR_OK);
    CHECK_EQ(gr_whereis(sys, "l4", &l4r), GR_OK);
    struct kids k3 = kids_of(sys, l3r);
    CHECK_EQ(k3.n, 3);
    size_t mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, l4r, "w4b"), MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term w4b crash", "l4: child_crashed w4b crash",
                     "term w4a shutdown", "l4: child_exited w4a shutdown",
                     "init w4a", "l4: child_restarted w4a r1", "init w4b",
                     "l4: child_restarted w4b r1"));
    struct kids k3b = kids_of(sys, l3r);
    CHECK_EQ(k3b.rc, GR_OK);
    for (size_t i = 0; i < 3; i++)
        CHECK(gr_ref_eq(k3b.c[i].ref, k3.c[i].ref));
    CHECK_EQ(watch(sys, sup, "l1"), GR_OK);
    mark = trace_len();
    CHECK_EQ(gr_system_exit(sys, sup, &(gr_reason){.code = GR_ESHUTDOWN}),
             GR_OK);
    CHECK(EXPECT_SEQ_OF(mark, REC_TERM | REC_DOWN, "term w1b shutdown",
                        "term w2b shutdown", "term w3b shutdown",
                        "term w4b shutdown", "term w4a shutdown",
                        "term w3 shutdown", "term w2 shutdown",
                        "term w1 shutdown", "down l1 shutdown"));
    CHECK(only_live(sys, 1));
    sup_system_end(sys);
}

/* OTP: a group restart that takes in a child supervisor stops it like any
 * child (it stops its own children first, in reverse order) and starts it
 * again like any child (it starts its children, in order). Here l3
 * (rest_for_one) loses w3: w3b, then l4 (w4b, w4a) stop; w3, l4 (w4a,
 * w4b) and w3b start again. The level above is untouched. */
static void test_tree_group_restart_with_child_supervisor(void)
{
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &l1, &sup), GR_OK);
    gr_ref l2r, l3r, l4r;
    CHECK_EQ(gr_whereis(sys, "l2", &l2r), GR_OK);
    CHECK_EQ(gr_whereis(sys, "l3", &l3r), GR_OK);
    CHECK_EQ(gr_whereis(sys, "l4", &l4r), GR_OK);
    struct kids k2 = kids_of(sys, l2r);
    CHECK_EQ(k2.n, 3);
    size_t mark = trace_len();
    CHECK_EQ(poke(sys, kid_ref(sys, l3r, "w3"), MSG_CRASH), GR_OK);
    CHECK(EXPECT_SEQ(mark, "term w3 crash", "l3: child_crashed w3 crash",
                     "term w3b shutdown", "l3: child_exited w3b shutdown",
                     "term w4b shutdown", "l4: child_exited w4b shutdown",
                     "term w4a shutdown", "l4: child_exited w4a shutdown",
                     "l3: child_exited l4 shutdown", "init w3",
                     "l3: child_restarted w3 r1", "init w4a",
                     "l4: child_started w4a", "init w4b",
                     "l4: child_started w4b", "l3: child_restarted l4 r1",
                     "init w3b", "l3: child_restarted w3b r1"));
    struct kids k2b = kids_of(sys, l2r);
    CHECK_EQ(k2b.rc, GR_OK);
    for (size_t i = 0; i < 3; i++)
        CHECK(gr_ref_eq(k2b.c[i].ref, k2.c[i].ref));
    gr_ref l4new;
    CHECK_EQ(gr_whereis(sys, "l4", &l4new), GR_OK);
    CHECK(!gr_ref_eq(l4new, l4r));
    CHECK(gr_ref_eq(kid_ref(sys, l3r, "l4"), l4new));
    CHECK(KIDS_ARE(sys, l4new, "w4a", "w4b"));
    sup_system_end(sys);
}

/* Polls until sys has want actors alive, or WAIT_MS pass; returns the
 * last count. */
static uint64_t wait_alive(gr_system *sys, uint64_t want)
{
    double end = test_now() + WAIT_MS / 1000.0;
    uint64_t n;
    while ((n = stats_of(sys).alive) != want && test_now() < end)
        sleep_ms(1);
    return n;
}

/* Builds a chain of depth nested supervisors (each the only child of the
 * one above) in specs/kids, and starts it. */
static int start_chain(gr_system *sys, size_t depth, gr_sup_spec *specs,
                       gr_child_spec *kids, gr_ref *top)
{
    for (size_t i = 0; i < depth; i++) {
        specs[i] =
            (gr_sup_spec){.strategy = GR_ONE_FOR_ONE,
                          .intensity = 1,
                          .period_ms = 1000,
                          .children = i + 1 < depth ? &kids[i + 1] : NULL,
                          .nchildren = i + 1 < depth};
        kids[i] = (gr_child_spec){.id = "level",
                                  .behaviour = &gr_supervisor_behaviour,
                                  .arg = &specs[i],
                                  .arg_len = sizeof specs[i],
                                  .restart = GR_PERMANENT,
                                  .shutdown_ms = GR_SHUTDOWN_INFINITY,
                                  .type = GR_SUPERVISOR};
    }
    return gr_supervisor_start(sys, &specs[0], top);
}

/* A chain start on a thread of its own, with a stack of a given size. */
struct chain_job {
    gr_system *sys;
    size_t depth;
    gr_sup_spec *specs;
    gr_child_spec *kids;
    int rc;
};

static void *chain_job_run(void *p)
{
    struct chain_job *j = p;
    gr_ref top;
    j->rc = start_chain(j->sys, j->depth, j->specs, j->kids, &top);
    return NULL;
}

/* Supervisors start their children inside their own init, on one C stack:
 * a tree too deep for the starting thread's stack is refused with
 * GR_ELIMIT (the process does not crash, nothing is left running), and a
 * deep one that fits starts. The deep start runs on a thread with a 1 MiB
 * stack, so the refusal comes early whatever the sanitizer's frame sizes,
 * and shows the limit follows the thread's own stack. */
static void test_tree_too_deep_refused(void)
{
    const size_t deep = 100000, fits = 200;
    gr_sup_spec *specs = calloc(deep, sizeof *specs);
    gr_child_spec *kids = calloc(deep, sizeof *kids);
    CHECK(specs != NULL && kids != NULL);
    gr_system *sys = sup_system();
    CHECK(sys != NULL);
    uint64_t live0 = stats_of(sys).alive;
    struct chain_job j = {sys, deep, specs, kids, GR_OK};
    pthread_attr_t at;
    pthread_t th;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, (size_t)1 << 20);
    int started = pthread_create(&th, &at, chain_job_run, &j) == 0;
    pthread_attr_destroy(&at);
    if (started)
        pthread_join(th, NULL);
    uint64_t live = wait_alive(sys, live0);
    gr_ref top;
    int fit_rc = start_chain(sys, fits, specs, kids, &top);
    uint64_t live_fit = stats_of(sys).alive;
    sup_system_end(sys);
    free(specs);
    free(kids);
    CHECK(started);
    CHECK_EQ(j.rc, GR_ELIMIT);
    CHECK_EQ(live, live0); /* Every level started was stopped again. */
    CHECK_EQ(fit_rc, GR_OK);
    CHECK_EQ(live_fit, live0 + fits);
}

/* mid[m1 (registered as "m1"), m2] under a one-for-one top. */
static const gr_child_spec named_kids[] = {{.id = "m1",
                                            .name = "m1",
                                            .behaviour = &worker_b,
                                            .arg = "m1",
                                            .arg_len = sizeof "m1",
                                            .restart = GR_PERMANENT},
                                           WORKER("m2", GR_PERMANENT)};
static const gr_sup_spec named_mid = {.strategy = GR_ONE_FOR_ONE,
                                      .intensity = 3,
                                      .children = named_kids,
                                      .nchildren = NKIDS(named_kids),
                                      .name = "mid"};
static const gr_child_spec named_top_kids[] = {SUPERVISOR("mid", named_mid)};
static const gr_sup_spec named_top = {.strategy = GR_ONE_FOR_ONE,
                                      .intensity = 100,
                                      .period_ms = 5000,
                                      .children = named_top_kids,
                                      .nchildren = 1};

/* A child supervisor that is killed, or stopped, is restarted with its
 * registered child, though the old child still holds the name until its
 * exit signal is handled: a restart that finds the name taken is tried
 * again once the actors waiting to run have run (OTP's try_again goes
 * through the mailbox too), not again and again in the same turn until
 * the intensity runs out and the whole tree is gone (however high it is:
 * the old code gave up after 100 tries in one turn). One worker makes
 * that order certain; five rounds each way. */
static void test_tree_restart_with_registered_children(void)
{
    trace_reset();
    gr_config cfg = {.workers = 1,
                     .log_fn = quiet_log,
                     .no_signals = 1,
                     .event_fn = trace_event};
    gr_system *sys = start_system(&cfg);
    CHECK(sys != NULL);
    gr_ref top_ref;
    CHECK_EQ(gr_supervisor_start(sys, &named_top, &top_ref), GR_OK);
    for (int round = 0; round < 10; round++) {
        gr_ref mid = kid_ref(sys, top_ref, "mid"), m1 = GR_REF_NONE, now;
        CHECK_EQ(gr_whereis(sys, "m1", &m1), GR_OK);
        if (round % 2 == 0)
            CHECK_EQ(gr_system_exit(sys, mid, &(gr_reason){.code = GR_EKILL}),
                     GR_OK);
        else
            CHECK_EQ(gr_stop(sys, mid), GR_OK);
        /* The new mid's m1, once registered (bounded). */
        bool back = false;
        for (int i = 0; i < 2000 && !back; i++) {
            back = gr_whereis(sys, "m1", &now) == GR_OK && !gr_ref_eq(now, m1);
            if (!back)
                sleep_ms(1);
        }
        if (!back)
            trace_dump(0);
        CHECK(back);
        gr_child_counts counts; /* The top is still there. */
        CHECK_EQ(gr_supervisor_count_children(sys, top_ref, 5000, &counts),
                 GR_OK);
    }
    sup_system_end(sys);
}

TEST_MAIN(TEST_CASE(test_tree_orderly_stop),
          TEST_CASE(test_tree_stop_reason_passed_down),
          TEST_CASE(test_tree_nested_four_levels),
          TEST_CASE(test_tree_deep_crash_stays_local),
          TEST_CASE(test_tree_group_restart_with_child_supervisor),
          TEST_CASE(test_tree_too_deep_refused),
          TEST_CASE(test_tree_restart_with_registered_children))
