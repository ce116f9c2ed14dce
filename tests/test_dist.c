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
#include <dirent.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "erl_env.h"
#include "fd_shortage.h"
#include "helpers.h"

#define COOKIE "grove-test-cookie"
/* Longest an erl run may take (its start is about a second). */
#define ERL_LIMIT_S 60.0
/* Ends a script that only sends: Erlang connects in the background and
 * would halt before its sends left, so it waits for a call's answer,
 * which comes after them (one sender, one receiver: in order). */
#define SYNC "gen_server:call({echo, G}, sync),"
/* Defines Monitored(P, Want): whether anyone monitors process P, once
 * that is Want or 5 s have passed. */
#define MONITORED                                                              \
    "Monitored = fun Wait(P, Want, N) -> "                                     \
    "  {monitored_by, By} = process_info(P, monitored_by),"                    \
    "  Is = By =/= [],"                                                        \
    "  if Is =:= Want; N =:= 0 -> Is;"                                         \
    "     true -> receive after 10 -> Wait(P, Want, N - 1) end"                \
    "  end end,"

enum { MSG_RAW = 7 };

/* ---- epmd and erl ---------------------------------------------------------
 */

static char epmd_port[16];
static pid_t epmd_pid;
static char grove_node[64], erl_node[64];

static bool epmd_answers(void)
{
    return erl_port_answers((uint16_t)atoi(epmd_port));
}

