/*
 * The msgpack helpers (<grove/msgpack.h>): payloads packed into a
 * msgpack_sbuffer round-trip from a thread to an actor, actor to actor,
 * and through ask/reply and call; gr_msg_unpack() reads exactly one object
 * in place and refuses anything else (empty, truncated, trailing bytes,
 * not msgpack, too deep, counts larger than the payload) with GR_EPROTO;
 * bad arguments are GR_EINVAL and oversized payloads GR_EMSGSIZE. Public
 * API only; every wait is bounded by WAIT_MS.
 */
#include <grove/grove.h>
#include <grove/msgpack.h>

#include "helpers.h"

/* max_payload of every system here: small, so an oversized payload is
 * cheap to make. */
#define SMALL_PAYLOAD 256
/* Most return codes a report carries. */
#define RC_MAX 8

enum {
    MSG_DATA = 1, /* Any object: a forwarder wraps it and passes it on. */
    MSG_CHECK,    /* Any payload: the server reports MSG_RC {unpack's code,
                     whether a str was read in place}. */
    MSG_BADARGS,  /* The server tries refused calls; MSG_RC with codes. */
    MSG_DOUBLE,   /* Request: an int. Reply: MSG_DOUBLED, twice it. */
    MSG_DOUBLED,
    MSG_BIGREPLY, /* Request: the server tries an oversized reply, then
                     replies MSG_RC {that code}. */
    MSG_GO,       /* To an asker: an int to ask the server to double. */
    MSG_RC,       /* Report: an array of ints. */
    MSG_NOOP,     /* Ignored. */
};

/* ---- packing ------------------------------------------------------------- */

/* A buffer with its packer. */
struct packed {
    msgpack_sbuffer buf;
    msgpack_packer pk;
};

static void packed_init(struct packed *p)
{
    msgpack_sbuffer_init(&p->buf);
    msgpack_packer_init(&p->pk, &p->buf, msgpack_sbuffer_write);
}

/* Packs an array of n ints into p, which is emptied first. */
static void pack_ints(struct packed *p, const int64_t *v, size_t n)
{
    msgpack_sbuffer_clear(&p->buf);
    msgpack_pack_array(&p->pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_int64(&p->pk, v[i]);
}

/* Packs a str of n 'x' bytes into p, which is emptied first. */
static void pack_long_str(struct packed *p, size_t n)
{
    char s[2 * SMALL_PAYLOAD];
    memset(s, 'x', sizeof s);
    msgpack_sbuffer_clear(&p->buf);
    msgpack_pack_str_with_body(&p->pk, s, n < sizeof s ? n : sizeof s);
}

/* Tells to an array of n ints, from the current actor. */
static int tell_ints(gr_ctx *ctx, gr_ref to, uint32_t type, const int64_t *v,
                     size_t n)
{
    struct packed p;
    packed_init(&p);
    pack_ints(&p, v, n);
    int rc = gr_tell_msgpack(ctx, to, type, &p.buf);
    msgpack_sbuffer_destroy(&p.buf);
    return rc;
}

/* Returns element i of array o as an integer, or INT64_MIN when there is
 * no such integer. */
static int64_t int_at(const msgpack_object *o, uint32_t i)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || i >= o->via.array.size)
        return INT64_MIN;
    const msgpack_object *e = &o->via.array.ptr[i];
    if (e->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)e->via.u64;
    if (e->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return e->via.i64;
    return INT64_MIN;
}

