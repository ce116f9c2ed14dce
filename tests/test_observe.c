/*
 * Observability tests: dead-letter records sent to subscribers for every
 * reason, subscribe/unsubscribe, subscribers that exit; the rate-limited
 * dead-letter log with its periodic summary; bounded mailboxes (exact cap,
 * runtime messages never refused, concurrent senders); gr_stats (alive,
 * sent, deepest mailboxes); the events of actors (spawn, exit, kill,
 * crash, failed init, dead letter) through a callback, the level filter,
 * and the JSON-lines file sink (config and GROVE_LOG). Public API only.
 */
#include <grove/grove.h>

#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

enum {
    M_WORK = 1,     /* Counted. */
    M_BLOCK,        /* Report R_BLOCKED, wait for the gate. */
    M_SUB,          /* Subscribe (payload int32 1) or unsubscribe (0). */
    M_STRAY = 0x2a, /* Sent where it cannot be delivered. */
    M_CRASH,        /* The handler crashes with CODE_CRASH. */
    M_Q,            /* A request; the handler holds it. */
    M_RELEASE,      /* Reply to the held request. */
    M_ASK,          /* Ask the gr_ref payload with a 20 ms timeout. */
    R_DEAD = 100,   /* A GR_MSG_DEAD_LETTER as a subscriber saw it. */
    R_BLOCKED,
    R_RC,
    R_COUNT, /* The worker's handled count: uint32_t. */
};

#define CODE_CRASH (-1000)

static gr_ref inbox_ref;
static sem_t gate;

struct node {
    uint32_t handled;
    gr_request held;
};

static void report(gr_ctx *ctx, uint32_t type, const void *p, size_t len)
{
    (void)gr_send(gr_ctx_system(ctx), gr_self(ctx), inbox_ref, type, p, len);
}

static int node_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct node *n = state;
    switch (m->type) {
    case GR_MSG_DEAD_LETTER: {
        gr_dead_letter d;
        if (gr_dead_letter_read(m, &d) != GR_OK)
            return GR_EUNHANDLED;
        report(ctx, R_DEAD, &d, sizeof d);
        return GR_CONTINUE;
    }
    case M_WORK:
        n->handled++;
        return GR_CONTINUE;
    case M_BLOCK: {
        report(ctx, R_BLOCKED, NULL, 0);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += WAIT_MS / 1000;
        (void)sem_timedwait(&gate, &dl);
        return GR_CONTINUE;
    }
    case M_SUB: {
        int32_t on, rc;
        if (!read_payload(m, &on, sizeof on))
            return GR_EUNHANDLED;
        rc = on ? gr_dead_letters_subscribe(ctx)
                : gr_dead_letters_unsubscribe(ctx);
        report(ctx, R_RC, &rc, sizeof rc);
        return GR_CONTINUE;
    }
    case M_CRASH:
        return CODE_CRASH;
    case M_Q:
        n->held = gr_request_of(m);
        return GR_CONTINUE;
    case M_RELEASE:
        return gr_reply_to(ctx, &n->held, M_WORK, NULL, 0);
    case M_ASK: {
        gr_ref to;
        if (!read_payload(m, &to, sizeof to))
            return GR_EUNHANDLED;
        int32_t rc = gr_ask(ctx, to, M_Q, NULL, 0, 20, NULL);
        report(ctx, R_RC, &rc, sizeof rc);
        return GR_CONTINUE;
    }
    case M_STRAY:
        return GR_CONTINUE;
    default:
        if (m->flags & GR_MSG_REPLY) { /* An answer to M_ASK: reported. */
            int32_t rc = (int32_t)m->type;
            report(ctx, R_RC, &rc, sizeof rc);
            return GR_CONTINUE;
        }
        if (m->type == R_COUNT) {
            report(ctx, R_COUNT, &n->handled, sizeof n->handled);
            return GR_CONTINUE;
        }
        return GR_EUNHANDLED;
    }
}

static int node_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    (void)state;
    int32_t fail = 0;
    if (arg != NULL && read_arg(&fail, sizeof fail, arg, len) != GR_OK)
        return GR_EINVAL;
    return fail ? GR_ESYS : GR_OK;
}

