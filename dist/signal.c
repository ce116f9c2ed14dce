/* Links, exit signals and monitor requests across distribution: the
 * runtime's internal messages to Erlang pids as distribution control
 * frames, and the link and exit control messages that arrive as the
 * runtime's signals (monitors that arrive: monitor.c). */
#include "dist/dist.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Distribution control message tags (Erlang's dist protocol). */
enum {
    CTL_LINK = 1,
    CTL_EXIT = 3,
    CTL_EXIT2 = 8,
    CTL_MONITOR_P = 19,
    CTL_DEMONITOR_P = 20,
    CTL_UNLINK_ID = 35,
};

/* ---- reasons ------------------------------------------------------------- */

/* Reasons that are atoms in Erlang, and their codes here. */
static const struct {
    int code;
    const char *atom;
} atoms[] = {
    {GR_OK, "normal"},       {GR_EKILLED, "killed"},
    {GR_EKILL, "kill"},      {GR_ESHUTDOWN, "shutdown"},
    {GR_ENOACTOR, "noproc"}, {GR_ENOCONNECTION, "noconnection"},
};

int gr__reason_to_term(const gr_reason *r, ei_x_buff *x)
{
    for (size_t i = 0; i < sizeof atoms / sizeof atoms[0]; i++)
        if (atoms[i].code == r->code && r->text[0] == '\0')
            return ei_x_encode_atom(x, atoms[i].atom) == 0 ? GR_OK : GR_ENOMEM;
    /* A shutdown with a text stays a clean exit: {shutdown, <<Text>>}. */
    if (r->code == GR_ESHUTDOWN)
        return ei_x_encode_tuple_header(x, 2) == 0 &&
                       ei_x_encode_atom(x, "shutdown") == 0 &&
                       ei_x_encode_binary(x, r->text, (long)strlen(r->text)) ==
                           0
                   ? GR_OK
                   : GR_ENOMEM;
    return ei_x_encode_tuple_header(x, 3) == 0 &&
                   ei_x_encode_atom(x, "grove") == 0 &&
                   ei_x_encode_atom(x, gr_errname(r->code)) == 0 &&
                   ei_x_encode_binary(x, r->text, (long)strlen(r->text)) == 0
               ? GR_OK
               : GR_ENOMEM;
}

