/* Links and exit signals (see include/grove/link.h). */
#include <string.h>

#include "actor/message.h"
#include "actor/relations.h"
#include "actor/send.h"
#include "actor/system.h"

/* The value stored for a link: the map needs a non-NULL one. */
#define LINKED ((void *)1)

int gr__link_add(gr__actor *a, gr_ref other)
{
    gr__relations *rel = gr__relations_of(a);
    if (rel == NULL)
        return GR_ENOMEM;
    return gr__refmap_put(&rel->links, other, LINKED);
}

void gr__link_remove(gr__actor *a, gr_ref other)
{
    if (a->rel != NULL)
        (void)gr__refmap_take(&a->rel->links, other);
}

static bool linked(const gr__actor *a, gr_ref other)
{
    return a->rel != NULL && gr__refmap_get(&a->rel->links, other) != NULL;
}

/* Sends an exit signal from `from` to `to`. */
static int send_signal(gr_system *sys, gr__worker *w, gr_ref from, gr_ref to,
                       const gr_reason *why, bool via_link)
{
    /* The payload of an exit signal (GR__MSG_SIGNAL) is what a trapping
     * receiver reads as a GR_MSG_EXIT. */
    gr_exit_msg sig = {.from = from, .reason = *why, .linked = via_link};
    sig.reason.text[GR_REASON_TEXT_MAX] = '\0';
    return gr__deliver(sys, w, GR__MSG_SIGNAL, from, to, 0, &sig, sizeof sig);
}

int gr_link(gr_ctx *ctx, gr_ref target)
{
    if (ctx == NULL || gr_ref_is_none(target))
        return GR_EINVAL;
    gr__actor *a = ctx->self;
    gr_ref self = gr__actor_ref(a);
    if (gr_ref_eq(target, self) || linked(a, target))
        return GR_OK;
    int rc = gr__link_add(a, target);
    if (rc != GR_OK)
        return rc;
    rc = gr__deliver(a->sys, ctx->w, GR__MSG_LINK, self, target, 0, NULL, 0);
    if (rc == GR_ENOACTOR || rc == GR_ENOCONNECTION)
        /* Already gone: as in OTP, a noproc (or noconnection) signal
         * through the new link. */
        rc = send_signal(a->sys, ctx->w, target, self, &(gr_reason){.code = rc},
                         true);
    if (rc != GR_OK)
        gr__link_remove(a, target);
    return rc;
}

int gr_unlink(gr_ctx *ctx, gr_ref target)
{
    if (ctx == NULL || gr_ref_is_none(target))
        return GR_EINVAL;
    gr__actor *a = ctx->self;
    if (!linked(a, target))
        return GR_OK;
    gr__link_remove(a, target);
    /* A signal already on its way from target is ignored on arrival: the
     * link is gone from our side. */
    (void)gr__deliver(a->sys, ctx->w, GR__MSG_UNLINK, gr__actor_ref(a), target,
                      0, NULL, 0);
    return GR_OK;
}

int gr_trap_exit(gr_ctx *ctx, int on)
{
    if (ctx == NULL)
        return GR_EINVAL;
    gr__relations *rel = gr__relations_of(ctx->self);
    if (rel == NULL)
        return GR_ENOMEM;
    int was = rel->trap_exit;
    rel->trap_exit = on != 0;
    return was;
}

int gr_exit(gr_ctx *ctx, gr_ref target, const gr_reason *why)
{
    if (ctx == NULL || why == NULL)
        return GR_EINVAL;
    gr__actor *a = ctx->self;
    return send_signal(a->sys, ctx->w, gr__actor_ref(a), target, why, false);
}

int gr_system_exit(gr_system *sys, gr_ref target, const gr_reason *why)
{
    if (sys == NULL || why == NULL)
        return GR_EINVAL;
    return send_signal(sys, gr__worker_of(sys), GR_REF_NONE, target, why,
                       false);
}

int gr_exit_read(const gr_msg *msg, gr_exit_msg *out)
{
    if (msg == NULL || out == NULL || msg->type != GR_MSG_EXIT ||
        msg->len != sizeof *out)
        return GR_EINVAL;
    memcpy(out, msg->data, sizeof *out);
    return GR_OK;
}

