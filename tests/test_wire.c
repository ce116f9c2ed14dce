/*
 * Unit tests of the node-to-node wire format (transport/wire.h) and the
 * bounded byte ring (transport/ring.h): round trips of every frame kind at
 * extreme field values (cross-checked with msgpack-c's own unpacker), the
 * strict reader refusing every truncation, trailing bytes, wrong types,
 * out-of-range integers, over-long names and hostile length claims, header
 * parsing, and the ring's limit, wrap-around, two-segment iov and growth.
 *
 * Bodies handed to the decoders are copied into buffers of exactly their
 * length, so a build with -DGROVE_SANITIZER=address catches any read past
 * a body's end.
 */
#include "transport/ring.h"
#include "transport/wire.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "testing.h"

/* Interesting unsigned values: msgpack's encoding boundaries and extremes. */
static const uint64_t u32_values[] = {
    0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, UINT32_MAX,
};
static const uint64_t u64_values[] = {
    0,      1,       0x7f,       0x80,           0xff,      0x100,
    0xffff, 0x10000, UINT32_MAX, 0x100000000ull, INT64_MAX, UINT64_MAX,
};
#define NU32 (sizeof u32_values / sizeof u32_values[0])
#define NU64 (sizeof u64_values / sizeof u64_values[0])

/* Payload sizes around msgpack's bin8/bin16/bin32 header boundaries. */
static const size_t payload_sizes[] = {0,   1,     31,    32,   255,
                                       256, 65535, 65536, 70000};
#define NPAYLOAD (sizeof payload_sizes / sizeof payload_sizes[0])

/* A malloc'd copy of exactly n bytes (never NULL). */
static uint8_t *exact(const void *p, size_t n)
{
    uint8_t *q = malloc(n);
    if (q == NULL && n == 0)
        q = malloc(1);
    if (q == NULL)
        abort();
    if (n != 0)
        memcpy(q, p, n);
    return q;
}

/* Fills n bytes with a pattern that depends on seed. */
static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 131u + seed * 7u + (i >> 8));
}

/* Decodes a body of kind from an exact copy of n bytes at p, with the
 * decoder the kind belongs to. *why is reset first. */
static int decode_copy(uint8_t kind, const uint8_t *p, size_t n,
                       const char **why)
{
    uint8_t *body = exact(p, n);
    int rc;
    *why = NULL;
    if (kind == GR__WIRE_HELLO || kind == GR__WIRE_WELCOME) {
        gr__wire_hello h;
        rc = gr__wire_decode_hello(kind, body, n, &h, why);
    } else {
        gr__wire_frame f;
        rc = gr__wire_decode(kind, body, n, &f, why);
    }
    free(body);
    return rc;
}

/* A whole MSG frame for m in a malloc'd buffer; its length in *len. */
static uint8_t *msg_frame(const gr_msg *m, size_t *len)
{
    uint8_t *f = malloc(GR__WIRE_PREFIX_MAX + m->len);
    if (f == NULL)
        abort();
    size_t plen = gr__wire_msg_prefix(f, m);
    if (m->len != 0)
        memcpy(f + plen, m->data, m->len);
    *len = plen + m->len;
    return f;
}

/* A whole NAMED frame, as msg_frame(). */
static uint8_t *named_frame(uint32_t node, const char *name, size_t name_len,
                            const gr_msg *m, size_t *len)
{
    uint8_t *f = malloc(GR__WIRE_PREFIX_MAX + m->len);
    if (f == NULL)
        abort();
    size_t plen = gr__wire_named_prefix(f, node, name, name_len, m);
    if (m->len != 0)
        memcpy(f + plen, m->data, m->len);
    *len = plen + m->len;
    return f;
}

/* A message whose fields take the values at index i of the tables. */
static gr_msg msg_at(size_t i, const uint8_t *payload, size_t n)
{
    gr_msg m = {
        .to = {.node = (uint32_t)u32_values[i % NU32],
               .incarnation = (uint32_t)u32_values[(i + 1) % NU32],
               .serial = u64_values[i % NU64]},
        .from = {.node = (uint32_t)u32_values[(i + 2) % NU32],
                 .incarnation = (uint32_t)u32_values[(i + 3) % NU32],
                 .serial = u64_values[(i + 1) % NU64]},
        .type = (uint32_t)u32_values[(i + 4) % NU32],
        .corr = u64_values[(i + 2) % NU64],
        .flags = (uint32_t)u32_values[(i + 5) % NU32],
        .data = n ? payload : NULL,
        .len = n,
    };
    return m;
}

static gr_msg msg_all(uint32_t v32, uint64_t v64, const void *payload, size_t n)
{
    gr_msg m = {.to = {.node = v32, .incarnation = v32, .serial = v64},
                .from = {.node = v32, .incarnation = v32, .serial = v64},
                .type = v32,
                .corr = v64,
                .flags = v32,
                .data = n ? payload : NULL,
                .len = n};
    return m;
}

/* Checks the header of a whole frame of flen bytes. */
static void check_header(const uint8_t *frame, size_t flen, uint8_t kind)
{
    gr__wire_header h;
    CHECK(flen >= GR__WIRE_HEADER);
    CHECK_EQ(gr__wire_header_parse(frame, &h), GR_OK);
    CHECK_EQ(h.version, GR__WIRE_VERSION);
    CHECK_EQ(h.kind, kind);
    CHECK_EQ(h.len, flen - GR__WIRE_HEADER);
}

static void check_ref(gr_ref a, gr_ref b)
{
    CHECK_EQ(a.node, b.node);
    CHECK_EQ(a.incarnation, b.incarnation);
    CHECK(a.serial == b.serial);
}

/* Checks a decoded envelope against the one encoded; body is the exact
 * buffer of blen bytes it was decoded from. */
static void check_envelope(const gr_msg *got, const gr_msg *want,
                           const uint8_t *body, size_t blen)
{
    check_ref(got->to, want->to);
    if (test_failed_)
        return;
    check_ref(got->from, want->from);
    if (test_failed_)
        return;
    CHECK_EQ(got->type, want->type);
    CHECK(got->corr == want->corr);
    CHECK_EQ(got->flags, want->flags);
    CHECK_EQ(got->len, want->len);
    if (want->len == 0) {
        CHECK(got->data == NULL);
        return;
    }
    const uint8_t *d = got->data;
    CHECK(d >= body && d + got->len == body + blen); /* The payload is last. */
    CHECK(memcmp(d, want->data, want->len) == 0);
}

/* Checks with msgpack-c's unpacker that an encoded MSG or NAMED body is
 * plain msgpack holding the envelope's values. */
static void check_with_msgpack(const uint8_t *body, size_t blen, bool named,
                               const gr_msg *m)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = msgpack_unpack_next(&u, (const char *)body, blen, &off);
    bool ok = rc == MSGPACK_UNPACK_SUCCESS && off == blen &&
              u.data.type == MSGPACK_OBJECT_ARRAY &&
              u.data.via.array.size == (named ? 9u : 10u);
    if (ok) {
        const msgpack_object *o = u.data.via.array.ptr;
        size_t i = 0;
        if (named) {
            ok = o[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                 o[1].type == MSGPACK_OBJECT_STR;
            i = 2;
        } else {
            uint64_t to[3] = {m->to.node, m->to.incarnation, m->to.serial};
            for (; i < 3; i++)
                ok = ok && o[i].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                     o[i].via.u64 == to[i];
        }
        uint64_t rest[6] = {m->from.node,   m->from.incarnation,
                            m->from.serial, m->type,
                            m->corr,        m->flags};
        for (size_t k = 0; k < 6; k++, i++)
            ok = ok && o[i].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                 o[i].via.u64 == rest[k];
        ok = ok && o[i].type == MSGPACK_OBJECT_BIN &&
             o[i].via.bin.size == m->len &&
             (m->len == 0 || memcmp(o[i].via.bin.ptr, m->data, m->len) == 0);
    }
    msgpack_unpacked_destroy(&u);
    CHECK(ok);
}

