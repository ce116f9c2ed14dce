/*
 * The control endpoint: a Unix socket per running system through which
 * the `grove` tool sees it (docs/observer.md). Opt-in (gr_config.control
 * or GROVE_CONTROL=1), the root process only.
 *
 * The socket lives in a directory only its user can enter
 * ($XDG_RUNTIME_DIR/grove, else /tmp/grove-<uid>, mode 0700), is named
 * <name>.<pid>.sock (mode 0600), and a connection from another uid is
 * refused (SO_PEERCRED) and logged. Files of systems that are gone are
 * removed at start.
 *
 * One thread of its own serves it, so a query may block (it asks
 * supervisors for their children like any outside caller) without
 * touching a worker. The protocol is lines: the server says
 * "grove-control 1 NAME PID", the client sends one request line, the
 * server answers and closes, except "events", which says "following"
 * once the client follows, then streams until the client goes. Events reach it
 * through a tap in the event emitter: a bounded ring, filled only while someone
 * follows.
 */
#define _GNU_SOURCE /* struct ucred */

#include "actor/runtime.h"
#include "observe/paths.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <grove/event.h>
#include <grove/supervisor.h>

/* The protocol's version, in the greeting. */
#define PROTOCOL_VERSION 1
/* Events kept for followers that lag. */
#define RING 1024
/* Clients served at once. */
#define MAX_CLIENTS 16
/* Supervisors started with gr_supervisor_start that the tree starts at. */
#define MAX_ROOTS 16
/* Node processes whose pid the tree shows. */
#define MAX_NODES 64
/* Children one supervisor lists in the tree. */
#define MAX_CHILDREN 256
/* How often the sampler looks at what each runtime thread runs. */
#define SAMPLE_MS 5
/* Actors whose handler time the sampler keeps (a hash table; cleared when
 * three quarters full, so figures restart then). */
#define TIMES 8192
/* Runtime threads the sampler follows. */
#define MAX_THREADS 128
/* Actors listed per slice of the id table, between which the control
 * thread yields. */
#define SLICE 4096

typedef struct entry {
    gr_event_kind kind;
    int tracer; /* A trace record for that client; -1: an event. */
    char json[1024];
    char text[512];
} entry;

/* A node child's process, as node events tell it. */
typedef struct node_pid {
    gr_ref standin;
    char name[GR_NAME_MAX + 1];
    int64_t pid;
} node_pid;

/* Handler time of one actor, in samples. */
typedef struct time_slot {
    uint64_t serial; /* 0: free. */
    uint64_t samples;
} time_slot;

/* What the sampler last saw on one runtime thread. */
typedef struct thread_seen {
    uint64_t serial, seq;
    uint64_t since_ns; /* When that handler call was first seen. */
    bool reported;     /* Its slow_handler event is out. */
} thread_seen;

typedef enum follow { NOT = 0, TEXT, JSON } follow;

/* What one tracing client traces: an actor, or every actor of a
 * behaviour. */
typedef struct target {
    bool on;
    uint64_t serial; /* 0: by behaviour. */
    char behaviour[GR_NAME_MAX + 1];
} target;

typedef struct client {
    int fd; /* -1: free. */
    char in[256];
    size_t have;
    follow mode;
    bool tracing; /* Its entries are its trace records, not events. */
    struct gr__control *owner;
    int index;    /* In owner->clients. */
    int kind;     /* -1: every kind. */
    uint64_t seq; /* Next ring entry to send. */
} client;

struct gr__control {
    gr_system *sys;
    pthread_t thread;
    bool started;
    int listen_fd;
    int http_fd; /* The metrics listener (TCP), or -1. */
    int wake[2]; /* Events and stop. */
    atomic_bool stop;
    bool closed; /* Guarded by lock: the tap drops what comes. */
    atomic_int followers;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char name[GR_NAME_MAX + 1];
    uint64_t started_ns;
    pthread_mutex_t lock; /* The ring, roots and nodes. */
    entry ring[RING];
    uint64_t head; /* Entries ever written. */
    gr_ref roots[MAX_ROOTS];
    size_t nroots;
    node_pid nodes[MAX_NODES];
    target targets[MAX_CLIENTS]; /* Guarded by lock; by client index. */
    client clients[MAX_CLIENTS];
    /* The sampler's (the control thread's alone): */
    uint64_t slow_ns;
    uint64_t next_sample_ns;
    time_slot times[TIMES];
    size_t ntimes;
    thread_seen seen[MAX_THREADS];
    /* Threads found running an actor, summed over the samples of the
     * current second, and the last full second's average. */
    uint64_t busy_sum, busy_samples, window_start_ns;
    double busy;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the directory and the socket ---- */

/* The per-user directory; false (logged) when it cannot be made safe. */
static bool user_dir(gr__control *c, char *dir, size_t size)
{
    struct stat st;
    gr__control_dir(dir, size);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        gr__log(gr__system_log(c->sys), GR_LOG_ERROR,
                "control: cannot make %s: %s", dir, strerror(errno));
        return false;
    }
    /* Someone else's, or open to others: not a place for our socket. */
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 077) != 0) {
        gr__log(gr__system_log(c->sys), GR_LOG_ERROR,
                "control: %s is not a directory of this user with mode "
                "0700; not listening",
                dir);
        return false;
    }
    return true;
}

/* Removes socket files in dir that nothing listens on any more. */
static void remove_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *dot = strrchr(e->d_name, '.');
        if (dot == NULL || strcmp(dot, ".sock") != 0)
            continue;
        const char *p = dot;
        while (p > e->d_name && p[-1] != '.')
            p--;
        long pid = p > e->d_name ? strtol(p, NULL, 10) : 0;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (gr__control_socket_dead(path, pid))
            unlink(path);
    }
    closedir(d);
}

