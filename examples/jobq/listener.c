/*
 * A listener (TCP or Unix): hands every connection to a new conn started
 * under the conns supervisor (simple-one-for-one). Connections are read
 * as length-prefixed frames of at most JQ_FRAME_MAX bytes.
 */
#include "jobq.h"

#include <stdio.h>
#include <string.h>

/* Connections handed to conns not started yet. */
#define PENDING_MAX 64

typedef struct listener {
    gr_socket pending[PENDING_MAX];
    uint64_t corr[PENDING_MAX];
} listener;

static int listener_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    jq_listen_arg a;
    if (len != sizeof a)
        return GR_EINVAL;
    memcpy(&a, arg, sizeof a);
    a.addr[sizeof a.addr - 1] = '\0';
    /* A client that leaves answers unread past the buffer is dropped. */
    gr_io_opts opts = {.framing = GR_IO_LEN4,
                       .max_frame = JQ_FRAME_MAX,
                       .send_buffer = 8 * 1024 * 1024,
                       .close_when_full = 1};
    gr_socket s;
    uint16_t port = 0;
    int rc = gr_io_listen(ctx, a.addr, &opts, &s);
    if (rc != GR_OK) {
        fprintf(stderr, "jobq: cannot listen on %s: %s%s\n", a.addr,
                gr_strerror(rc),
                rc == GR_EINVAL ? " (HOST:PORT with a numeric host or "
                                  "localhost, [v6]:PORT, or unix:/path)"
                                : "");
        return rc;
    }
    if (strncmp(a.addr, "unix:", 5) != 0 && gr_io_port(ctx, s, &port) == GR_OK)
        printf("listening on %.*s:%u (port %u)\n",
               (int)(strrchr(a.addr, ':') - a.addr), a.addr, port, port);
    else
        printf("listening on %s\n", a.addr);
    fflush(stdout);
    return GR_OK;
}

static int on_accepted(gr_ctx *ctx, listener *l, gr_socket s)
{
    for (int i = 0; i < PENDING_MAX; i++) {
        if (l->pending[i].id != 0)
            continue;
        gr_ref sup;
        if (gr_whereis(gr_ctx_system(ctx), JQ_CONNS, &sup) != GR_OK ||
            gr_supervisor_spawn_child_async(
                ctx, sup, NULL, 0, GR_DURATION_DEFAULT, &l->corr[i]) != GR_OK)
            break;
        l->pending[i] = s;
        return GR_CONTINUE;
    }
    (void)gr_io_close(ctx, s); /* No conn for it now: the client retries. */
    return GR_CONTINUE;
}

static int on_started(gr_ctx *ctx, listener *l, const gr_msg *m)
{
    gr_sup_reply r;
    if (gr_sup_reply_read(m, &r) != GR_OK)
        return GR_CONTINUE;
    for (int i = 0; i < PENDING_MAX; i++) {
        if (l->pending[i].id == 0 || l->corr[i] != m->corr)
            continue;
        gr_socket s = l->pending[i];
        l->pending[i] = GR_SOCKET_NONE;
        if (r.rc != GR_OK || gr_io_give(ctx, s, r.child) != GR_OK)
            (void)gr_io_close(ctx, s);
    }
    return GR_CONTINUE;
}

static int listener_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    listener *l = state;
    if (m->flags & GR_MSG_REPLY)
        return on_started(ctx, l, m);
    gr_io_event ev;
    if (gr_io_event_read(m, &ev) == GR_OK && ev.kind == GR_IO_ACCEPTED)
        return on_accepted(ctx, l, ev.socket);
    return GR_CONTINUE;
}

const gr_behaviour jq_listener = {
    .name = "listener",
    .state_size = sizeof(listener),
    .init = listener_init,
    .handle = listener_handle,
};
