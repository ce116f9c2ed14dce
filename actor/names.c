#include "actor/names.h"
#include "actor/remote.h"

#include <stdlib.h>
#include <string.h>

#include "actor/actor.h"
#include "actor/relations.h"
#include "actor/system.h"

typedef struct gr__name_entry {
    struct gr__name_entry *next;
    gr_ref ref;
    char name[]; /* NUL-terminated copy. */
} gr__name_entry;

#define INITIAL_BUCKETS 64

/* FNV-1a: short keys, no adversary on this table's inputs' distribution. */
static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

int gr__names_init(gr__names *n)
{
    n->buckets = calloc(INITIAL_BUCKETS, sizeof *n->buckets);
    if (n->buckets == NULL)
        return GR_ENOMEM;
    if (pthread_mutex_init(&n->lock, NULL) != 0) {
        free(n->buckets);
        return GR_ESYS;
    }
    n->nbuckets = INITIAL_BUCKETS;
    n->count = 0;
    return GR_OK;
}

void gr__names_destroy(gr__names *n)
{
    for (size_t i = 0; i < n->nbuckets; i++) {
        gr__name_entry *e = n->buckets[i];
        while (e != NULL) {
            gr__name_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(n->buckets);
    pthread_mutex_destroy(&n->lock);
}

/* Whether s[0..len) is well-formed UTF-8 without control characters
 * (C0, DEL, C1): what a log line, text or JSON, can carry as it is. */
static bool printable_utf8(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7F)
                return false;
            i++;
            continue;
        }
        size_t n = c >= 0xC2 && c <= 0xDF   ? 1
                   : c >= 0xE0 && c <= 0xEF ? 2
                   : c >= 0xF0 && c <= 0xF4 ? 3
                                            : 0; /* Stray or overlong lead. */
        if (n == 0 || len - i <= n)
            return false;
        uint32_t cp = c & (0x3Fu >> n);
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        /* Overlong forms, surrogates, beyond U+10FFFF, C1 controls. */
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF ||
            (cp >= 0x80 && cp <= 0x9F))
            return false;
        i += n + 1;
    }
    return true;
}

int gr__label_check_n(const char *s, size_t len)
{
    if (s == NULL || len == 0)
        return GR_EINVAL;
    if (len > GR_NAME_MAX)
        return GR_ENAMETOOLONG;
    return printable_utf8((const unsigned char *)s, len) ? GR_OK : GR_EINVAL;
}

int gr__label_check(const char *s)
{
    return gr__label_check_n(s, s != NULL ? strnlen(s, GR_NAME_MAX + 1) : 0);
}

/* A label that is also free of '@', which separates a name from its node in
 * "name@node". */
static int name_check_n(const char *name, size_t len)
{
    int rc = gr__label_check_n(name, len);
    if (rc == GR_OK && memchr(name, '@', len) != NULL)
        rc = GR_EINVAL;
    return rc;
}

/* An Erlang node's name may be this long (its limit); a Grove node's is
 * a name, at most GR_NAME_MAX bytes. */
#define ERLANG_NODE_MAX 255

/* A node's name: a name, or an Erlang node's "alive@host" (two non-empty
 * parts, one '@', at most ERLANG_NODE_MAX bytes). */
static int node_check(const char *node)
{
    size_t len = strnlen(node, ERLANG_NODE_MAX + 1);
    const char *at = memchr(node, '@', len);
    if (at == NULL)
        return name_check_n(node, strnlen(node, GR_NAME_MAX + 1));
    if (len > ERLANG_NODE_MAX)
        return GR_ENAMETOOLONG;
    if (at == node || at + 1 == node + len ||
        memchr(at + 1, '@', len - (size_t)(at + 1 - node)) != NULL ||
        !printable_utf8((const unsigned char *)node, len))
        return GR_EINVAL;
    return GR_OK;
}

int gr__name_check(const char *name)
{
    return name_check_n(name,
                        name != NULL ? strnlen(name, GR_NAME_MAX + 1) : 0);
}

