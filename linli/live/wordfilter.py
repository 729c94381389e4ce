"""The sensitive-word filter: an Aho–Corasick automaton (``pyahocorasick``) over the operators' word list,
matched against a normalised comment so that spacing, punctuation, full-width letters and case do not slip
a word past it.

A comment that contains a word is refused (422), not masked: a masked insult still reads as one, and the
poster learns at once why their comment did not appear. Each process keeps one automaton and rebuilds it
when the word list's signature (count, highest id) changes, so an operator's edit applies everywhere on the
next comment without a restart.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick


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
