"""UI text: zh-CN first, English available. Catalogs are TOML files of dotted keys, one per locale."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"


class Catalog:
    def __init__(self) -> None:
        self.messages: dict[str, dict[str, str]] = {locale: {} for locale in LOCALES}

    def load_dir(self, directory: Path) -> None:
        """Merge ``<locale>.toml`` files from ``directory`` (a domain's ``locales`` folder)."""
        for locale in LOCALES:
            path = directory / f"{locale}.toml"
            if path.exists():
                with path.open("rb") as fh:
                    self.messages[locale].update(_flatten(tomllib.load(fh)))

    def translate(self, locale: str, key: str, **params: Any) -> str:
        text = self.messages.get(locale, {}).get(key) or self.messages[DEFAULT_LOCALE].get(key)
        if text is None:
            return key
        return text.format(**params) if params else text

    def missing(self) -> dict[str, set[str]]:
        """Keys present in one locale and absent in another."""
        every = set().union(*(set(m) for m in self.messages.values()))
        return {locale: every - set(m) for locale, m in self.messages.items() if every - set(m)}


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def negotiate(requested: str | None) -> str:
    if requested:
        for locale in LOCALES:
            if requested.lower() == locale.lower() or requested.lower().startswith(locale[:2].lower()):
                return locale
    return DEFAULT_LOCALE


catalog = Catalog()
