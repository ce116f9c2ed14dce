/*
 * Starting an example server as a real process, for end-to-end tests and
 * load benchmarks: the servers print "listening on HOST:PORT (port N)"
 * once they listen (port 0 picks one), and this reads N from their stdout.
 */
#ifndef GROVE_TEST_SERVER_PROC_H
#define GROVE_TEST_SERVER_PROC_H

#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Runs argv[0] with argv (NULL-terminated), env ("NAME=VALUE" strings,
 * NULL-terminated; may be NULL) added to the environment, and its stdout
 * on a pipe. Waits up to wait_ms for the "(port N)" of its listening line.
 * Stores the process in *pid (0 if it could not start) and, if out is
 * not NULL, the read end of its stdout in *out. Else that end is closed
 * once the port is read, and the server runs with SIGPIPE ignored, so
 * what it prints later is dropped instead of killing it.
 * Returns N, or 0 when no such line came in time.
 */
static inline uint16_t server_proc_start(const char *const *argv,
                                         const char *const *env, int wait_ms,
                                         pid_t *pid, int *out)
{
    int p[2];
    *pid = 0;
    if (pipe(p) != 0)
        return 0;
    *pid = fork();
    if (*pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        if (out == NULL)
            signal(SIGPIPE, SIG_IGN);
        for (int i = 0; env != NULL && env[i] != NULL; i++)
            putenv((char *)env[i]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    uint16_t port = 0;
    char buf[512];
    size_t have = 0;
    while (*pid > 0 && port == 0 && have < sizeof buf - 1) {
        struct pollfd pf = {p[0], POLLIN, 0};
        if (poll(&pf, 1, wait_ms) <= 0)
            break;
        ssize_t k = read(p[0], buf + have, sizeof buf - 1 - have);
        if (k <= 0)
            break;
        have += (size_t)k;
        buf[have] = '\0';
        char *at = strstr(buf, "(port ");
        if (at != NULL && strchr(at, ')') != NULL)
            port = (uint16_t)atoi(at + 6);
    }
    if (out != NULL)
        *out = p[0];
    else
        close(p[0]);
    return port;
}

#endif
