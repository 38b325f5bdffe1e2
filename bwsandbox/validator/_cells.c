/* The value fast path in C (docs/benchmarks.md): one pass over a part of a CSV
 * body that reads the cells of the ruled columns and says, per record and
 * column, whether the exact rules (values.py, users.py) must look at it.
 *
 * cells(text, start, end, width, cols) reads the whole records in
 * text[start:end] as RFC 4180 does (quoted cells may hold commas, newlines
 * and doubled quotes; CRLF or LF record ends). `cols` is a sequence of
 * (cell index, kind, byte limit or -1, required, vocabulary) per ruled
 * column. For each record it gives the end offset (the LF, or `end`), and a
 * bit mask of the columns whose value needs the exact rules ("slow"); the
 * structure scan judges the cell counts. A value is fast only
 * when the exact rule would certainly find nothing in it and its key is
 * plain to compute, so a fast value needs no Python at all:
 *
 *   TEXT   at most `limit` bytes (bytes >= characters); when required, not
 *          empty; no space (values.SPACES: tab, Unicode space separators)
 *          at either end, since those are trimmed and reported (docs/production.md §6);
 *   EMAIL  empty (slow only if required), or an address as values.EMAIL_FAST
 *          matches it, within `limit` bytes: hashed lower-cased;
 *   ID     digits, or text that cannot be scientific notation (no E/e, or
 *          not a digit first); no leading apostrophe, no space at either
 *          end (as TEXT); hashed; the
 *          numeric / zero-padded / size facts of the lost-zeros rule are
 *          kept; ID_LOWER also hashes the lower-cased id (ASCII only), the
 *          key stored ids are compared on;
 *   BOOL   one of `vocabulary`, byte for byte;
 *   DATE   empty, or d/d/yyyy that reads as one real date in the tenant's
 *          locale (US month first, GB day first), or yyyy/m/d;
 *   OTHER  empty.
 *
 * Whatever is slow goes through the exact rules in Python, which also hash
 * its keys with hash_strings(), the same function: a fast and a slow row
 * with the same key always collide. The pass releases the GIL; structure.py
 * runs it on the parts of a big file on worker threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_date.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_COLS 31

enum { K_TEXT = 0, K_EMAIL = 1, K_ID = 2, K_BOOL = 3, K_DATE_US = 4, K_DATE_GB = 5, K_OTHER = 6, K_ID_LOWER = 7 };

typedef struct {
    Py_ssize_t idx, limit;
    int kind, required;
    Py_ssize_t n_vocab;
    const char *vocab[64];
    Py_ssize_t vocab_len[64];
    uint64_t *hash, *lower; /* lower: K_ID_LOWER's hash of the lower-cased id */
    uint8_t *num, *pad;
    int32_t *size;
} Col;

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* 64-bit hash of a byte string, 8 bytes at a time, with murmur3's final mix. */
static uint64_t hash_bytes(const unsigned char *p, Py_ssize_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)n * 0xC2B2AE3D27D4EB4FULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h ^= w * 0x87C37B91114253D5ULL;
        h = rotl(h, 27) * 0x4CF5AD432745937FULL + 0x52DCE729ULL;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, (size_t)n);
    h ^= w * 0x87C37B91114253D5ULL;
    h = rotl(h, 31) * 0x4CF5AD432745937FULL;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 33;
    return h;
}

/* A key's slot: 0 is "no key" (an empty value), so real keys are odd. */
static inline uint64_t key_hash(const unsigned char *p, Py_ssize_t n) { return n ? hash_bytes(p, n) | 1u : 0; }

static inline int is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static inline int is_alnum(unsigned char c) { return is_alpha(c) || (c >= '0' && c <= '9'); }
static inline int is_local(unsigned char c) {
    return is_alnum(c) || c == '_' || c == '%' || c == '+' || c == '\'' || c == '-';
}

/* values.EMAIL_FAST: atoms of [A-Za-z0-9_%+'-] joined by single dots, one @,
 * then labels [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])? joined by dots, at least
 * two, the last of them [A-Za-z]{2,}. `*caps`: whether a capital occurs (the
 * key is then the lower-cased address, EMAIL_PLAIN does not match). */
