/*
 * Small things every part of the server uses.
 */
#define _POSIX_C_SOURCE 200809L

#include "jobq.h"

#include <time.h>

int64_t jq_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *jq_state_name(int state)
{
    static const char *const names[JQ_STATES] = {
        "scheduled", "available", "reserved", "done", "dead", "cancelled"};
    return state >= 0 && state < JQ_STATES ? names[state] : "?";
}
