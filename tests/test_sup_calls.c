/*
 * The supervisor runtime API, against the OTP supervisor documentation:
 * start/terminate/restart/delete/which/count, the *_async forms, the wrong
 * thread, a dead supervisor, a ref that is not a supervisor's;
 * simple-one-for-one; child spec validation.
 */
#include "sup_api_env.h"

/* ---- runtime API ----------------------------------------------------------
 */

/* start_child adds a child at the end and starts it; a taken id is
 * GR_EEXIST (running or not); an init failure returns its error and keeps
 * no spec; a simple-one-for-one supervisor refuses it. */
static void test_start_child(void)
{
    CHECK(open_env(0));
    struct shared sh1 = {0}, sh2 = {0};
    struct kid_arg a1 = kid_arg(1, TRAP_NONE, R_ALL, &sh1);
    struct kid_arg a2 = kid_arg(2, TRAP_NONE, R_ALL, &sh2);
    gr_child_spec k1 = kid_spec("a", &a1, GR_PERMANENT, 1000);
    gr_child_spec k2 = kid_spec("b", &a2, GR_PERMANENT, 1000);
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    gr_ref sup, ref = GR_REF_NONE, ref2 = GR_REF_NONE;
    gr_child_info info;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK_EQ(nspecs(sup), 0);

    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &k1, SUP_WAIT, &ref), GR_OK);
    CHECK(!gr_ref_is_none(ref));
    CHECK(take(REP_INIT, 1, &r));
    CHECK(gr_ref_eq(r.self, ref));
    CHECK(child_of(sup, "a", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    CHECK(gr_ref_eq(info.ref, ref));

    /* Duplicate id, running: refused, nothing started. */
    ref2 = GR_REF_NONE;
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &k1, SUP_WAIT, &ref2),
             GR_EEXIST);
    CHECK_EQ(atomic_load(&sh1.inits), 1);
    CHECK_EQ(nspecs(sup), 1);
    /* Duplicate id, stopped (the spec is kept): refused too. */
    CHECK_EQ(
        gr_supervisor_terminate_child(T.sys, sup, "a", GR_REF_NONE, SUP_WAIT),
        GR_OK);
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &k1, SUP_WAIT, NULL),
             GR_EEXIST);
    CHECK_EQ(atomic_load(&sh1.inits), 1);

    /* Init fails: its error comes back and the spec is not kept. */
    atomic_store(&sh2.fail_left, 1);
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &k2, SUP_WAIT, &ref2),
             INIT_FAIL_CODE);
    CHECK_EQ(atomic_load(&sh2.inits), 1);
    CHECK_EQ(nspecs(sup), 1);
    CHECK(!child_of(sup, "b", &info));
    /* So the id is free: the same spec starts now. */
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &k2, SUP_WAIT, &ref2),
             GR_OK);
    CHECK(take(REP_INIT, 2, &r));
    CHECK(gr_ref_eq(r.self, ref2));
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 2);
    CHECK(strcmp(v[0].id, "a") == 0 && strcmp(v[1].id, "b") == 0);

    /* Simple-one-for-one takes no static children. */
    gr_child_spec tmpl = kid_spec("t", &a1, GR_PERMANENT, 1000);
    gr_sup_spec ssp = sup_spec(GR_SIMPLE_ONE_FOR_ONE, 1, &tmpl, 1);
    gr_ref ssup;
    CHECK_EQ(gr_supervisor_start(T.sys, &ssp, &ssup), GR_OK);
    CHECK_EQ(gr_supervisor_start_child(T.sys, ssup, &k1, SUP_WAIT, NULL),
             GR_EINVAL);
    CHECK_EQ(nspecs(ssup), 0);
    close_env();
}

/* terminate_child stops the child by its spec, keeps the spec (state
 * STOPPED, no ref) and does not restart it, even when permanent. */
static void test_terminate_child(void)
{
    CHECK(open_env(1));
    struct shared sh = {0};
    struct kid_arg a1 = kid_arg(1, TRAP_NONE, R_ALL, &sh);
    struct kid_arg a2 = kid_arg(2, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("p", &a1, GR_PERMANENT, 1000),
                            kid_spec("q", &a2, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 5, kids, 2);
    gr_ref sup;
    gr_child_info info;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL) && take(REP_INIT, 2, NULL));
    uint64_t restarts0 = stats_of(T.sys).restarts;

    CHECK_EQ(
        gr_supervisor_terminate_child(T.sys, sup, "p", GR_REF_NONE, SUP_WAIT),
        GR_OK);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK(none_within(REP_INIT, 1, QUIET_MS));
    CHECK_EQ(atomic_load(&sh.inits), 1);
    CHECK(child_of(sup, "p", &info));
    CHECK_EQ(info.state, GR_CHILD_STOPPED);
    CHECK(gr_ref_is_none(info.ref));
    CHECK(child_of(sup, "q", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    gr_child_counts c;
    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, SUP_WAIT, &c), GR_OK);
    CHECK_EQ(c.specs, 2);
    CHECK_EQ(c.active, 1);
    CHECK_EQ(stats_of(T.sys).restarts, restarts0);
    CHECK_EQ(ev_count(GR_EV_CHILD_RESTARTED, NULL), 0);
    CHECK_EQ(ev_wait(GR_EV_CHILD_EXITED, "p", 1), 1);

    /* Again on a stopped child: ok (OTP), nothing changes. */
    CHECK_EQ(
        gr_supervisor_terminate_child(T.sys, sup, "p", GR_REF_NONE, SUP_WAIT),
        GR_OK);
    CHECK(child_of(sup, "p", &info));
    CHECK_EQ(info.state, GR_CHILD_STOPPED);
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "nope", GR_REF_NONE,
                                           SUP_WAIT),
             GR_ENOTFOUND);
    close_env();
}

