/*
 * Asks and replies (see include/grove/ask.h).
 *
 * The asker keeps each ask it waits for in rel->asks: the callee, the
 * deadline, and the continuation. Whichever answer arrives first (a reply,
 * a GR_MSG_ASK_FAILED, or the timeout) takes the record, so exactly one
 * reaches the actor; later ones find nothing and are dropped (a late reply
 * as a dead letter).
 *
 * Timeouts cost no timer per ask: each asker keeps one timer, armed for its
 * earliest deadline (a "sweep"). When it fires, the asker marks every ask
 * past its deadline expired, queues itself a GR__MSG_ASK_TIMEOUT for each,
 * and re-arms for the next deadline. An expired ask's reply is already
 * late: it becomes a dead letter even before the timeout is handled.
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
#include <time.h>

#include "actor/message.h"
#include "actor/relations.h"
#include "actor/request.h"
#include "actor/send.h"
#include "actor/system.h"
#include "actor/timer.h"

/* OTP's default call timeout. */

/* An ask awaiting its answer (or, in rel->ask_cache, a spare record). */
typedef struct gr__ask {
    struct gr__ask *next; /* In the cache. */
    gr_ref callee;
    uint64_t due_ns; /* Deadline on the coarse monotonic clock. */
    gr_ask_fn fn;    /* Continuation, or NULL for handle. */
    void *arg;
    bool expired; /* Past its deadline; its timeout is queued. */
} gr__ask;

/* Spare records an asker keeps, so steady asking does not call malloc. */
#define ASK_CACHE_MAX 64

static gr__ask *ask_alloc(gr__relations *rel)
{
    gr__ask *ask = rel->ask_cache;
    if (ask == NULL)
        return malloc(sizeof *ask);
    rel->ask_cache = ask->next;
    rel->ask_cached--;
    return ask;
}

static void ask_free(gr__relations *rel, gr__ask *ask)
{
    if (rel->ask_cached == ASK_CACHE_MAX) {
        free(ask);
        return;
    }
    ask->next = rel->ask_cache;
    rel->ask_cache = ask;
    rel->ask_cached++;
}

/* The coarse monotonic clock (a few ns to read, ticks of a few ms) and its
 * resolution, which deadlines add so that they are never early. */
static uint64_t coarse_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t coarse_res_ns(void)
{
    static _Atomic(uint64_t) res;
    uint64_t r = atomic_load_explicit(&res, memory_order_relaxed);
    if (r == 0) {
        struct timespec ts;
        clock_getres(CLOCK_MONOTONIC_COARSE, &ts);
        r = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + 1;
        atomic_store_explicit(&res, r, memory_order_relaxed);
    }
    return r;
}

/* Arms a's sweep for deadline due (ns, coarse clock), replacing a later
 * one. */
static void arm_sweep(gr__actor *a, uint64_t due, uint64_t now)
{
    gr__relations *rel = a->rel;
    if (rel->sweep_timer != 0 && rel->sweep_due <= due)
        return;
    if (rel->sweep_timer != 0)
        gr__timer_cancel(a->sys, rel->sweep_timer);
    /* Whole milliseconds, rounded up: the timer may not fire early. */
    uint64_t ms = due > now ? (due - now + 999999u) / 1000000u : 0;
    gr_ref self = gr__actor_ref(a);
    /* GR_MSG_TIMER: the message carries the timer's id in corr. */
    gr_msg m = {.type = GR__MSG_ASK_SWEEP,
                .flags = GR_MSG_TIMER,
                .from = self,
                .to = self};
    if (gr__timer_send(a->sys, ms, 0, &m, &rel->sweep_timer) != GR_OK)
        rel->sweep_timer = 0; /* Stopping, or out of memory. */
    rel->sweep_due = due;
}

/* Sends to's actor a runtime message (no payload) about ask corr. */
static void notify(gr_system *sys, gr__worker *w, uint32_t type, gr_ref from,
                   gr_ref to, uint64_t corr)
{
    (void)gr__deliver(sys, w, type, from, to, corr, NULL, 0);
}

/* See relations.h. */
void gr__ask_send_failed(gr_system *sys, gr__worker *w, gr_ref from, gr_ref to,
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
                size_t len, gr_duration timeout, gr_ask_fn fn, void *arg,
                uint64_t *corr)
{
    if (type >= GR_MSG_RESERVED)
        return GR_EINVAL;
    return gr__ask_any(ctx, target, type, data, len, timeout, fn, arg, corr);
}

