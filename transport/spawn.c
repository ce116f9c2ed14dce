/*
 * Node children, parent side: the stand-in behaviour a supervisor runs for
 * a GR_NODE child. Its init starts the process (cloned from its program's
 * fork server template, or by fork + exec; the link's far end passed on)
 * and finishes the handshake before it returns; it exits when the process
 * does, with a reason that names the exit status or signal.
 */
#define _GNU_SOURCE /* environ. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grove/link.h>

#include "actor/runtime.h"
#include "transport/forkserver.h"
#include "transport/transport.h"

extern char **environ;

#define NODE_FD_ENV GR__NODE_FD_ENV
/* Default handshake deadline. */
#define DEFAULT_START_MS 5000u
/* Longest WELCOME body accepted. */
#define WELCOME_MAX 256u
/* How long a node gets to stop when the whole system shuts down. */
#define SHUTDOWN_WAIT_MS 5000

/* Checks a node name: a name (gr__name_check), not the root's. */
static int check_name(const char *name)
{
    int rc = gr__name_check(name);
    if (rc == GR_OK && strcmp(name, GR__ROOT_NODE_NAME) == 0)
        rc = GR_EINVAL;
    return rc;
}

/* Builds the child's environment: ours, with NODE_FD_ENV set to fd (for a
 * template, to GR__TEMPLATE_FD_PREFIX and fd). */
static char **child_env(int fd, bool template)
{
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **env = malloc((n + 2) * sizeof *env);
    char *var = malloc(48);
    if (env == NULL || var == NULL) {
        free(env);
        free(var);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], NODE_FD_ENV "=", sizeof NODE_FD_ENV) != 0)
            env[k++] = environ[i];
    snprintf(var, 48, NODE_FD_ENV "=%s%d",
             template ? GR__TEMPLATE_FD_PREFIX : "", fd);
    env[k++] = var;
    env[k] = NULL;
    return env;
}

static void free_env(char **env)
{
    size_t n = 0;
    while (env[n + 1] != NULL)
        n++;
    free(env[n]); /* Ours, the last. */
    free(env);
}

/* Starts the process; returns its pid or -1. Only async-signal-safe calls
 * run in the child between fork and exec. */
static pid_t start_process(const gr_node_spec *spec, int child_fd, char **env)
{
    const char *exe = spec->exe != NULL ? spec->exe : "/proc/self/exe";
    const char *const default_argv[] = {exe, NULL};
    char *const *argv =
        (char *const *)(spec->argv != NULL ? spec->argv : default_argv);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* The child. No PR_SET_PDEATHSIG: it fires when the forking *thread*
     * ends, and a worker thread ends at every system shutdown, which
     * would SIGKILL nodes due an orderly stop. A node notices its parent's
     * end by EOF on the link instead (see gr__link_down), a template by
     * EOF on its control socket. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    fcntl(child_fd, F_SETFD, 0);
    execve(exe, argv, env);
    _exit(127);
}

pid_t gr__spawn_exec(const gr_node_spec *spec, int fd, bool template, int *rc)
{
    char **env = child_env(fd, template);
    if (env == NULL) {
        *rc = GR_ENOMEM;
        return -1;
    }
    pid_t pid = start_process(spec, fd, env);
    free_env(env);
    *rc = pid < 0 ? GR_ESYS : GR_OK;
    return pid;
}

