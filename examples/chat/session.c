/*
 * A session: one client connection. It owns the socket (lines of at most
 * CHAT_LINE_MAX bytes, read one at a time), parses the protocol, limits
 * the client's rate (a token bucket), and keeps its nick in the registry
 * and its rooms in the rooms node. Rooms it joined are monitored: when
 * the rooms node dies, the session joins them again once the node is
 * back, and tells its user.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "chat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often lost rooms are asked for again while their node is away. */
#define REJOIN_MS 100
/* How long a session waits at most for a command's answer, should the
 * actor that owes it be stopped or die first. */
#define ANSWER_MS 1000

typedef enum { ROOM_JOINING, ROOM_JOINED } room_state;

/* The answer to the client's last command, which the session awaits
 * before it reads the next line: so answers come in the order of the
 * commands, whichever actor gives them, and a client cannot send faster
 * than the server answers. */
typedef enum {
    AWAIT_NONE,
    AWAIT_NICK,  /* The registry's answer to the ask claim_corr (the ask
                    has its own timeout). */
    AWAIT_JOIN,  /* CHAT_JOINED for await_room. */
    AWAIT_MSG,   /* CHAT_SAID tagged await_tag (its room's DOWN ends it). */
    AWAIT_REPLY, /* A CHAT_REPLY tagged await_tag (PRIV, LIST, WHO). */
} await_kind;

typedef struct my_room {
    char name[CHAT_ROOM_MAX + 1];
    room_state state;
    bool restarted; /* Lost with its node: tell the user when rejoined. */
    gr_ref ref;
    uint64_t mon;
} my_room;

typedef struct session {
    gr_socket sock;
    chat_session_arg limits;
    bool too_slow; /* Dropped for not reading: stop after this message. */
    char nick[CHAT_NICK_MAX + 1];
    my_room rooms[CHAT_ROOMS_PER_SESSION];
    int nrooms;
    double tokens;
    uint64_t refilled_ns;
    bool rejoin_armed;
    await_kind await;
    char await_room[CHAT_ROOM_MAX + 1]; /* AWAIT_JOIN's and AWAIT_MSG's. */
    uint32_t await_tag;  /* The last command's number: its answer's tag. */
    uint64_t claim_corr; /* AWAIT_NICK's ask. */
    char claiming[CHAT_NICK_MAX + 1];
    bool leaving; /* The client left: stop once the awaited answer is in. */
} session;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Writes one line (LF added) to the client. */
static int say(gr_ctx *ctx, session *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int say(gr_ctx *ctx, session *s, const char *fmt, ...)
{
    char line[CHAT_LINE_MAX + 96];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return GR_CONTINUE;
    size_t len = (size_t)n < sizeof line - 2 ? (size_t)n : sizeof line - 2;
    line[len++] = '\n';
    size_t queued = 0;
    if (s->too_slow || gr_io_queued(ctx, s->sock, &queued) != GR_OK)
        return GR_CONTINUE;
    if (queued + len > s->limits.send_limit) {
        /* It stopped reading: a last line (the socket's reserve has room
         * for it), then the exit closes the socket once that is sent, or
         * gives up after a while. */
        static const char bye[] = "ERR tooslow you stopped reading\n";
        (void)gr_io_write(ctx, s->sock, bye, sizeof bye - 1);
        s->too_slow = true;
        return GR_STOP;
    }
    (void)gr_io_write(ctx, s->sock, line, len);
    return GR_CONTINUE;
}

static my_room *find_room(session *s, const char *name)
{
    for (int i = 0; i < s->nrooms; i++)
        if (strcmp(s->rooms[i].name, name) == 0)
            return &s->rooms[i];
    return NULL;
}

/* Asks the rooms node to (re)join r; the room answers CHAT_JOINED. While
 * the node is away the send fails, and the rejoin timer tries again. */
static void ask_join(gr_ctx *ctx, session *s, my_room *r)
{
    chat_member j = {.session = gr_self(ctx)};
    snprintf(j.room, sizeof j.room, "%s", r->name);
    snprintf(j.nick, sizeof j.nick, "%s", s->nick);
    (void)gr_tell_name(ctx, CHAT_ROOMS_AT, CHAT_JOIN, &j, sizeof j);
    if (!s->rejoin_armed &&
        gr_timer_after(ctx, REJOIN_MS, CHAT_REJOIN, NULL, 0, NULL) == GR_OK)
        s->rejoin_armed = true;
}

/* Takes one token; false when the client is over its rate. */
static bool take_token(session *s)
{
    uint64_t now = now_ns();
    double rate = s->limits.line_rate, burst = 2 * rate;
    s->tokens += (double)(now - s->refilled_ns) / 1e9 * rate;
    if (s->tokens > burst)
        s->tokens = burst;
    s->refilled_ns = now;
    if (s->tokens < 1.0)
        return false;
    s->tokens -= 1.0;
    return true;
}

/* Whether the line is UTF-8 text without control characters. */
static bool text_ok(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t k = c < 0x80             ? 1
                   : (c & 0xE0) == 0xC0 ? 2
                   : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4
                                        : 0;
        if (k == 0 || i + k > n || (k == 1 && (c < 0x20 || c == 0x7F)) ||
            (k == 2 && c < 0xC2))
            return false;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
        i += k;
    }
    return true;
}