int gr__ask_any(gr_ctx *ctx, gr_ref target, uint32_t type, const void *data,
                size_t len, gr_duration timeout, gr_ask_fn fn, void *arg,
                uint64_t *corr)
{
    int64_t ms;
    if (ctx == NULL ||
        gr__duration_ms(timeout, GR_DURATION_DEFAULT_MS, &ms) != GR_OK)
        return GR_EINVAL;
    gr__actor *a = ctx->self;
    gr_system *sys = a->sys;
    int rc = gr__check_payload(sys, data, len);
    if (rc != GR_OK)
        return rc;
    gr__relations *rel = gr__relations_of(a);
    gr__ask *ask = rel != NULL ? ask_alloc(rel) : NULL;
    if (ask == NULL)
        return GR_ENOMEM;
    uint64_t id = gr__new_id(sys, ctx->w);
    gr_ref self = gr__actor_ref(a);
    uint64_t now = coarse_now_ns();
    /* No limit: a deadline no sweep reaches (nor arms a timer for). */
    uint64_t due = ms < 0 ? UINT64_MAX
                          : now + coarse_res_ns() + gr__ms_to_ns((uint64_t)ms);
    *ask = (gr__ask){.callee = target, .due_ns = due, .fn = fn, .arg = arg};
    if ((rc = gr__refmap_put(&rel->asks, gr__id_key(id), ask)) != GR_OK) {
        ask_free(rel, ask);
        return rc;
    }
    gr_msg m = {.type = type,
                .flags = GR_MSG_REQUEST,
                .from = self,
                .to = target,
                .corr = id,
                .data = data,
                .len = len};
    /* Usually a sweep is armed already for an earlier deadline. */
    if ((rc = gr__deliver_msg(sys, ctx->w, &m)) == GR_OK && due != UINT64_MAX &&
        (rel->sweep_timer == 0 || due < rel->sweep_due))
        arm_sweep(a, due, now);
    if (rc != GR_OK) {
        ask_free(rel, gr__refmap_take(&rel->asks, gr__id_key(id)));
        return rc;
    }
    if (corr != NULL)
        *corr = id;
    return GR_OK;
}

int gr_ask(gr_ctx *ctx, gr_ref target, uint32_t type, const void *data,
           size_t len, gr_duration timeout, uint64_t *corr)
{
    return gr_ask_then(ctx, target, type, data, len, timeout, NULL, NULL, corr);
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
    if (type >= GR_MSG_RESERVED)
        return GR_EINVAL;
    return gr__reply_any(ctx, req, type, data, len);
}

int gr__reply_any(gr_ctx *ctx, const gr_request *req, uint32_t type,
                  const void *data, size_t len)
{
    if (ctx == NULL || req == NULL || req->corr == 0)
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

int gr__ask_failed_rc(const gr_reason *why)
{
    return why->code == GR_ENOTSUP || why->code == GR_ENOCONNECTION
               ? why->code
               : GR_ENOACTOR;
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
        gr__ask_send_failed(a->sys, w, gr__actor_ref(a), m->from, m->corr,
                            &(gr_reason){.code = GR_ENOMEM});
        return;
    }
    *asker = m->from;
}

/* Context for a sweep: the actor, its worker, the time, and the next
 * deadline still ahead. */
struct sweep {
    gr__actor *a;
    gr__worker *w;
    uint64_t now, next;
};

static void sweep_one(void *arg, gr_ref key, void *value)
{
    struct sweep *sw = arg;
    gr__ask *ask = value;
    if (ask->expired)
        return;
    if (ask->due_ns <= sw->now) {
        ask->expired = true;
        gr_ref self = gr__actor_ref(sw->a);
        notify(sw->a->sys, sw->w, GR__MSG_ASK_TIMEOUT, self, self, key.serial);
    } else if (ask->due_ns < sw->next) {
        sw->next = ask->due_ns;
    }
}