static const gr_behaviour node_b = {
    .name = "node",
    .state_size = sizeof(struct node),
    .init = node_init,
    .handle = node_handle,
};

/* ---- helpers ------------------------------------------------------------- */

static struct env E;
static struct capture cap;

/* Events an event_fn saw (kinds, levels, refs), guarded by ev_lock. */
#define EV_MAX 256
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static gr_event evs[EV_MAX];
static char ev_beh[EV_MAX][16];
static unsigned nevs;

static void ev_fn(void *arg, const gr_event *ev)
{
    (void)arg;
    pthread_mutex_lock(&ev_lock);
    if (nevs < EV_MAX) {
        evs[nevs] = *ev;
        snprintf(ev_beh[nevs], sizeof ev_beh[nevs], "%s", ev->behaviour);
        nevs++;
    }
    pthread_mutex_unlock(&ev_lock);
}

/* Opens a system; cfg_in may set anything but the log sink. */
static int open_env(gr_config cfg)
{
    capture_init(&cap);
    cfg.workers = 2;
    cfg.no_signals = 1;
    if (cfg.log_fn == NULL) {
        cfg.log_fn = capture_fn;
        cfg.log_arg = &cap;
    }
    nevs = 0;
    sem_init(&gate, 0, 0);
    if (!env_open(&E, &cfg))
        return 0;
    inbox_ref = gr_inbox_ref(E.inbox);
    return 1;
}

static void close_env(void)
{
    env_close(&E);
    sem_destroy(&gate);
}

static gr_ref spawn(void)
{
    gr_ref r = GR_REF_NONE;
    (void)gr_system_spawn(E.sys, &node_b, NULL, 0, &r);
    return r;
}

static int cmd(gr_ref to, uint32_t type, const void *p, size_t len)
{
    return gr_send(E.sys, GR_REF_NONE, to, type, p, len);
}

static int take(uint32_t type, void *out, size_t len)
{
    return recv_exact(E.inbox, type, out, len) == GR_OK;
}

static int take_empty(uint32_t type)
{
    gr_msg *m = NULL;
    if (gr_inbox_recv(E.inbox, &m, WAIT_MS) != GR_OK)
        return 0;
    int ok = m->type == type && m->len == 0;
    gr_msg_free(m);
    return ok;
}

static int quiet_for(int ms)
{
    gr_msg *m = NULL;
    if (gr_inbox_recv(E.inbox, &m, ms) == GR_ETIMEDOUT)
        return 1;
    fprintf(stderr, "  unexpected message type %u\n", (unsigned)m->type);
    gr_msg_free(m);
    return 0;
}

static int subscribe(gr_ref who, int32_t on)
{
    int32_t rc;
    if (cmd(who, M_SUB, &on, sizeof on) != GR_OK || !take(R_RC, &rc, sizeof rc))
        return GR_ETIMEDOUT;
    return rc;
}

/* Takes one record from a subscriber. */
static int take_dead(gr_dead_letter *d, gr_ref *who)
{
    gr_msg *m = NULL;
    if (gr_inbox_recv(E.inbox, &m, WAIT_MS) != GR_OK)
        return 0;
    int ok = m->type == R_DEAD && read_payload(m, d, sizeof *d);
    if (who != NULL)
        *who = m->from;
    gr_msg_free(m);
    return ok;
}

static uint64_t now_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- dead letters -------------------------------------------------------- */

/* A subscriber gets a record for each reason, with the message's from,
 * to, type and corr, and a current time; counters agree. */
