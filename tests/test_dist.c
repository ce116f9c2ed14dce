/*
 * Erlang distribution (<grove/dist.h>) against a real Erlang node: each
 * case runs its own epmd on a free port (ERL_EPMD_PORT) and an `erl`
 * whose script talks to a Grove system published as a C node:
 *   - Erlang sends to a registered Grove actor and gen_server:calls it;
 *     the payloads arrive in the documented msgpack mapping;
 *   - Grove tells a registered Erlang process and asks an Erlang
 *     gen_server (a '$gen_call' answered with gen_server:reply);
 *   - a Grove payload ({'$grove', Type, Bin}) passes unchanged;
 *   - a term that does not map is dropped and logged, and the connection
 *     goes on; a wrong cookie is refused;
 *   - a bad node name and a missing epmd fail the system's start.
 * Skipped (exit 77, which CTest reports as skipped) where erl, epmd or
 * erl_interface are missing.
 */
#include <grove/grove.h>
#include <grove/msgpack.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "helpers.h"

#define COOKIE "grove-test-cookie"
/* Longest an erl run may take (its start is about a second). */
#define ERL_LIMIT_S 60.0
/* Ends a script that only sends: Erlang connects in the background and
 * would halt before its sends left, so it waits for a call's answer,
 * which comes after them (one sender, one receiver: in order). */
#define SYNC "gen_server:call({echo, G}, sync),"

enum { MSG_RAW = 7 };

/* ---- epmd and erl ---------------------------------------------------------
 */

static char epmd_port[16];
static pid_t epmd_pid;
static char grove_node[64], erl_node[64];

static bool have(const char *prog)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        return 0;
    close(fd);
    return ntohs(sa.sin_port);
}

static bool epmd_answers(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(epmd_port))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Starts this case's epmd (a child, killed at exit) and names the nodes. */
static bool epmd_start(void)
{
    snprintf(epmd_port, sizeof epmd_port, "%u", free_port());
    setenv("ERL_EPMD_PORT", epmd_port, 1);
    snprintf(grove_node, sizeof grove_node, "grove%d@127.0.0.1", (int)getpid());
    snprintf(erl_node, sizeof erl_node, "erl%d@127.0.0.1", (int)getpid());
    epmd_pid = fork();
    if (epmd_pid == 0) {
        execlp("epmd", "epmd", "-port", epmd_port, (char *)NULL);
        _exit(127);
    }
    double until = test_now() + 10;
    while (!epmd_answers() && test_now() < until)
        sleep_ms(5);
    return epmd_answers();
}

static void epmd_stop(void)
{
    if (epmd_pid > 0) {
        kill(epmd_pid, SIGKILL);
        waitpid(epmd_pid, NULL, 0);
        epmd_pid = 0;
    }
}

/* Runs erl with script (its node erl_node, cookie cookie) and returns its
 * output (the caller frees), or NULL when it did not end in time. The
 * script's G is the Grove node's name. */
static char *erl_run(const char *cookie, const char *script)
{
    char eval[8192];
    snprintf(eval, sizeof eval,
             "G = '%s', try begin %s ok end catch C:E:S -> "
             "io:format(\"CRASH ~p ~p ~p~n\", [C, E, S]) end, halt().",
             grove_node, script);
    int out[2];
    if (pipe(out) != 0)
        return NULL;
    pid_t pid = fork();
    if (pid == 0) {
        setenv("ERL_CRASH_DUMP_SECONDS", "0", 1); /* No erl_crash.dump. */
        dup2(out[1], 1);
        dup2(out[1], 2);
        close(out[0]);
        execlp("erl", "erl", "-noshell", "-name", erl_node, "-setcookie",
               cookie, "-eval", eval, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    double until = test_now() + ERL_LIMIT_S;
    for (;;) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        int left = (int)((until - test_now()) * 1000);
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t k = read(out[0], buf + len, cap - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
        if (len == cap - 1)
            break;
    }
    buf[len] = '\0';
    close(out[0]);
    bool ended = test_now() < until;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (!ended) {
        fprintf(stderr, "erl did not end; it said:\n%s\n", buf);
        free(buf);
        return NULL;
    }
    fprintf(stderr, "erl said:\n%s", buf);
    return buf;
}

/* ---- the Grove side -------------------------------------------------------
 */

/* "echo": answers a request with ["ok", Request]; tells [ask, Pid, N]
 * asks Pid (an Erlang gen_server) N and tells the reply to the registered
 * Erlang process "ebox" on Erlang's node; everything else goes to the
 * inbox whose ref it was given. */
typedef struct echo {
    gr_ref inbox;
} echo;

static int echo_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    echo *e = state;
    if (len != sizeof e->inbox)
        return GR_EINVAL;
    memcpy(&e->inbox, arg, len);
    return gr_register(ctx, "echo");
}

/* Packs ["ok", <object in data>] into sb. */
static void pack_ok(msgpack_sbuffer *sb, const gr_msg *m)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str_with_body(&pk, "ok", 2);
    msgpack_sbuffer_write(sb, m->data, m->len);
}

