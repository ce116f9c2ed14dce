/*
 * Other processes as Linux's /proc shows them, for tests and benchmarks
 * that watch the processes Grove starts: a process's state, parent and
 * CPU time, and a process's children. Plain libc; no Grove.
 */
#ifndef GROVE_TEST_PROC_STAT_H
#define GROVE_TEST_PROC_STAT_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What /proc/<pid>/stat says of a process. */
typedef struct proc_stat {
    char state; /* 'R', 'S', 'T' (stopped), 'Z' (zombie), ... */
    int ppid;
    unsigned long utime, stime; /* CPU time in clock ticks (_SC_CLK_TCK). */
    char comm[16];              /* Its name (the kernel's, 15 bytes). */
} proc_stat;

/* The name Grove's fork server templates take (GR__TEMPLATE_COMM): a
 * program's node processes are its children of any other name. */
#define PROC_TEMPLATE_COMM "grove-template"

/* Reads process pid's stat into *out; false when it is gone. */
static inline bool proc_stat_read(int pid, proc_stat *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* After the command name, which may hold spaces and parentheses. */
    const char *p = strrchr(buf, ')');
    const char *c = strchr(buf, '(');
    if (p == NULL || c == NULL || c > p)
        return false;
    size_t len = (size_t)(p - c - 1);
    len = len < sizeof out->comm ? len : sizeof out->comm - 1;
    memcpy(out->comm, c + 1, len);
    out->comm[len] = '\0';
    return sscanf(p + 1, " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                  &out->state, &out->ppid, &out->utime, &out->stime) == 4;
}

/* Which of a process's children proc_children_of counts. */
typedef enum proc_which {
    PROC_ALL,       /* Every child. */
    PROC_NODES,     /* Every child but Grove's fork server templates. */
    PROC_TEMPLATES, /* Grove's fork server templates only. */
} proc_which;

/* Stores the pids of parent's children of the kind which (zombies
 * included) in out, at most max of them (out may be NULL with max 0);
 * returns how many there are, or -1 without /proc. */
static inline int proc_children_of(int parent, proc_which which, int *out,
                                   int max)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        proc_stat st;
        int pid = atoi(e->d_name);
        if (pid <= 0 || !proc_stat_read(pid, &st) || st.ppid != parent)
            continue;
        bool tpl = strcmp(st.comm, PROC_TEMPLATE_COMM) == 0;
        if ((which == PROC_NODES && tpl) || (which == PROC_TEMPLATES && !tpl))
            continue;
        if (n < max)
            out[n] = pid;
        n++;
    }
    closedir(d);
    return n;
}

/* Stores the pids of parent's children (zombies included) in out, at most
 * max of them (out may be NULL with max 0); returns how many there are,
 * or -1 without /proc. */
static inline int proc_children(int parent, int *out, int max)
{
    return proc_children_of(parent, PROC_ALL, out, max);
}

#endif
