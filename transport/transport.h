/*
 * A system's transport: its links to other nodes (the parent, and the
 * nodes it started), the routes to every node it has heard of, and the
 * node processes it watches. Installed into the system through
 * actor/remote.h, created with the first node child (or by gr_node_main in
 * a node process).
 *
 * Threads: senders (any thread) take the route lock for reading and a
 * link's lock to queue a frame; the I/O thread reads every link, applies
 * route changes (taking the route lock for writing) and reaps node
 * processes.
 */
#ifndef GROVE_TRANSPORT_TRANSPORT_H
#define GROVE_TRANSPORT_TRANSPORT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include <ev.h>

#include <grove/node.h>

#include "actor/runtime.h"
#include "transport/ring.h"
#include "transport/wire.h"

/* Message to a node child's stand-in when its process is gone (payload:
 * gr__node_exit). */
#define GR__MSG_NODE_EXITED (GR_MSG_RESERVED + 0x40u)

/* The answer to a WHEREIS query (payload: gr__whereis_answer; corr: the
 * query's). */
#define GR__MSG_WHEREIS_ANSWER (GR_MSG_RESERVED + 0x41u)

/* What one node answers to a WHEREIS. */
typedef struct gr__whereis_answer {
    int32_t found;
    uint32_t reserved;
    gr_ref ref;
} gr__whereis_answer;

/* How a node process ended, as its stand-in learns it. */
typedef struct gr__node_exit {
    gr_reason reason; /* normal, {exit status, N}, {signal, N} or a
                         protocol error. */
} gr__node_exit;

typedef struct gr__transport gr__transport;

/* The most node programs (distinct exe + argv) a system keeps a fork
 * server template for; nodes of any further program start by fork +
 * exec. */
#define GR__TEMPLATES_MAX 16

typedef struct gr__template gr__template;

/* One connection to a neighbouring node. */
typedef struct gr__link {
    gr__transport *t;
    int fd;
    uint32_t node, inc; /* The node at the other end. */
    char name[GR_NAME_MAX + 1];
    bool is_parent;
    _Atomic(int) refs; /* The transport's, and a node child's stand-in's. */

    /* Outbound: guarded by lock. The ring holds the frames the peer has
     * not confirmed yet: written ones first (sent bytes, the last perhaps
     * in part), then the ones still to write. An ACK from the peer drops
     * the frames it took; what is left when the link goes down becomes
     * dead letters. */
    pthread_mutex_t lock;
    gr__ring out;
    size_t sent;       /* Bytes at the ring's front already written. */
    size_t frame_left; /* Bytes of the frame at sent still to write... */
    size_t frame_len;  /* ...of its length. */
    uint64_t acked;    /* Frames the peer has confirmed, all told. */
    uint64_t written;  /* Frames wholly written, all told. */
    uint64_t dropped;  /* Bytes dropped from the ring's front, all told. */
    /* Where recent writes ended, so an ACK drops the frames it confirms
     * in one step: after `frames` frames, at byte `at` of all ever queued
     * (a short FIFO; when full, its newest entry moves on). */
    struct gr__link_mark {
        uint64_t frames, at;
    } marks[16];
    unsigned mark_head, nmarks;
    uint8_t ack[GR__WIRE_ACK_MAX]; /* The ACK being written... */
    size_t ack_len, ack_off;       /* ...its length and bytes written. */
    uint64_t ack_sent;             /* The count the last ACK begun carries. */
    /* Frames taken from the peer (ACKs not counted), stored by the read
     * side as it takes each: any write on this link carries an ACK for
     * them ahead of its frames, when one is due. */
    _Atomic(uint64_t) rx_count;
    bool flushing; /* Bytes wait for the I/O thread's write watcher. */
    bool corked;   /* Queue only: the handshake is not finished. */
    bool deferred; /* A worker writes it when its turn is over. */
    bool closed;   /* No more sends (the link is down or going). */

    /* Loop thread only. */
    ev_io rio, wio;
    uint8_t *in;
    size_t in_len, in_cap;
    bool down;          /* Link-down handling done. */
    size_t rx_unacked;  /* Bytes of frames taken since an ACK was asked. */
    ev_timer ack_timer; /* Asks for the ACK on a quiet link. */

    /* A node child's process (pid 0 for none). reaped and the kill are
     * guarded by lock, so a pid is never signalled after it was reaped. */
    pid_t pid;
    int pidfd;
    ev_io pio;
    ev_timer grace; /* After EOF: SIGKILL if the process lingers. */
    bool reaped;
    bool kill_sent;
    gr_ref proxy;    /* The stand-in told when the process is gone. */
    bool supervised; /* The stand-in's supervisor reports the node's exits
                        and starts: its node events are flagged so. */
    char error[GR_REASON_TEXT_MAX + 1]; /* A protocol error, or "". */
} gr__link;

