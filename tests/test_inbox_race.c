/*
 * A node-down broadcast racing with inboxes being opened. The broadcast
 * (actor/system.c) tells every live actor, and an inbox is live from its
 * id table slot on, before gr__actor_spawn has marked its mailbox empty;
 * a message that lands then used to trip an assertion ("an inbox is
 * never scheduled") and abort the process. bench/soak hit it after ~80000
 * node restarts, in a gr_call made while a node went down.
 */
#include "actor/actor.h"
#include "actor/mailbox.h"
#include "actor/remote.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <grove/grove.h>

#include "helpers.h"
#include "testing.h"

/* How long the race runs at most; it stops earlier once hit often. */
#define RACE_S      3.0
#define ENOUGH_HITS 20

struct broadcaster {
    gr_system *sys;
    atomic_bool stop;
    uint64_t sent;
};

static void *broadcast_loop(void *arg)
{
    struct broadcaster *b = arg;
    while (!atomic_load(&b->stop)) {
        gr__broadcast_node_down(b->sys, 0xdeadu, 7);
        b->sent++;
    }
    return NULL;
}

static void node_down_while_inboxes_open(void)
{
    gr_config cfg = {.workers = 2, .log_fn = quiet_log, .no_signals = 1};
    struct broadcaster b = {0};
    CHECK_EQ(gr_system_start(&cfg, &b.sys), GR_OK);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, broadcast_loop, &b), 0);
    uint64_t opened = 0, hits = 0, got = 0;
    int failed = 0;
    double end = test_now() + RACE_S;
    while (test_now() < end && hits < ENOUGH_HITS) {
        gr_inbox *in;
        /* A gr_call's inbox: node-downs reach its owner as messages. */
        if (gr__inbox_open(b.sys, GR__ACTOR_CALL, &in) != GR_OK) {
            failed++;
            break;
        }
        opened++;
        /* Not marked empty: something came during the spawn. */
        hits += !gr__mailbox_is_marked(&((gr__actor *)in)->mb_head);
        gr_msg *m;
        while (gr_inbox_recv(in, &m, GR_DURATION_ZERO) == GR_OK) {
            got++;
            gr_msg_free(m);
        }
        gr_inbox_close(in);
    }
    atomic_store(&b.stop, true);
    pthread_join(th, NULL);
    CHECK_EQ(gr_system_shutdown(b.sys), GR_OK);
    fprintf(stderr,
            "  inbox race: %" PRIu64 " inboxes, %" PRIu64
            " broadcasts, %" PRIu64 " came during the spawn, %" PRIu64
            " node-downs received\n",
            opened, b.sent, hits, got);
    CHECK_EQ(failed, 0);
    CHECK(opened > 0);
    CHECK(got > 0);
}

TEST_MAIN(TEST_CASE(node_down_while_inboxes_open))
