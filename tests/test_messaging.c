/*
 * Messaging at volume: many actors and millions of messages, none lost,
 * none duplicated, and the order of each sender -> receiver stream kept, on
 * 1, 2 and 4 workers; plain threads sending with gr_system_tell(); ping-pong;
 * an actor sending to itself; and gr_system_stats() agreeing with the count of
 * messages sent, with no dead letters in clean runs.
 *
 * Message counts are divided by the environment variable GROVE_TEST_SCALE
 * (default 1), so sanitizer builds can run the same cases smaller.
 *
 * Payloads here are fixed-layout C structs copied with memcpy, not msgpack:
 * they never leave this process, and the tests link only against Grove.
 */
#include <grove/grove.h>

#include <pthread.h>
#include <stdatomic.h>

#include "helpers.h"

/* How long the stats counters get to settle after the last report. */
#define STATS_SETTLE_S 10.0

/* Message types used in this file. */
enum {
    MSG_GO = 1,   /* main -> actor: start */
    MSG_CONTINUE, /* actor -> itself: send the next chunk */
    MSG_DATA,     /* a sequenced message (struct seq_msg) */
    MSG_REPORT,   /* actor -> main's inbox (struct report) */
    MSG_PING,     /* pinger -> ponger (struct seq_msg) */
    MSG_PONG,     /* ponger -> pinger (struct seq_msg) */
    MSG_DONE,     /* pinger -> ponger: no more pings */
};

/* One sequenced message: stream (sender, receiver), position seq. */
struct seq_msg {
    uint32_t sender;
    uint32_t receiver;
    uint64_t seq;
};

/* What an actor tells main when it is done. */
struct report {
    uint32_t role;   /* ROLE_* below */
    uint32_t index;  /* Which sender or receiver. */
    uint64_t count;  /* Messages sent or received. */
    uint64_t errors; /* Failed sends, or order/duplication violations. */
    uint64_t detail; /* First bad (expected << 32 | got), for the log. */
};

enum { ROLE_SENDER = 1, ROLE_RECEIVER, ROLE_PINGER, ROLE_PONGER, ROLE_SELF };

/* Sends a report to main's inbox from an actor. */
static int tell_report(gr_ctx *ctx, gr_ref to, uint32_t role, uint32_t index,
                       uint64_t count, uint64_t errors, uint64_t detail)
{
    struct report r = {role, index, count, errors, detail};
    return gr_tell(ctx, to, MSG_REPORT, &r, sizeof r);
}

/* Packs an (expected, got) pair into report.detail. */
static uint64_t pack_detail(uint64_t expected, uint64_t got)
{
    return (expected & 0xFFFFFFFFu) << 32 | (got & 0xFFFFFFFFu);
}

/* Starts a system with the given workers and opens an inbox. It logs
 * warnings, so a dead letter in these clean runs shows up in the output. */
static int env_start(struct env *e, unsigned workers)
{
    gr_config cfg = {
        .workers = workers, .no_signals = 1, .log_level = GR_LOG_WARN};
    return env_open(e, &cfg);
}

/*
 * Waits for the next report in main's inbox, at most until deadline and
 * giving up sooner once the system stops making progress. Returns 1 and
 * fills *r, or 0 on timeout or a message that is not a report.
 */
static int recv_report(struct env *e, struct report *r, double deadline)
{
    struct watch w;
    watch_until(&w, e->sys, deadline);
    gr_msg *m;
    while (gr_inbox_recv(e->inbox, &m, 100) != GR_OK)
        if (watch_over(&w))
            return 0;
    int ok = m->type == MSG_REPORT && read_payload(m, r, sizeof *r);
    gr_msg_free(m);
    if (!ok)
        fprintf(stderr, "  unexpected message in main's inbox\n");
    return ok;
}

/*
 * Polls the counters until delivered and exited reach the expected values
 * (the workers add a turn's deliveries after the turn, so they can trail
 * the reports a little), then checks they hold exactly, with no dead
 * letters. Fails the case on a mismatch.
 */
