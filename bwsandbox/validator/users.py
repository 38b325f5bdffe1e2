"""The rules of a user file (SPEC §3, §4, §5), in two phases.

Phase one runs on each part of the rows as it is read (values, identity,
the directory): it keeps findings and compact per-row arrays (key hashes,
flags), never the frame. Phase two (`finish`) runs the rules across rows on
those arrays: duplicates, lost leading zeros, managers, licences. Rows with a
row-scope error are left out before managers and licences, because
production does not create them (SPEC §5 partial processing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bwsandbox.spec import messages
from bwsandbox.spec.codes import CATALOGUE
from bwsandbox.spec.fields import Profile, ValueType, identity_by_employee_id
from bwsandbox.validator import crossrow, fastpath, roster, values
from bwsandbox.validator.findings import finding, skipped_records
from bwsandbox.validator.header import HeaderMap
from bwsandbox.validator.model import Context, ExistingUser, Finding
from bwsandbox.validator.spaces import SpaceTally
from bwsandbox.validator.structure import row_of

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
        directory = context.directory
        users = directory.users if directory is not None else ()
        self.dir_users = users
        self._cache: dict[str, Any] = {}
        self.spaces = SpaceTally()  # SPEC §7: values are trimmed before any rule reads them

    def hashed_directory(self, which: str) -> np.ndarray[Any, Any]:
        """Hashes of the snapshot's keys ("ids", "emails", "active"), computed
        once, when a rule first needs them (membership only: in no order)."""
        if which not in self._cache:
            users = self.dir_users
            if which == "ids":
                keys = {u.employee_id.strip() for u in users if u.employee_id}
            else:
                keys = {u.email.strip().lower() for u in users if u.active or which == "emails"}
            self._cache[which] = crossrow.hash_values(list(keys))
        got: np.ndarray[Any, Any] = self._cache[which]
        return got

    def stored_ids(self, by_id: bool) -> pl.DataFrame:
        key = f"stored:{by_id}"
        if key not in self._cache:
            self._cache[key] = _stored_ids(self.context, by_id)
        got: pl.DataFrame = self._cache[key]
        return got

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
        # Keys are hashed raw where the value is its own key, folded only elsewhere.
        hashers = {
            "email": crossrow.add_folded_hash(
                batch, "email", "email", values.email_plain(batch, "email"), crossrow.email_key("email")
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
                values.email_plain(batch, "manager_email"),
                crossrow.email_key("manager_email"),
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
        known_h = self.hashed_directory("ids" if by_id else "emails")
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
            out += _directory_ids(df, context, by_id, self.stored_ids(by_id))
        arrays: dict[str, np.ndarray[Any, Any]] = {
            "rec": df["i"].to_numpy().astype(np.int32),
            "creating": state["creating"],
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
            if name in ("email", "employee_id", "manager_id", "manager_email"):
                arrays[f"hash:{name}"] = h
        for name, (numeric, padded, size) in part.ids.items():
            arrays.update({f"{name}:numeric": numeric, f"{name}:padded": padded, f"{name}:size": size})
        if self.context.directory is None:
            arrays["creating"] = np.ones(part.n, dtype=bool)
        else:
            ident = arrays["hash:employee_id"] if self.by_id else arrays["hash:email"]
            known = self.hashed_directory("ids" if self.by_id else "emails")
            arrays["creating"] = ~crossrow.is_in(ident, known)
        flagged = part.slow
        if plan.stored_ids:
            flagged = flagged | self._id_differs(part, arrays)
        slow = np.flatnonzero(flagged)
        if len(slow):
            exact = self._run(fastpath.slow_frame(text, part, slow, offset, plan))
            for name, arr in exact.items():
                if name != "rec":
                    arrays[name][slow] = arr
        for name, arr in arrays.items():
            self.keep(name, arr)

    def _id_differs(
        self, part: fastpath.FastPart, arrays: dict[str, np.ndarray[Any, Any]]
    ) -> np.ndarray[Any, Any]:
        """Rows whose employee id is not the one stored for the same user (by
        address, or by lower-cased id under identity by id): `_directory_ids`
        judges those exactly. A superset is fine; a miss is not."""
        import numpy as np

        keys, ids = self.stored_hashes(self.by_id)
        key = part.lower["employee_id"] if self.by_id else arrays["hash:email"]
        own = arrays["hash:employee_id"]
        if not len(keys):
            return np.zeros(part.n, dtype=bool)
        at = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
        differs: np.ndarray[Any, Any] = (keys[at] == key) & (key != 0) & (own != 0) & (ids[at] != own)
        return differs

    def stored_hashes(self, by_id: bool) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """The stored ids as (sorted key hashes, id hashes), keyed as `_stored_ids`."""
        import numpy as np

        cache = f"stored-hashes:{by_id}"
        if cache not in self._cache:
            users = [u for u in self.dir_users if u.employee_id]
            keys = crossrow.hash_values([_stored_key(u, by_id) for u in users])
            ids = crossrow.hash_values([u.employee_id or "" for u in users])
            unique, first = np.unique(keys, return_index=True)  # the first user of a key, as _stored_ids
            self._cache[cache] = (unique, ids[first])
        got: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] = self._cache[cache]
        return got

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
        if self.dir_users and "employee_id" in cols:
            taken = _taken(self, fetch, rec, alive)
            out += taken
            refused = [f.row - 2 for f in taken if f.code == "EMAIL_TAKEN" and f.row is not None]
            if refused:  # refused rows create nobody: no manager, no licence
                alive &= ~np.isin(rec, np.asarray(refused, dtype=np.int64))
        if "manager_email" in cols:
            out += crossrow.manager_links(
                fetch,
                rec,
                keys=email_h,
                alive=alive,
                mkeys=self.array("hash:manager_email"),
                mcol="manager_email",
                known=self.hashed_directory("active"),
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
                known=self.hashed_directory("ids"),
                not_found=lambda v: f"Could not find manager id: {v}",
                own_manager=messages.OWN_MANAGER,
            )
        if self.context.licenses_available is not None:
            out += _licences(rec, self.array("creating") & alive, self.context.licenses_available)
        out += self._terminations(email_h)
        return out

    def _terminations(self, email_h: np.ndarray[Any, Any]) -> list[Finding]:
        """Engage (SPEC §1): the active users the file leaves out are
        terminated; said up front, refused over the limit (`roster.py`).
        Users on any row of the file, even a skipped one, are not left out."""
        import numpy as np

        limit = self.context.engage_termination_limit
        if self.context.profile is not Profile.ENGAGE or self.context.directory is None or limit is None:
            return []
        active = {u.email.strip().lower(): u.email for u in self.dir_users if u.active}
        if not active:
            return []
        keys = list(active)
        left_out = ~crossrow.is_in(crossrow.hash_values(keys), email_h)
        emails = [active[keys[i]] for i in np.flatnonzero(left_out).tolist()]
        if not emails:
            return []
        if not roster.within_limit(len(emails), len(active), limit):
            return [roster.termination_limit(len(emails), len(active), limit)]
        return [roster.terminations(emails, len(active))]


def _taken(
    phase: UserRules, fetch: crossrow.Fetch, rec: np.ndarray[Any, Any], alive: np.ndarray[Any, Any]
) -> list[Finding]:
    """SPEC §7 [decided], identities another directory user holds:

    - identity by email: an employee id that belongs to another user of the
      directory is refused on that row (EMPLOYEE_ID_TAKEN, the rest applies);
    - identity by employee id: a row whose address belongs to another ACTIVE
      user is refused (EMAIL_TAKEN) with production's "Multiple active users
      cannot share an email address."

    Unless that other user's own row in this file moves them off it (a new
    id, another address) and is not refused itself: the whole file counts,
    as `ingest/links.py` does, so the order of the rows never matters."""
    import numpy as np

    email_h, id_h = phase.array("hash:email"), phase.array("hash:employee_id")
    users = phase.dir_users
    if phase.by_id:
        holders = {u.email.strip().lower(): u for u in users if u.active}
        cand = np.flatnonzero(alive & crossrow.is_in(email_h, phase.hashed_directory("active")))
    else:
        holders = {u.employee_id.strip(): u for u in users if u.employee_id}
        cand = np.flatnonzero(alive & (id_h != 0) & crossrow.is_in(id_h, phase.hashed_directory("ids")))
    if not len(cand):
        return []
    positions: list[int] = cand.tolist()
    emails = fetch("email", positions)
    ids = [v.removeprefix("'") for v in fetch("employee_id", positions)]
    by_id = {u.employee_id.strip(): u for u in users if u.employee_id}
    blocked: set[int] = set()  # rows whose move is refused: their user stays where they were
    while True:
        out = _taken_pass(phase, fetch, rec, alive, holders, by_id, positions, emails, ids, blocked)
        refused = {p for p, _ in out}
        if refused <= blocked:
            return [f for _, f in out]
        blocked |= refused


def _taken_pass(
    phase: UserRules, fetch: crossrow.Fetch, rec: np.ndarray[Any, Any], alive: np.ndarray[Any, Any],
    holders: dict[str, ExistingUser], by_id: dict[str, ExistingUser], positions: list[int],
    emails: list[str], ids: list[str], blocked: set[int],
) -> list[tuple[int, Finding]]:
    email_h, id_h = phase.array("hash:email"), phase.array("hash:employee_id")
    out: list[tuple[int, Finding]] = []
    for p, email, eid in zip(positions, emails, ids, strict=True):
        key = email.lower()
        holder = holders.get(key if phase.by_id else eid)
        if holder is None:
            continue
        held_id = (holder.employee_id or "").strip()
        if phase.by_id:
            if held_id == eid or (not held_id and eid not in by_id):
                continue  # the same user (a user without an id yet takes the file's)
        elif holder.email.strip().lower() == key:
            continue  # the id's own user
        if _moves_off(phase, fetch, email_h, id_h, alive, holder, blocked):
            continue
        row = row_of(int(rec[p]))
        if phase.by_id:
            who = f"the employee id {held_id}" if held_id else "no employee id"
            out.append((p, finding(
                "EMAIL_TAKEN", row,
                f"{messages.SHARED_EMAIL} ({email} belongs to an active user in Betterworks, with {who}; "
                "refusing another employee id onto it is the sandbox's rule, since production documents "
                "the message but not this case.)",
                column="email", value=email,
            )))  # fmt: skip
        else:
            out.append((p, finding(
                "EMPLOYEE_ID_TAKEN", row,
                f'The employee id "{eid}" already belongs to {holder.email} in Betterworks; it is not '
                "applied, and the rest of the row is. Production does not document this case; refusing "
                "the id is the sandbox's rule.",
                column="employee_id", value=eid,
            )))  # fmt: skip
    return out


def _moves_off(
    phase: UserRules, fetch: crossrow.Fetch, email_h: np.ndarray[Any, Any], id_h: np.ndarray[Any, Any],
    alive: np.ndarray[Any, Any], holder: ExistingUser, blocked: set[int],
) -> bool:
    """Whether the holder's own row in this file gives them another address
    (identity by id) or another employee id (identity by email), and that
    change is not refused (`blocked`)."""
    import numpy as np

    if phase.by_id:
        held_id = (holder.employee_id or "").strip()
        if not held_id:
            return False
        found = np.flatnonzero(alive & (id_h == crossrow.hash_values([held_id])[0])).tolist()
        rows = [p for p in found if p not in blocked]
        return any(e.lower() != holder.email.strip().lower() for e in fetch("email", rows))
    key = holder.email.strip().lower()
    found = np.flatnonzero(alive & (email_h == crossrow.hash_values([key])[0])).tolist()
    rows = [p for p in found if p not in blocked]
    held = (holder.employee_id or "").strip()
    return any(v.removeprefix("'") != held for v in fetch("employee_id", rows))


def _mixed_date_orders(findings: list[Finding], locale: str) -> list[Finding]:
    """SPEC §7 [decided]: a date read in the other order (DATE_OTHER_ORDER, a
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
            iso = values.read_date(f.value, locale).iso or ""
            f = dataclasses.replace(
                f, code="DATE_ORDER_MIXED", severity=CATALOGUE["DATE_ORDER_MIXED"].severity,
                message=values.mixed_orders(values.trim(f.value), iso, locale, first.row, first.value or ""),
            )
        out.append(f)
    return out


def _trimmed(fetch: crossrow.Fetch) -> crossrow.Fetch:
    """The values of flagged rows as the rules read them: trimmed (SPEC §7)."""

    def trimmed(col: str, positions: Any) -> list[str]:
        return [values.trim(v) for v in fetch(col, positions)]

    return trimmed


def user_rules(df: pl.DataFrame, hmap: HeaderMap, context: Context) -> list[Finding]:
    phase = UserRules(hmap, context)
    phase.run(df)
    return phase.finish(crossrow.frame_fetch(df))


def _stored_ids(context: Context, by_id: bool) -> pl.DataFrame:
    """The directory's employee ids, keyed by lower-cased id or by email."""
    import polars as pl

    assert context.directory is not None
    users = [u for u in context.directory.users if u.employee_id]
    keys = [_stored_key(u, by_id) for u in users]
    stored = pl.DataFrame(
        {"_k": keys, "_s": [u.employee_id for u in users]}, schema={"_k": pl.String, "_s": pl.String}
    )
    return stored.unique(subset="_k", keep="first")


def _stored_key(user: ExistingUser, by_id: bool) -> str:
    """What a stored employee id is found by: its lower case, or the user's address."""
    return (user.employee_id or "").lower() if by_id else user.email.strip().lower()


def _directory_ids(df: pl.DataFrame, context: Context, by_id: bool, stored: pl.DataFrame) -> list[Finding]:
    """Employee ids against the stored ones (SPEC §3 case [doc]; engage immutable [doc])."""
    import polars as pl

    out: list[Finding] = []
    fid = crossrow.id_key("employee_id")
    key = fid.str.to_lowercase() if by_id else crossrow.email_key("email")
    j = df.select("i", "employee_id", fid.alias("_f"), key.alias("_k")).join(stored, on="_k", how="inner")
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
