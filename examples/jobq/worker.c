/*
 * A worker: the root actor of a worker node (its own process). It tells
 * the store it is ready, runs each job it is handed and reports how it
 * went. The built-in job types, with their msgpack payloads:
 *
 *   echo   any value: appends "ID ATTEMPT START_US VALUE" to the output file
 *          (a string as it is, control characters as '?', so one job is
 *          one line; another value as msgpack-c prints it)
 *   sleep  milliseconds: done after that long (on a timer; it does not
 *          hold up the other jobs)
 *   flaky  N: fails until attempt N, then done
 *   fail   anything: always fails
 *   crash  anything: the process dies of SIGSEGV
 *   spin   anything: never returns (the store's lease kills the process)
 */
#define _POSIX_C_SOURCE 200809L

#include "jobq.h"
#include "wire.h"

#include <grove/msgpack.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct worker {
    int out; /* The echo output file, or -1. */
} worker;

static int worker_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    worker *w = state;
    jq_worker_arg a;
    if (len != sizeof a)
        return GR_EINVAL;
    memcpy(&a, arg, sizeof a);
    a.output[sizeof a.output - 1] = '\0';
    w->out = open(a.output, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (w->out < 0) {
        perror(a.output);
        return GR_EFAILED;
    }
    jq_ready r = {.capacity = a.capacity};
    int rc = gr_node_name(gr_ctx_system(ctx), r.node, sizeof r.node);
    if (rc == GR_OK)
        rc = gr_tell_name(ctx, JQ_STORE_AT, JQ_READY, &r, sizeof r);
    if (rc != GR_OK)
        close(w->out);
    return rc;
}

/* Tells the store how job went: done when error is NULL, else failed
 * with error. */
static int report(gr_ctx *ctx, gr_ref store, const jq_job *job,
                  const char *error)
{
    jq_result r = {.id = job->id, .attempt = job->attempt, .ok = error == NULL};
    if (error != NULL)
        snprintf(r.error, sizeof r.error, "%s", error);
    (void)gr_tell(ctx, store, JQ_RESULT, &r, sizeof r);
    return GR_CONTINUE;
}

/* Writes v as one line's text: a string as it is (control characters as
 * '?'), anything else as msgpack-c prints it. */
static size_t value_text(const msgpack_object *v, char *buf, size_t size)
{
    if (v->type != MSGPACK_OBJECT_STR) {
        int n = msgpack_object_print_buffer(buf, size, *v);
        return n > 0 && (size_t)n < size ? (size_t)n : 0;
    }
    size_t n = v->via.str.size < size - 1 ? v->via.str.size : size - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v->via.str.ptr[i];
        buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    return n;
}

static int run_echo(gr_ctx *ctx, worker *w, gr_ref store, const jq_job *job,
                    const msgpack_object *v)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* Room for the whole value: msgpack-c prints at most a few characters
     * per payload byte. */
    size_t size = 64 + 8 * (size_t)job->payload_len;
    char *line = malloc(size);
    if (line == NULL)
        return report(ctx, store, job, "no memory for the line");
    int n = snprintf(line, size, "%" PRIu64 " %u %lld ", job->id, job->attempt,
                     (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
    n += (int)value_text(v, line + n, size - (size_t)n - 1);
    line[n++] = '\n';
    /* One write with O_APPEND: lines of the workers never interleave. */
    ssize_t wrote = write(w->out, line, (size_t)n);
    free(line);
    if (wrote != n) {
        char why[JQ_ERROR_MAX + 1];
        snprintf(why, sizeof why, "cannot write the output: %s",
                 wrote < 0 ? strerror(errno) : "short write");
        return report(ctx, store, job, why);
    }
    return report(ctx, store, job, NULL);
}

static int run_job(gr_ctx *ctx, worker *w, const gr_msg *m)
{
    const jq_job *job = m->data;
    if (m->len < sizeof *job || m->len != sizeof *job + job->payload_len)
        return GR_CONTINUE;
    char type[JQ_NAME_MAX + 1];
    memcpy(type, job->type, sizeof type);
    type[JQ_NAME_MAX] = '\0';
    msgpack_unpacked up;
    msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
    bool have = jq_unpack(job->payload, job->payload_len, &up);
    const msgpack_object *v = have ? &up.data : &nil;
    uint64_t n = 0;
    bool num = jq_obj_uint(v, &n);
    char why[JQ_ERROR_MAX + 1];
    int rc;
    if (strcmp(type, "echo") == 0) {
        rc = run_echo(ctx, w, m->from, job, v);
    } else if (strcmp(type, "sleep") == 0 && num) {
        jq_result r = {.id = job->id, .attempt = job->attempt, .ok = 1};
        rc = gr_timer_after(ctx, n, JQ_SLEPT, &r, sizeof r, NULL) == GR_OK
                 ? GR_CONTINUE
                 : report(ctx, m->from, job, "no timer for the sleep");
    } else if (strcmp(type, "flaky") == 0 && num) {
        snprintf(why, sizeof why,
                 "flaky: attempt %u fails, %" PRIu64 " will not", job->attempt,
                 n);
        rc = report(ctx, m->from, job, job->attempt >= n ? NULL : why);
    } else if (strcmp(type, "fail") == 0) {
        rc = report(ctx, m->from, job, "it always fails");
    } else if (strcmp(type, "crash") == 0) {
        /* Past the sanitizers' handlers: a real SIGSEGV death. */
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
        rc = GR_CONTINUE;
    } else if (strcmp(type, "spin") == 0) {
        for (volatile uint64_t i = 0;; i++)
            ;
    } else {
        snprintf(why, sizeof why,
                 strcmp(type, "sleep") == 0 || strcmp(type, "flaky") == 0
                     ? "%s needs a whole number 0 or more as its payload"
                     : "no job type \"%s\"",
                 type);
        rc = report(ctx, m->from, job, why);
    }
    if (have)
        msgpack_unpacked_destroy(&up);
    return rc;
}

static int worker_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    worker *w = state;
    if (m->type == JQ_JOB)
        return run_job(ctx, w, m);
    if (m->type == JQ_SLEPT && m->len == sizeof(jq_result)) {
        /* The store is the one that handed the job out. */
        (void)gr_tell_name(ctx, JQ_STORE_AT, JQ_RESULT, m->data, m->len);
    }
    return GR_CONTINUE;
}

static void worker_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)ctx;
    (void)why;
    close(((worker *)state)->out);
}

const gr_behaviour jq_worker = {
    .name = "worker",
    .state_size = sizeof(worker),
    .init = worker_init,
    .handle = worker_handle,
    .terminate = worker_terminate,
};