/* Starts this case's epmd (a child, killed at exit) and names the nodes. */
static bool epmd_start(void)
{
    snprintf(epmd_port, sizeof epmd_port, "%u", erl_free_port());
    setenv("ERL_EPMD_PORT", epmd_port, 1);
    snprintf(grove_node, sizeof grove_node, "grove%d@127.0.0.1", (int)getpid());
    snprintf(erl_node, sizeof erl_node, "erl%d@127.0.0.1", (int)getpid());
    pid_t parent = getpid();
    epmd_pid = fork();
    if (epmd_pid == 0) {
        erl_die_with(parent);
        /* Its port on the rest of 127/8 stays free: a test may put a
         * silent epmd of its own there (shutdown_ends_connects_under_way). */
        setenv("ERL_EPMD_ADDRESS", "127.0.0.1", 1);
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

/* An erl running a script, and what it has said so far. */
typedef struct erl {
    pid_t pid;
    int fd;
    int in; /* Its standard input (io:get_line reads what is written). */
    char *out;
    size_t len;
} erl;

/* Starts erl with script (its node erl_node, cookie cookie); the script's
 * G is the Grove node's name. */
static bool erl_start(erl *e, const char *cookie, const char *script)
{
    char eval[8192];
    snprintf(eval, sizeof eval,
             "G = '%s', try begin %s ok end catch C:E:S -> "
             "io:format(\"CRASH ~p ~p ~p~n\", [C, E, S]) end, halt().",
             grove_node, script);
    int out[2], in[2];
    if (pipe(out) != 0)
        return false;
    if (pipe(in) != 0) {
        close(out[0]);
        close(out[1]);
        return false;
    }
    pid_t parent = getpid();
    e->pid = fork();
    if (e->pid == 0) {
        erl_die_with(parent);
        setenv("ERL_CRASH_DUMP_SECONDS", "0", 1); /* No erl_crash.dump. */
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        close(in[1]);
        close(out[0]);
        execlp("erl", "erl", "-noshell", "-name", erl_node, "-setcookie",
               cookie, "-eval", eval, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    e->fd = out[0];
    e->in = in[1];
    e->len = 0;
    e->out = malloc(1 << 16);
    e->out[0] = '\0';
    return e->pid > 0 && e->out != NULL;
}

/* Reads what erl says until it says `until` (NULL: until it ends);
 * false when that does not come within ERL_LIMIT_S. */
static bool erl_read(erl *e, const char *until)
{
    double limit = test_now() + ERL_LIMIT_S;
    while (until == NULL || strstr(e->out, until) == NULL) {
        struct pollfd p = {.fd = e->fd, .events = POLLIN};
        int left = (int)((limit - test_now()) * 1000);
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return false;
        ssize_t k = read(e->fd, e->out + e->len, (1 << 16) - 1 - e->len);
        if (k <= 0)
            return until == NULL;
        e->len += (size_t)k;
        e->out[e->len] = '\0';
        if (e->len == (1 << 16) - 1)
            return false;
    }
    return true;
}

/* Kills and reaps erl; returns what it said (the caller frees). */
static char *erl_end(erl *e)
{
    close(e->in);
    close(e->fd);
    kill(e->pid, SIGKILL);
    waitpid(e->pid, NULL, 0);
    fprintf(stderr, "erl said:\n%s", e->out);
    return e->out;
}

/* Runs erl with script to its end and returns its output (the caller
 * frees), or NULL when it did not end in time. */
static char *erl_run(const char *cookie, const char *script)
{
    erl e;
    if (!erl_start(&e, cookie, script))
        return NULL;
    bool ended = erl_read(&e, NULL);
    char *out = erl_end(&e);
    if (!ended) {
        fprintf(stderr, "erl did not end\n");
        free(out);
        return NULL;
    }
    return out;
}

/* ---- the Grove side -------------------------------------------------------
 */

/* "echo": answers a request with ["ok", Request]; tells [ask, Pid, N]
 * asks Pid (an Erlang gen_server) N and tells the reply to the registered
 * Erlang process "ebox" on Erlang's node; everything else goes to the
 * inbox whose ref it was given. */
typedef struct echo {
    gr_ref inbox;
    uint64_t monitor; /* The watcher's latest monitor. */
} echo;

static bool answer_whoami(gr_ctx *ctx, const gr_msg *m);

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
        if (answer_whoami(ctx, m))
            return GR_CONTINUE;
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        pack_ok(&sb, m);
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

/* "watcher" traps exits and reports each EXIT (MSG_EXIT_SEEN, a
 * gr_exit_msg) and DOWN (MSG_DOWN_SEEN, a gr_down) to the inbox. Its
 * requests: "whoami" (its pid), "hold" (never answered; "holding" goes
 * to ebox); its tells: [link | unlink | monitor | demonitor, Pid] (the
 * latest monitor), [die, Reason] (stops with GR_ESHUTDOWN for
 * "shutdown", else GR_EFAILED with Reason as its text). */
enum { MSG_EXIT_SEEN = 20, MSG_DOWN_SEEN, MSG_MONITOR_RC, MSG_ASK_FAILED_SEEN };

static int watcher_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    echo *e = state;
    if (len != sizeof e->inbox)
        return GR_EINVAL;
    memcpy(&e->inbox, arg, len);
    (void)gr_trap_exit(ctx, 1);
    return gr_register(ctx, "watcher");
}

/* Reads a [Cmd, Arg] tell: Cmd into cmd (size bytes), Arg as a pid into
 * *pid or as a str into text. */
static bool read_cmd(const gr_msg *m, char *cmd, size_t size, gr_ref *pid,
                     char *text, size_t text_size)
{
    msgpack_unpacked u;
    if (m->type != GR_MSG_TERM || gr_msg_unpack(m, &u) != GR_OK)
        return false;
    const msgpack_object *o = &u.data;
    bool ok = o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2 &&
              o->via.array.ptr[0].type == MSGPACK_OBJECT_STR &&
              o->via.array.ptr[0].via.str.size < size;
    if (ok) {
        const msgpack_object *c = &o->via.array.ptr[0], *a = c + 1;
        snprintf(cmd, size, "%.*s", (int)c->via.str.size, c->via.str.ptr);
        if (a->type == MSGPACK_OBJECT_EXT)
            ok =
                gr_dist_ref_read(a->via.ext.ptr, a->via.ext.size, pid) == GR_OK;
        else if (a->type == MSGPACK_OBJECT_STR)
            snprintf(text, text_size, "%.*s", (int)a->via.str.size,
                     a->via.str.ptr);
    }
    msgpack_unpacked_destroy(&u);
    return ok;
}

/* Answers a "whoami" request with its pid; false for any other message. */
static bool answer_whoami(gr_ctx *ctx, const gr_msg *m)
{
    if (m->type != GR_MSG_TERM || !(m->flags & GR_MSG_REQUEST) || m->len != 7 ||
        memcmp(m->data, "\xa6whoami", 7) != 0)
        return false;
    unsigned char pid[16];
    gr_dist_ref_write(gr_self(ctx), pid);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_ext_with_body(&pk, pid, sizeof pid, GR_EXT_PID);
    (void)gr_reply_msgpack(ctx, m, GR_MSG_TERM, &sb);
    msgpack_sbuffer_destroy(&sb);
    return true;
}

static int watcher_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    echo *e = state;
    if (answer_whoami(ctx, m))
        return GR_CONTINUE;
    if (m->type == GR_MSG_TERM && (m->flags & GR_MSG_REQUEST) && m->len == 5 &&
        memcmp(m->data, "\xa4hold", 5) == 0) {
        char to[128];
        snprintf(to, sizeof to, "ebox@%s", erl_node);
        return gr_tell_name(ctx, to, GR_MSG_TERM, "\xa7holding", 8);
    }
    gr_reason failed;
    if (gr_ask_failed_read(m, &failed) == GR_OK)
        return gr_tell(ctx, e->inbox, MSG_ASK_FAILED_SEEN, &failed,
                       sizeof failed);
    if (m->type == GR_MSG_EXIT || m->type == GR_MSG_DOWN) {
        /* Told to the inbox, and to Erlang's ebox, which may wait. */
        char to[128];
        snprintf(to, sizeof to, "ebox@%s", erl_node);
        bool exit = m->type == GR_MSG_EXIT;
        (void)gr_tell_name(ctx, to, GR_MSG_TERM,
                           exit ? "\xa9"
                                  "exit_seen"
                                : "\xa9"
                                  "down_seen",
                           10);
        return gr_tell(ctx, e->inbox, exit ? MSG_EXIT_SEEN : MSG_DOWN_SEEN,
                       m->data, m->len);
    }
    char cmd[16], text[GR_REASON_TEXT_MAX + 1] = "";
    gr_ref pid = GR_REF_NONE;
    if (!read_cmd(m, cmd, sizeof cmd, &pid, text, sizeof text))
        return GR_CONTINUE;
    if (strcmp(cmd, "link") == 0)
        return gr_link(ctx, pid);
    if (strcmp(cmd, "unlink") == 0)
        return gr_unlink(ctx, pid);
    if (strcmp(cmd, "ask") == 0) { /* An ask nobody answers. */
        uint64_t corr;
        return gr_ask(ctx, pid, GR_MSG_TERM, "\xc0", 1, 60000, &corr);
    }
    if (strcmp(cmd, "monitor") == 0) {
        int32_t rc = gr_monitor(ctx, pid, &e->monitor);
        return gr_tell(ctx, e->inbox, MSG_MONITOR_RC, &rc, sizeof rc);
    }
    if (strcmp(cmd, "demonitor") == 0)
        return gr_demonitor(ctx, e->monitor) == GR_OK ? GR_CONTINUE
                                                      : GR_EFAILED;
    if (strcmp(cmd, "die") == 0) {
        gr_reason why = gr_reason_of(GR_EFAILED);
        if (strncmp(text, "shutdown", 8) == 0) { /* "shutdown[:text]" */
            why.code = GR_ESHUTDOWN;
            if (text[8] == ':')
                snprintf(why.text, sizeof why.text, "%s", text + 9);
        } else {
            snprintf(why.text, sizeof why.text, "%s", text);
        }
        return gr_stop_with(ctx, &why);
    }
    return GR_CONTINUE;
}

static const gr_behaviour watcher_b = {.name = "watcher",
                                       .state_size = sizeof(echo),
                                       .init = watcher_init,
                                       .handle = watcher_handle};

static gr_system *sys;
static gr_inbox *inbox;

/* Starts epmd, the system (published as grove_node) and echo. */
/* gr_dist_config.connect_timeout_ms for start(); 0: the default. */
static unsigned connect_timeout_ms;

static bool start(void)
{
    if (!epmd_start())
        return false;
    gr_config cfg = {.workers = 2,
                     .dist = {.node_name = grove_node,
                              .cookie = COOKIE,
                              .connect_timeout_ms = connect_timeout_ms}};
    if (gr_system_start(&cfg, &sys) != GR_OK)
        return false;
    gr_ref e;
    if (gr_inbox_open(sys, &inbox) != GR_OK)
        return false;
    gr_ref in = gr_inbox_ref(inbox);
    return gr_system_spawn(sys, &echo_b, &in, sizeof in, &e) == GR_OK &&
           gr_system_spawn(sys, &watcher_b, &in, sizeof in, &e) == GR_OK;
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
                "io:format(\"NOTHING~n\") end,"
        /* The ask's monitor came down with its answer. */
        MONITORED
                "io:format(\"MONITORED ~p~n\", [Monitored(Srv, false, 500)]),");
    CHECK(out != NULL);
    bool got = strstr(out, "GOT {pong,42}") != NULL;
    bool demonitored = strstr(out, "MONITORED false") != NULL;
    free(out);
    stop();
    CHECK(got);
    CHECK(demonitored);
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
     * a name nobody has fails at once (its monitor's DOWN: noproc). */
    char *out = erl_run(
        COOKIE, "{echo, G} ! {make_ref()},"
                "{echo, G} ! {self(), fun() -> ok end},"
                "{echo, G} ! after_them,"
                "R = catch gen_server:call({nobody, G}, x, 500),"
                "io:format(\"NOBODY ~p~n\", [element(1, element(2, R))]),");
    CHECK(out != NULL);
    bool noproc = strstr(out, "NOBODY noproc") != NULL;
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
    CHECK(noproc);
    CHECK(one);
    CHECK(after);
}

/* The next message in the inbox, which must be of type want, into out
 * (size bytes). */
static bool next_of(uint32_t want, void *out, size_t size)
{
    gr_msg *m;
    if (gr_inbox_recv(inbox, &m, WAIT_MS) != GR_OK)
        return false;
    bool ok = m->type == want && m->len == size;
    if (ok)
        memcpy(out, m->data, size);
    else
        fprintf(stderr, "  got type %u (%zu bytes), not %u\n", m->type, m->len,
                want);
    gr_msg_free(m);
    return ok;
}

static void whereis_then_call_erlang(void)
{
    CHECK(start());
    erl e;
    CHECK(erl_start(&e, COOKIE,
                    "register(srv, spawn(fun Loop() -> receive "
                    "{'$gen_call', From, N} -> gen_server:reply(From, "
                    "{pong, N + 1}), Loop() end end)),"
                    "io:format(\"READY~n\"),"
                    "receive never -> ok end,"));
    bool ready = erl_read(&e, "READY");
    char name[96];
    snprintf(name, sizeof name, "srv@%s", erl_node);
    gr_ref srv = GR_REF_NONE, none;
    int found = ready ? gr_whereis_any(sys, name, 5000, &srv) : -1;
    snprintf(name, sizeof name, "nosuch@%s", erl_node);
    int missing = ready ? gr_whereis_any(sys, name, 5000, &none) : -1;
    gr_msg *reply = NULL;
    int called = found == GR_OK
                     ? gr_call(sys, srv, GR_MSG_TERM, "\x29", 1, 5000, &reply)
                     : -1;
    /* {pong, 42}: ["pong", 42]. */
    bool pong = called == GR_OK && reply->type == GR_MSG_TERM &&
                reply->len == 7 &&
                memcmp(reply->data, "\x92\xa4pong\x2a", 7) == 0;
    gr_msg_free(reply);
    free(erl_end(&e));
    stop();
    CHECK(ready);
    CHECK_EQ(found, GR_OK);
    CHECK_EQ(missing, GR_ENOTFOUND);
    CHECK_EQ(called, GR_OK);
    CHECK(pong);
}

static void links_both_ways(void)
{
    CHECK(start());
    char *out = erl_run(
        COOKIE,
        "register(ebox, self()),"
        "W = gen_server:call({watcher, G}, whoami),"
        /* An Erlang process linked to W exits: W, trapping, sees it. */
        "P = spawn(fun() -> link(W), receive go -> exit(boom) end end),"
        "P ! go,"
        "receive exit_seen -> ok after 5000 -> io:format(\"NOEXIT1~n\") end,"
        /* W links to us and dies: we, trapping, see its reason. */
        "process_flag(trap_exit, true),"
        "{watcher, G} ! {link, self()},"
        "gen_server:call({watcher, G}, whoami),"
        "{watcher, G} ! {die, shutdown},"
        "receive {'EXIT', W, R} -> io:format(\"EXIT ~p~n\", [R]) after 5000 "
        "-> io:format(\"NOEXIT2~n\") end,");
    CHECK(out != NULL);
    bool exited = strstr(out, "EXIT shutdown") != NULL;
    free(out);
    gr_exit_msg x;
    bool seen = next_of(MSG_EXIT_SEEN, &x, sizeof x);
    /* An Erlang pid prints with its node's name. */
    char text[GR_REF_FORMAT_MAX];
    gr_ref_format(sys, x.from, text, sizeof text);
    bool named = strstr(text, erl_node) != NULL;
    fprintf(stderr, "  the exited pid: %s\n", text);
    stop();
    CHECK(exited);
    CHECK(seen);
    CHECK(named);
    CHECK_EQ(x.linked, 1);
    CHECK_EQ(x.reason.code, GR_EFAILED);
    CHECK(strcmp(x.reason.text, "boom") == 0);
}

/* Erlang monitors a Grove actor (by pid, by name, one demonitored, one of
 * a name nobody has) and sees each DOWN with the actor's reason; a
 * gen_server:call to it fails when it dies instead of timing out. */
static void erlang_monitors_grove(void)
{
    CHECK(start());
    char *out = erl_run(
        COOKIE,
        "register(ebox, self()),"
        "W = gen_server:call({watcher, G}, whoami),"
        "R1 = erlang:monitor(process, W),"
        "R2 = erlang:monitor(process, {watcher, G}),"
        "R3 = erlang:monitor(process, W),"
        "true = erlang:demonitor(R3),"
        "R4 = erlang:monitor(process, {nobody, G}),"
        "receive {'DOWN', R4, process, {nobody, _}, W4} -> "
        "io:format(\"DOWN4 ~p~n\", [W4]) after 5000 -> ok end,"
        "Self = self(),"
        "spawn(fun() -> Self ! {called, catch gen_server:call({watcher, G}, "
        "hold, 20000)} end),"
        "receive holding -> ok after 5000 -> io:format(\"NOHOLD~n\") end,"
        "{watcher, G} ! {die, 'shutdown:bye'},"
        "receive {'DOWN', R1, process, W, W1} -> io:format(\"DOWN1 ~p~n\", "
        "[W1]) after 5000 -> ok end,"
        "receive {'DOWN', R2, process, {watcher, _}, W2} -> "
        "io:format(\"DOWN2 ~p~n\", [W2]) after 5000 -> ok end,"
        "receive {called, {'EXIT', {CallWhy, _}}} -> io:format(\"CALL ~p~n\", "
        "[CallWhy]) "
        "after 5000 -> ok end," SYNC
        "receive {'DOWN', R3, _, _, _} -> io:format(\"DOWN3~n\") after 0 -> "
        "ok end,");
    CHECK(out != NULL);
    bool noproc = strstr(out, "DOWN4 noproc") != NULL;
    bool held = strstr(out, "NOHOLD") == NULL;
    /* A shutdown with a text stays a clean one: {shutdown, <<Text>>}. */
    bool down1 = strstr(out, "DOWN1 {shutdown,<<\"bye\">>}") != NULL;
    bool down2 = strstr(out, "DOWN2 {shutdown,<<\"bye\">>}") != NULL;
    bool call_failed = strstr(out, "CALL {shutdown,<<\"bye\">>}") != NULL;
    bool demonitored = strstr(out, "DOWN3") == NULL;
    free(out);
    stop();
    CHECK(noproc);
    CHECK(held);
    CHECK(down1);
    CHECK(down2);
    CHECK(call_failed);
    CHECK(demonitored);
}

/* A Grove actor's ask of an Erlang process is monitored, as
 * gen_server:call monitors: the server's death fails it at once with the
 * server's reason (or noproc, for one gone already), and an asker that
 * stops waiting (here: it exits; a timeout takes the same path) takes
 * its monitor down. */
static void grove_asks_are_monitored(void)
{
    CHECK(start());
    char *out = erl_run(
        COOKIE, "register(ebox, self()),"
                "Crash = spawn(fun() -> receive {'$gen_call', _, _} -> "
                "exit(crashed) end end),"
                "{watcher, G} ! {ask, Crash},"
                "Dead = spawn(fun() -> ok end),"
                "Rd = erlang:monitor(process, Dead),"
                "receive {'DOWN', Rd, _, _, _} -> ok end,"
                "{watcher, G} ! {ask, Dead},"
                "Mute = spawn(fun() -> receive never -> ok end end),"
                "{watcher, G} ! {ask, Mute}," MONITORED
                "io:format(\"ASKED ~p~n\", [Monitored(Mute, true, 500)]),"
                "{watcher, G} ! {die, shutdown},"
                "io:format(\"GONE ~p~n\", [Monitored(Mute, false, 500)]),");
    CHECK(out != NULL);
    bool asked = strstr(out, "ASKED true") != NULL;
    bool forgotten = strstr(out, "GONE false") != NULL;
    free(out);
    gr_reason r[2] = {0};
    bool failed = next_of(MSG_ASK_FAILED_SEEN, &r[0], sizeof r[0]) &&
                  next_of(MSG_ASK_FAILED_SEEN, &r[1], sizeof r[1]);
    stop();
    CHECK(asked);
    CHECK(forgotten);
    CHECK(failed);
    /* In either order. */
    const gr_reason *crashed = r[0].code == GR_EFAILED ? &r[0] : &r[1];
    const gr_reason *gone = crashed == &r[0] ? &r[1] : &r[0];
    CHECK_EQ(crashed->code, GR_EFAILED);
    CHECK(strcmp(crashed->text, "crashed") == 0);
    CHECK_EQ(gone->code, GR_ENOACTOR);
}

/* A Grove actor monitors Erlang processes: one that exits (DOWN with its
 * reason), one already gone (noproc), and one it demonitors (Erlang's
 * process_info shows the monitor come and go). */
static void grove_monitors_erlang(void)
{
    CHECK(start());
    char *out = erl_run(
        COOKIE,
        "register(ebox, self()),"
        "W = gen_server:call({watcher, G}, whoami),"
        "P = spawn(fun() -> receive go -> exit(boom) end end),"
        "{watcher, G} ! {monitor, P}," MONITORED
        "io:format(\"WATCHED ~p~n\", [Monitored(P, true, 500)]),"
        "P ! go,"
        "receive down_seen -> ok after 5000 -> io:format(\"NODOWN~n\") end,"
        "D = spawn(fun() -> ok end),"
        "Rd = erlang:monitor(process, D),"
        "receive {'DOWN', Rd, _, _, _} -> ok end,"
        "{watcher, G} ! {monitor, D},"
        "receive down_seen -> ok after 5000 -> io:format(\"NODOWN2~n\") end,"
        "Q = spawn(fun() -> receive never -> ok end end),"
        "{watcher, G} ! {monitor, Q},"
        "io:format(\"WATCHED2 ~p~n\", [Monitored(Q, true, 500)]),"
        "{watcher, G} ! {demonitor, Q},"
        "io:format(\"WATCHED3 ~p~n\", [Monitored(Q, false, 500)]),");
    CHECK(out != NULL);
    bool watched = strstr(out, "WATCHED true") != NULL;
    bool downs = strstr(out, "NODOWN") == NULL;
    bool watched2 = strstr(out, "WATCHED2 true") != NULL;
    bool unwatched = strstr(out, "WATCHED3 false") != NULL;
    free(out);
    int32_t rc[3] = {-1, -1, -1};
    gr_down boom = {0}, gone = {0};
    bool told = next_of(MSG_MONITOR_RC, &rc[0], sizeof rc[0]) &&
                next_of(MSG_DOWN_SEEN, &boom, sizeof boom) &&
                next_of(MSG_MONITOR_RC, &rc[1], sizeof rc[1]) &&
                next_of(MSG_DOWN_SEEN, &gone, sizeof gone) &&
                next_of(MSG_MONITOR_RC, &rc[2], sizeof rc[2]);
    char text[GR_REF_FORMAT_MAX];
    gr_ref_format(sys, boom.target, text, sizeof text);
    bool named = strstr(text, erl_node) != NULL;
    stop();
    CHECK(watched);
    CHECK(downs);
    CHECK(watched2);
    CHECK(unwatched);
    CHECK(told);
    CHECK_EQ(rc[0], GR_OK);
    CHECK_EQ(boom.reason.code, GR_EFAILED);
    CHECK(strcmp(boom.reason.text, "boom") == 0);
    CHECK(named);
    CHECK_EQ(rc[1], GR_OK);
    CHECK_EQ(gone.reason.code, GR_ENOACTOR);
    CHECK_EQ(rc[2], GR_OK);
}

/* An ask of a pid on a node that cannot be reached fails with
 * noconnection at once (it timed out, and an infinite one hung). */
static void ask_to_unreachable_node_fails(void)
{
    CHECK(start());
    char *out = erl_run(COOKIE, "Ghost = binary_to_term(<<131, $X, $w, 15, "
                                "\"ghost@127.0.0.1\", 1:32, 0:32, 1:32>>),"
                                "{watcher, G} ! {ask, Ghost}," SYNC);
    CHECK(out != NULL);
    free(out);
    gr_reason failed = {0};
    bool told = next_of(MSG_ASK_FAILED_SEEN, &failed, sizeof failed);
    stop();
    CHECK(told);
    CHECK_EQ(failed.code, GR_ENOCONNECTION);
}

/* A socket connected to the test's epmd; -1 when it cannot be. */
static int epmd_connect(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(epmd_port))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* The port epmd gives for `alive` (PORT_PLEASE2_REQ); -1 when none. */
static int epmd_port_of(const char *alive)
{
    size_t n = strlen(alive);
    unsigned char req[64] = {0, (unsigned char)(n + 1), 122};
    unsigned char resp[8];
    if (n > 32)
        return -1;
    memcpy(req + 3, alive, n);
    int fd = epmd_connect();
    bool ok = fd >= 0 && write(fd, req, n + 3) == (ssize_t)(n + 3) &&
              read(fd, resp, 4) == 4 && resp[0] == 119 && resp[1] == 0;
    if (fd >= 0)
        close(fd);
    return ok ? resp[2] << 8 | resp[3] : -1;
}

/* The port this system listens on, as epmd gives it; -1 when none. */
static int grove_port(void)
{
    char alive[64];
    snprintf(alive, sizeof alive, "%.*s", (int)strcspn(grove_node, "@"),
             grove_node);
    return epmd_port_of(alive);
}

/* Connects socket fd to this system's listener at port; false when it
 * cannot. */
static bool connect_to(int fd, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return fd >= 0 && port > 0 &&
           connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
}

/* A client connected to this system's listener that says nothing; -1
 * when it cannot connect. */
static int silent_client(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && !connect_to(fd, grove_port())) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Registers `alive` in the test's epmd at port (ALIVE2_REQ, as a hidden
 * node); the name stays while the returned socket is open; -1 when epmd
 * refuses. */
static int epmd_register(const char *alive, int port)
{
    size_t n = strlen(alive);
    unsigned char req[64];
    size_t len = 13 + n;
    if (n > 32)
        return -1;
    unsigned char *p = req;
    *p++ = (unsigned char)(len >> 8);
    *p++ = (unsigned char)len;
    *p++ = 120; /* ALIVE2_REQ */
    *p++ = (unsigned char)(port >> 8);
    *p++ = (unsigned char)port;
    *p++ = 'H';                             /* Hidden. */
    *p++ = 0;                               /* TCP/IPv4. */
    *p++ = 0, *p++ = 6, *p++ = 0, *p++ = 5; /* Versions 6 and 5. */
    *p++ = 0;
    *p++ = (unsigned char)n;
    memcpy(p, alive, n);
    p += n;
    *p++ = 0, *p++ = 0; /* No extra. */
    int fd = epmd_connect();
    unsigned char resp[8];
    if (fd < 0 || write(fd, req, (size_t)(p - req)) != p - req ||
        read(fd, resp, sizeof resp) < 2 || resp[1] != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* A silent listener (accepts nothing, says nothing) registered in the
 * test's epmd as `alive`: *listener and the registration's socket,
 * which hold it while open; false when it cannot be made. */
static bool silent_node(const char *alive, int *listener, int *reg)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    *listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    *reg = -1;
    if (*listener < 0 ||
        bind(*listener, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(*listener, 8) != 0 ||
        getsockname(*listener, (struct sockaddr *)&sa, &sl) != 0)
        return false;
    *reg = epmd_register(alive, ntohs(sa.sin_port));
    return *reg >= 0;
}

/* Nodes that never answer their handshakes (listeners that accept
 * nothing, registered in epmd as "hole" and "hole2"), and SILENT clients
 * that connect to Grove and say nothing, hold up nothing else: while
 * Grove waits out their handshakes (eight at once, more than the
 * connector threads it starts with), an Erlang node connects to Grove
 * (Erlang gives up after 7 s, less than any of those waits) and calls
 * it, and the sends to the holes fail only after. */
enum { SILENT = 6 };
static void silent_nodes_hold_up_nothing(void)
{
    connect_timeout_ms = 8000;
    bool started = start();
    connect_timeout_ms = 0;
    CHECK(started);
    int hole[2] = {-1, -1}, reg[2] = {-1, -1};
    bool made = silent_node("hole", &hole[0], &reg[0]) &&
                silent_node("hole2", &hole[1], &reg[1]);
    int sent[2] = {gr_system_tell_name(sys, GR_REF_NONE, "x@hole@127.0.0.1",
                                       GR_MSG_TERM, "\xa3hey", 4),
                   gr_system_tell_name(sys, GR_REF_NONE, "x@hole2@127.0.0.1",
                                       GR_MSG_TERM, "\xa3hey", 4)};
    int silent[SILENT];
    bool all_silent = made;
    for (int i = 0; i < SILENT; i++)
        all_silent =
            (silent[i] = made ? silent_client() : -1) >= 0 && all_silent;
    char *out = all_silent
                    ? erl_run(COOKIE, "R = gen_server:call({echo, G}, ping),"
                                      "io:format(\"PONG ~p~n\", [R]),")
                    : NULL;
    gr_stats st;
    gr_system_stats(sys, &st);
    uint64_t lost_before = st.dead_letters[GR_DL_NODE_DOWN];
    bool ponged = out != NULL && strstr(out, "PONG {ok,ping}") != NULL;
    free(out);
    stop();
    for (int i = 0; i < SILENT; i++)
        if (silent[i] >= 0)
            close(silent[i]);
    for (int i = 0; i < 2; i++) {
        if (reg[i] >= 0)
            close(reg[i]);
        if (hole[i] >= 0)
            close(hole[i]);
    }
    CHECK(made);
    CHECK(all_silent);
    CHECK_EQ(sent[0], GR_OK);
    CHECK_EQ(sent[1], GR_OK);
    CHECK(ponged);
    CHECK_EQ(lost_before, 0); /* Both connects were still waiting. */
}

/* Starts epmd and the system (published as grove_node, with a 1 MiB
 * link_buffer and connect_timeout_ms ms, 0: the default), its log lines
 * kept in *cap from info up. */
static bool start_logged_here(struct capture *cap, unsigned connect_timeout_ms);

static bool start_logged(struct capture *cap, unsigned connect_timeout_ms)
{
    return epmd_start() && start_logged_here(cap, connect_timeout_ms);
}

/* start_logged with the epmd already running (erl_interface keeps the
 * first epmd port it was given for the rest of the process). */
static bool start_logged_here(struct capture *cap, unsigned connect_timeout_ms)
{
    capture_init(cap);
    gr_config cfg = {.workers = 2,
                     .log_level = GR_LOG_INFO,
                     .log_level_set = 1,
                     .log_fn = capture_fn,
                     .log_arg = cap,
                     .link_buffer = 1 << 20,
                     .dist = {.node_name = grove_node,
                              .cookie = COOKIE,
                              .connect_timeout_ms = connect_timeout_ms}};
    return gr_system_start(&cfg, &sys) == GR_OK;
}

/* start_logged, then the inbox and echo, as start() has them. */
static bool start_logged_echo(struct capture *cap, unsigned connect_timeout_ms)
{
    gr_ref e;
    if (!start_logged(cap, connect_timeout_ms) ||
        gr_inbox_open(sys, &inbox) != GR_OK)
        return false;
    gr_ref in = gr_inbox_ref(inbox);
    return gr_system_spawn(sys, &echo_b, &in, sizeof in, &e) == GR_OK;
}

/* A flood of silent clients, more than the 64 handshakes that may wait
 * at once, keeps no node out: a connection past the limit cuts the
 * oldest handshake short (logged), or is refused while those cut are
 * still ending, so an Erlang node that connects after the flood is
 * served and its call answered. */
enum { FLOOD = 80 };
static void silent_flood_keeps_no_node_out(void)
{
    struct capture cap;
    CHECK(start_logged_echo(&cap, 30000));
    int flood[FLOOD];
    bool connected = true;
    for (int i = 0; i < FLOOD; i++)
        connected = (flood[i] = silent_client()) >= 0 && connected;
    /* Every one past the 64th has been taken: cut short or refused. */
    unsigned cut = 0, refused = 0;
    for (double until = test_now() + 10;
         cut + refused < FLOOD - 64 && test_now() < until; sleep_ms(1)) {
        cut = capture_count(&cap, GR_LOG_WARN, "cut short", NULL);
        refused =
            capture_count(&cap, GR_LOG_WARN, "refused", "under way already");
    }
    char *out = connected
                    ? erl_run(COOKIE, "R = gen_server:call({echo, G}, ping),"
                                      "io:format(\"PONG ~p~n\", [R]),")
                    : NULL;
    bool ponged = out != NULL && strstr(out, "PONG {ok,ping}") != NULL;
    if (!ponged) {
        fprintf(stderr, "erl said:\n%s\n", out != NULL ? out : "(nothing)");
        capture_dump(&cap);
    }
    free(out);
    for (int i = 0; i < FLOOD; i++)
        if (flood[i] >= 0)
            close(flood[i]);
    gr_inbox_close(inbox);
    (void)gr_system_shutdown(sys);
    epmd_stop();
    pthread_mutex_destroy(&cap.lock);
    CHECK(connected);
    CHECK(cut > 0);
    CHECK_EQ(cut + refused, FLOOD - 64);
    CHECK(ponged);
}

/* ---- connects both ways at once --------------------------------------- */

enum { BOTH_WAYS_N = 2000, MSG_SEQ = 7, MSG_SEQ_DONE = 8 };

/* Counts the MSG_SEQ numbers it is sent (0, 1, ...), and tells its inbox
 * [count, out of order] once it has BOTH_WAYS_N. */
struct seq_sink {
    gr_ref report_to;
    uint32_t got, disorder;
};

static int seq_sink_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    struct seq_sink *s = state;
    memcpy(&s->report_to, arg, len);
    return gr_register(ctx, "sink");
}

static int seq_sink_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct seq_sink *s = state;
    uint32_t seq;
    if (m->type != MSG_SEQ || m->len != sizeof seq)
        return GR_CONTINUE;
    memcpy(&seq, m->data, sizeof seq);
    s->disorder += seq != s->got;
    if (++s->got == BOTH_WAYS_N) {
        uint32_t r[2] = {s->got, s->disorder};
        (void)gr_tell(ctx, s->report_to, MSG_SEQ_DONE, r, sizeof r);
    }
    return GR_CONTINUE;
}

static const gr_behaviour seq_sink_b = {.name = "seq_sink",
                                        .state_size = sizeof(struct seq_sink),
                                        .init = seq_sink_init,
                                        .handle = seq_sink_handle};

/* One of two Grove systems sending to each other. */
struct both_side {
    gr_system *sys;
    gr_inbox *in;
    struct capture cap;
    char name[64], to[96];
    pthread_barrier_t *go;
    int refused; /* Sends not taken. */
};

static bool both_side_start(struct both_side *b, const char *alive,
                            const char *peer_alive)
{
    capture_init(&b->cap);
    snprintf(b->name, sizeof b->name, "%s%d@127.0.0.1", alive, (int)getpid());
    snprintf(b->to, sizeof b->to, "sink@%s%d@127.0.0.1", peer_alive,
             (int)getpid());
    gr_config cfg = {.workers = 2,
                     .log_level = GR_LOG_INFO,
                     .log_level_set = 1,
                     .log_fn = capture_fn,
                     .log_arg = &b->cap,
                     .no_signals = 1,
                     .dist = {.node_name = b->name, .cookie = COOKIE}};
    gr_ref sink;
    if (gr_system_start(&cfg, &b->sys) != GR_OK)
        return false;
    if (gr_inbox_open(b->sys, &b->in) != GR_OK)
        return false;
    gr_ref in = gr_inbox_ref(b->in);
    return gr_system_spawn(b->sys, &seq_sink_b, &in, sizeof in, &sink) == GR_OK;
}

static void *both_side_send(void *arg)
{
    struct both_side *b = arg;
    pthread_barrier_wait(b->go);
    for (uint32_t i = 0; i < BOTH_WAYS_N; i++)
        b->refused += gr_system_tell_name(b->sys, GR_REF_NONE, b->to, MSG_SEQ,
                                          &i, sizeof i) != GR_OK;
    return NULL;
}

/* Two Grove systems start sending to each other at the same moment, so
 * each connects to the other as the other connects to it. As Erlang
 * nodes do, they keep one connection, the one the greater name makes:
 * the other's connect is answered "nok", and what it was to carry goes on
 * the connection that comes in. Every message arrives, in order, and
 * none is a dead letter; no connection is lost. Five rounds, each with
 * a fresh pair of names. */
static void connects_both_ways_at_once(void)
{
    CHECK(epmd_start());
    for (int round = 0; round < 5; round++) {
        struct both_side side[2] = {{0}};
        char a[16], b[16];
        snprintf(a, sizeof a, "ga%d_", round);
        snprintf(b, sizeof b, "gb%d_", round);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        side[0].go = side[1].go = &go;
        bool up =
            both_side_start(&side[0], a, b) && both_side_start(&side[1], b, a);
        pthread_t t[2];
        for (int i = 0; i < 2 && up; i++)
            CHECK_EQ(pthread_create(&t[i], NULL, both_side_send, &side[i]), 0);
        uint32_t got[2][2] = {{0}};
        for (int i = 0; i < 2 && up; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < 2 && up; i++) {
            gr_msg *m = NULL;
            if (gr_inbox_recv(side[i].in, &m, 20000) == GR_OK &&
                m->type == MSG_SEQ_DONE && m->len == sizeof got[i])
                memcpy(got[i], m->data, sizeof got[i]);
            gr_msg_free(m);
        }
        unsigned dead = 0, lost = 0;
        for (int i = 0; i < 2; i++) {
            dead +=
                capture_count(&side[i].cap, GR_LOG_WARN, "dead letter", NULL);
            lost +=
                capture_count(&side[i].cap, GR_LOG_INFO, "disconnected", NULL);
        }
        if (!up || got[0][0] != BOTH_WAYS_N || got[1][0] != BOTH_WAYS_N ||
            dead != 0 || lost != 0) {
            fprintf(stderr, "  round %d: got %u and %u\n", round, got[0][0],
                    got[1][0]);
            capture_dump(&side[0].cap);
            capture_dump(&side[1].cap);
        }
        for (int i = 0; i < 2; i++) {
            if (side[i].in != NULL)
                gr_inbox_close(side[i].in);
            if (side[i].sys != NULL)
                (void)gr_system_shutdown(side[i].sys);
            pthread_mutex_destroy(&side[i].cap.lock);
        }
        pthread_barrier_destroy(&go);
        CHECK(up);
        CHECK_EQ(side[0].refused + side[1].refused, 0);
        CHECK_EQ(got[0][0], BOTH_WAYS_N);
        CHECK_EQ(got[1][0], BOTH_WAYS_N);
        CHECK_EQ(got[0][1] + got[1][1], 0); /* In order. */
        CHECK_EQ(dead, 0);
        CHECK_EQ(lost, 0);
    }
    epmd_stop();
}

/* An Erlang node connects to Grove (net_adm:ping) at the moment Grove
 * starts sending to it, with Erlang's name the greater (it answers
 * Grove's connect "nok", and its own connection is to carry both ways)
 * and then the smaller (it answers "ok_simultaneous" and gives its own
 * up): every message arrives, in order, and none is a dead letter. */
static void erlang_connects_as_grove_does(void)
{
    struct capture cap;
    CHECK(start_logged(&cap, 0));
    char plain[64];
    snprintf(plain, sizeof plain, "%s", erl_node);
    bool all = true;
    int refused = 0;
    for (int round = 0; round < 2 && all; round++) {
        erl_node[0] = round == 0 ? 'z' : 'a';
        char to[96], script[1024];
        snprintf(to, sizeof to, "ebox@%s", erl_node);
        snprintf(script, sizeof script,
                 "register(ebox, self()), io:format(\"READY~n\"),"
                 "io:get_line(\"\"), spawn(fun() -> net_adm:ping(G) end),"
                 "L = fun Loop(N, Last, Bad) -> receive I when is_integer(I)"
                 " -> Loop(N + 1, I, if I < Last -> Bad + 1; true -> Bad end)"
                 " after 1000 -> {N, Bad} end end,"
                 "{Got, Bad} = L(0, -1, 0),"
                 "io:format(\"GOT ~p ~p~n\", [Got, Bad]),");
        erl e;
        bool ready = erl_start(&e, COOKIE, script) && erl_read(&e, "READY");
        if (ready) {
            /* It pings Grove as Grove's first send connects to it. */
            ready = write(e.in, "go\n", 3) == 3;
            for (int i = 0; i < BOTH_WAYS_N; i++) {
                unsigned char term[5] = {
                    0xd2, (unsigned char)(i >> 24), (unsigned char)(i >> 16),
                    (unsigned char)(i >> 8), (unsigned char)i};
                refused +=
                    gr_system_tell_name(sys, GR_REF_NONE, to, GR_MSG_TERM, term,
                                        sizeof term) != GR_OK;
            }
        }
        bool said = ready && erl_read(&e, "GOT ");
        char *out = erl_end(&e);
        char expect[64];
        snprintf(expect, sizeof expect, "GOT %d 0", BOTH_WAYS_N);
        all = said && strstr(out, expect) != NULL;
        free(out);
    }
    snprintf(erl_node, sizeof erl_node, "%s", plain);
    (void)gr_system_shutdown(sys);
    epmd_stop();
    unsigned dead = capture_count(&cap, GR_LOG_WARN, "dead letter", NULL);
    if (!all || dead != 0)
        capture_dump(&cap);
    pthread_mutex_destroy(&cap.lock);
    CHECK_EQ(refused, 0);
    CHECK(all);
    CHECK_EQ(dead, 0);
}

/* ---- handshakes that have not shown the cookie ------------------------ */

/* Connects to this system's listener, says it is node `name` (send_name,
 * with made-up flags and creation), reads the status answer and returns
 * the connection, still open; -1 when any of it fails. */
static int claim_name(int port, const char *name)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || !connect_to(fd, port)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    unsigned char b[300], *p = b;
    size_t n = strlen(name), len = 15 + n;
    static const unsigned char flags[8] = {0, 0, 0, 4, 7, 7, 0x4f, 0xbc};
    *p++ = (unsigned char)(len >> 8);
    *p++ = (unsigned char)len;
    *p++ = 'N';
    memcpy(p, flags, 8);
    p += 8;
    *p++ = 0x11, *p++ = 0x22, *p++ = 0x33, *p++ = 0x44; /* Creation. */
    *p++ = (unsigned char)(n >> 8);
    *p++ = (unsigned char)n;
    memcpy(p, name, n);
    p += n;
    unsigned char status[64];
    struct pollfd w = {.fd = fd, .events = POLLIN};
    if (write(fd, b, (size_t)(p - b)) != p - b || poll(&w, 1, 5000) != 1 ||
        read(fd, status, sizeof status) <= 2) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Handshakes that stop before the cookie is shown claim nothing: 4200 of
 * them under made-up names (more than the nodes a system keeps) leave a
 * send to a node not seen before free to connect, and one that claims a
 * real node's name and then says nothing holds up sends to that node
 * only until connect_timeout_ms, when Grove connects to it itself. Both
 * failed when the handshake's answer noted the name (the send got
 * GR_ENOCONNECTION; the message became a dead letter). */
