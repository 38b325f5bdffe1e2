"""The rules of a user file that the file alone shows (docs/production.md
§3, §4, §5), in two phases.

Phase one runs on each part of the rows as it is read (values, identity):
it keeps findings and compact per-row arrays (key hashes, flags), never the
frame. Phase two (`finish`) runs the rules across rows on those arrays:
duplicates, lost leading zeros, a user as their own manager. Rules that need
the directory (managers found, loops, licences, taken ids and addresses,
names a new user needs) are the apply layer's (`ingest/links.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bwsandbox.spec import messages
from bwsandbox.spec.codes import CATALOGUE
from bwsandbox.spec.fields import ValueType, identity_by_employee_id
from bwsandbox.validator import crossrow, dates, emails, fastpath, values
from bwsandbox.validator.batch import Batch
from bwsandbox.validator.findings import finding, row_of, skipped_records
from bwsandbox.validator.header import HeaderMap
from bwsandbox.validator.model import Context, Finding
from bwsandbox.validator.spaces import SpaceTally

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


class UserRules:
    """What the row-local pass keeps of each chunk of rows: findings and
    compact per-row arrays (hashes, flags), never the frame itself."""

    def __init__(self, hmap: HeaderMap, context: Context) -> None:
        self.hmap, self.context = hmap, context
        self.findings: list[Finding] = []
        self.parts: dict[str, list[np.ndarray[Any, Any]]] = {}
        self.cols: set[str] = set()
        self.spaces = SpaceTally()  # docs/production.md §6: values are trimmed before any rule reads them

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
        for name, arr in self._run(df).items():
            self.keep(name, arr)

    def _run(self, df: pl.DataFrame) -> dict[str, np.ndarray[Any, Any]]:
        """The findings of `run`, and the compact arrays of those rows."""
        import numpy as np
        import polars as pl

        hmap, context = self.hmap, self.context
        df = self.spaces.trim(df)
        cols = set(df.columns)
        self.cols = cols
        df = df.with_columns(pl.col("email").fill_null(""))  # the identity is never "absent"
        # Every column expression of every rule is evaluated in one parallel pass.
        batch = Batch(df)
        posts = [emails.check_email(batch, "email")]
        ids: dict[str, values.IdFlags] = {}
        for spec in hmap.template.values():
            if spec.name not in cols or spec.name == "email":
                continue
            if spec.type is ValueType.TEXT and spec.max_length is not None:
                posts.append(values.check_length(batch, spec))
            elif spec.type is ValueType.DATE:
                posts.append(dates.check_date(batch, spec.name, context.locale))
            elif spec.type is ValueType.BOOLEAN:
                posts.append(values.check_bool(batch, spec.name))
            elif spec.type is ValueType.ID:
                post, ids[spec.name] = values.check_id(batch, spec.name)
                posts.append(post)
            elif spec.type is ValueType.MOBILE:
                posts.append(values.check_mobile(batch, spec.name))
        by_id = self.by_id
        # One hash per key column; every cross-row rule reuses it.
        # Keys are hashed raw where the value is its own key, folded only elsewhere.
        hashers = {
            "email": crossrow.add_folded_hash(
                batch, "email", "email", emails.email_plain(batch, "email"), crossrow.email_key("email")
            )
        }
        for col in ("employee_id", "manager_id"):
            if col in cols:
                bare = batch.add(f"{col}:bare", ~pl.col(col).fill_null("").str.starts_with("'"))
                hashers[col] = crossrow.add_folded_hash(batch, col, col, bare, crossrow.id_key(col))
        if "manager_email" in cols:
            hashers["manager_email"] = crossrow.add_folded_hash(
                batch,
                "manager_email",
                "manager_email",
                emails.email_plain(batch, "manager_email"),
                crossrow.email_key("manager_email"),
            )
        batch.run()
        h = {name: fn() for name, fn in hashers.items()}
        # Identity (docs/production.md §3): email, or employee id when both id columns are present.
        ident_h = h["employee_id"] if by_id else h["email"]
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
        arrays: dict[str, np.ndarray[Any, Any]] = {
            "rec": df["i"].to_numpy().astype(np.int32),
        }
        for name, arr in h.items():
            arrays[f"hash:{name}"] = arr
        for col, flags in ids.items():
            arrays[f"{col}:numeric"] = flags.numeric
            arrays[f"{col}:padded"] = flags.padded
            arrays[f"{col}:size"] = flags.size
        return arrays

    def run_fast(self, text: bytes, part: fastpath.FastPart, offset: int, plan: fastpath.Plan) -> None:
        """One part judged by the C pass: its slow records go through the
        rules of `run`; the arrays of the rest are the C pass's (same keys,
        same hash). Kept in record order, as `run` keeps them."""
        import numpy as np

        self.cols = set(plan.names) | {"i"}
        arrays: dict[str, np.ndarray[Any, Any]] = {"rec": np.arange(offset, offset + part.n, dtype=np.int32)}
        for name, h in part.hashes.items():
            if name in fastpath.KEYED:
                arrays[f"hash:{name}"] = h
        for name, (numeric, padded, size) in part.ids.items():
            arrays.update({f"{name}:numeric": numeric, f"{name}:padded": padded, f"{name}:size": size})
        slow = np.flatnonzero(part.slow)
        if len(slow):
            exact = self._run(fastpath.slow_frame(text, part, slow, offset, plan))
            for name, arr in exact.items():
                if name != "rec":
                    arrays[name][slow] = arr
        for name, arr in arrays.items():
            self.keep(name, arr)

    @property
    def by_id(self) -> bool:
        return identity_by_employee_id(self.context.profile, self.cols)

    def finish(self, fetch: crossrow.Fetch) -> list[Finding]:
        """The rules across rows, on the compact arrays of every chunk."""
        import numpy as np

        out = self.findings
        out[:] = _mixed_date_orders(out, self.context.locale)
        out += self.spaces.findings()
        fetch = _trimmed(fetch)
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
        skipped = skipped_records(out)
        alive = np.ones(len(rec), dtype=bool)
        if skipped:
            alive = ~np.isin(rec, np.fromiter(skipped, dtype=np.int64, count=len(skipped)))
        if "manager_email" in cols:
            out += crossrow.manager_self(
                fetch, rec, keys=email_h, alive=alive, mkeys=self.array("hash:manager_email"),
                mcol="manager_email", own_manager=messages.OWN_MANAGER,
            )
        if "manager_id" in cols:
            no_ids = np.zeros(len(rec), dtype=np.uint64)
            out += crossrow.manager_self(
                fetch, rec, keys=self.array("hash:employee_id") if "employee_id" in cols else no_ids,
                alive=alive, mkeys=self.array("hash:manager_id"), mcol="manager_id",
                own_manager=messages.OWN_MANAGER,
            )
        return out

def _mixed_date_orders(findings: list[Finding], locale: str) -> list[Finding]:
    """docs/production.md §6 [decided]: a date read in the other order (DATE_OTHER_ORDER, a
    notice) is a warning when its column also holds ambiguous dates, which are
    read in the tenant's order: the column then mixes conventions."""
    import dataclasses

    ambiguous: dict[str, Finding] = {}
    for f in findings:
        if f.code == "DATE_AMBIGUOUS" and f.column and f.row is not None:
            first = ambiguous.get(f.column)
            if first is None or (first.row or 0) > f.row:
                ambiguous[f.column] = f
    if not ambiguous:
        return findings
    out = []
    for f in findings:
        first = ambiguous.get(f.column or "") if f.code == "DATE_OTHER_ORDER" else None
        if first is not None and f.value is not None and first.row is not None:
            iso = dates.read_date(f.value, locale).iso or ""
            f = dataclasses.replace(
                f, code="DATE_ORDER_MIXED", severity=CATALOGUE["DATE_ORDER_MIXED"].severity,
                message=dates.mixed_orders(values.trim(f.value), iso, locale, first.row, first.value or ""),
            )
        out.append(f)
    return out


def _trimmed(fetch: crossrow.Fetch) -> crossrow.Fetch:
    """The values of flagged rows as the rules read them: trimmed (docs/production.md §6)."""

    def trimmed(col: str, positions: Any) -> list[str]:
        return [values.trim(v) for v in fetch(col, positions)]

    return trimmed


def user_rules(df: pl.DataFrame, hmap: HeaderMap, context: Context) -> list[Finding]:
    phase = UserRules(hmap, context)
    phase.run(df)
    return phase.finish(crossrow.frame_fetch(df))