/* Returns 1 when o is the str s. */
static int is_str(const msgpack_object *o, const char *s)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* Unpacks the int payload of m into *v; GR_EPROTO if it is not an int. */
static int unpack_int(const gr_msg *m, int64_t *v)
{
    msgpack_unpacked u;
    int rc = gr_msg_unpack(m, &u);
    if (rc == GR_OK) {
        if (u.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            *v = (int64_t)u.data.via.u64;
        else if (u.data.type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            *v = u.data.via.i64;
        else
            rc = GR_EPROTO;
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* ---- a forwarder: wraps what it gets as [name, object], passes it on ---- */

struct fwd_arg {
    char name[8];
    gr_ref next;
};

static int fwd_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    return read_arg(state, sizeof(struct fwd_arg), arg, len);
}

static int fwd_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    const struct fwd_arg *f = state;
    if (m->type != MSG_DATA)
        return GR_EUNHANDLED;
    msgpack_unpacked u;
    int rc = gr_msg_unpack(m, &u);
    if (rc != GR_OK)
        return rc; /* Bad bytes crash the forwarder with GR_EPROTO. */
    struct packed p;
    packed_init(&p);
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_str_with_body(&p.pk, f->name, strlen(f->name));
    msgpack_pack_object(&p.pk, u.data); /* Reads m's payload: still valid. */
    msgpack_unpacked_destroy(&u);
    rc = gr_tell_msgpack(ctx, f->next, MSG_DATA, &p.buf);
    msgpack_sbuffer_destroy(&p.buf);
    return rc;
}

static const gr_behaviour fwd_b = {
    .name = "fwd",
    .state_size = sizeof(struct fwd_arg),
    .init = fwd_init,
    .handle = fwd_handle,
};

/* ---- the server: checks payloads, doubles, tries refused calls --------- */

/* Tries the calls an actor may not make; codes in rc, count returned. */
static size_t bad_calls(gr_ctx *ctx, const gr_msg *m, int64_t *rc)
{
    gr_ref self = gr_self(ctx);
    struct packed small, big, cleared;
    packed_init(&small);
    packed_init(&big);
    packed_init(&cleared);
    msgpack_pack_int(&small.pk, 7);
    pack_long_str(&big, SMALL_PAYLOAD + 1);
    msgpack_pack_int(&cleared.pk, 7);
    msgpack_sbuffer_clear(&cleared.buf); /* Size 0, data kept. */
    size_t n = 0;
    rc[n++] = gr_tell_msgpack(ctx, self, MSG_NOOP, NULL);
    rc[n++] = gr_ask_msgpack(ctx, self, MSG_NOOP, NULL, WAIT_MS, NULL);
    rc[n++] = gr_reply_msgpack(ctx, m, MSG_NOOP, NULL);
    rc[n++] =
        gr_reply_msgpack(ctx, m, MSG_NOOP, &small.buf); /* Not a request. */
    rc[n++] = gr_tell_msgpack(ctx, self, MSG_NOOP, &big.buf);
    rc[n++] = gr_ask_msgpack(ctx, self, MSG_NOOP, &big.buf, WAIT_MS, NULL);
    rc[n++] = gr_tell_msgpack(NULL, self, MSG_NOOP, &small.buf);
    rc[n++] =
        gr_tell_msgpack(ctx, self, MSG_NOOP, &cleared.buf); /* No payload. */
    msgpack_sbuffer_destroy(&small.buf);
    msgpack_sbuffer_destroy(&big.buf);
    msgpack_sbuffer_destroy(&cleared.buf);
    return n;
}

static int server_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    int64_t rc[RC_MAX];
    switch (m->type) {
    case MSG_CHECK: {
        msgpack_unpacked u;
        rc[0] = gr_msg_unpack(m, &u);
        /* In place: a str points into the payload. */
        const char *d = m->data;
        rc[1] = rc[0] == GR_OK && u.data.type == MSGPACK_OBJECT_STR &&
                u.data.via.str.ptr >= d &&
                u.data.via.str.ptr + u.data.via.str.size <= d + m->len;
        msgpack_unpacked_destroy(&u); /* Harmless after an error too. */
        return tell_ints(ctx, m->from, MSG_RC, rc, 2);
    }
    case MSG_BADARGS:
        return tell_ints(ctx, m->from, MSG_RC, rc, bad_calls(ctx, m, rc));
    case MSG_DOUBLE: {
        int64_t v;
        int err = unpack_int(m, &v);
        if (err != GR_OK)
            return err;
        struct packed p;
        packed_init(&p);
        msgpack_pack_int64(&p.pk, 2 * v);
        err = gr_reply_msgpack(ctx, m, MSG_DOUBLED, &p.buf);
        msgpack_sbuffer_destroy(&p.buf);
        return err;
    }
    case MSG_BIGREPLY: {
        struct packed p;
        packed_init(&p);
        pack_long_str(&p, SMALL_PAYLOAD + 1);
        rc[0] = gr_reply_msgpack(ctx, m, MSG_RC, &p.buf);
        pack_ints(&p, rc, 1);
        int err = gr_reply_msgpack(ctx, m, MSG_RC, &p.buf);
        msgpack_sbuffer_destroy(&p.buf);
        return err;
    }
    case MSG_NOOP:
        return GR_CONTINUE;
    default:
        return GR_EUNHANDLED;
    }
}

static const gr_behaviour server_b = {
    .name = "server",
    .handle = server_handle,
};

/* ---- an asker: asks the server to double, reports the answer ----------- */

struct asker_arg {
    gr_ref server;
    gr_ref report_to;
};

static int asker_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    return read_arg(state, sizeof(struct asker_arg), arg, len);
}

