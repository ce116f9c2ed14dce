/*
 * Node tests, messaging: tell, ask, call, monitor and link across the
 * process boundary and what happens to them when a node dies
 * (noconnection, node_down dead letters), ordering under load,
 * backpressure from a node that stops reading, and bad frames in a link.
 * Every process started is reaped; bounded waits, no timing assertions.
 */
#include "node_env.h"

/* Monitors, links and asks across the boundary fire with noconnection
 * when the node dies, at once rather than at the ask's timeout; a monitor
 * of an actor that does not exist there gives noproc; a fresh ask to the
 * dead incarnation fails when it is made. */
static void monitor_link_ask_across_nodes(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_TEMPORARY)};
    gr_ref sup, agent;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    CHECK_EQ(spawn_agent(&e, &agent), GR_OK);
    struct who w;
    FIND(&e, "n1", &w);
    struct report r;
    /* noproc from the node itself. */
    gr_ref ghost = w.self;
    ghost.serial += 1000;
    CHECK_EQ(
        agent_do(&e, agent, A_MONITOR, (struct agent_cmd){.target = ghost}),
        GR_OK);
    CHECK(next_report(&e, R_DOWN, &r));
    CHECK_EQ(r.code, GR_ENOACTOR);
    /* An ask answered across the boundary. */
    CHECK_EQ(agent_do(&e, agent, A_ASK,
                      (struct agent_cmd){.target = w.self,
                                         .type = T_ECHO,
                                         .timeout_ms = 10000}),
             GR_OK);
    CHECK(next_report(&e, R_ASK, &r));
    CHECK_EQ(r.code, GR_OK);
    CHECK_EQ(r.what, T_REPLY);
    /* Monitor, link, and an ask the node will never answer. */
    CHECK_EQ(
        agent_do(&e, agent, A_MONITOR, (struct agent_cmd){.target = w.self}),
        GR_OK);
    CHECK_EQ(agent_do(&e, agent, A_LINK, (struct agent_cmd){.target = w.self}),
             GR_OK);
    CHECK_EQ(agent_do(&e, agent, A_ASK,
                      (struct agent_cmd){.target = w.self,
                                         .type = T_CRASH,
                                         .payload = 0,
                                         .timeout_ms = 60000}),
             GR_OK);
    sleep_ms(SETTLE_MS);
    double t0 = test_now();
    CHECK_EQ(kill(w.pid, SIGKILL), 0);
    /* The three come in no promised order. */
    bool down = false, exited = false, failed = false;
    double end = test_now() + WAIT_LIMIT_S;
    while (!(down && exited && failed) && test_now() < end) {
        gr_msg *m = NULL;
        if (gr_inbox_recv(e.inbox, &m, 100) != GR_OK)
            continue;
        int ok = read_payload(m, &r, sizeof r);
        uint32_t type = m->type;
        gr_msg_free(m);
        CHECK(ok);
        CHECK_EQ(r.code, GR_ENOCONNECTION);
        CHECK(gr_ref_eq(r.from, w.self));
        CHECK(type == R_DOWN || type == R_EXIT ||
              (type == R_ASK && r.what == GR_MSG_ASK_FAILED));
        down |= type == R_DOWN;
        exited |= type == R_EXIT;
        failed |= type == R_ASK;
    }
    CHECK(down && exited && failed);
    CHECK(test_now() - t0 < 30); /* Not the ask's 60 s timeout. */
    /* The dead incarnation: an ask fails when made; a tell is a node_down
     * dead letter. */
    CHECK_EQ(agent_do(&e, agent, A_ASK,
                      (struct agent_cmd){.target = w.self,
                                         .type = T_ECHO,
                                         .timeout_ms = 60000}),
             GR_OK);
    CHECK(next_report(&e, R_ASK, &r));
    CHECK_EQ(r.code, GR_ENOCONNECTION);
    CHECK_EQ(r.detail, 1);
    uint64_t dead = stats_of(e.sys).dead_letters[GR_DL_NODE_DOWN];
    CHECK_EQ(gr_system_tell(e.sys, GR_REF_NONE, w.self, T_WHO, NULL, 0),
             GR_ENOCONNECTION);
    CHECK_EQ(stats_of(e.sys).dead_letters[GR_DL_NODE_DOWN], dead + 1);
    CHECK_EQ(gr_system_tell_name(e.sys, GR_REF_NONE, "echo@n1", T_WHO, NULL, 0),
             GR_ENOCONNECTION);
    env_close(&e);
    CHECK(pid_gone(w.pid, 10));
}