static int email_fast(const unsigned char *v, Py_ssize_t n, int *caps) {
    Py_ssize_t i = 0, atom = 0;
    *caps = 0;
    for (; i < n && v[i] != '@'; i++) {
        if (v[i] == '.') {
            if (!atom) return 0;
            atom = 0;
        } else if (is_local(v[i])) {
            atom++;
            *caps |= v[i] >= 'A' && v[i] <= 'Z';
        } else return 0;
    }
    if (i == n || !atom) return 0;
    i++;
    Py_ssize_t labels = 0, label_start = i;
    int last_alpha = 1;
    for (;; i++) {
        if (i == n || v[i] == '.') {
            Py_ssize_t len = i - label_start;
            if (!len || v[label_start] == '-' || v[i - 1] == '-') return 0;
            labels++;
            if (i == n) return labels >= 2 && last_alpha && len >= 2;
            label_start = i + 1;
            last_alpha = 1;
        } else if (is_alnum(v[i]) || v[i] == '-') {
            if (!is_alpha(v[i])) last_alpha = 0;
            *caps |= v[i] >= 'A' && v[i] <= 'Z';
        } else return 0;
    }
}

static inline int in_vocab(const Col *col, const unsigned char *v, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < col->n_vocab; k++)
        if (col->vocab_len[k] == n && memcmp(col->vocab[k], v, (size_t)n) == 0) return 1;
    return 0;
}

/* A three-byte UTF-8 space of values.SPACES at p: U+1680, U+2000-U+200A,
 * U+202F, U+205F, U+3000. */
static inline int wide_space(const unsigned char *p) {
    if (p[0] == 0xE1) return p[1] == 0x9A && p[2] == 0x80;
    if (p[0] == 0xE2)
        return (p[1] == 0x80 && ((p[2] >= 0x80 && p[2] <= 0x8A) || p[2] == 0xAF)) || (p[1] == 0x81 && p[2] == 0x9F);
    if (p[0] == 0xE3) return p[1] == 0x80 && p[2] == 0x80;
    return 0;
}

/* The value starts or ends with a space of values.SPACES (tab, space,
 * no-break space, the wide ones): the exact rules trim and report it. */
static inline int edge_space(const unsigned char *v, Py_ssize_t n) {
    if (n == 0) return 0;
    unsigned char a = v[0], z = v[n - 1];
    if (a == ' ' || a == '\t' || z == ' ' || z == '\t') return 1;
    if (a < 0x80 && z < 0x80) return 0;
    if (n >= 2 && ((a == 0xC2 && v[1] == 0xA0) || (v[n - 2] == 0xC2 && z == 0xA0))) return 1;
    return n >= 3 && (wide_space(v) || wide_space(v + n - 3));
}

/* Judge one value of a ruled column; returns whether it is slow. */
static int judge(Col *col, Py_ssize_t rec, const unsigned char *v, Py_ssize_t n, int escaped) {
    switch (col->kind) {
    case K_TEXT:
        if (escaped || edge_space(v, n)) return 1;
        if (col->limit >= 0 && n > col->limit) return 1;
        return col->required && n == 0;
    case K_EMAIL:
        col->hash[rec] = 0;
        if (n == 0) return col->required;
        int caps;
        if (escaped || !email_fast(v, n, &caps) || (col->limit >= 0 && n > col->limit)) return 1;
        if (caps) { /* an ASCII address: its key is the ASCII lower case (str.lower, polars alike) */
            unsigned char low[256];
            if (n > (Py_ssize_t)sizeof low) return 1;
            for (Py_ssize_t k = 0; k < n; k++) low[k] = (v[k] >= 'A' && v[k] <= 'Z') ? (unsigned char)(v[k] + 32) : v[k];
            col->hash[rec] = key_hash(low, n);
        } else col->hash[rec] = key_hash(v, n);
        return 0;
    case K_ID:
    case K_ID_LOWER: {
        int apostrophe = n > 0 && v[0] == '\'';
        int numeric = n > apostrophe, has_e = 0, caps = 0, ascii = 1;
        for (Py_ssize_t k = apostrophe; k < n; k++) {
            if (v[k] < '0' || v[k] > '9') numeric = 0;
            if (v[k] == 'e' || v[k] == 'E') has_e = 1;
            caps |= v[k] >= 'A' && v[k] <= 'Z';
            ascii &= v[k] < 0x80;
        }
        if (col->kind == K_ID_LOWER) {
            /* The key a stored id is matched on (users._directory_ids): ASCII
             * lower case is str.lower's; other ids go the exact way. */
            if (!ascii || n > 256) return 1;
            if (caps) {
                unsigned char low[256];
                for (Py_ssize_t k = 0; k < n; k++) low[k] = (v[k] >= 'A' && v[k] <= 'Z') ? (unsigned char)(v[k] + 32) : v[k];
                col->lower[rec] = key_hash(low, n);
            } else col->lower[rec] = key_hash(v, n);
        }
        col->num[rec] = (uint8_t)numeric;
        col->pad[rec] = (uint8_t)(numeric && v[apostrophe] == '0');
        col->size[rec] = (int32_t)(n - apostrophe);
        col->hash[rec] = key_hash(v, n);
        if (n == 0) return col->required;
        /* values.SCIENTIFIC needs a digit first, once stripped of white space */
        int digit_or_blank = v[0] <= ' ' || v[0] >= 0x80 || (v[0] >= '0' && v[0] <= '9');
        return escaped || apostrophe || edge_space(v, n) || (!numeric && has_e && digit_or_blank);
    }
    case K_BOOL:
        return escaped || !in_vocab(col, v, n);
    case K_DATE_US:
    case K_DATE_GB:
        return n != 0 && (escaped || !date_fast(v, n, col->kind == K_DATE_GB));
    default:
        return n != 0;
    }
}

