/*
 * The runtime API, caller side: requests to a supervisor, sent from an
 * actor (the *_async forms: asks, answered by a GR_MSG_SUP_REPLY, a
 * GR_MSG_TIMEOUT or a GR_MSG_ASK_FAILED) or from a plain thread (calls).
 */
#include <stdlib.h>
#include <string.h>

#include <grove/inbox.h>

#include "actor/runtime.h"
#include "supervisor/describe.h"
#include "supervisor/sup.h"

/* Copies a label into a request field; GR_ENAMETOOLONG if it cannot fit. */
static int put_label(char *dst, uint32_t *has, const char *src)
{
    *has = src != NULL;
    if (src == NULL)
        return GR_OK;
    size_t n = strlen(src);
    if (n > GR_NAME_MAX)
        return GR_ENAMETOOLONG;
    memcpy(dst, src, n + 1);
    return GR_OK;
}

/* Builds a request of op with arg bytes after it; *out is malloc'd. */
static int build(uint32_t op, const void *arg, size_t arg_len, sup_req **out,
                 size_t *len)
{
    if ((arg == NULL) != (arg_len == 0))
        return GR_EINVAL;
    sup_req *r = calloc(1, sizeof *r + arg_len);
    if (r == NULL)
        return GR_ENOMEM;
    r->op = op;
    r->arg_len = arg_len;
    if (arg_len > 0)
        memcpy(r->arg, arg, arg_len);
    *out = r;
    *len = sizeof *r + arg_len;
    return GR_OK;
}

/* Builds a start-child request from spec. */
static int build_start(const gr_child_spec *spec, sup_req **out, size_t *len)
{
    if (spec == NULL)
        return GR_EINVAL;
    int rc = build(SUP_START_CHILD, spec->arg, spec->arg_len, out, len);
    if (rc != GR_OK)
        return rc;
    sup_req *r = *out;
    r->b = spec->behaviour;
    r->restart = spec->restart;
    r->shutdown_ms = spec->shutdown_ms;
    r->type = spec->type;
    r->blocking = spec->blocking != 0;
    if ((rc = put_label(r->id, &r->has_id, spec->id)) != GR_OK ||
        (rc = put_label(r->name, &r->has_name, spec->name)) != GR_OK) {
        free(r);
        return rc;
    }
    return GR_OK;
}

/* Builds a terminate request naming the child by id or by ref. */
static int build_terminate(const char *id, gr_ref child, sup_req **out,
                           size_t *len)
{
    int rc = build(SUP_TERMINATE_CHILD, NULL, 0, out, len);
    if (rc == GR_OK &&
        (rc = put_label((*out)->id, &(*out)->has_id, id)) != GR_OK)
        free(*out);
    if (rc == GR_OK)
        (*out)->child = child;
    return rc;
}

/* Sends a request from an actor; frees it. */
static int send_async(gr_ctx *ctx, gr_ref sup, sup_req *r, size_t len,
                      gr_duration timeout, uint64_t *corr)
{
    int rc = gr__ask_any(ctx, sup, GR__MSG_SUP_CALL, r, len, timeout, NULL,
                         NULL, corr);
    free(r);
    return rc;
}

/*
 * Sends a request from a plain thread and waits for the answer (a runtime
 * call, actor/request.h): its header into *reply, and up to extra_len bytes
 * after it into extra. Frees the request. Waits up to timeout; it returns
 * sooner when the supervisor exits or its node goes down, and at once for
 * a target that is not a supervisor (GR_ENOTSUP).
 */
static int call(gr_system *sys, gr_ref sup, sup_req *r, size_t len,
                gr_duration timeout, gr_sup_reply *reply, void *extra,
                size_t extra_len)
{
    gr_msg *m = NULL;
    int rc = gr__call_any(sys, sup, GR__MSG_SUP_CALL, r, len, timeout, &m);
    free(r);
    if (rc != GR_OK)
        return rc;
    if ((rc = gr_sup_reply_read(m, reply)) == GR_OK) {
        size_t more = m->len > sizeof *reply ? m->len - sizeof *reply : 0;
        if (extra != NULL)
            memcpy(extra, (const char *)m->data + sizeof *reply,
                   more < extra_len ? more : extra_len);
        rc = reply->rc;
    }
    gr_msg_free(m);
    return rc;
}

