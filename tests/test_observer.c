/*
 * The control endpoint and the grove tool, end to end: this program runs
 * itself as a system with the endpoint on (a supervisor over a worker and
 * a node process), and drives the real `grove` tool (its path is compiled
 * in) against it. Every wait is for a line or an exit, with a time limit.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grove/grove.h>

#include "fd_shortage.h"
#include "testing.h"

#ifndef GROVE_TOOL
#define GROVE_TOOL "grove"
#endif

/* Longest wait for a line, an answer or an exit. */
#define WAIT_MS 10000

/* ---- the system under observation (this program, run with --system) ---- */

static int idle_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    return GR_CONTINUE;
}

static const gr_behaviour idle = {.name = "idle", .handle = idle_handle};

/* An actor whose every handler call takes 300 ms (a blocking sleep, the
 * mistake the slow_handler event is for), over and over. */
static int slowpoke_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return gr_tell(ctx, gr_self(ctx), 1, NULL, 0);
}

static int slowpoke_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    (void)m;
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL); /* The point: a handler that blocks. */
    return gr_tell(ctx, gr_self(ctx), 1, NULL, 0);
}

static const gr_behaviour slowpoke = {
    .name = "slowpoke", .init = slowpoke_init, .handle = slowpoke_handle};

/* A node's worker that crashes half a second after each start. */
static int crasher_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return gr_timer_after(ctx, 500, 1, NULL, 0, NULL);
}

static int crasher_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    (void)m;
    gr_fail(ctx, "crashing on purpose");
}

static const gr_behaviour crasher = {
    .name = "crasher", .init = crasher_init, .handle = crasher_handle};

/* A node's worker that ticks ten times a second. */
static int ticker_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return gr_timer_every(ctx, 100, 1, NULL, 0, NULL);
}

/* Each tick it tells a name nobody has: an unknown_name dead letter. */
static int ticker_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    (void)m;
    (void)gr_tell_name(ctx, "nobody", 2, NULL, 0);
    return GR_CONTINUE;
}

static const gr_behaviour ticker = {
    .name = "ticker", .init = ticker_init, .handle = ticker_handle};

/* The root of the node in --nodes mode: a supervisor in the node process
 * over the ticker and the crasher. */
static const gr_child_spec node_kids[] = {
    {.id = "sleeper", .behaviour = &ticker, .restart = GR_PERMANENT},
    {.id = "crasher", .behaviour = &crasher, .restart = GR_PERMANENT},
};
static const gr_sup_spec node_sup = {.strategy = GR_ONE_FOR_ONE,
                                     .intensity = 1000,
                                     .period_ms = 1000,
                                     .children = node_kids,
                                     .nchildren = 2,
                                     .name = "nodesup"};

static const gr_node_root roots[] = {{.name = "idle", .behaviour = &idle},
                                     {.name = "nodesup",
                                      .behaviour = &gr_supervisor_behaviour,
                                      .arg = &node_sup,
                                      .arg_len = sizeof node_sup}};

/* Runs the system: mode --system (a worker and a node process), --slow
 * (and a slowpoke) or --nodes (the node runs a supervisor and a crasher). */
static int run_system(const char *name, const char *mode)
{
    bool slow = strcmp(mode, "--slow") == 0;
    static gr_node_spec node = {.name = "obsnode", .root = "idle"};
    if (strcmp(mode, "--nodes") == 0)
        node.root = "nodesup";
    static const gr_child_spec kids[] = {
        {.id = "pinger", .behaviour = &idle, .restart = GR_PERMANENT},
        {.id = "slowpoke", .behaviour = &slowpoke, .restart = GR_PERMANENT},
        {.id = "obsnode",
         .behaviour = &gr_node_behaviour,
         .arg = &node,
         .arg_len = sizeof node,
         .restart = GR_PERMANENT,
         .type = GR_NODE},
    };
    /* The slowpoke goes last, so it is left out without --slow. */
    const gr_child_spec plain[] = {kids[0], kids[2]};
    gr_sup_spec top = {.strategy = GR_ONE_FOR_ONE,
                       .intensity = 10,
                       .period_ms = 10000,
                       .children = slow ? kids : plain,
                       .nchildren = slow ? 3 : 2,
                       .name = "top"};
    gr_config cfg = {.control = 1, .name = name, .slow_handler_ms = 100};
    gr_system *sys;
    if (gr_system_start(&cfg, &sys) != GR_OK ||
        gr_supervisor_start(sys, &top, NULL) != GR_OK)
        return 1;
    printf("ready\n");
    fflush(stdout);
    return gr_system_run(sys) == GR_OK ? 0 : 1;
}

/* ---- driving it ---- */

static const char *self_exe;

typedef struct sys_proc {
    pid_t pid;
    int out; /* Its stdout and stderr. */
    char name[64];
    char start[4096]; /* What it wrote up to its "ready". */
} sys_proc;

/* The runtime directory the systems and tools this case starts use
 * (XDG_RUNTIME_DIR), or NULL: /tmp/grove-<uid>, the default. */
static const char *runtime_dir;

/* In a child about to exec a system or the tool: sets its runtime
 * directory (see runtime_dir). */
static void use_runtime_dir(void)
{
    if (runtime_dir != NULL)
        setenv("XDG_RUNTIME_DIR", runtime_dir, 1);
    else
        unsetenv("XDG_RUNTIME_DIR");
}

/* Starts this program as a system named after the case and this process
 * (as uid, unless uid is 0; with a slowpoke if what starts with "slow");
 * waits for its "ready". */