static int echo_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    echo *e = state;
    if (m->type == GR_MSG_TERM && (m->flags & GR_MSG_REQUEST)) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (m->len == 7 && memcmp(m->data, "\xa6whoami", 7) == 0) {
            /* Its own pid. */
            unsigned char pid[16];
            gr_dist_ref_write(gr_self(ctx), pid);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_ext_with_body(&pk, pid, sizeof pid, GR_EXT_PID);
        } else {
            pack_ok(&sb, m);
        }
        int rc = gr_reply_msgpack(ctx, m, GR_MSG_TERM, &sb);
        msgpack_sbuffer_destroy(&sb);
        return rc;
    }
    if (m->type == GR_MSG_TERM && (m->flags & GR_MSG_REPLY)) {
        /* The Erlang server's answer: on to ebox, as it came. */
        char to[128];
        snprintf(to, sizeof to, "ebox@%s", erl_node);
        (void)gr_tell_name(ctx, to, GR_MSG_TERM, m->data, m->len);
        return GR_CONTINUE;
    }
    msgpack_unpacked u;
    if (m->type == GR_MSG_TERM && gr_msg_unpack(m, &u) == GR_OK) {
        const msgpack_object *o = &u.data;
        if (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 3 &&
            o->via.array.ptr[0].type == MSGPACK_OBJECT_STR &&
            o->via.array.ptr[0].via.str.size == 3 &&
            memcmp(o->via.array.ptr[0].via.str.ptr, "ask", 3) == 0 &&
            o->via.array.ptr[1].type == MSGPACK_OBJECT_EXT) {
            gr_ref srv;
            const msgpack_object_ext *x = &o->via.array.ptr[1].via.ext;
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_object(&pk, o->via.array.ptr[2]);
            uint64_t corr;
            int rc =
                x->type == GR_EXT_PID &&
                        gr_dist_ref_read(x->ptr, x->size, &srv) == GR_OK
                    ? gr_ask_msgpack(ctx, srv, GR_MSG_TERM, &sb, 5000, &corr)
                    : GR_EINVAL;
            msgpack_sbuffer_destroy(&sb);
            msgpack_unpacked_destroy(&u);
            return rc == GR_OK ? GR_CONTINUE : rc;
        }
        msgpack_unpacked_destroy(&u);
    }
    (void)gr_tell(ctx, e->inbox, m->type, m->data, m->len);
    return GR_CONTINUE;
}

static const gr_behaviour echo_b = {.name = "echo",
                                    .state_size = sizeof(echo),
                                    .init = echo_init,
                                    .handle = echo_handle};

static gr_system *sys;
static gr_inbox *inbox;

/* Starts epmd, the system (published as grove_node) and echo. */
static bool start(void)
{
    if (!epmd_start())
        return false;
    gr_config cfg = {.workers = 2,
                     .dist = {.node_name = grove_node, .cookie = COOKIE}};
    if (gr_system_start(&cfg, &sys) != GR_OK)
        return false;
    gr_ref e;
    if (gr_inbox_open(sys, &inbox) != GR_OK)
        return false;
    gr_ref in = gr_inbox_ref(inbox);
    return gr_system_spawn(sys, &echo_b, &in, sizeof in, &e) == GR_OK;
}

static void stop(void)
{
    gr_inbox_close(inbox);
    (void)gr_system_shutdown(sys);
    epmd_stop();
}

/* The next message in the inbox, as type and bytes; false on none. */
static bool next(uint32_t *type, msgpack_sbuffer *sb)
{
    gr_msg *m;
    if (gr_inbox_recv(inbox, &m, WAIT_MS) != GR_OK)
        return false;
    *type = m->type;
    msgpack_sbuffer_write(sb, m->data, m->len);
    gr_msg_free(m);
    return true;
}

/* ---- cases -----------------------------------------------------------------
 */

