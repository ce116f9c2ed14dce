/*
 * The control endpoint's parts, shared by the files of observe/ (see
 * docs/observer.md):
 *
 *   control.c   start, stop, the control thread's loop, the event tap;
 *   endpoint.c  the per-user directory, the Unix socket, the metrics port;
 *   clients.c   requests from the grove tool, followers, tracing;
 *   answers.c   what each request answers (stats, metrics, tree, actors);
 *   sampler.c   handler time, busy threads and slow handlers, by sampling;
 *   nodes.c     the same requests across the node processes of a system.
 *
 * The root process listens on the socket. A node process has no socket:
 * its agent actor (registered as GR__CONTROL_AGENT) takes the requests its
 * parent's control thread sends down the node link, and its own control
 * thread, started by the first of them, answers them.
 */
#ifndef GROVE_OBSERVE_CONTROL_H
#define GROVE_OBSERVE_CONTROL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include <grove/event.h>
#include <grove/supervisor.h>

#include "actor/runtime.h"
#include "observe/paths.h"

/* The protocol's version, in the greeting. */
#define GR__OBS_PROTOCOL 1
/* Events kept for followers that lag. */
#define GR__OBS_RING 1024
/* Clients served at once. */
#define GR__OBS_CLIENTS 16
/* Supervisors started with gr_supervisor_start that the tree starts at. */
#define GR__OBS_ROOTS 16
/* Node processes one process asks about (its own node children). */
#define GR__OBS_NODES 64
/* Children one supervisor lists in the tree. */
#define GR__OBS_CHILDREN 256
/* How often the sampler looks at what each runtime thread runs. */
#define GR__OBS_SAMPLE_MS 5
/* Actors whose handler time the sampler keeps (a hash table; cleared when
 * three quarters full, so figures restart then). */
#define GR__OBS_TIMES 8192
/* Runtime threads the sampler follows. */
#define GR__OBS_THREADS 128
/* Actors listed per slice of the id table, between which the control
 * thread yields. */
#define GR__OBS_SLICE 4096
/* Upper bounds (ms) of the handler-time histogram's buckets; a last one,
 * +Inf, follows. Below two samples a call's length is not seen, so the
 * first bucket is two sampling periods. */
#define GR__OBS_BUCKETS 10
extern const uint32_t gr__obs_bucket_ms[GR__OBS_BUCKETS];
/* Requests a node's agent holds for its control thread. */
#define GR__OBS_QUEUE 16
/* How long a node process has to answer a query from its parent, and how
 * long it records events for a parent that has stopped fetching them. */
#define GR__OBS_NODE_TIMEOUT_MS 2000
/* How long it has to answer a fetch of events. */
#define GR__OBS_PULL_TIMEOUT_MS 250
/* How long a node that did not answer is not asked again (it is reported
 * as not answering at once meanwhile). */
#define GR__OBS_QUIET_MS 1000
/* How often a process with followers asks its node children for their
 * new events. */
#define GR__OBS_PULL_MS 100

/* The name a node process's agent is registered under. */
#define GR__CONTROL_AGENT "grove.control"

/* A query to a node's agent (payload: the request line). */
#define GR__MSG_CONTROL_QUERY (GR_MSG_RESERVED + 0x60u)
/* The control thread's answer, to its agent (payload: gr_request, then
 * the answer's bytes). */
#define GR__MSG_CONTROL_ANSWER (GR_MSG_RESERVED + 0x61u)

typedef struct gr__obs_entry {
    gr_event_kind kind; /* GR_EV_KIND_COUNT: a trace record. */
    int tracer;         /* A trace record for that client; -1: an event. */
    char json[1024];
    char text[512];
} gr__obs_entry;

/* Handler time of one actor, in samples, and its longest call seen. */
typedef struct gr__obs_time {
    uint64_t serial; /* 0: free. */
    uint64_t samples;
    uint64_t max_ns;
} gr__obs_time;

/* What the sampler last saw on one runtime thread. */
typedef struct gr__obs_seen {
    uint64_t serial, seq;
    uint32_t type;
    uint64_t since_ns; /* When that handler call was first seen... */
    uint64_t last_ns;  /* ...and last. */
    bool reported;     /* Its slow_handler event is out. */
} gr__obs_seen;

typedef enum gr__obs_follow {
    GR__OBS_NOT = 0,
    GR__OBS_TEXT,
    GR__OBS_JSON
} gr__obs_follow;

