/*
 * dist: Erlang distribution (<grove/dist.h>) on loopback, Grove against
 * Erlang/OTP in the same run. The program starts a private epmd on a free
 * port (ERL_EPMD_PORT, as tests/test_dist.c does), then:
 *
 * Grove <-> Grove. A forked child starts system B, published as
 * b@127.0.0.1, with an "echo" actor registered; this process starts
 * system A (a@127.0.0.1) and a driver actor. Both hold the same cookie.
 * The driver sends echo, by name, a GR_MSG_TERM holding its own pid;
 * echo answers with its pid, and from then on both send to those refs
 * (tells to a pid: Erlang's plain SEND, no name lookup), the way an Erlang
 * process talks to a pid it was given. Then:
 *   - dist_roundtrip: 1000 untimed warm-up round trips, then DIST_N
 *     sequential ones: a tell of an 8-byte Grove payload (it travels as
 *     {'$grove', Type, <<I:64>>}), answered by a tell of the same value to
 *     the driver, which sends the next one from the reply's handler.
 *     Tells, not gr_ask: an ask crosses as a '$gen_call' whose request and
 *     reply arrive as GR_MSG_TERM (the Grove type inside is not restored),
 *     and its timeout timer is extra work Erlang's `!` does not do.
 *   - dist_stream: DIST_N one-way tells of a sequence number; echo counts
 *     them, checks their order and acks every DIST_ACK_EVERY; the driver
 *     keeps at most DIST_WINDOW unacknowledged and retries a send refused
 *     with GR_EBACKPRESSURE 1 ms later; an `end` tell is answered with the
 *     count and the number out of order, which must be DIST_N and 0.
 *   Both again with GR_MSG_TERM payloads (msgpack [Kind, I], an Erlang
 *   tuple on the wire) over DIST_TERM_N: what the term mapping costs
 *   (term_ns_per_roundtrip, term_ns_per_msg on the Grove lines).
 *
 * Erlang <-> Erlang (impl=erlang). B is stopped; two erl nodes, e1 and e2,
 * run dist_bench.erl (written and compiled with erlc into a temporary
 * folder): e2 holds an echo process that does what B's echo does and a
 * trivial gen_server; e1 does the same warm-up, round trips and stream
 * with `!` and receive, timing itself with erlang:monotonic_time.
 *
 * Erlang -> Grove gen_server:call (dist_call). e1 then makes DIST_CALL_N
 * gen_server:calls to the trivial gen_server on e2 (impl=erlang), and
 * DIST_CALL_N to the actor "gcall" registered on A (impl=grove), which
 * answers each with gr_reply of the request's own term; e1 checks every
 * answer. Both after 1000 untimed ones.
 *
 * ratio_to_erlang on the Grove lines is Grove's rate over Erlang's in this
 * run (>= 1: Grove is as fast or faster). Every wait is bounded
 * (DIST_TIMEOUT_S, default 300, for the whole run's phases); children
 * (epmd, B, erl) die with this process (PR_SET_PDEATHSIG) and are killed
 * and reaped at exit. Exits 77 (skipped) where erl, erlc or epmd are
 * missing.
 *
 * Parameters: DIST_N (100000), DIST_TERM_N (DIST_N / 4), DIST_CALL_N
 * (DIST_N), DIST_WINDOW (32768), DIST_ACK_EVERY (2048), DIST_TIMEOUT_S
 * (300).
 */
#include "bench_util.h"
#include "erl_env.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define COOKIE   "grove-bench-dist"
#define A_NODE   "a@127.0.0.1"
#define B_NODE   "b@127.0.0.1"
#define E1_NODE  "e1@127.0.0.1"
#define E2_NODE  "e2@127.0.0.1"
#define WARMUP_N 1000u
/* Tells sent per driver turn before it yields with a self-tell. */
#define CHUNK 1024u
/* Hellos to echo (100 ms apart) before giving up. */
#define HELLO_TRIES 100u

/* Messages that stay inside A. */
enum {
    MSG_START = 1, /* main -> driver */
    MSG_CONT,      /* driver -> itself: keep streaming */
    MSG_RETRY,     /* driver timer: hello again */
    MSG_DONE,      /* driver -> main: payload 1 (ok) or 0 */
};

/* What crosses between A and B: a kind and one or two values. As a Grove
 * payload its type is MSG_BASE + kind and the values are uint64_t; as a
 * term it is the msgpack array [Kind, Value...]. */
enum { K_PING = 1, K_PONG, K_DATA, K_ACK, K_END, K_COUNT };
#define MSG_BASE 16u

/* Deadline of the whole run's phases, CLOCK_MONOTONIC ns. */
static uint64_t deadline_ns;

/* ---- children: epmd, B, erl ------------------------------------------- */

static pid_t main_pid, epmd_pid, b_pid, e1_pid, e2_pid;
static char tmpdir[64];

static void reap(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
            ;
        *pid = 0;
    }
}

static void rm_tmp(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    (void)unlink(path);
}

