/*
 * Timer tests, one or more cases per rule of include/grove/timer.h:
 *
 * - a one-shot timer delivers exactly one message: its type, a copy of its
 *   payload, GR_MSG_TIMER, from the actor itself, corr its id; never before
 *   its delay (lower bounds only, on the monotonic clock); delay 0 and
 *   timers started in init work;
 * - a periodic timer repeats, its k-th message not before k periods; a zero
 *   period is refused; a cancel stops it, and the loop stops firing it;
 * - a cancel discards messages already queued (one-shot and periodic) and
 *   reports GR_ENOTFOUND for timers that are not live, GR_EINVAL for id 0;
 * - timers die with their actor, whatever the exit, without dead letters
 *   and without leaks (ASan's leak check at exit);
 * - ten thousand live timers, half cancelled at random: exactly the others
 *   are handled, each once;
 * - starts and cancels racing with firings;
 * - bad arguments; shutdown with timers pending.
 *
 * Public API only; every wait is bounded. The actors the cases drive are in
 * tests/timer_env.h.
 */
#include "timer_env.h"

/* ---- cases --------------------------------------------------------------- */

/* A one-shot timer delivers exactly one message: its type, a copy of its
 * payload (the caller's buffer is scribbled over after the call), the flag
 * GR_MSG_TIMER, from and to the actor itself, corr its id; never before its
 * delay. An empty payload arrives as NULL, 0; ids differ.
 * Mutants caught: ms scaled down (early), one-shots that repeat, a missing
 * flag or corr, the payload referenced instead of copied. */
static void test_after(void)
{
    CHECK(open_env());
    gr_ref a = spawn_tm(NULL);
    CHECK(!gr_ref_is_none(a));
    struct start_cmd s = {.ms = 80, .tag = 7, .type = T_TICK};
    struct started st = start_on(a, &s);
    CHECK_EQ(st.rc, GR_OK);
    CHECK(st.id != 0);
    struct fired f;
    CHECK(probe_take(R_FIRED, &f, sizeof f)); /* Within WAIT_MS. */
    CHECK(fired_is(&f, a, st.id, T_TICK));
    CHECK_EQ(f.tag, 7);
    CHECK_EQ(f.len, sizeof(struct tick));
    CHECK(f.t_ns - st.t0_ns >= 80000000u);
    CHECK(probe_quiet_for(200)); /* Exactly one. */

    /* No payload, another type. */
    struct start_cmd e = {.ms = 20, .type = T_OTHER, .empty = 1};
    struct started st2 = start_on(a, &e);
    CHECK_EQ(st2.rc, GR_OK);
    CHECK(st2.id != 0 && st2.id != st.id);
    CHECK(probe_take(R_FIRED, &f, sizeof f));
    CHECK(fired_is(&f, a, st2.id, T_OTHER));
    CHECK_EQ(f.len, 0);
    CHECK(f.t_ns - st2.t0_ns >= 20000000u);
    CHECK(probe_quiet_for(100));
    CHECK_EQ(total_dead(), 0);
    close_env();
}

/* Delay 0 comes promptly, in a fresh system whose I/O loop is idle (a
 * start must wake it); timers started in init work, whether init runs on
 * the spawning thread or on a worker (gr_spawn from a handler).
 * Mutants caught: no wake on start (the loop would sleep till its next
 * own timer, seconds away). */
