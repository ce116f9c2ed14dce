/*
 * Grove systems: the runtime that owns workers, actors and the I/O thread.
 *
 * A program starts a system with gr_system_start(), spawns actors into it,
 * and ends it with gr_system_run() (wait for a stop request or SIGINT /
 * SIGTERM, then shut down) or gr_system_shutdown() (shut down now).
 *
 * Thread safety: gr_system_stop() and gr_system_stats() may be called from
 * any thread, handlers included. gr_system_run() and gr_system_shutdown()
 * block and must not be called from inside a handler (they return
 * GR_EWRONGTHREAD there).
 */
#ifndef GROVE_SYSTEM_H
#define GROVE_SYSTEM_H

#include <grove/common.h>
#include <grove/dist.h>
#include <grove/log.h>

/* An actor system; opaque, created by gr_system_start(). */
typedef struct gr_system gr_system;

struct gr_event; /* See grove/event.h. */

/* Start-up settings; a zeroed struct gives the defaults noted per field. */
typedef struct gr_config {
    /* Worker threads that run actors; 0 means one per online CPU. */
    unsigned workers;
    /* Largest message payload accepted by a send, in bytes; 0 means 64 MiB. */
    size_t max_payload;
    /* Lines below this level are dropped; the zero default is GR_LOG_INFO. */
    gr_log_level log_level;
    /* Nonzero makes log_level apply as given, so GR_LOG_DEBUG can be chosen. */
    int log_level_set;
    /* Sink for log lines; NULL means text on stderr. */
    gr_log_fn log_fn;
    /* Opaque argument passed to log_fn. */
    void *log_arg;
    /* Dead letters logged one by one before only a summary is kept; 0 = 10. */
    unsigned dead_letter_log_limit;
    /* Period of the summary line of dead letters not logged one by one,
     * in ms; 0 means 10000. A last summary comes at shutdown. */
    unsigned dead_letter_summary_ms;
    /* Nonzero leaves SIGINT and SIGTERM alone instead of stopping on them. */
    int no_signals;
    /* Nonzero writes events (see grove/event.h) as JSON lines, not text. */
    int event_json;
    /* File that events are appended to as JSON lines; NULL means the
     * GROVE_LOG environment variable, and if that is unset, the log. */
    const char *event_log;
    /* Sink for events (a gr_event_fn); NULL means lines through the log. */
    void (*event_fn)(void *arg, const struct gr_event *ev);
    /* Opaque argument passed to event_fn. */
    void *event_arg;
    /* Bytes of messages the link to a neighbouring node may queue before
     * sends through it are refused as backpressure; 0 means 8 MiB. */
    size_t link_buffer;
    /* Largest frame body a node link accepts; a bigger one is a protocol
     * error that closes the link. 0 means max_payload plus 192 bytes. */
    size_t max_frame;
    /* Threads of the blocking pool, which runs the actors spawned with
     * gr_spawn_opts.blocking (their handlers may block); 0 means 4. The
     * threads start on demand, so a system without such actors runs none. */
    unsigned blocking_threads;
    /* Nonzero (or GROVE_CONTROL=1 in the environment) opens the control
     * endpoint the `grove` tool attaches to: a Unix socket only this
     * user can reach (docs/observer.md). The root process only. */
    int control;
    /* The system's name for `grove ls` and the endpoint's socket file;
     * NULL means the program's name. The file (and `grove ls`) holds its
     * first GR_NAME_MAX bytes with '/', '.', spaces and control
     * characters made '_'; `grove` finds the system by either form. */
    const char *name;
    /* With the control endpoint on: a handler call seen running longer
     * than this is reported once as a slow_handler event (grove/event.h);
     * 0 means 1000 ms. Seen by sampling every few milliseconds. */
    unsigned slow_handler_ms;
    /* With the control endpoint on, also serve its metrics over HTTP
     * (Prometheus' text format, GET /metrics) on this "IPV4:PORT"
     * ("127.0.0.1:9464"; port 0 picks one, logged); NULL means the
     * GROVE_METRICS environment variable, and if that is unset, none.
     * Anyone who can reach the address can read the metrics. */
    const char *metrics;
    /* Erlang distribution (grove/dist.h, docs/distribution.md); zeroed,
     * off. */
    gr_dist_config dist;
} gr_config;

/* Why a message could not be delivered (see gr_stats.dead_letters). */
typedef enum gr_dead_reason {
    GR_DL_NO_ACTOR = 0, /* The target did not exist or had already exited. */
    GR_DL_STOPPED = 1,  /* The target exited with the message still queued. */
    GR_DL_EXPIRED_REPLY = 2, /* A reply to an ask that no longer waits (it
                                timed out, was answered, or the asker
                                exited). */
    GR_DL_MAILBOX_FULL = 3,  /* The target's bounded mailbox was full. */
    GR_DL_UNKNOWN_NAME = 4,  /* Sent to a name nobody has registered. */
    GR_DL_NODE_DOWN = 5,     /* Its node was not connected, or the message
                                was in flight when the link went down. */
    GR_DL_BACKPRESSURE = 6,  /* The link to its node had no room. */
    GR_DL_COUNT = 7          /* Number of reasons; not a reason. */
} gr_dead_reason;

