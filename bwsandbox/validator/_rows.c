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
 * quick row of ingest/quick.py `QuickRule.row`, or None where that says
 * None, for the common row; NotImplemented where this does not know (a name
 * set other than the file's full one, a value that is not a str), and the
 * Python rule then decides. A property test holds the two to one answer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_date.h"
#include "_text.h"

/* Its entry points (bw_*) are declared where the module's method table is: _cells.c. */

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
    } else {
        out = text_str(&t);
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
    int want = -1; /* the row does not say */
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
    PyObject *status = PyLong_FromLong(want);
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

/* quick_record(k, text, start, end, rec, spec) -> tuple | None | NotImplemented:
 * quick_row's answer for the record at text[start:end] (its end at the LF),
 * read from its bytes, for the common record: its cells as the csv module
 * reads them (a cell may be quoted, a doubled quote in it one quote), the
 * ones read printable ASCII and plain as values.row_values takes a cell as
 * it is, so the row's values would be exactly those cells (a deactivation
 * date: one date_iso reads, so its value is that ISO date). NotImplemented for
 * any other record, which is parsed and read as every record is
 * (ingest/quick.py `known_records`); a property test holds the answer to
 * quick_row's over the values the validator gives.
 *
 * spec: (width, cols, email_at, eid_at, kept_at, want, cols_text, has_mgr,
 * today): cols, one (cell index, plain kind, required, JSON name or None:
 * not in the text) per column in the order of the values; email_at and
 * eid_at (-1: no id) and kept_at are places in cols; want the status a
 * record without a deactivation date gives (-1: it does not say, or 1), one
 * with a date giving the status its date says on `today` (active_after). */
/* values.PLAIN_TEXT, PLAIN_ID, PLAIN_BOOL, NEVER, PLAIN_DATE_MDY, PLAIN_DATE_DMY */
enum { Q_TEXT = 0, Q_ID = 1, Q_BOOL = 2, Q_NEVER = 3, Q_DATE_MDY = 4, Q_DATE_DMY = 5 };
#define Q_DATE(kind) ((kind) == Q_DATE_MDY || (kind) == Q_DATE_DMY)
#define Q_MAX_CELLS 256

typedef struct {
    Py_ssize_t from, len; /* the cell's bytes in the record, inside its quotes if quoted */
    Py_ssize_t quotes;    /* doubled quotes in it: one quote each */
    int wide;             /* a byte past ASCII (UTF-8) in it */
} Cell;

/* The code point of the UTF-8 sequence at v[*i] (of m bytes), *i moved past
 * it; -1 for a sequence that is not UTF-8 (the body is, so never in use). */
static long utf8_at(const unsigned char *v, Py_ssize_t m, Py_ssize_t *i) {
    unsigned char b = v[*i];
    long cp;
    int more;
    if (b < 0x80) {
        (*i)++;
        return b;
    }
    if (b >= 0xc2 && b <= 0xdf) { cp = b & 0x1f; more = 1; }
    else if (b >= 0xe0 && b <= 0xef) { cp = b & 0x0f; more = 2; }
    else if (b >= 0xf0 && b <= 0xf4) { cp = b & 0x07; more = 3; }
    else return -1;
    if (*i + more > m - 1) return -1;
    for (int j = 1; j <= more; j++) {
        unsigned char c = v[*i + j];
        if ((c & 0xc0) != 0x80) return -1;
        cp = (cp << 6) | (c & 0x3f);
    }
    if ((more == 2 && cp < 0x800) || (more == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *i += more + 1;
    return cp;
}

/* The last code point of v[0:m] (UTF-8), or -1. */
static long utf8_last(const unsigned char *v, Py_ssize_t m) {
    Py_ssize_t i = m - 1;
    while (i > 0 && (v[i] & 0xc0) == 0x80 && m - i < 4) i--;
    Py_ssize_t at = i;
    long cp = utf8_at(v, m, &at);
    return at == m ? cp : -1;
}

/* The first `width` cells of record p[0:n] as the csv module reads it
 * (excel dialect); 0 when a cell read has a control character, is short, or
 * is quoted in a way this does not read (a quote inside an unquoted cell,
 * something after a closing quote), or a cell not read has a control
 * character (a CR alone would end a record). */
static int split_cells(const unsigned char *p, Py_ssize_t n, Py_ssize_t width, Cell *cell) {
    Py_ssize_t i = 0, c = 0;
    for (;;) {
        Cell *x = &cell[c];
        x->quotes = 0;
        x->wide = 0;
        if (i < n && p[i] == '"') {
            Py_ssize_t j = ++i;
            for (;; j++) {
                if (j >= n || p[j] < 0x20 || p[j] == 0x7f) return 0; /* unclosed, or a control character */
                x->wide |= p[j] >= 0x80;
                if (p[j] != '"') continue;
                if (j + 1 < n && p[j + 1] == '"') {
                    x->quotes++;
                    j++;
                    continue;
                }
                break;
            }
            x->from = i;
            x->len = j - i;
            i = j + 1;
            if (i < n && p[i] != ',') return 0; /* text after the closing quote */
        } else {
            Py_ssize_t j = i;
            for (; j < n && p[j] != ','; j++) {
                if (p[j] < 0x20 || p[j] == 0x7f || p[j] == '"') return 0;
                x->wide |= p[j] >= 0x80;
            }
            x->from = i;
            x->len = j - i;
            i = j;
        }
        if (++c == width) break;
        if (i >= n) return 0; /* a short record */
        i++;                  /* the comma */
    }
    for (; i < n; i++)
        if (p[i] < 0x20) return 0;
    return 1;
}

/* Whether code point c is one str.strip() takes off (the SPACES values.py
 * trims are all such): a cell with one at either end is its normaliser's. */
static int edge(long c) { return c < 0 || Py_UNICODE_ISSPACE((Py_UCS4)c); }

/* The cells of the columns `cols` (see quick_record's spec) of record p[0:n]
 * into val, and the length of their text (fields_text's) into *text_len: 1
 * when every one is plain, 0 when one is not (NotImplemented), -1 on error.
 * A date column (a deactivation date: PLAIN_DATE_MDY or _DMY, by the
 * tenant's order) is plain when empty or a date date_iso reads: its ISO
 * text then goes into iso[0:10], and *date_at is its place in cols (-1:
 * none, or empty); the text writes it last, as stored.new_fields does. */
static int read_plain(const unsigned char *p, Py_ssize_t n, Py_ssize_t width, PyObject *cols, Cell *val,
                      Py_ssize_t *text_len, Py_ssize_t *date_at, char *iso) {
    Cell cell[Q_MAX_CELLS];
    *date_at = -1;
    if (!split_cells(p, n, width, cell)) return 0;
    Py_ssize_t written = 0;
    *text_len = 2; /* "{}" */
    for (Py_ssize_t c = 0; c < PyTuple_GET_SIZE(cols); c++) {
        PyObject *col = PyTuple_GET_ITEM(cols, c);
        if (!PyTuple_Check(col) || PyTuple_GET_SIZE(col) != 4) {
            PyErr_SetString(PyExc_TypeError, "a record's column is (index, kind, required, name)");
            return -1;
        }
        Py_ssize_t index = PyLong_AsSsize_t(PyTuple_GET_ITEM(col, 0));
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(col, 1));
        if (PyErr_Occurred()) return -1;
        if (index < 0 || index >= width) {
            PyErr_SetString(PyExc_ValueError, "a record's column past the width");
            return -1;
        }
        val[c] = cell[index];
        const unsigned char *v = p + val[c].from;
        Py_ssize_t m = val[c].len;
        if (m == 0) {
            int required = PyObject_IsTrue(PyTuple_GET_ITEM(col, 2));
            if (required < 0) return -1;
            if (required) return 0; /* not applied: a row without that name */
            continue;
        }
        if (val[c].wide) {
            Py_ssize_t at = 0;
            if (edge(utf8_at(v, m, &at)) || edge(utf8_last(v, m))) return 0; /* trimmed */
        } else if (v[0] == ' ' || v[m - 1] == ' ') {
            return 0; /* trimmed */
        }
        if (Q_DATE(kind)) {
            /* date_iso reads ASCII digits and slashes only (no quote, no letter past ASCII) */
            if (*date_at >= 0 || !date_iso(v, m, kind == Q_DATE_DMY, iso))
                return 0; /* read_date's to read (or a second date column: never) */
            *date_at = c;
            continue;
        }
        if (kind == Q_ID ? v[0] == '\'' :
            kind == Q_BOOL ? !((m == 4 && memcmp(v, "true", 4) == 0) || (m == 5 && memcmp(v, "false", 5) == 0)) :
            kind != Q_TEXT)
            return 0; /* its normaliser's to read */
        PyObject *name = PyTuple_GET_ITEM(col, 3);
        if (name == Py_None) continue;
        if (!PyBytes_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "a record's column's JSON name is bytes or None");
            return -1;
        }
        /* , "name": "value", a doubled quote written \" and a backslash \\ */
        *text_len += (written++ ? 2 : 0) + PyBytes_GET_SIZE(name) + 4;
        if (!val[c].wide) { /* ASCII (most cells): a byte a character, a backslash two */
            *text_len += m;
            for (const unsigned char *b = v; (b = memchr(b, '\\', (size_t)(v + m - b))) != NULL; b++) (*text_len)++;
            continue;
        }
        Py_ssize_t i = 0;
        while (i < m) {
            long cp = utf8_at(v, m, &i);
            if (cp < 0) return 0;
            *text_len += cp == '\\' ? 2 : cp < 0x80 ? 1 : cp < 0x10000 ? 6 : 12; /* \uXXXX, a pair */
        }
    }
    if (*date_at >= 0) { /* , "name": "YYYY-MM-DD" */
        PyObject *name = PyTuple_GET_ITEM(PyTuple_GET_ITEM(cols, *date_at), 3);
        if (!PyBytes_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "a record's date column's JSON name is bytes");
            return -1;
        }
        *text_len += (written ? 2 : 0) + PyBytes_GET_SIZE(name) + 4 + 10;
    }
    return 1;
}

