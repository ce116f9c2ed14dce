/*
 * Node children's processes, parent side: watching them (a pidfd, or
 * polling waitpid where there is none), reaping them, turning the wait
 * status into an exit reason, and stopping them.
 */
#define _GNU_SOURCE /* pidfd_open through syscall(). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actor/runtime.h"
#include "transport/transport.h"

/* How long a node child may live on after closing its link. */
#define GRACE_S 5.0
/* Poll period when pidfds are not available. */
#define REAP_POLL_S 0.002

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGABRT:
        return "SIGABRT";
    case SIGKILL:
        return "SIGKILL";
    case SIGTERM:
        return "SIGTERM";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGINT:
        return "SIGINT";
    case SIGHUP:
        return "SIGHUP";
    case SIGPIPE:
        return "SIGPIPE";
    case SIGQUIT:
        return "SIGQUIT";
    case SIGTRAP:
        return "SIGTRAP";
    case SIGSYS:
        return "SIGSYS";
    case SIGUSR1:
        return "SIGUSR1";
    case SIGUSR2:
        return "SIGUSR2";
    case SIGALRM:
        return "SIGALRM";
    default:
        return NULL;
    }
}

/* The exit reason of a node process from its wait status. */
static gr_reason exit_reason(const gr__link *l, int status)
{
    gr_reason r = {0};
    if (l->error[0] != '\0') {
        r.code = GR_EPROTO;
        snprintf(r.text, sizeof r.text, "%s", l->error);
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *name = signal_name(sig);
        r.code = GR_ESIGNAL;
        r.detail = sig;
        if (name != NULL)
            snprintf(r.text, sizeof r.text, "signal %s", name);
        else
            snprintf(r.text, sizeof r.text, "signal %d", sig);
    } else if (WIFEXITED(status) &&
               WEXITSTATUS(status) == GR_NODE_EXIT_SHUTDOWN) {
        r.code = GR_ESHUTDOWN;
        snprintf(r.text, sizeof r.text, "its root shut down");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) > GR_NODE_EXIT_CRASH &&
               WEXITSTATUS(status) <=
                   GR_NODE_EXIT_CRASH - GR_NODE_EXIT_CRASH_MIN) {
        /* Its root crashed: the stand-in exits as the root did. */
        r.code = GR_NODE_EXIT_CRASH - WEXITSTATUS(status);
        r.detail = WEXITSTATUS(status);
        snprintf(r.text, sizeof r.text, "its root crashed");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        r.code = GR_EEXITSTATUS;
        r.detail = WEXITSTATUS(status);
        snprintf(r.text, sizeof r.text, "exit status %d", WEXITSTATUS(status));
    }
    return r;
}

/* Tries to reap l's process; true once it is reaped (then the stand-in has
 * been told and the link forgotten). */
/* Emits the node_down event for l's process, which ended with why. */
static void node_down_event(const gr__link *l, const gr_reason *why)
{
    gr_system *sys = l->t->sys;
    gr_event ev = {.kind = GR_EV_NODE_DOWN,
                   .level = gr_reason_is_clean(why) ? GR_LOG_INFO : GR_LOG_WARN,
                   .flags = l->supervised ? GR_EVENT_SUPERVISED : 0u,
                   .reason = *why,
                   .actor = l->proxy,
                   .node = l->name,
                   .pid = l->pid};
    gr__system_emit(sys, &ev);
}

static bool try_reap(gr__link *l)
{
    gr__transport *t = l->t;
    struct ev_loop *loop = gr__io_loop(gr__system_io(t->sys));
    int status = 0;
    pthread_mutex_lock(&l->lock);
    pid_t got = waitpid(l->pid, &status, WNOHANG);
    if (got == l->pid || (got < 0 && errno == ECHILD))
        l->reaped = true;
    pthread_mutex_unlock(&l->lock);
    if (!l->reaped)
        return false;
    if (got < 0)
        status = 0; /* Reaped by someone else (SIGCHLD ignored). */
    ev_io_stop(loop, &l->pio);
    ev_timer_stop(loop, &l->grace);
    /* What it wrote before it died still counts. */
    gr__link_drain(l);
    gr__node_exit x = {.reason = exit_reason(l, status)};
    node_down_event(l, &x.reason);
    (void)gr__deliver(t->sys, NULL, GR__MSG_NODE_EXITED, GR_REF_NONE, l->proxy,
                      0, &x, sizeof x);
    gr__transport_forget(l);
    return true;
}

