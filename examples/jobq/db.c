/*
 * The job store's SQLite layer (see db.h). Every statement is prepared
 * once, when the database opens.
 */
#include "db.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS jobs("
    " id INTEGER PRIMARY KEY AUTOINCREMENT," /* never reused */
    " ukey TEXT UNIQUE,"
    " type TEXT NOT NULL, queue TEXT NOT NULL, payload BLOB NOT NULL,"
    " priority INTEGER NOT NULL, run_at INTEGER NOT NULL,"
    " max_attempts INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " lease_ms INTEGER NOT NULL, state INTEGER NOT NULL, worker TEXT,"
    " redeliveries INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL, finished INTEGER);"
    "CREATE INDEX IF NOT EXISTS jobs_runnable"
    " ON jobs(queue, state, priority, run_at, id);"
    "CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, run_at);"
    "CREATE TABLE IF NOT EXISTS errors("
    " job INTEGER NOT NULL, attempt INTEGER NOT NULL, at INTEGER NOT NULL,"
    " error TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS errors_by_job ON errors(job);";

enum {
    S_BEGIN,
    S_COMMIT,
    S_REQUEUE,
    S_INSERT,
    S_BY_KEY,
    S_PROMOTE,
    S_NEXT_DUE,
    S_RUNNABLE,
    S_RESERVE,
    S_DONE,
    S_UNRESERVE,
    S_FAIL,
    S_ERROR,
    S_CANCEL,
    S_RETRY,
    S_STATE,
    S_GET,
    S_ERRORS,
    S_DEAD,
    S_COUNTS,
    S_REDELIVERIES,
    S_QUEUES,
    S_COUNT
};

static const char *const sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_REQUEUE] = "UPDATE jobs SET state = 1, worker = NULL,"
                  " redeliveries = redeliveries + 1 WHERE state = 2",
    [S_INSERT] = "INSERT INTO jobs(ukey, type, queue, payload, priority,"
                 " run_at, max_attempts, lease_ms, state, created)"
                 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                 " ON CONFLICT(ukey) DO NOTHING",
    [S_BY_KEY] = "SELECT id FROM jobs WHERE ukey = ?1",
    [S_PROMOTE] = "UPDATE jobs SET state = 1 WHERE state = 0 AND run_at <= ?1",
    [S_NEXT_DUE] = "SELECT MIN(run_at) FROM jobs WHERE state = 0",
    [S_RUNNABLE] = "SELECT id, priority, run_at FROM jobs"
                   " WHERE queue = ?1 AND state = 1"
                   " ORDER BY priority, run_at, id LIMIT ?2",
    [S_RESERVE] = "UPDATE jobs SET state = 2, worker = ?2,"
                  " attempts = attempts + 1 WHERE id = ?1 AND state = 1"
                  " RETURNING attempts, lease_ms, type, queue, payload",
    [S_DONE] = "UPDATE jobs SET state = 3, worker = NULL, finished = ?2"
               " WHERE id = ?1 AND state = 2",
    [S_UNRESERVE] = "UPDATE jobs SET state = 1, worker = NULL,"
                    " attempts = attempts - 1 WHERE id = ?1 AND state = 2",
    [S_FAIL] = "UPDATE jobs SET worker = NULL,"
               " redeliveries = redeliveries + ?3,"
               " state = CASE WHEN attempts >= max_attempts THEN 4 ELSE 0 END,"
               " run_at = CASE WHEN attempts >= max_attempts THEN run_at"
               "   ELSE ?4 END,"
               " finished = CASE WHEN attempts >= max_attempts THEN ?2 END"
               " WHERE id = ?1 AND state = 2 RETURNING state",
    [S_ERROR] = "INSERT INTO errors(job, attempt, at, error)"
                " VALUES(?1, ?2, ?3, ?4)",
    [S_CANCEL] = "UPDATE jobs SET state = 5, finished = ?2"
                 " WHERE id = ?1 AND state IN (0, 1) RETURNING queue",
    [S_RETRY] = "UPDATE jobs SET state = 1, run_at = ?2, finished = NULL,"
                " max_attempts = attempts + max_attempts"
                " WHERE id = ?1 AND state = 4 RETURNING queue",
    [S_STATE] = "SELECT state, queue FROM jobs WHERE id = ?1",
    [S_GET] = "SELECT id, state, type, queue, ifnull(ukey, ''), priority,"
              " attempts, max_attempts, lease_ms, redeliveries, run_at,"
              " created, ifnull(finished, 0), ifnull(worker, ''), payload,"
              " ifnull((SELECT error FROM errors WHERE job = jobs.id"
              "  ORDER BY rowid DESC LIMIT 1), '')"
              " FROM jobs",
    [S_ERRORS] = "SELECT attempt, at, error FROM errors WHERE job = ?1"
                 " ORDER BY rowid",
    [S_DEAD] = NULL, /* S_GET with a condition; built in jq_db_open. */
    [S_COUNTS] = "SELECT state, COUNT(*) FROM jobs GROUP BY state",
    [S_REDELIVERIES] = "SELECT ifnull(SUM(redeliveries), 0) FROM jobs",
    [S_QUEUES] = "SELECT queue, COUNT(*) FROM jobs WHERE state IN (0, 1, 2)"
                 " GROUP BY queue",
};