static void handshakes_before_the_cookie_claim_nothing(void)
{
    struct capture cap;
    CHECK(start_logged_echo(&cap, 500));
    int port = grove_port();
    int answered = 0;
    for (int i = 0; i < 4200; i++) {
        char name[64];
        snprintf(name, sizeof name, "junk%d@nowhere", i);
        int fd = claim_name(port, name);
        answered += fd >= 0;
        if (fd >= 0)
            close(fd);
    }
    int fresh = gr_system_tell_name(sys, GR_REF_NONE, "x@fresh@127.0.0.1",
                                    GR_MSG_TERM, "\xa3hey", 4);
    /* A second system, v, and an impostor that claims v's name first. */
    struct both_side v = {0};
    bool v_up = both_side_start(&v, "v", "nobody");
    int impostor = v_up ? claim_name(port, v.name) : -1;
    uint32_t i = 7;
    char to[96];
    snprintf(to, sizeof to, "sink@%s", v.name);
    int sent = gr_system_tell_name(sys, GR_REF_NONE, to, MSG_SEQ, &i, sizeof i);
    /* v's sink counts to BOTH_WAYS_N; one message is seen by its count
     * of pops instead: wait for v to have handled it. */
    bool arrived = false;
    for (double until = test_now() + 10; v_up && !arrived && test_now() < until;
         sleep_ms(5)) {
        gr_stats st;
        gr_system_stats(v.sys, &st);
        arrived = st.delivered > 0;
    }
    unsigned dead = capture_count(&cap, GR_LOG_WARN, "dead letter", "sink");
    if (impostor >= 0)
        close(impostor);
    if (v.in != NULL)
        gr_inbox_close(v.in);
    if (v.sys != NULL)
        (void)gr_system_shutdown(v.sys);
    pthread_mutex_destroy(&v.cap.lock);
    gr_inbox_close(inbox);
    (void)gr_system_shutdown(sys);
    epmd_stop();
    if (!arrived || dead != 0)
        capture_dump(&cap);
    pthread_mutex_destroy(&cap.lock);
    CHECK_EQ(answered, 4200);
    CHECK_EQ(fresh, GR_OK);
    CHECK(v_up);
    CHECK(impostor >= 0);
    CHECK_EQ(sent, GR_OK);
    CHECK(arrived);
    CHECK_EQ(dead, 0);
}

