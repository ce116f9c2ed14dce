/*
 * API contract tests: bad arguments return precise codes, names, error
 * strings, init failure, callback context, and calls that are refused from
 * inside callbacks. Public API only.
 */
#include <grove/grove.h>

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* max_payload used where a test needs a small limit. */
#define SMALL_PAYLOAD 128

/* ---- helpers ------------------------------------------------------------ */

/* Starts a system with the given payload limit (0: default) whose log is
 * dropped: tests here do not read it, and expected crashes (failed inits)
 * would otherwise clutter stderr. */
static gr_system *start(size_t max_payload)
{
    gr_config cfg = {.workers = 2,
                     .max_payload = max_payload,
                     .log_fn = quiet_log,
                     .no_signals = 1};
    return start_system(&cfg);
}

/* ---- the probe actor ------------------------------------------------------
 */

/* Message types the probe understands, and its reports. */
enum {
    MSG_NOOP = 1,    /* Counted. */
    MSG_COUNT,       /* Reply: rc[0] = NOOPs, rc[1] = other types seen. */
    MSG_REGISTER,    /* Payload: NUL-terminated name. Reply: rc[0]. */
    MSG_SELF,        /* Reply: ref = gr_self, sys = gr_ctx_system. */
    MSG_WRONGTHREAD, /* Reply: run, shutdown, inbox_open codes. */
    MSG_BADCALLS,    /* Reply: codes of refused tell/spawn/register calls. */
    MSG_SPAWN_CHILD, /* Payload: int init_rc. Reply: rc[0], ref = child. */
    MSG_EXIT,        /* Handler returns GR_STOP. */
    MSG_CRASH,       /* Handler returns GR_EFAILED. */
    MSG_REPLY,       /* probe -> sender of a request. */
    MSG_TERMINATED,  /* terminate -> inbox: rc[0] = reason, ref = self. */
    MSG_INIT,        /* init -> inbox: ref = self, sys. */
    MSG_RECV,        /* Payload: a gr_inbox * nobody else uses. Reply:
                        gr_inbox_recv's codes, waiting and polling. */
};

/* What a probe reports. */
struct reply {
    int32_t rc[12];
    gr_ref ref;
    uint64_t sys; /* A gr_system pointer, as an integer. */
};

/* Spawn argument of a probe; lent to init only. */
struct probe_arg {
    gr_ref inbox;      /* Where init and terminate report; may be none. */
    int init_rc;       /* What init returns. */
    const char *name;  /* Registered by init when non-NULL. */
    int register_null; /* Nonzero: init calls gr_register(ctx, NULL). */
    int self_msgs;     /* NOOPs init sends to its own actor. */
    int report_init;   /* Nonzero: init reports MSG_INIT to inbox. */
    gr_ref *self_out;  /* Init stores gr_self here (spawner's memory). */
    int *wrong_out;    /* Init and terminate store refused-call codes. */
};

struct probe {
    gr_ref inbox;
    int *wrong_out;
    int32_t noops, others;
};

/* Terminate calls of all probes, to check that a failed init skips it. */
static atomic_int probe_terminates;

static const gr_behaviour probe_b;

/* Tries the calls a callback must not make; codes go to out[0..3]. */
static void try_blocking_calls(gr_system *sys, int *out)
{
    gr_inbox *ib = (gr_inbox *)&out; /* A sentinel the call must keep. */
    out[0] = gr_inbox_open(sys, &ib);
    out[1] = ib == (gr_inbox *)&out;
    out[2] = gr_system_shutdown(sys);
    out[3] = gr_system_run(sys);
}

static void reply(gr_ctx *ctx, gr_ref to, uint32_t type, const struct reply *r)
{
    gr_tell(ctx, to, type, r, sizeof *r);
}

static int probe_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    struct probe *p = state;
    const struct probe_arg *a = arg;
    if (a == NULL || len != sizeof *a)
        return GR_OK;
    p->inbox = a->inbox;
    p->wrong_out = a->wrong_out;
    if (a->self_out != NULL)
        *a->self_out = gr_self(ctx);
    if (a->wrong_out != NULL)
        try_blocking_calls(gr_ctx_system(ctx), a->wrong_out);
    if (a->name != NULL || a->register_null) {
        int rc = gr_register(ctx, a->name);
        if (rc != GR_OK)
            return rc;
    }
    for (int i = 0; i < a->self_msgs; i++)
        gr_tell(ctx, gr_self(ctx), MSG_NOOP, NULL, 0);
    if (a->report_init && a->init_rc == GR_OK) {
        struct reply r = {.ref = gr_self(ctx),
                          .sys = (uintptr_t)gr_ctx_system(ctx)};
        reply(ctx, a->inbox, MSG_INIT, &r);
    }
    return a->init_rc;
}

/* Bad calls made from inside a handler; every one must be refused. */
static void bad_calls(gr_ctx *ctx, struct reply *r)
{
    static const gr_behaviour no_handle = {.name = "no_handle"};
    static const char buf[2 * SMALL_PAYLOAD];
    struct probe_arg pa = {0};
    gr_ref self = gr_self(ctx);
    r->rc[0] = gr_tell(ctx, self, MSG_NOOP, buf, 0);
    r->rc[1] = gr_tell(ctx, self, MSG_NOOP, NULL, 4);
    r->rc[2] = gr_tell(ctx, self, GR_MSG_RESERVED, NULL, 0);
    r->rc[3] = gr_tell(ctx, self, MSG_NOOP, buf, SMALL_PAYLOAD + 1);
    r->rc[4] = gr_tell(NULL, self, MSG_NOOP, NULL, 0);
    r->rc[5] = gr_spawn(ctx, NULL, NULL, 0, NULL);
    r->rc[6] = gr_spawn(ctx, &no_handle, NULL, 0, NULL);
    r->rc[7] = gr_spawn(ctx, &probe_b, NULL, sizeof pa, NULL);
    r->rc[8] = gr_spawn(NULL, &probe_b, &pa, sizeof pa, NULL);
    r->rc[9] = gr_register(NULL, "nobody");
    r->rc[10] = gr_tell(ctx, GR_REF_NONE, MSG_NOOP, NULL, 0);
    r->rc[11] = gr_tell(ctx, self, 0xFFFFFFFFu, NULL, 0);
}

