/*
 * Asks answered: replies matched by correlation id with hundreds of asks
 * in flight from several askers to several callees, answered in shuffled
 * order; exactly one answer per ask, also when a reply races its timeout;
 * timeouts that come once and never early; late and second replies as
 * expired_reply dead letters; continuations run in the asker's turn with
 * its state and their own arg, for replies, timeouts and failures, ending
 * the asker as handle would. Public API only.
 */
#include "ask_env.h"

/* ---- cases: replies ------------------------------------------------------ */

/* A reply reaches the asker once, with the ask's id, only the reply flag,
 * the callee as sender and the callee's payload; a reply from a later
 * turn (gr_request_of, gr_reply_to) likewise; each ask has a fresh id,
 * also when corr is NULL; a zero timeout is not an immediate one. */
static void test_reply(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    uint64_t c1 = 0, c2 = 0;
    struct rep r;
    CHECK_EQ(ask(asker, ac(callee, 21, M_REPLY, 1000, K_NONE), &c1), GR_OK);
    CHECK(c1 != 0);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK_EQ(r.corr, c1);
    CHECK_EQ(r.flags, GR_MSG_REPLY);
    CHECK_EQ(r.type, A);
    CHECK_EQ(r.val, 42);
    CHECK(gr_ref_eq(r.from, callee));
    CHECK(gr_ref_eq(r.to, asker));
    CHECK(gr_ref_eq(r.self, asker));
    CHECK_EQ(r.via_cont, 0);
    CHECK_EQ(r.read_rc, GR_EINVAL); /* Not a GR_MSG_ASK_FAILED. */
    /* Answered 300 ms later from a timer turn; the default is 5000 ms. */
    struct ask_cmd c = ac(callee, 5, M_DEFER, GR_DURATION_DEFAULT, K_NONE);
    c.q.delay_ms = 300;
    CHECK_EQ(ask(asker, c, &c2), GR_OK);
    CHECK(c2 != 0 && c2 != c1);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK_EQ(r.corr, c2);
    CHECK_EQ(r.type, A);
    CHECK_EQ(r.val, 10);
    CHECK_EQ(r.flags, GR_MSG_REPLY);
    CHECK(gr_ref_eq(r.from, callee));
    /* No corr asked for: the answer still carries a fresh one. */
    c = ac(callee, 7, M_REPLY, 1000, K_NONE);
    c.no_corr = 1;
    CHECK_EQ(ask(asker, c, NULL), GR_OK);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK(r.corr != 0 && r.corr != c1 && r.corr != c2);
    CHECK_EQ(r.val, 14);
    CHECK(probe_quiet_for(QUIET_MS));
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    close_env();
}

#define ASKERS 4
#define PER    40
#define N_MANY (ASKERS * CALLEES * PER)

/* Hundreds of asks in flight at once from several askers to several
 * callees, some answered at once, the rest kept and answered in shuffled
 * orders, a third of them through continuations: every ask gets exactly
 * one answer, matched by its id, at its own asker, through the path it
 * asked for, from the callee it asked, with its own value; ids are
 * distinct; nothing else arrives. */
