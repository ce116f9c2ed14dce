/*
 * The supervisor behaviour: starting children, reacting to their exits by
 * strategy and restart type, counting restarts, and stopping children in
 * order. A supervisor traps exits and is linked to every child, so each
 * child's exit reaches it as a GR_MSG_EXIT.
 *
 * Stopping children is asynchronous (a child needs time to exit), so it is
 * a job: stop one child, wait for its EXIT, stop the next, then carry on.
 * While a job runs, other messages wait in a stash, as an OTP supervisor
 * blocked in its shutdown receive leaves them in its mailbox.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor/runtime.h"
#include "supervisor/sup.h"

static const gr_reason shutdown_reason = {.code = GR_ESHUTDOWN};
static const gr_reason kill_reason = {.code = GR_EKILL};

/* Emits an event of kind about child c (NULL: the supervisor itself),
 * with extra restarts counted beside those within the period now. */
static void emit_counting(sup_state *s, gr_event_kind kind, const sup_child *c,
                          gr_ref child, const gr_reason *why, uint32_t extra)
{
    gr_event ev = {.kind = kind,
                   .supervisor = s->self,
                   .sup_name = s->name != NULL ? s->name : "",
                   .child_id = c != NULL ? c->id : "",
                   .behaviour = c != NULL && c->b != NULL ? c->b->name : "",
                   .child = child,
                   .reason = why != NULL ? *why : gr_reason_of(GR_OK),
                   .restarts =
                       gr__sup_window_recent(&s->window, gr__sup_now_ms()) +
                       extra};
    ev.level = gr__sup_event_level(kind, &ev.reason);
    /* A simple-one-for-one child comes and goes with the work (a session
     * per connection): its clean starts and exits are debug, not info,
     * so a busy server's log holds its crashes, not its traffic. */
    if (c != NULL && c->dynamic &&
        (kind == GR_EV_CHILD_STARTED || kind == GR_EV_CHILD_EXITED))
        ev.level = GR_LOG_DEBUG;
    gr__system_emit(s->sys, &ev);
}

static void emit(sup_state *s, gr_event_kind kind, const sup_child *c,
                 gr_ref child, const gr_reason *why)
{
    emit_counting(s, kind, c, child, why, 0);
}

/* --- Children. --- */

void gr__sup_list_append(sup_state *s, sup_child *c)
{
    c->prev = s->last;
    c->next = NULL;
    if (s->last != NULL)
        s->last->next = c;
    else
        s->first = c;
    s->last = c;
    s->nchildren++;
}

static void list_remove(sup_state *s, sup_child *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->first = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        s->last = c->prev;
    s->nchildren--;
}

void gr__sup_cancel_restart(sup_state *s, sup_child *c)
{
    if (c->token == 0)
        return;
    (void)gr__refmap_take(&s->timers, gr__id_key(c->token));
    if (c->timer != 0)
        gr__timer_cancel(s->sys, c->timer);
    c->token = c->timer = 0;
}

void gr__sup_remove_child(sup_state *s, sup_child *c)
{
    gr__sup_cancel_restart(s, c);
    if (!gr_ref_is_none(c->ref))
        (void)gr__refmap_take(&s->running, c->ref);
    list_remove(s, c);
    gr__sup_child_free(c);
}