static int probe_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct probe *p = state;
    struct reply r = {0};
    switch (m->type) {
    case MSG_NOOP:
        p->noops++;
        return GR_CONTINUE;
    case MSG_COUNT:
        r.rc[0] = p->noops;
        r.rc[1] = p->others;
        break;
    case MSG_REGISTER: {
        char name[GR_NAME_MAX + 16] = "";
        if (m->len > 0 && m->len <= sizeof name)
            memcpy(name, m->data, m->len);
        name[sizeof name - 1] = '\0';
        r.rc[0] = gr_register(ctx, name);
        break;
    }
    case MSG_SELF:
        r.ref = gr_self(ctx);
        r.sys = (uintptr_t)gr_ctx_system(ctx);
        break;
    case MSG_WRONGTHREAD: {
        int codes[4];
        try_blocking_calls(gr_ctx_system(ctx), codes);
        for (int i = 0; i < 4; i++)
            r.rc[i] = codes[i];
        break;
    }
    case MSG_BADCALLS:
        bad_calls(ctx, &r);
        break;
    case MSG_RECV: {
        gr_inbox *ib = NULL;
        gr_msg *got = (gr_msg *)&r; /* A sentinel the refusal must keep. */
        read_payload(m, &ib, sizeof ib);
        r.rc[0] = gr_inbox_recv(ib, &got, 100);
        r.rc[1] = got == (gr_msg *)&r;
        r.rc[2] = gr_inbox_recv(ib, &got, GR_DURATION_INFINITE);
        r.rc[3] = gr_inbox_recv(ib, &got, GR_DURATION_ZERO); /* No wait. */
        break;
    }
    case MSG_SPAWN_CHILD: {
        struct probe_arg a = {.inbox = p->inbox, .report_init = 1};
        read_payload(m, &a.init_rc, sizeof a.init_rc);
        r.ref = GR_REF_NONE;
        r.rc[0] = gr_spawn(ctx, &probe_b, &a, sizeof a, &r.ref);
        break;
    }
    case MSG_EXIT:
        return GR_STOP;
    case MSG_CRASH:
        return GR_EFAILED;
    default:
        p->others++;
        return GR_CONTINUE;
    }
    reply(ctx, m->from, MSG_REPLY, &r);
    return GR_CONTINUE;
}

static void probe_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    int reason = why->code;
    struct probe *p = state;
    atomic_fetch_add(&probe_terminates, 1);
    if (p->wrong_out != NULL)
        try_blocking_calls(gr_ctx_system(ctx), p->wrong_out + 4);
    if (!gr_ref_is_none(p->inbox)) {
        struct reply r = {.rc = {reason}, .ref = gr_self(ctx)};
        reply(ctx, p->inbox, MSG_TERMINATED, &r);
    }
}

static const gr_behaviour probe_b = {
    .name = "probe",
    .state_size = sizeof(struct probe),
    .init = probe_init,
    .handle = probe_handle,
    .terminate = probe_terminate,
};

/* Spawns a probe that reports to inbox (may be NULL). */
static int spawn_probe(gr_system *sys, gr_inbox *inbox, gr_ref *out)
{
    struct probe_arg a = {.inbox = inbox ? gr_inbox_ref(inbox) : GR_REF_NONE};
    return gr_system_spawn(sys, &probe_b, &a, sizeof a, out);
}

/* Sends a request from the inbox and waits for the probe's reply. */
static int call(gr_system *sys, gr_inbox *in, gr_ref to, uint32_t type,
                const void *data, size_t len, struct reply *out)
{
    int rc = gr_system_tell(sys, gr_inbox_ref(in), to, type, data, len);
    if (rc != GR_OK)
        return rc;
    return recv_exact(in, MSG_REPLY, out, sizeof *out);
}

/* Asks a probe to register name; returns gr_register's code. */
static int register_as(gr_system *sys, gr_inbox *in, gr_ref p, const char *name)
{
    struct reply r;
    int rc = call(sys, in, p, MSG_REGISTER, name, strlen(name) + 1, &r);
    return rc == GR_OK ? r.rc[0] : rc;
}

/* ---- cases --------------------------------------------------------------- */

/* gr_system_spawn refuses a NULL system, NULL behaviour, behaviour without
 * handle, and arg NULL with arg_len > 0, with GR_EINVAL and no spawn. */
