"""Only a message really encrypted to the tenant's key is decrypted
(docs/production.md §1): `gpg --store`, `gpg --sign` and `gpg -c` files are
refused with their own words, before Sequoia (which would pass the first two
through) sees them. Real gpg, in a throwaway GNUPGHOME."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ingest_env import Env

from bwsandbox import tenants
from bwsandbox.ingest import pgp
from bwsandbox.spec.fields import Profile

ROSTER = b"email,first_name,last_name\na@b.co,A,B\n"


class Gpg:
    def __init__(self, home: Path, work: Path) -> None:
        self.home, self.work = home, work

    def __call__(self, *args: str, data: bytes = ROSTER) -> bytes:
        source, out = self.work / "roster.csv", self.work / "out.pgp"
        source.write_bytes(data)
        out.unlink(missing_ok=True)
        subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--yes", "--quiet", "--pinentry-mode", "loopback",
             "--passphrase", "", "--trust-model", "always", *args, "-o", str(out), str(source)],
            check=True, capture_output=True, timeout=60,
        )
        return out.read_bytes()

    def import_key(self, armored: str) -> None:
        subprocess.run(["gpg", "--homedir", str(self.home), "--batch", "--import"],
                       input=armored.encode(), check=True, capture_output=True, timeout=60)


@pytest.fixture
def gpg(tmp_path: Path) -> Iterator[Gpg]:
    home = Path(tempfile.mkdtemp(prefix="gh", dir="/tmp"))  # short: the agent's socket lives there
    os.chmod(home, 0o700)
    try:
        subprocess.run(["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
                        "--passphrase", "", "--quick-gen-key", "other <other@example.com>", "future-default",
                        "default", "never"], check=True, capture_output=True, timeout=60)
        yield Gpg(home, tmp_path)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def _refusal(env: Env, tenant: tenants.Tenant, data: bytes) -> pgp.PgpProblem:
    with pytest.raises(pgp.PgpProblem) as problem:
        pgp.decrypt(data, env.settings.data_dir, tenant, "employees.202612061009.csv.pgp")
    return problem.value


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


@pytest.fixture
def eng(env: Env) -> tenants.Tenant:
    """An engage tenant (PGP required)."""
    return env.tenant("eng", Profile.ENGAGE)


@pytest.mark.parametrize("armor", [(), ("--armor",)], ids=["binary", "armored"])
def test_store_only_and_signed_only_files_are_not_encrypted(
    env: Env, eng: tenants.Tenant, gpg: Gpg, armor: tuple[str]
) -> None:
    for args, words in [
        (("--store",), "compressed, signed or literal data only"),
        (("--store", "-z", "0"), "literal data only"),
        (("--sign",), "compressed, signed or literal data only"),
        (("--sign", "-z", "0"), "only signed"),
    ]:
        problem = _refusal(env, eng, gpg(*armor, *args))
        assert problem.code == "PGP_NOT_ENCRYPTED", args
        assert problem.message == (
            f"employees.202612061009.csv.pgp is a PGP file but not encrypted ({words}): the sandbox takes "
            "only files encrypted to the tenant's key from `bwsandbox pgp export-key --tenant eng`."
        )


def test_a_passphrase_encrypted_file_says_so(env: Env, eng: tenants.Tenant, gpg: Gpg) -> None:
    problem = _refusal(env, eng, gpg("--passphrase", "secret", "-c"))
    assert problem.code == "PGP_WRONG_KEY"
    assert "is encrypted with a passphrase, not to the tenant's key" in problem.message


def test_a_file_encrypted_to_another_key_names_the_tenants(env: Env, eng: tenants.Tenant, gpg: Gpg) -> None:
    problem = _refusal(env, eng, gpg("-e", "-r", "other@example.com"))
    assert problem.code == "PGP_WRONG_KEY"
    fingerprint = pgp.ensure_key(env.settings.data_dir, eng).extract_certificate().fingerprint
    assert f"not to this tenant's sandbox key (fingerprint {fingerprint})" in problem.message


@pytest.mark.parametrize("armor", [(), ("--armor",)], ids=["binary", "armored"])
def test_a_file_encrypted_to_the_tenants_key_still_decrypts(
    env: Env, eng: tenants.Tenant, gpg: Gpg, armor: tuple[str]
) -> None:
    gpg.import_key(pgp.public_key(env.settings.data_dir, eng))
    to_both = ("-e", "-r", "bwsandbox eng", "-r", "other@example.com", "--sign")
    for args in [("-e", "-r", "bwsandbox eng"), to_both]:
        assert pgp.decrypt(gpg(*armor, *args), env.settings.data_dir, eng, "x.csv.pgp") == ROSTER, args


def test_the_worker_rejects_a_store_only_engage_upload(env: Env, eng: tenants.Tenant, gpg: Gpg) -> None:
    pgp.ensure_key(env.settings.data_dir, eng)
    data = env.put(eng, "employees.202612061009.csv.pgp", gpg("--store"))
    env.put(eng, "employees.202612061009.csv.done.pgp", b"")
    assert env.worker.process_pending() == [data]
    report = env.report(data)
    assert report["verdict"] == "rejected"
    assert [f["code"] for f in report["findings"]] == ["PGP_NOT_ENCRYPTED"]


def test_damaged_headers_are_invalid(env: Env, eng: tenants.Tenant) -> None:
    for data in [b"\xc1\x05\x03", b"\x85\x01\x0c" + b"\x00" * 40, b"\xc1\x02\x03\x00",
                 b"-----BEGIN PGP MESSAGE-----\n\n!!!!\n-----END PGP MESSAGE-----\n"]:
        assert _refusal(env, eng, data).code == "PGP_INVALID", data


def test_an_envelope_larger_than_any_real_one_is_refused_at_once(env: Env, eng: tenants.Tenant) -> None:
    """Many session-key packets, or one too large, in front of encrypted
    data: refused from the headers, not read to the end (a hostile upload
    must not tie up the worker); armored, only the armor's start is decoded."""
    import base64
    import time

    pkesk = b"\xc1\x0a\x03" + b"\x01" * 8 + b"\x01"  # new format, tag 1, 10 bytes: v3, a key id, an algorithm
    many = pkesk * 100_000 + b"\xd2\x01\x01"  # then SEIPD
    big = b"\xc1\xff" + (1 << 20).to_bytes(4, "big") + b"\x03" * (1 << 20) + b"\xd2\x01\x01"
    armored = (b"-----BEGIN PGP MESSAGE-----\n\n" + base64.encodebytes(many)
               + b"-----END PGP MESSAGE-----\n")
    for data, words in [(many, "more than 64 session key packets"), (big, "larger than any real one"),
                        (armored, "more than 64 session key packets")]:
        started = time.monotonic()
        problem = _refusal(env, eng, data)
        assert problem.code == "PGP_INVALID" and words in problem.message, problem.message
        assert time.monotonic() - started < 5  # one header read, not a pass over every packet


def test_the_decrypt_child_ignores_modules_in_the_current_directory_and_pythonpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = Env(tmp_path / "env")
    t = env.tenant("eng", Profile.ENGAGE)
    ciphertext = pgp.encrypt_for(ROSTER, pgp.public_key(env.settings.data_dir, t))
    planted = tmp_path / "cwd"
    planted.mkdir()
    for module in ("pysequoia", "sitecustomize"):
        (planted / f"{module}.py").write_text(f"raise SystemExit('the planted {module} ran')\n")
    monkeypatch.chdir(planted)
    monkeypatch.setenv("PYTHONPATH", str(planted))
    assert pgp.decrypt(ciphertext, env.settings.data_dir, t, "x.csv.pgp") == ROSTER
