/*
 * Helpers shared by the benchmark programs: parameters from the
 * environment, the monotonic clock, VmRSS, small-integer payloads, waiting
 * on main()'s inbox, and the one RESULT line each program prints (format in
 * shared/BENCHMARKS.md).
 *
 * Everything here is static inline so each benchmark stays a single file
 * plus this header. Thread safety: the payload and tell helpers may be used
 * from handlers; the rest belong to main()'s thread.
 */
#ifndef GROVE_BENCH_UTIL_H
#define GROVE_BENCH_UTIL_H

#include <grove/grove.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Lets the compiler check printf-style arguments of the helpers below. */
#if defined(__GNUC__)
#define BENCH_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define BENCH_PRINTF(fmt, args)
#endif

/* How long main() waits for any one message before calling it a hang. */
#define BENCH_RECV_TIMEOUT_MS (600 * 1000)

/* Prints a message to stderr and exits with status 1. */
BENCH_PRINTF(1, 2)
static inline _Noreturn void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* Returns the environment variable name as a positive integer, or def when
 * it is unset or empty; dies on anything else. */
static inline uint64_t bench_env_u64(const char *name, uint64_t def)
{
    const char *s = getenv(name);
    if (s == NULL || *s == '\0')
        return def;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || s[0] == '-')
        bench_die("%s=%s: expected a positive integer", name, s);
    return (uint64_t)v;
}

/* Returns CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Returns the interval between two bench_now_ns() readings in seconds. */
static inline double bench_seconds(uint64_t start_ns, uint64_t end_ns)
{
    return (double)(end_ns - start_ns) / 1e9;
}

/* Returns the figure of /proc/self/status line "<field>: N kB" in bytes,
 * or dies. */
static inline uint64_t bench_status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        bench_die("cannot open /proc/self/status");
    char line[256];
    size_t n = strlen(field);
    unsigned long long kb = 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = strncmp(line, field, n) == 0 && line[n] == ':' &&
                sscanf(line + n + 1, " %llu kB", &kb) == 1;
    fclose(f);
    if (!found)
        bench_die("no %s line in /proc/self/status", field);
    return (uint64_t)kb * 1024;
}

/* Returns this process's resident set size in bytes (VmRSS), or dies. */
static inline uint64_t bench_rss_bytes(void)
{
    return bench_status_kb("VmRSS");
}

/* Returns this process's peak resident set size in bytes (VmHWM), or
 * dies. */
static inline uint64_t bench_peak_rss_bytes(void)
{
    return bench_status_kb("VmHWM");
}

/* Starts a system, or dies: with BENCH_WORKERS worker threads when the
 * environment sets it (for scaling curves), else the default (one per
 * CPU). */
static inline gr_system *bench_start(void)
{
    gr_system *sys;
    gr_config cfg = {0};
    if (getenv("BENCH_WORKERS") != NULL)
        cfg.workers = (unsigned)bench_env_u64("BENCH_WORKERS", 0);
    int rc = gr_system_start(&cfg, &sys);
    if (rc != GR_OK)
        bench_die("gr_system_start: %s", gr_strerror(rc));
    return sys;
}

/* Returns the number of worker threads the system runs. */
static inline unsigned bench_workers(gr_system *sys)
{
    gr_stats st;
    gr_system_stats(sys, &st);
    return st.workers;
}

/* Dies unless rc is GR_OK; what names the call that returned it. */
static inline void bench_check(int rc, const char *what)
{
    if (rc != GR_OK)
        bench_die("%s: %s", what, gr_strerror(rc));
}

/* Returns a message's payload as the uint64_t it carries (0 if none). */
static inline uint64_t bench_u64(const gr_msg *m)
{
    uint64_t v = 0;
    if (m->len == sizeof v)
        memcpy(&v, m->data, sizeof v);
    return v;
}

/* Sends v as an 8-byte payload from the current actor; gr_tell copies it. */
static inline int bench_tell_u64(gr_ctx *ctx, gr_ref to, uint32_t type,
                                 uint64_t v)
{
    return gr_tell(ctx, to, type, &v, sizeof v);
}

