/*
 * gr_stats (alive, sent, the deepest mailboxes) and actor events through
 * an event_fn, with their levels and the level filter. Public API only.
 */
#include "observe_env.h"

/* ---- stats --------------------------------------------------------------- */

/* alive is spawned - exited and follows spawns, exits and failed inits;
 * sent counts accepted sends but not refused ones. */
static void test_stats_counts(void)
{
    CHECK(open_env((gr_config){0}));
    gr_stats st0 = stats_of(E.sys);
    CHECK_EQ(st0.alive, 1); /* The inbox. */
    CHECK_EQ(st0.alive, st0.spawned - st0.exited);
    CHECK_EQ(st0.workers, 2);
    gr_ref r[6];
    for (int i = 0; i < 6; i++)
        r[i] = spawn();
    gr_ref f = GR_REF_NONE;
    CHECK_EQ(gr_system_spawn(E.sys, &failing_b, NULL, 0, &f), CODE_INIT);
    gr_stats st = stats_of(E.sys);
    CHECK_EQ(st.alive, st0.alive + 6);
    CHECK_EQ(st.alive, st.spawned - st.exited);
    CHECK_EQ(gr_stop(E.sys, r[0]), GR_OK);
    CHECK_EQ(quit(r[1]), GR_OK);
    CHECK_EQ(crash(r[2]), GR_OK);
    CHECK_EQ(gr_system_exit(E.sys, r[3], &(gr_reason){.code = GR_EKILL}),
             GR_OK);
    CHECK(wait_gone(st.exited, 4));
    sleep_ms(SETTLE_MS);
    st = stats_of(E.sys);
    CHECK_EQ(st.alive, st0.alive + 2);
    CHECK_EQ(st.alive, st.spawned - st.exited);

    /* sent: 20 accepted sends to a blocked actor count; refused ones (a
     * full mailbox, a gone actor, an unknown name) do not. */
    gr_ref c = spawn_capped(20);
    CHECK(probe_block(c));
    st0 = stats_of(E.sys);
    for (int i = 0; i < 20; i++)
        CHECK_EQ(probe_tell(c, M_WORK, NULL, 0), GR_OK);
    st = stats_of(E.sys);
    CHECK(st.sent >= st0.sent + 20);
    uint64_t sent = st.sent;
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(probe_tell(c, M_WORK, NULL, 0), GR_EMAILBOXFULL);
        CHECK_EQ(probe_tell(r[0], M_WORK, NULL, 0), GR_ENOACTOR);
        CHECK_EQ(
            gr_system_tell_name(E.sys, GR_REF_NONE, "none", M_WORK, NULL, 0),
            GR_ENOTFOUND);
    }
    CHECK_EQ(stats_of(E.sys).sent, sent);
    probe_release(1);
    CHECK_EQ(count_of(c), 20);
    st = stats_of(E.sys);
    CHECK(st.delivered >= st0.delivered + 20);
    close_env();
}

/* deepest lists the backed-up mailboxes deepest first with their depths,
 * at most GR_STATS_DEEPEST of them, the rest GR_REF_NONE/0; once drained
 * they leave the list. */
