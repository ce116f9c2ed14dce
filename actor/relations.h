/*
 * An actor's relations to other actors, inside the runtime: links (both
 * ways), monitors (who watches it, whom it watches) and whether it traps
 * exits. Requests and signals travel as runtime messages through the
 * mailboxes, so they keep their place among each sender's other messages;
 * each actor keeps its own records, touched only by its owner.
 */
#ifndef GROVE_ACTOR_RELATIONS_H
#define GROVE_ACTOR_RELATIONS_H

#include <stdbool.h>

#include <grove/link.h>
#include <grove/monitor.h>

#include "actor/actor.h"
#include "actor/refmap.h"

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

/* An actor's relations; allocated on first use, freed at exit. */
typedef struct gr__relations {
    gr__mon_list watchers;     /* Who monitors this actor. */
    gr__mon_list watching;     /* Whom this actor monitors. */
    gr__refmap links;          /* Linked actors (values unused, non-NULL). */
    gr__refmap timers;         /* Own timers by id (see timer.c). */
    gr__refmap asks;           /* Own asks awaiting an answer, by corr. */
    gr__refmap held;           /* Requests received, not yet answered, by corr:
                                  the asker's gr_ref (malloc'd). */
    uint64_t sweep_timer;      /* The timer for the earliest ask deadline, or
                                  0 (see ask.c). */
    uint64_t sweep_due;        /* Its deadline (coarse monotonic ns). */
    struct gr__ask *ask_cache; /* Spare ask records (see ask.c). */
    unsigned ask_cached;
    bool trap_exit;
    char *name; /* Registered name (owned), or NULL. */
} gr__relations;

/* Returns a's relations, allocating them on first use (NULL on OOM). */
gr__relations *gr__relations_of(gr__actor *a);

/* What the runtime made of a runtime message. */
typedef enum gr__sig {
    GR__SIG_CONSUMED, /* The runtime's own business; drop it. */
    GR__SIG_DELIVER,  /* Hand it to the handler (or inbox owner). */
    GR__SIG_EXIT      /* The actor must exit (reason stored). */
} gr__sig;

/*
 * Handles a runtime message m (type >= GR_MSG_RESERVED) in a's turn (w:
 * a's worker, or NULL for an inbox's owner). May rewrite m in place: an
 * exit signal that a trapping actor receives becomes a GR_MSG_EXIT. On
 * GR__SIG_EXIT stores the exit reason in *why.
 */
gr__sig gr__signal(gr__actor *a, struct gr__worker *w, gr_msg *m,
                   gr_reason *why);

/* Tells a's links and watchers that a exits with why, drops a's own
 * monitors at their targets, and frees a's relations. Called once. */
void gr__relations_exit(gr__actor *a, struct gr__worker *w,
                        const gr_reason *why);

/* Answers a request found in an exited actor's mailbox: a monitor request
 * gets a DOWN, a link request an exit signal, both with noproc; other
 * runtime messages there are dropped. */
void gr__signal_orphan(gr_system *sys, const gr_msg *m);

/* As gr__signal_orphan(), with reason code instead of noproc: a request
 * that could not reach its target (GR_ENOCONNECTION: its node is gone). */
void gr__signal_refused(gr_system *sys, const gr_msg *m, int code);

/* Records a link from a to other (a's own record only). Returns GR_OK or
 * GR_ENOMEM. */
int gr__link_add(gr__actor *a, gr_ref other);

/* Removes a's record of a link to other, if any. */
void gr__link_remove(gr__actor *a, gr_ref other);

/* Monitor and link halves of the functions above (monitor.c, link.c). */
gr__sig gr__monitor_signal(gr__actor *a, struct gr__worker *w, const gr_msg *m);
void gr__monitor_exit(gr__actor *a, struct gr__worker *w, const gr_reason *why);
void gr__monitor_orphan(gr_system *sys, const gr_msg *m, int code);
gr__sig gr__link_signal(gr__actor *a, struct gr__worker *w, gr_msg *m,
                        gr_reason *why);
void gr__link_exit(gr__actor *a, struct gr__worker *w, const gr_reason *why);
void gr__link_orphan(gr_system *sys, const gr_msg *m, int code);

/* Ask halves (ask.c): answers arriving at an asker, and an exiting actor
 * failing the requests it holds and dropping its own asks. */
gr__sig gr__ask_signal(gr__actor *a, struct gr__worker *w, gr_msg *m);
void gr__ask_exit(gr__actor *a, struct gr__worker *w, const gr_reason *why);

/* Node-down halves: a's links, monitors and asks involving incarnation
 * inc of node fire with reason noconnection (queued to a itself, so each
 * takes the usual path), and requests held for askers there are dropped. */
void gr__link_node_down(gr__actor *a, struct gr__worker *w, uint32_t node,
                        uint32_t inc);
void gr__monitor_node_down(gr__actor *a, struct gr__worker *w, uint32_t node,
                           uint32_t inc);
void gr__ask_node_down(gr__actor *a, struct gr__worker *w, uint32_t node,
                       uint32_t inc);

/* Returns nonzero when r is an actor of incarnation inc of node. */
static inline bool gr__ref_on(gr_ref r, uint32_t node, uint32_t inc)
{
    return r.node == node && r.incarnation == inc;
}

/* At the end of a handler call that left the turn's request unanswered:
 * a now holds it, and answers it (or fails it as it exits) later. */
void gr__ask_hold(gr__actor *a, struct gr__worker *w);

/* Tells the asker `to` that its request corr (made to `from`) failed with
 * why: a GR_MSG_ASK_FAILED reply. From any thread; w is its worker or NULL. */
void gr__ask_send_failed(gr_system *sys, struct gr__worker *w, gr_ref from,
                         gr_ref to, uint64_t corr, const gr_reason *why);

#endif
