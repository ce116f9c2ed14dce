/*
 * ask: request/reply between two actors, measured three ways in one run so
 * the ratios come from the same conditions:
 *   - tell:  N round trips with plain tells (a ping, a pong back), as
 *            pingpong does;
 *   - ask:   N sequential asks (gr_ask, the callee answers with gr_reply,
 *            the next ask goes out when the reply is handled);
 *   - window: N asks with up to W in flight at once (a new ask for each
 *            reply), for throughput.
 * Every ask is checked: answered once, by a reply (no timeout), with the
 * value asked for. Parameters: ASK_N (default 1000000), ASK_WINDOW (1000),
 * ASK_TIMEOUT_MS (5000). Figures: ns_per_tell_roundtrip, ns_per_ask,
 * ask_over_tell, window_rate.
 */
#include "bench_util.h"

enum {
    MSG_START = 1, /* main -> client: struct start */
    MSG_PING,      /* client -> server: tell, payload i */
    MSG_PONG,      /* server -> client: tell, payload i */
    MSG_Q,         /* client -> server: request, payload i */
    MSG_A,         /* server -> client: reply, payload i + 1 */
    MSG_DONE,      /* client -> main: payload answers (or 0 on error) */
};

/* Modes of one run. */
enum { MODE_TELL, MODE_ASK, MODE_WINDOW };

struct start {
    uint64_t mode, n, window;
};

/* ---- server: answers tells and asks ------------------------------------ */

static int server_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    uint64_t i = bench_u64(m);
    if (m->type == MSG_PING)
        return bench_tell_u64(ctx, m->from, MSG_PONG, i);
    if (m->type == MSG_Q && (m->flags & GR_MSG_REQUEST)) {
        i++;
        return gr_reply(ctx, m, MSG_A, &i, sizeof i);
    }
    return GR_EUNHANDLED;
}

static const gr_behaviour server_behaviour = {
    .name = "server",
    .handle = server_handle,
};

/* ---- client: drives one mode ------------------------------------------- */

struct client_args {
    gr_ref server, report_to;
    gr_duration timeout_ms;
};

struct client {
    struct client_args args;
    struct start run;
    uint64_t sent;     /* Tells or asks sent. */
    uint64_t answered; /* Pongs or replies handled. */
    uint64_t sum;      /* Of the values answered, to check each once. */
    int failed;
};

static int client_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct client *c = state;
    if (len != sizeof c->args)
        return GR_EINVAL;
    memcpy(&c->args, arg, len);
    return GR_OK;
}

/* Sends the next tell or ask. */
static int send_next(gr_ctx *ctx, struct client *c)
{
    uint64_t i = c->sent++;
    if (c->run.mode == MODE_TELL)
        return bench_tell_u64(ctx, c->args.server, MSG_PING, i);
    return gr_ask(ctx, c->args.server, MSG_Q, &i, sizeof i, c->args.timeout_ms,
                  NULL);
}

static int finish(gr_ctx *ctx, struct client *c)
{
    /* Values 1..n (asks) or 0..n-1 (tells), each once. */
    uint64_t n = c->run.n;
    uint64_t want =
        c->run.mode == MODE_TELL ? n * (n - 1) / 2 : n * (n + 1) / 2;
    uint64_t ok = !c->failed && c->sum == want ? c->answered : 0;
    return bench_tell_u64(ctx, c->args.report_to, MSG_DONE, ok);
}

static int client_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct client *c = state;
    if (m->type == MSG_START) {
        if (m->len != sizeof c->run)
            return GR_EINVAL;
        memcpy(&c->run, m->data, sizeof c->run);
        c->sent = c->answered = c->sum = 0;
        c->failed = 0;
        uint64_t first = c->run.mode == MODE_WINDOW ? c->run.window : 1;
        for (uint64_t k = 0; k < first && c->sent < c->run.n; k++) {
            int rc = send_next(ctx, c);
            if (rc != GR_OK)
                return rc;
        }
        return GR_CONTINUE;
    }
    if (m->type == MSG_PONG || m->type == MSG_A) {
        if (m->type == MSG_A && !(m->flags & GR_MSG_REPLY))
            c->failed = 1;
        c->sum += bench_u64(m);
        if (++c->answered == c->run.n)
            return finish(ctx, c);
        return c->sent < c->run.n ? send_next(ctx, c) : GR_CONTINUE;
    }
    /* A timeout or failure: the benchmark is broken. Report it at once:
     * in the sequential mode no other answer is coming to move the run on,
     * so waiting for the count would hang. */
    c->failed = 1;
    return finish(ctx, c);
}

static const gr_behaviour client_behaviour = {
    .name = "client",
    .state_size = sizeof(struct client),
    .init = client_init,
    .handle = client_handle,
};

/* Runs one mode; returns its seconds. */
static double run(gr_system *sys, gr_inbox *inbox, gr_ref client,
                  struct start s, const char *what)
{
    uint64_t t0 = bench_now_ns();
    bench_check(gr_system_tell(sys, gr_inbox_ref(inbox), client, MSG_START, &s,
                               sizeof s),
                "start");
    uint64_t done = bench_recv_u64(inbox, MSG_DONE);
    uint64_t t1 = bench_now_ns();
    if (done != s.n)
        bench_die("ask: %s phase: %" PRIu64 " of %" PRIu64
                  " answered correctly (0: a wrong, missing or repeated "
                  "value, or a timed-out or failed ask)",
                  what, done, s.n);
    return bench_seconds(t0, t1);
}

int main(void)
{
    uint64_t n = bench_env_u64("ASK_N", 1000000);
    uint64_t window = bench_env_u64("ASK_WINDOW", 1000);
    uint64_t timeout = bench_env_u64("ASK_TIMEOUT_MS", 5000);
    if (n == 0 || window == 0)
        bench_die("ask: ASK_N and ASK_WINDOW must be positive");

    gr_system *sys = bench_start();
    gr_inbox *inbox;
    bench_check(gr_inbox_open(sys, &inbox), "gr_inbox_open");
    struct client_args args = {.report_to = gr_inbox_ref(inbox),
                               .timeout_ms = (gr_duration)timeout};
    gr_ref client;
    bench_check(gr_system_spawn(sys, &server_behaviour, NULL, 0, &args.server),
                "spawn server");
    bench_check(
        gr_system_spawn(sys, &client_behaviour, &args, sizeof args, &client),
        "spawn client");

    double tell_s =
        run(sys, inbox, client, (struct start){MODE_TELL, n, 1}, "tell");
    double ask_s =
        run(sys, inbox, client, (struct start){MODE_ASK, n, 1}, "ask");
    double win_s = run(sys, inbox, client,
                       (struct start){MODE_WINDOW, n, window}, "window");

    gr_stats st;
    gr_system_stats(sys, &st);
    unsigned workers = bench_workers(sys);
    gr_inbox_close(inbox);
    bench_check(gr_system_shutdown(sys), "gr_system_shutdown");
    uint64_t dead = 0;
    for (int i = 0; i < GR_DL_COUNT; i++)
        dead += st.dead_letters[i];
    if (dead != 0)
        bench_die("ask: %" PRIu64 " dead letters", dead);

    double tell_ns = tell_s * 1e9 / (double)n;
    double ask_ns = ask_s * 1e9 / (double)n;
    bench_result(
        "ask", n, ask_s, "ask",
        "ns_per_ask=%.1f ns_per_tell_roundtrip=%.1f "
        "ask_over_tell=%.2f window=%" PRIu64 " window_rate=%.0f/s workers=%u",
        ask_ns, tell_ns, ask_ns / tell_ns, window, (double)n / win_s, workers);
    return 0;
}
