/*
 * The job queue end to end: the real program (its path is argv[1]) in a
 * temporary directory, driven through the client library and raw
 * sockets, its processes killed with real signals. Every wait is for an
 * answer or a count the server reports, with a time limit.
 */
#define _GNU_SOURCE /* mkdtemp, kill */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobq_client.h"
#include "proc_stat.h"
#include "server_proc.h"
#include "testing.h"
#include "wire.h"

/* Longest wait for the server to say it is listening, or to stop. */
#define START_WAIT_MS 10000
/* Longest wait for jobs to reach the state a case waits for. */
#define JOBS_WAIT_S 60.0

static const char *jobq_bin;

/* ---- the server ---------------------------------------------------------- */

typedef struct server {
    pid_t pid;
    int out; /* Its stdout. */
    char dir[64];
    char db[96], output[96], log[96], sock[96];
    char addr[64]; /* Where it listens (TCP, port 0 resolved). */
} server;

/* Makes a fresh directory for one server's files. */
static bool server_init(server *sv)
{
    memset(sv, 0, sizeof *sv);
    snprintf(sv->dir, sizeof sv->dir, "/tmp/grove-jobq-test-XXXXXX");
    if (mkdtemp(sv->dir) == NULL)
        return false;
    snprintf(sv->db, sizeof sv->db, "%s/jobs.db", sv->dir);
    snprintf(sv->output, sizeof sv->output, "%s/out.txt", sv->dir);
    snprintf(sv->log, sizeof sv->log, "%s/log.jsonl", sv->dir);
    snprintf(sv->sock, sizeof sv->sock, "%s/jobq.sock", sv->dir);
    return true;
}

/* Starts (or starts again) the server with extra flags (NULL-terminated)
 * and waits for its TCP port. */
static bool server_start(server *sv, const char *const *extra)
{
    static char log_env[160];
    snprintf(log_env, sizeof log_env, "GROVE_LOG=%s", sv->log);
    const char *const env[] = {log_env, NULL};
    const char *argv[32] = {jobq_bin, "serve", "--listen", "127.0.0.1:0",
                            "--db",   sv->db,  "--output", sv->output};
    int n = 8;
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 31; i++)
        argv[n++] = extra[i];
    uint16_t port =
        server_proc_start(argv, env, START_WAIT_MS, &sv->pid, &sv->out);
    snprintf(sv->addr, sizeof sv->addr, "127.0.0.1:%u", port);
    return port != 0;
}

/* Waits up to ms for the server to exit; its wait status, or -1. */
static int server_wait(server *sv, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        int st;
        if (waitpid(sv->pid, &st, WNOHANG) == sv->pid) {
            close(sv->out);
            sv->pid = 0;
            return st;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts,
                  NULL); /* Polling a child's exit; no signal to wait on. */
    }
    return -1;
}

/* Whether the server is still running (it did not exit on its own). */
static bool server_running(server *sv)
{
    int st;
    if (waitpid(sv->pid, &st, WNOHANG) != sv->pid)
        return true;
    fprintf(stderr, "  the server exited: status 0x%x\n", st);
    close(sv->out);
    sv->pid = 0;
    return false;
}

/* Stops the server with SIGTERM; its exit status, or -1. */
static int server_stop(server *sv)
{
    if (sv->pid <= 0)
        return -1;
    kill(sv->pid, SIGTERM);
    int st = server_wait(sv, 30000);
    if (st == -1) {
        kill(sv->pid, SIGKILL);
        waitpid(sv->pid, NULL, 0);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Removes the server's directory and files (after a case that passed;
 * a failed one leaves them to look at). */
static void server_remove(server *sv)
{
    static const char *const names[] = {"jobs.db", "jobs.db-wal", "jobs.db-shm",
                                        "out.txt", "log.jsonl",   "jobq.sock"};
    char path[160];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", sv->dir, names[i]);
        unlink(path);
    }
    rmdir(sv->dir);
}

/* kill -9 of the queue process itself. */
static void server_kill(server *sv)
{
    kill(sv->pid, SIGKILL);
    waitpid(sv->pid, NULL, 0);
    close(sv->out);
    sv->pid = 0;
}

/* The pids of server process pid's worker processes (at most max): its
 * live children but its fork server template. */
static int worker_pids_of(pid_t pid, int *out, int max)
{
    int all[64], n = proc_children_of(pid, PROC_NODES, all, 64), k = 0;
    for (int i = 0; i < n && i < 64 && k < max; i++) {
        proc_stat st;
        if (proc_stat_read(all[i], &st) && st.state != 'Z')
            out[k++] = all[i];
    }
    return k;
}

/* The pids of the server's worker processes (at most max). */
static int worker_pids(server *sv, int *out, int max)
{
    return worker_pids_of(sv->pid, out, max);
}

static jobq_client *client(server *sv)
{
    jobq_client *c = NULL;
    if (jobq_connect(sv->addr, 10000, &c) != JOBQ_OK)
        fprintf(stderr, "  connect: %s\n", jobq_connect_error());
    return c;
}

/* Starts a server with flags in a new directory and connects a client;
 * NULL when either fails. */
static jobq_client *start(server *sv, const char *const *flags)
{
    return server_init(sv) && server_start(sv, flags) ? client(sv) : NULL;
}

/* Closes c, stops the server and removes its files; false when it did
 * not exit with status 0 (its files are then left to look at). */
static bool finish(server *sv, jobq_client *c)
{
    jobq_close(c);
    if (server_stop(sv) != 0)
        return false;
    server_remove(sv);
    return true;
}

/* ---- what the jobs did ---- */

/* Echo output lines: "ID ATTEMPT START_US VALUE". */
typedef struct line {
    uint64_t id;
    uint32_t attempt;
    int64_t start_us;
    char value[64];
} line;

