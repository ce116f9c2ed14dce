/* Addresses: parsing "host:port" and "unix:/path", opening listening and
 * connecting sockets, and naming errors. */
#define _GNU_SOURCE /* strerrorname_np. */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define UNIX_PREFIX "unix:"

/* Parses a decimal port, 0..65535, digits only. */
static bool parse_port(const char *p, uint16_t *out)
{
    if (*p == '\0' || strlen(p) > 5)
        return false;
    unsigned long v = 0;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

int gr__net_parse(const char *text, net_addr *out)
{
    memset(out, 0, sizeof *out);
    if (text == NULL)
        return GR_EINVAL;
    if (strncmp(text, UNIX_PREFIX, sizeof UNIX_PREFIX - 1) == 0) {
        const char *path = text + sizeof UNIX_PREFIX - 1;
        struct sockaddr_un *un = (struct sockaddr_un *)&out->sa;
        size_t len = strlen(path);
        if (len == 0)
            return GR_EINVAL;
        if (len >= sizeof un->sun_path)
            return GR_ENAMETOOLONG;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, len + 1);
        out->len =
            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
        out->tcp = false;
        return GR_OK;
    }
    /* host:port, the host in brackets when it is IPv6. */
    char host[64];
    const char *colon;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':' ||
            (size_t)(close - text - 1) >= sizeof host)
            return GR_EINVAL;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL || (size_t)(colon - text) >= sizeof host)
            return GR_EINVAL;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
    }
    uint16_t port;
    if (!parse_port(colon + 1, &port))
        return GR_EINVAL;
    out->tcp = true;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->sa;
    if (text[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        out->len = sizeof *v4;
        return GR_OK;
    }
    if (text[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        out->len = sizeof *v6;
        return GR_OK;
    }
    return GR_EINVAL;
}

int gr__net_errno(int e, char *buf, size_t size)
{
    const char *name = strerrorname_np(e);
    snprintf(buf, size, "%s: %s", name != NULL ? name : "E?", strerror(e));
    switch (e) {
    case ECONNREFUSED:
        return GR_ECONNREFUSED;
    case ECONNRESET:
    case EPIPE:
        return GR_ECONNRESET;
    case ETIMEDOUT:
        return GR_ETIMEDOUT;
    case EADDRINUSE:
        return GR_EADDRINUSE;
    case ENOMEM:
    case ENOBUFS:
        return GR_ENOMEM;
    default:
        return GR_ESYS;
    }
}

/* Logs a failed system call of an open and returns its GR_E* code. */
static int open_failed(gr_system *sys, const char *what, int fd)
{
    int e = errno;
    char text[96];
    int rc = gr__net_errno(e, text, sizeof text);
    if (fd >= 0)
        close(fd);
    gr__log(gr__system_log(sys), rc == GR_ESYS ? GR_LOG_ERROR : GR_LOG_DEBUG,
            "socket %s failed: %s", what, text);
    return rc;
}

/* Whether the kernel lists a listening Unix socket bound to path (Linux's
 * /proc/net/unix: flags bit __SO_ACCEPTCON, 0x10000, marks listeners). */
static bool unix_listed(const char *path)
{
    FILE *f = fopen("/proc/net/unix", "re");
    if (f == NULL)
        return false;
    char line[256 + sizeof(((struct sockaddr_un *)0)->sun_path)];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        unsigned flags;
        int at = 0;
        if (sscanf(line, "%*s %*s %*s %x %*x %*x %*u %n", &flags, &at) != 1 ||
            at == 0)
            continue;
        line[strcspn(line, "\n")] = '\0';
        found = (flags & 0x10000u) && strcmp(line + at, path) == 0;
    }
    fclose(f);
    return found;
}

