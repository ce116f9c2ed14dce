/*
 * The connector: threads of their own (GR__CONNECTORS_START at first,
 * another whenever a request finds every one busy, up to
 * GR__CONNECTORS_MAX) that make connections (connect and handshake,
 * ei_connect_tmo) and take them (accept and handshake, ei_accept_tmo), so that
 * a peer that is slow to answer, or a host that drops every packet, holds up
 * one of them for at most connect_timeout_ms, and never the connections that
 * are up: the distribution thread goes on reading and writing them meanwhile,
 * and the other connector threads go on connecting (Erlang gives up on a
 * connection not set up in its net_setuptime, 7 s, so new connections
 * must not queue behind a slow one for long).
 *
 * The distribution thread asks (gr__connector_ask), parks the jobs for a
 * node being connected to (dist.c), and takes what the connector made
 * when wake_fd wakes it (gr__connector_take). One request per node at a
 * time; the thread accepts incoming connections itself and asks for
 * their handshakes, which run side by side.
 */
#include "dist/dist.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Appends dial to the list whose tail pointer is *tail (d->lock held). */
static void append(dist_dial ***tail, dist_dial *dial)
{
    dial->next = NULL;
    **tail = dial;
    *tail = &dial->next;
}

/* Appends dial to the shaking list, holding its socket (lock held). */
static void shaking_add(gr__dist *d, dist_dial *dial)
{
    dist_dial **link = &d->shaking;
    while (*link != NULL)
        link = &(*link)->shaking_next;
    dial->shaking_next = NULL;
    dial->held = dial->fd;
    *link = dial;
}

/* Takes dial off the shaking list; returns the socket it held (lock
 * held). */
static int shaking_remove(gr__dist *d, dist_dial *dial)
{
    dist_dial **link = &d->shaking;
    while (*link != dial)
        link = &(*link)->shaking_next;
    *link = dial->shaking_next;
    int held = dial->held;
    dial->held = -1;
    return held;
}

/* Makes the socket callbacks watch the handshake that follows. */
static void shake_begin(gr__dist *d, bool accepting)
{
    gr__dist_shake.d = d;
    gr__dist_shake.accepting = accepting;
    gr__dist_shake.nok = false;
    gr__dist_shake.counted = false;
    gr__dist_shake.len = 0;
}

/* Notes in dial what the handshake said: the peer's creation, and
 * whether a simultaneous connect was resolved against it; and in name
 * (MAXATOMLEN_UTF8 bytes) the peer's node name, or "" if it did not say. */
static void shake_end(dist_dial *dial, char *name)
{
    if (!gr__shake_peer(&gr__dist_shake, name, MAXATOMLEN_UTF8,
                        &dial->creation))
        name[0] = '\0';
    dial->nok = dial->fd < 0 && gr__dist_shake.nok;
    dial->counted = gr__dist_shake.counted;
    gr__dist_shake.d = NULL;
}

/* Runs the handshake of the connection dial accepted (on the shaking
 * list): ei's accept takes a duplicate of it, so that the original stays
 * open for gr__connector_cut until the handshake is over. */
static void shake(gr__dist *d, dist_dial *dial)
{
    int fd = fcntl(dial->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) { /* No descriptor to spare: ei takes the original, which
                     then may no longer be cut. */
        pthread_mutex_lock(&d->lock);
        fd = shaking_remove(d, dial);
        pthread_mutex_unlock(&d->lock);
    }
    ErlConnect con;
    gr__dist_preaccepted = fd;
    shake_begin(d, true);
    dial->fd = ei_accept_tmo(&d->ec, d->listen_fd, &con, d->timeout_ms);
    char peer[MAXATOMLEN_UTF8];
    shake_end(dial, peer);
    if (gr__dist_preaccepted >= 0) /* Not taken after all. */
        close(gr__dist_preaccepted);
    gr__dist_preaccepted = -1;
    pthread_mutex_lock(&d->lock); /* gr__connector_cut reads node. */
    if (dial->fd >= 0)
        memcpy(dial->node, con.nodename, sizeof con.nodename);
    else if (peer[0] != '\0') /* Its name says more than its address. */
        memcpy(dial->node, peer, sizeof peer);
    if (dial->held >= 0)
        close(shaking_remove(d, dial));
    pthread_mutex_unlock(&d->lock);
}

static void *connector_main(void *arg)
{
    gr__dist *d = arg;
    gr__dist_cancel_fd = d->cancel_fd;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        d->connectors_idle++;
        while (!d->quit && d->dials == NULL)
            pthread_cond_wait(&d->dial_cond, &d->lock);
        d->connectors_idle--;
        dist_dial *dial = d->dials;
        if (dial != NULL && !d->quit) {
            d->dials = dial->next;
            if (d->dials == NULL)
                d->dials_tail = &d->dials;
            d->ndials--;
            if (dial->accept)
                shaking_add(d, dial);
        }
        bool quit = d->quit;
        pthread_mutex_unlock(&d->lock);
        if (quit)
            break;
        if (dial->accept) {
            shake(d, dial);
        } else {
            /* Looked up here, as the system's stop ends that wait too;
             * then ei's handshake over the socket callbacks (socket.c). */
            struct in_addr addr;
            int port = 0,
                e = gr__epmd_lookup(dial->node, d->timeout_ms, &addr, &port);
            shake_begin(d, false);
            dial->fd = e != 0 ? -1
                              : ei_xconnect_host_port_tmo(&d->ec, &addr, port,
                                                          d->timeout_ms);
            if (e != 0)
                erl_errno = e;
            char peer[MAXATOMLEN_UTF8];
            shake_end(dial, peer);
            if (dial->fd >= 0) /* At once: accepts from it see it. */
                gr__dist_connected(d, dial->id, dial->creation, dial->fd);
        }
        dial->error = dial->fd < 0 ? erl_errno : 0;
        pthread_mutex_lock(&d->lock);
        append(&d->dialed_tail, dial);
        pthread_mutex_unlock(&d->lock);
        uint64_t one = 1;
        (void)!write(d->wake_fd, &one, sizeof one);
    }
    return NULL;
}

