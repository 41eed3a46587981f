"""`oxios doctor` findings for the security boundary: audit chain, secrets, exec settings, API exposure."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterable
from typing import Any

from ..doctor import Finding, check


@check
def _security(config: Any) -> Iterable[Finding]:
    if config is None:
        return
    from ..config import home_dir
    from ..kernel import Paths

    paths = Paths.from_config(home_dir(), config)
    if paths.secrets.exists() and stat.S_IMODE(paths.secrets.stat().st_mode) & 0o077:
        yield Finding("security", "error", f"{paths.secrets} is readable by other users", f"chmod 700 {paths.secrets}")
    tokens = paths.secrets / "api_tokens.json"
    if tokens.exists() and stat.S_IMODE(tokens.stat().st_mode) & 0o077:
        yield Finding("security", "error", f"{tokens} is readable by other users", f"chmod 600 {tokens}")
    if config.exec.shell_mode:
        yield Finding(
            "security",
            "warn",
            "exec.shell_mode is on: roles with 'shell' run shell command lines",
            "oxios config set exec.shell_mode false",
        )
    if config.exec.allowlist_mode == "permissive":
        yield Finding(
            "security",
            "warn",
            "exec.allowlist_mode is permissive: any binary on PATH may run",
            'oxios config set exec.allowlist_mode "strict"',
        )
    missing = [c for c in config.exec.allowed_commands if shutil.which(c) is None]
    if missing:
        yield Finding(
            "security",
            "warn",
            f"allowed commands not found on PATH: {', '.join(missing)}",
            "install them or remove them from exec.allowed_commands",
        )
    if not config.security.auth_enabled and config.gateway.host not in ("127.0.0.1", "localhost", "::1"):
        yield Finding(
            "security",
            "error",
            f"the API listens on {config.gateway.host} without authentication",
            "oxios config set security.auth_enabled true && oxios auth token create NAME",
        )
    if paths.db.exists():
        from ..security.audit import AuditLog
        from ..state import StateStore

        store = StateStore(paths.db)
        try:
            report = AuditLog(store).verify()
        finally:
            store.close()
        if report.ok:
            yield Finding("audit", "ok", report.detail)
        else:
            yield Finding(
                "audit",
                "error",
                f"audit chain broken at entry {report.bad_seq}: {report.detail}",
                "inspect with `oxios audit verify`; restore state.db from a backup",
            )
    else:
        yield Finding("audit", "ok", "no audit entries yet")
