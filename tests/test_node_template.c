/*
 * Node tests, the fork server: node processes cloned from their program's
 * template process instead of exec'd (docs/nodes.md, "The fork server").
 * A cloned node is this process's own child and restarts after SIGKILL
 * with the same exit reason as an exec'd one; a killed template is
 * replaced at the next start and a stuck one is given up on; templates end
 * with their system, and by themselves when their parent is SIGKILLed; no
 * descriptor leaks into the parent, the template or the nodes; a wrong
 * secret from a cloned node is refused; the opt-outs give exec'd nodes,
 * and so do a program that starts a thread before gr_node_main() and one
 * that cannot be executed. Which way a node was started shows in struct
 * who's main_pid (node_helpers.h). Bounded waits, no timing assertions.
 */
#include <fcntl.h>
#include <spawn.h>
#include <sys/prctl.h>

#include "node_env.h"

extern char **environ;

/* Opens a system for a case: events recorded, log lines kept in cap. */
static int open_env(struct env *e, struct capture *cap)
{
    events_reset();
    capture_init(cap);
    gr_config cfg = {.workers = 2,
                     .no_signals = 1,
                     .log_fn = capture_fn,
                     .log_arg = cap,
                     .event_fn = record_event};
    return env_open(e, &cfg);
}

/* Counts this process's fork server templates (zombies included). */
static int templates_alive(void)
{
    return proc_children_of(getpid(), PROC_TEMPLATES, NULL, 0);
}

/* The pid of this process's one running template, waiting up to limit_s
 * for there to be exactly one and no other; 0 when there is not. */
static int the_template(double limit_s)
{
    double end = test_now() + limit_s;
    for (;;) {
        int pids[4];
        proc_stat st;
        if (proc_children_of(getpid(), PROC_TEMPLATES, pids, 4) == 1 &&
            proc_stat_read(pids[0], &st) && st.state != 'Z')
            return pids[0];
        if (test_now() >= end)
            return 0;
        sleep_ms(2);
    }
}

/* Whether pid is no longer this process's child (it was reaped). */
static int reaped(int pid)
{
    proc_stat st;
    return !proc_stat_read(pid, &st) || st.ppid != getpid();
}

/* Counts process pid's open descriptors, and in *sockets (may be NULL)
 * those that are sockets; -1 when /proc does not show them. */
static int count_fds(int pid, int *sockets)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0, socks = 0;
    const struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char target[64];
        ssize_t k = readlinkat(dirfd(d), de->d_name, target, sizeof target - 1);
        target[k > 0 ? k : 0] = '\0';
        n++;
        socks += strncmp(target, "socket:", 7) == 0;
    }
    closedir(d);
    if (sockets != NULL)
        *sockets = socks;
    return pid == getpid() ? n - 1 : n; /* Not the listing's own. */
}

/* Whether a reason is that of a process killed by SIGKILL; says which
 * reason was not. */
static int is_sigkill(const char *what, const gr_reason *why)
{
    if (why->code == GR_ESIGNAL && why->detail == SIGKILL &&
        strcmp(why->text, "signal SIGKILL") == 0)
        return 1;
    fprintf(stderr, "  %s: code %d detail %lld text \"%s\"\n", what, why->code,
            (long long)why->detail, why->text);
    return 0;
}

/* Whether n1's process was just SIGKILLed (the nth time) and restarted:
 * the child's crash and the node's down name the signal as for an exec'd
 * node. Stores the new incarnation's echo in *w. */
static int killed_and_restarted(struct env *e, int nth, struct who *w)
{
    gr_reason crash, down;
    return wait_event(GR_EV_CHILD_CRASHED, "n1", nth, &crash) &&
           is_sigkill("crash", &crash) &&
           wait_event(GR_EV_NODE_DOWN, "n1", nth, &down) &&
           is_sigkill("node down", &down) &&
           wait_event(GR_EV_CHILD_RESTARTED, "n1", nth, NULL) &&
           find_echo(e->sys, e->inbox, "n1", w, 20);
}

/* A node comes from its program's template (main() ran once, in the
 * template), is this process's own child under its program's name, and
 * after SIGKILL restarts from the same template with the exit reason an
 * exec'd node has. The template ends with the system. */