/* gr_call() from a plain thread to an actor whose node dies before it
 * answers returns GR_ENOCONNECTION at once, not at its timeout. */
static void call_fails_when_node_dies(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_ref sup;
    struct who w;
    CHECK(start_n1(&e, GR_TEMPORARY, &sup, &w));
    int32_t how = CRASH_SEGV;
    gr_msg *reply = NULL;
    double t0 = test_now();
    CHECK_EQ(gr_call(e.sys, w.self, T_CRASH, &how, sizeof how, 60000, &reply),
             GR_ENOCONNECTION);
    CHECK(reply == NULL);
    CHECK(test_now() - t0 < 30);
    CHECK_EQ(gr_call(e.sys, w.self, T_ECHO, "x", 1, 60000, &reply),
             GR_ENOCONNECTION);
    env_close(&e);
    CHECK(pid_gone(w.pid, 10));
}

/* Supervisor calls on refs that are not a supervisor's, across the node
 * boundary: the echo on n1 (the request travels there and is refused
 * there) and n1's stand-in here both answer GR_ENOTSUP at once; the echo
 * goes on working. */
static void supervisor_call_on_a_node_ref(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_ref sup;
    struct who w;
    CHECK(start_n1(&e, GR_PERMANENT, &sup, &w));
    gr_child_info info[2];
    size_t n = 0;
    CHECK_EQ(gr_supervisor_which_children(e.sys, w.self, SUP_WAIT, info, 2, &n),
             GR_ENOTSUP);
    gr_ref standin;
    CHECK(children_of(e.sys, sup, &standin, 1));
    CHECK_EQ(gr_supervisor_count_children(e.sys, standin, SUP_WAIT,
                                          &(gr_child_counts){0}),
             GR_ENOTSUP);
    gr_msg *reply = NULL;
    CHECK_EQ(
        gr_call(e.sys, w.self, T_ECHO, "x", 1, GR_DURATION_DEFAULT, &reply),
        GR_OK);
    gr_msg_free(reply);
    env_close(&e);
    CHECK(pid_gone(w.pid, 10));
}

/* A send by name that cannot go on is a dead letter that names the name:
 * "ghost@nonode" (no such node) here; the name part is kept. */
static void named_dead_letter_keeps_name(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_ref sup;
    struct who w;
    CHECK(start_n1(&e, GR_TEMPORARY, &sup, &w));
    CHECK_EQ(
        gr_system_tell_name(e.sys, GR_REF_NONE, "ghost@nonode", T_WHO, NULL, 0),
        GR_ENOCONNECTION);
    CHECK(wait_event(GR_EV_DEAD_LETTER, "ghost", 1, NULL));
    env_close(&e);
}

/* The ref a supervisor hands out for a node child (its stand-in) passes
 * application messages on to the node's root: tells in order, with their
 * sender; requests answered by the root (gr_call from a thread, gr_ask
 * from an actor); and a call whose node dies on it fails at once instead
 * of running out its timeout. */
