/* A row as the apply writes it, in C (part of `_ccells`; ingest/stored.py,
 * ingest/quick.py): what a row costs when it leaves its user as they are.
 *
 * fields_text(values, skip, last) -> str | None: json.dumps of the fields a
 * row gives a new user (ingest/stored.py `new_fields`): each value of the dict
 * `values` whose name is not in the set `skip`, trimmed as str.strip() trims,
 * the empty ones left out, in the dict's order; the value named `last` (one
 * of `skip`) after them when it is not empty. Written as json.dumps writes
 * (ensure_ascii, ", " and ": "): a character from ' ' to '~' but '"' and '\\'
 * as it is, the others escaped as _json.c escapes them. None when a name or
 * a value is not a str. A property test holds the text to json.dumps's.
 *
 * quick_row(i, row, key, values, rule) -> tuple | None | NotImplemented: the
 * `w_quick` row of ingest/quick.py `QuickRule.row`, or None where that says
 * None, for the common row; NotImplemented where this does not know (a name
 * set other than the file's full one, a value that is not a str), and the
 * Python rule then decides. A property test holds the two to one answer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

PyObject *bw_fields_text(PyObject *self, PyObject *args);
PyObject *bw_quick_row(PyObject *self, PyObject *args);

/* The text being written: on the stack up to its size, then on the heap. */
typedef struct {
    char *buf;
    Py_ssize_t len, cap;
    char local[1024];
} Text;

static void text_init(Text *t) {
    t->buf = t->local;
    t->len = 0;
    t->cap = (Py_ssize_t)sizeof t->local;
}

static void text_free(Text *t) {
    if (t->buf != t->local) PyMem_Free(t->buf);
}

static int text_grow(Text *t, Py_ssize_t n) {
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

static int text_u(Text *t, Py_UCS4 c) {
    static const char hex[] = "0123456789abcdef";
    char u[6] = {'\\', 'u', hex[(c >> 12) & 0xf], hex[(c >> 8) & 0xf], hex[(c >> 4) & 0xf], hex[c & 0xf]};
    return text_put(t, u, 6);
}

static inline int as_is(Py_UCS4 c) { return c >= ' ' && c <= '~' && c != '"' && c != '\\'; }

/* One character that is not written as it is, escaped as _json.c escapes it. */
static int text_escaped(Text *t, Py_UCS4 c) {
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
    if (c >= 0x10000) /* a UTF-16 surrogate pair, as _json.c writes it */
        return text_u(t, Py_UNICODE_HIGH_SURROGATE(c)) < 0 ? -1 : text_u(t, Py_UNICODE_LOW_SURROGATE(c));
    return text_u(t, c);
}

/* The characters [a, b) of `s`, JSON-quoted as json.dumps writes them: runs
 * of characters written as they are are copied whole (a one-byte string). */
static int text_quoted(Text *t, PyObject *s, Py_ssize_t a, Py_ssize_t b) {
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    if (text_put(t, "\"", 1) < 0) return -1;
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *c = data;
        Py_ssize_t i = a;
        while (i < b) {
            Py_ssize_t j = i;
            while (j < b && as_is(c[j])) j++;
            if (j > i && text_put(t, (const char *)c + i, j - i) < 0) return -1;
            if (j < b && text_escaped(t, c[j]) < 0) return -1;
            i = j + 1;
        }
    } else {
        for (Py_ssize_t i = a; i < b; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            char plain = (char)c;
            if (as_is(c) ? text_put(t, &plain, 1) < 0 : text_escaped(t, c) < 0) return -1;
        }
    }
    return text_put(t, "\"", 1);
}

/* The bounds [*a, *b) of `s` without what str.strip() takes off. */
static void stripped(PyObject *s, Py_ssize_t *a, Py_ssize_t *b) {
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    *a = 0;
    *b = PyUnicode_GET_LENGTH(s);
    while (*a < *b && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, *a))) (*a)++;
    while (*b > *a && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, *b - 1))) (*b)--;
}

/* ", "name": "value"" for the trimmed value (no comma before the first); 1
 * when written or empty, 0 when a name or value is not a str, -1 on error. */
static int text_field(Text *t, PyObject *name, PyObject *value) {
    if (!PyUnicode_Check(name) || !PyUnicode_Check(value)) return 0;
    Py_ssize_t a, b;
    stripped(value, &a, &b);
    if (a == b) return 1;
    if ((t->len > 1 && text_put(t, ", ", 2) < 0) || text_quoted(t, name, 0, PyUnicode_GET_LENGTH(name)) < 0 ||
        text_put(t, ": ", 2) < 0 || text_quoted(t, value, a, b) < 0)
        return -1;
    return 1;
}

/* The text of fields_text, or None (a name or value not a str); NULL on error. */
static PyObject *row_text(PyObject *values, PyObject *skip, PyObject *last) {
    PyObject *key, *value, *last_value = NULL, *out = NULL;
    Py_ssize_t pos = 0;
    int ok = 1;
    Text t;
    text_init(&t);
    if (text_put(&t, "{", 1) < 0) goto done;
    while (ok == 1 && PyDict_Next(values, &pos, &key, &value)) {
        int skipped = PySet_Contains(skip, key);
        if (skipped < 0) goto done;
        if (!skipped) {
            ok = text_field(&t, key, value);
        } else if (PyUnicode_Check(key)) {
            int is_last = PyUnicode_Compare(key, last);
            if (is_last == -1 && PyErr_Occurred()) goto done;
            if (is_last == 0) last_value = value;
        }
    }
    if (ok == 1 && last_value != NULL) ok = text_field(&t, last, last_value);
    if (ok < 0 || text_put(&t, "}", 1) < 0) goto done;
    if (!ok) {
        out = Py_NewRef(Py_None);
    } else if ((out = PyUnicode_New(t.len, 127)) != NULL) { /* every byte written is ASCII */
        memcpy(PyUnicode_1BYTE_DATA(out), t.buf, (size_t)t.len);
    }
done:
    text_free(&t);
    return out;
}