/* Whether a Unix socket file at path has no listener behind it. */
static bool unix_stale(const struct sockaddr_un *un, socklen_t len)
{
    struct stat st;
    if (stat(un->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return false;
    /* A listener the kernel lists under this very path is alive: no probe
     * connection, which its owner would see as a client. */
    if (unix_listed(un->sun_path))
        return false;
    /* Bound under another spelling of the path, or no /proc: probe.
     * Non-blocking: a live listener with a full backlog answers EAGAIN
     * instead of holding this worker. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool stale = connect(fd, (const struct sockaddr *)un, len) != 0 &&
                 errno == ECONNREFUSED;
    close(fd);
    return stale;
}

/* Sets the kernel buffer option name to bytes, unless bytes is 0. The
 * kernel caps the value at wmem_max or rmem_max; an int must hold twice
 * it, so bigger values are capped here first. */
static int set_kernel_buffer(gr_system *sys, int fd, int name, uint32_t bytes)
{
    int v = bytes > INT_MAX / 2 ? INT_MAX / 2 : (int)bytes;
    if (bytes == 0 || setsockopt(fd, SOL_SOCKET, name, &v, sizeof v) == 0)
        return GR_OK;
    return open_failed(sys, name == SO_SNDBUF ? "SO_SNDBUF" : "SO_RCVBUF", fd);
}

/* Opens a non-blocking stream socket for a with opts' kernel buffers,
 * turning on the option (level, name) when it is TCP. Returns GR_OK with
 * *out, or the error. */
static int new_socket(gr_system *sys, const net_addr *a, const gr_io_opts *opts,
                      int level, int name, int *out)
{
    int fd =
        socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return open_failed(sys, "socket", -1);
    if (a->tcp) {
        int one = 1;
        (void)setsockopt(fd, level, name, &one, sizeof one);
    }
    int rc = set_kernel_buffer(sys, fd, SO_SNDBUF, opts->sndbuf);
    if (rc == GR_OK)
        rc = set_kernel_buffer(sys, fd, SO_RCVBUF, opts->rcvbuf);
    if (rc != GR_OK)
        return rc;
    *out = fd;
    return GR_OK;
}

int gr__net_open_listener(gr_system *sys, const net_addr *a,
                          const gr_io_opts *opts, int *out)
{
    int fd = -1;
    int rc = new_socket(sys, a, opts, SOL_SOCKET, SO_REUSEADDR, &fd);
    if (rc != GR_OK)
        return rc;
    if (bind(fd, (const struct sockaddr *)&a->sa, a->len) != 0) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&a->sa;
        if (a->tcp || errno != EADDRINUSE || !unix_stale(un, a->len))
            return open_failed(sys, "bind", fd);
        (void)unlink(un->sun_path);
        if (bind(fd, (const struct sockaddr *)&a->sa, a->len) != 0)
            return open_failed(sys, "bind", fd);
    }
    const char *path = ((const struct sockaddr_un *)&a->sa)->sun_path;
    const char *failed = !a->tcp && chmod(path, opts->mode) != 0 ? "chmod"
                         : listen(fd, SOMAXCONN) != 0            ? "listen"
                                                                 : NULL;
    if (failed != NULL) {
        int rc = open_failed(sys, failed, fd);
        if (!a->tcp)
            (void)unlink(path); /* Bound by us: leave no file behind. */
        return rc;
    }
    *out = fd;
    return GR_OK;
}

int gr__net_open_connect(gr_system *sys, const net_addr *a,
                         const gr_io_opts *opts, int *out, int *err)
{
    int fd = -1;
    int rc = new_socket(sys, a, opts, IPPROTO_TCP, TCP_NODELAY, &fd);
    if (rc != GR_OK)
        return rc;
    *err = 0;
    if (connect(fd, (const struct sockaddr *)&a->sa, a->len) != 0 &&
        errno != EINPROGRESS)
        *err = errno;
    *out = fd;
    return GR_OK;
}

void gr__net_format(const struct sockaddr_storage *sa, socklen_t len, char *buf,
                    size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        snprintf(buf, size, "%s:%u", host, ntohs(v4->sin_port));
    } else if (sa->ss_family == AF_INET6 &&
               len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
        snprintf(buf, size, "[%s]:%u", host, ntohs(v6->sin6_port));
    } else {
        snprintf(buf, size, "unix");
    }
}
