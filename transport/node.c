/*
 * The transport core: routes to nodes, the remote-send hook, the read side
 * of every link (frames in, messages delivered or routed on), and what
 * happens when a link goes down (see transport.h).
 */
#define _GNU_SOURCE /* pidfd_open through syscall(). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actor/relations.h"
#include "actor/remote.h"
#include "actor/send.h"
#include "transport/transport.h"

/* Default bytes of application frames a link queues. */
#define DEFAULT_LINK_BUFFER ((size_t)8 << 20)
/* Bytes a link's read buffer starts with. */
#define READ_CHUNK ((size_t)256 << 10)
/* How long a node child may live on after closing its link. */
#define GRACE_S 2.0
/* Poll period when pidfds are not available. */
#define REAP_POLL_S 0.002

static int t_send(void *tp, gr__worker *w, const gr_msg *m);
static int t_send_name(void *tp, gr__worker *w, uint32_t node, const char *name,
                       const gr_msg *m);
static void t_shutdown(void *tp);

static const gr__remote_ops ops = {t_send, t_send_name, t_shutdown};

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
        t->link_limit =
            sys->link_buffer ? sys->link_buffer : DEFAULT_LINK_BUFFER;
        t->max_frame = sys->max_frame ? sys->max_frame
                                      : sys->max_payload + GR__WIRE_PREFIX_MAX;
        if (t->max_frame > UINT32_MAX)
            t->max_frame = UINT32_MAX;
        if (gr__random_bytes(t->secret, sizeof t->secret) != GR_OK) {
            pthread_rwlock_destroy(&t->lock);
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

/* The link a frame for incarnation inc of node leaves by: its route's, or
 * the parent's for a node not heard of; NULL when it cannot be reached
 * (or is a stale incarnation). The route lock is held. */
static gr__link *link_to(gr__transport *t, uint32_t node, uint32_t inc)
{
    const gr__route *r = find_route(t, node);
    if (r != NULL)
        return inc == 0 || r->inc == inc ? r->via : NULL;
    return t->parent;
}

/* A send the transport could not take: its dead letter and result. */
static int refused(gr__transport *t, const gr_msg *m, int rc)
{
    if (m->type < GR_MSG_RESERVED && rc != GR_EMSGSIZE)
        gr__dead_message(t->sys, m,
                         rc == GR_EBACKPRESSURE ? GR_DL_BACKPRESSURE
                                                : GR_DL_NODE_DOWN,
                         &(gr_reason){.code = rc});
    return rc;
}

/* Sends a frame by the route to node (inc 0: any incarnation). */
static int route_frame(gr__transport *t, uint32_t node, uint32_t inc,
                       const uint8_t *prefix, size_t plen, const gr_msg *m)
{
    if (plen - GR__WIRE_HEADER + m->len > t->max_frame)
        return GR_EMSGSIZE;
    pthread_rwlock_rdlock(&t->lock);
    gr__link *l = link_to(t, node, inc);
    int rc = l != NULL ? gr__link_send(l, prefix, plen, m->data, m->len,
                                       m->type >= GR_MSG_RESERVED)
                       : GR_ENOCONNECTION;
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

static int t_send(void *tp, gr__worker *w, const gr_msg *m)
{
    (void)w;
    gr__transport *t = tp;
    uint8_t prefix[GR__WIRE_PREFIX_MAX];
    size_t plen = gr__wire_msg_prefix(prefix, m);
    int rc = route_frame(t, m->to.node, m->to.incarnation, prefix, plen, m);
    return rc == GR_OK ? GR_OK : refused(t, m, rc);
}

static int t_send_name(void *tp, gr__worker *w, uint32_t node, const char *name,
                       const gr_msg *m)
{
    (void)w;
    gr__transport *t = tp;
    uint8_t prefix[GR__WIRE_PREFIX_MAX];
    size_t plen = gr__wire_named_prefix(prefix, node, name, strlen(name), m);
    int rc = route_frame(t, node, 0, prefix, plen, m);
    return rc == GR_OK ? GR_OK : refused(t, m, rc);
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
    size_t n = gr__wire_node_frame(frame, GR__WIRE_NODE_UP, sys->node_id,
                                   sys->incarnation, sys->node_name);
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
    snprintf(r->name, sizeof r->name, "%s", name);
    return GR_OK;
}

/* ---- Reading. */

static void link_down(gr__link *l, const char *error);

/* Delivers a message frame meant for this node. */
static void deliver_here(gr__transport *t, gr_msg *m)
{
    gr_system *sys = t->sys;
    if (m->to.incarnation != sys->incarnation) {
        if (m->type < GR_MSG_RESERVED)
            gr__dead_message(sys, m, GR_DL_NODE_DOWN,
                             &(gr_reason){.code = GR_ENOCONNECTION});
        return;
    }
    int rc = gr__deliver_msg(sys, NULL, m);
    if (rc == GR_ENOACTOR && m->type >= GR_MSG_RESERVED)
        gr__signal_orphan(sys, m); /* A monitor or link gets its noproc. */
}

/* Handles one frame from l; returns NULL or a protocol error. */
static const char *handle_frame(gr__link *l, uint8_t kind, const uint8_t *body,
                                size_t len)
{
    gr__transport *t = l->t;
    gr_system *sys = t->sys;
    gr__wire_frame f;
    const char *why;
    if (gr__wire_decode(kind, body, len, &f, &why) != GR_OK)
        return why;
    char name[GR_NAME_MAX + 1];
    if (f.name != NULL)
        memcpy(name, f.name, f.name_len);
    name[f.name != NULL ? f.name_len : 0] = '\0';
    switch (kind) {
    case GR__WIRE_MSG:
        if (f.msg.to.node == sys->node_id)
            deliver_here(t, &f.msg);
        else
            (void)t_send(t, NULL, &f.msg);
        return NULL;
    case GR__WIRE_NAMED:
        if (f.node != sys->node_id) {
            (void)t_send_name(t, NULL, f.node, name, &f.msg);
        } else if (gr_whereis(sys, name, &f.msg.to) == GR_OK) {
            deliver_here(t, &f.msg);
        } else if (f.msg.type < GR_MSG_RESERVED) {
            gr__dead_message(sys, &f.msg, GR_DL_UNKNOWN_NAME,
                             &(gr_reason){.code = GR_ENOTFOUND});
        }
        return NULL;
    case GR__WIRE_NODE_UP: {
        if (f.node == sys->node_id || f.name_len == 0)
            return "NODE_UP for this node";
        pthread_rwlock_wrlock(&t->lock);
        gr__route *r = find_route(t, f.node);
        int rc = GR_OK;
        if (r == NULL) {
            rc = add_route(t, f.node, f.incarnation, name, l);
        } else if (r->via == l) { /* Newer news through the same way. */
            r->inc = f.incarnation;
            snprintf(r->name, sizeof r->name, "%s", name);
        }
        pthread_rwlock_unlock(&t->lock);
        if (rc == GR_OK && r == NULL)
            flood(t, l, GR__WIRE_NODE_UP, f.node, f.incarnation, name);
        return NULL;
    }
    case GR__WIRE_NODE_DOWN: {
        pthread_rwlock_wrlock(&t->lock);
        gr__route *r = find_route(t, f.node);
        bool gone = r != NULL && r->via == l && r->inc == f.incarnation;
        if (gone)
            *r = t->routes[--t->nroutes];
        pthread_rwlock_unlock(&t->lock);
        if (gone) {
            gr__broadcast_node_down(sys, f.node, f.incarnation);
            flood(t, l, GR__WIRE_NODE_DOWN, f.node, f.incarnation, NULL);
        }
        return NULL;
    }
    case GR__WIRE_WHEREIS: {
        gr__whereis_answer a = {0};
        a.found = gr_whereis(sys, name, &a.ref) == GR_OK;
        gr_msg m = {.type = GR__MSG_WHEREIS_ANSWER,
                    .to = f.reply_to,
                    .corr = f.corr,
                    .data = &a,
                    .len = sizeof a};
        (void)t_send(t, NULL, &m);
        uint8_t frame[GR__WIRE_PREFIX_MAX];
        size_t n =
            gr__wire_whereis_frame(frame, name, f.name_len, f.reply_to, f.corr);
        gr__transport_flood(t, l, frame, n);
        return NULL;
    }
    case GR__WIRE_SHUTDOWN:
        if (!l->is_parent)
            return "SHUTDOWN from a node that is not the parent";
        gr__log(&sys->log, GR_LOG_INFO, "node %s: shutdown requested",
                sys->node_name);
        gr_system_stop(sys);
        return NULL;
    default:
        return "frame kind not allowed after the handshake";
    }
}

/* Parses and handles every whole frame in l's read buffer. Returns NULL or
 * a protocol error. */
static const char *parse_frames(gr__link *l, char *errbuf, size_t errsize)
{
    size_t off = 0;
    const char *why = NULL;
    while (l->in_len - off >= GR__WIRE_HEADER && !l->down) {
        gr__wire_header h;
        if (gr__wire_header_parse(l->in + off, &h) != GR_OK) {
            why = h.version != GR__WIRE_VERSION ? "wrong protocol version"
                                                : "unknown frame kind";
            break;
        }
        if (h.len > l->t->max_frame) {
            snprintf(errbuf, errsize, "frame of %u bytes exceeds %zu", h.len,
                     l->t->max_frame);
            why = errbuf;
            break;
        }
        size_t whole = GR__WIRE_HEADER + (size_t)h.len;
        if (l->in_len - off < whole) {
            /* Make room for the whole frame; its size is within bounds. */
            if (whole > l->in_cap) {
                uint8_t *in = malloc(whole);
                if (in == NULL) {
                    why = "out of memory for a frame";
                    break;
                }
                memcpy(in, l->in + off, l->in_len - off);
                free(l->in);
                l->in = in;
                l->in_cap = whole;
                l->in_len -= off;
                off = 0;
            }
            break;
        }
        why = handle_frame(l, h.kind, l->in + off + GR__WIRE_HEADER, h.len);
        if (why != NULL)
            break;
        off += whole;
    }
    if (off > 0 && !l->down) {
        memmove(l->in, l->in + off, l->in_len - off);
        l->in_len -= off;
    }
    return why;
}

/* What one read of a link found. */
enum read_result { READ_DOWN = -1, READ_EMPTY = 0, READ_DATA = 1 };

/* Reads what l has and handles the whole frames in it. */
static enum read_result read_link(gr__link *l)
{
    if (l->in == NULL) {
        if ((l->in = malloc(READ_CHUNK)) == NULL) {
            link_down(l, "out of memory for the read buffer");
            return READ_DOWN;
        }
        l->in_cap = READ_CHUNK;
    }
    ssize_t r = read(l->fd, l->in + l->in_len, l->in_cap - l->in_len);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return READ_EMPTY;
    if (r <= 0) {
        if (l->in_len > 0) /* The other side died mid-write, probably. */
            gr__log(&l->t->sys->log, GR_LOG_WARN,
                    "node %s: the link to %s closed in the middle of a "
                    "frame (%zu bytes dropped)",
                    l->t->sys->node_name, l->name, l->in_len);
        link_down(l, NULL);
        return READ_DOWN;
    }
    l->in_len += (size_t)r;
    char errbuf[GR_REASON_TEXT_MAX + 1];
    const char *why = parse_frames(l, errbuf, sizeof errbuf);
    if (why != NULL) {
        link_down(l, why);
        return READ_DOWN;
    }
    return READ_DATA;
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    (void)read_link(w->data);
}

/* ---- Node processes. */

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGABRT:
        return "SIGABRT";
    case SIGKILL:
        return "SIGKILL";
    case SIGTERM:
        return "SIGTERM";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGINT:
        return "SIGINT";
    case SIGHUP:
        return "SIGHUP";
    case SIGPIPE:
        return "SIGPIPE";
    case SIGQUIT:
        return "SIGQUIT";
    case SIGTRAP:
        return "SIGTRAP";
    case SIGSYS:
        return "SIGSYS";
    case SIGUSR1:
        return "SIGUSR1";
    case SIGUSR2:
        return "SIGUSR2";
    case SIGALRM:
        return "SIGALRM";
    default:
        return NULL;
    }
}