/* What one tracing client traces: an actor, or every actor of a
 * behaviour. */
typedef struct gr__obs_target {
    bool wanted;     /* Asked for: passed on to node children (new ones too). */
    bool on;         /* Found in this process. */
    uint64_t serial; /* 0: by behaviour. */
    char behaviour[GR_NAME_MAX + 1];
    char spec[128]; /* As asked: a ref, a name (NAME@NODE) or a behaviour. */
} gr__obs_target;

typedef struct gr__obs_client {
    int fd; /* -1: free. */
    char in[256];
    size_t have;
    gr__obs_follow mode;
    bool tracing; /* Its entries are its trace records, not events. */
    struct gr__control *owner;
    int index;    /* In owner->clients. */
    int kind;     /* -1: every kind. */
    uint64_t seq; /* Next ring entry to send. */
} gr__obs_client;

/* A request a node's agent has handed to its control thread. */
typedef struct gr__obs_query {
    gr_request req;
    char line[256];
} gr__obs_query;

/* A node child this process asks about, and how far it has read the
 * child's events. */
typedef struct gr__obs_child {
    uint32_t node, inc;      /* 0, 0: free. */
    gr_ref agent;            /* Its agent, once found. */
    uint64_t seq;            /* The child's next event to fetch. */
    bool synced;             /* seq is the child's, not a guess. */
    bool silent_noted;       /* Followers were told it does not answer. */
    int silent_rc;           /* Why it did not answer last, or GR_OK. */
    int silent_wait_ms;      /* How long it was waited for then. */
    uint64_t quiet_until_ns; /* Before then, not asked again with a wait
                                no longer than silent_wait_ms. */
} gr__obs_child;

/* The processes' figures, summed or one by one. */
typedef struct gr__obs_figures {
    char name[GR_NAME_MAX + 1];
    int64_t pid;
    int rc; /* GR_OK, or why this process did not answer (no figures). */
    gr_stats s;
    double busy;      /* Runtime threads running a handler, on average. */
    uint64_t calls;   /* Messages handled by actors. */
    uint64_t time_ns; /* Handler time, sampled. */
    uint64_t hist[GR__OBS_BUCKETS + 1]; /* Calls per bucket (+Inf last). */
} gr__obs_figures;

struct gr__control {
    gr_system *sys;
    bool node_mode; /* A node process: no socket, answers its agent. */
    gr_ref agent;   /* node_mode: the agent actor. */
    pthread_t thread;
    bool started;
    int listen_fd;
    int http_fd; /* The metrics listener (TCP), or -1. */
    /* Each listener's rest when accepts fail for want of descriptors
     * (actor/accept.h). */
    gr__accept_rest listen_rest, http_rest;
    int wake[2]; /* Events, queries and stop. */
    atomic_bool stop;
    bool closed; /* Guarded by lock: the tap drops what comes. */
    atomic_int followers;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char name[GR__CONTROL_NAME_SIZE];
    uint64_t started_ns;
    pthread_mutex_t lock; /* The ring, roots, targets and queries. */
    gr__obs_entry ring[GR__OBS_RING];
    uint64_t head; /* Entries ever written. */
    gr_ref roots[GR__OBS_ROOTS];
    size_t nroots;
    gr__obs_target targets[GR__OBS_CLIENTS]; /* By client index. */
    gr__obs_client clients[GR__OBS_CLIENTS];
    gr__obs_query queries[GR__OBS_QUEUE]; /* node_mode: waiting. */
    size_t nqueries;
    /* The control thread's alone: */
    gr__obs_child children[GR__OBS_NODES];
    uint64_t next_pull_ns;
    uint64_t last_loop_ns; /* When the thread last went round its loop. */
    uint64_t pulled_ns;    /* node_mode: when the parent last fetched events, */
    unsigned long parent_tracers; /* and its tracers then (a bit each). */
    uint64_t slow_ns;
    uint64_t next_sample_ns;
    gr__obs_time times[GR__OBS_TIMES];
    size_t ntimes;
    gr__obs_seen seen[GR__OBS_THREADS];
    uint64_t hist[GR__OBS_BUCKETS + 1];
    uint64_t samples; /* Samples that found a thread in a handler. */
    /* Threads found running an actor, summed over the samples of the
     * current second, and the last full second's average. */
    uint64_t busy_sum, busy_samples, window_start_ns;
    double busy;
};

/* A growing text buffer for one answer. */
typedef struct gr__obs_out {
    char *buf;
    size_t len, cap;
} gr__obs_out;

