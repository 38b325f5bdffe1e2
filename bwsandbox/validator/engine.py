"""`validate()`: what the file alone shows, in production's order.

    bytes -> decode (encoding ladder, format) -> header + delimiter
          -> records (structure scan + polars columns, or JSON)
          -> value rules -> rules across rows -> Report (+ the applicable rows)

The rules run over whole columns; rows with a row-scope error are left out
of the applicable rows, because production does not create them
(docs/production.md §5 partial processing). The rules that need a directory
run next, in the apply layer (`ingest/plan.py` joins the two).
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bwsandbox.spec.codes import Scope, Severity
from bwsandbox.spec.fields import Kind
from bwsandbox.validator import accel, crossrow, fastpath, values
from bwsandbox.validator.applicable import Applicable
from bwsandbox.validator.decode import Decoded, Format, body, decode, utf8_ok
from bwsandbox.validator.departments import check_departments
from bwsandbox.validator.dialect import delimiter_findings, read_header
from bwsandbox.validator.findings import file_finding, finding, row_of, skipped_records, too_many_columns
from bwsandbox.validator.formulas import formula_findings
from bwsandbox.validator.header import HeaderMap, map_header
from bwsandbox.validator.jsonfeed import nested_findings, read_json_table
from bwsandbox.validator.model import Context, Finding, Report, Validation
from bwsandbox.validator.structure import CsvRead, Table, _now
from bwsandbox.validator.users import UserRules, user_rules

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

def _needed(hmap: HeaderMap) -> list[int]:
    """The columns the rules read: every processed one (template and custom
    keys), since any value may have spaces to trim and report (docs/production.md §6)."""
    return [] if hmap.fatal else sorted({**hmap.columns, **hmap.custom})


_PARALLEL_BYTES = 4 << 20  # from this size the structure scan and the hash run on worker threads


Progress = Callable[[int, int], None]


def _no_progress(done: int, total: int) -> None:
    return None


def validate(
    data: bytes,
    context: Context = Context(),  # noqa: B008
    *,
    name: str = "<stdin>",
    progress: Progress | None = None,
) -> Validation:
    """Validate one file as production would read it. Never raises on bad input.

    `progress(done, total)` is called as the parts of a big file are read
    (the CLI's progress bar); it never changes the result."""
    tick = progress or _no_progress
    # One choice of engines (C or pure, `accel.py`) for the whole file: its
    # key hashes must all come from one function.
    with accel.pinned():
        if len(data) >= _PARALLEL_BYTES:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=4, thread_name_prefix="bwsandbox-validate") as pool:

                def submit(fn: Callable[..., Any], *args: Any) -> Any:
                    # Jobs run in a copy of this context, so they see the pinned engines.
                    return pool.submit(contextvars.copy_context().run, fn, *args)

                result = _validate(data, context, name, submit, tick)
        else:
            result = _validate(data, context, name, _now, tick)
    tick(1, 1)
    return result


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Later:
    """A job submitted only when first needed (`start()`) or waited for (`result()`)."""

    def __init__(self, submit: Any, fn: Callable[..., Any], *args: Any) -> None:
        self._submit, self._fn, self._args = submit, fn, args
        self._future: Any = None

    def start(self) -> None:
        if self._future is None:
            self._future = self._submit(self._fn, *self._args)

    def result(self) -> Any:
        self.start()
        return self._future.result()


def _validate(data: bytes, context: Context, name: str, submit: Any, tick: Progress) -> Validation:
    # The hash starts once the parts are read, so it shares the two cores with
    # the rules across rows (one thread of numpy) instead of with polars.
    sha_f = _Later(submit, _sha256, data)
    if submit is _now:
        return _validate_text(data, context, name, submit, sha_f, decode(data), tick)
    # Big file: assume UTF-8 while a worker checks it; redo in the rare case it is not.
    utf8_f = submit(utf8_ok, body(data))
    try:
        guess = _validate_text(data, context, name, submit, sha_f, decode(data, utf8=True), tick)
    except UnicodeDecodeError:
        if utf8_f.result():
            raise  # valid UTF-8 that does not decode: a bug, not the file's fault
        guess = None  # a record that had to be decoded gave the guess away
    if guess is not None and utf8_f.result():
        return guess
    return _validate_text(data, context, name, submit, sha_f, decode(data, utf8=False), tick)


