/*
 * Internal system structure, shared by the files of actor/.
 */
#ifndef GROVE_ACTOR_SYSTEM_H
#define GROVE_ACTOR_SYSTEM_H

#include <pthread.h>
#include <stdatomic.h>

#include <grove/actor.h>
#include <grove/system.h>

#include "actor/deadletter.h"
#include "actor/event.h"
#include "actor/idtable.h"
#include "actor/io.h"
#include "actor/message.h"
#include "actor/log.h"
#include "actor/names.h"
#include "actor/scheduler.h"

/* Default largest payload a send accepts. */
#define GR__DEFAULT_MAX_PAYLOAD ((size_t)64 << 20)

struct gr_system {
    gr__sched sched;
    gr__idtable ids;
    gr__names names;
    gr__logger log;
    gr__events events;
    gr__deadletters dead;
    gr__io io;
    /* The I/O thread's envelopes (messages from other nodes): their own
     * group, so workers hand freed ones straight back. Destroyed last. */
    gr__envpool io_pools[GR__POOL_CLASSES];
    size_t max_payload;
    size_t link_buffer; /* gr_config's, for the transport. */
    size_t max_frame;
    uint32_t incarnation; /* Of this node; part of every local ref. */
    uint32_t node_id;     /* This node's id (see remote.h). */
    char node_name[GR_NAME_MAX + 1];
    /* The transport's hook (see remote.h): set once, read on the remote
     * path only. */
    _Atomic(const struct gr__remote_ops *) remote_ops;
    struct gr__dist *dist; /* Set at start, before any send; or NULL. */
    void *remote;
    /* The keeper of actor-owned resources (see owned.h): installed once
     * under stop_lock, read with acquire on every exit. */
    _Atomic(const struct gr__owned_ops *) owned_ops;
    void *owned;
    _Atomic(uint64_t) next_seq; /* Spawn order. */
    _Atomic(uint64_t) next_id;  /* Monitor and ask ids; 0 is never used. */
    _Atomic(uint64_t) spawned;
    _Atomic(uint64_t) exited;
    _Atomic(uint64_t) restarts; /* Children restarted by supervisors. */
    /* Actors and behaviours traced through the control endpoint: while
     * 0, sends and handler calls check only this (relaxed). */
    _Atomic(unsigned) tracing;
    _Atomic(uint64_t) inbox_delivered;
    _Atomic(int) open_inboxes; /* Opened, and not yet done closing. */
    /* Set when shutdown begins: sends and spawns are refused. */
    _Atomic(bool) shutting_down;
    /* Set by gr_system_stop() and at shutdown's start: an inbox's owner
     * no longer waits in an empty inbox (GR_ESTOPPED). */
    _Atomic(bool) stopping;
    /* Stop request: gr_system_stop() sets it, gr_system_run() waits on it. */
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stop_requested;
    /* Under stop_lock: shutdown has stopped the control endpoint, and
     * none may be installed now. */
    bool control_closed;
    uint32_t slow_handler_ms; /* gr_config's. */
    /* A node process's root actor (under stop_lock). */
    gr_ref node_root;
};

/* Calls fn on every live actor of sys, pinned for the call (so it cannot
 * be freed meanwhile), with its ref. Any thread. O(actors). */
void gr__each_live_actor(gr_system *sys,
                         void (*fn)(gr__actor *a, gr_ref ref, void *arg),
                         void *arg);

/* Checks a payload argument pair and its size: GR_OK, GR_EINVAL (data NULL
 * with len > 0 or the reverse) or GR_EMSGSIZE. Inline: every send and ask
 * calls it. */
static inline int gr__check_payload(const gr_system *sys, const void *data,
                                    size_t len)
{
    if ((data == NULL) != (len == 0))
        return GR_EINVAL;
    return len > sys->max_payload ? GR_EMSGSIZE : GR_OK;
}

#endif
