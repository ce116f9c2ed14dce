/*
 * Helpers for the node tests: the root behaviours a test program offers
 * when it runs as a node (it re-enters itself through gr_node_main), and
 * ways to find and drive them from the parent process.
 */
#ifndef GROVE_TEST_NODE_HELPERS_H
#define GROVE_TEST_NODE_HELPERS_H

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grove/grove.h>

#include "helpers.h"
#include "proc_stat.h"

/* Messages the echo root understands. */
enum {
    T_WHO = 1,    /* Tell the sender T_ME with a struct who (payload: an
                     optional uint64_t nonce, echoed). */
    T_ME = 2,     /* The answer to T_WHO. */
    T_ECHO = 3,   /* A request: reply with the same payload. */
    T_CRASH = 4,  /* Payload int32: one of the CRASH_* ways to die. */
    T_BURST = 5,  /* Payload struct burst: tell `to` n T_SEQ messages. */
    T_SEQ = 6,    /* Payload uint32: a sequence number. */
    T_FWD = 7,    /* Payload gr_ref: forward the next message there. */
    T_REPLY = 8,  /* An echo's reply type. */
    T_LINK = 9,   /* Payload gr_ref: link to it (the echo traps exits). */
    T_COUNT = 10, /* A request: reply with a struct counted. */
    T_TREE = 11,  /* Reply with the node's tree supervisor's ref. */
    T_PROBE = 12, /* struct probe: tell and monitor target from here. */
    T_PROBED = 13 /* struct probed: what a T_PROBE's tell and monitor
                     returned, then (another one) the DOWN's reason. */
};

/* What T_PROBE carries. */
struct probe {
    gr_ref target;
    gr_ref report_to;
};

/* What T_PROBED carries: results, or (down set) a DOWN's reason code. */
struct probed {
    int32_t tell_rc;
    int32_t monitor_rc;
    int32_t down;
    int32_t down_code;
};

/* What T_COUNT answers: the T_SEQ messages seen, and how many broke the
 * order (a sequence restarting at 0 starts a new run). */
struct counted {
    uint32_t count;
    uint32_t out_of_order;
    uint32_t next; /* The sequence number expected next. */
};

/* Counts a T_SEQ message's sequence number. */
static inline void count_seq(struct counted *c, uint32_t seq)
{
    c->out_of_order += seq != 0 && seq != c->next;
    c->next = seq + 1;
    c->count++;
}

/* The echo's state. */
struct echo_state {
    gr_ref fwd; /* Forward the next message here, when set. */
    struct counted seen;
    gr_ref report_to; /* Where a T_PROBE's DOWN is reported. */
};

/* Ways an echo root can be made to die. */
enum {
    CRASH_SEGV = 1,
    CRASH_ABORT = 2,
    CRASH_EXIT0 = 3,
    CRASH_EXIT1 = 4,
    CRASH_GARBAGE = 5, /* Write bytes that are no frame into the link. */
    CRASH_KILL = 6,    /* SIGKILL itself. */
    CRASH_STOP = 7,    /* Exit with reason shutdown (a clean root exit). */
    CRASH_FAIL = 8,    /* Crash the actor (not the process): GR_EFAILED. */
    CRASH_HUGE = 9,    /* Write a header announcing a 4 GiB frame. */
    CRASH_VERSION = 10 /* Write a frame of protocol version 9. */
};

/* What T_ME carries. */
struct who {
    gr_ref self;
    int32_t pid;
    /* The process that ran main() up to gr_node_main(): pid itself when
     * the node was exec'd, its fork server template when cloned. */
    int32_t main_pid;
    uint64_t nonce; /* The T_WHO's payload (a uint64_t), or 0. */
};

/* This process's pid when main() called node_main_or_continue(). */
static int32_t test_main_pid;

/* The descriptor of this node's link to its parent: the socket whose
 * peer is the parent process, which made the socket pair (a node's links
 * to nodes of its own were made by itself); -1 when there is none. */
static inline int parent_link_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int found = -1;
    const struct dirent *e;
    while (found < 0 && (e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        struct ucred cr;
        socklen_t len = sizeof cr;
        if (fd > 2 && fd != dirfd(d) &&
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
            cr.pid == getppid())
            found = fd;
    }
    closedir(d);
    return found;
}

