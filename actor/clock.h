/*
 * The monotonic clock in nanoseconds: one definition for the runtime and
 * the layers above it (deadlines, timers, trace and steal timing).
 */
#ifndef GROVE_ACTOR_CLOCK_H
#define GROVE_ACTOR_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Returns CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t gr__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
