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
 *     Req) is answered by the actor's gr_reply(); net_adm:ping works;
 *   - a Grove actor sends to a registered process on another node with
 *     gr_tell_name(ctx, "name@erl@host", ...), to any process whose ref it
 *     has (m->from, a pid in a payload, or gr_whereis_any() of
 *     "name@erl@host"), and asks an Erlang gen_server with gr_ask(): the
 *     request goes out as a '$gen_call', monitored as gen_server:call
 *     monitors its server (one that dies fails the ask with its reason);
 *   - links and exit signals work both ways (gr_link, gr_exit, and
 *     Erlang's link/1 and exit/2), with reasons normal, killed, kill,
 *     shutdown, noproc and noconnection as Erlang's atoms, a shutdown with
 *     a text as {shutdown, <<"text">>} and any other as
 *     {grove, 'GR_E...', <<"text">>}; when a connection is lost (closed, or
 *     silent for net_ticktime_ms) every link and ask to that node ends with
 *     GR_ENOCONNECTION;
 *   - monitors work both ways: gr_monitor() of an Erlang pid gets a DOWN
 *     with its exit reason (mapped as for links), and erlang:monitor/2 of
 *     a Grove pid or {Name, 'grove@host'} gets a 'DOWN' with the actor's;
 *     so a gen_server:call to an actor that dies fails with its reason.
 * Only the root process's actors are reachable.
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
 * and dropped; in a send from Grove it is GR_EINVAL. A received message
 * is checked whole before anything decodes it (every size it declares
 * against the bytes received); a malformed one is logged and dropped. Any
 * other message type goes out as the tuple {'$grove', Type, Payload,
 * From} (From the sender's pid, or undefined) and arrives at a Grove
 * system as it was sent, m->from included, so Grove systems talk to each
 * other in their own payloads. A gr_ref inside such a payload is not
 * translated: pass refs across hosts as m->from or as GR_EXT_PID in a
 * GR_MSG_TERM.
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
     * off. The root process only. The node is hidden, as C nodes are
     * (see docs/distribution.md). */
    const char *node_name;
    /* The cookie; NULL reads ~/.erlang.cookie (as erl does). */
    const char *cookie;
    /* IPv4 address the listener binds; NULL means 127.0.0.1. */
    const char *listen;
    /* Port the listener binds; 0 picks one (epmd tells it to others). */
    uint16_t port;
    /* Longest a connect or handshake may take, and a connection may take
     * nothing of what waits for it, in ms; 0 means 5000. */
    unsigned connect_timeout_ms;
    /* A connection that brings nothing for this long is dead (Erlang's
     * net_ticktime), in ms; 0 means 60000. Erlang peers tick every quarter
     * of their own net_ticktime, so keep it above that. */
    unsigned net_ticktime_ms;
} gr_dist_config;

/*
 * Copies this system's node name ("grove@127.0.0.1") into buf (size
 * bytes). Returns GR_OK, GR_ENOTSUP when distribution is off (or Grove was
 * built without erl_interface), GR_EINVAL for a NULL buf, or
 * GR_ENAMETOOLONG when buf is too small (buf is then untouched).
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