static bool sys_start(sys_proc *sp, const char *what, uid_t uid)
{
    snprintf(sp->name, sizeof sp->name, "obs-%s-%d", what, (int)getpid());
    int p[2];
    if (pipe(p) != 0)
        return false;
    sp->pid = fork();
    if (sp->pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        use_runtime_dir();
        unsetenv("GROVE_LOG");
        if (strcmp(what, "metrics") == 0)
            setenv("GROVE_METRICS", "127.0.0.1:0", 1);
        if (uid != 0 && (setgid(uid) != 0 || setuid(uid) != 0))
            _exit(126);
        execl(self_exe, self_exe,
              strncmp(what, "slow", 4) == 0    ? "--slow"
              : strncmp(what, "nodes", 5) == 0 ? "--nodes"
                                               : "--system",
              sp->name, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    sp->out = p[0];
    char buf[4096];
    size_t have = 0;
    while (have < sizeof buf - 1) {
        struct pollfd pf = {p[0], POLLIN, 0};
        if (poll(&pf, 1, WAIT_MS) <= 0)
            return false;
        ssize_t k = read(p[0], buf + have, sizeof buf - 1 - have);
        if (k <= 0)
            return false;
        have += (size_t)k;
        buf[have] = '\0';
        if (strstr(buf, "ready\n") != NULL) {
            memcpy(sp->start, buf, have + 1);
            return true;
        }
    }
    return false;
}

/* Stops the system (SIGTERM); its exit status, or -1. */
static int sys_stop(sys_proc *sp)
{
    kill(sp->pid, SIGTERM);
    for (int i = 0; i < WAIT_MS / 10; i++) {
        int st;
        if (waitpid(sp->pid, &st, WNOHANG) == sp->pid) {
            close(sp->out);
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL); /* Polling a child's exit. */
    }
    kill(sp->pid, SIGKILL);
    waitpid(sp->pid, NULL, 0);
    close(sp->out);
    return -1;
}

/* Starts grove with args (NULL-terminated) as uid (0: as this process),
 * its stdout and stderr into *fd; its pid, or -1. */
static pid_t grove_start(uid_t uid, const char *const *args, int *fd)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        use_runtime_dir();
        if (uid != 0 && (setgid(uid) != 0 || setuid(uid) != 0))
            _exit(126);
        const char *argv[16] = {GROVE_TOOL};
        for (int i = 0; i < 14 && args[i] != NULL; i++)
            argv[i + 1] = args[i];
        execv(GROVE_TOOL, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    *fd = p[0];
    return pid;
}

/* Starts grove with args in the background (see grove_start). */
static pid_t grove_bg(const char *const *args, int *fd)
{
    return grove_start(0, args, fd);
}

/* Stops a grove started by grove_bg and closes its output. */
static void grove_bg_stop(pid_t pid, int fd)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    close(fd);
}

/* Waits for grove (pid, run with args) to end; its exit status, or -1
 * (said why, with what it wrote: out). */
static int grove_reap(pid_t pid, const char *const *args, const char *out)
{
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    fprintf(stderr, "  grove %s: killed by signal %d after: %s\n", args[0],
            WIFSIGNALED(st) ? WTERMSIG(st) : 0, out);
    return -1;
}

/* Runs grove with args (NULL-terminated) as uid (0: as this process);
 * stores its stdout and stderr in out and returns its exit status, or -1. */
static int grove(char *out, size_t size, uid_t uid, const char *const *args)
{
    int fd;
    pid_t pid = grove_start(uid, args, &fd);
    if (pid < 0)
        return -1;
    size_t have = 0;
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, WAIT_MS) <= 0)
            break;
        ssize_t k = read(fd, out + have, size - 1 - have);
        if (k <= 0)
            break;
        have += (size_t)k;
        if (have == size - 1)
            break;
    }
    out[have] = '\0';
    close(fd);
    return grove_reap(pid, args, out);
}

/* Reads from fd, appending to buf (size bytes, *have used), until it
 * holds want or limit_s seconds pass; whether it does. */
static bool read_until(int fd, char *buf, size_t size, size_t *have,
                       const char *want, double limit_s)
{
    double t0 = test_now();
    buf[*have] = '\0';
    while (strstr(buf, want) == NULL && test_now() - t0 < limit_s &&
           *have < size - 1) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t k = read(fd, buf + *have, size - 1 - *have);
        if (k <= 0)
            break;
        *have += (size_t)k;
        buf[*have] = '\0';
    }
    return strstr(buf, want) != NULL;
}

/* The pid of the node process the tree shows, or 0. */
static long tree_node_pid(const char *tree)
{
    const char *at = strstr(tree, "process obsnode pid ");
    return at != NULL ? strtol(at + 20, NULL, 10) : 0;
}

/* The node process's pid in the tree of sp's system (out: room for the
 * tree), or 0. */
static long node_pid(const sys_proc *sp, char *out, size_t size)
{
    return grove(out, size, 0, (const char *[]){"tree", sp->name, NULL}) == 0
               ? tree_node_pid(out)
               : 0;
}

/* Asks for the tree until the node process is another than old (a
 * bounded number of times); returns its pid, or 0 or old. */
static long next_node_pid(const sys_proc *sp, long old, char *out, size_t size)
{
    long now = 0;
    for (int i = 0; i < 100 && (now == 0 || now == old); i++)
        now = node_pid(sp, out, size);
    return now;
}

/* ---- cases ---- */

