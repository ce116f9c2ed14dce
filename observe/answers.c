/*
 * What the control endpoint answers: info, stats, metrics, the
 * supervision tree and the actor list, each across every process of the
 * system (a process asks its node children, which ask theirs; see
 * nodes.c). The tree and the actor list are text each process makes for
 * itself; figures travel as msgpack and are summed or labelled here.
 */
#include "observe/control.h"
#include "supervisor/describe.h"

#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void gr__obs_put(gr__obs_out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = 2 * o->cap + (size_t)n + 256;
        char *b = realloc(o->buf, cap);
        if (b == NULL)
            return;
        o->buf = b;
        o->cap = cap;
    }
}

void gr__obs_put_bytes(gr__obs_out *o, const void *p, size_t len)
{
    if (o->len + len + 1 > o->cap) {
        size_t cap = 2 * o->cap + len + 256;
        char *b = realloc(o->buf, cap);
        if (b == NULL)
            return;
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, p, len);
    o->len += len;
    o->buf[o->len] = '\0';
}

const char *gr__obs_json_safe(const char *s, char *buf, size_t size)
{
    size_t n = 0;
    for (; *s != '\0' && n + 1 < size; s++)
        buf[n++] =
            *s == '"' || *s == '\\' || (unsigned char)*s < 0x20 ? '?' : *s;
    buf[n] = '\0';
    return buf;
}

#define put gr__obs_put

static const char *const dl_names[GR_DL_COUNT] = {
    "no_actor",     "stopped",   "expired_reply", "mailbox_full",
    "unknown_name", "node_down", "backpressure"};

/* ---- figures ---- */

/* This process's figures and every process's below it: f[0] is this
 * one's. The caller frees *f. */
static size_t all_figures(gr__control *c, gr__obs_figures **f)
{
    size_t n = 1;
    *f = malloc(sizeof **f);
    if (*f == NULL)
        return 0;
    gr__obs_figures_own(c, &(*f)[0]);
    gr__obs_nodes_figures(c, f, &n);
    return n;
}

/* The figures of n processes summed into one (named after the first,
 * whose workers it counts: the runtime threads of the root process). */
static void sum(const gr__obs_figures *f, size_t n, gr__obs_figures *total)
{
    *total = f[0];
    for (size_t i = 1; i < n; i++) {
        const gr_stats *s = &f[i].s; /* All 0 for one that did not answer. */
        gr_stats *t = &total->s;
        t->alive += s->alive;
        t->spawned += s->spawned;
        t->exited += s->exited;
        t->sent += s->sent;
        t->delivered += s->delivered;
        t->restarts += s->restarts;
        t->sockets_open += s->sockets_open;
        t->socket_bytes_in += s->socket_bytes_in;
        t->socket_bytes_out += s->socket_bytes_out;
        for (int k = 0; k < GR_DL_COUNT; k++)
            t->dead_letters[k] += s->dead_letters[k];
        total->busy += f[i].busy;
        total->calls += f[i].calls;
        total->time_ns += f[i].time_ns;
        for (int b = 0; b <= GR__OBS_BUCKETS; b++)
            total->hist[b] += f[i].hist[b];
    }
}

static uint64_t dead_total(const gr_stats *s)
{
    uint64_t dl = 0;
    for (int i = 0; i < GR_DL_COUNT; i++)
        dl += s->dead_letters[i];
    return dl;
}

static double uptime_s(const gr__control *c)
{
    return (double)(gr__obs_now_ns() - c->started_ns) / 1e9;
}

static void answer_info(gr__control *c, gr__obs_out *o)
{
    gr__obs_node nodes[GR__OBS_NODES];
    put(o, "{\"name\":\"%s\",\"pid\":%d,\"nodes\":%zu,\"uptime_s\":%.1f}\n",
        c->name, (int)getpid(), gr__obs_nodes(c, nodes, GR__OBS_NODES),
        uptime_s(c));
}