static void check_stats(gr_system *sys, uint64_t delivered, uint64_t spawned,
                        uint64_t exited)
{
    gr_stats st;
    double deadline = test_now() + STATS_SETTLE_S;
    for (;;) {
        gr_system_stats(sys, &st);
        if ((st.delivered >= delivered && st.exited >= exited) ||
            test_now() > deadline)
            break;
        sleep_ms(1);
    }
    /* Stay a moment to catch counts that overshoot. */
    sleep_ms(SETTLE_MS);
    gr_system_stats(sys, &st);
    CHECK_EQ(st.delivered, delivered);
    CHECK_EQ(st.spawned, spawned);
    CHECK_EQ(st.exited, exited);
    CHECK_EQ(st.dead_letters[GR_DL_NO_ACTOR], 0);
    CHECK_EQ(st.dead_letters[GR_DL_STOPPED], 0);
}

/* ---- many senders to many receivers ---------------------------------- */

/* Most receivers one sender can address. */
#define MAX_RECEIVERS 16
/* Most senders one receiver can track. */
#define MAX_SENDERS 16

struct sender_args {
    uint32_t index;
    uint32_t nreceivers;
    uint64_t k;     /* Messages to send to each receiver. */
    uint64_t chunk; /* Sequence numbers sent per turn. */
    gr_ref report;  /* main's inbox */
    gr_ref receivers[MAX_RECEIVERS];
};

struct sender {
    struct sender_args a;
    uint64_t next;     /* Next sequence number to send. */
    uint64_t sent;     /* Sends that returned GR_OK. */
    uint64_t failures; /* Sends that did not, or a message out of place. */
    int started;
};

static int sender_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct sender *s = state;
    if (read_arg(&s->a, sizeof s->a, arg, len) != GR_OK)
        return GR_EINVAL;
    return s->a.nreceivers <= MAX_RECEIVERS ? GR_OK : GR_EINVAL;
}

/* Sends one chunk per turn, then asks itself to continue, so that the
 * senders' streams interleave at every receiver. */
static int sender_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct sender *s = state;
    if (m->type == MSG_GO) {
        if (s->started++)
            s->failures++;
    } else if (m->type != MSG_CONTINUE) {
        s->failures++;
        return GR_CONTINUE;
    }
    uint64_t end = s->next + s->a.chunk;
    if (end > s->a.k)
        end = s->a.k;
    for (; s->next < end; s->next++) {
        for (uint32_t r = 0; r < s->a.nreceivers; r++) {
            struct seq_msg d = {s->a.index, r, s->next};
            if (gr_tell(ctx, s->a.receivers[r], MSG_DATA, &d, sizeof d) ==
                GR_OK)
                s->sent++;
            else
                s->failures++;
        }
    }
    if (s->next < s->a.k &&
        gr_tell(ctx, gr_self(ctx), MSG_CONTINUE, NULL, 0) == GR_OK)
        return GR_CONTINUE;
    if (s->next < s->a.k)
        s->failures++;
    tell_report(ctx, s->a.report, ROLE_SENDER, s->a.index, s->sent, s->failures,
                0);
    return GR_STOP;
}

static const gr_behaviour sender_behaviour = {
    .name = "sender",
    .state_size = sizeof(struct sender),
    .init = sender_init,
    .handle = sender_handle,
};

struct receiver_args {
    uint32_t index;
    uint32_t nsenders;
    uint64_t k;    /* Messages expected from each sender. */
    gr_ref report; /* main's inbox */
};

struct receiver {
    struct receiver_args a;
    uint64_t expected[MAX_SENDERS]; /* Next sequence number per sender. */
    uint64_t received;
    uint64_t errors;
    uint64_t detail;
};

static int receiver_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct receiver *r = state;
    if (read_arg(&r->a, sizeof r->a, arg, len) != GR_OK)
        return GR_EINVAL;
    return r->a.nsenders <= MAX_SENDERS ? GR_OK : GR_EINVAL;
}

/* Records a violation, keeping the first one's details for the log. */
static void receiver_error(struct receiver *r, uint64_t expected, uint64_t got)
{
    if (r->errors++ == 0)
        r->detail = pack_detail(expected, got);
}

