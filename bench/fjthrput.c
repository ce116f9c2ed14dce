/*
 * fjthrput: Savina fork-join throughput. A worker actors; one sender does M
 * rounds, each sending one message to every worker in order; timed until
 * all A workers have reported M. Parameters: FJ_A (default 1000), FJ_M
 * (default 10000). Figure: ns_per_msg.
 */
#include "bench_util.h"

#include <stdatomic.h>

enum {
    MSG_GO = 1, /* main -> sender: run the M rounds */
    MSG_WORK,   /* sender -> worker: payload the round number */
    MSG_REPORT, /* worker -> main: payload messages received, M */
};

/* Set by main() before anything is spawned; read-only afterwards. */
static struct {
    uint64_t a, m;
    gr_ref report_to; /* main()'s inbox */
    gr_ref *workers;  /* The A workers, in the sender's order. */
} shared;

/* Messages all workers received, and how many arrived out of round order,
 * summed in terminate; main() reads them after gr_system_shutdown() has
 * joined every worker thread, so relaxed is enough. */
static _Atomic uint64_t total_received, out_of_order;

/* ---- a worker: counts rounds ----------------------------------------- */

struct worker {
    uint64_t received;
    uint64_t out_of_order;
};

static int worker_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct worker *w = state;
    if (m->type != MSG_WORK)
        return GR_EUNHANDLED;
    /* One sender, so rounds must arrive in order. */
    if (bench_u64(m) != w->received)
        w->out_of_order++;
    if (++w->received == shared.m)
        return bench_tell_u64(ctx, shared.report_to, MSG_REPORT, w->received);
    return GR_CONTINUE;
}

static void worker_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    int reason = why->code;
    (void)ctx;
    (void)reason;
    struct worker *w = state;
    atomic_fetch_add_explicit(&total_received, w->received,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&out_of_order, w->out_of_order,
                              memory_order_relaxed);
}

static const gr_behaviour worker_behaviour = {
    .name = "fj-worker",
    .state_size = sizeof(struct worker),
    .handle = worker_handle,
    .terminate = worker_terminate,
};

/* ---- the sender: all M rounds in one turn ---------------------------- */

static int sender_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    if (m->type != MSG_GO)
        return GR_EUNHANDLED;
    for (uint64_t r = 0; r < shared.m; r++) {
        for (uint64_t i = 0; i < shared.a; i++) {
            int rc = bench_tell_u64(ctx, shared.workers[i], MSG_WORK, r);
            if (rc != GR_OK)
                return rc;
        }
    }
    return GR_CONTINUE;
}

static const gr_behaviour sender_behaviour = {
    .name = "fj-sender",
    .handle = sender_handle,
};

int main(void)
{
    uint64_t a = bench_env_u64("FJ_A", 1000);
    uint64_t m = bench_env_u64("FJ_M", 10000);

    gr_system *sys = bench_start();
    gr_inbox *inbox;
    bench_check(gr_inbox_open(sys, &inbox), "gr_inbox_open");

    shared.a = a;
    shared.m = m;
    shared.report_to = gr_inbox_ref(inbox);
    shared.workers = malloc(a * sizeof *shared.workers);
    if (shared.workers == NULL)
        bench_die("out of memory for %" PRIu64 " workers", a);
    for (uint64_t i = 0; i < a; i++)
        bench_check(gr_system_spawn(sys, &worker_behaviour, NULL, 0,
                                    &shared.workers[i]),
                    "spawn worker");
    gr_ref sender;
    bench_check(gr_system_spawn(sys, &sender_behaviour, NULL, 0, &sender),
                "spawn sender");

    uint64_t t0 = bench_now_ns();
    bench_check(gr_system_tell(sys, shared.report_to, sender, MSG_GO, NULL, 0),
                "gr_system_tell go");
    for (uint64_t i = 0; i < a; i++)
        if (bench_recv_u64(inbox, MSG_REPORT) != m)
            bench_die("fjthrput: a worker reported the wrong count");
    uint64_t t1 = bench_now_ns();

    unsigned threads = bench_workers(sys);
    gr_inbox_close(inbox);
    bench_check(gr_system_shutdown(sys), "gr_system_shutdown");
    free(shared.workers);

    uint64_t total = a * m;
    uint64_t received = atomic_load(&total_received);
    uint64_t disorder = atomic_load(&out_of_order);
    if (received != total || disorder != 0)
        bench_die("fjthrput: workers received %" PRIu64 " (expected %" PRIu64
                  "), %" PRIu64 " out of round order",
                  received, total, disorder);

    double s = bench_seconds(t0, t1);
    bench_result("fjthrput", total, s, "msg", "ns_per_msg=%.2f workers=%u",
                 s * 1e9 / (double)total, threads);
    return 0;
}
