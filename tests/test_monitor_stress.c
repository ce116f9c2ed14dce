/*
 * Monitors under stress: many watchers, targets and races between exits
 * and monitor requests. Public API only.
 */
#include "monitor_env.h"

/* ---- stress ---------------------------------------------------------------
 */

/* Monitors each stress watcher makes (random targets, repeats allowed). */
#define SM 8

enum {
    MSG_S_WATCH = 200, /* struct s_watch: monitor these. */
    MSG_S_WATCHING,    /* Report: struct s_watching, the ids. */
    MSG_S_DOWN,        /* Report: struct s_down, a DOWN a watcher handled. */
};

struct s_watch {
    gr_ref t[SM];
};

struct s_watching {
    int32_t idx;
    int32_t rc[SM];
    uint64_t id[SM];
};

struct s_down {
    int32_t idx;
    int32_t read_rc;
    gr_ref from;
    uint64_t corr;
    gr_down d;
};

/* A stress watcher's state and spawn argument: its index. */
struct s_arg {
    int32_t idx;
};

static int s_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    return read_arg(state, sizeof(struct s_arg), arg, len);
}

static int s_watch_step(gr_ctx *ctx, void *state, const gr_msg *m)
{
    const struct s_arg *s = state;
    struct s_watch w;
    if (!read_payload(m, &w, sizeof w))
        return GR_EUNHANDLED;
    struct s_watching r = {.idx = s->idx};
    for (int k = 0; k < SM; k++)
        r.rc[k] = gr_monitor(ctx, w.t[k], &r.id[k]);
    probe_report(ctx, MSG_S_WATCHING, &r, sizeof r);
    return GR_CONTINUE;
}

/* A DOWN: reported. */
static int s_watcher_other(gr_ctx *ctx, void *state, const gr_msg *m)
{
    const struct s_arg *s = state;
    if (m->type != GR_MSG_DOWN)
        return GR_EUNHANDLED;
    struct s_down d = {.idx = s->idx, .from = m->from, .corr = m->corr};
    d.read_rc = gr_down_read(m, &d.d);
    probe_report(ctx, MSG_S_DOWN, &d, sizeof d);
    return GR_CONTINUE;
}

/* A target only ends, by PROBE_END. */
static const struct probe_step s_target_steps[] = {{0, NULL}};
static const struct probe_script s_target_script = {.steps = s_target_steps};
PROBE_BEHAVIOUR(s_target_b, "s_target", 0, s_target_script);

static const struct probe_step s_watcher_steps[] = {{MSG_S_WATCH, s_watch_step},
                                                    {0, NULL}};
static const struct probe_script s_watcher_script = {
    .steps = s_watcher_steps, .other = s_watcher_other, .init = s_init};
PROBE_BEHAVIOUR(s_watcher_b, "s_watcher", sizeof(struct s_arg),
                s_watcher_script);

/* When a stress target exits, relative to the monitors on it. */
enum { T_EARLY, T_RACING, T_LATE };

/* A stress target. */
struct s_target {
    gr_ref ref;
    int when;   /* T_* */
    int how;    /* 0: GR_STOP, 1: crash, 2: gr_stop, 3: stop itself. */
    int reason; /* The exit reason that gives. */
};

/* A stress watcher. */
struct s_watcher {
    gr_ref ref;
    int doomed;   /* 0: lives on; 1, 2: stopped in phase 1 or 2. */
    int watched;  /* Its MSG_S_WATCH was sent. */
    int reported; /* Its MSG_S_WATCHING came. */
    int tgt[SM];  /* Target index per monitor. */
    uint64_t id[SM];
    int got[SM]; /* DOWNs seen per monitor. */
};

/* Everything one stress round keeps. */
struct stress {
    struct env e;
    unsigned seed;
    int nt, nw;
    struct s_target *t;
    struct s_watcher *w;
    int reported;
    uint64_t live_downs; /* DOWNs seen by watchers that live on. */
    int bad;             /* Set when a message was wrong; already said. */
};

static int s_rand(struct stress *s, int n)
{
    return (int)(rand_r(&s->seed) % (unsigned)n);
}

