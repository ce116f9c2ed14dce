/*
 * The socket suites' environment: a system, the test's inbox, and "io
 * agents", actors that own sockets on the test's behalf. The test thread
 * tells an agent what to do with gr_call (listen, connect, write, ...),
 * and the agent copies every GR_MSG_IO it receives to the test's inbox, so
 * a case reads the events in the order the owner saw them. An agent in
 * echo mode writes each data message back and re-activates once, as an
 * echo server does. Real clients are plain POSIX sockets with time limits.
 * Public API only.
 */
#ifndef GROVE_TEST_IO_ENV_H
#define GROVE_TEST_IO_ENV_H

#include <grove/grove.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "helpers.h"

/* What the test tells an agent. */
enum {
    OP_LISTEN = 1,
    OP_CONNECT,
    OP_WRITE,
    OP_ACTIVATE,
    OP_CLOSE,
    OP_SHUT_WR,
    OP_GIVE,
    OP_PORT,
    OP_QUEUED,
    OP_ECHO, /* n: 1 echoes data back (and re-activates once), 2 only
                counts it in io_consumed (and re-activates once), 0 stops. */
    OP_CRASH,
    OP_BYE, /* s: the socket terminate writes "bye\n" to. */
};

/* A command (the request of a gr_call to an agent). */
typedef struct io_cmd {
    int op;
    gr_socket s;
    uint32_t n;
    gr_ref ref;
    gr_io_opts opts;
    char addr[128];
    uint32_t len;
    char data[1024];
} io_cmd;

/* An agent's answer. */
typedef struct io_ans {
    int rc;
    gr_socket s;
    uint16_t port;
    size_t queued;
} io_ans;

/* Message type of the answer and of an event copy sent to the inbox. */
enum { IO_ANS = 0x7001, IO_EVENT = 0x7002 };

/* Bytes of data agents in counting mode have handled. */
static atomic_ullong io_consumed;

typedef struct io_agent {
    gr_ref report; /* The test's inbox. */
    int echo;
    gr_socket bye;
} io_agent;

/* An agent's goodbye: what a terminate may still write, even at
 * shutdown. */
static void io_agent_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)why;
    io_agent *a = state;
    if (a->bye.id != 0)
        (void)gr_io_write(ctx, a->bye, "bye\n", 4);
}

static int io_agent_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    if (len != sizeof(gr_ref))
        return GR_EINVAL;
    memcpy(&((io_agent *)state)->report, arg, len);
    return GR_OK;
}

