/* JSON text as json.dumps writes it (ensure_ascii, the default separators),
 * for the parts of `_ccells` that write it: _rows.c (a new user's fields)
 * and _diff.c (a change's history). Static: each file that includes it has
 * its own copy, and the module exports only its bw_* entry points. */
#ifndef BW_TEXT_H
#define BW_TEXT_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* The text being written: on the stack up to its size, then on the heap. */
typedef struct {
    char *buf;
    Py_ssize_t len, cap;
    char local[1024];
} Text;

static inline void text_init(Text *t) {
    t->buf = t->local;
    t->len = 0;
    t->cap = (Py_ssize_t)sizeof t->local;
}

static inline void text_free(Text *t) {
    if (t->buf != t->local) PyMem_Free(t->buf);
}

static inline int text_grow(Text *t, Py_ssize_t n) {
    Py_ssize_t cap = (t->len + n) * 2;
    char *grown = PyMem_Malloc((size_t)cap);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(grown, t->buf, (size_t)t->len);
    text_free(t);
    t->buf = grown;
    t->cap = cap;
    return 0;
}

static inline int text_put(Text *t, const char *p, Py_ssize_t n) {
    if (t->len + n > t->cap && text_grow(t, n) < 0) return -1;
    memcpy(t->buf + t->len, p, (size_t)n);
    t->len += n;
    return 0;
}

/* A code point past the short escapes as _json.c writes it: \uXXXX, or (past
 * the BMP) a UTF-16 surrogate pair; into out (12 bytes), its length back. */
static inline int escape_u(Py_UCS4 c, char *out) {
    static const char hex[] = "0123456789abcdef";
    Py_UCS4 units[2] = {c, 0};
    int n = 1;
    if (c >= 0x10000) {
        units[0] = Py_UNICODE_HIGH_SURROGATE(c);
        units[1] = Py_UNICODE_LOW_SURROGATE(c);
        n = 2;
    }
    for (int u = 0; u < n; u++) {
        char *e = out + 6 * u;
        e[0] = '\\';
        e[1] = 'u';
        e[2] = hex[(units[u] >> 12) & 0xf];
        e[3] = hex[(units[u] >> 8) & 0xf];
        e[4] = hex[(units[u] >> 4) & 0xf];
        e[5] = hex[units[u] & 0xf];
    }
    return 6 * n;
}

static inline int as_is(Py_UCS4 c) { return c >= ' ' && c <= '~' && c != '"' && c != '\\'; }

/* One character that is not written as it is, escaped as _json.c escapes it. */
static inline int text_escaped(Text *t, Py_UCS4 c) {
    char e[2] = {'\\', 0};
    switch (c) {
    case '"': case '\\': e[1] = (char)c; break;
    case '\b': e[1] = 'b'; break;
    case '\f': e[1] = 'f'; break;
    case '\n': e[1] = 'n'; break;
    case '\r': e[1] = 'r'; break;
    case '\t': e[1] = 't'; break;
    default: break;
    }
    if (e[1] != 0) return text_put(t, e, 2);
    char u[12];
    return text_put(t, u, escape_u(c, u));
}

/* The text written, as a str (every byte written is ASCII); NULL on error. */
static inline PyObject *text_str(const Text *t) {
    PyObject *out = PyUnicode_New(t->len, 127);
    if (out != NULL) memcpy(PyUnicode_1BYTE_DATA(out), t->buf, (size_t)t->len);
    return out;
}

#endif
