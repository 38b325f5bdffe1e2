"""The pure stand-ins of the C accelerators (`accel.py` chooses): numpy and
the standard library only, so the validator works where nothing could be
compiled, with byte-identical reports.

- `scan`: the structure scan of `_scan.c`, with numpy, chunk by chunk (the
  implementation `_scan.c` replaced; same outputs);
- `utf8_valid`: `_scan.c`'s strict UTF-8 check, by Python's own decoder;
- `split`: `_cells.c`'s split points, by `bytes.find` and `bytes.count`;
- `hash_series` / `hash_list`: the key hashes of `_cells.c`'s `hash_strings`,
  by polars. They are other numbers than the C hash; hashes never reach a
  report and one validation uses one engine (`accel.pinned`), so only their
  equalities matter: equal strings meet, and the empty key is 0.

There is no stand-in for `_cells.c`'s fast path: without it every record
goes through the exact polars rules, which the fast path only skips.
"""

from __future__ import annotations

import codecs
import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

_CHUNK = 1 << 19  # bytes per step of the scan: fits in L2 with its temporaries
_NL, _CR, _COMMA, _QUOTE = 0x0A, 0x0D, 0x2C, 0x22
_MAX_STRAY = 100  # as _scan.c: the first stray quotes only


def scan(text: bytes, start: int) -> dict[str, Any]:
    """Records of text[start:] by the quote-parity rule, as `_cscan.scan` gives them.

    Returns the fields of `structure._Scan` (but `start0`): record ends and
    structural commas, blank / empty / maybe-blank records, CRLF ends, stray
    and unclosed quotes, and whether the csv module must read the file.
    Per chunk: newline and quote positions (sparse), and a prefix count of
    commas at 8-byte granularity (the comma mask seen as 64-bit words, each
    counted by one multiply), so the commas between any two offsets cost two
    lookups; no comma positions are built. Commas inside quoted spans are
    counted the same way and subtracted from their record.
    """
    import numpy as np

    if not 0 <= start <= len(text):
        raise ValueError("start out of range")  # as _scan.c
    a = np.frombuffer(text, dtype=np.uint8)
    n = len(a)
    has_quotes = text.find(b'"', start) != -1
    has_cr = text.find(b"\r", start) != -1
    cr_total = 0
    buf = np.empty(_CHUNK, dtype=bool)
    cbuf = np.zeros(_CHUNK + 16, dtype=np.uint8)  # the comma mask, zero-padded to whole words
    cum = np.zeros(_CHUNK // 8 + 3, dtype=np.int64)  # commas before each word of the chunk
    ends_parts: list[np.ndarray[Any, Any]] = []
    count_parts: list[np.ndarray[Any, Any]] = []
    stray: list[int] = []
    carry = 0  # structural commas after the last structural newline so far
    quotes_before = 0
    crlf_all = 0
    last_open = -1
    none = np.zeros(0, dtype=np.int64)
    for s in range(start, n, _CHUNK):
        ch = a[s : s + _CHUNK]
        m = len(ch)
        b = buf[:m]
        if has_cr:
            cr_total += int(np.count_nonzero(np.equal(ch, _CR, out=b)))
        nl = np.flatnonzero(np.equal(ch, _NL, out=b))
        if len(nl) and has_cr:
            g = nl[nl + s > start] + s  # a CR before the body is not its own (as _scan.c)
            crlf_all += int(np.count_nonzero(a[g - 1] == _CR))
        inside = quotes_before & 1  # the chunk starts inside a quoted field
        q = np.flatnonzero(np.equal(ch, _QUOTE, out=b)) if has_quotes else none
        if len(q):
            nl = nl[((quotes_before + np.searchsorted(q, nl)) & 1) == 0]
        elif inside:
            nl = nl[:0]
        words = (m + 7) // 8
        np.equal(ch, _COMMA, out=cbuf[:m].view(bool))
        cbuf[m : words * 8 + 8] = 0
        w = cbuf[: words * 8 + 8].view("<u8")  # one spare zero word; byte j of a word is offset 8k+j
        np.cumsum(_ones(w), out=cum[1 : words + 2])

        def before(p: np.ndarray[Any, Any], w: Any = w) -> np.ndarray[Any, Any]:
            """Commas in ch[:p] for each local offset p (0 <= p <= m)."""
            k = p >> 3
            low = (np.uint64(1) << ((p & 7) * 8).astype(np.uint64)) - np.uint64(1)
            out: np.ndarray[Any, Any] = cum[k] + _ones(w[k] & low)
            return out

        seg = np.diff(before(np.concatenate(([0], nl + 1, [m]))))
        if len(q) or inside:
            opening = ((quotes_before + np.arange(len(q))) & 1) == 0
            open_idx = np.flatnonzero(opening)
            nxt_idx = open_idx + 1
            span_s = q[open_idx] + 1
            span_e = np.where(nxt_idx < len(q), q[np.minimum(nxt_idx, max(len(q) - 1, 0))], m)
            if inside:
                span_s = np.concatenate(([0], span_s))
                span_e = np.concatenate(([q[0] if len(q) else m], span_e))
            if len(span_s):
                quoted = before(span_e) - before(np.minimum(span_s, span_e))
                owner = np.searchsorted(nl, span_s)
                inner = np.bincount(owner, weights=quoted, minlength=len(seg)).astype(np.int64)
                seg = seg - inner[: len(seg)]
            qg = q + s
            # An opening quote must start a field (or follow a closing one:
            # `""`); a closing one must end it (or be doubled). The byte before
            # offset 0 is the last one (a[-1]), as in _scan.c.
            prev = a[qg - 1]
            bad_open = opening & (prev != _COMMA) & (prev != _NL) & (prev != _QUOTE)
            after = a[np.minimum(qg + 1, n - 1)]
            bad_close = ~opening & (qg + 1 < n) & (after != _COMMA) & (after != _NL) & (after != _CR)
            bad_close &= after != _QUOTE
            bad = np.flatnonzero(bad_open | bad_close)
            if len(bad) and len(stray) < _MAX_STRAY:
                stray.extend(qg[bad[: _MAX_STRAY - len(stray)]].tolist())
            if len(open_idx):
                last_open = int(qg[open_idx[-1]])
            quotes_before += len(q)
        if len(nl):
            counts = seg[: len(nl)].copy()
            counts[0] += carry
            carry = int(seg[len(nl)])
            ends_parts.append(nl + s)
            count_parts.append(counts)
        else:
            carry += int(seg[0])
    ends = np.concatenate(ends_parts).astype(np.int64) if ends_parts else np.zeros(0, dtype=np.int64)
    commas = np.concatenate(count_parts) if count_parts else np.zeros(0, dtype=np.int64)
    tail_start = int(ends[-1]) + 1 if len(ends) else start
    if tail_start < n:  # a last record without a final newline
        ends = np.append(ends, n)
        commas = np.append(commas, carry)
    content = ends.copy()  # record lengths, computed in place (no starts array)
    crlf = 0
    if len(ends):
        content[1:] -= ends[:-1] + 1
        content[0] -= start
        is_crlf = np.zeros(len(ends), dtype=bool)
        ended = (ends < n) & (content > 0)  # a last record without a newline keeps its CR
        is_crlf[ended] = a[ends[ended] - 1] == _CR
        content -= is_crlf
        crlf = int(np.count_nonzero(is_crlf))
    blank = content == commas
    return {
        "ends": ends,
        "commas": commas,
        "blank": blank,
        "empty": content == 0,
        "maybe_blank": np.flatnonzero(~blank & (content - commas <= 2 * (commas + 1))).astype(np.int64),
        "crlf": crlf,
        "unclosed_at": last_open if quotes_before & 1 else None,
        "stray_at": stray,
        "needs_fallback": bool(stray) or cr_total != crlf_all,
    }


def _ones(words: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The number of 1 bytes in each 64-bit word of 0/1 bytes (one multiply puts
    their sum, at most 8, in the top byte; np.bitwise_count needs numpy 2)."""
    import numpy as np

    out: np.ndarray[Any, Any] = ((words * np.uint64(0x0101010101010101)) >> np.uint64(56)).view(np.int64)
    return out


_UTF8_STEP = 1 << 22  # bytes decoded at a time: the text is never held twice


def utf8_valid(data: bytes) -> bool:
    """Strict UTF-8 as `bytes.decode("utf-8")` judges it (no surrogates, no
    overlong forms), in steps so a big file is never copied whole into a str."""
    if data.isascii():
        return True
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    view = memoryview(data)
    try:
        for at in range(0, len(data), _UTF8_STEP):
            decoder.decode(view[at : at + _UTF8_STEP])
        decoder.decode(b"", final=True)  # a sequence cut off at the end
    except UnicodeDecodeError:
        return False
    return True


def split(text: bytes, start: int, parts: int) -> list[tuple[int, int]]:
    """text[start:] cut into about `parts` runs of whole records, at LFs with an
    even number of `"` before them, as `_ccells.split` cuts it."""
    n = len(text)
    if not 0 <= start <= n or not 1 <= parts <= 1_000_000:
        raise ValueError("start or parts out of range")  # as _cells.c
    step = max((n - start) // parts, 1)
    cuts: list[int] = []
    begin = counted = start
    parity = 0
    for k in range(1, parts):
        at = max(start + k * step, begin)
        nl = -1
        while at < n:
            hit = text.find(b"\n", at)
            if hit < 0:
                break
            parity ^= text.count(b'"', counted, hit) & 1
            counted = hit
            if not parity:
                nl = hit
                break
            at = hit + 1
        if nl < 0 or nl + 1 >= n:
            break
        cuts.append(nl + 1)
        begin = nl + 1
    bounds = [start, *cuts, n]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def hash_series(values: pl.Series) -> np.ndarray[Any, Any]:
    """A u64 key hash of each str of a String column (a writable array); an
    empty or absent value hashes to 0, every other value to an odd number."""
    import numpy as np

    filled = values.fill_null("")
    out: np.ndarray[Any, Any] = filled.hash().to_numpy().astype(np.uint64)  # a copy: writable
    empty = (filled.str.len_bytes() == 0).to_numpy()
    out |= np.uint64(1)
    out[empty] = 0
    return out


def hash_list(values: list[str]) -> np.ndarray[Any, Any]:
    """`hash_series` of a list of str (the directory snapshot's keys)."""
    import polars as pl

    try:
        return hash_series(pl.Series(values, dtype=pl.String))
    except UnicodeEncodeError:
        pass
    # A lone surrogate (a directory value from JSON's "\ud800") cannot go into
    # polars: hash its surrogatepass bytes apart; no decoded file value equals it.
    odd = {i: v for i, v in enumerate(values) if not _encodable(v)}
    out = hash_series(pl.Series(["" if i in odd else v for i, v in enumerate(values)], dtype=pl.String))
    for i, v in odd.items():
        digest = hashlib.blake2b(v.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "little") | 1
    return out


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
