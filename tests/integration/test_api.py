"""The HTTP control plane through real HTTP against a real sandbox: SFTP
uploads by paramiko, everything else through the API only (what a Java,
.NET, Node or Go integrator can do)."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from bwsandbox.config import load
from bwsandbox.errors import ConfigError
from bwsandbox.testing import SandboxServer

BAD = (
    "email,first_name,last_name,employee_id,manager_email,title\r\n"
    "ada@example.com,Ada,Lovelace,0001,,CEO\r\n"
    "not-an-email,Grace,Hopper,0002,ada@example.com,CTO\r\n"
)
GOOD = "email,first_name,last_name,title\r\nalan@example.com,Alan,Turing,Boss\r\n"


class Api:
    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base
        self.token = token

    def __call__(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                 content_type: str = "application/json", token: str | None = None
                 ) -> tuple[int, dict[str, str], Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": content_type} if data is not None else {}
        if token or self.token:
            headers["Authorization"] = f"Bearer {token or self.token}"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, head, payload = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            status, head, payload = exc.code, dict(exc.headers), exc.read()
        kind = head.get("content-type", "")
        parsed: Any = json.loads(payload) if "json" in kind and payload else payload
        return status, head, parsed


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    server = SandboxServer(tmp_path_factory.mktemp("api"), http_port=0, pickup_quiet_seconds=0.2).start()
    yield server
    server.stop()
    server.check()


@pytest.fixture
def api(server: SandboxServer) -> Api:
    assert server.http_url is not None
    return Api(server.http_url)


_counter = iter(range(10**6))


@pytest.fixture
def tenant(api: Api) -> Iterator[dict[str, Any]]:
    name = f"t{next(_counter)}"
    status, _, created = api("POST", "/api/v1/tenants", {"name": name, "contact": "tc@example.com"})
    assert status == 201, created
    yield created
    api("DELETE", f"/api/v1/tenants/{name}")


def sftp_put(tenant: dict[str, Any], tmp_path: Path, name: str, data: bytes) -> None:
    """Upload as an export job does, trusting only the API's known_hosts lines."""
    known = tmp_path / "known_hosts"
    known.write_text("\n".join(tenant["known_hosts"]) + "\n")
    client = paramiko.SSHClient()
    client.load_host_keys(str(known))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    endpoint = tenant["endpoint"]
    client.connect(endpoint["host"], endpoint["port"], username=tenant["username"],
                   password=tenant["password"], allow_agent=False, look_for_keys=False)
    try:
        sftp = client.open_sftp()
        sftp.putfo(io.BytesIO(data), f"{endpoint['drop_folder']}/{name}")
        sftp.close()
    finally:
        client.close()


def test_health_and_a_valid_openapi_document(api: Api) -> None:
    from openapi_spec_validator import validate

    assert api("GET", "/healthz")[2] == {"status": "ok"}
    assert api("GET", "/readyz")[2] == {"status": "ok"}
    status, _, spec = api("GET", "/openapi.json")
    assert status == 200
    validate(spec)
    for path in ("/api/v1/tenants", "/api/v1/tenants/{name}/reset",
                 "/api/v1/tenants/{name}/uploads/{filename}", "/api/v1/tenants/{name}/emails",
                 "/api/v1/tenants/{name}/users/{email}",
                 "/api/v1/tenants/{name}/faults", "/api/v1/clock", "/api/v1/hostkeys"):
        assert path in spec["paths"], path
    status, _, page = api("GET", "/docs")
    assert status == 200 and b"/api/v1/tenants/{name}/reset" in page
    assert b"http://" not in page and b"https://" not in page  # no CDN, no external asset


