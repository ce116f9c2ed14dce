/*
 * Runtime requests: the ask machinery (actor/ask.c, actor/call.c) opened to
 * message types of the runtime's own, for the layers built on actor/. A
 * supervisor call is one: it travels as a request, is answered by a reply
 * with the request's corr, and whatever stops the answer (the target gone,
 * exited without answering, not taking such requests, its node down, a
 * timeout) reaches the caller as it would for a gr_ask or gr_call. Only an
 * actor that called gr__accept_calls() in its init sees such requests in
 * its handler.
 */
#ifndef GROVE_ACTOR_REQUEST_H
#define GROVE_ACTOR_REQUEST_H

#include <grove/ask.h>

struct gr__worker;

/* gr_ask_then() for any type, runtime types included. */
int gr__ask_any(gr_ctx *ctx, gr_ref target, uint32_t type, const void *data,
                size_t len, gr_duration timeout, gr_ask_fn fn, void *arg,
                uint64_t *corr);

/* gr_reply_to() with any type, runtime types included. */
int gr__reply_any(gr_ctx *ctx, const gr_request *req, uint32_t type,
                  const void *data, size_t len);

/* gr_call() for any type, runtime types included. */
int gr__call_any(gr_system *sys, gr_ref target, uint32_t type, const void *data,
                 size_t len, gr_duration timeout, gr_msg **reply);

/* The result a caller sees for an ask that failed with why: GR_ENOTSUP
 * (the target does not take the request), GR_ENOCONNECTION (its node is
 * not reachable) or GR_ENOACTOR (it is gone, or exited without
 * answering). */
int gr__ask_failed_rc(const gr_reason *why);

/* Reads a gr_duration (any call that waits): *ms is its length in milliseconds
 * (default_ms for GR_DURATION_DEFAULT), or -1 for no limit. Returns GR_OK or
 * GR_EINVAL. */
static inline int gr__duration_ms(gr_duration d, int64_t default_ms,
                                  int64_t *ms)
{
    if (d < GR_DURATION_DEFAULT)
        return GR_EINVAL;
    *ms = d == GR_DURATION_DEFAULT    ? default_ms
          : d == GR_DURATION_INFINITE ? -1
                                      : (int64_t)d;
    return GR_OK;
}

/* Ids a worker takes from next_id at a time. */
#define GR__ID_BLOCK 1024u

/* Returns a fresh monitor or ask id, unique in sys; w is the calling
 * thread's worker of sys, or NULL. */
uint64_t gr__new_id(gr_system *sys, struct gr__worker *w);

#endif
