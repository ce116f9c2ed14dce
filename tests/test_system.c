/*
 * System lifecycle tests: orderly shutdown, repeated start/stop, the ways
 * gr_system_run returns (stop from a thread, from a handler, SIGTERM,
 * SIGINT), gr_stop ordering and worker counts. Public API only.
 */
#include <grove/grove.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

/* Seconds a gr_system_run may block before the process is killed: the
 * bounded wait for calls that have no timeout of their own. */
#define RUN_LIMIT_S 30

/* ---- helpers ------------------------------------------------------------ */

/* Ends the process when a gr_system_run outlives RUN_LIMIT_S; only
 * async-signal-safe calls. */
static void run_limit_hit(int sig)
{
    (void)sig;
    static const char msg[] = "  gr_system_run did not return in time\n";
    ssize_t n = write(2, msg, sizeof msg - 1);
    (void)n;
    _exit(3);
}

/* Bounds the next gr_system_run, which has no timeout of its own. */
static void arm_run_limit(void)
{
    signal(SIGALRM, run_limit_hit);
    alarm(RUN_LIMIT_S);
}

/* ---- terminate records ------------------------------------------------------
 */

/* Most terminate calls a test records. */
#define REC_MAX 64

/* Terminate calls of recording actors, in call order. */
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static int rec_n;
static int rec_id[REC_MAX];
static int rec_reason[REC_MAX];

static void rec_reset(void)
{
    pthread_mutex_lock(&rec_lock);
    rec_n = 0;
    pthread_mutex_unlock(&rec_lock);
}

static void rec_add(int id, int reason)
{
    pthread_mutex_lock(&rec_lock);
    if (rec_n < REC_MAX) {
        rec_id[rec_n] = id;
        rec_reason[rec_n] = reason;
    }
    rec_n++;
    pthread_mutex_unlock(&rec_lock);
}

static int rec_count(void)
{
    pthread_mutex_lock(&rec_lock);
    int n = rec_n;
    pthread_mutex_unlock(&rec_lock);
    return n;
}

/* ---- the actor used throughout --------------------------------------------
 */

enum {
    MSG_WORK = 1,    /* Counted; payload: optional uint32 sequence. */
    MSG_HOLD,        /* Holds the worker until the system shuts down. */
    MSG_STOP_SYSTEM, /* Calls gr_system_stop twice. */
    MSG_PING,        /* Replies MSG_PONG to the sender. */
    MSG_NEXT,        /* Payload: gr_ref of the next relay. */
    MSG_TOKEN,       /* Payload: uint32 hops left; relays pass it on. */
    MSG_SPIN,        /* Tells itself MSG_SPIN again. */
    MSG_PROBE,       /* Sent to no actor while holding. */
    MSG_ENTERED,     /* actor -> inbox: MSG_HOLD has begun. */
    MSG_PONG,        /* actor -> sender */
    MSG_DONE,        /* relay -> inbox: a token ran out of hops. */
    MSG_TERMINATED,  /* terminate -> inbox */
};

/* What an actor reports. */
struct report {
    int32_t id, reason, count, in_order;
};

/* Spawn argument; lent to init. */
struct actor_arg {
    int id;       /* Recorded by terminate when >= 0. */
    gr_ref inbox; /* Where reports go; may be none. */
};

struct actor {
    int id;
    gr_ref inbox, next;
    struct seq_count work;
};

/* Probes MSG_HOLD sent before the system refused them. */
static atomic_int hold_probes;
/* Set when a handler has asked its system to stop. */
static atomic_int stop_asked;

static int actor_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct actor *a = state;
    const struct actor_arg *aa = arg;
    a->id = -1;
    if (aa != NULL && len == sizeof *aa) {
        a->id = aa->id;
        a->inbox = aa->inbox;
    }
    return GR_OK;
}

/* Keeps the worker busy until sends are refused, i.e. until shutdown has
 * begun, so that everything queued meanwhile stays queued. Each refused-
 * or-not probe is a send to no actor; bounded so a broken runtime cannot
 * wedge the test. */
static void hold(gr_ctx *ctx)
{
    double end = test_now() + 20;
    while (test_now() < end) {
        int rc = gr_tell(ctx, GR_REF_NONE, MSG_PROBE, NULL, 0);
        if (rc == GR_ESTOPPED)
            return;
        atomic_fetch_add(&hold_probes, 1);
        sleep_ms(1);
    }
}

