/*
 * A client connection: owns its socket (length-prefixed frames), checks
 * and decodes each request, asks the store, and writes the answers back
 * in the order of the requests (one refused here waits its turn behind
 * those at the store). A client may send up to WINDOW requests before it
 * reads an answer; beyond that the conn stops reading, and TCP slows the
 * client. A bad request gets a "badrequest" answer naming what is wrong,
 * and the connection goes on.
 */
#include "jobq.h"
#include "wire.h"

#include <grove/msgpack.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Requests one client may have at the store at once. */
#define WINDOW 64

/* How long the store may take to answer. */
#define STORE_WAIT_MS 30000

/* A request waiting for its turn to be answered. */
typedef struct slot {
    uint64_t corr; /* Its ask of the store; 0 when answered here. */
    uint64_t rid;
    char *answer; /* The answer's bytes, once known; NULL before. */
    size_t len;
} slot;

typedef struct conn {
    gr_socket s;
    bool reading; /* The socket is active. */
    bool closing; /* The client sent its last request. */
    /* Requests not yet answered, oldest at head. */
    slot q[WINDOW];
    uint32_t head, count;
} conn;

/* Writes the answers that are next in order. */
static void write_ready(gr_ctx *ctx, conn *c)
{
    while (c->count > 0 && c->q[c->head].answer != NULL) {
        slot *sl = &c->q[c->head];
        (void)gr_io_write(ctx, c->s, sl->answer, sl->len);
        free(sl->answer);
        *sl = (slot){0};
        c->head = (c->head + 1) % WINDOW;
        c->count--;
    }
}

/* Records the answer of slot sl (bytes copied). */
static void set_answer(slot *sl, const void *data, size_t len)
{
    sl->answer = malloc(len ? len : 1);
    if (sl->answer == NULL)
        return; /* No memory: the client waits; its timeout tells it. */
    memcpy(sl->answer, data, len);
    sl->len = len;
    sl->corr = 0;
}

/* Takes the next slot for a request; NULL when the window is full. */
static slot *take_slot(conn *c, uint64_t rid)
{
    if (c->count == WINDOW)
        return NULL;
    slot *sl = &c->q[(c->head + c->count++) % WINDOW];
    *sl = (slot){.rid = rid};
    return sl;
}

/* Answers request rid with an error, in its turn. */
static void write_error(gr_ctx *ctx, conn *c, uint64_t rid, const char *error,
                        const char *reason)
{
    jq_buf b;
    jq_buf_init(&b);
    jq_pack_error(&b.pk, rid, error, reason);
    slot *sl = take_slot(c, rid);
    if (sl != NULL)
        set_answer(sl, b.sb.data, b.sb.size);
    else /* Reading stops before the window is full; never here. */
        (void)gr_io_write(ctx, c->s, b.sb.data, b.sb.size);
    msgpack_sbuffer_destroy(&b.sb);
    write_ready(ctx, c);
}

/* Reads more while the window has room. */
static void read_on(gr_ctx *ctx, conn *c)
{
    if (!c->reading && !c->closing && c->count < WINDOW &&
        gr_io_activate(ctx, c->s, 1) == GR_OK)
        c->reading = true;
}

/* Whether name is a job type or queue name: 1..JQ_NAME_MAX of
 * [A-Za-z0-9_.:-]. */
static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > JQ_NAME_MAX)
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789_.:-") == n;
}

/* Reads optional number field key of map into *out, within [min, max];
 * an absent field leaves *out. Writes why into why when it is bad. */
static bool number(const msgpack_object *map, const char *key, uint64_t min,
                   uint64_t max, uint64_t *out, char *why, size_t size)
{
    const msgpack_object *o = jq_map_get(map, key);
    uint64_t v;
    if (o == NULL)
        return true;
    if (!jq_obj_uint(o, &v) || v < min || v > max) {
        snprintf(why, size, "%s must be a number from %llu to %llu", key,
                 (unsigned long long)min, (unsigned long long)max);
        return false;
    }
    *out = v;
    return true;
}

