/* The CSV structure scan in one pass over the bytes (docs/benchmarks.md).
 *
 * scan(text, start) walks text[start:] once with the quote state of RFC 4180:
 * a comma or newline is structural iff an even number of `"` precede it. Per
 * record it gives the end offset (the LF, or len(text) for a last record
 * without one), the structural commas, and whether the record is blank (only
 * delimiters), empty, or short enough to be all `""` cells; per file the
 * CRLF record ends, whether a bare CR occurs (the file then goes to the csv
 * module), the first stray quotes and the quote that never closes.
 * structure.py wraps the buffers with numpy.frombuffer.
 *
 * 64 bytes at a time, the way simdjson finds structure: one bit mask per
 * special byte (comma, LF, CR, quote), the inside-quotes mask as the prefix
 * XOR of the quote mask, then only the structural newlines and the quotes
 * are visited one by one; commas are counted with popcount. SSE2 builds the
 * masks on x86-64 (its baseline); other machines use a portable loop.
 *
 * The pass releases the GIL, so it overlaps polars reading the same bytes.
 * Offsets and counts are Py_ssize_t / int64, so files over 2 GB are fine.
 * The outputs are bytearrays, grown by doubling with the GIL held again;
 * pages never written are never resident.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_STRAY 100

typedef struct {
    PyObject *obj; /* a bytearray */
    char *data;
    Py_ssize_t cap; /* in items */
    Py_ssize_t len;
    Py_ssize_t item;
} Out;

static int out_init(Out *o, Py_ssize_t cap, Py_ssize_t item) {
    o->item = item;
    o->cap = cap < 128 ? 128 : cap;
    o->len = 0;
    o->obj = PyByteArray_FromStringAndSize(NULL, o->cap * item);
    if (o->obj == NULL) return -1;
    o->data = PyByteArray_AS_STRING(o->obj);
    return 0;
}

/* Room for `more` items. Needs the GIL. */
static int out_reserve(Out *o, Py_ssize_t more) {
    while (o->len + more > o->cap) {
        if (o->cap > PY_SSIZE_T_MAX / 2 / o->item) {
            PyErr_NoMemory();
            return -1;
        }
        if (PyByteArray_Resize(o->obj, o->cap * 2 * o->item) < 0) return -1;
        o->cap *= 2;
        o->data = PyByteArray_AS_STRING(o->obj);
    }
    return 0;
}

/* Needs the GIL. */
static int out_finish(Out *o) { return PyByteArray_Resize(o->obj, o->len * o->item); }

typedef struct {
    uint64_t comma, lf, cr, quote;
} Masks;

static inline void masks64(const unsigned char *b, Masks *m) {
#if defined(__SSE2__)
    const __m128i vc = _mm_set1_epi8(','), vl = _mm_set1_epi8('\n'), vr = _mm_set1_epi8('\r'),
                  vq = _mm_set1_epi8('"');
    m->comma = m->lf = m->cr = m->quote = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + 16 * k));
        m->comma |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vc)) << (16 * k);
        m->lf |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vl)) << (16 * k);
        m->cr |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vr)) << (16 * k);
        m->quote |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vq)) << (16 * k);
    }
#else
    uint64_t c = 0, l = 0, r = 0, q = 0;
    for (int i = 0; i < 64; i++) {
        c |= (uint64_t)(b[i] == ',') << i;
        l |= (uint64_t)(b[i] == '\n') << i;
        r |= (uint64_t)(b[i] == '\r') << i;
        q |= (uint64_t)(b[i] == '"') << i;
    }
    m->comma = c, m->lf = l, m->cr = r, m->quote = q;
#endif
}

/* Bit i: the parity of the set bits 0..i (inside a quoted span after byte i). */
static inline uint64_t prefix_xor(uint64_t x) {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}

static inline int sep_before_open(unsigned char c) { return c == ',' || c == '\n' || c == '"'; }
static inline int sep_after_close(unsigned char c) { return c == ',' || c == '\n' || c == '\r' || c == '"'; }

typedef struct {
    Out ends, commas, blank, empty, maybe;
} Records;

/* One record ends at `end` (exclusive) with `n_commas` structural commas;
 * `strip_cr`: a CR before `end` belongs to the line ending. Room was reserved. */
