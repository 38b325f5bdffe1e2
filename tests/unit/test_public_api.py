"""The curated public API (`bwsandbox.__all__`, docs/python-api.md): every
name resolves to the object its home module defines, and importing the
package loads none of them, so it stays a light guest in a host's process."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import pytest

import bwsandbox
import bwsandbox.testing


def test_every_public_name_resolves_to_the_object_of_its_home_module() -> None:
    homes = vars(bwsandbox)["_HOMES"]
    assert sorted(bwsandbox.__all__) == sorted([*homes, "__version__"])
    for name in bwsandbox.__all__:
        value = getattr(bwsandbox, name)
        if name != "__version__":
            assert value is getattr(importlib.import_module(homes[name]), name), name
    assert set(bwsandbox.__all__) <= set(dir(bwsandbox))


def test_the_testing_module_lists_what_it_offers_and_each_name_exists() -> None:
    assert bwsandbox.testing.__all__, "bwsandbox.testing has no __all__"
    for name in bwsandbox.testing.__all__:
        assert not name.startswith("_")
        assert getattr(bwsandbox.testing, name).__module__ == "bwsandbox.testing", name


def test_an_unknown_name_is_an_attribute_error_and_submodules_still_import() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Sandboxx'"):
        _ = bwsandbox.Sandboxx
    from bwsandbox import layout  # a submodule, not a public name: imported as before

    assert layout.__name__ == "bwsandbox.layout"


def test_importing_the_package_loads_no_public_name_and_no_heavy_library() -> None:
    code = textwrap.dedent(
        """
        import sys
        import bwsandbox
        ours = sorted(m for m in sys.modules if m.split(".")[0] == "bwsandbox")
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in
                       {"asyncssh", "cryptography", "numpy", "polars", "fastapi", "uvicorn",
                        "pysequoia", "rich"})
        print(ours, heavy)
        """
    )
    got = subprocess.run([sys.executable, "-W", "error", "-c", code],
                         capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "['bwsandbox', 'bwsandbox._version'] []"


def test_validate_from_the_package_judges_a_file_as_the_validator_does() -> None:
    validation = bwsandbox.validate(
        b"email,first_name,last_name\r\nada@example.com,Ada,Lovelace\r\nnot-an-email,B,C\r\n",
        bwsandbox.Context(),
        name="users.csv",
    )
    assert isinstance(validation, bwsandbox.Judgement)
    assert validation.plan["applied"]["created"] == 1  # type: ignore[index]
    report = validation.report
    assert isinstance(report, bwsandbox.Report)
    assert (report.total, report.valid) == (2, 1)
    [bad] = [f for f in report.findings if f.severity is bwsandbox.Severity.ERROR]
    assert isinstance(bad, bwsandbox.Finding) and bad.row == 3