static void test_spawn_bad_args(void)
{
    static const gr_behaviour no_handle = {.name = "no_handle"};
    gr_system *sys = start(0);
    CHECK(sys != NULL);
    uint64_t spawned = stats_of(sys).spawned;
    gr_ref ref = GR_REF_NONE;
    CHECK_EQ(gr_system_spawn(NULL, &probe_b, NULL, 0, &ref), GR_EINVAL);
    CHECK_EQ(gr_system_spawn(sys, NULL, NULL, 0, &ref), GR_EINVAL);
    CHECK_EQ(gr_system_spawn(sys, &no_handle, NULL, 0, &ref), GR_EINVAL);
    CHECK_EQ(gr_system_spawn(sys, &probe_b, NULL, 1, &ref), GR_EINVAL);
    CHECK(gr_ref_is_none(ref));
    CHECK_EQ(stats_of(sys).spawned, spawned);
    /* The same arguments done right succeed; out may be NULL. */
    CHECK_EQ(gr_system_spawn(sys, &probe_b, NULL, 0, NULL), GR_OK);
    CHECK_EQ(gr_system_spawn(sys, &probe_b, NULL, 0, &ref), GR_OK);
    CHECK(!gr_ref_is_none(ref));
    CHECK_EQ(stats_of(sys).spawned, spawned + 2);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* gr_system_tell and gr_stop check their arguments before anything else: bad
 * payload pairs and reserved types are GR_EINVAL, payloads over max_payload
 * GR_EMSGSIZE, and none of them is delivered or counted as a dead letter. */
static void test_send_bad_args(void)
{
    static const char buf[2 * SMALL_PAYLOAD];
    gr_system *sys = start(SMALL_PAYLOAD);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref p, none = GR_REF_NONE;
    CHECK_EQ(spawn_probe(sys, NULL, &p), GR_OK);

    CHECK_EQ(gr_system_tell(sys, none, p, MSG_NOOP, buf, 0), GR_EINVAL);
    CHECK_EQ(gr_system_tell(sys, none, p, MSG_NOOP, NULL, 1), GR_EINVAL);
    CHECK_EQ(gr_system_tell(sys, none, p, GR_MSG_RESERVED, NULL, 0), GR_EINVAL);
    CHECK_EQ(gr_system_tell(sys, none, p, GR_MSG_RESERVED + 1, NULL, 0),
             GR_EINVAL);
    CHECK_EQ(gr_system_tell(sys, none, p, 0xFFFFFFFFu, NULL, 0), GR_EINVAL);
    CHECK_EQ(gr_system_tell(sys, none, p, MSG_NOOP, buf, SMALL_PAYLOAD + 1),
             GR_EMSGSIZE);
    CHECK_EQ(gr_system_tell(sys, none, p, MSG_NOOP, buf, sizeof buf),
             GR_EMSGSIZE);
    CHECK_EQ(gr_system_tell(NULL, none, p, MSG_NOOP, NULL, 0), GR_EINVAL);
    CHECK_EQ(gr_stop(NULL, p), GR_EINVAL);
    /* Arguments are checked before the target is resolved. */
    gr_ref nobody = {987654321, 0, 1};
    CHECK_EQ(
        gr_system_tell(sys, none, nobody, MSG_NOOP, buf, SMALL_PAYLOAD + 1),
        GR_EMSGSIZE);
    CHECK_EQ(gr_system_tell(sys, none, nobody, GR_MSG_RESERVED, NULL, 0),
             GR_EINVAL);
    gr_stats st = stats_of(sys);
    CHECK_EQ(st.dead_letters[GR_DL_NO_ACTOR], 0);
    CHECK_EQ(st.dead_letters[GR_DL_STOPPED], 0);

    /* The limits themselves are accepted. */
    CHECK_EQ(gr_system_tell(sys, none, p, MSG_NOOP, buf, SMALL_PAYLOAD), GR_OK);
    CHECK_EQ(gr_system_tell(sys, none, p, MSG_NOOP, NULL, 0), GR_OK);
    CHECK_EQ(gr_system_tell(sys, none, p, GR_MSG_RESERVED - 1, buf, 1), GR_OK);
    struct reply r;
    CHECK_EQ(call(sys, in, p, MSG_COUNT, NULL, 0, &r), GR_OK);
    CHECK_EQ(r.rc[0], 2);
    CHECK_EQ(r.rc[1], 1);
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* Inside a handler gr_tell, gr_spawn and gr_register refuse bad arguments
 * with the documented codes, and nothing refused is delivered or spawned. */
static void test_bad_args_in_handler(void)
{
    gr_system *sys = start(SMALL_PAYLOAD);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref p;
    CHECK_EQ(spawn_probe(sys, NULL, &p), GR_OK);
    uint64_t spawned = stats_of(sys).spawned;
    struct reply r;
    CHECK_EQ(call(sys, in, p, MSG_BADCALLS, NULL, 0, &r), GR_OK);
    CHECK_EQ(r.rc[0], GR_EINVAL);
    CHECK_EQ(r.rc[1], GR_EINVAL);
    CHECK_EQ(r.rc[2], GR_EINVAL);
    CHECK_EQ(r.rc[3], GR_EMSGSIZE);
    CHECK_EQ(r.rc[4], GR_EINVAL);
    CHECK_EQ(r.rc[5], GR_EINVAL);
    CHECK_EQ(r.rc[6], GR_EINVAL);
    CHECK_EQ(r.rc[7], GR_EINVAL);
    CHECK_EQ(r.rc[8], GR_EINVAL);
    CHECK_EQ(r.rc[9], GR_EINVAL);
    CHECK_EQ(r.rc[10], GR_ENOACTOR);
    CHECK_EQ(r.rc[11], GR_EINVAL);
    CHECK_EQ(stats_of(sys).spawned, spawned);
    CHECK_EQ(stats_of(sys).dead_letters[GR_DL_NO_ACTOR], 1);
    CHECK_EQ(call(sys, in, p, MSG_COUNT, NULL, 0, &r), GR_OK);
    CHECK_EQ(r.rc[0], 0);
    CHECK_EQ(r.rc[1], 0);
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* Refs that name no actor (none, unknown serial, another node, another
 * incarnation of this node) give GR_ENOACTOR, one no_actor dead letter
 * each, and never reach the live actor whose serial they borrow. */
static void test_unknown_refs(void)
{
    gr_system *sys = start(0);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref p;
    CHECK_EQ(spawn_probe(sys, NULL, &p), GR_OK);
    gr_ref other_node = p, other_inc = p, unknown = p;
    other_node.node += 7;
    other_inc.incarnation += 1;
    unknown.serial += 1000000;
    const gr_ref bad[] = {
        GR_REF_NONE, unknown, other_inc, {UINT64_MAX, 0, p.incarnation}};
    const size_t nbad = sizeof bad / sizeof bad[0];
    for (size_t i = 0; i < nbad; i++) {
        CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, bad[i], MSG_NOOP, NULL, 0),
                 GR_ENOACTOR);
        CHECK_EQ(stats_of(sys).dead_letters[GR_DL_NO_ACTOR], i + 1);
        CHECK_EQ(gr_stop(sys, bad[i]), GR_ENOACTOR);
    }
    /* gr_stop to a ref that names no actor is no dead letter (docs/api.md:
     * "it is a signal"). */
    CHECK_EQ(stats_of(sys).dead_letters[GR_DL_NO_ACTOR], nbad);
    CHECK_EQ(stats_of(sys).dead_letters[GR_DL_STOPPED], 0);
    /* A node this system is not connected to: no connection. */
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, other_node, MSG_NOOP, NULL, 0),
             GR_ENOCONNECTION);
    CHECK_EQ(stats_of(sys).dead_letters[GR_DL_NODE_DOWN], 1);
    /* The live actor got none of them and was not stopped. */
    struct reply r;
    CHECK_EQ(call(sys, in, p, MSG_COUNT, NULL, 0, &r), GR_OK);
    CHECK_EQ(r.rc[0], 0);
    CHECK_EQ(stats_of(sys).exited, 0);
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* gr_system_start and the other system/inbox entry points refuse NULL
 * arguments with GR_EINVAL; the NULL-tolerant ones accept NULL. */
