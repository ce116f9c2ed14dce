/*
 * The store: the one actor that owns the jobs. It runs on the blocking
 * pool, for every commit waits for fsync.
 *
 * Group commit: the first change of a batch opens a transaction and sends
 * the store a JQ_FLUSH, which queues behind every request already in its
 * mailbox. Those requests join the transaction; the flush then reserves
 * jobs for free workers in it too, commits once, and only then answers
 * the pushes and hands out the jobs. A busy store thus commits many
 * requests at a time and an idle one commits each at once; a batch ends
 * after BATCH_MAX changes whatever the mailbox holds, which bounds the
 * wait.
 *
 * Workers are node processes. Each worker's root says JQ_READY; the store
 * monitors the worker's stand-in in this process (registered under the
 * node's name), so a process that dies fails every job it held at once,
 * with its exit reason (e.g. "signal SIGSEGV"). A job past its lease gets
 * its worker process killed; its supervisor starts a new one.
 */
#include "db.h"
#include "events.h"
#include "jobq.h"
#include "wire.h"

#include <grove/msgpack.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Changes one transaction takes before it commits, whatever is waiting. */
#define BATCH_MAX 1024

/* Longest retry delay. */
#define RETRY_MAX_MS (3600 * 1000)

/* A worker process, known by its stand-in here. */
typedef struct worker {
    char node[GR_NAME_MAX + 1];
    gr_ref standin;
    uint64_t monitor;
    uint32_t capacity, held;
    bool up;
} worker;

/* A job handed to a worker and not yet reported. */
typedef struct flight {
    uint64_t id;
    uint32_t attempt;
    uint32_t lease_ms;
    int worker, queue;
    int64_t deadline;
    char type[JQ_NAME_MAX + 1];
} flight;

typedef struct queue {
    char name[JQ_NAME_MAX + 1];
    uint64_t unfinished; /* Scheduled, available or reserved. */
    uint32_t running;    /* Reserved. */
    uint32_t limit;      /* Most running at once; 0: no limit. */
} queue;

/* Bytes that wait for the commit: answers, then jobs to hand out. */
typedef struct pending {
    gr_request req;   /* An answer's request; corr 0 for a job. */
    int worker;       /* A job's worker, */
    uint64_t job;     /* its id */
    uint32_t attempt; /* and attempt. */
    size_t off, len;
} pending;

typedef struct store {
    jq_db *db;
    jq_store_arg cfg;
    bool in_txn, flush_queued;
    uint32_t batch;
    /* What the open transaction owes once it commits. */
    pending *pend;
    size_t npend, pend_cap;
    msgpack_sbuffer bytes;
    worker workers[JQ_WORKERS_MAX];
    size_t nworkers;
    flight *flights;
    size_t nflights, flights_cap;
    queue queues[JQ_QUEUES_MAX];
    size_t nqueues;
    uint64_t timer;
    int64_t timer_at; /* 0: no timer. */
    uint64_t rng;
    uint64_t pushed, executed, commits; /* Since this store started. */
    /* Scratch, too big for a stack: a reservation, a row, and a job
     * message (a jq_job header, then its payload). */
    jq_reserved res;
    jq_row row;
    union {
        jq_job head;
        uint8_t bytes[sizeof(jq_job) + JQ_PAYLOAD_MAX];
    } job;
} store;

/* ---- small helpers ------------------------------------------------------ */

/* Crashes the store with the database's error. */
static _Noreturn void db_failed(gr_ctx *ctx, store *st, const char *what)
{
    gr_fail(ctx, "%s: %s", what, jq_db_error(st->db));
}

#define DB(ctx, st, call, what)                                                \
    do {                                                                       \
        if ((call) != SQLITE_OK)                                               \
            db_failed(ctx, st, what);                                          \
    } while (0)

static queue *queue_find(store *st, const char *name, bool create)
{
    for (size_t i = 0; i < st->nqueues; i++)
        if (strcmp(st->queues[i].name, name) == 0)
            return &st->queues[i];
    if (!create || st->nqueues == JQ_QUEUES_MAX)
        return NULL;
    queue *q = &st->queues[st->nqueues++];
    memset(q, 0, sizeof *q);
    snprintf(q->name, sizeof q->name, "%s", name);
    for (uint32_t i = 0; i < st->cfg.nlimits && i < 16; i++)
        if (strcmp(st->cfg.limits[i].queue, name) == 0)
            q->limit = st->cfg.limits[i].concurrency;
    return q;
}

