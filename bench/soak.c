/*
 * soak: a long run of node kills and restarts that samples the parent's
 * memory, to find what grows with restarts (docs/benchmarks.md, "Soak").
 *
 * A one-for-one supervisor (intensity high enough never to trip) runs K
 * permanent node children "soak-1".."soak-K": this program, re-entered as
 * a node through gr_node_main, whose root "echo" answers WHO (its ref and
 * pid), ECHO requests, and counts SEQ tells. main() loops until the time
 * is up; each cycle:
 *
 *   1. traffic to every node: a gr_whereis_any (of "echo" on every node,
 *      or of "echo@soak-i"); SEQ tells by the root's ref, by the
 *      stand-in's ref (which passes them on to the root) and by name
 *      ("echo@soak-i"); ECHO calls from this thread to the root's ref and
 *      to the stand-in's; and a local "asker" actor asks both refs from
 *      inside the system (gr_ask). The asker also monitors and links
 *      every new root, which monitors and links it back, so that records
 *      of the dead node's actors are made and dropped on both sides;
 *   2. SIGKILLs one node's process, chosen at random;
 *   3. waits until which_children shows a new stand-in for that child and
 *      the new root answers WHO with a new pid.
 *
 * Every --interval seconds it prints a SAMPLE line: elapsed seconds,
 * restarts so far, VmRSS, heap in use (mallinfo2: uordblks, and hblkhd
 * for mmapped chunks), gr_stats counters (alive actors, dead letters,
 * supervisor restarts) and open descriptors. At the end a summary:
 * first/last/max of heap and RSS, the least-squares slope of heap and RSS
 * per 1000 restarts over the samples after the warm-up, and the traffic's
 * counts.
 *
 *   soak [--seconds S] [--nodes K] [--interval I] [--warmup W]
 *        [--pause-ms P] [--intensity N] [--period-ms T]
 *
 * Defaults: 60 s, 3 nodes, 10 s samples, warm-up a tenth of the run, no
 * pause between cycles, and the supervisor's intensity 10^6 in 60 s (as
 * bench/noderestart: never reached). Exits 1 if a restart does not come
 * within 30 s.
 */
#define _GNU_SOURCE

#include "bench_util.h"

#include <dirent.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <unistd.h>

enum {
    MSG_WHO = 1,      /* request: reply with struct who */
    MSG_ECHO = 2,     /* request: reply with the same payload */
    MSG_SEQ = 3,      /* tell: counted */
    MSG_REPLY = 4,    /* the reply type */
    MSG_ROUND = 5,    /* main -> asker: struct round */
    MSG_TALLY = 6,    /* request to asker: reply with struct tally */
    MSG_WATCH = 7,    /* main -> asker: payload a root's ref; the asker
                         monitors and links it, and asks it to do the same */
    MSG_WATCH_ME = 8, /* asker -> root: monitor and link the sender */
};

#define ROOT_NAME       "echo"
#define MAX_NODES       16
#define RESTART_LIMIT_S 30.0
#define CALL_MS         5000u

struct who {
    gr_ref self;
    int64_t pid;
};

/* ---- the node's root -------------------------------------------------- */

static int root_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    gr_trap_exit(ctx, 1); /* linked to the asker in the parent */
    return gr_register(ctx, ROOT_NAME);
}

static int root_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    uint64_t *seen = state;
    switch (m->type) {
    case MSG_WHO: {
        struct who w = {.self = gr_self(ctx), .pid = (int64_t)getpid()};
        return gr_reply(ctx, m, MSG_REPLY, &w, sizeof w);
    }
    case MSG_ECHO:
        return gr_reply(ctx, m, MSG_REPLY, m->data, m->len);
    case MSG_SEQ:
        ++*seen;
        return GR_CONTINUE;
    case MSG_WATCH_ME: {
        /* Parent-side actors watched from here: their records of this
         * node's actors must go when this process dies. */
        int rc = gr_monitor(ctx, m->from, NULL);
        return rc == GR_OK ? gr_link(ctx, m->from) : rc;
    }
    case GR_MSG_EXIT: /* the asker exits only at shutdown */
        return GR_CONTINUE;
    default:
        return GR_CONTINUE;
    }
}

static const gr_behaviour root_behaviour = {
    .name = "soak_root",
    .state_size = sizeof(uint64_t),
    .init = root_init,
    .handle = root_handle,
};

static const gr_node_root roots[] = {
    {.name = ROOT_NAME, .behaviour = &root_behaviour}};

