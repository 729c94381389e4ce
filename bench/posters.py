"""Share posters: cold render per format and cached serve, in one process and with a process pool.

    .venv/bin/python -m bench.posters            # 60 cold renders per format, 500 cached serves
    .venv/bin/python -m bench.posters --quick    # 15 and 200

- cold: a poster not yet on disk — drawn (Pillow, CJK text, QR code), JPEG-encoded and written to the
  cache. What a process keeps between posters (fonts, each format's background, the scaled product photo)
  is warm, as in a running server; the first render of a fresh process (font loading) is shown apart.
- pool: the same cold renders spread over a ``ProcessPoolExecutor`` with one worker per core, as the app
  runs them when ``referral.poster_pool`` is set: latency per poster and posters a second.
- cached: the poster already on disk, served by the real app (``GET /api/v1/referral/orders/{id}/
  poster.jpg`` through the ASGI stack, with its login and ownership check, on SQLite), and the bare cache
  look-up under it (key, stat, read).

Goals (the issue's): cold moments p50 < 60 ms, cached < 5 ms. Exits non-zero when a render fails.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import update

from linli.referral import posters

console = Console()
LINE = "刚抢到麦香邻里的春季限定青团,太好吃了!你也来试试吧!"


def _spec(fmt: str, i: int, photo: str | None) -> posters.PosterSpec:
    return posters.PosterSpec(
        format=fmt,
        product_name="春季限定青团",
        price_fen=2500,
        store_price_fen=3000,
        line=f"{LINE[:30]}第{i}份",
        nickname=f"邻居{i:04d}",
        code="K7WQ3M",
        share_url=f"http://127.0.0.1:8000/s/K7WQ3M?session={i}",
        photo_path=photo,
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def _timed_render(path: Path, spec: posters.PosterSpec) -> float:
    began = time.perf_counter()
    posters.render_to(path, spec)
    return time.perf_counter() - began


def _photo(directory: Path) -> str:
    from linli.simulate.demo import product_photo

    path = directory / "qingtuan.jpg"
    path.write_bytes(product_photo("春季限定青团", (96, 153, 76)))
    return str(path)


def cold_single(directory: Path, n: int, photo: str) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    for fmt in posters.FORMATS:
        results[fmt] = [
            _timed_render(directory / "single" / f"{fmt}-{i}.jpg", _spec(fmt, i, photo)) for i in range(n)
        ]
    return results


def first_render(directory: Path, photo: str) -> float:
    """The first poster of a fresh process: fonts loaded, nothing warm."""
    with ProcessPoolExecutor(max_workers=1) as pool:
        return pool.submit(_timed_render, directory / "first.jpg", _spec("moments", 0, photo)).result()


def cold_pool(directory: Path, n: int, photo: str, workers: int) -> dict[str, tuple[list[float], float]]:
    results: dict[str, tuple[list[float], float]] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        # Warm every worker (fonts, backgrounds), as a running server's pool is.
        list(
            pool.map(
                _timed_render,
                [directory / f"warm-{i}.jpg" for i in range(workers * 2)],
                [_spec("moments", 10_000 + i, photo) for i in range(workers * 2)],
            )
        )
        for fmt in posters.FORMATS:
            began = time.perf_counter()
            latencies = list(
                pool.map(
                    _timed_render,
                    [directory / "pool" / f"{fmt}-{i}.jpg" for i in range(n)],
                    [_spec(fmt, i, photo) for i in range(n)],
                )
            )
            results[fmt] = (latencies, n / (time.perf_counter() - began))
    return results


def cached_lookup(directory: Path, n: int, photo: str) -> list[float]:
    spec = _spec("moments", 1, photo)

    def path() -> Path:
        return posters.poster_path(directory, 1, spec.format, spec.line, spec.nickname, spec.avatar_path)

    posters.render_to(path(), spec)
    timings = []
    for _ in range(n):
        began = time.perf_counter()
        found = path()
        if found.exists():
            found.read_bytes()
        timings.append(time.perf_counter() - began)
    return timings


async def _times(
    client: httpx.AsyncClient, url: str, n: int, headers: dict[str, str] | None = None
) -> list[float]:
    timings = []
    for _ in range(n):
        began = time.perf_counter()
        response = await client.get(url, headers=headers)
        timings.append(time.perf_counter() - began)
        assert response.status_code == 200, response.text[:200]
    return timings


async def cached_http(directory: Path, n: int) -> tuple[dict[str, list[float]], float]:
    """The real app on SQLite: a paid order of the demo's customer, its poster rendered once, then served
    from the cache ``n`` times, by the API and by its static URL; with the app's floors beside them (an
    unauthenticated ``/healthz``, an authenticated ``/api/v1/me``). Returns the latencies and the cold
    first request."""
    from asgi_lifespan import LifespanManager

    from linli.core.config import Settings
    from linli.core.db import Database
    from linli.core.migrate import upgrade
    from linli.identity.models import User
    from linli.identity.tokens import issue_session
    from linli.live.models import LineupItem, LiveSession
    from linli.orders import service as orders_service
    from linli.orders.schemas import OrderCreate
    from linli.simulate.demo import seed_demo_brand
    from linli.web.app import create_app

    url = f"sqlite+aiosqlite:///{directory / 'bench.db'}"
    settings = Settings(
        database_url=url,
        var_dir=directory / "var",
        secret_key="bench",
        run_workers_in_app=False,
        seed_demo=False,
        login_code_sender="memory",
    )
    upgrade(url)
    await seed_demo_brand(settings, console=Console(quiet=True))
    db = Database(url)
    from sqlalchemy import select

    from linli.core.clock import utcnow

    async with db.sessionmaker() as session:
        live_session = await session.scalar(select(LiveSession).order_by(LiveSession.id))
        assert live_session is not None
        await session.execute(
            update(LiveSession)
            .where(LiveSession.id == live_session.id)
            .values(status="live", started_at=utcnow() - timedelta(minutes=5))
        )
        item = await session.scalar(select(LineupItem).where(LineupItem.session_id == live_session.id))
        customer = await session.scalar(select(User).where(User.phone == "13900000004"))
        assert item is not None
        assert customer is not None
        await session.commit()
    async with db.sessionmaker() as session:
        customer = await session.get(User, customer.id)
        assert customer is not None
        order = await orders_service.create_order(
            session,
            customer,
            OrderCreate(session_id=live_session.id, lineup_item_id=item.id, quantity=1),
        )
        await orders_service.mark_paid(
            session, order.id, amount_fen=order.total_fen, provider="sandbox", provider_ref="bench"
        )
        token = await issue_session(session, customer)
        await session.commit()
    await db.dispose()

    app = create_app(settings)
    # The access log's line per request goes nowhere here (it would flood the terminal), not its cost.
    logging.getLogger("linli.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    headers = {"Authorization": f"Bearer {token}"}
    poster_url = f"/api/v1/referral/orders/{order.id}/poster.jpg?format=moments"
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            began = time.perf_counter()
            first = await client.get(poster_url, headers=headers)
            cold = time.perf_counter() - began
            assert first.status_code == 200, first.text
            # The same file through the app's static /media mount, for comparison (no login at all).
            static_url = (
                "/media/"
                + next((directory / "var" / "media" / "posters").rglob("moments-*.jpg"))
                .relative_to(directory / "var" / "media")
                .as_posix()
            )
            timings = {
                "api": await _times(client, poster_url, n, headers),
                "static": await _times(client, static_url, n),
                "healthz": await _times(client, "/healthz", n),
                "me": await _times(client, "/api/v1/me", n, headers),
            }
    return timings, cold


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.posters", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer renders")
    parser.add_argument("--database-url", help="ignored: the cached serve runs on a scratch SQLite file")
    args = parser.parse_args(argv)
    cold_n, cached_n = (15, 200) if args.quick else (60, 500)
    workers = os.cpu_count() or 2
    ms = 1000.0

    with tempfile.TemporaryDirectory(prefix="linli-bench-posters-") as tmp:
        directory = Path(tmp)
        photo = _photo(directory)
        first = first_render(directory, photo)
        posters.render_poster(_spec("moments", -1, photo))  # this process's fonts and backgrounds
        single = cold_single(directory, cold_n, photo)
        pooled = cold_pool(directory, cold_n, photo, workers)
        lookup = cached_lookup(directory, cached_n, photo)
        http, http_cold = asyncio.run(cached_http(directory, cached_n))

    table = Table(
        title=f"posters ({cold_n} cold renders per format, {cached_n} cached serves; {workers} cores)"
    )
    for column in ("what", "p50 ms", "p99 ms", "per second"):
        table.add_column(column, justify="right" if column != "what" else "left")
    for fmt in posters.FORMATS:
        values = single[fmt]
        table.add_row(
            f"cold {fmt} {posters.FORMATS[fmt][0]}×{posters.FORMATS[fmt][1]}, one process",
            f"{_pct(values, 0.5) * ms:.1f}",
            f"{_pct(values, 0.99) * ms:.1f}",
            f"{1 / statistics.mean(values):.1f}",
        )
    for fmt in posters.FORMATS:
        latencies, rate = pooled[fmt]
        table.add_row(
            f"cold {fmt}, pool of {workers}",
            f"{_pct(latencies, 0.5) * ms:.1f}",
            f"{_pct(latencies, 0.99) * ms:.1f}",
            f"{rate:.1f}",
        )
    table.add_row("first moments poster of a fresh process", f"{first * ms:.1f}", "", "")
    table.add_row("cold moments via the API (first request)", f"{http_cold * ms:.1f}", "", "")
    for key, label in (
        ("static", "the same file via the static /media mount"),
        ("api", "cached moments, the API (login + owner check)"),
        ("healthz", "floor: GET /healthz (no database)"),
        ("me", "floor: GET /api/v1/me (login)"),
    ):
        table.add_row(
            label,
            f"{_pct(http[key], 0.5) * ms:.2f}",
            f"{_pct(http[key], 0.99) * ms:.2f}",
            f"{1 / statistics.mean(http[key]):.0f}",
        )
    table.add_row(
        "cached look-up (key, stat, read)",
        f"{_pct(lookup, 0.5) * ms:.3f}",
        f"{_pct(lookup, 0.99) * ms:.3f}",
        f"{1 / statistics.mean(lookup):.0f}",
    )
    console.print(table)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    moments = _pct(single["moments"], 0.5) * ms
    cached = _pct(http["api"], 0.5) * ms
    console.print(
        f"moments cold p50 {moments:.1f} ms (goal < 60): {'met' if moments < 60 else 'NOT met'}; "
        f"cached p50 {cached:.2f} ms (goal < 5): {'met' if cached < 5 else 'NOT met'}; "
        f"peak RSS {peak:.0f} MiB; load {os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
