/*
 * The probe: the one scripted actor the suites drive. A suite writes a
 * script (a table of steps, each a message type and the function that
 * runs it in the actor's handler, plus optional init, terminate and
 * catch-all functions), makes a behaviour from it with PROBE_BEHAVIOUR,
 * tells its actors commands, and reads what they report from the test's
 * inbox. Every probe also understands the common commands below (wait at
 * the gate, end the handler with a code, ping) and reports a message its script
 * does not take as a stray, so an unexpected message fails the case by name
 * instead of vanishing.
 *
 * One probe environment is open at a time (a case runs in its own
 * process). Public API only; every wait is bounded by WAIT_MS.
 */
#ifndef GROVE_TEST_PROBE_H
#define GROVE_TEST_PROBE_H

#include <grove/grove.h>

#include <errno.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "helpers.h"

/* A crash code no runtime path produces: a DOWN or an exit that carries it
 * can only come from a probe told to crash. */
#define PROBE_CRASH (-1000)
/* A PROBE_END code that makes the probe gr_stop() itself (the stop queues
 * behind its mailbox; the exit reason is GR_ESHUTDOWN) instead of
 * returning a code. */
#define PROBE_STOP_SELF 0x5e1f

/* Message types of the common commands and reports, far above any type a
 * suite uses. */
enum {
    PROBE_BLOCK = 0x50000, /* Reports PROBE_BLOCKED, waits at the gate. */
    PROBE_END,             /* int32_t: the handler ends with it. */
    PROBE_PING,            /* Reports PROBE_PONG. */
    PROBE_BLOCKED,         /* Report: in the handler, at the gate. */
    PROBE_PONG,            /* Report: the answer to PROBE_PING. */
    PROBE_RC,              /* Report: an int32_t return code. */
    PROBE_STRAY,           /* Report: struct probe_stray. */
};

/* A step: runs in the probe's handler for one message; returns what the
 * handler returns (GR_CONTINUE, GR_STOP, an error code). */
typedef int (*probe_step_fn)(gr_ctx *ctx, void *state, const gr_msg *m);

/* One line of a script: messages of type run fn. */
struct probe_step {
    uint32_t type;
    probe_step_fn fn;
};

/* What a probe does; the suite's part of the actor. */
struct probe_script {
    /* The commands; ends with a {0, NULL} line. Replies and timer
     * messages never match a step (whatever their type). */
    const struct probe_step *steps;
    /* Takes what no step names (replies, timers, DOWNs, dead letters);
     * returns GR_EUNHANDLED for what it does not take either, which is
     * then reported as a stray. NULL: nothing. */
    probe_step_fn other;
    /* As gr_behaviour's; NULL when not needed. */
    int (*init)(gr_ctx *ctx, void *state, const void *arg, size_t len);
    void (*terminate)(gr_ctx *ctx, void *state, const gr_reason *why);
};

/* PROBE_STRAY's payload: the message no step took. */
struct probe_stray {
    uint32_t type;
    uint32_t flags;
    gr_ref from;
    uint64_t len;
};

/* How many reports probe_take_match can pass over and keep. */
#define PROBE_HELD_MAX 1024

/* The open environment: the system, the inbox probes report to, the gate
 * PROBE_BLOCK waits at, and the reports probe_take_match passed over
 * (oldest first), which every take reads before the inbox. */
static struct {
    gr_system *sys;
    gr_inbox *inbox;
    gr_ref inbox_ref;
    sem_t gate;
    size_t nheld;
    gr_msg *held[PROBE_HELD_MAX];
} P;

/* ---- in the actor -------------------------------------------------------- */

/* Tells the test's inbox a report from this probe. */
static inline void probe_report(gr_ctx *ctx, uint32_t type, const void *p,
                                size_t len)
{
    (void)gr_system_tell(gr_ctx_system(ctx), gr_self(ctx), P.inbox_ref, type, p,
                         len);
}

/* Reports a return code (PROBE_RC). */
static inline void probe_report_rc(gr_ctx *ctx, int rc)
{
    int32_t v = rc;
    probe_report(ctx, PROBE_RC, &v, sizeof v);
}

/* Reports m as a stray: a message this probe was not meant to get. */
static inline void probe_stray(gr_ctx *ctx, const gr_msg *m)
{
    struct probe_stray s = {
        .type = m->type, .flags = m->flags, .from = m->from, .len = m->len};
    probe_report(ctx, PROBE_STRAY, &s, sizeof s);
}

/* Ends the handler as a PROBE_END code says: returns code, or for
 * PROBE_STOP_SELF stops this probe and returns GR_CONTINUE. */
static inline int probe_end_with(gr_ctx *ctx, int32_t code)
{
    if (code != PROBE_STOP_SELF)
        return code;
    (void)gr_stop(gr_ctx_system(ctx), gr_self(ctx));
    return GR_CONTINUE;
}

/* Waits at the gate until the test opens it, WAIT_MS at most (so a broken
 * case still ends). */
