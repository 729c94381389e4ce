"""A verifiable fair draw (commit–reveal seed, HMAC stream, rejection sampling), shared by the live room's
keyword lotteries and the community feed's guessing topics. Pure functions: anyone can recompute a draw.

1. ``seed`` is 32 random bytes written as 64 lowercase hex characters. Before entries are known only
   ``seed_hash = hex(SHA-256(seed as ASCII))`` is published; the seed itself is revealed with the winners.
2. ``entries`` are user ids, distinct, sorted ascending.
3. A stream of 64-bit numbers: number ``c`` is the first 8 bytes, big-endian, of
   ``HMAC-SHA256(key = seed as ASCII, message = c as 8 bytes big-endian)``.
4. ``uniform(m)`` rejects ``x >= 2**64 - (2**64 % m)`` and returns ``x % m``: exactly uniform.
5. A partial Fisher–Yates shuffle of the sorted entries; the first ``min(n, len)`` are the winners in rank
   order (uniform without replacement).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator, Sequence

ALGORITHM = "hmac-sha256-fisher-yates-v1"
_TWO_64 = 2**64


def new_seed() -> str:
    return secrets.token_hex(32)


def commitment(seed: str) -> str:
    """The seed's published hash: hex SHA-256 of the seed's ASCII text."""
    return hashlib.sha256(seed.encode("ascii")).hexdigest()


def _numbers(seed: str) -> Iterator[int]:
    key = seed.encode("ascii")
    counter = 0
    while True:
        block = hmac.new(key, counter.to_bytes(8, "big"), hashlib.sha256).digest()
        yield int.from_bytes(block[:8], "big")
        counter += 1


def draw(seed: str, entries: Sequence[int], n: int) -> list[int]:
    """The winners, in rank order, of ``n`` drawn from ``entries`` with ``seed`` (entries are deduplicated
    and sorted first, so the caller's order does not matter)."""
    pool = sorted(set(entries))
    k = max(0, min(n, len(pool)))
    stream = _numbers(seed)
    for i in range(k):
        m = len(pool) - i
        limit = _TWO_64 - (_TWO_64 % m)
        x = next(stream)
        while x >= limit:
            x = next(stream)
        j = i + x % m
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:k]


def verify(seed: str, seed_hash: str, entries: Sequence[int], n: int, winners: Sequence[int]) -> bool:
    """Whether ``winners`` are what the committed seed draws from the published entries."""
    return hmac.compare_digest(commitment(seed), seed_hash) and list(winners) == draw(seed, entries, n)


def mask_name(name: str) -> str:
    """How a winner is named in public: the first character, stars, and the last (李** / 李*华)."""
    name = name.strip()
    if len(name) <= 1:
        return f"{name}*"
    if len(name) == 2:
        return f"{name[0]}*"
    return f"{name[0]}{'*' * min(len(name) - 2, 4)}{name[-1]}"
