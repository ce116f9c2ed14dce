/* Sending: tell, send, stop, and the one delivery path they share. */
#include <semaphore.h>
#include <string.h>

#include "actor/message.h"
#include "actor/mute.h"
#include "actor/remote.h"
#include "actor/runtime.h"
#include "actor/send.h"
#include "actor/system.h"

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

/* A send to another node: distribution's when it is an Erlang node (its
 * name, node_name, has an '@'; or distribution has seen it), else the
 * transport's, or a node_down dead letter when this system has none. */
static int deliver_remote(gr_system *sys, gr__worker *w, const gr_msg *m,
                          uint32_t node, const char *node_name,
                          const char *name)
{
    if (sys->dist != NULL &&
        (node_name != NULL ? strchr(node_name, '@') != NULL
                           : gr__dist_routes(sys->dist, node)))
        return gr__dist_send(sys->dist, node_name, name, m);
    /* acquire: pairs with gr__remote_install. */
    const gr__remote_ops *ops =
        atomic_load_explicit(&sys->remote_ops, memory_order_acquire);
    if (ops != NULL)
        return name != NULL ? ops->send_name(sys->remote, w, node, name, m)
                            : ops->send(sys->remote, w, m);
    if (m->type < GR_MSG_RESERVED) /* Named, when sent to a name. */
        gr__dead_message_named(sys, m, name, name != NULL ? strlen(name) : 0,
                               GR_DL_NODE_DOWN,
                               &(gr_reason){.code = GR_ENOCONNECTION});
    return GR_ENOCONNECTION;
}

/* Records m (to_name: the name it goes to on another node, or NULL) if
 * it is a tell sent from a traced actor's handler (not a timer's message,
 * nor one sent from outside in its name). */
static void trace_out_traced(gr_system *sys, gr__worker *w, const gr_msg *m,
                             const char *to_name)
{
    if (m->type >= GR_MSG_RESERVED || m->from.serial == 0 ||
        m->from.node != sys->node_id || w == NULL || w->turn_actor == NULL ||
        w->turn_actor->serial != m->from.serial)
        return;
    struct gr__control *c =
        atomic_load_explicit(&sys->events.control, memory_order_acquire);
    const char *b = w->turn_actor->b->name;
    if (c != NULL && gr__control_traced(c, m->from.serial, b))
        gr__control_trace(c, false, m->from.serial, b, m, to_name, 0);
}

/* trace_out_traced, while anything is traced: one relaxed load a send
 * otherwise. */
static inline void trace_out(gr_system *sys, gr__worker *w, const gr_msg *m,
                             const char *to_name)
{
    if (atomic_load_explicit(&sys->tracing, memory_order_relaxed) != 0)
        trace_out_traced(sys, w, m, to_name);
}

void gr__send_unpin(gr__worker *w)
{
    uint64_t serial = w->pin_serial;
    if (serial == 0)
        return;
    w->pin_serial = 0;
    if (gr__idtable_release(&w->sys->ids, serial))
        gr__actor_finalize(w->pin_actor);
}

/*
 * Resolves and pins the local actor serial names for a send from w (NULL:
 * not a worker), or returns NULL when it is gone. When a worker sends to
 * the same actor twice in a row, it keeps that pin until the turn ends, so
 * that a turn of many sends to one actor (fan-in) takes one pin, not one
 * per send: pins are atomic writes to a line every sender to that actor
 * shares. A single send (ping-pong) pins and unpins at once, as before.
 * *own says whether the caller must release the pin.
 */
static gr__actor *resolve(gr_system *sys, gr__worker *w, uint64_t serial,
                          bool *own)
{
    *own = true;
    if (w != NULL && w->pin_serial == serial) {
        if (gr__idtable_alive(&sys->ids, serial)) {
            *own = false;
            return w->pin_actor;
        }
        gr__send_unpin(w); /* It exited: the acquire below fails. */
    }
    gr__actor *a = gr__idtable_acquire(&sys->ids, serial);
    if (a != NULL && w != NULL && w->pin_serial == 0) {
        if (w->last_target != serial) {
            w->last_target = serial; /* Kept on its second send in a row. */
        } else {
            w->pin_serial = serial;
            w->pin_actor = a;
            *own = false;
        }
    }
    return a;
}

