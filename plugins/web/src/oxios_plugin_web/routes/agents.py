"""Agents (+kill), agent groups, the scheduler, budgets and host resources."""

from __future__ import annotations

from typing import Any

from ..api import PAGING, ActionResult, Call, Endpoint, Page, Param
from ..errors import ApiError
from ..guard import require_capability
from ..schemas import AgentKilled, BudgetReserve, BudgetSet, Item, ResourceOverload

# Every state an agent row can be in (oxios.agent.supervisor: ACTIVE + ENDED).
AGENT_STATUSES = ("created", "queued", "running", "completed", "stopped", "failed", "killed", "zombie", "lost")


async def list_agents(call: Call) -> Page[Any]:
    kwargs: dict[str, Any] = {}
    if call.query["status"]:
        kwargs["status"] = call.query["status"]
    if call.query["session_id"]:
        kwargs["session_id"] = call.query["session_id"]
    agents = await call.call("agents", "list", limit=100_000, **kwargs)
    return call.paginate(list(agents))


async def get_agent(call: Call) -> Any:
    return await call.call("agents", "get", call.path["id"])


async def kill_agent(call: Call) -> AgentKilled:
    await require_capability(call, "manage_agents")
    agent_id = call.path["id"]
    await call.call("agents", "get", agent_id)  # unknown id: 404
    killed = await call.call("agents", "kill", agent_id, reason="killed via the web API")
    if not killed:
        raise ApiError(409, f"agent {agent_id} is not running")
    return AgentKilled(status="killed", id=agent_id)


async def list_groups(call: Call) -> Page[Any]:
    return call.paginate(list(await call.call("agents", "groups", limit=100_000)))


async def get_group(call: Call) -> Any:
    return await call.call("agents", "group", call.path["id"])


async def scheduler_stats(call: Call) -> Any:
    return await call.call("scheduler", "stats")


async def scheduler_tasks(call: Call) -> Page[Any]:
    return call.paginate(list(await call.call("scheduler", "tasks")))


async def get_budget(call: Call) -> Any:
    return await call.call("budget", "get", call.path["agent_id"])


async def set_budget(call: Call) -> Any:
    await require_capability(call, "manage_agents")
    body: BudgetSet = call.body
    if body.max_tokens is None and body.max_cost_usd is None:
        raise ApiError(422, "max_tokens: give max_tokens and/or max_cost_usd")
    for field, value in (("max_tokens", body.max_tokens), ("max_cost_usd", body.max_cost_usd)):
        if value is not None and value < 0:
            raise ApiError(422, f"{field}: must be >= 0")
    return await call.call("budget", "set", call.path["agent_id"], max_tokens=body.max_tokens, max_cost_usd=body.max_cost_usd)


async def delete_budget(call: Call) -> ActionResult:
    await require_capability(call, "manage_agents")
    agent_id = call.path["agent_id"]
    if not await call.call("budget", "has_limits", agent_id):
        raise ApiError(404, f"agent {agent_id} has no budget set")
    # Limits of 0 mean unlimited: removing a budget is setting both back to 0.
    await call.call("budget", "set", agent_id, max_tokens=0, max_cost_usd=0.0)
    return ActionResult(status="deleted", id=agent_id)


async def reserve_budget(call: Call) -> Any:
    body: BudgetReserve = call.body
    if body.tokens < 0 or body.cost_usd < 0:
        raise ApiError(422, "tokens: reservations must be >= 0")
    return await call.call("budget", "reserve", call.path["agent_id"], tokens=body.tokens, cost_usd=body.cost_usd)


async def reset_budget(call: Call) -> Any:
    await require_capability(call, "manage_agents")
    return await call.call("budget", "reset", call.path["agent_id"])


async def resources(call: Call) -> Any:
    return await call.call("resources", "snapshot")


async def resources_history(call: Call) -> Any:
    return await call.call("resources", "history", limit=call.query["limit"])


async def resources_overload(call: Call) -> ResourceOverload:
    overloaded = await call.call("resources", "overload")
    return ResourceOverload(overloaded=bool(overloaded), snapshot=await call.call("resources", "snapshot"))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/agents",
        list_agents,
        "List agents",
        "agents",
        response=Page[Item],
        service="agents",
        query=(
            *PAGING,
            Param("status", str, f"only agents in this state ({', '.join(AGENT_STATUSES)})", choices=AGENT_STATUSES),
            Param("session_id", str, "only agents answering this session"),
        ),
    ),
    Endpoint("GET", "/api/agents/{id}", get_agent, "One agent", "agents", response=Item, service="agents"),
    Endpoint(
        "POST",
        "/api/agents/{id}/kill",
        kill_agent,
        "Kill an agent (cancels its task and child processes)",
        "agents",
        response=AgentKilled,
        errors=(403, 409),
        service="agents",
    ),
    Endpoint(
        "GET",
        "/api/agent-groups",
        list_groups,
        "List agent groups",
        "agents",
        response=Page[Item],
        query=PAGING,
        service="agents",
    ),
    Endpoint("GET", "/api/agent-groups/{id}", get_group, "One agent group", "agents", response=Item, service="agents"),
    Endpoint(
        "GET", "/api/scheduler/stats", scheduler_stats, "Scheduler statistics", "scheduler", response=Item, service="scheduler"
    ),
    Endpoint(
        "GET",
        "/api/scheduler/tasks",
        scheduler_tasks,
        "Queued and running scheduler tasks",
        "scheduler",
        response=Page[Item],
        query=PAGING,
        service="scheduler",
    ),
    Endpoint(
        "GET", "/api/budget/{agent_id}", get_budget, "An agent's budget and usage", "budget", response=Item, service="budget"
    ),
    Endpoint(
        "POST",
        "/api/budget/{agent_id}",
        set_budget,
        "Set an agent's budget",
        "budget",
        body=BudgetSet,
        response=Item,
        service="budget",
    ),
    Endpoint(
        "DELETE",
        "/api/budget/{agent_id}",
        delete_budget,
        "Remove an agent's budget",
        "budget",
        response=ActionResult,
        service="budget",
    ),
    Endpoint(
        "POST",
        "/api/budget/{agent_id}/reserve",
        reserve_budget,
        "Reserve part of an agent's budget",
        "budget",
        body=BudgetReserve,
        response=Item,
        errors=(409,),
        service="budget",
    ),
    Endpoint(
        "POST", "/api/budget/{agent_id}/reset", reset_budget, "Reset an agent's usage", "budget", response=Item, service="budget"
    ),
    Endpoint(
        "GET",
        "/api/resources",
        resources,
        "Current CPU, memory and disk snapshot",
        "resources",
        response=Item,
        service="resources",
    ),
    Endpoint(
        "GET",
        "/api/resources/history",
        resources_history,
        "Recent resource snapshots",
        "resources",
        response=list[Item],
        query=(Param("limit", int, "how many snapshots", 60, minimum=1, maximum=10000),),
        service="resources",
    ),
    Endpoint(
        "GET",
        "/api/resources/overload",
        resources_overload,
        "Whether the host is overloaded",
        "resources",
        response=ResourceOverload,
        service="resources",
    ),
]