/* terminate_child on a temporary child removes its spec (OTP). */
static void test_terminate_temporary_removed(void)
{
    CHECK(open_env(0));
    struct kid_arg a1 = kid_arg(1, TRAP_NONE, R_ALL, NULL);
    struct kid_arg a2 = kid_arg(2, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("perm", &a1, GR_PERMANENT, 1000),
                            kid_spec("temp", &a2, GR_TEMPORARY, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 5, kids, 2);
    gr_ref sup;
    gr_child_info info;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL) && take(REP_INIT, 2, NULL));
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, "temp", GR_REF_NONE,
                                           SUP_WAIT),
             GR_OK);
    CHECK(take(REP_TERM, 2, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK_EQ(nspecs(sup), 1);
    CHECK(!child_of(sup, "temp", &info));
    CHECK(child_of(sup, "perm", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "temp", SUP_WAIT, NULL),
             GR_ENOTFOUND);
    close_env();
}

/* restart_child starts a stopped child again with a new ref; GR_EBUSY when
 * it runs, GR_ENOTFOUND for an unknown id, its init's error when it fails
 * (the spec stays, stopped). */
static void test_restart_child(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, &sh);
    gr_child_spec kids[] = {kid_spec("p", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 1);
    gr_ref sup, ref = GR_REF_NONE;
    gr_child_info info;
    struct rep r, first;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &first));

    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "p", SUP_WAIT, &ref),
             GR_EBUSY);
    CHECK_EQ(atomic_load(&sh.inits), 1);
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "nope", SUP_WAIT, &ref),
             GR_ENOTFOUND);

    CHECK_EQ(
        gr_supervisor_terminate_child(T.sys, sup, "p", GR_REF_NONE, SUP_WAIT),
        GR_OK);
    CHECK(take(REP_TERM, 1, NULL));
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "p", SUP_WAIT, &ref),
             GR_OK);
    CHECK(!gr_ref_is_none(ref));
    CHECK(!gr_ref_eq(ref, first.self));
    CHECK(take(REP_INIT, 1, &r));
    CHECK(gr_ref_eq(r.self, ref));
    CHECK(child_of(sup, "p", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    CHECK(gr_ref_eq(info.ref, ref));

    /* A restart whose init fails: the error, and the spec stays stopped. */
    CHECK_EQ(
        gr_supervisor_terminate_child(T.sys, sup, "p", GR_REF_NONE, SUP_WAIT),
        GR_OK);
    CHECK(take(REP_TERM, 1, NULL));
    atomic_store(&sh.fail_left, 1);
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "p", SUP_WAIT, &ref),
             INIT_FAIL_CODE);
    CHECK(child_of(sup, "p", &info));
    CHECK_EQ(info.state, GR_CHILD_STOPPED);
    CHECK(gr_ref_is_none(info.ref));
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "p", SUP_WAIT, &ref),
             GR_OK);
    CHECK(take(REP_INIT, 1, &r));
    CHECK(gr_ref_eq(r.self, ref));
    close_env();
}

/* delete_child: GR_EBUSY while running; GR_OK once stopped, and then the
 * child is gone (the id free again). */
static void test_delete_child(void)
{
    CHECK(open_env(0));
    struct kid_arg a1 = kid_arg(1, TRAP_NONE, R_ALL, NULL);
    struct kid_arg a2 = kid_arg(2, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("x", &a1, GR_PERMANENT, 1000),
                            kid_spec("y", &a2, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 2);
    gr_ref sup;
    gr_child_info info;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL) && take(REP_INIT, 2, NULL));

    CHECK_EQ(gr_supervisor_delete_child(T.sys, sup, "x", SUP_WAIT), GR_EBUSY);
    CHECK(child_of(sup, "x", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    CHECK_EQ(
        gr_supervisor_terminate_child(T.sys, sup, "x", GR_REF_NONE, SUP_WAIT),
        GR_OK);
    CHECK(take(REP_TERM, 1, NULL));
    CHECK_EQ(gr_supervisor_delete_child(T.sys, sup, "x", SUP_WAIT), GR_OK);
    CHECK(!child_of(sup, "x", &info));
    CHECK_EQ(nspecs(sup), 1);
    CHECK_EQ(gr_supervisor_delete_child(T.sys, sup, "x", SUP_WAIT),
             GR_ENOTFOUND);
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "x", SUP_WAIT, NULL),
             GR_ENOTFOUND);
    CHECK_EQ(
        gr_supervisor_terminate_child(T.sys, sup, "x", GR_REF_NONE, SUP_WAIT),
        GR_ENOTFOUND);
    /* The id can be used again; the new child goes at the end. */
    gr_child_spec again = kid_spec("x", &a1, GR_PERMANENT, 1000);
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &again, SUP_WAIT, NULL),
             GR_OK);
    CHECK(take(REP_INIT, 1, NULL));
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 2);
    CHECK(strcmp(v[0].id, "y") == 0 && strcmp(v[1].id, "x") == 0);
    close_env();
}

/* which_children: start order, states, refs, types and restart types; a
 * cap smaller than the total copies cap entries and still reports the
 * total. */
