/* gr_call(): an ask from a thread that is not an actor, through an inbox
 * of its own (see include/grove/ask.h). */
#include <string.h>

#include <grove/ask.h>
#include <grove/inbox.h>

#include "actor/message.h"
#include "actor/clock.h"
#include "actor/remote.h"
#include "actor/request.h"
#include "actor/scheduler.h"
#include "actor/send.h"
#include "actor/system.h"

/* Waits for the answer to ask corr in inbox until deadline_ns (negative:
 * forever), never giving up before it. Anything else that arrives there is
 * a late or stray message: dead-lettered. */
static int await_answer(gr_system *sys, gr_inbox *inbox, gr_ref callee,
                        uint64_t corr, int64_t deadline_ns, gr_msg **out)
{
    for (;;) {
        gr_duration wait = GR_DURATION_INFINITE;
        if (deadline_ns >= 0) {
            int64_t left = deadline_ns - (int64_t)gr__mono_ns();
            /* Whole milliseconds, rounded up: a wait may not end early. */
            wait = left > 0 ? (gr_duration)((left + 999999) / 1000000) : 0;
        }
        gr_msg *m;
        int rc = gr_inbox_recv(inbox, &m, wait);
        if (rc == GR_ESTOPPED)
            return rc; /* The system is stopping: nothing more will come. */
        if (rc != GR_OK) {
            if (wait == 0 || deadline_ns - (int64_t)gr__mono_ns() <= 0)
                return GR_ETIMEDOUT;
            continue; /* Woken a little early: wait out the rest. */
        }
        if ((m->flags & GR_MSG_REPLY) && m->corr == corr) {
            *out = m;
            return GR_OK;
        }
        gr__node_down d;
        if (m->type == GR__MSG_NODE_DOWN && m->len == sizeof d) {
            memcpy(&d, m->data, sizeof d);
            gr_msg_free(m);
            if (d.node == callee.node && d.incarnation == callee.incarnation)
                return GR_ENOCONNECTION; /* Its node is gone. */
            continue;
        }
        if (m->type < GR_MSG_RESERVED)
            gr__dead_message(sys, m, GR_DL_NO_ACTOR,
                             &(gr_reason){.code = GR_ENOACTOR});
        gr_msg_free(m);
    }
}

int gr_call(gr_system *sys, gr_ref target, uint32_t type, const void *data,
            size_t len, gr_duration timeout, gr_msg **reply)
{
    if (type >= GR_MSG_RESERVED) {
        if (reply != NULL)
            *reply = NULL;
        return GR_EINVAL;
    }
    return gr__call_any(sys, target, type, data, len, timeout, reply);
}

int gr__call_any(gr_system *sys, gr_ref target, uint32_t type, const void *data,
                 size_t len, gr_duration timeout, gr_msg **reply)
{
    int64_t ms;
    if (reply != NULL)
        *reply = NULL; /* On every error. */
    if (sys == NULL || reply == NULL ||
        gr__duration_ms(timeout, GR_DURATION_DEFAULT_MS, &ms) != GR_OK)
        return GR_EINVAL;
    if (gr__in_handler())
        return GR_EWRONGTHREAD;
    int rc = gr__check_payload(sys, data, len);
    if (rc != GR_OK)
        return rc;
    int64_t deadline = ms < 0 ? -1 : (int64_t)gr__mono_ns() + ms * 1000000;
    gr_inbox *inbox;
    if ((rc = gr__inbox_open(sys, GR__ACTOR_CALL, &inbox)) != GR_OK)
        return rc;
    uint64_t corr = gr__new_id(sys, NULL);
    gr_msg req = {.type = type,
                  .flags = GR_MSG_REQUEST,
                  .from = gr_inbox_ref(inbox),
                  .to = target,
                  .corr = corr,
                  .data = data,
                  .len = len};
    rc = gr__deliver_msg(sys, gr__worker_of(sys), &req);
    gr_msg *m = NULL;
    if (rc == GR_OK)
        rc = await_answer(sys, inbox, target, corr, deadline, &m);
    /* The target forgets the request when it will not answer it: timed
     * out, its node gone, or answered by another actor it handed the
     * request on to (as in gr__ask_signal). */
    if (rc == GR_ETIMEDOUT || rc == GR_ENOCONNECTION || rc == GR_ESTOPPED ||
        (rc == GR_OK && !gr_ref_eq(m->from, target)))
        (void)gr__deliver(sys, gr__worker_of(sys), GR__MSG_ASK_FORGET, req.from,
                          target, corr, NULL, 0);
    /* Closing dead-letters whatever else came; a reply still on its way
     * finds no inbox and becomes an expired_reply dead letter. */
    gr_inbox_close(inbox);
    if (m != NULL && m->type == GR_MSG_ASK_FAILED) {
        gr_reason why = {.code = GR_ENOACTOR};
        (void)gr_ask_failed_read(m, &why);
        gr_msg_free(m);
        return gr__ask_failed_rc(&why);
    }
    *reply = m;
    return rc;
}