static void test_zero_and_init(void)
{
    CHECK(open_env());
    gr_ref a = spawn_tm(NULL);
    sleep_ms(50); /* Let the I/O loop go idle. */
    struct start_cmd z = {.ms = 0, .tag = 1, .type = T_TICK};
    struct started st = start_on(a, &z);
    CHECK_EQ(st.rc, GR_OK);
    struct fired f;
    CHECK(probe_take(R_FIRED, &f, sizeof f));
    CHECK(fired_is(&f, a, st.id, T_TICK));
    CHECK_EQ(f.tag, 1);
    CHECK(probe_quiet_for(50));

    /* From init: a 0 ms one (tag 900) and a 30 ms one (tag 901). The
     * second round spawns from a handler, so init runs on a worker. */
    for (int round = 0; round < 2; round++) {
        struct tm_arg arg = {.init_timers = 1};
        gr_ref b = GR_REF_NONE;
        if (round == 0) {
            sleep_ms(50);
            CHECK_EQ(gr_system_spawn(E.sys, &tm_b, &arg, sizeof arg, &b),
                     GR_OK);
        } else {
            CHECK_EQ(probe_tell(a, C_SPAWN, &arg, sizeof arg), GR_OK);
        }
        struct started s0, s1;
        CHECK(probe_take(R_STARTED, &s0, sizeof s0));
        CHECK(probe_take(R_STARTED, &s1, sizeof s1));
        CHECK_EQ(s0.rc, GR_OK);
        CHECK_EQ(s1.rc, GR_OK);
        /* Round 1: the spawn's report comes from a, in any order with the
         * child's firings (it runs on another worker at once). */
        int seen = 0, spawn_rc = round == 0 ? GR_OK : 1;
        while (seen != 3 || spawn_rc == 1) {
            gr_msg *m;
            CHECK(probe_next(&m));
            int32_t rc;
            int ok = 0;
            if (m->type == PROBE_RC && spawn_rc == 1 &&
                read_payload(m, &rc, sizeof rc)) {
                spawn_rc = rc;
                ok = 1;
            } else if (m->type == R_FIRED) {
                ok = read_payload(m, &f, sizeof f);
            }
            uint32_t type = m->type;
            gr_msg_free(m);
            CHECK(ok);
            if (type == PROBE_RC)
                continue;
            if (gr_ref_is_none(b))
                b = f.self;
            CHECK(f.tag == 900 || f.tag == 901);
            CHECK(!(seen >> (f.tag - 900) & 1));
            const struct started *sx = f.tag == 900 ? &s0 : &s1;
            CHECK(fired_is(&f, b, sx->id, T_TICK));
            CHECK(f.t_ns - sx->t0_ns >= (f.tag - 900) * 30000000u);
            seen |= 1 << (f.tag - 900);
        }
        CHECK_EQ(spawn_rc, GR_OK);
        CHECK_EQ(seen, 3);
        CHECK(!gr_ref_eq(a, b));
        CHECK(probe_quiet_for(60));
    }
    close_env();
}

/* A periodic timer repeats: at least six messages, the k-th not before k
 * periods after the start, all with the same id and payload; after its
 * cancel returns, none is handled, and a second cancel finds nothing. A
 * zero period is refused.
 * Mutants caught: periodic timers made one-shot, a first firing at 0. */
static void test_every(void)
{
    CHECK(open_env());
    gr_ref a = spawn_tm(NULL);
    struct start_cmd s = {.ms = 20, .tag = 3, .type = T_TICK, .every = 1};
    struct started st = start_on(a, &s);
    CHECK_EQ(st.rc, GR_OK);
    for (uint64_t k = 1; k <= 6; k++) {
        struct fired f;
        CHECK(probe_take(R_FIRED, &f, sizeof f));
        CHECK(fired_is(&f, a, st.id, T_TICK));
        CHECK_EQ(f.tag, 3);
        CHECK(f.t_ns - st.t0_ns >= k * 20000000u);
    }
    struct cancelled r;
    CHECK_EQ(probe_tell(a, C_CANCEL, &st.id, sizeof st.id), GR_OK);
    /* Firings handled before the cancel may come before its report. */
    CHECK(drain_until(R_CANCELLED, &r, sizeof r));
    CHECK_EQ(r.rc, GR_OK);
    CHECK(probe_quiet_for(150));
    CHECK_EQ(cancel_on(a, st.id), GR_ENOTFOUND);

    uint64_t max = 0; /* No payload-size cases. */
    CHECK_EQ(probe_tell(a, C_BAD, &max, sizeof max), GR_OK);
    struct bad b;
    CHECK(probe_take(R_BAD, &b, sizeof b));
    CHECK_EQ(b.rc[7], GR_EINVAL); /* gr_timer_every(ms = 0) */
    CHECK(probe_quiet_for(50));
    close_env();
}

/* A cancelled periodic timer stops firing: the system's sent counter
 * (timer messages included) stands still afterwards, where a live 1 ms
 * timer moves it every millisecond.
 * Mutants caught: gr__timer_cancel that never reaches the loop (the
 * receiver would still drop the messages, but the timer would fire
 * forever). */
