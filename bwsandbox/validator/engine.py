"""`validate()`: the one engine that runs every rule, in production's order.

    bytes -> decode (encoding ladder, format) -> header + delimiter
          -> records (numpy structure scan + polars columns, or JSON)
          -> value rules -> rules across rows -> licences -> Report

The rules run over whole columns; rows with a row-scope error are taken out
before the manager and licence rules, because production does not create
them (SPEC §5 partial processing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bwsandbox.spec import messages
from bwsandbox.spec.codes import Scope, Severity
from bwsandbox.spec.fields import Kind, Profile, ValueType
from bwsandbox.validator import crossrow, values
from bwsandbox.validator.decode import Decoded, Format, body, decode, utf8_ok
from bwsandbox.validator.departments import check_departments
from bwsandbox.validator.dialect import delimiter_findings, read_header
from bwsandbox.validator.findings import file_finding, finding
from bwsandbox.validator.header import HeaderMap, map_header
from bwsandbox.validator.jsonfeed import read_json_table
from bwsandbox.validator.model import ApplicableRow, Context, Finding, Report, Validation
from bwsandbox.validator.structure import CsvRead, Table, _now, row_of

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

# Columns that some rule reads; plain text columns without a limit are only
# read again when ingest asks for the applicable rows.
_RULED_TYPES = (ValueType.EMAIL, ValueType.DATE, ValueType.BOOLEAN, ValueType.ID, ValueType.MOBILE)


def _ruled(hmap: HeaderMap, name: str) -> bool:
    spec = hmap.template[name]
    if hmap.kind is Kind.DEPARTMENTS:
        return True  # `parent` is a cross-row link; department files are small
    return spec.type in _RULED_TYPES or spec.max_length is not None or spec.required


_PARALLEL_BYTES = 4 << 20  # from this size the structure scan and the hash run on worker threads


def validate(data: bytes, context: Context = Context(), *, name: str = "<stdin>") -> Validation:  # noqa: B008
    """Validate one file as production would read it. Never raises on bad input."""
    if len(data) >= _PARALLEL_BYTES:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="bwsandbox-validate") as pool:
            return _validate(data, context, name, pool.submit)
    return _validate(data, context, name, _now)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _validate(data: bytes, context: Context, name: str, submit: Any) -> Validation:
    sha_f = submit(_sha256, data)
    if submit is _now:
        return _validate_text(data, context, name, submit, sha_f, decode(data))
    # Big file: assume UTF-8 while a worker checks it; redo in the rare case it is not.
    utf8_f = submit(utf8_ok, body(data))
    guess = _validate_text(data, context, name, submit, sha_f, decode(data, utf8=True))
    if utf8_f.result():
        return guess
    return _validate_text(data, context, name, submit, sha_f, decode(data, utf8=False))


def _validate_text(
    data: bytes, context: Context, name: str, submit: Any, sha_f: Any, decoded: Decoded
) -> Validation:
    findings: list[Finding] = list(decoded.findings)
    text = decoded.text
    if text is None:
        return _stop(name, context, sha_f.result(), findings)
    speculative: list[Finding] | None = None
    if decoded.format is Format.JSON:
        got = read_json_table(text)
        if isinstance(got, list):
            return _stop(name, context, sha_f.result(), findings + got)
        table = got
        hmap = map_header(table.header, context)
    else:
        head = read_header(text)
        delim = delimiter_findings(text, head.end)
        if delim:
            return _stop(name, context, sha_f.result(), findings + delim, header=head.cells)
        hmap = map_header(head.cells, context)
        needed = [] if hmap.fatal else sorted(i for i, n in hmap.columns.items() if _ruled(hmap, n))
        reader = CsvRead(text, head.cells, head.end, needed, submit)
        if not hmap.fatal and hmap.kind is Kind.USERS:
            # Speculate: run the row rules on each part polars reads while the
            # structure scan finishes; kept only if the scan confirms every record.
            phase = _Phase1(hmap, context)
            offset = 0
            for part in reader.parts():
                phase.run(_frame(part, None, hmap, offset))
                offset += part.height
                del part  # one part in memory at a time
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

    present = [(f"c{i}", n) for i, n in hmap.columns.items() if f"c{i}" in frame.columns]
    df = frame.select([pl.col(c).alias(n) for c, n in present]).with_row_index("i", offset=offset)
    return df.filter(pl.Series(keep)) if keep is not None and not keep.all() else df


def _record_fetch(table: Callable[[], Table], hmap: HeaderMap) -> crossrow.Fetch:
    """Values of flagged rows, parsed again from their records (no frame is kept)."""
    index = {n: i for i, n in hmap.columns.items()}

    def fetch(col: str, positions: Sequence[int]) -> list[str]:
        recs = [int(p) for p in positions]
        if not recs:
            return []
        got = table().originals(recs)
        at = index[col]
        return [cells[at] if at < len(cells) else "" for cells in (got[row_of(r)] for r in recs)]

    return fetch


def _skipped(findings: list[Finding]) -> set[int]:
    return {
        f.row - 2
        for f in findings
        if f.row is not None and f.severity is Severity.ERROR and f.scope in (Scope.ROW, Scope.FILE)
    }


def _run_rules(
    frame: pl.DataFrame, keep: np.ndarray[Any, Any] | None, hmap: HeaderMap, context: Context
) -> list[Finding]:
    df = _frame(frame, keep, hmap)
    if hmap.kind is Kind.DEPARTMENTS:
        return list(check_departments(df, context))
    return _user_rules(df, hmap, context)


class _Phase1:
    """What the row-local pass keeps of each chunk of rows: findings and
    compact per-row arrays (hashes, flags), never the frame itself."""

    def __init__(self, hmap: HeaderMap, context: Context) -> None:
        self.hmap, self.context = hmap, context
        self.findings: list[Finding] = []
        self.parts: dict[str, list[np.ndarray[Any, Any]]] = {}
        self.cols: set[str] = set()
        directory = context.directory
        users = directory.users if directory is not None else ()
        self.dir_users = users
        self.dir_emails = sorted({u.email.strip().lower() for u in users})
        self.dir_active = sorted({u.email.strip().lower() for u in users if u.active})
        self.dir_ids = sorted({u.employee_id.strip() for u in users if u.employee_id})

    def keep(self, name: str, array: np.ndarray[Any, Any]) -> None:
        self.parts.setdefault(name, []).append(array)

    def array(self, name: str) -> np.ndarray[Any, Any]:
        import numpy as np

        got = self.parts.get(name)
        if not got:
            return np.zeros(0, dtype=np.uint64)
        if len(got) > 1:
            got[:] = [np.concatenate(got)]  # once, and the parts are freed
        return got[0]

    def run(self, df: pl.DataFrame) -> None:
        """The row-local rules on one chunk of rows (column `i`: record index)."""
        import numpy as np
        import polars as pl

        hmap, context = self.hmap, self.context
        cols = set(df.columns)
        self.cols = cols
        df = df.with_columns(pl.col("email").fill_null(""))  # the identity is never "absent"
        # Every column expression of every rule is evaluated in one parallel pass.
        batch = values.Batch(df)
        posts = [values.check_email(batch, "email")]
        ids: dict[str, values.IdFlags] = {}
        for spec in hmap.template.values():
            if spec.name not in cols or spec.name == "email":
                continue
            if spec.type is ValueType.TEXT and spec.max_length is not None:
                posts.append(values.check_length(batch, spec))
            elif spec.type is ValueType.DATE:
                posts.append(values.check_date(batch, spec.name, context.locale))
            elif spec.type is ValueType.BOOLEAN:
                posts.append(values.check_bool(batch, spec.name))
            elif spec.type is ValueType.ID:
                post, ids[spec.name] = values.check_id(batch, spec.name)
                posts.append(post)
            elif spec.type is ValueType.MOBILE:
                posts.append(values.check_mobile(batch, spec.name))
        by_id = self.by_id
        # One hash per key column; every cross-row rule reuses it.
        hashers = {
            "email": crossrow.add_key_hash(batch, "email", crossrow.email_key("email"), pl.col("email"))
        }
        for col in ("employee_id", "manager_id"):
            if col in cols:
                hashers[col] = crossrow.add_key_hash(batch, col, crossrow.id_key(col), crossrow.id_key(col))
        if "manager_email" in cols:
            key = crossrow.email_key("manager_email")
            hashers["manager_email"] = crossrow.add_key_hash(
                batch, "manager_email", key, pl.col("manager_email")
            )
        state: dict[str, np.ndarray[Any, Any]] = {}

        def creating() -> np.ndarray[Any, Any]:
            return state["creating"]

        if context.profile is Profile.CORE:
            for spec in (hmap.template["first_name"], hmap.template["last_name"]):
                posts.append(values.check_required(batch, spec, creating))
        batch.run()
        h = {name: fn() for name, fn in hashers.items()}
        # Identity (SPEC §3): email, or employee id when both id columns are present.
        ident_h = h["employee_id"] if by_id else h["email"]
        known_h = crossrow.hash_values(self.dir_ids if by_id else self.dir_emails)
        directory = context.directory
        state["creating"] = (
            np.ones(df.height, dtype=bool) if directory is None else ~crossrow.is_in(ident_h, known_h)
        )
        out = self.findings
        for post in posts:
            out += post()
        if by_id:
            for m in np.flatnonzero(ident_h == 0).tolist():
                out.append(
                    finding(
                        "REQUIRED_VALUE_MISSING",
                        row_of(df["i"][m]),
                        "employee_id is the identity key of this file (employee_id and manager_id "
                        "columns are both present); the row is skipped.",
                        column="employee_id",
                        value=df["employee_id"][m] or "",
                    )
                )
        if "employee_id" in cols and self.dir_users:
            out += _directory_ids(df, context, by_id)
        self.keep("rec", df["i"].to_numpy().astype(np.int32))
        self.keep("creating", state["creating"])
        for name, arr in h.items():
            self.keep(f"hash:{name}", arr)
        for col, flags in ids.items():
            self.keep(f"{col}:numeric", flags.numeric)
            self.keep(f"{col}:padded", flags.padded)
            self.keep(f"{col}:size", flags.size)

    @property
    def by_id(self) -> bool:
        return self.context.profile is Profile.CORE and {"employee_id", "manager_id"} <= self.cols

    def finish(self, fetch: crossrow.Fetch) -> list[Finding]:
        """The rules across rows, on the compact arrays of every chunk."""
        import numpy as np

        out = self.findings
        cols = self.cols
        rec = self.array("rec")
        for col in ("employee_id", "manager_id"):
            if f"{col}:numeric" in self.parts:
                out += values.leading_zeros(
                    fetch, rec, col, self.array(f"{col}:numeric"), self.array(f"{col}:padded"),
                    self.array(f"{col}:size"),
                )  # fmt: skip
        email_h = self.array("hash:email")
        out += crossrow.duplicates(
            fetch, rec, "email", email_h, "EMAIL_DUPLICATE", messages.SHARED_EMAIL, crossrow.email_key
        )
        if "employee_id" in cols:
            out += crossrow.duplicates(
                fetch, rec, "employee_id", self.array("hash:employee_id"), "EMPLOYEE_ID_DUPLICATE", None,
                crossrow.id_key,
            )  # fmt: skip
        skipped = _skipped(out)
        alive = np.ones(len(rec), dtype=bool)
        if skipped:
            alive = ~np.isin(rec, np.fromiter(skipped, dtype=np.int64, count=len(skipped)))
        if "manager_email" in cols:
            out += crossrow.manager_links(
                fetch,
                rec,
                keys=email_h,
                alive=alive,
                mkeys=self.array("hash:manager_email"),
                mcol="manager_email",
                known=crossrow.hash_values(self.dir_active),
                not_found=messages.manager_not_found,
                own_manager=messages.OWN_MANAGER,
            )
        if "manager_id" in cols:
            no_ids = np.zeros(len(rec), dtype=np.uint64)
            out += crossrow.manager_links(
                fetch,
                rec,
                keys=self.array("hash:employee_id") if "employee_id" in cols else no_ids,
                alive=alive,
                mkeys=self.array("hash:manager_id"),
                mcol="manager_id",
                known=crossrow.hash_values(self.dir_ids),
                not_found=lambda v: f"Could not find manager id: {v}",
                own_manager=messages.OWN_MANAGER,
            )
        if self.context.licenses_available is not None:
            out += _licences(rec, self.array("creating") & alive, self.context.licenses_available)
        return out


def _user_rules(df: pl.DataFrame, hmap: HeaderMap, context: Context) -> list[Finding]:
    phase = _Phase1(hmap, context)
    phase.run(df)
    return phase.finish(crossrow.frame_fetch(df))


def _directory_ids(df: pl.DataFrame, context: Context, by_id: bool) -> list[Finding]:
    """Employee ids against the stored ones (SPEC §3 case [doc]; engage immutable [doc])."""
    import polars as pl

    assert context.directory is not None
    users = [u for u in context.directory.users if u.employee_id]
    out: list[Finding] = []
    fid = crossrow.id_key("employee_id")
    if by_id:
        stored = pl.DataFrame(
            {
                "_k": [u.employee_id.lower() for u in users if u.employee_id],
                "_s": [u.employee_id for u in users],
            },
            schema={"_k": pl.String, "_s": pl.String},
        )
        j = df.select("i", "employee_id", fid.alias("_f"), fid.str.to_lowercase().alias("_k")).join(
            stored.unique(subset="_k", keep="first"), on="_k", how="inner"
        )
    else:
        stored = pl.DataFrame(
            {"_k": [u.email.strip().lower() for u in users], "_s": [u.employee_id for u in users]},
            schema={"_k": pl.String, "_s": pl.String},
        )
        j = df.select("i", "employee_id", fid.alias("_f"), crossrow.email_key("email").alias("_k")).join(
            stored.unique(subset="_k", keep="first"), on="_k", how="inner"
        )
    j = j.filter((pl.col("_f").fill_null("") != "") & (pl.col("_f") != pl.col("_s")))
    for i, value, bare, _, stored_id in j.rows():
        if bare.lower() == stored_id.lower():
            out.append(
                finding(
                    "EMPLOYEE_ID_CASE",
                    row_of(i),
                    f'The employee id "{bare}" differs from the stored "{stored_id}" only in letter case; '
                    "production matches ids exactly, so the row is skipped.",
                    column="employee_id",
                    value=value,
                )
            )
        elif context.profile is Profile.ENGAGE:
            out.append(
                finding(
                    "EMPLOYEE_ID_CHANGED",
                    row_of(i),
                    f'This user already has the employee id "{stored_id}"; in Engage an employee id cannot '
                    "change once set, so the row is skipped.",
                    column="employee_id",
                    value=value,
                )
            )
    return out


def _licences(rec: np.ndarray[Any, Any], creating: np.ndarray[Any, Any], available: int) -> list[Finding]:
    """SPEC §4-5: the whole batch of new users is refused; updates still apply."""
    import numpy as np

    new_rows = rec[np.flatnonzero(creating)].tolist()
    if len(new_rows) <= available:
        return []
    text = messages.license_limit(len(new_rows), available)
    return [finding("LICENSE_LIMIT", row_of(i), text) for i in new_rows]


def _finish(
    name: str, context: Context, sha: str, findings: list[Finding], table: Table, hmap: HeaderMap, live: int
) -> Validation:
    ordered = tuple(sorted(findings, key=Finding.sort_key))
    if _fatal(findings):
        skipped_recs: set[int] = set(range(table.n_records)) - set(table.blank.nonzero()[0].tolist())
    else:
        skipped_recs = _skipped(findings)
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

    def rows() -> Iterator[ApplicableRow]:
        blank = table.blank
        specs = [(i, n, hmap.template.get(n)) for i, n in columns]
        for rec, cells in enumerate(table.iter_records()):
            if blank[rec] or rec in skipped_recs:
                continue
            dropped = drops.get(rec, ())
            out: dict[str, str] = {}
            for idx, field_name, spec in specs:
                cell = cells[idx] if idx < len(cells) else None
                if cell is None or field_name in dropped:
                    continue
                value = cell if spec is None else values.normalise(spec, cell, context.locale)
                if value is not None:
                    out[field_name] = value
            yield ApplicableRow(row=row_of(rec), values=out)

    return Validation(report=report, rows_factory=rows, originals=_Originals(table, flagged))


class _Originals(Mapping[int, tuple[str, ...]]):
    """Original cells of the flagged rows, parsed only when asked for."""

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