/* Reads the output file; returns how many lines (at most max). */
static size_t read_output(server *sv, line *out, size_t max)
{
    FILE *f = fopen(sv->output, "r");
    if (f == NULL)
        return 0;
    size_t n = 0;
    char buf[1024];
    while (n < max && fgets(buf, sizeof buf, f) != NULL) {
        line *l = &out[n];
        l->value[0] = '\0';
        if (sscanf(buf, "%" SCNu64 " %u %" SCNd64 " %63s", &l->id, &l->attempt,
                   &l->start_us, l->value) >= 3)
            n++;
    }
    fclose(f);
    return n;
}

/* Waits until the server reports done + dead + cancelled >= want (and, if
 * dead is not NULL, stores the dead count); false on a time limit. */
static bool wait_finished(server *sv, uint64_t want, jobq_stats *last)
{
    double end = test_now() + JOBS_WAIT_S;
    jobq_client *c = NULL;
    while (test_now() < end) {
        if (c == NULL)
            c = client(sv);
        jobq_stats s;
        if (c != NULL && jobq_stats_get(c, &s) == JOBQ_OK) {
            if (last != NULL)
                *last = s;
            if (s.done + s.dead + s.cancelled >= want) {
                jobq_close(c);
                return true;
            }
        } else {
            jobq_close(c);
            c = NULL;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL); /* Between two polls of the server's counts. */
    }
    jobq_close(c);
    return false;
}

/* Waits until job id is in state; false on a time limit. */
static bool wait_state(jobq_client *c, uint64_t id, const char *state,
                       jobq_job *out)
{
    double end = test_now() + JOBS_WAIT_S;
    while (test_now() < end) {
        if (jobq_get(c, id, out) != JOBQ_OK)
            return false;
        if (strcmp(out->state, state) == 0)
            return true;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL); /* Between two polls of the job. */
    }
    return false;
}

/* Whether the server's event log has a line with all of the words. */
static bool log_has(server *sv, const char *a, const char *b)
{
    FILE *f = fopen(sv->log, "r");
    if (f == NULL)
        return false;
    char buf[2048];
    bool found = false;
    while (!found && fgets(buf, sizeof buf, f) != NULL)
        found = strstr(buf, a) != NULL && (b == NULL || strstr(buf, b) != NULL);
    fclose(f);
    return found;
}

/* Packs a string payload. */
static size_t str_payload(char *buf, size_t size, const char *s)
{
    msgpack_sbuffer b;
    msgpack_packer pk;
    msgpack_sbuffer_init(&b);
    msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
    jq_pack_str(&pk, s);
    size_t n = b.size < size ? b.size : 0;
    memcpy(buf, b.data, n);
    msgpack_sbuffer_destroy(&b);
    return n;
}

/* Packs an integer payload. */
static size_t int_payload(char *buf, uint64_t v)
{
    msgpack_sbuffer b;
    msgpack_packer pk;
    msgpack_sbuffer_init(&b);
    msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
    msgpack_pack_uint64(&pk, v);
    size_t n = b.size;
    memcpy(buf, b.data, n);
    msgpack_sbuffer_destroy(&b);
    return n;
}

/* Pushes n echo jobs on c, pipelined, their ids into ids; false on any
 * failure. */
