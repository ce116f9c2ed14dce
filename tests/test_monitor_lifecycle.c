/*
 * Monitors over their lifetime: gr_demonitor (and the queued DOWN it
 * flushes), monitors vanishing with their watcher, inboxes watched and
 * watching, gr_down_read, and the runtime's own messages being neither
 * deliveries nor dead letters. Public API only.
 */
#include "monitor_env.h"

/* ---- demonitor ------------------------------------------------------------
 */

/* A monitor removed before its target exits gives no DOWN, ever; a second
 * gr_demonitor of it is GR_ENOTFOUND; the watcher keeps working, and a
 * new monitor of it fires as usual. */
static void test_demonitor_before_exit(void)
{
    struct env e;
    CHECK(open_env(&e, 2));
    gr_ref w, t, t2;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    CHECK_EQ(spawn_node(&e, &t2), GR_OK);
    uint64_t id, id2;
    CHECK_EQ(monitor_n(w, t, 1, &id), GR_OK);
    CHECK_EQ(demonitor(w, id), GR_OK);
    CHECK_EQ(demonitor(w, id), GR_ENOTFOUND);
    uint64_t exited = stats_of(e.sys).exited;
    CHECK_EQ(probe_end(t, PROBE_CRASH), GR_OK);
    CHECK(exits_reach(&e, exited, 1));
    /* Any DOWN the target sent is in w's mailbox before the ping. */
    CHECK(probe_ping(w));
    CHECK(probe_quiet_for(100));
    CHECK_EQ(monitor_n(w, t2, 1, &id2), GR_OK);
    CHECK(id2 != id);
    CHECK_EQ(gr_stop(e.sys, t2), GR_OK);
    CHECK(next_down(w, t2, id2, GR_ESHUTDOWN));
    CHECK(close_quiet(&e, 50));
}

/* Runs one flush round: w monitors a fresh target t and sends it a
 * trigger; t tells w MSG_DEMON_NOW and then exits, so the DOWN queues
 * right behind that message. w demonitors there (GR_OK, then GR_ENOTFOUND)
 * and its handler must never see the DOWN. Stores whether the DOWN was
 * already queued at the demonitor in *queued. */
static void flush_round(struct env *e, gr_ref w, int32_t own_code, int *queued)
{
    gr_ref t;
    CHECK_EQ(spawn_node(e, &t), GR_OK);
    uint64_t exited = stats_of(e->sys).exited;
    struct trigger tr = {.target = t,
                         .want_exited = exited + 1,
                         .reply_type = MSG_DEMON_NOW,
                         .own_code = own_code};
    CHECK_EQ(probe_tell(w, MSG_WATCH_TRIGGER, &tr, sizeof tr), GR_OK);
    struct report r;
    CHECK(probe_take(MSG_MONITORED, &r, sizeof r));
    CHECK_EQ(r.rc[0], GR_OK);
    uint64_t id = r.id[0];
    CHECK(probe_take(MSG_FLUSHED, &r, sizeof r));
    CHECK_EQ(r.id[0], id);
    CHECK_EQ(r.rc[0], GR_OK);
    CHECK_EQ(r.rc[1], GR_ENOTFOUND);
    *queued = r.queued;
    CHECK(exits_reach(e, exited, 1));
    CHECK(probe_ping(w));
}

/* gr_demonitor with the DOWN already in the watcher's mailbox flushes it.
 * On one worker the target runs its whole exit before the watcher runs
 * again, so the DOWN is certainly queued; on four the two race. */
