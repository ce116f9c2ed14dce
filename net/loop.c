/* The I/O thread's side of sockets: watchers, reads, accepts,
 * connects, queued writes, closes, and the messages that report them. */
#define _GNU_SOURCE /* accept4. */
#include "net/net.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a close waits for queued bytes to leave, in seconds. */
#define LINGER_S 5.0
/* How long a listener out of descriptors waits before accepting again. */
#define BACKOFF_S 0.1
/* Accepts per readable event, so one listener cannot hog the loop. */
#define ACCEPT_BATCH 64

static struct ev_loop *loop_of(net_sock *s)
{
    return gr__io_loop(gr__system_io(s->net->sys));
}

static void update_watchers(net_sock *s);
static void set_io(net_sock *s, ev_io *w, bool *on, bool want);

/* ---- messages to the owner --------------------------------------------- */

void gr__net_deliver(net_sock *s, net_wire *w, char *frame, size_t len)
{
    pthread_mutex_lock(&s->lock);
    gr__net_deliver_to(s, s->owner, w, frame, len);
    pthread_mutex_unlock(&s->lock);
}

void gr__net_deliver_to(net_sock *s, gr_ref owner, net_wire *w, char *frame,
                        size_t len)
{
    gr_system *sys = s->net->sys;
    w->socket = s->id;
    const void *body = w;
    size_t size = NET_HDR;
    if (frame != NULL) {
        memcpy(frame - NET_HDR, w, NET_HDR);
        body = frame - NET_HDR;
        size += len;
    }
    /* An owner already gone is fine: its exit closes the socket. */
    (void)gr__deliver(sys, gr__worker_of(sys), GR_MSG_IO, GR_REF_NONE, owner, 0,
                      body, size);
}

/* Reports an error on s (errno e when positive, else code and text) to
 * its owner, unless it closed s itself, then finishes s. */
static void fail(net_sock *s, int e, int code, const char *text)
{
    net_wire w = {.kind = GR_IO_ERROR};
    if (e > 0) {
        w.code = gr__net_errno(e, w.text, sizeof w.text);
    } else {
        w.code = code;
        snprintf(w.text, sizeof w.text, "%s", text);
    }
    /* One critical section: from the error on, every call about s is
     * GR_ECLOSED, and nothing more is sent (unsent is exact). */
    pthread_mutex_lock(&s->lock);
    bool quiet = s->closing; /* Closed by its owner: no more messages. */
    s->closing = s->abort = true;
    s->active = 0;
    w.unsent = s->wlen;
    if (!quiet)
        gr__net_deliver_to(s, s->owner, &w, NULL, 0);
    s->why = gr_reason_of(w.code);
    snprintf(s->why.text, sizeof s->why.text, "%.*s",
             (int)sizeof s->why.text - 1, w.text);
    pthread_mutex_unlock(&s->lock);
    gr__net_finish(s, true);
}

/* ---- reading and framing ----------------------------------------------- */

