/*
 * The event log as a file: JSON lines (from the config and GROVE_LOG),
 * read back with a small JSON reader, and the text and JSON formatters.
 * Public API only.
 */
#include <fcntl.h>

#include "json_reader.h"
#include "observe_env.h"

/* ---- a small JSON reader ------------------------------------------------- */

/* The keys event.h documents, in order, and which hold strings. */
static const char *const actor_keys[] = {
    "event", "time_ns", "level", "actor", "behaviour", "reason", "code", NULL};
static const int actor_str[] = {1, 0, 1, 1, 1, 1, 1};
static const char *const dead_keys[] = {"event", "time_ns", "level", "from",
                                        "to",    "type",    "corr",  "reason",
                                        "name",  NULL};
static const int dead_str[] = {1, 0, 1, 1, 1, 0, 0, 1, 1};

/* Checks that o has exactly its kind's keys, in order, with the right
 * value types; returns the kind, or -1. */
static int json_event_ok(const struct jobj *o)
{
    if (o->n < 1 || strcmp(o->key[0], "event") != 0)
        return -1;
    int kind = -1;
    for (int k = 0; k < GR_EV_KIND_COUNT; k++)
        if (strcmp(o->val[0], gr_event_kind_name((gr_event_kind)k)) == 0)
            kind = k;
    const char *const *keys;
    const int *str;
    if (kind == GR_EV_DEAD_LETTER) {
        keys = dead_keys;
        str = dead_str;
    } else if (kind >= GR_EV_SPAWNED && kind <= GR_EV_INIT_FAILED) {
        keys = actor_keys;
        str = actor_str;
    } else {
        return -1;
    }
    int n = 0;
    for (; keys[n] != NULL; n++)
        if (n >= o->n || strcmp(o->key[n], keys[n]) != 0 ||
            o->is_str[n] != str[n])
            return -1;
    if (n != o->n)
        return -1;
    const char *level = j_get(o, "level");
    int level_ok = 0;
    for (int l = GR_LOG_DEBUG; l <= GR_LOG_ERROR; l++)
        level_ok |= strcmp(level, gr_log_level_name((gr_log_level)l)) == 0;
    return level_ok ? kind : -1;
}

/* ---- the JSON-lines file ------------------------------------------------- */

/* A fresh directory for a case's files, removed by tmp_done(). */
static char tmp_dir[64];

static int tmp_make(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/grove_observe_XXXXXX");
    return mkdtemp(tmp_dir) != NULL;
}

static void tmp_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmp_dir, name);
}

