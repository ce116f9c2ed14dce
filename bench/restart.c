/*
 * restart: a one-for-one supervisor (intensity high enough never to trip)
 * with one permanent worker. N times: tell the worker to crash, wait for
 * the replacement's "started" notice, make one request to it and wait for
 * the reply. The latency of each cycle is recorded.
 *
 * The loop is owned by a driver actor, not main(): a thread blocking on an
 * inbox would add a cross-thread wake-up to every cycle. The driver's
 * reference is the worker's child-spec arg, so each (re)started worker's
 * init tells the driver "started" with its own reference.
 *
 * Parameter: RESTART_N (default 100000). Figures: mean_latency_us,
 * p50_latency_us, p99_latency_us, and mean_first10_us / mean_last10_us
 * (the mean over the first and the last 10% of cycles, to show whether the
 * latency stays flat as N grows). Checks that the system counted exactly N
 * restarts.
 */
#include "bench_util.h"

enum {
    MSG_GO = 1,  /* main -> driver: payload N */
    MSG_STARTED, /* worker init -> driver: payload the worker's gr_ref */
    MSG_CRASH,   /* driver -> worker: crash now */
    MSG_REQUEST, /* driver -> worker: payload cycle number */
    MSG_REPLY,   /* worker -> driver: the same number back */
    MSG_DONE,    /* driver -> main: payload cycles completed */
};

/* Restarts allowed per window: the window keeps one uint64_t per restart
 * (8 MB here), and with a 1 ms period far fewer than this fit in it. */
#define SUP_INTENSITY 1000000u
#define SUP_PERIOD_MS 1u

/* ---- worker: announces itself, answers requests, crashes on demand --- */

static int worker_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    gr_ref driver;
    if (len != sizeof driver)
        return GR_EINVAL;
    memcpy(&driver, arg, len);
    gr_ref self = gr_self(ctx);
    return gr_tell(ctx, driver, MSG_STARTED, &self, sizeof self);
}

static int worker_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    switch (m->type) {
    case MSG_CRASH:
        return GR_EFAILED; /* crash: the supervisor restarts us */
    case MSG_REQUEST:
        return bench_tell_u64(ctx, m->from, MSG_REPLY, bench_u64(m));
    default:
        return GR_EUNHANDLED;
    }
}

static const gr_behaviour worker_behaviour = {
    .name = "restart_worker",
    .state_size = 1,
    .init = worker_init,
    .handle = worker_handle,
};

/* ---- driver: owns the crash / started / request / reply loop --------- */

struct driver_args {
    gr_ref report_to;  /* main()'s inbox */
    uint64_t *samples; /* N cycle latencies in ns, written by the driver */
};

struct driver {
    struct driver_args args;
    gr_ref worker;  /* Current worker; none between crash and started. */
    gr_ref crashed; /* The worker told to crash in this cycle. */
    uint64_t n;     /* Cycles to run; 0 until MSG_GO. */
    uint64_t done;  /* Cycles completed. */
    uint64_t t0;    /* Start of the current cycle (ns). */
    int awaiting;   /* MSG_STARTED or MSG_REPLY while a cycle runs. */
};

static int driver_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct driver *d = state;
    if (len != sizeof d->args)
        return GR_EINVAL;
    memcpy(&d->args, arg, len);
    return GR_OK;
}

/* Starts the next cycle, or reports to main() when all are done. */
static int driver_next(gr_ctx *ctx, struct driver *d)
{
    if (d->done == d->n)
        return bench_tell_u64(ctx, d->args.report_to, MSG_DONE, d->done);
    gr_ref w = d->worker;
    d->crashed = w;
    d->worker = GR_REF_NONE;
    d->awaiting = MSG_STARTED;
    d->t0 = bench_now_ns();
    return gr_tell(ctx, w, MSG_CRASH, NULL, 0);
}

