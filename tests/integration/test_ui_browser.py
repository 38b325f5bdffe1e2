"""The web UI in a real browser (Debian's chromium + chromium-driver, driven
by Selenium; nothing downloaded at run time): the connection card, uploads
appearing live, an upload's own page, emails, the directory and its org
chart, and hostile cells shown as text, never run."""

from __future__ import annotations

import io
import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from bwsandbox.testing import SandboxServer

HOSTILE = '<img src=x onerror="document.title=\'pwned\'">'
FEED = (
    "email,first_name,last_name,manager_email,title\r\n"
    "ada@example.com,Ada,Lovelace,,CEO\r\n"
    f"grace@example.com,\"{HOSTILE.replace(chr(34), chr(34) * 2)}\",Hopper,ada@example.com,CTO\r\n"
    "not-an-email,Alan,Turing,ada@example.com,CSO\r\n"
    f"bad@@example.com,\"{HOSTILE.replace(chr(34), chr(34) * 2)}\",Spy,ada@example.com,Mole\r\n"
)


def browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if chromium is None or not Path(driver).exists():
        pytest.fail("chromium and chromium-driver are missing: run scripts/bootstrap.sh --test")
    return chromium, driver


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    server = SandboxServer(tmp_path_factory.mktemp("ui"), http_port=0, pickup_quiet_seconds=0.2).start()
    yield server
    server.stop()
    server.check()


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600",
                f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    (tmp_path / "downloads").mkdir()
    options.add_experimental_option("prefs", {  # downloads land in tmp_path/downloads, unasked
        "download.default_directory": str(tmp_path / "downloads"), "download.prompt_for_download": False})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    yield browser
    browser.quit()


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def test_the_ui_shows_a_tenant_live_and_escapes_hostile_cells(
    server: SandboxServer, driver: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base = server.http_url
    assert base is not None
    tenant = post(base + "/api/v1/tenants", {"name": "ui-demo", "contact": "hris@example.com"})
    driver.get(f"{base}/ui/tenants/ui-demo")
    wait = WebDriverWait(driver, 30)
    wait.until(lambda d: d.find_elements(By.ID, "uploads"))
    card = driver.find_element(By.ID, "connection").text
    assert tenant["host_keys"][0]["openssh_sha256"] in card and "ssh-ed25519 255 SHA256:" in card

    known = tmp_path / "known_hosts"
    known.write_text("\n".join(tenant["known_hosts"]) + "\n")
    client = paramiko.SSHClient()
    client.load_host_keys(str(known))
    client.connect(tenant["endpoint"]["host"], tenant["endpoint"]["port"], username=tenant["username"],
                   password=tenant["password"], allow_agent=False, look_for_keys=False)
    sftp = client.open_sftp()
    sftp.putfo(io.BytesIO(FEED.encode()), "/incoming/users_20260401.csv")
    client.close()

    # No reload: the page's long poll shows the file, then its verdict.
    wait.until(lambda d: "partial" in d.find_element(By.ID, "uploads").text)
    wait.until(lambda d: "hris@example.com" in d.find_element(By.ID, "emails").text)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#orgchart rect"))
    assert HOSTILE in driver.find_element(By.ID, "directory").text  # shown as text
    assert driver.title != "pwned" and not driver.find_elements(By.CSS_SELECTOR, "#directory img")
    driver.save_screenshot(str(tmp_path / "tenant.png"))  # looked at by a person when the UI changes

    driver.find_element(By.LINK_TEXT, "users_20260401.csv").click()
    wait.until(lambda d: d.find_elements(By.ID, "verdict"))
    assert "/ui/tenants/ui-demo/uploads/" in driver.current_url  # a deep link of its own
    page = driver.find_element(By.TAG_NAME, "main").text
    assert "EMAIL_INVALID" in page and "grace@example.com" in page
    assert driver.find_elements(By.ID, "errors-csv")
    # Findings grouped by row, beside the row's original cells (from the error
    # file), the offending cell highlighted.
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "section.row[data-row='4'] td.bad"))
    row4 = driver.find_element(By.CSS_SELECTOR, "section.row[data-row='4']")
    assert [c.text for c in row4.find_elements(By.CSS_SELECTOR, "td")] == [
        "not-an-email", "Alan", "Turing", "ada@example.com", "CSO"]
    assert [c.text for c in row4.find_elements(By.CSS_SELECTOR, "td.bad")] == ["not-an-email"]
    assert [h.text for h in row4.find_elements(By.CSS_SELECTOR, "th")] == [
        "email", "first_name", "last_name", "manager_email", "title"]
    assert "EMAIL_INVALID" in row4.find_element(By.CSS_SELECTOR, ".row-body ul.findings").text
    row5 = driver.find_element(By.CSS_SELECTOR, "section.row[data-row='5']")
    assert HOSTILE in row5.text and [c.text for c in row5.find_elements(By.CSS_SELECTOR, "td.bad")] == [
        "bad@@example.com"]
    assert driver.title != "pwned" and not driver.find_elements(By.CSS_SELECTOR, "main img")
    driver.save_screenshot(str(tmp_path / "upload.png"))
    driver.get(driver.current_url)  # the deep link opens by itself
    wait.until(lambda d: d.find_elements(By.ID, "verdict"))


