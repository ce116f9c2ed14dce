/* Erlang distribution where Grove was built without erl_interface
 * (Debian's erlang-dev): every entry point says it is not supported. */
#include <grove/dist.h>

#include "actor/runtime.h"

int gr__dist_start(gr_system *sys, const gr_dist_config *cfg, gr__dist **out)
{
    (void)cfg;
    *out = NULL;
    gr__log(gr__system_log(sys), GR_LOG_ERROR,
            "distribution: this Grove was built without erl_interface "
            "(install erlang-dev and rebuild)");
    return GR_ENOTSUP;
}

void gr__dist_stop(gr__dist *d)
{
    (void)d;
}

bool gr__dist_routes(gr__dist *d, uint32_t node)
{
    (void)d;
    (void)node;
    return false;
}

int gr__dist_send(gr__dist *d, const char *node, const char *name,
                  const gr_msg *m)
{
    (void)d;
    (void)node;
    (void)name;
    (void)m;
    return GR_ENOCONNECTION;
}

int gr__dist_whereis(gr__dist *d, const char *node, const char *name,
                     uint64_t deadline_ns, gr_ref *out)
{
    (void)d;
    (void)node;
    (void)name;
    (void)deadline_ns;
    (void)out;
    return GR_ENOTFOUND;
}

bool gr__dist_node_label(gr__dist *d, uint32_t node, char *buf, size_t size,
                         uint32_t *inc)
{
    (void)d;
    (void)node;
    (void)buf;
    (void)size;
    (void)inc;
    return false;
}

int gr_dist_node_name(gr_system *sys, char *buf, size_t size)
{
    (void)sys;
    (void)buf;
    (void)size;
    return GR_ENOTSUP;
}
