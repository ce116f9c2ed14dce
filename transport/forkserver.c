/*
 * The fork server, parent side (see forkserver.h): a system's templates,
 * one per node program (exe + argv), each started on demand by fork +
 * exec and then asked for node processes over its control socket.
 *
 * A template that died is noticed at the next start (reaped, and a new
 * one started and used at once); one that does not answer in time is
 * killed and that start falls back to fork + exec. A program whose
 * template never became ready (its main() did not reach gr_node_main(),
 * or started threads first) starts its nodes by fork + exec from then on,
 * which is logged once.
 */
#define _GNU_SOURCE /* strerrorname_np. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actor/runtime.h"
#include "transport/forkserver.h"
#include "transport/transport.h"

/* How long a new template may take to say it is ready (an exec, dynamic
 * loading and main() up to gr_node_main(): a few ms, more under
 * sanitizers and load), and a ready one to answer a FORK (a clone: well
 * under 1 ms). Each wait is also held to half the time left to the node's
 * start, so that a fallback to fork + exec still has time. */
#define READY_MS  5000u
#define ANSWER_MS 1000u

/* One node program's template. */
struct gr__template {
    pthread_mutex_t lock; /* One request at a time; guards what follows. */
    char *key;            /* exe, then argv's strings, each NUL-ended. */
    size_t key_len;
    const char *exe;  /* In key: for log lines. */
    pid_t pid;        /* 0: none running. */
    int ctl;          /* This side of its control socket; -1 with none. */
    uint32_t seq;     /* The last FORK's. */
    bool off;         /* This program starts its nodes by fork + exec. */
    struct stat file; /* The program file as the running template was
                         exec'd from (see same_file). */
};

/* The program spec starts: exe and argv with their defaults. */
static const char *spec_exe(const gr_node_spec *spec)
{
    return spec->exe != NULL ? spec->exe : "/proc/self/exe";
}

/* Whether the program file still is the one tp's template was exec'd from
 * (st: what it is now; false when it is gone). A program replaced on disk
 * (a new build, a deploy) gets a new template, so that restarted nodes run
 * the new code as exec'd ones would. "/proc/self/exe" always names the
 * running parent's own image. */
static bool same_file(const gr__template *tp, const struct stat *st)
{
    return st->st_dev == tp->file.st_dev && st->st_ino == tp->file.st_ino &&
           st->st_size == tp->file.st_size &&
           st->st_mtim.tv_sec == tp->file.st_mtim.tv_sec &&
           st->st_mtim.tv_nsec == tp->file.st_mtim.tv_nsec;
}

/* Builds spec's key (malloc'd; NULL when out of memory) and its length. */
static char *make_key(const gr_node_spec *spec, size_t *len)
{
    const char *exe = spec_exe(spec);
    const char *const dflt[] = {exe, NULL};
    const char *const *argv = spec->argv != NULL ? spec->argv : dflt;
    size_t n = strlen(exe) + 1;
    for (size_t i = 0; argv[i] != NULL; i++)
        n += strlen(argv[i]) + 1;
    char *key = malloc(n);
    if (key == NULL)
        return NULL;
    size_t at = strlen(exe) + 1;
    memcpy(key, exe, at);
    for (size_t i = 0; argv[i] != NULL; i++) {
        size_t k = strlen(argv[i]) + 1;
        memcpy(key + at, argv[i], k);
        at += k;
    }
    *len = n;
    return key;
}

/* spec's program's template, added (none running yet) when it is new;
 * NULL when the table is full or out of memory (then fork + exec). */
static gr__template *find_or_add(gr__transport *t, const gr_node_spec *spec)
{
    size_t len;
    char *key = make_key(spec, &len);
    if (key == NULL)
        return NULL;
    gr__template *tp = NULL;
    pthread_mutex_lock(&t->tpl_lock);
    for (size_t i = 0; i < t->ntpls && tp == NULL; i++)
        if (t->tpls[i]->key_len == len &&
            memcmp(t->tpls[i]->key, key, len) == 0)
            tp = t->tpls[i];
    if (tp == NULL && t->ntpls < GR__TEMPLATES_MAX &&
        (tp = calloc(1, sizeof *tp)) != NULL) {
        pthread_mutex_init(&tp->lock, NULL);
        tp->key = key;
        tp->key_len = len;
        tp->exe = key;
        tp->ctl = -1;
        t->tpls[t->ntpls++] = tp;
        key = NULL;
    }
    pthread_mutex_unlock(&t->tpl_lock);
    free(key);
    return tp;
}

/* Forgets the running template: waits until `until` (CLOCK_MONOTONIC;
 * 0: not at all) for it to end, kills it if it has not, reaps it, closes
 * its socket. Returns its wait status when it ended by itself, else -1.
 * Never signals a pid reaped elsewhere (SIGCHLD ignored), which may be
 * another process's by now. */
