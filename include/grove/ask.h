/*
 * Grove asks: requests with a correlation id and a timeout, as Erlang's
 * gen_server:call and Akka's ask.
 *
 * gr_ask() sends a request (flag GR_MSG_REQUEST, a fresh id in corr) and
 * returns at once. Exactly one answer then reaches the asker, as a message
 * with flag GR_MSG_REPLY and the same corr:
 *   - the callee's reply (its own type and payload), or
 *   - GR_MSG_TIMEOUT when no reply came within the timeout, or
 *   - GR_MSG_ASK_FAILED when the callee exited before replying (its
 *     payload is the exit reason; read it with gr_ask_failed_read()).
 * With gr_ask_then() the answer goes to a continuation instead of handle,
 * in the asker's turn, with the asker's state. A reply that comes after
 * the timeout, or to an asker that has exited, becomes a dead letter with
 * reason expired_reply; it never shows up as a stray message.
 *
 * The callee answers with gr_reply(), in the handler call that got the
 * request or later (keep a gr_request from gr_request_of() and use
 * gr_reply_to()). If the callee exits with the request unanswered, queued
 * or kept, the asker gets GR_MSG_ASK_FAILED at once rather than waiting for
 * the timeout. Only the first reply to a request counts. A request may be
 * handed on: another actor given its gr_request may answer it with
 * gr_reply_to() (the answer's from is then that actor); the callee still
 * counts it unanswered until the answer reaches the asker.
 *
 * gr_call() is the blocking form for threads that are not actors.
 *
 * Thread safety: functions taking a gr_ctx may be called only from that
 * actor's own callbacks; gr_call() from any thread that is not running a
 * callback.
 */
#ifndef GROVE_ASK_H
#define GROVE_ASK_H

#include <grove/actor.h>

/* Type of the answer when no reply came in time; no payload, from is the
 * callee. */
#define GR_MSG_TIMEOUT (GR_MSG_RESERVED + 0x102u)
/* Type of the answer when the callee exited (or never existed) before
 * replying; the payload is a gr_reason, from is the callee. */
#define GR_MSG_ASK_FAILED (GR_MSG_RESERVED + 0x103u)

/* Who asked what: enough to reply later. */
typedef struct gr_request {
    gr_ref from;   /* The asker. */
    uint64_t corr; /* The ask's id. */
} gr_request;

/*
 * A continuation for gr_ask_then(): called in the asker's turn with its
 * state, the answer (a reply, GR_MSG_TIMEOUT or GR_MSG_ASK_FAILED) and the
 * arg given to gr_ask_then(). Returns as handle does.
 */
typedef int (*gr_ask_fn)(gr_ctx *ctx, void *state, const gr_msg *answer,
                         void *arg);

/*
 * Sends target a request of type (an application type) with a copy of
 * data, to be answered within timeout (a gr_duration: GR_DURATION_DEFAULT
 * is 5 s, OTP's default; GR_DURATION_INFINITE never times out;
 * GR_DURATION_ZERO times out as soon as the timer thread looks, within a
 * few ms, so a target that answers at once may still win).
 * Stores the ask's id in *corr (may be NULL). Returns
 * GR_OK (exactly one answer follows), GR_ENOACTOR (target already gone; no
 * answer follows), GR_EMAILBOXFULL (the target's bounded mailbox is full;
 * no answer follows), GR_ENOCONNECTION or GR_EBACKPRESSURE (its node is
 * not connected, or the link there is full; no answer follows), GR_EINVAL,
 * GR_EMSGSIZE, GR_ENOMEM or GR_ESTOPPED (GR_EINVAL also for a timeout
 * below GR_DURATION_DEFAULT). If the target's node goes down
 * before it answers, the answer is a GR_MSG_ASK_FAILED with reason
 * noconnection, at once.
 * The timeout is noticed within a few milliseconds after it passes; a
 * reply that arrives before then is still the answer.
 */
GR_API int gr_ask(gr_ctx *ctx, gr_ref target, uint32_t type, const void *data,
                  size_t len, gr_duration timeout, uint64_t *corr);

/* As gr_ask(), but the answer goes to fn (with arg) instead of handle. */
GR_API int gr_ask_then(gr_ctx *ctx, gr_ref target, uint32_t type,
                       const void *data, size_t len, gr_duration timeout,
                       gr_ask_fn fn, void *arg, uint64_t *corr);

/*
 * Returns who sent request msg and its id, to answer later with
 * gr_reply_to(); a msg without GR_MSG_REQUEST gives a zero corr.
 */
GR_API gr_request gr_request_of(const gr_msg *msg);

/*
 * Answers req with a message of type (an application type) and a copy of
 * data. Returns GR_OK (also when the asker no longer waits: the reply then
 * becomes an expired_reply dead letter), GR_EMAILBOXFULL (the asker's
 * bounded mailbox is full: a mailbox_full dead letter, and the ask will
 * time out), GR_EINVAL (NULL ctx, no request, reserved type, data and len
 * disagree), GR_EMSGSIZE, GR_ENOMEM or GR_ESTOPPED.
 */
GR_API int gr_reply_to(gr_ctx *ctx, const gr_request *req, uint32_t type,
                       const void *data, size_t len);

/* Answers request msg now; gr_reply_to() with gr_request_of(msg). Returns
 * GR_CONTINUE on success, so a handler may `return gr_reply(...)`; but
 * msg must be a request: otherwise it returns GR_EINVAL, which returned
 * from a handler crashes the actor (check GR_MSG_REQUEST first when the
 * type may also come as a tell). */
GR_API int gr_reply(gr_ctx *ctx, const gr_msg *msg, uint32_t type,
                    const void *data, size_t len);

/* Reads a GR_MSG_ASK_FAILED message's reason into *out. Returns GR_OK, or
 * GR_EINVAL when msg is not a well-formed GR_MSG_ASK_FAILED. */
GR_API int gr_ask_failed_read(const gr_msg *msg, gr_reason *out);

/*
 * Asks target from a thread that is not an actor and waits for the answer,
 * giving up no earlier than timeout (a gr_duration: GR_DURATION_DEFAULT is
 * 5 s, GR_DURATION_INFINITE never gives up, GR_DURATION_ZERO only takes
 * an answer that is already there). On
 * GR_OK stores the reply in *reply, which the caller frees with
 * gr_msg_free(); on any error *reply is NULL.
 * Returns GR_OK, GR_ETIMEDOUT, GR_ENOACTOR (target gone, or it exited
 * before replying), GR_ENOCONNECTION (its node is not connected, or went
 * down before it replied), GR_EBACKPRESSURE (the link to its node is
 * full), GR_EMAILBOXFULL, GR_EWRONGTHREAD (called from inside
 * a callback), GR_EINVAL (also a timeout below GR_DURATION_DEFAULT),
 * GR_EMSGSIZE, GR_ENOMEM or GR_ESTOPPED (the system is stopping: refused,
 * or given up once gr_system_stop() was called or a shutdown began).
 */
GR_API int gr_call(gr_system *sys, gr_ref target, uint32_t type,
                   const void *data, size_t len, gr_duration timeout,
                   gr_msg **reply);

#endif
