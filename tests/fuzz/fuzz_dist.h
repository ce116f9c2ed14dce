/*
 * What the distribution fuzz targets share: a real system (never
 * published: no epmd, no network) and a gr__dist set up by hand on it as
 * the node FUZZ_NODE, creation FUZZ_CREATION, without its thread.
 */
#ifndef GROVE_FUZZ_DIST_H
#define GROVE_FUZZ_DIST_H

#include "dist/dist.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grove/system.h>

#define FUZZ_NODE     "fuzz@127.0.0.1"
#define FUZZ_CREATION 0x5eed1u

/* A failed check: which (file and line), then abort(), which libFuzzer
 * reports as a crash. */
static inline void fuzz_failed(const char *file, int line, const char *check)
{
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, check);
    abort();
}

#define need(cond) ((cond) ? (void)0 : fuzz_failed(__FILE__, __LINE__, #cond))

/* Starts the system (logging errors only, so that dropped input does not
 * flood stderr) into *sys and returns the gr__dist set up on it. */
static inline gr__dist *fuzz_dist_start(gr_system **sys)
{
    gr_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.workers = 1;
    cfg.log_level = GR_LOG_ERROR;
    cfg.log_level_set = 1;
    need(gr_system_start(&cfg, sys) == GR_OK);
    gr__dist *d = calloc(1, sizeof *d);
    need(d != NULL);
    d->sys = *sys;
    d->listen_fd = d->wake_fd = d->epmd_fd = -1;
    d->max_frame = (size_t)1 << 20;
    d->timeout_ms = 1000;
    d->jobs_tail = &d->jobs;
    pthread_mutex_init(&d->lock, NULL);
    struct in_addr addr = {.s_addr = htonl(INADDR_LOOPBACK)};
    need(ei_init() == 0);
    need(ei_connect_xinit(&d->ec, "127.0.0.1", "fuzz", FUZZ_NODE, &addr,
                          "cookie", FUZZ_CREATION) == 0);
    d->self_id = gr__node_id(FUZZ_NODE, strlen(FUZZ_NODE));
    return d;
}

#endif