/* The exit reason of a node process from its wait status. */
static gr_reason exit_reason(const gr__link *l, int status)
{
    gr_reason r = {0};
    if (l->error[0] != '\0') {
        r.code = GR_EPROTO;
        snprintf(r.text, sizeof r.text, "%s", l->error);
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *name = signal_name(sig);
        r.code = GR_ESIGNAL;
        r.detail = sig;
        if (name != NULL)
            snprintf(r.text, sizeof r.text, "signal %s", name);
        else
            snprintf(r.text, sizeof r.text, "signal %d", sig);
    } else if (WIFEXITED(status) &&
               WEXITSTATUS(status) == GR_NODE_EXIT_SHUTDOWN) {
        r.code = GR_ESHUTDOWN;
        snprintf(r.text, sizeof r.text, "its root shut down");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        r.code = GR_EEXITSTATUS;
        r.detail = WEXITSTATUS(status);
        snprintf(r.text, sizeof r.text, "exit status %d", WEXITSTATUS(status));
    }
    return r;
}

/* Removes l from the transport's links and drops the transport's
 * reference. */
static void forget_link(gr__link *l)
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

/* Tries to reap l's process; true once it is reaped (then the stand-in has
 * been told and the link forgotten). */
static bool try_reap(gr__link *l)
{
    gr__transport *t = l->t;
    struct ev_loop *loop = gr__io_loop(&t->sys->io);
    int status = 0;
    pthread_mutex_lock(&l->lock);
    pid_t got = waitpid(l->pid, &status, WNOHANG);
    if (got == l->pid || (got < 0 && errno == ECHILD))
        l->reaped = true;
    pthread_mutex_unlock(&l->lock);
    if (!l->reaped)
        return false;
    if (got < 0)
        status = 0; /* Reaped by someone else (SIGCHLD ignored). */
    ev_io_stop(loop, &l->pio);
    ev_timer_stop(loop, &l->grace);
    /* What it wrote before it died still counts. */
    while (!l->down && read_link(l) == READ_DATA)
        ;
    link_down(l, NULL);
    gr__node_exit x = {.reason = exit_reason(l, status)};
    gr_event ev = {.kind = GR_EV_NODE_DOWN,
                   .level = gr_reason_is_clean(&x.reason) ? GR_LOG_INFO
                                                          : GR_LOG_WARN,
                   .reason = x.reason,
                   .node = l->name,
                   .pid = l->pid};
    gr__event_emit(&t->sys->events, &t->sys->log, &ev);
    (void)gr__deliver(t->sys, NULL, GR__MSG_NODE_EXITED, GR_REF_NONE, l->proxy,
                      0, &x, sizeof x);
    forget_link(l);
    return true;
}