/* Checks each message is the next of its sender's stream and meant here. */
static int receiver_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct receiver *r = state;
    struct seq_msg d;
    if (m->type != MSG_DATA || !read_payload(m, &d, sizeof d) ||
        d.sender >= r->a.nsenders || d.receiver != r->a.index ||
        !gr_ref_eq(m->to, gr_self(ctx)) || gr_ref_is_none(m->from)) {
        receiver_error(r, 0, 0);
        return GR_CONTINUE;
    }
    /* A gap, a duplicate or a swap all show as an unexpected number. */
    if (d.seq != r->expected[d.sender])
        receiver_error(r, r->expected[d.sender], d.seq);
    r->expected[d.sender] = d.seq + 1;
    if (++r->received < (uint64_t)r->a.nsenders * r->a.k)
        return GR_CONTINUE;
    tell_report(ctx, r->a.report, ROLE_RECEIVER, r->a.index, r->received,
                r->errors, r->detail);
    return GR_STOP;
}

static const gr_behaviour receiver_behaviour = {
    .name = "receiver",
    .state_size = sizeof(struct receiver),
    .init = receiver_init,
    .handle = receiver_handle,
};

/* Senders and receivers in the many-to-many cases. */
#define FANOUT_SENDERS   8
#define FANOUT_RECEIVERS 8
/* Sequence numbers per sender turn (times FANOUT_RECEIVERS messages). */
#define FANOUT_CHUNK 32
/* Messages per worker configuration before scaling. */
#define FANOUT_MESSAGES 1000000u

/*
 * The many-to-many case: each sender sends k numbered messages to every
 * receiver, FANOUT_CHUNK numbers per turn so that the senders' streams
 * interleave; each receiver checks every stream arrives whole and in order.
 * Then the stats must count every message exactly, with no dead letters.
 */
static void run_fanout(struct env *e, unsigned workers)
{
    const uint32_t ns = FANOUT_SENDERS, nr = FANOUT_RECEIVERS;
    const uint64_t k = scaled(FANOUT_MESSAGES / (ns * nr), 10);
    const uint64_t chunks = (k + FANOUT_CHUNK - 1) / FANOUT_CHUNK;
    gr_ref me = gr_inbox_ref(e->inbox);

    struct sender_args sa = {
        .nreceivers = nr, .k = k, .chunk = FANOUT_CHUNK, .report = me};
    for (uint32_t i = 0; i < nr; i++) {
        struct receiver_args ra = {i, ns, k, me};
        CHECK_EQ(gr_system_spawn(e->sys, &receiver_behaviour, &ra, sizeof ra,
                                 &sa.receivers[i]),
                 GR_OK);
    }
    gr_ref senders[FANOUT_SENDERS];
    for (uint32_t i = 0; i < ns; i++) {
        sa.index = i;
        CHECK_EQ(gr_system_spawn(e->sys, &sender_behaviour, &sa, sizeof sa,
                                 &senders[i]),
                 GR_OK);
    }
    for (uint32_t i = 0; i < ns; i++)
        CHECK_EQ(gr_system_tell(e->sys, me, senders[i], MSG_GO, NULL, 0),
                 GR_OK);

    int seen[2][MAX_SENDERS] = {{0}};
    double deadline = test_now() + WAIT_LIMIT_S;
    for (uint32_t n = 0; n < ns + nr; n++) {
        struct report r;
        CHECK(recv_report(e, &r, deadline));
        if (r.role == ROLE_SENDER) {
            CHECK(r.index < ns && !seen[0][r.index]++);
            CHECK_EQ(r.errors, 0);
            CHECK_EQ(r.count, nr * k);
        } else {
            CHECK_EQ(r.role, ROLE_RECEIVER);
            CHECK(r.index < nr && !seen[1][r.index]++);
            if (r.errors != 0)
                fprintf(stderr,
                        "  receiver %u: %llu violations, first expected "
                        "seq %llu got %llu\n",
                        r.index, (unsigned long long)r.errors,
                        (unsigned long long)(r.detail >> 32),
                        (unsigned long long)(r.detail & 0xFFFFFFFFu));
            CHECK_EQ(r.errors, 0);
            CHECK_EQ(r.count, ns * k);
        }
    }
    fprintf(stderr, "  %u workers: %llu data messages\n", workers,
            (unsigned long long)(ns * nr * k));
    /* Data, one GO and chunks-1 CONTINUEs per sender, and the reports main
     * took from its inbox. */
    check_stats(e->sys, ns * nr * k + ns * chunks + ns + nr, ns + nr + 1,
                ns + nr);
}

