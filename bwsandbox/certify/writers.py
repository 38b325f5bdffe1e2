"""The certificate in three machine- and human-readable forms: JSON, JUnit XML
(so a vendor's CI shows each criterion as a test case) and Markdown (the
certificate a vendor hands to a customer)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from bwsandbox.certify.model import Certification, Outcome


def to_json(cert: Certification) -> str:
    return json.dumps(cert.to_dict(), indent=2, ensure_ascii=False) + "\n"


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
    )
    for r in cert.results:
        advisory = "" if r.criterion.required else " (advisory)"
        case = ET.SubElement(
            suite, "testcase", classname="bwsandbox.certify",
            name=f"{r.criterion.id} {r.criterion.title}{advisory}",
        )
        text = "\n".join(r.evidence)
        first = r.evidence[0] if r.evidence else ""
        if r.blocking:
            ET.SubElement(case, "failure", message=first, type="failure").text = text
        elif r.outcome is Outcome.FAIL:
            ET.SubElement(case, "skipped", message=f"advisory, not met: {first}").text = text
        elif r.outcome is Outcome.NOT_APPLICABLE:
            ET.SubElement(case, "skipped", message=text)
        else:
            ET.SubElement(case, "system-out").text = text
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def to_markdown(cert: Certification) -> str:
    verdict = "PASSED" if cert.passed else "NOT PASSED"
    lines = [
        "# Betterworks SFTP user feed: pre-certification",
        "",
        f"**Result: {verdict}**",
        "",
        "| | |",
        "|---|---|",
        f"| Tool | bwsandbox {cert.version} |",
        f"| Date | {cert.started_at} |",
        f"| Profile | {cert.profile} |",
        f"| Export job | `{_md_cell(cert.command)}` |",
        "",
        "## Criteria",
        "",
        "| Criterion | Required | Outcome | Evidence |",
        "|---|---|---|---|",
    ]
    for r in cert.results:
        outcome = {Outcome.PASS: "pass", Outcome.FAIL: "**FAIL**", Outcome.NOT_APPLICABLE: "n/a"}[r.outcome]
        lines.append(
            f"| {r.criterion.id} {_md_cell(r.criterion.title)} | {'yes' if r.criterion.required else 'no'} "
            f"| {outcome} | {_md_cell(chr(10).join(r.evidence))} |"
        )
    lines += ["", "## Job runs", "", "| Run | Exit code | Seconds |", "|---|---|---|"]
    for run in cert.runs:
        code = "timed out" if run.exit_code is None else str(run.exit_code)
        lines.append(f"| {_md_cell(run.label)} | {code} | {run.seconds:.1f} |")
    lines += [
        "",
        "This run used bwsandbox, a local stand-in for the Betterworks SFTP user feed. It shows the",
        "export job behaves as production requires; it is not a statement by Betterworks.",
        "",
    ]
    return "\n".join(lines)
