/*
 * ipc: two OS processes, one actor each, linked by Grove's transport. This
 * program re-enters itself as a node (gr_node_main) whose root is the
 * "server" actor; the parent runs a supervisor with that one node child
 * and a local "client" actor that drives the run:
 *   - finds the server by "server@<node>" (a tell answered with its ref);
 *   - 1000 untimed warm-up round trips;
 *   - ipc_pingpong: N sequential asks (the next one sent from the reply's
 *     handler), timed;
 *   - ipc_stream: M one-way tells of a small integer, then an `end`
 *     request answered with the count received (and how many came out of
 *     order), which must equal M. The server acks every ACK_EVERY
 *     messages, and the client keeps at most WINDOW unacknowledged, so the
 *     link's outbound buffer never fills; a send refused with
 *     GR_EBACKPRESSURE anyway is retried later, never lost from the count.
 *
 * Before the Grove system starts, the same program measures a raw
 * Unix-socket baseline: a socketpair to a forked child that echoes 8-byte
 * messages with blocking read/write, same N and warm-up.
 *
 * Parameters: IPC_PING_N (default 100000), IPC_STREAM_N (1000000),
 * IPC_WINDOW (32768), IPC_ACK_EVERY (2048). Two RESULT lines:
 * ipc_pingpong (ns_per_roundtrip, raw_ns_per_roundtrip, ratio = grove /
 * raw) and ipc_stream (ns_per_msg).
 */
#include "bench_util.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    MSG_START = 1, /* main -> client */
    MSG_HELLO,     /* client -> "server@node": tell me your ref */
    MSG_HELLO_ACK, /* server -> client: from is the server */
    MSG_PING,      /* client -> server: request, payload i */
    MSG_PONG,      /* server -> client: reply, payload i */
    MSG_DATA,      /* client -> server: tell, payload sequence number */
    MSG_ACK,       /* server -> client: payload count received so far */
    MSG_END,       /* client -> server: request */
    MSG_COUNT,     /* server -> client: reply, struct end_reply */
    MSG_CONT,      /* client -> itself: keep streaming */
    MSG_RETRY,     /* client timer: look for the server again */
    MSG_DONE,      /* client -> main: payload 1 (ok) or 0 */
};

#define NODE_NAME   "ipc"
#define SERVER_NAME "server"
#define WARMUP_N    1000u
/* Tells sent per client turn before it yields with a self-tell. */
#define CHUNK 1024u
/* Lookups of the server (100 ms apart) before giving up. */
#define FIND_TRIES     100u
#define ASK_TIMEOUT_MS 10000u

struct end_reply {
    uint64_t count, out_of_order;
};

/* ---- server (the node's root) ----------------------------------------- */

struct server {
    uint64_t count, out_of_order, ack_every;
};

static int server_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    struct server *s = state;
    if (len != sizeof s->ack_every)
        return GR_EINVAL;
    memcpy(&s->ack_every, arg, len);
    return gr_register(ctx, SERVER_NAME);
}

static int server_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct server *s = state;
    switch (m->type) {
    case MSG_DATA:
        s->out_of_order += bench_u64(m) != s->count;
        if (++s->count % s->ack_every == 0)
            return bench_tell_u64(ctx, m->from, MSG_ACK, s->count);
        return GR_CONTINUE;
    case MSG_PING:
        return gr_reply(ctx, m, MSG_PONG, m->data, m->len);
    case MSG_END: {
        struct end_reply r = {s->count, s->out_of_order};
        s->count = s->out_of_order = 0;
        return gr_reply(ctx, m, MSG_COUNT, &r, sizeof r);
    }
    case MSG_HELLO:
        return gr_tell(ctx, m->from, MSG_HELLO_ACK, NULL, 0);
    default:
        return GR_CONTINUE; /* e.g. exit signals; nothing else is sent */
    }
}

static const gr_behaviour server_behaviour = {
    .name = "ipc_server",
    .state_size = sizeof(struct server),
    .init = server_init,
    .handle = server_handle,
};

