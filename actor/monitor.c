#include "actor/relations.h"

#include <stdlib.h>
#include <string.h>

#include "actor/message.h"
#include "actor/request.h"
#include "actor/send.h"
#include "actor/system.h"

static int list_add(gr__mon_list *l, uint64_t id, gr_ref ref)
{
    if (l->n == l->cap) {
        unsigned cap = l->cap ? l->cap * 2 : 4;
        gr__mon_entry *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return GR_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (gr__mon_entry){id, ref};
    return GR_OK;
}

/* Removes the entry with id, storing it in *out (may be NULL). Returns
 * false when there is none. Order is not kept. */
static bool list_take(gr__mon_list *l, uint64_t id, gr__mon_entry *out)
{
    for (unsigned i = 0; i < l->n; i++) {
        if (l->v[i].id != id)
            continue;
        if (out != NULL)
            *out = l->v[i];
        l->v[i] = l->v[--l->n];
        return true;
    }
    return false;
}

/* Sends the DOWN for monitor id from target to watcher; returns what the
 * delivery returned. */
static int send_down(gr_system *sys, gr__worker *w, uint64_t id, gr_ref target,
                     gr_ref watcher, const gr_reason *why)
{
    gr_down d = {.monitor = id, .target = target, .reason = *why};
    return gr__deliver(sys, w, GR_MSG_DOWN, target, watcher, id, &d, sizeof d);
}

int gr_monitor(gr_ctx *ctx, gr_ref target, uint64_t *id)
{
    if (ctx == NULL)
        return GR_EINVAL;
    gr__actor *a = ctx->self;
    gr_system *sys = a->sys;
    gr_ref self = gr__actor_ref(a);
    if (gr_ref_eq(target, self))
        return GR_EINVAL;
    gr__relations *mon = gr__relations_of(a);
    if (mon == NULL)
        return GR_ENOMEM;
    uint64_t mid = gr__new_id(sys, ctx->w);
    if (list_add(&mon->watching, mid, target) != GR_OK)
        return GR_ENOMEM;
    int rc =
        gr__deliver(sys, ctx->w, GR__MSG_MONITOR, self, target, mid, NULL, 0);
    if (rc == GR_ENOACTOR || rc == GR_ENOCONNECTION)
        /* Already gone (or its node): the DOWN comes at once, behind this
         * message. If it cannot be queued, fail rather than leave a
         * monitor that never fires. */
        rc =
            send_down(sys, ctx->w, mid, target, self, &(gr_reason){.code = rc});
    if (rc != GR_OK) {
        list_take(&mon->watching, mid, NULL);
        return rc;
    }
    if (id != NULL)
        *id = mid;
    return GR_OK;
}

int gr_demonitor(gr_ctx *ctx, uint64_t id)
{
    if (ctx == NULL)
        return GR_EINVAL;
    gr__actor *a = ctx->self;
    gr__mon_entry e;
    if (a->rel == NULL || !list_take(&a->rel->watching, id, &e))
        return GR_ENOTFOUND;
    /* The target drops its record; a DOWN already on its way is dropped on
     * arrival, since the id is no longer in our watching list. */
    (void)gr__deliver(a->sys, ctx->w, GR__MSG_DEMONITOR, gr__actor_ref(a),
                      e.ref, id, NULL, 0);
    return GR_OK;
}

int gr_down_read(const gr_msg *msg, gr_down *out)
{
    if (msg == NULL || out == NULL || msg->type != GR_MSG_DOWN ||
        msg->len != sizeof *out)
        return GR_EINVAL;
    memcpy(out, msg->data, sizeof *out);
    return GR_OK;
}

gr__sig gr__monitor_signal(gr__actor *a, gr__worker *w, const gr_msg *m)
{
    switch (m->type) {
    case GR__MSG_MONITOR: {
        gr__relations *rel = gr__relations_of(a);
        if (rel == NULL || list_add(&rel->watchers, m->corr, m->from) != GR_OK)
            /* Out of memory: better an early DOWN than a silent loss. */
            (void)send_down(a->sys, w, m->corr, gr__actor_ref(a), m->from,
                            &(gr_reason){.code = GR_ENOMEM});
        return GR__SIG_CONSUMED;
    }
    case GR__MSG_DEMONITOR:
        if (a->rel != NULL)
            list_take(&a->rel->watchers, m->corr, NULL);
        return GR__SIG_CONSUMED;
    case GR_MSG_DOWN:
        /* Deliver only DOWNs of monitors still active; retire them. */
        return a->rel != NULL && list_take(&a->rel->watching, m->corr, NULL)
                   ? GR__SIG_DELIVER
                   : GR__SIG_CONSUMED;
    default:
        return GR__SIG_DELIVER;
    }
}

void gr__monitor_exit(gr__actor *a, gr__worker *w, const gr_reason *why)
{
    gr__relations *rel = a->rel;
    gr_system *sys = a->sys;
    gr_ref self = gr__actor_ref(a);
    for (unsigned i = 0; i < rel->watchers.n; i++)
        (void)send_down(sys, w, rel->watchers.v[i].id, self,
                        rel->watchers.v[i].ref, why);
    /* Our own monitors die with us: their targets forget us. */
    for (unsigned i = 0; i < rel->watching.n; i++)
        (void)gr__deliver(sys, w, GR__MSG_DEMONITOR, self,
                          rel->watching.v[i].ref, rel->watching.v[i].id, NULL,
                          0);
    free(rel->watchers.v);
    free(rel->watching.v);
}

/* Answers a monitor request left in an exited actor's mailbox. */
void gr__monitor_orphan(gr_system *sys, const gr_msg *m, int code)
{
    (void)send_down(sys, gr__worker_of(sys), m->corr, m->to, m->from,
                    &(gr_reason){.code = code});
}

void gr__monitor_node_down(gr__actor *a, gr__worker *w, uint32_t node,
                           uint32_t inc)
{
    gr__relations *rel = a->rel;
    gr_ref self = gr__actor_ref(a);
    /* Our monitors of actors there fire, in our own mailbox's order. */
    for (unsigned i = 0; i < rel->watching.n; i++)
        if (gr__ref_on(rel->watching.v[i].ref, node, inc))
            (void)send_down(a->sys, w, rel->watching.v[i].id,
                            rel->watching.v[i].ref, self,
                            &(gr_reason){.code = GR_ENOCONNECTION});
    /* Watchers there are gone: forget them. */
    for (unsigned i = 0; i < rel->watchers.n;)
        if (gr__ref_on(rel->watchers.v[i].ref, node, inc))
            rel->watchers.v[i] = rel->watchers.v[--rel->watchers.n];
        else
            i++;
}