static void test_cancel_stops_firing(void)
{
    CHECK(open_env());
    gr_ref a = spawn_tm(NULL);
    struct start_cmd s = {.ms = 1, .type = T_TICK, .every = 1};
    struct started st = start_on(a, &s);
    CHECK_EQ(st.rc, GR_OK);
    uint64_t s0 = stats_of(E.sys).sent;
    sleep_ms(200);
    uint64_t live = stats_of(E.sys).sent - s0;
    CHECK(live >= 10); /* The measure can see a live timer. */
    struct cancelled r;
    CHECK_EQ(probe_tell(a, C_CANCEL, &st.id, sizeof st.id), GR_OK);
    CHECK(drain_until(R_CANCELLED, &r, sizeof r));
    CHECK_EQ(r.rc, GR_OK);
    sleep_ms(50); /* One may have been on its way. */
    uint64_t s1 = stats_of(E.sys).sent;
    sleep_ms(200);
    uint64_t after = stats_of(E.sys).sent - s1;
    if (after > 1)
        fprintf(stderr, "  sent moved by %llu after the cancel (%llu live)\n",
                (unsigned long long)after, (unsigned long long)live);
    CHECK(after <= 1);
    CHECK(probe_quiet_for(20));
    close_env();
}

/* Cancels of timers whose messages already wait in the mailbox: one-shots
 * and periodic ones, queued behind a busy handler (its own depth proves
 * it). The cancelled ones are never handled; the others are, one-shots
 * exactly once. Then cancel reports GR_ENOTFOUND for every dead timer.
 * Mutants caught: no cancel filter in gr__timer_arrived; a one-shot kept
 * live after its message was handled. */
static void test_cancel_queued(void)
{
    CHECK(open_env());
    gr_ref a = spawn_tm(NULL);
    /* Six one-shots (tags 0..5), three periodic (6..8); cancel one-shots
     * 1, 3, 5 and periodic 6, 8. */
    const uint32_t mask = 1u << 1 | 1u << 3 | 1u << 5 | 1u << 6 | 1u << 8;
    struct queue_cmd c = {.n_once = 6, .n_every = 3, .cancel_mask = mask};
    CHECK_EQ(probe_tell(a, C_QUEUE, &c, sizeof c), GR_OK);
    struct queued q;
    CHECK(probe_take(R_QUEUED, &q, sizeof q));
    CHECK_EQ(q.rc_start, GR_OK);
    CHECK(q.depth_once >= 6);
    CHECK(q.depth_all >= 6 + 4 * 3);
    for (int k = 0; k < 9; k++)
        CHECK_EQ(q.rc_cancel[k], (mask >> k & 1) ? GR_OK : 0);
    /* What is handled now: one-shots 0, 2, 4 once each, periodic 7 again
     * and again, nothing else. */
    int once[6] = {0};
    unsigned every7 = 0;
    int cancel_sent = 0;
    double end = test_now() + 0.3;
    for (;;) {
        /* After a while, cancel periodic 7 too; read up to its report. */
        if (!cancel_sent && test_now() >= end && every7 >= 5) {
            CHECK_EQ(probe_tell(a, C_CANCEL, &q.id[7], sizeof q.id[7]), GR_OK);
            cancel_sent = 1;
        }
        gr_msg *m;
        CHECK(probe_next(&m));
        struct fired f;
        struct cancelled r;
        uint32_t type = m->type;
        int ok = type == R_CANCELLED
                     ? cancel_sent && read_payload(m, &r, sizeof r)
                     : type == R_FIRED && read_payload(m, &f, sizeof f);
        gr_msg_free(m);
        CHECK(ok);
        if (type == R_CANCELLED) {
            CHECK_EQ(r.rc, GR_OK);
            break;
        }
        CHECK(f.tag < 9);
        CHECK(!(mask >> f.tag & 1));
        CHECK(fired_is(&f, a, q.id[f.tag], T_TICK));
        if (f.tag < 6)
            once[f.tag]++;
        else
            every7++;
    }
    for (int k = 0; k < 6; k++)
        CHECK_EQ(once[k], (mask >> k & 1) ? 0 : 1);
    CHECK(probe_quiet_for(100));
    /* Every one is dead now: handled, cancelled, or cancelled twice. */
    for (int k = 0; k < 9; k++)
        CHECK_EQ(cancel_on(a, q.id[k]), GR_ENOTFOUND);
    CHECK(probe_quiet_for(20));
    CHECK_EQ(total_dead(), 0);
    close_env();
}

