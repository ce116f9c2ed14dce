/*
 * The chat server end to end: the real program (its path is argv[1]) on
 * port 0, driven by real TCP clients written here with plain sockets.
 * Every wait is for a line or an end of file, with a time limit.
 */
#define _GNU_SOURCE /* kill, strcasestr */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing.h"

/* Longest wait for one line, in ms. */
#define LINE_WAIT_MS 5000

static const char *chat_bin;

/* ---- the server --------------------------------------------------------- */

typedef struct server {
    pid_t pid;
    int out; /* Its stdout. */
    uint16_t port;
    char log[128]; /* Its GROVE_LOG file. */
} server;

/* Starts the server with extra flags (NULL-terminated); false on failure. */
static bool server_start(server *sv, const char *const *extra)
{
    int p[2];
    if (pipe(p) != 0)
        return false;
    snprintf(sv->log, sizeof sv->log, "/tmp/grove-chat-test-%d.jsonl",
             (int)getpid());
    unlink(sv->log);
    sv->pid = fork();
    if (sv->pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        const char *argv[16] = {chat_bin, "--listen", "127.0.0.1:0"};
        int n = 3;
        for (int i = 0; extra != NULL && extra[i] != NULL && n < 15; i++)
            argv[n++] = extra[i];
        setenv("GROVE_LOG", sv->log, 1);
        setenv("CHAT_DEBUG", "1", 1);
        execv(chat_bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    sv->out = p[0];
    char buf[256];
    size_t have = 0;
    while (have < sizeof buf - 1) {
        struct pollfd pf = {p[0], POLLIN, 0};
        if (poll(&pf, 1, LINE_WAIT_MS) <= 0)
            return false;
        ssize_t k = read(p[0], buf + have, sizeof buf - 1 - have);
        if (k <= 0)
            return false;
        have += (size_t)k;
        buf[have] = '\0';
        char *at = strstr(buf, "(port ");
        if (at != NULL && strchr(at, ')') != NULL) {
            sv->port = (uint16_t)atoi(at + 6);
            return sv->port != 0;
        }
    }
    return false;
}

/* SIGTERMs the server and returns its exit status (-1: did not exit). */
static int server_stop(server *sv)
{
    kill(sv->pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        int st;
        if (waitpid(sv->pid, &st, WNOHANG) == sv->pid) {
            close(sv->out);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    kill(sv->pid, SIGKILL);
    waitpid(sv->pid, NULL, 0);
    return -1;
}

/* The pid of the rooms node: the server's child process (its only one),
 * other than `after` (0: any); 0 when none shows up in time. */
static int rooms_pid(const server *sv, int after)
{
    for (int tries = 0; tries < 500; tries++) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        int found = 0;
        while (d != NULL && (e = readdir(d)) != NULL && found == 0) {
            char path[300], buf[512];
            snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
            FILE *f = fopen(path, "r");
            if (f == NULL)
                continue;
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = '\0';
            char *rp = strrchr(buf, ')');
            int ppid = 0;
            if (rp != NULL && sscanf(rp + 1, " %*c %d", &ppid) == 1 &&
                ppid == sv->pid && atoi(e->d_name) != after)
                found = atoi(e->d_name);
        }
        if (d != NULL)
            closedir(d);
        if (found != 0)
            return found;
        usleep(10000);
    }
    return 0;
}

/* ---- clients ------------------------------------------------------------ */

typedef struct client {
    int fd;
    char buf[8192];
    size_t have;
} client;

static bool client_open(client *c, uint16_t port)
{
    c->have = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return c->fd >= 0 && connect(c->fd, (struct sockaddr *)&sa, sizeof sa) == 0;
}

static bool send_line(client *c, const char *line)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "%s\n", line);
    return send(c->fd, buf, (size_t)n, MSG_NOSIGNAL) == n;
}

/* Reads the next line into out (without its LF); false on a time limit
 * of ms or end of file. */
static bool next_line_within(client *c, char *out, size_t size, int ms)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->have);
        if (nl != NULL) {
            size_t n = (size_t)(nl - c->buf);
            size_t k = n < size - 1 ? n : size - 1;
            memcpy(out, c->buf, k);
            out[k] = '\0';
            memmove(c->buf, nl + 1, c->have - n - 1);
            c->have -= n + 1;
            return true;
        }
        struct pollfd pf = {c->fd, POLLIN, 0};
        if (poll(&pf, 1, ms) <= 0)
            return false;
        ssize_t k = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
        if (k <= 0)
            return false;
        c->have += (size_t)k;
    }
}

