/*
 * Grove links and exit signals, as in Erlang/OTP.
 *
 * A link joins two actors both ways: when either exits, the other receives
 * an exit signal carrying the reason. An actor that receives a signal dies
 * with the same reason, unless the reason is normal (ignored) or the actor
 * traps exits: then the signal becomes an ordinary message of type
 * GR_MSG_EXIT. gr_exit() sends a signal directly; a direct kill cannot be
 * trapped, and the actor then exits with reason killed. Signals and
 * messages from one sender to one receiver keep their order.
 *
 * Grove differs from OTP in one way on purpose: terminate runs on every
 * exit (it is the actor's destructor), not only when exits are trapped.
 *
 * Thread safety: functions taking a gr_ctx may be called only from that
 * actor's own callbacks; gr_system_exit() from any thread.
 */
#ifndef GROVE_LINK_H
#define GROVE_LINK_H

#include <grove/actor.h>

/* Type of the message a trapping actor gets for an exit signal. Its from
 * field is the signal's sender and its payload a gr_exit_msg (read it with
 * gr_exit_read()). */
#define GR_MSG_EXIT (GR_MSG_RESERVED + 0x101u)

/* What an EXIT message says. */
typedef struct gr_exit_msg {
    gr_ref from;      /* The linked actor that exited, or the sender. */
    gr_reason reason; /* Its exit reason, or the reason sent. */
    uint32_t linked;  /* 1: from exited and a link carried its reason;
                         0: from sent it (gr_exit, gr_system_exit) and may
                         well be alive. */
    uint32_t reserved;
} gr_exit_msg;

/*
 * Links the current actor and target; linking twice, or to oneself, does
 * nothing. If target is already gone the current actor gets an exit signal
 * with reason GR_ENOACTOR (noproc) from it, as in OTP: it dies unless it
 * traps exits. Returns GR_OK, GR_EINVAL (NULL ctx, or target
 * GR_REF_NONE, which names no actor), GR_ENOMEM or GR_ESTOPPED.
 */
GR_API int gr_link(gr_ctx *ctx, gr_ref target);

/*
 * Removes the link between the current actor and target, if any. Once this
 * returns, no exit signal through that link reaches the current actor,
 * even one already on its way; a later gr_link() makes a new link, and
 * signals sent after it count again. Returns GR_OK or GR_EINVAL (NULL
 * ctx, or target GR_REF_NONE).
 */
GR_API int gr_unlink(gr_ctx *ctx, gr_ref target);

/*
 * Spawns an actor linked to the current one from birth, before its init
 * runs; otherwise exactly as gr_spawn(). If init fails, the spawn returns
 * the error and no signal is sent (Grove's choice: a failed start is an
 * error code, never a signal).
 */
GR_API int gr_spawn_link(gr_ctx *ctx, const gr_behaviour *b, const void *arg,
                         size_t arg_len, gr_ref *out);

/*
 * Sets whether the current actor traps exits: on (nonzero), exit signals
 * other than a direct kill arrive as GR_MSG_EXIT messages. Returns the
 * previous setting, or GR_EINVAL for a NULL ctx, or GR_ENOMEM.
 */
GR_API int gr_trap_exit(gr_ctx *ctx, int on);

/*
 * Sends target an exit signal with reason why (copied), from the current
 * actor (OTP's exit/2). A why of GR_EKILL kills even a trapping actor,
 * which then exits with GR_EKILLED; GR_OK is ignored unless target traps
 * exits or is the sender itself. Returns GR_OK, GR_EINVAL, GR_ENOACTOR
 * (target already gone), GR_ENOMEM or GR_ESTOPPED.
 */
GR_API int gr_exit(gr_ctx *ctx, gr_ref target, const gr_reason *why);

/* Sends an exit signal from any thread, with no sender (from is
 * GR_REF_NONE); otherwise exactly as gr_exit(). */
GR_API int gr_system_exit(gr_system *sys, gr_ref target, const gr_reason *why);

/* Reads an EXIT message into *out. Returns GR_OK, or GR_EINVAL when msg is
 * not a well-formed EXIT. */
GR_API int gr_exit_read(const gr_msg *msg, gr_exit_msg *out);

#endif