static void test_which_children(void)
{
    CHECK(open_env(0));
    struct kid_arg a[4];
    for (int i = 0; i < 4; i++)
        a[i] = kid_arg(i + 1, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("a", &a[0], GR_PERMANENT, 1000),
                            kid_spec("b", &a[1], GR_TRANSIENT, 1000),
                            kid_spec("c", &a[2], GR_TEMPORARY, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 3);
    gr_ref sup, refs[4];
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    for (int i = 0; i < 3; i++) {
        CHECK(take(REP_INIT, i + 1, &r));
        refs[i] = r.self;
    }
    gr_child_spec d = kid_spec("d", &a[3], GR_PERMANENT, 1000);
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &d, SUP_WAIT, &refs[3]),
             GR_OK);
    CHECK(take(REP_INIT, 4, NULL));

    static const char *const ids[] = {"a", "b", "c", "d"};
    static const gr_restart rt[] = {GR_PERMANENT, GR_TRANSIENT, GR_TEMPORARY,
                                    GR_PERMANENT};
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 4);
    for (int i = 0; i < 4; i++) {
        CHECK(strcmp(v[i].id, ids[i]) == 0);
        CHECK_EQ(v[i].state, GR_CHILD_RUNNING);
        CHECK(gr_ref_eq(v[i].ref, refs[i]));
        CHECK_EQ(v[i].type, GR_WORKER);
        CHECK_EQ(v[i].restart, rt[i]);
    }

    CHECK_EQ(
        gr_supervisor_terminate_child(T.sys, sup, "b", GR_REF_NONE, SUP_WAIT),
        GR_OK);
    CHECK_EQ(which(sup, v), 4);
    CHECK(strcmp(v[1].id, "b") == 0);
    CHECK_EQ(v[1].state, GR_CHILD_STOPPED);
    CHECK(gr_ref_is_none(v[1].ref));
    CHECK_EQ(v[0].state, GR_CHILD_RUNNING);
    CHECK_EQ(v[2].state, GR_CHILD_RUNNING);
    CHECK_EQ(v[3].state, GR_CHILD_RUNNING);

    /* cap 2: two entries copied, the rest untouched, total 4. */
    gr_child_info small[3];
    memset(small, 0x5a, sizeof small);
    gr_child_info sentinel;
    memset(&sentinel, 0x5a, sizeof sentinel);
    size_t n = 0;
    CHECK_EQ(gr_supervisor_which_children(T.sys, sup, SUP_WAIT, small, 2, &n),
             GR_OK);
    CHECK_EQ(n, 4);
    CHECK(strcmp(small[0].id, "a") == 0 && strcmp(small[1].id, "b") == 0);
    CHECK(memcmp(&small[2], &sentinel, sizeof sentinel) == 0);
    /* cap 0: only the total. */
    n = 0;
    CHECK_EQ(gr_supervisor_which_children(T.sys, sup, SUP_WAIT, NULL, 0, &n),
             GR_OK);
    CHECK_EQ(n, 4);
    close_env();
}

/* count_children: specs, active, supervisors, workers (OTP). */
static void test_count_children(void)
{
    CHECK(open_env(0));
    struct kid_arg a1 = kid_arg(1, TRAP_NONE, R_ALL, NULL);
    struct kid_arg a2 = kid_arg(2, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("w1", &a1, GR_PERMANENT, 1000),
                            kid_spec("w2", &a2, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 2);
    gr_ref sup;
    gr_child_counts c;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL) && take(REP_INIT, 2, NULL));
    gr_child_spec sub = {.id = "sub",
                         .behaviour = &gr_supervisor_behaviour,
                         .arg = &empty_sup,
                         .arg_len = sizeof empty_sup,
                         .restart = GR_PERMANENT,
                         .type = GR_SUPERVISOR};
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &sub, SUP_WAIT, NULL),
             GR_OK);

    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, SUP_WAIT, &c), GR_OK);
    CHECK_EQ(c.specs, 3);
    CHECK_EQ(c.active, 3);
    CHECK_EQ(c.supervisors, 1);
    CHECK_EQ(c.workers, 2);

    CHECK_EQ(
        gr_supervisor_terminate_child(T.sys, sup, "w1", GR_REF_NONE, SUP_WAIT),
        GR_OK);
    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, SUP_WAIT, &c), GR_OK);
    CHECK_EQ(c.specs, 3);
    CHECK_EQ(c.active, 2);
    CHECK_EQ(c.supervisors, 1);
    CHECK_EQ(c.workers, 2);
    CHECK_EQ(gr_supervisor_delete_child(T.sys, sup, "w1", SUP_WAIT), GR_OK);
    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, SUP_WAIT, &c), GR_OK);
    CHECK_EQ(c.specs, 2);
    CHECK_EQ(c.active, 2);
    CHECK_EQ(c.workers, 1);
    close_env();
}

/* The blocking calls return GR_EWRONGTHREAD inside a callback (init and
 * handle), and do nothing. */
static void test_calls_wrong_thread(void)
{
    CHECK(open_env(0));
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("a", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 1);
    gr_ref sup, cl;
    struct rep r, init;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &init));

    /* From init (run on this thread by gr_system_spawn). */
    CHECK_EQ(gr_system_spawn(T.sys, &client_b, &sup, sizeof sup, &cl), GR_OK);
    CHECK(take(REP_PROBE, ANY_TAG, &r));
    CHECK_EQ(r.nrcs, 7);
    for (int i = 0; i < r.nrcs; i++)
        CHECK_EQ(r.rcs[i], GR_EWRONGTHREAD);

    /* From a handler, on a worker. */
    struct kid_arg za = kid_arg(9, TRAP_NONE, R_ALL, NULL);
    struct cl_cmd c = {.sup = sup, .id = "a"};
    c.spec = kid_spec("z", &za, GR_PERMANENT, 1000);
    CHECK_EQ(probe_tell(cl, CL_PROBE, &c, sizeof c), GR_OK);
    CHECK(take(REP_PROBE, ANY_TAG, &r));
    CHECK_EQ(r.nrcs, 7);
    for (int i = 0; i < r.nrcs; i++)
        CHECK_EQ(r.rcs[i], GR_EWRONGTHREAD);

    /* Nothing happened. */
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 1);
    CHECK(strcmp(v[0].id, "a") == 0);
    CHECK_EQ(v[0].state, GR_CHILD_RUNNING);
    CHECK(gr_ref_eq(v[0].ref, init.self));
    CHECK(none_within(REP_INIT, 9, 0));
    close_env();
}

