/*
 * Spawn, stop and send racing each other: actors die while actors and plain
 * threads keep sending to them, slots are reused while old references are
 * still in use, and many threads spawn at once. Every case ends with exact
 * accounting from gr_system_stats(), read once everything has quiesced and
 * before shutdown:
 *
 *   sends that returned GR_OK       == messages handled + dead letters stopped
 *   sends that returned GR_ENOACTOR == dead letters no_actor
 *
 * Message and actor counts are divided by the environment variable
 * GROVE_TEST_SCALE (default 1), so sanitizer builds can run them smaller.
 * Payloads are fixed-layout C structs: they never leave this process.
 */
#include <grove/grove.h>

#include <pthread.h>
#include <stdatomic.h>

#include "helpers.h"

/* Message types used in this file. */
enum {
    MSG_GO = 1,   /* main -> actor: start */
    MSG_CONTINUE, /* actor -> itself: do the next chunk */
    MSG_DATA,     /* a tagged message (struct tagged) */
    MSG_REPORT,   /* actor -> main's inbox (struct send_counts) */
    MSG_DIE,      /* child -> itself: exit normally */
};

/* A message tagged with the reference its sender meant it for. */
struct tagged {
    gr_ref intended;
    uint64_t seq;
};

/* Outcomes of a run of sends. */
struct send_counts {
    uint64_t ok;      /* Returned GR_OK. */
    uint64_t noactor; /* Returned GR_ENOACTOR. */
    uint64_t other;   /* Returned anything else: always a failure. */
};

/* xorshift64: a cheap per-thread random stream. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Adds one send's result to the counts. */
static void count_send(struct send_counts *c, int rc)
{
    if (rc == GR_OK)
        c->ok++;
    else if (rc == GR_ENOACTOR)
        c->noactor++;
    else
        c->other++;
}

static void add_counts(struct send_counts *sum, const struct send_counts *c)
{
    sum->ok += c->ok;
    sum->noactor += c->noactor;
    sum->other += c->other;
}

/* Log lines a case prints before it only counts them. */
#define LOG_LINES_SHOWN 5

/* Lines logged by the current case's system. */
static atomic_uint log_lines;

/* A log sink that prints the first few lines and counts the rest: failed
 * inits, which one case makes thousands of, each log a line. */
static void log_sink(void *arg, gr_log_level level, const char *line)
{
    (void)arg;
    /* relaxed: only a count. */
    unsigned n = atomic_fetch_add_explicit(&log_lines, 1, memory_order_relaxed);
    if (n < LOG_LINES_SHOWN)
        fprintf(stderr, "  log %s: %s\n", gr_log_level_name(level), line);
}

/* Starts a system that logs only errors (dead letters are expected here)
 * and opens an inbox. Returns 0 on failure. */
static int env_start(struct env *e, unsigned workers)
{
    gr_config cfg = {.workers = workers,
                     .no_signals = 1,
                     .log_level = GR_LOG_ERROR,
                     .log_fn = log_sink};
    atomic_store(&log_lines, 0);
    return env_open(e, &cfg);
}

/* Closes the inbox and shuts the system down (see env_close), then says how
 * many log lines were not shown. */
static void env_stop(struct env *e)
{
    env_close(e);
    unsigned lines = atomic_load(&log_lines);
    if (lines > LOG_LINES_SHOWN)
        fprintf(stderr, "  (%u more log lines not shown)\n",
                lines - LOG_LINES_SHOWN);
}

/*
 * Waits, bounded, until the dead-letter counters balance the sends:
 * sent.ok == handled + stopped and sent.noactor == no_actor, where base is
 * the counters before these sends. The last dead letters are counted by
 * whoever finalises an exited actor, a moment after its terminate ran, so
 * the counters may trail. Then checks the balance exactly and that it
 * stays so.
 */
static void check_accounting(gr_system *sys, const gr_stats *base,
                             const struct send_counts *sent, uint64_t handled)
{
    gr_stats st;
    struct watch w;
    watch_start(&w, sys);
    for (;;) {
        gr_system_stats(sys, &st);
        uint64_t stopped =
            st.dead_letters[GR_DL_STOPPED] - base->dead_letters[GR_DL_STOPPED];
        uint64_t noactor = st.dead_letters[GR_DL_NO_ACTOR] -
                           base->dead_letters[GR_DL_NO_ACTOR];
        if ((handled + stopped >= sent->ok && noactor >= sent->noactor) ||
            watch_over(&w))
            break;
        sleep_us(1000);
    }
    sleep_ms(SETTLE_MS); /* Catch counts that overshoot. */
    gr_system_stats(sys, &st);
    CHECK_EQ(sent->other, 0);
    CHECK_EQ(handled + st.dead_letters[GR_DL_STOPPED] -
                 base->dead_letters[GR_DL_STOPPED],
             sent->ok);
    CHECK_EQ(st.dead_letters[GR_DL_NO_ACTOR] -
                 base->dead_letters[GR_DL_NO_ACTOR],
             sent->noactor);
}

