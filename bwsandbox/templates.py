"""Blank templates and filled examples (`bwsandbox template`).

Built from the spec tables, so a template can never drift from what the
validator accepts; a test validates every example this module writes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

from bwsandbox.spec.fields import CORE_FIELDS, DEPARTMENT_FIELDS, ENGAGE_FIELDS, Profile

# The basic core template: what most HRIS exports send (docs/production.md §3).
CORE_BASIC = (
    "email",
    "first_name",
    "last_name",
    "employee_id",
    "manager_email",
    "department_name",
    "title",
)

_PEOPLE = (
    # email, first, last, employee id, manager, department, title, location, preferred,
    # phone, on_leave, deactivation date (mm/dd/yyyy, en-US), mobile
    ("ada.lovelace@example.com", "Ada", "Lovelace", "00017", "", "Engineering",
     "Chief Engineer", "London", "Ada", "+44 20 7946 0000", "false", "", "+442079460000"),
    ("grace.hopper@example.com", "Grace", "Hopper", "00042", "ada.lovelace@example.com",
     "Engineering", "Compiler Lead", "New York", "", "+1 212 555 0142", "false", "", "+12125550142"),
    ("alan.turing@example.com", "Alan", "Turing", "00108", "ada.lovelace@example.com",
     "Research", "Researcher", "Manchester", "", "", "true", "", "+441615550108"),
    ("katherine.johnson@example.com", "Katherine", "Johnson", "00256",
     "grace.hopper@example.com", "Engineering", "Analyst", "Hampton", "Katie", "", "false",
     "12/31/2030", "+17575550256"),
)


@dataclass(frozen=True, slots=True)
class TemplateFile:
    name: str
    content: str


def _csv(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _person_row(person: tuple[str, ...], header: tuple[str, ...]) -> tuple[str, ...]:
    (email, first, last, eid, manager, dept, title, location, preferred,
     phone, on_leave, deactivation, mobile) = person
    values = {
        "email": email, "first_name": first, "last_name": last, "employee_id": eid,
        "manager_email": manager, "department_name": dept, "title": title,
        "location": location, "preferred_name": preferred, "phone": phone,
        "on_leave": on_leave, "deactivation_date": deactivation, "mobile": mobile,
        "locale": "en-US",
    }
    return tuple(values.get(h, "") for h in header)


def build(profile: Profile, *, advanced: bool = False, now: dt.datetime | None = None) -> list[TemplateFile]:
    """The files `bwsandbox template` writes, in a stable order.

    The filled examples are named as production asks an upload to be (docs/production.md
    §1): a core example carries the day (`users_example_YYYYMMDD.csv`),
    the engage one is `employees.YYYYMMDDHHMM.csv`, the name to encrypt to
    `….csv.pgp`; so uploading one as it is earns no notice about its name."""
    now = now or dt.datetime.now()
    if profile is Profile.ENGAGE:
        header = tuple(ENGAGE_FIELDS)
        prefix = "engage_employees"
        example = f"employees.{now:%Y%m%d%H%M}.csv"
    else:
        header = tuple(h for h in CORE_FIELDS if h != "manager_id") if advanced else CORE_BASIC
        prefix = "users"
        example = f"users_example_{now:%Y%m%d}.csv"
    files = [
        TemplateFile(f"{prefix}_template.csv", _csv(header, [])),
        TemplateFile(example, _csv(header, [_person_row(p, header) for p in _PEOPLE])),
    ]
    if advanced and profile is Profile.CORE:
        dept_header = tuple(DEPARTMENT_FIELDS)
        files += [
            TemplateFile("departments_template.csv", _csv(dept_header, [])),
            TemplateFile(
                f"departments_example_{now:%Y%m%d}.csv",
                _csv(dept_header, [("Engineering", "", "true"), ("Research", "Engineering", "true")]),
            ),
        ]
    return files
