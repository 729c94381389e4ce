"""Room fan-out: N real WebSocket viewers in one live room on a real uvicorn server, comments arriving at
50/s over the HTTP API.

    .venv/bin/python -m bench.room_fanout [--quick] [--viewers 1000,5000,10000] [--seconds 15]
                                          [--redis redis://127.0.0.1:6379/0] [--database-url URL]

Prints, per N: comment-to-client latency p50/p99 (the comment's POST is sent → the frame carrying it is
read by a viewer; measured on 50 probe viewers that decode every frame), frames/s per viewer, deliveries
and bytes/s over all viewers, the server's CPU (share of one core) and its resident memory per
connection. ``--redis`` adds a run with two app processes behind Redis (viewers split between them,
comments posted to both). ``--quick`` (``make bench``): N=500 for 8 s.

Viewers are a lean client of our own (asyncio protocol, real handshake, real frames, answers pings),
spread over two processes, so that the load generator — on the same 2 cores — costs as little as
possible; most only count frames and bytes, the probes parse them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx

PROBES = 50
COMMENT_RATE = 50  # per second
CLIENT_PROCESSES = 2
TICKS = os.sysconf("SC_CLK_TCK")


# --- the viewers ----------------------------------------------------------------------------------


class Viewer(asyncio.Protocol):
    """A WebSocket client that reads frames and answers pings; a probe also parses them for latency."""

    def __init__(self, host: str, path: str, probe: bool, stats: dict[str, Any]) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(secrets.token_bytes(16)).decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.probe = probe
        self.stats = stats
        self.buffer = bytearray()
        self.open = False
        self.transport: asyncio.Transport | None = None
        self.connected = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats["lost"] += 1
        if not self.connected.done():
            self.connected.set_result(False)

    def data_received(self, data: bytes) -> None:
        self.stats["bytes"] += len(data)
        buffer = self.buffer
        buffer += data
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.open = buffer.startswith(b"HTTP/1.1 101")
            del buffer[: end + 4]
            self.connected.set_result(self.open)
        while len(buffer) >= 2:
            length, head = buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, head = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, head = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < head + length:
                return
            opcode = buffer[0] & 0x0F
            if opcode == 1:
                self.stats["frames"] += 1
                if self.probe:
                    self.measure(bytes(buffer[head : head + length]))
            elif opcode == 9:  # ping: a pong, masked as clients must
                self.pong(bytes(buffer[head : head + length]))
            elif opcode == 8:
                self.stats["closed"] += 1
            del buffer[: head + length]

    def measure(self, payload: bytes) -> None:
        now = time.time()
        for message in json.loads(payload)["msgs"]:
            if message.get("type") == "comment" and message["text"].startswith("bench "):
                self.stats["latencies"].append(now - float(message["text"][6:]))

    def pong(self, payload: bytes) -> None:
        mask = secrets.token_bytes(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if self.transport is not None:
            self.transport.write(bytes((0x8A, 0x80 | len(payload))) + mask + masked)


async def _viewers(
    urls: list[str], session_id: int, count: int, first: int, seconds: float, out: Any
) -> None:
    stats: dict[str, Any] = {"bytes": 0, "frames": 0, "lost": 0, "closed": 0, "latencies": []}
    loop = asyncio.get_running_loop()
    opened = 0
    batch: list[Any] = []
    for index in range(count):
        url = urls[(first + index) % len(urls)]
        host, port = url.split("//")[1].split(":")
        probe = (first + index) < PROBES

        async def connect(h: str = host, p: int = int(port), pr: bool = probe) -> bool:
            path = f"/ws/live/{session_id}"
            _t, viewer = await loop.create_connection(lambda: Viewer(f"{h}:{p}", path, pr, stats), h, p)
            return bool(await viewer.connected)

        batch.append(connect())
        if len(batch) == 100:
            opened += sum(await asyncio.gather(*batch))
            batch = []
            await asyncio.sleep(0.02)
    opened += sum(await asyncio.gather(*batch))
    out.send(("ready", opened))
    out.recv()  # go
    stats["bytes"] = stats["frames"] = 0
    stats["latencies"] = []
    began = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - began
    out.send(("done", {k: v for k, v in stats.items()} | {"elapsed": elapsed}))
    out.recv()  # may exit


def viewer_process(
    urls: list[str], session_id: int, count: int, first: int, seconds: float, out: Any
) -> None:
    try:
        import uvloop

        uvloop.run(_viewers(urls, session_id, count, first, seconds, out))
    except ImportError:  # pragma: no cover
        asyncio.run(_viewers(urls, session_id, count, first, seconds, out))


# --- the server -----------------------------------------------------------------------------------


@dataclass
class App:
    url: str
    process: subprocess.Popen[bytes]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@contextmanager
def app_processes(env: dict[str, str], count: int, workdir: Path) -> Any:
    import socket

    apps = []
    try:
        for index in range(count):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            log = (workdir / f"app{index}.log").open("w")
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "linli.web.main:app",
                    "--port",
                    str(port),
                    "--ws-per-message-deflate",
                    "false",
                    "--no-access-log",
                    "--log-level",
                    "warning",
                    "--backlog",
                    "4096",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            apps.append(App(f"http://127.0.0.1:{port}", process))
        for app in apps:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{app.url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if app.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"app did not start; see {workdir}")
                time.sleep(0.2)
        yield apps
    finally:
        for app in apps:
            app.process.terminate()
        for app in apps:
            try:
                app.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                app.process.kill()


async def _post_comments(apps: list[App], token: str, session_id: int, seconds: float) -> int:
    posted = 0
    clients = [httpx.AsyncClient(base_url=a.url, headers={"Authorization": f"Bearer {token}"}) for a in apps]
    try:
        began = time.monotonic()
        pending: set[asyncio.Task[Any]] = set()
        n = 0
        while (elapsed := time.monotonic() - began) < seconds:
            due = int(elapsed * COMMENT_RATE) + 1
            while n < due:
                client = clients[n % len(clients)]
                body = {"text": f"bench {time.time():.6f}"}
                pending.add(
                    asyncio.ensure_future(client.post(f"/api/v1/sessions/{session_id}/comments", json=body))
                )
                n += 1
            await asyncio.sleep(1 / COMMENT_RATE / 2)
        for response in await asyncio.gather(*pending, return_exceptions=True):
            posted += isinstance(response, httpx.Response) and response.status_code == 201
    finally:
        for client in clients:
            await client.aclose()
    return posted


def _setup(env: dict[str, str]) -> tuple[int, str]:
    """Migrate, seed the demo brand, and issue the host a token (hosts are not rate-limited)."""
    subprocess.run([sys.executable, "-m", "linli.cli", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "linli.cli", "seed-demo"], env=env, check=True, capture_output=True)
    code = (
        "import asyncio\n"
        "from sqlalchemy import select\n"
        "from linli.core.config import get_settings\n"
        "from linli.core.db import Database\n"
        "from linli.identity.models import User\n"
        "from linli.identity.tokens import issue_session\n"
        "from linli.models import import_all_models\n"
        "import_all_models()\n"
        "async def main():\n"
        "    db = Database(get_settings().database_url, pool=False)\n"
        "    async with db.sessionmaker() as s:\n"
        "        host = await s.scalar(select(User).where(User.phone == '13900000002'))\n"
        "        print(await issue_session(s, host)); await s.commit()\n"
        "    await db.dispose()\n"
        "asyncio.run(main())\n"
    )
    token = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    return 1, token


def measure(apps: list[App], token: str, session_id: int, viewers: int, seconds: float) -> dict[str, Any]:
    urls = [a.url for a in apps]
    pids = [a.process.pid for a in apps]
    rss_before = sum(_rss_bytes(p) for p in pids)
    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    share = -(-viewers // CLIENT_PROCESSES)
    for index in range(CLIENT_PROCESSES):
        count = min(share, viewers - index * share)
        if count <= 0:
            break
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=viewer_process, args=(urls, session_id, count, index * share, seconds, theirs)
        )
        proc.start()
        pipes.append(ours)
        procs.append(proc)
    opened = sum(p.recv()[1] for p in pipes)
    time.sleep(2)  # let the rooms settle (presence, first frames)
    rss_after = sum(_rss_bytes(p) for p in pids)
    cpu_before = sum(_cpu_seconds(p) for p in pids)
    began = time.monotonic()
    for p in pipes:
        p.send("go")
    posted = asyncio.run(_post_comments(apps, token, session_id, seconds))
    results = [p.recv()[1] for p in pipes]
    wall = time.monotonic() - began
    cpu = sum(_cpu_seconds(p) for p in pids) - cpu_before
    for p in pipes:
        p.send("exit")
    for proc in procs:
        proc.join(timeout=30)
    latencies = sorted(x for r in results for x in r["latencies"])
    elapsed = max(r["elapsed"] for r in results)
    frames = sum(r["frames"] for r in results)
    return {
        "viewers": opened,
        "posted": posted,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan"),
        "samples": len(latencies),
        "frames_per_viewer_s": frames / max(opened, 1) / elapsed,
        "deliveries_s": frames / elapsed,
        "bytes_s": sum(r["bytes"] for r in results) / elapsed,
        "cpu_cores": cpu / wall,
        "rss_per_conn_kib": (rss_after - rss_before) / max(opened, 1) / 1024,
        "dropped": sum(r["lost"] for r in results),
    }


def _row(label: str, r: dict[str, Any]) -> str:
    return (
        f"{label:<10} {r['viewers']:>7} {r['p50_ms']:>8.0f} {r['p99_ms']:>8.0f} "
        f"{r['frames_per_viewer_s']:>8.2f} "
        f"{r['deliveries_s']:>11,.0f} {r['bytes_s'] / 1e6:>8.2f} {r['cpu_cores']:>6.2f} "
        f"{r['rss_per_conn_kib']:>9.1f} {r['posted']:>6} {r['dropped']:>6}"
    )


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.room_fanout", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=500 for 8 s (make bench)")
    parser.add_argument("--viewers", default="1000,5000,10000")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--redis", help="also run two app processes behind this Redis")
    parser.add_argument("--database-url", help="PostgreSQL (asyncpg URL); SQLite in a temp dir otherwise")
    args = parser.parse_args(argv)
    sizes = [500] if args.quick else [int(n) for n in args.viewers.split(",")]
    seconds = 8 if args.quick else args.seconds

    workdir = Path(tempfile.mkdtemp(prefix="linli-bench-room-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'linli.db'}"
    env = {
        **os.environ,
        "LINLI_DATABASE_URL": database_url,
        "LINLI_VAR_DIR": str(workdir / "var"),
        "LINLI_SECRET_KEY": "bench-secret",
        "LINLI_LOG_JSON": "true",
    }
    env.pop("LINLI_REDIS_URL", None)
    try:
        session_id, token = _setup(env)
        header = (
            f"{'setup':<10} {'viewers':>7} {'p50 ms':>8} {'p99 ms':>8} {'fr/v/s':>8} {'deliveries/s':>11} "
            f"{'MB/s':>8} {'cores':>6} {'KiB/conn':>9} {'posted':>6} {'lost':>6}"
        )
        database = database_url.split(":")[0]
        say(f"room fan-out: {COMMENT_RATE} comments/s for {seconds:.0f} s; database {database}")
        say(header)
        runs: list[tuple[str, int, dict[str, str]]] = [("1 process", 1, env)]
        if args.redis:
            if args.database_url is None:
                say("(two processes behind Redis need --database-url: PostgreSQL)")
            else:
                runs.append(("2 + Redis", 2, {**env, "LINLI_REDIS_URL": args.redis}))
        for label, processes, run_env in runs:
            for n in sizes:
                with ExitStack() as stack:
                    apps = stack.enter_context(app_processes(run_env, processes, workdir))
                    say(_row(label, measure(apps, token, session_id, n, seconds)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
