/*
 * The runtime API, supervisor side: answering start / spawn / terminate /
 * restart / delete / which / count requests. They are runtime requests
 * (actor/request.h): each gets exactly one answer, a GR_MSG_SUP_REPLY from
 * here, from a job that finishes it, or from terminate (GR_ESHUTDOWN); if
 * the supervisor is gone before that, the ask machinery fails the request.
 */
#include <stdlib.h>
#include <string.h>

#include "actor/runtime.h"
#include "supervisor/describe.h"
#include "supervisor/sup.h"

void gr__sup_reply(gr_ctx *ctx, gr_ref to, uint64_t corr, int rc, gr_ref child,
                   const void *extra, size_t extra_len)
{
    gr_sup_reply r = {.rc = rc, .child = child};
    size_t len = sizeof r + extra_len;
    unsigned char small[sizeof r + sizeof(gr_child_counts) + 8];
    unsigned char *buf = len <= sizeof small ? small : malloc(len);
    if (buf == NULL) {
        r.rc = GR_ENOMEM;
        buf = small;
        len = sizeof r;
        extra_len = 0;
    }
    memcpy(buf, &r, sizeof r);
    if (extra_len > 0)
        memcpy(buf + sizeof r, extra, extra_len);
    gr_request req = {.from = to, .corr = corr};
    (void)gr__reply_any(ctx, &req, GR_MSG_SUP_REPLY, buf, len);
    if (buf != small)
        free(buf);
}

/* Adds a child from spec (or a dynamic one from the template) and starts
 * it; the spec is not kept when the start fails. */
static int add_and_start(sup_state *s, gr_ctx *ctx, const sup_req *r,
                         gr_ref *out)
{
    sup_child *c;
    const void *arg = r->arg_len ? r->arg : NULL;
    if (r->op == SUP_SPAWN_CHILD) {
        if (s->strategy != GR_SIMPLE_ONE_FOR_ONE)
            return GR_EINVAL;
        c = gr__sup_child_new_dynamic(s->tmpl, arg, r->arg_len);
    } else {
        gr_child_spec spec = gr__sup_req_spec(r);
        const char *why = "a simple-one-for-one supervisor starts children "
                          "with spawn_child";
        int rc = s->strategy == GR_SIMPLE_ONE_FOR_ONE
                     ? GR_EINVAL
                     : gr__sup_spec_check(&spec, false, &why);
        if (rc != GR_OK) {
            gr__log(gr__system_log(s->sys), GR_LOG_WARN,
                    "supervisor %s: start_child refused (%s): %s",
                    s->name != NULL ? s->name : "(unnamed)", gr_errname(rc),
                    why);
            return rc;
        }
        if (gr__sup_find_id(s, spec.id) != NULL)
            return GR_EEXIST;
        c = gr__sup_child_new(&spec, arg, r->arg_len);
    }
    if (c == NULL)
        return GR_ENOMEM;
    gr__sup_list_append(s, c);
    gr_reason why;
    int rc = gr__sup_start_child(s, ctx, c, false, &why);
    if (rc != GR_OK) {
        gr__sup_remove_child(s, c);
        return rc;
    }
    *out = c->ref;
    return GR_OK;
}

/* Finds the child a terminate request names: by id, or (id empty) by the
 * running child's reference. */
static sup_child *find_child(sup_state *s, const sup_req *r)
{
    if (r->has_id)
        return gr__sup_find_id(s, r->id);
    return gr__refmap_get(&s->running, r->child);
}

static int terminate_child(sup_state *s, gr_ctx *ctx, const sup_req *r,
                           const gr_msg *m)
{
    sup_child *c = find_child(s, r);
    if (c == NULL) {
        gr__sup_reply(ctx, m->from, m->corr, GR_ENOTFOUND, GR_REF_NONE, NULL,
                      0);
        return GR_CONTINUE;
    }
    gr__sup_cancel_restart(s, c);
    /* OTP: a terminated temporary child's spec goes; dynamic children go. */
    sup_child *remove = c->restart == GR_TEMPORARY || c->dynamic ? c : NULL;
    if (gr_ref_is_none(c->ref)) {
        c->state = GR_CHILD_STOPPED;
        if (remove != NULL)
            gr__sup_remove_child(s, remove);
        gr__sup_reply(ctx, m->from, m->corr, GR_OK, GR_REF_NONE, NULL, 0);
        return GR_CONTINUE;
    }
    sup_child **stop = malloc(sizeof *stop);
    if (stop == NULL) {
        gr__sup_reply(ctx, m->from, m->corr, GR_ENOMEM, GR_REF_NONE, NULL, 0);
        return GR_CONTINUE;
    }
    stop[0] = c;
    return gr__sup_job_terminate(s, ctx, stop, 1, m->from, m->corr, remove);
}

static int restart_child(sup_state *s, gr_ctx *ctx, const sup_req *r,
                         gr_ref *out)
{
    if (s->strategy == GR_SIMPLE_ONE_FOR_ONE)
        return GR_EINVAL;
    sup_child *c = gr__sup_find_id(s, r->id);
    if (c == NULL)
        return GR_ENOTFOUND;
    if (!gr_ref_is_none(c->ref))
        return GR_EBUSY;
    gr__sup_cancel_restart(s, c);
    gr_reason why;
    int rc = gr__sup_start_child(s, ctx, c, true, &why);
    if (rc != GR_OK) {
        c->state = GR_CHILD_STOPPED;
        return rc;
    }
    *out = c->ref;
    return GR_OK;
}