/* Reports MSG_RC {code, value}. */
static int asker_report(gr_ctx *ctx, const struct asker_arg *a, int64_t code,
                        int64_t value)
{
    int64_t v[2] = {code, value};
    return tell_ints(ctx, a->report_to, MSG_RC, v, 2);
}

static int asker_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    const struct asker_arg *a = state;
    int64_t v = 0;
    if (m->flags & GR_MSG_REPLY) {
        /* GR_MSG_TIMEOUT or GR_MSG_ASK_FAILED would report GR_EUNHANDLED. */
        int rc = m->type == MSG_DOUBLED ? unpack_int(m, &v) : GR_EUNHANDLED;
        return asker_report(ctx, a, rc, v);
    }
    if (m->type != MSG_GO)
        return GR_EUNHANDLED;
    int rc = unpack_int(m, &v);
    if (rc != GR_OK)
        return asker_report(ctx, a, rc, 0);
    struct packed p;
    packed_init(&p);
    msgpack_pack_int64(&p.pk, v);
    rc = gr_ask_msgpack(ctx, a->server, MSG_DOUBLE, &p.buf, WAIT_MS, NULL);
    msgpack_sbuffer_destroy(&p.buf);
    return rc == GR_OK ? GR_CONTINUE : asker_report(ctx, a, rc, 0);
}

static const gr_behaviour asker_b = {
    .name = "asker",
    .state_size = sizeof(struct asker_arg),
    .init = asker_init,
    .handle = asker_handle,
};

/* ---- the test's side ----------------------------------------------------- */

/* Opens a system with a SMALL_PAYLOAD limit and the test's inbox. */
static int open_env(struct env *e)
{
    gr_config cfg = {.workers = 2,
                     .max_payload = SMALL_PAYLOAD,
                     .log_fn = quiet_log,
                     .no_signals = 1};
    return env_open(e, &cfg);
}

/* Waits for the next message in the inbox; it must have the given type and
 * a payload that unpacks. Returns it with *u holding its object (destroy
 * *u, then free the message), or NULL, saying why on stderr. */
static gr_msg *recv_unpacked(gr_inbox *in, uint32_t type, msgpack_unpacked *u)
{
    gr_msg *m = NULL;
    int rc = gr_inbox_recv(in, &m, WAIT_MS);
    if (rc != GR_OK) {
        fprintf(stderr, "  no message: %s\n", gr_errname(rc));
        return NULL;
    }
    if (m->type != type) {
        fprintf(stderr, "  type %u, not %u\n", (unsigned)m->type,
                (unsigned)type);
        gr_msg_free(m);
        return NULL;
    }
    rc = gr_msg_unpack(m, u);
    if (rc != GR_OK) {
        fprintf(stderr, "  unpack: %s\n", gr_errname(rc));
        gr_msg_free(m);
        return NULL;
    }
    return m;
}

/* Waits for a MSG_RC report and copies its ints to rc (at most RC_MAX);
 * returns how many there were, or -1. */
static int recv_rc(gr_inbox *in, int64_t *rc)
{
    msgpack_unpacked u;
    gr_msg *m = recv_unpacked(in, MSG_RC, &u);
    if (m == NULL)
        return -1;
    int n = -1;
    if (u.data.type == MSGPACK_OBJECT_ARRAY &&
        u.data.via.array.size <= RC_MAX) {
        n = (int)u.data.via.array.size;
        for (int i = 0; i < n; i++)
            rc[i] = int_at(&u.data, (uint32_t)i);
    }
    msgpack_unpacked_destroy(&u);
    gr_msg_free(m);
    return n;
}