/* Doubles the bucket array; lock held. On OOM keeps the old one. */
static void grow(gr__names *n)
{
    size_t nb = n->nbuckets * 2;
    gr__name_entry **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < n->nbuckets; i++) {
        gr__name_entry *e = n->buckets[i];
        while (e != NULL) {
            gr__name_entry *next = e->next;
            size_t k = hash(e->name) & (nb - 1);
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(n->buckets);
    n->buckets = b;
    n->nbuckets = nb;
}

/* Returns the link that points at name's entry (or at NULL); lock held. */
static gr__name_entry **find_link(gr__names *n, const char *name)
{
    gr__name_entry **link = &n->buckets[hash(name) & (n->nbuckets - 1)];
    while (*link != NULL && strcmp((*link)->name, name) != 0)
        link = &(*link)->next;
    return link;
}

int gr__names_add(gr__names *n, const char *name, gr_ref ref)
{
    size_t len = strlen(name);
    gr__name_entry *e = malloc(sizeof *e + len + 1);
    if (e == NULL)
        return GR_ENOMEM;
    memcpy(e->name, name, len + 1);
    e->ref = ref;
    pthread_mutex_lock(&n->lock);
    gr__name_entry **link = find_link(n, name);
    if (*link != NULL) {
        pthread_mutex_unlock(&n->lock);
        free(e);
        return GR_EEXIST;
    }
    e->next = NULL;
    *link = e;
    if (++n->count > n->nbuckets)
        grow(n);
    pthread_mutex_unlock(&n->lock);
    return GR_OK;
}

void gr__names_remove(gr__names *n, const char *name, gr_ref ref)
{
    pthread_mutex_lock(&n->lock);
    gr__name_entry **link = find_link(n, name);
    gr__name_entry *e = *link;
    if (e != NULL && gr_ref_eq(e->ref, ref)) {
        *link = e->next;
        n->count--;
    } else {
        e = NULL;
    }
    pthread_mutex_unlock(&n->lock);
    free(e);
}

int gr__names_find(gr__names *n, const char *name, gr_ref *out)
{
    if (name == NULL)
        return GR_ENOTFOUND;
    pthread_mutex_lock(&n->lock);
    gr__name_entry *e = *find_link(n, name);
    if (e != NULL)
        *out = e->ref;
    pthread_mutex_unlock(&n->lock);
    return e != NULL ? GR_OK : GR_ENOTFOUND;
}

int gr_register(gr_ctx *ctx, const char *name)
{
    if (ctx == NULL)
        return GR_EINVAL;
    int rc = gr__name_check(name);
    if (rc != GR_OK)
        return rc;
    gr__relations *rel = gr__relations_of(ctx->self);
    if (rel == NULL)
        return GR_ENOMEM;
    if (rel->name != NULL)
        return GR_EEXIST;
    gr__actor *a = ctx->self;
    size_t len = strlen(name);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return GR_ENOMEM;
    memcpy(copy, name, len + 1);
    rc = gr__names_add(&a->sys->names, name, gr__actor_ref(a));
    if (rc != GR_OK) {
        free(copy);
        return rc;
    }
    rel->name = copy;
    return GR_OK;
}

int gr_whereis(gr_system *sys, const char *name, gr_ref *out)
{
    if (sys == NULL || out == NULL)
        return GR_EINVAL;
    int rc = gr__name_check(name);
    return rc != GR_OK ? rc : gr__names_find(&sys->names, name, out);
}

int gr__split_name(const char *name, char *local, const char **node)
{
    if (name == NULL)
        return GR_EINVAL;
    const char *at = strchr(name, '@');
    size_t len = at != NULL ? (size_t)(at - name) : strlen(name);
    int rc = name_check_n(name, len);
    if (rc == GR_OK && at != NULL)
        rc = node_check(at + 1);
    if (rc != GR_OK)
        return rc;
    memcpy(local, name, len);
    local[len] = '\0';
    *node = at != NULL ? at + 1 : NULL;
    return GR_OK;
}
