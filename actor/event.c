#include "actor/event.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const kind_names[GR_EV_KIND_COUNT] = {
    "child_started",   "child_exited", "child_crashed",
    "child_restarted", "start_failed", "gave_up",
};

const char *gr_event_kind_name(gr_event_kind kind)
{
    return (unsigned)kind < GR_EV_KIND_COUNT ? kind_names[kind] : "unknown";
}

void gr__events_init(gr__events *e, const gr_config *cfg)
{
    e->fn = cfg->event_fn;
    e->arg = cfg->event_arg;
    e->json = cfg->event_json;
}

/* The level an event's log line gets: failures are errors. */
static gr_log_level event_level(const gr_event *ev)
{
    switch (ev->kind) {
    case GR_EV_CHILD_CRASHED:
        return ev->reason.code == GR_EKILLED ? GR_LOG_WARN : GR_LOG_ERROR;
    case GR_EV_START_FAILED:
    case GR_EV_GAVE_UP:
        return GR_LOG_ERROR;
    default:
        return GR_LOG_INFO;
    }
}

/* Appends to buf at *n; a piece that does not fit sets *n to size (the
 * output is then cut, and always NUL-terminated). */
static void put(char *buf, size_t size, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put(char *buf, size_t size, size_t *n, const char *fmt, ...)
{
    if (*n >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *n, size - *n, fmt, ap);
    va_end(ap);
    *n = k < 0 || (size_t)k >= size - *n ? size : *n + (size_t)k;
}

char *gr_event_format_text(const gr_event *ev, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return buf;
    char sup[GR__REF_STR_MAX], child[GR__REF_STR_MAX], why[160];
    gr__ref_format(sup, ev->supervisor);
    gr__ref_format(child, ev->child);
    gr_reason_format(&ev->reason, why, sizeof why);
    const char *sn = ev->sup_name != NULL ? ev->sup_name : "";
    const char *id = ev->child_id != NULL ? ev->child_id : "";
    size_t n = 0;
    buf[0] = '\0';
    put(buf, size, &n, "supervisor %s%s%s%s: ", sup, *sn ? " (" : "", sn,
        *sn ? ")" : "");
    switch (ev->kind) {
    case GR_EV_CHILD_STARTED:
        put(buf, size, &n, "child \"%s\" started as %s", id, child);
        break;
    case GR_EV_CHILD_EXITED:
        put(buf, size, &n, "child \"%s\" %s exited: %s", id, child, why);
        break;
    case GR_EV_CHILD_CRASHED:
        put(buf, size, &n, "child \"%s\" %s crashed: %s", id, child, why);
        break;
    case GR_EV_CHILD_RESTARTED:
        put(buf, size, &n, "child \"%s\" restarted as %s", id, child);
        break;
    case GR_EV_START_FAILED:
        put(buf, size, &n, "child \"%s\" failed to start: %s", id, why);
        break;
    case GR_EV_GAVE_UP:
        put(buf, size, &n,
            "restart intensity exceeded; stopping all children and exiting "
            "with shutdown");
        break;
    default:
        put(buf, size, &n, "event %d", (int)ev->kind);
        break;
    }
    put(buf, size, &n, " [restarts in window: %u]", ev->restarts);
    return buf;
}

/* Appends s as a JSON string (quotes included). */
static void put_json_string(char *buf, size_t size, size_t *n, const char *s)
{
    put(buf, size, n, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            put(buf, size, n, "\\%c", *p);
        else if (*p < 0x20)
            put(buf, size, n, "\\u%04x", *p);
        else
            put(buf, size, n, "%c", *p);
    }
    put(buf, size, n, "\"");
}

char *gr_event_format_json(const gr_event *ev, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return buf;
    char sup[GR__REF_STR_MAX], child[GR__REF_STR_MAX], why[160];
    gr__ref_format(sup, ev->supervisor);
    gr__ref_format(child, ev->child);
    gr_reason_format(&ev->reason, why, sizeof why);
    size_t n = 0;
    buf[0] = '\0';
    put(buf, size, &n,
        "{\"event\":\"%s\",\"time_ns\":%" PRIu64
        ",\"supervisor\":\"%s\",\"sup_name\":",
        gr_event_kind_name(ev->kind), ev->time_ns, sup);
    put_json_string(buf, size, &n, ev->sup_name ? ev->sup_name : "");
    put(buf, size, &n, ",\"child_id\":");
    put_json_string(buf, size, &n, ev->child_id ? ev->child_id : "");
    put(buf, size, &n, ",\"child\":\"%s\",\"reason\":", child);
    put_json_string(buf, size, &n, why);
    put(buf, size, &n, ",\"code\":\"%s\",\"restarts\":%u}",
        gr_errname(ev->reason.code), ev->restarts);
    /* A cut line is not JSON: say so rather than emit half an object. */
    if (n >= size)
        snprintf(buf, size, "{\"event\":\"%s\",\"truncated\":true}",
                 gr_event_kind_name(ev->kind));
    return buf;
}

void gr__event_emit(const gr__events *e, const gr__logger *log, gr_event *ev)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ev->time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (e->fn != NULL) {
        e->fn(e->arg, ev);
        return;
    }
    gr_log_level level = event_level(ev);
    if (!gr__log_enabled(log, level))
        return;
    char line[GR__LOG_LINE_MAX];
    if (e->json)
        gr_event_format_json(ev, line, sizeof line);
    else
        gr_event_format_text(ev, line, sizeof line);
    gr__log(log, level, "%s", line);
}
