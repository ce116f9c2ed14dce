/* The public socket calls (include/grove/io.h): argument checks, the
 * owner's side of writes, and reading GR_MSG_IO messages. */
#include "net/net.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_MAX_FRAME   (64u * 1024)
#define LIMIT_MAX_FRAME     (64u * 1024 * 1024)
#define DEFAULT_SEND_BUFFER (1024u * 1024)
#define DEFAULT_CONNECT_MS  10000
#define DEFAULT_MODE        0600u

/* Fills in opts' defaults into *out; GR_EINVAL for values out of range. */
static int resolve(const gr_io_opts *opts, gr_io_opts *out)
{
    static const gr_io_opts none;
    *out = opts != NULL ? *opts : none;
    if ((unsigned)out->framing > GR_IO_LEN4 ||
        (unsigned)out->when_full > GR_IO_FULL_PAUSE ||
        out->max_frame > LIMIT_MAX_FRAME || out->mode > 07777 ||
        out->connect_timeout < GR_DURATION_DEFAULT)
        return GR_EINVAL;
    if (out->max_frame == 0)
        out->max_frame = DEFAULT_MAX_FRAME;
    if (out->send_buffer == 0)
        out->send_buffer = DEFAULT_SEND_BUFFER;
    if (out->mode == 0)
        out->mode = DEFAULT_MODE;
    if (out->connect_timeout == 0 ||
        out->connect_timeout == GR_DURATION_DEFAULT)
        out->connect_timeout = DEFAULT_CONNECT_MS;
    return GR_OK;
}

/* Checks a call's ctx: the innermost running callback. Calls about a
 * socket work during shutdown too (a terminate may say goodbye). */
static int check_ctx(gr_ctx *ctx)
{
    return ctx == NULL || ctx != gr__ctx_top ? GR_EINVAL : GR_OK;
}

