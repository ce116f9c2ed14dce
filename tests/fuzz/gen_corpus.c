/*
 * Writes the fuzz_wire seed corpus: one valid frame of each kind per file,
 * plus one stream of several frames, made with the real encoders.
 *
 *   fuzz_wire_gen_corpus DIR
 */
#include "transport/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dir;

static void put_file(const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* The stream file: every frame written, one after another. */
static uint8_t stream[4096];
static size_t stream_len;

static void emit(const char *name, const uint8_t *frame, size_t n)
{
    put_file(name, frame, n);
    if (stream_len + n > sizeof stream)
        abort();
    memcpy(stream + stream_len, frame, n);
    stream_len += n;
}

/* A MSG or NAMED frame: prefix, then payload. */
static void emit_msg(const char *file, const char *name, const gr_msg *m)
{
    uint8_t frame[GR__WIRE_PREFIX_MAX + 256];
    size_t n = name ? gr__wire_named_prefix(frame, 42, name, strlen(name), m)
                    : gr__wire_msg_prefix(frame, m);
    if (m->len > 256)
        abort();
    if (m->len != 0)
        memcpy(frame + n, m->data, m->len);
    emit(file, frame, n + m->len);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];

    static const char payload[] = "hello, grove";
    gr_msg m = {.to = {.node = 1, .incarnation = 2, .serial = 3}};
    emit_msg("msg_empty", NULL, &m);
    m = (gr_msg){.to = {.node = 0, .incarnation = 1, .serial = 1u << 20},
                 .from = {.node = 7, .incarnation = 70000, .serial = 9},
                 .type = 300,
                 .corr = UINT64_MAX,
                 .flags = 0x1,
                 .data = payload,
                 .len = sizeof payload - 1};
    emit_msg("msg_payload", NULL, &m);
    emit_msg("named", "logger", &m);

    uint8_t frame[GR__WIRE_PREFIX_MAX];
    size_t n = gr__wire_node_frame(frame, GR__WIRE_NODE_UP, 5, 1, "worker-5");
    emit("node_up", frame, n);
    n = gr__wire_node_frame(frame, GR__WIRE_NODE_DOWN, 5, 1, NULL);
    emit("node_down", frame, n);
    n = gr__wire_node_frame(frame, GR__WIRE_SHUTDOWN, 0, 0, NULL);
    emit("shutdown", frame, n);
    n = gr__wire_whereis_frame(
        frame, "counter", 7,
        (gr_ref){.node = 5, .incarnation = 1, .serial = 77}, 1234);
    emit("whereis", frame, n);
    n = gr__wire_ack_frame(frame, 123456789);
    emit("ack", frame, n);

    gr__wire_hello h = {.node = 3,
                        .incarnation = 1,
                        .parent = 0,
                        .parent_inc = 1,
                        .max_frame = 1u << 20,
                        .name = "child",
                        .name_len = 5,
                        .root = "root",
                        .root_len = 4,
                        .arg = "arg",
                        .arg_len = 3};
    for (size_t i = 0; i < GR__WIRE_SECRET; i++)
        h.secret[i] = (uint8_t)(i * 37 + 1);
    size_t len;
    uint8_t *hf = gr__wire_hello_frame(GR__WIRE_HELLO, &h, &len);
    if (hf == NULL)
        abort();
    emit("hello", hf, len);
    free(hf);
    h.pid = 12345;
    h.root_serial = 77;
    hf = gr__wire_hello_frame(GR__WIRE_WELCOME, &h, &len);
    if (hf == NULL)
        abort();
    emit("welcome", hf, len);
    free(hf);

    put_file("stream", stream, stream_len);
    return 0;
}
