/*
 * The name registry: registered names to actor references, one per actor.
 * A mutex guards it; registration and lookup are not on the message path.
 */
#ifndef GROVE_ACTOR_NAMES_H
#define GROVE_ACTOR_NAMES_H

#include <pthread.h>
#include <stddef.h>

#include <grove/actor.h>

struct gr__name_entry;

/* The registry of one system. */
typedef struct gr__names {
    pthread_mutex_t lock;
    struct gr__name_entry **buckets;
    size_t nbuckets; /* A power of two. */
    size_t count;
} gr__names;

/* Initialises an empty registry. Returns GR_OK or GR_ENOMEM / GR_ESYS. */
int gr__names_init(gr__names *n);

/* Frees the registry and any names left in it. */
void gr__names_destroy(gr__names *n);

/*
 * The one rule for names and labels, wherever one enters (registered
 * names, node names, child ids, "name@node"): 1 to GR_NAME_MAX bytes of
 * well-formed UTF-8 without control characters, so that no name can forge
 * or break a log line. A label is checked with gr__label_check(); a name
 * (gr__name_check) also has no '@'. Each returns GR_OK, GR_EINVAL (NULL,
 * empty, a bad byte) or GR_ENAMETOOLONG.
 */
int gr__name_check(const char *name);
int gr__label_check(const char *label);

/* gr__label_check() of the len bytes at s (not NUL-terminated there). */
int gr__label_check_n(const char *s, size_t len);

/* Adds name -> ref. Returns GR_OK, GR_EEXIST or GR_ENOMEM. */
int gr__names_add(gr__names *n, const char *name, gr_ref ref);

/* Removes name if it still maps to ref. */
void gr__names_remove(gr__names *n, const char *name, gr_ref ref);

/* Looks name up. Returns GR_OK (storing *out) or GR_ENOTFOUND. */
int gr__names_find(gr__names *n, const char *name, gr_ref *out);

#endif
