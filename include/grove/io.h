/*
 * Sockets owned by actors: TCP (IPv4, IPv6) and Unix stream sockets, read
 * and written by the runtime's I/O thread, with everything that happens on
 * them arriving in the owning actor's mailbox as GR_MSG_IO messages.
 *
 * The model is Erlang's gen_tcp in active-once mode:
 *   - Every socket has one owner, the actor that opened it (or accepted
 *     it, or was given it with gr_io_give). When the owner exits, for any
 *     reason, its sockets are closed.
 *   - The runtime reads a socket only while its owner has asked for more
 *     (gr_io_activate): each data message or accepted connection uses one
 *     unit of that allowance, so a slow owner is never flooded and the
 *     kernel's buffers push back on the peer.
 *   - Data is framed before the owner sees it: raw chunks, lines, or
 *     frames with a 4-byte big-endian length prefix, each bounded.
 *   - Writes are queued in a bounded per-socket buffer and never block the
 *     caller; a full buffer refuses the write (GR_EBACKPRESSURE) or, if the
 *     socket was opened with close_when_full, closes the socket.
 *
 * Every call here is made from a handler (or init) of the socket's owner,
 * with its ctx; a call about a socket the caller does not own returns
 * GR_ENOTOWNER, and one about a closed or unknown socket GR_ECLOSED. See
 * docs/io.md for the guide.
 */
#ifndef GROVE_IO_H
#define GROVE_IO_H

#include <stddef.h>
#include <stdint.h>

#include <grove/actor.h>
#include <grove/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A socket, as its owner names it; the zero value names none. Ids are
 * never reused within a system. */
typedef struct gr_socket {
    uint64_t id;
} gr_socket;

/* The socket that names none. */
#define GR_SOCKET_NONE ((gr_socket){0})

/* How the bytes read from a socket are cut into messages. */
typedef enum gr_io_framing {
    /* Chunks as they arrive, each at most max_frame bytes. */
    GR_IO_RAW = 0,
    /* Lines ending in LF (a CR before it is removed too); the message holds
     * the line without its ending. A line longer than max_frame is an
     * error (GR_EMSGSIZE), not an allocation: it is dropped up to its LF
     * and the next line is read as usual. */
    GR_IO_LINE = 1,
    /* Frames of a 4-byte big-endian length and that many bytes; the message
     * holds the bytes. gr_io_write adds the prefix. A frame longer than
     * max_frame is an error (GR_EMSGSIZE) that stops reading. */
    GR_IO_LEN4 = 2,
} gr_io_framing;

/* What a listener does at its connection cap (gr_io_opts.max_connections). */
typedef enum gr_io_full_policy {
    /* Accept each connection beyond the cap and close it at once. */
    GR_IO_FULL_CLOSE = 0,
    /* Stop accepting until a connection closes; the kernel's backlog holds
     * the rest. */
    GR_IO_FULL_PAUSE = 1,
} gr_io_full_policy;

/* Socket settings; a zeroed struct gives the defaults. A listener's
 * settings are inherited by the connections it accepts. */
typedef struct gr_io_opts {
    gr_io_framing framing;
    /* Largest chunk, line or frame in bytes; 0 means 64 KiB. At most
     * 64 MiB. */
    uint32_t max_frame;
    /* Bytes a socket may hold queued for writing; 0 means 1 MiB. */
    uint32_t send_buffer;
    /* Nonzero: a write that does not fit in the send buffer closes the
     * socket (the owner gets a GR_IO_ERROR with GR_EBACKPRESSURE) instead
     * of being refused: the "slow client" policy. */
    int close_when_full;
    /* Listeners: most accepted connections open at once; 0 means no cap. */
    uint32_t max_connections;
    gr_io_full_policy when_full;
    /* Unix listeners: the socket file's permission bits; 0 means 0600. */
    uint32_t mode;
    /* Connects: how long to wait for the connection; GR_DURATION_DEFAULT
     * (or 0) means 10 s. */
    gr_duration connect_timeout;
    /* The kernel's own send and receive buffers in bytes (SO_SNDBUF,
     * SO_RCVBUF; Linux doubles the value and caps it at wmem_max and
     * rmem_max, so any value is taken). 0 keeps the kernel's default, which
     * grows with the connection (up to a few MiB per socket). A small sndbuf
     * makes a slow reader fill send_buffer sooner. Accepted connections inherit
     * their listener's. */
    uint32_t sndbuf;
    uint32_t rcvbuf;
} gr_io_opts;