static bool listen_on(gr__control *c, const char *dir)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int n = snprintf(a.sun_path, sizeof a.sun_path, "%s/%s.%d.sock", dir,
                     c->name, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof a.sun_path) {
        gr__log(gr__system_log(c->sys), GR_LOG_ERROR,
                "control: the socket path under %s is too long", dir);
        return false;
    }
    snprintf(c->path, sizeof c->path, "%s", a.sun_path);
    unlink(c->path); /* Ours from an earlier system of this process. */
    c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->listen_fd < 0 ||
        bind(c->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        chmod(c->path, 0600) != 0 || listen(c->listen_fd, 16) != 0) {
        gr__log(gr__system_log(c->sys), GR_LOG_ERROR,
                "control: cannot listen on %s: %s", c->path, strerror(errno));
        return false;
    }
    return true;
}

/* ---- the sampler ---- */

static time_slot *time_of(gr__control *c, uint64_t serial, bool add)
{
    size_t i = (size_t)(serial * 0x9E3779B97F4A7C15u) % TIMES;
    for (size_t k = 0; k < TIMES; k++, i = (i + 1) % TIMES) {
        if (c->times[i].serial == serial)
            return &c->times[i];
        if (c->times[i].serial == 0) {
            if (!add)
                return NULL;
            if (c->ntimes == TIMES * 3 / 4) { /* Full: start again. */
                memset(c->times, 0, sizeof c->times);
                c->ntimes = 0;
                i = (size_t)(serial * 0x9E3779B97F4A7C15u) % TIMES;
            }
            c->ntimes++;
            c->times[i].serial = serial;
            return &c->times[i];
        }
    }
    return NULL;
}

/* Reports a handler call of actor serial on a message of type that has
 * run elapsed_ns so far. */
static void report_slow(gr__control *c, uint64_t serial, uint32_t type,
                        uint64_t elapsed_ns)
{
    char behaviour[GR_NAME_MAX + 1];
    if (!gr__system_behaviour_of(c->sys, serial, behaviour, sizeof behaviour))
        return; /* It has finished meanwhile. */
    gr_event ev = {.kind = GR_EV_SLOW_HANDLER,
                   .level = GR_LOG_WARN,
                   .actor = {serial, gr__system_node_id(c->sys),
                             gr__system_incarnation(c->sys)},
                   .behaviour = behaviour,
                   .msg_type = type,
                   .elapsed_ms = elapsed_ns / 1000000};
    gr__system_emit(c->sys, &ev);
}

/* Looks at what each runtime thread runs: a sample of handler time for
 * its actor, and a slow_handler event for a call that outlasts the
 * threshold. */
static void sample(gr__control *c, uint64_t now)
{
    unsigned n = gr__system_threads(c->sys);
    unsigned busy = 0;
    for (unsigned i = 0; i < n && i < MAX_THREADS; i++) {
        uint64_t serial, seq;
        uint32_t type;
        gr__system_thread_now(c->sys, i, &serial, &type, &seq);
        thread_seen *s = &c->seen[i];
        if (serial == 0) {
            s->serial = 0;
            continue;
        }
        busy++;
        time_slot *t = time_of(c, serial, true);
        if (t != NULL)
            t->samples++;
        if (serial != s->serial || seq != s->seq) {
            *s = (thread_seen){serial, seq, now, false};
        } else if (!s->reported && now - s->since_ns >= c->slow_ns) {
            s->reported = true;
            report_slow(c, serial, type, now - s->since_ns);
        }
    }
    c->busy_sum += busy;
    c->busy_samples++;
    if (now - c->window_start_ns >= 1000000000u) {
        c->busy = (double)c->busy_sum / (double)c->busy_samples;
        c->busy_sum = c->busy_samples = 0;
        c->window_start_ns = now;
    }
}

/* Opens the metrics listener when gr_config.metrics (or GROVE_METRICS)
 * names an address, "IPV4:PORT"; false (logged) when it cannot. */
static bool listen_http(gr__control *c, const gr_config *cfg)
{
    const char *addr = cfg->metrics;
    if (addr == NULL || *addr == '\0')
        addr = getenv("GROVE_METRICS");
    if (addr == NULL || *addr == '\0')
        return true;
    char host[64];
    const char *colon = strrchr(addr, ':');
    struct sockaddr_in a = {.sin_family = AF_INET};
    char *end;
    long port = colon != NULL ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || (size_t)(colon - addr) >= sizeof host ||
        *end != '\0' || colon[1] == '\0' || port < 0 || port > 65535) {
        gr__log(gr__system_log(c->sys), GR_LOG_ERROR,
                "control: metrics address \"%s\" is not IPV4:PORT", addr);
        return false;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        gr__log(gr__system_log(c->sys), GR_LOG_ERROR,
                "control: metrics address \"%s\" is not IPV4:PORT", addr);
        return false;
    }
    a.sin_port = htons((uint16_t)port);
    int one = 1;
    c->http_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->http_fd < 0 ||
        setsockopt(c->http_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) !=
            0 ||
        bind(c->http_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(c->http_fd, 16) != 0) {
        gr__log(gr__system_log(c->sys), GR_LOG_ERROR,
                "control: cannot serve metrics on %s: %s", addr,
                strerror(errno));
        return false;
    }
    return true;
}

/* ---- answers ---- */

/* A growing text buffer for one answer. */
typedef struct out {
    char *buf;
    size_t len, cap;
} out;

