/*
 * Dead-letter tests: every undeliverable message is counted once with the
 * right reason, stale refs never reach newer actors, the log shows the
 * first N one by one and a summary at shutdown, and crashes are reported
 * with their reason. Public API only.
 */
#include <grove/grove.h>

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>

#include "helpers.h"

/* ---- helpers ------------------------------------------------------------ */

/* Starts a system whose log goes to cap, with the given dead-letter log
 * limit (0: default) and level (0: default). */
static gr_system *start(struct capture *cap, unsigned dl_limit,
                        gr_log_level level)
{
    capture_init(cap);
    gr_config cfg = {.workers = 2,
                     .log_fn = capture_fn,
                     .log_arg = cap,
                     .log_level = level,
                     .dead_letter_log_limit = dl_limit,
                     .no_signals = 1};
    return start_system(&cfg);
}

/* ---- the worker actor -----------------------------------------------------
 */

enum {
    MSG_WORK = 1,      /* Counted; payload: optional uint32 sequence. */
    MSG_GATE,          /* Reports MSG_ENTERED, then waits for the gate. */
    MSG_CRASH,         /* Handler returns GR_EUNHANDLED. */
    MSG_CRASH_POS,     /* Handler returns 7 (not a code: GR_EFAILED). */
    MSG_TELL_TO,       /* Payload: gr_ref. Replies gr_tell's code. */
    MSG_PING,          /* Replies MSG_PONG. */
    MSG_ENTERED,       /* worker -> inbox */
    MSG_REPLY,         /* worker -> sender */
    MSG_PONG,          /* worker -> sender */
    MSG_GOT,           /* worker -> inbox: an unexpected message arrived. */
    MSG_TERMINATED,    /* terminate -> inbox */
    MSG_STRAY = 0x2a,  /* What tests send to refs that must not resolve. */
    MSG_BOOM = 0x1234, /* Crashes with GR_EUNHANDLED, like MSG_CRASH. */
};

/* What a worker reports. */
struct report {
    int32_t reason, count, in_order, rc;
    uint32_t type;
    gr_ref ref;
};

/* How init ends its self-queued run. */
enum { END_NONE, END_STOP, END_CRASH };

/* Spawn argument of a worker; lent to init. */
struct worker_arg {
    gr_ref inbox; /* Where reports go. */
    int pre;      /* MSG_WORKs init queues to itself first. */
    int end;      /* END_*: what init queues after them. */
    int post;     /* MSG_WORKs init queues after that. */
};

struct worker {
    gr_ref inbox;
    struct seq_count work;
};

/* Opened by a test that gates a worker; the worker waits on it. */
static sem_t gate;

static void report(gr_ctx *ctx, gr_ref to, uint32_t type,
                   const struct report *r)
{
    gr_tell(ctx, to, type, r, sizeof *r);
}

static int worker_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    struct worker *w = state;
    const struct worker_arg *a = arg;
    if (len != sizeof *a)
        return GR_EINVAL;
    w->inbox = a->inbox;
    gr_ref self = gr_self(ctx);
    for (int i = 0; i < a->pre; i++)
        gr_tell(ctx, self, MSG_WORK, NULL, 0);
    if (a->end == END_STOP)
        gr_stop(gr_ctx_system(ctx), self);
    else if (a->end == END_CRASH)
        gr_tell(ctx, self, MSG_CRASH, NULL, 0);
    for (int i = 0; i < a->post; i++)
        gr_tell(ctx, self, MSG_WORK, NULL, 0);
    return GR_OK;
}

/* Waits for the gate; bounded so a broken test cannot wedge a worker. */
static void wait_gate(void)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (sem_timedwait(&gate, &until) != 0 && errno == EINTR)
        ;
}