/* atexit: no child outlives the run, nor the temporary folder. */
static void cleanup(void)
{
    if (getpid() != main_pid)
        return;
    reap(&e1_pid);
    reap(&e2_pid);
    reap(&b_pid);
    reap(&epmd_pid);
    if (tmpdir[0] != '\0') {
        rm_tmp("dist_bench.erl");
        rm_tmp("dist_bench.beam");
        rm_tmp("e2.log");
        rm_tmp("erlc.log");
        (void)rmdir(tmpdir);
        tmpdir[0] = '\0';
    }
}

/* In a child: dies with the parent (checked again after the prctl, in
 * case the parent went first). */
static void die_with_parent(void)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != main_pid)
        _exit(1);
}

/* Forks a child that runs argv with its stdout and stderr on out_fd (-1:
 * left as they are); its pid. */
static pid_t spawn_prog(char *const argv[], int out_fd)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        die_with_parent();
        if (out_fd >= 0) {
            dup2(out_fd, 1);
            dup2(out_fd, 2);
        }
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Waits for *pid to exit until the deadline (ms from now); its status,
 * or -1 when it did not exit in time (it is killed then). */
static int wait_exit(pid_t *pid, unsigned ms)
{
    uint64_t until = bench_now_ns() + (uint64_t)ms * 1000000u;
    for (;;) {
        int status;
        pid_t r = waitpid(*pid, &status, WNOHANG);
        if (r == *pid) {
            *pid = 0;
            return status;
        }
        if (r < 0 && errno != EINTR)
            bench_die("waitpid: %s", strerror(errno));
        if (bench_now_ns() >= until) {
            reap(pid);
            return -1;
        }
        nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
    }
}

/* Whether the child *pid has exited (then reaped, *pid 0). */
static bool exited(pid_t *pid, int *status)
{
    if (*pid <= 0)
        return true;
    if (waitpid(*pid, status, WNOHANG) == *pid) {
        *pid = 0;
        return true;
    }
    return false;
}

/* Starts the private epmd and points ERL_EPMD_PORT (ours and the erl
 * children's) at it. */
static void epmd_start(void)
{
    uint16_t port = erl_free_port();
    if (port == 0)
        bench_die("no free port: %s", strerror(errno));
    char p[16];
    snprintf(p, sizeof p, "%u", port);
    setenv("ERL_EPMD_PORT", p, 1);
    char *argv[] = {"epmd", "-port", p, NULL};
    /* Quiet: it complains of every probe below. */
    int null = open("/dev/null", O_WRONLY);
    epmd_pid = spawn_prog(argv, null);
    close(null);
    uint64_t until = bench_now_ns() + 10000000000u;
    while (!erl_port_answers(port)) {
        int status;
        if (exited(&epmd_pid, &status))
            bench_die("epmd -port %s exited (status %d)", p, status);
        if (bench_now_ns() > until)
            bench_die("epmd -port %s does not answer within 10 s", p);
        nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
    }
}

/* ---- payloads ----------------------------------------------------------- */

static unsigned nvalues(unsigned kind)
{
    return kind == K_END ? 0 : kind == K_COUNT ? 2 : 1;
}

/* Sends kind (values a, b as it takes) to `to`, as a Grove payload or
 * as a term. */
static int send_kind(gr_ctx *ctx, gr_ref to, bool term, unsigned kind,
                     uint64_t a, uint64_t b)
{
    unsigned nv = nvalues(kind);
    uint64_t v[2] = {a, b};
    if (!term)
        return gr_tell(ctx, to, MSG_BASE + kind, nv ? v : NULL,
                       nv * sizeof v[0]);
    unsigned char buf[32], *p = buf;
    *p++ = (unsigned char)(0x90 + 1 + nv); /* fixarray */
    *p++ = (unsigned char)kind;            /* positive fixint */
    for (unsigned i = 0; i < nv; i++) {
        *p++ = 0xcf; /* uint 64, big-endian */
        for (int s = 56; s >= 0; s -= 8)
            *p++ = (unsigned char)(v[i] >> s);
    }
    return gr_tell(ctx, to, GR_MSG_TERM, buf, (size_t)(p - buf));
}

/* Reads one msgpack non-negative integer at *p (of end); false if none. */
static bool read_uint(const unsigned char **p, const unsigned char *end,
                      uint64_t *out)
{
    if (*p >= end)
        return false;
    unsigned c = *(*p)++;
    size_t n;
    if (c <= 0x7f) {
        *out = c;
        return true;
    }
    switch (c) {
    case 0xcc:
    case 0xd0:
        n = 1;
        break;
    case 0xcd:
    case 0xd1:
        n = 2;
        break;
    case 0xce:
    case 0xd2:
        n = 4;
        break;
    case 0xcf:
    case 0xd3:
        n = 8;
        break;
    default:
        return false;
    }
    if ((size_t)(end - *p) < n || (c >= 0xd0 && (**p & 0x80)))
        return false; /* Short, or a negative signed one. */
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | *(*p)++;
    *out = v;
    return true;
}

/* m's kind and values, and whether it came as a term; false when it is
 * none of ours. */
