/* A change's history in C (part of `_ccells`; ingest/directory.py
 * `history_texts`): what a change changes, from the two JSON texts of the
 * user's fields, with no Python object made of either.
 *
 * history_texts(old, new) -> (before, after) | NotImplemented: `old` (None:
 * no fields yet) and `new` are JSON objects of strings, as the store keeps a
 * user's fields; `before` and `after` are json.dumps of {name: old value}
 * and {name: new value} for each field records.fields_diff lists, in its
 * order (the fields of `new` whose value differs from the old one, a missing
 * field being "", then the non-empty fields of `old` that `new` lacks), but a
 * field named "status" (the history's status column says it). Strings are
 * compared as json.loads reads them (escapes, surrogate pairs). NotImplemented
 * where a text is anything else (a value that is not a string, a name twice,
 * more than MAX_MEMBERS fields, a text json.loads would refuse), and the
 * Python rule then decides, or raises what it raises. A property test holds
 * the two to one answer.
 *
 * values_only(old, new, names), at the end, reads the same two texts for the
 * quick change (ingest/valuechange.py `read_fields`): whether a row changes only
 * values of its user, and the values of the few fields the apply looks users up by.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_text.h"

/* Its entry point (bw_history_texts) is declared where the module's method table is: _cells.c. */

#define MAX_MEMBERS 256

typedef struct {
    int kind;
    const void *data;
    Py_ssize_t n;
} Src;

/* The characters [a, b) between a string's quotes; esc: a backslash among them. */
typedef struct {
    Py_ssize_t a, b;
    int esc;
} Span;

typedef struct {
    Span name, value;
} Member;