/* ls finds the system; stats, metrics and tree answer in their formats. */
static void ls_stats_metrics_tree(void)
{
    sys_proc sp;
    CHECK(sys_start(&sp, "ls", 0));
    static char out[65536];
    CHECK_EQ(grove(out, sizeof out, 0, (const char *[]){"ls", NULL}), 0);
    CHECK(strstr(out, sp.name) != NULL);
    CHECK_EQ(grove(out, sizeof out, 0,
                   (const char *[]){"stats", sp.name, "--json", NULL}),
             0);
    CHECK(strncmp(out, "{\"name\":\"", 9) == 0);
    CHECK(strstr(out, "\"alive\":") != NULL);
    CHECK(strstr(out, "\"nodes\":1") != NULL);
    CHECK_EQ(
        grove(out, sizeof out, 0, (const char *[]){"metrics", sp.name, NULL}),
        0);
    CHECK(strstr(out, "# TYPE grove_actors_alive gauge\n"
                      "grove_actors_alive{node=\"root\"} ") != NULL);
    CHECK(strstr(out, "grove_actors_alive{node=\"obsnode\"} ") != NULL);
    CHECK(strstr(out, "grove_dead_letters_total{node=\"root\",reason="
                      "\"no_actor\"} ") != NULL);
    CHECK(strstr(out, "# TYPE grove_handler_seconds histogram\n") != NULL);
    CHECK(strstr(out, "grove_handler_seconds_bucket{node=\"obsnode\",le="
                      "\"+Inf\"} ") != NULL);
    /* By pid too. */
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)sp.pid);
    CHECK_EQ(grove(out, sizeof out, 0, (const char *[]){"tree", pid, NULL}), 0);
    CHECK(strstr(out, "supervisor <") != NULL);
    CHECK(strstr(out, " one_for_one, 0 of 10 restarts in 10 s, registered as "
                      "top\n") != NULL);
    CHECK(strstr(out, "  pinger  worker running <") != NULL);
    CHECK(tree_node_pid(out) > 0);
    /* What runs in the node process, one level below it. */
    CHECK(strstr(out, "\n    idle <") != NULL);
    CHECK(strstr(out, "@obsnode>, the node's root\n") != NULL);
    /* A node process that is up but does not answer (stopped): counted
     * up, not answering, and without samples of its own. */
    pid_t node = (pid_t)tree_node_pid(out);
    CHECK_EQ(
        grove(out, sizeof out, 0, (const char *[]){"metrics", sp.name, NULL}),
        0);
    CHECK(strstr(out, "\ngrove_nodes_up 1\n") != NULL);
    CHECK(strstr(out, "\ngrove_nodes_answering 1\n") != NULL);
    CHECK(node > 0 && kill(node, SIGSTOP) == 0);
    CHECK_EQ(
        grove(out, sizeof out, 0, (const char *[]){"metrics", sp.name, NULL}),
        0);
    CHECK(node > 0 && kill(node, SIGCONT) == 0);
    CHECK(strstr(out, "\ngrove_nodes_up 1\n") != NULL);
    CHECK(strstr(out, "\ngrove_nodes_answering 0\n") != NULL);
    CHECK(strstr(out, "grove_actors_alive{node=\"obsnode\"}") == NULL);
    CHECK_EQ(sys_stop(&sp), 0);
}

/* Starts `grove events SYS -f` on sp's system in the background and
 * waits until it says it follows (buf: size bytes, *have used); its pid,
 * or -1 (its output fd in *fd all the same, for grove_bg_stop). */
static pid_t follow_events(const sys_proc *sp, int *fd, char *buf, size_t size,
                           size_t *have)
{
    pid_t follower =
        grove_bg((const char *[]){"events", sp->name, "-f", NULL}, fd);
    if (follower > 0 &&
        !read_until(*fd, buf, size, have, "grove: following the events of",
                    WAIT_MS / 1000.0)) {
        grove_bg_stop(follower, *fd);
        return -1;
    }
    return follower;
}

/* kill -9 of the node process: `events -f` shows the restart within a
 * second, and the tree shows the new process's pid. */
static void node_restart_seen(void)
{
    sys_proc sp;
    CHECK(sys_start(&sp, "restart", 0));
    static char out[65536];
    long old = node_pid(&sp, out, sizeof out);
    CHECK(old > 0);
    /* Follow the events from another process (it says so once the
     * system holds it as a follower). */
    int fd;
    char buf[8192] = "";
    size_t have = 0;
    pid_t follower = follow_events(&sp, &fd, buf, sizeof buf, &have);
    CHECK(follower > 0);
    CHECK(kill((pid_t)old, SIGKILL) == 0);
    have = 0;
    bool seen = read_until(fd, buf, sizeof buf, &have,
                           "child \"obsnode\" restarted", 1.0);
    grove_bg_stop(follower, fd);
    if (!seen)
        fprintf(stderr, "  events: %s\n", buf);
    CHECK(seen);
    if (strstr(buf, "signal SIGKILL") == NULL)
        fprintf(stderr, "  events: %s\n", buf);
    CHECK(strstr(buf, "signal SIGKILL") != NULL);
    long now = next_node_pid(&sp, old, out, sizeof out);
    CHECK(now > 0 && now != old);
    CHECK_EQ(sys_stop(&sp), 0);
}

/* One attachment sees inside the node processes: the node's own
 * supervisor in the tree with its children's restarts, their events live,
 * their actors in top, their figures in stats and metrics. */
