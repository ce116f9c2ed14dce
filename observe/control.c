/*
 * The control endpoint: how the `grove` tool sees a running system
 * (docs/observer.md). Opt-in in the root process (gr_config.control or
 * GROVE_CONTROL=1); in a node process, started by the first query its
 * parent sends it. This file starts and stops it, runs its thread and
 * holds the event tap; observe/control.h lists the other parts.
 *
 * One thread of its own serves it, so a query may block (it asks
 * supervisors for their children like any outside caller) without
 * touching a worker. Events reach it through a tap in the event emitter: a
 * bounded ring, filled only while someone follows.
 */
#define _GNU_SOURCE

#include "observe/control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

uint64_t gr__obs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Reads what woke the thread: events, queries or the stop. */
static void drain_wake(gr__control *c)
{
    char buf[256];
    while (read(c->wake[0], buf, sizeof buf) > 0)
        ;
}

/* Does what is due at now: a sample, and a fetch of the node children's
 * events while someone follows. */
static void timed_work(gr__control *c, uint64_t now)
{
    if (now >= c->next_sample_ns) {
        gr__obs_sample(c, now);
        c->next_sample_ns = now + GR__OBS_SAMPLE_MS * 1000000u;
    }
    /* A process that was stopped (SIGSTOP) cannot tell whether its
     * parent stopped fetching meanwhile: it waits for the next fetch. */
    if (now - c->last_loop_ns > 1000000000u)
        c->pulled_ns = now;
    c->last_loop_ns = now;
    gr__obs_pull(c, now);
    /* A node's parent that stopped fetching events no longer follows, nor
     * traces. */
    if (c->node_mode && atomic_load(&c->followers) > 0 &&
        now - c->pulled_ns > GR__OBS_NODE_TIMEOUT_MS * 1000000ull) {
        atomic_store(&c->followers, 0);
        c->parent_tracers = 0;
        for (int i = 0; i < GR__OBS_CLIENTS; i++)
            gr__obs_clear_target(c, i);
    }
}

/* Milliseconds poll may wait before the next sample. */
static int poll_wait(const gr__control *c)
{
    uint64_t now = gr__obs_now_ns();
    int ms = now >= c->next_sample_ns
                 ? 0
                 : (int)((c->next_sample_ns - now) / 1000000) + 1;
    int rest[2] = {gr__accept_rest_ms(&c->listen_rest),
                   gr__accept_rest_ms(&c->http_rest)};
    for (int i = 0; i < 2; i++)
        if (rest[i] > 0 && rest[i] < ms)
            ms = rest[i];
    return ms;
}

/* The poll events for a listener: none while it rests (accept.h). */
static short listen_events(const gr__accept_rest *r)
{
    return gr__accept_rest_ms(r) > 0 ? 0 : POLLIN;
}

static void *control_main(void *arg)
{
    gr__control *c = arg;
    while (!atomic_load(&c->stop)) {
        struct pollfd p[3 + GR__OBS_CLIENTS];
        int map[3 + GR__OBS_CLIENTS];
        nfds_t n = 0;
        p[n++] = (struct pollfd){c->wake[0], POLLIN, 0};
        /* -1: ignored. */
        p[n++] =
            (struct pollfd){c->listen_fd, listen_events(&c->listen_rest), 0};
        p[n++] = (struct pollfd){c->http_fd, listen_events(&c->http_rest), 0};
        for (int i = 0; i < GR__OBS_CLIENTS; i++)
            if (c->clients[i].fd >= 0) {
                map[n] = i;
                p[n++] = (struct pollfd){c->clients[i].fd, POLLIN, 0};
            }
        if (poll(p, n, poll_wait(c)) < 0 && errno != EINTR)
            break;
        timed_work(c, gr__obs_now_ns());
        if (p[0].revents & POLLIN) { /* Events (a fetch's too) or queries. */
            drain_wake(c);
            if (c->node_mode)
                gr__obs_serve_queries(c);
            gr__obs_feed(c);
        }
        for (nfds_t i = 3; i < n; i++)
            if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
                gr__obs_on_readable(c, &c->clients[map[i]]);
        if (p[2].revents & POLLIN)
            gr__obs_on_http(c);
        if (p[1].revents & POLLIN)
            gr__obs_on_accept(c);
    }
    return NULL;
}

/* ---- the system's side ---- */

/* Whether GROVE_CONTROL asks for the endpoint; a value that is neither yes
 * nor no is logged. */
static bool env_asks(gr_system *sys)
{
    const char *env = getenv("GROVE_CONTROL");
    if (env == NULL || env[0] == '\0')
        return false;
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(env, yes[i]) == 0)
            return true;
        if (strcasecmp(env, no[i]) == 0)
            return false;
    }
    gr__log(gr__system_log(sys), GR_LOG_WARN,
            "control: GROVE_CONTROL=%s is not 1, true, yes or on; no "
            "control endpoint",
            env);
    return false;
}

