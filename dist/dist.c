/* Erlang distribution: starting, the thread (accepts, connects, reads,
 * writes), what arrives and what is sent (see dist.h). */
#define _GNU_SOURCE /* eventfd, poll. */
#include "dist/dist.h"

#include <grove/inbox.h>
#include <grove/msgpack.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Default limit of a connect or handshake, ms. */
#define DEFAULT_TIMEOUT_MS 5000u
/* Bytes of encoded messages queued for the thread before sends are
 * refused as backpressure, as a node link's default. */
#define QUEUE_LIMIT ((size_t)8 << 20)
/* gen_server:calls from Erlang waiting for a reply at once; one more is
 * refused (the caller times out, as it would with a busy server). */
#define CALLS_MAX 65536u
/* How long a node that could not be reached is not tried again. */
#define CONNECT_RETRY_NS (1000ull * 1000000ull)
/* Incoming connections whose handshakes may wait at once. One more cuts
 * the oldest short, which a peer that says nothing is most likely to be
 * (one that answers takes milliseconds), so a flood of silent
 * connections cannot pile up without bound nor keep nodes out; up to
 * ACCEPTS_CUTTING more wait while the cut ones end, and past that a new
 * one is closed. */
#define ACCEPTS_MAX     64u
#define ACCEPTS_CUTTING 4u
/* How often a connection held back by an actor's backlog is looked at
 * again, ms. */
#define HOLD_POLL_MS 1
/* Default net_ticktime (Erlang's is 60 s too). */
#define DEFAULT_TICKTIME_MS 60000u
/* The registered name a keepalive goes to: Erlang nodes have none and drop
 * it; Grove systems drop it too, having seen traffic. */
#define KEEPALIVE_NAME "grove_keepalive"
/* Bytes a message's frame starts with room for: most fit. */
#define FRAME_START_SIZE 256
/* How long a call from Erlang is remembered unanswered (OTP's default
 * call timeout is 5 s; an infinite one gets this long). */
#define CALL_FORGET_NS (600ull * 1000000000ull)
/* Erlang nodes remembered by name at most: names come in received pids,
 * so a peer could make up any number. One more is not remembered (its
 * pids still map to refs; a send to one is GR_ENOCONNECTION). */
#define NODES_MAX 4096u

static bool x_new(ei_x_buff *x, int size);

static const gr__logger *log_of(gr__dist *d)
{
    return gr__system_log(d->sys);
}

/* ---- nodes and pids ------------------------------------------------------ */

/* The node with id, or NULL; d->lock held. */
static dist_node *find_node(gr__dist *d, uint32_t id)
{
    for (size_t i = 0; i < d->nnodes; i++)
        if (d->nodes[i].id == id)
            return &d->nodes[i];
    return NULL;
}

/* Notes that node id could not be reached (now), or could (0). */
static void set_failed(gr__dist *d, uint32_t id, uint64_t when)
{
    pthread_mutex_lock(&d->lock);
    dist_node *dn = find_node(d, id);
    if (dn != NULL)
        dn->failed_ns = when;
    pthread_mutex_unlock(&d->lock);
}

/* Notes (when outgoing: this node's own connection) that node id's
 * connection made by this node is up with that creation, or (0) not. */
static void own_up(gr__dist *d, uint32_t id, uint32_t creation, int fd,
                   bool outgoing)
{
    if (!outgoing)
        return;
    pthread_mutex_lock(&d->lock);
    dist_node *dn = find_node(d, id);
    if (dn != NULL && dn->own_creation != creation) {
        dn->own_creation = creation;
        dn->own_since_ns = gr__mono_ns();
    }
    if (dn != NULL)
        dn->own_fd = creation != 0 ? fd : -1;
    pthread_mutex_unlock(&d->lock);
}

/* Notes whether a connect to node id is under way. */
static void set_connecting(gr__dist *d, uint32_t id, bool on)
{
    pthread_mutex_lock(&d->lock);
    dist_node *dn = find_node(d, id);
    if (dn != NULL)
        dn->connecting = on;
    pthread_mutex_unlock(&d->lock);
}

/* Whether dn's own connection looks alive: its socket has not seen the
 * peer close it (a peer that connects again after closing it is not a
 * simultaneous connect). d->lock held, so the socket stays open. */
static bool own_alive(const dist_node *dn)
{
    struct pollfd p = {.fd = dn->own_fd, .events = POLLRDHUP};
    return dn->own_fd >= 0 && poll(&p, 1, 0) == 0;
}

const char *gr__dist_status_for(gr__dist *d, const char *peer,
                                uint32_t creation, bool *counted)
{
    /* Erlang compares the names as atoms: by their bytes, here. */
    bool greater = strcmp(ei_thisnodename(&d->ec), peer) > 0;
    uint32_t id = gr__node_id(peer, strlen(peer));
    uint64_t now = gr__mono_ns(), young = (uint64_t)d->timeout_ms * 1000000u;
    const char *status = "ok";
    *counted = false;
    pthread_mutex_lock(&d->lock);
    dist_node *dn = find_node(d, id);
    if (dn != NULL && creation != 0 && dn->own_creation == creation &&
        now - dn->own_since_ns < young && own_alive(dn))
        status = "alive"; /* Connected just now, by this node: the peer
                             says whether this is new (see socket.c). */
    else if (dn != NULL && dn->connecting)
        status = greater ? "nok" : "ok_simultaneous";
    if (dn != NULL &&
        (strcmp(status, "ok") == 0 || strcmp(status, "ok_simultaneous") == 0)) {
        dn->accepting++;
        *counted = true;
    }
    pthread_mutex_unlock(&d->lock);
    return status;
}

void gr__dist_connected(gr__dist *d, uint32_t id, uint32_t creation, int fd)
{
    own_up(d, id, creation, fd, true);
    set_connecting(d, id, false);
}

uint32_t gr__dist_note_node(gr__dist *d, const char *node, uint32_t creation)
{
    uint32_t id = gr__node_id(node, strlen(node));
    if (id == d->self_id)
        return gr__system_node_id(d->sys);
    pthread_mutex_lock(&d->lock);
    dist_node *dn = find_node(d, id);
    size_t i = dn != NULL ? (size_t)(dn - d->nodes) : d->nnodes;
    if (dn == NULL && d->nnodes < NODES_MAX) {
        if (d->nnodes == d->nodes_cap) {
            size_t cap = d->nodes_cap ? 2 * d->nodes_cap : 8;
            dist_node *n = realloc(d->nodes, cap * sizeof *n);
            if (n != NULL) {
                d->nodes = n;
                d->nodes_cap = cap;
            }
        }
        if (d->nnodes < d->nodes_cap) {
            d->nodes[i].id = id;
            d->nodes[i].creation = 0;
            d->nodes[i].queued = 0;
            d->nodes[i].failed_ns = 0;
            d->nodes[i].connecting = false;
            d->nodes[i].accepting = 0;
            d->nodes[i].own_creation = 0;
            d->nodes[i].own_since_ns = 0;
            d->nodes[i].own_fd = -1;
            snprintf(d->nodes[i].name, sizeof d->nodes[i].name, "%s", node);
            d->nnodes++;
        }
    }
    if (i < d->nnodes && creation != 0)
        d->nodes[i].creation = creation;
    pthread_mutex_unlock(&d->lock);
    return id;
}

bool gr__dist_routes(gr__dist *d, uint32_t node)
{
    pthread_mutex_lock(&d->lock);
    bool known = find_node(d, node) != NULL;
    pthread_mutex_unlock(&d->lock);
    return known;
}

/* Copies node id's name into out; false when unknown. */
static bool node_name(gr__dist *d, uint32_t id, char out[MAXATOMLEN_UTF8])
{
    pthread_mutex_lock(&d->lock);
    const dist_node *dn = find_node(d, id);
    if (dn != NULL)
        memcpy(out, dn->name, strlen(dn->name) + 1);
    pthread_mutex_unlock(&d->lock);
    return dn != NULL;
}

bool gr__dist_node_label(gr__dist *d, uint32_t node, char *buf, size_t size,
                         uint32_t *inc)
{
    pthread_mutex_lock(&d->lock);
    const dist_node *dn = find_node(d, node);
    if (dn != NULL) {
        snprintf(buf, size, "%s", dn->name);
        *inc = dn->creation;
    }
    pthread_mutex_unlock(&d->lock);
    return dn != NULL;
}

/* A pid of this node of its creation now is one of this system's actors,
 * whose refs carry the system's incarnation; one of another creation (an
 * earlier run's) keeps it, and maps back to the same pid. */
gr_ref gr__dist_ref_of_pid(gr__dist *d, const erlang_pid *pid)
{
    gr_ref ref = {.serial = (uint64_t)pid->serial << 32 | pid->num,
                  .node = gr__dist_note_node(d, pid->node, pid->creation),
                  .incarnation = pid->creation};
    if (ref.node == gr__system_node_id(d->sys) &&
        pid->creation == ei_self(&d->ec)->creation)
        ref.incarnation = gr__system_incarnation(d->sys);
    return ref;
}

