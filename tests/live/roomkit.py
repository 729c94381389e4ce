"""Helpers for the room's tests: a real uvicorn server (in a thread, or as an OS process), real
``websockets`` clients, and reading frames until what a test waits for has arrived."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import websockets
from fastapi import FastAPI

from linli.core.config import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ThreadServer:
    base_url: str
    app: FastAPI

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://")


@contextlib.contextmanager
def serve_in_thread(settings: Settings, **room_config: Any) -> Iterator[ThreadServer]:
    """The app under uvicorn on a free port, in a thread with its own event loop, workers running."""
    from linli.live.room.fanout import rooms_of
    from linli.web.app import create_app

    app = create_app(settings.model_copy(update={"run_workers_in_app": True, "consumer_poll_seconds": 0.05}))
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ws_per_message_deflate=False, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    registry = rooms_of(app.state.runtime)
    for name, value in room_config.items():
        setattr(registry.config, name, value)
    try:
        yield ThreadServer(base_url=f"http://127.0.0.1:{port}", app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass
class ProcessServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://")


@contextlib.contextmanager
def serve_in_processes(env: dict[str, str], logs: list[Path]) -> Iterator[list[ProcessServer]]:
    """``uvicorn linli.web.main:app`` as OS processes of their own (one per log file), configured by
    ``env``, started side by side (importing the app takes seconds)."""
    servers: list[ProcessServer] = []
    outs = []
    try:
        for log in logs:
            port = free_port()
            out = log.open("w")
            outs.append(out)
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "linli.web.main:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--ws-per-message-deflate",
                    "false",
                ],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            servers.append(ProcessServer(f"http://127.0.0.1:{port}", process, log))
        deadline = time.monotonic() + 60
        for server in servers:
            while True:
                try:
                    if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(server.log.read_text()[-3000:])
                time.sleep(0.1)
        yield servers
    finally:
        for server in servers:
            server.process.terminate()
        for server in servers:
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
        for out in outs:
            out.close()


@dataclass
class Viewer:
    """A real WebSocket client reading the room's frames."""

    ws: Any
    frames: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [m for f in self.frames for m in f["msgs"]]

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] in types]

    async def read_until(self, done: Callable[[Viewer], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done(self):
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=left))
            except TimeoutError:
                raise AssertionError(
                    f"timed out; got {json.dumps(self.messages, ensure_ascii=False)[-2000:]}"
                ) from None
            self.frames.append(frame)
            self.seq = max(self.seq, frame["seq"])

    async def first(self) -> dict[str, Any]:
        await self.read_until(lambda v: bool(v.frames))
        return self.frames[0]["msgs"][0]


@contextlib.asynccontextmanager
async def watch(url: str, **headers: str) -> Any:
    async with websockets.connect(url, additional_headers=headers or None, compression=None) as ws:
        yield Viewer(ws)


async def close_code(url: str, **headers: str) -> int | None:
    """Connect and wait for the server to close; the close code it gave."""
    async with websockets.connect(url, additional_headers=headers or None) as ws:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), timeout=10)
        return ws.close_code


def comments_seen(viewer: Viewer) -> list[str]:
    seen = [c["text"] for m in viewer.of_type("state") for c in m["comments"]]
    return seen + [m["text"] for m in viewer.of_type("comment", "reply")]