/* Every call on a supervisor that is gone returns GR_ENOACTOR. */
static void test_calls_dead_supervisor(void)
{
    CHECK(open_env(0));
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("a", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 1);
    gr_ref sup;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, NULL));
    CHECK_EQ(stop_sup(sup), GR_OK);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK(wait_gone(sup));

    gr_child_spec k = kid_spec("b", &a, GR_PERMANENT, 1000);
    gr_child_info v[4];
    gr_child_counts c;
    size_t n;
    gr_ref out;
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &k, SUP_WAIT, &out),
             GR_ENOACTOR);
    CHECK_EQ(
        gr_supervisor_spawn_child(T.sys, sup, &a, sizeof a, SUP_WAIT, &out),
        GR_ENOACTOR);
    CHECK_EQ(
        gr_supervisor_terminate_child(T.sys, sup, "a", GR_REF_NONE, SUP_WAIT),
        GR_ENOACTOR);
    CHECK_EQ(gr_supervisor_restart_child(T.sys, sup, "a", SUP_WAIT, &out),
             GR_ENOACTOR);
    CHECK_EQ(gr_supervisor_delete_child(T.sys, sup, "a", SUP_WAIT),
             GR_ENOACTOR);
    CHECK_EQ(gr_supervisor_which_children(T.sys, sup, SUP_WAIT, v, 4, &n),
             GR_ENOACTOR);
    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, SUP_WAIT, &c),
             GR_ENOACTOR);
    CHECK(none_within(REP_INIT, 1, 0));
    close_env();
}

/* Calls on an actor that is not a supervisor (a supervisor's worker, an
 * inbox) return GR_ENOTSUP at once, blocking or async, and do not disturb
 * it: the request never reaches it, it does not crash, it still works. */
static void test_calls_not_a_supervisor(void)
{
    CHECK(open_env(0));
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, NULL);
    gr_child_spec kids[] = {kid_spec("a", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, 1);
    gr_ref sup;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &r));
    gr_ref worker = r.self;

    gr_child_spec k = kid_spec("b", &a, GR_PERMANENT, 1000);
    gr_child_info v[4];
    gr_child_counts c;
    size_t n;
    gr_ref out;
    CHECK_EQ(gr_supervisor_start_child(T.sys, worker, &k, SUP_WAIT, &out),
             GR_ENOTSUP);
    CHECK_EQ(
        gr_supervisor_spawn_child(T.sys, worker, &a, sizeof a, SUP_WAIT, &out),
        GR_ENOTSUP);
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, worker, "a", GR_REF_NONE,
                                           SUP_WAIT),
             GR_ENOTSUP);
    CHECK_EQ(gr_supervisor_restart_child(T.sys, worker, "a", SUP_WAIT, &out),
             GR_ENOTSUP);
    CHECK_EQ(gr_supervisor_delete_child(T.sys, worker, "a", SUP_WAIT),
             GR_ENOTSUP);
    CHECK_EQ(gr_supervisor_which_children(T.sys, worker, SUP_WAIT, v, 4, &n),
             GR_ENOTSUP);
    CHECK_EQ(gr_supervisor_count_children(T.sys, worker, SUP_WAIT, &c),
             GR_ENOTSUP);

    /* An inbox nobody receives on: refused at once all the same. */
    gr_inbox *idle;
    CHECK_EQ(gr_inbox_open(T.sys, &idle), GR_OK);
    int idle_rc = gr_supervisor_which_children(T.sys, gr_inbox_ref(idle),
                                               SUP_WAIT, v, 4, &n);
    gr_msg *stray = NULL;
    int stray_rc = gr_inbox_recv(idle, &stray, GR_DURATION_ZERO);
    gr_inbox_close(idle);
    CHECK_EQ(idle_rc, GR_ENOTSUP);
    CHECK_EQ(stray_rc, GR_ETIMEDOUT); /* The request never reached it. */

    /* From an actor: refused at once, and no answer follows. */
    gr_ref cl;
    CHECK_EQ(gr_system_spawn(T.sys, &client_b, NULL, 0, &cl), GR_OK);
    struct cl_cmd cmd_start = {.sup = worker, .corr = 201, .spec = k};
    CHECK_EQ(probe_tell(cl, CL_START, &cmd_start, sizeof cmd_start), GR_OK);
    CHECK(take(REP_SENT, 201, &r));
    CHECK_EQ(r.rc, GR_ENOTSUP);
    CHECK(none_within(REP_REPLY, ANY_TAG, QUIET_MS));

    /* The worker was not disturbed: no exit, no restart, still there. */
    CHECK(none_within(REP_TERM, 1, QUIET_MS));
    CHECK_EQ(which(sup, v), 1);
    CHECK(gr_ref_eq(v[0].ref, worker));
    close_env();
}

/* Opened by the test: until then a slow child's init waits (at most
 * WAIT_MS, so a broken case still ends). */
static atomic_int slow_gate;

static int slow_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx, (void)state, (void)arg, (void)len;
    double end = test_now() + WAIT_MS / 1000.0;
    while (!atomic_load(&slow_gate) && test_now() < end)
        sleep_ms(1);
    return GR_OK;
}

static int slow_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx, (void)state, (void)m;
    return GR_CONTINUE;
}

static const gr_behaviour slow_b = {
    .name = "slow", .init = slow_init, .handle = slow_handle};

/* A child whose init takes long holds its supervisor's worker, not the
 * actors that worker had lined up: the answer to a request the supervisor
 * finished just before reaches its asker while the init still runs. */
static void test_slow_init_holds_no_one(void)
{
    CHECK(open_env(0));
    atomic_store(&slow_gate, 0);
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    gr_ref sup, cl;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK_EQ(gr_system_spawn(T.sys, &client_b, NULL, 0, &cl), GR_OK);
    /* Both requests queue at the supervisor; the second starts the slow
     * child. */
    struct cl_cmd t = {.sup = sup, .corr = 301, .id = "nope"};
    struct cl_cmd c = {.sup = sup, .corr = 302};
    c.spec = (gr_child_spec){.id = "slow",
                             .behaviour = &slow_b,
                             .restart = GR_TEMPORARY,
                             .shutdown_ms = 1000};
    CHECK_EQ(probe_tell(cl, CL_TERMINATE, &t, sizeof t), GR_OK);
    CHECK_EQ(probe_tell(cl, CL_START, &c, sizeof c), GR_OK);
    int first = take(REP_REPLY, 301, &r);
    int gate_was = atomic_exchange(&slow_gate, 1);
    CHECK(first);
    CHECK_EQ(gate_was, 0); /* It came while the init still waited. */
    CHECK_EQ(r.rc, GR_ENOTFOUND);
    CHECK(take(REP_REPLY, 302, &r));
    CHECK_EQ(r.rc, GR_OK);
    close_env();
}

