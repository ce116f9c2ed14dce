/*
 * The runtime's internal API: what supervisor/ and transport/ may use from
 * actor/. They include this header, never actor/system.h, so the layout of
 * struct gr_system stays actor/'s own business; what they need of a system
 * they get from the functions below.
 *
 * What it gathers, and the header each piece is declared in:
 *   accept.h      accepting on a polled listener, resting it on EMFILE
 *   actor.h       spawning, exits, the callback context, gr__accept_calls
 *   assert.h      GR_ASSERT, for programmer errors
 *   deadletter.h  gr__dead_message, the policy for undeliverable messages
 *   event.h       structured events (see gr__system_emit below)
 *   io.h          the I/O thread: its loop and its command queue
 *   log.h         gr__log (see gr__system_log below)
 *   names.h       the one rule for names and labels (gr__name_check)
 *   owned.h       the hook for resources actors own (sockets)
 *   refmap.h      a hash map from refs to pointers
 *   relations.h   links, monitors and asks of an actor (the signal hooks)
 *   remote.h      node ids, the transport hook, node-down broadcasts
 *   request.h     runtime requests: asks and calls of reserved types
 *   scheduler.h   gr__worker_of, the calling thread's worker
 *   send.h        gr__deliver, the one delivery path
 *   timer.h       runtime timers
 */
#ifndef GROVE_ACTOR_RUNTIME_H
#define GROVE_ACTOR_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grove/system.h>

#include "actor/accept.h"
#include "actor/actor.h"
#include "actor/assert.h"
#include "actor/clock.h"
#include "actor/deadletter.h"
#include "actor/event.h"
#include "actor/io.h"
#include "actor/log.h"
#include "actor/names.h"
#include "actor/owned.h"
#include "actor/relations.h"
#include "actor/remote.h"
#include "actor/request.h"
#include "actor/scheduler.h"
#include "actor/send.h"
#include "actor/refmap.h"
#include "actor/timer.h"

/* The system's logger, for gr__log(). */
const gr__logger *gr__system_log(const gr_system *sys);

/* Emits ev to the system's event sink (and log). */
void gr__system_emit(gr_system *sys, gr_event *ev);

/* The control endpoint (observe/; docs/observer.md): in the root process,
 * started by gr_system_start when gr_config.control or GROVE_CONTROL=1
 * asks for it (*out stays NULL otherwise, or when it cannot listen, which
 * is logged); stopped first at shutdown. Stop and free take NULL. */
typedef struct gr__control gr__control;
int gr__control_start(gr_system *sys, const gr_config *cfg, gr__control **out);
void gr__control_stop(gr__control *c);
/* Frees a stopped endpoint, once nothing can emit an event any more. */
void gr__control_free(gr__control *c);

/* Erlang distribution (dist/; docs/distribution.md): in the root
 * process, started by gr_system_start when gr_config.dist.node_name is
 * set; an error there fails the start. Stopped after every actor has
 * exited; stop takes NULL. */
typedef struct gr__dist gr__dist;
int gr__dist_start(gr_system *sys, const gr_dist_config *cfg, gr__dist **out);
void gr__dist_stop(gr__dist *d);
/* Whether sends to refs on node go through distribution (node is an
 * Erlang node, or another Grove system, that d has seen). Any thread. */
bool gr__dist_routes(gr__dist *d, uint32_t node);
/* Sends m to its m->to on an Erlang node; to name on node ("erl@host")
 * when name is not NULL. Returns GR_OK, GR_EINVAL (a GR_MSG_TERM payload
 * that is no term), GR_EBACKPRESSURE, GR_ENOMEM or GR_ENOCONNECTION
 * (what cannot be sent later becomes a dead letter then). */
int gr__dist_send(gr__dist *d, const char *node, const char *name,
                  const gr_msg *m);
/* Finds the pid registered as name on Erlang node `node` (rpc:call
 * whereis, which other Grove systems answer too) before deadline_ns
 * (gr__mono_ns; UINT64_MAX: none). GR_OK with *out, or GR_ENOTFOUND. Not
 * from a handler: it waits. */
int gr__dist_whereis(gr__dist *d, const char *node, const char *name,
                     uint64_t deadline_ns, gr_ref *out);
/* Copies the name of Erlang node `node` (an id d has seen) into buf and
 * stores the creation last seen of it in *inc; false when d does not know
 * it. Any thread. */
bool gr__dist_node_label(gr__dist *d, uint32_t node, char *buf, size_t size,
                         uint32_t *inc);