static void on_read(net_sock *s)
{
    size_t chunk =
        s->opts.framing == GR_IO_RAW && s->opts.max_frame < NET_READ_CHUNK
            ? s->opts.max_frame
            : NET_READ_CHUNK;
    pthread_mutex_lock(&s->lock);
    if (s->rready) { /* Frames first; reading waits for them. */
        pthread_mutex_unlock(&s->lock);
        update_watchers(s);
        return;
    }
    if (s->active == 0 || s->closing) {
        /* Kept on lazily (update_watchers); now it is needed off. */
        s->reading = false;
        pthread_mutex_unlock(&s->lock);
        set_io(s, &s->rio, &s->rio_on, false);
        return;
    }
    if (!gr__net_reserve(s, chunk)) {
        pthread_mutex_unlock(&s->lock);
        fail(s, ENOMEM, 0, NULL);
        return;
    }
    ssize_t n = read(s->fd, s->rbuf + NET_HDR + s->rlen, chunk);
    int e = errno;
    if (n > 0) {
        atomic_fetch_add_explicit(&s->net->bytes_in, (uint64_t)n,
                                  memory_order_relaxed);
        s->rlen += (size_t)n;
        gr__net_deliver_frames(s);
    } else if (n == 0) {
        /* End of file: what is left of a line or frame is dropped. */
        gr__net_drop_rbuf(s);
        s->read_over = true;
        if (!s->closing) {
            net_wire w = {.kind = GR_IO_CLOSED};
            gr__net_deliver_to(s, s->owner, &w, NULL, 0);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (n < 0 && e != EAGAIN && e != EINTR) {
        fail(s, e, 0, NULL);
        return;
    }
    update_watchers(s);
}

/* ---- accepting ---------------------------------------------------------- */

/* Whether listener s is at its connection cap. */
static bool at_cap(const net_sock *s)
{
    return s->opts.max_connections != 0 && s->live >= s->opts.max_connections;
}

static void on_accept(net_sock *s)
{
    gr__net *net = s->net;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        /* The allowance is taken before the accept, so a listener made
         * passive meanwhile leaves the connection in the backlog. */
        pthread_mutex_lock(&s->lock);
        bool full = at_cap(s);
        bool pause = full && s->opts.when_full == GR_IO_FULL_PAUSE;
        bool can = !s->closing && s->active > 0;
        bool took = can && !full && s->active != GR_IO_ALWAYS;
        if (took)
            s->active--;
        gr_ref owner = s->owner;
        pthread_mutex_unlock(&s->lock);
        if (pause || !can)
            break;
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(s->fd, (struct sockaddr *)&peer, &plen,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && took) { /* Nothing taken after all: give it back. */
            pthread_mutex_lock(&s->lock);
            if (s->active != GR_IO_ALWAYS)
                s->active++;
            pthread_mutex_unlock(&s->lock);
        }
        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                break;
            char text[96];
            (void)gr__net_errno(errno, text, sizeof text);
            if (!s->starved) /* Once per shortage, not every retry. */
                gr__log(gr__system_log(net->sys), GR_LOG_ERROR,
                        "socket %llu: accept failed: %s; retrying every "
                        "%.0f ms",
                        (unsigned long long)s->id, text, BACKOFF_S * 1000);
            s->starved = s->backoff = true;
            break;
        }
        if (s->starved) {
            s->starved = false;
            gr__log(gr__system_log(net->sys), GR_LOG_INFO,
                    "socket %llu: accepting again", (unsigned long long)s->id);
        }
        char addr[64];
        gr__net_format(&peer, plen, addr, sizeof addr);
        if (full) {
            gr__log(gr__system_log(net->sys), GR_LOG_DEBUG,
                    "socket %llu: connection from %s closed: %u connections "
                    "open",
                    (unsigned long long)s->id, addr, s->live);
            close(fd);
            continue;
        }
        if (s->tcp) {
            int one = 1;
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        net_sock *c = gr__net_add(net, fd, NET_STREAM, s->tcp, &s->opts, owner);
        if (c == NULL) {
            gr__log(gr__system_log(net->sys), GR_LOG_ERROR,
                    "socket %llu: connection from %s dropped: out of memory",
                    (unsigned long long)s->id, addr);
            continue;
        }
        c->listener_id = s->id;
        pthread_mutex_lock(&s->lock);
        s->live++;
        pthread_mutex_unlock(&s->lock);
        gr__net_emit(c, GR_EV_SOCKET_ACCEPTED, addr, s->id, 0, NULL);
        net_wire w = {.kind = GR_IO_ACCEPTED, .listener = s->id};
        snprintf(w.text, sizeof w.text, "%s", addr);
        gr__net_deliver(c, &w, NULL, 0);
        /* An owner that exited before c was listed never closes it. */
        if (!gr__ref_alive(net->sys, owner)) {
            pthread_mutex_lock(&c->lock);
            c->closing = true;
            gr__net_sync_locked(c);
            pthread_mutex_unlock(&c->lock);
        }
        gr__net_unref(c);
    }
    update_watchers(s);
}

/* ---- connecting and writing -------------------------------------------- */

static void on_connected(net_sock *s)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        fail(s, err, 0, NULL);
        return;
    }
    if (s->timer_on) {
        ev_timer_stop(loop_of(s), &s->timer);
        s->timer_on = false;
    }
    net_wire w = {.kind = GR_IO_CONNECTED};
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    if (getpeername(s->fd, (struct sockaddr *)&peer, &plen) == 0)
        gr__net_format(&peer, plen, w.text, sizeof w.text);
    pthread_mutex_lock(&s->lock);
    s->kind = NET_STREAM;
    if (!s->closing) /* Closed meanwhile: no more messages about it. */
        gr__net_deliver_to(s, s->owner, &w, NULL, 0);
    pthread_mutex_unlock(&s->lock);
    update_watchers(s);
}

static void on_write(net_sock *s)
{
    int err = 0;
    pthread_mutex_lock(&s->lock);
    if (s->wlen > 0 && !s->abort) {
        ssize_t k = send(s->fd, s->wbuf + s->woff, s->wlen,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k > 0) {
            s->woff += (size_t)k;
            s->wlen -= (size_t)k;
            atomic_fetch_add_explicit(&s->net->bytes_out, (uint64_t)k,
                                      memory_order_relaxed);
        } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
            err = errno;
        }
    }
    if (s->wlen == 0) {
        s->woff = 0;
        s->write_waiting = false;
    }
    pthread_mutex_unlock(&s->lock);
    if (err != 0) {
        fail(s, err, 0, NULL);
        return;
    }
    update_watchers(s);
}

/* ---- watchers ------------------------------------------------------------ */

static void on_rio(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    net_sock *s = w->data;
    gr__net_ref(s);
    if (s->kind == NET_LISTENER)
        on_accept(s);
    else
        on_read(s);
    gr__net_unref(s);
}

