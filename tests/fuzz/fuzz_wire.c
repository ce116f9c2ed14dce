/*
 * libFuzzer target for the wire format (transport/wire.h). The input is a
 * byte stream read the way a link reads its socket: frame after frame, a
 * 6-byte header, a length checked against a fixed maximum before anything
 * is allocated, then the body copied into a buffer of exactly that length
 * (so AddressSanitizer sees any read past it) and decoded: HELLO and
 * WELCOME with gr__wire_decode_hello, every later kind (MSG, NAMED,
 * NODE_UP, NODE_DOWN, SHUTDOWN, WHEREIS) with gr__wire_decode.
 *
 * Beyond "no crash, no sanitizer report", it checks:
 *   - a refusal is GR_EPROTO with a reason, and the other decoder refuses
 *     every kind that is not its own;
 *   - a decoded frame's pointers lie inside the body, names fit
 *     GR_NAME_MAX, and an empty payload is NULL;
 *   - every decoded frame re-encodes (gr__wire_msg_prefix and the other
 *     encoders) to a frame whose header is right, which decodes to the same
 *     fields, and whose own re-encoding is byte-identical (the encoders are
 *     canonical).
 * A failed check abort()s, which libFuzzer reports as a crash.
 */
#include "transport/wire.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Largest body the fuzzer accepts, as a link's max_frame would. */
#define FUZZ_MAX_BODY ((uint32_t)1 << 20)

static void need(bool cond)
{
    if (!cond)
        abort();
}

/* A malloc'd copy of exactly n bytes. */
static uint8_t *exact(const void *p, size_t n)
{
    uint8_t *q = malloc(n);
    if (q == NULL && n == 0)
        q = malloc(1);
    need(q != NULL);
    if (n != 0)
        memcpy(q, p, n);
    return q;
}

/* Whether [p, p + n) lies inside [body, body + len); n == 0 needs p NULL. */
static bool inside(const void *p, size_t n, const uint8_t *body, size_t len)
{
    if (n == 0)
        return p == NULL;
    const uint8_t *q = p;
    return q >= body && n <= len && q - body <= (ptrdiff_t)(len - n);
}

static bool same_ref(gr_ref a, gr_ref b)
{
    return a.node == b.node && a.incarnation == b.incarnation &&
           a.serial == b.serial;
}

