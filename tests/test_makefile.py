"""`make run`'s OpenMP wait policy: the threads spin only when the CPU was otherwise idle (Makefile, README)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _policy(samples: str) -> str:
    """The command `make run` would run, given two /proc/stat 'cpu' lines one second apart."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run(["make", "-n", "-s", "-C", str(ROOT), "run", f"CPU_SAMPLES=printf '{samples}'"],
                         capture_output=True, text=True, env=env, check=True).stdout
    line = next(x for x in out.splitlines() if "vitkit train" in x)
    return line.split("OMP_WAIT_POLICY:-", 1)[1].split("}", 1)[0]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_spins_only_on_an_idle_cpu():
    n = os.cpu_count()
    # fields: user nice system idle iowait irq softirq steal; 100 jiffies per CPU elapse between the samples
    idle = f"cpu 10 0 10 1000 0 0 0 0\\ncpu 11 0 10 {1000 + 100 * n - 1} 0 0 0 0\\n"
    busy = f"cpu 10 0 10 1000 0 0 0 0\\ncpu 10 90 10 {1000 + 100 * n - 90} 0 0 0 0\\n"  # a niced process: 0.9 core
    assert _policy(idle) == "ACTIVE"
    assert _policy(busy) == "PASSIVE"
    assert _policy("") == "PASSIVE"  # no /proc/stat (macOS): sleep, the safe choice
