/*
 * chat: a multi-room TCP chat server. Rooms live in a separate OS process
 * (a node child): kill -9 it and it comes back, and every member is told.
 * The protocol and a session with nc are in README.md.
 *
 *   chat [--listen HOST:PORT] [--max-clients N] [--send-buffer BYTES]
 *        [--rate LINES]
 *
 * Each flag can come from the environment instead (CHAT_LISTEN,
 * CHAT_MAX_CLIENTS, CHAT_SEND_BUFFER, CHAT_RATE); flags win. The default
 * address is 127.0.0.1:7777; port 0 picks one, and the "listening on" line says
 * which. GROVE_LOG=chat.jsonl writes the restart and dead-letter log.
 * SIGINT or SIGTERM shuts it down: every client is told, then closed.
 */
#define _POSIX_C_SOURCE 200809L

#include "chat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the rooms node runs: its own supervisor over the room manager
 * (which starts the rooms). A manager that crashes is restarted inside
 * the node; past the intensity the node exits, and the root's supervisor
 * starts a new process. Either way the sessions' monitors fire and they
 * join again. */
static const gr_child_spec rooms_children[] = {{
    .id = "manager",
    .name = CHAT_ROOMS_NAME,
    .behaviour = &chat_rooms,
    .restart = GR_PERMANENT,
}};
static const gr_sup_spec rooms_tree = {
    .strategy = GR_ONE_FOR_ONE,
    .intensity = 5,
    .period_ms = 10000,
    .children = rooms_children,
    .nchildren = 1,
    .name = "rooms_sup",
};
static const gr_node_root roots[] = {{.name = "rooms",
                                      .behaviour = &gr_supervisor_behaviour,
                                      .arg = &rooms_tree,
                                      .arg_len = sizeof rooms_tree}};
/* argv[0] names the process in ps: "chat-rooms", not /proc/self/exe. */
static const char *const rooms_argv[] = {"chat-rooms", NULL};
static const gr_node_spec rooms_node = {
    .name = CHAT_ROOMS_NODE, .root = "rooms", .argv = rooms_argv};

/* Sessions: one per connection, never restarted (the client is gone). */
static const gr_child_spec session_template[] = {{
    .behaviour = &chat_session,
    .restart = GR_TEMPORARY,
}};
static const gr_sup_spec sessions_spec = {
    .strategy = GR_SIMPLE_ONE_FOR_ONE,
    .children = session_template,
    .nchildren = 1,
};

/* Reads a setting: the flag's value, else the environment's, else def. */
static const char *setting(int argc, char **argv, const char *flag,
                           const char *env, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return argv[i + 1];
    const char *v = getenv(env);
    return v != NULL && *v != '\0' ? v : def;
}

static int usage(void)
{
    fprintf(stderr, "usage: chat [--listen HOST:PORT] [--max-clients N] "
                    "[--send-buffer BYTES] [--rate LINES]\n"
                    "  (or CHAT_LISTEN, CHAT_MAX_CLIENTS, CHAT_SEND_BUFFER, "
                    "CHAT_RATE in the environment)\n");
    return 2;
}

/* Reads a numeric setting in [min, max] into *out; false (said why) when
 * it is not a number in that range. */
static bool number(int argc, char **argv, const char *flag, const char *env,
                   const char *def, long min, long max, long *out)
{
    const char *v = setting(argc, argv, flag, env, def);
    char *end;
    errno = 0;
    *out = strtol(v, &end, 10);
    if (errno == 0 && end != v && *end == '\0' && *out >= min && *out <= max)
        return true;
    fprintf(stderr,
            "chat: %s (or %s) must be a number from %ld to %ld, not "
            "\"%s\"\n",
            flag, env, min, max, v);
    return false;
}

int main(int argc, char **argv)
{
    int code;
    if (gr_node_main(roots, 1, NULL, &code))
        return code; /* This process was the rooms node. */
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            (void)usage();
            return 0;
        }
        static const char *const flags[] = {"--listen", "--max-clients",
                                            "--send-buffer", "--rate"};
        bool known = false;
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++)
            known = known || strcmp(argv[i], flags[f]) == 0;
        if (!known || i + 1 >= argc) {
            fprintf(stderr, "chat: %s %s\n", argv[i],
                    known ? "needs a value" : "is not a flag");
            return usage();
        }
    }
    chat_listen_arg l = {0};
    snprintf(l.addr, sizeof l.addr, "%s",
             setting(argc, argv, "--listen", "CHAT_LISTEN", "127.0.0.1:7777"));
    long max, buf, rate;
    if (!number(argc, argv, "--max-clients", "CHAT_MAX_CLIENTS", "1000", 1,
                1000000, &max) ||
        !number(argc, argv, "--send-buffer", "CHAT_SEND_BUFFER", "65536", 1024,
                64L * 1024 * 1024, &buf) ||
        !number(argc, argv, "--rate", "CHAT_RATE", "10", 1, 1000000, &rate))
        return usage();
    l.max_clients = (uint32_t)max;
    l.session.send_limit = (uint32_t)buf;
    l.session.line_rate = (uint32_t)rate;

    gr_child_spec children[] = {
        {.id = "registry",
         .name = CHAT_REGISTRY,
         .behaviour = &chat_registry,
         .restart = GR_PERMANENT},
        {.id = "relay",
         .name = CHAT_RELAY,
         .behaviour = &chat_relay,
         .restart = GR_PERMANENT},
        {.id = "rooms",
         .behaviour = &gr_node_behaviour,
         .arg = &rooms_node,
         .arg_len = sizeof rooms_node,
         .restart = GR_PERMANENT,
         .type = GR_NODE},
        {.id = "sessions",
         .name = CHAT_SESSIONS,
         .behaviour = &gr_supervisor_behaviour,
         .arg = &sessions_spec,
         .arg_len = sizeof sessions_spec,
         .restart = GR_PERMANENT,
         .type = GR_SUPERVISOR},
        {.id = "listener",
         .behaviour = &chat_listener,
         .arg = &l,
         .arg_len = sizeof l,
         .restart = GR_PERMANENT},
    };
    /* One for one: the rooms node coming back must not touch sessions. */
    gr_sup_spec top = {.strategy = GR_ONE_FOR_ONE,
                       .intensity = 10,
                       .period_ms = 10000,
                       .children = children,
                       .nchildren = sizeof children / sizeof children[0],
                       .name = "top"};
    gr_system *sys;
    int rc = gr_system_start(NULL, &sys);
    if (rc != GR_OK) {
        fprintf(stderr, "chat: cannot start: %s\n", gr_strerror(rc));
        return 1;
    }
    if ((rc = gr_supervisor_start(sys, &top, NULL)) != GR_OK) {
        fprintf(stderr, "chat: cannot start the server: %s\n", gr_strerror(rc));
        gr_system_shutdown(sys);
        return 1;
    }
    return gr_system_run(sys) == GR_OK ? 0 : 1;
}