static inline int64_t add_record(Records *r, const unsigned char *a, Py_ssize_t rec_start, Py_ssize_t end,
                                 int64_t n_commas, int strip_cr) {
    Py_ssize_t content = end - rec_start;
    int64_t crlf = 0;
    if (strip_cr && content > 0 && a[end - 1] == '\r') {
        content--;
        crlf = 1;
    }
    int is_blank = content == n_commas;
    Py_ssize_t rec = r->ends.len;
    ((int64_t *)r->ends.data)[r->ends.len++] = end;
    ((int64_t *)r->commas.data)[r->commas.len++] = n_commas;
    r->blank.data[r->blank.len++] = (char)is_blank;
    r->empty.data[r->empty.len++] = (char)(content == 0);
    if (!is_blank && content - n_commas <= 2 * (n_commas + 1)) ((int64_t *)r->maybe.data)[r->maybe.len++] = rec;
    return crlf;
}

static int reserve_block(Records *r) { /* a block of 64 bytes ends at most 64 records, +1 for the tail */
    return out_reserve(&r->ends, 65) < 0 || out_reserve(&r->commas, 65) < 0 || out_reserve(&r->blank, 65) < 0 ||
                   out_reserve(&r->empty, 65) < 0 || out_reserve(&r->maybe, 65) < 0
               ? -1
               : 0;
}

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*n:scan", &view, &start)) return NULL;
    const unsigned char *a = (const unsigned char *)view.buf;
    const Py_ssize_t n = view.len;
    if (start < 0 || start > n) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "start out of range");
        return NULL;
    }
    Records r;
    r.ends.obj = r.commas.obj = r.blank.obj = r.empty.obj = r.maybe.obj = NULL;
    PyObject *stray = NULL, *result = NULL;
    /* A first guess at the record count; growing is cheap and rare. */
    Py_ssize_t guess = (n - start) / 64 + 16;
    if (out_init(&r.ends, guess, 8) < 0 || out_init(&r.commas, guess, 8) < 0 || out_init(&r.blank, guess, 1) < 0 ||
        out_init(&r.empty, guess, 1) < 0 || out_init(&r.maybe, 1024, 8) < 0 || reserve_block(&r) < 0)
        goto fail;
    stray = PyList_New(0);
    if (stray == NULL) goto fail;

    Py_ssize_t stray_at[MAX_STRAY];
    int n_stray = 0, failed = 0;
    int64_t cr_total = 0, crlf_all = 0, crlf = 0, n_commas = 0;
    Py_ssize_t last_open = -1, rec_start = start;
    uint64_t inq = 0;      /* all ones while inside a quoted span */
    uint64_t cr_carry = 0; /* the byte before this block is a CR of the body */
    /* The byte before the first: an opening quote at offset 0 looks at the
     * last byte, as Python's a[-1] did. */
    uint64_t open_ok_carry = n > 0 ? (uint64_t)sep_before_open(a[start > 0 ? start - 1 : n - 1]) : 0;
    unsigned char tail[64];

    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t base = start; base < n; base += 64) {
        if (r.ends.len + 65 > r.ends.cap || r.maybe.len + 65 > r.maybe.cap) {
            Py_BLOCK_THREADS
            failed = reserve_block(&r);
            Py_UNBLOCK_THREADS
            if (failed) break;
        }
        const Py_ssize_t len = n - base;
        const unsigned char *blk = a + base;
        if (len < 64) { /* the last bytes, zero-padded: NUL is no special byte */
            memset(tail, 0, sizeof tail);
            memcpy(tail, blk, (size_t)len);
            blk = tail;
        }
        Masks m;
        masks64(blk, &m);
        const uint64_t inside = prefix_xor(m.quote) ^ inq;
        inq = (uint64_t)0 - (inside >> 63);
        cr_total += __builtin_popcountll(m.cr);
        crlf_all += __builtin_popcountll(m.lf & ((m.cr << 1) | cr_carry));
        cr_carry = m.cr >> 63;
        if (m.quote) {
            /* An opening quote must start a field (or follow a closing one: `""`);
             * a closing quote must end it (or be doubled). */
            uint64_t open_ok = ((m.comma | m.lf | m.quote) << 1) | open_ok_carry;
            uint64_t close_ok = (m.comma | m.lf | m.cr | m.quote) >> 1;
            if (len > 64)
                close_ok |= (uint64_t)sep_after_close(a[base + 64]) << 63;
            else
                close_ok |= (uint64_t)1 << (len - 1); /* nothing follows the last byte */
            const uint64_t opening = m.quote & inside, closing = m.quote & ~inside;
            uint64_t bad = (opening & ~open_ok) | (closing & ~close_ok);
            while (bad && n_stray < MAX_STRAY) {
                stray_at[n_stray++] = base + __builtin_ctzll(bad);
                bad &= bad - 1;
            }
            if (opening) last_open = base + 63 - __builtin_clzll(opening);
        }
        open_ok_carry = ((m.comma | m.lf | m.quote) >> 63) & 1;
        uint64_t sc = m.comma & ~inside; /* structural commas */
        uint64_t sl = m.lf & ~inside;    /* record ends */
        while (sl) {
            const int b = __builtin_ctzll(sl);
            const uint64_t below = ((uint64_t)1 << b) - 1;
            n_commas += __builtin_popcountll(sc & below);
            sc &= ~below;
            crlf += add_record(&r, a, rec_start, base + b, n_commas, 1);
            n_commas = 0;
            rec_start = base + b + 1;
            sl &= sl - 1;
        }
        n_commas += __builtin_popcountll(sc);
    }
    Py_END_ALLOW_THREADS
    if (failed) goto fail;

    if (rec_start < n) /* a last record without a final newline: no CR is stripped */
        add_record(&r, a, rec_start, n, n_commas, 0);
    for (int i = 0; i < n_stray; i++) {
        PyObject *v = PyLong_FromSsize_t(stray_at[i]);
        if (v == NULL || PyList_Append(stray, v) < 0) {
            Py_XDECREF(v);
            goto fail;
        }
        Py_DECREF(v);
    }
    if (out_finish(&r.ends) < 0 || out_finish(&r.commas) < 0 || out_finish(&r.blank) < 0 ||
        out_finish(&r.empty) < 0 || out_finish(&r.maybe) < 0)
        goto fail;
    PyObject *unclosed = inq ? PyLong_FromSsize_t(last_open) : Py_NewRef(Py_None);
    if (unclosed == NULL) goto fail;
    result = Py_BuildValue("{sNsNsNsNsNsLsNsNsO}", "ends", r.ends.obj, "commas", r.commas.obj, "blank",
                           r.blank.obj, "empty", r.empty.obj, "maybe_blank", r.maybe.obj, "crlf", (long long)crlf,
                           "unclosed_at", unclosed, "stray_at", stray, "bare_cr",
                           cr_total != crlf_all ? Py_True : Py_False);
    /* "N" took the references, even on failure. */
    PyBuffer_Release(&view);
    return result;

