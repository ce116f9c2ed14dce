/*
 * The read side of every link, on the I/O thread: bytes in, whole frames
 * out of them (each length checked before anything is allocated), messages
 * delivered here or routed on, route changes applied, and what happens
 * when a link goes down.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actor/runtime.h"
#include "transport/transport.h"

/* Seconds an orphaned node may take to stop before SIGALRM ends it. */
#define ORPHAN_DEADLINE_S 10u
/* Bytes a link's read buffer starts with. */
#define READ_CHUNK ((size_t)256 << 10)
/* An ACK goes out once this many bytes of frames were taken since the
 * last one, or ACK_DELAY_S after a read that took fewer. */
#define ACK_BYTES   ((size_t)64 << 10)
#define ACK_DELAY_S 0.001

/* Tells the peer how many of its frames this side took (unless a write
 * since carried it already). */
static void ack_now(gr__link *l)
{
    l->rx_unacked = 0;
    gr__link_send_ack(l);
}

static void on_ack_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    ack_now(w->data);
}

/* After a read that took frames: an ACK now for many bytes (a quarter of
 * the link's buffer at most), else soon (a timer), if no write on the
 * link carries one first. */
static void ack_soon(gr__link *l)
{
    size_t most =
        l->t->link_limit / 4 < ACK_BYTES ? l->t->link_limit / 4 : ACK_BYTES;
    if (l->rx_unacked >= most)
        ack_now(l);
    else if (l->rx_unacked > 0 && !ev_is_active(&l->ack_timer))
        ev_timer_start(gr__io_loop(gr__system_io(l->t->sys)), &l->ack_timer);
}

/* Delivers a message frame meant for this node. */
static void deliver_here(gr__transport *t, gr_msg *m)
{
    gr_system *sys = t->sys;
    if (m->to.incarnation != gr__system_incarnation(sys)) {
        if (m->type < GR_MSG_RESERVED)
            gr__dead_message(sys, m, GR_DL_NODE_DOWN,
                             &(gr_reason){.code = GR_ENOCONNECTION});
        else /* A monitor or link of an earlier incarnation's actor. */
            gr__signal_refused(sys, m, GR_ENOCONNECTION);
        return;
    }
    int rc = gr__deliver_msg(sys, NULL, m);
    if (rc == GR_ENOACTOR && m->type >= GR_MSG_RESERVED)
        gr__signal_orphan(sys, m); /* A monitor or link gets its noproc. */
    else if (rc == GR_ENOTSUP)
        gr__signal_refused(sys, m, rc); /* Its asker must not wait. */
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
        if (f.msg.to.node == gr__system_node_id(sys))
            deliver_here(t, &f.msg);
        else
            (void)gr__transport_forward(t, NULL, &f.msg, f.msg.to.node, NULL,
                                        l);
        return NULL;
    case GR__WIRE_NAMED:
        if (f.node != gr__system_node_id(sys)) {
            (void)gr__transport_forward(t, NULL, &f.msg, f.node, name, l);
        } else if (gr_whereis(sys, name, &f.msg.to) == GR_OK) {
            deliver_here(t, &f.msg);
        } else if (f.msg.type < GR_MSG_RESERVED) {
            gr__dead_message_named(sys, &f.msg, f.name, f.name_len,
                                   GR_DL_UNKNOWN_NAME,
                                   &(gr_reason){.code = GR_ENOTFOUND});
        }
        return NULL;
    case GR__WIRE_NODE_UP:
        if (f.node == gr__system_node_id(sys) || f.name_len == 0)
            return "NODE_UP for this node";
        (void)gr__transport_route_up(l, f.node, f.incarnation, name);
        return NULL;
    case GR__WIRE_NODE_DOWN:
        (void)gr__transport_route_down(l, f.node, f.incarnation);
        return NULL;
    case GR__WIRE_WHEREIS: {
        gr__whereis_answer a = {0};
        a.found = gr_whereis(sys, name, &a.ref) == GR_OK;
        gr_msg m = {.type = GR__MSG_WHEREIS_ANSWER,
                    .to = f.reply_to,
                    .corr = f.corr,
                    .data = &a,
                    .len = sizeof a};
        (void)gr__transport_send(t, NULL, &m);
        uint8_t frame[GR__WIRE_PREFIX_MAX];
        size_t n =
            gr__wire_whereis_frame(frame, name, f.name_len, f.reply_to, f.corr);
        gr__transport_flood(t, l, frame, n);
        return NULL;
    }
    case GR__WIRE_ACK:
        return gr__link_acked(l, f.acked);
    case GR__WIRE_SHUTDOWN:
        if (!l->is_parent)
            return "SHUTDOWN from a node that is not the parent";
        ack_now(l); /* What came before it was taken: say so now. */
        gr__log(gr__system_log(sys), GR_LOG_INFO, "node %s: shutdown requested",
                gr__system_node_name(sys));
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
        if (h.kind != GR__WIRE_ACK) { /* Counted before it is handled. */
            /* Only this thread writes it: a plain increment. */
            atomic_store_explicit(
                &l->rx_count,
                atomic_load_explicit(&l->rx_count, memory_order_relaxed) + 1,
                memory_order_release);
            l->rx_unacked += whole;
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
            gr__link_down(l, "out of memory for the read buffer");
            return READ_DOWN;
        }
        l->in_cap = READ_CHUNK;
    }
    ssize_t r = read(l->fd, l->in + l->in_len, l->in_cap - l->in_len);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return READ_EMPTY;
    if (r <= 0) {
        if (l->in_len > 0) /* The other side died mid-write, probably. */
            gr__log(gr__system_log(l->t->sys), GR_LOG_WARN,
                    "node %s: the link to %s closed in the middle of a "
                    "frame (%zu bytes dropped)",
                    gr__system_node_name(l->t->sys), l->name, l->in_len);
        gr__link_down(l, NULL);
        return READ_DOWN;
    }
    l->in_len += (size_t)r;
    char errbuf[GR_REASON_TEXT_MAX + 1];
    const char *why = parse_frames(l, errbuf, sizeof errbuf);
    if (why != NULL) {
        gr__link_down(l, why);
        return READ_DOWN;
    }
    ack_soon(l);
    return READ_DATA;
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    (void)read_link(w->data);
}

