"""What one file may cost the simulated vendor app (docs/security.md
"Limits", "Compression bombs"): a PGP compression bomb stops at
`max_decrypted_bytes`; a report keeps `max_findings_per_code` of each code
and fits `max_report_bytes`; the error file and its emailed copy stop at
their byte bounds; the email still counts every error."""

from __future__ import annotations

import csv
import email
import io
import json
import shutil
import time
from email import policy
from pathlib import Path

import pytest
from ingest_env import Env

from bwsandbox import tenants
from bwsandbox.ingest import pgp, reports
from bwsandbox.spec.fields import Profile

DATA = Path(__file__).parent / "data"
# gpg --compress-algo zlib -z 9 -e of a 64 MiB CSV (a header, then 'a' * 64 MiB):
# 84 KB on disk, 64 MiB once inflated. Its key is pgp-bomb.secret.asc.
BOMB = DATA / "pgp-bomb-64mib.pgp"


def _bomb_key(env: Env, tenant: tenants.Tenant) -> None:
    folder = pgp.key_dir(env.settings.data_dir, tenant)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / "pgp-bomb.secret.asc", folder / "secret.asc")


# -- a compression bomb -------------------------------------------------------------------


def test_a_compression_bomb_stops_at_max_decrypted_bytes(tmp_path: Path) -> None:
    env = Env(tmp_path, max_decrypted_bytes=1024**2)
    t = env.tenant("acme", licenses=10**6)
    _bomb_key(env, t)
    started = time.monotonic()
    with pytest.raises(pgp.PgpProblem) as problem:
        pgp.decrypt(BOMB.read_bytes(), env.settings.data_dir, t, "users.csv.pgp", max_bytes=1024**2)
    assert time.monotonic() - started < 10
    assert problem.value.code == "PGP_TOO_LARGE"
    assert "more than 1,048,576 bytes (max_decrypted_bytes)" in problem.value.message


def test_under_the_bound_the_same_file_decrypts_whole(tmp_path: Path) -> None:
    env = Env(tmp_path)
    t = env.tenant("acme", licenses=10**6)
    _bomb_key(env, t)
    plain = pgp.decrypt(BOMB.read_bytes(), env.settings.data_dir, t, "users.csv.pgp", max_bytes=65 * 1024**2)
    assert len(plain) == len(b"email,first_name,last_name\n") + 64 * 1024**2


def test_the_worker_rejects_a_bomb_with_a_report_and_an_email(tmp_path: Path) -> None:
    env = Env(tmp_path, max_decrypted_bytes=1024**2)
    t = env.tenant("eng", Profile.ENGAGE, licenses=10**6)
    _bomb_key(env, t)
    data = env.put(t, "employees.202603010900.csv.pgp", BOMB.read_bytes())
    env.put(t, "employees.202603010900.csv.done.pgp", b"")
    assert env.worker.process_pending() == [data]
    report = env.report(data)
    assert report["verdict"] == "rejected"
    assert [f["code"] for f in report["findings"]] == ["PGP_TOO_LARGE"]
    assert env.conn.execute("SELECT COUNT(*) FROM emails WHERE file_id = ?", (data,)).fetchone()[0] == 1


def test_decryption_errors_keep_their_codes(tmp_path: Path) -> None:
    env = Env(tmp_path)
    t = env.tenant("acme", licenses=10**6)
    # No key copied in: the bomb is encrypted to another key than this tenant's.
    with pytest.raises(pgp.PgpProblem) as wrong:
        pgp.decrypt(BOMB.read_bytes(), env.settings.data_dir, t, "users.csv.pgp")
    assert wrong.value.code == "PGP_WRONG_KEY"
    with pytest.raises(pgp.PgpProblem) as damaged:
        pgp.decrypt(b"\x85\x01\x0c" + b"\x00" * 40, env.settings.data_dir, t, "users.csv.pgp")
    assert damaged.value.code == "PGP_INVALID"
    public = pgp.public_key(env.settings.data_dir, t)
    fine = pgp.encrypt_for(b"email,first_name,last_name\na@b.co,A,B\n", public)
    assert pgp.decrypt(fine, env.settings.data_dir, t, "users.csv.pgp").startswith(b"email,")


# -- reports, error files and emails --------------------------------------------------------


def _many_errors(rows: int) -> bytes:
    return ("email,first_name,last_name,title\n"
            + "".join(f"not-an-address-{i},A,B,{'t' * 100}\n" for i in range(rows))).encode()