static inline Py_UCS4 at(const Src *s, Py_ssize_t i) { return PyUnicode_READ(s->kind, s->data, i); }
static inline int json_space(Py_UCS4 c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int hex_digit(Py_UCS4 c) {
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

/* The four hex digits at s[i], or -1 (the caller knows they are there). */
static long hex4(const Src *s, Py_ssize_t i) {
    long v = 0;
    for (Py_ssize_t k = i; k < i + 4; k++) {
        int d = hex_digit(at(s, k));
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static void skip_space(const Src *s, Py_ssize_t *i) {
    while (*i < s->n && json_space(at(s, *i))) (*i)++;
}

/* The string whose opening quote is s[*i], as json.loads reads it (strict: no
 * control character, only JSON's escapes): its span, and *i past its closing
 * quote; 0 where there is none. */
static int string_at(const Src *s, Py_ssize_t *i, Span *out) {
    if (*i >= s->n || at(s, *i) != '"') return 0;
    Py_ssize_t j = *i + 1;
    int esc = 0;
    while (j < s->n) {
        Py_UCS4 c = at(s, j);
        if (c == '"') {
            out->a = *i + 1;
            out->b = j;
            out->esc = esc;
            *i = j + 1;
            return 1;
        }
        if (c < 0x20) return 0;
        if (c != '\\') {
            j++;
            continue;
        }
        esc = 1;
        if (j + 1 >= s->n) return 0;
        switch (at(s, j + 1)) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            j += 2;
            break;
        case 'u':
            if (j + 6 > s->n || hex4(s, j + 2) < 0) return 0;
            j += 6;
            break;
        default:
            return 0;
        }
    }
    return 0;
}

/* The members of the JSON object that is the whole of s, in order, into m; their
 * number, or -1 where s is not such an object of strings (or has too many). */
static Py_ssize_t members(const Src *s, Member *m) {
    Py_ssize_t i = 0, k = 0;
    skip_space(s, &i);
    if (i >= s->n || at(s, i) != '{') return -1;
    i++;
    skip_space(s, &i);
    if (i < s->n && at(s, i) == '}') {
        i++;
    } else {
        for (;;) {
            if (k == MAX_MEMBERS || !string_at(s, &i, &m[k].name)) return -1;
            skip_space(s, &i);
            if (i >= s->n || at(s, i) != ':') return -1;
            i++;
            skip_space(s, &i);
            if (!string_at(s, &i, &m[k].value)) return -1;
            k++;
            skip_space(s, &i);
            if (i >= s->n) return -1;
            Py_UCS4 c = at(s, i++);
            if (c == '}') break;
            if (c != ',') return -1;
            skip_space(s, &i);
        }
    }
    skip_space(s, &i);
    return i == s->n ? k : -1;
}

/* Reading a span's characters as json.loads makes them. */
typedef struct {
    const Src *s;
    Py_ssize_t i, b;
} Cursor;

/* The next character of the span, or -1 at its end (its escapes are valid: string_at). */
static long next_char(Cursor *c) {
    if (c->i >= c->b) return -1;
    Py_UCS4 ch = at(c->s, c->i);
    if (ch != '\\') {
        c->i++;
        return (long)ch;
    }
    Py_UCS4 e = at(c->s, c->i + 1);
    c->i += 2;
    switch (e) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'u': break;
    default: return (long)e; /* '"', '\\', '/' */
    }
    long v = hex4(c->s, c->i);
    c->i += 4;
    /* A high surrogate followed by an escaped low one is one character (_json.c scanstring). */
    if (v >= 0xd800 && v <= 0xdbff && c->i + 6 <= c->b && at(c->s, c->i) == '\\' && at(c->s, c->i + 1) == 'u') {
        long w = hex4(c->s, c->i + 2);
        if (w >= 0xdc00 && w <= 0xdfff) {
            c->i += 6;
            return 0x10000 + ((v - 0xd800) << 10) + (w - 0xdc00);
        }
    }
    return v;
}

/* Whether two spans read as the same string. */
static int same(const Src *x, Span p, const Src *y, Span q) {
    if (!p.esc && !q.esc) {
        if (p.b - p.a != q.b - q.a) return 0;
        if (x->kind == y->kind)
            return memcmp((const char *)x->data + p.a * x->kind, (const char *)y->data + q.a * y->kind,
                          (size_t)((p.b - p.a) * x->kind)) == 0;
    }
    Cursor cx = {x, p.a, p.b}, cy = {y, q.a, q.b};
    for (;;) {
        long a = next_char(&cx), b = next_char(&cy);
        if (a != b) return 0;
        if (a < 0) return 1;
    }
}

/* Whether a span reads as `word` (ASCII). */
static int is_word(const Src *s, Span p, const char *word) {
    Cursor c = {s, p.a, p.b};
    for (const char *w = word; *w; w++)
        if (next_char(&c) != (unsigned char)*w) return 0;
    return next_char(&c) < 0;
}

/* The span's string JSON-quoted as json.dumps writes it. */
static int put_quoted(Text *t, const Src *s, Span p) {
    Cursor c = {s, p.a, p.b};
    if (text_put(t, "\"", 1) < 0) return -1;
    for (long ch; (ch = next_char(&c)) >= 0;) {
        char plain = (char)ch;
        if (as_is((Py_UCS4)ch) ? text_put(t, &plain, 1) < 0 : text_escaped(t, (Py_UCS4)ch) < 0) return -1;
    }
    return text_put(t, "\"", 1);
}

/* ", "name": "value"" into t (no comma before the first member). */
static int put_member(Text *t, const Src *ns, Span name, const Src *vs, Span value) {
    if ((t->len > 1 && text_put(t, ", ", 2) < 0) || put_quoted(t, ns, name) < 0 || text_put(t, ": ", 2) < 0)
        return -1;
    return put_quoted(t, vs, value);
}

/* Whether two of the n members have one name (json.loads would keep the last). */
static int repeated(const Src *s, const Member *m, Py_ssize_t n) {
    for (Py_ssize_t j = 1; j < n; j++)
        for (Py_ssize_t k = 0; k < j; k++)
            if (same(s, m[j].name, s, m[k].name)) return 1;
    return 0;
}

static int source(PyObject *text, Src *s) {
    if (!PyUnicode_Check(text)) return 0;
    s->kind = PyUnicode_KIND(text);
    s->data = PyUnicode_DATA(text);
    s->n = PyUnicode_GET_LENGTH(text);
    return 1;
}

PyObject *bw_history_texts(PyObject *self, PyObject *args) {
    PyObject *old_text, *new_text, *out = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO:history_texts", &old_text, &new_text)) return NULL;
    Src os = {PyUnicode_1BYTE_KIND, "", 0}, ns;
    Member *m = PyMem_Malloc(sizeof(Member) * 2 * MAX_MEMBERS);
    char *matched = PyMem_Calloc(MAX_MEMBERS, 1); /* old members whose name `new` has */
    if (m == NULL || matched == NULL) {
        PyMem_Free(m);
        PyMem_Free(matched);
        return PyErr_NoMemory();
    }
    Member *om = m, *nm = m + MAX_MEMBERS;
    Py_ssize_t on = 0, nn;
    Text before, after;
    text_init(&before);
    text_init(&after);
    if ((old_text != Py_None && (!source(old_text, &os) || (on = members(&os, om)) < 0)) ||
        !source(new_text, &ns) || (nn = members(&ns, nm)) < 0 || repeated(&os, om, on) ||
        repeated(&ns, nm, nn)) {
        out = Py_NewRef(Py_NotImplemented);
        goto done;
    }
    if (text_put(&before, "{", 1) < 0 || text_put(&after, "{", 1) < 0) goto done;
    const Span empty = {0, 0, 0};
    for (Py_ssize_t j = 0; j < nn; j++) {
        Span old_value = empty;
        for (Py_ssize_t k = 0; k < on; k++) {
            if (same(&ns, nm[j].name, &os, om[k].name)) {
                matched[k] = 1;
                old_value = om[k].value;
                break;
            }
        }
        if (same(&os, old_value, &ns, nm[j].value) || is_word(&ns, nm[j].name, "status")) continue;
        if (put_member(&before, &ns, nm[j].name, &os, old_value) < 0 ||
            put_member(&after, &ns, nm[j].name, &ns, nm[j].value) < 0)
            goto done;
    }
    for (Py_ssize_t k = 0; k < on; k++) {
        if (matched[k] || om[k].value.a == om[k].value.b || is_word(&os, om[k].name, "status")) continue;
        if (put_member(&before, &os, om[k].name, &os, om[k].value) < 0 ||
            put_member(&after, &os, om[k].name, &os, empty) < 0)
            goto done;
    }
    if (text_put(&before, "}", 1) < 0 || text_put(&after, "}", 1) < 0) goto done;
    PyObject *b = text_str(&before), *a = b == NULL ? NULL : text_str(&after);
    if (a != NULL) out = PyTuple_Pack(2, b, a);
    Py_XDECREF(b);
    Py_XDECREF(a);
done:
    text_free(&before);
    text_free(&after);
    PyMem_Free(m);
    PyMem_Free(matched);
    return out;
}

/* A span's string as json.loads makes it, from the text it is in (`text`: s's object). */
static PyObject *span_str(PyObject *text, const Src *s, Span p) {
    if (!p.esc) return PyUnicode_Substring(text, p.a, p.b);
    Py_UCS4 *buf = PyMem_Malloc(sizeof(Py_UCS4) * (size_t)(p.b - p.a + 1));
    if (buf == NULL) return PyErr_NoMemory();
    Py_ssize_t n = 0;
    Cursor c = {s, p.a, p.b};
    for (long ch; (ch = next_char(&c)) >= 0;) buf[n++] = (Py_UCS4)ch;
    PyObject *out = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, n);
    PyMem_Free(buf);
    return out;
}

/* Whether a span's string, read as json.loads reads it, differs from its strip(). */
static int untrimmed(const Src *s, Span p) {
    Cursor c = {s, p.a, p.b};
    long first = next_char(&c), last = first;
    for (long ch; (ch = next_char(&c)) >= 0;) last = ch;
    return first >= 0 && (Py_UNICODE_ISSPACE((Py_UCS4)first) || Py_UNICODE_ISSPACE((Py_UCS4)last));
}

/* values_only(old, new, names) -> None | (equal, picked) | NotImplemented: ingest/valuechange.py
 * `read_fields` over the JSON texts of a user's stored fields (`old`) and a row's fields as a new
 * user's (`new`), with no object made of either: None where the row does more than change values
 * (other names, another order, a value it changes stored untrimmed); else whether every value reads
 * the same, and {name: new value} of each of `names` (a tuple of ASCII str) that `new` has. NotImplemented
 * where a text is not a JSON object of strings with each name once (as history_texts). */
PyObject *bw_values_only(PyObject *self, PyObject *args) {
    PyObject *old_text, *new_text, *names, *out = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "UUO!:values_only", &old_text, &new_text, &PyTuple_Type, &names)) return NULL;
    Src os, ns;
    Member *m = PyMem_Malloc(sizeof(Member) * 2 * MAX_MEMBERS);
    if (m == NULL) return PyErr_NoMemory();
    Member *om = m, *nm = m + MAX_MEMBERS;
    Py_ssize_t on, nn;
    source(old_text, &os);
    source(new_text, &ns);
    if ((on = members(&os, om)) < 0 || (nn = members(&ns, nm)) < 0 || repeated(&os, om, on) ||
        repeated(&ns, nm, nn)) {
        out = Py_NewRef(Py_NotImplemented);
        goto done;
    }
    int equal = 1;
    if (on != nn) {
        out = Py_NewRef(Py_None);
        goto done;
    }
    for (Py_ssize_t j = 0; j < nn; j++) {
        if (!same(&os, om[j].name, &ns, nm[j].name)) {
            out = Py_NewRef(Py_None);
            goto done;
        }
        if (same(&os, om[j].value, &ns, nm[j].value)) continue;
        if (untrimmed(&os, om[j].value)) {
            out = Py_NewRef(Py_None);
            goto done;
        }
        equal = 0;
    }
    PyObject *picked = PyDict_New();
    if (picked == NULL) goto done;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(names); k++) {
        PyObject *name = PyTuple_GET_ITEM(names, k);
        const char *word = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
        if (word == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "values_only: names must be str");
            Py_DECREF(picked);
            goto done;
        }
        for (Py_ssize_t j = 0; j < nn; j++) {
            if (!is_word(&ns, nm[j].name, word)) continue;
            PyObject *value = span_str(new_text, &ns, nm[j].value);
            if (value == NULL || PyDict_SetItem(picked, name, value) < 0) {
                Py_XDECREF(value);
                Py_DECREF(picked);
                goto done;
            }
            Py_DECREF(value);
            break;
        }
    }
    out = Py_BuildValue("(NN)", PyBool_FromLong(equal), picked);
done:
    PyMem_Free(m);
    return out;
}