static bool same_msg(const gr_msg *a, const gr_msg *b, bool with_to)
{
    return (!with_to || same_ref(a->to, b->to)) && same_ref(a->from, b->from) &&
           a->type == b->type && a->corr == b->corr && a->flags == b->flags &&
           a->len == b->len &&
           (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static bool same_hello(uint8_t kind, const gr__wire_hello *a,
                       const gr__wire_hello *b)
{
    bool same = memcmp(a->secret, b->secret, GR__WIRE_SECRET) == 0 &&
                a->node == b->node && a->incarnation == b->incarnation &&
                a->parent == b->parent && a->parent_inc == b->parent_inc &&
                a->pid == b->pid && a->max_frame == b->max_frame &&
                a->name_len == b->name_len && a->root_len == b->root_len &&
                a->arg_len == b->arg_len;
    if (same && kind == GR__WIRE_HELLO)
        same =
            memcmp(a->name, b->name, a->name_len) == 0 &&
            (a->root_len == 0 || memcmp(a->root, b->root, a->root_len) == 0) &&
            (a->arg_len == 0 || memcmp(a->arg, b->arg, a->arg_len) == 0);
    return same;
}

/* Checks a whole re-encoded frame's header and returns an exact copy of
 * its body. */
static uint8_t *reencoded_body(const uint8_t *frame, size_t flen, uint8_t kind)
{
    gr__wire_header h;
    need(flen >= GR__WIRE_HEADER);
    need(gr__wire_header_parse(frame, &h) == GR_OK);
    need(h.kind == kind && h.len == flen - GR__WIRE_HEADER);
    return exact(frame + GR__WIRE_HEADER, flen - GR__WIRE_HEADER);
}

/* Encodes a decoded frame of kind MSG..GR__WIRE_KIND_MAX into a malloc'd
 * buffer. */
static uint8_t *encode_frame(const gr__wire_frame *f, size_t *flen)
{
    uint8_t *frame = malloc(GR__WIRE_PREFIX_MAX + f->msg.len);
    need(frame != NULL);
    size_t plen;
    char name[GR_NAME_MAX + 1];
    switch (f->kind) {
    case GR__WIRE_MSG:
        plen = gr__wire_msg_prefix(frame, &f->msg);
        break;
    case GR__WIRE_NAMED:
        plen = gr__wire_named_prefix(frame, f->node, f->name, f->name_len,
                                     &f->msg);
        break;
    case GR__WIRE_WHEREIS:
        plen = gr__wire_whereis_frame(frame, f->name, f->name_len, f->reply_to,
                                      f->corr);
        break;
    case GR__WIRE_ACK:
        plen = gr__wire_ack_frame(frame, f->acked);
        break;
    default:
        /* The node-frame encoder takes a C string. */
        if (f->name_len != 0)
            memcpy(name, f->name, f->name_len);
        name[f->name_len] = '\0';
        plen = gr__wire_node_frame(frame, f->kind, f->node, f->incarnation,
                                   f->kind == GR__WIRE_NODE_UP ? name : NULL);
        break;
    }
    need(plen <= GR__WIRE_PREFIX_MAX);
    if (f->msg.len != 0)
        memcpy(frame + plen, f->msg.data, f->msg.len);
    *flen = plen + f->msg.len;
    return frame;
}

/* A frame of kind MSG..GR__WIRE_KIND_MAX. */
static void check_frame(uint8_t kind, const uint8_t *body, size_t len)
{
    gr__wire_frame f;
    const char *why = NULL;
    int rc = gr__wire_decode(kind, body, len, &f, &why);
    if (rc != GR_OK) {
        need(rc == GR_EPROTO && why != NULL);
        return;
    }
    need(f.kind == kind);
    need(inside(f.msg.data, f.msg.len, body, len));
    need(f.name_len <= GR_NAME_MAX && inside(f.name, f.name_len, body, len));
    if (kind == GR__WIRE_NAMED || kind == GR__WIRE_WHEREIS)
        need(f.name_len > 0);
    if (kind != GR__WIRE_WHEREIS)
        need(same_ref(f.reply_to, GR_REF_NONE) && f.corr == 0);
    if (kind != GR__WIRE_ACK)
        need(f.acked == 0);
    if (kind != GR__WIRE_MSG)
        need(same_ref(f.msg.to, GR_REF_NONE));
    if (kind != GR__WIRE_MSG && kind != GR__WIRE_NAMED)
        need(f.msg.len == 0 && same_ref(f.msg.from, GR_REF_NONE) &&
             f.msg.type == 0 && f.msg.corr == 0 && f.msg.flags == 0);

    /* Re-encode, decode again, compare. */
    size_t flen;
    uint8_t *frame = encode_frame(&f, &flen);
    uint8_t *body2 = reencoded_body(frame, flen, kind);
    size_t len2 = flen - GR__WIRE_HEADER;
    gr__wire_frame g;
    why = NULL;
    need(gr__wire_decode(kind, body2, len2, &g, &why) == GR_OK);
    need(g.kind == kind && g.node == f.node &&
         same_msg(&g.msg, &f.msg, kind == GR__WIRE_MSG) &&
         same_ref(g.reply_to, f.reply_to) && g.corr == f.corr &&
         g.acked == f.acked);
    if (kind == GR__WIRE_NODE_UP) {
        /* A name with a NUL byte goes out cut at it. */
        size_t n = f.name_len ? strnlen(f.name, f.name_len) : 0;
        need(g.incarnation == f.incarnation && g.name_len == n &&
             (n == 0 || memcmp(g.name, f.name, n) == 0));
    } else {
        need(g.incarnation == f.incarnation && g.name_len == f.name_len &&
             (f.name_len == 0 || memcmp(g.name, f.name, f.name_len) == 0));
    }
    /* The encoders are canonical: encoding what decoded from their output
     * gives the same bytes. */
    size_t flen3;
    uint8_t *frame3 = encode_frame(&g, &flen3);
    need(flen3 == flen && memcmp(frame3, frame, flen) == 0);
    free(frame3);
    free(body2);
    free(frame);
}

/* A HELLO or WELCOME frame. */
static void check_hello(uint8_t kind, const uint8_t *body, size_t len)
{
    gr__wire_hello h;
    const char *why = NULL;
    int rc = gr__wire_decode_hello(kind, body, len, &h, &why);
    if (rc != GR_OK) {
        need(rc == GR_EPROTO && why != NULL);
        return;
    }
    need(h.name_len <= GR_NAME_MAX && h.root_len <= GR_NAME_MAX);
    need(inside(h.name, h.name_len, body, len) &&
         inside(h.root, h.root_len, body, len) &&
         inside(h.arg, h.arg_len, body, len));
    need(h.pid >= 0 && h.pid <= INT32_MAX && h.max_frame <= UINT32_MAX);
    if (kind == GR__WIRE_HELLO)
        need(h.name_len > 0 && h.pid == 0);
    else
        need(h.parent == 0 && h.parent_inc == 0 && h.max_frame == 0 &&
             h.name_len == 0 && h.root_len == 0 && h.arg_len == 0);

    size_t flen;
    uint8_t *frame = gr__wire_hello_frame(kind, &h, &flen);
    need(frame != NULL);
    uint8_t *body2 = reencoded_body(frame, flen, kind);
    size_t len2 = flen - GR__WIRE_HEADER;
    gr__wire_hello g;
    why = NULL;
    need(gr__wire_decode_hello(kind, body2, len2, &g, &why) == GR_OK);
    need(same_hello(kind, &g, &h));
    size_t flen3;
    uint8_t *frame3 = gr__wire_hello_frame(kind, &g, &flen3);
    need(frame3 != NULL && flen3 == flen && memcmp(frame3, frame, flen) == 0);
    free(frame3);
    free(body2);
    free(frame);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    while (size - off >= GR__WIRE_HEADER) {
        uint8_t hdr[GR__WIRE_HEADER];
        memcpy(hdr, data + off, sizeof hdr);
        gr__wire_header h;
        if (gr__wire_header_parse(hdr, &h) != GR_OK) {
            need(h.version != GR__WIRE_VERSION || h.kind == 0 ||
                 h.kind > GR__WIRE_KIND_MAX);
            break;
        }
        need(h.version == GR__WIRE_VERSION && h.kind >= GR__WIRE_HELLO &&
             h.kind <= GR__WIRE_KIND_MAX);
        if (h.len > FUZZ_MAX_BODY)
            break; /* A link drops such a peer before allocating. */
        off += GR__WIRE_HEADER;
        if (size - off < h.len)
            break; /* Incomplete: a link waits for more. */
        uint8_t *body = exact(data + off, h.len);
        off += h.len;

        /* Each decoder refuses the other's kinds. */
        const char *why = NULL;
        if (h.kind == GR__WIRE_HELLO || h.kind == GR__WIRE_WELCOME) {
            gr__wire_frame f;
            need(gr__wire_decode(h.kind, body, h.len, &f, &why) == GR_EPROTO &&
                 why != NULL);
            check_hello(h.kind, body, h.len);
        } else {
            gr__wire_hello hh;
            need(gr__wire_decode_hello(h.kind, body, h.len, &hh, &why) ==
                     GR_EPROTO &&
                 why != NULL);
            check_frame(h.kind, body, h.len);
        }
        free(body);
    }
    return 0;
}