def _validate_text(
    data: bytes, context: Context, name: str, submit: Any, sha_f: _Later, decoded: Decoded, tick: Progress
) -> Validation:
    findings: list[Finding] = list(decoded.findings)
    text = decoded.text
    if text is None:
        return _stop(name, context, sha_f.result(), findings)
    speculative: list[Finding] | None = None
    limits = context.limits
    if decoded.format is Format.JSON:
        if len(text) > limits.max_json_bytes:
            # Parsed JSON costs about ten times its size in memory: refused unread.
            return _stop(name, context, sha_f.result(), findings + [file_finding(
                "JSON_TOO_LARGE",
                f"The JSON feed is {len(text):,} bytes; the sandbox reads JSON feeds up to "
                f"{limits.max_json_bytes:,} bytes (max_json_bytes). Send it as CSV, or in parts.",
            )])
        got = read_json_table(text, max_columns=limits.max_columns)
        if isinstance(got, list):
            return _stop(name, context, sha_f.result(), findings + got)
        table = got
        hmap = map_header(table.header, context)
        findings += nested_findings(table, hmap)
    else:
        head = read_header(text)
        if len(head.cells) > limits.max_columns:
            wide = too_many_columns(len(head.cells), limits.max_columns)
            return _stop(name, context, sha_f.result(), [*findings, wide])
        delim = delimiter_findings(text, head.end)
        if delim:
            return _stop(name, context, sha_f.result(), findings + delim, header=head.cells)
        hmap = map_header(head.cells, context)
        needed = _needed(hmap)
        reader = CsvRead(text, head.cells, head.end, needed, submit)
        if not hmap.fatal and hmap.kind is Kind.USERS:
            # Speculate: run the row rules on each part polars reads while the
            # structure scan finishes; kept only if the scan confirms every record.
            phase = UserRules(hmap, context)
            fast = fastpath.plan(hmap, context, needed, len(head.cells))
            offset = 0
            parts: Iterator[fastpath.FastPart | pl.DataFrame] = (
                iter(reader.fast_parts(fast)) if fast is not None else iter(reader.parts())
            )
            for done, part in enumerate(parts, 1):
                if isinstance(part, fastpath.FastPart):
                    assert fast is not None
                    phase.run_fast(text, part, offset, fast)
                    offset += part.n
                else:
                    phase.run(_frame(part, None, hmap, offset))
                    offset += part.height
                del part  # one part in memory at a time
                # The last step (joining the scan, rules across rows) is the
                # remaining share: report parts as 90 % of the work.
                tick(done * 9, reader.n_parts * 10)
            sha_f.start()
            if reader.complete:
                # The rules across rows run before the scan is joined (they only
                # need it to fetch the text of flagged rows), so they overlap it.
                joined: list[Table] = []

                def get_table() -> Table:
                    if not joined:
                        joined.append(reader.table())
                    return joined[0]

                speculative = phase.finish(_record_fetch(get_table, hmap))
                table = get_table()
            else:
                table = reader.table()
        else:
            table = reader.table()
    findings += hmap.findings + table.findings
    blank = table.blank
    live = int(table.n_records - blank.sum())
    for rec in blank.nonzero()[0].tolist():
        findings.append(finding("ROW_BLANK", row_of(rec), "This row has no values; it is ignored."))
    if live == 0 and not _fatal(findings):
        findings.append(file_finding("NO_DATA_ROWS", "The file has a header but no user rows."))
    if not _fatal(findings):
        if speculative is not None and table.fast and not table.broken.any():
            # Blank rows have no keys, so they never affect another row's finding.
            findings += [f for f in speculative if f.row is None or not blank[f.row - 2]]
        else:
            findings += _run_rules(table.full_frame(), ~(table.blank | table.broken), hmap, context)
        findings += formula_findings(text, table, {**hmap.columns, **hmap.custom})
    table.frame = None  # the rules are done with it; applying reads the records (no frame of a big feed kept)
    return _finish(name, context, sha_f.result(), findings, table, hmap, live)


