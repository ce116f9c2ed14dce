/*
 * jobq: the job queue example (examples/jobq) under load
 * (shared/BENCHMARKS.md).
 *
 * Starts the real server (4 worker node processes) in a temporary
 * directory and drives it through its client library, one thread per
 * connection, each with up to 64 pushes on the wire:
 *
 *   1. durable pushes: JOBQ_N jobs scheduled an hour ahead (so nothing
 *      runs), over JOBQ_C connections; each push is acknowledged only
 *      once its transaction is on disk (group commit);
 *   2. executed: JOBQ_N echo jobs pushed as fast as they are taken; the
 *      time runs from the first push to the server's count of done jobs
 *      reaching JOBQ_N;
 *   3. dispatch latency: echo jobs pushed one at a time at JOBQ_RATE a
 *      second for JOBQ_T seconds; a job's latency runs from its push's
 *      send to the moment its worker started it (the echo line's
 *      timestamp; both clocks are this host's).
 *
 *   JOBQ_N=50000 JOBQ_C=8 JOBQ_RATE=1000 JOBQ_T=3
 *   JOBQ_SERVER=path/to/jobq (default: the one built beside this program)
 *
 * RESULT lines: bench=jobq_push (rate: durable pushes a second, commits:
 * transactions they took), bench=jobq_run (rate: jobs executed a second,
 * commits: transactions of phase 2; p50_ms, p99_ms, max_ms: push-to-start
 * latency of phase 3).
 */
#define _GNU_SOURCE

#include "bench_util.h"
#include "jobq_client.h"
#include "server_proc.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef JOBQ_SERVER
#define JOBQ_SERVER "jobq"
#endif

/* Pushes one connection keeps on the wire. */
#define WINDOW 64

static char dir[64], addr[64], output[128];
static pid_t server;

static void server_start(const char *path)
{
    snprintf(dir, sizeof dir, "/tmp/grove-bench-jobq-XXXXXX");
    if (mkdtemp(dir) == NULL)
        bench_die("mkdtemp: %s", strerror(errno));
    char db[128];
    snprintf(db, sizeof db, "%s/jobs.db", dir);
    snprintf(output, sizeof output, "%s/out.txt", dir);
    const char *const argv[] = {path,        "serve", "--listen", "127.0.0.1:0",
                                "--db",      db,      "--output", output,
                                "--workers", "4",     NULL};
    uint16_t port = server_proc_start(argv, NULL, 10000, &server, NULL);
    if (port != 0) {
        snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
        return;
    }
    bench_die("the server (%s) did not say where it listens", path);
}

