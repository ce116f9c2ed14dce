/* The msgpack helpers (see include/grove/msgpack.h): sends of a
 * msgpack_sbuffer through the public calls, and gr_msg_unpack(), which
 * checks a payload's shape before msgpack-c's unpacker reads it. Public
 * API only. */
#include <grove/msgpack.h>

/* The payload of buf as a send takes it: an empty buffer has no bytes,
 * whatever its data pointer (msgpack_sbuffer_clear() keeps the block). */
static const void *bytes_of(const msgpack_sbuffer *buf)
{
    return buf->size > 0 ? buf->data : NULL;
}

int gr_tell_msgpack(gr_ctx *ctx, gr_ref to, uint32_t type,
                    const msgpack_sbuffer *buf)
{
    if (buf == NULL)
        return GR_EINVAL;
    return gr_tell(ctx, to, type, bytes_of(buf), buf->size);
}

int gr_system_tell_msgpack(gr_system *sys, gr_ref from, gr_ref to,
                           uint32_t type, const msgpack_sbuffer *buf)
{
    if (buf == NULL)
        return GR_EINVAL;
    return gr_system_tell(sys, from, to, type, bytes_of(buf), buf->size);
}

int gr_ask_msgpack(gr_ctx *ctx, gr_ref target, uint32_t type,
                   const msgpack_sbuffer *buf, gr_duration timeout,
                   uint64_t *corr)
{
    if (buf == NULL)
        return GR_EINVAL;
    return gr_ask(ctx, target, type, bytes_of(buf), buf->size, timeout, corr);
}

int gr_reply_msgpack(gr_ctx *ctx, const gr_msg *msg, uint32_t type,
                     const msgpack_sbuffer *buf)
{
    if (buf == NULL)
        return GR_EINVAL;
    return gr_reply(ctx, msg, type, bytes_of(buf), buf->size);
}

int gr_call_msgpack(gr_system *sys, gr_ref target, uint32_t type,
                    const msgpack_sbuffer *buf, gr_duration timeout,
                    gr_msg **reply)
{
    if (buf == NULL) {
        if (reply != NULL)
            *reply = NULL; /* As gr_call(): NULL on every error. */
        return GR_EINVAL;
    }
    return gr_call(sys, target, type, bytes_of(buf), buf->size, timeout, reply);
}

/* Reads the n-byte big-endian number at p. */
static uint64_t read_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/*
 * Checks that p[0..len) is exactly one msgpack object nested at most
 * GR_MSGPACK_DEPTH_MAX deep, walking its headers without building
 * anything. msgpack-c's unpacker allocates a container's elements as soon
 * as it reads the count, so five bytes claiming 2^32 elements would make it
 * ask for ~100 GiB; here every claimed element must fit in the bytes left
 * (each takes at least one), which bounds what it allocates by the payload
 * size. Returns GR_OK or GR_EPROTO.
 */
