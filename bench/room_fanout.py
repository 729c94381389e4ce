"""Room fan-out: N real WebSocket viewers in one live room on real ``linli serve`` processes, comments
arriving at 50/s over the HTTP API.

    .venv/bin/python -m bench.room_fanout [--quick] [--viewers 1000,5000,10000] [--seconds 15]
        [--database-url postgresql+asyncpg://...] [--redis redis://127.0.0.1:6379/0 [--two-only]]

Prints, per N: comment-to-client latency p50/p99/max (the comment's POST is sent → the frame carrying it
arrives at a viewer; measured on 50 probe viewers spread over the room, which decode every frame; "seen"
is the share of (probe, comment) pairs that arrived at all, within 5 s of the last post), frames a second
per viewer, deliveries and bytes a second over all viewers, the CPU the app processes and the viewer
processes used (in cores), and the apps' resident memory per connection. ``--database-url`` runs on a
scratch PostgreSQL database (SQLite in a temporary directory otherwise); ``--redis`` (PostgreSQL only)
adds runs with two app processes behind Redis: viewers split between them, comments posted to the
first. ``--quick`` (``make bench``): N=500 for 8 s, one process.

Viewers are a lean client of our own (asyncio protocol on uvloop, real handshake, real frames, answers
pings), spread over two processes, so that the load generator — on the same 2 cores — costs as little as
possible: most only walk the frame headers, the probes parse them. Comments are posted by the demo
host (hosts are not rate-limited), so a neighbour's extra checks (ban, mute, rate counter) are not in it.
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
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx

from bench.event_log import scratch_database

PROBES = 50
GRACE = 5.0  # seconds the probes keep listening after the last comment is posted
COMMENT_RATE = 50  # per second
CLIENT_PROCESSES = 2
TICKS = os.sysconf("SC_CLK_TCK")


# --- the viewers ----------------------------------------------------------------------------------


class Stats:
    """One client process's counters (plain attributes: bumped tens of thousands of times a second)."""

    def __init__(self) -> None:
        self.bytes = self.frames = self.lost = self.closed = 0
        self.latencies: list[float] = []


