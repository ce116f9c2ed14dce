/*
 * The command-line client for people: one request per run, its answer
 * printed as lines of "key: value" (push prints the job's id alone, so
 * scripts can take it). The server is --server ADDR, or JOBQ_SERVER, or
 * 127.0.0.1:7878.
 */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"
#include "jobq_client.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_usage(bool continued)
{
    fprintf(stderr, "%s", continued ? "       " : "usage: ");
    fprintf(stderr,
            "jobq push TYPE [PAYLOAD] [--queue Q] [--priority 0-9]\n"
            "                 [--delay MS | --at UNIX_MS] [--attempts N]\n"
            "                 [--lease MS] [--key KEY]\n"
            "       jobq get|cancel|retry ID\n"
            "       jobq stats\n"
            "       jobq dead [--after ID] [--limit N]\n"
            "  every client command takes --server HOST:PORT|unix:/path\n"
            "  (or JOBQ_SERVER; default 127.0.0.1:7878)\n"
            "  job types: echo VALUE, sleep MS, flaky N, fail, crash, spin\n");
}

/* Flag values of one command line. */
typedef struct args {
    const char *pos[2]; /* Positional arguments after the command. */
    int npos;
    const char *server, *queue, *key;
    long long priority, delay, at, attempts, lease, after, limit;
    bool priority_set;
} args;

static bool num(const char *flag, const char *v, long long min, long long max,
                long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(v, &end, 10);
    if (errno == 0 && end != v && *end == '\0' && *out >= min && *out <= max)
        return true;
    fprintf(stderr, "jobq: %s must be a number from %lld to %lld, not \"%s\"\n",
            flag, min, max, v);
    return false;
}

static bool parse(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    a->server = getenv("JOBQ_SERVER");
    if (a->server == NULL || *a->server == '\0')
        a->server = "127.0.0.1:7878";
    a->limit = 100;
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        if (f[0] != '-' || f[1] == '\0' || (f[1] >= '0' && f[1] <= '9')) {
            if (a->npos == 2) {
                fprintf(stderr, "jobq: too many arguments at \"%s\"\n", f);
                return false;
            }
            a->pos[a->npos++] = f;
            continue;
        }
        static const char *const flags[] = {
            "--server", "--queue",    "--key",   "--priority", "--delay",
            "--at",     "--attempts", "--lease", "--after",    "--limit"};
        bool known = false;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
            known = known || strcmp(f, flags[k]) == 0;
        if (!known || i + 1 >= argc) {
            fprintf(stderr, "jobq: %s %s\n", f,
                    known ? "needs a value" : "is not a flag");
            return false;
        }
        const char *v = argv[++i];
        bool ok = true;
        if (strcmp(f, "--server") == 0)
            a->server = v;
        else if (strcmp(f, "--queue") == 0)
            a->queue = v;
        else if (strcmp(f, "--key") == 0)
            a->key = v;
        else if (strcmp(f, "--priority") == 0)
            ok = (a->priority_set = num(f, v, 0, 9, &a->priority));
        else if (strcmp(f, "--delay") == 0)
            ok = num(f, v, 0, 365LL * 86400000, &a->delay);
        else if (strcmp(f, "--at") == 0)
            ok = num(f, v, 0, INT64_MAX / 2, &a->at);
        else if (strcmp(f, "--attempts") == 0)
            ok = num(f, v, 1, 100, &a->attempts);
        else if (strcmp(f, "--lease") == 0)
            ok = num(f, v, 10, 86400000, &a->lease);
        else if (strcmp(f, "--after") == 0)
            ok = num(f, v, 0, INT64_MAX, &a->after);
        else
            ok = num(f, v, 1, 1000, &a->limit); /* --limit */
        if (!ok)
            return false;
    }
    if (a->at != 0 && a->delay != 0) {
        fprintf(stderr, "jobq: give --delay or --at, not both\n");
        return false;
    }
    return true;
}

/* Prints one msgpack value for people: strings bare, the rest as
 * msgpack-c prints them. */
static void print_value(const msgpack_object *v)
{
    if (v->type == MSGPACK_OBJECT_STR)
        printf("%.*s", (int)v->via.str.size, v->via.str.ptr);
    else
        msgpack_object_print(stdout, *v);
}

/* Prints a map as "key: value" lines, indented by depth; nested maps and
 * arrays of maps go one level deeper. */