static void test_system_bad_args(void)
{
    gr_config cfg = {.workers = 1, .log_fn = quiet_log, .no_signals = 1};
    CHECK_EQ(gr_system_start(NULL, NULL), GR_EINVAL);
    CHECK_EQ(gr_system_start(&cfg, NULL), GR_EINVAL);
    gr_config bad_level = cfg;
    bad_level.log_level = (gr_log_level)(GR_LOG_OFF + 1);
    bad_level.log_level_set = 1;
    gr_system *sys = NULL;
    CHECK_EQ(gr_system_start(&bad_level, &sys), GR_EINVAL);
    CHECK(sys == NULL);
    CHECK_EQ(gr_system_run(NULL), GR_EINVAL);
    CHECK_EQ(gr_system_shutdown(NULL), GR_EINVAL);
    gr_system_stop(NULL); /* documented as harmless */

    CHECK_EQ(gr_system_start(&cfg, &sys), GR_OK);
    CHECK(sys != NULL);
    gr_inbox *in = NULL;
    gr_ref out = GR_REF_NONE;
    CHECK_EQ(gr_inbox_open(NULL, &in), GR_EINVAL);
    CHECK_EQ(gr_inbox_open(sys, NULL), GR_EINVAL);
    CHECK(in == NULL);
    CHECK_EQ(gr_whereis(NULL, "x", &out), GR_EINVAL);
    CHECK_EQ(gr_whereis(sys, "x", NULL), GR_EINVAL);
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(NULL, &m, 0), GR_EINVAL);
    CHECK_EQ(gr_inbox_recv(in, NULL, 0), GR_EINVAL);
    CHECK_EQ(gr_inbox_recv(in, &m, GR_DURATION_ZERO), GR_ETIMEDOUT);
    CHECK_EQ(gr_inbox_recv(in, &m, GR_DURATION_DEFAULT - 1), GR_EINVAL);
    char name[GR_NAME_MAX + 1] = "x";
    CHECK_EQ(gr_node_name(sys, name, sizeof name), GR_OK);
    CHECK(strcmp(name, "root") == 0);
    CHECK_EQ(gr_node_name(sys, name, 4),
             GR_ENAMETOOLONG); /* No room for NUL. */
    CHECK_EQ(gr_node_name(NULL, name, sizeof name), GR_EINVAL);
    CHECK_EQ(gr_node_name(sys, NULL, 0), GR_EINVAL);
    double t0 = test_now();
    CHECK_EQ(gr_inbox_recv(in, &m, 30), GR_ETIMEDOUT);
    CHECK(test_now() - t0 >= 0.025);
    CHECK(m == NULL);
    gr_msg_free(NULL);
    gr_inbox_close(NULL);
    gr_inbox_close(in);
    CHECK(gr_ref_is_none(gr_self(NULL)));
    CHECK(gr_ctx_system(NULL) == NULL);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* A registered name resolves to its actor and messages sent to the
 * resolved ref reach it; an unknown name is GR_ENOTFOUND. */
static void test_names_happy_path(void)
{
    gr_system *sys = start(0);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref p, found = GR_REF_NONE;
    CHECK_EQ(spawn_probe(sys, NULL, &p), GR_OK);
    CHECK_EQ(gr_whereis(sys, "alpha", &found), GR_ENOTFOUND);
    CHECK(gr_ref_is_none(found));
    CHECK_EQ(register_as(sys, in, p, "alpha"), GR_OK);
    CHECK_EQ(gr_whereis(sys, "alpha", &found), GR_OK);
    CHECK(gr_ref_eq(found, p));
    CHECK_EQ(gr_whereis(sys, "Alpha", &found), GR_ENOTFOUND);
    CHECK_EQ(gr_whereis(sys, "alph", &found), GR_ENOTFOUND);
    CHECK_EQ(gr_whereis(sys, "", &found), GR_EINVAL); /* Not a name. */
    CHECK(gr_ref_eq(found, p));
    /* A name registered in init is visible as soon as spawn returns. */
    struct probe_arg a = {.name = "beta"};
    gr_ref q;
    CHECK_EQ(gr_system_spawn(sys, &probe_b, &a, sizeof a, &q), GR_OK);
    CHECK_EQ(gr_whereis(sys, "beta", &found), GR_OK);
    CHECK(gr_ref_eq(found, q));
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, found, MSG_NOOP, NULL, 0), GR_OK);
    struct reply r;
    CHECK_EQ(call(sys, in, found, MSG_COUNT, NULL, 0, &r), GR_OK);
    CHECK_EQ(r.rc[0], 1);
    /* Many names at once (the registry grows) all stay resolvable. */
    enum { MANY = 200 };
    gr_ref refs[MANY];
    char name[32];
    for (int i = 0; i < MANY; i++) {
        snprintf(name, sizeof name, "many-%d", i);
        struct probe_arg b = {.name = name};
        CHECK_EQ(gr_system_spawn(sys, &probe_b, &b, sizeof b, &refs[i]), GR_OK);
    }
    for (int i = 0; i < MANY; i++) {
        snprintf(name, sizeof name, "many-%d", i);
        CHECK_EQ(gr_whereis(sys, name, &found), GR_OK);
        CHECK(gr_ref_eq(found, refs[i]));
    }
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* GR_EEXIST for a name another actor holds and for an actor that already
 * has a name; the refused registration changes nothing. */
