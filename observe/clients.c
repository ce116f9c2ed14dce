/*
 * The control endpoint's clients: the grove tool's requests (one line
 * each), followers of events and traces, and the metrics port's HTTP
 * requests. All run on the control thread.
 */
#define _GNU_SOURCE /* struct ucred, accept4 */

#include "observe/control.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Closes cl's connection; a follower stops counting, a tracer's target
 * goes. */
void gr__obs_drop(gr__obs_client *cl)
{
    if (cl->fd < 0)
        return;
    close(cl->fd);
    cl->fd = -1;
    gr__control *c = cl->owner;
    if (cl->mode != GR__OBS_NOT)
        atomic_fetch_sub(&c->followers, 1);
    if (cl->tracing) /* The node processes hear of it in the next fetch. */
        gr__obs_clear_target(c, cl->index);
    cl->mode = GR__OBS_NOT;
    cl->tracing = false;
}

/* Sends all of len bytes without waiting; false (client dropped) when the
 * client does not take them. */
static bool send_all(gr__obs_client *cl, const char *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t k =
            send(cl->fd, buf + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k <= 0) {
            gr__obs_drop(cl);
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

bool gr__obs_set_target(gr__control *c, int index, const char *spec)
{
    /* NAME@NODE: the name registered on that node only. */
    char local[GR_NAME_MAX + 1];
    const char *name = spec, *at = strchr(spec, '@');
    if (spec[0] != '<' && at != NULL) {
        bool here = strcmp(at + 1, gr__system_node_name(c->sys)) == 0;
        snprintf(local, sizeof local, "%.*s", (int)(at - spec), spec);
        name = here ? local : "";
    }
    finding f = {c, name, 0, false};
    gr_ref ref;
    if (name[0] != '<' && gr_whereis(c->sys, name, &ref) == GR_OK)
        f.serial = ref.serial;
    else if (name[0] != '\0') {
        uint32_t from = 0, next;
        do {
            gr__system_actors(c->sys, from, GR__OBS_SLICE, find_actor, &f,
                              &next);
            from = next;
        } while (from != 0 && f.serial == 0);
    }
    bool found = f.serial != 0 || f.behaviour;
    pthread_mutex_lock(&c->lock);
    gr__obs_target *t = &c->targets[index];
    bool was = t->on;
    t->wanted = true;
    snprintf(t->spec, sizeof t->spec, "%s", spec);
    t->on = found;
    t->serial = f.serial;
    snprintf(t->behaviour, sizeof t->behaviour, "%s", f.serial ? "" : name);
    pthread_mutex_unlock(&c->lock);
    if (found != was)
        gr__system_tracing(c->sys, found ? 1 : -1);
    return found;
}

void gr__obs_clear_target(gr__control *c, int index)
{
    pthread_mutex_lock(&c->lock);
    bool was = c->targets[index].on;
    c->targets[index].on = c->targets[index].wanted = false;
    pthread_mutex_unlock(&c->lock);
    if (was)
        gr__system_tracing(c->sys, -1);
}

/* Makes cl trace name, here and in the node processes; false (with why in
 * o) when it names nothing anywhere. */
static bool start_trace(gr__control *c, gr__obs_client *cl, const char *name,
                        bool json, gr__obs_out *o)
{
    bool here = gr__obs_set_target(c, cl->index, name);
    int silent = 0;
    char who[GR_NAME_MAX + 1] = "";
    if (!gr__obs_trace_nodes(c, cl->index, &silent, who, sizeof who) && !here) {
        gr__obs_clear_target(c, cl->index);
        if (silent > 0)
            gr__obs_put(o,
                        "error: no actor, registered name or behaviour "
                        "\"%s\" in the processes that answered; %d did not "
                        "(process %s): try again\n",
                        name, silent, who);
        else
            gr__obs_put(o,
                        "error: no actor, registered name or behaviour "
                        "\"%s\" in any process (give a ref as grove tree "
                        "prints it, e.g. <3.1@root>, or NAME@NODE)\n",
                        name);
        return false;
    }
    pthread_mutex_lock(&c->lock);
    cl->seq = c->head;
    pthread_mutex_unlock(&c->lock);
    cl->tracing = true;
    cl->mode = json ? GR__OBS_JSON : GR__OBS_TEXT;
    cl->kind = -1;
    atomic_fetch_add(&c->followers, 1);
    (void)send_all(cl, "following\n", 10);
    return true;
}

/* Whether target t covers actor serial running behaviour. */
static bool covers(const gr__obs_target *t, uint64_t serial,
                   const char *behaviour)
{
    return t->on && (t->serial != 0 ? t->serial == serial
                                    : strcmp(t->behaviour, behaviour) == 0);
}

bool gr__control_traced(gr__control *c, uint64_t serial, const char *behaviour)
{
    bool yes = false;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < GR__OBS_CLIENTS && !yes; i++)
        yes = covers(&c->targets[i], serial, behaviour);
    pthread_mutex_unlock(&c->lock);
    return yes;
}

/* Adds one trace record of actor serial to the ring, for each tracer
 * that covers it. */
static void record(gr__control *c, uint64_t serial, const char *behaviour,
                   const char *text, const char *json)
{
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < GR__OBS_CLIENTS; i++)
        if (covers(&c->targets[i], serial, behaviour))
            (void)gr__obs_ring_add(c, GR_EV_KIND_COUNT, i, text, json);
    pthread_mutex_unlock(&c->lock);
}

