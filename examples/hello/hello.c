/*
 * hello: the smallest Grove program worth copying.
 *
 * It starts a system, spawns a "greeter" actor and three "friend" actors,
 * and lets messages flow: each friend sends the greeter a hello carrying its
 * name (packed with msgpack, Grove's payload convention, then sent and read
 * with the helpers of <grove/msgpack.h>); the greeter answers each one, and
 * each friend reports back to main() through an inbox. main() prints what
 * it hears, then shuts the system down.
 */
#include <grove/grove.h>
#include <grove/msgpack.h> /* Grove's msgpack helpers; includes <msgpack.h> */

#include <stdio.h>
#include <string.h>

/* Message types are the application's own numbers. */
enum {
    MSG_HELLO = 1, /* friend -> greeter: payload is the friend's name */
    MSG_WELCOME,   /* greeter -> friend: payload is the greeting text */
    MSG_REPORT,    /* friend -> main's inbox: payload is what it heard */
};

/* Packs one string as a msgpack payload and sends it from an actor. */
static int tell_string(gr_ctx *ctx, gr_ref to, uint32_t type, const char *s)
{
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_str_with_body(&pk, s, strlen(s));
    int rc = gr_tell_msgpack(ctx, to, type, &buf); /* copies the bytes */
    msgpack_sbuffer_destroy(&buf);
    return rc;
}

/*
 * Reads a msgpack string payload into out (always NUL-terminated). Returns
 * GR_OK, or GR_EPROTO when the payload is not one msgpack string.
 */
static int read_string(const gr_msg *m, char *out, size_t cap)
{
    msgpack_unpacked u;
    out[0] = '\0';
    int rc = gr_msg_unpack(m, &u); /* strings point into m's payload */
    if (rc != GR_OK)
        return rc;
    if (u.data.type == MSGPACK_OBJECT_STR) {
        size_t n =
            u.data.via.str.size < cap - 1 ? u.data.via.str.size : cap - 1;
        memcpy(out, u.data.via.str.ptr, n);
        out[n] = '\0';
    } else {
        rc = GR_EPROTO;
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* ---- the greeter: answers every hello -------------------------------- */

struct greeter {
    unsigned greeted;
};

static int greeter_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct greeter *g = state;
    if (m->type != MSG_HELLO)
        return GR_EUNHANDLED; /* crash: someone sent us nonsense */
    char name[64], text[128];
    int rc = read_string(m, name, sizeof name);
    if (rc != GR_OK)
        return rc; /* crash: the hello was not a msgpack string */
    snprintf(text, sizeof text, "welcome, %s! you are guest #%u", name,
             ++g->greeted);
    return tell_string(ctx, m->from, MSG_WELCOME, text);
}

/* The greeter registers its name in init so friends can find it. */
static int greeter_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return gr_register(ctx, "greeter");
}

static const gr_behaviour greeter = {
    .name = "greeter",
    .state_size = sizeof(struct greeter),
    .init = greeter_init,
    .handle = greeter_handle,
};

/* ---- a friend: says hello on start, reports the answer to main -------- */

struct friend_args {
    char name[32];
    gr_ref report_to; /* main's inbox */
};

struct friend
{
    struct friend_args args;
};

static int friend_init(gr_ctx *ctx, void *state, const void *arg, size_t len)
{
    struct friend *f = state;
    if (len != sizeof f->args)
        return GR_EINVAL;
    memcpy(&f->args, arg, len); /* arg is only lent to init: copy it */
    gr_ref greeter_ref;
    if (gr_whereis(gr_ctx_system(ctx), "greeter", &greeter_ref) != GR_OK)
        return GR_ENOTFOUND;
    return tell_string(ctx, greeter_ref, MSG_HELLO, f->args.name);
}

static int friend_handle(gr_ctx *ctx, void *state, const gr_msg *m)
{
    struct friend *f = state;
    if (m->type != MSG_WELCOME)
        return GR_EUNHANDLED;
    char heard[128], line[192];
    int rc = read_string(m, heard, sizeof heard);
    if (rc != GR_OK)
        return rc;
    snprintf(line, sizeof line, "%s heard: \"%s\"", f->args.name, heard);
    tell_string(ctx, f->args.report_to, MSG_REPORT, line);
    return GR_STOP; /* done: exit normally */
}

static const gr_behaviour friend_behaviour = {
    .name = "friend",
    .state_size = sizeof(struct friend),
    .init = friend_init,
    .handle = friend_handle,
};

int main(void)
{
    gr_system *sys;
    int rc = gr_system_start(NULL, &sys); /* one worker per CPU */
    if (rc != GR_OK) {
        fprintf(stderr, "start: %s\n", gr_strerror(rc));
        return 1;
    }

    /* main() is not an actor; an inbox lets it receive messages. */
    gr_inbox *inbox;
    gr_inbox_open(sys, &inbox);

    /* init runs before spawn returns, so the name is registered now. */
    gr_system_spawn(sys, &greeter, NULL, 0, NULL);

    static const char *const names[] = {"ada", "barbara", "grace"};
    for (size_t i = 0; i < 3; i++) {
        struct friend_args a = {.report_to = gr_inbox_ref(inbox)};
        snprintf(a.name, sizeof a.name, "%s", names[i]);
        rc = gr_system_spawn(sys, &friend_behaviour, &a, sizeof a, NULL);
        if (rc != GR_OK)
            fprintf(stderr, "spawn %s: %s\n", names[i], gr_strerror(rc));
    }

    for (int i = 0; i < 3; i++) {
        gr_msg *m;
        if (gr_inbox_recv(inbox, &m, 5000) != GR_OK) {
            fprintf(stderr, "no report within 5 s\n");
            break;
        }
        char line[192];
        if (read_string(m, line, sizeof line) == GR_OK)
            printf("%s\n", line);
        fflush(stdout);
        gr_msg_free(m); /* messages from an inbox are ours to free */
    }

    gr_stats st;
    gr_system_stats(sys, &st);
    printf("%llu actors spawned, %llu messages delivered, %u workers\n",
           (unsigned long long)st.spawned, (unsigned long long)st.delivered,
           st.workers);

    gr_inbox_close(inbox);
    return gr_system_shutdown(sys) == GR_OK ? 0 : 1;
}