/* The text of the columns read by read_plain, as fields_text writes it,
 * in the text_len bytes read_plain counted; every write checked against them
 * first (the two passes count alike: a SystemError, never an overrun, if an
 * edit ever made them differ). */
static PyObject *plain_text(const unsigned char *p, PyObject *cols, const Cell *val, Py_ssize_t text_len,
                            Py_ssize_t date_at, const char *iso) {
    PyObject *fields = PyUnicode_New(text_len, 127);
    if (fields == NULL) return NULL;
    char *o0 = (char *)PyUnicode_1BYTE_DATA(fields), *o = o0;
#define ROOM(k) \
    if ((o - o0) + (Py_ssize_t)(k) > text_len) goto overrun
    ROOM(1);
    *o++ = '{';
    for (Py_ssize_t c = 0; c < PyTuple_GET_SIZE(cols); c++) {
        PyObject *name = PyTuple_GET_ITEM(PyTuple_GET_ITEM(cols, c), 3);
        if (name == Py_None || val[c].len == 0 || c == date_at) continue;
        if (o - o0 > 1) {
            ROOM(2);
            *o++ = ',';
            *o++ = ' ';
        }
        ROOM(PyBytes_GET_SIZE(name) + 3);
        memcpy(o, PyBytes_AS_STRING(name), (size_t)PyBytes_GET_SIZE(name));
        o += PyBytes_GET_SIZE(name);
        *o++ = ':';
        *o++ = ' ';
        *o++ = '"';
        const unsigned char *v = p + val[c].from;
        Py_ssize_t m = val[c].len, i = 0;
        if (!val[c].wide && !val[c].quotes && memchr(v, '\\', (size_t)m) == NULL) {
            ROOM(m); /* ASCII with nothing to escape (split_cells let no control character through) */
            memcpy(o, v, (size_t)m);
            o += m;
            i = m;
        }
        while (i < m) {
            if (v[i] >= 0x80) { /* as _json.c escapes it */
                char u[12];
                int k = escape_u((Py_UCS4)utf8_at(v, m, &i), u);
                ROOM(k);
                memcpy(o, u, (size_t)k);
                o += k;
                continue;
            }
            ROOM(2);
            if (v[i] == '\\') {
                *o++ = '\\';
            } else if (v[i] == '"') { /* one of a doubled quote: \" */
                *o++ = '\\';
                i++;
            }
            *o++ = (char)v[i++];
        }
        ROOM(1);
        *o++ = '"';
    }
    if (date_at >= 0) {
        PyObject *name = PyTuple_GET_ITEM(PyTuple_GET_ITEM(cols, date_at), 3);
        ROOM((o - o0 > 1 ? 2 : 0) + PyBytes_GET_SIZE(name) + 4 + 10);
        if (o - o0 > 1) {
            *o++ = ',';
            *o++ = ' ';
        }
        memcpy(o, PyBytes_AS_STRING(name), (size_t)PyBytes_GET_SIZE(name));
        o += PyBytes_GET_SIZE(name);
        memcpy(o, ": \"", 3);
        memcpy(o + 3, iso, 10);
        o[13] = '"';
        o += 14;
    }
    ROOM(1);
    *o++ = '}';
#undef ROOM
    if (o - o0 == text_len) return fields;
overrun:
    Py_DECREF(fields);
    PyErr_SetString(PyExc_SystemError, "a record's text is not the length counted");
    return NULL;
}