static void test_records_every_reason(void)
{
    CHECK(open_env((gr_config){0}));
    gr_ref sub = spawn();
    CHECK_EQ(subscribe(sub, 1), GR_OK);
    gr_ref gone = spawn();
    CHECK_EQ(gr_stop(E.sys, gone), GR_OK);
    CHECK_EQ(wait_stat(E.sys, stat_exited, 0, 1), 1);
    uint64_t t0 = now_realtime_ns();
    gr_ref from = {12345, 0, 0};
    /* no_actor */
    CHECK_EQ(gr_send(E.sys, from, gone, M_STRAY, NULL, 0), GR_ENOACTOR);
    gr_dead_letter d;
    CHECK(take_dead(&d, NULL));
    CHECK_EQ(d.reason, GR_DL_NO_ACTOR);
    CHECK(gr_ref_eq(d.to, gone));
    CHECK(gr_ref_eq(d.from, from));
    CHECK_EQ(d.type, M_STRAY);
    CHECK_EQ(d.corr, 0);
    CHECK(d.time_ns >= t0 && d.time_ns <= now_realtime_ns());
    /* unknown_name */
    CHECK_EQ(gr_send_name(E.sys, from, "nobody-has-this", M_STRAY, NULL, 0),
             GR_ENOTFOUND);
    CHECK(take_dead(&d, NULL));
    CHECK_EQ(d.reason, GR_DL_UNKNOWN_NAME);
    CHECK(gr_ref_is_none(d.to));
    /* stopped: queued behind a block and a stop. */
    gr_ref b = spawn();
    CHECK_EQ(cmd(b, M_BLOCK, NULL, 0), GR_OK);
    CHECK(take_empty(R_BLOCKED));
    /* The kill is handled first: the stray is still queued when b exits. */
    CHECK_EQ(gr_system_exit(E.sys, b, &(gr_reason){.code = GR_EKILL}), GR_OK);
    CHECK_EQ(gr_send(E.sys, from, b, M_STRAY, NULL, 0), GR_OK);
    sem_post(&gate);
    CHECK(take_dead(&d, NULL));
    CHECK_EQ(d.reason, GR_DL_STOPPED);
    CHECK(gr_ref_eq(d.to, b));
    /* mailbox_full */
    gr_ref c = GR_REF_NONE;
    CHECK_EQ(gr_system_spawn_opt(E.sys, &node_b, NULL, 0,
                                 &(gr_spawn_opts){.mailbox_cap = 1}, &c),
             GR_OK);
    CHECK_EQ(cmd(c, M_BLOCK, NULL, 0), GR_OK);
    CHECK(take_empty(R_BLOCKED));
    CHECK_EQ(gr_send(E.sys, from, c, M_WORK, NULL, 0), GR_OK);
    CHECK_EQ(gr_send(E.sys, from, c, M_STRAY, NULL, 0), GR_EMAILBOXFULL);
    CHECK(take_dead(&d, NULL));
    CHECK_EQ(d.reason, GR_DL_MAILBOX_FULL);
    CHECK_EQ(d.type, M_STRAY);
    sem_post(&gate);
    /* expired_reply: an ask that timed out, answered later. */
    gr_ref asker = spawn(), callee = spawn();
    CHECK_EQ(cmd(asker, M_ASK, &callee, sizeof callee), GR_OK);
    int32_t rc;
    CHECK(take(R_RC, &rc, sizeof rc));
    CHECK_EQ(rc, GR_OK);
    CHECK(take(R_RC, &rc, sizeof rc)); /* The timeout. */
    CHECK_EQ((uint32_t)rc, GR_MSG_TIMEOUT);
    CHECK_EQ(cmd(callee, M_RELEASE, NULL, 0), GR_OK);
    CHECK(take_dead(&d, NULL));
    CHECK_EQ(d.reason, GR_DL_EXPIRED_REPLY);
    CHECK(gr_ref_eq(d.to, asker));
    CHECK(gr_ref_eq(d.from, callee));
    CHECK(d.corr != 0);
    CHECK(quiet_for(50));
    gr_stats st = stats_of(E.sys);
    for (int i = 0; i < GR_DL_COUNT; i++)
        CHECK_EQ(st.dead_letters[i], 1);
    close_env();
}

/* Two subscribers get every record; one that unsubscribes, or exits,
 * gets no more (and nothing loops); subscribing twice counts once. */
