/*
 * Grove supervisors: actors that start, watch and restart other actors,
 * with Erlang/OTP's supervisor semantics (see docs/supervision.md).
 *
 * A supervisor starts its children in order, each synchronously (its init
 * has returned), links to them and traps exits. When a child exits it
 * applies its strategy and the child's restart type, counting restarts
 * against an intensity budget; past the budget it stops every child in
 * reverse start order and exits with reason shutdown, which its own
 * supervisor then handles. Stopping a child follows its shutdown spec: a
 * shutdown exit signal, a wait, then kill.
 *
 * Thread safety: gr_supervisor_start() may be called from any thread,
 * handlers included. The blocking runtime calls (start/terminate/restart/
 * delete/which/count) may be called from any thread that is not running a
 * Grove callback (they return GR_EWRONGTHREAD there); actors use the
 * *_async forms and get a GR_MSG_SUP_REPLY.
 */
#ifndef GROVE_SUPERVISOR_H
#define GROVE_SUPERVISOR_H

#include <grove/actor.h>

/* How a supervisor reacts when a child exits and is to be restarted. */
typedef enum gr_strategy {
    GR_ONE_FOR_ONE = 0,  /* Restart that child only. */
    GR_ONE_FOR_ALL = 1,  /* Stop all others (reverse order), restart all. */
    GR_REST_FOR_ONE = 2, /* Stop the children started after it (reverse
                            order), restart it and them in start order. */
    GR_SIMPLE_ONE_FOR_ONE = 3 /* One spec; children added at run time with
                                 gr_supervisor_spawn_child(); one-for-one. */
} gr_strategy;

/* When a child is restarted. */
typedef enum gr_restart {
    GR_PERMANENT = 0, /* Always. */
    GR_TRANSIENT = 1, /* Only after an abnormal exit (not normal, not
                         shutdown). */
    GR_TEMPORARY = 2  /* Never; its spec is removed once it exits. */
} gr_restart;

/* What a child is; decides its default shutdown. A node child (an OS
 * process, see grove/node.h) counts as a worker in gr_child_counts. */
typedef enum gr_child_type {
    GR_WORKER = 0,
    GR_SUPERVISOR = 1,
    GR_NODE = 2
} gr_child_type;

/* shutdown_ms values: the type's default (5000 ms for a worker, infinity
 * for a supervisor, as in OTP), kill at once, or wait forever. */
#define GR_SHUTDOWN_DEFAULT  0
#define GR_SHUTDOWN_BRUTAL   (-1)
#define GR_SHUTDOWN_INFINITY (-2)

/*
 * How to start and treat one child. The supervisor copies every field it
 * keeps (id, name, arg bytes), except behaviour, which must outlive it.
 */
typedef struct gr_child_spec {
    /* Unique among the supervisor's children, 1..GR_NAME_MAX bytes.
     * Ignored (may be NULL) for a simple-one-for-one template. */
    const char *id;
    /* What the child runs. For a child supervisor use
     * &gr_supervisor_behaviour with arg = a gr_sup_spec (see there). */
    const gr_behaviour *behaviour;
    /* Bytes passed to init at every (re)start; copied. */
    const void *arg;
    size_t arg_len;
    gr_restart restart;
    /* GR_SHUTDOWN_DEFAULT, GR_SHUTDOWN_BRUTAL, GR_SHUTDOWN_INFINITY, or a
     * positive timeout in milliseconds. */
    int32_t shutdown_ms;
    gr_child_type type;
    /* Optional name, registered for the child before its init runs at every
     * (re)start; NULL for none. Not for simple-one-for-one. */
    const char *name;
    /* Nonzero runs the child on the blocking pool (as
     * gr_spawn_opts.blocking); ignored for GR_NODE and supervisors. */
    int blocking;
} gr_child_spec;

/* Optional restart backoff (beyond OTP): a restart waits a delay that
 * starts at min_ms and doubles with each restart in the current intensity
 * window, up to max_ms, plus up to jitter_pct percent at random. All zero
 * means restart at once, as OTP does. */
typedef struct gr_backoff {
    uint32_t min_ms;
    uint32_t max_ms;
    uint32_t jitter_pct;
} gr_backoff;

/*
 * A supervisor's flags and children. gr_supervisor_start() copies it all;
 * as a child spec's arg, the struct bytes are copied, so the children array
 * and strings it points to must outlive the parent (static data usually).
 */