/* Waits, bounded, until *counter reaches want. Returns 1 if it did. */
static int wait_count(gr_system *sys, atomic_ullong *counter, uint64_t want)
{
    struct watch w;
    watch_start(&w, sys);
    /* relaxed: a counter; the stats that follow are checked on their own. */
    while (atomic_load_explicit(counter, memory_order_relaxed) < want) {
        if (watch_over(&w))
            return 0;
        sleep_us(200);
    }
    return 1;
}

/* Orders references by serial, for qsort. */
static int cmp_serial(const void *x, const void *y)
{
    uint64_t a = ((const gr_ref *)x)->serial, b = ((const gr_ref *)y)->serial;
    return a < b ? -1 : a > b;
}

/* Checks that no two references share a serial (serials are never reused).
 * Sorts refs in place. */
static void check_unique_serials(gr_ref *refs, size_t n)
{
    qsort(refs, n, sizeof *refs, cmp_serial);
    size_t dups = 0;
    for (size_t i = 1; i < n; i++)
        dups += refs[i].serial == refs[i - 1].serial;
    CHECK_EQ(dups, 0);
}

/* ---- the arena: target actors that come and go ------------------------- */

/* Target slots: each holds its current target; old ones stay listed. */
#define SLOTS 8
/* Most targets one case spawns (the reference list is fixed-size). */
#define MAX_TARGETS 40000

/*
 * Shared by a case's controller (the one thread that spawns targets and
 * publishes their references), its senders and its targets.
 */
static struct arena {
    gr_system *sys;
    gr_ref refs[MAX_TARGETS]; /* Every target ever spawned, in order. */
    atomic_size_t nrefs;      /* Published entries of refs. */
    atomic_size_t cur[SLOTS]; /* Index in refs of each slot's target. */
    atomic_ullong handled;    /* Messages targets handled (at terminate). */
    atomic_ullong terminated; /* Targets whose terminate ran. */
    atomic_ullong violations; /* Messages that reached the wrong actor. */
    atomic_int stop;          /* Tells the controller to finish. */
} g;

/* Clears the arena for a new case. */
static void arena_reset(gr_system *sys)
{
    g.sys = sys;
    atomic_store(&g.nrefs, 0);
    for (int i = 0; i < SLOTS; i++)
        atomic_store(&g.cur[i], 0);
    atomic_store(&g.handled, 0);
    atomic_store(&g.terminated, 0);
    atomic_store(&g.violations, 0);
    atomic_store(&g.stop, 0);
}

/* Appends a reference; controller only. Returns its index. */
static size_t arena_add(gr_ref r)
{
    /* relaxed: only the controller writes nrefs. */
    size_t n = atomic_load_explicit(&g.nrefs, memory_order_relaxed);
    g.refs[n] = r;
    /* release: a reader that sees the count also sees the entry. */
    atomic_store_explicit(&g.nrefs, n + 1, memory_order_release);
    return n;
}

/* Picks a reference to send to: mostly a slot's current target, sometimes
 * any target ever spawned (most of them long dead). */
static gr_ref arena_pick(uint64_t *rng)
{
    uint64_t r = next_rand(rng);
    size_t i;
    if (r & 3) {
        /* acquire: pairs with the controller's release store of cur. */
        i = atomic_load_explicit(&g.cur[(r >> 8) % SLOTS],
                                 memory_order_acquire);
    } else {
        /* acquire: pairs with arena_add's release store. */
        size_t n = atomic_load_explicit(&g.nrefs, memory_order_acquire);
        i = (size_t)((r >> 8) % n);
    }
    return g.refs[i];
}

/* A target exits on its own after this many messages; 0 means never. */
struct target_args {
    uint64_t lifetime;
};

struct target {
    uint64_t lifetime;
    uint64_t handled;
};

