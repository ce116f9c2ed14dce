/*
 * The blocking pool: actors spawned with gr_spawn_opts.blocking (or a
 * child spec's blocking field) run on their own threads, so a handler that
 * blocks never stalls the workers, and everything else about them (order,
 * asks, supervision) is as for any actor. Public API only.
 */
#include <grove/grove.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "helpers.h"

enum { MSG_WORK = 1, MSG_PING, MSG_DONE, MSG_SEQ, MSG_CRASH };

/* ---- a gate that blocking handlers wait at ------------------------------ */

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int gate_entered; /* Handlers that reached the gate. */

static void gate_reset(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = false;
    gate_entered = 0;
    pthread_mutex_unlock(&gate_lock);
}

/* Blocks the calling handler until the gate opens (at most WAIT_LIMIT_S). */
static void gate_pass(void)
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += (time_t)WAIT_LIMIT_S;
    pthread_mutex_lock(&gate_lock);
    gate_entered++;
    pthread_cond_broadcast(&gate_cond);
    while (!gate_open &&
           pthread_cond_timedwait(&gate_cond, &gate_lock, &end) == 0)
        ;
    pthread_mutex_unlock(&gate_lock);
}

/* Waits until n handlers have reached the gate; false after WAIT_MS. */
static bool gate_wait_entered(int n)
{
    double end = test_now() + WAIT_MS / 1000.0;
    pthread_mutex_lock(&gate_lock);
    while (gate_entered < n && test_now() < end) {
        pthread_mutex_unlock(&gate_lock);
        sleep_ms(1);
        pthread_mutex_lock(&gate_lock);
    }
    bool ok = gate_entered >= n;
    pthread_mutex_unlock(&gate_lock);
    return ok;
}

static void gate_release(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

/* ---- which threads ran which kind of actor ------------------------------ */

#define MAX_THREADS 64

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t seen[2][MAX_THREADS]; /* [0]: normal actors, [1]: blocking. */
static int nseen[2];
static atomic_int handled_work;

static void seen_reset(void)
{
    pthread_mutex_lock(&seen_lock);
    nseen[0] = nseen[1] = 0;
    pthread_mutex_unlock(&seen_lock);
    atomic_store(&handled_work, 0);
}

/* Records that the calling thread ran an actor of kind k. */
static void seen_add(int k)
{
    pthread_t me = pthread_self();
    pthread_mutex_lock(&seen_lock);
    bool known = false;
    for (int i = 0; i < nseen[k]; i++)
        known = known || pthread_equal(seen[k][i], me);
    if (!known && nseen[k] < MAX_THREADS)
        seen[k][nseen[k]++] = me;
    pthread_mutex_unlock(&seen_lock);
}

/* Returns true when no thread ran both kinds. */
static bool seen_disjoint(void)
{
    bool ok = true;
    pthread_mutex_lock(&seen_lock);
    for (int i = 0; i < nseen[0]; i++)
        for (int j = 0; j < nseen[1]; j++)
            ok = ok && !pthread_equal(seen[0][i], seen[1][j]);
    pthread_mutex_unlock(&seen_lock);
    return ok;
}

/* ---- behaviours --------------------------------------------------------- */

/* A blocking actor: each MSG_WORK waits at the gate; MSG_SEQ checks that
 * numbers arrive in order; MSG_CRASH crashes it; a request is answered. */
typedef struct {
    uint32_t next_seq;
    bool out_of_order;
} sleeper;

static int sleeper_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    sleeper *s = state;
    seen_add(1);
    switch (m->type) {
    case MSG_WORK:
        gate_pass();
        atomic_fetch_add(&handled_work, 1);
        return GR_CONTINUE;
    case MSG_SEQ: {
        uint32_t v;
        memcpy(&v, m->data, sizeof v);
        s->out_of_order = s->out_of_order || v != s->next_seq;
        s->next_seq = v + 1;
        return GR_CONTINUE;
    }
    case MSG_CRASH:
        return GR_EFAILED;
    default:
        if (m->flags & GR_MSG_REQUEST) {
            uint32_t v[2] = {s->next_seq, s->out_of_order};
            return gr_reply(ctx, m, MSG_DONE, v, sizeof v);
        }
        return GR_CONTINUE;
    }
}

static const gr_behaviour sleeper_behaviour = {
    .name = "sleeper",
    .state_size = sizeof(sleeper),
    .handle = sleeper_handle,
};

/* Ping-pong: a ball carries {bounces left, the inbox to tell at the end};
 * each bounce goes to the partner named in the actor's arg. */
typedef struct {
    gr_ref partner;
} bouncer;

typedef struct {
    uint32_t left;
    gr_ref done_to;
} ball;

