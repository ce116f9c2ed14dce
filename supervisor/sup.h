/*
 * Supervisor internals, shared by the files of supervisor/: the state a
 * supervisor actor keeps, its children, and the requests it answers. The
 * public API is include/grove/supervisor.h; docs/supervision.md explains
 * the semantics.
 */
#ifndef GROVE_SUPERVISOR_SUP_H
#define GROVE_SUPERVISOR_SUP_H

#include <stdbool.h>

#include <grove/link.h>
#include <grove/supervisor.h>

#include "actor/runtime.h"

/* One child: its spec (owned copies) and what it is doing. */
typedef struct sup_child {
    struct sup_child *prev, *next; /* Start order. */
    char *id;                      /* Owned; "" for dynamic children. */
    char *name;                    /* Owned, or NULL. */
    void *arg;                     /* Owned copy, or NULL. */
    size_t arg_len;
    const gr_behaviour *b;
    gr_restart restart;
    int32_t shutdown_ms; /* Resolved: > 0, GR_SHUTDOWN_BRUTAL or _INFINITY. */
    gr_child_type type;
    bool blocking; /* Runs on the blocking pool (a worker child only). */
    gr_ref ref;    /* The running actor, or GR_REF_NONE. */
    gr_child_state state;
    bool dynamic;      /* A simple-one-for-one child: removed once it stops. */
    bool in_job;       /* Among the children the current job stops. */
    bool drop;         /* Remove once the current job is done. */
    uint64_t token;    /* Pending restart timer's token, or 0. */
    uint64_t timer;    /* That timer's id. */
    uint64_t restarts; /* Times this child was restarted. */
} sup_child;

/* The restart window: timestamps (ms) of the restarts within period_ms, in
 * a ring, oldest first. Adding drops expired entries from the front, so
 * each restart costs O(1) amortised. The ring grows (doubling) only when
 * it is full and more restarts than it holds are within the period, up to
 * `intensity` slots: its size follows the most restarts seen in one
 * period, not the intensity, which may be in the millions. */
typedef struct sup_window {
    uint64_t *t;
    uint32_t cap;   /* Slots allocated (at most limit). */
    uint32_t limit; /* == intensity. */
    uint32_t head, n;
    uint32_t period_ms;
} sup_window;

/* What a supervisor does after its current job has stopped its children. */
typedef enum sup_then {
    THEN_START, /* Start `start` (from there on, in order). */
    THEN_REPLY, /* Answer a terminate-child request. */
    THEN_EXIT   /* Exit with `exit_why`. */
} sup_then;

/* A job: stop some children one at a time (reverse start order), waiting
 * for each one's exit, then do `then`. Other messages wait in the stash. */
typedef struct sup_job {
    bool active;
    sup_child **stop; /* Children to stop, in stopping order. */
    size_t nstop, next;
    sup_child *current;  /* Being stopped now, or NULL. */
    uint64_t kill_timer; /* Timer that kills `current`, or 0. */
    sup_then then;
    sup_child *start;     /* THEN_START: first child to (re)start. */
    sup_child *start_end; /* THEN_START: stop before this (NULL: to the end). */
    gr_ref reply_to;      /* THEN_REPLY. */
    uint64_t reply_corr;
    sup_child *remove;  /* THEN_REPLY: child to remove afterwards, or NULL. */
    gr_reason exit_why; /* THEN_EXIT. */
} sup_job;

/* A message waiting for the current job to finish: a copy. */
typedef struct sup_stashed {
    struct sup_stashed *next;
    gr_msg msg; /* data points into payload. */
    _Alignas(16) unsigned char payload[];
} sup_stashed;

/* A supervisor actor's state (the behaviour's state block). */
typedef struct sup_state {
    gr_system *sys;
    gr_ref self;
    gr_ref parent; /* The actor that spawned it linked, or GR_REF_NONE. */
    char *name;    /* Owned registered name, or NULL. */
    gr_strategy strategy;
    gr_backoff backoff;
    sup_window window;
    sup_child *first, *last; /* Children in start order. */
    size_t nchildren;
    sup_child *tmpl;    /* Simple-one-for-one: the template spec. */
    gr__refmap running; /* Child ref -> sup_child, for running children. */
    gr__refmap timers;  /* {token} -> sup_child with a pending restart. */
    uint64_t next_token;
    uint64_t rng;
    sup_job job;
    sup_stashed *stash, *stash_tail;
} sup_state;

/* A request to a supervisor (a runtime request, see actor/request.h; payload
 * a sup_req), answered with a GR_MSG_SUP_REPLY. */
#define GR__MSG_SUP_CALL (GR_MSG_RESERVED + 0x20u)
/* A supervisor's own timer. */
#define GR__MSG_SUP_TIMER (GR_MSG_RESERVED + 0x21u)

/* Requests (GR__MSG_SUP_CALL payloads). */
typedef enum sup_op {
    SUP_START_CHILD,
    SUP_SPAWN_CHILD,
    SUP_TERMINATE_CHILD,
    SUP_RESTART_CHILD,
    SUP_DELETE_CHILD,
    SUP_WHICH_CHILDREN,
    SUP_COUNT_CHILDREN,
    SUP_DESCRIBE, /* supervisor/describe.h */
} sup_op;

