"""The delivery outbox: results and notices go out with retries and backoff.

Delivery status is kept apart from the run's status: a run that succeeded
stays succeeded when its message cannot be delivered; the outbox row and the
run's ``delivery_status`` say what happened, and ``cron.delivery_failed`` is
published when the last attempt fails. Rows survive restarts; a row caught
mid-send by a crash is sent again (at-least-once).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from oxios_hookspecs import Action, OutgoingMessage

from ..logs import redact
from ..plugins import resolve
from ..state import StateStore
from .model import DeliveryTarget, InvalidJob, parse_target

log = logging.getLogger(__name__)

MAX_BACKOFF_SECS = 3600.0


class DeliveryError(Exception):
    """A delivery attempt failed. ``permanent`` failures (policy denials) are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Outbox:
    def __init__(
        self,
        kernel: Any,
        state: StateStore,
        *,
        publish: Callable[..., Any],
        max_attempts: int,
        backoff_secs: float,
        http_timeout: float = 15.0,
    ) -> None:
        self.kernel = kernel
        self.state = state
        self.publish = publish
        self.max_attempts = max(1, max_attempts)
        self.backoff_secs = max(0.0, backoff_secs)
        self.http_timeout = http_timeout

    def enqueue(self, *, job: str, run_id: str | None, kind: str, target: str, payload: dict[str, Any], now: float) -> int:
        cur = self.state.execute(
            "INSERT INTO cron_outbox(run_id, job, kind, target, payload, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, job, kind, target, json.dumps(payload), now, now),
        )
        if run_id and kind == "result":
            self.state.execute("UPDATE cron_runs SET delivery_status = 'pending' WHERE id = ?", (run_id,))
        return int(cur.lastrowid or 0)

    def requeue_interrupted(self) -> int:
        """Rows left 'sending' by a service that died mid-send go out again."""
        return self.state.execute("UPDATE cron_outbox SET status = 'pending' WHERE status = 'sending'").rowcount

    async def process(self, now: float, *, only_id: int | None = None) -> int:
        """Attempt every due row (or just ``only_id``); return how many were delivered."""
        if only_id is not None:
            rows = self.state.all("SELECT * FROM cron_outbox WHERE id = ? AND status = 'pending'", (only_id,))
        else:
            rows = self.state.all(
                "SELECT * FROM cron_outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT 100", (now,)
            )
        delivered = 0
        for row in rows:
            claimed = self.state.execute(
                "UPDATE cron_outbox SET status = 'sending', attempts = attempts + 1 WHERE id = ? AND status = 'pending'",
                (row["id"],),
            ).rowcount
            if not claimed:
                continue
            attempt = row["attempts"] + 1
            try:
                await self._send(row["job"], row["target"], json.loads(row["payload"]))
            except Exception as err:  # any failure of a channel or an endpoint is a failed attempt
                self._failed(row, attempt, err, now)
            else:
                delivered += 1
                self.state.execute(
                    "UPDATE cron_outbox SET status = 'delivered', delivered_at = ?, last_error = NULL WHERE id = ?",
                    (now, row["id"]),
                )
                if row["run_id"] and row["kind"] == "result":
                    self.state.execute(
                        "UPDATE cron_runs SET delivery_status = 'delivered', delivery_error = NULL WHERE id = ?", (row["run_id"],)
                    )
        return delivered

    def _failed(self, row: Any, attempt: int, err: Exception, now: float) -> None:
        message = redact(str(err) or type(err).__name__)
        final = attempt >= self.max_attempts or getattr(err, "permanent", False)
        if final:
            self.state.execute("UPDATE cron_outbox SET status = 'failed', last_error = ? WHERE id = ?", (message, row["id"]))
            if row["run_id"] and row["kind"] == "result":
                self.state.execute(
                    "UPDATE cron_runs SET delivery_status = 'failed', delivery_error = ? WHERE id = ?", (message, row["run_id"])
                )
            self.publish(
                "cron.delivery_failed",
                job=row["job"],
                run_id=row["run_id"],
                kind=row["kind"],
                target=_label(row["target"]),
                attempts=attempt,
                error=message,
            )
            log.warning(
                "cron job %s: delivery to %s failed after %d attempts: %s", row["job"], _label(row["target"]), attempt, message
            )
            return
        delay = min(MAX_BACKOFF_SECS, self.backoff_secs * (2 ** (attempt - 1)))
        self.state.execute(
            "UPDATE cron_outbox SET status = 'pending', last_error = ?, next_attempt_at = ? WHERE id = ?",
            (message, now + delay, row["id"]),
        )
        if row["run_id"] and row["kind"] == "result":
            self.state.execute("UPDATE cron_runs SET delivery_error = ? WHERE id = ?", (message, row["run_id"]))
        log.info("cron job %s: delivery attempt %d failed (%s); retrying in %.0fs", row["job"], attempt, message, delay)

    async def _send(self, job: str, target_text: str, payload: dict[str, Any]) -> None:
        target = parse_target(target_text)
        if target is None:
            return
        if target.kind == "channel":
            await self._send_channel(job, target, payload)
        else:
            await self._send_webhook(job, target, payload)

    async def _send_channel(self, job: str, target: DeliveryTarget, payload: dict[str, Any]) -> None:
        channel = self.kernel.channels.get(target.channel)
        if channel is None:
            raise DeliveryError(
                f"channel {target.channel!r} is not running (channels: {', '.join(sorted(self.kernel.channels)) or 'none'})"
            )
        await resolve(
            channel.send(
                OutgoingMessage(
                    content=payload.get("text", ""),
                    channel=target.channel,
                    chat_id=target.chat_id,
                    session_id=f"cron:{job}",
                    metadata={"cron_job": job, "run_id": payload.get("run_id"), "kind": payload.get("kind")},
                )
            )
        )

    async def _send_webhook(self, job: str, target: DeliveryTarget, payload: dict[str, Any]) -> None:
        try:
            await self._post(job, target, payload)
        except DeliveryError as err:
            # The URL's path and query may hold a token: errors name scheme and host only.
            raise DeliveryError(str(err).replace(target.url, target.describe()), permanent=err.permanent) from None

    async def _post(self, job: str, target: DeliveryTarget, payload: dict[str, Any]) -> None:
        import httpx

        context = self.kernel.context(agent_id=f"cron:{job}", session_id=f"cron:{job}", interactive=False)
        verdict = await self.kernel.check_action(Action(kind="url", url=target.url, name="cron.webhook"), context)
        await self._audit(job, target, verdict)
        if verdict.verdict != "allow":
            raise DeliveryError(f"webhook blocked by policy {verdict.policy}: {verdict.reason}", permanent=True)
        # The guarded transport connects to the address the SSRF check approved (no
        # second DNS answer to trust); redirects are not followed at all.
        from ..security.ssrf import GuardedTransport

        transport = GuardedTransport(self.kernel.config.security.ssrf_allowlist)
        async with httpx.AsyncClient(
            transport=transport, timeout=self.http_timeout, follow_redirects=False, trust_env=False
        ) as client:
            try:
                response = await client.post(target.url, json=payload, headers={"User-Agent": "oxios-cron"})
            except httpx.HTTPError as err:
                raise DeliveryError(f"webhook request failed: {type(err).__name__}: {err}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"webhook answered HTTP {response.status_code}")

    async def _audit(self, job: str, target: DeliveryTarget, verdict: Any) -> None:
        audit = self.kernel.services.get("audit")
        if audit is None:
            return
        try:
            await resolve(
                audit.append(
                    f"cron:{job}",
                    "cron.webhook",
                    target.describe(),
                    verdict.verdict == "allow",
                    verdict.reason,
                    {"policy": verdict.policy},
                )
            )
        except Exception:  # auditing must not decide whether a message goes out
            log.exception("audit append failed for cron webhook")


def _label(target_text: str) -> str:
    try:
        target = parse_target(target_text)
    except InvalidJob:
        return "invalid target"
    return target.describe() if target else "none"