/* The key of an ASCII address with nothing to trim (ingest/records.py
 * email_key: str.lower() of ASCII maps A-Z only): lower-cased. */
static PyObject *ascii_key(const unsigned char *s, Py_ssize_t n) {
    PyObject *key = PyUnicode_New(n, 127);
    if (key == NULL) return NULL;
    Py_UCS1 *kp = PyUnicode_1BYTE_DATA(key);
    for (Py_ssize_t i = 0; i < n; i++) kp[i] = (Py_UCS1)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    return key;
}

/* The key of an address str: ascii_key's where it is ASCII with nothing at
 * either end str.strip() takes off, else key_of(address) (email_key). */
static PyObject *str_key(PyObject *address, PyObject *key_of) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(address);
    if (!PyUnicode_IS_ASCII(address) || n == 0) return PyObject_CallOneArg(key_of, address);
    const unsigned char *s = PyUnicode_1BYTE_DATA(address);
    if (Py_UNICODE_ISSPACE(s[0]) || Py_UNICODE_ISSPACE(s[n - 1])) return PyObject_CallOneArg(key_of, address);
    return ascii_key(s, n);
}

/* The key of an address cell read by read_plain: lower-cased (ASCII only, no
 * quote in it: else NULL without an error, the Python path's). */
static PyObject *plain_key(const unsigned char *p, Cell email) {
    if (email.len == 0 || email.quotes || email.wide) return NULL;
    return ascii_key(p + email.from, email.len);
}