/* A request; for start and spawn, arg_len argument bytes follow it. */
typedef struct sup_req {
    uint32_t op;
    uint32_t cap; /* SUP_WHICH_CHILDREN: most entries wanted. */
    gr_ref child; /* SUP_TERMINATE_CHILD by reference. */
    char id[GR_NAME_MAX + 1];
    char name[GR_NAME_MAX + 1];
    uint32_t has_id, has_name;
    const gr_behaviour *b;
    uint32_t restart;
    int32_t shutdown_ms;
    uint32_t type;
    uint32_t blocking; /* gr_child_spec.blocking. */
    uint64_t arg_len;
    /* _Alignas for the bytes that follow. */
    _Alignas(16) unsigned char arg[];
} sup_req;

/* --- supervisor.c: what calls.c uses. --- */

/* Adds c at the end of the start order. */
void gr__sup_list_append(sup_state *s, sup_child *c);

/* Removes c from the supervisor (list, maps, pending timer) and frees it. */
void gr__sup_remove_child(sup_state *s, sup_child *c);

/* Returns the static child with id, or NULL. */
sup_child *gr__sup_find_id(sup_state *s, const char *id);

/* Starts c (linked, its name registered); emits started or restarted.
 * Returns GR_OK or the failure, with its reason in *why. */
int gr__sup_start_child(sup_state *s, gr_ctx *ctx, sup_child *c, bool restart,
                        gr_reason *why);

/* Cancels c's pending restart, if any. */
void gr__sup_cancel_restart(sup_state *s, sup_child *c);

/* Begins a job that stops `stop` (n children, in that order; the array is
 * taken over) and then answers a terminate request (removing `remove`
 * afterwards, if not NULL). Returns the handler's result. */
int gr__sup_job_terminate(sup_state *s, gr_ctx *ctx, sup_child **stop, size_t n,
                          gr_ref reply_to, uint64_t corr, sup_child *remove);

/* --- calls.c: the runtime API, supervisor side. --- */

/* Answers a GR__MSG_SUP_CALL; returns the handler's result. */
int gr__sup_handle_call(sup_state *s, gr_ctx *ctx, const gr_msg *m);

/* Sends a GR_MSG_SUP_REPLY with rc and child (and extra bytes after it). */
void gr__sup_reply(gr_ctx *ctx, gr_ref to, uint64_t corr, int rc, gr_ref child,
                   const void *extra, size_t extra_len);

/* --- spec.c: checking and copying specs. --- */

/* Checks a child spec (template: a simple-one-for-one's, id optional).
 * Returns GR_OK, or GR_EINVAL / GR_ENAMETOOLONG with *why set to which
 * field is wrong (static text). */
int gr__sup_spec_check(const gr_child_spec *c, bool tmpl, const char **why);

/* Whether the n specs' ids (already checked) are all different: GR_OK,
 * GR_EINVAL for a duplicate, GR_ENOMEM. Linear in n (a hash set). */
int gr__sup_ids_unique(const gr_child_spec *kids, size_t n);

/* Makes a child with owned copies of spec's fields (arg: arg/arg_len
 * instead of the spec's). Returns NULL on out of memory. */
sup_child *gr__sup_child_new(const gr_child_spec *spec, const void *arg,
                             size_t arg_len);

/* Makes a dynamic child from the template t with its own arg copy. */
sup_child *gr__sup_child_new_dynamic(const sup_child *t, const void *arg,
                                     size_t arg_len);

/* Frees a child and what it owns (dynamic children share the template's
 * id and name). */
void gr__sup_child_free(sup_child *c);

/* Fills a child spec view of a request's start-child fields. */
gr_child_spec gr__sup_req_spec(const sup_req *r);

/* --- window.c: restart intensity and backoff. --- */

/* Sets up an empty window. Returns GR_OK or GR_ENOMEM. */
int gr__sup_window_init(sup_window *w, uint32_t intensity, uint32_t period_ms);

/* Frees the window. */
void gr__sup_window_free(sup_window *w);

/* Records a restart at now_ms. Returns false when it exceeds the
 * intensity (the supervisor must give up), or when the ring cannot grow
 * for lack of memory (giving up is the safe side). O(1) amortised. */
bool gr__sup_window_add(sup_window *w, uint64_t now_ms);

/* Restarts in the current window (after the last add). */
uint32_t gr__sup_window_count(const sup_window *w);
/* Restarts within the period before now_ms. */
uint32_t gr__sup_window_recent(const sup_window *w, uint64_t now_ms);

/* The backoff delay in ms before the n-th restart of the window (n >= 1),
 * 0 when there is no backoff; rng is the supervisor's random state. */
uint64_t gr__sup_backoff_delay(const gr_backoff *b, uint32_t n, uint64_t *rng);

/* Returns CLOCK_MONOTONIC in milliseconds. */
uint64_t gr__sup_now_ms(void);

#endif