/* A node this one can reach, and through which link. */
typedef struct gr__route {
    uint32_t node, inc;
    char name[GR_NAME_MAX + 1];
    gr__link *via;
} gr__route;

/* How many down nodes a transport remembers, so that sends to them fail at
 * once rather than travel towards the root. */
#define GR__TOMBSTONES 32

/* A node incarnation known to be down. */
typedef struct gr__tombstone {
    uint32_t node, inc;
} gr__tombstone;

struct gr__transport {
    gr_system *sys;
    pthread_rwlock_t lock; /* routes, links, parent. */
    /* Held across a route change and the news of it sent on: changes
     * leave in the order they were made (taken before lock). */
    pthread_mutex_t news;
    gr__route *routes;
    size_t nroutes, routes_cap;
    /* Moves on whenever a route comes, goes or changes incarnation
     * (written under lock; read by whoever waits on the routes). */
    _Atomic(uint64_t) routes_version;
    gr__link **links;
    size_t nlinks, links_cap;
    gr__link *parent;                   /* NULL in the root. */
    gr__tombstone dead[GR__TOMBSTONES]; /* Under lock; a ring. */
    size_t dead_next;
    uint8_t secret[GR__WIRE_SECRET];
    size_t max_frame;  /* Largest frame body accepted or sent. */
    size_t link_limit; /* Bytes of application frames a link queues. */
    /* In a node: its exit status, set to 1 when the link to its parent
     * fails with a protocol error (node_main.c owns it). */
    _Atomic(int) *node_exit;
    /* The fork server's templates, one per node program (forkserver.c):
     * tpl_lock guards the table, each template has a lock of its own. */
    pthread_mutex_t tpl_lock;
    struct gr__template *tpls[GR__TEMPLATES_MAX];
    size_t ntpls;
    bool fork_server_off; /* GROVE_NODE_FORK_SERVER=0 when created. */
};

/* Sends m by the route to its target's node: the remote-send hook. Returns
 * GR_OK or an error, the message then dead-lettered (see remote.h). */
int gr__transport_send(void *t, struct gr__worker *w, const gr_msg *m);

/* Sends m to name on node, as gr__transport_send(). */
int gr__transport_send_name(void *t, struct gr__worker *w, uint32_t node,
                            const char *name, const gr_msg *m);

/* Sends m (to name on node when name is set, else to m->to) on its way;
 * from is the link it arrived by (NULL for a local send), which it never
 * goes back by. A runtime request from another node that cannot go on
 * is answered with noconnection. Returns as gr__transport_send(). */
int gr__transport_forward(gr__transport *t, struct gr__worker *w,
                          const gr_msg *m, uint32_t node, const char *name,
                          const gr__link *from);

/* A NODE_UP arrived on l: records the route (and passes the news on to
 * the other links) unless one to that node exists. Returns true when the
 * route is new. */
bool gr__transport_route_up(gr__link *l, uint32_t node, uint32_t inc,
                            const char *name);

/* A NODE_DOWN arrived on l: when l is the route to that incarnation, drops
 * it, tells every local actor and passes the news on. Returns true then. */
bool gr__transport_route_down(gr__link *l, uint32_t node, uint32_t inc);

/* Removes l from the transport's links and drops the transport's
 * reference. */
void gr__transport_forget(gr__link *l);

/* Loop thread (reader.c): starts reading l; reads everything l still has
 * and then takes it down; takes it down (error: a protocol error, or NULL
 * for EOF or a socket error), which drops every route through it. */
void gr__link_start_reading(gr__link *l);
void gr__link_drain(gr__link *l);
void gr__link_down(gr__link *l, const char *error);

/* Loop thread (process.c): watches a node child's process; and deals with
 * its process when its link went down (killing it after a protocol
 * error). */
void gr__process_watch(gr__link *l);
void gr__process_link_down(gr__link *l, bool protocol_error);

/* Returns sys's transport, creating and installing it on first use (NULL
 * when out of memory). */
gr__transport *gr__transport_of(gr_system *sys);

/* Creates a link over fd (nonblocking, close-on-exec) to node/inc/name;
 * refs start at 1 (the transport's). NULL when out of memory. */
gr__link *gr__link_new(gr__transport *t, int fd, uint32_t node, uint32_t inc,
                       const char *name);