struct jq_db {
    sqlite3 *h;
    sqlite3_stmt *st[S_COUNT];
    sqlite3_stmt *get; /* S_GET for one id. */
};

const char *jq_db_error(jq_db *db)
{
    return sqlite3_errmsg(db->h);
}

void jq_db_close(jq_db *db)
{
    if (db == NULL)
        return;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(db->st[i]);
    sqlite3_finalize(db->get);
    sqlite3_close(db->h);
    free(db);
}

int jq_db_open(const char *path, jq_db **out, char *err, size_t errlen)
{
    jq_db *db = calloc(1, sizeof *db);
    if (db == NULL) {
        snprintf(err, errlen, "out of memory");
        return SQLITE_NOMEM;
    }
    int rc = sqlite3_open_v2(
        path, &db->h,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    char get_one[1024], dead[1024];
    snprintf(get_one, sizeof get_one, "%s WHERE id = ?1", sql[S_GET]);
    snprintf(dead, sizeof dead,
             "%s WHERE state = 4 AND id > ?1 ORDER BY id LIMIT ?2", sql[S_GET]);
    /* WAL: an append-only log; synchronous=FULL: a commit is on disk
     * (fsync of the log) when it returns. locking_mode=EXCLUSIVE: the
     * first write takes the file for good, so a second server on the same
     * file fails at its start instead of requeueing this one's jobs. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db->h,
                          "PRAGMA locking_mode=EXCLUSIVE;"
                          "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                          "PRAGMA busy_timeout=1000;",
                          NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db->h, schema, NULL, NULL, NULL);
    for (int i = 0; rc == SQLITE_OK && i < S_COUNT; i++)
        rc = sqlite3_prepare_v2(db->h, i == S_DEAD ? dead : sql[i], -1,
                                &db->st[i], NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db->h, get_one, -1, &db->get, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s",
                 db->h != NULL ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
        jq_db_close(db);
        return rc;
    }
    *out = db;
    return SQLITE_OK;
}

/* Resets s for its next use and returns rc, SQLITE_DONE read as OK. */
static int finish(sqlite3_stmt *s, int rc)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Runs a statement that returns no rows. */
static int run(sqlite3_stmt *s)
{
    return finish(s, sqlite3_step(s));
}

/* Copies column c of s, a blob of at most JQ_PAYLOAD_MAX bytes, into buf. */
static void blob(sqlite3_stmt *s, int c, uint8_t *buf, uint32_t *len)
{
    int n = sqlite3_column_bytes(s, c);
    const void *b = sqlite3_column_blob(s, c);
    *len = b != NULL && n > 0 && n <= JQ_PAYLOAD_MAX ? (uint32_t)n : 0;
    if (*len > 0)
        memcpy(buf, b, *len);
}

/* Copies column c of s as text into buf of size bytes. */
static void text(sqlite3_stmt *s, int c, char *buf, size_t size)
{
    const unsigned char *t = sqlite3_column_text(s, c);
    snprintf(buf, size, "%s", t != NULL ? (const char *)t : "");
}

int jq_db_begin(jq_db *db)
{
    return run(db->st[S_BEGIN]);
}

int jq_db_commit(jq_db *db)
{
    return run(db->st[S_COMMIT]);
}

int jq_db_requeue_reserved(jq_db *db, uint64_t *n)
{
    int rc = run(db->st[S_REQUEUE]);
    *n = rc == SQLITE_OK ? (uint64_t)sqlite3_changes(db->h) : 0;
    return rc;
}

int jq_db_insert(jq_db *db, const jq_push_req *p, int64_t now, uint64_t *id,
                 bool *dup)
{
    sqlite3_stmt *s = db->st[S_INSERT];
    if (p->key[0] != '\0')
        sqlite3_bind_text(s, 1, p->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, p->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, p->queue, -1, SQLITE_STATIC);
    /* A zero-length blob, not NULL, for an empty payload. */
    sqlite3_bind_blob(s, 4, p->payload_len ? (const void *)p->payload : "",
                      (int)p->payload_len, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, (int)p->priority);
    int64_t at = p->run_at_ms > now ? p->run_at_ms : now;
    sqlite3_bind_int64(s, 6, at);
    sqlite3_bind_int(s, 7, (int)p->max_attempts);
    sqlite3_bind_int(s, 8, (int)p->lease_ms);
    sqlite3_bind_int(s, 9, at > now ? JQ_SCHEDULED : JQ_AVAILABLE);
    sqlite3_bind_int64(s, 10, now);
    int rc = run(s);
    if (rc != SQLITE_OK)
        return rc;
    *dup = sqlite3_changes(db->h) == 0;
    if (!*dup) {
        *id = (uint64_t)sqlite3_last_insert_rowid(db->h);
        return SQLITE_OK;
    }
    s = db->st[S_BY_KEY];
    sqlite3_bind_text(s, 1, p->key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    *id = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    return finish(s, rc);
}

int jq_db_promote(jq_db *db, int64_t now)
{
    sqlite3_bind_int64(db->st[S_PROMOTE], 1, now);
    return run(db->st[S_PROMOTE]);
}

int jq_db_next_due(jq_db *db, int64_t *at, bool *any)
{
    sqlite3_stmt *s = db->st[S_NEXT_DUE];
    int rc = sqlite3_step(s);
    *any = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
    *at = *any ? sqlite3_column_int64(s, 0) : 0;
    return finish(s, rc);
}

int jq_db_runnable(jq_db *db, const char *queue, jq_cand *out, size_t cap,
                   size_t *n)
{
    sqlite3_stmt *s = db->st[S_RUNNABLE];
    sqlite3_bind_text(s, 1, queue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)cap);
    int rc;
    *n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < cap) {
        out[*n].id = (uint64_t)sqlite3_column_int64(s, 0);
        out[*n].priority = (uint32_t)sqlite3_column_int(s, 1);
        out[*n].run_at = sqlite3_column_int64(s, 2);
        (*n)++;
    }
    return finish(s, rc);
}

int jq_db_reserve(jq_db *db, uint64_t id, const char *worker, jq_reserved *out)
{
    sqlite3_stmt *s = db->st[S_RESERVE];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    sqlite3_bind_text(s, 2, worker, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW)
        return finish(s, rc == SQLITE_DONE ? SQLITE_NOTFOUND : rc);
    out->attempt = (uint32_t)sqlite3_column_int(s, 0);
    out->lease_ms = (uint32_t)sqlite3_column_int(s, 1);
    text(s, 2, out->type, sizeof out->type);
    text(s, 3, out->queue, sizeof out->queue);
    blob(s, 4, out->payload, &out->payload_len);
    return finish(s, sqlite3_step(s));
}

int jq_db_done(jq_db *db, uint64_t id, int64_t now)
{
    sqlite3_stmt *s = db->st[S_DONE];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    sqlite3_bind_int64(s, 2, now);
    return run(s);
}

int jq_db_unreserve(jq_db *db, uint64_t id)
{
    sqlite3_stmt *s = db->st[S_UNRESERVE];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    return run(s);
}

int jq_db_fail(jq_db *db, uint64_t id, uint32_t attempt, int64_t now,
               const char *error, bool redelivery, int64_t retry_at, int *state)
{
    sqlite3_stmt *s = db->st[S_ERROR];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    sqlite3_bind_int(s, 2, (int)attempt);
    sqlite3_bind_int64(s, 3, now);
    sqlite3_bind_text(s, 4, error, -1, SQLITE_STATIC);
    int rc = run(s);
    if (rc != SQLITE_OK)
        return rc;
    s = db->st[S_FAIL];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_int(s, 3, redelivery ? 1 : 0);
    sqlite3_bind_int64(s, 4, retry_at);
    rc = sqlite3_step(s);
    *state = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    return finish(s, rc);
}

/* Runs a RETURNING queue statement for id; when it changed nothing, reads
 * the job's state instead (-1: no such job). */
static int change_state(jq_db *db, sqlite3_stmt *s, uint64_t id, bool *changed,
                        int *state, char *queue)
{
    int rc = sqlite3_step(s);
    *changed = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) {
        text(s, 0, queue, JQ_NAME_MAX + 1);
        return finish(s, sqlite3_step(s));
    }
    if ((rc = finish(s, rc)) != SQLITE_OK)
        return rc;
    s = db->st[S_STATE];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    rc = sqlite3_step(s);
    *state = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    if (rc == SQLITE_ROW)
        text(s, 1, queue, JQ_NAME_MAX + 1);
    return finish(s, rc);
}

