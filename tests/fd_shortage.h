/*
 * Running this process out of file descriptors, for tests of what Grove's
 * listeners do then (EMFILE): the limit is lowered to just above the
 * lowest free descriptor and the few below it are taken, so that the next
 * accept fails; and a way to see that no thread spins meanwhile. Plain
 * libc; no Grove.
 */
#ifndef GROVE_TEST_FD_SHORTAGE_H
#define GROVE_TEST_FD_SHORTAGE_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Descriptors held to make the shortage, and the limit to put back. */
enum { FD_SHORTAGE_FILL = 64 };
typedef struct fd_shortage {
    struct rlimit old;
    int fill[FD_SHORTAGE_FILL];
    int n;
    bool limited;
} fd_shortage;

/* Leaves no descriptor free (sockets made before still connect); false
 * when it could not. End it with fd_shortage_end. */
static inline bool fd_shortage_start(fd_shortage *s)
{
    s->n = 0;
    s->limited = false;
    if (getrlimit(RLIMIT_NOFILE, &s->old) != 0)
        return false;
    int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (lowest < 0)
        return false;
    close(lowest);
    struct rlimit low = {.rlim_cur = (rlim_t)lowest + 8,
                         .rlim_max = s->old.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &low) != 0)
        return false;
    s->limited = true;
    int fd;
    while (s->n < FD_SHORTAGE_FILL &&
           (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        s->fill[s->n++] = fd;
    return s->n < FD_SHORTAGE_FILL; /* It ran out. */
}

/* Gives the descriptors and the limit back. */
static inline void fd_shortage_end(fd_shortage *s)
{
    for (int i = 0; i < s->n; i++)
        close(s->fill[i]);
    s->n = 0;
    if (s->limited)
        (void)setrlimit(RLIMIT_NOFILE, &s->old);
    s->limited = false;
}

static inline double fd_shortage_clock(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Watches the process for ms milliseconds (an observation window, not a
 * wait for an event) and returns whether it used under half a CPU: a
 * thread spinning on a listener takes all of one, a resting one wakes
 * ten times a second. Says what it saw when it did not. */
static inline bool cpu_stays_low(unsigned ms)
{
    double cpu0 = fd_shortage_clock(CLOCK_PROCESS_CPUTIME_ID);
    double wall0 = fd_shortage_clock(CLOCK_MONOTONIC);
    usleep(ms * 1000u);
    double cpu = fd_shortage_clock(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    double wall = fd_shortage_clock(CLOCK_MONOTONIC) - wall0;
    if (cpu >= wall / 2)
        fprintf(stderr, "  %.3f s of CPU in %.3f s\n", cpu, wall);
    return cpu < wall / 2;
}

#endif