static void node_insides_seen(void)
{
    sys_proc sp;
    CHECK(sys_start(&sp, "nodes", 0));
    int fd;
    char buf[16384] = "";
    size_t have = 0;
    pid_t follower = follow_events(&sp, &fd, buf, sizeof buf, &have);
    CHECK(follower > 0);
    /* The crasher, in the node process, is restarted every half second;
     * its supervisor there reports it, and the root fetches it. */
    have = 0;
    bool seen = read_until(fd, buf, sizeof buf, &have,
                           "child \"crasher\" restarted", 3.0);
    grove_bg_stop(follower, fd);
    if (!seen)
        fprintf(stderr, "  events: %s\n", buf);
    CHECK(seen);
    CHECK(strstr(buf, "@obsnode>") != NULL);
    static char out[65536];
    CHECK_EQ(grove(out, sizeof out, 0, (const char *[]){"tree", sp.name, NULL}),
             0);
    const char *sup = strstr(out, "\n    supervisor <");
    CHECK(sup != NULL);
    CHECK(strstr(sup, "@obsnode> one_for_one, ") != NULL);
    CHECK(strstr(sup, " of 1000 restarts in 1 s, registered as nodesup\n") !=
          NULL);
    CHECK(strstr(out, "\n      sleeper  worker running <") != NULL);
    const char *crasher = strstr(out, "\n      crasher  worker ");
    CHECK(crasher != NULL);
    CHECK(crasher != NULL && strstr(crasher, ", restarted ") != NULL);
    CHECK_EQ(grove(out, sizeof out, 0,
                   (const char *[]){"tree", sp.name, "--json", NULL}),
             0);
    CHECK(strstr(out, "{\"depth\":2,\"id\":\"\",\"type\":\"supervisor\"") !=
          NULL);
    CHECK(strstr(out, "\"name\":\"nodesup\",\"strategy\":\"one_for_one\","
                      "\"intensity\":1000,\"period_ms\":1000,") != NULL);
    CHECK(strstr(out, "{\"depth\":3,\"id\":\"crasher\",\"type\":\"worker\"") !=
          NULL);
    CHECK_EQ(
        grove(out, sizeof out, 0,
              (const char *[]){"top", sp.name, "--once", "-n", "50", NULL}),
        0);
    CHECK(strstr(out, "@obsnode>") != NULL);
    /* The ticker's dead letters, counted in the node, by their reason. */
    CHECK(strstr(out, "\ndead letters/s by reason: unknown_name ") != NULL);
    CHECK(strstr(out, " sleeper") == NULL); /* Ids are not behaviours... */
    CHECK(strstr(out, " ticker ") != NULL); /* ...these are. */
    /* A trace reaches into the node process. */
    CHECK_EQ(grove(out, sizeof out, 0,
                   (const char *[]){"trace", sp.name, "ticker", "--seconds",
                                    "1", NULL}),
             0);
    CHECK(strstr(out, "@obsnode> (ticker) from <") != NULL);
    /* An actor's exit is in its trace: the crasher's crash. */
    int rc = grove(
        out, sizeof out, 0,
        (const char *[]){"trace", sp.name, "crasher", "--seconds", "2", NULL});
    if (rc != 0)
        fprintf(stderr, "  grove trace: %s\n", out);
    CHECK_EQ(rc, 0);
    CHECK(strstr(out, "@obsnode> (crasher): GR_EFAILED") != NULL);
    CHECK_EQ(
        grove(out, sizeof out, 0, (const char *[]){"stats", sp.name, NULL}), 0);
    CHECK(strstr(out, "1 node\n") != NULL);
    CHECK(strstr(out, "processes:\n  root ") != NULL);
    CHECK(strstr(out, "\n  obsnode ") != NULL);
    CHECK_EQ(sys_stop(&sp), 0);
}

/* A node process that missed a follower's fetch (whose wait is short)
 * is still asked when a trace starts just after (its wait is longer): a
 * busy moment is no reason to refuse the trace. The miss is made by
 * stopping the node until the follower says it did not answer. */
static void trace_after_a_missed_fetch(void)
{
    sys_proc sp;
    CHECK(sys_start(&sp, "nodes-missed", 0));
    static char out[65536];
    long node = node_pid(&sp, out, sizeof out);
    CHECK(node > 0);
    int fd;
    char buf[8192] = "";
    size_t have = 0;
    pid_t follower = follow_events(&sp, &fd, buf, sizeof buf, &have);
    CHECK(follower > 0);
    CHECK(kill((pid_t)node, SIGSTOP) == 0);
    bool missed = read_until(fd, buf, sizeof buf, &have, "did not answer",
                             WAIT_MS / 1000.0);
    CHECK(kill((pid_t)node, SIGCONT) == 0);
    CHECK(missed);
    int rc = grove(
        out, sizeof out, 0,
        (const char *[]){"trace", sp.name, "ticker", "--seconds", "1", NULL});
    if (rc != 0)
        fprintf(stderr, "  grove trace: %s\n", out);
    CHECK_EQ(rc, 0);
    CHECK(strstr(out, "@obsnode> (ticker) from <") != NULL);
    grove_bg_stop(follower, fd);
    CHECK_EQ(sys_stop(&sp), 0);
}

/* A trace of an actor in a node process goes on in the node's next
 * process after a kill -9. */
static void trace_across_node_restart(void)
{
    sys_proc sp;
    CHECK(sys_start(&sp, "nodes-trace", 0));
    static char out[65536];
    long old = node_pid(&sp, out, sizeof out);
    CHECK(old > 0);
    int fd;
    pid_t tracer =
        grove_bg((const char *[]){"trace", sp.name, "ticker", NULL}, &fd);
    CHECK(tracer > 0);
    char buf[16384] = "";
    size_t have = 0;
    CHECK(read_until(fd, buf, sizeof buf, &have, "(ticker) from <",
                     WAIT_MS / 1000.0));
    CHECK(kill((pid_t)old, SIGKILL) == 0);
    /* Wait for the new process, then for a record from it. */
    long now = next_node_pid(&sp, old, out, sizeof out);
    CHECK(now > 0 && now != old);
    /* What has come so far is from the old process: set aside without
     * waiting (it was fetched before the kill). */
    struct pollfd pf = {fd, POLLIN, 0};
    while (poll(&pf, 1, 0) == 1 && read(fd, buf, sizeof buf) > 0)
        ;
    have = 0;
    bool seen = read_until(fd, buf, sizeof buf, &have, "(ticker) from <", 3.0);
    grove_bg_stop(tracer, fd);
    if (!seen)
        fprintf(stderr, "  trace: %s\n", buf);
    CHECK(seen);
    CHECK_EQ(sys_stop(&sp), 0);
}