/* Sends r and returns the answer's code, storing its child in *out. */
static int call_ref(gr_system *sys, gr_ref sup, sup_req *r, size_t len,
                    gr_duration timeout, gr_ref *out)
{
    gr_sup_reply reply;
    int rc = call(sys, sup, r, len, timeout, &reply, NULL, 0);
    if (rc == GR_OK && out != NULL)
        *out = reply.child;
    return rc;
}

int gr_supervisor_start_child(gr_system *sys, gr_ref sup,
                              const gr_child_spec *spec, gr_duration timeout,
                              gr_ref *out)
{
    sup_req *r;
    size_t len;
    int rc = sys == NULL ? GR_EINVAL : build_start(spec, &r, &len);
    return rc != GR_OK ? rc : call_ref(sys, sup, r, len, timeout, out);
}

int gr_supervisor_spawn_child(gr_system *sys, gr_ref sup, const void *arg,
                              size_t arg_len, gr_duration timeout, gr_ref *out)
{
    sup_req *r;
    size_t len;
    int rc = sys == NULL ? GR_EINVAL
                         : build(SUP_SPAWN_CHILD, arg, arg_len, &r, &len);
    return rc != GR_OK ? rc : call_ref(sys, sup, r, len, timeout, out);
}

int gr_supervisor_terminate_child(gr_system *sys, gr_ref sup, const char *id,
                                  gr_ref child, gr_duration timeout)
{
    sup_req *r;
    size_t len;
    int rc = sys == NULL ? GR_EINVAL : build_terminate(id, child, &r, &len);
    return rc != GR_OK ? rc : call_ref(sys, sup, r, len, timeout, NULL);
}

/* Builds a request that names a static child by id. */
static int build_by_id(uint32_t op, const char *id, sup_req **out, size_t *len)
{
    if (id == NULL)
        return GR_EINVAL;
    int rc = build(op, NULL, 0, out, len);
    if (rc == GR_OK &&
        (rc = put_label((*out)->id, &(*out)->has_id, id)) != GR_OK)
        free(*out);
    return rc;
}

int gr_supervisor_restart_child(gr_system *sys, gr_ref sup, const char *id,
                                gr_duration timeout, gr_ref *out)
{
    sup_req *r;
    size_t len;
    int rc =
        sys == NULL ? GR_EINVAL : build_by_id(SUP_RESTART_CHILD, id, &r, &len);
    return rc != GR_OK ? rc : call_ref(sys, sup, r, len, timeout, out);
}

int gr_supervisor_delete_child(gr_system *sys, gr_ref sup, const char *id,
                               gr_duration timeout)
{
    sup_req *r;
    size_t len;
    int rc =
        sys == NULL ? GR_EINVAL : build_by_id(SUP_DELETE_CHILD, id, &r, &len);
    return rc != GR_OK ? rc : call_ref(sys, sup, r, len, timeout, NULL);
}

/* A call whose answer is head_len bytes (stored in head), the count of
 * entries, then up to cap entries of size bytes (stored in out). */
static int list_call(gr_system *sys, gr_ref sup, uint32_t op,
                     gr_duration timeout, void *head, size_t head_len,
                     void *out, size_t size, size_t cap, size_t *count)
{
    if (sys == NULL || (out == NULL && cap > 0) || cap > UINT32_MAX)
        return GR_EINVAL;
    sup_req *r;
    size_t len;
    int rc = build(op, NULL, 0, &r, &len);
    if (rc != GR_OK)
        return rc;
    r->cap = (uint32_t)cap;
    uint64_t total;
    size_t extra_len = head_len + sizeof total + cap * size;
    unsigned char *extra = malloc(extra_len);
    if (extra == NULL) {
        free(r);
        return GR_ENOMEM;
    }
    gr_sup_reply reply;
    rc = call(sys, sup, r, len, timeout, &reply, extra, extra_len);
    if (rc == GR_OK) {
        if (head_len > 0)
            memcpy(head, extra, head_len);
        memcpy(&total, extra + head_len, sizeof total);
        size_t k = total < cap ? (size_t)total : cap;
        if (k > 0)
            memcpy(out, extra + head_len + sizeof total, k * size);
        if (count != NULL)
            *count = (size_t)total;
    }
    free(extra);
    return rc;
}