static inline void probe_gate_wait(void)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    while (sem_timedwait(&P.gate, &dl) != 0 && errno == EINTR)
        ;
}

/* Reports PROBE_BLOCKED and waits at the gate: PROBE_BLOCK's work, for a
 * step that waits at the gate and then goes on in the same handler call. */
static inline void probe_block_here(gr_ctx *ctx)
{
    probe_report(ctx, PROBE_BLOCKED, NULL, 0);
    probe_gate_wait();
}

/* Runs a common command; returns 1 and stores the handler's code in *rc,
 * or 0 if m is not one. */
static inline int probe_common(gr_ctx *ctx, const gr_msg *m, int *rc)
{
    *rc = GR_CONTINUE;
    switch (m->type) {
    case PROBE_BLOCK:
        probe_block_here(ctx);
        return 1;
    case PROBE_END: {
        int32_t code;
        *rc = read_payload(m, &code, sizeof code) ? probe_end_with(ctx, code)
                                                  : GR_EUNHANDLED;
        return 1;
    }
    case PROBE_PING:
        probe_report(ctx, PROBE_PONG, NULL, 0);
        return 1;
    default:
        return 0;
    }
}

/* The handler of every probe: the script's step for m's type, else a
 * common command, else the script's catch-all, else a stray report. */
static inline int probe_handle(const struct probe_script *s, gr_ctx *ctx,
                               void *state, const gr_msg *m)
{
    int rc;
    if (!(m->flags & (GR_MSG_REPLY | GR_MSG_TIMER)))
        for (const struct probe_step *st = s->steps; st->fn != NULL; st++)
            if (st->type == m->type)
                return st->fn(ctx, state, m);
    if (probe_common(ctx, m, &rc))
        return rc;
    if (s->other != NULL && (rc = s->other(ctx, state, m)) != GR_EUNHANDLED)
        return rc;
    probe_stray(ctx, m);
    return GR_CONTINUE;
}

/*
 * Defines `static const gr_behaviour var` named name_str whose actors run
 * script (a struct probe_script object) with state_size bytes of state.
 */
