/*
 * The client library (jobq_client.h): plain blocking sockets, frames of a
 * 4-byte big-endian length and a msgpack map.
 */
#define _POSIX_C_SOURCE 200809L

#include "jobq_client.h"
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Largest answer frame accepted. */
#define ANSWER_MAX (64u * 1024 * 1024)

struct jobq_client {
    int fd;
    int timeout_ms;
    uint64_t next_rid; /* The next request's rid. */
    uint64_t awaited;  /* The rid the next answer must carry. */
    char code[16];
    char error[256];
    uint8_t *frame; /* The last answer's bytes. */
};

static _Thread_local char connect_error[256];

const char *jobq_connect_error(void)
{
    return connect_error;
}

const char *jobq_error_code(const jobq_client *c)
{
    return c != NULL ? c->code : "io";
}

const char *jobq_error(const jobq_client *c)
{
    return c != NULL ? c->error : "no client (jobq_connect failed?)";
}

/* Forgets the last call's error: a new call starts. */
static void begin(jobq_client *c)
{
    c->code[0] = '\0';
    c->error[0] = '\0';
}

static int fail(jobq_client *c, int rc, const char *code, const char *why)
{
    snprintf(c->code, sizeof c->code, "%s", code);
    snprintf(c->error, sizeof c->error, "%s", why);
    if (rc == JOBQ_ETIMEDOUT || rc == JOBQ_EIO || rc == JOBQ_EPROTO) {
        /* The stream is out of step: nothing more can be read from it. */
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
    }
    return rc;
}

