"""The command line as `make run` uses it: a real `linli serve` process on a fresh SQLite file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINLI_")}
    env.update(
        LINLI_VAR_DIR=str(var_dir),
        LINLI_DATABASE_URL=f"sqlite+aiosqlite:///{var_dir / 'linli.db'}",
        COLUMNS="200",
        **extra,
    )
    return env


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    var_dir = tmp_path_factory.mktemp("serve")
    port = _free_port()
    log_path = var_dir / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "linli.cli", "serve", "--port", str(port)],
            env=_env(var_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)
            yield base, log_path
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_serve_migrates_seeds_and_prints_the_demo_accounts(served: tuple[str, Path]) -> None:
    base, log_path = served
    output = log_path.read_text()
    for phone in ("13900000001", "13900000002", "13900000003", "13900000004"):
        assert phone in output
    home = httpx.get(f"{base}/")
    assert home.status_code == 200
    assert "春日青团节" in home.text
    assert 'lang="zh-CN"' in home.text


def test_serve_exposes_docs_and_guards_the_admin_console(served: tuple[str, Path]) -> None:
    base, _ = served
    docs = httpx.get(f"{base}/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    schema = httpx.get(f"{base}/openapi.json").json()
    assert "/api/v1/auth/codes" in schema["paths"]
    admin = httpx.get(f"{base}/admin", headers={"accept": "text/html"}, follow_redirects=False)
    assert admin.status_code in (302, 303)
    assert admin.headers["location"].startswith("/login")


def test_seed_demo_is_a_no_op_on_a_seeded_database(tmp_path: Path) -> None:
    env = _env(tmp_path)
    subprocess.run([sys.executable, "-m", "linli.cli", "migrate"], env=env, check=True, capture_output=True)
    first = subprocess.run(
        [sys.executable, "-m", "linli.cli", "seed-demo"], env=env, check=True, capture_output=True, text=True
    )
    assert "nothing seeded" not in first.stdout
    second = subprocess.run(
        [sys.executable, "-m", "linli.cli", "seed-demo"], env=env, check=True, capture_output=True, text=True
    )
    assert "nothing seeded" in second.stdout


def test_create_operator_grants_the_role(tmp_path: Path) -> None:
    env = _env(tmp_path)
    subprocess.run([sys.executable, "-m", "linli.cli", "migrate"], env=env, check=True, capture_output=True)
    result = subprocess.run(
        [sys.executable, "-m", "linli.cli", "create-operator", "13712345678"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is an operator" in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "linli.cli", "create-operator", "12345"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0


def test_worker_runs_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = _env(tmp_path)
    subprocess.run([sys.executable, "-m", "linli.cli", "migrate"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "linli.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        line = ""
        while "worker running" not in line:
            assert time.monotonic() < deadline, "worker did not start"
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "worker exited early"
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