/* A control endpoint with nothing open yet. */
static gr__control *make(gr_system *sys, uint32_t slow_handler_ms)
{
    gr__control *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->sys = sys;
    c->listen_fd = c->http_fd = -1;
    c->wake[0] = c->wake[1] = -1;
    c->started_ns = c->window_start_ns = gr__obs_now_ns();
    c->slow_ns =
        (uint64_t)(slow_handler_ms ? slow_handler_ms : 1000) * 1000000u;
    for (int i = 0; i < GR__OBS_CLIENTS; i++)
        c->clients[i] = (gr__obs_client){.fd = -1, .owner = c, .index = i};
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

/* Names c after the config's name, else the program (/proc/self/comm);
 * a name is a file name here: nothing that leaves the directory. */
static void set_name(gr__control *c, const gr_config *cfg)
{
    char name[GR__CONTROL_NAME_SIZE];
    if (cfg->name != NULL && cfg->name[0] != '\0') {
        snprintf(name, sizeof name, "%s", cfg->name);
    } else {
        FILE *f = fopen("/proc/self/comm", "r");
        if (f == NULL || fgets(name, sizeof name, f) == NULL)
            snprintf(name, sizeof name, "grove");
        if (f != NULL)
            fclose(f);
        name[strcspn(name, "\n")] = '\0';
    }
    gr__control_file_name(c->name, name);
}

/* Opens the wake pipe and starts the thread; false when it cannot. */
static bool start_thread(gr__control *c)
{
    if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
        pthread_create(&c->thread, NULL, control_main, c) != 0)
        return false;
    c->started = true;
    return true;
}

int gr__control_start(gr_system *sys, const gr_config *cfg, gr__control **out)
{
    *out = NULL;
    bool asked = env_asks(sys);
    const char *metrics = getenv("GROVE_METRICS");
    if (!cfg->control && !asked &&
        (cfg->metrics == NULL || cfg->metrics[0] == '\0') &&
        (metrics == NULL || metrics[0] == '\0'))
        return GR_OK; /* Metrics over HTTP turn it on too. */
    gr__control *c = make(sys, cfg->slow_handler_ms);
    if (c == NULL)
        return GR_ENOMEM;
    set_name(c, cfg);
    if (!gr__obs_listen(c, cfg) || !start_thread(c)) {
        gr__control_stop(c);
        gr__control_free(c);
        return GR_OK; /* Logged; the system runs without it. */
    }
    *out = c;
    return GR_OK;
}

gr__control *gr__control_start_node(gr_system *sys, gr_ref agent)
{
    gr__control *c = make(sys, gr__system_slow_handler_ms(sys));
    if (c == NULL)
        return NULL;
    c->node_mode = true;
    c->agent = agent;
    snprintf(c->name, sizeof c->name, "%s", gr__system_node_name(sys));
    if (!start_thread(c) || !gr__system_install_control(sys, c)) {
        gr__control_stop(c);
        gr__control_free(c);
        return NULL;
    }
    return c;
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
    /* From here the tap drops events, and the agent queries: the pipe is
     * about to close. */
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < GR__OBS_CLIENTS; i++)
        gr__obs_drop(&c->clients[i]);
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

bool gr__obs_ring_add(gr__control *c, gr_event_kind kind, int tracer,
                      const char *text, const char *json)
{
    if (c->closed)
        return false;
    gr__obs_entry *e = &c->ring[c->head % GR__OBS_RING];
    e->kind = kind;
    e->tracer = tracer;
    snprintf(e->text, sizeof e->text, "%s", text);
    snprintf(e->json, sizeof e->json, "%s", json);
    c->head++;
    (void)!write(c->wake[1], "e", 1); /* Full pipe: a wake is pending. */
    return true;
}

void gr__control_event(gr__control *c, const gr_event *ev)
{
    /* What a supervisor reports as well goes to followers as it goes to
     * the event log: not at all (below debug level, which lets it pass). */
    if (c == NULL ||
        atomic_load_explicit(&c->followers, memory_order_relaxed) == 0 ||
        ((ev->flags & GR_EVENT_SUPERVISED) &&
         !gr__log_enabled(gr__system_log(c->sys), GR_LOG_DEBUG)))
        return;
    char json[sizeof c->ring[0].json], text[sizeof c->ring[0].text];
    gr_event_format_json(ev, json, sizeof json);
    gr_event_format_text(ev, text, sizeof text);
    pthread_mutex_lock(&c->lock);
    (void)gr__obs_ring_add(c, ev->kind, -1, text, json);
    pthread_mutex_unlock(&c->lock);
}

void gr__control_add_root(gr__control *c, gr_ref sup)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    if (c->nroots < GR__OBS_ROOTS)
        c->roots[c->nroots++] = sup;
    pthread_mutex_unlock(&c->lock);
}