static int stop_template_by(gr__template *tp, uint64_t until)
{
    int status = -1;
    if (tp->pid > 0) {
        pid_t got;
        while ((got = waitpid(tp->pid, &status, WNOHANG)) == 0 &&
               gr__mono_ns() < until)
            (void)poll(NULL, 0, 1);
        if (got == 0) {
            kill(tp->pid, SIGKILL);
            while (waitpid(tp->pid, &status, 0) < 0 && errno == EINTR)
                ;
            status = -1;
        } else if (got < 0) {
            status = -1;
        }
    }
    if (tp->ctl >= 0)
        close(tp->ctl);
    tp->pid = 0;
    tp->ctl = -1;
    return status;
}

/* stop_template_by() without waiting: kills it unless it has ended. */
static void stop_template(gr__template *tp)
{
    (void)stop_template_by(tp, 0);
}

/* Whether the running template has ended (then it is reaped). */
static bool template_ended(const gr__template *tp)
{
    int status;
    pid_t got = waitpid(tp->pid, &status, WNOHANG);
    return got == tp->pid || (got < 0 && errno == ECHILD);
}

/* A deadline for a wait of at most ms, and at most half the time left
 * until deadline_ns. */
static uint64_t share_of(uint64_t deadline_ns, uint32_t ms)
{
    uint64_t now = gr__mono_ns();
    uint64_t left = deadline_ns > now ? deadline_ns - now : 0;
    uint64_t most = (uint64_t)ms * 1000000u;
    return now + (left / 2 < most ? left / 2 : most);
}

/* Receives the next control message by until. Returns GR_OK,
 * GR_ENOCONNECTION (the template and its clones closed the socket: it is
 * gone), GR_ETIMEDOUT or GR_ESYS. Stray datagrams are skipped. */
static int recv_msg(int ctl, gr__tpl_msg *m, uint64_t until)
{
    for (;;) {
        ssize_t n = recv(ctl, m, sizeof *m, 0);
        if (n == (ssize_t)sizeof *m && m->magic == GR__TPL_MAGIC)
            return GR_OK;
        if (n == 0)
            return GR_ENOCONNECTION;
        if (n > 0 || errno == EINTR)
            continue;
        if (errno == ECONNRESET)
            return GR_ENOCONNECTION;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return GR_ESYS;
        int rc = gr__wait_fd(ctl, POLLIN, until);
        if (rc != GR_OK)
            return rc;
    }
}

/* Why a template refused to serve, from its REFUSED value. */
static const char *refusal(int32_t why)
{
    switch (why) {
    case GR__TPL_THREADS:
        return "the program started threads before gr_node_main()";
    case GR__TPL_NO_TID:
        return "the kernel does not offer PR_GET_TID_ADDRESS";
    default:
        return "its setup failed";
    }
}

/* Starts tp's template and waits until it is ready; GR_OK, or an error
 * with *why set and no template left running. */
static int start_template(gr__template *tp, const gr_node_spec *spec,
                          uint64_t deadline_ns, const char **why)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
        *why = "cannot open its control socket";
        return GR_ESYS;
    }
    int rc;
    if (stat(spec_exe(spec), &tp->file) != 0)
        memset(&tp->file, 0, sizeof tp->file);
    pid_t pid = gr__spawn_exec(spec, sp[1], true, &rc);
    close(sp[1]);
    if (pid < 0) {
        close(sp[0]);
        *why = "cannot start it";
        return rc;
    }
    fcntl(sp[0], F_SETFL, fcntl(sp[0], F_GETFL) | O_NONBLOCK);
    tp->pid = pid;
    tp->ctl = sp[0];
    gr__tpl_msg m;
    uint64_t until = share_of(deadline_ns, READY_MS);
    rc = recv_msg(tp->ctl, &m, until);
    if (rc == GR_OK && m.kind == GR__TPL_READY && m.value == pid)
        return GR_OK;
    /* Gone or going: its exit status may say why. */
    int status = stop_template_by(tp, rc == GR_ETIMEDOUT ? 0 : until);
    if (rc == GR_OK && m.kind == GR__TPL_REFUSED)
        *why = refusal(m.value);
    else if (rc == GR_ETIMEDOUT)
        *why = "it was not ready in time";
    else if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 127)
        *why = "it could not be executed";
    else if (rc == GR_ENOCONNECTION)
        *why = "it ended before it was ready (main() must call "
               "gr_node_main() first)";
    else
        *why = "it did not say it was ready";
    return rc == GR_OK ? GR_EPROTO : rc;
}

/* Asks tp's template for a node process with fd as its link. Returns
 * GR_OK with the pid in *pid; GR_ENOCONNECTION when the template was gone
 * before it made one (fd is held by no one else); GR_ETIMEDOUT (*sent:
 * fd may be held by a stray process), or GR_ESYS with the clone's errno
 * in *err. */