static void standin_forwards_to_root(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_ref sup, agent, standin;
    struct who w;
    CHECK(start_n1(&e, GR_TEMPORARY, &sup, &w));
    CHECK(children_of(e.sys, sup, &standin, 1));
    CHECK(!gr_ref_eq(standin, w.self));
    /* A tell, with its sender: the root answers the inbox itself. */
    CHECK_EQ(
        gr_system_tell(e.sys, gr_inbox_ref(e.inbox), standin, T_WHO, NULL, 0),
        GR_OK);
    struct who got;
    CHECK_EQ(recv_exact(e.inbox, T_ME, &got, sizeof got), GR_OK);
    CHECK(gr_ref_eq(got.self, w.self));
    /* Many tells, in order, then a call through the stand-in counts them. */
    uint32_t n = (uint32_t)scaled(5000, 500);
    for (uint32_t i = 0; i < n; i++)
        CHECK_EQ(
            gr_system_tell(e.sys, GR_REF_NONE, standin, T_SEQ, &i, sizeof i),
            GR_OK);
    gr_msg *reply = NULL;
    CHECK_EQ(gr_call(e.sys, standin, T_COUNT, NULL, 0, 10000, &reply), GR_OK);
    struct counted c = {0};
    CHECK(reply != NULL && reply->type == T_REPLY &&
          read_payload(reply, &c, sizeof c));
    CHECK(reply != NULL && gr_ref_eq(reply->from, w.self));
    gr_msg_free(reply);
    CHECK_EQ(c.count, n);
    CHECK_EQ(c.out_of_order, 0);
    /* An ask from an actor, answered by the root. */
    CHECK_EQ(spawn_agent(&e, &agent), GR_OK);
    struct report r;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(agent_do(&e, agent, A_ASK,
                          (struct agent_cmd){.target = standin,
                                             .type = T_ECHO,
                                             .timeout_ms = 10000}),
                 GR_OK);
        CHECK(next_report(&e, R_ASK, &r));
        CHECK_EQ(r.code, GR_OK);
        CHECK_EQ(r.what, T_REPLY);
        CHECK(gr_ref_eq(r.from, w.self));
    }
    /* A call the node dies on: failed when the stand-in exits, long before
     * its timeout. */
    int32_t how = CRASH_SEGV;
    double t0 = test_now();
    CHECK_EQ(gr_call(e.sys, standin, T_CRASH, &how, sizeof how, 60000, &reply),
             GR_ENOACTOR);
    CHECK(reply == NULL);
    CHECK(test_now() - t0 < 30);
    /* The stand-in exits (temporary: for good); then a tell to it is
     * refused. */
    CHECK(pid_gone(w.pid, 10));
    double end = test_now() + WAIT_MS / 1000.0;
    int rc;
    while ((rc = gr_system_tell(e.sys, GR_REF_NONE, standin, T_WHO, NULL, 0)) !=
               GR_ENOACTOR &&
           test_now() < end)
        sleep_ms(1);
    CHECK_EQ(rc, GR_ENOACTOR);
    env_close(&e);
}

/* A DOWN from another node keeps its place behind the messages its target
 * sent before it died, and carries the real reason (the node lives on:
 * only the actor crashed). */
static void down_keeps_its_place(void)
{
    static const gr_node_spec tree = {.name = "t1", .root = "tree"};
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("t1", tree, GR_PERMANENT)};
    gr_ref sup, agent;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
    CHECK_EQ(spawn_agent(&e, &agent), GR_OK);
    struct who w;
    FIND(&e, "t1", &w);
    CHECK_EQ(
        agent_do(&e, agent, A_MONITOR, (struct agent_cmd){.target = w.self}),
        GR_OK);
    sleep_ms(SETTLE_MS); /* The monitor is in place at the echo. */
    uint32_t n = (uint32_t)scaled(20000, 1000);
    struct burst b = {.to = agent, .n = n};
    int32_t how = CRASH_FAIL;
    CHECK_EQ(gr_system_tell(e.sys, GR_REF_NONE, w.self, T_BURST, &b, sizeof b),
             GR_OK);
    CHECK_EQ(
        gr_system_tell(e.sys, GR_REF_NONE, w.self, T_CRASH, &how, sizeof how),
        GR_OK);
    struct report r;
    CHECK(next_report(&e, R_DOWN, &r));
    CHECK_EQ(r.code, GR_EFAILED);
    CHECK_EQ(r.what, n); /* Every message came before the DOWN. */
    CHECK(gr_ref_eq(r.from, w.self));
    env_close(&e);
}

