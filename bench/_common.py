"""Shared helpers for the benchmarks under bench/: timing, percentiles, printing next to a baseline.

Benchmarks are scripts, not tests: they print figures and never assert timings.
Every figure is printed next to a baseline measured in the same run, so a
reader can tell the code's cost from the machine's (2 shared cores here).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `.venv/bin/python bench/x.py` from the repo root or elsewhere
    sys.path.insert(0, str(ROOT))

_CLEAN_ENV_PREFIXES = ("OXIOS_",)
_CLEAN_ENV_NAMES = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL")


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Sample:
    """Durations (seconds) of individual operations, plus the wall time of the whole batch."""

    name: str
    durations: list[float]
    wall: float

    @property
    def ops_per_sec(self) -> float:
        return len(self.durations) / self.wall if self.wall > 0 else 0.0

    @property
    def p50(self) -> float:
        return percentile(self.durations, 50)

    @property
    def p90(self) -> float:
        return percentile(self.durations, 90)

    @property
    def p99(self) -> float:
        return percentile(self.durations, 99)

    @property
    def median(self) -> float:
        return statistics.median(self.durations) if self.durations else 0.0


def time_sync(name: str, fn: Callable[[], object], n: int) -> Sample:
    """Call ``fn`` n times, timing each call."""
    durations: list[float] = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        durations.append(time.perf_counter() - t0)
    return Sample(name, durations, time.perf_counter() - start)


async def time_async(name: str, fn: Callable[[], Awaitable[object]], n: int) -> Sample:
    """Await ``fn()`` n times one after the other, timing each call."""
    durations: list[float] = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        durations.append(time.perf_counter() - t0)
    return Sample(name, durations, time.perf_counter() - start)


def fmt_secs(secs: float) -> str:
    """A duration with a unit that keeps three significant figures readable."""
    if secs >= 1.0:
        return f"{secs:.2f} s"
    if secs >= 1e-3:
        return f"{secs * 1e3:.2f} ms"
    return f"{secs * 1e6:.1f} µs"


def fmt_rate(per_sec: float) -> str:
    return f"{per_sec:,.0f}/s" if per_sec >= 100 else f"{per_sec:,.1f}/s"


def header(title: str) -> None:
    print(f"\n== {title} ==")


def machine_line() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | Python {platform.python_version()} | "
        f"{os.cpu_count()} cores | load avg (1 min) {load:.2f}"
    )


def print_rows(rows: list[tuple[Sample, Sample | None]], *, latency: str = "p99") -> None:
    """One line per measurement: n, ops/s, p50, p90/p99, and p50 as a multiple of its baseline's p50."""
    width = max([len(s.name) for s, _ in rows] + [11])
    print(f"{'measurement':<{width}} {'n':>6} {'rate':>12} {'p50':>11} {latency:>11}  vs baseline (p50)")
    for sample, base in rows:
        tail = sample.p99 if latency == "p99" else sample.p90
        ratio = "(baseline)"
        if base is not None:
            ratio = f"{sample.p50 / base.p50:,.1f}x {base.name!r}" if base.p50 > 0 else f"- {base.name!r}"
        print(
            f"{sample.name:<{width}} {len(sample.durations):>6} {fmt_rate(sample.ops_per_sec):>12} "
            f"{fmt_secs(sample.p50):>11} {fmt_secs(tail):>11}  {ratio}"
        )


@contextlib.contextmanager
def temp_home(prefix: str = "oxios-bench-") -> Iterator[Path]:
    """A throwaway OXIOS_HOME with provider keys and OXIOS_* variables cleared (restored afterwards)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(_CLEAN_ENV_PREFIXES) or k in _CLEAN_ENV_NAMES}
    for key in saved:
        del os.environ[key]
    root = Path(tempfile.mkdtemp(prefix=prefix))
    home = root / "home"
    home.mkdir()
    os.environ["OXIOS_HOME"] = str(home)
    try:
        yield home
    finally:
        os.environ.pop("OXIOS_HOME", None)
        os.environ.update(saved)
        shutil.rmtree(root, ignore_errors=True)