def test_create_a_tenant_with_a_generated_password_and_seeded_users(api: Api) -> None:
    status, _, created = api("POST", "/api/v1/tenants", {
        "name": "acme", "region": "eu", "licenses": 5,
        "users": [{"email": "ceo@acme.example", "first_name": "Cy", "last_name": "Eo"}],
    })
    assert status == 201, created
    assert len(created["password"]) >= 12 and created["username"] == "acme"
    assert created["endpoint"]["region"] == "eu"
    port = created["endpoint"]["port"]
    assert all(line.startswith(f"[127.0.0.1]:{port} ") for line in created["known_hosts"])
    assert created["host_keys"][0]["openssh_sha256"].startswith("SHA256:")
    assert created["host_keys"][0]["putty"].startswith("ssh-ed25519 255 SHA256:")
    assert [t["name"] for t in api("GET", "/api/v1/tenants")[2]].count("acme") == 1
    assert "password" not in api("GET", "/api/v1/tenants/acme")[2]
    assert [u["email"] for u in api("GET", "/api/v1/tenants/acme/users")[2]] == ["ceo@acme.example"]

    status, head, problem = api("POST", "/api/v1/tenants", {"name": "acme"})
    assert status == 409 and head["content-type"] == "application/problem+json"
    assert "already exists" in problem["detail"]
    assert api("DELETE", "/api/v1/tenants/acme")[0] == 204
    assert api("GET", "/api/v1/tenants/acme")[0] == 404


def test_bad_input_is_a_problem_document_a_person_can_act_on(api: Api) -> None:
    status, _, problem = api("POST", "/api/v1/tenants", {"name": "x", "regoin": "eu"})
    assert status == 422 and set(problem) >= {"type", "title", "status", "detail"}
    assert "regoin" in problem["detail"]
    status, _, problem = api("POST", "/api/v1/tenants", raw=b"{not json", content_type="application/json")
    assert status == 422
    status, _, problem = api("POST", "/api/v1/tenants", {"name": "bad", "contact": "nobody"})
    assert status == 400 and "not an email address" in problem["detail"]
    status, _, problem = api("GET", "/api/v1/nothing-here")
    assert status == 404 and "no such endpoint" in problem["detail"]
    status, _, problem = api("PUT", "/api/v1/clock", {"today": "next tuesday"})
    assert status == 400 and "YYYY-MM-DD" in problem["detail"]
    status, _, problem = api("POST", "/api/v1/tenants/nobody/seed", {})
    assert status in (404, 405)
    status, _, problem = api("POST", "/api/v1/tenants", {"name": "seedbad", "users": [{"email": "nope"}]})
    assert status == 422 and problem["problems"] and "users[0]" in problem["problems"][0]
    assert api("GET", "/api/v1/tenants/seedbad")[0] == 404  # all or nothing
    assert api("GET", "/healthz")[2] == {"status": "ok"}  # and the server still serves


def test_upload_wait_report_error_file_and_email(api: Api, tenant: dict[str, Any], tmp_path: Path) -> None:
    name = tenant["name"]
    sftp_put(tenant, tmp_path, "users_20260101.csv", BAD.encode())
    status, _, upload = api("GET", f"/api/v1/tenants/{name}/uploads/users_20260101.csv?wait=30")
    assert status == 200, upload
    assert upload["state"] == "done" and upload["final"] and upload["verdict"] == "partial"
    codes = [f["code"] for f in upload["report"]["findings"]]
    assert "EMAIL_INVALID" in codes, codes
    status, head, errors_csv = api("GET", upload["links"]["errors_csv"])
    assert status == 200 and head["content-type"].startswith("text/csv")
    assert b"not-an-email" in errors_csv

    listing = api("GET", f"/api/v1/tenants/{name}/uploads")[2]
    assert [u["name"] for u in listing["uploads"]] == ["users_20260101.csv"]
    (email,) = api("GET", f"/api/v1/tenants/{name}/emails")[2]
    assert email["to"] == "tc@example.com" and email["subject"]
    assert "not-an-email" in email["text"] or "Entry" in email["text"]
    (attached,) = email["attachments"]
    assert api("GET", attached["url"])[2] == errors_csv
    detail = api("GET", upload["links"]["self"])[2]
    assert any(c["subject"] == "ada@example.com" for c in detail["changes"])


