"""Engage terminations, said up front (docs/production.md §1, §5, §6).

An engage file is the full roster [doc]: every active user it leaves out is
terminated. The sandbox says so before anything else in the report, with
the count and the share of the directory (TERMINATIONS), and refuses a file
that would terminate more than the `engage_termination_limit` share of the
active users (TERMINATION_LIMIT), a safety net like Okta's import safeguard
(20 % by default). Production documents no such net: the message says it is
the sandbox's. `validate --context` predicts both from a directory snapshot;
an upload's apply (`ingest/apply.py`) reports them with these same words.
"""

from __future__ import annotations

from collections.abc import Sequence

from bwsandbox.validator.findings import file_finding
from bwsandbox.validator.model import Finding

NAMED = 5  # terminated users named in the message
SETTING = "engage_termination_limit"


def _share(count: int, active: int) -> str:
    share = count / active if active else 0.0
    return f"{share:.0%}" if share >= 0.01 or not count else f"{share:.1%}"


def within_limit(count: int, active: int, limit: float) -> bool:
    return count <= limit * active


def terminations(emails: Sequence[str], active: int, count: int | None = None) -> Finding:
    """`emails`: the terminated users' addresses, or the first NAMED of them
    in order when `count` gives how many there are."""
    count = len(emails) if count is None else count
    shown = sorted(emails)[:NAMED]
    more = f" and {count - len(shown)} more" if count > len(shown) else ""
    return file_finding(
        "TERMINATIONS",
        f"This engage file terminates {count} of the {active} active user{'' if active == 1 else 's'} "
        f"in the directory ({_share(count, active)}): {', '.join(shown)}{more}. An engage file is the full "
        "roster: every active user left out of it is deactivated today.",
        value=str(count),
    )


def termination_limit(count: int, active: int, limit: float) -> Finding:
    return file_finding(
        "TERMINATION_LIMIT",
        f"This engage file would terminate {count} of the {active} active users ({_share(count, active)}), "
        f"more than the safety limit of {limit:.0%} (setting {SETTING}): nothing in it is applied. Send "
        "the full roster; if the terminations are intended, raise the limit (\"engage_termination_limit\": "
        "0.5 in DATA_DIR/config.json, or BWSANDBOX_ENGAGE_TERMINATION_LIMIT=0.5; 1 switches the net off). "
        "The net is the sandbox's own, like Okta's import safeguard: production documents none.",
        value=str(count),
    )