/* ---- the asker: asks from inside the system ---------------------------- */

struct round {
    gr_ref target[2 * MAX_NODES];
    uint32_t n;
};

struct tally {
    uint64_t asked, answered, failed, refused;
    uint64_t watched, downs, exits;
};

static int asker_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    gr_trap_exit(ctx, 1); /* a linked root's node going down is no crash */
    return GR_OK;
}

static int asker_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct tally *t = state;
    if (m->flags & GR_MSG_REPLY) {
        if (m->type == MSG_REPLY)
            t->answered++;
        else
            t->failed++; /* ask failed or timed out */
        return GR_CONTINUE;
    }
    if (m->type == MSG_TALLY)
        return gr_reply(ctx, m, MSG_REPLY, t, sizeof *t);
    if (m->type == GR_MSG_DOWN) {
        t->downs++;
        return GR_CONTINUE;
    }
    if (m->type == GR_MSG_EXIT) {
        t->exits++;
        return GR_CONTINUE;
    }
    if (m->type == MSG_WATCH && m->len == sizeof(gr_ref)) {
        gr_ref root;
        memcpy(&root, m->data, sizeof root);
        /* Refused at once (the node is already down) is fine: the DOWN
         * and the EXIT still come. */
        (void)gr_monitor(ctx, root, NULL);
        (void)gr_link(ctx, root);
        (void)gr_tell(ctx, root, MSG_WATCH_ME, NULL, 0);
        t->watched++;
        return GR_CONTINUE;
    }
    if (m->type != MSG_ROUND || m->len != sizeof(struct round))
        return GR_CONTINUE;
    struct round r;
    memcpy(&r, m->data, sizeof r);
    for (uint32_t i = 0; i < r.n && i < 2 * MAX_NODES; i++) {
        uint64_t v = t->asked;
        if (gr_ask(ctx, r.target[i], MSG_ECHO, &v, sizeof v, CALL_MS, NULL) ==
            GR_OK)
            t->asked++;
        else
            t->refused++;
    }
    return GR_CONTINUE;
}

static const gr_behaviour asker_behaviour = {
    .name = "soak_asker",
    .state_size = sizeof(struct tally),
    .init = asker_init,
    .handle = asker_handle,
};

/* ---- events and log ---------------------------------------------------- */

static atomic_ulong ev_node_up, ev_node_down, ev_restarted, log_lines;

static void count_event(void *arg, const gr_event *ev)
{
    (void)arg;
    if (ev->kind == GR_EV_NODE_UP)
        atomic_fetch_add(&ev_node_up, 1);
    else if (ev->kind == GR_EV_NODE_DOWN)
        atomic_fetch_add(&ev_node_down, 1);
    else if (ev->kind == GR_EV_CHILD_RESTARTED)
        atomic_fetch_add(&ev_restarted, 1);
}

static void count_log(void *arg, gr_log_level level, const char *line)
{
    (void)arg;
    (void)level;
    (void)line;
    atomic_fetch_add(&log_lines, 1);
}

/* ---- main's side ------------------------------------------------------- */

struct sample {
    double t;
    uint64_t restarts, rss, heap, mmapped;
};

struct node {
    char name[GR_NAME_MAX + 1];
    char echo_name[GR_NAME_MAX + 8];
    gr_node_spec spec;
    gr_ref standin;
    struct who who;
};

static struct {
    gr_system *sys;
    gr_ref sup, asker;
    struct node node[MAX_NODES];
    unsigned nodes;
    uint64_t calls_ok, calls_failed, tells_refused, whereis_ok, whereis_failed;
} S;

static double now_s(void)
{
    return (double)bench_now_ns() / 1e9;
}

static void sleep_ms(unsigned ms)
{
    nanosleep(&(struct timespec){.tv_sec = ms / 1000,
                                 .tv_nsec = (long)(ms % 1000) * 1000000},
              NULL);
}

/* Reads every child's stand-in ref; returns 1 when all are running. */
static int read_children(void)
{
    gr_child_info info[MAX_NODES];
    size_t count = 0;
    if (gr_supervisor_which_children(S.sys, S.sup, CALL_MS, info, MAX_NODES,
                                     &count) != GR_OK ||
        count != S.nodes)
        return 0;
    int all = 1;
    for (unsigned i = 0; i < S.nodes; i++) {
        S.node[i].standin = info[i].ref;
        all &=
            info[i].state == GR_CHILD_RUNNING && !gr_ref_is_none(info[i].ref);
    }
    return all;
}