/* Runs the many-to-many case on a system with the given workers. */
static void fanout_on(unsigned workers)
{
    struct env e;
    CHECK(env_start(&e, workers));
    run_fanout(&e, workers);
    env_close(&e);
}

/* On 1 worker, 8x8 sender->receiver streams arrive whole, in order. */
static void fanout_one_worker(void)
{
    fanout_on(1);
}

/* On 2 workers, 8x8 sender->receiver streams arrive whole, in order. */
static void fanout_two_workers(void)
{
    fanout_on(2);
}

/* On 4 workers, 8x8 sender->receiver streams arrive whole, in order. */
static void fanout_four_workers(void)
{
    fanout_on(4);
}

/* ---- plain threads sending with gr_system_tell()
 * ------------------------------ */

/* Plain threads in the thread cases. */
#define THREADS 4
/* Messages per case before scaling, split over the threads. */
#define THREAD_MESSAGES 400000u

struct collector_args {
    uint32_t nthreads;
    uint64_t m; /* Messages expected from each thread. */
    gr_ref report;
};

struct collector {
    struct collector_args a;
    uint64_t expected[THREADS];
    uint64_t received;
    uint64_t errors;
    uint64_t detail;
};

static int collector_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct collector *c = state;
    if (read_arg(&c->a, sizeof c->a, arg, len) != GR_OK)
        return GR_EINVAL;
    return c->a.nthreads <= THREADS ? GR_OK : GR_EINVAL;
}

/* Checks each thread's messages arrive in the order it sent them. */
static int collector_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct collector *c = state;
    struct seq_msg d;
    if (m->type != MSG_DATA || !read_payload(m, &d, sizeof d) ||
        d.sender >= c->a.nthreads || !gr_ref_is_none(m->from) ||
        !gr_ref_eq(m->to, gr_self(ctx))) {
        if (c->errors++ == 0)
            c->detail = 0;
        return GR_CONTINUE;
    }
    if (d.seq != c->expected[d.sender] && c->errors++ == 0)
        c->detail = pack_detail(c->expected[d.sender], d.seq);
    c->expected[d.sender] = d.seq + 1;
    if (++c->received < (uint64_t)c->a.nthreads * c->a.m)
        return GR_CONTINUE;
    tell_report(ctx, c->a.report, ROLE_RECEIVER, 0, c->received, c->errors,
                c->detail);
    return GR_STOP;
}

static const gr_behaviour collector_behaviour = {
    .name = "collector",
    .state_size = sizeof(struct collector),
    .init = collector_init,
    .handle = collector_handle,
};

/* One plain sending thread. */
struct sending_thread {
    pthread_t tid;
    gr_system *sys;
    gr_ref to;
    uint32_t index;
    uint64_t m;
    uint64_t failures;
    atomic_int *go;
};

/* Sends m sequenced messages to one target, as fast as it can. */
static void *sending_thread_main(void *arg)
{
    struct sending_thread *t = arg;
    go_wait(t->go);
    for (uint64_t i = 0; i < t->m; i++) {
        struct seq_msg d = {t->index, 0, i};
        if (gr_system_tell(t->sys, GR_REF_NONE, t->to, MSG_DATA, &d,
                           sizeof d) != GR_OK)
            t->failures++;
    }
    return NULL;
}

/*
 * Starts n threads sending m messages each to `to`, all at once. Returns
 * the number started; the caller joins exactly those with join_senders().
 */
static unsigned start_senders(struct sending_thread *t, unsigned n,
                              gr_system *sys, gr_ref to, uint64_t m,
                              atomic_int *go)
{
    unsigned i;
    atomic_init(go, 0);
    for (i = 0; i < n; i++) {
        t[i] = (struct sending_thread){
            .sys = sys, .to = to, .index = i, .m = m, .go = go};
        if (pthread_create(&t[i].tid, NULL, sending_thread_main, &t[i]) != 0)
            break;
    }
    go_open(go);
    return i;
}