static bool next_line(client *c, char *out, size_t size)
{
    return next_line_within(c, out, size, LINE_WAIT_MS);
}

/* Waits for a line equal to want, skipping others (at most 100). */
static bool expect(client *c, const char *want)
{
    char line[1024];
    for (int i = 0; i < 100; i++) {
        if (!next_line(c, line, sizeof line)) {
            fprintf(stderr, "  waited for \"%s\": nothing more\n", want);
            return false;
        }
        if (strcmp(line, want) == 0)
            return true;
    }
    return false;
}

/* The next line, which must be want. */
static bool expect_next(client *c, const char *want)
{
    char line[1024];
    if (!next_line(c, line, sizeof line))
        return false;
    if (strcmp(line, want) != 0)
        fprintf(stderr, "  expected \"%s\", got \"%s\"\n", want, line);
    return strcmp(line, want) == 0;
}

/* Whether the server closed c (end of file within LINE_WAIT_MS), reading
 * past any lines before it. */
static bool closed_by_server(client *c)
{
    char line[1024];
    while (next_line(c, line, sizeof line))
        ;
    char x;
    return recv(c->fd, &x, 1, MSG_DONTWAIT) == 0;
}

/* A client named nick, in room (NULL: none). */
static bool login(client *c, uint16_t port, const char *nick, const char *room)
{
    char line[64];
    if (!client_open(c, port))
        return false;
    snprintf(line, sizeof line, "NICK %s", nick);
    if (!send_line(c, line))
        return false;
    snprintf(line, sizeof line, "OK NICK %s", nick);
    if (!expect_next(c, line))
        return false;
    if (room == NULL)
        return true;
    snprintf(line, sizeof line, "JOIN %s", room);
    send_line(c, line);
    snprintf(line, sizeof line, "OK JOIN %s", room);
    return expect(c, line);
}

/* ---- cases -------------------------------------------------------------- */

/* Fan-out: every other member gets each message exactly once, the sender
 * an OK; a private message reaches its target and nobody else. */
static void fanout_and_privacy(void)
{
    server sv;
    CHECK(server_start(&sv, NULL));
    client a, b, c;
    CHECK(login(&a, sv.port, "alice", "#r"));
    CHECK(login(&b, sv.port, "bob", "#r"));
    CHECK(expect(&a, "JOIN #r bob"));
    CHECK(login(&c, sv.port, "carol", "#r"));
    CHECK(expect(&a, "JOIN #r carol"));
    CHECK(expect(&b, "JOIN #r carol"));
    send_line(&a, "MSG #r hello all");
    CHECK(expect_next(&a, "OK MSG #r"));
    CHECK(expect_next(&b, "MSG #r alice hello all"));
    CHECK(expect_next(&c, "MSG #r alice hello all"));
    send_line(&a, "PRIV bob a secret");
    CHECK(expect_next(&a, "OK PRIV bob"));
    CHECK(expect_next(&b, "PRIV alice a secret"));
    send_line(&c, "WHO #r"); /* carol's next line is this, not the PRIV */
    char line[256];
    CHECK(next_line(&c, line, sizeof line));
    CHECK(strncmp(line, "OK WHO #r", 9) == 0 && strstr(line, "alice") &&
          strstr(line, "bob") && strstr(line, "carol"));
    send_line(&b, "LIST");
    CHECK(expect_next(&b, "OK LIST #r"));
    send_line(&b, "PART #r");
    CHECK(expect_next(&b, "OK PART #r"));
    CHECK(expect_next(&a, "PART #r bob"));
    send_line(&c, "QUIT bye now");
    CHECK(expect(&c, "OK QUIT")); /* After bob's PART, which carol saw. */
    CHECK(closed_by_server(&c));
    CHECK(expect_next(&a, "QUIT carol bye now"));
    close(a.fd);
    close(b.fd);
    close(c.fd);
    CHECK_EQ(server_stop(&sv), 0);
}

