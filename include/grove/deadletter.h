/*
 * Grove dead letters you can watch: every message that cannot be
 * delivered is counted by reason (gr_stats.dead_letters), logged (the
 * first gr_config.dead_letter_log_limit one by one, then a summary every
 * dead_letter_summary_ms), and sent as a record to every subscribed actor.
 *
 * Thread safety: the functions taking a gr_ctx may be called only from
 * that actor's callbacks; gr_dead_letter_read() from anywhere.
 */
#ifndef GROVE_DEADLETTER_H
#define GROVE_DEADLETTER_H

#include <grove/actor.h>

/* Type of the message a subscriber gets for each dead letter; its payload
 * is a gr_dead_letter (read it with gr_dead_letter_read()). */
#define GR_MSG_DEAD_LETTER (GR_MSG_RESERVED + 0x104u)

/* One undeliverable message. */
typedef struct gr_dead_letter {
    uint64_t time_ns;      /* When it was given up, CLOCK_REALTIME ns. */
    gr_ref from;           /* Its sender, or GR_REF_NONE. */
    gr_ref to;             /* Where it was going. */
    uint64_t corr;         /* Its correlation id (0 for a plain tell). */
    uint32_t type;         /* Its type. */
    gr_dead_reason reason; /* Why it could not be delivered. */
    /* The name it was sent to, for a send by name (for "name@node", the
     * name part; `to` is then GR_REF_NONE); "" for a send by ref. */
    char name[GR_NAME_MAX + 1];
} gr_dead_letter;

/*
 * Subscribes the current actor to dead letters: from now on it gets a
 * GR_MSG_DEAD_LETTER message for each one, until it unsubscribes or
 * exits. Records about its own dead-letter messages are never sent (no
 * loops). Subscribing twice does nothing. Returns GR_OK, GR_EINVAL or
 * GR_ENOMEM.
 */
GR_API int gr_dead_letters_subscribe(gr_ctx *ctx);

/* Ends the current actor's subscription, if any. Returns GR_OK or
 * GR_EINVAL. */
GR_API int gr_dead_letters_unsubscribe(gr_ctx *ctx);

/* Reads a GR_MSG_DEAD_LETTER message into *out. Returns GR_OK, or GR_EINVAL
 * when msg is not a well-formed one. */
GR_API int gr_dead_letter_read(const gr_msg *msg, gr_dead_letter *out);

#endif
