/*
 * tcpecho: actor-owned sockets under load (shared/BENCHMARKS.md).
 *
 * C client connections each make K round trips of 64-byte messages, with
 * up to W in flight at once (pipelined), through an echo server; the
 * client (this process's main thread, epoll, no Grove) times each message
 * from its send to its echo. Two servers take the same load in one run:
 *   - Grove: a listener actor gives each connection to a session actor,
 *     which reads active-once (raw chunks) and writes back; then the same
 *     with an allowance of 16 ({active, 16}: renewed with each chunk, so
 *     the read watcher stays on);
 *   - raw: a minimal single-threaded epoll echo server (impl=raw), the
 *     floor.
 * Then the idle cost: I idle connections held by Grove sessions (the
 * clients in a child process), VmRSS per connection, and per connection
 * beyond an idle actor's own cost.
 *
 *   ECHO_C=100 ECHO_K=10000 ECHO_W=16 ECHO_IDLE=10000
 *
 * RESULT lines: bench=tcpecho (Grove), bench=tcpecho_active16,
 * bench=tcpecho_raw, bench=tcpecho_idle.
 */
#define _GNU_SOURCE /* accept4 */

#include "bench_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG 64

enum { MSG_PORT = 1 };

/* ---- the Grove server --------------------------------------------------- */

/* The allowance a session asks for: 1 ({active, once}) or 16. Set before
 * its listener starts. */
static uint32_t session_active = 1;

static int session_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    gr_io_event ev;
    if (gr_io_event_read(m, &ev) != GR_OK)
        return GR_CONTINUE;
    switch (ev.kind) {
    case GR_IO_GIVEN:
        return gr_io_activate(ctx, ev.socket, session_active);
    case GR_IO_DATA:
        if (gr_io_write(ctx, ev.socket, ev.data, ev.len) != GR_OK)
            return GR_STOP;
        return gr_io_activate(ctx, ev.socket, session_active);
    default:
        return GR_STOP;
    }
}

static const gr_behaviour session = {.name = "session",
                                     .handle = session_handle};

static int listener_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)len;
    gr_ref main_inbox;
    memcpy(&main_inbox, arg, sizeof main_inbox);
    gr_io_opts opts = {.max_frame = 16384};
    gr_socket s;
    uint16_t port = 0;
    int rc = gr_io_listen(ctx, "127.0.0.1:0", &opts, &s);
    if (rc == GR_OK)
        rc = gr_io_port(ctx, s, &port);
    if (rc != GR_OK)
        return rc;
    return bench_tell_u64(ctx, main_inbox, MSG_PORT, port);
}

static int listener_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    gr_io_event ev;
    if (gr_io_event_read(m, &ev) != GR_OK || ev.kind != GR_IO_ACCEPTED)
        return GR_CONTINUE;
    gr_ref sess;
    if (gr_spawn(ctx, &session, NULL, 0, &sess) != GR_OK ||
        gr_io_give(ctx, ev.socket, sess) != GR_OK)
        (void)gr_io_close(ctx, ev.socket);
    return GR_CONTINUE;
}

static const gr_behaviour listener = {
    .name = "listener", .init = listener_init, .handle = listener_handle};

/* ---- the raw floor: one thread, epoll ----------------------------------- */

typedef struct raw_conn {
    int fd;
    char *pend; /* Bytes the kernel did not take yet. */
    size_t plen;
} raw_conn;

static int raw_listen_fd, raw_stop_fd;

static void raw_flush(int ep, raw_conn *c)
{
    while (c->plen > 0) {
        ssize_t k = send(c->fd, c->pend, c->plen, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k <= 0)
            break;
        memmove(c->pend, c->pend + k, c->plen - (size_t)k);
        c->plen -= (size_t)k;
    }
    struct epoll_event e = {.events = EPOLLIN | (c->plen ? EPOLLOUT : 0u),
                            .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void *raw_server(void *arg)
{
    (void)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, raw_listen_fd, &e);
    e.data.ptr = &raw_stop_fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, raw_stop_fd, &e);
    static char buf[65536];
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &raw_stop_fd) {
                close(ep);
                return NULL;
            }
            if (evs[i].data.ptr == NULL) {
                int fd;
                while ((fd = accept4(raw_listen_fd, NULL, NULL,
                                     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    raw_conn *c = calloc(1, sizeof *c);
                    c->fd = fd;
                    struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                }
                continue;
            }
            raw_conn *c = evs[i].data.ptr;
            if ((evs[i].events & EPOLLOUT) && c->plen > 0)
                raw_flush(ep, c);
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            ssize_t k = read(c->fd, buf, sizeof buf);
            if (k <= 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                free(c->pend);
                free(c);
                continue;
            }
            ssize_t w = c->plen ? 0
                                : send(c->fd, buf, (size_t)k,
                                       MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w < 0)
                w = 0;
            if (w < k) {
                c->pend = realloc(c->pend, c->plen + (size_t)(k - w));
                memcpy(c->pend + c->plen, buf + w, (size_t)(k - w));
                c->plen += (size_t)(k - w);
                raw_flush(ep, c);
            }
        }
    }
}

