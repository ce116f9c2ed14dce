/*
 * Reading and writing the job queue's msgpack maps (see wire.h).
 */
#include "wire.h"

#include <grove/msgpack.h>

#include <string.h>

const char *jq_op_name(int op)
{
    static const char *const names[] = {
        [JQ_OP_PUSH] = "push",     [JQ_OP_GET] = "get",
        [JQ_OP_CANCEL] = "cancel", [JQ_OP_RETRY] = "retry",
        [JQ_OP_STATS] = "stats",   [JQ_OP_DEAD] = "dead",
    };
    return op > 0 && op <= JQ_OP_DEAD ? names[op] : NULL;
}

void jq_buf_init(jq_buf *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

const msgpack_object *jq_map_get(const msgpack_object *map, const char *key)
{
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            memcmp(k->via.str.ptr, key, klen) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

bool jq_obj_uint(const msgpack_object *o, uint64_t *out)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *out = o->via.u64;
    return true;
}

bool jq_obj_text(const msgpack_object *o, char *buf, size_t size)
{
    const char *p;
    size_t n;
    if (o == NULL)
        return false;
    if (o->type == MSGPACK_OBJECT_STR) {
        p = o->via.str.ptr;
        n = o->via.str.size;
    } else if (o->type == MSGPACK_OBJECT_BIN) {
        p = o->via.bin.ptr;
        n = o->via.bin.size;
    } else {
        return false;
    }
    if (n == 0 || n >= size || memchr(p, '\0', n) != NULL)
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return true;
}

void jq_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void jq_kv_str(msgpack_packer *pk, const char *key, const char *value)
{
    jq_pack_str(pk, key);
    jq_pack_str(pk, value);
}

void jq_kv_uint(msgpack_packer *pk, const char *key, uint64_t value)
{
    jq_pack_str(pk, key);
    msgpack_pack_uint64(pk, value);
}

void jq_kv_int(msgpack_packer *pk, const char *key, int64_t value)
{
    jq_pack_str(pk, key);
    msgpack_pack_int64(pk, value);
}

void jq_kv_bool(msgpack_packer *pk, const char *key, bool value)
{
    jq_pack_str(pk, key);
    if (value)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

void jq_kv_packed(msgpack_sbuffer *buf, msgpack_packer *pk, const char *key,
                  const void *value, size_t len)
{
    jq_pack_str(pk, key);
    if (len > 0)
        msgpack_sbuffer_write(buf, value, len);
    else
        msgpack_pack_nil(pk);
}

void jq_pack_error(msgpack_packer *pk, uint64_t rid, const char *error,
                   const char *reason)
{
    msgpack_pack_map(pk, 4);
    jq_kv_uint(pk, "rid", rid);
    jq_kv_bool(pk, "ok", false);
    jq_kv_str(pk, "error", error);
    jq_kv_str(pk, "reason", reason);
}

bool jq_unpack(const void *data, size_t len, msgpack_unpacked *out)
{
    /* gr_msg_unpack's checks (one object, counts bounded by the bytes
     * left) are what a frame from a stranger needs. */
    gr_msg m = {.data = len ? data : NULL, .len = len};
    msgpack_unpacked_init(out);
    return gr_msg_unpack(&m, out) == GR_OK;
}
