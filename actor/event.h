/*
 * The runtime's event path (see include/grove/event.h): one structured
 * record per event, to the configured sink.
 */
#ifndef GROVE_ACTOR_EVENT_H
#define GROVE_ACTOR_EVENT_H

#include <stdbool.h>

#include <grove/event.h>
#include <grove/system.h>

#include "actor/log.h"

#include <stdatomic.h>

/* Where a system's events go; fixed after start. */
typedef struct gr__events {
    gr_event_fn fn; /* NULL: a file or lines through the log. */
    void *arg;
    int fd; /* The JSON-lines file, or -1. */
    int json;
    struct gr_system *sys; /* Whose events: set in every event emitted. */
    /* The control endpoint's tap (observe/control.c), or NULL: set once
     * at start, freed only when the system is (after every thread that
     * emits is gone). */
    _Atomic(struct gr__control *) control;
} gr__events;

/* The control endpoint's tap: sees every event the level lets through
 * (implemented in observe/control.c, which the system starts). */
void gr__control_event(struct gr__control *c, const gr_event *ev);

/* Message tracing (observe/clients.c), asked only while the system's
 * tracing count is not 0: whether local actor serial (running behaviour)
 * is traced; a record of a message it handled (in, with the handler
 * call's time) or sent from its handler (out; to_name: the name it was
 * sent to when it went by name to another node, else NULL); and a record
 * of its exit. */
bool gr__control_traced(struct gr__control *c, uint64_t serial,
                        const char *behaviour);
void gr__control_trace(struct gr__control *c, bool in, uint64_t serial,
                       const char *behaviour, const gr_msg *m,
                       const char *to_name, uint64_t handler_ns);
void gr__control_trace_exit(struct gr__control *c, uint64_t serial,
                            const char *behaviour, const gr_reason *why);

/* Sets up the event sink from the config (opening the event log file, if
 * any; failures are logged through log). Returns GR_OK or GR_ESYS. */
int gr__events_init(gr__events *e, const gr_config *cfg, gr__logger *log);

/* Closes the event log file, if any. */
void gr__events_destroy(gr__events *e);

/* Whether events at level get anywhere; check it before building one. */
bool gr__event_wanted(const gr__logger *log, gr_log_level level);

/* The level of a supervisor event of kind with reason why. */
gr_log_level gr__sup_event_level(gr_event_kind kind, const gr_reason *why);

/* Emits ev (its time is filled in here) through e's sink if its level is
 * enabled. Any thread. */
void gr__event_emit(const gr__events *e, const gr__logger *log, gr_event *ev);

#endif