def test_the_wait_answers_404_when_nothing_arrived_in_time(api: Api, tenant: dict[str, Any]) -> None:
    started = time.monotonic()
    status, _, problem = api("GET", f"/api/v1/tenants/{tenant['name']}/uploads/never.csv?wait=0.5")
    assert status == 404 and "within 0.5 s" in problem["detail"]
    assert time.monotonic() - started >= 0.5


def test_the_wait_returns_when_the_file_lands(api: Api, tenant: dict[str, Any], tmp_path: Path) -> None:
    import threading

    result: list[Any] = []
    waiter = threading.Thread(target=lambda: result.append(
        api("GET", f"/api/v1/tenants/{tenant['name']}/uploads/users_20260102.csv?wait=60")))
    waiter.start()
    time.sleep(0.3)
    started = time.monotonic()
    sftp_put(tenant, tmp_path, "users_20260102.csv", GOOD.encode())
    waiter.join(60)
    assert result and result[0][0] == 200 and result[0][2]["verdict"] == "accepted"
    assert time.monotonic() - started < 45  # woken by the worker, not by the 60 s timeout


def test_an_incomplete_upload_is_listed_through_a_fault(
    api: Api, tenant: dict[str, Any], tmp_path: Path
) -> None:
    name = tenant["name"]
    status, _, fault = api("POST", f"/api/v1/tenants/{name}/faults",
                           {"kind": "disconnect", "after_bytes": 1000, "times": 1})
    assert status == 201 and fault["kind"] == "disconnect"
    assert [f["id"] for f in api("GET", f"/api/v1/tenants/{name}/faults")[2]] == [fault["id"]]
    with pytest.raises((OSError, EOFError, paramiko.SSHException)):
        sftp_put(tenant, tmp_path, "users_20260103.csv", GOOD.encode() * 2000)
    status, _, upload = api("GET", f"/api/v1/tenants/{name}/uploads/users_20260103.csv?wait=30")
    assert status == 200 and upload["state"] == "incomplete" and upload["final"]
    assert api("GET", f"/api/v1/tenants/{name}/faults")[2] == []  # times=1: lifted
    api("POST", f"/api/v1/tenants/{name}/faults", {"kind": "refuse-login"})
    assert api("DELETE", f"/api/v1/tenants/{name}/faults")[2] == {"cleared": 1}
    status, _, problem = api("POST", f"/api/v1/tenants/{name}/faults", {"kind": "stall"})
    assert status == 400 and "delay" in problem["detail"]


def test_admin_edit_then_reset_with_new_users(api: Api, tenant: dict[str, Any], tmp_path: Path) -> None:
    name = tenant["name"]
    sftp_put(tenant, tmp_path, "users_20260104.csv", GOOD.encode())
    assert api("GET", f"/api/v1/tenants/{name}/uploads/users_20260104.csv?wait=30")[0] == 200
    status, _, report = api("PATCH", f"/api/v1/tenants/{name}/users/alan@example.com", {"title": "CEO"})
    assert status == 200, report
    user = api("GET", f"/api/v1/tenants/{name}/users/alan@example.com")[2]
    assert user["title"] == "CEO" and user["history"]
    assert api("PATCH", f"/api/v1/tenants/{name}/users/alan@example.com", {"colour": "x"})[0] == 400

    status, _, reset = api("POST", f"/api/v1/tenants/{name}/reset",
                           {"users": [{"email": "new@example.com", "first_name": "N", "last_name": "U"}]})
    assert status == 200, reset
    assert api("GET", f"/api/v1/tenants/{name}/uploads")[2]["uploads"] == []
    assert [u["email"] for u in api("GET", f"/api/v1/tenants/{name}/users")[2]] == ["new@example.com"]
    assert api("GET", f"/api/v1/tenants/{name}/emails")[2] == []
    assert api("POST", f"/api/v1/tenants/{name}/reset")[0] == 200  # no body: just empty
    assert api("GET", f"/api/v1/tenants/{name}/users")[2] == []


