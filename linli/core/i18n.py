"""UI text: zh-CN first, English available. Catalogs are TOML files of dotted keys, one per locale."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
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

    def render(self, locale: str, message: Message, *, fallback: str | None = None) -> str:
        """``message`` in ``locale`` (its nested messages too). With a ``fallback`` (the text stored when
        it was written), a key no catalog knows or parameters that no longer fit give the fallback."""
        text = self.messages.get(locale, {}).get(message.key) or self.messages[DEFAULT_LOCALE].get(
            message.key
        )
        if text is None:
            return message.key if fallback is None else fallback
        params = {
            name: self.render(locale, value) if isinstance(value, Message) else value
            for name, value in message.params.items()
        }
        try:
            return text.format(**params) if params else text
        except (KeyError, IndexError, ValueError):
            if fallback is None:
                raise
            return fallback

    def missing(self) -> dict[str, set[str]]:
        """Keys present in one locale and absent in another."""
        every = set().union(*(set(m) for m in self.messages.values()))
        return {locale: every - set(m) for locale, m in self.messages.items() if every - set(m)}


@dataclass(frozen=True)
class Message:
    """A text the server writes for someone to read later (an inbox item): a catalog key and its
    parameters, rendered in the reader's locale when read. A parameter may itself be a ``Message``
    (rendered in the same locale); the others are plain values (names, counts, amounts already formatted
    as money) that read the same in every language."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def render(self, locale: str = "zh-CN") -> str:
        return catalog.render(locale, self)

    def child(self, suffix: str) -> Message:
        """The same parameters under ``key.suffix`` (an inbox item's ``title`` and ``body``)."""
        return Message(f"{self.key}.{suffix}", self.params)

    def to_json(self) -> dict[str, Any]:
        return {
            name: {"key": value.key, "params": value.to_json()} if isinstance(value, Message) else value
            for name, value in self.params.items()
        }

    @classmethod
    def from_json(cls, key: str, params: Mapping[str, Any] | None) -> Message:
        return cls(key, _params_from_json(params or {}))


def _params_from_json(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: Message(str(value["key"]), _params_from_json(value.get("params") or {}))
        if isinstance(value, Mapping) and "key" in value
        else value
        for name, value in params.items()
    }


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
