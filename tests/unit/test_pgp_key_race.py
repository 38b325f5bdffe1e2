"""Two processes generating a tenant's PGP key at once agree on one key."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pysequoia
import pytest

from bwsandbox.ingest import pgp
from bwsandbox.spec.fields import Profile
from bwsandbox.tenants import Region, Tenant

TENANT = Tenant(name="acme", region=Region.US, profile=Profile.ENGAGE, username="acme", password_hash="x")


def test_racing_generators_both_return_the_key_that_won(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    both_checked = threading.Barrier(2)
    generate = pysequoia.Tsk.generate

    def slow_generate(*args: object, **kwargs: object) -> pysequoia.Tsk:
        both_checked.wait(timeout=10)  # both passed "no key yet" before either writes
        return generate(*args, **kwargs)

    monkeypatch.setattr(pysequoia.Tsk, "generate", slow_generate)
    with ThreadPoolExecutor(2) as pool:
        keys = list(pool.map(lambda _: pgp.ensure_key(tmp_path, TENANT), range(2)))
    prints = {k.extract_certificate().fingerprint for k in keys}
    assert len(prints) == 1
    assert pgp.ensure_key(tmp_path, TENANT).extract_certificate().fingerprint in prints
    assert [p.name for p in pgp.key_dir(tmp_path, TENANT).iterdir()] == ["secret.asc"]
