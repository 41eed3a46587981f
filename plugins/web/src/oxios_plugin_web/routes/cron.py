"""Cron jobs: list, create, get, delete, edit, trigger, pause, resume, runs (the cron service validates specs)."""

from __future__ import annotations

from typing import Any

from ..api import PAGING, ActionResult, Call, Endpoint, Page, to_builtins
from ..errors import ApiError
from ..guard import require_capability
from ..schemas import CronJobCreate, CronJobEdit, Item


async def list_jobs(call: Call) -> Page[Any]:
    return call.paginate(list(await call.call("cron", "list")))


async def _may_schedule(call: Call, approve: Any) -> None:
    """Who may create or change a job: its agent runs unattended under ``security.default_role``.

    A token of another role needs ``manage_agents`` (else a ``reader`` token would schedule work it
    could not do itself), and so does an ``approve`` list: it grants commands up front, which is
    answering approvals.
    """
    if call.role is None:
        return  # auth off: the API is trusted
    if approve or call.role != call.kernel.config.security.default_role:
        await require_capability(call, "manage_agents")


async def create_job(call: Call) -> Any:
    spec = to_builtins(call.body)
    await _may_schedule(call, spec.get("approve"))
    # A taken name is the service's DuplicateJob, a Conflict: 409.
    return await call.call("cron", "create", spec)


async def get_job(call: Call) -> Any:
    job = await call.call("cron", "get", call.path["id"])
    runs_of = getattr(call.service("cron"), "runs", None)
    if runs_of is not None and isinstance(job, dict):
        job = {**job, "runs": runs_of(call.path["id"], limit=10)}
    return job


async def delete_job(call: Call) -> ActionResult:
    await call.call("cron", "delete", call.path["id"])
    return ActionResult(status="deleted", id=call.path["id"])


async def edit_job(call: Call) -> Any:
    changes = {k: v for k, v in to_builtins(call.body).items() if v is not None}
    if not changes:
        raise ApiError(422, "body: nothing to change")
    await _may_schedule(call, changes.get("approve"))
    return await call.call("cron", "edit", call.path["id"], changes)


async def trigger_job(call: Call) -> Any:
    return await call.call("cron", "trigger", call.path["id"])


async def pause_job(call: Call) -> Any:
    return await call.call("cron", "pause", call.path["id"])


async def resume_job(call: Call) -> Any:
    return await call.call("cron", "resume", call.path["id"])


async def job_runs(call: Call) -> Page[Any]:
    await call.call("cron", "get", call.path["id"])  # 404 for an unknown job, not an empty page
    return call.paginate(list(await call.call("cron", "runs", call.path["id"], limit=1000)))


ENDPOINTS = [
    Endpoint("GET", "/api/cron-jobs", list_jobs, "List cron jobs", "cron", response=Page[Item], query=PAGING, service="cron"),
    Endpoint(
        "POST",
        "/api/cron-jobs",
        create_job,
        "Create a cron job",
        "cron",
        body=CronJobCreate,
        response=Item,
        status=201,
        errors=(409,),
        service="cron",
    ),
    Endpoint("GET", "/api/cron-jobs/{id}", get_job, "One cron job with its recent runs", "cron", response=Item, service="cron"),
    Endpoint("DELETE", "/api/cron-jobs/{id}", delete_job, "Delete a cron job", "cron", response=ActionResult, service="cron"),
    Endpoint(
        "POST",
        "/api/cron-jobs/{id}/edit",
        edit_job,
        "Change fields of a cron job",
        "cron",
        body=CronJobEdit,
        response=Item,
        service="cron",
    ),
    Endpoint(
        "POST",
        "/api/cron-jobs/{id}/trigger",
        trigger_job,
        "Run a cron job now",
        "cron",
        response=Item,
        errors=(409,),
        service="cron",
    ),
    Endpoint(
        "POST",
        "/api/cron-jobs/{id}/pause",
        pause_job,
        "Pause a cron job (its slots are not run)",
        "cron",
        response=Item,
        service="cron",
    ),
    Endpoint(
        "POST",
        "/api/cron-jobs/{id}/resume",
        resume_job,
        "Resume a paused cron job from now",
        "cron",
        response=Item,
        service="cron",
    ),
    Endpoint(
        "GET",
        "/api/cron-jobs/{id}/runs",
        job_runs,
        "A cron job's run history, newest first",
        "cron",
        response=Page[Item],
        query=PAGING,
        service="cron",
    ),
]
