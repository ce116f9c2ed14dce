/*
 * Erlang distribution inside the runtime (include/grove/dist.h).
 *
 * One gr__dist per root system with gr_config.dist.node_name set. Its
 * thread owns every connection once it is up: it reads, and writes what
 * senders queued; the connector thread (connect.c) makes connections,
 * both ways, handshakes included, and hands them over. Senders (any thread)
 * encode their message into an Erlang term at once, so a payload that is
 * no term is refused to them, and queue it under the lock; what the queue
 * cannot take is backpressure, as on a node link.
 *
 * Erlang pids and Grove refs map one to one: a pid on node N is the ref
 * {serial = pid.serial << 32 | pid.num, node = gr__node_id(N),
 * incarnation = pid.creation}; this system's own actors are pids on its
 * node name with the same split of their serial.
 */
#ifndef GROVE_DIST_DIST_H
#define GROVE_DIST_DIST_H

#include <ei.h>
#include <msgpack.h>
#include <pthread.h>
#include <sys/uio.h>
#include <stdbool.h>
#include <stdint.h>

#include <grove/dist.h>

#include "actor/runtime.h"

/* Deepest nesting of tuples, lists and maps received or converted either
 * way: a container inside DIST_DEPTH_MAX others is refused (msgpack-c
 * unpacks no deeper). */
#define DIST_DEPTH_MAX 32

/* Connector threads (connect.c): started at first, and the most that
 * make connects and accepts at once (more start while every one is busy:
 * as many as incoming handshakes may wait, ACCEPTS_MAX, and a few for
 * connects). */
#define GR__CONNECTORS_START 2
#define GR__CONNECTORS_MAX   72

/* An Erlang node this system has heard of: its id and name. */
typedef struct dist_node {
    uint32_t id;
    uint32_t creation;  /* Of the last pid seen from it; 0: none seen. */
    size_t queued;      /* Bytes of jobs for it not yet taken to send. */
    uint64_t failed_ns; /* When a connect to it last failed; 0: it did not. */
    /* One connection per node (see gr__dist_status_for): a connect of
     * this node's to it is under way; a handshake of its connection to
     * this node was answered ok and is not over (so this node does not
     * connect meanwhile); the creation it had when this node's own
     * connection to it came up (0: none is up). */
    bool connecting;
    unsigned accepting; /* Handshakes from it answered ok, not over. */
    uint32_t own_creation;
    uint64_t own_since_ns; /* When own_creation was set. */
    int own_fd;            /* That connection's socket (closed only once this is
                              cleared, under lock), or -1. */
    char name[MAXATOMLEN_UTF8];
} dist_node;

/* A gen_server:call from Erlang waiting for its gr_reply, under the corr
 * the request carried: the caller's pid and its tag, encoded as they go
 * back (term: the version byte, the pid, then the tag from tag_at). Kept
 * oldest first, and by corr (gr__dist.calls_by_corr). */
typedef struct dist_call {
    struct dist_call *prev, *next;
    uint64_t corr;
    uint64_t since_ns;
    int tag_at;
    ei_x_buff term;
} dist_call;

/* An encoded message waiting for the thread to send it. */
typedef struct dist_job {
    struct dist_job *next;
    uint32_t node; /* The node it goes to (its id). */
    char *name;    /* The registered name it goes to (owned), or NULL. */
    gr_msg msg;    /* What it was, for a dead letter (data NULL). */
    bool ctl;      /* A control message of its own (else a message). */
    bool quiet;    /* The protocol's own frame (a tick, an answer to a
                      peer's signal): nobody hears if it is lost. */
    ei_x_buff x;   /* The whole frame, as it goes on the wire. */
} dist_job;

/* A connect for the connector to make, or an accept for it to take
 * (connect.c), and then what came of it. */
typedef struct dist_dial {
    struct dist_dial *next;
    bool accept; /* Take the handshake of a connection accepted. */
    bool cut;    /* Cut short by the thread (gr__connector_cut). */
    /* A simultaneous connect resolved (gr__dist_status_for): the peer
     * answered this connect "nok", or this accept was answered so. */
    bool nok;
    bool counted;      /* An accept whose ok counted (gr__dist_status_for). */
    uint32_t creation; /* The peer's, from its handshake; 0: not said. */
    uint32_t id;       /* The node's (a connect). */
    int fd;            /* Accepted (asked), then the connection made, or -1. */
    int error;         /* erl_errno when fd is -1. */
    /* While its handshake runs: on the shaking list (guarded by lock),
     * holding the accepted socket open (held) while ei has a duplicate,
     * so that a cut never reaches a descriptor reused meanwhile. */
    struct dist_dial *shaking_next;
    int held;
    char node[MAXATOMLEN_UTF8];
} dist_dial;