int jq_db_cancel(jq_db *db, uint64_t id, bool *changed, int *state, char *queue)
{
    sqlite3_stmt *s = db->st[S_CANCEL];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    sqlite3_bind_int64(s, 2, jq_now_ms());
    return change_state(db, s, id, changed, state, queue);
}

int jq_db_retry(jq_db *db, uint64_t id, int64_t now, bool *changed, int *state,
                char *queue)
{
    sqlite3_stmt *s = db->st[S_RETRY];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    sqlite3_bind_int64(s, 2, now);
    return change_state(db, s, id, changed, state, queue);
}

/* Reads the current row of an S_GET-shaped statement (the payload too
 * when with_payload). */
static void read_row(sqlite3_stmt *s, jq_row *r, bool with_payload)
{
    memset(r, 0, offsetof(jq_row, payload));
    r->id = (uint64_t)sqlite3_column_int64(s, 0);
    r->state = sqlite3_column_int(s, 1);
    text(s, 2, r->type, sizeof r->type);
    text(s, 3, r->queue, sizeof r->queue);
    text(s, 4, r->key, sizeof r->key);
    r->priority = (uint32_t)sqlite3_column_int(s, 5);
    r->attempts = (uint32_t)sqlite3_column_int(s, 6);
    r->max_attempts = (uint32_t)sqlite3_column_int(s, 7);
    r->lease_ms = (uint32_t)sqlite3_column_int(s, 8);
    r->redeliveries = (uint32_t)sqlite3_column_int(s, 9);
    r->run_at = sqlite3_column_int64(s, 10);
    r->created = sqlite3_column_int64(s, 11);
    r->finished = sqlite3_column_int64(s, 12);
    text(s, 13, r->worker, sizeof r->worker);
    text(s, 15, r->last_error, sizeof r->last_error);
    if (with_payload)
        blob(s, 14, r->payload, &r->payload_len);
}

