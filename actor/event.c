#include "actor/event.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const kind_names[GR_EV_KIND_COUNT] = {
    "child_started", "child_exited",     "child_crashed",   "child_restarted",
    "start_failed",  "gave_up",          "spawned",         "exited",
    "crashed",       "init_failed",      "dead_letter",     "node_up",
    "node_down",     "socket_listening", "socket_accepted", "socket_closed",
    "slow_handler",
};

const char *gr_event_kind_name(gr_event_kind kind)
{
    return (unsigned)kind < GR_EV_KIND_COUNT ? kind_names[kind] : "unknown";
}

int gr__events_init(gr__events *e, const gr_config *cfg, gr__logger *log)
{
    e->fn = cfg->event_fn;
    e->arg = cfg->event_arg;
    e->json = cfg->event_json;
    e->fd = -1;
    const char *path = cfg->event_log ? cfg->event_log : getenv("GROVE_LOG");
    if (e->fn != NULL || path == NULL || *path == '\0')
        return GR_OK;
    e->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (e->fd < 0) {
        gr__log(log, GR_LOG_ERROR, "cannot open event log %s: %s", path,
                strerror(errno));
        return GR_ESYS;
    }
    return GR_OK;
}

void gr__events_destroy(gr__events *e)
{
    if (e->fd >= 0)
        close(e->fd);
    e->fd = -1;
}

