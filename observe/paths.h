/*
 * Where control endpoints live, shared by the runtime (observe/control.c)
 * and the grove tool (tools/grove.c): $XDG_RUNTIME_DIR/grove when
 * XDG_RUNTIME_DIR names a directory, else /tmp/grove-<uid>; each system's
 * socket is <name>.<pid>.sock in it.
 */
#ifndef GROVE_OBSERVE_PATHS_H
#define GROVE_OBSERVE_PATHS_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The longest system name kept in an endpoint's file name, with its NUL
 * (GR_NAME_MAX + 1). */
#define GR__CONTROL_NAME_SIZE 64

/* Writes the form of a system's name that its endpoint's file name holds
 * into out (GR__CONTROL_NAME_SIZE bytes): cut to GR_NAME_MAX bytes, with
 * '/', '.', spaces and control characters made '_' (nothing that leaves
 * the directory, or reads as NAME.PID). */
static inline void gr__control_file_name(char *out, const char *name)
{
    snprintf(out, GR__CONTROL_NAME_SIZE, "%s", name);
    for (char *p = out; *p != '\0'; p++)
        if (*p == '/' || *p == '.' || (unsigned char)*p < 0x21)
            *p = '_';
}

/* Writes this user's control directory into dir (size bytes). */
static inline void gr__control_dir(char *dir, size_t size)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    if (xdg != NULL && *xdg == '/' && stat(xdg, &st) == 0 &&
        S_ISDIR(st.st_mode))
        snprintf(dir, size, "%s/grove", xdg);
    else
        snprintf(dir, size, "/tmp/grove-%u", (unsigned)getuid());
}

/* Whether the endpoint at path, named for process pid, is gone: the
 * process does not exist, or nothing listens on the socket (the process
 * died and was not reaped yet, or its pid now belongs to another). */
static inline bool gr__control_socket_dead(const char *path, long pid)
{
    if (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return true;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return false;
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool dead = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0 &&
                (errno == ECONNREFUSED || errno == ENOENT);
    if (fd >= 0)
        close(fd);
    return dead;
}

#endif