/* What gr_timer_cancel returns: GR_OK for a live timer (a periodic one that
 * has fired and been handled included), then GR_ENOTFOUND; GR_ENOTFOUND
 * for a fired-and-handled one-shot, an unknown id, and another actor's
 * live timer, which it leaves running; GR_EINVAL for id 0 and a NULL ctx.
 * Mutants caught: a cancel that reports GR_OK for any id, or that does
 * not look at the owner. */
static void test_cancel_codes(void)
{
    CHECK(open_env());
    gr_ref a = spawn_tm(NULL), b = spawn_tm(NULL);
    struct fired f;
    /* Fired and handled. */
    struct start_cmd s = {.ms = 1, .tag = 1, .type = T_TICK};
    struct started st = start_on(a, &s);
    CHECK_EQ(st.rc, GR_OK);
    CHECK(probe_take(R_FIRED, &f, sizeof f));
    CHECK_EQ(f.corr, st.id);
    CHECK_EQ(cancel_on(a, st.id), GR_ENOTFOUND);
    /* Live, then cancelled twice. */
    s.ms = 10000;
    st = start_on(a, &s);
    CHECK_EQ(st.rc, GR_OK);
    CHECK_EQ(cancel_on(a, st.id), GR_OK);
    CHECK_EQ(cancel_on(a, st.id), GR_ENOTFOUND);
    /* Unknown ids. */
    CHECK_EQ(cancel_on(a, st.id + 1000000), GR_ENOTFOUND);
    CHECK_EQ(cancel_on(a, UINT64_MAX), GR_ENOTFOUND);
    /* A periodic timer that has fired is still live. */
    struct start_cmd p = {.ms = 5, .tag = 2, .type = T_TICK, .every = 1};
    st = start_on(a, &p);
    CHECK_EQ(st.rc, GR_OK);
    CHECK(probe_take(R_FIRED, &f, sizeof f));
    CHECK(probe_take(R_FIRED, &f, sizeof f));
    struct cancelled r;
    CHECK_EQ(probe_tell(a, C_CANCEL, &st.id, sizeof st.id), GR_OK);
    CHECK(drain_until(R_CANCELLED, &r, sizeof r));
    CHECK_EQ(r.rc, GR_OK);
    CHECK_EQ(cancel_on(a, st.id), GR_ENOTFOUND);
    CHECK(probe_quiet_for(30));
    /* b's live timer: a cannot cancel it, and it still fires for b. */
    s.ms = 100;
    s.tag = 5;
    st = start_on(b, &s);
    CHECK_EQ(st.rc, GR_OK);
    CHECK_EQ(cancel_on(a, st.id), GR_ENOTFOUND);
    CHECK(probe_take(R_FIRED, &f, sizeof f));
    CHECK(fired_is(&f, b, st.id, T_TICK));
    CHECK_EQ(f.tag, 5);
    /* id 0; NULL ctx (callable from anywhere: it only returns). */
    uint64_t max = 0;
    CHECK_EQ(probe_tell(a, C_BAD, &max, sizeof max), GR_OK);
    struct bad bad;
    CHECK(probe_take(R_BAD, &bad, sizeof bad));
    CHECK_EQ(bad.rc[8], GR_EINVAL);
    CHECK_EQ(gr_timer_cancel(NULL, 1), GR_EINVAL);
    CHECK(probe_quiet_for(50));
    close_env();
}

/* How a holder ends in test_die_with_owner. */
enum {
    HOW_STOP,   /* gr_stop from outside, queued behind timer messages. */
    HOW_KILL,   /* gr_system_exit with GR_EKILL. */
    HOW_CRASH,  /* The handler returns an error code. */
    HOW_FAIL,   /* gr_fail. */
    HOW_NORMAL, /* The handler returns GR_STOP. */
    HOW_COUNT
};

/* An actor's timers die with it, whatever the exit: it has 60 one-shots
 * (20 due at once, 40 due over 100..295 ms) and 15 periodic ones (10 every
 * 1 ms, 5 every 50 ms), and timer messages queued behind its last handler
 * call when it goes. None of them becomes a dead letter, none is handled
 * afterwards, and nothing leaks (ASan). Also: timers started by an init
 * that then fails, and by terminate, die the same way; a fresh actor gets
 * nothing of them.
 * Mutants caught: dead letters for timer messages (the filter in
 * gr__dead_message); no gr__timers_exit (its map leaks: ASan). */