static void cloned_node_restarts_after_sigkill(void)
{
    struct capture cap;
    struct env e;
    CHECK(open_env(&e, &cap));
    gr_ref sup;
    struct who w1, w2;
    CHECK(start_n1(&e, GR_PERMANENT, &sup, &w1));
    int tpl = the_template(WAIT_LIMIT_S);
    CHECK(tpl > 0);
    CHECK_EQ(w1.main_pid, tpl);
    proc_stat st;
    CHECK(proc_stat_read(w1.pid, &st));
    CHECK_EQ(st.ppid, getpid());
    CHECK(strcmp(st.comm, PROC_TEMPLATE_COMM) != 0);
    CHECK_EQ(kill(w1.pid, SIGKILL), 0);
    CHECK(killed_and_restarted(&e, 1, &w2));
    CHECK(w2.pid != w1.pid);
    CHECK_EQ(w2.main_pid, tpl);
    CHECK(pid_gone(w1.pid, 10));
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "fork server", NULL), 0);
    if (test_failed_)
        capture_dump(&cap);
    env_close(&e);
    /* Node and template stopped and reaped with the system. */
    CHECK(reaped(tpl));
    CHECK_EQ(children_alive(), 0);
}

/* A template killed with SIGKILL leaves its nodes running; the next
 * start reaps it, starts a new template and clones the node from it at
 * once (nothing logged above debug). */
static void killed_template_is_replaced(void)
{
    struct capture cap;
    struct env e;
    CHECK(open_env(&e, &cap));
    gr_ref sup;
    struct who w1, w2;
    CHECK(start_n1(&e, GR_PERMANENT, &sup, &w1));
    int tpl1 = the_template(WAIT_LIMIT_S);
    CHECK(tpl1 > 0);
    CHECK_EQ(kill(tpl1, SIGKILL), 0);
    proc_stat st;
    double end = test_now() + WAIT_LIMIT_S;
    while (proc_stat_read(tpl1, &st) && st.state != 'Z' && test_now() < end)
        sleep_ms(2);
    CHECK(proc_stat_read(tpl1, &st) && st.state == 'Z');
    /* Its node lives on. */
    gr_msg *reply = NULL;
    CHECK_EQ(gr_call(e.sys, w1.self, T_ECHO, "x", 1, 5000, &reply), GR_OK);
    gr_msg_free(reply);
    CHECK_EQ(kill(w1.pid, SIGKILL), 0);
    CHECK(killed_and_restarted(&e, 1, &w2));
    CHECK(w2.pid != w1.pid);
    CHECK(reaped(tpl1));
    int tpl2 = the_template(WAIT_LIMIT_S);
    CHECK(tpl2 > 0 && tpl2 != tpl1);
    CHECK_EQ(w2.main_pid, tpl2);
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "fork server", NULL), 0);
    if (test_failed_)
        capture_dump(&cap);
    env_close(&e);
    CHECK_EQ(children_alive(), 0);
}

/* A template that does not answer (SIGSTOPped) does not hang a start: it
 * is killed and reaped, that start goes by fork + exec (logged), and the
 * next one has a new template again. */
static void stuck_template_falls_back(void)
{
    struct capture cap;
    struct env e;
    CHECK(open_env(&e, &cap));
    gr_ref sup;
    struct who w1, w2, w3;
    CHECK(start_n1(&e, GR_PERMANENT, &sup, &w1));
    int tpl1 = the_template(WAIT_LIMIT_S);
    CHECK(tpl1 > 0);
    CHECK(stop_process(tpl1));
    CHECK_EQ(kill(w1.pid, SIGKILL), 0);
    CHECK(killed_and_restarted(&e, 1, &w2));
    CHECK_EQ(w2.main_pid, w2.pid); /* Exec'd. */
    CHECK(reaped(tpl1));
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "did not answer in time",
                           "this one starts by fork + exec"),
             1);
    CHECK_EQ(kill(w2.pid, SIGKILL), 0);
    CHECK(killed_and_restarted(&e, 2, &w3));
    int tpl2 = the_template(WAIT_LIMIT_S);
    CHECK(tpl2 > 0 && tpl2 != tpl1);
    CHECK_EQ(w3.main_pid, tpl2);
    if (test_failed_)
        capture_dump(&cap);
    env_close(&e);
    CHECK_EQ(children_alive(), 0);
}