static void test_demonitor_flushes_queued_down(void)
{
    const int32_t codes[] = {GR_STOP, PROBE_CRASH, PROBE_STOP_SELF};
    struct env e;
    CHECK(open_env(&e, 1));
    gr_ref w;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    for (int i = 0; i < 3; i++) {
        int queued = 0;
        flush_round(&e, w, codes[i], &queued);
        if (test_failed_)
            break;
        /* gr_stop on itself queues the stop behind the trigger, so the
         * exit may come later; the others exit in the same turn. */
        if (codes[i] != PROBE_STOP_SELF)
            CHECK(queued);
    }
    CHECK(close_quiet(&e, 50));

    CHECK(open_env(&e, 4));
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    const int rounds = (int)scaled(60, 10);
    for (int i = 0; i < rounds; i++) {
        int queued = 0;
        flush_round(&e, w, codes[i % 3], &queued);
        if (test_failed_)
            break;
    }
    CHECK(close_quiet(&e, 50));
}

/* gr_demonitor of an id that is not an active monitor of the caller is
 * GR_ENOTFOUND: a made-up id, 0, another watcher's (whose DOWN still
 * comes), one already handled. */
static void test_demonitor_unknown(void)
{
    struct env e;
    CHECK(open_env(&e, 2));
    gr_ref w, other, t;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    CHECK_EQ(spawn_node(&e, &other), GR_OK);
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    CHECK_EQ(demonitor(w, 987654321), GR_ENOTFOUND);
    CHECK_EQ(demonitor(w, 0), GR_ENOTFOUND);
    uint64_t theirs, mine;
    CHECK_EQ(monitor_n(other, t, 1, &theirs), GR_OK);
    CHECK_EQ(demonitor(w, theirs), GR_ENOTFOUND);
    CHECK_EQ(monitor_n(w, t, 1, &mine), GR_OK);
    CHECK_EQ(demonitor(other, mine), GR_ENOTFOUND);
    CHECK_EQ(probe_end(t, GR_STOP), GR_OK);
    struct report r1, r2;
    CHECK(probe_take(MSG_DOWN_SEEN, &r1, sizeof r1));
    CHECK(probe_take(MSG_DOWN_SEEN, &r2, sizeof r2));
    if (r1.corr != theirs) {
        struct report tmp = r1;
        r1 = r2;
        r2 = tmp;
    }
    CHECK(down_is(&r1, other, t, theirs, GR_OK));
    CHECK(down_is(&r2, w, t, mine, GR_OK));
    CHECK_EQ(demonitor(w, mine), GR_ENOTFOUND);
    CHECK_EQ(demonitor(other, theirs), GR_ENOTFOUND);
    CHECK(probe_quiet_for(50));
    close_env(&e);
}

/* gr_monitor of oneself is GR_EINVAL and nothing comes of it; a NULL ctx
 * is GR_EINVAL for both calls. */
static void test_monitor_self_and_null(void)
{
    CHECK_EQ(gr_monitor(NULL, GR_REF_NONE, NULL), GR_EINVAL);
    uint64_t id = 77;
    CHECK_EQ(gr_monitor(NULL, (gr_ref){1, 0, 1}, &id), GR_EINVAL);
    CHECK_EQ(gr_demonitor(NULL, 1), GR_EINVAL);
    CHECK_EQ(gr_demonitor(NULL, 0), GR_EINVAL);

    struct env e;
    CHECK(open_env(&e, 2));
    gr_ref w;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    struct mon_cmd c = {.target = w, .times = 2};
    CHECK_EQ(probe_tell(w, MSG_MONITOR, &c, sizeof c), GR_OK);
    struct report r;
    CHECK(probe_take(MSG_MONITORED, &r, sizeof r));
    CHECK_EQ(r.rc[0], GR_EINVAL);
    CHECK_EQ(r.rc[1], GR_EINVAL);
    CHECK(probe_ping(w));
    /* Its own exit reaches no one. */
    uint64_t exited = stats_of(e.sys).exited;
    CHECK_EQ(probe_end(w, PROBE_CRASH), GR_OK);
    CHECK(exits_reach(&e, exited, 1));
    CHECK(close_quiet(&e, 50));
}

/* ---- watcher exits first --------------------------------------------------
 */

