"""Production's exact strings (docs/production.md §4). Tests compare against these verbatim."""

from __future__ import annotations

EMAIL_REQUIRED = "Email address is required."
OWN_MANAGER = "User cannot be their own manager."
SHARED_EMAIL = "Multiple active users cannot share an email address."


def manager_not_found(address: str) -> str:
    return f"Could not find manager email: {address}"


def manager_id_not_found(employee_id: str) -> str:
    """The same message for a manager named by employee id (its wording is the sandbox's)."""
    return f"Could not find manager id: {employee_id}"


def license_limit(additional: int, available: int) -> str:
    return (
        f"You are attempting to create {additional} additional users. However, you have "
        f"{available} available user licenses. No users have been created. Please either "
        "reduce the size of your import, deactivate existing users, or add additional licenses."
    )


def entry_prefix(n: int, name: str) -> str:
    """Older emails prefix each row's errors with this (docs/production.md §4)."""
    return f"Entry #{n} - {name} did not process, due to the following errors: "