def _downloaded(folder: Path, name: str, timeout: float = 30) -> bytes:
    """The file Chromium saved as `name` once complete (no .crdownload left)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = folder / name
        if done.exists() and not list(folder.glob("*.crdownload")):
            return done.read_bytes()
        time.sleep(0.1)
    raise AssertionError(f"{name} not downloaded; {folder} holds {sorted(p.name for p in folder.iterdir())}")


def test_the_ui_logs_in_with_the_token_once(driver: Any, tmp_path: Path) -> None:
    """With a token set, the API answers 401 problem details without it; the
    UI takes `?token=` once and sends it as a Bearer header from then on,
    downloads included (the error file and email attachments: a plain link
    would send no token and get a 401)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server = SandboxServer(tmp_path / "sb", http_port=0, api_token="s3cret-token",
                           pickup_quiet_seconds=0.2).start()
    try:
        base = server.http_url
        assert base is not None
        body = {"name": "locked", "contact": "hris@example.com"}
        request = urllib.request.Request(base + "/api/v1/tenants", data=json.dumps(body).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 401 and refused.value.headers["WWW-Authenticate"] == "Bearer"
        assert refused.value.headers["Content-Type"] == "application/problem+json"
        problem = json.loads(refused.value.read())
        assert problem["status"] == 401 and problem["instance"] == "/api/v1/tenants"
        assert "Authorization: Bearer TOKEN" in problem["detail"]
        request.add_header("Authorization", "Bearer s3cret-token")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
            tenant = json.loads(response.read())

        wait = WebDriverWait(driver, 30)
        driver.get(base + "/")  # the page loads; its API calls are refused
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "main p.error"))
        assert "Authorization: Bearer" in driver.find_element(By.CSS_SELECTOR, "main p.error").text
        driver.get(base + "/?token=s3cret-token")
        wait.until(lambda d: d.find_elements(By.LINK_TEXT, "locked"))
        driver.find_element(By.LINK_TEXT, "locked").click()  # no ?token= any more: kept for the session
        wait.until(lambda d: d.find_elements(By.ID, "connection"))
        assert "token" not in driver.current_url
        assert "SHA256:" in driver.find_element(By.ID, "connection").text

        # Downloads under the token: the email's attachment, then the upload
        # page's error file, each saved with the server's file name and content.
        _put(tenant, "users_20260401.csv", FEED.encode(), tmp_path)
        wait.until(lambda d: d.find_elements(By.LINK_TEXT, "users_20260401.csv.errors.csv"))
        with pytest.raises(urllib.error.HTTPError) as plain:  # what a plain link would get
            urllib.request.urlopen(driver.find_element(
                By.LINK_TEXT, "users_20260401.csv.errors.csv").get_attribute("href"), timeout=30)
        assert plain.value.code == 401
        downloads = tmp_path / "downloads"
        driver.find_element(By.LINK_TEXT, "users_20260401.csv.errors.csv").click()
        attached = _downloaded(downloads, "users_20260401.csv.errors.csv").decode()
        assert "EMAIL_INVALID" in attached and "not-an-email" in attached
        (downloads / "users_20260401.csv.errors.csv").unlink()

        driver.find_element(By.LINK_TEXT, "users_20260401.csv").click()
        wait.until(lambda d: d.find_elements(By.ID, "errors-csv"))
        driver.find_element(By.ID, "errors-csv").click()
        errors = _downloaded(downloads, "users_20260401.csv.errors.csv").decode()
        assert errors == attached  # the same error file, fetched with the Bearer header
        assert not driver.find_elements(By.CSS_SELECTOR, "main span.error:not(:empty)")
    finally:
        server.stop()
    server.check()


