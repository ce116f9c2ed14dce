/*
 * Asks and replies (see include/grove/ask.h).
 *
 * The asker keeps each ask it waits for in rel->asks: the callee, the
 * timeout timer, and the continuation. Whichever answer arrives first (a
 * reply, the timer's GR__MSG_ASK_TIMEOUT, or a GR_MSG_ASK_FAILED) takes the
 * record, so exactly one reaches the actor; later ones find nothing and are
 * dropped (a late reply as a dead letter).
 *
 * The callee needs no message to learn it was asked: a request it handled
 * without answering is recorded in rel->held, and when the callee exits it
 * fails each held request with its exit reason. Requests still queued when
 * it exits are failed as dead letters are made (gr__dead_message). An asker
 * that stops waiting (timeout, exit) tells the callee to forget the
 * request, so held records do not pile up.
 */
#include <grove/ask.h>

#include <stdlib.h>
#include <string.h>

#include "actor/message.h"
#include "actor/relations.h"
#include "actor/send.h"
#include "actor/system.h"
#include "actor/timer.h"

/* OTP's default call timeout. */
#define DEFAULT_TIMEOUT_MS 5000u

/* An ask awaiting its answer. */
typedef struct gr__ask {
    gr_ref callee;
    uint64_t timer; /* The timeout's timer id. */
    gr_ask_fn fn;   /* Continuation, or NULL for handle. */
    void *arg;
} gr__ask;

/* Sends to's actor a runtime message (no payload) about ask corr. */
static void notify(gr_system *sys, gr__worker *w, uint32_t type, gr_ref from,
                   gr_ref to, uint64_t corr)
{
    (void)gr__deliver(sys, w, type, from, to, corr, NULL, 0);
}

/* Fails ask corr of asker `to`: the callee `from` exited with why. */
static void send_failed(gr_system *sys, gr__worker *w, gr_ref from, gr_ref to,
                        uint64_t corr, const gr_reason *why)
{
    gr_msg m = {.type = GR_MSG_ASK_FAILED,
                .flags = GR_MSG_REPLY,
                .from = from,
                .to = to,
                .corr = corr,
                .data = why,
                .len = sizeof *why};
    (void)gr__deliver_msg(sys, w, &m);
}

int gr_ask_then(gr_ctx *ctx, gr_ref target, uint32_t type, const void *data,
                size_t len, uint64_t timeout_ms, gr_ask_fn fn, void *arg,
                uint64_t *corr)
{
    if (ctx == NULL || type >= GR_MSG_RESERVED)
        return GR_EINVAL;
    gr__actor *a = ctx->self;
    gr_system *sys = a->sys;
    int rc = gr__check_payload(sys, data, len);
    if (rc != GR_OK)
        return rc;
    gr__relations *rel = gr__relations_of(a);
    gr__ask *ask = malloc(sizeof *ask);
    if (rel == NULL || ask == NULL) {
        free(ask);
        return GR_ENOMEM;
    }
    /* relaxed: ids only need to be unique; monitors and asks share them. */
    uint64_t id =
        atomic_fetch_add_explicit(&sys->next_monitor, 1, memory_order_relaxed);
    gr_ref self = gr__actor_ref(a);
    *ask = (gr__ask){.callee = target, .fn = fn, .arg = arg};
    if ((rc = gr__refmap_put(&rel->asks, gr__id_key(id), ask)) != GR_OK) {
        free(ask);
        return rc;
    }
    rc = gr__timer_start(sys, timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS,
                         self, GR__MSG_ASK_TIMEOUT, id, &ask->timer);
    if (rc == GR_OK) {
        gr_msg m = {.type = type,
                    .flags = GR_MSG_REQUEST,
                    .from = self,
                    .to = target,
                    .corr = id,
                    .data = data,
                    .len = len};
        if ((rc = gr__deliver_msg(sys, ctx->w, &m)) != GR_OK)
            gr__timer_cancel(sys, ask->timer);
    }
    if (rc != GR_OK) {
        free(gr__refmap_take(&rel->asks, gr__id_key(id)));
        return rc;
    }
    if (corr != NULL)
        *corr = id;
    return GR_OK;
}

int gr_ask(gr_ctx *ctx, gr_ref target, uint32_t type, const void *data,
           size_t len, uint64_t timeout_ms, uint64_t *corr)
{
    return gr_ask_then(ctx, target, type, data, len, timeout_ms, NULL, NULL,
                       corr);
}

gr_request gr_request_of(const gr_msg *msg)
{
    if (msg == NULL || !(msg->flags & GR_MSG_REQUEST))
        return (gr_request){GR_REF_NONE, 0};
    return (gr_request){msg->from, msg->corr};
}

/* Marks request req answered in a's records: the turn's open request, or a
 * held one. */
static void answered(gr__actor *a, gr__worker *w, const gr_request *req)
{
    if (w != NULL && w->turn_actor == a && w->turn_req_open &&
        w->turn_env->msg.corr == req->corr &&
        gr_ref_eq(w->turn_env->msg.from, req->from)) {
        w->turn_req_open = false;
        return;
    }
    if (a->rel != NULL)
        free(gr__refmap_take(&a->rel->held, gr__id_key(req->corr)));
}