/* Reaps a process that failed its start, killing it first. */
static int reap_failed(pid_t pid)
{
    int status = 0;
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

/* Reads and checks the WELCOME; stores the node's root actor in *root.
 * Returns GR_OK or an error with *why set. */
static int read_welcome(gr__transport *t, int fd, uint32_t node, uint32_t inc,
                        uint64_t deadline, gr_ref *root, const char **why)
{
    uint8_t hdr[GR__WIRE_HEADER], body[WELCOME_MAX];
    int rc = gr__read_all(fd, hdr, sizeof hdr, deadline);
    gr__wire_header h;
    if (rc != GR_OK) {
        *why = rc == GR_ETIMEDOUT ? "no handshake in time"
                                  : "the process exited during its start";
        return rc == GR_ENOCONNECTION ? GR_EINIT : rc;
    }
    if (gr__wire_header_parse(hdr, &h) != GR_OK || h.kind != GR__WIRE_WELCOME ||
        h.len > WELCOME_MAX) {
        *why = "not a handshake frame";
        return GR_EPROTO;
    }
    if ((rc = gr__read_all(fd, body, h.len, deadline)) != GR_OK) {
        *why = "handshake cut short";
        return GR_EPROTO;
    }
    gr__wire_hello w;
    if (gr__wire_decode_hello(GR__WIRE_WELCOME, body, h.len, &w, why) != GR_OK)
        return GR_EPROTO;
    /* Constant time: how much matched must not leak. */
    uint8_t diff = 0;
    for (size_t i = 0; i < GR__WIRE_SECRET; i++)
        diff |= (uint8_t)(w.secret[i] ^ t->secret[i]);
    if (diff != 0) {
        *why = "wrong secret";
        return GR_EPROTO;
    }
    if (w.node != node || w.incarnation != inc) {
        *why = "wrong node or incarnation";
        return GR_EPROTO;
    }
    *root = (gr_ref){.serial = w.root_serial, .node = node, .incarnation = inc};
    return GR_OK;
}

/* Checks what a node spec names: GR_OK, or GR_EINVAL or GR_ENAMETOOLONG
 * with *why set. */
static int check_spec(const gr_node_spec *spec, const char **why)
{
    int rc = check_name(spec->name);
    if (rc != GR_OK) {
        *why = spec->name != NULL && strcmp(spec->name, GR__ROOT_NODE_NAME) == 0
                   ? "name: \"root\" is the first process's"
                   : "name: not a node name (1..63 printable bytes, no '@')";
        return rc;
    }
    if ((spec->arg == NULL) != (spec->arg_len == 0)) {
        *why = "arg and arg_len disagree";
        return GR_EINVAL;
    }
    if ((rc = gr__label_check(spec->root)) != GR_OK)
        *why = "root: not a behaviour name in the node's table";
    return rc;
}

/* The HELLO frame for a new process of spec (malloc'd; NULL when out of
 * memory); its length in *len. */
static uint8_t *hello_frame(const gr_system *sys, const gr__transport *t,
                            const gr_node_spec *spec, uint32_t node,
                            uint32_t inc, size_t *len)
{
    gr__wire_hello hello = {.node = node,
                            .incarnation = inc,
                            .parent = gr__system_node_id(sys),
                            .parent_inc = gr__system_incarnation(sys),
                            .max_frame = t->max_frame,
                            .name = spec->name,
                            .name_len = strlen(spec->name),
                            .root = spec->root,
                            .root_len = strlen(spec->root),
                            .arg = spec->arg,
                            .arg_len = spec->arg_len};
    memcpy(hello.secret, t->secret, sizeof hello.secret);
    return gr__wire_hello_frame(GR__WIRE_HELLO, &hello, len);
}

/* Opens a link's socket pair, sv[0] (ours) nonblocking from the start so
 * the handshake's deadlines hold even for a child that never reads or
 * never answers. Returns GR_OK or GR_ESYS. */
static int open_pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return GR_ESYS;
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    return GR_OK;
}

/* Opens a link's socket pair with the first of the HELLO's len bytes
 * already in it: as many as the socket takes now (stored in *early), so
 * that the node finds its HELLO waiting, not one more wake-up away.
 * Returns GR_OK or GR_ESYS. */
