"""The certificate: its writers, the job, its files, the evidence and the job's own words."""

from __future__ import annotations

import hashlib
import json
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from certify_helpers import DROPPED_ONCE, GOOD, _good_runs, _judge

from bwsandbox.certify.model import Certification, JobRun, Result, ScriptFile, UploadedFile
from bwsandbox.certify.script import job_script
from bwsandbox.certify.writers import run_output_text, to_html, to_json, to_junit, to_markdown


def test_writers_carry_the_verdict_and_evidence() -> None:
    results = _judge(*_good_runs(), roster=None)
    cert = Certification(command="./export.sh", version="0.1.0", started_at="2026-11-25T10:00:00+00:00",
                         profile="core", results=results)
    assert cert.passed
    assert '"passed": true' in to_json(cert)
    assert 'tests="18"' in to_junit(cert) and 'failures="0"' in to_junit(cert)
    assert "**Result: PASSED**" in to_markdown(cert)
    failed = Certification(command="x", version="0.1.0", started_at="t", profile="core",
                           results=_judge(*_good_runs()[:2], replace(_good_runs()[2], auth_ok=1,
                                                                     uploads=(GOOD,)), roster=None))
    assert not failed.passed
    assert "<failure" in to_junit(failed) and "NOT PASSED" in to_markdown(failed)


# -- the certificate: the job, its files, the evidence, the job's own words ------------


def _cert(results: tuple[Result, ...] | None = None, *, command: str = "python3 job.py") -> Certification:
    runs = (
        JobRun(label="first", exit_code=0, seconds=1.25, stdout_tail="uploaded users.csv\n",
               stderr_tail="", started_at="2026-11-25T10:00:00+00:00", purpose="the first run"),
        JobRun(label="rerun", exit_code=0, seconds=1.0, stdout_tail="", stderr_tail=""),
        JobRun(label="dropped-connection", exit_code=0, seconds=2.5, stdout_tail="",
               stderr_tail="export failed: EOFError()\n", purpose="the connection drops"),
        JobRun(label="refused-login", exit_code=2, seconds=0.5, stdout_tail="",
               stderr_tail="".join(f"line {n}\n" for n in range(40)) + "Authentication failed.\n"),
        JobRun(label="rotated", exit_code=3, seconds=0.25, stdout_tail="",
               stderr_tail="host key changed <b>&\x1b[31m\n"),
    )
    files = (UploadedFile(run="first", name="users_<1>.csv", bytes=120, sha256="ab" * 32,
                          state="done", verdict="accepted"),)
    return Certification(
        command=command, version="0.1.0", started_at="2026-11-25T10:00:00+00:00", profile="core",
        results=results if results is not None else _judge(*_good_runs(), dropped=replace(
            DROPPED_ONCE, exit_code=0)),
        runs=runs, script=ScriptFile(path="job.py", sha256="cd" * 32, bytes=42), files=files,
    )


def test_the_json_report_names_the_job_its_files_and_each_criterions_runs_and_timings() -> None:
    report = json.loads(to_json(_cert()))
    assert report["command"] == "python3 job.py"
    assert report["script"] == {"path": "job.py", "sha256": "cd" * 32, "bytes": 42}
    assert report["files"] == [{"run": "first", "name": "users_<1>.csv", "bytes": 120, "sha256": "ab" * 32,
                                "state": "done", "verdict": "accepted"}]
    criteria = {c["id"]: c for c in report["criteria"]}
    assert criteria["C04"]["runs"] == ["first", "rerun"]
    assert criteria["C04"]["timings"] == {"first": 1.25, "rerun": 1.0}
    assert criteria["C13"]["outcome"] == "fail"
    runs = {r["label"]: r for r in report["runs"]}
    assert runs["dropped-connection"]["stderr_tail"] == "export failed: EOFError()\n"
    assert runs["first"]["started_at"] == "2026-11-25T10:00:00+00:00"


def test_the_terminal_shows_the_output_of_each_failed_run_only() -> None:
    text = run_output_text(_cert())
    # dropped-connection exited 0 but C13, judged from it, failed: its output says why.
    assert "run dropped-connection: exit 0, 2.5 s — the connection drops" in text
    assert "export failed: EOFError()" in text
    assert "run refused-login: exit 2" in text and "Authentication failed." in text
    assert "line 39" in text and "line 20" not in text  # the last lines only
    assert "run rotated: exit 3" in text and "\x1b" not in text and "␛[31m" in text
    assert "run first" not in text and "run rerun" not in text
    passed = _cert(_judge(*_good_runs()))
    assert "run dropped-connection" not in run_output_text(passed)  # exit 0 and nothing failed
    quiet = replace(passed, runs=tuple(replace(r, exit_code=0) for r in passed.runs))
    assert run_output_text(quiet) == ""