static void test_subscribers(void)
{
    CHECK(open_env((gr_config){0}));
    gr_ref s1 = spawn(), s2 = spawn();
    CHECK_EQ(subscribe(s1, 1), GR_OK);
    CHECK_EQ(subscribe(s1, 1), GR_OK);
    CHECK_EQ(subscribe(s2, 1), GR_OK);
    gr_ref nobody = {999999, 0, 1};
    CHECK_EQ(cmd(nobody, M_STRAY, NULL, 0), GR_ENOACTOR);
    int from1 = 0, from2 = 0;
    for (int i = 0; i < 2; i++) {
        gr_dead_letter d;
        gr_ref who;
        CHECK(take_dead(&d, &who));
        from1 += gr_ref_eq(who, s1);
        from2 += gr_ref_eq(who, s2);
    }
    CHECK_EQ(from1, 1);
    CHECK_EQ(from2, 1);
    CHECK(quiet_for(50));
    CHECK_EQ(subscribe(s1, 0), GR_OK);
    CHECK_EQ(cmd(nobody, M_STRAY, NULL, 0), GR_ENOACTOR);
    gr_dead_letter d;
    gr_ref who;
    CHECK(take_dead(&d, &who));
    CHECK(gr_ref_eq(who, s2));
    CHECK(quiet_for(50));
    /* s2 exits: records for it are dropped, not dead letters. */
    CHECK_EQ(gr_stop(E.sys, s2), GR_OK);
    CHECK_EQ(wait_stat(E.sys, stat_exited, 0, 1), 1);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(cmd(nobody, M_STRAY, NULL, 0), GR_ENOACTOR);
    CHECK(quiet_for(50));
    CHECK_EQ(stats_of(E.sys).dead_letters[GR_DL_NO_ACTOR], 5);
    close_env();
}

/* The log shows the first N one by one, a notice, then a summary per
 * period with only the new counts; nothing when nothing is new. */
static void test_rate_limited_log(void)
{
    CHECK(open_env(
        (gr_config){.dead_letter_log_limit = 3, .dead_letter_summary_ms = 50}));
    gr_ref nobody = {999999, 0, 1};
    for (int i = 0; i < 10; i++)
        CHECK_EQ(cmd(nobody, M_STRAY, NULL, 0), GR_ENOACTOR);
    double end = test_now() + WAIT_MS / 1000.0;
    while (capture_count(&cap, GR_LOG_WARN, "dead letters: 10 more", NULL) ==
               0 &&
           test_now() < end)
        sleep_ms(5);
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "dead letter:", NULL), 3);
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "dead letters: the first 3",
                           "not logged"),
             1);
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN,
                           "dead letters: 10 more, 7 not logged",
                           "(no_actor=10 stopped=0"),
             1);
    sleep_ms(150); /* Periods pass with nothing new: no line. */
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "dead letters:", NULL), 2);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(gr_send_name(E.sys, GR_REF_NONE, "nope", M_STRAY, NULL, 0),
                 GR_ENOTFOUND);
    end = test_now() + WAIT_MS / 1000.0;
    while (capture_count(&cap, GR_LOG_WARN, "dead letters: 4 more", NULL) ==
               0 &&
           test_now() < end)
        sleep_ms(5);
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN,
                           "dead letters: 4 more, 4 not logged",
                           "no_actor=0 stopped=0 expired_reply=0 "
                           "mailbox_full=0 unknown_name=4"),
             1);
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "dead letter:", NULL), 3);
    close_env();
}

/* ---- bounded mailboxes --------------------------------------------------- */

/* A blocked actor with cap C accepts exactly C messages, refuses the rest
 * (mailbox_full), takes more once drained, and still gets runtime
 * messages when full (a DOWN for a monitor, a stop). */
