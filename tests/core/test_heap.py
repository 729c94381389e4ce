"""A server process freezes what it holds after starting and makes full collections rare; nothing else
(tests, tools) is touched."""

from __future__ import annotations

import gc
import subprocess
import sys

from linli.core.heap import THRESHOLDS


def test_a_settled_heap_is_frozen_and_collects_in_full_rarely() -> None:
    script = (
        "import gc; from linli.core.heap import settle_heap; before = gc.get_freeze_count(); settle_heap(); "
        "print(before, gc.get_freeze_count(), *gc.get_threshold())"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    before, frozen, *thresholds = (int(n) for n in out.split())
    assert before == 0
    assert frozen > 1_000  # the modules and their objects
    assert tuple(thresholds) == THRESHOLDS


def test_importing_the_app_changes_nothing_in_this_process() -> None:
    import linli.web.app  # noqa: F401

    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() != THRESHOLDS
