/*
 * libFuzzer target for what a distribution connection reads
 * (dist/reader.c) and everything it hands on: the input is the byte
 * stream a peer sends after the handshake, frames of a 4-byte length and
 * a body ('p', the control tuple, the message), ticks being empty ones.
 *
 * It goes through a socket pair into the real reader, gr__dist_read, as
 * on a connection from the node peer@127.0.0.1, until the reader closes
 * the connection (at the end of the input, or for a frame it refuses);
 * so the frame checks, the control messages (sends, calls, replies,
 * links, exits, unlinks, monitors of pids and names, demonitors, DOWNs),
 * the term conversions and the deliveries all run on it. An actor
 * registered as "fuzzy" takes what is sent to that name, and monitors of
 * it are held. Beyond "no crash, no sanitizer report", it checks that the
 * reader says why it closes, keeps at most what it read, and that the
 * monitors and calls the peer made are all forgotten when its node goes,
 * as when a connection closes.
 *
 * The system and its gr__dist are fuzz_dist.h's: no epmd, no network.
 * What the reader writes back (tick answers, unlink acknowledgements, the
 * DOWN of a monitor it cannot make) goes into the socket pair and is
 * thrown away. Each input starts with no Erlang node known.
 */
#define _GNU_SOURCE /* SOCK_NONBLOCK. */
#include "fuzz_dist.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

/* The largest input taken: what the socket pair holds at once. */
#define INPUT_MAX 65536
#define PEER      "peer@127.0.0.1"

static gr_system *sys;
static gr__dist *dist;

static int fuzzy_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return gr_register(ctx, "fuzzy");
}

static int fuzzy_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    return GR_CONTINUE;
}

static const gr_behaviour fuzzy = {
    .name = "fuzzy", .init = fuzzy_init, .handle = fuzzy_handle};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dist = fuzz_dist_start(&sys);
    dist->conns = calloc(1, sizeof *dist->conns);
    need(dist->conns != NULL);
    dist->conns_cap = 1;
    gr_ref ref;
    need(gr_system_spawn(sys, &fuzzy, NULL, 0, &ref) == GR_OK);
    /* Its name is registered in its init, which runs on a worker. */
    for (int i = 0; i < 1000 && gr_whereis(sys, "fuzzy", &ref) != GR_OK; i++)
        usleep(1000);
    need(gr_whereis(sys, "fuzzy", &ref) == GR_OK);
    return 0;
}

/* Throws away what the reader wrote back to the peer. */
static void drain(int fd)
{
    char sink[4096];
    while (read(fd, sink, sizeof sink) > 0)
        continue;
}

/* Forgets what the peer's node left behind, as a closed connection does,
 * and the calls it made, and checks that nothing of it is held. */
static void peer_gone(uint32_t peer)
{
    gr__monitors_node_gone(dist, peer);
    gr__dist_calls_clear(dist);
    pthread_mutex_lock(&dist->lock);
    need(dist->nmons == 0 && dist->mons_by_ref.n == 0);
    dist->nnodes = 0;
    pthread_mutex_unlock(&dist->lock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > INPUT_MAX)
        return 0;
    int sv[2];
    need(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    int sndbuf = 4 * INPUT_MAX;
    (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    need(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
    need(size == 0 || write(sv[1], data, size) == (ssize_t)size);
    need(shutdown(sv[1], SHUT_WR) == 0);

    /* The thread's one connection (there is no thread), so that what the
     * reader answers goes through its queue to the peer. */
    dist_conn *c = &dist->conns[0];
    memset(c, 0, sizeof *c);
    c->fd = sv[0];
    c->id = gr__dist_note_node(dist, PEER, 0);
    snprintf(c->node, sizeof c->node, "%s", PEER);
    dist->nconns = 1;
    const char *why = NULL;
    size_t reads = 0;
    while (gr__dist_read(dist, c, &why)) {
        need(c->rlen <= c->rcap);
        need(++reads <= size + 1); /* Each read takes a byte, or ends. */
        drain(sv[1]);
    }
    need(why != NULL);
    gr__dist_conn_release(c);
    dist->nconns = 0;
    close(sv[0]);
    close(sv[1]);
    peer_gone(c->id);
    return 0;
}
