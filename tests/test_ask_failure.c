/*
 * Asks that cannot be answered: the callee gone, crashing, exiting with
 * requests kept or still queued; the asker exiting with asks pending; bad
 * arguments. Public API only.
 */
#include "ask_env.h"

/* ---- cases: the callee gone or exiting ----------------------------------- */

/* A target already gone: gr_ask and gr_ask_then say GR_ENOACTOR, and no
 * answer follows, not even a timeout; the asker goes on asking. */
static void test_callee_gone(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    gr_ref live = spawn(&callee_b);
    CHECK_EQ(gr_stop(E.sys, callee), GR_OK);
    CHECK_EQ(wait_exited(E.sys, 1), 1);
    CHECK_EQ(ask(asker, ac(callee, 1, M_REPLY, 20, K_NONE), NULL), GR_ENOACTOR);
    CHECK_EQ(ask(asker, ac(callee, 2, M_REPLY, 20, K_CONT), NULL), GR_ENOACTOR);
    CHECK(probe_quiet_for(QUIET_MS));
    struct rep r;
    CHECK_EQ(probe_tell(asker, C_COUNTS, NULL, 0), GR_OK);
    CHECK(take_rep(R_COUNTS, &r));
    CHECK_EQ(r.handled, 0);
    CHECK_EQ(r.conts, 0);
    uint64_t corr;
    CHECK_EQ(ask(asker, ac(live, 3, M_REPLY, 1000, K_NONE), &corr), GR_OK);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.val, 6);
    CHECK(probe_quiet_for(QUIET_MS));
    close_env();
}

/* A callee that crashes handling the request, by returning an error or
 * through gr_fail: the ask fails at once (not after its 30 s) with the
 * crash reason, read with gr_ask_failed_read. */
static void test_callee_crashes(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    uint64_t corr;
    struct rep r;
    CHECK_EQ(ask(asker, ac(callee, 1, M_CRASH, LONG_MS, K_NONE), &corr), GR_OK);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK(is_failure(&r, corr, callee, PROBE_CRASH));
    CHECK(r.why.flags & GR_REASON_IN_HANDLER);
    CHECK_EQ(r.why.msg_type, Q);
    callee = spawn(&callee_b);
    CHECK_EQ(ask(asker, ac(callee, 7, M_FAIL, LONG_MS, K_NONE), &corr), GR_OK);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK(is_failure(&r, corr, callee, GR_EFAILED));
    CHECK(strcmp(r.why.text, "boom 7") == 0);
    CHECK(probe_quiet_for(QUIET_MS));
    close_env();
}

/* A callee that exits holding requests, kept for later (gr_request_of) or
 * returned from unanswered, fails each at once with its exit reason, and
 * only those: an answered ask keeps its reply. Returning GR_STOP from the
 * request's own handler call fails it with reason normal. A callee that
 * answers its kept requests from terminate: the askers get those
 * replies, not failures. */
static void test_callee_exits_holding(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b);
    gr_ref a1 = spawn(&asker_b), a2 = spawn(&asker_b);
    uint64_t c[3], answered;
    struct rep r;
    CHECK_EQ(ask(a1, ac(callee, 1, M_HOLD, LONG_MS, K_NONE), &c[0]), GR_OK);
    CHECK_EQ(ask(a1, ac(callee, 2, M_IGNORE, LONG_MS, K_NONE), &c[1]), GR_OK);
    CHECK_EQ(ask(a2, ac(callee, 3, M_HOLD, LONG_MS, K_NONE), &c[2]), GR_OK);
    CHECK_EQ(ask(a2, ac(callee, 4, M_REPLY, LONG_MS, K_NONE), &answered),
             GR_OK);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK_EQ(r.corr, answered);
    CHECK(probe_quiet_for(50));
    stop_callee(callee, "going", 42);
    int seen[3] = {0};
    for (int k = 0; k < 3; k++) {
        CHECK(take_rep(R_ANSWER, &r));
        int i = 0;
        while (i < 3 && c[i] != r.corr)
            i++;
        CHECK(i < 3);
        CHECK_EQ(seen[i], 0);
        seen[i] = 1;
        CHECK(is_failure(&r, c[i], callee, GR_ESHUTDOWN));
        CHECK(gr_ref_eq(r.self, i < 2 ? a1 : a2));
        CHECK_EQ(r.why.detail, 42);
        CHECK(strcmp(r.why.text, "going") == 0);
    }
    CHECK(probe_quiet_for(QUIET_MS));
    /* GR_STOP in the request's own handler call. */
    callee = spawn(&callee_b);
    CHECK_EQ(ask(a1, ac(callee, 5, M_STOP, LONG_MS, K_NONE), &c[0]), GR_OK);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK(is_failure(&r, c[0], callee, GR_OK));
    CHECK(probe_quiet_for(QUIET_MS));
    /* Answered from terminate. */
    callee = spawn(&callee_b);
    CHECK_EQ(probe_tell(callee, C_REPLY_ON_EXIT, NULL, 0), GR_OK);
    CHECK_EQ(ask(a1, ac(callee, 6, M_HOLD, LONG_MS, K_NONE), &c[0]), GR_OK);
    CHECK_EQ(ask(a2, ac(callee, 7, M_HOLD, LONG_MS, K_NONE), &c[1]), GR_OK);
    CHECK_EQ(gr_stop(E.sys, callee), GR_OK);
    for (int k = 0; k < 2; k++) {
        CHECK(take_rep(R_ANSWER, &r));
        CHECK_EQ(r.type, A);
        CHECK(r.corr == c[0] || r.corr == c[1]);
        CHECK_EQ(r.val, r.corr == c[0] ? 12 : 14);
    }
    CHECK(probe_quiet_for(QUIET_MS));
    close_env();
}