/* Per sender-receiver order holds across the boundary, both ways at once,
 * and through the parent between two sibling nodes; nothing is lost or
 * duplicated. */
static void ordering_under_load(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT),
                            NODE_CHILD("n2", n2_spec, GR_PERMANENT)};
    gr_ref sup, agent;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 2, &sup), GR_OK);
    CHECK_EQ(spawn_agent(&e, &agent), GR_OK);
    struct who w1, w2;
    FIND(&e, "n1", &w1);
    FIND(&e, "n2", &w2);
    uint32_t n = (uint32_t)scaled(40000, 2000);
    /* node -> here and here -> node, concurrently. */
    struct burst b = {.to = agent, .n = n};
    CHECK_EQ(gr_system_tell(e.sys, GR_REF_NONE, w1.self, T_BURST, &b, sizeof b),
             GR_OK);
    CHECK_EQ(agent_do(&e, agent, A_BURST,
                      (struct agent_cmd){.target = w1.self, .n = n}),
             GR_OK);
    double end = test_now() + WAIT_LIMIT_S;
    struct counted c = {0};
    while (test_now() < end) {
        CHECK_EQ(gr_system_tell(e.sys, gr_inbox_ref(e.inbox), agent, A_COUNT,
                                NULL, 0),
                 GR_OK);
        gr_msg *m = NULL;
        CHECK_EQ(gr_inbox_recv(e.inbox, &m, 5000), GR_OK);
        int ok = m->type == R_COUNT && read_payload(m, &c, sizeof c);
        gr_msg_free(m);
        if (ok && c.count >= n)
            break;
        sleep_ms(10);
    }
    CHECK_EQ(c.count, n);
    CHECK_EQ(c.out_of_order, 0);
    gr_msg *reply = NULL;
    end = test_now() + WAIT_LIMIT_S;
    struct counted at_node = {0};
    while (test_now() < end) {
        CHECK_EQ(gr_call(e.sys, w1.self, T_COUNT, NULL, 0, 5000, &reply),
                 GR_OK);
        CHECK(read_payload(reply, &at_node, sizeof at_node));
        gr_msg_free(reply);
        if (at_node.count >= n)
            break;
        sleep_ms(10);
    }
    CHECK_EQ(at_node.count, n);
    CHECK_EQ(at_node.out_of_order, 0);
    /* Sibling to sibling, through the parent: n1 forwards a burst request
     * to n2, and n2 bursts to n1. */
    CHECK_EQ(gr_system_tell(e.sys, GR_REF_NONE, w1.self, T_FWD, &w2.self,
                            sizeof w2.self),
             GR_OK);
    struct burst back = {.to = w1.self, .n = n};
    CHECK_EQ(gr_system_tell(e.sys, GR_REF_NONE, w1.self, T_BURST, &back,
                            sizeof back),
             GR_OK);
    end = test_now() + WAIT_LIMIT_S;
    while (test_now() < end) {
        CHECK_EQ(gr_call(e.sys, w1.self, T_COUNT, NULL, 0, 5000, &reply),
                 GR_OK);
        CHECK(read_payload(reply, &at_node, sizeof at_node));
        gr_msg_free(reply);
        if (at_node.count >= 2 * n)
            break;
        sleep_ms(10);
    }
    CHECK_EQ(at_node.count, 2 * n);
    CHECK_EQ(at_node.out_of_order, 0);
    env_close(&e);
}

/* A node that stops reading (SIGSTOP): sends to it are refused with
 * GR_EBACKPRESSURE and backpressure dead letters once the link's buffer is
 * full, so memory stays bounded; after SIGCONT every accepted message
 * arrives, in order. */