/* Reads the client's next line, unless an answer is awaited or the
 * client has left. A socket that failed meanwhile needs nothing here: its
 * error message ends us. */
static void resume(gr_ctx *ctx, session *s)
{
    if (s->await == AWAIT_NONE && !s->leaving)
        (void)gr_io_activate(ctx, s->sock, 1);
}

/* Numbers the command about to be sent; its answer carries the tag, and
 * an answer with another tag (one given up on) is dropped. */
static uint32_t next_tag(session *s)
{
    return ++s->await_tag;
}

/* Awaits the answer to the command just sent (numbered by next_tag, about
 * room or NULL), giving it up after ANSWER_MS (CHAT_GIVE_UP). */
static void expect_answer(gr_ctx *ctx, session *s, await_kind kind,
                          const char *room)
{
    s->await = kind;
    snprintf(s->await_room, sizeof s->await_room, "%s", room ? room : "");
    if (kind == AWAIT_NICK)
        return;
    chat_tag t = {s->await_tag};
    (void)gr_timer_after(ctx, ANSWER_MS, CHAT_GIVE_UP, &t, sizeof t, NULL);
}

/* The awaited answer is in (or given up on): read on, or end a session
 * whose client has left. */
static int answered(gr_ctx *ctx, session *s)
{
    s->await = AWAIT_NONE;
    if (s->leaving)
        return GR_STOP;
    resume(ctx, s);
    return GR_CONTINUE;
}

/* ---- commands ----------------------------------------------------------- */

static int cmd_nick(gr_ctx *ctx, session *s, char *arg)
{
    size_t len = strlen(arg);
    if (!chat_nick_ok(arg, len))
        return say(ctx, s, "ERR badnick a nick is 1 to 16 of A-Z a-z 0-9 _ -");
    if (s->nick[0] != '\0')
        return say(ctx, s, "ERR badnick your nick is %s already", s->nick);
    gr_ref reg;
    chat_nick c;
    memset(&c, 0, sizeof c);
    memcpy(c.nick, arg, len);
    if (gr_whereis(gr_ctx_system(ctx), CHAT_REGISTRY, &reg) != GR_OK ||
        gr_ask(ctx, reg, CHAT_CLAIM, &c, sizeof c, GR_DURATION_DEFAULT,
               &s->claim_corr) != GR_OK)
        return say(ctx, s, "ERR unknown the registry is away, try again");
    memcpy(s->claiming, c.nick, sizeof s->claiming);
    expect_answer(ctx, s, AWAIT_NICK, NULL); /* on_claimed */
    return GR_CONTINUE;
}

