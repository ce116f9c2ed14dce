/* Small system-call helpers for the transport: whole reads and writes with
 * a deadline. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/transport.h"

int gr__wait_fd(int fd, short events, uint64_t deadline_ns)
{
    for (;;) {
        uint64_t now = gr__mono_ns();
        if (now >= deadline_ns)
            return GR_ETIMEDOUT;
        uint64_t ms = (deadline_ns - now + 999999u) / 1000000u;
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = poll(&pfd, 1, ms > 60000 ? 60000 : (int)ms);
        if (rc > 0)
            return GR_OK;
        if (rc < 0 && errno != EINTR)
            return GR_ESYS;
    }
}

int gr__write_all(int fd, const void *p, size_t n, uint64_t deadline_ns)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL); /* No SIGPIPE. */
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return GR_ESYS;
        int rc = gr__wait_fd(fd, POLLOUT, deadline_ns);
        if (rc != GR_OK)
            return rc;
    }
    return GR_OK;
}

int gr__read_all(int fd, void *p, size_t n, uint64_t deadline_ns)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = read(fd, b, n);
        if (r > 0) {
            b += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0)
            return GR_ENOCONNECTION;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return errno == ECONNRESET ? GR_ENOCONNECTION : GR_ESYS;
        int rc = gr__wait_fd(fd, POLLIN, deadline_ns);
        if (rc != GR_OK)
            return rc;
    }
    return GR_OK;
}