static void on_pidfd(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    try_reap(w->data);
}

static void on_grace(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    gr__link *l = w->data;
    if (l->pidfd < 0) { /* No pidfd: this timer polls. */
        if (!try_reap(l))
            ev_timer_again(loop, w);
        return;
    }
    if (!try_reap(l))
        gr__transport_kill(l); /* Closed its link but lingers. */
}

/* Loop thread: starts watching a link that gr__transport_add() added. */
static void start_link(void *arg)
{
    gr__link *l = arg;
    struct ev_loop *loop = gr__io_loop(&l->t->sys->io);
    ev_io_init(&l->rio, on_readable, l->fd, EV_READ);
    l->rio.data = l;
    ev_io_start(loop, &l->rio);
    if (l->pid > 0) {
        ev_timer_init(&l->grace, on_grace, 0., GRACE_S);
        l->grace.data = l;
        l->pidfd = (int)syscall(SYS_pidfd_open, l->pid, 0);
        if (l->pidfd >= 0) {
            ev_io_init(&l->pio, on_pidfd, l->pidfd, EV_READ);
            l->pio.data = l;
            ev_io_start(loop, &l->pio);
        } else {
            l->grace.repeat = REAP_POLL_S;
            ev_timer_again(loop, &l->grace);
        }
    }
    /* It may have died before the loop got here. */
    if (l->pid > 0)
        try_reap(l);
    gr__link_release(l); /* gr__transport_add's reference for this job. */
}