/* The record's bytes, and the spec's checks: 1, or -1 on error. */
static int record_args(PyObject *text, Py_ssize_t start, Py_ssize_t end, PyObject *spec, Py_ssize_t size,
                       const unsigned char **p, Py_ssize_t *n, Py_ssize_t *width, PyObject **cols) {
    if (PyTuple_GET_SIZE(spec) != size || start < 0 || end < start || end > PyBytes_GET_SIZE(text)) {
        PyErr_SetString(PyExc_ValueError, "a bad record spec or span");
        return -1;
    }
    *width = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, 0));
    if (*width == -1 && PyErr_Occurred()) return -1;
    *cols = PyTuple_GET_ITEM(spec, 1);
    if (!PyTuple_Check(*cols) || *width < 1 || *width > Q_MAX_CELLS || PyTuple_GET_SIZE(*cols) > Q_MAX_CELLS) {
        PyErr_SetString(PyExc_ValueError, "a bad record spec");
        return -1;
    }
    *p = (const unsigned char *)PyBytes_AS_STRING(text) + start;
    *n = end - start;
    if (*n > 0 && (*p)[*n - 1] == '\r') (*n)--; /* CRLF */
    return 1;
}

/* A column's place in cols from a spec item (-1: none), checked. */
static int place(PyObject *item, PyObject *cols, Py_ssize_t *at) {
    *at = PyLong_AsSsize_t(item);
    if (*at == -1 && PyErr_Occurred()) return -1;
    if (*at < -1 || *at >= PyTuple_GET_SIZE(cols)) {
        PyErr_SetString(PyExc_ValueError, "a record spec's column place is out of range");
        return -1;
    }
    return 0;
}