static void erlang_sends_and_calls(void)
{
    CHECK(start());
    char *out =
        erl_run(COOKIE, "{echo, G} ! {hello, 1, <<\"bin\">>, [1, 2], #{a => "
                        "1.5}, -7, true, undefined},"
                        "R = gen_server:call({echo, G}, {incr, 41}),"
                        "io:format(\"CALL ~p~n\", [R]),"
                        "R2 = gen_server:call({echo, G}, [x, \"str\"]),"
                        "io:format(\"CALL2 ~p~n\", [R2]),");
    CHECK(out != NULL);
    bool called = strstr(out, "CALL {ok,{incr,41}}") != NULL;
    bool called2 = strstr(out, "CALL2 {ok,{x,{115,116,114}}}") != NULL;
    free(out);
    CHECK(called);
    CHECK(called2);
    /* The tell, in the mapping. */
    msgpack_sbuffer want, got;
    msgpack_sbuffer_init(&want);
    msgpack_sbuffer_init(&got);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &want, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 8);
    msgpack_pack_str_with_body(&pk, "hello", 5);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_bin_with_body(&pk, "bin", 3);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 2);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_int(&pk, -7);
    msgpack_pack_true(&pk);
    msgpack_pack_nil(&pk);
    uint32_t type = 0;
    bool got_one = next(&type, &got);
    bool same =
        got.size == want.size && memcmp(got.data, want.data, got.size) == 0;
    msgpack_sbuffer_destroy(&want);
    msgpack_sbuffer_destroy(&got);
    stop();
    CHECK(got_one);
    CHECK_EQ(type, GR_MSG_TERM);
    CHECK(same);
}

static void grove_tells_and_asks_erlang(void)
{
    CHECK(start());
    /* A minimal gen_server: answers {'$gen_call', From, N} with N + 1. */
    char *out = erl_run(
        COOKIE, "register(ebox, self()),"
                "Srv = spawn(fun Loop() -> receive {'$gen_call', From, N} -> "
                "gen_server:reply(From, {pong, N + 1}), Loop() end end),"
                "{echo, G} ! {ask, Srv, 41},"
                "receive M -> io:format(\"GOT ~p~n\", [M]) after 10000 -> "
                "io:format(\"NOTHING~n\") end,");
    CHECK(out != NULL);
    bool got = strstr(out, "GOT {pong,42}") != NULL;
    free(out);
    stop();
    CHECK(got);
}

static void grove_payload_passes_unchanged(void)
{
    CHECK(start());
    char *out = erl_run(COOKIE, "{echo, G} ! {'$grove', 7, <<1, 2, 3>>},"
                                "{echo, G} ! {'$grove', 8, <<>>}," SYNC);
    CHECK(out != NULL);
    free(out);
    uint32_t type = 0;
    msgpack_sbuffer got;
    msgpack_sbuffer_init(&got);
    bool one = next(&type, &got);
    bool same = got.size == 3 && memcmp(got.data, "\1\2\3", 3) == 0;
    uint32_t type2 = 0;
    msgpack_sbuffer got2;
    msgpack_sbuffer_init(&got2);
    bool two = next(&type2, &got2);
    size_t len2 = got2.size;
    msgpack_sbuffer_destroy(&got);
    msgpack_sbuffer_destroy(&got2);
    stop();
    CHECK(one && two);
    CHECK_EQ(type, MSG_RAW);
    CHECK(same);
    CHECK_EQ(type2, MSG_RAW + 1);
    CHECK_EQ(len2, 0);
}

static void unmappable_term_dropped_connection_kept(void)
{
    CHECK(start());
    /* A ref does not map; the next message still arrives, and a call to
     * a name nobody has times out on the Erlang side. */
    char *out = erl_run(
        COOKIE, "{echo, G} ! {make_ref()},"
                "{echo, G} ! {self(), fun() -> ok end},"
                "{echo, G} ! after_them,"
                "R = catch gen_server:call({nobody, G}, x, 500),"
                "io:format(\"NOBODY ~p~n\", [element(1, element(2, R))]),");
    CHECK(out != NULL);
    bool timed_out = strstr(out, "NOBODY timeout") != NULL;
    free(out);
    uint32_t type = 0;
    msgpack_sbuffer got;
    msgpack_sbuffer_init(&got);
    bool one = next(&type, &got);
    bool after = got.size == 11 && memcmp(got.data,
                                          "\xaa"
                                          "after_them",
                                          11) == 0;
    msgpack_sbuffer_destroy(&got);
    stop();
    CHECK(timed_out);
    CHECK(one);
    CHECK(after);
}

static void wrong_cookie_refused(void)
{
    CHECK(start());
    char *out = erl_run("not-the-cookie",
                        "io:format(\"PING ~p~n\", [net_adm:ping(G)]),");
    CHECK(out != NULL);
    bool pang = strstr(out, "PING pang") != NULL;
    free(out);
    /* The right one still gets in. */
    out = erl_run(COOKIE, "io:format(\"PING ~p~n\", [net_adm:ping(G)]),");
    CHECK(out != NULL);
    bool pong = strstr(out, "PING pong") != NULL;
    free(out);
    stop();
    CHECK(pang);
    CHECK(pong);
}

