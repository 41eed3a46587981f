"""Health, readiness, status, configuration and Prometheus metrics."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from starlette.responses import Response

from oxios.config import REDACTED, redact_tree

from ..api import Call, Endpoint, json_response
from ..errors import ApiError
from ..guard import require_capability
from ..schemas import ConfigUpdated, Health, Item, Readiness, Status


async def health(call: Call) -> Health:
    return Health(status="ok", version=call.kernel.version)


async def readiness(call: Call) -> Response:
    kernel = call.kernel
    status = kernel.status()
    components: dict[str, Item] = {"state_store": {"healthy": bool(kernel.state and kernel.state.healthy())}}
    for name, component in status.get("components", {}).items():
        if isinstance(component, dict):
            components[name] = {"healthy": bool(component.get("healthy", True)), **component}
    healthy = all(c.get("healthy", True) for c in components.values())
    body = Readiness(
        status="healthy" if healthy else "degraded",
        version=kernel.version,
        uptime_secs=status.get("uptime_secs", 0.0),
        components=components,
    )
    return json_response(body, 200 if healthy else 503)


async def status(call: Call) -> Any:
    return call.kernel.status()


async def get_config(call: Call) -> Item:
    return redact_tree(msgspec.to_builtins(call.kernel.config))


def _drop_redacted(updates: dict[str, Any]) -> dict[str, Any]:
    """The update without values the client sent back redacted (those keep the stored secret)."""
    out: dict[str, Any] = {}
    for key, value in updates.items():
        if isinstance(value, dict) and value:
            inner = _drop_redacted(value)
            if inner:
                out[key] = inner
        elif value != REDACTED:
            out[key] = value
    return out


def _apply(doc: Any, updates: dict[str, Any], prefix: str, changed: list[str]) -> None:
    import tomlkit

    for key, value in updates.items():
        dotted = f"{prefix}{key}"
        if not isinstance(key, str) or not key:
            raise ApiError(422, f"{dotted or 'body'}: keys must be non-empty strings")
        existing = doc.get(key) if hasattr(doc, "get") else None
        if isinstance(value, dict) and (existing is None or isinstance(existing, dict)) and value:
            if existing is None:
                doc[key] = tomlkit.table()
            _apply(doc[key], value, dotted + ".", changed)
            continue
        if value == REDACTED:
            continue  # the client sent back a redacted secret: keep the stored one
        if value is None:
            if key in doc:
                del doc[key]  # null resets the key to its default
                changed.append(dotted)
            continue
        doc[key] = value
        changed.append(dotted)


def write_config(path: Path, updates: dict[str, Any], kernel: Any) -> list[str]:
    """Merge ``updates`` into config.toml (comments kept); validate the result before it replaces the file."""
    import tomlkit

    from oxios.config import ConfigError, render_default_file

    # A missing file starts from the commented defaults; nothing is written unless the result validates.
    text = path.read_text(encoding="utf-8") if path.exists() else render_default_file()
    doc = tomlkit.parse(text)
    changed: list[str] = []
    _apply(doc, _drop_redacted(updates), "", changed)
    if not changed:
        raise ApiError(422, "body: nothing to change")
    fd, tmp_name = tempfile.mkstemp(prefix=".config.", suffix=".toml", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(tomlkit.dumps(doc))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            # Built exactly as the daemon's reload builds it (file < env < start-up flags): what passes here applies.
            kernel.load_config(tmp)
        except ConfigError as err:
            raise ApiError(422, str(err).replace(str(tmp), "request body")) from None
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return changed


async def put_config(call: Call) -> ConfigUpdated:
    """Merge the body (a partial config tree) into config.toml, validated before it is written; then reload it."""
    from oxios.config import ConfigError

    await require_capability(call, "manage_config")
    updates = call.body
    if not isinstance(updates, dict) or not updates:
        raise ApiError(422, 'body: expected a non-empty JSON object of config sections, e.g. {"gateway": {"port": 4300}}')
    kernel = call.kernel
    # Write inline (small file, no await): two PUTs never interleave their read-modify-write.
    changed = write_config(Path(kernel.paths.config_file), updates, kernel)
    kernel.publish("config.updated", keys=changed)
    try:
        reloaded = await kernel.reload_config(actor=call.actor)
    except ConfigError as err:  # the file was edited by hand between the write and the reload
        raise ApiError(422, f"saved, but the daemon refused the file and keeps its running config: {err}") from None
    return ConfigUpdated(
        status="updated",
        changed=changed,
        applied=reloaded.applied,
        restart_required=reloaded.restart_required,
        config=redact_tree(msgspec.to_builtins(kernel.config)),
    )


async def metrics(call: Call) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    web_metrics = call.request.app.state.metrics
    web_metrics.refresh(call.kernel)
    return Response(generate_latest(web_metrics.registry), media_type=CONTENT_TYPE_LATEST)


ENDPOINTS = [
    Endpoint("GET", "/health", health, "Health check (never needs a token)", "system", response=Health, public=True),
    Endpoint(
        "GET",
        "/api/ready",
        readiness,
        "Readiness: every component healthy (503 when degraded)",
        "system",
        response=Readiness,
        errors=(503,),
    ),
    Endpoint("GET", "/api/readiness", readiness, "Readiness (alias of /api/ready)", "system", response=Readiness, errors=(503,)),
    Endpoint("GET", "/api/status", status, "System status: version, uptime, channels, components", "system", response=Status),
    Endpoint("GET", "/api/config", get_config, "The effective configuration (secrets redacted)", "system", response=Item),
    Endpoint(
        "PUT",
        "/api/config",
        put_config,
        "Change config.toml: a partial tree, validated before writing",
        "system",
        body=dict[str, Any],
        response=ConfigUpdated,
        body_limit=64 * 1024,
        errors=(403,),
        description='Values equal to "***" keep the stored secret; null resets a key to its default. '
        "The daemon then reloads the file: `applied` lists the keys that took effect now, `restart_required` "
        "those that keep their running value until `oxios restart`; `config` is the running config.",
    ),
    Endpoint(
        "GET",
        "/api/metrics",
        metrics,
        "Prometheus metrics (text exposition format)",
        "system",
        response=str,
        media_type="text/plain",
    ),
]