/* The status a record whose deactivation date read_plain read (iso) gives
 * its user, as active_after says: 1 or 0, or -1 on error. */
static int dated_active(const char *iso, PyObject *today) {
    PyObject *date = PyUnicode_FromStringAndSize(iso, 10);
    if (date == NULL) return -1;
    int active = active_after(date, today);
    Py_DECREF(date);
    return active;
}

/* quick_record's answer (a new reference), or NULL with an error. */
static PyObject *quick_one(PyObject *k, PyObject *text, Py_ssize_t start, Py_ssize_t end, Py_ssize_t rec,
                           PyObject *spec) {
    PyObject *cols;
    Py_ssize_t n, width, email_at, eid_at, text_len, date_at;
    const unsigned char *p;
    char iso[10];
    if (record_args(text, start, end, spec, 9, &p, &n, &width, &cols) < 0) return NULL;
    if (place(PyTuple_GET_ITEM(spec, 2), cols, &email_at) < 0 || place(PyTuple_GET_ITEM(spec, 3), cols, &eid_at) < 0)
        return NULL;
    PyObject *kept_at = PyTuple_GET_ITEM(spec, 4), *want = PyTuple_GET_ITEM(spec, 5);
    PyObject *cols_text = PyTuple_GET_ITEM(spec, 6), *has_mgr = PyTuple_GET_ITEM(spec, 7);
    PyObject *today = PyTuple_GET_ITEM(spec, 8);
    if (email_at < 0 || !PyTuple_Check(kept_at) || !PyUnicode_Check(today)) {
        PyErr_SetString(PyExc_ValueError, "quick_record: a bad spec");
        return NULL;
    }
    Cell val[Q_MAX_CELLS];
    int got = read_plain(p, n, width, cols, val, &text_len, &date_at, iso);
    if (got < 0) return NULL;
    if (got == 0) Py_RETURN_NOTIMPLEMENTED;
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(kept_at); j++) {
        Py_ssize_t c;
        if (place(PyTuple_GET_ITEM(kept_at, j), cols, &c) < 0) return NULL;
        if (c < 0 || val[c].len == 0) Py_RETURN_NONE; /* a required name kept: the merge says */
    }
    if (eid_at >= 0 && (val[eid_at].quotes || val[eid_at].wide)) Py_RETURN_NOTIMPLEMENTED;
    PyObject *key = plain_key(p, val[email_at]);
    if (key == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NOTIMPLEMENTED; /* no address (the merge's), or one to read in Python */
    }
    int active = date_at < 0 ? 1 : dated_active(iso, today);
    PyObject *status = active < 0 ? NULL : date_at < 0 ? Py_NewRef(want) : PyLong_FromLong(active);
    PyObject *fields = status == NULL ? NULL : plain_text(p, cols, val, text_len, date_at, iso);
    PyObject *eid = fields == NULL ? NULL
                    : eid_at < 0   ? PyUnicode_New(0, 0)
                                   : PyUnicode_DecodeASCII((const char *)p + val[eid_at].from, val[eid_at].len, NULL);
    if (eid == NULL) {
        Py_XDECREF(fields);
        Py_XDECREF(status);
        Py_DECREF(key);
        return NULL;
    }
    return Py_BuildValue("(OnNNNNOO)", k, rec + 2, key, fields, status, eid, cols_text, has_mgr);
}

