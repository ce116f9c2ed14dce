/*
 * Node tests: supervisors starting real OS processes (this program,
 * re-entered through gr_node_main), their crashes (signals, exit
 * statuses, protocol errors) handled exactly as actor children's exits,
 * and messages, asks, monitors and links across the process boundary.
 * Every process started is reaped; bounded waits, no timing assertions.
 */
#include <grove/grove.h>

#include <sys/wait.h>

#include "node_helpers.h"
#include "testing.h"

/* ---- recording events ----------------------------------------------------- */

#define EV_MAX 256

static struct {
    pthread_mutex_t lock;
    gr_event_kind kind[EV_MAX];
    gr_reason reason[EV_MAX];
    char child[EV_MAX][GR_NAME_MAX + 1];
    size_t n;
} evs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void record_event(void *arg, const gr_event *ev)
{
    (void)arg;
    pthread_mutex_lock(&evs.lock);
    if (evs.n < EV_MAX && ev->child_id != NULL && ev->child_id[0] != '\0') {
        evs.kind[evs.n] = ev->kind;
        evs.reason[evs.n] = ev->reason;
        snprintf(evs.child[evs.n], sizeof evs.child[0], "%s", ev->child_id);
        evs.n++;
    }
    pthread_mutex_unlock(&evs.lock);
}

static void events_reset(void)
{
    pthread_mutex_lock(&evs.lock);
    evs.n = 0;
    pthread_mutex_unlock(&evs.lock);
}

/* Waits for the n-th (1-based) event of kind for child; copies its reason.
 * Returns 1 when it came. */
static int wait_event(gr_event_kind kind, const char *child, int nth,
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
static int count_events(gr_event_kind kind, const char *child)
{
    pthread_mutex_lock(&evs.lock);
    int seen = 0;
    for (size_t i = 0; i < evs.n; i++)
        seen += evs.kind[i] == kind && strcmp(evs.child[i], child) == 0;
    pthread_mutex_unlock(&evs.lock);
    return seen;
}

static int node_env_open(struct env *e)
{
    events_reset();
    gr_config cfg = {.workers = 2,
                     .no_signals = 1,
                     .log_fn = quiet_log,
                     .event_fn = record_event};
    return env_open(e, &cfg);
}

/* ---- specs ------------------------------------------------------------------ */

static const gr_node_spec n1_spec = {.name = "n1", .root = "echo"};
static const gr_node_spec n2_spec = {.name = "n2", .root = "echo"};

static int start_sup(gr_system *sys, gr_strategy strategy, uint32_t intensity,
                     const gr_child_spec *kids, size_t n, gr_ref *sup)
{
    gr_sup_spec spec = {.strategy = strategy,
                        .intensity = intensity,
                        .period_ms = 60000,
                        .children = kids,
                        .nchildren = n};
    return gr_supervisor_start(sys, &spec, sup);
}

static void crash(gr_system *sys, gr_inbox *in, gr_ref echo, int32_t how)
{
    (void)gr_send(sys, gr_inbox_ref(in), echo, T_CRASH, &how, sizeof how);
}

/* ---- cases ------------------------------------------------------------------ */

/* A node child starts with the supervisor; its root answers an ask from
 * the parent process by ref and is found by "echo@n1"; which_children
 * reports it as a node; shutting the system down stops and reaps it. */
static void start_ask_shutdown(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    struct who w;
    CHECK(find_echo(e.sys, e.inbox, "n1", &w, 10));
    CHECK(w.self.node != 0 && w.self.incarnation != 0);
    CHECK(w.pid != getpid());
    gr_msg *reply = NULL;
    CHECK_EQ(gr_call(e.sys, w.self, T_ECHO, "hello", 5, 5000, &reply), GR_OK);
    CHECK(reply->type == T_REPLY && reply->len == 5 &&
          memcmp(reply->data, "hello", 5) == 0);
    CHECK(gr_ref_eq(reply->from, w.self));
    gr_msg_free(reply);
    gr_child_info info;
    size_t count = 0;
    CHECK_EQ(gr_supervisor_which_children(e.sys, sup, &info, 1, &count), GR_OK);
    CHECK_EQ(count, 1);
    CHECK_EQ(info.type, GR_NODE);
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    env_close(&e);
    CHECK(pid_gone(w.pid, 10));
}

/* A SIGSEGV kills the node process: the child crashes with reason
 * {signal, SIGSEGV}, is restarted as a new incarnation, and the old ref
 * no longer reaches anything. */
static void sigsegv_restarts(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    struct who w1, w2;
    CHECK(find_echo(e.sys, e.inbox, "n1", &w1, 10));
    crash(e.sys, e.inbox, w1.self, CRASH_SEGV);
    gr_reason why;
    CHECK(wait_event(GR_EV_CHILD_CRASHED, "n1", 1, &why));
    CHECK_EQ(why.code, GR_ESIGNAL);
    CHECK_EQ(why.detail, SIGSEGV);
    CHECK(strcmp(why.text, "signal SIGSEGV") == 0);
    CHECK(wait_event(GR_EV_CHILD_RESTARTED, "n1", 1, NULL));
    CHECK(find_echo(e.sys, e.inbox, "n1", &w2, 10));
    CHECK(w2.pid != w1.pid);
    CHECK(w2.self.node == w1.self.node);
    CHECK(w2.self.incarnation != w1.self.incarnation);
    CHECK(pid_gone(w1.pid, 10));
    gr_msg *reply = NULL;
    CHECK(gr_call(e.sys, w1.self, T_ECHO, "x", 1, 2000, &reply) != GR_OK);
    CHECK_EQ(gr_call(e.sys, w2.self, T_ECHO, "x", 1, 5000, &reply), GR_OK);
    gr_msg_free(reply);
    env_close(&e);
    CHECK(pid_gone(w2.pid, 10));
}

int main(int argc, char **argv)
{
    node_main_or_continue();
    static const struct test_case cases[] = {
        {"start_ask_shutdown", start_ask_shutdown},
        {"sigsegv_restarts", sigsegv_restarts},
    };
    return test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
