"""The room's video player in a real Chromium: a tiny real HLS stream (three 2-second H.264 segments made
with ffmpeg, committed under ``tests/fixtures/hls``) served from another origin with CORS, as a CDN would.

Where the browser has no native HLS the player loads hls.js from /static/vendor/ and plays through it; where
it has (this Chromium does) the video element plays the playlist itself and hls.js is never fetched; a
stream that cannot be loaded shows "reconnecting" over the cover instead of a black box; a session that is
not live shows its status and loads no player library at all; the host's console previews the stream before
going live.

The fixture was made with Debian's ffmpeg (60 KB), in one command::

    ffmpeg -f lavfi -i testsrc=size=160x90:rate=10 -t 6 -c:v libx264 -preset veryfast -profile:v baseline
      -pix_fmt yuv420p -g 10 -b:v 60k -an -f hls -hls_time 2 -hls_list_size 0 -hls_playlist_type vod
      -hls_segment_filename 'seg%d.ts' stream.m3u8
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from linli.core.clock import utcnow
from linli.core.db import Database
from linli.identity.models import User
from linli.live.models import LiveSession, SessionStatus
from tests.browser.conftest import Server, login

STREAM_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "hls"
HLS_LIBRARY = "/static/vendor/hls.js/hls.min.mjs"
# Makes the browser say it cannot play HLS itself, as Chromium without built-in HLS and Firefox do.
NO_NATIVE_HLS = """
(() => {
  const original = HTMLMediaElement.prototype.canPlayType;
  HTMLMediaElement.prototype.canPlayType = function (type) {
    return /mpegurl/i.test(type) ? "" : original.call(this, type);
  };
})();
"""


class _CorsFiles(SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def stream_origin() -> Iterator[str]:
    """The fixture stream on its own origin (another port), as a CDN serves it."""
    handler = functools.partial(_CorsFiles, directory=str(STREAM_DIR))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


async def _insert_session(url: str, status: SessionStatus, playback_url: str, host_phone: str | None) -> int:
    db = Database(url, pool=False)
    try:
        async with db.sessionmaker() as session:
            now = utcnow()
            host = await session.scalar(select(User).where(User.phone == host_phone)) if host_phone else None
            row = LiveSession(
                title="播放器测试",
                host_id=host.id if host else None,
                scheduled_start=now + timedelta(hours=1),
                status=status.value,
                playback_url=playback_url,
                started_at=now if status is SessionStatus.live else None,
                lineup=[],
                communities=[],
            )
            session.add(row)
            await session.commit()
            return row.id
    finally:
        await db.dispose()


def make_session(
    server: Server, status: SessionStatus, playback_url: str = "", *, host_phone: str | None = None
) -> int:
    """A session straight into the running server's database (in a thread: Playwright owns this loop)."""
    url = server.env["LINLI_DATABASE_URL"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _insert_session(url, status, playback_url, host_phone)).result()


def _loaded_hls_library(page: Page) -> bool:
    names: list[str] = page.evaluate("performance.getEntriesByType('resource').map((e) => e.name)")
    return any(name.endswith(HLS_LIBRARY) for name in names)


def _wait_until_played(page: Page, seconds: float, selector: str = "#lr-video") -> None:
    page.wait_for_function(
        "([sel, s]) => { const v = document.querySelector(sel); return v && v.currentTime > s; }",
        arg=[selector, seconds],
        timeout=20000,
    )


def test_hls_js_plays_where_the_browser_has_no_native_hls(
    phone_page: Page, server: Server, stream_origin: str
) -> None:
    session_id = make_session(server, SessionStatus.live, f"{stream_origin}/stream.m3u8")
    phone_page.add_init_script(NO_NATIVE_HLS)
    phone_page.goto(f"{server.base_url}/live/{session_id}")
    video = phone_page.locator("#lr-video")
    expect(video).to_be_visible()
    expect(video).to_have_attribute("data-engine", "hls.js")
    _wait_until_played(phone_page, 1.0)
    expect(video).to_have_attribute("data-state", "playing")
    expect(phone_page.get_by_test_id("not-live")).to_be_hidden()
    assert _loaded_hls_library(phone_page)
    # hls.js feeds the element through Media Source Extensions, not by pointing it at the playlist.
    assert phone_page.evaluate("document.getElementById('lr-video').src").startswith("blob:")


def test_native_hls_needs_no_library(phone_page: Page, server: Server, stream_origin: str) -> None:
    phone_page.goto(server.base_url + "/")
    if not phone_page.evaluate(
        "document.createElement('video').canPlayType('application/vnd.apple.mpegurl')"
    ):
        pytest.skip("this Chromium has no built-in HLS; the hls.js test covers it")
    session_id = make_session(server, SessionStatus.live, f"{stream_origin}/stream.m3u8")
    phone_page.goto(f"{server.base_url}/live/{session_id}")
    video = phone_page.locator("#lr-video")
    expect(video).to_have_attribute("data-engine", "native")
    _wait_until_played(phone_page, 1.0)
    assert not _loaded_hls_library(phone_page)


def test_a_broken_stream_shows_reconnecting_over_the_cover(
    phone_page: Page, server: Server, stream_origin: str
) -> None:
    session_id = make_session(server, SessionStatus.live, f"{stream_origin}/missing.m3u8")
    phone_page.add_init_script(NO_NATIVE_HLS)
    phone_page.goto(f"{server.base_url}/live/{session_id}")
    offline = phone_page.get_by_test_id("not-live")
    expect(offline).to_be_visible(timeout=15000)
    expect(phone_page.get_by_test_id("status-text")).to_have_text("信号不稳定，正在重新连接…")
    expect(phone_page.locator("#lr-video")).to_have_attribute("data-state", "retrying")


def test_not_live_shows_the_status_and_loads_no_player(phone_page: Page, server: Server) -> None:
    session_id = make_session(server, SessionStatus.ended, "http://127.0.0.1:9/never.m3u8")
    phone_page.add_init_script(NO_NATIVE_HLS)
    phone_page.goto(f"{server.base_url}/live/{session_id}")
    expect(phone_page.get_by_test_id("not-live")).to_be_visible()
    expect(phone_page.get_by_test_id("status-text")).to_have_text("直播已结束")
    expect(phone_page.locator("#lr-video")).to_be_hidden()
    phone_page.wait_for_load_state("networkidle")
    assert not _loaded_hls_library(phone_page)


def test_the_host_preview_plays_before_going_live(
    desktop_page: Page, server: Server, stream_origin: str
) -> None:
    session_id = make_session(
        server, SessionStatus.scheduled, f"{stream_origin}/stream.m3u8", host_phone="13900000002"
    )
    desktop_page.add_init_script(NO_NATIVE_HLS)
    login(desktop_page, server, "13900000002", next_path=f"/host/{session_id}")
    video = desktop_page.get_by_test_id("host-video")
    expect(video).to_have_attribute("data-engine", "hls.js")
    _wait_until_played(desktop_page, 1.0, "[data-testid=host-video]")
