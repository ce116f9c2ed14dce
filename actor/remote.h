/*
 * What actor/ knows of other nodes: a node's id and name, and the hook a
 * transport installs so that sends to actors on other nodes reach it
 * without actor/ including from transport/.
 */
#ifndef GROVE_ACTOR_REMOTE_H
#define GROVE_ACTOR_REMOTE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <grove/actor.h>

struct gr__worker;

/* The environment variable that names the link's descriptor in a node
 * process; gr_node_main() reads and removes it. */
#define GR__NODE_FD_ENV "GROVE_NODE_FD"

/* The name and id of a system's root process. */
#define GR__ROOT_NODE_NAME "root"
#define GR__ROOT_NODE_ID   0u

/* A transport's entry points, installed once per system. */
typedef struct gr__remote_ops {
    /* Sends m, whose m->to is on another node (or on an earlier
     * incarnation of this one). Returns GR_OK, GR_ENOCONNECTION (a
     * node_down dead letter), GR_EBACKPRESSURE (a backpressure dead
     * letter), GR_EMSGSIZE or GR_ENOMEM. */
    int (*send)(void *t, struct gr__worker *w, const gr_msg *m);
    /* Sends m to the actor registered as name on node; as send(). */
    int (*send_name)(void *t, struct gr__worker *w, uint32_t node,
                     const char *name, const gr_msg *m);
    /* At shutdown, after every actor has exited: closes every link and
     * reaps every node process. */
    void (*shutdown)(void *t);
    /* On a worker, between turns: writes the frames this thread's turns
     * queued (see gr__remote_pending). */
    void (*flush)(void *t);
    /* Copies the name of node into buf (size bytes) and stores its
     * current incarnation in *inc; false when this node does not know it.
     * Any thread. */
    bool (*node_name)(void *t, uint32_t node, char *buf, size_t size,
                      uint32_t *inc);
} gr__remote_ops;

/*
 * Returns the node id of a node name: 0 for the root, otherwise the name's
 * 32-bit FNV-1a hash (never 0). Two names with one id cannot both join a
 * system (the second is refused at its start).
 */
static inline uint32_t gr__node_id(const char *name, size_t len)
{
    if (len == sizeof GR__ROOT_NODE_NAME - 1 &&
        memcmp(name, GR__ROOT_NODE_NAME, len) == 0)
        return GR__ROOT_NODE_ID;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)name[i]) * 16777619u;
    return h != GR__ROOT_NODE_ID ? h : 1u;
}

/* Set on a worker thread when its turns queued frames on links that are
 * to be written after the turn (so a turn's sends leave in one write);
 * the worker calls the transport's flush before it looks for work. */
extern _Thread_local bool gr__remote_pending;

/*
 * Splits "name" or "name@node": copies the name into local (GR_NAME_MAX + 1
 * bytes) and points *node at the node's name (NULL without '@'). Returns
 * GR_OK, GR_EINVAL (an empty part) or GR_ENAMETOOLONG.
 */
int gr__split_name(const char *name, char *local, const char **node);

/* Installs a transport's hook; t is passed to every op. Once per system,
 * before any ref to another node exists in it. */
void gr__remote_install(gr_system *sys, const gr__remote_ops *ops, void *t);

/* Returns the installed transport (NULL for none). */
void *gr__remote_get(gr_system *sys);

/* Sets this system's node identity; before anything is spawned. */
void gr__system_set_node(gr_system *sys, const char *name, uint32_t id,
                         uint32_t incarnation);

/* Tells every live actor that incarnation inc of node is gone (a
 * GR__MSG_NODE_DOWN each); they fire their links, monitors and asks to
 * it with reason noconnection. From any thread. */
void gr__broadcast_node_down(gr_system *sys, uint32_t node, uint32_t inc);

/* Payload of GR__MSG_NODE_DOWN. */
typedef struct gr__node_down {
    uint32_t node;
    uint32_t incarnation;
} gr__node_down;

#endif
