/*
 * Supervisor restarts beyond the strategies: restart backoff, failed
 * restarts (OTP's try_again), the restart log (text and JSON, and the
 * formatters' truncation), and a long restart storm that must leave memory
 * and the actor count flat.
 */
#include "json_reader.h"
#include "sup_api_env.h"

/* ---- backoff --------------------------------------------------------------
 */

/* With backoff {20, 80}, a restart waits (the child shows RESTARTING
 * meanwhile) at least the doubling delay, then runs again. */
static void test_backoff_restarting(void)
{
    CHECK(open_env(1));
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_INIT, NULL);
    gr_child_spec kids[] = {kid_spec("b", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 10, kids, 1);
    sp.backoff = (gr_backoff){.min_ms = 20, .max_ms = 80};
    gr_ref sup;
    struct rep r;
    gr_child_info info;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &r));
    gr_ref cur = r.self;
    static const int delay[] = {20, 40, 80, 80};
    for (unsigned k = 0; k < 4; k++) {
        CHECK_EQ(probe_tell(cur, KID_CRASH, NULL, 0), GR_OK);
        CHECK_EQ(ev_wait(GR_EV_CHILD_CRASHED, "b", k + 1), k + 1);
        struct evrec crash;
        CHECK(ev_nth(GR_EV_CHILD_CRASHED, "b", k, &crash));
        CHECK(child_of(sup, "b", &info));
        /* Waiting out the delay, unless this thread was descheduled for
         * longer than it: then the child may already run, never earlier. */
        if (info.state == GR_CHILD_RUNNING)
            CHECK(test_now() - crash.t >= (delay[k] - 1) / 1000.0);
        else
            CHECK_EQ(info.state, GR_CHILD_RESTARTING);
        CHECK(info.state == GR_CHILD_RUNNING || gr_ref_is_none(info.ref));
        CHECK(take(REP_INIT, 1, &r));
        CHECK(!gr_ref_eq(r.self, cur));
        cur = r.self;
        CHECK(child_of(sup, "b", &info));
        CHECK_EQ(info.state, GR_CHILD_RUNNING);
        CHECK(gr_ref_eq(info.ref, cur));
        struct evrec crashed, restarted;
        CHECK(ev_nth(GR_EV_CHILD_CRASHED, "b", k, &crashed));
        CHECK(ev_nth(GR_EV_CHILD_RESTARTED, "b", k, &restarted));
        CHECK_EQ(restarted.restarts, k + 1);
        CHECK(gr_ref_eq(restarted.child, cur));
        /* A lower bound only (1 ms slack for clock granularity). */
        double waited_ms = (restarted.t - crashed.t) * 1000.0;
        if (waited_ms < delay[k] - 1) {
            fprintf(stderr, "  restart %u after %.1f ms, want >= %d\n", k + 1,
                    waited_ms, delay[k]);
            CHECK(0);
        }
    }
    close_env();
}

/* ---- failed restarts (OTP try_again) --------------------------------------
 */

/* A restart whose init fails is retried, each try counted against the
 * intensity; once init works again the child runs. */