static void queue_loaded(void *arg, const char *name, uint64_t unfinished)
{
    queue *q = queue_find(arg, name, true);
    if (q != NULL)
        q->unfinished = unfinished;
}

/* Counts one more change in the batch: opens its transaction if none is
 * open, and makes sure a flush will commit it. */
static void begin(gr_ctx *ctx, store *st)
{
    if (!st->in_txn) {
        DB(ctx, st, jq_db_begin(st->db), "begin");
        st->in_txn = true;
        st->batch = 0;
    }
    st->batch++;
    if (!st->flush_queued &&
        gr_tell(ctx, gr_self(ctx), JQ_FLUSH, NULL, 0) == GR_OK)
        st->flush_queued = true;
}

/* Makes room for one more of the n elements of elem bytes in *array
 * (capacity *cap, doubled as needed); crashes the store without memory. */
static void room_for_one(gr_ctx *ctx, void **array, size_t n, size_t *cap,
                         size_t elem)
{
    if (n < *cap)
        return;
    size_t more = *cap ? 2 * *cap : 64;
    void *grown = realloc(*array, more * elem);
    if (grown == NULL)
        gr_fail(ctx, "out of memory");
    *array = grown;
    *cap = more;
}

/* Keeps len bytes to send once the transaction commits. */
static void keep(gr_ctx *ctx, store *st, pending p, const void *data,
                 size_t len)
{
    room_for_one(ctx, (void **)&st->pend, st->npend, &st->pend_cap,
                 sizeof *st->pend);
    p.off = st->bytes.size;
    p.len = len;
    st->pend[st->npend++] = p;
    msgpack_sbuffer_write(&st->bytes, data, len);
}

/* Answers req with the packed reply in b, then frees b: now, or after
 * the commit when a transaction is open (so answers keep their order). */
static void answer(gr_ctx *ctx, store *st, gr_request req, jq_buf *b)
{
    if (st->in_txn)
        keep(ctx, st, (pending){.req = req, .worker = -1}, b->sb.data,
             b->sb.size);
    else
        (void)gr_reply_to(ctx, &req, JQ_ANSWER, b->sb.data, b->sb.size);
    msgpack_sbuffer_destroy(&b->sb);
}

static void answer_error(gr_ctx *ctx, store *st, gr_request req, uint64_t rid,
                         const char *error, const char *reason)
{
    jq_buf b;
    jq_buf_init(&b);
    jq_pack_error(&b.pk, rid, error, reason);
    answer(ctx, st, req, &b);
}

/* The delay before retry number attempt (1 for the first failure): the
 * base doubled per attempt, capped, plus up to 10% jitter. Never less
 * than the base's share, so gaps are at least the configured delay. */
static int64_t retry_delay(store *st, uint32_t attempt)
{
    uint64_t d = st->cfg.retry_base_ms;
    for (uint32_t i = 1; i < attempt && d < RETRY_MAX_MS; i++)
        d *= 2;
    if (d > RETRY_MAX_MS)
        d = RETRY_MAX_MS;
    st->rng ^= st->rng << 13;
    st->rng ^= st->rng >> 7;
    st->rng ^= st->rng << 17;
    return (int64_t)(d + (d / 10 ? st->rng % (d / 10 + 1) : 0));
}

/* ---- jobs coming back ---------------------------------------------------- */

static void flight_drop(store *st, size_t i)
{
    flight *f = &st->flights[i];
    if (f->worker >= 0 && st->workers[f->worker].held > 0)
        st->workers[f->worker].held--;
    if (st->queues[f->queue].running > 0)
        st->queues[f->queue].running--;
    st->flights[i] = st->flights[--st->nflights];
}

/* Fails the attempt of flight i with why; redelivery: its worker never
 * said how it went. */
