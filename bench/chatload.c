/*
 * chatload: the chat example (examples/chat) under load
 * (shared/BENCHMARKS.md).
 *
 * Starts the real server on port 0 (its rooms in their own node process),
 * connects C clients and puts client i in room i % R, then posts at an
 * aggregate rate of P posts a second for T seconds, each post from the
 * next client in turn. This process is the load generator: one thread,
 * plain epoll, no Grove, so it measures the server, not itself. A post's
 * latency runs from its send to the moment the last of its recipients
 * (every other member of its room) has read it.
 *
 *   CHAT_C=1000 CHAT_R=10 CHAT_P=2000 CHAT_T=10
 *   CHAT_SERVER=path/to/chat (default: the one built beside this program)
 *
 * RESULT: n deliveries (lines read by recipients) over the posting time and
 * its tail, rate in deliveries a second, posts, p50_ms, p99_ms and max_ms of
 * post latency, lost (posts some member never got within 5 s of the end),
 * server_cpu (CPU seconds of the server's two processes per second: 2.0
 * is both vCPUs busy).
 */
#define _GNU_SOURCE

#include "bench_util.h"
#include "proc_stat.h"
#include "server_proc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CHATLOAD_SERVER
#define CHATLOAD_SERVER "chat"
#endif

#define BATCH   32 /* Clients connecting at once (the listener's queue). */
#define TAIL_NS 5000000000ull /* How long to wait for the last deliveries. */

typedef struct client {
    int fd;
    int room;
    bool joined;
    size_t have;
    char buf[8192];
} client;

/* What the run has seen. */
typedef struct load {
    client *cs;
    uint64_t nc, nr;
    uint64_t nposts;
    uint64_t *sent_ns;  /* Per post: when it was sent (0: not yet). */
    uint32_t *left;     /* Per post: recipients still to read it. */
    uint64_t *lat_ns;   /* Latencies of the posts every member got. */
    uint64_t completed; /* Posts every member got. */
    uint64_t deliveries;
    uint64_t last_ns;  /* When the last delivery was read. */
    uint32_t *members; /* Per room. */
} load;

/* ---- the server --------------------------------------------------------- */

/* Starts the server; stores its pid and returns its port. */
static uint16_t server_start(const char *path, uint64_t nc, pid_t *pid)
{
    char max[32];
    snprintf(max, sizeof max, "%" PRIu64, nc + 16);
    const char *const argv[] = {
        path, "--listen", "127.0.0.1:0", "--max-clients",
        max,  "--rate",   "1000",        NULL};
    uint16_t port = server_proc_start(argv, NULL, 10000, pid, NULL);
    if (port != 0)
        return port;
    bench_die("the server (%s) did not say where it listens", path);
}

/* CPU seconds used so far by pid and its children (the rooms node). */
static double tree_cpu_seconds(pid_t pid)
{
    int pids[16];
    int n = proc_children(pid, pids, 15);
    n = n < 0 ? 0 : n > 15 ? 15 : n;
    pids[n++] = pid;
    unsigned long ticks = 0;
    for (int i = 0; i < n; i++) {
        proc_stat st;
        if (proc_stat_read(pids[i], &st))
            ticks += st.utime + st.stime;
    }
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

/* ---- clients ------------------------------------------------------------ */

static void send_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t k = send(fd, text, len, MSG_NOSIGNAL);
        if (k < 0 && errno == EAGAIN) {
            struct pollfd pf = {fd, POLLOUT, 0};
            if (poll(&pf, 1, 10000) <= 0)
                bench_die("the server stopped reading a client");
            continue;
        }
        if (k <= 0)
            bench_die("send: %s", strerror(errno));
        text += k;
        len -= (size_t)k;
    }
}