int jq_db_get(jq_db *db, uint64_t id, jq_row *row, bool *found,
              void (*fn)(void *arg, uint32_t attempt, int64_t at,
                         const char *error),
              void *arg)
{
    sqlite3_stmt *s = db->get;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW;
    if (!*found)
        return finish(s, rc);
    read_row(s, row, true);
    if ((rc = finish(s, rc)) != SQLITE_OK || fn == NULL)
        return rc;
    sqlite3_stmt *e = db->st[S_ERRORS];
    sqlite3_bind_int64(e, 1, (sqlite3_int64)id);
    while ((rc = sqlite3_step(e)) == SQLITE_ROW)
        fn(arg, (uint32_t)sqlite3_column_int(e, 0), sqlite3_column_int64(e, 1),
           (const char *)sqlite3_column_text(e, 2));
    return finish(e, rc);
}

int jq_db_dead(jq_db *db, uint64_t after, uint32_t limit,
               void (*fn)(void *arg, const jq_row *row), void *arg)
{
    sqlite3_stmt *s = db->st[S_DEAD];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)after);
    sqlite3_bind_int(s, 2, (int)limit);
    int rc;
    jq_row *r = malloc(sizeof *r);
    if (r == NULL)
        return finish(s, SQLITE_NOMEM);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        read_row(s, r, false);
        fn(arg, r);
    }
    free(r);
    return finish(s, rc);
}

int jq_db_counts(jq_db *db, uint64_t counts[JQ_STATES], uint64_t *redeliveries)
{
    memset(counts, 0, sizeof(uint64_t) * JQ_STATES);
    sqlite3_stmt *s = db->st[S_COUNTS];
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int st = sqlite3_column_int(s, 0);
        if (st >= 0 && st < JQ_STATES)
            counts[st] = (uint64_t)sqlite3_column_int64(s, 1);
    }
    if ((rc = finish(s, rc)) != SQLITE_OK)
        return rc;
    s = db->st[S_REDELIVERIES];
    rc = sqlite3_step(s);
    *redeliveries = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    return finish(s, rc);
}

int jq_db_queues(jq_db *db,
                 void (*fn)(void *arg, const char *queue, uint64_t unfinished),
                 void *arg)
{
    sqlite3_stmt *s = db->st[S_QUEUES];
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(arg, (const char *)sqlite3_column_text(s, 0),
           (uint64_t)sqlite3_column_int64(s, 1));
    return finish(s, rc);
}
