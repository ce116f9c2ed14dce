/*
 * Resources that actors own outside the runtime's own records (sockets,
 * net/): the module that keeps them installs a hook here, once per system,
 * and learns of every actor's exit and of the system's shutdown, so that
 * actor/ never includes from the layer above it.
 */
#ifndef GROVE_ACTOR_OWNED_H
#define GROVE_ACTOR_OWNED_H

#include <grove/actor.h>
#include <grove/system.h>

/* A keeper of owned resources. */
typedef struct gr__owned_ops {
    /* An actor exited: release what it owns. Called on the exiting
     * actor's thread after its ref stopped resolving (gr__ref_alive is
     * false from then on), before it is finalised. */
    void (*owner_exit)(void *t, gr_ref owner);
    /* At shutdown, after every actor has exited and the I/O thread has
     * stopped: free everything left, without touching the loop. */
    void (*shutdown)(void *t);
    /* Adds the keeper's counters to a gr_system_stats() snapshot. */
    void (*stats)(void *t, gr_stats *out);
} gr__owned_ops;

/*
 * Returns the system's keeper state, installing it on first use: make(sys)
 * builds it (NULL: out of memory, and nothing is installed). Any thread;
 * concurrent first uses install one.
 */
void *gr__owned_get(gr_system *sys, const gr__owned_ops *ops,
                    void *(*make)(gr_system *sys));

#endif
