/*
 * Where control endpoints live, shared by the runtime (observe/control.c)
 * and the grove tool (tools/grove.c): $XDG_RUNTIME_DIR/grove when
 * XDG_RUNTIME_DIR names a directory, else /tmp/grove-<uid>; each system's
 * socket is <name>.<pid>.sock in it.
 */
#ifndef GROVE_OBSERVE_PATHS_H
#define GROVE_OBSERVE_PATHS_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

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

#endif