/* The first comma or LF in a[q:e], or e. SSE2 (x86-64's baseline) looks at
 * 16 bytes at a time; cells are short, so most searches end in the first. */
static inline Py_ssize_t find_delimiter(const unsigned char *a, Py_ssize_t q, Py_ssize_t e) {
#if defined(__SSE2__)
    const __m128i comma = _mm_set1_epi8(','), lf = _mm_set1_epi8('\n');
    for (; q + 16 <= e; q += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(a + q));
        int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, lf)));
        if (m) return q + __builtin_ctz((unsigned)m);
    }
#endif
    while (q < e && a[q] != ',' && a[q] != '\n') q++;
    return q;
}

typedef struct {
    const unsigned char *a;
    Py_ssize_t start, end, width;
    int n_cols;
    Col cols[MAX_COLS];
    signed char col_of[256]; /* cell index -> column, for the first 256 cells */
    int64_t *ends;
    uint32_t *slow;
    Py_ssize_t n;
} Pass;

static void run_pass(Pass *s) {
    const unsigned char *a = s->a;
    Py_ssize_t p = s->start, e = s->end, rec = 0;
    while (p < e) {
        uint32_t slow = 0;
        Py_ssize_t cell = 0;
        int seen[MAX_COLS] = {0};
        for (;;) {
            const unsigned char *v;
            Py_ssize_t vn, next;
            int escaped = 0, last;
            if (p < e && a[p] == '"') {
                Py_ssize_t q = p + 1;
                for (;;) {
                    const unsigned char *r = memchr(a + q, '"', (size_t)(e - q));
                    if (r == NULL) { q = e; break; }
                    q = r - a;
                    if (q + 1 < e && a[q + 1] == '"') { escaped = 1; q += 2; continue; }
                    break;
                }
                v = a + p + 1;
                vn = (q < e ? q : e) - (p + 1);
                next = q < e ? q + 1 : e;
                /* After the closing quote: a delimiter, CRLF, or the end. */
                if (next < e && a[next] == '\r' && next + 1 < e && a[next + 1] == '\n') next++;
                if (next < e && a[next] != ',' && a[next] != '\n') {
                    escaped = 1; /* a stray quote: the csv module decides (the scan sends it there) */
                    while (next < e && a[next] != ',' && a[next] != '\n') next++;
                }
            } else {
                Py_ssize_t q = find_delimiter(a, p, e);
                v = a + p;
                vn = q - p;
                if (q < e && a[q] == '\n' && vn && v[vn - 1] == '\r') vn--;
                next = q;
            }
            if (cell < 256 && s->col_of[cell] >= 0) {
                int j = s->col_of[cell];
                seen[j] = 1;
                if (judge(&s->cols[j], rec, v, vn, escaped)) slow |= 1u << j;
            }
            cell++;
            last = next >= e || a[next] == '\n';
            p = next < e ? next + 1 : e;
            if (last) {
                s->ends[rec] = next < e ? next : e;
                break;
            }
        }
        for (int j = 0; j < s->n_cols; j++)
            if (!seen[j] && judge(&s->cols[j], rec, (const unsigned char *)"", 0, 0)) slow |= 1u << j;
        s->slow[rec++] = slow;
    }
    s->n = rec;
}

