/*
 * Grove timers: messages an actor sends itself after a delay, once or
 * periodically, as Akka's timers do.
 *
 * A timer's message has the type and payload given when it was started,
 * the flag GR_MSG_TIMER, from the actor itself, and corr set to the timer's
 * id. Timers belong to the actor that starts them: cancelling one means its
 * message is never handled, even one already queued, and all of an actor's
 * timers are cancelled when it exits. Timers run on the system's I/O
 * thread (libev); thousands may be live at once, each start and cancel
 * costing O(log n) there and O(1) to the caller.
 *
 * A timer fires no earlier than its delay, measured on the monotonic
 * clock; how much later depends on the I/O thread and on the actor's
 * mailbox. A periodic timer keeps its period from the first firing, and its
 * messages queue up if the actor is slower than the period.
 *
 * Thread safety: each call takes the ctx of the current callback and may
 * be made only from that actor's callbacks; a ctx kept past its callback,
 * or used from another thread, aborts the program with a line saying so,
 * as a send with one does.
 */
#ifndef GROVE_TIMER_H
#define GROVE_TIMER_H

#include <grove/actor.h>

/*
 * Sends the current actor a message of type (an application type) with a
 * copy of data after ms milliseconds, once. Stores the timer's id in *id
 * (may be NULL). Returns GR_OK, GR_EINVAL (NULL ctx, reserved type, data
 * and len disagree), GR_EMSGSIZE, GR_ENOMEM or GR_ESTOPPED.
 */
GR_API int gr_timer_after(gr_ctx *ctx, uint64_t ms, uint32_t type,
                          const void *data, size_t len, uint64_t *id);

/*
 * As gr_timer_after(), but every ms milliseconds (ms > 0) until cancelled
 * or the actor exits; the first message comes after ms.
 */
GR_API int gr_timer_every(gr_ctx *ctx, uint64_t ms, uint32_t type,
                          const void *data, size_t len, uint64_t *id);

/*
 * Cancels the current actor's timer id: once this returns, no message of
 * it is handled, not even one already in the mailbox. Returns GR_OK, or
 * GR_ENOTFOUND when id is not a live timer of this actor (it fired once
 * and its message was handled, or it was cancelled), or GR_EINVAL.
 */
GR_API int gr_timer_cancel(gr_ctx *ctx, uint64_t id);

#endif