/* Jobs for a node being connected to, waiting for the connection (the
 * thread's alone). */
typedef struct dist_park {
    uint32_t id;
    /* 0 while the connect is under way; once the node has answered it
     * "nok" (it connects to this one at the same moment), until when its
     * connection is waited for. */
    uint64_t wait_until;
    bool redialled;        /* That wait ended in a connect of this node's. */
    dist_job *head, *last; /* (Parks move in the thread's array.) */
    size_t bytes;
} dist_park;

/* A connection to another node; the thread's alone. */
typedef struct dist_conn {
    int fd;
    uint32_t id;           /* The node's. */
    uint32_t creation;     /* The node's, from the handshake; 0: unknown. */
    bool outgoing;         /* Made by this node's connect. */
    uint64_t rx_ns, tx_ns; /* When it last read and wrote. */
    char *rbuf;            /* Read, not yet handed on: [0, rlen). */
    gr_ref held_by; /* An actor whose backlog holds reading back, or none. */
    size_t rlen, rcap;
    /* Frames the socket has not taken yet, oldest first: the thread
     * writes without waiting (a peer that stops reading holds up only
     * its own connection) and goes on when poll says it may. */
    /* Its first and last (no pointer into the struct: connections move
     * in the thread's array as others close). */
    dist_job *out, *out_last;
    size_t out_off;   /* Bytes of out's first frame written. */
    size_t out_bytes; /* Bytes in out not written (counted as queued). */
    uint64_t out_ns;  /* When out last shrank, or filled from empty. */
    bool broken;      /* A write failed: closed at the loop's end. */
    char node[MAXATOMLEN_UTF8];
} dist_conn;

struct gr__dist {
    gr_system *sys;
    ei_cnode ec;
    char cookie[512];
    unsigned timeout_ms;
    size_t max_frame;     /* Largest frame read; a bigger one closes. */
    uint64_t ticktime_ns; /* Silence after which a connection is dead. */
    int listen_fd, wake_fd;
    /* Readable once the connector stops: ends every connect and handshake
     * under way at once (connect.c, socket.c). */
    int cancel_fd;
    int epmd_fd; /* Open while the name is published. */
    pthread_t thread;
    pthread_t connector[GR__CONNECTORS_MAX]; /* connect.c */
    unsigned connectors;      /* Started (d->lock held once the first is). */
    unsigned connectors_idle; /* Guarded by lock: waiting for a dial. */
    unsigned ndials;          /* Guarded by lock: dials not taken yet. */
    pthread_cond_t dial_cond; /* Wakes a connector. */
    uint32_t self_id;         /* gr__node_id of our own node name. */
    /* Guarded by lock: */
    pthread_mutex_t lock;
    bool quit;
    dist_job *jobs, **jobs_tail;
    size_t queue_limit; /* Bytes queued per node (gr_config.link_buffer). */
    dist_node *nodes;
    size_t nnodes, nodes_cap;
    dist_call *calls_old, *calls_new; /* Oldest first. */
    gr__refmap calls_by_corr;
    size_t ncalls;
    gr__refmap mons_by_id;  /* Erlang processes' monitors of our actors, */
    gr__refmap mons_by_ref; /* by id and by reference (see monitor.c). */
    size_t nmons;
    gr__refmap asks_out; /* Monitors of asks to Erlang pids, by corr. */
    dist_dial *dials, **dials_tail; /* Asked of the connector. */
    dist_dial *shaking; /* Accepts whose handshakes run, oldest first. */
    dist_dial *dialed, **dialed_tail; /* Made by it, for the thread. */
    uint64_t next_corr;
    /* The thread's: */
    dist_conn *conns;
    size_t nconns, conns_cap;
    dist_park *parks; /* Jobs waiting for connects asked for. */
    size_t nparks, parks_cap;
    unsigned accepts; /* Accepted connections whose handshakes are asked. */
    gr__accept_rest accept_rest; /* The listener's rest (accept.h). */
};

/* --- dist.c -------------------------------------------------------------- */

/* Remembers node's name under its id, and creation (0: unknown) as its
 * latest; the id. Any thread. */
uint32_t gr__dist_note_node(gr__dist *d, const char *node, uint32_t creation);

/* The ref of pid, noting its node. */
gr_ref gr__dist_ref_of_pid(gr__dist *d, const erlang_pid *pid);

/* Whether name is an Erlang node's "alive@host" (see dist.c). */
bool gr__dist_node_name_ok(const char *name);

