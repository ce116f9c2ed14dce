/*
 * The fork server: a pre-initialised *template* process per node program
 * (exe + argv) from which node processes are cloned instead of exec'd
 * (docs/nodes.md, "The fork server"). Parent side in forkserver.c, the
 * template's own side in template.c.
 *
 * The parent starts a template by fork + exec with GROVE_NODE_FD set to
 * "template:N", N its end of a SOCK_SEQPACKET control socket pair. The
 * program's main() calls gr_node_main(), which runs the template: it
 * checks it can serve (one thread), says READY and waits. To start a node
 * the parent sends FORK with the link's far end (SCM_RIGHTS); the template
 * clones a child with CLONE_PARENT, so the node is the parent's own child
 * (reaped and reported as any other), and that child, first thing, sends
 * FORKED with its pid, closes the control socket and returns from the
 * template loop into gr_node_main's node path, as an exec'd node does.
 *
 * Threads: the parent side may be called from any thread (a node child's
 * stand-in starts it on a worker, or on the thread calling
 * gr_supervisor_start); each template serves one request at a time.
 */
#ifndef GROVE_TRANSPORT_FORKSERVER_H
#define GROVE_TRANSPORT_FORKSERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <grove/node.h>

/* GROVE_NODE_FD's value in a template: this prefix, then its control
 * socket's descriptor. A Grove build that does not know it finds no
 * number there and refuses to run (fail safe: never a root by mistake). */
#define GR__TEMPLATE_FD_PREFIX "template:"

/* The name a template shows in ps and /proc (comm, 15 bytes at most); a
 * node cloned from it takes the program's name back. */
#define GR__TEMPLATE_COMM "grove-template"

/* The environment variable that turns the fork server off for every node
 * this process starts ("0"); read when a system's transport is created. */
#define GR__FORK_SERVER_ENV "GROVE_NODE_FORK_SERVER"

/* Message kinds on the control socket. */
enum {
    GR__TPL_READY = 1,   /* template -> parent: serving (value: its pid) */
    GR__TPL_REFUSED = 2, /* template -> parent: cannot serve (value: why) */
    GR__TPL_FORK = 3,    /* parent -> template: start a node (+ 1 fd) */
    GR__TPL_FORKED = 4,  /* new node -> parent: its pid (value) */
    GR__TPL_FAILED = 5   /* template -> parent: clone failed (value: errno) */
};

/* Why a template refuses to serve (GR__TPL_REFUSED's value). */
enum {
    GR__TPL_THREADS = 1, /* main() started threads before gr_node_main() */
    GR__TPL_NO_TID = 2,  /* the kernel does not say where glibc keeps the
                            thread id (PR_GET_TID_ADDRESS) */
    GR__TPL_SETUP = 3    /* a system call of its setup failed */
};

/* One control message; each is one SOCK_SEQPACKET datagram. */
typedef struct gr__tpl_msg {
    uint32_t magic; /* GR__TPL_MAGIC: not a stray datagram. */
    uint32_t kind;
    uint32_t seq; /* FORK's, echoed by FORKED and FAILED. */
    int32_t value;
} gr__tpl_msg;

#define GR__TPL_MAGIC 0x47524653u /* "GRFS" */

/* ---- parent side (forkserver.c) */

struct gr__transport;

/*
 * Starts a node process for spec from its program's template, handing it
 * fd (the link's far end; still the caller's to close). Starts the
 * template first when there is none, or when it died. Waits for the
 * template at most until deadline_ns (CLOCK_MONOTONIC), and at most a
 * bounded share of that (see forkserver.c), so a fallback has time left.
 * Returns the node's pid (a child of this process); 0 when this start is
 * to go by fork + exec instead (the fork server is off for spec, or
 * failed: logged); -1 when the deadline passed, with *why set. *sent
 * tells whether fd went to a template that did not answer: the caller
 * then must not use fd's socket pair for a fallback (a stray process may
 * hold it).
 */
pid_t gr__forkserver_spawn(struct gr__transport *t, const gr_node_spec *spec,
                           int fd, uint64_t deadline_ns, bool *sent,
                           const char **why);

/* At shutdown (no start can run): kills and reaps every template, and
 * frees what the transport's fork server holds. */
void gr__forkserver_shutdown(struct gr__transport *t);

/* ---- template side (template.c) */

/*
 * Runs this process as a template on the control socket ctl (a
 * gr_node_main() that found GROVE_NODE_FD=template:ctl). Never returns in
 * the template itself: it exits (status 0) when its parent closes the
 * control socket. Returns GR_OK in each node cloned from it, with the
 * link's descriptor (close-on-exec) in *link_fd; returns an error, with
 * *why set, when it cannot serve (the parent was told why).
 */
int gr__template_serve(int ctl, int *link_fd, const char **why);

#endif