static int cmd_join(gr_ctx *ctx, session *s, char *arg)
{
    if (!chat_room_ok(arg, strlen(arg)))
        return say(ctx, s,
                   "ERR nosuchroom a room is # then 1 to 31 of "
                   "A-Z a-z 0-9 _ -");
    if (find_room(s, arg) != NULL)
        return say(ctx, s, "OK JOIN %s", arg);
    if (s->nrooms == CHAT_ROOMS_PER_SESSION)
        return say(ctx, s, "ERR full at most %d rooms", CHAT_ROOMS_PER_SESSION);
    my_room *r = &s->rooms[s->nrooms++];
    *r = (my_room){.state = ROOM_JOINING};
    snprintf(r->name, sizeof r->name, "%s", arg);
    ask_join(ctx, s, r);
    next_tag(s); /* Matched by its room: only the give-up timer uses it. */
    expect_answer(ctx, s, AWAIT_JOIN, r->name); /* on_joined */
    return GR_CONTINUE;
}

/* Forgets room r (its monitor too). */
static void forget(gr_ctx *ctx, session *s, my_room *r)
{
    if (r->state == ROOM_JOINED)
        (void)gr_demonitor(ctx, r->mon);
    *r = s->rooms[--s->nrooms];
}

/* The session's word is the one that counts: it says OK at once, and the
 * room, told, drops the member and tells the others. */
static int cmd_part(gr_ctx *ctx, session *s, char *arg)
{
    my_room *r = find_room(s, arg);
    if (r == NULL)
        return say(ctx, s, "ERR nosuchroom not in %s", arg);
    if (r->state == ROOM_JOINED) {
        chat_member p = {.session = gr_self(ctx)};
        snprintf(p.room, sizeof p.room, "%s", r->name);
        (void)gr_tell(ctx, r->ref, CHAT_PART, &p, sizeof p);
    }
    (void)say(ctx, s, "OK PART %s", r->name);
    forget(ctx, s, r);
    return GR_CONTINUE;
}

/* Splits "word rest" at the first space: the word is NUL-terminated in
 * place and the rest returned ("" when there is none). */
static char *split(char *line)
{
    char *sp = strchr(line, ' ');
    if (sp == NULL)
        return line + strlen(line);
    *sp = '\0';
    return sp + 1;
}

static int cmd_msg(gr_ctx *ctx, session *s, char *arg)
{
    char *text = split(arg);
    my_room *r = find_room(s, arg);
    if (r == NULL)
        return say(ctx, s, "ERR nosuchroom not in %s", arg);
    if (r->state != ROOM_JOINED)
        return say(ctx, s, "ERR nosuchroom %s is restarting, try again",
                   r->name);
    if (*text == '\0')
        return say(ctx, s, "ERR unknown MSG #room text");
    chat_text t;
    memset(&t, 0, sizeof t);
    snprintf(t.to, sizeof t.to, "%s", r->name);
    snprintf(t.from, sizeof t.from, "%s", s->nick);
    snprintf(t.text, sizeof t.text, "%s", text);
    t.tag = next_tag(s);
    if (gr_tell(ctx, r->ref, CHAT_SAY, &t, sizeof t) != GR_OK)
        return say(ctx, s, "ERR nosuchroom %s is restarting, try again",
                   r->name);
    expect_answer(ctx, s, AWAIT_MSG, r->name); /* on_said */
    return GR_CONTINUE;
}

static int cmd_priv(gr_ctx *ctx, session *s, char *arg)
{
    char *text = split(arg);
    if (!chat_nick_ok(arg, strlen(arg)) || *text == '\0')
        return say(ctx, s, "ERR nosuchnick PRIV nick text");
    chat_text t;
    memset(&t, 0, sizeof t);
    snprintf(t.to, sizeof t.to, "%s", arg);
    snprintf(t.from, sizeof t.from, "%s", s->nick);
    snprintf(t.text, sizeof t.text, "%s", text);
    t.tag = next_tag(s);
    if (gr_tell_name(ctx, CHAT_REGISTRY, CHAT_PRIV, &t, sizeof t) != GR_OK)
        return say(ctx, s, "ERR nosuchnick the registry is away");
    expect_answer(ctx, s, AWAIT_REPLY, NULL); /* OK or ERR. */
    return GR_CONTINUE;
}