/*
 * Listens on addr: "host:port" for TCP ("127.0.0.1:7777", "[::1]:0",
 * "0.0.0.0:80"; a numeric host or "localhost"; port 0 picks a free port,
 * see gr_io_port), or "unix:/path" for a Unix stream socket (a stale
 * socket file at path is replaced; a file that is not a socket is not).
 * The listener starts active without limit: each connection arrives as a
 * GR_IO_ACCEPTED message, its socket owned by the listener's owner and
 * passive until activated. opts may be NULL. Returns GR_OK and stores the
 * listener in *out, or GR_EINVAL (a malformed address), GR_ENAMETOOLONG
 * (a Unix path too long), GR_EADDRINUSE, GR_ESYS (another failure, logged
 * with its errno), GR_ENOMEM, GR_ESTOPPED.
 */
GR_API int gr_io_listen(gr_ctx *ctx, const char *addr, const gr_io_opts *opts,
                        gr_socket *out);

/*
 * Connects to addr (as gr_io_listen's) without waiting: stores the new
 * socket in *out, and its outcome arrives later as one message, a
 * GR_IO_CONNECTED, or a GR_IO_ERROR with the reason (GR_ECONNREFUSED,
 * GR_ETIMEDOUT after opts->connect_timeout, GR_ESYS with the errno's name).
 * The socket is passive until activated. Returns GR_OK, GR_EINVAL,
 * GR_ENAMETOOLONG, GR_ESYS, GR_ENOMEM, GR_ESTOPPED.
 */
GR_API int gr_io_connect(gr_ctx *ctx, const char *addr, const gr_io_opts *opts,
                         gr_socket *out);

/* gr_io_activate's n for "without limit" (Erlang's {active, true}). */
#define GR_IO_ALWAYS UINT32_MAX

/*
 * Lets the runtime deliver n more messages from s (data or accepted
 * connections) before it stops reading again: 1 is Erlang's {active,
 * once}, GR_IO_ALWAYS has no limit, 0 makes the socket passive. Sets the
 * allowance; it does not add to it. Returns GR_OK, GR_ENOTOWNER,
 * GR_ECLOSED, GR_EINVAL.
 */
GR_API int gr_io_activate(gr_ctx *ctx, gr_socket s, uint32_t n);

/*
 * Queues len bytes for writing on s (with a length prefix when its framing
 * is GR_IO_LEN4) and returns at once; the bytes are copied. What the
 * kernel takes now is written on the calling thread, the rest by the I/O
 * thread. Returns GR_OK; GR_EBACKPRESSURE when the send buffer cannot take
 * it (nothing is queued, or with close_when_full the socket is closed);
 * GR_EMSGSIZE (bigger than the send buffer or, for GR_IO_LEN4,
 * max_frame); GR_ENOTOWNER; GR_ECLOSED (closed, or shut for writing);
 * GR_EINVAL; GR_ENOMEM (nothing is queued). Bytes accepted here are either sent
 * or counted as unsent in the GR_IO_ERROR that reports the socket's death.
 */
GR_API int gr_io_write(gr_ctx *ctx, gr_socket s, const void *data, size_t len);

/* Stores in *bytes how many bytes gr_io_write accepted on s that wait in
 * its send buffer, not yet taken by the kernel (Erlang's send_pend): a
 * server can tell a client that stopped reading before the buffer is
 * full, and close it with a last line. Returns GR_OK, GR_ENOTOWNER,
 * GR_ECLOSED (also once gr_io_close was called, while what was queued is
 * still being sent), GR_EINVAL (bytes NULL, or s GR_SOCKET_NONE). */
GR_API int gr_io_queued(gr_ctx *ctx, gr_socket s, size_t *bytes);