/* How many of the deepest mailboxes gr_stats lists. */
#define GR_STATS_DEEPEST 8

/* One actor's mailbox depth, as gr_stats lists it. */
typedef struct gr_mailbox_depth {
    gr_ref actor;   /* The actor (GR_REF_NONE in unused entries). */
    uint64_t depth; /* Messages waiting in its mailbox. */
} gr_mailbox_depth;

/* Most workers a system reports per-worker figures for in gr_stats. */
#define GR_STATS_MAX_WORKERS 64

/* A snapshot of a system's counters, filled by gr_system_stats(). */
typedef struct gr_stats {
    /* Worker threads the system runs. */
    unsigned workers;
    /* Actors (inboxes included) spawned since start. */
    uint64_t spawned;
    /* Actors (inboxes included) that have exited since start. */
    uint64_t exited;
    /* Actors (inboxes included) alive now: spawned - exited. */
    uint64_t alive;
    /* Messages accepted for delivery (runtime messages included). */
    uint64_t sent;
    /* Messages handed to actors' handlers or inboxes. */
    uint64_t delivered;
    /* Turns after which an actor was held back because it had sent to an
     * overloaded actor (backpressure; see docs/messaging.md). */
    uint64_t muted;
    /* Dead letters counted per gr_dead_reason. */
    uint64_t dead_letters[GR_DL_COUNT];
    /* Actor turns run by each worker (first GR_STATS_MAX_WORKERS only). */
    uint64_t runs[GR_STATS_MAX_WORKERS];
    /* Actors each worker stole from another worker's queue. */
    uint64_t steals[GR_STATS_MAX_WORKERS];
    /* Children restarted by supervisors since start. */
    uint64_t restarts;
    /* Threads in the blocking pool (at most gr_config.blocking_threads;
     * they start on demand), and the actor turns they have run. */
    unsigned blocking_threads;
    uint64_t blocking_runs;
    /* Sockets open now (grove/io.h), and the bytes read from and written
     * to sockets since start. */
    uint64_t sockets_open;
    uint64_t socket_bytes_in;
    uint64_t socket_bytes_out;
    /* The deepest mailboxes of live actors, deepest first; empty ones are
     * not listed. A snapshot: each depth is read at a slightly different
     * moment. */
    gr_mailbox_depth deepest[GR_STATS_DEEPEST];
} gr_stats;

/*
 * Starts a system with the given settings (NULL for defaults) and stores it
 * in *out. The system owns everything it allocates; gr_system_run() or
 * gr_system_shutdown() frees it.
 */
GR_API int gr_system_start(const gr_config *cfg, gr_system **out);

/*
 * Blocks until gr_system_stop() is called or SIGINT/SIGTERM arrives (unless
 * no_signals), then shuts the system down as gr_system_shutdown() does and
 * frees it. Returns GR_OK, GR_EBUSY (an inbox stayed open: see
 * gr_system_shutdown()), or GR_EWRONGTHREAD from inside a handler.
 */
GR_API int gr_system_run(gr_system *sys);

/*
 * Asks the system to stop; returns at once. gr_system_run() then shuts it
 * down. Owners waiting in empty inboxes (gr_inbox_recv, gr_call) are woken
 * with GR_ESTOPPED, so they can close them first. Safe from any thread and
 * from handlers; repeated calls and NULL are harmless.
 */
GR_API void gr_system_stop(gr_system *sys);

/*
 * Shuts the system down now: workers finish their current turn, every live
 * actor's terminate runs (newest first) with reason GR_ESHUTDOWN, queued
 * messages become dead letters, threads are joined and all memory is freed.
 * Inboxes must be closed first: their waiting owners are woken with
 * GR_ESTOPPED and given 5 s to close them. If one stays open (or an inbox
 * of the calling thread is open, which it cannot close while it waits
 * here), nothing is shut down: it logs which and returns GR_EBUSY; the
 * system keeps running (inboxes answer GR_ESTOPPED when empty), and a
 * later call, once they are closed, shuts it down. Returns GR_OK, GR_EBUSY,
 * or GR_EWRONGTHREAD from inside a handler. On GR_OK sys is freed: threads
 * of the program that still use it (a send from another thread, say)
 * must have stopped before the call.
 */
GR_API int gr_system_shutdown(gr_system *sys);

/* Fills *out with a snapshot of the system's counters. An actor counted
 * in exited no longer resolves: sends to it return GR_ENOACTOR. Walks
 * every live actor for the deepest mailboxes: O(actors). */
GR_API void gr_system_stats(gr_system *sys, gr_stats *out);

/* Returns the name of a dead-letter reason, e.g. "no_actor". */
GR_API const char *gr_dead_reason_name(gr_dead_reason reason);

#endif
