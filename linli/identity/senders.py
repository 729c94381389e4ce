"""Code senders: how a login code reaches a phone. The SMS gateway is an outside party, so the product
ships sandbox senders — the console (``make run``), memory (tests) and a JSON-lines outbox file (browser
tests) — chosen by ``settings.login_code_sender``, one instance per runtime."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Protocol

from linli.core.clock import utcnow
from linli.core.runtime import Runtime

log = logging.getLogger("linli.identity.sender")

EXTRAS_KEY = "identity.sender"
OUTBOX_FILE = "sms-outbox.jsonl"


def mask_phone(phone: str) -> str:
    """``13800000000`` → ``138****0000``: enough to recognise, not enough to reuse."""
    if len(phone) < 8:
        return "*" * len(phone)
    return f"{phone[:3]}****{phone[-4:]}"


class CodeSender(Protocol):
    async def send(self, phone: str, code: str) -> None: ...


class ConsoleSender:
    """Logs the code at WARNING so a developer running ``make run`` sees it in the terminal."""

    async def send(self, phone: str, code: str) -> None:
        log.warning("login code for %s: %s", mask_phone(phone), code)


class MemorySender:
    """Keeps every code sent, per phone, for tests to read back."""

    def __init__(self) -> None:
        self.sent: dict[str, list[str]] = defaultdict(list)

    async def send(self, phone: str, code: str) -> None:
        self.sent[phone].append(code)

    def last(self, phone: str) -> str:
        codes = self.sent.get(phone)
        if not codes:
            raise LookupError(f"no code was sent to {mask_phone(phone)}")
        return codes[-1]


class FileSender:
    """Appends ``{"phone", "code", "at"}`` lines to an outbox file another process (a browser test) reads."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, phone: str, code: str) -> None:
        line = json.dumps({"phone": phone, "code": code, "at": utcnow().isoformat()}) + "\n"
        await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)


def create_sender(runtime: Runtime) -> CodeSender:
    name = runtime.settings.login_code_sender
    if name == "console":
        return ConsoleSender()
    if name == "memory":
        return MemorySender()
    if name == "file":
        return FileSender(runtime.settings.var_dir / OUTBOX_FILE)
    raise ValueError(f"unknown LINLI_LOGIN_CODE_SENDER {name!r}; use console, memory or file")


def get_sender(runtime: Runtime) -> CodeSender:
    """The runtime's one sender, created on first use."""
    sender: CodeSender | None = runtime.extras.get(EXTRAS_KEY)
    if sender is None:
        sender = runtime.extras[EXTRAS_KEY] = create_sender(runtime)
    return sender


def last_code_sent(runtime: Runtime, phone: str) -> str:
    """The last code the memory sender delivered to ``phone`` (tests and the simulator use it)."""
    sender = get_sender(runtime)
    if not isinstance(sender, MemorySender):
        raise TypeError(f"codes can be read back only from the memory sender, not {type(sender).__name__}")
    return sender.last(phone)