/* Descriptors: many restarts through the template leave this process
 * with as many as after the first start, and none after the system
 * stops; the template holds its control socket and no node's link; a
 * node holds its link and not the template's socket. */
static void descriptors_back_at_baseline(void)
{
    int before = count_fds(getpid(), NULL);
    CHECK(before > 0);
    struct capture cap;
    struct env e;
    CHECK(open_env(&e, &cap));
    /* What the system opened for itself, before any node. */
    int base = count_fds(getpid(), NULL);
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 100, kids, 1, &sup), GR_OK);
    struct who w;
    FIND(&e, "n1", &w);
    int tpl = the_template(WAIT_LIMIT_S);
    CHECK(tpl > 0);
    int socks = -1;
    int tpl_fds = count_fds(tpl, &socks);
    CHECK_EQ(socks, 1);
    CHECK(count_fds(w.pid, &socks) > 0);
    CHECK_EQ(socks, 1);
    int up = count_fds(getpid(), NULL);
    CHECK(up > base);
    const int restarts = (int)scaled(30, 5);
    for (int i = 1; i <= restarts && !test_failed_; i++) {
        struct who next;
        CHECK_EQ(kill(w.pid, SIGKILL), 0);
        CHECK(killed_and_restarted(&e, i, &next));
        CHECK(next.pid != w.pid);
        CHECK_EQ(next.main_pid, tpl);
        w = next;
    }
    /* The killed incarnations' links close on the I/O thread. */
    double end = test_now() + WAIT_LIMIT_S;
    while (count_fds(getpid(), NULL) != up && test_now() < end)
        sleep_ms(2);
    CHECK_EQ(count_fds(getpid(), NULL), up);
    CHECK_EQ(count_fds(tpl, &socks), tpl_fds);
    CHECK_EQ(socks, 1);
    CHECK(count_fds(w.pid, &socks) > 0);
    CHECK_EQ(socks, 1);
    env_close(&e);
    CHECK_EQ(children_alive(), 0);
    CHECK_EQ(count_fds(getpid(), NULL), before);
}

/* A node cloned from the template that answers the handshake with a
 * wrong secret is refused (GR_EPROTO, "wrong secret") and reaped; the
 * template serves the next start. */
static void wrong_secret_refused_from_template(void)
{
    static const gr_node_spec liar = {.name = "liar", .root = "liar"};
    struct capture cap;
    struct env e;
    CHECK(open_env(&e, &cap));
    gr_child_spec kids[] = {NODE_CHILD("liar", liar, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_EPROTO);
    if (capture_count(&cap, GR_LOG_ERROR, "node liar failed to start",
                      "wrong secret") != 1)
        capture_dump(&cap);
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, "node liar failed to start",
                           "wrong secret"),
             1);
    int tpl = the_template(WAIT_LIMIT_S);
    CHECK(tpl > 0);
    double end = test_now() + WAIT_LIMIT_S;
    while (nodes_alive() != 0 && test_now() < end)
        sleep_ms(2);
    CHECK_EQ(nodes_alive(), 0);
    struct who w;
    CHECK(start_n1(&e, GR_PERMANENT, &sup, &w));
    CHECK_EQ(w.main_pid, tpl); /* The liar's template: it was cloned too. */
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "fork server", NULL), 0);
    if (test_failed_)
        capture_dump(&cap);
    env_close(&e);
    CHECK_EQ(children_alive(), 0);
}

/* The opt-outs: a spec's no_fork_server, and GROVE_NODE_FORK_SERVER=0 in
 * the environment, start exec'd nodes and no template. */