PyObject *bw_quick_record(PyObject *self, PyObject *args) {
    PyObject *k, *text, *spec;
    Py_ssize_t start, end, rec;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO!nnnO!:quick_record", &k, &PyBytes_Type, &text, &start, &end, &rec,
                          &PyTuple_Type, &spec))
        return NULL;
    return quick_one(k, text, start, end, rec, spec);
}

/* plain_one(text, start, end, spec, today) -> tuple | NotImplemented: a
 * common record (as quick_record reads it) as (key, text, date, active,
 * *picked): its address's key, its fields' text as fields_text writes them,
 * its deactivation date as stored ('' if none) and the status it gives a
 * new user, and the values of the columns spec picks ('' for -1: a column
 * the file has not). spec: (width, cols, email_at, picks). NotImplemented
 * for any other record, and one whose address or picked values hold a
 * quote or (the address) a letter past ASCII. */
static PyObject *plain_one(PyObject *text, Py_ssize_t start, Py_ssize_t end, PyObject *spec, PyObject *today) {
    PyObject *cols;
    Py_ssize_t n, width, email_at, text_len, date_at;
    const unsigned char *p;
    char iso[10];
    if (record_args(text, start, end, spec, 4, &p, &n, &width, &cols) < 0) return NULL;
    if (place(PyTuple_GET_ITEM(spec, 2), cols, &email_at) < 0) return NULL;
    PyObject *picks = PyTuple_GET_ITEM(spec, 3);
    if (email_at < 0 || !PyTuple_Check(picks)) {
        PyErr_SetString(PyExc_ValueError, "plain_rows: a bad spec");
        return NULL;
    }
    Py_ssize_t npicks = PyTuple_GET_SIZE(picks), at[Q_MAX_CELLS];
    if (npicks > Q_MAX_CELLS) {
        PyErr_SetString(PyExc_ValueError, "plain_rows: too many picks");
        return NULL;
    }
    for (Py_ssize_t j = 0; j < npicks; j++) /* the spec checked whatever the record */
        if (place(PyTuple_GET_ITEM(picks, j), cols, &at[j]) < 0) return NULL;
    Cell val[Q_MAX_CELLS];
    int got = read_plain(p, n, width, cols, val, &text_len, &date_at, iso);
    if (got < 0) return NULL;
    if (got == 0) Py_RETURN_NOTIMPLEMENTED;
    int active = date_at < 0 ? 1 : dated_active(iso, today);
    if (active < 0) return NULL;
    PyObject *out = PyTuple_New(4 + npicks);
    if (out == NULL) return NULL;
    PyObject *date = date_at < 0 ? PyUnicode_New(0, 0) : PyUnicode_FromStringAndSize(iso, 10);
    if (date == NULL) goto fail;
    PyTuple_SET_ITEM(out, 2, date);
    PyObject *status = PyLong_FromLong(active);
    if (status == NULL) goto fail;
    PyTuple_SET_ITEM(out, 3, status);
    for (Py_ssize_t j = 0; j < npicks; j++) {
        Py_ssize_t c = at[j];
        if (c >= 0 && val[c].quotes) goto python;
        PyObject *value = c < 0 ? PyUnicode_New(0, 0)
                                : PyUnicode_DecodeUTF8((const char *)p + val[c].from, val[c].len, "strict");
        if (value == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) goto fail;
            PyErr_Clear(); /* not UTF-8 (never: the body is): the Python path's */
            goto python;
        }
        PyTuple_SET_ITEM(out, 4 + j, value);
    }
    PyObject *key = plain_key(p, val[email_at]);
    if (key == NULL) {
        if (PyErr_Occurred()) goto fail;
        goto python;
    }
    PyTuple_SET_ITEM(out, 0, key);
    PyObject *fields = plain_text(p, cols, val, text_len, date_at, iso);
    if (fields == NULL) goto fail;
    PyTuple_SET_ITEM(out, 1, fields);
    return out;