static int worker_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct worker *w = state;
    struct report r = {.ref = gr_self(ctx), .type = m->type};
    switch (m->type) {
    case MSG_WORK:
        seq_count_add(&w->work, m);
        return GR_CONTINUE;
    case MSG_GATE:
        report(ctx, w->inbox, MSG_ENTERED, &r);
        wait_gate();
        return GR_CONTINUE;
    case MSG_CRASH:
    case MSG_BOOM:
        return GR_EUNHANDLED;
    case MSG_CRASH_POS:
        return 7;
    case MSG_TELL_TO: {
        gr_ref to = GR_REF_NONE;
        read_payload(m, &to, sizeof to);
        r.rc = gr_tell(ctx, to, MSG_STRAY, NULL, 0);
        report(ctx, m->from, MSG_REPLY, &r);
        return GR_CONTINUE;
    }
    case MSG_PING:
        report(ctx, m->from, MSG_PONG, &r);
        return GR_CONTINUE;
    default:
        report(ctx, w->inbox, MSG_GOT, &r);
        return GR_CONTINUE;
    }
}

static void worker_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    int reason = why->code;
    struct worker *w = state;
    struct report r = {.reason = reason,
                       .count = w->work.count,
                       .in_order = w->work.out_of_order == 0,
                       .ref = gr_self(ctx)};
    report(ctx, w->inbox, MSG_TERMINATED, &r);
}

static const gr_behaviour worker_b = {
    .name = "worker",
    .state_size = sizeof(struct worker),
    .init = worker_init,
    .handle = worker_handle,
    .terminate = worker_terminate,
};

static int spawn_worker(gr_system *sys, gr_inbox *in, gr_ref *out)
{
    struct worker_arg a = {.inbox = gr_inbox_ref(in)};
    return gr_system_spawn(sys, &worker_b, &a, sizeof a, out);
}

/* Waits until worker p's terminate has reported and its exit is counted;
 * stores the report. */
static int wait_gone(gr_system *sys, gr_inbox *in, gr_ref p, uint64_t exited,
                     struct report *r)
{
    int rc = recv_exact(in, MSG_TERMINATED, r, sizeof *r);
    if (rc != GR_OK)
        return rc;
    if (!gr_ref_eq(r->ref, p))
        return GR_EINVAL;
    return wait_exited(sys, exited) >= exited ? GR_OK : GR_ETIMEDOUT;
}

/* Has worker via tell MSG_STRAY to target; returns gr_tell's code. */
static int tell_via(gr_system *sys, gr_inbox *in, gr_ref via, gr_ref target)
{
    int rc = gr_system_tell(sys, gr_inbox_ref(in), via, MSG_TELL_TO, &target,
                            sizeof target);
    if (rc != GR_OK)
        return rc;
    struct report r;
    rc = recv_exact(in, MSG_REPLY, &r, sizeof r);
    return rc == GR_OK ? r.rc : rc;
}

/* ---- cases --------------------------------------------------------------- */

/* Sends to an actor whose exit is confirmed (stopped, crashed) return
 * GR_ENOACTOR and count exactly one no_actor dead letter each, whether
 * from outside or from another actor. */
static void test_send_to_exited_actor(void)
{
    struct capture cap;
    gr_system *sys = start(&cap, 0, 0);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref helper;
    CHECK_EQ(spawn_worker(sys, in, &helper), GR_OK);
    for (int how = 0; how < 2; how++) {
        gr_ref p;
        CHECK_EQ(spawn_worker(sys, in, &p), GR_OK);
        uint64_t exited = stats_of(sys).exited;
        if (how == 0)
            CHECK_EQ(gr_stop(sys, p), GR_OK);
        else
            CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, p, MSG_CRASH, NULL, 0),
                     GR_OK);
        struct report r;
        CHECK_EQ(wait_gone(sys, in, p, exited + 1, &r), GR_OK);
        CHECK_EQ(r.reason, how == 0 ? GR_ESHUTDOWN : GR_EUNHANDLED);
        gr_stats before = stats_of(sys);
        CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, p, MSG_STRAY, NULL, 0),
                 GR_ENOACTOR);
        CHECK_EQ(gr_system_tell(sys, gr_inbox_ref(in), p, MSG_WORK, "x", 1),
                 GR_ENOACTOR);
        gr_stats after = stats_of(sys);
        CHECK_EQ(after.dead_letters[GR_DL_NO_ACTOR],
                 before.dead_letters[GR_DL_NO_ACTOR] + 2);
        CHECK_EQ(tell_via(sys, in, helper, p), GR_ENOACTOR);
        CHECK_EQ(stats_of(sys).dead_letters[GR_DL_NO_ACTOR],
                 before.dead_letters[GR_DL_NO_ACTOR] + 3);
        CHECK_EQ(gr_stop(sys, p), GR_ENOACTOR);
        CHECK_EQ(stats_of(sys).dead_letters[GR_DL_STOPPED],
                 before.dead_letters[GR_DL_STOPPED]);
    }
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* Sends to refs that never named an actor count one no_actor dead letter
 * each, also with logging off, and nothing is logged then. */