/* A watcher that exits (stopped or crashed) takes its monitors with it:
 * its targets exit later without any DOWN reaching anyone but their other
 * watchers, no dead letter is counted, and the system keeps working. A
 * watcher that exits with a DOWN still queued (one worker: the target
 * runs its exit before the watcher runs again) drops it silently too. */
static void test_watcher_exits_first(void)
{
    struct env e;
    CHECK(open_env(&e, 2));
    for (int how = 0; how < 2; how++) {
        gr_ref w, keep, t1, t2;
        CHECK_EQ(spawn_node(&e, &w), GR_OK);
        CHECK_EQ(spawn_node(&e, &keep), GR_OK);
        CHECK_EQ(spawn_node(&e, &t1), GR_OK);
        CHECK_EQ(spawn_node(&e, &t2), GR_OK);
        uint64_t ids[3], kid;
        CHECK_EQ(monitor_n(w, t1, 2, ids), GR_OK);
        CHECK_EQ(monitor_n(w, t2, 1, &ids[2]), GR_OK);
        CHECK_EQ(monitor_n(keep, t1, 1, &kid), GR_OK);
        uint64_t exited = stats_of(e.sys).exited;
        if (how == 0)
            CHECK_EQ(gr_stop(e.sys, w), GR_OK);
        else
            CHECK_EQ(probe_end(w, PROBE_CRASH), GR_OK);
        CHECK(exits_reach(&e, exited, 1));
        CHECK_EQ(probe_end(t1, PROBE_CRASH), GR_OK);
        CHECK_EQ(gr_stop(e.sys, t2), GR_OK);
        CHECK(next_down(keep, t1, kid, PROBE_CRASH));
        CHECK(exits_reach(&e, exited, 3));
        CHECK(probe_quiet_for(50));
        CHECK_EQ(dead_total(&e), 0);
        /* Gone before the next round counts exits. */
        exited = stats_of(e.sys).exited;
        CHECK_EQ(gr_stop(e.sys, keep), GR_OK);
        CHECK(exits_reach(&e, exited, 1));
    }
    gr_ref fresh;
    CHECK_EQ(spawn_node(&e, &fresh), GR_OK);
    CHECK(probe_ping(fresh));
    close_env(&e);

    /* The DOWN queued behind the message that ends the watcher. */
    CHECK(open_env(&e, 1));
    for (int round = 0; round < 5; round++) {
        gr_ref w;
        CHECK_EQ(spawn_node(&e, &w), GR_OK);
        gr_ref t;
        CHECK_EQ(spawn_node(&e, &t), GR_OK);
        uint64_t exited = stats_of(e.sys).exited;
        struct trigger tr = {.target = t,
                             .reply_type = PROBE_END,
                             .reply_code = round % 2 ? GR_STOP : PROBE_CRASH,
                             .own_code = PROBE_CRASH};
        CHECK_EQ(probe_tell(w, MSG_WATCH_TRIGGER, &tr, sizeof tr), GR_OK);
        struct report r;
        CHECK(probe_take(MSG_MONITORED, &r, sizeof r));
        CHECK_EQ(r.rc[0], GR_OK);
        CHECK(exits_reach(&e, exited, 2));
    }
    CHECK(close_quiet(&e, 50));
}

/* ---- inboxes --------------------------------------------------------------
 */

/* An actor can monitor an inbox: the request is consumed by the owner's
 * receive, not handed over, and closing the inbox gives one DOWN with
 * GR_OK. An inbox closed before its owner received the request gives one
 * DOWN too. */
