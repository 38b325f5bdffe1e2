"""Password hashes (bwsandbox/tenants.py): scrypt at OWASP's minimum in its
low-memory form, the parameters stored with each hash, older hashes still verify."""

from __future__ import annotations

import base64
import hashlib

from bwsandbox import tenants


def test_new_hashes_use_the_low_memory_owasp_parameters() -> None:
    stored = tenants.hash_password("s3cret")
    assert stored.startswith("scrypt$ln=14,r=8,p=5$")
    assert 128 * tenants.SCRYPT_R * tenants.SCRYPT_N == 16 * 1024 * 1024  # 16 MiB per check
    assert tenants.verify_password("s3cret", stored)
    assert not tenants.verify_password("S3cret", stored)


def test_hashes_made_with_earlier_parameters_still_verify() -> None:
    salt = b"0123456789abcdef"
    old = hashlib.scrypt(b"pw", salt=salt, n=2**17, r=8, p=1, maxmem=256 * 1024 * 1024, dklen=32)
    stored = f"scrypt$ln=17,r=8,p=1${base64.b64encode(salt).decode()}${base64.b64encode(old).decode()}"
    assert tenants.verify_password("pw", stored)
    first = hashlib.scrypt(b"pw", salt=salt, n=2**14, r=8, p=1, dklen=32)
    assert tenants.verify_password(
        "pw", f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(first).decode()}"
    )


def test_a_stored_hash_never_asks_for_unbounded_work() -> None:
    salt = base64.b64encode(b"0" * 16).decode()
    for params in ("ln=20,r=8,p=1", "ln=17,r=8,p=16", "ln=14,r=8,p=99"):
        assert not tenants.verify_password("pw", f"scrypt${params}${salt}${salt}")