static int target_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct target *t = state;
    if (len != sizeof(struct target_args))
        return GR_EINVAL;
    memcpy(&t->lifetime, arg, sizeof t->lifetime);
    return GR_OK;
}

/* Checks every message was meant for this very actor, not a slot's
 * earlier or later occupant. */
static int target_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct target *t = state;
    struct tagged d;
    gr_ref self = gr_self(ctx);
    if (m->type != MSG_DATA || !read_payload(m, &d, sizeof d) ||
        !gr_ref_eq(m->to, self) || !gr_ref_eq(d.intended, self))
        atomic_fetch_add_explicit(&g.violations, 1, memory_order_relaxed);
    t->handled++;
    return t->lifetime != 0 && t->handled >= t->lifetime ? GR_STOP
                                                         : GR_CONTINUE;
}

/* Reports what the target handled; runs once, however it exits. */
static void target_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    int reason = why->code;
    (void)ctx;
    (void)reason;
    struct target *t = state;
    /* relaxed: counters read after quiescence; wait_count polls them. */
    atomic_fetch_add_explicit(&g.handled, t->handled, memory_order_relaxed);
    atomic_fetch_add_explicit(&g.terminated, 1, memory_order_relaxed);
}

static const gr_behaviour target_behaviour = {
    .name = "target",
    .state_size = sizeof(struct target),
    .init = target_init,
    .handle = target_handle,
    .terminate = target_terminate,
};

/* Spawns a target into slot i and publishes it. Controller only. */
static int arena_spawn(size_t slot, uint64_t lifetime)
{
    struct target_args a = {lifetime};
    gr_ref r;
    /* relaxed: only the controller writes nrefs. */
    if (atomic_load_explicit(&g.nrefs, memory_order_relaxed) >= MAX_TARGETS)
        return GR_ELIMIT;
    int rc = gr_system_spawn(g.sys, &target_behaviour, &a, sizeof a, &r);
    if (rc != GR_OK)
        return rc;
    size_t i = arena_add(r);
    /* release: a sender that reads this index also sees refs[i]. */
    atomic_store_explicit(&g.cur[slot], i, memory_order_release);
    return GR_OK;
}

/* ---- senders into the arena -------------------------------------------- */

/* Messages a sender actor sends per turn. */
#define SPRAY_CHUNK 64

struct sprayer_args {
    uint64_t n;    /* Messages to send. */
    uint64_t seed; /* Random stream. */
    gr_ref report; /* main's inbox */
};

struct sprayer {
    struct sprayer_args a;
    uint64_t sent;
    struct send_counts c;
};

static int sprayer_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct sprayer *s = state;
    return read_arg(&s->a, sizeof s->a, arg, len);
}

/* Sends a chunk of tagged messages to picked targets per turn. */
static int sprayer_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct sprayer *s = state;
    if (m->type != MSG_GO && m->type != MSG_CONTINUE) {
        s->c.other++;
        return GR_CONTINUE;
    }
    for (int i = 0; i < SPRAY_CHUNK && s->sent < s->a.n; i++, s->sent++) {
        struct tagged d = {arena_pick(&s->a.seed), s->sent};
        count_send(&s->c, gr_tell(ctx, d.intended, MSG_DATA, &d, sizeof d));
    }
    if (s->sent < s->a.n &&
        gr_tell(ctx, gr_self(ctx), MSG_CONTINUE, NULL, 0) == GR_OK)
        return GR_CONTINUE;
    if (s->sent < s->a.n)
        s->c.other++;
    gr_tell(ctx, s->a.report, MSG_REPORT, &s->c, sizeof s->c);
    return GR_STOP;
}

static const gr_behaviour sprayer_behaviour = {
    .name = "sprayer",
    .state_size = sizeof(struct sprayer),
    .init = sprayer_init,
    .handle = sprayer_handle,
};

/* A plain thread sending n tagged messages with gr_system_tell(). */
struct spray_thread {
    pthread_t tid;
    uint64_t n;
    uint64_t seed;
    struct send_counts c;
};

static void *spray_thread_main(void *arg)
{
    struct spray_thread *t = arg;
    for (uint64_t i = 0; i < t->n; i++) {
        struct tagged d = {arena_pick(&t->seed), i};
        count_send(&t->c, gr_system_tell(g.sys, GR_REF_NONE, d.intended,
                                         MSG_DATA, &d, sizeof d));
    }
    return NULL;
}

