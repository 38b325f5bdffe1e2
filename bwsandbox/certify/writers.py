"""The certificate in machine- and human-readable forms: JSON, JUnit XML (so a
vendor's CI shows each criterion as a test case), Markdown, and one
self-contained HTML file (the certificate a vendor hands to a customer), plus
the plain text of the failed runs' output that the terminal shows.

Every form names the job (its command, and its script's sha256 when the
command runs a file), each uploaded file with its sha256, each criterion with
its evidence and the timings of the runs it was judged from, and keeps the
tail of each run's stdout and stderr.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET

from bwsandbox.certify.criteria import DROPPED, REFUSED
from bwsandbox.certify.model import Certification, JobRun, Outcome, Result

DISCLAIMER = ("This run used bwsandbox, a local stand-in for the Betterworks SFTP user feed. It shows "
              "the export job behaves as production requires; it is not a statement by Betterworks.")
TITLE = "Betterworks SFTP user feed: pre-certification"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def printable(text: str) -> str:
    """Job output may hold control characters (colour codes), which XML
    forbids and a terminal or browser would act on: shown as their Unicode
    control pictures (ESC as ␛)."""
    return _CONTROL.sub(lambda m: chr(0x2421 if m.group() == "\x7f" else 0x2400 + ord(m.group())), text)


def _exit(run: JobRun) -> str:
    return "timed out" if run.exit_code is None else str(run.exit_code)


def _timing(cert: Certification, result: Result) -> str:
    return ", ".join(f"{label} {seconds:.1f} s" for label, seconds in cert.timings(result).items())


def _script(cert: Certification) -> str:
    if cert.script is None:
        return "none: the command names no script file"
    return f"{cert.script.path}: sha256 {cert.script.sha256} ({cert.script.bytes} bytes)"


def _faults(cert: Certification) -> str:
    ran = any(run.label in (DROPPED, REFUSED) for run in cert.runs)
    return "dropped connection, refused login" if ran else "skipped (--no-faults)"


def _tail_lines(text: str, lines: int) -> list[str]:
    kept = text.rstrip("\n").splitlines()
    return (["…"] if len(kept) > lines else []) + kept[-lines:]


def run_output_text(cert: Certification, lines: int = 15) -> str:
    """The terminal's account of each failed run (non-zero exit, timed out,
    or a criterion judged from it failed): the last lines of its stdout and
    stderr. Empty when no run failed."""
    failed = cert.failed_runs()
    if not failed:
        return ""
    out = ["Output of the runs that failed (last lines):"]
    for run in failed:
        out.append(f"  run {run.label}: exit {_exit(run)}, {run.seconds:.1f} s — {run.purpose}")
        for stream, text in (("stdout", run.stdout_tail), ("stderr", run.stderr_tail)):
            if not text.strip():
                out.append(f"    {stream}: (empty)")
                continue
            out.append(f"    {stream}:")
            out.extend(f"      {printable(line)}" for line in _tail_lines(text, lines))
    return "\n".join(out)


# -- JSON -----------------------------------------------------------------------------


def to_json(cert: Certification) -> str:
    return json.dumps(cert.to_dict(), indent=2, ensure_ascii=False) + "\n"


# -- JUnit ----------------------------------------------------------------------------


def _streams(runs: list[JobRun]) -> tuple[str, str]:
    out = "\n".join(f"--- run {r.label} (exit {_exit(r)}) stdout ---\n{r.stdout_tail}" for r in runs)
    err = "\n".join(f"--- run {r.label} (exit {_exit(r)}) stderr ---\n{r.stderr_tail}" for r in runs)
    return printable(out), printable(err)


def to_junit(cert: Certification) -> str:
    """One test case per criterion. A required criterion that failed is a
    failure; an advisory one not met is skipped with its advice, so a
    certification that passes never turns the vendor's CI red."""
    failures = sum(1 for r in cert.results if r.blocking)
    skipped = sum(1 for r in cert.results if r.outcome is not Outcome.PASS and not r.blocking)
    suite = ET.Element(
        "testsuite",
        name="bwsandbox certify",
        tests=str(len(cert.results)),
        failures=str(failures),
        skipped=str(skipped),
        timestamp=cert.started_at,
        time=f"{sum(run.seconds for run in cert.runs):.3f}",
    )
    props = ET.SubElement(suite, "properties")
    facts = [("bwsandbox.version", cert.version), ("command", cert.command), ("profile", cert.profile),
             ("script", _script(cert)), ("fault runs", _faults(cert))]
    facts += [(f"file {n}", f"{f.run}: {f.name} sha256 {f.sha256} ({f.bytes} bytes, {f.state})")
              for n, f in enumerate(cert.files, 1)]
    for name, value in facts:
        ET.SubElement(props, "property", name=name, value=printable(value))
    for r in cert.results:
        advisory = "" if r.criterion.required else " (advisory)"
        case = ET.SubElement(
            suite, "testcase", classname="bwsandbox.certify",
            name=f"{r.criterion.id} {r.criterion.title}{advisory}",
            time=f"{sum(cert.timings(r).values()):.3f}",
        )
        text = printable("\n".join(r.evidence))
        first = printable(r.evidence[0]) if r.evidence else ""
        if r.blocking:
            ET.SubElement(case, "failure", message=first, type="failure").text = text
        elif r.outcome is Outcome.FAIL:
            ET.SubElement(case, "skipped", message=f"advisory, not met: {first}").text = text
        elif r.outcome is Outcome.NOT_APPLICABLE:
            ET.SubElement(case, "skipped", message=text)
        else:
            ET.SubElement(case, "system-out").text = text
        if r.outcome is Outcome.FAIL:
            # What a CI page shows under the test: the job's own words.
            out, err = _streams([run for label in r.criterion.runs if (run := cert.run(label)) is not None])
            ET.SubElement(case, "system-out").text = out
            ET.SubElement(case, "system-err").text = err
    out, err = _streams(list(cert.runs))
    ET.SubElement(suite, "system-out").text = out
    ET.SubElement(suite, "system-err").text = err
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