/* Joins the threads and returns their failed sends. */
static uint64_t join_senders(struct sending_thread *t, unsigned n)
{
    uint64_t failures = 0;
    for (unsigned i = 0; i < n; i++) {
        pthread_join(t[i].tid, NULL);
        failures += t[i].failures;
    }
    return failures;
}

/* THREADS plain threads send m numbered messages each to one collector
 * actor, which checks each thread's stream; stats must count them all. */
static void run_threads_to_actor(struct env *e)
{
    const uint64_t m = scaled(THREAD_MESSAGES / THREADS, 10);
    struct collector_args ca = {THREADS, m, gr_inbox_ref(e->inbox)};
    gr_ref collector;
    CHECK_EQ(gr_system_spawn(e->sys, &collector_behaviour, &ca, sizeof ca,
                             &collector),
             GR_OK);
    struct sending_thread t[THREADS];
    atomic_int go;
    unsigned started = start_senders(t, THREADS, e->sys, collector, m, &go);
    uint64_t failures = join_senders(t, started);
    CHECK_EQ(started, THREADS);
    CHECK_EQ(failures, 0);
    struct report r;
    CHECK(recv_report(e, &r, test_now() + WAIT_LIMIT_S));
    if (r.errors != 0)
        fprintf(stderr, "  %llu violations, first expected %llu got %llu\n",
                (unsigned long long)r.errors,
                (unsigned long long)(r.detail >> 32),
                (unsigned long long)(r.detail & 0xFFFFFFFFu));
    CHECK_EQ(r.errors, 0);
    CHECK_EQ(r.count, THREADS * m);
    check_stats(e->sys, THREADS * m + 1, 2, 1);
}

/* gr_system_tell() from plain threads to an actor keeps each thread's order. */
static void threads_to_actor_in_order(void)
{
    struct env e;
    CHECK(env_start(&e, 4));
    run_threads_to_actor(&e);
    env_close(&e);
}

/* THREADS plain threads send numbered messages to main's inbox while main
 * receives and checks each thread's stream. */
static void run_threads_to_inbox(struct env *e)
{
    const uint64_t m = scaled(THREAD_MESSAGES / 4 / THREADS, 10);
    struct sending_thread t[THREADS];
    atomic_int go;
    unsigned started =
        start_senders(t, THREADS, e->sys, gr_inbox_ref(e->inbox), m, &go);
    /* Receive while the threads send, so the inbox is empty and refilled
     * many times. */
    uint64_t expected[THREADS] = {0}, errors = 0, received = 0;
    double deadline = test_now() + WAIT_LIMIT_S, since = test_now();
    while (received < started * m && test_now() < deadline &&
           test_now() - since < STALL_S) {
        gr_msg *msg;
        if (gr_inbox_recv(e->inbox, &msg, 100) != GR_OK)
            continue;
        since = test_now();
        struct seq_msg d;
        if (!read_payload(msg, &d, sizeof d) || d.sender >= started ||
            d.seq != expected[d.sender])
            errors++;
        else
            expected[d.sender]++;
        received++;
        gr_msg_free(msg);
    }
    uint64_t failures = join_senders(t, started);
    CHECK_EQ(started, THREADS);
    CHECK_EQ(failures, 0);
    CHECK_EQ(errors, 0);
    CHECK_EQ(received, THREADS * m);
    /* Nothing more may come. */
    gr_msg *extra = NULL;
    int rc = gr_inbox_recv(e->inbox, &extra, 0);
    if (rc == GR_OK)
        gr_msg_free(extra);
    CHECK_EQ(rc, GR_ETIMEDOUT);
    check_stats(e->sys, THREADS * m, 1, 0);
}

/* gr_system_tell() from plain threads to an inbox keeps each thread's order. */
static void threads_to_inbox_in_order(void)
{
    struct env e;
    CHECK(env_start(&e, 2));
    run_threads_to_inbox(&e);
    env_close(&e);
}

