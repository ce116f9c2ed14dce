/*
 * Backpressure between actors (docs/messaging.md, "Backpressure"): senders
 * to an actor whose mailbox runs deep are held back after the message
 * they are handling until it catches up, so its mailbox stays bounded
 * while nothing is lost, duplicated or reordered; an overloaded actor is
 * never held back itself, so relays and cycles keep moving; and senders
 * held back on an actor that exits run again.
 *
 * Message counts are divided by GROVE_TEST_SCALE (default 1).
 */
#include <grove/grove.h>

#include "helpers.h"

enum {
    MSG_GO = 1,   /* main -> sender: start */
    MSG_MORE,     /* sender -> itself: send the next chunk */
    MSG_DATA,     /* sender -> receiver: struct item */
    MSG_REPORT,   /* -> main's inbox: struct tally */
    MSG_FORWARDS, /* relay's count of forwards, to main */
};

/* One numbered message of one sender's stream. */
struct item {
    uint32_t sender;
    uint64_t seq;
};

/* What an actor tells main. */
struct tally {
    uint64_t count;  /* Messages received (or sent). */
    uint64_t errors; /* Out of order or duplicated. */
};

/* Senders per case, and messages each sends per handler call. */
#define SENDERS 40
#define CHUNK   500
/* A bound on the receiver's mailbox far above what muting allows
 * (GR__MUTE_HIGH plus one chunk per sender: ~21 k) and far below what
 * the senders would queue without it (their whole output). */
#define DEPTH_BOUND 200000u

/* ---- sender: `total` items to `to`, CHUNK per handler call ------------- */

struct sender_args {
    gr_ref to, report_to;
    uint32_t index;
    uint64_t total; /* UINT64_MAX: until a send fails, then report. */
};

struct sender {
    struct sender_args a;
    uint64_t next;
};

static int sender_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct sender *s = state;
    s->next = 0;
    return read_arg(&s->a, sizeof s->a, arg, len);
}

static int sender_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct sender *s = state;
    if (m->type != MSG_GO && m->type != MSG_MORE)
        return GR_EUNHANDLED;
    for (int i = 0; i < CHUNK && s->next < s->a.total; i++) {
        struct item it = {s->a.index, s->next};
        int rc = gr_tell(ctx, s->a.to, MSG_DATA, &it, sizeof it);
        if (rc != GR_OK) { /* The receiver is gone: say so, stop. */
            struct tally t = {s->next, 1};
            return gr_tell(ctx, s->a.report_to, MSG_REPORT, &t, sizeof t);
        }
        s->next++;
    }
    if (s->next < s->a.total)
        return gr_tell(ctx, gr_self(ctx), MSG_MORE, NULL, 0);
    return GR_CONTINUE;
}

static const gr_behaviour sender_behaviour = {
    .name = "bp-sender",
    .state_size = sizeof(struct sender),
    .init = sender_init,
    .handle = sender_handle,
};

/* ---- receiver: checks each stream's order; optionally forwards -------- */

struct receiver_args {
    gr_ref report_to;
    gr_ref forward_to; /* GR_REF_NONE: keep everything. */
    uint64_t expect;   /* Report once this many arrived. */
    uint64_t stop_at;  /* Exit after this many (0: never). */
    uint32_t spin;     /* Busy-work rounds per message: a slow consumer. */
};

struct receiver {
    struct receiver_args a;
    uint64_t count, errors;
    uint64_t next[SENDERS];
};

static int receiver_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct receiver *r = state;
    memset(r, 0, sizeof *r);
    return read_arg(&r->a, sizeof r->a, arg, len);
}