gr_log_level gr__sup_event_level(gr_event_kind kind, const gr_reason *why)
{
    switch (kind) {
    case GR_EV_CHILD_CRASHED:
        return why->code == GR_EKILLED ? GR_LOG_WARN : GR_LOG_ERROR;
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

/* True for the kinds a supervisor emits. */
static bool is_sup_event(gr_event_kind kind)
{
    return kind <= GR_EV_GAVE_UP;
}

/* Text of a supervisor event: "supervisor <ref> (name): child ...". */
static void sup_text(const gr_event *ev, char *buf, size_t size, size_t *n)
{
    char sup[GR_REF_FORMAT_MAX], child[GR_REF_FORMAT_MAX], why[160];
    gr_ref_format(ev->sys, ev->supervisor, sup, sizeof sup);
    gr_ref_format(ev->sys, ev->child, child, sizeof child);
    gr_reason_format(&ev->reason, why, sizeof why);
    const char *sn = ev->sup_name != NULL ? ev->sup_name : "";
    /* A child by its id; a simple-one-for-one child, which has none, by
     * its behaviour. */
    char id[GR_NAME_MAX + 3];
    const char *b = ev->behaviour != NULL ? ev->behaviour : "";
    if (ev->child_id != NULL && ev->child_id[0] != '\0')
        snprintf(id, sizeof id, "\"%s\"", ev->child_id);
    else
        snprintf(id, sizeof id, "(%s)", b);
    put(buf, size, n, "supervisor %s%s%s%s: ", sup, *sn ? " (" : "", sn,
        *sn ? ")" : "");
    switch (ev->kind) {
    case GR_EV_CHILD_STARTED:
        put(buf, size, n, "child %s started as %s", id, child);
        break;
    case GR_EV_CHILD_EXITED:
        put(buf, size, n, "child %s %s exited: %s", id, child, why);
        break;
    case GR_EV_CHILD_CRASHED:
        put(buf, size, n, "child %s %s crashed: %s", id, child, why);
        break;
    case GR_EV_CHILD_RESTARTED:
        put(buf, size, n, "child %s restarted as %s", id, child);
        break;
    case GR_EV_START_FAILED:
        put(buf, size, n, "child %s failed to start: %s", id, why);
        break;
    default: /* GR_EV_GAVE_UP */
        put(buf, size, n,
            "restart intensity exceeded; stopping all children and exiting "
            "with shutdown");
        break;
    }
    put(buf, size, n, " [restarts in window: %u]", ev->restarts);
}

char *gr_event_format_text(const gr_event *ev, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return buf;
    size_t n = 0;
    buf[0] = '\0';
    char ref[GR_REF_FORMAT_MAX], from[GR_REF_FORMAT_MAX], why[160];
    const char *name = ev->behaviour != NULL ? ev->behaviour : "";
    gr_ref_format(ev->sys, ev->actor, ref, sizeof ref);
    gr_reason_format(&ev->reason, why, sizeof why);
    switch (ev->kind) {
    case GR_EV_SPAWNED:
        put(buf, size, &n, "spawn %s (%s)", ref, name);
        break;
    case GR_EV_EXITED:
    case GR_EV_CRASHED:
    case GR_EV_INIT_FAILED:
        put(buf, size, &n, "%s %s (%s): %s",
            ev->kind == GR_EV_INIT_FAILED ? "init failed"
            : ev->kind == GR_EV_CRASHED   ? "crash"
                                          : "exit",
            ref, name, why);
        break;
    case GR_EV_NODE_UP:
        put(buf, size, &n, "node %s up (pid %" PRId64 ")", ev->node, ev->pid);
        break;
    case GR_EV_NODE_DOWN:
        put(buf, size, &n, "node %s down (pid %" PRId64 "): %s", ev->node,
            ev->pid, why);
        break;
    case GR_EV_SOCKET_LISTENING:
        put(buf, size, &n, "socket %" PRIu64 " listening on %s (owner %s)",
            ev->socket, ev->address, ref);
        break;
    case GR_EV_SOCKET_ACCEPTED:
        put(buf, size, &n,
            "socket %" PRIu64 " accepted from %s on socket %" PRIu64
            " (owner %s)",
            ev->socket, ev->address, ev->listener, ref);
        break;
    case GR_EV_SOCKET_CLOSED:
        put(buf, size, &n, "socket %" PRIu64 " closed (owner %s): %s",
            ev->socket, ref, why);
        if (ev->unsent > 0)
            put(buf, size, &n, ", %" PRIu64 " bytes unsent", ev->unsent);
        break;
    case GR_EV_SLOW_HANDLER:
        put(buf, size, &n,
            "slow handler: %s (%s) has run %" PRIu64
            " ms on a message of type 0x%" PRIx32,
            ref, ev->behaviour, ev->elapsed_ms, ev->msg_type);
        break;
    case GR_EV_DEAD_LETTER:
        put(buf, size, &n, "dead letter: to %s",
            gr_ref_format(ev->sys, ev->dead.to, ref, sizeof ref));
        if (ev->dead.name[0] != '\0')
            put(buf, size, &n, " name \"%s\"", ev->dead.name);
        put(buf, size, &n,
            " from %s type 0x%" PRIx32 " corr %" PRIu64 " reason %s",
            gr_ref_format(ev->sys, ev->dead.from, from, sizeof from),
            ev->dead.type, ev->dead.corr, gr_dead_reason_name(ev->dead.reason));
        break;
    default:
        if (is_sup_event(ev->kind))
            sup_text(ev, buf, size, &n);
        else
            put(buf, size, &n, "event %d", (int)ev->kind);
        break;
    }
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

/* Appends ,"reason":"...","code":"GR_..." for ev's reason. */
static void put_json_reason(const gr_event *ev, char *buf, size_t size,
                            size_t *n)
{
    char why[160];
    gr_reason_format(&ev->reason, why, sizeof why);
    put(buf, size, n, ",\"reason\":");
    put_json_string(buf, size, n, why);
    put(buf, size, n, ",\"code\":\"%s\"", gr_errname(ev->reason.code));
}

char *gr_event_format_json(const gr_event *ev, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return buf;
    char a[GR_REF_FORMAT_MAX], b[GR_REF_FORMAT_MAX];
    size_t n = 0;
    buf[0] = '\0';
    put(buf, size, &n,
        "{\"event\":\"%s\",\"time_ns\":%" PRIu64 ",\"level\":\"%s\"",
        gr_event_kind_name(ev->kind), ev->time_ns,
        gr_log_level_name(ev->level));
    if (ev->kind == GR_EV_DEAD_LETTER) {
        put(buf, size, &n,
            ",\"from\":\"%s\",\"to\":\"%s\",\"type\":%" PRIu32
            ",\"corr\":%" PRIu64 ",\"reason\":\"%s\"",
            gr_ref_format(ev->sys, ev->dead.from, a, sizeof a),
            gr_ref_format(ev->sys, ev->dead.to, b, sizeof b), ev->dead.type,
            ev->dead.corr, gr_dead_reason_name(ev->dead.reason));
        put(buf, size, &n, ",\"name\":");
        put_json_string(buf, size, &n, ev->dead.name);
    } else if (ev->kind == GR_EV_NODE_UP || ev->kind == GR_EV_NODE_DOWN) {
        put(buf, size, &n, ",\"node\":");
        put_json_string(buf, size, &n, ev->node);
        put(buf, size, &n, ",\"pid\":%" PRId64, ev->pid);
        if (ev->kind == GR_EV_NODE_DOWN)
            put_json_reason(ev, buf, size, &n);
    } else if (ev->kind >= GR_EV_SOCKET_LISTENING &&
               ev->kind <= GR_EV_SOCKET_CLOSED) {
        put(buf, size, &n, ",\"socket\":%" PRIu64 ",\"actor\":\"%s\"",
            ev->socket, gr_ref_format(ev->sys, ev->actor, a, sizeof a));
        put(buf, size, &n, ",\"address\":");
        put_json_string(buf, size, &n, ev->address ? ev->address : "");
        put(buf, size, &n, ",\"listener\":%" PRIu64 ",\"unsent\":%" PRIu64,
            ev->listener, ev->unsent);
        put_json_reason(ev, buf, size, &n);
    } else if (ev->kind == GR_EV_SLOW_HANDLER) {
        put(buf, size, &n, ",\"actor\":\"%s\",\"behaviour\":",
            gr_ref_format(ev->sys, ev->actor, a, sizeof a));
        put_json_string(buf, size, &n, ev->behaviour ? ev->behaviour : "");
        put(buf, size, &n, ",\"type\":%" PRIu32 ",\"elapsed_ms\":%" PRIu64,
            ev->msg_type, ev->elapsed_ms);
    } else if (is_sup_event(ev->kind)) {
        put(buf, size, &n, ",\"supervisor\":\"%s\",\"sup_name\":",
            gr_ref_format(ev->sys, ev->supervisor, a, sizeof a));
        put_json_string(buf, size, &n, ev->sup_name ? ev->sup_name : "");
        put(buf, size, &n, ",\"child_id\":");
        put_json_string(buf, size, &n, ev->child_id ? ev->child_id : "");
        put(buf, size, &n, ",\"child\":\"%s\"",
            gr_ref_format(ev->sys, ev->child, b, sizeof b));
        put_json_reason(ev, buf, size, &n);
        put(buf, size, &n, ",\"restarts\":%u,\"behaviour\":", ev->restarts);
        put_json_string(buf, size, &n, ev->behaviour ? ev->behaviour : "");
    } else {
        put(buf, size, &n, ",\"actor\":\"%s\",\"behaviour\":",
            gr_ref_format(ev->sys, ev->actor, a, sizeof a));
        put_json_string(buf, size, &n, ev->behaviour ? ev->behaviour : "");
        put_json_reason(ev, buf, size, &n);
    }
    put(buf, size, &n, "}");
    /* A cut line is not JSON: say so rather than emit half an object. */
    if (n >= size)
        snprintf(buf, size, "{\"event\":\"%s\",\"truncated\":true}",
                 gr_event_kind_name(ev->kind));
    return buf;
}

bool gr__event_wanted(const gr__logger *log, gr_log_level level)
{
    return gr__log_enabled(log, level);
}

void gr__event_emit(const gr__events *e, const gr__logger *log, gr_event *ev)
{
    if (!gr__log_enabled(log, ev->level))
        return;
    /* Strings that do not apply read as "", never NULL. */
    if (ev->behaviour == NULL)
        ev->behaviour = "";
    if (ev->sup_name == NULL)
        ev->sup_name = "";
    if (ev->child_id == NULL)
        ev->child_id = "";
    if (ev->node == NULL)
        ev->node = "";
    ev->sys = e->sys;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ev->time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    struct gr__control *control =
        atomic_load_explicit(&e->control, memory_order_acquire);
    if (control != NULL)
        gr__control_event(control, ev);
    if (e->fn != NULL) {
        e->fn(e->arg, ev);
        return;
    }
    /* Lines: what a supervisor reports as well only at debug level. */
    if ((ev->flags & GR_EVENT_SUPERVISED) &&
        !gr__log_enabled(log, GR_LOG_DEBUG))
        return;
    char line[GR__LOG_LINE_MAX + 1];
    if (e->fd >= 0) {
        gr_event_format_json(ev, line, sizeof line - 1);
        size_t len = strlen(line);
        line[len++] = '\n';
        /* One write per line: appends from several threads do not mix. A
         * failed write loses the line; there is nowhere better to say so. */
        (void)!write(e->fd, line, len);
        return;
    }
    if (e->json)
        gr_event_format_json(ev, line, sizeof line);
    else
        gr_event_format_text(ev, line, sizeof line);
    gr__log(log, ev->level, "%s", line);
}