/* The ref of pid, a pid of this node. */
gr_ref gr__dist_local_ref(gr__dist *d, const erlang_pid *pid);

/* The pid of ref: false when ref's node is unknown to d. */
bool gr__dist_pid_of_ref(gr__dist *d, gr_ref ref, erlang_pid *out);

/* Whether name is one of the services this node answers for itself
 * (net_kernel, rex: see dist.c), which live as long as it does. */
bool gr__dist_is_service(const char *name);

/* Hands on one message read from connection fd: a send to one of our
 * actors (x: the message, which the reader checked whole), a link or an
 * exit (x: the reason). See dist.c. Returns the actor a send went to (the
 * reader holds the connection back while it is backlogged), else
 * GR_REF_NONE. */
gr_ref gr__dist_on_msg(gr__dist *d, int fd, const erlang_msg *msg,
                       const ei_x_buff *x);

/* Forgets every call from Erlang waiting for a reply (they get none). */
void gr__dist_calls_clear(gr__dist *d);

/* Queues a frame of the protocol's own (a tick's answer, an unlink's
 * acknowledgement, a monitor's refusal or end, a service's answer) on
 * the connection fd, behind what that connection holds, and writes what
 * the socket takes without waiting. The thread's only way of writing to a
 * connection after its handshake, with the messages' own path. False
 * when out of memory, or no connection of the thread's has fd. */
bool gr__dist_queue(gr__dist *d, int fd, const char *frame, size_t len);

/* Frees what connection c holds (its read buffer, the frames it did not
 * write), as the thread does when it closes one. */
void gr__dist_conn_release(dist_conn *c);

/* --- connect.c ------------------------------------------------------------ */

/* Starts the connector threads (at least one). GR_OK or GR_ESYS. */
int gr__connector_start(gr__dist *d);

/* Stops it (d->quit set, or set here): ends the connects and handshakes
 * under way at once (cancel_fd), and closes what it made that nobody
 * took. */
void gr__connector_stop(gr__dist *d);

/* Asks the connector to connect to node (id) or, given accepted >= 0 (a
 * connection the thread accepted on the listener, the connector's from
 * now on), to take its handshake; what comes of it is taken with
 * gr__connector_take after wake_fd wakes the thread. False when out of
 * memory (accepted is then closed). */
bool gr__connector_ask(gr__dist *d, int accepted, uint32_t id,
                       const char *node);

/* The connection the next accept callback on this thread takes instead
 * of accepting one (socket.c), or -1. */
extern _Thread_local int gr__dist_preaccepted;

/* A descriptor whose becoming readable ends every wait of the socket
 * callbacks on this thread with ECANCELED (socket.c), or -1: a connector
 * thread's is its system's cancel_fd. */
extern _Thread_local int gr__dist_cancel_fd;

/* Waits up to tmo ms (EI_SCLBK_INF_TMO: no limit) for fd to be ready
 * for events; 0, ETIMEDOUT, ECANCELED (gr__dist_cancel_fd became
 * readable: the system stops), or the error. (socket.c) */
int gr__dist_wait(int fd, short events, unsigned tmo);

/* Reads (out false) or writes (out true) all n bytes of b on fd, each
 * wait as gr__dist_wait's. 0, EPROTO (the stream ended first) or the
 * error. (socket.c) */
int gr__dist_transfer(int fd, void *b, size_t n, bool out, unsigned tmo);

/* Connects fd to addr (len bytes), waiting up to tmo ms as
 * gr__dist_wait does; fd's blocking mode is left as it was. 0 or the
 * error. (socket.c) */
int gr__dist_connect(int fd, const void *addr, int len, unsigned tmo);

/* --- epmd.c --------------------------------------------------------------- */

/* The port epmd listens on: ERL_EPMD_PORT, else 4369. */
int gr__epmd_port(void);

/* Looks node ("alive@host") up in its host's epmd, each step waiting at
 * most tmo ms and ending when the system stops (gr__dist_wait): its
 * address in *addr and its port in *port. Returns 0, or the error:
 * EHOSTUNREACH (the host does not resolve), ENOENT (epmd does not know
 * it), ETIMEDOUT, ECANCELED, EPROTO or another of connect(2)'s. */
int gr__epmd_lookup(const char *node, unsigned tmo, struct in_addr *addr,
                    int *port);

/* Bytes of a handshake's first packets the socket callbacks keep. */
#define GR__SHAKE_SEEN 600

/* A handshake as the socket callbacks of a connector thread see it
 * (socket.c): the start of what they read, so that the peer's name and
 * creation are known (ei keeps them to itself), and its status. Reset by
 * the connector before each handshake (d NULL: not a connector). */