/* ---- ping-pong --------------------------------------------------------- */

/* Round trips per worker configuration before scaling. */
#define PING_ROUNDS 200000u

struct pinger_args {
    gr_ref ponger;
    uint64_t n; /* Round trips to make. */
    gr_ref report;
};

struct pinger {
    struct pinger_args a;
    uint64_t pongs;
    uint64_t errors;
};

static int pinger_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct pinger *p = state;
    return read_arg(&p->a, sizeof p->a, arg, len);
}

/* Sends ping i+1 only after pong i came back, n times, then says done. */
static int pinger_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct pinger *p = state;
    struct seq_msg d = {0, 0, 0};
    if (m->type == MSG_PONG) {
        if (!read_payload(m, &d, sizeof d) || d.seq != p->pongs ||
            !gr_ref_eq(m->from, p->a.ponger))
            p->errors++;
        p->pongs++;
    } else if (m->type != MSG_GO) {
        p->errors++;
        return GR_CONTINUE;
    }
    if (p->pongs < p->a.n) {
        d.seq = p->pongs;
        if (gr_tell(ctx, p->a.ponger, MSG_PING, &d, sizeof d) != GR_OK)
            p->errors++;
        return GR_CONTINUE;
    }
    if (gr_tell(ctx, p->a.ponger, MSG_DONE, NULL, 0) != GR_OK)
        p->errors++;
    tell_report(ctx, p->a.report, ROLE_PINGER, 0, p->pongs, p->errors, 0);
    return GR_STOP;
}

static const gr_behaviour pinger_behaviour = {
    .name = "pinger",
    .state_size = sizeof(struct pinger),
    .init = pinger_init,
    .handle = pinger_handle,
};

struct ponger {
    gr_ref report;
    uint64_t pings;
    uint64_t errors;
};

static int ponger_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct ponger *p = state;
    return read_arg(&p->report, sizeof p->report, arg, len);
}

/* Answers each ping to its sender, checking the pings come in order. */
static int ponger_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct ponger *p = state;
    struct seq_msg d;
    if (m->type == MSG_DONE) {
        tell_report(ctx, p->report, ROLE_PONGER, 0, p->pings, p->errors, 0);
        return GR_STOP;
    }
    if (m->type != MSG_PING || !read_payload(m, &d, sizeof d)) {
        p->errors++;
        return GR_CONTINUE;
    }
    if (d.seq != p->pings)
        p->errors++;
    p->pings++;
    if (gr_tell(ctx, m->from, MSG_PONG, &d, sizeof d) != GR_OK)
        p->errors++;
    return GR_CONTINUE;
}

static const gr_behaviour ponger_behaviour = {
    .name = "ponger",
    .state_size = sizeof(struct ponger),
    .init = ponger_init,
    .handle = ponger_handle,
};

/* A pinger and a ponger exchange n round trips, one ping in flight at a
 * time; both count and check order, and stats must count 2n + 4. */
static void run_ping_pong(struct env *e, unsigned workers)
{
    const uint64_t n = scaled(PING_ROUNDS, 100);
    gr_ref me = gr_inbox_ref(e->inbox), pinger;
    struct pinger_args pa = {.n = n, .report = me};
    CHECK_EQ(
        gr_system_spawn(e->sys, &ponger_behaviour, &me, sizeof me, &pa.ponger),
        GR_OK);
    CHECK_EQ(
        gr_system_spawn(e->sys, &pinger_behaviour, &pa, sizeof pa, &pinger),
        GR_OK);
    CHECK_EQ(gr_system_tell(e->sys, me, pinger, MSG_GO, NULL, 0), GR_OK);
    double deadline = test_now() + WAIT_LIMIT_S;
    int seen[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        struct report r;
        CHECK(recv_report(e, &r, deadline));
        CHECK(r.role == ROLE_PINGER || r.role == ROLE_PONGER);
        CHECK(!seen[r.role - ROLE_PINGER]++);
        CHECK_EQ(r.errors, 0);
        CHECK_EQ(r.count, n);
    }
    fprintf(stderr, "  %u workers: %llu round trips\n", workers,
            (unsigned long long)n);
    /* GO, n pings, n pongs, DONE and the two reports. */
    check_stats(e->sys, 2 * n + 4, 3, 2);
}