/* A blocking call returns GR_ETIMEDOUT when its timeout runs out while the
 * supervisor is busy (here in a child's slow init), and the request is not
 * withdrawn: the child still starts. A duration below GR_DURATION_DEFAULT
 * is refused before anything is sent. */
static void test_calls_time_out(void)
{
    CHECK(open_env(0));
    atomic_store(&slow_gate, 0);
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    gr_ref sup, out = GR_REF_NONE;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    gr_child_spec slow = {.id = "slow",
                          .behaviour = &slow_b,
                          .restart = GR_PERMANENT,
                          .shutdown_ms = 1000};
    gr_child_counts c;
    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, -3, &c), GR_EINVAL);
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &slow, -3, &out), GR_EINVAL);
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &slow, 50, &out),
             GR_ETIMEDOUT);
    CHECK(gr_ref_is_none(out));
    /* The supervisor is still in the child's init: nothing answers. */
    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, GR_DURATION_ZERO, &c),
             GR_ETIMEDOUT);
    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, 20, &c), GR_ETIMEDOUT);
    atomic_store(&slow_gate, 1);
    /* The timed-out request was carried out; its late answers were
     * dropped, so this call gets its own answer. */
    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, SUP_WAIT, &c), GR_OK);
    CHECK_EQ(c.specs, 1);
    CHECK_EQ(c.active, 1);
    gr_child_info info;
    CHECK(child_of(sup, "slow", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    close_env();
}

/* The *_async forms, from an actor: each request is an ask whose one
 * answer, a GR_MSG_SUP_REPLY from the supervisor, carries the corr the
 * call stored, read with gr_sup_reply_read (which refuses other
 * messages). */
static void test_async_replies(void)
{
    CHECK(open_env(0));
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    struct kid_arg tmpl_arg = kid_arg(99, TRAP_NONE, R_ALL, NULL);
    gr_child_spec tmpl = kid_spec("t", &tmpl_arg, GR_PERMANENT, 1000);
    gr_sup_spec ssp = sup_spec(GR_SIMPLE_ONE_FOR_ONE, 1, &tmpl, 1);
    gr_ref sup, ssup, cl;
    struct rep r, k;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK_EQ(gr_supervisor_start(T.sys, &ssp, &ssup), GR_OK);
    CHECK_EQ(gr_system_spawn(T.sys, &client_b, NULL, 0, &cl), GR_OK);

    /* start_child_async. */
    struct kid_arg a1 = kid_arg(1, TRAP_NONE, R_ALL, NULL);
    struct cl_cmd c = {.sup = sup, .corr = 101};
    c.spec = kid_spec("k1", &a1, GR_PERMANENT, 1000);
    CHECK_EQ(probe_tell(cl, CL_START, &c, sizeof c), GR_OK);
    CHECK(take(REP_SENT, 101, &r));
    CHECK_EQ(r.rc, GR_OK);
    CHECK_EQ(r.read_rc, GR_EINVAL);
    uint64_t sent_corr = r.corr;
    CHECK(sent_corr != 0);
    CHECK(take(REP_REPLY, 101, &r));
    CHECK_EQ(r.corr, sent_corr);
    CHECK_EQ(r.code, 1); /* A GR_MSG_SUP_REPLY. */
    CHECK_EQ(r.read_rc, GR_OK);
    CHECK_EQ(r.tag, 101);
    CHECK_EQ(r.rc, GR_OK);
    CHECK(gr_ref_eq(r.from, sup));
    CHECK(take(REP_INIT, 1, &k));
    CHECK(gr_ref_eq(r.child, k.self));

    /* A duplicate: the error comes back the same way. */
    c.corr = 102;
    CHECK_EQ(probe_tell(cl, CL_START, &c, sizeof c), GR_OK);
    CHECK(take(REP_SENT, 102, &r));
    CHECK_EQ(r.rc, GR_OK);
    CHECK(take(REP_REPLY, 102, &r));
    CHECK_EQ(r.tag, 102);
    CHECK_EQ(r.rc, GR_EEXIST);
    CHECK(gr_ref_is_none(r.child));

    /* terminate_child_async by id. */
    struct cl_cmd t = {.sup = sup, .corr = 103, .id = "k1"};
    CHECK_EQ(probe_tell(cl, CL_TERMINATE, &t, sizeof t), GR_OK);
    CHECK(take(REP_REPLY, 103, &r));
    CHECK_EQ(r.tag, 103);
    CHECK_EQ(r.rc, GR_OK);
    CHECK(take(REP_TERM, 1, &k));
    CHECK_EQ(k.code, GR_ESHUTDOWN);
    t.corr = 104;
    t.id = "nope";
    CHECK_EQ(probe_tell(cl, CL_TERMINATE, &t, sizeof t), GR_OK);
    CHECK(take(REP_REPLY, 104, &r));
    CHECK_EQ(r.tag, 104);
    CHECK_EQ(r.rc, GR_ENOTFOUND);

    /* spawn_child_async on the simple-one-for-one supervisor. */
    struct cl_cmd s = {.sup = ssup, .corr = 105};
    s.karg = kid_arg(7, TRAP_NONE, R_ALL, NULL);
    CHECK_EQ(probe_tell(cl, CL_SPAWN, &s, sizeof s), GR_OK);
    CHECK(take(REP_SENT, 105, &r));
    CHECK_EQ(r.rc, GR_OK);
    CHECK(take(REP_REPLY, 105, &r));
    CHECK_EQ(r.tag, 105);
    CHECK_EQ(r.rc, GR_OK);
    CHECK(gr_ref_eq(r.from, ssup));
    CHECK(take(REP_INIT, 7, &k));
    CHECK(gr_ref_eq(r.child, k.self));
    /* ... and on the static one: GR_EINVAL. */
    s.sup = sup;
    s.corr = 106;
    CHECK_EQ(probe_tell(cl, CL_SPAWN, &s, sizeof s), GR_OK);
    CHECK(take(REP_REPLY, 106, &r));
    CHECK_EQ(r.tag, 106);
    CHECK_EQ(r.rc, GR_EINVAL);

    /* To a supervisor that is gone: refused at once, no reply. */
    CHECK_EQ(stop_sup(sup), GR_OK);
    CHECK(wait_gone(sup));
    c.corr = 107;
    CHECK_EQ(probe_tell(cl, CL_START, &c, sizeof c), GR_OK);
    CHECK(take(REP_SENT, 107, &r));
    CHECK_EQ(r.rc, GR_ENOACTOR);
    CHECK(none_within(REP_REPLY, ANY_TAG, QUIET_MS));
    close_env();
}

/* ---- simple-one-for-one ---------------------------------------------------
 */

/* Starts a simple-one-for-one supervisor of kids with restart type rt and
 * a template arg tagged 99. */
static int start_sofo(gr_restart rt, gr_ref *sup)
{
    struct kid_arg ta = kid_arg(99, TRAP_NONE, R_ALL, NULL);
    gr_child_spec tmpl = kid_spec("worker", &ta, rt, 1000);
    gr_sup_spec sp = sup_spec(GR_SIMPLE_ONE_FOR_ONE, 10, &tmpl, 1);
    return gr_supervisor_start(T.sys, &sp, sup);
}

/* Spawns a dynamic kid with tag; returns 1 with its ref (from the call and
 * from its init report, which must agree). */
static int spawn_kid(gr_ref sup, int32_t tag, struct shared *sh, gr_ref *out)
{
    struct kid_arg a = kid_arg(tag, TRAP_NONE, R_ALL, sh);
    struct rep r;
    gr_ref ref = GR_REF_NONE;
    int rc =
        gr_supervisor_spawn_child(T.sys, sup, &a, sizeof a, SUP_WAIT, &ref);
    if (rc != GR_OK) {
        fprintf(stderr, "  spawn_child: %s\n", gr_errname(rc));
        return 0;
    }
    if (!take(REP_INIT, tag, &r) || !gr_ref_eq(r.self, ref))
        return 0;
    *out = ref;
    return 1;
}

/* spawn_child starts children from the template, each with its own arg;
 * the supervisor starts none by itself. */
static void test_sofo_spawn(void)
{
    CHECK(open_env(0));
    gr_ref sup, refs[3];
    CHECK_EQ(start_sofo(GR_PERMANENT, &sup), GR_OK);
    CHECK_EQ(nspecs(sup), 0);
    for (int i = 0; i < 3; i++)
        CHECK(spawn_kid(sup, i + 1, NULL, &refs[i]));
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 3);
    for (int i = 0; i < 3; i++) {
        CHECK(strcmp(v[i].id, "worker") == 0);
        CHECK_EQ(v[i].state, GR_CHILD_RUNNING);
        CHECK(gr_ref_eq(v[i].ref, refs[i]));
        CHECK_EQ(v[i].restart, GR_PERMANENT);
    }
    gr_child_counts c;
    CHECK_EQ(gr_supervisor_count_children(T.sys, sup, SUP_WAIT, &c), GR_OK);
    CHECK_EQ(c.specs, 3);
    CHECK_EQ(c.active, 3);
    CHECK_EQ(c.workers, 3);
    CHECK_EQ(c.supervisors, 0);
    /* The template's own arg was never used. */
    CHECK(none_within(REP_INIT, 99, 0));
    close_env();
}