/* Applies OTP's rules to an exit signal m arriving at a. */
static gr__sig receive_signal(gr__actor *a, gr_msg *m, gr_reason *why)
{
    gr_exit_msg sig;
    if (m->len != sizeof sig)
        return GR__SIG_CONSUMED;
    memcpy(&sig, m->data, sizeof sig);
    if (sig.linked) {
        /* A link signal counts only while the link exists: after
         * gr_unlink() one still in flight is ignored. */
        if (!linked(a, m->from))
            return GR__SIG_CONSUMED;
        gr__link_remove(a, m->from);
    } else if (sig.reason.code == GR_EKILL && !(a->flags & GR__ACTOR_INBOX)) {
        *why = gr_reason_of(GR_EKILLED); /* Untrappable. */
        return GR__SIG_EXIT;
    }
    if ((a->flags & GR__ACTOR_INBOX) || (a->rel != NULL && a->rel->trap_exit)) {
        /* Trapped (an inbox, which cannot die of a signal, always traps):
         * the payload is the gr_exit_msg the receiver reads. */
        m->type = GR_MSG_EXIT;
        return GR__SIG_DELIVER;
    }
    if (sig.reason.code == GR_OK &&
        (sig.linked || !gr_ref_eq(m->from, gr__actor_ref(a))))
        return GR__SIG_CONSUMED; /* normal is ignored, except from oneself. */
    *why = sig.reason;
    return GR__SIG_EXIT;
}

gr__sig gr__link_signal(gr__actor *a, gr__worker *w, gr_msg *m, gr_reason *why)
{
    (void)w;
    switch (m->type) {
    case GR__MSG_LINK:
        if (gr__link_add(a, m->from) != GR_OK) {
            /* Out of memory: the linker learns at once rather than never. */
            (void)send_signal(a->sys, w, gr__actor_ref(a), m->from,
                              &(gr_reason){.code = GR_ENOMEM}, true);
        }
        return GR__SIG_CONSUMED;
    case GR__MSG_UNLINK:
        gr__link_remove(a, m->from);
        return GR__SIG_CONSUMED;
    case GR__MSG_SIGNAL:
        return receive_signal(a, m, why);
    default:
        return GR__SIG_DELIVER;
    }
}

/* Context for signalling each link as an actor exits. */
struct link_exit {
    gr_system *sys;
    gr__worker *w;
    gr_ref self;
    const gr_reason *why;
};

static void signal_link(void *arg, gr_ref other, void *value)
{
    (void)value;
    struct link_exit *le = arg;
    (void)send_signal(le->sys, le->w, le->self, other, le->why, true);
}

void gr__link_exit(gr__actor *a, gr__worker *w, const gr_reason *why)
{
    struct link_exit le = {a->sys, w, gr__actor_ref(a), why};
    gr__refmap_each(&a->rel->links, signal_link, &le);
    gr__refmap_clear(&a->rel->links);
}

/* Answers a link request left in an exited actor's mailbox: noproc, as if
 * the link had been made and broken at once. */
void gr__link_orphan(gr_system *sys, const gr_msg *m, int code)
{
    (void)send_signal(sys, gr__worker_of(sys), m->to, m->from,
                      &(gr_reason){.code = code}, true);
}

/* Context for walking an actor's links when a node goes down. */
struct link_node_down {
    gr__actor *a;
    gr__worker *w;
    uint32_t node, inc;
};

static void link_lost(void *arg, gr_ref other, void *value)
{
    (void)value;
    struct link_node_down *x = arg;
    if (gr__ref_on(other, x->node, x->inc))
        (void)send_signal(x->a->sys, x->w, other, gr__actor_ref(x->a),
                          &(gr_reason){.code = GR_ENOCONNECTION}, true);
}

void gr__link_node_down(gr__actor *a, gr__worker *w, uint32_t node,
                        uint32_t inc)
{
    struct link_node_down x = {a, w, node, inc};
    gr__refmap_each(&a->rel->links, link_lost, &x);
}
