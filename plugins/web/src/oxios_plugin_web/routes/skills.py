"""Skills (SKILL.md packages) and Ouroboros seeds."""

from __future__ import annotations

from typing import Any

from oxios.plugins import resolve

from ..api import KB, PAGING, Call, Endpoint, Page, Param, to_builtins
from ..schemas import Item, SkillContent, SkillCreate

SKILL_BODY_LIMIT = 64 * KB


async def list_skills(call: Call) -> Page[Any]:
    skills = list(await call.call("skills", "list"))
    if call.query["status"]:
        skills = [s for s in skills if s.get("status") == call.query["status"]]
    return call.paginate(skills)


async def get_skill(call: Call) -> Any:
    return await call.call("skills", "get", call.path["name"])


async def skill_content(call: Call) -> SkillContent:
    return SkillContent(name=call.path["name"], content=await call.call("skills", "content", call.path["name"]))


async def enable_skill(call: Call) -> Any:
    return await call.call("skills", "enable", call.path["name"])


async def disable_skill(call: Call) -> Any:
    return await call.call("skills", "disable", call.path["name"])


async def create_skill(call: Call) -> Any:
    body: SkillCreate = call.body
    return await call.call(
        "skills", "create", body.name, body.description, body.body, scope=body.scope, fields=body.fields or None
    )


async def delete_skill(call: Call) -> Any:
    return await call.call("skills", "delete", call.path["name"])


def _seeds(call: Call) -> Any:
    """The seed store: service ``seeds``, or the Ouroboros service's ``seeds``."""
    from oxios.kernel import NotAvailable

    store = call.kernel.services.get("seeds") or getattr(call.kernel.services.get("ouroboros"), "seeds", None)
    if store is None:
        raise NotAvailable("seeds", "the Ouroboros protocol service is not running")
    return store


async def list_seeds(call: Call) -> Page[Any]:
    store = _seeds(call)
    page, limit = call.query["page"], call.query["limit"]
    items = await resolve(store.list(limit=limit, offset=(page - 1) * limit))
    return Page(items=list(items), total=int(await resolve(store.count())), page=page, limit=limit)


async def get_seed(call: Call) -> Any:
    store = _seeds(call)
    seed = to_builtins(await resolve(store.get(call.path["id"])))
    evaluation = getattr(store, "evaluation", None)
    if evaluation is not None and isinstance(seed, dict):
        seed["evaluation"] = await resolve(evaluation(call.path["id"]))
    return seed


async def seed_evolution(call: Call) -> Any:
    return await resolve(_seeds(call).evolution(call.path["id"]))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/skills",
        list_skills,
        "List skills with their eligibility status",
        "skills",
        response=Page[Item],
        service="skills",
        query=(*PAGING, Param("status", str, "only skills with this status (ready, needs_setup, disabled)")),
    ),
    Endpoint(
        "POST",
        "/api/skills",
        create_skill,
        "Create a skill (a SKILL.md folder)",
        "skills",
        body=SkillCreate,
        response=Item,
        status=201,
        body_limit=SKILL_BODY_LIMIT,
        errors=(409, 413),
        service="skills",
    ),
    Endpoint(
        "GET", "/api/skills/{name}", get_skill, "A skill with its requirements check", "skills", response=Item, service="skills"
    ),
    Endpoint(
        "DELETE",
        "/api/skills/{name}",
        delete_skill,
        "Delete a user or workspace skill",
        "skills",
        response=Item,
        service="skills",
    ),
    Endpoint("POST", "/api/skills/{name}/enable", enable_skill, "Enable a skill", "skills", response=Item, service="skills"),
    Endpoint("POST", "/api/skills/{name}/disable", disable_skill, "Disable a skill", "skills", response=Item, service="skills"),
    Endpoint(
        "GET",
        "/api/skills/{name}/content",
        skill_content,
        "A skill's SKILL.md text",
        "skills",
        response=SkillContent,
        service="skills",
    ),
    Endpoint(
        "GET", "/api/seeds", list_seeds, "List Ouroboros seeds", "seeds", response=Page[Item], query=PAGING, service="seeds"
    ),
    Endpoint("GET", "/api/seeds/{id}", get_seed, "One seed (the specification)", "seeds", response=Item, service="seeds"),
    Endpoint(
        "GET",
        "/api/seeds/{id}/evolution",
        seed_evolution,
        "A seed's evolution history (generations)",
        "seeds",
        response=list[Item],
        service="seeds",
    ),
]