static void test_die_with_owner(void)
{
    CHECK(open_env());
    for (int how = 0; how < HOW_COUNT; how++) {
        struct tm_arg arg = {.term_report = 1, .term_timers = how == 0};
        gr_ref a = spawn_tm(&arg);
        CHECK(!gr_ref_is_none(a));
        struct many_cmd m0 = {.n_once = 20, .tag = 0};
        struct many_cmd m1 = {.n_once = 40,
                              .once_ms = 100,
                              .once_step = 5,
                              .n_every = 10,
                              .every_ms = 1,
                              .tag = 100};
        struct many_cmd m2 = {.n_every = 5, .every_ms = 50, .tag = 200};
        struct started st;
        CHECK_EQ(probe_tell(a, C_MANY, &m0, sizeof m0), GR_OK);
        CHECK(drain_until(R_STARTED, &st, sizeof st));
        CHECK_EQ(st.rc, GR_OK);
        CHECK_EQ(st.count, 20);
        CHECK_EQ(probe_tell(a, C_MANY, &m1, sizeof m1), GR_OK);
        CHECK(drain_until(R_STARTED, &st, sizeof st));
        CHECK_EQ(st.rc, GR_OK);
        CHECK_EQ(st.count, 50);
        CHECK_EQ(probe_tell(a, C_MANY, &m2, sizeof m2), GR_OK);
        CHECK(drain_until(R_STARTED, &st, sizeof st));
        CHECK_EQ(st.count, 5);
        /* Hold the actor; the periodic timers queue messages meanwhile. */
        struct hold_cmd h = {.gate = 1,
                             .wait_depth = 30,
                             .end = how == HOW_CRASH    ? END_CRASH
                                    : how == HOW_FAIL   ? END_FAIL
                                    : how == HOW_NORMAL ? END_STOP
                                                        : END_CONTINUE};
        CHECK_EQ(probe_tell(a, C_HOLD, &h, sizeof h), GR_OK);
        CHECK(drain_until(PROBE_BLOCKED, NULL, 0));
        if (how == HOW_STOP || how == HOW_KILL) {
            uint64_t d = wait_depth(a, 10);
            const gr_reason kill = gr_reason_of(GR_EKILL);
            if (how == HOW_STOP)
                CHECK_EQ(gr_stop(E.sys, a), GR_OK);
            else
                CHECK_EQ(gr_system_exit(E.sys, a, &kill), GR_OK);
            /* Timer messages behind the stop or kill too. */
            CHECK(wait_depth(a, d + 11) >= d + 11);
        }
        probe_release(1);
        uint64_t depth;
        CHECK(drain_until(R_DEPTH, &depth, sizeof depth));
        CHECK(depth >= 30); /* Queued behind the handler as it ended. */
        struct term t;
        CHECK(drain_until(R_TERM, &t, sizeof t));
        const int why[HOW_COUNT] = {GR_ESHUTDOWN, GR_EKILLED, PROBE_CRASH,
                                    GR_EFAILED, GR_OK};
        CHECK_EQ(t.why, why[how]);
        if (arg.term_timers) {
            CHECK_EQ(t.rc_after, GR_OK);
            CHECK_EQ(t.rc_every, GR_OK);
        }
        /* Past every due time: nothing more, no dead letters. */
        CHECK(probe_quiet_for(400));
        CHECK_EQ(total_dead(), 0);
    }

    /* An init that starts timers and then fails. */
    struct tm_arg fail = {.init_timers = 1, .init_fail = 1};
    gr_ref dead = GR_REF_NONE;
    CHECK_EQ(gr_system_spawn(E.sys, &tm_b, &fail, sizeof fail, &dead),
             GR_EINVAL);
    struct started st;
    CHECK(probe_take(R_STARTED, &st, sizeof st));
    CHECK_EQ(st.rc, GR_OK);
    CHECK(probe_take(R_STARTED, &st, sizeof st));
    CHECK_EQ(st.rc, GR_OK);
    /* A fresh actor, perhaps in the same slot, gets none of it. */
    gr_ref fresh = spawn_tm(NULL);
    CHECK(!gr_ref_is_none(fresh));
    CHECK(probe_quiet_for(150));
    CHECK_EQ(total_dead(), 0);
    close_env(); /* ASan: every timer and timer map freed. */
}

