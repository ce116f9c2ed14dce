/* The wire format: frame encoding with msgpack-c's packer, and a strict
 * in-place reader for the fixed frame shapes (see wire.h). */
#include "transport/wire.h"

#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "actor/runtime.h"

/* A msgpack_packer target: a fixed buffer the caller sized. */
typedef struct fixbuf {
    uint8_t *p;
    size_t n;
} fixbuf;

static int fix_write(void *data, const char *buf, size_t len)
{
    fixbuf *b = data;
    memcpy(b->p + b->n, buf, len);
    b->n += len;
    return 0;
}

static void put_header(uint8_t *p, uint8_t kind, size_t body)
{
    p[0] = GR__WIRE_VERSION;
    p[1] = kind;
    p[2] = (uint8_t)(body >> 24);
    p[3] = (uint8_t)(body >> 16);
    p[4] = (uint8_t)(body >> 8);
    p[5] = (uint8_t)body;
}

int gr__wire_header_parse(const uint8_t *p, gr__wire_header *h)
{
    h->version = p[0];
    h->kind = p[1];
    h->len = (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 |
             (uint32_t)p[5];
    if (h->version != GR__WIRE_VERSION || h->kind == 0 ||
        h->kind > GR__WIRE_KIND_MAX)
        return GR_EPROTO;
    return GR_OK;
}

static void pack_ref(msgpack_packer *pk, gr_ref r)
{
    msgpack_pack_uint32(pk, r.node);
    msgpack_pack_uint32(pk, r.incarnation);
    msgpack_pack_uint64(pk, r.serial);
}

/* The envelope fields after the target: sender, type, corr, flags, and the
 * payload's bin header. */
static void pack_envelope(msgpack_packer *pk, const gr_msg *m)
{
    pack_ref(pk, m->from);
    msgpack_pack_uint32(pk, m->type);
    msgpack_pack_uint64(pk, m->corr);
    msgpack_pack_uint32(pk, m->flags);
    msgpack_pack_bin(pk, m->len);
}

size_t gr__wire_msg_prefix(uint8_t *buf, const gr_msg *m)
{
    fixbuf b = {buf, GR__WIRE_HEADER};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, fix_write);
    msgpack_pack_array(&pk, 10);
    pack_ref(&pk, m->to);
    pack_envelope(&pk, m);
    put_header(buf, GR__WIRE_MSG, b.n - GR__WIRE_HEADER + m->len);
    return b.n;
}

size_t gr__wire_named_prefix(uint8_t *buf, uint32_t node, const char *name,
                             size_t name_len, const gr_msg *m)
{
    GR_ASSERT(name_len <= GR_NAME_MAX && "callers check names");
    fixbuf b = {buf, GR__WIRE_HEADER};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, fix_write);
    msgpack_pack_array(&pk, 9);
    msgpack_pack_uint32(&pk, node);
    msgpack_pack_str_with_body(&pk, name, name_len);
    pack_envelope(&pk, m);
    put_header(buf, GR__WIRE_NAMED, b.n - GR__WIRE_HEADER + m->len);
    return b.n;
}

size_t gr__wire_node_frame(uint8_t *buf, uint8_t kind, uint32_t node,
                           uint32_t incarnation, const char *name)
{
    fixbuf b = {buf, GR__WIRE_HEADER};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, fix_write);
    if (kind == GR__WIRE_SHUTDOWN) {
        msgpack_pack_array(&pk, 0);
    } else if (kind == GR__WIRE_NODE_UP) {
        size_t n = strnlen(name, GR_NAME_MAX);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint32(&pk, node);
        msgpack_pack_uint32(&pk, incarnation);
        msgpack_pack_str_with_body(&pk, name, n);
    } else {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint32(&pk, node);
        msgpack_pack_uint32(&pk, incarnation);
    }
    put_header(buf, kind, b.n - GR__WIRE_HEADER);
    return b.n;
}