gr_ref gr__dist_local_ref(gr__dist *d, const erlang_pid *pid)
{
    return (gr_ref){.serial = (uint64_t)pid->serial << 32 | pid->num,
                    .node = gr__system_node_id(d->sys),
                    .incarnation = gr__system_incarnation(d->sys)};
}

bool gr__dist_pid_of_ref(gr__dist *d, gr_ref ref, erlang_pid *out)
{
    memset(out, 0, sizeof *out);
    if (ref.node == gr__system_node_id(d->sys)) {
        /* One of ours: only this process's actors have pids. The name was
         * checked at start to fit (as every name in d->nodes fits). */
        const char *self = ei_thisnodename(&d->ec);
        memcpy(out->node, self, strlen(self) + 1);
        out->creation = ref.incarnation == gr__system_incarnation(d->sys)
                            ? ei_self(&d->ec)->creation
                            : ref.incarnation;
    } else if (!node_name(d, ref.node, out->node)) {
        return false;
    } else {
        out->creation = ref.incarnation;
    }
    out->num = (unsigned)(ref.serial & 0xffffffffu);
    out->serial = (unsigned)(ref.serial >> 32);
    return true;
}

/* ---- calls from Erlang --------------------------------------------------- */

static void call_free(dist_call *c)
{
    if (c->term.buff != NULL)
        ei_x_free(&c->term);
    free(c);
}

/* Takes call c out of d's calls (lock held). */
static void call_unlink(gr__dist *d, dist_call *c)
{
    *(c->prev != NULL ? &c->prev->next : &d->calls_old) = c->next;
    *(c->next != NULL ? &c->next->prev : &d->calls_new) = c->prev;
    (void)gr__refmap_take(&d->calls_by_corr, gr__id_key(c->corr));
    d->ncalls--;
}

/* Remembers a '$gen_call' from `from` with tag (the term at buf[at, end));
 * its corr, or 0 when it cannot. The oldest calls go first: those nobody
 * answered in CALL_FORGET_NS, and one when CALLS_MAX wait. */
static uint64_t call_add(gr__dist *d, const erlang_pid *from, const char *buf,
                         int at, int end)
{
    dist_call *c = calloc(1, sizeof *c);
    if (c == NULL || ei_x_new_with_version(&c->term) != 0 ||
        ei_x_encode_pid(&c->term, from) != 0 ||
        ((c->tag_at = c->term.index),
         ei_x_append_buf(&c->term, buf + at, end - at) != 0)) {
        if (c != NULL)
            call_free(c);
        return 0;
    }
    c->since_ns = gr__mono_ns();
    pthread_mutex_lock(&d->lock);
    dist_call *old;
    while ((old = d->calls_old) != NULL &&
           (c->since_ns - old->since_ns > CALL_FORGET_NS ||
            d->ncalls >= CALLS_MAX)) {
        call_unlink(d, old);
        call_free(old);
    }
    c->corr = ++d->next_corr;
    if (gr__refmap_put(&d->calls_by_corr, gr__id_key(c->corr), c) != GR_OK) {
        pthread_mutex_unlock(&d->lock);
        call_free(c);
        return 0;
    }
    c->prev = d->calls_new;
    *(c->prev != NULL ? &c->prev->next : &d->calls_old) = c;
    d->calls_new = c;
    d->ncalls++;
    pthread_mutex_unlock(&d->lock);
    return c->corr;
}

void gr__dist_calls_clear(gr__dist *d)
{
    pthread_mutex_lock(&d->lock);
    for (dist_call *c = d->calls_old, *next; c != NULL; c = next) {
        next = c->next;
        call_free(c);
    }
    d->calls_old = d->calls_new = NULL;
    d->ncalls = 0;
    gr__refmap_clear(&d->calls_by_corr);
    pthread_mutex_unlock(&d->lock);
}

/* Takes the call a reply with corr answers; NULL when there is none. */
static dist_call *call_take(gr__dist *d, uint64_t corr)
{
    pthread_mutex_lock(&d->lock);
    dist_call *c =
        corr != 0 ? gr__refmap_get(&d->calls_by_corr, gr__id_key(corr)) : NULL;
    if (c != NULL)
        call_unlink(d, c);
    pthread_mutex_unlock(&d->lock);
    return c;
}

/* ---- what arrives -------------------------------------------------------- */

/* Whether the term at buf[*index] is the atom a; moves past it if so. */
static bool is_atom(const char *buf, int *index, const char *a)
{
    char got[MAXATOMLEN_UTF8];
    size_t n;
    int at = *index;
    if (!gr__term_atom(buf, &at, got, &n) || n != strlen(a) ||
        memcmp(got, a, n) != 0)
        return false;
    *index = at;
    return true;
}

/* A Grove payload, {'$grove', Type, Binary} or {'$grove', Type, Binary,
 * From} (From a pid or undefined), its tuple header of arity already
 * read: into m's type, data and len (pointing into buf) and, with a pid,
 * from. */
static bool read_grove(gr__dist *d, const char *buf, int len, int index,
                       int arity, gr_msg *m)
{
    const char *why;
    unsigned long t;
    int kind, n;
    erlang_pid from;
    if ((arity != 3 && arity != 4) || !is_atom(buf, &index, "$grove") ||
        ei_decode_ulong(buf, &index, &t) != 0 || t > UINT32_MAX ||
        ei_get_type(buf, &index, &kind, &n) != 0 || kind != ERL_BINARY_EXT)
        return false;
    m->type = (uint32_t)t;
    m->data = n > 0 ? buf + index + 5 : NULL;
    m->len = (size_t)n;
    if (arity == 4 && (index = gr__term_end(buf, len, index, &why)) >= 0 &&
        ei_decode_pid(buf, &index, &from) == 0)
        m->from = gr__dist_ref_of_pid(d, &from);
    return true;
}

/* Delivers m with the term at buf[index] (buf holds len bytes) as its
 * payload: a Grove payload ({'$grove', Type, Binary[, From]}) as it was
 * sent, anything else in msgpack as a GR_MSG_TERM. */
