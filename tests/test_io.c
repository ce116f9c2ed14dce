/*
 * Sockets owned by actors (grove/io.h) against real clients on loopback:
 * echo with ordering, framing split at every byte boundary, over-long
 * lines and frames, ownership hand-over, an owner's crash, flow control,
 * backpressure and the slow-client policy, connect outcomes, bad
 * arguments, descriptors back at baseline, shutdown with sockets open.
 */
#include "io_env.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* Opens an echo server (an agent in echo mode) with the given framing;
 * stores the agent and returns the port (0 on failure). */
static uint16_t echo_server(gr_io_framing framing, gr_ref *agent)
{
    *agent = io_agent_spawn();
    if (io_simple(*agent, OP_ECHO, GR_SOCKET_NONE, 1) != GR_OK)
        return 0;
    gr_io_opts o = {.framing = framing, .max_frame = 64};
    io_ans a = io_listen(*agent, "127.0.0.1:0", &o);
    return a.rc == GR_OK ? a.port : 0;
}

/* Lines go out and come back in order; the owner saw ACCEPTED, each line
 * once, and CLOSED when the client closed. */
static void echo_lines_in_order(void)
{
    CHECK(io_open());
    gr_ref agent;
    uint16_t port = echo_server(GR_IO_LINE, &agent);
    CHECK(port != 0);
    int fd = client_tcp(port);
    CHECK(fd >= 0);
    gr_io_event ev;
    CHECK(io_expect(GR_IO_ACCEPTED, &ev));
    CHECK(strncmp(ev.text, "127.0.0.1:", 10) == 0);
    for (int i = 0; i < 200; i++) {
        char line[32], back[32];
        int n = snprintf(line, sizeof line, "line %d\r\n", i);
        CHECK(client_send(fd, line, (size_t)n));
        char want[32];
        int k = snprintf(want, sizeof want, "line %d", i);
        CHECK(client_recv(fd, back, (size_t)k));
        CHECK(memcmp(back, want, (size_t)k) == 0);
        CHECK(io_next(&ev, back, sizeof back));
        CHECK_EQ(ev.kind, GR_IO_DATA);
        CHECK_EQ(ev.len, (size_t)k);
    }
    close(fd);
    CHECK(io_expect(GR_IO_CLOSED, NULL));
    gr_stats st = stats_of(io.sys);
    CHECK(st.socket_bytes_in > 0 && st.socket_bytes_out > 0);
    CHECK_EQ(io_close(), GR_OK);
}

/* Feeds data to an echo server in pieces cut at `cut` and checks what the
 * owner gets: the lines or frames in want, in order (the echo adds prefix
 * bytes to each). */
static void split_feed(uint16_t port, const char *data, size_t len, size_t cut,
                       const char *const *want, int nwant, size_t prefix)
{
    int fd = client_tcp(port);
    CHECK(fd >= 0);
    CHECK(io_expect(GR_IO_ACCEPTED, NULL));
    CHECK(client_send(fd, data, cut));
    sleep_ms(1); /* Not load-bearing: two segments are likelier so. */
    CHECK(client_send(fd, data + cut, len - cut));
    size_t echoed = 0;
    for (int i = 0; i < nwant; i++) {
        char buf[128];
        gr_io_event ev;
        CHECK(io_next(&ev, buf, sizeof buf));
        CHECK_EQ(ev.kind, GR_IO_DATA);
        CHECK_EQ(ev.len, strlen(want[i]));
        CHECK(memcmp(buf, want[i], ev.len) == 0);
        echoed += prefix + ev.len; /* The echo is framed the same way. */
    }
    /* Read the echo first: closing with unread bytes would be a reset. */
    char back[128];
    CHECK(client_recv(fd, back, echoed));
    close(fd);
    CHECK(io_expect(GR_IO_CLOSED, NULL));
}

/* Lines and length-prefixed frames split at every byte boundary arrive
 * whole, in order, once each. */
static void framing_split_everywhere(void)
{
    CHECK(io_open());
    gr_ref line_agent, len_agent;
    uint16_t lport = echo_server(GR_IO_LINE, &line_agent);
    uint16_t fport = echo_server(GR_IO_LEN4, &len_agent);
    CHECK(lport != 0 && fport != 0);
    static const char lines[] = "ab\ncde\r\n\nf\n";
    static const char *const lwant[] = {"ab", "cde", "", "f"};
    for (size_t cut = 0; cut <= sizeof lines - 1; cut++)
        split_feed(lport, lines, sizeof lines - 1, cut, lwant, 4, 0);
    static const char frames[] = "\0\0\0\3xyz\0\0\0\0\0\0\0\2pq";
    static const char *const fwant[] = {"xyz", "", "pq"};
    for (size_t cut = 0; cut <= sizeof frames - 1; cut++)
        split_feed(fport, frames, sizeof frames - 1, cut, fwant, 3, 4);
    CHECK_EQ(io_close(), GR_OK);
}

/* A line or frame over max_frame is an error message, reading stops, and
 * the owner can still write and close; the bytes are never gathered. */