static PyObject *new_array(Py_ssize_t n, Py_ssize_t item, void **data) {
    PyObject *o = PyByteArray_FromStringAndSize(NULL, n * item > 0 ? n * item : 1);
    if (o != NULL) *data = PyByteArray_AS_STRING(o);
    return o;
}

static PyObject *cells(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start, end, width;
    PyObject *spec, *result = NULL, *vocab_keep = NULL;
    PyObject *ends = NULL, *slow = NULL, *hashes = NULL, *ids = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnO:cells", &view, &start, &end, &width, &spec)) return NULL;
    Pass s;
    memset(&s, 0, sizeof s);
    memset(s.col_of, -1, sizeof s.col_of);
    if (start < 0 || end > view.len || start > end || width < 1) {
        PyErr_SetString(PyExc_ValueError, "range out of bounds");
        goto done;
    }
    vocab_keep = PySequence_Fast(spec, "cols must be a sequence");
    if (vocab_keep == NULL) goto done;
    s.n_cols = (int)PySequence_Fast_GET_SIZE(vocab_keep);
    if (s.n_cols > MAX_COLS) {
        PyErr_SetString(PyExc_ValueError, "too many columns");
        goto done;
    }
    for (int j = 0; j < s.n_cols; j++) {
        PyObject *vocab;
        Col *c = &s.cols[j];
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(vocab_keep, j), "ninpO", &c->idx, &c->kind, &c->limit,
                              &c->required, &vocab))
            goto done;
        if (c->idx < 0 || c->idx >= 256 || c->idx >= width || s.col_of[c->idx] >= 0) {
            PyErr_SetString(PyExc_ValueError, "bad column index");
            goto done;
        }
        s.col_of[c->idx] = (signed char)j;
        if (vocab != Py_None) {
            Py_ssize_t nv = PyTuple_Check(vocab) ? PyTuple_GET_SIZE(vocab) : -1;
            if (nv < 0 || nv > 64) {
                PyErr_SetString(PyExc_ValueError, "vocabulary: a tuple of at most 64 bytes");
                goto done;
            }
            c->n_vocab = nv;
            for (Py_ssize_t k = 0; k < nv; k++) {
                char *buf;
                if (PyBytes_AsStringAndSize(PyTuple_GET_ITEM(vocab, k), &buf, &c->vocab_len[k]) < 0) goto done;
                c->vocab[k] = buf; /* kept alive by `spec` for the whole call */
            }
        }
    }
    s.a = (const unsigned char *)view.buf;
    s.start = start;
    s.end = end;
    s.width = width;
    /* At most one record per LF, plus one without. */
    Py_ssize_t cap = 1;
    for (const unsigned char *q = s.a + start, *stop = s.a + end; (q = memchr(q, '\n', (size_t)(stop - q))); q++) cap++;
    if ((ends = new_array(cap, 8, (void **)&s.ends)) == NULL || (slow = new_array(cap, 4, (void **)&s.slow)) == NULL ||
        (hashes = PyList_New(s.n_cols)) == NULL || (ids = PyList_New(s.n_cols)) == NULL)
        goto done;
    for (int j = 0; j < s.n_cols; j++) {
        Col *c = &s.cols[j];
        PyObject *h, *id;
        if (c->kind == K_EMAIL || c->kind == K_ID || c->kind == K_ID_LOWER) {
            if ((h = new_array(cap, 8, (void **)&c->hash)) == NULL) goto done;
        } else {
            h = Py_None;
            Py_INCREF(h);
        }
        PyList_SET_ITEM(hashes, j, h); /* the list owns it from here */
        if (c->kind == K_ID || c->kind == K_ID_LOWER) {
            PyObject *num = new_array(cap, 1, (void **)&c->num), *pad = new_array(cap, 1, (void **)&c->pad);
            PyObject *size = new_array(cap, 4, (void **)&c->size), *lower = Py_None;
            if (c->kind == K_ID_LOWER) lower = new_array(cap, 8, (void **)&c->lower);
            else Py_INCREF(lower);
            if (!num || !pad || !size || !lower) {
                Py_XDECREF(num);
                Py_XDECREF(pad);
                Py_XDECREF(size);
                Py_XDECREF(lower);
                goto done;
            }
            /* "N" hands the four over, on failure too */
            if ((id = Py_BuildValue("(NNNN)", num, pad, size, lower)) == NULL) goto done;
        } else {
            id = Py_None;
            Py_INCREF(id);
        }
        PyList_SET_ITEM(ids, j, id);
    }
    Py_BEGIN_ALLOW_THREADS
    run_pass(&s);
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("{s:n,s:O,s:O,s:O,s:O}", "n", s.n, "ends", ends, "slow", slow, "hashes", hashes, "ids", ids);
done:
    Py_XDECREF(ends);
    Py_XDECREF(slow);
    Py_XDECREF(hashes);
    Py_XDECREF(ids);
    Py_XDECREF(vocab_keep);
    PyBuffer_Release(&view);
    return result;
}