static bool push_echoes(jobq_client *c, size_t n, uint64_t *ids,
                        const jobq_push_opts *o)
{
    char p[64];
    size_t sent = 0, got = 0;
    while (got < n) {
        while (sent < n && sent - got < 256) {
            char v[32];
            snprintf(v, sizeof v, "e%zu", sent);
            size_t len = str_payload(p, sizeof p, v);
            if (jobq_push_send(c, "echo", p, len, o) != JOBQ_OK)
                return false;
            sent++;
        }
        if (jobq_push_wait(c, &ids[got++], NULL) != JOBQ_OK) {
            fprintf(stderr, "  push: %s\n", jobq_error(c));
            return false;
        }
    }
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Counts, per id of ids (sorted), its lines in out; stores the ids with no
 * line in *missing and the extra lines in *dups. */
static void tally(const uint64_t *ids, size_t n, const line *out, size_t nout,
                  size_t *missing, size_t *dups)
{
    uint32_t *count = calloc(n, sizeof *count);
    *missing = *dups = 0;
    for (size_t i = 0; i < nout; i++) {
        uint64_t *at = bsearch(&out[i].id, ids, n, sizeof *ids, cmp_u64);
        if (at != NULL)
            count[at - ids]++;
    }
    for (size_t i = 0; i < n; i++) {
        if (count[i] == 0)
            (*missing)++;
        else
            *dups += count[i] - 1;
    }
    free(count);
}

/* ---- cases ---- */

/* 1000 echo jobs: each id in the output exactly once, nothing left over. */
static void happy_path(void)
{
    server sv;
    jobq_client *c = start(&sv, NULL);
    CHECK(c != NULL);
    static uint64_t ids[1000];
    CHECK(push_echoes(c, 1000, ids, NULL));
    jobq_stats s;
    CHECK(wait_finished(&sv, 1000, &s));
    CHECK_EQ(s.done, 1000);
    CHECK_EQ(s.reserved + s.available + s.scheduled + s.dead, 0);
    CHECK_EQ(s.redeliveries, 0);
    static line out[2000];
    size_t nout = read_output(&sv, out, 2000), missing, dups;
    CHECK_EQ(nout, 1000);
    qsort(ids, 1000, sizeof *ids, cmp_u64);
    tally(ids, 1000, out, nout, &missing, &dups);
    CHECK_EQ(missing, 0);
    CHECK_EQ(dups, 0);
    CHECK(finish(&sv, c));
}

/* The chaos driver's killer: a random worker of the current queue
 * process, every 200 ms for 5 s, on a clock of its own (the pushes may
 * take longer than that under a sanitizer). */
typedef struct killer {
    _Atomic(pid_t) server;
    double start;
    atomic_uint kills;
} killer;

static void *kill_workers(void *arg)
{
    killer *k = arg;
    unsigned seed = (unsigned)getpid();
    for (int i = 1; i <= 25; i++) {
        double wait = k->start + 0.2 * i - test_now();
        if (wait > 0) {
            struct timespec ts = {(time_t)wait,
                                  (long)((wait - (double)(time_t)wait) * 1e9)};
            nanosleep(&ts, NULL); /* The kills' period. */
        }
        int pids[16], n = worker_pids_of(atomic_load(&k->server), pids, 16);
        if (n > 0 && kill(pids[rand_r(&seed) % (unsigned)n], SIGKILL) == 0)
            atomic_fetch_add(&k->kills, 1);
    }
    return NULL;
}

/* 10 000 echo jobs while a random worker is kill -9ed every 200 ms for
 * 5 s and the queue process once: every id done, none reserved, and no
 * more duplicates than the redeliveries the server counted. */
static void chaos(void)
{
    server sv;
    const char *const flags[] = {"--retry-base", "20", NULL};
    CHECK(server_init(&sv) && server_start(&sv, flags));
    enum { TOTAL = 10000, BATCH = 400 };
    static uint64_t ids[TOTAL];
    size_t pushed = 0;
    jobq_push_opts o = {.max_attempts = 100};
    char key[32];
    jobq_client *c = client(&sv);
    CHECK(c != NULL);
    double start = test_now();
    bool queue_killed = false;
    static killer k; /* Outlives a failed CHECK, as its thread may. */
    k.start = start;
    atomic_init(&k.server, sv.pid);
    atomic_init(&k.kills, 0);
    pthread_t kt;
    CHECK(pthread_create(&kt, NULL, kill_workers, &k) == 0);
    while (pushed < TOTAL || test_now() - start < 5.0) {
        CHECK(test_now() - start < JOBS_WAIT_S);
        CHECK(server_running(&sv));
        /* A batch of pushes, each with a key: after the queue process
         * dies, the batch is pushed again, and the keys make that safe. */
        if (pushed < TOTAL) {
            size_t n = TOTAL - pushed < BATCH ? TOTAL - pushed : BATCH;
            char p[64];
            bool ok = c != NULL;
            for (size_t i = 0; ok && i < n; i++) {
                snprintf(key, sizeof key, "chaos-%zu", pushed + i);
                o.key = key;
                size_t len = str_payload(p, sizeof p, key);
                ok = jobq_push_send(c, "echo", p, len, &o) == JOBQ_OK;
            }
            for (size_t i = 0; ok && i < n; i++)
                ok = jobq_push_wait(c, &ids[pushed + i], NULL) == JOBQ_OK;
            if (ok) {
                pushed += n;
            } else {
                jobq_close(c);
                c = client(&sv); /* The server is back, or coming back. */
            }
        }
        if (!queue_killed && test_now() - start >= 2.5) {
            queue_killed = true;
            server_kill(&sv);
            bool back = server_start(&sv, flags);
            atomic_store(&k.server, sv.pid);
            CHECK(back);
        }
        /* Pushes are paced over the 5 s (a batch per 200 ms), so jobs
         * run while their workers die. */
        double wait = start + 0.2 * (double)(pushed / BATCH) - test_now();
        if (wait > 0 && wait < 0.2) {
            struct timespec ts = {0, (long)(wait * 1e9)};
            nanosleep(&ts, NULL); /* Pacing the load. */
        }
    }
    jobq_close(c);
    pthread_join(kt, NULL);
    unsigned kills = atomic_load(&k.kills);
    CHECK(queue_killed);
    CHECK(kills >= 15);
    jobq_stats s;
    CHECK(wait_finished(&sv, TOTAL, &s));
    CHECK_EQ(s.done, TOTAL);
    CHECK_EQ(s.reserved + s.available + s.scheduled + s.dead, 0);
    static line out[3 * TOTAL];
    size_t nout = read_output(&sv, out, 3 * TOTAL), missing, dups;
    qsort(ids, TOTAL, sizeof *ids, cmp_u64);
    tally(ids, TOTAL, out, nout, &missing, &dups);
    fprintf(stderr,
            "  %u worker kills, %zu duplicates, %" PRIu64 " redeliveries\n",
            kills, dups, s.redeliveries);
    CHECK_EQ(missing, 0);
    CHECK(dups <= s.redeliveries);
    CHECK(s.redeliveries > 0);
    CHECK(log_has(&sv, "job_redelivered", NULL));
    CHECK_EQ(server_stop(&sv), 0);
    server_remove(&sv);
}

/* kill -9 right after the last acknowledged push: every job is there
 * after a restart. */
static void durable_push(void)
{
    server sv;
    jobq_client *c = start(&sv, NULL);
    CHECK(c != NULL);
    static uint64_t ids[500];
    jobq_push_opts o = {.delay_ms = 3600 * 1000};
    CHECK(push_echoes(c, 500, ids, &o));
    server_kill(&sv);
    jobq_close(c);
    CHECK(server_start(&sv, NULL));
    CHECK((c = client(&sv)) != NULL);
    jobq_stats s;
    CHECK_EQ(jobq_stats_get(c, &s), JOBQ_OK);
    CHECK_EQ(s.scheduled, 500);
    for (int i = 0; i < 500; i++) {
        jobq_job j;
        CHECK_EQ(jobq_get(c, ids[i], &j), JOBQ_OK);
        CHECK(strcmp(j.state, "scheduled") == 0);
    }
    CHECK(finish(&sv, c));
}

static void fill_job(msgpack_packer *pk, void *arg)
{
    jq_kv_uint(pk, "job", *(const uint64_t *)arg);
}

/* Stores the times of job id's recorded errors in at (at most max);
 * returns how many, or -1. */
static int error_times(jobq_client *c, uint64_t id, int64_t *at, int max)
{
    msgpack_unpacked r;
    if (jobq_request(c, "get", 1, fill_job, &id, &r) != JOBQ_OK)
        return -1;
    const msgpack_object *e = jq_map_get(&r.data, "errors");
    int n = 0;
    for (uint32_t i = 0; e != NULL && e->type == MSGPACK_OBJECT_ARRAY &&
                         i < e->via.array.size && n < max;
         i++) {
        uint64_t t;
        if (jq_obj_uint(jq_map_get(&e->via.array.ptr[i], "at"), &t))
            at[n++] = (int64_t)t;
    }
    msgpack_unpacked_destroy(&r);
    return n;
}

/* A job that fails three times is retried after 200, 400 and 800 ms
 * (plus at most 10% jitter and the time to run it). */
static void retry_backoff(void)
{
    server sv;
    const char *const flags[] = {"--retry-base", "200", NULL};
    CHECK(server_init(&sv) && server_start(&sv, flags));
    jobq_client *c = client(&sv);
    CHECK(c != NULL);
    char p[16];
    uint64_t id;
    CHECK_EQ(jobq_push(c, "flaky", p, int_payload(p, 4), NULL, &id, NULL),
             JOBQ_OK);
    jobq_job j;
    CHECK(wait_state(c, id, "done", &j));
    CHECK_EQ(j.attempts, 4);
    CHECK_EQ(j.nerrors, 3);
    int64_t at[3];
    CHECK_EQ(error_times(c, id, at, 3), 3);
    for (int i = 1; i < 3; i++) {
        int64_t gap = at[i] - at[i - 1], delay = 200LL << (i - 1);
        fprintf(stderr,
                "  retry %d came %lld ms after the failure (delay "
                "%lld)\n",
                i, (long long)gap, (long long)delay);
        CHECK(gap >= delay);
        CHECK(gap <= delay + delay / 10 + 500); /* Jitter and run time. */
    }
    CHECK(finish(&sv, c));
}

/* A job that always fails is dead after max_attempts, listed as dead, and
 * a retry by hand runs it again (max_attempts more times). */
static void dead_and_retry(void)
{
    server sv;
    const char *const flags[] = {"--retry-base", "10", NULL};
    CHECK(server_init(&sv) && server_start(&sv, flags));
    jobq_client *c = client(&sv);
    CHECK(c != NULL);
    jobq_push_opts o = {.max_attempts = 2};
    uint64_t id, done_id;
    CHECK_EQ(jobq_push(c, "fail", NULL, 0, &o, &id, NULL), JOBQ_OK);
    jobq_job j;
    CHECK(wait_state(c, id, "dead", &j));
    CHECK_EQ(j.attempts, 2);
    CHECK(strcmp(j.error, "it always fails") == 0);
    jobq_job dead[4];
    size_t n;
    CHECK_EQ(jobq_dead(c, 0, dead, 4, &n), JOBQ_OK);
    CHECK_EQ(n, 1);
    CHECK_EQ(dead[0].id, id);
    CHECK(log_has(&sv, "\"job_dead\"", "it always fails"));
    /* Only a dead job can be retried. */
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, NULL, &done_id, NULL), JOBQ_OK);
    CHECK(wait_state(c, done_id, "done", &j));
    CHECK_EQ(jobq_retry(c, done_id), JOBQ_EREFUSED);
    CHECK(strcmp(jobq_error_code(c), "state") == 0);
    CHECK_EQ(jobq_retry(c, id), JOBQ_OK);
    CHECK(wait_state(c, id, "dead", &j));
    CHECK_EQ(j.attempts, 4);
    CHECK_EQ(j.nerrors, 4);
    CHECK_EQ(jobq_retry(c, 999999), JOBQ_EREFUSED);
    CHECK(strcmp(jobq_error_code(c), "notfound") == 0);
    CHECK(finish(&sv, c));
}