/* Encodes m as a MSG frame, decodes it back and compares every field. */
static void msg_round_trip(const gr_msg *m)
{
    size_t flen;
    uint8_t *frame = msg_frame(m, &flen);
    uint8_t *body = exact(frame + GR__WIRE_HEADER, flen - GR__WIRE_HEADER);
    size_t blen = flen - GR__WIRE_HEADER;
    gr__wire_frame f;
    const char *why = NULL;
    int rc = gr__wire_decode(GR__WIRE_MSG, body, blen, &f, &why);
    bool prefix_fits = flen - m->len <= GR__WIRE_PREFIX_MAX;
    check_header(frame, flen, GR__WIRE_MSG);
    if (!test_failed_) {
        if (rc != GR_OK)
            fprintf(stderr, "  decode: %s\n", why ? why : "(no reason)");
        CHECK_EQ(rc, GR_OK);
    }
    if (!test_failed_)
        CHECK(prefix_fits);
    if (!test_failed_) {
        CHECK_EQ(f.kind, GR__WIRE_MSG);
        CHECK(f.name == NULL && f.name_len == 0 && f.node == 0 &&
              f.incarnation == 0 && f.corr == 0 && gr_ref_is_none(f.reply_to) &&
              f.reply_to.node == 0);
    }
    if (!test_failed_)
        check_envelope(&f.msg, m, body, blen);
    if (!test_failed_)
        check_with_msgpack(body, blen, false, m);
    free(body);
    free(frame);
}

static void test_msg_round_trip(void)
{
    static uint8_t payload[70000];
    fill(payload, sizeof payload, 1);
    /* Every field 0, then every field at its maximum, at each size. */
    for (size_t s = 0; s < NPAYLOAD; s++) {
        gr_msg m = msg_all(0, 0, payload, payload_sizes[s]);
        msg_round_trip(&m);
        if (test_failed_)
            return;
        m = msg_all(UINT32_MAX, UINT64_MAX, payload, payload_sizes[s]);
        msg_round_trip(&m);
        if (test_failed_)
            return;
    }
    /* Mixed boundary values in every field. */
    for (size_t i = 0; i < NU32 * NU64; i++) {
        gr_msg m = msg_at(i, payload, payload_sizes[i % NPAYLOAD]);
        msg_round_trip(&m);
        if (test_failed_) {
            fprintf(stderr, "  at combination %zu\n", i);
            return;
        }
    }
}

/* Encodes a NAMED frame, decodes it back and compares every field. */
static void named_round_trip(uint32_t node, const char *name, size_t name_len,
                             const gr_msg *m)
{
    size_t flen;
    uint8_t *frame = named_frame(node, name, name_len, m, &flen);
    size_t blen = flen - GR__WIRE_HEADER;
    uint8_t *body = exact(frame + GR__WIRE_HEADER, blen);
    gr__wire_frame f;
    const char *why = NULL;
    int rc = gr__wire_decode(GR__WIRE_NAMED, body, blen, &f, &why);
    check_header(frame, flen, GR__WIRE_NAMED);
    if (!test_failed_) {
        if (rc != GR_OK)
            fprintf(stderr, "  decode: %s\n", why ? why : "(no reason)");
        CHECK_EQ(rc, GR_OK);
    }
    if (!test_failed_) {
        CHECK(flen - m->len <= GR__WIRE_PREFIX_MAX);
        CHECK_EQ(f.kind, GR__WIRE_NAMED);
        CHECK_EQ(f.node, node);
        CHECK_EQ(f.name_len, name_len);
        CHECK((const uint8_t *)f.name > body &&
              (const uint8_t *)f.name + name_len < body + blen);
        CHECK(memcmp(f.name, name, name_len) == 0);
        CHECK_EQ(f.incarnation, 0);
        CHECK(f.corr == 0 && gr_ref_is_none(f.reply_to));
        /* The target is not on the wire: to decodes as none. */
        CHECK(gr_ref_is_none(f.msg.to) && f.msg.to.node == 0);
    }
    if (!test_failed_) {
        gr_msg want = *m;
        want.to = GR_REF_NONE;
        check_envelope(&f.msg, &want, body, blen);
    }
    if (!test_failed_)
        check_with_msgpack(body, blen, true, m);
    free(body);
    free(frame);
}

static void test_named_round_trip(void)
{
    static uint8_t payload[70000];
    fill(payload, sizeof payload, 2);
    char name[GR_NAME_MAX + 1];
    for (size_t i = 0; i < GR_NAME_MAX; i++)
        name[i] = (char)('a' + i % 26);
    name[GR_NAME_MAX] = '\0';
    /* Name lengths around fixstr/str8; the 63-byte one is the longest. */
    static const size_t name_lens[] = {1, 2, 31, 32, GR_NAME_MAX};
    for (size_t k = 0; k < sizeof name_lens / sizeof name_lens[0]; k++) {
        for (size_t s = 0; s < NPAYLOAD; s++) {
            gr_msg m = msg_all(0, 0, payload, payload_sizes[s]);
            named_round_trip(0, name, name_lens[k], &m);
            if (test_failed_)
                return;
            m = msg_all(UINT32_MAX, UINT64_MAX, payload, payload_sizes[s]);
            named_round_trip(UINT32_MAX, name, name_lens[k], &m);
            if (test_failed_)
                return;
        }
    }
    for (size_t i = 0; i < NU32 * NU64; i++) {
        gr_msg m = msg_at(i, payload, payload_sizes[i % NPAYLOAD]);
        named_round_trip((uint32_t)u32_values[(i + 7) % NU32], name,
                         1 + i % GR_NAME_MAX, &m);
        if (test_failed_) {
            fprintf(stderr, "  at combination %zu\n", i);
            return;
        }
    }
}

/* Encodes a NODE_UP/NODE_DOWN/SHUTDOWN frame and decodes it back; want_name
 * is the name the decoder should see (NULL: none). */
static void node_round_trip(uint8_t kind, uint32_t node, uint32_t inc,
                            const char *name, const char *want_name)
{
    uint8_t frame[GR__WIRE_PREFIX_MAX];
    memset(frame, 0xee, sizeof frame);
    size_t flen = gr__wire_node_frame(frame, kind, node, inc, name);
    CHECK(flen <= GR__WIRE_PREFIX_MAX);
    check_header(frame, flen, kind);
    if (test_failed_)
        return;
    size_t blen = flen - GR__WIRE_HEADER;
    uint8_t *body = exact(frame + GR__WIRE_HEADER, blen);
    gr__wire_frame f;
    const char *why = NULL;
    int rc = gr__wire_decode(kind, body, blen, &f, &why);
    bool ok = rc == GR_OK && f.kind == kind && f.msg.len == 0 &&
              f.msg.data == NULL && gr_ref_is_none(f.reply_to) &&
              f.reply_to.node == 0 && f.corr == 0;
    if (ok && kind == GR__WIRE_SHUTDOWN)
        ok = blen == 1 && f.node == 0 && f.incarnation == 0 && f.name == NULL;
    else if (ok)
        ok = f.node == node && f.incarnation == inc;
    size_t want_len = want_name ? strlen(want_name) : 0;
    if (ok && want_len == 0)
        ok = f.name == NULL && f.name_len == 0;
    else if (ok)
        ok = f.name_len == want_len &&
             memcmp(f.name, want_name, want_len) == 0 &&
             (const uint8_t *)f.name + want_len == body + blen;
    if (rc != GR_OK)
        fprintf(stderr, "  decode: %s\n", why ? why : "(no reason)");
    free(body);
    CHECK(ok);
}

