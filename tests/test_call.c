/*
 * gr_call: asks from threads that are not actors, from several threads
 * at once, with its timeout (default, infinite, zero, refused), its
 * failures, and from inside callbacks. Public API only; time is checked
 * only as a lower bound.
 */
#include "ask_env.h"

/* ---- cases: gr_call ------------------------------------------------------ */

#define CALL_THREADS 4
#define CALLS        1000

struct call_arg {
    gr_ref callee[CALLEES];
    int id;
    unsigned n;
    atomic_int *go;
    atomic_int *bad;
    uint64_t *corrs; /* n ids, one per call. */
};

static void *call_thread(void *p)
{
    struct call_arg *a = p;
    go_wait(a->go);
    for (unsigned i = 0; i < a->n; i++) {
        int c = (int)(i % CALLEES);
        struct q q = {.val = (uint32_t)a->id * 100000u + i,
                      .mode = i % 4 == 3 ? M_DEFER : M_REPLY,
                      .delay_ms = i % 3};
        gr_msg *reply = NULL;
        int rc = gr_call(E.sys, a->callee[c], Q, &q, sizeof q, WAIT_MS, &reply);
        uint32_t v = 0;
        if (rc != GR_OK || reply == NULL || reply->type != A ||
            reply->flags != GR_MSG_REPLY ||
            !gr_ref_eq(reply->from, a->callee[c]) || reply->corr == 0 ||
            !read_payload(reply, &v, sizeof v) || v != 2 * q.val) {
            if (atomic_fetch_add(a->bad, 1) == 0)
                fprintf(stderr, "  call %d/%u: rc %d\n", a->id, i, rc);
            gr_msg_free(reply);
            break; /* One is enough, and the rest might each wait. */
        }
        a->corrs[i] = reply != NULL ? reply->corr : 0;
        gr_msg_free(reply);
    }
    return NULL;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* gr_call from four threads at once to three callees, a quarter answered
 * later from timers: every call gets its own answer, with distinct ids,
 * and nothing is dead-lettered. */
static void test_call_threads(void)
{
    CHECK(open_env(2));
    unsigned n = (unsigned)scaled(CALLS, 100);
    static uint64_t corrs[CALL_THREADS * CALLS];
    atomic_int bad = 0, go = 0;
    struct call_arg args[CALL_THREADS];
    pthread_t t[CALL_THREADS];
    gr_ref callees[CALLEES];
    for (int c = 0; c < CALLEES; c++)
        callees[c] = spawn(&callee_b);
    int started = 0;
    for (int i = 0; i < CALL_THREADS; i++) {
        memcpy(args[i].callee, callees, sizeof callees);
        args[i].id = i;
        args[i].n = n;
        args[i].go = &go;
        args[i].bad = &bad;
        args[i].corrs = &corrs[i * n];
        if (pthread_create(&t[i], NULL, call_thread, &args[i]) != 0)
            break;
        started++;
    }
    go_open(&go);
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(started, CALL_THREADS);
    CHECK_EQ(atomic_load(&bad), 0);
    qsort(corrs, CALL_THREADS * (size_t)n, sizeof corrs[0], cmp_u64);
    for (size_t i = 1; i < CALL_THREADS * (size_t)n; i++)
        CHECK(corrs[i] != corrs[i - 1]);
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    CHECK_EQ(dead(GR_DL_NO_ACTOR), 0);
    CHECK(probe_quiet_for(50));
    close_env();
}

/* gr_call's timeout: GR_ETIMEDOUT, nothing stored; the reply that comes
 * later is an expired_reply dead letter; the next call works.
 * GR_DURATION_DEFAULT is 5000 ms (a reply 300 ms later is taken),
 * GR_DURATION_INFINITE waits, GR_DURATION_ZERO takes only an answer that
 * is there already, and a timeout below GR_DURATION_DEFAULT is refused.
 * (test_call_never_early checks how long it waits.) */
static void test_call_timeout(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b);
    struct q q = {.val = 1, .mode = M_HOLD};
    gr_msg *reply = NULL;
    CHECK_EQ(gr_call(E.sys, callee, Q, &q, sizeof q, 50, &reply), GR_ETIMEDOUT);
    CHECK(reply == NULL);
    uint64_t no_actor = dead(GR_DL_NO_ACTOR);
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    struct rep r;
    CHECK_EQ(release(callee, 0, 0), GR_OK);
    CHECK(take_rep(R_RELEASED, &r));
    CHECK_EQ(r.rc[0], GR_OK);
    CHECK_EQ(r.val, 1);
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, 1), 1);
    CHECK_EQ(dead(GR_DL_NO_ACTOR), no_actor);
    const gr_duration timeouts[] = {1000, GR_DURATION_DEFAULT,
                                    GR_DURATION_INFINITE};
    const uint32_t delays[] = {0, 300, 100};
    for (int i = 0; i < 3; i++) {
        q = (struct q){
            .val = 2 + (uint32_t)i, .mode = M_DEFER, .delay_ms = delays[i]};
        uint32_t v = 0;
        CHECK_EQ(gr_call(E.sys, callee, Q, &q, sizeof q, timeouts[i], &reply),
                 GR_OK);
        CHECK(reply != NULL);
        int ok = reply->type == A && reply->flags == GR_MSG_REPLY &&
                 read_payload(reply, &v, sizeof v);
        gr_msg_free(reply);
        reply = NULL;
        CHECK(ok);
        CHECK_EQ(v, 2 * q.val);
    }
    CHECK(probe_quiet_for(QUIET_MS));
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 1);
    /* Zero: no waiting for a reply that takes 100 ms (it expires). */
    q = (struct q){.val = 9, .mode = M_DEFER, .delay_ms = 100};
    CHECK_EQ(gr_call(E.sys, callee, Q, &q, sizeof q, GR_DURATION_ZERO, &reply),
             GR_ETIMEDOUT);
    CHECK(reply == NULL);
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, 2), 2);
    reply = (gr_msg *)&q; /* Set to NULL on every error. */
    CHECK_EQ(gr_call(E.sys, callee, Q, &q, sizeof q, -3, &reply), GR_EINVAL);
    CHECK(reply == NULL);
    reply = (gr_msg *)&q;
    CHECK_EQ(gr_call(NULL, callee, Q, &q, sizeof q, 100, &reply), GR_EINVAL);
    CHECK(reply == NULL);
    close_env();
}

