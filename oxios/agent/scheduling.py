"""Service ``scheduler``: the scheduler named by ``[scheduler] backend``, from the ``scheduler`` hook.

The built-in "local" one lives in :mod:`oxios.builtin.scheduler`; a plugin may
provide another. The host connects it to the resource monitor (overload holds
low-priority work) and publishes zombie kills.
"""

from __future__ import annotations

from typing import Any

from ..config import ConfigError


def start(kernel: Any) -> Any:
    cfg = kernel.config.scheduler
    scheduler = kernel.plugins.hook.scheduler(name=cfg.backend, config=cfg)
    if scheduler is None:
        raise ConfigError(f"scheduler.backend: no plugin provides a scheduler named {cfg.backend!r} (built-in: local)")

    def overloaded() -> bool:
        monitor = kernel.services.get("resources")
        return bool(monitor is not None and monitor.overload())

    if hasattr(scheduler, "overload_check"):
        scheduler.overload_check = overloaded
    if hasattr(scheduler, "on_zombie"):
        scheduler.on_zombie = lambda job: kernel.publish("agent.zombie", job_id=job.id, agent_id=job.name, error=job.error)
    kernel.expose("scheduler.stats", scheduler.stats)
    if hasattr(scheduler, "tasks"):
        kernel.expose("scheduler.tasks", scheduler.tasks)
    return scheduler