/* One line read by client c. */
static void on_line(load *l, client *c, char *line, size_t len)
{
    line[len] = '\0';
    if (strncmp(line, "MSG ", 4) == 0) {
        char *sp = strrchr(line, ' ');
        uint64_t id = strtoull(sp + 1, NULL, 10);
        if (id >= l->nposts || l->sent_ns[id] == 0 || l->left[id] == 0)
            bench_die("unexpected delivery: %s", line);
        uint64_t now = bench_now_ns();
        l->deliveries++;
        l->last_ns = now;
        if (--l->left[id] == 0)
            l->lat_ns[l->completed++] = now - l->sent_ns[id];
    } else if (strncmp(line, "OK JOIN", 7) == 0) {
        c->joined = true;
    } else if (strncmp(line, "ERR", 3) == 0) {
        bench_die("the server answered %s", line);
    }
}

/* Reads what client c has, with one recv (epoll is level-triggered: what
 * is left is reported again, and a second recv to learn that would double
 * the generator's system calls); false at end of file. */
static bool on_readable(load *l, client *c)
{
    ssize_t k =
        recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, MSG_DONTWAIT);
    if (k == 0)
        return false;
    if (k < 0)
        return errno == EAGAIN || errno == EINTR;
    c->have += (size_t)k;
    size_t start = 0;
    for (size_t i = 0; i < c->have; i++)
        if (c->buf[i] == '\n') {
            on_line(l, c, c->buf + start, i - start);
            start = i + 1;
        }
    memmove(c->buf, c->buf + start, c->have - start);
    c->have -= start;
    if (c->have == sizeof c->buf)
        bench_die("a line longer than %zu bytes", sizeof c->buf);
    return true;
}

/* Reads what has arrived within ms; a client the server closed is fatal. */
static void pump(load *l, int ep, int ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, ms);
    for (int i = 0; i < n; i++) {
        client *c = &l->cs[evs[i].data.u64];
        if (!on_readable(l, c))
            bench_die("the server closed client %" PRIu64,
                      (uint64_t)evs[i].data.u64);
    }
}

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        bench_die("connect: %s", strerror(errno));
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Connects every client, BATCH at a time, each named and in its room. */
static void join_all(load *l, int ep, uint16_t port)
{
    for (uint64_t first = 0; first < l->nc; first += BATCH) {
        uint64_t end = first + BATCH < l->nc ? first + BATCH : l->nc;
        for (uint64_t i = first; i < end; i++) {
            client *c = &l->cs[i];
            c->fd = connect_to(port);
            c->room = (int)(i % l->nr);
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
                bench_die("epoll_ctl: %s", strerror(errno));
            char hello[64];
            int n = snprintf(hello, sizeof hello,
                             "NICK c%" PRIu64 "\nJOIN #r%d\n", i, c->room);
            send_all(c->fd, hello, (size_t)n);
        }
        uint64_t deadline = bench_now_ns() + 10000000000ull;
        for (uint64_t i = first; i < end; i++)
            while (!l->cs[i].joined) {
                if (bench_now_ns() > deadline)
                    bench_die("client %" PRIu64 " did not join in 10 s", i);
                pump(l, ep, 100);
            }
    }
}

/* Raises the descriptor limit to what C clients need (the server, a child,
 * inherits it). */
static void raise_fd_limit(uint64_t nc)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0)
        bench_die("getrlimit: %s", strerror(errno));
    rlim_t need = (rlim_t)nc + 256;
    if (r.rlim_cur >= need)
        return;
    if (r.rlim_max < need)
        bench_die("%" PRIu64
                  " clients need %llu descriptors; the limit is %llu",
                  nc, (unsigned long long)need, (unsigned long long)r.rlim_max);
    r.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &r) != 0)
        bench_die("setrlimit: %s", strerror(errno));
}