static int receiver_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct receiver *r = state;
    struct item it;
    if (m->type != MSG_DATA || !read_payload(m, &it, sizeof it) ||
        it.sender >= SENDERS)
        return GR_EUNHANDLED;
    if (it.seq != r->next[it.sender]++)
        r->errors++;
    for (volatile uint32_t i = 0; i < r->a.spin; i++)
        ;
    r->count++;
    if (!gr_ref_is_none(r->a.forward_to)) {
        int rc = gr_tell(ctx, r->a.forward_to, MSG_DATA, &it, sizeof it);
        if (rc != GR_OK)
            return rc;
    }
    if (r->count == r->a.expect) {
        struct tally t = {r->count, r->errors};
        int rc = gr_tell(ctx, r->a.report_to, MSG_REPORT, &t, sizeof t);
        if (rc != GR_OK)
            return rc;
    }
    return r->a.stop_at != 0 && r->count == r->a.stop_at ? GR_STOP
                                                         : GR_CONTINUE;
}

static const gr_behaviour receiver_behaviour = {
    .name = "bp-receiver",
    .state_size = sizeof(struct receiver),
    .init = receiver_init,
    .handle = receiver_handle,
};

/* ---- twin: floods its peer while the peer floods it ------------------ */

struct twin_args {
    gr_ref report_to;
    uint32_t index;
    uint64_t total; /* Items each way. */
};

struct twin {
    struct twin_args a;
    gr_ref peer;
    uint64_t sent, received, errors;
};

static int twin_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct twin *t = state;
    memset(t, 0, sizeof *t);
    return read_arg(&t->a, sizeof t->a, arg, len);
}

static int twin_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct twin *t = state;
    struct item it;
    if (m->type == MSG_DATA && read_payload(m, &it, sizeof it)) {
        if (it.seq != t->received++)
            t->errors++;
        if (t->received < t->a.total)
            return GR_CONTINUE;
        struct tally done = {t->received, t->errors};
        return gr_tell(ctx, t->a.report_to, MSG_REPORT, &done, sizeof done);
    }
    if (m->type == MSG_GO && !read_payload(m, &t->peer, sizeof t->peer))
        return GR_EUNHANDLED;
    if (m->type != MSG_GO && m->type != MSG_MORE)
        return GR_EUNHANDLED;
    for (int i = 0; i < CHUNK && t->sent < t->a.total; i++, t->sent++) {
        it = (struct item){t->a.index, t->sent};
        int rc = gr_tell(ctx, t->peer, MSG_DATA, &it, sizeof it);
        if (rc != GR_OK)
            return rc;
    }
    if (t->sent < t->a.total)
        return gr_tell(ctx, gr_self(ctx), MSG_MORE, NULL, 0);
    return GR_CONTINUE;
}

static const gr_behaviour twin_behaviour = {
    .name = "bp-twin",
    .state_size = sizeof(struct twin),
    .init = twin_init,
    .handle = twin_handle,
};

/* ---- helpers ----------------------------------------------------------- */

/* Starts a two-worker system whose log shows warnings. */
static int start(struct env *e)
{
    gr_config cfg = {.workers = 2, .no_signals = 1, .log_level = GR_LOG_WARN};
    return env_open(e, &cfg);
}

/* Spawns SENDERS senders of total items each to `to`, and tells them to
 * go. Returns 1 on success. */
static int start_senders(struct env *e, gr_ref to, uint64_t total,
                         gr_ref *senders)
{
    gr_ref me = gr_inbox_ref(e->inbox);
    for (uint32_t i = 0; i < SENDERS; i++) {
        struct sender_args a = {to, me, i, total};
        if (gr_system_spawn(e->sys, &sender_behaviour, &a, sizeof a,
                            &senders[i]) != GR_OK)
            return 0;
    }
    for (uint32_t i = 0; i < SENDERS; i++)
        if (gr_system_tell(e->sys, me, senders[i], MSG_GO, NULL, 0) != GR_OK)
            return 0;
    return 1;
}

/* Waits for one report in main's inbox, watching the deepest mailbox
 * meanwhile; returns 1 and fills *t (and raises *deepest), or 0. */