/* Opens and lists a socket for gr_io_listen and gr_io_connect. */
static int open_socket(gr_ctx *ctx, const char *addr, const gr_io_opts *opts,
                       bool listen, gr_socket *out)
{
    int rc = check_ctx(ctx);
    if (rc != GR_OK)
        return rc;
    if (out == NULL)
        return GR_EINVAL;
    *out = GR_SOCKET_NONE;
    if (gr__system_shutting_down(gr__ctx_sys(ctx)))
        return GR_ESTOPPED;
    gr_io_opts o;
    net_addr a;
    if ((rc = resolve(opts, &o)) != GR_OK ||
        (rc = gr__net_parse(addr, &a)) != GR_OK)
        return rc;
    gr_system *sys = gr__ctx_sys(ctx);
    gr__net *net = gr__net_of(sys);
    if (net == NULL)
        return GR_ENOMEM;
    char *path = NULL;
    if (listen && !a.tcp &&
        (path = strdup(((struct sockaddr_un *)&a.sa)->sun_path)) == NULL)
        return GR_ENOMEM;
    int fd, err = 0;
    rc = listen ? gr__net_open_listener(sys, &a, &o, &fd)
                : gr__net_open_connect(sys, &a, &o, &fd, &err);
    if (rc != GR_OK) {
        free(path);
        return rc;
    }
    net_sock *s = gr__net_add(net, fd, listen ? NET_LISTENER : NET_CONNECTING,
                              a.tcp, &o, gr_self(ctx));
    if (s == NULL) {
        if (path != NULL)
            unlink(path);
        free(path);
        return GR_ENOMEM;
    }
    s->unix_path = path;
    if (listen) {
        char where[80] = "";
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        if (a.tcp && getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
            gr__net_format(&sa, len, where, sizeof where);
        gr__net_emit(s, GR_EV_SOCKET_LISTENING, a.tcp ? where : addr, 0, 0,
                     NULL);
    }
    pthread_mutex_lock(&s->lock);
    s->connect_err = err;
    gr__net_sync_locked(s);
    pthread_mutex_unlock(&s->lock);
    out->id = s->id;
    gr__net_unref(s);
    return GR_OK;
}

int gr_io_listen(gr_ctx *ctx, const char *addr, const gr_io_opts *opts,
                 gr_socket *out)
{
    return open_socket(ctx, addr, opts, true, out);
}

int gr_io_connect(gr_ctx *ctx, const char *addr, const gr_io_opts *opts,
                  gr_socket *out)
{
    return open_socket(ctx, addr, opts, false, out);
}

/* Finds the caller's socket s, locked, for a call that changes it; a
 * closed one is GR_ECLOSED. Unlock and drop it with release(). */
static int take(gr_ctx *ctx, gr_socket sock, net_sock **out)
{
    int rc = check_ctx(ctx);
    if (rc != GR_OK)
        return rc;
    if (sock.id == 0)
        return GR_EINVAL;
    gr__net *net = gr__net_of(gr__ctx_sys(ctx));
    if (net == NULL)
        return GR_ENOMEM;
    net_sock *s;
    if ((rc = gr__net_find(net, sock.id, gr_self(ctx), &s)) != GR_OK)
        return rc;
    pthread_mutex_lock(&s->lock);
    if (s->closing || s->finished) {
        pthread_mutex_unlock(&s->lock);
        gr__net_unref(s);
        return GR_ECLOSED;
    }
    *out = s;
    return GR_OK;
}

static void release(net_sock *s)
{
    pthread_mutex_unlock(&s->lock);
    gr__net_unref(s);
}

int gr_io_activate(gr_ctx *ctx, gr_socket sock, uint32_t n)
{
    net_sock *s;
    int rc = take(ctx, sock, &s);
    if (rc != GR_OK)
        return rc;
    s->active = n;
    /* Frames already read go to the owner from here, without a trip
     * through the I/O thread; it is needed only to read more. */
    if (s->kind == NET_STREAM && s->rready)
        gr__net_deliver_frames(s);
    /* The I/O thread is needed only when its read watcher is off and must
     * come on, or frames are left that the new allowance can take. */
    bool watching = s->reading && !s->rready;
    if (!watching && !(s->rready && s->active == 0))
        gr__net_sync_locked(s);
    release(s);
    return GR_OK;
}

int gr_io_close(gr_ctx *ctx, gr_socket sock)
{
    net_sock *s;
    int rc = take(ctx, sock, &s);
    if (rc != GR_OK)
        return rc;
    s->closing = true;
    s->active = 0;
    gr__net_sync_locked(s);
    release(s);
    return GR_OK;
}

int gr_io_shutdown_write(gr_ctx *ctx, gr_socket sock)
{
    net_sock *s;
    int rc = take(ctx, sock, &s);
    if (rc != GR_OK)
        return rc;
    if (s->kind == NET_LISTENER) {
        release(s);
        return GR_EINVAL;
    }
    s->shut_wr = true;
    gr__net_sync_locked(s);
    release(s);
    return GR_OK;
}

/* Makes room in s's queue for n more bytes (s->lock held; the send
 * buffer's limit is checked by the caller). */
static bool make_room(net_sock *s, size_t n)
{
    if (s->woff > 0 && s->woff + s->wlen + n > s->wcap) {
        memmove(s->wbuf, s->wbuf + s->woff, s->wlen);
        s->woff = 0;
    }
    if (s->wlen + n <= s->wcap)
        return true;
    size_t cap = s->wcap ? s->wcap : 4096;
    while (cap < s->wlen + n)
        cap *= 2;
    if (cap > s->opts.send_buffer)
        cap = s->opts.send_buffer;
    char *b = realloc(s->wbuf, cap);
    if (b == NULL)
        return false;
    s->wbuf = b;
    s->wcap = cap;
    return true;
}

/* Appends what iov holds beyond its first skip bytes to s's queue, for
 * which make_room made room; s->lock held. */
static void queue_bytes(net_sock *s, const struct iovec *iov, int iovcnt,
                        size_t skip)
{
    char *at = s->wbuf + s->woff + s->wlen;
    for (int i = 0; i < iovcnt; i++) {
        size_t len = iov[i].iov_len;
        const char *p = iov[i].iov_base;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(at, p + skip, len - skip);
        at += len - skip;
        s->wlen += len - skip;
        skip = 0;
    }
}

/* The close_when_full policy: reports the overflow and closes s (locked). */
static void close_full(net_sock *s)
{
    /* Dropped at once: from here nothing more of the queue is sent, so the
     * count reported is exactly what is lost. */
    s->abort = true;
    net_wire w = {
        .kind = GR_IO_ERROR, .code = GR_EBACKPRESSURE, .unsent = s->wlen};
    snprintf(w.text, sizeof w.text, "send buffer of %u bytes full",
             s->opts.send_buffer);
    gr__net_deliver_to(s, s->owner, &w, NULL, 0);
    s->why = gr_reason_of(GR_EBACKPRESSURE);
    snprintf(s->why.text, sizeof s->why.text, "%.*s",
             (int)sizeof s->why.text - 1, w.text);
    s->closing = true;
    s->active = 0;
    gr__net_sync_locked(s);
}

int gr_io_write(gr_ctx *ctx, gr_socket sock, const void *data, size_t len)
{
    if ((data == NULL) != (len == 0))
        return GR_EINVAL;
    net_sock *s;
    int rc = take(ctx, sock, &s);
    if (rc != GR_OK)
        return rc;
    unsigned char prefix[4];
    struct iovec iov[2];
    int iovcnt = 0;
    size_t total = len;
    if (s->opts.framing == GR_IO_LEN4) {
        if (len > s->opts.max_frame) {
            release(s);
            return GR_EMSGSIZE;
        }
        uint32_t n = (uint32_t)len;
        prefix[0] = (unsigned char)(n >> 24);
        prefix[1] = (unsigned char)(n >> 16);
        prefix[2] = (unsigned char)(n >> 8);
        prefix[3] = (unsigned char)n;
        iov[iovcnt++] = (struct iovec){prefix, 4};
        total += 4;
    }
    if (len > 0)
        iov[iovcnt++] = (struct iovec){(void *)data, len};
    if (s->kind == NET_LISTENER || s->shut_wr) {
        release(s);
        return s->kind == NET_LISTENER ? GR_EINVAL : GR_ECLOSED;
    }
    if (total > s->opts.send_buffer) {
        release(s);
        return GR_EMSGSIZE;
    }
    if (s->wlen + total > s->opts.send_buffer) {
        if (s->opts.close_when_full)
            close_full(s);
        release(s);
        return GR_EBACKPRESSURE;
    }
    /* Room first, so that a frame is never half sent and then refused. */
    if (!make_room(s, total)) {
        release(s);
        return GR_ENOMEM;
    }
    size_t sent = 0;
    if (s->kind == NET_STREAM && s->wlen == 0 && !s->write_waiting &&
        total > 0) {
        /* Nothing queued: offer it to the kernel now, as node links do. */
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t k = sendmsg(s->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k > 0) {
            sent = (size_t)k;
            atomic_fetch_add_explicit(&s->net->bytes_out, (uint64_t)k,
                                      memory_order_relaxed);
        }
        /* An error other than a full buffer is the I/O thread's to find
         * and report: the bytes wait in the queue for it. */
    }
    if (sent < total) {
        queue_bytes(s, iov, iovcnt, sent);
        if (!s->write_waiting) {
            s->write_waiting = true;
            gr__net_sync_locked(s);
        }
    }
    release(s);
    return GR_OK;
}

int gr_io_give(gr_ctx *ctx, gr_socket sock, gr_ref new_owner)
{
    net_sock *s;
    int rc = take(ctx, sock, &s);
    if (rc != GR_OK)
        return rc;
    gr_system *sys = gr__ctx_sys(ctx);
    pthread_mutex_unlock(&s->lock);
    if (gr_ref_is_none(new_owner) ||
        new_owner.node != gr__system_node_id(sys) ||
        new_owner.incarnation != gr__system_incarnation(sys)) {
        gr__net_unref(s);
        return GR_EINVAL;
    }
    if (!gr__net_set_owner(s, new_owner)) {
        gr__net_unref(s);
        return GR_ECLOSED; /* Finished since the look above. */
    }
    /* After the move: an owner gone before it never closes s (owned.h). */
    if (!gr__ref_alive(sys, new_owner)) {
        pthread_mutex_lock(&s->lock);
        s->closing = true;
        gr__net_sync_locked(s);
        pthread_mutex_unlock(&s->lock);
    }
    gr__net_unref(s);
    return GR_OK;
}

int gr_io_queued(gr_ctx *ctx, gr_socket sock, size_t *bytes)
{
    if (bytes == NULL)
        return GR_EINVAL;
    net_sock *s;
    int rc = take(ctx, sock, &s);
    if (rc != GR_OK)
        return rc;
    *bytes = s->wlen;
    release(s);
    return GR_OK;
}

int gr_io_port(gr_ctx *ctx, gr_socket sock, uint16_t *port)
{
    if (port == NULL)
        return GR_EINVAL;
    net_sock *s;
    int rc = take(ctx, sock, &s);
    if (rc != GR_OK)
        return rc;
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    rc = GR_EINVAL;
    if (s->tcp && getsockname(s->fd, (struct sockaddr *)&sa, &len) == 0) {
        *port = ntohs(sa.ss_family == AF_INET
                          ? ((struct sockaddr_in *)&sa)->sin_port
                          : ((struct sockaddr_in6 *)&sa)->sin6_port);
        rc = GR_OK;
    }
    release(s);
    return rc;
}

int gr_io_event_read(const gr_msg *msg, gr_io_event *out)
{
    if (msg == NULL || out == NULL || msg->type != GR_MSG_IO ||
        msg->len < NET_HDR)
        return GR_EINVAL;
    net_wire w;
    memcpy(&w, msg->data, sizeof w);
    if (w.kind < GR_IO_DATA || w.kind > GR_IO_GIVEN)
        return GR_EINVAL;
    *out = (gr_io_event){
        .kind = (gr_io_kind)w.kind,
        .socket = {w.socket},
        .listener = {w.listener},
        .data = msg->len > NET_HDR ? (const char *)msg->data + NET_HDR : NULL,
        .len = msg->len - NET_HDR,
        .code = w.code,
        .unsent = w.unsent,
    };
    memcpy(out->text, w.text, sizeof out->text);
    out->text[sizeof out->text - 1] = '\0';
    return GR_OK;
}

const char *gr_io_kind_name(gr_io_kind kind)
{
    switch (kind) {
    case GR_IO_DATA:
        return "data";
    case GR_IO_ACCEPTED:
        return "accepted";
    case GR_IO_CONNECTED:
        return "connected";
    case GR_IO_CLOSED:
        return "closed";
    case GR_IO_ERROR:
        return "error";
    case GR_IO_GIVEN:
        return "given";
    }
    return "?";
}
