/*
 * The environment of the observability suites (test_observe_deadletters,
 * test_observe_events, test_observe_log): a node actor run by commands,
 * a system with recorded log lines and events, and helpers. Public API
 * only.
 */
#ifndef GROVE_TEST_OBSERVE_ENV_H
#define GROVE_TEST_OBSERVE_ENV_H

#include <grove/grove.h>

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "probe.h"

/* ---- the node actor: a probe --------------------------------------------- */

enum {
    M_WORK = 1,     /* Counted. */
    M_SUB,          /* int32 payload: 1 subscribes, 0 unsubscribes; PROBE_RC. */
    M_Q,            /* A request; the handler holds it. */
    M_RELEASE,      /* Replies M_ANSWER to the held request. */
    M_ASK,          /* gr_ref payload: asks it M_Q with a 20 ms timeout. */
    M_ASK_LONG,     /* The same with a 500 ms timeout. */
    M_MON,          /* gr_ref payload: monitors it; PROBE_RC. */
    M_TELLNAME,     /* Name payload: gr_tell_name(name, M_STRAY); PROBE_RC. */
    M_COUNT,        /* Reports R_COUNT. */
    M_ANSWER,       /* The type of a reply to M_Q. */
    M_STRAY = 0x2a, /* Types from here on: sent where they cannot go. */
    R_DEAD = 200,   /* A gr_dead_letter a subscriber got. */
    R_ASKED,        /* struct asked: gr_ask's result. */
    R_ANSWER,       /* uint32_t: the type of an answer to M_ASK. */
    R_DOWN,         /* gr_down. */
    R_COUNT,        /* uint32_t: M_WORKs handled. */
};

/* A failed init's code: distinct from any Grove code and from
 * PROBE_CRASH. */
#define CODE_INIT (-1001)

struct asked {
    int32_t rc;
    uint64_t corr;
};

struct node {
    uint32_t handled;
    gr_request held;
};

static inline int node_work(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx, (void)m;
    ((struct node *)state)->handled++;
    return GR_CONTINUE;
}

static inline int node_sub(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    int32_t on;
    if (!read_payload(m, &on, sizeof on))
        return GR_EUNHANDLED;
    probe_report_rc(ctx, on ? gr_dead_letters_subscribe(ctx)
                            : gr_dead_letters_unsubscribe(ctx));
    return GR_CONTINUE;
}

static inline int node_hold(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx;
    ((struct node *)state)->held = gr_request_of(m);
    return GR_CONTINUE;
}

static inline int node_release(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)m;
    /* A refused reply is a dead letter; the tests read that. */
    (void)gr_reply_to(ctx, &((struct node *)state)->held, M_ANSWER, NULL, 0);
    return GR_CONTINUE;
}

static inline int node_ask(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    gr_ref to;
    if (!read_payload(m, &to, sizeof to))
        return GR_EUNHANDLED;
    struct asked a = {0};
    a.rc = gr_ask(ctx, to, M_Q, NULL, 0, m->type == M_ASK ? 20 : 500, &a.corr);
    probe_report(ctx, R_ASKED, &a, sizeof a);
    return GR_CONTINUE;
}

static inline int node_monitor(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    gr_ref to;
    if (!read_payload(m, &to, sizeof to))
        return GR_EUNHANDLED;
    probe_report_rc(ctx, gr_monitor(ctx, to, NULL));
    return GR_CONTINUE;
}

static inline int node_tell_name(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    char name[GR_NAME_MAX + 1];
    if (m->len == 0 || m->len > GR_NAME_MAX)
        return GR_EUNHANDLED;
    memcpy(name, m->data, m->len);
    name[m->len] = '\0';
    probe_report_rc(ctx, gr_tell_name(ctx, name, M_STRAY, NULL, 0));
    return GR_CONTINUE;
}

static inline int node_count(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)m;
    const struct node *n = state;
    probe_report(ctx, R_COUNT, &n->handled, sizeof n->handled);
    return GR_CONTINUE;
}

/* What is not a command: dead letters and DOWNs are reported, answers to
 * M_ASK too, and the types sent where they cannot go are dropped. */
static inline int node_other(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    if (m->type == GR_MSG_DEAD_LETTER) {
        gr_dead_letter d;
        if (gr_dead_letter_read(m, &d) != GR_OK)
            return GR_EUNHANDLED;
        probe_report(ctx, R_DEAD, &d, sizeof d);
        return GR_CONTINUE;
    }
    if (m->type == GR_MSG_DOWN) {
        gr_down d;
        if (gr_down_read(m, &d) != GR_OK)
            return GR_EUNHANDLED;
        probe_report(ctx, R_DOWN, &d, sizeof d);
        return GR_CONTINUE;
    }
    if (m->flags & GR_MSG_REPLY) { /* An answer to M_ASK. */
        uint32_t t = m->type;
        probe_report(ctx, R_ANSWER, &t, sizeof t);
        return GR_CONTINUE;
    }
    if (m->type >= M_STRAY && m->type < R_DEAD)
        return GR_CONTINUE;
    return GR_EUNHANDLED;
}