/* A client of another uid is refused: by the socket's permissions from
 * the tool, and by the endpoint itself (SO_PEERCRED), which logs it. */
static void other_uid_refused(void)
{
    if (getuid() != 0) {
        fprintf(stderr, "  skipped: needs root to act as two users\n");
        return;
    }
    struct passwd *nobody = getpwnam("nobody");
    CHECK(nobody != NULL);
    uid_t other = nobody->pw_uid;
    /* That user must be able to run this program and the tool. */
    pid_t probe = fork();
    if (probe == 0)
        _exit(setgid(other) == 0 && setuid(other) == 0 &&
                      access(self_exe, X_OK) == 0 &&
                      access(GROVE_TOOL, X_OK) == 0
                  ? 0
                  : 1);
    int pst;
    CHECK(waitpid(probe, &pst, 0) == probe);
    if (!WIFEXITED(pst) || WEXITSTATUS(pst) != 0) {
        fprintf(stderr, "  skipped: user nobody cannot run %s\n", self_exe);
        return;
    }
    sys_proc sp;
    CHECK(sys_start(&sp, "uid", other));
    /* Root reaches the socket whatever its mode: the endpoint refuses. */
    char path[256];
    snprintf(path, sizeof path, "/tmp/grove-%u/%s.%d.sock", (unsigned)other,
             sp.name, (int)sp.pid);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    CHECK(strlen(path) < sizeof a.sun_path);
    memcpy(a.sun_path, path, strlen(path) + 1);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    char buf[4096];
    ssize_t k = read(fd, buf, sizeof buf - 1);
    close(fd);
    CHECK(k > 0);
    buf[k] = '\0';
    CHECK(strstr(buf, "permission denied") != NULL);
    /* The system's log says so. */
    size_t have = 0;
    CHECK(read_until(sp.out, buf, sizeof buf, &have,
                     "control: refused a connection from uid 0", 5.0));
    /* The directory and socket keep the tool of another user out. */
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    snprintf(path, sizeof path, "/tmp/grove-%u", (unsigned)other);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700);
    static char out[4096];
    CHECK_EQ(
        grove(out, sizeof out, 0, (const char *[]){"stats", sp.name, NULL}),
        1); /* Root's own directory has no such system. */
    CHECK(strstr(out, "no running system") != NULL ||
          strstr(out, "no running Grove systems") != NULL);
    CHECK_EQ(sys_stop(&sp), 0);
}

/* A system whose name holds what a file name cannot ('/', '.', spaces)
 * is listed with '_' in their place, and grove finds it by the name as
 * given too. */
static void odd_name_found(void)
{
    sys_proc sp;
    CHECK(sys_start(&sp, "a.b/c d", 0));
    char listed[96];
    snprintf(listed, sizeof listed, "obs-a_b_c_d-%d.%d", (int)getpid(),
             (int)sp.pid);
    static char out[65536];
    CHECK_EQ(grove(out, sizeof out, 0, (const char *[]){"ls", NULL}), 0);
    CHECK(strstr(out, listed) != NULL);
    CHECK_EQ(
        grove(out, sizeof out, 0, (const char *[]){"stats", sp.name, NULL}), 0);
    CHECK(strstr(out, "system obs-a_b_c_d-") != NULL);
    CHECK_EQ(sys_stop(&sp), 0);
}

/* A system killed with SIGKILL leaves its socket file: ls leaves it out
 * and removes it, and asking for it says it is gone. In a runtime
 * directory of its own: another test's grove ls, run meanwhile, would
 * remove the stale file first. */
static void stale_socket_replaced(void)
{
    char runtime[] = "/tmp/grove-obs-XXXXXX";
    CHECK(mkdtemp(runtime) != NULL);
    runtime_dir = runtime;
    sys_proc sp;
    CHECK(sys_start(&sp, "stale", 0));
    char path[256];
    snprintf(path, sizeof path, "%s/grove/%s.%d.sock", runtime, sp.name,
             (int)sp.pid);
    kill(sp.pid, SIGKILL);
    waitpid(sp.pid, NULL, 0);
    close(sp.out);
    CHECK(access(path, F_OK) == 0); /* Left behind. */
    static char out[4096];
    char name_pid[96];
    snprintf(name_pid, sizeof name_pid, "%s.%d", sp.name, (int)sp.pid);
    CHECK_EQ(
        grove(out, sizeof out, 0, (const char *[]){"stats", name_pid, NULL}),
        1);
    CHECK(strstr(out, "is gone") != NULL);
    CHECK_EQ(grove(out, sizeof out, 0, (const char *[]){"ls", NULL}), 0);
    CHECK(strstr(out, sp.name) == NULL);
    CHECK(access(path, F_OK) != 0); /* Removed. */
    /* A new system of the same name starts and is found. */
    CHECK(sys_start(&sp, "stale", 0));
    CHECK_EQ(
        grove(out, sizeof out, 0, (const char *[]){"stats", sp.name, NULL}), 0);
    CHECK_EQ(sys_stop(&sp), 0);
    char grove_dir[300];
    snprintf(grove_dir, sizeof grove_dir, "%s/grove", runtime);
    CHECK_EQ(rmdir(grove_dir), 0); /* Empty: the stopped system's is gone. */
    CHECK_EQ(rmdir(runtime), 0);
}

/* Runs grove with args against a stand-in endpoint listening on lfd;
 * stores grove's output in out and returns its exit status, or -1 (said
 * why). With hang_up, the stand-in greets every connection and then stops
 * reading, as a system that is stopping hangs up; else it takes none, as
 * a system stopped with SIGSTOP (whose kernel still completes connects). */