static int check_one_object(const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    uint64_t open[GR_MSGPACK_DEPTH_MAX]; /* Elements left in each open
                                            container, innermost last. */
    unsigned depth = 0;
    uint64_t pending = 1; /* Objects still to read (elements of open
                             containers, or the one top-level object). */
    while (pending > 0) {
        if (p == end)
            return GR_EPROTO; /* Truncated. */
        uint8_t b = *p++;
        pending--;
        unsigned len_bytes = 0; /* Size of the length field that follows. */
        uint64_t count = 0;     /* A leaf's bytes after the length field, or
                                   a container's elements. */
        uint64_t per_len = 0;   /* What one unit of the length adds. */
        int container = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool: the byte is the object. */
        } else if (b <= 0x8f) {
            container = 1;
            count = 2u * (b & 0x0fu); /* fixmap: keys and values. */
        } else if (b <= 0x9f) {
            container = 1;
            count = b & 0x0fu; /* fixarray */
        } else if (b <= 0xbf) {
            count = b & 0x1fu; /* fixstr */
        } else {
            switch (b) {
            case 0xc4: /* bin 8/16/32 */
            case 0xd9: /* str 8/16/32 */
                len_bytes = 1;
                per_len = 1;
                break;
            case 0xc5:
            case 0xda:
                len_bytes = 2;
                per_len = 1;
                break;
            case 0xc6:
            case 0xdb:
                len_bytes = 4;
                per_len = 1;
                break;
            case 0xc7: /* ext 8/16/32: length, type byte, data */
                len_bytes = 1;
                per_len = 1;
                count = 1;
                break;
            case 0xc8:
                len_bytes = 2;
                per_len = 1;
                count = 1;
                break;
            case 0xc9:
                len_bytes = 4;
                per_len = 1;
                count = 1;
                break;
            case 0xca: /* float 32/64 */
                count = 4;
                break;
            case 0xcb:
                count = 8;
                break;
            case 0xcc: /* uint 8..64, int 8..64 */
            case 0xd0:
                count = 1;
                break;
            case 0xcd:
            case 0xd1:
                count = 2;
                break;
            case 0xce:
            case 0xd2:
                count = 4;
                break;
            case 0xcf:
            case 0xd3:
                count = 8;
                break;
            case 0xd4: /* fixext 1..16: type byte, data */
                count = 2;
                break;
            case 0xd5:
                count = 3;
                break;
            case 0xd6:
                count = 5;
                break;
            case 0xd7:
                count = 9;
                break;
            case 0xd8:
                count = 17;
                break;
            case 0xdc: /* array 16/32 */
                container = 1;
                len_bytes = 2;
                per_len = 1;
                break;
            case 0xdd:
                container = 1;
                len_bytes = 4;
                per_len = 1;
                break;
            case 0xde: /* map 16/32: keys and values */
                container = 1;
                len_bytes = 2;
                per_len = 2;
                break;
            case 0xdf:
                container = 1;
                len_bytes = 4;
                per_len = 2;
                break;
            default: /* 0xc1, never used */
                return GR_EPROTO;
            }
        }
        if ((size_t)(end - p) < len_bytes)
            return GR_EPROTO;
        count += per_len * read_be(p, len_bytes); /* At most 2^33. */
        p += len_bytes;
        uint64_t left = (uint64_t)(end - p);
        if (container) {
            /* As msgpack-c, which refuses any container, empty ones too,
             * once this many are open. */
            if (depth == GR_MSGPACK_DEPTH_MAX)
                return GR_EPROTO;
            if (pending + count > left)
                return GR_EPROTO; /* More elements than bytes left. */
            if (count > 0) {
                open[depth++] = count;
                pending += count;
                continue;
            }
        } else {
            if (count > left)
                return GR_EPROTO;
            p += count;
        }
        /* One object read: close each container it was the last of. */
        while (depth > 0 && --open[depth - 1] == 0)
            depth--;
    }
    return p == end ? GR_OK : GR_EPROTO; /* Bytes after the object. */
}

int gr_msg_unpack(const gr_msg *m, msgpack_unpacked *out)
{
    if (out == NULL)
        return GR_EINVAL;
    msgpack_unpacked_init(out);
    if (m == NULL || (m->data == NULL && m->len > 0))
        return GR_EINVAL;
    if (m->len == 0)
        return GR_EPROTO; /* No object at all. */
    int rc = check_one_object(m->data, m->len);
    if (rc != GR_OK)
        return rc;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(out, m->data, m->len, &off);
    if (ur == MSGPACK_UNPACK_SUCCESS && off == m->len)
        return GR_OK;
    msgpack_unpacked_destroy(out); /* Leaves it empty: zone NULL. */
    /* The check above accepted the bytes, so msgpack-c running out of
     * memory is what remains; anything else would be the two readers
     * disagreeing on the format, reported as the bytes' fault. */
    return ur == MSGPACK_UNPACK_NOMEM_ERROR ? GR_ENOMEM : GR_EPROTO;
}