static int wait_report(struct env *e, struct tally *t, uint64_t *deepest)
{
    struct watch w;
    watch_start(&w, e->sys);
    gr_msg *m;
    while (gr_inbox_recv(e->inbox, &m, 2) != GR_OK) {
        if (deepest != NULL) {
            gr_stats st;
            gr_system_stats(e->sys, &st);
            if (st.deepest[0].depth > *deepest)
                *deepest = st.deepest[0].depth;
        }
        if (watch_over(&w))
            return 0;
    }
    int ok = m->type == MSG_REPORT && read_payload(m, t, sizeof *t);
    gr_msg_free(m);
    return ok;
}

/* Reads the stats into *st until done(st) holds, or the wait gives up
 * (watch_over), yielding the CPU between reads; returns whether it held. */
static int stats_until(gr_system *sys, gr_stats *st,
                       int (*done)(const gr_stats *st))
{
    struct watch w;
    watch_start(&w, sys);
    for (;;) {
        gr_system_stats(sys, st);
        if (done(st))
            return 1;
        if (watch_over(&w))
            return 0;
        sched_yield();
    }
}

static int all_sends_counted(const gr_stats *st)
{
    return st->sent >= st->delivered;
}

static int some_muted(const gr_stats *st)
{
    return st->muted > 0;
}

/* ---- cases ------------------------------------------------------------- */

/* Forty senders flood one receiver: all of it arrives, in order per
 * sender, while the receiver's mailbox stays bounded and senders were
 * held back. */
static void fan_in_bounded_in_order(void)
{
    struct env e;
    CHECK(start(&e));
    uint64_t per = scaled(50000, 5000), total = per * SENDERS;
    struct receiver_args ra = {.report_to = gr_inbox_ref(e.inbox),
                               .forward_to = GR_REF_NONE,
                               .expect = total};
    gr_ref receiver, senders[SENDERS];
    CHECK_EQ(
        gr_system_spawn(e.sys, &receiver_behaviour, &ra, sizeof ra, &receiver),
        GR_OK);
    CHECK(start_senders(&e, receiver, per, senders));
    struct tally t;
    uint64_t deepest = 0;
    CHECK(wait_report(&e, &t, &deepest));
    CHECK_EQ(t.count, total);
    CHECK_EQ(t.errors, 0);
    gr_stats st;
    gr_system_stats(e.sys, &st);
    fprintf(stderr, "  deepest mailbox seen %llu, senders muted %llu times\n",
            (unsigned long long)deepest, (unsigned long long)st.muted);
    CHECK(st.muted > 0);
    CHECK(deepest < DEPTH_BOUND);
    /* Every send counts once its turn ends, on a worker gone idle too
     * (here: every data message, GO, MORE and the report). */
    CHECK(stats_until(e.sys, &st, all_sends_counted));
    env_close(&e);
}

/* Senders flood a relay that forwards everything to a slower sink: the
 * relay, with senders held back on it, is held back by the sink in turn,
 * so the sink's mailbox stays bounded too, and everything arrives. */
static void relay_keeps_running(void)
{
    struct env e;
    CHECK(start(&e));
    uint64_t per = scaled(5000, 1000), total = per * SENDERS;
    gr_ref me = gr_inbox_ref(e.inbox), sink, relay, senders[SENDERS];
    struct receiver_args sa = {.report_to = me,
                               .forward_to = GR_REF_NONE,
                               .expect = total,
                               .spin = 2000};
    CHECK_EQ(gr_system_spawn(e.sys, &receiver_behaviour, &sa, sizeof sa, &sink),
             GR_OK);
    struct receiver_args ra = {
        .report_to = me, .forward_to = sink, .expect = total};
    CHECK_EQ(
        gr_system_spawn(e.sys, &receiver_behaviour, &ra, sizeof ra, &relay),
        GR_OK);
    CHECK(start_senders(&e, relay, per, senders));
    uint64_t deepest = 0;
    for (int i = 0; i < 2; i++) { /* The relay's report and the sink's. */
        struct tally t;
        CHECK(wait_report(&e, &t, &deepest));
        CHECK_EQ(t.count, total);
        CHECK_EQ(t.errors, 0);
    }
    fprintf(stderr, "  deepest mailbox seen %llu\n",
            (unsigned long long)deepest);
    CHECK(deepest < total / 4); /* Unbounded, it nears total. */
    env_close(&e);
}

