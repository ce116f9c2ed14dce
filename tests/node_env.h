/*
 * The parent side of the node tests (test_node.c, test_node_msg.c): event
 * recording, a system per case, the child specs, a local agent actor that
 * acts across the process boundary, and the routing of node processes'
 * sanitizer reports to files that main() checks.
 */
#ifndef GROVE_TEST_NODE_ENV_H
#define GROVE_TEST_NODE_ENV_H

#include <grove/grove.h>

#include <dirent.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "node_helpers.h"
#include "testing.h"

/* ---- recording events -----------------------------------------------------
 */

#define EV_MAX 256

static struct {
    pthread_mutex_t lock;
    gr_event_kind kind[EV_MAX];
    gr_reason reason[EV_MAX];
    char child[EV_MAX][GR_NAME_MAX + 1];
    size_t n;
} evs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static inline void record_event(void *arg, const gr_event *ev)
{
    (void)arg;
    pthread_mutex_lock(&evs.lock);
    /* Supervisor events by child id, node events by node name, dead
     * letters by the name they were sent to. */
    const char *who = ev->kind == GR_EV_NODE_UP || ev->kind == GR_EV_NODE_DOWN
                          ? ev->node
                      : ev->kind == GR_EV_DEAD_LETTER ? ev->dead.name
                                                      : ev->child_id;
    if (evs.n < EV_MAX && who != NULL && who[0] != '\0') {
        evs.kind[evs.n] = ev->kind;
        evs.reason[evs.n] = ev->reason;
        snprintf(evs.child[evs.n], sizeof evs.child[0], "%s", who);
        evs.n++;
    }
    pthread_mutex_unlock(&evs.lock);
}

static inline void events_reset(void)
{
    pthread_mutex_lock(&evs.lock);
    evs.n = 0;
    pthread_mutex_unlock(&evs.lock);
}

/* Waits for the n-th (1-based) event of kind for child; copies its reason.
 * Returns 1 when it came. */
static inline int wait_event(gr_event_kind kind, const char *child, int nth,
                             gr_reason *why)
{
    double end = test_now() + WAIT_LIMIT_S;
    while (test_now() < end) {
        pthread_mutex_lock(&evs.lock);
        int seen = 0;
        for (size_t i = 0; i < evs.n; i++)
            if (evs.kind[i] == kind && strcmp(evs.child[i], child) == 0 &&
                ++seen == nth) {
                if (why != NULL)
                    *why = evs.reason[i];
                pthread_mutex_unlock(&evs.lock);
                return 1;
            }
        pthread_mutex_unlock(&evs.lock);
        sleep_ms(2);
    }
    return 0;
}

/* Counts events of kind for child so far. */
static inline int count_events(gr_event_kind kind, const char *child)
{
    pthread_mutex_lock(&evs.lock);
    int seen = 0;
    for (size_t i = 0; i < evs.n; i++)
        seen += evs.kind[i] == kind && strcmp(evs.child[i], child) == 0;
    pthread_mutex_unlock(&evs.lock);
    return seen;
}

/* Opens a system for a node case (events recorded, log dropped) whose
 * links queue at most link_buffer bytes (0: the default). */
static inline int node_env_open_buffer(struct env *e, size_t link_buffer)
{
    events_reset();
    gr_config cfg = {.workers = 2,
                     .no_signals = 1,
                     .log_fn = quiet_log,
                     .event_fn = record_event,
                     .link_buffer = link_buffer};
    return env_open(e, &cfg);
}

/* Opens a two-worker system whose log lines go to cap (no event_fn, so
 * the lines are what a user's log shows). */
static inline int node_env_open_captured(struct env *e, struct capture *cap)
{
    capture_init(cap);
    gr_config cfg = {
        .workers = 2, .no_signals = 1, .log_fn = capture_fn, .log_arg = cap};
    return env_open(e, &cfg);
}

/* node_env_open_buffer() with the default link buffer. */
static inline int node_env_open(struct env *e)
{
    return node_env_open_buffer(e, 0);
}

/* Counts this process's child processes (zombies included), from /proc:
 * node processes and fork server templates. */
static inline int children_alive(void)
{
    return proc_children(getpid(), NULL, 0);
}

/* Counts this process's node processes (zombies included): its children
 * but the fork server templates, which live as long as the system. */
static inline int nodes_alive(void)
{
    return proc_children_of(getpid(), PROC_NODES, NULL, 0);
}

/* SIGSTOPs pid, one of this process's children, and waits until every one
 * of its threads has stopped (the kernel reports a group stop to the parent
 * only then). kill() alone returns before that: a thread in the middle of a
 * read() finishes it first, so a "stopped" node may still drain a socket's
 * worth of frames. Returns 1 once stopped, 0 otherwise. */