python:
    Py_DECREF(out);
    Py_RETURN_NOTIMPLEMENTED;
fail:
    Py_DECREF(out);
    return NULL;
}

/* Record k of a batch's lists: its start, end and number; -1 on error. */
static int batch_record(PyObject *starts, PyObject *ends, PyObject *recs, Py_ssize_t k, Py_ssize_t *start,
                        Py_ssize_t *end, Py_ssize_t *rec) {
    if (k >= PyList_GET_SIZE(starts) || k >= PyList_GET_SIZE(ends) || k >= PyList_GET_SIZE(recs)) {
        PyErr_SetString(PyExc_IndexError, "a record past the batch's lists");
        return -1;
    }
    *start = PyLong_AsSsize_t(PyList_GET_ITEM(starts, k));
    if (*start == -1 && PyErr_Occurred()) return -1;
    *end = PyLong_AsSsize_t(PyList_GET_ITEM(ends, k));
    if (*end == -1 && PyErr_Occurred()) return -1;
    *rec = PyLong_AsSsize_t(PyList_GET_ITEM(recs, k));
    if (*rec == -1 && PyErr_Occurred()) return -1;
    return 0;
}

/* quick_records(text, starts, ends, recs, k, stop, spec, out, keys) -> int:
 * quick_record for the batch's records k, k + 1 ... before stop, each
 * tuple appended to the list out and its key to the list keys, until the
 * first record it does not read (None or NotImplemented): its place is
 * returned, stop when every one was read. */
PyObject *bw_quick_records(PyObject *self, PyObject *args) {
    PyObject *text, *starts, *ends, *recs, *spec, *out, *keys;
    Py_ssize_t k, stop, start, end, rec;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!O!O!nnO!O!O!:quick_records", &PyBytes_Type, &text, &PyList_Type, &starts,
                          &PyList_Type, &ends, &PyList_Type, &recs, &k, &stop, &PyTuple_Type, &spec, &PyList_Type,
                          &out, &PyList_Type, &keys))
        return NULL;
    if (k < 0) {
        PyErr_SetString(PyExc_ValueError, "quick_records: a negative place");
        return NULL;
    }
    for (; k < stop; k++) {
        if (batch_record(starts, ends, recs, k, &start, &end, &rec) < 0) return NULL;
        PyObject *place = PyLong_FromSsize_t(k);
        if (place == NULL) return NULL;
        PyObject *got = quick_one(place, text, start, end, rec, spec);
        Py_DECREF(place);
        if (got == NULL) return NULL;
        if (!PyTuple_Check(got)) {
            Py_DECREF(got);
            break;
        }
        int failed = PyList_Append(out, got) < 0 || PyList_Append(keys, PyTuple_GET_ITEM(got, 2)) < 0;
        Py_DECREF(got);
        if (failed) return NULL;
    }
    return PyLong_FromSsize_t(k);
}

/* plain_rows(text, starts, ends, recs, k, stop, uid, spec, tail, out, keys)
 * -> int: the w_pend rows (ingest/fresh.py) of the batch's records k, k + 1
 * ... before stop, read as plain_one reads them, each creating the next
 * user from uid on: their values appended to the list out, one row after
 * the other (so that many rows go to one statement), their keys to the list keys,
 * until the first record plain_one does not read: its place is returned,
 * stop when every one was read. spec: plain_one's, its picks (after the
 * key and the text) the employee id, the manager's address, the
 * department, the manager id and the names a new user needs. tail:
 * (whether the file has a manager id, the blank texts by the mask of the
 * empty names, the key function: email_key, today). A row: (uid, row, text,
 * key, employee id, the manager's key, department, manager id or 0 (the
 * file has none), blank, deactivation date, status); what every such row
 * holds alike is fresh.py's statement's, which also makes a 0 NULL. */
