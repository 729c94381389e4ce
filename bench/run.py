"""Run every benchmark under ``bench/`` in quick mode, one process each (``make bench``).

    .venv/bin/python -m bench.run [--database-url URL] [--full]

Each module runs as ``python -m bench.<name> --quick`` (so each reports its own peak memory); a module
that fails makes the run fail. ``--database-url`` is handed to every benchmark.
"""

from __future__ import annotations

import argparse
import pkgutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

import bench

console = Console()


def benchmark_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(bench.__file__).parent)])
        if info.name != "run" and not info.name.startswith("_")
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="run database benchmarks on this PostgreSQL server too")
    parser.add_argument("--full", action="store_true", help="full size instead of quick mode")
    args = parser.parse_args(argv)

    results: list[tuple[str, int, float]] = []
    for name in benchmark_modules():
        command = [sys.executable, "-m", f"bench.{name}"]
        if not args.full:
            command.append("--quick")
        if args.database_url:
            command += ["--database-url", args.database_url]
        console.rule(f"bench.{name}")
        began = time.perf_counter()
        returncode = subprocess.run(command, check=False).returncode
        results.append((name, returncode, time.perf_counter() - began))

    table = Table(title="benchmarks")
    table.add_column("benchmark")
    table.add_column("result")
    table.add_column("seconds", justify="right")
    for name, returncode, seconds in results:
        table.add_row(
            name,
            "[green]ok[/green]" if returncode == 0 else f"[red]exit {returncode}[/red]",
            f"{seconds:.1f}",
        )
    console.print(table)
    return 0 if all(returncode == 0 for _, returncode, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