fail:
    Py_XDECREF(r.ends.obj);
    Py_XDECREF(r.commas.obj);
    Py_XDECREF(r.blank.obj);
    Py_XDECREF(r.empty.obj);
    Py_XDECREF(r.maybe.obj);
    Py_XDECREF(stray);
    PyBuffer_Release(&view);
    return NULL;
}

/* utf8_valid(data) -> bool: strict UTF-8 exactly as Python's decoder judges
 * it (Unicode Table 3-7: no overlong forms, no surrogates, nothing above
 * U+10FFFF), without the GIL, so the check of a big file overlaps the other
 * work instead of stopping every Python thread the way bytes.decode does.
 * ASCII runs are skipped 8 bytes at a time. */
static int utf8_valid_bytes(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) { i += 8; continue; }
        }
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        Py_ssize_t len;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;      /* overlong */
            else if (c == 0xED) hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;      /* overlong */
            else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
        } else return 0;
        if (i + len > n) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (Py_ssize_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        i += len;
    }
    return 1;
}

static PyObject *utf8_valid(PyObject *self, PyObject *args) {
    Py_buffer view;
    int ok;
    if (!PyArg_ParseTuple(args, "y*:utf8_valid", &view)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    ok = utf8_valid_bytes((const unsigned char *)view.buf, view.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyBool_FromLong(ok);
}

/* Where a formula-looking cell may start (formulas.py `candidate_leaders`):
 * every p >= start with text[p] a comma, LF or CR followed by a leader
 * (= @ TAB + -, or a CR with no LF after it), itself after an optional
 * quote. A superset of where formulas.py's pattern matches; the pattern
 * decides at each. 16 positions at a time with SSE2 (loads at p .. p+3),
 * the tail and other machines one byte at a time. GIL released; int64
 * offsets in a bytearray. */
static inline int is_sep(unsigned char c) { return c == ',' || c == '\n' || c == '\r'; }
static inline int is_leader_at(const unsigned char *b, Py_ssize_t q, Py_ssize_t n) {
    if (q >= n) return 0;
    unsigned char c = b[q];
    if (c == '=' || c == '@' || c == '\t' || c == '+' || c == '-') return 1;
    return c == '\r' && (q + 1 >= n || b[q + 1] != '\n');
}
static inline int starts_at(const unsigned char *b, Py_ssize_t p, Py_ssize_t n) {
    if (!is_sep(b[p])) return 0;
    if (is_leader_at(b, p + 1, n)) return 1;
    return p + 1 < n && b[p + 1] == '"' && is_leader_at(b, p + 2, n);
}

typedef struct {
    int64_t *at;
    Py_ssize_t len, cap;
    int failed;
} Starts;

static void starts_add(Starts *s, Py_ssize_t p) { /* no GIL: the raw allocator */
    if (s->failed) return;
    if (s->len == s->cap) {
        Py_ssize_t cap = s->cap ? s->cap * 2 : 256;
        int64_t *grown = PyMem_RawRealloc(s->at, (size_t)cap * sizeof(int64_t));
        if (grown == NULL) {
            s->failed = 1;
            return;
        }
        s->at = grown;
        s->cap = cap;
    }
    s->at[s->len++] = (int64_t)p;
}

#if defined(__SSE2__)
static inline __m128i leader_mask(__m128i v, __m128i next) {
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('=')), _mm_cmpeq_epi8(v, _mm_set1_epi8('@'))),
                             _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t')),
                                          _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('+')),
                                                       _mm_cmpeq_epi8(v, _mm_set1_epi8('-')))));
    __m128i bare_cr = _mm_andnot_si128(_mm_cmpeq_epi8(next, _mm_set1_epi8('\n')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\r')));
    return _mm_or_si128(m, bare_cr);
}
#endif

static void find_starts(const unsigned char *b, Py_ssize_t start, Py_ssize_t n, Starts *s) {
    Py_ssize_t p = start;
#if defined(__SSE2__)
    for (; n - p >= 19; p += 16) { /* p <= n: no overflow */
        __m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)(b + p));
        __m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(b + p + 1));
        __m128i v2 = _mm_loadu_si128((const __m128i *)(const void *)(b + p + 2));
        __m128i v3 = _mm_loadu_si128((const __m128i *)(const void *)(b + p + 3));
        __m128i sep = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v0, _mm_set1_epi8(',')),
                                                _mm_cmpeq_epi8(v0, _mm_set1_epi8('\n'))),
                                   _mm_cmpeq_epi8(v0, _mm_set1_epi8('\r')));
        __m128i quoted = _mm_and_si128(_mm_cmpeq_epi8(v1, _mm_set1_epi8('"')), leader_mask(v2, v3));
        uint32_t hits = (uint32_t)_mm_movemask_epi8(_mm_and_si128(sep, _mm_or_si128(leader_mask(v1, v2), quoted)));
        while (hits) {
            starts_add(s, p + __builtin_ctz(hits));
            hits &= hits - 1;
        }
    }