/* Appends to o (drops what does not fit in memory). */
void gr__obs_put(gr__obs_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends len bytes to o. */
void gr__obs_put_bytes(gr__obs_out *o, const void *p, size_t len);

/* The monotonic clock, in ns. */
uint64_t gr__obs_now_ns(void);

/* Copies s into buf (size bytes) fit for inside a JSON string: quotes,
 * backslashes and control characters become '?'. */
const char *gr__obs_json_safe(const char *s, char *buf, size_t size);

/* endpoint.c: makes the per-user directory, removes dead systems' sockets
 * and listens on this system's (and on the metrics port when
 * gr_config.metrics or GROVE_METRICS names one). False (logged) when it
 * cannot. */
bool gr__obs_listen(gr__control *c, const gr_config *cfg);

/* sampler.c: looks at what each runtime thread runs now. */
void gr__obs_sample(gr__control *c, uint64_t now);
/* The handler time of live actor serial in samples and its longest call,
 * or NULL. */
const gr__obs_time *gr__obs_time_of(gr__control *c, uint64_t serial);
/* This process's own figures. */
void gr__obs_figures_own(gr__control *c, gr__obs_figures *f);

/* answers.c: answers one request line (stats, metrics, tree, actors,
 * info, and from a parent nodes' figures) into o; false when the verb is
 * not one of them. */
bool gr__obs_answer(gr__control *c, const char *verb, const char *arg,
                    const char *more, gr__obs_out *o);

/* clients.c: the control thread's work on the socket clients. */
void gr__obs_on_accept(gr__control *c);
void gr__obs_on_readable(gr__control *c, gr__obs_client *cl);
void gr__obs_on_http(gr__control *c);
void gr__obs_feed(gr__control *c);
void gr__obs_drop(gr__obs_client *cl);
/* Makes tracer index trace spec in this process: a ref as printed, a
 * registered name (NAME@NODE: on that node only) or a behaviour. False,
 * with nothing traced here, when spec names none of them here; it is kept
 * for the node children either way. */
bool gr__obs_set_target(gr__control *c, int index, const char *spec);
/* Stops tracer index's tracing in this process. */
void gr__obs_clear_target(gr__control *c, int index);

/* control.c: adds one entry to the ring (lock held) and wakes the control
 * thread; false when the endpoint is closing. */
bool gr__obs_ring_add(gr__control *c, gr_event_kind kind, int tracer,
                      const char *text, const char *json);

/* nodes.c: this process's node children, their pids and names; at most
 * max. */
typedef struct gr__obs_node {
    gr_ref standin;
    uint32_t node, inc;
    int64_t pid;
    char name[GR_NAME_MAX + 1];
} gr__obs_node;
size_t gr__obs_nodes(gr__control *c, gr__obs_node *out, size_t max);
/* Sends request line to node child n and waits for its answer (within
 * timeout_ms); the answer's bytes are appended to o. Returns GR_OK or why
 * not; a node that did not answer is not asked again for
 * GR__OBS_QUIET_MS (the same error comes at once) with a wait no longer
 * than the one it did not answer in (a fetch's short one missed is no
 * reason to refuse a request's longer one). */
int gr__obs_ask_node(gr__control *c, const gr__obs_node *n, const char *line,
                     int timeout_ms, gr__obs_out *o);
/* Packs n processes' figures (msgpack) into o, for a parent. */
void gr__obs_pack_figures(const gr__obs_figures *f, size_t n, gr__obs_out *o);
/* Figures of every process below this one, appended to *f (grown with
 * realloc; *n counts them). */
void gr__obs_nodes_figures(gr__control *c, gr__obs_figures **f, size_t *n);
/* Fetches new events from the node children into the ring, when it is
 * time to. */
void gr__obs_pull(gr__control *c, uint64_t now);
/* Makes tracer index trace in every process below this one what it
 * traces here (gr__obs_set_target first); whether any of them has it.
 * *silent counts the node children that did not answer (the first one
 * named in silent_name, size bytes). */
bool gr__obs_trace_nodes(gr__control *c, int index, int *silent,
                         char *silent_name, size_t size);
/* node_mode: answers the queries the agent has handed over. */
void gr__obs_serve_queries(gr__control *c);
/* node_mode: the events and trace records since seq in the ring, packed
 * for the parent. */
void gr__obs_events_since(gr__control *c, uint64_t seq, gr__obs_out *o);

#endif
