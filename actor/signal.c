/* The runtime's messages to actors: one dispatcher over stop requests,
 * monitors and links, and what an exiting actor owes its relations. */
#include <stdlib.h>

#include "actor/message.h"
#include "actor/relations.h"
#include "actor/scheduler.h"

gr__relations *gr__relations_of(gr__actor *a)
{
    if (a->rel == NULL)
        a->rel = calloc(1, sizeof *a->rel);
    return a->rel;
}

gr__sig gr__signal(gr__actor *a, gr__worker *w, gr_msg *m, gr_reason *why)
{
    switch (m->type) {
    case GR__MSG_STOP:
        *why = gr_reason_of(GR_ESHUTDOWN);
        return GR__SIG_EXIT;
    case GR__MSG_MONITOR:
    case GR__MSG_DEMONITOR:
    case GR_MSG_DOWN:
        return gr__monitor_signal(a, w, m);
    case GR__MSG_LINK:
    case GR__MSG_UNLINK:
    case GR__MSG_SIGNAL:
        return gr__link_signal(a, w, m, why);
    default:
        return GR__SIG_DELIVER;
    }
}

void gr__relations_exit(gr__actor *a, gr__worker *w, const gr_reason *why)
{
    if (a->rel == NULL)
        return;
    gr__link_exit(a, w, why);
    gr__monitor_exit(a, w, why);
    free(a->rel);
    a->rel = NULL;
}

void gr__signal_orphan(gr_system *sys, const gr_msg *m)
{
    if (m->type == GR__MSG_MONITOR)
        gr__monitor_orphan(sys, m);
    else if (m->type == GR__MSG_LINK)
        gr__link_orphan(sys, m);
}