static void backpressure_when_node_stops_reading(void)
{
    struct env e;
    CHECK(node_env_open_buffer(&e, 64 << 10));
    gr_ref sup;
    struct who w;
    CHECK(start_n1(&e, GR_PERMANENT, &sup, &w));
    CHECK(stop_process(w.pid));
    static uint8_t pad[1024];
    uint32_t accepted = 0;
    int rc = GR_OK;
    /* Bounded: the socket buffers plus 64 KiB hold far less than 64 MiB. */
    for (uint32_t i = 0; i < 65536 && rc == GR_OK; i++) {
        memcpy(pad, &accepted, sizeof accepted);
        rc = gr_system_tell(e.sys, GR_REF_NONE, w.self, T_SEQ, pad, sizeof pad);
        accepted += rc == GR_OK;
    }
    CHECK_EQ(rc, GR_EBACKPRESSURE);
    CHECK_EQ(stats_of(e.sys).dead_letters[GR_DL_BACKPRESSURE], 1);
    CHECK(accepted > 0);
    CHECK((uint64_t)accepted * sizeof pad < (16u << 20));
    /* Still refused, still counted. */
    CHECK_EQ(gr_system_tell(e.sys, GR_REF_NONE, w.self, T_SEQ, pad, sizeof pad),
             GR_EBACKPRESSURE);
    CHECK_EQ(stats_of(e.sys).dead_letters[GR_DL_BACKPRESSURE], 2);
    CHECK_EQ(kill(w.pid, SIGCONT), 0);
    double end = test_now() + WAIT_LIMIT_S;
    struct counted c = {0};
    while (test_now() < end) {
        gr_msg *reply = NULL;
        /* Refused until the node has taken (and confirmed) enough. */
        rc = gr_call(e.sys, w.self, T_COUNT, NULL, 0, 10000, &reply);
        if (rc == GR_EBACKPRESSURE) {
            sleep_ms(1);
            continue;
        }
        CHECK_EQ(rc, GR_OK);
        CHECK(read_payload(reply, &c, sizeof c));
        gr_msg_free(reply);
        if (c.count >= accepted)
            break;
        sleep_ms(10);
    }
    CHECK_EQ(c.count, accepted);
    CHECK_EQ(c.out_of_order, 0);
    env_close(&e);
    CHECK(pid_gone(w.pid, 10));
}

/* Every tell accepted for a node that dies before its runtime took it is a
 * node_down dead letter: the ones still queued on the link, and the ones
 * already written into the socket that the (stopped) node never read. */
static void in_flight_become_node_down(void)
{
    struct env e;
    CHECK(node_env_open_buffer(&e, 64 << 10));
    gr_ref sup;
    struct who w;
    CHECK(start_n1(&e, GR_TEMPORARY, &sup, &w));
    CHECK(stop_process(w.pid));
    static uint8_t pad[1024];
    uint32_t accepted = 0;
    int rc = GR_OK;
    while (accepted < 65536 &&
           (rc = gr_system_tell(e.sys, GR_REF_NONE, w.self, T_SEQ, pad,
                                sizeof pad)) == GR_OK)
        accepted++;
    CHECK_EQ(rc, GR_EBACKPRESSURE);
    CHECK_EQ(stats_of(e.sys).dead_letters[GR_DL_NODE_DOWN], 0);
    CHECK_EQ(kill(w.pid, SIGKILL), 0);
    CHECK(wait_event(GR_EV_NODE_DOWN, "n1", 1, NULL));
    uint64_t dropped = stats_of(e.sys).dead_letters[GR_DL_NODE_DOWN];
    if (dropped != accepted)
        fprintf(stderr, "  accepted %u, dropped %llu\n", accepted,
                (unsigned long long)dropped);
    CHECK(dropped >= (64 << 10) / sizeof pad / 2); /* The queue's worth. */
    CHECK_EQ(dropped, accepted);
    env_close(&e);
}