static void over_long_is_an_error(void)
{
    CHECK(io_open());
    for (int framing = GR_IO_LINE; framing <= GR_IO_LEN4; framing++) {
        gr_ref agent = io_agent_spawn();
        gr_io_opts o = {.framing = (gr_io_framing)framing, .max_frame = 16};
        io_conn cn;
        CHECK(io_conn_open(agent, &o, &cn));
        int fd = cn.fd;
        gr_socket s = cn.s;
        gr_io_event ev;
        CHECK_EQ(io_simple(agent, OP_ACTIVATE, s, GR_IO_ALWAYS), GR_OK);
        char big[4096];
        memset(big, 'x', sizeof big);
        if (framing == GR_IO_LEN4)
            memcpy(big, "\0\0\0\x11", 4); /* 17 bytes: one too many. */
        CHECK(client_send(fd, big, sizeof big));
        if (framing == GR_IO_LINE) /* The rest of it, then a good line. */
            CHECK(client_send(fd, "xx\nok\n", 6));
        CHECK(io_expect(GR_IO_ERROR, &ev));
        CHECK_EQ(ev.code, GR_EMSGSIZE);
        CHECK(strstr(ev.text, "longer than 16") != NULL);
        if (framing == GR_IO_LINE) { /* Dropped once; reading goes on. */
            char ok[4];
            CHECK(io_next(&ev, ok, sizeof ok));
            CHECK(ev.kind == GR_IO_DATA && ev.len == 2 &&
                  memcmp(ok, "ok", 2) == 0);
        }
        CHECK_EQ(io_write(agent, s, "ERR too long", 12), GR_OK);
        CHECK_EQ(io_simple(agent, OP_CLOSE, s, 0), GR_OK);
        char back[16] = "";
        size_t want = framing == GR_IO_LEN4 ? 16 : 12;
        CHECK(client_recv(fd, back, want));
        CHECK(memcmp(back + (framing == GR_IO_LEN4 ? 4 : 0), "ERR too long",
                     12) == 0);
        CHECK(client_eof(fd));
        close(fd);
    }
    CHECK_EQ(io_close(), GR_OK);
}

/* The usual server: a listener hands each connection to a fresh session
 * actor; the session's crash closes its socket (the client reads end of
 * file) and nothing else. */
static void handover_and_owner_crash(void)
{
    CHECK(io_open());
    gr_ref listener = io_agent_spawn();
    io_conn cn;
    CHECK(io_conn_open(listener, NULL, &cn));
    io_ans l = cn.listener;
    int fd = cn.fd;
    gr_socket s = cn.s;
    gr_io_event ev;
    gr_ref session = io_agent_spawn();
    CHECK_EQ(io_simple(session, OP_ECHO, GR_SOCKET_NONE, 1), GR_OK);
    io_cmd give = {.op = OP_GIVE, .s = s, .ref = session};
    CHECK_EQ(io_do(listener, &give).rc, GR_OK);
    CHECK(io_expect(GR_IO_GIVEN, &ev));
    CHECK_EQ(ev.socket.id, s.id);
    /* The old owner has no say any more. */
    CHECK_EQ(io_simple(listener, OP_ACTIVATE, s, 1), GR_ENOTOWNER);
    CHECK_EQ(io_simple(session, OP_ACTIVATE, s, 1), GR_OK);
    CHECK(client_send(fd, "hello", 5));
    char back[8];
    CHECK(client_recv(fd, back, 5));
    CHECK(memcmp(back, "hello", 5) == 0);
    CHECK(io_expect(GR_IO_DATA, NULL));
    CHECK_EQ(io_simple(session, OP_CRASH, GR_SOCKET_NONE, 0), GR_OK);
    CHECK(client_eof(fd));
    close(fd);
    /* The listener is untouched: a second client is accepted. */
    fd = client_tcp(l.port);
    CHECK(fd >= 0);
    CHECK(io_expect(GR_IO_ACCEPTED, &ev));
    /* Giving to an actor that is gone closes the socket. */
    gr_ref gone = io_agent_spawn();
    CHECK_EQ(io_simple(gone, OP_CRASH, GR_SOCKET_NONE, 0), GR_OK);
    give.s = ev.socket;
    give.ref = gone;
    double end = test_now() + WAIT_LIMIT_S;
    while (gr_system_tell(io.sys, GR_REF_NONE, gone, 1, NULL, 0) !=
               GR_ENOACTOR &&
           test_now() < end)
        sleep_ms(1);
    CHECK_EQ(io_do(listener, &give).rc, GR_OK);
    CHECK(client_eof(fd));
    close(fd);
    CHECK_EQ(io_close(), GR_OK);
}

/* Nothing is read while the owner has not asked: the client's bytes wait
 * in the kernel; one activation delivers exactly one line. */
static void passive_until_activated(void)
{
    CHECK(io_open());
    gr_ref agent = io_agent_spawn();
    gr_io_opts o = {.framing = GR_IO_LINE};
    io_conn cn;
    CHECK(io_conn_open(agent, &o, &cn));
    int fd = cn.fd;
    gr_io_event ev = {.socket = cn.s};
    CHECK(client_send(fd, "a\nb\nc\n", 6));
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(io.inbox, &m, 50), GR_ETIMEDOUT);
    CHECK_EQ(io_simple(agent, OP_ACTIVATE, ev.socket, 1), GR_OK);
    char buf[4];
    CHECK(io_next(&ev, buf, sizeof buf));
    CHECK(ev.kind == GR_IO_DATA && ev.len == 1 && buf[0] == 'a');
    CHECK_EQ(gr_inbox_recv(io.inbox, &m, 50), GR_ETIMEDOUT);
    CHECK_EQ(io_simple(agent, OP_ACTIVATE, ev.socket, 2), GR_OK);
    CHECK(io_next(&ev, buf, sizeof buf) && buf[0] == 'b');
    CHECK(io_next(&ev, buf, sizeof buf) && buf[0] == 'c');
    close(fd);
    CHECK_EQ(io_simple(agent, OP_ACTIVATE, ev.socket, 1), GR_OK);
    CHECK(io_expect(GR_IO_CLOSED, NULL));
    CHECK_EQ(io_close(), GR_OK);
}

/* Floods a socket from a thread of its own (the test's clients block). */
typedef struct flood {
    int fd;
    size_t bytes;
    atomic_int done;
} flood;

static void *flood_main(void *arg)
{
    flood *f = arg;
    char block[8192];
    for (size_t i = 0; i < sizeof block; i += 8)
        memcpy(block + i, "0123456\n", 8);
    for (size_t sent = 0; sent < f->bytes; sent += sizeof block)
        if (!client_send(f->fd, block, sizeof block))
            break;
    atomic_store(&f->done, 1);
    return NULL;
}

/* An owner that re-activates in its own handler (the usual pattern, and
 * the fastest way to ask for more) is never read ahead of: what the
 * runtime has read but the owner not yet handled stays within one read
 * and one line, however fast the client sends. */
