/* The table of sockets: ids, owners, references, and what an owner's exit
 * and the system's shutdown do to them. */
#include "net/net.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Removes s from its owner's chain; net->lock held. */
static void owner_unlink(gr__net *net, net_sock *s)
{
    net_sock *first = gr__refmap_get(&net->owners, s->owner);
    if (first == s) {
        gr__refmap_take(&net->owners, s->owner);
        if (s->owner_next != NULL &&
            gr__refmap_put(&net->owners, s->owner, s->owner_next) != GR_OK)
            GR_ASSERT(!"a slot just freed is taken again");
    } else {
        while (first != NULL && first->owner_next != s)
            first = first->owner_next;
        if (first != NULL)
            first->owner_next = s->owner_next;
    }
    s->owner_next = NULL;
}

/* Adds s at the head of its owner's chain; net->lock held. */
static int owner_link(gr__net *net, net_sock *s)
{
    net_sock *first = gr__refmap_take(&net->owners, s->owner);
    s->owner_next = first;
    int rc = gr__refmap_put(&net->owners, s->owner, s);
    if (rc != GR_OK && first != NULL &&
        gr__refmap_put(&net->owners, s->owner, first) != GR_OK)
        GR_ASSERT(!"a slot just freed is taken again");
    return rc;
}

/* Makes owner s's owner and adds s at the head of its chain (back in
 * the old owner's chain, untouched, when that fails); net->lock held. */
static int owner_link_as(gr__net *net, net_sock *s, gr_ref owner)
{
    gr_ref old = s->owner;
    pthread_mutex_lock(&s->lock);
    s->owner = owner;
    pthread_mutex_unlock(&s->lock);
    int rc = owner_link(net, s);
    if (rc != GR_OK) {
        pthread_mutex_lock(&s->lock);
        s->owner = old;
        pthread_mutex_unlock(&s->lock);
        (void)owner_link(net, s);
    }
    return rc;
}