static void test_bounded_mailbox(void)
{
    CHECK(open_env((gr_config){0}));
    enum { C = 5 };
    gr_ref a = GR_REF_NONE;
    CHECK_EQ(gr_system_spawn_opt(E.sys, &node_b, NULL, 0,
                                 &(gr_spawn_opts){.mailbox_cap = C}, &a),
             GR_OK);
    CHECK_EQ(cmd(a, M_BLOCK, NULL, 0), GR_OK);
    CHECK(take_empty(R_BLOCKED));
    int ok = 0, full = 0;
    for (int i = 0; i < C + 7; i++) {
        int rc = cmd(a, M_WORK, NULL, 0);
        ok += rc == GR_OK;
        full += rc == GR_EMAILBOXFULL;
    }
    CHECK_EQ(ok, C);
    CHECK_EQ(full, 7);
    CHECK_EQ(stats_of(E.sys).dead_letters[GR_DL_MAILBOX_FULL], 7);
    gr_stats st = stats_of(E.sys);
    CHECK(gr_ref_eq(st.deepest[0].actor, a));
    CHECK_EQ(st.deepest[0].depth, C);
    sem_post(&gate);
    /* Drained: the mailbox takes messages again. */
    double end = test_now() + WAIT_MS / 1000.0;
    while (stats_of(E.sys).deepest[0].depth > 0 && test_now() < end)
        sleep_ms(1);
    uint32_t handled = 0;
    CHECK_EQ(cmd(a, R_COUNT, NULL, 0), GR_OK);
    CHECK(take(R_COUNT, &handled, sizeof handled));
    CHECK_EQ(handled, C);
    CHECK_EQ(cmd(a, M_WORK, NULL, 0), GR_OK);
    /* Full again, then a stop still gets through. */
    CHECK_EQ(cmd(a, M_BLOCK, NULL, 0), GR_OK);
    CHECK(take_empty(R_BLOCKED));
    while (cmd(a, M_WORK, NULL, 0) == GR_OK)
        ;
    CHECK_EQ(gr_stop(E.sys, a), GR_OK);
    sem_post(&gate);
    CHECK_EQ(wait_stat(E.sys, stat_exited, 0, 1), 1);
    close_env();
}

struct flood {
    gr_ref to;
    atomic_int ok, full;
};

static void *flood_thread(void *p)
{
    struct flood *f = p;
    for (int i = 0; i < 2000; i++) {
        int rc = gr_send(E.sys, GR_REF_NONE, f->to, M_WORK, NULL, 0);
        if (rc == GR_OK)
            atomic_fetch_add(&f->ok, 1);
        else if (rc == GR_EMAILBOXFULL)
            atomic_fetch_add(&f->full, 1);
    }
    return NULL;
}

/* Several threads flood a blocked actor with cap C: exactly C accepted,
 * the rest refused and counted. */