static void test_node_frames(void)
{
    char n63[GR_NAME_MAX + 1], n80[81];
    memset(n63, 'x', GR_NAME_MAX);
    n63[GR_NAME_MAX] = '\0';
    memset(n80, 'y', 80);
    n80[80] = '\0';
    char n80_cut[GR_NAME_MAX + 1];
    memcpy(n80_cut, n80, GR_NAME_MAX);
    n80_cut[GR_NAME_MAX] = '\0';

    for (size_t i = 0; i < NU32; i++) {
        uint32_t node = (uint32_t)u32_values[i];
        uint32_t inc = (uint32_t)u32_values[NU32 - 1 - i];
        node_round_trip(GR__WIRE_NODE_UP, node, inc, "n1", "n1");
        if (test_failed_)
            return;
        node_round_trip(GR__WIRE_NODE_UP, node, inc, n63, n63);
        if (test_failed_)
            return;
        node_round_trip(GR__WIRE_NODE_DOWN, node, inc, NULL, NULL);
        if (test_failed_)
            return;
    }
    node_round_trip(GR__WIRE_NODE_UP, UINT32_MAX, UINT32_MAX, "z", "z");
    if (test_failed_)
        return;
    /* The encoder takes at most GR_NAME_MAX bytes of a longer name. */
    node_round_trip(GR__WIRE_NODE_UP, 3, 4, n80, n80_cut);
    if (test_failed_)
        return;
    node_round_trip(GR__WIRE_SHUTDOWN, 0, 0, NULL, NULL);
    if (test_failed_)
        return;
    /* SHUTDOWN's body is an empty array whatever node fields are passed. */
    node_round_trip(GR__WIRE_SHUTDOWN, 9, 9, NULL, NULL);
}

/* Encodes a WHEREIS frame, decodes it back and compares every field. */
static void whereis_round_trip(const char *name, size_t name_len,
                               gr_ref reply_to, uint64_t corr)
{
    uint8_t frame[GR__WIRE_PREFIX_MAX];
    size_t flen = gr__wire_whereis_frame(frame, name, name_len, reply_to, corr);
    CHECK(flen <= GR__WIRE_PREFIX_MAX);
    check_header(frame, flen, GR__WIRE_WHEREIS);
    if (test_failed_)
        return;
    size_t blen = flen - GR__WIRE_HEADER;
    uint8_t *body = exact(frame + GR__WIRE_HEADER, blen);
    gr__wire_frame f;
    const char *why = NULL;
    int rc = gr__wire_decode(GR__WIRE_WHEREIS, body, blen, &f, &why);
    if (rc != GR_OK)
        fprintf(stderr, "  decode: %s\n", why ? why : "(no reason)");
    bool ok =
        rc == GR_OK && f.kind == GR__WIRE_WHEREIS && f.name_len == name_len &&
        memcmp(f.name, name, name_len) == 0 && (const uint8_t *)f.name > body &&
        (const uint8_t *)f.name + name_len < body + blen &&
        f.reply_to.node == reply_to.node &&
        f.reply_to.incarnation == reply_to.incarnation &&
        f.reply_to.serial == reply_to.serial && f.corr == corr && f.node == 0 &&
        f.incarnation == 0 && f.msg.len == 0 && f.msg.data == NULL &&
        gr_ref_is_none(f.msg.to) && gr_ref_is_none(f.msg.from) &&
        f.msg.type == 0 && f.msg.corr == 0 && f.msg.flags == 0;
    free(body);
    CHECK(ok);
}

/* ACK: every count encodes, decodes back, and fills no other field. */
static void test_ack_round_trip(void)
{
    for (size_t i = 0; i < NU64; i++) {
        uint8_t frame[GR__WIRE_ACK_MAX];
        size_t flen = gr__wire_ack_frame(frame, u64_values[i]);
        CHECK(flen <= GR__WIRE_ACK_MAX);
        check_header(frame, flen, GR__WIRE_ACK);
        if (test_failed_)
            return;
        size_t blen = flen - GR__WIRE_HEADER;
        uint8_t *body = exact(frame + GR__WIRE_HEADER, blen);
        gr__wire_frame f;
        const char *why = NULL;
        CHECK_EQ(gr__wire_decode(GR__WIRE_ACK, body, blen, &f, &why), GR_OK);
        CHECK(f.kind == GR__WIRE_ACK && f.acked == u64_values[i] &&
              f.corr == 0 && f.node == 0 && f.name == NULL && f.msg.len == 0 &&
              gr_ref_is_none(f.msg.to));
        free(body);
        if (test_failed_) {
            fprintf(stderr, "  at %zu\n", i);
            return;
        }
    }
}

static void test_whereis_round_trip(void)
{
    char name[GR_NAME_MAX];
    for (size_t i = 0; i < sizeof name; i++)
        name[i] = (char)('A' + i % 26);
    static const size_t name_lens[] = {1, 31, 32, GR_NAME_MAX};
    for (size_t i = 0; i < NU32 * NU64; i++) {
        gr_ref to = {.node = (uint32_t)u32_values[i % NU32],
                     .incarnation = (uint32_t)u32_values[(i + 3) % NU32],
                     .serial = u64_values[i % NU64]};
        whereis_round_trip(name, name_lens[i % 4], to,
                           u64_values[(i + 5) % NU64]);
        if (test_failed_) {
            fprintf(stderr, "  at combination %zu\n", i);
            return;
        }
    }
    whereis_round_trip(name, GR_NAME_MAX,
                       (gr_ref){UINT64_MAX, UINT32_MAX, UINT32_MAX},
                       UINT64_MAX);
    if (test_failed_)
        return;
    whereis_round_trip("x", 1, GR_REF_NONE, 0);
}

/* Encodes a HELLO or WELCOME, decodes it back and compares the fields the
 * kind carries. */
static void hello_round_trip(uint8_t kind, const gr__wire_hello *h)
{
    size_t flen = 0;
    uint8_t *frame = gr__wire_hello_frame(kind, h, &flen);
    CHECK(frame != NULL);
    check_header(frame, flen, kind);
    if (test_failed_) {
        free(frame);
        return;
    }
    size_t blen = flen - GR__WIRE_HEADER;
    uint8_t *body = exact(frame + GR__WIRE_HEADER, blen);
    free(frame);
    gr__wire_hello g;
    const char *why = NULL;
    int rc = gr__wire_decode_hello(kind, body, blen, &g, &why);
    if (rc != GR_OK)
        fprintf(stderr, "  decode: %s\n", why ? why : "(no reason)");
    bool ok = rc == GR_OK &&
              memcmp(g.secret, h->secret, GR__WIRE_SECRET) == 0 &&
              g.node == h->node && g.incarnation == h->incarnation;
    const uint8_t *end = body + blen;
    if (ok && kind == GR__WIRE_HELLO) {
        ok = g.parent == h->parent && g.parent_inc == h->parent_inc &&
             g.max_frame == h->max_frame && g.pid == 0 &&
             g.name_len == h->name_len && g.root_len == h->root_len &&
             g.arg_len == h->arg_len &&
             memcmp(g.name, h->name, h->name_len) == 0 &&
             (const uint8_t *)g.name > body &&
             (const uint8_t *)g.name + g.name_len < end &&
             (h->root_len == 0
                  ? g.root == NULL
                  : memcmp(g.root, h->root, h->root_len) == 0 &&
                        (const uint8_t *)g.root > body &&
                        (const uint8_t *)g.root + g.root_len < end) &&
             (h->arg_len == 0 ? g.arg == NULL
                              : memcmp(g.arg, h->arg, h->arg_len) == 0 &&
                                    (const uint8_t *)g.arg + g.arg_len == end);
    } else if (ok) {
        ok = g.pid == h->pid && g.root_serial == h->root_serial &&
             g.parent == 0 && g.parent_inc == 0 && g.max_frame == 0 &&
             g.name == NULL && g.name_len == 0 && g.root == NULL &&
             g.root_len == 0 && g.arg == NULL && g.arg_len == 0;
    }
    free(body);
    CHECK(ok);
}