/* How a case's controller replaces targets. */
enum churn {
    /* Random slots: stopped with gr_stop() or left to exit on their own
     * after a random lifetime, then respawned. */
    CHURN_RANDOM,
    /* Waves: every slot gets a new target, then the previous wave is
     * stopped, so slots of the id table are freed and reused en masse. */
    CHURN_WAVES,
};

struct controller {
    pthread_t tid;
    enum churn mode;
    uint64_t seed;
    uint64_t spawn_failures;
};

/* Replaces targets until told to stop or out of room. */
static void *controller_main(void *arg)
{
    struct controller *c = arg;
    /* acquire: pairs with main's release store of stop. */
    while (!atomic_load_explicit(&g.stop, memory_order_acquire) &&
           atomic_load_explicit(&g.nrefs, memory_order_relaxed) + SLOTS <=
               MAX_TARGETS) {
        if (c->mode == CHURN_RANDOM) {
            uint64_t r = next_rand(&c->seed);
            size_t slot = (size_t)(r % SLOTS);
            size_t old =
                atomic_load_explicit(&g.cur[slot], memory_order_relaxed);
            /* Half are stopped, the rest live out their lifetime (up to
             * 256 messages) or are replaced while still alive. */
            if (r & 0x100)
                gr_stop(g.sys, g.refs[old]);
            if (arena_spawn(slot, (r >> 16) % 257) != GR_OK)
                c->spawn_failures++;
            sleep_us(50);
        } else {
            size_t old[SLOTS];
            for (size_t s = 0; s < SLOTS; s++) {
                old[s] = atomic_load_explicit(&g.cur[s], memory_order_relaxed);
                if (arena_spawn(s, 0) != GR_OK)
                    c->spawn_failures++;
            }
            for (size_t s = 0; s < SLOTS; s++)
                gr_stop(g.sys, g.refs[old[s]]);
            sleep_us(200);
        }
    }
    return NULL;
}

/* Sender actors and plain sending threads per arena case. */
#define SPRAYERS      4
#define SPRAY_THREADS 2
/* Messages each sender sends before scaling. */
#define SPRAY_MESSAGES 100000u

/*
 * Runs an arena case: targets churned by a controller thread while sender
 * actors and plain threads send to current and old references. Then stops
 * every target and checks the accounting, that no message reached an actor
 * it was not meant for, and that no serial was handed out twice.
 */
static void run_arena(struct env *e, enum churn mode)
{
    const uint64_t n = scaled(SPRAY_MESSAGES, 100);
    gr_stats base;
    gr_system_stats(e->sys, &base);
    arena_reset(e->sys);
    for (size_t s = 0; s < SLOTS; s++)
        CHECK_EQ(arena_spawn(s, 0), GR_OK);

    struct controller ctl = {.mode = mode, .seed = 0x1234567 + mode};
    CHECK_EQ(pthread_create(&ctl.tid, NULL, controller_main, &ctl), 0);
    gr_ref me = gr_inbox_ref(e->inbox);
    int failed_start = 0;
    for (int i = 0; i < SPRAYERS; i++) {
        struct sprayer_args a = {n, 0x9E3779B97F4A7C15ull * (i + 1), me};
        gr_ref r;
        if (gr_system_spawn(e->sys, &sprayer_behaviour, &a, sizeof a, &r) !=
                GR_OK ||
            gr_system_tell(e->sys, me, r, MSG_GO, NULL, 0) != GR_OK)
            failed_start++;
    }
    struct spray_thread t[SPRAY_THREADS];
    int threads = 0;
    for (; threads < SPRAY_THREADS; threads++) {
        t[threads] =
            (struct spray_thread){.n = n, .seed = 0xC0FFEEull * (threads + 7)};
        if (pthread_create(&t[threads].tid, NULL, spray_thread_main,
                           &t[threads]) != 0)
            break;
    }

    /* Collect everything before any check, so no thread outlives a
     * failed case. */
    struct send_counts sent = {0, 0, 0};
    int reports = 0;
    struct watch w;
    watch_start(&w, e->sys);
    while (reports < SPRAYERS - failed_start && !watch_over(&w)) {
        gr_msg *m;
        if (gr_inbox_recv(e->inbox, &m, 100) != GR_OK)
            continue;
        struct send_counts c;
        if (m->type == MSG_REPORT && read_payload(m, &c, sizeof c)) {
            add_counts(&sent, &c);
            reports++;
        }
        gr_msg_free(m);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i].tid, NULL);
        add_counts(&sent, &t[i].c);
    }
    /* release: the controller sees the flag on its next loop. */
    atomic_store_explicit(&g.stop, 1, memory_order_release);
    pthread_join(ctl.tid, NULL);

    CHECK_EQ(failed_start, 0);
    CHECK_EQ(threads, SPRAY_THREADS);
    CHECK_EQ(reports, SPRAYERS);
    CHECK_EQ(ctl.spawn_failures, 0);

    /* Stop whatever is still alive; those already gone answer ENOACTOR. */
    size_t spawned = atomic_load(&g.nrefs);
    for (size_t i = 0; i < spawned; i++) {
        int rc = gr_stop(e->sys, g.refs[i]);
        CHECK(rc == GR_OK || rc == GR_ENOACTOR);
    }
    CHECK(wait_count(e->sys, &g.terminated, spawned));
    CHECK_EQ(atomic_load(&g.terminated), spawned);
    fprintf(stderr,
            "  %zu targets; %llu sends: %llu ok, %llu to gone actors; "
            "%llu handled\n",
            spawned, (unsigned long long)(sent.ok + sent.noactor),
            (unsigned long long)sent.ok, (unsigned long long)sent.noactor,
            (unsigned long long)atomic_load(&g.handled));
    check_accounting(e->sys, &base, &sent, atomic_load(&g.handled));
    if (test_failed_)
        return;
    CHECK_EQ(atomic_load(&g.violations), 0);
    CHECK_EQ(sent.ok + sent.noactor, (SPRAYERS + SPRAY_THREADS) * n);
    check_unique_serials(g.refs, spawned);
}