static void deliver_term(gr__dist *d, gr_msg *m, const char *buf, int len,
                         int index, const char *where)
{
    int at = index, arity;
    if (ei_decode_tuple_header(buf, &at, &arity) == 0 &&
        read_grove(d, buf, len, at, arity, m)) {
        if (m->type < GR_MSG_RESERVED)
            (void)gr__deliver_msg(d->sys, NULL, m);
        return;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    char why[96];
    int rc = gr__term_to_msgpack(d, buf, len, &index, &pk, why, sizeof why);
    if (rc == GR_OK) {
        m->data = sb.data;
        m->len = sb.size;
        (void)gr__deliver_msg(d->sys, NULL, m);
    } else {
        gr__log(log_of(d), GR_LOG_WARN,
                "distribution: a message for %s dropped: %s", where,
                rc == GR_EINVAL ? why : gr_strerror(rc));
    }
    msgpack_sbuffer_destroy(&sb);
}

/* A message from an Erlang process (from: its pid, or none) for `to`:
 * buf, len bytes that received_term accepted, read from connection fd. */
static void on_message(gr__dist *d, int fd, gr_ref from, gr_ref to,
                       const char *buf, int len, const char *where)
{
    gr_msg m = {.type = GR_MSG_TERM, .from = from, .to = to};
    int index = 0, version, arity;
    if (ei_decode_version(buf, &index, &version) != 0)
        return;
    int body = index;
    if (ei_decode_tuple_header(buf, &index, &arity) == 0) {
        int fields = index;
        erlang_pid caller;
        int tag_at, tag_end, arity2;
        if (arity == 3 && is_atom(buf, &index, "$gen_call") &&
            ei_decode_tuple_header(buf, &index, &arity2) == 0 && arity2 == 2 &&
            ei_decode_pid(buf, &index, &caller) == 0) {
            /* gen_server:call: a request; its reply goes back with the
             * tag. */
            const char *why;
            tag_at = index;
            if ((index = gr__term_end(buf, len, index, &why)) < 0)
                return;
            tag_end = index;
            m.from = gr__dist_ref_of_pid(d, &caller);
            m.flags = GR_MSG_REQUEST;
            m.corr = call_add(d, &caller, buf, tag_at, tag_end);
            if (m.corr == 0)
                return;
            deliver_term(d, &m, buf, len, index, where);
            return;
        }
        index = fields;
        erlang_ref ref;
        if (arity == 2 && ei_decode_ref(buf, &index, &ref) == 0 &&
            strcmp(ref.node, ei_thisnodename(&d->ec)) == 0 && ref.len == 3 &&
            ref.n[2] == 0x67726f76u) {
            /* {Tag, Reply}: the answer to one of our actors' asks. */
            m.flags = GR_MSG_REPLY;
            m.corr = (uint64_t)ref.n[1] << 32 | ref.n[0];
            /* From the server asked (SEND names no sender), so the asker
             * takes it as the answer it waited for. */
            gr__ask_answered(d, fd, m.corr, &m.from);
            deliver_term(d, &m, buf, len, index, where);
            return;
        }
    }
    deliver_term(d, &m, buf, len, body, where);
}

bool gr__dist_is_service(const char *name)
{
    return strcmp(name, "net_kernel") == 0 || strcmp(name, "rex") == 0;
}

/* What Erlang's net_kernel and rex answer, for the two calls other nodes
 * make of a C node: {'$gen_call', {From, Tag}, Request} to `service`,
 * with Request {is_auth, Node} for net_kernel (net_adm:ping; `yes`) or
 * {call, erlang, whereis, [Name], _} for rex (rpc:call whereis, as
 * gr_whereis_any asks; the pid, or `undefined`). The answer goes back on
 * connection fd; anything else for them is dropped. */
static void service_call(gr__dist *d, int fd, const char *service,
                         const ei_x_buff *x)
{
    const char *buf = x->buff, *why;
    int index = 0, version, arity, tag_at, tag_end;
    erlang_pid from;
    if (ei_decode_version(buf, &index, &version) != 0 ||
        ei_decode_tuple_header(buf, &index, &arity) != 0 || arity != 3 ||
        !is_atom(buf, &index, "$gen_call") ||
        ei_decode_tuple_header(buf, &index, &arity) != 0 || arity != 2 ||
        ei_decode_pid(buf, &index, &from) != 0)
        return;
    tag_at = index;
    if ((tag_end = index = gr__term_end(buf, x->index, index, &why)) < 0)
        return;
    bool ping = strcmp(service, "net_kernel") == 0;
    char name[MAXATOMLEN_UTF8];
    int n;
    if (ei_decode_tuple_header(buf, &index, &arity) != 0 ||
        (ping ? arity != 2 || !is_atom(buf, &index, "is_auth")
              : arity != 5 || !is_atom(buf, &index, "call") ||
                    !is_atom(buf, &index, "erlang") ||
                    !is_atom(buf, &index, "whereis") ||
                    ei_decode_list_header(buf, &index, &n) != 0 || n != 1 ||
                    ei_decode_atom_as(buf, &index, name, sizeof name,
                                      ERLANG_UTF8, NULL, NULL) != 0))
        return;
    ei_x_buff r;
    if (ei_x_new_with_version(&r) != 0)
        return;
    gr_ref found;
    erlang_pid pid;
    bool ok = ei_x_encode_tuple_header(&r, 2) == 0 &&
              ei_x_append_buf(&r, buf + tag_at, tag_end - tag_at) == 0;
    if (ok && ping)
        ok = ei_x_encode_atom(&r, "yes") == 0;
    else if (ok && gr_whereis(d->sys, name, &found) == GR_OK &&
             gr__dist_pid_of_ref(d, found, &pid))
        ok = ei_x_encode_pid(&r, &pid) == 0;
    else if (ok)
        ok = ei_x_encode_atom(&r, "undefined") == 0;
    /* {SEND, '', From} and the answer. */
    ei_x_buff f;
    if (ok && x_new(&f, FRAME_START_SIZE)) {
        if (gr__frame_start(&f, 3, ERL_SEND) && ei_x_encode_atom(&f, "") == 0 &&
            ei_x_encode_pid(&f, &from) == 0 &&
            ei_x_append_buf(&f, r.buff, r.index) == 0) {
            gr__frame_end(&f);
            (void)gr__dist_queue(d, fd, f.buff, (size_t)f.index);
        }
        ei_x_free(&f);
    }
    ei_x_free(&r);
}

gr_ref gr__dist_on_msg(gr__dist *d, int fd, const erlang_msg *msg,
                       const ei_x_buff *x)
{
    gr_ref from = GR_REF_NONE, to;
    switch (msg->msgtype) {
    case ERL_SEND:
    case ERL_SEND_TT:
        if (strcmp(msg->to.node, ei_thisnodename(&d->ec)) != 0)
            return GR_REF_NONE;
        to = gr__dist_local_ref(d, &msg->to);
        on_message(d, fd, from, to, x->buff, x->index, "a pid");
        return to;
    case ERL_REG_SEND:
    case ERL_REG_SEND_TT:
        from = gr__dist_ref_of_pid(d, &msg->from);
        if (gr__dist_is_service(msg->toname)) {
            service_call(d, fd, msg->toname, x);
            return GR_REF_NONE;
        }
        if (strcmp(msg->toname, KEEPALIVE_NAME) == 0)
            return GR_REF_NONE;
        if (gr_whereis(d->sys, msg->toname, &to) != GR_OK) {
            gr__log(log_of(d), GR_LOG_WARN,
                    "distribution: a message from %s for '%s' dropped: no "
                    "such name",
                    msg->from.node, msg->toname);
            return GR_REF_NONE;
        }
        on_message(d, fd, from, to, x->buff, x->index, msg->toname);
        return to;
    default:
        gr__signal_arrived(d, msg, x);
        return GR_REF_NONE;
    }
}

/* ---- connections --------------------------------------------------------- */

static dist_conn *conn_find(gr__dist *d, uint32_t id)
{
    for (size_t i = 0; i < d->nconns; i++)
        if (d->conns[i].id == id)
            return &d->conns[i];
    return NULL;
}

/* Adds the connection fd to node (of that creation, 0: not known),
 * made by this node's connect (outgoing) or accepted. */
static dist_conn *conn_add(gr__dist *d, int fd, const char *node,
                           uint32_t creation, bool outgoing)
{
    /* The same line as the connector's gr__dist_connected, made again:
     * gone again if the connection is not kept. */
    own_up(d, gr__node_id(node, strlen(node)), outgoing ? creation : 0, fd,
           outgoing);
    if (d->nconns == d->conns_cap) {
        size_t cap = d->conns_cap ? 2 * d->conns_cap : 8;
        dist_conn *c = realloc(d->conns, cap * sizeof *c);
        if (c == NULL) {
            own_up(d, gr__node_id(node, strlen(node)), 0, -1, outgoing);
            ei_close_connection(fd);
            return NULL;
        }
        d->conns = c;
        d->conns_cap = cap;
    }
    /* The socket's own timeouts bound each read and write, as the _tmo
     * calls of ei did (each chunk waits at most timeout_ms, then the
     * call fails and the connection closes); so reads and sends use the
     * plain calls, one read(2) or writev(2) per part, instead of a
     * select(2) before each and, around each send, four fcntl(2)s to
     * make the socket non-blocking and back. */
    struct timeval tv = {.tv_sec = (time_t)(d->timeout_ms / 1000),
                         .tv_usec = (suseconds_t)(d->timeout_ms % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
        gr__log(log_of(d), GR_LOG_WARN,
                "distribution: connection to %s dropped: socket timeouts: %s",
                node, strerror(errno));
        own_up(d, gr__node_id(node, strlen(node)), 0, -1, outgoing);
        ei_close_connection(fd);
        return NULL;
    }
    dist_conn *c = &d->conns[d->nconns++];
    c->fd = fd;
    c->id = gr__dist_note_node(d, node, 0);
    c->rx_ns = c->tx_ns = gr__mono_ns();
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    c->held_by = GR_REF_NONE;
    c->out = c->out_last = NULL;
    c->out_off = c->out_bytes = 0;
    c->out_ns = c->rx_ns;
    c->broken = false;
    c->creation = creation;
    c->outgoing = outgoing;
    snprintf(c->node, sizeof c->node, "%s", node);
    gr__log(log_of(d), GR_LOG_INFO, "distribution: connected to %s", node);
    return c;
}

static void job_free(dist_job *j);
static void job_failed(gr__dist *d, const dist_job *j);

/* Fails and frees the jobs from j on (the protocol's own frames quietly):
 * dead letters, asks failed, links and monitors told. */
static void jobs_fail(gr__dist *d, dist_job *j)
{
    while (j != NULL) {
        dist_job *next = j->next;
        if (!j->quiet)
            job_failed(d, j);
        job_free(j);
        j = next;
    }
}

/* Closes connection i; every link, monitor and ask to the node's latest
 * incarnation then fires with noconnection, and what it had not written
 * fails as a send to a node that is gone does. */
static void conn_close(gr__dist *d, size_t i, const char *why)
{
    gr__log(log_of(d), GR_LOG_INFO, "distribution: %s disconnected: %s",
            d->conns[i].node, why);
    own_up(d, d->conns[i].id, 0, -1, d->conns[i].outgoing); /* First. */
    ei_close_connection(d->conns[i].fd);
    /* What it did not write fails below, once the node is down. */
    dist_job *unsent = d->conns[i].out;
    size_t unsent_bytes = d->conns[i].out_bytes;
    d->conns[i].out = NULL;
    gr__dist_conn_release(&d->conns[i]);
    uint32_t id = d->conns[i].id;
    d->conns[i] = d->conns[--d->nconns];
    uint32_t creation = 0;
    pthread_mutex_lock(&d->lock);
    dist_node *dn = find_node(d, id);
    if (dn != NULL) {
        dn->queued -= unsent_bytes < dn->queued ? unsent_bytes : dn->queued;
        creation = dn->creation;
        /* Sends that follow at once (an exit reported to it, say) are not
         * worth a connect to a node that has just gone. */
        dn->failed_ns = gr__mono_ns();
    }
    pthread_mutex_unlock(&d->lock);
    gr__monitors_node_gone(d, id);
    if (creation != 0)
        gr__broadcast_node_down(d->sys, id, creation);
    jobs_fail(d, unsent);
}

static void add_queued(gr__dist *d, uint32_t id, long long delta);
static void send_jobs(gr__dist *d, dist_job *j);

/* Closes connection i, whose node has just connected again by another
 * connection to the same incarnation (connects both ways at once): no
 * link or monitor fires, since the node is up. Returns what i had not
 * written, to go out on the other; a frame partly written fails. */
static dist_job *conn_retire(gr__dist *d, size_t i)
{
    dist_conn *c = &d->conns[i];
    gr__log(log_of(d), GR_LOG_INFO,
            "distribution: %s connected again (the same incarnation): "
            "the new connection carries on",
            c->node);
    own_up(d, c->id, 0, -1, c->outgoing); /* Before its socket goes. */
    ei_close_connection(c->fd);
    dist_job *unsent = c->out;
    if (unsent != NULL && c->out_off > 0) {
        dist_job *partial = unsent;
        unsent = partial->next;
        partial->next = NULL;
        jobs_fail(d, partial);
    }
    c->out = NULL;
    add_queued(d, c->id, -(long long)c->out_bytes);
    gr__dist_conn_release(c);
    *c = d->conns[--d->nconns];
    return unsent;
}

/* Replaces node's connection, if it has one, by the new connection fd,
 * made by this node's connect (outgoing) or accepted; creation: the
 * node's, from the new one's handshake. The same incarnation connected
 * twice at once (conn_retire): what the old one had not written goes out
 * on the new one; another incarnation (the node restarted): the old one
 * closes as the node going down. */
static void conn_replace(gr__dist *d, int fd, const char *node,
                         uint32_t creation, bool outgoing)
{
    dist_conn *old = conn_find(d, gr__node_id(node, strlen(node)));
    dist_job *unsent = NULL;
    if (old != NULL && creation != 0 && old->creation == creation)
        unsent = conn_retire(d, (size_t)(old - d->conns));
    else if (old != NULL)
        conn_close(d, (size_t)(old - d->conns), "reconnected");
    (void)conn_add(d, fd, node, creation, outgoing);
    send_jobs(d, unsent);
}

/* Jobs parked for node id, or NULL. */
static dist_park *park_find(gr__dist *d, uint32_t id)
{
    for (size_t i = 0; i < d->nparks; i++)
        if (d->parks[i].id == id)
            return &d->parks[i];
    return NULL;
}

/* A new, empty park for node id; NULL when out of memory. */
static dist_park *park_add(gr__dist *d, uint32_t id)
{
    if (d->nparks == d->parks_cap) {
        size_t cap = d->parks_cap ? 2 * d->parks_cap : 4;
        dist_park *p = realloc(d->parks, cap * sizeof *p);
        if (p == NULL)
            return NULL;
        d->parks = p;
        d->parks_cap = cap;
    }
    dist_park *p = &d->parks[d->nparks++];
    p->id = id;
    p->wait_until = 0;
    p->redialled = false;
    p->head = p->last = NULL;
    p->bytes = 0;
    return p;
}

/* Adds delta bytes to what waits for node id (senders see it as their
 * queue, and are held back by it). */
static void add_queued(gr__dist *d, uint32_t id, long long delta)
{
    pthread_mutex_lock(&d->lock);
    dist_node *dn = find_node(d, id);
    if (dn != NULL)
        dn->queued = delta < 0 && (size_t)-delta > dn->queued
                         ? 0
                         : (size_t)((long long)dn->queued + delta);
    pthread_mutex_unlock(&d->lock);
}

/* The connection to node id; NULL when there is none yet, *wait then
 * saying whether one is being made (the connector is asked now if need
 * be, and the jobs wait for it) or not (the node could not be reached a
 * moment ago: the jobs fail at once, and nothing is logged again). */
static dist_conn *conn_to(gr__dist *d, uint32_t id, bool *wait)
{
    dist_conn *c = conn_find(d, id);
    *wait = c == NULL && park_find(d, id) != NULL;
    if (c != NULL || *wait)
        return c;
    char name[MAXATOMLEN_UTF8];
    uint64_t now = gr__mono_ns();
    dist_park *p = park_add(d, id);
    if (p == NULL)
        return NULL;
    /* One lock with gr__dist_status_for's: either its answer sees this
     * connect, or this sees the handshake it let through. */
    pthread_mutex_lock(&d->lock);
    dist_node *dn = find_node(d, id);
    bool backoff = dn == NULL || (dn->failed_ns != 0 &&
                                  now - dn->failed_ns < CONNECT_RETRY_NS);
    bool accepting = !backoff && dn->accepting > 0;
    if (dn != NULL)
        memcpy(name, dn->name, sizeof name);
    if (!backoff && !accepting)
        dn->connecting = true; /* Before the connect can begin. */
    pthread_mutex_unlock(&d->lock);
    if (backoff) {
        d->nparks--;
        return NULL;
    }
    if (accepting) { /* Its connection is coming in: wait for that. */
        p->wait_until = now + (uint64_t)d->timeout_ms * 1000000u;
    } else if (!gr__connector_ask(d, -1, id, name)) {
        set_connecting(d, id, false);
        d->nparks--;
        return NULL;
    }
    *wait = true;
    return NULL;
}

/* Ends the wait of the jobs parked for connect dial: they go out on the
 * connection it made, or fail. */
static void unpark(gr__dist *d, const dist_dial *dial)
{
    set_connecting(d, dial->id, false);
    dist_park *p = park_find(d, dial->id);
    if (dial->fd < 0 && dial->nok) {
        /* It connects to us at the same moment, and its connection is to
         * carry both ways: the jobs wait for it (accepted(), which may
         * have taken them already). */
        gr__log(log_of(d), GR_LOG_INFO,
                "distribution: %s connects to this node at the same "
                "moment: its connection is taken instead",
                dial->node);
        if (p != NULL)
            p->wait_until = gr__mono_ns() + (uint64_t)d->timeout_ms * 1000000u;
        return;
    }
    dist_job *jobs = p != NULL ? p->head : NULL;
    if (p != NULL) {
        add_queued(d, p->id, -(long long)p->bytes);
        *p = d->parks[--d->nparks];
    }
    if (dial->fd < 0) {
        int e = dial->error;
        gr__log(log_of(d), GR_LOG_WARN,
                "distribution: cannot connect to %s: %s", dial->node,
                e == EIO ? "the handshake failed (a cookie that differs, "
                           "or a node that does not answer)"
                : e == ETIMEDOUT    ? "timed out"
                : e == EHOSTUNREACH ? "its host name does not resolve"
                : e == ENOENT       ? "it is not in its host's epmd (not up?)"
                : e == EMFILE || e == ENFILE
                    ? "this process is out of descriptors"
                    : "its host's epmd cannot be reached");
        set_failed(d, dial->id, gr__mono_ns());
    } else {
        set_failed(d, dial->id, 0);
        conn_replace(d, dial->fd, dial->node, dial->creation, true);
    }
    send_jobs(d, jobs); /* With no connection, each fails. */
}

static bool park_redial(gr__dist *d, uint32_t id);

/* Ends the waits of parks whose node was to connect to this one (see
 * unpark and conn_to) and has not by now: a connect of this node's, or,
 * after one, the jobs fail. Returns the ms until the next such deadline,
 * at most limit. */
static int parks_expire(gr__dist *d, int limit)
{
    uint64_t now = gr__mono_ns();
    for (size_t i = d->nparks; i-- > 0;) {
        dist_park *p = &d->parks[i];
        if (p->wait_until == 0)
            continue;
        if (p->wait_until > now) {
            int ms = (int)((p->wait_until - now) / 1000000u) + 1;
            limit = ms < limit ? ms : limit;
            continue;
        }
        /* Its connection has not come in (a peer that claimed its name,
         * or one that failed): a connect of this node's, once. */
        if (park_redial(d, p->id))
            continue;
        dist_job *jobs = p->head;
        uint32_t id = p->id;
        add_queued(d, id, -(long long)p->bytes);
        *p = d->parks[--d->nparks];
        char name[MAXATOMLEN_UTF8] = "a node";
        pthread_mutex_lock(&d->lock);
        const dist_node *dn = find_node(d, id);
        if (dn != NULL)
            memcpy(name, dn->name, sizeof name);
        pthread_mutex_unlock(&d->lock);
        gr__log(log_of(d), GR_LOG_WARN,
                "distribution: cannot connect to %s: it answered that it "
                "was connecting to this node, but its connection never came",
                name);
        set_failed(d, id, now);
        send_jobs(d, jobs); /* With no connection, each fails. */
    }
    return limit;
}

/* The jobs parked for node id waited for its connection to this node,
 * whose handshake failed or has not come in time: they get a connect of
 * this node's, once (a second wait ends with the jobs failed, at its
 * deadline). Returns whether the connect was asked for. */
static bool park_redial(gr__dist *d, uint32_t id)
{
    dist_park *p = park_find(d, id);
    if (p == NULL || p->wait_until == 0 || p->redialled)
        return false;
    char name[MAXATOMLEN_UTF8] = "";
    pthread_mutex_lock(&d->lock);
    dist_node *dn = find_node(d, id);
    if (dn != NULL) {
        memcpy(name, dn->name, sizeof name);
        dn->connecting = true;
    }
    pthread_mutex_unlock(&d->lock);
    if (dn == NULL || !gr__connector_ask(d, -1, id, name)) {
        set_connecting(d, id, false);
        return false; /* It fails at its deadline. */
    }
    p->wait_until = 0;
    p->redialled = true;
    return true;
}

/* Whether a connection from peer may start its handshake: there is room
 * for it, or some made for it by cutting the oldest short (logged). */
static bool accept_room(gr__dist *d, const char *peer)
{
    if (d->accepts < ACCEPTS_MAX)
        return true;
    char who[MAXATOMLEN_UTF8];
    gr__cut cut = d->accepts < ACCEPTS_MAX + ACCEPTS_CUTTING
                      ? gr__connector_cut(d, who, sizeof who)
                      : GR__CUT_NONE;
    if (cut == GR__CUT_NONE) {
        gr__log(log_of(d), GR_LOG_WARN,
                "distribution: a connection from %s refused: %u "
                "handshakes are under way already",
                peer, d->accepts);
        return false;
    }
    if (cut == GR__CUT_DROPPED)
        d->accepts--;
    gr__log(log_of(d), GR_LOG_WARN,
            "distribution: the handshake of %s cut short, the oldest of %u "
            "under way, to make room for %s",
            who, d->accepts, peer);
    return true;
}

/* Accepts what waits on the listener (non-blocking) and asks the
 * connector for each one's handshake; beyond ACCEPTS_MAX handshakes
 * asked at once, the oldest is cut short (accept_room). When accepts
 * fail for want of descriptors, the listener rests (accept.h). */
static void accept_all(gr__dist *d)
{
    int fd;
    while ((fd = gr__accept(d->listen_fd, SOCK_CLOEXEC, &d->accept_rest,
                            log_of(d), "distribution")) >= 0) {
        /* Its address names it in the log until its handshake does. */
        char peer[64] = "";
        struct sockaddr_in sa;
        socklen_t sl = sizeof sa;
        if (getpeername(fd, (struct sockaddr *)&sa, &sl) == 0 &&
            sa.sin_family == AF_INET &&
            inet_ntop(AF_INET, &sa.sin_addr, peer, sizeof peer) != NULL)
            snprintf(peer + strlen(peer), sizeof peer - strlen(peer), ":%u",
                     (unsigned)ntohs(sa.sin_port));
        if (!accept_room(d, peer[0] != '\0' ? peer : "a peer")) {
            close(fd);
        } else if (gr__connector_ask(d, fd, 0, peer)) {
            d->accepts++;
        }
    }
}

/* Takes a connection the connector accepted (a node that comes back
 * replaces its old connection). */
static void accepted(gr__dist *d, const dist_dial *dial)
{
    d->accepts--;
    /* Its handshake is over: sends to its node may connect again. */
    uint32_t id = gr__node_id(dial->node, strlen(dial->node));
    pthread_mutex_lock(&d->lock);
    dist_node *dn = find_node(d, id);
    if (dn != NULL && dial->counted && dn->accepting > 0)
        dn->accepting--;
    bool was_accepting = dial->counted && dn != NULL && dn->accepting == 0;
    pthread_mutex_unlock(&d->lock);
    if (dial->fd >= 0 && !dial->cut) {
        conn_replace(d, dial->fd, dial->node, dial->creation, false);
        /* Jobs that waited for this connection (a connect of ours was
         * answered "nok", or none was made) go out on it. */
        dist_park *p = park_find(d, id);
        if (p != NULL && conn_find(d, id) != NULL) {
            dist_job *jobs = p->head;
            add_queued(d, id, -(long long)p->bytes);
            *p = d->parks[--d->nparks];
            send_jobs(d, jobs);
        }
        return;
    }
    if (dial->cut) { /* Logged as it was cut (it may have just finished). */
        if (dial->fd >= 0)
            ei_close_connection(dial->fd);
    } else if (dial->nok) {
        gr__log(log_of(d), GR_LOG_INFO,
                "distribution: %s connects to this node at the same moment "
                "as this node to it: this node's connection is kept",
                dial->node[0] != '\0' ? dial->node : "a peer");
    } else {
        gr__log(log_of(d), GR_LOG_WARN,
                "distribution: a connection from %s refused: %s",
                dial->node[0] != '\0' ? dial->node : "a peer",
                dial->error == ETIMEDOUT
                    ? "its handshake did not finish in time"
                    : "the handshake failed (a cookie that differs, or "
                      "the peer closed or gave up waiting)");
    }
    if (was_accepting)
        park_redial(d, id);
}

/* Takes what the connector made (thread). */
static void take_dials(gr__dist *d)
{
    dist_dial *dial = gr__connector_take(d);
    while (dial != NULL) {
        dist_dial *next = dial->next;
        if (dial->accept)
            accepted(d, dial);
        else
            unpark(d, dial);
        free(dial);
        dial = next;
    }
}

/* Reads what connection i has; false when it closed. */
static bool on_readable(gr__dist *d, size_t i)
{
    const char *why = NULL;
    if (gr__dist_read(d, &d->conns[i], &why))
        return true;
    conn_close(d, i, why);
    return false;
}

/* ---- what is sent ---------------------------------------------------------
 */

static void job_free(dist_job *j)
{
    if (j->x.buff != NULL)
        ei_x_free(&j->x);
    free(j->name);
    free(j);
}

void gr__dist_conn_release(dist_conn *c)
{
    free(c->rbuf);
    c->rbuf = NULL;
    while (c->out != NULL) {
        dist_job *next = c->out->next;
        job_free(c->out);
        c->out = next;
    }
    c->out_last = NULL;
    c->out_off = c->out_bytes = 0;
}

/* Most frames written in one writev. */
#define BATCH_MAX 64

/* Writes what c holds, as much as the socket takes without waiting;
 * false when the connection failed. Then what c holds is what counts as
 * queued for the node, of which `counted` bytes did already (one update
 * for what was queued and written). */
static bool conn_flush(gr__dist *d, dist_conn *c, size_t counted)
{
    bool ok = true;
    while (c->out != NULL) {
        struct iovec iov[BATCH_MAX];
        int n = 0;
        for (dist_job *j = c->out; j != NULL && n < BATCH_MAX; j = j->next) {
            size_t skip = n == 0 ? c->out_off : 0;
            iov[n].iov_base = j->x.buff + skip;
            iov[n++].iov_len = (size_t)j->x.index - skip;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t k = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            ok = errno == EAGAIN || errno == EWOULDBLOCK;
            break;
        }
        c->tx_ns = c->out_ns = gr__mono_ns();
        c->out_bytes -= (size_t)k;
        size_t left = (size_t)k;
        while (left > 0) {
            dist_job *j = c->out;
            size_t rest = (size_t)j->x.index - c->out_off;
            if (left < rest) {
                c->out_off += left;
                break;
            }
            left -= rest;
            c->out_off = 0;
            if ((c->out = j->next) == NULL)
                c->out_last = NULL;
            job_free(j);
        }
    }
    if (c->out_bytes != counted)
        add_queued(d, c->id, (long long)c->out_bytes - (long long)counted);
    return ok;
}

/* Puts the jobs from first up to end (exclusive) behind what c holds,
 * counted as queued for its node, and writes what the socket takes. A
 * connection whose write fails is marked broken, and keep_alive closes it
 * (so a frame answered from the reader never closes its connection
 * under it). */
static void conn_queue(gr__dist *d, dist_conn *c, dist_job *first,
                       dist_job *end)
{
    /* Frames waiting already mean the socket was full: they go when
     * poll says it takes more, with these behind them. */
    bool waiting = c->out != NULL;
    if (!waiting)
        c->out_ns = gr__mono_ns();
    size_t counted = c->out_bytes, bytes = 0;
    while (first != end) {
        dist_job *next = first->next;
        first->next = NULL;
        *(c->out_last != NULL ? &c->out_last->next : &c->out) = first;
        c->out_last = first;
        bytes += (size_t)first->x.index;
        first = next;
    }
    c->out_bytes += bytes;
    if (waiting || c->broken)
        add_queued(d, c->id, (long long)bytes);
    else if (!conn_flush(d, c, counted))
        c->broken = true;
}

bool gr__dist_queue(gr__dist *d, int fd, const char *frame, size_t len)
{
    dist_conn *c = NULL;
    for (size_t i = 0; i < d->nconns && c == NULL; i++)
        if (d->conns[i].fd == fd)
            c = &d->conns[i];
    dist_job *j = c != NULL ? calloc(1, sizeof *j) : NULL;
    if (j == NULL || !x_new(&j->x, (int)len)) {
        free(j);
        return false;
    }
    memcpy(j->x.buff, frame, len);
    j->x.index = (int)len;
    j->node = c->id;
    j->quiet = true;
    conn_queue(d, c, j, NULL);
    return true;
}

/* Tells the sender of job j, which could not be sent, as it must hear:
 * noconnection through a link or a monitor, a dead letter for a message,
 * and an ask's failure to an asker here (the dead letter tells one
 * elsewhere). */
static void job_failed(gr__dist *d, const dist_job *j)
{
    gr_reason why = gr_reason_of(GR_ENOCONNECTION);
    if (j->msg.flags & GR_MSG_REQUEST) {
        gr__ask_unmonitor(d, j->msg.corr);
        if (j->msg.from.node == gr__system_node_id(d->sys))
            gr__ask_send_failed(d->sys, NULL, j->msg.to, j->msg.from,
                                j->msg.corr, &why);
    }
    if (j->ctl)
        gr__signal_undeliverable(d, &j->msg);
    else if (j->msg.type < GR_MSG_RESERVED && j->name != NULL)
        gr__dead_message_named(d->sys, &j->msg, j->name, strlen(j->name),
                               GR_DL_NODE_DOWN, &why);
    else if (j->msg.type < GR_MSG_RESERVED)
        gr__dead_message(d->sys, &j->msg, GR_DL_NODE_DOWN, &why);
}

/* Closes connections silent for a net_ticktime; sends a keepalive on those
 * that sent nothing for a quarter of one (Erlang nodes tick us, but ei
 * only answers ticks, so two Grove systems would never tick each other). */
static void keep_alive(gr__dist *d)
{
    uint64_t now = gr__mono_ns();
    for (size_t i = d->nconns; i-- > 0;) {
        dist_conn *c = &d->conns[i];
        if (c->broken) {
            conn_close(d, i, "send failed");
            continue;
        }
        if (c->out != NULL &&
            now - c->out_ns > (uint64_t)d->timeout_ms * 1000000u) {
            conn_close(d, i, "send failed: the node takes nothing");
            continue;
        }
        if (now - c->rx_ns > d->ticktime_ns) {
            conn_close(d, i, "net tick timeout");
            continue;
        }
        if (now - c->tx_ns < d->ticktime_ns / 4)
            continue;
        /* {REG_SEND, Self, '', grove_keepalive} and the atom tick. */
        ei_x_buff x;
        if (!x_new(&x, 64))
            continue;
        if (gr__frame_start(&x, 4, ERL_REG_SEND) &&
            ei_x_encode_pid(&x, ei_self(&d->ec)) == 0 &&
            ei_x_encode_atom(&x, "") == 0 &&
            ei_x_encode_atom(&x, KEEPALIVE_NAME) == 0 &&
            ei_x_encode_version(&x) == 0 && ei_x_encode_atom(&x, "tick") == 0) {
            gr__frame_end(&x);
            if (gr__dist_queue(d, c->fd, x.buff, (size_t)x.index))
                c->tx_ns = now;
        }
        ei_x_free(&x);
    }
}

/* How long the thread may wait before keep_alive must look at a
 * connection that holds frames the socket does not take, ms (at most
 * limit). */
static int stall_wait_ms(const gr__dist *d, int limit)
{
    uint64_t now = gr__mono_ns(), timeout = (uint64_t)d->timeout_ms * 1000000u;
    for (size_t i = 0; i < d->nconns; i++) {
        const dist_conn *c = &d->conns[i];
        if (c->out == NULL)
            continue;
        uint64_t due = c->out_ns + timeout;
        int ms = due > now ? (int)((due - now) / 1000000u) + 1 : 0;
        if (ms < limit)
            limit = ms;
    }
    return limit;
}

/* Sends the jobs from j on (thread), in order: a run of jobs for one
 * node is queued on its connection at once, and goes out in one writev
 * as far as the socket takes it. */
static void send_jobs(gr__dist *d, dist_job *j)
{
    while (j != NULL) {
        bool wait;
        dist_conn *c = conn_to(d, j->node, &wait);
        size_t bytes = 0;
        dist_job *end = j;
        while (end != NULL && end->node == j->node) {
            bytes += (size_t)end->x.index;
            end = end->next;
        }
        if (wait) { /* Parked, in order, until the connect ends. */
            dist_park *p = park_find(d, j->node);
            add_queued(d, p->id, (long long)bytes);
            p->bytes += bytes;
            while (j != end) {
                dist_job *next = j->next;
                j->next = NULL;
                *(p->last != NULL ? &p->last->next : &p->head) = j;
                p->last = j;
                j = next;
            }
            continue;
        }
        if (c != NULL) {
            conn_queue(d, c, j, end);
            j = end;
            continue;
        }
        while (j != end) {
            dist_job *next = j->next;
            job_failed(d, j);
            job_free(j);
            j = next;
        }
    }
}

/* Takes the queue and sends it (thread; wake_fd read before). */
static void run_jobs(gr__dist *d)
{
    pthread_mutex_lock(&d->lock);
    dist_job *j = d->jobs;
    d->jobs = NULL;
    d->jobs_tail = &d->jobs;
    /* Taken: no longer queued, but what is parked still is, and what
     * connections have not written. */
    for (size_t i = 0; i < d->nnodes; i++)
        d->nodes[i].queued = 0;
    for (size_t i = 0; i < d->nparks; i++) {
        dist_node *dn = find_node(d, d->parks[i].id);
        if (dn != NULL)
            dn->queued += d->parks[i].bytes;
    }
    for (size_t i = 0; i < d->nconns; i++) {
        dist_node *dn = find_node(d, d->conns[i].id);
        if (dn != NULL)
            dn->queued += d->conns[i].out_bytes;
    }
    pthread_mutex_unlock(&d->lock);
    send_jobs(d, j);
}

/* A new buffer of size bytes for x (ei grows it, a little at a time,
 * from 100). */
static bool x_new(ei_x_buff *x, int size)
{
    x->buff = malloc((size_t)size);
    x->buffsz = size;
    x->index = 0;
    return x->buff != NULL;
}

/* Addresses job j for m (name: to that name on node, else to m->to's
 * pid, into *to) and notes its sender's pid in *from. GR_OK, or
 * GR_ENOCONNECTION when m->to's node is unknown. */
static int address(gr__dist *d, dist_job *j, const char *node, const char *name,
                   const gr_msg *m, erlang_pid *to, erlang_pid *from)
{
    /* A send by name carries its sender (Erlang's REG_SEND has a field for
     * it), so a Grove actor on the other side can answer m->from. */
    if (gr_ref_is_none(m->from) || !gr__dist_pid_of_ref(d, m->from, from))
        *from = *ei_self(&d->ec);
    if (name == NULL) {
        j->node = m->to.node;
        return gr__dist_pid_of_ref(d, m->to, to) ? GR_OK : GR_ENOCONNECTION;
    }
    j->node = gr__dist_note_node(d, node, 0);
    j->name = strdup(name);
    return j->name != NULL ? GR_OK : GR_ENOMEM;
}

/* Encodes the control frame of m, a runtime message, into job j (to:
 * its pid). GR_OK; GR_ENOTFOUND for one with nothing to send (dropped);
 * or GR_ENOMEM. */
static int encode_control(gr__dist *d, dist_job *j, const gr_msg *m,
                          const erlang_pid *to)
{
    j->ctl = true;
    if (j->name != NULL) /* No control message goes to a name. */
        return GR_ENOTFOUND;
    if (ei_x_new(&j->x) != 0)
        return GR_ENOMEM;
    int rc;
    if (m->type == GR_MSG_DOWN) /* An actor's DOWN for an Erlang monitor. */
        rc = gr__monitor_down_frame(d, m, &j->x, &j->node);
    else if (m->type == GR__MSG_ASK_FORGET) /* The ask's monitor comes down. */
        rc = gr__ask_forget_frame(d, m, &j->x, &j->node);
    else /* A link, an exit signal, a monitor request. */
        rc = gr__signal_frame(d, m, to, &j->x);
    return rc == GR_ENOTSUP ? GR_ENOTFOUND : rc;
}

/* Encodes message m into job j, whole frame: SEND {2, '', To} to a pid
 * or REG_SEND {6, From, '', Name} to a name, then the message: {Tag,
 * Reply} for gr_reply to a gen_server:call, {'$gen_call', {Self, Tag},
 * Request} for gr_ask (the tag a ref of ours carrying the ask's corr),
 * else the term of m. Encoded on the sender's thread into one buffer
 * that the thread writes as it is. */
static int encode_message(gr__dist *d, dist_job *j, const gr_msg *m,
                          erlang_pid *to, const erlang_pid *from)
{
    dist_call *c = NULL;
    int tag = 0, version;
    if ((m->flags & GR_MSG_REPLY) && (c = call_take(d, m->corr)) != NULL) {
        /* The caller's pid and tag, as call_add encoded them. */
        (void)ei_decode_version(c->term.buff, &tag, &version);
        (void)ei_decode_pid(c->term.buff, &tag, to);
        tag = c->tag_at;
        free(j->name);
        j->name = NULL;
        j->node = gr__dist_ref_of_pid(d, to).node;
    }
    bool ok = x_new(&j->x, FRAME_START_SIZE) &&
              (j->name != NULL ? gr__frame_start(&j->x, 4, ERL_REG_SEND) &&
                                     ei_x_encode_pid(&j->x, from) == 0 &&
                                     ei_x_encode_atom(&j->x, "") == 0 &&
                                     ei_x_encode_atom(&j->x, j->name) == 0
                               : gr__frame_start(&j->x, 3, ERL_SEND) &&
                                     ei_x_encode_atom(&j->x, "") == 0 &&
                                     ei_x_encode_pid(&j->x, to) == 0) &&
              ei_x_encode_version(&j->x) == 0;
    if (ok && c != NULL) {
        ok = ei_x_encode_tuple_header(&j->x, 2) == 0 &&
             ei_x_append_buf(&j->x, c->term.buff + tag, c->term.index - tag) ==
                 0;
    } else if (ok && (m->flags & GR_MSG_REQUEST)) {
        erlang_ref tag = {.len = 3,
                          .n = {(unsigned)(m->corr & 0xffffffffu),
                                (unsigned)(m->corr >> 32), 0x67726f76u},
                          .creation = ei_self(&d->ec)->creation};
        memcpy(tag.node, from->node, sizeof tag.node);
        ok = ei_x_encode_tuple_header(&j->x, 3) == 0 &&
             ei_x_encode_atom(&j->x, "$gen_call") == 0 &&
             ei_x_encode_tuple_header(&j->x, 2) == 0 &&
             ei_x_encode_pid(&j->x, from) == 0 &&
             ei_x_encode_ref(&j->x, &tag) == 0;
    }
    if (c != NULL)
        call_free(c);
    int rc = ok ? gr__msg_to_term(d, m, &j->x) : GR_ENOMEM;
    if (rc == GR_OK)
        gr__frame_end(&j->x);
    return rc;
}

/* Queues job j for the thread, bounded per node as a node link's buffer
 * is. GR_OK (j is the thread's), GR_ENOCONNECTION or GR_EBACKPRESSURE. */
static int enqueue(gr__dist *d, dist_job *j)
{
    int rc = GR_OK;
    bool wake = false;
    pthread_mutex_lock(&d->lock);
    dist_node *dn = find_node(d, j->node);
    if (d->quit || dn == NULL) {
        rc = GR_ENOCONNECTION;
    } else if (dn->queued + (size_t)j->x.index > d->queue_limit) {
        rc = GR_EBACKPRESSURE;
    } else {
        /* Only the job that makes the queue non-empty wakes the thread:
         * run_jobs() reads wake_fd before it takes the whole queue, so
         * every job queued behind this one goes with it, and a job
         * queued after the take finds the queue empty and wakes the
         * thread again. One write(2) per batch, not per message. */
        wake = d->jobs == NULL;
        dn->queued += (size_t)j->x.index;
        *d->jobs_tail = j;
        d->jobs_tail = &j->next;
    }
    pthread_mutex_unlock(&d->lock);
    uint64_t one = 1;
    if (wake)
        (void)!write(d->wake_fd, &one, sizeof one);
    return rc;
}

int gr__dist_send(gr__dist *d, const char *node, const char *name,
                  const gr_msg *m)
{
    dist_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return GR_ENOMEM;
    j->msg = *m;
    j->msg.data = NULL;
    j->msg.len = 0;
    erlang_pid to, from;
    int rc = address(d, j, node, name, m, &to, &from);
    if (rc == GR_OK)
        rc = m->type >= GR_MSG_RESERVED ? encode_control(d, j, m, &to)
                                        : encode_message(d, j, m, &to, &from);
    if (rc == GR_ENOTFOUND) { /* Nothing to send. */
        job_free(j);
        return GR_OK;
    }
    /* An ask of a pid is monitored, as gen_server:call monitors. */
    bool ask_watched = rc == GR_OK && !j->ctl && j->name == NULL &&
                       (m->flags & GR_MSG_REQUEST);
    if (ask_watched && (rc = gr__ask_monitor(d, m, &to, &j->x)) != GR_OK)
        ask_watched = false;
    if (rc == GR_OK && (rc = enqueue(d, j)) == GR_OK)
        return GR_OK;
    if (ask_watched)
        gr__ask_unmonitor(d, m->corr);
    if (j->ctl && rc == GR_ENOCONNECTION)
        gr__signal_undeliverable(d, m);
    job_free(j);
    if (m->type < GR_MSG_RESERVED && rc != GR_EINVAL && rc != GR_ENOMEM)
        gr__dead_message(d->sys, m,
                         rc == GR_EBACKPRESSURE ? GR_DL_BACKPRESSURE
                                                : GR_DL_NODE_DOWN,
                         &(gr_reason){.code = rc});
    return rc;
}

/* ---- names on other nodes ------------------------------------------------ */

int gr__dist_whereis(gr__dist *d, const char *node, const char *name,
                     uint64_t deadline_ns, gr_ref *out)
{
    gr_inbox *in;
    int rc = gr_inbox_open(d->sys, &in);
    if (rc != GR_OK)
        return rc;
    /* rpc:call(Node, erlang, whereis, [Name]) as rex takes it. */
    msgpack_sbuffer list, req;
    msgpack_sbuffer_init(&list);
    msgpack_sbuffer_init(&req);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &list, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_str_with_body(&pk, name, strlen(name));
    msgpack_packer_init(&pk, &req, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_str_with_body(&pk, "call", 4);
    msgpack_pack_str_with_body(&pk, "erlang", 6);
    msgpack_pack_str_with_body(&pk, "whereis", 7);
    msgpack_pack_ext_with_body(&pk, list.data, list.size, GR_EXT_LIST);
    msgpack_pack_str_with_body(&pk, "user", 4);
    gr_msg m = {.type = GR_MSG_TERM,
                .flags = GR_MSG_REQUEST,
                .from = gr_inbox_ref(in),
                .corr = gr__new_id(d->sys, NULL),
                .data = req.data,
                .len = req.size};
    rc = gr__dist_send(d, node, "rex", &m);
    msgpack_sbuffer_destroy(&list);
    msgpack_sbuffer_destroy(&req);
    /* The answer: a pid, or undefined; a node that does not answer by the
     * deadline does not know the name either. */
    while (rc == GR_OK) {
        uint64_t now = gr__mono_ns();
        gr_msg *r;
        if (now >= deadline_ns ||
            gr_inbox_recv(in, &r,
                          deadline_ns == UINT64_MAX
                              ? GR_DURATION_INFINITE
                              : (gr_duration)((deadline_ns - now) / 1000000u +
                                              1)) != GR_OK) {
            rc = GR_ENOTFOUND;
            break;
        }
        if (r->corr != m.corr || !(r->flags & GR_MSG_REPLY)) {
            gr_msg_free(r);
            continue;
        }
        msgpack_unpacked u;
        rc = GR_ENOTFOUND;
        if (r->type == GR_MSG_TERM && gr_msg_unpack(r, &u) == GR_OK) {
            if (u.data.type == MSGPACK_OBJECT_EXT &&
                u.data.via.ext.type == GR_EXT_PID &&
                gr_dist_ref_read(u.data.via.ext.ptr, u.data.via.ext.size,
                                 out) == GR_OK)
                rc = GR_OK;
            msgpack_unpacked_destroy(&u);
        }
        gr_msg_free(r);
        break;
    }
    gr_inbox_close(in);
    return rc == GR_OK || rc == GR_ENOTFOUND ? rc : GR_ENOTFOUND;
}

/* ---- the thread -----------------------------------------------------------
 */

/* Whether connection c is held back (not read: see gr__dist_read) by
 * its actor's backlog, which is looked at again now; sets *any if so. */
static bool held_back(gr__dist *d, dist_conn *c, bool *any)
{
    if (gr_ref_is_none(c->held_by))
        return false;
    if (!gr__backlogged(d->sys, c->held_by, true)) {
        c->held_by = GR_REF_NONE;
        return false;
    }
    /* Not read, so not silent: the tick timeout waits. A peer that closes
     * or fails is still seen (poll reports hang-ups and errors). */
    c->rx_ns = gr__mono_ns();
    *any = true;
    return true;
}

static void *dist_main(void *arg)
{
    gr__dist *d = arg;
    struct pollfd *fds = NULL;
    size_t fds_cap = 0;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        bool quit = d->quit;
        pthread_mutex_unlock(&d->lock);
        if (quit)
            break;
        size_t n = 2 + d->nconns;
        if (n > fds_cap) {
            struct pollfd *f = realloc(fds, n * sizeof *f);
            if (f == NULL) {
                run_jobs(d); /* Keep going; try again next time. */
                continue;
            }
            fds = f;
            fds_cap = n;
        }
        fds[0] = (struct pollfd){.fd = d->wake_fd, .events = POLLIN};
        /* A resting listener (see accept_all) is left out until then. */
        int rest_ms = gr__accept_rest_ms(&d->accept_rest);
        fds[1] = (struct pollfd){.fd = d->listen_fd,
                                 .events = rest_ms > 0 ? 0 : POLLIN};
        bool holding = false;
        for (size_t i = 0; i < d->nconns; i++) {
            dist_conn *c = &d->conns[i];
            short events = held_back(d, c, &holding) ? 0 : POLLIN;
            if (c->out != NULL && !c->broken)
                events |= POLLOUT; /* Frames the socket did not take. */
            fds[2 + i] = (struct pollfd){.fd = c->fd, .events = events};
        }
        /* Wake at least each second to watch the connections' ticks,
         * each HOLD_POLL_MS to see whether a held one may read again, and
         * when a connection that takes nothing has waited too long. */
        int wait_ms =
            parks_expire(d, stall_wait_ms(d, holding ? HOLD_POLL_MS : 1000));
        if (rest_ms > 0 && rest_ms < wait_ms)
            wait_ms = rest_ms;
        int ready = poll(fds, n, wait_ms);
        /* Connections first, from the last, since closing one moves the
         * last into its place (and nothing else changes them before). */
        for (size_t i = n - 2; ready > 0 && i-- > 0;) {
            short got = fds[2 + i].revents;
            dist_conn *c = &d->conns[i];
            if ((got & POLLOUT) && !c->broken &&
                !conn_flush(d, c, c->out_bytes))
                c->broken = true;
            if (got & (POLLIN | POLLHUP | POLLERR))
                (void)on_readable(d, i);
        }
        if (ready > 0 && (fds[1].revents & POLLIN))
            accept_all(d);
        if (ready > 0 && fds[0].revents != 0) {
            /* Read before taking: whatever comes after writes it again. */
            uint64_t woken;
            (void)!read(d->wake_fd, &woken, sizeof woken);
            take_dials(d);
            run_jobs(d);
        }
        keep_alive(d);
    }
    free(fds);
    return NULL;
}

/* ---- start and stop -------------------------------------------------------
 */

/* Whether an epmd answers on this host (on ERL_EPMD_PORT, else 4369). */
static bool epmd_answers(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)gr__epmd_port())};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool up = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return up;
}

