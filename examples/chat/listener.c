/*
 * The listener: owns the listening socket, turns away clients beyond the
 * limit with "ERR full", and hands every other connection to a new
 * session started under the sessions supervisor (simple-one-for-one).
 */
#include "chat.h"

#include <stdio.h>
#include <string.h>

/* Connections handed to sessions not started yet. */
#define PENDING_MAX 64

typedef struct listener {
    uint32_t max_clients;
    chat_session_arg session; /* Each session's init arg. */
    uint32_t live;            /* Sessions started and not yet gone. */
    gr_socket pending[PENDING_MAX];
    uint64_t corr[PENDING_MAX];
} listener;

static int listener_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    listener *l = state;
    chat_listen_arg a;
    if (len != sizeof a)
        return GR_EINVAL;
    memcpy(&a, arg, sizeof a);
    l->max_clients = a.max_clients;
    l->session = a.session;
    /* A session drops a client that leaves more than send_limit unread,
     * with a last line that the reserve makes room for. The kernel's own
     * buffer is kept small, or it would take megabytes first. */
    gr_io_opts opts = {
        .framing = GR_IO_LINE,
        .max_frame = CHAT_LINE_MAX,
        .send_buffer = a.session.send_limit + CHAT_SEND_RESERVE,
        .sndbuf = 16 * 1024,
    };
    gr_socket s;
    uint16_t port = 0;
    int rc = gr_io_listen(ctx, a.addr, &opts, &s);
    if (rc == GR_OK)
        (void)gr_io_port(ctx, s, &port);
    if (rc != GR_OK) {
        fprintf(stderr, "chat: cannot listen on %s: %s%s\n", a.addr,
                gr_strerror(rc),
                rc == GR_EINVAL ? " (HOST:PORT with a numeric host or "
                                  "localhost, [v6]:PORT, or unix:/path)"
                                : "");
        return rc;
    }
    /* The address with the port bound (port 0 leaves it to the kernel). */
    char shown[160];
    const char *colon = strrchr(a.addr, ':');
    if (port != 0 && colon != NULL)
        snprintf(shown, sizeof shown, "%.*s:%u (port %u)",
                 (int)(colon - a.addr), a.addr, port, port);
    else /* A Unix socket: no port. */
        snprintf(shown, sizeof shown, "%s", a.addr);
    printf("listening on %s\n", shown);
    fflush(stdout);
    return GR_OK;
}

/* Turns a connection away: one line, then closed. */
static int turn_away(gr_ctx *ctx, gr_socket s, const char *why)
{
    (void)gr_io_write(ctx, s, why, strlen(why));
    (void)gr_io_close(ctx, s);
    return GR_CONTINUE;
}

static int on_accepted(gr_ctx *ctx, listener *l, gr_socket s)
{
    if (l->live >= l->max_clients)
        return turn_away(ctx, s, "ERR full server full\n");
    for (int i = 0; i < PENDING_MAX; i++) {
        if (l->pending[i].id != 0)
            continue;
        gr_ref sup;
        if (gr_whereis(gr_ctx_system(ctx), CHAT_SESSIONS, &sup) != GR_OK ||
            gr_supervisor_spawn_child_async(
                ctx, sup, &l->session, sizeof l->session, GR_DURATION_DEFAULT,
                &l->corr[i]) != GR_OK)
            break;
        l->pending[i] = s;
        return GR_CONTINUE;
    }
    return turn_away(ctx, s, "ERR full server busy, try again\n");
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
        /* Counted until it exits: its DOWN comes to us. */
        if (r.rc == GR_OK && gr_monitor(ctx, r.child, NULL) == GR_OK &&
            gr_io_give(ctx, s, r.child) == GR_OK)
            l->live++;
        else
            (void)turn_away(ctx, s, "ERR full no session, try again\n");
    }
    return GR_CONTINUE;
}

static int listener_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    listener *l = state;
    if (m->flags & GR_MSG_REPLY)
        return on_started(ctx, l, m);
    gr_down d;
    if (gr_down_read(m, &d) == GR_OK) {
        if (l->live > 0)
            l->live--;
        return GR_CONTINUE;
    }
    gr_io_event ev;
    if (gr_io_event_read(m, &ev) == GR_OK && ev.kind == GR_IO_ACCEPTED)
        return on_accepted(ctx, l, ev.socket);
    return GR_CONTINUE;
}

const gr_behaviour chat_listener = {
    .name = "listener",
    .state_size = sizeof(listener),
    .init = listener_init,
    .handle = listener_handle,
};