def test_plan_and_validate_change_nothing(api: Api, tenant: dict[str, Any], tmp_path: Path) -> None:
    name = tenant["name"]
    status, _, plan = api("POST", f"/api/v1/tenants/{name}/plan?filename=users_20260105.csv",
                          raw=BAD.encode(), content_type="text/csv")
    assert status == 200, plan
    assert plan["verdict"] == "partial" and "not-an-email" in plan["errors_csv"]
    assert api("GET", f"/api/v1/tenants/{name}/users")[2] == []
    assert api("GET", f"/api/v1/tenants/{name}/uploads")[2]["uploads"] == []
    # The plan is what the same file, uploaded, then does.
    sftp_put(tenant, tmp_path, "users_20260105.csv", BAD.encode())
    upload = api("GET", f"/api/v1/tenants/{name}/uploads/users_20260105.csv?wait=30")[2]
    done = upload["report"]
    for key in ("verdict", "rows", "applied", "findings"):
        assert plan[key] == done[key], key
    assert plan["errors_csv"].encode() == api("GET", upload["links"]["errors_csv"])[2]
    status, _, report = api("POST", "/api/v1/validate", raw=BAD.replace(",", ";").encode(),
                            content_type="text/csv")
    assert status == 200 and report["verdict"] == "rejected"
    status, _, report = api("POST", "/api/v1/validate", raw=BAD.encode(), content_type="text/csv")
    assert status == 200 and set(report["plan"]) == {"applied", "changes"}


def test_the_api_refuses_a_clock_out_of_range_by_the_cli_s_rule(api: Api) -> None:
    from bwsandbox import clock as clock_mod

    before = api("GET", "/api/v1/clock")[2]
    for today in ("9999-12-31", "0001-01-01"):
        status, _, problem = api("PUT", "/api/v1/clock", {"today": today})
        with pytest.raises(clock_mod.ClockRangeError) as cli_rule:  # what `clock set` says
            clock_mod.offset_for(today)
        assert status == 400 and problem["detail"] == str(cli_rule.value)
    status, _, problem = api("POST", "/api/v1/clock/advance", {"days": 36501 - before["offset_days"]})
    assert status == 400 and "at most 36500 days either way" in problem["detail"]
    assert api("GET", "/api/v1/clock")[2]["offset_days"] == before["offset_days"]


def test_clock_and_host_keys(api: Api) -> None:
    today = api("GET", "/api/v1/clock")[2]
    moved = api("POST", "/api/v1/clock/advance", {"days": 3})[2]
    assert moved["offset_days"] == today["offset_days"] + 3
    assert api("PUT", "/api/v1/clock", {"today": today["today"]})[2]["offset_days"] == 0
    keys = api("GET", "/api/v1/hostkeys")[2]
    assert [k["type"] for k in keys["host_keys"]] == ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]
    status, head, text = api("GET", "/api/v1/hostkeys/known_hosts")
    assert status == 200 and text.count(b"ssh-ed25519") == 2  # us and eu