/* A message with the given payload, as a handler would see it. */
static gr_msg msg_of(const void *data, size_t len)
{
    gr_msg m = {.type = MSG_DATA, .data = len > 0 ? data : NULL, .len = len};
    return m;
}

/* gr_msg_unpack() of the bytes p[0..len); on GR_OK the object is
 * destroyed again. */
static int unpack_bytes(const void *p, size_t len)
{
    gr_msg m = msg_of(p, len);
    msgpack_unpacked u;
    int rc = gr_msg_unpack(&m, &u);
    if (rc != GR_OK && u.zone != NULL)
        return GR_EFAILED; /* An error must leave *out empty. */
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* Packs one object of every kind msgpack has into p. */
static void pack_everything(struct packed *p)
{
    static const char bin[] = {0, 1, 2, (char)0xff};
    msgpack_pack_map(&p->pk, 3);
    msgpack_pack_str_with_body(&p->pk, "name", 4);
    msgpack_pack_str_with_body(&p->pk, "grove", 5);
    msgpack_pack_int(&p->pk, -5);
    msgpack_pack_bin_with_body(&p->pk, bin, sizeof bin);
    msgpack_pack_str_with_body(&p->pk, "list", 4);
    msgpack_pack_array(&p->pk, 9);
    msgpack_pack_nil(&p->pk);
    msgpack_pack_true(&p->pk);
    msgpack_pack_false(&p->pk);
    msgpack_pack_uint64(&p->pk, UINT64_MAX);
    msgpack_pack_int64(&p->pk, INT64_MIN);
    msgpack_pack_double(&p->pk, 2.5);
    msgpack_pack_float(&p->pk, -1.25f);
    msgpack_pack_ext_with_body(&p->pk, "abc", 3, 7);
    msgpack_pack_array(&p->pk, 0);
}

/* Every kind of object unpacks, in place, and packs back to the same
 * bytes. */
static void test_unpack_round_trip(void)
{
    struct packed p;
    packed_init(&p);
    pack_everything(&p);
    gr_msg m = msg_of(p.buf.data, p.buf.size);
    msgpack_unpacked u;
    CHECK_EQ(gr_msg_unpack(&m, &u), GR_OK);
    CHECK(u.data.type == MSGPACK_OBJECT_MAP && u.data.via.map.size == 3);
    const msgpack_object *name = &u.data.via.map.ptr[0].val;
    CHECK(is_str(name, "grove"));
    CHECK(name->via.str.ptr >= p.buf.data &&
          name->via.str.ptr + 5 <= p.buf.data + p.buf.size);
    struct packed again;
    packed_init(&again);
    msgpack_pack_object(&again.pk, u.data);
    CHECK_EQ(again.buf.size, p.buf.size);
    CHECK(memcmp(again.buf.data, p.buf.data, p.buf.size) == 0);
    msgpack_unpacked_destroy(&u);
    /* *out need not be initialised, and may be used again once destroyed. */
    CHECK_EQ(gr_msg_unpack(&m, &u), GR_OK);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&again.buf);
    msgpack_sbuffer_destroy(&p.buf);
}

