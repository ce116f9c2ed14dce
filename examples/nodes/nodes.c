/*
 * nodes: a supervision tree across OS processes. Kill one with kill -9 and
 * watch its supervisor restart it.
 *
 *   root process
 *   |-- top (one_for_one)
 *   |   |-- worker-1   node child: a separate process running "counter"
 *   |   `-- worker-2   node child: another process running "counter"
 *   `-- poller         asks each node's counter twice a second
 *
 * The program re-enters itself as each node (gr_node_main). Each counter
 * answers with its process id and how many pings it has seen; the poller
 * prints a line whenever a node's pid changes. Run it, then, from another
 * shell, `kill -9` one of the pids it prints: the restart log (stderr) says
 * the child crashed with {signal, SIGKILL} and was restarted, and the
 * poller reports the new pid, its count back at 1.
 *
 *   nodes               run until Ctrl-C
 *   nodes --seconds N   stop by itself after N seconds
 */
#define _POSIX_C_SOURCE 200809L

#include <grove/grove.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    MSG_PING = 1, /* poller -> counter. */
    MSG_PONG = 2, /* counter -> poller: struct pong. */
    MSG_TICK = 3  /* The poller's timer. */
};

struct pong {
    int32_t pid;
    uint32_t count;
    char node[GR_NAME_MAX + 1];
};

/* ---- the node side: a counter ---- */

static int counter_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return gr_register(ctx, "counter");
}

static int counter_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    uint32_t *count = state;
    if (m->type != MSG_PING)
        return GR_CONTINUE;
    struct pong p = {.pid = (int32_t)getpid(), .count = ++*count};
    gr_node_name(gr_ctx_system(ctx), p.node, sizeof p.node);
    return gr_tell(ctx, m->from, MSG_PONG, &p, sizeof p);
}

static const gr_behaviour counter = {.name = "counter",
                                     .state_size = sizeof(uint32_t),
                                     .init = counter_init,
                                     .handle = counter_handle};

/* What this program offers to run as a node's root. */
static const gr_node_root roots[] = {
    {.name = "counter", .behaviour = &counter}};

/* ---- the root process: the tree and a poller ---- */

static const char *const node_names[] = {"worker-1", "worker-2"};
#define NNODES 2

struct poller {
    int32_t last_pid[NNODES];
};

static int poller_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return gr_timer_every(ctx, 500, MSG_TICK, NULL, 0, NULL);
}

static int poller_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct poller *p = state;
    if (m->type == MSG_TICK) {
        for (int i = 0; i < NNODES; i++) {
            char name[2 * GR_NAME_MAX + 2];
            snprintf(name, sizeof name, "counter@%s", node_names[i]);
            /* While a node restarts this is a node_down dead letter. */
            (void)gr_tell_name(ctx, name, MSG_PING, NULL, 0);
        }
        return GR_CONTINUE;
    }
    struct pong pong;
    if (m->type != MSG_PONG || m->len != sizeof pong)
        return GR_CONTINUE;
    memcpy(&pong, m->data, sizeof pong);
    for (int i = 0; i < NNODES; i++) {
        if (strcmp(pong.node, node_names[i]) != 0 || pong.pid == p->last_pid[i])
            continue;
        printf("%s is now pid %d (count %u); try: kill -9 %d\n", pong.node,
               pong.pid, pong.count, pong.pid);
        fflush(stdout);
        p->last_pid[i] = pong.pid;
    }
    return GR_CONTINUE;
}

static const gr_behaviour poller = {.name = "poller",
                                    .state_size = sizeof(struct poller),
                                    .init = poller_init,
                                    .handle = poller_handle};

static const gr_node_spec node_specs[NNODES] = {
    {.name = "worker-1", .root = "counter"},
    {.name = "worker-2", .root = "counter"},
};

static const gr_child_spec top_children[] = {
    {.id = "worker-1",
     .behaviour = &gr_node_behaviour,
     .arg = &node_specs[0],
     .arg_len = sizeof node_specs[0],
     .type = GR_NODE},
    {.id = "worker-2",
     .behaviour = &gr_node_behaviour,
     .arg = &node_specs[1],
     .arg_len = sizeof node_specs[1],
     .type = GR_NODE},
};

static const gr_sup_spec top = {.strategy = GR_ONE_FOR_ONE,
                                .intensity = 5,
                                .period_ms = 10000,
                                .children = top_children,
                                .nchildren = NNODES,
                                .name = "top"};

int main(int argc, char **argv)
{
    int code;
    if (gr_node_main(roots, sizeof roots / sizeof roots[0], NULL, &code))
        return code; /* This process was one of the nodes. */
    int seconds = 0;
    if (argc == 3 && strcmp(argv[1], "--seconds") == 0)
        seconds = atoi(argv[2]);
    gr_system *sys;
    int rc = gr_system_start(NULL, &sys);
    if (rc == GR_OK)
        rc = gr_supervisor_start(sys, &top, NULL);
    if (rc == GR_OK)
        rc = gr_system_spawn(sys, &poller, NULL, 0, NULL);
    if (rc != GR_OK) {
        fprintf(stderr, "nodes: %s\n", gr_strerror(rc));
        return 1;
    }
    if (seconds > 0) {
        sleep((unsigned)seconds);
        gr_system_stop(sys);
    }
    return gr_system_run(sys) == GR_OK ? 0 : 1;
}