sup_child *gr__sup_find_id(sup_state *s, const char *id)
{
    for (sup_child *c = s->first; c != NULL; c = c->next)
        if (!c->dynamic && strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

int gr__sup_start_child(sup_state *s, gr_ctx *ctx, sup_child *c, bool restart,
                        gr_reason *why)
{
    gr__spawn_opts opts = {.flags = GR__ACTOR_SUPERVISED |
                                    (c->blocking ? GR__ACTOR_BLOCKING : 0u),
                           .link = ctx,
                           .name = c->name};
    gr_ref ref;
    *why = gr_reason_of(GR_OK);
    int rc = gr__actor_spawn(s->sys, ctx->w, c->b, &opts, c->arg, c->arg_len,
                             NULL, &ref, why);
    if (rc == GR_OK && gr__refmap_put(&s->running, ref, c) != GR_OK) {
        /* Cannot track it: better no child than an unsupervised one. */
        (void)gr_unlink(ctx, ref);
        (void)gr_exit(ctx, ref, &kill_reason);
        rc = GR_ENOMEM;
    }
    if (rc != GR_OK) {
        if (why->code == GR_OK)
            *why = gr_reason_of(rc);
        emit(s, GR_EV_START_FAILED, c, GR_REF_NONE, why);
        return rc;
    }
    c->ref = ref;
    c->state = GR_CHILD_RUNNING;
    if (restart) {
        c->restarts++;
        gr__system_count_restart(s->sys);
    }
    emit(s, restart ? GR_EV_CHILD_RESTARTED : GR_EV_CHILD_STARTED, c, ref,
         NULL);
    return GR_OK;
}

/* Sends c its shutdown signal by its spec; arms the kill that follows a
 * timeout in *kill_timer (0 if none). */
static void send_shutdown(sup_state *s, gr_ctx *ctx, sup_child *c,
                          uint64_t *kill_timer)
{
    *kill_timer = 0;
    if (c->shutdown_ms == GR_SHUTDOWN_BRUTAL) {
        (void)gr_exit(ctx, c->ref, &kill_reason);
        return;
    }
    (void)gr_exit(ctx, c->ref, &shutdown_reason);
    /* The kill goes straight to the child: the supervisor only waits for
     * the EXIT, whichever signal caused it. */
    if (c->shutdown_ms > 0)
        (void)gr__timer_start(s->sys, (uint64_t)c->shutdown_ms, c->ref,
                              GR__MSG_KILL, 0, kill_timer);
}

/* --- Jobs. --- */

static int start_range(sup_state *s, gr_ctx *ctx, sup_child *from,
                       sup_child *end);
static int do_restart(sup_state *s, gr_ctx *ctx, sup_child *c);

/* Finishes the job: removes dropped children, then does what it was for. */
static int job_done(sup_state *s, gr_ctx *ctx)
{
    sup_job job = s->job;
    s->job = (sup_job){0};
    for (size_t i = 0; i < job.nstop; i++) {
        if (!job.stop[i]->drop)
            continue;
        if (job.stop[i] == job.remove)
            job.remove = NULL; /* Removed once, here. */
        gr__sup_remove_child(s, job.stop[i]);
    }
    free(job.stop);
    switch (job.then) {
    case THEN_START:
        return start_range(s, ctx, job.start != NULL ? job.start : s->first,
                           job.start_end);
    case THEN_REPLY:
        if (job.remove != NULL)
            gr__sup_remove_child(s, job.remove);
        gr__sup_reply(ctx, job.reply_to, job.reply_corr, GR_OK, GR_REF_NONE,
                      NULL, 0);
        return GR_CONTINUE;
    case THEN_EXIT:
    default:
        return gr_stop_with(ctx, &job.exit_why);
    }
}

/* Stops the job's next running child, or finishes the job. */
static int job_next(sup_state *s, gr_ctx *ctx)
{
    sup_job *job = &s->job;
    while (job->next < job->nstop) {
        sup_child *c = job->stop[job->next];
        if (gr_ref_is_none(c->ref)) { /* Exited by itself meanwhile. */
            c->in_job = false;
            job->next++;
            continue;
        }
        job->current = c;
        send_shutdown(s, ctx, c, &job->kill_timer);
        return GR_CONTINUE;
    }
    return job_done(s, ctx);
}

/* Starts a job that stops stop[0..n) in order (array taken over). */
static int job_begin(sup_state *s, gr_ctx *ctx, sup_child **stop, size_t n)
{
    s->job.active = true;
    s->job.stop = stop;
    s->job.nstop = n;
    s->job.next = 0;
    for (size_t i = 0; i < n; i++)
        stop[i]->in_job = true;
    return job_next(s, ctx);
}

/* Collects the running children from `from` (NULL: the first) to the end,
 * except `skip`, newest first: the order they stop in. Returns the array
 * (NULL when empty or out of memory) and its length in *n. */
static sup_child **running_reverse(sup_state *s, sup_child *from,
                                   const sup_child *skip, size_t *n)
{
    *n = 0;
    sup_child **v = malloc((s->nchildren ? s->nchildren : 1) * sizeof *v);
    if (v == NULL)
        return NULL;
    sup_child *stop_at = from != NULL ? from->prev : NULL;
    for (sup_child *c = s->last; c != stop_at; c = c->prev)
        if (c != skip && !gr_ref_is_none(c->ref))
            v[(*n)++] = c;
    return v;
}

int gr__sup_job_terminate(sup_state *s, gr_ctx *ctx, sup_child **stop, size_t n,
                          gr_ref reply_to, uint64_t corr, sup_child *remove)
{
    s->job.then = THEN_REPLY;
    s->job.reply_to = reply_to;
    s->job.reply_corr = corr;
    s->job.remove = remove;
    return job_begin(s, ctx, stop, n);
}

/* Stops every child in reverse start order, then exits with why. */
static int shutdown_self(sup_state *s, gr_ctx *ctx, const gr_reason *why)
{
    size_t n;
    sup_child **stop = running_reverse(s, NULL, NULL, &n);
    s->job.then = THEN_EXIT;
    s->job.exit_why = *why;
    return job_begin(s, ctx, stop, n);
}

/* --- Restarts. --- */

static int give_up(sup_state *s, gr_ctx *ctx)
{
    /* The restart that did not fit is counted in the event. */
    emit_counting(s, GR_EV_GAVE_UP, NULL, GR_REF_NONE, NULL, 1);
    return shutdown_self(s, ctx, &shutdown_reason);
}

/* Arranges for c's restart after delay_ms (0: as the next message), as
 * OTP's try_again does after a failed restart. With no delay the
 * supervisor yields: the message is handled after the actors already
 * waiting to run have run, not in the same turn (over and over until the
 * intensity ran out), so an old child that still holds the name the
 * restart wants gets to handle its exit signal first. */
static void schedule_restart(sup_state *s, gr_ctx *ctx, sup_child *c,
                             uint64_t delay_ms)
{
    c->state = GR_CHILD_RESTARTING;
    c->token = ++s->next_token;
    c->timer = 0;
    int rc = gr__refmap_put(&s->timers, gr__id_key(c->token), c);
    if (rc == GR_OK && delay_ms == 0) {
        rc = gr__deliver(s->sys, ctx->w, GR__MSG_SUP_TIMER, s->self, s->self,
                         c->token, NULL, 0);
        gr__ctx_yield(ctx);
    } else if (rc == GR_OK) {
        rc = gr__timer_start(s->sys, delay_ms, s->self, GR__MSG_SUP_TIMER,
                             c->token, &c->timer);
    }
    if (rc != GR_OK) {
        /* Out of memory or stopping: the child stays down, visible as
         * restarting; a restart_child request can still start it. */
        (void)gr__refmap_take(&s->timers, gr__id_key(c->token));
        c->token = 0;
    }
}

/* A restart of c is due: count it, then restart now or after a backoff. */
static int restart_event(sup_state *s, gr_ctx *ctx, sup_child *c,
                         bool via_message)
{
    if (!gr__sup_window_add(&s->window, gr__sup_now_ms()))
        return give_up(s, ctx);
    uint64_t delay = gr__sup_backoff_delay(
        &s->backoff, gr__sup_window_count(&s->window), &s->rng);
    if (delay > 0 || via_message) {
        schedule_restart(s, ctx, c, delay);
        return GR_CONTINUE;
    }
    c->state = GR_CHILD_RESTARTING;
    return do_restart(s, ctx, c);
}

/* Starts the non-running children from `from` up to `end`, in order. When
 * one fails the rest wait (restarting) and a retry is counted, as OTP's
 * try_again. */
static int start_range(sup_state *s, gr_ctx *ctx, sup_child *from,
                       sup_child *end)
{
    for (sup_child *c = from; c != end; c = c->next) {
        if (!gr_ref_is_none(c->ref))
            continue;
        gr__sup_cancel_restart(s, c);
        gr_reason why;
        if (gr__sup_start_child(s, ctx, c, true, &why) != GR_OK) {
            for (sup_child *r = c->next; r != end; r = r->next)
                if (gr_ref_is_none(r->ref))
                    r->state = GR_CHILD_RESTARTING;
            return restart_event(s, ctx, c, true);
        }
    }
    return GR_CONTINUE;
}

/* Restarts c by the strategy: alone, with all its siblings, or with the
 * siblings started after it. */
static int do_restart(sup_state *s, gr_ctx *ctx, sup_child *c)
{
    size_t n;
    sup_child **stop;
    switch (s->strategy) {
    case GR_ONE_FOR_ALL:
        stop = running_reverse(s, NULL, c, &n);
        s->job.then = THEN_START;
        s->job.start = NULL;
        s->job.start_end = NULL;
        return job_begin(s, ctx, stop, n);
    case GR_REST_FOR_ONE:
        stop = running_reverse(s, c, c, &n);
        s->job.then = THEN_START;
        s->job.start = c;
        s->job.start_end = NULL;
        return job_begin(s, ctx, stop, n);
    default:
        return start_range(s, ctx, c, c->next);
    }
}

/* --- Exits. --- */

/* Marks c stopped after its actor exited with why; emits the event. */
static void child_down(sup_state *s, sup_child *c, const gr_reason *why)
{
    gr_ref old = c->ref;
    (void)gr__refmap_take(&s->running, old);
    c->ref = GR_REF_NONE;
    c->state = GR_CHILD_STOPPED;
    emit(s, gr_reason_is_clean(why) ? GR_EV_CHILD_EXITED : GR_EV_CHILD_CRASHED,
         c, old, why);
}

/* A child the current job is stopping has exited. */
static int job_child_exited(sup_state *s, gr_ctx *ctx, sup_child *c,
                            const gr_reason *why)
{
    child_down(s, c, why);
    c->in_job = false;
    /* Stopped as collateral, a temporary child is removed (OTP). */
    if (c->restart == GR_TEMPORARY || c->dynamic)
        c->drop = true;
    if (c != s->job.current)
        return GR_CONTINUE;
    if (s->job.kill_timer != 0)
        gr__timer_cancel(s->sys, s->job.kill_timer);
    s->job.kill_timer = 0;
    s->job.current = NULL;
    s->job.next++;
    return job_next(s, ctx);
}

/* A child exited on its own: restart it as its type and the strategy say. */
static int child_exited(sup_state *s, gr_ctx *ctx, sup_child *c,
                        const gr_reason *why)
{
    child_down(s, c, why);
    bool restart = c->restart == GR_PERMANENT ||
                   (c->restart == GR_TRANSIENT && !gr_reason_is_clean(why));
    if (restart)
        return restart_event(s, ctx, c, false);
    if (c->restart == GR_TEMPORARY || c->dynamic)
        gr__sup_remove_child(s, c);
    return GR_CONTINUE;
}

static int on_exit(sup_state *s, gr_ctx *ctx, const gr_msg *m)
{
    gr_exit_msg x;
    if (gr_exit_read(m, &x) != GR_OK)
        return GR_CONTINUE;
    /* A child's exit comes by its link; a signal a running child sends
     * (gr_exit) is not its death, and is a stranger's. */
    sup_child *c = x.linked ? gr__refmap_get(&s->running, x.from) : NULL;
    if (c != NULL)
        return c->in_job ? job_child_exited(s, ctx, c, &x.reason)
                         : child_exited(s, ctx, c, &x.reason);
    /* From the parent (any reason), or from gr_system_exit (not normal):
     * stop in order and exit with the same reason, as OTP. */
    bool parent = !gr_ref_is_none(s->parent) && gr_ref_eq(x.from, s->parent);
    if (parent || (gr_ref_is_none(x.from) && x.reason.code != GR_OK))
        return shutdown_self(s, ctx, &x.reason);
    return GR_CONTINUE; /* A stranger's signal: ignored, as OTP does. */
}

static int on_timer(sup_state *s, gr_ctx *ctx, const gr_msg *m)
{
    sup_child *c = gr__refmap_take(&s->timers, gr__id_key(m->corr));
    if (c == NULL)
        return GR_CONTINUE; /* Cancelled meanwhile. */
    c->token = c->timer = 0;
    return do_restart(s, ctx, c);
}

/* --- The stash. --- */

static void stash(sup_state *s, const gr_msg *m)
{
    sup_stashed *st = malloc(sizeof *st + m->len);
    if (st == NULL) {
        /* Cannot keep it: a request still gets its answer. */
        gr__log(gr__system_log(s->sys), GR_LOG_ERROR,
                "supervisor: out of memory; message type 0x%x dropped",
                m->type);
        return;
    }
    st->next = NULL;
    st->msg = *m;
    if (m->len > 0)
        memcpy(st->payload, m->data, m->len);
    st->msg.data = m->len > 0 ? st->payload : NULL;
    if (s->stash_tail != NULL)
        s->stash_tail->next = st;
    else
        s->stash = st;
    s->stash_tail = st;
}

static int dispatch(sup_state *s, gr_ctx *ctx, const gr_msg *m)
{
    if (s->job.active) {
        gr_exit_msg x;
        sup_child *c = NULL;
        if (m->type == GR_MSG_EXIT && gr_exit_read(m, &x) == GR_OK && x.linked)
            c = gr__refmap_get(&s->running, x.from);
        if (c == NULL || !c->in_job) {
            stash(s, m);
            return GR_CONTINUE;
        }
    }
    switch (m->type) {
    case GR_MSG_EXIT:
        return on_exit(s, ctx, m);
    case GR__MSG_SUP_TIMER:
        return on_timer(s, ctx, m);
    case GR__MSG_SUP_CALL:
        return gr__sup_handle_call(s, ctx, m);
    default:
        gr__log(gr__system_log(s->sys), GR_LOG_WARN,
                "supervisor: unexpected message type 0x%x ignored", m->type);
        return GR_CONTINUE;
    }
}

static int sup_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    sup_state *s = state;
    int r = dispatch(s, ctx, m);
    /* Messages that waited for a job now run, in arrival order. */
    while (r == GR_CONTINUE && !s->job.active && s->stash != NULL) {
        sup_stashed *st = s->stash;
        s->stash = st->next;
        if (s->stash == NULL)
            s->stash_tail = NULL;
        r = dispatch(s, ctx, &st->msg);
        free(st);
    }
    return r;
}

/* --- Start and end. --- */

/* Frees everything s owns. Pending callers are answered GR_ESHUTDOWN. */
static void sup_free(sup_state *s, gr_ctx *ctx)
{
    if (s->job.active && s->job.then == THEN_REPLY)
        gr__sup_reply(ctx, s->job.reply_to, s->job.reply_corr, GR_ESHUTDOWN,
                      GR_REF_NONE, NULL, 0);
    if (s->job.kill_timer != 0)
        gr__timer_cancel(s->sys, s->job.kill_timer);
    free(s->job.stop);
    while (s->stash != NULL) {
        sup_stashed *st = s->stash;
        s->stash = st->next;
        if (st->msg.type == GR__MSG_SUP_CALL)
            gr__sup_reply(ctx, st->msg.from, st->msg.corr, GR_ESHUTDOWN,
                          GR_REF_NONE, NULL, 0);
        free(st);
    }
    while (s->first != NULL)
        gr__sup_remove_child(s, s->first);
    gr__sup_child_free(s->tmpl);
    gr__refmap_clear(&s->running);
    gr__refmap_clear(&s->timers);
    gr__sup_window_free(&s->window);
    free(s->name);
}

/* Checks a whole supervisor spec. */
/* A label as a log line may show it (out: GR_NAME_MAX + 1 bytes): as it
 * is when it is a valid label, else with every byte outside printable
 * ASCII as '?' (a newline in it would forge a log line), cut to
 * GR_NAME_MAX bytes. */
static const char *shown(const char *raw, char *out)
{
    size_t k = 0;
    bool ok = gr__label_check(raw) == GR_OK;
    for (; raw != NULL && raw[k] != '\0' && k < GR_NAME_MAX; k++)
        out[k] = ok || ((unsigned char)raw[k] >= 0x20 &&
                        (unsigned char)raw[k] < 0x7F)
                     ? raw[k]
                     : '?';
    out[k] = '\0';
    return out;
}

/* Checks a whole supervisor spec; when it is refused, logs which field
 * (and which child) is wrong, so a GR_EINVAL says more than "invalid". */
static int check_spec(gr_system *sys, const gr_sup_spec *sp)
{
    const char *why = NULL;
    size_t bad = SIZE_MAX; /* The child at fault, if one is. */
    int rc = GR_EINVAL;
    if ((unsigned)sp->strategy > GR_SIMPLE_ONE_FOR_ONE)
        why = "strategy is not a gr_strategy";
    else if (sp->nchildren > 0 && sp->children == NULL)
        why = "children is NULL with nchildren > 0";
    else if (sp->strategy == GR_SIMPLE_ONE_FOR_ONE && sp->nchildren != 1)
        why = "a simple-one-for-one supervisor takes exactly one child spec, "
              "its template";
    else
        rc = GR_OK;
    for (size_t i = 0; rc == GR_OK && i < sp->nchildren; i++)
        if ((rc = gr__sup_spec_check(&sp->children[i],
                                     sp->strategy == GR_SIMPLE_ONE_FOR_ONE,
                                     &why)) != GR_OK)
            bad = i;
    if (rc == GR_OK &&
        (rc = gr__sup_ids_unique(sp->children, sp->nchildren)) == GR_EINVAL)
        why = "two children have the same id";
    if (rc != GR_OK && why != NULL) {
        char at[GR_NAME_MAX + 48] = "", id[GR_NAME_MAX + 1],
                              name[GR_NAME_MAX + 1];
        if (bad != SIZE_MAX)
            snprintf(at, sizeof at, " child %zu (id \"%s\"):", bad,
                     shown(sp->children[bad].id, id));
        gr__log(gr__system_log(sys), GR_LOG_ERROR,
                "supervisor%s%s%s spec refused (%s):%s %s",
                sp->name != NULL ? " \"" : "",
                sp->name != NULL ? shown(sp->name, name) : "",
                sp->name != NULL ? "\"" : "", gr_errname(rc), at, why);
    }
    return rc;
}

/* How long a failed start waits for a child that was killed, and at most
 * for one whose shutdown is infinity when init runs on a worker (whose
 * peers must be free to run the child's exit), before it goes on. */
#define UNDO_KILL_WAIT_MS  5000
#define UNDO_WORKER_CAP_MS 10000

/* In a failed start: polls until ref is gone, up to ms (-1: no limit);
 * true once it is. */
static bool wait_exited(gr_system *sys, gr_ref ref, int64_t ms)
{
    for (int64_t waited = 0; gr__ref_alive(sys, ref); waited++) {
        if (ms >= 0 && waited >= ms)
            return false;
        struct timespec one = {0, 1000000};
        (void)nanosleep(&one, NULL);
    }
    return true;
}

/* Stops child c of a failed start as OTP does, waiting for it: its
 * shutdown signal, and the kill send_shutdown arms for shutdown_ms later.
 * The wait is bounded where init runs on a worker, and skipped where that
 * worker is the system's only one (nothing else could run the child's
 * exit). */
static void stop_and_wait(sup_state *s, gr_ctx *ctx, sup_child *c)
{
    uint64_t kill_timer;
    send_shutdown(s, ctx, c, &kill_timer);
    bool on_worker = gr__worker_of(s->sys) != NULL;
    if (on_worker && gr__system_workers(s->sys) < 2)
        return;
    int64_t wait = c->shutdown_ms == GR_SHUTDOWN_BRUTAL ? UNDO_KILL_WAIT_MS
                   : c->shutdown_ms == GR_SHUTDOWN_INFINITY
                       ? (on_worker ? UNDO_WORKER_CAP_MS : -1)
                       : (int64_t)c->shutdown_ms + UNDO_KILL_WAIT_MS;
    if (c->shutdown_ms == GR_SHUTDOWN_INFINITY &&
        !wait_exited(s->sys, c->ref, wait)) {
        /* Past the cap a worker keeps (infinity has no kill of its own). */
        (void)gr_exit(ctx, c->ref, &kill_reason);
        wait = UNDO_KILL_WAIT_MS;
    }
    if (wait_exited(s->sys, c->ref, wait)) {
        if (kill_timer != 0)
            gr__timer_cancel(s->sys, kill_timer);
        return;
    }
    gr__log(gr__system_log(s->sys), GR_LOG_WARN,
            "supervisor: child \"%s\" had not exited %d ms after its kill in "
            "a failed start; going on without it",
            c->id, UNDO_KILL_WAIT_MS);
}

/* Undoes a partial start as OTP does: the children started so far are
 * stopped one at a time, newest first, each by its shutdown spec, waiting
 * for each before the next (init returns only then, so their names are
 * free). They are unlinked first so that their exits do not come back to
 * this failed supervisor. */
static void abandon_children(sup_state *s, gr_ctx *ctx)
{
    for (sup_child *c = s->last; c != NULL; c = c->prev) {
        if (gr_ref_is_none(c->ref))
            continue;
        (void)gr_unlink(ctx, c->ref);
        (void)gr__refmap_take(&s->running, c->ref);
        stop_and_wait(s, ctx, c);
        c->ref = GR_REF_NONE;
    }
}

static int sup_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    sup_state *s = state;
    gr_sup_spec sp;
    if (arg == NULL || len != sizeof sp)
        return GR_EINVAL;
    memcpy(&sp, arg, sizeof sp);
    int rc = check_spec(gr_ctx_system(ctx), &sp);
    if (rc != GR_OK)
        return rc;
    s->sys = gr_ctx_system(ctx);
    s->self = gr_self(ctx);
    s->parent = gr__ctx_parent(ctx);
    gr__accept_calls(ctx); /* Its runtime API arrives as requests. */
    s->strategy = sp.strategy;
    s->backoff = sp.backoff;
    s->rng = s->self.serial * 0x9E3779B97F4A7C15u ^ gr__sup_now_ms() ^ 1;
    rc = gr__sup_window_init(&s->window, sp.intensity,
                             sp.period_ms ? sp.period_ms : 5000);
    if (rc == GR_OK && gr_trap_exit(ctx, 1) < 0)
        rc = GR_ENOMEM;
    if (rc == GR_OK && sp.name != NULL &&
        (rc = gr_register(ctx, sp.name)) == GR_OK &&
        (s->name = strdup(sp.name)) == NULL)
        rc = GR_ENOMEM;
    if (rc == GR_OK && sp.strategy == GR_SIMPLE_ONE_FOR_ONE) {
        s->tmpl = gr__sup_child_new(&sp.children[0], sp.children[0].arg,
                                    sp.children[0].arg_len);
        if (s->tmpl == NULL)
            rc = GR_ENOMEM;
    } else {
        for (size_t i = 0; rc == GR_OK && i < sp.nchildren; i++) {
            const gr_child_spec *cs = &sp.children[i];
            sup_child *c = gr__sup_child_new(cs, cs->arg, cs->arg_len);
            if (c == NULL) {
                rc = GR_ENOMEM;
                break;
            }
            gr__sup_list_append(s, c);
            gr_reason why;
            rc = gr__sup_start_child(s, ctx, c, false, &why);
        }
    }
    if (rc != GR_OK) {
        abandon_children(s, ctx);
        sup_free(s, ctx);
        return rc;
    }
    return GR_OK;
}

static void sup_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)why;
    /* Children still running (after a kill or gr_stop) get this exit
     * through their links. */
    sup_free(state, ctx);
}

const gr_behaviour gr_supervisor_behaviour = {
    .name = "supervisor",
    .state_size = sizeof(sup_state),
    .init = sup_init,
    .handle = sup_handle,
    .terminate = sup_terminate,
};

int gr_supervisor_start(gr_system *sys, const gr_sup_spec *spec, gr_ref *out)
{
    if (sys == NULL || spec == NULL)
        return GR_EINVAL;
    gr_ref ref;
    int rc = gr_system_spawn(sys, &gr_supervisor_behaviour, spec, sizeof *spec,
                             &ref);
    if (rc == GR_OK && out != NULL)
        *out = ref;
    return rc;
}