static int grove_against_stand_in(int lfd, bool hang_up,
                                  const char *const *args, char *out,
                                  size_t size)
{
    int fd, conns[8], nconns = 0;
    pid_t pid = grove_start(0, args, &fd);
    if (pid < 0)
        return -1;
    size_t have = 0;
    double end = test_now() + WAIT_MS / 1000.0;
    while (test_now() < end && have < size - 1) {
        struct pollfd pf[2] = {{fd, POLLIN, 0}, {lfd, hang_up ? POLLIN : 0, 0}};
        if (poll(pf, 2, 100) <= 0)
            continue;
        if ((pf[1].revents & POLLIN) && nconns < 8) {
            int c = accept(lfd, NULL, NULL);
            if (c >= 0) {
                (void)shutdown(c, SHUT_RD);
                (void)!send(c, "grove-control 1\n", 16, MSG_NOSIGNAL);
                conns[nconns++] = c;
            }
        }
        if (pf[0].revents & (POLLIN | POLLHUP)) {
            ssize_t k = read(fd, out + have, size - 1 - have);
            if (k <= 0)
                break;
            have += (size_t)k;
        }
    }
    out[have] = '\0';
    close(fd);
    while (nconns > 0)
        close(conns[--nconns]);
    return grove_reap(pid, args, out);
}

/* A system that hangs up right after its greeting (it is stopping: grove
 * ls met one, run beside other tests) is listed as not answering, and
 * stats says it hung up; grove does not die of SIGPIPE with nothing said.
 * One that does not answer at all is listed too. A stand-in endpoint, in
 * a runtime directory of its own. */
static void hang_up_or_silence(void)
{
    char runtime[] = "/tmp/grove-obs-XXXXXX";
    CHECK(mkdtemp(runtime) != NULL);
    runtime_dir = runtime;
    char dir[64];
    snprintf(dir, sizeof dir, "%s/grove", runtime);
    CHECK_EQ(mkdir(dir, 0700), 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s/closing.%d.sock", dir,
             (int)getpid());
    static char out[4096];
    /* First one that hangs up, then one that is stopped (SIGSTOP): stats
     * says which, not that it is no Grove system. */
    for (int hang_up = 1; hang_up >= 0; hang_up--) {
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 &&
              listen(lfd, 8) == 0);
        CHECK_EQ(grove_against_stand_in(lfd, hang_up,
                                        (const char *[]){"ls", NULL}, out,
                                        sizeof out),
                 0);
        CHECK(strstr(out, "closing.") != NULL);
        CHECK(strstr(out, "(not answering)") != NULL);
        CHECK_EQ(grove_against_stand_in(
                     lfd, hang_up, (const char *[]){"stats", "closing", NULL},
                     out, sizeof out),
                 1);
        CHECK(strstr(out, hang_up ? "it hung up before it was asked"
                                  : "did not answer in 5 s (it is stopped, "
                                    "or too busy") != NULL);
        close(lfd);
        CHECK_EQ(unlink(a.sun_path), 0);
    }
    CHECK_EQ(rmdir(dir), 0);
    CHECK_EQ(rmdir(runtime), 0);
}

/* A handler that blocks for 300 ms is reported as a slow_handler event,
 * and top shows its handler time. */
static void slow_handler_and_top(void)
{
    sys_proc sp;
    CHECK(sys_start(&sp, "slow", 0));
    int fd;
    pid_t follower =
        grove_bg((const char *[]){"events", sp.name, "-f", "--json", "--kind",
                                  "slow_handler", NULL},
                 &fd);
    CHECK(follower > 0);
    char buf[8192] = "";
    size_t have = 0;
    (void)read_until(fd, buf, sizeof buf, &have, "\"behaviour\":\"slowpoke\"",
                     5.0);
    grove_bg_stop(follower, fd);
    CHECK(strstr(buf, "{\"event\":\"slow_handler\"") != NULL);
    CHECK(strstr(buf, "\"behaviour\":\"slowpoke\",\"type\":1,") != NULL);
    /* top: the slowpoke spends most of each second in its handler. */
    static char out[65536];
    CHECK_EQ(grove(out, sizeof out, 0,
                   (const char *[]){"top", sp.name, "--once", "--sort", "time",
                                    NULL}),
             0);
    CHECK(strstr(out, "msgs/s") != NULL);
    const char *row = strstr(out, "slowpoke");
    CHECK(row != NULL);
    double depth, rate, ms, longest;
    CHECK(sscanf(row, "slowpoke %lf %lf %lf %lf", &depth, &rate, &ms,
                 &longest) == 4);
    if (ms < 300 || longest < 250)
        fprintf(stderr, "  top:\n%s\n", out);
    CHECK(ms >= 300); /* Of 1000 ms/s, at sampling's precision. */
    CHECK(longest >= 250 && longest <= 400); /* Each call takes 300 ms. */
    /* The metrics' histogram has them between 250 and 500 ms. */
    CHECK_EQ(
        grove(out, sizeof out, 0, (const char *[]){"metrics", sp.name, NULL}),
        0);
    const char *b25 = strstr(out, "grove_handler_seconds_bucket{node=\"root\","
                                  "le=\"0.25\"} ");
    const char *b50 = strstr(out, "grove_handler_seconds_bucket{node=\"root\","
                                  "le=\"0.5\"} ");
    CHECK(b25 != NULL && b50 != NULL);
    if (b25 != NULL && b50 != NULL)
        CHECK(strtoul(strchr(b50, '}') + 2, NULL, 10) >
              strtoul(strchr(b25, '}') + 2, NULL, 10));
    CHECK_EQ(sys_stop(&sp), 0);
}

/* trace shows the messages an actor handles (with the handler's time)
 * and sends, named by behaviour or by ref; a name that is nothing is
 * refused. */