static void s_shuffle(struct stress *s, int *v, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = s_rand(s, i + 1);
        int x = v[i];
        v[i] = v[j];
        v[j] = x;
    }
}

/* Makes target i exit as planned. */
static int s_end_target(struct stress *s, int i)
{
    struct s_target *t = &s->t[i];
    if (t->how == 2)
        return gr_stop(s->e.sys, t->ref);
    int32_t code = t->how == 0   ? GR_STOP
                   : t->how == 1 ? PROBE_CRASH - i
                                 : PROBE_STOP_SELF;
    return probe_end(t->ref, code);
}

static int s_watch(struct stress *s, int i)
{
    struct s_watcher *w = &s->w[i];
    struct s_watch c;
    for (int k = 0; k < SM; k++)
        c.t[k] = s->t[w->tgt[k]].ref;
    w->watched = 1;
    return probe_tell(w->ref, MSG_S_WATCH, &c, sizeof c);
}

/* Takes one report and checks it; returns GR_OK, GR_ETIMEDOUT, or
 * GR_EINVAL (said why) for a wrong report. */
static int s_take(struct stress *s, int timeout_ms)
{
    gr_msg *m = NULL;
    int rc = gr_inbox_recv(P.inbox, &m, timeout_ms);
    if (rc != GR_OK)
        return rc;
    rc = GR_EINVAL;
    struct s_watching wr;
    struct s_down d;
    if (m->type == MSG_S_WATCHING && read_payload(m, &wr, sizeof wr) &&
        wr.idx >= 0 && wr.idx < s->nw && !s->w[wr.idx].reported) {
        struct s_watcher *w = &s->w[wr.idx];
        rc = GR_OK;
        for (int k = 0; k < SM; k++) {
            if (wr.rc[k] != GR_OK || wr.id[k] == 0)
                rc = GR_EINVAL;
            w->id[k] = wr.id[k];
        }
        w->reported = 1;
        s->reported++;
        if (rc != GR_OK)
            fprintf(stderr, "  watcher %d: gr_monitor failed\n", wr.idx);
    } else if (m->type == MSG_S_DOWN && read_payload(m, &d, sizeof d) &&
               d.idx >= 0 && d.idx < s->nw && s->w[d.idx].reported) {
        struct s_watcher *w = &s->w[d.idx];
        int k = 0;
        while (k < SM && w->id[k] != d.corr)
            k++;
        if (k == SM) {
            fprintf(stderr, "  watcher %d: DOWN for unknown id %llu\n", d.idx,
                    (unsigned long long)d.corr);
        } else {
            struct s_target *t = &s->t[w->tgt[k]];
            int reason_ok = t->when == T_EARLY ? d.d.reason.code == GR_ENOACTOR
                            : t->when == T_LATE
                                ? d.d.reason.code == t->reason
                                : d.d.reason.code == t->reason ||
                                      d.d.reason.code == GR_ENOACTOR;
            if (d.read_rc == GR_OK && d.d.monitor == d.corr &&
                gr_ref_eq(d.from, t->ref) && gr_ref_eq(d.d.target, t->ref) &&
                reason_ok && w->got[k] == 0)
                rc = GR_OK;
            else
                fprintf(stderr,
                        "  watcher %d monitor %d (target %d, when %d): "
                        "reason %d (want %d), copy %d, read %d\n",
                        d.idx, k, w->tgt[k], t->when, d.d.reason.code,
                        t->reason, w->got[k] + 1, d.read_rc);
            w->got[k]++;
            if (!w->doomed)
                s->live_downs++;
        }
    } else {
        fprintf(stderr, "  stress: unexpected report type %u\n",
                (unsigned)m->type);
        probe_note_stray(m);
    }
    gr_msg_free(m);
    if (rc != GR_OK)
        s->bad = 1;
    return rc;
}

/* Receives until cond(s) holds, a message is wrong, or the watch gives
 * up; returns 1 if cond came to hold. */
static int s_until(struct stress *s, int (*cond)(const struct stress *))
{
    struct watch wt;
    watch_start(&wt, s->e.sys);
    while (!cond(s)) {
        int rc = s_take(s, 10);
        if (rc == GR_EINVAL || (rc == GR_ETIMEDOUT && watch_over(&wt)))
            return 0;
    }
    return 1;
}

