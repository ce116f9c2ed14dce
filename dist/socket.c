/*
 * The socket callbacks erl_interface uses for this system's handshakes
 * and epmd: blocking calls on a TCP socket, each waited for with poll(2)
 * up to ei's timeout (EI_SCLBK_FLG_FULL_IMPL), the context being the
 * descriptor. An accept takes the connection the distribution thread
 * has accepted already (gr__dist_preaccepted), so handshakes of incoming
 * connections run side by side on the connector threads.
 *
 * They exist for one change: the distribution flags this node announces
 * in its handshake gain DFLAG_DIST_MONITOR_NAME. Erlang sends monitors
 * (MONITOR_P, DEMONITOR_P, MONITOR_P_EXIT) only to a node that announces
 * both DFLAG_DIST_MONITOR and DFLAG_DIST_MONITOR_NAME; libei announces the
 * first alone, as it cannot take the signals, so without this a monitor
 * across the connection fired only when the connection went. Grove reads
 * its connections itself (reader.c) and takes all three (monitor.c).
 */
#define _GNU_SOURCE /* accept4. */
#include "dist/dist.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* DFLAG_DIST_MONITOR_NAME (Erlang's distribution protocol), a bit of the
 * flags' lowest byte. */
#define DFLAG_DIST_MONITOR_NAME 0x20u

_Thread_local int gr__dist_preaccepted = -1;
_Thread_local int gr__dist_cancel_fd = -1;
_Thread_local gr__shake_view gr__dist_shake;

/* The body of the handshake packet that starts at v->in + at (2-byte
 * length), its length in *len; NULL when it has not all been read. */
static const unsigned char *packet_at(const gr__shake_view *v, size_t at,
                                      size_t *len)
{
    if (at + 2 > v->len)
        return NULL;
    *len = (size_t)v->in[at] << 8 | v->in[at + 1];
    return at + 2 + *len <= v->len ? v->in + at + 2 : NULL;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

bool gr__shake_peer(const gr__shake_view *v, char *name, size_t size,
                    uint32_t *creation)
{
    size_t len, at = 0;
    const unsigned char *b = packet_at(v, at, &len);
    if (b != NULL && !v->accepting) { /* The status first, then the
                                         challenge. */
        at += 2 + len;
        b = packet_at(v, at, &len);
    }
    size_t name_at, name_len;
    *creation = 0;
    if (b == NULL || len < 1)
        return false;
    if (b[0] == 'N' && v->accepting && len >= 15) {
        /* send_name: 'N', flags 8, creation 4, name length 2, name. */
        *creation = get_be32(b + 9);
        name_at = 15;
        name_len = (size_t)b[13] << 8 | b[14];
    } else if (b[0] == 'N' && !v->accepting && len >= 19) {
        /* challenge: 'N', flags 8, challenge 4, creation 4, length 2. */
        *creation = get_be32(b + 13);
        name_at = 19;
        name_len = (size_t)b[17] << 8 | b[18];
    } else if (b[0] == 'n' && len >= (v->accepting ? 7u : 11u)) {
        /* The old forms: 'n', version 2, flags 4, [challenge 4,] name. */
        name_at = v->accepting ? 7 : 11;
        name_len = len - name_at;
    } else {
        return false;
    }
    if (name_at + name_len > len || name_len >= size)
        return false;
    memcpy(name, b + name_at, name_len);
    name[name_len] = '\0';
    return true;
}

/* Whether the handshake read so far begins with the status "nok" (a
 * connect's answer). */
static bool status_nok(const gr__shake_view *v)
{
    size_t len;
    const unsigned char *b = packet_at(v, 0, &len);
    /* "alive": the peer has a connection of its own to this node up; ei
     * cannot answer it, and the peer's connection carries both ways. */
    return b != NULL && ((len == 4 && memcmp(b, "snok", 4) == 0) ||
                         (len == 6 && memcmp(b, "salive", 6) == 0));
}

static int fd_of(void *ctx)
{
    return (int)(intptr_t)ctx;
}

int gr__dist_wait(int fd, short events, unsigned tmo)
{
    if (tmo == EI_SCLBK_INF_TMO && gr__dist_cancel_fd < 0)
        return 0;
    struct pollfd p[2] = {{.fd = fd, .events = events},
                          {.fd = gr__dist_cancel_fd, .events = POLLIN}};
    int r;
    do
        r = poll(p, gr__dist_cancel_fd >= 0 ? 2 : 1,
                 tmo > INT32_MAX ? -1 : (int)tmo);
    while (r < 0 && errno == EINTR);
    if (r > 0 && p[1].revents != 0)
        return ECANCELED;
    return r > 0 ? 0 : r == 0 ? ETIMEDOUT : errno;
}

static int s_socket(void **ctx, void *setup)
{
    (void)setup;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    *ctx = (void *)(intptr_t)fd;
    return 0;
}

static int s_close(void *ctx)
{
    return close(fd_of(ctx)) == 0 ? 0 : errno;
}

static int s_listen(void *ctx, void *addr, int *len, int backlog)
{
    int fd = fd_of(ctx), on = 1;
    socklen_t n = (socklen_t)*len;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        bind(fd, addr, n) != 0 || getsockname(fd, addr, &n) != 0 ||
        listen(fd, backlog) != 0)
        return errno;
    *len = (int)n;
    return 0;
}

