/*
 * Monitors across distribution, both ways (Erlang's MONITOR_P,
 * DEMONITOR_P and MONITOR_P_EXIT; Erlang sends them because socket.c
 * announces DFLAG_DIST_MONITOR_NAME).
 *
 * Ours of their processes: gr_monitor's request to an Erlang pid goes out
 * as MONITOR_P with a reference of ours that carries the monitor's id
 * (signal.c), gr_demonitor's as DEMONITOR_P; their MONITOR_P_EXIT comes
 * back here as the watcher's GR_MSG_DOWN. A lost connection fires the
 * monitors as the runtime's node-down does for every node.
 *
 * Asks: an ask of an Erlang pid is monitored as gen_server:call monitors
 * its server: a MONITOR_P (a reference carrying the ask's corr) goes
 * ahead of the '$gen_call' in the same write, so the server's death
 * fails the ask at once with its reason (GR_MSG_ASK_FAILED) instead of
 * leaving it to time out; the answer, the timeout or the asker's exit
 * takes the monitor down again (DEMONITOR_P).
 *
 * Theirs of our actors: a MONITOR_P (of a pid, or of a registered name)
 * becomes the runtime's monitor request from the watcher's ref under a
 * new id, remembered here with what the DOWN must carry (the watcher, the
 * reference, the name it was made by). The actor's DOWN to that ref comes
 * back through gr__dist_send and leaves as MONITOR_P_EXIT. A DEMONITOR_P
 * or a lost connection forgets it.
 */
#include "dist/dist.h"

#include <stdlib.h>
#include <string.h>

/* Distribution control message tags (Erlang's dist protocol). */
enum {
    CTL_MONITOR_P = 19,
    CTL_DEMONITOR_P = 20,
    CTL_MONITOR_P_EXIT = 21,
};

/* The first word of a reference of ours that carries a monitor's id, or
 * an ask's corr (under 2^18, as Erlang's first reference words are). */
#define MON_MARK 0x2a7e5u
#define ASK_MARK 0x2a7e6u

/* Monitors of our actors held at once by other nodes' processes; one
 * more is refused (its DOWN comes at once, with GR_ENOMEM). */
#define MONS_MAX 262144u

/* A monitor signal as read: {19 or 20, Watcher, Target, Ref} or {21,
 * Target, Watcher, Ref, Reason}; the target a pid, or a name. */
typedef struct mon_sig {
    erlang_pid watcher;
    erlang_pid target; /* When name is "". */
    char name[MAXATOMLEN_UTF8];
    erlang_ref ref;
} mon_sig;

/* The monitor of an ask in flight to an Erlang pid, under its corr. Its
 * signals' fields are kept encoded: a pid names its node in up to 1 KB. */
typedef struct dist_ask {
    gr_ref asker, callee;
    ei_x_buff body; /* Asker, Callee, Ref: MONITOR_P's and DEMONITOR_P's. */
} dist_ask;

/* An Erlang reference, less its node's name (a hash of it instead). */
typedef struct ref_id {
    uint32_t node, creation;
    int len;
    unsigned n[5];
} ref_id;

/* A monitor an Erlang process holds on one of our actors. */
typedef struct dist_mon {
    uint64_t id;    /* The actor knows it by this id. */
    uint32_t node;  /* The connection it came on (its node). */
    gr_ref target;  /* The actor. */
    ref_id ref;     /* The watcher's reference (DEMONITOR_P finds it). */
    ei_x_buff head; /* FromProc, ToPid, Ref of its MONITOR_P_EXIT. */
} dist_mon;

/* The reference of ours that carries id, marked mark. */
static void marked_ref(gr__dist *d, unsigned mark, uint64_t id, erlang_ref *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->node, sizeof out->node, "%s", ei_thisnodename(&d->ec));
    out->len = 3;
    out->n[0] = mark;
    out->n[1] = (unsigned)(id & 0xffffffffu);
    out->n[2] = (unsigned)(id >> 32);
    out->creation = ei_self(&d->ec)->creation;
}

void gr__monitor_ref(gr__dist *d, uint64_t id, erlang_ref *out)
{
    marked_ref(d, MON_MARK, id, out);
}