static int cmd_list(gr_ctx *ctx, session *s, char *arg)
{
    (void)arg;
    chat_tag t = {next_tag(s)};
    if (gr_tell_name(ctx, CHAT_ROOMS_AT, CHAT_LIST, &t, sizeof t) != GR_OK)
        return say(ctx, s,
                   "ERR nosuchroom the rooms are restarting, try "
                   "again");
    expect_answer(ctx, s, AWAIT_REPLY, NULL);
    return GR_CONTINUE;
}

static int cmd_who(gr_ctx *ctx, session *s, char *arg)
{
    my_room *r = find_room(s, arg);
    if (r == NULL || r->state != ROOM_JOINED)
        return say(ctx, s, "ERR nosuchroom not in %s", arg);
    chat_tag t = {next_tag(s)};
    if (gr_tell(ctx, r->ref, CHAT_WHO, &t, sizeof t) != GR_OK)
        return say(ctx, s, "ERR nosuchroom %s is restarting, try again",
                   r->name);
    expect_answer(ctx, s, AWAIT_REPLY, NULL);
    return GR_CONTINUE;
}

/* Leaves with reason: the rooms hear it and the nick is free at once. */
static void leave(gr_ctx *ctx, session *s, const char *reason)
{
    chat_text t;
    memset(&t, 0, sizeof t);
    snprintf(t.from, sizeof t.from, "%s", s->nick);
    snprintf(t.text, sizeof t.text, "%s", reason);
    for (int i = 0; i < s->nrooms; i++)
        if (s->rooms[i].state == ROOM_JOINED)
            (void)gr_tell(ctx, s->rooms[i].ref, CHAT_QUIT, &t, sizeof t);
    s->nrooms = 0;
    if (s->nick[0] != '\0') {
        chat_nick n;
        memcpy(n.nick, s->nick, sizeof n.nick);
        (void)gr_tell_name(ctx, CHAT_REGISTRY, CHAT_RELEASE, &n, sizeof n);
    }
}

/* QUIT is read only once the last command was answered: nothing is owed,
 * so the session ends now, its socket closing once OK QUIT is sent. */
static int cmd_quit(gr_ctx *ctx, session *s, char *arg)
{
    leave(ctx, s, *arg ? arg : "quit");
    (void)say(ctx, s, "OK QUIT");
    return GR_STOP;
}

/* The commands: a name, whether NICK must come first, what runs it. */
typedef struct command {
    const char *name;
    bool needs_nick;
    int words;         /* Words it needs after its name: 0, 1, or 2 (a word
                          and text). */
    const char *usage; /* Said when they are missing. */
    int (*run)(gr_ctx *ctx, session *s, char *arg);
} command;

static const command commands[] = {
    {"NICK", false, 1, "NICK name", cmd_nick},
    {"QUIT", false, 0, "QUIT [reason]", cmd_quit},
    {"JOIN", true, 1, "JOIN #room", cmd_join},
    {"PART", true, 1, "PART #room", cmd_part},
    {"MSG", true, 2, "MSG #room text", cmd_msg},
    {"PRIV", true, 2, "PRIV nick text", cmd_priv},
    {"LIST", true, 0, "LIST", cmd_list},
    {"WHO", true, 1, "WHO #room", cmd_who},
};

/* Whether arg has the words a command needs. */
static bool has_words(const char *arg, int words)
{
    if (words == 0)
        return true;
    const char *sp = strchr(arg, ' ');
    if (words == 1)
        return *arg != '\0' && *arg != ' ';
    return *arg != ' ' && sp != NULL && sp[1] != '\0';
}