/* hash_strings(values) -> bytearray of uint64: the key hash of each str's UTF-8. */
static PyObject *hash_strings(PyObject *self, PyObject *arg) {
    (void)self;
    PyObject *seq = PySequence_Fast(arg, "hash_strings takes a sequence of str");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    uint64_t *out;
    PyObject *result = new_array(n, 8, (void **)&out);
    if (result == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        const char *utf8 = PyUnicode_AsUTF8AndSize(item, &len);
        if (utf8 == NULL) {
            /* A lone surrogate (a directory value from JSON's "\ud800"): hash its
             * surrogatepass bytes; no decoded file value can equal it. */
            if (!PyUnicode_Check(item) || !PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) goto fail;
            PyErr_Clear();
            PyObject *raw = PyUnicode_AsEncodedString(item, "utf-8", "surrogatepass");
            if (raw == NULL) goto fail;
            out[i] = key_hash((const unsigned char *)PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw));
            Py_DECREF(raw);
            continue;
        }
        out[i] = key_hash((const unsigned char *)utf8, len);
    }
    if (PyByteArray_Resize(result, n * 8) < 0) goto fail;
    Py_DECREF(seq);
    return result;
fail:
    Py_XDECREF(result);
    Py_DECREF(seq);
    return NULL;
}

/* Whether a[i:stop] holds an odd number of `"` (SSE2: 16 bytes at a time). */
static unsigned quote_parity(const unsigned char *a, Py_ssize_t i, Py_ssize_t stop) {
    unsigned parity = 0;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    for (; i + 16 <= stop; i += 16)
        parity ^= (unsigned)__builtin_popcount(
            (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(a + i)), quote)));
#endif
    for (; i < stop; i++) parity ^= a[i] == '"';
    return parity & 1;
}

/* split(text, start, parts) -> [(begin, end), ...]: text[start:] cut into
 * about `parts` runs of whole records, at LFs outside quotes (an even number
 * of `"` before them, RFC 4180), the GIL released. */
