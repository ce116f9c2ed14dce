/*
 * echo: a TCP line-echo server, built the way Grove servers are.
 *
 *   top (rest_for_one)
 *   |-- sessions (simple_one_for_one)  one temporary session per connection
 *   `-- listener                        accepts, hands each connection over
 *
 * The listener owns the listening socket. Each accepted connection arrives
 * as a GR_IO_ACCEPTED message; the listener asks the sessions supervisor
 * for a new session and gives it the socket (gr_io_give). A session owns
 * its connection: it reads one line at a time (active once, so a client
 * that floods it is held back by TCP, not by memory), writes it back, and
 * exits when the client leaves. A session that crashes (send it "crash")
 * takes only its own connection with it. SIGINT or SIGTERM stops it all.
 *
 *   echo [host:port]              default 127.0.0.1:7000; port 0 picks one
 *   printf 'hi\ncrash\n' | nc 127.0.0.1 7000
 */
#include <grove/grove.h>

#include <stdio.h>
#include <string.h>

/* Longest line a client may send, and the most clients at once. */
#define MAX_LINE    1024
#define MAX_CLIENTS 1000
/* Connections handed to sessions not started yet (a small table). */
#define MAX_PENDING 64

/* ---- a session: one connection ----------------------------------------- */

static int session_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    gr_io_event ev;
    if (gr_io_event_read(m, &ev) != GR_OK)
        return GR_CONTINUE; /* Not about a socket: nothing else to do. */
    switch (ev.kind) {
    case GR_IO_GIVEN: /* The connection is ours: start reading. */
        return gr_io_activate(ctx, ev.socket, 1);
    case GR_IO_DATA:
        if (ev.len == 5 && memcmp(ev.data, "crash", 5) == 0)
            gr_fail(ctx, "asked to crash by the client");
        if (gr_io_write(ctx, ev.socket, ev.data, ev.len) != GR_OK ||
            gr_io_write(ctx, ev.socket, "\n", 1) != GR_OK)
            return GR_STOP; /* The client does not read: let it go. */
        return gr_io_activate(ctx, ev.socket, 1);
    case GR_IO_ERROR:
        if (ev.code == GR_EMSGSIZE) /* A line too long: say so, then go. */
            (void)gr_io_write(ctx, ev.socket, "ERR line too long\n", 18);
        return GR_STOP; /* Our exit closes the socket. */
    default:            /* GR_IO_CLOSED: the client left. */
        return GR_STOP;
    }
}

static const gr_behaviour session = {.name = "session",
                                     .handle = session_handle};

/* ---- the listener ------------------------------------------------------- */

typedef struct listener {
    gr_socket pending[MAX_PENDING]; /* By slot; GR_SOCKET_NONE when free. */
    uint64_t corr[MAX_PENDING];     /* The spawn request of each slot. */
} listener;

static int listener_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)len;
    gr_io_opts opts = {
        .framing = GR_IO_LINE,
        .max_frame = MAX_LINE,
        .max_connections = MAX_CLIENTS,
        .close_when_full = 1, /* A client that never reads is dropped. */
    };
    gr_socket s;
    int rc = gr_io_listen(ctx, arg, &opts, &s);
    if (rc != GR_OK) {
        fprintf(stderr, "echo: cannot listen on %s: %s\n", (const char *)arg,
                gr_strerror(rc));
        return rc; /* The supervisor's start fails, and main says so. */
    }
    uint16_t port = 0;
    (void)gr_io_port(ctx, s, &port);
    printf("echo: listening on port %u\n", port);
    fflush(stdout);
    return GR_OK;
}

/* A new connection: ask the sessions supervisor for a session, and keep
 * the socket until it answers. */
static int on_accepted(gr_ctx *ctx, listener *l, gr_socket s)
{
    for (int i = 0; i < MAX_PENDING; i++) {
        if (l->pending[i].id != 0)
            continue;
        gr_ref sup;
        if (gr_whereis(gr_ctx_system(ctx), "sessions", &sup) == GR_OK &&
            gr_supervisor_spawn_child_async(
                ctx, sup, NULL, 0, GR_DURATION_DEFAULT, &l->corr[i]) == GR_OK) {
            l->pending[i] = s;
            return GR_CONTINUE;
        }
        break;
    }
    (void)gr_io_close(ctx, s); /* No session for it: turn it away. */
    return GR_CONTINUE;
}

/* The supervisor answered: give the socket to the new session, or close
 * it when no session could start. */
static int on_session(gr_ctx *ctx, listener *l, const gr_msg *m)
{
    gr_sup_reply r;
    if (gr_sup_reply_read(m, &r) != GR_OK)
        return GR_CONTINUE;
    for (int i = 0; i < MAX_PENDING; i++) {
        if (l->pending[i].id == 0 || l->corr[i] != m->corr)
            continue;
        if (r.rc != GR_OK || gr_io_give(ctx, l->pending[i], r.child) != GR_OK)
            (void)gr_io_close(ctx, l->pending[i]);
        l->pending[i] = GR_SOCKET_NONE;
    }
    return GR_CONTINUE;
}

static int listener_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    listener *l = state;
    if (m->flags & GR_MSG_REPLY)
        return on_session(ctx, l, m);
    gr_io_event ev;
    if (gr_io_event_read(m, &ev) == GR_OK && ev.kind == GR_IO_ACCEPTED)
        return on_accepted(ctx, l, ev.socket);
    return GR_CONTINUE;
}

static const gr_behaviour listener_behaviour = {
    .name = "listener",
    .state_size = sizeof(listener),
    .init = listener_init,
    .handle = listener_handle,
};

/* ---- the tree ----------------------------------------------------------- */

static const gr_child_spec session_template[] = {{
    .behaviour = &session,
    .restart = GR_TEMPORARY, /* A session's client is gone with it. */
}};

static const gr_sup_spec sessions_spec = {
    .strategy = GR_SIMPLE_ONE_FOR_ONE,
    .children = session_template,
    .nchildren = 1,
};

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:7000";
    gr_child_spec children[] = {
        {.id = "sessions",
         .name = "sessions",
         .behaviour = &gr_supervisor_behaviour,
         .arg = &sessions_spec,
         .arg_len = sizeof sessions_spec,
         .restart = GR_PERMANENT,
         .type = GR_SUPERVISOR},
        {.id = "listener",
         .behaviour = &listener_behaviour,
         .arg = addr,
         .arg_len = strlen(addr) + 1,
         .restart = GR_PERMANENT},
    };
    gr_sup_spec top = {.strategy = GR_REST_FOR_ONE,
                       .intensity = 5,
                       .children = children,
                       .nchildren = 2};
    gr_system *sys;
    int rc = gr_system_start(NULL, &sys);
    if (rc != GR_OK) {
        fprintf(stderr, "echo: cannot start: %s\n", gr_strerror(rc));
        return 1;
    }
    gr_ref root;
    if ((rc = gr_supervisor_start(sys, &top, &root)) != GR_OK) {
        fprintf(stderr, "echo: cannot start the server: %s\n", gr_strerror(rc));
        gr_system_shutdown(sys);
        return 1;
    }
    return gr_system_run(sys) == GR_OK ? 0 : 1;
}