/* Jobs that crash their worker with SIGSEGV end dead with that reason;
 * the echo jobs around them all finish; the workers keep coming back. */
static void crash_isolation(void)
{
    server sv;
    const char *const flags[] = {"--retry-base", "10", NULL};
    CHECK(server_init(&sv) && server_start(&sv, flags));
    jobq_client *c = client(&sv);
    CHECK(c != NULL);
    jobq_push_opts crash = {.max_attempts = 2};
    uint64_t crashes[5];
    static uint64_t ids[300];
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(jobq_push(c, "crash", NULL, 0, &crash, &crashes[i], NULL),
                 JOBQ_OK);
        CHECK(push_echoes(c, 60, ids + 60 * i, NULL));
    }
    jobq_stats s;
    CHECK(wait_finished(&sv, 305, &s));
    CHECK_EQ(s.dead, 5);
    CHECK_EQ(s.done, 300);
    for (int i = 0; i < 5; i++) {
        jobq_job j;
        CHECK_EQ(jobq_get(c, crashes[i], &j), JOBQ_OK);
        CHECK(strcmp(j.state, "dead") == 0);
        if (strcmp(j.error, "signal SIGSEGV") != 0)
            fprintf(stderr, "  job %" PRIu64 ": %s\n", j.id, j.error);
        CHECK(strcmp(j.error, "signal SIGSEGV") == 0);
    }
    CHECK(log_has(&sv, "child_crashed", "SIGSEGV"));
    /* The supervisor did not give up: every worker comes back. */
    double end = test_now() + JOBS_WAIT_S;
    while (test_now() < end && jobq_stats_get(c, &s) == JOBQ_OK &&
           s.workers < 4) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL); /* Between two polls of the count. */
    }
    CHECK_EQ(s.workers, 4);
    CHECK(!log_has(&sv, "gave_up", NULL));
    CHECK(finish(&sv, c));
}

/* A job that outlives its lease has its worker process killed and
 * restarted, and is retried (here: until dead); other jobs then run. */
