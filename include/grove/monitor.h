/*
 * Grove monitors: one-way watches on an actor's exit, as in Erlang/OTP.
 *
 * gr_monitor() asks to be told when an actor exits. The watcher then gets
 * exactly one message of type GR_MSG_DOWN for that monitor, carrying the
 * exit reason; if the actor is already gone it gets one at once with reason
 * GR_ENOACTOR (OTP's noproc). Several monitors on one actor each fire. A
 * DOWN comes after every message the exiting actor sent the watcher before
 * it exited. Monitors vanish with their watcher.
 *
 * Thread safety: both calls take a gr_ctx, so only an actor's own callbacks
 * may make them.
 */
#ifndef GROVE_MONITOR_H
#define GROVE_MONITOR_H

#include <grove/actor.h>

/* Type of the message a watcher gets when a monitored actor exits. Its
 * corr field is the monitor id, its from field the actor that exited, and
 * its payload a gr_down (read it with gr_down_read()). */
#define GR_MSG_DOWN (GR_MSG_RESERVED + 0x100u)

/* What a DOWN message says. */
typedef struct gr_down {
    uint64_t monitor; /* The id gr_monitor() returned. */
    gr_ref target;    /* The actor that exited. */
    gr_reason reason; /* Its exit reason; code GR_ENOACTOR when it was
                         already gone, GR_ENOMEM when it could not record
                         the monitor. */
} gr_down;

/*
 * Starts monitoring target from the current actor and stores the monitor's
 * id in *id (may be NULL). Returns GR_OK (a DOWN will come, perhaps at once
 * with GR_ENOACTOR: for GR_REF_NONE too, as OTP's monitor of a pid that
 * is gone; unlike gr_link(), which refuses it), GR_EINVAL (NULL ctx, or
 * target is the current actor),
 * GR_ENOMEM, or GR_ESTOPPED (the system is shutting down; no DOWN comes).
 */
GR_API int gr_monitor(gr_ctx *ctx, gr_ref target, uint64_t *id);

/*
 * Removes a monitor of the current actor. Once this returns, no DOWN for
 * it reaches the handler, even one already queued (OTP's demonitor with the
 * flush option). Returns GR_OK, GR_EINVAL (NULL ctx) or GR_ENOTFOUND (not
 * an active monitor of this actor, e.g. its DOWN was already handled).
 */
GR_API int gr_demonitor(gr_ctx *ctx, uint64_t id);

/* Reads a DOWN message into *out. Returns GR_OK, or GR_EINVAL when msg is
 * not a well-formed DOWN. */
GR_API int gr_down_read(const gr_msg *msg, gr_down *out);

#endif
