"""The garbage collector of a long-running server process, tuned for a heap of many live connections.

A room with thousands of viewers keeps a few hundred thousand container objects alive per process
(connections, their protocols and tasks). CPython's full (generation 2) collection walks them all: in
the fan-out benchmark it stopped the event loop for 150–650 ms several times a minute, and every
comment waiting for a frame waited that long too. So, once the app has started:

- everything alive then (modules, the ORM's mappers, settings) is frozen: never scanned again;
- young collections stay cheap and frequent (what dies young is freed at once), while full ones wait
  for a thousand middle-generation collections instead of ten.

Garbage is still freed: by reference counting at once, and cycles by the young collections or, later,
the full ones. Only the app's own server processes do this (``linli.web.main``, ``linli worker``);
tests and tools keep the interpreter's defaults.
"""

from __future__ import annotations

import gc

THRESHOLDS = (1000, 20, 1000)


def settle_heap() -> None:
    """Freeze what the process holds after starting, and make full collections rare."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