static void test_names_taken(void)
{
    gr_system *sys = start(0);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref p, q, found;
    CHECK_EQ(spawn_probe(sys, NULL, &p), GR_OK);
    CHECK_EQ(spawn_probe(sys, NULL, &q), GR_OK);
    CHECK_EQ(register_as(sys, in, p, "taken"), GR_OK);
    CHECK_EQ(register_as(sys, in, q, "taken"), GR_EEXIST);
    CHECK_EQ(gr_whereis(sys, "taken", &found), GR_OK);
    CHECK(gr_ref_eq(found, p));
    /* One name per actor: the same name again, or a second name. */
    CHECK_EQ(register_as(sys, in, p, "taken"), GR_EEXIST);
    CHECK_EQ(register_as(sys, in, p, "second"), GR_EEXIST);
    CHECK_EQ(gr_whereis(sys, "second", &found), GR_ENOTFOUND);
    /* q's failed attempt did not use up its one name. */
    CHECK_EQ(register_as(sys, in, q, "second"), GR_OK);
    CHECK_EQ(gr_whereis(sys, "second", &found), GR_OK);
    CHECK(gr_ref_eq(found, q));
    /* A spawn whose init registers a taken name fails with GR_EEXIST. */
    struct probe_arg a = {.name = "taken"};
    uint64_t exited = stats_of(sys).exited;
    CHECK_EQ(gr_system_spawn(sys, &probe_b, &a, sizeof a, NULL), GR_EEXIST);
    CHECK_EQ(stats_of(sys).exited, exited + 1);
    CHECK_EQ(gr_whereis(sys, "taken", &found), GR_OK);
    CHECK(gr_ref_eq(found, p));
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* One rule for names wherever one enters (register, whereis, tell by name,
 * "name@node"): empty, NULL, '@'-containing or unprintable (control
 * characters, malformed UTF-8) names are GR_EINVAL; GR_NAME_MAX bytes is
 * accepted and one more is GR_ENAMETOOLONG; refusals leave no trace. */
static void test_names_invalid(void)
{
    gr_system *sys = start(0);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref p, found;
    CHECK_EQ(spawn_probe(sys, NULL, &p), GR_OK);
    CHECK_EQ(register_as(sys, in, p, ""), GR_EINVAL);
    CHECK_EQ(register_as(sys, in, p, "a@b"), GR_EINVAL);
    CHECK_EQ(register_as(sys, in, p, "@"), GR_EINVAL);
    CHECK_EQ(register_as(sys, in, p, "trailing@"), GR_EINVAL);
    /* Bytes that would forge or break a log line (text or JSON): control
     * characters, DEL, C1 controls, malformed or overlong UTF-8, surrogates.
     * Well-formed UTF-8 is a name like any other. */
    static const char *const bad[] = {
        "a\nb",     "a\rb",         "\t",           "\x1b[31m",
        "a\x7f",    "\xc2\x85",     "\xff",         "\xc3",
        "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "ok\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(register_as(sys, in, p, bad[i]), GR_EINVAL);
        CHECK_EQ(gr_whereis(sys, bad[i], &found), GR_EINVAL);
        CHECK_EQ(
            gr_system_tell_name(sys, GR_REF_NONE, bad[i], MSG_NOOP, NULL, 0),
            GR_EINVAL);
    }
    /* One rule for a malformed name, whichever call it enters by. */
    CHECK_EQ(gr_whereis(sys, "a@b", &found), GR_EINVAL);
    CHECK_EQ(gr_whereis(sys, NULL, &found), GR_EINVAL);
    /* A node may be an Erlang node's "alive@host" (grove/dist.h), but
     * not more '@' than that, nor an empty part. */
    const char *bad_nodes[] = {"a@b@c@d", "a@@c", "a@b@", "@b@c"};
    for (size_t i = 0; i < sizeof bad_nodes / sizeof bad_nodes[0]; i++)
        CHECK_EQ(gr_system_tell_name(sys, GR_REF_NONE, bad_nodes[i], MSG_NOOP,
                                     NULL, 0),
                 GR_EINVAL);
    /* Well formed; with distribution off, no connection. */
    CHECK_EQ(gr_system_tell_name(sys, GR_REF_NONE, "a@b@c", MSG_NOOP, NULL, 0),
             GR_ENOCONNECTION);
    CHECK_EQ(gr_whereis_any(sys, "a@b@c@d", GR_DURATION_DEFAULT, &found),
             GR_EINVAL);
    CHECK_EQ(gr_whereis_any(sys, "a\n@b", GR_DURATION_DEFAULT, &found),
             GR_EINVAL);
    CHECK_EQ(register_as(sys, in, p, "caf\xc3\xa9-\xe2\x82\xac"), GR_OK);
    char longest[GR_NAME_MAX + 2];
    memset(longest, 'n', sizeof longest);
    longest[GR_NAME_MAX + 1] = '\0'; /* GR_NAME_MAX + 1 bytes */
    CHECK_EQ(register_as(sys, in, p, longest), GR_ENAMETOOLONG);
    CHECK_EQ(gr_whereis(sys, longest, &found), GR_ENAMETOOLONG);
    longest[GR_NAME_MAX] = '\0'; /* exactly GR_NAME_MAX bytes */
    gr_ref other;
    CHECK_EQ(spawn_probe(sys, NULL, &other), GR_OK); /* p has a name now. */
    CHECK_EQ(register_as(sys, in, other, longest), GR_OK);
    CHECK_EQ(gr_whereis(sys, longest, &found), GR_OK);
    CHECK(gr_ref_eq(found, other));
    /* NULL is refused too (a spawn whose init tries it). */
    struct probe_arg a = {.register_null = 1};
    CHECK_EQ(gr_system_spawn(sys, &probe_b, &a, sizeof a, NULL), GR_EINVAL);
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* Waits for p's terminate report and for the exit to be counted. */
static int wait_gone(gr_system *sys, gr_inbox *in, gr_ref p, uint64_t exited,
                     int *reason)
{
    struct reply r;
    int rc = recv_exact(in, MSG_TERMINATED, &r, sizeof r);
    if (rc != GR_OK)
        return rc;
    if (!gr_ref_eq(r.ref, p))
        return GR_EINVAL;
    *reason = r.rc[0];
    return wait_exited(sys, exited) >= exited ? GR_OK : GR_ETIMEDOUT;
}

/* A name is removed when its actor exits, crashed, stopped or with a
 * failed init, and a new actor can then register it (a normal exit is
 * covered by test_handler_stop_exits_normally). */
static void test_names_removed_on_exit(void)
{
    gr_system *sys = start(0);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    static const int expected[] = {GR_EFAILED, GR_ESHUTDOWN};
    gr_ref prev = GR_REF_NONE;
    for (int how = 0; how < 2; how++) {
        gr_ref p, found;
        CHECK_EQ(spawn_probe(sys, in, &p), GR_OK);
        CHECK(!gr_ref_eq(p, prev));
        CHECK_EQ(register_as(sys, in, p, "worker"), GR_OK);
        CHECK_EQ(gr_whereis(sys, "worker", &found), GR_OK);
        CHECK(gr_ref_eq(found, p));
        uint64_t exited = stats_of(sys).exited;
        if (how == 0)
            CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, p, MSG_CRASH, NULL, 0),
                     GR_OK);
        else
            CHECK_EQ(gr_stop(sys, p), GR_OK);
        int reason = 1;
        CHECK_EQ(wait_gone(sys, in, p, exited + 1, &reason), GR_OK);
        CHECK_EQ(reason, expected[how]);
        CHECK_EQ(gr_whereis(sys, "worker", &found), GR_ENOTFOUND);
        prev = p;
    }
    /* A name registered by an init that then fails is removed as well. */
    struct probe_arg a = {.name = "worker", .init_rc = GR_ENOMEM};
    gr_ref found;
    CHECK_EQ(gr_system_spawn(sys, &probe_b, &a, sizeof a, NULL), GR_ENOMEM);
    CHECK_EQ(gr_whereis(sys, "worker", &found), GR_ENOTFOUND);
    a.init_rc = GR_OK;
    gr_ref last;
    CHECK_EQ(gr_system_spawn(sys, &probe_b, &a, sizeof a, &last), GR_OK);
    CHECK_EQ(gr_whereis(sys, "worker", &found), GR_OK);
    CHECK(gr_ref_eq(found, last));
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* Every error code has a non-NULL message and a distinct "GR_" name that
 * matches the table; unknown codes get a fallback that is neither. */
static void test_error_strings(void)
{
    static const int codes[] = {
#define CODE(name, value, text) GR_##name,
        GR_ERRNO_MAP(CODE)
#undef CODE
    };
    static const char *const names[] = {
#define NAME(name, value, text) "GR_" #name,
        GR_ERRNO_MAP(NAME)
#undef NAME
    };
    static const char *const texts[] = {
#define TEXT(name, value, text) text,
        GR_ERRNO_MAP(TEXT)
#undef TEXT
    };
    const size_t n = sizeof codes / sizeof codes[0];
    CHECK_EQ(codes[0], GR_OK);
    CHECK_EQ(GR_OK, 0);
    for (size_t i = 0; i < n; i++) {
        const char *s = gr_strerror(codes[i]);
        const char *e = gr_errname(codes[i]);
        CHECK(s != NULL && e != NULL);
        CHECK(s[0] != '\0');
        CHECK(strcmp(s, texts[i]) == 0);
        CHECK(strcmp(e, names[i]) == 0);
        CHECK(i == 0 || codes[i] < 0);
        for (size_t k = 0; k < i; k++) {
            CHECK(codes[k] != codes[i]);
            CHECK(strcmp(gr_errname(codes[k]), e) != 0);
            CHECK(strcmp(gr_strerror(codes[k]), s) != 0);
        }
    }
    CHECK(strcmp(gr_errname(GR_ENOACTOR), "GR_ENOACTOR") == 0);
    CHECK(strcmp(gr_errname(GR_EWRONGTHREAD), "GR_EWRONGTHREAD") == 0);
    const int unknown[] = {1, GR_STOP + 1, -99, -1000, INT_MIN, INT_MAX};
    for (size_t u = 0; u < sizeof unknown / sizeof unknown[0]; u++) {
        const char *s = gr_strerror(unknown[u]);
        const char *e = gr_errname(unknown[u]);
        CHECK(s != NULL && e != NULL);
        CHECK(s[0] != '\0' && e[0] != '\0');
        for (size_t i = 0; i < n; i++) {
            CHECK(strcmp(s, texts[i]) != 0);
            CHECK(strcmp(e, names[i]) != 0);
        }
    }
    CHECK(strcmp(gr_log_level_name(GR_LOG_DEBUG), "debug") == 0);
    CHECK(strcmp(gr_log_level_name(GR_LOG_ERROR), "error") == 0);
    CHECK(gr_log_level_name((gr_log_level)99) != NULL);
}

/* A failing init makes spawn return init's negative code (a positive one
 * becomes GR_EINIT), skips terminate, and leaves no actor behind: the ref
 * init saw is dead and messages init queued become stopped dead letters. */
static void test_init_failure(void)
{
    gr_system *sys = start(0);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    static const int init_rc[] = {GR_ENOMEM, GR_EFAILED, -100, 3};
    static const int want_rc[] = {GR_ENOMEM, GR_EFAILED, -100, GR_EINIT};
    for (int i = 0; i < 4; i++) {
        gr_stats before = stats_of(sys);
        int terminates = atomic_load(&probe_terminates);
        gr_ref seen = GR_REF_NONE, out = GR_REF_NONE;
        struct probe_arg a = {.inbox = gr_inbox_ref(in),
                              .init_rc = init_rc[i],
                              .self_msgs = 2,
                              .self_out = &seen};
        CHECK_EQ(gr_system_spawn(sys, &probe_b, &a, sizeof a, &out),
                 want_rc[i]);
        CHECK(gr_ref_is_none(out));
        CHECK(!gr_ref_is_none(seen));
        CHECK_EQ(atomic_load(&probe_terminates), terminates);
        gr_stats after = stats_of(sys);
        CHECK_EQ(after.spawned, before.spawned + 1);
        CHECK_EQ(after.exited, before.exited + 1);
        CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, seen, MSG_NOOP, NULL, 0),
                 GR_ENOACTOR);
        CHECK_EQ(gr_stop(sys, seen), GR_ENOACTOR);
        CHECK_EQ(stats_of(sys).dead_letters[GR_DL_NO_ACTOR],
                 before.dead_letters[GR_DL_NO_ACTOR] + 1);
        CHECK_EQ(wait_dead(sys, GR_DL_STOPPED,
                           before.dead_letters[GR_DL_STOPPED] + 2),
                 before.dead_letters[GR_DL_STOPPED] + 2);
    }
    /* From inside a handler, gr_spawn returns init's code the same way. */
    gr_ref p;
    CHECK_EQ(spawn_probe(sys, in, &p), GR_OK);
    int bad = GR_ENOTFOUND;
    struct reply r;
    CHECK_EQ(call(sys, in, p, MSG_SPAWN_CHILD, &bad, sizeof bad, &r), GR_OK);
    CHECK_EQ(r.rc[0], GR_ENOTFOUND);
    CHECK(gr_ref_is_none(r.ref));
    /* Nothing else arrived: no terminate report from the failed child. */
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(in, &m, 50), GR_ETIMEDOUT);
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* gr_self and gr_ctx_system inside init, handle and terminate name the
 * actor spawn returned and its system, also for a child spawned by a
 * handler. */