static void flight_fail(gr_ctx *ctx, store *st, size_t i, const char *why,
                        bool redelivery)
{
    flight f = st->flights[i];
    flight_drop(st, i);
    int64_t now = jq_now_ms();
    int state;
    begin(ctx, st);
    DB(ctx, st,
       jq_db_fail(st->db, f.id, f.attempt, now, why, redelivery,
                  now + retry_delay(st, f.attempt), &state),
       "fail");
    if (redelivery)
        jq_event("job_redelivered", "info", f.id, f.type, f.attempt, why);
    if (state == JQ_DEAD) {
        if (st->queues[f.queue].unfinished > 0)
            st->queues[f.queue].unfinished--;
        jq_event("job_dead", "warn", f.id, f.type, f.attempt, why);
    }
}

static ssize_t flight_find(store *st, uint64_t id, uint32_t attempt)
{
    for (size_t i = 0; i < st->nflights; i++)
        if (st->flights[i].id == id && st->flights[i].attempt == attempt)
            return (ssize_t)i;
    return -1;
}

static int on_result(gr_ctx *ctx, store *st, const gr_msg *m)
{
    jq_result r;
    if (m->len != sizeof r)
        return GR_CONTINUE;
    memcpy(&r, m->data, sizeof r);
    r.error[JQ_ERROR_MAX] = '\0';
    ssize_t i = flight_find(st, r.id, r.attempt);
    if (i < 0)
        return GR_CONTINUE; /* Already failed (lease, or its worker died). */
    if (!r.ok) {
        flight_fail(ctx, st, (size_t)i, r.error, false);
        return GR_CONTINUE;
    }
    queue *q = &st->queues[st->flights[i].queue];
    flight_drop(st, (size_t)i);
    begin(ctx, st);
    DB(ctx, st, jq_db_done(st->db, r.id, jq_now_ms()), "done");
    if (q->unfinished > 0)
        q->unfinished--;
    st->executed++;
    return GR_CONTINUE;
}

/* ---- workers ------------------------------------------------------------- */

/* Worker w is gone: every job it held fails with why (a redelivery). */
static void worker_lost(gr_ctx *ctx, store *st, size_t w, const char *why)
{
    st->workers[w].up = false;
    for (size_t i = st->nflights; i-- > 0;)
        if (st->flights[i].worker == (int)w)
            flight_fail(ctx, st, i, why, true);
}

static int on_ready(gr_ctx *ctx, store *st, const gr_msg *m)
{
    jq_ready r;
    if (m->len != sizeof r)
        return GR_CONTINUE;
    memcpy(&r, m->data, sizeof r);
    r.node[GR_NAME_MAX] = '\0';
    gr_ref standin;
    if (gr_whereis(gr_ctx_system(ctx), r.node, &standin) != GR_OK) {
        fprintf(stderr, "jobq: worker %s has no stand-in here; ignored\n",
                r.node);
        return GR_CONTINUE;
    }
    size_t w = 0;
    while (w < st->nworkers && strcmp(st->workers[w].node, r.node) != 0)
        w++;
    if (w == st->nworkers) {
        if (st->nworkers == JQ_WORKERS_MAX)
            return GR_CONTINUE;
        st->nworkers++;
    } else {
        if (st->workers[w].up && gr_ref_eq(st->workers[w].standin, standin))
            return GR_CONTINUE; /* Said twice. */
        /* A new process under the name: jobs the old one still holds
         * (its DOWN not handled yet) fail now, and its DOWN is dropped. */
        (void)gr_demonitor(ctx, st->workers[w].monitor);
        worker_lost(ctx, st, w, "replaced by a new process");
    }
    worker *wk = &st->workers[w];
    snprintf(wk->node, sizeof wk->node, "%s", r.node);
    wk->standin = standin;
    wk->capacity = r.capacity ? r.capacity : 1;
    wk->held = 0;
    wk->up = gr_monitor(ctx, standin, &wk->monitor) == GR_OK;
    if (wk->up && !st->flush_queued &&
        gr_tell(ctx, gr_self(ctx), JQ_FLUSH, NULL, 0) == GR_OK)
        st->flush_queued = true;
    return GR_CONTINUE;
}

