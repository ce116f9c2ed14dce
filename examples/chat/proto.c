/* What the chat server's files share: name rules, answering a JOIN and
 * answering a command. */
#include "chat.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool chat_nick_ok(const char *name, size_t len)
{
    if (len == 0 || len > CHAT_NICK_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(name[i]))
            return false;
    return true;
}

bool chat_room_ok(const char *name, size_t len)
{
    if (len < 2 || len > CHAT_ROOM_MAX || name[0] != '#')
        return false;
    for (size_t i = 1; i < len; i++)
        if (!name_char(name[i]))
            return false;
    return true;
}

int chat_tell_joined(gr_ctx *ctx, gr_ref session, const char *room, gr_ref ref,
                     int32_t rc)
{
    chat_joined j = {.ref = ref, .rc = rc};
    snprintf(j.room, sizeof j.room, "%s", room);
    (void)gr_tell(ctx, session, CHAT_JOINED, &j, sizeof j);
    return GR_CONTINUE;
}

uint32_t chat_tag_of(const gr_msg *m)
{
    chat_tag t = {0};
    if (m->len == sizeof t)
        memcpy(&t, m->data, sizeof t);
    return t.tag;
}

int chat_reply(gr_ctx *ctx, gr_ref session, uint32_t tag, const char *fmt, ...)
{
    char msg[sizeof(chat_tag) + CHAT_LINE_MAX + 64];
    char *line = msg + sizeof(chat_tag);
    size_t size = sizeof msg - sizeof(chat_tag);
    memcpy(msg, &tag, sizeof tag);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, size, fmt, ap);
    va_end(ap);
    if (n > 0)
        (void)gr_tell(ctx, session, CHAT_REPLY, msg,
                      sizeof(chat_tag) +
                          ((size_t)n < size ? (size_t)n : size - 1));
    return GR_CONTINUE;
}

bool chat_append_word(char *line, size_t size, size_t *len, const char *word)
{
    static const char more[] = " ...";
    size_t w = strlen(word);
    if (*len + 1 + w + sizeof more <= size) {
        *len += (size_t)snprintf(line + *len, size - *len, " %s", word);
        return true;
    }
    if (*len + sizeof more <= size)
        *len += (size_t)snprintf(line + *len, size - *len, "%s", more);
    return false;
}