static int io_agent_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    io_agent *a = state;
    if (m->type == GR_MSG_IO) {
        gr_io_event ev;
        if (gr_io_event_read(m, &ev) != GR_OK)
            return GR_EFAILED;
        if (a->echo == 2 && ev.kind == GR_IO_DATA) {
            atomic_fetch_add(&io_consumed, ev.len + 1); /* With its LF. */
            (void)gr_io_activate(ctx, ev.socket, 1);
            return GR_CONTINUE; /* Too many to report one by one. */
        }
        if (a->echo == 1 && ev.kind == GR_IO_DATA) {
            (void)gr_io_write(ctx, ev.socket, ev.data, ev.len);
            (void)gr_io_activate(ctx, ev.socket, 1);
        }
        if (a->echo && ev.kind == GR_IO_ACCEPTED)
            (void)gr_io_activate(ctx, ev.socket, 1);
        if (a->echo && ev.kind == GR_IO_CLOSED)
            (void)gr_io_close(ctx, ev.socket);
        (void)gr_tell(ctx, a->report, IO_EVENT, m->data, m->len);
        return GR_CONTINUE;
    }
    if (!(m->flags & GR_MSG_REQUEST) || m->len != sizeof(io_cmd))
        return GR_CONTINUE;
    io_cmd c;
    memcpy(&c, m->data, sizeof c);
    io_ans ans = {.rc = GR_OK};
    switch (c.op) {
    case OP_LISTEN:
        ans.rc = gr_io_listen(ctx, c.addr, &c.opts, &ans.s);
        if (ans.rc == GR_OK && strncmp(c.addr, "unix:", 5) != 0)
            ans.rc = gr_io_port(ctx, ans.s, &ans.port);
        break;
    case OP_CONNECT:
        ans.rc = gr_io_connect(ctx, c.addr, &c.opts, &ans.s);
        break;
    case OP_WRITE:
        ans.rc = gr_io_write(ctx, c.s, c.len ? c.data : NULL, c.len);
        break;
    case OP_ACTIVATE:
        ans.rc = gr_io_activate(ctx, c.s, c.n);
        break;
    case OP_CLOSE:
        ans.rc = gr_io_close(ctx, c.s);
        break;
    case OP_SHUT_WR:
        ans.rc = gr_io_shutdown_write(ctx, c.s);
        break;
    case OP_GIVE:
        ans.rc = gr_io_give(ctx, c.s, c.ref);
        break;
    case OP_PORT:
        ans.rc = gr_io_port(ctx, c.s, &ans.port);
        break;
    case OP_QUEUED:
        ans.rc = gr_io_queued(ctx, c.s, &ans.queued);
        break;
    case OP_ECHO:
        a->echo = (int)c.n;
        break;
    case OP_BYE:
        a->bye = c.s;
        break;
    case OP_CRASH:
        (void)gr_reply(ctx, m, IO_ANS, &ans, sizeof ans);
        return GR_EFAILED;
    }
    return gr_reply(ctx, m, IO_ANS, &ans, sizeof ans);
}

static const gr_behaviour io_agent_behaviour = {
    .name = "io_agent",
    .state_size = sizeof(io_agent),
    .init = io_agent_init,
    .handle = io_agent_handle,
    .terminate = io_agent_terminate,
};

/* The environment of one case. */
static struct io_env {
    gr_system *sys;
    gr_inbox *inbox;
} io;

/* Starts the system from cfg (NULL: 2 workers, no signals) and the
 * inbox; false on failure. */
static inline bool io_open_with(const gr_config *cfg)
{
    gr_config def = {.workers = 2, .no_signals = 1};
    io.sys = start_system(cfg != NULL ? cfg : &def);
    return io.sys != NULL && gr_inbox_open(io.sys, &io.inbox) == GR_OK;
}

/* Starts the default system and the inbox; false on failure. */
static inline bool io_open(void)
{
    return io_open_with(NULL);
}

/* Closes the inbox and shuts the system down; returns shutdown's code. */
static inline int io_close(void)
{
    gr_inbox_close(io.inbox);
    return gr_system_shutdown(io.sys);
}

/* Spawns an agent reporting to the test's inbox. */
static inline gr_ref io_agent_spawn(void)
{
    gr_ref me = gr_inbox_ref(io.inbox), a = GR_REF_NONE;
    if (gr_system_spawn(io.sys, &io_agent_behaviour, &me, sizeof me, &a) !=
        GR_OK)
        return GR_REF_NONE;
    return a;
}

/* Runs one command on agent a; returns its answer (rc GR_ETIMEDOUT, or the
 * call's failure, when there was none). */
static inline io_ans io_do(gr_ref a, const io_cmd *c)
{
    io_ans ans = {.rc = GR_ETIMEDOUT};
    gr_msg *reply = NULL;
    int rc = gr_call(io.sys, a, 0x7000, c, sizeof *c, WAIT_MS, &reply);
    if (rc != GR_OK) {
        ans.rc = rc;
        return ans;
    }
    if (reply->type == IO_ANS && reply->len == sizeof ans)
        memcpy(&ans, reply->data, sizeof ans);
    gr_msg_free(reply);
    return ans;
}

/* The usual commands, by name. */
static inline io_ans io_listen(gr_ref a, const char *addr,
                               const gr_io_opts *opts)
{
    io_cmd c = {.op = OP_LISTEN};
    snprintf(c.addr, sizeof c.addr, "%s", addr);
    if (opts != NULL)
        c.opts = *opts;
    return io_do(a, &c);
}