static void test_restart_retry_succeeds(void)
{
    CHECK(open_env(1));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_INIT, &sh);
    gr_child_spec kids[] = {kid_spec("r", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 5, kids, 1);
    gr_ref sup;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &r));
    atomic_store(&sh.fail_left, 2);
    CHECK_EQ(probe_tell(r.self, KID_CRASH, NULL, 0), GR_OK);
    CHECK(take(REP_INIT, 1, &r));
    CHECK_EQ(atomic_load(&sh.inits), 4); /* 1 + 2 failed + 1. */
    CHECK_EQ(ev_wait(GR_EV_START_FAILED, "r", 2), 2);
    CHECK_EQ(ev_wait(GR_EV_CHILD_RESTARTED, "r", 1), 1);
    struct evrec ev;
    CHECK(ev_nth(GR_EV_START_FAILED, "r", 0, &ev));
    CHECK_EQ(ev.code, INIT_FAIL_CODE);
    CHECK_EQ(ev.restarts, 1);
    CHECK(ev_nth(GR_EV_START_FAILED, "r", 1, &ev));
    CHECK_EQ(ev.restarts, 2);
    CHECK(ev_nth(GR_EV_CHILD_RESTARTED, "r", 0, &ev));
    CHECK_EQ(ev.restarts, 3);
    CHECK(gr_ref_eq(ev.child, r.self));
    gr_child_info info;
    CHECK(child_of(sup, "r", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    CHECK(gr_ref_eq(info.ref, r.self));
    CHECK_EQ(ev_count(GR_EV_GAVE_UP, NULL), 0);
    close_env();
}

/* A child that cannot start again exhausts the intensity: intensity 3
 * allows three tries, the fourth restart gives up and the supervisor exits
 * with shutdown. */
static void test_restart_retry_gives_up(void)
{
    CHECK(open_env(1));
    struct shared sh = {0};
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_INIT, &sh);
    gr_child_spec kids[] = {kid_spec("r", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 3, kids, 1);
    gr_ref sup, cl;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &r));
    gr_ref child = r.self;
    CHECK_EQ(gr_system_spawn(T.sys, &client_b, NULL, 0, &cl), GR_OK);
    int32_t rc;
    CHECK_EQ(probe_tell(cl, CL_MONITOR, &sup, sizeof sup), GR_OK);
    CHECK(take_rc(cl, &rc));
    CHECK_EQ(rc, GR_OK);

    atomic_store(&sh.fail_left, 1000);
    CHECK_EQ(probe_tell(child, KID_CRASH, NULL, 0), GR_OK);
    CHECK(take(REP_DOWN, ANY_TAG, &r));
    CHECK(gr_ref_eq(r.from, sup));
    CHECK_EQ(r.code, GR_ESHUTDOWN);
    CHECK(wait_gone(sup));
    CHECK_EQ(atomic_load(&sh.inits), 4); /* 1 + 3 tries. */
    CHECK_EQ(ev_wait(GR_EV_START_FAILED, "r", 3), 3);
    CHECK_EQ(ev_wait(GR_EV_GAVE_UP, NULL, 1), 1);
    CHECK_EQ(ev_count(GR_EV_CHILD_RESTARTED, NULL), 0);
    struct evrec ev;
    for (unsigned k = 0; k < 3; k++) {
        CHECK(ev_nth(GR_EV_START_FAILED, "r", k, &ev));
        CHECK_EQ(ev.restarts, k + 1);
        CHECK_EQ(ev.code, INIT_FAIL_CODE);
    }
    CHECK(ev_nth(GR_EV_GAVE_UP, NULL, 0, &ev));
    CHECK_EQ(ev.restarts, 4);
    CHECK(gr_ref_eq(ev.sup, sup));
    close_env();
}

/* ---- the restart log ------------------------------------------------------
 */

#define LOG_MAX  256
#define LOG_LINE 1024

/* A log capture with room for whole lines. */
static struct {
    pthread_mutex_t lock;
    unsigned n;
    gr_log_level level[LOG_MAX];
    char line[LOG_MAX][LOG_LINE];
} logc = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void log_fn(void *arg, gr_log_level level, const char *line)
{
    (void)arg;
    pthread_mutex_lock(&logc.lock);
    if (logc.n < LOG_MAX) {
        logc.level[logc.n] = level;
        snprintf(logc.line[logc.n], LOG_LINE, "%s", line);
    }
    logc.n++;
    pthread_mutex_unlock(&logc.lock);
}

/* Index of the first captured line containing a, b and c (b, c: NULL for
 * none), or -1. */
static int log_find(const char *a, const char *b, const char *c)
{
    int at = -1;
    pthread_mutex_lock(&logc.lock);
    for (unsigned i = 0; i < logc.n && i < LOG_MAX; i++)
        if (strstr(logc.line[i], a) && (!b || strstr(logc.line[i], b)) &&
            (!c || strstr(logc.line[i], c))) {
            at = (int)i;
            break;
        }
    pthread_mutex_unlock(&logc.lock);
    return at;
}