/* The ref of local actor serial as printed. */
static const char *self_ref(gr__control *c, uint64_t serial, char *buf,
                            size_t size)
{
    gr_ref me = {serial, gr__system_node_id(c->sys),
                 gr__system_incarnation(c->sys)};
    return gr_ref_format(c->sys, me, buf, size);
}

void gr__control_trace(gr__control *c, bool in, uint64_t serial,
                       const char *behaviour, const gr_msg *m,
                       const char *to_name, uint64_t handler_ns)
{
    char self[GR_REF_FORMAT_MAX], from[GR_REF_FORMAT_MAX],
        to[GR_REF_FORMAT_MAX + GR_NAME_MAX];
    self_ref(c, serial, self, sizeof self);
    gr_ref_format(c->sys, m->from, from, sizeof from);
    if (to_name != NULL)
        gr__obs_json_safe(to_name, to, sizeof to);
    else
        gr_ref_format(c->sys, m->to, to, sizeof to);
    char safe[GR_NAME_MAX + 1];
    gr__obs_json_safe(behaviour, safe, sizeof safe);
    char text[sizeof c->ring[0].text], json[sizeof c->ring[0].json];
    if (in)
        snprintf(text, sizeof text,
                 "in  %s (%s) from %s type 0x%" PRIx32 " corr %" PRIu64
                 " size %zu, handler %.3f ms",
                 self, behaviour, from, m->type, m->corr, m->len,
                 (double)handler_ns / 1e6);
    else
        snprintf(text, sizeof text,
                 "out %s (%s) to %s type 0x%" PRIx32 " corr %" PRIu64
                 " size %zu",
                 self, behaviour, to, m->type, m->corr, m->len);
    snprintf(json, sizeof json,
             "{\"trace\":\"%s\",\"actor\":\"%s\",\"behaviour\":\"%s\","
             "\"from\":\"%s\",\"to\":\"%s\",\"type\":%" PRIu32
             ",\"corr\":%" PRIu64 ",\"size\":%zu,\"handler_us\":%" PRIu64 "}",
             in ? "in" : "out", self, safe, from, to, m->type, m->corr, m->len,
             handler_ns / 1000);
    record(c, serial, behaviour, text, json);
}

void gr__control_trace_exit(gr__control *c, uint64_t serial,
                            const char *behaviour, const gr_reason *why)
{
    char self[GR_REF_FORMAT_MAX], reason[256], safe[GR_NAME_MAX + 1],
        safe_reason[256];
    self_ref(c, serial, self, sizeof self);
    gr_reason_format(why, reason, sizeof reason);
    char text[sizeof c->ring[0].text], json[sizeof c->ring[0].json];
    snprintf(text, sizeof text, "exit %s (%s): %s", self, behaviour, reason);
    snprintf(json, sizeof json,
             "{\"trace\":\"exit\",\"actor\":\"%s\",\"behaviour\":\"%s\","
             "\"reason\":\"%s\"}",
             self, gr__obs_json_safe(behaviour, safe, sizeof safe),
             gr__obs_json_safe(reason, safe_reason, sizeof safe_reason));
    record(c, serial, behaviour, text, json);
}