static void stats_text(gr__control *c, gr__obs_out *o, const gr__obs_figures *f,
                       size_t n)
{
    gr__obs_figures t;
    sum(f, n, &t);
    const gr_stats *s = &t.s;
    put(o,
        "system %s (pid %d), up %.1f s, %u workers, %zu node%s\n"
        "actors: %" PRIu64 " alive, %" PRIu64 " spawned, %" PRIu64 " exited\n"
        "messages: %" PRIu64 " sent, %" PRIu64 " delivered\n"
        "restarts: %" PRIu64 "\n"
        "dead letters: %" PRIu64,
        c->name, (int)getpid(), uptime_s(c), f[0].s.workers, n - 1,
        n == 2 ? "" : "s", s->alive, s->spawned, s->exited, s->sent,
        s->delivered, s->restarts, dead_total(s));
    for (int i = 0; i < GR_DL_COUNT; i++)
        if (s->dead_letters[i] != 0)
            put(o, " %s=%" PRIu64, dl_names[i], s->dead_letters[i]);
    put(o,
        "\nsockets: %" PRIu64 " open, %" PRIu64 " bytes in, %" PRIu64
        " bytes out\n",
        s->sockets_open, s->socket_bytes_in, s->socket_bytes_out);
    char ref[GR_REF_FORMAT_MAX];
    for (int i = 0; i < GR_STATS_DEEPEST && f[0].s.deepest[i].depth > 0; i++)
        put(o, "%s %s: %" PRIu64 " messages waiting\n",
            i == 0 ? "deepest mailboxes:" : "                  ",
            gr_ref_format(c->sys, f[0].s.deepest[i].actor, ref, sizeof ref),
            f[0].s.deepest[i].depth);
    if (n < 2)
        return;
    put(o, "processes:\n");
    for (size_t i = 0; i < n; i++)
        if (f[i].rc != GR_OK)
            put(o, "  %-16s pid %-8" PRId64 " did not answer: %s\n", f[i].name,
                f[i].pid, gr_strerror(f[i].rc));
        else
            put(o,
                "  %-16s pid %-8" PRId64 " %6" PRIu64 " actors %10" PRIu64
                " delivered %5" PRIu64 " restarts %5" PRIu64 " dead letters\n",
                f[i].name, f[i].pid, f[i].s.alive, f[i].s.delivered,
                f[i].s.restarts, dead_total(&f[i].s));
}

/* The counters of one process (or the sum) as JSON fields. */
static void stats_fields(gr__obs_out *o, const gr__obs_figures *f)
{
    const gr_stats *s = &f->s;
    put(o,
        "\"workers\":%u,\"alive\":%" PRIu64 ",\"spawned\":%" PRIu64
        ",\"exited\":%" PRIu64 ",\"sent\":%" PRIu64 ",\"delivered\":%" PRIu64
        ",\"restarts\":%" PRIu64 ",\"dead_letters\":{",
        s->workers, s->alive, s->spawned, s->exited, s->sent, s->delivered,
        s->restarts);
    for (int i = 0; i < GR_DL_COUNT; i++)
        put(o, "%s\"%s\":%" PRIu64, i ? "," : "", dl_names[i],
            s->dead_letters[i]);
    put(o,
        "},\"sockets_open\":%" PRIu64 ",\"socket_bytes_in\":%" PRIu64
        ",\"socket_bytes_out\":%" PRIu64 ",\"busy_threads\":%.2f",
        s->sockets_open, s->socket_bytes_in, s->socket_bytes_out, f->busy);
}