static void flood_stays_bounded(void)
{
    CHECK(io_open());
    gr_ref agent = io_agent_spawn();
    CHECK_EQ(io_simple(agent, OP_ECHO, GR_SOCKET_NONE, 2), GR_OK);
    gr_io_opts o = {.framing = GR_IO_LINE, .max_frame = 64};
    io_ans l = io_listen(agent, "127.0.0.1:0", &o);
    CHECK_EQ(l.rc, GR_OK);
    atomic_store(&io_consumed, 0);
    flood f = {.fd = client_tcp(l.port), .bytes = scaled(8 << 20, 1 << 20)};
    CHECK(f.fd >= 0);
    CHECK(io_expect(GR_IO_ACCEPTED, NULL));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, flood_main, &f) == 0);
    uint64_t ahead_max = 0;
    double end = test_now() + WAIT_LIMIT_S;
    while (atomic_load(&io_consumed) < f.bytes && test_now() < end) {
        uint64_t in = stats_of(io.sys).socket_bytes_in;
        uint64_t used = atomic_load(&io_consumed);
        if (in > used && in - used > ahead_max)
            ahead_max = in - used;
        sleep_ms(1);
    }
    pthread_join(t, NULL);
    CHECK_EQ(atomic_load(&f.done), 1);
    CHECK_EQ(atomic_load(&io_consumed), f.bytes);
    /* One read (64 KiB) and a line, with room for the counters' skew. */
    CHECK(ahead_max <= 2 * 65536);
    close(f.fd);
    CHECK_EQ(io_close(), GR_OK);
}

/* A client that does not read: writes are refused with backpressure once
 * the send buffer is full (the server's memory stays bounded), and with
 * close_when_full the socket is closed and the owner told how much was
 * left unsent. */
static void slow_reader_backpressure(void)
{
    CHECK(io_open());
    for (int policy = 0; policy <= 1; policy++) {
        gr_ref agent = io_agent_spawn();
        gr_io_opts o = {.send_buffer = 64 * 1024, .close_when_full = policy};
        io_conn cn;
        CHECK(io_conn_open(agent, &o, &cn));
        int fd = cn.fd;
        gr_socket s = cn.s;
        gr_io_event ev;
        char chunk[1000];
        memset(chunk, 'z', sizeof chunk);
        int rc = GR_OK, writes = 0;
        /* The kernel's buffers take a few MB at most; then ours fills. */
        while (rc == GR_OK && writes < 100000) {
            rc = io_write(agent, s, chunk, sizeof chunk);
            writes++;
        }
        CHECK_EQ(rc, GR_EBACKPRESSURE);
        io_cmd q = {.op = OP_QUEUED, .s = s};
        if (policy == 0) {
            /* The queue is what the refusal said: too full for one more. */
            io_ans qa = io_do(agent, &q);
            CHECK_EQ(qa.rc, GR_OK);
            CHECK(qa.queued > 64 * 1024 - sizeof chunk &&
                  qa.queued <= 64 * 1024);
            /* Refused, not closed: it works again once the client reads. */
            char sink[65536];
            CHECK(recv(fd, sink, sizeof sink, 0) > 0);
            double end = test_now() + WAIT_LIMIT_S;
            while ((rc = io_write(agent, s, chunk, sizeof chunk)) ==
                       GR_EBACKPRESSURE &&
                   test_now() < end) {
                (void)recv(fd, sink, sizeof sink, MSG_DONTWAIT);
                sleep_ms(1);
            }
            CHECK_EQ(rc, GR_OK);
            /* Read to the end, and the queue empties. */
            while ((qa = io_do(agent, &q)).rc == GR_OK && qa.queued > 0 &&
                   test_now() < end)
                (void)recv(fd, sink, sizeof sink, MSG_DONTWAIT);
            CHECK_EQ(qa.rc, GR_OK);
            CHECK_EQ(qa.queued, 0);
        } else {
            CHECK(io_expect(GR_IO_ERROR, &ev));
            CHECK_EQ(ev.code, GR_EBACKPRESSURE);
            CHECK(ev.unsent > 0 && ev.unsent <= 64 * 1024);
            CHECK_EQ(io_write(agent, s, chunk, sizeof chunk), GR_ECLOSED);
            CHECK_EQ(io_do(agent, &q).rc, GR_ECLOSED);
            /* Exactly what was not reported unsent reaches the client. */
            uint64_t accepted = (uint64_t)(writes - 1) * sizeof chunk, got = 0;
            char sink[65536];
            ssize_t k;
            while ((k = recv(fd, sink, sizeof sink, 0)) > 0)
                got += (uint64_t)k;
            CHECK_EQ(k, 0);
            CHECK_EQ(got + ev.unsent, accepted);
        }
        close(fd);
    }
    CHECK_EQ(io_close(), GR_OK);
}

/* The descriptor in this process at the other end of fd's connection:
 * the runtime's end of a connection the test made or accepted (its peer
 * is fd's address and its address fd's peer: an accepted socket's own
 * address is its listener's, shared by all); -1 if none. */
static int runtime_end_of(int fd)
{
    struct sockaddr_storage me, you, a, b;
    socklen_t mlen = sizeof me, ylen = sizeof you;
    if (getsockname(fd, (struct sockaddr *)&me, &mlen) != 0 ||
        getpeername(fd, (struct sockaddr *)&you, &ylen) != 0)
        return -1;
    for (int cand = 3; cand < 4096; cand++) {
        socklen_t alen = sizeof a, blen = sizeof b;
        if (cand != fd &&
            getpeername(cand, (struct sockaddr *)&a, &alen) == 0 &&
            getsockname(cand, (struct sockaddr *)&b, &blen) == 0 &&
            alen == mlen && memcmp(&a, &me, mlen) == 0 && blen == ylen &&
            memcmp(&b, &you, ylen) == 0)
            return cand;
    }
    return -1;
}

/* Reads the kernel buffer option name of fd; -1 on failure. */
static int kernel_buffer(int fd, int name)
{
    int v = -1;
    socklen_t len = sizeof v;
    return getsockopt(fd, SOL_SOCKET, name, &v, &len) == 0 ? v : -1;
}