static int actor_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct actor *a = state;
    struct report r = {.id = a->id};
    switch (m->type) {
    case MSG_WORK:
        seq_count_add(&a->work, m);
        break;
    case MSG_HOLD:
        gr_tell(ctx, a->inbox, MSG_ENTERED, &r, sizeof r);
        hold(ctx);
        break;
    case MSG_STOP_SYSTEM:
        atomic_store(&stop_asked, 1);
        gr_system_stop(gr_ctx_system(ctx));
        gr_system_stop(gr_ctx_system(ctx));
        break;
    case MSG_PING:
        gr_tell(ctx, m->from, MSG_PONG, &r, sizeof r);
        break;
    case MSG_NEXT:
        read_payload(m, &a->next, sizeof a->next);
        break;
    case MSG_TOKEN: {
        uint32_t hops = 0;
        read_payload(m, &hops, sizeof hops);
        if (hops == 0) {
            gr_tell(ctx, a->inbox, MSG_DONE, NULL, 0);
        } else {
            hops--;
            gr_tell(ctx, a->next, MSG_TOKEN, &hops, sizeof hops);
        }
        break;
    }
    case MSG_SPIN:
        gr_tell(ctx, gr_self(ctx), MSG_SPIN, NULL, 0);
        break;
    default:
        return GR_EUNHANDLED;
    }
    return GR_CONTINUE;
}

static void actor_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    int reason = why->code;
    struct actor *a = state;
    if (a->id >= 0)
        rec_add(a->id, reason);
    struct report r = {.id = a->id,
                       .reason = reason,
                       .count = a->work.count,
                       .in_order = a->work.out_of_order == 0};
    /* During shutdown this is refused (GR_ESTOPPED); that is fine. */
    if (!gr_ref_is_none(a->inbox))
        gr_tell(ctx, a->inbox, MSG_TERMINATED, &r, sizeof r);
}

static const gr_behaviour actor_b = {
    .name = "sysactor",
    .state_size = sizeof(struct actor),
    .init = actor_init,
    .handle = actor_handle,
    .terminate = actor_terminate,
};

static int spawn_actor(gr_system *sys, int id, gr_inbox *in, gr_ref *out)
{
    struct actor_arg a = {.id = id,
                          .inbox = in ? gr_inbox_ref(in) : GR_REF_NONE};
    return gr_system_spawn(sys, &actor_b, &a, sizeof a, out);
}

/* Waits for a report of the given type (payload may be empty). */
static int recv_report(gr_inbox *in, uint32_t type, struct report *out)
{
    gr_msg *m = NULL;
    int rc = gr_inbox_recv(in, &m, WAIT_MS);
    if (rc != GR_OK)
        return rc;
    rc = m->type == type ? GR_OK : GR_EUNHANDLED;
    if (rc == GR_OK && out != NULL) {
        memset(out, 0, sizeof *out);
        read_payload(m, out, sizeof *out);
    }
    gr_msg_free(m);
    return rc;
}

/* ---- cases --------------------------------------------------------------- */

/* Shutdown with messages queued: every live actor's terminate runs exactly
 * once with GR_ESHUTDOWN, newest first (by spawn, not by slot), an actor
 * that had already exited is not terminated again, and the queued messages
 * are counted as stopped dead letters in the shutdown summary. */
