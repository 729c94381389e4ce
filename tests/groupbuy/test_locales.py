"""Every message key groupbuy's pages, panels and server-made texts use exists in zh-CN and in English —
the literal ones found in its templates and code, and the families built from a state's name — and every
message key written into an inbox anywhere has its title and body in both."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import linli
from linli.community.schemas import MembershipSource
from linli.core.i18n import _flatten
from linli.groupbuy.models import BatchState, FeeStatus, GroupState, Outcome

ROOT = Path(linli.__file__).parent
GROUPBUY = ROOT / "groupbuy"
SOURCES = [*sorted((GROUPBUY / "templates").rglob("*.html")), *sorted(GROUPBUY.glob("*.py"))]
# Whole keys only: a key that a template completes (``t("groupbuy.state." ~ g.state)``) ends in "." or "_".
LITERAL = re.compile(r"""(?:\bt|\bMessage)\(\s*["']([a-z_]+\.[a-z_.]+[a-z])["']""")


def catalog(locale: str, folders: list[Path] | None = None) -> dict[str, str]:
    merged: dict[str, str] = {}
    for folder in folders or sorted(ROOT.rglob("locales")):
        path = folder / f"{locale}.toml"
        if path.exists():
            with path.open("rb") as fh:
                merged.update(_flatten(tomllib.load(fh)))
    return merged


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in SOURCES:
        text = path.read_text()
        keys |= set(LITERAL.findall(text))
        # The order panel's status lines: ``status("collecting", ...)`` in views.py.
        keys |= {f"groupbuy.status.{k}" for k in re.findall(r"""\bstatus\(\s*["']([a-z_]+)["']""", text)}
    families = {
        "groupbuy.fee": [s.value for s in FeeStatus],
        "groupbuy.step": ["paid", "reached", "dispatched", "delivered", "picked_up"],
        "groupbuy.state": [s.value for s in GroupState],
        "groupbuy.outcome": [o.value for o in Outcome],
        "groupbuy.batch": [b.value for b in BatchState],
        "groupbuy.member_source": [m.value for m in MembershipSource],
        "groupbuy.promise": [
            "text",
            "today",
            "tomorrow",
            "after_tomorrow",
            "date",
            "am",
            "pm",
            "am_minutes",
            "pm_minutes",
        ],
        "groupbuy.admin": ["batch_dispatched", "batch_arriveed", "place_point", "place_store"],
        "groupbuy.leader": [f"fee_{s}" for s in ("due", "paid_online", "collected")],
    }
    keys |= {f"{prefix}.{name}" for prefix, names in families.items() for name in names}
    return keys


def test_the_scan_finds_keys_in_code_and_templates() -> None:
    found = used_keys()
    assert {"groupbuy.order.title", "groupbuy.fee.pay", "groupbuy.status.collecting"} <= found
    assert {"groupbuy.inbox.fee_paid", "groupbuy.place.point", "groupbuy.fee.description"} <= found


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_every_key_groupbuy_uses_exists(locale: str) -> None:
    known = catalog(locale)
    inbox = {k for k in used_keys() if ".inbox." in k}
    plain = used_keys() - inbox
    assert sorted(k for k in plain if k not in known) == []
    assert sorted(k for k in inbox for part in ("title", "body") if f"{k}.{part}" not in known) == []


def test_both_locales_have_the_same_groupbuy_keys() -> None:
    zh, en = catalog("zh-CN", [GROUPBUY / "locales"]), catalog("en", [GROUPBUY / "locales"])
    assert sorted(zh.keys() ^ en.keys()) == []


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_every_inbox_message_anywhere_has_a_title_and_a_body(locale: str) -> None:
    """Inbox items of every domain written as a message: its key's title and body in both locales."""
    known = catalog(locale)
    written = set()
    for path in sorted(ROOT.rglob("*.py")):
        written |= {k for k in LITERAL.findall(path.read_text()) if ".inbox." in k}
        # Keys chosen between two literals: ``"community.inbox.taster_task" if … else "…_default"``.
        written |= set(re.findall(r"""["']([a-z_]+\.inbox\.[a-z_.]+[a-z])["']""", path.read_text()))
    assert {"live.inbox.reminder", "referral.inbox.honour", "community.inbox.taster_task_default"} <= written
    missing = sorted(
        f"{k}.{part}"
        for k in written
        for part in ("title", "body")
        if f"{k}.{part}" not in known and k not in known
    )
    assert missing == []