static bool read_kind(const gr_msg *m, unsigned *kind, uint64_t v[2],
                      bool *term)
{
    v[0] = v[1] = 0;
    *term = m->type == GR_MSG_TERM;
    if (!*term) {
        if (m->type <= MSG_BASE || m->type > MSG_BASE + K_COUNT)
            return false;
        *kind = m->type - MSG_BASE;
        if (m->len != nvalues(*kind) * sizeof v[0])
            return false;
        memcpy(v, m->data, m->len);
        return true;
    }
    const unsigned char *p = m->data, *end = p + m->len;
    uint64_t k;
    if (m->len < 2 || (p[0] & 0xf0) != 0x90)
        return false;
    unsigned n = *p++ & 0x0f;
    if (n < 1 || !read_uint(&p, end, &k) || k < K_PING || k > K_COUNT ||
        n != 1 + nvalues((unsigned)k))
        return false;
    for (unsigned i = 0; i + 1 < n; i++)
        if (!read_uint(&p, end, &v[i]))
            return false;
    *kind = (unsigned)k;
    return p == end;
}

/* A GR_MSG_TERM that is just a pid: msgpack fixext 16 of GR_EXT_PID. */
static bool read_pid(const gr_msg *m, gr_ref *out)
{
    const unsigned char *d = m->data;
    return m->type == GR_MSG_TERM && m->len == 18 && d[0] == 0xd8 &&
           d[1] == GR_EXT_PID && gr_dist_ref_read(d + 2, 16, out) == GR_OK;
}

static int send_pid(gr_ctx *ctx, gr_ref to, const char *to_name)
{
    unsigned char buf[18] = {0xd8, GR_EXT_PID};
    gr_dist_ref_write(gr_self(ctx), buf + 2);
    return to_name != NULL
               ? gr_tell_name(ctx, to_name, GR_MSG_TERM, buf, sizeof buf)
               : gr_tell(ctx, to, GR_MSG_TERM, buf, sizeof buf);
}

/* ---- B: the echo ---------------------------------------------------------
 */

struct echo {
    gr_ref peer; /* The driver, from its hello. */
    uint64_t count, out_of_order, ack_every;
};

static int echo_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    struct echo *e = state;
    if (len != sizeof e->ack_every)
        return GR_EINVAL;
    memcpy(&e->ack_every, arg, len);
    return gr_register(ctx, "echo");
}

/* B is a child of its own: a failure there ends it, and A's wait for B
 * sees it. */
static _Noreturn void echo_fail(const char *what, int rc)
{
    fprintf(stderr, "bench: dist: B's echo: %s: %s\n", what, gr_strerror(rc));
    _exit(1);
}

static int echo_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct echo *e = state;
    unsigned kind;
    uint64_t v[2];
    bool term;
    int rc = GR_OK;
    if (read_pid(m, &e->peer)) {
        e->count = e->out_of_order = 0;
        rc = send_pid(ctx, e->peer, NULL);
    } else if (!read_kind(m, &kind, v, &term)) {
        if (m->type >= GR_MSG_RESERVED && m->type != GR_MSG_TERM)
            return GR_CONTINUE; /* A system message. */
        echo_fail("an unexpected message", GR_EINVAL);
    } else if (kind == K_PING) {
        rc = send_kind(ctx, e->peer, term, K_PONG, v[0], 0);
    } else if (kind == K_DATA) {
        e->out_of_order += v[0] != e->count;
        if (++e->count % e->ack_every == 0)
            rc = send_kind(ctx, e->peer, term, K_ACK, e->count, 0);
    } else if (kind == K_END) {
        rc = send_kind(ctx, e->peer, term, K_COUNT, e->count, e->out_of_order);
        e->count = e->out_of_order = 0;
    } else {
        echo_fail("an unexpected kind", GR_EINVAL);
    }
    if (rc != GR_OK)
        echo_fail("a send to the driver", rc);
    return GR_CONTINUE;
}

static const gr_behaviour echo_behaviour = {
    .name = "dist_echo",
    .state_size = sizeof(struct echo),
    .init = echo_init,
    .handle = echo_handle,
};

/* B's process: its system and echo; tells the parent on `ready`, runs
 * until `ctl` closes. */
static _Noreturn void run_b(int ready, int ctl, uint64_t ack_every,
                            unsigned timeout_ms)
{
    gr_config cfg = {.log_level = GR_LOG_WARN,
                     .log_level_set = 1,
                     .event_fn = bench_quiet_events,
                     .dist = {.node_name = B_NODE, .cookie = COOKIE}};
    gr_system *sys;
    gr_ref echo;
    int rc = gr_system_start(&cfg, &sys);
    if (rc == GR_OK)
        rc = gr_system_spawn(sys, &echo_behaviour, &ack_every, sizeof ack_every,
                             &echo);
    if (rc != GR_OK) {
        fprintf(stderr, "bench: dist: B: %s\n", gr_strerror(rc));
        _exit(1);
    }
    char one = 1;
    if (write(ready, &one, 1) != 1)
        _exit(1);
    close(ready);
    struct pollfd p = {.fd = ctl, .events = POLLIN};
    while (poll(&p, 1, (int)timeout_ms) < 0 && errno == EINTR)
        ;
    rc = gr_system_shutdown(sys);
    _exit(rc == GR_OK ? 0 : 1);
}