static void test_shutdown_with_queued_messages(void)
{
    enum { K = 5 };
    struct capture cap;
    capture_init(&cap);
    gr_config cfg = {.workers = 1,
                     .log_fn = capture_fn,
                     .log_arg = &cap,
                     .dead_letter_log_limit = 1,
                     .no_signals = 1};
    gr_system *sys;
    CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    rec_reset();
    atomic_store(&hold_probes, 0);

    /* R1 exits early, so the holder reuses its slot and slot order is no
     * longer spawn order. */
    gr_ref r0, r1, r2, holder, r3, r4;
    CHECK_EQ(spawn_actor(sys, 0, in, &r0), GR_OK);
    CHECK_EQ(spawn_actor(sys, 1, in, &r1), GR_OK);
    CHECK_EQ(spawn_actor(sys, 2, in, &r2), GR_OK);
    CHECK_EQ(gr_stop(sys, r1), GR_OK);
    struct report r;
    CHECK_EQ(recv_report(in, MSG_TERMINATED, &r), GR_OK);
    CHECK_EQ(r.id, 1);
    CHECK_EQ(r.reason, GR_ESHUTDOWN);
    wait_exited(sys, 1);
    CHECK_EQ(stats_of(sys).exited, 1);

    /* The one worker is held from here on, so nothing below runs. */
    CHECK_EQ(spawn_actor(sys, 9, in, &holder), GR_OK);
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, holder, MSG_HOLD, NULL, 0),
             GR_OK);
    CHECK_EQ(recv_report(in, MSG_ENTERED, &r), GR_OK);
    CHECK_EQ(spawn_actor(sys, 3, in, &r3), GR_OK);
    CHECK_EQ(spawn_actor(sys, 4, in, &r4), GR_OK);
    const gr_ref busy[] = {r0, r2, r3, r4};
    for (size_t i = 0; i < 4; i++)
        for (uint32_t k = 0; k < K; k++)
            CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, busy[i], MSG_WORK, &k,
                                    sizeof k),
                     GR_OK);
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);

    static const int order[] = {1, 4, 3, 9, 2, 0};
    CHECK_EQ(rec_count(), 6);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(rec_id[i], order[i]);
        CHECK_EQ(rec_reason[i], GR_ESHUTDOWN);
    }
    char want[128];
    snprintf(want, sizeof want,
             "(no_actor=%d stopped=%d expired_reply=0 mailbox_full=0 "
             "unknown_name=0 node_down=0 backpressure=0)",
             atomic_load(&hold_probes), 4 * K);
    unsigned summary = capture_count(&cap, GR_LOG_WARN, "dead letters:", want);
    if (summary != 1)
        capture_dump(&cap);
    CHECK_EQ(summary, 1);
    CHECK_EQ(capture_count(&cap, GR_LOG_INFO, "system stopped", NULL), 1);
    pthread_mutex_destroy(&cap.lock);
}

/* Number of relays in a repeated start/stop cycle's ring. */
#define RING 4
/* Tokens and hops per token sent around the ring each cycle. */
#define TOKENS 4
#define HOPS   40

/* Runs one start/traffic/stop cycle; wait_done selects whether traffic
 * finishes before the stop or is cut off by it. */
static void one_cycle(unsigned workers, int cycle, int wait_done)
{
    gr_config cfg = {.workers = workers, .log_fn = quiet_log};
    gr_system *sys;
    CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
    CHECK_EQ(stats_of(sys).workers, workers);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref ring[RING];
    for (int i = 0; i < RING; i++)
        CHECK_EQ(spawn_actor(sys, -1, in, &ring[i]), GR_OK);
    for (int i = 0; i < RING; i++)
        CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, ring[i], MSG_NEXT,
                                &ring[(i + 1) % RING], sizeof(gr_ref)),
                 GR_OK);
    for (int t = 0; t < TOKENS; t++) {
        uint32_t hops = HOPS;
        CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, ring[t % RING], MSG_TOKEN,
                                &hops, sizeof hops),
                 GR_OK);
    }
    if (wait_done) {
        for (int t = 0; t < TOKENS; t++)
            CHECK_EQ(recv_report(in, MSG_DONE, NULL), GR_OK);
    }
    gr_inbox_close(in);
    if (cycle % 4 == 1) {
        /* Sometimes through gr_system_run, stopped beforehand. */
        gr_system_stop(sys);
        arm_run_limit();
        CHECK_EQ(gr_system_run(sys), GR_OK);
        alarm(0);
    } else {
        CHECK_EQ(gr_system_shutdown(sys), GR_OK);
    }
}

/* Systems start and stop cleanly many times in one process, with actors
 * and traffic (finished or still in flight), with 1, 2 and 4 workers. */
static void test_repeated_start_stop(void)
{
    static const unsigned workers[] = {1, 2, 4};
    for (size_t w = 0; w < 3; w++) {
        for (int cycle = 0; cycle < 50; cycle++) {
            one_cycle(workers[w], cycle, cycle % 2 == 0);
            if (test_failed_) {
                fprintf(stderr, "  (workers %u, cycle %d)\n", workers[w],
                        cycle);
                return;
            }
        }
    }
}

/* Argument of stopper_main. */
struct stopper {
    gr_system *sys;
    int delay_ms;
};

static void *stopper_main(void *arg)
{
    struct stopper *s = arg;
    sleep_ms(s->delay_ms);
    gr_system_stop(s->sys);
    return NULL;
}

/* gr_system_run returns GR_OK after gr_system_stop from another thread,
 * shutting the system down (terminate runs); a stop requested before run,
 * even twice, makes run return at once. */
