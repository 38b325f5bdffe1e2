/* Dates as values.read_date (dates.py) reads the common ones, for the parts
 * of `_ccells` that read them: _cells.c (whether the exact rule has
 * anything to say of a cell) and _rows.c (a deactivation date read straight
 * from a record's bytes, as ISO text). Static: each file that includes it
 * has its own copy, and the module exports only its entry points. */
#ifndef BW_DATE_H
#define BW_DATE_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static inline int days_in(int y, int m) {
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return days[m - 1];
}

static inline int real_date(int y, int m, int d) { return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= days_in(y, m); }

/* ASCII digits of v[*i..] up to the next '/' or the end (at most 4): their value, or -1. */
static inline int date_number(const unsigned char *v, Py_ssize_t n, Py_ssize_t *i, int *digits) {
    int x = 0;
    *digits = 0;
    while (*i < n && v[*i] != '/') {
        if (v[*i] < '0' || v[*i] > '9' || *digits >= 4) return -1;
        x = x * 10 + (v[*i] - '0');
        (*i)++;
        (*digits)++;
    }
    return *digits ? x : -1;
}

/* v[0:n] as a/b/c (read_date's _SLASH, ASCII digits only, b of at most two):
 * 1 with the three numbers and a's and c's digit counts, else 0. */
static inline int date_parts(const unsigned char *v, Py_ssize_t n, int *a, int *b, int *c, int *la, int *lc) {
    Py_ssize_t i = 0;
    int lb;
    *a = date_number(v, n, &i, la);
    if (*a < 0 || i == n) return 0;
    i++;
    *b = date_number(v, n, &i, &lb);
    if (*b < 0 || i == n || lb > 2) return 0;
    i++;
    *c = date_number(v, n, &i, lc);
    return *c >= 0 && i == n;
}

/* read_date finds nothing to say about this value (gb: the tenant reads day
 * first): yyyy/m/d, or d/d/yyyy that reads as one real date in the tenant's
 * order and no other (or the same either way). */
static inline int date_fast(const unsigned char *v, Py_ssize_t n, int gb) {
    int a, b, c, la, lc;
    if (!date_parts(v, n, &a, &b, &c, &la, &lc)) return 0;
    if (la == 4 && lc <= 2) return real_date(a, b, c);
    if (la > 2 || lc != 4) return 0;
    int us = real_date(c, a, b), uk = real_date(c, b, a);
    int chosen = gb ? uk : us, other = gb ? us : uk;
    return chosen && (!other || a == b);
}

/* read_date(v, locale).iso into iso[0:10] (YYYY-MM-DD) where v is yyyy/m/d
 * or d/d/yyyy and a real date in the tenant's order (gb: day first), the
 * date read_date then chooses (with a finding or not: an ambiguous date is
 * read in the tenant's order); 0 for any other value (one of those read
 * only in the other order, not at all, or otherwise: read_date's to read). */
static inline int date_iso(const unsigned char *v, Py_ssize_t n, int gb, char *iso) {
    int a, b, c, la, lc, y, m, d;
    if (!date_parts(v, n, &a, &b, &c, &la, &lc)) return 0;
    if (la == 4 && lc <= 2) {
        y = a, m = b, d = c;
    } else if (la <= 2 && lc == 4) {
        y = c, m = gb ? b : a, d = gb ? a : b;
    } else {
        return 0;
    }
    if (!real_date(y, m, d)) return 0;
    const char digits[] = "0123456789";
    char out[10] = {digits[y / 1000], digits[y / 100 % 10], digits[y / 10 % 10], digits[y % 10], '-',
                    digits[m / 10], digits[m % 10], '-', digits[d / 10], digits[d % 10]};
    memcpy(iso, out, 10);
    return 1;
}
#endif