static void test_send_to_never_existing(void)
{
    struct capture cap;
    gr_system *sys = start(&cap, 0, GR_LOG_OFF);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref p;
    CHECK_EQ(spawn_worker(sys, in, &p), GR_OK);
    gr_ref other_node = p, other_inc = p, unknown = p;
    other_node.node = 3;
    other_inc.incarnation ^= 0x5555;
    unknown.serial += 4096 * 7 + 5;
    const gr_ref refs[] = {GR_REF_NONE, unknown, other_inc};
    uint64_t want = 0;
    for (int round = 0; round < 25; round++) {
        for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
            CHECK_EQ(
                gr_system_tell(sys, GR_REF_NONE, refs[i], MSG_STRAY, NULL, 0),
                GR_ENOACTOR);
            want++;
        }
    }
    CHECK_EQ(stats_of(sys).dead_letters[GR_DL_NO_ACTOR], want);
    /* A node this system is not connected to: a node_down dead letter. */
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, other_node, MSG_STRAY, NULL, 0),
             GR_ENOCONNECTION);
    CHECK_EQ(stats_of(sys).dead_letters[GR_DL_NODE_DOWN], 1);
    CHECK_EQ(tell_via(sys, in, p, other_inc), GR_ENOACTOR);
    CHECK_EQ(tell_via(sys, in, p, GR_REF_NONE), GR_ENOACTOR);
    CHECK_EQ(stats_of(sys).dead_letters[GR_DL_NO_ACTOR], want + 2);
    CHECK_EQ(stats_of(sys).dead_letters[GR_DL_STOPPED], 0);
    /* The actor whose serial two of the refs share got none of it. */
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(in, &m, 50), GR_ETIMEDOUT);
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
    CHECK_EQ(cap.n, 0);
}

/* Closing an inbox turns its queued messages into stopped dead letters;
 * later sends to its ref are GR_ENOACTOR and no_actor. */
static void test_closed_inbox(void)
{
    struct capture cap;
    gr_system *sys = start(&cap, 0, 0);
    CHECK(sys != NULL);
    gr_inbox *a, *b;
    CHECK_EQ(gr_inbox_open(sys, &a), GR_OK);
    CHECK_EQ(gr_inbox_open(sys, &b), GR_OK);
    gr_ref bref = gr_inbox_ref(b);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, bref, MSG_WORK, NULL, 0),
                 GR_OK);
    gr_inbox_close(b);
    CHECK_EQ(wait_dead_settled(sys, GR_DL_STOPPED, 3), 3);
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, bref, MSG_WORK, NULL, 0),
             GR_ENOACTOR);
    CHECK_EQ(stats_of(sys).dead_letters[GR_DL_NO_ACTOR], 1);
    /* The other inbox is unaffected. */
    CHECK_EQ(
        gr_system_tell(sys, GR_REF_NONE, gr_inbox_ref(a), MSG_WORK, NULL, 0),
        GR_OK);
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(a, &m, WAIT_MS), GR_OK);
    CHECK_EQ(m->type, MSG_WORK);
    gr_msg_free(m);
    gr_inbox_close(a);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* Runs one "messages queued behind an exit" scenario: pre messages, then a
 * stop or a crash, then post messages, all queued before the actor runs
 * (by its own init, or from this thread while the actor is gated). */