/* Builds a jq_push_req from a push request; NULL (with why) if bad. */
static jq_push_req *decode_push(const msgpack_object *map, uint64_t rid,
                                size_t *len, char *why, size_t size)
{
    jq_push_req head = {.rid = rid};
    snprintf(head.queue, sizeof head.queue, "%s", JQ_DEFAULT_QUEUE);
    const msgpack_object *o;
    if (!jq_obj_text(jq_map_get(map, "type"), head.type, sizeof head.type) ||
        !name_ok(head.type)) {
        snprintf(why, size, "type must be 1 to %d of A-Z a-z 0-9 _ . : -",
                 JQ_NAME_MAX);
        return NULL;
    }
    if ((o = jq_map_get(map, "queue")) != NULL &&
        (!jq_obj_text(o, head.queue, sizeof head.queue) ||
         !name_ok(head.queue))) {
        snprintf(why, size, "queue must be 1 to %d of A-Z a-z 0-9 _ . : -",
                 JQ_NAME_MAX);
        return NULL;
    }
    if ((o = jq_map_get(map, "key")) != NULL &&
        !jq_obj_text(o, head.key, sizeof head.key)) {
        snprintf(why, size, "key must be a string of 1 to %d bytes",
                 JQ_KEY_MAX);
        return NULL;
    }
    uint64_t prio = JQ_DEFAULT_PRIORITY, attempts = JQ_DEFAULT_ATTEMPTS,
             lease = JQ_DEFAULT_LEASE_MS, at = 0, delay = 0;
    if (!number(map, "priority", 0, JQ_PRIORITY_MAX, &prio, why, size) ||
        !number(map, "max_attempts", 1, JQ_ATTEMPTS_MAX, &attempts, why,
                size) ||
        !number(map, "lease_ms", 10, 24 * 3600 * 1000, &lease, why, size) ||
        !number(map, "run_at", 0, INT64_MAX / 2, &at, why, size) ||
        !number(map, "delay_ms", 0, 365LL * 24 * 3600 * 1000, &delay, why,
                size))
        return NULL;
    if (jq_map_get(map, "run_at") != NULL &&
        jq_map_get(map, "delay_ms") != NULL) {
        snprintf(why, size, "give run_at or delay_ms, not both");
        return NULL;
    }
    head.priority = (uint32_t)prio;
    head.max_attempts = (uint32_t)attempts;
    head.lease_ms = (uint32_t)lease;
    head.run_at_ms = delay != 0 ? jq_now_ms() + (int64_t)delay : (int64_t)at;
    /* The payload is one msgpack value, kept as its bytes. */
    msgpack_sbuffer pb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&pb);
    msgpack_packer_init(&pk, &pb, msgpack_sbuffer_write);
    if ((o = jq_map_get(map, "payload")) != NULL)
        msgpack_pack_object(&pk, *o);
    else
        msgpack_pack_nil(&pk);
    if (pb.size > JQ_PAYLOAD_MAX) {
        snprintf(why, size, "payload of %zu bytes; at most %d", pb.size,
                 JQ_PAYLOAD_MAX);
        msgpack_sbuffer_destroy(&pb);
        return NULL;
    }
    *len = sizeof head + pb.size;
    jq_push_req *p = malloc(*len);
    if (p != NULL) {
        *p = head;
        p->payload_len = (uint32_t)pb.size;
        memcpy(p->payload, pb.data, pb.size);
    } else {
        snprintf(why, size, "out of memory");
    }
    msgpack_sbuffer_destroy(&pb);
    return p;
}

/* Asks the store; false (with why) when it cannot be asked. */
static bool ask_store(gr_ctx *ctx, conn *c, uint32_t type, uint64_t rid,
                      const void *data, size_t len, char *why, size_t size)
{
    gr_ref store;
    uint64_t corr;
    int rc = gr_whereis(gr_ctx_system(ctx), JQ_STORE, &store);
    if (rc == GR_OK)
        rc = gr_ask(ctx, store, type, data, len, (gr_duration)STORE_WAIT_MS,
                    &corr);
    if (rc != GR_OK) {
        snprintf(why, size, "the store cannot take it: %s", gr_strerror(rc));
        return false;
    }
    slot *sl = take_slot(c, rid);
    if (sl != NULL)
        sl->corr = corr;
    return true;
}

