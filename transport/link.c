/*
 * A link's outbound side: frames queue in a bounded ring under the link's
 * lock. The sender that finds the ring idle writes at once (no thread hop
 * at low load); once the socket is full the I/O thread's write watcher
 * takes over, and every frame queued meanwhile leaves in one gathered
 * write (sendmsg, writev with MSG_NOSIGNAL). A written frame stays in the
 * ring until the peer's ACK says its runtime took it, so a link that goes
 * down leaves every unconfirmed message to be dead-lettered; this side's
 * own ACKs go out ahead of the ring and are not kept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "actor/runtime.h"
#include "transport/transport.h"

/* Room a link keeps above link_limit for runtime frames (exit signals,
 * DOWNs, route changes), which are never refused for backpressure alone. */
#define RUNTIME_SLACK ((size_t)1 << 20)

static void on_writable(struct ev_loop *loop, ev_io *w, int revents);

gr__link *gr__link_new(gr__transport *t, int fd, uint32_t node, uint32_t inc,
                       const char *name)
{
    gr__link *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->t = t;
    l->fd = fd;
    l->node = node;
    l->inc = inc;
    snprintf(l->name, sizeof l->name, "%s", name);
    atomic_init(&l->refs, 1);
    pthread_mutex_init(&l->lock, NULL);
    /* Room for link_limit bytes, or one frame of the largest size, plus
     * the runtime slack: bounded either way. */
    size_t most = t->link_limit > t->max_frame + GR__WIRE_HEADER
                      ? t->link_limit
                      : t->max_frame + GR__WIRE_HEADER;
    gr__ring_init(&l->out, most <= SIZE_MAX - RUNTIME_SLACK
                               ? most + RUNTIME_SLACK
                               : SIZE_MAX);
    l->pidfd = -1;
    ev_io_init(&l->wio, on_writable, fd, EV_WRITE);
    l->wio.data = l;
    return l;
}