/* Anything but exactly one object is GR_EPROTO, and leaves *out empty. */
static void test_unpack_malformed(void)
{
    struct packed p;
    packed_init(&p);
    pack_everything(&p);
    const char *d = p.buf.data;
    size_t n = p.buf.size;
    CHECK_EQ(unpack_bytes(d, n), GR_OK);
    CHECK_EQ(unpack_bytes(NULL, 0), GR_EPROTO); /* Empty. */
    for (size_t k = 1; k < n; k++)              /* Every truncation. */
        CHECK_EQ(unpack_bytes(d, k), GR_EPROTO);
    char more[2 * SMALL_PAYLOAD];
    CHECK(n + 1 <= sizeof more);
    memcpy(more, d, n);
    more[n] = 0x01; /* Trailing bytes: one more object. */
    CHECK_EQ(unpack_bytes(more, n + 1), GR_EPROTO);
    CHECK_EQ(unpack_bytes("\x01\x02", 2), GR_EPROTO);
    CHECK_EQ(unpack_bytes("\xc1", 1), GR_EPROTO); /* Never used. */
    CHECK_EQ(unpack_bytes("\x92\x01", 2), GR_EPROTO);
    CHECK_EQ(unpack_bytes("\xa5hell", 5), GR_EPROTO);
    CHECK_EQ(unpack_bytes("\xcd\x01", 2), GR_EPROTO);
    CHECK_EQ(unpack_bytes("\xc7\x02\x05\x01", 4), GR_EPROTO);
    /* Counts far beyond the payload are refused before msgpack-c would
     * allocate for them (array32, map32, str32, bin32 of 2^32 - 1). */
    CHECK_EQ(unpack_bytes("\xdd\xff\xff\xff\xff", 5), GR_EPROTO);
    CHECK_EQ(unpack_bytes("\xdf\xff\xff\xff\xff", 5), GR_EPROTO);
    CHECK_EQ(unpack_bytes("\xdb\xff\xff\xff\xff", 5), GR_EPROTO);
    CHECK_EQ(unpack_bytes("\xc6\xff\xff\xff\xff\x00", 6), GR_EPROTO);
    CHECK_EQ(unpack_bytes("\x93\xdd\xff\xff\xff\xff\x01\x02", 8), GR_EPROTO);
    msgpack_sbuffer_destroy(&p.buf);
}

/* Nesting: GR_MSGPACK_DEPTH_MAX open containers are read, one more is
 * GR_EPROTO (an empty one too, as msgpack-c refuses it). */
static void test_unpack_depth(void)
{
    char b[GR_MSGPACK_DEPTH_MAX + 2];
    memset(b, 0x91, sizeof b); /* [[[...]]] */
    b[GR_MSGPACK_DEPTH_MAX] = 0x01;
    CHECK_EQ(unpack_bytes(b, GR_MSGPACK_DEPTH_MAX + 1), GR_OK);
    b[GR_MSGPACK_DEPTH_MAX] = (char)0x90; /* An empty array, one deeper. */
    CHECK_EQ(unpack_bytes(b, GR_MSGPACK_DEPTH_MAX + 1), GR_EPROTO);
    b[GR_MSGPACK_DEPTH_MAX] = (char)0x91;
    b[GR_MSGPACK_DEPTH_MAX + 1] = 0x01;
    CHECK_EQ(unpack_bytes(b, GR_MSGPACK_DEPTH_MAX + 2), GR_EPROTO);
    /* Wide is not deep: a map whose values close containers. */
    CHECK_EQ(unpack_bytes("\x82\x91\x01\x91\x91\x02\x90\x80", 8), GR_OK);
}

/* NULL arguments are GR_EINVAL, from a thread and from an actor; oversized
 * payloads GR_EMSGSIZE; an empty buffer sends no payload. */
