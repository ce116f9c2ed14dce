/*
 * grove: attaches to running Grove systems of this user through their
 * control endpoints (docs/observer.md).
 *
 *   grove ls
 *   grove stats SYS [--json]
 *   grove metrics SYS
 *   grove tree SYS [--json]
 *   grove events SYS [-f] [--json] [--kind KIND]
 *   grove top SYS [--once] [--sort rate|depth|time] [-n N]
 *   grove trace SYS ACTOR|NAME|BEHAVIOUR [--seconds N] [--json]
 *
 * SYS is a system's name, its pid, or NAME.PID, as `grove ls` shows them.
 * Needs nothing but libc: the endpoint speaks lines.
 */
#define _GNU_SOURCE

#include "observe/paths.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The protocol version this tool speaks. */
#define PROTOCOL_VERSION 1

static int usage(void)
{
    fprintf(stderr, "usage: grove ls\n"
                    "       grove stats SYS [--json]\n"
                    "       grove metrics SYS\n"
                    "       grove tree SYS [--json]\n"
                    "       grove events SYS [-f] [--json] [--kind KIND]\n"
                    "       grove top SYS [--once] [--sort rate|depth|time] "
                    "[-n N]\n"
                    "       grove trace SYS ACTOR|NAME|BEHAVIOUR [--seconds N] "
                    "[--json]\n"
                    "  SYS: a name, a pid or NAME.PID from `grove ls`; only "
                    "systems started\n"
                    "  with gr_config.control or GROVE_CONTROL=1 can be "
                    "attached to\n");
    return 2;
}

/* One endpoint found in the directory. */
typedef struct found {
    char name[128]; /* NAME.PID */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    long pid;
} found;

/* The directory searched, for messages. */
static char dir[200];

/* Endpoints found stale (and removed) by the last scan, by NAME.PID. */
static char gone[64][128];
static int ngone;

/* Lists the live endpoints (at most max) of this user; removes the
 * stale ones, remembering them in gone. */
static int scan(found *out, int max)
{
    gr__control_dir(dir, sizeof dir);
    ngone = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".sock") != 0 ||
            len - 5 >= sizeof out[n].name ||
            strlen(dir) + 1 + len >= sizeof out[n].path)
            continue;
        snprintf(out[n].name, sizeof out[n].name, "%.*s", (int)(len - 5),
                 e->d_name);
        memcpy(out[n].path, dir, strlen(dir));
        out[n].path[strlen(dir)] = '/';
        memcpy(out[n].path + strlen(dir) + 1, e->d_name, len + 1);
        const char *dot = strrchr(out[n].name, '.');
        out[n].pid = dot != NULL ? strtol(dot + 1, NULL, 10) : 0;
        if (!gr__control_socket_dead(out[n].path, out[n].pid)) {
            n++;
            continue;
        }
        unlink(out[n].path); /* A system killed with SIGKILL left it. */
        if (ngone < 64)
            snprintf(gone[ngone++], sizeof gone[0], "%s", out[n].name);
    }
    closedir(d);
    return n;
}

/* How a read of one line ended. */
typedef enum line_end {
    LINE_READ,   /* A whole line came. */
    LINE_SILENT, /* None came in time: the system is stopped or busy. */
    LINE_CLOSED  /* The system closed the connection first. */
} line_end;

/* Reads one line (without its LF) from fd into buf (empty unless one
 * came), waiting up to ms for each byte. */
static line_end read_line(int fd, char *buf, size_t size, int ms)
{
    size_t n = 0;
    line_end end = LINE_READ;
    while (n + 1 < size) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, ms) != 1) {
            end = LINE_SILENT;
            break;
        }
        char ch;
        if (read(fd, &ch, 1) != 1) {
            end = LINE_CLOSED;
            break;
        }
        if (ch == '\n')
            break;
        buf[n++] = ch;
    }
    buf[end == LINE_READ ? n : 0] = '\0';
    return end;
}

/* How long one system gets to greet and to answer: a command about one
 * system waits for it; ls, which lists every system, does not let one
 * that is stuck (stopped, shutting down) hold up the rest. */
#define WAIT_ONE_MS 5000
#define WAIT_LS_MS  1000