int gr__deliver_msg(gr_system *sys, gr__worker *w, const gr_msg *m)
{
    /* relaxed: a send racing with shutdown's start is a caller bug anyway;
     * this only turns the common late send into a clean error. */
    if (atomic_load_explicit(&sys->shutting_down, memory_order_relaxed))
        return GR_ESTOPPED;
    trace_out(sys, w, m, NULL);
    uint32_t type = m->type;
    gr_ref to = m->to;
    gr__actor *a = NULL;
    bool own = false;
    if (to.node != sys->node_id)
        return deliver_remote(sys, w, m, to.node, NULL, NULL);
    if (to.incarnation == sys->incarnation)
        a = resolve(sys, w, to.serial, &own);
    if (a == NULL) {
        if (type < GR_MSG_RESERVED)
            gr__dead_message(sys, m, GR_DL_NO_ACTOR,
                             &(gr_reason){.code = GR_ENOACTOR});
        return GR_ENOACTOR;
    }
    /* Messages for an inbox are never pooled: its owner may free them
     * after the system, and with it the pools, is gone. */
    bool inbox = (a->flags & GR__ACTOR_INBOX) != 0;
    /* A worker's pools, or on this system's I/O thread its own. */
    gr__envpool *pools = inbox                                 ? NULL
                         : w != NULL                           ? w->pools
                         : gr__envpool_mine() == sys->io_pools ? sys->io_pools
                                                               : NULL;
    gr__env *e = NULL;
    int rc = GR_OK;
    /* relaxed: a counter; see gr__actor. Added before the push, so the
     * runner never pops more than it counts here. */
    uint64_t before =
        atomic_fetch_add_explicit(&a->pushed, 1, memory_order_relaxed);
    if (type == GR__MSG_STOP && inbox)
        rc = GR_EINVAL; /* Inboxes are closed by their owner, not stopped. */
    else if (type >= GR_MSG_RESERVED && (m->flags & GR_MSG_REQUEST) &&
             !atomic_load_explicit(&a->takes_calls, memory_order_relaxed))
        rc = GR_ENOTSUP; /* A runtime request it does not take (request.h):
                            refused here, so nobody waits on its mailbox. */
    else if (a->mb_cap != 0 && type < GR_MSG_RESERVED &&
             gr__actor_queued_before(a, before) >= a->mb_cap)
        rc = GR_EMAILBOXFULL; /* Runtime messages are never refused. */
    else if ((e = gr__env_new(pools, m)) == NULL)
        rc = GR_ENOMEM;
    if (rc != GR_OK) {
        atomic_fetch_sub_explicit(&a->pushed, 1, memory_order_relaxed);
        if (own && gr__idtable_release(&sys->ids, to.serial))
            gr__actor_finalize(a);
        if (rc == GR_EMAILBOXFULL)
            gr__dead_message(sys, m, GR_DL_MAILBOX_FULL,
                             &(gr_reason){.code = rc});
        return rc;
    }
    gr__sched_note_send(&sys->sched, w);
    gr__mute_note(w, a, m, before);
    if (gr__mailbox_push(&a->mb_head, &e->node)) {
        if (inbox)
            sem_post((sem_t *)gr__actor_state(a));
        else
            gr__sched_submit(&sys->sched, w, a);
    }
    if (own && gr__idtable_release(&sys->ids, to.serial))
        gr__actor_finalize(a);
    return GR_OK;
}

int gr_tell(gr_ctx *ctx, gr_ref to, uint32_t type, const void *data, size_t len)
{
    if (ctx == NULL || type >= GR_MSG_RESERVED)
        return GR_EINVAL;
    gr_system *sys = gr__ctx_sys(ctx);
    int rc = gr__check_payload(sys, data, len);
    if (rc != GR_OK)
        return rc;
    return gr__deliver(sys, ctx->w, type, gr__actor_ref(ctx->self), to, 0, data,
                       len);
}

/*
 * Sends to a name: "name" on this node, or "name@node" on that node (whose
 * transport resolves it there). An unknown name is an unknown_name dead
 * letter.
 */
static int send_to_name(gr_system *sys, gr__worker *w, gr_ref from,
                        const char *name, uint32_t type, const void *data,
                        size_t len)
{
    int rc = gr__check_payload(sys, data, len);
    if (rc != GR_OK)
        return rc;
    gr_msg m = {.type = type, .from = from, .data = data, .len = len};
    char local[GR_NAME_MAX + 1];
    const char *node;
    if ((rc = gr__split_name(name, local, &node)) != GR_OK)
        return rc;
    if (node != NULL && strcmp(node, sys->node_name) != 0) {
        trace_out(sys, w, &m, name);
        return deliver_remote(sys, w, &m, gr__node_id(node, strlen(node)), node,
                              local);
    }
    if (gr_whereis(sys, local, &m.to) != GR_OK) {
        gr__dead_letter_named(sys, w, &m, local, strlen(local),
                              GR_DL_UNKNOWN_NAME);
        return GR_ENOTFOUND;
    }
    return gr__deliver_msg(sys, w, &m);
}

int gr_tell_name(gr_ctx *ctx, const char *name, uint32_t type, const void *data,
                 size_t len)
{
    if (ctx == NULL || name == NULL || type >= GR_MSG_RESERVED)
        return GR_EINVAL;
    return send_to_name(gr__ctx_sys(ctx), ctx->w, gr__actor_ref(ctx->self),
                        name, type, data, len);
}

int gr_system_tell_name(gr_system *sys, gr_ref from, const char *name,
                        uint32_t type, const void *data, size_t len)
{
    if (sys == NULL || name == NULL || type >= GR_MSG_RESERVED)
        return GR_EINVAL;
    return send_to_name(sys, gr__worker_of(sys), from, name, type, data, len);
}

int gr_system_tell(gr_system *sys, gr_ref from, gr_ref to, uint32_t type,
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