static const struct probe_step node_steps[] = {
    {M_WORK, node_work},   {M_SUB, node_sub},
    {M_Q, node_hold},      {M_RELEASE, node_release},
    {M_ASK, node_ask},     {M_ASK_LONG, node_ask},
    {M_MON, node_monitor}, {M_TELLNAME, node_tell_name},
    {M_COUNT, node_count}, {0, NULL}};

static const struct probe_script node_script = {.steps = node_steps,
                                                .other = node_other};
PROBE_BEHAVIOUR(node_b, "node", sizeof(struct node), node_script);

static inline int fail_init(gr_ctx *ctx, void *state, const void *arg,
                            size_t len)
{
    (void)ctx, (void)state, (void)arg, (void)len;
    return CODE_INIT;
}

static const struct probe_script failing_script = {
    .steps = node_steps, .other = node_other, .init = fail_init};
/* An actor whose init always fails. */
PROBE_BEHAVIOUR(failing_b, "failing", sizeof(struct node), failing_script);

/* ---- the environment ----------------------------------------------------- */

static struct env E;
static struct capture cap;

/* Opens a system with two workers, no signal handlers, and (unless cfg
 * names a log_fn) the log captured in cap. */
static inline int open_env(gr_config cfg)
{
    capture_init(&cap);
    cfg.workers = 2;
    cfg.no_signals = 1;
    if (cfg.log_fn == NULL) {
        cfg.log_fn = capture_fn;
        cfg.log_arg = &cap;
    }
    if (!env_open(&E, &cfg))
        return 0;
    probe_attach(&E);
    return 1;
}

static inline void close_env(void)
{
    env_close(&E);
    probe_detach();
}

static inline gr_ref spawn(void)
{
    gr_ref r = GR_REF_NONE;
    (void)gr_system_spawn(E.sys, &node_b, NULL, 0, &r);
    return r;
}

static inline gr_ref spawn_capped(uint32_t cap_n)
{
    gr_ref r = GR_REF_NONE;
    gr_spawn_opts o = {.mailbox_cap = cap_n};
    (void)gr_system_spawn_opt(E.sys, &node_b, NULL, 0, &o, &r);
    return r;
}

/* Crashes who in its handler, with PROBE_CRASH. */
static inline int crash(gr_ref who)
{
    return probe_end(who, PROBE_CRASH);
}

/* Has who return GR_STOP from its handler: a normal exit. */
static inline int quit(gr_ref who)
{
    return probe_end(who, GR_STOP);
}

static inline int subscribe(gr_ref who, int32_t on)
{
    if (probe_tell(who, M_SUB, &on, sizeof on) != GR_OK)
        return GR_EFAILED;
    return probe_take_rc();
}

/* Asks who for its count of M_WORKs handled; UINT32_MAX on failure. A full
 * capped mailbox refuses M_COUNT, so retry while it drains. */
static inline uint32_t count_of(gr_ref who)
{
    double end = test_now() + WAIT_MS / 1000.0;
    int rc;
    while ((rc = probe_tell(who, M_COUNT, NULL, 0)) == GR_EMAILBOXFULL &&
           test_now() < end)
        sleep_ms(1);
    uint32_t n;
    if (rc != GR_OK || !probe_take(R_COUNT, &n, sizeof n))
        return UINT32_MAX;
    return n;
}

/* Makes watcher monitor target. Then waits until target has run (a round
 * trip through it): the monitor request put target in the run-next slot of
 * watcher's worker, which no other worker takes from, and a test that
 * blocks that worker next would leave target stranded there. */
static inline int monitor(gr_ref watcher, gr_ref target)
{
    if (probe_tell(watcher, M_MON, &target, sizeof target) != GR_OK ||
        probe_take_rc() != GR_OK)
        return 0;
    return count_of(target) != UINT32_MAX;
}

/* Takes one record from a subscriber: the record and who reported it. */
static inline int take_dead(gr_dead_letter *d, gr_ref *who)
{
    gr_msg *m;
    if (!probe_next(&m))
        return 0;
    int ok = m->type == R_DEAD && read_payload(m, d, sizeof *d);
    if (!ok)
        fprintf(stderr, "  expected a record, got type %u\n",
                (unsigned)m->type);
    if (who != NULL)
        *who = m->from;
    gr_msg_free(m);
    return ok;
}