/* A crashed permanent dynamic child is restarted with the same arg. */
static void test_sofo_restart_same_arg(void)
{
    CHECK(open_env(0));
    gr_ref sup, r1, r2;
    struct rep r;
    CHECK_EQ(start_sofo(GR_PERMANENT, &sup), GR_OK);
    CHECK(spawn_kid(sup, 1, NULL, &r1));
    CHECK(spawn_kid(sup, 2, NULL, &r2));
    CHECK_EQ(probe_tell(r1, KID_CRASH, NULL, 0), GR_OK);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_EFAILED);
    CHECK(take(REP_INIT, 1, &r));
    CHECK(!gr_ref_eq(r.self, r1));
    gr_ref n1 = r.self;
    CHECK(none_within(REP_INIT, 2, 0));
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 2);
    CHECK(gr_ref_eq(v[0].ref, n1));
    CHECK(gr_ref_eq(v[1].ref, r2));
    CHECK_EQ(v[0].state, GR_CHILD_RUNNING);
    close_env();
}

/* A transient dynamic child that exits normally is removed (and one that
 * crashes is restarted); a temporary one is removed even after a crash. */
static void test_sofo_transient_normal_removed(void)
{
    CHECK(open_env(0));
    gr_ref sup, r1, r2;
    struct rep r;
    CHECK_EQ(start_sofo(GR_TRANSIENT, &sup), GR_OK);
    CHECK(spawn_kid(sup, 1, NULL, &r1));
    CHECK(spawn_kid(sup, 2, NULL, &r2));
    CHECK_EQ(probe_end(r1, GR_STOP), GR_OK);
    CHECK(take(REP_TERM, 1, &r));
    CHECK_EQ(r.code, GR_OK);
    CHECK_EQ(wait_specs(sup, 1), 1);
    CHECK(none_within(REP_INIT, 1, QUIET_MS));
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 1);
    CHECK(gr_ref_eq(v[0].ref, r2));
    /* A crash is restarted. */
    CHECK_EQ(probe_tell(r2, KID_CRASH, NULL, 0), GR_OK);
    CHECK(take(REP_INIT, 2, &r));
    CHECK(!gr_ref_eq(r.self, r2));
    CHECK_EQ(nspecs(sup), 1);

    gr_ref tsup, t1;
    CHECK_EQ(start_sofo(GR_TEMPORARY, &tsup), GR_OK);
    CHECK(spawn_kid(tsup, 3, NULL, &t1));
    CHECK_EQ(probe_tell(t1, KID_CRASH, NULL, 0), GR_OK);
    CHECK(take(REP_TERM, 3, NULL));
    CHECK_EQ(wait_specs(tsup, 0), 0);
    CHECK(none_within(REP_INIT, 3, QUIET_MS));
    close_env();
}

