/*
 * Grove common definitions: visibility macro, error codes, gr_strerror(),
 * and actor references (gr_ref), which every other header uses.
 *
 * Every Grove function that can fail returns an int: GR_OK (zero) on success
 * or one of the negative GR_E* codes below. Thread safety: everything here
 * may be called from any thread.
 */
#ifndef GROVE_COMMON_H
#define GROVE_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* GR_API marks a symbol exported from the shared library; all else is hidden.
 */
#if defined(GROVE_BUILDING) && defined(__GNUC__)
#define GR_API __attribute__((visibility("default")))
#else
#define GR_API
#endif

/*
 * The error table: name, value, and the message gr_strerror() returns.
 * One table, so the enum and the strings cannot drift apart.
 */
#define GR_ERRNO_MAP(X)                                                        \
    X(OK, 0, "success")                                                        \
    X(EINVAL, -1, "invalid argument")                                          \
    X(ENOMEM, -2, "out of memory")                                             \
    X(ENOACTOR, -3, "no such actor")                                           \
    X(ESTOPPED, -4, "system is stopping")                                      \
    X(EEXIST, -5, "already exists (a name, child id or node)")                 \
    X(ENOTFOUND, -6, "not found (no such name, child, timer or monitor)")      \
    X(ETIMEDOUT, -7, "timed out")                                              \
    X(EUNHANDLED, -8, "unhandled message")                                     \
    X(EWRONGTHREAD, -9, "not allowed on this thread")                          \
    X(EMSGSIZE, -10, "payload too large")                                      \
    X(ENAMETOOLONG, -11, "name too long")                                      \
    X(ESHUTDOWN, -12, "shut down")                                             \
    X(EINIT, -13, "actor init failed")                                         \
    X(ESYS, -14, "system call failed")                                         \
    X(ELIMIT, -15, "too many actors")                                          \
    X(EFAILED, -16, "actor failed")                                            \
    X(EKILL, -17, "kill")                                                      \
    X(EKILLED, -18, "killed")                                                  \
    X(EBUSY, -19, "busy")                                                      \
    X(EMAILBOXFULL, -20, "mailbox full")                                       \
    X(ENOCONNECTION, -21, "no connection to the node")                         \
    X(EBACKPRESSURE, -22, "no room in the outbound buffer")                    \
    X(EPROTO, -23, "protocol error (malformed bytes)")                         \
    X(ESIGNAL, -24, "node killed by a signal")                                 \
    X(EEXITSTATUS, -25, "node exited with a nonzero status")                   \
    X(ENOTSUP, -26, "the target does not take this request")                   \
    X(EADDRINUSE, -27, "address already in use")                               \
    X(ECONNREFUSED, -28, "connection refused")                                 \
    X(ECONNRESET, -29, "connection reset by peer")                             \
    X(ECLOSED, -30, "socket closed")                                           \
    X(ENOTOWNER, -31, "not the socket's owner")

/* Error codes returned by Grove functions; GR_OK is zero, failures negative. */
typedef enum gr_err {
#define GR__ERR_ENUM(name, value, text) GR_##name = (value),
    GR_ERRNO_MAP(GR__ERR_ENUM)
#undef GR__ERR_ENUM
} gr_err;

/* Returns a static, human-readable description of an error code. */
GR_API const char *gr_strerror(int err);

/*
 * A time limit in milliseconds. Every Grove call that waits takes one, and
 * every one reads it the same way: a positive count of milliseconds;
 * GR_DURATION_ZERO, do not wait (take what is there already, or time out
 * at once); GR_DURATION_INFINITE, wait as long as it takes;
 * GR_DURATION_DEFAULT, the call's documented default (for asks, calls and
 * name lookups GR_DURATION_DEFAULT_MS, OTP's call timeout). A value below
 * GR_DURATION_DEFAULT is GR_EINVAL. Configuration structs differ on
 * purpose: a field of theirs left 0 means its default, so a zeroed struct
 * is a valid one.
 */
typedef int32_t gr_duration;

/* The call's documented default limit. */
#define GR_DURATION_DEFAULT ((gr_duration)-2)
/* No limit. */
#define GR_DURATION_INFINITE ((gr_duration)-1)
/* Do not wait. */
#define GR_DURATION_ZERO ((gr_duration)0)
/* The default limit of asks, calls and name lookups: 5 s. */
#define GR_DURATION_DEFAULT_MS 5000

/*
 * A reference to an actor: a small value naming {node, node incarnation,
 * actor serial}. Serials are never reused, so a reference to an actor that
 * has exited never reaches another actor; sends to it become dead letters.
 * Each start of a system or node draws a random incarnation, so a
 * reference of another system, or of an earlier start, names no actor.
 */
typedef struct gr_ref {
    uint64_t serial;      /* Actor serial within its node; 0 means none. */
    uint32_t node;        /* Node the actor lives on (0: the system's root
                             process; see grove/node.h). */
    uint32_t incarnation; /* Incarnation of that node. */
} gr_ref;

/* The reference that names no actor. */
#define GR_REF_NONE ((gr_ref){0, 0, 0})

/* Returns nonzero when two references name the same actor. */
static inline int gr_ref_eq(gr_ref a, gr_ref b)
{
    return a.serial == b.serial && a.node == b.node &&
           a.incarnation == b.incarnation;
}

/* Returns nonzero when the reference names no actor. */
static inline int gr_ref_is_none(gr_ref r)
{
    return r.serial == 0;
}

/* Returns the static symbolic name of an error code, e.g. "GR_ENOACTOR". */
GR_API const char *gr_errname(int err);

#endif