static void test_run_stop_from_thread(void)
{
    gr_config cfg = {.workers = 2, .log_fn = quiet_log, .no_signals = 1};
    for (int early = 0; early < 2; early++) {
        gr_system *sys;
        CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
        rec_reset();
        CHECK_EQ(spawn_actor(sys, 7, NULL, NULL), GR_OK);
        pthread_t t;
        struct stopper s = {sys, 100};
        if (early) {
            gr_system_stop(sys);
            gr_system_stop(sys);
        } else {
            CHECK_EQ(pthread_create(&t, NULL, stopper_main, &s), 0);
        }
        arm_run_limit();
        int rc = gr_system_run(sys);
        alarm(0);
        if (!early)
            pthread_join(t, NULL);
        CHECK_EQ(rc, GR_OK);
        CHECK_EQ(rec_count(), 1);
        CHECK_EQ(rec_id[0], 7);
        CHECK_EQ(rec_reason[0], GR_ESHUTDOWN);
    }
}

/* gr_system_run returns GR_OK after a handler calls gr_system_stop (twice:
 * repeated calls are harmless), and every actor is then terminated. */
static void test_run_stop_from_handler(void)
{
    gr_config cfg = {.workers = 2, .log_fn = quiet_log, .no_signals = 1};
    gr_system *sys;
    CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
    rec_reset();
    atomic_store(&stop_asked, 0);
    gr_ref a;
    CHECK_EQ(spawn_actor(sys, 1, NULL, NULL), GR_OK);
    CHECK_EQ(spawn_actor(sys, 2, NULL, &a), GR_OK);
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, a, MSG_STOP_SYSTEM, NULL, 0),
             GR_OK);
    arm_run_limit();
    int rc = gr_system_run(sys);
    alarm(0);
    CHECK_EQ(rc, GR_OK);
    CHECK_EQ(atomic_load(&stop_asked), 1);
    CHECK_EQ(rec_count(), 2);
    CHECK_EQ(rec_id[0], 2);
    CHECK_EQ(rec_id[1], 1);
}

/* Set by the fallback handler when a signal reaches the process instead of
 * a system's watcher. An atomic, not a sig_atomic_t: other threads read it
 * (lock-free atomics are async-signal-safe). */
static atomic_int fallback_got;

static void fallback_handler(int sig)
{
    (void)sig;
    atomic_store(&fallback_got, 1);
}

/* Argument of signaller_main. */
struct signaller {
    gr_system *sys;
    int sig;
    atomic_int run_returned; /* Set once sys is gone: do not touch it. */
};

/* Sends the signal to the process once run is (very likely) waiting. If
 * the fallback handler got it instead, no system took it: stop the system
 * so that the test fails instead of hanging. */
static void *signaller_main(void *arg)
{
    struct signaller *s = arg;
    sleep_ms(100);
    kill(getpid(), s->sig);
    for (int i = 0; i < 1000 && !atomic_load(&fallback_got) &&
                    !atomic_load(&s->run_returned);
         i++)
        sleep_ms(1);
    /* Only reached with the system alive: had it taken the signal, the
     * fallback handler would not have run. */
    if (atomic_load(&fallback_got))
        gr_system_stop(s->sys);
    return NULL;
}

/* Starts a fresh system, signals the process from a helper thread, and
 * checks that run returns and shuts the system down. With handover, an
 * older system owns the signal watchers first and shuts down before the
 * signal: the fresh one must have taken them over (else the signal's
 * default action ends the test process). */
static void run_until_signal(int sig, int handover)
{
    struct sigaction sa = {.sa_handler = fallback_handler};
    sigemptyset(&sa.sa_mask);
    struct sigaction old;
    CHECK_EQ(sigaction(sig, &sa, &old), 0);
    atomic_store(&fallback_got, 0);
    gr_config cfg = {.workers = 2, .log_fn = quiet_log};
    gr_system *older = NULL, *sys;
    if (handover)
        CHECK_EQ(gr_system_start(&cfg, &older), GR_OK);
    CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
    if (older != NULL)
        CHECK_EQ(gr_system_shutdown(older), GR_OK);
    rec_reset();
    CHECK_EQ(spawn_actor(sys, 5, NULL, NULL), GR_OK);
    struct signaller s = {.sys = sys, .sig = sig};
    atomic_init(&s.run_returned, 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, signaller_main, &s), 0);
    arm_run_limit();
    int rc = gr_system_run(sys);
    alarm(0);
    atomic_store(&s.run_returned, 1);
    pthread_join(t, NULL);
    sigaction(sig, &old, NULL);
    CHECK_EQ(rc, GR_OK);
    CHECK_EQ(atomic_load(&fallback_got), 0);
    CHECK_EQ(rec_count(), 1);
    CHECK_EQ(rec_reason[0], GR_ESHUTDOWN);
}

