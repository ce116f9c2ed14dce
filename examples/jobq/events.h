/*
 * Job events: a job that died ("job_dead", level warn) or that is
 * delivered again after its worker died or its lease ran out
 * ("job_redelivered", level info). They go where the runtime's events go
 * (GROVE_LOG, as JSON lines), or to stderr as text.
 */
#ifndef JOBQ_EVENTS_H
#define JOBQ_EVENTS_H

#include "jobq.h"

/* Records one job event; reason says why (e.g. "signal SIGSEGV"). */
void jq_event(const char *kind, const char *level, uint64_t job,
              const char *type, uint32_t attempt, const char *reason);

#endif