/* A request still queued when the callee exits (behind a gr_stop, behind
 * a kill, or behind the message it crashes on) fails at once with the
 * exit's code. */
static void test_request_queued_at_exit(void)
{
    CHECK(open_env(2));
    gr_ref asker = spawn(&asker_b);
    const int want[] = {GR_ESHUTDOWN, GR_EKILLED, PROBE_CRASH - 1};
    for (int v = 0; v < 3; v++) {
        gr_ref callee = spawn(&callee_b);
        struct rep r;
        CHECK(probe_block(callee));
        if (v == 0)
            CHECK_EQ(gr_stop(E.sys, callee), GR_OK);
        if (v == 1)
            CHECK_EQ(
                gr_system_exit(E.sys, callee, &(gr_reason){.code = GR_EKILL}),
                GR_OK);
        if (v == 2)
            CHECK_EQ(probe_end(callee, PROBE_CRASH - 1), GR_OK);
        uint64_t corr;
        CHECK_EQ(ask(asker, ac(callee, (uint32_t)v, M_REPLY, LONG_MS, K_NONE),
                     &corr),
                 GR_OK);
        probe_release(1);
        CHECK(take_rep(R_ANSWER, &r));
        CHECK(is_failure(&r, corr, callee, want[v]));
        CHECK(probe_quiet_for(50));
    }
    close_env();
}

/* The exit reason a queued request fails with is the whole reason, as a
 * kept request's is: the same code, flags, message type, detail and text
 * for both, for an exit signal with a detail and text and for a crash in
 * a handler. */
static void test_queued_request_full_reason(void)
{
    CHECK(open_env(2));
    gr_ref asker = spawn(&asker_b);
    int differ = 0;
    for (int v = 0; v < 2; v++) {
        gr_ref callee = spawn(&callee_b);
        uint64_t kept, queued;
        struct rep got[2];
        CHECK_EQ(ask(asker, ac(callee, 1, M_HOLD, LONG_MS, K_NONE), &kept),
                 GR_OK);
        CHECK(probe_block(callee));
        if (v == 0) {
            gr_reason why = gr_reason_of(GR_ESHUTDOWN);
            why.detail = 77;
            snprintf(why.text, sizeof why.text, "drain");
            CHECK_EQ(gr_system_exit(E.sys, callee, &why), GR_OK);
        } else {
            CHECK_EQ(probe_end(callee, PROBE_CRASH), GR_OK);
        }
        CHECK_EQ(ask(asker, ac(callee, 2, M_REPLY, LONG_MS, K_NONE), &queued),
                 GR_OK);
        probe_release(1);
        CHECK(take_rep(R_ANSWER, &got[0]));
        CHECK(take_rep(R_ANSWER, &got[1]));
        const struct rep *k = got[0].corr == kept ? &got[0] : &got[1];
        const struct rep *q = got[0].corr == kept ? &got[1] : &got[0];
        int code = v == 0 ? GR_ESHUTDOWN : PROBE_CRASH;
        CHECK(is_failure(k, kept, callee, code));
        CHECK(is_failure(q, queued, callee, code));
        if (v == 0) {
            CHECK_EQ(k->why.detail, 77);
            CHECK(strcmp(k->why.text, "drain") == 0);
        } else {
            CHECK(k->why.flags & GR_REASON_IN_HANDLER);
            CHECK_EQ(k->why.msg_type, PROBE_END);
        }
        if (q->why.flags != k->why.flags ||
            q->why.msg_type != k->why.msg_type ||
            q->why.detail != k->why.detail ||
            strcmp(q->why.text, k->why.text) != 0) {
            char kb[160], qb[160];
            fprintf(stderr,
                    "  kept request failed with \"%s\",\n"
                    "  queued one with \"%s\"\n",
                    gr_reason_format(&k->why, kb, sizeof kb),
                    gr_reason_format(&q->why, qb, sizeof qb));
            differ++;
        }
        CHECK(probe_quiet_for(50));
    }
    /* Checked after the shutdown, so that a difference leaks nothing. */
    close_env();
    CHECK_EQ(differ, 0);
}