/* ---- A: the driver -------------------------------------------------------
 */

/* What the driver measured, [0] with Grove payloads, [1] with terms;
 * written before MSG_DONE, read after it. */
struct results {
    uint64_t ping_ns[2], stream_ns[2];
    uint64_t count[2], out_of_order[2], backpressure[2];
    char error[160];
};

struct driver_args {
    gr_ref report_to;
    struct results *res;
    uint64_t n[2], window;
};

enum { PH_HELLO, PH_WARM, PH_PING, PH_STREAM, PH_END, PH_DONE };

struct driver {
    struct driver_args a;
    gr_ref echo;
    int phase;
    bool term; /* The pass with GR_MSG_TERM payloads. */
    unsigned hello_tries;
    uint64_t i, t0, sent, acked;
    int cont_pending;
};

static int driver_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct driver *d = state;
    if (len != sizeof d->a)
        return GR_EINVAL;
    memcpy(&d->a, arg, len);
    return GR_OK;
}

/* Ends the run: records an error (NULL for none) and tells main. */
static int finish(gr_ctx *ctx, struct driver *d, const char *error)
{
    if (error != NULL)
        snprintf(d->a.res->error, sizeof d->a.res->error, "%s", error);
    d->phase = PH_DONE;
    return bench_tell_u64(ctx, d->a.report_to, MSG_DONE, error == NULL);
}

static int check(gr_ctx *ctx, struct driver *d, int rc, const char *what)
{
    if (rc == GR_OK)
        return GR_CONTINUE;
    char why[160];
    snprintf(why, sizeof why, "%s: %s", what, gr_strerror(rc));
    return finish(ctx, d, why);
}

static int hello(gr_ctx *ctx, struct driver *d)
{
    if (++d->hello_tries > HELLO_TRIES)
        return finish(ctx, d, "echo@" B_NODE " does not answer");
    int rc = send_pid(ctx, GR_REF_NONE, "echo@" B_NODE);
    if (rc != GR_OK && rc != GR_EBACKPRESSURE && rc != GR_ENOCONNECTION)
        return check(ctx, d, rc, "hello");
    return check(ctx, d, gr_timer_after(ctx, 100, MSG_RETRY, NULL, 0, NULL),
                 "timer");
}

/* Yields and comes back: a self-tell now, or after 1 ms when
 * distribution refused a send (its queue drains meanwhile). */
static int come_back(gr_ctx *ctx, struct driver *d, bool later)
{
    if (d->cont_pending)
        return GR_CONTINUE;
    d->cont_pending = 1;
    int rc = later ? gr_timer_after(ctx, 1, MSG_CONT, NULL, 0, NULL)
                   : gr_tell(ctx, gr_self(ctx), MSG_CONT, NULL, 0);
    return check(ctx, d, rc, "come back");
}

/* Streams what the window allows, CHUNK tells a turn; then `end`. */
static int pump(gr_ctx *ctx, struct driver *d)
{
    struct results *r = d->a.res;
    uint64_t n = d->a.n[d->term];
    for (unsigned burst = 0; d->sent < n; burst++) {
        if (d->sent - d->acked >= d->a.window)
            return GR_CONTINUE; /* The next ack resumes. */
        if (burst == CHUNK)
            return come_back(ctx, d, false);
        int rc = send_kind(ctx, d->echo, d->term, K_DATA, d->sent, 0);
        if (rc == GR_EBACKPRESSURE) {
            r->backpressure[d->term]++;
            return come_back(ctx, d, true);
        }
        if (rc != GR_OK)
            return check(ctx, d, rc, "stream");
        d->sent++;
    }
    int rc = send_kind(ctx, d->echo, d->term, K_END, 0, 0);
    if (rc == GR_EBACKPRESSURE) {
        r->backpressure[d->term]++;
        return come_back(ctx, d, true);
    }
    d->phase = PH_END;
    return check(ctx, d, rc, "end");
}

/* Starts a pass: warm-up round trips first. */
static int start_pass(gr_ctx *ctx, struct driver *d, bool term)
{
    d->term = term;
    d->phase = PH_WARM;
    d->i = 0;
    return check(ctx, d, send_kind(ctx, d->echo, term, K_PING, 0, 0), "ping");
}

static int on_pong(gr_ctx *ctx, struct driver *d, uint64_t v)
{
    if (v != d->i)
        return finish(ctx, d, "a pong with the wrong value");
    d->i++;
    if (d->phase == PH_WARM && d->i == WARMUP_N) {
        d->phase = PH_PING;
        d->i = 0;
        d->t0 = bench_now_ns();
    } else if (d->phase == PH_PING && d->i == d->a.n[d->term]) {
        d->a.res->ping_ns[d->term] = bench_now_ns() - d->t0;
        d->phase = PH_STREAM;
        d->sent = d->acked = 0;
        d->t0 = bench_now_ns();
        return pump(ctx, d);
    }
    return check(ctx, d, send_kind(ctx, d->echo, d->term, K_PING, d->i, 0),
                 "ping");
}