/* Why attach failed. */
typedef enum attach_end {
    ATTACHED,
    ATTACH_GONE,   /* Nothing listens any more: the system stopped. */
    ATTACH_SILENT, /* No greeting in time: stopped (SIGSTOP) or busy. */
    ATTACH_REFUSED /* Refused, or not a Grove system of this release. */
} attach_end;

/* Connects to f and checks the greeting, waiting up to wait_ms for it;
 * the socket, or -1 with why in *end and, where wanted, in why. */
static int attach(const found *f, int wait_ms, attach_end *end, char *why,
                  size_t why_size)
{
    snprintf(why, why_size, "%s", "");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, f->path, sizeof a.sun_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        *end = fd >= 0 && (errno == ENOENT || errno == ECONNREFUSED)
                   ? ATTACH_GONE
                   : ATTACH_REFUSED;
        snprintf(why, why_size, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char hello[256];
    int version = 0;
    line_end got = read_line(fd, hello, sizeof hello, wait_ms);
    *end = got == LINE_SILENT   ? ATTACH_SILENT
           : got == LINE_CLOSED ? ATTACH_GONE
                                : ATTACH_REFUSED;
    if (got == LINE_READ && sscanf(hello, "grove-control %d", &version) == 1 &&
        version == PROTOCOL_VERSION) {
        *end = ATTACHED;
        return fd;
    }
    if (got == LINE_READ && version != 0)
        snprintf(why, why_size,
                 "it speaks control protocol %d; this grove speaks %d (use "
                 "the grove tool of the same Grove release)",
                 version, PROTOCOL_VERSION);
    else if (got == LINE_READ)
        snprintf(why, why_size, "%s",
                 strncmp(hello, "error: ", 7) == 0
                     ? hello + 7
                     : "it did not greet as a Grove system");
    close(fd);
    return -1;
}

/* Says why attaching to f failed (see attach). */
static void say_attach_failed(const found *f, attach_end end, int wait_ms,
                              const char *why)
{
    if (end == ATTACH_GONE)
        fprintf(stderr, "grove: %s is gone (it stopped meanwhile)\n", f->name);
    else if (end == ATTACH_SILENT)
        fprintf(stderr,
                "grove: %s did not answer in %d s (it is stopped, or too "
                "busy to answer)\n",
                f->name, wait_ms / 1000);
    else
        fprintf(stderr, "grove: cannot attach to %s: %s\n", f->name, why);
}

/* Attaches to f as attach does, saying why when it cannot. */
static int attach_or_say(const found *f, int wait_ms)
{
    attach_end end;
    char why[256];
    int fd = attach(f, wait_ms, &end, why, sizeof why);
    if (fd < 0)
        say_attach_failed(f, end, wait_ms, why);
    return fd;
}

/* Sends request (a whole line) on fd; whether it all went. A system that
 * hangs up meanwhile (it is stopping) gives EPIPE, not a SIGPIPE that
 * would end this tool with nothing said. */
static bool send_request(int fd, const char *request)
{
    size_t len = strlen(request);
    return send(fd, request, len, MSG_NOSIGNAL) == (ssize_t)len;
}

/* Whether sys names endpoint NAME.PID: by name (as given to the system:
 * its file name's form is compared), pid or both. */
static bool names(const char *sys, const char *name_pid)
{
    const char *dot = strrchr(name_pid, '.');
    size_t nl = dot != NULL ? (size_t)(dot - name_pid) : strlen(name_pid);
    char file_name[GR__CONTROL_NAME_SIZE];
    gr__control_file_name(file_name, sys);
    return strcmp(sys, name_pid) == 0 ||
           (dot != NULL && strcmp(sys, dot + 1) == 0) ||
           (strlen(file_name) == nl && strncmp(file_name, name_pid, nl) == 0);
}

/* Finds the one live endpoint that sys names; NULL (said why) if none or
 * many. */
static const found *resolve(const char *sys, found *all, int n)
{
    const found *hit = NULL;
    int hits = 0;
    for (int i = 0; i < n; i++)
        if (names(sys, all[i].name)) {
            hit = &all[i];
            hits++;
        }
    if (hits == 1)
        return hit;
    if (hits > 1) {
        fprintf(stderr,
                "grove: %d systems are named \"%s\"; give NAME.PID "
                "(grove ls lists them)\n",
                hits, sys);
        return NULL;
    }
    for (int i = 0; i < ngone; i++)
        if (names(sys, gone[i])) {
            fprintf(stderr,
                    "grove: %s is gone (nothing listens for it any more); "
                    "its stale socket is removed\n",
                    gone[i]);
            return NULL;
        }
    fprintf(stderr,
            "grove: no running system \"%s\" in %s (grove ls lists them; "
            "a system must be started with gr_config.control or "
            "GROVE_CONTROL=1)\n",
            sys, dir);
    if (sys[strspn(sys, "0123456789")] == '\0')
        fprintf(stderr,
                "grove: if %s is a node process, give its system's pid or "
                "name instead (grove tree SYS shows a system's nodes)\n",
                sys);
    return NULL;
}

static int ls(void)
{
    found all[256];
    int n = scan(all, 256);
    if (n == 0) {
        printf("no running Grove systems with a control endpoint in %s\n", dir);
        return 0;
    }
    printf("%-32s %8s %6s %10s\n", "SYSTEM", "PID", "NODES", "UPTIME");
    for (int i = 0; i < n; i++) {
        /* One that stopped meanwhile is left out; one that does not
         * answer (stopped with SIGSTOP, or busy) is listed as such. */
        attach_end end;
        char why[256];
        int fd = attach(&all[i], WAIT_LS_MS, &end, why, sizeof why);
        if (fd < 0 && end == ATTACH_GONE)
            continue;
        char line[512];
        double up = 0;
        unsigned nodes = 0;
        bool answered =
            fd >= 0 && send_request(fd, "info\n") &&
            read_line(fd, line, sizeof line, WAIT_LS_MS) == LINE_READ;
        if (answered) {
            const char *p = strstr(line, "\"nodes\":");
            const char *u = strstr(line, "\"uptime_s\":");
            if (p != NULL)
                nodes = (unsigned)strtoul(p + 8, NULL, 10);
            if (u != NULL)
                up = strtod(u + 11, NULL);
        }
        if (fd >= 0)
            close(fd);
        if (answered)
            printf("%-32s %8ld %6u %9.0fs\n", all[i].name, all[i].pid, nodes,
                   up);
        else
            printf("%-32s %8ld %6s %10s  (not answering)\n", all[i].name,
                   all[i].pid, "-", "-");
    }
    return 0;
}

/* Sends request to sys and copies the answer to stdout until the system
 * closes, or (follow_ms >= 0) until that long has passed. */
static int ask(const char *sys, const char *request, int follow_ms)
{
    found all[256];
    int n = scan(all, 256);
    const found *f = resolve(sys, all, n);
    if (f == NULL)
        return 1;
    int fd = attach_or_say(f, WAIT_ONE_MS);
    if (fd < 0)
        return 1;
    if (!send_request(fd, request)) {
        fprintf(stderr, "grove: %s: %s\n", f->name,
                errno == EPIPE || errno == ECONNRESET
                    ? "it hung up before it was asked (it is stopping)"
                    : strerror(errno));
        close(fd);
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    bool stream = strncmp(request, "events ", 7) == 0 ||
                  strncmp(request, "trace ", 6) == 0;
    if (stream) {
        char line[256];
        if (read_line(fd, line, sizeof line, WAIT_ONE_MS) != LINE_READ ||
            strcmp(line, "following") != 0) {
            bool usage_error = strncmp(line, "error: no event kind", 20) == 0;
            fprintf(stderr, "grove: %s: %s\n", f->name,
                    strncmp(line, "error: ", 7) == 0 ? line + 7
                                                     : "did not follow");
            close(fd);
            return usage_error ? 2 : 1;
        }
        if (request[0] == 'e')
            fprintf(stderr, "grove: following the events of %s\n", f->name);
        else
            fprintf(stderr, "grove: tracing in %s\n", f->name);
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = 0;
    for (;;) {
        int wait = -1;
        if (follow_ms >= 0) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            long spent = (t.tv_sec - t0.tv_sec) * 1000 +
                         (t.tv_nsec - t0.tv_nsec) / 1000000;
            if (spent >= follow_ms)
                break;
            wait = (int)(follow_ms - spent);
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, wait) == 0)
            break;
        char buf[4096];
        ssize_t k = read(fd, buf, sizeof buf);
        if (k <= 0) {
            /* A stream ends only when the system does. */
            if (stream) {
                fprintf(
                    stderr,
                    "grove: %s went away (the system stopped or was killed)\n",
                    f->name);
                rc = 1;
            }
            break;
        }
        if (strncmp(buf, "error: ", 7) == 0) {
            fprintf(stderr, "grove: %s: %.*s", f->name, (int)k - 7, buf + 7);
            rc = 1;
            continue;
        }
        fwrite(buf, 1, (size_t)k, stdout);
    }
    close(fd);
    return rc;
}

/* ---- top ---- */

/* Reads the whole answer to request from f into a malloc'd string; NULL
 * when it cannot, with why in *end and where wanted in why (see attach;
 * out of memory counts as refused). */
static char *fetch(const found *f, const char *request, attach_end *end,
                   char *why, size_t why_size)
{
    int fd = attach(f, WAIT_ONE_MS, end, why, why_size);
    if (fd < 0)
        return NULL;
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    *end = ATTACHED;
    if (buf == NULL)
        *end = ATTACH_REFUSED;
    else if (!send_request(fd, request))
        *end = ATTACH_GONE;
    while (*end == ATTACHED) {
        if (len + 4096 > cap) {
            char *b = realloc(buf, cap *= 2);
            if (b == NULL) {
                *end = ATTACH_REFUSED;
                break;
            }
            buf = b;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, WAIT_ONE_MS) != 1) {
            *end = ATTACH_SILENT;
            break;
        }
        ssize_t k = read(fd, buf + len, cap - len - 1);
        if (k <= 0)
            break; /* The whole answer: the system closes after it. */
        len += (size_t)k;
    }
    close(fd);
    if (*end != ATTACHED) {
        if (*end == ATTACH_REFUSED)
            snprintf(why, why_size, "%s", "out of memory");
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* One actor in a top snapshot. */
typedef struct actor_row {
    char ref[64], behaviour[64];
    unsigned long depth, handled, time_ms, max_ms;
    double rate; /* Messages a second since the last snapshot. */
    unsigned long time_delta;
} actor_row;

/* A snapshot: the actors, the system's counters, when they were read,
 * and the node processes that did not answer. */
typedef struct snap {
    actor_row *rows;
    size_t n;
    unsigned long sent, dead, restarts, alive;
    /* Dead letters by reason, as the system names them. */
    struct {
        char reason[24];
        unsigned long n;
    } dl[8];
    size_t ndl;
    double busy, uptime;
    double at; /* Seconds, monotonic: when the counters came. */
    char silent[512];
} snap;

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* now - before per second over dt; 0 when the count went down (a node
 * process restarted, counting from 0 again, or did not answer). */
static double per_s(unsigned long now, unsigned long before, double dt)
{
    return now >= before ? (double)(now - before) / dt : 0;
}

static unsigned long json_num(const char *json, const char *key)
{
    const char *at = strstr(json, key);
    return at != NULL ? strtoul(at + strlen(key), NULL, 10) : 0;
}

static int cmp_ref(const void *a, const void *b)
{
    return strcmp(((const actor_row *)a)->ref, ((const actor_row *)b)->ref);
}

/* Takes a snapshot of f; false when it cannot, with why in *end and
 * why (see fetch). */
static bool take(const found *f, snap *s, attach_end *end, char *why,
                 size_t why_size)
{
    memset(s, 0, sizeof *s);
    char *stats = fetch(f, "stats json\n", end, why, why_size);
    s->at = mono_s();
    char *actors =
        stats != NULL ? fetch(f, "actors\n", end, why, why_size) : NULL;
    if (actors == NULL) {
        free(stats);
        return false;
    }
    s->sent = json_num(stats, "\"sent\":");
    s->restarts = json_num(stats, "\"restarts\":");
    s->alive = json_num(stats, "\"alive\":");
    const char *b = strstr(stats, "\"busy_threads\":");
    s->busy = b != NULL ? strtod(b + 15, NULL) : 0;
    const char *u = strstr(stats, "\"uptime_s\":");
    s->uptime = u != NULL ? strtod(u + 11, NULL) : 0;
    /* "dead_letters":{"no_actor":0,...}: the totals come first. */
    const char *d = strstr(stats, "\"dead_letters\":{");
    for (const char *p = d != NULL ? d + 16 : NULL; p != NULL && *p == '"';) {
        unsigned long n = 0;
        int used = 0;
        char reason[24];
        if (sscanf(p, "\"%23[^\"]\":%lu%n", reason, &n, &used) != 2)
            break;
        s->dead += n;
        if (s->ndl < sizeof s->dl / sizeof s->dl[0]) {
            snprintf(s->dl[s->ndl].reason, sizeof s->dl[0].reason, "%s",
                     reason);
            s->dl[s->ndl++].n = n;
        }
        p += used;
        p = *p == ',' ? p + 1 : NULL;
    }
    size_t cap = 0;
    for (char *line = strtok(actors, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        if (s->n == cap) {
            actor_row *r =
                realloc(s->rows, (cap = cap ? 2 * cap : 256) * sizeof *r);
            if (r == NULL)
                break;
            s->rows = r;
        }
        actor_row *r = &s->rows[s->n];
        memset(r, 0, sizeof *r);
        char node[64], why[96];
        if (sscanf(line,
                   "{\"node\":\"%63[^\"]\",\"pid\":%*d,\"error\":\"%95[^\"]",
                   node, why) == 2) {
            size_t used = strlen(s->silent);
            snprintf(s->silent + used, sizeof s->silent - used,
                     "(process %s did not answer: %s)\n", node, why);
            continue;
        }
        if (sscanf(line,
                   "{\"ref\":\"%63[^\"]\",\"behaviour\":\"%63[^\"]\","
                   "\"depth\":%lu,\"handled\":%lu,\"time_ms\":%lu,"
                   "\"max_ms\":%lu}",
                   r->ref, r->behaviour, &r->depth, &r->handled, &r->time_ms,
                   &r->max_ms) == 6 ||
            sscanf(line,
                   "{\"ref\":\"%63[^\"]\",\"behaviour\":\"\",\"depth\":%lu,"
                   "\"handled\":%lu,\"time_ms\":%lu,\"max_ms\":%lu}",
                   r->ref, &r->depth, &r->handled, &r->time_ms,
                   &r->max_ms) == 5)
            s->n++;
    }
    free(stats);
    free(actors);
    qsort(s->rows, s->n, sizeof *s->rows, cmp_ref);
    return true;
}

static char sort_by = 'r'; /* r: rate, d: depth, t: time. */

static int cmp_top(const void *a, const void *b)
{
    const actor_row *x = a, *y = b;
    double kx = sort_by == 'd'   ? (double)x->depth
                : sort_by == 't' ? (double)x->time_delta
                                 : x->rate;
    double ky = sort_by == 'd'   ? (double)y->depth
                : sort_by == 't' ? (double)y->time_delta
                                 : y->rate;
    return kx < ky ? 1 : kx > ky ? -1 : strcmp(x->ref, y->ref);
}

/* Prints one screen: the totals and the first rows of now, with rates
 * against before over dt seconds. */
static void screen(const found *f, const snap *before, snap *now, double dt,
                   size_t rows)
{
    for (size_t i = 0; i < now->n; i++) {
        actor_row *r = &now->rows[i];
        const actor_row *old =
            bsearch(r, before->rows, before->n, sizeof *r, cmp_ref);
        /* A count that went down: another actor of the same ref, in a
         * node process that restarted. */
        bool same = old != NULL && old->handled <= r->handled;
        unsigned long h0 = same ? old->handled : 0;
        unsigned long t0 = same ? old->time_ms : 0;
        r->rate = (double)(r->handled - h0) / dt;
        r->time_delta = r->time_ms >= t0 ? r->time_ms - t0 : 0;
    }
    actor_row *sorted = malloc((now->n ? now->n : 1) * sizeof *sorted);
    if (sorted == NULL)
        return;
    memcpy(sorted, now->rows, now->n * sizeof *sorted);
    qsort(sorted, now->n, sizeof *sorted, cmp_top);
    printf("%s  up %.0f s  actors %lu  msgs/s %.0f  dead letters/s %.0f  "
           "restarts/s %.1f  busy threads %.2f\n",
           f->name, now->uptime, now->alive, per_s(now->sent, before->sent, dt),
           per_s(now->dead, before->dead, dt),
           per_s(now->restarts, before->restarts, dt), now->busy);
    /* Which reasons the dead letters had, when there were any. */
    const char *sep = "dead letters/s by reason:";
    for (size_t i = 0; i < now->ndl && i < before->ndl; i++) {
        double r = per_s(now->dl[i].n, before->dl[i].n, dt);
        if (r > 0 && strcmp(now->dl[i].reason, before->dl[i].reason) == 0) {
            printf("%s %s %.0f", sep, now->dl[i].reason, r);
            sep = ",";
        }
    }
    if (sep[0] == ',')
        printf("\n");
    printf("%-24s %-20s %10s %12s %12s %10s\n", "ACTOR", "BEHAVIOUR", "MAILBOX",
           "MSGS/S", "HANDLER MS/S", "LONGEST MS");
    for (size_t i = 0; i < now->n && i < rows; i++)
        printf("%-24s %-20s %10lu %12.0f %12.0f %10lu\n", sorted[i].ref,
               sorted[i].behaviour[0] ? sorted[i].behaviour : "-",
               sorted[i].depth, sorted[i].rate,
               (double)sorted[i].time_delta / dt, sorted[i].max_ms);
    fputs(now->silent, stdout);
    fflush(stdout);
    free(sorted);
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* grove top: two snapshots a second apart, then (unless once) a new
 * screen every second until interrupted. */
static int top(const char *sys, bool once, size_t rows)
{
    found all[256];
    int n = scan(all, 256);
    const found *f = resolve(sys, all, n);
    if (f == NULL)
        return 1;
    snap before, now;
    attach_end end;
    char why[256];
    if (!take(f, &before, &end, why, sizeof why)) {
        say_attach_failed(f, end, WAIT_ONE_MS, why);
        return 1;
    }
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    int rc = 0;
    bool silent = false; /* It did not answer last time. */
    while (!interrupted) {
        struct timespec second = {1, 0};
        nanosleep(&second, NULL); /* The screen's period. */
        if (interrupted)
            break;
        if (!take(f, &now, &end, why, sizeof why)) {
            /* A system that is stopped (SIGSTOP) or too busy to answer
             * may answer again: top waits for it, said once. */
            if (end == ATTACH_SILENT && !once) {
                if (!silent)
                    fprintf(stderr,
                            "grove: %s did not answer in %d s (it is "
                            "stopped, or too busy to answer); waiting for "
                            "it\n",
                            f->name, WAIT_ONE_MS / 1000);
                silent = true;
                continue;
            }
            if (end == ATTACH_GONE)
                fprintf(stderr,
                        "grove: %s went away (the system stopped or was "
                        "killed)\n",
                        f->name);
            else
                say_attach_failed(f, end, WAIT_ONE_MS, why);
            rc = 1;
            break;
        }
        if (silent)
            fprintf(stderr, "grove: %s answers again\n", f->name);
        silent = false;
        /* Between the two readings, however long the answers took. */
        double dt = now.at - before.at;
        if (!once && isatty(STDOUT_FILENO))
            printf("\x1b[H\x1b[2J"); /* Home, clear: a plain terminal. */
        screen(f, &before, &now, dt, rows);
        free(before.rows);
        before = now;
        if (once)
            break;
    }
    free(before.rows);
    return rc;
}

/* Reads a whole positive number; false (said why) if v is not one. */
static bool count(const char *flag, const char *v, long *out)
{
    char *end;
    errno = 0;
    *out = v != NULL ? strtol(v, &end, 10) : 0;
    if (v != NULL && errno == 0 && end != v && *end == '\0' && *out > 0)
        return true;
    fprintf(stderr, "grove: %s takes a whole number from 1, not \"%s\"\n", flag,
            v != NULL ? v : "");
    return false;
}

/* Says a flag needs a value, or is not one of cmd's; returns 2. */
static int bad_flag(const char *cmd, const char *flag, bool known)
{
    if (known)
        fprintf(stderr, "grove: %s needs a value\n", flag);
    else
        fprintf(stderr, "grove: %s is not a flag of %s\n", flag, cmd);
    return usage();
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "ls") == 0 && argc > 2) {
        fprintf(stderr, "grove: ls takes no arguments, not \"%s\"\n", argv[2]);
        return usage();
    }
    if (strcmp(cmd, "ls") == 0)
        return ls();
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "help") == 0) {
        (void)usage();
        return 0;
    }
    static const char *const cmds[] = {"stats",  "metrics", "tree",
                                       "events", "top",     "trace"};
    bool known = false;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        known = known || strcmp(cmd, cmds[i]) == 0;
    if (!known) {
        fprintf(stderr, "grove: no command \"%s\"\n", cmd);
        return usage();
    }
    if (argc < 3 || argv[2][0] == '-') {
        fprintf(stderr, "grove: %s needs SYS first: grove %s SYS ...\n", cmd,
                cmd);
        return usage();
    }
    if (strcmp(cmd, "top") == 0) {
        bool once = false;
        long rows = 20;
        for (int i = 3; i < argc; i++) {
            const char *v = i + 1 < argc ? argv[i + 1] : NULL;
            if (strcmp(argv[i], "--once") == 0) {
                once = true;
            } else if (strcmp(argv[i], "--sort") == 0) {
                if (v == NULL ||
                    (strcmp(v, "rate") != 0 && strcmp(v, "depth") != 0 &&
                     strcmp(v, "time") != 0)) {
                    fprintf(stderr,
                            "grove: --sort takes rate, depth or time, not "
                            "\"%s\"\n",
                            v != NULL ? v : "");
                    return 2;
                }
                sort_by = v[0];
                i++;
            } else if (strcmp(argv[i], "-n") == 0) {
                if (!count("-n", v, &rows))
                    return 2;
                i++;
            } else {
                return bad_flag(cmd, argv[i], false);
            }
        }
        return top(argv[2], once, (size_t)rows);
    }
    if (strcmp(cmd, "trace") == 0) {
        bool tjson = false;
        long seconds = -1;
        if (argc < 4 || argv[3][0] == '-' || strlen(argv[3]) > 63 ||
            strchr(argv[3], ' ') != NULL) {
            fprintf(stderr, "grove: trace needs SYS, then an actor's ref, a "
                            "registered name or a behaviour\n");
            return usage();
        }
        for (int i = 4; i < argc; i++) {
            if (strcmp(argv[i], "--json") == 0) {
                tjson = true;
            } else if (strcmp(argv[i], "--seconds") == 0) {
                if (!count("--seconds", i + 1 < argc ? argv[i + 1] : NULL,
                           &seconds))
                    return 2;
                i++;
            } else {
                return bad_flag(cmd, argv[i], false);
            }
        }
        char request[128];
        snprintf(request, sizeof request, "trace %s %s\n",
                 tjson ? "json" : "text", argv[3]);
        return ask(argv[2], request, seconds > 0 ? (int)(seconds * 1000) : -1);
    }
    bool json = false, follow = false;
    const char *kind = "";
    for (int i = 3; i < argc; i++) {
        bool events = strcmp(cmd, "events") == 0;
        if (strcmp(argv[i], "--json") == 0 && strcmp(cmd, "metrics") != 0)
            json = true;
        else if (strcmp(argv[i], "-f") == 0 && events)
            follow = true;
        else if (strcmp(argv[i], "--kind") == 0 && events && i + 1 < argc &&
                 argv[i + 1][0] != '-')
            kind = argv[++i];
        else
            return bad_flag(cmd, argv[i],
                            strcmp(argv[i], "--kind") == 0 && events);
    }
    char request[128];
    if (strcmp(cmd, "metrics") == 0)
        snprintf(request, sizeof request, "metrics\n");
    else if (strcmp(cmd, "events") == 0)
        snprintf(request, sizeof request, "events %s %s\n",
                 json ? "json" : "text", kind);
    else
        snprintf(request, sizeof request, "%s %s\n", cmd,
                 json ? "json" : "text");
    /* events without -f: what comes within a second. */
    return ask(argv[2], request,
               strcmp(cmd, "events") == 0 && !follow ? 1000 : -1);
}
