"""The protocol's own model calls (classify, interview, seed writer, judge, evolve) are charged to the run's budget."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from ouroboros_helpers import CLEAR

from oxios.ouroboros.protocol import run_account
from oxios.providers.scripted import ScriptedTurn
from oxios_hookspecs import IncomingMessage, Usage

TASK = '{"kind": "task", "why": "makes a file"}'
# A seed whose only criterion has no check, so every run asks the judge.
SEED = json.dumps({"goal": "Write hello.txt", "acceptance_criteria": [{"id": "c1", "description": "hello.txt says hi"}]})
PASS = json.dumps({"criteria": [{"id": "c1", "score": 0.95, "evidence": "wrote hello.txt with hi"}], "score": 0.95})
FAIL = json.dumps({"criteria": [{"id": "c1", "score": 0.2, "evidence": "the file says bye"}], "score": 0.2})
PRICES = [1000.0, 2000.0]  # USD per million tokens, large enough that a few tokens cost something visible


def usage(tokens_in: int, tokens_out: int) -> Usage:
    return Usage(input_tokens=tokens_in, output_tokens=tokens_out)


@pytest.fixture
def start(oxios_kernel_factory, scripted_provider):
    def start(*, max_tokens: int = 0, **orchestrator: Any):
        config = scripted_provider.config(
            {
                "orchestrator": {"default_mode": "auto", **orchestrator},
                "budget": {"default_max_tokens": max_tokens, "pricing": {scripted_provider.model: PRICES}},
            }
        )
        return oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=config)

    return start


def message(text: str) -> IncomingMessage:
    return IncomingMessage(content=text, channel="test", interactive=False)


def drain(subscription) -> list[Any]:
    events = []
    while (event := subscription.get_nowait()) is not None:
        events.append(event)
    return events


async def test_protocol_calls_are_charged_to_the_run_account_and_published(start, scripted_provider) -> None:
    msg = message("create hello.txt containing hi")
    account = run_account(msg)
    seen_by_judge: dict[str, Any] = {}

    def judge(_request) -> ScriptedTurn:
        seen_by_judge.update(kernel.service("budget").get(account))  # what the run had spent when the judge was asked
        return ScriptedTurn(text=PASS, usage=usage(60, 30))

    scripted_provider.enqueue_text(TASK, usage=usage(10, 5))  # classify
    scripted_provider.enqueue_text(json.dumps(CLEAR), usage=usage(20, 10))  # interview
    scripted_provider.enqueue_text(SEED, usage=usage(30, 15))  # seed writer
    scripted_provider.enqueue_tool_call("write", {"path": "hello.txt", "content": "hi"}, usage=usage(40, 20))  # agent
    scripted_provider.enqueue_text("Wrote hello.txt.", usage=usage(50, 25))  # agent
    scripted_provider.enqueue_callable(judge)
    async with start() as kernel:
        events = kernel.subscribe(types={"token.usage"})
        result = await kernel.service("gateway").submit(msg)
        assert result.evaluation_passed is True and result.error is None

        # The judge's call found every earlier call of the run on the account: the protocol's and the agent's.
        assert seen_by_judge["used_tokens"] == 15 + 30 + 45 + 60 + 75
        assert seen_by_judge["used_cost_usd"] == pytest.approx((150 * PRICES[0] + 75 * PRICES[1]) / 1e6)

        published = drain(events)
        protocol = [e.data for e in published if e.data.get("phase")]
        assert [(d["phase"], d["input_tokens"], d["output_tokens"]) for d in protocol] == [
            ("Classify", 10, 5),
            ("Interview", 20, 10),
            ("Seed", 30, 15),
            ("Evaluate", 60, 30),
        ]
        assert {d["account"] for d in protocol} == {account}
        assert all(d["session_id"] == result.session_id and d["agent_id"] is None for d in protocol)
        assert protocol[0]["cost_usd"] == pytest.approx((10 * PRICES[0] + 5 * PRICES[1]) / 1e6)
        agent_calls = [e.data for e in published if not e.data.get("phase")]
        assert [(d["agent_id"], d["input_tokens"]) for d in agent_calls] == [(result.agent_id, 40), (result.agent_id, 50)]

        # The agent's record keeps its own calls only; the run's account is gone with the run.
        record = kernel.service("agents").get(result.agent_id)
        assert (record["input_tokens"], record["output_tokens"]) == (90, 45)
        assert kernel.service("budget").list() == []
    scripted_provider.assert_drained()


async def test_a_judge_call_the_budget_cannot_pay_stops_the_run_with_the_reason(start, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR), usage=usage(10, 10))
    scripted_provider.enqueue_text(SEED, usage=usage(10, 10))
    # The agent's answer leaves 5 of the run's 100,000 tokens: too few for the judge's prompt.
    scripted_provider.enqueue_text("hello.txt says hi, trust me.", usage=usage(99_945, 10))
    async with start(max_tokens=100_000) as kernel:
        phases = kernel.subscribe(types={"phase.completed"})
        result = await kernel.service("gateway").submit(message("#spec write hello.txt"))
        assert result.phase_reached == "Evaluate" and result.exit_code == 1 and result.evaluation_passed is None
        assert result.error.startswith("the judge was not run, the run's budget is used up: token budget exhausted")
        assert "only 5 of 100000 remain" in result.error
        assert result.response.startswith("hello.txt says hi, trust me.") and result.error in result.response
        assert result.seed_id and result.agent_id
        assert kernel.service("ouroboros").get_seed(result.seed_id)["evaluation"] is None  # nothing was judged
        evaluate = [e.data for e in drain(phases) if e.data["phase"] == "Evaluate"]
        assert evaluate and evaluate[-1]["error"] == result.error
    assert len(scripted_provider.requests) == 3  # interview, seed writer, agent: the judge was never asked
    scripted_provider.assert_drained()


async def test_a_seed_writer_the_budget_cannot_pay_stops_before_any_agent(start, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR), usage=usage(4_990, 5))
    async with start(max_tokens=5_000) as kernel:
        result = await kernel.service("gateway").submit(message("#spec write hello.txt"))
        assert result.phase_reached == "Seed" and result.exit_code == 1 and result.seed_id is None
        assert result.error.startswith("the seed writer was not run, the run's budget is used up: token budget exhausted")
        assert result.response == f"Stopped: {result.error}."
        assert kernel.service("agents").list() == [] and kernel.service("ouroboros").count_seeds() == 0
    assert len(scripted_provider.requests) == 1


async def test_the_interview_is_refused_when_the_budget_cannot_hold_its_prompt(start, scripted_provider) -> None:
    async with start(max_tokens=50) as kernel:
        result = await kernel.service("gateway").submit(message("#spec create hello.txt containing hi"))
        assert result.phase_reached == "Interview" and result.exit_code == 1
        assert "the interview was not run" in result.error and "but only 50 of 50 remain (used 0)" in result.error
    assert scripted_provider.requests == []


async def test_the_executing_agent_works_on_the_run_budget(start, scripted_provider) -> None:
    """What the protocol spent is gone for the agent too: one run, one budget."""
    scripted_provider.enqueue_text(json.dumps(CLEAR), usage=usage(10, 10))
    scripted_provider.enqueue_text(SEED, usage=usage(10, 49_970))
    async with start(max_tokens=50_000) as kernel:
        result = await kernel.service("gateway").submit(message("#spec write hello.txt"))
        assert result.phase_reached == "Execute" and result.exit_code == 1
        assert "token budget exhausted" in result.error and "(used 50000)" in result.error
        assert kernel.service("agents").get(result.agent_id)["status"] == "stopped"
        assert not (kernel.paths.workspace / "hello.txt").exists()
    assert len(scripted_provider.requests) == 2  # the agent never reached the model


async def test_evolution_the_budget_cannot_pay_returns_the_best_generation_and_the_reason(start, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR), usage=usage(10, 10))
    scripted_provider.enqueue_text(SEED, usage=usage(10, 10))
    scripted_provider.enqueue_text("I wrote bye.", usage=usage(10, 10))
    scripted_provider.enqueue_text(FAIL, usage=usage(99_900, 10))  # the judge's verdict spends the rest
    async with start(max_tokens=100_000, max_generations=3) as kernel:
        seeds = kernel.subscribe(types={"seed.created"})
        result = await kernel.service("gateway").submit(message("#spec write hello.txt"))
        assert result.evaluation_passed is False and result.exit_code == 1 and result.phase_reached == "Evaluate"
        assert result.error.startswith("evolution was not run, the run's budget is used up")
        assert "evaluation failed (score 0.20" in result.response and f"no generation 1 ({result.error})" in result.response
        assert len(drain(seeds)) == 1  # no child seed
    assert len(scripted_provider.requests) == 4
    scripted_provider.assert_drained()


async def test_a_later_generation_the_budget_cannot_pay_returns_the_best_one_and_the_reason(start, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR), usage=usage(10, 10))
    scripted_provider.enqueue_text(SEED, usage=usage(10, 10))
    scripted_provider.enqueue_text("I wrote bye.", usage=usage(10, 10))
    scripted_provider.enqueue_text(FAIL, usage=usage(10, 10))
    scripted_provider.enqueue_text(SEED, usage=usage(10, 99_910))  # the evolved seed spends the rest
    async with start(max_tokens=100_000, max_generations=3) as kernel:
        result = await kernel.service("gateway").submit(message("#spec write hello.txt"))
        assert result.evaluation_passed is False and result.exit_code == 1
        assert result.error.startswith("stopped: token budget exhausted") and "(used 100000)" in result.error
        assert result.response.startswith("I wrote bye.") and f"generation 1 could not run ({result.error})" in result.response
        generations = kernel.service("ouroboros").evolution(result.seed_id)
        assert [g["generation"] for g in generations] == [0, 1] and generations[1]["evaluation"] is None
    assert len(scripted_provider.requests) == 5  # generation 1's agent never reached the model


async def test_a_message_the_budget_cannot_classify_is_answered_as_conversation(start, scripted_provider) -> None:
    async with start(max_tokens=20) as kernel:
        result = await kernel.service("gateway").submit(message("please create hello.txt containing hi"))
        # No routing call was sent; the turn loop's own agent then stops on its budget, with the reason.
        assert result.seed_id is None and "token budget exhausted" in (result.error or result.response)
    assert scripted_provider.requests == []


def test_oxios_run_json_keeps_its_shape_duration_and_exit_code(oxios_cli, oxios_home, oxios_register, scripted_provider):
    from oxios.cli.run_cmds import RUN_JSON_KEYS

    oxios_register(scripted_provider.plugin())
    (oxios_home / "config.toml").write_text(
        f"""