static inline int stop_process(pid_t pid)
{
    if (kill(pid, SIGSTOP) != 0)
        return 0;
    double end = test_now() + WAIT_LIMIT_S;
    while (test_now() < end) {
        siginfo_t info = {0};
        /* WNOHANG and no WEXITED: neither blocks nor reaps a child the
         * runtime watches; it consumes only the stop report. */
        if (waitid(P_PID, (id_t)pid, &info, WSTOPPED | WNOHANG) != 0)
            return 0;
        if (info.si_pid == pid && info.si_code == CLD_STOPPED)
            return 1;
        sleep_ms(1);
    }
    return 0;
}

/* ---- specs ------------------------------------------------------------------
 */

static const gr_node_spec n1_spec = {.name = "n1", .root = "echo"};
static const gr_node_spec n2_spec = {.name = "n2", .root = "echo"};

static inline int start_sup(gr_system *sys, gr_strategy strategy,
                            uint32_t intensity, const gr_child_spec *kids,
                            size_t n, gr_ref *sup)
{
    gr_sup_spec spec = {.strategy = strategy,
                        .intensity = intensity,
                        .period_ms = 60000,
                        .children = kids,
                        .nchildren = n};
    return gr_supervisor_start(sys, &spec, sup);
}

static inline void crash(gr_system *sys, gr_inbox *in, gr_ref echo, int32_t how)
{
    (void)gr_system_tell(sys, gr_inbox_ref(in), echo, T_CRASH, &how,
                         sizeof how);
}

/* The pid and ref of the echo on node, waiting for it. */
#define FIND(e, node, w) CHECK(find_echo((e)->sys, (e)->inbox, node, w, 20))

/* Starts a one-for-one supervisor (intensity 3) over one node child "n1"
 * running the echo root with restart type restart, and finds the echo.
 * Returns 1, or 0 when either failed. */
static inline int start_n1(struct env *e, gr_restart restart, gr_ref *sup,
                           struct who *w)
{
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, restart)};
    return start_sup(e->sys, GR_ONE_FOR_ONE, 3, kids, 1, sup) == GR_OK &&
           find_echo(e->sys, e->inbox, "n1", w, 20);
}

/* ---- a local agent that acts across the boundary ------------------------- */

/* Commands to the agent (from the inbox) and its reports. */
enum {
    A_ASK = 100,     /* struct agent_cmd: ask target `type` with timeout. */
    A_MONITOR = 101, /* struct agent_cmd: monitor target. */
    A_LINK = 102,    /* struct agent_cmd: link to target (it traps). */
    A_BURST = 103,   /* struct agent_cmd: tell target n T_SEQ messages. */
    A_COUNT = 104,   /* Report the T_SEQ count to the inbox. */
    R_ASK = 110,     /* struct report: how an ask ended (what: its type). */
    R_DOWN = 111,    /* struct report: a DOWN (what: T_SEQs seen before). */
    R_EXIT = 112,    /* struct report: an EXIT. */
    R_COUNT = 113    /* struct counted. */
};

struct agent_cmd {
    gr_ref target;
    uint32_t type, n;
    gr_duration timeout_ms;
    int32_t payload;
    uint32_t pad;
};

struct report {
    int32_t code; /* A call's result, or the reason's code. */
    uint32_t what;
    gr_ref from;
    int64_t detail;
};

struct agent {
    gr_ref inbox;
    struct counted seen;
};

static inline int agent_init(gr_ctx *ctx, void *state, const void *arg,
                             size_t len)
{
    struct agent *a = state;
    gr_trap_exit(ctx, 1);
    return read_arg(&a->inbox, sizeof a->inbox, arg, len);
}

static inline void agent_report(gr_ctx *ctx, struct agent *a, uint32_t type,
                                int32_t code, uint32_t what, gr_ref from,
                                int64_t detail)
{
    struct report r = {
        .code = code, .what = what, .from = from, .detail = detail};
    (void)gr_tell(ctx, a->inbox, type, &r, sizeof r);
}

