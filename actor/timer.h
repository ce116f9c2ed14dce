/*
 * Runtime timers: "send this message after so many milliseconds", kept by
 * the I/O thread's libev loop. Any thread may start or cancel one; the
 * requests reach the loop through a command list (see timer.c for when
 * they wake it). Used by supervisors (shutdown timeouts, restart backoff),
 * asks (timeouts) and actors' own timers (grove/timer.h).
 */
#ifndef GROVE_ACTOR_TIMER_H
#define GROVE_ACTOR_TIMER_H

#include <stdint.h>

#include <grove/actor.h>

#include "actor/relations.h"

struct gr__io;

/*
 * Arranges for a copy of m to be delivered after ms milliseconds, and then
 * every every_ms milliseconds unless that is 0; a timer whose receiver is
 * gone stops. With GR_MSG_TIMER in m->flags the copy's corr is the timer's
 * id. Stores the id in *id (may be NULL). Returns GR_OK, GR_ENOMEM or
 * GR_ESTOPPED.
 */
int gr__timer_send(gr_system *sys, uint64_t ms, uint64_t every_ms,
                   const gr_msg *m, uint64_t *id);

/* Longest delay a timer keeps, in ms (about 146 years); longer ones are
 * cut to it, so that a deadline in ns never overflows. */
#define GR__TIMER_MAX_MS (UINT64_MAX / 4 / 1000000u)

/* Returns ms in nanoseconds, saturating at GR__TIMER_MAX_MS. */
static inline uint64_t gr__ms_to_ns(uint64_t ms)
{
    return (ms < GR__TIMER_MAX_MS ? ms : GR__TIMER_MAX_MS) * 1000000u;
}

/* gr__timer_send() of a runtime message with no payload and no sender. */
int gr__timer_start(gr_system *sys, uint64_t ms, gr_ref to, uint32_t type,
                    uint64_t corr, uint64_t *id);

/* Cancels timer id if it has not fired; a late cancel is harmless. */
void gr__timer_cancel(gr_system *sys, uint64_t id);

/* In a's turn: whether the message of a's own timer m is still wanted
 * (GR__SIG_DELIVER) or was cancelled (GR__SIG_CONSUMED). */
gr__sig gr__timer_arrived(gr__actor *a, const gr_msg *m);

/* Cancels all of exiting actor a's own timers (a->rel is set). */
void gr__timers_exit(gr__actor *a);

/* Sets up io's timer state before the loop exists; GR_OK or GR_ESYS. */
int gr__timers_init(struct gr__io *io);

/* Sets up the watchers timers need once io's loop exists. */
void gr__timers_attach(struct gr__io *io);

/* Loop thread: arms started timers and drops cancelled ones. */
void gr__timers_poll(struct gr__io *io);

/* Frees every timer left and the command list; the loop has ended. */
void gr__timers_destroy(struct gr__io *io);

#endif