static void log_dump(void)
{
    pthread_mutex_lock(&logc.lock);
    for (unsigned i = 0; i < logc.n && i < LOG_MAX; i++)
        fprintf(stderr, "    log %s: %s\n", gr_log_level_name(logc.level[i]),
                logc.line[i]);
    pthread_mutex_unlock(&logc.lock);
}

/* Formats a ref as the log does: <index.generation@node>, checked against
 * the rule gr_ref_format documents. */
static const char *ref_str(gr_ref r, char *buf, size_t size)
{
    char want[64];
    snprintf(want, sizeof want, "<%u.%u@root>", (unsigned)r.serial,
             (unsigned)(r.serial >> 32));
    gr_ref_format(T.sys, r, buf, size);
    if (strcmp(buf, want) != 0)
        fprintf(stderr, "  gr_ref_format: %s, wanted %s\n", buf, want);
    return buf;
}

/* The keys include/grove/event.h documents. */
static const char *const json_keys[] = {
    "event", "time_ns", "supervisor", "sup_name", "child_id",
    "child", "reason",  "code",       "restarts", "behaviour"};

/* Returns 1 if o has every documented key. */
static int json_has_keys(const struct jobj *o)
{
    for (size_t i = 0; i < sizeof json_keys / sizeof json_keys[0]; i++)
        if (j_get(o, json_keys[i]) == NULL) {
            fprintf(stderr, "  JSON event lacks key \"%s\"\n", json_keys[i]);
            return 0;
        }
    return 1;
}

/* Names long enough to test the line limit: GR_NAME_MAX bytes each. */
static char long_sup_name[GR_NAME_MAX + 1];
static char long_child_id[GR_NAME_MAX + 1];

/* Makes every kind of event happen under a supervisor named `name` with a
 * child `id`, and waits for the give-up. Fills the refs it saw. Returns 1
 * if all went as planned. */
static int log_scenario(const char *name, const char *id, gr_ref *sup,
                        gr_ref *first, gr_ref *second, struct rep *crash)
{
    static struct shared sh;
    atomic_store(&sh.inits, 0);
    atomic_store(&sh.fail_left, 0);
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_INIT | R_TERM, &sh);
    gr_child_spec kids[] = {kid_spec(id, &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 2, kids, 1);
    sp.name = name;
    struct rep r;
    gr_ref ref;
    pthread_mutex_lock(&logc.lock);
    logc.n = 0;
    pthread_mutex_unlock(&logc.lock);
    /* child_started */
    if (gr_supervisor_start(T.sys, &sp, sup) != GR_OK || !take(REP_INIT, 1, &r))
        return 0;
    *first = r.self;
    /* child_crashed, child_restarted */
    if (probe_tell(r.self, KID_CRASH, NULL, 0) != GR_OK ||
        !take(REP_TERM, 1, crash) || !take(REP_INIT, 1, &r))
        return 0;
    *second = r.self;
    /* child_exited */
    if (gr_supervisor_terminate_child(T.sys, *sup, id, GR_REF_NONE, SUP_WAIT) !=
            GR_OK ||
        !take(REP_TERM, 1, NULL))
        return 0;
    /* start_failed (restart_child: not counted) */
    atomic_store(&sh.fail_left, 1);
    if (gr_supervisor_restart_child(T.sys, *sup, id, SUP_WAIT, &ref) !=
        INIT_FAIL_CODE)
        return 0;
    if (gr_supervisor_restart_child(T.sys, *sup, id, SUP_WAIT, &ref) != GR_OK ||
        !take(REP_INIT, 1, &r))
        return 0;
    /* child_crashed, start_failed (the second restart in the window),
     * then gave_up: the retry would be the third. The give-up is logged
     * before the supervisor exits. */
    atomic_store(&sh.fail_left, 1000);
    return probe_tell(r.self, KID_CRASH, NULL, 0) == GR_OK && wait_gone(*sup);
}