static int s_accept(void **ctx, void *addr, int *len, unsigned tmo)
{
    socklen_t n = (socklen_t)*len;
    int fd = gr__dist_preaccepted, e;
    gr__dist_preaccepted = -1;
    if (fd >= 0) { /* Accepted already: its peer's address. */
        if (getpeername(fd, addr, &n) != 0) {
            e = errno;
            close(fd);
            return e;
        }
    } else if ((e = gr__dist_wait(fd_of(*ctx), POLLIN, tmo)) != 0) {
        return e;
    } else if ((fd = accept4(fd_of(*ctx), addr, &n, SOCK_CLOEXEC)) < 0) {
        return errno;
    }
    *len = (int)n;
    *ctx = (void *)(intptr_t)fd;
    return 0;
}

int gr__dist_connect(int fd, const void *addr, int len, unsigned tmo)
{
    int flags = fcntl(fd, F_GETFL), e = 0;
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
        return errno;
    if (connect(fd, addr, (socklen_t)len) != 0) {
        e = errno;
        socklen_t n = sizeof e;
        if (e == EINPROGRESS && (e = gr__dist_wait(fd, POLLOUT, tmo)) == 0 &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &n) != 0)
            e = errno;
    }
    if (fcntl(fd, F_SETFL, flags) != 0 && e == 0)
        e = errno;
    return e;
}

static int s_connect(void *ctx, void *addr, int len, unsigned tmo)
{
    return gr__dist_connect(fd_of(ctx), addr, len, tmo);
}

/* Whether b (len bytes, as written) is a handshake message that carries
 * this node's flags, with its 2-byte length: send_name {'N', Flags:8,
 * Creation:4, NLen:2, Name} or the challenge {'N', Flags:8,
 * Challenge:4, Creation:4, NLen:2, Name}. Each length is checked, so no
 * other write (epmd's requests, a later frame) is taken for one. */
static bool carries_flags(const unsigned char *b, size_t len)
{
    if (len < 17 || b[2] != 'N' || ((size_t)b[0] << 8 | b[1]) + 2 != len)
        return false;
    size_t name_at15 = (size_t)b[15] << 8 | b[16];
    if (17 + name_at15 == len)
        return true;
    return len >= 21 && 21 + ((size_t)b[19] << 8 | b[20]) == len;
}

int gr__dist_transfer(int fd, void *b, size_t n, bool out, unsigned tmo)
{
    unsigned char *p = b;
    while (n > 0) {
        int e = gr__dist_wait(fd, out ? POLLOUT : POLLIN, tmo);
        if (e != 0)
            return e;
        ssize_t k = out ? write(fd, p, n) : read(fd, p, n);
        if (k == 0 && !out)
            return EPROTO;
        if (k < 0 && errno != EINTR && errno != EAGAIN)
            return errno;
        if (k > 0) {
            p += k;
            n -= (size_t)k;
        }
    }
    return 0;
}

/* Reads the initiator's answer to the status "alive" (itself a status
 * packet, "true" or "false"); whether it is "true". */
static bool alive_answer(int fd, unsigned tmo)
{
    unsigned char b[6];
    return gr__dist_transfer(fd, b, 2, false, tmo) == 0 && b[0] == 0 &&
           b[1] == 5 && gr__dist_transfer(fd, b, 5, false, tmo) == 0 &&
           memcmp(b, "strue", 5) == 0;
}

/* An accept's status "ok", about to go out: answered as
 * gr__dist_status_for says instead, the simultaneous connect resolved
 * (see there). Returns 0 with *len as ei asked, or an error: after "nok"
 * ECONNREFUSED, so that ei gives up at once. */