def _put(tenant: dict[str, Any], name: str, data: bytes, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("\n".join(tenant["known_hosts"]) + "\n")
    client = paramiko.SSHClient()
    client.load_host_keys(str(known))
    client.connect(tenant["endpoint"]["host"], tenant["endpoint"]["port"], username=tenant["username"],
                   password=tenant["password"], allow_agent=False, look_for_keys=False)
    try:
        sftp = client.open_sftp()
        sftp.putfo(io.BytesIO(data), f"{tenant['endpoint']['drop_folder'].rstrip('/')}/{name}")
    finally:
        client.close()


def _api(method: str, url: str, body: Any = None) -> Any:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_the_upload_page_shows_overwritten_edits_deactivations_and_terminations(
    server: SandboxServer, driver: Any, tmp_path: Path
) -> None:
    """The report's own field names (applied.deactivated/terminated,
    overwritten_manual_edits[].manual_value/file_value) reach the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from bwsandbox import tenants
    from bwsandbox.ingest import pgp

    base = server.http_url
    assert base is not None
    api = base + "/api/v1"
    wait = WebDriverWait(driver, 30)
    today = _api("GET", api + "/clock")["today"]

    core = post(api + "/tenants", {"name": "ui-edits", "users": [
        {"email": "ada@example.com", "first_name": "Ada", "last_name": "L", "title": "CEO"},
        {"email": "bob@example.com", "first_name": "Bob", "last_name": "B",
         "manager_email": "ada@example.com"},
    ]})
    _api("PATCH", api + "/tenants/ui-edits/users/ada@example.com", {"title": "Countess"})  # an admin edit
    feed = ("email,first_name,last_name,title,manager_email,deactivation_date\r\n"
            "ada@example.com,Ada,L,Chief Executive,,\r\n"
            f"bob@example.com,Bob,B,,ada@example.com,{today}\r\n")
    _put(core, "users_20260501.csv", feed.encode(), tmp_path)
    done = _api("GET", api + "/tenants/ui-edits/uploads/users_20260501.csv?wait=30")
    assert done["report"]["applied"]["deactivated"] == 1, done["report"]
    driver.get(base + done["links"]["ui"])
    wait.until(lambda d: d.find_elements(By.ID, "applied-counts"))
    assert "deactivated 1" in driver.find_element(By.ID, "applied-counts").text
    assert "deactivated bob@example.com" in driver.find_element(By.ID, "applied").text
    edits = driver.find_element(By.ID, "overwritten").text
    assert "ada@example.com" in edits and "title" in edits
    assert "“Countess”" in edits and "“Chief Executive”" in edits
    driver.save_screenshot(str(tmp_path / "overwritten.png"))

    engage = post(api + "/tenants", {"name": "ui-engage", "profile": "engage"})
    key = pgp.public_key(server.settings.data_dir, tenants.require(server.conn, "ui-engage"))
    roster = [f"p{i}@example.com" for i in range(5)]
    for stamp, people in (("202605010000", roster), ("202605020000", roster[:4])):  # 1 of 5: allowed
        body = "email,first_name,last_name\n" + "".join(f"{e},F,L\n" for e in people)
        _put(engage, f"employees.{stamp}.csv.pgp", pgp.encrypt_for(body.encode(), key), tmp_path)
        _put(engage, f"employees.{stamp}.csv.done.pgp", b"", tmp_path)
        done = _api("GET", api + f"/tenants/ui-engage/uploads/employees.{stamp}.csv.pgp?wait=30")
    assert done["report"]["applied"]["terminated"] == 1, done["report"]
    driver.get(base + done["links"]["ui"])
    wait.until(lambda d: d.find_elements(By.ID, "applied-counts"))
    assert "terminated 1" in driver.find_element(By.ID, "applied-counts").text
    assert "terminated p4@example.com" in driver.find_element(By.ID, "applied").text
    driver.save_screenshot(str(tmp_path / "terminated.png"))
