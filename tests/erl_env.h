/*
 * What the tests and the benchmark that talk to a real Erlang share:
 * whether a program is installed, a free loopback port (for a private
 * epmd), whether something answers on one, and children that die with
 * their parent. Static inline: a program
 * that does not use a helper pays nothing for it.
 */
#ifndef GROVE_TEST_ERL_ENV_H
#define GROVE_TEST_ERL_ENV_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Whether prog is on the PATH. */
static inline bool erl_have(const char *prog)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

/* A loopback TCP port free a moment ago; 0 when none could be had. */
static inline uint16_t erl_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
              getsockname(fd, (struct sockaddr *)&sa, &len) == 0;
    if (fd >= 0)
        close(fd);
    return ok ? ntohs(sa.sin_port) : 0;
}

/* Whether something accepts connections on loopback port `port`. */
static inline bool erl_port_answers(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* In a child forked by parent: dies (SIGKILL) when parent does, so an
 * epmd or erl a crashed test started is not left behind. */
static inline void erl_die_with(pid_t parent)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* It went before the prctl. */
        _exit(1);
}

#endif