/* sndbuf and rcvbuf reach the kernel on accepted connections (through
 * their listener) and on connects; Linux stores twice the value. */
static void kernel_buffers_follow_opts(void)
{
    CHECK(io_open());
    gr_ref agent = io_agent_spawn();
    gr_io_opts o = {.sndbuf = 6000, .rcvbuf = 5000};
    io_conn cn;
    CHECK(io_conn_open(agent, &o, &cn));
    int mine = runtime_end_of(cn.fd);
    CHECK(mine >= 0);
    CHECK_EQ(kernel_buffer(mine, SO_SNDBUF), 12000);
    CHECK_EQ(kernel_buffer(mine, SO_RCVBUF), 10000);
    close(cn.fd);

    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t slen = sizeof sa;
    CHECK(bind(l, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(l, 4) == 0);
    CHECK(getsockname(l, (struct sockaddr *)&sa, &slen) == 0);
    io_cmd c = {.op = OP_CONNECT, .opts = {.sndbuf = 7000, .rcvbuf = 9000}};
    snprintf(c.addr, sizeof c.addr, "127.0.0.1:%u", ntohs(sa.sin_port));
    CHECK_EQ(io_do(agent, &c).rc, GR_OK);
    gr_io_event ev;
    CHECK(io_expect(GR_IO_CONNECTED, &ev));
    int peer = accept(l, NULL, NULL);
    CHECK(peer >= 0);
    mine = runtime_end_of(peer);
    CHECK(mine >= 0);
    CHECK_EQ(kernel_buffer(mine, SO_SNDBUF), 14000);
    CHECK_EQ(kernel_buffer(mine, SO_RCVBUF), 18000);
    close(peer);
    /* Any size is taken: the kernel caps it (at wmem_max). */
    io_cmd big = {.op = OP_CONNECT, .opts = {.sndbuf = 0xffffffff}};
    snprintf(big.addr, sizeof big.addr, "127.0.0.1:%u", ntohs(sa.sin_port));
    CHECK_EQ(io_do(agent, &big).rc, GR_OK);
    CHECK(io_expect(GR_IO_CONNECTED, &ev));
    peer = accept(l, NULL, NULL);
    CHECK(peer >= 0);
    mine = runtime_end_of(peer);
    CHECK(mine >= 0 && kernel_buffer(mine, SO_SNDBUF) > 14000);
    close(peer);
    close(l);
    CHECK_EQ(io_close(), GR_OK);
}

/* Connects: success, refusal, a Unix socket with its mode bits, and the
 * calls that must fail at once with a precise code. */
static void connect_outcomes_and_bad_arguments(void)
{
    CHECK(io_open());
    gr_ref server = io_agent_spawn();
    CHECK_EQ(io_simple(server, OP_ECHO, GR_SOCKET_NONE, 1), GR_OK);
    io_ans l = io_listen(server, "127.0.0.1:0", NULL);
    CHECK_EQ(l.rc, GR_OK);
    gr_ref client = io_agent_spawn();
    io_cmd c = {.op = OP_CONNECT};
    snprintf(c.addr, sizeof c.addr, "localhost:%u", l.port);
    io_ans cs = io_do(client, &c);
    CHECK_EQ(cs.rc, GR_OK);
    gr_io_event ev;
    /* The server's ACCEPTED and the client's CONNECTED, in either order. */
    CHECK(io_next(&ev, NULL, 0));
    gr_io_kind first = ev.kind;
    CHECK(io_next(&ev, NULL, 0));
    CHECK((first == GR_IO_ACCEPTED && ev.kind == GR_IO_CONNECTED) ||
          (first == GR_IO_CONNECTED && ev.kind == GR_IO_ACCEPTED));
    CHECK_EQ(io_write(client, cs.s, "ping", 4), GR_OK);
    CHECK_EQ(io_simple(client, OP_ACTIVATE, cs.s, 1), GR_OK);
    /* The server's data, then the client's echo. */
    char buf[8];
    for (int i = 0; i < 2; i++) {
        CHECK(io_next(&ev, buf, sizeof buf));
        CHECK(ev.kind == GR_IO_DATA && ev.len == 4 &&
              memcmp(buf, "ping", 4) == 0);
    }

    /* A closed port: refused, as a message. */
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t slen = sizeof sa;
    CHECK(bind(probe, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(getsockname(probe, (struct sockaddr *)&sa, &slen) == 0);
    snprintf(c.addr, sizeof c.addr, "127.0.0.1:%u", ntohs(sa.sin_port));
    close(probe);
    io_ans refused = io_do(client, &c);
    CHECK_EQ(refused.rc, GR_OK);
    CHECK(io_expect(GR_IO_ERROR, &ev));
    CHECK_EQ(ev.code, GR_ECONNREFUSED);
    CHECK(strncmp(ev.text, "ECONNREFUSED", 12) == 0);
    CHECK_EQ(ev.socket.id, refused.s.id);
    /* After its error a socket is closed: calls about it say so. */
    CHECK_EQ(io_write(client, refused.s, "x", 1), GR_ECLOSED);

    /* A Unix socket: mode bits, connect, and a missing path refused. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/grove-test-io-%d.sock", (int)getpid());
    char addr[80];
    snprintf(addr, sizeof addr, "unix:%s", path);
    gr_io_opts uo = {.mode = 0640};
    /* A stale socket file (its listener gone without removing it) is
     * replaced. */
    int stale = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
    CHECK(bind(stale, (struct sockaddr *)&un, sizeof un) == 0);
    close(stale);
    CHECK_EQ(io_listen(server, addr, &uo).rc, GR_OK);
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    CHECK_EQ(st.st_mode & 0777, 0640);
    /* A live one is not, and is not disturbed: no phantom client. */
    CHECK_EQ(io_listen(client, addr, NULL).rc, GR_EADDRINUSE);
    gr_msg *quiet = NULL;
    CHECK_EQ(gr_inbox_recv(io.inbox, &quiet, 50), GR_ETIMEDOUT);
    snprintf(c.addr, sizeof c.addr, "%s", addr);
    CHECK_EQ(io_do(client, &c).rc, GR_OK);
    CHECK(io_next(&ev, NULL, 0));
    CHECK(io_next(&ev, NULL, 0));
    snprintf(c.addr, sizeof c.addr, "unix:%s.missing", path);
    CHECK_EQ(io_do(client, &c).rc, GR_OK);
    CHECK(io_expect(GR_IO_ERROR, &ev));
    CHECK(strncmp(ev.text, "ENOENT", 6) == 0);

    /* Refused at once, with a precise code. */
    static const char *const bad[] = {
        "127.0.0.1",       "127.0.0.1:", "1.2.3:80", "host:80",     "[::1:80",
        "127.0.0.1:65536", "::1:80",     "unix:",    "127.0.0.1:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(io_listen(server, bad[i], NULL).rc, GR_EINVAL);
    char longpath[200] = "unix:/tmp/";
    memset(longpath + 10, 'p', 150);
    CHECK_EQ(io_listen(server, longpath, NULL).rc, GR_ENAMETOOLONG);
    snprintf(c.addr, sizeof c.addr, "127.0.0.1:%u", l.port);
    c.op = OP_LISTEN;
    CHECK_EQ(io_do(server, &c).rc, GR_EADDRINUSE);
    gr_io_opts bad_opts = {.framing = (gr_io_framing)7};
    CHECK_EQ(io_listen(server, "127.0.0.1:0", &bad_opts).rc, GR_EINVAL);
    /* Someone else's socket, a closed one, one that never was. */
    CHECK_EQ(io_write(client, l.s, "x", 1), GR_ENOTOWNER);
    CHECK_EQ(io_simple(client, OP_CLOSE, cs.s, 0), GR_OK);
    CHECK_EQ(io_write(client, cs.s, "x", 1), GR_ECLOSED);
    CHECK_EQ(io_simple(client, OP_ACTIVATE, (gr_socket){999999}, 1),
             GR_ECLOSED);
    CHECK_EQ(io_write(server, l.s, "x", 1), GR_EINVAL); /* A listener. */
    CHECK_EQ(io_close(), GR_OK);
    CHECK(stat(path, &st) != 0); /* The listener's file is gone. */
}

/* A connect nobody answers (a listener whose backlog is full drops new
 * SYNs) ends with GR_ETIMEDOUT after connect_timeout, as a message. */
static void connect_times_out(void)
{
    CHECK(io_open());
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t slen = sizeof sa;
    CHECK(bind(l, (struct sockaddr *)&sa, sizeof sa) == 0 &&
          listen(l, 0) == 0 &&
          getsockname(l, (struct sockaddr *)&sa, &slen) == 0);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] =
            socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        (void)connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
    }
    /* The first filler connected (writable) fills the backlog of 0; the
     * others, and the connect below, have their SYNs dropped. */
    struct pollfd pf = {fill[0], POLLOUT, 0};
    CHECK(poll(&pf, 1, WAIT_MS) == 1);
    gr_ref client = io_agent_spawn();
    io_cmd c = {.op = OP_CONNECT, .opts = {.connect_timeout = 200}};
    snprintf(c.addr, sizeof c.addr, "127.0.0.1:%u", ntohs(sa.sin_port));
    double t0 = test_now();
    CHECK_EQ(io_do(client, &c).rc, GR_OK);
    gr_io_event ev;
    CHECK(io_expect(GR_IO_ERROR, &ev));
    CHECK_EQ(ev.code, GR_ETIMEDOUT);
    CHECK(test_now() - t0 >= 0.19);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(l);
    CHECK_EQ(io_close(), GR_OK);
}

/* 1000 connections open at once, each echoing numbered lines: every line
 * comes back on its own connection, in order. */
static void thousand_connections_in_order(void)
{
    CHECK(io_open());
    gr_ref agent;
    uint16_t port = echo_server(GR_IO_LINE, &agent);
    CHECK(port != 0);
    enum { N = 1000, ROUNDS = 5 };
    static int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = client_tcp(port);
        CHECK(fds[i] >= 0);
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < N; i++) {
            char line[32];
            int n = snprintf(line, sizeof line, "%d.%d\n", i, r);
            CHECK(client_send(fds[i], line, (size_t)n));
        }
        for (int i = 0; i < N; i++) {
            char want[32], back[32];
            int n = snprintf(want, sizeof want, "%d.%d", i, r);
            CHECK(client_recv(fds[i], back, (size_t)n));
            CHECK(memcmp(back, want, (size_t)n) == 0);
        }
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
    /* Every connection was accepted, echoed ROUNDS lines and closed. */
    int accepted = 0, data = 0, closed = 0;
    gr_io_event ev;
    while ((accepted < N || data < N * ROUNDS || closed < N) &&
           io_next(&ev, NULL, 0)) {
        accepted += ev.kind == GR_IO_ACCEPTED;
        data += ev.kind == GR_IO_DATA;
        closed += ev.kind == GR_IO_CLOSED;
    }
    CHECK_EQ(accepted, N);
    CHECK_EQ(data, N * ROUNDS);
    CHECK_EQ(closed, N);
    CHECK_EQ(io_close(), GR_OK);
}

/* Connect and close 10 000 times: the process's descriptors and the
 * runtime's open sockets are back where they started. */
static void connect_close_cycles_leak_nothing(void)
{
    CHECK(io_open());
    gr_ref agent;
    uint16_t port = echo_server(GR_IO_RAW, &agent);
    CHECK(port != 0);
    int base = open_fds();
    int cycles = (int)scaled(10000, 1000);
    for (int i = 0; i < cycles; i++) {
        int fd = client_tcp(port);
        CHECK(fd >= 0);
        close(fd);
        gr_io_event ev;
        CHECK(io_expect(GR_IO_ACCEPTED, &ev));
        CHECK(io_expect(GR_IO_CLOSED, &ev));
    }
    double end = test_now() + WAIT_LIMIT_S;
    while ((stats_of(io.sys).sockets_open != 1 || open_fds() != base) &&
           test_now() < end)
        sleep_ms(1);
    CHECK_EQ(stats_of(io.sys).sockets_open, 1); /* The listener. */
    CHECK_EQ(open_fds(), base);
    CHECK_EQ(io_close(), GR_OK);
}

/* A peer that resets mid-frame: the owner learns it as an error. */
static void peer_reset_mid_frame(void)
{
    CHECK(io_open());
    gr_ref agent = io_agent_spawn();
    gr_io_opts o = {.framing = GR_IO_LEN4};
    io_conn cn;
    CHECK(io_conn_open(agent, &o, &cn));
    int fd = cn.fd;
    gr_io_event ev = {.socket = cn.s};
    CHECK_EQ(io_simple(agent, OP_ACTIVATE, ev.socket, GR_IO_ALWAYS), GR_OK);
    CHECK(client_send(fd, "\0\0\0\x08half", 8));
    /* Unread data in our receive queue makes close() send a reset. */
    CHECK_EQ(io_write(agent, ev.socket, "reply", 5), GR_OK);
    sleep_ms(20); /* Not load-bearing: the reply is likelier queued. */
    struct linger lg = {1, 0};
    CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    close(fd);
    CHECK(io_next(&ev, NULL, 0));
    CHECK(ev.kind == GR_IO_ERROR || ev.kind == GR_IO_CLOSED);
    if (ev.kind == GR_IO_ERROR)
        CHECK_EQ(ev.code, GR_ECONNRESET);
    CHECK_EQ(io_close(), GR_OK);
}

/* Shut down with listeners, connections and queued bytes: every socket
 * closes, no descriptor is left, nothing leaks (the sanitizer runs say). */
static void shutdown_with_sockets_open(void)
{
    int base = open_fds();
    CHECK(io_open());
    gr_ref agent;
    uint16_t port = echo_server(GR_IO_LINE, &agent);
    CHECK(port != 0);
    int fds[8];
    gr_io_event ev;
    for (int i = 0; i < 8; i++) {
        fds[i] = client_tcp(port);
        CHECK(fds[i] >= 0);
        CHECK(io_expect(GR_IO_ACCEPTED, &ev));
    }
    /* The last one gets a goodbye from the owner's terminate. */
    CHECK_EQ(io_simple(agent, OP_BYE, ev.socket, 0), GR_OK);
    io_cmd c = {.op = OP_CONNECT};
    snprintf(c.addr, sizeof c.addr, "127.0.0.1:%u", port);
    CHECK_EQ(io_do(agent, &c).rc, GR_OK);
    CHECK_EQ(io_close(), GR_OK);
    char bye[4];
    CHECK(client_recv(fds[7], bye, 4) && memcmp(bye, "bye\n", 4) == 0);
    for (int i = 0; i < 8; i++) {
        CHECK(client_eof(fds[i]));
        close(fds[i]);
    }
    CHECK_EQ(open_fds(), base);
}

/* A listener at its cap: with GR_IO_FULL_CLOSE the extra client is
 * accepted and closed at once; with GR_IO_FULL_PAUSE it waits in the
 * backlog until a connection closes, then is accepted. */
static void listener_cap(void)
{
    CHECK(io_open());
    for (int policy = GR_IO_FULL_CLOSE; policy <= GR_IO_FULL_PAUSE; policy++) {
        gr_ref agent = io_agent_spawn();
        gr_io_opts o = {.max_connections = 2,
                        .when_full = (gr_io_full_policy)policy};
        io_ans l = io_listen(agent, "127.0.0.1:0", &o);
        CHECK_EQ(l.rc, GR_OK);
        int a = client_tcp(l.port), b = client_tcp(l.port);
        CHECK(a >= 0 && b >= 0);
        gr_io_event ev;
        CHECK(io_expect(GR_IO_ACCEPTED, &ev));
        gr_socket first = ev.socket;
        CHECK(io_expect(GR_IO_ACCEPTED, &ev));
        int c = client_tcp(l.port);
        CHECK(c >= 0);
        if (policy == GR_IO_FULL_CLOSE) {
            CHECK(client_eof(c));
            close(c);
        }
        gr_msg *m = NULL;
        CHECK_EQ(gr_inbox_recv(io.inbox, &m, 50), GR_ETIMEDOUT);
        CHECK_EQ(io_simple(agent, OP_CLOSE, first, 0), GR_OK);
        CHECK(client_eof(a));
        if (policy == GR_IO_FULL_PAUSE) {
            CHECK(io_expect(GR_IO_ACCEPTED, NULL)); /* c, at last. */
            close(c);
        } else {
            int d = client_tcp(l.port); /* Room again. */
            CHECK(d >= 0);
            CHECK(io_expect(GR_IO_ACCEPTED, NULL));
            close(d);
        }
        close(a);
        close(b);
        CHECK_EQ(io_simple(agent, OP_CLOSE, l.s, 0), GR_OK);
    }
    CHECK_EQ(io_close(), GR_OK);
}

/* A passive listener accepts nothing: the connection waits in the
 * kernel's backlog and is accepted once the owner activates it again. */
static void passive_listener_leaves_backlog(void)
{
    CHECK(io_open());
    gr_ref agent = io_agent_spawn();
    io_ans l = io_listen(agent, "127.0.0.1:0", NULL);
    CHECK_EQ(l.rc, GR_OK);
    CHECK_EQ(io_simple(agent, OP_ACTIVATE, l.s, 0), GR_OK);
    int fd = client_tcp(l.port); /* The kernel completes the handshake. */
    CHECK(fd >= 0);
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(io.inbox, &m, 50), GR_ETIMEDOUT);
    CHECK_EQ(io_simple(agent, OP_ACTIVATE, l.s, 1), GR_OK);
    gr_io_event ev;
    CHECK(io_expect(GR_IO_ACCEPTED, &ev));
    CHECK_EQ(ev.listener.id, l.s.id);
    int fd2 = client_tcp(l.port); /* The allowance is spent again. */
    CHECK(fd2 >= 0);
    CHECK_EQ(gr_inbox_recv(io.inbox, &m, 50), GR_ETIMEDOUT);
    close(fd);
    close(fd2);
    CHECK_EQ(io_close(), GR_OK);
}

