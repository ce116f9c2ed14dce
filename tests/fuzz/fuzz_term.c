/*
 * libFuzzer target for the Erlang term checks and conversions
 * (dist/term.c). The input is one message as libei hands it over: the
 * version byte 131, then a term. It is copied into a malloc'd buffer of
 * exactly its length (AddressSanitizer sees any instrumented read past
 * it) and into the last bytes of a page followed by an inaccessible one
 * (libei is not instrumented: a read past the end there faults).
 *
 * Beyond "no crash, no sanitizer report", it checks:
 *   - gr__term_end accepts no more than the input holds, and where it
 *     accepts, libei's decoders (container headers, ei_skip_term for the
 *     rest) end every piece at the same byte: the sizes the checker
 *     believes are the ones libei reads;
 *   - gr__term_to_msgpack refuses what gr__term_end refuses, answers
 *     GR_OK or GR_EINVAL with a reason, ends at the term's end, and gives
 *     the same bytes from either copy;
 *   - what it packs is one msgpack object, which gr__msgpack_to_term
 *     takes back into a term that gr__term_end accepts and that packs
 *     again to the very same bytes (lists come back as tuples and strings
 *     as tuples of integers, but each packs as the same array).
 * A failed check abort()s, which libFuzzer reports as a crash.
 *
 * The conversions need a gr__dist for pids: a real system and a
 * gr__dist set up by hand as the node fuzz@127.0.0.1 (fuzz_dist.h). Each
 * input starts with no Erlang node known.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS. */
#include "fuzz_dist.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static gr_system *sys;
static gr__dist *dist;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dist = fuzz_dist_start(&sys);
    return 0;
}

/* A malloc'd copy of exactly n bytes. */
static char *exact(const void *p, size_t n)
{
    char *q = malloc(n ? n : 1);
    need(q != NULL);
    if (n != 0)
        memcpy(q, p, n);
    return q;
}

/* A copy of n bytes that ends where an inaccessible page starts. */
typedef struct guarded {
    char *map, *data;
    size_t len;
} guarded;

static guarded guard(const void *p, size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t span = (n + page - 1) / page * page + page;
    guarded g = {.len = span};
    g.map = mmap(NULL, span, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    need(g.map != MAP_FAILED);
    need(mprotect(g.map + span - page, page, PROT_NONE) == 0);
    g.data = g.map + span - page - n;
    if (n != 0)
        memcpy(g.data, p, n);
    return g;
}

/* Walks the term at buf[*at] (one gr__term_end accepted) with libei's
 * container headers, and ei_skip_term for every other piece, which must
 * end where gr__term_end says it does. libei may refuse a piece that
 * gr__term_end takes (a float's text, a bit string's bit count); then the
 * walk goes on past it. (ei_skip_term is not used on a whole container:
 * it goes on past a piece it refuses as if it had none.) */
static void libei_agrees(const char *buf, int len, int *at)
{
    const char *why = NULL;
    int end = gr__term_end(buf, len, *at, &why);
    need(end > *at);
    int type, n, arity;
    need(ei_get_type(buf, at, &type, &n) == 0);
    switch (type) {
    case ERL_SMALL_TUPLE_EXT:
    case ERL_LARGE_TUPLE_EXT:
        need(ei_decode_tuple_header(buf, at, &arity) == 0 && arity == n);
        for (int i = 0; i < arity; i++)
            libei_agrees(buf, len, at);
        break;
    case ERL_LIST_EXT: /* The elements, then the tail. */
        need(ei_decode_list_header(buf, at, &arity) == 0 && arity == n);
        for (int i = 0; i <= arity; i++)
            libei_agrees(buf, len, at);
        break;
    case ERL_MAP_EXT:
        need(ei_decode_map_header(buf, at, &arity) == 0 && arity == n);
        for (int i = 0; i < 2 * arity; i++)
            libei_agrees(buf, len, at);
        break;
    default: {
        int i = *at;
        if (ei_skip_term(buf, &i) == 0)
            need(i == end);
        *at = end;
        break;
    }
    }
    need(*at == end);
}

/* Converts the term at buf[1] (len bytes in all): gr__term_to_msgpack's
 * answer, its bytes in sb, with the checks every answer must pass. */
static int convert(const char *buf, int len, int end, msgpack_sbuffer *sb)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    char why[128] = "";
    int index = 1;
    int rc = gr__term_to_msgpack(dist, buf, len, &index, &pk, why, sizeof why);
    need(rc == GR_OK || rc == GR_EINVAL);
    if (end < 0)
        need(rc == GR_EINVAL);
    if (rc == GR_OK)
        need(index == end && sb->size > 0);
    else
        need(why[0] != '\0');
    return rc;
}

static bool same(const msgpack_sbuffer *a, const msgpack_sbuffer *b)
{
    return a->size == b->size && memcmp(a->data, b->data, a->size) == 0;
}

/* msgpack (what a term packed as) to a term and back again: the same
 * bytes. */
static void round_trip(const msgpack_sbuffer *first)
{
    /* One object, exactly. */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    need(msgpack_unpack_next(&u, first->data, first->size, &off) ==
             MSGPACK_UNPACK_SUCCESS &&
         off == first->size);
    msgpack_unpacked_destroy(&u);

    ei_x_buff x;
    need(ei_x_new_with_version(&x) == 0);
    need(gr__msgpack_to_term(dist, first->data, first->size, &x) == GR_OK);
    char *term = exact(x.buff, (size_t)x.index);
    const char *why = NULL;
    need(gr__term_end(term, x.index, 1, &why) == x.index);
    msgpack_sbuffer second;
    need(convert(term, x.index, x.index, &second) == GR_OK);
    need(same(&second, first));
    msgpack_sbuffer_destroy(&second);
    free(term);
    ei_x_free(&x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || data[0] != 131 || size > INT32_MAX)
        return 0; /* Not what libei hands over. */
    int len = (int)size;

    /* Each input starts with no Erlang node known. */
    pthread_mutex_lock(&dist->lock);
    dist->nnodes = 0;
    pthread_mutex_unlock(&dist->lock);

    char *buf = exact(data, size);
    guarded g = guard(data, size);

    const char *why = NULL;
    int end = gr__term_end(buf, len, 1, &why);
    if (end < 0)
        need(why != NULL);
    else
        need(end > 1 && end <= len);
    why = NULL;
    need(gr__term_end(g.data, len, 1, &why) == end);
    if (end >= 0) {
        int at = 1;
        libei_agrees(g.data, len, &at);
    }

    msgpack_sbuffer first, again;
    int rc = convert(buf, len, end, &first);
    need(convert(g.data, len, end, &again) == rc);
    need(rc != GR_OK || same(&first, &again));
    msgpack_sbuffer_destroy(&again);
    if (rc == GR_OK)
        round_trip(&first);
    msgpack_sbuffer_destroy(&first);

    need(munmap(g.map, g.len) == 0);
    free(buf);
    return 0;
}
