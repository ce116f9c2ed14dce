/*
 * The runtime's event path (see include/grove/event.h): one structured
 * record per event, to the configured sink.
 */
#ifndef GROVE_ACTOR_EVENT_H
#define GROVE_ACTOR_EVENT_H

#include <grove/event.h>
#include <grove/system.h>

#include "actor/log.h"

/* Where a system's events go; fixed after start. */
typedef struct gr__events {
    gr_event_fn fn; /* NULL: lines through the log. */
    void *arg;
    int json;
} gr__events;

/* Sets up the event sink from the config. */
void gr__events_init(gr__events *e, const gr_config *cfg);

/* Emits ev (its time is filled in here) through e, or as a log line
 * through log. Any thread. */
void gr__event_emit(const gr__events *e, const gr__logger *log, gr_event *ev);

#endif