static void put(out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = 2 * o->cap + (size_t)n + 256;
        char *b = realloc(o->buf, cap);
        if (b == NULL)
            return;
        o->buf = b;
        o->cap = cap;
    }
}

static const char *const dl_names[GR_DL_COUNT] = {
    "no_actor",     "stopped",   "expired_reply", "mailbox_full",
    "unknown_name", "node_down", "backpressure"};

static unsigned nodes_up(gr__control *c)
{
    unsigned n = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < MAX_NODES; i++)
        n += c->nodes[i].pid != 0;
    pthread_mutex_unlock(&c->lock);
    return n;
}

static void answer_info(gr__control *c, out *o)
{
    put(o, "{\"name\":\"%s\",\"pid\":%d,\"nodes\":%u,\"uptime_s\":%.1f}\n",
        c->name, (int)getpid(), nodes_up(c),
        (double)(now_ns() - c->started_ns) / 1e9);
}

static void answer_stats(gr__control *c, out *o, bool json)
{
    gr_stats s;
    gr_system_stats(c->sys, &s);
    uint64_t dl = 0;
    for (int i = 0; i < GR_DL_COUNT; i++)
        dl += s.dead_letters[i];
    double up = (double)(now_ns() - c->started_ns) / 1e9;
    char ref[GR_REF_FORMAT_MAX];
    if (!json) {
        put(o,
            "system %s (pid %d), up %.1f s, %u workers, %u node%s\n"
            "actors: %" PRIu64 " alive, %" PRIu64 " spawned, %" PRIu64
            " exited\n"
            "messages: %" PRIu64 " sent, %" PRIu64 " delivered\n"
            "restarts: %" PRIu64 "\n"
            "dead letters: %" PRIu64,
            c->name, (int)getpid(), up, s.workers, nodes_up(c),
            nodes_up(c) == 1 ? "" : "s", s.alive, s.spawned, s.exited, s.sent,
            s.delivered, s.restarts, dl);
        for (int i = 0; i < GR_DL_COUNT; i++)
            if (s.dead_letters[i] != 0)
                put(o, " %s=%" PRIu64, dl_names[i], s.dead_letters[i]);
        put(o,
            "\nsockets: %" PRIu64 " open, %" PRIu64 " bytes in, %" PRIu64
            " bytes out\n",
            s.sockets_open, s.socket_bytes_in, s.socket_bytes_out);
        for (int i = 0; i < GR_STATS_DEEPEST && s.deepest[i].depth > 0; i++)
            put(o, "%s %s: %" PRIu64 " messages waiting\n",
                i == 0 ? "deepest mailboxes:" : "                  ",
                gr_ref_format(c->sys, s.deepest[i].actor, ref, sizeof ref),
                s.deepest[i].depth);
        return;
    }
    put(o,
        "{\"name\":\"%s\",\"pid\":%d,\"uptime_s\":%.1f,\"workers\":%u,"
        "\"nodes\":%u,\"alive\":%" PRIu64 ",\"spawned\":%" PRIu64
        ",\"exited\":%" PRIu64 ",\"sent\":%" PRIu64 ",\"delivered\":%" PRIu64
        ",\"restarts\":%" PRIu64 ",\"dead_letters\":{",
        c->name, (int)getpid(), up, s.workers, nodes_up(c), s.alive, s.spawned,
        s.exited, s.sent, s.delivered, s.restarts);
    for (int i = 0; i < GR_DL_COUNT; i++)
        put(o, "%s\"%s\":%" PRIu64, i ? "," : "", dl_names[i],
            s.dead_letters[i]);
    put(o,
        "},\"sockets_open\":%" PRIu64 ",\"socket_bytes_in\":%" PRIu64
        ",\"socket_bytes_out\":%" PRIu64 ",\"busy_threads\":%.2f,\"deepest\":[",
        s.sockets_open, s.socket_bytes_in, s.socket_bytes_out, c->busy);
    for (int i = 0; i < GR_STATS_DEEPEST && s.deepest[i].depth > 0; i++)
        put(o, "%s{\"actor\":\"%s\",\"depth\":%" PRIu64 "}", i ? "," : "",
            gr_ref_format(c->sys, s.deepest[i].actor, ref, sizeof ref),
            s.deepest[i].depth);
    put(o, "]}\n");
}

