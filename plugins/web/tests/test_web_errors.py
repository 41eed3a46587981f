"""An API error's status comes from the exception's class, never from its message.

Services raise the kernel's typed errors (``NotFound``, ``Conflict``, ``Invalid``);
these tests drive real services into them and check the status the client sees,
and check that messages which used to be sniffed ("already exists", "no such" ...)
no longer decide anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from oxios_plugin_git.repo import GitError, TagExists, UnknownRevision, WorkspaceRepo
from oxios_plugin_web import create_app
from oxios_plugin_web.errors import error_response

from oxios import Conflict, Invalid, NotAvailable, NotFound
from oxios.cron import DuplicateJob, InvalidJob, JobBusy
from oxios.providers.scripted import ScriptedProvider

from .conftest import api_client, clean_env, web_kernel


def _error_class(name: str, module: str) -> type[Exception]:
    return type(name, (Exception,), {"__module__": module})


@pytest.mark.parametrize(
    ("err", "status"),
    [
        (NotFound("the thing is absent"), 404),
        (Conflict("that one is taken"), 409),
        (Invalid("refused"), 422),
        (PermissionError("denied"), 403),
        (NotAvailable("cron"), 501),
        # Messages the old heuristic sniffed: the class decides now.
        (ValueError("tag 'v1' already exists"), 422),
        (ValueError("unknown revision 'x'"), 422),
        (ValueError("no such key"), 422),
        (Invalid("not found anywhere"), 422),
        (NotFound("already exists"), 404),
        (Conflict("no such thing"), 409),
        (RuntimeError("a cron job named 'x' already exists"), 500),
        (RuntimeError("not found"), 500),
        # Class names the old heuristic sniffed ("busy", "conflict"): not a Conflict, not a 409.
        (_error_class("JobBusyError", "oxios.cron.fake")("x"), 422),
        (_error_class("ConflictingState", "oxios.agent.fake")("x"), 500),
    ],
)
def test_status_comes_from_the_class(err: BaseException, status: int) -> None:
    response = error_response(err)
    assert response.status_code == status, response.body


def test_service_error_classes_are_typed() -> None:
    # Subclasses keep their old bases, so CLI and tool callers that catch them are unaffected.
    assert issubclass(DuplicateJob, InvalidJob) and issubclass(DuplicateJob, Conflict)
    assert issubclass(JobBusy, InvalidJob) and issubclass(JobBusy, Conflict)
    assert issubclass(TagExists, GitError) and issubclass(TagExists, Conflict)
    assert issubclass(UnknownRevision, GitError) and issubclass(UnknownRevision, NotFound)
    assert error_response(JobBusy("nightly: a run is in progress")).status_code == 409


def test_existing_git_tag_is_409_and_unknown_revision_404(tmp_path: Path) -> None:
    repo = WorkspaceRepo(tmp_path / "ws")
    repo.repo  # noqa: B018 - creates the repository
    (repo.path / "a.txt").write_text("one")
    repo.commit_all("first")
    repo.tag("v1", "first release")
    with pytest.raises(TagExists) as taken:
        repo.tag("v1", "again")
    assert error_response(taken.value).status_code == 409
    with pytest.raises(UnknownRevision) as unknown:
        repo.resolve("no-such-branch")
    assert error_response(unknown.value).status_code == 404
    with pytest.raises(GitError) as bad_name:
        repo.tag("bad..name", "x")
    assert error_response(bad_name.value).status_code == 422


# -- real services behind the API ----------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kernel(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import oxios_plugin_git.plugin as git_plugin

    home = tmp_path_factory.mktemp("web-errors")
    provider = ScriptedProvider()
    with clean_env(home):
        config = {"security": {"rate_limit_per_minute": 0}}
        async with web_kernel(home, provider, config, plugins=[git_plugin]) as k:
            yield k


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(kernel: Any) -> Any:
    async with api_client(create_app(kernel)) as c:
        yield c


@pytest.mark.asyncio(loop_scope="module")
async def test_duplicate_cron_job_is_409_from_the_service(client: Any, kernel: Any) -> None:
    job = {"name": "nightly", "schedule": "0 3 * * *", "goal": "Tidy the notes"}
    assert (await client.post("/api/cron-jobs", json=job)).status_code == 201
    again = await client.post("/api/cron-jobs", json=job)
    assert again.status_code == 409 and "already exists" in again.json()["error"]
    with pytest.raises(DuplicateJob):
        kernel.services["cron"].create(job)
    # Refused input from the same service is still a 422.
    bad = await client.post("/api/cron-jobs", json={**job, "name": "other", "schedule": "every day"})
    assert bad.status_code == 422


@pytest.mark.asyncio(loop_scope="module")
async def test_duplicate_token_is_409(kernel: Any) -> None:
    tokens = kernel.services["tokens"]
    tokens.create("ci-bot")
    with pytest.raises(Conflict) as taken:
        tokens.create("ci-bot")
    assert error_response(taken.value).status_code == 409
    with pytest.raises(Invalid) as unnamed:
        tokens.create("  ")
    assert error_response(unnamed.value).status_code == 422


@pytest.mark.asyncio(loop_scope="module")
async def test_duplicate_persona_is_409(client: Any) -> None:
    body = {"name": "Captain", "system_prompt": "Talk like a captain."}
    assert (await client.post("/api/personas", json=body)).status_code == 201
    again = await client.post("/api/personas", json=body)
    assert again.status_code == 409 and "Captain" in again.json()["error"]
    # Names are case-insensitive in the personas service.
    assert (await client.post("/api/personas", json={**body, "name": "captain"})).status_code == 409


@pytest.mark.asyncio(loop_scope="module")
async def test_duplicate_memory_name_is_409(client: Any, kernel: Any) -> None:
    assert "memory" in kernel.services
    first = await client.post("/api/memory", json={"content": "The launch is on Friday", "name": "launch"})
    assert first.status_code == 201, first.text
    again = await client.post("/api/memory", json={"content": "The launch moved to Monday", "name": "launch"})
    assert again.status_code == 409 and "already exists" in again.json()["error"]


@pytest.mark.asyncio(loop_scope="module")
async def test_duplicate_skill_is_409(client: Any) -> None:
    body = {"name": "tidy-notes", "description": "Tidy the notes folder."}
    assert (await client.post("/api/skills", json=body)).status_code == 201
    assert (await client.post("/api/skills", json=body)).status_code == 409


@pytest.mark.asyncio(loop_scope="module")
async def test_unknown_git_revision_is_404(client: Any, kernel: Any) -> None:
    (Path(kernel.paths.workspace) / "a.txt").write_text("one")
    await kernel.services["git"].commit("first")
    assert (await client.get("/api/git/log?ref=HEAD")).status_code == 200
    log = await client.get("/api/git/log?ref=no-such-branch")
    assert log.status_code == 404 and "no-such-branch" in log.json()["error"]
    assert (await client.get("/api/git/log?ref=HEAD~50")).status_code == 404


@pytest.mark.asyncio(loop_scope="module")
async def test_a_422_names_the_field_first(client: Any) -> None:
    """docs/web.md: a validation message starts with the field, whatever msgspec's sentence looks like."""
    typo = await client.post("/api/chat", json={"content": "hi", "sesion_id": "s1"})
    assert typo.status_code == 422 and typo.json()["error"] == "sesion_id: unknown field"
    missing = await client.post("/api/skills", json={"name": "no-description"})
    assert missing.status_code == 422 and missing.json()["error"] == "description: required"
    wrong_type = await client.post("/api/skills", json={"name": "x", "description": 5})
    assert wrong_type.status_code == 422 and wrong_type.json()["error"].startswith("description: Expected `str`")