static void lease_expiry(void)
{
    server sv;
    const char *const flags[] = {"--retry-base", "10", "--workers", "1", NULL};
    CHECK(server_init(&sv) && server_start(&sv, flags));
    jobq_client *c = client(&sv);
    CHECK(c != NULL);
    int before[4];
    CHECK_EQ(worker_pids(&sv, before, 4), 1);
    jobq_push_opts o = {.max_attempts = 2, .lease_ms = 300};
    uint64_t id, echo;
    CHECK_EQ(jobq_push(c, "spin", NULL, 0, &o, &id, NULL), JOBQ_OK);
    jobq_job j;
    CHECK(wait_state(c, id, "dead", &j));
    CHECK_EQ(j.attempts, 2);
    CHECK(strcmp(j.error, "lease expired after 300 ms") == 0);
    CHECK(j.redeliveries >= 1);
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, NULL, &echo, NULL), JOBQ_OK);
    CHECK(wait_state(c, echo, "done", &j));
    int after[4];
    CHECK_EQ(worker_pids(&sv, after, 4), 1);
    CHECK(after[0] != before[0]);
    CHECK(log_has(&sv, "child_restarted", "worker-1"));
    CHECK(finish(&sv, c));
}

/* Finds job id's first line in out. */
static const line *line_of(const line *out, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (out[i].id == id)
            return &out[i];
    return NULL;
}

/* A scheduled job never starts before its time, also when the server was
 * killed and started again in between. */
static void scheduled(void)
{
    server sv;
    jobq_client *c = start(&sv, NULL);
    CHECK(c != NULL);
    jobq_push_opts soon = {.delay_ms = 300}, later = {.delay_ms = 1500};
    uint64_t a, b;
    jobq_job ja, jb;
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, &soon, &a, NULL), JOBQ_OK);
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, &later, &b, NULL), JOBQ_OK);
    CHECK_EQ(jobq_get(c, b, &jb), JOBQ_OK);
    CHECK(strcmp(jb.state, "scheduled") == 0);
    CHECK(wait_state(c, a, "done", &ja));
    server_kill(&sv);
    jobq_close(c);
    CHECK(server_start(&sv, NULL));
    CHECK((c = client(&sv)) != NULL);
    CHECK(wait_state(c, b, "done", &jb));
    line out[8];
    size_t n = read_output(&sv, out, 8);
    const line *la = line_of(out, n, a), *lb = line_of(out, n, b);
    CHECK(la != NULL && lb != NULL);
    CHECK(la->start_us >= ja.run_at * 1000);
    CHECK(lb->start_us >= jb.run_at * 1000);
    CHECK(finish(&sv, c));
}

/* Runnable jobs run by priority (0 first), then in push order. */
static void priority_order(void)
{
    server sv;
    const char *const flags[] = {"--workers", "1", "--capacity", "1", NULL};
    CHECK(server_init(&sv) && server_start(&sv, flags));
    jobq_client *c = client(&sv);
    CHECK(c != NULL);
    char p[64];
    uint64_t id, blocker;
    /* The one worker is busy while the others are pushed. */
    CHECK_EQ(
        jobq_push(c, "sleep", p, int_payload(p, 1000), NULL, &blocker, NULL),
        JOBQ_OK);
    static const struct {
        const char *name;
        int prio;
    } jobs[] = {{"p9", 9}, {"p5a", 5}, {"p0", 0}, {"p5b", 5}, {"p1", 1}};
    for (int i = 0; i < 5; i++) {
        jobq_push_opts o = {.priority = jobs[i].prio, .priority_set = true};
        CHECK_EQ(jobq_push(c, "echo", p, str_payload(p, sizeof p, jobs[i].name),
                           &o, &id, NULL),
                 JOBQ_OK);
    }
    jobq_job j;
    CHECK_EQ(jobq_get(c, blocker, &j), JOBQ_OK);
    CHECK(strcmp(j.state, "reserved") ==
          0); /* Else the order proves nothing. */
    CHECK(wait_finished(&sv, 6, NULL));
    line out[8];
    CHECK_EQ(read_output(&sv, out, 8), 5);
    static const char *const want[] = {"p0", "p1", "p5a", "p5b", "p9"};
    for (int i = 0; i < 5; i++)
        CHECK(strcmp(out[i].value, want[i]) == 0);
    CHECK(finish(&sv, c));
}

/* A queue with --limit 1 runs one job at a time, however many workers
 * are free; other queues are not held up. */
static void queue_limit(void)
{
    server sv;
    const char *const flags[] = {"--limit", "slow=1", NULL};
    jobq_client *c = start(&sv, flags);
    CHECK(c != NULL);
    char p[16];
    size_t len = int_payload(p, 300);
    jobq_push_opts slow = {.queue = "slow"};
    uint64_t ids[3], other;
    double t0 = test_now();
    for (int i = 0; i < 3; i++)
        CHECK_EQ(jobq_push(c, "sleep", p, len, &slow, &ids[i], NULL), JOBQ_OK);
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, NULL, &other, NULL), JOBQ_OK);
    jobq_job j;
    CHECK(wait_state(c, other, "done", &j));
    int reserved = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(jobq_get(c, ids[i], &j), JOBQ_OK);
        reserved += strcmp(j.state, "reserved") == 0;
    }
    CHECK(reserved <= 1);
    for (int i = 0; i < 3; i++)
        CHECK(wait_state(c, ids[i], "done", &j));
    /* One after another: three sleeps of 300 ms take 900 ms at least. */
    CHECK(test_now() - t0 >= 0.9);
    CHECK(finish(&sv, c));
}

/* A push with a key already used returns the first job's id and adds
 * nothing. */
static void idempotency_key(void)
{
    server sv;
    jobq_client *c = start(&sv, NULL);
    CHECK(c != NULL);
    jobq_push_opts o = {.key = "order-42"};
    uint64_t a, b;
    bool dup;
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, &o, &a, &dup), JOBQ_OK);
    CHECK(!dup);
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, &o, &b, &dup), JOBQ_OK);
    CHECK(dup);
    CHECK_EQ(a, b);
    jobq_job j;
    CHECK(wait_state(c, a, "done", &j));
    CHECK(strcmp(j.key, "order-42") == 0);
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, &o, &b, &dup), JOBQ_OK);
    CHECK(dup && a == b); /* Also once it is done. */
    line out[4];
    CHECK_EQ(read_output(&sv, out, 4), 1);
    CHECK(finish(&sv, c));
}

