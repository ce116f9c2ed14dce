/*
 * Where the control endpoint listens: a Unix socket in a directory only
 * its user can enter ($XDG_RUNTIME_DIR/grove, else /tmp/grove-<uid>, mode
 * 0700), named <name>.<pid>.sock (mode 0600); files of systems that are
 * gone are removed first. And, when asked, the metrics port (TCP).
 */
#include "observe/control.h"
#include "observe/paths.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The per-user directory; false (logged) when it cannot be made safe. */
static bool user_dir(gr__control *c, char *dir, size_t size)
{
    struct stat st;
    gr__control_dir(dir, size);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        gr__log(gr__system_log(c->sys), GR_LOG_ERROR,
                "control: cannot make %s: %s", dir, strerror(errno));
        return false;
    }
    /* Someone else's, or open to others: not a place for our socket. */
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 077) != 0) {
        gr__log(gr__system_log(c->sys), GR_LOG_ERROR,
                "control: %s is not a directory of this user with mode "
                "0700; not listening",
                dir);
        return false;
    }
    return true;
}

/* Removes socket files in dir that nothing listens on any more. */
static void remove_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *dot = strrchr(e->d_name, '.');
        if (dot == NULL || strcmp(dot, ".sock") != 0)
            continue;
        const char *p = dot;
        while (p > e->d_name && p[-1] != '.')
            p--;
        long pid = p > e->d_name ? strtol(p, NULL, 10) : 0;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (gr__control_socket_dead(path, pid))
            unlink(path);
    }
    closedir(d);
}

static bool listen_on(gr__control *c, const char *dir)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int n = snprintf(a.sun_path, sizeof a.sun_path, "%s/%s.%d.sock", dir,
                     c->name, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof a.sun_path) {
        gr__log(gr__system_log(c->sys), GR_LOG_ERROR,
                "control: the socket path under %s is too long", dir);
        return false;
    }
    snprintf(c->path, sizeof c->path, "%s", a.sun_path);
    unlink(c->path); /* Ours from an earlier system of this process. */
    /* Non-blocking, as gr__accept wants: a client that gave up before it
     * was taken must not block the thread until the next one. */
    c->listen_fd =
        socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->listen_fd < 0 ||
        bind(c->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        chmod(c->path, 0600) != 0 || listen(c->listen_fd, 16) != 0) {
        gr__log(gr__system_log(c->sys), GR_LOG_ERROR,
                "control: cannot listen on %s: %s", c->path, strerror(errno));
        return false;
    }
    return true;
}

/* Opens the metrics listener when gr_config.metrics (or GROVE_METRICS)
 * names an address, "IPV4:PORT"; false (logged) when it cannot. */
static bool listen_http(gr__control *c, const gr_config *cfg)
{
    const char *addr = cfg->metrics;
    if (addr == NULL || *addr == '\0')
        addr = getenv("GROVE_METRICS");
    if (addr == NULL || *addr == '\0')
        return true;
    char host[64];
    const char *colon = strrchr(addr, ':');
    struct sockaddr_in a = {.sin_family = AF_INET};
    char *end;
    long port = colon != NULL ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || (size_t)(colon - addr) >= sizeof host ||
        *end != '\0' || colon[1] == '\0' || port < 0 || port > 65535) {
        gr__log(gr__system_log(c->sys), GR_LOG_ERROR,
                "control: metrics address \"%s\" is not IPV4:PORT", addr);
        return false;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        gr__log(gr__system_log(c->sys), GR_LOG_ERROR,
                "control: metrics address \"%s\" is not IPV4:PORT", addr);
        return false;
    }
    a.sin_port = htons((uint16_t)port);
    int one = 1;
    c->http_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->http_fd < 0 ||
        setsockopt(c->http_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) !=
            0 ||
        bind(c->http_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(c->http_fd, 16) != 0) {
        gr__log(gr__system_log(c->sys), GR_LOG_ERROR,
                "control: cannot serve metrics on %s: %s", addr,
                strerror(errno));
        return false;
    }
    return true;
}

bool gr__obs_listen(gr__control *c, const gr_config *cfg)
{
    char dir[sizeof c->path];
    if (!user_dir(c, dir, sizeof dir))
        return false;
    remove_stale(dir);
    if (!listen_on(c, dir) || !listen_http(c, cfg))
        return false;
    gr__log(gr__system_log(c->sys), GR_LOG_INFO, "control: listening on %s",
            c->path);
    if (c->http_fd >= 0) {
        struct sockaddr_in a;
        socklen_t len = sizeof a;
        char host[INET_ADDRSTRLEN] = "?";
        if (getsockname(c->http_fd, (struct sockaddr *)&a, &len) == 0)
            inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
        gr__log(gr__system_log(c->sys), GR_LOG_INFO,
                "control: metrics on http://%s:%u/metrics", host,
                (unsigned)ntohs(a.sin_port));
    }
    return true;
}
