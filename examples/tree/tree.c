/*
 * tree: a supervision tree that heals itself, watched through its log.
 *
 *   top (one_for_one)
 *   |-- counter            permanent worker, registered as "counter"
 *   `-- jobs (rest_for_one) child supervisor
 *       |-- queue          permanent worker, registered as "queue"
 *       `-- runner         permanent worker, registered as "runner"
 *
 * main() breaks things and watches the tree mend: it crashes the runner
 * (only the runner restarts), kills the queue (rest_for_one: the runner
 * after it restarts too), crashes the counter from nested code with
 * gr_fail(), then stops the whole tree in order. The supervisors' events
 * (one line each, on stderr) tell the story; main() prints what it checked.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <grove/grove.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Message types are the application's own numbers. */
enum {
    MSG_CRASH = 1, /* A worker returns an error: it crashes. */
    MSG_FAIL,      /* A worker calls gr_fail() from nested code. */
};

/* The workers register nothing themselves (their child specs name them)
 * and crash when told to; this demo's queue, runner and counter do nothing
 * else, so they share one handler. */
static void check_disk(gr_ctx *ctx, int free_pct)
{
    if (free_pct < 5)
        gr_fail(ctx, "disk almost full (%d%% free)", free_pct);
}

static int worker_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    switch (m->type) {
    case MSG_CRASH:
        return GR_EUNHANDLED; /* A crash, reported with the message type. */
    case MSG_FAIL:
        check_disk(ctx, 3); /* Does not return. */
        return GR_CONTINUE;
    default:
        return GR_CONTINUE;
    }
}

/* One behaviour per role, so the log names what crashed: "(queue)", not
 * "(worker)". */
static const gr_behaviour queue = {.name = "queue", .handle = worker_handle};
static const gr_behaviour runner = {.name = "runner", .handle = worker_handle};
static const gr_behaviour counter = {.name = "counter",
                                     .handle = worker_handle};

static const gr_child_spec jobs_children[] = {
    {.id = "queue", .behaviour = &queue, .name = "queue"},
    {.id = "runner", .behaviour = &runner, .name = "runner"},
};

static const gr_sup_spec jobs = {
    .strategy = GR_REST_FOR_ONE,
    .intensity = 5,
    .period_ms = 10000,
    .children = jobs_children,
    .nchildren = 2,
    .name = "jobs",
};

static const gr_child_spec top_children[] = {
    {.id = "counter", .behaviour = &counter, .name = "counter"},
    {.id = "jobs",
     .behaviour = &gr_supervisor_behaviour,
     .arg = &jobs,
     .arg_len = sizeof jobs,
     .type = GR_SUPERVISOR},
};

static const gr_sup_spec top = {
    .strategy = GR_ONE_FOR_ONE,
    .intensity = 3,
    .period_ms = 5000,
    .children = top_children,
    .nchildren = 2,
    .name = "top",
};

/* Waits (up to 5 s) until name is registered to a reference other than
 * old, and stores it in *now. Returns 0 on success. */
static int await_new(gr_system *sys, const char *name, gr_ref old, gr_ref *now)
{
    for (int i = 0; i < 5000; i++) {
        if (gr_whereis(sys, name, now) == GR_OK && !gr_ref_eq(*now, old))
            return 0;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return -1;
}

/* Looks up a name that must be registered. */
static gr_ref where(gr_system *sys, const char *name)
{
    gr_ref r = GR_REF_NONE;
    (void)gr_whereis(sys, name, &r);
    return r;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* Interleave with the log lines. */
    gr_system *sys;
    int rc = gr_system_start(NULL, &sys);
    if (rc != GR_OK) {
        fprintf(stderr, "tree: %s\n", gr_strerror(rc));
        return 1;
    }
    gr_ref sup;
    rc = gr_supervisor_start(sys, &top, &sup);
    if (rc != GR_OK) {
        fprintf(stderr, "tree: start: %s\n", gr_strerror(rc));
        gr_system_shutdown(sys);
        return 1;
    }
    int failures = 0;
    gr_ref counter = where(sys, "counter"), queue = where(sys, "queue");
    gr_ref runner = where(sys, "runner"), now;

    printf("1. crash the runner: only the runner restarts\n");
    gr_system_tell(sys, GR_REF_NONE, runner, MSG_CRASH, NULL, 0);
    failures += await_new(sys, "runner", runner, &runner) != 0;
    failures += !gr_ref_eq(where(sys, "queue"), queue);

    printf("2. kill the queue: rest_for_one restarts it and the runner\n");
    gr_system_exit(sys, queue, &(gr_reason){.code = GR_EKILL});
    failures += await_new(sys, "queue", queue, &queue) != 0;
    failures += await_new(sys, "runner", runner, &runner) != 0;

    printf("3. the counter fails deep in its code: it restarts\n");
    gr_system_tell(sys, GR_REF_NONE, counter, MSG_FAIL, NULL, 0);
    failures += await_new(sys, "counter", counter, &now) != 0;

    gr_child_counts counts;
    if (gr_supervisor_count_children(sys, sup, GR_DURATION_DEFAULT, &counts) ==
        GR_OK)
        printf("top has %zu children, %zu running\n", counts.specs,
               counts.active);
    gr_stats st;
    gr_system_stats(sys, &st);
    printf("restarts: %llu\n", (unsigned long long)st.restarts);
    failures += st.restarts != 4;

    printf("4. stop the tree in order (newest first, depth first)\n");
    gr_system_exit(sys, sup, &(gr_reason){.code = GR_ESHUTDOWN});
    for (int i = 0; i < 5000 && gr_whereis(sys, "top", &now) == GR_OK; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    failures += gr_whereis(sys, "top", &now) == GR_OK;

    gr_system_shutdown(sys);
    printf(failures == 0 ? "the tree healed itself every time\n"
                         : "something did not heal\n");
    return failures == 0 ? 0 : 1;
}