/* One line from the client. Returns GR_CONTINUE to read the next. */
static int on_line(gr_ctx *ctx, session *s, char *line, size_t len)
{
    line[len] = '\0';
    if (len == strspn(line, " ")) /* Blank: nothing to do. */
        return GR_CONTINUE;
    if (!text_ok((const unsigned char *)line, len))
        return say(ctx, s,
                   "ERR badinput a line is UTF-8 text without control "
                   "characters (tabs included)");
    /* Debugging commands, for the tests: not rate-limited. */
    if (strcmp(line, "CRASH") == 0 && getenv("CHAT_DEBUG") != NULL)
        gr_fail(ctx, "CRASH asked by %s", s->nick[0] ? s->nick : "a client");
    if (strcmp(line, "CRASH ROOMS") == 0 && getenv("CHAT_DEBUG") != NULL) {
        (void)gr_tell_name(ctx, CHAT_ROOMS_AT, CHAT_CRASH_ROOMS, NULL, 0);
        return GR_CONTINUE;
    }
    if (strcmp(line, "STATS") == 0 && getenv("CHAT_DEBUG") != NULL) {
        gr_stats st;
        gr_system_stats(gr_ctx_system(ctx), &st);
        return say(ctx, s, "OK STATS alive=%llu sockets=%llu",
                   (unsigned long long)st.alive,
                   (unsigned long long)st.sockets_open);
    }
    if (!take_token(s))
        return say(ctx, s, "ERR slowdown at most %u lines a second",
                   (unsigned)s->limits.line_rate);
    char *arg = split(line);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const command *c = &commands[i];
        if (strcmp(line, c->name) != 0)
            continue;
        if (c->needs_nick && s->nick[0] == '\0')
            return say(ctx, s, "ERR register NICK first");
        if (!has_words(arg, c->words))
            return say(ctx, s, "ERR unknown usage: %s", c->usage);
        return c->run(ctx, s, arg);
    }
    return say(ctx, s, "ERR unknown unknown command: %.32s", line);
}

/* ---- what arrives ------------------------------------------------------- */

static int on_io(gr_ctx *ctx, session *s, const gr_msg *m)
{
    gr_io_event ev;
    if (gr_io_event_read(m, &ev) != GR_OK)
        return GR_CONTINUE;
    switch (ev.kind) {
    case GR_IO_GIVEN:
        s->sock = ev.socket;
        resume(ctx, s);
        return GR_CONTINUE;
    case GR_IO_DATA: {
        char line[CHAT_LINE_MAX + 1];
        memcpy(line, ev.data, ev.len);
        int rc = on_line(ctx, s, line, ev.len);
        if (rc == GR_CONTINUE) /* The next line, unless an answer is due. */
            resume(ctx, s);
        return rc;
    }
    case GR_IO_ERROR:
        if (ev.code == GR_EMSGSIZE) { /* Dropped; the connection goes on. */
            (void)say(ctx, s, "ERR toolong a line is at most %d bytes",
                      CHAT_LINE_MAX);
            resume(ctx, s);
            return GR_CONTINUE;
        }
        return GR_STOP; /* Reset, or too slow to read: gone. */
    default: /* GR_IO_CLOSED: the client left without QUIT. It may still
                read, as `nc -N` does: an answer on its way still goes. */
        if (!s->leaving)
            leave(ctx, s, "connection lost");
        s->leaving = true;
        return s->await == AWAIT_NONE ? GR_STOP : GR_CONTINUE;
    }
}

/* The registry answered a NICK. */
static int on_claimed(gr_ctx *ctx, session *s, const gr_msg *m)
{
    chat_answer a = {.rc = GR_ETIMEDOUT};
    if (m->type == CHAT_ANSWER && m->len == sizeof a)
        memcpy(&a, m->data, sizeof a);
    s->claim_corr = 0;
    if (a.rc == GR_OK) {
        memcpy(s->nick, s->claiming, sizeof s->nick);
        (void)say(ctx, s, "OK NICK %s", s->nick);
    } else if (a.rc == GR_EEXIST) {
        (void)say(ctx, s, "ERR nickinuse nick in use: %s", s->claiming);
    } else {
        (void)say(ctx, s, "ERR unknown the registry did not answer");
    }
    return answered(ctx, s);
}