int main(void)
{
    load l = {0};
    l.nc = bench_env_u64("CHAT_C", 1000);
    l.nr = bench_env_u64("CHAT_R", 10);
    uint64_t rate = bench_env_u64("CHAT_P", 2000);
    uint64_t secs = bench_env_u64("CHAT_T", 10);
    const char *path = getenv("CHAT_SERVER");
    if (path == NULL || *path == '\0')
        path = CHATLOAD_SERVER;
    if (l.nr > l.nc || l.nc < 2 * l.nr)
        bench_die("CHAT_C must be at least twice CHAT_R (two members a room)");
    raise_fd_limit(l.nc);
    signal(SIGPIPE, SIG_IGN);

    l.nposts = rate * secs;
    l.cs = calloc(l.nc, sizeof *l.cs);
    l.sent_ns = calloc(l.nposts, sizeof *l.sent_ns);
    l.left = calloc(l.nposts, sizeof *l.left);
    l.lat_ns = calloc(l.nposts, sizeof *l.lat_ns);
    l.members = calloc(l.nr, sizeof *l.members);
    if (!l.cs || !l.sent_ns || !l.left || !l.lat_ns || !l.members)
        bench_die("out of memory");
    for (uint64_t i = 0; i < l.nc; i++)
        l.members[i % l.nr]++;

    pid_t server;
    uint16_t port = server_start(path, l.nc, &server);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        bench_die("epoll_create1: %s", strerror(errno));
    join_all(&l, ep, port);

    /* Post j goes at t0 + j / rate, from client j % C. */
    double cpu0 = tree_cpu_seconds(server);
    uint64_t t0 = bench_now_ns(), next = 0;
    uint64_t gap = 1000000000ull / rate;
    while (next < l.nposts) {
        uint64_t now = bench_now_ns();
        for (; next < l.nposts && t0 + next * gap <= now; next++) {
            client *c = &l.cs[next % l.nc];
            char post[64];
            int n = snprintf(post, sizeof post, "MSG #r%d %" PRIu64 "\n",
                             c->room, next);
            l.left[next] = l.members[c->room] - 1;
            l.sent_ns[next] = bench_now_ns();
            send_all(c->fd, post, (size_t)n);
        }
        uint64_t due = t0 + next * gap;
        now = bench_now_ns();
        int ms = due > now ? (int)((due - now) / 1000000) : 0;
        pump(&l, ep, next < l.nposts ? ms : 0);
    }
    uint64_t posted_ns = bench_now_ns();
    while (l.completed < l.nposts && bench_now_ns() < posted_ns + TAIL_NS)
        pump(&l, ep, 10);
    double cpu = tree_cpu_seconds(server) - cpu0;
    double seconds = bench_seconds(t0, l.last_ns > t0 ? l.last_ns : posted_ns);

    bench_sort_u64(l.lat_ns, l.completed);
    uint64_t n = l.completed ? l.completed : 1;
    bench_result("chatload", l.deliveries, seconds, "delivery",
                 "clients=%" PRIu64 " rooms=%" PRIu64 " posts=%" PRIu64
                 " post_rate=%" PRIu64 "/s p50_ms=%.2f p99_ms=%.2f"
                 " max_ms=%.2f lost=%" PRIu64 " server_cpu=%.2f",
                 l.nc, l.nr, l.nposts, rate,
                 l.completed ? bench_percentile(l.lat_ns, n, 50, 1e6) : 0,
                 l.completed ? bench_percentile(l.lat_ns, n, 99, 1e6) : 0,
                 l.completed ? (double)l.lat_ns[n - 1] / 1e6 : 0,
                 l.nposts - l.completed, cpu / seconds);

    kill(server, SIGTERM);
    int st = 0;
    waitpid(server, &st, 0);
    for (uint64_t i = 0; i < l.nc; i++)
        close(l.cs[i].fd);
    close(ep);
    free(l.cs);
    free(l.sent_ns);
    free(l.left);
    free(l.lat_ns);
    free(l.members);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bench_die("the server exited with status %d", st);
    return l.completed == l.nposts ? 0 : 1;
}