/* SIGTERM sent to the process makes gr_system_run return. */
static void test_run_returns_on_sigterm(void)
{
    run_until_signal(SIGTERM, 0);
}

/* SIGINT sent to the process makes gr_system_run return. */
static void test_run_returns_on_sigint(void)
{
    run_until_signal(SIGINT, 0);
}

/* When the system watching the signals shuts down, a younger live system
 * takes them over: SIGTERM then stops it instead of killing the process. */
static void test_signals_handed_to_next_system(void)
{
    run_until_signal(SIGTERM, 1);
}

/* With no_signals a system leaves SIGTERM to the application: the
 * application's handler gets it and the system keeps running. */
static void test_no_signals_leaves_signals_alone(void)
{
    struct sigaction sa = {.sa_handler = fallback_handler};
    sigemptyset(&sa.sa_mask);
    struct sigaction old;
    CHECK_EQ(sigaction(SIGTERM, &sa, &old), 0);
    atomic_store(&fallback_got, 0);
    gr_config cfg = {.workers = 1, .log_fn = quiet_log, .no_signals = 1};
    gr_system *sys;
    CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref a;
    CHECK_EQ(spawn_actor(sys, -1, NULL, &a), GR_OK);
    raise(SIGTERM);
    for (int i = 0; i < 1000 && !atomic_load(&fallback_got); i++)
        sleep_ms(1);
    sigaction(SIGTERM, &old, NULL);
    CHECK_EQ(atomic_load(&fallback_got), 1);
    /* Still running: an actor answers. */
    CHECK_EQ(gr_system_tell(sys, gr_inbox_ref(in), a, MSG_PING, NULL, 0),
             GR_OK);
    CHECK_EQ(recv_report(in, MSG_PONG, NULL), GR_OK);
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* Messages sent before gr_stop are all handled, in order, before the actor
 * exits with GR_ESHUTDOWN; messages sent after it are never handled and
 * each becomes exactly one dead letter. */
static void test_stop_ordering(void)
{
    enum { BEFORE = 300, AFTER = 50 };
    gr_config cfg = {.workers = 2, .log_fn = quiet_log, .no_signals = 1};
    gr_system *sys;
    CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    for (int round = 0; round < 5; round++) {
        gr_ref a;
        CHECK_EQ(spawn_actor(sys, -1, in, &a), GR_OK);
        gr_stats before = stats_of(sys);
        for (uint32_t i = 0; i < BEFORE; i++)
            CHECK_EQ(
                gr_system_tell(sys, GR_REF_NONE, a, MSG_WORK, &i, sizeof i),
                GR_OK);
        CHECK_EQ(gr_stop(sys, a), GR_OK);
        int refused = 0;
        for (uint32_t i = 0; i < AFTER; i++) {
            int rc =
                gr_system_tell(sys, GR_REF_NONE, a, MSG_WORK, &i, sizeof i);
            CHECK(rc == GR_OK || rc == GR_ENOACTOR);
            refused += rc == GR_ENOACTOR;
        }
        struct report r;
        CHECK_EQ(recv_report(in, MSG_TERMINATED, &r), GR_OK);
        CHECK_EQ(r.reason, GR_ESHUTDOWN);
        CHECK_EQ(r.count, BEFORE);
        CHECK(r.in_order);
        uint64_t dead0 = before.dead_letters[GR_DL_NO_ACTOR] +
                         before.dead_letters[GR_DL_STOPPED];
        CHECK_EQ(wait_stat_settled(sys, stat_dead_total, 0, dead0 + AFTER),
                 dead0 + AFTER);
        gr_stats after = stats_of(sys);
        CHECK(after.dead_letters[GR_DL_NO_ACTOR] -
                  before.dead_letters[GR_DL_NO_ACTOR] >=
              (uint64_t)refused);
    }
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* workers = 0 (a NULL config or a zeroed one) means one worker per online
 * CPU; an explicit count is used as given. */
static void test_default_workers(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK(cpus > 0);
    gr_system *sys;
    gr_config cfg = {.log_fn = quiet_log, .no_signals = 1};
    CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
    CHECK_EQ(stats_of(sys).workers, cpus);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
    CHECK_EQ(gr_system_start(NULL, &sys), GR_OK);
    CHECK_EQ(stats_of(sys).workers, cpus);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
    cfg.workers = 3;
    CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
    CHECK_EQ(stats_of(sys).workers, 3);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* With workers = 1 everything runs on the one worker, nothing is stolen,
 * and an actor that keeps itself busy does not starve another. */
static void test_single_worker(void)
{
    gr_config cfg = {.workers = 1, .log_fn = quiet_log, .no_signals = 1};
    gr_system *sys;
    CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
    CHECK_EQ(stats_of(sys).workers, 1);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref spinner, echo;
    CHECK_EQ(spawn_actor(sys, -1, in, &spinner), GR_OK);
    CHECK_EQ(spawn_actor(sys, -1, in, &echo), GR_OK);
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, spinner, MSG_SPIN, NULL, 0),
             GR_OK);
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(gr_system_tell(sys, gr_inbox_ref(in), echo, MSG_PING, NULL, 0),
                 GR_OK);
        CHECK_EQ(recv_report(in, MSG_PONG, NULL), GR_OK);
    }
    CHECK_EQ(gr_stop(sys, spinner), GR_OK);
    struct report r;
    CHECK_EQ(recv_report(in, MSG_TERMINATED, &r), GR_OK);
    CHECK_EQ(r.reason, GR_ESHUTDOWN);
    gr_stats st = stats_of(sys);
    CHECK(st.runs[0] > 0);
    CHECK_EQ(st.steals[0], 0);
    CHECK_EQ(st.runs[1], 0);
    CHECK(st.delivered > 20);
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* The signal cases come first: only the first live system takes SIGINT and
 * SIGTERM, so one leaked by an earlier failing case would break them. */
/* ---- messages an inbox received outlive the system ---------------------- */

enum { MSG_ECHO_ME = 0x500, MSG_SILENT = 0x501 };

/* Sends back, from a worker, one payload per pooled size class and one
 * larger than both, so every envelope path reaches the inbox. */
static int echo_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    static const size_t sizes[] = {8, 100, 1000};
    unsigned char buf[1000];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        memset(buf, (int)(0xA0 + i), sizes[i]);
        int rc = gr_tell(ctx, m->from, MSG_ECHO_ME, buf, sizes[i]);
        if (rc != GR_OK)
            return rc;
    }
    return GR_CONTINUE;
}