static inline int agent_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct agent *a = state;
    struct agent_cmd c;
    int rc;
    if (m->flags & GR_MSG_REPLY) {
        gr_reason why = {0};
        if (m->type == GR_MSG_ASK_FAILED)
            (void)gr_ask_failed_read(m, &why);
        else if (m->type == GR_MSG_TIMEOUT)
            why.code = GR_ETIMEDOUT;
        agent_report(ctx, a, R_ASK, why.code, m->type, m->from, 0);
        return GR_CONTINUE;
    }
    switch (m->type) {
    case A_ASK:
    case A_MONITOR:
    case A_LINK:
    case A_BURST:
        if (!read_payload(m, &c, sizeof c))
            return GR_EINVAL;
        break;
    case A_COUNT:
        return gr_tell(ctx, a->inbox, R_COUNT, &a->seen, sizeof a->seen);
    case T_SEQ: {
        uint32_t seq;
        if (!read_payload(m, &seq, sizeof seq))
            return GR_EINVAL;
        count_seq(&a->seen, seq);
        return GR_CONTINUE;
    }
    case GR_MSG_DOWN: {
        gr_down d;
        if (gr_down_read(m, &d) == GR_OK)
            agent_report(ctx, a, R_DOWN, d.reason.code, a->seen.count, d.target,
                         d.reason.detail);
        return GR_CONTINUE;
    }
    case GR_MSG_EXIT: {
        gr_exit_msg x;
        if (gr_exit_read(m, &x) != GR_OK)
            return GR_CONTINUE;
        if (x.reason.code == GR_ESHUTDOWN) /* Its supervisor stops it. */
            return gr_stop_with(ctx, &x.reason);
        agent_report(ctx, a, R_EXIT, x.reason.code, 0, x.from, 0);
        return GR_CONTINUE;
    }
    default:
        return GR_CONTINUE;
    }
    switch (m->type) {
    case A_ASK:
        rc = gr_ask(ctx, c.target, c.type, &c.payload, sizeof c.payload,
                    c.timeout_ms, NULL);
        if (rc != GR_OK) /* Refused at once: report it as its result. */
            agent_report(ctx, a, R_ASK, rc, 0, c.target, 1);
        return GR_CONTINUE;
    case A_MONITOR:
        rc = gr_monitor(ctx, c.target, NULL);
        return rc == GR_OK ? GR_CONTINUE : rc;
    case A_LINK:
        rc = gr_link(ctx, c.target);
        return rc == GR_OK ? GR_CONTINUE : rc;
    default: /* A_BURST */
        for (uint32_t i = 0; i < c.n; i++)
            if ((rc = gr_tell(ctx, c.target, T_SEQ, &i, sizeof i)) != GR_OK)
                return rc;
        return GR_CONTINUE;
    }
}

static const gr_behaviour agent_b = {
    .name = "agent",
    .state_size = sizeof(struct agent),
    .init = agent_init,
    .handle = agent_handle,
};

static inline int spawn_agent(struct env *e, gr_ref *out)
{
    gr_ref in = gr_inbox_ref(e->inbox);
    return gr_system_spawn(e->sys, &agent_b, &in, sizeof in, out);
}

static inline int agent_do(struct env *e, gr_ref agent, uint32_t type,
                           struct agent_cmd c)
{
    return gr_system_tell(e->sys, GR_REF_NONE, agent, type, &c, sizeof c);
}

/* Waits for the next report of type; other messages are skipped. */
static inline int next_report(struct env *e, uint32_t type, struct report *r)
{
    double end = test_now() + WAIT_LIMIT_S;
    while (test_now() < end) {
        gr_msg *m = NULL;
        if (gr_inbox_recv(e->inbox, &m, 100) != GR_OK)
            continue;
        int ok = m->type == type && read_payload(m, r, sizeof *r);
        gr_msg_free(m);
        if (ok)
            return 1;
    }
    return 0;
}

/* The refs of a supervisor's children, in start order. */
static inline int children_of(gr_system *sys, gr_ref sup, gr_ref *out, size_t n)
{
    gr_child_info info[8];
    size_t count = 0;
    if (gr_supervisor_which_children(sys, sup, SUP_WAIT, info, 8, &count) !=
            GR_OK ||
        count != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        out[i] = info[i].ref;
    return 1;
}

/* Sanitizer reports of node processes go to files under this directory
 * (their stderr is ours, but their exit status is not checked by every
 * case); main fails the run if any appear. */
static char san_dir[] = "/tmp/grove-node-san-XXXXXX";

static inline void route_sanitizer_reports(void)
{
    if (mkdtemp(san_dir) == NULL)
        return;
    static const char *const vars[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS",
                                       "TSAN_OPTIONS"};
    for (size_t i = 0; i < 3; i++) {
        char buf[1024];
        const char *old = getenv(vars[i]);
        snprintf(buf, sizeof buf, "%s%slog_path=%s/report", old ? old : "",
                 old && old[0] ? ":" : "", san_dir);
        setenv(vars[i], buf, 1);
    }
}

/* Prints and removes the reports; returns how many there were. */
static inline int sanitizer_reports(void)
{
    int n = 0;
    DIR *d = opendir(san_dir);
    if (d == NULL)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[512], line[512];
        snprintf(path, sizeof path, "%s/%s", san_dir, de->d_name);
        FILE *f = fopen(path, "r");
        fprintf(stderr, "node sanitizer report %s:\n", path);
        while (f != NULL && fgets(line, sizeof line, f) != NULL)
            fputs(line, stderr);
        if (f != NULL)
            fclose(f);
        remove(path);
        n++;
    }
    closedir(d);
    rmdir(san_dir);
    return n;
}

/* Runs the cases of a node test program: as a node when it was started as
 * one, else the cases, failing the run if a node had sanitizer reports. */
static inline int node_test_main(const struct test_case *cases, size_t n,
                                 int argc, char **argv)
{
    node_main_or_continue();
    route_sanitizer_reports();
    int rc = test_main(cases, n, argc, argv);
    if (sanitizer_reports() != 0) {
        fprintf(stderr, "FAIL: a node process had sanitizer reports\n");
        rc = 1;
    }
    return rc;
}

#endif