/* ---- the load ------------------------------------------------------------ */

typedef struct client {
    int fd;
    uint64_t sent, got;
    char buf[MSG * 64];
    size_t have;
} client;

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        bench_die("connect to port %u: %s", port, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Writes all of len bytes to a blocking fd; false on error. */
static bool write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t k = send(fd, p, len, MSG_NOSIGNAL);
        if (k <= 0)
            return false;
        p += k;
        len -= (size_t)k;
    }
    return true;
}

/* Sends n messages stamped with the time on c. */
static void send_msgs(client *c, uint64_t n)
{
    char out[MSG * 64];
    uint64_t now = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        memset(out + i * MSG, 'e', MSG);
        memcpy(out + i * MSG, &now, sizeof now);
    }
    if (!write_all(c->fd, out, (size_t)n * MSG))
        bench_die("client write: %s", strerror(errno));
    c->sent += n;
}

/* What one load took: seconds, and this process's context switches. */
typedef struct load {
    double seconds;
    long switches;
} load;

static long switches_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_nvcsw + ru.ru_nivcsw;
}

/* Drives C connections to port through K round trips each, W in flight;
 * stores every round trip's latency in lat (C*K entries). */
static load run_load(uint16_t port, uint64_t C, uint64_t K, uint64_t W,
                     uint64_t *lat)
{
    client *cs = calloc(C, sizeof *cs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (uint64_t i = 0; i < C; i++) {
        cs[i].fd = connect_to(port);
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &e);
    }
    long switches = switches_now();
    uint64_t start = bench_now_ns(), done = 0, nlat = 0;
    for (uint64_t i = 0; i < C; i++)
        send_msgs(&cs[i], W < K ? W : K);
    struct epoll_event evs[256];
    while (done < C) {
        int n = epoll_wait(ep, evs, 256, 10000);
        if (n <= 0)
            bench_die("the echo server went quiet");
        for (int i = 0; i < n; i++) {
            client *c = evs[i].data.ptr;
            ssize_t k = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have,
                             MSG_DONTWAIT);
            if (k <= 0)
                bench_die("client read: %s",
                          k == 0 ? "closed" : strerror(errno));
            c->have += (size_t)k;
            uint64_t now = bench_now_ns(), whole = c->have / MSG;
            for (uint64_t m = 0; m < whole; m++) {
                uint64_t t;
                memcpy(&t, c->buf + m * MSG, sizeof t);
                lat[nlat++] = now - t;
            }
            memmove(c->buf, c->buf + whole * MSG, c->have - whole * MSG);
            c->have -= whole * MSG;
            c->got += whole;
            uint64_t more = K - c->sent < whole ? K - c->sent : whole;
            if (more > 0)
                send_msgs(c, more);
            if (c->got == K)
                done++;
        }
    }
    load done_load = {.seconds = bench_seconds(start, bench_now_ns()),
                      .switches = switches_now() - switches};
    for (uint64_t i = 0; i < C; i++)
        close(cs[i].fd);
    close(ep);
    free(cs);
    return done_load;
}

/* Prints one load's RESULT line; a Grove load's has its rate over the raw
 * floor's in this run (raw_seconds), which is what compares across runs. */
static void report(const char *bench, const char *impl, uint64_t C, uint64_t K,
                   uint64_t W, load l, double raw_seconds, uint64_t *lat,
                   unsigned workers)
{
    uint64_t n = C * K;
    double s = l.seconds;
    bench_sort_u64(lat, n);
    printf("RESULT bench=%s impl=%s n=%" PRIu64 " seconds=%.6f rate=%" PRIu64
           "/s unit=round_trip ns_per_roundtrip=%.1f p50_us=%.1f p99_us=%.1f "
           "conns=%" PRIu64 " window=%" PRIu64 " workers=%u "
           "switches_per_1k=%.2f",
           bench, impl, n, s, (uint64_t)((double)n / s + 0.5),
           s * 1e9 / (double)n, bench_percentile(lat, n, 50, 1e3),
           bench_percentile(lat, n, 99, 1e3), C, W, workers,
           (double)l.switches * 1000.0 / (double)n);
    if (raw_seconds > 0)
        printf(" ratio_to_raw=%.3f", raw_seconds / s);
    printf("\n");
    fflush(stdout);
}

/* ---- idle connections ---------------------------------------------------- */

/* A child process opens n connections to port, says so on `ready`, and
 * holds them until `hold` closes. */
static pid_t idle_clients(uint16_t port, uint64_t n, int ready, int hold,
                          int hold_w)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    close(hold_w); /* Else the parent's close would never end our read. */
    for (uint64_t i = 0; i < n; i++)
        (void)connect_to(port);
    char c = 1;
    if (write(ready, &c, 1) != 1)
        _exit(1);
    (void)read(hold, &c, 1);
    _exit(0);
}