/* The id a reference of ours marked mark carries; 0 when it is none. */
static uint64_t id_of_ref(gr__dist *d, unsigned mark, const erlang_ref *r)
{
    if (r->len != 3 || r->n[0] != mark ||
        strcmp(r->node, ei_thisnodename(&d->ec)) != 0)
        return 0;
    return (uint64_t)r->n[2] << 32 | r->n[1];
}

static ref_id ref_id_of(const erlang_ref *r)
{
    ref_id id = {.node = gr__node_id(r->node, strlen(r->node)),
                 .creation = r->creation,
                 .len = r->len};
    memcpy(id.n, r->n, sizeof id.n);
    return id;
}

/* The key a monitor is found by from its reference (and the connection's
 * node): the reference's words, which Erlang never repeats on one node.
 * A match is then checked whole. */
static gr_ref ref_key(const ref_id *r, uint32_t node)
{
    gr_ref k = {.serial = (uint64_t)r->n[1] << 32 | r->n[0],
                .node = node,
                .incarnation = r->n[2] ^ (r->len > 3 ? r->n[3] : 0)};
    if (k.serial == 0)
        k.serial = 1; /* 0 marks a free slot. */
    return k;
}

static bool ref_eq(const ref_id *a, const ref_id *b)
{
    return a->len == b->len && a->creation == b->creation &&
           a->node == b->node &&
           memcmp(a->n, b->n, (size_t)a->len * sizeof a->n[0]) == 0;
}

/* Frees a monitor record. */
static void mon_free(dist_mon *m)
{
    if (m != NULL && m->head.buff != NULL)
        ei_x_free(&m->head);
    free(m);
}

/* Removes m from both maps (d->lock held). */
static void mon_forget(gr__dist *d, dist_mon *m)
{
    (void)gr__refmap_take(&d->mons_by_id, gr__id_key(m->id));
    if (gr__refmap_get(&d->mons_by_ref, ref_key(&m->ref, m->node)) == m)
        (void)gr__refmap_take(&d->mons_by_ref, ref_key(&m->ref, m->node));
    d->nmons--;
}

/* Encodes the head of monitor signal s's MONITOR_P_EXIT into a new h:
 * FromProc (the name the monitor was made by, or the pid), ToPid (the
 * watcher), Ref. */
static bool exit_head(const mon_sig *s, ei_x_buff *h)
{
    if (ei_x_new(h) != 0)
        return false;
    if ((s->name[0] != '\0' ? ei_x_encode_atom(h, s->name)
                            : ei_x_encode_pid(h, &s->target)) == 0 &&
        ei_x_encode_pid(h, &s->watcher) == 0 &&
        ei_x_encode_ref(h, &s->ref) == 0)
        return true;
    ei_x_free(h);
    return false;
}

/* Appends MONITOR_P_EXIT {21, FromProc, ToPid, Ref, Reason} to x, its
 * head encoded already. */
static bool exit_frame(const ei_x_buff *head, const gr_reason *why,
                       ei_x_buff *x)
{
    bool ok = gr__frame_start(x, 5, CTL_MONITOR_P_EXIT) &&
              ei_x_append_buf(x, head->buff, head->index) == 0 &&
              gr__reason_to_term(why, x) == 0;
    if (ok)
        gr__frame_end(x);
    return ok;
}

/* Answers a monitor that cannot be made at once (head: its exit's), on
 * fd. */
static void refuse(gr__dist *d, int fd, const ei_x_buff *head, int code)
{
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return;
    if (exit_frame(head, &(gr_reason){.code = code}, &x))
        (void)gr__dist_queue(d, fd, x.buff, (size_t)x.index);
    ei_x_free(&x);
}

/* Reads a pid, or an atom (a registered name) into name. */
static bool decode_proc(const char *f, int *index, erlang_pid *pid,
                        char name[MAXATOMLEN_UTF8])
{
    size_t n;
    name[0] = '\0';
    if (ei_decode_pid(f, index, pid) == 0)
        return true;
    return gr__term_atom(f, index, name, &n) && n > 0 && strlen(name) == n;
}

