"""`oxios doctor` findings for cron: config jobs that would not run."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import msgspec

from ..doctor import Finding, check
from .model import InvalidJob, spec_from_input, validate


@check
def _cron_jobs(config: Any) -> Iterable[Finding]:
    if config is None or not config.cron.jobs:
        return
    bad = 0
    for name, job in config.cron.jobs.items():
        try:
            validate(spec_from_input({"name": name, **msgspec.to_builtins(job)}), now=time.time(), check_past=False)
        except InvalidJob as err:
            bad += 1
            yield Finding(
                "cron",
                "error",
                f"[cron.jobs.{name}] cannot run: {err}",
                f"fix [cron.jobs.{name}] in config.toml (the daemon keeps it paused until then)",
            )
    if not bad:
        yield Finding("cron", "ok", f"{len(config.cron.jobs)} config job(s) valid")
