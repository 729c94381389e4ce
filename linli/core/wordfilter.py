"""The sensitive-word filter: an Aho–Corasick automaton (``pyahocorasick``) over the operators' word list,
matched against normalised text so that spacing, punctuation, full-width letters and case do not slip a
word past it. Used by the live room's comments and the community feed.

The word list itself belongs to the live domain (its operators edit it there); lower domains reach the
current filter through ``active_filter``, which asks the source the owning domain registered
(``register_source``) — so the feed refuses the same words as the room without importing it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import ahocorasick
from sqlalchemy.ext.asyncio import AsyncSession


def normalise(text: str) -> str:
    """NFKC (full-width to half-width), case-folded, without spaces, punctuation and symbols."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


@dataclass(frozen=True)
class WordFilter:
    """An automaton over normalised words; ``signature`` identifies the word list it was built from."""

    signature: tuple[int, int]
    automaton: ahocorasick.Automaton | None

    @classmethod
    def build(cls, words: Iterable[str], signature: tuple[int, int] = (0, 0)) -> WordFilter:
        automaton = ahocorasick.Automaton()
        count = 0
        for word in words:
            key = normalise(word)
            if key and key not in automaton:
                automaton.add_word(key, word)
                count += 1
        if count == 0:
            return cls(signature, None)
        automaton.make_automaton()
        return cls(signature, automaton)

    def matches(self, text: str) -> list[str]:
        """The listed words found in ``text``, each once, in the order they first occur."""
        if self.automaton is None:
            return []
        found: dict[str, None] = {}
        for _end, word in self.automaton.iter(normalise(text)):
            found.setdefault(word, None)
        return list(found)


EMPTY = WordFilter((0, 0), None)

# (session, runtime or None) -> the current filter; registered by the domain owning the word list.
WordSource = Callable[[AsyncSession, Any], Awaitable[WordFilter]]
_sources: list[WordSource] = []


def register_source(source: WordSource) -> None:
    if source not in _sources:
        _sources.append(source)


async def active_filter(session: AsyncSession, runtime: Any = None) -> WordFilter:
    """The filter built from the registered word list (``EMPTY`` when no domain registered one)."""
    if not _sources:
        return EMPTY
    return await _sources[0](session, runtime)