static void test_monitor_inbox(void)
{
    struct env e;
    CHECK(open_env(&e, 2));
    gr_inbox *b;
    CHECK_EQ(gr_inbox_open(e.sys, &b), GR_OK);
    gr_ref bref = gr_inbox_ref(b);
    gr_ref w;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    struct mon_cmd c = {.target = bref, .times = 2, .hello = 1};
    CHECK_EQ(probe_tell(w, MSG_MONITOR, &c, sizeof c), GR_OK);
    struct report r;
    CHECK(probe_take(MSG_MONITORED, &r, sizeof r));
    CHECK_EQ(r.rc[0], GR_OK);
    CHECK_EQ(r.rc[1], GR_OK);
    uint64_t ids[2] = {r.id[0], r.id[1]};
    /* The requests came first; the owner sees only the hello. */
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(b, &m, WAIT_MS), GR_OK);
    CHECK_EQ(m->type, MSG_HELLO);
    CHECK(gr_ref_eq(m->from, w));
    gr_msg_free(m);
    CHECK_EQ(gr_inbox_recv(b, &m, 20), GR_ETIMEDOUT);
    gr_inbox_close(b);
    struct report r1, r2;
    CHECK(probe_take(MSG_DOWN_SEEN, &r1, sizeof r1));
    CHECK(probe_take(MSG_DOWN_SEEN, &r2, sizeof r2));
    if (r1.corr != ids[0]) {
        struct report tmp = r1;
        r1 = r2;
        r2 = tmp;
    }
    CHECK(down_is(&r1, w, bref, ids[0], GR_OK));
    CHECK(down_is(&r2, w, bref, ids[1], GR_OK));
    CHECK(probe_quiet_for(50));

    /* Closed with the request still queued: one DOWN all the same (which
     * reason is left open: the request had not reached the owner). */
    CHECK_EQ(gr_inbox_open(e.sys, &b), GR_OK);
    bref = gr_inbox_ref(b);
    uint64_t id;
    CHECK_EQ(monitor_n(w, bref, 1, &id), GR_OK);
    gr_inbox_close(b);
    CHECK(probe_take(MSG_DOWN_SEEN, &r, sizeof r));
    CHECK(down_is(&r, w, bref, id, r.down.reason.code));
    CHECK(r.down.reason.code == GR_OK || r.down.reason.code == GR_ENOACTOR);
    CHECK(close_quiet(&e, 50));
}

/* ---- gr_down_read ---------------------------------------------------------
 */

/* gr_down_read accepts only a well-formed DOWN: a user message with a
 * payload of the right size, a wrong size, NULL arguments are GR_EINVAL. */
static void test_down_read_rejects(void)
{
    gr_down want = {
        .monitor = 42, .target = {7, 0, 1}, .reason = {.code = GR_OK}};
    gr_down got;
    gr_msg m = {.type = GR_MSG_DOWN, .data = &want, .len = sizeof want};
    CHECK_EQ(gr_down_read(&m, &got), GR_OK);
    CHECK_EQ(got.monitor, 42);
    CHECK(gr_ref_eq(got.target, want.target));
    CHECK_EQ(gr_down_read(NULL, &got), GR_EINVAL);
    CHECK_EQ(gr_down_read(&m, NULL), GR_EINVAL);
    m.len = sizeof want - 1;
    CHECK_EQ(gr_down_read(&m, &got), GR_EINVAL);
    m.len = sizeof want + 1;
    CHECK_EQ(gr_down_read(&m, &got), GR_EINVAL);
    m.len = sizeof want;
    m.type = MSG_FAKE_DOWN;
    CHECK_EQ(gr_down_read(&m, &got), GR_EINVAL);

    /* A real user message of the right size, in a handler and an inbox. */
    struct env e;
    CHECK(open_env(&e, 2));
    gr_ref w;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    CHECK_EQ(probe_tell(w, MSG_FAKE_DOWN, &want, sizeof want), GR_OK);
    CHECK_EQ(probe_take_rc(), GR_EINVAL);
    CHECK_EQ(gr_system_tell(e.sys, GR_REF_NONE, gr_inbox_ref(e.inbox),
                            MSG_FAKE_DOWN, &want, sizeof want),
             GR_OK);
    gr_msg *in = NULL;
    CHECK_EQ(gr_inbox_recv(e.inbox, &in, WAIT_MS), GR_OK);
    int rc = gr_down_read(in, &got);
    gr_msg_free(in);
    CHECK_EQ(rc, GR_EINVAL);
    /* And a real DOWN reads back. */
    uint64_t id;
    CHECK_EQ(monitor_n(w, GR_REF_NONE, 1, &id), GR_OK);
    CHECK(next_down(w, GR_REF_NONE, id, GR_ENOACTOR));
    close_env(&e);
}