static inline uint64_t now_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A reference that never resolves in these systems. */
static const gr_ref nobody = {999999, 0, 1};
/* A sender named in records (it need not exist). */
static const gr_ref sender = {12345, 0, 7};

/* Polls until n exits more than exited_before are counted (an exit
 * counted no longer resolves), up to WAIT_MS; returns 1 once they are. */
static inline int wait_gone(uint64_t exited_before, uint64_t n)
{
    return wait_exited(E.sys, exited_before + n) == exited_before + n;
}

/* ---- shared by the suites ---------------------------------------------- */

/* Checks the record's common fields; t0 was read before it was made. */
static inline int record_ok(const gr_dead_letter *d, gr_dead_reason reason,
                            gr_ref from, gr_ref to, uint32_t type, uint64_t t0)
{
    int ok = d->reason == reason && gr_ref_eq(d->from, from) &&
             gr_ref_eq(d->to, to) && d->type == type && d->time_ns >= t0 &&
             d->time_ns <= now_realtime_ns();
    if (!ok)
        fprintf(stderr,
                "  record: reason %d (want %d) from %llu to %llu type %#x "
                "(want %#x) corr %llu time %llu (t0 %llu)\n",
                (int)d->reason, (int)reason, (unsigned long long)d->from.serial,
                (unsigned long long)d->to.serial, (unsigned)d->type,
                (unsigned)type, (unsigned long long)d->corr,
                (unsigned long long)d->time_ns, (unsigned long long)t0);
    return ok;
}

/* Provokes one no_actor dead letter of the given type. */
static inline int provoke(uint32_t type)
{
    return gr_system_tell(E.sys, sender, nobody, type, NULL, 0) == GR_ENOACTOR;
}

/* Events an event_fn saw, copied (strings too), guarded by ev_lock. */
#define EV_MAX 512
struct seen_ev {
    gr_event ev;
    char behaviour[16], sup_name[16], child_id[16];
};
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct seen_ev evs[EV_MAX];
static unsigned nevs;

static inline void ev_fn(void *arg, const gr_event *ev)
{
    (void)arg;
    pthread_mutex_lock(&ev_lock);
    if (nevs < EV_MAX) {
        struct seen_ev *s = &evs[nevs++];
        s->ev = *ev;
        snprintf(s->behaviour, sizeof s->behaviour, "%s",
                 ev->behaviour ? ev->behaviour : "(null)");
        snprintf(s->sup_name, sizeof s->sup_name, "%s",
                 ev->sup_name ? ev->sup_name : "(null)");
        snprintf(s->child_id, sizeof s->child_id, "%s",
                 ev->child_id ? ev->child_id : "(null)");
        s->ev.behaviour = s->ev.sup_name = s->ev.child_id = NULL;
    }
    pthread_mutex_unlock(&ev_lock);
}

static inline void ev_reset(void)
{
    pthread_mutex_lock(&ev_lock);
    nevs = 0;
    pthread_mutex_unlock(&ev_lock);
}

/* Counts events of kind about actor (any actor when GR_REF_NONE and any
 * kind when kind is GR_EV_KIND_COUNT); copies the first into *out. */
static inline unsigned count_ev(gr_event_kind kind, gr_ref actor,
                                struct seen_ev *out)
{
    unsigned k = 0;
    pthread_mutex_lock(&ev_lock);
    for (unsigned i = 0; i < nevs; i++) {
        const gr_event *e = &evs[i].ev;
        if ((kind == GR_EV_KIND_COUNT || e->kind == kind) &&
            (gr_ref_is_none(actor) || gr_ref_eq(e->actor, actor))) {
            if (k++ == 0 && out != NULL)
                *out = evs[i];
        }
    }
    pthread_mutex_unlock(&ev_lock);
    return k;
}

/* Polls until an event of kind about actor was seen; copies it. */
static inline int wait_ev(gr_event_kind kind, gr_ref actor, struct seen_ev *out)
{
    double end = test_now() + WAIT_MS / 1000.0;
    while (count_ev(kind, actor, out) == 0) {
        if (test_now() >= end)
            return 0;
        sleep_ms(1);
    }
    return 1;
}

/* The fields no actor event uses are zero and "". */
static inline int actor_ev_ok(const struct seen_ev *s, uint64_t t0)
{
    return s->ev.time_ns >= t0 && s->ev.time_ns <= now_realtime_ns() &&
           gr_ref_is_none(s->ev.supervisor) && gr_ref_is_none(s->ev.child) &&
           s->ev.restarts == 0 && strcmp(s->sup_name, "") == 0 &&
           strcmp(s->child_id, "") == 0 && s->ev.dead.type == 0 &&
           gr_ref_is_none(s->ev.dead.to);
}

#endif