/* A worker process ended: every job it held fails with its exit reason. */
static int on_down(gr_ctx *ctx, store *st, const gr_down *d)
{
    for (size_t w = 0; w < st->nworkers; w++) {
        worker *wk = &st->workers[w];
        /* Matched by monitor: a worker already marked down (a job could
         * not be sent to it) still has its jobs to fail. */
        if (wk->monitor != d->monitor)
            continue;
        char why[JQ_ERROR_MAX + 1];
        if (d->reason.text[0] != '\0' && d->reason.code != GR_EFAILED)
            snprintf(why, sizeof why, "%s", d->reason.text);
        else
            gr_reason_format(&d->reason, why, sizeof why);
        worker_lost(ctx, st, w, why);
    }
    return GR_CONTINUE;
}

/* ---- dispatch ---- */

typedef struct cand {
    jq_cand c;
    int queue;
} cand;

static int cand_cmp(const void *a, const void *b)
{
    const jq_cand *x = &((const cand *)a)->c, *y = &((const cand *)b)->c;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    if (x->run_at != y->run_at)
        return x->run_at < y->run_at ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The up worker with the most free room, or -1. */
static int least_loaded(store *st)
{
    int best = -1;
    uint32_t room = 0;
    for (size_t w = 0; w < st->nworkers; w++) {
        worker *wk = &st->workers[w];
        if (wk->up && wk->capacity - wk->held > room) {
            room = wk->capacity - wk->held;
            best = (int)w;
        }
    }
    return best;
}

/* Reserves runnable jobs for free workers, in run order across queues
 * (priority, run-at, id), within each queue's limit. */
static void fill(gr_ctx *ctx, store *st)
{
    size_t room = 0;
    for (size_t w = 0; w < st->nworkers; w++)
        if (st->workers[w].up)
            room += st->workers[w].capacity - st->workers[w].held;
    if (room == 0)
        return;
    cand *cs = malloc(room * st->nqueues * sizeof *cs + 1);
    jq_cand *got = malloc(room * sizeof *got);
    if (cs == NULL || got == NULL)
        gr_fail(ctx, "out of memory");
    size_t n = 0;
    for (size_t qi = 0; qi < st->nqueues; qi++) {
        queue *q = &st->queues[qi];
        size_t want = room;
        if (q->limit != 0)
            want = q->running >= q->limit ? 0 : q->limit - q->running;
        if (want > room)
            want = room;
        if (q->unfinished == 0 || want == 0)
            continue;
        size_t k;
        DB(ctx, st, jq_db_runnable(st->db, q->name, got, want, &k), "runnable");
        for (size_t j = 0; j < k; j++)
            cs[n++] = (cand){got[j], (int)qi};
    }
    qsort(cs, n, sizeof *cs, cand_cmp);
    int64_t now = jq_now_ms();
    for (size_t j = 0; j < n; j++) {
        queue *q = &st->queues[cs[j].queue];
        int w = least_loaded(st);
        if (w < 0)
            break;
        if (q->limit != 0 && q->running >= q->limit)
            continue;
        room_for_one(ctx, (void **)&st->flights, st->nflights, &st->flights_cap,
                     sizeof *st->flights);
        begin(ctx, st);
        int rc =
            jq_db_reserve(st->db, cs[j].c.id, st->workers[w].node, &st->res);
        if (rc == SQLITE_NOTFOUND)
            continue;
        DB(ctx, st, rc, "reserve");
        flight *f = &st->flights[st->nflights++];
        *f = (flight){.id = cs[j].c.id,
                      .attempt = st->res.attempt,
                      .lease_ms = st->res.lease_ms,
                      .worker = w,
                      .queue = cs[j].queue,
                      .deadline = now + st->res.lease_ms};
        snprintf(f->type, sizeof f->type, "%s", st->res.type);
        st->workers[w].held++;
        q->running++;
        /* The job message: a jq_job header, then the payload. */
        jq_job *job = &st->job.head;
        memset(job, 0, sizeof *job);
        job->id = f->id;
        job->attempt = f->attempt;
        memcpy(job->type, st->res.type, sizeof job->type);
        job->payload_len = st->res.payload_len;
        memcpy(job->payload, st->res.payload, st->res.payload_len);
        keep(ctx, st,
             (pending){.worker = w, .job = f->id, .attempt = f->attempt}, job,
             sizeof *job + st->res.payload_len);
    }
    free(cs);
    free(got);
}

/* ---- timers ---- */

/* Sets the store's one timer for the earliest run-at or lease deadline. */
static void plan_tick(gr_ctx *ctx, store *st)
{
    int64_t due;
    bool any;
    DB(ctx, st, jq_db_next_due(st->db, &due, &any), "next due");
    for (size_t i = 0; i < st->nflights; i++)
        if (!any || st->flights[i].deadline < due) {
            due = st->flights[i].deadline;
            any = true;
        }
    if (!any || (st->timer_at != 0 && st->timer_at <= due))
        return;
    if (st->timer_at != 0)
        (void)gr_timer_cancel(ctx, st->timer);
    int64_t now = jq_now_ms();
    /* One millisecond late, so "never early" holds against the clock's
     * rounding. */
    uint64_t ms = due > now ? (uint64_t)(due - now) + 1 : 1;
    st->timer_at =
        gr_timer_after(ctx, ms, JQ_TICK, NULL, 0, &st->timer) == GR_OK ? due
                                                                       : 0;
}

static int on_tick(gr_ctx *ctx, store *st)
{
    st->timer_at = 0;
    int64_t now = jq_now_ms();
    begin(ctx, st);
    DB(ctx, st, jq_db_promote(st->db, now), "promote");
    for (size_t i = st->nflights; i-- > 0;) {
        flight *f = &st->flights[i];
        if (f->deadline > now)
            continue;
        /* Its worker is stuck in it, or lost it: kill the process (its
         * other jobs fail when its DOWN comes), and retry this one. */
        int w = f->worker;
        char why[64];
        snprintf(why, sizeof why, "lease expired after %u ms", f->lease_ms);
        flight_fail(ctx, st, i, why, true);
        if (w >= 0 && st->workers[w].up) {
            gr_reason kill = gr_reason_of(GR_EKILL);
            (void)gr_exit(ctx, st->workers[w].standin, &kill);
        }
    }
    plan_tick(ctx, st);
    return GR_CONTINUE;
}

/* ---- the commit ---- */

/* Dispatches what fits, commits, then answers and hands out jobs. */
static void flush(gr_ctx *ctx, store *st)
{
    fill(ctx, st);
    if (!st->in_txn)
        return;
    DB(ctx, st, jq_db_commit(st->db), "commit");
    st->in_txn = false;
    st->commits++;
    for (size_t i = 0; i < st->npend; i++) {
        pending *p = &st->pend[i];
        const char *data = st->bytes.data + p->off;
        if (p->req.corr != 0) {
            (void)gr_reply_to(ctx, &p->req, JQ_ANSWER, data, p->len);
            continue;
        }
        int rc =
            gr_tell(ctx, st->workers[p->worker].standin, JQ_JOB, data, p->len);
        if (rc != GR_OK) {
            /* Never reached its worker, whose process is gone or going:
             * give the job to another, its attempt not counted, and send
             * that one no more (its DOWN fails the jobs it did get). */
            ssize_t f = flight_find(st, p->job, p->attempt);
            if (f >= 0) {
                flight_drop(st, (size_t)f);
                begin(ctx, st);
                DB(ctx, st, jq_db_unreserve(st->db, p->job), "unreserve");
            }
            st->workers[p->worker].up = false;
        }
    }
    st->npend = 0;
    msgpack_sbuffer_clear(&st->bytes);
    plan_tick(ctx, st);
}

/* ---- requests ---- */

static void pack_ok(msgpack_packer *pk, uint64_t rid, uint32_t more)
{
    msgpack_pack_map(pk, 2 + more);
    jq_kv_uint(pk, "rid", rid);
    jq_kv_bool(pk, "ok", true);
}

static int on_push(gr_ctx *ctx, store *st, const gr_msg *m, gr_request req)
{
    const jq_push_req *p = m->data;
    if (m->len < sizeof *p || m->len != sizeof *p + p->payload_len)
        return GR_CONTINUE;
    queue *q = queue_find(st, p->queue, true);
    char why[128];
    if (q == NULL) {
        snprintf(why, sizeof why, "this server keeps at most %d queues",
                 JQ_QUEUES_MAX);
        answer_error(ctx, st, req, p->rid, JQ_ERR_BUSY, why);
        return GR_CONTINUE;
    }
    if (q->unfinished >= st->cfg.max_queued) {
        snprintf(why, sizeof why, "queue %s holds %llu unfinished jobs",
                 q->name, (unsigned long long)q->unfinished);
        answer_error(ctx, st, req, p->rid, JQ_ERR_BUSY, why);
        return GR_CONTINUE;
    }
    uint64_t id;
    bool dup;
    begin(ctx, st);
    DB(ctx, st, jq_db_insert(st->db, p, jq_now_ms(), &id, &dup), "insert");
    if (!dup) {
        q->unfinished++;
        st->pushed++;
    }
    jq_buf b;
    jq_buf_init(&b);
    pack_ok(&b.pk, p->rid, 2);
    jq_kv_uint(&b.pk, "job", id);
    jq_kv_bool(&b.pk, "duplicate", dup);
    answer(ctx, st, req, &b);
    return GR_CONTINUE;
}

/* Packs a job into b, its payload (the value itself, as pushed) too when
 * payload is true. */
static void pack_row(jq_buf *b, const jq_row *r, bool payload)
{
    msgpack_packer *pk = &b->pk;
    msgpack_pack_map(pk, 14 + (payload ? 1 : 0));
    jq_kv_uint(pk, "id", r->id);
    jq_kv_str(pk, "state", jq_state_name(r->state));
    jq_kv_str(pk, "type", r->type);
    jq_kv_str(pk, "queue", r->queue);
    jq_kv_str(pk, "key", r->key);
    jq_kv_uint(pk, "priority", r->priority);
    jq_kv_uint(pk, "attempts", r->attempts);
    jq_kv_uint(pk, "max_attempts", r->max_attempts);
    jq_kv_uint(pk, "lease_ms", r->lease_ms);
    jq_kv_uint(pk, "redeliveries", r->redeliveries);
    jq_kv_int(pk, "run_at", r->run_at);
    jq_kv_int(pk, "created", r->created);
    jq_kv_int(pk, "finished", r->finished);
    jq_kv_str(pk, "error", r->last_error);
    if (payload)
        jq_kv_packed(&b->sb, pk, "payload", r->payload, r->payload_len);
}

/* What "get" collects of a job's errors, and "dead" of dead jobs: the
 * packed items, and how many. */
typedef struct listing {
    jq_buf b;
    uint32_t n;
} listing;

static void add_error(void *arg, uint32_t attempt, int64_t at, const char *e)
{
    listing *l = arg;
    msgpack_pack_map(&l->b.pk, 3);
    jq_kv_uint(&l->b.pk, "attempt", attempt);
    jq_kv_int(&l->b.pk, "at", at);
    jq_kv_str(&l->b.pk, "error", e);
    l->n++;
}

static int on_get(gr_ctx *ctx, store *st, const jq_id_req *r, gr_request req)
{
    bool found;
    listing errs = {.n = 0};
    jq_buf_init(&errs.b);
    DB(ctx, st, jq_db_get(st->db, r->job, &st->row, &found, add_error, &errs),
       "get");
    if (!found) {
        answer_error(ctx, st, req, r->rid, JQ_ERR_NOTFOUND, "no such job");
    } else {
        jq_buf b;
        jq_buf_init(&b);
        pack_ok(&b.pk, r->rid, 2);
        jq_pack_str(&b.pk, "job");
        pack_row(&b, &st->row, true);
        jq_pack_str(&b.pk, "errors");
        msgpack_pack_array(&b.pk, errs.n);
        msgpack_sbuffer_write(&b.sb, errs.b.sb.data, errs.b.sb.size);
        answer(ctx, st, req, &b);
    }
    msgpack_sbuffer_destroy(&errs.b.sb);
    return GR_CONTINUE;
}

/* Answers a cancel or retry: ok, or why the job's state does not allow
 * it. */
static void answer_change(gr_ctx *ctx, store *st, gr_request req, uint64_t rid,
                          uint64_t job, bool changed, int state,
                          const char *verb)
{
    if (changed) {
        jq_buf b;
        jq_buf_init(&b);
        pack_ok(&b.pk, rid, 1);
        jq_kv_uint(&b.pk, "job", job);
        answer(ctx, st, req, &b);
        return;
    }
    char why[96];
    if (state < 0)
        answer_error(ctx, st, req, rid, JQ_ERR_NOTFOUND, "no such job");
    else {
        snprintf(why, sizeof why, "job %llu is %s; %s", (unsigned long long)job,
                 jq_state_name(state), verb);
        answer_error(ctx, st, req, rid, JQ_ERR_STATE, why);
    }
}

static int on_cancel(gr_ctx *ctx, store *st, const jq_id_req *r, gr_request req)
{
    int state = -1;
    bool changed;
    char qname[JQ_NAME_MAX + 1] = "";
    begin(ctx, st);
    DB(ctx, st, jq_db_cancel(st->db, r->job, &changed, &state, qname),
       "cancel");
    queue *q = queue_find(st, qname, false);
    if (changed && q != NULL && q->unfinished > 0)
        q->unfinished--;
    answer_change(ctx, st, req, r->rid, r->job, changed, state,
                  "only scheduled and available jobs can be cancelled");
    return GR_CONTINUE;
}

static int on_retry(gr_ctx *ctx, store *st, const jq_id_req *r, gr_request req)
{
    int state = -1;
    bool changed;
    char qname[JQ_NAME_MAX + 1] = "";
    begin(ctx, st);
    DB(ctx, st,
       jq_db_retry(st->db, r->job, jq_now_ms(), &changed, &state, qname),
       "retry");
    queue *q = queue_find(st, qname, true);
    if (changed && q != NULL)
        q->unfinished++;
    answer_change(ctx, st, req, r->rid, r->job, changed, state,
                  "only dead jobs can be retried");
    return GR_CONTINUE;
}

static int on_stats(gr_ctx *ctx, store *st, const jq_id_req *r, gr_request req)
{
    uint64_t counts[JQ_STATES], redeliveries;
    DB(ctx, st, jq_db_counts(st->db, counts, &redeliveries), "counts");
    uint32_t up = 0;
    for (size_t w = 0; w < st->nworkers; w++)
        up += st->workers[w].up;
    jq_buf b;
    jq_buf_init(&b);
    pack_ok(&b.pk, r->rid, JQ_STATES + 6);
    for (int s = 0; s < JQ_STATES; s++)
        jq_kv_uint(&b.pk, jq_state_name(s), counts[s]);
    jq_kv_uint(&b.pk, "redeliveries", redeliveries);
    jq_kv_uint(&b.pk, "workers", up);
    jq_kv_uint(&b.pk, "pushed", st->pushed);
    jq_kv_uint(&b.pk, "executed", st->executed);
    jq_kv_uint(&b.pk, "commits", st->commits);
    jq_pack_str(&b.pk, "queues");
    msgpack_pack_map(&b.pk, st->nqueues);
    for (size_t i = 0; i < st->nqueues; i++) {
        jq_pack_str(&b.pk, st->queues[i].name);
        msgpack_pack_map(&b.pk, 3);
        jq_kv_uint(&b.pk, "unfinished", st->queues[i].unfinished);
        jq_kv_uint(&b.pk, "running", st->queues[i].running);
        jq_kv_uint(&b.pk, "limit", st->queues[i].limit);
    }
    answer(ctx, st, req, &b);
    return GR_CONTINUE;
}

static void add_dead(void *arg, const jq_row *row)
{
    listing *l = arg;
    pack_row(&l->b, row, false);
    l->n++;
}

static int on_dead(gr_ctx *ctx, store *st, const jq_dead_req *r, gr_request req)
{
    listing l = {.n = 0};
    jq_buf_init(&l.b);
    DB(ctx, st, jq_db_dead(st->db, r->after, r->limit, add_dead, &l), "dead");
    jq_buf b;
    jq_buf_init(&b);
    pack_ok(&b.pk, r->rid, 1);
    jq_pack_str(&b.pk, "jobs");
    msgpack_pack_array(&b.pk, l.n);
    msgpack_sbuffer_write(&b.sb, l.b.sb.data, l.b.sb.size);
    answer(ctx, st, req, &b);
    msgpack_sbuffer_destroy(&l.b.sb);
    return GR_CONTINUE;
}

/* ---- the behaviour ---- */

static int store_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    store *st = state;
    if (len != sizeof st->cfg)
        return GR_EINVAL;
    memcpy(&st->cfg, arg, sizeof st->cfg);
    msgpack_sbuffer_init(&st->bytes);
    st->rng = (uint64_t)jq_now_ms() * 2654435761u | 1;
    char err[256];
    int rc = jq_db_open(st->cfg.db, &st->db, err, sizeof err);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "jobq: cannot open the database %s: %s%s\n", st->cfg.db,
                err, rc == SQLITE_BUSY ? " (is another jobq serving it?)" : "");
        return GR_EFAILED;
    }
    /* Whatever was reserved belonged to workers of a process that is
     * gone: run it again, and count that. */
    uint64_t requeued = 0;
    rc = jq_db_requeue_reserved(st->db, &requeued);
    if (rc == SQLITE_OK)
        rc = jq_db_queues(st->db, queue_loaded, st);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "jobq: cannot use %s: %s%s\n", st->cfg.db,
                jq_db_error(st->db),
                rc == SQLITE_BUSY ? " (is another jobq serving it?)" : "");
        jq_db_close(st->db);
        return GR_EFAILED;
    }
    if (requeued > 0)
        fprintf(stderr, "jobq: %llu reserved jobs are available again\n",
                (unsigned long long)requeued);
    /* Scheduled jobs already due are promoted by the first tick. */
    if (gr_tell(ctx, gr_self(ctx), JQ_TICK, NULL, 0) != GR_OK) {
        jq_db_close(st->db);
        return GR_ENOMEM;
    }
    return GR_OK;
}