def test_a_token_is_required_when_set_and_beyond_loopback(tmp_path: Path) -> None:
    from bwsandbox.api import HttpService
    from bwsandbox.sandbox import Sandbox

    settings = load({"data_dir": tmp_path / "a", "port": 0, "eu_port": 0, "http_port": 0,
                     "api_token": "s3cret"}, env={})
    with Sandbox(settings, services=[HttpService(settings)]) as sandbox:
        assert sandbox.http_address is not None
        api = Api(f"http://127.0.0.1:{sandbox.http_address[1]}")
        status, head, problem = api("GET", "/api/v1/tenants")
        assert status == 401 and head["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in problem["detail"]
        assert api("GET", "/api/v1/tenants", token="wrong")[0] == 401
        assert api("GET", "/api/v1/tenants", token="s3cret")[0] == 200
        assert api("GET", "/healthz")[0] == 200

    open_settings = load({"data_dir": tmp_path / "b", "port": 0, "eu_port": 0, "http_port": 0,
                          "http_host": "0.0.0.0"}, env={})
    with pytest.raises(ConfigError, match="BWSANDBOX_API_TOKEN"):
        Sandbox(open_settings, services=[HttpService(open_settings)]).start_in_thread()


def test_seed_departments_as_csv_or_rows(api: Api, tenant: dict[str, Any]) -> None:
    name = tenant["name"]
    csv_body = b"name,parent,is_active\r\nCompany,,true\r\nEngineering,Company,true\r\n"
    status, _, report = api("POST", f"/api/v1/tenants/{name}/departments", raw=csv_body,
                            content_type="text/csv")
    assert status == 200 and report["verdict"] == "accepted", report
    status, _, report = api("POST", f"/api/v1/tenants/{name}/departments",
                            [{"name": "Company"}, {"name": "Sales", "parent": "Company", "is_active": True}])
    assert status == 200 and report["verdict"] == "accepted", report.get("problems")
    departments = {d["name"]: d for d in api("GET", f"/api/v1/tenants/{name}/departments")[2]}
    assert set(departments) == {"Company", "Engineering", "Sales"}
    assert departments["Sales"]["parent"] == "Company"

    # A refused row is named; the others are applied (as an admin upload applies them).
    status, _, problem = api("POST", f"/api/v1/tenants/{name}/departments", [
        {"name": "Company"}, {"name": "Ops", "parent": "Company"}, {"name": "Ops2", "parent": "Nowhere"}])
    assert status == 422 and problem["problems"][0].startswith("rows[2]"), problem
    assert problem["report"]["verdict"] == "partial"
    assert "Ops" in {d["name"] for d in api("GET", f"/api/v1/tenants/{name}/departments")[2]}
    status, _, problem = api("POST", f"/api/v1/tenants/{name}/departments",
                             raw=b"email,first_name\r\na@example.com,A\r\n", content_type="text/csv")
    assert status == 400 and "not a department file" in problem["detail"]
    assert api("GET", f"/api/v1/tenants/{name}/users")[2] == []
    status, _, problem = api("POST", f"/api/v1/tenants/{name}/departments", {"name": "x"})
    assert status == 400 and "JSON list" in problem["detail"]


def test_the_upload_list_long_polls_for_a_change(api: Api, tenant: dict[str, Any], tmp_path: Path) -> None:
    import threading

    name = tenant["name"]
    first = api("GET", f"/api/v1/tenants/{name}/uploads")[2]
    assert first["uploads"] == [] and isinstance(first["version"], int)
    started = time.monotonic()
    same = api("GET", f"/api/v1/tenants/{name}/uploads?since={first['version']}&wait=0.5")[2]
    assert same["uploads"] == []
    if same["version"] == first["version"]:  # nothing changed (in any tenant): the wait ran out
        assert time.monotonic() - started >= 0.5
    first = same
    stale = api("GET", f"/api/v1/tenants/{name}/uploads?since={first['version'] - 1}&wait=30")
    assert stale[2]["version"] == first["version"]  # an old version answers at once

    result: list[Any] = []
    waiter = threading.Thread(target=lambda: result.append(
        api("GET", f"/api/v1/tenants/{name}/uploads?since={first['version']}&wait=60")))
    waiter.start()
    time.sleep(0.3)
    assert not result  # still waiting
    started = time.monotonic()
    sftp_put(tenant, tmp_path, "users_20260203.csv", GOOD.encode())
    waiter.join(60)
    assert result and result[0][0] == 200
    changed = result[0][2]
    assert time.monotonic() - started < 45  # woken by the upload, not by the 60 s timeout
    assert changed["version"] > first["version"]
    assert [u["name"] for u in changed["uploads"]] == ["users_20260203.csv"]
    status, _, problem = api("GET", f"/api/v1/tenants/{name}/uploads?since=0&wait=601")
    assert status == 422 and "wait" in problem["detail"]


HUGE = "99999999999999999999999"  # past SQLite's 64-bit INTEGER


def test_an_id_past_what_the_store_holds_is_not_found(api: Api, tenant: dict[str, Any]) -> None:
    t = f"/api/v1/tenants/{tenant['name']}"
    for method, path, says in [
        ("GET", f"{t}/files/{HUGE}", f"no upload #{HUGE}"),
        ("GET", f"{t}/files/{HUGE}/errors.csv", f"no upload #{HUGE}"),
        ("GET", f"{t}/files/-{HUGE}", f"no upload #-{HUGE}: an id is at least -9223372036854775808"),
        ("GET", f"{t}/emails/{HUGE}/raw", f"no email #{HUGE}: an id is at most 9223372036854775807"),
        ("GET", f"{t}/emails/{HUGE}/attachments/0", f"no email #{HUGE}"),
        ("DELETE", f"{t}/faults/{HUGE}", f"no fault #{HUGE}"),
        ("GET", f"{t}/uploads/users.csv?after={HUGE}", "no upload named 'users.csv' arrived"),
    ]:
        status, head, problem = api(method, path)  # was 500, OverflowError
        assert (status, head["content-type"]) == (404, "application/problem+json"), (path, problem)
        assert says in problem["detail"], problem


def test_a_fault_number_past_what_the_store_holds_is_a_422(api: Api, tenant: dict[str, Any]) -> None:
    faults = f"/api/v1/tenants/{tenant['name']}/faults"
    for field in ("times", "seed", "kbps"):
        status, _, problem = api("POST", faults, {"kind": "slow", "kbps": 1, field: int(HUGE)})
        assert status == 422 and problem["errors"] == [{
            "where": f"body.{field}", "problem": "Input should be less than or equal to 9223372036854775807"}]
    status, _, problem = api("POST", faults, {"kind": "disconnect", "seed": -int(HUGE)})
    assert status == 422 and "body.seed" in problem["detail"]
    assert api("GET", faults)[2] == []


def _post_declaring(api: Api, method: str, path: str, length: int) -> tuple[int, str, dict[str, Any]]:
    """A request that declares `length` body bytes and sends none."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(api.base)
    conn = http.client.HTTPConnection(where.hostname or "", where.port, timeout=60)
    try:
        conn.putrequest(method, path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.getheader("content-type") or "", json.loads(response.read())
    finally:
        conn.close()


def test_every_body_is_bounded_as_validate_is(api: Api, tenant: dict[str, Any]) -> None:
    from bwsandbox.api.routes.deps import MAX_BODY

    name = tenant["name"]
    spec = api("GET", "/openapi.json")[2]
    with_body = [(method.upper(), path) for path, ops in spec["paths"].items()
                 for method, op in ops.items() if "requestBody" in op]
    assert ("POST", "/api/v1/tenants/{name}/users") in with_body and len(with_body) >= 10
    for method, path in with_body:  # refused on the declared length, before a byte is read
        path = path.format(name=name, email="ada@example.com")
        status, kind, problem = _post_declaring(api, method, path, MAX_BODY + 1)
        assert (status, kind) == (413, "application/problem+json"), (path, problem)
        assert problem["title"] == "Too large" and "over 64 MiB" in problem["detail"]

    row = json.dumps({"email": "a@example.com", "first_name": "A", "last_name": "B"}).encode() + b","

    def users() -> Iterator[bytes]:  # chunked: no length to go by, refused as it passes the bound
        yield b"["  # 16 MiB more than the bound: more than sockets buffer, so the 413 waits for the
        for _ in range((MAX_BODY + 16 * 2**20) // (len(row) * 1000) + 2):  # end (or the client gets
            yield row * 1000  # a broken pipe, not the 413)

    request = urllib.request.Request(f"{api.base}/api/v1/tenants/{name}/users", data=users(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:  # was 2.5 GB of memory for 91 MB
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 413 and "over 64 MiB" in json.loads(refused.value.read())["detail"]
    assert api("GET", f"/api/v1/tenants/{name}/users")[2] == []  # nothing seeded
    status, _, got = _post_declaring(api, "GET", f"/api/v1/tenants/{name}/users", MAX_BODY + 1)
    assert status == 200 and got == []  # a route that reads no body answers as ever