/* With event_json, every event is one line holding one valid JSON object
 * with the documented keys, even with the longest names. */
static void test_log_json(void)
{
    gr_config cfg = {
        .workers = 2, .log_fn = log_fn, .no_signals = 1, .event_json = 1};
    CHECK(open_cfg(&cfg));
    memset(long_sup_name, 'S', GR_NAME_MAX);
    memset(long_child_id, 'C', GR_NAME_MAX);
    static const char *const names[][2] = {{"logsup", "w1"},
                                           {long_sup_name, long_child_id}};
    for (int round = 0; round < 2; round++) {
        const char *name = names[round][0], *id = names[round][1];
        gr_ref sup, first, second;
        struct rep crash;
        int ok = log_scenario(name, id, &sup, &first, &second, &crash);
        if (!ok)
            log_dump();
        CHECK(ok);
        char sref[48], r1[48], r2[48];
        ref_str(sup, sref, sizeof sref);
        ref_str(first, r1, sizeof r1);
        ref_str(second, r2, sizeof r2);
        unsigned kinds[GR_EV_KIND_COUNT] = {0};
        int bad = 0;
        pthread_mutex_lock(&logc.lock);
        unsigned n = logc.n < LOG_MAX ? logc.n : LOG_MAX;
        for (unsigned i = 0; i < n; i++) {
            const char *line = logc.line[i];
            if (line[0] != '{' || strstr(line, "\"supervisor\"") == NULL)
                continue; /* Not a supervisor event: an actor's own. */
            struct jobj o;
            if (strchr(line, '\n') || !json_parse(line, &o) ||
                !json_has_keys(&o)) {
                fprintf(stderr, "  bad JSON event line: %s\n", line);
                bad = 1;
                continue;
            }
            const char *ev = j_get(&o, "event");
            int kind = -1;
            for (int k = 0; k < GR_EV_KIND_COUNT; k++)
                if (strcmp(ev, gr_event_kind_name((gr_event_kind)k)) == 0)
                    kind = k;
            if (kind < 0 || strcmp(j_get(&o, "supervisor"), sref) != 0 ||
                strcmp(j_get(&o, "sup_name"), name) != 0 ||
                (kind != GR_EV_GAVE_UP &&
                 strcmp(j_get(&o, "child_id"), id) != 0)) {
                fprintf(stderr, "  unexpected JSON event: %s\n", line);
                bad = 1;
                continue;
            }
            /* The first start and the first crash are of the first
             * child; every crash has the same reason. */
            int first_of_kind = kinds[kind]++ == 0;
            if (kind == GR_EV_CHILD_STARTED &&
                strcmp(j_get(&o, "child"), r1) != 0)
                bad = 1;
            if (kind == GR_EV_CHILD_CRASHED &&
                ((first_of_kind && strcmp(j_get(&o, "child"), r1) != 0) ||
                 strcmp(j_get(&o, "code"), "GR_EFAILED") != 0 ||
                 strcmp(j_get(&o, "reason"), crash.why) != 0)) {
                fprintf(stderr, "  crash event: %s (want reason %s)\n", line,
                        crash.why);
                bad = 1;
            }
        }
        pthread_mutex_unlock(&logc.lock);
        if (bad)
            log_dump();
        CHECK(!bad);
        CHECK_EQ(kinds[GR_EV_CHILD_STARTED], 1);
        CHECK_EQ(kinds[GR_EV_CHILD_CRASHED], 2);
        CHECK_EQ(kinds[GR_EV_CHILD_RESTARTED], 2);
        CHECK_EQ(kinds[GR_EV_CHILD_EXITED], 1);
        CHECK_EQ(kinds[GR_EV_START_FAILED], 2);
        CHECK_EQ(kinds[GR_EV_GAVE_UP], 1);
    }
    close_env();
}

/* As text (the default), the lines name the supervisor (ref and name), the
 * child id, its ref and the reason. */