static void test_self_and_system_in_callbacks(void)
{
    gr_system *sys = start(0);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    struct probe_arg a = {.inbox = gr_inbox_ref(in), .report_init = 1};
    gr_ref p;
    CHECK_EQ(gr_system_spawn(sys, &probe_b, &a, sizeof a, &p), GR_OK);
    struct reply r;
    CHECK_EQ(recv_exact(in, MSG_INIT, &r, sizeof r), GR_OK);
    CHECK(gr_ref_eq(r.ref, p));
    CHECK(r.sys == (uintptr_t)sys);
    CHECK_EQ(call(sys, in, p, MSG_SELF, NULL, 0, &r), GR_OK);
    CHECK(gr_ref_eq(r.ref, p));
    CHECK(r.sys == (uintptr_t)sys);
    /* A child spawned by the handler: its own init sees the ref the
     * parent got back. */
    int ok = GR_OK;
    CHECK_EQ(gr_system_tell(sys, gr_inbox_ref(in), p, MSG_SPAWN_CHILD, &ok,
                            sizeof ok),
             GR_OK);
    struct reply child_init, parent;
    CHECK_EQ(recv_exact(in, MSG_INIT, &child_init, sizeof child_init), GR_OK);
    CHECK_EQ(recv_exact(in, MSG_REPLY, &parent, sizeof parent), GR_OK);
    CHECK_EQ(parent.rc[0], GR_OK);
    CHECK(gr_ref_eq(parent.ref, child_init.ref));
    CHECK(!gr_ref_eq(parent.ref, p));
    CHECK(child_init.sys == (uintptr_t)sys);
    CHECK_EQ(call(sys, in, parent.ref, MSG_SELF, NULL, 0, &r), GR_OK);
    CHECK(gr_ref_eq(r.ref, parent.ref));
    /* terminate sees the same ref. */
    CHECK_EQ(gr_stop(sys, p), GR_OK);
    CHECK_EQ(recv_exact(in, MSG_TERMINATED, &r, sizeof r), GR_OK);
    CHECK(gr_ref_eq(r.ref, p));
    CHECK_EQ(r.rc[0], GR_ESHUTDOWN);
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

/* gr_system_run, gr_system_shutdown and gr_inbox_open return
 * GR_EWRONGTHREAD from inside handle, init and terminate (the last two run
 * on the spawning and the shutting-down thread), and have no effect. */
static void test_wrong_thread(void)
{
    gr_system *sys = start(0);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref p;
    CHECK_EQ(spawn_probe(sys, in, &p), GR_OK);
    struct reply r;
    CHECK_EQ(call(sys, in, p, MSG_WRONGTHREAD, NULL, 0, &r), GR_OK);
    CHECK_EQ(r.rc[0], GR_EWRONGTHREAD);
    CHECK_EQ(r.rc[1], 1); /* inbox pointer left alone */
    CHECK_EQ(r.rc[2], GR_EWRONGTHREAD);
    CHECK_EQ(r.rc[3], GR_EWRONGTHREAD);
    /* Waiting on an inbox would stall the worker: refused; and a handler
     * runs on a worker thread, which owns no inbox, so a poll of this
     * thread's inbox is refused too (only the owner receives). */
    gr_inbox *idle;
    CHECK_EQ(gr_inbox_open(sys, &idle), GR_OK);
    CHECK_EQ(call(sys, in, p, MSG_RECV, &idle, sizeof idle, &r), GR_OK);
    gr_inbox_close(idle);
    CHECK_EQ(r.rc[0], GR_EWRONGTHREAD);
    CHECK_EQ(r.rc[1], 1);
    CHECK_EQ(r.rc[2], GR_EWRONGTHREAD);
    CHECK_EQ(r.rc[3], GR_EWRONGTHREAD);
    /* The system is unharmed. */
    CHECK_EQ(call(sys, in, p, MSG_COUNT, NULL, 0, &r), GR_OK);
    /* init (on this thread) and terminate (run by shutdown, also on this
     * thread) are callbacks too. */
    int codes[8] = {0};
    struct probe_arg a = {.wrong_out = codes};
    uint64_t spawned = stats_of(sys).spawned;
    CHECK_EQ(gr_system_spawn(sys, &probe_b, &a, sizeof a, NULL), GR_OK);
    CHECK_EQ(codes[0], GR_EWRONGTHREAD);
    CHECK_EQ(codes[1], 1);
    CHECK_EQ(codes[2], GR_EWRONGTHREAD);
    CHECK_EQ(codes[3], GR_EWRONGTHREAD);
    CHECK_EQ(stats_of(sys).spawned, spawned + 1); /* no inbox was opened */
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
    CHECK_EQ(codes[4], GR_EWRONGTHREAD);
    CHECK_EQ(codes[5], 1);
    CHECK_EQ(codes[6], GR_EWRONGTHREAD);
    CHECK_EQ(codes[7], GR_EWRONGTHREAD);
}

static void *close_from_here(void *inbox)
{
    gr_inbox_close(inbox);
    return NULL;
}

/* Runs fn in a child process with its stderr piped here; whether it
 * aborted (SIGABRT) with a line holding words. */
static bool aborts_saying(void (*fn)(void), const char *words)
{
    int err[2];
    if (pipe(err) != 0)
        return false;
    pid_t pid = fork();
    if (pid == 0) {
        close(err[0]);
        dup2(err[1], 2);
        fn();
        _exit(0); /* It did not abort. */
    }
    close(err[1]);
    char said[4096];
    size_t len = 0;
    ssize_t k;
    while (len < sizeof said - 1 &&
           (k = read(err[0], said + len, sizeof said - 1 - len)) > 0)
        len += (size_t)k;
    said[len] = '\0';
    close(err[0]);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return false;
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT ||
        strstr(said, words) == NULL)
        fprintf(stderr, "  child: status %#x, said: %s\n", status, said);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
           strstr(said, words) != NULL;
}

