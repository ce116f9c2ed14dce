/*
 * The transport core: creating it, routes to nodes, the remote-send hook,
 * adding and forgetting links, and shutdown (see transport.h). The read
 * side is in reader.c, node processes in process.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "actor/runtime.h"
#include "transport/forkserver.h"
#include "transport/transport.h"

/* Default bytes of application frames a link queues. */
#define DEFAULT_LINK_BUFFER ((size_t)8 << 20)

static void t_shutdown(void *tp);

static bool t_node_name(void *tp, uint32_t node, char *buf, size_t size,
                        uint32_t *inc);

static const gr__remote_ops ops = {gr__transport_send, gr__transport_send_name,
                                   t_shutdown, gr__link_flush_pending,
                                   t_node_name};

static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

gr__transport *gr__transport_of(gr_system *sys)
{
    gr__transport *t = gr__remote_get(sys);
    if (t != NULL)
        return t;
    pthread_mutex_lock(&create_lock);
    t = gr__remote_get(sys);
    if (t == NULL && (t = calloc(1, sizeof *t)) != NULL) {
        t->sys = sys;
        pthread_rwlock_init(&t->lock, NULL);
        pthread_mutex_init(&t->news, NULL);
        pthread_mutex_init(&t->tpl_lock, NULL);
        const char *fs = getenv(GR__FORK_SERVER_ENV);
        t->fork_server_off = fs != NULL && strcmp(fs, "0") == 0;
        if (fs != NULL && !t->fork_server_off && strcmp(fs, "1") != 0)
            gr__log(gr__system_log(sys), GR_LOG_WARN,
                    "%s=%s: not 0 or 1; the fork server stays on",
                    GR__FORK_SERVER_ENV, fs);
        /* gr_config's limits; 0 takes the default. */
        t->link_limit = gr__system_link_buffer(sys);
        if (t->link_limit == 0)
            t->link_limit = DEFAULT_LINK_BUFFER;
        t->max_frame = gr__system_max_frame(sys);
        if (t->max_frame == 0)
            t->max_frame = gr__system_max_payload(sys) + GR__WIRE_PREFIX_MAX;
        if (t->max_frame > UINT32_MAX)
            t->max_frame = UINT32_MAX;
        if (gr__random_bytes(t->secret, sizeof t->secret) != GR_OK) {
            pthread_rwlock_destroy(&t->lock);
            pthread_mutex_destroy(&t->news);
            pthread_mutex_destroy(&t->tpl_lock);
            free(t);
            t = NULL;
        } else {
            gr__remote_install(sys, &ops, t);
        }
    }
    pthread_mutex_unlock(&create_lock);
    return t;
}

/* The route to node, or NULL; the route lock is held. */
static gr__route *find_route(gr__transport *t, uint32_t node)
{
    for (size_t i = 0; i < t->nroutes; i++)
        if (t->routes[i].node == node)
            return &t->routes[i];
    return NULL;
}

/* The remote ops' node_name: from the routes. */
static bool t_node_name(void *tp, uint32_t node, char *buf, size_t size,
                        uint32_t *inc)
{
    gr__transport *t = tp;
    pthread_rwlock_rdlock(&t->lock);
    const gr__route *r = find_route(t, node);
    if (r != NULL) {
        snprintf(buf, size, "%s", r->name);
        *inc = r->inc;
    }
    pthread_rwlock_unlock(&t->lock);
    return r != NULL;
}

bool gr__transport_routes_view(gr__transport *t, uint32_t node, size_t *nroutes,
                               uint64_t *version)
{
    pthread_rwlock_rdlock(&t->lock);
    bool has =
        node == gr__system_node_id(t->sys) || find_route(t, node) != NULL;
    *nroutes = t->nroutes;
    *version = gr__transport_routes_version(t);
    pthread_rwlock_unlock(&t->lock);
    return has;
}

bool gr__transport_has_node(gr__transport *t, uint32_t node)
{
    size_t nroutes;
    uint64_t version;
    return gr__transport_routes_view(t, node, &nroutes, &version);
}

/* Whether incarnation inc of node (inc 0: any) is known to be down; the
 * route lock is held. */
static bool is_dead(const gr__transport *t, uint32_t node, uint32_t inc)
{
    for (size_t i = 0; i < GR__TOMBSTONES; i++)
        if (t->dead[i].node == node && t->dead[i].inc != 0 &&
            (inc == 0 || t->dead[i].inc == inc))
            return true;
    return false;
}