/* A peer that stops reading (an erl stopped with SIGSTOP): sends to it
 * fill the socket, the write that blocks gives up after
 * connect_timeout_ms and the connection closes, so the thread is free
 * again and shutdown does not hang. */
static void stalled_peer_times_out(void)
{
    CHECK(epmd_start());
    struct capture cap;
    capture_init(&cap);
    gr_config cfg = {.workers = 2,
                     .log_level = GR_LOG_INFO,
                     .log_level_set = 1,
                     .log_fn = capture_fn,
                     .log_arg = &cap,
                     .dist = {.node_name = grove_node,
                              .cookie = COOKIE,
                              .connect_timeout_ms = 300}};
    CHECK(gr_system_start(&cfg, &sys) == GR_OK);
    char eval[512];
    snprintf(eval, sizeof eval,
             "register(ebox, self()), pong = net_adm:ping('%s'),"
             "io:format(\"READY~n\"), receive stop -> ok end.",
             grove_node);
    int out[2];
    CHECK(pipe(out) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("ERL_CRASH_DUMP_SECONDS", "0", 1);
        dup2(out[1], 1);
        close(out[0]);
        execlp("erl", "erl", "-noshell", "-name", erl_node, "-setcookie",
               COOKIE, "-eval", eval, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char said[256] = "";
    size_t len = 0;
    double until = test_now() + ERL_LIMIT_S;
    while (strstr(said, "READY") == NULL && len < sizeof said - 1) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        int left = (int)((until - test_now()) * 1000);
        ssize_t k;
        if (left <= 0 || poll(&p, 1, left) <= 0 ||
            (k = read(out[0], said + len, sizeof said - 1 - len)) <= 0)
            break;
        len += (size_t)k;
        said[len] = '\0';
    }
    bool ready = strstr(said, "READY") != NULL;
    kill(pid, SIGSTOP);
    /* More than the loopback socket buffers hold, 64 KiB at a time. */
    static char big[1 << 16];
    char to[128];
    snprintf(to, sizeof to, "ebox@%s", erl_node);
    until = test_now() + 30;
    bool dropped = false;
    while (ready && !dropped && test_now() < until) {
        int rc =
            gr_system_tell_name(sys, GR_REF_NONE, to, MSG_RAW, big, sizeof big);
        if (rc == GR_EBACKPRESSURE)
            sleep_ms(10);
        dropped =
            capture_count(&cap, GR_LOG_INFO, "disconnected", "send failed") > 0;
    }
    /* Dead now: connecting again fails at once. */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(out[0]);
    double t0 = test_now();
    (void)gr_system_shutdown(sys);
    double took = test_now() - t0;
    epmd_stop();
    if (!dropped)
        capture_dump(&cap);
    pthread_mutex_destroy(&cap.lock);
    CHECK(ready);
    CHECK(dropped);
    CHECK(took < 10);
}

static void bad_config_fails_start(void)
{
    gr_system *s = NULL;
    gr_config cfg = {.workers = 1,
                     .dist = {.node_name = "no-host-part", .cookie = COOKIE}};
    CHECK_EQ(gr_system_start(&cfg, &s), GR_EINVAL);
    cfg.dist.node_name = "grove@127.0.0.1";
    cfg.dist.listen = "not-an-address";
    CHECK_EQ(gr_system_start(&cfg, &s), GR_EINVAL);
    /* No epmd on this port. */
    snprintf(epmd_port, sizeof epmd_port, "%u", free_port());
    setenv("ERL_EPMD_PORT", epmd_port, 1);
    cfg.dist.listen = NULL;
    CHECK_EQ(gr_system_start(&cfg, &s), GR_ECONNREFUSED);
    CHECK(s == NULL);
}

static const struct test_case cases[] = {
    {"erlang_sends_and_calls", erlang_sends_and_calls},
    {"grove_tells_and_asks_erlang", grove_tells_and_asks_erlang},
    {"grove_payload_passes_unchanged", grove_payload_passes_unchanged},
    {"unmappable_term_dropped_connection_kept",
     unmappable_term_dropped_connection_kept},
    {"wrong_cookie_refused", wrong_cookie_refused},
    {"stalled_peer_times_out", stalled_peer_times_out},
    {"bad_config_fails_start", bad_config_fails_start}};

int main(int argc, char **argv)
{
    if (!have("erl") || !have("epmd")) {
        printf("skipped: erl and epmd are needed (apt-get install "
               "erlang-base)\n");
        return 77;
    }
    gr_system *s = NULL;
    gr_config cfg = {.dist = {.node_name = "probe"}};
    if (gr_system_start(&cfg, &s) == GR_ENOTSUP) {
        printf("skipped: Grove was built without erl_interface\n");
        return 77;
    }
    return test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
