/*
 * Reading a distribution connection: as many bytes as the kernel has into
 * the connection's buffer, then every whole frame in it, each checked
 * before anything decodes it (erl_interface's receive would read one
 * message per call, and parse its control part unchecked).
 *
 * A frame is a 4-byte length, then (the connection past its handshake, no
 * atom cache: what an erl_interface node agrees to) the pass-through byte
 * 'p', the control message (version byte, tuple) and, for sends, the
 * message (version byte, term). A zero length is a tick, answered with one.
 *
 * A send that leaves its actor with a deep mailbox (gr__backlogged) holds
 * the connection back: the rest of what was read is handed on, then the
 * connection is not read until the actor has caught up.
 */
#include "dist/dist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bytes asked of the kernel per read, at least. */
#define READ_CHUNK 65536
/* The version byte of the external term format. */
#define VERSION_BYTE 131
/* Control message tags (Erlang's dist protocol) read here. */
enum {
    TAG_LINK = 1,
    TAG_SEND = 2,
    TAG_EXIT = 3,
    TAG_UNLINK = 4,
    TAG_REG_SEND = 6,
    TAG_EXIT2 = 8,
    TAG_SEND_TT = 12,
    TAG_EXIT_TT = 13,
    TAG_REG_SEND_TT = 16,
    TAG_EXIT2_TT = 18,
    TAG_MONITOR_P = 19,
    TAG_DEMONITOR_P = 20,
    TAG_MONITOR_P_EXIT = 21,
    TAG_SEND_SENDER = 22,
    TAG_UNLINK_ID = 35,
    TAG_UNLINK_ID_ACK = 36,
};

/* Answers an UNLINK_ID (id: its id term, n bytes) with UNLINK_ID_ACK
 * {36, Id, To, From}, as the protocol asks. */
static bool ack_unlink(gr__dist *d, int fd, const char *id, int n,
                       const erlang_pid *from, const erlang_pid *to)
{
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return false;
    bool ok = gr__frame_start(&x, 4, TAG_UNLINK_ID_ACK) &&
              ei_x_append_buf(&x, id, n) == 0 && ei_x_encode_pid(&x, to) == 0 &&
              ei_x_encode_pid(&x, from) == 0;
    if (ok) {
        gr__frame_end(&x);
        ok = gr__dist_queue(d, fd, x.buff, (size_t)x.index);
    }
    ei_x_free(&x);
    return ok;
}

/* Skips the term at buf[*index] (checked whole already). */
static bool skip(const char *buf, int len, int *index)
{
    const char *why;
    int end = gr__term_end(buf, len, *index, &why);
    if (end < 0)
        return false;
    *index = end;
    return true;
}

/* Logs a frame from c dropped for why; 0, for parse to return. */
static int dropped(gr__dist *d, const dist_conn *c, const char *why)
{
    gr__log(gr__system_log(d->sys), GR_LOG_WARN,
            "distribution: a message from %s dropped: %s", c->node, why);
    return 0;
}

/* Reads one frame (f, n bytes: 'p', control, message) into *msg and *x
 * (x: a view into f of what the message's receiver reads, as ei's
 * receive gives it: the message with its version byte for sends, the
 * reason for exits). Returns 1 for a message to hand on, 0 for one
 * consumed here or dropped, -1 for a connection to close (why set). */