static void stats_json(gr__control *c, gr__obs_out *o, const gr__obs_figures *f,
                       size_t n)
{
    gr__obs_figures t;
    sum(f, n, &t);
    put(o, "{\"name\":\"%s\",\"pid\":%d,\"uptime_s\":%.1f,\"nodes\":%zu,",
        c->name, (int)getpid(), uptime_s(c), n - 1);
    stats_fields(o, &t);
    put(o, ",\"deepest\":[");
    char ref[GR_REF_FORMAT_MAX];
    for (int i = 0; i < GR_STATS_DEEPEST && f[0].s.deepest[i].depth > 0; i++)
        put(o, "%s{\"actor\":\"%s\",\"depth\":%" PRIu64 "}", i ? "," : "",
            gr_ref_format(c->sys, f[0].s.deepest[i].actor, ref, sizeof ref),
            f[0].s.deepest[i].depth);
    put(o, "],\"processes\":[");
    for (size_t i = 0; i < n; i++) {
        char name[GR_NAME_MAX + 1];
        put(o, "%s{\"node\":\"%s\",\"pid\":%" PRId64 ",", i ? "," : "",
            gr__obs_json_safe(f[i].name, name, sizeof name), f[i].pid);
        if (f[i].rc != GR_OK)
            put(o, "\"error\":\"%s\"}", gr_strerror(f[i].rc));
        else {
            stats_fields(o, &f[i]);
            put(o, "}");
        }
    }
    put(o, "]}\n");
}

/* One metric family: its help and type, then a sample per process. */
static void family(gr__obs_out *o, const char *name, const char *type,
                   const char *help, const gr__obs_figures *f, size_t n,
                   size_t offset)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&f[i].s + offset, sizeof v);
        put(o, "%s{node=\"%s\"} %" PRIu64 "\n", name, f[i].name, v);
    }
}

/* The Prometheus text exposition format (version 0.0.4): every sample
 * labelled with its process's node name. */
static void answer_metrics(gr__control *c, gr__obs_out *o)
{
    gr__obs_figures *f;
    size_t all = all_figures(c, &f), n = 0;
    if (all == 0)
        return;
    for (size_t i = 0; i < all; i++) /* No samples for the silent. */
        if (f[i].rc == GR_OK)
            f[n++] = f[i];
    static const struct {
        const char *name, *type, *help;
        size_t offset;
    } m[] = {
        {"grove_actors_alive", "gauge", "Actors alive now.",
         offsetof(gr_stats, alive)},
        {"grove_actors_spawned_total", "counter", "Actors spawned.",
         offsetof(gr_stats, spawned)},
        {"grove_actors_exited_total", "counter", "Actors that exited.",
         offsetof(gr_stats, exited)},
        {"grove_messages_sent_total", "counter",
         "Messages accepted for delivery.", offsetof(gr_stats, sent)},
        {"grove_messages_delivered_total", "counter",
         "Messages handed to handlers or inboxes.",
         offsetof(gr_stats, delivered)},
        {"grove_restarts_total", "counter",
         "Children restarted by supervisors.", offsetof(gr_stats, restarts)},
        {"grove_sockets_open", "gauge", "Sockets open.",
         offsetof(gr_stats, sockets_open)},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        family(o, m[i].name, m[i].type, m[i].help, f, n, m[i].offset);
    put(o,
        "# HELP grove_workers Worker threads.\n# TYPE grove_workers gauge\n");
    for (size_t i = 0; i < n; i++)
        put(o, "grove_workers{node=\"%s\"} %u\n", f[i].name, f[i].s.workers);
    /* The root always answers (its own figures): n - 1 nodes did. */
    put(o,
        "# HELP grove_nodes_up Node processes up.\n"
        "# TYPE grove_nodes_up gauge\ngrove_nodes_up %zu\n"
        "# HELP grove_nodes_answering Node processes up that answered "
        "this scrape.\n"
        "# TYPE grove_nodes_answering gauge\ngrove_nodes_answering %zu\n",
        all - 1, n - 1);
    put(o, "# HELP grove_dead_letters_total Messages that could not be "
           "delivered, by reason.\n# TYPE grove_dead_letters_total counter\n");
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < GR_DL_COUNT; k++)
            put(o,
                "grove_dead_letters_total{node=\"%s\",reason=\"%s\"} %" PRIu64
                "\n",
                f[i].name, dl_names[k], f[i].s.dead_letters[k]);
    put(o, "# HELP grove_socket_bytes_total Bytes through sockets.\n"
           "# TYPE grove_socket_bytes_total counter\n");
    for (size_t i = 0; i < n; i++)
        put(o,
            "grove_socket_bytes_total{node=\"%s\",direction=\"in\"} %" PRIu64
            "\ngrove_socket_bytes_total{node=\"%s\",direction=\"out\"} "
            "%" PRIu64 "\n",
            f[i].name, f[i].s.socket_bytes_in, f[i].name,
            f[i].s.socket_bytes_out);
    put(o,
        "# HELP grove_handler_seconds Time in handler calls, sampled "
        "every %d ms (shorter calls all fall in the first bucket).\n"
        "# TYPE grove_handler_seconds histogram\n",
        GR__OBS_SAMPLE_MS);
    for (size_t i = 0; i < n; i++) {
        uint64_t cum = 0;
        for (int b = 0; b < GR__OBS_BUCKETS; b++) {
            cum += f[i].hist[b];
            put(o,
                "grove_handler_seconds_bucket{node=\"%s\",le=\"%g\"} "
                "%" PRIu64 "\n",
                f[i].name, gr__obs_bucket_ms[b] / 1000.0, cum);
        }
        cum += f[i].hist[GR__OBS_BUCKETS];
        put(o,
            "grove_handler_seconds_bucket{node=\"%s\",le=\"+Inf\"} %" PRIu64
            "\ngrove_handler_seconds_sum{node=\"%s\"} %.3f\n"
            "grove_handler_seconds_count{node=\"%s\"} %" PRIu64 "\n",
            f[i].name, cum, f[i].name, (double)f[i].time_ns / 1e9, f[i].name,
            cum);
    }
    put(o, "# HELP grove_mailbox_depth Messages waiting, deepest mailboxes.\n"
           "# TYPE grove_mailbox_depth gauge\n");
    char ref[GR_REF_FORMAT_MAX];
    for (int i = 0; i < GR_STATS_DEEPEST && f[0].s.deepest[i].depth > 0; i++)
        put(o, "grove_mailbox_depth{node=\"%s\",actor=\"%s\"} %" PRIu64 "\n",
            f[0].name,
            gr_ref_format(c->sys, f[0].s.deepest[i].actor, ref, sizeof ref),
            f[0].s.deepest[i].depth);
    free(f);
}

