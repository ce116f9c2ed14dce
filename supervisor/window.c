/* Restart intensity (OTP's exact rule, in O(1)) and restart backoff. */
#include <stdlib.h>
#include <time.h>

#include "supervisor/sup.h"

/* Slots a window starts with (or fewer, if the intensity is lower). */
#define WINDOW_FIRST_CAP 8u

int gr__sup_window_init(sup_window *w, uint32_t intensity, uint32_t period_ms)
{
    *w = (sup_window){.limit = intensity, .period_ms = period_ms};
    if (intensity == 0)
        return GR_OK;
    /* A few slots now, so that a supervisor that cannot have them fails
     * to start; more only as restarts crowd the period. Allocating the
     * whole intensity up front cost 8 bytes per unit of intensity, and a
     * long run touched one more of them per restart until the ring
     * wrapped: memory that grew with restarts (issue 12). */
    w->cap = intensity < WINDOW_FIRST_CAP ? intensity : WINDOW_FIRST_CAP;
    w->t = malloc((size_t)w->cap * sizeof *w->t);
    return w->t != NULL ? GR_OK : GR_ENOMEM;
}

void gr__sup_window_free(sup_window *w)
{
    free(w->t);
    w->t = NULL;
}

/* Doubles the ring (at most to the limit), oldest entry first at index 0.
 * Returns false when out of memory. */
static bool grow(sup_window *w)
{
    uint32_t cap = w->cap > w->limit / 2 ? w->limit : w->cap * 2;
    uint64_t *t = malloc((size_t)cap * sizeof *t);
    if (t == NULL)
        return false;
    for (uint32_t i = 0, j = w->head; i < w->n; i++) {
        t[i] = w->t[j];
        if (++j == w->cap)
            j = 0;
    }
    free(w->t);
    w->t = t;
    w->cap = cap;
    w->head = 0;
    return true;
}

/*
 * OTP keeps the restarts R with R >= Now - Period (both ends inclusive)
 * and gives up when, counting the new one, more than intensity remain.
 * The ring holds the newest restarts oldest first (at most `intensity`),
 * so expired ones leave from the front (each once: amortised O(1)) and
 * "more than intensity" is "the window holds `intensity` already".
 */
bool gr__sup_window_add(sup_window *w, uint64_t now_ms)
{
    while (w->n > 0 && w->t[w->head] + w->period_ms < now_ms) {
        if (++w->head == w->cap) /* No division: this runs per restart. */
            w->head = 0;
        w->n--;
    }
    if (w->n == w->limit)
        return false;
    if (w->n == w->cap && !grow(w))
        return false;
    uint32_t tail = w->head + w->n;
    w->t[tail >= w->cap ? tail - w->cap : tail] = now_ms;
    w->n++;
    return true;
}

uint32_t gr__sup_window_count(const sup_window *w)
{
    return w->n;
}

uint32_t gr__sup_window_recent(const sup_window *w, uint64_t now_ms)
{
    uint32_t n = w->n;
    for (uint32_t i = 0, j = w->head; i < w->n; i++) {
        if (w->t[j] + w->period_ms < now_ms)
            n--; /* Expired, though not yet dropped. */
        if (++j == w->cap)
            j = 0;
    }
    return n;
}

uint64_t gr__sup_backoff_delay(const gr_backoff *b, uint32_t n, uint64_t *rng)
{
    if (b->min_ms == 0 && b->max_ms == 0)
        return 0;
    uint64_t max = b->max_ms > b->min_ms ? b->max_ms : b->min_ms;
    uint64_t d = b->min_ms;
    for (uint32_t i = 1; i < n && d < max; i++)
        d *= 2;
    if (d > max)
        d = max;
    if (b->jitter_pct > 0 && d > 0) {
        /* xorshift64: jitter needs no quality, only spread. */
        uint64_t x = *rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *rng = x;
        d += x % (d * b->jitter_pct / 100 + 1);
    }
    return d;
}

uint64_t gr__sup_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
