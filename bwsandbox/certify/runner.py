"""Run a vendor's real export job against a fresh sandbox and observe it.

The runs (see `criteria.py`): `first`, `rerun` (same data), unless
`--no-faults` the two fault runs `dropped-connection` and `refused-login`
(a fault of bwsandbox/faults.py planted for the one run, firing once), and
last `rotated`, after the host key was changed on purpose (docs/production.md §2). The
rotated run restarts the sandbox on the *same ports*, so a client that pinned
the key sees a changed key, not an unknown one.

The job gets its connection details only from the environment, as a real
scheduled job would read them from its configuration:

    BWSANDBOX_HOST, BWSANDBOX_PORT, BWSANDBOX_USERNAME, BWSANDBOX_PASSWORD,
    BWSANDBOX_KNOWN_HOSTS           an OpenSSH known_hosts file with every host key
    BWSANDBOX_HOSTKEY_SHA256, _MD5  OpenSSH "SHA256:…" / "MD5:aa:bb:…" of the
                                    ed25519 key: what OpenSSH, PuTTY, FileZilla
                                    and paramiko show
    BWSANDBOX_HOSTKEY_SHA256_ED25519, _ECDSA, _RSA
                                    OpenSSH "SHA256:…" of each key type
    BWSANDBOX_HOSTKEY_CURL_SHA256   curl's --hostpubsha256 value (base64, no
                                    prefix) of the ECDSA key, the one
                                    curl/libssh2 negotiates (docs/production.md §2)
    BWSANDBOX_HOSTKEY_CURL_MD5      curl's --hostpubmd5 value (32 hex digits), same key
    BWSANDBOX_HOSTKEY_B64           same as BWSANDBOX_HOSTKEY_CURL_SHA256 (older name)
    BWSANDBOX_DROP_FOLDER           "/incoming" (core) or "/" (engage)
    BWSANDBOX_PGP_PUBLIC_KEY        engage only: path of the tenant's armored
                                    public key, the one files are encrypted to

Engage names carry the minute (`employees.YYYYMMDDHHMM.csv.pgp`, docs/production.md §1), so
the re-run starts in the next minute: a daily job never sends the same name
twice, and C04 would otherwise fail a correct job. A core job's name carries
the day (docs/production.md §1): a re-run on the same day may send the same name, which C04
accepts (C12 advises).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shlex
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bwsandbox import faults, layout, store
from bwsandbox import tenants as tenants_mod
from bwsandbox._version import __version__
from bwsandbox.certify.criteria import DROP_AFTER_BYTES, DROPPED, FIRST, REFUSED, RERUN, ROTATED, judge
from bwsandbox.certify.job import run_job
from bwsandbox.certify.model import Certification, JobRun, UploadedFile
from bwsandbox.certify.observations import RunObservation, Upload
from bwsandbox.certify.script import job_script
from bwsandbox.clock import Clock
from bwsandbox.config import Settings, load
from bwsandbox.errors import UsageError
from bwsandbox.ingest import admin, directory, files, pgp
from bwsandbox.ingest.files import FileRecord
from bwsandbox.ingest.plan import validate
from bwsandbox.ingest.process import decrypt
from bwsandbox.ingest.queue import MARKER_DETAIL
from bwsandbox.sandbox import Sandbox
from bwsandbox.server import audit, hostkeys
from bwsandbox.spec.codes import Scope, Severity
from bwsandbox.spec.fields import Profile
from bwsandbox.tenants import Region, Tenant
from bwsandbox.validator import Context

TENANT = "vendor"
HOSTKEY_SUFFIXES = (("ED25519", "ssh-ed25519"), ("ECDSA", "ecdsa-sha2-nistp256"), ("RSA", "ssh-rsa"))
Progress = Callable[[str], None]


def _tail(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


class _Harness:
    """One fresh sandbox for one certification, and what the job did to it."""

    def __init__(self, work: Path, profile: Profile, roster: bytes | None, timeout: float) -> None:
        self.work = work
        self.timeout = timeout
        self.password = secrets.token_urlsafe(12)
        self.settings: Settings = load(
            {"data_dir": work / "data", "host": "127.0.0.1", "port": 0, "eu_port": 0, "queue_delay": 0.0},
            env={},
        )
        self.conn = store.connect(self.settings.db_path)
        with store.transaction(self.conn):
            self.tenant: Tenant = tenants_mod.add(
                self.conn, name=TENANT, username=TENANT, password=self.password, region=Region.US,
                profile=profile, contact="technical-contact@example.com", created_at=Clock().iso(),
            )
        self.roster = roster
        self.sandbox: Sandbox | None = None
        self.known_hosts = work / "known_hosts"

    # -- lifecycle ---------------------------------------------------------------
    def start(self, port: int = 0) -> None:
        settings = load(
            {"data_dir": self.settings.data_dir, "host": "127.0.0.1", "port": port, "eu_port": 0,
             "queue_delay": 0.0},
            env={},
        )
        self.sandbox = Sandbox(settings).start_in_thread()

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop_in_thread()
            self.sandbox = None

    def seed_roster(self) -> None:
        """The customer's existing users, as an admin's manual CSV upload."""
        if self.roster is None:
            return
        path = self.work / "roster.csv"
        path.write_bytes(self.roster)
        admin.upload(self.conn, self.settings, TENANT, path)

    def env(self) -> dict[str, str]:
        assert self.sandbox is not None
        host, port = self.sandbox.host("us"), self.sandbox.port("us")
        keys = self.sandbox.host_keys
        self.known_hosts.write_text(
            "".join(hostkeys.known_hosts_line(host, port, k) + "\n" for k in keys), encoding="utf-8"
        )
        by_type = {k.type: k for k in keys}
        main = by_type.get("ssh-ed25519", keys[0])
        # curl/libssh2 picks ECDSA when it is offered (docs/production.md §2): a
        # --hostpubsha256 of the ed25519 key fails every run with exit 60.
        curl = by_type.get("ecdsa-sha2-nistp256", keys[0])
        env = {
            "BWSANDBOX_HOST": host,
            "BWSANDBOX_PORT": str(port),
            "BWSANDBOX_USERNAME": self.tenant.username,
            "BWSANDBOX_PASSWORD": self.password,
            "BWSANDBOX_KNOWN_HOSTS": str(self.known_hosts),
            "BWSANDBOX_HOSTKEY_SHA256": main.sha256,
            "BWSANDBOX_HOSTKEY_MD5": main.md5,
            "BWSANDBOX_HOSTKEY_CURL_SHA256": curl.curl_sha256,
            "BWSANDBOX_HOSTKEY_CURL_MD5": curl.curl_md5,
            "BWSANDBOX_HOSTKEY_B64": curl.curl_sha256,
            "BWSANDBOX_DROP_FOLDER": layout.drop_folder(self.tenant),
        }
        for suffix, key_type in HOSTKEY_SUFFIXES:
            if key_type in by_type:
                env[f"BWSANDBOX_HOSTKEY_SHA256_{suffix}"] = by_type[key_type].sha256
        if self.tenant.profile is Profile.ENGAGE:
            # docs/production.md §1: engage files are encrypted to the vendor's public key.
            public = self.work / "betterworks-public-key.asc"
            public.write_text(pgp.public_key(self.settings.data_dir, self.tenant), encoding="ascii")
            env["BWSANDBOX_PGP_PUBLIC_KEY"] = str(public)
        return env

    # -- one run -----------------------------------------------------------------
    def run(
        self, label: str, command: str, env: dict[str, str], purpose: str
    ) -> tuple[JobRun, RunObservation]:
        assert self.sandbox is not None
        if self.sandbox.audit is not None:
            self.sandbox.audit.flush()  # the mark counts every record written so far
        audit_mark = audit.mark(self.sandbox.audit_path)
        file_mark = files.last_id(self.conn)
        started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        began, started = time.time(), time.monotonic()
        # In the caller's folder, as the vendor runs the job: `./export.sh` works.
        # Every process it starts ends with the run (job.py), on a timeout too.
        result = run_job(command, env={**os.environ, **env}, timeout=self.timeout)
        exit_code, out, err = result.exit_code, result.stdout, result.stderr
        seconds = time.monotonic() - started
        days = _days(began, time.time())
        assert self.sandbox is not None
        self.sandbox.settle(self.conn, timeout=self.timeout)  # every upload of the run processed
        job = JobRun(label=label, exit_code=exit_code, seconds=seconds, stdout_tail=_tail(out),
                     stderr_tail=_tail(err), started_at=started_at, purpose=purpose)
        return job, self._observe(label, exit_code, audit_mark, file_mark, days)

    def fault_run(
        self, label: str, command: str, env: dict[str, str], purpose: str, kind: faults.FaultKind,
        *, after_bytes: int = 0,
    ) -> tuple[JobRun, RunObservation]:
        """One run with a fault planted for the tenant, firing once (so a job
        that retries gets through); whatever did not fire is cleared after."""
        faults.add(self.conn, kind=kind, region=str(Region.US), tenant=TENANT, created_at=Clock().iso(),
                   after_bytes=after_bytes, times=1)
        try:
            job, obs = self.run(label, command, env, purpose)
        finally:
            left = faults.clear(self.conn, tenant=TENANT)
        if not left and str(kind) not in obs.faults_fired:
            # Used up (a fault with times=1 is deleted when it fires), though
            # the audit log did not say so.
            obs = replace(obs, faults_fired=(*obs.faults_fired, str(kind)))
        return job, obs

    def _observe(
        self, label: str, exit_code: int | None, audit_mark: int, file_mark: int, days: frozenset[dt.date]
    ) -> RunObservation:
        assert self.sandbox is not None
        records = audit.read(self.sandbox.audit_path, since=audit_mark)
        auths = [r for r in records if r.get("event") == "auth"]
        ok = sum(1 for r in auths if r.get("result") == "ok" and r.get("tenant") == TENANT)
        failed = sum(1 for r in auths if r.get("result") == "failed")
        fired = tuple(str(r.get("kind")) for r in records
                      if r.get("event") == "fault" and r.get("tenant") == TENANT)
        uploads = [self._upload(row) for row in files.since(self.conn, file_mark)]
        drop = layout.drop_dir(self.settings.data_dir, self.tenant)
        reports = layout.reports_dir(self.settings.data_dir, self.tenant)  # inside the engage drop folder
        leftovers = tuple(sorted(p.name for p in drop.iterdir() if p != reports)) if drop.is_dir() else ()
        users = {
            u["email"]: tuple(sorted((k, str(v)) for k, v in u.items()))
            for u in directory.users_listing(self.conn, TENANT)
        }
        return RunObservation(label=label, exit_code=exit_code, auth_ok=ok, auth_failed=failed,
                              uploads=tuple(uploads), leftovers=leftovers, directory=users, days=days,
                              faults_fired=fired)

    def _upload(self, row: FileRecord) -> Upload:
        report = json.loads(row.report_json) if row.report_json else {}
        codes = tuple(sorted({str(f["code"]) for f in report.get("findings", [])}))
        stored = row.stored_path
        if row.detail == MARKER_DETAIL:  # an engage `.done` marker: never read (docs/production.md §1)
            return Upload(name=row.name, bytes=row.bytes, state=row.state.value,
                          verdict=row.verdict, marker=True, sha256=row.sha256)
        sent = Path(stored).read_bytes() if stored and Path(stored).is_file() else b""
        # An engage upload is stored as sent (PGP): read it as the worker did.
        plain, _, problem = decrypt(sent, name=row.name, tenant=self.tenant,
                                    data_dir=self.settings.data_dir)
        emails = frozenset() if problem else _emails(plain, self.tenant.profile)
        return Upload(name=row.name, bytes=row.bytes, state=row.state.value,
                      verdict=row.verdict, codes=codes, emails=emails, sha256=row.sha256)


def _emails(data: bytes, profile: Profile) -> frozenset[str]:
    """The lower-cased emails of the rows production would apply (to an
    empty directory: what the file alone lets through, less the rows the
    directory's rules refuse, such as a new user without a name)."""
    if not data:
        return frozenset()
    judged = validate(data, Context(profile=profile), name="feed")
    refused = {f.row for f in judged.outcome.findings
               if f.severity is Severity.ERROR and f.scope is Scope.ROW}
    return frozenset(
        r.values["email"].lower() for r in judged.applicable()
        if r.values.get("email") and r.row not in refused
    )


def _days(*instants: float) -> frozenset[dt.date]:
    """The calendar days of these instants, local and UTC: a job dates its
    file by either clock (`date +%Y%m%d` or `date -u +%Y%m%d`)."""
    return frozenset(
        day for t in instants
        for day in (dt.datetime.fromtimestamp(t).date(), dt.datetime.fromtimestamp(t, dt.UTC).date())
    )


def _next_minute() -> None:
    """Sleep into the next wall-clock minute (every time zone's offset is
    whole minutes, so the job's own clock turns over too)."""
    time.sleep(60.05 - time.time() % 60)


PURPOSES = {
    FIRST: "the first run, on a fresh sandbox",
    RERUN: "the same job again with the same data: nothing may change",
    DROPPED: f"the connection drops after {DROP_AFTER_BYTES} bytes of the first upload, once: "
             "the job must report the failure, or retry until the file arrives",
    REFUSED: "the first login is refused although the password is right, once: the job must "
             "report the failure, or retry until the file arrives",
    ROTATED: "the host key changed: the job must refuse to log in, so a non-zero exit is expected",
}


def certify(
    command: str,
    *,
    roster: Path | None = None,
    profile: Profile = Profile.CORE,
    timeout: float = 120.0,
    with_faults: bool = True,
    progress: Progress = lambda _msg: None,
) -> Certification:
    """Run the scenario and judge it. Never leaves a server running, nor a
    process of the job, even when interrupted (KeyboardInterrupt); no
    signal handler is set here (the CLI makes SIGTERM interrupt too).
    `with_faults=False` (`--no-faults`) skips the two fault runs: C13-C18
    are then not applicable."""
    if not command.strip():
        raise UsageError("--run needs the command that runs your export job")
    roster_bytes = None
    roster_emails: frozenset[str] | None = None
    if roster is not None:
        try:
            roster_bytes = roster.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read the roster {roster}: {exc.strerror}") from exc
        roster_emails = _emails(roster_bytes, profile)
        if not roster_emails:
            raise UsageError(f"the roster {roster} holds no valid user (check it with `bwsandbox validate`)")
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    script = job_script(command, Path.cwd())  # before the runs: what was certified is what ran
    total = 5 if with_faults else 3
    observed: dict[str, tuple[JobRun, RunObservation]] = {}
    # Interrupted (KeyboardInterrupt): the running job is ended and the sandbox stopped.
    with tempfile.TemporaryDirectory(prefix="bwsandbox-certify-") as tmp:
        h = _Harness(Path(tmp), profile, roster_bytes, timeout)

        def step(label: str, note: str) -> None:
            progress(f"run {len(observed) + 1}/{total} ({label}): {note}")

        try:
            h.start()
            h.seed_roster()
            env = h.env()
            where = f"{env['BWSANDBOX_HOST']}:{env['BWSANDBOX_PORT']}"
            step(FIRST, f"{shlex.quote(command)} against {where}")
            observed[FIRST] = h.run(FIRST, command, env, PURPOSES[FIRST])
            if profile is Profile.ENGAGE:
                progress("waiting for the next minute: engage names carry it (docs/production.md §1)")
                _next_minute()
            step(RERUN, "the same job again (nothing may change)")
            observed[RERUN] = h.run(RERUN, command, env, PURPOSES[RERUN])
            if with_faults:
                step(DROPPED, f"the connection drops after {DROP_AFTER_BYTES} bytes of the upload")
                observed[DROPPED] = h.fault_run(DROPPED, command, env, PURPOSES[DROPPED],
                                                faults.FaultKind.DISCONNECT, after_bytes=DROP_AFTER_BYTES)
                step(REFUSED, "the first login is refused")
                observed[REFUSED] = h.fault_run(REFUSED, command, env, PURPOSES[REFUSED],
                                                faults.FaultKind.REFUSE_LOGIN)
            port = int(env["BWSANDBOX_PORT"])
            h.stop()
            hostkeys.rotate(h.settings.data_dir)
            h.start(port=port)
            step(ROTATED, "the host key changed (the job must refuse)")
            # The same env: the old pinned key.
            observed[ROTATED] = h.run(ROTATED, command, env, PURPOSES[ROTATED])
        finally:
            h.stop()
            h.conn.close()
    obs = {label: o for label, (_job, o) in observed.items()}
    results = judge(obs[FIRST], obs[RERUN], obs[ROTATED], roster_emails, profile=profile,
                    dropped=obs.get(DROPPED), refused=obs.get(REFUSED))
    files = tuple(
        UploadedFile(run=o.label, name=u.name, bytes=u.bytes, sha256=u.sha256, state=u.state,
                     verdict=u.verdict)
        for o in obs.values() for u in o.uploads
    )
    return Certification(
        command=command, version=__version__, started_at=started, profile=str(profile), results=results,
        runs=tuple(job for job, _obs in observed.values()), script=script, files=files,
    )
