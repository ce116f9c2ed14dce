/*
 * fanin: N-to-1. S sender actors each send K small integers to one
 * receiver when main() tells them to go; timed until the receiver has
 * counted S * K. A sender sends B integers per turn, then tells itself to
 * go on, as a Pony behaviour or a preempted Erlang process would: between
 * its turns the runtime may hold it back while the receiver catches up
 * (B = K sends all K in one turn, which no runtime can slow down without
 * blocking the worker). Parameters: FANIN_S (default 100), FANIN_K
 * (default 100000), FANIN_B (default 1000). Figures: ns_per_msg, and
 * peak_rss_mb, the process's peak resident set (VmHWM).
 */
#include "bench_util.h"

#include <stdatomic.h>

enum {
    MSG_GO = 1, /* main -> sender: start sending */
    MSG_MORE,   /* sender -> itself: send the next B */
    MSG_NUM,    /* sender -> receiver: payload 0 .. K-1 */
    MSG_DONE,   /* receiver -> main: payload the count, S * K */
};

/* The receiver's final count and sum, stored in terminate; main() reads
 * them after gr_system_shutdown() has joined every worker, so relaxed is
 * enough. */
static _Atomic uint64_t final_count, final_sum;

/* ---- the receiver ---------------------------------------------------- */

struct receiver_args {
    uint64_t expect;  /* S * K */
    gr_ref report_to; /* main()'s inbox */
};

struct receiver {
    struct receiver_args args;
    uint64_t count, sum;
};

static int receiver_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct receiver *r = state;
    if (len != sizeof r->args)
        return GR_EINVAL;
    memcpy(&r->args, arg, len);
    return GR_OK;
}

static int receiver_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct receiver *r = state;
    if (m->type != MSG_NUM)
        return GR_EUNHANDLED;
    r->sum += bench_u64(m);
    if (++r->count == r->args.expect)
        return bench_tell_u64(ctx, r->args.report_to, MSG_DONE, r->count);
    return GR_CONTINUE;
}

static void receiver_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    int reason = why->code;
    (void)ctx;
    (void)reason;
    struct receiver *r = state;
    atomic_store_explicit(&final_count, r->count, memory_order_relaxed);
    atomic_store_explicit(&final_sum, r->sum, memory_order_relaxed);
}

static const gr_behaviour receiver_behaviour = {
    .name = "receiver",
    .state_size = sizeof(struct receiver),
    .init = receiver_init,
    .handle = receiver_handle,
    .terminate = receiver_terminate,
};

/* ---- a sender: K integers, B per turn --------------------------------- */

struct sender {
    gr_ref receiver;
    uint64_t k;    /* Integers to send in all. */
    uint64_t b;    /* Per turn. */
    uint64_t next; /* The next integer to send. */
};

static int sender_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    if (len != sizeof(struct sender))
        return GR_EINVAL;
    memcpy(state, arg, len);
    return GR_OK;
}

static int sender_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct sender *s = state;
    if (m->type != MSG_GO && m->type != MSG_MORE)
        return GR_EUNHANDLED;
    uint64_t end = s->k - s->next <= s->b ? s->k : s->next + s->b;
    for (; s->next < end; s->next++) {
        int rc = bench_tell_u64(ctx, s->receiver, MSG_NUM, s->next);
        if (rc != GR_OK)
            return rc;
    }
    if (s->next < s->k)
        return gr_tell(ctx, gr_self(ctx), MSG_MORE, NULL, 0);
    return GR_CONTINUE;
}

static const gr_behaviour sender_behaviour = {
    .name = "sender",
    .state_size = sizeof(struct sender),
    .init = sender_init,
    .handle = sender_handle,
};

int main(void)
{
    uint64_t s = bench_env_u64("FANIN_S", 100);
    uint64_t k = bench_env_u64("FANIN_K", 100000);
    uint64_t b = bench_env_u64("FANIN_B", 1000);
    uint64_t total = s * k;

    gr_system *sys = bench_start();
    gr_inbox *inbox;
    bench_check(gr_inbox_open(sys, &inbox), "gr_inbox_open");
    gr_ref self = gr_inbox_ref(inbox);

    struct receiver_args ra = {.expect = total, .report_to = self};
    struct sender sa = {.k = k, .b = b};
    bench_check(
        gr_system_spawn(sys, &receiver_behaviour, &ra, sizeof ra, &sa.receiver),
        "spawn receiver");
    gr_ref *senders = malloc(s * sizeof *senders);
    if (senders == NULL)
        bench_die("out of memory for %" PRIu64 " senders", s);
    for (uint64_t i = 0; i < s; i++)
        bench_check(gr_system_spawn(sys, &sender_behaviour, &sa, sizeof sa,
                                    &senders[i]),
                    "spawn sender");

    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < s; i++)
        bench_check(gr_system_tell(sys, self, senders[i], MSG_GO, NULL, 0),
                    "gr_system_tell go");
    uint64_t count = bench_recv_u64(inbox, MSG_DONE);
    uint64_t t1 = bench_now_ns();

    unsigned workers = bench_workers(sys);
    gr_inbox_close(inbox);
    bench_check(gr_system_shutdown(sys), "gr_system_shutdown");
    free(senders);

    /* Every sender sends 0 .. K-1 once, so the sum checks for duplicates
     * and losses that happen to cancel out in the count. */
    uint64_t want_sum = s * (k * (k - 1) / 2);
    uint64_t got_count = atomic_load(&final_count);
    uint64_t got_sum = atomic_load(&final_sum);
    if (count != total || got_count != total || got_sum != want_sum)
        bench_die("fanin: receiver counted %" PRIu64 " (%" PRIu64
                  " at the end), sum %" PRIu64 "; expected %" PRIu64
                  ", sum %" PRIu64,
                  count, got_count, got_sum, total, want_sum);

    double sec = bench_seconds(t0, t1);
    bench_result(
        "fanin", total, sec, "msg",
        "ns_per_msg=%.2f peak_rss_mb=%.1f per_turn=%" PRIu64 " workers=%u",
        sec * 1e9 / (double)total,
        (double)bench_peak_rss_bytes() / (1024.0 * 1024.0), b, workers);
    return 0;
}
