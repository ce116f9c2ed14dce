/*
 * Job events (a job is dead, a job is delivered again): JSON lines in the
 * file GROVE_LOG names, next to the runtime's restart and dead-letter
 * events, or text on stderr when it names none.
 */
#define _POSIX_C_SOURCE 200809L

#include "events.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Writes s into buf as a JSON string's body (quotes, backslashes and
 * control characters escaped), cut to fit size bytes. */
static void json_escape(const char *s, char *buf, size_t size)
{
    size_t n = 0;
    for (; *s != '\0' && n + 7 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(buf + n, size - n, "\\u%04x", c);
        } else {
            buf[n++] = (char)c;
        }
    }
    buf[n] = '\0';
}

void jq_event(const char *kind, const char *level, uint64_t job,
              const char *type, uint32_t attempt, const char *reason)
{
    char why[2 * JQ_ERROR_MAX + 16], ty[2 * JQ_NAME_MAX + 16], line[1024];
    const char *path = getenv("GROVE_LOG");
    if (path == NULL || *path == '\0') {
        fprintf(stderr, "jobq: %s: job %llu (%s) attempt %u: %s\n", kind,
                (unsigned long long)job, type, attempt, reason);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_escape(reason, why, sizeof why);
    json_escape(type, ty, sizeof ty);
    int n = snprintf(line, sizeof line,
                     "{\"event\":\"%s\",\"time_ns\":%lld,\"level\":\"%s\","
                     "\"job\":%llu,\"type\":\"%s\",\"attempt\":%u,"
                     "\"reason\":\"%s\"}\n",
                     kind, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec,
                     level, (unsigned long long)job, ty, attempt, why);
    /* One write of a whole line with O_APPEND: lines from the runtime's
     * writer and this one never interleave. */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (n > 0 && write(fd, line, (size_t)n) < 0) {
        /* Nothing better to do with a log line that cannot be written. */
    }
    close(fd);
}