size_t gr__wire_whereis_frame(uint8_t *buf, const char *name, size_t name_len,
                              gr_ref reply_to, uint64_t corr)
{
    GR_ASSERT(name_len <= GR_NAME_MAX && "callers check names");
    fixbuf b = {buf, GR__WIRE_HEADER};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, fix_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_str_with_body(&pk, name, name_len);
    pack_ref(&pk, reply_to);
    msgpack_pack_uint64(&pk, corr);
    put_header(buf, GR__WIRE_WHEREIS, b.n - GR__WIRE_HEADER);
    return b.n;
}

size_t gr__wire_ack_frame(uint8_t *buf, uint64_t acked)
{
    fixbuf b = {buf, GR__WIRE_HEADER};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, fix_write);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_uint64(&pk, acked);
    put_header(buf, GR__WIRE_ACK, b.n - GR__WIRE_HEADER);
    return b.n;
}

uint8_t *gr__wire_hello_frame(uint8_t kind, const gr__wire_hello *h,
                              size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    static const uint8_t zero[GR__WIRE_HEADER];
    if (msgpack_sbuffer_write(&sb, (const char *)zero, sizeof zero) != 0)
        return NULL;
    int rc;
    if (kind == GR__WIRE_HELLO) {
        rc = msgpack_pack_array(&pk, 9) ||
             msgpack_pack_bin_with_body(&pk, h->secret, GR__WIRE_SECRET) ||
             msgpack_pack_uint32(&pk, h->node) ||
             msgpack_pack_uint32(&pk, h->incarnation) ||
             msgpack_pack_uint32(&pk, h->parent) ||
             msgpack_pack_uint32(&pk, h->parent_inc) ||
             msgpack_pack_uint64(&pk, h->max_frame) ||
             msgpack_pack_str_with_body(&pk, h->name, h->name_len) ||
             msgpack_pack_str_with_body(&pk, h->root, h->root_len) ||
             msgpack_pack_bin_with_body(&pk, h->arg, h->arg_len);
    } else {
        rc = msgpack_pack_array(&pk, 5) ||
             msgpack_pack_bin_with_body(&pk, h->secret, GR__WIRE_SECRET) ||
             msgpack_pack_uint32(&pk, h->node) ||
             msgpack_pack_uint32(&pk, h->incarnation) ||
             msgpack_pack_uint64(&pk, (uint64_t)h->pid) ||
             msgpack_pack_uint64(&pk, h->root_serial);
    }
    if (rc != 0) {
        msgpack_sbuffer_destroy(&sb);
        return NULL;
    }
    put_header((uint8_t *)sb.data, kind, sb.size - GR__WIRE_HEADER);
    *len = sb.size;
    return (uint8_t *)sb.data;
}

/* ---- Reading. Each reader checks that its bytes are there; after the
 * first failure every read fails and returns zeros. */

typedef struct reader {
    const uint8_t *p, *end;
    const char *why; /* First failure, or NULL. */
} reader;

static bool fail(reader *r, const char *why)
{
    if (r->why == NULL)
        r->why = why;
    r->p = r->end;
    return false;
}

/* Takes n big-endian bytes as an unsigned value. */
static bool take_be(reader *r, size_t n, uint64_t *v)
{
    if ((size_t)(r->end - r->p) < n)
        return fail(r, "truncated body");
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x << 8 | r->p[i];
    r->p += n;
    *v = x;
    return true;
}

/* read_uint's slow path: the multi-byte forms and every failure. */
static uint64_t read_uint_slow(reader *r, uint64_t max)
{
    if (r->p >= r->end) {
        fail(r, "truncated body");
        return 0;
    }
    uint8_t b = *r->p++;
    uint64_t v = 0;
    if (b <= 0x7f)
        v = b;
    else if (b >= 0xcc && b <= 0xcf)
        take_be(r, (size_t)1 << (b - 0xcc), &v);
    else {
        fail(r, "expected an unsigned integer");
        return 0;
    }
    if (v > max) {
        fail(r, "integer out of range");
        return 0;
    }
    return v;
}