static void test_log_text(void)
{
    gr_config cfg = {.workers = 2, .log_fn = log_fn, .no_signals = 1};
    CHECK(open_cfg(&cfg));
    gr_ref sup, first, second;
    struct rep crash;
    int ok = log_scenario("logsup", "w1", &sup, &first, &second, &crash);
    if (!ok)
        log_dump();
    CHECK(ok);
    char sref[64], r1[48], r2[48];
    ref_str(sup, sref, sizeof sref);
    ref_str(first, r1, sizeof r1);
    ref_str(second, r2, sizeof r2);
    char failed_why[160];
    gr_reason fr = gr_reason_of(INIT_FAIL_CODE);
    gr_reason_format(&fr, failed_why, sizeof failed_why);
    struct {
        const char *what, *ref, *why;
        gr_log_level level;
    } want[] = {
        {"started", r1, NULL, GR_LOG_INFO},
        {"crashed", r1, crash.why, GR_LOG_ERROR},
        {"restarted", r2, NULL, GR_LOG_INFO},
        {"exited", r2, "shutdown", GR_LOG_INFO},
        {"failed to start", "\"w1\"", failed_why, GR_LOG_ERROR},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int at = log_find(want[i].what, want[i].ref, want[i].why);
        if (at < 0) {
            fprintf(stderr, "  no line: %s %s %s\n", want[i].what, want[i].ref,
                    want[i].why ? want[i].why : "");
            bad = 1;
            continue;
        }
        const char *line = logc.line[at];
        if (!strstr(line, sref) || !strstr(line, "logsup") ||
            !strstr(line, "\"w1\"") || logc.level[at] != want[i].level) {
            fprintf(stderr, "  line lacks sup/name/id/level: %s\n", line);
            bad = 1;
        }
    }
    int at = log_find("intensity", sref, "logsup");
    if (at < 0 || logc.level[at] != GR_LOG_ERROR) {
        fprintf(stderr, "  no give-up line\n");
        bad = 1;
    }
    if (bad)
        log_dump();
    CHECK(!bad);
    close_env();
}

/* A child is named by its id; a simple-one-for-one child, which has none,
 * by its behaviour (not as child ""). */
static void test_dynamic_child_named_by_behaviour(void)
{
    gr_event ev = {.kind = GR_EV_CHILD_CRASHED,
                   .supervisor = {1, 0, 0},
                   .child = {2, 0, 0},
                   .child_id = "",
                   .behaviour = "session",
                   .reason = {.code = GR_EFAILED}};
    char line[512];
    gr_event_format_text(&ev, line, sizeof line);
    if (strstr(line, "child (session) <") == NULL)
        fprintf(stderr, "  text: %s\n", line);
    CHECK(strstr(line, "child (session) <") != NULL);
    CHECK(strstr(gr_event_format_json(&ev, line, sizeof line),
                 ",\"behaviour\":\"session\"") != NULL);
    ev.child_id = "echo";
    gr_event_format_text(&ev, line, sizeof line);
    CHECK(strstr(line, "child \"echo\" <") != NULL);
}

/* The formatters write at most size bytes, always NUL-terminated: text is
 * cut (a prefix of the whole line), JSON is whole or still valid JSON. */