static void trace_shows_messages(void)
{
    sys_proc sp;
    CHECK(sys_start(&sp, "slowtrace", 0));
    static char out[65536];
    CHECK_EQ(grove(out, sizeof out, 0,
                   (const char *[]){"trace", sp.name, "slowpoke", "--seconds",
                                    "1", NULL}),
             0);
    const char *in = strstr(out, "in  <");
    CHECK(in != NULL);
    CHECK(strstr(in, "(slowpoke) from <") != NULL);
    const char *h = strstr(in, ", handler ");
    CHECK(h != NULL && strtod(h + 10, NULL) >= 299.0);
    CHECK(strstr(out, "out <") != NULL);
    /* By ref, as the tree prints it. */
    CHECK_EQ(grove(out, sizeof out, 0, (const char *[]){"tree", sp.name, NULL}),
             0);
    const char *row = strstr(out, "slowpoke  worker running ");
    CHECK(row != NULL);
    char ref[64];
    CHECK(sscanf(row + 25, "%63s", ref) == 1);
    CHECK_EQ(grove(out, sizeof out, 0,
                   (const char *[]){"trace", sp.name, ref, "--seconds", "1",
                                    "--json", NULL}),
             0);
    char want[96];
    snprintf(want, sizeof want, "{\"trace\":\"in\",\"actor\":\"%s\"", ref);
    CHECK(strstr(out, want) != NULL);
    CHECK_EQ(grove(out, sizeof out, 0,
                   (const char *[]){"trace", sp.name, "nothing-here", NULL}),
             1);
    CHECK(strstr(out, "no actor, registered name or behaviour") != NULL);
    CHECK_EQ(sys_stop(&sp), 0);
}

/* Sends an HTTP request line to 127.0.0.1:port; the whole answer in
 * out. */
static bool http_get(int port, const char *line, char *out, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    size_t have = 0;
    out[0] = '\0';
    /* The server closes after the answer. */
    (void)read_until(fd, out, size, &have, "\n\n\n\n", WAIT_MS / 1000.0);
    close(fd);
    return have > 0;
}

/* GROVE_METRICS serves the metrics over HTTP, as Prometheus scrapes
 * them; another path is 404. */
static void http_metrics(void)
{
    sys_proc sp;
    CHECK(sys_start(&sp, "metrics", 0));
    const char *at = strstr(sp.start, "control: metrics on http://127.0.0.1:");
    CHECK(at != NULL);
    int port = atoi(at + 37);
    CHECK(port > 0);
    static char out[65536];
    CHECK(http_get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", out,
                   sizeof out));
    CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(out, "Content-Type: text/plain; version=0.0.4") != NULL);
    CHECK(strstr(out, "\ngrove_actors_alive{node=\"root\"} ") != NULL);
    CHECK(http_get(port, "GET /other HTTP/1.1\r\n\r\n", out, sizeof out));
    CHECK(strncmp(out, "HTTP/1.1 404 Not Found", 22) == 0);
    CHECK_EQ(sys_stop(&sp), 0);
}

/* Runs a shell command line and returns its output (at most size). */
static bool shell(const char *cmd, char *out, size_t size)
{
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return false;
    size_t n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    return pclose(f) == 0;
}

/* top's live screen in a real terminal (a tmux pane): one screen,
 * redrawn in place every second, not screens appended. */
static void top_live_screen(void)
{
    static char out[16384];
    if (!shell("command -v tmux", out, sizeof out)) {
        fprintf(stderr, "  skipped: no tmux (scripts/setup.sh installs it)\n");
        return;
    }
    sys_proc sp;
    CHECK(sys_start(&sp, "slowtop", 0));
    char cmd[512], tmux[64];
    snprintf(tmux, sizeof tmux, "tmux -L grove-test-%d", (int)getpid());
    snprintf(cmd, sizeof cmd,
             "%s new-session -d -x 120 -y 30 '%s top %s' >/dev/null 2>&1", tmux,
             GROVE_TOOL, sp.name);
    CHECK(shell(cmd, out, sizeof out));
    snprintf(cmd, sizeof cmd, "%s capture-pane -p", tmux);
    /* The first screen comes after a second; wait for it, then for a
     * later one, by the uptime it shows. */
    double up1 = -1, up2 = -1;
    double t0 = test_now();
    while (test_now() - t0 < 10.0 && (up1 < 0 || up2 <= up1)) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL); /* Between two looks at the pane. */
        if (!shell(cmd, out, sizeof out))
            break;
        const char *up = strstr(out, "  up ");
        if (up == NULL)
            continue;
        if (up1 < 0)
            up1 = strtod(up + 5, NULL);
        else
            up2 = strtod(up + 5, NULL);
    }
    int headers = 0;
    for (const char *p = out; (p = strstr(p, "ACTOR")) != NULL; p++)
        headers++;
    bool slowpoke = strstr(out, "slowpoke") != NULL;
    snprintf(cmd, sizeof cmd, "%s kill-server >/dev/null 2>&1", tmux);
    (void)shell(cmd, out, sizeof out);
    CHECK(up1 >= 0 && up2 > up1); /* Redrawn. */
    CHECK_EQ(headers, 1);         /* In place. */
    CHECK(slowpoke);
    CHECK_EQ(sys_stop(&sp), 0);
}

