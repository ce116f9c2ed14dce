/*
 * noderestart: a one-for-one supervisor (intensity high enough never to
 * trip) with one node child: this program, re-entered as a node through
 * gr_node_main, whose root is an "echo" actor. N times: SIGKILL the node's
 * process, then wait until a request to the restarted node's root is
 * answered. The latency of each cycle (kill to answer) is recorded.
 *
 * The loop is owned by a driver actor in the parent. The driver's
 * reference is the root's arg, so every (re)started root's init tells the
 * driver "started"; the driver then finds the root by name ("echo@<node>",
 * answered with the root's ref and pid) and asks it by ref; the answer
 * ends the cycle, and the pid is the one the next cycle kills.
 *
 * Parameter: NODE_RESTART_N (default 200). Figures: mean_latency_ms,
 * p50_latency_ms, p99_latency_ms, max_latency_ms. Checks that every cycle
 * met a new process and that the system counted exactly N restarts.
 */
#include "bench_util.h"

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

enum {
    MSG_GO = 1,   /* main -> driver: payload N */
    MSG_STARTED,  /* root init -> driver */
    MSG_WHO,      /* driver -> "echo@node": tell me who you are */
    MSG_ME,       /* root -> driver: struct who */
    MSG_REQUEST,  /* driver -> root: request, payload cycle number */
    MSG_REPLY,    /* root -> driver: reply, the same number */
    MSG_WATCHDOG, /* driver timer: payload the cycle it guards */
    MSG_DONE,     /* driver -> main: payload cycles completed */
};

#define NODE_NAME "rn"
#define ROOT_NAME "echo"
/* A cycle that takes longer than this is a hang. */
#define CYCLE_LIMIT_MS 10000u

#define SUP_INTENSITY 1000000u
#define SUP_PERIOD_MS 60000u

struct who {
    gr_ref self;
    int64_t pid;
};

/* ---- the node's root -------------------------------------------------- */

static int root_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    gr_ref driver;
    if (len != sizeof driver)
        return GR_EINVAL;
    memcpy(&driver, arg, len);
    int rc = gr_register(ctx, ROOT_NAME);
    return rc == GR_OK ? gr_tell(ctx, driver, MSG_STARTED, NULL, 0) : rc;
}

static int root_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    switch (m->type) {
    case MSG_WHO: {
        struct who w = {.self = gr_self(ctx), .pid = (int64_t)getpid()};
        return gr_tell(ctx, m->from, MSG_ME, &w, sizeof w);
    }
    case MSG_REQUEST:
        return gr_reply(ctx, m, MSG_REPLY, m->data, m->len);
    default:
        return GR_CONTINUE;
    }
}

static const gr_behaviour root_behaviour = {
    .name = "noderestart_root",
    .state_size = 1,
    .init = root_init,
    .handle = root_handle,
};

static const gr_node_root roots[] = {
    {.name = ROOT_NAME, .behaviour = &root_behaviour}};

/* ---- the driver ------------------------------------------------------- */

struct driver_args {
    gr_ref report_to;
    uint64_t *samples; /* N cycle latencies in ns */
};

struct driver {
    struct driver_args a;
    uint64_t n, done;
    uint64_t t0;
    pid_t pid, killed; /* The node's current pid; the one last killed. */
    gr_ref root;
    uint64_t watchdog;
    int started; /* A "started" notice not yet followed up. */
    int failed;
};

static int driver_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct driver *d = state;
    if (len != sizeof d->a)
        return GR_EINVAL;
    memcpy(&d->a, arg, len);
    return GR_OK;
}

static int report(gr_ctx *ctx, struct driver *d, int failed)
{
    d->failed = failed;
    d->n = 0;
    return bench_tell_u64(ctx, d->a.report_to, MSG_DONE,
                          failed ? UINT64_MAX : d->done);
}

/* Kills the node's process and starts the clock, or reports when all
 * cycles are done. */
static int next_cycle(gr_ctx *ctx, struct driver *d)
{
    if (d->watchdog != 0)
        (void)gr_timer_cancel(ctx, d->watchdog);
    d->watchdog = 0;
    if (d->done == d->n)
        return report(ctx, d, 0);
    int rc = gr_timer_after(ctx, CYCLE_LIMIT_MS, MSG_WATCHDOG, &d->done,
                            sizeof d->done, &d->watchdog);
    if (rc != GR_OK)
        return report(ctx, d, 1);
    d->killed = d->pid;
    d->root = GR_REF_NONE;
    d->t0 = bench_now_ns();
    if (kill(d->pid, SIGKILL) != 0)
        return report(ctx, d, 1);
    return GR_CONTINUE;
}

