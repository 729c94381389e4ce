"""The live room's sensitive-word filter; its core moved to ``linli.core.wordfilter`` so the community
feed refuses the same words. A comment that contains a word is refused (422), not masked: a masked insult
still reads as one. Each process keeps one automaton and rebuilds it when the word list's signature
(count, highest id) changes (see ``live.comments.word_filter``)."""

from __future__ import annotations

from linli.core.wordfilter import EMPTY, WordFilter, normalise

__all__ = ["EMPTY", "WordFilter", "normalise"]