/* ---- the tree ---- */

static const char *child_type(gr_child_type t)
{
    return t == GR_SUPERVISOR ? "supervisor" : t == GR_NODE ? "node" : "worker";
}

static const char *child_state(gr_child_state s)
{
    return s == GR_CHILD_RUNNING      ? "running"
           : s == GR_CHILD_RESTARTING ? "restarting"
                                      : "stopped";
}

/* Prints a supervisor's own line: its id and restarts (as its parent
 * has them; none for a top one), strategy and intensity use. */
static void sup_line(gr__obs_out *o, int depth, const char *id, const char *ref,
                     const gr__sup_view *v, uint64_t restarts, bool json)
{
    if (json) {
        char name[GR_NAME_MAX + 1];
        put(o,
            "{\"depth\":%d,\"id\":\"%s\",\"type\":\"supervisor\","
            "\"state\":\"running\",\"ref\":\"%s\",\"pid\":0,\"restarts\":"
            "%" PRIu64
            ",\"name\":\"%s\",\"strategy\":\"%s\",\"intensity\":%" PRIu32
            ",\"period_ms\":%" PRIu32 ",\"recent_restarts\":%" PRIu32 "}\n",
            depth, id, ref, restarts,
            gr__obs_json_safe(v->name, name, sizeof name),
            gr__strategy_name(v->strategy), v->intensity, v->period_ms,
            v->recent);
        return;
    }
    put(o,
        "%*s%s%ssupervisor %s %s, %" PRIu32 " of %" PRIu32 " restarts in %g s",
        depth * 2, "", id, id[0] ? "  " : "", ref,
        gr__strategy_name(v->strategy), v->recent, v->intensity,
        v->period_ms / 1000.0);
    if (v->name[0])
        put(o, ", registered as %s", v->name);
    if (restarts)
        put(o, ", restarted %" PRIu64 " time%s", restarts,
            restarts == 1 ? "" : "s");
    put(o, "\n");
}

/* One answer to "tree": where it goes, in which form, and this
 * process's node children (read once for the whole walk). */
