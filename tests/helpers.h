/*
 * Helpers shared by the API-level tests (test_api, test_deadletter,
 * test_system, test_messaging, test_races): sleeping, scaling, lining
 * threads up, stats, bounded polling waits, payloads, a log capture, and a
 * system with an inbox.
 * Public API only. Everything is static inline, so a test that does not use
 * a helper pays nothing for it.
 */
#ifndef GROVE_TEST_HELPERS_H
#define GROVE_TEST_HELPERS_H

#include <grove/grove.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "testing.h"

/* How long a test waits for an expected message or count before failing. */
#define WAIT_MS 5000

/* How long a blocking supervisor call may wait in a test: far beyond what
 * any passing case needs (a busy sanitizer run included), so running out
 * of it is a failure. */
#define SUP_WAIT ((gr_duration)30000)

/* Longest time a volume case waits for any one thing before failing. */
#define WAIT_LIMIT_S 60.0
/* A wait fails sooner when the system's counters stop moving this long: a
 * lost message stalls the receiver waiting for it. */
#define STALL_S 10.0

/* How long a wait stays after its count is reached, so that a count
 * overshooting what was wanted shows. */
#define SETTLE_MS 20

/* ---- time, scale, threads ------------------------------------------------ */

/* Sleeps for us microseconds. */
static inline void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Sleeps for ms milliseconds. */
static inline void sleep_ms(int ms)
{
    sleep_us(ms * 1000L);
}

/* Returns the divisor for counts: GROVE_TEST_SCALE, at least 1. */
static inline uint64_t test_scale(void)
{
    const char *s = getenv("GROVE_TEST_SCALE");
    long v = s ? strtol(s, NULL, 10) : 1;
    return v >= 1 ? (uint64_t)v : 1;
}

/* Returns n divided by the scale, but never less than min. */
static inline uint64_t scaled(uint64_t n, uint64_t min)
{
    uint64_t v = n / test_scale();
    return v < min ? min : v;
}

/* Spins until *go is set; lines threads up so that they start together. */
static inline void go_wait(atomic_int *go)
{
    /* acquire: pairs with the release store in go_open(); the flag only
     * lines the threads up, so they start together. */
    while (!atomic_load_explicit(go, memory_order_acquire))
        sched_yield();
}

/* Sets *go, so that every thread in go_wait() on it starts. */
static inline void go_open(atomic_int *go)
{
    /* release: pairs with the acquire load in go_wait(). */
    atomic_store_explicit(go, 1, memory_order_release);
}

/* ---- stats and polling waits --------------------------------------------- */

/* Returns a snapshot of the system's counters. */
static inline gr_stats stats_of(gr_system *sys)
{
    gr_stats st;
    gr_system_stats(sys, &st);
    return st;
}

/* Reads the exit count from st (arg unused); a counter for wait_stat. */
static inline uint64_t stat_exited(const gr_stats *st, int arg)
{
    (void)arg;
    return st->exited;
}

/* Reads the dead letters of reason arg from st; a counter for wait_stat. */
static inline uint64_t stat_dead(const gr_stats *st, int arg)
{
    return st->dead_letters[arg];
}

/* Reads the dead letters of both reasons from st (arg unused). */
static inline uint64_t stat_dead_total(const gr_stats *st, int arg)
{
    (void)arg;
    return st->dead_letters[GR_DL_NO_ACTOR] + st->dead_letters[GR_DL_STOPPED];
}

/* Polls count(stats, arg) every millisecond until it reaches want or
 * WAIT_MS pass; returns the last value read. */
static inline uint64_t wait_stat(gr_system *sys,
                                 uint64_t (*count)(const gr_stats *, int),
                                 int arg, uint64_t want)
{
    double end = test_now() + WAIT_MS / 1000.0;
    for (;;) {
        gr_stats st = stats_of(sys);
        uint64_t n = count(&st, arg);
        if (n >= want || test_now() >= end)
            return n;
        sleep_ms(1);
    }
}

/* Like wait_stat, then stays SETTLE_MS and returns a fresh value, so that
 * a count overshooting want shows. */
