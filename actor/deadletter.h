/*
 * Dead letters: messages that could not be delivered. Each is counted by
 * reason and logged, the first few one by one and the rest as a summary at
 * shutdown (Akka's "first N, then a summary").
 */
#ifndef GROVE_ACTOR_DEADLETTER_H
#define GROVE_ACTOR_DEADLETTER_H

#include <stdatomic.h>

#include <grove/actor.h>

struct gr__logger;

/* Default number of dead letters logged one by one. */
#define GR__DEAD_LOG_LIMIT 10

/* Dead-letter counters of one system. */
typedef struct gr__deadletters {
    _Atomic(uint64_t) count[GR_DL_COUNT];
    _Atomic(uint64_t) logged; /* Records logged one by one so far. */
    uint64_t log_limit;
} gr__deadletters;

/* Sets the counters to zero and the per-record log limit. */
void gr__dead_init(gr__deadletters *d, unsigned log_limit);

/* Records one dead letter: counts it and maybe logs it. Any thread. */
void gr__dead_letter(gr__deadletters *d, const struct gr__logger *log,
                     const gr_msg *m, gr_dead_reason reason);

/* Logs how many dead letters were not logged one by one, if any. */
void gr__dead_summary(gr__deadletters *d, const struct gr__logger *log);

#endif