/* The Prometheus text exposition format (version 0.0.4). */
static void answer_metrics(gr__control *c, out *o)
{
    gr_stats s;
    gr_system_stats(c->sys, &s);
    struct {
        const char *name, *type, *help;
        uint64_t v;
    } m[] = {
        {"grove_actors_alive", "gauge", "Actors alive now.", s.alive},
        {"grove_actors_spawned_total", "counter", "Actors spawned.", s.spawned},
        {"grove_actors_exited_total", "counter", "Actors that exited.",
         s.exited},
        {"grove_messages_sent_total", "counter",
         "Messages accepted for delivery.", s.sent},
        {"grove_messages_delivered_total", "counter",
         "Messages handed to handlers or inboxes.", s.delivered},
        {"grove_restarts_total", "counter",
         "Children restarted by supervisors.", s.restarts},
        {"grove_workers", "gauge", "Worker threads.", s.workers},
        {"grove_nodes_up", "gauge", "Node processes up.", nodes_up(c)},
        {"grove_sockets_open", "gauge", "Sockets open.", s.sockets_open},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        put(o, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", m[i].name,
            m[i].help, m[i].name, m[i].type, m[i].name, m[i].v);
    put(o, "# HELP grove_dead_letters_total Messages that could not be "
           "delivered, by reason.\n# TYPE grove_dead_letters_total counter\n");
    for (int i = 0; i < GR_DL_COUNT; i++)
        put(o, "grove_dead_letters_total{reason=\"%s\"} %" PRIu64 "\n",
            dl_names[i], s.dead_letters[i]);
    put(o,
        "# HELP grove_socket_bytes_total Bytes through sockets.\n"
        "# TYPE grove_socket_bytes_total counter\n"
        "grove_socket_bytes_total{direction=\"in\"} %" PRIu64 "\n"
        "grove_socket_bytes_total{direction=\"out\"} %" PRIu64 "\n",
        s.socket_bytes_in, s.socket_bytes_out);
    put(o, "# HELP grove_mailbox_depth Messages waiting, deepest mailboxes.\n"
           "# TYPE grove_mailbox_depth gauge\n");
    char ref[GR_REF_FORMAT_MAX];
    for (int i = 0; i < GR_STATS_DEEPEST && s.deepest[i].depth > 0; i++)
        put(o, "grove_mailbox_depth{actor=\"%s\"} %" PRIu64 "\n",
            gr_ref_format(c->sys, s.deepest[i].actor, ref, sizeof ref),
            s.deepest[i].depth);
}

static const char *child_type(gr_child_type t)
{
    return t == GR_SUPERVISOR ? "supervisor" : t == GR_NODE ? "node" : "worker";
}

static const char *child_state(gr_child_state s)
{
    return s == GR_CHILD_RUNNING      ? "running"
           : s == GR_CHILD_RESTARTING ? "restarting"
                                      : "stopped";
}

/* The pid of the node whose stand-in is ref, or 0. */
static int64_t node_pid_of(gr__control *c, gr_ref ref, char *name, size_t size)
{
    int64_t pid = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < MAX_NODES && pid == 0; i++)
        if (c->nodes[i].pid != 0 && gr_ref_eq(c->nodes[i].standin, ref)) {
            pid = c->nodes[i].pid;
            snprintf(name, size, "%s", c->nodes[i].name);
        }
    pthread_mutex_unlock(&c->lock);
    return pid;
}

/* Lists sup's children, and theirs, depth levels in. */
static void walk(gr__control *c, out *o, gr_ref sup, int depth, bool json)
{
    gr_child_info *kids = calloc(MAX_CHILDREN, sizeof *kids);
    size_t n = 0;
    int rc = kids == NULL ? GR_ENOMEM
                          : gr_supervisor_which_children(
                                c->sys, sup, 1000, kids, MAX_CHILDREN, &n);
    if (rc != GR_OK) {
        if (json)
            put(o, "{\"depth\":%d,\"error\":\"%s\"}\n", depth, gr_strerror(rc));
        else
            put(o, "%*s(children unknown: %s)\n", depth * 2, "",
                gr_strerror(rc));
        free(kids);
        return;
    }
    char ref[GR_REF_FORMAT_MAX], node[GR_NAME_MAX + 1] = "";
    for (size_t i = 0; i < n && i < MAX_CHILDREN; i++) {
        const gr_child_info *k = &kids[i];
        gr_ref_format(c->sys, k->ref, ref, sizeof ref);
        int64_t pid = k->type == GR_NODE && k->state == GR_CHILD_RUNNING
                          ? node_pid_of(c, k->ref, node, sizeof node)
                          : 0;
        if (json)
            put(o,
                "{\"depth\":%d,\"id\":\"%s\",\"type\":\"%s\",\"state\":\"%s\","
                "\"ref\":\"%s\",\"pid\":%" PRId64 "}\n",
                depth, k->id, child_type(k->type), child_state(k->state), ref,
                pid);
        else if (pid != 0)
            put(o, "%*s%s  %s %s %s, process %s pid %" PRId64 "\n", depth * 2,
                "", k->id, child_type(k->type), child_state(k->state), ref,
                node, pid);
        else
            put(o, "%*s%s  %s %s %s\n", depth * 2, "", k->id,
                child_type(k->type), child_state(k->state), ref);
        if (k->type == GR_SUPERVISOR && k->state == GR_CHILD_RUNNING &&
            depth < 32)
            walk(c, o, k->ref, depth + 1, json);
    }
    if (n > MAX_CHILDREN && json)
        put(o, "{\"depth\":%d,\"more\":%zu}\n", depth, n - MAX_CHILDREN);
    else if (n > MAX_CHILDREN)
        put(o, "%*s... %zu more\n", depth * 2, "", n - MAX_CHILDREN);
    free(kids);
}

typedef struct listing {
    gr__control *c;
    out *o;
} listing;

/* Copies s into buf (size bytes) fit for inside a JSON string: quotes,
 * backslashes and control characters become '?'. */
static const char *json_safe(const char *s, char *buf, size_t size)
{
    size_t n = 0;
    for (; *s != '\0' && n + 1 < size; s++)
        buf[n++] =
            *s == '"' || *s == '\\' || (unsigned char)*s < 0x20 ? '?' : *s;
    buf[n] = '\0';
    return buf;
}

static void list_actor(const gr__actor_info *a, void *arg)
{
    listing *l = arg;
    char ref[GR_REF_FORMAT_MAX], name[GR_NAME_MAX + 1];
    const time_slot *t = time_of(l->c, a->ref.serial, false);
    put(l->o,
        "{\"ref\":\"%s\",\"behaviour\":\"%s\",\"depth\":%" PRIu64
        ",\"handled\":%" PRIu64 ",\"time_ms\":%" PRIu64 "}\n",
        gr_ref_format(l->c->sys, a->ref, ref, sizeof ref),
        json_safe(a->behaviour, name, sizeof name), a->depth, a->handled,
        t != NULL ? t->samples * SAMPLE_MS : 0);
}

