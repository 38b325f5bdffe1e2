"""Which file a certification runs, so the certificate can name it with its
sha256: the job a customer is told about is the job that was certified."""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path

from bwsandbox.certify.model import ScriptFile

# A program that runs a script named after it (`python3 job.py`,
# `/usr/bin/env bash export.sh`): given by its path it is an existing file
# too, but the script is the word that follows. Matched on the file name.
INTERPRETER = re.compile(
    r"^(python[\d.]*|pypy[\d.]*|sh|bash|dash|ash|ksh|mksh|zsh|fish|node|nodejs|deno|bun|perl[\d.]*"
    r"|ruby[\d.]*|php[\d.]*|pwsh|powershell|rscript|java|env|nice|nohup|timeout|time|sudo)(\.exe)?$",
    re.IGNORECASE,
)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def job_script(command: str, cwd: Path) -> ScriptFile | None:
    """The first word of `command` that is an existing file other than an
    interpreter (relative words against `cwd`, where the job runs), or None
    (a command line that is not a file, such as `python3 -c ...`)."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:  # unbalanced quotes: the shell will say so when it runs
        return None
    for word in words:
        if _ASSIGNMENT.match(word) or word.startswith("-"):
            continue
        path = Path(word).expanduser()
        if not path.is_absolute():
            path = cwd / path
        try:
            if not path.is_file() or INTERPRETER.match(path.name):
                continue
            digest, size = hashlib.sha256(), 0
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
        except OSError:  # unreadable: the job will fail on it, and the certificate has no hash
            continue
        return ScriptFile(path=word, sha256=digest.hexdigest(), bytes=size)
    return None