#define CROWDS       10
#define CROWD_N      1000
#define CROWD_MAX_MS 200

/* Ten thousand live timers: ten actors start a thousand one-shots each
 * with delays spread over 1..200 ms; a random quarter is cancelled at once
 * and another quarter one by one while the others fire. Exactly the
 * uncancelled ones are handled, each once, none early, with its own id;
 * cancels return GR_OK until a one-shot is handled, then GR_ENOTFOUND.
 * Mutants caught: no cancel filter, a cancel that forgets the timer but
 * lets it fire, lost or duplicated timers under load. */
static void test_thousands(void)
{
    CHECK(open_env());
    gr_ref who[CROWDS];
    uint32_t n = (uint32_t)scaled(CROWD_N, 100);
    for (int i = 0; i < CROWDS; i++) {
        CHECK_EQ(gr_system_spawn(E.sys, &crowd_b, NULL, 0, &who[i]), GR_OK);
        struct crowd_cmd c = {.seed = 0x9e3779b97f4a7c15u * (uint64_t)(i + 1),
                              .n = n,
                              .max_ms = CROWD_MAX_MS};
        CHECK_EQ(probe_tell(who[i], C_CROWD, &c, sizeof c), GR_OK);
    }
    struct counts c[CROWDS];
    struct watch w;
    watch_start(&w, E.sys);
    int settled = 0;
    for (;;) {
        for (int i = 0; i < CROWDS; i++)
            CHECK_EQ(probe_tell(who[i], C_REPORT, NULL, 0), GR_OK);
        int all = 1;
        for (int i = 0; i < CROWDS; i++) {
            gr_msg *m;
            CHECK(probe_next(&m));
            int k = 0;
            while (k < CROWDS && !gr_ref_eq(who[k], m->from))
                k++;
            int ok = m->type == R_COUNTS && k < CROWDS &&
                     read_payload(m, &c[k], sizeof c[k]);
            gr_msg_free(m);
            CHECK(ok);
        }
        for (int i = 0; i < CROWDS; i++)
            all &= c[i].done && c[i].handled == c[i].expected &&
                   c[i].cancelled + c[i].expected == n;
        if (all && settled)
            break;
        if (all) {
            /* Past the last due time: nothing more may come. */
            sleep_ms(CROWD_MAX_MS + 100);
            settled = 1;
            continue;
        }
        settled = 0;
        if (watch_over(&w))
            break;
        sleep_ms(20);
    }
    uint32_t cancelled = 0;
    for (int i = 0; i < CROWDS; i++) {
        if (c[i].handled != c[i].expected || c[i].bad_msg || c[i].bad_dup ||
            c[i].bad_cancel || c[i].bad_rc || c[i].bad_start || c[i].early)
            fprintf(stderr,
                    "  crowd %d: handled %u expected %u cancelled %u; bad: "
                    "msg %u dup %u cancel %u rc %u start %u early %u\n",
                    i, c[i].handled, c[i].expected, c[i].cancelled,
                    c[i].bad_msg, c[i].bad_dup, c[i].bad_cancel, c[i].bad_rc,
                    c[i].bad_start, c[i].early);
        CHECK(c[i].done);
        CHECK_EQ(c[i].handled, c[i].expected);
        CHECK_EQ(c[i].cancelled + c[i].expected, n);
        CHECK_EQ(c[i].bad_msg, 0);
        CHECK_EQ(c[i].bad_dup, 0);
        CHECK_EQ(c[i].bad_cancel, 0);
        CHECK_EQ(c[i].bad_rc, 0);
        CHECK_EQ(c[i].bad_start, 0);
        CHECK_EQ(c[i].early, 0);
        cancelled += c[i].cancelled;
    }
    /* About half were cancelled (a quarter at once, most of the later
     * quarter in time). */
    CHECK(cancelled >= CROWDS * n / 4);
    CHECK(probe_quiet_for(20));
    CHECK_EQ(total_dead(), 0);
    close_env();
}

