/*
 * The runtime API, caller side: requests to a supervisor, sent from an
 * actor (the *_async forms, answered by a GR_MSG_SUP_REPLY) or from a
 * plain thread (blocking on a private inbox until the answer comes).
 */
#include <stdlib.h>
#include <string.h>

#include <grove/inbox.h>

#include "actor/actor.h"
#include "actor/message.h"
#include "actor/scheduler.h"
#include "actor/send.h"
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
static int send_async(gr_ctx *ctx, gr_ref sup, uint64_t corr, sup_req *r,
                      size_t len)
{
    int rc = gr__deliver(gr_ctx_system(ctx), ctx->w, GR__MSG_SUP_CALL,
                         gr_self(ctx), sup, corr, r, len);
    free(r);
    return rc;
}

/*
 * Sends a request from a plain thread and waits for the answer: its
 * header into *reply, and up to extra_len bytes after it into extra.
 * Frees the request.
 */
static int call(gr_system *sys, gr_ref sup, sup_req *r, size_t len,
                gr_sup_reply *reply, void *extra, size_t extra_len)
{
    if (gr__in_handler()) {
        free(r);
        return GR_EWRONGTHREAD;
    }
    gr_inbox *inbox;
    int rc = gr_inbox_open(sys, &inbox);
    if (rc != GR_OK) {
        free(r);
        return rc;
    }
    rc = gr__deliver(sys, NULL, GR__MSG_SUP_CALL, gr_inbox_ref(inbox), sup, 1,
                     r, len);
    free(r);
    /* Once sent, an answer always comes (see calls.c), so wait for it. */
    while (rc == GR_OK) {
        gr_msg *m;
        rc = gr_inbox_recv(inbox, &m, GR_DURATION_INFINITE);
        if (rc != GR_OK)
            break;
        if (m->type == GR_MSG_SUP_REPLY && m->corr == 1 &&
            m->len >= sizeof *reply) {
            memcpy(reply, m->data, sizeof *reply);
            size_t more = m->len - sizeof *reply;
            if (extra != NULL)
                memcpy(extra, (const char *)m->data + sizeof *reply,
                       more < extra_len ? more : extra_len);
            gr_msg_free(m);
            rc = reply->rc;
            break;
        }
        gr_msg_free(m);
    }
    gr_inbox_close(inbox);
    return rc;
}

/* Sends r and returns the answer's code, storing its child in *out. */
static int call_ref(gr_system *sys, gr_ref sup, sup_req *r, size_t len,
                    gr_ref *out)
{
    gr_sup_reply reply;
    int rc = call(sys, sup, r, len, &reply, NULL, 0);
    if (rc == GR_OK && out != NULL)
        *out = reply.child;
    return rc;
}

int gr_supervisor_start_child(gr_system *sys, gr_ref sup,
                              const gr_child_spec *spec, gr_ref *out)
{
    sup_req *r;
    size_t len;
    int rc = sys == NULL ? GR_EINVAL : build_start(spec, &r, &len);
    return rc != GR_OK ? rc : call_ref(sys, sup, r, len, out);
}

int gr_supervisor_spawn_child(gr_system *sys, gr_ref sup, const void *arg,
                              size_t arg_len, gr_ref *out)
{
    sup_req *r;
    size_t len;
    int rc = sys == NULL ? GR_EINVAL
                         : build(SUP_SPAWN_CHILD, arg, arg_len, &r, &len);
    return rc != GR_OK ? rc : call_ref(sys, sup, r, len, out);
}

int gr_supervisor_terminate_child(gr_system *sys, gr_ref sup, const char *id,
                                  gr_ref child)
{
    sup_req *r;
    size_t len;
    int rc = sys == NULL ? GR_EINVAL : build_terminate(id, child, &r, &len);
    return rc != GR_OK ? rc : call_ref(sys, sup, r, len, NULL);
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
                                gr_ref *out)
{
    sup_req *r;
    size_t len;
    int rc =
        sys == NULL ? GR_EINVAL : build_by_id(SUP_RESTART_CHILD, id, &r, &len);
    return rc != GR_OK ? rc : call_ref(sys, sup, r, len, out);
}

int gr_supervisor_delete_child(gr_system *sys, gr_ref sup, const char *id)
{
    sup_req *r;
    size_t len;
    int rc =
        sys == NULL ? GR_EINVAL : build_by_id(SUP_DELETE_CHILD, id, &r, &len);
    return rc != GR_OK ? rc : call_ref(sys, sup, r, len, NULL);
}

int gr_supervisor_which_children(gr_system *sys, gr_ref sup, gr_child_info *out,
                                 size_t cap, size_t *count)
{
    if (sys == NULL || (out == NULL && cap > 0) || cap > UINT32_MAX)
        return GR_EINVAL;
    sup_req *r;
    size_t len;
    int rc = build(SUP_WHICH_CHILDREN, NULL, 0, &r, &len);
    if (rc != GR_OK)
        return rc;
    r->cap = (uint32_t)cap;
    size_t extra_len = sizeof(uint64_t) + cap * sizeof *out;
    unsigned char *extra = malloc(extra_len);
    if (extra == NULL) {
        free(r);
        return GR_ENOMEM;
    }
    gr_sup_reply reply;
    rc = call(sys, sup, r, len, &reply, extra, extra_len);
    if (rc == GR_OK) {
        uint64_t total;
        memcpy(&total, extra, sizeof total);
        size_t k = total < cap ? (size_t)total : cap;
        if (k > 0)
            memcpy(out, extra + sizeof total, k * sizeof *out);
        if (count != NULL)
            *count = (size_t)total;
    }
    free(extra);
    return rc;
}

int gr_supervisor_count_children(gr_system *sys, gr_ref sup,
                                 gr_child_counts *out)
{
    if (sys == NULL || out == NULL)
        return GR_EINVAL;
    sup_req *r;
    size_t len;
    int rc = build(SUP_COUNT_CHILDREN, NULL, 0, &r, &len);
    if (rc != GR_OK)
        return rc;
    gr_sup_reply reply;
    return call(sys, sup, r, len, &reply, out, sizeof *out);
}

int gr_supervisor_start_child_async(gr_ctx *ctx, gr_ref sup,
                                    const gr_child_spec *spec, uint64_t corr)
{
    sup_req *r;
    size_t len;
    int rc = ctx == NULL ? GR_EINVAL : build_start(spec, &r, &len);
    return rc != GR_OK ? rc : send_async(ctx, sup, corr, r, len);
}

int gr_supervisor_spawn_child_async(gr_ctx *ctx, gr_ref sup, const void *arg,
                                    size_t arg_len, uint64_t corr)
{
    sup_req *r;
    size_t len;
    int rc = ctx == NULL ? GR_EINVAL
                         : build(SUP_SPAWN_CHILD, arg, arg_len, &r, &len);
    return rc != GR_OK ? rc : send_async(ctx, sup, corr, r, len);
}

int gr_supervisor_terminate_child_async(gr_ctx *ctx, gr_ref sup, const char *id,
                                        gr_ref child, uint64_t corr)
{
    sup_req *r;
    size_t len;
    int rc = ctx == NULL ? GR_EINVAL : build_terminate(id, child, &r, &len);
    return rc != GR_OK ? rc : send_async(ctx, sup, corr, r, len);
}

int gr_sup_reply_read(const gr_msg *msg, gr_sup_reply *out)
{
    if (msg == NULL || out == NULL || msg->type != GR_MSG_SUP_REPLY ||
        msg->len < sizeof *out)
        return GR_EINVAL;
    memcpy(out, msg->data, sizeof *out);
    return GR_OK;
}