/* Remembers that incarnation inc of node is down; write lock held. */
static void bury(gr__transport *t, uint32_t node, uint32_t inc)
{
    t->dead[t->dead_next] = (gr__tombstone){node, inc};
    t->dead_next = (t->dead_next + 1) % GR__TOMBSTONES;
}

/* Forgets node's deaths: it is up again; write lock held. */
static void unbury(gr__transport *t, uint32_t node)
{
    for (size_t i = 0; i < GR__TOMBSTONES; i++)
        if (t->dead[i].node == node)
            t->dead[i] = (gr__tombstone){0, 0};
}

/* The link a frame for incarnation inc of node leaves by: its route's, or
 * the parent's for a node not heard of; NULL when it cannot be reached (a
 * stale incarnation, a node known to be down, or the way back: except,
 * the link the frame came in by, which would start a loop). The route
 * lock is held. */
static gr__link *link_to(gr__transport *t, uint32_t node, uint32_t inc,
                         const gr__link *except)
{
    const gr__route *r = find_route(t, node);
    gr__link *l;
    if (r != NULL)
        l = inc == 0 || r->inc == inc ? r->via : NULL;
    else
        l = is_dead(t, node, inc) ? NULL : t->parent;
    return l != except ? l : NULL;
}

/* A send (to name, when not NULL) the transport could not take: its dead
 * letter and result. */
static int refused(gr__transport *t, const gr_msg *m, const char *name, int rc)
{
    if (m->type < GR_MSG_RESERVED && rc != GR_EMSGSIZE)
        gr__dead_message_named(t->sys, m, name, name ? strlen(name) : 0,
                               rc == GR_EBACKPRESSURE ? GR_DL_BACKPRESSURE
                                                      : GR_DL_NODE_DOWN,
                               &(gr_reason){.code = rc});
    return rc;
}

/* Sends a frame by the route to node (inc 0: any incarnation), never back
 * by except. */
static int route_frame(gr__transport *t, uint32_t node, uint32_t inc,
                       const uint8_t *prefix, size_t plen, const gr_msg *m,
                       const gr__link *except)
{
    if (plen - GR__WIRE_HEADER + m->len > t->max_frame)
        return GR_EMSGSIZE;
    pthread_rwlock_rdlock(&t->lock);
    gr__link *l = link_to(t, node, inc, except);
    int rc = l != NULL ? gr__link_send(l, prefix, plen, m->data, m->len,
                                       m->type >= GR_MSG_RESERVED)
                       : GR_ENOCONNECTION;
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

int gr__transport_send(void *tp, gr__worker *w, const gr_msg *m)
{
    return gr__transport_forward(tp, w, m, m->to.node, NULL, NULL);
}

int gr__transport_send_name(void *tp, gr__worker *w, uint32_t node,
                            const char *name, const gr_msg *m)
{
    return gr__transport_forward(tp, w, m, node, name, NULL);
}

int gr__transport_forward(gr__transport *t, gr__worker *w, const gr_msg *m,
                          uint32_t node, const char *name, const gr__link *from)
{
    (void)w;
    uint8_t prefix[GR__WIRE_PREFIX_MAX];
    size_t plen;
    uint32_t inc = 0;
    if (name != NULL) {
        plen = gr__wire_named_prefix(prefix, node, name, strlen(name), m);
    } else {
        inc = m->to.incarnation;
        plen = gr__wire_msg_prefix(prefix, m);
    }
    int rc = route_frame(t, node, inc, prefix, plen, m, from);
    if (rc == GR_OK)
        return GR_OK;
    /* A runtime request from another node that cannot go on: answered
     * here as its target's node would be, noconnection. */
    if (from != NULL && m->type >= GR_MSG_RESERVED)
        gr__signal_refused(t->sys, m, GR_ENOCONNECTION);
    return refused(t, m, name, rc);
}

size_t gr__transport_flood(gr__transport *t, const gr__link *except,
                           const void *frame, size_t n)
{
    size_t sent = 0;
    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->nlinks; i++)
        if (t->links[i] != except)
            sent +=
                gr__link_send(t->links[i], frame, n, NULL, 0, true) == GR_OK;
    pthread_rwlock_unlock(&t->lock);
    return sent;
}

