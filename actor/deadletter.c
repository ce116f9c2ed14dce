#include "actor/deadletter.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actor/log.h"
#include "actor/message.h"
#include "actor/relations.h"
#include "actor/scheduler.h"
#include "actor/send.h"
#include "actor/system.h"

static const char *const reason_names[GR_DL_COUNT] = {
    "no_actor",     "stopped",   "expired_reply", "mailbox_full",
    "unknown_name", "node_down", "backpressure"};

const char *gr_dead_reason_name(gr_dead_reason reason)
{
    if ((unsigned)reason >= GR_DL_COUNT)
        return "unknown";
    return reason_names[reason];
}

int gr__dead_init(gr__deadletters *d, unsigned log_limit, unsigned summary_ms)
{
    for (int i = 0; i < GR_DL_COUNT; i++) {
        atomic_init(&d->count[i], 0);
        d->summarised[i] = 0;
    }
    atomic_init(&d->logged, 0);
    d->log_limit = log_limit ? log_limit : GR__DEAD_LOG_LIMIT;
    d->summary_ms = summary_ms ? summary_ms : GR__DEAD_SUMMARY_MS;
    d->subs = NULL;
    d->subs_cap = 0;
    atomic_init(&d->nsubs, 0);
    return pthread_mutex_init(&d->sub_lock, NULL) == 0 ? GR_OK : GR_ESYS;
}

void gr__dead_destroy(gr__deadletters *d)
{
    free(d->subs);
    d->subs = NULL;
    pthread_mutex_destroy(&d->sub_lock);
}

/* Emits the dead-letter event for rec, while fewer than log_limit have
 * been; the last one is followed by a notice that a summary takes over. */
static void log_one(gr_system *sys, const gr_dead_letter *rec)
{
    gr__deadletters *d = &sys->dead;
    if (!gr__event_wanted(&sys->log, GR_LOG_WARN))
        return;
    /* relaxed: only the count matters, to cap the events emitted. */
    uint64_t n = atomic_fetch_add_explicit(&d->logged, 1, memory_order_relaxed);
    if (n >= d->log_limit)
        return;
    gr_event ev = {
        .kind = GR_EV_DEAD_LETTER, .level = GR_LOG_WARN, .dead = *rec};
    gr__event_emit(&sys->events, &sys->log, &ev);
    if (n + 1 == d->log_limit)
        gr__log(&sys->log, GR_LOG_WARN,
                "dead letters: the first %" PRIu64 " were logged; further "
                "ones are counted, not logged, and summarised every %u ms",
                d->log_limit, d->summary_ms);
}

/* Removes subscriber r, if present (lock held). */
static void remove_sub(gr__deadletters *d, gr_ref r)
{
    size_t n = atomic_load_explicit(&d->nsubs, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        if (gr_ref_eq(d->subs[i], r)) {
            d->subs[i] = d->subs[n - 1];
            atomic_store_explicit(&d->nsubs, n - 1, memory_order_relaxed);
            return;
        }
    }
}

/* Sends record rec to every subscriber; drops those that are gone. */
static void publish(gr_system *sys, gr__worker *w, const gr_dead_letter *rec)
{
    gr__deadletters *d = &sys->dead;
    pthread_mutex_lock(&d->sub_lock);
    size_t n = atomic_load_explicit(&d->nsubs, memory_order_relaxed);
    gr_ref *to = malloc(n * sizeof *to);
    if (to != NULL)
        memcpy(to, d->subs, n * sizeof *to);
    pthread_mutex_unlock(&d->sub_lock);
    if (to == NULL)
        return; /* Out of memory: counted and logged, not published. */
    for (size_t i = 0; i < n; i++) {
        /* A record that cannot be delivered is not itself a dead letter
         * (its type is a runtime one): no loops. */
        if (gr__deliver(sys, w, GR_MSG_DEAD_LETTER, GR_REF_NONE, to[i], 0, rec,
                        sizeof *rec) == GR_ENOACTOR) {
            pthread_mutex_lock(&d->sub_lock);
            remove_sub(d, to[i]);
            pthread_mutex_unlock(&d->sub_lock);
        }
    }
    free(to);
}

void gr__dead_letter(gr_system *sys, gr__worker *w, const gr_msg *m,
                     gr_dead_reason reason)
{
    gr__dead_letter_named(sys, w, m, NULL, 0, reason);
}

void gr__dead_letter_named(gr_system *sys, gr__worker *w, const gr_msg *m,
                           const char *name, size_t name_len,
                           gr_dead_reason reason)
{
    gr__deadletters *d = &sys->dead;
    /* relaxed: a statistic; readers need no ordering with other memory. */
    atomic_fetch_add_explicit(&d->count[reason], 1, memory_order_relaxed);
    /* relaxed: a subscriber added concurrently may miss this one record. */
    bool publishing = atomic_load_explicit(&d->nsubs, memory_order_relaxed) > 0;
    if (!publishing && !gr__event_wanted(&sys->log, GR_LOG_WARN))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    gr_dead_letter rec = {.time_ns = (uint64_t)ts.tv_sec * 1000000000u +
                                     (uint64_t)ts.tv_nsec,
                          .from = m->from,
                          .to = m->to,
                          .corr = m->corr,
                          .type = m->type,
                          .reason = reason};
    if (name != NULL) {
        size_t n = name_len < GR_NAME_MAX ? name_len : GR_NAME_MAX;
        memcpy(rec.name, name, n);
        rec.name[n] = '\0';
    }
    log_one(sys, &rec);
    if (publishing)
        publish(sys, w != NULL ? w : gr__worker_of(sys), &rec);
}