static void test_many_out_of_order(void)
{
    CHECK(open_env(4));
    gr_ref callees[CALLEES], askers[ASKERS];
    for (int i = 0; i < CALLEES; i++)
        callees[i] = spawn(&callee_b);
    for (int i = 0; i < ASKERS; i++)
        askers[i] = spawn(&asker_b);
    static uint64_t corr[N_MANY];
    static gr_ref who[N_MANY], whom[N_MANY];
    static int seen[N_MANY], asked[N_MANY];
    uint32_t per_asker_conts[ASKERS] = {0};
    unsigned kept = 0;
    /* Every asker asks every callee PER times; all commands go out before
     * any report is read, so the askers ask concurrently. */
    for (int n = 0; n < N_MANY; n++) {
        int a = n % ASKERS, c = (n / ASKERS) % CALLEES;
        int cont = n % 3 == 0;
        struct ask_cmd cm =
            ac(callees[c], (uint32_t)n, n % 5 == 0 ? M_REPLY : M_HOLD, LONG_MS,
               cont ? K_CONT : K_NONE);
        cm.arg_idx = n % ARGS_MAX;
        who[n] = askers[a];
        whom[n] = callees[c];
        seen[n] = asked[n] = 0;
        kept += n % 5 != 0;
        per_asker_conts[a] += cont;
        CHECK_EQ(probe_tell(askers[a], C_ASK, &cm, sizeof cm), GR_OK);
    }
    int nasked = 0, nanswered = 0, nreleased = 0;
    uint32_t released = 0;
    while (nasked < N_MANY || nanswered < N_MANY || nreleased < CALLEES) {
        struct rep r;
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_ASKED) {
            CHECK(r.val < N_MANY);
            CHECK_EQ(asked[r.val], 0);
            CHECK_EQ(r.rc[0], GR_OK);
            CHECK(r.corr != 0);
            CHECK(gr_ref_eq(r.self, who[r.val]));
            asked[r.val] = 1;
            corr[r.val] = r.corr;
            if (++nasked == N_MANY) {
                /* Every request is queued at its callee now (gr_ask
                 * returned): release them behind it. */
                for (int i = 0; i < N_MANY; i++)
                    for (int j = i + 1; j < N_MANY; j++)
                        CHECK(corr[i] != corr[j]);
                for (int c = 0; c < CALLEES; c++)
                    CHECK_EQ(release(callees[c], (uint32_t)c, 0), GR_OK);
            }
        } else if (type == R_ANSWER) {
            int i = 0;
            while (i < N_MANY && !(asked[i] && corr[i] == r.corr))
                i++;
            CHECK(i < N_MANY); /* An answer to an ask already made. */
            CHECK_EQ(seen[i], 0);
            seen[i] = 1;
            nanswered++;
            CHECK(gr_ref_eq(r.self, who[i]));
            CHECK(gr_ref_eq(r.from, whom[i]));
            CHECK_EQ(r.type, A);
            CHECK_EQ(r.flags, GR_MSG_REPLY);
            CHECK_EQ(r.val, 2u * (uint32_t)i);
            CHECK_EQ(r.via_cont, i % 3 == 0);
            if (r.via_cont) {
                CHECK_EQ(r.arg_idx, i % ARGS_MAX);
                CHECK_EQ(r.state_ok, 1);
            }
        } else {
            CHECK_EQ(type, R_RELEASED);
            CHECK_EQ(r.rc[0], GR_OK);
            nreleased++;
            released += r.val;
        }
    }
    CHECK_EQ(released, kept);
    CHECK(probe_quiet_for(QUIET_MS));
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    /* Each asker's state counted its answers by path. */
    for (int a = 0; a < ASKERS; a++) {
        struct rep r;
        CHECK_EQ(probe_tell(askers[a], C_COUNTS, NULL, 0), GR_OK);
        CHECK(take_rep(R_COUNTS, &r));
        CHECK_EQ(r.conts, per_asker_conts[a]);
        CHECK_EQ(r.handled + r.conts, N_MANY / ASKERS);
    }
    close_env();
}

/* Two replies to one request, in the handler call or later through a kept
 * request: the first is the answer; the second is an expired_reply dead
 * letter (gr_reply_to still returns GR_OK) and never reaches the asker. */
static void test_second_reply(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    uint64_t corr;
    struct rep r;
    CHECK_EQ(ask(asker, ac(callee, 4, M_TWICE, LONG_MS, K_NONE), &corr), GR_OK);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.val, 8);
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, 1), 1);
    CHECK(probe_quiet_for(QUIET_MS));
    uint64_t no_actor = dead(GR_DL_NO_ACTOR);
    CHECK_EQ(ask(asker, ac(callee, 6, M_HOLD, LONG_MS, K_NONE), &corr), GR_OK);
    CHECK_EQ(release(callee, 0, 1), GR_OK); /* Answers, keeps it. */
    for (int i = 0; i < 2; i++) {
        /* The callee's report and the asker's, in either order. */
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_RELEASED) {
            CHECK_EQ(r.rc[0], GR_OK);
            CHECK_EQ(r.val, 1);
        } else {
            CHECK_EQ(type, R_ANSWER);
            CHECK_EQ(r.corr, corr);
            CHECK_EQ(r.val, 12);
        }
    }
    CHECK_EQ(release(callee, 0, 0), GR_OK); /* Again. */
    CHECK(take_rep(R_RELEASED, &r));
    CHECK_EQ(r.rc[0], GR_OK);
    CHECK_EQ(r.val, 1);
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, 2), 2);
    CHECK_EQ(dead(GR_DL_NO_ACTOR), no_actor);
    CHECK(probe_quiet_for(QUIET_MS));
    close_env();
}

