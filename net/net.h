/*
 * Sockets owned by actors (include/grove/io.h), inside the runtime.
 *
 * One gr__net per system, made on first use, keeps every socket in a table
 * by id and in a chain per owner (so an owner's exit finds its sockets at
 * once). The I/O thread does all the waiting: reads, accepts, connects,
 * the writes the kernel could not take at once, closes. The owner's calls
 * change a socket's state under its lock and ask the I/O thread to bring
 * its watchers in line (net_sync); the one thing they do themselves is a
 * write into an idle socket, which goes straight to the kernel.
 *
 * Locks: net->lock (the table, the owner chains, each socket's owner)
 * before a socket's lock (everything else the two sides share). A socket
 * is freed when its last reference goes: the table holds one until the
 * socket is finished (gr__net_finish, on the I/O thread), each queued sync
 * holds one, and each call holds one while it works.
 */
#ifndef GROVE_NET_NET_H
#define GROVE_NET_NET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <grove/io.h>

#include "actor/runtime.h"

/* Bytes kept free before a frame in a read buffer: the event header of its
 * message is written there, so the frame goes out in one piece. */
#define NET_HDR ((size_t)sizeof(net_wire))

/* Bytes asked of the kernel per read. */
#define NET_READ_CHUNK 65536u

/* What a GR_MSG_IO message holds before its data (gr_io_event_read). */
typedef struct net_wire {
    uint32_t kind;
    int32_t code;
    uint64_t socket;
    uint64_t listener;
    uint64_t unsent;
    char text[64];
} net_wire;

typedef enum net_kind {
    NET_LISTENER,
    NET_CONNECTING, /* A connect not yet settled; becomes NET_STREAM. */
    NET_STREAM,
} net_kind;

typedef struct gr__net gr__net;

/* One socket. */
typedef struct net_sock {
    uint64_t id;
    gr__net *net;
    _Atomic(int) refs;
    int fd;
    bool tcp;
    gr_io_opts opts;      /* Resolved: no zero defaults left. */
    uint64_t listener_id; /* Accepted: its listener; else 0. */
    char *unix_path;      /* A Unix listener's file, unlinked at close. */
    gr_reason why;        /* Why it closed, for its closed event: set
                             before it is finished (by the I/O thread, or
                             by the owner as it marks it closing). */
    /* Guarded by net->lock and lock (either, to read): */
    gr_ref owner;
    struct net_sock *owner_next;
    /* Guarded by lock: */
    pthread_mutex_t lock;
    net_kind kind;
    uint32_t active;    /* Messages still allowed (GR_IO_ALWAYS: no limit). */
    bool closing;       /* Closed by its owner or its owner's exit. */
    bool abort;         /* Closing at once: what is queued is dropped. */
    bool shut_wr;       /* Shut for writing once the queue is empty. */
    bool read_over;     /* End of file seen or an over-long frame. */
    bool finished;      /* Its descriptor is closed. */
    bool sync_queued;   /* sync below is queued for the I/O thread. */
    gr__io_job sync;    /* The one job that brings its watchers in line
                           (one storage suffices: sync_queued). */
    int connect_err;    /* A connect that failed at once: its errno. */
    bool write_waiting; /* The I/O thread writes what is queued. */
    /* The read watcher is on, and stays on until the I/O thread decides
     * otherwise under this lock: an owner that asks for more then need
     * not wake the I/O thread. */
    bool reading;
    char *wbuf; /* Queued bytes: [woff, woff + wlen). */
    size_t woff, wlen, wcap;
    /* The read buffer, guarded by lock: */
    char *rbuf; /* NET_HDR free bytes, then rlen bytes read, of which
                   those before rstart are delivered. */
    size_t rstart, rlen, rcap;
    /* A complete frame is buffered (the allowance ran out before it): no
     * more is read until it is delivered, so the buffer stays within one
     * frame and one read. */
    bool rready;
    bool rskip; /* Dropping the rest of an over-long line, up to its LF. */
    /* I/O thread only: */
    ev_io rio, wio;
    ev_timer timer; /* A connect's limit, or a close's linger. */
    bool rio_on, wio_on, timer_on, shut_done;
    bool backoff;  /* A listener out of descriptors, waiting on timer. */
    bool starved;  /* Said so in the log; cleared (and said) on recovery. */
    uint32_t live; /* A listener: its accepted sockets not yet finished. */
} net_sock;