/* Sends to dying, respawned actors are all handled or dead letters. */
static void sends_to_dying_actors_accounted(void)
{
    struct env e;
    CHECK(env_start(&e, 4));
    run_arena(&e, CHURN_RANDOM);
    env_stop(&e);
}

/* A stale ref never reaches the new actor in its reused slot. */
static void stale_refs_never_reach_new_actor(void)
{
    struct env e;
    CHECK(env_start(&e, 2));
    run_arena(&e, CHURN_WAVES);
    env_stop(&e);
}

/* ---- concurrent spawns ------------------------------------------------- */

/* Spawner actors and plain spawning threads. */
#define SPAWNER_ACTORS  4
#define SPAWNER_THREADS 4
/* Spawns each spawner makes before scaling, and per actor turn. */
#define SPAWNS_EACH 4000u
#define SPAWN_CHUNK 50
/* Most children in all (the reference list is fixed-size). */
#define MAX_CHILDREN ((SPAWNER_ACTORS + SPAWNER_THREADS) * SPAWNS_EACH)

/* What a child does, chosen by its spawner from a running count. */
enum child_kind {
    CHILD_LIVE,  /* Lives until gr_stop(). */
    CHILD_EXITS, /* Tells itself to die in init, exits normally. */
    CHILD_FAILS, /* init fails: the spawn returns GR_EINVAL. */
};

static enum child_kind child_kind_of(uint64_t i)
{
    return i % 8 == 7 ? CHILD_FAILS : i % 2 ? CHILD_EXITS : CHILD_LIVE;
}

/* Children's shared counters and every child reference, for stopping. */
static struct {
    gr_ref refs[MAX_CHILDREN];
    atomic_size_t nrefs;
    atomic_ullong inits;
    atomic_ullong exits_normal;   /* terminate with GR_OK */
    atomic_ullong exits_shutdown; /* terminate with GR_ESHUTDOWN */
    atomic_ullong exits_other;
} kids;

static int child_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    enum child_kind kind;
    /* relaxed: counters read after quiescence. */
    atomic_fetch_add_explicit(&kids.inits, 1, memory_order_relaxed);
    if (len != sizeof kind)
        return GR_EINVAL;
    memcpy(&kind, arg, sizeof kind);
    if (kind == CHILD_FAILS)
        return GR_EINVAL;
    if (kind == CHILD_EXITS)
        return gr_tell(ctx, gr_self(ctx), MSG_DIE, NULL, 0);
    return GR_OK;
}

static int child_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx;
    (void)state;
    return m->type == MSG_DIE ? GR_STOP : GR_EUNHANDLED;
}

static void child_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    int reason = why->code;
    (void)ctx;
    (void)state;
    atomic_ullong *c = reason == GR_OK          ? &kids.exits_normal
                       : reason == GR_ESHUTDOWN ? &kids.exits_shutdown
                                                : &kids.exits_other;
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static const gr_behaviour child_behaviour = {
    .name = "child",
    .state_size = 0,
    .init = child_init,
    .handle = child_handle,
    .terminate = child_terminate,
};