/* Half closes both ways: the client's end of file reaches the owner as
 * CLOSED while the owner can still answer; the owner's shutdown_write
 * reaches the client as end of file while the client can still send. */
static void half_close(void)
{
    CHECK(io_open());
    gr_ref agent = io_agent_spawn();
    io_conn cn;
    CHECK(io_conn_open(agent, NULL, &cn));
    int fd = cn.fd;
    gr_socket s = cn.s;
    gr_io_event ev;
    CHECK_EQ(io_simple(agent, OP_ACTIVATE, s, GR_IO_ALWAYS), GR_OK);
    /* The server shuts its side first; the client still sends. */
    CHECK_EQ(io_write(agent, s, "bye", 3), GR_OK);
    CHECK_EQ(io_simple(agent, OP_SHUT_WR, s, 0), GR_OK);
    CHECK_EQ(io_write(agent, s, "x", 1), GR_ECLOSED);
    char buf[8];
    CHECK(client_recv(fd, buf, 3) && memcmp(buf, "bye", 3) == 0);
    CHECK(client_eof(fd));
    CHECK(client_send(fd, "abc", 3));
    CHECK(io_next(&ev, buf, sizeof buf));
    CHECK(ev.kind == GR_IO_DATA && ev.len == 3 && memcmp(buf, "abc", 3) == 0);
    CHECK(shutdown(fd, SHUT_WR) == 0);
    CHECK(io_expect(GR_IO_CLOSED, NULL));
    CHECK_EQ(io_simple(agent, OP_CLOSE, s, 0), GR_OK);
    close(fd);
    CHECK_EQ(io_close(), GR_OK);
}