/* Errors are answered and the connection goes on. */
static void errors_answered(void)
{
    server sv;
    CHECK(server_start(&sv, NULL));
    client a, b;
    CHECK(client_open(&a, sv.port));
    send_line(&a, "JOIN #r");
    CHECK(expect_next(&a, "ERR register NICK first"));
    send_line(&a, "NICK bad nick!");
    char line[1024];
    CHECK(next_line(&a, line, sizeof line) &&
          strncmp(line, "ERR badnick", 11) == 0);
    send_line(&a, "FROB");
    CHECK(next_line(&a, line, sizeof line) &&
          strncmp(line, "ERR unknown", 11) == 0);
    char big[700];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    send_line(&a, big);
    CHECK(next_line(&a, line, sizeof line) &&
          strncmp(line, "ERR toolong", 11) == 0);
    CHECK(send(a.fd, "\xff\xfe garbage\n", 11, MSG_NOSIGNAL) == 11);
    CHECK(next_line(&a, line, sizeof line) &&
          strncmp(line, "ERR badinput", 12) == 0);
    send_line(&a, "NICK alice"); /* Still alive. */
    CHECK(expect_next(&a, "OK NICK alice"));
    CHECK(client_open(&b, sv.port));
    send_line(&b, "NICK alice");
    CHECK(next_line(&b, line, sizeof line) &&
          strncmp(line, "ERR nickinuse", 13) == 0);
    send_line(&b, "PRIV nobody hi");
    CHECK(next_line(&b, line, sizeof line) &&
          strncmp(line, "ERR register", 12) == 0);
    send_line(&b, "NICK bob");
    CHECK(expect_next(&b, "OK NICK bob"));
    send_line(&b, "PRIV nobody hi");
    CHECK(next_line(&b, line, sizeof line) &&
          strncmp(line, "ERR nosuchnick", 14) == 0);
    send_line(&b, "MSG #nowhere hi");
    CHECK(next_line(&b, line, sizeof line) &&
          strncmp(line, "ERR nosuchroom", 14) == 0);
    /* Flood: the burst passes, then the rate limit answers. */
    bool slowed = false;
    for (int i = 0; i < 40 && !slowed; i++) {
        send_line(&b, "LIST");
        CHECK(next_line(&b, line, sizeof line));
        slowed = strncmp(line, "ERR slowdown", 12) == 0;
    }
    CHECK(slowed);
    close(a.fd);
    close(b.fd);
    CHECK_EQ(server_stop(&sv), 0);
}

/* A client that vanishes without QUIT frees its nick, and its rooms hear
 * that it left. */
static void vanished_client_frees_nick(void)
{
    server sv;
    CHECK(server_start(&sv, NULL));
    client a, b, c;
    CHECK(login(&a, sv.port, "alice", "#r"));
    CHECK(login(&b, sv.port, "bob", "#r"));
    close(a.fd);
    CHECK(expect(&b, "QUIT alice connection lost"));
    CHECK(client_open(&c, sv.port));
    bool ok = false;
    char line[256];
    for (int i = 0; i < 200 && !ok; i++) {
        send_line(&c, "NICK alice");
        CHECK(next_line(&c, line, sizeof line));
        ok = strcmp(line, "OK NICK alice") == 0;
        if (!ok)
            usleep(10000);
    }
    CHECK(ok);
    close(b.fd);
    close(c.fd);
    CHECK_EQ(server_stop(&sv), 0);
}

