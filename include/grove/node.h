/*
 * Grove nodes: actors in separate OS processes of one host, linked to their
 * parent by a socketpair and msgpack frames (see docs/nodes.md).
 *
 * A node is started by a supervisor: a child spec with type GR_NODE,
 * behaviour &gr_node_behaviour and arg = a gr_node_spec. The supervisor's
 * child is a stand-in actor that starts the process, finishes the
 * handshake before its init returns, passes application messages sent
 * to it on to the node's root actor (sender and corr kept, so the root
 * answers requests itself; see docs/nodes.md), and exits when the
 * process does, with
 * reason normal (exit status 0), shutdown (exit status
 * GR_NODE_EXIT_SHUTDOWN: its root exited with shutdown, e.g. a root
 * supervisor gave up), its root's crash code (see GR_NODE_EXIT_CRASH),
 * GR_EEXITSTATUS (detail: the status),
 * GR_ESIGNAL (detail: the signal, text e.g. "signal SIGSEGV") or GR_EPROTO
 * (the link carried a bad frame; the process was killed). Stopping the
 * child sends the node a shutdown request, then SIGKILL after shutdown_ms;
 * the process is always reaped.
 *
 * The node process runs its own system. Any actor can tell, ask, monitor
 * and link any actor of any node of the system by ref, or send to
 * "name@node". When a node goes down, links and monitors to its actors
 * fire with reason noconnection (GR_ENOCONNECTION), asks to them fail at
 * once, and messages to it become node_down dead letters.
 *
 * Thread safety: as for actors (grove/actor.h).
 */
#ifndef GROVE_NODE_H
#define GROVE_NODE_H

#include <grove/actor.h>

/*
 * A node child's start spec: the arg of a GR_NODE child spec (its bytes
 * are copied; the strings and arrays it points to must outlive the
 * supervisor, static data usually).
 */
typedef struct gr_node_spec {
    /* The node's name, unique in the system: 1..GR_NAME_MAX bytes, no '@',
     * not "root" (the name of the system's first process). */
    const char *name;
    /* The root behaviour the node starts, by its name in the table the
     * node's program passes to gr_node_main(). */
    const char *root;
    /* Bytes for the root's init at every (re)start; copied then. */
    const void *arg;
    size_t arg_len;
    /* The program to run; NULL means this program (/proc/self/exe). */
    const char *exe;
    /* Its argv, NULL-terminated; NULL means { exe, NULL }. */
    const char *const *argv;
    /* How long the process may take to finish the handshake (its root's
     * init included); 0 means 5000 ms. */
    uint32_t start_timeout_ms;
    /* Nonzero: start the node's process by fork and exec every time,
     * rather than cloning it from its program's pre-started template
     * process (the fork server; docs/nodes.md). For a program whose
     * main() does, before gr_node_main(), something each node must do
     * afresh. GROVE_NODE_FORK_SERVER=0 in the environment does this for
     * every node the process starts. */
    int no_fork_server;
} gr_node_spec;

/* The stand-in behaviour of a node child; its arg is a gr_node_spec. */
GR_API extern const gr_behaviour gr_node_behaviour;

/* The exit status of a node whose root exited with reason shutdown (its
 * stand-in then exits with shutdown too: OTP's escalation). */
#define GR_NODE_EXIT_SHUTDOWN 64

/* A node whose root crashed with code c (GR_EINVAL down to
 * GR_NODE_EXIT_CRASH_MIN) exits with status GR_NODE_EXIT_CRASH - c (66 and
 * up), so its stand-in exits with that same code (detail: the status,
 * text "its root crashed"); another crash code gives status 1. */
#define GR_NODE_EXIT_CRASH     65
#define GR_NODE_EXIT_CRASH_MIN (-60)

/* One root behaviour a node program offers, by name. */
typedef struct gr_node_root {
    const char *name;
    const gr_behaviour *behaviour;
    /* The root's init arg when the parent's gr_node_spec brings none
     * (arg_len 0). Bytes from the parent cannot hold pointers, for the
     * node is another process; these can: {"rooms",
     * &gr_supervisor_behaviour, &spec, sizeof spec} makes the node's root
     * a supervisor whose spec lives in the node's program. */
    const void *arg;
    size_t arg_len;
} gr_node_root;

/*
 * Call first in main(). When this process was started as a node, runs it:
 * finishes the handshake, starts a system with cfg (may be NULL), spawns
 * the root named by the parent with its arg, and runs until the parent
 * asks it to stop, the parent goes away, or the root exits. Then stores the
 * process's exit status in *exit_code (0 after a stop or a normal root exit,
 * GR_NODE_EXIT_SHUTDOWN after a root's shutdown, GR_NODE_EXIT_CRASH minus
 * the code when the root crashed, 1 when the start failed) and returns 1.
 * Returns 0 at once when this process is not a node.
 */
GR_API int gr_node_main(const gr_node_root *roots, size_t nroots,
                        const gr_config *cfg, int *exit_code);

/*
 * Finds the actor registered as name on whichever node of the system has
 * it ("name@node": on that node only, waiting within the timeout for a
 * node that has just started to become known here): this node first, then
 * every other node, which all answer. From a thread that is not running a
 * callback (GR_EWRONGTHREAD there); waits up to timeout (a gr_duration;
 * GR_DURATION_DEFAULT is 5 s). Stores the ref in *out. Returns GR_OK,
 * GR_ENOTFOUND (no node has it), GR_ETIMEDOUT (not every node answered in
 * time), GR_EINVAL (also a timeout below GR_DURATION_DEFAULT),
 * GR_ENAMETOOLONG, GR_ENOMEM, GR_ESTOPPED (the system is stopping).
 */
GR_API int gr_whereis_any(gr_system *sys, const char *name, gr_duration timeout,
                          gr_ref *out);

/* Copies this system's node name ("root" for the first process) into buf
 * of size bytes (GR_NAME_MAX + 1 always suffice), NUL-terminated. Returns
 * GR_OK, GR_EINVAL (NULL sys or buf) or GR_ENAMETOOLONG (buf too small;
 * nothing is copied). */
GR_API int gr_node_name(gr_system *sys, char *buf, size_t size);

#endif