/* Waits until sys has `want` sockets open; dies after a minute. */
static void wait_sockets(gr_system *sys, uint64_t want)
{
    uint64_t end = bench_now_ns() + 60 * 1000000000ull;
    gr_stats st;
    for (;;) {
        gr_system_stats(sys, &st);
        if (st.sockets_open == want)
            return;
        if (bench_now_ns() > end)
            bench_die("%" PRIu64 " sockets open, waited for %" PRIu64,
                      st.sockets_open, want);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}

static void idle_run(gr_system *sys, gr_inbox *inbox, uint64_t I)
{
    /* Idle actors alone first: their cost is subtracted below. They stay
     * alive meanwhile, so the sessions cannot reuse their memory. */
    uint64_t r0 = bench_rss_bytes();
    gr_ref *refs = malloc(I * sizeof *refs);
    for (uint64_t i = 0; i < I; i++)
        bench_check(gr_system_spawn(sys, &session, NULL, 0, &refs[i]), "spawn");
    uint64_t r1 = bench_rss_bytes();
    gr_ref me = gr_inbox_ref(inbox), l;
    bench_check(gr_system_spawn(sys, &listener, &me, sizeof me, &l),
                "listener");
    uint16_t port = (uint16_t)bench_recv_u64(inbox, MSG_PORT);
    uint64_t r2 = bench_rss_bytes();
    int ready[2], hold[2];
    if (pipe(ready) != 0 || pipe(hold) != 0)
        bench_die("pipe");
    uint64_t start = bench_now_ns();
    pid_t pid = idle_clients(port, I, ready[1], hold[0], hold[1]);
    char c;
    if (read(ready[0], &c, 1) != 1)
        bench_die("idle clients failed");
    wait_sockets(sys, 1 + I); /* The listener and the connections. */
    double s = bench_seconds(start, bench_now_ns());
    uint64_t r3 = bench_rss_bytes();
    double per_actor = (double)(r1 - r0) / (double)I;
    double per_conn = (double)(r3 - r2) / (double)I;
    close(hold[1]);
    waitpid(pid, NULL, 0);
    for (uint64_t i = 0; i < I; i++)
        (void)gr_stop(sys, refs[i]);
    free(refs);
    printf(
        "RESULT bench=tcpecho_idle impl=grove n=%" PRIu64
        " seconds=%.6f rate=%" PRIu64
        "/s unit=connection rss_bytes_per_conn=%.0f "
        "rss_bytes_per_idle_actor=%.0f rss_bytes_per_conn_beyond_actor=%.0f\n",
        I, s, (uint64_t)((double)I / s + 0.5), per_conn, per_actor,
        per_conn - per_actor);
    fflush(stdout);
}

int main(void)
{
    uint64_t C = bench_env_u64("ECHO_C", 100);
    uint64_t K = bench_env_u64("ECHO_K", 10000);
    uint64_t W = bench_env_u64("ECHO_W", 16);
    uint64_t I = bench_env_u64("ECHO_IDLE", 10000);
    if (W > 64)
        bench_die("ECHO_W: at most 64");
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    uint64_t *lat = malloc(C * K * sizeof *lat);
    if (lat == NULL)
        bench_die("out of memory");

    gr_system *sys = bench_start();
    gr_inbox *inbox;
    bench_check(gr_inbox_open(sys, &inbox), "inbox");
    idle_run(sys, inbox, I); /* First, while memory is fresh. */
    /* The floor first, so each Grove line can give its ratio to it. */
    raw_listen_fd =
        socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t slen = sizeof sa;
    int stop[2];
    if (bind(raw_listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(raw_listen_fd, SOMAXCONN) != 0 ||
        getsockname(raw_listen_fd, (struct sockaddr *)&sa, &slen) != 0 ||
        pipe(stop) != 0)
        bench_die("raw server: %s", strerror(errno));
    raw_stop_fd = stop[0];
    pthread_t t;
    pthread_create(&t, NULL, raw_server, NULL);
    load raw = run_load(ntohs(sa.sin_port), C, K, W, lat);
    report("tcpecho_raw", "raw", C, K, W, raw, 0, lat, 1);
    close(stop[1]);
    pthread_join(t, NULL);
    close(raw_listen_fd);
    close(stop[0]);

    gr_ref me = gr_inbox_ref(inbox), l;
    bench_check(gr_system_spawn(sys, &listener, &me, sizeof me, &l),
                "listener");
    uint16_t port = (uint16_t)bench_recv_u64(inbox, MSG_PORT);
    load g = run_load(port, C, K, W, lat);
    report("tcpecho", "grove", C, K, W, g, raw.seconds, lat,
           bench_workers(sys));
    session_active = 16; /* Before the listener whose sessions use it. */
    bench_check(gr_system_spawn(sys, &listener, &me, sizeof me, &l),
                "listener");
    port = (uint16_t)bench_recv_u64(inbox, MSG_PORT);
    g = run_load(port, C, K, W, lat);
    report("tcpecho_active16", "grove", C, K, W, g, raw.seconds, lat,
           bench_workers(sys));

    free(lat);
    gr_inbox_close(inbox);
    bench_check(gr_system_shutdown(sys), "shutdown");
    return 0;
}