typedef struct gr__shake_view {
    gr__dist *d;
    bool accepting; /* An accept: its status is decided here. */
    bool counted;   /* Its ok counted in its node's accepting. */
    bool nok;       /* Accept: we answered nok; connect: the peer did. */
    size_t len;
    unsigned char in[GR__SHAKE_SEEN];
} gr__shake_view;
extern _Thread_local gr__shake_view gr__dist_shake;

/* The peer's node name (size bytes) and creation (0: not said) from the
 * handshake this thread has read so far: the name message of an accept,
 * the challenge of a connect. False when it has not come. */
bool gr__shake_peer(const gr__shake_view *v, char *name, size_t size,
                    uint32_t *creation);

/* How this node answers a handshake from peer (its creation given) that
 * it is accepting, Erlang's way, so that two nodes keep one connection:
 * "nok" when this node is connecting to the peer at the same moment and
 * its name is the greater (its connection is to carry both ways), or
 * when its own connection to that incarnation came up less than
 * connect_timeout_ms ago (the peer's connect began before it; an older
 * one the peer must have dropped, and the new one replaces it);
 * "ok_simultaneous" when it is connecting and the peer's name is the
 * greater (the peer answers this node's connect "nok"); else "ok". An ok
 * to a node this system knows is counted in its accepting (*counted):
 * sends to it then wait for that connection rather than connect (for up
 * to connect_timeout_ms, then connect). Nothing is added for a node it
 * does not know: the peer is not authenticated yet. Connector threads;
 * takes d->lock. */
const char *gr__dist_status_for(gr__dist *d, const char *peer,
                                uint32_t creation, bool *counted);

/* Notes that this node's connect to node id is made, the peer being of
 * that creation (0: not said): an accept from it is answered "nok" from
 * now on. Connector threads; takes d->lock. */
void gr__dist_connected(gr__dist *d, uint32_t id, uint32_t creation, int fd);

/* What gr__connector_cut did. */
typedef enum {
    GR__CUT_NONE,    /* Nothing to cut. */
    GR__CUT_DROPPED, /* An accept not begun: closed and forgotten. */
    GR__CUT_PENDING, /* A handshake under way: its socket shut down; it
                        comes back failed, flagged cut. */
} gr__cut;

/* Cuts the oldest accept asked of the connector (waiting, else under
 * way and not cut yet), to make room for a new one; its peer's address
 * goes to who (size bytes). Thread. */
gr__cut gr__connector_cut(gr__dist *d, char *who, size_t size);

/* Takes every finished connect and accept (a list to free). Thread. */
dist_dial *gr__connector_take(gr__dist *d);

/* --- reader.c ------------------------------------------------------------- */

/* Reads what connection c has and hands on every whole message in it
 * (thread). False when c is to close, why saying why. */
bool gr__dist_read(gr__dist *d, dist_conn *c, const char **why);

/* --- term.c -------------------------------------------------------------- */

/* Checks the term at buf[index] (buf holds len bytes) before anything
 * decodes it: every size it declares within len, tuples, lists and maps
 * at most DIST_DEPTH_MAX deep, atoms as Erlang makes them, and no fun
 * (whose layout libei reads unchecked). Returns the index past it, or -1
 * with what is wrong in *why. After it, libei's decoders read only inside
 * the term, and only those (libei reads without a length). */
int gr__term_end(const char *buf, int len, int index, const char **why);

/* Reads the atom at buf[*index] (checked by gr__term_end) as UTF-8 into
 * out, its length (it may hold NULs) in *n, moving *index past it; false
 * when it is no atom. */
bool gr__term_atom(const char *buf, int *index, char out[MAXATOMLEN_UTF8],
                   size_t *n);

/* Packs the term at buf[*index] (buf holds len bytes) as one msgpack
 * object into pk, moving *index past it; the term is checked with
 * gr__term_end first. Returns GR_OK or GR_EINVAL (malformed, or no
 * mapping; what made it so is in why, size bytes). */
int gr__term_to_msgpack(gr__dist *d, const char *buf, int len, int *index,
                        msgpack_packer *pk, char *why, size_t size);

/* Appends the term of msgpack bytes data (len) to x. Returns GR_OK or
 * GR_EINVAL (not exactly one object, or one that does not map). */
int gr__msgpack_to_term(gr__dist *d, const void *data, size_t len,
                        ei_x_buff *x);

/* Appends m's payload as a term to x: the mapped term for GR_MSG_TERM,
 * else {'$grove', Type, Payload}. */
