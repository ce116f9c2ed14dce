/* Exit reasons: formatting for people. */
#include <stdio.h>

#include <grove/actor.h>

char *gr_reason_format(const gr_reason *r, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return buf;
    int n;
    switch (r->code) {
    case GR_OK:
        n = snprintf(buf, size, "normal");
        break;
    case GR_ESHUTDOWN:
        n = r->detail != 0 ? snprintf(buf, size, "shutdown (detail %lld)",
                                      (long long)r->detail)
                           : snprintf(buf, size, "shutdown");
        break;
    case GR_EKILLED:
        n = snprintf(buf, size, "killed");
        break;
    case GR_ENOACTOR:
        n = snprintf(buf, size, "noproc");
        break;
    case GR_ENOCONNECTION:
        n = snprintf(buf, size, "noconnection");
        break;
    default:
        n = snprintf(buf, size, "%s (%s)", gr_errname(r->code),
                     gr_strerror(r->code));
        if (n >= 0 && (size_t)n < size && (r->flags & GR_REASON_IN_HANDLER))
            n += snprintf(buf + n, size - (size_t)n,
                          " while handling type 0x%x", r->msg_type);
        break;
    }
    /* The text, bounded even if a sender left it unterminated. */
    if (n >= 0 && (size_t)n < size && r->text[0] != '\0')
        snprintf(buf + n, size - (size_t)n, ": %.*s", GR_REASON_TEXT_MAX,
                 r->text);
    return buf;
}
