/*
 * A small JSON reader for the tests that check Grove's JSON output (the
 * event log's lines, gr_event_format_json): exactly one flat object of
 * string keys and scalar values (string, number, true, false, null),
 * nothing after it. String values are unescaped (\uXXXX beyond ASCII reads
 * as '?'); numbers and literals are kept as written.
 */
#ifndef GROVE_TEST_JSON_READER_H
#define GROVE_TEST_JSON_READER_H

#include <stdio.h>
#include <string.h>

/* Most pairs one object may hold; more is a failed parse. */
#define JKEYS 16

/* One flat JSON object: its keys in order, their values, and whether each
 * value was a string. */
struct jobj {
    int n;
    char key[JKEYS][32];
    char val[JKEYS][256];
    int is_str[JKEYS];
};

static inline void j_ws(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

/* The value of hex digit h, or -1. */
static inline int j_hex(char h)
{
    return h >= '0' && h <= '9'   ? h - '0'
           : h >= 'a' && h <= 'f' ? h - 'a' + 10
           : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                  : -1;
}

/* Reads a string at *p into out (size bytes, truncating); 0 if malformed. */
static inline int j_string(const char **p, char *out, size_t size)
{
    static const char esc[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
    size_t n = 0;
    if (**p != '"')
        return 0;
    (*p)++;
    for (;;) {
        unsigned char ch = (unsigned char)**p;
        if (ch == '\0' || ch < 0x20)
            return 0;
        (*p)++;
        if (ch == '"')
            break;
        if (ch == '\\') {
            char e = **p;
            (*p)++;
            const char *hit = e != '\0' ? strchr(esc, e) : NULL;
            if (e == 'u') {
                unsigned v = 0;
                for (int i = 0; i < 4; i++, (*p)++) {
                    int d = j_hex(**p);
                    if (d < 0)
                        return 0;
                    v = v * 16 + (unsigned)d;
                }
                ch = v < 0x80 ? (unsigned char)v : '?';
            } else if (hit != NULL && (hit - esc) % 2 == 0) {
                ch = (unsigned char)hit[1];
            } else {
                return 0;
            }
        }
        if (n + 1 < size)
            out[n++] = (char)ch;
    }
    if (size > 0)
        out[n] = '\0';
    return 1;
}

/* Skips decimal digits at *p; 0 if there were none. */
static inline int j_digits(const char **p)
{
    const char *s = *p;
    while (**p >= '0' && **p <= '9')
        (*p)++;
    return *p > s;
}

/* Reads a number (JSON's grammar) or a literal at *p into out; 0 if
 * malformed. */
static inline int j_scalar(const char **p, char *out, size_t size)
{
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++)
        if (strncmp(*p, lits[i], strlen(lits[i])) == 0) {
            *p += strlen(lits[i]);
            snprintf(out, size, "%s", lits[i]);
            return 1;
        }
    const char *s = *p;
    if (**p == '-')
        (*p)++;
    if (!j_digits(p))
        return 0;
    if (**p == '.') {
        (*p)++;
        if (!j_digits(p))
            return 0;
    }
    if (**p == 'e' || **p == 'E') {
        (*p)++;
        if (**p == '+' || **p == '-')
            (*p)++;
        if (!j_digits(p))
            return 0;
    }
    snprintf(out, size, "%.*s", (int)(*p - s), s);
    return 1;
}

/* Returns 1 if s is exactly one flat JSON object of at most JKEYS pairs;
 * fills o. */
static inline int json_parse(const char *s, struct jobj *o)
{
    const char *p = s;
    o->n = 0;
    j_ws(&p);
    if (*p++ != '{')
        return 0;
    j_ws(&p);
    if (*p == '}') {
        p++;
        j_ws(&p);
        return *p == '\0';
    }
    for (;;) {
        if (o->n == JKEYS)
            return 0;
        j_ws(&p);
        if (!j_string(&p, o->key[o->n], sizeof o->key[0]))
            return 0;
        j_ws(&p);
        if (*p++ != ':')
            return 0;
        j_ws(&p);
        o->is_str[o->n] = *p == '"';
        if (!(o->is_str[o->n] ? j_string(&p, o->val[o->n], sizeof o->val[0])
                              : j_scalar(&p, o->val[o->n], sizeof o->val[0])))
            return 0;
        o->n++;
        j_ws(&p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p++ != '}')
            return 0;
        break;
    }
    j_ws(&p);
    return *p == '\0';
}

/* The value of key in o, or NULL. */
static inline const char *j_get(const struct jobj *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->key[i], key) == 0)
            return o->val[i];
    return NULL;
}

#endif
