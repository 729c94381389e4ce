"""The lowest CPU priority for a helper process, taken before the process imports anything heavy.

A process pool's worker runs its initializer before it unpickles its first task, and unpickling the task
imports the task's module: for the poster renderer that is Pillow and half the app, seconds of CPU. The
initializer must therefore live in a module that imports nothing but the standard library — this one —
or those seconds run at the parent's priority, in the middle of the flash sale that asked for the first
poster (measured: ~0.5 of a core for ~8 s per app process, on two cores)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def become_lowest_priority() -> None:
    """Nice 19 everywhere; on Linux also ``SCHED_IDLE`` (runs only on a core nothing else wants, also
    across autogroups and cgroups, where nice alone ranks a process only against its own group) and
    ended with the parent process, however that one ends — never an orphan holding memory."""
    os.nice(19)
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    die_with_parent()


def die_with_parent() -> None:
    """Linux: this process gets SIGTERM when the process that started it ends; elsewhere nothing."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def describe(*modules: str) -> tuple[int, int | None, list[str]]:
    """This process's nice value, its scheduling policy (None where there are none) and which of
    ``modules`` it has imported — for tests, run as a task in the helper process."""
    policy = os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None
    return os.nice(0), policy, [m for m in modules if m in sys.modules]