typedef struct gr_sup_spec {
    gr_strategy strategy;
    /* Restarts allowed in any period_ms window; 0 means the first restart
     * gives up. OTP's default is intensity 1, period 5000. */
    uint32_t intensity;
    /* Window length in milliseconds; 0 means 5000. */
    uint32_t period_ms;
    /* Children, started in this order; for simple-one-for-one exactly one,
     * the template. */
    const gr_child_spec *children;
    size_t nchildren;
    /* Optional registered name of the supervisor itself; NULL for none. */
    const char *name;
    gr_backoff backoff;
} gr_sup_spec;

/* The supervisor behaviour; its init's arg is the bytes of a gr_sup_spec. */
GR_API extern const gr_behaviour gr_supervisor_behaviour;

/*
 * Starts a supervisor from any thread and, before returning, every child in
 * order. Stores its reference in *out (may be NULL). If a child's init
 * fails, the children already started are sent shutdown in reverse order
 * and the child's error is returned. Also GR_EINVAL for a malformed spec
 * (duplicate or missing ids, a bad shutdown value, a simple-one-for-one
 * spec without exactly one child), GR_EEXIST, GR_ENOMEM, GR_ESTOPPED.
 */
GR_API int gr_supervisor_start(gr_system *sys, const gr_sup_spec *spec,
                               gr_ref *out);

/* Whether a child is running. */
typedef enum gr_child_state {
    GR_CHILD_RUNNING = 0,   /* Has a live actor. */
    GR_CHILD_STOPPED = 1,   /* Spec kept, no actor (terminated). */
    GR_CHILD_RESTARTING = 2 /* Waiting for a backoff delay or a retry. */
} gr_child_state;

/* One child as gr_supervisor_which_children() reports it. */
typedef struct gr_child_info {
    char id[GR_NAME_MAX + 1]; /* Simple-one-for-one: the template's id. */
    gr_ref ref;               /* GR_REF_NONE unless running. */
    gr_child_state state;
    gr_child_type type;
    gr_restart restart;
} gr_child_info;

/* Child counts, as OTP's count_children. */
typedef struct gr_child_counts {
    size_t specs;       /* Child specs (for simple-one-for-one: children). */
    size_t active;      /* Running children. */
    size_t supervisors; /* Children of type supervisor. */
    size_t workers;     /* Children of type worker. */
} gr_child_counts;

/*
 * The blocking calls below are for threads that are not running a callback
 * (GR_EWRONGTHREAD there). Besides what each lists, every one returns
 * GR_ENOTSUP at once when sup is not a supervisor (the request never
 * reaches that actor), GR_ENOACTOR when sup is gone or dies before
 * answering, GR_ESHUTDOWN when sup is stopping and answers so, and
 * GR_ENOCONNECTION when sup's node goes down first, and GR_ETIMEDOUT when
 * no answer comes within timeout (a gr_duration: GR_DURATION_DEFAULT is
 * GR_DURATION_DEFAULT_MS; pass GR_DURATION_INFINITE to wait as OTP's
 * supervisor calls do, for a child whose init takes long). A timeout does
 * not withdraw the request: the supervisor may still carry it out, and its
 * late answer is dropped. From an actor, use the *_async forms.
 */

/*
 * Adds a child to a static supervisor and starts it; stores its reference
 * in *out (may be NULL). Returns GR_OK, GR_EEXIST (the id is taken), the
 * child init's error (the spec is then not kept), GR_EINVAL, GR_ENOACTOR
 * (no such supervisor), GR_EWRONGTHREAD.
 */
GR_API int gr_supervisor_start_child(gr_system *sys, gr_ref sup,
                                     const gr_child_spec *spec,
                                     gr_duration timeout, gr_ref *out);

/* Starts one more child of a simple-one-for-one supervisor with arg (in
 * place of the template's arg); otherwise as gr_supervisor_start_child(). */
GR_API int gr_supervisor_spawn_child(gr_system *sys, gr_ref sup,
                                     const void *arg, size_t arg_len,
                                     gr_duration timeout, gr_ref *out);

/*
 * Stops a child by its shutdown spec and keeps its spec (a temporary
 * child's spec, and a simple-one-for-one child, is removed). id names a
 * static child; or pass NULL and a running child's ref (the only way for a
 * simple-one-for-one child).
 * Returns GR_OK, GR_ENOTFOUND, GR_ENOACTOR, GR_EWRONGTHREAD.
 */
