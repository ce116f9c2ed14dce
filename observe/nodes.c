/*
 * The control endpoint across node processes. One attachment to the root
 * sees the whole system: each process answers for itself and asks its
 * own node children, through the node links that are already there.
 *
 * Node side: every node process runs an agent actor, registered as
 * GR__CONTROL_AGENT. A query (GR__MSG_CONTROL_QUERY, a request line) makes
 * it start the process's control thread the first time (no socket: the
 * thread only answers and samples), and hand the request over. The thread
 * answers as the root's does and gives the answer back to the agent, which
 * replies: the request stays the agent's, so it fails at once if the agent
 * goes.
 *
 * Parent side: the control thread asks each node child by gr_call with a
 * time limit. Tree and actor lists are text; figures and events travel as
 * msgpack. Events are fetched every GR__OBS_PULL_MS while someone follows,
 * and a node keeps recording its events while its parent keeps fetching.
 */
#include "observe/control.h"
#include "transport/transport.h"

#include <grove/inbox.h>

#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the node side: the agent ---- */

/* Hands request m to c's thread; false when c is closing or has too many
 * waiting. */
static bool hand_over(gr__control *c, const gr_msg *m)
{
    bool ok = false;
    pthread_mutex_lock(&c->lock);
    if (!c->closed && c->nqueries < GR__OBS_QUEUE) {
        gr__obs_query *q = &c->queries[c->nqueries++];
        q->req = gr_request_of(m);
        size_t n = m->len < sizeof q->line - 1 ? m->len : sizeof q->line - 1;
        memcpy(q->line, m->data, n);
        q->line[n] = '\0';
        (void)!write(c->wake[1], "q", 1);
        ok = true;
    }
    pthread_mutex_unlock(&c->lock);
    return ok;
}

static int agent_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    gr__accept_calls(ctx); /* GR__MSG_CONTROL_QUERY is a runtime request. */
    return gr_register(ctx, GR__CONTROL_AGENT);
}

static int agent_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    if (m->type == GR__MSG_CONTROL_ANSWER) {
        /* From this process's control thread only: request, then bytes. */
        gr_request req;
        if (!gr_ref_eq(m->from, gr_self(ctx)) || m->len < sizeof req)
            return GR_CONTINUE;
        memcpy(&req, m->data, sizeof req);
        size_t len = m->len - sizeof req;
        (void)gr__reply_any(ctx, &req, GR__MSG_CONTROL_ANSWER,
                            len ? (const char *)m->data + sizeof req : NULL,
                            len);
        return GR_CONTINUE;
    }
    if (m->type != GR__MSG_CONTROL_QUERY || !(m->flags & GR_MSG_REQUEST))
        return GR_CONTINUE;
    gr_system *sys = gr_ctx_system(ctx);
    gr__control *c = gr__system_control(sys);
    if (c == NULL)
        c = gr__control_start_node(sys, gr_self(ctx));
    const char *why = c == NULL ? "error: this node cannot start its control "
                                  "thread\n"
                      : !hand_over(c, m) ? "error: busy: too many queries\n"
                                         : NULL;
    if (why != NULL) {
        gr_request req = gr_request_of(m);
        (void)gr__reply_any(ctx, &req, GR__MSG_CONTROL_ANSWER, why,
                            strlen(why));
    }
    return GR_CONTINUE;
}

static const gr_behaviour agent = {
    .name = "grove.control",
    .init = agent_init,
    .handle = agent_handle,
};

int gr__control_agent_start(gr_system *sys)
{
    return gr_system_spawn(sys, &agent, NULL, 0, NULL);
}

/* ---- the node side: the control thread ---- */

/* Packs the entries recorded since seq ("now": none, only where the ring
 * is) as [head, [[kind, text, json, tracer], ...]]. */
void gr__obs_events_since(gr__control *c, uint64_t seq, gr__obs_out *o)
{
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    pthread_mutex_lock(&c->lock);
    uint64_t head = c->head;
    if (seq > head)
        seq = head;
    if (head - seq > GR__OBS_RING)
        seq = head - GR__OBS_RING; /* The parent lagged: some are lost. */
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, head);
    msgpack_pack_array(&pk, head - seq);
    for (uint64_t i = seq; i < head; i++) {
        const gr__obs_entry *e = &c->ring[i % GR__OBS_RING];
        size_t tl = strlen(e->text), jl = strlen(e->json);
        msgpack_pack_array(&pk, 4);
        msgpack_pack_int(&pk, (int)e->kind);
        msgpack_pack_str(&pk, tl);
        msgpack_pack_str_body(&pk, e->text, tl);
        msgpack_pack_str(&pk, jl);
        msgpack_pack_str_body(&pk, e->json, jl);
        msgpack_pack_int(&pk, e->tracer);
    }
    pthread_mutex_unlock(&c->lock);
    gr__obs_put_bytes(o, buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
}

