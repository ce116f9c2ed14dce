#include "actor/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "off"};

const char *gr_log_level_name(gr_log_level level)
{
    if ((unsigned)level > GR_LOG_OFF)
        return "unknown";
    return level_names[level];
}

void gr__logger_init(gr__logger *l, const gr_config *cfg)
{
    l->level = GR_LOG_INFO;
    l->fn = NULL;
    l->arg = NULL;
    l->node = NULL;
    if (cfg == NULL)
        return;
    if (cfg->log_level_set || cfg->log_level != 0)
        l->level = cfg->log_level;
    l->fn = cfg->log_fn;
    l->arg = cfg->log_arg;
}

/* The default sink: one line on stderr, timestamped and naming the node
 * and process that wrote it ("12:00:00.000 grove worker-1[4242] error:
 * ..."), written in one call so that lines from different threads and
 * processes do not interleave. */
static void stderr_sink(const gr__logger *l, gr_log_level level,
                        const char *line)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    char out[GR__LOG_LINE_MAX + GR_NAME_MAX + 64];
    int n =
        snprintf(out, sizeof out, "%02d:%02d:%02d.%03ld grove%s%s[%d] %s: %s\n",
                 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                 l->node != NULL ? " " : "", l->node != NULL ? l->node : "",
                 (int)getpid(), gr_log_level_name(level), line);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof out) {
        n = sizeof out - 1;
        out[n - 1] = '\n';
    }
    fwrite(out, 1, (size_t)n, stderr);
}

void gr__log(const gr__logger *l, gr_log_level level, const char *fmt, ...)
{
    if (!gr__log_enabled(l, level))
        return;
    char line[GR__LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (l->fn != NULL)
        l->fn(l->arg, level, line);
    else
        stderr_sink(l, level, line);
}