/* What one spawner did. */
struct spawn_counts {
    uint64_t live, exits, fails; /* Spawns that behaved as their kind says. */
    uint64_t wrong;              /* Spawns that did not. */
};

/* Spawns child number i of a spawner and counts the outcome. */
static void spawn_child(struct spawn_counts *c, gr_system *sys, gr_ctx *ctx,
                        uint64_t i)
{
    enum child_kind kind = child_kind_of(i);
    gr_ref r;
    int rc =
        ctx ? gr_spawn(ctx, &child_behaviour, &kind, sizeof kind, &r)
            : gr_system_spawn(sys, &child_behaviour, &kind, sizeof kind, &r);
    if (kind == CHILD_FAILS) {
        if (rc == GR_EINVAL)
            c->fails++;
        else
            c->wrong++;
        return;
    }
    if (rc != GR_OK) {
        c->wrong++;
        return;
    }
    if (kind == CHILD_LIVE)
        c->live++;
    else
        c->exits++;
    /* relaxed: slots are only reserved here; main reads them after every
     * spawner has reported (a message) or been joined. */
    size_t k = atomic_fetch_add_explicit(&kids.nrefs, 1, memory_order_relaxed);
    if (k < MAX_CHILDREN)
        kids.refs[k] = r;
}

struct spawner_args {
    uint64_t n;
    gr_ref report;
};

struct spawner {
    struct spawner_args a;
    uint64_t done;
    struct spawn_counts c;
};

static int spawner_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct spawner *s = state;
    return read_arg(&s->a, sizeof s->a, arg, len);
}

/* Spawns a chunk of children per turn, then reports its counts. */
static int spawner_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct spawner *s = state;
    (void)m;
    for (int i = 0; i < SPAWN_CHUNK && s->done < s->a.n; i++, s->done++)
        spawn_child(&s->c, NULL, ctx, s->done);
    if (s->done < s->a.n &&
        gr_tell(ctx, gr_self(ctx), MSG_CONTINUE, NULL, 0) == GR_OK)
        return GR_CONTINUE;
    if (s->done < s->a.n)
        s->c.wrong++;
    gr_tell(ctx, s->a.report, MSG_REPORT, &s->c, sizeof s->c);
    return GR_STOP;
}

static const gr_behaviour spawner_behaviour = {
    .name = "spawner",
    .state_size = sizeof(struct spawner),
    .init = spawner_init,
    .handle = spawner_handle,
};

struct spawn_thread {
    pthread_t tid;
    gr_system *sys;
    uint64_t n;
    atomic_int *go;
    struct spawn_counts c;
};

static void *spawn_thread_main(void *arg)
{
    struct spawn_thread *t = arg;
    go_wait(t->go);
    for (uint64_t i = 0; i < t->n; i++)
        spawn_child(&t->c, t->sys, NULL, i);
    return NULL;
}

static void add_spawn_counts(struct spawn_counts *sum,
                             const struct spawn_counts *c)
{
    sum->live += c->live;
    sum->exits += c->exits;
    sum->fails += c->fails;
    sum->wrong += c->wrong;
}

/*
 * SPAWNER_ACTORS actors and SPAWNER_THREADS threads spawn n children each,
 * all at once, then main stops every child. Each spawn must return what its
 * child's kind says, every init and terminate must run once with the right
 * reason, and once quiet only main's inbox may be left alive.
 */