/* A session that crashes takes only its own client; the crash is in the
 * restart log; the others chat on. */
static void session_crash_isolated(void)
{
    server sv;
    CHECK(server_start(&sv, NULL));
    client a, b;
    CHECK(login(&a, sv.port, "alice", "#r"));
    CHECK(login(&b, sv.port, "bob", "#r"));
    send_line(&b, "CRASH");
    CHECK(closed_by_server(&b));
    CHECK(expect(&a, "QUIT bob connection lost"));
    send_line(&a, "MSG #r still here");
    CHECK(expect_next(&a, "OK MSG #r"));
    FILE *f = fopen(sv.log, "r");
    CHECK(f != NULL);
    char line[2048];
    bool logged = false;
    while (fgets(line, sizeof line, f) != NULL)
        logged = logged || (strstr(line, "child_crashed") != NULL &&
                            strstr(line, "CRASH asked by bob") != NULL);
    fclose(f);
    CHECK(logged);
    close(a.fd);
    CHECK_EQ(server_stop(&sv), 0);
}

/* kill -9 of the rooms node: its supervisor restarts it, every member is
 * told its room restarted, and the room works again. */
static void rooms_node_killed(void)
{
    server sv;
    CHECK(server_start(&sv, NULL));
    client a, b;
    CHECK(login(&a, sv.port, "alice", "#r"));
    CHECK(login(&b, sv.port, "bob", "#r"));
    CHECK(expect(&a, "JOIN #r bob"));
    int pid = rooms_pid(&sv, 0);
    CHECK(pid > 0);
    CHECK_EQ(kill(pid, SIGKILL), 0);
    CHECK(expect(&a, "NOTICE room #r restarted"));
    CHECK(expect(&b, "NOTICE room #r restarted"));
    CHECK(rooms_pid(&sv, pid) > 0); /* A new process. */
    send_line(&a, "MSG #r back again");
    CHECK(expect(&a, "OK MSG #r"));
    CHECK(expect(&b, "MSG #r alice back again"));
    close(a.fd);
    close(b.fd);
    CHECK_EQ(server_stop(&sv), 0);
}

/* SIGTERM: every client is told, then closed; the server exits 0. */
static void shutdown_tells_clients(void)
{
    server sv;
    CHECK(server_start(&sv, NULL));
    client a, b;
    CHECK(login(&a, sv.port, "alice", "#r"));
    CHECK(login(&b, sv.port, "bob", NULL));
    CHECK_EQ(server_stop(&sv), 0);
    CHECK(expect(&a, "NOTICE server shutting down"));
    CHECK(expect(&b, "NOTICE server shutting down"));
    CHECK(closed_by_server(&a));
    close(a.fd);
    close(b.fd);
}

/* Many clients in one room, each sending numbered messages: every client
 * gets every other client's messages, each sender's in order, once. */
static void many_clients_in_order(void)
{
    enum { N = 40, M = 15 };
    server sv;
    const char *const extra[] = {"--max-clients", "2000", NULL};
    CHECK(server_start(&sv, extra));
    static client cs[N];
    for (int i = 0; i < N; i++) {
        char nick[16];
        snprintf(nick, sizeof nick, "u%d", i);
        CHECK(login(&cs[i], sv.port, nick, "#big"));
    }
    for (int k = 0; k < M; k++)
        for (int i = 0; i < N; i++) {
            char line[64];
            snprintf(line, sizeof line, "MSG #big %d", k);
            CHECK(send_line(&cs[i], line));
        }
    /* Each client: from every other sender, 0..M-1 in order. */
    for (int i = 0; i < N; i++) {
        int next[N] = {0};
        int got = 0;
        char line[256];
        while (got < (N - 1) * M && next_line(&cs[i], line, sizeof line)) {
            int from, k;
            if (sscanf(line, "MSG #big u%d %d", &from, &k) != 2) {
                if (strncmp(line, "JOIN ", 5) != 0 &&
                    strncmp(line, "OK MSG", 6) != 0)
                    fprintf(stderr, "  client %d: %s\n", i, line);
                continue;
            }
            CHECK(from != i && from >= 0 && from < N);
            CHECK_EQ(k, next[from]);
            next[from]++;
            got++;
        }
        CHECK_EQ(got, (N - 1) * M);
    }
    for (int i = 0; i < N; i++)
        close(cs[i].fd);
    CHECK_EQ(server_stop(&sv), 0);
}