/* Descriptors run out (EMFILE) with connections waiting on the listener,
 * which therefore stays readable: the distribution thread says so once
 * and rests its listener instead of spinning on it, and accepts again
 * once there are descriptors (an Erlang node connects and calls). */
static void descriptors_run_out(void)
{
    struct capture cap;
    CHECK(start_logged(&cap, 0));
    gr_ref e;
    CHECK(gr_system_spawn(sys, &echo_b, &GR_REF_NONE, sizeof(gr_ref), &e) ==
          GR_OK);
    int port = grove_port();
    enum { CLIENTS = 3 };
    int client[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        client[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    fd_shortage fds = {0};
    bool short_of_fds = fd_shortage_start(&fds);
    bool connected = short_of_fds;
    for (int i = 0; i < CLIENTS && short_of_fds; i++)
        connected = connect_to(client[i], port) && connected;
    double until = test_now() + 5;
    while (capture_count(&cap, GR_LOG_ERROR, "accepting a connection failed",
                         NULL) == 0 &&
           test_now() < until)
        sleep_ms(1);
    bool low_cpu = cpu_stays_low(300);
    unsigned said = capture_count(&cap, GR_LOG_ERROR,
                                  "accepting a connection failed", NULL);
    for (int i = 0; i < CLIENTS; i++)
        if (client[i] >= 0)
            close(client[i]);
    fd_shortage_end(&fds);
    char *out = erl_run(COOKIE, "R = gen_server:call({echo, G}, ping),"
                                "io:format(\"PONG ~p~n\", [R]),");
    bool ponged = out != NULL && strstr(out, "PONG {ok,ping}") != NULL;
    free(out);
    unsigned again =
        capture_count(&cap, GR_LOG_INFO, "accepting connections again", NULL);
    (void)gr_system_shutdown(sys);
    epmd_stop();
    if (said != 1 || !ponged || again != 1)
        capture_dump(&cap);
    pthread_mutex_destroy(&cap.lock);
    CHECK(short_of_fds);
    CHECK(connected);
    CHECK(low_cpu);
    CHECK_EQ(said, 1);
    CHECK(ponged);
    CHECK_EQ(again, 1);
}

/* "hold": keeps every request until HELD_CALLS have come, then answers
 * each with its own request term, newest first. */
enum { HELD_CALLS = 20000, HELD_TERM_MAX = 16 };
typedef struct held_call {
    gr_request req;
    size_t len;
    char term[HELD_TERM_MAX];
} held_call;

typedef struct hold {
    unsigned n;
    held_call *held;
} hold;

static int hold_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    hold *h = state;
    h->held = calloc(HELD_CALLS, sizeof *h->held);
    return h->held != NULL ? gr_register(ctx, "hold") : GR_ENOMEM;
}

static int hold_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    hold *h = state;
    if (!(m->flags & GR_MSG_REQUEST) || m->len > HELD_TERM_MAX)
        return GR_EUNHANDLED;
    held_call *c = &h->held[h->n++];
    c->req = gr_request_of(m);
    c->len = m->len;
    memcpy(c->term, m->data, m->len);
    if (h->n < HELD_CALLS)
        return GR_CONTINUE;
    while (h->n > 0) {
        c = &h->held[--h->n];
        int rc = gr_reply_to(ctx, &c->req, GR_MSG_TERM, c->term, c->len);
        if (rc != GR_OK)
            return rc;
    }
    return GR_CONTINUE;
}

