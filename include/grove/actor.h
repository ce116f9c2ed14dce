/*
 * Grove actors: behaviours, references, messages, spawning and sending.
 *
 * An actor runs a behaviour: a table of callbacks plus a state size. The
 * runtime allocates the state, calls init once, then handle once per message
 * (never two at a time for one actor), and terminate once when the actor
 * exits. Handlers must not block: everything an actor waits for arrives as a
 * message.
 *
 * Thread safety: functions taking a gr_ctx may be called only from inside
 * that context's callback, on the thread that runs it. Functions taking a
 * gr_system may be called from any thread, handlers included.
 */
#ifndef GROVE_ACTOR_H
#define GROVE_ACTOR_H

#include <grove/common.h>
#include <grove/system.h>

/* Message types from this value up are reserved for the runtime. */
#define GR_MSG_RESERVED 0xFFFF0000u

/*
 * A message as a handler or an inbox sees it. The payload bytes are the
 * sender's, copied once; by convention they are msgpack. In a handler the
 * message and its payload are valid only during the call.
 */
typedef struct gr_msg {
    uint32_t type;    /* Application-defined type, below GR_MSG_RESERVED. */
    uint32_t flags;   /* GR_MSG_REQUEST / _REPLY / _TIMER bits, set by the
                         runtime; zero for plain tells. */
    gr_ref from;      /* Sender, or GR_REF_NONE. */
    gr_ref to;        /* Receiver. */
    uint64_t corr;    /* Correlation id; zero for plain tells. */
    const void *data; /* Payload bytes; NULL when len is zero. */
    size_t len;       /* Payload length in bytes. */
} gr_msg;

/* gr_msg.flags: a request sent by gr_ask() or gr_call(); answer it with
 * gr_reply() (see grove/ask.h). */
#define GR_MSG_REQUEST 0x1u
/* gr_msg.flags: the answer to one of the receiver's asks (a reply,
 * GR_MSG_TIMEOUT or GR_MSG_ASK_FAILED); corr is the ask's id. */
#define GR_MSG_REPLY 0x2u
/* gr_msg.flags: sent by one of the receiver's own timers; corr is the
 * timer's id (see grove/timer.h). */
#define GR_MSG_TIMER 0x4u

/* The context of one callback; opaque, valid only during that callback. */
typedef struct gr_ctx gr_ctx;

/* Longest text, in bytes without the terminator, a gr_reason carries. */
#define GR_REASON_TEXT_MAX 55

/* gr_reason flag: the actor crashed while handling a message, whose type is
 * in msg_type. */
#define GR_REASON_IN_HANDLER 1u

/*
 * Why an actor exited, as terminate, DOWN and EXIT messages and the event
 * log see it. code is GR_OK (OTP's normal), GR_ESHUTDOWN (shutdown, with an
 * optional application-defined detail), GR_EKILLED (killed by a kill
 * signal), GR_ENOACTOR (noproc: there was no such actor), or the negative
 * error code it crashed with. A plain value: copy it freely.
 */
typedef struct gr_reason {
    int32_t code;      /* GR_OK, GR_ESHUTDOWN, GR_EKILLED, or an error code. */
    uint32_t flags;    /* GR_REASON_* bits. */
    uint32_t msg_type; /* With GR_REASON_IN_HANDLER: the message's type. */
    uint32_t reserved; /* Zero. */
    int64_t detail;    /* Application-defined (e.g. a shutdown detail). */
    char text[GR_REASON_TEXT_MAX + 1]; /* NUL-terminated; "" for none. */
} gr_reason;

/* Returns the reason with code and nothing else. */
static inline gr_reason gr_reason_of(int code)
{
    gr_reason r = {0};
    r.code = code;
    return r;
}

/* Returns nonzero when r is normal or shutdown: the exits that do not count
 * as failures (and that OTP does not log as crashes). */
static inline int gr_reason_is_clean(const gr_reason *r)
{
    return r->code == GR_OK || r->code == GR_ESHUTDOWN;
}

/*
 * Formats r for people, e.g. "normal", "shutdown (detail 3)", "killed",
 * "GR_EUNHANDLED (unhandled message) while handling type 0x7: text".
 * Writes at most size bytes including the terminator into buf (truncating)
 * and returns buf.
 */
GR_API char *gr_reason_format(const gr_reason *r, char *buf, size_t size);

/* Buffer size that holds any ref gr_ref_format() writes. */
#define GR_REF_FORMAT_MAX (GR_NAME_MAX + 48)