static void test_bad_args(void)
{
    gr_msg m = msg_of("\x01", 1);
    msgpack_unpacked u;
    CHECK_EQ(gr_msg_unpack(NULL, &u), GR_EINVAL);
    CHECK_EQ(gr_msg_unpack(&m, NULL), GR_EINVAL);
    m.data = NULL; /* len 1 */
    CHECK_EQ(gr_msg_unpack(&m, &u), GR_EINVAL);
    msgpack_unpacked_destroy(&u);

    struct env e;
    CHECK(open_env(&e));
    gr_ref srv;
    CHECK_EQ(gr_system_spawn(e.sys, &server_b, NULL, 0, &srv), GR_OK);
    gr_ref me = gr_inbox_ref(e.inbox);
    gr_msg *reply = (gr_msg *)&m; /* Must become NULL. */
    CHECK_EQ(gr_system_tell_msgpack(e.sys, me, srv, MSG_NOOP, NULL), GR_EINVAL);
    CHECK_EQ(gr_call_msgpack(e.sys, srv, MSG_DOUBLE, NULL, WAIT_MS, &reply),
             GR_EINVAL);
    CHECK(reply == NULL);
    struct packed big;
    packed_init(&big);
    pack_long_str(&big, SMALL_PAYLOAD + 1);
    CHECK_EQ(gr_system_tell_msgpack(e.sys, me, srv, MSG_NOOP, &big.buf),
             GR_EMSGSIZE);
    reply = (gr_msg *)&m;
    CHECK_EQ(gr_call_msgpack(e.sys, srv, MSG_DOUBLE, &big.buf, WAIT_MS, &reply),
             GR_EMSGSIZE);
    CHECK(reply == NULL);
    msgpack_sbuffer_destroy(&big.buf);

    CHECK_EQ(gr_system_tell(e.sys, me, srv, MSG_BADARGS, NULL, 0), GR_OK);
    int64_t rc[RC_MAX];
    CHECK_EQ(recv_rc(e.inbox, rc), 8);
    CHECK_EQ(rc[0], GR_EINVAL); /* tell, NULL buf */
    CHECK_EQ(rc[1], GR_EINVAL); /* ask, NULL buf */
    CHECK_EQ(rc[2], GR_EINVAL); /* reply, NULL buf */
    CHECK_EQ(rc[3], GR_EINVAL); /* reply to a tell */
    CHECK_EQ(rc[4], GR_EMSGSIZE);
    CHECK_EQ(rc[5], GR_EMSGSIZE);
    CHECK_EQ(rc[6], GR_EINVAL); /* NULL ctx */
    CHECK_EQ(rc[7], GR_OK);     /* A cleared buffer: no payload. */

    /* An oversized reply is refused; the request is still answerable. */
    struct packed p;
    packed_init(&p);
    msgpack_pack_nil(&p.pk);
    CHECK_EQ(gr_call_msgpack(e.sys, srv, MSG_BIGREPLY, &p.buf, WAIT_MS, &reply),
             GR_OK);
    msgpack_sbuffer_destroy(&p.buf);
    CHECK_EQ(reply->type, MSG_RC);
    CHECK_EQ(gr_msg_unpack(reply, &u), GR_OK);
    CHECK_EQ(int_at(&u.data, 0), GR_EMSGSIZE);
    msgpack_unpacked_destroy(&u);
    gr_msg_free(reply);
    env_close(&e);
}

/* A thread sends to an actor, which sends to another actor, which sends
 * to the thread's inbox; each hop unpacks and packs again. */
static void test_round_trip_actors(void)
{
    struct env e;
    CHECK(open_env(&e));
    struct fwd_arg b_arg = {.name = "b", .next = gr_inbox_ref(e.inbox)};
    gr_ref a, b;
    CHECK_EQ(gr_system_spawn(e.sys, &fwd_b, &b_arg, sizeof b_arg, &b), GR_OK);
    struct fwd_arg a_arg = {.name = "a", .next = b};
    CHECK_EQ(gr_system_spawn(e.sys, &fwd_b, &a_arg, sizeof a_arg, &a), GR_OK);

    struct packed p;
    packed_init(&p);
    pack_everything(&p);
    CHECK_EQ(gr_system_tell_msgpack(e.sys, gr_inbox_ref(e.inbox), a, MSG_DATA,
                                    &p.buf),
             GR_OK);
    msgpack_unpacked u;
    gr_msg *m = recv_unpacked(e.inbox, MSG_DATA, &u);
    CHECK(m != NULL);
    CHECK(gr_ref_eq(m->from, b));
    /* ["b", ["a", everything]] */
    const msgpack_object *o = &u.data;
    CHECK(o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2);
    CHECK(is_str(&o->via.array.ptr[0], "b"));
    o = &o->via.array.ptr[1];
    CHECK(o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2);
    CHECK(is_str(&o->via.array.ptr[0], "a"));
    struct packed inner;
    packed_init(&inner);
    msgpack_pack_object(&inner.pk, o->via.array.ptr[1]);
    CHECK_EQ(inner.buf.size, p.buf.size);
    CHECK(memcmp(inner.buf.data, p.buf.data, p.buf.size) == 0);
    msgpack_sbuffer_destroy(&inner.buf);
    msgpack_sbuffer_destroy(&p.buf);
    msgpack_unpacked_destroy(&u);
    gr_msg_free(m);
    env_close(&e);
}