/* Answers one request line from the parent into o. */
static void answer_parent(gr__control *c, char *line, gr__obs_out *o)
{
    char verb[32] = "", arg[32] = "", more[128] = "";
    (void)sscanf(line, "%31s %31s %127s", verb, arg, more);
    if (strcmp(verb, "events") == 0) {
        /* "events SEQ|now TRACERS": the parent follows, so events are
         * recorded while it keeps asking; TRACERS are its tracers still
         * tracing (a bit each). */
        c->pulled_ns = gr__obs_now_ns();
        atomic_store(&c->followers, 1);
        c->parent_tracers = strtoul(more, NULL, 10);
        for (int i = 0; i < GR__OBS_CLIENTS; i++)
            if (!(c->parent_tracers & (1ul << i)))
                gr__obs_clear_target(c, i);
        uint64_t seq =
            strcmp(arg, "now") == 0 ? UINT64_MAX : strtoull(arg, NULL, 10);
        gr__obs_events_since(c, seq, o);
    } else if (strcmp(verb, "trace") == 0) {
        /* "trace INDEX NAME": the parent's tracer INDEX traces NAME. */
        int index = atoi(arg);
        bool ok = index >= 0 && index < GR__OBS_CLIENTS;
        bool here = ok && gr__obs_set_target(c, index, more);
        int silent = 0;
        char who[GR_NAME_MAX + 1];
        bool below =
            ok && gr__obs_trace_nodes(c, index, &silent, who, sizeof who);
        if (here || below) /* Its next fetch must not clear it. */
            c->parent_tracers |= 1ul << index;
        gr__obs_put(o, here || below ? "found\n" : "none\n");
    } else if (!gr__obs_answer(c, verb, arg, more, o)) {
        gr__obs_put(o, "error: no request \"%s\"\n", verb);
    }
}

void gr__obs_serve_queries(gr__control *c)
{
    for (;;) {
        gr__obs_query q;
        pthread_mutex_lock(&c->lock);
        bool have = c->nqueries > 0;
        if (have) {
            q = c->queries[0];
            memmove(c->queries, c->queries + 1,
                    --c->nqueries * sizeof c->queries[0]);
        }
        pthread_mutex_unlock(&c->lock);
        if (!have)
            return;
        gr__obs_out o = {0};
        gr__obs_put_bytes(&o, &q.req, sizeof q.req);
        answer_parent(c, q.line, &o);
        if (o.buf != NULL)
            (void)gr__deliver(c->sys, gr__worker_of(c->sys),
                              GR__MSG_CONTROL_ANSWER, c->agent, c->agent, 0,
                              o.buf, o.len);
        free(o.buf);
    }
}

/* ---- the parent side ---- */

size_t gr__obs_nodes(gr__control *c, gr__obs_node *out, size_t max)
{
    gr__transport *t = gr__remote_get(c->sys);
    if (t == NULL)
        return 0;
    size_t n = 0;
    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->nlinks && n < max; i++) {
        gr__link *l = t->links[i];
        if (l == t->parent)
            continue;
        pthread_mutex_lock(&l->lock);
        bool up = l->pid != 0 && !l->reaped && !l->closed;
        if (up) {
            out[n] = (gr__obs_node){.standin = l->proxy,
                                    .node = l->node,
                                    .inc = l->inc,
                                    .pid = l->pid};
            snprintf(out[n].name, sizeof out[n].name, "%s", l->name);
            n++;
        }
        pthread_mutex_unlock(&l->lock);
    }
    pthread_rwlock_unlock(&t->lock);
    return n;
}

/* What this thread keeps of node child n (made when first asked; the
 * slot of a node gone is taken again). */
static gr__obs_child *child_of(gr__control *c, const gr__obs_node *n)
{
    gr__obs_child *free_slot = NULL;
    for (size_t i = 0; i < GR__OBS_NODES; i++) {
        gr__obs_child *k = &c->children[i];
        if (k->node == n->node && k->inc == n->inc)
            return k;
        if (k->node == 0 && k->inc == 0 && free_slot == NULL)
            free_slot = k;
    }
    if (free_slot == NULL) { /* Forget the nodes no longer there. */
        gr__obs_node up[GR__OBS_NODES];
        size_t nup = gr__obs_nodes(c, up, GR__OBS_NODES);
        for (size_t i = 0; i < GR__OBS_NODES; i++) {
            bool there = false;
            for (size_t j = 0; j < nup && !there; j++)
                there = up[j].node == c->children[i].node &&
                        up[j].inc == c->children[i].inc;
            if (!there && free_slot == NULL)
                free_slot = &c->children[i];
        }
    }
    if (free_slot != NULL)
        *free_slot = (gr__obs_child){
            .node = n->node, .inc = n->inc, .agent = GR_REF_NONE};
    return free_slot;
}