/* A queue at its maximum refuses pushes with "busy" until a job leaves
 * it; cancel works on waiting jobs only. */
static void busy_and_cancel(void)
{
    server sv;
    const char *const flags[] = {"--max-queued", "5", NULL};
    CHECK(server_init(&sv) && server_start(&sv, flags));
    jobq_client *c = client(&sv);
    CHECK(c != NULL);
    jobq_push_opts later = {.delay_ms = 3600 * 1000};
    uint64_t ids[5], id;
    for (int i = 0; i < 5; i++)
        CHECK_EQ(jobq_push(c, "echo", NULL, 0, &later, &ids[i], NULL), JOBQ_OK);
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, &later, &id, NULL), JOBQ_EREFUSED);
    CHECK(strcmp(jobq_error_code(c), "busy") == 0);
    /* Another queue has room. */
    jobq_push_opts other = {.queue = "other", .delay_ms = 3600 * 1000};
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, &other, &id, NULL), JOBQ_OK);
    CHECK_EQ(jobq_cancel(c, ids[0]), JOBQ_OK);
    jobq_job j;
    CHECK_EQ(jobq_get(c, ids[0], &j), JOBQ_OK);
    CHECK(strcmp(j.state, "cancelled") == 0);
    CHECK_EQ(jobq_cancel(c, ids[0]), JOBQ_EREFUSED);
    CHECK(strcmp(jobq_error_code(c), "state") == 0);
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, &later, &id, NULL), JOBQ_OK);
    CHECK_EQ(jobq_get(c, 424242, &j), JOBQ_EREFUSED);
    CHECK(strcmp(jobq_error_code(c), "notfound") == 0);
    CHECK(finish(&sv, c));
}

/* Writes one frame of len bytes (the prefix says claimed) on fd. */
static bool raw_send(int fd, const void *data, size_t len, uint32_t claimed)
{
    uint8_t h[4] = {(uint8_t)(claimed >> 24), (uint8_t)(claimed >> 16),
                    (uint8_t)(claimed >> 8), (uint8_t)claimed};
    return write(fd, h, 4) == 4 &&
           (len == 0 || write(fd, data, len) == (ssize_t)len);
}

/* Reads one answer frame from fd into buf; its length, or -1 (end of file,
 * or nothing within the time limit). */
static ssize_t raw_recv(int fd, char *buf, size_t size)
{
    size_t have = 0, want = 4;
    uint8_t h[4];
    while (have < want) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, START_WAIT_MS) != 1)
            return -1;
        ssize_t k = have < 4 ? read(fd, h + have, 4 - have)
                             : read(fd, buf + have - 4, want - have);
        if (k <= 0)
            return -1;
        have += (size_t)k;
        if (have == 4) {
            want = 4 + ((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
                        (uint32_t)h[2] << 8 | h[3]);
            if (want - 4 > size)
                return -1;
        }
    }
    return (ssize_t)(want - 4);
}

/* Whether an answer frame says error code `error` with reason containing
 * `words`. */
static bool refused(const char *buf, ssize_t n, const char *error,
                    const char *words)
{
    msgpack_unpacked r;
    if (n <= 0 || !jq_unpack(buf, (size_t)n, &r))
        return false;
    char e[32] = "", why[256] = "";
    (void)jq_obj_text(jq_map_get(&r.data, "error"), e, sizeof e);
    (void)jq_obj_text(jq_map_get(&r.data, "reason"), why, sizeof why);
    msgpack_unpacked_destroy(&r);
    if (strcmp(e, error) != 0 || strstr(why, words) == NULL)
        fprintf(stderr, "  answer: %s: %s\n", e, why);
    return strcmp(e, error) == 0 && strstr(why, words) != NULL;
}

static int raw_connect(server *sv)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET,
        .sin_port = htons((uint16_t)atoi(strchr(sv->addr, ':') + 1)),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Bad requests get a precise "badrequest" and the connection goes on; a
 * frame over the limit gets an answer and the connection closes; other
 * clients never notice. */
