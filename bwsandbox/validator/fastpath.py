"""The value fast path (docs/benchmarks.md): the ruled cells of a user file
judged in C (`_cells.c`), part by part, on worker threads.

For each record and ruled column the C pass says whether the exact rules
could have anything to say ("slow"); it hashes the keys of the rest, which
need no Python at all. The slow records (a date to read, an address with
capitals, an apostrophe, an empty required cell...) are parsed again by the
csv module and go through the very same rules as every other file
(`UserRules.run`), so the fast path can only skip work, never change a
finding. Files the plan
does not cover (another kind, a required column missing) read their columns
with polars instead, and so do all files where `_ccells` is not in use
(`accel.py`): the fast path only ever skips work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bwsandbox.spec.fields import Kind, ValueType, identity_by_employee_id
from bwsandbox.validator import accel, ckinds, dates, emails, values
from bwsandbox.validator.header import HeaderMap
from bwsandbox.validator.model import Context

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

_MAX_COLUMNS = 31
# The columns the rules across rows hash by name, whatever their kind (`users.py`).
KEYED = ("email", "employee_id", "manager_id", "manager_email")


@dataclass(frozen=True, slots=True)
class Plan:
    """What the C pass reads: (cell index, kind, byte limit, required, vocabulary) per ruled column."""

    width: int
    specs: tuple[ckinds.FastColumn, ...]
    names: tuple[str, ...]  # field name of each spec


def plan(hmap: HeaderMap, context: Context, needed: list[int], width: int) -> Plan | None:
    """The fast path's reading of this header, or None when it does not
    apply. How each column is read is said by its rule's module, beside the
    rule (`ckinds.py`)."""
    if not accel.engines().ccells:
        return None
    if hmap.kind is not Kind.USERS or hmap.fatal or not needed:
        return None
    processed = {**hmap.columns, **hmap.custom}
    names = tuple(processed[i] for i in needed)
    if len(needed) > _MAX_COLUMNS or max(needed) >= 256 or "email" not in names:
        return None
    if any(name in KEYED and name not in hmap.template for name in names):
        # A custom key of such a name (engage has no manager_id): the rules hash it
        # as a key, the C pass reads it as text and hashes nothing; polars reads it.
        return None
    by_id = identity_by_employee_id(context.profile, names)
    specs: list[ckinds.FastColumn] = []
    for index, name in zip(needed, names, strict=True):
        spec = hmap.template.get(name)
        kind = spec.type if spec is not None else ValueType.TEXT  # a custom key: free text
        if kind is ValueType.EMAIL:
            specs.append(emails.fast_column(index, identity=name == "email"))
        elif kind is ValueType.TEXT:
            specs.append(values.fast_text(index, spec))
        elif kind is ValueType.ID:
            specs.append(values.fast_id(index, identity=by_id and name == "employee_id"))
        elif kind is ValueType.BOOLEAN:
            specs.append(values.fast_bool(index))
        elif kind is ValueType.DATE:
            specs.append(dates.fast_column(index, context.locale))
        else:
            specs.append(ckinds.column(index, ckinds.OTHER))
    return Plan(width=width, specs=tuple(specs), names=names)


def read_part(text: bytes, start: int, end: int, plan: Plan) -> dict[str, Any]:
    """The C pass over the whole records of text[start:end] (GIL released)."""
    from bwsandbox.validator import _ccells

    got = _ccells.cells(text, start, end, plan.width, list(plan.specs))
    got["start"] = start
    return got


@dataclass(slots=True)
class FastPart:
    """One part as the rules keep it: arrays over its records."""

    n: int
    slow: np.ndarray[Any, Any]  # bool: some ruled value needs the exact rules
    hashes: dict[str, np.ndarray[Any, Any]]  # field name -> u64 key hash
    ids: dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]]
    starts: np.ndarray[Any, Any]
    ends: np.ndarray[Any, Any]


def unpack(got: dict[str, Any], plan: Plan) -> FastPart:
    import numpy as np

    n = int(got["n"])
    ends = np.frombuffer(got["ends"], dtype=np.int64, count=n)
    starts = np.empty(n, dtype=np.int64)
    if n:
        starts[0] = got["start"]
        starts[1:] = ends[:-1] + 1
    hashes = {
        name: np.frombuffer(h, dtype=np.uint64, count=n)
        for name, h in zip(plan.names, got["hashes"], strict=True)
        if h is not None
    }
    ids = {
        name: (
            np.frombuffer(i[0], dtype=np.bool_, count=n),
            np.frombuffer(i[1], dtype=np.bool_, count=n),
            np.frombuffer(i[2], dtype=np.int32, count=n),
        )
        for name, i in zip(plan.names, got["ids"], strict=True)
        if i is not None
    }
    slow = np.frombuffer(got["slow"], dtype=np.uint32, count=n) != 0
    return FastPart(n=n, slow=slow, hashes=hashes, ids=ids, starts=starts, ends=ends)


def slow_frame(
    text: bytes, part: FastPart, positions: np.ndarray[Any, Any], offset: int, plan: Plan
) -> pl.DataFrame:
    """The ruled cells of some records of a part, parsed by the csv module,
    as the frame `UserRules.run` reads (`i`: record index in the file)."""
    import polars as pl

    from bwsandbox.validator.readers import parse_record

    if len(positions) * 4 > part.n > 64:
        # Most of the part is slow (a date in every row, say): polars reads
        # its columns faster than the csv module parses its records.
        frame = _polars_part(text, part, plan)
        if frame is not None:
            return frame[positions].insert_column(0, pl.Series("i", (positions + offset).astype("uint32")))
    columns: dict[str, list[str]] = {name: [] for name in plan.names}
    at = [(name, spec[0]) for name, spec in zip(plan.names, plan.specs, strict=True)]
    for p in positions.tolist():
        cells = parse_record(text, int(part.starts[p]), int(part.ends[p]))
        for name, index in at:
            columns[name].append(cells[index] if index < len(cells) else "")
    frame = pl.DataFrame(columns, schema=dict.fromkeys(plan.names, pl.String))
    rec = pl.Series("i", (positions + offset).astype("uint32"), dtype=pl.UInt32)
    return frame.insert_column(0, rec)


def _polars_part(text: bytes, part: FastPart, plan: Plan) -> pl.DataFrame | None:
    """The ruled columns of every record of a part, read by polars, named by
    field; None unless polars read exactly the part's records."""
    from bwsandbox.validator.readers import read_polars

    needed = [spec[0] for spec in plan.specs]
    got = read_polars(text[int(part.starts[0]) : int(part.ends[-1]) + 1], plan.width, needed, skip=0)
    if got is None or got.height != part.n:
        return None
    return got.select([got[f"c{i}"].alias(name) for i, name in zip(needed, plan.names, strict=True)])
