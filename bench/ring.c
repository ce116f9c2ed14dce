/*
 * ring: Savina ThreadRing. R actors in a ring (set up untimed); main()
 * sends the integer M to actor 0; an actor receiving k > 0 sends k - 1 to
 * its successor, and the one receiving 0 tells main(). That is M hops.
 * Parameters: RING_R (default 1000), RING_M (default 10000000).
 * Figure: ns_per_hop.
 */
#include "bench_util.h"

#include <stdatomic.h>

enum {
    MSG_LINK = 1, /* main -> last actor: payload the gr_ref of actor 0 */
    MSG_LINKED,   /* last actor -> main: the ring is closed */
    MSG_TOKEN,    /* actor -> successor: payload hops still to go */
    MSG_DONE,     /* actor -> main: payload the index of the final actor */
};

/* Tokens handled by all ring actors, summed in terminate; main() reads it
 * after gr_system_shutdown() has joined every worker, so relaxed is
 * enough. */
static _Atomic uint64_t tokens_handled;

struct member_args {
    gr_ref next;      /* Successor; GR_REF_NONE until MSG_LINK for the last. */
    gr_ref report_to; /* main()'s inbox */
    uint64_t index;   /* Position in the ring, 0 first. */
};

struct member {
    struct member_args args;
    uint64_t handled;
};

static int member_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    struct member *m = state;
    if (len != sizeof m->args)
        return GR_EINVAL;
    memcpy(&m->args, arg, len);
    return GR_OK;
}

static int member_handle(gr_ctx *ctx, void *state, const gr_msg *msg)
{
    struct member *m = state;
    switch (msg->type) {
    case MSG_TOKEN: {
        m->handled++;
        uint64_t k = bench_u64(msg);
        if (k > 0)
            return bench_tell_u64(ctx, m->args.next, MSG_TOKEN, k - 1);
        return bench_tell_u64(ctx, m->args.report_to, MSG_DONE, m->args.index);
    }
    case MSG_LINK:
        if (msg->len != sizeof m->args.next)
            return GR_EINVAL;
        memcpy(&m->args.next, msg->data, msg->len);
        return gr_tell(ctx, m->args.report_to, MSG_LINKED, NULL, 0);
    default:
        return GR_EUNHANDLED;
    }
}

static void member_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    int reason = why->code;
    (void)ctx;
    (void)reason;
    struct member *m = state;
    atomic_fetch_add_explicit(&tokens_handled, m->handled,
                              memory_order_relaxed);
}

static const gr_behaviour member_behaviour = {
    .name = "ring",
    .state_size = sizeof(struct member),
    .init = member_init,
    .handle = member_handle,
    .terminate = member_terminate,
};

int main(void)
{
    uint64_t r = bench_env_u64("RING_R", 1000);
    uint64_t m = bench_env_u64("RING_M", 10000000);

    gr_system *sys = bench_start();
    gr_inbox *inbox;
    bench_check(gr_inbox_open(sys, &inbox), "gr_inbox_open");
    gr_ref self = gr_inbox_ref(inbox);

    /* Untimed set-up: spawn from the last actor back to the first, so each
     * can be given its successor, then close the ring by telling the last
     * actor about the first and waiting for its answer. */
    gr_ref first = GR_REF_NONE, last = GR_REF_NONE;
    for (uint64_t i = r; i-- > 0;) {
        struct member_args a = {.next = first, .report_to = self, .index = i};
        bench_check(
            gr_system_spawn(sys, &member_behaviour, &a, sizeof a, &first),
            "spawn ring member");
        if (i == r - 1)
            last = first;
    }
    bench_check(gr_system_tell(sys, self, last, MSG_LINK, &first, sizeof first),
                "gr_system_tell link");
    bench_recv_u64(inbox, MSG_LINKED);

    uint64_t t0 = bench_now_ns();
    bench_send_u64(sys, self, first, MSG_TOKEN, m);
    uint64_t final_index = bench_recv_u64(inbox, MSG_DONE);
    uint64_t t1 = bench_now_ns();

    unsigned workers = bench_workers(sys);
    gr_inbox_close(inbox);
    bench_check(gr_system_shutdown(sys), "gr_system_shutdown");

    /* main()'s send is the first message, then M hops. */
    uint64_t handled =
        atomic_load_explicit(&tokens_handled, memory_order_relaxed);
    if (final_index != m % r || handled != m + 1)
        bench_die("ring: ended at actor %" PRIu64 " (expected %" PRIu64
                  ") after %" PRIu64 " tokens (expected %" PRIu64 ")",
                  final_index, m % r, handled, m + 1);

    double s = bench_seconds(t0, t1);
    bench_result("ring", m, s, "hop", "ns_per_hop=%.1f workers=%u",
                 s * 1e9 / (double)m, workers);
    return 0;
}