/* Mistakes get a clear message and exit 1 or 2. */
static void clear_errors(void)
{
    static char out[4096];
    CHECK_EQ(grove(out, sizeof out, 0,
                   (const char *[]){"stats", "no-such-system-xyz", NULL}),
             1);
    CHECK(strstr(out, "no running system \"no-such-system-xyz\"") != NULL ||
          strstr(out, "no running Grove systems") != NULL);
    CHECK_EQ(
        grove(out, sizeof out, 0, (const char *[]){"frobnicate", "x", NULL}),
        2);
    CHECK(strstr(out, "usage: grove") != NULL);
    CHECK_EQ(grove(out, sizeof out, 0,
                   (const char *[]){"stats", "x", "--bogus", NULL}),
             2);
    CHECK(strstr(out, "--bogus is not a flag of stats") != NULL);
    CHECK_EQ(grove(out, sizeof out, 0,
                   (const char *[]){"top", "x", "--sort", "bogus", NULL}),
             2);
    CHECK(strstr(out, "--sort takes rate, depth or time, not \"bogus\"") !=
          NULL);
    CHECK_EQ(grove(out, sizeof out, 0,
                   (const char *[]){"top", "x", "-n", "1x", NULL}),
             2);
    CHECK(strstr(out, "-n takes a whole number from 1, not \"1x\"") != NULL);
    CHECK_EQ(grove(out, sizeof out, 0, (const char *[]){"top", "--once", NULL}),
             2);
    CHECK(strstr(out, "top needs SYS first") != NULL);
    CHECK_EQ(grove(out, sizeof out, 0, (const char *[]){"bogus", NULL}), 2);
    CHECK(strstr(out, "no command \"bogus\"") != NULL);
    CHECK_EQ(grove(out, sizeof out, 0,
                   (const char *[]){"events", "x", "--kind", NULL}),
             2);
    CHECK(strstr(out, "--kind needs a value") != NULL);
}

/* Log lines of this process's own system that say an accept failed, and
 * that accepting works again (emfile_log counts them). */
static atomic_uint accept_failed, accept_again;

static void emfile_log(void *arg, gr_log_level level, const char *line)
{
    (void)arg;
    (void)level;
    if (strstr(line, "control: accepting a connection failed") != NULL)
        atomic_fetch_add(&accept_failed, 1);
    if (strstr(line, "control: accepting connections again") != NULL)
        atomic_fetch_add(&accept_again, 1);
}

/* A connected Unix-socket client of path on fd (made earlier); false
 * when it cannot connect. */
static bool unix_connect(int fd, const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    return fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
}

/* The control endpoint when the process runs out of descriptors with
 * clients waiting (its listener stays readable): its thread rests the
 * listener instead of spinning on it, says so once, and takes clients
 * again once there are descriptors. In this process, so that the test
 * can take its descriptors. */
static void control_rests_without_descriptors(void)
{
    char dir[] = "/tmp/grove-emfile-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *old_dir = getenv("XDG_RUNTIME_DIR");
    char *saved = old_dir != NULL ? strdup(old_dir) : NULL;
    setenv("XDG_RUNTIME_DIR", dir, 1);
    gr_config cfg = {.control = 1,
                     .name = "emfile",
                     .workers = 2,
                     .log_level = GR_LOG_INFO,
                     .log_level_set = 1,
                     .log_fn = emfile_log,
                     .no_signals = 1};
    gr_system *sys = NULL;
    int rc = gr_system_start(&cfg, &sys);
    char path[512];
    snprintf(path, sizeof path, "%s/grove/emfile.%d.sock", dir, (int)getpid());
    enum { CLIENTS = 3 };
    int client[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        client[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    fd_shortage fds = {0};
    bool short_of_fds = rc == GR_OK && fd_shortage_start(&fds);
    bool connected = short_of_fds;
    for (int i = 0; i < CLIENTS && short_of_fds; i++)
        connected = unix_connect(client[i], path) && connected;
    double until = test_now() + 5;
    while (connected && atomic_load(&accept_failed) == 0 && test_now() < until)
        usleep(1000);
    bool low_cpu = cpu_stays_low(300);
    unsigned failed = atomic_load(&accept_failed);
    for (int i = 0; i < CLIENTS; i++)
        if (client[i] >= 0)
            close(client[i]);
    fd_shortage_end(&fds);
    /* A new client is taken again: it is greeted. */
    int again = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    char hello[128] = "";
    size_t have = 0;
    bool greeted =
        unix_connect(again, path) &&
        read_until(again, hello, sizeof hello, &have, "grove-control", 5.0);
    if (again >= 0)
        close(again);
    if (sys != NULL)
        (void)gr_system_shutdown(sys);
    if (saved != NULL) {
        setenv("XDG_RUNTIME_DIR", saved, 1);
        free(saved);
    } else {
        unsetenv("XDG_RUNTIME_DIR");
    }
    char sub[600];
    snprintf(sub, sizeof sub, "%s/grove", dir);
    rmdir(sub);
    rmdir(dir);
    CHECK_EQ(rc, GR_OK);
    CHECK(short_of_fds);
    CHECK(connected);
    CHECK(low_cpu);
    CHECK_EQ(failed, 1);
    CHECK(greeted);
    CHECK_EQ(atomic_load(&accept_again), 1);
}

int main(int argc, char **argv)
{
    int code;
    if (gr_node_main(roots, 2, NULL, &code))
        return code; /* The node process of a system below. */
    if (argc == 3 &&
        (strcmp(argv[1], "--system") == 0 || strcmp(argv[1], "--slow") == 0 ||
         strcmp(argv[1], "--nodes") == 0))
        return run_system(argv[2], argv[1]);
    self_exe = "/proc/self/exe";
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        self_exe = exe;
    }
    static const struct test_case cases[] = {
        TEST_CASE(ls_stats_metrics_tree),
        TEST_CASE(node_restart_seen),
        TEST_CASE(other_uid_refused),
        TEST_CASE(stale_socket_replaced),
        TEST_CASE(odd_name_found),
        TEST_CASE(hang_up_or_silence),
        TEST_CASE(clear_errors),
        TEST_CASE(slow_handler_and_top),
        TEST_CASE(trace_shows_messages),
        TEST_CASE(http_metrics),
        TEST_CASE(top_live_screen),
        TEST_CASE(node_insides_seen),
        TEST_CASE(trace_after_a_missed_fetch),
        TEST_CASE(trace_across_node_restart),
        TEST_CASE(control_rests_without_descriptors),
    };
    return test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