static void test_stats_deepest(void)
{
    CHECK(open_env((gr_config){0}));
    /* Both workers blocked: messages to the others stay queued. */
    gr_ref x = spawn(), y = spawn();
    CHECK(probe_block(x));
    CHECK(probe_block(y));
    gr_stats st = stats_of(E.sys);
    for (int i = 0; i < GR_STATS_DEEPEST; i++) {
        CHECK(gr_ref_is_none(st.deepest[i].actor));
        CHECK_EQ(st.deepest[i].depth, 0);
    }
    static const int depth[] = {3, 14, 1, 9, 2, 7, 11, 5, 6, 4};
    enum { N = sizeof depth / sizeof depth[0] };
    gr_ref q[N];
    for (int i = 0; i < N; i++) {
        q[i] = spawn();
        for (int k = 0; k < depth[i]; k++)
            CHECK_EQ(probe_tell(q[i], M_WORK, NULL, 0), GR_OK);
    }
    /* x gets 8 too: a blocked actor's queue counts as well. */
    for (int k = 0; k < 8; k++)
        CHECK_EQ(probe_tell(x, M_WORK, NULL, 0), GR_OK);
    st = stats_of(E.sys);
    static const int want[GR_STATS_DEEPEST] = {14, 11, 9, 8, 7, 6, 5, 4};
    for (int i = 0; i < GR_STATS_DEEPEST; i++) {
        CHECK_EQ(st.deepest[i].depth, want[i]);
        gr_ref who = x;
        for (int j = 0; j < N; j++)
            if (depth[j] == want[i])
                who = q[j];
        CHECK(gr_ref_eq(st.deepest[i].actor, who));
    }
    probe_release(2);
    for (int i = 0; i < N; i++)
        CHECK_EQ(count_of(q[i]), (uint32_t)depth[i]);
    CHECK_EQ(count_of(x), 8);
    /* Both have left the gate: a post not yet taken would let the next
     * probe_block() through. */
    CHECK_EQ(count_of(y), 0);
    st = stats_of(E.sys);
    for (int i = 0; i < GR_STATS_DEEPEST; i++) {
        CHECK(gr_ref_is_none(st.deepest[i].actor));
        CHECK_EQ(st.deepest[i].depth, 0);
    }

    /* Fewer than GR_STATS_DEEPEST: the rest are empty entries. */
    CHECK(probe_block(x));
    for (int k = 0; k < 3; k++)
        CHECK_EQ(probe_tell(x, M_WORK, NULL, 0), GR_OK);
    st = stats_of(E.sys);
    CHECK(gr_ref_eq(st.deepest[0].actor, x));
    CHECK_EQ(st.deepest[0].depth, 3);
    for (int i = 1; i < GR_STATS_DEEPEST; i++) {
        CHECK(gr_ref_is_none(st.deepest[i].actor));
        CHECK_EQ(st.deepest[i].depth, 0);
    }
    probe_release(1);
    CHECK_EQ(count_of(x), 11);
    close_env();
}

/* ---- events through an event_fn ------------------------------------------ */

/* At debug level an event_fn gets: spawned (debug), exited on a stop and
 * on a normal exit (debug), exited on a kill (warn), crashed (error, with
 * the message type), init_failed (error), dead_letter (warn, with the
 * subscribers' record); one of each per actor, spawned first. */
