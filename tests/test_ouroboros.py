"""Ouroboros with the scripted provider: every phase, each failure path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ouroboros_helpers import CLEAR, VAGUE

from oxios_hookspecs import IncomingMessage


def seed_json(path: str = "hello.txt", content: str = "hi", *, extra: list[dict[str, Any]] | None = None) -> str:
    return json.dumps(
        {
            "goal": f"Create {path} containing {content}",
            "constraints": ["only touch the workspace"],
            "acceptance_criteria": [
                {
                    "id": "c1",
                    "description": f"{path} contains {content}",
                    "check": {"kind": "file", "path": path, "equals": content},
                },
                *(extra or []),
            ],
            "ontology": [{"name": "file", "description": path}],
        }
    )


def enqueue_write(provider, path: str, content: str, reply: str = "Done: wrote the file.") -> None:
    provider.enqueue_tool_call("write", {"path": path, "content": content})
    provider.enqueue_text(reply)


@pytest.fixture
def protocol_kernel(oxios_kernel_factory, scripted_provider):
    def start(**orchestrator: Any):
        config = scripted_provider.config({"orchestrator": {"default_mode": "auto", **orchestrator}})
        return oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=config)

    return start


async def submit(kernel, text: str, *, session_id: str | None = None, interactive: bool = False, **meta: Any):
    message = IncomingMessage(content=text, channel="test", session_id=session_id, interactive=interactive, metadata=meta)
    return await kernel.service("gateway").submit(message)


async def test_conversation_is_routed_to_the_plain_turn_loop(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text('{"kind": "conversation", "why": "a question"}')
    scripted_provider.enqueue_text("Paris.")
    async with protocol_kernel() as kernel:
        result = await submit(kernel, "What is the capital of France?")
        assert result.response == "Paris." and result.seed_id is None and result.phase_reached == "Execute"
        assert "Classify" in scripted_provider.requests[0].system


async def test_chat_prefix_skips_routing(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text("hello!")
    async with protocol_kernel() as kernel:
        result = await submit(kernel, "#chat build me a house")
        assert result.response == "hello!" and len(scripted_provider.requests) == 1


async def test_clear_task_passes_in_generation_zero(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text('{"kind": "task", "why": "creates a file"}')
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(seed_json())
    enqueue_write(scripted_provider, "hello.txt", "hi")
    async with protocol_kernel() as kernel:
        events = kernel.subscribe(types={"phase.started", "phase.completed", "seed.created", "evaluation.result"})
        result = await submit(kernel, "create hello.txt containing hi")
        assert result.evaluation_passed is True and result.phase_reached == "Evaluate" and result.seed_id
        assert (kernel.paths.workspace / "hello.txt").read_text() == "hi"
        seed = kernel.service("ouroboros").get_seed(result.seed_id)
        assert seed["generation"] == 0 and seed["evaluation"]["mechanical_pass"] is True
        assert (kernel.paths.workspace / "seeds" / f"{result.seed_id}.json").exists()
        seen = []
        while (event := await events.get(timeout=0.1)) is not None:
            seen.append((event.type, event.data.get("phase")))
        assert ("seed.created", None) in seen and ("evaluation.result", None) in seen
        phases = [p for t, p in seen if t == "phase.started"]
        assert phases == ["Interview", "Seed", "Execute", "Evaluate"]
        # The executing agent saw the seed in its system prompt.
        assert f"seed {result.seed_id}" in scripted_provider.requests[3].system


async def test_ambiguous_task_asks_then_proceeds_with_the_answers(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(VAGUE))
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(seed_json("todo.md", "- milk"))
    enqueue_write(scripted_provider, "todo.md", "- milk")
    async with protocol_kernel() as kernel:
        first = await submit(kernel, "#spec write my notes", interactive=True)
        assert first.phase_reached == "Interview" and first.seed_id is None
        assert "Which file name?" in first.response and "pick one: text, markdown" in first.response
        second = await submit(kernel, "todo.md, markdown, just '- milk'", session_id=first.session_id, interactive=True)
        assert second.evaluation_passed is True
        interview_prompt = scripted_provider.requests[1].messages[0].text
        assert "todo.md, markdown" in interview_prompt  # re-scored with the answers
        assert kernel.service("ouroboros").pending_interview(first.session_id) is None


async def test_non_interactive_proceeds_with_assumptions(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(VAGUE))
    scripted_provider.enqueue_text(seed_json("notes.txt", "x"))
    enqueue_write(scripted_provider, "notes.txt", "x")
    async with protocol_kernel() as kernel:
        result = await submit(kernel, "#spec write my notes", interactive=False)
        assert result.evaluation_passed is True
        seed = kernel.service("ouroboros").get_seed(result.seed_id)
        assert "Assumption: the file is called notes.txt" in seed["constraints"]


async def test_interview_cap_reached(protocol_kernel, scripted_provider) -> None:
    for _ in range(2):
        scripted_provider.enqueue_text(json.dumps(VAGUE))
    scripted_provider.enqueue_text(json.dumps(VAGUE))  # still vague after the last allowed round
    scripted_provider.enqueue_text(seed_json("notes.txt", "x"))
    enqueue_write(scripted_provider, "notes.txt", "x")
    async with protocol_kernel(max_interview_rounds=2) as kernel:
        r1 = await submit(kernel, "#spec notes", interactive=True)
        r2 = await submit(kernel, "not sure", session_id=r1.session_id, interactive=True)
        assert r1.phase_reached == r2.phase_reached == "Interview"
        r3 = await submit(kernel, "whatever you think", session_id=r1.session_id, interactive=True)
        assert r3.phase_reached == "Evaluate" and r3.evaluation_passed is True
        assert any(c.startswith("Assumption:") for c in kernel.service("ouroboros").get_seed(r3.seed_id)["constraints"])


async def test_failed_check_evolves_and_passes_in_generation_one(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(seed_json("hello.txt", "hi"))
    enqueue_write(scripted_provider, "hello.txt", "hello")  # wrong content: the check fails
    scripted_provider.enqueue_text(
        json.dumps({"criteria": [{"id": "c1", "score": 0.2, "evidence": "file says hello", "verdict": "fail"}], "score": 0.2})
    )
    evolved = json.loads(seed_json("hello.txt", "hi"))
    evolved["constraints"].append("write exactly the two letters hi, nothing else")
    scripted_provider.enqueue_text(json.dumps(evolved))
    enqueue_write(scripted_provider, "hello.txt", "hi")
    async with protocol_kernel() as kernel:
        events = kernel.subscribe(types={"evolution.started"})
        result = await submit(kernel, "#spec create hello.txt containing hi")
        assert result.evaluation_passed is True and result.phase_reached == "Evolve"
        lineage = kernel.service("ouroboros").evolution(result.seed_id)
        assert [g["generation"] for g in lineage] == [0, 1]
        assert lineage[0]["evaluation_passed"] is False and lineage[1]["evaluation_passed"] is True
        assert lineage[1]["parent_id"] == lineage[0]["id"]
        child = lineage[1]["seed"]
        assert set(lineage[0]["seed"]["constraints"]) <= set(child["constraints"])  # narrowed, never widened
        assert (await events.get(timeout=10)).data["generation"] == 1


async def test_max_generations_returns_the_best(protocol_kernel, scripted_provider) -> None:
    judge_scores = [0.4, 0.6]
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(
        json.dumps({"goal": "Write a haiku", "acceptance_criteria": [{"id": "c1", "description": "a good haiku"}]})
    )
    for i, score in enumerate(judge_scores):
        scripted_provider.enqueue_text(f"haiku attempt {i}")
        scripted_provider.enqueue_text(
            json.dumps({"criteria": [{"id": "c1", "score": score, "evidence": f"attempt {i}"}], "score": score})
        )
        if i == 0:
            scripted_provider.enqueue_text(
                json.dumps({"goal": "Write a haiku", "acceptance_criteria": [{"id": "c1", "description": "a 5-7-5 haiku"}]})
            )
    async with protocol_kernel(max_generations=2) as kernel:
        events = kernel.subscribe(types={"evolution.max_reached"})
        result = await submit(kernel, "#plan write a haiku")
        assert result.evaluation_passed is False
        assert "haiku attempt 1" in result.response and "generation 1" in result.response  # the better one
        assert (await events.get(timeout=10)).data["generations"] == 2


async def test_junk_judge_output_gets_one_retry_then_a_fallback(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(json.dumps({"goal": "Explain", "acceptance_criteria": [{"id": "c1", "description": "clear"}]}))
    scripted_provider.enqueue_text("An explanation.")
    scripted_provider.enqueue_text("I think it is great!")  # not JSON
    scripted_provider.enqueue_text('{"criteria": []}')  # still unusable after the retry
    async with protocol_kernel(max_generations=1) as kernel:
        result = await submit(kernel, "#spec explain recursion")
        assert result.evaluation_passed is False
        evaluation = kernel.service("ouroboros").get_seed(result.seed_id)["evaluation"]
        assert evaluation["judge"] == "fallback" and evaluation["score"] < 0.8
        assert "not usable" in scripted_provider.requests[-1].messages[-1].text  # the corrective retry


async def test_unevidenced_claims_are_capped(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(
        json.dumps({"goal": "Summarise", "acceptance_criteria": [{"id": "c1", "description": "done"}]})
    )
    scripted_provider.enqueue_text("Trust me, it is done.")
    scripted_provider.enqueue_text(json.dumps({"criteria": [{"id": "c1", "score": 1.0, "evidence": ""}], "score": 1.0}))
    async with protocol_kernel(max_generations=1) as kernel:
        result = await submit(kernel, "#spec summarise")
        assert result.evaluation_passed is False
        assert kernel.service("ouroboros").get_seed(result.seed_id)["evaluation"]["score"] == 0.5


async def test_mechanical_command_check_runs_under_the_exec_policy(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(
        json.dumps(
            {
                "goal": "Make a file",
                "acceptance_criteria": [
                    {"id": "c1", "description": "file exists", "check": {"kind": "command", "argv": ["cat", "made.txt"]}},
                    {"id": "c2", "description": "not sneaky", "check": {"kind": "command", "argv": ["rm", "-rf", "made.txt"]}},
                ],
            }
        )
    )
    enqueue_write(scripted_provider, "made.txt", "ok")
    scripted_provider.enqueue_text(
        json.dumps(
            {
                "criteria": [{"id": "c1", "score": 1.0, "evidence": "cat ok"}, {"id": "c2", "score": 1.0, "evidence": "claimed"}],
                "score": 1.0,
            }
        )
    )
    async with protocol_kernel(max_generations=1) as kernel:
        result = await submit(kernel, "#spec make a file")
        evaluation = kernel.service("ouroboros").get_seed(result.seed_id)["evaluation"]
        by_id = {c["id"]: c for c in evaluation["criteria"]}
        assert by_id["c1"]["passed"] is True and "exited 0" in by_id["c1"]["note"]
        assert by_id["c2"]["passed"] is False and "exec policy refused" in by_id["c2"]["note"]  # rm is not allowlisted
        assert evaluation["mechanical_pass"] is False and result.evaluation_passed is False
        assert (kernel.paths.workspace / "made.txt").exists()  # the denied check never ran


def test_spec_run_end_to_end_through_the_openai_sdk(fake_openai, tmp_path) -> None:
    """`oxios run --json "#spec ..."` in a subprocess against the fake OpenAI server; the check is a real command."""
    import subprocess
    import sys

    import tomlkit

    home = tmp_path / "home"
    home.mkdir()
    doc = tomlkit.document()
    for section, values in fake_openai.config().items():
        doc[section] = values
    (home / "config.toml").write_text(tomlkit.dumps(doc))
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OXIOS") and not k.endswith("_API_KEY")}
    env.update(OXIOS_HOME=str(home), OXIOS_LOAD_PLUGINS="")
    fake_openai.enqueue_text(json.dumps(CLEAR))
    fake_openai.enqueue_text(
        json.dumps(
            {
                "goal": "Create hello.txt containing hi",
                "acceptance_criteria": [
                    {
                        "id": "c1",
                        "description": "hello.txt holds exactly hi",
                        "check": {"kind": "command", "argv": ["grep", "-qx", "hi", "hello.txt"]},
                    }
                ],
            }
        )
    )
    fake_openai.enqueue_tool_call("write", {"path": "hello.txt", "content": "hi\n"})
    fake_openai.enqueue_text("Created hello.txt.")

    def oxios(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "oxios", *args], env=env, capture_output=True, text=True, timeout=90)

    run = oxios("run", "--json", "--exit-code", "#spec create hello.txt containing hi")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["phase_reached"] == "Evaluate" and out["evaluation_passed"] is True and out["seed_id"]
    assert (home / "workspace" / "hello.txt").read_text() == "hi\n"
    listed = oxios("seeds", "list", "--json")
    assert json.loads(listed.stdout)[0]["id"] == out["seed_id"]
    shown = json.loads(oxios("seeds", "show", out["seed_id"]).stdout)
    assert shown["evaluation"]["criteria"][0]["passed"] is True and "exited 0" in shown["evaluation"]["criteria"][0]["note"]
    assert "gen 0" in oxios("seeds", "evolution", out["seed_id"]).stdout
    listed_id = oxios("seeds", "list").stdout.split()[0]  # the id the table shows is one `show` accepts
    assert oxios("seeds", "show", listed_id).returncode == 0
    missing = oxios("seeds", "show", "no-such-seed")
    assert missing.returncode == 1 and "no seed no-such-seed" in missing.stderr

    # The same request whose check fails: --exit-code makes the run exit 1.
    fake_openai.enqueue_text(json.dumps(CLEAR))
    fake_openai.enqueue_text(
        json.dumps(
            {
                "goal": "Create bye.txt containing bye",
                "acceptance_criteria": [
                    {
                        "id": "c1",
                        "description": "bye.txt holds bye",
                        "check": {"kind": "command", "argv": ["grep", "-qx", "bye", "bye.txt"]},
                    }
                ],
            }
        )
    )
    fake_openai.enqueue_text("I could not do it.")
    fake_openai.enqueue_text(json.dumps({"criteria": [{"id": "c1", "score": 0.0, "evidence": "no file"}], "score": 0.0}))
    failed = oxios(
        "--set", "orchestrator.max_generations=1", "run", "--json", "--exit-code", "#spec create bye.txt containing bye"
    )
    assert failed.returncode == 1, failed.stderr
    assert json.loads(failed.stdout)["evaluation_passed"] is False
