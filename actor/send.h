/*
 * The one delivery path every send goes through (tell, send, stop, and the
 * runtime's own signals such as monitor requests and DOWN messages).
 */
#ifndef GROVE_ACTOR_SEND_H
#define GROVE_ACTOR_SEND_H

#include <stdbool.h>

#include <grove/actor.h>

struct gr__worker;

/*
 * Delivers one message: resolves and pins the target, copies the payload
 * into an envelope, pushes it, schedules the target if its mailbox was
 * empty, then unpins (finalising the target if it exited meanwhile and this
 * was the last pin). w is the calling thread's worker of sys, or NULL.
 * Returns GR_OK; GR_ENOACTOR when the target is gone (an application
 * message then becomes a dead letter; a runtime one is dropped);
 * GR_EINVAL for a stop sent to an inbox; GR_ENOMEM; GR_ESTOPPED. Arguments
 * are not checked here: the public entry points do that.
 */
int gr__deliver(gr_system *sys, struct gr__worker *w, uint32_t type,
                gr_ref from, gr_ref to, uint64_t corr, const void *data,
                size_t len);

/* gr__deliver() of a whole message, flags included. */
int gr__deliver_msg(gr_system *sys, struct gr__worker *w, const gr_msg *m);

/* Whether the actor of ref (on this system) has a deep mailbox, for a
 * thread that delivers from outside the workers and can hold back where
 * its messages come from (the distribution reader stops reading a
 * connection): at least GR__MUTE_HIGH messages queued, or, when `held`
 * (it is held back already), more than GR__MUTE_LOW, the depth at which
 * an overloaded actor resumes muted senders (actor/mute.h). False for an
 * actor that is gone, or on another node. Any thread. */
bool gr__backlogged(gr_system *sys, gr_ref ref, bool held);

/* Drops the pin w's sends keep on the first actor a turn sends to (see
 * resolve in send.c), finalising the actor if it exited meanwhile. Called
 * by w's loop between turns. */
void gr__send_unpin(struct gr__worker *w);

#endif
