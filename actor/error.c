#include <grove/common.h>

#include <stdio.h>
#include <stdlib.h>

#include "actor/assert.h"

const char *gr_strerror(int err)
{
    switch (err) {
#define GR__ERR_TEXT(name, value, text)                                        \
    case GR_##name:                                                            \
        return text;
        GR_ERRNO_MAP(GR__ERR_TEXT)
#undef GR__ERR_TEXT
    }
    return "unknown error";
}

const char *gr_errname(int err)
{
    switch (err) {
#define GR__ERR_NAME(name, value, text)                                        \
    case GR_##name:                                                            \
        return "GR_" #name;
        GR_ERRNO_MAP(GR__ERR_NAME)
#undef GR__ERR_NAME
    }
    return "GR_E?";
}

_Noreturn void gr__assert_fail(const char *cond, const char *file, int line)
{
    /* The one place that may print directly: the runtime is broken, so its
     * log facility cannot be trusted. */
    char buf[512];
    int n = snprintf(buf, sizeof buf, "grove: assertion failed: %s (%s:%d)\n",
                     cond, file, line);
    if (n > 0)
        fwrite(buf, 1, (size_t)n, stderr);
    abort();
}
