/*
 * The registry: which session has which nick. It monitors every session
 * that claims one, so a client that vanishes (no QUIT, a reset, a crashed
 * session) frees its nick when its session exits. Private messages pass
 * through it: it knows where a nick lives.
 */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

/* One nick: its session and the registry's monitor of it. */
typedef struct entry {
    char nick[CHAT_NICK_MAX + 1]; /* "" marks a free slot. */
    gr_ref session;
    uint64_t mon;
} entry;

/* An open-addressing table by nick, grown by doubling. */
typedef struct registry {
    entry *slots;
    size_t cap, n;
} registry;

static size_t hash(const char *s)
{
    size_t h = 5381;
    for (; *s != '\0'; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

/* The slot of nick, or the free slot where it would go. */
static entry *slot_of(registry *r, const char *nick)
{
    size_t i = hash(nick) & (r->cap - 1);
    while (r->slots[i].nick[0] != '\0' && strcmp(r->slots[i].nick, nick) != 0)
        i = (i + 1) & (r->cap - 1);
    return &r->slots[i];
}

static bool grow(registry *r)
{
    size_t cap = r->cap ? r->cap * 2 : 64;
    entry *old = r->slots;
    size_t old_cap = r->cap;
    r->slots = calloc(cap, sizeof *r->slots);
    if (r->slots == NULL) {
        r->slots = old;
        return false;
    }
    r->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].nick[0] != '\0')
            *slot_of(r, old[i].nick) = old[i];
    free(old);
    return true;
}

/* Removes e, moving back the entries after it that probed past it. */
static void remove_at(registry *r, entry *e)
{
    size_t i = (size_t)(e - r->slots);
    r->slots[i].nick[0] = '\0';
    r->n--;
    for (size_t j = (i + 1) & (r->cap - 1); r->slots[j].nick[0] != '\0';
         j = (j + 1) & (r->cap - 1)) {
        entry moved = r->slots[j];
        r->slots[j].nick[0] = '\0';
        *slot_of(r, moved.nick) = moved;
    }
}

/* The entry of session s, or NULL (one nick per session). */
static entry *by_session(registry *r, gr_ref s)
{
    for (size_t i = 0; i < r->cap; i++)
        if (r->slots[i].nick[0] != '\0' && gr_ref_eq(r->slots[i].session, s))
            return &r->slots[i];
    return NULL;
}

static int answer(gr_ctx *ctx, const gr_msg *m, int rc)
{
    chat_answer a = {.rc = rc};
    return gr_reply(ctx, m, CHAT_ANSWER, &a, sizeof a);
}

static int on_claim(gr_ctx *ctx, registry *r, const gr_msg *m)
{
    chat_nick c;
    memcpy(&c, m->data, sizeof c);
    c.nick[CHAT_NICK_MAX] = '\0';
    if (r->cap == 0 || (r->n + 1) * 2 > r->cap)
        if (!grow(r))
            return answer(ctx, m, GR_ENOMEM);
    entry *e = slot_of(r, c.nick);
    if (e->nick[0] != '\0')
        return answer(ctx, m,
                      gr_ref_eq(e->session, m->from) ? GR_OK : GR_EEXIST);
    entry *old = by_session(r, m->from);
    uint64_t mon = 0;
    if (old != NULL) { /* A new nick for the same session. */
        mon = old->mon;
        remove_at(r, old);
        e = slot_of(r, c.nick);
    } else if (gr_monitor(ctx, m->from, &mon) != GR_OK) {
        return answer(ctx, m, GR_ENOMEM);
    }
    memcpy(e->nick, c.nick, sizeof e->nick);
    e->session = m->from;
    e->mon = mon;
    r->n++;
    return answer(ctx, m, GR_OK);
}

static int on_priv(gr_ctx *ctx, registry *r, const gr_msg *m)
{
    chat_text t;
    memcpy(&t, m->data, sizeof t);
    t.to[CHAT_NICK_MAX] = '\0';
    entry *e = r->cap ? slot_of(r, t.to) : NULL;
    if (e == NULL || e->nick[0] == '\0')
        return chat_reply(ctx, m->from, t.tag,
                          "ERR nosuchnick no such nick: %s", t.to);
    (void)gr_tell(ctx, e->session, CHAT_PRIV_IN, &t, sizeof t);
    return chat_reply(ctx, m->from, t.tag, "OK PRIV %s", t.to);
}

static int registry_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    registry *r = state;
    gr_down d;
    if (gr_down_read(m, &d) == GR_OK) {
        entry *e = r->cap ? by_session(r, d.target) : NULL;
        if (e != NULL)
            remove_at(r, e);
        return GR_CONTINUE;
    }
    switch (m->type) {
    case CHAT_CLAIM:
        if (m->len == sizeof(chat_nick) && (m->flags & GR_MSG_REQUEST))
            return on_claim(ctx, r, m);
        break;
    case CHAT_RELEASE: {
        entry *e = r->cap ? by_session(r, m->from) : NULL;
        if (e != NULL) {
            (void)gr_demonitor(ctx, e->mon);
            remove_at(r, e);
        }
        break;
    }
    case CHAT_PRIV:
        if (m->len == sizeof(chat_text))
            return on_priv(ctx, r, m);
        break;
    }
    return GR_CONTINUE;
}

static void registry_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    (void)ctx;
    (void)why;
    free(((registry *)state)->slots);
}

const gr_behaviour chat_registry = {
    .name = "registry",
    .state_size = sizeof(registry),
    .handle = registry_handle,
    .terminate = registry_terminate,
};