static int bouncer_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    if (len == sizeof(gr_ref))
        memcpy(&((bouncer *)state)->partner, arg, len);
    return GR_OK;
}

static int bouncer_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    bouncer *s = state;
    seen_add(0);
    if (m->type == MSG_WORK && m->len == sizeof(gr_ref)) {
        memcpy(&s->partner, m->data, sizeof s->partner);
        return GR_CONTINUE;
    }
    if (m->type != MSG_PING || m->len != sizeof(ball))
        return GR_CONTINUE;
    ball b;
    memcpy(&b, m->data, sizeof b);
    if (b.left == 0)
        return gr_tell(ctx, b.done_to, MSG_DONE, NULL, 0);
    b.left--;
    return gr_tell(ctx, s->partner, MSG_PING, &b, sizeof b);
}

static const gr_behaviour bouncer_behaviour = {
    .name = "bouncer",
    .state_size = sizeof(bouncer),
    .init = bouncer_init,
    .handle = bouncer_handle,
};

/* Starts a system with 2 workers and a pool of `pool` blocking threads. */
static gr_system *start_pool(unsigned pool)
{
    gr_config cfg = {.workers = 2, .blocking_threads = pool, .no_signals = 1};
    return start_system(&cfg);
}

/* Spawns a blocking sleeper; GR_REF_NONE on failure. */
static gr_ref spawn_blocking(gr_system *sys)
{
    gr_spawn_opts o = {.blocking = 1};
    gr_ref r = GR_REF_NONE;
    if (gr_system_spawn_opt(sys, &sleeper_behaviour, NULL, 0, &o, &r) != GR_OK)
        return GR_REF_NONE;
    return r;
}

/* Waits on inbox for one message of type `type`; false after WAIT_MS. */
static bool inbox_take(gr_inbox *ib, uint32_t type)
{
    gr_msg *m = NULL;
    if (gr_inbox_recv(ib, &m, WAIT_MS) != GR_OK)
        return false;
    bool ok = m->type == type;
    gr_msg_free(m);
    return ok;
}

/* ---- cases -------------------------------------------------------------- */

/* 8 blocking actors fill a pool of 4 threads, each stuck in its handler;
 * a ping-pong between two ordinary actors still runs to the end on the 2
 * workers, and no thread ran both kinds. Were a blocking actor run on a
 * worker, the ping-pong could not finish before the gate opens. */
static void blocked_pool_never_stalls_workers(void)
{
    gate_reset();
    seen_reset();
    gr_system *sys = start_pool(4);
    CHECK(sys != NULL);
    enum { SLEEPERS = 8, EACH = 2 };
    gr_ref sl[SLEEPERS];
    for (int i = 0; i < SLEEPERS; i++) {
        sl[i] = spawn_blocking(sys);
        CHECK(!gr_ref_is_none(sl[i]));
        for (int k = 0; k < EACH; k++)
            CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, sl[i], MSG_WORK, NULL, 0),
                     GR_OK);
    }
    CHECK(gate_wait_entered(4)); /* Every pool thread is blocked now. */

    gr_inbox *ib = NULL;
    CHECK_EQ(gr_inbox_open(sys, &ib), GR_OK);
    gr_ref a, b;
    CHECK_EQ(gr_system_spawn(sys, &bouncer_behaviour, NULL, 0, &a), GR_OK);
    CHECK_EQ(gr_system_spawn(sys, &bouncer_behaviour, &a, sizeof a, &b), GR_OK);
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, a, MSG_WORK, &b, sizeof b),
             GR_OK);
    ball start = {.left = (uint32_t)scaled(20000, 1000),
                  .done_to = gr_inbox_ref(ib)};
    CHECK_EQ(
        gr_system_tell(sys, GR_REF_NONE, a, MSG_PING, &start, sizeof start),
        GR_OK);
    bool pong_done = inbox_take(ib, MSG_DONE);
    gr_stats st = stats_of(sys);
    int handled_before = atomic_load(&handled_work);
    gate_release();
    CHECK(pong_done);
    CHECK_EQ(handled_before, 0);
    CHECK(st.blocking_threads <= 4 && st.blocking_threads >= 1);

    double end = test_now() + WAIT_LIMIT_S;
    while (atomic_load(&handled_work) < SLEEPERS * EACH && test_now() < end)
        sleep_ms(1);
    CHECK_EQ(atomic_load(&handled_work), SLEEPERS * EACH);
    CHECK(seen_disjoint());
    st = stats_of(sys);
    CHECK(st.blocking_runs >= SLEEPERS);
    CHECK_EQ(st.blocking_threads, 4);
    gr_inbox_close(ib);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* Messages from one sender reach a blocking actor in order; it answers
 * calls; a crash is seen by a monitor as by any actor. */