/* A ping-pong of n round trips makes exactly n pings and n pongs, in order. */
static void ping_pong_exact_count(void)
{
    static const unsigned workers[] = {1, 4};
    for (size_t i = 0; i < sizeof workers / sizeof workers[0]; i++) {
        struct env e;
        CHECK(env_start(&e, workers[i]));
        run_ping_pong(&e, workers[i]);
        env_close(&e);
        if (test_failed_)
            return;
    }
}

/* ---- an actor sending to itself ---------------------------------------- */

/* Messages an actor sends itself before scaling, and per burst. */
#define SELF_MESSAGES 300000u
#define SELF_BURST    1000u

struct self_args {
    uint64_t n;
    gr_ref report;
};

struct self_sender {
    struct self_args a;
    uint64_t sent;
    uint64_t handled;
    uint64_t errors;
};

static int self_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct self_sender *s = state;
    return read_arg(&s->a, sizeof s->a, arg, len);
}

/* Sends itself the next burst once the last one is handled. */
static void self_burst(gr_ctx *ctx, struct self_sender *s)
{
    uint64_t end = s->sent + SELF_BURST;
    if (end > s->a.n)
        end = s->a.n;
    for (; s->sent < end; s->sent++) {
        struct seq_msg d = {0, 0, s->sent};
        if (gr_tell(ctx, gr_self(ctx), MSG_DATA, &d, sizeof d) != GR_OK)
            s->errors++;
    }
}

/* Checks its own messages come back in the order it sent them. */
static int self_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct self_sender *s = state;
    struct seq_msg d;
    if (m->type == MSG_GO) {
        self_burst(ctx, s);
        return GR_CONTINUE;
    }
    if (m->type != MSG_DATA || !read_payload(m, &d, sizeof d) ||
        d.seq != s->handled || !gr_ref_eq(m->from, gr_self(ctx)))
        s->errors++;
    s->handled++;
    if (s->handled == s->sent && s->sent < s->a.n)
        self_burst(ctx, s);
    if (s->handled < s->a.n)
        return GR_CONTINUE;
    tell_report(ctx, s->a.report, ROLE_SELF, 0, s->handled, s->errors, 0);
    return GR_STOP;
}

static const gr_behaviour self_behaviour = {
    .name = "self-sender",
    .state_size = sizeof(struct self_sender),
    .init = self_init,
    .handle = self_handle,
};

/* One actor sends itself n numbered messages in bursts and checks they
 * come back in order; stats must count n + 2. */
static void run_self_send(struct env *e)
{
    const uint64_t n = scaled(SELF_MESSAGES, 10);
    gr_ref me = gr_inbox_ref(e->inbox), actor;
    struct self_args a = {n, me};
    CHECK_EQ(gr_system_spawn(e->sys, &self_behaviour, &a, sizeof a, &actor),
             GR_OK);
    CHECK_EQ(gr_system_tell(e->sys, me, actor, MSG_GO, NULL, 0), GR_OK);
    struct report r;
    CHECK(recv_report(e, &r, test_now() + WAIT_LIMIT_S));
    CHECK_EQ(r.role, ROLE_SELF);
    CHECK_EQ(r.errors, 0);
    CHECK_EQ(r.count, n);
    /* GO, n messages to itself, and the report. */
    check_stats(e->sys, n + 2, 2, 1);
}

/* Messages an actor sends itself all come back, once, in order. */
static void self_send_in_order(void)
{
    struct env e;
    CHECK(env_start(&e, 2));
    run_self_send(&e);
    env_close(&e);
}

TEST_MAIN(TEST_CASE(fanout_one_worker), TEST_CASE(fanout_two_workers),
          TEST_CASE(fanout_four_workers), TEST_CASE(threads_to_actor_in_order),
          TEST_CASE(threads_to_inbox_in_order),
          TEST_CASE(ping_pong_exact_count), TEST_CASE(self_send_in_order))