/* A room answered a JOIN: the client's own, or a rejoin after the rooms
 * restarted. Yes or no, the client's JOIN is answered and reading goes on. */
static int on_joined(gr_ctx *ctx, session *s, const gr_msg *m)
{
    chat_joined j;
    memcpy(&j, m->data, sizeof j);
    j.room[CHAT_ROOM_MAX] = '\0';
    my_room *r = find_room(s, j.room);
    if (r == NULL) { /* Parted, or given up on, meanwhile: undo the join. */
        chat_member p = {.session = gr_self(ctx)};
        snprintf(p.room, sizeof p.room, "%s", j.room);
        if (j.rc == GR_OK)
            (void)gr_tell(ctx, j.ref, CHAT_PART, &p, sizeof p);
        return GR_CONTINUE;
    }
    if (r->state == ROOM_JOINED)
        return GR_CONTINUE; /* An answer twice: a join asked again. */
    bool rejoin = r->restarted;
    if (j.rc == GR_OK && gr_monitor(ctx, j.ref, &r->mon) != GR_OK)
        j.rc = GR_ENOMEM;
    if (j.rc != GR_OK) {
        const char *why =
            j.rc == CHAT_ROOM_FULL ? "is full" : "cannot take you";
        if (rejoin)
            (void)say(ctx, s, "NOTICE room %s restarted and %s", r->name, why);
        else
            (void)say(ctx, s, "ERR full room %s %s", r->name, why);
        forget(ctx, s, r);
    } else {
        r->state = ROOM_JOINED;
        r->ref = j.ref;
        r->restarted = false;
        if (rejoin)
            (void)say(ctx, s, "NOTICE room %s restarted", r->name);
        else
            (void)say(ctx, s, "OK JOIN %s", r->name);
    }
    bool awaited =
        !rejoin && s->await == AWAIT_JOIN && strcmp(s->await_room, j.room) == 0;
    return awaited ? answered(ctx, s) : GR_CONTINUE;
}

/* The room answered a MSG: reading goes on. */
static int on_said(gr_ctx *ctx, session *s, const gr_msg *m)
{
    chat_said a;
    memcpy(&a, m->data, sizeof a);
    a.room[CHAT_ROOM_MAX] = '\0';
    if (s->await != AWAIT_MSG || a.tag != s->await_tag)
        return GR_CONTINUE; /* For a MSG given up on. */
    if (a.rc == GR_OK)
        (void)say(ctx, s, "OK MSG %s", a.room);
    else /* The room restarted meanwhile and has not seen our rejoin. */
        (void)say(ctx, s, "ERR nosuchroom %s is restarting, try again", a.room);
    return answered(ctx, s);
}

/* A room we joined is gone: its node died (or it did). Join it again; a
 * MSG it did not answer is lost with it. */
static int on_room_down(gr_ctx *ctx, session *s, const gr_down *d)
{
    for (int i = 0; i < s->nrooms; i++) {
        my_room *r = &s->rooms[i];
        if (r->state != ROOM_JOINED || r->mon != d->monitor)
            continue;
        r->state = ROOM_JOINING;
        r->restarted = true;
        ask_join(ctx, s, r);
        if (s->await != AWAIT_MSG || strcmp(s->await_room, r->name) != 0)
            return GR_CONTINUE;
        (void)say(ctx, s,
                  "ERR nosuchroom %s restarted: your message may be lost",
                  r->name);
        return answered(ctx, s);
    }
    return GR_CONTINUE;
}

/* An answer did not come in ANSWER_MS: the actor that owes it is stopped
 * or gone. The client is told and goes on; should the answer come after
 * all, it is dropped (a JOIN's is undone). */