static void test_event_format_truncation(void)
{
    char sup_name[GR_NAME_MAX + 1], child_id[GR_NAME_MAX + 1];
    for (int i = 0; i < GR_NAME_MAX; i++) {
        sup_name[i] = "ab\"c\\"[i % 5];
        child_id[i] = "x\"y\\z\001"[i % 6];
    }
    sup_name[GR_NAME_MAX] = child_id[GR_NAME_MAX] = '\0';
    gr_event ev = {
        .time_ns = UINT64_MAX,
        .supervisor = {UINT64_MAX, UINT32_MAX, UINT32_MAX},
        .sup_name = sup_name,
        .child_id = child_id,
        .child = {UINT64_MAX - 1, UINT32_MAX, UINT32_MAX},
        .reason = {.code = GR_EFAILED,
                   .flags = GR_REASON_IN_HANDLER,
                   .msg_type = 0xdeadbeefu,
                   .detail = INT64_MIN},
        .restarts = UINT32_MAX,
    };
    for (int i = 0; i < GR_REASON_TEXT_MAX; i++)
        ev.reason.text[i] = "q\"\\\n"[i % 4];
    ev.reason.text[GR_REASON_TEXT_MAX] = '\0';
    /* The truncation marker fits from here on. */
    const size_t json_min = 64;
    for (int kind = 0; kind <= GR_EV_GAVE_UP; kind++) {
        ev.kind = (gr_event_kind)kind;
        static char full_text[8192], full_json[8192];
        CHECK(gr_event_format_text(&ev, full_text, sizeof full_text) ==
              full_text);
        CHECK(gr_event_format_json(&ev, full_json, sizeof full_json) ==
              full_json);
        size_t tl = strlen(full_text), jl = strlen(full_json);
        CHECK(tl + 1 < sizeof full_text && jl + 1 < sizeof full_json);
        struct jobj o;
        CHECK(json_parse(full_json, &o));
        CHECK(json_has_keys(&o));
        CHECK(strcmp(j_get(&o, "sup_name"), sup_name) == 0);
        size_t most = (tl > jl ? tl : jl) + 2;
        for (size_t size = 0; size <= most; size++) {
            /* Exactly size bytes (one when 0), so ASan sees any overrun. */
            size_t alloc = size ? size : 1;
            char *buf = malloc(alloc);
            CHECK(buf != NULL);
            memset(buf, 0x7f, alloc);
            char *got = gr_event_format_text(&ev, buf, size);
            int ok = got == buf;
            if (size == 0) {
                ok = ok && (unsigned char)buf[0] == 0x7f;
            } else {
                size_t n = strnlen(buf, size);
                size_t want = tl < size - 1 ? tl : size - 1;
                ok = ok && n == want && memcmp(buf, full_text, n) == 0;
            }
            if (!ok)
                fprintf(stderr, "  text kind %d size %zu: \"%.*s\"\n", kind,
                        size, (int)strnlen(buf, alloc), buf);
            memset(buf, 0x7f, alloc);
            got = gr_event_format_json(&ev, buf, size);
            int jok = got == buf;
            if (size == 0) {
                jok = jok && (unsigned char)buf[0] == 0x7f;
            } else {
                size_t n = strnlen(buf, size);
                jok = jok && n < size;
                if (jok && size > jl)
                    jok = strcmp(buf, full_json) == 0;
                else if (jok && size >= json_min)
                    jok = json_parse(buf, &o);
            }
            if (!jok)
                fprintf(stderr, "  json kind %d size %zu: \"%.*s\"\n", kind,
                        size, (int)strnlen(buf, alloc), buf);
            free(buf);
            CHECK(ok && jok);
        }
    }
}

/* ---- restart storm --------------------------------------------------------
 */

/* Reads the restart count from st (arg unused); a counter for wait_stat. */
static uint64_t stat_restarts(const gr_stats *st, int arg)
{
    (void)arg;
    return st->restarts;
}

/* Memory in use, in bytes: RSS from /proc/self/statm, or, under ASan
 * (whose quarantine RSS would measure), the heap bytes its allocator
 * reports in use. */
static uint64_t mem_in_use(void)
{
#ifdef SUP_ASAN
    return (uint64_t)__sanitizer_get_current_allocated_bytes();
#else
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
#endif
}

/* One permanent worker crashed many times in a row: every crash is
 * restarted, the actor count comes back to exactly supervisor + child +
 * inbox, and memory stays flat after the first thousand crashes. */