static const gr_behaviour echo_behaviour = {
    .name = "echo",
    .handle = echo_handle,
};

/* A message received through an inbox belongs to its receiver: it stays
 * valid after the inbox is closed and the system shut down (ASan checks
 * that no worker's envelope pool took it back). */
static void test_inbox_message_outlives_system(void)
{
    struct env e;
    gr_config cfg = {.workers = 2, .log_fn = quiet_log};
    CHECK(env_open(&e, &cfg));
    gr_ref echo;
    gr_msg *got[3] = {NULL, NULL, NULL};
    int ok = gr_system_spawn(e.sys, &echo_behaviour, NULL, 0, &echo) == GR_OK &&
             gr_system_tell(e.sys, gr_inbox_ref(e.inbox), echo, MSG_ECHO_ME,
                            NULL, 0) == GR_OK;
    for (int i = 0; ok && i < 3; i++)
        ok = gr_inbox_recv(e.inbox, &got[i], WAIT_MS) == GR_OK;
    env_close(&e);
    int intact = ok;
    for (int i = 0; i < 3 && got[i] != NULL; i++) {
        const unsigned char *p = got[i]->data;
        for (size_t k = 0; k < got[i]->len; k++)
            intact &= p[k] == (unsigned char)(0xA0 + i);
        gr_msg_free(got[i]);
    }
    CHECK(ok);
    CHECK(intact);
}

/* A thread that owns an inbox (or is in gr_call) while the system runs. */
struct waiter {
    gr_system *sys;
    gr_ref target;    /* gr_call's target (GR_REF_NONE: recv instead). */
    atomic_int ready; /* Its inbox is open (or the call is under way). */
    int rc;           /* What the wait returned. */
};

/* Opens an inbox and waits in it for ever; closes it once woken. */
static void *recv_main(void *p)
{
    struct waiter *w = p;
    gr_inbox *in;
    if (gr_inbox_open(w->sys, &in) != GR_OK) {
        w->rc = GR_EFAILED;
        atomic_store(&w->ready, 1);
        return NULL;
    }
    atomic_store(&w->ready, 1);
    gr_msg *m = NULL;
    w->rc = gr_inbox_recv(in, &m, GR_DURATION_INFINITE);
    gr_msg_free(m);
    gr_inbox_close(in);
    return NULL;
}