static void opt_outs_exec_nodes(void)
{
    static const gr_node_spec own = {
        .name = "n1", .root = "echo", .no_fork_server = 1};
    struct capture cap;
    struct env e;
    CHECK(open_env(&e, &cap));
    gr_child_spec kids[] = {NODE_CHILD("n1", own, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    struct who w;
    FIND(&e, "n1", &w);
    CHECK_EQ(w.main_pid, w.pid);
    CHECK_EQ(templates_alive(), 0);
    env_close(&e);
    /* Read when the system's transport is made: at its first node. */
    CHECK_EQ(setenv("GROVE_NODE_FORK_SERVER", "0", 1), 0);
    CHECK(open_env(&e, &cap));
    CHECK(start_n1(&e, GR_PERMANENT, &sup, &w));
    CHECK_EQ(w.main_pid, w.pid);
    CHECK_EQ(templates_alive(), 0);
    env_close(&e);
    unsetenv("GROVE_NODE_FORK_SERVER");
    CHECK_EQ(children_alive(), 0);
}

/* A program whose main() starts a thread before gr_node_main() cannot be
 * a template: its template says so and exits, the parent logs it once,
 * and the program's nodes start by fork + exec from then on. */
static void threads_first_falls_back(void)
{
    static const char *const argv[] = {"/proc/self/exe", "--thread-first",
                                       NULL};
    static const gr_node_spec spec = {
        .name = "n1", .root = "echo", .argv = argv};
    struct capture cap;
    struct env e;
    CHECK(open_env(&e, &cap));
    gr_child_spec kids[] = {NODE_CHILD("n1", spec, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    struct who w1, w2;
    FIND(&e, "n1", &w1);
    CHECK_EQ(w1.main_pid, w1.pid);
    CHECK_EQ(templates_alive(), 0);
    const char *said = "started threads before gr_node_main()";
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, said,
                           "this program's nodes start by fork + exec"),
             1);
    CHECK_EQ(kill(w1.pid, SIGKILL), 0);
    CHECK(killed_and_restarted(&e, 1, &w2));
    CHECK_EQ(w2.main_pid, w2.pid);
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, said, NULL), 1);
    CHECK_EQ(templates_alive(), 0);
    if (test_failed_)
        capture_dump(&cap);
    env_close(&e);
    CHECK_EQ(children_alive(), 0);
}

/* A program that cannot be executed cannot have a template either: the
 * warning says so, the start falls back to fork + exec and fails as it
 * always did (GR_EINIT), and nothing is left running. */
static void unexecutable_program(void)
{
    static const gr_node_spec spec = {
        .name = "n1", .root = "echo", .exe = "/nonexistent/grove-node"};
    struct capture cap;
    struct env e;
    CHECK(open_env(&e, &cap));
    gr_child_spec kids[] = {NODE_CHILD("n1", spec, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_EINIT);
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "could not be executed",
                           "by fork + exec"),
             1);
    CHECK_EQ(templates_alive(), 0);
    if (test_failed_)
        capture_dump(&cap);
    env_close(&e);
    CHECK_EQ(children_alive(), 0);
}

/* Copies this test's own program to path (made executable); returns 1 on
 * success. Written to a new file and renamed into place, as a deploy
 * does, so the old file's inode is left to whoever runs it. */
static int copy_self(const char *path)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    char buf[65536];
    ssize_t n = 0;
    int ok = in >= 0 && out >= 0;
    while (ok && (n = read(in, buf, sizeof buf)) > 0)
        ok = write(out, buf, (size_t)n) == n;
    ok = ok && n == 0;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return ok && rename(tmp, path) == 0;
}

/* A node program replaced on disk (a new build deployed under the same
 * path) gets a new template at the next start, so restarted nodes run the
 * new file, as exec'd ones would; the old template is reaped. */
static void replaced_program_gets_new_template(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/grove-test-node-%d", (int)getpid());
    CHECK(copy_self(path));
    const gr_node_spec spec = {.name = "n1", .root = "echo", .exe = path};
    struct capture cap;
    struct env e;
    CHECK(open_env(&e, &cap));
    gr_child_spec kids[] = {NODE_CHILD("n1", spec, GR_PERMANENT)};
    gr_ref sup;
    struct who w1, w2;
    int tpl1 = 0, tpl2 = 0;
    int started = start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup) == GR_OK &&
                  find_echo(e.sys, e.inbox, "n1", &w1, 20);
    if (started) {
        tpl1 = the_template(WAIT_LIMIT_S);
        started = tpl1 > 0 && w1.main_pid == tpl1 && copy_self(path) &&
                  kill(w1.pid, SIGKILL) == 0 &&
                  killed_and_restarted(&e, 1, &w2);
        tpl2 = started ? the_template(WAIT_LIMIT_S) : 0;
    }
    unlink(path);
    CHECK(started);
    CHECK(tpl2 > 0 && tpl2 != tpl1);
    CHECK_EQ(w2.main_pid, tpl2);
    CHECK(reaped(tpl1));
    CHECK_EQ(capture_count(&cap, GR_LOG_INFO, "changed on disk", NULL), 1);
    if (test_failed_)
        capture_dump(&cap);
    env_close(&e);
    CHECK_EQ(children_alive(), 0);
}