static int driver_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct driver *d = state;
    if (d->phase == PH_DONE)
        return GR_CONTINUE;
    switch (m->type) {
    case MSG_START:
        return hello(ctx, d);
    case MSG_RETRY:
        return d->phase == PH_HELLO ? hello(ctx, d) : GR_CONTINUE;
    case MSG_CONT:
        d->cont_pending = 0;
        return d->phase == PH_STREAM ? pump(ctx, d) : GR_CONTINUE;
    default:
        break;
    }
    if (read_pid(m, &d->echo))
        return d->phase == PH_HELLO ? start_pass(ctx, d, false) : GR_CONTINUE;
    unsigned kind;
    uint64_t v[2];
    bool term;
    if (!read_kind(m, &kind, v, &term)) {
        if (m->type >= GR_MSG_RESERVED && m->type != GR_MSG_TERM)
            return GR_CONTINUE; /* A system message. */
        return finish(ctx, d, "an unexpected message");
    }
    if (term != d->term)
        return finish(ctx, d, "a reply in the other pass's payload");
    if (kind == K_PONG && (d->phase == PH_WARM || d->phase == PH_PING))
        return on_pong(ctx, d, v[0]);
    if (kind == K_ACK && (d->phase == PH_STREAM || d->phase == PH_END)) {
        d->acked = v[0];
        return d->phase == PH_STREAM ? pump(ctx, d) : GR_CONTINUE;
    }
    if (kind == K_COUNT && d->phase == PH_END) {
        struct results *r = d->a.res;
        r->stream_ns[term] = bench_now_ns() - d->t0;
        r->count[term] = v[0];
        r->out_of_order[term] = v[1];
        if (!term)
            return start_pass(ctx, d, true);
        return finish(ctx, d, NULL);
    }
    return finish(ctx, d, "a reply out of place");
}

static const gr_behaviour driver_behaviour = {
    .name = "dist_driver",
    .state_size = sizeof(struct driver),
    .init = driver_init,
    .handle = driver_handle,
};

/* ---- A: gcall, called by Erlang ------------------------------------------
 */

static _Atomic uint64_t calls_answered;

static int gcall_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return gr_register(ctx, "gcall");
}

/* A gen_server:call's request is answered with the same term. */
static int gcall_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    if (m->type != GR_MSG_TERM || !(m->flags & GR_MSG_REQUEST))
        return GR_CONTINUE;
    calls_answered++;
    return gr_reply(ctx, m, GR_MSG_TERM, m->data, m->len);
}

static const gr_behaviour gcall_behaviour = {
    .name = "dist_gcall",
    .init = gcall_init,
    .handle = gcall_handle,
};

/* ---- Erlang ------------------------------------------------------------- */