static void hold_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)ctx;
    (void)why;
    free(((hold *)state)->held);
}

static const gr_behaviour hold_b = {.name = "hold",
                                    .state_size = sizeof(hold),
                                    .init = hold_init,
                                    .handle = hold_handle,
                                    .terminate = hold_terminate};

/* Many gen_server:calls wait for their replies at once (each of 20 000
 * Erlang processes calls hold, which answers when the last has come, in
 * the opposite order): each caller gets its own answer. */
static void many_calls_wait_at_once(void)
{
    CHECK(start());
    gr_ref h;
    CHECK(gr_system_spawn(sys, &hold_b, NULL, 0, &h) == GR_OK);
    char script[1024];
    snprintf(
        script, sizeof script,
        "N = %d, Self = self(), true = net_kernel:connect_node(G),"
        "[spawn(fun() -> Self ! {I, gen_server:call({hold, G}, I, 50000)}"
        " end) || I <- lists:seq(1, N)],"
        "Wrong = lists:foldl(fun(_, W) -> receive {I, R} when R =:= I -> W;"
        " _ -> W + 1 after 55000 -> W + 1 end end, 0,"
        " lists:seq(1, N)),"
        "io:format(\"WRONG ~p~n\", [Wrong]),",
        HELD_CALLS);
    char *out = erl_run(COOKIE, script);
    bool right = out != NULL && strstr(out, "WRONG 0") != NULL;
    if (!right)
        fprintf(stderr, "erl said:\n%s\n", out != NULL ? out : "(nothing)");
    free(out);
    stop();
    CHECK(right);
}

static void killed_erlang_node_is_noconnection(void)
{
    CHECK(start());
    erl e;
    CHECK(erl_start(&e, COOKIE,
                    "P = spawn(fun() -> receive never -> ok end end),"
                    "{watcher, G} ! {link, P},"
                    "{watcher, G} ! {ask, P},"
                    "{watcher, G} ! {monitor, P},"
                    "gen_server:call({watcher, G}, whoami),"
                    "io:format(\"READY~n\"),"
                    "receive never -> ok end,"));
    bool ready = erl_read(&e, "READY");
    free(erl_end(&e)); /* SIGKILL: the connection just ends. */
    /* The link, the ask and the monitor all end with noconnection, in any
     * order (the monitor's gr_monitor result comes first). */
    gr_exit_msg x = {0};
    gr_reason failed = {0};
    gr_down down = {0};
    int32_t monitored = -1;
    bool exited = false, ask_failed = false, downed = false;
    for (int i = 0; ready && i < 4; i++) {
        gr_msg *m;
        if (gr_inbox_recv(inbox, &m, WAIT_MS) != GR_OK)
            break;
        if (m->type == MSG_EXIT_SEEN && m->len == sizeof x) {
            memcpy(&x, m->data, sizeof x);
            exited = true;
        } else if (m->type == MSG_ASK_FAILED_SEEN && m->len == sizeof failed) {
            memcpy(&failed, m->data, sizeof failed);
            ask_failed = true;
        } else if (m->type == MSG_DOWN_SEEN && m->len == sizeof down) {
            memcpy(&down, m->data, sizeof down);
            downed = true;
        } else if (m->type == MSG_MONITOR_RC && m->len == sizeof monitored) {
            memcpy(&monitored, m->data, sizeof monitored);
        }
        gr_msg_free(m);
    }
    stop();
    CHECK(ready);
    CHECK(exited);
    CHECK_EQ(x.reason.code, GR_ENOCONNECTION);
    CHECK(ask_failed);
    CHECK_EQ(failed.code, GR_ENOCONNECTION);
    CHECK_EQ(monitored, GR_OK);
    CHECK(downed);
    CHECK_EQ(down.reason.code, GR_ENOCONNECTION);
}

/* ---- two hosts: two Grove systems in two network namespaces -------------- */

/* The namespaces, the veth between them, and B's process. */
static char ns_a[32], ns_b[32], veth_a[16], veth_b[16];
static pid_t host_b, epmd_a, epmd_b;

enum { MSG_HELLO = 30, MSG_HELLO_REPLY, MSG_PING, MSG_PONG, MSG_WATCH };