static int driver_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct driver *d = state;
    if (d->failed)
        return GR_CONTINUE;
    if (m->flags & GR_MSG_REPLY) {
        if (m->type != MSG_REPLY || bench_u64(m) != d->done)
            return report(ctx, d, 1); /* a timeout or a failed ask */
        d->a.samples[d->done++] = bench_now_ns() - d->t0;
        return next_cycle(ctx, d);
    }
    switch (m->type) {
    case MSG_STARTED:
    case MSG_GO:
        if (m->type == MSG_GO)
            d->n = bench_u64(m);
        else
            d->started = 1;
        /* Both needed before the first lookup: the first root's notice
         * and main's go; afterwards each notice starts a lookup. */
        if (d->n == 0 || !d->started)
            return GR_CONTINUE;
        d->started = 0;
        return gr_tell_name(ctx, ROOT_NAME "@" NODE_NAME, MSG_WHO, NULL, 0) ==
                       GR_OK
                   ? GR_CONTINUE
                   : report(ctx, d, 1);
    case MSG_ME: {
        struct who w;
        if (m->len != sizeof w)
            return report(ctx, d, 1);
        memcpy(&w, m->data, sizeof w);
        if ((pid_t)w.pid == d->killed || (pid_t)w.pid == getpid())
            return report(ctx, d, 1); /* not a new process */
        d->pid = (pid_t)w.pid;
        d->root = w.self;
        if (d->killed == 0) /* The first lookup: no cycle runs yet. */
            return next_cycle(ctx, d);
        return gr_ask(ctx, w.self, MSG_REQUEST, &d->done, sizeof d->done,
                      CYCLE_LIMIT_MS, NULL) == GR_OK
                   ? GR_CONTINUE
                   : report(ctx, d, 1);
    }
    case MSG_WATCHDOG:
        return bench_u64(m) == d->done ? report(ctx, d, 1) : GR_CONTINUE;
    default:
        return GR_CONTINUE;
    }
}

static const gr_behaviour driver_behaviour = {
    .name = "noderestart_driver",
    .state_size = sizeof(struct driver),
    .init = driver_init,
    .handle = driver_handle,
};

/* ---- main ------------------------------------------------------------- */

int main(void)
{
    gr_config node_cfg = {.log_level = GR_LOG_WARN, .log_level_set = 1};
    int code;
    if (gr_node_main(roots, sizeof roots / sizeof roots[0], &node_cfg, &code))
        return code;

    uint64_t n = bench_env_u64("NODE_RESTART_N", 200);

    gr_config cfg = {.log_level = GR_LOG_OFF,
                     .log_level_set = 1,
                     .event_fn = bench_quiet_events};
    gr_system *sys;
    bench_check(gr_system_start(&cfg, &sys), "gr_system_start");
    gr_inbox *inbox;
    bench_check(gr_inbox_open(sys, &inbox), "gr_inbox_open");
    uint64_t *samples = calloc(n, sizeof *samples);
    if (samples == NULL)
        bench_die("cannot allocate %" PRIu64 " samples", n);

    struct driver_args dargs = {.report_to = gr_inbox_ref(inbox),
                                .samples = samples};
    gr_ref driver;
    bench_check(
        gr_system_spawn(sys, &driver_behaviour, &dargs, sizeof dargs, &driver),
        "spawn driver");

    static gr_node_spec node = {.name = NODE_NAME, .root = ROOT_NAME};
    node.arg = &driver;
    node.arg_len = sizeof driver;
    bench_start_node(sys, &node, SUP_INTENSITY, SUP_PERIOD_MS);

    uint64_t t0 = bench_now_ns();
    bench_send_u64(sys, gr_inbox_ref(inbox), driver, MSG_GO, n);
    uint64_t done = bench_recv_u64(inbox, MSG_DONE);
    uint64_t t1 = bench_now_ns();

    /* The restart is counted once the new stand-in's init has returned,
     * which can trail the first answer from the new root briefly. */
    gr_stats st;
    gr_system_stats(sys, &st);
    for (int i = 0; i < 1000 && st.restarts < n; i++) {
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        gr_system_stats(sys, &st);
    }
    gr_inbox_close(inbox);
    bench_check(gr_system_shutdown(sys), "gr_system_shutdown");

    if (done != n || st.restarts != n)
        bench_die("noderestart: %" PRIu64 " cycles completed (%s), %" PRIu64
                  " restarts counted, expected %" PRIu64,
                  done == UINT64_MAX ? 0 : done,
                  done == UINT64_MAX ? "failed" : "ok", st.restarts, n);

    double sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += (double)samples[i];
    double mean = sum / (double)n / 1e6;
    bench_sort_u64(samples, n);
    double p50 = bench_percentile(samples, n, 50, 1e6);
    double p99 = bench_percentile(samples, n, 99, 1e6);
    double max = (double)samples[n - 1] / 1e6;
    free(samples);

    bench_result("noderestart", n, bench_seconds(t0, t1), "restart",
                 "mean_latency_ms=%.3f p50_latency_ms=%.3f "
                 "p99_latency_ms=%.3f max_latency_ms=%.3f restarts=%" PRIu64
                 " workers=%u",
                 mean, p50, p99, max, st.restarts, st.workers);
    return 0;
}