/* A MONITOR_P from s.watcher for one of our actors (by pid or name),
 * read from connection fd to node, answered there when it cannot be
 * made. */
static void monitor_arrived(gr__dist *d, int fd, uint32_t node,
                            const mon_sig *s)
{
    if (gr__dist_is_service(s->name))
        return; /* It lives as long as the connection: nothing to fire. */
    ei_x_buff head;
    if (!exit_head(s, &head))
        return; /* Out of memory: Erlang's monitor waits for noconnection. */
    dist_mon m = {.node = node, .ref = ref_id_of(&s->ref), .head = head};
    int code = GR_OK;
    if (s->name[0] != '\0')
        code = gr_whereis(d->sys, s->name, &m.target) == GR_OK ? GR_OK
                                                               : GR_ENOACTOR;
    else if (strcmp(s->target.node, ei_thisnodename(&d->ec)) != 0 ||
             s->target.creation != ei_self(&d->ec)->creation)
        code = GR_ENOACTOR; /* Another node's, or an earlier run's. */
    else
        m.target = gr__dist_local_ref(d, &s->target);
    gr_ref watcher = gr__dist_ref_of_pid(d, &s->watcher);
    dist_mon *keep = code == GR_OK ? malloc(sizeof *keep) : NULL;
    if (keep != NULL) {
        m.id = gr__new_id(d->sys, NULL);
        *keep = m;
        pthread_mutex_lock(&d->lock);
        bool room =
            d->nmons < MONS_MAX &&
            gr__refmap_put(&d->mons_by_id, gr__id_key(m.id), keep) == GR_OK;
        if (room && gr__refmap_put(&d->mons_by_ref, ref_key(&m.ref, m.node),
                                   keep) != GR_OK) {
            (void)gr__refmap_take(&d->mons_by_id, gr__id_key(m.id));
            room = false;
        }
        d->nmons += room;
        pthread_mutex_unlock(&d->lock);
        if (!room) {
            free(keep);
            keep = NULL;
        }
    }
    if (code == GR_OK && keep == NULL)
        code = GR_ENOMEM;
    if (code == GR_OK) {
        /* The actor's DOWN, at once or when it exits, comes back through
         * gr__dist_send; the record owns head from here. */
        code = gr__deliver(d->sys, NULL, GR__MSG_MONITOR, watcher, m.target,
                           m.id, NULL, 0);
        if (code == GR_OK)
            return;
        pthread_mutex_lock(&d->lock);
        bool held = gr__refmap_get(&d->mons_by_id, gr__id_key(m.id)) == keep;
        if (held)
            mon_forget(d, keep);
        pthread_mutex_unlock(&d->lock);
        if (!held)
            return; /* Its DOWN went out already (and freed head). */
        free(keep);
    }
    refuse(d, fd, &head, code);
    ei_x_free(&head);
}

/* A DEMONITOR_P from node: the watcher drops its monitor (found by
 * reference). */
static void demonitor_arrived(gr__dist *d, uint32_t node, const mon_sig *s)
{
    gr_ref watcher = gr__dist_ref_of_pid(d, &s->watcher);
    ref_id ref = ref_id_of(&s->ref);
    pthread_mutex_lock(&d->lock);
    dist_mon *m = gr__refmap_get(&d->mons_by_ref, ref_key(&ref, node));
    if (m != NULL && !ref_eq(&m->ref, &ref))
        m = NULL;
    if (m != NULL)
        mon_forget(d, m);
    pthread_mutex_unlock(&d->lock);
    if (m == NULL)
        return;
    (void)gr__deliver(d->sys, NULL, GR__MSG_DEMONITOR, watcher, m->target,
                      m->id, NULL, 0);
    mon_free(m);
}

/* Takes the monitor of the ask with corr (to free with ask_free); NULL
 * when there is none. */
static dist_ask *ask_take(gr__dist *d, uint64_t corr)
{
    pthread_mutex_lock(&d->lock);
    dist_ask *a = gr__refmap_take(&d->asks_out, gr__id_key(corr));
    pthread_mutex_unlock(&d->lock);
    return a;
}