static void print_map(const msgpack_object *m, int depth)
{
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        const msgpack_object *v = &m->via.map.ptr[i].val;
        if (depth == 0 && k->type == MSGPACK_OBJECT_STR &&
            ((k->via.str.size == 3 && memcmp(k->via.str.ptr, "rid", 3) == 0) ||
             (k->via.str.size == 2 && memcmp(k->via.str.ptr, "ok", 2) == 0)))
            continue;
        printf("%*s", depth * 2, "");
        print_value(k);
        if (v->type == MSGPACK_OBJECT_MAP) {
            printf(":\n");
            print_map(v, depth + 1);
        } else if (v->type == MSGPACK_OBJECT_ARRAY) {
            printf(": %u\n", v->via.array.size);
            for (uint32_t j = 0; j < v->via.array.size; j++) {
                const msgpack_object *e = &v->via.array.ptr[j];
                if (e->type == MSGPACK_OBJECT_MAP) {
                    printf("%*s-\n", depth * 2 + 2, "");
                    print_map(e, depth + 2);
                } else {
                    printf("%*s- ", depth * 2 + 2, "");
                    print_value(e);
                    printf("\n");
                }
            }
        } else {
            printf(": ");
            print_value(v);
            printf("\n");
        }
    }
}

static void fill_job(msgpack_packer *pk, void *arg)
{
    jq_kv_uint(pk, "job", *(const uint64_t *)arg);
}

static void fill_dead(msgpack_packer *pk, void *arg)
{
    const args *a = arg;
    jq_kv_uint(pk, "after", (uint64_t)a->after);
    jq_kv_uint(pk, "limit", (uint64_t)a->limit);
}

static int push(jobq_client *c, const args *a)
{
    /* The payload: a whole number goes as an integer, anything else as
     * a string; none is nil. */
    msgpack_sbuffer b;
    msgpack_packer pk;
    msgpack_sbuffer_init(&b);
    msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
    if (a->npos > 1) {
        char *end;
        errno = 0;
        long long n = strtoll(a->pos[1], &end, 10);
        if (errno == 0 && end != a->pos[1] && *end == '\0')
            msgpack_pack_long_long(&pk, n);
        else
            jq_pack_str(&pk, a->pos[1]);
    }
    jobq_push_opts o = {.queue = a->queue,
                        .priority = (int)a->priority,
                        .priority_set = a->priority_set,
                        .run_at_ms = a->at,
                        .delay_ms = a->delay,
                        .max_attempts = (uint32_t)a->attempts,
                        .lease_ms = (uint32_t)a->lease,
                        .key = a->key};
    uint64_t id;
    bool dup;
    int rc = jobq_push(c, a->pos[0], b.data, b.size, &o, &id, &dup);
    msgpack_sbuffer_destroy(&b);
    if (rc == JOBQ_OK)
        printf("%" PRIu64 "%s\n", id,
               dup ? " (duplicate: already pushed)" : "");
    return rc;
}

int cli_main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int min, max; /* Positional arguments. */
    } cmds[] = {{"push", 1, 2},  {"get", 1, 1},   {"cancel", 1, 1},
                {"retry", 1, 1}, {"stats", 0, 0}, {"dead", 0, 0}};
    const char *cmd = argv[1];
    int which = -1;
    for (int i = 0; i < 6; i++)
        if (strcmp(cmd, cmds[i].name) == 0)
            which = i;
    args a;
    if (which < 0) {
        fprintf(stderr, "jobq: no command \"%s\"\n", cmd);
        fprintf(stderr, "usage: jobq serve ... (jobq serve --help)\n");
        cli_usage(true);
        return 2;
    }
    if (!parse(argc, argv, &a) || a.npos < cmds[which].min ||
        a.npos > cmds[which].max) {
        if (a.npos < cmds[which].min || a.npos > cmds[which].max)
            fprintf(stderr, "jobq: %s takes %s\n", cmd,
                    which == 0   ? "TYPE [PAYLOAD]"
                    : which <= 3 ? "a job ID"
                                 : "no arguments");
        cli_usage(false);
        return 2;
    }
    uint64_t id = 0;
    if (which >= 1 && which <= 3) {
        long long v;
        if (!num("ID", a.pos[0], 1, INT64_MAX, &v))
            return 2;
        id = (uint64_t)v;
    }
    jobq_client *c;
    int rc = jobq_connect(a.server, 10000, &c);
    if (rc != JOBQ_OK) {
        fprintf(stderr, "jobq: cannot reach the server: %s\n",
                jobq_connect_error());
        return rc == JOBQ_EINVAL ? 2 : 1; /* A malformed address: usage. */
    }
    if (which == 0) {
        rc = push(c, &a);
    } else {
        msgpack_unpacked r;
        rc = jobq_request(c, cmd, which == 4 ? 0 : (which == 5 ? 2 : 1),
                          which == 4 ? NULL
                                     : (which == 5 ? fill_dead : fill_job),
                          which == 5 ? (void *)&a : (void *)&id, &r);
        if (rc == JOBQ_OK) {
            print_map(&r.data, 0);
            msgpack_unpacked_destroy(&r);
        }
    }
    if (rc != JOBQ_OK)
        fprintf(stderr, "jobq: %s (server %s)\n", jobq_error(c), a.server);
    jobq_close(c);
    return rc == JOBQ_OK ? 0 : 1;
}
