"""The CLI contract every command shares: exit codes and no tracebacks."""

from __future__ import annotations

import pytest

from bwsandbox.cli.main import main


def test_version_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "bwsandbox" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2


def test_validate_loads_neither_asyncssh_nor_the_server() -> None:
    # `validate`'s wall time is a target (docs/benchmarks.md): only its own command module is imported.
    import subprocess
    import sys
    from pathlib import Path

    heavy = ("asyncssh", "bwsandbox.server", "bwsandbox.sandbox")
    code = (
        "import sys; from bwsandbox.cli.main import main; "
        "main(['validate', '--format', 'json', sys.argv[1]]); "
        f"print(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    )
    fixture = str(Path(__file__).resolve().parents[2] / "fixtures" / "valid_users.csv")
    out = subprocess.run([sys.executable, "-c", code, fixture], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
