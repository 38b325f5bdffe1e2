"""Tenants declared by environment or file: created once, kept on restart,
and a mistake is a ConfigError naming the tenant before anything listens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bwsandbox import declare, store
from bwsandbox import tenants as tenants_mod
from bwsandbox.config import load
from bwsandbox.errors import ConfigError


def test_declared_tenants_are_created_once_and_kept(tmp_path: Path) -> None:
    env = {"BWSANDBOX_TENANTS": json.dumps([{"name": "acme", "password": "pw", "licenses": 3}])}
    settings = load({"data_dir": tmp_path}, env=env)
    conn = store.connect(settings.db_path)
    (made,) = declare.apply(conn, settings)
    assert made.created and made.password is None  # given, so not printed
    tenant = tenants_mod.get(conn, "acme")
    assert tenant is not None and tenant.licenses == 3 and tenant.check_password("pw")
    (again,) = declare.apply(conn, settings)
    assert not again.created


@pytest.mark.parametrize(("text", "message"), [
    ("{nope", "not valid JSON"),
    ('{"name": "acme"}', "expected a JSON list"),
    ('[{"name": "acme", "pasword": "x"}]', "unknown key.*pasword"),
    ('[{"name": "acme", "region": "mars"}]', "declared tenant 'acme'"),
    ('[{"name": "acme", "users": [{"email": "not-an-email"}]}]', "declared tenant 'acme'"),
])
def test_a_bad_declaration_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(text)
    settings = load({"data_dir": tmp_path}, env={"BWSANDBOX_TENANTS_FILE": str(path)})
    conn = store.connect(settings.db_path)
    with pytest.raises(ConfigError, match=message):
        declare.apply(conn, settings)
    assert tenants_mod.get(conn, "acme") is None  # all or nothing