/* Decodes one request frame and sends it on. */
static void on_frame(gr_ctx *ctx, conn *c, const void *data, size_t len)
{
    char why[160] = "";
    msgpack_unpacked up;
    if (!jq_unpack(data, len, &up) || up.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&up);
        write_error(ctx, c, 0, JQ_ERR_BADREQUEST,
                    "a request is one msgpack map (and a push's payload one "
                    "msgpack value in it)");
        return;
    }
    const msgpack_object *map = &up.data;
    uint64_t rid = 0;
    bool has_rid = jq_obj_uint(jq_map_get(map, "rid"), &rid);
    char op[16] = "";
    int which = 0;
    if (jq_obj_text(jq_map_get(map, "op"), op, sizeof op))
        for (int i = JQ_OP_PUSH; i <= JQ_OP_DEAD; i++)
            if (strcmp(op, jq_op_name(i)) == 0)
                which = i;
    static const uint32_t types[] = {
        [JQ_OP_PUSH] = JQ_PUSH,     [JQ_OP_GET] = JQ_GET,
        [JQ_OP_CANCEL] = JQ_CANCEL, [JQ_OP_RETRY] = JQ_RETRY,
        [JQ_OP_STATS] = JQ_STATS,   [JQ_OP_DEAD] = JQ_LIST_DEAD,
    };
    bool sent = false;
    if (!has_rid) { /* Nothing is done that could not be answered. */
        snprintf(why, sizeof why,
                 "every request needs rid, an unsigned integer");
    } else if (which == 0) {
        snprintf(why, sizeof why,
                 "op must be push, get, cancel, retry, stats or dead");
    } else if (which == JQ_OP_PUSH) {
        size_t plen;
        jq_push_req *p = decode_push(map, rid, &plen, why, sizeof why);
        sent = p != NULL &&
               ask_store(ctx, c, JQ_PUSH, rid, p, plen, why, sizeof why);
        free(p);
    } else if (which == JQ_OP_DEAD) {
        uint64_t after = 0, limit = 100;
        jq_dead_req r = {.rid = rid};
        if (number(map, "after", 0, UINT64_MAX, &after, why, sizeof why) &&
            number(map, "limit", 1, JQ_DEAD_LIST_MAX, &limit, why,
                   sizeof why)) {
            r.after = after;
            r.limit = (uint32_t)limit;
            sent = ask_store(ctx, c, JQ_LIST_DEAD, rid, &r, sizeof r, why,
                             sizeof why);
        }
    } else {
        jq_id_req r = {.rid = rid};
        if (which != JQ_OP_STATS &&
            !jq_obj_uint(jq_map_get(map, "job"), &r.job))
            snprintf(why, sizeof why, "%s needs job, a job id", op);
        else
            sent = ask_store(ctx, c, types[which], rid, &r, sizeof r, why,
                             sizeof why);
    }
    msgpack_unpacked_destroy(&up);
    if (!sent)
        write_error(ctx, c, rid,
                    strncmp(why, "the store", 9) == 0 ? JQ_ERR_UNAVAILABLE
                                                      : JQ_ERR_BADREQUEST,
                    why);
}

/* The store's answer (or its failure to give one). */
static void on_answer(gr_ctx *ctx, conn *c, const gr_msg *m)
{
    slot *sl = NULL;
    for (uint32_t k = 0; k < c->count && sl == NULL; k++)
        if (c->q[(c->head + k) % WINDOW].corr == m->corr)
            sl = &c->q[(c->head + k) % WINDOW];
    if (sl == NULL)
        return;
    if (m->type == JQ_ANSWER && m->len > 0) {
        set_answer(sl, m->data, m->len);
    } else {
        char why[GR_REASON_TEXT_MAX + 64], text[GR_REASON_TEXT_MAX + 32];
        gr_reason r;
        if (gr_ask_failed_read(m, &r) == GR_OK)
            gr_reason_format(&r, text, sizeof text);
        else
            snprintf(text, sizeof text, "no answer in %d ms", STORE_WAIT_MS);
        snprintf(why, sizeof why, "the store did not answer: %s", text);
        jq_buf b;
        jq_buf_init(&b);
        jq_pack_error(&b.pk, sl->rid, JQ_ERR_UNAVAILABLE, why);
        set_answer(sl, b.sb.data, b.sb.size);
        msgpack_sbuffer_destroy(&b.sb);
    }
    write_ready(ctx, c);
    read_on(ctx, c);
}

/* Closes the socket once every request has its answer queued. Returns
 * GR_STOP when it did. */
static int close_when_answered(gr_ctx *ctx, conn *c)
{
    if (!c->closing || c->count > 0)
        return GR_CONTINUE;
    (void)gr_io_close(ctx, c->s);
    return GR_STOP;
}

static int conn_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    conn *c = state;
    if (m->flags & GR_MSG_REPLY) {
        on_answer(ctx, c, m);
        return close_when_answered(ctx, c);
    }
    gr_io_event ev;
    if (gr_io_event_read(m, &ev) != GR_OK)
        return GR_CONTINUE;
    switch (ev.kind) {
    case GR_IO_GIVEN:
        c->s = ev.socket;
        read_on(ctx, c);
        return GR_CONTINUE;
    case GR_IO_DATA:
        c->reading = false;
        on_frame(ctx, c, ev.data, ev.len);
        read_on(ctx, c);
        return GR_CONTINUE;
    case GR_IO_ERROR:
        if (ev.code == GR_EMSGSIZE) {
            /* Reading has stopped: say why, after the answers due before
             * it, then hang up. */
            char why[96];
            snprintf(why, sizeof why, "a frame of more than %d bytes",
                     JQ_FRAME_MAX);
            write_error(ctx, c, 0, JQ_ERR_BADREQUEST, why);
            c->closing = true;
            return close_when_answered(ctx, c);
        }
        return GR_STOP;
    case GR_IO_CLOSED:
        /* A half close: what was asked is still answered. */
        c->closing = true;
        return close_when_answered(ctx, c);
    default:
        return GR_CONTINUE;
    }
}

static void conn_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)ctx;
    (void)why;
    conn *c = state;
    for (uint32_t k = 0; k < WINDOW; k++)
        free(c->q[k].answer);
}

const gr_behaviour jq_conn = {
    .name = "conn",
    .state_size = sizeof(conn),
    .handle = conn_handle,
    .terminate = conn_terminate,
};