static const gr_node_root roots[] = {
    {.name = SERVER_NAME, .behaviour = &server_behaviour}};

/* ---- client (in the parent) ------------------------------------------- */

/* What the client measured; written before MSG_DONE, read after it. */
struct results {
    uint64_t ping_ns, stream_ns;
    uint64_t stream_count, out_of_order, backpressure;
    char error[160];
};

struct client_args {
    gr_ref report_to;
    struct results *res;
    uint64_t ping_n, stream_n, window;
};

enum { PH_FIND, PH_WARM, PH_PING, PH_STREAM, PH_END, PH_DONE };

struct client {
    struct client_args a;
    gr_ref server;
    int phase;
    unsigned find_tries;
    uint64_t i;     /* Asks answered in this phase. */
    uint64_t t0;    /* Start of the timed phase. */
    uint64_t sent;  /* Stream: tells accepted. */
    uint64_t acked; /* Stream: count the server last acked. */
    int cont_pending;
};

static int client_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct client *c = state;
    if (len != sizeof c->a)
        return GR_EINVAL;
    memcpy(&c->a, arg, len);
    return GR_OK;
}

/* Ends the run: records an error (NULL for none) and tells main. */
static int client_finish(gr_ctx *ctx, struct client *c, const char *error)
{
    if (error != NULL)
        snprintf(c->a.res->error, sizeof c->a.res->error, "%s", error);
    c->phase = PH_DONE;
    return bench_tell_u64(ctx, c->a.report_to, MSG_DONE, error == NULL);
}

static int send_ping(gr_ctx *ctx, struct client *c)
{
    int rc = gr_ask(ctx, c->server, MSG_PING, &c->i, sizeof c->i,
                    ASK_TIMEOUT_MS, NULL);
    return rc == GR_OK ? GR_CONTINUE : client_finish(ctx, c, gr_strerror(rc));
}

/* Yields and comes back: a self-tell now, or after 1 ms when the link
 * refused a send (its buffer drains meanwhile). */
static int come_back(gr_ctx *ctx, struct client *c, int later)
{
    if (c->cont_pending)
        return GR_CONTINUE;
    c->cont_pending = 1;
    int rc = later ? gr_timer_after(ctx, 1, MSG_CONT, NULL, 0, NULL)
                   : gr_tell(ctx, gr_self(ctx), MSG_CONT, NULL, 0);
    return rc == GR_OK ? GR_CONTINUE : client_finish(ctx, c, gr_strerror(rc));
}

/* Streams what the window allows, CHUNK tells per turn; then the end
 * request. */
static int pump(gr_ctx *ctx, struct client *c)
{
    uint64_t m = c->a.stream_n;
    for (unsigned burst = 0; c->sent < m; burst++) {
        if (c->sent - c->acked >= c->a.window)
            return GR_CONTINUE; /* The next ack resumes. */
        if (burst == CHUNK)
            return come_back(ctx, c, 0);
        int rc = bench_tell_u64(ctx, c->server, MSG_DATA, c->sent);
        if (rc == GR_EBACKPRESSURE) {
            c->a.res->backpressure++;
            return come_back(ctx, c, 1);
        }
        if (rc != GR_OK)
            return client_finish(ctx, c, gr_strerror(rc));
        c->sent++;
    }
    int rc = gr_ask(ctx, c->server, MSG_END, NULL, 0, ASK_TIMEOUT_MS, NULL);
    if (rc == GR_EBACKPRESSURE) {
        c->a.res->backpressure++;
        return come_back(ctx, c, 1);
    }
    if (rc != GR_OK)
        return client_finish(ctx, c, gr_strerror(rc));
    c->phase = PH_END;
    return GR_CONTINUE;
}

static int find_server(gr_ctx *ctx, struct client *c)
{
    if (++c->find_tries > FIND_TRIES)
        return client_finish(ctx, c, "server@" NODE_NAME " not found");
    (void)gr_tell_name(ctx, SERVER_NAME "@" NODE_NAME, MSG_HELLO, NULL, 0);
    int rc = gr_timer_after(ctx, 100, MSG_RETRY, NULL, 0, NULL);
    return rc == GR_OK ? GR_CONTINUE : client_finish(ctx, c, gr_strerror(rc));
}