static void ask_free(dist_ask *a)
{
    if (a != NULL && a->body.buff != NULL)
        ei_x_free(&a->body);
    free(a);
}

/* Appends the frame {tag, Asker, Callee, Ref} of ask a's monitor to x. */
static bool ask_frame(const dist_ask *a, long tag, ei_x_buff *x)
{
    bool ok = gr__frame_start(x, 4, tag) &&
              ei_x_append_buf(x, a->body.buff, a->body.index) == 0;
    if (ok)
        gr__frame_end(x);
    return ok;
}

int gr__ask_monitor(gr__dist *d, const gr_msg *m, const erlang_pid *callee,
                    ei_x_buff *x)
{
    dist_ask *a = calloc(1, sizeof *a);
    ei_x_buff f = {0};
    erlang_ref ref;
    erlang_pid asker;
    marked_ref(d, ASK_MARK, m->corr, &ref);
    bool ok = a != NULL && gr__dist_pid_of_ref(d, m->from, &asker) &&
              ei_x_new(&a->body) == 0 &&
              ei_x_encode_pid(&a->body, &asker) == 0 &&
              ei_x_encode_pid(&a->body, callee) == 0 &&
              ei_x_encode_ref(&a->body, &ref) == 0 && ei_x_new(&f) == 0 &&
              ask_frame(a, CTL_MONITOR_P, &f) &&
              ei_x_append_buf(&f, x->buff, x->index) == 0;
    if (ok) {
        a->asker = m->from;
        a->callee = m->to;
        pthread_mutex_lock(&d->lock);
        ok = gr__refmap_put(&d->asks_out, gr__id_key(m->corr), a) == GR_OK;
        pthread_mutex_unlock(&d->lock);
    }
    if (!ok) {
        ask_free(a);
        if (f.buff != NULL)
            ei_x_free(&f);
        return GR_ENOMEM;
    }
    ei_x_free(x);
    *x = f;
    return GR_OK;
}

void gr__ask_unmonitor(gr__dist *d, uint64_t corr)
{
    ask_free(ask_take(d, corr));
}

void gr__ask_answered(gr__dist *d, int fd, uint64_t corr, gr_ref *callee)
{
    dist_ask *a = ask_take(d, corr);
    ei_x_buff x;
    if (a == NULL)
        return;
    *callee = a->callee;
    if (ei_x_new(&x) == 0) {
        if (ask_frame(a, CTL_DEMONITOR_P, &x))
            (void)gr__dist_queue(d, fd, x.buff, (size_t)x.index);
        ei_x_free(&x);
    }
    ask_free(a);
}

int gr__ask_forget_frame(gr__dist *d, const gr_msg *m, ei_x_buff *x,
                         uint32_t *node)
{
    dist_ask *a = ask_take(d, m->corr);
    if (a == NULL)
        return GR_ENOTFOUND;
    *node = a->callee.node;
    int rc = ask_frame(a, CTL_DEMONITOR_P, x) ? GR_OK : GR_ENOMEM;
    ask_free(a);
    return rc;
}

/* A MONITOR_P_EXIT for a monitor of ours: its watcher's DOWN, or the
 * failure of the ask it watched; the reason at f[index] (checked whole
 * with the control message). */
static void down_arrived(gr__dist *d, const mon_sig *s, const char *f,
                         int index)
{
    if (strcmp(s->watcher.node, ei_thisnodename(&d->ec)) != 0)
        return; /* Not ours: nobody to tell. */
    uint64_t corr = id_of_ref(d, ASK_MARK, &s->ref);
    dist_ask *a = corr != 0 ? ask_take(d, corr) : NULL;
    if (a != NULL) {
        gr_reason why = gr__reason_of_term(f, &index);
        gr__ask_send_failed(d->sys, NULL, a->callee, a->asker, corr, &why);
        ask_free(a);
        return;
    }
    uint64_t id = id_of_ref(d, MON_MARK, &s->ref);
    if (id == 0)
        return; /* An ask answered already, or no monitor of ours. */
    gr_down down = {.monitor = id,
                    .target = s->name[0] == '\0'
                                  ? gr__dist_ref_of_pid(d, &s->target)
                                  : GR_REF_NONE,
                    .reason = gr__reason_of_term(f, &index)};
    (void)gr__deliver(d->sys, NULL, GR_MSG_DOWN, down.target,
                      gr__dist_local_ref(d, &s->watcher), id, &down,
                      sizeof down);
}

