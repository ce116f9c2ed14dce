/*
 * Grove events: one structured record for each thing a user watches a
 * system heal by (child starts, exits, crashes, restarts, supervisors
 * giving up).
 *
 * By default each event becomes one readable text line through the log
 * facility (gr_config.log_fn, or stderr); gr_config.event_json makes it a
 * JSON object on one line instead; gr_config.event_fn receives the record
 * itself. Thread safety: events are emitted from any Grove thread,
 * concurrently; an event_fn must not block long and must not call back into
 * the system that emitted it.
 */
#ifndef GROVE_EVENT_H
#define GROVE_EVENT_H

#include <grove/actor.h>

/* What happened. */
typedef enum gr_event_kind {
    GR_EV_CHILD_STARTED = 0,   /* A supervisor started a child (first time). */
    GR_EV_CHILD_EXITED = 1,    /* A child exited normally or by shutdown. */
    GR_EV_CHILD_CRASHED = 2,   /* A child exited with any other reason. */
    GR_EV_CHILD_RESTARTED = 3, /* A supervisor restarted a child. */
    GR_EV_START_FAILED = 4,    /* A child's init failed while (re)starting. */
    GR_EV_GAVE_UP = 5,         /* Restart intensity exceeded: the supervisor
                                  stops its children and exits. */
    GR_EV_KIND_COUNT = 6       /* Number of kinds; not a kind. */
} gr_event_kind;

/* One event; valid only during the call that receives it. */
typedef struct gr_event {
    gr_event_kind kind;
    uint64_t time_ns;     /* CLOCK_REALTIME, nanoseconds. */
    gr_ref supervisor;    /* The supervisor it concerns. */
    const char *sup_name; /* Its registered name, or "". */
    const char *child_id; /* The child's id ("" for GR_EV_GAVE_UP). */
    gr_ref child;         /* The child's reference (new one on a restart). */
    gr_reason reason;     /* Exit or failure reason; code GR_OK otherwise. */
    unsigned restarts;    /* Restarts in the current intensity window. */
} gr_event;

/* An event sink; see the file comment for its threading rules. */
typedef void (*gr_event_fn)(void *arg, const gr_event *ev);

/* Returns the snake_case name of an event kind, e.g. "child_crashed". */
GR_API const char *gr_event_kind_name(gr_event_kind kind);

/*
 * Formats ev as the text line the default sink writes into buf (size bytes
 * including the terminator, truncating) and returns buf.
 */
GR_API char *gr_event_format_text(const gr_event *ev, char *buf, size_t size);

/*
 * Formats ev as one JSON object (no newline) into buf (size bytes
 * including the terminator, truncating) and returns buf. Keys: event, time_ns,
 * supervisor, sup_name, child_id, child, reason, code, restarts.
 */
GR_API char *gr_event_format_json(const gr_event *ev, char *buf, size_t size);

#endif
