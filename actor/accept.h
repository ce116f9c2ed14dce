/*
 * Accepting connections on a listener that a poll loop watches (the
 * distribution thread's, the control endpoint's): one rule for an accept
 * that fails for want of descriptors or memory. The listener stays
 * readable while connections wait, so polling it again at once would
 * spin; it rests GR__ACCEPT_REST_MS instead, and the shortage is logged
 * once, and its end once. (net/'s listeners, on libev, rest as long.)
 */
#ifndef GROVE_ACTOR_ACCEPT_H
#define GROVE_ACTOR_ACCEPT_H

#include <stdbool.h>
#include <stdint.h>

#include "actor/log.h"

/* How long a listener rests after an accept failed for want of
 * resources, ms. */
#define GR__ACCEPT_REST_MS 100

/* One listener's shortage; zero-initialised: none. */
typedef struct gr__accept_rest {
    bool starved;       /* Accepts fail; logged. */
    uint64_t resume_ns; /* Not polled before (gr__mono_ns). */
} gr__accept_rest;

/*
 * Accepts one connection on listen_fd (non-blocking) with accept4's flags
 * and returns it,
 * or -1 when none is to be had now: none waits, or accepting failed, which
 * rests r (logged to log as "<what>: accepting a connection failed").
 * Connections that gave up before they were taken are skipped.
 */
int gr__accept(int listen_fd, int flags, gr__accept_rest *r,
               const gr__logger *log, const char *what);

/* Returns the milliseconds the listener still rests: 0 means poll it. */
int gr__accept_rest_ms(const gr__accept_rest *r);

#endif