/* Starts one more connector thread (d->lock held once any runs); false
 * at the limit or when the system has no thread to give. */
static bool connector_add(gr__dist *d)
{
    if (d->connectors == GR__CONNECTORS_MAX ||
        pthread_create(&d->connector[d->connectors], NULL, connector_main, d) !=
            0)
        return false;
    d->connectors++;
    return true;
}

int gr__connector_start(gr__dist *d)
{
    d->dials_tail = &d->dials;
    d->dialed_tail = &d->dialed;
    d->connectors = d->connectors_idle = d->ndials = 0;
    if ((d->cancel_fd = eventfd(0, EFD_CLOEXEC)) < 0)
        return GR_ESYS;
    pthread_cond_init(&d->dial_cond, NULL);
    while (d->connectors < GR__CONNECTORS_START && connector_add(d))
        continue;
    if (d->connectors == 0) {
        pthread_cond_destroy(&d->dial_cond);
        close(d->cancel_fd);
        d->cancel_fd = -1;
        return GR_ESYS;
    }
    return GR_OK;
}

/* Frees a list of dials, closing their connections: made ones (done)
 * through ei, accepted ones whose handshake never began as they are. */
static void free_dials(dist_dial *dial, bool done)
{
    while (dial != NULL) {
        dist_dial *next = dial->next;
        if (dial->fd >= 0 && done)
            ei_close_connection(dial->fd);
        else if (dial->fd >= 0)
            close(dial->fd);
        free(dial);
        dial = next;
    }
}

void gr__connector_stop(gr__dist *d)
{
    if (d->connectors == 0)
        return;
    pthread_mutex_lock(&d->lock);
    d->quit = true;
    pthread_cond_broadcast(&d->dial_cond);
    pthread_mutex_unlock(&d->lock);
    /* A system that stops does not wait for a node that does not answer:
     * every callback waiting in a connect or handshake returns. */
    uint64_t one = 1;
    (void)!write(d->cancel_fd, &one, sizeof one);
    for (unsigned i = 0; i < d->connectors; i++)
        pthread_join(d->connector[i], NULL);
    close(d->cancel_fd);
    d->cancel_fd = -1;
    pthread_cond_destroy(&d->dial_cond);
    d->connectors = 0;
    free_dials(d->dials, false);
    free_dials(d->dialed, true);
    d->dials = d->dialed = NULL;
}

bool gr__connector_ask(gr__dist *d, int accepted, uint32_t id, const char *node)
{
    dist_dial *dial = calloc(1, sizeof *dial);
    if (dial == NULL) {
        if (accepted >= 0)
            close(accepted);
        return false;
    }
    dial->accept = accepted >= 0;
    dial->id = id;
    dial->fd = accepted;
    dial->held = -1;
    if (node != NULL)
        snprintf(dial->node, sizeof dial->node, "%s", node);
    pthread_mutex_lock(&d->lock);
    append(&d->dials_tail, dial);
    /* More waiting than threads free (each busy with a silent peer, say):
     * one more thread, so that this one does not wait behind them. */
    if (++d->ndials > d->connectors_idle)
        (void)connector_add(d);
    pthread_cond_signal(&d->dial_cond);
    pthread_mutex_unlock(&d->lock);
    return true;
}

gr__cut gr__connector_cut(gr__dist *d, char *who, size_t size)
{
    gr__cut did = GR__CUT_NONE;
    dist_dial *drop = NULL;
    pthread_mutex_lock(&d->lock);
    dist_dial *oldest = d->shaking;
    while (oldest != NULL && oldest->cut)
        oldest = oldest->shaking_next;
    if (oldest != NULL) {
        /* Its duplicate, in ei's hands, sees the end of the stream. */
        shutdown(oldest->held, SHUT_RDWR);
        oldest->cut = true;
        did = GR__CUT_PENDING;
    }
    for (dist_dial **link = &d->dials; oldest == NULL && *link != NULL;
         link = &(*link)->next) {
        if (!(*link)->accept)
            continue;
        drop = *link;
        *link = drop->next;
        if (d->dials_tail == &drop->next)
            d->dials_tail = link;
        d->ndials--;
        did = GR__CUT_DROPPED;
        break;
    }
    dist_dial *cut = drop != NULL ? drop : oldest;
    if (cut != NULL)
        snprintf(who, size, "%s", cut->node[0] != '\0' ? cut->node : "a peer");
    pthread_mutex_unlock(&d->lock);
    if (drop != NULL) {
        close(drop->fd);
        free(drop);
    }
    return did;
}

dist_dial *gr__connector_take(gr__dist *d)
{
    pthread_mutex_lock(&d->lock);
    dist_dial *list = d->dialed;
    d->dialed = NULL;
    d->dialed_tail = &d->dialed;
    pthread_mutex_unlock(&d->lock);
    return list;
}