class Viewer(asyncio.Protocol):
    """A WebSocket client that walks the frames it receives and answers pings; only a probe decodes them.

    The arrival time is taken once per read, before any parsing, so the client's own work is not
    counted as delivery latency."""

    def __init__(self, host: str, path: str, probe: bool, stats: Stats) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(secrets.token_bytes(16)).decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.probe = probe
        self.stats = stats
        self.rest = b""
        self.open = False
        self.transport: asyncio.Transport | None = None
        self.connected = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.lost += 1
        if not self.connected.done():
            self.connected.set_result(False)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        stats = self.stats
        stats.bytes += len(data)
        if self.rest:
            data, self.rest = self.rest + data, b""
        if not self.open:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.rest = data
                return
            self.open = data.startswith(b"HTTP/1.1 101")
            data = data[end + 4 :]
            self.connected.set_result(self.open)
        size, at = len(data), 0
        while size - at >= 2:
            length, head = data[at + 1] & 0x7F, 2
            if length == 126:
                if size - at < 4:
                    break
                length, head = int.from_bytes(data[at + 2 : at + 4], "big"), 4
            elif length == 127:
                if size - at < 10:
                    break
                length, head = int.from_bytes(data[at + 2 : at + 10], "big"), 10
            end = at + head + length
            if end > size:
                break
            opcode = data[at] & 0x0F
            if opcode == 1:
                stats.frames += 1
                if self.probe:
                    self.measure(data[at + head : end], now)
            elif opcode == 9:  # ping: a pong, masked as clients must
                self.pong(data[at + head : end])
            elif opcode == 8:
                stats.closed += 1
            at = end
        if at < size:
            self.rest = data[at:]

    def measure(self, payload: bytes, now: float) -> None:
        for message in json.loads(payload)["msgs"]:
            if message.get("type") == "comment" and message["text"].startswith("bench "):
                self.stats.latencies.append(now - float(message["text"][6:]))

    def pong(self, payload: bytes) -> None:
        mask = secrets.token_bytes(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if self.transport is not None:
            self.transport.write(bytes((0x8A, 0x80 | len(payload))) + mask + masked)


def _cpu_self() -> float:
    times = os.times()
    return times.user + times.system


async def _viewers(
    urls: list[str], session_id: int, total: int, count: int, first: int, seconds: float, out: Any
) -> None:
    """Viewers ``first`` … ``first + count - 1`` of ``total``: the first half of all viewers watch on the
    first app, the second half on the second; every ``total / PROBES``-th viewer is a probe."""
    stats = Stats()
    loop = asyncio.get_running_loop()
    opened = 0
    batch: list[Any] = []
    stride = max(1, total // PROBES)
    for index in range(first, first + count):
        url = urls[index * len(urls) // total]
        host, port = url.split("//")[1].split(":")
        probe = index % stride == 0

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
    stats.bytes = stats.frames = 0
    stats.latencies = []
    began, cpu = time.monotonic(), _cpu_self()
    await asyncio.sleep(seconds)
    elapsed, cpu = time.monotonic() - began, _cpu_self() - cpu
    counted = {"frames": stats.frames, "bytes": stats.bytes, "elapsed": elapsed, "cpu": cpu}
    # Comments posted near the end (or held up) still count, as latency, if they arrive within GRACE.
    await asyncio.sleep(GRACE)
    probes = sum(index % stride == 0 for index in range(first, first + count))
    out.send(("done", vars(stats) | counted | {"probes": probes}))
    out.recv()  # may exit


def viewer_process(
    urls: list[str], session_id: int, total: int, count: int, first: int, seconds: float, out: Any
) -> None:
    try:
        import uvloop

        uvloop.run(_viewers(urls, session_id, total, count, first, seconds, out))
    except ImportError:  # pragma: no cover
        asyncio.run(_viewers(urls, session_id, total, count, first, seconds, out))


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def app_processes(
    env: dict[str, str], count: int, workdir: Path, profile: Path | None = None
) -> Iterator[list[App]]:
    """``count`` × ``linli serve`` (the way the platform is deployed: uvicorn, one process each);
    under py-spy (raw stacks into ``profile``) when asked."""
    apps = []
    try:
        for index in range(count):
            port = _free_port()
            log = (workdir / f"app{index}.log").open("w")
            command = [sys.executable, "-m", "linli.cli", "serve", "--port", str(port), "--no-seed"]
            if profile is not None:
                py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
                out = profile.with_name(f"{profile.stem}-app{index}.txt")
                command = [
                    py_spy,
                    "record",
                    "--subprocesses",
                    "--format",
                    "raw",
                    "--rate",
                    "200",
                    "-o",
                    str(out),
                    "--",
                    *command,
                ]
            process = subprocess.Popen(
                command,
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
            app.process.send_signal(signal.SIGINT if profile is not None else signal.SIGTERM)
        for app in apps:
            try:
                app.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                app.process.kill()


async def _post_comments(app: App, token: str, session_id: int, seconds: float) -> Counter[str]:
    """``COMMENT_RATE`` comments a second to one app process, each stamped with its send time."""
    outcomes: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {token}"}
    # Idle connections are let go before uvicorn's 5 s keep-alive ends, not reused as it closes them.
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=app.url, headers=headers, limits=limits, timeout=30) as client:

        async def post() -> None:
            body = {"text": f"bench {time.time():.6f}"}
            try:
                response = await client.post(f"/api/v1/sessions/{session_id}/comments", json=body)
                outcomes[str(response.status_code)] += 1
            except httpx.HTTPError as exc:
                outcomes[type(exc).__name__] += 1

        began = time.monotonic()
        pending: set[asyncio.Task[None]] = set()
        n = 0
        while (elapsed := time.monotonic() - began) < seconds:
            while n < int(elapsed * COMMENT_RATE) + 1:
                task = asyncio.create_task(post())
                pending.add(task)
                task.add_done_callback(pending.discard)
                n += 1
            await asyncio.sleep(1 / COMMENT_RATE / 2)
        await asyncio.gather(*pending)
    return outcomes


SETUP = """
import asyncio
from sqlalchemy import select
from linli.core.config import get_settings
from linli.core.db import Database
from linli.core.migrate import upgrade
from linli.simulate.demo import seed_demo_brand
from linli.identity.models import User
from linli.identity.tokens import issue_session
from linli.live.models import LiveSession, SessionStatus
from linli.models import import_all_models
import_all_models()
async def main():
    settings = get_settings()
    await asyncio.to_thread(upgrade, settings.database_url)
    await seed_demo_brand(settings)
    db = Database(settings.database_url, pool=False)
    async with db.sessionmaker() as s:
        host = await s.scalar(select(User).where(User.phone == "13900000002"))
        room = await s.scalar(
            select(LiveSession.id)
            .where(LiveSession.status.in_([SessionStatus.live, SessionStatus.scheduled]))
            .order_by(LiveSession.id)
        )
        print(room, await issue_session(s, host)); await s.commit()
    await db.dispose()
asyncio.run(main())
"""


def _setup(env: dict[str, str]) -> tuple[int, str]:
    """Migrate, seed the demo brand, and issue its host a token (hosts are not rate-limited)."""
    out = subprocess.run([sys.executable, "-c", SETUP], env=env, check=True, capture_output=True, text=True)
    room, token = out.stdout.split()
    return int(room), token


def measure(apps: list[App], token: str, session_id: int, viewers: int, seconds: float) -> dict[str, Any]:
    """Connect ``viewers`` (split over the apps), then post comments to the first app for ``seconds``."""
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
            target=viewer_process,
            args=(urls, session_id, viewers, count, index * share, seconds, theirs),
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
    outcomes = asyncio.run(_post_comments(apps[0], token, session_id, seconds))
    results = [p.recv()[1] for p in pipes]
    wall = time.monotonic() - began
    cpu = sum(_cpu_seconds(p) for p in pids) - cpu_before
    for p in pipes:
        p.send("exit")
    for proc in procs:
        proc.join(timeout=30)
    latencies = sorted(x for r in results for x in r["latencies"])
    expected = sum(r["probes"] for r in results) * outcomes.get("201", 0)
    elapsed = max(r["elapsed"] for r in results)
    frames = sum(r["frames"] for r in results)
    return {
        "viewers": opened,
        "posted": outcomes.get("201", 0),
        "refused": {k: v for k, v in outcomes.items() if k != "201"},
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000 if latencies else float("nan"),
        "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        "samples": len(latencies),
        # Of the (probe, comment) pairs, the share delivered by GRACE after the posting ended.
        "seen": len(latencies) / max(expected, 1),
        "frames_per_viewer_s": frames / max(opened, 1) / elapsed,
        "deliveries_s": frames / elapsed,
        "bytes_s": sum(r["bytes"] for r in results) / elapsed,
        "cpu_cores": cpu / wall,
        "client_cores": sum(r["cpu"] for r in results) / elapsed,
        "rss_per_conn_kib": (rss_after - rss_before) / max(opened, 1) / 1024,
        "dropped": sum(r["lost"] for r in results),
    }


HEADER = (
    f"{'setup':<10} {'viewers':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'fr/v/s':>6} "
    f"{'deliv/s':>8} {'MB/s':>6} {'server':>6} {'client':>6} {'KiB/conn':>8} {'posted':>6} {'seen':>5} "
    f"{'lost':>5}"
)


def _row(label: str, r: dict[str, Any]) -> str:
    row = (
        f"{label:<10} {r['viewers']:>7} {r['p50_ms']:>7.0f} {r['p99_ms']:>7.0f} {r['max_ms']:>7.0f} "
        f"{r['frames_per_viewer_s']:>6.2f} {r['deliveries_s']:>8,.0f} {r['bytes_s'] / 1e6:>6.2f} "
        f"{r['cpu_cores']:>6.2f} {r['client_cores']:>6.2f} {r['rss_per_conn_kib']:>8.1f} "
        f"{r['posted']:>6} {r['seen']:>5.0%} {r['dropped']:>5}"
    )
    return row + (f"  refused: {r['refused']}" if r["refused"] else "")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace, database_url: str, workdir: Path) -> None:
    sizes = [500] if args.quick else [int(n) for n in args.viewers.split(",")]
    seconds = 8 if args.quick else args.seconds
    env = {
        **os.environ,
        "LINLI_DATABASE_URL": database_url,
        "LINLI_VAR_DIR": str(workdir / "var"),
        "LINLI_SECRET_KEY": "bench-secret",
        "LINLI_LOG_JSON": "true",
    }
    env.pop("LINLI_REDIS_URL", None)
    session_id, token = _setup(env)
    runs: list[tuple[str, int, dict[str, str]]] = []
    if not args.two_only:
        runs.append(("1 process", 1, env))
    if args.redis:
        if database_url.startswith("sqlite"):
            say("(two processes behind Redis need --database-url: PostgreSQL)")
        else:
            # A prefix of our own: tests (or another benchmark) on the same Redis never see our rooms.
            redis = {"LINLI_REDIS_URL": args.redis, "LINLI_REDIS_PREFIX": f"bench-{workdir.name}"}
            runs.append(("2 + Redis", 2, env | redis))
    database = database_url.split(":")[0]
    say(
        f"room fan-out: {COMMENT_RATE} comments/s for {seconds:.0f} s to one process; database {database}; "
        f"{CLIENT_PROCESSES} client processes; server/client = CPU cores used"
    )
    say(HEADER)
    for label, processes, run_env in runs:
        for n in sizes:
            profile = None
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                profile = args.profile / f"{label.replace(' ', '').replace('+', '')}-{n}.txt"
            with app_processes(run_env, processes, workdir, profile) as apps:
                result = measure(apps, token, session_id, n, seconds)
            say(_row(label, result))
            if any(code.startswith("5") for code in result["refused"]):
                _show_errors(workdir, processes)


def _show_errors(workdir: Path, processes: int) -> None:
    """The first error lines of the apps' logs (the work directory goes when the benchmark ends)."""
    for index in range(processes):
        lines = (workdir / f"app{index}.log").read_text(errors="replace").splitlines()
        errors = [line for line in lines if '"error"' in line or "Error" in line][:5]
        for line in errors:
            say(f"  app{index}: {line[:2000]}")


async def _scratch_run(args: argparse.Namespace, workdir: Path) -> None:
    async with scratch_database(args.database_url) as url:
        await asyncio.to_thread(run, args, url, workdir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.room_fanout", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=500 for 8 s (make bench)")
    parser.add_argument("--viewers", default="1000,5000,10000")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--redis", help="also run two app processes behind this Redis (needs PostgreSQL)")
    parser.add_argument("--two-only", action="store_true", help="only the two-process run")
    parser.add_argument("--database-url", help="PostgreSQL (asyncpg URL): a scratch database on it is used")
    parser.add_argument("--profile", type=Path, help="run the apps under py-spy, raw stacks into DIR")
    parser.add_argument("--keep-logs", action="store_true", help="keep the apps' logs (prints where)")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="linli-bench-room-"))
    try:
        if args.database_url and not args.database_url.startswith("sqlite"):
            asyncio.run(_scratch_run(args, workdir))
        else:
            run(args, f"sqlite+aiosqlite:///{workdir / 'linli.db'}", workdir)
    finally:
        if args.keep_logs:
            say(f"app logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
