"""The serve dashboard shows what a developer needs to connect and follow uploads."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from bwsandbox.cli.live import Dashboard, FileRow, HostKeyInfo, fit, log_line, render, run_live

KEY = HostKeyInfo(type="ssh-ed25519", bits=255, sha256="SHA256:abcDEF123", md5="MD5:aa:bb:cc")
FILE = FileRow(id=7, tenant="demo", name="users_20261125.csv", bytes=1234,
               received_at="2026-11-25T10:00:00+00:00", state="done", verdict="partial",
               counts={"created": 3, "skipped": 1})


def _dash(files: tuple[FileRow, ...] = (FILE,)) -> Dashboard:
    return Dashboard(endpoints={"us": ("127.0.0.1", 2222), "eu": ("127.0.0.1", 2223)},
                     host_keys=(KEY,), credentials=(("demo", "us", "demo", "s3cret"),), files=files)


def _text(d: Dashboard) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(render(d))
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def test_dashboard_shows_endpoints_credentials_filezilla_fingerprint_and_files() -> None:
    out = _text(_dash())
    assert "sftp://127.0.0.1:2222" in out and "sftp://127.0.0.1:2223" in out
    assert "s3cret" in out
    assert "ssh-ed25519 255" in out and "SHA256:abcDEF123" in out
    assert "users_20261125.csv" in out and "partial" in out and "created 3" in out


def test_empty_dashboard_says_it_waits_for_uploads() -> None:
    assert "waiting for uploads" in _text(_dash(files=()))


def test_non_terminal_prints_one_line_per_state_change() -> None:
    """A file a previous run finished is history; each state change of this
    run is one line, stamped when a stamp is given."""
    stream = io.StringIO()
    queued = FileRow(id=8, tenant="demo", name="b.csv", bytes=1, received_at="t", state="queued",
                     verdict=None)
    done = FileRow(id=8, tenant="demo", name="b.csv", bytes=1, received_at="t", state="done",
                   verdict="accepted")
    snapshots = iter([_dash(), _dash(), _dash(files=(FILE, queued)), _dash(files=(FILE, done))])
    stop = threading.Event()
    last = _dash()

    def snapshot() -> Dashboard:
        nonlocal last
        try:
            last = next(snapshots)
        except StopIteration:
            stop.set()
        return last

    run_live(snapshot, stop, console=Console(file=stream, color_system=None), interval=0, stamp=lambda: "T")
    lines = stream.getvalue().splitlines()
    assert lines == ["T file #8 tenant=demo name=b.csv bytes=1 state=queued",
                     "T file #8 tenant=demo name=b.csv bytes=1 state=done verdict=accepted"]


HOSTILE = FileRow(id=9, tenant="demo", name="evil\x1b[2J[bold red]x\u202e\nfile #1 state=done.csv", bytes=5,
                  received_at="2026-11-25T10:00:00+00:00", state="done", verdict="accepted")


def test_an_incomplete_file_says_why_on_its_line() -> None:
    cut = FileRow(id=3, tenant="demo", name="c.csv", bytes=9, received_at="t", state="incomplete",
                  verdict=None, detail="the connection ended before the client closed the file")
    assert log_line(cut) == ("file #3 tenant=demo name=c.csv bytes=9 state=incomplete: the connection ended "
                             "before the client closed the file")


def test_a_hostile_name_is_one_line_of_log_with_its_controls_escaped() -> None:
    line = log_line(HOSTILE)
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert "name=evil\\x1b[2J[bold red]x\\u202e\\nfile #1 state=done.csv" in line


def test_the_dashboard_escapes_markup_and_controls_in_names() -> None:
    console = Console(file=io.StringIO(), width=200, color_system="truecolor", force_terminal=True)
    console.print(render(_dash(files=(HOSTILE,)), 200))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[2J" not in out and "\u202e" not in out  # the real characters never reach the terminal
    assert "[bold red]" in _text(_dash(files=(HOSTILE,)))  # markup shown as written, not applied


def test_at_80_columns_the_files_table_keeps_whole_columns() -> None:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(render(_dash(), 80))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "users_20261125.csv" in out and "partial" in out and "done" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "received" not in out  # the least useful columns went first


def test_the_dashboard_is_cut_to_the_terminal_height() -> None:
    many = tuple(FileRow(id=i, tenant="demo", name=f"f{i}.csv", bytes=1, received_at="t", state="done",
                         verdict="accepted") for i in range(50))
    console = Console(file=io.StringIO(), width=120, height=40, color_system=None)
    fitted = fit(_dash(files=many), console)
    assert 1 <= len(fitted.files) < 50
    assert len(console.render_lines(render(fitted), pad=False)) <= 40