bool gr__monitor_arrived(gr__dist *d, int fd, uint32_t node, long tag,
                         const char *f, int index)
{
    mon_sig s;
    memset(&s, 0, sizeof s);
    bool ok = tag == CTL_MONITOR_P_EXIT
                  ? decode_proc(f, &index, &s.target, s.name) &&
                        ei_decode_pid(f, &index, &s.watcher) == 0
                  : ei_decode_pid(f, &index, &s.watcher) == 0 &&
                        decode_proc(f, &index, &s.target, s.name);
    if (!ok || ei_decode_ref(f, &index, &s.ref) != 0)
        return false;
    if (tag == CTL_MONITOR_P)
        monitor_arrived(d, fd, node, &s);
    else if (tag == CTL_DEMONITOR_P)
        demonitor_arrived(d, node, &s);
    else
        down_arrived(d, &s, f, index);
    return true;
}

int gr__monitor_down_frame(gr__dist *d, const gr_msg *m, ei_x_buff *x,
                           uint32_t *node)
{
    gr_down down;
    if (gr_down_read(m, &down) != GR_OK)
        return GR_ENOTFOUND;
    pthread_mutex_lock(&d->lock);
    dist_mon *held = gr__refmap_get(&d->mons_by_id, gr__id_key(m->corr));
    if (held != NULL)
        mon_forget(d, held);
    pthread_mutex_unlock(&d->lock);
    if (held == NULL)
        return GR_ENOTFOUND; /* Demonitored, or its node is gone. */
    *node = held->node;
    int rc = exit_frame(&held->head, &down.reason, x) ? GR_OK : GR_ENOMEM;
    mon_free(held);
    return rc;
}

/* Collects the monitors of watchers on one node, or the ask monitors of
 * callees there (gr__refmap_each). */
typedef struct gone {
    bool all;
    uint32_t node;
    void **v;
    gr_ref *keys;
    size_t n;
} gone;

static void collect_mon(void *arg, gr_ref key, void *value)
{
    (void)key;
    gone *g = arg;
    const dist_mon *m = value;
    if (g->all || m->node == g->node)
        g->v[g->n++] = value;
}

static void collect_ask(void *arg, gr_ref key, void *value)
{
    gone *g = arg;
    const dist_ask *a = value;
    if (g->all || a->callee.node == g->node)
        g->keys[g->n++] = key;
}

/* Forgets the monitors of watchers on node (or all), and the monitors of
 * asks to callees there (their asks fail with the node); d->lock held.
 * Out of memory they are kept: their DOWNs find the node gone. */
static void forget_node(gr__dist *d, bool all, uint32_t node)
{
    gone g = {.all = all, .node = node};
    if (d->nmons > 0 && (g.v = malloc(d->nmons * sizeof *g.v)) != NULL) {
        gr__refmap_each(&d->mons_by_id, collect_mon, &g);
        for (size_t i = 0; i < g.n; i++) {
            mon_forget(d, g.v[i]);
            mon_free(g.v[i]);
        }
        free(g.v);
    }
    g.n = 0;
    if (d->asks_out.n > 0 &&
        (g.keys = malloc(d->asks_out.n * sizeof *g.keys)) != NULL) {
        gr__refmap_each(&d->asks_out, collect_ask, &g);
        for (size_t i = 0; i < g.n; i++)
            ask_free(gr__refmap_take(&d->asks_out, g.keys[i]));
        free(g.keys);
    }
}

void gr__monitors_node_gone(gr__dist *d, uint32_t node)
{
    pthread_mutex_lock(&d->lock);
    forget_node(d, false, node);
    pthread_mutex_unlock(&d->lock);
}

void gr__monitors_free(gr__dist *d)
{
    forget_node(d, true, 0);
    gr__refmap_clear(&d->mons_by_id);
    gr__refmap_clear(&d->mons_by_ref);
    gr__refmap_clear(&d->asks_out);
}