/* Sends a route-change frame to every link but `except`. */
static void flood(gr__transport *t, const gr__link *except, uint8_t kind,
                  uint32_t node, uint32_t inc, const char *name)
{
    uint8_t frame[GR__WIRE_PREFIX_MAX];
    size_t n = gr__wire_node_frame(frame, kind, node, inc, name);
    gr__transport_flood(t, except, frame, n);
}

/* Tells a new child link of this node and of every node known here, so
 * that every node knows every other (for routes and lookups). */
static void send_routes(gr__transport *t, gr__link *l)
{
    gr_system *sys = t->sys;
    uint8_t frame[GR__WIRE_PREFIX_MAX];
    size_t n = gr__wire_node_frame(
        frame, GR__WIRE_NODE_UP, gr__system_node_id(sys),
        gr__system_incarnation(sys), gr__system_node_name(sys));
    pthread_rwlock_rdlock(&t->lock);
    (void)gr__link_send(l, frame, n, NULL, 0, true);
    for (size_t i = 0; i < t->nroutes; i++) {
        const gr__route *r = &t->routes[i];
        if (r->via == l)
            continue;
        n = gr__wire_node_frame(frame, GR__WIRE_NODE_UP, r->node, r->inc,
                                r->name);
        (void)gr__link_send(l, frame, n, NULL, 0, true);
    }
    pthread_rwlock_unlock(&t->lock);
}

/* Notes that the routes changed; the route lock is held for writing. */
static void routes_changed(gr__transport *t)
{
    /* relaxed: readers look again after a wait; the lock orders the
     * routes themselves. */
    atomic_fetch_add_explicit(&t->routes_version, 1, memory_order_relaxed);
}

uint64_t gr__transport_routes_version(gr__transport *t)
{
    return atomic_load_explicit(&t->routes_version, memory_order_relaxed);
}

/* Adds a route; the route lock is held for writing. */
static int add_route(gr__transport *t, uint32_t node, uint32_t inc,
                     const char *name, gr__link *via)
{
    if (t->nroutes == t->routes_cap) {
        size_t cap = t->routes_cap ? t->routes_cap * 2 : 8;
        gr__route *v = realloc(t->routes, cap * sizeof *v);
        if (v == NULL)
            return GR_ENOMEM;
        t->routes = v;
        t->routes_cap = cap;
    }
    gr__route *r = &t->routes[t->nroutes++];
    *r = (gr__route){.node = node, .inc = inc, .via = via};
    routes_changed(t);
    snprintf(r->name, sizeof r->name, "%s", name);
    return GR_OK;
}

bool gr__transport_route_up(gr__link *l, uint32_t node, uint32_t inc,
                            const char *name)
{
    gr__transport *t = l->t;
    pthread_mutex_lock(&t->news);
    pthread_rwlock_wrlock(&t->lock);
    gr__route *r = find_route(t, node);
    int rc = GR_OK;
    unbury(t, node);
    if (r == NULL) {
        rc = add_route(t, node, inc, name, l);
    } else if (r->via == l) { /* Newer news through the same way. */
        if (r->inc != inc)
            routes_changed(t);
        r->inc = inc;
        snprintf(r->name, sizeof r->name, "%s", name);
    }
    pthread_rwlock_unlock(&t->lock);
    bool added = rc == GR_OK && r == NULL;
    if (added)
        flood(t, l, GR__WIRE_NODE_UP, node, inc, name);
    pthread_mutex_unlock(&t->news);
    return added;
}

bool gr__transport_route_down(gr__link *l, uint32_t node, uint32_t inc)
{
    gr__transport *t = l->t;
    pthread_mutex_lock(&t->news);
    pthread_rwlock_wrlock(&t->lock);
    gr__route *r = find_route(t, node);
    bool gone = r != NULL && r->via == l && r->inc == inc;
    if (gone) {
        bury(t, node, inc);
        *r = t->routes[--t->nroutes];
        routes_changed(t);
    }
    pthread_rwlock_unlock(&t->lock);
    if (gone) {
        gr__broadcast_node_down(t->sys, node, inc);
        flood(t, l, GR__WIRE_NODE_DOWN, node, inc, NULL);
    }
    pthread_mutex_unlock(&t->news);
    return gone;
}

/* Removes l from the transport's links and drops the transport's
 * reference. */
