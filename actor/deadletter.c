#include "actor/deadletter.h"

#include <inttypes.h>
#include <stdio.h>

#include "actor/log.h"

static const char *const reason_names[GR_DL_COUNT] = {"no_actor", "stopped",
                                                      "expired_reply"};

const char *gr_dead_reason_name(gr_dead_reason reason)
{
    if ((unsigned)reason >= GR_DL_COUNT)
        return "unknown";
    return reason_names[reason];
}

void gr__dead_init(gr__deadletters *d, unsigned log_limit)
{
    for (int i = 0; i < GR_DL_COUNT; i++)
        atomic_init(&d->count[i], 0);
    atomic_init(&d->logged, 0);
    d->log_limit = log_limit ? log_limit : GR__DEAD_LOG_LIMIT;
}

void gr__dead_letter(gr__deadletters *d, const gr__logger *log, const gr_msg *m,
                     gr_dead_reason reason)
{
    /* relaxed: a statistic; readers need no ordering with other memory. */
    atomic_fetch_add_explicit(&d->count[reason], 1, memory_order_relaxed);
    if (!gr__log_enabled(log, GR_LOG_WARN))
        return;
    /* relaxed: only the count matters, to cap the lines logged. */
    uint64_t n = atomic_fetch_add_explicit(&d->logged, 1, memory_order_relaxed);
    if (n >= d->log_limit)
        return;
    char to[GR__REF_STR_MAX], from[GR__REF_STR_MAX];
    gr__log(log, GR_LOG_WARN,
            "dead letter: to %s from %s type 0x%" PRIx32 " corr %" PRIu64
            " reason %s%s",
            gr__ref_format(to, m->to), gr__ref_format(from, m->from), m->type,
            m->corr, reason_names[reason],
            n + 1 == d->log_limit
                ? " (further dead letters counted, not logged)"
                : "");
}

void gr__dead_summary(gr__deadletters *d, const gr__logger *log)
{
    uint64_t total = 0;
    for (int i = 0; i < GR_DL_COUNT; i++)
        total += atomic_load_explicit(&d->count[i], memory_order_relaxed);
    uint64_t logged = atomic_load_explicit(&d->logged, memory_order_relaxed);
    if (logged > d->log_limit)
        logged = d->log_limit;
    if (total <= logged)
        return;
    /* "no_actor=N stopped=N ...": every reason, so none is left out. */
    char by_reason[32 * GR_DL_COUNT];
    size_t used = 0;
    for (int i = 0; i < GR_DL_COUNT && used < sizeof by_reason; i++)
        used += (size_t)snprintf(
            by_reason + used, sizeof by_reason - used, "%s%s=%" PRIu64,
            i ? " " : "", reason_names[i],
            atomic_load_explicit(&d->count[i], memory_order_relaxed));
    gr__log(log, GR_LOG_WARN,
            "dead letters: %" PRIu64 " in all, %" PRIu64 " not logged (%s)",
            total, total - logged, by_reason);
}