/* Handles the client's one request line. */
static void on_request(gr__control *c, gr__obs_client *cl, char *line)
{
    char verb[32] = "", arg[32] = "", kind[64] = "";
    (void)sscanf(line, "%31s %31s %63s", verb, arg, kind);
    bool json = strcmp(arg, "json") == 0;
    gr__obs_out o = {0};
    bool formatted = strcmp(verb, "stats") == 0 || strcmp(verb, "tree") == 0 ||
                     strcmp(verb, "events") == 0 || strcmp(verb, "trace") == 0;
    if (formatted && !json && strcmp(arg, "text") != 0) {
        gr__obs_put(&o, "error: %s takes text or json, not \"%s\"\n", verb,
                    arg);
    } else if (strcmp(verb, "events") == 0) {
        cl->kind = kind[0] != '\0' ? kind_of(kind) : -1;
        if (cl->kind == -2) {
            gr__obs_put(&o, "error: no event kind \"%s\" (kinds:", kind);
            for (int k = 0; k < GR_EV_KIND_COUNT; k++)
                gr__obs_put(&o, " %s", gr_event_kind_name((gr_event_kind)k));
            gr__obs_put(&o, ")\n");
        } else {
            cl->mode = json ? GR__OBS_JSON : GR__OBS_TEXT;
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
    } else if (!gr__obs_answer(c, verb, arg, "", &o)) {
        gr__obs_put(&o,
                    "error: no request \"%s\" (info, stats, metrics, tree, "
                    "actors, events, trace)\n",
                    verb);
    }
    if (o.buf != NULL)
        (void)send_all(cl, o.buf, o.len);
    free(o.buf);
    gr__obs_drop(cl);
}

void gr__obs_on_readable(gr__control *c, gr__obs_client *cl)
{
    ssize_t k = recv(cl->fd, cl->in + cl->have, sizeof cl->in - 1 - cl->have,
                     MSG_DONTWAIT);
    if (k <= 0) {
        gr__obs_drop(cl);
        return;
    }
    if (cl->mode != GR__OBS_NOT)
        return; /* A follower says nothing more; what it sends is ignored. */
    cl->have += (size_t)k;
    cl->in[cl->have] = '\0';
    char *nl = strchr(cl->in, '\n');
    if (nl != NULL) {
        *nl = '\0';
        on_request(c, cl, cl->in);
    } else if (cl->have == sizeof cl->in - 1) {
        gr__obs_drop(cl); /* No request is that long. */
    }
}

/* Sends each follower the events it has not seen. */
void gr__obs_feed(gr__control *c)
{
    for (int i = 0; i < GR__OBS_CLIENTS; i++) {
        gr__obs_client *cl = &c->clients[i];
        if (cl->fd < 0 || cl->mode == GR__OBS_NOT)
            continue;
        for (;;) {
            gr__obs_entry e;
            uint64_t missed = 0;
            pthread_mutex_lock(&c->lock);
            if (cl->seq == c->head) {
                pthread_mutex_unlock(&c->lock);
                break;
            }
            if (c->head - cl->seq > GR__OBS_RING) {
                missed = c->head - GR__OBS_RING - cl->seq;
                cl->seq = c->head - GR__OBS_RING;
            }
            e = c->ring[cl->seq % GR__OBS_RING];
            cl->seq++;
            pthread_mutex_unlock(&c->lock);
            char note[96];
            if (missed != 0) {
                int n = snprintf(
                    note, sizeof note,
                    cl->mode == GR__OBS_JSON
                        ? "{\"event\":\"missed\",\"count\":%" PRIu64 "}\n"
                        : "(%" PRIu64 " events missed)\n",
                    missed);
                if (!send_all(cl, note, (size_t)n))
                    break;
            }
            if (e.tracer != (cl->tracing ? cl->index : -1) ||
                (cl->kind >= 0 && (int)e.kind != cl->kind))
                continue;
            const char *line = cl->mode == GR__OBS_JSON ? e.json : e.text;
            if (!send_all(cl, line, strlen(line)) || !send_all(cl, "\n", 1))
                break;
        }
    }
}

void gr__obs_on_accept(gr__control *c)
{
    int fd = gr__accept(c->listen_fd, SOCK_CLOEXEC, &c->listen_rest,
                        gr__system_log(c->sys), "control");
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
    for (int i = 0; i < GR__OBS_CLIENTS; i++)
        if (c->clients[i].fd < 0) {
            c->clients[i] = (gr__obs_client){.fd = fd, .owner = c, .index = i};
            char hello[128];
            int n = snprintf(hello, sizeof hello, "grove-control %d %s %d\n",
                             GR__OBS_PROTOCOL, c->name, (int)getpid());
            (void)send_all(&c->clients[i], hello, (size_t)n);
            return;
        }
    (void)!write(fd, "error: busy: too many clients\n", 30);
    close(fd);
}

/* Serves one HTTP request on the metrics listener: GET /metrics gets
 * the Prometheus text, anything else 404. A gr__obs_client has a second to send
 * its request line. */
void gr__obs_on_http(gr__control *c)
{
    int fd = gr__accept(c->http_fd, SOCK_CLOEXEC, &c->http_rest,
                        gr__system_log(c->sys), "metrics");
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
    gr__obs_out body = {0};
    bool found = strncmp(req, "GET /metrics ", 13) == 0 ||
                 strncmp(req, "GET /metrics?", 13) == 0;
    if (found)
        (void)gr__obs_answer(c, "metrics", "", "", &body);
    else
        gr__obs_put(&body, "not found: GET /metrics\n");
    char head[256];
    int n =
        snprintf(head, sizeof head,
                 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: "
                 "%zu\r\nConnection: close\r\n\r\n",
                 found ? "200 OK" : "404 Not Found",
                 found ? "text/plain; version=0.0.4" : "text/plain", body.len);
    gr__obs_client cl = {.fd = fd, .owner = c, .index = -1};
    if (send_all(&cl, head, (size_t)n) && body.buf != NULL)
        (void)send_all(&cl, body.buf, body.len);
    free(body.buf);
    if (cl.fd >= 0)
        close(fd);
}