/* Calls a target that never answers, with no time limit. */
static void *call_main(void *p)
{
    struct waiter *w = p;
    gr_msg *m = NULL;
    atomic_store(&w->ready, 1);
    w->rc = gr_call(w->sys, w->target, MSG_SILENT, NULL, 0,
                    GR_DURATION_INFINITE, &m);
    gr_msg_free(m);
    return NULL;
}

static int silent_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx, (void)state, (void)m;
    return GR_CONTINUE; /* Keeps every request unanswered. */
}

static const gr_behaviour silent_b = {.name = "silent",
                                      .handle = silent_handle};

/* A stop wakes the threads waiting for ever in an inbox or in gr_call:
 * both get GR_ESTOPPED, close up, and gr_system_run then shuts down (it
 * used to abort on an assertion, or wait for ever). */
static void test_stop_wakes_inbox_owners(void)
{
    gr_config cfg = {.workers = 2, .log_fn = quiet_log, .no_signals = 1};
    gr_system *sys;
    CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
    gr_ref silent;
    CHECK_EQ(gr_system_spawn(sys, &silent_b, NULL, 0, &silent), GR_OK);
    struct waiter r = {.sys = sys, .target = GR_REF_NONE};
    struct waiter c = {.sys = sys, .target = silent};
    pthread_t tr, tc;
    CHECK_EQ(pthread_create(&tr, NULL, recv_main, &r), 0);
    CHECK_EQ(pthread_create(&tc, NULL, call_main, &c), 0);
    double end = test_now() + WAIT_MS / 1000.0;
    while (!(atomic_load(&r.ready) && atomic_load(&c.ready)) &&
           test_now() < end)
        sleep_ms(1);
    /* Not a wait for an event, nor needed for the outcome (a receive that
     * starts after the stop answers GR_ESTOPPED at once): it only makes
     * it likely that both are blocked when the stop comes. */
    sleep_ms(SETTLE_MS);
    struct stopper s = {sys, 0};
    pthread_t ts;
    CHECK_EQ(pthread_create(&ts, NULL, stopper_main, &s), 0);
    arm_run_limit();
    int rc = gr_system_run(sys);
    alarm(0);
    pthread_join(ts, NULL);
    pthread_join(tr, NULL);
    pthread_join(tc, NULL);
    CHECK_EQ(rc, GR_OK);
    CHECK_EQ(r.rc, GR_ESTOPPED);
    CHECK_EQ(c.rc, GR_ESTOPPED);
}

/* A shutdown while the calling thread still owns an open inbox is refused
 * with GR_EBUSY and a log line naming the cause, at once; the system
 * keeps working (an empty inbox answers GR_ESTOPPED, queued messages
 * still come), and shuts down once the inbox is closed. */
static void test_shutdown_refused_with_own_inbox(void)
{
    struct capture cap;
    capture_init(&cap);
    gr_config cfg = {
        .workers = 2, .log_fn = capture_fn, .log_arg = &cap, .no_signals = 1};
    gr_system *sys;
    CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    double t0 = test_now();
    CHECK_EQ(gr_system_shutdown(sys), GR_EBUSY);
    CHECK(test_now() - t0 < 2.0); /* Not the 5 s wait for other threads. */
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, "inbox(es) still open", NULL),
             1);
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(in, &m, GR_DURATION_INFINITE), GR_ESTOPPED);
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, gr_inbox_ref(in), 5, NULL, 0),
             GR_OK);
    CHECK_EQ(gr_inbox_recv(in, &m, GR_DURATION_INFINITE), GR_OK);
    CHECK(m != NULL && m->type == 5);
    gr_msg_free(m);
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* A process started as a node (GROVE_NODE_FD set) whose program calls
 * gr_system_start before gr_node_main is refused with a line that says
 * so: a root system there would start its node children again, and they
 * theirs, without end. */
static void test_start_refused_in_a_node_process(void)
{
    struct capture cap;
    capture_init(&cap);
    gr_config cfg = {.log_fn = capture_fn, .log_arg = &cap, .no_signals = 1};
    gr_system *sys = NULL;
    CHECK_EQ(setenv("GROVE_NODE_FD", "99", 1), 0);
    CHECK_EQ(gr_system_start(&cfg, &sys), GR_EINVAL);
    CHECK(sys == NULL);
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, "gr_node_main() first", NULL),
             1);
    unsetenv("GROVE_NODE_FD");
    CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
    gr_system_shutdown(sys);
}