/* ---- counters and shutdown ------------------------------------------------
 */

/* Waits until the delivery count settles at exactly want; returns 1 if it
 * did, saying what it saw otherwise. */
static int delivered_is(struct env *e, uint64_t want)
{
    uint64_t n = wait_stat_settled(e->sys, stat_delivered, 0, want);
    if (n != want)
        fprintf(stderr, "  delivered %llu, want %llu\n", (unsigned long long)n,
                (unsigned long long)want);
    return n == want;
}

/* Monitor requests, demonitors and flushed DOWNs are not deliveries; a
 * DOWN handed to a handler is one, and a request an inbox's receive
 * consumed is not. */
static void test_delivered_counts(void)
{
    struct env e;
    CHECK(open_env(&e, 2));
    gr_ref w, t, t2, gone;
    CHECK_EQ(spawn_node(&e, &w), GR_OK);
    CHECK_EQ(spawn_node(&e, &t), GR_OK);
    CHECK_EQ(spawn_node(&e, &t2), GR_OK);
    CHECK_EQ(spawn_node(&e, &gone), GR_OK);
    uint64_t exited = stats_of(e.sys).exited;
    CHECK_EQ(gr_stop(e.sys, gone), GR_OK);
    CHECK(exits_reach(&e, exited, 1));
    uint64_t d = stats_of(e.sys).delivered;

    /* Command + report, then DOWN + its report: 4. */
    uint64_t id;
    CHECK_EQ(monitor_n(w, t, 1, &id), GR_OK);
    CHECK_EQ(gr_stop(e.sys, t), GR_OK);
    CHECK(next_down(w, t, id, GR_ESHUTDOWN));
    CHECK(delivered_is(&e, d += 4));

    /* The same for a target already gone. */
    CHECK_EQ(monitor_n(w, gone, 1, &id), GR_OK);
    CHECK(next_down(w, gone, id, GR_ENOACTOR));
    CHECK(delivered_is(&e, d += 4));

    /* Monitor, demonitor (2 each), then the exit delivers nothing, and
     * neither does a flushed DOWN (trigger: 2 + 2; ping: 2). */
    CHECK_EQ(monitor_n(w, t2, 1, &id), GR_OK);
    CHECK_EQ(demonitor(w, id), GR_OK);
    exited = stats_of(e.sys).exited;
    CHECK_EQ(gr_stop(e.sys, t2), GR_OK);
    CHECK(exits_reach(&e, exited, 1));
    CHECK(delivered_is(&e, d += 4));
    int queued = 0;
    flush_round(&e, w, GR_STOP, &queued);
    if (test_failed_)
        return;
    /* watch-trigger + report, trigger at the target, demon-now + report,
     * ping + pong. */
    CHECK(delivered_is(&e, d += 7));

    /* An inbox: the request is consumed, only the hello counts. */
    gr_inbox *b;
    CHECK_EQ(gr_inbox_open(e.sys, &b), GR_OK);
    struct mon_cmd c = {.target = gr_inbox_ref(b), .times = 1, .hello = 1};
    CHECK_EQ(probe_tell(w, MSG_MONITOR, &c, sizeof c), GR_OK);
    struct report r;
    CHECK(probe_take(MSG_MONITORED, &r, sizeof r));
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(b, &m, WAIT_MS), GR_OK);
    CHECK_EQ(m->type, MSG_HELLO);
    gr_msg_free(m);
    CHECK(delivered_is(&e, d += 3));
    gr_inbox_close(b);
    CHECK(probe_take(MSG_DOWN_SEEN, &r, sizeof r));
    CHECK(delivered_is(&e, d += 2));
    CHECK_EQ(dead_total(&e), 0);
    close_env(&e);
}