static void run_concurrent_spawns(struct env *e)
{
    const uint64_t n = scaled(SPAWNS_EACH, 16);
    gr_stats base;
    gr_system_stats(e->sys, &base);
    atomic_store(&kids.nrefs, 0);
    atomic_store(&kids.inits, 0);
    atomic_store(&kids.exits_normal, 0);
    atomic_store(&kids.exits_shutdown, 0);
    atomic_store(&kids.exits_other, 0);

    atomic_int go;
    atomic_init(&go, 0);
    struct spawn_thread t[SPAWNER_THREADS];
    int threads = 0;
    for (; threads < SPAWNER_THREADS; threads++) {
        t[threads] = (struct spawn_thread){.sys = e->sys, .n = n, .go = &go};
        if (pthread_create(&t[threads].tid, NULL, spawn_thread_main,
                           &t[threads]) != 0)
            break;
    }
    gr_ref me = gr_inbox_ref(e->inbox);
    gr_ref spawners[SPAWNER_ACTORS];
    int actors = 0;
    for (; actors < SPAWNER_ACTORS; actors++) {
        struct spawner_args a = {n, me};
        if (gr_system_spawn(e->sys, &spawner_behaviour, &a, sizeof a,
                            &spawners[actors]) != GR_OK)
            break;
    }
    /* Everyone starts at once. */
    go_open(&go);
    int gone = 0;
    for (int i = 0; i < actors; i++)
        gone +=
            gr_system_tell(e->sys, me, spawners[i], MSG_GO, NULL, 0) != GR_OK;

    struct spawn_counts sum = {0, 0, 0, 0};
    int reports = 0;
    struct watch w;
    watch_start(&w, e->sys);
    while (reports < actors - gone && !watch_over(&w)) {
        gr_msg *m;
        struct spawn_counts c;
        if (gr_inbox_recv(e->inbox, &m, 100) != GR_OK)
            continue;
        if (m->type == MSG_REPORT && read_payload(m, &c, sizeof c)) {
            add_spawn_counts(&sum, &c);
            reports++;
        }
        gr_msg_free(m);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i].tid, NULL);
        add_spawn_counts(&sum, &t[i].c);
    }
    CHECK_EQ(threads, SPAWNER_THREADS);
    CHECK_EQ(actors, SPAWNER_ACTORS);
    CHECK_EQ(gone, 0);
    CHECK_EQ(reports, SPAWNER_ACTORS);

    const uint64_t attempts = (SPAWNER_ACTORS + SPAWNER_THREADS) * n;
    uint64_t per_kind[3] = {0, 0, 0};
    for (uint64_t i = 0; i < n; i++)
        per_kind[child_kind_of(i)] += SPAWNER_ACTORS + SPAWNER_THREADS;
    CHECK_EQ(sum.wrong, 0);
    CHECK_EQ(sum.live, per_kind[CHILD_LIVE]);
    CHECK_EQ(sum.exits, per_kind[CHILD_EXITS]);
    CHECK_EQ(sum.fails, per_kind[CHILD_FAILS]);
    CHECK_EQ(atomic_load(&kids.inits), attempts);

    /* Stop every child; those that exited on their own answer ENOACTOR. */
    size_t nrefs = atomic_load(&kids.nrefs);
    CHECK_EQ(nrefs, sum.live + sum.exits);
    for (size_t i = 0; i < nrefs; i++) {
        int rc = gr_stop(e->sys, kids.refs[i]);
        CHECK(rc == GR_OK || rc == GR_ENOACTOR);
    }
    /* Quiescent once only main's inbox is left alive. */
    gr_stats st;
    watch_start(&w, e->sys);
    do {
        sleep_us(1000);
        gr_system_stats(e->sys, &st);
    } while (st.spawned - st.exited != 1 && !watch_over(&w));
    sleep_ms(SETTLE_MS);
    gr_system_stats(e->sys, &st);
    fprintf(stderr, "  %llu spawns, %llu actors spawned in all\n",
            (unsigned long long)attempts,
            (unsigned long long)(st.spawned - base.spawned));
    CHECK_EQ(st.spawned - st.exited, 1);
    /* Every child that was spawned counts, failed inits included, plus the
     * spawner actors. */
    CHECK_EQ(st.spawned - base.spawned, attempts + SPAWNER_ACTORS);
    CHECK_EQ(atomic_load(&kids.exits_normal), sum.exits);
    CHECK_EQ(atomic_load(&kids.exits_shutdown), sum.live);
    CHECK_EQ(atomic_load(&kids.exits_other), 0);
    CHECK_EQ(st.dead_letters[GR_DL_NO_ACTOR], 0);
    CHECK_EQ(st.dead_letters[GR_DL_STOPPED], 0);
    check_unique_serials(kids.refs, nrefs);
}

/* Concurrent spawns each init/terminate once; spawned == exited. */
static void concurrent_spawns_counted(void)
{
    struct env e;
    CHECK(env_start(&e, 4));
    run_concurrent_spawns(&e);
    env_stop(&e);
}

/* ---- an actor exiting while threads push into its mailbox -------------- */

/* Pushing threads, rounds (before scaling), and per-thread send caps. */
#define PUSHERS     4
#define PUSH_ROUNDS 200u
#define PUSH_CAP    5000u
/* Sends each pusher makes after its first GR_ENOACTOR. */
#define PUSH_AFTER_DEATH 8