static void test_bounded_concurrent(void)
{
    CHECK(open_env((gr_config){0}));
    enum { C = 100, T = 4 };
    struct flood f = {0};
    CHECK_EQ(gr_system_spawn_opt(E.sys, &node_b, NULL, 0,
                                 &(gr_spawn_opts){.mailbox_cap = C}, &f.to),
             GR_OK);
    CHECK_EQ(cmd(f.to, M_BLOCK, NULL, 0), GR_OK);
    CHECK(take_empty(R_BLOCKED));
    pthread_t t[T];
    for (int i = 0; i < T; i++)
        CHECK(pthread_create(&t[i], NULL, flood_thread, &f) == 0);
    for (int i = 0; i < T; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(atomic_load(&f.ok), C);
    CHECK_EQ(atomic_load(&f.full), T * 2000 - C);
    CHECK_EQ(stats_of(E.sys).dead_letters[GR_DL_MAILBOX_FULL], T * 2000 - C);
    sem_post(&gate);
    close_env();
}

/* ---- stats --------------------------------------------------------------- */

/* alive, sent and the deepest mailboxes, deepest first. */
static void test_stats(void)
{
    CHECK(open_env((gr_config){0}));
    gr_ref a = spawn(), b = spawn(), c = spawn();
    gr_stats st0 = stats_of(E.sys);
    CHECK_EQ(st0.alive, 4); /* + the inbox */
    CHECK_EQ(st0.alive, st0.spawned - st0.exited);
    CHECK_EQ(cmd(a, M_BLOCK, NULL, 0), GR_OK);
    CHECK(take_empty(R_BLOCKED));
    CHECK_EQ(cmd(b, M_BLOCK, NULL, 0), GR_OK);
    CHECK(take_empty(R_BLOCKED));
    for (int i = 0; i < 30; i++)
        CHECK_EQ(cmd(a, M_WORK, NULL, 0), GR_OK);
    for (int i = 0; i < 12; i++)
        CHECK_EQ(cmd(b, M_WORK, NULL, 0), GR_OK);
    gr_stats st = stats_of(E.sys);
    CHECK(gr_ref_eq(st.deepest[0].actor, a));
    CHECK_EQ(st.deepest[0].depth, 30);
    CHECK(gr_ref_eq(st.deepest[1].actor, b));
    CHECK_EQ(st.deepest[1].depth, 12);
    for (int i = 2; i < GR_STATS_DEEPEST; i++) {
        CHECK(gr_ref_is_none(st.deepest[i].actor));
        CHECK_EQ(st.deepest[i].depth, 0);
    }
    CHECK(st.sent >= st0.sent + 44);
    sem_post(&gate);
    sem_post(&gate);
    CHECK_EQ(gr_stop(E.sys, c), GR_OK);
    CHECK_EQ(wait_stat(E.sys, stat_exited, 0, 1), 1);
    st = stats_of(E.sys);
    CHECK_EQ(st.alive, 3);
    close_env();
}

/* ---- events -------------------------------------------------------------- */

/* Returns the index of the first recorded event of kind about actor, or
 * -1. */
static int find_ev(gr_event_kind kind, gr_ref actor)
{
    pthread_mutex_lock(&ev_lock);
    int at = -1;
    for (unsigned i = 0; i < nevs && at < 0; i++)
        if (evs[i].kind == kind && gr_ref_eq(evs[i].actor, actor))
            at = (int)i;
    pthread_mutex_unlock(&ev_lock);
    return at;
}

static int wait_ev(gr_event_kind kind, gr_ref actor)
{
    double end = test_now() + WAIT_MS / 1000.0;
    int at;
    while ((at = find_ev(kind, actor)) < 0 && test_now() < end)
        sleep_ms(1);
    return at;
}

/* Actor events reach an event_fn at debug level with their fields; at the
 * default level spawn and exit events are left out. */
static void test_actor_events(void)
{
    CHECK(open_env((gr_config){
        .event_fn = ev_fn, .log_level = GR_LOG_DEBUG, .log_level_set = 1}));
    gr_ref a = spawn();
    int i = wait_ev(GR_EV_SPAWNED, a);
    CHECK(i >= 0);
    CHECK_EQ(evs[i].level, GR_LOG_DEBUG);
    CHECK(strcmp(ev_beh[i], "node") == 0);
    CHECK(evs[i].time_ns > 0);
    CHECK_EQ(gr_stop(E.sys, a), GR_OK);
    CHECK((i = wait_ev(GR_EV_EXITED, a)) >= 0);
    CHECK_EQ(evs[i].level, GR_LOG_DEBUG);
    CHECK_EQ(evs[i].reason.code, GR_ESHUTDOWN);
    gr_ref k = spawn();
    CHECK_EQ(gr_system_exit(E.sys, k, &(gr_reason){.code = GR_EKILL}), GR_OK);
    CHECK((i = wait_ev(GR_EV_EXITED, k)) >= 0);
    CHECK_EQ(evs[i].level, GR_LOG_WARN);
    CHECK_EQ(evs[i].reason.code, GR_EKILLED);
    gr_ref c = spawn();
    CHECK_EQ(cmd(c, M_CRASH, NULL, 0), GR_OK);
    CHECK((i = wait_ev(GR_EV_CRASHED, c)) >= 0);
    CHECK_EQ(evs[i].level, GR_LOG_ERROR);
    CHECK_EQ(evs[i].reason.code, CODE_CRASH);
    CHECK_EQ(evs[i].reason.msg_type, M_CRASH);
    int32_t fail = 1;
    gr_ref f = GR_REF_NONE;
    CHECK_EQ(gr_system_spawn(E.sys, &node_b, &fail, sizeof fail, &f), GR_ESYS);
    pthread_mutex_lock(&ev_lock);
    int found = 0;
    for (unsigned j = 0; j < nevs; j++)
        found += evs[j].kind == GR_EV_INIT_FAILED &&
                 evs[j].reason.code == GR_ESYS && evs[j].level == GR_LOG_ERROR;
    pthread_mutex_unlock(&ev_lock);
    CHECK_EQ(found, 1);
    gr_ref nobody = {999999, 0, 1};
    CHECK_EQ(gr_send(E.sys, a, nobody, M_STRAY, NULL, 0), GR_ENOACTOR);
    CHECK((i = wait_ev(GR_EV_DEAD_LETTER, GR_REF_NONE)) >= 0);
    CHECK_EQ(evs[i].level, GR_LOG_WARN);
    CHECK(gr_ref_eq(evs[i].dead.to, nobody));
    CHECK(gr_ref_eq(evs[i].dead.from, a));
    CHECK_EQ(evs[i].dead.reason, GR_DL_NO_ACTOR);
    close_env();
    /* Default level: no spawn or normal exit events. */
    CHECK(open_env((gr_config){.event_fn = ev_fn}));
    a = spawn();
    CHECK_EQ(gr_stop(E.sys, a), GR_OK);
    CHECK_EQ(wait_stat(E.sys, stat_exited, 0, 1), 1);
    sleep_ms(20);
    CHECK_EQ(find_ev(GR_EV_SPAWNED, a), -1);
    CHECK_EQ(find_ev(GR_EV_EXITED, a), -1);
    close_env();
}

/* Checks that line is one JSON object with the keys of its kind. */
static int json_line_ok(const char *line)
{
    size_t n = strlen(line);
    if (n < 2 || line[0] != '{' || line[n - 1] != '}' ||
        strstr(line, "\"event\":\"") != line + 1 ||
        strstr(line, "\"time_ns\":") == NULL ||
        strstr(line, "\"level\":\"") == NULL)
        return 0;
    static const char *const actor_keys[] = {
        "\"actor\":", "\"behaviour\":", "\"reason\":", "\"code\":", NULL};
    static const char *const dead_keys[] = {
        "\"from\":", "\"to\":", "\"type\":", "\"corr\":", "\"reason\":", NULL};
    const char *const *keys =
        strstr(line, "\"event\":\"dead_letter\"") ? dead_keys : actor_keys;
    for (int i = 0; keys[i] != NULL; i++)
        if (strstr(line, keys[i]) == NULL)
            return 0;
    /* Braces and quotes balance (no interleaved lines). */
    int depth = 0, in_str = 0;
    for (const char *p = line; *p; p++) {
        if (in_str) {
            if (*p == '\\' && p[1] != '\0')
                p++;
            else if (*p == '"')
                in_str = 0;
        } else if (*p == '"') {
            in_str = 1;
        } else if (*p == '{') {
            depth++;
        } else if (*p == '}' && --depth < 0) {
            return 0;
        }
    }
    return depth == 0 && !in_str;
}

/* Reads the file at path: counts lines and malformed ones. */
static int check_file(const char *path, unsigned *lines, unsigned *crashes)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char buf[1024];
    int ok = 1;
    *lines = *crashes = 0;
    while (fgets(buf, sizeof buf, f) != NULL) {
        size_t n = strlen(buf);
        if (n == 0 || buf[n - 1] != '\n') {
            ok = 0;
            break;
        }
        buf[n - 1] = '\0';
        if (!json_line_ok(buf)) {
            fprintf(stderr, "  bad line: %s\n", buf);
            ok = 0;
        }
        (*lines)++;
        *crashes += strstr(buf, "\"event\":\"crashed\"") != NULL;
    }
    fclose(f);
    return ok;
}