def test_the_junit_report_carries_the_job_output_under_each_failed_criterion() -> None:
    suite = ET.fromstring(to_junit(_cert()))
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["script"] == f"job.py: sha256 {'cd' * 32} (42 bytes)"
    assert props["file 1"] == f"first: users_<1>.csv sha256 {'ab' * 32} (120 bytes, done)"
    cases = {c.get("name", "").split()[0]: c for c in suite.iter("testcase")}
    c13 = cases["C13"]
    assert c13.find("failure") is not None and c13.get("time") == "2.500"
    assert "export failed: EOFError()" in (c13.findtext("system-err") or "")
    # An advisory criterion not met is skipped with its advice: never a red CI.
    c15 = cases["C15"]
    assert c15.find("failure") is None and c15.get("name", "").endswith("(advisory)")
    assert (c15.find("skipped") is not None
            and c15.find("skipped").get("message", "").startswith("advisory, not met: after the connection"))
    assert (suite.get("failures"), suite.get("skipped")) == ("1", "2")  # C13; C08 n/a and C15
    assert "␛[31m" in (suite.findtext("system-err") or "")  # every run, control characters shown


def test_the_markdown_certificate_records_the_job_files_evidence_timings_and_output() -> None:
    text = to_markdown(_cert(command="./export.sh --tag `x` | tee log"))
    assert "| Export job | ``./export.sh --tag `x` \\| tee log`` |" in text
    assert f"| Job script | `job.py` sha256 `{'cd' * 32}` (42 bytes) |" in text
    assert f"| first | `users_<1>.csv` | 120 | `{'ab' * 32}` | done | accepted |" in text
    assert "| first 1.2 s, rerun 1.0 s |" in text  # C04's runs and their timings
    assert "host key changed &lt;b&gt;&amp;" not in text  # output is in code blocks, verbatim
    assert "```text\nhost key changed <b>&␛[31m\n```" in text
    assert "| Fault runs | dropped connection, refused login |" in text


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_html_certificate_is_one_self_contained_escaped_file() -> None:
    evil = "./export.sh '<script>alert(1)</script>' <img src=http://x/y.png>"
    page = to_html(_cert(command=evil))
    parser = _Tags()
    parser.feed(page)
    tags = {tag for tag, _ in parser.tags}
    assert "script" not in tags and "img" not in tags and "link" not in tags
    assert not any(k in ("src", "href") for _, attrs in parser.tags for k in attrs)
    assert "default-src 'none'" in page  # nothing may load, should anything slip through
    text = "".join(parser.text)
    assert evil in text  # shown as written, escaped
    for expected in ("bwsandbox 0.1.0", "2026-11-25T10:00:00+00:00", "cd" * 32, "ab" * 32, "users_<1>.csv",
                     "C13 Dropped connection during upload: job reports the failure",
                     "export failed: EOFError()", "first 1.2 s, rerun 1.0 s", "NOT PASSED"):
        assert expected in text, expected
    assert "\x1b" not in page


# -- which file the command runs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "script"),
    [
        ("./export.sh", "export.sh"),
        ("python3 job.py --since yesterday", "job.py"),
        ("{python} job.py", "job.py"),  # an interpreter given by its path is not the job
        ("/usr/bin/env bash export.sh", "export.sh"),
        ("TZ=UTC sh -e export.sh", "export.sh"),
        ("python3 -c 'print(1)'", None),
        ("./missing.sh", None),
        ("sh 'unbalanced", None),
    ],
)
def test_the_certificate_hashes_the_script_the_command_runs(
    tmp_path: Path, command: str, script: str | None
) -> None:
    (tmp_path / "export.sh").write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "job.py").write_bytes(b"print('job')\n")
    found = job_script(command.format(python=sys.executable), tmp_path)
    if script is None:
        assert found is None
    else:
        assert found is not None and Path(found.path).name == script
        data = (tmp_path / script).read_bytes()
        assert (found.sha256, found.bytes) == (hashlib.sha256(data).hexdigest(), len(data))