/* Removes the files in the directory and the directory. */
static void tmp_done(void)
{
    DIR *d = opendir(tmp_dir);
    if (d == NULL)
        return;
    struct dirent *e;
    char p[sizeof tmp_dir + sizeof e->d_name + 2];
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(p, sizeof p, "%s/%s", tmp_dir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(tmp_dir);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* What a JSON-lines file held. */
struct file_sum {
    unsigned lines, bad, foreign;
    unsigned truncated[GR_EV_KIND_COUNT]; /* {"event":..,"truncated":true} */
    unsigned kind[GR_EV_KIND_COUNT];
    /* Ours, by content. */
    unsigned node_spawned, node_crashed, node_stopped, node_killed, strays;
};

/* Reads a file of JSON lines; lines equal to keep_line are counted as
 * foreign and not checked. Returns 0 if it cannot be read. */
static int read_events(const char *path, struct file_sum *fs, uint64_t t0,
                       const char *keep_line)
{
    memset(fs, 0, sizeof *fs);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char *line = NULL;
    size_t cap_n = 0;
    ssize_t len;
    uint64_t t1 = now_realtime_ns();
    while ((len = getline(&line, &cap_n, f)) > 0) {
        fs->lines++;
        if (line[len - 1] != '\n') {
            fprintf(stderr, "  line without newline: %s\n", line);
            fs->bad++;
            continue;
        }
        line[len - 1] = '\0';
        if (keep_line != NULL && strcmp(line, keep_line) == 0) {
            fs->foreign++;
            continue;
        }
        struct jobj o;
        int parsed = json_parse(line, &o);
        if (parsed && o.n == 2 && strcmp(o.key[1], "truncated") == 0 &&
            strcmp(o.val[1], "true") == 0 && !o.is_str[1]) {
            for (int k = 0; k < GR_EV_KIND_COUNT; k++)
                if (strcmp(o.val[0], gr_event_kind_name((gr_event_kind)k)) == 0)
                    fs->truncated[k]++;
            continue;
        }
        int kind = parsed ? json_event_ok(&o) : -1;
        uint64_t t = kind >= 0 ? strtoull(j_get(&o, "time_ns"), NULL, 10) : 0;
        if (kind < 0 || t < t0 || t > t1) {
            if (fs->bad++ < 3)
                fprintf(stderr, "  bad line: %s\n", line);
            continue;
        }
        fs->kind[kind]++;
        if (kind == GR_EV_SPAWNED &&
            strcmp(j_get(&o, "behaviour"), "node") == 0)
            fs->node_spawned++;
        if (kind == GR_EV_EXITED &&
            strcmp(j_get(&o, "behaviour"), "node") == 0) {
            const char *lv = j_get(&o, "level"), *code = j_get(&o, "code");
            fs->node_stopped += strcmp(lv, "debug") == 0 &&
                                strcmp(code, gr_errname(GR_ESHUTDOWN)) == 0;
            fs->node_killed += strcmp(lv, "warn") == 0 &&
                               strcmp(code, gr_errname(GR_EKILLED)) == 0;
        }
        if (kind == GR_EV_CRASHED &&
            strcmp(j_get(&o, "behaviour"), "node") == 0 &&
            strcmp(j_get(&o, "level"), "error") == 0)
            fs->node_crashed++;
        if (kind == GR_EV_DEAD_LETTER &&
            strtoul(j_get(&o, "type"), NULL, 10) == M_STRAY &&
            strcmp(j_get(&o, "reason"), "no_actor") == 0 &&
            strcmp(j_get(&o, "level"), "warn") == 0)
            fs->strays++;
    }
    free(line);
    fclose(f);
    return 1;
}

enum { FILE_T = 4 };

/* A behaviour name too long for one event line (docs/observability.md:
 * such a line becomes {"event":...,"truncated":true}). */
static char long_name[700];
static gr_behaviour long_b;

struct crasher {
    int n;
    atomic_int *go;
    atomic_int failed;
};

/* Spawns n nodes and crashes them, and makes n dead letters, all at once
 * with the other threads and the workers writing lines. */
static void *crasher_thread(void *p)
{
    struct crasher *c = p;
    go_wait(c->go);
    for (int i = 0; i < c->n; i++) {
        gr_ref r = GR_REF_NONE;
        if (gr_system_spawn(E.sys, &node_b, NULL, 0, &r) != GR_OK ||
            crash(r) != GR_OK || !provoke(M_STRAY))
            atomic_fetch_add(&c->failed, 1);
    }
    return NULL;
}

/* The event file: appended to (what was there stays), every line one
 * object with exactly its kind's keys, lines from several threads and
 * workers whole and never mixed, every event there once; nothing of it on
 * the log. */
static void test_event_file(void)
{
    CHECK(tmp_make());
    char path[128];
    tmp_path(path, sizeof path, "events.jsonl");
    static const char *const old = "{\"already\":\"here\"}";
    FILE *pre = fopen(path, "w");
    CHECK(pre != NULL);
    fprintf(pre, "%s\n", old);
    fclose(pre);

    uint64_t t0 = now_realtime_ns();
    int opened = open_env((gr_config){.event_log = path,
                                      .log_level = GR_LOG_DEBUG,
                                      .log_level_set = 1,
                                      .dead_letter_log_limit = 100000});
    if (!opened)
        tmp_done();
    CHECK(opened);
    int n = (int)scaled(100, 20);
    atomic_int go = 0;
    struct crasher c[FILE_T];
    pthread_t t[FILE_T];
    int started = 0;
    for (int i = 0; i < FILE_T; i++) {
        c[i] = (struct crasher){.n = n, .go = &go};
        started += pthread_create(&t[i], NULL, crasher_thread, &c[i]) == 0;
    }
    go_open(&go);
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    int failed = 0;
    for (int i = 0; i < started; i++)
        failed += atomic_load(&c[i].failed);
    uint64_t total = (uint64_t)FILE_T * (uint64_t)n;
    uint64_t exited = wait_exited(E.sys, total);
    /* One of each kind left: a stop, a kill, a failed init; and a crash
     * whose line does not fit. */
    gr_ref s = spawn(), k = spawn(), f = GR_REF_NONE, l = GR_REF_NONE;
    CHECK_EQ(gr_stop(E.sys, s), GR_OK);
    CHECK_EQ(gr_system_exit(E.sys, k, &(gr_reason){.code = GR_EKILL}), GR_OK);
    int frc = gr_system_spawn(E.sys, &failing_b, NULL, 0, &f);
    memset(long_name, 'n', sizeof long_name - 1);
    long_b = node_b;
    long_b.name = long_name;
    CHECK_EQ(gr_system_spawn(E.sys, &long_b, NULL, 0, &l), GR_OK);
    CHECK_EQ(crash(l), GR_OK);
    wait_exited(E.sys, total + 4);
    close_env();
    struct file_sum fs;
    int read_ok = read_events(path, &fs, t0, old);
    tmp_done();
    CHECK_EQ(started, FILE_T);
    CHECK_EQ(failed, 0);
    CHECK_EQ(exited, total);
    CHECK_EQ(frc, CODE_INIT);
    CHECK(read_ok);
    CHECK_EQ(fs.bad, 0);
    CHECK_EQ(fs.foreign, 1);
    CHECK_EQ(fs.node_crashed, total);
    CHECK_EQ(fs.kind[GR_EV_CRASHED], total);
    CHECK_EQ(fs.node_spawned, total + 2);
    CHECK_EQ(fs.strays, total);
    CHECK_EQ(fs.kind[GR_EV_DEAD_LETTER], total);
    CHECK_EQ(fs.kind[GR_EV_INIT_FAILED], 1);
    CHECK_EQ(fs.truncated[GR_EV_SPAWNED], 1);
    CHECK_EQ(fs.truncated[GR_EV_CRASHED], 1);
    CHECK_EQ(fs.node_stopped, 1);
    CHECK_EQ(fs.node_killed, 1);
    /* The events went to the file, not to the log. */
    CHECK_EQ(capture_count(&cap, GR_LOG_ERROR, "crash", NULL), 0);
    CHECK_EQ(capture_count(&cap, GR_LOG_WARN, "dead letter:", NULL), 0);
}

/* GROVE_LOG names the file when event_log is NULL; event_log wins over
 * it; an event_fn wins over both (no file is made); a path that cannot be
 * opened, from either, makes the start fail with GR_ESYS. */
static void test_event_file_choice(void)
{
    CHECK(tmp_make());
    char env_path[128], cfg_path[128], fn_path[128];
    tmp_path(env_path, sizeof env_path, "env.jsonl");
    tmp_path(cfg_path, sizeof cfg_path, "cfg.jsonl");
    tmp_path(fn_path, sizeof fn_path, "fn.jsonl");
    uint64_t t0 = now_realtime_ns();

    /* GROVE_LOG alone. */
    setenv("GROVE_LOG", env_path, 1);
    int opened = open_env((gr_config){0});
    unsetenv("GROVE_LOG");
    int crashed = 0;
    if (opened) {
        gr_ref c = spawn();
        crashed = crash(c) == GR_OK && wait_gone(0, 1);
        close_env();
    }
    struct file_sum fs;
    int read_ok = read_events(env_path, &fs, t0, NULL);
    unlink(env_path);

    /* GROVE_LOG and event_log: the file named in the config. */
    setenv("GROVE_LOG", env_path, 1);
    int opened2 = open_env((gr_config){.event_log = cfg_path});
    unsetenv("GROVE_LOG");
    int crashed2 = 0;
    if (opened2) {
        gr_ref c = spawn();
        crashed2 = crash(c) == GR_OK && wait_gone(0, 1);
        close_env();
    }
    struct file_sum fs2;
    int read_ok2 = read_events(cfg_path, &fs2, t0, NULL);
    int env_made = file_exists(env_path);

    /* An event_fn with event_log: the file is not even made. */
    ev_reset();
    int opened3 =
        open_env((gr_config){.event_fn = ev_fn, .event_log = fn_path});
    int crashed3 = 0;
    if (opened3) {
        gr_ref c = spawn();
        crashed3 = crash(c) == GR_OK && wait_ev(GR_EV_CRASHED, c, NULL);
        close_env();
    }
    int fn_made = file_exists(fn_path);
    tmp_done();

    CHECK(opened);
    CHECK(crashed);
    CHECK(read_ok);
    CHECK_EQ(fs.bad, 0);
    CHECK_EQ(fs.node_crashed, 1);
    CHECK(opened2);
    CHECK(crashed2);
    CHECK(read_ok2);
    CHECK_EQ(fs2.bad, 0);
    CHECK_EQ(fs2.node_crashed, 1);
    CHECK(!env_made);
    CHECK(opened3);
    CHECK(crashed3);
    CHECK(!fn_made);

    /* Paths that cannot be opened: the start fails and the log says why
     * (docs/observability.md). */
    gr_system *sys = NULL;
    capture_init(&cap);
    gr_config bad = {.event_log = "/nonexistent-grove-dir/x/events.jsonl",
                     .no_signals = 1,
                     .log_fn = capture_fn,
                     .log_arg = &cap};
    CHECK_EQ(gr_system_start(&bad, &sys), GR_ESYS);
    CHECK(capture_count(&cap, GR_LOG_ERROR, "/nonexistent-grove-dir/x/",
                        NULL) >= 1);
    setenv("GROVE_LOG", "/nonexistent-grove-dir/y.jsonl", 1);
    bad.event_log = NULL;
    int rc = gr_system_start(&bad, &sys);
    unsetenv("GROVE_LOG");
    CHECK_EQ(rc, GR_ESYS);
    CHECK(capture_count(&cap, GR_LOG_ERROR, "/nonexistent-grove-dir/y", NULL) >=
          1);
}

/* ---- formatting ---------------------------------------------------------- */

/* One event of each actor kind and a dead letter, with awkward strings. */
static gr_event sample(gr_event_kind kind)
{
    gr_event ev = {.kind = kind,
                   .level = GR_LOG_ERROR,
                   .time_ns = 1700000000123456789ull,
                   .actor = {5, 0, 1},
                   .behaviour = "wo\"rk\\er\n",
                   .sup_name = "",
                   .child_id = ""};
    switch (kind) {
    case GR_EV_SPAWNED:
        ev.level = GR_LOG_DEBUG;
        break;
    case GR_EV_EXITED:
        ev.level = GR_LOG_WARN;
        ev.reason = gr_reason_of(GR_EKILLED);
        break;
    case GR_EV_CRASHED:
        ev.reason = (gr_reason){
            .code = PROBE_CRASH, .flags = GR_REASON_IN_HANDLER, .msg_type = 7};
        break;
    case GR_EV_INIT_FAILED:
        ev.reason = gr_reason_of(GR_ENOMEM);
        break;
    default: /* GR_EV_DEAD_LETTER */
        ev.level = GR_LOG_WARN;
        ev.actor = GR_REF_NONE;
        ev.behaviour = "";
        ev.dead = (gr_dead_letter){.time_ns = 42,
                                   .from = {1, 0, 1},
                                   .to = {2, 0, 1},
                                   .corr = 99,
                                   .type = 0x2a,
                                   .reason = GR_DL_MAILBOX_FULL};
        break;
    }
    return ev;
}

/* Text and JSON of the new kinds: names, values, escaping; a text cut to
 * the buffer; a JSON line that does not fit becomes the truncated form,
 * exactly when it does not fit. */
static void test_event_format(void)
{
    static const gr_event_kind kinds[] = {GR_EV_SPAWNED, GR_EV_EXITED,
                                          GR_EV_CRASHED, GR_EV_INIT_FAILED,
                                          GR_EV_DEAD_LETTER};
    static const char *const names[] = {"spawned", "exited", "crashed",
                                        "init_failed", "dead_letter"};
    char full[1024], buf[1024], why[160], want[128];
    for (int i = 0; i < 5; i++) {
        gr_event ev = sample(kinds[i]);
        CHECK(strcmp(gr_event_kind_name(kinds[i]), names[i]) == 0);

        /* Text: the lines docs/observability.md shows, with the refs as
         * the JSON writes them. */
        struct jobj o;
        CHECK(json_parse(gr_event_format_json(&ev, buf, sizeof buf), &o));
        gr_reason_format(&ev.reason, why, sizeof why);
        static const char *const verb[] = {"spawn", "exit", "crash",
                                           "init failed"};
        char expect[512];
        if (kinds[i] == GR_EV_DEAD_LETTER)
            snprintf(expect, sizeof expect,
                     "dead letter: to %s from %s type 0x2a corr 99 reason "
                     "mailbox_full",
                     j_get(&o, "to"), j_get(&o, "from"));
        else if (kinds[i] == GR_EV_SPAWNED)
            snprintf(expect, sizeof expect, "spawn %s (%s)", j_get(&o, "actor"),
                     ev.behaviour);
        else
            snprintf(expect, sizeof expect, "%s %s (%s): %s",
                     verb[kinds[i] - GR_EV_SPAWNED], j_get(&o, "actor"),
                     ev.behaviour, why);
        CHECK(gr_event_format_text(&ev, full, sizeof full) == full);
        if (strcmp(full, expect) != 0)
            fprintf(stderr, "  text: %s\n  want: %s\n", full, expect);
        CHECK(strcmp(full, expect) == 0);
        CHECK(j_get(&o, "actor") == NULL ||
              strcmp(j_get(&o, "actor"), "") != 0);
        /* Cut to the buffer: a prefix, terminated. */
        for (size_t size = 1; size <= 12; size += 11) {
            memset(buf, 'x', sizeof buf);
            CHECK(gr_event_format_text(&ev, buf, size) == buf);
            CHECK_EQ(strlen(buf), size - 1);
            CHECK(strncmp(buf, full, size - 1) == 0);
        }

        /* JSON: exactly the documented keys, values that read back. */
        CHECK(gr_event_format_json(&ev, full, sizeof full) == full);
        size_t jl = strlen(full);
        CHECK(json_parse(full, &o));
        CHECK_EQ(json_event_ok(&o), kinds[i]);
        CHECK(strcmp(j_get(&o, "time_ns"), "1700000000123456789") == 0);
        CHECK(strcmp(j_get(&o, "level"), gr_log_level_name(ev.level)) == 0);
        if (kinds[i] == GR_EV_DEAD_LETTER) {
            CHECK(strcmp(j_get(&o, "reason"), "mailbox_full") == 0);
            CHECK(strcmp(j_get(&o, "corr"), "99") == 0);
            CHECK(strcmp(j_get(&o, "type"), "42") == 0);
            CHECK(strcmp(j_get(&o, "from"), j_get(&o, "to")) != 0);
        } else {
            CHECK(strcmp(j_get(&o, "behaviour"), "wo\"rk\\er\n") == 0);
            gr_reason_format(&ev.reason, why, sizeof why);
            CHECK(strcmp(j_get(&o, "reason"), why) == 0);
            CHECK(strcmp(j_get(&o, "code"), gr_errname(ev.reason.code)) == 0);
        }

        /* It fits in jl + 1 bytes; one fewer gives the truncated form. */
        CHECK(strcmp(gr_event_format_json(&ev, buf, jl + 1), full) == 0);
        snprintf(want, sizeof want, "{\"event\":\"%s\",\"truncated\":true}",
                 names[i]);
        CHECK(strcmp(gr_event_format_json(&ev, buf, jl), want) == 0);
        CHECK(strcmp(gr_event_format_json(&ev, buf, 64), want) == 0);
        CHECK(json_parse(buf, &o));
        CHECK(strcmp(j_get(&o, "truncated"), "true") == 0);
    }
    CHECK(strcmp(gr_event_kind_name(GR_EV_KIND_COUNT), "unknown") == 0);
}

/* gr_ref_format: "<index.generation@node>", the node by name (root and
 * this system's); an unknown node by its id in hex, and a ref of another
 * incarnation than the node's now, with its incarnation in hex; "<none>"
 * for none; cut to fit and always terminated. */
static void test_ref_format(void)
{
    CHECK(open_env((gr_config){0}));
    char buf[GR_REF_FORMAT_MAX];
    CHECK(strcmp(gr_ref_format(E.sys, GR_REF_NONE, buf, sizeof buf),
                 "<none>") == 0);
    gr_ref r = spawn();
    char want[64];
    snprintf(want, sizeof want, "<%u.%u@root>", (unsigned)r.serial,
             (unsigned)(r.serial >> 32));
    CHECK(strcmp(gr_ref_format(E.sys, r, buf, sizeof buf), want) == 0);
    CHECK(strcmp(gr_ref_format(NULL, r, buf, sizeof buf), want) == 0);
    gr_ref far = {
        .serial = 7 | (uint64_t)3 << 32, .node = 0x1a2b3c4d, .incarnation = 9};
    CHECK(strcmp(gr_ref_format(E.sys, far, buf, sizeof buf),
                 "<7.3@#1a2b3c4d/9>") == 0);
    gr_ref stale = r;
    stale.incarnation = 0x2a;
    snprintf(want, sizeof want, "<%u.%u@root/2a>", (unsigned)r.serial,
             (unsigned)(r.serial >> 32));
    CHECK(strcmp(gr_ref_format(E.sys, stale, buf, sizeof buf), want) == 0);
    CHECK(strcmp(gr_ref_format(E.sys, far, buf, 5), "<7.3") == 0);
    CHECK(gr_ref_format(E.sys, far, NULL, 5) == NULL);
    buf[0] = 'x';
    CHECK(gr_ref_format(E.sys, far, buf, 0) == buf && buf[0] == 'x');
    close_env();
}

/* Counts captured lines at level that mention s. */
static unsigned lines_with(gr_log_level level, const char *s)
{
    return capture_count(&cap, level, s, NULL);
}

/* A supervised child's crash is one log line (its supervisor's, which
 * names the child and the reason), and its restart one more; the actor's
 * own crash event reaches an event_fn and shows at debug level only. */
static void test_one_line_per_crash(void)
{
    for (int debug = 0; debug < 2; debug++) {
        gr_config cfg = {.log_level = debug ? GR_LOG_DEBUG : GR_LOG_INFO,
                         .log_level_set = 1};
        CHECK(open_env(cfg));
        gr_child_spec kid = {.id = "kid",
                             .behaviour = &node_b,
                             .restart = GR_PERMANENT,
                             .shutdown_ms = 1000};
        gr_sup_spec sp = {.strategy = GR_ONE_FOR_ONE,
                          .intensity = 3,
                          .period_ms = 5000,
                          .children = &kid,
                          .nchildren = 1};
        gr_ref sup;
        CHECK_EQ(gr_supervisor_start(E.sys, &sp, &sup), GR_OK);
        gr_child_info info;
        size_t n = 0;
        CHECK_EQ(
            gr_supervisor_which_children(E.sys, sup, SUP_WAIT, &info, 1, &n),
            GR_OK);
        char child[GR_REF_FORMAT_MAX];
        gr_ref_format(E.sys, info.ref, child, sizeof child);
        CHECK_EQ(crash(info.ref), GR_OK);
        double end = test_now() + WAIT_MS / 1000.0;
        while (lines_with(GR_LOG_INFO, "restarted as") == 0 && test_now() < end)
            sleep_ms(1);
        CHECK_EQ(lines_with(GR_LOG_INFO, "restarted as"), 1);
        /* The supervisor's line, and at debug level the actor's own. */
        CHECK_EQ(lines_with(GR_LOG_ERROR, "crashed"), 1);
        CHECK_EQ(lines_with(GR_LOG_ERROR, child), debug ? 2 : 1);
        CHECK_EQ(lines_with(GR_LOG_ERROR, "crash "), debug ? 1 : 0);
        close_env();
    }
}

/* The default sink's lines name the node and the process that wrote
 * them: "HH:MM:SS.mmm grove root[pid] info: system started: ...". */
static void test_stderr_line_names_node(void)
{
    CHECK(tmp_make());
    fflush(stderr);
    int saved = dup(2);
    char path[256];
    tmp_path(path, sizeof path, "stderr");
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    CHECK(saved >= 0 && fd >= 0);
    CHECK(dup2(fd, 2) == 2);
    close(fd);
    gr_system *sys;
    gr_config cfg = {.workers = 1, .no_signals = 1};
    int rc = gr_system_start(&cfg, &sys);
    if (rc == GR_OK)
        gr_system_shutdown(sys);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    CHECK_EQ(rc, GR_OK);
    char text[4096] = {0};
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f != NULL) {
        size_t got = fread(text, 1, sizeof text - 1, f);
        text[got] = '\0';
        fclose(f);
    }
    char want[64];
    snprintf(want, sizeof want,
             " grove root[%d] info: system started: ", (int)getpid());
    if (strstr(text, want) == NULL)
        fprintf(stderr, "  stderr was: %s\n", text);
    CHECK(strstr(text, want) != NULL);
    tmp_done();
}

TEST_MAIN(TEST_CASE(test_event_file), TEST_CASE(test_event_file_choice),
          TEST_CASE(test_event_format), TEST_CASE(test_ref_format),
          TEST_CASE(test_one_line_per_crash),
          TEST_CASE(test_stderr_line_names_node))
