"""Wait until the machine is idle before a timed run (the benchmark machine may be shared)."""

from __future__ import annotations

import sys
import time


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return idle, sum(fields)


def busy_fraction(sample_s: float = 2.0) -> float:
    """Fraction of all CPUs busy over ``sample_s`` seconds (Linux ``/proc/stat``; 0.0 elsewhere)."""
    try:
        i0, t0 = _cpu_times()
        time.sleep(sample_s)
        i1, t1 = _cpu_times()
    except OSError:
        return 0.0
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_idle(threshold: float = 0.15, max_wait_s: float = 900.0) -> float:
    """Block until less than ``threshold`` of the CPUs is busy (or ``max_wait_s`` passed); return the last reading."""
    start = time.monotonic()
    busy = busy_fraction()
    while busy > threshold and time.monotonic() - start < max_wait_s:
        print(f"  machine busy ({busy:.0%}), waiting…", file=sys.stderr, flush=True)
        time.sleep(10)
        busy = busy_fraction()
    return busy