static const char erl_source[] =
    "-module(dist_bench).\n"
    "-behaviour(gen_server).\n"
    "-export([server/0, main/1, init/1, handle_call/3, handle_cast/2]).\n"
    "\n"
    "%% e2: the echo (what B's echo does) and a trivial gen_server.\n"
    "server() ->\n"
    "    register(echo, spawn(fun() -> echo(none, 0, 0, 1) end)),\n"
    "    {ok, _} = gen_server:start({local, srv}, ?MODULE, [], []),\n"
    "    ok.\n"
    "\n"
    "init([]) -> {ok, []}.\n"
    "handle_call(Req, _From, S) -> {reply, Req, S}.\n"
    "handle_cast(_, S) -> {noreply, S}.\n"
    "\n"
    "echo(Peer, C, O, A) ->\n"
    "    receive\n"
    "        {ping, I} -> Peer ! {pong, I}, echo(Peer, C, O, A);\n"
    "        {data, I} ->\n"
    "            O2 = if I =:= C -> O; true -> O + 1 end,\n"
    "            C2 = C + 1,\n"
    "            if C2 rem A =:= 0 -> Peer ! {ack, C2}; true -> ok end,\n"
    "            echo(Peer, C2, O2, A);\n"
    "        'end' -> Peer ! {count, C, O}, echo(Peer, 0, 0, A);\n"
    "        {hello, P, A2} -> P ! {hi, self()}, echo(P, 0, 0, A2)\n"
    "    end.\n"
    "\n"
    "%% e1: the driver; prints one ERL line of figures, or ERLFAIL.\n"
    "main([E2, G, N, CN, W, A]) ->\n"
    "    try run(list_to_atom(E2), list_to_atom(G), list_to_integer(N),\n"
    "            list_to_integer(CN), list_to_integer(W), "
    "list_to_integer(A))\n"
    "    catch C:E:S -> io:format(\"ERLFAIL ~p ~p ~p~n\", [C, E, S])\n"
    "    end,\n"
    "    halt().\n"
    "\n"
    "ns() -> erlang:monotonic_time(nanosecond).\n"
    "\n"
    "up(E2, Until) ->\n"
    "    case net_kernel:connect_node(E2) andalso\n"
    "         is_pid(rpc:call(E2, erlang, whereis, [srv])) of\n"
    "        true -> ok;\n"
    "        false ->\n"
    "            ns() < Until orelse exit(e2_not_up),\n"
    "            timer:sleep(20),\n"
    "            up(E2, Until)\n"
    "    end.\n"
    "\n"
    "run(E2, G, N, CN, W, A) ->\n"
    "    up(E2, ns() + 30000000000),\n"
    "    {echo, E2} ! {hello, self(), A},\n"
    "    Echo = receive {hi, P} -> P after 10000 -> exit(no_hi) end,\n"
    "    rt(Echo, 0, 1000),\n"
    "    T0 = ns(), rt(Echo, 0, N), T1 = ns(),\n"
    "    stream(Echo, 0, 0, N, W),\n"
    "    Echo ! 'end',\n"
    "    {C, O} = receive {count, C0, O0} -> {C0, O0}\n"
    "             after 60000 -> exit(no_count) end,\n"
    "    T2 = ns(),\n"
    "    (C =:= N andalso O =:= 0) orelse exit({stream, C, O}),\n"
    "    flush(),\n"
    "    calls({srv, E2}, 0, 1000),\n"
    "    T3 = ns(), calls({srv, E2}, 0, CN), T4 = ns(),\n"
    "    calls({gcall, G}, 0, 1000),\n"
    "    T5 = ns(), calls({gcall, G}, 0, CN), T6 = ns(),\n"
    "    io:format(\"ERL rt_ns=~b stream_ns=~b call_ns=~b "
    "grove_call_ns=~b~n\",\n"
    "              [T1 - T0, T2 - T1, T4 - T3, T6 - T5]).\n"
    "\n"
    "rt(_E, N, N) -> ok;\n"
    "rt(E, I, N) ->\n"
    "    E ! {ping, I},\n"
    "    receive {pong, I} -> rt(E, I + 1, N)\n"
    "    after 10000 -> exit({no_pong, I}) end.\n"
    "\n"
    "stream(_E, N, _Ak, N, _W) -> ok;\n"
    "stream(E, S, Ak, N, W) when S - Ak >= W ->\n"
    "    receive {ack, K} -> stream(E, S, K, N, W)\n"
    "    after 10000 -> exit(no_ack) end;\n"
    "stream(E, S, Ak, N, W) ->\n"
    "    E ! {data, S},\n"
    "    receive {ack, K} -> stream(E, S + 1, K, N, W)\n"
    "    after 0 -> stream(E, S + 1, Ak, N, W) end.\n"
    "\n"
    "flush() -> receive _ -> flush() after 0 -> ok end.\n"
    "\n"
    "calls(_To, N, N) -> ok;\n"
    "calls(To, I, N) ->\n"
    "    I = gen_server:call(To, I),\n"
    "    calls(To, I + 1, N).\n";

/* Milliseconds left before the deadline (at least 1). */
static unsigned left_ms(void)
{
    uint64_t now = bench_now_ns();
    return now >= deadline_ns ? 1 : (unsigned)((deadline_ns - now) / 1000000u);
}

/* Copies tmpdir's file name to stderr. */
static void dump_tmp(const char *name)
{
    char path[128], line[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    fprintf(stderr, "--- %s:\n", name);
    while (fgets(line, sizeof line, f) != NULL)
        fputs(line, stderr);
    fclose(f);
}

/* Writes the module into tmpdir and compiles it there. */
static void erl_compile(void)
{
    char path[128], log[128];
    snprintf(path, sizeof path, "%s/dist_bench.erl", tmpdir);
    snprintf(log, sizeof log, "%s/erlc.log", tmpdir);
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(erl_source, f) < 0 || fclose(f) != 0)
        bench_die("cannot write %s", path);
    int out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char *argv[] = {"erlc", "-o", tmpdir, path, NULL};
    pid_t pid = spawn_prog(argv, out);
    close(out);
    int status = wait_exit(&pid, 60000);
    if (status != 0) {
        dump_tmp("erlc.log");
        bench_die("erlc %s failed (status %d; see above)", path, status);
    }
}

/* Figures e1 printed. */
struct erl_figures {
    uint64_t rt_ns, stream_ns, call_ns, grove_call_ns;
};

static uint64_t figure(const char *line, const char *key)
{
    const char *p = strstr(line, key);
    unsigned long long v;
    if (p == NULL || sscanf(p + strlen(key), "%llu", &v) != 1 || v == 0)
        bench_die("dist: e1 printed no %s in: %s", key, line);
    return (uint64_t)v;
}

