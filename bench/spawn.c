/*
 * spawn: N actors spawned in one loop by one spawner actor, which keeps
 * their handles; each bumps a shared counter when it first runs, then
 * waits. Timed until the counter reaches N. VmRSS is read before and after
 * to give the memory per actor; then the spawner stops them all and main()
 * times that until every one has exited.
 * Parameter: SPAWN_N (default 1000000).
 * Figures: rss_bytes_per_actor, spawn_loop_s, ready_s (= seconds), stop_s.
 */
#include "bench_util.h"

#include <stdatomic.h>

enum {
    MSG_GO = 1,   /* main -> spawner: spawn the N actors */
    MSG_LOOP_END, /* spawner -> main: payload the loop's nanoseconds */
    MSG_READY,    /* last actor to start -> main: the counter reached N */
    MSG_STOP_ALL, /* main -> spawner: gr_stop() every actor */
    MSG_ALL_GONE, /* last actor to exit -> main: every actor has exited */
};

/*
 * Shared by every actor. Set by main() before anything is spawned (the
 * spawn and the sends that follow publish it). The counters are relaxed:
 * each is only a count, and the message the last bumper sends to main()
 * carries the ordering main() needs.
 */
static struct {
    uint64_t n;       /* Actors to spawn. */
    gr_ref report_to; /* main()'s inbox. */
    gr_ref *handles;  /* The spawner's array of the actors it spawned. */
    _Atomic uint64_t started;
    _Atomic uint64_t exited;
    _Atomic uint64_t bad_exits; /* Exits for another reason than a stop. */
} shared;

/* ---- the spawned actor: counts itself in, then waits ----------------- */

/* In Grove init runs synchronously inside gr_spawn(), on the spawner's
 * thread, so init is this actor's first run: it bumps the counter here. */
static int waiter_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    uint64_t k =
        atomic_fetch_add_explicit(&shared.started, 1, memory_order_relaxed) + 1;
    if (k == shared.n)
        return gr_tell(ctx, shared.report_to, MSG_READY, NULL, 0);
    return GR_OK;
}

/* Waiters expect no messages; gr_stop()'s request is the runtime's own. */
static int waiter_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    return GR_EUNHANDLED;
}

static void waiter_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    int reason = why->code;
    (void)state;
    if (reason != GR_ESHUTDOWN)
        atomic_fetch_add_explicit(&shared.bad_exits, 1, memory_order_relaxed);
    uint64_t k =
        atomic_fetch_add_explicit(&shared.exited, 1, memory_order_relaxed) + 1;
    if (k == shared.n)
        gr_tell(ctx, shared.report_to, MSG_ALL_GONE, NULL, 0);
}

static const gr_behaviour waiter_behaviour = {
    .name = "waiter",
    .state_size = 0,
    .init = waiter_init,
    .handle = waiter_handle,
    .terminate = waiter_terminate,
};

/* ---- the spawner ----------------------------------------------------- */

static int spawner_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    switch (m->type) {
    case MSG_GO: {
        uint64_t t0 = bench_now_ns();
        for (uint64_t i = 0; i < shared.n; i++) {
            int rc =
                gr_spawn(ctx, &waiter_behaviour, NULL, 0, &shared.handles[i]);
            if (rc != GR_OK)
                bench_die("gr_spawn #%" PRIu64 ": %s", i, gr_strerror(rc));
        }
        uint64_t t1 = bench_now_ns();
        return bench_tell_u64(ctx, shared.report_to, MSG_LOOP_END, t1 - t0);
    }
    case MSG_STOP_ALL:
        for (uint64_t i = 0; i < shared.n; i++) {
            int rc = gr_stop(gr_ctx_system(ctx), shared.handles[i]);
            if (rc != GR_OK)
                bench_die("gr_stop #%" PRIu64 ": %s", i, gr_strerror(rc));
        }
        return GR_CONTINUE;
    default:
        return GR_EUNHANDLED;
    }
}

static const gr_behaviour spawner_behaviour = {
    .name = "spawner",
    .handle = spawner_handle,
};

int main(void)
{
    uint64_t n = bench_env_u64("SPAWN_N", 1000000);

    gr_system *sys = bench_start();
    gr_inbox *inbox;
    bench_check(gr_inbox_open(sys, &inbox), "gr_inbox_open");
    gr_ref self = gr_inbox_ref(inbox);

    shared.n = n;
    shared.report_to = self;
    /* calloc may hand back untouched pages; write them now so the handle
     * array is resident before the first VmRSS reading, not counted as
     * memory the actors use. */
    shared.handles = calloc(n, sizeof *shared.handles);
    if (shared.handles == NULL)
        bench_die("out of memory for %" PRIu64 " handles", n);
    memset(shared.handles, 0xff, n * sizeof *shared.handles);
    gr_ref spawner;
    bench_check(gr_system_spawn(sys, &spawner_behaviour, NULL, 0, &spawner),
                "spawn spawner");

    uint64_t rss_before = bench_rss_bytes();
    uint64_t t0 = bench_now_ns();
    bench_send_u64(sys, self, spawner, MSG_GO, n);
    /* READY is sent from inside the last spawn, so it comes before
     * LOOP_END; take them in either order all the same. */
    uint64_t t_ready = 0, loop_ns = 0;
    for (int got = 0; got < 2; got++) {
        uint32_t type;
        uint64_t v = bench_recv(inbox, &type);
        if (type == MSG_READY && t_ready == 0)
            t_ready = bench_now_ns();
        else if (type == MSG_LOOP_END && loop_ns == 0)
            loop_ns = v;
        else
            bench_die("spawn: unexpected message type %" PRIu32, type);
    }
    uint64_t rss_after = bench_rss_bytes();

    uint64_t t_stop = bench_now_ns();
    bench_send_u64(sys, self, spawner, MSG_STOP_ALL, 0);
    bench_recv_u64(inbox, MSG_ALL_GONE);
    uint64_t t_gone = bench_now_ns();

    unsigned workers = bench_workers(sys);
    gr_inbox_close(inbox);
    bench_check(gr_system_shutdown(sys), "gr_system_shutdown");
    free(shared.handles);

    uint64_t started = atomic_load(&shared.started);
    uint64_t exited = atomic_load(&shared.exited);
    uint64_t bad = atomic_load(&shared.bad_exits);
    if (started != n || exited != n || bad != 0)
        bench_die("spawn: %" PRIu64 " started, %" PRIu64 " exited (%" PRIu64
                  " not by a stop), expected %" PRIu64,
                  started, exited, bad, n);

    double ready_s = bench_seconds(t0, t_ready);
    double per_actor = ((double)rss_after - (double)rss_before) / (double)n;
    bench_result("spawn", n, ready_s, "spawn",
                 "rss_bytes_per_actor=%.1f spawn_loop_s=%.6f ready_s=%.6f "
                 "stop_s=%.6f workers=%u",
                 per_actor, (double)loop_ns / 1e9, ready_s,
                 bench_seconds(t_stop, t_gone), workers);
    return 0;
}