/* Sends v as an 8-byte payload from a non-actor thread, or dies. */
static inline void bench_send_u64(gr_system *sys, gr_ref from, gr_ref to,
                                  uint32_t type, uint64_t v)
{
    bench_check(gr_system_tell(sys, from, to, type, &v, sizeof v),
                "gr_system_tell");
}

/* Waits for the inbox's next message, stores its type in *type, frees it
 * and returns its uint64_t payload; dies when nothing comes in time. */
static inline uint64_t bench_recv(gr_inbox *inbox, uint32_t *type)
{
    gr_msg *m;
    if (gr_inbox_recv(inbox, &m, BENCH_RECV_TIMEOUT_MS) != GR_OK)
        bench_die("no message within %d s", BENCH_RECV_TIMEOUT_MS / 1000);
    *type = m->type;
    uint64_t v = bench_u64(m);
    gr_msg_free(m);
    return v;
}

/* As bench_recv(), but the message must have the given type. */
static inline uint64_t bench_recv_u64(gr_inbox *inbox, uint32_t type)
{
    uint32_t got;
    uint64_t v = bench_recv(inbox, &got);
    if (got != type)
        bench_die("expected message type %" PRIu32 ", got %" PRIu32, type, got);
    return v;
}

/*
 * Prints the RESULT line: bench name, n operations over seconds, the unit
 * one operation is, then the extra "key=value ..." figures given as a
 * printf format and its arguments (pass "" for none).
 */
BENCH_PRINTF(5, 6)
static inline void bench_result(const char *bench, uint64_t n, double seconds,
                                const char *unit, const char *extra_fmt, ...)
{
    /* rate = round(n / seconds); the + 0.5 rounds since both are positive. */
    uint64_t rate = seconds > 0 ? (uint64_t)((double)n / seconds + 0.5) : 0;
    printf("RESULT bench=%s impl=grove n=%" PRIu64 " seconds=%.6f rate=%" PRIu64
           "/s unit=%s",
           bench, n, seconds, rate, unit);
    if (extra_fmt[0] != '\0') {
        va_list ap;
        va_start(ap, extra_fmt);
        putchar(' ');
        vprintf(extra_fmt, ap);
        va_end(ap);
    }
    putchar('\n');
    fflush(stdout);
}

/* An event sink that drops every event: benchmarks measure the work, not
 * its logging. */
static inline void bench_quiet_events(void *arg, const gr_event *ev)
{
    (void)arg;
    (void)ev;
}

/* Sorts n samples in place, ascending. */
static inline int bench_cmp_u64_(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static inline void bench_sort_u64(uint64_t *v, uint64_t n)
{
    qsort(v, n, sizeof *v, bench_cmp_u64_);
}

/* Nearest-rank percentile p (0..100] of n sorted samples, divided by
 * unit (1e3: ns to us, 1e6: ns to ms). */
static inline double bench_percentile(const uint64_t *sorted, uint64_t n,
                                      unsigned p, double unit)
{
    uint64_t rank = (n * p + 99) / 100; /* ceil(n * p / 100) */
    if (rank == 0)
        rank = 1;
    return (double)sorted[rank - 1] / unit;
}

/* Starts a one-for-one supervisor (intensity in period_ms) over one
 * permanent node child named name running root with arg (see
 * grove/node.h); spec must outlive the supervisor. */
static inline void bench_start_node(gr_system *sys, gr_node_spec *spec,
                                    uint32_t intensity, uint32_t period_ms)
{
    gr_child_spec child = {.id = spec->name,
                           .behaviour = &gr_node_behaviour,
                           .arg = spec,
                           .arg_len = sizeof *spec,
                           .restart = GR_PERMANENT,
                           .type = GR_NODE,
                           .shutdown_ms = 5000};
    gr_sup_spec sup = {.strategy = GR_ONE_FOR_ONE,
                       .intensity = intensity,
                       .period_ms = period_ms,
                       .children = &child,
                       .nchildren = 1};
    bench_check(gr_supervisor_start(sys, &sup, NULL), "start supervisor");
}

#endif