/* What T_BURST carries. */
struct burst {
    gr_ref to;
    uint32_t n;
    uint32_t pad;
};

/* Dies as told, for real (sanitizer handlers are put back to default). */
static inline void die_as(int32_t how)
{
    switch (how) {
    case CRASH_SEGV:
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
        break;
    case CRASH_ABORT:
        signal(SIGABRT, SIG_DFL);
        abort();
    case CRASH_EXIT0:
        _exit(0);
    case CRASH_EXIT1:
        _exit(1);
    case CRASH_KILL:
        raise(SIGKILL);
        break;
    case CRASH_GARBAGE:
    case CRASH_HUGE:
    case CRASH_VERSION: {
        /* Written straight into the link, past the runtime; junk and huge
         * carry the protocol's version (2, transport/wire.h). */
        static const char junk[] = "\x02\x03\x00\x00\x00\x05garbage!";
        static const char huge[] = "\x02\x03\xff\xff\xff\xf0";
        static const char version[] = "\x09\x03\x00\x00\x00\x01\x90";
        const char *bytes = how == CRASH_GARBAGE ? junk
                            : how == CRASH_HUGE  ? huge
                                                 : version;
        size_t n = how == CRASH_GARBAGE ? sizeof junk - 1
                   : how == CRASH_HUGE  ? sizeof huge - 1
                                        : sizeof version - 1;
        int fd = parent_link_fd();
        if (fd < 0 || write(fd, bytes, n) < 0)
            _exit(9);
        break;
    }
    default:
        break;
    }
}

/* The echo root: registers "echo" and answers the T_* messages. */
static inline int echo_init(gr_ctx *ctx, void *state, const void *arg,
                            size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    gr_trap_exit(ctx, 1);
    return gr_register(ctx, "echo");
}

static inline int echo_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct echo_state *st = state;
    gr_ref *fwd = &st->fwd;
    if (!gr_ref_is_none(*fwd) && m->type < GR_MSG_RESERVED &&
        m->type != T_FWD) {
        gr_ref to = *fwd;
        *fwd = GR_REF_NONE;
        (void)gr_tell(ctx, to, m->type, m->data, m->len);
        return GR_CONTINUE;
    }
    switch (m->type) {
    case T_WHO: {
        struct who w = {.self = gr_self(ctx),
                        .pid = (int32_t)getpid(),
                        .main_pid = test_main_pid};
        if (m->len == sizeof w.nonce)
            memcpy(&w.nonce, m->data, sizeof w.nonce);
        (void)gr_tell(ctx, m->from, T_ME, &w, sizeof w);
        return GR_CONTINUE;
    }
    case T_ECHO:
        return gr_reply(ctx, m, T_REPLY, m->data, m->len);
    case T_CRASH: {
        int32_t how = 0;
        if (read_payload(m, &how, sizeof how) && how == CRASH_STOP)
            return gr_stop_with(ctx, &(gr_reason){.code = GR_ESHUTDOWN});
        if (how == CRASH_FAIL)
            return GR_EFAILED;
        die_as(how);
        return GR_CONTINUE;
    }
    case T_BURST: {
        struct burst b;
        if (!read_payload(m, &b, sizeof b))
            return GR_EINVAL;
        for (uint32_t i = 0; i < b.n; i++)
            (void)gr_tell(ctx, b.to, T_SEQ, &i, sizeof i);
        return GR_CONTINUE;
    }
    case T_FWD:
        return read_payload(m, fwd, sizeof *fwd) ? GR_CONTINUE : GR_EINVAL;
    case T_SEQ: {
        uint32_t seq = 0; /* The first 4 bytes; the rest is padding. */
        if (m->len < sizeof seq)
            return GR_EINVAL;
        memcpy(&seq, m->data, sizeof seq);
        count_seq(&st->seen, seq);
        return GR_CONTINUE;
    }
    case T_COUNT:
        return gr_reply(ctx, m, T_REPLY, &st->seen, sizeof st->seen);
    case T_PROBE: {
        struct probe p;
        if (!read_payload(m, &p, sizeof p))
            return GR_EINVAL;
        st->report_to = p.report_to;
        struct probed r = {.tell_rc = gr_tell(ctx, p.target, T_WHO, NULL, 0),
                           .monitor_rc = gr_monitor(ctx, p.target, NULL)};
        (void)gr_tell(ctx, p.report_to, T_PROBED, &r, sizeof r);
        return GR_CONTINUE;
    }
    case GR_MSG_DOWN: {
        gr_down d;
        if (gr_down_read(m, &d) == GR_OK && !gr_ref_is_none(st->report_to)) {
            struct probed r = {.down = 1, .down_code = d.reason.code};
            (void)gr_tell(ctx, st->report_to, T_PROBED, &r, sizeof r);
        }
        return GR_CONTINUE;
    }
    case T_LINK: {
        gr_ref to;
        return read_payload(m, &to, sizeof to) ? gr_link(ctx, to) : GR_EINVAL;
    }
    case GR_MSG_EXIT:
        return GR_CONTINUE;
    default:
        return GR_CONTINUE;
    }
}