/* Asks node i's root (through its stand-in) who it is. */
static int ask_who(unsigned i, struct who *out)
{
    gr_msg *m = NULL;
    int rc = gr_call(S.sys, S.node[i].standin, MSG_WHO, NULL, 0, CALL_MS, &m);
    if (rc != GR_OK)
        return 0;
    int ok = m->type == MSG_REPLY && m->len == sizeof *out;
    if (ok)
        memcpy(out, m->data, sizeof *out);
    gr_msg_free(m);
    return ok;
}

static void call_echo(gr_ref to, uint64_t v)
{
    gr_msg *m = NULL;
    if (gr_call(S.sys, to, MSG_ECHO, &v, sizeof v, CALL_MS, &m) == GR_OK &&
        m->len == sizeof v && bench_u64(m) == v)
        S.calls_ok++;
    else
        S.calls_failed++;
    if (m != NULL)
        gr_msg_free(m);
}

static void tell(gr_ref to, uint64_t v)
{
    if (gr_system_tell(S.sys, GR_REF_NONE, to, MSG_SEQ, &v, sizeof v) != GR_OK)
        S.tells_refused++;
}

/* Has the asker watch node i's root (and the root watch the asker). */
static void watch(unsigned i)
{
    if (gr_system_tell(S.sys, GR_REF_NONE, S.asker, MSG_WATCH,
                       &S.node[i].who.self, sizeof(gr_ref)) != GR_OK)
        S.tells_refused++;
}

static void traffic(uint64_t cycle)
{
    /* Odd cycles look "echo" up on every node; even ones "echo@soak-i" on
     * one node chosen at random, which must answer with its root. */
    gr_ref found;
    unsigned pick = (unsigned)rand() % S.nodes;
    if (gr_whereis_any(S.sys, cycle % 2 ? ROOT_NAME : S.node[pick].echo_name,
                       CALL_MS, &found) == GR_OK &&
        (cycle % 2 || gr_ref_eq(found, S.node[pick].who.self)))
        S.whereis_ok++;
    else
        S.whereis_failed++;
    struct round r = {.n = 0};
    for (unsigned i = 0; i < S.nodes; i++) {
        struct node *n = &S.node[i];
        for (int k = 0; k < 4; k++) {
            tell(n->who.self, cycle);
            tell(n->standin, cycle);
            if (gr_system_tell_name(S.sys, GR_REF_NONE, n->echo_name, MSG_SEQ,
                                    &cycle, sizeof cycle) != GR_OK)
                S.tells_refused++;
        }
        call_echo(n->who.self, cycle);
        call_echo(n->standin, cycle);
        r.target[r.n++] = n->who.self;
        r.target[r.n++] = n->standin;
    }
    if (gr_system_tell(S.sys, GR_REF_NONE, S.asker, MSG_ROUND, &r, sizeof r) !=
        GR_OK)
        S.tells_refused++;
}

/* Kills node i's process and waits for its replacement. */
static void kill_and_wait(unsigned i)
{
    struct node *n = &S.node[i];
    gr_ref old = n->standin;
    pid_t old_pid = (pid_t)n->who.pid;
    if (kill(old_pid, SIGKILL) != 0)
        bench_die("kill %d: %s", (int)old_pid, strerror(errno));
    double end = now_s() + RESTART_LIMIT_S;
    while (now_s() < end) {
        if (read_children() && !gr_ref_eq(n->standin, old)) {
            struct who w;
            if (ask_who(i, &w) && (pid_t)w.pid != old_pid) {
                n->who = w;
                watch(i);
                return;
            }
        }
        sleep_ms(1);
    }
    bench_die("node %s was not restarted within %.0f s", n->name,
              RESTART_LIMIT_S);
}

/* Open file descriptors of this process (links, pidfds, the loop's). */
static unsigned open_fds(void)
{
    unsigned n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n > 3 ? n - 3 : 0; /* ".", ".." and the DIR's own */
}

static uint64_t heap_in_use(uint64_t *mmapped)
{
    struct mallinfo2 mi = mallinfo2();
    *mmapped = mi.hblkhd;
    return mi.uordblks;
}