/* Every live actor, one JSON line each: mailbox depth, messages taken
 * (runtime ones too) and handler time (sampled), walked in slices. */
static void answer_actors(gr__control *c, out *o)
{
    listing l = {c, o};
    uint32_t from = 0, next;
    do {
        gr__system_actors(c->sys, from, SLICE, list_actor, &l, &next);
        from = next;
        if (from != 0)
            sched_yield(); /* Let the workers have the table between. */
    } while (from != 0);
}

static void answer_tree(gr__control *c, out *o, bool json)
{
    gr_ref roots[MAX_ROOTS];
    pthread_mutex_lock(&c->lock);
    size_t n = c->nroots;
    memcpy(roots, c->roots, n * sizeof *roots);
    pthread_mutex_unlock(&c->lock);
    char ref[GR_REF_FORMAT_MAX];
    for (size_t i = 0; i < n; i++) {
        gr_ref_format(c->sys, roots[i], ref, sizeof ref);
        if (json)
            put(o,
                "{\"depth\":0,\"id\":\"\",\"type\":\"supervisor\","
                "\"state\":\"running\",\"ref\":\"%s\",\"pid\":0}\n",
                ref);
        else
            put(o, "supervisor %s\n", ref);
        walk(c, o, roots[i], 1, json);
    }
    if (n == 0 && !json)
        put(o, "(no supervisor started with gr_supervisor_start)\n");
}

/* ---- clients ---- */

/* Closes cl's connection; a follower stops counting, a tracer's target
 * goes. */
static void drop(client *cl)
{
    if (cl->fd < 0)
        return;
    close(cl->fd);
    cl->fd = -1;
    gr__control *c = cl->owner;
    if (cl->mode != NOT)
        atomic_fetch_sub(&c->followers, 1);
    if (cl->tracing) {
        pthread_mutex_lock(&c->lock);
        c->targets[cl->index].on = false;
        pthread_mutex_unlock(&c->lock);
        gr__system_tracing(c->sys, -1);
    }
    cl->mode = NOT;
    cl->tracing = false;
}

/* Sends all of len bytes without waiting; false (client dropped) when the
 * client does not take them. */
static bool send_all(client *cl, const char *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t k =
            send(cl->fd, buf + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k <= 0) {
            drop(cl);
            return false;
        }
        done += (size_t)k;
    }
    return true;
}

static int kind_of(const char *name)
{
    for (int k = 0; k < GR_EV_KIND_COUNT; k++)
        if (strcmp(gr_event_kind_name((gr_event_kind)k), name) == 0)
            return k;
    return -2;
}

/* Finds what name names: an actor by its ref as printed, a registered
 * name, or a behaviour some live actor runs. */
typedef struct finding {
    gr__control *c;
    const char *name;
    uint64_t serial;
    bool behaviour;
} finding;

static void find_actor(const gr__actor_info *a, void *arg)
{
    finding *f = arg;
    char ref[GR_REF_FORMAT_MAX];
    if (f->name[0] == '<' &&
        strcmp(gr_ref_format(f->c->sys, a->ref, ref, sizeof ref), f->name) == 0)
        f->serial = a->ref.serial;
    else if (strcmp(a->behaviour, f->name) == 0)
        f->behaviour = true;
}

/* Makes cl trace name; false (with why in o) when it names nothing. */
static bool start_trace(gr__control *c, client *cl, const char *name, bool json,
                        out *o)
{
    finding f = {c, name, 0, false};
    gr_ref ref;
    if (name[0] != '<' && gr_whereis(c->sys, name, &ref) == GR_OK)
        f.serial = ref.serial;
    else if (name[0] != '\0') {
        uint32_t from = 0, next;
        do {
            gr__system_actors(c->sys, from, SLICE, find_actor, &f, &next);
            from = next;
        } while (from != 0 && f.serial == 0);
    }
    if (f.serial == 0 && !f.behaviour) {
        put(o,
            "error: no actor, registered name or behaviour \"%s\" here "
            "(give a ref as grove tree prints it, e.g. <3.1@root>)\n",
            name);
        return false;
    }
    pthread_mutex_lock(&c->lock);
    target *t = &c->targets[cl->index];
    t->on = true;
    t->serial = f.serial;
    snprintf(t->behaviour, sizeof t->behaviour, "%s", f.serial ? "" : name);
    cl->seq = c->head;
    pthread_mutex_unlock(&c->lock);
    cl->tracing = true;
    cl->mode = json ? JSON : TEXT;
    cl->kind = -1;
    atomic_fetch_add(&c->followers, 1);
    gr__system_tracing(c->sys, 1);
    (void)send_all(cl, "following\n", 10);
    return true;
}

/* Whether target t covers actor serial running behaviour. */
static bool covers(const target *t, uint64_t serial, const char *behaviour)
{
    return t->on && (t->serial != 0 ? t->serial == serial
                                    : strcmp(t->behaviour, behaviour) == 0);
}

bool gr__control_traced(gr__control *c, uint64_t serial, const char *behaviour)
{
    bool yes = false;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < MAX_CLIENTS && !yes; i++)
        yes = covers(&c->targets[i], serial, behaviour);
    pthread_mutex_unlock(&c->lock);
    return yes;
}