/* Runs e2 (in the background) and e1 (to its end); e1's figures. */
static struct erl_figures erl_run(uint64_t n, uint64_t call_n, uint64_t window,
                                  uint64_t ack_every)
{
    char log[128];
    snprintf(log, sizeof log, "%s/e2.log", tmpdir);
    int e2_out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char *e2_argv[] = {
        "erl",  "-noshell",    "-name", E2_NODE, "-setcookie", COOKIE,   "-pa",
        tmpdir, "-start_epmd", "false", "-s",    "dist_bench", "server", NULL};
    e2_pid = spawn_prog(e2_argv, e2_out);
    close(e2_out);

    char ns[24], cns[24], ws[24], as[24];
    snprintf(ns, sizeof ns, "%" PRIu64, n);
    snprintf(cns, sizeof cns, "%" PRIu64, call_n);
    snprintf(ws, sizeof ws, "%" PRIu64, window);
    snprintf(as, sizeof as, "%" PRIu64, ack_every);
    int out[2];
    if (pipe(out) != 0)
        bench_die("pipe: %s", strerror(errno));
    char *e1_argv[] = {"erl",         "-noshell", "-name", E1_NODE,
                       "-setcookie",  COOKIE,     "-pa",   tmpdir,
                       "-start_epmd", "false",    "-run",  "dist_bench",
                       "main",        E2_NODE,    A_NODE,  ns,
                       cns,           ws,         as,      NULL};
    e1_pid = spawn_prog(e1_argv, out[1]);
    close(out[1]);
    static char buf[1 << 16];
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        int r = poll(&p, 1, (int)left_ms());
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            bench_die("dist: e1 did not finish in time; it said: %.*s",
                      (int)len, buf);
        ssize_t k = read(out[0], buf + len, sizeof buf - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
        if (len == sizeof buf - 1)
            break;
    }
    buf[len] = '\0';
    close(out[0]);
    int status = wait_exit(&e1_pid, 10000);
    reap(&e2_pid);
    const char *line = strstr(buf, "ERL rt_ns=");
    if (status != 0 || line == NULL) {
        dump_tmp("e2.log");
        bench_die("dist: e1 failed (status %d); it said:\n%s", status, buf);
    }
    return (struct erl_figures){.rt_ns = figure(line, "rt_ns="),
                                .stream_ns = figure(line, "stream_ns="),
                                .call_ns = figure(line, "call_ns="),
                                .grove_call_ns =
                                    figure(line, "grove_call_ns=")};
}

/* ---- main --------------------------------------------------------------- */