/* Opens a socket to addr and waits up to timeout_ms for it to connect. */
static int dial(const char *addr, int timeout_ms)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd;
    memset(&ss, 0, sizeof ss);
    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        if (strlen(addr + 5) >= sizeof un->sun_path) {
            snprintf(connect_error, sizeof connect_error, "path too long");
            return -2;
        }
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, addr + 5);
        sl = sizeof *un;
    } else {
        char host[256];
        const char *colon = strrchr(addr, ':');
        if (colon == NULL || colon == addr || colon[1] == '\0' ||
            (size_t)(colon - addr) >= sizeof host) {
            snprintf(connect_error, sizeof connect_error,
                     "\"%s\" is not HOST:PORT or unix:/path", addr);
            return -2;
        }
        /* getaddrinfo would take 99999 as 99999 mod 65536. */
        char *end;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || port == 0 ||
            port > 65535) {
            snprintf(connect_error, sizeof connect_error,
                     "\"%s\": the port is not a number from 1 to 65535", addr);
            return -2;
        }
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        if (host[0] == '[' && host[strlen(host) - 1] == ']') {
            memmove(host, host + 1, strlen(host));
            host[strlen(host) - 1] = '\0';
        }
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
        int rc = getaddrinfo(host, colon + 1, &hints, &ai);
        if (rc != 0) {
            snprintf(connect_error, sizeof connect_error, "%s: %s", addr,
                     gai_strerror(rc));
            return -2;
        }
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        sl = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto failed;
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        if (errno != EINPROGRESS)
            goto failed;
        struct pollfd p = {fd, POLLOUT, 0};
        int err = 0;
        socklen_t el = sizeof err;
        if (poll(&p, 1, timeout_ms) != 1) {
            errno = ETIMEDOUT;
            goto failed;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            errno = err;
            goto failed;
        }
    }
    if (ss.ss_family != AF_UNIX) {
        int one = 1; /* Requests are small and each is waited for. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
failed:
    snprintf(connect_error, sizeof connect_error, "%s: %s", addr,
             strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

int jobq_connect(const char *addr, int timeout_ms, jobq_client **out)
{
    if (out != NULL)
        *out = NULL;
    if (addr == NULL || out == NULL || timeout_ms <= 0) {
        snprintf(connect_error, sizeof connect_error, "%s",
                 addr == NULL  ? "addr is NULL"
                 : out == NULL ? "out is NULL"
                               : "timeout_ms must be more than 0");
        return JOBQ_EINVAL;
    }
    int fd = dial(addr, timeout_ms);
    if (fd < 0)
        return fd == -2 ? JOBQ_EINVAL : JOBQ_EIO;
    jobq_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        snprintf(connect_error, sizeof connect_error, "out of memory");
        return JOBQ_EIO;
    }
    c->fd = fd;
    c->timeout_ms = timeout_ms;
    c->next_rid = 1;
    c->awaited = 1;
    *out = c;
    return JOBQ_OK;
}

void jobq_close(jobq_client *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->frame);
    free(c);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Moves len bytes in the direction of events (POLLOUT: send buf, POLLIN:
 * fill buf) before the deadline. */
static int transfer(jobq_client *c, void *buf, size_t len, short events,
                    int64_t deadline)
{
    size_t done = 0;
    while (done < len) {
        int64_t left = deadline - now_ms();
        struct pollfd p = {c->fd, events, 0};
        if (left <= 0 || poll(&p, 1, (int)left) == 0)
            return fail(c, JOBQ_ETIMEDOUT, "timeout",
                        "the server did not answer in time");
        ssize_t k =
            events == POLLOUT
                ? send(c->fd, (char *)buf + done, len - done, MSG_NOSIGNAL)
                : recv(c->fd, (char *)buf + done, len - done, 0);
        if (k == 0)
            return fail(c, JOBQ_EIO, "io", "the server closed the connection");
        if (k < 0 && errno != EAGAIN && errno != EINTR)
            return fail(c, JOBQ_EIO, "io", strerror(errno));
        if (k > 0)
            done += (size_t)k;
    }
    return JOBQ_OK;
}

/* Sends one frame: the length, then the packed map, in one write (two
 * small writes would meet Nagle's algorithm and a delayed ACK). */
static int send_frame(jobq_client *c, const msgpack_sbuffer *b)
{
    if (c->fd < 0)
        return fail(c, JOBQ_EIO, "io", "not connected");
    uint8_t *f = malloc(4 + b->size);
    if (f == NULL)
        return fail(c, JOBQ_EIO, "io", "out of memory");
    f[0] = (uint8_t)(b->size >> 24);
    f[1] = (uint8_t)(b->size >> 16);
    f[2] = (uint8_t)(b->size >> 8);
    f[3] = (uint8_t)b->size;
    memcpy(f + 4, b->data, b->size);
    int rc = transfer(c, f, 4 + b->size, POLLOUT, now_ms() + c->timeout_ms);
    free(f);
    return rc;
}

/* Reads the next answer into *out; an error answer gives JOBQ_EREFUSED
 * (with *out destroyed). */
static int recv_answer(jobq_client *c, msgpack_unpacked *out)
{
    if (c->fd < 0)
        return fail(c, JOBQ_EIO, "io", "not connected");
    uint8_t head[4];
    int64_t deadline = now_ms() + c->timeout_ms;
    int rc = transfer(c, head, 4, POLLIN, deadline);
    if (rc != JOBQ_OK)
        return rc;
    uint32_t len = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 |
                   (uint32_t)head[2] << 8 | head[3];
    if (len == 0 || len > ANSWER_MAX)
        return fail(c, JOBQ_EPROTO, "proto", "an answer of a bad size");
    free(c->frame);
    if ((c->frame = malloc(len)) == NULL)
        return fail(c, JOBQ_EIO, "io", "out of memory");
    if ((rc = transfer(c, c->frame, len, POLLIN, deadline)) != JOBQ_OK)
        return rc;
    if (!jq_unpack(c->frame, len, out) ||
        out->data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(out);
        return fail(c, JOBQ_EPROTO, "proto", "an answer that is no map");
    }
    uint64_t rid;
    if (!jq_obj_uint(jq_map_get(&out->data, "rid"), &rid) ||
        rid != c->awaited++) {
        msgpack_unpacked_destroy(out);
        return fail(c, JOBQ_EPROTO, "proto",
                    "an answer out of step with the requests");
    }
    const msgpack_object *ok = jq_map_get(&out->data, "ok");
    if (ok != NULL && ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean)
        return JOBQ_OK;
    char code[16] = "?", why[200] = "";
    (void)jq_obj_text(jq_map_get(&out->data, "error"), code, sizeof code);
    (void)jq_obj_text(jq_map_get(&out->data, "reason"), why, sizeof why);
    msgpack_unpacked_destroy(out);
    snprintf(c->code, sizeof c->code, "%s", code);
    snprintf(c->error, sizeof c->error, "%s: %s", code, why);
    return JOBQ_EREFUSED;
}

/* Starts a request map with op and rid; nfields more follow. */
static void start(jobq_client *c, msgpack_packer *pk, const char *op,
                  uint32_t nfields)
{
    msgpack_pack_map(pk, 2 + nfields);
    jq_kv_str(pk, "op", op);
    jq_kv_uint(pk, "rid", c->next_rid++);
}

/* Refuses a call that is not a push while pushes await their answers:
 * it would read theirs. */
static int check_idle(jobq_client *c)
{
    if (c->awaited == c->next_rid)
        return JOBQ_OK;
    snprintf(c->code, sizeof c->code, "usage");
    snprintf(c->error, sizeof c->error,
             "%llu pushes sent with jobq_push_send await jobq_push_wait",
             (unsigned long long)(c->next_rid - c->awaited));
    return JOBQ_EINVAL;
}

int jobq_request(jobq_client *c, const char *op, uint32_t nfields,
                 void (*fill)(msgpack_packer *pk, void *arg), void *arg,
                 msgpack_unpacked *reply)
{
    if (c == NULL || op == NULL || reply == NULL)
        return JOBQ_EINVAL;
    begin(c);
    int rc = check_idle(c);
    if (rc != JOBQ_OK)
        return rc;
    msgpack_sbuffer b;
    msgpack_packer pk;
    msgpack_sbuffer_init(&b);
    msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
    start(c, &pk, op, fill != NULL ? nfields : 0);
    if (fill != NULL)
        fill(&pk, arg);
    rc = send_frame(c, &b);
    msgpack_sbuffer_destroy(&b);
    return rc != JOBQ_OK ? rc : recv_answer(c, reply);
}

int jobq_push_send(jobq_client *c, const char *type, const void *payload,
                   size_t len, const jobq_push_opts *o)
{
    jobq_push_opts none = {0};
    if (o == NULL)
        o = &none;
    if (c == NULL || type == NULL)
        return JOBQ_EINVAL;
    begin(c);
    msgpack_unpacked one;
    bool bad = payload != NULL && len > 0 && !jq_unpack(payload, len, &one);
    if (payload != NULL && len > 0 && !bad)
        msgpack_unpacked_destroy(&one);
    if (bad || (o->run_at_ms != 0 && o->delay_ms != 0)) {
        snprintf(c->code, sizeof c->code, "usage");
        snprintf(c->error, sizeof c->error, "%s",
                 bad ? "the payload is not exactly one msgpack value"
                     : "give run_at_ms or delay_ms, not both");
        return JOBQ_EINVAL;
    }
    msgpack_sbuffer b;
    msgpack_packer pk;
    msgpack_sbuffer_init(&b);
    msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
    uint32_t n = 2 + (o->queue != NULL) + o->priority_set +
                 (o->run_at_ms != 0) + (o->delay_ms != 0) +
                 (o->max_attempts != 0) + (o->lease_ms != 0) + (o->key != NULL);
    start(c, &pk, "push", n);
    jq_kv_str(&pk, "type", type);
    jq_pack_str(&pk, "payload");
    if (payload != NULL && len > 0)
        msgpack_sbuffer_write(&b, payload, len); /* Already one value. */
    else
        msgpack_pack_nil(&pk);
    if (o->queue != NULL)
        jq_kv_str(&pk, "queue", o->queue);
    if (o->priority_set)
        jq_kv_int(&pk, "priority", o->priority);
    if (o->run_at_ms != 0)
        jq_kv_int(&pk, "run_at", o->run_at_ms);
    if (o->delay_ms != 0)
        jq_kv_int(&pk, "delay_ms", o->delay_ms);
    if (o->max_attempts != 0)
        jq_kv_uint(&pk, "max_attempts", o->max_attempts);
    if (o->lease_ms != 0)
        jq_kv_uint(&pk, "lease_ms", o->lease_ms);
    if (o->key != NULL)
        jq_kv_str(&pk, "key", o->key);
    int rc = send_frame(c, &b);
    msgpack_sbuffer_destroy(&b);
    return rc;
}

int jobq_push_wait(jobq_client *c, uint64_t *id, bool *dup)
{
    if (c == NULL)
        return JOBQ_EINVAL;
    begin(c);
    if (c->awaited == c->next_rid) {
        snprintf(c->code, sizeof c->code, "usage");
        snprintf(c->error, sizeof c->error,
                 "no push sent with jobq_push_send awaits its answer");
        return JOBQ_EINVAL;
    }
    msgpack_unpacked r;
    int rc = recv_answer(c, &r);
    if (rc != JOBQ_OK)
        return rc;
    const msgpack_object *d = jq_map_get(&r.data, "duplicate");
    uint64_t got;
    if (!jq_obj_uint(jq_map_get(&r.data, "job"), &got)) {
        msgpack_unpacked_destroy(&r);
        return fail(c, JOBQ_EPROTO, "proto", "a push answer without job");
    }
    if (id != NULL)
        *id = got;
    if (dup != NULL)
        *dup = d != NULL && d->type == MSGPACK_OBJECT_BOOLEAN && d->via.boolean;
    msgpack_unpacked_destroy(&r);
    return JOBQ_OK;
}

int jobq_push(jobq_client *c, const char *type, const void *payload, size_t len,
              const jobq_push_opts *opts, uint64_t *id, bool *dup)
{
    if (c == NULL)
        return JOBQ_EINVAL;
    int rc = check_idle(c);
    if (rc == JOBQ_OK)
        rc = jobq_push_send(c, type, payload, len, opts);
    return rc != JOBQ_OK ? rc : jobq_push_wait(c, id, dup);
}

static void fill_job(msgpack_packer *pk, void *arg)
{
    jq_kv_uint(pk, "job", *(const uint64_t *)arg);
}

static uint64_t u(const msgpack_object *map, const char *key)
{
    uint64_t v = 0;
    (void)jq_obj_uint(jq_map_get(map, key), &v);
    return v;
}

static void read_job(const msgpack_object *m, jobq_job *j)
{
    memset(j, 0, sizeof *j);
    j->id = u(m, "id");
    (void)jq_obj_text(jq_map_get(m, "state"), j->state, sizeof j->state);
    (void)jq_obj_text(jq_map_get(m, "type"), j->type, sizeof j->type);
    (void)jq_obj_text(jq_map_get(m, "queue"), j->queue, sizeof j->queue);
    (void)jq_obj_text(jq_map_get(m, "key"), j->key, sizeof j->key);
    (void)jq_obj_text(jq_map_get(m, "error"), j->error, sizeof j->error);
    j->priority = (uint32_t)u(m, "priority");
    j->attempts = (uint32_t)u(m, "attempts");
    j->max_attempts = (uint32_t)u(m, "max_attempts");
    j->redeliveries = (uint32_t)u(m, "redeliveries");
    j->run_at = (int64_t)u(m, "run_at");
    j->created = (int64_t)u(m, "created");
    j->finished = (int64_t)u(m, "finished");
}

int jobq_get(jobq_client *c, uint64_t id, jobq_job *out)
{
    msgpack_unpacked r;
    int rc = jobq_request(c, "get", 1, fill_job, &id, &r);
    if (rc != JOBQ_OK)
        return rc;
    read_job(jq_map_get(&r.data, "job"), out);
    const msgpack_object *e = jq_map_get(&r.data, "errors");
    out->nerrors =
        e != NULL && e->type == MSGPACK_OBJECT_ARRAY ? e->via.array.size : 0;
    msgpack_unpacked_destroy(&r);
    return JOBQ_OK;
}

static int simple(jobq_client *c, const char *op, uint64_t id)
{
    msgpack_unpacked r;
    int rc = jobq_request(c, op, 1, fill_job, &id, &r);
    if (rc == JOBQ_OK)
        msgpack_unpacked_destroy(&r);
    return rc;
}

int jobq_cancel(jobq_client *c, uint64_t id)
{
    return simple(c, "cancel", id);
}

int jobq_retry(jobq_client *c, uint64_t id)
{
    return simple(c, "retry", id);
}

int jobq_stats_get(jobq_client *c, jobq_stats *out)
{
    msgpack_unpacked r;
    int rc = jobq_request(c, "stats", 0, NULL, NULL, &r);
    if (rc != JOBQ_OK)
        return rc;
    const msgpack_object *m = &r.data;
    *out = (jobq_stats){
        .scheduled = u(m, "scheduled"),
        .available = u(m, "available"),
        .reserved = u(m, "reserved"),
        .done = u(m, "done"),
        .dead = u(m, "dead"),
        .cancelled = u(m, "cancelled"),
        .redeliveries = u(m, "redeliveries"),
        .workers = u(m, "workers"),
        .pushed = u(m, "pushed"),
        .executed = u(m, "executed"),
        .commits = u(m, "commits"),
    };
    msgpack_unpacked_destroy(&r);
    return JOBQ_OK;
}

typedef struct dead_args {
    uint64_t after;
    uint64_t limit;
} dead_args;

static void fill_dead(msgpack_packer *pk, void *arg)
{
    const dead_args *a = arg;
    jq_kv_uint(pk, "after", a->after);
    jq_kv_uint(pk, "limit", a->limit);
}

int jobq_dead(jobq_client *c, uint64_t after, jobq_job *out, size_t cap,
              size_t *n)
{
    *n = 0;
    if (cap == 0)
        return JOBQ_OK;
    dead_args a = {after, cap > 1000 ? 1000 : cap};
    msgpack_unpacked r;
    int rc = jobq_request(c, "dead", 2, fill_dead, &a, &r);
    if (rc != JOBQ_OK)
        return rc;
    const msgpack_object *jobs = jq_map_get(&r.data, "jobs");
    if (jobs != NULL && jobs->type == MSGPACK_OBJECT_ARRAY)
        for (uint32_t i = 0; i < jobs->via.array.size && *n < cap; i++)
            read_job(&jobs->via.array.ptr[i], &out[(*n)++]);
    msgpack_unpacked_destroy(&r);
    return JOBQ_OK;
}
