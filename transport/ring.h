/*
 * A bounded byte ring: a link's outbound buffer. It starts small and grows
 * (doubling) up to its limit; what does not fit is refused, so memory stays
 * bounded when the other side stops reading. Not thread-safe: the link's
 * lock guards it.
 */
#ifndef GROVE_TRANSPORT_RING_H
#define GROVE_TRANSPORT_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* A ring of bytes. */
typedef struct gr__ring {
    uint8_t *buf;
    size_t cap;   /* Bytes allocated. */
    size_t head;  /* Offset of the oldest byte. */
    size_t len;   /* Bytes held. */
    size_t limit; /* Most bytes it may ever hold. */
} gr__ring;

/* Sets up an empty ring that may grow to limit bytes; allocates nothing. */
void gr__ring_init(gr__ring *r, size_t limit);

/* Frees the ring's memory. */
void gr__ring_destroy(gr__ring *r);

/* Makes room for n more bytes. Returns false (and changes nothing) when
 * they would pass the limit or memory runs out. */
bool gr__ring_reserve(gr__ring *r, size_t n);

/* Appends n bytes; room must have been reserved. */
void gr__ring_put(gr__ring *r, const void *p, size_t n);

/* Fills iov (two entries) with the bytes held, oldest first; returns how
 * many entries are used (0, 1 or 2). */
int gr__ring_iov(const gr__ring *r, struct iovec iov[2]);

/* As gr__ring_iov(), for the bytes held from offset off (at most len). */
int gr__ring_iov_from(const gr__ring *r, size_t off, struct iovec iov[2]);

/* Copies n held bytes starting at offset off into p (not consuming). */
void gr__ring_peek(const gr__ring *r, size_t off, void *p, size_t n);

/* Drops the n oldest bytes. */
void gr__ring_consume(gr__ring *r, size_t n);

#endif