#define HOST_A  "10.77.0.1"
#define HOST_B  "10.77.0.2"
#define TICK_MS 2000

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* Moves this process into namespace ns. */
static bool enter_ns(const char *ns)
{
    char path[96];
    snprintf(path, sizeof path, "/var/run/netns/%s", ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool ok = fd >= 0 && setns(fd, CLONE_NEWNET) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Forks a child that enters ns and runs epmd on epmd_port. */
static pid_t epmd_in(const char *ns)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        erl_die_with(parent);
        if (!enter_ns(ns))
            _exit(126);
        execlp("epmd", "epmd", "-port", epmd_port, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void hosts_down(void)
{
    pid_t kids[] = {host_b, epmd_a, epmd_b};
    for (size_t i = 0; i < 3; i++)
        if (kids[i] > 0) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
        }
    host_b = epmd_a = epmd_b = 0;
    (void)sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", ns_a,
             ns_b);
}

/* Two namespaces joined by a veth pair (A at HOST_A, B at HOST_B), each
 * with its own epmd on epmd_port; false when they cannot be made. */
static bool hosts_up(void)
{
    int id = (int)getpid();
    snprintf(ns_a, sizeof ns_a, "grove-a-%d", id);
    snprintf(ns_b, sizeof ns_b, "grove-b-%d", id);
    snprintf(veth_a, sizeof veth_a, "gra%d", id % 100000);
    snprintf(veth_b, sizeof veth_b, "grb%d", id % 100000);
    snprintf(epmd_port, sizeof epmd_port, "4369");
    setenv("ERL_EPMD_PORT", epmd_port, 1);
    if (sh("ip netns add %s && ip netns add %s && "
           "ip link add %s netns %s type veth peer name %s netns %s && "
           "ip -n %s addr add " HOST_A "/24 dev %s && "
           "ip -n %s addr add " HOST_B "/24 dev %s && "
           "ip -n %s link set lo up && ip -n %s link set lo up && "
           "ip -n %s link set %s up && ip -n %s link set %s up",
           ns_a, ns_b, veth_a, ns_a, veth_b, ns_b, ns_a, veth_a, ns_b, veth_b,
           ns_a, ns_b, ns_a, veth_a, ns_b, veth_b) != 0)
        return false;
    epmd_a = epmd_in(ns_a);
    epmd_b = epmd_in(ns_b);
    /* Each epmd answers in its own namespace: wait from there. */
    double until = test_now() + 10;
    while (test_now() < until &&
           (sh("ip netns exec %s epmd -port %s -names >/dev/null 2>&1", ns_a,
               epmd_port) != 0 ||
            sh("ip netns exec %s epmd -port %s -names >/dev/null 2>&1", ns_b,
               epmd_port) != 0))
        sleep_ms(10);
    return test_now() < until;
}

/* B's "echo": answers MSG_HELLO with MSG_HELLO_REPLY to the sender (its
 * ref is that message's m->from) and a MSG_PING request with MSG_PONG. */
static int b_echo_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return gr_register(ctx, "echo");
}

static int b_echo_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    if (m->type == MSG_HELLO) /* Its ref is the reply's m->from. */
        return gr_tell(ctx, m->from, MSG_HELLO_REPLY, NULL, 0);
    if (m->type == MSG_PING && (m->flags & GR_MSG_REQUEST))
        return gr_reply(ctx, m, MSG_PONG, m->data, m->len);
    return GR_CONTINUE;
}

static const gr_behaviour b_echo = {
    .name = "b_echo", .init = b_echo_init, .handle = b_echo_handle};

/* B's "victim": registered, does nothing; A shoots it. */
static int victim_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return gr_register(ctx, "victim");
}

static int victim_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    return GR_CONTINUE;
}

static const gr_behaviour victim = {
    .name = "victim", .init = victim_init, .handle = victim_handle};

/* Host B: a system published as b@HOST_B with b_echo, until killed. */
static pid_t host_b_start(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    erl_die_with(parent);
    if (!enter_ns(ns_b))
        _exit(126);
    gr_system *s;
    gr_config cfg = {.workers = 1,
                     .dist = {.node_name = "b@" HOST_B,
                              .listen = HOST_B,
                              .cookie = COOKIE,
                              .net_ticktime_ms = TICK_MS}};
    gr_ref e;
    if (gr_system_start(&cfg, &s) != GR_OK ||
        gr_system_spawn(s, &b_echo, NULL, 0, &e) != GR_OK ||
        gr_system_spawn(s, &victim, NULL, 0, &e) != GR_OK)
        _exit(1);
    for (;;)
        pause();
}

/* Host A's client: says hello to echo@b@HOST_B, links to and monitors
 * the echo that answers (trapping exits), asks it a ping, and reports
 * the pong (MSG_PONG), any exit (MSG_EXIT_SEEN) and DOWN (MSG_DOWN_SEEN)
 * to the inbox. MSG_WATCH (a ref): monitors that actor, then sends it an
 * exit signal, GR_ESHUTDOWN "shot". */
static int a_client_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    echo *e = state;
    memcpy(&e->inbox, arg, len);
    (void)gr_trap_exit(ctx, 1);
    return gr_tell_name(ctx, "echo@b@" HOST_B, MSG_HELLO, NULL, 0);
}

static int a_client_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    echo *e = state;
    gr_ref b;
    uint64_t corr;
    switch (m->type) {
    case MSG_HELLO_REPLY:
        b = m->from;
        if (gr_link(ctx, b) != GR_OK || gr_monitor(ctx, b, NULL) != GR_OK)
            return GR_EFAILED;
        return gr_ask(ctx, b, MSG_PING, "ping", 4, 5000, &corr);
    case MSG_WATCH: {
        gr_reason shot = gr_reason_of(GR_ESHUTDOWN);
        snprintf(shot.text, sizeof shot.text, "shot");
        if (m->len != sizeof b)
            return GR_EFAILED;
        memcpy(&b, m->data, sizeof b);
        if (gr_monitor(ctx, b, NULL) != GR_OK)
            return GR_EFAILED;
        return gr_exit(ctx, b, &shot);
    }
    case GR_MSG_DOWN:
        return gr_tell(ctx, e->inbox, MSG_DOWN_SEEN, m->data, m->len);
    case MSG_PONG:
        return gr_tell(ctx, e->inbox, MSG_PONG, m->data, m->len);
    case GR_MSG_EXIT: {
        gr_exit_msg x;
        if (gr_exit_read(m, &x) == GR_OK)
            fprintf(stderr, "  a_client: exit %s '%s' linked %u\n",
                    gr_errname(x.reason.code), x.reason.text, x.linked);
        return gr_tell(ctx, e->inbox, MSG_EXIT_SEEN, m->data, m->len);
    }
    default:
        fprintf(stderr, "  a_client: type %#x\n", m->type);
        return gr_tell(ctx, e->inbox, MSG_ASK_FAILED_SEEN, NULL, 0);
    }
}

static const gr_behaviour a_client = {.name = "a_client",
                                      .state_size = sizeof(echo),
                                      .init = a_client_init,
                                      .handle = a_client_handle};

static void two_hosts(void)
{
    if (sh("ip netns list >/dev/null 2>&1") != 0 || !hosts_up()) {
        hosts_down();
        printf("skipped: network namespaces cannot be made here (root and "
               "iproute2 are needed)\n");
        return;
    }
    host_b = host_b_start();
    bool in_a = enter_ns(ns_a);
    gr_config cfg = {.workers = 2,
                     .dist = {.node_name = "a@" HOST_A,
                              .listen = HOST_A,
                              .cookie = COOKIE,
                              .net_ticktime_ms = TICK_MS}};
    bool started = in_a && gr_system_start(&cfg, &sys) == GR_OK &&
                   gr_inbox_open(sys, &inbox) == GR_OK;
    /* B publishes itself meanwhile: wait until its epmd knows it. */
    double until = test_now() + 10;
    while (started && test_now() < until &&
           sh("ip netns exec %s epmd -port %s -names 2>/dev/null | "
              "grep -q 'name b '",
              ns_b, epmd_port) != 0)
        sleep_ms(10);
    gr_ref in = started ? gr_inbox_ref(inbox) : GR_REF_NONE, c;
    bool spawned =
        started && gr_system_spawn(sys, &a_client, &in, sizeof in, &c) == GR_OK;
    char pong[8] = "";
    gr_msg *m = NULL;
    bool ponged = spawned && gr_inbox_recv(inbox, &m, 3 * WAIT_MS) == GR_OK &&
                  m->type == MSG_PONG && m->len == 4;
    if (ponged)
        memcpy(pong, m->data, 4);
    gr_msg_free(m);
    /* B answers rex's whereis, as an Erlang node does. */
    gr_ref echo_b = GR_REF_NONE;
    gr_msg *r2 = NULL;
    bool found =
        ponged &&
        gr_whereis_any(sys, "echo@b@" HOST_B, 5000, &echo_b) == GR_OK &&
        gr_call(sys, echo_b, MSG_PING, "via", 3, 5000, &r2) == GR_OK &&
        r2->type == MSG_PONG && r2->len == 3;
    gr_msg_free(r2);
    /* A monitor across: the victim's DOWN carries the reason it was shot
     * with, code and text. */
    gr_ref victim_b = GR_REF_NONE;
    gr_down shot = {0};
    bool watched =
        found &&
        gr_whereis_any(sys, "victim@b@" HOST_B, 5000, &victim_b) == GR_OK &&
        gr_system_tell(sys, GR_REF_NONE, c, MSG_WATCH, &victim_b,
                       sizeof victim_b) == GR_OK &&
        next_of(MSG_DOWN_SEEN, &shot, sizeof shot);
    /* Cut the wire: nothing more arrives, so after a net_ticktime the
     * connection is dead and the link and the monitor fire noconnection
     * (in either order). */
    bool cut = ponged && sh("ip link set %s down", veth_a) == 0;
    double t0 = test_now();
    gr_exit_msg x = {0};
    gr_down down = {0};
    bool exited = false, downed = false;
    /* next_of waits WAIT_MS; the tick may take longer: a few rounds. */
    for (int round = 0; cut && round < 4 && !(exited && downed); round++) {
        gr_msg *got;
        if (gr_inbox_recv(inbox, &got, WAIT_MS) != GR_OK)
            continue;
        if (got->type == MSG_EXIT_SEEN && got->len == sizeof x) {
            memcpy(&x, got->data, sizeof x);
            exited = true;
        } else if (got->type == MSG_DOWN_SEEN && got->len == sizeof down) {
            memcpy(&down, got->data, sizeof down);
            downed = true;
        }
        gr_msg_free(got);
    }
    double took = test_now() - t0;
    if (started) {
        gr_inbox_close(inbox);
        (void)gr_system_shutdown(sys);
    }
    hosts_down();
    CHECK(in_a);
    CHECK(started);
    CHECK(spawned);
    CHECK(ponged);
    CHECK(strcmp(pong, "ping") == 0);
    CHECK(found);
    CHECK(watched);
    CHECK(gr_ref_eq(shot.target, victim_b));
    /* A shutdown with a text, both ways ({shutdown, <<"shot">>}). */
    CHECK_EQ(shot.reason.code, GR_ESHUTDOWN);
    CHECK(strcmp(shot.reason.text, "shot") == 0);
    CHECK(cut);
    CHECK(exited);
    CHECK_EQ(x.reason.code, GR_ENOCONNECTION);
    CHECK(downed);
    CHECK_EQ(down.reason.code, GR_ENOCONNECTION);
    fprintf(stderr, "  noconnection %.1f s after the cut (tick %d ms)\n", took,
            TICK_MS);
}

/* Counts this process's connected TCP sockets other than epmd's, and of
 * them those with TCP_NODELAY and SO_KEEPALIVE both set. */
static void count_connections(int *all, int *set)
{
    *all = *set = 0;
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        int fd = atoi(de->d_name), type = 0, nodelay = 0, keepalive = 0;
        socklen_t n = sizeof type;
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        if (de->d_name[0] == '.' || fd == dirfd(dir) ||
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &n) != 0 ||
            type != SOCK_STREAM ||
            getpeername(fd, (struct sockaddr *)&peer, &plen) != 0 ||
            peer.sin_family != AF_INET ||
            ntohs(peer.sin_port) == (unsigned)atoi(epmd_port))
            continue;
        n = sizeof nodelay;
        (void)getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &n);
        n = sizeof keepalive;
        (void)getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &keepalive, &n);
        (*all)++;
        *set += nodelay != 0 && keepalive != 0;
    }
    closedir(dir);
}