/* ---- cases: the asker exiting -------------------------------------------- */

/* Askers that exit (stopped, killed, crashed) with asks pending, to
 * handle and to continuations, some about to time out: nothing reaches
 * anyone afterwards, not even a timeout; the callees' replies after that
 * succeed (GR_OK) and are expired_reply dead letters, not no_actor ones;
 * a callee exiting with requests from a dead asker sends nothing anyone
 * sees. ASan checks that nothing leaks. */
static void test_asker_exits(void)
{
    CHECK(open_env(2));
    gr_ref c1 = spawn(&callee_b), c2 = spawn(&callee_b);
    gr_ref c3 = spawn(&callee_b);
    const int want[] = {GR_ESHUTDOWN, GR_EKILLED, PROBE_CRASH};
    for (int how = 0; how < 3; how++) {
        gr_ref asker = spawn(&asker_b);
        struct ask_cmd c[16];
        for (uint32_t i = 0; i < 5; i++) {
            c[3 * i] = ac(c1, i, M_HOLD, LONG_MS, K_NONE);
            c[3 * i + 1] = ac(c2, i, M_HOLD, 400, K_NONE);
            c[3 * i + 2] = ac(c1, i, M_HOLD, LONG_MS, K_CONT);
        }
        c[15] = ac(c3, 9, M_HOLD, LONG_MS, K_NONE);
        /* The end goes right behind the asks, long before 400 ms. */
        for (int i = 0; i < 16; i++)
            CHECK_EQ(probe_tell(asker, C_ASK, &c[i], sizeof c[i]), GR_OK);
        if (how == 0)
            CHECK_EQ(gr_stop(E.sys, asker), GR_OK);
        else if (how == 1)
            CHECK_EQ(
                gr_system_exit(E.sys, asker, &(gr_reason){.code = GR_EKILL}),
                GR_OK);
        else
            CHECK_EQ(probe_end(asker, PROBE_CRASH), GR_OK);
        struct rep r;
        for (int i = 0; i < 16; i++) {
            CHECK(take_rep(R_ASKED, &r));
            CHECK_EQ(r.rc[0], GR_OK);
        }
        CHECK(take_rep(R_TERM, &r));
        CHECK_EQ(r.why.code, want[how]);
    }
    CHECK(probe_quiet_for(600)); /* Past the 400 ms timeouts. */
    uint64_t expired = dead(GR_DL_EXPIRED_REPLY);
    uint64_t no_actor = dead(GR_DL_NO_ACTOR);
    CHECK_EQ(expired, 0);
    CHECK_EQ(release(c1, 3, 0), GR_OK);
    CHECK_EQ(release(c2, 0, 0), GR_OK);
    for (int i = 0; i < 2; i++) {
        struct rep r;
        CHECK(take_rep(R_RELEASED, &r));
        CHECK_EQ(r.rc[0], GR_OK);
        CHECK_EQ(r.val, gr_ref_eq(r.self, c1) ? 30 : 15);
    }
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, 45), 45);
    CHECK_EQ(dead(GR_DL_NO_ACTOR), no_actor);
    CHECK_EQ(gr_stop(E.sys, c3), GR_OK);
    CHECK(probe_quiet_for(QUIET_MS));
    close_env();
}

/* ---- cases: bad arguments ------------------------------------------------ */

