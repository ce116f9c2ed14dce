/*
 * The runtime's one logging path. Library code logs only through gr__log().
 */
#ifndef GROVE_ACTOR_LOG_H
#define GROVE_ACTOR_LOG_H

#include <grove/actor.h>
#include <grove/log.h>

/* Where a system's log lines go; fixed after start. */
typedef struct gr__logger {
    gr_log_level level;
    gr_log_fn fn; /* NULL: text on stderr. */
    void *arg;
    /* The node's name, for the stderr lines (NULL before there is one);
     * points at the system's, which is set before any actor runs. */
    const char *node;
} gr__logger;

/* Longest log line, in bytes; longer lines are cut. */
#define GR__LOG_LINE_MAX 512

/* Sets up a logger from the config (NULL for defaults). */
void gr__logger_init(gr__logger *l, const gr_config *cfg);

/* Returns nonzero when lines at level would be written. */
static inline int gr__log_enabled(const gr__logger *l, gr_log_level level)
{
    return level >= l->level && level < GR_LOG_OFF;
}

/* Formats and writes one line at level, if enabled. Any thread. */
void gr__log(const gr__logger *l, gr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
