/*
 * Grove events: one structured record for each thing a user watches a
 * system by — actors spawned, exiting and crashing, dead letters, and a
 * supervision tree healing itself (child starts, exits, crashes, restarts,
 * supervisors giving up).
 *
 * Each event has a level (gr_log_level); events below gr_config.log_level
 * are dropped. The rest go to one sink, the first configured of:
 *   - gr_config.event_fn, which receives the record itself;
 *   - a file of JSON lines, appended to: gr_config.event_log, or the
 *     GROVE_LOG environment variable (follow it with `tail -f`);
 *   - the log facility (stderr by default), as readable text, or as JSON
 *     when gr_config.event_json is set.
 * Dead-letter events are rate-limited: the first dead_letter_log_limit,
 * then a periodic summary line (counters and subscriptions see them all).
 *
 * Thread safety: events are emitted from any Grove thread, concurrently;
 * an event_fn must not block long and must not call back into the system
 * that emitted it.
 */
#ifndef GROVE_EVENT_H
#define GROVE_EVENT_H

#include <grove/actor.h>
#include <grove/deadletter.h>

/* What happened. */
typedef enum gr_event_kind {
    GR_EV_CHILD_STARTED = 0,   /* A supervisor started a child (first time). */
    GR_EV_CHILD_EXITED = 1,    /* A child exited normally or by shutdown. */
    GR_EV_CHILD_CRASHED = 2,   /* A child exited with any other reason. */
    GR_EV_CHILD_RESTARTED = 3, /* A supervisor restarted a child. */
    GR_EV_START_FAILED = 4,    /* A child's init failed while (re)starting. */
    GR_EV_GAVE_UP = 5,         /* Restart intensity exceeded: the supervisor
                                  stops its children and exits. */
    GR_EV_SPAWNED = 6,         /* An actor's init returned (debug). */
    GR_EV_EXITED = 7,          /* An actor exited normally, by shutdown
                                  (debug) or killed (warn). */
    GR_EV_CRASHED = 8,         /* An actor exited with any other reason. */
    GR_EV_INIT_FAILED = 9,     /* An actor's init failed. */
    GR_EV_DEAD_LETTER = 10,    /* A message could not be delivered. */
    GR_EV_NODE_UP = 11,        /* A node child's process finished its
                                  handshake (info). */
    GR_EV_NODE_DOWN = 12,      /* A node child's process ended and was
                                  reaped; reason as its stand-in's (info
                                  when clean, warn otherwise). */
    GR_EV_SOCKET_LISTENING = 13, /* An actor listens on a socket (info). */
    GR_EV_SOCKET_ACCEPTED = 14,  /* A listener accepted a connection
                                    (debug). */
    GR_EV_SOCKET_CLOSED = 15,    /* A socket closed: by its owner, its
                                    owner's exit or an error its owner was
                                    told of (debug), or with bytes unsent
                                    (warn). */
    GR_EV_SLOW_HANDLER = 16,     /* One handler call has run longer than
                                    gr_config.slow_handler_ms (warn; seen
                                    with the control endpoint on). */
    GR_EV_KIND_COUNT = 17        /* Number of kinds; not a kind. */
} gr_event_kind;

/* gr_event.flags: a supervisor reports the same thing (an actor event of
 * a supervisor's child, a node event of a node child): the text and JSON
 * log lines leave it out unless the log level is GR_LOG_DEBUG, so one
 * crash is one line. An event_fn gets it all the same. */
#define GR_EVENT_SUPERVISED 1u

/* One event; valid only during the call that receives it. Fields that do
 * not apply to its kind are zero, and strings "". */
typedef struct gr_event {
    gr_event_kind kind;
    gr_log_level level; /* Its severity (see the kinds). */
    unsigned flags;     /* GR_EVENT_* bits. */
    uint64_t time_ns;   /* CLOCK_REALTIME, nanoseconds. */
    gr_reason reason;   /* Exit or failure reason; code GR_OK otherwise. */
    /* Actor events (spawned, exited, crashed, init_failed): */
    gr_ref actor;          /* The actor. */
    const char *behaviour; /* Its behaviour's name, or "" (supervisor
                              events: the child's). */
    /* Supervisor events (child_*, start_failed, gave_up): */
    gr_ref supervisor;    /* The supervisor it concerns. */
    const char *sup_name; /* Its registered name, or "". */
    const char *child_id; /* The child's id ("" for GR_EV_GAVE_UP, and for
                             a simple-one-for-one child, which behaviour
                             names instead). */
    gr_ref child;         /* The child's reference (new one on a restart). */
    unsigned restarts;    /* Restarts in the current intensity window. */
    /* Dead-letter events: */
    gr_dead_letter dead; /* The record subscribers get. */
    /* Node events (and actor: the node child's stand-in, if any): */
    const char *node; /* The node's name. */
    int64_t pid;      /* Its process id. */
    /* Socket events (grove/io.h); actor is the socket's owner: */
    uint64_t socket;     /* The socket's id. */
    uint64_t listener;   /* Accepted: the listener's id. */
    const char *address; /* Listening: the local address; accepted: the
                            peer's; "" otherwise. */
    uint64_t unsent;     /* Closed: bytes queued and never sent. */
    /* Slow-handler events (actor and behaviour too): */
    uint32_t msg_type;   /* The message the handler is on. */
    uint64_t elapsed_ms; /* How long the call had run when seen. */
    /* The system that emitted it (its refs are formatted with its node
     * names); NULL in an event built by hand. */
    struct gr_system *sys;
} gr_event;

/* An event sink; see the file comment for its threading rules. */
typedef void (*gr_event_fn)(void *arg, const gr_event *ev);

/* Returns the snake_case name of an event kind, e.g. "child_crashed". */
GR_API const char *gr_event_kind_name(gr_event_kind kind);

/*
 * Formats ev as the text line the default sink writes into buf (size bytes
 * including the terminator, truncating) and returns buf. Refs are written
 * as gr_ref_format() does with ev->sys.
 */
GR_API char *gr_event_format_text(const gr_event *ev, char *buf, size_t size);

/*
 * Formats ev as one JSON object (no newline) into buf (size bytes
 * including the terminator; a line that does not fit becomes
 * {"event":...,"truncated":true}) and returns buf. Keys: event, time_ns,
 * level, then per kind: actor, behaviour, reason, code (actor events);
 * supervisor, sup_name, child_id, child, reason, code, restarts,
 * behaviour (supervisor events); from, to, type, corr, reason (dead letters);
 * socket, actor, address, listener, unsent, reason, code (socket events);
 * actor, behaviour, type, elapsed_ms (slow handlers).
 */
GR_API char *gr_event_format_json(const gr_event *ev, char *buf, size_t size);

#endif