/* The code whose name (gr_errname) is name; 0 when none has it. */
static int code_named(const char *name)
{
#define GR__ERR_MATCH(n, value, text)                                          \
    if (strcmp(name, "GR_" #n) == 0)                                           \
        return GR_##n;
    GR_ERRNO_MAP(GR__ERR_MATCH)
#undef GR__ERR_MATCH
    return 0;
}

/* Reads a binary that fits at buf[*at] into r's text; false (and *at
 * unmoved) when there is none. */
static bool read_text(const char *buf, int *at, gr_reason *r)
{
    int type, size, i = *at;
    long len;
    if (ei_get_type(buf, &i, &type, &size) != 0 || type != ERL_BINARY_EXT ||
        (size_t)size >= sizeof r->text ||
        ei_decode_binary(buf, &i, r->text, &len) != 0)
        return false;
    r->text[len] = '\0';
    *at = i;
    return true;
}

/* Prints the term at buf[*at] into r's text (cut to fit), moving past it. */
static void print_text(const char *buf, int *at, gr_reason *r)
{
    char *text = NULL;
    if (ei_s_print_term(&text, buf, at) >= 0 && text != NULL)
        snprintf(r->text, sizeof r->text, "%s", text);
    free(text);
}

/* Reads the atom at buf[*at] into a (MAXATOMLEN_UTF8 bytes). */
static bool read_atom(const char *buf, int *at, char *a)
{
    return ei_decode_atom_as(buf, at, a, MAXATOMLEN_UTF8, ERLANG_UTF8, NULL,
                             NULL) == 0;
}

gr_reason gr__reason_of_term(const char *buf, int *index)
{
    gr_reason r = gr_reason_of(GR_EFAILED);
    char a[MAXATOMLEN_UTF8];
    int at = *index, arity;
    if (read_atom(buf, &at, a))
        for (size_t i = 0; i < sizeof atoms / sizeof atoms[0]; i++)
            if (strcmp(a, atoms[i].atom) == 0) {
                *index = at;
                return gr_reason_of(atoms[i].code);
            }
    at = *index;
    if (ei_decode_tuple_header(buf, &at, &arity) == 0 &&
        (arity == 2 || arity == 3) && read_atom(buf, &at, a)) {
        /* {shutdown, Term}: a clean exit in OTP (a supervisor does not
         * log it), so GR_ESHUTDOWN, with Term as its text: a binary's
         * bytes (as gr__reason_to_term sends one), any other printed. */
        if (arity == 2 && strcmp(a, "shutdown") == 0) {
            r.code = GR_ESHUTDOWN;
            if (!read_text(buf, &at, &r))
                print_text(buf, &at, &r);
            *index = at;
            return r;
        }
        /* {grove, 'GR_E...', <<Text>>}: the reason gr__reason_to_term
         * makes of any other, back to its code and text. */
        if (arity == 3 && strcmp(a, "grove") == 0 && read_atom(buf, &at, a) &&
            (r.code = code_named(a)) != 0 && read_text(buf, &at, &r)) {
            *index = at;
            return r;
        }
    }
    /* Anything else: a failure, the term printed. */
    r = gr_reason_of(GR_EFAILED);
    print_text(buf, index, &r);
    return r;
}

/* ---- to Erlang ----------------------------------------------------------- */

bool gr__frame_start(ei_x_buff *x, int arity, long tag)
{
    static const char head[5] = {0, 0, 0, 0, 112};
    return ei_x_append_buf(x, head, sizeof head) == 0 &&
           ei_x_encode_version(x) == 0 &&
           ei_x_encode_tuple_header(x, arity) == 0 &&
           ei_x_encode_long(x, tag) == 0;
}

void gr__frame_end(ei_x_buff *x)
{
    uint32_t n = (uint32_t)x->index - 4;
    unsigned char *p = (unsigned char *)x->buff;
    p[0] = (unsigned char)(n >> 24);
    p[1] = (unsigned char)(n >> 16);
    p[2] = (unsigned char)(n >> 8);
    p[3] = (unsigned char)n;
}

int gr__signal_frame(gr__dist *d, const gr_msg *m, const erlang_pid *to,
                     ei_x_buff *x)
{
    erlang_pid from;
    if (gr_ref_is_none(m->from) || !gr__dist_pid_of_ref(d, m->from, &from))
        from = *ei_self(&d->ec);
    bool ok;
    switch (m->type) {
    case GR__MSG_LINK:
        ok = gr__frame_start(x, 3, CTL_LINK) &&
             ei_x_encode_pid(x, &from) == 0 && ei_x_encode_pid(x, to) == 0;
        break;
    case GR__MSG_MONITOR: /* {MONITOR_P, From, To, Ref} */
    case GR__MSG_DEMONITOR: {
        erlang_ref ref;
        gr__monitor_ref(d, m->corr, &ref);
        ok = gr__frame_start(x, 4,
                             m->type == GR__MSG_MONITOR ? CTL_MONITOR_P
                                                        : CTL_DEMONITOR_P) &&
             ei_x_encode_pid(x, &from) == 0 && ei_x_encode_pid(x, to) == 0 &&
             ei_x_encode_ref(x, &ref) == 0;
        break;
    }
    case GR__MSG_UNLINK: {
        /* The id only pairs the unlink with its acknowledgement. */
        static _Atomic(unsigned long) next_id;
        ok = gr__frame_start(x, 4, CTL_UNLINK_ID) &&
             ei_x_encode_ulong(x, ++next_id) == 0 &&
             ei_x_encode_pid(x, &from) == 0 && ei_x_encode_pid(x, to) == 0;
        break;
    }
    case GR__MSG_SIGNAL:
    case GR__MSG_STOP:
    case GR__MSG_KILL: {
        gr_exit_msg sig = {.reason = gr_reason_of(GR_ESHUTDOWN)};
        if (m->type == GR__MSG_KILL)
            sig.reason = gr_reason_of(GR_EKILL);
        if (m->type == GR__MSG_SIGNAL) {
            if (m->len != sizeof sig)
                return GR_ENOTSUP;
            memcpy(&sig, m->data, sizeof sig);
        }
        ok = gr__frame_start(x, 4, sig.linked ? CTL_EXIT : CTL_EXIT2) &&
             ei_x_encode_pid(x, &from) == 0 && ei_x_encode_pid(x, to) == 0 &&
             gr__reason_to_term(&sig.reason, x) == GR_OK;
        break;
    }
    default:
        return GR_ENOTSUP;
    }
    if (!ok)
        return GR_ENOMEM;
    gr__frame_end(x);
    return GR_OK;
}

void gr__signal_undeliverable(gr__dist *d, const gr_msg *m)
{
    gr_reason why = gr_reason_of(GR_ENOCONNECTION);
    if (m->type == GR__MSG_LINK) {
        gr_exit_msg sig = {.from = m->to, .reason = why, .linked = 1};
        (void)gr__deliver(d->sys, NULL, GR__MSG_SIGNAL, m->to, m->from, 0, &sig,
                          sizeof sig);
    } else if (m->type == GR__MSG_MONITOR) {
        gr_down down = {.monitor = m->corr, .target = m->to, .reason = why};
        (void)gr__deliver(d->sys, NULL, GR_MSG_DOWN, m->to, m->from, m->corr,
                          &down, sizeof down);
    }
}

/* ---- from Erlang --------------------------------------------------------- */

/* ei's message types for control messages it does not decode itself:
 * their tag less 10, the rest of the control tuple in the buffer. */
void gr__signal_arrived(gr__dist *d, const erlang_msg *msg, const ei_x_buff *x)
{
    gr_ref from = gr__dist_ref_of_pid(d, &msg->from);
    gr_ref to = gr__dist_local_ref(d, &msg->to);
    int index = 0;
    switch (msg->msgtype) {
    case ERL_LINK:
        (void)gr__deliver(d->sys, NULL, GR__MSG_LINK, from, to, 0, NULL, 0);
        return;
    case ERL_UNLINK: /* ei has acknowledged it already. */
        (void)gr__deliver(d->sys, NULL, GR__MSG_UNLINK, from, to, 0, NULL, 0);
        return;
    case ERL_EXIT:
    case ERL_EXIT2: {
        /* The reason: one term, checked before anything decodes it
         * (gr__term_end says why only when it finds none: a whole term
         * with more after it is malformed too). */
        const char *why = "bytes after the reason";
        gr_exit_msg sig = {.from = from,
                           .reason = gr_reason_of(GR_EFAILED),
                           .linked = msg->msgtype == ERL_EXIT};
        if (gr__term_end(x->buff, x->index, 0, &why) == x->index)
            sig.reason = gr__reason_of_term(x->buff, &index);
        else
            snprintf(sig.reason.text, sizeof sig.reason.text,
                     "malformed reason: %s", why);
        (void)gr__deliver(d->sys, NULL, GR__MSG_SIGNAL, from, to, 0, &sig,
                          sizeof sig);
        return;
    }
    default:
        return; /* Anything else ei passes on: nothing to do here. */
    }
}
