/*
 * A small blocking client library for the job queue (the protocol is in
 * README.md). One jobq_client is one connection; use it from one thread.
 * Every call waits at most the timeout given to jobq_connect.
 *
 *   jobq_client *c;
 *   if (jobq_connect("127.0.0.1:7878", 5000, &c) == JOBQ_OK) {
 *       uint64_t id;
 *       jobq_push(c, "echo", payload, payload_len, NULL, &id, NULL);
 *       jobq_close(c);
 *   }
 *
 * Payloads are one msgpack value, packed by the caller (msgpack-c's
 * packer); NULL and 0 send nil.
 *
 * Link: libjobq_client.a, then Grove (libgrove) and msgpack-c
 * (-lmsgpackc), which Grove's own link line brings (-lev -lpthread).
 */
#ifndef JOBQ_CLIENT_H
#define JOBQ_CLIENT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jobq_client jobq_client;

/* What the calls return. */
enum {
    JOBQ_OK = 0,
    JOBQ_EREFUSED = -1,  /* The server answered with an error; see
                            jobq_error_code() and jobq_error(). */
    JOBQ_EIO = -2,       /* The connection failed or closed. */
    JOBQ_ETIMEDOUT = -3, /* No answer within the timeout; the connection
                            is closed (an answer may still come late). */
    JOBQ_EPROTO = -4,    /* The server's bytes made no sense. */
    JOBQ_EINVAL = -5,    /* A bad argument (an address, a NULL type, a
                            payload that is not one msgpack value), or a
                            call out of turn (see jobq_push_send); see
                            jobq_error(). */
};

/* Connects to addr ("host:port", or "unix:/path"); timeout_ms bounds the
 * connect and every later call. Returns JOBQ_OK and stores the client, or
 * JOBQ_EINVAL / JOBQ_EIO (*out is then NULL; jobq_connect_error() says
 * why). */
int jobq_connect(const char *addr, int timeout_ms, jobq_client **out);

/* Why the last jobq_connect of this thread failed. */
const char *jobq_connect_error(void);

/* Closes the connection and frees c (NULL is ignored). */
void jobq_close(jobq_client *c);

/* After JOBQ_EREFUSED: the server's error code ("busy", "badrequest",
 * "notfound", "state", "unavailable"); after another failure, a word for
 * it ("io", "timeout", "proto", "usage"); "" after a call that
 * succeeded. c may be NULL. */
const char *jobq_error_code(const jobq_client *c);

/* A sentence saying why the last call failed ("" after a success). c may
 * be NULL. */
const char *jobq_error(const jobq_client *c);

/* A push's settings; a zeroed struct (or NULL) gives the defaults. */
typedef struct jobq_push_opts {
    const char *queue;     /* NULL: "default". */
    int priority;          /* 0 runs first ... 9 last; used only when */
    bool priority_set;     /* this is true; else 5. */
    int64_t run_at_ms;     /* Unix ms to run at; 0: now. */
    int64_t delay_ms;      /* Or: run this long from now. */
    uint32_t max_attempts; /* 0: 10. */
    uint32_t lease_ms;     /* 0: 30000. */
    const char *key;       /* Idempotency key; NULL: none. */
} jobq_push_opts;

/* Pushes a job and waits until it is durable. Stores its id in *id and
 * whether the key named an existing job in *dup (either may be NULL).
 * Set run_at_ms or delay_ms, not both. */
int jobq_push(jobq_client *c, const char *type, const void *payload, size_t len,
              const jobq_push_opts *opts, uint64_t *id, bool *dup);

/* Sends a push without waiting (pipelining); collect each answer with
 * jobq_push_wait, in the order the pushes were sent. While answers are
 * outstanding, every other call on c but jobq_push_send returns
 * JOBQ_EINVAL (it would read a push's answer). */
int jobq_push_send(jobq_client *c, const char *type, const void *payload,
                   size_t len, const jobq_push_opts *opts);

/* Waits for the answer to the oldest push sent with jobq_push_send (as
 * jobq_push's id and dup); JOBQ_EINVAL at once when none is outstanding.
 * A push the server refused gives JOBQ_EREFUSED, and the next call waits
 * for the next push. */
int jobq_push_wait(jobq_client *c, uint64_t *id, bool *dup);

/* A job as get and dead show it. */
typedef struct jobq_job {
    uint64_t id;
    char state[16]; /* "scheduled", "available", "reserved", "done",
                       "dead", "cancelled". */
    char type[33], queue[33], key[65];
    uint32_t priority, attempts, max_attempts, redeliveries;
    int64_t run_at, created, finished; /* Unix ms. */
    char error[201];                   /* The last error; "" for none. */
    uint32_t nerrors;                  /* Errors recorded (get only). */
} jobq_job;

/* Reads job id. */
int jobq_get(jobq_client *c, uint64_t id, jobq_job *out);

/* Cancels a scheduled or available job. */
int jobq_cancel(jobq_client *c, uint64_t id);

/* Makes a dead job available again, with max_attempts more attempts. */
int jobq_retry(jobq_client *c, uint64_t id);

/* The server's counts. */
typedef struct jobq_stats {
    uint64_t scheduled, available, reserved, done, dead, cancelled;
    uint64_t redeliveries; /* Deliveries after a worker died or a lease
                              expired, over all jobs ever. */
    uint64_t workers;      /* Worker processes up. */
    uint64_t pushed, executed, commits; /* Since the server started. */
} jobq_stats;

int jobq_stats_get(jobq_client *c, jobq_stats *out);

/* Lists up to cap dead jobs with ids above after; *n gets how many. */
int jobq_dead(jobq_client *c, uint64_t after, jobq_job *out, size_t cap,
              size_t *n);

/* Sends any request map (packed by fill, which adds its fields after
 * "op" and "rid"; fill may be NULL) and waits for its answer, unpacked into
 * *reply (release it with msgpack_unpacked_destroy). For the command-line
 * client, which prints whatever comes. */
int jobq_request(jobq_client *c, const char *op, uint32_t nfields,
                 void (*fill)(msgpack_packer *pk, void *arg), void *arg,
                 msgpack_unpacked *reply);

#endif