static int parse(gr__dist *d, dist_conn *c, const char *f, int n,
                 erlang_msg *msg, ei_x_buff *x, const char **why)
{
    int index = 1, end, version, arity;
    long tag;
    if (n < 2 || (unsigned char)f[0] != 'p' ||
        (unsigned char)f[1] != VERSION_BYTE) {
        *why = "a frame that is not a pass-through message";
        return -1;
    }
    /* A malformed frame is dropped, and logged: the length kept the
     * stream in step, so the connection goes on. */
    const char *bad = NULL;
    index = 2;
    if ((end = gr__term_end(f, n, index, &bad)) < 0)
        return dropped(d, c, bad);
    index = 1;
    if (ei_decode_version(f, &index, &version) != 0 ||
        ei_decode_tuple_header(f, &index, &arity) != 0 || arity < 1 ||
        ei_decode_long(f, &index, &tag) != 0)
        return dropped(d, c, "a control message that is no tuple with a tag");
    /* The message, if any, follows the control tuple: one term. */
    const char *m = f + end;
    int mlen = n - end;
    if (mlen > 0 && (unsigned char)m[0] != VERSION_BYTE)
        return dropped(d, c, "a message without its version byte");
    if (mlen > 0 && gr__term_end(m, mlen, 1, &bad) != mlen)
        return dropped(d, c, bad != NULL ? bad : "bytes after the message");
    memset(msg, 0, sizeof *msg);
    x->buff = (char *)m;
    x->buffsz = mlen;
    x->index = mlen;
    bool ok;
    size_t name_len;
    switch (tag) {
    case TAG_SEND: /* {SEND, Cookie, To} */
    case TAG_SEND_TT:
        msg->msgtype = ERL_SEND;
        ok = skip(f, n, &index) && ei_decode_pid(f, &index, &msg->to) == 0 &&
             mlen > 0;
        break;
    case TAG_SEND_SENDER: /* {SEND_SENDER, From, To} */
        msg->msgtype = ERL_SEND;
        ok = ei_decode_pid(f, &index, &msg->from) == 0 &&
             ei_decode_pid(f, &index, &msg->to) == 0 && mlen > 0;
        break;
    case TAG_REG_SEND: /* {REG_SEND, From, Cookie, ToName} */
    case TAG_REG_SEND_TT:
        msg->msgtype = ERL_REG_SEND;
        ok = ei_decode_pid(f, &index, &msg->from) == 0 && skip(f, n, &index) &&
             gr__term_atom(f, &index, msg->toname, &name_len) && mlen > 0;
        break;
    case TAG_LINK: /* {LINK, From, To} */
    case TAG_UNLINK:
        msg->msgtype = tag == TAG_LINK ? ERL_LINK : ERL_UNLINK;
        ok = ei_decode_pid(f, &index, &msg->from) == 0 &&
             ei_decode_pid(f, &index, &msg->to) == 0;
        break;
    case TAG_UNLINK_ID: { /* {UNLINK_ID, Id, From, To}: acknowledged. */
        int id = index;
        msg->msgtype = ERL_UNLINK;
        ok = skip(f, n, &index);
        int id_len = index - id;
        ok = ok && ei_decode_pid(f, &index, &msg->from) == 0 &&
             ei_decode_pid(f, &index, &msg->to) == 0;
        if (ok && !ack_unlink(d, c->fd, f + id, id_len, &msg->from, &msg->to)) {
            *why = "the acknowledgement of an unlink could not be sent";
            return -1;
        }
        break;
    }
    case TAG_EXIT: /* {EXIT, From, To, Reason} */
    case TAG_EXIT2:
    case TAG_EXIT_TT: /* {EXIT_TT, From, To, Token, Reason} */
    case TAG_EXIT2_TT:
        msg->msgtype =
            tag == TAG_EXIT || tag == TAG_EXIT_TT ? ERL_EXIT : ERL_EXIT2;
        ok = ei_decode_pid(f, &index, &msg->from) == 0 &&
             ei_decode_pid(f, &index, &msg->to) == 0 &&
             (tag < TAG_SEND_TT || skip(f, n, &index));
        if (ok) { /* The reason, as ei gives it: the rest of the tuple. */
            x->buff = (char *)f + index;
            x->index = x->buffsz = end - index;
        }
        break;
    case TAG_MONITOR_P: /* {MONITOR_P, From, To, Ref} */
    case TAG_DEMONITOR_P:
    case TAG_MONITOR_P_EXIT: /* {MONITOR_P_EXIT, From, To, Ref, Reason} */
        if (!gr__monitor_arrived(d, c->fd, c->id, tag, f, index))
            return dropped(d, c, "a malformed monitor message");
        return 0;
    default: /* UNLINK_ID_ACK, aliases, ...: nothing to do. */
        return 0;
    }
    return ok ? 1 : dropped(d, c, "a malformed control message");
}

bool gr__dist_read(gr__dist *d, dist_conn *c, const char **why)
{
    if (c->rcap - c->rlen < READ_CHUNK) {
        size_t cap = c->rlen + READ_CHUNK;
        char *b = realloc(c->rbuf, cap);
        if (b == NULL) {
            *why = "out of memory";
            return false;
        }
        c->rbuf = b;
        c->rcap = cap;
    }
    ssize_t k = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return true;
    if (k <= 0) {
        *why = k == 0 ? "connection closed" : strerror(errno);
        return false;
    }
    c->rlen += (size_t)k;
    c->rx_ns = gr__mono_ns();
    size_t at = 0;
    bool open = true;
    while (open && c->rlen - at >= 4) {
        const unsigned char *p = (const unsigned char *)c->rbuf + at;
        size_t n =
            (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (n == 0) { /* A tick: answered with one. */
            static const char tock[4] = {0};
            at += 4;
            if (!gr__dist_queue(d, c->fd, tock, sizeof tock)) {
                *why = "the answer to a tick could not be sent";
                open = false;
            }
            continue;
        }
        if (n > d->max_frame) {
            *why = "a frame over the size limit";
            open = false;
            break;
        }
        if (c->rlen - at - 4 < n)
            break; /* Not all here yet. */
        erlang_msg msg;
        ei_x_buff x;
        int r = parse(d, c, c->rbuf + at + 4, (int)n, &msg, &x, why);
        at += 4 + n;
        if (r < 0) {
            open = false;
        } else if (r > 0) {
            /* A peer that floods an actor is held back: this connection
             * is not read again until the actor has caught up
             * (dist_main), so TCP's window stops the peer, as muting
             * stops a sender on this node. */
            gr_ref to = gr__dist_on_msg(d, c->fd, &msg, &x);
            if (!gr_ref_is_none(to) && gr_ref_is_none(c->held_by) &&
                gr__backlogged(d->sys, to, false))
                c->held_by = to;
        }
    }
    /* What is left (part of a frame) moves to the front; a frame bigger
     * than the buffer grows it at the next read. */
    memmove(c->rbuf, c->rbuf + at, c->rlen - at);
    c->rlen -= at;
    if (open && c->rlen >= 4) {
        const unsigned char *p = (const unsigned char *)c->rbuf;
        size_t n =
            (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (n + 4 > c->rcap) {
            char *b = realloc(c->rbuf, n + 4);
            if (b == NULL) {
                *why = "out of memory";
                return false;
            }
            c->rbuf = b;
            c->rcap = n + 4;
        }
    }
    return open;
}