/* A frame left half written in a link's buffer (a SIGSTOPped node) does
 * not hide what queued behind it: when the node dies the rest become
 * node_down dead letters; and at shutdown a node whose link holds a half
 * written frame still gets its stop request (after the rest of the
 * frame), and stops cleanly. */
static void half_written_frames(void)
{
    static uint8_t big[4 << 20];
    for (int round = 0; round < 2; round++) {
        struct env e;
        CHECK(node_env_open(&e));
        gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_TEMPORARY)};
        gr_ref sup;
        CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 1, &sup), GR_OK);
        struct who w;
        FIND(&e, "n1", &w);
        CHECK(stop_process(w.pid));
        CHECK_EQ(
            gr_system_tell(e.sys, GR_REF_NONE, w.self, T_SEQ, big, sizeof big),
            GR_OK);
        for (int i = 0; i < 20; i++)
            CHECK_EQ(
                gr_system_tell(e.sys, GR_REF_NONE, w.self, T_SEQ, &i, sizeof i),
                GR_OK);
        if (round == 0) {
            CHECK_EQ(kill(w.pid, SIGKILL), 0);
            CHECK(wait_event(GR_EV_NODE_DOWN, "n1", 1, NULL));
            CHECK(stats_of(e.sys).dead_letters[GR_DL_NODE_DOWN] >= 20);
            env_close(&e);
        } else {
            CHECK_EQ(kill(w.pid, SIGCONT), 0);
            double t0 = test_now();
            env_close(&e);
            CHECK(test_now() - t0 < 4); /* Not the 5 s before SIGKILL. */
            gr_reason why;
            CHECK(wait_event(GR_EV_NODE_DOWN, "n1", 1, &why));
            CHECK_EQ(why.code, GR_OK);
        }
        CHECK(pid_gone(w.pid, 10));
    }
}

/* A frame bigger than link_buffer still goes when the link is idle (it
 * could never fit otherwise); a second one behind it is backpressure. */
static void frame_bigger_than_link_buffer(void)
{
    struct env e;
    CHECK(node_env_open_buffer(&e, 64 << 10));
    gr_ref sup;
    struct who w;
    CHECK(start_n1(&e, GR_PERMANENT, &sup, &w));
    static uint8_t big[1 << 20]; /* 16 x link_buffer. */
    CHECK_EQ(gr_system_tell(e.sys, GR_REF_NONE, w.self, T_SEQ, big, sizeof big),
             GR_OK);
    /* Behind it, until it has left, even a small one waits its turn. */
    gr_msg *reply = NULL;
    struct counted c = {0};
    double end = test_now() + WAIT_LIMIT_S;
    while (c.count < 1 && test_now() < end) {
        int rc = gr_call(e.sys, w.self, T_COUNT, NULL, 0, 5000, &reply);
        if (rc == GR_EBACKPRESSURE) {
            sleep_ms(1);
            continue;
        }
        CHECK_EQ(rc, GR_OK);
        CHECK(read_payload(reply, &c, sizeof c));
        gr_msg_free(reply);
    }
    CHECK_EQ(c.count, 1);
    env_close(&e);
}

/* From a node (not the root): a tell to a sibling node that is gone fails
 * at once with GR_ENOCONNECTION, and a monitor of it fires with
 * noconnection, whether the news of its end has arrived or not. */