/* terminate_child by ref (id NULL) stops a dynamic child and removes it. */
static void test_sofo_terminate_by_ref(void)
{
    CHECK(open_env(0));
    gr_ref sup, refs[3];
    struct rep r;
    CHECK_EQ(start_sofo(GR_PERMANENT, &sup), GR_OK);
    for (int i = 0; i < 3; i++)
        CHECK(spawn_kid(sup, i + 1, NULL, &refs[i]));
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, NULL, refs[1], SUP_WAIT),
             GR_OK);
    CHECK(take(REP_TERM, 2, &r));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    gr_child_info v[WHICH_MAX];
    CHECK_EQ(which(sup, v), 2);
    CHECK(gr_ref_eq(v[0].ref, refs[0]));
    CHECK(gr_ref_eq(v[1].ref, refs[2]));
    CHECK(none_within(REP_INIT, 2, QUIET_MS));
    CHECK_EQ(gr_supervisor_terminate_child(T.sys, sup, NULL, refs[1], SUP_WAIT),
             GR_ENOTFOUND);
    CHECK_EQ(nspecs(sup), 2);
    close_env();
}

/* Stopping a simple-one-for-one supervisor stops every dynamic child; it
 * then exits with shutdown. */
static void test_sofo_stop_all(void)
{
    CHECK(open_env(0));
    gr_ref sup, cl, refs[4];
    struct rep r;
    CHECK_EQ(start_sofo(GR_PERMANENT, &sup), GR_OK);
    for (int i = 0; i < 4; i++)
        CHECK(spawn_kid(sup, i + 1, NULL, &refs[i]));
    CHECK_EQ(gr_system_spawn(T.sys, &client_b, NULL, 0, &cl), GR_OK);
    int32_t rc;
    CHECK_EQ(probe_tell(cl, CL_MONITOR, &sup, sizeof sup), GR_OK);
    CHECK(take_rc(cl, &rc));
    CHECK_EQ(rc, GR_OK);

    CHECK_EQ(stop_sup(sup), GR_OK);
    for (int i = 0; i < 4; i++) {
        CHECK(take(REP_TERM, i + 1, &r));
        CHECK_EQ(r.code, GR_ESHUTDOWN);
    }
    CHECK(take(REP_DOWN, ANY_TAG, &r));
    CHECK(gr_ref_eq(r.from, sup));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK(wait_gone(sup));
    CHECK(none_within(REP_INIT, ANY_TAG, QUIET_MS));
    close_env();
}

/* A simple-one-for-one spec needs exactly one child spec, with no name;
 * spawn_child is for simple-one-for-one only. No actor is left behind. */
static void test_sofo_malformed(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, &sh);
    gr_child_spec two[] = {kid_spec("x", &a, GR_PERMANENT, 1000),
                           kid_spec("y", &a, GR_PERMANENT, 1000)};
    int64_t before = live();
    gr_ref sup = GR_REF_NONE;
    gr_sup_spec sp = sup_spec(GR_SIMPLE_ONE_FOR_ONE, 1, two, 0);
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_EINVAL);
    sp.nchildren = 2;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_EINVAL);
    two[0].name = "named";
    sp.nchildren = 1;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_EINVAL);
    CHECK_EQ(wait_live(before), before);
    CHECK_EQ(atomic_load(&sh.inits), 0);

    gr_sup_spec st = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    CHECK_EQ(gr_supervisor_start(T.sys, &st, &sup), GR_OK);
    CHECK_EQ(
        gr_supervisor_spawn_child(T.sys, sup, &a, sizeof a, SUP_WAIT, NULL),
        GR_EINVAL);
    CHECK_EQ(nspecs(sup), 0);
    CHECK_EQ(atomic_load(&sh.inits), 0);
    close_env();
}

/* ---- spec validation ------------------------------------------------------
 */

/* Starts a one-for-one supervisor named "checked" over kids and expects
 * rc, no actor left, no child init run and the name free. Returns 1 if so.
 */
static int start_fails(gr_child_spec *kids, size_t n, int rc, struct shared *sh)
{
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, kids, n);
    sp.name = "checked";
    int64_t before = live();
    gr_ref sup = GR_REF_NONE, found;
    int got = gr_supervisor_start(T.sys, &sp, &sup);
    int ok = got == rc && wait_live(before) == before &&
             atomic_load(&sh->inits) == 0 &&
             gr_whereis(T.sys, "checked", &found) == GR_ENOTFOUND;
    if (!ok)
        fprintf(stderr, "  start gave %s (want %s), live %lld -> %lld\n",
                gr_errname(got), gr_errname(rc), (long long)before,
                (long long)live());
    return ok;
}

/* Adds kid to a running supervisor and expects rc and no new spec. */
static int start_child_fails(gr_ref sup, const gr_child_spec *kid, int rc)
{
    long before = nspecs(sup);
    int got = gr_supervisor_start_child(T.sys, sup, kid, SUP_WAIT, NULL);
    if (got != rc || nspecs(sup) != before) {
        fprintf(stderr, "  start_child gave %s (want %s)\n", gr_errname(got),
                gr_errname(rc));
        return 0;
    }
    return 1;
}

