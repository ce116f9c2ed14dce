/*
 * Grove across hosts: a system joins an Erlang/OTP cluster as a C node,
 * speaking Erlang's own distribution protocol through erl_interface (see
 * docs/distribution.md).
 *
 * Set gr_config.dist.node_name and the root system publishes itself to
 * epmd under that name, accepts connections from Erlang nodes (and other
 * Grove systems), and connects to them on demand. Then:
 *   - an Erlang process reaches a registered Grove actor with
 *     {Name, 'grove@host'} ! Msg, and gen_server:call({Name, 'grove@host'},
 *     Req) is answered by the actor's gr_reply();
 *   - a Grove actor sends to a registered Erlang process with
 *     gr_tell_name(ctx, "name@erl@host", ...), to any process whose pid it
 *     was given (a gr_ref, e.g. m->from), and asks an Erlang gen_server
 *     with gr_ask(): the request goes out as a '$gen_call'.
 *
 * Payloads. A message of type GR_MSG_TERM carries one msgpack object that
 * is an Erlang term in this mapping (both ways):
 *   integer (64-bit)  <-> int          float       <-> float (finite)
 *   true, false       <-> bool         undefined   <-> nil
 *   other atoms       <-> str (one that can be an atom: UTF-8 of at most
 *                          255 characters; any other str is a binary)
 *   binary            <-> bin          tuple       <-> array
 *   list, string       -> array        map         <-> map
 *   pid               <-> ext GR_EXT_PID (a gr_ref, see gr_dist_ref_read)
 *   ext GR_EXT_LIST   -> list (its data: one packed msgpack array)
 * Tuples, lists and maps nest at most 32 deep. A term that does not map
 * (a reference, port, fun, bignum or improper list) from Erlang is logged
 * and dropped; in a send from Grove it is GR_EINVAL. Any other message
 * type goes to Erlang as the tuple {'$grove', Type, Payload} and comes
 * back from it unchanged, so Grove systems talk to each other in their
 * own payloads. A received message is checked whole before anything
 * decodes it (every size it declares against the bytes received); a
 * malformed one is logged and dropped.
 *
 * Security: anyone who knows the cookie can send any message to the
 * system's registered actors. Erlang distribution is for trusted networks;
 * the listener is on loopback unless dist.listen says otherwise.
 */
#ifndef GROVE_DIST_H
#define GROVE_DIST_H

#include <stddef.h>
#include <stdint.h>

#include <grove/common.h>

struct gr_system;

/* The message type of an Erlang term in msgpack (see above). It is the
 * highest application type: applications must not use it for their own. */
#define GR_MSG_TERM 0xFFFEFFFFu

/* msgpack ext type of an Erlang pid: 16 bytes, the gr_ref's serial (8),
 * node (4) and incarnation (4), big-endian. */
#define GR_EXT_PID 1
/* msgpack ext type that sends its data, one packed array, as a list. */
#define GR_EXT_LIST 2

/* The distribution section of gr_config; all zero: off. */
typedef struct gr_dist_config {
    /* This system's node name, "name@host" ("grove@127.0.0.1" for long
     * names, "grove@myhost" for short ones); NULL leaves distribution
     * off. The root process only. */
    const char *node_name;
    /* The cookie; NULL reads ~/.erlang.cookie (as erl does). */
    const char *cookie;
    /* IPv4 address the listener binds; NULL means 127.0.0.1. */
    const char *listen;
    /* Port the listener binds; 0 picks one (epmd tells it to others). */
    uint16_t port;
    /* Longest a connect or handshake may take, in ms; 0 means 5000. */
    unsigned connect_timeout_ms;
} gr_dist_config;

/*
 * Copies this system's node name ("grove@127.0.0.1") into buf (size
 * bytes). Returns GR_OK, GR_ENOTSUP when distribution is off (or Grove was
 * built without erl_interface), or GR_ENAMETOOLONG when buf is too small.
 */
GR_API int gr_dist_node_name(struct gr_system *sys, char *buf, size_t size);

/*
 * Reads a GR_EXT_PID ext's data (len bytes) into *out. Returns GR_OK or
 * GR_EINVAL when it is not one.
 */
GR_API int gr_dist_ref_read(const void *data, size_t len, gr_ref *out);

/* Writes ref as a GR_EXT_PID ext's 16 bytes of data into out. */
GR_API void gr_dist_ref_write(gr_ref ref, unsigned char out[16]);

#endif