/* The receiver exits while senders are held back on it: every sender runs
 * again, and reports its first failed send. */
static void exit_resumes_muted_senders(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2)); /* What was queued dies as dead letters. */
    gr_ref me = gr_inbox_ref(e.inbox), receiver, senders[SENDERS];
    uint64_t stop_at = scaled(400000, 40000);
    struct receiver_args ra = {.report_to = me,
                               .forward_to = GR_REF_NONE,
                               .expect = stop_at,
                               .stop_at = stop_at};
    CHECK_EQ(
        gr_system_spawn(e.sys, &receiver_behaviour, &ra, sizeof ra, &receiver),
        GR_OK);
    CHECK(start_senders(&e, receiver, UINT64_MAX, senders));
    struct tally t;
    CHECK(wait_report(&e, &t, NULL));
    CHECK_EQ(t.count, stop_at);
    for (uint32_t i = 0; i < SENDERS; i++) {
        CHECK(wait_report(&e, &t, NULL));
        CHECK_EQ(t.errors, 1); /* A sender's report of its failed send. */
    }
    gr_stats st;
    gr_system_stats(e.sys, &st);
    CHECK(st.muted > 0);
    env_close(&e);
}

/* Two actors flood each other: both may be overloaded at once, each
 * sending to the other, and neither stalls. */
static void flood_both_ways(void)
{
    struct env e;
    CHECK(start(&e));
    gr_ref me = gr_inbox_ref(e.inbox), twin[2];
    uint64_t per = scaled(500000, 50000);
    for (int i = 0; i < 2; i++) {
        struct twin_args a = {me, (uint32_t)i, per};
        CHECK_EQ(
            gr_system_spawn(e.sys, &twin_behaviour, &a, sizeof a, &twin[i]),
            GR_OK);
    }
    for (int i = 0; i < 2; i++)
        CHECK_EQ(gr_system_tell(e.sys, me, twin[i], MSG_GO, &twin[1 - i],
                                sizeof twin[1 - i]),
                 GR_OK);
    for (int i = 0; i < 2; i++) {
        struct tally t;
        CHECK(wait_report(&e, &t, NULL));
        CHECK_EQ(t.count, per);
        CHECK_EQ(t.errors, 0);
    }
    env_close(&e);
}

/* Shutting down while senders are held back finishes: they are resumed as
 * the receiver stops, and stop in turn. */
static void shutdown_while_muted(void)
{
    struct env e;
    CHECK(env_open_quiet(&e, 2)); /* What was queued dies as dead letters. */
    gr_ref me = gr_inbox_ref(e.inbox), receiver, senders[SENDERS];
    struct receiver_args ra = {
        .report_to = me, .forward_to = GR_REF_NONE, .expect = 100000};
    CHECK_EQ(
        gr_system_spawn(e.sys, &receiver_behaviour, &ra, sizeof ra, &receiver),
        GR_OK);
    CHECK(start_senders(&e, receiver, UINT64_MAX, senders));
    struct tally t;
    CHECK(wait_report(&e, &t, NULL));
    gr_stats st;
    CHECK(stats_until(e.sys, &st, some_muted));
    env_close(&e);
}

TEST_MAIN(TEST_CASE(fan_in_bounded_in_order), TEST_CASE(relay_keeps_running),
          TEST_CASE(exit_resumes_muted_senders), TEST_CASE(flood_both_ways),
          TEST_CASE(shutdown_while_muted))