def _fatal(findings: list[Finding]) -> bool:
    return any(f.severity is Severity.ERROR and f.scope is Scope.FILE for f in findings)


def _stop(
    name: str, context: Context, sha: str, findings: list[Finding], header: tuple[str, ...] = ()
) -> Validation:
    report = Report(
        file=name,
        profile=context.profile,
        sha256=sha,
        kind=Kind.USERS,
        total=0,
        valid=0,
        skipped=0,
        findings=tuple(sorted(findings, key=Finding.sort_key)),
        header=header,
    )
    return Validation(report=report)


def _frame(
    frame: pl.DataFrame, keep: np.ndarray[Any, Any] | None, hmap: HeaderMap, offset: int = 0
) -> pl.DataFrame:
    import polars as pl

    names = {**hmap.columns, **hmap.custom}
    present = [(f"c{i}", n) for i, n in sorted(names.items()) if f"c{i}" in frame.columns]
    df = frame.select([pl.col(c).alias(n) for c, n in present]).with_row_index("i", offset=offset)
    return df.filter(pl.Series(keep)) if keep is not None and not keep.all() else df


def _record_fetch(table: Callable[[], Table], hmap: HeaderMap) -> crossrow.Fetch:
    """Values of flagged rows, parsed again from their records (no frame is
    kept), trimmed as the rules read them (docs/production.md §6)."""
    index = {n: i for i, n in {**hmap.columns, **hmap.custom}.items()}

    def fetch(col: str, positions: Sequence[int]) -> list[str]:
        recs = [int(p) for p in positions]
        if not recs:
            return []
        got = table().originals(recs)
        at = index[col]
        return [values.trim(cells[at]) if at < len(cells) else "" for cells in (got[row_of(r)] for r in recs)]

    return fetch


def _run_rules(
    frame: pl.DataFrame, keep: np.ndarray[Any, Any] | None, hmap: HeaderMap, context: Context
) -> list[Finding]:
    df = _frame(frame, keep, hmap)
    if hmap.kind is Kind.DEPARTMENTS:
        return list(check_departments(df, context))
    return user_rules(df, hmap, context)


def _finish(
    name: str, context: Context, sha: str, findings: list[Finding], table: Table, hmap: HeaderMap, live: int
) -> Validation:
    ordered = tuple(sorted(findings, key=Finding.sort_key))
    if _fatal(findings):
        skipped_recs: set[int] = set(range(table.n_records)) - set(table.blank.nonzero()[0].tolist())
    else:
        skipped_recs = skipped_records(findings)
    columns = tuple(sorted({**hmap.columns, **hmap.custom}.items()))
    report = Report(
        file=name,
        profile=context.profile,
        sha256=sha,
        kind=hmap.kind,
        total=live,
        valid=live - len(skipped_recs),
        skipped=len(skipped_recs),
        findings=ordered,
        columns=tuple(n for _, n in columns),
        header=table.header,
    )
    flagged = sorted({f.row for f in ordered if f.row is not None})
    drops: dict[int, set[str]] = {}
    for f in ordered:
        if f.row is not None and f.column and f.severity is Severity.ERROR and f.scope is Scope.VALUE:
            drops.setdefault(f.row - 2, set()).add(f.column)

    def rows() -> Applicable:
        return Applicable(table, columns, hmap.template, context.locale, skipped_recs, drops)

    return Validation(report=report, rows_factory=rows, originals=_Originals(table, flagged))


class _Originals(Mapping[int, tuple[str, ...]]):
    """Original cells of the flagged rows, parsed only when asked for."""

    def including(self, rows: Iterable[int]) -> _Originals:
        """The same, plus `rows` (rows only the directory found fault with)."""
        return _Originals(self._table, sorted(self._set | set(rows)))

    def __init__(self, table: Table, rows: list[int]) -> None:
        self._table = table
        self._rows = rows
        self._set = set(rows)
        self._cache: dict[int, tuple[str, ...]] = {}

    def __getitem__(self, row: int) -> tuple[str, ...]:
        if row not in self._set:
            raise KeyError(row)
        if row not in self._cache:
            self._cache.update(self._table.originals([row - 2]))
        return self._cache[row]

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)