/*
 * Writes ref as text into buf (size bytes, terminator included; cut to
 * fit) and returns buf: "<index.generation@node>", the node by its name
 * ("root" for the system's first process, e.g. "<7.1@root>",
 * "<3.1@worker-1>"). A ref of an earlier incarnation of the node (one
 * restarted since) ends with that incarnation in hex
 * ("<3.1@worker-1/5d2c1a9e>"), and a node sys does not know (gone, or sys
 * NULL) shows as its id in hex with the incarnation
 * ("<3.1@#1a2b3c4d/5d2c1a9e>"); "<none>" for GR_REF_NONE. Any thread.
 */
GR_API char *gr_ref_format(gr_system *sys, gr_ref ref, char *buf, size_t size);

/* handle's return value that keeps the actor running (equal to GR_OK). */
#define GR_CONTINUE 0
/* handle's return value that makes the actor exit with reason normal. */
#define GR_STOP 1

/*
 * A behaviour: the callbacks an actor runs and the size of its state.
 * Behaviours are usually static const and must outlive their actors.
 */
typedef struct gr_behaviour {
    /* Name shown in log lines. */
    const char *name;
    /* Bytes of state the runtime allocates, zeroed, for each actor. */
    size_t state_size;
    /*
     * Optional. Called once, before gr_spawn() returns, on the spawning
     * thread; arg is the spawner's and valid only during the call. Return
     * GR_OK, or a negative GR_E* code to make the spawn fail with it.
     */
    int (*init)(gr_ctx *ctx, void *state, const void *arg, size_t arg_len);
    /*
     * Required. Called once per message. Return GR_CONTINUE, GR_STOP (exit
     * with reason normal, or the one gr_stop_with() set), or a negative
     * GR_E* code: the actor then crashes with that code as its reason.
     */
    int (*handle)(gr_ctx *ctx, void *state, const gr_msg *msg);
    /*
     * Optional. Called once when the actor exits for any reason, kill
     * included (it is the actor's destructor), but not when init failed.
     * why says why; it is valid only during the call. The state is freed
     * after it returns.
     */
    void (*terminate)(gr_ctx *ctx, void *state, const gr_reason *why);
} gr_behaviour;

/*
 * Crashes the current actor from any depth of its init or handle call: the
 * callback does not return, and the actor exits with reason GR_EFAILED
 * whose text is the printf-style message (truncated to
 * GR_REASON_TEXT_MAX). ctx must be the innermost callback's. In terminate
 * it only ends terminate early.
 */