/* Connections, accepted and made, send small frames at once (no Nagle:
 * one written behind another unacknowledged would wait 40 ms for the
 * peer's delayed ACK) and have keepalive probes. */
static void connections_send_at_once(void)
{
    CHECK(start());
    erl e;
    CHECK(erl_start(&e, COOKIE,
                    "register(ebox, self()),"
                    "gen_server:call({echo, G}, sync),"
                    "Srv = spawn(fun Loop() -> receive {'$gen_call', From, "
                    "N} -> gen_server:reply(From, N), Loop() end end),"
                    "{echo, G} ! {ask, Srv, 1},"
                    "receive _ -> ok end,"
                    "io:format(\"READY~n\"),"
                    "receive never -> ok end,"));
    bool ready = erl_read(&e, "READY");
    int all, set;
    count_connections(&all, &set);
    free(erl_end(&e));
    stop();
    CHECK(ready);
    CHECK(all >= 1);
    CHECK_EQ(set, all);
}

/* ---- a flood: the connection is held back ------------------------------- */

/* Messages Erlang floods "slow" with, each of FLOOD_BYTES. */
#define FLOOD_N     30000
#define FLOOD_BYTES 1024
/* Iterations of busy work per message: many times what reading one off
 * the connection costs, so without being held back Erlang would bury
 * it. */
#define FLOOD_WORK 20000

enum { MSG_FLOOD_DONE = 40 };

/* "slow": counts {n, I, Bin} messages, checking that I runs 1, 2, ...,
 * doing FLOOD_WORK of work for each; at FLOOD_N it tells the inbox
 * (MSG_FLOOD_DONE: the count, then the number out of order) and Erlang's
 * ebox ("done"). */
typedef struct slow {
    gr_ref inbox;
    uint64_t count, out_of_order;
} slow;

static int slow_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    slow *s = state;
    memcpy(&s->inbox, arg, len);
    return gr_register(ctx, "slow");
}

static int slow_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    slow *s = state;
    msgpack_unpacked u;
    if (m->type != GR_MSG_TERM || gr_msg_unpack(m, &u) != GR_OK)
        return GR_CONTINUE;
    const msgpack_object *o = &u.data;
    uint64_t i =
        o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 3 &&
                o->via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER
            ? o->via.array.ptr[1].via.u64
            : 0;
    msgpack_unpacked_destroy(&u);
    volatile uint64_t work = 0;
    for (int k = 0; k < FLOOD_WORK; k++)
        work += (uint64_t)k;
    (void)work;
    if (i != ++s->count)
        s->out_of_order++;
    if (s->count != FLOOD_N)
        return GR_CONTINUE;
    uint64_t done[2] = {s->count, s->out_of_order};
    char to[128];
    snprintf(to, sizeof to, "ebox@%s", erl_node);
    (void)gr_tell_name(ctx, to, GR_MSG_TERM,
                       "\xa4"
                       "done",
                       5);
    return gr_tell(ctx, s->inbox, MSG_FLOOD_DONE, done, sizeof done);
}

static const gr_behaviour slow_b = {.name = "slow",
                                    .state_size = sizeof(slow),
                                    .init = slow_init,
                                    .handle = slow_handle};

/* An Erlang node that drops Grove's connection to it (Grove's own, made
 * moments before) and at once connects again is let in, also while that
 * old connection is held back (a sleepy actor's backlog, 3000 messages
 * of 2 ms: Grove reads nothing from it, so it has not seen it close). Its
 * connect is no simultaneous one: the old socket has seen the node close it.
 * Answered nok, the ping failed (2 pangs, 14 s, in a reviewer's run). */
static int sleepy_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state, (void)arg, (void)len;
    return gr_register(ctx, "sleepy");
}

/* 2 ms a message: a backlog that lasts seconds. */
static int sleepy_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx, (void)state, (void)m;
    sleep_ms(2);
    return GR_CONTINUE;
}

static const gr_behaviour sleepy_b = {
    .name = "sleepy", .init = sleepy_init, .handle = sleepy_handle};

static void reconnect_while_held_let_in(void)
{
    CHECK(start());
    gr_ref s;
    CHECK(gr_system_spawn(sys, &sleepy_b, NULL, 0, &s) == GR_OK);
    char script[1024];
    snprintf(script, sizeof script,
             "register(ebox, self()), io:format(\"READY~n\"),"
             "receive go -> ok after 10000 -> ok end,"
             "Bin = binary:copy(<<\"x\">>, %d),"
             "[{sleepy, G} ! {n, I, Bin} || I <- lists:seq(1, 3000)],"
             "receive held -> ok after 10000 -> ok end,"
             "erlang:disconnect_node(G),"
             "R = net_adm:ping(G), io:format(\"PING ~p~n\", [R]),",
             FLOOD_BYTES);
    erl e;
    bool ready = erl_start(&e, COOKIE, script) && erl_read(&e, "READY");
    char to[96];
    snprintf(to, sizeof to, "ebox@%s", erl_node);
    /* Grove's own connection carries this first message. */
    int sent = ready ? gr_system_tell_name(sys, GR_REF_NONE, to, GR_MSG_TERM,
                                           "\xa2go", 3)
                     : -1;
    /* Once the backlog holds the connection back (1024 queued), "held":
     * the node drops the connection then, and pings. */
    bool held = false;
    for (double until = test_now() + 10;
         sent == GR_OK && !held && test_now() < until; sleep_ms(1)) {
        gr_stats st;
        gr_system_stats(sys, &st);
        held = st.deepest[0].depth >= 1024;
    }
    int told = held ? gr_system_tell_name(sys, GR_REF_NONE, to, GR_MSG_TERM,
                                          "\xa4held", 5)
                    : -1;
    bool said = ready && erl_read(&e, "PING ");
    char *out = erl_end(&e);
    bool pong = said && strstr(out, "PING pong") != NULL;
    free(out);
    stop();
    CHECK(ready);
    CHECK_EQ(sent, GR_OK);
    CHECK(held);
    CHECK_EQ(told, GR_OK);
    CHECK(pong);
}

/* Samples the deepest mailbox until told to stop. */
typedef struct sampler {
    pthread_t thread;
    _Atomic(bool) stop;
    uint64_t deepest;
} sampler;

static void *sample(void *arg)
{
    sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        gr_stats st;
        gr_system_stats(sys, &st);
        if (st.deepest[0].depth > s->deepest)
            s->deepest = st.deepest[0].depth;
        sleep_ms(1); /* An observer's pace, not a wait for an event. */
    }
    return NULL;
}

/* Erlang floods an actor that is many times slower than the wire: the
 * connection is held back, so its mailbox stays near the muting threshold
 * (1024) instead of taking the flood, Erlang's sender finds the
 * distribution port busy, and every message arrives, in order. */
static void erlang_flood_is_held_back(void)
{
    CHECK(start());
    gr_ref in = gr_inbox_ref(inbox), s;
    CHECK(gr_system_spawn(sys, &slow_b, &in, sizeof in, &s) == GR_OK);
    sampler smp = {.deepest = 0};
    atomic_init(&smp.stop, false);
    CHECK(pthread_create(&smp.thread, NULL, sample, &smp) == 0);
    char script[1024];
    snprintf(
        script, sizeof script,
        "register(ebox, self()),"
        "erlang:system_monitor(self(), [busy_dist_port]),"
        "Self = self(), Bin = binary:copy(<<\"x\">>, %d),"
        "spawn(fun() -> [{slow, G} ! {n, I, Bin} || I <- lists:seq(1, %d)],"
        " Self ! sent end),"
        "receive sent -> ok after 60000 -> io:format(\"NOT_SENT~n\") end,"
        "Busy = receive {monitor, _, busy_dist_port, _} -> true after 0 -> "
        "false end,"
        "io:format(\"BUSY ~p~n\", [Busy]),"
        "receive done -> io:format(\"DONE~n\") after 60000 -> ok end,",
        FLOOD_BYTES, FLOOD_N);
    char *out = erl_run(COOKIE, script);
    uint64_t done[2] = {0, 0};
    bool counted = next_of(MSG_FLOOD_DONE, done, sizeof done);
    atomic_store(&smp.stop, true);
    pthread_join(smp.thread, NULL);
    CHECK(out != NULL);
    bool busy = strstr(out, "BUSY true") != NULL;
    bool finished = strstr(out, "DONE") != NULL;
    free(out);
    stop();
    fprintf(stderr, "  deepest mailbox %" PRIu64 " (of %d sent)\n", smp.deepest,
            FLOOD_N);
    CHECK(counted);
    CHECK_EQ(done[0], FLOOD_N);
    CHECK_EQ(done[1], 0);
    CHECK(finished);
    CHECK(busy);
    CHECK(smp.deepest <= 2048);
}