void gr__control_trace(gr__control *c, bool in, uint64_t serial,
                       const char *behaviour, const gr_msg *m,
                       uint64_t handler_ns)
{
    char self[GR_REF_FORMAT_MAX], from[GR_REF_FORMAT_MAX],
        to[GR_REF_FORMAT_MAX];
    gr_ref me = {serial, gr__system_node_id(c->sys),
                 gr__system_incarnation(c->sys)};
    gr_ref_format(c->sys, me, self, sizeof self);
    gr_ref_format(c->sys, m->from, from, sizeof from);
    gr_ref_format(c->sys, m->to, to, sizeof to);
    char safe[GR_NAME_MAX + 1];
    json_safe(behaviour, safe, sizeof safe);
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < MAX_CLIENTS && !c->closed; i++) {
        if (!covers(&c->targets[i], serial, behaviour))
            continue;
        entry *e = &c->ring[c->head % RING];
        e->kind = GR_EV_KIND_COUNT;
        e->tracer = i;
        if (in)
            snprintf(e->text, sizeof e->text,
                     "in  %s (%s) from %s type 0x%" PRIx32 " corr %" PRIu64
                     " size %zu, handler %.3f ms",
                     self, behaviour, from, m->type, m->corr, m->len,
                     (double)handler_ns / 1e6);
        else
            snprintf(e->text, sizeof e->text,
                     "out %s (%s) to %s type 0x%" PRIx32 " corr %" PRIu64
                     " size %zu",
                     self, behaviour, to, m->type, m->corr, m->len);
        snprintf(e->json, sizeof e->json,
                 "{\"trace\":\"%s\",\"actor\":\"%s\",\"behaviour\":\"%s\","
                 "\"from\":\"%s\",\"to\":\"%s\",\"type\":%" PRIu32
                 ",\"corr\":%" PRIu64 ",\"size\":%zu,\"handler_us\":%" PRIu64
                 "}",
                 in ? "in" : "out", self, safe, from, to, m->type, m->corr,
                 m->len, handler_ns / 1000);
        c->head++;
        (void)!write(c->wake[1], "t", 1);
    }
    pthread_mutex_unlock(&c->lock);
}

/* Handles the client's one request line. */
static void on_request(gr__control *c, client *cl, char *line)
{
    char verb[32] = "", arg[32] = "", kind[64] = "";
    (void)sscanf(line, "%31s %31s %63s", verb, arg, kind);
    bool json = strcmp(arg, "json") == 0;
    out o = {0};
    bool formatted = strcmp(verb, "stats") == 0 || strcmp(verb, "tree") == 0 ||
                     strcmp(verb, "events") == 0 || strcmp(verb, "trace") == 0;
    if (formatted && !json && strcmp(arg, "text") != 0) {
        put(&o, "error: %s takes text or json, not \"%s\"\n", verb, arg);
    } else if (strcmp(verb, "events") == 0) {
        cl->kind = kind[0] != '\0' ? kind_of(kind) : -1;
        if (cl->kind == -2) {
            put(&o, "error: no event kind \"%s\" (kinds:", kind);
            for (int k = 0; k < GR_EV_KIND_COUNT; k++)
                put(&o, " %s", gr_event_kind_name((gr_event_kind)k));
            put(&o, ")\n");
        } else {
            cl->mode = json ? JSON : TEXT;
            pthread_mutex_lock(&c->lock);
            cl->seq = c->head; /* From the moment of attaching. */
            pthread_mutex_unlock(&c->lock);
            atomic_fetch_add(&c->followers, 1);
            /* Said once it holds: events from now on reach this client. */
            (void)send_all(cl, "following\n", 10);
            return;
        }
    } else if (strcmp(verb, "trace") == 0) {
        if (start_trace(c, cl, kind, json, &o))
            return;
    } else if (strcmp(verb, "info") == 0) {
        answer_info(c, &o);
    } else if (strcmp(verb, "stats") == 0) {
        answer_stats(c, &o, json);
    } else if (strcmp(verb, "metrics") == 0) {
        answer_metrics(c, &o);
    } else if (strcmp(verb, "tree") == 0) {
        answer_tree(c, &o, json);
    } else if (strcmp(verb, "actors") == 0) {
        answer_actors(c, &o);
    } else {
        put(&o,
            "error: no request \"%s\" (info, stats, metrics, tree, "
            "actors, events, trace)\n",
            verb);
    }
    if (o.buf != NULL)
        (void)send_all(cl, o.buf, o.len);
    free(o.buf);
    drop(cl);
}

static void on_readable(gr__control *c, client *cl)
{
    ssize_t k = recv(cl->fd, cl->in + cl->have, sizeof cl->in - 1 - cl->have,
                     MSG_DONTWAIT);
    if (k <= 0) {
        drop(cl);
        return;
    }
    if (cl->mode != NOT)
        return; /* A follower says nothing more; what it sends is ignored. */
    cl->have += (size_t)k;
    cl->in[cl->have] = '\0';
    char *nl = strchr(cl->in, '\n');
    if (nl != NULL) {
        *nl = '\0';
        on_request(c, cl, cl->in);
    } else if (cl->have == sizeof cl->in - 1) {
        drop(cl); /* No request is that long. */
    }
}

/* Sends each follower the events it has not seen. */
static void feed(gr__control *c)
{
    for (int i = 0; i < MAX_CLIENTS; i++) {
        client *cl = &c->clients[i];
        if (cl->fd < 0 || cl->mode == NOT)
            continue;
        for (;;) {
            entry e;
            uint64_t missed = 0;
            pthread_mutex_lock(&c->lock);
            if (cl->seq == c->head) {
                pthread_mutex_unlock(&c->lock);
                break;
            }
            if (c->head - cl->seq > RING) {
                missed = c->head - RING - cl->seq;
                cl->seq = c->head - RING;
            }
            e = c->ring[cl->seq % RING];
            cl->seq++;
            pthread_mutex_unlock(&c->lock);
            char note[96];
            if (missed != 0) {
                int n = snprintf(
                    note, sizeof note,
                    cl->mode == JSON
                        ? "{\"event\":\"missed\",\"count\":%" PRIu64 "}\n"
                        : "(%" PRIu64 " events missed)\n",
                    missed);
                if (!send_all(cl, note, (size_t)n))
                    break;
            }
            if (e.tracer != (cl->tracing ? cl->index : -1) ||
                (cl->kind >= 0 && (int)e.kind != cl->kind))
                continue;
            const char *line = cl->mode == JSON ? e.json : e.text;
            if (!send_all(cl, line, strlen(line)) || !send_all(cl, "\n", 1))
                break;
        }
    }
}

