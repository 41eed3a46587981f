"""The resource monitor: CPU and memory snapshots (psutil) with a bounded history.

A background task samples every few seconds; ``overload()`` reads the latest
sample against ``[scheduler] overload_cpu_percent`` / ``overload_memory_percent``
and the scheduler holds low-priority work back while it is true.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from typing import Any

import psutil

HISTORY = 360  # samples kept (30 min at the default interval)
INTERVAL_SECS = 5.0


class ResourceMonitor:
    """Service ``resources``: snapshot/history/overload."""

    def __init__(self, kernel: Any, *, interval: float = INTERVAL_SECS, history: int = HISTORY) -> None:
        self.kernel = kernel
        self.interval = interval
        self.history_buf: deque[dict[str, Any]] = deque(maxlen=history)
        self.cpu_limit = kernel.config.scheduler.overload_cpu_percent
        self.memory_limit = kernel.config.scheduler.overload_memory_percent
        self._task: asyncio.Task[None] | None = None
        self._process = psutil.Process(os.getpid())
        psutil.cpu_percent(interval=None)  # prime: the first reading is always 0.0
        self.sample()

    def sample(self) -> dict[str, Any]:
        vm = psutil.virtual_memory()
        try:
            load = os.getloadavg()
        except OSError:
            load = (0.0, 0.0, 0.0)
        with self._process.oneshot():
            rss = self._process.memory_info().rss
            children = len(self._process.children(recursive=True))
        snap = {
            "ts": time.time(),
            "cpu_percent": psutil.cpu_percent(interval=None),
            "cpu_count": psutil.cpu_count() or 1,
            "memory_percent": vm.percent,
            "memory_used_bytes": vm.total - vm.available,
            "memory_total_bytes": vm.total,
            "load_avg": list(load),
            "process_rss_bytes": rss,
            "child_processes": children,
        }
        snap["overloaded"] = self._over(snap)
        self.history_buf.append(snap)
        return snap

    def _over(self, snap: dict[str, Any]) -> bool:
        return snap["cpu_percent"] >= self.cpu_limit or snap["memory_percent"] >= self.memory_limit

    def snapshot(self) -> dict[str, Any]:
        return dict(self.history_buf[-1]) if self.history_buf else self.sample()

    def history(self, limit: int = 60) -> list[dict[str, Any]]:
        return list(self.history_buf)[-limit:]

    def overload(self) -> bool:
        return bool(self.history_buf and self.history_buf[-1]["overloaded"])

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            was = self.overload()
            now = self.sample()["overloaded"]
            if now != was:
                self.kernel.publish("resources.overload" if now else "resources.normal", **self.snapshot())

    def begin(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="oxios-resources")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def status(self) -> dict[str, Any]:
        snap = self.snapshot()
        return {
            "healthy": True,
            "detail": "overloaded" if snap["overloaded"] else None,
            "cpu_percent": snap["cpu_percent"],
            "memory_percent": snap["memory_percent"],
        }


def start(kernel: Any) -> ResourceMonitor:
    monitor = ResourceMonitor(kernel)
    monitor.begin()
    kernel.expose("resources.snapshot", monitor.snapshot)
    kernel.expose("resources.history", monitor.history)
    return monitor