/* A reply to a ping: checks it, then the next ping or the next phase. */
static int on_pong(gr_ctx *ctx, struct client *c, const gr_msg *m)
{
    if (m->type != MSG_PONG || bench_u64(m) != c->i)
        return client_finish(ctx, c, "ping: timeout, failure or wrong value");
    c->i++;
    if (c->phase == PH_WARM && c->i == WARMUP_N) {
        c->phase = PH_PING;
        c->i = 0;
        c->t0 = bench_now_ns();
    } else if (c->phase == PH_PING && c->i == c->a.ping_n) {
        c->a.res->ping_ns = bench_now_ns() - c->t0;
        c->phase = PH_STREAM;
        c->sent = c->acked = 0;
        c->t0 = bench_now_ns();
        return pump(ctx, c);
    }
    return send_ping(ctx, c);
}

static int client_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct client *c = state;
    if (c->phase == PH_DONE)
        return GR_CONTINUE;
    if (m->flags & GR_MSG_REPLY) {
        if (c->phase == PH_WARM || c->phase == PH_PING)
            return on_pong(ctx, c, m);
        if (c->phase != PH_END || m->type != MSG_COUNT ||
            m->len != sizeof(struct end_reply))
            return client_finish(ctx, c, "end: timeout, failure or bad reply");
        c->a.res->stream_ns = bench_now_ns() - c->t0;
        struct end_reply r;
        memcpy(&r, m->data, sizeof r);
        c->a.res->stream_count = r.count;
        c->a.res->out_of_order = r.out_of_order;
        return client_finish(ctx, c, NULL);
    }
    switch (m->type) {
    case MSG_START:
        return find_server(ctx, c);
    case MSG_RETRY:
        return c->phase == PH_FIND ? find_server(ctx, c) : GR_CONTINUE;
    case MSG_HELLO_ACK:
        if (c->phase != PH_FIND)
            return GR_CONTINUE; /* An answer to an earlier try. */
        c->server = m->from;
        c->phase = PH_WARM;
        c->i = 0;
        return send_ping(ctx, c);
    case MSG_ACK:
        if (c->phase != PH_STREAM && c->phase != PH_END)
            return client_finish(ctx, c, "ack outside the stream");
        c->acked = bench_u64(m);
        return c->phase == PH_STREAM ? pump(ctx, c) : GR_CONTINUE;
    case MSG_CONT:
        c->cont_pending = 0;
        return c->phase == PH_STREAM ? pump(ctx, c) : GR_CONTINUE;
    default:
        return client_finish(ctx, c, "unexpected message");
    }
}

static const gr_behaviour client_behaviour = {
    .name = "ipc_client",
    .state_size = sizeof(struct client),
    .init = client_init,
    .handle = client_handle,
};

/* ---- raw baseline: blocking 8-byte echo over a socketpair ------------- */

