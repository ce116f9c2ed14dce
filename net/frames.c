/* The read buffer and framing: bytes read from a socket become the
 * chunks, lines or frames its owner gets, within its allowance. Everything
 * here runs with the socket's lock held, by the I/O thread as it reads or
 * by the owner as it asks for more (gr_io_activate), so frames read ahead
 * reach the owner without a trip through the I/O thread. */
#include "net/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gr__net_drop_rbuf(net_sock *s)
{
    free(s->rbuf);
    s->rbuf = NULL;
    s->rstart = s->rlen = s->rcap = 0;
    s->rready = false;
}

bool gr__net_reserve(net_sock *s, size_t more)
{
    if (s->rstart > 0) {
        memmove(s->rbuf + NET_HDR, s->rbuf + NET_HDR + s->rstart,
                s->rlen - s->rstart);
        s->rlen -= s->rstart;
        s->rstart = 0;
    }
    size_t need = NET_HDR + s->rlen + more;
    if (need <= s->rcap)
        return true;
    size_t cap = s->rcap ? s->rcap : NET_HDR + NET_READ_CHUNK;
    while (cap < need)
        cap *= 2;
    char *b = realloc(s->rbuf, cap);
    if (b == NULL)
        return false;
    s->rbuf = b;
    s->rcap = cap;
    return true;
}

/* Where the next complete frame lies in [at, rlen) of the read buffer:
 * stores its start and length and how far it reaches (its ending or
 * prefix included). Returns 1 for a frame, 0 for none yet, -1 for one over
 * max_frame. */
static int next_frame(net_sock *s, size_t at, size_t *start, size_t *len,
                      size_t *end)
{
    const char *d = s->rbuf + NET_HDR;
    size_t have = s->rlen - at;
    uint32_t max = s->opts.max_frame;
    switch (s->opts.framing) {
    case GR_IO_RAW:
        if (have == 0)
            return 0;
        *start = at;
        *len = have < max ? have : max;
        *end = at + *len;
        return 1;
    case GR_IO_LINE: {
        const char *nl = memchr(d + at, '\n', have);
        if (nl == NULL) /* Room for a CR before the LF still to come. */
            return have > (size_t)max + 1 ? -1 : 0;
        size_t n = (size_t)(nl - (d + at));
        *end = at + n + 1;
        if (n > 0 && d[at + n - 1] == '\r')
            n--;
        if (n > max)
            return -1;
        *start = at;
        *len = n;
        return 1;
    }
    default: { /* GR_IO_LEN4 */
        if (have < 4)
            return 0;
        const unsigned char *p = (const unsigned char *)d + at;
        uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                     (uint32_t)p[2] << 8 | p[3];
        if (n > max)
            return -1;
        if (have - 4 < n)
            return 0;
        *start = at + 4;
        *len = n;
        *end = at + 4 + n;
        return 1;
    }
    }
}

void gr__net_deliver_frames(net_sock *s)
{
    size_t at = s->rstart;
    s->rready = false;
    for (;;) {
        if (s->rskip) { /* The rest of an over-long line: up to its LF. */
            const char *d = s->rbuf + NET_HDR;
            const char *nl = memchr(d + at, '\n', s->rlen - at);
            s->rskip = nl == NULL;
            at = nl != NULL ? (size_t)(nl - d) + 1 : s->rlen;
        }
        size_t start, len, end;
        int got = 0;
        while (at < s->rlen &&
               (got = next_frame(s, at, &start, &len, &end)) > 0) {
            if (s->closing || s->active == 0) {
                s->rready = true;
                break;
            }
            if (s->active != GR_IO_ALWAYS)
                s->active--;
            net_wire w = {.kind = GR_IO_DATA};
            gr__net_deliver_to(s, s->owner, &w, s->rbuf + NET_HDR + start, len);
            at = end;
        }
        if (got >= 0)
            break;
        net_wire w = {.kind = GR_IO_ERROR, .code = GR_EMSGSIZE};
        snprintf(w.text, sizeof w.text, "%s longer than %u bytes",
                 s->opts.framing == GR_IO_LINE ? "line" : "frame",
                 s->opts.max_frame);
        gr__net_deliver_to(s, s->owner, &w, NULL, 0);
        if (s->opts.framing != GR_IO_LINE) {
            /* A frame's length cannot be trusted: reading stops. */
            s->read_over = true;
            at = s->rlen;
            break;
        }
        s->rskip = true; /* A line is skipped and reading goes on. */
    }
    s->rstart = at;
    if (s->rstart == s->rlen)
        gr__net_drop_rbuf(s);
}
