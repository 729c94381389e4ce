"""A local stand-in for WeCom's group-robot webhook: a real HTTP server on 127.0.0.1 that checks each
request against the documented shape (POST JSON to /cgi-bin/webhook/send?key=KEY; msgtype text {content
≤ 2048 bytes, mentioned_list / mentioned_mobile_list lists of strings}, markdown {content ≤ 4096 bytes},
news {articles: 1–8 of {title ≤ 128 bytes, description ≤ 512 bytes, url, picurl?}}) and answers as WeCom
does: {"errcode": 0, "errmsg": "ok"}, or scripted failures."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PATH = "/cgi-bin/webhook/send"


def shape_errors(body: Any) -> list[str]:
    """What is wrong with a robot message, per WeCom's documentation (empty when it is well formed)."""
    if not isinstance(body, dict):
        return ["body is not an object"]
    kind = body.get("msgtype")
    part = body.get(kind) if isinstance(kind, str) else None
    if kind not in ("text", "markdown", "news") or not isinstance(part, dict):
        return [f"unknown msgtype {kind!r} or missing its object"]
    errors = []
    if kind in ("text", "markdown"):
        content = part.get("content")
        limit = 2048 if kind == "text" else 4096
        if not isinstance(content, str) or not content or len(content.encode()) > limit:
            errors.append(f"{kind}.content must be 1..{limit} bytes")
        for key in ("mentioned_list", "mentioned_mobile_list"):
            if key in part and (
                kind != "text"
                or not isinstance(part[key], list)
                or not all(isinstance(x, str) for x in part[key])
            ):
                errors.append(f"{key} must be a list of strings on a text message")
    else:
        articles = part.get("articles")
        if not isinstance(articles, list) or not 1 <= len(articles) <= 8:
            return ["news.articles must hold 1..8 articles"]
        for a in articles:
            if not isinstance(a, dict) or not isinstance(a.get("title"), str) or not a["title"]:
                errors.append("article.title is required")
                continue
            if len(a["title"].encode()) > 128 or len(str(a.get("description", "")).encode()) > 512:
                errors.append("article title ≤ 128 bytes, description ≤ 512 bytes")
            if not str(a.get("url", "")).startswith(("http://", "https://")):
                errors.append("article.url is required")
    return errors


@dataclass
class Receiver:
    key: str
    # Scripted answers, used in order before the default: ("http", 502) or ("errcode", 45009).
    script: list[tuple[str, int]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    port: int = 0
    # Called (in the server's thread) for each well-formed request, before answering.
    on_request: Callable[[], None] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    @property
    def webhook(self) -> str:
        return f"{self.base}?key={self.key}"


@contextmanager
def running_receiver(key: str = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa") -> Iterator[Receiver]:
    receiver = Receiver(key=key)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                if url.path != PATH or parse_qs(url.query).get("key") != [receiver.key]:
                    receiver.rejected.append(f"bad url {self.path}")
                    self._answer(200, {"errcode": 93000, "errmsg": "invalid webhook url"})
                    return
                if not self.headers.get("Content-Type", "").startswith("application/json"):
                    receiver.rejected.append("not JSON")
                    self._answer(200, {"errcode": 40008, "errmsg": "invalid message type"})
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    receiver.rejected.append("unparsable JSON")
                    self._answer(200, {"errcode": 40035, "errmsg": "invalid args"})
                    return
                errors = shape_errors(body)
                if errors:
                    receiver.rejected.append("; ".join(errors))
                    self._answer(200, {"errcode": 40035, "errmsg": "; ".join(errors)})
                    return
                receiver.requests.append(body)
                if receiver.on_request is not None:
                    receiver.on_request()
                if receiver.script:
                    how, value = receiver.script.pop(0)
                    if how == "http":
                        self._answer(value, {"errmsg": "bad gateway"})
                    else:
                        self._answer(200, {"errcode": value, "errmsg": "api freq out of limit"})
                    return
            self._answer(200, {"errcode": 0, "errmsg": "ok"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