#endif
    for (; p < n; p++)
        if (starts_at(b, p, n)) starts_add(s, p);
}

static PyObject *leaders(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start;
    Starts s = {NULL, 0, 0, 0};
    if (!PyArg_ParseTuple(args, "y*n:leaders", &view, &start)) return NULL;
    if (start < 0 || start > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "leaders: start out of range");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    find_starts((const unsigned char *)view.buf, start, view.len, &s);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyObject *out = s.failed ? PyErr_NoMemory()
                             : PyByteArray_FromStringAndSize((const char *)s.at, s.len * (Py_ssize_t)sizeof(int64_t));
    PyMem_RawFree(s.at);
    return out;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(text, start) -> dict: record ends, structural commas, blank/empty/maybe-blank records, "
     "CRLF count, unclosed and stray quotes, bare CR (one pass, GIL released)."},
    {"leaders", leaders, METH_VARARGS,
     "leaders(text, start) -> bytearray: int64 offsets where a formula-looking cell may start "
     "(a comma, LF or CR, then an optional quote and a leader; GIL released)."},
    {"utf8_valid", utf8_valid, METH_VARARGS,
     "utf8_valid(data) -> bool: strict UTF-8, as bytes.decode('utf-8') judges it (GIL released)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cscan", "The CSV structure scan in C (see structure.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__cscan(void) { return PyModule_Create(&module); }