typedef struct tree {
    gr__control *c;
    gr__obs_out *o;
    bool json;
    gr__obs_node nodes[GR__OBS_NODES];
    size_t nnodes;
} tree;

static void walk(tree *t, gr_ref sup, int depth, const gr__child_view *as);

/* Lists one child, and what is below it. */
static void child(tree *t, const gr__child_view *k, int depth)
{
    gr__control *c = t->c;
    gr__obs_out *o = t->o;
    bool json = t->json;
    const gr__obs_node *nodes = t->nodes;
    size_t nnodes = t->nnodes;
    char ref[GR_REF_FORMAT_MAX];
    gr_ref_format(c->sys, k->info.ref, ref, sizeof ref);
    const gr__obs_node *node = NULL;
    for (size_t i = 0; k->info.type == GR_NODE && i < nnodes; i++)
        if (gr_ref_eq(nodes[i].standin, k->info.ref))
            node = &nodes[i];
    bool running = k->info.state == GR_CHILD_RUNNING;
    if (k->info.type == GR_SUPERVISOR && running && depth < 32) {
        walk(t, k->info.ref, depth, k); /* It says the rest. */
        return;
    }
    int64_t pid = node != NULL && running ? node->pid : 0;
    if (json)
        put(o,
            "{\"depth\":%d,\"id\":\"%s\",\"type\":\"%s\",\"state\":\"%s\","
            "\"ref\":\"%s\",\"pid\":%" PRId64 ",\"restarts\":%" PRIu64 "}\n",
            depth, k->info.id, child_type(k->info.type),
            child_state(k->info.state), ref, pid, k->restarts);
    else {
        put(o, "%*s%s  %s %s %s", depth * 2, "", k->info.id,
            child_type(k->info.type), child_state(k->info.state), ref);
        if (pid != 0)
            put(o, ", process %s pid %" PRId64, node->name, pid);
        if (k->restarts)
            put(o, ", restarted %" PRIu64 " time%s", k->restarts,
                k->restarts == 1 ? "" : "s");
        put(o, "\n");
    }
    if (pid != 0) { /* What runs in the node process. */
        char line[64];
        snprintf(line, sizeof line, "tree %s %d\n", json ? "json" : "text",
                 depth + 1);
        gr__obs_out sub = {0};
        int rc = gr__obs_ask_node(c, node, line, GR__OBS_NODE_TIMEOUT_MS, &sub);
        if (rc != GR_OK && json)
            put(o, "{\"depth\":%d,\"error\":\"%s\"}\n", depth + 1,
                gr_strerror(rc));
        else if (rc != GR_OK)
            put(o, "%*s(process %s did not answer: %s)\n", depth * 2 + 2, "",
                node->name, gr_strerror(rc));
        else if (sub.buf != NULL)
            gr__obs_put_bytes(o, sub.buf, sub.len);
        free(sub.buf);
    }
}

/* Lists supervisor sup (depth levels in; as: the child it is of its
 * parent, or NULL) and its children, theirs, and what runs in their node
 * processes. */
static void walk(tree *t, gr_ref sup, int depth, const gr__child_view *as)
{
    gr__control *c = t->c;
    gr__obs_out *o = t->o;
    bool json = t->json;
    gr__child_view *kids = calloc(GR__OBS_CHILDREN, sizeof *kids);
    gr__sup_view v;
    size_t n = 0;
    int rc = kids == NULL ? GR_ENOMEM
                          : gr__supervisor_describe(c->sys, sup, 1000, &v, kids,
                                                    GR__OBS_CHILDREN, &n);
    char ref[GR_REF_FORMAT_MAX];
    gr_ref_format(c->sys, sup, ref, sizeof ref);
    if (rc != GR_OK) {
        if (json)
            put(o, "{\"depth\":%d,\"ref\":\"%s\",\"error\":\"%s\"}\n", depth,
                ref, gr_strerror(rc));
        else
            put(o, "%*ssupervisor %s (not answering: %s)\n", depth * 2, "", ref,
                gr_strerror(rc));
        free(kids);
        return;
    }
    sup_line(o, depth, as != NULL ? as->info.id : "", ref, &v,
             as != NULL ? as->restarts : 0, json);
    for (size_t i = 0; i < n && i < GR__OBS_CHILDREN; i++)
        child(t, &kids[i], depth + 1);
    if (n > GR__OBS_CHILDREN && json)
        put(o, "{\"depth\":%d,\"more\":%zu}\n", depth + 1,
            n - GR__OBS_CHILDREN);
    else if (n > GR__OBS_CHILDREN)
        put(o, "%*s... %zu more\n", depth * 2 + 2, "", n - GR__OBS_CHILDREN);
    free(kids);
}