/* IPv6 on loopback, where the machine has it. */
static void ipv6_loopback(void)
{
    CHECK(io_open());
    gr_ref server = io_agent_spawn();
    io_ans l = io_listen(server, "[::1]:0", NULL);
    if (l.rc == GR_ESYS) { /* No IPv6 here: nothing to test. */
        printf("  (no IPv6 loopback: skipped)\n");
        CHECK_EQ(io_close(), GR_OK);
        return;
    }
    CHECK_EQ(l.rc, GR_OK);
    gr_ref client = io_agent_spawn();
    io_cmd c = {.op = OP_CONNECT};
    snprintf(c.addr, sizeof c.addr, "[::1]:%u", l.port);
    CHECK_EQ(io_do(client, &c).rc, GR_OK);
    gr_io_event ev;
    bool accepted = false, connected = false;
    for (int i = 0; i < 2 && io_next(&ev, NULL, 0); i++) {
        accepted = accepted || ev.kind == GR_IO_ACCEPTED;
        connected = connected || ev.kind == GR_IO_CONNECTED;
        CHECK(strncmp(ev.text, "[::1]:", 6) == 0);
    }
    CHECK(accepted && connected);
    CHECK_EQ(io_close(), GR_OK);
}

/* Fills fd's peer's receive buffer and our send buffer: writes through
 * agent until the socket's own queue holds something (the kernel's
 * buffers are full), at most `limit` writes; returns the last code. */
