/*
 * Grove log facility: where the runtime's log lines go.
 *
 * Library code never prints directly; it writes through this facility. By
 * default lines at GR_LOG_INFO and above go to stderr as text. A callback
 * set in gr_config receives each line instead. Thread safety: the callback
 * may be called from any Grove thread, concurrently; it must not block long
 * and must not call back into the system that logged.
 */
#ifndef GROVE_LOG_H
#define GROVE_LOG_H

#include <grove/common.h>

/* Severity of a log line; lines below the configured level are dropped. */
typedef enum gr_log_level {
    GR_LOG_DEBUG = 0, /* Routine events: spawns, normal exits. */
    GR_LOG_INFO = 1,  /* Notable events: system start and stop. */
    GR_LOG_WARN = 2,  /* Something was lost or refused: dead letters. */
    GR_LOG_ERROR = 3, /* Something failed: crashes, system call errors. */
    GR_LOG_OFF = 4    /* Level that drops every line. */
} gr_log_level;

/*
 * A log sink: receives one finished line (no trailing newline) at a level.
 * The line is valid only during the call; copy it to keep it.
 */
typedef void (*gr_log_fn)(void *arg, gr_log_level level, const char *line);

/* Returns the lower-case name of a log level ("debug", "info", ...). */
GR_API const char *gr_log_level_name(gr_log_level level);

#endif
