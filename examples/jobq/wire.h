/*
 * The job queue's wire protocol, shared by the server and the client
 * library: every request and reply is one msgpack map in a frame of a
 * 4-byte big-endian length and that many bytes. The table of requests and
 * replies is in README.md ("Protocol").
 */
#ifndef JOBQ_WIRE_H
#define JOBQ_WIRE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Requests. */
typedef enum jq_op {
    JQ_OP_PUSH = 1,
    JQ_OP_GET,
    JQ_OP_CANCEL,
    JQ_OP_RETRY,
    JQ_OP_STATS,
    JQ_OP_DEAD,
} jq_op;

/* Returns the op's name ("push", ...) or NULL. */
const char *jq_op_name(int op);

/* Error codes a reply's "error" carries. */
#define JQ_ERR_BADREQUEST  "badrequest"  /* Malformed or out of range. */
#define JQ_ERR_BUSY        "busy"        /* The queue is full. */
#define JQ_ERR_NOTFOUND    "notfound"    /* No such job. */
#define JQ_ERR_STATE       "state"       /* Not in a state that allows it. */
#define JQ_ERR_UNAVAILABLE "unavailable" /* The store did not answer. */

/* A msgpack buffer with its packer: jq_buf_init, pack with &b.pk, then
 * use b.sb.data and b.sb.size, and msgpack_sbuffer_destroy(&b.sb). */
typedef struct jq_buf {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} jq_buf;

/* Makes b an empty buffer. */
void jq_buf_init(jq_buf *b);

/* Returns the value of map's key, or NULL (also when map is no map). */
const msgpack_object *jq_map_get(const msgpack_object *map, const char *key);

/* Reads an unsigned integer; false if o is NULL or no such number. */
bool jq_obj_uint(const msgpack_object *o, uint64_t *out);

/* Reads a string or bin of 1..size-1 bytes into buf, NUL-terminated; false
 * if o is NULL, of another type, empty, too long or holds a NUL. */
bool jq_obj_text(const msgpack_object *o, char *buf, size_t size);

/* Packs key, then value, into a map under construction. */
void jq_pack_str(msgpack_packer *pk, const char *s);
void jq_kv_str(msgpack_packer *pk, const char *key, const char *value);
void jq_kv_uint(msgpack_packer *pk, const char *key, uint64_t value);
void jq_kv_int(msgpack_packer *pk, const char *key, int64_t value);
void jq_kv_bool(msgpack_packer *pk, const char *key, bool value);

/* Packs key, then len bytes that are already one packed msgpack value. */
void jq_kv_packed(msgpack_sbuffer *buf, msgpack_packer *pk, const char *key,
                  const void *value, size_t len);

/* Packs a whole error reply: {rid, ok: false, error, reason}. */
void jq_pack_error(msgpack_packer *pk, uint64_t rid, const char *error,
                   const char *reason);

/* Unpacks one frame's bytes (exactly one msgpack object, bounded as
 * gr_msg_unpack does) into *out; false if they are not. */
bool jq_unpack(const void *data, size_t len, msgpack_unpacked *out);

#endif