static void queued_behind(int end, int from_init)
{
    enum { PRE = 5, POST = 7 };
    struct capture cap;
    gr_system *sys = start(&cap, 0, GR_LOG_OFF);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    struct worker_arg a = {.inbox = gr_inbox_ref(in)};
    if (from_init) {
        a.pre = PRE;
        a.end = end;
        a.post = POST;
    }
    gr_ref p;
    CHECK_EQ(gr_system_spawn(sys, &worker_b, &a, sizeof a, &p), GR_OK);
    if (!from_init) {
        CHECK_EQ(sem_init(&gate, 0, 0), 0);
        struct report r;
        CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, p, MSG_GATE, NULL, 0), GR_OK);
        CHECK_EQ(recv_exact(in, MSG_ENTERED, &r, sizeof r), GR_OK);
        for (uint32_t i = 0; i < PRE; i++)
            CHECK_EQ(
                gr_system_tell(sys, GR_REF_NONE, p, MSG_WORK, &i, sizeof i),
                GR_OK);
        if (end == END_STOP)
            CHECK_EQ(gr_stop(sys, p), GR_OK);
        else
            CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, p, MSG_CRASH, NULL, 0),
                     GR_OK);
        for (uint32_t i = 0; i < POST; i++)
            CHECK_EQ(
                gr_system_tell(sys, GR_REF_NONE, p, MSG_WORK, &i, sizeof i),
                GR_OK);
        sem_post(&gate);
    }
    struct report r;
    CHECK_EQ(recv_exact(in, MSG_TERMINATED, &r, sizeof r), GR_OK);
    CHECK_EQ(r.reason, end == END_STOP ? GR_ESHUTDOWN : GR_EUNHANDLED);
    CHECK_EQ(r.count, PRE);
    CHECK(r.in_order);
    CHECK_EQ(wait_dead_settled(sys, GR_DL_STOPPED, POST), POST);
    CHECK_EQ(stats_of(sys).dead_letters[GR_DL_NO_ACTOR], 0);
    if (!from_init)
        sem_destroy(&gate);
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* Messages queued behind a stop (gr_stop from init or from outside) are
 * not handled and count exactly as stopped dead letters. */
static void test_queued_behind_stop(void)
{
    queued_behind(END_STOP, 1);
    if (test_failed_)
        return;
    queued_behind(END_STOP, 0);
}

/* Messages queued behind a message whose handler crashes are not handled
 * and count exactly as stopped dead letters. */
static void test_queued_behind_crash(void)
{
    queued_behind(END_CRASH, 1);
    if (test_failed_)
        return;
    queued_behind(END_CRASH, 0);
}

/* A ref to an exited actor never reaches an actor spawned later, even one
 * that took over its slot: the send is a no_actor dead letter and none of
 * the new actors receives anything. */
static void test_stale_ref_never_reaches_new_actor(void)
{
    enum { ROUNDS = 20, FRESH = 24 };
    struct capture cap;
    gr_system *sys = start(&cap, 0, GR_LOG_OFF);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    int reused = 0;
    for (int round = 0; round < ROUNDS; round++) {
        gr_ref stale;
        CHECK_EQ(spawn_worker(sys, in, &stale), GR_OK);
        uint64_t exited = stats_of(sys).exited;
        CHECK_EQ(gr_stop(sys, stale), GR_OK);
        struct report r;
        CHECK_EQ(wait_gone(sys, in, stale, exited + 1, &r), GR_OK);
        gr_ref fresh[FRESH];
        for (int i = 0; i < FRESH; i++) {
            CHECK_EQ(spawn_worker(sys, in, &fresh[i]), GR_OK);
            CHECK(!gr_ref_eq(fresh[i], stale));
            /* Grove's id table keeps the slot index in the low 32 bits of
             * the serial; count rounds where the slot was in fact reused so
             * the test is known to exercise it. */
            if ((uint32_t)fresh[i].serial == (uint32_t)stale.serial)
                reused++;
        }
        uint64_t dl = stats_of(sys).dead_letters[GR_DL_NO_ACTOR];
        CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, stale, MSG_STRAY, NULL, 0),
                 GR_ENOACTOR);
        CHECK_EQ(gr_stop(sys, stale), GR_ENOACTOR);
        CHECK_EQ(stats_of(sys).dead_letters[GR_DL_NO_ACTOR], dl + 1);
        /* A worker forwards anything unexpected to the inbox before it
         * answers a later ping, so FRESH pongs and nothing else means no
         * fresh actor saw the stray message. */
        for (int i = 0; i < FRESH; i++)
            CHECK_EQ(gr_system_tell(sys, gr_inbox_ref(in), fresh[i], MSG_PING,
                                    NULL, 0),
                     GR_OK);
        for (int i = 0; i < FRESH; i++) {
            CHECK_EQ(recv_exact(in, MSG_PONG, &r, sizeof r), GR_OK);
        }
        /* Stop them all and wait, so the next round finds free slots. */
        exited = stats_of(sys).exited;
        for (int i = 0; i < FRESH; i++)
            CHECK_EQ(gr_stop(sys, fresh[i]), GR_OK);
        for (int i = 0; i < FRESH; i++) {
            CHECK_EQ(recv_exact(in, MSG_TERMINATED, &r, sizeof r), GR_OK);
            CHECK_EQ(r.reason, GR_ESHUTDOWN);
        }
        CHECK_EQ(wait_exited(sys, exited + FRESH), exited + FRESH);
    }
    CHECK(reused > 0);
    CHECK_EQ(stats_of(sys).dead_letters[GR_DL_STOPPED], 0);
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* With dead_letter_log_limit N, the first N dead letters each give one
 * warn line naming reason and type (the Nth says the rest are only
 * counted), later ones only count, and shutdown logs a summary with the
 * totals per reason. */