PyObject *bw_plain_rows(PyObject *self, PyObject *args) {
    PyObject *text, *starts, *ends, *recs, *spec, *tail, *out, *keys;
    Py_ssize_t k, stop, uid, start, end, rec;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!O!O!nnnO!O!O!O!:plain_rows", &PyBytes_Type, &text, &PyList_Type, &starts,
                          &PyList_Type, &ends, &PyList_Type, &recs, &k, &stop, &uid, &PyTuple_Type, &spec,
                          &PyTuple_Type, &tail, &PyList_Type, &out, &PyList_Type, &keys))
        return NULL;
    if (k < 0 || PyTuple_GET_SIZE(tail) != 4 || !PyTuple_Check(PyTuple_GET_ITEM(tail, 1)) ||
        !PyUnicode_Check(PyTuple_GET_ITEM(tail, 3))) {
        PyErr_SetString(PyExc_ValueError, "plain_rows: a bad place or tail");
        return NULL;
    }
    int has_mid = PyObject_IsTrue(PyTuple_GET_ITEM(tail, 0));
    PyObject *blanks = PyTuple_GET_ITEM(tail, 1), *key_of = PyTuple_GET_ITEM(tail, 2), *today = PyTuple_GET_ITEM(tail, 3);
    if (has_mid < 0) return NULL;
    PyObject *none = PyUnicode_New(0, 0), *zero = PyLong_FromLong(0);
    if (none == NULL || zero == NULL) {
        Py_XDECREF(none);
        Py_XDECREF(zero);
        return NULL;
    }
    for (; k < stop; k++) {
        if (batch_record(starts, ends, recs, k, &start, &end, &rec) < 0) goto fail;
        PyObject *got = plain_one(text, start, end, spec, today);
        if (got == NULL) goto fail;
        if (!PyTuple_Check(got)) {
            Py_DECREF(got);
            break;
        }
        /* (key, text, date, status, eid, manager, dept, manager id, *names) */
        Py_ssize_t names = PyTuple_GET_SIZE(got) - 8, mask = 0;
        if (names < 0 || names > 8 || PyTuple_GET_SIZE(blanks) != ((Py_ssize_t)1 << names)) {
            Py_DECREF(got);
            PyErr_SetString(PyExc_ValueError, "plain_rows: the picks and the blanks do not match");
            goto fail;
        }
        for (Py_ssize_t j = 0; j < names; j++)
            if (PyUnicode_GET_LENGTH(PyTuple_GET_ITEM(got, 8 + j)) == 0) mask |= (Py_ssize_t)1 << j;
        PyObject *manager = PyTuple_GET_ITEM(got, 5);
        PyObject *mkey = PyUnicode_GET_LENGTH(manager) == 0 ? Py_NewRef(none) : str_key(manager, key_of);
        if (mkey == NULL) {
            Py_DECREF(got);
            goto fail;
        }
        PyObject *row = Py_BuildValue("(nnOOONOOOOO)", uid, rec + 2, PyTuple_GET_ITEM(got, 1), PyTuple_GET_ITEM(got, 0),
                                      PyTuple_GET_ITEM(got, 4), mkey, PyTuple_GET_ITEM(got, 6),
                                      has_mid ? PyTuple_GET_ITEM(got, 7) : zero, PyTuple_GET_ITEM(blanks, mask),
                                      PyTuple_GET_ITEM(got, 2), PyTuple_GET_ITEM(got, 3));
        /* out gets the row's values one after the other, not the tuple */
        Py_ssize_t at = PyList_GET_SIZE(out);
        int failed = row == NULL || PyList_SetSlice(out, at, at, row) < 0 ||
                     PyList_Append(keys, PyTuple_GET_ITEM(got, 0)) < 0;
        Py_XDECREF(row);
        Py_DECREF(got);
        if (failed) goto fail;
        uid++;
    }
    Py_DECREF(none);
    Py_DECREF(zero);
    return PyLong_FromSsize_t(k);
fail:
    Py_DECREF(none);
    Py_DECREF(zero);
    return NULL;
}