/* gr_reply on a plain tell (or gr_reply_to a request with no id, or NULL)
 * is GR_EINVAL; so is a reply with a reserved type, a payload whose data
 * and len disagree, or no ctx, and none of those answers the request: the
 * good reply after them is the one answer, and no dead letter is made.
 * gr_ask and gr_ask_then refuse reserved types, bad payloads and no ctx,
 * and send nothing; gr_ask_failed_read refuses what is not a well-formed
 * failure; gr_call refuses reserved types, bad payloads, no system and no
 * place for the reply. */
static void test_bad_arguments(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    struct rep r;
    CHECK_EQ(probe_tell(callee, C_TELL_ME, NULL, 0), GR_OK);
    CHECK(take_rep(R_RC, &r));
    CHECK_EQ(r.rc[0], GR_EINVAL); /* gr_reply to a tell */
    CHECK_EQ(r.rc[1], 1);         /* gr_request_of a tell: corr 0 */
    CHECK_EQ(r.rc[2], GR_EINVAL); /* gr_reply_to that */
    CHECK_EQ(r.rc[3], GR_EINVAL); /* gr_reply_to NULL */
    /* The callee's R_RC and the asker's reports, in any order (the
     * asker's R_ASKED comes before its R_ANSWER). */
    struct ask_cmd c = ac(callee, 9, M_BAD, LONG_MS, K_NONE);
    CHECK_EQ(probe_tell(asker, C_ASK, &c, sizeof c), GR_OK);
    uint64_t corr = 0;
    for (int i = 0; i < 3; i++) {
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_RC) {
            for (int k = 0; k < 5; k++)
                CHECK_EQ(r.rc[k], GR_EINVAL);
        } else if (type == R_ASKED) {
            CHECK_EQ(r.rc[0], GR_OK);
            corr = r.corr;
        } else {
            CHECK_EQ(type, R_ANSWER);
            CHECK(corr != 0);
            CHECK_EQ(r.corr, corr);
            CHECK_EQ(r.type, A);
            CHECK_EQ(r.val, 18);
        }
    }
    CHECK(probe_quiet_for(QUIET_MS));
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    /* Bad asks: each would time out within 20 ms if it had been made, and
     * the callee reports any request it gets. */
    CHECK_EQ(probe_tell(asker, C_BAD_ASKS, &callee, sizeof callee), GR_OK);
    CHECK(take_rep(R_RC, &r));
    for (int k = 0; k < 6; k++)
        CHECK_EQ(r.rc[k], GR_EINVAL);
    CHECK(probe_quiet_for(QUIET_MS));
    /* gr_ask_failed_read on messages that are not failures. */
    gr_reason why;
    gr_msg m = {.type = GR_MSG_ASK_FAILED,
                .flags = GR_MSG_REPLY,
                .data = &why,
                .len = sizeof why - 1};
    CHECK_EQ(gr_ask_failed_read(NULL, &why), GR_EINVAL);
    CHECK_EQ(gr_ask_failed_read(&m, &why), GR_EINVAL);
    m.len = sizeof why;
    m.type = GR_MSG_TIMEOUT;
    CHECK_EQ(gr_ask_failed_read(&m, &why), GR_EINVAL);
    /* gr_call: nothing reaches the callee, nothing is stored. */
    struct q q = {.val = 1, .mode = M_REPORT};
    gr_msg *reply = NULL;
    CHECK_EQ(gr_call(E.sys, callee, GR_MSG_RESERVED, &q, sizeof q, 100, &reply),
             GR_EINVAL);
    CHECK_EQ(gr_call(E.sys, callee, Q, NULL, sizeof q, 100, &reply), GR_EINVAL);
    CHECK_EQ(gr_call(E.sys, callee, Q, &q, 0, 100, &reply), GR_EINVAL);
    CHECK_EQ(gr_call(NULL, callee, Q, &q, sizeof q, 100, &reply), GR_EINVAL);
    CHECK_EQ(gr_call(E.sys, callee, Q, &q, sizeof q, 100, NULL), GR_EINVAL);
    CHECK(reply == NULL);
    CHECK(probe_quiet_for(QUIET_MS));
    close_env();
}

TEST_MAIN(TEST_CASE(test_callee_gone), TEST_CASE(test_callee_crashes),
          TEST_CASE(test_callee_exits_holding),
          TEST_CASE(test_request_queued_at_exit),
          TEST_CASE(test_queued_request_full_reason),
          TEST_CASE(test_asker_exits), TEST_CASE(test_bad_arguments))
