/*
 * A node's port, from its host's epmd (PORT_PLEASE2_REQ), as
 * ei_connect_tmo looks it up, but with each wait also ending when the
 * system stops (gr__dist_wait): erl_interface's own lookup goes around
 * the socket callbacks, so a host that never answered (a firewall that
 * drops packets, a hung epmd) held a shutdown for connect_timeout_ms.
 */
#include "dist/dist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* epmd's request for a node's port, and its answer's tag. */
#define PORT_PLEASE2_REQ 122
#define PORT2_RESP       119

int gr__epmd_port(void)
{
    const char *env = getenv("ERL_EPMD_PORT");
    int port = env != NULL ? atoi(env) : 0;
    return port > 0 && port < 65536 ? port : 4369;
}

/* Resolves host to an IPv4 address; false when it does not resolve. */
static bool resolve(const char *host, struct in_addr *addr)
{
    if (inet_pton(AF_INET, host, addr) == 1)
        return true;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
        return false;
    *addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return true;
}

/* Asks the epmd at addr for alive's port over a new connection. */
static int ask(const struct in_addr *addr, const char *alive, unsigned tmo,
               int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return errno;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)gr__epmd_port()),
                             .sin_addr = *addr};
    size_t len = strlen(alive);
    unsigned char req[3 + MAXATOMLEN_UTF8];
    req[0] = (unsigned char)((len + 1) >> 8);
    req[1] = (unsigned char)(len + 1);
    req[2] = PORT_PLEASE2_REQ;
    memcpy(req + 3, alive, len);
    /* PORT2_RESP, result (0: known), port; the rest is not needed. */
    unsigned char resp[4];
    int e = gr__dist_connect(fd, &sa, sizeof sa, tmo);
    if (e == 0)
        e = gr__dist_transfer(fd, req, 3 + len, true, tmo);
    if (e == 0 && (e = gr__dist_transfer(fd, resp, 2, false, tmo)) == 0 &&
        (resp[0] != PORT2_RESP || resp[1] != 0))
        e = resp[0] != PORT2_RESP ? EPROTO : ENOENT;
    if (e == 0 && (e = gr__dist_transfer(fd, resp + 2, 2, false, tmo)) == 0)
        *port = resp[2] << 8 | resp[3];
    close(fd);
    return e;
}

int gr__epmd_lookup(const char *node, unsigned tmo, struct in_addr *addr,
                    int *port)
{
    const char *at = strchr(node, '@');
    if (at == NULL || at == node || at[1] == '\0' ||
        (size_t)(at - node) >= MAXATOMLEN_UTF8)
        return ENOENT;
    char alive[MAXATOMLEN_UTF8];
    memcpy(alive, node, (size_t)(at - node));
    alive[at - node] = '\0';
    if (!resolve(at + 1, addr))
        return EHOSTUNREACH;
    return ask(addr, alive, tmo, port);
}
