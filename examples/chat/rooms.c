/*
 * The rooms node: a manager (registered as "rooms" by its child spec, in
 * main.c, under the node's own supervisor) that finds or creates
 * the room a session joins, and one actor per room that keeps its members
 * (monitoring each) and broadcasts. It all runs in its own OS process: a
 * crash or kill -9 there loses the rooms, never the connections, and the
 * sessions join again once the node is back.
 */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a room ---------------------------------------------------------- */

typedef struct member {
    char nick[CHAT_NICK_MAX + 1];
    gr_ref session;
    uint64_t mon;
} member;

typedef struct room {
    char name[CHAT_ROOM_MAX + 1];
    member *v;
    size_t n, cap;
    chat_fanout *fan; /* The relay's message, rebuilt for each line. */
    size_t fan_cap;
} room;

static member *find_member(room *r, gr_ref session)
{
    for (size_t i = 0; i < r->n; i++)
        if (gr_ref_eq(r->v[i].session, session))
            return &r->v[i];
    return NULL;
}

/* Sends line to every member but `except` (GR_REF_NONE: all): once, to
 * the relay in the root process, which hands it to each. */
static void broadcast(gr_ctx *ctx, room *r, gr_ref except, const char *line)
{
    size_t len = strlen(line);
    size_t need = sizeof *r->fan + r->n * sizeof(gr_ref) + len;
    if (need > r->fan_cap) {
        chat_fanout *f = realloc(r->fan, need);
        if (f == NULL)
            return; /* Out of memory: this line is lost for all. */
        r->fan = f;
        r->fan_cap = need;
    }
    uint32_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        if (!gr_ref_eq(r->v[i].session, except))
            r->fan->sessions[n++] = r->v[i].session;
    if (n == 0)
        return;
    r->fan->n = n;
    memcpy(&r->fan->sessions[n], line, len);
    (void)gr_tell_name(ctx, CHAT_RELAY_AT, CHAT_FANOUT, r->fan,
                       sizeof *r->fan + n * sizeof(gr_ref) + len);
}

/* Answers a session's MSG (its tag): rc GR_OK when it was sent. */
static int said(gr_ctx *ctx, room *r, gr_ref to, uint32_t tag, int32_t rc)
{
    chat_said a = {.rc = rc, .tag = tag};
    snprintf(a.room, sizeof a.room, "%s", r->name);
    return gr_tell(ctx, to, CHAT_SAID, &a, sizeof a);
}

/* Removes member m (demonitoring it unless it is gone) and tells the
 * others with line; an empty room exits. */
static int drop(gr_ctx *ctx, room *r, member *m, bool gone, const char *line)
{
    if (!gone)
        (void)gr_demonitor(ctx, m->mon);
    gr_ref who = m->session;
    *m = r->v[--r->n];
    broadcast(ctx, r, who, line);
    return r->n == 0 ? GR_STOP : GR_CONTINUE;
}

/* Adds j's session as a member, monitored; GR_OK, CHAT_ROOM_FULL or
 * GR_ENOMEM. */
static int32_t add_member(gr_ctx *ctx, room *r, const chat_member *j)
{
    if (r->n == CHAT_MEMBERS_MAX)
        return CHAT_ROOM_FULL;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        member *v = realloc(r->v, cap * sizeof *v);
        if (v == NULL)
            return GR_ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    member *m = &r->v[r->n];
    snprintf(m->nick, sizeof m->nick, "%s", j->nick);
    m->session = j->session;
    if (gr_monitor(ctx, j->session, &m->mon) != GR_OK)
        return GR_ENOMEM;
    r->n++;
    char line[CHAT_LINE_MAX];
    snprintf(line, sizeof line, "JOIN %s %s", r->name, j->nick);
    broadcast(ctx, r, j->session, line);
    return GR_OK;
}

/* Every JOIN is answered, yes or no: the session's reading waits for it. */
static int on_join(gr_ctx *ctx, room *r, const chat_member *j)
{
    int32_t rc = find_member(r, j->session) ? GR_OK : add_member(ctx, r, j);
    return chat_tell_joined(ctx, j->session, r->name,
                            rc == GR_OK ? gr_self(ctx) : GR_REF_NONE, rc);
}

/* Answers WHO with one line to the asking session. */
static int on_who(gr_ctx *ctx, room *r, const gr_msg *m)
{
    char l[CHAT_LINE_MAX];
    size_t n = (size_t)snprintf(l, sizeof l, "OK WHO %s", r->name);
    for (size_t i = 0; i < r->n; i++)
        if (!chat_append_word(l, sizeof l, &n, r->v[i].nick))
            break;
    return chat_reply(ctx, m->from, chat_tag_of(m), "%s", l);
}

