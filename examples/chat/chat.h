/*
 * The chat server's pieces and the messages between them. Every process
 * of the server runs this one program, so the messages are plain C
 * structs (fixed sizes, NUL-terminated strings).
 *
 *   root process                          rooms node (its own process)
 *   top (one_for_one)                     "rooms": the room manager
 *   |-- registry   nick -> session        `-- one room actor per room
 *   |-- relay      a room's news -> its members here
 *   |-- rooms      node child  ------->
 *   |-- sessions   simple_one_for_one: one session per connection
 *   `-- listener   accepts, hands each connection to a new session
 *
 * A session owns its socket, speaks the line protocol (README.md), and
 * keeps its nick in the registry and its rooms in the rooms node. It
 * monitors the rooms it joined: when the rooms node dies and comes back,
 * it joins them again and tells its user so. A room sends each line for
 * its members across the node link once, to the relay, which hands it to
 * every member's session (as Phoenix PubSub broadcasts once per node). A
 * session reads a client's next line only once its last command is
 * answered, so a client that posts faster than its room delivers is
 * slowed by TCP, and nothing queues without bound in between.
 */
#ifndef CHAT_H
#define CHAT_H

#include <grove/grove.h>

#include <stdbool.h>
#include <stdint.h>

/* Protocol limits. */
#define CHAT_LINE_MAX          512 /* Bytes in a line, without its ending. */
#define CHAT_NICK_MAX          16
#define CHAT_ROOM_MAX          32 /* Bytes in a room name, '#' included. */
#define CHAT_ROOMS_PER_SESSION 16
#define CHAT_MEMBERS_MAX       4096 /* Members in one room. */

/* Registered names. */
#define CHAT_REGISTRY   "registry"
#define CHAT_SESSIONS   "sessions"
#define CHAT_ROOMS_NODE "rooms"
#define CHAT_ROOMS_NAME "rooms"       /* The manager, on the rooms node. */
#define CHAT_ROOMS_AT   "rooms@rooms" /* How the root process reaches it. */
#define CHAT_RELAY      "relay"
#define CHAT_RELAY_AT   "relay@root" /* How the rooms node reaches it. */

/* Message types between the server's actors. */
enum {
    /* session -> registry */
    CHAT_CLAIM = 1, /* ask: chat_nick; answered CHAT_ANSWER (rc) */
    CHAT_RELEASE,   /* chat_nick */
    CHAT_PRIV,      /* chat_text (to, from, text, tag): passed to `to` */
    /* registry -> session */
    CHAT_PRIV_IN, /* chat_text: a private message for this session */
    CHAT_LINE,    /* the line's bytes (no LF): send to the client as is */
    CHAT_REPLY,   /* chat_tag, then a line: the answer to a command */
    /* session -> rooms manager -> room */
    CHAT_JOIN,        /* chat_member */
    CHAT_LIST,        /* chat_tag; answered with a CHAT_REPLY */
    CHAT_CRASH_ROOMS, /* the manager crashes (a test's CHAT_DEBUG command) */
    /* session -> room */
    CHAT_PART, /* chat_member */
    CHAT_SAY,  /* chat_text (to: the room, tag) */
    CHAT_WHO,  /* chat_tag; answered with a CHAT_REPLY */
    CHAT_QUIT, /* chat_text (from, text: the reason) */
    /* room -> session */
    CHAT_JOINED, /* chat_joined */
    CHAT_SAID,   /* chat_said: the answer to a CHAT_SAY */
    /* room -> relay */
    CHAT_FANOUT, /* chat_fanout, then the line's bytes: to every session */
    /* any answer to an ask */
    CHAT_ANSWER, /* chat_answer */
    /* a session's own messages */
    CHAT_REJOIN,  /* timer: try to join the rooms lost with their node */
    CHAT_GIVE_UP, /* timer (chat_tag): a command's answer never came */
};

/* Which command an answer is for: the session numbers its commands, and
 * drops an answer for one it has given up on. */
typedef struct chat_tag {
    uint32_t tag;
} chat_tag;

typedef struct chat_nick {
    char nick[CHAT_NICK_MAX + 1];
} chat_nick;

typedef struct chat_member {
    char room[CHAT_ROOM_MAX + 1];
    char nick[CHAT_NICK_MAX + 1];
    gr_ref session;
} chat_member;

typedef struct chat_text {
    char to[CHAT_ROOM_MAX + 1]; /* A nick or a room. */
    char from[CHAT_NICK_MAX + 1];
    char text[CHAT_LINE_MAX + 1];
    uint32_t tag; /* SAY and PRIV: the command's. */
} chat_text;

typedef struct chat_joined {
    char room[CHAT_ROOM_MAX + 1];
    gr_ref ref; /* The room actor. */
    int32_t rc; /* GR_OK, CHAT_ROOM_FULL, or GR_ENOMEM (no room for it). */
} chat_joined;

/* chat_joined.rc of a room that has CHAT_MEMBERS_MAX members. */
#define CHAT_ROOM_FULL 1

typedef struct chat_said {
    char room[CHAT_ROOM_MAX + 1];
    int32_t rc; /* GR_OK, or GR_ENOTFOUND: not a member. */
    uint32_t tag;
} chat_said;

/* A line for many sessions: this header, n refs, then the line. */
typedef struct chat_fanout {
    uint32_t n;
    gr_ref sessions[];
} chat_fanout;

typedef struct chat_answer {
    int32_t rc;
} chat_answer;

/* A session's settings (its init arg, from the listener). */
typedef struct chat_session_arg {
    uint32_t send_limit; /* Bytes a client may leave unread. */
    uint32_t line_rate;  /* Lines a second (twice that in a burst). */
} chat_session_arg;

/* Bytes a socket's buffer holds beyond send_limit: room for the last
 * line a client too slow to read is sent. */
#define CHAT_SEND_RESERVE 128

/* The listener's settings (its init arg). */
typedef struct chat_listen_arg {
    char addr[128];
    uint32_t max_clients;
    chat_session_arg session;
} chat_listen_arg;

/* Behaviours, one per file. */
extern const gr_behaviour chat_session;  /* session.c */
extern const gr_behaviour chat_registry; /* registry.c */
extern const gr_behaviour chat_rooms;    /* rooms.c: the manager */
extern const gr_behaviour chat_listener; /* listener.c */
extern const gr_behaviour chat_relay;    /* relay.c */

/* Whether name is a valid nick: [A-Za-z0-9_-]{1,16}. */
bool chat_nick_ok(const char *name, size_t len);

/* Whether name is a valid room: '#' then [A-Za-z0-9_-]{1,31}. */
bool chat_room_ok(const char *name, size_t len);

/* Answers a JOIN of session: room's actor ref (GR_REF_NONE when rc is
 * not GR_OK) and rc, as a CHAT_JOINED. Returns GR_CONTINUE. */
int chat_tell_joined(gr_ctx *ctx, gr_ref session, const char *room, gr_ref ref,
                     int32_t rc);

/* Appends " word" to the line of *len bytes in line (size bytes, NUL
 * included) while there is room for it and a last " ..."; when there is
 * not, appends " ..." and returns false: WHO and LIST name what fits in
 * one line. */
bool chat_append_word(char *line, size_t size, size_t *len, const char *word);

/* The tag of a request whose payload is a chat_tag (WHO, LIST); 0 for
 * another. */
uint32_t chat_tag_of(const gr_msg *m);

/* Answers the command tag of session: formats the line and sends it as
 * a CHAT_REPLY. Returns GR_CONTINUE. */
int chat_reply(gr_ctx *ctx, gr_ref session, uint32_t tag, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