/* In a child: an inbox closed from a thread that did not open it. */
static void close_inbox_from_another_thread(void)
{
    gr_system *sys = start(0);
    gr_inbox *in;
    pthread_t t;
    if (sys == NULL || gr_inbox_open(sys, &in) != GR_OK ||
        pthread_create(&t, NULL, close_from_here, in) != 0)
        _exit(3);
    pthread_join(t, NULL);
}

/* An inbox closed by a thread that is not its owner would be freed under
 * the owner's wait: a programmer error, so the program aborts with a
 * line that says what was wrong (in a child process). */
static void test_inbox_close_by_another_thread_aborts(void)
{
    CHECK(aborts_saying(close_inbox_from_another_thread,
                        "only the thread that opened it may close it"));
}

/* A handler that keeps its ctx (for timer_with_a_kept_ctx). */
static gr_ctx *kept_ctx;

static int keep_ctx_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    kept_ctx = ctx;
    return gr_reply(ctx, m, 1, NULL, 0);
}

static const gr_behaviour keep_ctx_b = {.name = "keep_ctx",
                                        .handle = keep_ctx_handle};

/* In a child: has an actor keep its ctx past a handler call (kept_ctx),
 * and returns to use it from this thread. */
static void keep_a_ctx(void)
{
    gr_system *sys = start(0);
    gr_ref a;
    gr_msg *reply = NULL;
    if (sys == NULL ||
        gr_system_spawn(sys, &keep_ctx_b, NULL, 0, &a) != GR_OK ||
        gr_call(sys, a, 1, NULL, 0, 5000, &reply) != GR_OK)
        _exit(3);
    gr_msg_free(reply);
}

