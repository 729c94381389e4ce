from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from linli.core.config import Settings
from linli.core.runtime import Runtime
from linli.identity.senders import (
    ConsoleSender,
    FileSender,
    MemorySender,
    get_sender,
    last_code_sent,
    mask_phone,
)


def runtime_with(sender: str, tmp_path: Path) -> Runtime:
    settings = Settings(
        database_url="sqlite+aiosqlite://", var_dir=tmp_path, secret_key="k", login_code_sender=sender
    )
    # Choosing a sender needs only the settings.
    return Runtime(settings=settings, db=None, hub=None)  # type: ignore[arg-type]


def test_mask_phone_keeps_only_the_ends() -> None:
    assert mask_phone("13800000000") == "138****0000"
    assert mask_phone("123") == "***"


async def test_console_sender_logs_the_code_at_warning_with_the_phone_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="linli.identity.sender"):
        await ConsoleSender().send("13812345678", "654321")
    [record] = [r for r in caplog.records if r.name == "linli.identity.sender"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "login code for 138****5678: 654321"
    assert "13812345678" not in caplog.text


async def test_memory_sender_keeps_codes_per_phone() -> None:
    sender = MemorySender()
    await sender.send("13800000001", "111111")
    await sender.send("13800000001", "222222")
    await sender.send("13800000002", "333333")
    assert sender.last("13800000001") == "222222"
    assert sender.sent["13800000001"] == ["111111", "222222"]
    with pytest.raises(LookupError, match=r"138\*\*\*\*0003"):
        sender.last("13800000003")


async def test_file_sender_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "sms-outbox.jsonl"
    sender = FileSender(path)
    await sender.send("13800000001", "111111")
    await sender.send("13800000002", "222222")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["phone"], line["code"]) for line in lines] == [
        ("13800000001", "111111"),
        ("13800000002", "222222"),
    ]
    assert lines[0]["at"].endswith("+00:00")


@pytest.mark.parametrize(
    ("name", "kind"), [("console", ConsoleSender), ("memory", MemorySender), ("file", FileSender)]
)
def test_settings_choose_one_sender_per_runtime(name: str, kind: type, tmp_path: Path) -> None:
    runtime = runtime_with(name, tmp_path)
    sender = get_sender(runtime)
    assert isinstance(sender, kind)
    assert get_sender(runtime) is sender
    assert runtime.extras["identity.sender"] is sender


def test_file_sender_writes_under_var_dir(tmp_path: Path) -> None:
    sender = get_sender(runtime_with("file", tmp_path))
    assert isinstance(sender, FileSender)
    assert sender.path == tmp_path / "sms-outbox.jsonl"


def test_unknown_sender_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'carrier-pigeon'"):
        get_sender(runtime_with("carrier-pigeon", tmp_path))


async def test_codes_are_read_back_only_from_the_memory_sender(tmp_path: Path) -> None:
    memory = runtime_with("memory", tmp_path)
    await get_sender(memory).send("13800000001", "123456")
    assert last_code_sent(memory, "13800000001") == "123456"
    with pytest.raises(TypeError):
        last_code_sent(runtime_with("console", tmp_path), "13800000001")