/* An actor asks and gets the reply; a thread calls and gets it too. */
static void test_ask_and_call(void)
{
    struct env e;
    CHECK(open_env(&e));
    gr_ref srv, asker;
    CHECK_EQ(gr_system_spawn(e.sys, &server_b, NULL, 0, &srv), GR_OK);
    struct asker_arg aa = {.server = srv, .report_to = gr_inbox_ref(e.inbox)};
    CHECK_EQ(gr_system_spawn(e.sys, &asker_b, &aa, sizeof aa, &asker), GR_OK);

    struct packed p;
    packed_init(&p);
    msgpack_pack_int(&p.pk, 21);
    CHECK_EQ(gr_system_tell_msgpack(e.sys, GR_REF_NONE, asker, MSG_GO, &p.buf),
             GR_OK);
    int64_t rc[RC_MAX];
    CHECK_EQ(recv_rc(e.inbox, rc), 2);
    CHECK_EQ(rc[0], GR_OK);
    CHECK_EQ(rc[1], 42);

    msgpack_sbuffer_clear(&p.buf);
    msgpack_pack_int(&p.pk, -100);
    gr_msg *reply = NULL;
    CHECK_EQ(gr_call_msgpack(e.sys, srv, MSG_DOUBLE, &p.buf, WAIT_MS, &reply),
             GR_OK);
    msgpack_sbuffer_destroy(&p.buf);
    CHECK_EQ(reply->type, MSG_DOUBLED);
    CHECK(reply->flags & GR_MSG_REPLY);
    int64_t v = 0;
    CHECK_EQ(unpack_int(reply, &v), GR_OK);
    CHECK_EQ(v, -200);
    gr_msg_free(reply);
    env_close(&e);
}

/* In a handler: a good payload unpacks in place; empty, truncated and
 * trailing ones are GR_EPROTO. */
static void test_unpack_in_handler(void)
{
    struct env e;
    CHECK(open_env(&e));
    gr_ref srv, me = gr_inbox_ref(e.inbox);
    CHECK_EQ(gr_system_spawn(e.sys, &server_b, NULL, 0, &srv), GR_OK);
    struct packed p;
    packed_init(&p);
    msgpack_pack_str_with_body(&p.pk, "in place", 8);
    int64_t rc[RC_MAX];

    CHECK_EQ(gr_system_tell_msgpack(e.sys, me, srv, MSG_CHECK, &p.buf), GR_OK);
    CHECK_EQ(recv_rc(e.inbox, rc), 2);
    CHECK_EQ(rc[0], GR_OK);
    CHECK_EQ(rc[1], 1);

    CHECK_EQ(
        gr_system_tell(e.sys, me, srv, MSG_CHECK, p.buf.data, p.buf.size - 1),
        GR_OK); /* Truncated. */
    CHECK_EQ(recv_rc(e.inbox, rc), 2);
    CHECK_EQ(rc[0], GR_EPROTO);

    msgpack_pack_nil(&p.pk); /* Two objects. */
    CHECK_EQ(gr_system_tell_msgpack(e.sys, me, srv, MSG_CHECK, &p.buf), GR_OK);
    CHECK_EQ(recv_rc(e.inbox, rc), 2);
    CHECK_EQ(rc[0], GR_EPROTO);

    msgpack_sbuffer_clear(&p.buf); /* Empty. */
    CHECK_EQ(gr_system_tell_msgpack(e.sys, me, srv, MSG_CHECK, &p.buf), GR_OK);
    CHECK_EQ(recv_rc(e.inbox, rc), 2);
    CHECK_EQ(rc[0], GR_EPROTO);
    msgpack_sbuffer_destroy(&p.buf);
    env_close(&e);
}

TEST_MAIN(TEST_CASE(test_unpack_round_trip), TEST_CASE(test_unpack_malformed),
          TEST_CASE(test_unpack_depth), TEST_CASE(test_bad_args),
          TEST_CASE(test_round_trip_actors), TEST_CASE(test_ask_and_call),
          TEST_CASE(test_unpack_in_handler))