/* Asks for "OK STATS alive=N sockets=M" on c, skipping the room's news
 * before it; false when it does not come. */
static bool stats(client *c, unsigned long *alive, unsigned long *sockets)
{
    char line[256];
    send_line(c, "STATS");
    for (int i = 0; i < 10000; i++) {
        if (!next_line(c, line, sizeof line))
            return false;
        if (sscanf(line, "OK STATS alive=%lu sockets=%lu", alive, sockets) == 2)
            return true;
    }
    return false;
}

/* 1000 clients come, take a nick, join a room and go (half of them
 * without QUIT): the server's live actors and open sockets are back where
 * they were. */
static void connect_cycles_leave_nothing(void)
{
    server sv;
    CHECK(server_start(&sv, NULL));
    client w;
    CHECK(login(&w, sv.port, "watcher", "#r"));
    unsigned long alive0, sockets0, alive, sockets;
    CHECK(stats(&w, &alive0, &sockets0));
    for (int i = 0; i < 1000; i++) {
        client c;
        char nick[16];
        snprintf(nick, sizeof nick, "c%d", i);
        CHECK(login(&c, sv.port, nick, i % 2 ? "#r" : NULL));
        if (i % 4 == 0) {
            send_line(&c, "QUIT");
            CHECK(expect(&c, "OK QUIT"));
        }
        close(c.fd);
    }
    bool back = false;
    for (int tries = 0; tries < 500 && !back; tries++) {
        CHECK(stats(&w, &alive, &sockets));
        back = alive == alive0 && sockets == sockets0;
        if (!back)
            usleep(10000);
    }
    if (!back)
        fprintf(stderr, "  alive %lu (was %lu), sockets %lu (was %lu)\n", alive,
                alive0, sockets, sockets0);
    CHECK(back);
    close(w.fd);
    CHECK_EQ(server_stop(&sv), 0);
}

/* Beyond --max-clients a client is told and closed. */
static void server_full(void)
{
    server sv;
    const char *const extra[] = {"--max-clients", "2", NULL};
    CHECK(server_start(&sv, extra));
    client a, b, c;
    CHECK(login(&a, sv.port, "alice", NULL));
    CHECK(login(&b, sv.port, "bob", NULL));
    CHECK(client_open(&c, sv.port));
    CHECK(expect_next(&c, "ERR full server full"));
    CHECK(closed_by_server(&c));
    close(a.fd);
    close(b.fd);
    close(c.fd);
    CHECK_EQ(server_stop(&sv), 0);
}

static const struct test_case cases[] = {
    TEST_CASE(fanout_and_privacy),
    TEST_CASE(errors_answered),
    TEST_CASE(vanished_client_frees_nick),
    TEST_CASE(session_crash_isolated),
    TEST_CASE(rooms_node_killed),
    TEST_CASE(shutdown_tells_clients),
    TEST_CASE(many_clients_in_order),
    TEST_CASE(server_full),
    TEST_CASE(connect_cycles_leave_nothing),
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_chat PATH-TO-CHAT [case]\n");
        return 2;
    }
    chat_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    return test_main(cases, sizeof cases / sizeof cases[0], argc - 1, argv + 1);
}
