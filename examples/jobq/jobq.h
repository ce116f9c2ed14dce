/*
 * The job queue server's pieces and the messages between them. Every
 * process of the server runs this one program, so the messages between
 * actors are plain C structs; what crosses the client socket is msgpack
 * (wire.c, README.md).
 *
 *   root process ("jobq serve")                worker nodes (processes)
 *   top (rest_for_one)                         worker-1 .. worker-N
 *   |-- store     blocking pool: SQLite,       `-- "worker": runs jobs
 *   |             group commit, dispatch,
 *   |             leases, retries
 *   |-- workers   one_for_one with backoff: one node child per worker
 *   |-- conns     simple_one_for_one: one actor per client connection
 *   `-- listeners TCP and Unix: accept, hand each connection to a conn
 *
 * The store is the one place that decides: it owns the database and the
 * table of workers. A client's request reaches it as an ask from the
 * client's conn; a push is answered only once its transaction is durable.
 * Work goes to a worker only once its reservation is durable too, so a
 * crash of any process is followed by a redelivery that is counted.
 */
#ifndef JOBQ_H
#define JOBQ_H

#include <grove/grove.h>

#include <stdbool.h>
#include <stdint.h>

/* Limits of the protocol and of a job. */
#define JQ_NAME_MAX      32           /* Bytes in a job type or queue name. */
#define JQ_KEY_MAX       64           /* Bytes in an idempotency key. */
#define JQ_PAYLOAD_MAX   (64 * 1024)  /* Bytes of payload. */
#define JQ_ERROR_MAX     200          /* Bytes of one recorded error. */
#define JQ_FRAME_MAX     (128 * 1024) /* Bytes in one request frame. */
#define JQ_QUEUES_MAX    64           /* Distinct queues the server keeps. */
#define JQ_WORKERS_MAX   64           /* Worker processes. */
#define JQ_PRIORITY_MAX  9            /* 0 runs first, 9 last. */
#define JQ_ATTEMPTS_MAX  100
#define JQ_DEAD_LIST_MAX 1000 /* Jobs in one "dead" answer. */

/* Defaults of a pushed job. */
#define JQ_DEFAULT_PRIORITY 5
#define JQ_DEFAULT_ATTEMPTS 10
#define JQ_DEFAULT_LEASE_MS 30000
#define JQ_DEFAULT_QUEUE    "default"

/* Registered names. */
#define JQ_STORE       "jobq"      /* The store, in the root process. */
#define JQ_STORE_AT    "jobq@root" /* How a worker node reaches it. */
#define JQ_CONNS       "conns"     /* The connections' supervisor. */
#define JQ_WORKERS     "workers"   /* The workers' supervisor. */
#define JQ_WORKER_ROOT "worker"    /* The root behaviour of a worker node. */

/* A job's states, as stored (the numbers are in the database). */
typedef enum jq_state {
    JQ_SCHEDULED = 0, /* Waits for its run-at time (new, or a retry). */
    JQ_AVAILABLE = 1, /* Runnable now. */
    JQ_RESERVED = 2,  /* Handed to a worker, under a lease. */
    JQ_DONE = 3,
    JQ_DEAD = 4, /* Failed max_attempts times; can be retried by hand. */
    JQ_CANCELLED = 5,
} jq_state;
#define JQ_STATES 6

/* Returns the state's name ("scheduled", ...), or "?" for another value. */
const char *jq_state_name(int state);

/* Message types between the server's actors. */
enum {
    /* conn -> store: asks, answered with JQ_ANSWER */
    JQ_PUSH = 1,  /* jq_push_req */
    JQ_GET,       /* jq_id_req */
    JQ_CANCEL,    /* jq_id_req */
    JQ_RETRY,     /* jq_id_req */
    JQ_STATS,     /* jq_id_req (job unused) */
    JQ_LIST_DEAD, /* jq_dead_req */
    JQ_ANSWER,    /* store -> conn: the reply frame's msgpack bytes */
    /* worker <-> store */
    JQ_READY,  /* jq_ready: a worker process is up */
    JQ_JOB,    /* jq_job: run this */
    JQ_RESULT, /* jq_result: how it went */
    /* the store's own */
    JQ_FLUSH, /* commit what the batch holds, then answer and dispatch */
    JQ_TICK,  /* timer: run-at times and leases are due */
    /* a worker's own */
    JQ_SLEPT, /* timer (jq_result): a sleep job is over */
};

/* A push, decoded and checked by the conn. */
typedef struct jq_push_req {
    uint64_t rid; /* The client's request id, echoed. */
    char type[JQ_NAME_MAX + 1];
    char queue[JQ_NAME_MAX + 1];
    char key[JQ_KEY_MAX + 1]; /* "" for none. */
    uint32_t priority;
    uint32_t max_attempts;
    uint32_t lease_ms;
    int64_t run_at_ms; /* Unix ms; 0 for now. */
    uint32_t payload_len;
    uint8_t payload[]; /* payload_len bytes. */
} jq_push_req;

/* get, cancel, retry and stats. */
typedef struct jq_id_req {
    uint64_t rid;
    uint64_t job;
} jq_id_req;

typedef struct jq_dead_req {
    uint64_t rid;
    uint64_t after; /* List jobs with a larger id. */
    uint32_t limit;
} jq_dead_req;

typedef struct jq_ready {
    char node[GR_NAME_MAX + 1];
    uint32_t capacity; /* Jobs it may hold at once. */
} jq_ready;

typedef struct jq_job {
    uint64_t id;
    uint32_t attempt; /* 1 for the first. */
    char type[JQ_NAME_MAX + 1];
    uint32_t payload_len;
    uint8_t payload[];
} jq_job;

typedef struct jq_result {
    uint64_t id;
    uint32_t attempt;
    int32_t ok;                   /* Nonzero: done. */
    char error[JQ_ERROR_MAX + 1]; /* Why it failed. */
} jq_result;

/* The store's settings (its init arg). */
typedef struct jq_store_arg {
    char db[512];           /* SQLite file. */
    uint32_t max_queued;    /* Unfinished jobs one queue may hold. */
    uint32_t retry_base_ms; /* First retry's delay; doubles per attempt. */
    uint32_t nlimits;
    struct {
        char queue[JQ_NAME_MAX + 1];
        uint32_t concurrency; /* Jobs of it running at once. */
    } limits[16];
} jq_store_arg;

/* A worker node's settings (its root's init arg, from the parent). */
typedef struct jq_worker_arg {
    char output[512];  /* The echo jobs' append-only output file. */
    uint32_t capacity; /* Jobs it may hold at once. */
} jq_worker_arg;

/* The listener's settings (its init arg). */
typedef struct jq_listen_arg {
    char addr[256];
} jq_listen_arg;

/* Behaviours, one per file. */
extern const gr_behaviour jq_store;    /* store.c */
extern const gr_behaviour jq_worker;   /* worker.c */
extern const gr_behaviour jq_conn;     /* conn.c */
extern const gr_behaviour jq_listener; /* listener.c */

/* Milliseconds since the Unix epoch. */
int64_t jq_now_ms(void);

#endif