#define PROBE_BEHAVIOUR(var, name_str, state_size_, script)                    \
    static int var##_handle(gr_ctx *ctx, void *state, const gr_msg *m)         \
    {                                                                          \
        return probe_handle(&(script), ctx, state, m);                         \
    }                                                                          \
    static int var##_init(gr_ctx *ctx, void *state, const void *arg,           \
                          size_t len)                                          \
    {                                                                          \
        return (script).init != NULL ? (script).init(ctx, state, arg, len)     \
                                     : GR_OK;                                  \
    }                                                                          \
    static void var##_terminate(gr_ctx *ctx, void *state,                      \
                                const gr_reason *why)                          \
    {                                                                          \
        if ((script).terminate != NULL)                                        \
            (script).terminate(ctx, state, why);                               \
    }                                                                          \
    static const gr_behaviour var = {.name = name_str,                         \
                                     .state_size = (state_size_),              \
                                     .init = var##_init,                       \
                                     .handle = var##_handle,                   \
                                     .terminate = var##_terminate}

/* ---- in the test --------------------------------------------------------- */

/* Makes e's system and inbox the ones probes report to; opens the gate's
 * semaphore closed. */
static inline void probe_attach(struct env *e)
{
    P.sys = e->sys;
    P.inbox = e->inbox;
    P.inbox_ref = gr_inbox_ref(e->inbox);
    sem_init(&P.gate, 0, 0);
}

/* Undoes probe_attach (after the system is closed: messages taken from an
 * inbox outlive it) and frees the reports still held. */
static inline void probe_detach(void)
{
    while (P.nheld > 0)
        gr_msg_free(P.held[--P.nheld]);
    sem_destroy(&P.gate);
    memset(&P, 0, sizeof P);
}

/* Closes e, then undoes probe_attach. */
static inline void probe_close(struct env *e)
{
    env_close(e);
    probe_detach();
}

/* Tells to a command from nobody. */
static inline int probe_tell(gr_ref to, uint32_t type, const void *p,
                             size_t len)
{
    return gr_system_tell(P.sys, GR_REF_NONE, to, type, p, len);
}

/* Prints m when it is a stray report. */
static inline void probe_note_stray(const gr_msg *m)
{
    struct probe_stray s;
    if (m->type == PROBE_STRAY && read_payload(m, &s, sizeof s))
        fprintf(stderr,
                "  stray: actor %llu got type %#x flags %#x (%llu bytes) "
                "from %llu\n",
                (unsigned long long)m->from.serial, (unsigned)s.type,
                (unsigned)s.flags, (unsigned long long)s.len,
                (unsigned long long)s.from.serial);
}

/* Takes the oldest held report, else waits up to ms for one from the
 * inbox (a stray is named as it arrives); returns gr_inbox_recv's code. */
static inline int probe_recv(gr_msg **m, int ms)
{
    *m = NULL;
    if (P.nheld > 0) {
        *m = P.held[0];
        P.nheld--;
        memmove(&P.held[0], &P.held[1], P.nheld * sizeof P.held[0]);
        return GR_OK;
    }
    int rc = gr_inbox_recv(P.inbox, m, ms);
    if (rc == GR_OK)
        probe_note_stray(*m);
    return rc;
}

/* Takes the next report into *m (the caller frees it); 0 if none comes in
 * WAIT_MS. */
static inline int probe_next(gr_msg **m)
{
    if (probe_recv(m, WAIT_MS) != GR_OK) {
        fprintf(stderr, "  no report within %d ms\n", WAIT_MS);
        return 0;
    }
    return 1;
}

/* Says whether m is the report a take wants (arg: the take's). */
typedef int (*probe_match_fn)(const gr_msg *m, const void *arg);

/* Takes into *m (the caller frees it) the first report match accepts,
 * held or arriving within ms; the ones it passes over are held, in order,
 * for later takes. Returns 0, saying nothing, if none comes. */
static inline int probe_take_match(probe_match_fn match, const void *arg,
                                   int ms, gr_msg **m)
{
    *m = NULL;
    for (size_t i = 0; i < P.nheld; i++)
        if (match(P.held[i], arg)) {
            *m = P.held[i];
            P.nheld--;
            memmove(&P.held[i], &P.held[i + 1],
                    (P.nheld - i) * sizeof P.held[0]);
            return 1;
        }
    double end = test_now() + ms / 1000.0;
    for (;;) {
        double left = end - test_now();
        gr_msg *got;
        if (gr_inbox_recv(P.inbox, &got,
                          left > 0 ? (int)(left * 1000) + 1 : 0) != GR_OK)
            return 0;
        probe_note_stray(got);
        if (match(got, arg)) {
            *m = got;
            return 1;
        }
        if (P.nheld == PROBE_HELD_MAX) {
            fprintf(stderr, "  too many reports held; dropping the oldest\n");
            gr_msg_free(P.held[0]);
            P.nheld--;
            memmove(&P.held[0], &P.held[1], P.nheld * sizeof P.held[0]);
        }
        P.held[P.nheld++] = got;
    }
}

/* Takes the next report, which must be of type with a len-byte payload
 * (copied to out when out is not NULL); stores its sender in *from when
 * from is not NULL. */
static inline int probe_take_from(uint32_t type, void *out, size_t len,
                                  gr_ref *from)
{
    gr_msg *m;
    if (!probe_next(&m))
        return 0;
    int ok = m->type == type && m->len == len;
    if (ok && out != NULL && len > 0)
        memcpy(out, m->data, len);
    if (ok && from != NULL)
        *from = m->from;
    if (!ok)
        fprintf(stderr, "  report type %#x (%zu bytes), wanted %#x (%zu)\n",
                (unsigned)m->type, m->len, (unsigned)type, len);
    gr_msg_free(m);
    return ok;
}

/* As probe_take_from, without the sender. */
static inline int probe_take(uint32_t type, void *out, size_t len)
{
    return probe_take_from(type, out, len, NULL);
}

/* Takes a PROBE_RC report; returns its code (GR_ETIMEDOUT if none). */
static inline int probe_take_rc(void)
{
    int32_t rc;
    return probe_take(PROBE_RC, &rc, sizeof rc) ? rc : GR_ETIMEDOUT;
}

/* Returns 1 if no report comes for ms milliseconds; names what came. */
static inline int probe_quiet_for(int ms)
{
    gr_msg *m;
    if (probe_recv(&m, ms) == GR_ETIMEDOUT)
        return 1;
    fprintf(stderr, "  unexpected report type %#x from actor %llu\n",
            (unsigned)m->type, (unsigned long long)m->from.serial);
    gr_msg_free(m);
    return 0;
}

/* Sends who PROBE_BLOCK; returns 1 once it waits at the gate. */
static inline int probe_block(gr_ref who)
{
    return probe_tell(who, PROBE_BLOCK, NULL, 0) == GR_OK &&
           probe_take(PROBE_BLOCKED, NULL, 0);
}

/* Opens the gate for n waiters. */
static inline void probe_release(int n)
{
    for (int i = 0; i < n; i++)
        sem_post(&P.gate);
}

/* Pings who; returns 1 if its pong is the very next report, from who (so
 * everything it reported before the ping came first). */
static inline int probe_ping(gr_ref who)
{
    gr_ref from;
    if (probe_tell(who, PROBE_PING, NULL, 0) != GR_OK ||
        !probe_take_from(PROBE_PONG, NULL, 0, &from))
        return 0;
    if (!gr_ref_eq(from, who))
        fprintf(stderr, "  pong from actor %llu, pinged %llu\n",
                (unsigned long long)from.serial,
                (unsigned long long)who.serial);
    return gr_ref_eq(from, who);
}

/* Tells who to end its handler with code (a crash code, GR_STOP,
 * PROBE_STOP_SELF). */
static inline int probe_end(gr_ref who, int32_t code)
{
    return probe_tell(who, PROBE_END, &code, sizeof code);
}

#endif