int gr__transport_add(gr__transport *t, gr__link *l)
{
    gr_system *sys = t->sys;
    pthread_rwlock_wrlock(&t->lock);
    int rc = GR_OK;
    if (l->node == sys->node_id || find_route(t, l->node) != NULL)
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
        l->listed = true;
        if (l->is_parent)
            t->parent = l;
    }
    pthread_rwlock_unlock(&t->lock);
    if (rc != GR_OK)
        return rc;
    if (!l->is_parent) {
        flood(t, l, GR__WIRE_NODE_UP, l->node, l->inc, l->name);
        send_routes(t, l);
    }
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    if (gr__io_call(&sys->io, start_link, l) != GR_OK)
        atomic_fetch_sub_explicit(&l->refs, 1, memory_order_relaxed);
    return GR_OK;
}

/* Dead-letters the messages still queued on a link that went down. */
static void drop_queued(gr__link *l)
{
    gr__ring *out = &l->out;
    uint8_t hdr[GR__WIRE_HEADER];
    while (out->len >= GR__WIRE_HEADER) {
        gr__ring_peek(out, 0, hdr, sizeof hdr);
        gr__wire_header h;
        if (gr__wire_header_parse(hdr, &h) != GR_OK ||
            GR__WIRE_HEADER + (size_t)h.len > out->len)
            break; /* Cannot happen: we wrote these. */
        size_t whole = GR__WIRE_HEADER + (size_t)h.len;
        uint8_t *frame = NULL;
        if (h.kind == GR__WIRE_MSG || h.kind == GR__WIRE_NAMED)
            frame = malloc(whole);
        if (frame != NULL) {
            gr__ring_peek(out, 0, frame, whole);
            gr__wire_frame f;
            const char *why;
            if (gr__wire_decode(h.kind, frame + GR__WIRE_HEADER, h.len, &f,
                                &why) == GR_OK &&
                f.msg.type < GR_MSG_RESERVED)
                gr__dead_message(l->t->sys, &f.msg, GR_DL_NODE_DOWN,
                                 &(gr_reason){.code = GR_ENOCONNECTION});
            free(frame);
        }
        gr__ring_consume(out, whole);
    }
    gr__ring_destroy(out);
}