static const gr_behaviour echo_b = {
    .name = "echo",
    .state_size = sizeof(struct echo_state),
    .init = echo_init,
    .handle = echo_handle,
};

/* The "tree" root: a supervisor (one-for-one, intensity 1) over one echo
 * worker, linked to the root, so that when it gives up the root exits
 * with shutdown and so does the node (escalation). */
static const gr_child_spec tree_kids[] = {
    {.id = "echo", .behaviour = &echo_b, .restart = GR_PERMANENT}};
static const gr_sup_spec tree_spec = {.strategy = GR_ONE_FOR_ONE,
                                      .intensity = 1,
                                      .period_ms = 60000,
                                      .children = tree_kids,
                                      .nchildren = 1};

/* The "gtree" root: the same, over a grandchild node "g1" running echo
 * (a tree of processes). */
static const gr_node_spec g1_spec = {.name = "g1", .root = "echo"};
static const gr_child_spec gtree_kids[] = {{.id = "g1",
                                            .behaviour = &gr_node_behaviour,
                                            .arg = &g1_spec,
                                            .arg_len = sizeof g1_spec,
                                            .restart = GR_PERMANENT,
                                            .type = GR_NODE}};
static const gr_sup_spec gtree_spec = {.strategy = GR_ONE_FOR_ONE,
                                       .intensity = 3,
                                       .period_ms = 60000,
                                       .children = gtree_kids,
                                       .nchildren = 1};

/* Starts the tree named by arg ("gtree" or the default) and links to it. */
static inline int tree_init(gr_ctx *ctx, void *state, const void *arg,
                            size_t len)
{
    gr_ref *sup = state;
    const gr_sup_spec *spec =
        len == 5 && memcmp(arg, "gtree", 5) == 0 ? &gtree_spec : &tree_spec;
    int rc = gr_supervisor_start(gr_ctx_system(ctx), spec, sup);
    return rc == GR_OK ? gr_link(ctx, *sup) : rc;
}

static inline int tree_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    return GR_CONTINUE;
}

static const gr_behaviour tree_b = {
    .name = "tree",
    .state_size = sizeof(gr_ref),
    .init = tree_init,
    .handle = tree_handle,
};