static void bad_input(void)
{
    server sv;
    CHECK(server_init(&sv) && server_start(&sv, NULL));
    int fd = raw_connect(&sv);
    CHECK(fd >= 0);
    char buf[4096];
    ssize_t n;
    CHECK(raw_send(fd, "\xc1\xc1garbage", 9, 9));
    CHECK(refused(buf, n = raw_recv(fd, buf, sizeof buf), "badrequest",
                  "one msgpack map"));
    static const struct {
        const char *what; /* What the map holds. */
        const char *words;
    } cases[] = {
        {"no op", "op must be"},
        {"push, no type", "type must be"},
        {"push, type with a space", "type must be"},
        {"push, priority 12", "priority must be a number from 0 to 9"},
        {"get, no job", "needs job"},
        {"dead, limit 0", "limit must be"},
    };
    for (int i = 0; i < 6; i++) {
        msgpack_sbuffer b;
        msgpack_packer pk;
        msgpack_sbuffer_init(&b);
        msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
        static const uint32_t fields[] = {1, 2, 3, 4, 2, 3};
        msgpack_pack_map(&pk, fields[i]);
        jq_kv_uint(&pk, "rid", 7);
        if (i >= 1)
            jq_kv_str(&pk, "op", i <= 3 ? "push" : i == 4 ? "get" : "dead");
        if (i == 2)
            jq_kv_str(&pk, "type", "bad type");
        if (i == 3) {
            jq_kv_str(&pk, "type", "echo");
            jq_kv_uint(&pk, "priority", 12);
        }
        if (i == 5)
            jq_kv_uint(&pk, "limit", 0);
        CHECK(raw_send(fd, b.data, b.size, (uint32_t)b.size));
        msgpack_sbuffer_destroy(&b);
        n = raw_recv(fd, buf, sizeof buf);
        if (!refused(buf, n, "badrequest", cases[i].words))
            fprintf(stderr, "  case: %s\n", cases[i].what);
        CHECK(refused(buf, n, "badrequest", cases[i].words));
    }
    /* A push with no rid, or a rid that is no unsigned integer, is
     * refused, and nothing is pushed. */
    for (int i = 0; i < 2; i++) {
        msgpack_sbuffer b;
        msgpack_packer pk;
        msgpack_sbuffer_init(&b);
        msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 2 + i);
        if (i == 1)
            jq_kv_str(&pk, "rid", "x");
        jq_kv_str(&pk, "op", "push");
        jq_kv_str(&pk, "type", "echo");
        CHECK(raw_send(fd, b.data, b.size, (uint32_t)b.size));
        msgpack_sbuffer_destroy(&b);
        n = raw_recv(fd, buf, sizeof buf);
        CHECK(refused(buf, n, "badrequest", "needs rid"));
    }
    /* The same connection still works. */
    {
        msgpack_sbuffer b;
        msgpack_packer pk;
        msgpack_sbuffer_init(&b);
        msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 2);
        jq_kv_uint(&pk, "rid", 8);
        jq_kv_str(&pk, "op", "stats");
        CHECK(raw_send(fd, b.data, b.size, (uint32_t)b.size));
        msgpack_sbuffer_destroy(&b);
        msgpack_unpacked r;
        CHECK((n = raw_recv(fd, buf, sizeof buf)) > 0);
        CHECK(jq_unpack(buf, (size_t)n, &r));
        uint64_t rid = 0;
        CHECK(jq_obj_uint(jq_map_get(&r.data, "rid"), &rid) && rid == 8);
        msgpack_unpacked_destroy(&r);
    }
    /* A frame that claims 10 MB: answered, then closed. */
    CHECK(raw_send(fd, NULL, 0, 10u * 1024 * 1024));
    CHECK(refused(buf, raw_recv(fd, buf, sizeof buf), "badrequest",
                  "a frame of more than"));
    CHECK_EQ(raw_recv(fd, buf, sizeof buf), -1);
    close(fd);
    /* Nobody else noticed, and the pushes without a rid pushed nothing. */
    jobq_client *c = client(&sv);
    CHECK(c != NULL);
    jobq_stats st;
    CHECK_EQ(jobq_stats_get(c, &st), JOBQ_OK);
    CHECK_EQ(st.pushed, 0);
    uint64_t id;
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, NULL, &id, NULL), JOBQ_OK);
    CHECK(finish(&sv, c));
}

/* SIGTERM while jobs run: exit 0; a new start runs what was left. */
static void sigterm_under_load(void)
{
    server sv;
    jobq_client *c = start(&sv, NULL);
    CHECK(c != NULL);
    enum { N = 3000, SLEEPS = 20 };
    static uint64_t ids[N];
    char p[16];
    size_t len = int_payload(p, 2000);
    uint64_t id;
    CHECK(push_echoes(c, N, ids, NULL));
    /* Jobs that are surely running when SIGTERM comes: sleeps of 2 s,
     * pushed last (pushed first, they were over before the echoes were
     * all in on a loaded machine), SIGTERM once some job is out. */
    for (int i = 0; i < SLEEPS; i++)
        CHECK_EQ(jobq_push(c, "sleep", p, len, NULL, &id, NULL), JOBQ_OK);
    jobq_stats s;
    double end = test_now() + JOBS_WAIT_S;
    while (jobq_stats_get(c, &s) == JOBQ_OK && s.reserved == 0 &&
           test_now() < end) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL); /* Between two polls of the counts. */
    }
    CHECK(s.reserved > 0);
    CHECK(s.done < N + SLEEPS);
    jobq_close(c);
    CHECK_EQ(server_stop(&sv), 0);
    CHECK(server_start(&sv, NULL));
    CHECK(wait_finished(&sv, N + SLEEPS, &s));
    CHECK_EQ(s.done, N + SLEEPS);
    static line out[2 * N];
    size_t nout = read_output(&sv, out, 2 * N), missing, dups;
    qsort(ids, N, sizeof *ids, cmp_u64);
    tally(ids, N, out, nout, &missing, &dups);
    CHECK_EQ(missing, 0);
    CHECK(dups <= s.redeliveries);
    CHECK_EQ(server_stop(&sv), 0);
    server_remove(&sv);
}

/* Runs jobq with args (NULL-terminated) to its end; stores what it wrote
 * on stderr in err and returns its exit status, or -1. */
static int run_jobq(const char *const *args, char *err, size_t size)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        const char *argv[16] = {jobq_bin};
        for (int i = 0; i < 14 && args[i] != NULL; i++)
            argv[i + 1] = args[i];
        execv(jobq_bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t have = 0;
    for (;;) {
        struct pollfd pf = {p[0], POLLIN, 0};
        if (poll(&pf, 1, START_WAIT_MS) <= 0)
            break;
        ssize_t k = read(p[0], err + have, size - 1 - have);
        if (k <= 0)
            break;
        have += (size_t)k;
        if (have == size - 1)
            have = 0; /* Keep reading; the end is what matters. */
    }
    err[have] = '\0';
    close(p[0]);
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A second server on the same database refuses to start, and says why;
 * the first goes on. */
static void one_server_per_database(void)
{
    server sv;
    CHECK(server_init(&sv) && server_start(&sv, NULL));
    const char *const args[] = {"serve", "--listen", "127.0.0.1:0",
                                "--db",  sv.db,      NULL};
    char err[4096];
    CHECK_EQ(run_jobq(args, err, sizeof err), 1);
    CHECK(strstr(err, "is another jobq serving it?") != NULL);
    jobq_client *c = client(&sv);
    CHECK(c != NULL);
    uint64_t id;
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, NULL, &id, NULL), JOBQ_OK);
    CHECK(finish(&sv, c));
}

/* Pipelined pushes are answered in the order sent, one refused by the
 * conn included, so each id goes with its own push. */
