/*
 * The wire format between nodes: frames of a fixed 6-byte header (version,
 * kind, big-endian body length) and a msgpack body, always an array whose
 * shape the kind fixes. See docs/nodes.md for the reference.
 *
 * Encoding uses msgpack-c's packer: it writes the header and the body's
 * fixed fields into a small buffer, so a message's payload bytes can follow
 * without being copied twice. Decoding is a strict reader of exactly these
 * shapes, in place: the payload and strings of a decoded frame point into
 * the caller's buffer, and every length is checked against the bytes
 * present before it is used. (msgpack-c's unpacker allocates an array's
 * storage from its declared count before seeing the elements, so a 5-byte
 * hostile body could ask it for tens of gigabytes.)
 */
#ifndef GROVE_TRANSPORT_WIRE_H
#define GROVE_TRANSPORT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grove/actor.h>

/* Protocol version carried by every frame's first byte. */
#define GR__WIRE_VERSION 2u

/* Bytes in a frame header. */
#define GR__WIRE_HEADER 6u

/* Bytes of the per-system secret carried by the handshake. */
#define GR__WIRE_SECRET 16u

/* Most bytes the header plus the fixed fields of any frame take. */
#define GR__WIRE_PREFIX_MAX 192u

/* Frame kinds. */
typedef enum gr__wire_kind {
    GR__WIRE_HELLO = 1,     /* Parent -> new node: who it is. */
    GR__WIRE_WELCOME = 2,   /* New node -> parent: ready, secret echoed. */
    GR__WIRE_MSG = 3,       /* A message to an actor by ref. */
    GR__WIRE_NAMED = 4,     /* A message to a name on a node. */
    GR__WIRE_NODE_UP = 5,   /* A node is reachable through the sender. */
    GR__WIRE_NODE_DOWN = 6, /* A node is gone. */
    GR__WIRE_SHUTDOWN = 7,  /* Parent -> node: stop in an orderly way. */
    GR__WIRE_WHEREIS = 8,   /* Who has this name? (flooded to every node) */
    GR__WIRE_ACK = 9,       /* How many frames of the peer's this side has
                               taken (cumulative; ACKs are not counted). */
    GR__WIRE_KIND_MAX = 9
} gr__wire_kind;

/* A parsed frame header. */
typedef struct gr__wire_header {
    uint8_t version;
    uint8_t kind;
    uint32_t len; /* Body bytes. */
} gr__wire_header;

/* The handshake's fields (HELLO and WELCOME; WELCOME uses secret, node,
 * incarnation, pid and root). */
typedef struct gr__wire_hello {
    uint8_t secret[GR__WIRE_SECRET];
    uint32_t node;
    uint32_t incarnation;
    uint32_t parent;      /* HELLO: the parent's node id. */
    uint32_t parent_inc;  /* HELLO: the parent's incarnation. */
    int64_t pid;          /* WELCOME: the node's process id. */
    uint64_t root_serial; /* WELCOME: the serial of the node's root actor. */
    uint64_t max_frame;   /* HELLO: the largest body either side sends. */
    const char *name;     /* HELLO: the node's name (not NUL-terminated). */
    size_t name_len;
    const char *root; /* HELLO: the root behaviour's registered name. */
    size_t root_len;
    const void *arg; /* HELLO: bytes for the root's init. */
    size_t arg_len;
} gr__wire_hello;

/* A decoded frame of any kind after the handshake. */
typedef struct gr__wire_frame {
    uint8_t kind;
    gr_msg msg;       /* MSG and NAMED: the envelope; data points into the
                         body. */
    const char *name; /* NAMED: the target name; NODE_UP: the node's name. */
    size_t name_len;
    uint32_t node;        /* NAMED: the target node; NODE_UP/DOWN: the node. */
    uint32_t incarnation; /* NODE_UP/DOWN. */
    gr_ref reply_to;      /* WHEREIS: who wants the answers... */
    uint64_t corr;        /* ...and under which correlation id. */
    uint64_t acked;       /* ACK: frames taken so far. */
} gr__wire_frame;

/* Parses the 6 header bytes at p into *h. Returns GR_OK, or GR_EPROTO for
 * a wrong version or unknown kind. The length is the caller's to check. */
int gr__wire_header_parse(const uint8_t *p, gr__wire_header *h);

/*
 * Encodes the header and fixed fields of a MSG frame for m into buf
 * (GR__WIRE_PREFIX_MAX bytes); m->len payload bytes must follow it on the
 * wire. Returns the bytes written.
 */
size_t gr__wire_msg_prefix(uint8_t *buf, const gr_msg *m);

/* As gr__wire_msg_prefix(), for a NAMED frame to name on node. The name
 * must be at most GR_NAME_MAX bytes. */
size_t gr__wire_named_prefix(uint8_t *buf, uint32_t node, const char *name,
                             size_t name_len, const gr_msg *m);

/* Encodes a whole NODE_UP (name may be NULL for NODE_DOWN), NODE_DOWN or
 * SHUTDOWN frame into buf; returns the bytes written. */
size_t gr__wire_node_frame(uint8_t *buf, uint8_t kind, uint32_t node,
                           uint32_t incarnation, const char *name);

/* Encodes a whole WHEREIS frame (name: at most GR_NAME_MAX bytes) into buf;
 * returns the bytes written. */
size_t gr__wire_whereis_frame(uint8_t *buf, const char *name, size_t name_len,
                              gr_ref reply_to, uint64_t corr);

/* Longest ACK frame. */
#define GR__WIRE_ACK_MAX (GR__WIRE_HEADER + 1 + 9)

/* Encodes a whole ACK frame saying acked frames were taken into buf
 * (GR__WIRE_ACK_MAX bytes); returns the bytes written. */
size_t gr__wire_ack_frame(uint8_t *buf, uint64_t acked);

/* Encodes a whole HELLO or WELCOME frame into a malloc'd buffer the caller
 * frees; stores its length in *len. Returns NULL when out of memory. */
uint8_t *gr__wire_hello_frame(uint8_t kind, const gr__wire_hello *h,
                              size_t *len);

/*
 * Decodes the body of a frame of the given kind (MSG, NAMED, NODE_UP,
 * NODE_DOWN, SHUTDOWN, WHEREIS, ACK) in place. Returns GR_OK or GR_EPROTO with
 * a static description in *why.
 */
int gr__wire_decode(uint8_t kind, const uint8_t *body, size_t len,
                    gr__wire_frame *out, const char **why);

/* Decodes a HELLO or WELCOME body, as gr__wire_decode(). */
int gr__wire_decode_hello(uint8_t kind, const uint8_t *body, size_t len,
                          gr__wire_hello *out, const char **why);

#endif