static int open_link(int sv[2], const uint8_t *hello, size_t len, size_t *early)
{
    int rc = open_pair(sv);
    ssize_t n = -1;
    if (rc == GR_OK)
        n = send(sv[0], hello, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    *early = n > 0 ? (size_t)n : 0;
    return rc;
}

/* Opens the link (see open_link) and starts the process with sv[1]: from
 * its program's fork server template, else by fork + exec. Returns its
 * pid, or -1 with both ends closed and *rc set (and *why, when the fork
 * server's wait used up the start's time). */
static pid_t start_with_link(gr__transport *t, const gr_node_spec *spec,
                             uint64_t deadline, const uint8_t *hello,
                             size_t hello_len, int sv[2], size_t *early,
                             int *rc, const char **why)
{
    if ((*rc = open_link(sv, hello, hello_len, early)) != GR_OK)
        return -1;
    bool sent;
    pid_t pid = gr__forkserver_spawn(t, spec, sv[1], deadline, &sent, why);
    if (pid < 0)
        *rc = GR_ETIMEDOUT;
    if (pid == 0 && sent) {
        /* A template that did not answer may have passed sv[1] on: a
         * fresh pair, so no stray process can take this start's HELLO. */
        close(sv[0]);
        close(sv[1]);
        if ((*rc = open_link(sv, hello, hello_len, early)) != GR_OK)
            return -1;
    }
    if (pid == 0)
        pid = gr__spawn_exec(spec, sv[1], false, rc);
    close(sv[1]);
    if (pid < 0)
        close(sv[0]);
    return pid;
}

/* The parent's half of the handshake on fd: sends the HELLO (what of it
 * open_link did not), checks the WELCOME, by deadline; stores the node's
 * root actor in *root. Returns GR_OK or an error with *why set. */
static int handshake(gr__transport *t, int fd, const uint8_t *hello,
                     size_t hello_len, uint32_t node, uint32_t inc,
                     uint64_t deadline, gr_ref *root, const char **why)
{
    int rc = gr__write_all(fd, hello, hello_len, deadline);
    if (rc == GR_OK)
        return read_welcome(t, fd, node, inc, deadline, root, why);
    *why = "could not send the handshake";
    /* Anything but the deadline: it died before reading the handshake. */
    return rc == GR_ETIMEDOUT ? rc : GR_EINIT;
}

/* Makes the link over fd for a process that finished its handshake and
 * adds it to the transport; stores it (one reference for the caller, one
 * for the transport) in *out. On failure fd is still the caller's. */
static int add_link(gr__transport *t, int fd, const gr_node_spec *spec,
                    uint32_t node, uint32_t inc, pid_t pid, gr_ref self,
                    bool supervised, gr__link **out, const char **why)
{
    gr__link *l = gr__link_new(t, fd, node, inc, spec->name);
    if (l == NULL) {
        *why = "out of memory";
        return GR_ENOMEM;
    }
    l->pid = pid;
    l->proxy = self;
    l->supervised = supervised;
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    int rc = gr__transport_add(t, l);
    if (rc != GR_OK) {
        *why = "a node with its id is connected already";
        l->fd = -1; /* The caller's. */
        gr__link_release(l);
        gr__link_release(l);
        return rc;
    }
    *out = l;
    return GR_OK;
}

/* Kills and reaps a process whose start failed with rc, and logs why. */
static void start_failed(gr_system *sys, const gr_node_spec *spec, pid_t pid,
                         int rc, const char *why)
{
    int status = reap_failed(pid);
    char st[64];
    if (WIFEXITED(status))
        snprintf(st, sizeof st, "exit status %d", WEXITSTATUS(status));
    else
        snprintf(st, sizeof st, "signal %d", WTERMSIG(status));
    gr__log(gr__system_log(sys), GR_LOG_ERROR,
            "node %s failed to start (pid %d, %s): %s: %s", spec->name,
            (int)pid, st, gr_errname(rc), why);
}

/*
 * Starts a node process for spec and finishes its handshake; on success
 * stores a link with the process's pid (one reference for the caller, one
 * for the transport) in *out and the node's root actor in *root. Blocks the
 * calling thread up to the spec's start timeout. supervised: the stand-in
 * self is a supervisor's child (whose reports make the node's own events
 * GR_EVENT_SUPERVISED).
 */
static int spawn_node(gr_system *sys, const gr_node_spec *spec, gr_ref self,
                      bool supervised, gr__link **out, gr_ref *root)
{
    const char *why;
    int rc = check_spec(spec, &why);
    if (rc != GR_OK) {
        gr__log(gr__system_log(sys), GR_LOG_ERROR, "node spec refused: %s: %s",
                why, gr_errname(rc));
        return rc;
    }
    gr__transport *t = gr__transport_of(sys);
    if (t == NULL)
        return GR_ENOMEM;
    uint32_t node = gr__node_id(spec->name, strlen(spec->name)), inc;
    if (gr__transport_has_node(t, node)) /* Checked again when added. */
        return GR_EEXIST;
    if ((rc = gr__new_incarnation(&inc)) != GR_OK)
        return rc;
    size_t hello_len;
    uint8_t *hello = hello_frame(sys, t, spec, node, inc, &hello_len);
    if (hello == NULL)
        return GR_ENOMEM;
    uint32_t ms =
        spec->start_timeout_ms ? spec->start_timeout_ms : DEFAULT_START_MS;
    uint64_t deadline = gr__mono_ns() + (uint64_t)ms * 1000000u;
    int sv[2];
    size_t early;
    why = NULL;
    pid_t pid = start_with_link(t, spec, deadline, hello, hello_len, sv, &early,
                                &rc, &why);
    if (pid < 0) {
        if (why != NULL)
            gr__log(gr__system_log(sys), GR_LOG_ERROR,
                    "node %s failed to start: %s: %s", spec->name,
                    gr_errname(rc), why);
        goto free_hello;
    }
    rc = handshake(t, sv[0], hello + early, hello_len - early, node, inc,
                   deadline, root, &why);
    if (rc != GR_OK || (rc = add_link(t, sv[0], spec, node, inc, pid, self,
                                      supervised, out, &why)) != GR_OK)
        goto kill_process;
    free(hello);
    gr_event ev = {.kind = GR_EV_NODE_UP,
                   .level = GR_LOG_INFO,
                   .flags = supervised ? GR_EVENT_SUPERVISED : 0u,
                   .actor = self,
                   .node = spec->name,
                   .pid = pid};
    gr__system_emit(sys, &ev);
    return GR_OK;

kill_process:
    close(sv[0]);
    start_failed(sys, spec, pid, rc, why);
free_hello:
    free(hello);
    return rc;
}

/* ---- The stand-in behaviour. */

typedef struct standin {
    gr__link *link;
    gr_ref root;         /* The node's root actor: where messages go on. */
    bool stopping;       /* A shutdown request was sent. */
    gr_reason stop_with; /* The reason to exit with once it is down. */
} standin;

static int standin_init(gr_ctx *ctx, void *state, const void *arg,
                        size_t arg_len)
{
    standin *s = state;
    gr_node_spec spec;
    if (arg_len != sizeof spec)
        return GR_EINVAL;
    memcpy(&spec, arg, sizeof spec);
    gr_trap_exit(ctx, 1);
    return spawn_node(gr_ctx_system(ctx), &spec, gr_self(ctx),
                      gr__ctx_supervised(ctx), &s->link, &s->root);
}

/*
 * Passes an application message on to the node's root, as it is: its
 * sender, and for a request its corr, stay, so the root's answer goes
 * straight to the asker. The request stays open here too (the runtime
 * holds it), so an asker whose node dies first is failed at once when
 * this stand-in exits; an asker answered by the root has the stand-in
 * forget it. What cannot be passed on is a dead letter (node_down).
 */
static void forward_to_root(gr_ctx *ctx, const standin *s, const gr_msg *m)
{
    gr_system *sys = gr_ctx_system(ctx);
    gr_msg fwd = *m;
    fwd.to = s->root;
    (void)gr__deliver_msg(sys, gr__worker_of(sys), &fwd);
}

static int standin_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    standin *s = state;
    if (m->type < GR_MSG_RESERVED &&
        !(m->flags & (GR_MSG_REPLY | GR_MSG_TIMER))) {
        forward_to_root(ctx, s, m);
        return GR_CONTINUE;
    }
    if (m->type == GR__MSG_NODE_EXITED && m->len == sizeof(gr__node_exit)) {
        gr__node_exit x;
        memcpy(&x, m->data, sizeof x);
        /* Asked to stop and stopped cleanly: the requested reason. */
        if (s->stopping && x.reason.code == GR_OK)
            x.reason = s->stop_with;
        return gr_stop_with(ctx, &x.reason);
    }
    gr_exit_msg e;
    if (m->type == GR_MSG_EXIT && gr_exit_read(m, &e) == GR_OK &&
        e.reason.code != GR_OK && !s->stopping) {
        /* Told to stop (by its supervisor, usually with shutdown): ask
         * the node, and exit when it is down; a kill cuts this short. */
        s->stopping = true;
        s->stop_with = e.reason;
        gr__transport_request_stop(s->link);
    }
    return GR_CONTINUE;
}

static void standin_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)why;
    standin *s = state;
    gr_system *sys = gr_ctx_system(ctx);
    if (s->link == NULL)
        return;
    if (gr__system_shutting_down(sys))
        gr__transport_stop_blocking(s->link, SHUTDOWN_WAIT_MS);
    else
        gr__transport_kill(s->link);
    /* Its routes go now, so a restarted node can take its name at once. */
    gr__transport_lose_routes(s->link);
    gr__link_release(s->link);
}

const gr_behaviour gr_node_behaviour = {
    .name = "node",
    .state_size = sizeof(standin),
    .init = standin_init,
    .handle = standin_handle,
    .terminate = standin_terminate,
};