int gr__obs_ask_node(gr__control *c, const gr__obs_node *n, const char *line,
                     int timeout_ms, gr__obs_out *o)
{
    gr__obs_child *k = child_of(c, n);
    if (k == NULL)
        return GR_ELIMIT;
    uint64_t now = gr__obs_now_ns();
    if (now < k->quiet_until_ns && timeout_ms <= k->silent_wait_ms)
        return k->silent_rc; /* It did not answer a moment ago. */
    int rc = GR_OK;
    if (gr_ref_is_none(k->agent)) {
        char name[2 * GR_NAME_MAX + 2];
        snprintf(name, sizeof name, "%s@%s", GR__CONTROL_AGENT, n->name);
        rc = gr_whereis_any(c->sys, name, timeout_ms, &k->agent);
    }
    gr_msg *reply = NULL;
    if (rc == GR_OK)
        rc = gr__call_any(c->sys, k->agent, GR__MSG_CONTROL_QUERY, line,
                          strlen(line), timeout_ms, &reply);
    if (rc != GR_OK) {
        k->agent = GR_REF_NONE; /* Look again next time. */
        k->silent_rc = rc;
        k->silent_wait_ms = timeout_ms;
        k->quiet_until_ns = gr__obs_now_ns() + GR__OBS_QUIET_MS * 1000000ull;
        return rc;
    }
    k->silent_rc = GR_OK;
    k->quiet_until_ns = 0;
    if (reply->len > 0)
        gr__obs_put_bytes(o, reply->data, reply->len);
    gr_msg_free(reply);
    return GR_OK;
}

/* ---- figures as msgpack ---- */

/* The figures' numbers in the order they travel. */
#define NUMBERS (10 + GR_DL_COUNT + 2 + GR__OBS_BUCKETS + 1)

static void numbers_of(const gr__obs_figures *f, uint64_t *v)
{
    const gr_stats *s = &f->s;
    size_t i = 0;
    v[i++] = s->alive;
    v[i++] = s->spawned;
    v[i++] = s->exited;
    v[i++] = s->sent;
    v[i++] = s->delivered;
    v[i++] = s->restarts;
    v[i++] = s->workers;
    v[i++] = s->sockets_open;
    v[i++] = s->socket_bytes_in;
    v[i++] = s->socket_bytes_out;
    for (int k = 0; k < GR_DL_COUNT; k++)
        v[i++] = s->dead_letters[k];
    v[i++] = f->calls;
    v[i++] = f->time_ns;
    for (int b = 0; b <= GR__OBS_BUCKETS; b++)
        v[i++] = f->hist[b];
}

static void figures_of(const uint64_t *v, gr__obs_figures *f)
{
    gr_stats *s = &f->s;
    size_t i = 0;
    s->alive = v[i++];
    s->spawned = v[i++];
    s->exited = v[i++];
    s->sent = v[i++];
    s->delivered = v[i++];
    s->restarts = v[i++];
    s->workers = (unsigned)v[i++];
    s->sockets_open = v[i++];
    s->socket_bytes_in = v[i++];
    s->socket_bytes_out = v[i++];
    for (int k = 0; k < GR_DL_COUNT; k++)
        s->dead_letters[k] = v[i++];
    f->calls = v[i++];
    f->time_ns = v[i++];
    for (int b = 0; b <= GR__OBS_BUCKETS; b++)
        f->hist[b] = v[i++];
}

/* Each process as [name, pid, busy, [numbers], rc]: rc not GR_OK for a
 * process that did not answer (its numbers are 0). */
void gr__obs_pack_figures(const gr__obs_figures *f, size_t n, gr__obs_out *o)
{
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(f[i].name);
        uint64_t v[NUMBERS];
        numbers_of(&f[i], v);
        msgpack_pack_array(&pk, 5);
        msgpack_pack_str(&pk, len);
        msgpack_pack_str_body(&pk, f[i].name, len);
        msgpack_pack_int64(&pk, f[i].pid);
        msgpack_pack_double(&pk, f[i].busy);
        msgpack_pack_array(&pk, NUMBERS);
        for (size_t k = 0; k < NUMBERS; k++)
            msgpack_pack_uint64(&pk, v[k]);
        msgpack_pack_int(&pk, f[i].rc);
    }
    gr__obs_put_bytes(o, buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
}

