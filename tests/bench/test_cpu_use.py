"""The benchmarks' CPU accounting splits real processes' CPU time by part of the machine."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.cpu_use import APP, CLIENT, HELPERS, CpuUse

# A supervisor that starts an app process, which starts a helper; each burns ~0.4 s of CPU and then
# waits to be ended, so the sampler sees all it used.
TREE = """
import subprocess, sys, time
def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
role = sys.argv[1]
if role != "helper":
    subprocess.Popen([sys.executable, __file__, "app" if role == "supervisor" else "helper"])
if role != "supervisor":
    burn(0.4)
time.sleep(30)
"""


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_seconds_are_split_by_part_between_marks(tmp_path: Path) -> None:
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    supervisor = subprocess.Popen([sys.executable, str(script), "supervisor"])
    use = CpuUse(supervisor.pid, interval=0.05)
    use.start()
    try:
        use.mark("before")
        _burn(0.3)  # this process: the benchmark client
        time.sleep(2.0)  # the app process and the helper burn theirs
        use.mark("after")
    finally:
        subprocess.run(["pkill", "-f", str(script)], check=False)
        supervisor.wait()
        use.stop()
    used = use.between("before", "after")
    assert 0.25 <= used[CLIENT] < 1.0
    # The supervisor itself only starts its child; the app process burns its own 0.4 s.
    assert 0.3 <= used[APP] < 1.2
    assert 0.3 <= used[HELPERS] < 1.0
