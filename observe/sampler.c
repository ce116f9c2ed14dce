/*
 * The sampler: every GR__OBS_SAMPLE_MS the control thread looks at what
 * each runtime thread is running (an actor's serial, the message's type,
 * and a count that moves with every message). Nothing is timed on the
 * workers, so the accounting costs them nothing:
 *
 *   - an actor found in a handler is charged one sampling period: its
 *     handler time, summed over many samples, is a fair estimate;
 *   - a call seen in k >= 2 samples in a row lasted about k periods: it
 *     goes into the histogram of handler time and the actor's longest
 *     call; shorter calls all count in the first bucket;
 *   - a call seen for longer than the threshold is a slow_handler event.
 */
#include "observe/control.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

const uint32_t gr__obs_bucket_ms[GR__OBS_BUCKETS] = {
    2 * GR__OBS_SAMPLE_MS, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

static gr__obs_time *slot(gr__control *c, uint64_t serial, bool add)
{
    size_t i = (size_t)(serial * 0x9E3779B97F4A7C15u) % GR__OBS_TIMES;
    for (size_t k = 0; k < GR__OBS_TIMES; k++, i = (i + 1) % GR__OBS_TIMES) {
        if (c->times[i].serial == serial)
            return &c->times[i];
        if (c->times[i].serial == 0) {
            if (!add)
                return NULL;
            if (c->ntimes == GR__OBS_TIMES * 3 / 4) { /* Full: start again. */
                memset(c->times, 0, sizeof c->times);
                c->ntimes = 0;
                i = (size_t)(serial * 0x9E3779B97F4A7C15u) % GR__OBS_TIMES;
            }
            c->ntimes++;
            c->times[i].serial = serial;
            return &c->times[i];
        }
    }
    return NULL;
}

const gr__obs_time *gr__obs_time_of(gr__control *c, uint64_t serial)
{
    return slot(c, serial, false);
}

/* Reports a handler call of actor serial on a message of type that has
 * run elapsed_ns so far. */
static void report_slow(gr__control *c, uint64_t serial, uint32_t type,
                        uint64_t elapsed_ns)
{
    char behaviour[GR_NAME_MAX + 1];
    if (!gr__system_behaviour_of(c->sys, serial, behaviour, sizeof behaviour))
        return; /* It has finished meanwhile. */
    gr_event ev = {.kind = GR_EV_SLOW_HANDLER,
                   .level = GR_LOG_WARN,
                   .actor = {serial, gr__system_node_id(c->sys),
                             gr__system_incarnation(c->sys)},
                   .behaviour = behaviour,
                   .msg_type = type,
                   .elapsed_ms = elapsed_ns / 1000000};
    gr__system_emit(c->sys, &ev);
}

/* Records the end of the call s saw: a call seen in two samples or more
 * goes into the histogram and its actor's longest call. */
static void call_ended(gr__control *c, const gr__obs_seen *s)
{
    uint64_t ns = s->last_ns - s->since_ns + GR__OBS_SAMPLE_MS * 1000000u;
    if (s->serial == 0 || s->last_ns == s->since_ns)
        return;
    gr__obs_time *t = slot(c, s->serial, false);
    if (t != NULL && ns > t->max_ns)
        t->max_ns = ns;
    size_t b = 0;
    while (b < GR__OBS_BUCKETS && ns > gr__obs_bucket_ms[b] * 1000000ull)
        b++;
    c->hist[b]++;
}

void gr__obs_sample(gr__control *c, uint64_t now)
{
    unsigned n = gr__system_threads(c->sys);
    unsigned busy = 0;
    for (unsigned i = 0; i < n && i < GR__OBS_THREADS; i++) {
        uint64_t serial, seq;
        uint32_t type;
        gr__system_thread_now(c->sys, i, &serial, &type, &seq);
        gr__obs_seen *s = &c->seen[i];
        if (serial != s->serial || seq != s->seq) {
            call_ended(c, s);
            *s = (gr__obs_seen){serial, seq, type, now, now, false};
        } else {
            s->last_ns = now;
        }
        if (serial == 0)
            continue;
        busy++;
        c->samples++;
        gr__obs_time *t = slot(c, serial, true);
        if (t != NULL)
            t->samples++;
        if (!s->reported && now - s->since_ns >= c->slow_ns) {
            s->reported = true;
            report_slow(c, serial, type, now - s->since_ns);
        }
    }
    c->busy_sum += busy;
    c->busy_samples++;
    if (now - c->window_start_ns >= 1000000000u) {
        c->busy = (double)c->busy_sum / (double)c->busy_samples;
        c->busy_sum = c->busy_samples = 0;
        c->window_start_ns = now;
    }
}

void gr__obs_figures_own(gr__control *c, gr__obs_figures *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", gr__system_node_name(c->sys));
    f->pid = (int64_t)getpid();
    gr_system_stats(c->sys, &f->s);
    f->busy = c->busy;
    f->time_ns = c->samples * GR__OBS_SAMPLE_MS * 1000000ull;
    f->calls = f->s.delivered;
    uint64_t long_calls = 0;
    for (size_t b = 0; b <= GR__OBS_BUCKETS; b++) {
        f->hist[b] = c->hist[b];
        long_calls += c->hist[b];
    }
    /* Every other call was shorter than the first bucket's bound. */
    if (f->calls > long_calls)
        f->hist[0] += f->calls - long_calls;
    else
        f->calls = long_calls;
}