void gr__transport_lose_routes(gr__link *l)
{
    gr__transport *t = l->t;
    gr_system *sys = t->sys;
    pthread_rwlock_wrlock(&t->lock);
    size_t nlost = 0;
    gr__route *lost = malloc((t->nroutes ? t->nroutes : 1) * sizeof *lost);
    for (size_t i = 0; i < t->nroutes;) {
        if (t->routes[i].via == l) {
            if (lost != NULL)
                lost[nlost++] = t->routes[i];
            t->routes[i] = t->routes[--t->nroutes];
        } else {
            i++;
        }
    }
    pthread_rwlock_unlock(&t->lock);
    for (size_t i = 0; i < nlost; i++) {
        gr__log(&sys->log, GR_LOG_INFO, "node %s: node %s is down",
                sys->node_name, lost[i].name);
        gr__broadcast_node_down(sys, lost[i].node, lost[i].inc);
        flood(t, l, GR__WIRE_NODE_DOWN, lost[i].node, lost[i].inc, NULL);
    }
    free(lost);
}

/* Loop thread: the link is gone (EOF, a socket error, or a protocol error
 * in `error`). Every node reached through it is down. */
static void link_down(gr__link *l, const char *error)
{
    if (l->down)
        return;
    l->down = true;
    gr__transport *t = l->t;
    gr_system *sys = t->sys;
    struct ev_loop *loop = gr__io_loop(&sys->io);
    ev_io_stop(loop, &l->rio);
    ev_io_stop(loop, &l->wio);
    pthread_mutex_lock(&l->lock);
    l->closed = true;
    l->flushing = false;
    if (error != NULL)
        snprintf(l->error, sizeof l->error, "%s", error);
    pthread_mutex_unlock(&l->lock);
    if (error != NULL)
        gr__log(&sys->log, GR_LOG_ERROR,
                "node %s: protocol error on the link to %s: %s; closing it",
                sys->node_name, l->name, error);
    gr__transport_lose_routes(l);
    pthread_mutex_lock(&l->lock);
    drop_queued(l);
    pthread_mutex_unlock(&l->lock);
    if (l->is_parent) {
        gr__log(&sys->log, GR_LOG_INFO,
                "node %s: the link to its parent closed; stopping",
                sys->node_name);
        gr_system_stop(sys);
    }
    if (l->pid > 0 && !l->reaped) {
        /* The process ends: killed after a protocol error, otherwise it
         * sees EOF too; the grace timer deals with one that lingers. */
        shutdown(l->fd, SHUT_RDWR);
        if (error != NULL)
            gr__transport_kill(l);
        if (l->pidfd >= 0)
            ev_timer_again(loop, &l->grace);
        return;
    }
    if (l->pid == 0)
        forget_link(l);
}