GR_API _Noreturn void gr_fail(gr_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Sets the reason the current actor exits with when its handle returns
 * GR_STOP, e.g. a shutdown with a detail. why is copied. Returns GR_STOP,
 * so a handler may write `return gr_stop_with(ctx, &why);`.
 */
GR_API int gr_stop_with(gr_ctx *ctx, const gr_reason *why);

/*
 * Spawns an actor running behaviour b from inside a handler; init runs
 * before this returns. The arg bytes are only lent to init. Stores the new
 * reference in *out (may be NULL). Returns GR_OK, GR_EINVAL (b or its handle
 * is NULL, or arg_len without arg), GR_ENOMEM, GR_ELIMIT, GR_ESTOPPED, or
 * the negative code init returned.
 */
GR_API int gr_spawn(gr_ctx *ctx, const gr_behaviour *b, const void *arg,
                    size_t arg_len, gr_ref *out);

/* Spawns an actor from any thread; otherwise exactly as gr_spawn(). */
GR_API int gr_system_spawn(gr_system *sys, const gr_behaviour *b,
                           const void *arg, size_t arg_len, gr_ref *out);

/* Optional spawn settings; a zeroed struct gives gr_spawn()'s defaults. */
typedef struct gr_spawn_opts {
    /*
     * Most application messages the mailbox may hold; 0 means no limit. A
     * send beyond it is refused with GR_EMAILBOXFULL and becomes a
     * mailbox_full dead letter. Runtime messages (exit signals, DOWN, an
     * ask's timeout or failure) are never refused.
     */
    uint32_t mailbox_cap;
    /*
     * Nonzero runs the actor on the blocking pool (gr_config's
     * blocking_threads) instead of the workers, so its handler may block:
     * fsync, a database call, a DNS lookup, a sleep. Everything else is as
     * for any actor (mailbox, ordering, links, monitors, supervision, asks,
     * timers), but its init still runs on the spawner's thread, so do the
     * blocking part of starting up in a message it sends itself. While
     * every pool thread is blocked, blocking actors wait their turn; the
     * workers never run them and are never stalled by them.
     */
    int blocking;
} gr_spawn_opts;

/* gr_spawn() with settings (opts may be NULL). */
GR_API int gr_spawn_opt(gr_ctx *ctx, const gr_behaviour *b, const void *arg,
                        size_t arg_len, const gr_spawn_opts *opts, gr_ref *out);

/* gr_system_spawn() with settings (opts may be NULL). */
GR_API int gr_system_spawn_opt(gr_system *sys, const gr_behaviour *b,
                               const void *arg, size_t arg_len,
                               const gr_spawn_opts *opts, gr_ref *out);

/*
 * Sends a message from the current actor; never blocks. The payload is
 * copied once, so the caller keeps ownership of data. Returns GR_OK when the
 * message was accepted for delivery. When the target is known to be gone the
 * message becomes a dead letter and GR_ENOACTOR is returned. Also GR_EINVAL
 * (data NULL with len > 0, data non-NULL with len == 0, or a reserved type),
 * GR_EMAILBOXFULL (the target's bounded mailbox is full; a mailbox_full
 * dead letter), GR_ENOCONNECTION (the target's node is not connected; a
 * node_down dead letter), GR_EBACKPRESSURE (the link to its node is full;
 * a backpressure dead letter), GR_EMSGSIZE, GR_ENOMEM, GR_ESTOPPED.
 */
GR_API int gr_tell(gr_ctx *ctx, gr_ref to, uint32_t type, const void *data,
                   size_t len);

/*
 * Sends a message to the actor registered under name, as gr_tell(). When no
 * actor has that name the message becomes an unknown_name dead letter and
 * GR_ENOTFOUND is returned.
 */
GR_API int gr_tell_name(gr_ctx *ctx, const char *name, uint32_t type,
                        const void *data, size_t len);

/*
 * Sends a message from any thread, naming the sender (GR_REF_NONE, or e.g.
 * an inbox's reference so replies come back); otherwise exactly as gr_tell().
 */
GR_API int gr_system_tell(gr_system *sys, gr_ref from, gr_ref to, uint32_t type,
                          const void *data, size_t len);

/* gr_system_tell() to the actor registered under name; as gr_tell_name(). */
GR_API int gr_system_tell_name(gr_system *sys, gr_ref from, const char *name,
                               uint32_t type, const void *data, size_t len);

/*
 * Asks an actor to exit with reason GR_ESHUTDOWN after the messages already
 * in its mailbox; returns at once. Returns GR_OK, GR_ENOACTOR when the
 * actor is already gone, or GR_EINVAL for an inbox (close it instead). A
 * supervisor stopped so exits at once, its children getting that exit
 * through their links (one that traps exits goes on): to stop a tree in
 * order, send it GR_ESHUTDOWN with gr_system_exit() instead.
 */
GR_API int gr_stop(gr_system *sys, gr_ref target);

/* Returns the reference of the actor whose callback this is
 * (GR_REF_NONE for a NULL ctx). */
GR_API gr_ref gr_self(const gr_ctx *ctx);

/* Returns the system the current actor belongs to (NULL for a NULL
 * ctx). */
GR_API gr_system *gr_ctx_system(const gr_ctx *ctx);

/*
 * Longest name, in bytes without the terminator. Every name Grove takes
 * (registered names, node names, child ids and names, both parts of
 * "name@node") follows one rule: 1 to GR_NAME_MAX bytes of well-formed
 * UTF-8 without control characters (so no name can break a log line), and
 * no '@' (child ids may have one); else GR_EINVAL or GR_ENAMETOOLONG, from
 * every call a name enters by.
 */
#define GR_NAME_MAX 63

/*
 * Registers a name for the current actor; the name is removed when the actor
 * exits. The string is copied. Returns GR_OK, GR_EINVAL (not a name: see
 * GR_NAME_MAX), GR_ENAMETOOLONG, GR_EEXIST (taken, or this actor already
 * has a name) or GR_ENOMEM.
 */
GR_API int gr_register(gr_ctx *ctx, const char *name);

/*
 * Looks up a registered name and stores its actor's reference in *out.
 * Returns GR_OK, GR_ENOTFOUND, or GR_EINVAL / GR_ENAMETOOLONG for what is
 * not a name (see GR_NAME_MAX).
 */
GR_API int gr_whereis(gr_system *sys, const char *name, gr_ref *out);

#endif
