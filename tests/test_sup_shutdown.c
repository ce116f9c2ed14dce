/*
 * Supervisor shutdown specs, against the OTP supervisor documentation:
 * brutal kill, a timeout then kill, a cooperative stop, infinity, and the
 * worker default.
 */
#include "sup_api_env.h"

/* ---- shutdown specs --------------------------------------------------------
 */

/* GR_SHUTDOWN_BRUTAL kills at once: terminate sees killed, even in a child
 * that traps exits, and no EXIT message reaches it. */
static void test_shutdown_brutal(void)
{
    CHECK(open_env(0));
    struct kid_arg a1 = kid_arg(1, TRAP_IGNORE, R_ALL, NULL);
    struct kid_arg a2 = kid_arg(2, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {
        kid_spec("trapper", &a1, GR_PERMANENT, GR_SHUTDOWN_BRUTAL),
        kid_spec("plain", &a2, GR_PERMANENT, GR_SHUTDOWN_BRUTAL)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 2);
    gr_ref sup;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL) && take(REP_INIT, 2, NULL));

    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "trapper", GR_REF_NONE,
                                           SUP_WAIT),
             GR_OK);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_EKILLED);
    CHECK(none_within(REP_EXIT, 1, 0));

    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "plain", GR_REF_NONE,
                                           SUP_WAIT),
             GR_OK);
    CHECK(take(REP_TERM, 2, &r));
    CHECK_EQ(r.code, GR_EKILLED);

    /* The supervisor's own ordered shutdown uses the same spec. */
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "trapper", SUP_WAIT, NULL),
             GR_OK);
    CHECK(take(REP_INIT, 1, NULL));
    CHECK_EQ(stop_sup(sup), GR_OK);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_EKILLED);
    CHECK(none_within(REP_EXIT, 1, 0));
    CHECK(wait_gone(sup));
    close_env();
}

/* A timeout: shutdown signal, then kill when the child has not exited in
 * shutdown_ms. A trapping child that ignores its EXIT is killed. */
static void test_shutdown_timeout_kills(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_IGNORE, R_ALL, &sh);
    gr_child_spec kids[] = {kid_spec("stubborn", &a, GR_PERMANENT, 50)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 1);
    gr_ref sup;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL));
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "stubborn", GR_REF_NONE,
                                           SUP_WAIT),
             GR_OK);
    /* The EXIT came first, with reason shutdown, from the supervisor. */
    CHECK(take(REP_EXIT, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK(gr_ref_eq(r.from, sup));
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_EKILLED);
    /* Terminated, so not restarted. */
    CHECK(none_within(REP_INIT, 1, QUIET_MS));
    CHECK_EQ(atomic_load(&sh.inits), 1);
    close_env();
}

/* A cooperative child exits with shutdown before its timeout: a trapping
 * one that obeys its EXIT, and one that does not trap at all. */
static void test_shutdown_cooperative(void)
{
    CHECK(open_env(0));
    struct kid_arg a1 = kid_arg(1, TRAP_OBEY, R_ALL, NULL);
    struct kid_arg a2 = kid_arg(2, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("obeys", &a1, GR_PERMANENT, 50),
                            kid_spec("plain", &a2, GR_PERMANENT, 50)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 2);
    gr_ref sup;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL) && take(REP_INIT, 2, NULL));

    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "obeys", GR_REF_NONE,
                                           SUP_WAIT),
             GR_OK);
    CHECK(take(REP_EXIT, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);

    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "plain", GR_REF_NONE,
                                           SUP_WAIT),
             GR_OK);
    CHECK(take(REP_TERM, 2, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK(none_within(REP_EXIT, 2, 0));
    close_env();
}

/* GR_SHUTDOWN_INFINITY waits as long as the child takes: terminate_child
 * returns only after the child has exited on its own. */
static void test_shutdown_infinity(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_IGNORE, R_ALL, &sh);
    gr_child_spec kids[] = {
        kid_spec("patient", &a, GR_PERMANENT, GR_SHUTDOWN_INFINITY)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 1);
    gr_ref sup;
    struct rep r, init;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &init));

    struct term_call t = {.sys = T.sys, .sup = sup, .id = "patient", .sh = &sh};
    CHECK_EQ(pthread_create(&t.th, NULL, term_thread, &t), 0);
    CHECK(take(REP_EXIT, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    /* Well past any timeout a finite default would use for a test: the
     * child is alive (it answers) and the call is still waiting. */
    sleep_ms(LINGER_MS);
    CHECK_EQ(probe_tell(init.self, PROBE_PING, NULL, 0), GR_OK);
    CHECK(take_from(PROBE_PONG, init.self));
    CHECK(!atomic_load(&t.done));
    CHECK_EQ(atomic_load(&sh.terms), 0);

    CHECK_EQ(probe_tell(init.self, KID_QUIT, NULL, 0), GR_OK);
    if (!term_wait(&t, WAIT_MS)) {
        /* The helper is stuck in the call: leave the system behind. */
        fprintf(stderr, "  terminate_child did not return\n");
        test_failed_ = 1;
        return;
    }
    CHECK_EQ(t.rc, GR_OK);
    CHECK_EQ(t.terms_at_return, 1);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    close_env();
}

/* shutdown_ms GR_SHUTDOWN_DEFAULT is 5000 ms for a worker (OTP): a trapping
 * child that exits LINGER_MS after its EXIT is not killed. */
static void test_shutdown_default_worker(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_IGNORE, R_ALL, &sh);
    gr_child_spec kids[] = {
        kid_spec("slow", &a, GR_PERMANENT, GR_SHUTDOWN_DEFAULT)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 1);
    gr_ref sup;
    struct rep r, init;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &init));

    struct term_call t = {.sys = T.sys, .sup = sup, .id = "slow", .sh = &sh};
    CHECK_EQ(pthread_create(&t.th, NULL, term_thread, &t), 0);
    CHECK(take(REP_EXIT, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    sleep_ms(LINGER_MS);
    CHECK_EQ(probe_tell(init.self, PROBE_PING, NULL, 0), GR_OK);
    CHECK(take_from(PROBE_PONG, init.self));
    CHECK(!atomic_load(&t.done));
    CHECK_EQ(probe_tell(init.self, KID_QUIT, NULL, 0), GR_OK);
    if (!term_wait(&t, WAIT_MS)) {
        fprintf(stderr, "  terminate_child did not return\n");
        test_failed_ = 1;
        return;
    }
    CHECK_EQ(t.rc, GR_OK);
    CHECK_EQ(t.terms_at_return, 1);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN); /* Not GR_EKILLED. */
    close_env();
}

TEST_MAIN(TEST_CASE(test_shutdown_brutal),
          TEST_CASE(test_shutdown_timeout_kills),
          TEST_CASE(test_shutdown_cooperative),
          TEST_CASE(test_shutdown_infinity),
          TEST_CASE(test_shutdown_default_worker))