/* Shuts s for writing once what is queued is sent (a half close: the peer
 * reads end of file, and s can still read). Returns GR_OK, GR_ENOTOWNER,
 * GR_ECLOSED, GR_EINVAL. */
GR_API int gr_io_shutdown_write(gr_ctx *ctx, gr_socket s);

/*
 * Closes s: no more reads, no more messages about it; what is queued is
 * still sent (for at most 5 s) before the descriptor closes. Returns
 * GR_OK, GR_ENOTOWNER, GR_ECLOSED, GR_EINVAL.
 */
GR_API int gr_io_close(gr_ctx *ctx, gr_socket s);

/*
 * Makes the actor new_owner (a local actor) the owner of s, as Erlang's
 * controlling_process: it gets a GR_IO_GIVEN message naming s, messages
 * about s go to it from then on (those already in the old owner's mailbox
 * stay there), and its exit closes s. Give a socket while it is passive,
 * as accepted ones are, and let the new owner activate it. If new_owner
 * has exited, s is closed. Returns GR_OK, GR_ENOTOWNER, GR_ECLOSED,
 * GR_EINVAL (new_owner is on another node or names none).
 */
GR_API int gr_io_give(gr_ctx *ctx, gr_socket s, gr_ref new_owner);

/* Stores the local TCP port s is bound to in *port (a listener on port 0
 * learns its port here). Returns GR_OK, GR_EINVAL (not TCP), GR_ENOTOWNER,
 * GR_ECLOSED. */
GR_API int gr_io_port(gr_ctx *ctx, gr_socket s, uint16_t *port);

/* The message type of every socket event. */
#define GR_MSG_IO (GR_MSG_RESERVED + 0x120u)

/* What a GR_MSG_IO message reports. */
typedef enum gr_io_kind {
    GR_IO_DATA = 1,      /* A chunk, line or frame: data, len. */
    GR_IO_ACCEPTED = 2,  /* A connection on listener: socket, peer. */
    GR_IO_CONNECTED = 3, /* A gr_io_connect succeeded: socket, peer. */
    GR_IO_CLOSED = 4,    /* The peer closed (end of file); s can still be
                            written until the owner closes it. */
    GR_IO_ERROR = 5,     /* code and reason; see below. */
    GR_IO_GIVEN = 6,     /* The socket was handed to this actor with
                            gr_io_give (the first message about it the new
                            owner gets): socket. */
} gr_io_kind;

/* A GR_MSG_IO message, read by gr_io_event_read. */
typedef struct gr_io_event {
    gr_io_kind kind;
    gr_socket socket;   /* The socket it is about. */
    gr_socket listener; /* GR_IO_ACCEPTED: the listener; else none. */
    /* GR_IO_DATA: the bytes, in the message (valid while it is). */
    const void *data;
    size_t len;
    /*
     * GR_IO_ERROR: GR_ECONNREFUSED, GR_ECONNRESET, GR_ETIMEDOUT (a connect
     * ran out of time), GR_EMSGSIZE (a line over max_frame, dropped, and
     * reading goes on; a frame over max_frame, and reading stops; writing
     * still works), GR_EBACKPRESSURE (the send
     * buffer overflowed with close_when_full), GR_ENOMEM (no memory for
     * a read), GR_ESYS (another errno).
     * Except for GR_EMSGSIZE the socket is closed when this arrives.
     */
    int code;
    /* GR_IO_ERROR: bytes accepted by gr_io_write and never sent. */
    uint64_t unsent;
    /* GR_IO_ERROR: e.g. "ECONNREFUSED: Connection refused"; ACCEPTED and
     * CONNECTED: the peer's address ("127.0.0.1:5555", "[::1]:80",
     * "unix"). NUL-terminated. */
    char text[64];
} gr_io_event;

/* Reads a GR_MSG_IO message into *out. Returns GR_OK, or GR_EINVAL when
 * msg is not a well-formed GR_MSG_IO. */
GR_API int gr_io_event_read(const gr_msg *msg, gr_io_event *out);

/* Returns a static name for a gr_io_kind ("data", "accepted", ...). */
GR_API const char *gr_io_kind_name(gr_io_kind kind);

#ifdef __cplusplus
}
#endif

#endif