static int write_status(void *ctx, ssize_t *len, unsigned tmo)
{
    (void)len; /* Left as asked. */
    gr__shake_view *v = &gr__dist_shake;
    char peer[MAXATOMLEN_UTF8];
    uint32_t creation;
    const char *status =
        gr__shake_peer(v, peer, sizeof peer, &creation)
            ? gr__dist_status_for(v->d, peer, creation, &v->counted)
            : "ok";
    unsigned char out[32];
    size_t n = strlen(status) + 1;
    out[0] = (unsigned char)(n >> 8);
    out[1] = (unsigned char)n;
    out[2] = 's';
    memcpy(out + 3, status, n - 1);
    int e = gr__dist_transfer(fd_of(ctx), out, n + 2, true, tmo);
    if (e != 0)
        return e;
    /* "alive": the peer says whether this is a new connection (true: its
     * old one, this node's own, is gone; it replaces it) or not (false). */
    if (strcmp(status, "alive") == 0 && alive_answer(fd_of(ctx), tmo))
        return 0;
    if (strcmp(status, "ok") != 0 && strcmp(status, "ok_simultaneous") != 0) {
        v->nok = true;
        return ECONNREFUSED;
    }
    return 0;
}

static int s_write(void *ctx, const char *buf, ssize_t *len, unsigned tmo)
{
    if (gr__dist_shake.d != NULL && gr__dist_shake.accepting && *len == 5 &&
        memcmp(buf, "\0\3sok", 5) == 0)
        return write_status(ctx, len, tmo);
    int e = gr__dist_wait(fd_of(ctx), POLLOUT, tmo);
    if (e != 0)
        return e;
    unsigned char patched[512];
    if (*len > 0 && (size_t)*len <= sizeof patched &&
        carries_flags((const unsigned char *)buf, (size_t)*len)) {
        memcpy(patched, buf, (size_t)*len);
        patched[10] |= DFLAG_DIST_MONITOR_NAME; /* Flags: bytes 3 to 10. */
        buf = (const char *)patched;
    }
    ssize_t k = write(fd_of(ctx), buf, (size_t)*len);
    if (k < 0)
        return errno;
    *len = k;
    return 0;
}

static int s_writev(void *ctx, const void *iov, int n, ssize_t *len,
                    unsigned tmo)
{
    int e = gr__dist_wait(fd_of(ctx), POLLOUT, tmo);
    if (e != 0)
        return e;
    ssize_t k = writev(fd_of(ctx), iov, n);
    if (k < 0)
        return errno;
    *len = k;
    return 0;
}

static int s_read(void *ctx, char *buf, ssize_t *len, unsigned tmo)
{
    int e = gr__dist_wait(fd_of(ctx), POLLIN, tmo);
    if (e != 0)
        return e;
    ssize_t k = read(fd_of(ctx), buf, (size_t)*len);
    if (k < 0)
        return errno;
    *len = k;
    gr__shake_view *v = &gr__dist_shake;
    if (v->d != NULL && v->len < sizeof v->in) { /* What the peer says. */
        size_t keep = (size_t)k < sizeof v->in - v->len ? (size_t)k
                                                        : sizeof v->in - v->len;
        memcpy(v->in + v->len, buf, keep);
        v->len += keep;
        if (!v->accepting && status_nok(v))
            v->nok = true;
    }
    return 0;
}

static int s_header_size(void *ctx, int *size)
{
    (void)ctx;
    *size = 2; /* Handshake messages have 2-byte lengths over TCP. */
    return 0;
}

/* A connection past its handshake: small frames go out at once (no
 * Nagle: a write behind another unacknowledged one would wait for the
 * peer's delayed ACK, 40 ms), and the kernel probes a peer that goes
 * quiet. libei's own callbacks do both here too. */
static int s_done(void *ctx)
{
    int fd = fd_of(ctx), on = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0)
        return errno;
    return 0;
}

static int s_get_fd(void *ctx, int *fd)
{
    *fd = fd_of(ctx);
    return 0;
}

ei_socket_callbacks gr__dist_sockets = {
    .flags = EI_SCLBK_FLG_FULL_IMPL, /* The timeouts are these callbacks'. */
    .socket = s_socket,
    .close = s_close,
    .listen = s_listen,
    .EI_ACCEPT_NAME = s_accept,
    .connect = s_connect,
    .writev = s_writev,
    .write = s_write,
    .read = s_read,
    .handshake_packet_header_size = s_header_size,
    .connect_handshake_complete = s_done,
    .accept_handshake_complete = s_done,
    .get_fd = s_get_fd,
};
