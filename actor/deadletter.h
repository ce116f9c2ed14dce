/*
 * Dead letters: messages that could not be delivered. Each is counted by
 * reason, logged (the first few one by one, then a periodic summary, as
 * Akka's "first N, then a summary"), and sent as a record to subscribers.
 */
#ifndef GROVE_ACTOR_DEADLETTER_H
#define GROVE_ACTOR_DEADLETTER_H

#include <pthread.h>
#include <stdatomic.h>

#include <grove/deadletter.h>

struct gr__logger;
struct gr__worker;

/* Default number of dead letters logged one by one. */
#define GR__DEAD_LOG_LIMIT 10
/* Default period of the summary of dead letters not logged one by one. */
#define GR__DEAD_SUMMARY_MS 10000u

/* Dead-letter state of one system. */
typedef struct gr__deadletters {
    _Atomic(uint64_t) count[GR_DL_COUNT];
    _Atomic(uint64_t) logged; /* Records logged one by one so far. */
    uint64_t log_limit;
    unsigned summary_ms;
    /* I/O thread only: counts already covered by a summary line. */
    uint64_t summarised[GR_DL_COUNT];
    /* Subscribers, guarded by sub_lock; nsubs is read without it first. */
    pthread_mutex_t sub_lock;
    gr_ref *subs;
    size_t subs_cap;
    _Atomic(size_t) nsubs;
} gr__deadletters;

/* Sets the counters to zero and the logging limits (0: defaults). Returns
 * GR_OK or GR_ESYS. */
int gr__dead_init(gr__deadletters *d, unsigned log_limit, unsigned summary_ms);

/* Frees the subscriber list. */
void gr__dead_destroy(gr__deadletters *d);

/* Records one dead letter: counts it, maybe logs it, and sends it to the
 * subscribers. Any thread; w is its worker of sys, or NULL. */
void gr__dead_letter(gr_system *sys, struct gr__worker *w, const gr_msg *m,
                     gr_dead_reason reason);

/* gr__dead_letter() for a message sent to a name (name_len bytes, not
 * NUL-terminated; NULL for none), which the record keeps. */
void gr__dead_letter_named(gr_system *sys, struct gr__worker *w,
                           const gr_msg *m, const char *name, size_t name_len,
                           gr_dead_reason reason);

/* Logs how many dead letters no line has covered yet, if any (the I/O
 * thread's periodic summary, and once more at shutdown). */
void gr__dead_summary(gr__deadletters *d, const struct gr__logger *log);

/*
 * The policy for an application message m that could not be delivered
 * (reason: no actor, stopped when its target exited with why, node down,
 * backpressure, mailbox full): counts and logs a dead letter, except for timer
 * messages, which die silently with their owner. An undeliverable reply counts
 * as expired_reply; a request left unanswered gets its asker a
 * GR_MSG_ASK_FAILED.
 */
void gr__dead_message(gr_system *sys, const gr_msg *m, gr_dead_reason reason,
                      const gr_reason *why);

/* gr__dead_message() for a message sent to a name (as
 * gr__dead_letter_named()). */
void gr__dead_message_named(gr_system *sys, const gr_msg *m, const char *name,
                            size_t name_len, gr_dead_reason reason,
                            const gr_reason *why);

#endif