static int give_up(gr_ctx *ctx, session *s, const gr_msg *m)
{
    chat_tag t;
    memcpy(&t, m->data, sizeof t);
    if (s->await == AWAIT_NONE || s->await == AWAIT_NICK ||
        t.tag != s->await_tag)
        return GR_CONTINUE; /* Answered in time. */
    my_room *r = find_room(s, s->await_room);
    if (s->await == AWAIT_JOIN && r != NULL && r->state == ROOM_JOINING)
        forget(ctx, s, r);
    if (!s->leaving)
        (void)say(ctx, s, "ERR unknown no answer, try again");
    return answered(ctx, s);
}

/* One message, whatever its kind. */
static int dispatch(gr_ctx *ctx, session *s, const gr_msg *m)
{
    if (m->type == GR_MSG_IO)
        return on_io(ctx, s, m);
    if ((m->flags & GR_MSG_REPLY) && m->corr == s->claim_corr &&
        s->claim_corr != 0)
        return on_claimed(ctx, s, m);
    gr_down d;
    if (gr_down_read(m, &d) == GR_OK)
        return on_room_down(ctx, s, &d);
    switch (m->type) {
    case CHAT_LINE:
        return say(ctx, s, "%.*s", (int)m->len, (const char *)m->data);
    case CHAT_PRIV_IN: {
        chat_text t;
        if (m->len != sizeof t)
            return GR_CONTINUE;
        memcpy(&t, m->data, sizeof t);
        t.text[CHAT_LINE_MAX] = '\0';
        t.from[CHAT_NICK_MAX] = '\0';
        return say(ctx, s, "PRIV %s %s", t.from, t.text);
    }
    case CHAT_JOINED:
        return m->len == sizeof(chat_joined) ? on_joined(ctx, s, m)
                                             : GR_CONTINUE;
    case CHAT_SAID:
        return m->len == sizeof(chat_said) ? on_said(ctx, s, m) : GR_CONTINUE;
    case CHAT_REPLY: {
        chat_tag t;
        if (m->len < sizeof t)
            return GR_CONTINUE;
        memcpy(&t, m->data, sizeof t);
        if (s->await != AWAIT_REPLY || t.tag != s->await_tag)
            return GR_CONTINUE; /* For a command given up on. */
        (void)say(ctx, s, "%.*s", (int)(m->len - sizeof t),
                  (const char *)m->data + sizeof t);
        return answered(ctx, s);
    }
    case CHAT_GIVE_UP:
        return m->len == sizeof(chat_tag) ? give_up(ctx, s, m) : GR_CONTINUE;
    case CHAT_REJOIN:
        s->rejoin_armed = false;
        for (int i = 0; i < s->nrooms; i++)
            if (s->rooms[i].state == ROOM_JOINING)
                ask_join(ctx, s, &s->rooms[i]);
        return GR_CONTINUE;
    }
    return GR_CONTINUE;
}

static int session_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    session *s = state;
    int rc = dispatch(ctx, s, m);
    return s->too_slow ? GR_STOP : rc;
}

static int session_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    session *s = state;
    if (len != sizeof s->limits)
        return GR_EINVAL;
    memcpy(&s->limits, arg, sizeof s->limits);
    s->tokens = 2.0 * s->limits.line_rate;
    s->refilled_ns = now_ns();
    return GR_OK;
}

/* Leaving: the rooms learn it from their monitors, the registry from its
 * own; at a server shutdown the client is told. */
static void session_terminate(gr_ctx *ctx, void *state, const gr_reason *why)
{
    session *s = state;
    if (why->code == GR_ESHUTDOWN && s->sock.id != 0 && !s->leaving &&
        !s->too_slow)
        (void)say(ctx, s, "NOTICE server shutting down");
}

const gr_behaviour chat_session = {
    .name = "session",
    .state_size = sizeof(session),
    .init = session_init,
    .handle = session_handle,
    .terminate = session_terminate,
};
