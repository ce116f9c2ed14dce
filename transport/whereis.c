/* gr_whereis_any(): a name looked up on every node of the system. The
 * query floods the tree of links; every node answers, found or not, so the
 * caller knows when all have. */
#include <string.h>
#include <time.h>

#include <grove/inbox.h>

#include "actor/runtime.h"
#include "transport/transport.h"

/* What await_answers returns when the routes changed while it waited: a
 * node went down (it will never answer) or came up (it was not asked),
 * so the query is made again. */
#define ROUTES_CHANGED (-1)

/* How long await_answers waits before it looks at the routes again, ms. */
#define ROUTES_LOOK_MS 10

/* Waits for the answers to query corr: the first that found the name, or
 * all `expected` of them (deadline UINT64_MAX: no limit), as long as the
 * routes stay at version. */
static int await_answers(gr__transport *t, uint64_t version, gr_inbox *in,
                         uint64_t corr, size_t expected, uint32_t node,
                         bool any_node, uint64_t deadline, gr_ref *out)
{
    size_t answered = 0;
    while (answered < expected) {
        if (gr__transport_routes_version(t) != version)
            return ROUTES_CHANGED;
        uint64_t now = gr__mono_ns();
        if (now >= deadline)
            return GR_ETIMEDOUT;
        gr_msg *m = NULL;
        uint64_t left_ms = (deadline - now + 999999u) / 1000000u;
        int rc = gr_inbox_recv(in, &m,
                               left_ms < ROUTES_LOOK_MS ? (gr_duration)left_ms
                                                        : ROUTES_LOOK_MS);
        if (rc == GR_ESTOPPED)
            return rc; /* The system is stopping: no answer will come. */
        if (rc != GR_OK)
            continue;
        gr__whereis_answer a;
        bool ours = m->type == GR__MSG_WHEREIS_ANSWER && m->corr == corr &&
                    m->len == sizeof a;
        if (ours)
            memcpy(&a, m->data, sizeof a);
        gr_msg_free(m);
        if (!ours)
            continue;
        answered++;
        if (a.found && (any_node || a.ref.node == node)) {
            *out = a.ref;
            return GR_OK;
        }
    }
    return GR_ENOTFOUND;
}

int gr_whereis_any(gr_system *sys, const char *name, gr_duration timeout,
                   gr_ref *out)
{
    int64_t ms;
    if (sys == NULL || name == NULL || out == NULL ||
        gr__duration_ms(timeout, GR_DURATION_DEFAULT_MS, &ms) != GR_OK)
        return GR_EINVAL;
    if (gr__in_handler())
        return GR_EWRONGTHREAD;
    char local[GR_NAME_MAX + 1];
    const char *at;
    int rc = gr__split_name(name, local, &at);
    if (rc != GR_OK)
        return rc;
    size_t len = strlen(local);
    uint64_t deadline =
        ms < 0 ? UINT64_MAX : gr__mono_ns() + (uint64_t)ms * 1000000u;
    gr__dist *dist = gr__system_dist(sys);
    if (at != NULL && strchr(at, '@') != NULL) /* An Erlang node's. */
        return dist != NULL ? gr__dist_whereis(dist, at, local, deadline, out)
                            : GR_ENOTFOUND;
    uint32_t node = at != NULL ? gr__node_id(at, strlen(at)) : 0;
    if ((at == NULL || node == gr__system_node_id(sys)) &&
        gr_whereis(sys, local, out) == GR_OK)
        return GR_OK;
    gr__transport *t = gr__remote_get(sys);
    if (t == NULL || (at != NULL && node == gr__system_node_id(sys)))
        return GR_ENOTFOUND;
    gr_inbox *in;
    rc = gr_inbox_open(sys, &in);
    if (rc != GR_OK)
        return rc;
    do {
        /* A node that has just started may not be known here yet: the
         * news that it is up travels through its parent. Wait for it,
         * within the timeout (a name on a node that never comes is then
         * not found). Every other node answers once: as many answers as
         * there are routes, read at the moment the node is seen (a node
         * restarted just now may be gone again by a later read). */
        size_t expected;
        uint64_t version;
        rc = GR_OK;
        while (!gr__transport_routes_view(
            t, at != NULL ? node : gr__system_node_id(sys), &expected,
            &version)) {
            if (gr__mono_ns() >= deadline || gr__system_shutting_down(sys)) {
                rc = GR_ENOTFOUND;
                break;
            }
            struct timespec ms1 = {0, 1000000}; /* Polled: a rare wait. */
            (void)nanosleep(&ms1, NULL);
        }
        if (rc != GR_OK)
            break;
        uint64_t corr = gr__new_id(sys, NULL);
        uint8_t frame[GR__WIRE_PREFIX_MAX];
        size_t n =
            gr__wire_whereis_frame(frame, local, len, gr_inbox_ref(in), corr);
        gr__transport_flood(t, NULL, frame, n);
        rc = expected == 0 ? GR_ENOTFOUND
                           : await_answers(t, version, in, corr, expected, node,
                                           at == NULL, deadline, out);
    } while (rc == ROUTES_CHANGED);
    gr_inbox_close(in);
    return rc;
}