/* The system's distribution, or NULL. */
gr__dist *gr__system_dist(gr_system *sys);

/* In a node process: spawns the agent through which the parent's control
 * endpoint reaches this process. Returns GR_OK or the spawn's error. */
int gr__control_agent_start(gr_system *sys);
/* Starts a node process's endpoint for its agent, and installs it; NULL
 * when it cannot (or the system is shutting down). */
gr__control *gr__control_start_node(gr_system *sys, gr_ref agent);

/* The system's control endpoint, or NULL. */
gr__control *gr__system_control(gr_system *sys);

/* Makes c the system's endpoint; false when it has one, or when shutdown
 * has begun (it stops the endpoint first). */
bool gr__system_install_control(gr_system *sys, gr__control *c);

/* gr_config.slow_handler_ms as the system took it (0: the default). */
uint32_t gr__system_slow_handler_ms(const gr_system *sys);

/* A node process's root actor (set by gr_node_main), or GR_REF_NONE. */
void gr__system_set_node_root(gr_system *sys, gr_ref root);
gr_ref gr__system_node_root(gr_system *sys);

/* Adds delta to the count of traced actors and behaviours; while it is
 * not 0, sends and handler calls ask the endpoint whether to trace. */
void gr__system_tracing(gr_system *sys, int delta);

/* Runtime threads that run actors (workers, then the blocking pool). */
unsigned gr__system_threads(const gr_system *sys);

/* What runtime thread i runs now: the actor's serial (0 for none), the
 * type of the message in its handler, and a count that moves with every
 * message handed to a handler. Any thread; a sample, not a snapshot. */
void gr__system_thread_now(gr_system *sys, unsigned i, uint64_t *serial,
                           uint32_t *type, uint64_t *seq);

/* One live actor of this node, as the control endpoint lists it. */
typedef struct gr__actor_info {
    gr_ref ref;
    const char *behaviour; /* Its name ("" for an inbox). */
    uint64_t depth;        /* Messages waiting. */
    uint64_t handled;      /* Messages taken from its mailbox. */
} gr__actor_info;

/* Calls fn for each live actor whose slot in the id table is in [from,
 * from + count), and stores in *next the slot to go on from (0 when the
 * table is done): a caller walks a million actors in slices. Any thread
 * but a callback's. */
void gr__system_actors(gr_system *sys, uint32_t from, uint32_t count,
                       void (*fn)(const gr__actor_info *info, void *arg),
                       void *arg, uint32_t *next);

/* Copies live local actor serial's behaviour name into buf; false if it
 * is gone. */
bool gr__system_behaviour_of(gr_system *sys, uint64_t serial, char *buf,
                             size_t size);

/* The system's I/O thread. */
gr__io *gr__system_io(gr_system *sys);

/* This system's node: its id (0 for the root), its incarnation (part of
 * every local ref) and its name ("root" for the root). */
uint32_t gr__system_node_id(const gr_system *sys);
uint32_t gr__system_incarnation(const gr_system *sys);
const char *gr__system_node_name(const gr_system *sys);

/* Fills p with n random bytes from the kernel. Returns GR_OK or GR_ESYS. */
int gr__random_bytes(void *p, size_t n);

/* Stores a fresh incarnation in *inc: random and never 0, so that refs of
 * one system (or node process) never name the actors of another, in this
 * process or a later one. Returns GR_OK or GR_ESYS. */
int gr__new_incarnation(uint32_t *inc);

/* Whether shutdown has begun (sends and spawns are refused from then on). */
bool gr__system_shutting_down(const gr_system *sys);

/* gr_config's limits as the system took them: the largest payload, the
 * largest frame between nodes (0: derive it from the payload limit), and
 * the bytes a link may queue (0: the transport's default). */
size_t gr__system_max_payload(const gr_system *sys);
size_t gr__system_max_frame(const gr_system *sys);
size_t gr__system_link_buffer(const gr_system *sys);

/* Counts one child restarted by a supervisor (gr_system_stats' restarts). */
void gr__system_count_restart(gr_system *sys);

/* gr_system_start() for a node process: cfg is not NULL; node_name is the
 * node's, for log lines from the start on (its identity is set later,
 * gr__system_set_node). */
int gr__system_start_named(const gr_config *cfg, const char *node_name,
                           gr_system **out);

/* Whether the local actor ref names is still there (not yet exited). Any
 * thread. */
bool gr__ref_alive(gr_system *sys, gr_ref ref);

/* How many workers the system runs. */
unsigned gr__system_workers(const gr_system *sys);

#endif