static int s_all_reported(const struct stress *s)
{
    return s->reported == s->nw;
}

static int s_all_down(const struct stress *s)
{
    uint64_t live = 0;
    for (int i = 0; i < s->nw; i++)
        live += !s->w[i].doomed;
    return s->live_downs >= live * SM;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* One stress round on `workers` workers. Targets exit: some before any
 * monitor (GR_ENOACTOR), some while monitors are being made (their reason
 * or GR_ENOACTOR), the rest after, in random order, normally, stopped or
 * crashed, while a quarter of the watchers are stopped along the way.
 * Every watcher that lives on gets exactly one DOWN per monitor with the
 * right reason; a stopped one at most one; ids are unique; no dead
 * letters. */
static void stress_round(unsigned workers, unsigned seed)
{
    struct stress s = {.seed = seed};
    s.nt = (int)scaled(200, 24);
    s.nw = (int)scaled(200, 24);
    s.t = calloc((size_t)s.nt, sizeof *s.t);
    s.w = calloc((size_t)s.nw, sizeof *s.w);
    int n_ev = s.nt + 2 * s.nw;
    int *ev = calloc((size_t)n_ev, sizeof *ev);
    uint64_t *ids = calloc((size_t)s.nw * SM, sizeof *ids);
    int opened = s.t && s.w && ev && ids && open_env(&s.e, workers);
    if (!opened) {
        fprintf(stderr, "  stress: setup failed\n");
        test_failed_ = 1;
        goto out;
    }
    for (int i = 0; i < s.nt; i++) {
        struct s_target *t = &s.t[i];
        if (gr_system_spawn(s.e.sys, &s_target_b, NULL, 0, &t->ref) != GR_OK) {
            test_failed_ = 1;
            goto close;
        }
        int r = s_rand(&s, 8);
        t->when = r == 0 ? T_EARLY : r == 1 ? T_RACING : T_LATE;
        t->how = s_rand(&s, 4);
        t->reason = t->how == 0   ? GR_OK
                    : t->how == 1 ? PROBE_CRASH - i
                                  : GR_ESHUTDOWN;
    }
    int doomed = 0;
    for (int i = 0; i < s.nw; i++) {
        struct s_watcher *w = &s.w[i];
        struct s_arg a = {.idx = i};
        if (gr_system_spawn(s.e.sys, &s_watcher_b, &a, sizeof a, &w->ref) !=
            GR_OK) {
            test_failed_ = 1;
            goto close;
        }
        w->doomed = s_rand(&s, 4) == 0 ? 1 + s_rand(&s, 2) : 0;
        doomed += w->doomed != 0;
        for (int k = 0; k < SM; k++)
            w->tgt[k] = s_rand(&s, s.nt);
    }

    /* Early targets exit before anything watches them. */
    uint64_t exited = stats_of(s.e.sys).exited;
    uint64_t early = 0;
    for (int i = 0; i < s.nt; i++)
        if (s.t[i].when == T_EARLY) {
            if (s_end_target(&s, i) != GR_OK)
                test_failed_ = 1;
            early++;
        }
    if (test_failed_ || !exits_reach(&s.e, exited, early)) {
        fprintf(stderr, "  stress: early exits failed\n");
        test_failed_ = 1;
        goto close;
    }

    /* Phase 1: watch commands, racing exits, phase-1 stops, shuffled.
     * Events: i < nt: target i ends; nt + i: watcher i watches; nt + nw
     * + i: watcher i is stopped (after its watch, which it handles
     * first). */
    int n = 0;
    for (int i = 0; i < s.nt; i++)
        if (s.t[i].when == T_RACING)
            ev[n++] = i;
    for (int i = 0; i < s.nw; i++) {
        ev[n++] = s.nt + i;
        if (s.w[i].doomed == 1)
            ev[n++] = s.nt + s.nw + i;
    }
    s_shuffle(&s, ev, n);
    for (int j = 0; j < n && !test_failed_; j++) {
        int x = ev[j];
        int rc = GR_OK;
        if (x < s.nt) {
            rc = s_end_target(&s, x);
        } else if (x < s.nt + s.nw) {
            if (!s.w[x - s.nt].watched)
                rc = s_watch(&s, x - s.nt);
        } else {
            int i = x - s.nt - s.nw;
            if (!s.w[i].watched)
                rc = s_watch(&s, i);
            if (rc == GR_OK)
                rc = gr_stop(s.e.sys, s.w[i].ref);
        }
        if (rc != GR_OK) {
            fprintf(stderr, "  stress: phase 1 send failed: %d\n", rc);
            test_failed_ = 1;
        }
        if (j % 16 == 0)
            sched_yield();
    }
    if (test_failed_ || !s_until(&s, s_all_reported)) {
        fprintf(stderr, "  stress: %d of %d watchers reported\n", s.reported,
                s.nw);
        test_failed_ = 1;
        goto close;
    }

    /* Phase 2: the late targets and the phase-2 stops, shuffled. */
    n = 0;
    for (int i = 0; i < s.nt; i++)
        if (s.t[i].when == T_LATE)
            ev[n++] = i;
    for (int i = 0; i < s.nw; i++)
        if (s.w[i].doomed == 2)
            ev[n++] = s.nt + s.nw + i;
    s_shuffle(&s, ev, n);
    for (int j = 0; j < n && !test_failed_; j++) {
        int x = ev[j];
        int rc = x < s.nt ? s_end_target(&s, x)
                          : gr_stop(s.e.sys, s.w[x - s.nt - s.nw].ref);
        if (rc != GR_OK) {
            fprintf(stderr, "  stress: phase 2 send failed: %d\n", rc);
            test_failed_ = 1;
        }
    }
    if (test_failed_ || !s_until(&s, s_all_down)) {
        fprintf(stderr, "  stress: %llu DOWNs to live watchers\n",
                (unsigned long long)s.live_downs);
        test_failed_ = 1;
        goto close;
    }
    /* Everything has exited; then nothing more may come but DOWNs to
     * doomed watchers within their limit. */
    if (!exits_reach(&s.e, exited, (uint64_t)s.nt + (uint64_t)doomed)) {
        fprintf(stderr, "  stress: not all exits counted\n");
        test_failed_ = 1;
        goto close;
    }
    while (s_take(&s, SETTLE_MS) == GR_OK)
        ;
    if (s.bad)
        test_failed_ = 1;
    for (int i = 0; i < s.nw; i++)
        for (int k = 0; k < SM; k++) {
            int g = s.w[i].got[k];
            if (s.w[i].doomed ? g > 1 : g != 1) {
                fprintf(stderr,
                        "  watcher %d (doomed %d) monitor %d: %d DOWNs\n", i,
                        s.w[i].doomed, k, g);
                test_failed_ = 1;
            }
            ids[(size_t)i * SM + (size_t)k] = s.w[i].id[k];
        }
    qsort(ids, (size_t)s.nw * SM, sizeof *ids, cmp_u64);
    for (size_t i = 0; i < (size_t)s.nw * SM; i++)
        if (ids[i] == 0 || (i > 0 && ids[i] == ids[i - 1])) {
            fprintf(stderr, "  monitor id %llu repeated or zero\n",
                    (unsigned long long)ids[i]);
            test_failed_ = 1;
            break;
        }
    if (dead_total(&s.e) != 0) {
        fprintf(stderr, "  stress: %llu dead letters\n",
                (unsigned long long)dead_total(&s.e));
        test_failed_ = 1;
    }
close:
    if (test_failed_)
        fprintf(stderr, "  stress: %u workers, seed %u\n", workers, seed);
    close_env(&s.e);
out:
    free(s.t);
    free(s.w);
    free(ev);
    free(ids);
}

/* Many watchers on many targets, on two and on four workers. */
static void test_stress_many_watchers(void)
{
    const unsigned workers[] = {2, 4};
    const int rounds = (int)scaled(16, 1);
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < rounds; r++) {
            stress_round(workers[k], 0x6d6f6e + 97u * (unsigned)(k * 8 + r));
            if (test_failed_)
                return;
        }
}

TEST_MAIN(TEST_CASE(test_stress_many_watchers))
