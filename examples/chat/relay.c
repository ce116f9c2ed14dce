/*
 * The relay: the root process's end of every room's broadcasts. A room
 * sends each line once, with the sessions it is for, and the relay hands
 * it to each of them here, so a line for a hundred members crosses the
 * node link once instead of a hundred times. Its child spec registers it
 * as CHAT_RELAY.
 */
#include "chat.h"

#include <string.h>

static int relay_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    (void)state;
    chat_fanout f;
    if (m->type != CHAT_FANOUT || m->len < sizeof f)
        return GR_CONTINUE;
    memcpy(&f, m->data, sizeof f);
    size_t refs = sizeof f + (size_t)f.n * sizeof(gr_ref);
    if (f.n > CHAT_MEMBERS_MAX || m->len < refs ||
        m->len - refs > CHAT_LINE_MAX + 64)
        return GR_CONTINUE; /* Not from a room of ours. */
    const char *line = (const char *)m->data + refs;
    for (uint32_t i = 0; i < f.n; i++) {
        gr_ref to;
        memcpy(&to, (const char *)m->data + sizeof f + i * sizeof to,
               sizeof to);
        (void)gr_tell(ctx, to, CHAT_LINE, line, m->len - refs);
    }
    return GR_CONTINUE;
}

const gr_behaviour chat_relay = {
    .name = "relay",
    .handle = relay_handle,
};
