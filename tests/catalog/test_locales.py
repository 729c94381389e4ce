"""Every message key the catalog, community and generic admin pages use exists in zh-CN and in English."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import linli
from linli.catalog import pages as catalog_pages
from linli.community import pages as community_pages
from linli.core.admin_pages import AdminResource
from linli.core.i18n import _flatten

ROOT = Path(linli.__file__).parent
SOURCES = [
    *sorted((ROOT / "catalog/templates").rglob("*.html")),
    *sorted((ROOT / "community/templates").rglob("*.html")),
    *sorted((ROOT / "web/templates/admin").rglob("*.html")),
    ROOT / "catalog/pages.py",
    ROOT / "community/pages.py",
    ROOT / "core/admin_pages.py",
]


def messages(locale: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for folder in ("web", "catalog", "community"):
        with (ROOT / folder / "locales" / f"{locale}.toml").open("rb") as fh:
            merged.update(_flatten(tomllib.load(fh)))
    return merged


def used_keys() -> set[str]:
    keys = set()
    for path in SOURCES:
        keys |= set(re.findall(r"""(?:\bt|\))\(\s*["']([a-z_]+\.[a-z_.]+)["']""", path.read_text()))
        keys |= set(re.findall(r"""Label\(\s*["']([a-z_.]+)["']""", path.read_text()))
    for module in (catalog_pages, community_pages):
        for resource in vars(module).values():
            if isinstance(resource, AdminResource):
                keys |= {resource.title, resource.noun}
                keys |= {f.label for f in resource.fields} | {f.hint for f in resource.fields if f.hint}
                keys |= {f.blank for f in resource.fields if f.blank}
                keys |= {c.label for c in resource.columns}
    return keys


def test_the_scan_finds_keys_in_code() -> None:
    assert {"catalog.image_refused", "admin.ui.created", "community.archived_choice"} <= used_keys()


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_every_used_key_exists(locale: str) -> None:
    missing = sorted(used_keys() - set(messages(locale)))
    assert missing == []


def test_both_locales_have_the_same_keys() -> None:
    zh, en = messages("zh-CN"), messages("en")
    mine = {
        k
        for k in zh.keys() | en.keys()
        if k.split(".")[0] in ("catalog", "community") or k.startswith("admin.ui")
    }
    assert sorted(k for k in mine if k not in zh or k not in en) == []
