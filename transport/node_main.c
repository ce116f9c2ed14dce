/*
 * Node children, node side: gr_node_main() turns a process started by a
 * node child spec into a node (or into its program's fork server template,
 * whose clones come back here as nodes: template.c). It reads the HELLO
 * from the inherited link,
 * starts a system with the node's identity, spawns the root, answers with
 * the WELCOME, and runs until told to stop, orphaned, or its root exits.
 */
#define _GNU_SOURCE /* unsetenv under -std=c11. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grove/monitor.h>
#include <grove/supervisor.h>

#include "actor/runtime.h"
#include "transport/forkserver.h"
#include "transport/transport.h"

/* Longest HELLO accepted: its fixed fields plus the root's arg. */
#define HELLO_MAX ((size_t)64 << 20)
/* How long the parent may take to send the HELLO. */
#define HELLO_WAIT_MS 10000u

/* Shared between gr_node_main and the keeper actor. */
typedef struct keeper_arg {
    gr_ref root;
    _Atomic(int) exit_code; /* The process's, from the root's exit. */
} keeper_arg;

/* Watches the root: when it exits, the node stops. */
static int keeper_init(gr_ctx *ctx, void *state, const void *arg,
                       size_t arg_len)
{
    (void)arg_len;
    keeper_arg *k;
    memcpy(&k, arg, sizeof k);
    memcpy(state, &k, sizeof k);
    return gr_monitor(ctx, k->root, NULL);
}

static int keeper_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    keeper_arg *k;
    memcpy(&k, state, sizeof k);
    gr_down d;
    if (gr_down_read(m, &d) == GR_OK) {
        int c = d.reason.code;
        /* The parent learns the root's crash code from the status. */
        atomic_store(&k->exit_code, c == GR_OK          ? 0
                                    : c == GR_ESHUTDOWN ? GR_NODE_EXIT_SHUTDOWN
                                    : c < 0 && c >= GR_NODE_EXIT_CRASH_MIN
                                        ? GR_NODE_EXIT_CRASH - c
                                        : 1);
        gr_system_stop(gr_ctx_system(ctx));
        return GR_STOP;
    }
    return GR_CONTINUE;
}

static const gr_behaviour keeper = {
    .name = "node-keeper",
    .state_size = sizeof(keeper_arg *),
    .init = keeper_init,
    .handle = keeper_handle,
};

/* Reads and checks the HELLO into *h, its body into *body (malloc'd). */
static int read_hello(int fd, gr__wire_hello *h, uint8_t **body,
                      const char **why)
{
    uint64_t deadline = gr__mono_ns() + (uint64_t)HELLO_WAIT_MS * 1000000u;
    uint8_t hdr[GR__WIRE_HEADER];
    gr__wire_header wh;
    *why = "no handshake from the parent";
    if (gr__read_all(fd, hdr, sizeof hdr, deadline) != GR_OK)
        return GR_EPROTO;
    *why = "not a HELLO";
    if (gr__wire_header_parse(hdr, &wh) != GR_OK || wh.kind != GR__WIRE_HELLO ||
        wh.len > HELLO_MAX)
        return GR_EPROTO;
    *body = malloc(wh.len ? wh.len : 1);
    *why = "handshake cut short";
    if (*body == NULL || gr__read_all(fd, *body, wh.len, deadline) != GR_OK)
        return GR_EPROTO;
    if (gr__wire_decode_hello(GR__WIRE_HELLO, *body, wh.len, h, why) != GR_OK)
        return GR_EPROTO;
    *why = "node id does not match its name";
    if (gr__node_id(h->name, h->name_len) != h->node || h->incarnation == 0)
        return GR_EPROTO;
    return GR_OK;
}

/* Copies a label of len bytes (at most GR_NAME_MAX) as a C string. */
static void copy_label(char *dst, const char *src, size_t len)
{
    if (len > 0)
        memcpy(dst, src, len);
    dst[len] = '\0';
}

/* The root behaviour named name in roots, or NULL. */
static const gr_node_root *find_root(const gr_node_root *roots, size_t n,
                                     const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (roots[i].name != NULL && strcmp(roots[i].name, name) == 0)
            return &roots[i];
    return NULL;
}