static void test_hello_round_trip(void)
{
    static uint8_t arg[70000];
    fill(arg, sizeof arg, 3);
    char n63[GR_NAME_MAX];
    memset(n63, 'q', sizeof n63);
    gr__wire_hello h = {0};
    for (size_t i = 0; i < GR__WIRE_SECRET; i++)
        h.secret[i] = (uint8_t)(0xf0 ^ i * 17);

    static const size_t arg_lens[] = {0, 1, 255, 256, 65536, 70000};
    for (size_t i = 0; i < NU32; i++) {
        h.node = (uint32_t)u32_values[i];
        h.incarnation = (uint32_t)u32_values[(i + 1) % NU32];
        h.parent = (uint32_t)u32_values[(i + 2) % NU32];
        h.parent_inc = (uint32_t)u32_values[(i + 3) % NU32];
        h.max_frame = u32_values[(i + 4) % NU32];
        h.name = i % 2 ? "child" : n63;
        h.name_len = i % 2 ? 5 : GR_NAME_MAX;
        h.root = i % 3 == 0 ? NULL : i % 3 == 1 ? "root_behaviour" : n63;
        h.root_len = i % 3 == 0 ? 0 : i % 3 == 1 ? 14 : GR_NAME_MAX;
        h.arg_len = arg_lens[i % (sizeof arg_lens / sizeof arg_lens[0])];
        h.arg = h.arg_len ? arg : NULL;
        hello_round_trip(GR__WIRE_HELLO, &h);
        if (test_failed_) {
            fprintf(stderr, "  HELLO at %zu\n", i);
            return;
        }
    }

    /* WELCOME: secret, node, incarnation, pid (0..INT32_MAX) and the root
     * actor's serial (not 0) only. */
    static const int64_t pids[] = {0, 1, 0x7f, 0x80, 65536, INT32_MAX};
    static const uint64_t roots[] = {1,     0x7f,       0x80,
                                     65536, UINT32_MAX, UINT64_MAX};
    gr__wire_hello w = {0};
    memcpy(w.secret, h.secret, GR__WIRE_SECRET);
    for (size_t i = 0; i < sizeof pids / sizeof pids[0]; i++) {
        w.node = (uint32_t)u32_values[i % NU32];
        w.incarnation = (uint32_t)u32_values[NU32 - 1 - i % NU32];
        w.pid = pids[i];
        w.root_serial = roots[i];
        hello_round_trip(GR__WIRE_WELCOME, &w);
        if (test_failed_) {
            fprintf(stderr, "  WELCOME at %zu\n", i);
            return;
        }
    }
    w.node = w.incarnation = UINT32_MAX;
    hello_round_trip(GR__WIRE_WELCOME, &w);
}

/* ---- Sweeps over a set of valid frames. */

typedef struct sample {
    uint8_t *frame;
    size_t len;
} sample;

enum { SAMPLES_MAX = 64 };

static size_t add_sample(sample *s, size_t n, uint8_t *frame, size_t len)
{
    if (n >= SAMPLES_MAX || frame == NULL)
        abort();
    s[n] = (sample){frame, len};
    return n + 1;
}

/* Builds valid frames of every kind (payloads up to bin32); returns how
 * many. */
static size_t build_samples(sample *s)
{
    static uint8_t payload[70000];
    fill(payload, sizeof payload, 4);
    size_t n = 0, len;
    static const size_t sizes[] = {0, 1, 256, 70000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        gr_msg m = msg_all(0, 0, payload, sizes[k]);
        uint8_t *f = msg_frame(&m, &len);
        n = add_sample(s, n, f, len);
        m = msg_all(UINT32_MAX, UINT64_MAX, payload, sizes[k]);
        f = msg_frame(&m, &len);
        n = add_sample(s, n, f, len);
        m = msg_at(k * 5 + 3, payload, sizes[k]);
        f = named_frame(7, "a", 1, &m, &len);
        n = add_sample(s, n, f, len);
        f = named_frame(UINT32_MAX, "some_registered_name_that_is_long", 33, &m,
                        &len);
        n = add_sample(s, n, f, len);
    }
    static const char *up_names[] = {"n", "node-two", "3", NULL};
    for (size_t k = 0; k < 4; k++) {
        uint8_t kind = up_names[k] ? GR__WIRE_NODE_UP : GR__WIRE_NODE_DOWN;
        uint8_t *f = malloc(GR__WIRE_PREFIX_MAX);
        if (f == NULL)
            abort();
        len = gr__wire_node_frame(f, kind, k ? UINT32_MAX : 0,
                                  k % 2 ? 0x10000 : 0, up_names[k]);
        n = add_sample(s, n, f, len);
    }
    uint8_t *f = malloc(GR__WIRE_PREFIX_MAX);
    if (f == NULL)
        abort();
    len = gr__wire_node_frame(f, GR__WIRE_SHUTDOWN, 0, 0, NULL);
    n = add_sample(s, n, f, len);
    for (size_t k = 0; k < 2; k++) {
        f = malloc(GR__WIRE_PREFIX_MAX);
        if (f == NULL)
            abort();
        gr_ref to = k ? (gr_ref){UINT64_MAX, UINT32_MAX, UINT32_MAX}
                      : (gr_ref){1, 0, 2};
        len = gr__wire_whereis_frame(f, k ? "counter" : "c", k ? 7 : 1, to,
                                     k ? UINT64_MAX : 0);
        n = add_sample(s, n, f, len);
        f = malloc(GR__WIRE_ACK_MAX);
        if (f == NULL)
            abort();
        len = gr__wire_ack_frame(f, k ? UINT64_MAX : 0);
        n = add_sample(s, n, f, len);
    }

    gr__wire_hello h = {.node = UINT32_MAX,
                        .incarnation = 1,
                        .parent = 0,
                        .parent_inc = UINT32_MAX,
                        .max_frame = UINT32_MAX,
                        .name = "child",
                        .name_len = 5,
                        .root = "root",
                        .root_len = 4,
                        .arg = payload,
                        .arg_len = 300};
    memset(h.secret, 0xa5, sizeof h.secret);
    f = gr__wire_hello_frame(GR__WIRE_HELLO, &h, &len);
    n = add_sample(s, n, f, len);
    h.root = NULL;
    h.root_len = 0;
    h.arg = NULL;
    h.arg_len = 0;
    f = gr__wire_hello_frame(GR__WIRE_HELLO, &h, &len);
    n = add_sample(s, n, f, len);
    h.pid = INT32_MAX;
    h.root_serial = UINT64_MAX;
    f = gr__wire_hello_frame(GR__WIRE_WELCOME, &h, &len);
    n = add_sample(s, n, f, len);
    h.pid = 0;
    h.node = 0;
    h.root_serial = 1;
    f = gr__wire_hello_frame(GR__WIRE_WELCOME, &h, &len);
    n = add_sample(s, n, f, len);
    return n;
}

static void free_samples(sample *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i].frame);
}

/* Checks that decoding the first cut bytes of sample i fails properly. */
static void check_cut(const sample *s, size_t i, size_t cut)
{
    const char *why;
    int rc = decode_copy(s->frame[1], s->frame + GR__WIRE_HEADER, cut, &why);
    if (rc != GR_EPROTO || why == NULL)
        fprintf(stderr, "  sample %zu (kind %u) cut to %zu of %zu bytes\n", i,
                s->frame[1], cut, s->len - GR__WIRE_HEADER);
    CHECK_EQ(rc, GR_EPROTO);
    CHECK(why != NULL && why[0] != '\0');
}

static void test_truncation(void)
{
    sample s[SAMPLES_MAX];
    size_t n = build_samples(s);
    size_t cuts = 0;
    for (size_t i = 0; i < n && !test_failed_; i++) {
        const char *why;
        size_t blen = s[i].len - GR__WIRE_HEADER;
        /* The whole body decodes... */
        int rc = decode_copy(s[i].frame[1], s[i].frame + GR__WIRE_HEADER, blen,
                             &why);
        if (rc != GR_OK) {
            fprintf(stderr, "  sample %zu: %s\n", i, why);
            test_failed_ = 1;
            break;
        }
        /* ...and no strict prefix does. For long bodies: every cut within
         * the first and last 512 bytes (the payload's middle is opaque). */
        for (size_t cut = 0; cut < blen && !test_failed_; cut++) {
            if (blen > 4096 && cut == 512)
                cut = blen - 512;
            check_cut(&s[i], i, cut);
            cuts++;
        }
    }
    free_samples(s, n);
    CHECK(cuts > 1000);
}

