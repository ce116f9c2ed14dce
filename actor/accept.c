#define _GNU_SOURCE /* accept4. */
#include "actor/accept.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "actor/clock.h"

int gr__accept(int listen_fd, int flags, gr__accept_rest *r,
               const gr__logger *log, const char *what)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, flags);
        if (fd >= 0) {
            if (r->starved) {
                r->starved = false;
                gr__log(log, GR_LOG_INFO, "%s: accepting connections again",
                        what);
            }
            return fd;
        }
        /* A connection that failed before it was taken: the next one may
         * be fine (accept(2) asks TCP servers to retry these). */
        if (errno == ECONNABORTED || errno == EINTR || errno == EPROTO ||
            errno == ENETDOWN || errno == ENOPROTOOPT || errno == EHOSTDOWN ||
            errno == ENONET || errno == EHOSTUNREACH || errno == EOPNOTSUPP ||
            errno == ENETUNREACH || errno == EPERM)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -1;
        if (!r->starved)
            gr__log(log, GR_LOG_ERROR,
                    "%s: accepting a connection failed: %s; retrying every "
                    "%d ms",
                    what, strerror(errno), GR__ACCEPT_REST_MS);
        r->starved = true;
        r->resume_ns = gr__mono_ns() + (uint64_t)GR__ACCEPT_REST_MS * 1000000u;
        return -1;
    }
}

int gr__accept_rest_ms(const gr__accept_rest *r)
{
    uint64_t now = gr__mono_ns();
    return r->resume_ns > now ? (int)((r->resume_ns - now + 999999) / 1000000)
                              : 0;
}