/* Drops one reference; the last frees the link (its fd is closed by then). */
void gr__link_release(gr__link *l);

/* Queues one frame: prefix bytes then payload bytes. runtime frames (route
 * changes, runtime messages) may use the slack above link_limit. Returns
 * GR_OK, GR_ENOCONNECTION (closed) or GR_EBACKPRESSURE (no room). */
int gr__link_send(gr__link *l, const void *prefix, size_t plen,
                  const void *payload, size_t n, bool runtime);

/* Moves l's queued frames (whole ones only) into *out, leaving l's ring
 * empty; the caller destroys *out. */
void gr__link_take_queued(gr__link *l, gr__ring *out);

/* Writes everything queued on l now, blocking up to deadline_ns; for when
 * the loop has stopped. Returns GR_OK, GR_ETIMEDOUT or GR_ESYS. */
int gr__link_flush_blocking(gr__link *l, uint64_t deadline_ns);

/* Has l tell its peer now how many of its frames were taken (rx_count),
 * if it has not yet: an ACK written ahead of the queued frames. Any
 * thread. */
void gr__link_send_ack(gr__link *l);

/* The peer took count of l's frames (cumulative): drops the ones newly
 * confirmed from the ring. Returns NULL, or a protocol error when count
 * goes backwards or past the frames written. */
const char *gr__link_acked(gr__link *l, uint64_t count);

/* Writes the frames this worker thread's turns queued (the remote ops'
 * flush). */
void gr__link_flush_pending(void *t);

/* Ends the cork: flushes what was queued during the handshake. */
void gr__link_uncork(gr__link *l);

/*
 * Adds a link the handshake has just opened: its route (and, for a node
 * child, the routes it announces later), its watchers on the loop thread,
 * and a NODE_UP to every other link. Returns GR_OK, GR_EEXIST (a node with
 * its id is connected already) or GR_ENOMEM.
 */
int gr__transport_add(gr__transport *t, gr__link *l);

/* Drops every route through l: each node behind it is down (a local
 * GR__MSG_NODE_DOWN broadcast, and a NODE_DOWN to the other links). From
 * any thread; a second call finds nothing to drop. */
void gr__transport_lose_routes(gr__link *l);

/* Whether node is this one or one this one can reach. */
bool gr__transport_has_node(gr__transport *t, uint32_t node);

/* The routes' version (see gr__transport.routes_version). Any thread. */
uint64_t gr__transport_routes_version(gr__transport *t);

/* Whether node is this one or one this one can reach, with the number of
 * routes and their version, all read at one moment (a node may go down
 * between two separate reads). Any thread. */
bool gr__transport_routes_view(gr__transport *t, uint32_t node, size_t *nroutes,
                               uint64_t *version);

/* Sends a whole frame on every link but except (may be NULL); returns on
 * how many it was queued. From any thread. */
size_t gr__transport_flood(gr__transport *t, const gr__link *except,
                           const void *frame, size_t n);

/* Sends a SHUTDOWN frame on a node child's link. */
void gr__transport_request_stop(gr__link *l);

/* SIGKILLs a node child's process unless it was reaped already. */
void gr__transport_kill(gr__link *l);

/* At system shutdown, from a stand-in's terminate (the loop has stopped):
 * asks the node to stop, waits up to wait_ms for it to exit, then kills
 * it, and reaps it. */
void gr__transport_stop_blocking(gr__link *l, int wait_ms);

/* Writes all n bytes to a blocking-mode or nonblocking fd, waiting up to
 * deadline_ns (CLOCK_MONOTONIC) in poll. Returns GR_OK, GR_ETIMEDOUT or
 * GR_ESYS. */
int gr__write_all(int fd, const void *p, size_t n, uint64_t deadline_ns);

/* Reads exactly n bytes, as gr__write_all(); GR_ENOCONNECTION at EOF. */
int gr__read_all(int fd, void *p, size_t n, uint64_t deadline_ns);

/* Waits until fd is ready for events (poll's) or the deadline passes.
 * Returns GR_OK, GR_ETIMEDOUT or GR_ESYS. */
int gr__wait_fd(int fd, short events, uint64_t deadline_ns);

/* Starts spec's program by fork + exec with fd inherited and named by
 * GROVE_NODE_FD: as a node whose link is fd, or (template) as a fork
 * server template whose control socket is fd. Returns its pid, or -1 with
 * *rc set (GR_ENOMEM, GR_ESYS). From any thread. */
pid_t gr__spawn_exec(const gr_node_spec *spec, int fd, bool template, int *rc);

#endif