static void test_restart_storm(void)
{
    CHECK(open_env(0));
    uint64_t n = scaled(20000, 2000);
    const uint64_t warm = 1000;
    struct kid_arg a = kid_arg(1, TRAP_NONE, R_INIT, NULL);
    gr_child_spec kids[] = {kid_spec("storm", &a, GR_PERMANENT, 1000)};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, (uint32_t)(n + 100), kids, 1);
    gr_ref sup;
    struct rep r;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    CHECK(take(REP_INIT, 1, &r));
    gr_ref cur = r.self;
    uint64_t restarts0 = stats_of(T.sys).restarts;
    uint64_t mem_warm = 0;
    for (uint64_t i = 0; i < n; i++) {
        int rc = probe_tell(cur, KID_CRASH, NULL, 0);
        if (rc != GR_OK || !take(REP_INIT, 1, &r) || gr_ref_eq(r.self, cur)) {
            fprintf(stderr, "  crash %llu: send %s\n", (unsigned long long)i,
                    gr_errname(rc));
            CHECK(0);
        }
        cur = r.self;
        if (i + 1 == warm)
            mem_warm = mem_in_use();
    }
    /* The last restart is counted just after the child's init. */
    CHECK_EQ(wait_stat(T.sys, stat_restarts, 0, restarts0 + n) - restarts0, n);
    CHECK_EQ(wait_live(3), 3);
    uint64_t mem_end = mem_in_use();
    fprintf(stderr,
            "  %llu crashes; memory in use after %llu: %llu KiB, at end: "
            "%llu KiB\n",
            (unsigned long long)n, (unsigned long long)warm,
            (unsigned long long)(mem_warm >> 10),
            (unsigned long long)(mem_end >> 10));
    CHECK(mem_end <= mem_warm + (8u << 20));
    gr_child_info info;
    CHECK(child_of(sup, "storm", &info));
    CHECK_EQ(info.state, GR_CHILD_RUNNING);
    CHECK(gr_ref_eq(info.ref, cur));
    /* Exactly supervisor + child + inbox (the call's inbox is gone). */
    CHECK_EQ(wait_live(3), 3);
    close_env();
}

/* A child that sends its supervisor an exit signal (gr_exit) has not
 * exited: the supervisor takes it as a stranger's signal, ignored, instead
 * of restarting the child beside the running one. */
static int exiter_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    gr_ref sup;
    if (!read_payload(m, &sup, sizeof sup))
        return GR_EUNHANDLED;
    gr_reason why = gr_reason_of(GR_EFAILED);
    probe_report_rc(ctx, gr_exit(ctx, sup, &why));
    return GR_CONTINUE;
}

static const gr_behaviour exiter_b = {.name = "exiter",
                                      .handle = exiter_handle};

static void test_child_exit_signal_is_no_exit(void)
{
    CHECK(open_env(0));
    gr_child_spec kid = {.id = "x",
                         .behaviour = &exiter_b,
                         .restart = GR_PERMANENT,
                         .shutdown_ms = 1000};
    gr_sup_spec sp = sup_spec(GR_ONE_FOR_ONE, 3, &kid, 1);
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(T.sys, &sp, &sup), GR_OK);
    gr_child_info before, after;
    CHECK(child_of(sup, "x", &before));
    CHECK_EQ(probe_tell(before.ref, 1, &sup, sizeof sup), GR_OK);
    CHECK_EQ(probe_take_rc(), GR_OK);
    /* A round trip through the supervisor: the signal was handled. */
    CHECK_EQ(nspecs(sup), 1);
    CHECK(child_of(sup, "x", &after));
    CHECK(gr_ref_eq(after.ref, before.ref));
    CHECK_EQ(after.state, GR_CHILD_RUNNING);
    CHECK_EQ(stats_of(T.sys).restarts, 0);
    close_env();
}

TEST_MAIN(TEST_CASE(test_backoff_restarting),
          TEST_CASE(test_child_exit_signal_is_no_exit),
          TEST_CASE(test_restart_retry_succeeds),
          TEST_CASE(test_restart_retry_gives_up), TEST_CASE(test_log_json),
          TEST_CASE(test_log_text), TEST_CASE(test_event_format_truncation),
          TEST_CASE(test_dynamic_child_named_by_behaviour),
          TEST_CASE(test_restart_storm))