/* Writes tag then v's n low bytes, big-endian; returns the next byte. */
static inline uint8_t *put_be(uint8_t *p, uint8_t tag, uint64_t v, int n)
{
    *p++ = tag;
    for (int i = n - 1; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

/* The "liar" root: its init writes straight into the link, ahead of the
 * runtime's WELCOME, a WELCOME of its own that is right in everything
 * (version, node, incarnation, pid, a root actor) but the secret, all
 * zeros: what a process that does not know the system's secret would
 * answer. The parent must refuse it for that. */
static inline int liar_init(gr_ctx *ctx, void *state, const void *arg,
                            size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    gr_ref me = gr_self(ctx);
    /* Header: version 2, kind 2 (WELCOME), body length 43. Body: an array
     * of 5, bin8 of 16 zero bytes, then uint32, uint32, uint32, uint64. */
    uint8_t f[6 + 43] = {2, 2, 0, 0, 0, 43, 0x95, 0xc4, 16};
    uint8_t *p = f + 6 + 3 + 16;
    p = put_be(p, 0xce, me.node, 4);
    p = put_be(p, 0xce, me.incarnation, 4);
    p = put_be(p, 0xce, (uint64_t)getpid(), 4);
    p = put_be(p, 0xcf, me.serial, 8);
    int fd = parent_link_fd();
    if (fd < 0 || write(fd, f, (size_t)(p - f)) != p - f)
        return GR_EINVAL;
    return GR_OK;
}

static inline int liar_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    return GR_CONTINUE;
}

static const gr_behaviour liar_b = {
    .name = "liar",
    .state_size = 1,
    .init = liar_init,
    .handle = liar_handle,
};

/* The roots every node test program offers. "sup" is tree_spec's
 * supervisor itself, its spec given here (the node's own arg). */
static const gr_node_root test_roots[] = {
    {.name = "echo", .behaviour = &echo_b},
    {.name = "liar", .behaviour = &liar_b},
    {.name = "tree", .behaviour = &tree_b},
    {.name = "sup",
     .behaviour = &gr_supervisor_behaviour,
     .arg = &tree_spec,
     .arg_len = sizeof tree_spec},
};

/* Runs this process as a node if it was started as one (call first in
 * main), or as its fork server template, whose clones come back from
 * gr_node_main() as nodes. */
static inline void node_main_or_continue(void)
{
    test_main_pid = (int32_t)getpid();
    int code;
    gr_config cfg = {.workers = 2,
                     .no_signals = 1,
                     .log_level = GR_LOG_WARN,
                     .log_level_set = 1};
    if (gr_node_main(test_roots, sizeof test_roots / sizeof test_roots[0], &cfg,
                     &code))
        exit(code);
}

/* A node child spec running the echo root. */
#define NODE_CHILD(id_, spec_, restart_)                                       \
    {                                                                          \
        .id = (id_), .behaviour = &gr_node_behaviour, .arg = &(spec_),         \
        .arg_len = sizeof(spec_), .restart = (restart_), .type = GR_NODE,      \
        .shutdown_ms = 2000                                                    \
    }

/* Asks "echo@node" who it is, from the inbox; stores the answer. Retries
 * (a restarted node re-registers) until limit_s passes. */
static inline int find_echo(gr_system *sys, gr_inbox *in, const char *node,
                            struct who *out, double limit_s)
{
    /* Each T_WHO carries a nonce; only an answer to one of this call's
     * counts (a late answer to an earlier call's, for another node or an
     * older incarnation, is dropped). */
    static uint64_t last_nonce;
    uint64_t first = last_nonce + 1;
    char name[2 * GR_NAME_MAX + 2];
    snprintf(name, sizeof name, "echo@%s", node);
    double end = test_now() + limit_s;
    while (test_now() < end) {
        uint64_t nonce = ++last_nonce;
        if (gr_system_tell_name(sys, gr_inbox_ref(in), name, T_WHO, &nonce,
                                sizeof nonce) == GR_OK) {
            gr_msg *m = NULL;
            double until = test_now() + 0.5;
            while (test_now() < until &&
                   gr_inbox_recv(in, &m, 100) != GR_ETIMEDOUT) {
                if (m == NULL)
                    continue;
                int ok = m->type == T_ME && read_payload(m, out, sizeof *out) &&
                         out->nonce >= first && out->nonce <= last_nonce;
                gr_msg_free(m);
                m = NULL;
                if (ok)
                    return 1;
            }
        } else {
            sleep_ms(5);
        }
    }
    return 0;
}

/* Returns 1 when pid has ended: reaped (kill fails), or, when it is not
 * this process's child, a zombie waiting for whoever inherited it. Waits up
 * to limit_s. */
static inline int pid_gone(pid_t pid, double limit_s)
{
    double end = test_now() + limit_s;
    while (test_now() < end) {
        if (kill(pid, 0) != 0)
            return 1;
        proc_stat st;
        if (proc_stat_read((int)pid, &st) && st.state == 'Z' &&
            st.ppid != getpid())
            return 1;
        sleep_ms(5);
    }
    return 0;
}

#endif