/* Calls that nobody answers, with a timeout of 50 ms, then many of 1 ms
 * (the more calls, the likelier an early one shows): none returns
 * GR_ETIMEDOUT before its timeout, measured from before the call. */
static void test_call_never_early(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b);
    struct q q = {.val = 1, .mode = M_IGNORE};
    unsigned n = (unsigned)scaled(300, 50), early = 0;
    uint64_t shortest = UINT64_MAX;
    for (unsigned i = 0; i <= n; i++) {
        uint64_t ms = i == 0 ? 50 : 1;
        gr_msg *reply = NULL;
        uint64_t t0 = now_ns();
        CHECK_EQ(gr_call(E.sys, callee, Q, &q, sizeof q, (int)ms, &reply),
                 GR_ETIMEDOUT);
        uint64_t took = now_ns() - t0;
        CHECK(reply == NULL);
        if (took < ms * 1000000u) {
            if (early++ == 0 || took < shortest)
                fprintf(stderr, "  a %d ms call timed out after %.3f ms\n",
                        (int)ms, (double)took / 1e6);
            shortest = took < shortest ? took : shortest;
        }
    }
    CHECK(probe_quiet_for(50));
    close_env();
    CHECK_EQ(early, 0);
}

/* A gr_call made on a thread of its own. */
struct call_job {
    gr_ref target;
    struct q q;
    int rc;
    gr_msg *reply;
    uint64_t ns; /* How long it took. */
    pthread_t th;
};

static void *call_job_run(void *p)
{
    struct call_job *j = p;
    uint64_t t0 = now_ns();
    j->rc = gr_call(E.sys, j->target, Q, &j->q, sizeof j->q, (int)LONG_MS,
                    &j->reply);
    j->ns = now_ns() - t0;
    return NULL;
}

/* gr_call to a callee that is gone, crashes on the request, exits holding
 * it, or exits with it still queued behind a gr_stop or a kill: each is
 * GR_ENOACTOR at once (not after the 30 s timeout), nothing stored. */
