#include "actor/message.h"

#include <stdlib.h>
#include <string.h>

gr__env *gr__env_new(uint32_t type, gr_ref from, gr_ref to, uint64_t corr,
                     const void *data, size_t len)
{
    gr__env *e = malloc(sizeof *e + len);
    if (e == NULL)
        return NULL;
    e->msg.type = type;
    e->msg.flags = 0;
    e->msg.from = from;
    e->msg.to = to;
    e->msg.corr = corr;
    e->msg.len = len;
    if (len > 0) {
        memcpy(e->payload, data, len);
        e->msg.data = e->payload;
    } else {
        e->msg.data = NULL;
    }
    return e;
}

void gr__env_free(gr__env *e)
{
    free(e);
}
