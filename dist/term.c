/* Erlang terms to msgpack and back, in the mapping include/grove/dist.h
 * documents. Both directions read only what they were given: sizes come
 * from the bytes already received, never from a count that is believed
 * before it is checked. */
#include "dist/dist.h"

#include <stdio.h>
#include <string.h>

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

static int pack_atom(const char *a, msgpack_packer *pk)
{
    int r;
    if (strcmp(a, "true") == 0)
        r = msgpack_pack_true(pk);
    else if (strcmp(a, "false") == 0)
        r = msgpack_pack_false(pk);
    else if (strcmp(a, "undefined") == 0)
        r = msgpack_pack_nil(pk);
    else {
        size_t n = strlen(a);
        r = msgpack_pack_str(pk, n);
        if (r == 0)
            r = msgpack_pack_str_body(pk, a, n);
    }
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

static int to_msgpack(gr__dist *d, const char *buf, int *index,
                      msgpack_packer *pk, int depth, char *why, size_t size)
{
    if (depth > DIST_DEPTH_MAX)
        return no_map(why, size, "nested too deeply");
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
    case ERL_FLOAT_EXT:
    case NEW_FLOAT_EXT: {
        double v;
        if (ei_decode_double(buf, index, &v) != 0)
            return no_map(why, size, "malformed float");
        return msgpack_pack_double(pk, v) == 0 ? GR_OK : GR_ENOMEM;
    }
    case ERL_ATOM_EXT:
    case ERL_SMALL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT: {
        char a[MAXATOMLEN_UTF8];
        if (ei_decode_atom_as(buf, index, a, sizeof a, ERLANG_UTF8, NULL,
                              NULL) != 0)
            return no_map(why, size, "malformed atom");
        return pack_atom(a, pk);
    }
    case ERL_BINARY_EXT: {
        /* The bytes are in buf: tag, 4-byte length, data. */
        const char *p = buf + *index + 5;
        if (ei_skip_term(buf, index) != 0)
            return no_map(why, size, "malformed binary");
        return msgpack_pack_bin(pk, (size_t)n) == 0 &&
                       msgpack_pack_bin_body(pk, p, (size_t)n) == 0
                   ? GR_OK
                   : GR_ENOMEM;
    }
    case ERL_STRING_EXT: {
        /* A list of small integers: tag, 2-byte length, bytes. */
        const unsigned char *p = (const unsigned char *)buf + *index + 3;
        if (ei_skip_term(buf, index) != 0)
            return no_map(why, size, "malformed string");
        if (msgpack_pack_array(pk, (size_t)n) != 0)
            return GR_ENOMEM;
        for (int i = 0; i < n; i++)
            if (msgpack_pack_uint8(pk, p[i]) != 0)
                return GR_ENOMEM;
        return GR_OK;
    }
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
            int rc = to_msgpack(d, buf, index, pk, depth + 1, why, size);
            if (rc != GR_OK)
                return rc;
        }
        if (!tuple && arity > 0) { /* The tail: [] for a proper list. */
            int tail;
            if (ei_get_type(buf, index, &tail, &n) != 0 || tail != ERL_NIL_EXT)
                return no_map(why, size, "improper list");
            (void)ei_skip_term(buf, index);
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
            int rc = to_msgpack(d, buf, index, pk, depth + 1, why, size);
            if (rc != GR_OK)
                return rc;
        }
        return GR_OK;
    }
    case ERL_PID_EXT:
    case ERL_NEW_PID_EXT: {
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

int gr__term_to_msgpack(gr__dist *d, const char *buf, int *index,
                        msgpack_packer *pk, char *why, size_t size)
{
    return to_msgpack(d, buf, index, pk, 0, why, size);
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
    if (depth > DIST_DEPTH_MAX)
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
        r = ei_x_encode_double(x, o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        r = o->via.str.size < MAXATOMLEN
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