static inline uint64_t
wait_stat_settled(gr_system *sys, uint64_t (*count)(const gr_stats *, int),
                  int arg, uint64_t want)
{
    wait_stat(sys, count, arg, want);
    sleep_ms(SETTLE_MS);
    gr_stats st = stats_of(sys);
    return count(&st, arg);
}

/* Polls until the system has counted want exits or WAIT_MS pass. */
static inline uint64_t wait_exited(gr_system *sys, uint64_t want)
{
    return wait_stat(sys, stat_exited, 0, want);
}

/* Polls until want dead letters of reason r are counted or WAIT_MS pass. */
static inline uint64_t wait_dead(gr_system *sys, gr_dead_reason r,
                                 uint64_t want)
{
    return wait_stat(sys, stat_dead, (int)r, want);
}

/* Like wait_dead, then returns the count SETTLE_MS later. */
static inline uint64_t wait_dead_settled(gr_system *sys, gr_dead_reason r,
                                         uint64_t want)
{
    return wait_stat_settled(sys, stat_dead, (int)r, want);
}

/* Sums the counters that move while a system makes progress. */
static inline uint64_t progress(gr_system *sys)
{
    gr_stats st = stats_of(sys);
    return st.delivered + st.spawned + st.exited +
           st.dead_letters[GR_DL_NO_ACTOR] + st.dead_letters[GR_DL_STOPPED];
}

/* A bounded wait: ends at a deadline, or sooner once the system's counters
 * have not moved for STALL_S. */
struct watch {
    gr_system *sys;
    uint64_t last;
    double since, deadline;
};

/* Starts a watch on sys that gives up WAIT_LIMIT_S from now at the latest. */
static inline void watch_start(struct watch *w, gr_system *sys)
{
    w->sys = sys;
    w->last = progress(sys);
    w->since = test_now();
    w->deadline = w->since + WAIT_LIMIT_S;
}

/* Starts a watch on sys that gives up at deadline (a test_now() time). */
static inline void watch_until(struct watch *w, gr_system *sys, double deadline)
{
    watch_start(w, sys);
    w->deadline = deadline;
}

/* Returns 1 once the wait should give up, saying why. */
static inline int watch_over(struct watch *w)
{
    uint64_t p = progress(w->sys);
    double now = test_now();
    if (p != w->last) {
        w->last = p;
        w->since = now;
    }
    if (now <= w->deadline && now - w->since <= STALL_S)
        return 0;
    fprintf(stderr, "  gave up waiting: %s (progress counter %llu)\n",
            now > w->deadline ? "time limit" : "no progress",
            (unsigned long long)w->last);
    return 1;
}

/* ---- payloads ------------------------------------------------------------ */

/* Copies len bytes from src to out if len is exactly size and src is not
 * NULL; returns 1 if it did, 0 (out untouched) otherwise. */
static inline int copy_exact(void *out, size_t size, const void *src,
                             size_t len)
{
    if (len != size || src == NULL)
        return 0;
    memcpy(out, src, size);
    return 1;
}

/* Reads a payload of exactly size bytes; returns 0 on a bad size. */
static inline int read_payload(const gr_msg *m, void *out, size_t size)
{
    return copy_exact(out, size, m->data, m->len);
}

/* Copies a spawn argument of exactly size bytes to out in init: GR_OK, or
 * GR_EINVAL (failing the spawn) for any other length. */
static inline int read_arg(void *out, size_t size, const void *arg, size_t len)
{
    return copy_exact(out, size, arg, len) ? GR_OK : GR_EINVAL;
}

/* Waits up to WAIT_MS for the next message and copies its payload to out;
 * GR_EUNHANDLED, with a line on stderr, unless it has the given type and
 * exactly size bytes. */
static inline int recv_exact(gr_inbox *in, uint32_t type, void *out,
                             size_t size)
{
    gr_msg *m = NULL;
    int rc = gr_inbox_recv(in, &m, WAIT_MS);
    if (rc != GR_OK)
        return rc;
    rc = m->type == type && read_payload(m, out, size) ? GR_OK : GR_EUNHANDLED;
    if (rc != GR_OK)
        fprintf(stderr, "  unexpected message type %u\n", (unsigned)m->type);
    gr_msg_free(m);
    return rc;
}