/* Reads one packed process into f; false when it is not one. */
static bool unpack_figures(const msgpack_object *p, gr__obs_figures *f)
{
    if (p->type != MSGPACK_OBJECT_ARRAY || p->via.array.size != 5)
        return false;
    const msgpack_object *a = p->via.array.ptr;
    if (a[0].type != MSGPACK_OBJECT_STR ||
        (a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
         a[1].type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
        a[2].type != MSGPACK_OBJECT_FLOAT64 ||
        a[3].type != MSGPACK_OBJECT_ARRAY || a[3].via.array.size != NUMBERS ||
        (a[4].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
         a[4].type != MSGPACK_OBJECT_NEGATIVE_INTEGER))
        return false;
    uint64_t v[NUMBERS];
    for (size_t k = 0; k < NUMBERS; k++) {
        if (a[3].via.array.ptr[k].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return false;
        v[k] = a[3].via.array.ptr[k].via.u64;
    }
    memset(f, 0, sizeof *f);
    size_t len =
        a[0].via.str.size < GR_NAME_MAX ? a[0].via.str.size : GR_NAME_MAX;
    memcpy(f->name, a[0].via.str.ptr, len);
    f->pid = a[1].via.i64;
    f->busy = a[2].via.f64;
    f->rc = (int)a[4].via.i64;
    figures_of(v, f);
    return true;
}

void gr__obs_nodes_figures(gr__control *c, gr__obs_figures **f, size_t *n)
{
    gr__obs_node nodes[GR__OBS_NODES];
    size_t nn = gr__obs_nodes(c, nodes, GR__OBS_NODES);
    for (size_t i = 0; i < nn; i++) {
        gr__obs_out o = {0};
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        int rc = gr__obs_ask_node(c, &nodes[i], "figures\n",
                                  GR__OBS_NODE_TIMEOUT_MS, &o);
        if (rc == GR_OK && (o.buf == NULL ||
                            msgpack_unpack_next(&u, o.buf, o.len, &off) !=
                                MSGPACK_UNPACK_SUCCESS ||
                            u.data.type != MSGPACK_OBJECT_ARRAY))
            rc = GR_EPROTO;
        uint32_t more = rc == GR_OK ? u.data.via.array.size : 1;
        gr__obs_figures *g = realloc(*f, (*n + more) * sizeof **f);
        if (g != NULL) {
            *f = g;
            if (rc != GR_OK) /* Its name, its pid, and why: no figures. */
                g[(*n)++] = (gr__obs_figures){.pid = nodes[i].pid, .rc = rc};
            if (rc != GR_OK)
                snprintf(g[*n - 1].name, sizeof g[*n - 1].name, "%s",
                         nodes[i].name);
            for (uint32_t k = 0; rc == GR_OK && k < more; k++)
                *n += unpack_figures(&u.data.via.array.ptr[k], &g[*n]);
        }
        msgpack_unpacked_destroy(&u);
        free(o.buf);
    }
}

/* ---- events from the nodes ---- */

/* Tells followers that node n did not answer a fetch (once until it
 * answers again). */
static void note_silent(gr__control *c, const gr__obs_node *n, int rc)
{
    char text[256], json[256];
    snprintf(text, sizeof text,
             "(process %s pid %" PRId64
             " did not answer: %s; its events are late or lost)",
             n->name, n->pid, gr_strerror(rc));
    snprintf(json, sizeof json,
             "{\"event\":\"not_answering\",\"node\":\"%s\",\"pid\":%" PRId64
             ",\"reason\":\"%s\"}",
             n->name, n->pid, gr_strerror(rc));
    pthread_mutex_lock(&c->lock);
    (void)gr__obs_ring_add(c, GR_EV_KIND_COUNT, -1, text, json);
    pthread_mutex_unlock(&c->lock);
}

/* Asks node n to have tracer index trace what this process's tracer
 * index traces; whether it has it there (or below). *rc (may be NULL):
 * GR_OK, or why it did not answer. */
static bool trace_one(gr__control *c, const gr__obs_node *n, int index, int *rc)
{
    char line[sizeof c->targets[0].spec + 32];
    pthread_mutex_lock(&c->lock);
    bool wanted = c->targets[index].wanted;
    snprintf(line, sizeof line, "trace %d %s\n", index, c->targets[index].spec);
    pthread_mutex_unlock(&c->lock);
    if (!wanted)
        return false;
    gr__obs_out o = {0};
    int r = gr__obs_ask_node(c, n, line, GR__OBS_NODE_TIMEOUT_MS, &o);
    bool found = r == GR_OK && o.buf != NULL && strncmp(o.buf, "found", 5) == 0;
    free(o.buf);
    if (rc != NULL)
        *rc = r;
    return found;
}

/* Adds the events of one fetch to the ring; returns the node's head, or
 * seq when the answer is not one. */
static uint64_t take_events(gr__control *c, const char *buf, size_t len,
                            uint64_t seq)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size == 2 &&
        u.data.via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        u.data.via.array.ptr[1].type == MSGPACK_OBJECT_ARRAY) {
        seq = u.data.via.array.ptr[0].via.u64;
        const msgpack_object_array *evs = &u.data.via.array.ptr[1].via.array;
        char text[sizeof c->ring[0].text], json[sizeof c->ring[0].json];
        for (uint32_t i = 0; i < evs->size; i++) {
            const msgpack_object *e = &evs->ptr[i];
            if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 4 ||
                e->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
                e->via.array.ptr[1].type != MSGPACK_OBJECT_STR ||
                e->via.array.ptr[2].type != MSGPACK_OBJECT_STR)
                continue;
            uint64_t kind = e->via.array.ptr[0].via.u64;
            /* -1 for an event, else the index of the tracer it is for. */
            int64_t tracer = e->via.array.ptr[3].via.i64;
            if (tracer < -1 || tracer >= GR__OBS_CLIENTS)
                continue;
            const msgpack_object_str *t = &e->via.array.ptr[1].via.str;
            const msgpack_object_str *j = &e->via.array.ptr[2].via.str;
            snprintf(text, sizeof text, "%.*s", (int)t->size, t->ptr);
            snprintf(json, sizeof json, "%.*s", (int)j->size, j->ptr);
            pthread_mutex_lock(&c->lock);
            (void)gr__obs_ring_add(c,
                                   kind < GR_EV_KIND_COUNT ? (gr_event_kind)kind
                                                           : GR_EV_KIND_COUNT,
                                   (int)tracer, text, json);
            pthread_mutex_unlock(&c->lock);
        }
    }
    msgpack_unpacked_destroy(&u);
    return seq;
}