/* Reads an unsigned integer of at most max. Inline for the one-byte form,
 * which most fields of most frames take. */
static inline uint64_t read_uint(reader *r, uint64_t max)
{
    if (r->p < r->end && *r->p <= 0x7f && *r->p <= max)
        return *r->p++;
    return read_uint_slow(r, max);
}

/* Reads an array header and checks it has exactly n elements. */
static bool read_array(reader *r, uint64_t n)
{
    if (r->p >= r->end)
        return fail(r, "truncated body");
    uint8_t b = *r->p++;
    uint64_t v;
    if (b >= 0x90 && b <= 0x9f)
        v = b & 0x0f;
    else if (b == 0xdc || b == 0xdd) {
        if (!take_be(r, b == 0xdc ? 2 : 4, &v))
            return false;
    } else
        return fail(r, "expected an array");
    return v == n ? true : fail(r, "wrong number of fields");
}

/* Reads a bin (str when is_str) of at most max bytes; returns a pointer
 * into the body (NULL for an empty one) and its length. */
static const uint8_t *read_bytes(reader *r, bool is_str, size_t max,
                                 size_t *len)
{
    *len = 0;
    if (r->p >= r->end) {
        fail(r, "truncated body");
        return NULL;
    }
    uint8_t b = *r->p++;
    uint64_t n;
    bool ok = true;
    if (is_str && b >= 0xa0 && b <= 0xbf)
        n = b & 0x1f;
    else if (is_str && b >= 0xd9 && b <= 0xdb)
        ok = take_be(r, (size_t)1 << (b - 0xd9), &n);
    else if (!is_str && b >= 0xc4 && b <= 0xc6)
        ok = take_be(r, (size_t)1 << (b - 0xc4), &n);
    else {
        fail(r, is_str ? "expected a string" : "expected bytes");
        return NULL;
    }
    if (!ok)
        return NULL;
    if (n > max) {
        fail(r, "field too long");
        return NULL;
    }
    if ((uint64_t)(r->end - r->p) < n) {
        fail(r, "truncated body");
        return NULL;
    }
    if (is_str && memchr(r->p, '\0', (size_t)n) != NULL) {
        fail(r, "NUL byte in a name");
        return NULL;
    }
    const uint8_t *p = n ? r->p : NULL;
    r->p += n;
    *len = (size_t)n;
    return p;
}

static gr_ref read_ref(reader *r)
{
    gr_ref ref;
    ref.node = (uint32_t)read_uint(r, UINT32_MAX);
    ref.incarnation = (uint32_t)read_uint(r, UINT32_MAX);
    ref.serial = read_uint(r, UINT64_MAX);
    return ref;
}

static void read_envelope(reader *r, gr_msg *m)
{
    m->from = read_ref(r);
    m->type = (uint32_t)read_uint(r, UINT32_MAX);
    m->corr = read_uint(r, UINT64_MAX);
    m->flags = (uint32_t)read_uint(r, UINT32_MAX);
    m->data = read_bytes(r, false, SIZE_MAX, &m->len);
}

/* Ends a read: the body must have been consumed exactly. */
static int finish(reader *r, const char **why)
{
    if (r->why == NULL && r->p != r->end)
        fail(r, "trailing bytes after the body");
    if (r->why == NULL)
        return GR_OK;
    *why = r->why;
    return GR_EPROTO;
}