/* Least-squares slope of y over x (samples from index first on). */
static double slope(const struct sample *s, size_t first, size_t n, int rss)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0, k = 0;
    for (size_t i = first; i < n; i++) {
        double x = (double)s[i].restarts;
        double y = (double)(rss ? s[i].rss : s[i].heap);
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
        k++;
    }
    double den = k * sxx - sx * sx;
    return k < 2 || den == 0 ? 0 : (k * sxy - sx * sy) / den;
}

static unsigned long arg_ul(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        bench_die("%s needs a value", argv[*i]);
    char *end;
    unsigned long v = strtoul(argv[++*i], &end, 10);
    if (*end != '\0')
        bench_die("%s %s: expected a number", argv[*i - 1], argv[*i]);
    return v;
}

int main(int argc, char **argv)
{
    gr_config node_cfg = {.log_level = GR_LOG_WARN, .log_level_set = 1};
    int code;
    if (gr_node_main(roots, sizeof roots / sizeof roots[0], &node_cfg, &code))
        return code;

    unsigned long seconds = 60, interval = 10, pause_ms = 0;
    unsigned long warmup = ~0ul, intensity = 1000000, period_ms = 60000;
    S.nodes = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0)
            seconds = arg_ul(argc, argv, &i);
        else if (strcmp(argv[i], "--nodes") == 0)
            S.nodes = (unsigned)arg_ul(argc, argv, &i);
        else if (strcmp(argv[i], "--interval") == 0)
            interval = arg_ul(argc, argv, &i);
        else if (strcmp(argv[i], "--warmup") == 0)
            warmup = arg_ul(argc, argv, &i);
        else if (strcmp(argv[i], "--pause-ms") == 0)
            pause_ms = arg_ul(argc, argv, &i);
        else if (strcmp(argv[i], "--intensity") == 0)
            intensity = arg_ul(argc, argv, &i);
        else if (strcmp(argv[i], "--period-ms") == 0)
            period_ms = arg_ul(argc, argv, &i);
        else
            bench_die("usage: soak [--seconds S] [--nodes K] [--interval I] "
                      "[--warmup W] [--pause-ms P] [--intensity N] "
                      "[--period-ms T]");
    }
    if (S.nodes < 1 || S.nodes > MAX_NODES || seconds == 0 || interval == 0 ||
        intensity > UINT32_MAX || period_ms == 0 || period_ms > UINT32_MAX)
        bench_die("need 1..%d nodes, seconds and interval > 0", MAX_NODES);
    if (warmup == ~0ul)
        warmup = seconds / 10;

    gr_config cfg = {
        .no_signals = 1, .log_fn = count_log, .event_fn = count_event};
    bench_check(gr_system_start(&cfg, &S.sys), "gr_system_start");
    bench_check(gr_system_spawn(S.sys, &asker_behaviour, NULL, 0, &S.asker),
                "spawn asker");

    static gr_child_spec kids[MAX_NODES];
    for (unsigned i = 0; i < S.nodes; i++) {
        struct node *n = &S.node[i];
        snprintf(n->name, sizeof n->name, "soak-%u", i + 1);
        snprintf(n->echo_name, sizeof n->echo_name, ROOT_NAME "@%s", n->name);
        n->spec = (gr_node_spec){.name = n->name, .root = ROOT_NAME};
        kids[i] = (gr_child_spec){.id = n->name,
                                  .behaviour = &gr_node_behaviour,
                                  .arg = &n->spec,
                                  .arg_len = sizeof n->spec,
                                  .restart = GR_PERMANENT,
                                  .type = GR_NODE,
                                  .shutdown_ms = 5000};
    }
    gr_sup_spec sup = {.strategy = GR_ONE_FOR_ONE,
                       .intensity = (uint32_t)intensity,
                       .period_ms = (uint32_t)period_ms,
                       .children = kids,
                       .nchildren = S.nodes};
    bench_check(gr_supervisor_start(S.sys, &sup, &S.sup), "start supervisor");
    if (!read_children())
        bench_die("the nodes did not start");
    for (unsigned i = 0; i < S.nodes; i++)
        if (!ask_who(i, &S.node[i].who))
            bench_die("node %s does not answer", S.node[i].name);
        else
            watch(i);

    size_t cap = seconds / interval + 8, ns = 0;
    struct sample *smp = calloc(cap, sizeof *smp);
    if (smp == NULL)
        bench_die("out of memory");
    srand((unsigned)getpid());

    printf("SOAK seconds=%lu nodes=%u interval=%lu warmup=%lu pause_ms=%lu "
           "intensity=%lu period_ms=%lu\n",
           seconds, S.nodes, interval, warmup, pause_ms, intensity, period_ms);
    fflush(stdout);
    double t0 = now_s(), next = t0, end = t0 + (double)seconds;
    uint64_t restarts = 0;
    for (uint64_t cycle = 0;; cycle++) {
        double t = now_s();
        if (t >= next || t >= end) {
            gr_stats st;
            gr_system_stats(S.sys, &st);
            uint64_t dl = 0;
            for (int k = 0; k < GR_DL_COUNT; k++)
                dl += st.dead_letters[k];
            struct sample s = {
                .t = t - t0, .restarts = restarts, .rss = bench_rss_bytes()};
            s.heap = heap_in_use(&s.mmapped);
            if (ns < cap)
                smp[ns++] = s;
            printf("SAMPLE t=%.0f restarts=%" PRIu64 " rss_kb=%" PRIu64
                   " heap_b=%" PRIu64 " mmap_b=%" PRIu64 " alive=%" PRIu64
                   " dead_letters=%" PRIu64 " node_down_dl=%" PRIu64
                   " sup_restarts=%" PRIu64 " calls_failed=%" PRIu64
                   " log_lines=%lu fds=%u\n",
                   s.t, restarts, s.rss / 1024, s.heap, s.mmapped, st.alive, dl,
                   st.dead_letters[GR_DL_NODE_DOWN], st.restarts,
                   S.calls_failed, (unsigned long)atomic_load(&log_lines),
                   open_fds());
            fflush(stdout);
            next += (double)interval;
            if (t >= end)
                break;
        }
        traffic(cycle);
        kill_and_wait((unsigned)rand() % S.nodes);
        restarts++;
        if (pause_ms)
            sleep_ms((unsigned)pause_ms);
    }

    gr_msg *m = NULL;
    struct tally tl = {0};
    if (gr_call(S.sys, S.asker, MSG_TALLY, NULL, 0, CALL_MS, &m) == GR_OK &&
        m->len == sizeof tl)
        memcpy(&tl, m->data, sizeof tl);
    if (m != NULL)
        gr_msg_free(m);

    size_t first = 0;
    while (first < ns && smp[first].t < (double)warmup)
        first++;
    if (ns - first < 2)
        first = 0;
    uint64_t hmax = 0, rmax = 0;
    for (size_t i = 0; i < ns; i++) {
        hmax = smp[i].heap > hmax ? smp[i].heap : hmax;
        rmax = smp[i].rss > rmax ? smp[i].rss : rmax;
    }
    printf("SUMMARY restarts=%" PRIu64 " seconds=%.0f samples=%zu "
           "fit_from_t=%.0f\n",
           restarts, smp[ns - 1].t, ns, smp[first].t);
    printf("SUMMARY heap_b first=%" PRIu64 " last=%" PRIu64 " max=%" PRIu64
           " slope_per_1000_restarts=%.1f\n",
           smp[0].heap, smp[ns - 1].heap, hmax,
           1000 * slope(smp, first, ns, 0));
    printf("SUMMARY rss_kb first=%" PRIu64 " last=%" PRIu64 " max=%" PRIu64
           " slope_per_1000_restarts=%.1f\n",
           smp[0].rss / 1024, smp[ns - 1].rss / 1024, rmax / 1024,
           1000 * slope(smp, first, ns, 1) / 1024);
    printf("SUMMARY traffic calls_ok=%" PRIu64 " calls_failed=%" PRIu64
           " tells_refused=%" PRIu64 " asks=%" PRIu64 " answered=%" PRIu64
           " ask_failed=%" PRIu64 " ask_refused=%" PRIu64 " watched=%" PRIu64
           " downs=%" PRIu64 " exits=%" PRIu64 " whereis_ok=%" PRIu64
           " whereis_failed=%" PRIu64
           " events node_up=%lu node_down=%lu child_restarted=%lu\n",
           S.calls_ok, S.calls_failed, S.tells_refused, tl.asked, tl.answered,
           tl.failed, tl.refused, tl.watched, tl.downs, tl.exits, S.whereis_ok,
           S.whereis_failed, (unsigned long)atomic_load(&ev_node_up),
           (unsigned long)atomic_load(&ev_node_down),
           (unsigned long)atomic_load(&ev_restarted));
    fflush(stdout);
    free(smp);
    bench_check(gr_system_shutdown(S.sys), "gr_system_shutdown");
    return 0;
}