static PyObject *split(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start, parts;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nn:split", &view, &start, &parts)) return NULL;
    const unsigned char *a = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;
    if (start < 0 || start > n || parts < 1 || parts > 1000000) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "start or parts out of range");
        return NULL;
    }
    Py_ssize_t *cuts = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(parts + 1));
    if (cuts == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    Py_ssize_t n_cuts = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t step = (n - start) / parts > 0 ? (n - start) / parts : 1;
    Py_ssize_t begin = start, counted = start;
    unsigned parity = 0;
    for (Py_ssize_t k = 1; k < parts; k++) {
        Py_ssize_t from = start + k * step > begin ? start + k * step : begin, nl = -1;
        while (from < n) {
            const unsigned char *hit = memchr(a + from, '\n', (size_t)(n - from));
            if (hit == NULL) break;
            Py_ssize_t at = hit - a;
            parity ^= quote_parity(a, counted, at);
            counted = at;
            if (!parity) { nl = at; break; }
            from = at + 1;
        }
        if (nl < 0 || nl + 1 >= n) break;
        cuts[n_cuts++] = nl + 1;
        begin = nl + 1;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyObject *out = PyList_New(n_cuts + 1);
    Py_ssize_t prev = start;
    for (Py_ssize_t i = 0; out != NULL && i <= n_cuts; i++) {
        Py_ssize_t stop = i < n_cuts ? cuts[i] : n;
        PyObject *span = Py_BuildValue("(nn)", prev, stop);
        if (span == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, span);
        prev = stop;
    }
    PyMem_Free(cuts);
    return out;
}

/* values(cells, cols, limit) -> dict: the values ingest applies from one record
 * (engine.py `rows`), as values.normaliser's functions give them, in the
 * order of `cols`, a tuple of (cell index, name, kind, required, made, read)
 * per column. A cell that is "plain" for its kind is its own value, so no
 * Python runs for it: ASCII, not empty, no whitespace at either end (str.strip's
 * ASCII set, which holds values.SPACES' ASCII ones), and for
 *   PLAIN_TEXT  (free text, email, mobile, custom keys) nothing more;
 *   PLAIN_ID    no leading apostrophe;
 *   PLAIN_BOOL  exactly "true" or "false";
 *   NEVER       no non-empty cell; nor of PLAIN_DATE_MDY or _DMY (dates).
 * An empty cell is "" (None when the field is required: not applied). A plain
 * cell already in `made` (the normaliser's memory of what it made of a cell)
 * is that value, one object for a repeated cell; else the cell, remembered
 * while `made` holds fewer than `limit` (values.SHARED_VALUES). Any other cell goes to `read`,
 * the column's normaliser (None: not applied). A property test holds this to
 * the normalisers, cell for cell. */
enum { PLAIN_TEXT = 0, PLAIN_ID = 1, PLAIN_BOOL = 2, NEVER = 3 };

static int ascii_space(Py_UCS1 c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }

static int plain(PyObject *cell, long kind) {
    if (!PyUnicode_IS_ASCII(cell)) return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(cell);
    const Py_UCS1 *c = PyUnicode_1BYTE_DATA(cell);
    if (n == 0 || ascii_space(c[0]) || ascii_space(c[n - 1])) return 0;
    switch (kind) {
    case PLAIN_TEXT: return 1;
    case PLAIN_ID: return c[0] != '\'';
    case PLAIN_BOOL: return (n == 4 && memcmp(c, "true", 4) == 0) || (n == 5 && memcmp(c, "false", 5) == 0);
    default: return 0; /* NEVER, or a kind this pass does not know: the normaliser decides */
    }
}

static PyObject *values(PyObject *self, PyObject *args) {
    PyObject *cells, *cols;
    Py_ssize_t limit;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO!n:values", &cells, &PyTuple_Type, &cols, &limit)) return NULL;
    /* A tuple of the cells: `read` is Python and could change a list under us. */
    PyObject *seq = PySequence_Tuple(cells);
    if (seq == NULL) return NULL;
    Py_ssize_t width = PyTuple_GET_SIZE(seq);
    PyObject **items = &PyTuple_GET_ITEM(seq, 0);
    PyObject *out = PyDict_New();
    if (out == NULL) goto fail;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(cols); k++) {
        PyObject *col = PyTuple_GET_ITEM(cols, k);
        if (!PyTuple_Check(col) || PyTuple_GET_SIZE(col) != 6) {
            PyErr_SetString(PyExc_TypeError, "values: each column is (index, name, kind, required, made, read)");
            goto fail;
        }
        Py_ssize_t index = PyLong_AsSsize_t(PyTuple_GET_ITEM(col, 0));
        if (index == -1 && PyErr_Occurred()) goto fail;
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(col, 2));
        if (kind == -1 && PyErr_Occurred()) goto fail;
        PyObject *name = PyTuple_GET_ITEM(col, 1), *made = PyTuple_GET_ITEM(col, 4);
        if (index < 0 || index >= width || !PyUnicode_Check(items[index]) || !PyDict_Check(made)) {
            PyErr_SetString(PyExc_TypeError, "values: a cell is missing or not a str, or made is not a dict");
            goto fail;
        }
        PyObject *cell = items[index], *value;
        if (PyUnicode_GET_LENGTH(cell) == 0) {
            int required = PyObject_IsTrue(PyTuple_GET_ITEM(col, 3));
            if (required < 0) goto fail;
            if (required) continue; /* not applied */
            value = Py_NewRef(cell);
        } else if (plain(cell, kind)) {
            value = PyDict_GetItemWithError(made, cell);
            if (value == Py_None) {
                continue; /* the normaliser said: not applied (never for a plain cell; as in Python) */
            } else if (value != NULL) {
                Py_INCREF(value);
            } else if (PyErr_Occurred()) {
                goto fail;
            } else {
                value = Py_NewRef(cell);
                if (PyDict_GET_SIZE(made) < limit && PyDict_SetItem(made, cell, cell) < 0) {
                    Py_DECREF(value);
                    goto fail;
                }
            }
        } else {
            value = PyObject_CallOneArg(PyTuple_GET_ITEM(col, 5), cell);
            if (value == NULL) goto fail;
            if (value == Py_None) {
                Py_DECREF(value);
                continue;
            }
        }
        int bad = PyDict_SetItem(out, name, value);
        Py_DECREF(value);
        if (bad < 0) goto fail;
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_XDECREF(out);
    Py_DECREF(seq);
    return NULL;
}

