/*
 * The job store's SQLite layer: the schema, and one function per thing
 * the store does to it. No actors here; every call blocks (the store runs
 * on the blocking pool). Functions return SQLITE_OK or the SQLite error
 * code, whose text jq_db_error() gives; the store treats an unexpected
 * one as a crash, and its supervisor opens the database again.
 */
#ifndef JOBQ_DB_H
#define JOBQ_DB_H

#include "jobq.h"

#include <sqlite3.h>
#include <stddef.h>

typedef struct jq_db jq_db;

/* One job as "get" and "dead" show it ("dead" leaves payload empty). */
typedef struct jq_row {
    uint64_t id;
    int state;
    char type[JQ_NAME_MAX + 1];
    char queue[JQ_NAME_MAX + 1];
    char key[JQ_KEY_MAX + 1];
    uint32_t priority, attempts, max_attempts, lease_ms, redeliveries;
    int64_t run_at, created, finished; /* Unix ms; finished 0 if not. */
    char worker[GR_NAME_MAX + 1];      /* Reserved: where it runs. */
    char last_error[JQ_ERROR_MAX + 1]; /* "" for none. */
    uint32_t payload_len;
    uint8_t payload[JQ_PAYLOAD_MAX];
} jq_row;

/* A runnable job, as the dispatcher compares them across queues. */
typedef struct jq_cand {
    uint64_t id;
    uint32_t priority;
    int64_t run_at;
} jq_cand;

/* What a reservation hands the worker. */
typedef struct jq_reserved {
    uint32_t attempt, lease_ms;
    char type[JQ_NAME_MAX + 1];
    char queue[JQ_NAME_MAX + 1];
    uint32_t payload_len;
    uint8_t payload[JQ_PAYLOAD_MAX];
} jq_reserved;

/* Opens (creating if need be) the database at path in WAL mode with
 * synchronous=FULL, so a commit is durable when it returns. On failure
 * writes why into err. */
int jq_db_open(const char *path, jq_db **out, char *err, size_t errlen);
void jq_db_close(jq_db *db);
const char *jq_db_error(jq_db *db);

int jq_db_begin(jq_db *db);
int jq_db_commit(jq_db *db);

/* Puts every reserved job back to available, counting a redelivery for
 * each (the process that reserved them is gone); *n gets how many. */
int jq_db_requeue_reserved(jq_db *db, uint64_t *n);

/* Inserts a job. A key already used stores nothing: *id is that job's and
 * *dup true. */
int jq_db_insert(jq_db *db, const jq_push_req *p, int64_t now, uint64_t *id,
                 bool *dup);

/* Makes scheduled jobs whose time has come available. */
int jq_db_promote(jq_db *db, int64_t now);

/* Stores in *at the earliest run-at of a scheduled job; false if none. */
int jq_db_next_due(jq_db *db, int64_t *at, bool *any);

/* Up to cap runnable jobs of queue, in run order, into out; *n how many. */
int jq_db_runnable(jq_db *db, const char *queue, jq_cand *out, size_t cap,
                   size_t *n);

/* Reserves available job id for worker, counting an attempt;
 * SQLITE_NOTFOUND when it is not available. */
int jq_db_reserve(jq_db *db, uint64_t id, const char *worker, jq_reserved *out);

/* Marks reserved job id done. */
int jq_db_done(jq_db *db, uint64_t id, int64_t now);

/* Puts reserved job id back to available, its attempt not counted (it
 * never reached a worker). */
int jq_db_unreserve(jq_db *db, uint64_t id);

/* Fails reserved job id's attempt with error: dead when it has had
 * max_attempts, else scheduled again at retry_at. redelivery counts one
 * (its worker died or its lease expired). *state gets the new state. */
int jq_db_fail(jq_db *db, uint64_t id, uint32_t attempt, int64_t now,
               const char *error, bool redelivery, int64_t retry_at,
               int *state);

/* Cancels job id if it is scheduled or available (*changed true, *queue
 * its queue); else *state gets its state (-1: no such job) and nothing
 * changes. */
int jq_db_cancel(jq_db *db, uint64_t id, bool *changed, int *state,
                 char *queue);

/* Makes dead job id available again with max_attempts more attempts;
 * else as jq_db_cancel. */
int jq_db_retry(jq_db *db, uint64_t id, int64_t now, bool *changed, int *state,
                char *queue);

/* Reads job id into *row; *found false if there is none. fn (may be
 * NULL) is called for each recorded error, oldest first. */
int jq_db_get(jq_db *db, uint64_t id, jq_row *row, bool *found,
              void (*fn)(void *arg, uint32_t attempt, int64_t at,
                         const char *error),
              void *arg);

/* Calls fn for up to limit dead jobs with ids above after, in id order. */
int jq_db_dead(jq_db *db, uint64_t after, uint32_t limit,
               void (*fn)(void *arg, const jq_row *row), void *arg);

/* Jobs per state, and redeliveries over all jobs. */
int jq_db_counts(jq_db *db, uint64_t counts[JQ_STATES], uint64_t *redeliveries);

/* Calls fn once per queue with its unfinished (scheduled, available or
 * reserved) jobs. */
int jq_db_queues(jq_db *db,
                 void (*fn)(void *arg, const char *queue, uint64_t unfinished),
                 void *arg);

#endif
