/* Child specs: checking them and keeping owned copies. */
#include <stdlib.h>
#include <string.h>

#include <grove/node.h>

#include "supervisor/sup.h"

/* Checks an id or name: 1..GR_NAME_MAX bytes. */

/* Sets *why and returns rc: for the refusals below. */
static int refuse(const char **why, const char *what, int rc)
{
    *why = what;
    return rc;
}

int gr__sup_spec_check(const gr_child_spec *c, bool tmpl, const char **why)
{
    if (c == NULL)
        return refuse(why, "the child spec is NULL", GR_EINVAL);
    if (c->behaviour == NULL || c->behaviour->handle == NULL)
        return refuse(why, "behaviour is NULL or has no handle", GR_EINVAL);
    if ((c->arg == NULL) != (c->arg_len == 0))
        return refuse(why, "arg and arg_len disagree", GR_EINVAL);
    if ((unsigned)c->restart > GR_TEMPORARY)
        return refuse(why, "restart is not a gr_restart", GR_EINVAL);
    if ((unsigned)c->type > GR_NODE)
        return refuse(why, "type is not a gr_child_type", GR_EINVAL);
    if (c->shutdown_ms < GR_SHUTDOWN_INFINITY)
        return refuse(why, "shutdown_ms is below GR_SHUTDOWN_INFINITY",
                      GR_EINVAL);
    /* A node child runs the node stand-in on a gr_node_spec. */
    if (c->type == GR_NODE && (c->behaviour != &gr_node_behaviour ||
                               c->arg_len != sizeof(gr_node_spec)))
        return refuse(why,
                      "a GR_NODE child needs gr_node_behaviour and a "
                      "gr_node_spec arg",
                      GR_EINVAL);
    int rc = tmpl && c->id == NULL ? GR_OK : gr__label_check(c->id);
    if (rc != GR_OK)
        return refuse(why,
                      rc == GR_EINVAL
                          ? "id is NULL, empty, or not printable UTF-8"
                          : "id is longer than GR_NAME_MAX",
                      rc);
    if (c->name != NULL && tmpl) /* Dynamic children share no name. */
        return refuse(why, "a simple-one-for-one template has no name",
                      GR_EINVAL);
    if (c->name != NULL && (rc = gr__name_check(c->name)) != GR_OK)
        return refuse(why,
                      rc == GR_EINVAL
                          ? "name is empty, has '@', or is not printable UTF-8"
                          : "name is longer than GR_NAME_MAX",
                      rc);
    return GR_OK;
}

/* Returns a malloc'd copy of s ("" for NULL), or NULL. */
static char *copy_str(const char *s)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c != NULL)
        memcpy(c, s, n);
    return c;
}

/* Copies arg into c->arg. Returns false on out of memory. */
static bool copy_arg(sup_child *c, const void *arg, size_t arg_len)
{
    c->arg_len = arg_len;
    if (arg_len == 0)
        return true;
    c->arg = malloc(arg_len);
    if (c->arg == NULL)
        return false;
    memcpy(c->arg, arg, arg_len);
    return true;
}

sup_child *gr__sup_child_new(const gr_child_spec *spec, const void *arg,
                             size_t arg_len)
{
    sup_child *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->b = spec->behaviour;
    c->restart = spec->restart;
    c->type = spec->type;
    c->blocking = spec->blocking != 0 && spec->type == GR_WORKER &&
                  spec->behaviour != &gr_node_behaviour;
    c->shutdown_ms = spec->shutdown_ms;
    if (c->shutdown_ms == GR_SHUTDOWN_DEFAULT)
        /* OTP's defaults: 5 s for a worker, infinity for a supervisor. */
        c->shutdown_ms =
            spec->type == GR_SUPERVISOR ? GR_SHUTDOWN_INFINITY : 5000;
    c->state = GR_CHILD_STOPPED;
    c->id = copy_str(spec->id);
    if (spec->name != NULL)
        c->name = copy_str(spec->name);
    if (c->id == NULL || (spec->name != NULL && c->name == NULL) ||
        !copy_arg(c, arg, arg_len)) {
        gr__sup_child_free(c);
        return NULL;
    }
    return c;
}

sup_child *gr__sup_child_new_dynamic(const sup_child *t, const void *arg,
                                     size_t arg_len)
{
    sup_child *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    *c = *t;
    c->prev = c->next = NULL;
    c->arg = NULL;
    c->dynamic = true;
    c->ref = GR_REF_NONE;
    c->state = GR_CHILD_STOPPED;
    if (!copy_arg(c, arg, arg_len)) {
        free(c);
        return NULL;
    }
    return c;
}

void gr__sup_child_free(sup_child *c)
{
    if (c == NULL)
        return;
    if (!c->dynamic) {
        free(c->id);
        free(c->name);
    }
    free(c->arg);
    free(c);
}

gr_child_spec gr__sup_req_spec(const sup_req *r)
{
    return (gr_child_spec){
        .id = r->has_id ? r->id : NULL,
        .behaviour = r->b,
        .arg = r->arg_len ? r->arg : NULL,
        .arg_len = r->arg_len,
        .restart = (gr_restart)r->restart,
        .shutdown_ms = r->shutdown_ms,
        .type = (gr_child_type)r->type,
        .name = r->has_name ? r->name : NULL,
        .blocking = (int)r->blocking,
    };
}

/* FNV-1a of a NUL-terminated id. */
static uint64_t id_hash(const char *id)
{
    uint64_t h = 14695981039346656037u;
    for (; *id != '\0'; id++)
        h = (h ^ (uint8_t)*id) * 1099511628211u;
    return h;
}

int gr__sup_ids_unique(const gr_child_spec *kids, size_t n)
{
    if (n < 2)
        return GR_OK;
    /* Open addressing at most half full: a power of two >= 2n. */
    size_t cap = 4;
    while (cap < 2 * n)
        cap *= 2;
    const char **slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return GR_ENOMEM;
    int rc = GR_OK;
    for (size_t i = 0; i < n && rc == GR_OK; i++) {
        size_t at = (size_t)id_hash(kids[i].id) & (cap - 1);
        while (slots[at] != NULL && rc == GR_OK) {
            if (strcmp(slots[at], kids[i].id) == 0)
                rc = GR_EINVAL;
            at = (at + 1) & (cap - 1);
        }
        slots[at] = kids[i].id;
    }
    free(slots);
    return rc;
}