/* The JSON-lines file: every line one object with its kind's keys, lines
 * from many threads never mixed; GROVE_LOG works when event_log is unset;
 * an unopenable path makes the start fail. */
static void test_event_file(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/grove_test_events_%d.jsonl",
             (int)getpid());
    unlink(path);
    CHECK(open_env((gr_config){.event_log = path}));
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        gr_ref c = spawn();
        CHECK_EQ(cmd(c, M_CRASH, NULL, 0), GR_OK);
    }
    gr_ref nobody = {999999, 0, 1};
    CHECK_EQ(cmd(nobody, M_STRAY, NULL, 0), GR_ENOACTOR);
    CHECK_EQ(wait_stat(E.sys, stat_exited, 0, N), N);
    close_env();
    unsigned lines, crashes;
    CHECK(check_file(path, &lines, &crashes));
    CHECK_EQ(crashes, N);
    CHECK_EQ(lines, N + 1); /* + the dead letter */
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, "crash", NULL), 0);
    unlink(path);
    /* GROVE_LOG */
    setenv("GROVE_LOG", path, 1);
    int opened = open_env((gr_config){0});
    unsetenv("GROVE_LOG");
    CHECK(opened);
    gr_ref c = spawn();
    CHECK_EQ(cmd(c, M_CRASH, NULL, 0), GR_OK);
    CHECK_EQ(wait_stat(E.sys, stat_exited, 0, 1), 1);
    close_env();
    CHECK(check_file(path, &lines, &crashes));
    CHECK_EQ(crashes, 1);
    unlink(path);
    /* A path that cannot be opened. */
    gr_system *sys = NULL;
    capture_init(&cap);
    gr_config bad = {.event_log = "/nonexistent-dir/x/events.jsonl",
                     .no_signals = 1,
                     .log_fn = capture_fn,
                     .log_arg = &cap};
    CHECK_EQ(gr_system_start(&bad, &sys), GR_ESYS);
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, "cannot open event log", NULL),
             1);
}