[providers.scripted]
kind = "scripted"
default_model = "{scripted_provider.model}"

[kernel]
default_provider = "scripted"
default_model = "{scripted_provider.model}"

[budget]
default_max_tokens = 100000
"""
    )
    scripted_provider.enqueue_text(json.dumps(CLEAR), usage=usage(10, 10))
    scripted_provider.enqueue_text(SEED, usage=usage(10, 10))
    scripted_provider.enqueue_tool_call("write", {"path": "hello.txt", "content": "hi"}, usage=usage(10, 10))
    scripted_provider.enqueue_text("Wrote hello.txt.", usage=usage(10, 10))
    scripted_provider.enqueue_text(PASS, usage=usage(10, 10))
    before = time.monotonic()
    ran = oxios_cli("run", "--json", "#spec write hello.txt")
    wall_ms = (time.monotonic() - before) * 1000
    assert ran.exit_code == 0, ran.output
    out = json.loads(ran.output)
    assert tuple(out) == RUN_JSON_KEYS and out["evaluation_passed"] is True and out["exit_code"] == 0
    assert isinstance(out["duration_ms"], int) and 0 <= out["duration_ms"] <= wall_ms

    # The same run whose judge the budget cannot pay: exit 1, and the reason in the JSON.
    scripted_provider.enqueue_text(json.dumps(CLEAR), usage=usage(10, 10))
    scripted_provider.enqueue_text(SEED, usage=usage(10, 10))
    scripted_provider.enqueue_text("Wrote hello.txt.", usage=usage(99_945, 10))
    stopped = oxios_cli("run", "--json", "#spec write hello.txt")
    assert stopped.exit_code == 1
    out = json.loads(stopped.output)
    assert set(out) == {*RUN_JSON_KEYS, "error"} and out["exit_code"] == 1 and out["phase_reached"] == "Evaluate"
    assert out["error"].startswith("the judge was not run, the run's budget is used up") and out["duration_ms"] >= 0
    scripted_provider.assert_drained()