static int driver_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct driver *d = state;
    switch (m->type) {
    case MSG_GO:
        /* The first worker's notice is queued before the supervisor's
         * start returns, hence before main() sends this. */
        if (d->n != 0 || gr_ref_is_none(d->worker))
            return GR_EFAILED;
        d->n = bench_u64(m);
        return driver_next(ctx, d);
    case MSG_STARTED: {
        gr_ref w;
        if (m->len != sizeof w || !gr_ref_is_none(d->worker))
            return GR_EFAILED; /* a second worker at once */
        memcpy(&w, m->data, sizeof w);
        if (gr_ref_eq(w, d->crashed))
            return GR_EFAILED; /* not a replacement */
        d->worker = w;
        if (d->n == 0) /* the first worker, before MSG_GO */
            return GR_CONTINUE;
        if (d->awaiting != MSG_STARTED)
            return GR_EFAILED;
        d->awaiting = MSG_REPLY;
        return bench_tell_u64(ctx, w, MSG_REQUEST, d->done);
    }
    case MSG_REPLY:
        if (d->awaiting != MSG_REPLY || bench_u64(m) != d->done ||
            !gr_ref_eq(m->from, d->worker))
            return GR_EFAILED; /* lost, repeated or misdirected */
        d->args.samples[d->done++] = bench_now_ns() - d->t0;
        d->awaiting = 0;
        return driver_next(ctx, d);
    default:
        return GR_EUNHANDLED;
    }
}

static const gr_behaviour driver_behaviour = {
    .name = "restart_driver",
    .state_size = sizeof(struct driver),
    .init = driver_init,
    .handle = driver_handle,
};

/* ---- main ------------------------------------------------------------ */

/* Mean of samples[from..to) in microseconds. */
static double mean_us(const uint64_t *samples, uint64_t from, uint64_t to)
{
    if (to <= from)
        return 0.0;
    double sum = 0.0;
    for (uint64_t i = from; i < to; i++)
        sum += (double)samples[i];
    return sum / (double)(to - from) / 1e3;
}

int main(void)
{
    uint64_t n = bench_env_u64("RESTART_N", 100000);

    gr_config cfg = {
        .log_level = GR_LOG_OFF,
        .log_level_set = 1,
        .event_fn = bench_quiet_events,
    };
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

    gr_child_spec child = {
        .id = "worker",
        .behaviour = &worker_behaviour,
        .arg = &driver,
        .arg_len = sizeof driver,
        .restart = GR_PERMANENT,
        .type = GR_WORKER,
    };
    gr_sup_spec sup_spec = {
        .strategy = GR_ONE_FOR_ONE,
        .intensity = SUP_INTENSITY,
        .period_ms = SUP_PERIOD_MS,
        .children = &child,
        .nchildren = 1,
    };
    gr_ref sup;
    bench_check(gr_supervisor_start(sys, &sup_spec, &sup), "start supervisor");

    uint64_t t0 = bench_now_ns();
    bench_send_u64(sys, gr_inbox_ref(inbox), driver, MSG_GO, n);
    uint64_t done = bench_recv_u64(inbox, MSG_DONE);
    uint64_t t1 = bench_now_ns();

    /* The supervisor counts a restart just after the new child's init has
     * run, so the last count may trail the driver's last reply briefly. */
    gr_stats st;
    gr_system_stats(sys, &st);
    for (int i = 0; i < 1000 && st.restarts < n; i++) {
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        gr_system_stats(sys, &st);
    }
    uint64_t restarts = st.restarts;
    unsigned workers = st.workers;

    gr_inbox_close(inbox);
    bench_check(gr_system_shutdown(sys), "gr_system_shutdown");

    if (done != n || restarts != n)
        bench_die("restart: %" PRIu64 " cycles reported, %" PRIu64
                  " restarts counted, expected %" PRIu64,
                  done, restarts, n);

    uint64_t tenth = n / 10 > 0 ? n / 10 : 1;
    double first10 = mean_us(samples, 0, tenth);
    double last10 = mean_us(samples, n - tenth, n);
    double mean = mean_us(samples, 0, n);
    bench_sort_u64(samples, n);
    double p50 = bench_percentile(samples, n, 50, 1e3);
    double p99 = bench_percentile(samples, n, 99, 1e3);
    free(samples);

    double s = bench_seconds(t0, t1);
    bench_result("restart", n, s, "restart",
                 "mean_latency_us=%.3f p50_latency_us=%.3f "
                 "p99_latency_us=%.3f mean_first10_us=%.3f "
                 "mean_last10_us=%.3f restarts=%" PRIu64 " workers=%u",
                 mean, p50, p99, first10, last10, restarts, workers);
    return 0;
}