void gr__obs_pull(gr__control *c, uint64_t now)
{
    if (atomic_load(&c->followers) == 0) {
        for (size_t i = 0; i < GR__OBS_NODES; i++)
            c->children[i].synced = false; /* Start afresh next time. */
        return;
    }
    if (now < c->next_pull_ns)
        return;
    c->next_pull_ns = now + GR__OBS_PULL_MS * 1000000u;
    /* The tracers still tracing: a node passes its parent's on. */
    unsigned long tracers = c->parent_tracers;
    for (int i = 0; i < GR__OBS_CLIENTS && !c->node_mode; i++)
        if (c->clients[i].tracing)
            tracers |= 1ul << i;
    gr__obs_node nodes[GR__OBS_NODES];
    size_t n = gr__obs_nodes(c, nodes, GR__OBS_NODES);
    for (size_t i = 0; i < n; i++) {
        gr__obs_child *k = child_of(c, &nodes[i]);
        if (k == NULL)
            continue;
        char line[64];
        if (k->synced)
            snprintf(line, sizeof line, "events %" PRIu64 " %lu\n", k->seq,
                     tracers);
        else
            snprintf(line, sizeof line, "events now %lu\n", tracers);
        bool fresh = !k->synced;
        gr__obs_out o = {0};
        int rc =
            gr__obs_ask_node(c, &nodes[i], line, GR__OBS_PULL_TIMEOUT_MS, &o);
        if (rc == GR_OK && o.buf != NULL) {
            k->seq = take_events(c, o.buf, o.len, k->seq);
            k->synced = true;
            k->silent_noted = false;
        } else if (!k->silent_noted) {
            k->silent_noted = true;
            note_silent(c, &nodes[i], rc);
        }
        free(o.buf);
        /* A node new to this thread (or restarted) learns the tracers'
         * targets. */
        for (int t = 0; fresh && k->synced && t < GR__OBS_CLIENTS; t++)
            if (tracers & (1ul << t))
                (void)trace_one(c, &nodes[i], t, NULL);
    }
}

bool gr__obs_trace_nodes(gr__control *c, int index, int *silent,
                         char *silent_name, size_t size)
{
    gr__obs_node nodes[GR__OBS_NODES];
    size_t n = gr__obs_nodes(c, nodes, GR__OBS_NODES);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        int rc = GR_OK;
        found |= trace_one(c, &nodes[i], index, &rc);
        if (rc != GR_OK && (*silent)++ == 0)
            snprintf(silent_name, size, "%s", nodes[i].name);
    }
    return found;
}