int gr__msg_to_term(gr__dist *d, const gr_msg *m, ei_x_buff *x);

/* An exit reason as Erlang's: normal, killed, kill, shutdown, noproc,
 * noconnection, or {grove, 'GR_E...', <<"text">>}. */
int gr__reason_to_term(const gr_reason *r, ei_x_buff *x);

/* The reason of the term at buf[*index]: the atoms above back to their
 * codes, {grove, 'GR_E...', <<"text">>} back to its code and text,
 * anything else GR_EFAILED with the term printed as its text. */
gr_reason gr__reason_of_term(const char *buf, int *index);

/* --- monitor.c ------------------------------------------------------------ */

/* The reference that stands for monitor id of ours on the wire. */
void gr__monitor_ref(gr__dist *d, uint64_t id, erlang_ref *out);

/* Takes a MONITOR_P, DEMONITOR_P or MONITOR_P_EXIT (tag) read from
 * connection fd, to node (its id), the control tuple at f[index] past its
 * tag (checked whole); false when it is malformed. A monitor made there
 * lives no longer than that connection, whatever node its watcher's pid
 * names. */
bool gr__monitor_arrived(gr__dist *d, int fd, uint32_t node, long tag,
                         const char *f, int index);

/* Builds into x the MONITOR_P_EXIT for m, an actor's DOWN to an Erlang
 * watcher, and sets *node to the watcher's node. GR_OK, GR_ENOTFOUND
 * when no monitor of an Erlang process has m's id (demonitored, or its
 * node gone: the DOWN is dropped), or GR_ENOMEM. */
int gr__monitor_down_frame(gr__dist *d, const gr_msg *m, ei_x_buff *x,
                           uint32_t *node);

/* Registers the monitor of ask m (a request to the Erlang pid callee)
 * and puts its MONITOR_P in front of the frames in x. GR_OK or
 * GR_ENOMEM. */
int gr__ask_monitor(gr__dist *d, const gr_msg *m, const erlang_pid *callee,
                    ei_x_buff *x);

/* Forgets the monitor of the ask with corr, never sent (its send
 * failed). */
void gr__ask_unmonitor(gr__dist *d, uint64_t corr);

/* The ask with corr has its answer: its monitor comes down (DEMONITOR_P,
 * written to fd, the connection the answer came on), and *callee becomes
 * the ref of the pid asked (unchanged when the ask is unknown). */
void gr__ask_answered(gr__dist *d, int fd, uint64_t corr, gr_ref *callee);

/* Builds into x the DEMONITOR_P for the ask that m (GR__MSG_ASK_FORGET:
 * the asker stopped waiting) forgets, and sets *node to the callee's
 * node. GR_OK, GR_ENOTFOUND (no such monitor) or GR_ENOMEM. */
int gr__ask_forget_frame(gr__dist *d, const gr_msg *m, ei_x_buff *x,
                         uint32_t *node);

/* Forgets the monitors that watchers on node hold, and those of asks to
 * callees there. */
void gr__monitors_node_gone(gr__dist *d, uint32_t node);

/* Frees every monitor held (at stop). */
void gr__monitors_free(gr__dist *d);

/* The socket callbacks for ei (socket.c): plain calls, whose handshakes
 * announce DFLAG_DIST_MONITOR_NAME so that Erlang sends monitors. */
extern ei_socket_callbacks gr__dist_sockets;

/* --- signal.c ------------------------------------------------------------- */

/* Starts a distribution frame in x: room for its length, the
 * pass-through byte, the version, and the control tuple's header (arity)
 * and tag; false when out of memory. */
bool gr__frame_start(ei_x_buff *x, int arity, long tag);

/* Writes the frame's length (all of x but the length) into its first
 * four bytes. */
void gr__frame_end(ei_x_buff *x);

/* Encodes the control frame for an internal message m (a link, unlink,
 * exit signal, stop, kill, monitor or demonitor from a Grove actor to an
 * Erlang pid) into
 * x. Returns GR_OK, GR_ENOTSUP for a type that has no
 * frame (it is dropped), or GR_ENOMEM. */
int gr__signal_frame(gr__dist *d, const gr_msg *m, const erlang_pid *to,
                     ei_x_buff *x);

/* Delivers a control message read from a connection (link, unlink, exit,
 * exit2) as the runtime's own signal. */
void gr__signal_arrived(gr__dist *d, const erlang_msg *msg, const ei_x_buff *x);

/* Tells the sender of job m, a link or monitor request that could not be
 * sent, noconnection (an exit signal through the link, a DOWN). */
void gr__signal_undeliverable(gr__dist *d, const gr_msg *m);

#endif