/* Supervisors found on a walk of the actors. */
typedef struct sups {
    gr_ref *refs;
    size_t n, cap;
} sups;

static void find_sup(const gr__actor_info *a, void *arg)
{
    sups *s = arg;
    if (strcmp(a->behaviour, gr_supervisor_behaviour.name) != 0)
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        gr_ref *r = realloc(s->refs, cap * sizeof *r);
        if (r == NULL)
            return;
        s->refs = r;
        s->cap = cap;
    }
    s->refs[s->n++] = a->ref;
}

/* The supervisors no supervisor of this process supervises: the tops of
 * its trees, in the order of their serials. */
static int by_serial(const void *a, const void *b)
{
    uint64_t x = ((const gr_ref *)a)->serial, y = ((const gr_ref *)b)->serial;
    return x < y ? -1 : x > y;
}

static size_t top_supervisors(gr__control *c, gr_ref **out)
{
    sups s = {0};
    uint32_t from = 0, next;
    do {
        gr__system_actors(c->sys, from, GR__OBS_SLICE, find_sup, &s, &next);
        from = next;
    } while (from != 0);
    if (s.n > 0) /* For bsearch, and an order that stays put. */
        qsort(s.refs, s.n, sizeof *s.refs, by_serial);
    bool *supervised = calloc(s.n ? s.n : 1, sizeof *supervised);
    gr_child_info *kids = calloc(GR__OBS_CHILDREN, sizeof *kids);
    for (size_t i = 0; i < s.n && supervised != NULL && kids != NULL; i++) {
        size_t n = 0;
        if (gr_supervisor_which_children(c->sys, s.refs[i], 1000, kids,
                                         GR__OBS_CHILDREN, &n) != GR_OK)
            continue;
        for (size_t k = 0; k < n && k < GR__OBS_CHILDREN; k++) {
            const gr_ref *at = kids[k].type != GR_SUPERVISOR
                                   ? NULL
                                   : bsearch(&kids[k].ref, s.refs, s.n,
                                             sizeof *s.refs, by_serial);
            if (at != NULL && gr_ref_eq(*at, kids[k].ref))
                supervised[at - s.refs] = true;
        }
    }
    size_t tops = 0;
    for (size_t i = 0; i < s.n; i++)
        if (supervised == NULL || !supervised[i])
            s.refs[tops++] = s.refs[i];
    free(supervised);
    free(kids);
    *out = s.refs;
    return tops;
}

/* The tree, depth levels in: a node process's root when it is not a
 * supervisor, then every top supervisor and what is below it. */
static void answer_tree(gr__control *c, gr__obs_out *o, bool json, int depth)
{
    gr_ref root = gr__system_node_root(c->sys);
    char behaviour[GR_NAME_MAX + 1], ref[GR_REF_FORMAT_MAX];
    if (!gr_ref_is_none(root) &&
        gr__system_behaviour_of(c->sys, root.serial, behaviour,
                                sizeof behaviour) &&
        strcmp(behaviour, gr_supervisor_behaviour.name) != 0) {
        gr_ref_format(c->sys, root, ref, sizeof ref);
        char safe[GR_NAME_MAX + 1];
        if (json)
            put(o,
                "{\"depth\":%d,\"id\":\"\",\"type\":\"worker\",\"state\":"
                "\"running\",\"ref\":\"%s\",\"pid\":0,\"behaviour\":\"%s\"}\n",
                depth, ref, gr__obs_json_safe(behaviour, safe, sizeof safe));
        else
            put(o, "%*s%s %s, the node's root\n", depth * 2, "", behaviour,
                ref);
    }
    gr_ref *tops;
    size_t n = top_supervisors(c, &tops);
    tree *t = n > 0 ? malloc(sizeof *t) : NULL;
    if (t != NULL) {
        *t = (tree){.c = c, .o = o, .json = json};
        t->nnodes = gr__obs_nodes(c, t->nodes, GR__OBS_NODES);
    }
    for (size_t i = 0; i < n && t != NULL; i++)
        walk(t, tops[i], depth, NULL);
    free(t);
    free(tops);
    if (n == 0 && gr_ref_is_none(root) && !json)
        put(o, "(no supervisor running)\n");
}