static int request(gr__template *tp, int fd, uint64_t until, pid_t *pid,
                   bool *sent, int *err)
{
    uint32_t seq = ++tp->seq;
    gr__tpl_msg m = {.magic = GR__TPL_MAGIC, .kind = GR__TPL_FORK, .seq = seq};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } cbuf;
    memset(&cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = cbuf.buf,
                        .msg_controllen = sizeof cbuf.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n;
    while ((n = sendmsg(tp->ctl, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)sizeof m) /* EPIPE: it is gone. */
        return GR_ENOCONNECTION;
    *sent = true;
    for (;;) {
        int rc = recv_msg(tp->ctl, &m, until);
        if (rc == GR_ENOCONNECTION)
            /* Gone without an answer: it made no process (a clone
             * answers before it lets go of the socket), and the
             * descriptors it had not taken were dropped with it. */
            *sent = false;
        if (rc != GR_OK)
            return rc;
        if (m.seq != seq) /* An answer to a request given up on. */
            continue;
        if (m.kind == GR__TPL_FORKED && m.value > 0) {
            *pid = (pid_t)m.value;
            return GR_OK;
        }
        /* FAILED: it made no process and closed its copy of fd. */
        *sent = m.kind != GR__TPL_FAILED;
        *err = m.kind == GR__TPL_FAILED ? m.value : EPROTO;
        return GR_ESYS;
    }
}

/* Logs that a start goes by fork + exec, and why. */
static void log_fallback(gr__transport *t, const gr__template *tp,
                         const gr_node_spec *spec, const char *why)
{
    gr__log(gr__system_log(t->sys), GR_LOG_WARN,
            "node %s: the fork server for %s: %s; %s by fork + exec",
            spec->name, tp->exe, why,
            tp->off ? "this program's nodes start" : "this one starts");
}

/* gr__forkserver_spawn() with tp's lock held. */
static pid_t spawn_locked(gr__transport *t, gr__template *tp,
                          const gr_node_spec *spec, int fd,
                          uint64_t deadline_ns, bool *sent, const char **why)
{
    /* Twice at most: a template found gone at the request is replaced
     * once, at once (it may have been killed; its clones live on). */
    for (int attempt = 0; attempt < 2 && !tp->off; attempt++) {
        struct stat now;
        if (tp->pid > 0 && template_ended(tp)) {
            tp->pid = 0; /* Reaped: never signal it again. */
            stop_template(tp);
        } else if (tp->pid > 0 &&
                   (stat(spec_exe(spec), &now) != 0 || !same_file(tp, &now))) {
            gr__log(gr__system_log(t->sys), GR_LOG_INFO,
                    "node %s: %s changed on disk; a new fork server for it",
                    spec->name, tp->exe);
            stop_template(tp);
        }
        if (tp->pid == 0) {
            const char *fail;
            int rc = start_template(tp, spec, deadline_ns, &fail);
            if (rc != GR_OK) {
                tp->off = true;
                log_fallback(t, tp, spec, fail);
                return 0;
            }
        }
        pid_t pid = 0;
        int err = 0;
        int rc =
            request(tp, fd, share_of(deadline_ns, ANSWER_MS), &pid, sent, &err);
        if (rc == GR_OK)
            return pid;
        if (rc == GR_ENOCONNECTION) {
            gr__log(gr__system_log(t->sys), GR_LOG_DEBUG,
                    "node %s: the fork server for %s (pid %d) is gone; "
                    "starting another",
                    spec->name, tp->exe, (int)tp->pid);
            stop_template(tp);
            continue;
        }
        if (rc == GR_ETIMEDOUT) {
            stop_template(tp);
            if (gr__mono_ns() >= deadline_ns) {
                *why = "the fork server did not answer in time";
                return -1;
            }
            log_fallback(t, tp, spec, "it did not answer in time (killed)");
            return 0;
        }
        /* The clone failed: the template stays, unless this kernel
         * cannot clone so at all. */
        tp->off = err == ENOSYS;
        if (tp->off)
            stop_template(tp);
        const char *name = strerrorname_np(err);
        char text[64];
        snprintf(text, sizeof text, "its clone failed: %s",
                 name != NULL ? name : "E?");
        log_fallback(t, tp, spec, text);
        return 0;
    }
    return 0;
}

pid_t gr__forkserver_spawn(gr__transport *t, const gr_node_spec *spec, int fd,
                           uint64_t deadline_ns, bool *sent, const char **why)
{
    *sent = false;
    if (t->fork_server_off || spec->no_fork_server)
        return 0;
    gr__template *tp = find_or_add(t, spec);
    if (tp == NULL)
        return 0;
    pthread_mutex_lock(&tp->lock);
    pid_t pid = spawn_locked(t, tp, spec, fd, deadline_ns, sent, why);
    pthread_mutex_unlock(&tp->lock);
    return pid;
}

void gr__forkserver_shutdown(gr__transport *t)
{
    for (size_t i = 0; i < t->ntpls; i++) {
        gr__template *tp = t->tpls[i];
        stop_template(tp);
        pthread_mutex_destroy(&tp->lock);
        free(tp->key);
        free(tp);
    }
    t->ntpls = 0;
    pthread_mutex_destroy(&t->tpl_lock);
}