static void server_stop(void)
{
    kill(server, SIGTERM);
    int st;
    waitpid(server, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bench_die("the server did not stop cleanly (status %d)", st);
    static const char *const names[] = {"jobs.db", "jobs.db-wal", "jobs.db-shm",
                                        "out.txt"};
    char path[192];
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static jobq_client *connect_or_die(void)
{
    jobq_client *c;
    if (jobq_connect(addr, 30000, &c) != JOBQ_OK)
        bench_die("connect: %s", jobq_connect_error());
    return c;
}

/* One connection's share of a push phase. */
typedef struct pusher {
    pthread_t t;
    uint64_t n;
    const char *type;
    jobq_push_opts opts;
} pusher;

static void *push_many(void *arg)
{
    pusher *p = arg;
    jobq_client *c = connect_or_die();
    uint8_t nil = 0xc0;
    uint64_t sent = 0, got = 0, id;
    while (got < p->n) {
        while (sent < p->n && sent - got < WINDOW) {
            if (jobq_push_send(c, p->type, &nil, 1, &p->opts) != JOBQ_OK)
                bench_die("push: %s", jobq_error(c));
            sent++;
        }
        if (jobq_push_wait(c, &id, NULL) != JOBQ_OK)
            bench_die("push: %s", jobq_error(c));
        got++;
    }
    jobq_close(c);
    return NULL;
}

/* Pushes n jobs over nc connections; returns the seconds it took. */
static double push_phase(uint64_t n, uint64_t nc, const jobq_push_opts *o)
{
    pusher *ps = calloc(nc, sizeof *ps);
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < nc; i++) {
        ps[i] =
            (pusher){.n = n / nc + (i < n % nc), .type = "echo", .opts = *o};
        if (pthread_create(&ps[i].t, NULL, push_many, &ps[i]) != 0)
            bench_die("pthread_create");
    }
    for (uint64_t i = 0; i < nc; i++)
        pthread_join(ps[i].t, NULL);
    free(ps);
    return bench_seconds(t0, bench_now_ns());
}

static jobq_stats stats(jobq_client *c)
{
    jobq_stats s;
    if (jobq_stats_get(c, &s) != JOBQ_OK)
        bench_die("stats: %s", jobq_error(c));
    return s;
}

/* Waits until the server counts done jobs >= want. */
static void wait_done(jobq_client *c, uint64_t want)
{
    uint64_t end = bench_now_ns() + 120 * 1000000000ull;
    while (stats(c).done < want) {
        if (bench_now_ns() > end)
            bench_die("jobs did not finish in 120 s");
        usleep(1000); /* Between polls of the count; it bounds the figure
                         by a millisecond. */
    }
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(void)
{
    const char *path = getenv("JOBQ_SERVER");
    uint64_t n = bench_env_u64("JOBQ_N", 50000);
    uint64_t nc = bench_env_u64("JOBQ_C", 8);
    uint64_t rate = bench_env_u64("JOBQ_RATE", 1000);
    uint64_t secs = bench_env_u64("JOBQ_T", 3);
    server_start(path != NULL ? path : JOBQ_SERVER);
    jobq_client *c = connect_or_die();

    /* 1: durable pushes of jobs that do not run yet. */
    jobq_push_opts later = {.delay_ms = 3600 * 1000};
    uint64_t commits0 = stats(c).commits;
    double push_s = push_phase(n, nc, &later);
    uint64_t commits = stats(c).commits - commits0;
    bench_result("jobq_push", n, push_s, "durable_push", "commits=%" PRIu64,
                 commits);

    /* 2: echo jobs pushed and run; done counted by the server. */
    jobq_stats before = stats(c);
    uint64_t done0 = before.done;
    uint64_t t0 = bench_now_ns();
    jobq_push_opts now = {0};
    (void)push_phase(n, nc, &now);
    wait_done(c, done0 + n);
    double run_s = bench_seconds(t0, bench_now_ns());
    uint64_t run_commits = stats(c).commits - before.commits;

    /* 3: paced pushes, one at a time; latency to the worker's start. */
    uint64_t m = rate * secs;
    uint64_t *ids = calloc(m, sizeof *ids);
    int64_t *sent = calloc(m, sizeof *sent);
    uint8_t nil = 0xc0;
    uint64_t start = bench_now_ns();
    for (uint64_t i = 0; i < m; i++) {
        uint64_t due = start + i * 1000000000ull / rate;
        uint64_t t = bench_now_ns();
        if (t < due)
            usleep((useconds_t)((due - t) / 1000)); /* The pacing. */
        sent[i] = now_us();
        if (jobq_push(c, "echo", &nil, 1, NULL, &ids[i], NULL) != JOBQ_OK)
            bench_die("push: %s", jobq_error(c));
    }
    wait_done(c, done0 + n + m);
    /* Match each job's echo line (ID ATTEMPT START_US ...) to its send. */
    FILE *f = fopen(output, "r");
    if (f == NULL)
        bench_die("no output file %s", output);
    uint64_t *lat = calloc(m, sizeof *lat), nl = 0;
    char line[256];
    uint64_t first = ids[0], last = ids[m - 1];
    while (fgets(line, sizeof line, f) != NULL) {
        uint64_t id;
        unsigned attempt;
        long long start_us;
        if (sscanf(line, "%" SCNu64 " %u %lld", &id, &attempt, &start_us) !=
                3 ||
            id < first || id > last)
            continue;
        /* Ids of one connection's pushes rise in push order. */
        uint64_t lo = 0, hi = m;
        while (lo < hi) {
            uint64_t mid = (lo + hi) / 2;
            if (ids[mid] < id)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < m && ids[lo] == id && nl < m)
            lat[nl++] =
                (uint64_t)(start_us > sent[lo] ? start_us - sent[lo] : 0);
    }
    fclose(f);
    if (nl != m)
        bench_die("%" PRIu64 " of %" PRIu64 " paced jobs have an echo line", nl,
                  m);
    bench_sort_u64(lat, nl);
    bench_result("jobq_run", n, run_s, "job",
                 "commits=%" PRIu64 " paced=%" PRIu64
                 " p50_ms=%.2f p99_ms=%.2f max_ms=%.2f",
                 run_commits, m, bench_percentile(lat, nl, 50, 1e3),
                 bench_percentile(lat, nl, 99, 1e3),
                 (double)lat[nl - 1] / 1000.0);
    jobq_close(c);
    server_stop();
    free(ids);
    free(sent);
    free(lat);
    return 0;
}
