/* Erlang terms to msgpack and back, in the mapping include/grove/dist.h
 * documents.
 *
 * A received term is checked before anything decodes it: libei's decoders
 * take no length and trust every size a term declares (a truncated or
 * lying term makes them read past the buffer, a Latin-1 atom of 1020
 * bytes makes ei_decode_atom_as write a NUL one byte past a
 * MAXATOMLEN_UTF8 buffer, and a FLOAT_EXT without a NUL sends sscanf past
 * it). gr__term_end walks the whole term first, every declared size
 * against the bytes left and nesting bounded, accepting only layouts whose
 * size it knows exactly as libei reads them; after it, libei's decoders
 * stay inside the term. */
#include "dist/dist.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- Checking a received term ------------------------------------------ */

/* The most characters in an atom (Erlang's limit). */
#define ATOM_CHARS_MAX (MAXATOMLEN - 1)

static int bad(const char **why, const char *what)
{
    *why = what;
    return -1;
}

static uint32_t be16(const unsigned char *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Whether p (n bytes) is an atom's text: well-formed UTF-8 (no overlong
 * form, surrogate or code point past U+10FFFF) of at most 255
 * characters. */
static bool atom_text(const unsigned char *p, size_t n)
{
    size_t i = 0, chars = 0;
    while (i < n) {
        unsigned c = p[i], cp, min;
        size_t more;
        if (c < 0x80) {
            more = 0, cp = c, min = 0;
        } else if ((c & 0xe0) == 0xc0) {
            more = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < more)
            return false;
        for (size_t j = 1; j <= more; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += more + 1;
        if (++chars > ATOM_CHARS_MAX)
            return false;
    }
    return true;
}

/* The end of a term of hdr bytes and n more at b[at], or -1 when they
 * are not all within len. */
static int sized(int len, int at, int hdr, uint32_t n, const char **why)
{
    if (len - at < hdr || (uint32_t)(len - at - hdr) < n)
        return bad(why, "truncated term");
    return at + hdr + (int)n;
}

/* The end of the atom at b[at] (any of its four tags), or -1. */
static int atom_end(const unsigned char *b, int len, int at, const char **why)
{
    if (at >= len)
        return bad(why, "truncated term");
    int tag = b[at];
    bool small = tag == ERL_SMALL_ATOM_EXT || tag == ERL_SMALL_ATOM_UTF8_EXT;
    bool utf8 = tag == ERL_ATOM_UTF8_EXT || tag == ERL_SMALL_ATOM_UTF8_EXT;
    if (!small && !utf8 && tag != ERL_ATOM_EXT)
        return bad(why, "malformed term: an atom expected");
    int hdr = small ? 2 : 3;
    if (len - at < hdr)
        return bad(why, "truncated term");
    uint32_t n = small ? b[at + 1] : be16(b + at + 1);
    int end = sized(len, at, hdr, n, why);
    if (end >= 0 && (utf8 ? !atom_text(b + at + hdr, n) : n > ATOM_CHARS_MAX))
        return bad(why, "malformed atom");
    return end;
}

/* The end of a pid, port or reference at b[at]: a tag, a node name, then
 * tail bytes. */
static int node_and(const unsigned char *b, int len, int at, uint32_t tail,
                    const char **why)
{
    int end = atom_end(b, len, at + 1, why);
    return end < 0 ? end : sized(len, end, 0, tail, why);
}

/* The end of the term at b[at] inside depth tuples, lists and maps, or -1
 * with what is wrong in *why. */
static int term_end(const unsigned char *b, int len, int at, int depth,
                    const char **why)
{
    if (at >= len)
        return bad(why, "truncated term");
    int tag = b[at], left = len - at, end;
    switch (tag) {
    case ERL_SMALL_INTEGER_EXT:
        return sized(len, at, 1, 1, why);
    case ERL_INTEGER_EXT:
        return sized(len, at, 1, 4, why);
    case NEW_FLOAT_EXT:
        return sized(len, at, 1, 8, why);
    case ERL_FLOAT_EXT:
        /* 31 bytes of text that libei hands to sscanf: it must end. */
        end = sized(len, at, 1, 31, why);
        if (end >= 0 && memchr(b + at + 1, '\0', 31) == NULL)
            return bad(why, "malformed float");
        return end;
    case ERL_ATOM_EXT:
    case ERL_SMALL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        return atom_end(b, len, at, why);
    case ERL_PID_EXT: /* Node, ID (4), Serial (4), Creation (1). */
        return node_and(b, len, at, 9, why);
    case ERL_NEW_PID_EXT: /* Node, ID (4), Serial (4), Creation (4). */
        return node_and(b, len, at, 12, why);
    case ERL_PORT_EXT:      /* Node, ID (4), Creation (1). */
    case ERL_REFERENCE_EXT: /* Node, ID (4), Creation (1). */
        return node_and(b, len, at, 5, why);
    case ERL_NEW_PORT_EXT: /* Node, ID (4), Creation (4). */
        return node_and(b, len, at, 8, why);
    case ERL_V4_PORT_EXT: /* Node, ID (8), Creation (4). */
        return node_and(b, len, at, 12, why);
    case ERL_NEW_REFERENCE_EXT: /* Len (2), Node, Creation (1), ID ... */
    case ERL_NEWER_REFERENCE_EXT: /* Len (2), Node, Creation (4), ID ... */ {
        if (left < 3)
            return bad(why, "truncated term");
        uint32_t words = be16(b + at + 1);
        if (words == 0 || words > 5) /* libei's erlang_ref holds 5. */
            return bad(why, "malformed reference");
        return node_and(b, len, at + 2,
                        (tag == ERL_NEW_REFERENCE_EXT ? 1 : 4) + 4 * words,
                        why);
    }
    case ERL_BINARY_EXT:
        return left < 5 ? bad(why, "truncated term")
                        : sized(len, at, 5, be32(b + at + 1), why);
    case ERL_BIT_BINARY_EXT:
        return left < 6 ? bad(why, "truncated term")
                        : sized(len, at, 6, be32(b + at + 1), why);
    case ERL_SMALL_BIG_EXT: /* n (1), Sign (1), n digits. */
        return left < 3 ? bad(why, "truncated term")
                        : sized(len, at, 3, b[at + 1], why);
    case ERL_LARGE_BIG_EXT: /* n (4), Sign (1), n digits. */
        return left < 6 ? bad(why, "truncated term")
                        : sized(len, at, 6, be32(b + at + 1), why);
    case ERL_STRING_EXT:
    case ERL_NIL_EXT:
    case ERL_SMALL_TUPLE_EXT:
    case ERL_LARGE_TUPLE_EXT:
    case ERL_LIST_EXT:
    case ERL_MAP_EXT:
        break;
    case ERL_NEW_FUN_EXT:
    case ERL_FUN_EXT:
    case ERL_EXPORT_EXT:
        return bad(why, "a fun (no msgpack form)");
    default:
        return bad(why, "malformed term: an unknown tag");
    }

    /* The containers (a string is a list), at most DIST_DEPTH_MAX deep. */
    if (depth >= DIST_DEPTH_MAX)
        return bad(why, "nested too deeply");
    if (tag == ERL_NIL_EXT)
        return at + 1;
    if (tag == ERL_STRING_EXT)
        return left < 3 ? bad(why, "truncated term")
                        : sized(len, at, 3, be16(b + at + 1), why);
    int hdr = tag == ERL_SMALL_TUPLE_EXT ? 2 : 5;
    if (left < hdr)
        return bad(why, "truncated term");
    uint64_t n = tag == ERL_SMALL_TUPLE_EXT ? b[at + 1] : be32(b + at + 1);
    if (tag == ERL_MAP_EXT)
        n *= 2; /* Keys and values. */
    if (tag == ERL_LIST_EXT) {
        if (n == 0) /* [] is NIL_EXT; libei would not read a tail. */
            return bad(why, "malformed list");
        n++; /* The tail. */
    }
    /* Every term is a byte at least: a count beyond the bytes left is
     * refused before any is read. */
    if (n > (uint64_t)(left - hdr))
        return bad(why, "truncated term");
    end = at + hdr;
    for (uint64_t i = 0; i < n && end >= 0; i++)
        end = term_end(b, len, end, depth + 1, why);
    return end;
}

int gr__term_end(const char *buf, int len, int index, const char **why)
{
    if (buf == NULL || index < 0 || len < index)
        return bad(why, "truncated term");
    return term_end((const unsigned char *)buf, len, index, 0, why);
}

bool gr__term_atom(const char *buf, int *index, char out[MAXATOMLEN_UTF8],
                   size_t *n)
{
    const unsigned char *p = (const unsigned char *)buf + *index;
    int tag = p[0];
    bool small = tag == ERL_SMALL_ATOM_EXT || tag == ERL_SMALL_ATOM_UTF8_EXT;
    bool utf8 = tag == ERL_ATOM_UTF8_EXT || tag == ERL_SMALL_ATOM_UTF8_EXT;
    if (!small && !utf8 && tag != ERL_ATOM_EXT)
        return false;
    size_t len = small ? p[1] : be16(p + 1), k = 0;
    const unsigned char *s = p + (small ? 2 : 3);
    if (len > (utf8 ? MAXATOMLEN_UTF8 - 1 : ATOM_CHARS_MAX))
        return false; /* gr__term_end refuses it too. */
    if (utf8) {
        memcpy(out, s, len);
        k = len;
    } else { /* Latin-1: at most 2 * 255 bytes of UTF-8. */
        for (size_t i = 0; i < len; i++) {
            if (s[i] < 0x80) {
                out[k++] = (char)s[i];
            } else {
                out[k++] = (char)(0xc0 | s[i] >> 6);
                out[k++] = (char)(0x80 | (s[i] & 0x3f));
            }
        }
    }
    out[k] = '\0';
    *n = k;
    *index += (int)(s - p + len);
    return true;
}

/* ---- Erlang to msgpack --------------------------------------------------- */

static int no_map(char *why, size_t size, const char *what)
{
    snprintf(why, size, "%s", what);
    return GR_EINVAL;
}

static int pack_pid(gr__dist *d, const erlang_pid *pid, msgpack_packer *pk)
{
    unsigned char data[16];
    gr_dist_ref_write(gr__dist_ref_of_pid(d, pid), data);
    return msgpack_pack_ext(pk, sizeof data, GR_EXT_PID) == 0 &&
                   msgpack_pack_ext_body(pk, data, sizeof data) == 0
               ? GR_OK
               : GR_ENOMEM;
}

static int pack_atom(const char *a, size_t n, msgpack_packer *pk)
{
    int r;
    if (n == 4 && memcmp(a, "true", 4) == 0)
        r = msgpack_pack_true(pk);
    else if (n == 5 && memcmp(a, "false", 5) == 0)
        r = msgpack_pack_false(pk);
    else if (n == 9 && memcmp(a, "undefined", 9) == 0)
        r = msgpack_pack_nil(pk);
    else if ((r = msgpack_pack_str(pk, n)) == 0)
        r = msgpack_pack_str_body(pk, a, n);
    return r == 0 ? GR_OK : GR_ENOMEM;
}

/* What a term that does not map is, for the log. */
static const char *kind_name(int type)
{
    switch (type) {
    case ERL_REFERENCE_EXT:
    case ERL_NEW_REFERENCE_EXT:
    case ERL_NEWER_REFERENCE_EXT:
        return "a reference";
    case ERL_PORT_EXT:
    case ERL_NEW_PORT_EXT:
    case ERL_V4_PORT_EXT:
        return "a port";
    case ERL_FUN_EXT:
    case ERL_NEW_FUN_EXT:
    case ERL_EXPORT_EXT:
        return "a fun";
    case ERL_BIT_BINARY_EXT:
        return "a bit string";
    default:
        return "a term of an unknown kind";
    }
}

/* Packs the term at buf[*index], which gr__term_end accepted: every size
 * in it is within the buffer, so libei's decoders read only inside it. */
static int to_msgpack(gr__dist *d, const char *buf, int *index,
                      msgpack_packer *pk, char *why, size_t size)
{
    const unsigned char *p = (const unsigned char *)buf + *index;
    int type, n;
    if (ei_get_type(buf, index, &type, &n) != 0)
        return no_map(why, size, "malformed term");
    switch (type) {
    case ERL_SMALL_INTEGER_EXT:
    case ERL_INTEGER_EXT:
    case ERL_SMALL_BIG_EXT:
    case ERL_LARGE_BIG_EXT: {
        long long v;
        unsigned long long u;
        int at = *index;
        if (ei_decode_longlong(buf, index, &v) == 0)
            return msgpack_pack_int64(pk, v) == 0 ? GR_OK : GR_ENOMEM;
        *index = at;
        if (ei_decode_ulonglong(buf, index, &u) == 0)
            return msgpack_pack_uint64(pk, u) == 0 ? GR_OK : GR_ENOMEM;
        return no_map(why, size, "integer beyond 64 bits");
    }
    case ERL_FLOAT_EXT: { /* Either float tag. */
        double v;
        if (ei_decode_double(buf, index, &v) != 0 || !isfinite(v))
            return no_map(why, size, "malformed float");
        return msgpack_pack_double(pk, v) == 0 ? GR_OK : GR_ENOMEM;
    }
    case ERL_ATOM_EXT: { /* Any of the four atom tags. */
        char a[MAXATOMLEN_UTF8];
        size_t len;
        if (!gr__term_atom(buf, index, a, &len))
            return no_map(why, size, "malformed atom");
        return pack_atom(a, len, pk);
    }
    case ERL_BINARY_EXT: /* Tag, 4-byte length, the bytes. */
        *index += 5 + n;
        return msgpack_pack_bin(pk, (size_t)n) == 0 &&
                       msgpack_pack_bin_body(pk, p + 5, (size_t)n) == 0
                   ? GR_OK
                   : GR_ENOMEM;
    case ERL_STRING_EXT: /* A list of bytes: tag, 2-byte length, bytes. */
        *index += 3 + n;
        if (msgpack_pack_array(pk, (size_t)n) != 0)
            return GR_ENOMEM;
        for (int i = 0; i < n; i++)
            if (msgpack_pack_uint8(pk, p[3 + i]) != 0)
                return GR_ENOMEM;
        return GR_OK;
    case ERL_SMALL_TUPLE_EXT:
    case ERL_LARGE_TUPLE_EXT:
    case ERL_NIL_EXT:
    case ERL_LIST_EXT: {
        bool tuple = type == ERL_SMALL_TUPLE_EXT || type == ERL_LARGE_TUPLE_EXT;
        int arity;
        if ((tuple ? ei_decode_tuple_header(buf, index, &arity)
                   : ei_decode_list_header(buf, index, &arity)) != 0)
            return no_map(why, size, "malformed tuple or list");
        if (msgpack_pack_array(pk, (size_t)arity) != 0)
            return GR_ENOMEM;
        for (int i = 0; i < arity; i++) {
            int rc = to_msgpack(d, buf, index, pk, why, size);
            if (rc != GR_OK)
                return rc;
        }
        if (!tuple && arity > 0) { /* The tail: [] for a proper list. */
            if (ei_get_type(buf, index, &type, &n) != 0 || type != ERL_NIL_EXT)
                return no_map(why, size, "improper list");
            *index += 1;
        }
        return GR_OK;
    }
    case ERL_MAP_EXT: {
        int arity;
        if (ei_decode_map_header(buf, index, &arity) != 0)
            return no_map(why, size, "malformed map");
        if (msgpack_pack_map(pk, (size_t)arity) != 0)
            return GR_ENOMEM;
        for (int i = 0; i < 2 * arity; i++) {
            int rc = to_msgpack(d, buf, index, pk, why, size);
            if (rc != GR_OK)
                return rc;
        }
        return GR_OK;
    }
    case ERL_PID_EXT: { /* Either pid tag. */
        erlang_pid pid;
        if (ei_decode_pid(buf, index, &pid) != 0)
            return no_map(why, size, "malformed pid");
        return pack_pid(d, &pid, pk);
    }
    default:
        snprintf(why, size, "%s has no msgpack form", kind_name(type));
        return GR_EINVAL;
    }
}

int gr__term_to_msgpack(gr__dist *d, const char *buf, int len, int *index,
                        msgpack_packer *pk, char *why, size_t size)
{
    const char *bad_why;
    int end = gr__term_end(buf, len, *index, &bad_why);
    if (end < 0)
        return no_map(why, size, bad_why);
    int rc = to_msgpack(d, buf, index, pk, why, size);
    /* Where libei and gr__term_end disagree on a size: never seen. */
    if (rc == GR_OK && *index != end)
        return no_map(why, size, "malformed term");
    return rc;
}

/* ---- msgpack to Erlang --------------------------------------------------- */

static int to_term(gr__dist *d, const msgpack_object *o, ei_x_buff *x,
                   int depth);

static int encode_list(gr__dist *d, const msgpack_object_ext *e, ei_x_buff *x,
                       int depth)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = GR_EINVAL;
    if (msgpack_unpack_next(&u, e->ptr, e->size, &off) ==
            MSGPACK_UNPACK_SUCCESS &&
        off == e->size && u.data.type == MSGPACK_OBJECT_ARRAY) {
        const msgpack_object_array *a = &u.data.via.array;
        rc = a->size > 0 && ei_x_encode_list_header(x, (long)a->size) != 0
                 ? GR_ENOMEM
                 : GR_OK;
        for (uint32_t i = 0; rc == GR_OK && i < a->size; i++)
            rc = to_term(d, &a->ptr[i], x, depth + 1);
        if (rc == GR_OK && ei_x_encode_empty_list(x) != 0)
            rc = GR_ENOMEM;
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

static int to_term(gr__dist *d, const msgpack_object *o, ei_x_buff *x,
                   int depth)
{
    /* Tuples, lists and maps at most DIST_DEPTH_MAX deep, as received. */
    if (depth >= DIST_DEPTH_MAX &&
        (o->type == MSGPACK_OBJECT_ARRAY || o->type == MSGPACK_OBJECT_MAP ||
         (o->type == MSGPACK_OBJECT_EXT && o->via.ext.type == GR_EXT_LIST)))
        return GR_EINVAL;
    int r;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        r = ei_x_encode_atom(x, "undefined");
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        r = ei_x_encode_atom(x, o->via.boolean ? "true" : "false");
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        r = ei_x_encode_ulonglong(x, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        r = ei_x_encode_longlong(x, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64)) /* Erlang has no NaN or infinity. */
            return GR_EINVAL;
        r = ei_x_encode_double(x, o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        /* An atom when it can be one (what an atom packs as), else a
         * binary. */
        r = atom_text((const unsigned char *)o->via.str.ptr, o->via.str.size)
                ? ei_x_encode_atom_len_as(x, o->via.str.ptr,
                                          (int)o->via.str.size, ERLANG_UTF8,
                                          ERLANG_UTF8)
                : ei_x_encode_binary(x, o->via.str.ptr, (long)o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        r = ei_x_encode_binary(x, o->via.bin.ptr, (long)o->via.bin.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        r = ei_x_encode_tuple_header(x, (long)o->via.array.size);
        for (uint32_t i = 0; r == 0 && i < o->via.array.size; i++) {
            int rc = to_term(d, &o->via.array.ptr[i], x, depth + 1);
            if (rc != GR_OK)
                return rc;
        }
        break;
    case MSGPACK_OBJECT_MAP:
        r = ei_x_encode_map_header(x, (long)o->via.map.size);
        for (uint32_t i = 0; r == 0 && i < o->via.map.size; i++) {
            int rc = to_term(d, &o->via.map.ptr[i].key, x, depth + 1);
            if (rc == GR_OK)
                rc = to_term(d, &o->via.map.ptr[i].val, x, depth + 1);
            if (rc != GR_OK)
                return rc;
        }
        break;
    case MSGPACK_OBJECT_EXT: {
        if (o->via.ext.type == GR_EXT_LIST)
            return encode_list(d, &o->via.ext, x, depth);
        gr_ref ref;
        erlang_pid pid;
        if (o->via.ext.type != GR_EXT_PID ||
            gr_dist_ref_read(o->via.ext.ptr, o->via.ext.size, &ref) != GR_OK ||
            !gr__dist_pid_of_ref(d, ref, &pid))
            return GR_EINVAL;
        r = ei_x_encode_pid(x, &pid);
        break;
    }
    default:
        return GR_EINVAL;
    }
    return r == 0 ? GR_OK : GR_ENOMEM;
}

int gr__msgpack_to_term(gr__dist *d, const void *data, size_t len, ei_x_buff *x)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = GR_EINVAL;
    if (len > 0 &&
        msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        off == len)
        rc = to_term(d, &u.data, x, 0);
    msgpack_unpacked_destroy(&u);
    return rc;
}

int gr__msg_to_term(gr__dist *d, const gr_msg *m, ei_x_buff *x)
{
    if (m->type == GR_MSG_TERM)
        return gr__msgpack_to_term(d, m->data, m->len, x);
    /* {'$grove', Type, Payload, From}: the sender rides along, so a Grove
     * system on the other side can answer m->from. */
    erlang_pid from;
    bool has_from =
        !gr_ref_is_none(m->from) && gr__dist_pid_of_ref(d, m->from, &from);
    return ei_x_encode_tuple_header(x, 4) == 0 &&
                   ei_x_encode_atom(x, "$grove") == 0 &&
                   ei_x_encode_ulong(x, m->type) == 0 &&
                   ei_x_encode_binary(x, m->data, (long)m->len) == 0 &&
                   (has_from ? ei_x_encode_pid(x, &from)
                             : ei_x_encode_atom(x, "undefined")) == 0
               ? GR_OK
               : GR_ENOMEM;
}