int gr_reply_to(gr_ctx *ctx, const gr_request *req, uint32_t type,
                const void *data, size_t len)
{
    if (ctx == NULL || req == NULL || req->corr == 0 || type >= GR_MSG_RESERVED)
        return GR_EINVAL;
    gr__actor *a = ctx->self;
    int rc = gr__check_payload(a->sys, data, len);
    if (rc != GR_OK)
        return rc;
    answered(a, ctx->w, req);
    gr_msg m = {.type = type,
                .flags = GR_MSG_REPLY,
                .from = gr__actor_ref(a),
                .to = req->from,
                .corr = req->corr,
                .data = data,
                .len = len};
    rc = gr__deliver_msg(a->sys, ctx->w, &m);
    /* An asker that is gone has its reply dead-lettered; not our error. */
    return rc == GR_ENOACTOR ? GR_OK : rc;
}

int gr_reply(gr_ctx *ctx, const gr_msg *msg, uint32_t type, const void *data,
             size_t len)
{
    gr_request req = gr_request_of(msg);
    return gr_reply_to(ctx, &req, type, data, len);
}

int gr_ask_failed_read(const gr_msg *msg, gr_reason *out)
{
    if (msg == NULL || out == NULL || msg->type != GR_MSG_ASK_FAILED ||
        msg->len != sizeof *out)
        return GR_EINVAL;
    memcpy(out, msg->data, sizeof *out);
    out->text[GR_REASON_TEXT_MAX] = '\0';
    return GR_OK;
}

void gr__ask_hold(gr__actor *a, gr__worker *w)
{
    w->turn_req_open = false;
    const gr_msg *m = &w->turn_env->msg;
    gr__relations *rel = gr__relations_of(a);
    gr_ref *asker = malloc(sizeof *asker);
    if (rel == NULL || asker == NULL ||
        gr__refmap_put(&rel->held, gr__id_key(m->corr), asker) != GR_OK) {
        /* Cannot remember it: fail it now rather than never. */
        free(asker);
        send_failed(a->sys, w, gr__actor_ref(a), m->from, m->corr,
                    &(gr_reason){.code = GR_ENOMEM});
        return;
    }
    *asker = m->from;
}

gr__sig gr__ask_signal(gr__actor *a, gr__worker *w, gr_msg *m)
{
    if (a->flags & GR__ACTOR_INBOX) /* gr_call() matches its own answer. */
        return m->flags & GR_MSG_REPLY ? GR__SIG_DELIVER : GR__SIG_CONSUMED;
    if (m->type == GR__MSG_ASK_FORGET) {
        if (a->rel != NULL)
            free(gr__refmap_take(&a->rel->held, gr__id_key(m->corr)));
        return GR__SIG_CONSUMED;
    }
    gr__ask *ask = a->rel != NULL
                       ? gr__refmap_take(&a->rel->asks, gr__id_key(m->corr))
                       : NULL;
    if (ask == NULL) {
        /* Already answered: a late reply is a dead letter; a late timeout
         * or failure just goes. */
        if (m->type < GR_MSG_RESERVED)
            gr__dead_letter(a->sys, w, m, GR_DL_EXPIRED_REPLY);
        return GR__SIG_CONSUMED;
    }
    if (m->type == GR__MSG_ASK_TIMEOUT) {
        notify(a->sys, w, GR__MSG_ASK_FORGET, gr__actor_ref(a), ask->callee,
               m->corr);
        m->type = GR_MSG_TIMEOUT;
        m->flags = GR_MSG_REPLY;
        m->from = ask->callee;
    } else {
        gr__timer_cancel(a->sys, ask->timer);
    }
    w->turn_cont = ask->fn;
    w->turn_cont_arg = ask->arg;
    free(ask);
    return GR__SIG_DELIVER;
}

/* Context for walking an exiting actor's asks and held requests. */
struct ask_exit {
    gr__actor *a;
    gr__worker *w;
    const gr_reason *why;
};

static void fail_held(void *arg, gr_ref key, void *value)
{
    struct ask_exit *x = arg;
    gr_ref *asker = value;
    send_failed(x->a->sys, x->w, gr__actor_ref(x->a), *asker, key.serial,
                x->why);
    free(asker);
}

static void drop_ask(void *arg, gr_ref key, void *value)
{
    struct ask_exit *x = arg;
    gr__ask *ask = value;
    gr__timer_cancel(x->a->sys, ask->timer);
    notify(x->a->sys, x->w, GR__MSG_ASK_FORGET, gr__actor_ref(x->a),
           ask->callee, key.serial);
    free(ask);
}

void gr__ask_exit(gr__actor *a, gr__worker *w, const gr_reason *why)
{
    struct ask_exit x = {a, w, why};
    gr__refmap_each(&a->rel->held, fail_held, &x);
    gr__refmap_clear(&a->rel->held);
    gr__refmap_each(&a->rel->asks, drop_ask, &x);
    gr__refmap_clear(&a->rel->asks);
}

void gr__dead_message(gr_system *sys, const gr_msg *m, gr_dead_reason reason,
                      int code)
{
    if (m->flags & GR_MSG_TIMER)
        return; /* Its owner is gone, and its timers with it. */
    if (m->flags & GR_MSG_REPLY)
        reason = GR_DL_EXPIRED_REPLY;
    gr__dead_letter(sys, NULL, m, reason);
    if ((m->flags & GR_MSG_REQUEST) && reason == GR_DL_STOPPED)
        send_failed(sys, gr__worker_of(sys), m->to, m->from, m->corr,
                    &(gr_reason){.code = code});
}
