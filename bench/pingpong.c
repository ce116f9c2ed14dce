/*
 * pingpong: Savina PingPong. main() sends start(N) to ping; ping and pong
 * exchange N round trips (2N messages); ping tells main() when done.
 * Parameter: PP_N (default 1000000). Figure: ns_per_roundtrip.
 *
 * PP_BLOCKERS=B (default 0) also runs B actors on the blocking pool, each
 * sleeping 200 ms per message and sending itself the next, for the whole
 * run: the ping-pong's rate should not move (the workers never run them).
 */
#include "bench_util.h"

#include <stdatomic.h>
#include <time.h>

enum {
    MSG_START = 1, /* main -> ping: payload N */
    MSG_PING,      /* ping -> pong: payload round-trip number */
    MSG_PONG,      /* pong -> ping: the same number back */
    MSG_DONE,      /* ping -> main: payload round trips completed */
};

/* Pings pong has answered, summed in terminate; main() reads it after
 * gr_system_shutdown() has joined every worker, so relaxed is enough. */
static _Atomic uint64_t pongs_answered;

/* ---- a blocker: sleeps 200 ms per message, on the blocking pool ------- */

enum { MSG_NAP = 100 };

static int blocker_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    (void)m;
    struct timespec nap = {0, 200 * 1000000L};
    nanosleep(&nap, NULL);
    int rc = gr_tell(ctx, gr_self(ctx), MSG_NAP, NULL, 0);
    return rc == GR_ESTOPPED ? GR_STOP : rc;
}

static const gr_behaviour blocker_behaviour = {.name = "blocker",
                                               .handle = blocker_handle};

/* ---- pong: answers every ping ---------------------------------------- */

struct pong {
    uint64_t answered;
};

static int pong_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct pong *p = state;
    if (m->type != MSG_PING)
        return GR_EUNHANDLED;
    p->answered++;
    return bench_tell_u64(ctx, m->from, MSG_PONG, bench_u64(m));
}

static void pong_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    int reason = why->code;
    (void)ctx;
    (void)reason;
    struct pong *p = state;
    atomic_fetch_add_explicit(&pongs_answered, p->answered,
                              memory_order_relaxed);
}

static const gr_behaviour pong_behaviour = {
    .name = "pong",
    .state_size = sizeof(struct pong),
    .handle = pong_handle,
    .terminate = pong_terminate,
};

/* ---- ping: starts the exchange and counts round trips ---------------- */

struct ping_args {
    gr_ref pong;
    gr_ref report_to; /* main()'s inbox */
};

struct ping {
    struct ping_args args;
    uint64_t n;    /* Round trips to make. */
    uint64_t done; /* Round trips made. */
};

static int ping_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct ping *p = state;
    if (len != sizeof p->args)
        return GR_EINVAL;
    memcpy(&p->args, arg, len);
    return GR_OK;
}

static int ping_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct ping *p = state;
    switch (m->type) {
    case MSG_START:
        p->n = bench_u64(m);
        p->done = 0;
        return bench_tell_u64(ctx, p->args.pong, MSG_PING, 0);
    case MSG_PONG:
        if (bench_u64(m) != p->done)
            return GR_EFAILED; /* a lost or repeated message */
        if (++p->done == p->n)
            return bench_tell_u64(ctx, p->args.report_to, MSG_DONE, p->done);
        return bench_tell_u64(ctx, p->args.pong, MSG_PING, p->done);
    default:
        return GR_EUNHANDLED;
    }
}

static const gr_behaviour ping_behaviour = {
    .name = "ping",
    .state_size = sizeof(struct ping),
    .init = ping_init,
    .handle = ping_handle,
};

int main(void)
{
    uint64_t n = bench_env_u64("PP_N", 1000000);
    const char *b = getenv("PP_BLOCKERS");
    uint64_t blockers = b != NULL && *b != '\0' && strcmp(b, "0") != 0
                            ? bench_env_u64("PP_BLOCKERS", 0)
                            : 0;

    gr_system *sys = bench_start();
    gr_inbox *inbox;
    bench_check(gr_inbox_open(sys, &inbox), "gr_inbox_open");
    gr_spawn_opts on_pool = {.blocking = 1};
    for (uint64_t i = 0; i < blockers; i++) {
        gr_ref r;
        bench_check(
            gr_system_spawn_opt(sys, &blocker_behaviour, NULL, 0, &on_pool, &r),
            "spawn blocker");
        bench_send_u64(sys, GR_REF_NONE, r, MSG_NAP, 0);
    }

    struct ping_args args = {.report_to = gr_inbox_ref(inbox)};
    gr_ref ping;
    bench_check(gr_system_spawn(sys, &pong_behaviour, NULL, 0, &args.pong),
                "spawn pong");
    bench_check(
        gr_system_spawn(sys, &ping_behaviour, &args, sizeof args, &ping),
        "spawn ping");

    uint64_t t0 = bench_now_ns();
    bench_send_u64(sys, gr_inbox_ref(inbox), ping, MSG_START, n);
    uint64_t done = bench_recv_u64(inbox, MSG_DONE);
    uint64_t t1 = bench_now_ns();

    unsigned workers = bench_workers(sys);
    gr_inbox_close(inbox);
    bench_check(gr_system_shutdown(sys), "gr_system_shutdown");

    uint64_t answered =
        atomic_load_explicit(&pongs_answered, memory_order_relaxed);
    if (done != n || answered != n)
        bench_die("pingpong: %" PRIu64 " round trips reported, pong "
                  "answered %" PRIu64 ", expected %" PRIu64,
                  done, answered, n);

    double s = bench_seconds(t0, t1);
    bench_result("pingpong", n, s, "roundtrip",
                 "ns_per_roundtrip=%.1f workers=%u blockers=%" PRIu64,
                 s * 1e9 / (double)n, workers, blockers);
    return 0;
}