static int delete_child(sup_state *s, const sup_req *r)
{
    if (s->strategy == GR_SIMPLE_ONE_FOR_ONE)
        return GR_EINVAL;
    sup_child *c = gr__sup_find_id(s, r->id);
    if (c == NULL)
        return GR_ENOTFOUND;
    if (c->state != GR_CHILD_STOPPED)
        return GR_EBUSY;
    gr__sup_remove_child(s, c);
    return GR_OK;
}

/* Answers a listing of s's children: head_len bytes of head, the count of
 * children, then up to cap entries, each a gr__child_view when views,
 * else a gr_child_info. */
static void list_children(sup_state *s, gr_ctx *ctx, const gr_msg *m,
                          uint32_t cap, const void *head, size_t head_len,
                          bool views)
{
    uint64_t total = s->nchildren;
    size_t k = total < cap ? (size_t)total : cap;
    size_t size = views ? sizeof(gr__child_view) : sizeof(gr_child_info);
    size_t len = head_len + sizeof total + k * size;
    unsigned char *buf = malloc(len);
    if (buf == NULL) {
        gr__sup_reply(ctx, m->from, m->corr, GR_ENOMEM, GR_REF_NONE, NULL, 0);
        return;
    }
    if (head_len > 0)
        memcpy(buf, head, head_len);
    memcpy(buf + head_len, &total, sizeof total);
    unsigned char *at = buf + head_len + sizeof total;
    size_t i = 0;
    for (sup_child *c = s->first; c != NULL && i < k; c = c->next, i++) {
        gr__child_view v = {.info = {.ref = c->ref,
                                     .state = c->state,
                                     .type = c->type,
                                     .restart = c->restart},
                            .restarts = c->restarts};
        strncpy(v.info.id, c->id, GR_NAME_MAX);
        if (views)
            memcpy(at + i * size, &v, size);
        else
            memcpy(at + i * size, &v.info, size);
    }
    gr__sup_reply(ctx, m->from, m->corr, GR_OK, GR_REF_NONE, buf, len);
    free(buf);
}

/* Answers SUP_DESCRIBE: a gr__sup_view, then the children as views. */
static void describe(sup_state *s, gr_ctx *ctx, const sup_req *r,
                     const gr_msg *m)
{
    gr__sup_view view = {
        .strategy = s->strategy,
        .intensity = s->window.limit,
        .period_ms = s->window.period_ms,
        .recent = gr__sup_window_recent(&s->window, gr__sup_now_ms())};
    if (s->name != NULL)
        strncpy(view.name, s->name, GR_NAME_MAX);
    list_children(s, ctx, m, r->cap, &view, sizeof view, true);
}

static void count_children(sup_state *s, gr_ctx *ctx, const gr_msg *m)
{
    gr_child_counts n = {.specs = s->nchildren};
    for (sup_child *c = s->first; c != NULL; c = c->next) {
        n.active += !gr_ref_is_none(c->ref);
        if (c->type == GR_SUPERVISOR)
            n.supervisors++;
        else
            n.workers++;
    }
    gr__sup_reply(ctx, m->from, m->corr, GR_OK, GR_REF_NONE, &n, sizeof n);
}

int gr__sup_handle_call(sup_state *s, gr_ctx *ctx, const gr_msg *m)
{
    sup_req r;
    if (m->len < sizeof r) {
        gr__sup_reply(ctx, m->from, m->corr, GR_EINVAL, GR_REF_NONE, NULL, 0);
        return GR_CONTINUE;
    }
    /* The arg bytes stay in the message; r is only the fixed part. */
    const sup_req *req = m->data;
    memcpy(&r, req, sizeof r);
    if (r.arg_len != m->len - sizeof r) {
        gr__sup_reply(ctx, m->from, m->corr, GR_EINVAL, GR_REF_NONE, NULL, 0);
        return GR_CONTINUE;
    }
    gr_ref child = GR_REF_NONE;
    int rc;
    switch (r.op) {
    case SUP_START_CHILD:
    case SUP_SPAWN_CHILD:
        rc = add_and_start(s, ctx, req, &child);
        break;
    case SUP_TERMINATE_CHILD:
        return terminate_child(s, ctx, &r, m);
    case SUP_RESTART_CHILD:
        rc = restart_child(s, ctx, &r, &child);
        break;
    case SUP_DELETE_CHILD:
        rc = delete_child(s, &r);
        break;
    case SUP_WHICH_CHILDREN:
        list_children(s, ctx, m, r.cap, NULL, 0, false);
        return GR_CONTINUE;
    case SUP_COUNT_CHILDREN:
        count_children(s, ctx, m);
        return GR_CONTINUE;
    case SUP_DESCRIBE:
        describe(s, ctx, &r, m);
        return GR_CONTINUE;
    default:
        rc = GR_EINVAL;
        break;
    }
    gr__sup_reply(ctx, m->from, m->corr, rc, child, NULL, 0);
    return GR_CONTINUE;
}