/* Gives sys the node's identity (name, and the HELLO's id and
 * incarnation) and adds its link to the
 * parent over fd, corked (nothing may precede the WELCOME). On success
 * *parent holds a reference of the caller's own, for the link may go down
 * (the parent dying) while the root starts. */
static int join_parent(gr_system *sys, int fd, const char *name,
                       const gr__wire_hello *h, _Atomic(int) *exit_code,
                       gr__link **parent)
{
    gr__system_set_node(sys, name, h->node, h->incarnation);
    gr__transport *t = gr__transport_of(sys);
    if (t == NULL)
        return GR_ENOMEM;
    gr__link *l = gr__link_new(t, fd, h->parent, h->parent_inc, "parent");
    if (l == NULL)
        return GR_ENOMEM;
    memcpy(t->secret, h->secret, sizeof t->secret);
    /* The root's limit holds system-wide: what the parent may send here,
     * and what this node may send anywhere. */
    if (h->max_frame != 0)
        t->max_frame = h->max_frame;
    t->node_exit = exit_code;
    l->is_parent = true;
    l->corked = true;
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    int rc = gr__transport_add(t, l);
    if (rc != GR_OK) {
        l->fd = -1; /* Closed by the process's exit. */
        gr__link_release(l);
        gr__link_release(l);
        return rc;
    }
    *parent = l;
    return GR_OK;
}

/* Spawns the root with the HELLO's arg (else the root's own), and the
 * keeper that watches it. */
static int start_root(gr_system *sys, const gr_node_root *root,
                      const gr__wire_hello *h, keeper_arg *k)
{
    bool own = h->arg_len == 0;
    /* Its parent's control endpoint reaches this process through it. */
    if (gr__control_agent_start(sys) != GR_OK)
        gr__log(gr__system_log(sys), GR_LOG_ERROR,
                "control: cannot start the node's agent; grove sees this "
                "node's pid only");
    if (!own && root->behaviour == &gr_supervisor_behaviour) {
        /* A gr_sup_spec is pointers into the parent's memory: here they
         * point at nothing, or at something else. */
        gr__log(gr__system_log(sys), GR_LOG_ERROR,
                "node root \"%s\" is a supervisor, whose spec cannot come "
                "from the parent (its pointers mean nothing in this "
                "process): leave the node spec's arg empty and give the "
                "spec in the gr_node_root entry (docs/nodes.md)",
                root->name);
        return GR_EINVAL;
    }
    int rc = gr_system_spawn(sys, root->behaviour, own ? root->arg : h->arg,
                             own ? root->arg_len : h->arg_len, &k->root);
    if (rc != GR_OK)
        return rc;
    gr__system_set_node_root(sys, k->root); /* grove tree */
    return gr_system_spawn(sys, &keeper, &k, sizeof k, NULL);
}

/* Writes the WELCOME (naming the root actor) on the corked parent link,
 * then uncorks it. */
static int send_welcome(gr__link *parent, const gr__wire_hello *h, gr_ref root)
{
    gr__wire_hello w = {.node = h->node,
                        .incarnation = h->incarnation,
                        .pid = getpid(),
                        .root_serial = root.serial};
    memcpy(w.secret, parent->t->secret, sizeof w.secret);
    size_t len = 0;
    uint8_t *welcome = gr__wire_hello_frame(GR__WIRE_WELCOME, &w, &len);
    if (welcome == NULL)
        return GR_ENOMEM;
    /* Corked: no other frame can reach the socket before this one. */
    pthread_mutex_lock(&parent->lock);
    int rc = gr__write_all(parent->fd, welcome, len,
                           gr__mono_ns() + (uint64_t)HELLO_WAIT_MS * 1000000u);
    pthread_mutex_unlock(&parent->lock);
    free(welcome);
    if (rc == GR_OK)
        gr__link_uncork(parent);
    return rc;
}