struct pusher {
    pthread_t tid;
    gr_system *sys;
    gr_ref victim;
    atomic_int *go;
    int saw_death;
    struct send_counts c;
};

/* Sends to the victim until it is gone (and a little after), or the cap. */
static void *pusher_main(void *arg)
{
    struct pusher *p = arg;
    go_wait(p->go);
    uint64_t after = 0;
    for (uint64_t i = 0; i < PUSH_CAP && after < PUSH_AFTER_DEATH; i++) {
        struct tagged d = {p->victim, i};
        int rc = gr_system_tell(p->sys, GR_REF_NONE, p->victim, MSG_DATA, &d,
                                sizeof d);
        count_send(&p->c, rc);
        if (rc == GR_ENOACTOR) {
            p->saw_death = 1;
            after++;
        }
    }
    return NULL;
}

/*
 * Rounds of: spawn a victim, let PUSHERS threads push into its mailbox as
 * fast as they can while it exits (on its own after a random number of
 * messages, or by gr_stop()), and wait for it to be gone. Over all rounds,
 * every send must be handled or counted as a dead letter of the right kind.
 */
static void run_exit_while_pushed(struct env *e)
{
    const uint64_t rounds = scaled(PUSH_ROUNDS, 10);
    gr_stats base;
    gr_system_stats(e->sys, &base);
    arena_reset(e->sys);
    uint64_t rng = 0xDEADBEEF;
    struct send_counts sent = {0, 0, 0};
    uint64_t died_while_pushed = 0, failures = 0;
    for (uint64_t round = 0; round < rounds && !failures; round++) {
        uint64_t r = next_rand(&rng);
        /* Even rounds: the victim exits on its own after a random number
         * of messages. Odd rounds: main stops it a moment after the
         * pushing starts. */
        uint64_t lifetime = round % 2 ? 0 : 1 + (r >> 8) % 2000;
        struct target_args a = {lifetime};
        gr_ref victim;
        if (gr_system_spawn(e->sys, &target_behaviour, &a, sizeof a, &victim) !=
            GR_OK) {
            failures++;
            break;
        }
        atomic_int go;
        atomic_init(&go, 0);
        struct pusher p[PUSHERS];
        int started = 0;
        for (; started < PUSHERS; started++) {
            p[started] =
                (struct pusher){.sys = e->sys, .victim = victim, .go = &go};
            if (pthread_create(&p[started].tid, NULL, pusher_main,
                               &p[started]) != 0)
                break;
        }
        failures += started != PUSHERS;
        go_open(&go);
        if (lifetime == 0) {
            sleep_us((long)((r >> 32) % 1000));
            if (gr_stop(e->sys, victim) != GR_OK)
                failures++;
        }
        int saw = 0;
        for (int i = 0; i < started; i++) {
            pthread_join(p[i].tid, NULL);
            add_counts(&sent, &p[i].c);
            saw |= p[i].saw_death;
        }
        died_while_pushed += saw;
        /* A victim that outlived its pushers is stopped now; then wait
         * for it to be gone before the next round. */
        int rc = gr_stop(e->sys, victim);
        failures += rc != GR_OK && rc != GR_ENOACTOR;
        if (!wait_count(e->sys, &g.terminated, round + 1))
            failures++;
    }
    fprintf(stderr,
            "  %llu rounds, %llu with the victim dying mid-push; %llu sends: "
            "%llu ok, %llu to gone actors\n",
            (unsigned long long)rounds, (unsigned long long)died_while_pushed,
            (unsigned long long)(sent.ok + sent.noactor),
            (unsigned long long)sent.ok, (unsigned long long)sent.noactor);
    CHECK_EQ(failures, 0);
    /* Without this the case would not test what it says. */
    CHECK(died_while_pushed > 0);
    check_accounting(e->sys, &base, &sent, atomic_load(&g.handled));
    CHECK_EQ(atomic_load(&g.violations), 0);
}

/* An actor exiting mid-push loses no send: all handled or dead. */
static void exit_while_mailbox_pushed(void)
{
    struct env e;
    CHECK(env_start(&e, 2));
    run_exit_while_pushed(&e);
    env_stop(&e);
}

TEST_MAIN(TEST_CASE(sends_to_dying_actors_accounted),
          TEST_CASE(stale_refs_never_reach_new_actor),
          TEST_CASE(concurrent_spawns_counted),
          TEST_CASE(exit_while_mailbox_pushed))