/* Only an inbox's owner receives from it: another thread gets
 * GR_EWRONGTHREAD at once, and the owner still gets its messages. */
struct foreign {
    gr_inbox *in; /* Someone else's. */
    int rc;       /* What gr_inbox_recv returned here. */
};

static void *foreign_recv(void *p)
{
    struct foreign *f = p;
    gr_msg *m = NULL;
    f->rc = gr_inbox_recv(f->in, &m, 1000);
    gr_msg_free(m);
    return NULL;
}

static void test_inbox_recv_owner_only(void)
{
    struct env e;
    gr_config cfg = {.workers = 2, .log_fn = quiet_log, .no_signals = 1};
    CHECK(env_open(&e, &cfg));
    struct foreign arg = {.in = e.inbox, .rc = GR_OK};
    pthread_t t;
    double t0 = test_now();
    CHECK_EQ(pthread_create(&t, NULL, foreign_recv, &arg), 0);
    pthread_join(t, NULL);
    CHECK_EQ(arg.rc, GR_EWRONGTHREAD);
    CHECK(test_now() - t0 < 0.5); /* Refused, not waited. */
    CHECK_EQ(
        gr_system_tell(e.sys, GR_REF_NONE, gr_inbox_ref(e.inbox), 7, NULL, 0),
        GR_OK);
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(e.inbox, &m, WAIT_MS), GR_OK);
    CHECK(m != NULL && m->type == 7);
    gr_msg_free(m);
    env_close(&e);
}

/* A ref names an actor of its own system only: another system in this
 * process, or this one started again, takes a ref of the other (whose
 * serial its own first inbox has too) as naming no actor, and its own
 * inbox gets nothing. */
static void test_refs_stay_with_their_system(void)
{
    gr_config cfg = {.workers = 1, .log_fn = quiet_log, .no_signals = 1};
    gr_system *a, *b;
    gr_inbox *ia, *ib;
    CHECK_EQ(gr_system_start(&cfg, &a), GR_OK);
    CHECK_EQ(gr_system_start(&cfg, &b), GR_OK);
    CHECK_EQ(gr_inbox_open(a, &ia), GR_OK);
    CHECK_EQ(gr_inbox_open(b, &ib), GR_OK);
    gr_ref ref_a = gr_inbox_ref(ia), ref_b = gr_inbox_ref(ib);
    CHECK(!gr_ref_eq(ref_a, ref_b));
    CHECK_EQ(gr_system_tell(a, GR_REF_NONE, ref_b, 7, NULL, 0), GR_ENOACTOR);
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(ia, &m, 0), GR_ETIMEDOUT);
    gr_inbox_close(ib);
    CHECK_EQ(gr_system_shutdown(b), GR_OK);
    /* b again: a's ref, and b's old one, name none of its actors. */
    CHECK_EQ(gr_system_start(&cfg, &b), GR_OK);
    CHECK_EQ(gr_inbox_open(b, &ib), GR_OK);
    CHECK_EQ(gr_system_tell(b, GR_REF_NONE, ref_a, 7, NULL, 0), GR_ENOACTOR);
    CHECK_EQ(gr_system_tell(b, GR_REF_NONE, ref_b, 7, NULL, 0), GR_ENOACTOR);
    CHECK_EQ(gr_inbox_recv(ib, &m, 0), GR_ETIMEDOUT);
    gr_inbox_close(ib);
    gr_inbox_close(ia);
    CHECK_EQ(gr_system_shutdown(b), GR_OK);
    CHECK_EQ(gr_system_shutdown(a), GR_OK);
}

TEST_MAIN(TEST_CASE(test_run_returns_on_sigterm),
          TEST_CASE(test_run_returns_on_sigint),
          TEST_CASE(test_signals_handed_to_next_system),
          TEST_CASE(test_no_signals_leaves_signals_alone),
          TEST_CASE(test_shutdown_with_queued_messages),
          TEST_CASE(test_repeated_start_stop),
          TEST_CASE(test_run_stop_from_thread),
          TEST_CASE(test_run_stop_from_handler), TEST_CASE(test_stop_ordering),
          TEST_CASE(test_default_workers), TEST_CASE(test_single_worker),
          TEST_CASE(test_inbox_message_outlives_system),
          TEST_CASE(test_stop_wakes_inbox_owners),
          TEST_CASE(test_shutdown_refused_with_own_inbox),
          TEST_CASE(test_start_refused_in_a_node_process),
          TEST_CASE(test_inbox_recv_owner_only),
          TEST_CASE(test_refs_stay_with_their_system))