/* The row as the apply writes it (`_rows.c`, the same module). */
PyObject *bw_fields_text(PyObject *self, PyObject *args);
PyObject *bw_quick_row(PyObject *self, PyObject *args);
PyObject *bw_quick_record(PyObject *self, PyObject *args);
PyObject *bw_quick_records(PyObject *self, PyObject *args);
PyObject *bw_plain_rows(PyObject *self, PyObject *args);
/* A change's history (`_diff.c`). */
PyObject *bw_history_texts(PyObject *self, PyObject *args);
PyObject *bw_values_only(PyObject *self, PyObject *args);

static PyMethodDef methods[] = {
    {"split", split, METH_VARARGS,
     "split(text, start, parts) -> list of (begin, end): runs of whole records (GIL released)."},
    {"cells", cells, METH_VARARGS,
     "cells(text, start, end, width, cols) -> dict: record ends, per-record slow masks, key hashes and id "
     "facts of the ruled columns (GIL released)."},
    {"values", values, METH_VARARGS,
     "values(cells, cols, limit) -> dict: the values ingest applies from one record, plain cells as they are "
     "and the others through their column's normaliser."},
    {"fields_text", bw_fields_text, METH_VARARGS,
     "fields_text(values, skip, last) -> str | None: json.dumps of the fields a row gives a new user "
     "(None when a name or value is not a str)."},
    {"quick_row", bw_quick_row, METH_VARARGS,
     "quick_row(i, row, key, values, rule) -> tuple | None | NotImplemented: a row's quick row "
     "(ingest/quick.py)."},
    {"quick_record", bw_quick_record, METH_VARARGS,
     "quick_record(k, text, start, end, rec, spec) -> tuple | None | NotImplemented: quick_row's answer for "
     "a record read from its bytes."},
    {"quick_records", bw_quick_records, METH_VARARGS,
     "quick_records(text, starts, ends, recs, k, stop, spec, out, keys) -> int: quick_record for a batch's "
     "records from k, appended to out, up to the first it does not read."},
    {"plain_rows", bw_plain_rows, METH_VARARGS,
     "plain_rows(text, starts, ends, recs, k, stop, uid, spec, tail, out, keys) -> int: the w_pend rows of a "
     "batch's records from k (users created from uid on), appended to out, up to the first not read."},
    {"history_texts", bw_history_texts, METH_VARARGS,
     "history_texts(old, new) -> (before, after) | NotImplemented: the history's JSON texts of a change "
     "from the JSON texts of the fields (ingest/directory.py `history_texts`)."},
    {"values_only", bw_values_only, METH_VARARGS,
     "values_only(old, new, names) -> None | (equal, picked) | NotImplemented: whether a row changes only "
     "values of its user, from the JSON texts of their fields (ingest/valuechange.py `read_fields`)."},
    {"hash_strings", hash_strings, METH_O, "hash_strings(values) -> bytearray: uint64 key hash of each str."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ccells", "The value fast path in C (see structure.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__ccells(void) { return PyModule_Create(&module); }