PyObject *bw_fields_text(PyObject *self, PyObject *args) {
    PyObject *values, *skip, *last;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!U:fields_text", &PyDict_Type, &values, &PyFrozenSet_Type, &skip, &last))
        return NULL;
    return row_text(values, skip, last);
}

/* Whether `s` (a str) is empty once str.strip() has trimmed it. */
static int blank(PyObject *s) {
    Py_ssize_t a, b;
    stripped(s, &a, &b);
    return a == b;
}

/* The status a row gives a user active before it (ingest/quick.py
 * `status_after`): a deactivation date after `today` keeps them active until
 * then, one on or before it deactivates, a blank one reactivates; 1, 0, or
 * -1 on error. */
static int active_after(PyObject *date, PyObject *today) {
    Py_ssize_t a, b;
    stripped(date, &a, &b);
    if (a == b) return 1;
    PyObject *trimmed = PyUnicode_Substring(date, a, b);
    if (trimmed == NULL) return -1;
    int cmp = PyUnicode_Compare(trimmed, today);
    Py_DECREF(trimmed);
    if (cmp == -1 && PyErr_Occurred()) return -1;
    return cmp > 0;
}

/* rule: (kept, engage, today, ids, columns, cols, skip, last, eid_name, manager_name). */
PyObject *bw_quick_row(PyObject *self, PyObject *args) {
    PyObject *i, *row, *key, *values, *rule;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOO!:quick_row", &i, &row, &key, &values, &PyTuple_Type, &rule)) return NULL;
    if (PyTuple_GET_SIZE(rule) != 10) {
        PyErr_SetString(PyExc_TypeError, "quick_row: rule is (kept, engage, today, ids, columns, cols, skip, "
                                         "last, eid_name, manager_name)");
        return NULL;
    }
    PyObject *kept = PyTuple_GET_ITEM(rule, 0), *today = PyTuple_GET_ITEM(rule, 2);
    PyObject *columns = PyTuple_GET_ITEM(rule, 4), *cols = PyTuple_GET_ITEM(rule, 5);
    PyObject *skip = PyTuple_GET_ITEM(rule, 6), *last = PyTuple_GET_ITEM(rule, 7);
    PyObject *eid_name = PyTuple_GET_ITEM(rule, 8), *manager_name = PyTuple_GET_ITEM(rule, 9);
    int engage = PyObject_IsTrue(PyTuple_GET_ITEM(rule, 1)), ids = PyObject_IsTrue(PyTuple_GET_ITEM(rule, 3));
    if (engage < 0 || ids < 0) return NULL;
    if (!PyTuple_Check(kept) || !PyUnicode_Check(today) || !PyFrozenSet_Check(columns) ||
        !PyFrozenSet_Check(skip) || !PyUnicode_Check(last)) {
        PyErr_SetString(PyExc_TypeError, "quick_row: a part of the rule has the wrong type");
        return NULL;
    }
    /* The file's full set of names, and str values only: else the Python rule decides. */
    if (!PyDict_CheckExact(values) || PyDict_GET_SIZE(values) != PySet_GET_SIZE(columns))
        Py_RETURN_NOTIMPLEMENTED;
    PyObject *name, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(values, &pos, &name, &value)) {
        int in = PySet_Contains(columns, name);
        if (in < 0) return NULL;
        if (!in || !PyUnicode_Check(value)) Py_RETURN_NOTIMPLEMENTED;
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kept); k++) { /* every kept name is a column: in values */
        PyObject *got = PyDict_GetItemWithError(values, PyTuple_GET_ITEM(kept, k));
        if (got == NULL) {
            if (PyErr_Occurred()) return NULL;
            Py_RETURN_NONE;
        }
        if (blank(got)) Py_RETURN_NONE; /* a required name kept: the merge says */
    }
    PyObject *date = PyDict_GetItemWithError(values, last);
    if (date == NULL && PyErr_Occurred()) return NULL;
    int want = -1; /* None: the row does not say */
    if (date != NULL || engage) {
        want = date == NULL ? 1 : active_after(date, today);
        if (want < 0) return NULL;
    }
    PyObject *eid = NULL;
    if (ids) {
        eid = PyDict_GetItemWithError(values, eid_name);
        if (eid == NULL && PyErr_Occurred()) return NULL;
    }
    int has_manager = PyDict_Contains(values, manager_name);
    if (has_manager < 0) return NULL;
    PyObject *text = row_text(values, skip, last);
    if (text == NULL) return NULL;
    if (text == Py_None) {
        Py_DECREF(text);
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *empty = PyUnicode_New(0, 0);
    if (empty == NULL) {
        Py_DECREF(text);
        return NULL;
    }
    PyObject *status = want < 0 ? Py_NewRef(Py_None) : PyLong_FromLong(want);
    if (status == NULL) {
        Py_DECREF(text);
        Py_DECREF(empty);
        return NULL;
    }
    PyObject *out = Py_BuildValue("(OOONNOOi)", i, row, key, text, status, eid == NULL ? empty : eid, cols,
                                  has_manager);
    Py_DECREF(empty);
    return out;
}
