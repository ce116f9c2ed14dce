/* The bounded byte ring (see ring.h). */
#include "transport/ring.h"

#include <stdlib.h>
#include <string.h>

/* Smallest allocation: one page-ish, enough for a burst of small frames. */
#define RING_MIN ((size_t)64 << 10)

void gr__ring_init(gr__ring *r, size_t limit)
{
    *r = (gr__ring){.limit = limit};
}

void gr__ring_destroy(gr__ring *r)
{
    free(r->buf);
    *r = (gr__ring){.limit = r->limit};
}

bool gr__ring_reserve(gr__ring *r, size_t n)
{
    if (n > r->limit - r->len)
        return false;
    if (r->len + n <= r->cap)
        return true;
    size_t cap = r->cap ? r->cap : RING_MIN;
    while (cap < r->len + n && cap <= r->limit / 2)
        cap *= 2; /* Never past limit, so it cannot overflow. */
    if (cap < r->len + n || cap > r->limit)
        cap = r->limit;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return false;
    gr__ring_peek(r, 0, buf, r->len);
    free(r->buf);
    r->buf = buf;
    r->cap = cap;
    r->head = 0;
    return true;
}

void gr__ring_put(gr__ring *r, const void *p, size_t n)
{
    if (n == 0)
        return;
    size_t tail = (r->head + r->len) % (r->cap ? r->cap : 1);
    size_t first = r->cap - tail < n ? r->cap - tail : n;
    memcpy(r->buf + tail, p, first);
    memcpy(r->buf, (const uint8_t *)p + first, n - first);
    r->len += n;
}

int gr__ring_iov(const gr__ring *r, struct iovec iov[2])
{
    return gr__ring_iov_from(r, 0, iov);
}

int gr__ring_iov_from(const gr__ring *r, size_t off, struct iovec iov[2])
{
    if (off >= r->len)
        return 0;
    size_t n = r->len - off;
    size_t at = (r->head + off) % r->cap;
    size_t first = r->cap - at < n ? r->cap - at : n;
    iov[0] = (struct iovec){r->buf + at, first};
    if (first == n)
        return 1;
    iov[1] = (struct iovec){r->buf, n - first};
    return 2;
}

void gr__ring_peek(const gr__ring *r, size_t off, void *p, size_t n)
{
    if (n == 0)
        return;
    size_t at = (r->head + off) % r->cap;
    size_t first = r->cap - at < n ? r->cap - at : n;
    memcpy(p, r->buf + at, first);
    memcpy((uint8_t *)p + first, r->buf, n - first);
}

void gr__ring_consume(gr__ring *r, size_t n)
{
    r->len -= n;
    r->head = r->len == 0 ? 0 : (r->head + n) % r->cap;
}