static int io_full(int fd, void *p, size_t n, int writing)
{
    char *b = p;
    while (n > 0) {
        ssize_t r = writing ? send(fd, b, n, MSG_NOSIGNAL) : recv(fd, b, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Returns the mean raw round trip over n, after WARMUP_N untimed. */
static double raw_roundtrip_ns(uint64_t n)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        bench_die("socketpair: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) { /* The echo child: until EOF. */
        close(sv[0]);
        uint64_t v;
        while (io_full(sv[1], &v, sizeof v, 0) == 0)
            if (io_full(sv[1], &v, sizeof v, 1) != 0)
                _exit(1);
        _exit(0);
    }
    close(sv[1]);
    uint64_t t0 = 0;
    for (uint64_t i = 0; i < WARMUP_N + n; i++) {
        if (i == WARMUP_N)
            t0 = bench_now_ns();
        uint64_t v = i, back = 0;
        if (io_full(sv[0], &v, sizeof v, 1) != 0 ||
            io_full(sv[0], &back, sizeof back, 0) != 0 || back != i)
            bench_die("raw baseline: echo failed at %" PRIu64, i);
    }
    uint64_t t1 = bench_now_ns();
    close(sv[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_die("raw baseline: echo child failed (status %d)", status);
    return (double)(t1 - t0) / (double)n;
}

/* ---- main ------------------------------------------------------------- */

int main(void)
{
    gr_config node_cfg = {.log_level = GR_LOG_WARN, .log_level_set = 1};
    int code;
    if (gr_node_main(roots, sizeof roots / sizeof roots[0], &node_cfg, &code))
        return code;

    uint64_t ping_n = bench_env_u64("IPC_PING_N", 100000);
    uint64_t stream_n = bench_env_u64("IPC_STREAM_N", 1000000);
    uint64_t window = bench_env_u64("IPC_WINDOW", 32768);
    uint64_t ack_every = bench_env_u64("IPC_ACK_EVERY", 2048);
    if (ack_every > window)
        bench_die("ipc: IPC_ACK_EVERY must not exceed IPC_WINDOW");

    double raw_ns = raw_roundtrip_ns(ping_n);

    gr_config cfg = {.log_level = GR_LOG_WARN,
                     .log_level_set = 1,
                     .event_fn = bench_quiet_events};
    gr_system *sys;
    bench_check(gr_system_start(&cfg, &sys), "gr_system_start");
    gr_inbox *inbox;
    bench_check(gr_inbox_open(sys, &inbox), "gr_inbox_open");

    static struct results res;
    struct client_args args = {.report_to = gr_inbox_ref(inbox),
                               .res = &res,
                               .ping_n = ping_n,
                               .stream_n = stream_n,
                               .window = window};
    gr_ref client;
    bench_check(
        gr_system_spawn(sys, &client_behaviour, &args, sizeof args, &client),
        "spawn client");

    static gr_node_spec node = {.name = NODE_NAME, .root = SERVER_NAME};
    node.arg = &ack_every;
    node.arg_len = sizeof ack_every;
    bench_start_node(sys, &node, 1, 5000);

    bench_check(
        gr_system_tell(sys, gr_inbox_ref(inbox), client, MSG_START, NULL, 0),
        "start");
    uint64_t ok = bench_recv_u64(inbox, MSG_DONE);

    gr_stats st;
    gr_system_stats(sys, &st);
    unsigned workers = st.workers;
    gr_inbox_close(inbox);
    bench_check(gr_system_shutdown(sys), "gr_system_shutdown");

    if (!ok)
        bench_die("ipc: %s", res.error);
    if (res.stream_count != stream_n || res.out_of_order != 0)
        bench_die("ipc: stream: %" PRIu64 " of %" PRIu64 " received, %" PRIu64
                  " out of order",
                  res.stream_count, stream_n, res.out_of_order);
    uint64_t dead = 0;
    for (int i = 0; i < GR_DL_COUNT; i++)
        if (i != GR_DL_BACKPRESSURE)
            dead += st.dead_letters[i];
    if (dead != 0)
        bench_die("ipc: %" PRIu64 " dead letters", dead);

    double ping_s = (double)res.ping_ns / 1e9;
    double ping_ns = (double)res.ping_ns / (double)ping_n;
    bench_result("ipc_pingpong", ping_n, ping_s, "roundtrip",
                 "ns_per_roundtrip=%.1f raw_ns_per_roundtrip=%.1f "
                 "ratio=%.2f workers=%u",
                 ping_ns, raw_ns, ping_ns / raw_ns, workers);
    double stream_s = (double)res.stream_ns / 1e9;
    bench_result("ipc_stream", stream_n, stream_s, "msg",
                 "ns_per_msg=%.1f window=%" PRIu64 " ack_every=%" PRIu64
                 " backpressure=%" PRIu64 " workers=%u",
                 (double)res.stream_ns / (double)stream_n, window, ack_every,
                 res.backpressure, workers);
    return 0;
}