static void test_dead_letter_log_limit(void)
{
    enum { LIMIT = 3, NO_ACTOR = 10, STOPPED = 2 };
    struct capture cap;
    gr_system *sys = start(&cap, LIMIT, 0);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref nobody = {77777, 0, 1};
    for (int i = 0; i < NO_ACTOR; i++)
        CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, nobody, MSG_STRAY, NULL, 0),
                 GR_ENOACTOR);
    /* Stopped ones past the limit are counted, not logged. */
    struct worker_arg a = {
        .inbox = gr_inbox_ref(in), .end = END_STOP, .post = STOPPED};
    CHECK_EQ(gr_system_spawn(sys, &worker_b, &a, sizeof a, NULL), GR_OK);
    struct report r;
    CHECK_EQ(recv_exact(in, MSG_TERMINATED, &r, sizeof r), GR_OK);
    CHECK_EQ(wait_dead_settled(sys, GR_DL_STOPPED, STOPPED), STOPPED);
    gr_stats st = stats_of(sys);
    CHECK_EQ(st.dead_letters[GR_DL_NO_ACTOR], NO_ACTOR);

    unsigned lines = capture_count(&cap, GR_LOG_WARN, "dead letter:", NULL);
    if (lines != LIMIT)
        capture_dump(&cap);
    CHECK_EQ(lines, LIMIT);
    CHECK_EQ(
        capture_count(&cap, GR_LOG_WARN, "dead letter:", "reason no_actor"),
        LIMIT);
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "dead letter:", "type 0x2a"),
             LIMIT);
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "dead letters: the first",
                           "counted, not logged"),
             1);
    /* The line that says so comes right after the last one logged. */
    pthread_mutex_lock(&cap.lock);
    int next_says = 0;
    for (unsigned i = 0, seen = 0; i + 1 < cap.n && i + 1 < CAP_MAX; i++)
        if (strstr(cap.line[i], "dead letter:") != NULL && ++seen == LIMIT)
            next_says = strstr(cap.line[i + 1], "not logged") != NULL;
    pthread_mutex_unlock(&cap.lock);
    CHECK(next_says);

    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
    char want[128];
    snprintf(want, sizeof want, "%d more, %d of them not logged",
             NO_ACTOR + STOPPED, NO_ACTOR + STOPPED - LIMIT);
    char per_reason[128];
    snprintf(per_reason, sizeof per_reason, "no_actor=%d stopped=%d", NO_ACTOR,
             STOPPED);
    unsigned summary = capture_count(&cap, GR_LOG_WARN, want, per_reason);
    if (summary != 1)
        capture_dump(&cap);
    CHECK_EQ(summary, 1);
    /* Nothing more was logged one by one after the limit. */
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "dead letter:", NULL), LIMIT);
    pthread_mutex_destroy(&cap.lock);
}