void gr__link_start_reading(gr__link *l)
{
    ev_io_init(&l->rio, on_readable, l->fd, EV_READ);
    l->rio.data = l;
    ev_timer_init(&l->ack_timer, on_ack_timer, ACK_DELAY_S, 0.);
    l->ack_timer.data = l;
    ev_io_start(gr__io_loop(gr__system_io(l->t->sys)), &l->rio);
}

void gr__link_drain(gr__link *l)
{
    while (!l->down && read_link(l) == READ_DATA)
        ;
    gr__link_down(l, NULL);
}

/* Dead-letters the messages on a link that went down which its peer did
 * not confirm taking: queued, or written but not acknowledged (in the
 * kernel's buffers, or read by a process that died before it said so).
 * They are taken out first: dead-lettering may send (a request's failure
 * to a remote asker), which must not happen under the link's lock. */
static void drop_queued(gr__link *l)
{
    gr__ring out;
    gr__link_take_queued(l, &out);
    uint8_t hdr[GR__WIRE_HEADER];
    while (out.len >= GR__WIRE_HEADER) {
        gr__ring_peek(&out, 0, hdr, sizeof hdr);
        gr__wire_header h;
        if (gr__wire_header_parse(hdr, &h) != GR_OK ||
            GR__WIRE_HEADER + (size_t)h.len > out.len)
            break; /* Cannot happen: whole frames we wrote. */
        size_t whole = GR__WIRE_HEADER + (size_t)h.len;
        uint8_t *frame = NULL;
        if (h.kind == GR__WIRE_MSG || h.kind == GR__WIRE_NAMED)
            frame = malloc(whole);
        if (frame != NULL) {
            gr__ring_peek(&out, 0, frame, whole);
            gr__wire_frame f;
            const char *why;
            if (gr__wire_decode(h.kind, frame + GR__WIRE_HEADER, h.len, &f,
                                &why) == GR_OK &&
                f.msg.type < GR_MSG_RESERVED)
                gr__dead_message_named(l->t->sys, &f.msg, f.name, f.name_len,
                                       GR_DL_NODE_DOWN,
                                       &(gr_reason){.code = GR_ENOCONNECTION});
            free(frame);
        }
        gr__ring_consume(&out, whole);
    }
    gr__ring_destroy(&out);
}

/* Loop thread: the link is gone (EOF, a socket error, or a protocol error
 * in `error`). Every node reached through it is down. */
void gr__link_down(gr__link *l, const char *error)
{
    if (l->down)
        return;
    l->down = true;
    gr__transport *t = l->t;
    gr_system *sys = t->sys;
    struct ev_loop *loop = gr__io_loop(gr__system_io(sys));
    ev_io_stop(loop, &l->rio);
    ev_io_stop(loop, &l->wio);
    ev_timer_stop(loop, &l->ack_timer);
    pthread_mutex_lock(&l->lock);
    l->closed = true;
    l->flushing = false;
    if (error != NULL)
        snprintf(l->error, sizeof l->error, "%s", error);
    pthread_mutex_unlock(&l->lock);
    if (error != NULL)
        gr__log(gr__system_log(sys), GR_LOG_ERROR,
                "node %s: protocol error on the link to %s: %s; closing it",
                gr__system_node_name(sys), l->name, error);
    gr__transport_lose_routes(l);
    drop_queued(l);
    if (l->is_parent) {
        gr__log(gr__system_log(sys), GR_LOG_INFO,
                "node %s: the link to its parent closed; stopping",
                gr__system_node_name(sys));
        if (error != NULL && t->node_exit != NULL)
            atomic_store(t->node_exit, 1); /* Its parent reports a failure. */
        gr_system_stop(sys);
        /* An orphan must not linger: if the orderly stop hangs (an actor
         * that never returns, a terminate that blocks), SIGALRM's default
         * action ends the process. */
        alarm(ORPHAN_DEADLINE_S);
    }
    if (l->pid > 0)
        gr__process_link_down(l, error != NULL);
    else
        gr__transport_forget(l);
}
