/*
 * jobq: a durable job queue. "jobq serve" runs the server; every other
 * command is the client for people (cli.c). README.md has the guide.
 *
 *   jobq serve [--db FILE] [--listen HOST:PORT] [--unix PATH]
 *              [--workers N] [--capacity N] [--output FILE]
 *              [--max-queued N] [--retry-base MS] [--limit QUEUE=N]...
 *
 * The flags can come from the environment instead (JOBQ_DB, JOBQ_LISTEN,
 * JOBQ_UNIX, JOBQ_WORKERS, JOBQ_CAPACITY, JOBQ_OUTPUT, JOBQ_MAX_QUEUED,
 * JOBQ_RETRY_BASE); flags win. GROVE_LOG=jobq.jsonl writes the restart,
 * dead-letter and job events. SIGINT or SIGTERM stops it; jobs running
 * then run again at the next start.
 */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"
#include "jobq.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const gr_node_root roots[] = {
    {.name = JQ_WORKER_ROOT, .behaviour = &jq_worker}};

/* Worker nodes' specs: they must outlive the supervisor. */
static const char *const worker_argv[] = {"jobq-worker", NULL};
static char worker_names[JQ_WORKERS_MAX][24];
static gr_node_spec worker_nodes[JQ_WORKERS_MAX];
static gr_child_spec worker_children[JQ_WORKERS_MAX];
static jq_worker_arg worker_arg;

/* Conns: one per client connection, never restarted. */
static const gr_child_spec conn_template[] = {{
    .behaviour = &jq_conn,
    .restart = GR_TEMPORARY,
}};
static const gr_sup_spec conns_spec = {
    .strategy = GR_SIMPLE_ONE_FOR_ONE,
    .children = conn_template,
    .nchildren = 1,
};

static int usage(void)
{
    fprintf(stderr,
            "usage: jobq serve [--db FILE] [--listen HOST:PORT] [--unix PATH]\n"
            "                  [--workers N] [--capacity N] [--output FILE]\n"
            "                  [--max-queued N] [--retry-base MS]\n"
            "                  [--limit QUEUE=N]...\n");
    cli_usage(true);
    return 2;
}

/* The value of flag in argv, else the environment's, else def. */
static const char *setting(int argc, char **argv, const char *flag,
                           const char *env, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return argv[i + 1];
    const char *v = env != NULL ? getenv(env) : NULL;
    return v != NULL && *v != '\0' ? v : def;
}

/* Reads a numeric setting in [min, max]; false (said why) if it is not. */
static bool number(int argc, char **argv, const char *flag, const char *env,
                   const char *def, long min, long max, long *out)
{
    const char *v = setting(argc, argv, flag, env, def);
    char *end;
    errno = 0;
    *out = strtol(v, &end, 10);
    if (errno == 0 && end != v && *end == '\0' && *out >= min && *out <= max)
        return true;
    fprintf(stderr,
            "jobq: %s (or %s) must be a number from %ld to %ld, not "
            "\"%s\"\n",
            flag, env, min, max, v);
    return false;
}

/* Reads the --limit QUEUE=N flags into a. */
static bool limits(int argc, char **argv, jq_store_arg *a)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--limit") != 0)
            continue;
        const char *v = argv[i + 1], *eq = strchr(v, '=');
        char *end;
        long n = eq != NULL ? strtol(eq + 1, &end, 10) : 0;
        if (eq == NULL || eq == v || eq - v > JQ_NAME_MAX || *end != '\0' ||
            n < 1 || n > 1000000 || a->nlimits == 16) {
            fprintf(stderr,
                    "jobq: --limit takes QUEUE=N (N from 1 to "
                    "1000000, at most 16 queues), not \"%s\"\n",
                    v);
            return false;
        }
        snprintf(a->limits[a->nlimits].queue, JQ_NAME_MAX + 1, "%.*s",
                 (int)(eq - v), v);
        a->limits[a->nlimits++].concurrency = (uint32_t)n;
    }
    return true;
}