static void test_call_callee_fails(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b);
    CHECK_EQ(gr_stop(E.sys, callee), GR_OK);
    CHECK_EQ(wait_exited(E.sys, 1), 1);
    struct call_job j = {.target = callee, .q = {.val = 1, .mode = M_REPLY}};
    (void)call_job_run(&j);
    CHECK_EQ(j.rc, GR_ENOACTOR);
    CHECK(j.reply == NULL);
    /* Crashes on it. */
    j = (struct call_job){.target = spawn(&callee_b),
                          .q = {.val = 1, .mode = M_CRASH}};
    (void)call_job_run(&j);
    CHECK_EQ(j.rc, GR_ENOACTOR);
    CHECK(j.reply == NULL);
    CHECK(j.ns < WAIT_MS * 1000000ull);
    /* Exits holding it. */
    struct rep r;
    j = (struct call_job){.target = spawn(&callee_b),
                          .q = {.val = 1, .mode = M_HOLD_TELL}};
    CHECK(pthread_create(&j.th, NULL, call_job_run, &j) == 0);
    int got = take_rep(R_HELD, &r);
    (void)gr_stop(E.sys, j.target);
    pthread_join(j.th, NULL);
    CHECK(got);
    CHECK_EQ(j.rc, GR_ENOACTOR);
    CHECK(j.reply == NULL);
    CHECK(j.ns < WAIT_MS * 1000000ull);
    /* Queued behind a stop, then behind a kill. */
    for (int v = 0; v < 2; v++) {
        j = (struct call_job){.target = spawn(&callee_b),
                              .q = {.val = 1, .mode = M_REPLY}};
        CHECK(probe_block(j.target));
        if (v == 0)
            CHECK_EQ(gr_stop(E.sys, j.target), GR_OK);
        else
            CHECK_EQ(
                gr_system_exit(E.sys, j.target, &(gr_reason){.code = GR_EKILL}),
                GR_OK);
        CHECK(pthread_create(&j.th, NULL, call_job_run, &j) == 0);
        got = wait_depth(j.target, 2); /* The request behind the signal. */
        probe_release(1);
        pthread_join(j.th, NULL);
        CHECK(got);
        CHECK_EQ(j.rc, GR_ENOACTOR);
        CHECK(j.reply == NULL);
        CHECK(j.ns < WAIT_MS * 1000000ull);
    }
    CHECK(probe_quiet_for(50));
    close_env();
}

/* gr_call from inside callbacks (handle, a continuation, init on the
 * spawning thread, terminate) is GR_EWRONGTHREAD, and sends nothing. */
static void test_call_in_callbacks(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), target = spawn(&callee_b);
    gr_ref asker = spawn(&asker_b);
    struct rep r;
    CHECK_EQ(probe_tell(callee, C_CALL, &target, sizeof target), GR_OK);
    CHECK(take_rep(R_RC, &r));
    CHECK_EQ(r.rc[0], GR_EWRONGTHREAD);
    CHECK_EQ(r.rc[1], 1);
    CHECK_EQ(probe_tell(asker, C_CALL, &target, sizeof target), GR_OK);
    CHECK(take_rep(R_RC, &r));
    CHECK_EQ(r.rc[0], GR_EWRONGTHREAD);
    CHECK_EQ(r.rc[1], 1);
    /* In a continuation (its gr_call goes to the answering callee). */
    CHECK_EQ(ask(asker, ac_then(target, 1, M_REPLY, 1000, 1, K_CALL), NULL),
             GR_OK);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK_EQ(r.via_cont, 1);
    CHECK_EQ(r.rc[0], GR_EWRONGTHREAD);
    CHECK_EQ(r.rc[1], 1);
    /* In init, run here on the spawning thread, and in terminate. */
    gr_ref ic = GR_REF_NONE;
    CHECK_EQ(
        gr_system_spawn(E.sys, &init_caller_b, &target, sizeof target, &ic),
        GR_OK);
    CHECK(take_rep(R_RC, &r));
    CHECK_EQ(r.rc[0], GR_EWRONGTHREAD);
    CHECK_EQ(r.rc[1], 1);
    CHECK_EQ(gr_stop(E.sys, ic), GR_OK);
    CHECK(take_rep(R_RC, &r));
    CHECK_EQ(r.rc[0], GR_EWRONGTHREAD);
    CHECK_EQ(r.rc[1], 1);
    CHECK(probe_quiet_for(QUIET_MS)); /* The target got no request. */
    close_env();
}

TEST_MAIN(TEST_CASE(test_call_threads), TEST_CASE(test_call_timeout),
          TEST_CASE(test_call_never_early), TEST_CASE(test_call_callee_fails),
          TEST_CASE(test_call_in_callbacks))