void gr__transport_forget(gr__link *l)
{
    gr__transport *t = l->t;
    pthread_rwlock_wrlock(&t->lock);
    for (size_t i = 0; i < t->nlinks; i++)
        if (t->links[i] == l) {
            t->links[i] = t->links[--t->nlinks];
            break;
        }
    if (t->parent == l)
        t->parent = NULL;
    pthread_rwlock_unlock(&t->lock);
    gr__link_release(l);
}

/* Loop thread: starts watching a link that gr__transport_add() added. */
static void start_link(void *arg)
{
    gr__link *l = arg;
    gr__link_start_reading(l);
    if (l->pid > 0)
        gr__process_watch(l);
    gr__link_release(l); /* gr__transport_add's reference for this job. */
}

int gr__transport_add(gr__transport *t, gr__link *l)
{
    gr_system *sys = t->sys;
    pthread_mutex_lock(&t->news);
    pthread_rwlock_wrlock(&t->lock);
    int rc = GR_OK;
    if (l->node == gr__system_node_id(sys) || find_route(t, l->node) != NULL)
        rc = GR_EEXIST;
    if (rc == GR_OK && t->nlinks == t->links_cap) {
        size_t cap = t->links_cap ? t->links_cap * 2 : 4;
        gr__link **v = realloc(t->links, cap * sizeof *v);
        if (v == NULL)
            rc = GR_ENOMEM;
        else {
            t->links = v;
            t->links_cap = cap;
        }
    }
    if (rc == GR_OK)
        rc = add_route(t, l->node, l->inc, l->name, l);
    if (rc == GR_OK) {
        t->links[t->nlinks++] = l;
        if (l->is_parent)
            t->parent = l;
    }
    pthread_rwlock_unlock(&t->lock);
    if (rc == GR_OK && !l->is_parent) {
        flood(t, l, GR__WIRE_NODE_UP, l->node, l->inc, l->name);
        send_routes(t, l);
    }
    pthread_mutex_unlock(&t->news);
    if (rc != GR_OK)
        return rc;
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    if (gr__io_call(gr__system_io(sys), start_link, l) != GR_OK)
        atomic_fetch_sub_explicit(&l->refs, 1, memory_order_relaxed);
    return GR_OK;
}

void gr__transport_lose_routes(gr__link *l)
{
    gr__transport *t = l->t;
    gr_system *sys = t->sys;
    pthread_mutex_lock(&t->news);
    for (;;) {
        /* In batches, so no allocation can fail halfway. */
        gr__route lost[16];
        size_t nlost = 0;
        pthread_rwlock_wrlock(&t->lock);
        for (size_t i = 0; i < t->nroutes && nlost < 16;) {
            if (t->routes[i].via == l) {
                bury(t, t->routes[i].node, t->routes[i].inc);
                lost[nlost++] = t->routes[i];
                t->routes[i] = t->routes[--t->nroutes];
                routes_changed(t);
            } else {
                i++;
            }
        }
        pthread_rwlock_unlock(&t->lock);
        if (nlost == 0)
            break;
        for (size_t i = 0; i < nlost; i++) {
            /* Debug: its parent's supervisor logs the crash itself. */
            gr__log(gr__system_log(sys), GR_LOG_DEBUG,
                    "node %s is down: its routes are gone", lost[i].name);
            gr__broadcast_node_down(sys, lost[i].node, lost[i].inc);
            flood(t, l, GR__WIRE_NODE_DOWN, lost[i].node, lost[i].inc, NULL);
        }
    }
    pthread_mutex_unlock(&t->news);
}

/* ---- Shutdown. */

static void t_shutdown(void *tp)
{
    gr__transport *t = tp;
    /* The loop has stopped and every actor has exited: no other thread
     * touches the transport now. */
    for (size_t i = 0; i < t->nlinks; i++) {
        gr__link *l = t->links[i];
        if (l->pid > 0 && !l->reaped) {
            kill(l->pid, SIGKILL);
            int status;
            while (waitpid(l->pid, &status, 0) < 0 && errno == EINTR)
                ;
            l->reaped = true;
        }
        gr__link_release(l);
    }
    gr__forkserver_shutdown(t);
    free(t->links);
    free(t->routes);
    pthread_rwlock_destroy(&t->lock);
    pthread_mutex_destroy(&t->news);
    free(t);
}
