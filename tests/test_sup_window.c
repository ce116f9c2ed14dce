/*
 * Unit tests of the supervisor's restart window (supervisor/window.c):
 * OTP's rule (restarts R with R >= now - period count; more than
 * intensity gives up) against a brute-force model, and the ring's size,
 * which follows the most restarts within one period, not the intensity
 * (issue 12: a window allocated for the whole intensity was touched one
 * slot further per restart, so a long run's memory grew with restarts).
 */
#include "supervisor/sup.h"

#include <stdint.h>
#include <stdlib.h>

#include "testing.h"

/* The model: every restart kept, counted by a scan. */
#define MODEL_MAX 4096

struct model {
    uint64_t t[MODEL_MAX];
    size_t n;
    uint32_t intensity, period_ms;
};

static bool model_add(struct model *m, uint64_t now)
{
    size_t in = 0;
    for (size_t i = 0; i < m->n; i++)
        in += m->t[i] + m->period_ms >= now;
    if (in + 1 > m->intensity)
        return false;
    m->t[m->n++] = now;
    return true;
}

static void exact_rule(void)
{
    sup_window w;
    CHECK_EQ(gr__sup_window_init(&w, 3, 1000), GR_OK);
    CHECK(gr__sup_window_add(&w, 0));
    CHECK(gr__sup_window_add(&w, 1));
    CHECK(gr__sup_window_add(&w, 1000)); /* 0 is still in (inclusive). */
    CHECK(!gr__sup_window_add(&w, 1000));
    CHECK(gr__sup_window_add(&w, 1001)); /* 0 has left. */
    CHECK_EQ(gr__sup_window_count(&w), 3);
    gr__sup_window_free(&w);

    CHECK_EQ(gr__sup_window_init(&w, 0, 1000), GR_OK);
    CHECK(!gr__sup_window_add(&w, 0)); /* Intensity 0: the first gives up. */
    gr__sup_window_free(&w);
}

/* Random bursts and pauses, across ring growth and wrap-around, agree
 * with the model step by step. */
static void matches_model(void)
{
    static const uint32_t intensities[] = {1, 2, 5, 8, 9, 100, 1000};
    unsigned seed = 12345;
    for (size_t k = 0; k < sizeof intensities / sizeof intensities[0]; k++) {
        struct model *m = calloc(1, sizeof *m);
        CHECK(m != NULL);
        m->intensity = intensities[k];
        m->period_ms = 50;
        sup_window w;
        CHECK_EQ(gr__sup_window_init(&w, m->intensity, m->period_ms), GR_OK);
        uint64_t now = 1;
        int disagree = 0;
        while (m->n < MODEL_MAX - 1) {
            /* Mostly the same or the next millisecond; sometimes a pause. */
            unsigned r = (unsigned)rand_r(&seed) % 100;
            now += r < 60 ? 0 : r < 95 ? 1 : (uint64_t)(r - 40);
            bool want = model_add(m, now);
            disagree += gr__sup_window_add(&w, now) != want;
            if (!want) /* A gave-up supervisor starts over. */
                now += m->period_ms + 1;
        }
        CHECK_EQ(disagree, 0);
        CHECK(w.cap <= intensities[k]);
        gr__sup_window_free(&w);
        free(m);
    }
}

/* A huge intensity with restarts spread out: the ring stays small. */
static void size_follows_restarts_not_intensity(void)
{
    sup_window w;
    CHECK_EQ(gr__sup_window_init(&w, 1000000000u, 10), GR_OK);
    uint64_t refused = 0;
    for (uint64_t now = 0; now < 1000000; now++)
        refused += !gr__sup_window_add(&w, now);
    CHECK_EQ(refused, 0);
    /* 11 restarts fit in a 10 ms period (both ends count): 16 slots. */
    CHECK_EQ(gr__sup_window_count(&w), 11);
    CHECK(w.cap <= 16);
    gr__sup_window_free(&w);

    /* A burst grows it as far as needed, and no further than the limit. */
    CHECK_EQ(gr__sup_window_init(&w, 1000, 60000), GR_OK);
    for (int i = 0; i < 1000; i++)
        CHECK(gr__sup_window_add(&w, 5));
    CHECK(!gr__sup_window_add(&w, 5));
    CHECK_EQ(w.cap, 1000);
    gr__sup_window_free(&w);
}

TEST_MAIN(TEST_CASE(exact_rule), TEST_CASE(matches_model),
          TEST_CASE(size_follows_restarts_not_intensity))