int gr__wire_decode(uint8_t kind, const uint8_t *body, size_t len,
                    gr__wire_frame *out, const char **why)
{
    reader r = {body, body + len, NULL};
    memset(out, 0, sizeof *out);
    out->kind = kind;
    size_t n;
    switch (kind) {
    case GR__WIRE_MSG:
        if (read_array(&r, 10)) {
            out->msg.to = read_ref(&r);
            read_envelope(&r, &out->msg);
        }
        break;
    case GR__WIRE_NAMED:
        if (read_array(&r, 9)) {
            out->node = (uint32_t)read_uint(&r, UINT32_MAX);
            out->name = (const char *)read_bytes(&r, true, GR_NAME_MAX, &n);
            out->name_len = n;
            if (r.why == NULL && n == 0)
                fail(&r, "empty name");
            read_envelope(&r, &out->msg);
        }
        break;
    case GR__WIRE_NODE_UP:
    case GR__WIRE_NODE_DOWN:
        if (read_array(&r, kind == GR__WIRE_NODE_UP ? 3 : 2)) {
            out->node = (uint32_t)read_uint(&r, UINT32_MAX);
            out->incarnation = (uint32_t)read_uint(&r, UINT32_MAX);
            if (kind == GR__WIRE_NODE_UP) {
                out->name = (const char *)read_bytes(&r, true, GR_NAME_MAX, &n);
                out->name_len = n;
                if (r.why == NULL && n == 0)
                    fail(&r, "empty node name");
            }
        }
        break;
    case GR__WIRE_SHUTDOWN:
        read_array(&r, 0);
        break;
    case GR__WIRE_WHEREIS:
        if (read_array(&r, 5)) {
            out->name = (const char *)read_bytes(&r, true, GR_NAME_MAX, &n);
            out->name_len = n;
            if (r.why == NULL && n == 0)
                fail(&r, "empty name");
            out->reply_to = read_ref(&r);
            out->corr = read_uint(&r, UINT64_MAX);
        }
        break;
    case GR__WIRE_ACK:
        if (read_array(&r, 1))
            out->acked = read_uint(&r, UINT64_MAX);
        break;
    default:
        fail(&r, "frame kind not allowed after the handshake");
        break;
    }
    return finish(&r, why);
}

/* Reads the handshake's secret: bytes of exactly GR__WIRE_SECRET. */
static void read_secret(reader *r, uint8_t *out)
{
    size_t n;
    const uint8_t *secret = read_bytes(r, false, GR__WIRE_SECRET, &n);
    if (r->why == NULL && n != GR__WIRE_SECRET)
        fail(r, "secret of the wrong size");
    else if (secret != NULL)
        memcpy(out, secret, GR__WIRE_SECRET);
}

int gr__wire_decode_hello(uint8_t kind, const uint8_t *body, size_t len,
                          gr__wire_hello *out, const char **why)
{
    reader r = {body, body + len, NULL};
    memset(out, 0, sizeof *out);
    size_t n;
    if (kind == GR__WIRE_HELLO) {
        if (read_array(&r, 9)) {
            read_secret(&r, out->secret);
            out->node = (uint32_t)read_uint(&r, UINT32_MAX);
            out->incarnation = (uint32_t)read_uint(&r, UINT32_MAX);
            out->parent = (uint32_t)read_uint(&r, UINT32_MAX);
            out->parent_inc = (uint32_t)read_uint(&r, UINT32_MAX);
            out->max_frame = read_uint(&r, UINT32_MAX);
            out->name = (const char *)read_bytes(&r, true, GR_NAME_MAX, &n);
            out->name_len = n;
            if (r.why == NULL && n == 0)
                fail(&r, "empty node name");
            out->root = (const char *)read_bytes(&r, true, GR_NAME_MAX, &n);
            out->root_len = n;
            out->arg = read_bytes(&r, false, SIZE_MAX, &out->arg_len);
        }
    } else if (kind == GR__WIRE_WELCOME) {
        if (read_array(&r, 5)) {
            read_secret(&r, out->secret);
            out->node = (uint32_t)read_uint(&r, UINT32_MAX);
            out->incarnation = (uint32_t)read_uint(&r, UINT32_MAX);
            out->pid = (int64_t)read_uint(&r, INT32_MAX);
            out->root_serial = read_uint(&r, UINT64_MAX);
            if (r.why == NULL && out->root_serial == 0)
                fail(&r, "no root actor");
        }
    } else {
        fail(&r, "expected a handshake frame");
    }
    return finish(&r, why);
}