/* ---- cases: timeouts ----------------------------------------------------- */

/* Asks nobody answers, with timeouts given in no particular order behind
 * one of 30 s: each times out exactly once, no earlier than its timeout,
 * as GR_MSG_TIMEOUT with only the reply flag, its id, the callee as sender
 * and no payload, and the long one does not hold the short ones back. The
 * callee's replies after that are expired_reply dead letters that never
 * reach the asker, while the still-waiting long ask gets its reply. */
static void test_timeouts(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    uint64_t long_corr;
    CHECK_EQ(ask(asker, ac(callee, 1000, M_HOLD, LONG_MS, K_NONE), &long_corr),
             GR_OK);
    static const uint64_t tmo[] = {200, 120, 80, 40, 10, 60, 150, 5, 1, 30};
    enum { N = sizeof tmo / sizeof tmo[0] };
    uint64_t corr[N], t_asked[N];
    int seen[N] = {0}, asked[N] = {0};
    /* All at once: the short ones may time out before the last is made. */
    for (int i = 0; i < N; i++) {
        struct ask_cmd c = ac(callee, (uint32_t)i, M_HOLD, tmo[i], K_NONE);
        CHECK_EQ(probe_tell(asker, C_ASK, &c, sizeof c), GR_OK);
    }
    for (int nasked = 0, nanswered = 0; nasked < N || nanswered < N;) {
        struct rep r;
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_ASKED) {
            CHECK(r.val < N);
            CHECK_EQ(r.rc[0], GR_OK);
            asked[r.val] = 1;
            corr[r.val] = r.corr;
            t_asked[r.val] = r.t_asked;
            nasked++;
            continue;
        }
        CHECK_EQ(type, R_ANSWER);
        int i = 0;
        while (i < N && !(asked[i] && corr[i] == r.corr))
            i++;
        CHECK(i < N);
        CHECK_EQ(seen[i], 0);
        seen[i] = 1;
        nanswered++;
        CHECK_EQ(r.type, GR_MSG_TIMEOUT);
        CHECK_EQ(r.flags, GR_MSG_REPLY);
        CHECK(gr_ref_eq(r.from, callee));
        CHECK(gr_ref_eq(r.to, asker));
        CHECK_EQ(r.len, 0);
        CHECK_EQ(r.read_rc, GR_EINVAL);
        CHECK(r.t - t_asked[i] >= tmo[i] * 1000000u);
    }
    CHECK(probe_quiet_for(QUIET_MS)); /* Each once. */
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), 0);
    uint64_t no_actor = dead(GR_DL_NO_ACTOR);
    CHECK_EQ(release(callee, 7, 0), GR_OK);
    for (int i = 0; i < 2; i++) {
        struct rep r;
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_RELEASED) {
            CHECK_EQ(r.rc[0], GR_OK);
            CHECK_EQ(r.val, N + 1);
        } else {
            CHECK_EQ(type, R_ANSWER);
            CHECK_EQ(r.corr, long_corr);
            CHECK_EQ(r.type, A);
            CHECK_EQ(r.val, 2000);
        }
    }
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, N), N);
    CHECK_EQ(dead(GR_DL_NO_ACTOR), no_actor);
    CHECK(probe_quiet_for(QUIET_MS));
    close_env();
}

/* A reply that comes after the timeout while the asker is busy, its
 * timeout noticed but not yet handled, is late all the same: the asker
 * gets GR_MSG_TIMEOUT and the reply is an expired_reply dead letter. */