/* A NULL behaviour, or one without handle: GR_EINVAL. */
static void test_spec_null_behaviour(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, &sh);
    gr_child_spec kids[] = {kid_spec("ok", &a, GR_PERMANENT, 1000),
                            kid_spec("bad", &a, GR_PERMANENT, 1000)};
    kids[1].behaviour = NULL;
    CHECK(start_fails(kids, 2, GR_EINVAL, &sh));
    /* The log says which child and which field. */
    CHECK_EQ(capture_count(&T_log, GR_LOG_ERROR,
                           "supervisor \"checked\" spec refused (GR_EINVAL): "
                           "child 1 (id \"bad\"):",
                           "behaviour is NULL"),
             1);
    kids[1].behaviour = &no_handle_b;
    CHECK(start_fails(kids, 2, GR_EINVAL, &sh));

    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    kids[1].behaviour = NULL;
    CHECK(start_child_fails(sup, &kids[1], GR_EINVAL));
    kids[1].behaviour = &no_handle_b;
    CHECK(start_child_fails(sup, &kids[1], GR_EINVAL));
    CHECK_EQ(atomic_load(&sh.inits), 0);
    close_env();
}

/* Duplicate ids (and missing, empty or unprintable ones): GR_EINVAL. */
static void test_spec_duplicate_ids(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, &sh);
    gr_child_spec kids[] = {kid_spec("a", &a, GR_PERMANENT, 1000),
                            kid_spec("b", &a, GR_PERMANENT, 1000),
                            kid_spec("a", &a, GR_PERMANENT, 1000)};
    CHECK(start_fails(kids, 3, GR_EINVAL, &sh));
    CHECK_EQ(capture_count(&T_log, GR_LOG_ERROR, "spec refused",
                           "two children have the same id"),
             1);
    kids[2].id = NULL;
    CHECK(start_fails(kids, 3, GR_EINVAL, &sh));
    CHECK_EQ(capture_count(&T_log, GR_LOG_ERROR, "child 2 (id \"\")",
                           "id is NULL, empty"),
             1);
    kids[2].id = "";
    CHECK(start_fails(kids, 3, GR_EINVAL, &sh));
    kids[2].id = "line\nforged"; /* It would forge a log line. */
    CHECK(start_fails(kids, 3, GR_EINVAL, &sh));
    CHECK_EQ(capture_count(&T_log, GR_LOG_ERROR, "(id \"line?forged\")",
                           "not printable UTF-8"),
             1); /* The log line shows the id without its newline. */

    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(start_child_fails(sup, &kids[2], GR_EINVAL));
    kids[2].id = NULL;
    CHECK(start_child_fails(sup, &kids[2], GR_EINVAL));
    CHECK_EQ(atomic_load(&sh.inits), 0);
    close_env();
}

/* A shutdown value below GR_SHUTDOWN_INFINITY: GR_EINVAL. */
static void test_spec_bad_shutdown(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, &sh);
    gr_child_spec kids[] = {kid_spec("a", &a, GR_PERMANENT, 1000),
                            kid_spec("b", &a, GR_PERMANENT, -3)};
    CHECK(start_fails(kids, 2, GR_EINVAL, &sh));
    kids[1].shutdown_ms = INT32_MIN;
    CHECK(start_fails(kids, 2, GR_EINVAL, &sh));

    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    kids[1].shutdown_ms = GR_SHUTDOWN_INFINITY - 1;
    CHECK(start_child_fails(sup, &kids[1], GR_EINVAL));
    CHECK_EQ(capture_count(&T_log, GR_LOG_WARN, "start_child refused",
                           "shutdown_ms is below GR_SHUTDOWN_INFINITY"),
             1);
    CHECK_EQ(atomic_load(&sh.inits), 0);
    close_env();
}

/* An id longer than GR_NAME_MAX: GR_ENAMETOOLONG; GR_NAME_MAX bytes fit. */
static void test_spec_long_id(void)
{
    CHECK(open_env(0));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_ALL, &sh);
    char longid[GR_NAME_MAX + 2], maxid[GR_NAME_MAX + 1];
    memset(longid, 'L', GR_NAME_MAX + 1);
    longid[GR_NAME_MAX + 1] = '\0';
    memset(maxid, 'M', GR_NAME_MAX);
    maxid[GR_NAME_MAX] = '\0';
    gr_child_spec kids[] = {kid_spec("a", &a, GR_PERMANENT, 1000),
                            kid_spec(longid, &a, GR_PERMANENT, 1000)};
    CHECK(start_fails(kids, 2, GR_ENAMETOOLONG, &sh));

    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 1, NULL, 0);
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(start_child_fails(sup, &kids[1], GR_ENAMETOOLONG));
    CHECK_EQ(atomic_load(&sh.inits), 0);

    gr_child_spec ok = kid_spec(maxid, &a, GR_PERMANENT, 1000);
    CHECK_EQ(gr_supervisor_start_child(T.sys, sup, &ok, SUP_WAIT, NULL), GR_OK);
    gr_child_info info;
    CHECK(child_of(sup, maxid, &info));
    CHECK_EQ(strlen(info.id), GR_NAME_MAX);
    close_env();
}

TEST_MAIN(TEST_CASE(test_start_child), TEST_CASE(test_terminate_child),
          TEST_CASE(test_terminate_temporary_removed),
          TEST_CASE(test_restart_child), TEST_CASE(test_delete_child),
          TEST_CASE(test_which_children), TEST_CASE(test_count_children),
          TEST_CASE(test_calls_wrong_thread),
          TEST_CASE(test_calls_dead_supervisor),
          TEST_CASE(test_calls_not_a_supervisor),
          TEST_CASE(test_slow_init_holds_no_one),
          TEST_CASE(test_calls_time_out), TEST_CASE(test_async_replies),
          TEST_CASE(test_sofo_spawn), TEST_CASE(test_sofo_restart_same_arg),
          TEST_CASE(test_sofo_transient_normal_removed),
          TEST_CASE(test_sofo_terminate_by_ref), TEST_CASE(test_sofo_stop_all),
          TEST_CASE(test_sofo_malformed), TEST_CASE(test_spec_null_behaviour),
          TEST_CASE(test_spec_duplicate_ids), TEST_CASE(test_spec_bad_shutdown),
          TEST_CASE(test_spec_long_id))