static void on_accept(gr__control *c)
{
    int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        cred.uid != getuid()) {
        gr__log(gr__system_log(c->sys), GR_LOG_WARN,
                "control: refused a connection from uid %u (pid %d): only "
                "uid %u may attach",
                (unsigned)cred.uid, (int)cred.pid, (unsigned)getuid());
        (void)!write(fd, "error: permission denied: another user\n", 39);
        close(fd);
        return;
    }
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (c->clients[i].fd < 0) {
            c->clients[i] = (client){.fd = fd, .owner = c, .index = i};
            char hello[128];
            int n = snprintf(hello, sizeof hello, "grove-control %d %s %d\n",
                             PROTOCOL_VERSION, c->name, (int)getpid());
            (void)send_all(&c->clients[i], hello, (size_t)n);
            return;
        }
    (void)!write(fd, "error: busy: too many clients\n", 30);
    close(fd);
}

/* Serves one HTTP request on the metrics listener: GET /metrics gets
 * the Prometheus text, anything else 404. A client has a second to send
 * its request line. */
static void on_http(gr__control *c)
{
    int fd = accept4(c->http_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    struct timeval tv = {1, 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[1024] = "";
    size_t have = 0;
    while (have < sizeof req - 1 && memchr(req, '\n', have) == NULL) {
        ssize_t k = recv(fd, req + have, sizeof req - 1 - have, 0);
        if (k <= 0)
            break;
        have += (size_t)k;
    }
    req[have] = '\0';
    out body = {0};
    bool found = strncmp(req, "GET /metrics ", 13) == 0 ||
                 strncmp(req, "GET /metrics?", 13) == 0;
    if (found)
        answer_metrics(c, &body);
    else
        put(&body, "not found: GET /metrics\n");
    char head[256];
    int n =
        snprintf(head, sizeof head,
                 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: "
                 "%zu\r\nConnection: close\r\n\r\n",
                 found ? "200 OK" : "404 Not Found",
                 found ? "text/plain; version=0.0.4" : "text/plain", body.len);
    client cl = {.fd = fd, .owner = c, .index = -1};
    if (send_all(&cl, head, (size_t)n) && body.buf != NULL)
        (void)send_all(&cl, body.buf, body.len);
    free(body.buf);
    if (cl.fd >= 0)
        close(fd);
}

static void *control_main(void *arg)
{
    gr__control *c = arg;
    while (!atomic_load(&c->stop)) {
        struct pollfd p[3 + MAX_CLIENTS];
        int map[3 + MAX_CLIENTS];
        nfds_t n = 0;
        p[n++] = (struct pollfd){c->listen_fd, POLLIN, 0};
        p[n++] = (struct pollfd){c->wake[0], POLLIN, 0};
        p[n++] = (struct pollfd){c->http_fd, POLLIN, 0}; /* -1: ignored */
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (c->clients[i].fd >= 0) {
                map[n] = i;
                p[n++] = (struct pollfd){c->clients[i].fd, POLLIN, 0};
            }
        uint64_t now = now_ns();
        int wait = now >= c->next_sample_ns
                       ? 0
                       : (int)((c->next_sample_ns - now) / 1000000) + 1;
        if (poll(p, n, wait) < 0 && errno != EINTR)
            break;
        now = now_ns();
        if (now >= c->next_sample_ns) {
            sample(c, now);
            c->next_sample_ns = now + SAMPLE_MS * 1000000u;
        }
        if (p[1].revents & POLLIN) {
            char buf[256];
            while (read(c->wake[0], buf, sizeof buf) > 0)
                ;
            feed(c);
        }
        for (nfds_t i = 3; i < n; i++)
            if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
                on_readable(c, &c->clients[map[i]]);
        if (p[2].revents & POLLIN)
            on_http(c);
        if (p[0].revents & POLLIN)
            on_accept(c);
    }
    return NULL;
}

/* ---- the system's side ---- */

int gr__control_start(gr_system *sys, const gr_config *cfg, gr__control **out)
{
    *out = NULL;
    const char *env = getenv("GROVE_CONTROL");
    bool asked = env != NULL &&
                 (strcmp(env, "1") == 0 || strcasecmp(env, "true") == 0 ||
                  strcasecmp(env, "yes") == 0 || strcasecmp(env, "on") == 0);
    if (env != NULL && env[0] != '\0' && !asked && strcmp(env, "0") != 0 &&
        strcasecmp(env, "false") != 0 && strcasecmp(env, "no") != 0 &&
        strcasecmp(env, "off") != 0)
        gr__log(gr__system_log(sys), GR_LOG_WARN,
                "control: GROVE_CONTROL=%s is not 1, true, yes or on; no "
                "control endpoint",
                env);
    const char *metrics = getenv("GROVE_METRICS");
    if (!cfg->control && !asked &&
        (cfg->metrics == NULL || cfg->metrics[0] == '\0') &&
        (metrics == NULL || metrics[0] == '\0'))
        return GR_OK; /* Metrics over HTTP turn it on too. */
    gr__control *c = calloc(1, sizeof *c);
    if (c == NULL)
        return GR_ENOMEM;
    c->sys = sys;
    c->listen_fd = c->http_fd = -1;
    c->wake[0] = c->wake[1] = -1;
    c->started_ns = c->window_start_ns = now_ns();
    c->slow_ns =
        (uint64_t)(cfg->slow_handler_ms ? cfg->slow_handler_ms : 1000) *
        1000000u;
    for (int i = 0; i < MAX_CLIENTS; i++)
        c->clients[i] = (client){.fd = -1, .owner = c, .index = i};
    pthread_mutex_init(&c->lock, NULL);
    /* The name: the config's, else the program's (/proc/self/comm). */
    if (cfg->name != NULL && cfg->name[0] != '\0') {
        snprintf(c->name, sizeof c->name, "%s", cfg->name);
    } else {
        FILE *f = fopen("/proc/self/comm", "r");
        if (f == NULL || fgets(c->name, sizeof c->name, f) == NULL)
            snprintf(c->name, sizeof c->name, "grove");
        if (f != NULL)
            fclose(f);
        c->name[strcspn(c->name, "\n")] = '\0';
    }
    /* A name is a file name here: nothing that leaves the directory. */
    for (char *p = c->name; *p != '\0'; p++)
        if (*p == '/' || *p == '.' || (unsigned char)*p < 0x21)
            *p = '_';
    char dir[sizeof c->path];
    if (!user_dir(c, dir, sizeof dir)) {
        gr__control_stop(c);
        gr__control_free(c);
        return GR_OK; /* Logged; the system runs without it. */
    }
    remove_stale(dir);
    if (!listen_on(c, dir) || !listen_http(c, cfg) ||
        pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
        pthread_create(&c->thread, NULL, control_main, c) != 0) {
        gr__control_stop(c);
        gr__control_free(c);
        return GR_OK;
    }
    c->started = true;
    gr__log(gr__system_log(sys), GR_LOG_INFO, "control: listening on %s",
            c->path);
    if (c->http_fd >= 0) {
        struct sockaddr_in a;
        socklen_t len = sizeof a;
        char host[INET_ADDRSTRLEN] = "?";
        if (getsockname(c->http_fd, (struct sockaddr *)&a, &len) == 0)
            inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
        gr__log(gr__system_log(sys), GR_LOG_INFO,
                "control: metrics on http://%s:%u/metrics", host,
                (unsigned)ntohs(a.sin_port));
    }
    *out = c;
    return GR_OK;
}

void gr__control_stop(gr__control *c)
{
    if (c == NULL)
        return;
    if (c->started) {
        atomic_store(&c->stop, true);
        (void)!write(c->wake[1], "s", 1);
        pthread_join(c->thread, NULL);
        c->started = false;
    }
    /* From here the tap drops events: its pipe is about to close. */
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < MAX_CLIENTS; i++)
        drop(&c->clients[i]);
    if (c->http_fd >= 0)
        close(c->http_fd);
    if (c->listen_fd >= 0) {
        close(c->listen_fd);
        unlink(c->path);
    }
    for (int i = 0; i < 2; i++)
        if (c->wake[i] >= 0)
            close(c->wake[i]);
    c->listen_fd = c->http_fd = c->wake[0] = c->wake[1] = -1;
}

void gr__control_free(gr__control *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void gr__control_event(gr__control *c, const gr_event *ev)
{
    if (c == NULL)
        return;
    /* Node processes, for the tree's pids: kept whether or not anyone
     * follows. */
    if (ev->kind == GR_EV_NODE_UP || ev->kind == GR_EV_NODE_DOWN) {
        pthread_mutex_lock(&c->lock);
        size_t free_at = MAX_NODES;
        for (size_t i = 0; i < MAX_NODES; i++) {
            if (c->nodes[i].pid == 0) {
                if (free_at == MAX_NODES)
                    free_at = i;
            } else if (gr_ref_eq(c->nodes[i].standin, ev->actor)) {
                c->nodes[i].pid = 0;
                free_at = i;
            }
        }
        if (ev->kind == GR_EV_NODE_UP && free_at < MAX_NODES) {
            c->nodes[free_at].standin = ev->actor;
            c->nodes[free_at].pid = ev->pid;
            snprintf(c->nodes[free_at].name, sizeof c->nodes[free_at].name,
                     "%s", ev->node);
        }
        pthread_mutex_unlock(&c->lock);
    }
    /* What a supervisor reports as well goes to followers as it goes to
     * the event log: not at all (below debug level, which lets it pass). */
    if (atomic_load_explicit(&c->followers, memory_order_relaxed) == 0 ||
        ((ev->flags & GR_EVENT_SUPERVISED) &&
         !gr__log_enabled(gr__system_log(c->sys), GR_LOG_DEBUG)))
        return;
    pthread_mutex_lock(&c->lock);
    if (!c->closed) {
        entry *e = &c->ring[c->head % RING];
        e->kind = ev->kind;
        e->tracer = -1;
        gr_event_format_json(ev, e->json, sizeof e->json);
        gr_event_format_text(ev, e->text, sizeof e->text);
        c->head++;
        (void)!write(c->wake[1], "e", 1); /* Full pipe: a wake is pending. */
    }
    pthread_mutex_unlock(&c->lock);
}

void gr__control_add_root(gr__control *c, gr_ref sup)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    if (c->nroots < MAX_ROOTS)
        c->roots[c->nroots++] = sup;
    pthread_mutex_unlock(&c->lock);
}