/* Runs the node whose link is fd; returns the process's exit status. */
static int run_node(int fd, const gr_node_root *roots, size_t nroots,
                    const gr_config *cfg)
{
    /* A node leaves SIGINT and SIGTERM alone: Ctrl-C reaches the whole
     * process group, and the root stops its nodes in order; a SIGTERM
     * sent to a node ends it, and its parent reports the signal. */
    gr_config node_cfg = cfg != NULL ? *cfg : (gr_config){0};
    node_cfg.no_signals = 1;
    signal(SIGINT, SIG_IGN);
    /* What goes wrong before the node's system exists is logged here. */
    gr__logger log;
    gr__logger_init(&log, &node_cfg);
    gr__wire_hello h;
    uint8_t *body = NULL; /* h's names and arg point into it. */
    const char *why;
    char name[GR_NAME_MAX + 1], root_name[GR_NAME_MAX + 1];
    const gr_node_root *root;
    gr_system *sys;
    int code = 1, rc;
    if (read_hello(fd, &h, &body, &why) != GR_OK) {
        gr__log(&log, GR_LOG_ERROR, "node (pid %d): %s", (int)getpid(), why);
        goto free_body;
    }
    copy_label(name, h.name, h.name_len);
    log.node = name; /* The lines before the system's name the node too. */
    copy_label(root_name, h.root, h.root_len);
    if ((root = find_root(roots, nroots, root_name)) == NULL) {
        gr__log(&log, GR_LOG_ERROR, "node %s: no root behaviour named \"%s\"",
                name, root_name);
        goto free_body;
    }
    if ((rc = gr__system_start_named(&node_cfg, name, &sys)) != GR_OK) {
        gr__log(&log, GR_LOG_ERROR, "node %s: system start failed: %s", name,
                gr_strerror(rc));
        goto free_body;
    }
    keeper_arg k = {.root = GR_REF_NONE};
    atomic_init(&k.exit_code, 0);
    gr__link *parent = NULL;
    if ((rc = join_parent(sys, fd, name, &h, &k.exit_code, &parent)) == GR_OK &&
        (rc = start_root(sys, root, &h, &k)) == GR_OK)
        rc = send_welcome(parent, &h, k.root);
    if (parent != NULL)
        gr__link_release(parent);
    if (rc != GR_OK) {
        gr__log(gr__system_log(sys), GR_LOG_ERROR, "node %s: start failed: %s",
                name, gr_strerror(rc));
        gr_system_shutdown(sys);
        goto free_body;
    }
    free(body);
    body = NULL;
    gr_system_run(sys);
    code = atomic_load(&k.exit_code);
free_body:
    free(body);
    return code;
}

int gr_node_main(const gr_node_root *roots, size_t nroots, const gr_config *cfg,
                 int *exit_code)
{
    const char *v = getenv(GR__NODE_FD_ENV);
    if (v == NULL)
        return 0;
    /* "template:N": a fork server template, whose clones come back here
     * as nodes; "N": a node exec'd with its link. */
    const size_t plen = sizeof GR__TEMPLATE_FD_PREFIX - 1;
    bool template = strncmp(v, GR__TEMPLATE_FD_PREFIX, plen) == 0;
    char *end;
    long fd = strtol(template ? v + plen : v, &end, 10);
    bool bad = *end != '\0' || fd < 0 || fd > 1 << 20;
    unsetenv(GR__NODE_FD_ENV);
    int link = (int)fd;
    const char *why;
    /* A template that cannot serve told its parent why, which logs it
     * and starts this program's nodes by fork + exec. */
    if (!bad && template && gr__template_serve(link, &link, &why) != GR_OK) {
        *exit_code = 1;
        return 1;
    }
    if (bad || fcntl(link, F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(link, F_SETFL, fcntl(link, F_GETFL) | O_NONBLOCK) != 0) {
        gr__logger log;
        gr__logger_init(&log, cfg != NULL ? cfg : &(gr_config){0});
        gr__log(&log, GR_LOG_ERROR, "node: GROVE_NODE_FD is no usable link");
        *exit_code = 1;
        return 1;
    }
    *exit_code = run_node(link, roots, nroots, cfg);
    return 1;
}

int gr_node_name(gr_system *sys, char *buf, size_t size)
{
    if (sys == NULL || buf == NULL)
        return GR_EINVAL;
    size_t n = strlen(gr__system_node_name(sys));
    if (n >= size)
        return GR_ENAMETOOLONG;
    memcpy(buf, gr__system_node_name(sys), n + 1);
    return GR_OK;
}
