/* Random numbers from the kernel: secrets and incarnations. */
#include <errno.h>
#include <stdint.h>
#include <sys/random.h>

#include "actor/runtime.h"

int gr__random_bytes(void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t got = getrandom(b, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return GR_ESYS;
        }
        b += got;
        n -= (size_t)got;
    }
    return GR_OK;
}

int gr__new_incarnation(uint32_t *inc)
{
    *inc = 0;
    while (*inc == 0)
        if (gr__random_bytes(inc, sizeof *inc) != GR_OK)
            return GR_ESYS;
    return GR_OK;
}