/* ---- actors ---- */

typedef struct listing {
    gr__control *c;
    gr__obs_out *o;
} listing;

static void list_actor(const gr__actor_info *a, void *arg)
{
    listing *l = arg;
    char ref[GR_REF_FORMAT_MAX], name[GR_NAME_MAX + 1];
    const gr__obs_time *t = gr__obs_time_of(l->c, a->ref.serial);
    put(l->o,
        "{\"ref\":\"%s\",\"behaviour\":\"%s\",\"depth\":%" PRIu64
        ",\"handled\":%" PRIu64 ",\"time_ms\":%" PRIu64 ",\"max_ms\":%" PRIu64
        "}\n",
        gr_ref_format(l->c->sys, a->ref, ref, sizeof ref),
        gr__obs_json_safe(a->behaviour, name, sizeof name), a->depth,
        a->handled, t != NULL ? t->samples * GR__OBS_SAMPLE_MS : 0,
        t != NULL ? t->max_ns / 1000000 : 0);
}

/* Every live actor of every process, one JSON line each: mailbox depth,
 * messages taken (runtime ones too), handler time (sampled) and the
 * longest call seen, walked in slices. */
static void answer_actors(gr__control *c, gr__obs_out *o)
{
    listing l = {c, o};
    uint32_t from = 0, next;
    do {
        gr__system_actors(c->sys, from, GR__OBS_SLICE, list_actor, &l, &next);
        from = next;
        if (from != 0)
            sched_yield(); /* Let the workers have the table between. */
    } while (from != 0);
    gr__obs_node nodes[GR__OBS_NODES];
    size_t n = gr__obs_nodes(c, nodes, GR__OBS_NODES);
    for (size_t i = 0; i < n; i++) {
        int rc = gr__obs_ask_node(c, &nodes[i], "actors\n",
                                  GR__OBS_NODE_TIMEOUT_MS, o);
        if (rc != GR_OK) /* The tool shows it as a note. */
            put(o, "{\"node\":\"%s\",\"pid\":%" PRId64 ",\"error\":\"%s\"}\n",
                nodes[i].name, nodes[i].pid, gr_strerror(rc));
    }
}

bool gr__obs_answer(gr__control *c, const char *verb, const char *arg,
                    const char *more, gr__obs_out *o)
{
    bool json = strcmp(arg, "json") == 0;
    if (strcmp(verb, "info") == 0) {
        answer_info(c, o);
    } else if (strcmp(verb, "stats") == 0 || strcmp(verb, "figures") == 0) {
        gr__obs_figures *f;
        size_t n = all_figures(c, &f);
        if (n == 0)
            put(o, "error: out of memory\n");
        else if (verb[0] == 'f')
            gr__obs_pack_figures(f, n, o); /* For a parent. */
        else if (json)
            stats_json(c, o, f, n);
        else
            stats_text(c, o, f, n);
        free(f);
    } else if (strcmp(verb, "metrics") == 0) {
        answer_metrics(c, o);
    } else if (strcmp(verb, "tree") == 0) {
        answer_tree(c, o, json, more[0] ? atoi(more) : 0);
    } else if (strcmp(verb, "actors") == 0) {
        answer_actors(c, o);
    } else {
        return false;
    }
    return true;
}