static void test_trailing_bytes(void)
{
    sample s[SAMPLES_MAX];
    size_t n = build_samples(s);
    static const uint8_t extra[] = {0x00, 0x90, 0xc0, 0xff};
    for (size_t i = 0; i < n && !test_failed_; i++) {
        size_t blen = s[i].len - GR__WIRE_HEADER;
        for (size_t e = 1; e <= sizeof extra && !test_failed_; e++) {
            uint8_t *b = malloc(blen + e);
            if (b == NULL)
                abort();
            memcpy(b, s[i].frame + GR__WIRE_HEADER, blen);
            memcpy(b + blen, extra, e);
            const char *why;
            int rc = decode_copy(s[i].frame[1], b, blen + e, &why);
            free(b);
            if (rc != GR_EPROTO)
                fprintf(stderr, "  sample %zu with %zu extra bytes\n", i, e);
            CHECK_EQ(rc, GR_EPROTO);
            CHECK(why != NULL && strstr(why, "trailing") != NULL);
        }
    }
    free_samples(s, n);
}

/* Concatenated samples form a stream a link reader walks frame by frame. */
static void test_frame_stream(void)
{
    sample s[SAMPLES_MAX];
    size_t n = build_samples(s), total = 0;
    for (size_t i = 0; i < n; i++)
        total += s[i].len;
    uint8_t *stream = malloc(total);
    if (stream == NULL)
        abort();
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(stream + off, s[i].frame, s[i].len);
        off += s[i].len;
    }
    size_t seen = 0;
    off = 0;
    while (total - off >= GR__WIRE_HEADER && !test_failed_) {
        gr__wire_header h;
        CHECK_EQ(gr__wire_header_parse(stream + off, &h), GR_OK);
        CHECK(total - off - GR__WIRE_HEADER >= h.len);
        CHECK_EQ(h.kind, s[seen].frame[1]);
        const char *why;
        CHECK_EQ(
            decode_copy(h.kind, stream + off + GR__WIRE_HEADER, h.len, &why),
            GR_OK);
        off += GR__WIRE_HEADER + h.len;
        seen++;
    }
    free(stream);
    free_samples(s, n);
    CHECK_EQ(off, total);
    CHECK_EQ(seen, n);
}

/* ---- Headers. */

static void test_header_parse(void)
{
    gr__wire_header h;
    for (unsigned k = 1; k <= GR__WIRE_KIND_MAX; k++) {
        const uint8_t p[6] = {
            GR__WIRE_VERSION, (uint8_t)k, 0x01, 0x02, 0x03, 0x04};
        CHECK_EQ(gr__wire_header_parse(p, &h), GR_OK);
        CHECK_EQ(h.version, GR__WIRE_VERSION);
        CHECK_EQ(h.kind, k);
        CHECK_EQ(h.len, 0x01020304);
    }
    /* The length is the caller's to check: all of u32 parses. */
    const uint8_t big[6] = {
        GR__WIRE_VERSION, GR__WIRE_MSG, 0xff, 0xff, 0xff, 0xff};
    CHECK_EQ(gr__wire_header_parse(big, &h), GR_OK);
    CHECK(h.len == UINT32_MAX);
    const uint8_t zero[6] = {GR__WIRE_VERSION, GR__WIRE_SHUTDOWN, 0, 0, 0, 0};
    CHECK_EQ(gr__wire_header_parse(zero, &h), GR_OK);
    CHECK_EQ(h.len, 0);

    /* Kind 0 and every kind past the last; the fields are still filled in (a
     * link reader reports which one was wrong). */
    for (unsigned k = 0; k <= 255; k = k == 0 ? GR__WIRE_KIND_MAX + 1 : k + 1) {
        const uint8_t p[6] = {GR__WIRE_VERSION, (uint8_t)k, 0, 0, 0, 1};
        CHECK_EQ(gr__wire_header_parse(p, &h), GR_EPROTO);
        CHECK_EQ(h.version, GR__WIRE_VERSION);
        CHECK_EQ(h.kind, k);
    }
    /* Every other version, with a valid kind. */
    for (unsigned v = 0; v <= 255; v++) {
        if (v == GR__WIRE_VERSION)
            continue;
        const uint8_t p[6] = {(uint8_t)v, GR__WIRE_MSG, 0, 0, 0, 1};
        CHECK_EQ(gr__wire_header_parse(p, &h), GR_EPROTO);
        CHECK_EQ(h.version, v);
    }
}

/* ---- Hand-made bodies. */

/* Expects decoding n bytes at p as kind to fail; why must contain want
 * when given. */
static void reject_body(uint8_t kind, const uint8_t *p, size_t n,
                        const char *want, int line)
{
    const char *why;
    int rc = decode_copy(kind, p, n, &why);
    if (rc != GR_EPROTO || why == NULL ||
        (want != NULL && strstr(why, want) == NULL))
        fprintf(stderr, "  body from line %d: rc %d, why \"%s\"\n", line, rc,
                why ? why : "(null)");
    CHECK_EQ(rc, GR_EPROTO);
    CHECK(why != NULL);
    if (want != NULL)
        CHECK(strstr(why, want) != NULL);
}

static void accept_body(uint8_t kind, const uint8_t *p, size_t n, int line)
{
    const char *why;
    int rc = decode_copy(kind, p, n, &why);
    if (rc != GR_OK)
        fprintf(stderr, "  body from line %d: %s\n", line, why);
    CHECK_EQ(rc, GR_OK);
}

#define REJECT(kind, want, ...)                                                \
    do {                                                                       \
        static const uint8_t b_[] = {__VA_ARGS__};                             \
        reject_body(kind, b_, sizeof b_, want, __LINE__);                      \
        if (test_failed_)                                                      \
            return;                                                            \
    } while (0)

#define ACCEPT(kind, ...)                                                      \
    do {                                                                       \
        static const uint8_t b_[] = {__VA_ARGS__};                             \
        accept_body(kind, b_, sizeof b_, __LINE__);                            \
        if (test_failed_)                                                      \
            return;                                                            \
    } while (0)

/* The nine unsigned fields of a MSG before its payload, all zero. */
#define NINE_ZEROS 0, 0, 0, 0, 0, 0, 0, 0, 0
/* A NAMED's fields after the name, all zero, with an empty payload. */
#define ENVELOPE_ZEROS 0, 0, 0, 0, 0, 0, 0xc4, 0
/* A 16-byte secret. */
#define SECRET16 0xc4, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16

/* Bodies that claim more elements or bytes than they hold are refused from
 * the bytes present; the reader works in place and never sizes anything
 * from a claimed count. */
