/* The runtime's messages to actors: one dispatcher over stop requests,
 * monitors and links, and what an exiting actor owes its relations. */
#include <stdlib.h>
#include <string.h>

#include "actor/message.h"
#include "actor/relations.h"
#include "actor/remote.h"
#include "actor/scheduler.h"
#include "actor/send.h"
#include "actor/timer.h"

gr__relations *gr__relations_of(gr__actor *a)
{
    if (a->rel == NULL)
        a->rel = calloc(1, sizeof *a->rel);
    return a->rel;
}

gr__sig gr__signal(gr__actor *a, gr__worker *w, gr_msg *m, gr_reason *why)
{
    if ((m->flags & GR_MSG_TIMER) && m->type < GR_MSG_RESERVED)
        return gr__timer_arrived(a, m); /* One of a's own timers. */
    if (m->flags & GR_MSG_REPLY)
        return gr__ask_signal(a, w, m);
    switch (m->type) {
    case GR__MSG_STOP:
        *why = gr_reason_of(GR_ESHUTDOWN);
        return GR__SIG_EXIT;
    case GR__MSG_KILL:
        if (a->flags & GR__ACTOR_INBOX)
            return GR__SIG_CONSUMED; /* Inboxes close, never die. */
        *why = gr_reason_of(GR_EKILLED);
        return GR__SIG_EXIT;
    case GR__MSG_MONITOR:
    case GR__MSG_DEMONITOR:
    case GR_MSG_DOWN:
        return gr__monitor_signal(a, w, m);
    case GR__MSG_LINK:
    case GR__MSG_UNLINK:
    case GR__MSG_SIGNAL:
        return gr__link_signal(a, w, m, why);
    case GR__MSG_NODE_DOWN: {
        if (a->flags & GR__ACTOR_CALL)
            return GR__SIG_DELIVER; /* gr_call() checks its callee's node. */
        gr__node_down d;
        if (a->rel != NULL && m->len == sizeof d) {
            memcpy(&d, m->data, sizeof d);
            gr__link_node_down(a, w, d.node, d.incarnation);
            gr__monitor_node_down(a, w, d.node, d.incarnation);
            gr__ask_node_down(a, w, d.node, d.incarnation);
        }
        return GR__SIG_CONSUMED;
    }
    case GR__MSG_UNMUTE:
        return GR__SIG_CONSUMED; /* Its turn's end resumes the sender. */
    case GR__MSG_ASK_TIMEOUT:
    case GR__MSG_ASK_FORGET:
    case GR__MSG_ASK_SWEEP:
        return gr__ask_signal(a, w, m);
    default:
        /* A runtime request reaches only an actor that takes them: the
         * send refuses it for any other (gr__deliver_msg). */
        return GR__SIG_DELIVER;
    }
}

void gr__relations_exit(gr__actor *a, gr__worker *w, const gr_reason *why)
{
    if (a->rel == NULL)
        return;
    gr__link_exit(a, w, why);
    gr__monitor_exit(a, w, why);
    gr__ask_exit(a, w, why);
    gr__timers_exit(a);
    free(a->rel);
    a->rel = NULL;
}

void gr__signal_orphan(gr_system *sys, const gr_msg *m)
{
    gr__signal_refused(sys, m, GR_ENOACTOR);
}

void gr__signal_refused(gr_system *sys, const gr_msg *m, int code)
{
    if (m->type == GR__MSG_MONITOR)
        gr__monitor_orphan(sys, m, code);
    else if (m->type == GR__MSG_LINK)
        gr__link_orphan(sys, m, code);
    else if (m->flags & GR_MSG_REQUEST) /* Its asker must not wait. */
        gr__ask_send_failed(sys, gr__worker_of(sys), m->to, m->from, m->corr,
                            &(gr_reason){.code = code});
}
