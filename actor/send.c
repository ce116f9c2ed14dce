/* Sending: tell, send, stop, and the one delivery path they share. */
#include <semaphore.h>

#include "actor/message.h"
#include "actor/send.h"
#include "actor/system.h"

int gr__check_payload(gr_system *sys, const void *data, size_t len)
{
    if ((data == NULL) != (len == 0))
        return GR_EINVAL;
    if (len > sys->max_payload)
        return GR_EMSGSIZE;
    return GR_OK;
}

int gr__deliver(gr_system *sys, gr__worker *w, uint32_t type, gr_ref from,
                gr_ref to, uint64_t corr, const void *data, size_t len)
{
    gr_msg m = {.type = type,
                .from = from,
                .to = to,
                .corr = corr,
                .data = data,
                .len = len};
    return gr__deliver_msg(sys, w, &m);
}

int gr__deliver_msg(gr_system *sys, gr__worker *w, const gr_msg *m)
{
    /* relaxed: a send racing with shutdown's start is a caller bug anyway;
     * this only turns the common late send into a clean error. */
    if (atomic_load_explicit(&sys->shutting_down, memory_order_relaxed))
        return GR_ESTOPPED;
    uint32_t type = m->type;
    gr_ref to = m->to;
    gr__actor *a = NULL;
    if (to.node == 0 && to.incarnation == sys->incarnation)
        a = gr__idtable_acquire(&sys->ids, to.serial);
    if (a == NULL) {
        if (type < GR_MSG_RESERVED)
            gr__dead_message(sys, m, GR_DL_NO_ACTOR, GR_ENOACTOR);
        return GR_ENOACTOR;
    }
    /* Messages for an inbox are never pooled: its owner may free them
     * after the system, and with it the pools, is gone. */
    bool inbox = (a->flags & GR__ACTOR_INBOX) != 0;
    gr__envpool *pools = w != NULL && !inbox ? w->pools : NULL;
    gr__env *e = NULL;
    int rc = GR_OK;
    if (type == GR__MSG_STOP && inbox)
        rc = GR_EINVAL; /* Inboxes are closed by their owner, not stopped. */
    else if ((e = gr__env_new(pools, m)) == NULL)
        rc = GR_ENOMEM;
    if (rc != GR_OK) {
        if (gr__idtable_release(&sys->ids, to.serial))
            gr__actor_finalize(a);
        return rc;
    }
    gr__sched_note_send(&sys->sched, w);
    if (gr__mailbox_push(&a->mb_head, &e->node)) {
        if (inbox)
            sem_post((sem_t *)gr__actor_state(a));
        else
            gr__sched_submit(&sys->sched, w, a);
    }
    if (gr__idtable_release(&sys->ids, to.serial))
        gr__actor_finalize(a);
    return GR_OK;
}

int gr_tell(gr_ctx *ctx, gr_ref to, uint32_t type, const void *data, size_t len)
{
    if (ctx == NULL || type >= GR_MSG_RESERVED)
        return GR_EINVAL;
    gr_system *sys = ctx->self->sys;
    int rc = gr__check_payload(sys, data, len);
    if (rc != GR_OK)
        return rc;
    return gr__deliver(sys, ctx->w, type, gr__actor_ref(ctx->self), to, 0, data,
                       len);
}

int gr_send(gr_system *sys, gr_ref from, gr_ref to, uint32_t type,
            const void *data, size_t len)
{
    if (sys == NULL || type >= GR_MSG_RESERVED)
        return GR_EINVAL;
    int rc = gr__check_payload(sys, data, len);
    if (rc != GR_OK)
        return rc;
    return gr__deliver(sys, gr__worker_of(sys), type, from, to, 0, data, len);
}

int gr_stop(gr_system *sys, gr_ref target)
{
    if (sys == NULL)
        return GR_EINVAL;
    return gr__deliver(sys, gr__worker_of(sys), GR__MSG_STOP, GR_REF_NONE,
                       target, 0, NULL, 0);
}