static void test_huge_claims(void)
{
    const int M = GR__WIRE_MSG, N = GR__WIRE_NAMED, H = GR__WIRE_HELLO;
    REJECT(M, "wrong number", 0xdd, 0xff, 0xff, 0xff, 0xff);
    REJECT(M, "wrong number", 0xdc, 0xff, 0xff);
    REJECT(H, "wrong number", 0xdd, 0xff, 0xff, 0xff, 0xff);
    REJECT(GR__WIRE_SHUTDOWN, "wrong number", 0xdd, 0xff, 0xff, 0xff, 0xff);
    /* Payload bin32 claiming 4 GiB - 1 (and 2 GiB) with a few bytes. */
    REJECT(M, "truncated", 0x9a, NINE_ZEROS, 0xc6, 0xff, 0xff, 0xff, 0xff);
    REJECT(M, "truncated", 0x9a, NINE_ZEROS, 0xc6, 0x80, 0, 0, 0, 1, 2, 3);
    REJECT(M, "truncated", 0x9a, NINE_ZEROS, 0xc5, 0xff, 0xff, 1);
    REJECT(M, "truncated", 0x9a, NINE_ZEROS, 0xc4, 0xff, 1);
    /* A name claiming 4 GiB - 1 bytes is over GR_NAME_MAX first. */
    REJECT(N, "too long", 0x99, 0, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a');
    REJECT(N, "too long", 0x99, 0, 0xda, 0xff, 0xff, 'a');
    /* A secret claiming 4 GiB - 1 bytes; a HELLO arg claiming as much. */
    REJECT(H, "too long", 0x99, 0xc6, 0xff, 0xff, 0xff, 0xff);
    REJECT(H, "truncated", 0x99, SECRET16, 1, 1, 0, 0, 0, 0xa1, 'n', 0xa0, 0xc6,
           0xff, 0xff, 0xff, 0xff, 0);
    /* Length fields cut short. */
    REJECT(M, "truncated", 0xdd, 0, 0, 0);
    REJECT(M, "truncated", 0x9a, NINE_ZEROS, 0xc6, 0, 0);
    REJECT(N, "truncated", 0x99, 0, 0xd9);
}

static void test_name_too_long(void)
{
    char n64[GR_NAME_MAX + 1];
    memset(n64, 'z', sizeof n64);
    /* NAMED by hand (the encoder asserts its caller checked the name):
     * [1, str8 of 64, 1, 1, 1, 1, 0, 0, bin8 of 0]. */
    uint8_t named[4 + GR_NAME_MAX + 1 + 8] = {0x99, 1, 0xd9, GR_NAME_MAX + 1};
    memset(named + 4, 'z', GR_NAME_MAX + 1);
    memcpy(named + 4 + GR_NAME_MAX + 1, "\x01\x01\x01\x01\x00\x00\xc4\x00", 8);
    reject_body(GR__WIRE_NAMED, named, sizeof named, "too long", __LINE__);
    if (test_failed_)
        return;
    gr_msg m = msg_all(1, 1, NULL, 0);
    size_t flen;
    uint8_t *f = named_frame(1, n64, GR_NAME_MAX, &m, &flen);
    accept_body(GR__WIRE_NAMED, f + GR__WIRE_HEADER, flen - GR__WIRE_HEADER,
                __LINE__);
    free(f);
    if (test_failed_)
        return;

    /* WHEREIS by hand too: [str8 of 64, 0, 0, 0, 1]. */
    uint8_t where[2 + GR_NAME_MAX + 1 + 5] = {0x95, 0xd9, GR_NAME_MAX + 1};
    memset(where + 3, 'w', GR_NAME_MAX + 1);
    memcpy(where + 3 + GR_NAME_MAX + 1, "\x00\x00\x00\x01", 4);
    reject_body(GR__WIRE_WHEREIS, where, sizeof where - 1, "too long",
                __LINE__);
    if (test_failed_)
        return;
    uint8_t wf[GR__WIRE_PREFIX_MAX];
    flen = gr__wire_whereis_frame(wf, n64, GR_NAME_MAX, GR_REF_NONE, 1);
    accept_body(GR__WIRE_WHEREIS, wf + GR__WIRE_HEADER, flen - GR__WIRE_HEADER,
                __LINE__);
    if (test_failed_)
        return;

    /* NODE_UP by hand (its encoder truncates): str8 of 64 and of 63. */
    uint8_t up[5 + GR_NAME_MAX + 1] = {0x93, 5, 6, 0xd9, GR_NAME_MAX + 1};
    memset(up + 5, 'u', GR_NAME_MAX + 1);
    reject_body(GR__WIRE_NODE_UP, up, sizeof up, "too long", __LINE__);
    if (test_failed_)
        return;
    up[4] = GR_NAME_MAX;
    accept_body(GR__WIRE_NODE_UP, up, sizeof up - 1, __LINE__);
    if (test_failed_)
        return;

    /* HELLO: the node's name, then the root's name. */
    gr__wire_hello h = {
        .name = n64, .name_len = GR_NAME_MAX + 1, .root = "r", .root_len = 1};
    for (int which = 0; which < 2 && !test_failed_; which++) {
        if (which == 1) {
            h.name_len = 1;
            h.root = n64;
            h.root_len = GR_NAME_MAX + 1;
        }
        uint8_t *hf = gr__wire_hello_frame(GR__WIRE_HELLO, &h, &flen);
        CHECK(hf != NULL);
        reject_body(GR__WIRE_HELLO, hf + GR__WIRE_HEADER,
                    flen - GR__WIRE_HEADER, "too long", __LINE__);
        free(hf);
    }
}

/* The reader takes exactly the shapes the encoders write: types, counts,
 * ranges and the kind-to-decoder match are all checked. */
static void test_strict_shapes(void)
{
    const int M = GR__WIRE_MSG, N = GR__WIRE_NAMED, U = GR__WIRE_NODE_UP;
    const int D = GR__WIRE_NODE_DOWN, S = GR__WIRE_SHUTDOWN;
    const int H = GR__WIRE_HELLO, W = GR__WIRE_WELCOME;

    ACCEPT(M, 0x9a, NINE_ZEROS, 0xc4, 0);
    ACCEPT(M, 0xdc, 0, 10, NINE_ZEROS, 0xc4, 0);             /* array16 */
    ACCEPT(M, 0xdd, 0, 0, 0, 10, NINE_ZEROS, 0xc5, 0, 1, 7); /* array32 */
    ACCEPT(M, 0x9a, NINE_ZEROS, 0xc6, 0, 0, 0, 2, 7, 8);     /* bin32 */
    /* Wider encodings than needed are accepted. */
    ACCEPT(M, 0x9a, 0xcf, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xce, 0, 0, 0, 1,
           0xcd, 0, 1, 0xcc, 0, 0, 0, 0, 0, 0, 0xc4, 0);
    /* Array counts other than the kind's. */
    REJECT(M, "wrong number", 0x99, NINE_ZEROS);
    REJECT(M, "wrong number", 0x9b, NINE_ZEROS, 0xc4, 0, 0);
    REJECT(M, "wrong number", 0x90);
    REJECT(S, "wrong number", 0x91, 0);
    ACCEPT(GR__WIRE_ACK, 0x91, 0);
    ACCEPT(GR__WIRE_ACK, 0x91, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
           0xff);
    REJECT(GR__WIRE_ACK, "wrong number", 0x90);
    REJECT(GR__WIRE_ACK, "wrong number", 0x92, 1, 2);
    REJECT(GR__WIRE_ACK, "unsigned", 0x91, 0xd0, 1);
    REJECT(D, "wrong number", 0x93, 0, 0, 0xa1, 'x');
    REJECT(U, "wrong number", 0x92, 0, 0);
    /* Not an array at all. */
    REJECT(M, "expected an array", 0x8a);
    REJECT(M, "expected an array", 0xc0);
    reject_body(S, NULL, 0, "truncated", __LINE__);
    if (test_failed_)
        return;
    /* Signed, negative, nil, float and bool where an unsigned goes. */
    REJECT(M, "unsigned", 0x9a, 0xd0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xc4, 0);
    REJECT(M, "unsigned", 0x9a, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0xc4, 0);
    REJECT(M, "unsigned", 0x9a, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0xc4, 0);
    REJECT(M, "unsigned", 0x9a, 0, 0, 0xc3, 0, 0, 0, 0, 0, 0, 0xc4, 0);
    REJECT(M, "unsigned", 0x9a, 0, 0, 0, 0xca, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
           0xc4, 0);
    /* A u32 field holding 2^32; a u64 field holding UINT64_MAX is fine. */
    REJECT(M, "out of range", 0x9a, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
           0, 0, 0, 0, 0xc4, 0);
    ACCEPT(M, 0x9a, 0, 0, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
           0, 0, 0, 0, 0, 0, 0xc4, 0);
    /* A str where the payload's bin goes, and a bin where a name's str. */
    REJECT(M, "expected bytes", 0x9a, NINE_ZEROS, 0xa1, 'x');
    REJECT(N, "expected a string", 0x99, 0, 0xc4, 1, 'x', ENVELOPE_ZEROS);
    /* Names are never empty, and never hold a NUL. */
    REJECT(N, "empty name", 0x99, 0, 0xa0, ENVELOPE_ZEROS);
    REJECT(U, "empty node name", 0x93, 0, 0, 0xa0);
    REJECT(N, "NUL byte", 0x99, 0, 0xa2, 'x', 0, ENVELOPE_ZEROS);
    REJECT(GR__WIRE_WHEREIS, "empty name", 0x95, 0xa0, 0, 0, 0, 0);
    ACCEPT(GR__WIRE_WHEREIS, 0x95, 0xa1, 'x', 0, 0, 0, 0);
    REJECT(GR__WIRE_WHEREIS, "wrong number", 0x94, 0xa1, 'x', 0, 0, 0);
    REJECT(GR__WIRE_WHEREIS, "expected a string", 0x95, 0xc4, 1, 'x', 0, 0, 0,
           0);
    REJECT(GR__WIRE_WHEREIS, "out of range", 0x95, 0xa1, 'x', 0xcf, 0, 0, 0, 1,
           0, 0, 0, 0, 0, 0, 0);
    ACCEPT(N, 0x99, 0, 0xa1, 'x', ENVELOPE_ZEROS);
    ACCEPT(U, 0x93, 0, 0, 0xa1, 'u');
    ACCEPT(D, 0x92, 0xce, 0xff, 0xff, 0xff, 0xff, 0);
    ACCEPT(S, 0x90);
    ACCEPT(S, 0xdc, 0, 0);

    /* The handshake: secret exactly 16 bytes, a node name, pid up to
     * INT32_MAX, max_frame up to UINT32_MAX. */
    ACCEPT(H, 0x99, SECRET16, 1, 1, 0, 0, 0, 0xa1, 'n', 0xa0, 0xc4, 0);
    REJECT(H, "wrong size", 0x99, 0xc4, 15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
           12, 13, 14, 15, 1, 1, 0, 0, 0, 0xa1, 'n', 0xa0, 0xc4, 0);
    REJECT(H, "too long", 0x99, 0xc4, 17, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
           13, 14, 15, 16, 17, 1, 1, 0, 0, 0, 0xa1, 'n', 0xa0, 0xc4, 0);
    REJECT(H, "empty node name", 0x99, SECRET16, 1, 1, 0, 0, 0, 0xa0, 0xa0,
           0xc4, 0);
    ACCEPT(H, 0x99, SECRET16, 1, 1, 0, 0, 0xce, 0xff, 0xff, 0xff, 0xff, 0xa1,
           'n', 0xa0, 0xc4, 0);
    REJECT(H, "out of range", 0x99, SECRET16, 1, 1, 0, 0, 0xcf, 0, 0, 0, 1, 0,
           0, 0, 0, 0xa1, 'n', 0xa0, 0xc4, 0);
    ACCEPT(W, 0x95, SECRET16, 1, 1, 0xce, 0x7f, 0xff, 0xff, 0xff, 1);
    ACCEPT(W, 0x95, SECRET16, 1, 1, 0, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
           0xff, 0xff);
    REJECT(W, "out of range", 0x95, SECRET16, 1, 1, 0xce, 0x80, 0, 0, 0, 1);
    REJECT(W, "wrong size", 0x95, 0xc4, 0, 1, 1, 0, 1);
    REJECT(W, "no root", 0x95, SECRET16, 1, 1, 1, 0);
    /* Version 1's WELCOME, without the root: refused. */
    REJECT(W, "wrong number", 0x94, SECRET16, 1, 1, 1);
    REJECT(W, "wrong number", 0x99, SECRET16, 1, 1, 0, 0, 0, 0xa1, 'n', 0xa0,
           0xc4, 0);
    REJECT(H, "wrong number", 0x94, SECRET16, 1, 1, 0);

    /* Each decoder takes only its own kinds. */
    static const uint8_t shutdown[] = {0x90};
    static const uint8_t welcome[] = {0x94, SECRET16, 1, 1, 0};
    static const uint8_t bad_kinds[] = {0, GR__WIRE_HELLO, GR__WIRE_WELCOME,
                                        GR__WIRE_KIND_MAX + 1, 255};
    for (size_t i = 0; i < sizeof bad_kinds; i++) {
        gr__wire_frame f;
        const char *why = NULL;
        CHECK_EQ(
            gr__wire_decode(bad_kinds[i], shutdown, sizeof shutdown, &f, &why),
            GR_EPROTO);
        CHECK(why != NULL);
    }
    for (uint8_t k = GR__WIRE_MSG; k <= GR__WIRE_KIND_MAX; k++) {
        gr__wire_hello h;
        const char *why = NULL;
        CHECK_EQ(gr__wire_decode_hello(k, welcome, sizeof welcome, &h, &why),
                 GR_EPROTO);
        CHECK(why != NULL);
    }
}

/* ---- The ring. */

/* The ring's fields, to check a refused reserve changed nothing. */
static bool ring_same(const gr__ring *a, const gr__ring *b)
{
    return a->buf == b->buf && a->cap == b->cap && a->head == b->head &&
           a->len == b->len && a->limit == b->limit;
}

/* Checks the ring holds exactly want[0..n), through peek and iov. */
static void check_ring(const gr__ring *r, const uint8_t *want, size_t n)
{
    CHECK_EQ(r->len, n);
    if (n == 0) {
        struct iovec iov[2];
        CHECK_EQ(gr__ring_iov(r, iov), 0);
        return;
    }
    uint8_t *got = malloc(n);
    if (got == NULL)
        abort();
    gr__ring_peek(r, 0, got, n);
    bool peek_ok = memcmp(got, want, n) == 0;
    struct iovec iov[2];
    int k = gr__ring_iov(r, iov);
    bool iov_ok = k == 1 || k == 2;
    size_t off = 0;
    for (int i = 0; i < k && iov_ok; i++) {
        iov_ok = iov[i].iov_len > 0 && off + iov[i].iov_len <= n &&
                 memcmp(iov[i].iov_base, want + off, iov[i].iov_len) == 0;
        off += iov[i].iov_len;
    }
    iov_ok = iov_ok && off == n;
    /* Two segments exactly when the bytes wrap past the end. */
    iov_ok = iov_ok && (k == 2) == (r->head + r->len > r->cap);
    free(got);
    CHECK(peek_ok);
    CHECK(iov_ok);
}

static void test_ring_limit(void)
{
    gr__ring r;
    gr__ring_init(&r, 100);
    CHECK(r.buf == NULL && r.cap == 0 && r.len == 0 && r.limit == 100);
    gr__ring before = r;
    CHECK(!gr__ring_reserve(&r, 101));
    CHECK(ring_same(&r, &before));
    CHECK(!gr__ring_reserve(&r, SIZE_MAX));
    CHECK(ring_same(&r, &before));
    CHECK(gr__ring_reserve(&r, 0));
    /* A limit under the minimum allocation caps the allocation. */
    CHECK(gr__ring_reserve(&r, 100));
    CHECK_EQ(r.cap, 100);
    uint8_t data[100];
    fill(data, sizeof data, 5);
    gr__ring_put(&r, data, 60);
    before = r;
    CHECK(!gr__ring_reserve(&r, 41));
    CHECK(ring_same(&r, &before));
    CHECK(!gr__ring_reserve(&r, SIZE_MAX));
    CHECK(!gr__ring_reserve(&r, SIZE_MAX - 59));
    CHECK(ring_same(&r, &before));
    check_ring(&r, data, 60);
    if (test_failed_)
        goto out;
    CHECK(gr__ring_reserve(&r, 40));
    gr__ring_put(&r, data + 60, 40);
    check_ring(&r, data, 100);
    if (test_failed_)
        goto out;
    CHECK(!gr__ring_reserve(&r, 1));
    CHECK(gr__ring_reserve(&r, 0));
    gr__ring_consume(&r, 100);
    CHECK(r.len == 0 && r.head == 0);
    CHECK(gr__ring_reserve(&r, 100));

    /* A zero limit refuses everything but nothing. */
    gr__ring z;
    gr__ring_init(&z, 0);
    CHECK(!gr__ring_reserve(&z, 1));
    CHECK(gr__ring_reserve(&z, 0));
    gr__ring_destroy(&z);
out:
    gr__ring_destroy(&r);
    CHECK(r.buf == NULL && r.cap == 0 && r.len == 0 && r.limit == 100);
}

static void test_ring_wrap(void)
{
    uint8_t src[64];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)i;
    gr__ring r;
    gr__ring_init(&r, 16);
    CHECK(gr__ring_reserve(&r, 10));
    CHECK_EQ(r.cap, 16);
    gr__ring_put(&r, src, 10); /* 0..9 at [0, 10) */
    gr__ring_consume(&r, 8);   /* 8, 9 left at [8, 10) */
    CHECK_EQ(r.head, 8);
    CHECK(gr__ring_reserve(&r, 12));
    CHECK_EQ(r.cap, 16); /* Fits: no growth, no move. */
    CHECK_EQ(r.head, 8);
    gr__ring_put(&r, src + 10, 12); /* 10..15 at [10, 16), 16..21 at [0, 6) */
    check_ring(&r, src + 8, 14);
    if (test_failed_)
        goto out;
    struct iovec iov[2];
    CHECK_EQ(gr__ring_iov(&r, iov), 2);
    CHECK(iov[0].iov_base == r.buf + 8 && iov[0].iov_len == 8);
    CHECK(iov[1].iov_base == r.buf && iov[1].iov_len == 6);
    /* Peeks inside each part and across the wrap point. */
    uint8_t got[14];
    gr__ring_peek(&r, 5, got, 6);
    CHECK(memcmp(got, src + 13, 6) == 0);
    gr__ring_peek(&r, 8, got, 6);
    CHECK(memcmp(got, src + 16, 6) == 0);
    gr__ring_peek(&r, 1, got, 3);
    CHECK(memcmp(got, src + 9, 3) == 0);
    /* Consuming exactly up to the wrap point leaves one segment at 0. */
    gr__ring_consume(&r, 8);
    CHECK_EQ(r.head, 0);
    check_ring(&r, src + 16, 6);
    if (test_failed_)
        goto out;
    /* Fill to the limit across the end again, then drain in odd steps. */
    gr__ring_consume(&r, 5); /* 21 at [5, 6) */
    uint8_t *buf = r.buf;
    CHECK(gr__ring_reserve(&r, 15)); /* Exactly full: no reallocation. */
    CHECK(r.buf == buf && r.head == 5 && r.cap == 16);
    CHECK(!gr__ring_reserve(&r, 16));
    gr__ring_put(&r, src + 22, 15); /* 22..31 at [6, 16), 32..36 at [0, 5) */
    check_ring(&r, src + 21, 16);
    if (test_failed_)
        goto out;
    size_t at = 21;
    while (r.len > 0 && !test_failed_) {
        size_t step = r.len < 3 ? r.len : 3;
        gr__ring_consume(&r, step);
        at += step;
        check_ring(&r, src + at, 37 - at);
    }
    CHECK_EQ(r.head, 0);
out:
    gr__ring_destroy(&r);
}