# -- Markdown -------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*|\[\]])")


def _md_cell(text: str) -> str:
    """Plain text in a table cell: Markdown and HTML are shown, not obeyed."""
    text = html.escape(printable(text), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", "<br>")


def _md_code(text: str) -> str:
    """A code span in a table cell, whatever backticks and pipes it holds."""
    text = printable(text).replace("\n", " ").replace("|", "\\|")
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""  # CommonMark strips it again
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _md_block(text: str) -> list[str]:
    fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return [fence + "text", *printable(text).rstrip("\n").splitlines(), fence]


def to_markdown(cert: Certification) -> str:
    verdict = "PASSED" if cert.passed else "NOT PASSED"
    script = ("none (the command names no script file)" if cert.script is None else
              f"{_md_code(cert.script.path)} sha256 `{cert.script.sha256}` ({cert.script.bytes} bytes)")
    lines = [
        f"# {TITLE}",
        "",
        f"**Result: {verdict}**",
        "",
        "| | |",
        "|---|---|",
        f"| Tool | bwsandbox {_md_cell(cert.version)} |",
        f"| Date | {_md_cell(cert.started_at)} |",
        f"| Profile | {_md_cell(cert.profile)} |",
        f"| Export job | {_md_code(cert.command)} |",
        f"| Job script | {script} |",
        f"| Fault runs | {_faults(cert)} |",
        "",
        "## Criteria",
        "",
        "| Criterion | Required | Outcome | Evidence | Runs (timing) |",
        "|---|---|---|---|---|",
    ]
    for r in cert.results:
        outcome = {Outcome.PASS: "pass", Outcome.FAIL: "**FAIL**", Outcome.NOT_APPLICABLE: "n/a"}[r.outcome]
        lines.append(
            f"| {r.criterion.id} {_md_cell(r.criterion.title)} | {'yes' if r.criterion.required else 'no'} "
            f"| {outcome} | {_md_cell(chr(10).join(r.evidence))} | {_md_cell(_timing(cert, r))} |"
        )
    lines += ["", "## Uploaded files", ""]
    if cert.files:
        lines += ["| Run | File | Bytes | SHA-256 | State | Verdict |", "|---|---|---|---|---|---|"]
        lines += [f"| {_md_cell(f.run)} | {_md_code(f.name)} | {f.bytes} | `{f.sha256}` "
                  f"| {_md_cell(f.state)} | {_md_cell(f.verdict or '')} |" for f in cert.files]
    else:
        lines.append("None: the job uploaded nothing.")
    lines += ["", "## Job runs", "", "| Run | What it simulates | Started | Exit code | Seconds |",
              "|---|---|---|---|---|"]
    for run in cert.runs:
        lines.append(f"| {_md_cell(run.label)} | {_md_cell(run.purpose)} | {_md_cell(run.started_at)} "
                     f"| {_exit(run)} | {run.seconds:.1f} |")
    lines += ["", "## Job output", "", "The tail of each run's standard output and error.", ""]
    for run in cert.runs:
        lines += [f"### {run.label}: exit {_exit(run)}", ""]
        for stream, text in (("stdout", run.stdout_tail), ("stderr", run.stderr_tail)):
            lines += [f"{stream}:", ""] + (_md_block(text) if text.strip() else ["(empty)"]) + [""]
    lines += [DISCLAIMER, ""]
    return "\n".join(lines)


# -- HTML -----------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem;
       color: #1b1f24; }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #d0d7de; padding: 0.35rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.9em; }
pre { background: #f6f8fa; padding: 0.5rem; overflow-x: auto; white-space: pre-wrap; }
.verdict { font-size: 1.4rem; font-weight: bold; }
.pass { color: #1a7f37; } .fail { color: #cf222e; } .na { color: #6e7781; }
.evidence { white-space: pre-wrap; }
.note { color: #57606a; font-size: 0.9em; }
"""


def _h(text: str) -> str:
    return html.escape(printable(text), quote=True)


def _row(*cells: str, head: bool = False) -> str:
    tag = "th" if head else "td"
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


def to_html(cert: Certification) -> str:
    """One self-contained file: inline style, no script, no external asset
    (the Content-Security-Policy forbids loading any), every text escaped."""
    verdict = ("<p class=\"verdict pass\">PASSED</p>" if cert.passed
               else "<p class=\"verdict fail\">NOT PASSED</p>")
    script = ("none (the command names no script file)" if cert.script is None else
              f"<code>{_h(cert.script.path)}</code> sha256 <code>{_h(cert.script.sha256)}</code> "
              f"({cert.script.bytes} bytes)")
    facts = [
        ("Tool", f"bwsandbox {_h(cert.version)}"),
        ("Date", _h(cert.started_at)),
        ("Profile", _h(cert.profile)),
        ("Export job", f"<code>{_h(cert.command)}</code>"),
        ("Job script", script),
        ("Fault runs", _h(_faults(cert))),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">",
        f"<title>{_h(TITLE)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{_h(TITLE)}</h1>",
        verdict,
        "<table>", *(_row(f"<b>{k}</b>", v) for k, v in facts), "</table>",
        "<h2>Criteria</h2>",
        "<table>",
        _row("Criterion", "Required", "Outcome", "Evidence", "Runs (timing)", head=True),
    ]
    css = {Outcome.PASS: "pass", Outcome.FAIL: "fail", Outcome.NOT_APPLICABLE: "na"}
    for r in cert.results:
        label = {Outcome.PASS: "pass", Outcome.FAIL: "FAIL", Outcome.NOT_APPLICABLE: "n/a"}[r.outcome]
        parts.append(_row(
            f"{_h(r.criterion.id)} {_h(r.criterion.title)}",
            "yes" if r.criterion.required else "no (advisory)",
            f'<span class="{css[r.outcome]}">{label}</span>',
            f'<div class="evidence">{_h(chr(10).join(r.evidence))}</div>',
            _h(_timing(cert, r)),
        ))
    parts += ["</table>", "<h2>Uploaded files</h2>"]
    if cert.files:
        parts += ["<table>", _row("Run", "File", "Bytes", "SHA-256", "State", "Verdict", head=True)]
        parts += [_row(_h(f.run), f"<code>{_h(f.name)}</code>", str(f.bytes), f"<code>{_h(f.sha256)}</code>",
                       _h(f.state), _h(f.verdict or "")) for f in cert.files]
        parts.append("</table>")
    else:
        parts.append("<p>None: the job uploaded nothing.</p>")
    parts += ["<h2>Job runs</h2>", "<table>",
              _row("Run", "What it simulates", "Started", "Exit code", "Seconds", head=True)]
    parts += [_row(_h(run.label), _h(run.purpose), _h(run.started_at), _h(_exit(run)), f"{run.seconds:.1f}")
              for run in cert.runs]
    parts += ["</table>", "<h2>Job output</h2>", "<p>The tail of each run's standard output and error.</p>"]
    failed = {run.label for run in cert.failed_runs()}
    for run in cert.runs:
        parts.append(f"<details{' open' if run.label in failed else ''}>"
                     f"<summary>{_h(run.label)}: exit {_h(_exit(run))}</summary>")
        for stream, text in (("stdout", run.stdout_tail), ("stderr", run.stderr_tail)):
            parts.append(f"<p>{stream}:</p><pre>{_h(text) if text.strip() else '(empty)'}</pre>")
        parts.append("</details>")
    parts += [f'<p class="note">{_h(DISCLAIMER)}</p>', "</body>", "</html>", ""]
    return "\n".join(parts)