static void pipelined_in_order(void)
{
    server sv;
    jobq_client *c = start(&sv, NULL);
    CHECK(c != NULL);
    char p[16];
    size_t len = int_payload(p, 1);
    CHECK_EQ(jobq_push_send(c, "echo", NULL, 0, NULL), JOBQ_OK);
    CHECK_EQ(jobq_push_send(c, "bad type!", NULL, 0, NULL), JOBQ_OK);
    CHECK_EQ(jobq_push_send(c, "sleep", p, len, NULL), JOBQ_OK);
    /* Another call now would read a push's answer: refused. */
    jobq_stats s;
    CHECK_EQ(jobq_stats_get(c, &s), JOBQ_EINVAL);
    uint64_t a, b;
    CHECK_EQ(jobq_push_wait(c, &a, NULL), JOBQ_OK);
    CHECK_EQ(jobq_push_wait(c, NULL, NULL), JOBQ_EREFUSED);
    CHECK(strcmp(jobq_error_code(c), "badrequest") == 0);
    CHECK_EQ(jobq_push_wait(c, &b, NULL), JOBQ_OK);
    CHECK_EQ(jobq_push_wait(c, &b, NULL), JOBQ_EINVAL); /* None left. */
    jobq_job j;
    CHECK_EQ(jobq_get(c, a, &j), JOBQ_OK);
    CHECK(strcmp(j.type, "echo") == 0);
    CHECK(strcmp(jobq_error(c), "") == 0); /* A success clears it. */
    CHECK_EQ(jobq_get(c, b, &j), JOBQ_OK);
    CHECK(strcmp(j.type, "sleep") == 0);
    CHECK(finish(&sv, c));
}

/* Mistakes with the library get JOBQ_EINVAL and a sentence, not a crash;
 * a long echo payload reaches the output whole. */
static void client_misuse(void)
{
    server sv;
    CHECK(server_init(&sv) && server_start(&sv, NULL));
    jobq_client *c = NULL;
    CHECK_EQ(jobq_connect(sv.addr, 0, &c), JOBQ_EINVAL);
    CHECK(strstr(jobq_connect_error(), "timeout_ms") != NULL);
    CHECK_EQ(jobq_connect("no-port", 1000, &c), JOBQ_EINVAL);
    CHECK(c == NULL);
    /* A port past 65535 is refused, not taken modulo 65536. */
    static const char *const bad_ports[] = {"127.0.0.1:99999", "127.0.0.1:0",
                                            "127.0.0.1:-1", "127.0.0.1:7x"};
    for (size_t i = 0; i < sizeof bad_ports / sizeof bad_ports[0]; i++) {
        CHECK_EQ(jobq_connect(bad_ports[i], 1000, &c), JOBQ_EINVAL);
        CHECK(strstr(jobq_connect_error(), "from 1 to 65535") != NULL);
    }
    CHECK(strcmp(jobq_error(NULL), "") != 0);
    jobq_close(NULL);
    CHECK((c = client(&sv)) != NULL);
    uint64_t id;
    CHECK_EQ(jobq_push(c, NULL, NULL, 0, NULL, &id, NULL), JOBQ_EINVAL);
    CHECK_EQ(jobq_push(c, "echo", "\xc1", 1, NULL, &id, NULL), JOBQ_EINVAL);
    CHECK(strstr(jobq_error(c), "msgpack") != NULL);
    jobq_push_opts both = {.run_at_ms = 1, .delay_ms = 1};
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, &both, &id, NULL), JOBQ_EINVAL);
    /* The connection is still good, and 60 000 bytes of echo arrive. */
    enum { BIG = 60000 };
    static char text[BIG + 1], packed[BIG + 16];
    memset(text, 'x', BIG);
    size_t len = str_payload(packed, sizeof packed, text);
    CHECK(len > BIG);
    CHECK_EQ(jobq_push(c, "echo", packed, len, NULL, &id, NULL), JOBQ_OK);
    jobq_job j;
    CHECK(wait_state(c, id, "done", &j));
    FILE *f = fopen(sv.output, "r");
    CHECK(f != NULL);
    static char line[BIG + 128];
    bool whole = fgets(line, sizeof line, f) != NULL && strlen(line) > BIG &&
                 strstr(line, text) != NULL;
    fclose(f);
    CHECK(whole);
    CHECK(finish(&sv, c));
}

/* The Unix socket serves the same protocol. */
static void unix_socket(void)
{
    server sv;
    CHECK(server_init(&sv));
    const char *const flags[] = {"--unix", sv.sock, NULL};
    CHECK(server_start(&sv, flags));
    char addr[128];
    snprintf(addr, sizeof addr, "unix:%s", sv.sock);
    jobq_client *c;
    CHECK_EQ(jobq_connect(addr, 5000, &c), JOBQ_OK);
    uint64_t id;
    CHECK_EQ(jobq_push(c, "echo", NULL, 0, NULL, &id, NULL), JOBQ_OK);
    jobq_job j;
    CHECK(wait_state(c, id, "done", &j));
    CHECK(finish(&sv, c));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_jobq PATH-TO-JOBQ [CASE...]\n");
        return 2;
    }
    jobq_bin = argv[1];
    static const struct test_case cases[] = {
        TEST_CASE(happy_path),
        TEST_CASE(chaos),
        TEST_CASE(durable_push),
        TEST_CASE(retry_backoff),
        TEST_CASE(dead_and_retry),
        TEST_CASE(crash_isolation),
        TEST_CASE(lease_expiry),
        TEST_CASE(scheduled),
        TEST_CASE(priority_order),
        TEST_CASE(idempotency_key),
        TEST_CASE(busy_and_cancel),
        TEST_CASE(bad_input),
        TEST_CASE(sigterm_under_load),
        TEST_CASE(unix_socket),
        TEST_CASE(one_server_per_database),
        TEST_CASE(pipelined_in_order),
        TEST_CASE(client_misuse),
        TEST_CASE(queue_limit),
    };
    argv[1] = argv[0];
    return test_main(cases, sizeof cases / sizeof cases[0], argc - 1, argv + 1);
}