/* Runs in terminate during shutdown: monitoring then is refused (sends
 * are), and must neither crash nor leak. */
static int shutdown_rc = 1;

static int closer_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    return GR_CONTINUE;
}

static void closer_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    int reason = why->code;
    gr_ref *target = state;
    (void)reason;
    uint64_t id;
    shutdown_rc = gr_monitor(ctx, *target, &id);
}

static int closer_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    gr_ref *target = state;
    int rc = read_arg(target, sizeof *target, arg, len);
    if (rc == GR_OK)
        rc = gr_monitor(ctx, *target, NULL);
    return rc;
}

static const gr_behaviour closer_b = {
    .name = "closer",
    .state_size = sizeof(gr_ref),
    .init = closer_init,
    .handle = closer_handle,
    .terminate = closer_terminate,
};

/* Shutting down with monitors in every state (established both ways,
 * requests likely still queued, DOWNs likely still queued, monitors made
 * in terminate) counts no dead letter and frees everything (the sanitizer
 * builds check that). */
static void test_shutdown_with_monitors(void)
{
    struct capture cap;
    capture_init(&cap);
    gr_config cfg = {
        .workers = 2, .log_fn = capture_fn, .log_arg = &cap, .no_signals = 1};
    struct env e;
    CHECK(env_open(&e, &cfg));
    probe_attach(&e);
    enum { N = 16 };
    gr_ref p[N];
    for (int i = 0; i < N; i++)
        CHECK_EQ(spawn_node(&e, &p[i]), GR_OK);
    /* A ring of monitors each way round, two and three deep. */
    for (int i = 0; i < N; i++) {
        uint64_t ids[3];
        CHECK_EQ(monitor_n(p[i], p[(i + 1) % N], 2, ids), GR_OK);
        CHECK_EQ(monitor_n(p[(i + 1) % N], p[i], 3, ids), GR_OK);
    }
    /* Closers monitor from init on this thread, so their requests may
     * still be queued at shutdown; last's crash queues DOWNs to the
     * closers watching it, which may not have run yet either. */
    gr_ref last;
    CHECK_EQ(spawn_node(&e, &last), GR_OK);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(gr_system_spawn(e.sys, &closer_b, &p[i], sizeof p[i], NULL),
                 GR_OK);
        CHECK_EQ(gr_system_spawn(e.sys, &closer_b, &last, sizeof last, NULL),
                 GR_OK);
    }
    uint64_t exited = stats_of(e.sys).exited;
    CHECK_EQ(probe_end(last, PROBE_CRASH), GR_OK);
    /* Its exit counted, so the message that ended it is no dead letter. */
    CHECK(exits_reach(&e, exited, 1));
    gr_inbox_close(e.inbox);
    CHECK_EQ(gr_system_shutdown(e.sys), GR_OK);
    probe_detach();
    /* Refused like a send; the exact code is the runtime's. */
    CHECK(shutdown_rc != 1 && shutdown_rc != GR_OK);
    unsigned dl = capture_count(&cap, GR_LOG_WARN, "dead letter", NULL);
    if (dl != 0)
        capture_dump(&cap);
    CHECK_EQ(dl, 0);
    pthread_mutex_destroy(&cap.lock);
}

TEST_MAIN(TEST_CASE(test_demonitor_before_exit),
          TEST_CASE(test_demonitor_flushes_queued_down),
          TEST_CASE(test_demonitor_unknown),
          TEST_CASE(test_monitor_self_and_null),
          TEST_CASE(test_watcher_exits_first), TEST_CASE(test_monitor_inbox),
          TEST_CASE(test_down_read_rejects), TEST_CASE(test_delivered_counts),
          TEST_CASE(test_shutdown_with_monitors))