static int fill_queue(gr_ref agent, gr_socket s, int limit)
{
    static char chunk[1000];
    memset(chunk, 'q', sizeof chunk);
    int rc = GR_OK;
    for (int i = 0; i < limit && rc == GR_OK; i++)
        rc = io_write(agent, s, chunk, sizeof chunk);
    return rc;
}

/* When the peer resets while bytes wait in the socket's queue, the I/O
 * thread's write fails and the owner is told, with the bytes unsent. */
static void reset_with_queue(void)
{
    CHECK(io_open());
    gr_ref agent = io_agent_spawn();
    gr_io_opts o = {.send_buffer = 32 * 1024};
    io_conn cn;
    CHECK(io_conn_open(agent, &o, &cn));
    CHECK_EQ(fill_queue(agent, cn.s, 100000), GR_EBACKPRESSURE);
    struct linger lg = {1, 0};
    CHECK(setsockopt(cn.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    close(cn.fd); /* Unread data and linger 0: a reset. */
    gr_io_event ev;
    CHECK(io_expect(GR_IO_ERROR, &ev));
    CHECK(ev.code == GR_ECONNRESET || ev.code == GR_ESYS);
    CHECK(ev.unsent > 0 && ev.unsent <= 32 * 1024);
    CHECK_EQ(io_write(agent, cn.s, "x", 1), GR_ECLOSED);
    CHECK_EQ(io_close(), GR_OK);
}

/* A close with bytes queued for a peer that never reads: the socket
 * lingers (at most 5 s) and then closes, with the bytes counted unsent;
 * nothing stays open. */
static void close_lingers_then_gives_up(void)
{
    CHECK(io_open());
    gr_ref agent = io_agent_spawn();
    gr_io_opts o = {.send_buffer = 32 * 1024};
    io_conn cn;
    CHECK(io_conn_open(agent, &o, &cn));
    CHECK_EQ(fill_queue(agent, cn.s, 100000), GR_EBACKPRESSURE);
    CHECK_EQ(io_simple(agent, OP_CLOSE, cn.s, 0), GR_OK);
    CHECK_EQ(stats_of(io.sys).sockets_open, 2); /* Still lingering. */
    double end = test_now() + WAIT_LIMIT_S;
    while (stats_of(io.sys).sockets_open != 1 && test_now() < end)
        sleep_ms(10);
    CHECK_EQ(stats_of(io.sys).sockets_open, 1); /* The listener. */
    close(cn.fd);
    CHECK_EQ(io_close(), GR_OK);
}

/* A listener out of descriptors (EMFILE) logs, backs off and accepts
 * again once one is free; nothing is lost meanwhile. */
static void accept_out_of_descriptors(void)
{
    CHECK(io_open());
    gr_ref agent = io_agent_spawn();
    io_ans l = io_listen(agent, "127.0.0.1:0", NULL);
    CHECK_EQ(l.rc, GR_OK);
    int c[2];
    for (int i = 0; i < 2; i++)
        c[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct rlimit old, low;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    /* Room for exactly one more descriptor: the first accept. */
    int fresh = dup(0);
    CHECK(fresh >= 0);
    low = old;
    low.rlim_cur = (rlim_t)fresh + 1;
    close(fresh);
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(l.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 2; i++)
        CHECK(connect(c[i], (struct sockaddr *)&sa, sizeof sa) == 0);
    gr_io_event ev;
    CHECK(io_expect(GR_IO_ACCEPTED, &ev)); /* The first fits. */
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(io.inbox, &m, 150), GR_ETIMEDOUT);
    CHECK_EQ(io_simple(agent, OP_CLOSE, ev.socket, 0), GR_OK);
    CHECK(io_expect(GR_IO_ACCEPTED, NULL)); /* Once one is free. */
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    for (int i = 0; i < 2; i++)
        close(c[i]);
    CHECK_EQ(io_close(), GR_OK);
}

/* Calls refused at once for what they ask: a frame or write too big, a
 * half close of a listener, a give to another node, a port of a Unix
 * socket. */
static void more_bad_calls(void)
{
    CHECK(io_open());
    gr_ref agent = io_agent_spawn();
    gr_io_opts o = {.framing = GR_IO_LEN4, .max_frame = 16, .send_buffer = 32};
    io_conn cn;
    CHECK(io_conn_open(agent, &o, &cn));
    char big[64] = {0};
    CHECK_EQ(io_write(agent, cn.s, big, 17), GR_EMSGSIZE); /* > max_frame */
    gr_io_opts raw = {.send_buffer = 32};
    gr_ref other = io_agent_spawn();
    io_conn cr;
    CHECK(io_conn_open(other, &raw, &cr));
    CHECK_EQ(io_write(other, cr.s, big, 33), GR_EMSGSIZE); /* > buffer */
    CHECK_EQ(io_simple(agent, OP_SHUT_WR, cn.listener.s, 0), GR_EINVAL);
    io_cmd give = {.op = OP_GIVE, .s = cn.s, .ref = other};
    give.ref.node = 12345; /* A node that is not this one. */
    CHECK_EQ(io_do(agent, &give).rc, GR_EINVAL);
    char path[64], addr[80];
    snprintf(path, sizeof path, "/tmp/grove-test-io-port-%d.sock",
             (int)getpid());
    snprintf(addr, sizeof addr, "unix:%s", path);
    io_ans u = io_listen(agent, addr, NULL);
    CHECK_EQ(u.rc, GR_OK);
    CHECK_EQ(io_simple(agent, OP_PORT, u.s, 0), GR_EINVAL);
    close(cn.fd);
    close(cr.fd);
    CHECK_EQ(io_close(), GR_OK);
}

/* Counts events by kind for socket_events. */
static atomic_int seen_events[GR_EV_KIND_COUNT];

static void count_event(void *arg, const gr_event *ev)
{
    (void)arg;
    if ((unsigned)ev->kind < GR_EV_KIND_COUNT)
        atomic_fetch_add(&seen_events[ev->kind], 1);
}

/* Sockets show up in the event log: listening, accepted, closed. */
static void socket_events(void)
{
    gr_config cfg = {.workers = 2,
                     .no_signals = 1,
                     .log_level = GR_LOG_DEBUG,
                     .log_level_set = 1,
                     .event_fn = count_event};
    CHECK(io_open_with(&cfg));
    gr_ref agent = io_agent_spawn();
    io_conn cn;
    CHECK(io_conn_open(agent, NULL, &cn));
    int fd = cn.fd;
    CHECK_EQ(io_simple(agent, OP_CLOSE, cn.s, 0), GR_OK);
    CHECK(client_eof(fd));
    close(fd);
    CHECK_EQ(atomic_load(&seen_events[GR_EV_SOCKET_LISTENING]), 1);
    CHECK_EQ(atomic_load(&seen_events[GR_EV_SOCKET_ACCEPTED]), 1);
    CHECK_EQ(atomic_load(&seen_events[GR_EV_SOCKET_CLOSED]), 1);
    char line[512];
    gr_event e = {.kind = GR_EV_SOCKET_ACCEPTED,
                  .socket = 4,
                  .listener = 1,
                  .address = "127.0.0.1:5555"};
    gr_event_format_text(&e, line, sizeof line);
    CHECK(strstr(line, "socket 4 accepted from 127.0.0.1:5555 on socket 1") !=
          NULL);
    gr_event_format_json(&e, line, sizeof line);
    CHECK(strstr(line, "\"socket\":4") != NULL &&
          strstr(line, "\"address\":\"127.0.0.1:5555\"") != NULL);
    CHECK_EQ(io_close(), GR_OK);
}

TEST_MAIN(TEST_CASE(echo_lines_in_order), TEST_CASE(framing_split_everywhere),
          TEST_CASE(over_long_is_an_error), TEST_CASE(handover_and_owner_crash),
          TEST_CASE(passive_until_activated),
          TEST_CASE(slow_reader_backpressure), TEST_CASE(flood_stays_bounded),
          TEST_CASE(kernel_buffers_follow_opts),
          TEST_CASE(connect_outcomes_and_bad_arguments),
          TEST_CASE(connect_times_out),
          TEST_CASE(thousand_connections_in_order),
          TEST_CASE(connect_close_cycles_leak_nothing),
          TEST_CASE(peer_reset_mid_frame),
          TEST_CASE(shutdown_with_sockets_open), TEST_CASE(listener_cap),
          TEST_CASE(half_close), TEST_CASE(passive_listener_leaves_backlog),
          TEST_CASE(ipv6_loopback), TEST_CASE(socket_events),
          TEST_CASE(reset_with_queue), TEST_CASE(close_lingers_then_gives_up),
          TEST_CASE(accept_out_of_descriptors), TEST_CASE(more_bad_calls))