static void ticks_answered(void)
{
    CHECK(start());
    /* Erlang ticks every second and drops a connection silent for 4 s;
     * Grove's own keepalive waits 15 s, so only its answers to the
     * ticks keep the idle connection up. */
    setenv("ERL_FLAGS", "-kernel net_ticktime 4", 1);
    char *out = erl_run(
        COOKIE, "R1 = gen_server:call({echo, G}, one),"
                "ok = net_kernel:monitor_nodes(true, [{node_type, all}]),"
                "timer:sleep(6000),"
                "Lost = receive {nodedown, _, _} -> lost after 0 -> kept end,"
                "R2 = gen_server:call({echo, G}, two),"
                "io:format(\"CALLS ~p ~p ~p~n\", [R1, R2, Lost]),");
    unsetenv("ERL_FLAGS");
    CHECK(out != NULL);
    bool kept = strstr(out, "CALLS {ok,one} {ok,two} kept") != NULL;
    free(out);
    stop();
    CHECK(kept);
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

/* Starts an erl node (erl_node) that registers ebox, pings Grove and
 * then waits; its pid once it said READY, or -1 (*out: its output). */
static pid_t erl_waiting(int *out_fd)
{
    char eval[512];
    snprintf(eval, sizeof eval,
             "register(ebox, self()), pong = net_adm:ping('%s'),"
             "io:format(\"READY~n\"), receive stop -> ok end.",
             grove_node);
    int out[2];
    if (pipe(out) != 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        erl_die_with(parent);
        setenv("ERL_CRASH_DUMP_SECONDS", "0", 1);
        dup2(out[1], 1);
        close(out[0]);
        execlp("erl", "erl", "-noshell", "-name", erl_node, "-setcookie",
               COOKIE, "-eval", eval, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    *out_fd = out[0];
    char said[256] = "";
    size_t len = 0;
    double until = test_now() + ERL_LIMIT_S;
    while (pid > 0 && strstr(said, "READY") == NULL && len < sizeof said - 1) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        int left = (int)((until - test_now()) * 1000);
        ssize_t k;
        if (left <= 0 || poll(&p, 1, left) <= 0 ||
            (k = read(out[0], said + len, sizeof said - 1 - len)) <= 0)
            break;
        len += (size_t)k;
        said[len] = '\0';
    }
    return strstr(said, "READY") != NULL ? pid : -1;
}

/* erl_waiting's erl, then stopped (SIGSTOP): a peer that reads nothing
 * more. */
static pid_t erl_stopped(int *out_fd)
{
    pid_t pid = erl_waiting(out_fd);
    if (pid > 0)
        kill(pid, SIGSTOP);
    return pid;
}

/* Ends an erl from erl_waiting (pid -1 and fd -1: none). */
static void erl_kill(pid_t pid, int out_fd)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    if (out_fd >= 0)
        close(out_fd);
}

/* Sends 64 KiB messages to ebox on erl_node until they are refused for
 * backpressure (the node stopped reading: the kernel's buffers are full,
 * then the node's queue), or, with cap, until cap logged a line with
 * "disconnected" and "send failed"; false if neither came. */
static bool send_until_refused(struct capture *cap)
{
    static char big[1 << 16];
    char to[128];
    snprintf(to, sizeof to, "ebox@%s", erl_node);
    double until = test_now() + 30;
    while (test_now() < until) {
        int rc =
            gr_system_tell_name(sys, GR_REF_NONE, to, MSG_RAW, big, sizeof big);
        if (rc == GR_EBACKPRESSURE && cap == NULL)
            return true;
        if (rc == GR_EBACKPRESSURE)
            sleep_ms(10);
        else if (rc != GR_OK)
            return false;
        if (cap != NULL &&
            capture_count(cap, GR_LOG_INFO, "disconnected", "send failed") > 0)
            return true;
    }
    return false;
}

/* A peer that stops reading (an erl stopped with SIGSTOP): sends to it
 * fill its socket and then its queue, and are refused; after
 * connect_timeout_ms without progress the connection closes, and
 * shutdown does not hang. */
static void stalled_peer_times_out(void)
{
    struct capture cap;
    CHECK(start_logged(&cap, 300));
    int out = -1;
    pid_t pid = erl_stopped(&out);
    bool ready = pid > 0;
    bool dropped = ready && send_until_refused(&cap);
    erl_kill(pid, out);
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

/* A connection that closes leaves the others whole: the thread keeps its
 * connections in an array and moves the last into a closed one's place,
 * so nothing may point into one. Node A connects, then node B; A is
 * killed; then Grove tells B to go on and B calls. */
static void a_closed_connection_leaves_the_others_whole(void)
{
    struct capture cap;
    CHECK(start_logged_echo(&cap, 0));
    int a_out = -1;
    pid_t a = erl_waiting(&a_out);
    /* B: another name (erl_node is A's). */
    char a_node[64], b_node[64];
    snprintf(a_node, sizeof a_node, "%s", erl_node);
    erl_node[0] = 'b';
    snprintf(b_node, sizeof b_node, "%s", erl_node);
    erl b;
    bool b_up =
        a > 0 &&
        erl_start(&b, COOKIE,
                  "register(bbox, self()), pong = net_adm:ping(G),"
                  "io:format(\"UP~n\"),"
                  "receive _ -> ok after 30000 -> io:format(\"NO GO~n\")"
                  " end, R = gen_server:call({echo, G}, ping),"
                  "io:format(\"PONG ~p~n\", [R]),") &&
        erl_read(&b, "UP");
    snprintf(erl_node, sizeof erl_node, "%s", a_node);
    erl_kill(a, a_out);
    double until = test_now() + 10;
    while (capture_count(&cap, GR_LOG_INFO, "disconnected", a_node) == 0 &&
           test_now() < until)
        sleep_ms(1);
    char to[128];
    snprintf(to, sizeof to, "bbox@%s", b_node);
    int told =
        gr_system_tell_name(sys, GR_REF_NONE, to, GR_MSG_TERM, "\xa2go", 3);
    bool ponged = false;
    if (b_up) {
        (void)erl_read(&b, "PONG");
        char *said = erl_end(&b);
        ponged = strstr(said, "PONG {ok,ping}") != NULL;
        free(said);
    }
    gr_inbox_close(inbox);
    (void)gr_system_shutdown(sys);
    epmd_stop();
    pthread_mutex_destroy(&cap.lock);
    CHECK(a > 0);
    CHECK(b_up);
    CHECK_EQ(told, GR_OK);
    CHECK(ponged);
}

/* A listener at epmd's port on 127.0.0.2 (the test's epmd listens on
 * 127.0.0.1 only) that accepts nothing and says nothing; -1 when it
 * cannot be made. */
static int silent_epmd(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(epmd_port))};
    sa.sin_addr.s_addr = htonl(0x7f000002); /* 127.0.0.2 */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
                    listen(fd, 8) != 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* A system that stops does not wait for a connect under way. With a
 * connect_timeout_ms of a minute, a send to a node that never answers
 * starts one: in round 0 the node never answers its handshake; in round
 * 1 its host's epmd (on 127.0.0.2) never answers the lookup (as a host
 * that drops packets, or a hung epmd; erl_interface's own lookup did not
 * end at a stop). Once
 * the silent end has the connection, gr_system_shutdown returns within
 * seconds (it waited out the minute before), and the send, still waiting
 * for its connect, becomes one node_down dead letter, as a message still
 * queued for an actor does (none came before a2a19c9). */
static void shutdown_ends_connects_under_way(void)
{
    for (int round = 0; round < 2; round++) {
        struct capture cap;
        /* Round 1 under another name: epmd may not have dropped round 0's
         * (it does when that registration's socket closes). */
        if (round == 1)
            grove_node[0] = 'h';
        bool started = round == 0 ? start_logged(&cap, 60000)
                                  : start_logged_here(&cap, 60000);
        if (!started)
            capture_dump(&cap);
        CHECK(started);
        int silent = -1, reg = -1;
        bool made = round == 0 ? silent_node("hole", &silent, &reg)
                               : (silent = silent_epmd()) >= 0;
        int sent = gr_system_tell_name(sys, GR_REF_NONE,
                                       round == 0 ? "x@hole@127.0.0.1"
                                                  : "x@hole@127.0.0.2",
                                       GR_MSG_TERM, "\xa3hey", 4);
        /* The connector has connected: what it waits for never comes. */
        struct pollfd p = {.fd = silent, .events = POLLIN};
        bool dialled = made && sent == GR_OK && poll(&p, 1, 10000) == 1;
        double t0 = test_now();
        (void)gr_system_shutdown(sys);
        double took = test_now() - t0;
        unsigned dead =
            capture_count(&cap, GR_LOG_WARN, "dead letter", "reason node_down");
        if (round == 1)
            epmd_stop();
        grove_node[0] = 'g';
        if (reg >= 0)
            close(reg);
        if (silent >= 0)
            close(silent);
        if (dead != 1 || took >= 10) {
            fprintf(stderr, "  round %d: gr_system_shutdown took %.1f s\n",
                    round, took);
            capture_dump(&cap);
        }
        pthread_mutex_destroy(&cap.lock);
        CHECK(made);
        CHECK_EQ(sent, GR_OK);
        CHECK(dialled);
        CHECK(took < 10);
        CHECK_EQ(dead, 1);
    }
}

/* A peer that stops reading holds up only its own connection: while its
 * frames wait (its queue full, sends to it refused), another Erlang node
 * connects and calls, long before the stalled one's connect_timeout_ms
 * (8 s; Erlang's call gives up after 5 s) runs out. */
static void stalled_peer_holds_up_nothing(void)
{
    struct capture cap;
    CHECK(start_logged_echo(&cap, 8000));
    int out = -1;
    pid_t pid = erl_stopped(&out);
    bool ready = pid > 0;
    bool refused = ready && send_until_refused(NULL);
    /* Another node (another name: erl_node is the stalled one's). */
    char stalled[64];
    snprintf(stalled, sizeof stalled, "%s", erl_node);
    erl_node[0] = 'f';
    char *said = refused
                     ? erl_run(COOKIE, "R = gen_server:call({echo, G}, ping),"
                                       "io:format(\"PONG ~p~n\", [R]),")
                     : NULL;
    snprintf(erl_node, sizeof erl_node, "%s", stalled);
    bool ponged = said != NULL && strstr(said, "PONG {ok,ping}") != NULL;
    unsigned cut_before =
        capture_count(&cap, GR_LOG_INFO, "disconnected", "send failed");
    if (!ponged)
        fprintf(stderr, "erl said:\n%s\n", said != NULL ? said : "(nothing)");
    free(said);
    erl_kill(pid, out);
    gr_inbox_close(inbox);
    (void)gr_system_shutdown(sys);
    epmd_stop();
    pthread_mutex_destroy(&cap.lock);
    CHECK(ready);
    CHECK(refused);
    CHECK(ponged);
    CHECK_EQ(cut_before, 0);
}

static void bad_config_fails_start(void)
{
    gr_system *s = NULL;
    gr_config cfg = {.workers = 1,
                     .dist = {.node_name = "no-host-part", .cookie = COOKIE}};
    CHECK_EQ(gr_system_start(&cfg, &s), GR_EINVAL);
    const char *bad[] = {"grove@", "@127.0.0.1", "a@b@127.0.0.1", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.dist.node_name = bad[i];
        CHECK_EQ(gr_system_start(&cfg, &s), GR_EINVAL);
    }
    cfg.dist.node_name = "grove@127.0.0.1";
    cfg.dist.cookie = "";
    CHECK_EQ(gr_system_start(&cfg, &s), GR_EINVAL);
    cfg.dist.cookie = COOKIE;
    cfg.dist.listen = "not-an-address";
    CHECK_EQ(gr_system_start(&cfg, &s), GR_EINVAL);
    /* No epmd on this port. */
    snprintf(epmd_port, sizeof epmd_port, "%u", erl_free_port());
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
    {"whereis_then_call_erlang", whereis_then_call_erlang},
    {"links_both_ways", links_both_ways},
    {"erlang_monitors_grove", erlang_monitors_grove},
    {"grove_monitors_erlang", grove_monitors_erlang},
    {"grove_asks_are_monitored", grove_asks_are_monitored},
    {"ask_to_unreachable_node_fails", ask_to_unreachable_node_fails},
    {"silent_nodes_hold_up_nothing", silent_nodes_hold_up_nothing},
    {"shutdown_ends_connects_under_way", shutdown_ends_connects_under_way},
    {"silent_flood_keeps_no_node_out", silent_flood_keeps_no_node_out},
    {"connects_both_ways_at_once", connects_both_ways_at_once},
    {"erlang_connects_as_grove_does", erlang_connects_as_grove_does},
    {"handshakes_before_the_cookie_claim_nothing",
     handshakes_before_the_cookie_claim_nothing},
    {"reconnect_while_held_let_in", reconnect_while_held_let_in},
    {"descriptors_run_out", descriptors_run_out},
    {"many_calls_wait_at_once", many_calls_wait_at_once},
    {"killed_erlang_node_is_noconnection", killed_erlang_node_is_noconnection},
    {"two_hosts", two_hosts},
    {"connections_send_at_once", connections_send_at_once},
    {"erlang_flood_is_held_back", erlang_flood_is_held_back},
    {"ticks_answered", ticks_answered},
    {"wrong_cookie_refused", wrong_cookie_refused},
    {"stalled_peer_times_out", stalled_peer_times_out},
    {"stalled_peer_holds_up_nothing", stalled_peer_holds_up_nothing},
    {"a_closed_connection_leaves_the_others_whole",
     a_closed_connection_leaves_the_others_whole},
    {"bad_config_fails_start", bad_config_fails_start}};

int main(int argc, char **argv)
{
    if (!erl_have("erl") || !erl_have("epmd")) {
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
