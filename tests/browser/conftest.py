"""Browser tests: a real app server (uvicorn subprocess, migrated and seeded with the demo brand) driven by
Debian's Chromium through Playwright. The server runs on SQLite and on PostgreSQL; login codes are read
from the file sender's outbox, as a person would read their SMS. A failing test leaves a screenshot in
``test-artifacts/``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.conftest import PG_ADMIN_DSN, _service_missing, pg_admin

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE_VIEWPORT = {"width": 390, "height": 844}
DESKTOP_VIEWPORT = {"width": 1366, "height": 900}


@dataclass
class Server:
    base_url: str
    var_dir: Path
    env: dict[str, str]

    def codes(self, phone: str) -> list[str]:
        """Every login code 'texted' to ``phone`` so far, oldest first."""
        outbox = self.var_dir / "sms-outbox.jsonl"
        if not outbox.exists():
            return []
        entries = [json.loads(line) for line in outbox.read_text().splitlines() if line.strip()]
        return [str(e["code"]) for e in entries if e["phone"] == phone]

    def next_code(self, phone: str, *, after: int, timeout: float = 10.0) -> str:
        """Wait for the code sent after the first ``after`` ones, as a person waits for the SMS."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            codes = self.codes(phone)
            if len(codes) > after:
                return codes[after]
            time.sleep(0.1)
        raise AssertionError(f"no new code sent to {phone}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _linli(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "linli.cli", *args], env=env, check=True, capture_output=True)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    var_dir = tmp_path_factory.mktemp(f"browser-{request.param}")
    pg_name = None
    if request.param == "sqlite":
        database_url = f"sqlite+aiosqlite:///{var_dir / 'linli.db'}"
    else:
        pg_name = f"linli_browser_{uuid.uuid4().hex[:10]}"
        try:
            pg_admin(f'CREATE DATABASE "{pg_name}"')
        except Exception as exc:
            _service_missing("PostgreSQL", exc)
        base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        database_url = f"{base}/{pg_name}"
    port = _free_port()
    env = {
        **os.environ,
        "LINLI_DATABASE_URL": database_url,
        "LINLI_VAR_DIR": str(var_dir),
        "LINLI_SECRET_KEY": "browser-test-secret",
        "LINLI_LOGIN_CODE_SENDER": "file",
        "LINLI_PORT": str(port),
        # Where the sandbox payment processor sends its notifications: this server.
        "LINLI_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        # Several tests log the same demo account in within a minute, and every test from 127.0.0.1: the
        # suite logs in more often than one person would (the operator a dozen times in ten minutes).
        "LINLI_RATE_CODE_PER_PHONE_PER_MINUTE": "50",
        "LINLI_RATE_CODE_PER_PHONE_PER_HOUR": "200",
        "LINLI_RATE_CODE_PER_CLIENT_PER_HOUR": "500",
        "LINLI_RATE_VERIFY_PER_PHONE_PER_10MIN": "200",
        "LINLI_RATE_VERIFY_PER_CLIENT_PER_10MIN": "500",
    }
    env.pop("LINLI_REDIS_URL", None)
    _linli(env, "migrate")
    _linli(env, "seed-demo")
    log = (var_dir / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "linli.web.main:app", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((var_dir / "server.log").read_text()[-3000:])
            time.sleep(0.2)
        yield Server(base_url=base_url, var_dir=var_dir, env=env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if pg_name:
            pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; `make test` installs it (scripts/system-deps.sh browser)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def _context(browser: Browser, viewport: dict[str, int], locale: str) -> BrowserContext:
    return browser.new_context(viewport=viewport, locale=locale, device_scale_factor=1)  # type: ignore[arg-type]


@pytest.fixture
def phone_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = _context(browser, PHONE_VIEWPORT, "zh-CN")
    page = context.new_page()
    yield page
    _screenshot_on_failure(request, page)
    context.close()


@pytest.fixture
def desktop_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = _context(browser, DESKTOP_VIEWPORT, "zh-CN")
    page = context.new_page()
    yield page
    _screenshot_on_failure(request, page)
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.stash[_FAILED] = report.failed


_FAILED = pytest.StashKey[bool]()


def _screenshot_on_failure(request: pytest.FixtureRequest, page: Page) -> None:
    if request.node.stash.get(_FAILED, False):
        ARTIFACTS.mkdir(exist_ok=True)
        name = request.node.nodeid.replace("/", "_").replace(":", "_")
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def login(page: Page, server: Server, phone: str, *, next_path: str = "/") -> None:
    """Log in through the login page as a person would: request a code, read the SMS, type it."""
    page.goto(f"{server.base_url}/login?next={next_path}")
    page.locator("#phone").fill(phone)
    sent = len(server.codes(phone))
    page.get_by_test_id("send-code").click()
    code = server.next_code(phone, after=sent)
    page.locator("#code").fill(code)
    page.get_by_test_id("login-submit").click()
    page.wait_for_load_state("networkidle")