/* A crashing handler's reason reaches terminate (a positive return becomes
 * GR_EFAILED), and an error line names the actor, the error and the
 * message type; normal stops log no crash. */
static void test_crash_reason_and_line(void)
{
    struct capture cap;
    gr_system *sys = start(&cap, 0, 0);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref p, q, s;
    CHECK_EQ(spawn_worker(sys, in, &p), GR_OK);
    CHECK_EQ(spawn_worker(sys, in, &q), GR_OK);
    CHECK_EQ(spawn_worker(sys, in, &s), GR_OK);
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, p, MSG_WORK, NULL, 0), GR_OK);
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, p, MSG_BOOM, NULL, 0), GR_OK);
    struct report r;
    CHECK_EQ(recv_exact(in, MSG_TERMINATED, &r, sizeof r), GR_OK);
    CHECK(gr_ref_eq(r.ref, p));
    CHECK_EQ(r.reason, GR_EUNHANDLED);
    CHECK_EQ(r.count, 1);
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, q, MSG_CRASH_POS, NULL, 0),
             GR_OK);
    CHECK_EQ(recv_exact(in, MSG_TERMINATED, &r, sizeof r), GR_OK);
    CHECK(gr_ref_eq(r.ref, q));
    CHECK_EQ(r.reason, GR_EFAILED);
    CHECK_EQ(gr_stop(sys, s), GR_OK);
    CHECK_EQ(recv_exact(in, MSG_TERMINATED, &r, sizeof r), GR_OK);
    CHECK_EQ(r.reason, GR_ESHUTDOWN);
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);

    char boom[160], pos[160];
    snprintf(boom, sizeof boom, "(worker): %s (%s) while handling type 0x1234",
             gr_errname(GR_EUNHANDLED), gr_strerror(GR_EUNHANDLED));
    snprintf(pos, sizeof pos, "(worker): %s (%s) while handling type 0x%x",
             gr_errname(GR_EFAILED), gr_strerror(GR_EFAILED), MSG_CRASH_POS);
    unsigned n_boom = capture_count(&cap, GR_LOG_ERROR, "crash <", boom);
    unsigned n_pos = capture_count(&cap, GR_LOG_ERROR, "crash <", pos);
    unsigned n_all = capture_count(&cap, GR_LOG_ERROR, "crash", NULL);
    if (n_boom != 1 || n_pos != 1 || n_all != 2)
        capture_dump(&cap);
    CHECK_EQ(n_boom, 1);
    CHECK_EQ(n_pos, 1);
    CHECK_EQ(n_all, 2);
    CHECK_EQ(
        capture_count(&cap, GR_LOG_ERROR, "GR_EUNHANDLED", "unhandled message"),
        1);
    pthread_mutex_destroy(&cap.lock);
}

/* gr_dead_reason_name names each reason and falls back for others. */
static void test_reason_names(void)
{
    CHECK(strcmp(gr_dead_reason_name(GR_DL_NO_ACTOR), "no_actor") == 0);
    CHECK(strcmp(gr_dead_reason_name(GR_DL_STOPPED), "stopped") == 0);
    const char *u = gr_dead_reason_name(GR_DL_COUNT);
    CHECK(u != NULL);
    CHECK(strcmp(u, "no_actor") != 0 && strcmp(u, "stopped") != 0);
    CHECK(gr_dead_reason_name((gr_dead_reason)-1) != NULL);
}

TEST_MAIN(TEST_CASE(test_send_to_exited_actor),
          TEST_CASE(test_send_to_never_existing), TEST_CASE(test_closed_inbox),
          TEST_CASE(test_queued_behind_stop),
          TEST_CASE(test_queued_behind_crash),
          TEST_CASE(test_stale_ref_never_reaches_new_actor),
          TEST_CASE(test_dead_letter_log_limit),
          TEST_CASE(test_crash_reason_and_line), TEST_CASE(test_reason_names))