static void test_ring_growth(void)
{
    enum { MIN = 64 << 10, LIMIT = 1 << 20 };
    uint8_t *src = malloc(2 * LIMIT);
    if (src == NULL)
        abort();
    fill(src, 2 * LIMIT, 6);
    gr__ring r;
    gr__ring_init(&r, LIMIT);
    CHECK(gr__ring_reserve(&r, 60000));
    CHECK_EQ(r.cap, MIN);
    gr__ring_put(&r, src, 60000);
    gr__ring_consume(&r, 50000);
    CHECK(gr__ring_reserve(&r, 50000));
    CHECK_EQ(r.cap, MIN);
    gr__ring_put(&r, src + 60000, 50000); /* Wraps: head 50000, len 60000. */
    check_ring(&r, src + 50000, 60000);
    if (test_failed_)
        goto out;
    struct iovec iov[2];
    CHECK_EQ(gr__ring_iov(&r, iov), 2);
    /* Growing moves the wrapped bytes to the start, oldest first. */
    uint8_t *old = r.buf;
    CHECK(gr__ring_reserve(&r, 100000)); /* 160000 bytes: 256 KiB. */
    CHECK(r.buf != old);
    CHECK_EQ(r.cap, 4 * MIN);
    CHECK_EQ(r.head, 0);
    check_ring(&r, src + 50000, 60000);
    if (test_failed_)
        goto out;
    gr__ring_put(&r, src + 110000, 100000);
    check_ring(&r, src + 50000, 160000);
    if (test_failed_)
        goto out;
    /* Wrap again at the new size, then grow to the limit exactly. */
    gr__ring_consume(&r, 150000); /* head 150000, len 10000 */
    CHECK(gr__ring_reserve(&r, 150000));
    CHECK_EQ(r.cap, 4 * MIN);
    gr__ring_put(&r, src + 210000, 150000);
    check_ring(&r, src + 200000, 160000);
    if (test_failed_)
        goto out;
    CHECK_EQ(gr__ring_iov(&r, iov), 2);
    CHECK(!gr__ring_reserve(&r, LIMIT - 160000 + 1));
    CHECK(gr__ring_reserve(&r, LIMIT - 160000));
    CHECK_EQ(r.cap, LIMIT);
    CHECK_EQ(r.head, 0);
    check_ring(&r, src + 200000, 160000);
    if (test_failed_)
        goto out;
    gr__ring_put(&r, src + 360000, LIMIT - 160000);
    check_ring(&r, src + 200000, LIMIT);
out:
    gr__ring_destroy(&r);
    free(src);
}

