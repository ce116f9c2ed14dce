/* A gr_ref as a GR_EXT_PID ext's 16 bytes (include/grove/dist.h); built
 * with or without erl_interface. */
#include <grove/dist.h>

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

void gr_dist_ref_write(gr_ref ref, unsigned char out[16])
{
    put_be(out, ref.serial, 8);
    put_be(out + 8, ref.node, 4);
    put_be(out + 12, ref.incarnation, 4);
}

int gr_dist_ref_read(const void *data, size_t len, gr_ref *out)
{
    if (data == NULL || len != 16 || out == NULL)
        return GR_EINVAL;
    const unsigned char *p = data;
    *out = (gr_ref){.serial = get_be(p, 8),
                    .node = (uint32_t)get_be(p + 8, 4),
                    .incarnation = (uint32_t)get_be(p + 12, 4)};
    return GR_OK;
}
