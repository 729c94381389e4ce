from __future__ import annotations

import re
import tomllib
from pathlib import Path

import linli.identity
import linli.web
from linli.core.i18n import _flatten
from linli.identity.models import Role

IDENTITY = Path(linli.identity.__file__).parent
WEB = Path(linli.web.__file__).parent


def keys(path: Path) -> set[str]:
    with path.open("rb") as fh:
        return set(_flatten(tomllib.load(fh)))


def test_every_identity_key_exists_in_both_languages() -> None:
    assert keys(IDENTITY / "locales" / "zh-CN.toml") == keys(IDENTITY / "locales" / "en.toml")


def test_every_key_the_templates_use_is_translated() -> None:
    known = keys(IDENTITY / "locales" / "zh-CN.toml") | keys(WEB / "locales" / "zh-CN.toml")
    used: set[str] = set()
    for template in (IDENTITY / "templates").rglob("*.html"):
        used |= set(re.findall(r"""t\(\s*["']([a-z_.A-Z]+)["']""", template.read_text()))
    dynamic = {key for key in used if key.endswith(".")}
    assert dynamic == {"identity.role."}
    assert {f"identity.role.{role.value}" for role in Role} <= known
    assert used - dynamic - known == set()