/* What an actor's work messages looked like: how many, and whether those
 * carrying a uint32 sequence number came in order. */
struct seq_count {
    int32_t count;
    int32_t out_of_order;
    uint32_t next_seq;
};

/* Counts m, and checks that a uint32 sequence number in its payload (if it
 * has one) follows the previous one. */
static inline void seq_count_add(struct seq_count *c, const gr_msg *m)
{
    uint32_t seq;
    if (read_payload(m, &seq, sizeof seq)) {
        if (seq != c->next_seq)
            c->out_of_order++;
        c->next_seq = seq + 1;
    }
    c->count++;
}

/* ---- logging ------------------------------------------------------------- */

/* A log sink that drops every line, for tests that do not read the log. */
static inline void quiet_log(void *arg, gr_log_level level, const char *line)
{
    (void)arg;
    (void)level;
    (void)line;
}

/* Log lines kept by a capture; later ones are counted only. */
#define CAP_MAX 128
/* Longest line a capture keeps. */
#define CAP_LEN 320

/* A log sink for tests: keeps lines so cases can search them. */
struct capture {
    pthread_mutex_t lock;
    unsigned n;
    gr_log_level level[CAP_MAX];
    char line[CAP_MAX][CAP_LEN];
};

/* Empties c; the caller destroys c->lock when done with it. */
static inline void capture_init(struct capture *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
}

/* The log_fn of a capture (log_arg: the struct capture). */
static inline void capture_fn(void *arg, gr_log_level level, const char *line)
{
    struct capture *c = arg;
    pthread_mutex_lock(&c->lock);
    if (c->n < CAP_MAX) {
        c->level[c->n] = level;
        snprintf(c->line[c->n], CAP_LEN, "%s", line);
    }
    c->n++;
    pthread_mutex_unlock(&c->lock);
}

/* Counts kept lines at level containing n1 and n2 (n2 may be NULL). */
static inline unsigned capture_count(struct capture *c, gr_log_level level,
                                     const char *n1, const char *n2)
{
    unsigned k = 0;
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->n && i < CAP_MAX; i++)
        if (c->level[i] == level && strstr(c->line[i], n1) != NULL &&
            (n2 == NULL || strstr(c->line[i], n2) != NULL))
            k++;
    pthread_mutex_unlock(&c->lock);
    return k;
}

/* Prints the kept lines; called when a log check is about to fail. */
static inline void capture_dump(struct capture *c)
{
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->n && i < CAP_MAX; i++)
        fprintf(stderr, "    log %s: %s\n", gr_log_level_name(c->level[i]),
                c->line[i]);
    pthread_mutex_unlock(&c->lock);
}

/* ---- a system with main's inbox ------------------------------------------ */

/* Starts a system from cfg; returns it, or NULL if gr_system_start failed. */
static inline gr_system *start_system(const gr_config *cfg)
{
    gr_system *sys = NULL;
    if (gr_system_start(cfg, &sys) != GR_OK)
        return NULL;
    return sys;
}

/* A started system with main's inbox; what the volume cases begin with. */
struct env {
    gr_system *sys;
    gr_inbox *inbox;
};

/* Starts a system from cfg and opens an inbox; returns 1, or 0 with the
 * system shut down again. */
static inline int env_open(struct env *e, const gr_config *cfg)
{
    e->inbox = NULL;
    e->sys = start_system(cfg);
    if (e->sys == NULL)
        return 0;
    if (gr_inbox_open(e->sys, &e->inbox) != GR_OK) {
        gr_system_shutdown(e->sys);
        return 0;
    }
    return 1;
}

/* env_open() with the given workers, the log dropped and no signal
 * handlers. */
static inline int env_open_quiet(struct env *e, unsigned workers)
{
    gr_config cfg = {.workers = workers, .log_fn = quiet_log, .no_signals = 1};
    return env_open(e, &cfg);
}

/* Closes the inbox and shuts the system down, failing the case if shutdown
 * fails; runs even after a failure. */
static inline void env_close(struct env *e)
{
    gr_inbox_close(e->inbox);
    if (e->sys != NULL && gr_system_shutdown(e->sys) != GR_OK)
        test_failed_ = 1;
    e->sys = NULL;
    e->inbox = NULL;
}

#endif