/* Starts and cancels racing with firings: one actor, thousands of timers
 * due in 0..2 ms (and some 1 ms periodic ones), cancelled at once, a few
 * starts later, in a later batch, or never, while it stays busy so that
 * timers fire and queue mid-batch. Every handled message belongs to a
 * timer not cancelled before it was handled; each uncancelled one-shot is
 * handled exactly once; every cancel's code fits what the actor knew.
 * Mutants caught: no cancel filter; cancels that report GR_ENOTFOUND for
 * a fired but unhandled one-shot. */
static void test_cancel_race(void)
{
    CHECK(open_env());
    for (int round = 0; round < 2; round++) {
        gr_ref r = GR_REF_NONE;
        CHECK_EQ(gr_system_spawn(E.sys, &racer_b, NULL, 0, &r), GR_OK);
        struct race_cmd rc = {.batches = (uint32_t)scaled(20, 4),
                              .per_batch = 250,
                              .seed = 12345u + (uint64_t)round,
                              .spin_us = round == 0 ? 4 : 0};
        CHECK_EQ(probe_tell(r, C_RACE, &rc, sizeof rc), GR_OK);
        struct counts c = {0};
        struct watch w;
        watch_start(&w, E.sys);
        int settled = 0;
        for (;;) {
            CHECK_EQ(probe_tell(r, C_REPORT, NULL, 0), GR_OK);
            CHECK(probe_take(R_COUNTS, &c, sizeof c));
            int all = c.done && c.handled == c.expected;
            if (all && settled)
                break;
            if (all) {
                sleep_ms(50);
                settled = 1;
                continue;
            }
            settled = 0;
            if (watch_over(&w))
                break;
            sleep_ms(10);
        }
        if (c.bad_msg || c.bad_dup || c.bad_cancel || c.bad_rc || c.bad_start)
            fprintf(stderr,
                    "  racer: handled %u expected %u cancelled %u periodic "
                    "msgs %u; bad: msg %u dup %u cancel %u rc %u start %u\n",
                    c.handled, c.expected, c.cancelled, c.every_msgs, c.bad_msg,
                    c.bad_dup, c.bad_cancel, c.bad_rc, c.bad_start);
        CHECK(c.done);
        CHECK_EQ(c.handled, c.expected);
        CHECK_EQ(c.bad_msg, 0);
        CHECK_EQ(c.bad_dup, 0);
        CHECK_EQ(c.bad_cancel, 0);
        CHECK_EQ(c.bad_rc, 0);
        CHECK_EQ(c.bad_start, 0);
        CHECK(c.cancelled >= rc.batches * rc.per_batch / 4);
        CHECK(c.expected >= rc.batches * rc.per_batch / 4);
        CHECK_EQ(gr_stop(E.sys, r), GR_OK);
    }
    CHECK_EQ(total_dead(), 0);
    close_env();
}

/* Refused arguments: reserved types, data and len that disagree, a zero
 * period, id 0, payloads over max_payload (exactly max_payload is fine),
 * a NULL ctx; a refused start starts nothing. */
static void test_bad_args(void)
{
    gr_config cfg = {
        .workers = 2, .log_fn = quiet_log, .no_signals = 1, .max_payload = 256};
    CHECK(open_env_cfg(&cfg));
    gr_ref a = spawn_tm(NULL);
    uint64_t max = 256;
    CHECK_EQ(probe_tell(a, C_BAD, &max, sizeof max), GR_OK);
    struct bad b;
    CHECK(probe_take(R_BAD, &b, sizeof b));
    for (int i = 0; i < 9; i++)
        CHECK_EQ(b.rc[i], GR_EINVAL);
    CHECK_EQ(b.rc[9], GR_EMSGSIZE);
    CHECK_EQ(b.rc[10], GR_EMSGSIZE);
    CHECK_EQ(b.rc[11], GR_OK);
    CHECK_EQ(b.rc[12], GR_OK); /* Its cancel. */
    uint64_t id = 0, v = 1;
    CHECK_EQ(gr_timer_after(NULL, 1, T_TICK, &v, sizeof v, &id), GR_EINVAL);
    CHECK_EQ(gr_timer_every(NULL, 1, T_TICK, &v, sizeof v, &id), GR_EINVAL);
    CHECK(probe_quiet_for(100)); /* No refused start fired. */
    close_env();
}

/* A delay so long that ms * 10^6 would overflow 64 bits still does not
 * fire early (it once fired at once). */