/* In a child: a timer started with a kept ctx. */
static void timer_with_a_kept_ctx(void)
{
    keep_a_ctx();
    uint64_t id = 0;
    (void)gr_timer_after(kept_ctx, 10, 1, NULL, 0, &id);
}

/* In a child: a timer cancelled with a kept ctx. */
static void timer_cancel_with_a_kept_ctx(void)
{
    keep_a_ctx();
    (void)gr_timer_cancel(kept_ctx, 1);
}

/* A ctx kept past its callback and used from another thread would race
 * with its actor: timers abort saying so, as sends do, instead of
 * starting a timer behind the actor's back. */
static void test_timer_with_a_kept_ctx_aborts(void)
{
    CHECK(aborts_saying(timer_with_a_kept_ctx,
                        "a gr_ctx is valid only in the callback"));
    CHECK(aborts_saying(timer_cancel_with_a_kept_ctx,
                        "a gr_ctx is valid only in the callback"));
}

/* A handler returning GR_STOP makes its actor exit at once with reason
 * GR_OK: terminate runs, later messages are not handled, its name goes and
 * its ref stops resolving. */
static void test_handler_stop_exits_normally(void)
{
    gr_system *sys = start(0);
    CHECK(sys != NULL);
    gr_inbox *in;
    CHECK_EQ(gr_inbox_open(sys, &in), GR_OK);
    gr_ref p, found;
    CHECK_EQ(spawn_probe(sys, in, &p), GR_OK);
    CHECK_EQ(register_as(sys, in, p, "stopper"), GR_OK);
    uint64_t exited = stats_of(sys).exited;
    CHECK_EQ(gr_system_tell(sys, GR_REF_NONE, p, MSG_EXIT, NULL, 0), GR_OK);
    int reason = 1;
    CHECK_EQ(wait_gone(sys, in, p, exited + 1, &reason), GR_OK);
    CHECK_EQ(reason, GR_OK);
    CHECK_EQ(gr_whereis(sys, "stopper", &found), GR_ENOTFOUND);
    CHECK_EQ(gr_system_tell(sys, gr_inbox_ref(in), p, MSG_COUNT, NULL, 0),
             GR_ENOACTOR);
    gr_msg *m = NULL;
    CHECK_EQ(gr_inbox_recv(in, &m, 50), GR_ETIMEDOUT);
    /* The name is free for a new actor. */
    gr_ref q;
    CHECK_EQ(spawn_probe(sys, in, &q), GR_OK);
    CHECK_EQ(register_as(sys, in, q, "stopper"), GR_OK);
    CHECK_EQ(gr_whereis(sys, "stopper", &found), GR_OK);
    CHECK(gr_ref_eq(found, q));
    gr_inbox_close(in);
    CHECK_EQ(gr_system_shutdown(sys), GR_OK);
}

TEST_MAIN(TEST_CASE(test_spawn_bad_args), TEST_CASE(test_send_bad_args),
          TEST_CASE(test_bad_args_in_handler), TEST_CASE(test_unknown_refs),
          TEST_CASE(test_system_bad_args), TEST_CASE(test_names_happy_path),
          TEST_CASE(test_names_taken), TEST_CASE(test_names_invalid),
          TEST_CASE(test_names_removed_on_exit), TEST_CASE(test_error_strings),
          TEST_CASE(test_init_failure),
          TEST_CASE(test_self_and_system_in_callbacks),
          TEST_CASE(test_wrong_thread),
          TEST_CASE(test_handler_stop_exits_normally),
          TEST_CASE(test_inbox_close_by_another_thread_aborts),
          TEST_CASE(test_timer_with_a_kept_ctx_aborts))
