/*
 * Runtime timers: "send this message to that actor after so many
 * milliseconds", kept by the I/O thread's libev loop. Any thread may start
 * or cancel one; requests reach the loop through its async watcher. Used by
 * supervisors (shutdown timeouts, restart backoff); issue-4's public timers
 * will build on it.
 */
#ifndef GROVE_ACTOR_TIMER_H
#define GROVE_ACTOR_TIMER_H

#include <stdint.h>

#include <grove/actor.h>

struct gr__io;

/*
 * Arranges for a message of type (no payload, corr as given, from
 * GR_REF_NONE) to be delivered to `to` after ms milliseconds, and stores
 * the timer's id in *id (may be NULL). A message for an actor that has
 * exited meanwhile is dropped silently when type is a runtime type.
 * Returns GR_OK, GR_ENOMEM or GR_ESTOPPED.
 */
int gr__timer_start(gr_system *sys, uint64_t ms, gr_ref to, uint32_t type,
                    uint64_t corr, uint64_t *id);

/* Cancels timer id if it has not fired; a late cancel is harmless. */
void gr__timer_cancel(gr_system *sys, uint64_t id);

/* Loop thread: arms started timers and drops cancelled ones. */
void gr__timers_poll(struct gr__io *io);

/* Frees every timer left; the loop thread has ended. */
void gr__timers_destroy(struct gr__io *io);

#endif