static void on_pidfd(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    try_reap(w->data);
}

static void on_grace(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    gr__link *l = w->data;
    if (l->pidfd < 0) { /* No pidfd: this timer polls. */
        if (!try_reap(l))
            ev_timer_again(loop, w);
        return;
    }
    if (!try_reap(l))
        gr__transport_kill(l); /* Closed its link but lingers. */
}

void gr__process_watch(gr__link *l)
{
    struct ev_loop *loop = gr__io_loop(gr__system_io(l->t->sys));
    ev_timer_init(&l->grace, on_grace, 0., GRACE_S);
    l->grace.data = l;
    l->pidfd = (int)syscall(SYS_pidfd_open, l->pid, 0);
    if (l->pidfd >= 0) {
        ev_io_init(&l->pio, on_pidfd, l->pidfd, EV_READ);
        l->pio.data = l;
        ev_io_start(loop, &l->pio);
    } else {
        l->grace.repeat = REAP_POLL_S;
        ev_timer_again(loop, &l->grace);
    }
    /* It may have died before the loop got here. */
    try_reap(l);
}

void gr__process_link_down(gr__link *l, bool protocol_error)
{
    if (l->reaped)
        return;
    /* The process ends: killed after a protocol error, otherwise it sees
     * EOF too; the grace timer deals with one that lingers. */
    shutdown(l->fd, SHUT_RDWR);
    if (protocol_error)
        gr__transport_kill(l);
    if (l->pidfd >= 0)
        ev_timer_again(gr__io_loop(gr__system_io(l->t->sys)), &l->grace);
}

void gr__transport_request_stop(gr__link *l)
{
    uint8_t frame[GR__WIRE_PREFIX_MAX];
    size_t n = gr__wire_node_frame(frame, GR__WIRE_SHUTDOWN, 0, 0, NULL);
    (void)gr__link_send(l, frame, n, NULL, 0, true);
}

void gr__transport_kill(gr__link *l)
{
    pthread_mutex_lock(&l->lock);
    if (l->pid > 0 && !l->reaped && !l->kill_sent) {
        kill(l->pid, SIGKILL);
        l->kill_sent = true;
    }
    pthread_mutex_unlock(&l->lock);
}

void gr__transport_stop_blocking(gr__link *l, int wait_ms)
{
    if (l->pid <= 0)
        return;
    pthread_mutex_lock(&l->lock);
    bool reaped = l->reaped;
    pthread_mutex_unlock(&l->lock);
    if (reaped)
        return;
    /* The loop has stopped: queue the request behind what is queued
     * (a frame may be half written) and write it all from here. */
    uint8_t frame[GR__WIRE_PREFIX_MAX];
    size_t n = gr__wire_node_frame(frame, GR__WIRE_SHUTDOWN, 0, 0, NULL);
    uint64_t deadline = gr__mono_ns() + (uint64_t)wait_ms * 1000000u;
    if (gr__link_send(l, frame, n, NULL, 0, true) == GR_OK)
        (void)gr__link_flush_blocking(l, deadline);
    int status = 0;
    pid_t got;
    while ((got = waitpid(l->pid, &status, WNOHANG)) == 0 &&
           gr__mono_ns() < deadline)
        usleep(1000);
    pthread_mutex_lock(&l->lock);
    if (got == 0 && !l->reaped) { /* Never a pid someone else reaped. */
        kill(l->pid, SIGKILL);
        while ((got = waitpid(l->pid, &status, 0)) < 0 && errno == EINTR)
            ;
    }
    if (got < 0)
        status = 0; /* Reaped by someone else (SIGCHLD ignored). */
    l->reaped = true;
    pthread_mutex_unlock(&l->lock);
    gr_reason why = exit_reason(l, status);
    node_down_event(l, &why);
}