static inline int io_simple(gr_ref a, int op, gr_socket s, uint32_t n)
{
    io_cmd c = {.op = op, .s = s, .n = n};
    return io_do(a, &c).rc;
}

static inline int io_write(gr_ref a, gr_socket s, const void *data, size_t len)
{
    io_cmd c = {.op = OP_WRITE, .s = s, .len = (uint32_t)len};
    memcpy(c.data, data, len);
    return io_do(a, &c).rc;
}

/* Waits for the next socket event in the inbox, skipping nothing: false
 * after WAIT_MS or on a message that is not one. The event's data, if any,
 * is copied into buf (size bytes; ev->data then points there). */
static inline bool io_next(gr_io_event *ev, char *buf, size_t size)
{
    gr_msg *m = NULL;
    if (gr_inbox_recv(io.inbox, &m, WAIT_MS) != GR_OK)
        return false;
    gr_msg copy = *m;
    copy.type = GR_MSG_IO;
    bool ok = m->type == IO_EVENT && gr_io_event_read(&copy, ev) == GR_OK;
    if (ok && buf != NULL) {
        size_t n = ev->len < size ? ev->len : size;
        if (n > 0)
            memcpy(buf, ev->data, n);
        ev->data = buf;
    }
    if (!ok)
        fprintf(stderr, "  io_next: message type 0x%x\n", m->type);
    gr_msg_free(m);
    return ok;
}

/* Waits for the next event and checks its kind. */
static inline bool io_expect(gr_io_kind kind, gr_io_event *ev)
{
    gr_io_event local;
    if (ev == NULL)
        ev = &local;
    if (!io_next(ev, NULL, 0))
        return false;
    if (ev->kind != kind)
        fprintf(stderr, "  expected %s, got %s (%s)\n", gr_io_kind_name(kind),
                gr_io_kind_name(ev->kind), ev->text);
    return ev->kind == kind;
}

/* ---- real clients ------------------------------------------------------- */

/* Forward declaration: client_tcp is below. */
static inline int client_tcp(uint16_t port);

/* What most cases start from: a listener on 127.0.0.1:0 owned by an
 * agent, and one real client connected and accepted. */
typedef struct io_conn {
    io_ans listener; /* Its port and socket. */
    int fd;          /* The client's descriptor; -1 on failure. */
    gr_socket s;     /* The accepted socket (passive, the agent's). */
} io_conn;

/* Opens c for agent with opts (may be NULL); false when a step failed. */
static inline bool io_conn_open(gr_ref agent, const gr_io_opts *opts,
                                io_conn *c)
{
    c->fd = -1;
    c->s = GR_SOCKET_NONE;
    c->listener = io_listen(agent, "127.0.0.1:0", opts);
    if (c->listener.rc != GR_OK || (c->fd = client_tcp(c->listener.port)) < 0)
        return false;
    gr_io_event ev;
    if (!io_expect(GR_IO_ACCEPTED, &ev))
        return false;
    c->s = ev.socket;
    return true;
}

/* Connects a blocking client socket to 127.0.0.1:port with a receive limit
 * of WAIT_MS; -1 on failure. */
static inline int client_tcp(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {WAIT_MS / 1000, 0};
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Writes all of data to fd; false on failure. */
static inline bool client_send(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t k = send(fd, p, len, MSG_NOSIGNAL);
        if (k <= 0)
            return false;
        p += k;
        len -= (size_t)k;
    }
    return true;
}

/* Reads exactly len bytes; false on end of file, error or time limit. */
static inline bool client_recv(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t k = recv(fd, p, len, 0);
        if (k <= 0)
            return false;
        p += k;
        len -= (size_t)k;
    }
    return true;
}

/* Returns true when the peer closed fd (end of file within WAIT_MS). */
static inline bool client_eof(int fd)
{
    char c;
    return recv(fd, &c, 1, 0) == 0;
}

/* Counts this process's open descriptors. */
static inline int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

#endif