static int read_cookie(gr__dist *d, const char *cookie)
{
    if (cookie != NULL) {
        if (cookie[0] == '\0' || strlen(cookie) >= sizeof d->cookie) {
            gr__log(log_of(d), GR_LOG_ERROR,
                    "distribution: the cookie is empty or longer than %zu "
                    "bytes",
                    sizeof d->cookie - 1);
            return GR_EINVAL;
        }
        snprintf(d->cookie, sizeof d->cookie, "%s", cookie);
        return GR_OK;
    }
    const char *home = getenv("HOME");
    char path[4096];
    snprintf(path, sizeof path, "%s/.erlang.cookie", home ? home : "");
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        gr__log(log_of(d), GR_LOG_ERROR,
                "distribution: no cookie given and %s: %s", path,
                strerror(errno));
        return GR_EINVAL;
    }
    size_t k = fread(d->cookie, 1, sizeof d->cookie - 1, f);
    fclose(f);
    d->cookie[k] = '\0';
    d->cookie[strcspn(d->cookie, "\r\n")] = '\0';
    if (d->cookie[0] != '\0')
        return GR_OK;
    gr__log(log_of(d), GR_LOG_ERROR, "distribution: %s holds no cookie", path);
    return GR_EINVAL;
}

static void dist_free(gr__dist *d)
{
    gr__connector_stop(d);
    /* What never left becomes dead letters, as an actor's queue does when
     * the system stops: jobs parked for a connect, those a connection
     * did not write, and those not taken yet. */
    for (size_t i = 0; i < d->nparks; i++)
        jobs_fail(d, d->parks[i].head);
    free(d->parks);
    if (d->listen_fd >= 0)
        close(d->listen_fd);
    if (d->wake_fd >= 0)
        close(d->wake_fd);
    if (d->epmd_fd >= 0) /* Closing it takes the name out of epmd. */
        close(d->epmd_fd);
    for (size_t i = 0; i < d->nconns; i++) {
        ei_close_connection(d->conns[i].fd);
        jobs_fail(d, d->conns[i].out);
        d->conns[i].out = NULL;
        gr__dist_conn_release(&d->conns[i]);
    }
    jobs_fail(d, d->jobs);
    gr__dist_calls_clear(d);

    gr__monitors_free(d);
    free(d->conns);
    free(d->nodes);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* Whether name is an Erlang node's name, "alive@host": one '@', both
 * parts there, at most 255 bytes (Erlang's limit). */
bool gr__dist_node_name_ok(const char *name)
{
    const char *at = strchr(name, '@');
    size_t len = strlen(name);
    return at != NULL && at != name && at[1] != '\0' &&
           strchr(at + 1, '@') == NULL && len < MAXNODELEN &&
           (size_t)(at - name) <= EI_MAXALIVELEN;
}

int gr__dist_start(gr_system *sys, const gr_dist_config *cfg, gr__dist **out)
{
    *out = NULL;
    const gr__logger *log = gr__system_log(sys);
    if (!gr__dist_node_name_ok(cfg->node_name)) {
        gr__log(log, GR_LOG_ERROR,
                "distribution: node_name '%s' is not alive@host (one '@', "
                "both parts, at most %d bytes)",
                cfg->node_name, MAXNODELEN - 1);
        return GR_EINVAL;
    }
    const char *at = strchr(cfg->node_name, '@');
    gr__dist *d = calloc(1, sizeof *d);
    if (d == NULL)
        return GR_ENOMEM;
    d->sys = sys;
    d->listen_fd = d->wake_fd = d->epmd_fd = d->cancel_fd = -1;
    d->jobs_tail = &d->jobs;
    size_t payload = gr__system_max_payload(sys);
    d->max_frame = gr__system_max_frame(sys) != 0 ? gr__system_max_frame(sys)
                   : payload <= (INT32_MAX - 65536) / 2 ? 2 * payload + 65536
                                                        : INT32_MAX;
    d->queue_limit =
        gr__system_link_buffer(sys) ? gr__system_link_buffer(sys) : QUEUE_LIMIT;
    d->timeout_ms =
        cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEFAULT_TIMEOUT_MS;
    d->ticktime_ns = (uint64_t)(cfg->net_ticktime_ms ? cfg->net_ticktime_ms
                                                     : DEFAULT_TICKTIME_MS) *
                     1000000u;
    pthread_mutex_init(&d->lock, NULL);
    int rc = read_cookie(d, cfg->cookie);
    char alive[MAXATOMLEN_UTF8], host[MAXNODELEN];
    snprintf(alive, sizeof alive, "%.*s", (int)(at - cfg->node_name),
             cfg->node_name);
    snprintf(host, sizeof host, "%s", at + 1);
    struct in_addr addr;
    const char *listen = cfg->listen != NULL ? cfg->listen : "127.0.0.1";
    if (rc == GR_OK && inet_pton(AF_INET, listen, &addr) != 1) {
        gr__log(log, GR_LOG_ERROR,
                "distribution: listen '%s' is not an IPv4 address", listen);
        rc = GR_EINVAL;
    }
    if (rc == GR_OK &&
        (ei_init() != 0 ||
         ei_connect_xinit_ussi(&d->ec, host, alive, cfg->node_name, &addr,
                               d->cookie, (unsigned)gr__mono_ns() | 1u,
                               &gr__dist_sockets, sizeof gr__dist_sockets,
                               NULL) < 0))
        rc = GR_ESYS;
    int port = cfg->port;
    if (rc == GR_OK &&
        ((d->listen_fd = ei_xlisten(&d->ec, &addr, &port, 64)) < 0 ||
         fcntl(d->listen_fd, F_SETFL, O_NONBLOCK) != 0)) {
        int e = erl_errno;
        gr__log(log, GR_LOG_ERROR, "distribution: cannot listen on %s:%d: %s",
                listen, port, strerror(e));
        rc = e == EADDRINUSE ? GR_EADDRINUSE : GR_ESYS;
    }
    if (rc == GR_OK &&
        (d->epmd_fd = ei_publish_tmo(&d->ec, port, d->timeout_ms)) < 0) {
        int e = epmd_answers() ? erl_errno : ECONNREFUSED;
        if (e == ECONNREFUSED)
            gr__log(log, GR_LOG_ERROR,
                    "distribution: no epmd answers on this host (`epmd "
                    "-daemon` starts one; or any erl does)");
        else
            gr__log(log, GR_LOG_ERROR,
                    "distribution: epmd refused the name %s: %s (is it "
                    "taken by a running node?)",
                    cfg->node_name, strerror(e));
        rc = GR_ECONNREFUSED;
    }
    if (rc == GR_OK &&
        (d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        rc = GR_ESYS;
    d->self_id = gr__node_id(cfg->node_name, strlen(cfg->node_name));
    /* The threads take no signals: a write to a peer that has reset the
     * connection must be EPIPE, not a SIGPIPE that ends the program. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (rc == GR_OK)
        rc = gr__connector_start(d);
    if (rc == GR_OK && pthread_create(&d->thread, NULL, dist_main, d) != 0)
        rc = GR_ESYS;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != GR_OK) {
        dist_free(d);
        return rc;
    }
    gr__log(log_of(d), GR_LOG_INFO, "distribution: %s on %s:%d", cfg->node_name,
            listen, port);
    *out = d;
    return GR_OK;
}

void gr__dist_stop(gr__dist *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    d->quit = true;
    pthread_mutex_unlock(&d->lock);
    uint64_t one = 1;
    (void)!write(d->wake_fd, &one, sizeof one);
    pthread_join(d->thread, NULL);
    dist_free(d);
}

int gr_dist_node_name(gr_system *sys, char *buf, size_t size)
{
    gr__dist *d = sys != NULL ? gr__system_dist(sys) : NULL;
    if (d == NULL)
        return GR_ENOTSUP;
    if (buf == NULL)
        return GR_EINVAL;
    const char *name = ei_thisnodename(&d->ec);
    if (strlen(name) >= size)
        return GR_ENAMETOOLONG;
    memcpy(buf, name, strlen(name) + 1);
    return GR_OK;
}