static int store_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    store *st = state;
    gr_request req = gr_request_of(m);
    int rc = GR_CONTINUE;
    gr_down d;
    switch (m->type) {
    case JQ_PUSH:
        rc = on_push(ctx, st, m, req);
        break;
    case JQ_GET:
    case JQ_CANCEL:
    case JQ_RETRY:
    case JQ_STATS:
        if (m->len != sizeof(jq_id_req))
            break;
        jq_id_req r;
        memcpy(&r, m->data, sizeof r);
        rc = m->type == JQ_GET      ? on_get(ctx, st, &r, req)
             : m->type == JQ_CANCEL ? on_cancel(ctx, st, &r, req)
             : m->type == JQ_RETRY  ? on_retry(ctx, st, &r, req)
                                    : on_stats(ctx, st, &r, req);
        break;
    case JQ_LIST_DEAD:
        if (m->len == sizeof(jq_dead_req)) {
            jq_dead_req dr;
            memcpy(&dr, m->data, sizeof dr);
            rc = on_dead(ctx, st, &dr, req);
        }
        break;
    case JQ_READY:
        rc = on_ready(ctx, st, m);
        break;
    case JQ_RESULT:
        rc = on_result(ctx, st, m);
        break;
    case JQ_FLUSH:
        st->flush_queued = false;
        flush(ctx, st);
        return GR_CONTINUE;
    case JQ_TICK:
        rc = on_tick(ctx, st);
        break;
    default:
        if (gr_down_read(m, &d) == GR_OK)
            rc = on_down(ctx, st, &d);
        break;
    }
    /* A batch this big commits now: the wait stays bounded. */
    if (st->in_txn && st->batch >= BATCH_MAX)
        flush(ctx, st);
    return rc;
}

static void store_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)ctx;
    (void)why;
    store *st = state;
    /* What the batch holds was not acknowledged; keeping it is allowed
     * (at least once), and a stop should not lose a finished job. */
    if (st->in_txn && jq_db_commit(st->db) != SQLITE_OK)
        fprintf(stderr, "jobq: last commit failed: %s\n", jq_db_error(st->db));
    jq_db_close(st->db);
    free(st->pend);
    free(st->flights);
    msgpack_sbuffer_destroy(&st->bytes);
}

const gr_behaviour jq_store = {
    .name = "store",
    .state_size = sizeof(store),
    .init = store_init,
    .handle = store_handle,
    .terminate = store_terminate,
};
