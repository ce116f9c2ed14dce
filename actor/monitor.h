/*
 * Monitors, inside the runtime. Requests travel as runtime messages in the
 * target's own mailbox, so they keep their place among the watcher's other
 * messages; each actor keeps (owner-only) who watches it and whom it
 * watches.
 */
#ifndef GROVE_ACTOR_MONITOR_H
#define GROVE_ACTOR_MONITOR_H

#include <stdbool.h>

#include <grove/monitor.h>

#include "actor/actor.h"

struct gr__worker;

/* One monitor as one side records it: its id and the other side's ref. */
typedef struct gr__mon_entry {
    uint64_t id;
    gr_ref ref;
} gr__mon_entry;

/* A growable list of monitor entries. */
typedef struct gr__mon_list {
    gr__mon_entry *v;
    unsigned n, cap;
} gr__mon_list;

/* An actor's monitors; allocated on first use, freed at exit. */
typedef struct gr__monitors {
    gr__mon_list watchers; /* Who monitors this actor. */
    gr__mon_list watching; /* Whom this actor monitors. */
} gr__monitors;

/*
 * Handles a runtime message m in a's turn (w: a's worker, or NULL for an
 * inbox's owner thread). Returns true when the runtime consumed it
 * (monitor requests, and DOWNs for monitors removed meanwhile); false when
 * the handler should see it (a live monitor's DOWN, now retired).
 */
bool gr__monitor_signal(gr__actor *a, struct gr__worker *w, const gr_msg *m);

/* Sends DOWN with reason to a's watchers, drops a's own monitors at their
 * targets, and frees a's monitor lists. Called once, as a exits. */
void gr__monitor_exit(gr__actor *a, struct gr__worker *w, int reason);

/* Answers a monitor request found in an exited actor's mailbox with a
 * DOWN (reason GR_ENOACTOR); other runtime messages there are dropped. */
void gr__monitor_orphan(gr_system *sys, const gr_msg *m);

#endif