/* The sockets of one system. */
struct gr__net {
    gr_system *sys;
    pthread_mutex_t lock;
    gr__refmap socks;  /* Id -> net_sock. */
    gr__refmap owners; /* Owner ref -> its first net_sock. */
    _Atomic(uint64_t) next_id;
    _Atomic(uint64_t) bytes_in, bytes_out;
    _Atomic(uint64_t) open;
};

/* --- table.c ----------------------------------------------------------- */

/* The system's sockets, made on first use; NULL when out of memory. */
gr__net *gr__net_of(gr_system *sys);

/* Makes a socket for fd owned by owner and enters it in the table.
 * Returns it with one reference for the caller, or NULL (fd is then
 * closed). */
net_sock *gr__net_add(gr__net *net, int fd, net_kind kind, bool tcp,
                      const gr_io_opts *opts, gr_ref owner);

/* Finds socket id for a call of the actor `caller`; with a reference the
 * caller drops with gr__net_unref. Returns GR_OK, GR_ECLOSED (unknown or
 * finished) or GR_ENOTOWNER. */
int gr__net_find(gr__net *net, uint64_t id, gr_ref caller, net_sock **out);

/* Takes and drops a reference. */
void gr__net_ref(net_sock *s);
void gr__net_unref(net_sock *s);

/* Moves s to new_owner and tells it (GR_IO_GIVEN), under both locks so
 * nothing about s reaches it first. Returns false when s is finished. */
bool gr__net_set_owner(net_sock *s, gr_ref new_owner);

/* Emits a socket event about s (see grove/event.h); why may be NULL. */
void gr__net_emit(net_sock *s, gr_event_kind kind, const char *address,
                  uint64_t listener, uint64_t unsent, const gr_reason *why);

/* I/O thread: closes s's descriptor, stops its watchers (unless the loop
 * is gone), takes it out of the table and its owner's chain. */
void gr__net_finish(net_sock *s, bool loop_alive);

/* --- loop.c ------------------------------------------------------------ */

/* Asks the I/O thread to bring s's watchers in line with its state; called
 * with s->lock held. */
void gr__net_sync_locked(net_sock *s);

/* Delivers to s's owner with s->lock held by the caller, so the owner
 * read is the one the message reaches and no close or give slips in. */
void gr__net_deliver_to(net_sock *s, gr_ref owner, net_wire *w, char *frame,
                        size_t len);

/* --- frames.c (all with s->lock held) ----------------------------------- */

/* Drops s's read buffer (an idle socket keeps none). */
void gr__net_drop_rbuf(net_sock *s);

/* Makes room for `more` bytes after what s's read buffer holds, moving
 * what is not delivered yet to its front first. False when out of
 * memory. */
bool gr__net_reserve(net_sock *s, size_t more);

/* Delivers the complete frames s holds while its allowance lasts, noting
 * in rready whether one is left; an over-long frame is reported and stops
 * reading. */
void gr__net_deliver_frames(net_sock *s);

/* --- loop.c ------------------------------------------------------------ */

/* Delivers one GR_MSG_IO with header w to s's owner. A frame (len bytes)
 * must be preceded by NET_HDR bytes the header may be written over; frame
 * may be NULL with len 0. */
void gr__net_deliver(net_sock *s, net_wire *w, char *frame, size_t len);

/* --- addr.c ------------------------------------------------------------ */

/* A parsed address. */
typedef struct net_addr {
    struct sockaddr_storage sa;
    socklen_t len;
    bool tcp;
} net_addr;

/* Parses "host:port", "[v6]:port" or "unix:/path". Returns GR_OK,
 * GR_EINVAL or GR_ENAMETOOLONG. */
int gr__net_parse(const char *text, net_addr *out);

/* Opens a listening socket on a with opts (mode, kernel buffers); *fd on
 * GR_OK. Errors as gr_io_listen. */
int gr__net_open_listener(gr_system *sys, const net_addr *a,
                          const gr_io_opts *opts, int *fd);

/* Opens a socket with opts (kernel buffers) and starts connecting it to a;
 * *fd on GR_OK. *err is the errno of a connect that failed at once (a Unix
 * path with no listener), else 0: the outcome is then the I/O thread's to
 * learn. */
int gr__net_open_connect(gr_system *sys, const net_addr *a,
                         const gr_io_opts *opts, int *fd, int *err);

/* Writes "host:port" of sa into buf. */
void gr__net_format(const struct sockaddr_storage *sa, socklen_t len, char *buf,
                    size_t size);

/* Writes "ENAME: text" for errno e into buf; returns the GR_E* code for e
 * as a socket error. */
int gr__net_errno(int e, char *buf, size_t size);

#endif