/* Formatting the new kinds: text and JSON, and JSON cut short. */
static void test_event_format(void)
{
    gr_event ev = {.kind = GR_EV_CRASHED,
                   .level = GR_LOG_ERROR,
                   .time_ns = 42,
                   .reason = {.code = CODE_CRASH,
                              .flags = GR_REASON_IN_HANDLER,
                              .msg_type = 7},
                   .actor = {5, 0, 1},
                   .behaviour = "wo\"rker",
                   .sup_name = "",
                   .child_id = ""};
    char buf[512];
    gr_event_format_text(&ev, buf, sizeof buf);
    CHECK(strncmp(buf, "crash <", 7) == 0);
    CHECK(strstr(buf, "while handling type 0x7") != NULL);
    gr_event_format_json(&ev, buf, sizeof buf);
    CHECK(json_line_ok(buf));
    CHECK(strstr(buf, "\"behaviour\":\"wo\\\"rker\"") != NULL);
    CHECK(strstr(buf, "\"level\":\"error\"") != NULL);
    ev.kind = GR_EV_DEAD_LETTER;
    ev.dead = (gr_dead_letter){.from = {1, 0, 1},
                               .to = {2, 0, 1},
                               .corr = 99,
                               .type = 0x2a,
                               .reason = GR_DL_MAILBOX_FULL};
    gr_event_format_text(&ev, buf, sizeof buf);
    CHECK(strstr(buf, "dead letter: to") == buf);
    CHECK(strstr(buf, "reason mailbox_full") != NULL);
    gr_event_format_json(&ev, buf, sizeof buf);
    CHECK(json_line_ok(buf));
    CHECK(strstr(buf, "\"corr\":99") != NULL);
    char small[48];
    gr_event_format_json(&ev, small, sizeof small);
    CHECK(strcmp(small, "{\"event\":\"dead_letter\",\"truncated\":true}") == 0);
    const gr_event_kind kinds[] = {GR_EV_SPAWNED, GR_EV_EXITED,
                                   GR_EV_INIT_FAILED};
    const char *const starts[] = {"spawn <", "exit <", "init failed <"};
    for (int i = 0; i < 3; i++) {
        ev.kind = kinds[i];
        gr_event_format_text(&ev, buf, sizeof buf);
        CHECK(strncmp(buf, starts[i], strlen(starts[i])) == 0);
        gr_event_format_json(&ev, buf, sizeof buf);
        CHECK(json_line_ok(buf));
    }
}

TEST_MAIN(TEST_CASE(test_records_every_reason), TEST_CASE(test_subscribers),
          TEST_CASE(test_rate_limited_log), TEST_CASE(test_bounded_mailbox),
          TEST_CASE(test_bounded_concurrent), TEST_CASE(test_stats),
          TEST_CASE(test_actor_events), TEST_CASE(test_event_file),
          TEST_CASE(test_event_format))