def test_a_report_keeps_max_findings_per_code_and_counts_the_rest(tmp_path: Path) -> None:
    env = Env(tmp_path, max_findings_per_code=10)
    t = env.tenant("acme", licenses=10**6)
    file_id = env.put(t, "users_20260301.csv", _many_errors(500))
    env.worker.process_pending()
    report = env.report(file_id)
    assert [f["code"] for f in report["findings"]].count("EMAIL_INVALID") == 10
    assert report["findings_not_shown"] == {"EMAIL_INVALID": 490}
    assert report["rows"] == {"total": 500, "valid": 0, "skipped": 500}  # counted over every finding
    counts = json.loads(env.conn.execute("SELECT counts_json FROM files").fetchone()[0])
    assert counts["errors"] == 500
    raw = env.conn.execute("SELECT message FROM emails WHERE file_id = ?", (file_id,)).fetchone()[0]
    msg = email.message_from_bytes(bytes(raw), policy=policy.default)
    assert msg["Subject"] == "Betterworks user import: 500 error(s) in users_20260301.csv"
    body = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert body.count("Entry #") == 10 and "490 more error(s) are not listed here" in body
    (attachment,) = list(msg.iter_attachments())
    rows = list(csv.reader(io.StringIO(attachment.get_content())))
    assert len(rows) == 501  # the error file still lists every row


def test_the_error_file_and_the_attachment_stop_at_their_bounds(tmp_path: Path) -> None:
    env = Env(tmp_path, max_error_file_bytes=64 * 1024, max_attachment_bytes=16 * 1024)
    t = env.tenant("acme", licenses=10**6)
    file_id = env.put(t, "users_20260301.csv", _many_errors(5000))
    env.worker.process_pending()
    stored = env.conn.execute(
        "SELECT errors_csv FROM file_outputs WHERE file_id = ?", (file_id,)).fetchone()[0]
    assert 32 * 1024 < len(stored) <= 64 * 1024
    assert b"more row(s) with errors or warnings are not in this file" in stored.splitlines()[-1]
    raw = env.conn.execute("SELECT message FROM emails WHERE file_id = ?", (file_id,)).fetchone()[0]
    (attachment,) = list(email.message_from_bytes(bytes(raw), policy=policy.default).iter_attachments())
    content = attachment.get_payload(decode=True)
    assert len(content) <= 16 * 1024 and b"not in this file" in content.splitlines()[-1]
    published = layout_reports(env, t) / "users_20260301.csv.errors.csv"
    assert published.read_bytes() == bytes(stored)


def layout_reports(env: Env, tenant: tenants.Tenant) -> Path:
    from bwsandbox import layout

    return layout.reports_dir(env.settings.data_dir, tenant)


def test_a_report_over_max_report_bytes_keeps_fewer_findings_per_code() -> None:
    base: dict[str, object] = {
        "verdict": "partial",
        "findings": [{"code": c, "severity": "error", "row": r, "column": "x", "value": "v" * 5000,
                      "message": "m" * 5000} for c in ("A", "B") for r in range(2, 202)],
        "changes": [{"row": 2, "email": "a@b.co", "action": "updated",
                     "fields": {"title": ["o" * 5000, "n"]}}],
    }
    capped = reports.cap(base, per_code=1000, max_bytes=200_000)
    assert len(json.dumps(capped, indent=2).encode()) <= 200_000
    shown = capped["findings"]
    assert isinstance(shown, list) and 2 <= len(shown) < 400
    hidden = capped["findings_not_shown"]
    assert isinstance(hidden, dict) and sum(hidden.values()) + len(shown) == 400
    first = shown[0]
    assert len(first["value"]) < 1100 and first["value"].endswith("(4,000 more characters)")
    assert reports.error_count(capped) == 400


# -- every CSV the sandbox writes -------------------------------------------------------------


def test_directory_csv_exports_never_hand_excel_a_formula(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bwsandbox.cli.main import main
    from bwsandbox.validator.formulas import needs_prefix

    env = Env(tmp_path)
    t = env.tenant("acme", licenses=10**6)
    env.put(t, "users_20260301.csv", b'email,first_name,last_name,title,phone\n'
                                     b'ann@x.com,Ann,@Lee,"=HYPERLINK(""http://x"",""y"")",+1 555 0100\n')
    env.worker.process_pending()
    data = ["--data-dir", str(env.settings.data_dir), "--tenant", "acme", "--format", "csv"]
    assert main(["directory", *data]) == 0
    (row,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert row["title"] == "'=HYPERLINK(\"http://x\",\"y\")" and row["last_name"] == "'@Lee"
    assert row["phone"] == "+1 555 0100"  # a phone number is no formula
    assert main(["directory", *data, "--history"]) == 0
    cells = [c for r in csv.reader(io.StringIO(capsys.readouterr().out)) for c in r]
    assert "'=HYPERLINK(\"http://x\",\"y\")" in cells and not [c for c in cells if needs_prefix(c)]