GR_API int gr_supervisor_terminate_child(gr_system *sys, gr_ref sup,
                                         const char *id, gr_ref child,
                                         gr_duration timeout);

/* Starts a stopped static child again. Returns GR_OK, GR_EBUSY (it is
 * running), GR_ENOTFOUND, its init's error, GR_EWRONGTHREAD. */
GR_API int gr_supervisor_restart_child(gr_system *sys, gr_ref sup,
                                       const char *id, gr_duration timeout,
                                       gr_ref *out);

/* Removes a stopped static child's spec. Returns GR_OK, GR_EBUSY (it is
 * running), GR_ENOTFOUND, GR_EWRONGTHREAD. */
GR_API int gr_supervisor_delete_child(gr_system *sys, gr_ref sup,
                                      const char *id, gr_duration timeout);

/*
 * Copies up to cap children, in start order, into out and stores the total
 * number in *count. Returns GR_OK, GR_ENOACTOR, GR_EWRONGTHREAD.
 */
GR_API int gr_supervisor_which_children(gr_system *sys, gr_ref sup,
                                        gr_duration timeout, gr_child_info *out,
                                        size_t cap, size_t *count);

/* Fills *out with the supervisor's child counts. Returns GR_OK,
 * GR_ENOACTOR, GR_EWRONGTHREAD. */
GR_API int gr_supervisor_count_children(gr_system *sys, gr_ref sup,
                                        gr_duration timeout,
                                        gr_child_counts *out);

/* Type of the reply to an *_async request: a reply (GR_MSG_REPLY) whose
 * corr is the request's; read it with gr_sup_reply_read(). */
#define GR_MSG_SUP_REPLY (GR_MSG_RESERVED + 0x110u)

/* What the answer to an *_async request says. */
typedef struct gr_sup_reply {
    int32_t rc; /* As the blocking call would return. */
    uint32_t reserved;
    gr_ref child; /* The child started, when rc is GR_OK. */
} gr_sup_reply;

/*
 * From an actor: asks sup to start a child as gr_supervisor_start_child()
 * does, an ask (see gr_ask) with the request's id stored in *corr (may be
 * NULL). Exactly one answer with that corr follows a GR_OK: a
 * GR_MSG_SUP_REPLY from the supervisor (rc GR_ESHUTDOWN if it stops before
 * finishing the request), a GR_MSG_TIMEOUT when timeout (a gr_duration;
 * GR_DURATION_DEFAULT is 5 s) passes first, or a GR_MSG_ASK_FAILED when sup
 * dies without answering or its node goes down. gr_sup_reply_read() reads
 * all three. A timeout does not withdraw the request: the child may still
 * start (and a retry then finds its id taken). Returns GR_OK when the
 * request was sent, else as gr_ask(): GR_ENOACTOR (sup is gone) or
 * GR_ENOTSUP (sup is not a supervisor), and then no answer follows.
 */
GR_API int gr_supervisor_start_child_async(gr_ctx *ctx, gr_ref sup,
                                           const gr_child_spec *spec,
                                           gr_duration timeout, uint64_t *corr);

/* From an actor: as gr_supervisor_spawn_child(), answered as
 * gr_supervisor_start_child_async() is. */
GR_API int gr_supervisor_spawn_child_async(gr_ctx *ctx, gr_ref sup,
                                           const void *arg, size_t arg_len,
                                           gr_duration timeout, uint64_t *corr);

/* From an actor: as gr_supervisor_terminate_child(), answered as
 * gr_supervisor_start_child_async() is. */
GR_API int gr_supervisor_terminate_child_async(gr_ctx *ctx, gr_ref sup,
                                               const char *id, gr_ref child,
                                               gr_duration timeout,
                                               uint64_t *corr);

/*
 * Reads the answer to an *_async request into *out: a GR_MSG_SUP_REPLY as
 * the supervisor sent it; a GR_MSG_TIMEOUT as rc GR_ETIMEDOUT; a
 * GR_MSG_ASK_FAILED as rc GR_ENOACTOR (the supervisor died first),
 * GR_ENOTSUP (a target on another node that is not a supervisor) or
 * GR_ENOCONNECTION (its node went down), child GR_REF_NONE. Returns GR_OK, or
 * GR_EINVAL for any other message.
 */
GR_API int gr_sup_reply_read(const gr_msg *msg, gr_sup_reply *out);

#endif