/* Frees a link nobody holds any more. */
static void destroy(void *arg)
{
    gr__link *l = arg;
    if (l->fd >= 0)
        close(l->fd);
    if (l->pidfd >= 0)
        close(l->pidfd);
    gr__ring_destroy(&l->out);
    free(l->in);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

void gr__link_release(gr__link *l)
{
    /* acq_rel: the last owner sees every other owner's writes. */
    if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* libev applies watcher changes on the loop thread, later: its
     * descriptors are closed there, never under it. Once the loop has
     * stopped, anywhere. */
    gr__io *io = gr__system_io(l->t->sys);
    if (gr__io_on_loop_thread(io) || gr__io_call(io, destroy, l) != GR_OK)
        destroy(l);
}

static void start_write_watcher(void *arg)
{
    gr__link *l = arg;
    if (!l->down && !ev_is_active(&l->wio))
        ev_io_start(gr__io_loop(gr__system_io(l->t->sys)), &l->wio);
    gr__link_release(l);
}

/* Counts n written bytes of the ring's, past sent, keeping frame_left: how
 * much of the frame being written is still to go; the lock is held. */
static void ring_written(gr__link *l, size_t n)
{
    while (n > 0) {
        if (l->frame_left == 0) {
            uint8_t hdr[GR__WIRE_HEADER];
            gr__ring_peek(&l->out, l->sent, hdr, sizeof hdr);
            l->frame_len = l->frame_left =
                GR__WIRE_HEADER + ((size_t)hdr[2] << 24 | (size_t)hdr[3] << 16 |
                                   (size_t)hdr[4] << 8 | hdr[5]);
        }
        size_t take = n < l->frame_left ? n : l->frame_left;
        l->sent += take;
        l->frame_left -= take;
        n -= take;
        l->written += l->frame_left == 0;
    }
}

/* Notes where the written frames end now, for gr__link_acked; the lock is
 * held. */
static void mark_written(gr__link *l)
{
    const unsigned cap = sizeof l->marks / sizeof l->marks[0];
    unsigned last = (l->mark_head + l->nmarks + cap - 1) % cap;
    if (l->nmarks > 0 && l->marks[last].frames == l->written)
        return;
    size_t part = l->frame_left > 0 ? l->frame_len - l->frame_left : 0;
    struct gr__link_mark m = {l->written, l->dropped + l->sent - part};
    if (l->nmarks == cap)
        l->marks[last] = m;
    else
        l->marks[(l->mark_head + l->nmarks++) % cap] = m;
}

/* Begins an ACK when frames were taken since the last one began and none
 * is being written; the lock is held. */
static void ack_due(gr__link *l)
{
    uint64_t count = atomic_load_explicit(&l->rx_count, memory_order_acquire);
    if (l->ack_off == l->ack_len && count != l->ack_sent) {
        l->ack_len = gr__wire_ack_frame(l->ack, count);
        l->ack_off = 0;
        l->ack_sent = count;
    }
}

/* Whether anything waits to be written; the lock is held. */
static bool unwritten(const gr__link *l)
{
    return l->ack_off < l->ack_len || l->sent < l->out.len;
}

/* Fills iov with what to write next and returns how many entries: the
 * ACK's bytes first when it may go (it has begun, or the ring is at a
 * frame boundary: it never lands inside a frame), then the ring's past
 * sent; stopping at the frame's end when an ACK waits for it. *ack_bytes
 * is how many of the bytes are the ACK's. The lock is held. */
static int next_write(gr__link *l, struct iovec iov[3], size_t *ack_bytes)
{
    int n = 0;
    bool ack_waits = l->ack_off < l->ack_len;
    *ack_bytes = 0;
    if (ack_waits && (l->ack_off > 0 || l->frame_left == 0)) {
        *ack_bytes = l->ack_len - l->ack_off;
        iov[n++] = (struct iovec){l->ack + l->ack_off, *ack_bytes};
        ack_waits = false;
    }
    int k = gr__ring_iov_from(&l->out, l->sent, iov + n);
    if (ack_waits) { /* Up to the frame's end only. */
        size_t left = l->frame_left;
        for (int i = n; i < n + k; i++) {
            if (iov[i].iov_len >= left) {
                iov[i].iov_len = left;
                k = i - n + 1;
                break;
            }
            left -= iov[i].iov_len;
        }
    }
    return n + k;
}

/*
 * Writes the pending ACK and what the ring holds past its sent bytes, until
 * all is written or the socket is full; the lock is held. Returns false
 * when the socket failed (the link is then closed for sends; the read side
 * reports it down).
 */
static bool write_some(gr__link *l)
{
    struct iovec iov[3];
    size_t ack_bytes;
    ack_due(l);
    while (unwritten(l)) {
        int n = next_write(l, iov, &ack_bytes);
        /* sendmsg is writev with flags: a peer gone is EPIPE, not a
         * SIGPIPE that would kill this process. */
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(l->fd, &mh, MSG_NOSIGNAL);
        if (w > 0) {
            size_t a = (size_t)w < ack_bytes ? (size_t)w : ack_bytes;
            l->ack_off += a;
            ring_written(l, (size_t)w - a);
            mark_written(l);
            ack_due(l);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        l->closed = true;
        return false;
    }
    return true;
}

/* Links whose frames this worker thread's turn queued, to be written when
 * the turn is over (gr__link_flush_pending), so that a turn's many sends
 * to one node leave in one write. */
#define PENDING_MAX 8
static _Thread_local gr__link *pending[PENDING_MAX];
static _Thread_local unsigned npending;

/* On a worker of l's system, with room in the list: marks l to be written
 * after the turn and returns true; the lock is held. */
static bool defer(gr__link *l)
{
    if (gr__worker_of(l->t->sys) == NULL || npending == PENDING_MAX)
        return false;
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    l->deferred = true;
    pending[npending++] = l;
    gr__remote_pending = true;
    return true;
}

/* Writes now, and hands what is left to the I/O thread; lock held. */
static void flush(gr__link *l)
{
    if (!write_some(l) || !unwritten(l))
        return;
    l->flushing = true;
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    if (gr__io_call(gr__system_io(l->t->sys), start_write_watcher, l) != GR_OK)
        atomic_fetch_sub_explicit(&l->refs, 1, memory_order_relaxed);
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    gr__link *l = w->data;
    pthread_mutex_lock(&l->lock);
    bool ok = write_some(l);
    if (!ok || !unwritten(l)) {
        l->flushing = false;
        ev_io_stop(loop, w);
    }
    pthread_mutex_unlock(&l->lock);
}

int gr__link_send(gr__link *l, const void *prefix, size_t plen,
                  const void *payload, size_t n, bool runtime)
{
    pthread_mutex_lock(&l->lock);
    int rc = GR_OK;
    /* Over link_limit (written frames the peer has not confirmed count)
     * only when nothing waits to be written (one frame bigger than the
     * limit still goes, alone), or with the slack kept for runtime
     * frames. */
    if (l->closed)
        rc = GR_ENOCONNECTION;
    else if ((!runtime && l->sent != l->out.len &&
              l->out.len + plen + n > l->t->link_limit) ||
             !gr__ring_reserve(&l->out, plen + n))
        rc = GR_EBACKPRESSURE;
    if (rc == GR_OK) {
        gr__ring_put(&l->out, prefix, plen);
        if (n != 0)
            gr__ring_put(&l->out, payload, n);
        if (!l->flushing && !l->corked && !l->deferred && !defer(l))
            flush(l);
    }
    pthread_mutex_unlock(&l->lock);
    return rc;
}

void gr__link_flush_pending(void *tp)
{
    (void)tp;
    for (unsigned i = 0; i < npending; i++) {
        gr__link *l = pending[i];
        pthread_mutex_lock(&l->lock);
        l->deferred = false;
        if (!l->flushing && !l->corked && !l->closed)
            flush(l);
        pthread_mutex_unlock(&l->lock);
        gr__link_release(l);
    }
    npending = 0;
    gr__remote_pending = false;
}

void gr__link_uncork(gr__link *l)
{
    pthread_mutex_lock(&l->lock);
    l->corked = false;
    if (!l->flushing)
        flush(l);
    pthread_mutex_unlock(&l->lock);
}

void gr__link_take_queued(gr__link *l, gr__ring *out)
{
    pthread_mutex_lock(&l->lock);
    /* Whole frames, written or not: none was confirmed. */
    *out = l->out;
    gr__ring_init(&l->out, out->limit);
    l->sent = l->frame_left = 0;
    l->nmarks = 0;
    pthread_mutex_unlock(&l->lock);
}

int gr__link_flush_blocking(gr__link *l, uint64_t deadline_ns)
{
    pthread_mutex_lock(&l->lock);
    int rc = GR_OK;
    struct iovec iov[3];
    size_t ack_bytes;
    while (rc == GR_OK && unwritten(l)) {
        int n = next_write(l, iov, &ack_bytes);
        for (int i = 0; i < n && rc == GR_OK; i++)
            rc = gr__write_all(l->fd, iov[i].iov_base, iov[i].iov_len,
                               deadline_ns);
        if (rc == GR_OK) {
            size_t all = 0;
            for (int i = 0; i < n; i++)
                all += iov[i].iov_len;
            l->ack_off += ack_bytes;
            ring_written(l, all - ack_bytes);
        }
    }
    if (rc == GR_OK) {
        gr__ring_consume(&l->out, l->out.len);
        l->sent = l->frame_left = 0;
        l->nmarks = 0;
    }
    pthread_mutex_unlock(&l->lock);
    return rc;
}

void gr__link_send_ack(gr__link *l)
{
    pthread_mutex_lock(&l->lock);
    /* A link being written (flushing) takes the ACK with its next write;
     * a deferred one is written here now, which only comes sooner. */
    if (!l->closed && !l->flushing && !l->corked)
        flush(l);
    pthread_mutex_unlock(&l->lock);
}

const char *gr__link_acked(gr__link *l, uint64_t count)
{
    const char *why = NULL;
    const unsigned cap = sizeof l->marks / sizeof l->marks[0];
    pthread_mutex_lock(&l->lock);
    if (count < l->acked)
        why = "ACK went backwards";
    /* In one step, up to the last write that ended within count... */
    struct gr__link_mark best = {0, 0};
    while (l->nmarks > 0 && l->marks[l->mark_head].frames <= count) {
        best = l->marks[l->mark_head];
        l->mark_head = (l->mark_head + 1) % cap;
        l->nmarks--;
    }
    if (why == NULL && best.frames > l->acked) {
        size_t n = (size_t)(best.at - l->dropped);
        gr__ring_consume(&l->out, n);
        l->sent -= n;
        l->dropped += n;
        l->acked = best.frames;
    }
    /* ...then frame by frame. */
    while (why == NULL && l->acked < count) {
        uint8_t hdr[GR__WIRE_HEADER];
        gr__wire_header h;
        if (l->out.len < GR__WIRE_HEADER)
            break;
        gr__ring_peek(&l->out, 0, hdr, sizeof hdr);
        (void)gr__wire_header_parse(hdr, &h); /* Ours: well formed. */
        size_t whole = GR__WIRE_HEADER + (size_t)h.len;
        if (whole > l->sent)
            break;
        gr__ring_consume(&l->out, whole);
        l->sent -= whole;
        l->dropped += whole;
        l->acked++;
    }
    if (why == NULL && l->acked != count)
        why = "ACK of frames not sent";
    pthread_mutex_unlock(&l->lock);
    return why;
}
