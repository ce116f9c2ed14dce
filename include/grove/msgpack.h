/*
 * Grove msgpack helpers: send a payload packed into a msgpack_sbuffer, and
 * unpack a message's payload in place, for programs that follow Grove's
 * payload convention (each payload is exactly one msgpack object).
 *
 * They are thin: a send copies buf->data and buf->size as the plain call
 * does (an empty buffer, whatever its data pointer, sends no payload), and
 * gr_msg_unpack() reads with msgpack-c's own unpacker after checking that
 * the bytes hold exactly one object. Pack with msgpack-c's packer
 * (msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write)); the buffer stays
 * the caller's, to reuse or msgpack_sbuffer_destroy().
 *
 * Not included by <grove/grove.h>: include it where you use msgpack-c, and
 * link msgpack-c yourself (pkg-config msgpack-c, or msgpack on Debian).
 *
 * Thread safety: as the calls they wrap. Functions taking a gr_ctx may be
 * called only from that actor's own callbacks; gr_system_tell_msgpack()
 * from any thread; gr_call_msgpack() from any thread that is not running a
 * callback; gr_msg_unpack() from any thread, on a message it may read.
 */
#ifndef GROVE_MSGPACK_H
#define GROVE_MSGPACK_H

#include <msgpack.h>

#include <grove/actor.h>
#include <grove/ask.h>

/*
 * Deepest nesting of arrays and maps gr_msg_unpack() reads: msgpack-c's
 * unpacker holds at most this many open containers (its
 * MSGPACK_EMBED_STACK_SIZE as Debian builds it), and reads deeper ones as
 * out of memory.
 */
#define GR_MSGPACK_DEPTH_MAX 32

/*
 * gr_tell() with buf's bytes as the payload, copied; the caller keeps buf.
 * Returns as gr_tell(), and GR_EINVAL for a NULL buf.
 */
GR_API int gr_tell_msgpack(gr_ctx *ctx, gr_ref to, uint32_t type,
                           const msgpack_sbuffer *buf);

/*
 * gr_system_tell() with buf's bytes as the payload, copied; the caller
 * keeps buf. Returns as gr_system_tell(), and GR_EINVAL for a NULL buf.
 */
GR_API int gr_system_tell_msgpack(gr_system *sys, gr_ref from, gr_ref to,
                                  uint32_t type, const msgpack_sbuffer *buf);

/*
 * gr_ask() with buf's bytes as the request's payload, copied; the caller
 * keeps buf. Returns as gr_ask(), and GR_EINVAL for a NULL buf.
 */
GR_API int gr_ask_msgpack(gr_ctx *ctx, gr_ref target, uint32_t type,
                          const msgpack_sbuffer *buf, gr_duration timeout,
                          uint64_t *corr);

/*
 * gr_reply() with buf's bytes as the reply's payload, copied; the caller
 * keeps buf. Returns as gr_reply() (GR_CONTINUE on success, so a handler
 * may return it), and GR_EINVAL for a NULL buf.
 */
GR_API int gr_reply_msgpack(gr_ctx *ctx, const gr_msg *msg, uint32_t type,
                            const msgpack_sbuffer *buf);

/*
 * gr_call() with buf's bytes as the request's payload, copied; the caller
 * keeps buf. On GR_OK *reply is the caller's to gr_msg_free(); on any error
 * it is NULL. Returns as gr_call(), and GR_EINVAL for a NULL buf.
 */
GR_API int gr_call_msgpack(gr_system *sys, gr_ref target, uint32_t type,
                           const msgpack_sbuffer *buf, gr_duration timeout,
                           gr_msg **reply);

/*
 * Unpacks m's payload, which must be exactly one msgpack object, into
 * *out. *out need not be initialised: this initialises it on every call
 * (so do not pass one that still holds an object: destroy that first).
 * On GR_OK out->data is the object; it is read in place, so its strings,
 * bins and exts point into m's payload: use it only while m is valid
 * (during the handler call, or until gr_msg_free(m)), and release it with
 * msgpack_unpacked_destroy(out). On an error *out holds nothing (destroying
 * it is harmless). Returns GR_OK; GR_EPROTO when the payload is not exactly
 * one object: empty, truncated, followed by more bytes, not msgpack, or
 * nested deeper than GR_MSGPACK_DEPTH_MAX; GR_EINVAL for a NULL m or out;
 * GR_ENOMEM. A container's count is checked against the bytes left before
 * anything is allocated, so a short payload cannot claim a huge array.
 */
GR_API int gr_msg_unpack(const gr_msg *m, msgpack_unpacked *out);

#endif