static void test_actor_events(void)
{
    ev_reset();
    CHECK(open_env((gr_config){
        .event_fn = ev_fn, .log_level = GR_LOG_DEBUG, .log_level_set = 1}));
    struct seen_ev s;
    uint64_t t0 = now_realtime_ns();
    gr_ref a = spawn();
    CHECK(wait_ev(GR_EV_SPAWNED, a, &s));
    CHECK_EQ(s.ev.level, GR_LOG_DEBUG);
    CHECK(strcmp(s.behaviour, "node") == 0);
    CHECK_EQ(s.ev.reason.code, GR_OK);
    CHECK(actor_ev_ok(&s, t0));

    CHECK_EQ(gr_stop(E.sys, a), GR_OK);
    CHECK(wait_ev(GR_EV_EXITED, a, &s));
    CHECK_EQ(s.ev.level, GR_LOG_DEBUG);
    CHECK_EQ(s.ev.reason.code, GR_ESHUTDOWN);
    CHECK(strcmp(s.behaviour, "node") == 0);
    CHECK(actor_ev_ok(&s, t0));

    gr_ref q = spawn();
    CHECK_EQ(quit(q), GR_OK);
    CHECK(wait_ev(GR_EV_EXITED, q, &s));
    CHECK_EQ(s.ev.level, GR_LOG_DEBUG);
    CHECK_EQ(s.ev.reason.code, GR_OK);

    gr_ref k = spawn();
    CHECK_EQ(gr_system_exit(E.sys, k, &(gr_reason){.code = GR_EKILL}), GR_OK);
    CHECK(wait_ev(GR_EV_EXITED, k, &s));
    CHECK_EQ(s.ev.level, GR_LOG_WARN);
    CHECK_EQ(s.ev.reason.code, GR_EKILLED);
    CHECK(actor_ev_ok(&s, t0));

    gr_ref c = spawn();
    CHECK_EQ(crash(c), GR_OK);
    CHECK(wait_ev(GR_EV_CRASHED, c, &s));
    CHECK_EQ(s.ev.level, GR_LOG_ERROR);
    CHECK_EQ(s.ev.reason.code, PROBE_CRASH);
    CHECK(s.ev.reason.flags & GR_REASON_IN_HANDLER);
    CHECK_EQ(s.ev.reason.msg_type, PROBE_END);
    CHECK(strcmp(s.behaviour, "node") == 0);
    CHECK(actor_ev_ok(&s, t0));

    gr_ref f = GR_REF_NONE;
    CHECK_EQ(gr_system_spawn(E.sys, &failing_b, NULL, 0, &f), CODE_INIT);
    /* Emitted before the spawn returns. */
    CHECK_EQ(count_ev(GR_EV_INIT_FAILED, GR_REF_NONE, &s), 1);
    CHECK_EQ(s.ev.level, GR_LOG_ERROR);
    CHECK_EQ(s.ev.reason.code, CODE_INIT);
    CHECK(strcmp(s.behaviour, "failing") == 0);
    CHECK(!gr_ref_is_none(s.ev.actor));
    CHECK(actor_ev_ok(&s, t0));
    /* A failed init is not also a spawn, exit or crash. */
    CHECK_EQ(count_ev(GR_EV_KIND_COUNT, s.ev.actor, NULL), 1);

    /* Exactly one spawn and one exit event for each actor, spawn first. */
    gr_ref all[4] = {a, q, k, c};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(count_ev(GR_EV_KIND_COUNT, all[i], NULL), 2);
        CHECK(count_ev(GR_EV_KIND_COUNT, all[i], &s) == 2 &&
              s.ev.kind == GR_EV_SPAWNED);
    }

    /* A dead letter: the event carries the record the subscriber gets. */
    gr_ref sub = spawn();
    CHECK_EQ(subscribe(sub, 1), GR_OK);
    t0 = now_realtime_ns();
    CHECK_EQ(gr_system_tell(E.sys, sender, nobody, M_STRAY, NULL, 0),
             GR_ENOACTOR);
    gr_dead_letter d;
    CHECK(take_dead(&d, NULL));
    CHECK_EQ(count_ev(GR_EV_DEAD_LETTER, GR_REF_NONE, &s), 1);
    CHECK_EQ(s.ev.level, GR_LOG_WARN);
    CHECK(memcmp(&s.ev.dead, &d, sizeof d) == 0);
    CHECK(record_ok(&s.ev.dead, GR_DL_NO_ACTOR, sender, nobody, M_STRAY, t0));
    CHECK(gr_ref_is_none(s.ev.actor));
    CHECK(strcmp(s.behaviour, "") == 0);
    CHECK_EQ(s.ev.reason.code, GR_OK);
    close_env();
}

/* Dead-letter events are rate-limited as the log is (subscribers and
 * counters see them all); the level filter applies to event_fn: at the
 * default (info) no spawn or clean exit events, at error no kill or dead
 * letter events. */