/* The parent process of templates_end_with_parent: starts a node, writes
 * its pid and its template's to fd, and waits to be killed. */
static int parent_of_node(int fd)
{
    gr_system *sys;
    gr_config cfg = {.workers = 2, .no_signals = 1, .log_fn = quiet_log};
    if (gr_system_start(&cfg, &sys) != GR_OK)
        return 2;
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT)};
    gr_ref sup;
    gr_inbox *in;
    struct who w;
    if (start_sup(sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup) != GR_OK ||
        gr_inbox_open(sys, &in) != GR_OK || !find_echo(sys, in, "n1", &w, 20))
        return 3;
    int32_t pids[2] = {w.pid, the_template(WAIT_LIMIT_S)};
    if (pids[1] != w.main_pid)
        return 4;
    if (write(fd, pids, sizeof pids) != sizeof pids)
        return 5;
    for (;;)
        pause();
}

/* The parent process is SIGKILLed: its template sees its control socket
 * close and exits, as its node does on its link (no orphans). This test
 * process is a subreaper, so both are reparented here and their ends can
 * be waited for. */
static void templates_end_with_parent(void)
{
    CHECK_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    int pfd[2];
    CHECK_EQ(pipe(pfd), 0);
    /* The parent is this program run afresh (not a fork of this
     * multi-threaded process): see parent_of_node(). */
    char fd_arg[16];
    snprintf(fd_arg, sizeof fd_arg, "%d", pfd[1]);
    char *const argv[] = {"/proc/self/exe", "--parent-of-node", fd_arg, NULL};
    pid_t parent;
    CHECK_EQ(posix_spawn(&parent, "/proc/self/exe", NULL, NULL, argv, environ),
             0);
    close(pfd[1]);
    int32_t pids[2] = {0, 0};
    CHECK_EQ(read(pfd[0], pids, sizeof pids), sizeof pids);
    close(pfd[0]);
    CHECK(pids[0] > 0 && pids[1] > 0);
    CHECK_EQ(kill(parent, SIGKILL), 0);
    int status;
    CHECK_EQ(waitpid(parent, &status, 0), parent);
    /* The node and the template are ours now; both must end on their
     * own. */
    for (int i = 0; i < 2; i++) {
        double end = test_now() + WAIT_LIMIT_S;
        pid_t got = 0;
        while (got == 0 && test_now() < end) {
            got = waitpid(pids[i], &status, WNOHANG);
            if (got == 0)
                sleep_ms(5);
        }
        CHECK_EQ(got, pids[i]);
    }
    CHECK_EQ(children_alive(), 0);
    CHECK_EQ(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

/* What a --thread-first process's extra thread does: nothing. */
static void *idle_thread(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--parent-of-node") == 0)
        return parent_of_node(atoi(argv[2]));
    if (argc > 1 && strcmp(argv[1], "--thread-first") == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, idle_thread, NULL) != 0)
            return 2;
        node_main_or_continue();
        return 3; /* Only ever started as a node or a template. */
    }
    static const struct test_case cases[] = {
        {"cloned_node_restarts_after_sigkill",
         cloned_node_restarts_after_sigkill},
        {"killed_template_is_replaced", killed_template_is_replaced},
        {"stuck_template_falls_back", stuck_template_falls_back},
        {"descriptors_back_at_baseline", descriptors_back_at_baseline},
        {"wrong_secret_refused_from_template",
         wrong_secret_refused_from_template},
        {"opt_outs_exec_nodes", opt_outs_exec_nodes},
        {"threads_first_falls_back", threads_first_falls_back},
        {"unexecutable_program", unexecutable_program},
        {"replaced_program_gets_new_template",
         replaced_program_gets_new_template},
        {"templates_end_with_parent", templates_end_with_parent},
    };
    return node_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