static void blocking_actor_keeps_semantics(void)
{
    gate_reset();
    seen_reset();
    gr_system *sys = start_pool(2);
    CHECK(sys != NULL);
    gr_ref s = spawn_blocking(sys);
    CHECK(!gr_ref_is_none(s));
    uint32_t n = (uint32_t)scaled(5000, 500);
    for (uint32_t i = 0; i < n; i++)
        CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, s, MSG_SEQ, &i, sizeof i),
                 GR_OK);
    gr_msg *reply = NULL;
    CHECK_EQ(gr_call(sys, s, MSG_PING, NULL, 0, WAIT_MS, &reply), GR_OK);
    uint32_t v[2];
    CHECK_EQ(reply->len, sizeof v);
    memcpy(v, reply->data, sizeof v);
    gr_msg_free(reply);
    CHECK_EQ(v[0], n);
    CHECK_EQ(v[1], 0);

    uint64_t exited = stats_of(sys).exited;
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, s, MSG_CRASH, NULL, 0), GR_OK);
    CHECK_EQ(wait_exited(sys, exited + 1), exited + 1);
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, s, MSG_SEQ, &n, sizeof n),
             GR_ENOACTOR);
    CHECK(seen_disjoint());
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* A supervised child with blocking set runs on the pool, and so does the
 * child restarted after it crashed. */
static void supervised_blocking_child(void)
{
    gate_reset();
    seen_reset();
    gr_system *sys = start_pool(1);
    CHECK(sys != NULL);
    static const gr_child_spec kids[] = {{
        .id = "sleeper",
        .behaviour = &sleeper_behaviour,
        .restart = GR_PERMANENT,
        .blocking = 1,
        .name = "sleeper",
    }};
    gr_sup_spec spec = {.strategy = GR_ONE_FOR_ONE,
                        .intensity = 5,
                        .children = kids,
                        .nchildren = 1};
    gr_ref sup;
    CHECK_EQ(gr_supervisor_start(sys, &spec, &sup), GR_OK);
    gr_ref first;
    CHECK_EQ(gr_whereis(sys, "sleeper", &first), GR_OK);
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, first, MSG_CRASH, NULL, 0),
             GR_OK);
    gr_ref second = first;
    double end = test_now() + WAIT_LIMIT_S;
    while (gr_ref_eq(second, first) && test_now() < end) {
        if (gr_whereis(sys, "sleeper", &second) != GR_OK)
            second = first;
        sleep_ms(1);
    }
    CHECK(!gr_ref_eq(second, first));
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, second, MSG_WORK, NULL, 0),
             GR_OK);
    CHECK(gate_wait_entered(1));
    gate_release();
    gr_msg *reply = NULL;
    CHECK_EQ(gr_call(sys, second, MSG_PING, NULL, 0, WAIT_MS, &reply), GR_OK);
    gr_msg_free(reply);
    gr_stats st = stats_of(sys);
    CHECK_EQ(st.blocking_threads, 1);
    CHECK(st.blocking_runs >= 2);
    CHECK(seen_disjoint());
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* A system without blocking actors starts no pool thread. */
static void pool_starts_on_demand(void)
{
    gr_system *sys = start_pool(0);
    CHECK(sys != NULL);
    /* Ordinary actors at work: a hundred bounces, reported to an inbox. */
    gr_inbox *ib = NULL;
    CHECK_EQ(gr_inbox_open(sys, &ib), GR_OK);
    gr_ref a, b;
    CHECK_EQ(gr_system_spawn(sys, &bouncer_behaviour, NULL, 0, &a), GR_OK);
    CHECK_EQ(gr_system_spawn(sys, &bouncer_behaviour, &a, sizeof a, &b), GR_OK);
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, a, MSG_WORK, &b, sizeof b),
             GR_OK);
    ball start = {.left = 100, .done_to = gr_inbox_ref(ib)};
    CHECK_EQ(
        gr_system_tell(sys, GR_REF_NONE, a, MSG_PING, &start, sizeof start),
        GR_OK);
    CHECK(inbox_take(ib, MSG_DONE));
    gr_stats st = stats_of(sys);
    CHECK_EQ(st.blocking_threads, 0);
    CHECK_EQ(st.blocking_runs, 0);
    gr_inbox_close(ib);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

TEST_MAIN(TEST_CASE(blocked_pool_never_stalls_workers),
          TEST_CASE(blocking_actor_keeps_semantics),
          TEST_CASE(supervised_blocking_child),
          TEST_CASE(pool_starts_on_demand))
