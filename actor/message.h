/*
 * Envelopes: the runtime's allocation for one message. The public gr_msg
 * view and the payload live in the same block, so a send copies the payload
 * exactly once.
 */
#ifndef GROVE_ACTOR_MESSAGE_H
#define GROVE_ACTOR_MESSAGE_H

#include <grove/actor.h>

#include "actor/mailbox.h"

/* Runtime-internal message types (from GR_MSG_RESERVED up). */
enum {
    GR__MSG_STOP = GR_MSG_RESERVED + 1, /* gr_stop(): exit with shutdown. */
};

/* One message in flight; owned by whoever holds it (sender, mailbox,
 * handler's runner, or an inbox's owner). */
typedef struct gr__env {
    gr__node node; /* Mailbox link; must stay first. */
    gr_msg msg;    /* What handlers see; msg.data points into payload. */
    _Alignas(16) unsigned char payload[];
} gr__env;

/*
 * Allocates an envelope and copies len bytes of data into it. The caller
 * owns the result and frees it with gr__env_free(). Returns NULL when out of
 * memory.
 */
gr__env *gr__env_new(uint32_t type, gr_ref from, gr_ref to, uint64_t corr,
                     const void *data, size_t len);

/* Frees an envelope from gr__env_new(). */
void gr__env_free(gr__env *e);

/* Returns the envelope that contains msg. */
static inline gr__env *gr__env_of(const gr_msg *msg)
{
    return (gr__env *)((char *)msg - offsetof(gr__env, msg));
}

#endif