static void test_event_levels(void)
{
    ev_reset();
    CHECK(open_env((gr_config){.event_fn = ev_fn,
                               .log_level = GR_LOG_DEBUG,
                               .log_level_set = 1,
                               .dead_letter_log_limit = 2}));
    gr_ref sub = spawn();
    CHECK_EQ(subscribe(sub, 1), GR_OK);
    for (int i = 0; i < 5; i++)
        CHECK(provoke(M_STRAY));
    for (int i = 0; i < 5; i++) {
        gr_dead_letter d;
        CHECK(take_dead(&d, NULL));
    }
    CHECK_EQ(count_ev(GR_EV_DEAD_LETTER, GR_REF_NONE, NULL), 2);
    CHECK_EQ(stats_of(E.sys).dead_letters[GR_DL_NO_ACTOR], 5);
    close_env();

    /* Default level: info. */
    ev_reset();
    CHECK(open_env((gr_config){.event_fn = ev_fn}));
    gr_ref a = spawn(), q = spawn(), k = spawn(), c = spawn();
    CHECK_EQ(gr_stop(E.sys, a), GR_OK);
    CHECK_EQ(quit(q), GR_OK);
    CHECK_EQ(gr_system_exit(E.sys, k, &(gr_reason){.code = GR_EKILL}), GR_OK);
    CHECK_EQ(crash(c), GR_OK);
    CHECK(wait_gone(0, 4));
    CHECK(provoke(M_STRAY));
    CHECK(wait_ev(GR_EV_EXITED, k, NULL));
    CHECK(wait_ev(GR_EV_CRASHED, c, NULL));
    CHECK_EQ(count_ev(GR_EV_DEAD_LETTER, GR_REF_NONE, NULL), 1);
    sleep_ms(SETTLE_MS);
    CHECK_EQ(count_ev(GR_EV_SPAWNED, GR_REF_NONE, NULL), 0);
    CHECK_EQ(count_ev(GR_EV_KIND_COUNT, a, NULL), 0);
    CHECK_EQ(count_ev(GR_EV_KIND_COUNT, q, NULL), 0);
    CHECK_EQ(count_ev(GR_EV_KIND_COUNT, k, NULL), 1);
    CHECK_EQ(count_ev(GR_EV_KIND_COUNT, c, NULL), 1);
    /* Events went to event_fn, not to the log. */
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, "crash", NULL), 0);
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "dead letter:", NULL), 0);
    close_env();

    /* Error level: crashes only. */
    ev_reset();
    CHECK(open_env((gr_config){
        .event_fn = ev_fn, .log_level = GR_LOG_ERROR, .log_level_set = 1}));
    gr_ref sub2 = spawn();
    CHECK_EQ(subscribe(sub2, 1), GR_OK);
    k = spawn();
    c = spawn();
    CHECK_EQ(gr_system_exit(E.sys, k, &(gr_reason){.code = GR_EKILL}), GR_OK);
    CHECK_EQ(crash(c), GR_OK);
    CHECK(wait_ev(GR_EV_CRASHED, c, NULL));
    CHECK(wait_gone(0, 2));
    CHECK(provoke(M_STRAY));
    gr_dead_letter d;
    CHECK(take_dead(&d, NULL)); /* Subscribers still get records. */
    sleep_ms(SETTLE_MS);
    CHECK_EQ(count_ev(GR_EV_KIND_COUNT, GR_REF_NONE, NULL), 1);
    CHECK_EQ(stats_of(E.sys).dead_letters[GR_DL_NO_ACTOR], 1);
    close_env();
}

/* Without an event_fn or a file, events are log lines: the text the
 * formatter makes, or with event_json its JSON. */
static void test_events_to_log(void)
{
    CHECK(open_env((gr_config){0}));
    gr_ref c = spawn();
    CHECK_EQ(crash(c), GR_OK);
    CHECK(wait_gone(0, 1));
    gr_event ev = {.kind = GR_EV_CRASHED,
                   .level = GR_LOG_ERROR,
                   .reason = {.code = PROBE_CRASH,
                              .flags = GR_REASON_IN_HANDLER,
                              .msg_type = PROBE_END},
                   .actor = c,
                   .behaviour = "node",
                   .sup_name = "",
                   .child_id = ""};
    char text[512];
    gr_event_format_text(&ev, text, sizeof text);
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, text, NULL), 1);
    close_env();

    CHECK(open_env((gr_config){.event_json = 1}));
    c = spawn();
    CHECK_EQ(crash(c), GR_OK);
    CHECK(wait_gone(0, 1));
    ev.actor = c;
    gr_event_format_json(&ev, text, sizeof text);
    /* Everything after the time is the same. */
    const char *tail = strstr(text, ",\"level\"");
    CHECK(tail != NULL);
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, "{\"event\":\"crashed\"", tail),
             1);
    close_env();
}

TEST_MAIN(TEST_CASE(test_stats_counts), TEST_CASE(test_stats_deepest),
          TEST_CASE(test_actor_events), TEST_CASE(test_event_levels),
          TEST_CASE(test_events_to_log))