/* One RESULT line of impl, n ops over ns nanoseconds. */
BENCH_PRINTF(6, 7)
static void result(const char *bench, const char *impl, uint64_t n, uint64_t ns,
                   const char *unit, const char *extra_fmt, ...)
{
    double s = (double)ns / 1e9;
    printf("RESULT bench=%s impl=%s n=%" PRIu64 " seconds=%.6f rate=%" PRIu64
           "/s unit=%s ",
           bench, impl, n, s, (uint64_t)((double)n / s + 0.5), unit);
    va_list ap;
    va_start(ap, extra_fmt);
    vprintf(extra_fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

int main(void)
{
    uint64_t n = bench_env_u64("DIST_N", 100000);
    uint64_t term_n = bench_env_u64("DIST_TERM_N", n / 4 ? n / 4 : 1);
    uint64_t call_n = bench_env_u64("DIST_CALL_N", n);
    uint64_t window = bench_env_u64("DIST_WINDOW", 32768);
    uint64_t ack_every = bench_env_u64("DIST_ACK_EVERY", 2048);
    uint64_t timeout_s = bench_env_u64("DIST_TIMEOUT_S", 300);
    if (ack_every > window)
        bench_die("dist: DIST_ACK_EVERY must not exceed DIST_WINDOW");
    if (!erl_have("erl") || !erl_have("erlc") || !erl_have("epmd")) {
        printf("skipped: erl, erlc and epmd are needed\n");
        return 77;
    }
    main_pid = getpid();
    deadline_ns = bench_now_ns() + timeout_s * 1000000000u;
    if (atexit(cleanup) != 0)
        bench_die("atexit");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/grove-dist-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        bench_die("mkdtemp: %s", strerror(errno));
    setenv("ERL_CRASH_DUMP_SECONDS", "0", 1); /* No erl_crash.dump. */
    erl_compile();
    epmd_start();

    /* B, forked while this process has no threads yet. */
    int ready[2], ctl[2];
    if (pipe(ready) != 0 || pipe(ctl) != 0)
        bench_die("pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    b_pid = fork();
    if (b_pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (b_pid == 0) {
        die_with_parent();
        close(ready[0]);
        close(ctl[1]);
        run_b(ready[1], ctl[0], ack_every, left_ms());
    }
    close(ready[1]);
    close(ctl[0]);
    struct pollfd p = {.fd = ready[0], .events = POLLIN};
    char one;
    if (poll(&p, 1, 30000) != 1 || read(ready[0], &one, 1) != 1)
        bench_die("dist: B did not start (see above)");
    close(ready[0]);

    gr_config cfg = {.log_level = GR_LOG_WARN,
                     .log_level_set = 1,
                     .event_fn = bench_quiet_events,
                     .dist = {.node_name = A_NODE, .cookie = COOKIE}};
    gr_system *sys;
    bench_check(gr_system_start(&cfg, &sys), "gr_system_start");
    gr_inbox *inbox;
    bench_check(gr_inbox_open(sys, &inbox), "gr_inbox_open");
    gr_ref gcall, driver;
    bench_check(gr_system_spawn(sys, &gcall_behaviour, NULL, 0, &gcall),
                "spawn gcall");
    static struct results res;
    struct driver_args args = {.report_to = gr_inbox_ref(inbox),
                               .res = &res,
                               .n = {n, term_n},
                               .window = window};
    bench_check(
        gr_system_spawn(sys, &driver_behaviour, &args, sizeof args, &driver),
        "spawn driver");
    bench_check(
        gr_system_tell(sys, gr_inbox_ref(inbox), driver, MSG_START, NULL, 0),
        "start");
    /* Grove <-> Grove, watching B meanwhile. */
    gr_msg *m = NULL;
    for (;;) {
        int rc = gr_inbox_recv(inbox, &m, 200);
        if (rc == GR_OK)
            break;
        int status;
        if (exited(&b_pid, &status))
            bench_die("dist: B exited (status %d) during the Grove runs",
                      status);
        if (bench_now_ns() > deadline_ns)
            bench_die("dist: the Grove runs did not end within %" PRIu64 " s",
                      timeout_s);
    }
    uint64_t ok = m->type == MSG_DONE ? bench_u64(m) : 0;
    gr_msg_free(m);
    if (!ok)
        bench_die("dist: Grove <-> Grove: %s", res.error);
    for (int t = 0; t < 2; t++)
        if (res.count[t] != args.n[t] || res.out_of_order[t] != 0)
            bench_die("dist: stream (%s): %" PRIu64 " of %" PRIu64
                      " received, %" PRIu64 " out of order",
                      t ? "terms" : "Grove payloads", res.count[t], args.n[t],
                      res.out_of_order[t]);
    /* B ends when ctl closes. */
    close(ctl[1]);
    int status = wait_exit(&b_pid, 10000);
    if (status != 0)
        bench_die("dist: B did not end cleanly (status %d)", status);

    struct erl_figures e = erl_run(n, call_n, window, ack_every);
    if (calls_answered != WARMUP_N + call_n)
        bench_die("dist: gcall answered %" PRIu64 " calls, not %" PRIu64,
                  (uint64_t)calls_answered, WARMUP_N + call_n);

    gr_stats st;
    gr_system_stats(sys, &st);
    gr_inbox_close(inbox);
    bench_check(gr_system_shutdown(sys), "gr_system_shutdown");
    reap(&epmd_pid);
    for (int i = 0; i < GR_DL_COUNT; i++)
        if (i != GR_DL_BACKPRESSURE && st.dead_letters[i] != 0)
            bench_die("dist: %" PRIu64 " dead letters on A (%s)",
                      st.dead_letters[i],
                      gr_dead_reason_name((gr_dead_reason)i));

    double rt_g = (double)res.ping_ns[0] / (double)n;
    double rt_t = (double)res.ping_ns[1] / (double)term_n;
    double rt_e = (double)e.rt_ns / (double)n;
    double st_g = (double)res.stream_ns[0] / (double)n;
    double st_t = (double)res.stream_ns[1] / (double)term_n;
    double st_e = (double)e.stream_ns / (double)n;
    double call_g = (double)e.grove_call_ns / (double)call_n;
    double call_e = (double)e.call_ns / (double)call_n;
    result("dist_roundtrip", "grove", n, res.ping_ns[0], "roundtrip",
           "ns_per_roundtrip=%.1f ratio_to_erlang=%.2f "
           "term_ns_per_roundtrip=%.1f payload=grove workers=%u",
           rt_g, rt_e / rt_g, rt_t, st.workers);
    result("dist_roundtrip", "erlang", n, e.rt_ns, "roundtrip",
           "ns_per_roundtrip=%.1f", rt_e);
    result("dist_stream", "grove", n, res.stream_ns[0], "msg",
           "ns_per_msg=%.1f ratio_to_erlang=%.2f term_ns_per_msg=%.1f "
           "window=%" PRIu64 " ack_every=%" PRIu64 " backpressure=%" PRIu64
           " workers=%u",
           st_g, st_e / st_g, st_t, window, ack_every,
           res.backpressure[0] + res.backpressure[1], st.workers);
    result("dist_stream", "erlang", n, e.stream_ns, "msg",
           "ns_per_msg=%.1f window=%" PRIu64 " ack_every=%" PRIu64, st_e,
           window, ack_every);
    result("dist_call", "grove", call_n, e.grove_call_ns, "call",
           "ns_per_call=%.1f ratio_to_erlang=%.2f caller=erlang workers=%u",
           call_g, call_e / call_g, st.workers);
    result("dist_call", "erlang", call_n, e.call_ns, "call",
           "ns_per_call=%.1f caller=erlang", call_e);
    return 0;
}