void gr__dead_summary(gr__deadletters *d, const gr__logger *log)
{
    uint64_t now[GR_DL_COUNT], total = 0, before = 0;
    for (int i = 0; i < GR_DL_COUNT; i++) {
        now[i] = atomic_load_explicit(&d->count[i], memory_order_relaxed);
        total += now[i];
        before += d->summarised[i];
    }
    /* Dead letters are logged one by one while fewer than log_limit have
     * been: those among this period's were logged already. */
    uint64_t logged = atomic_load_explicit(&d->logged, memory_order_relaxed);
    if (logged > d->log_limit)
        logged = d->log_limit;
    uint64_t more = total - before;
    uint64_t seen =
        logged > before ? (logged < total ? logged : total) - before : 0;
    if (more == seen)
        return; /* Nothing new, or every new one has its own line. */
    /* "no_actor=N stopped=N ...": every reason, so none is left out. */
    char by_reason[32 * GR_DL_COUNT];
    size_t used = 0;
    for (int i = 0; i < GR_DL_COUNT && used < sizeof by_reason; i++)
        used += (size_t)snprintf(by_reason + used, sizeof by_reason - used,
                                 "%s%s=%" PRIu64, i ? " " : "", reason_names[i],
                                 now[i] - d->summarised[i]);
    gr__log(log, GR_LOG_WARN,
            "dead letters: %" PRIu64 " more, %" PRIu64
            " of them not logged one by one (%s)",
            more, more - seen, by_reason);
    for (int i = 0; i < GR_DL_COUNT; i++)
        d->summarised[i] = now[i];
}

int gr_dead_letters_subscribe(gr_ctx *ctx)
{
    if (ctx == NULL)
        return GR_EINVAL;
    gr__deadletters *d = &gr__ctx_sys(ctx)->dead;
    gr_ref self = gr__actor_ref(ctx->self);
    int rc = GR_OK;
    pthread_mutex_lock(&d->sub_lock);
    size_t n = atomic_load_explicit(&d->nsubs, memory_order_relaxed);
    bool have = false;
    for (size_t i = 0; i < n && !have; i++)
        have = gr_ref_eq(d->subs[i], self);
    if (!have && n == d->subs_cap) {
        size_t cap = d->subs_cap ? d->subs_cap * 2 : 4;
        gr_ref *v = realloc(d->subs, cap * sizeof *v);
        if (v == NULL)
            rc = GR_ENOMEM;
        else {
            d->subs = v;
            d->subs_cap = cap;
        }
    }
    if (!have && rc == GR_OK) {
        d->subs[n] = self;
        atomic_store_explicit(&d->nsubs, n + 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&d->sub_lock);
    return rc;
}

int gr_dead_letters_unsubscribe(gr_ctx *ctx)
{
    if (ctx == NULL)
        return GR_EINVAL;
    gr__deadletters *d = &gr__ctx_sys(ctx)->dead;
    pthread_mutex_lock(&d->sub_lock);
    remove_sub(d, gr__actor_ref(ctx->self));
    pthread_mutex_unlock(&d->sub_lock);
    return GR_OK;
}

int gr_dead_letter_read(const gr_msg *msg, gr_dead_letter *out)
{
    if (msg == NULL || out == NULL || msg->type != GR_MSG_DEAD_LETTER ||
        msg->len != sizeof *out)
        return GR_EINVAL;
    memcpy(out, msg->data, sizeof *out);
    return GR_OK;
}

void gr__dead_message(gr_system *sys, const gr_msg *m, gr_dead_reason reason,
                      const gr_reason *why)
{
    gr__dead_message_named(sys, m, NULL, 0, reason, why);
}

void gr__dead_message_named(gr_system *sys, const gr_msg *m, const char *name,
                            size_t name_len, gr_dead_reason reason,
                            const gr_reason *why)
{
    if (m->flags & GR_MSG_TIMER)
        return; /* Its owner is gone, and its timers with it. */
    /* A reply whose asker is gone no longer has anyone waiting. (One
     * refused by a full mailbox is a mailbox_full: its ask still waits.) */
    if ((m->flags & GR_MSG_REPLY) &&
        (reason == GR_DL_NO_ACTOR || reason == GR_DL_STOPPED))
        reason = GR_DL_EXPIRED_REPLY;
    gr__dead_letter_named(sys, NULL, m, name, name_len, reason);
    /* A request that will never be answered fails its asker at once. One
     * refused at the send (no actor, no room) already failed its local
     * asker through the send's result; a remote asker learns here. */
    if ((m->flags & GR_MSG_REQUEST) &&
        (reason == GR_DL_STOPPED || m->from.node != sys->node_id))
        gr__ask_send_failed(sys, gr__worker_of(sys), m->to, m->from, m->corr,
                            why);
}