/* a's sweep timer fired: time out the asks past their deadline. */
static void sweep(gr__actor *a, gr__worker *w, uint64_t timer)
{
    gr__relations *rel = a->rel;
    if (rel == NULL || timer != rel->sweep_timer)
        return; /* Replaced by an earlier one meanwhile. */
    rel->sweep_timer = 0;
    struct sweep sw = {a, w, coarse_now_ns(), UINT64_MAX};
    gr__refmap_each(&rel->asks, sweep_one, &sw);
    if (sw.next != UINT64_MAX)
        arm_sweep(a, sw.next, sw.now);
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
    if (m->type == GR__MSG_ASK_SWEEP) {
        sweep(a, w, m->corr);
        return GR__SIG_CONSUMED;
    }
    gr__relations *rel = a->rel;
    gr__ask *ask =
        rel != NULL ? gr__refmap_take(&rel->asks, gr__id_key(m->corr)) : NULL;
    bool timeout = m->type == GR__MSG_ASK_TIMEOUT;
    if (ask != NULL && ask->expired && !timeout) {
        /* Past its deadline: its queued timeout will take it. The map had
         * room for it a moment ago, so this put cannot fail. */
        (void)gr__refmap_put(&rel->asks, gr__id_key(m->corr), ask);
        ask = NULL;
    }
    if (ask == NULL) {
        /* Answered already, or past its deadline: a late reply is a dead
         * letter; a late failure just goes. */
        if (m->type < GR_MSG_RESERVED)
            gr__dead_letter(a->sys, w, m, GR_DL_EXPIRED_REPLY);
        return GR__SIG_CONSUMED;
    }
    if (timeout) {
        notify(a->sys, w, GR__MSG_ASK_FORGET, gr__actor_ref(a), ask->callee,
               m->corr);
        m->type = GR_MSG_TIMEOUT;
        m->flags = GR_MSG_REPLY;
        m->from = ask->callee;
    } else if (!gr_ref_eq(m->from, ask->callee)) {
        /* Answered by an actor the request was handed on to (a node's
         * stand-in passes requests to its root): the asked actor still
         * holds it, and forgets it now. */
        notify(a->sys, w, GR__MSG_ASK_FORGET, gr__actor_ref(a), ask->callee,
               m->corr);
    }
    w->turn_cont = ask->fn;
    w->turn_cont_arg = ask->arg;
    ask_free(rel, ask);
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
    gr__ask_send_failed(x->a->sys, x->w, gr__actor_ref(x->a), *asker,
                        key.serial, x->why);
    free(asker);
}

static void drop_ask(void *arg, gr_ref key, void *value)
{
    struct ask_exit *x = arg;
    gr__ask *ask = value;
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
    for (gr__ask *ask = a->rel->ask_cache, *next; ask != NULL; ask = next) {
        next = ask->next;
        free(ask);
    }
    a->rel->ask_cache = NULL;
    a->rel->ask_cached = 0;
    if (a->rel->sweep_timer != 0)
        gr__timer_cancel(a->sys, a->rel->sweep_timer);
}

/* Context for failing an actor's asks to a node that went down. */
struct ask_node_down {
    gr__actor *a;
    gr__worker *w;
    uint32_t node, inc;
};

static void ask_lost(void *arg, gr_ref key, void *value)
{
    struct ask_node_down *x = arg;
    gr__ask *ask = value;
    if (gr__ref_on(ask->callee, x->node, x->inc) && !ask->expired)
        gr__ask_send_failed(x->a->sys, x->w, ask->callee, gr__actor_ref(x->a),
                            key.serial, &(gr_reason){.code = GR_ENOCONNECTION});
}

/* Collects the held requests whose askers were on the lost node. */
struct held_scan {
    struct ask_node_down *x;
    gr_ref *keys;
    size_t n;
};

static void held_lost(void *arg, gr_ref key, void *value)
{
    struct held_scan *hs = arg;
    const gr_ref *asker = value;
    if (gr__ref_on(*asker, hs->x->node, hs->x->inc) && hs->keys != NULL)
        hs->keys[hs->n++] = key;
}

void gr__ask_node_down(gr__actor *a, gr__worker *w, uint32_t node, uint32_t inc)
{
    struct ask_node_down x = {a, w, node, inc};
    gr__refmap_each(&a->rel->asks, ask_lost, &x);
    /* Requests held for askers there will never be wanted: drop them. (Out
     * of memory, they stay until answered; the answer is a dead letter.) */
    gr__refmap *held = &a->rel->held;
    struct held_scan hs = {&x, malloc((held->n ? held->n : 1) * sizeof(gr_ref)),
                           0};
    gr__refmap_each(held, held_lost, &hs);
    for (size_t i = 0; i < hs.n; i++)
        free(gr__refmap_take(held, hs.keys[i]));
    free(hs.keys);
}