void gr__net_ref(net_sock *s)
{
    /* relaxed: the reference being copied keeps s alive meanwhile. */
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void gr__net_unref(net_sock *s)
{
    /* acq_rel: the last one sees every other holder's writes. */
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(s->wbuf);
    free(s->rbuf);
    free(s->unix_path);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

net_sock *gr__net_add(gr__net *net, int fd, net_kind kind, bool tcp,
                      const gr_io_opts *opts, gr_ref owner)
{
    net_sock *s = calloc(1, sizeof *s);
    if (s == NULL) {
        close(fd);
        return NULL;
    }
    s->net = net;
    s->fd = fd;
    s->kind = kind;
    s->tcp = tcp;
    s->opts = *opts;
    s->owner = owner;
    s->active = kind == NET_LISTENER ? GR_IO_ALWAYS : 0;
    atomic_init(&s->refs, 2); /* The table's and the caller's. */
    pthread_mutex_init(&s->lock, NULL);
    /* relaxed: ids need only be unique. */
    s->id = atomic_fetch_add_explicit(&net->next_id, 1, memory_order_relaxed);
    pthread_mutex_lock(&net->lock);
    int rc = gr__refmap_put(&net->socks, gr__id_key(s->id), s);
    if (rc == GR_OK && (rc = owner_link(net, s)) != GR_OK)
        gr__refmap_take(&net->socks, gr__id_key(s->id));
    pthread_mutex_unlock(&net->lock);
    if (rc != GR_OK) {
        close(fd);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    atomic_fetch_add_explicit(&net->open, 1, memory_order_relaxed);
    return s;
}

int gr__net_find(gr__net *net, uint64_t id, gr_ref caller, net_sock **out)
{
    pthread_mutex_lock(&net->lock);
    net_sock *s = gr__refmap_get(&net->socks, gr__id_key(id));
    int rc = GR_ECLOSED;
    if (s != NULL) {
        rc = gr_ref_eq(s->owner, caller) ? GR_OK : GR_ENOTOWNER;
        if (rc == GR_OK)
            gr__net_ref(s);
    }
    pthread_mutex_unlock(&net->lock);
    *out = rc == GR_OK ? s : NULL;
    return rc;
}

bool gr__net_set_owner(net_sock *s, gr_ref new_owner)
{
    gr__net *net = s->net;
    pthread_mutex_lock(&net->lock);
    /* Still in the table: gr__net_finish takes it out under this lock. */
    bool listed = gr__refmap_get(&net->socks, gr__id_key(s->id)) == s;
    if (listed) {
        owner_unlink(net, s);
        int rc = owner_link_as(net, s, new_owner);
        pthread_mutex_lock(&s->lock);
        if (rc == GR_OK) {
            /* Told before anything else about s can reach it. */
            net_wire w = {.kind = GR_IO_GIVEN};
            gr__net_deliver_to(s, new_owner, &w, NULL, 0);
        } else {
            /* No room to record it: a socket nobody owns must not stay. */
            s->closing = true;
            gr__net_sync_locked(s);
        }
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&net->lock);
    return listed;
}

void gr__net_emit(net_sock *s, gr_event_kind kind, const char *address,
                  uint64_t listener, uint64_t unsent, const gr_reason *why)
{
    gr_event ev = {
        .kind = kind,
        .level = GR_LOG_DEBUG,
        .socket = s->id,
        .listener = listener,
        .address = address,
        .unsent = unsent,
        .reason = why != NULL ? *why : gr_reason_of(GR_OK),
    };
    pthread_mutex_lock(&s->lock);
    ev.actor = s->owner;
    pthread_mutex_unlock(&s->lock);
    if (kind == GR_EV_SOCKET_LISTENING)
        ev.level = GR_LOG_INFO;
    else if (kind == GR_EV_SOCKET_CLOSED && unsent > 0)
        ev.level = GR_LOG_WARN; /* Errors: the owner was told already. */
    gr__system_emit(s->net->sys, &ev);
}

void gr__net_finish(net_sock *s, bool loop_alive)
{
    gr__net *net = s->net;
    struct ev_loop *loop = gr__io_loop(gr__system_io(net->sys));
    if (loop_alive) {
        if (s->rio_on)
            ev_io_stop(loop, &s->rio);
        if (s->wio_on)
            ev_io_stop(loop, &s->wio);
        if (s->timer_on)
            ev_timer_stop(loop, &s->timer);
    }
    s->rio_on = s->wio_on = s->timer_on = false;
    pthread_mutex_lock(&net->lock);
    bool listed = gr__refmap_get(&net->socks, gr__id_key(s->id)) == s;
    if (listed) {
        gr__refmap_take(&net->socks, gr__id_key(s->id));
        owner_unlink(net, s);
    }
    pthread_mutex_lock(&s->lock);
    s->finished = true;
    s->closing = true;
    size_t unsent = s->wlen;
    s->wlen = 0;
    pthread_mutex_unlock(&s->lock);
    net_sock *listener =
        s->listener_id != 0
            ? gr__refmap_get(&net->socks, gr__id_key(s->listener_id))
            : NULL;
    if (listener != NULL)
        gr__net_ref(listener);
    pthread_mutex_unlock(&net->lock);
    if (!listed) {
        if (listener != NULL)
            gr__net_unref(listener);
        return;
    }
    /* The event first: whoever sees the close sees it logged. */
    gr__net_emit(s, GR_EV_SOCKET_CLOSED, "", 0, unsent, &s->why);
    close(s->fd);
    if (s->unix_path != NULL)
        unlink(s->unix_path);
    atomic_fetch_sub_explicit(&net->open, 1, memory_order_relaxed);
    if (listener != NULL) {
        /* The listener may have paused at its cap: look again. */
        pthread_mutex_lock(&listener->lock);
        if (listener->live > 0)
            listener->live--;
        gr__net_sync_locked(listener);
        pthread_mutex_unlock(&listener->lock);
        gr__net_unref(listener);
    }
    gr__net_unref(s); /* The table's reference. */
}

/* ---- the hook (actor/owned.h) ------------------------------------------ */

/* An owner exited: close its sockets. */
static void net_owner_exit(void *t, gr_ref owner)
{
    gr__net *net = t;
    pthread_mutex_lock(&net->lock);
    for (net_sock *s = gr__refmap_get(&net->owners, owner); s != NULL;
         s = s->owner_next) {
        pthread_mutex_lock(&s->lock);
        s->closing = true;
        gr__net_sync_locked(s);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&net->lock);
}

/* Collects a socket for net_shutdown. */
static void collect(void *arg, gr_ref key, void *value)
{
    (void)key;
    net_sock ***at = arg;
    *(*at)++ = value;
}

/* Shutdown: every actor has exited and the loop is gone. What is queued
 * gets one last try at the kernel; then every socket is finished. */
static void net_shutdown(void *t)
{
    gr__net *net = t;
    size_t n = net->socks.n;
    net_sock **all = n > 0 ? malloc(n * sizeof *all) : NULL;
    if (all != NULL) {
        net_sock **at = all;
        gr__refmap_each(&net->socks, collect, &at);
        for (size_t i = 0; i < n; i++) {
            net_sock *s = all[i];
            if (s->why.code == GR_OK)
                s->why = gr_reason_of(GR_ESHUTDOWN); /* Closed by it. */
            if (s->wlen > 0 && s->kind == NET_STREAM && !s->abort) {
                ssize_t k = send(s->fd, s->wbuf + s->woff, s->wlen,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k > 0)
                    s->wlen -= (size_t)k;
            }
            gr__net_finish(s, false);
        }
    }
    free(all);
    gr__refmap_clear(&net->socks);
    gr__refmap_clear(&net->owners);
    pthread_mutex_destroy(&net->lock);
    free(net);
}

/* Adds the socket counters to a stats snapshot. */
static void net_stats(void *t, gr_stats *out)
{
    gr__net *net = t;
    /* relaxed: statistics. */
    out->sockets_open = atomic_load_explicit(&net->open, memory_order_relaxed);
    out->socket_bytes_in =
        atomic_load_explicit(&net->bytes_in, memory_order_relaxed);
    out->socket_bytes_out =
        atomic_load_explicit(&net->bytes_out, memory_order_relaxed);
}

static const gr__owned_ops net_ops = {
    .owner_exit = net_owner_exit,
    .shutdown = net_shutdown,
    .stats = net_stats,
};

/* Makes a system's socket table (gr__owned_get's make). */
static void *net_make(gr_system *sys)
{
    gr__net *net = calloc(1, sizeof *net);
    if (net == NULL)
        return NULL;
    net->sys = sys;
    pthread_mutex_init(&net->lock, NULL);
    atomic_init(&net->next_id, 1);
    atomic_init(&net->bytes_in, 0);
    atomic_init(&net->bytes_out, 0);
    atomic_init(&net->open, 0);
    return net;
}

gr__net *gr__net_of(gr_system *sys)
{
    return gr__owned_get(sys, &net_ops, net_make);
}