/* Random reserves, puts, consumes and peeks against a plain array. */
static void test_ring_model(void)
{
    enum { LIMIT = 200000, STEPS = 4000 };
    uint8_t *model = malloc(LIMIT), *chunk = malloc(LIMIT),
            *got = malloc(LIMIT);
    if (model == NULL || chunk == NULL || got == NULL)
        abort();
    uint64_t x = 0x9e3779b97f4a7c15ull;
    gr__ring r;
    gr__ring_init(&r, LIMIT);
    size_t len = 0;
    uint8_t next = 0;
    for (int step = 0; step < STEPS && !test_failed_; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = (size_t)(x >> 20) % (step % 50 == 0 ? LIMIT : 9000);
        switch ((x >> 8) % 4) {
        case 0:
        case 1: {
            gr__ring before = r;
            bool ok = gr__ring_reserve(&r, n);
            CHECK_EQ(ok, len + n <= LIMIT);
            if (!ok) {
                CHECK(ring_same(&r, &before));
                break;
            }
            for (size_t i = 0; i < n; i++)
                chunk[i] = next++;
            gr__ring_put(&r, chunk, n);
            memcpy(model + len, chunk, n);
            len += n;
            break;
        }
        case 2:
            n = len ? n % (len + 1) : 0;
            gr__ring_consume(&r, n);
            memmove(model, model + n, len - n);
            len -= n;
            break;
        default:
            if (len != 0) {
                size_t off = n % len, k = (x >> 40) % (len - off + 1);
                gr__ring_peek(&r, off, got, k);
                CHECK(memcmp(got, model + off, k) == 0);
            }
            break;
        }
        CHECK(r.cap <= LIMIT);
        check_ring(&r, model, len);
    }
    gr__ring_destroy(&r);
    free(model);
    free(chunk);
    free(got);
}

TEST_MAIN(TEST_CASE(test_msg_round_trip), TEST_CASE(test_named_round_trip),
          TEST_CASE(test_node_frames), TEST_CASE(test_whereis_round_trip),
          TEST_CASE(test_ack_round_trip), TEST_CASE(test_hello_round_trip),
          TEST_CASE(test_truncation), TEST_CASE(test_trailing_bytes),
          TEST_CASE(test_frame_stream), TEST_CASE(test_header_parse),
          TEST_CASE(test_huge_claims), TEST_CASE(test_name_too_long),
          TEST_CASE(test_strict_shapes), TEST_CASE(test_ring_limit),
          TEST_CASE(test_ring_wrap), TEST_CASE(test_ring_growth),
          TEST_CASE(test_ring_model))