static void test_late_reply_while_busy(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), asker = spawn(&asker_b);
    uint64_t corr = 0, t_asked = 0;
    struct rep r;
    /* The callee reports that it holds the request before the asker is
     * blocked: an actor woken by a send may wait in its sender's worker,
     * which the blocked handler would then hold up. */
    struct ask_cmd c = ac(callee, 1, M_HOLD_TELL, 30, K_NONE);
    CHECK_EQ(probe_tell(asker, C_ASK, &c, sizeof c), GR_OK);
    for (int i = 0; i < 2; i++) {
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_ASKED) {
            CHECK_EQ(r.rc[0], GR_OK);
            corr = r.corr;
            t_asked = r.t_asked;
        } else {
            CHECK_EQ(type, R_HELD);
        }
    }
    CHECK(probe_block(asker));
    /* The timeout reaches the busy asker's mailbox first; then, well past
     * the timeout (100 ms: the runtime may notice a timeout a little late,
     * never early), the reply (the callee's report says it was sent). */
    int timed_out = wait_depth(asker, 1);
    uint64_t late = t_asked + 130 * 1000000u, now = now_ns();
    if (now < late)
        sleep_us((long)((late - now) / 1000u));
    int replied = timed_out && release(callee, 0, 0) == GR_OK &&
                  take_rep(R_RELEASED, &r) && r.val == 1 &&
                  wait_depth(asker, 2);
    probe_release(1);
    CHECK(timed_out);
    CHECK(replied);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.type, GR_MSG_TIMEOUT);
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, 1), 1);
    CHECK(probe_quiet_for(QUIET_MS));
    close_env();
}

#define T_ASKERS 3
#define T_PER    100
#define N_TMO    (T_ASKERS * T_PER)

/* Hundreds of short timeouts at once from several askers, half of them to
 * continuations: each ask times out exactly once, never early, through the
 * path it asked for. */
static void test_many_timeouts(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), askers[T_ASKERS];
    for (int a = 0; a < T_ASKERS; a++)
        askers[a] = spawn(&asker_b);
    static uint64_t corr[N_TMO], t_asked[N_TMO], tmo[N_TMO];
    static int seen[N_TMO], asked[N_TMO];
    for (int n = 0; n < N_TMO; n++) {
        tmo[n] = 1 + (uint64_t)(n * 7) % 40;
        seen[n] = asked[n] = 0;
        struct ask_cmd c =
            ac(callee, (uint32_t)n, M_IGNORE, tmo[n], n % 2 ? K_CONT : K_NONE);
        CHECK_EQ(probe_tell(askers[n % T_ASKERS], C_ASK, &c, sizeof c), GR_OK);
    }
    int nasked = 0, nanswered = 0;
    while (nasked < N_TMO || nanswered < N_TMO) {
        struct rep r;
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_ASKED) {
            CHECK(r.val < N_TMO);
            CHECK_EQ(asked[r.val], 0);
            CHECK_EQ(r.rc[0], GR_OK);
            asked[r.val] = 1;
            corr[r.val] = r.corr;
            t_asked[r.val] = r.t_asked;
            nasked++;
            continue;
        }
        CHECK_EQ(type, R_ANSWER);
        /* Its R_ASKED came first: one sender, one order. */
        int i = 0;
        while (i < N_TMO && !(asked[i] && corr[i] == r.corr))
            i++;
        CHECK(i < N_TMO);
        CHECK_EQ(seen[i], 0);
        seen[i] = 1;
        nanswered++;
        CHECK_EQ(r.type, GR_MSG_TIMEOUT);
        CHECK_EQ(r.flags, GR_MSG_REPLY);
        CHECK(gr_ref_eq(r.from, callee));
        CHECK(gr_ref_eq(r.self, askers[i % T_ASKERS]));
        CHECK_EQ(r.via_cont, i % 2);
        CHECK(r.t - t_asked[i] >= tmo[i] * 1000000u);
    }
    CHECK(probe_quiet_for(QUIET_MS));
    close_env();
}

#define R_PER  100
#define N_RACE (T_ASKERS * R_PER)

/* Replies that race their timeouts (the callee answers from a timer about
 * when the ask times out): every ask gets exactly one answer, the reply or
 * the timeout, and exactly the replies of the asks that timed out become
 * expired_reply dead letters. */