int gr_supervisor_which_children(gr_system *sys, gr_ref sup,
                                 gr_duration timeout, gr_child_info *out,
                                 size_t cap, size_t *count)
{
    return list_call(sys, sup, SUP_WHICH_CHILDREN, timeout, NULL, 0, out,
                     sizeof *out, cap, count);
}

int gr__supervisor_describe(gr_system *sys, gr_ref sup, gr_duration timeout,
                            gr__sup_view *view, gr__child_view *out, size_t cap,
                            size_t *count)
{
    if (view == NULL)
        return GR_EINVAL;
    return list_call(sys, sup, SUP_DESCRIBE, timeout, view, sizeof *view, out,
                     sizeof *out, cap, count);
}

const char *gr__strategy_name(gr_strategy s)
{
    static const char *const names[] = {"one_for_one", "one_for_all",
                                        "rest_for_one", "simple_one_for_one"};
    return (unsigned)s < 4 ? names[s] : "?";
}

int gr_supervisor_count_children(gr_system *sys, gr_ref sup,
                                 gr_duration timeout, gr_child_counts *out)
{
    if (sys == NULL || out == NULL)
        return GR_EINVAL;
    sup_req *r;
    size_t len;
    int rc = build(SUP_COUNT_CHILDREN, NULL, 0, &r, &len);
    if (rc != GR_OK)
        return rc;
    gr_sup_reply reply;
    return call(sys, sup, r, len, timeout, &reply, out, sizeof *out);
}

int gr_supervisor_start_child_async(gr_ctx *ctx, gr_ref sup,
                                    const gr_child_spec *spec,
                                    gr_duration timeout, uint64_t *corr)
{
    sup_req *r;
    size_t len;
    int rc = ctx == NULL ? GR_EINVAL : build_start(spec, &r, &len);
    return rc != GR_OK ? rc : send_async(ctx, sup, r, len, timeout, corr);
}

int gr_supervisor_spawn_child_async(gr_ctx *ctx, gr_ref sup, const void *arg,
                                    size_t arg_len, gr_duration timeout,
                                    uint64_t *corr)
{
    sup_req *r;
    size_t len;
    int rc = ctx == NULL ? GR_EINVAL
                         : build(SUP_SPAWN_CHILD, arg, arg_len, &r, &len);
    return rc != GR_OK ? rc : send_async(ctx, sup, r, len, timeout, corr);
}

int gr_supervisor_terminate_child_async(gr_ctx *ctx, gr_ref sup, const char *id,
                                        gr_ref child, gr_duration timeout,
                                        uint64_t *corr)
{
    sup_req *r;
    size_t len;
    int rc = ctx == NULL ? GR_EINVAL : build_terminate(id, child, &r, &len);
    return rc != GR_OK ? rc : send_async(ctx, sup, r, len, timeout, corr);
}

int gr_sup_reply_read(const gr_msg *msg, gr_sup_reply *out)
{
    if (msg == NULL || out == NULL || !(msg->flags & GR_MSG_REPLY))
        return GR_EINVAL;
    gr_reason why;
    *out = (gr_sup_reply){.child = GR_REF_NONE};
    if (msg->type == GR_MSG_SUP_REPLY && msg->len >= sizeof *out)
        memcpy(out, msg->data, sizeof *out);
    else if (msg->type == GR_MSG_TIMEOUT)
        out->rc = GR_ETIMEDOUT;
    else if (gr_ask_failed_read(msg, &why) == GR_OK)
        out->rc = gr__ask_failed_rc(&why);
    else
        return GR_EINVAL;
    return GR_OK;
}