static void dead_sibling_seen_from_a_node(void)
{
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT),
                            NODE_CHILD("n2", n2_spec, GR_TEMPORARY)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 3, kids, 2, &sup), GR_OK);
    struct who w1, w2;
    FIND(&e, "n1", &w1);
    FIND(&e, "n2", &w2);
    CHECK_EQ(kill(w2.pid, SIGKILL), 0);
    CHECK(wait_event(GR_EV_NODE_DOWN, "n2", 1, NULL));
    sleep_ms(SETTLE_MS); /* The NODE_DOWN reaches n1 too. */
    struct probe p = {.target = w2.self, .report_to = gr_inbox_ref(e.inbox)};
    CHECK_EQ(gr_system_tell(e.sys, GR_REF_NONE, w1.self, T_PROBE, &p, sizeof p),
             GR_OK);
    struct probed r;
    CHECK_EQ(recv_exact(e.inbox, T_PROBED, &r, sizeof r), GR_OK);
    CHECK_EQ(r.tell_rc, GR_ENOCONNECTION);
    CHECK_EQ(r.monitor_rc, GR_OK);
    CHECK_EQ(recv_exact(e.inbox, T_PROBED, &r, sizeof r), GR_OK);
    CHECK_EQ(r.down, 1);
    CHECK_EQ(r.down_code, GR_ENOCONNECTION);
    env_close(&e);
}

/* Bytes that are no frame, a header announcing 4 GiB (refused before
 * anything is allocated), a wrong protocol version, each written into a
 * link: that link is closed with a protocol error naming it, the node
 * killed and restarted; a sibling node and its link are untouched. */
static void bad_frames_in_a_link(void)
{
    static const struct {
        int32_t how;
        const char *text;
    } bad[] = {{CRASH_GARBAGE, "expected an array"},
               {CRASH_HUGE, "exceeds"},
               {CRASH_VERSION, "wrong protocol version"}};
    struct env e;
    CHECK(node_env_open(&e));
    gr_child_spec kids[] = {NODE_CHILD("n1", n1_spec, GR_PERMANENT),
                            NODE_CHILD("n2", n2_spec, GR_PERMANENT)};
    gr_ref sup;
    CHECK_EQ(start_sup(e.sys, GR_ONE_FOR_ONE, 5, kids, 2, &sup), GR_OK);
    struct who w2;
    FIND(&e, "n2", &w2);
    for (int i = 0; i < 3; i++) {
        struct who w1;
        FIND(&e, "n1", &w1);
        crash(e.sys, e.inbox, w1.self, bad[i].how);
        gr_reason why;
        CHECK(wait_event(GR_EV_CHILD_CRASHED, "n1", i + 1, &why));
        CHECK_EQ(why.code, GR_EPROTO);
        if (strstr(why.text, bad[i].text) == NULL)
            fprintf(stderr, "  reason text: %s\n", why.text);
        CHECK(strstr(why.text, bad[i].text) != NULL);
        CHECK(wait_event(GR_EV_CHILD_RESTARTED, "n1", i + 1, NULL));
        CHECK(pid_gone(w1.pid, 10));
    }
    struct who w1b, w2b;
    FIND(&e, "n1", &w1b);
    FIND(&e, "n2", &w2b);
    CHECK(w2b.pid == w2.pid && gr_ref_eq(w2b.self, w2.self));
    CHECK_EQ(count_events(GR_EV_CHILD_CRASHED, "n2"), 0);
    env_close(&e);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"monitor_link_ask_across_nodes", monitor_link_ask_across_nodes},
        {"call_fails_when_node_dies", call_fails_when_node_dies},
        {"supervisor_call_on_a_node_ref", supervisor_call_on_a_node_ref},
        {"standin_forwards_to_root", standin_forwards_to_root},
        {"named_dead_letter_keeps_name", named_dead_letter_keeps_name},
        {"ordering_under_load", ordering_under_load},
        {"down_keeps_its_place", down_keeps_its_place},
        {"backpressure_when_node_stops_reading",
         backpressure_when_node_stops_reading},
        {"in_flight_become_node_down", in_flight_become_node_down},
        {"half_written_frames", half_written_frames},
        {"frame_bigger_than_link_buffer", frame_bigger_than_link_buffer},
        {"dead_sibling_seen_from_a_node", dead_sibling_seen_from_a_node},
        {"bad_frames_in_a_link", bad_frames_in_a_link},
    };
    return node_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