static void test_reply_races_timeout(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), askers[T_ASKERS];
    for (int a = 0; a < T_ASKERS; a++)
        askers[a] = spawn(&asker_b);
    static uint64_t corr[N_RACE], t_asked[N_RACE], tmo[N_RACE];
    static int seen[N_RACE], asked[N_RACE];
    for (int n = 0; n < N_RACE; n++) {
        tmo[n] = 5 + (uint64_t)n % 10;
        seen[n] = asked[n] = 0;
        struct ask_cmd c =
            ac(callee, (uint32_t)n, M_DEFER, tmo[n], n % 2 ? K_CONT : K_NONE);
        c.q.delay_ms = (uint32_t)(tmo[n] - 2 + (uint64_t)n % 5);
        CHECK_EQ(probe_tell(askers[n % T_ASKERS], C_ASK, &c, sizeof c), GR_OK);
    }
    int nasked = 0, nanswered = 0;
    uint64_t timeouts = 0;
    while (nasked < N_RACE || nanswered < N_RACE) {
        struct rep r;
        uint32_t type;
        CHECK(next_rep(&r, &type));
        if (type == R_ASKED) {
            CHECK(r.val < N_RACE);
            CHECK_EQ(r.rc[0], GR_OK);
            asked[r.val] = 1;
            corr[r.val] = r.corr;
            t_asked[r.val] = r.t_asked;
            nasked++;
            continue;
        }
        CHECK_EQ(type, R_ANSWER);
        int i = 0;
        while (i < N_RACE && !(asked[i] && corr[i] == r.corr))
            i++;
        CHECK(i < N_RACE);
        CHECK_EQ(seen[i], 0);
        seen[i] = 1;
        nanswered++;
        CHECK_EQ(r.via_cont, i % 2);
        CHECK_EQ(r.flags, GR_MSG_REPLY);
        CHECK(gr_ref_eq(r.from, callee));
        if (r.type == GR_MSG_TIMEOUT) {
            timeouts++;
            CHECK(r.t - t_asked[i] >= tmo[i] * 1000000u);
        } else {
            CHECK_EQ(r.type, A);
            CHECK_EQ(r.val, 2u * (uint32_t)i);
        }
    }
    /* Every deferred reply is sent, in time or not: wait for the late. */
    CHECK_EQ(wait_dead_settled(E.sys, GR_DL_EXPIRED_REPLY, timeouts), timeouts);
    sleep_ms(50); /* The longest deferral is 17 ms. */
    CHECK_EQ(dead(GR_DL_EXPIRED_REPLY), timeouts);
    CHECK(probe_quiet_for(QUIET_MS));
    close_env();
}

/* ---- cases: continuations ------------------------------------------------ */

/* gr_ask_then hands a reply, a timeout and a failure to the continuation,
 * never to handle, in the asker's turn (its ctx, its state, which keeps
 * what the continuations counted) with the arg of that ask; a plain
 * gr_ask beside them still goes to handle; a continuation may ask again. */
