"""A cron job's constraints and acceptance criteria are binding: bound into every generation's seed in code."""

from __future__ import annotations

import json

import pytest
from cron_helpers import FakeClock, fresh_service
from ouroboros_helpers import CLEAR

from oxios.ouroboros.seed import Check, Criterion, Requirements, SeedDraft, bind

CONSTRAINTS = ["Never delete a file", "Write in plain English"]
CRITERIA = ["report.txt names its source", "report.txt is under 100 words"]
FILE_OK = {"kind": "file", "path": "report.txt", "contains": "ok"}


def judged(**scores: float) -> str:
    return json.dumps({"criteria": [{"id": i, "score": s, "evidence": "report.txt"} for i, s in scores.items()]})


async def test_a_jobs_requirements_survive_a_seed_writer_and_an_evolution_that_drop_them(
    oxios_kernel_factory, scripted_provider
) -> None:
    # The seed writer ignores the job's constraints and criteria entirely.
    draft = {
        "goal": "Write report.txt",
        "constraints": ["only touch the workspace"],
        "acceptance_criteria": [{"id": "c1", "description": "report.txt says ok", "check": FILE_OK}],
    }
    scripted_provider.enqueue_text(json.dumps(CLEAR)).enqueue_text(json.dumps(draft))
    scripted_provider.enqueue_tool_call("write", {"path": "report.txt", "content": "ok"}).enqueue_text("Wrote report.txt")
    scripted_provider.enqueue_text(judged(**{"required-1": 0.2, "required-2": 0.9}))  # no source named: fails
    # Evolution drops the constraints and one required criterion, and rewrites the other.
    evolved = {
        "goal": "Write report.txt",
        "constraints": ["cite one source"],
        "acceptance_criteria": [
            {"id": "c1", "description": "report.txt says ok", "check": FILE_OK},
            {"id": "required-1", "description": "report.txt exists", "required": True},
        ],
    }
    scripted_provider.enqueue_text(json.dumps(evolved))
    scripted_provider.enqueue_tool_call("write", {"path": "report.txt", "content": "ok, source: wire"})
    scripted_provider.enqueue_text("Rewrote report.txt with its source")
    scripted_provider.enqueue_text(judged(**{"required-1": 0.9, "required-2": 0.9}))
    config = scripted_provider.config({"orchestrator": {"default_mode": "auto", "max_generations": 2}})
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=config) as kernel:
        created = kernel.subscribe(types={"seed.created"})
        cron = await fresh_service(kernel, FakeClock("2026-05-04T08:00:00Z"), runner=None)
        cron.create(
            {
                "name": "report",
                "schedule": "every 1h",
                "goal": "Write report.txt",
                "constraints": CONSTRAINTS,
                "acceptance_criteria": CRITERIA,
            }
        )
        run = await cron.trigger("report", wait=True)
        assert run["status"] == "succeeded", run

        ouroboros = kernel.service("ouroboros")
        first, second = (g["seed"] for g in ouroboros.evolution(ouroboros.list_seeds()[0]["id"]))
        required = [
            {"id": "required-1", "description": CRITERIA[0], "required": True},
            {"id": "required-2", "description": CRITERIA[1], "required": True},
        ]
        for seed in (first, second):
            assert seed["constraints"][:2] == CONSTRAINTS  # word for word, first
            assert seed["acceptance_criteria"][:2] == required  # no check: the judge scores them
        assert first["acceptance_criteria"][2]["id"] == "c1" and second["generation"] == 1
        assert "cite one source" in second["constraints"]  # what evolution added stays too

        guard = [e.data["guard"] for e in iter(created.get_nowait, None)]
        assert guard[0] == [
            "added 2 required constraint(s) the draft left out",
            "added required criterion required-1 the draft left out",
            "added required criterion required-2 the draft left out",
        ]
        assert "kept required criterion required-1 word for word" in guard[1]
        assert "restored required criterion required-2 (a required criterion is never dropped)" in guard[1]

        # The seed writer was told; the executing agent of each generation saw them in its seed.
        writer = scripted_provider.requests[1].messages[0].text
        assert "Binding requirements" in writer and f"acceptance criterion: {CRITERIA[1]}" in writer
        executing = [r.system for r in scripted_provider.requests if "You are executing seed" in r.system]
        assert len(executing) == 4 and all(CRITERIA[0] in s and CONSTRAINTS[1] in s for s in executing)
    scripted_provider.assert_drained()


def test_bind_pins_the_callers_items_and_never_the_models() -> None:
    required = Requirements(constraints=["stay in /srv"], acceptance_criteria=["the log is empty", "tests pass"])
    draft = SeedDraft(
        goal="g",
        constraints=["be quick", "stay in /srv"],
        acceptance_criteria=[
            Criterion(id="required-1", description="something of its own", required=True),  # id taken, self-pinned
            Criterion(id="c2", description="The  log is EMPTY"),  # a plain repeat: dropped
            Criterion(id="c3", description="tests pass", check=Check(kind="command", argv=["true"])),  # repeat with a check
        ],
    )
    bound, added = bind(draft, required)
    assert bound.constraints == ["stay in /srv", "be quick"]
    assert [(c.id, c.description, c.required, c.check is not None) for c in bound.acceptance_criteria] == [
        ("required-1", "the log is empty", True, False),
        ("required-2", "tests pass", True, False),
        ("required-1-draft", "something of its own", False, False),
        ("c3", "tests pass", False, True),
    ]
    assert added == []  # the draft had both constraints and both criteria's text
    assert bind(draft, Requirements())[0].acceptance_criteria[0].required is False


def test_requirements_from_metadata_are_checked() -> None:
    assert Requirements.from_metadata({"constraints": [" a ", "", "a"], "acceptance_criteria": ["b"]}) == Requirements(
        constraints=["a"], acceptance_criteria=["b"]
    )
    assert not Requirements.from_metadata({})
    with pytest.raises(ValueError, match=r"metadata\.acceptance_criteria must be a list of strings"):
        Requirements.from_metadata({"acceptance_criteria": "tests pass"})


async def test_a_blank_requirement_is_refused_naming_the_entry(oxios_kernel_factory) -> None:
    from oxios.cron.model import InvalidJob

    async with oxios_kernel_factory() as kernel:
        cron = kernel.services["cron"]
        for field in ("constraints", "acceptance_criteria"):
            with pytest.raises(InvalidJob, match=rf"^{field}\[1\]: must not be blank"):
                cron.create({"name": "x", "schedule": "every 1h", "goal": "g", field: ["fine", "  "]})