static void on_wio(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    net_sock *s = w->data;
    gr__net_ref(s);
    pthread_mutex_lock(&s->lock);
    bool connecting = s->kind == NET_CONNECTING;
    pthread_mutex_unlock(&s->lock);
    if (connecting)
        on_connected(s);
    else
        on_write(s);
    gr__net_unref(s);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    net_sock *s = w->data;
    s->timer_on = false;
    gr__net_ref(s);
    pthread_mutex_lock(&s->lock);
    bool connecting = s->kind == NET_CONNECTING;
    bool closing = s->closing;
    pthread_mutex_unlock(&s->lock);
    if (connecting && !closing)
        fail(s, -1, GR_ETIMEDOUT, "ETIMEDOUT: connect timed out");
    else if (closing)
        gr__net_finish(s, true); /* The linger ran out. */
    else {
        s->backoff = false; /* A listener tries accepting again. */
        update_watchers(s);
    }
    gr__net_unref(s);
}

static void set_io(net_sock *s, ev_io *w, bool *on, bool want)
{
    if (want == *on)
        return;
    if (want)
        ev_io_start(loop_of(s), w);
    else
        ev_io_stop(loop_of(s), w);
    *on = want;
}

static void start_timer(net_sock *s, double after)
{
    if (s->timer_on)
        return;
    ev_timer_set(&s->timer, after, 0.);
    ev_timer_start(loop_of(s), &s->timer);
    s->timer_on = true;
}

/* Brings s's watchers in line with its state, finishing it when it is
 * closing and nothing is left to send. I/O thread. */
static void update_watchers(net_sock *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->finished) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    net_kind kind = s->kind;
    bool closing = s->closing, abort = s->abort;
    int connect_err = s->connect_err;
    bool want_write = s->wlen > 0 || (s->shut_wr && !s->shut_done);
    bool held =
        kind == NET_LISTENER &&
        (s->backoff || (at_cap(s) && s->opts.when_full == GR_IO_FULL_PAUSE));
    bool want_read = !closing && !s->read_over && s->active > 0 && !held;
    bool shut_now =
        s->shut_wr && !s->shut_done && s->wlen == 0 && kind == NET_STREAM;
    pthread_mutex_unlock(&s->lock);
    if (kind == NET_CONNECTING) {
        if (connect_err != 0) {
            fail(s, connect_err, 0, NULL);
            return;
        }
        if (closing) {
            gr__net_finish(s, true);
            return;
        }
        set_io(s, &s->wio, &s->wio_on, true);
        if (s->opts.connect_timeout != GR_DURATION_INFINITE)
            start_timer(s, (double)s->opts.connect_timeout / 1000.0);
        return;
    }
    if (shut_now) {
        (void)shutdown(s->fd, SHUT_WR);
        s->shut_done = true;
        want_write = false;
    }
    if (closing && (!want_write || kind == NET_LISTENER || abort)) {
        gr__net_finish(s, true);
        return;
    }
    /* Frames read before the owner's allowance ran out go first, and
     * while one is left nothing more is read: the owner may have asked
     * again meanwhile, but the buffer must not grow past one read. */
    pthread_mutex_lock(&s->lock);
    if (want_read && kind == NET_STREAM && s->rready)
        gr__net_deliver_frames(s);
    bool blocked = s->closing || s->read_over || s->rready || held;
    want_read = !blocked && s->active > 0;
    /* A stream that lacks only allowance keeps its watcher: the owner
     * usually asks again before more arrives, and the first readable event
     * without allowance stops it (on_read). Two epoll_ctl calls and a wake
     * of this thread saved per active-once message. */
    if (!want_read && !blocked && kind == NET_STREAM && s->rio_on)
        want_read = true;
    s->reading = want_read;
    pthread_mutex_unlock(&s->lock);
    set_io(s, &s->rio, &s->rio_on, want_read);
    set_io(s, &s->wio, &s->wio_on, want_write);
    if (closing)
        start_timer(s, LINGER_S);
    else if (kind == NET_LISTENER && s->backoff)
        start_timer(s, BACKOFF_S);
}

/* The job gr__net_sync_locked queues: first look sets the watchers up. */
static void sync_job(void *arg)
{
    net_sock *s = arg;
    pthread_mutex_lock(&s->lock);
    s->sync_queued = false;
    bool fresh = s->rio.data == NULL;
    pthread_mutex_unlock(&s->lock);
    if (fresh) {
        ev_io_init(&s->rio, on_rio, s->fd, EV_READ);
        ev_io_init(&s->wio, on_wio, s->fd, EV_WRITE);
        ev_init(&s->timer, on_timer);
        s->rio.data = s->wio.data = s->timer.data = s;
    }
    update_watchers(s);
    gr__net_unref(s);
}

void gr__net_sync_locked(net_sock *s)
{
    if (s->sync_queued || s->finished)
        return;
    s->sync_queued = true;
    gr__net_ref(s);
    s->sync.fn = sync_job;
    s->sync.arg = s;
    if (gr__io_post(gr__system_io(s->net->sys), &s->sync) != GR_OK) {
        /* The loop has stopped: shutdown finishes the socket. The caller
         * holds a reference, so this one is never the last. */
        s->sync_queued = false;
        atomic_fetch_sub_explicit(&s->refs, 1, memory_order_relaxed);
    }
}