static void test_continuations(void)
{
    CHECK(open_env(2));
    gr_ref callee = spawn(&callee_b), crasher = spawn(&callee_b);
    gr_ref asker = spawn(&asker_b);
    uint64_t corr, t_asked;
    struct rep r;
    CHECK_EQ(ask(asker, ac_then(callee, 3, M_REPLY, 1000, 1, K_CONT), &corr),
             GR_OK);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK_EQ(r.via_cont, 1);
    CHECK_EQ(r.arg_idx, 1);
    CHECK_EQ(r.state_ok, 1);
    CHECK(gr_ref_eq(r.self, asker));
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.type, A);
    CHECK_EQ(r.flags, GR_MSG_REPLY);
    CHECK_EQ(r.val, 6);
    CHECK(gr_ref_eq(r.from, callee));
    CHECK_EQ(r.conts, 1);
    CHECK_EQ(r.handled, 0);
    CHECK_EQ(ask_t(asker, ac_then(callee, 4, M_HOLD, 30, 2, K_CONT), &corr,
                   &t_asked),
             GR_OK);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK_EQ(r.via_cont, 1);
    CHECK_EQ(r.arg_idx, 2);
    CHECK_EQ(r.state_ok, 1);
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.type, GR_MSG_TIMEOUT);
    CHECK_EQ(r.flags, GR_MSG_REPLY);
    CHECK(gr_ref_eq(r.from, callee));
    CHECK(r.t - t_asked >= 30 * 1000000u);
    CHECK_EQ(r.conts, 2);
    CHECK_EQ(
        ask(asker, ac_then(crasher, 5, M_CRASH, LONG_MS, 3, K_CONT), &corr),
        GR_OK);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK_EQ(r.via_cont, 1);
    CHECK_EQ(r.arg_idx, 3);
    CHECK_EQ(r.state_ok, 1);
    CHECK(is_failure(&r, corr, crasher, PROBE_CRASH));
    CHECK_EQ(r.conts, 3);
    /* A plain ask beside them. */
    CHECK_EQ(ask(asker, ac(callee, 6, M_REPLY, 1000, K_NONE), &corr), GR_OK);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK_EQ(r.via_cont, 0);
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.handled, 1);
    CHECK_EQ(r.conts, 3);
    /* A continuation that asks again, with a continuation. */
    CHECK_EQ(ask(asker, ac_then(callee, 7, M_REPLY, 1000, 4, K_CHAIN), &corr),
             GR_OK);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK_EQ(r.corr, corr);
    CHECK_EQ(r.arg_idx, 4);
    CHECK_EQ(r.val, 14);
    CHECK_EQ(r.rc[0], GR_OK);
    uint64_t corr2 = r.corr2;
    CHECK(corr2 != 0 && corr2 != corr);
    CHECK(take_rep(R_ANSWER, &r));
    CHECK_EQ(r.via_cont, 1);
    CHECK_EQ(r.corr, corr2);
    CHECK_EQ(r.arg_idx, 5);
    CHECK_EQ(r.val, 16);
    CHECK_EQ(r.state_ok, 1);
    CHECK_EQ(probe_tell(asker, C_COUNTS, NULL, 0), GR_OK);
    CHECK(take_rep(R_COUNTS, &r));
    CHECK_EQ(r.handled, 1);
    CHECK_EQ(r.conts, 5);
    CHECK(probe_quiet_for(QUIET_MS));
    close_env();
}

/* A continuation's return value counts as handle's would: GR_STOP (after
 * a reply) exits normally, gr_stop_with (after a timeout) with its
 * reason, an error code (after a failure) crashes with it, and gr_fail
 * crashes with GR_EFAILED and its text. */
static void test_continuation_ends_asker(void)
{
    CHECK(open_env(2));
    struct {
        int mode, kind, code;
    } v[] = {{M_REPLY, K_STOP, GR_OK},
             {M_HOLD, K_STOP_WITH, GR_ESHUTDOWN},
             {M_CRASH, K_CRASH, PROBE_CRASH},
             {M_REPLY, K_FAIL, GR_EFAILED}};
    for (int i = 0; i < 4; i++) {
        gr_ref asker = spawn(&asker_b), callee = spawn(&callee_b);
        uint64_t timeout = v[i].mode == M_HOLD ? 20 : LONG_MS;
        uint64_t corr;
        struct rep r;
        CHECK_EQ(ask(asker,
                     ac_then(callee, 1, v[i].mode, timeout, i + 1, v[i].kind),
                     &corr),
                 GR_OK);
        CHECK(take_rep(R_ANSWER, &r));
        CHECK_EQ(r.via_cont, 1);
        CHECK_EQ(r.corr, corr);
        CHECK(take_rep(R_TERM, &r));
        CHECK(gr_ref_eq(r.self, asker));
        CHECK_EQ(r.why.code, v[i].code);
        if (v[i].kind == K_STOP_WITH)
            CHECK_EQ(r.why.detail, 5);
        if (v[i].kind == K_CRASH || v[i].kind == K_FAIL)
            CHECK(r.why.flags & GR_REASON_IN_HANDLER);
        if (v[i].kind == K_FAIL)
            CHECK(strcmp(r.why.text, "cont failed") == 0);
    }
    CHECK(probe_quiet_for(QUIET_MS));
    close_env();
}

TEST_MAIN(TEST_CASE(test_reply), TEST_CASE(test_many_out_of_order),
          TEST_CASE(test_second_reply), TEST_CASE(test_timeouts),
          TEST_CASE(test_late_reply_while_busy), TEST_CASE(test_many_timeouts),
          TEST_CASE(test_reply_races_timeout), TEST_CASE(test_continuations),
          TEST_CASE(test_continuation_ends_asker))