static void test_huge_delay(void)
{
    CHECK(open_env());
    gr_ref a = spawn_tm(NULL);
    const uint64_t huge[] = {UINT64_MAX, UINT64_MAX / 1000000u + 1};
    for (int i = 0; i < 2; i++) {
        for (int every = 0; every < 2; every++) {
            struct start_cmd s = {.ms = huge[i],
                                  .tag = (uint64_t)(10 * i + every),
                                  .type = T_TICK,
                                  .every = every};
            struct started st = start_on(a, &s);
            CHECK_EQ(st.rc, GR_OK);
            CHECK(probe_quiet_for(100)); /* Not due for centuries. */
            CHECK_EQ(cancel_on(a, st.id), GR_OK);
        }
    }
    close_env();
}

/* Shutting the system down with timers pending is clean: thousands of
 * one-shots not due for a minute, periodic ones firing every millisecond
 * into busy mailboxes, starts still on their way to the I/O loop (an actor
 * starting timers nonstop until shutdown refuses them with GR_ESTOPPED);
 * terminate runs for every actor, and a start there is refused with
 * GR_ESTOPPED; nothing leaks (ASan).
 * Mutants caught (ASan): shutdown not freeing armed timers, or timers
 * still in the command list. */
static void test_shutdown_pending(void)
{
    for (int round = 0; round < 3 + FLOOD_ROUNDS; round++) {
        CHECK(open_env());
        atomic_store(&term_count, 0);
        atomic_store(&term_rc_after, 0);
        atomic_store(&term_rc_every, 0);
        struct tm_arg arg = {.term_timers = 1};
        struct many_cmd m = {.n_once = 500,
                             .once_ms = 60000,
                             .once_step = 1,
                             .n_every = 5,
                             .every_ms = 1};
        struct many_cmd z = {.n_once = 50}; /* Due at once. */
        /* Rounds from 3: shut down while one actor starts timers nonstop.
         * Many rounds: the I/O loop often takes the last starts before it
         * stops (they are then freed as armed timers); about one round in
         * three leaves some in the command list. */
        atomic_store(&flood_rc, GR_EFAILED);
        atomic_store(&flood_n, 0);
        if (round >= 3) {
            gr_ref f = spawn_tm(NULL);
            CHECK_EQ(probe_tell(f, C_FLOOD, NULL, 0), GR_OK);
            CHECK(drain_until(R_FLOODING, NULL, 0));
            sleep_ms(5);
        }
        for (int i = 0; i < 4; i++) {
            gr_ref a = spawn_tm(&arg);
            CHECK(!gr_ref_is_none(a));
            CHECK_EQ(probe_tell(a, C_MANY, &m, sizeof m), GR_OK);
            CHECK_EQ(probe_tell(a, C_MANY, &z, sizeof z), GR_OK);
        }
        /* Round 0 waits for the starts; the others shut down at once. */
        if (round == 0) {
            int got = 0;
            while (got < 8) {
                struct started st;
                CHECK(drain_until(R_STARTED, &st, sizeof st));
                CHECK_EQ(st.rc, GR_OK);
                got++;
            }
            sleep_ms(20);
        }
        gr_inbox_close(E.inbox);
        E.inbox = NULL;
        CHECK_EQ(gr_system_shutdown(E.sys), GR_OK);
        E.sys = NULL;
        probe_detach();
        CHECK_EQ(atomic_load(&term_count), 4);
        CHECK_EQ(atomic_load(&term_rc_after), GR_ESTOPPED);
        CHECK_EQ(atomic_load(&term_rc_every), GR_ESTOPPED);
        if (round >= 3) {
            CHECK_EQ(atomic_load(&flood_rc), GR_ESTOPPED);
            CHECK(atomic_load(&flood_n) > 0);
        }
    }
}

TEST_MAIN(TEST_CASE(test_after), TEST_CASE(test_zero_and_init),
          TEST_CASE(test_every), TEST_CASE(test_cancel_stops_firing),
          TEST_CASE(test_cancel_queued), TEST_CASE(test_cancel_codes),
          TEST_CASE(test_die_with_owner), TEST_CASE(test_thousands),
          TEST_CASE(test_cancel_race), TEST_CASE(test_bad_args),
          TEST_CASE(test_shutdown_pending), TEST_CASE(test_huge_delay))