/* ---- Stopping node children. */

void gr__transport_request_stop(gr__link *l)
{
    uint8_t frame[GR__WIRE_PREFIX_MAX];
    size_t n = gr__wire_node_frame(frame, GR__WIRE_SHUTDOWN, 0, 0, NULL);
    (void)gr__link_send(l, frame, n, NULL, 0, true);
}

void gr__transport_kill(gr__link *l)
{
    pthread_mutex_lock(&l->lock);
    if (l->pid > 0 && !l->reaped && !l->kill_sent) {
        kill(l->pid, SIGKILL);
        l->kill_sent = true;
    }
    pthread_mutex_unlock(&l->lock);
}

void gr__transport_stop_blocking(gr__link *l, int wait_ms)
{
    if (l->pid <= 0)
        return;
    pthread_mutex_lock(&l->lock);
    bool reaped = l->reaped;
    pthread_mutex_unlock(&l->lock);
    if (reaped)
        return;
    /* The loop has stopped: write the request from here. */
    uint8_t frame[GR__WIRE_PREFIX_MAX];
    size_t n = gr__wire_node_frame(frame, GR__WIRE_SHUTDOWN, 0, 0, NULL);
    uint64_t deadline = gr__mono_ns() + (uint64_t)wait_ms * 1000000u;
    pthread_mutex_lock(&l->lock);
    bool closed = l->closed;
    pthread_mutex_unlock(&l->lock);
    if (!closed)
        (void)gr__write_all(l->fd, frame, n, deadline);
    int status;
    pid_t got;
    while ((got = waitpid(l->pid, &status, WNOHANG)) == 0 &&
           gr__mono_ns() < deadline)
        usleep(1000);
    pthread_mutex_lock(&l->lock);
    if (got == 0) {
        kill(l->pid, SIGKILL);
        while (waitpid(l->pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    l->reaped = true;
    pthread_mutex_unlock(&l->lock);
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
    free(t->links);
    free(t->routes);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}