static int serve(int argc, char **argv)
{
    static const char *const flags[] = {
        "--db",     "--listen",     "--unix",       "--workers", "--capacity",
        "--output", "--max-queued", "--retry-base", "--limit"};
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return usage() & 0;
        bool known = false;
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++)
            known = known || strcmp(argv[i], flags[f]) == 0;
        if (!known || i + 1 >= argc) {
            fprintf(stderr, "jobq: %s %s\n", argv[i],
                    known ? "needs a value" : "is not a flag of serve");
            return usage();
        }
    }
    static jq_store_arg store_arg;
    static jq_listen_arg tcp, unx;
    long workers, capacity, max_queued, retry_base;
    if (!number(argc, argv, "--workers", "JOBQ_WORKERS", "4", 1, JQ_WORKERS_MAX,
                &workers) ||
        !number(argc, argv, "--capacity", "JOBQ_CAPACITY", "64", 1, 1024,
                &capacity) ||
        !number(argc, argv, "--max-queued", "JOBQ_MAX_QUEUED", "100000", 1,
                100000000, &max_queued) ||
        !number(argc, argv, "--retry-base", "JOBQ_RETRY_BASE", "1000", 1,
                3600000, &retry_base) ||
        !limits(argc, argv, &store_arg))
        return usage();
    snprintf(store_arg.db, sizeof store_arg.db, "%s",
             setting(argc, argv, "--db", "JOBQ_DB", "jobq.db"));
    store_arg.max_queued = (uint32_t)max_queued;
    store_arg.retry_base_ms = (uint32_t)retry_base;
    snprintf(tcp.addr, sizeof tcp.addr, "%s",
             setting(argc, argv, "--listen", "JOBQ_LISTEN", "127.0.0.1:7878"));
    const char *unix_path = setting(argc, argv, "--unix", "JOBQ_UNIX", NULL);
    if (unix_path != NULL)
        snprintf(unx.addr, sizeof unx.addr, "unix:%s", unix_path);
    snprintf(worker_arg.output, sizeof worker_arg.output, "%s",
             setting(argc, argv, "--output", "JOBQ_OUTPUT", "jobq-output.txt"));
    worker_arg.capacity = (uint32_t)capacity;
    /* Every worker opens it; a path they cannot open is said here, once. */
    int fd = open(worker_arg.output, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                  0644);
    if (fd < 0) {
        fprintf(stderr, "jobq: cannot open the output file %s: %s\n",
                worker_arg.output, strerror(errno));
        return 1;
    }
    close(fd);

    for (long i = 0; i < workers; i++) {
        snprintf(worker_names[i], sizeof worker_names[i], "worker-%d",
                 (int)i + 1);
        worker_nodes[i] = (gr_node_spec){.name = worker_names[i],
                                         .root = JQ_WORKER_ROOT,
                                         .arg = &worker_arg,
                                         .arg_len = sizeof worker_arg,
                                         .argv = worker_argv};
        /* The stand-in takes the node's name here: the store finds it by
         * the name a worker reports, and monitors it. */
        worker_children[i] = (gr_child_spec){.id = worker_names[i],
                                             .name = worker_names[i],
                                             .behaviour = &gr_node_behaviour,
                                             .arg = &worker_nodes[i],
                                             .arg_len = sizeof worker_nodes[i],
                                             .restart = GR_PERMANENT,
                                             .shutdown_ms = 2000,
                                             .type = GR_NODE};
    }
    /* A worker process that dies (a crashing job, kill -9, a lease the
     * store cut short) comes back after a backoff; only a storm of them
     * makes the supervisor give up. */
    static gr_sup_spec workers_spec;
    workers_spec = (gr_sup_spec){.strategy = GR_ONE_FOR_ONE,
                                 .intensity = 200,
                                 .period_ms = 10000,
                                 .children = worker_children,
                                 .nchildren = (size_t)workers,
                                 .name = JQ_WORKERS,
                                 .backoff = {10, 1000, 20}};
    gr_child_spec children[] = {
        {.id = "store",
         .name = JQ_STORE,
         .behaviour = &jq_store,
         .arg = &store_arg,
         .arg_len = sizeof store_arg,
         .restart = GR_PERMANENT,
         .shutdown_ms = 10000,
         .blocking = 1},
        {.id = "workers",
         .behaviour = &gr_supervisor_behaviour,
         .arg = &workers_spec,
         .arg_len = sizeof workers_spec,
         .restart = GR_PERMANENT,
         .type = GR_SUPERVISOR},
        {.id = "conns",
         .name = JQ_CONNS,
         .behaviour = &gr_supervisor_behaviour,
         .arg = &conns_spec,
         .arg_len = sizeof conns_spec,
         .restart = GR_PERMANENT,
         .type = GR_SUPERVISOR},
        {.id = "listen-unix",
         .behaviour = &jq_listener,
         .arg = &unx,
         .arg_len = sizeof unx,
         .restart = GR_PERMANENT},
        {.id = "listen-tcp",
         .behaviour = &jq_listener,
         .arg = &tcp,
         .arg_len = sizeof tcp,
         .restart = GR_PERMANENT},
    };
    /* Without --unix, the TCP listener takes the Unix one's place. The
     * TCP one starts last, so once its "listening on" line is out, every
     * listener is. */
    if (unix_path == NULL)
        children[3] = children[4];
    /* rest_for_one: a new store starts new workers (they report to it),
     * and new conns (theirs asked the old one). */
    gr_sup_spec top = {.strategy = GR_REST_FOR_ONE,
                       .intensity = 5,
                       .period_ms = 30000,
                       .children = children,
                       .nchildren = unix_path != NULL ? 5 : 4,
                       .name = "top"};
    gr_system *sys;
    int rc = gr_system_start(NULL, &sys);
    if (rc != GR_OK) {
        fprintf(stderr, "jobq: cannot start: %s\n", gr_strerror(rc));
        return 1;
    }
    if ((rc = gr_supervisor_start(sys, &top, NULL)) != GR_OK) {
        fprintf(stderr, "jobq: cannot start the server: %s\n", gr_strerror(rc));
        gr_system_shutdown(sys);
        return 1;
    }
    printf("jobq: serving %s with %ld worker%s\n", store_arg.db, workers,
           workers == 1 ? "" : "s");
    fflush(stdout);
    return gr_system_run(sys) == GR_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    int code;
    if (gr_node_main(roots, 1, NULL, &code))
        return code; /* This process was a worker node. */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0)
        return argc < 2 ? usage() : (usage() & 0);
    if (strcmp(argv[1], "serve") == 0)
        return serve(argc - 1, argv + 1);
    return cli_main(argc, argv);
}
