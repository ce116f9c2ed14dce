/*
 * What a supervisor tells the observer of itself (grove tree): its
 * strategy, its intensity and how much of it the restarts of the current
 * period use, and each child with its restart count. Internal: the
 * control endpoint's (observe/), answered like gr_supervisor_which_children.
 */
#ifndef GROVE_SUPERVISOR_DESCRIBE_H
#define GROVE_SUPERVISOR_DESCRIBE_H

#include <grove/supervisor.h>

/* A supervisor as it describes itself. */
typedef struct gr__sup_view {
    gr_strategy strategy;
    uint32_t intensity, period_ms;
    uint32_t recent; /* Restarts within the last period_ms. */
    uint32_t reserved;
    char name[GR_NAME_MAX + 1]; /* Its registered name, or "". */
} gr__sup_view;

/* One child, with the times its supervisor has restarted it. */
typedef struct gr__child_view {
    gr_child_info info;
    uint64_t restarts;
} gr__child_view;

/* Asks supervisor sup (any node) to describe itself, as
 * gr_supervisor_which_children: at most cap children are stored in out,
 * *count says how many it has. Returns that call's codes. */
int gr__supervisor_describe(gr_system *sys, gr_ref sup, gr_duration timeout,
                            gr__sup_view *view, gr__child_view *out, size_t cap,
                            size_t *count);

/* The name of a strategy as the docs spell it ("one_for_one"). */
const char *gr__strategy_name(gr_strategy s);

#endif