static int room_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    room *r = state;
    char line[CHAT_LINE_MAX + 64];
    gr_down d;
    if (gr_down_read(m, &d) == GR_OK) { /* A member's session is gone. */
        member *gone = find_member(r, d.target);
        if (gone == NULL)
            return GR_CONTINUE;
        snprintf(line, sizeof line, "QUIT %s connection lost", gone->nick);
        return drop(ctx, r, gone, true, line);
    }
    member *from = find_member(r, m->from);
    switch (m->type) {
    case CHAT_JOIN:
        if (m->len != sizeof(chat_member))
            return GR_CONTINUE;
        chat_member j;
        memcpy(&j, m->data, sizeof j);
        return on_join(ctx, r, &j);
    case CHAT_WHO:
        return on_who(ctx, r, m);
    case CHAT_SAY: {
        if (m->len != sizeof(chat_text))
            return GR_CONTINUE;
        chat_text t;
        memcpy(&t, m->data, sizeof t);
        if (from == NULL)
            return said(ctx, r, m->from, t.tag, GR_ENOTFOUND);
        t.text[CHAT_LINE_MAX] = '\0';
        snprintf(line, sizeof line, "MSG %s %s %s", r->name, from->nick,
                 t.text);
        broadcast(ctx, r, m->from, line);
        return said(ctx, r, m->from, t.tag, GR_OK);
    }
    case CHAT_PART: /* The session has said OK already. */
        if (from == NULL)
            return GR_CONTINUE;
        snprintf(line, sizeof line, "PART %s %s", r->name, from->nick);
        return drop(ctx, r, from, false, line);
    case CHAT_QUIT: {
        if (from == NULL || m->len != sizeof(chat_text))
            return GR_CONTINUE;
        chat_text t;
        memcpy(&t, m->data, sizeof t);
        snprintf(line, sizeof line, "QUIT %s %s", from->nick, t.text);
        return drop(ctx, r, from, false, line);
    }
    }
    return GR_CONTINUE;
}

static int room_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    room *r = state;
    if (len == 0 || len > CHAT_ROOM_MAX)
        return GR_EINVAL;
    memcpy(r->name, arg, len);
    r->name[len] = '\0';
    return GR_OK;
}

static void room_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)ctx;
    (void)why;
    room *r = state;
    free(r->v);
    free(r->fan);
}

static const gr_behaviour chat_room = {
    .name = "room",
    .state_size = sizeof(room),
    .init = room_init,
    .handle = room_handle,
    .terminate = room_terminate,
};

/* ---- the manager ------------------------------------------------------ */

typedef struct known_room {
    char name[CHAT_ROOM_MAX + 1];
    gr_ref ref;
} known_room;

typedef struct manager {
    known_room *v;
    size_t n, cap;
} manager;

static known_room *find_room(manager *mg, const char *name)
{
    for (size_t i = 0; i < mg->n; i++)
        if (strcmp(mg->v[i].name, name) == 0)
            return &mg->v[i];
    return NULL;
}

/* The room named j->room, created (and monitored) if it does not exist. */
static known_room *room_for(gr_ctx *ctx, manager *mg, const char *name)
{
    known_room *k = find_room(mg, name);
    if (k != NULL)
        return k;
    if (mg->n == mg->cap) {
        size_t cap = mg->cap ? mg->cap * 2 : 16;
        known_room *v = realloc(mg->v, cap * sizeof *v);
        if (v == NULL)
            return NULL;
        mg->v = v;
        mg->cap = cap;
    }
    k = &mg->v[mg->n];
    snprintf(k->name, sizeof k->name, "%s", name);
    /* Linked: a manager that crashes takes its rooms with it (a room that
     * outlived it would be unknown to the next manager, which would make
     * a second room of that name), and the members join again. */
    if (gr_spawn_link(ctx, &chat_room, name, strlen(name), &k->ref) != GR_OK ||
        gr_monitor(ctx, k->ref, NULL) != GR_OK)
        return NULL;
    mg->n++;
    return k;
}

/* Answers LIST with one line to the asking session. */
static int on_list(gr_ctx *ctx, manager *mg, const gr_msg *m)
{
    char l[CHAT_LINE_MAX];
    size_t n = (size_t)snprintf(l, sizeof l, "OK LIST");
    for (size_t i = 0; i < mg->n; i++)
        if (!chat_append_word(l, sizeof l, &n, mg->v[i].name))
            break;
    return chat_reply(ctx, m->from, chat_tag_of(m), "%s", l);
}

static int rooms_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    manager *mg = state;
    gr_down d;
    if (gr_down_read(m, &d) == GR_OK) { /* An empty room left. */
        for (size_t i = 0; i < mg->n; i++)
            if (gr_ref_eq(mg->v[i].ref, d.target)) {
                mg->v[i] = mg->v[--mg->n];
                break;
            }
        return GR_CONTINUE;
    }
    if (m->type == CHAT_LIST)
        return on_list(ctx, mg, m);
    if (m->type == CHAT_CRASH_ROOMS && getenv("CHAT_DEBUG") != NULL)
        gr_fail(ctx, "CRASH ROOMS asked by a client");
    if (m->type != CHAT_JOIN || m->len != sizeof(chat_member))
        return GR_CONTINUE;
    chat_member j;
    memcpy(&j, m->data, sizeof j);
    j.room[CHAT_ROOM_MAX] = '\0';
    known_room *k = room_for(ctx, mg, j.room);
    if (k == NULL)
        return chat_tell_joined(ctx, j.session, j.room, GR_REF_NONE, GR_ENOMEM);
    /* The session is named in the payload: the room answers it. */
    return gr_tell(ctx, k->ref, CHAT_JOIN, &j, sizeof j);
}

static void rooms_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)ctx;
    (void)why;
    free(((manager *)state)->v);
}

const gr_behaviour chat_rooms = {
    .name = "rooms",
    .state_size = sizeof(manager),
    .handle = rooms_handle,
    .terminate = rooms_terminate,
};
