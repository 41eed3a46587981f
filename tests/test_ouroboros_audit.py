"""Ouroboros against its spec, point by point: routing, interview, seed, execute, evaluate, evolve, surfaces.

The scripted provider stands in for the model; everything else is real (SQLite, the
exec policy, approvals, the audit chain, real commands, a real pseudo-terminal).
"""

from __future__ import annotations

import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import tomlkit
from ouroboros_helpers import CLEAR, VAGUE

from oxios.ouroboros.evaluate import Evaluation, run_check
from oxios.ouroboros.evolve import narrow
from oxios.ouroboros.interview import Clarity, Question, answer_in_terminal
from oxios.ouroboros.seed import Check, Criterion, Seed, SeedDraft
from oxios_hookspecs import Action, IncomingMessage


def seed_json(*criteria: dict[str, Any], goal: str = "Make the file", **extra: Any) -> str:
    return json.dumps({"goal": goal, "constraints": ["only touch the workspace"], "acceptance_criteria": list(criteria), **extra})


def file_criterion(cid: str, path: str, equals: str) -> dict[str, Any]:
    return {"id": cid, "description": f"{path} holds {equals}", "check": {"kind": "file", "path": path, "equals": equals}}


def judge(*scores: tuple[str, float, str]) -> str:
    return json.dumps({"criteria": [{"id": i, "score": s, "evidence": e} for i, s, e in scores], "score": 0})


@pytest.fixture
def protocol_kernel(oxios_kernel_factory, scripted_provider):
    def start(config: dict[str, Any] | None = None, **orchestrator: Any):
        tree = {"orchestrator": {"default_mode": "auto", **orchestrator}, **(config or {})}
        return oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=scripted_provider.config(tree))

    return start


async def submit(kernel, text: str, *, session_id: str | None = None, interactive: bool = False, **kwargs: Any):
    meta = kwargs.pop("metadata", {})
    message = IncomingMessage(
        content=text, channel="test", session_id=session_id, interactive=interactive, metadata=meta, **kwargs
    )
    return await kernel.service("gateway").submit(message)


def drain(events) -> list[Any]:
    seen = []
    while (event := events.get_nowait()) is not None:
        seen.append(event)
    return seen


# -- routing ---------------------------------------------------------------------------------------


def test_orchestrator_config_defaults() -> None:
    from oxios.config import OrchestratorConfig

    c = OrchestratorConfig()
    assert (c.default_mode, c.max_interview_rounds, c.ambiguity_threshold, c.max_generations, c.min_score) == (
        "auto",
        3,
        0.2,
        3,
        0.8,
    )
    assert c.force_prefixes == ["#spec", "#plan"] and c.skip_prefixes == ["#chat"]


async def test_routing_is_one_llm_call_and_junk_counts_as_conversation(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text("I would say this is a task, probably")  # not JSON: no retry, conversation
    scripted_provider.enqueue_text("Hello to you too.")
    async with protocol_kernel() as kernel:
        result = await submit(kernel, "hello there")
        assert result.response == "Hello to you too." and result.seed_id is None
        assert len(scripted_provider.requests) == 2
        assert "Classify" in scripted_provider.requests[0].system
        assert "Classify" not in scripted_provider.requests[1].system  # the plain turn loop, not a retry


async def test_classified_task_goes_through_the_protocol(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text('{"kind": "task", "why": "makes a file"}')
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(seed_json(file_criterion("c1", "a.txt", "A")))
    scripted_provider.enqueue_tool_call("write", {"path": "a.txt", "content": "A"}).enqueue_text("wrote a.txt")
    async with protocol_kernel() as kernel:
        result = await submit(kernel, "put A into a.txt")
        assert result.seed_id and result.evaluation_passed is True
        assert "how well a task request is specified" in scripted_provider.requests[1].system


async def test_default_mode_chat_and_protocol_need_no_routing_call(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text("plain answer")
    async with protocol_kernel(default_mode="chat") as kernel:
        assert (await submit(kernel, "build me a house")).response == "plain answer"
        assert len(scripted_provider.requests) == 1 and "Classify" not in scripted_provider.requests[0].system
    scripted_provider.requests.clear()
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text("not a seed")  # the seed step fails twice: stop at Seed with a clear error
    scripted_provider.enqueue_text("still not a seed")
    async with protocol_kernel(default_mode="protocol") as kernel:
        result = await submit(kernel, "what time is it?")
        assert result.phase_reached == "Seed" and result.error and "specification" in result.response
        assert "how well a task request is specified" in scripted_provider.requests[0].system


async def test_prefixes_are_configurable_whole_words(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text('{"kind": "conversation"}')  # "#specification" is no prefix: it is classified
    scripted_provider.enqueue_text("about specifications")
    scripted_provider.enqueue_text("skipped routing")
    async with protocol_kernel(force_prefixes=["!do"], skip_prefixes=["!talk"]) as kernel:
        assert (await submit(kernel, "#specification of things")).response == "about specifications"
        assert (await submit(kernel, "!talk create a file")).response == "skipped routing"
        assert len(scripted_provider.requests) == 3
        scripted_provider.enqueue_text(json.dumps(CLEAR)).enqueue_text("x").enqueue_text("y")
        forced = await submit(kernel, "!do  create a file")
        assert forced.phase_reached == "Seed"
        assert scripted_provider.requests[3].messages[0].text == "Task request:\ncreate a file"  # prefix stripped


async def test_a_bare_force_prefix_is_a_clear_error(protocol_kernel, scripted_provider) -> None:
    async with protocol_kernel() as kernel:
        result = await submit(kernel, "#spec   ")
        assert result.error == "empty task" and "no task after the prefix" in result.response
        assert scripted_provider.requests == []


# -- interview ----------------------------------------------------------------------------------


def test_ambiguity_formula() -> None:
    assert Clarity(goal=1, constraints=1, criteria=1).ambiguity == 0.0
    assert Clarity(goal=1, constraints=0, criteria=0).ambiguity == 0.6
    assert Clarity(goal=0, constraints=1, criteria=0).ambiguity == 0.7
    assert Clarity(goal=0.5, constraints=0.5, criteria=1).ambiguity == 0.35
    assert Clarity(goal=0.8, constraints=0.8, criteria=0.8).ambiguity == 0.2  # at the threshold: not above it


async def test_at_the_threshold_nobody_is_asked(protocol_kernel, scripted_provider) -> None:
    at = {**CLEAR, "goal": 0.8, "constraints": 0.8, "criteria": 0.8, "questions": [{"text": "Really?"}]}
    scripted_provider.enqueue_text(json.dumps(at)).enqueue_text("no seed").enqueue_text("no seed")
    async with protocol_kernel() as kernel:
        assert (await submit(kernel, "#spec x", interactive=True)).phase_reached == "Seed"


async def test_at_most_three_structured_questions(protocol_kernel, scripted_provider) -> None:
    many = {
        **VAGUE,
        "questions": [
            {"text": "  ", "kind": "free"},  # empty: dropped
            {"text": "Which colour?", "kind": "single", "options": ["red"]},  # one option is no choice: free text
            {"text": "Overwrite existing files?", "kind": "yes_no", "options": ["sure"]},
            {"text": "Which formats?", "kind": "multi", "options": ["csv", "json", "csv"]},
            {"text": "A fourth question", "kind": "free"},
        ],
    }
    scripted_provider.enqueue_text(json.dumps(many))
    async with protocol_kernel() as kernel:
        events = kernel.subscribe(types={"phase.completed"})
        result = await submit(kernel, "#spec export the data", interactive=True)
        assert result.phase_reached == "Interview" and result.seed_id is None and result.evaluation_passed is None
        questions = kernel.service("ouroboros").pending_questions(result.session_id)
        assert [(q.text, q.kind, q.options) for q in questions] == [
            ("Which colour?", "free", []),
            ("Overwrite existing files?", "yes_no", []),
            ("Which formats?", "multi", ["csv", "json"]),
        ]
        assert "(yes / no)" in result.response and "pick any: csv, json" in result.response
        assert "A fourth question" not in result.response
        done = [e for e in drain(events) if e.data["phase"] == "Interview"]
        assert done[0].data["asked"] == 3 and done[0].data["questions"][2]["options"] == ["csv", "json"]


async def test_no_interview_flag_proceeds_with_assumptions_even_when_someone_could_answer(
    protocol_kernel, scripted_provider
) -> None:
    scripted_provider.enqueue_text(json.dumps(VAGUE))
    scripted_provider.enqueue_text(seed_json(file_criterion("c1", "notes.txt", "x")))
    scripted_provider.enqueue_tool_call("write", {"path": "notes.txt", "content": "x"}).enqueue_text("done")
    async with protocol_kernel() as kernel:
        result = await submit(kernel, "#spec write my notes", interactive=True, metadata={"no_interview": True})
        assert result.evaluation_passed is True
        seed = kernel.service("ouroboros").get_seed(result.seed_id)
        assert "Assumption: the file is called notes.txt" in seed["constraints"]
        assert "the file is called notes.txt" in scripted_provider.requests[1].messages[0].text  # told to the seed writer


async def test_a_cron_run_never_asks(protocol_kernel, scripted_provider) -> None:
    from oxios.cron.model import JobSpec, RunRequest
    from oxios.cron.runner import GatewayRunner

    scripted_provider.enqueue_text(json.dumps(VAGUE))
    scripted_provider.enqueue_text(seed_json(file_criterion("c1", "notes.txt", "x")))
    scripted_provider.enqueue_tool_call("write", {"path": "notes.txt", "content": "x"}).enqueue_text("done")
    # The job's own criterion is bound into the seed (no check): the judge scores it.
    scripted_provider.enqueue_text(json.dumps({"criteria": [{"id": "required-1", "score": 0.9, "evidence": "notes.txt"}]}))
    async with protocol_kernel() as kernel:
        job = JobSpec(name="notes", schedule="every 1h", goal="write my notes", acceptance_criteria=["notes exist"])
        message = GatewayRunner(kernel).build_message(RunRequest(job=job, run_id="r1", session_id="cron:notes", trigger="manual"))
        result = await kernel.service("gateway").submit(message)
        assert result.evaluation_passed is True and result.phase_reached == "Evaluate"
        assert any(c.startswith("Assumption:") for c in kernel.service("ouroboros").get_seed(result.seed_id)["constraints"])
        assert kernel.service("ouroboros").pending_interview("cron:notes") is None


async def test_a_new_force_prefixed_task_replaces_a_pending_interview(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(VAGUE))
    scripted_provider.enqueue_text(json.dumps(VAGUE))
    async with protocol_kernel() as kernel:
        first = await submit(kernel, "#spec write my notes", interactive=True)
        second = await submit(kernel, "#spec plan my week", session_id=first.session_id, interactive=True)
        assert second.phase_reached == "Interview"
        pending = kernel.service("ouroboros").pending_interview(first.session_id)
        assert pending["request"] == "plan my week" and pending["round"] == 1 and pending["answers"] == []


def test_answer_in_terminal_parses_each_kind() -> None:
    questions = [
        Question(text="Format?", kind="single", options=["text", "markdown"]),
        Question(text="Which?", kind="multi", options=["a", "b", "c"]),
        Question(text="Overwrite?", kind="yes_no"),
        Question(text="Name?", kind="free"),
        Question(text="Skipped?", kind="free"),
    ]
    typed = iter(["9", "2", "1, 3, d", "maybe", "Y", "todo.md", ""])
    said: list[str] = []
    answers = answer_in_terminal(questions, lambda _prompt: next(typed), said.append)
    assert answers.splitlines() == [
        "1. Format? -> markdown",
        "2. Which? -> a, c, d",
        "3. Overwrite? -> yes",
        "4. Name? -> todo.md",
        "5. Skipped? -> (skipped: assume)",
    ]
    assert "   pick a number from 1 to 2 (Enter skips)" in said and "   answer y or n (Enter skips)" in said
    assert "   2) markdown" in said

    def eof(_prompt: str) -> str:
        raise EOFError

    assert answer_in_terminal(questions, eof, said.append) == "(no answers)"


class Terminal:
    """An `oxios` command on the slave side of a pty; the test types on the master side."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: stdin, stdout and stderr are the terminal
            os.execve(sys.executable, [sys.executable, "-m", "oxios", *argv], env)
        self.output = ""

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            try:
                self.output += os.read(self.fd, 4096).decode(errors="replace")
            except OSError:  # the child closed the terminal
                pass

    def expect(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output and time.monotonic() < deadline:
            self._read(deadline - time.monotonic())
        if text not in self.output:
            raise AssertionError(f"{text!r} never appeared; output so far:\n{self.output}")

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._read(0)
                return os.waitstatus_to_exitcode(status)
            self._read(0.1)
        raise AssertionError(f"the command did not exit; output:\n{self.output}")

    def close(self) -> None:
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


def cli_home(tmp_path: Path, server: Any, plugins: str = "") -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    doc = tomlkit.document()
    for section, values in server.config().items():
        doc[section] = values
    (home / "config.toml").write_text(tomlkit.dumps(doc))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIOS") and not k.endswith("_API_KEY")}
    return env | {"OXIOS_HOME": str(home), "OXIOS_LOAD_PLUGINS": plugins, "TERM": "dumb"}


def enqueue_notes_task(server: Any, *, try_python: bool = False) -> None:
    server.enqueue_text(json.dumps(VAGUE))
    server.enqueue_text(json.dumps(CLEAR))  # re-scored with the answers
    server.enqueue_text(seed_json(file_criterion("c1", "todo.md", "- milk"), goal="Write todo.md"))
    if try_python:  # an action that needs approval
        server.enqueue_tool_call("exec", {"binary": "python3", "args": ["-c", "print(1)"]})
    server.enqueue_tool_call("write", {"path": "todo.md", "content": "- milk"})
    server.enqueue_text("Wrote todo.md.")


def test_oxios_run_at_a_terminal_asks_the_questions_there(fake_openai, tmp_path) -> None:
    env = cli_home(tmp_path, fake_openai)
    enqueue_notes_task(fake_openai, try_python=True)
    term = Terminal(["run", "#spec write my notes"], env)
    try:
        term.expect("1. Which file name?")
        term.expect("> ")
        term.type("todo.md\n")
        term.expect("2) markdown")
        term.type("2\n")
        term.expect("Wrote todo.md.")
        assert term.wait() == 0, term.output
    finally:
        term.close()
    rescore = fake_openai.requests[1]["messages"][-1]["content"]
    assert "Which file name? -> todo.md" in rescore and "Plain text or Markdown? -> markdown" in rescore
    # Only the interview asks at the terminal: the agent's own approvals stay headless, denied at once.
    assert "no human can answer in a headless run" in json.dumps(fake_openai.requests[4]["messages"][-1])
    assert (tmp_path / "home" / "workspace" / "todo.md").read_text() == "- milk"


def test_oxios_run_without_a_terminal_proceeds_with_assumptions(fake_openai, tmp_path) -> None:
    env = cli_home(tmp_path, fake_openai)
    fake_openai.enqueue_text(json.dumps(VAGUE))
    fake_openai.enqueue_text(seed_json(file_criterion("c1", "notes.txt", "x"), goal="Write notes.txt"))
    fake_openai.enqueue_tool_call("write", {"path": "notes.txt", "content": "x"})
    fake_openai.enqueue_text("Wrote notes.txt.")
    run = subprocess.run(
        [sys.executable, "-m", "oxios", "run", "--json", "#spec write my notes"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=90,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["evaluation_passed"] is True and "Which file name?" not in run.stderr
    seed = json.loads((tmp_path / "home" / "workspace" / "seeds" / f"{out['seed_id']}.json").read_text())
    assert "Assumption: the file is called notes.txt" in seed["constraints"]


def test_oxios_chat_at_a_terminal_asks_and_takes_the_next_line_as_answers(fake_openai, tmp_path) -> None:
    env = cli_home(tmp_path, fake_openai, plugins="cli")
    enqueue_notes_task(fake_openai)
    term = Terminal(["chat"], env)
    try:
        term.expect("you> ")
        term.type("#spec write my notes\n")
        term.expect("Which file name?")
        term.expect("pick one: text, markdown")
        term.type("todo.md, markdown\n")
        term.expect("Wrote todo.md.")
        term.expect("evaluation passed")
        term.type("\x04")
        assert term.wait() == 0
    finally:
        term.close()
    assert "todo.md, markdown" in fake_openai.requests[1]["messages"][-1]["content"]


# -- seed ---------------------------------------------------------------------------------------


async def test_seed_is_immutable_versioned_and_mirrored_to_the_workspace(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(
        seed_json(
            {"id": "c1", "description": "reports ok", "check": {"kind": "command", "argv": ["grep", "-q", "ok", "r.txt"]}},
            ontology=[{"name": "report", "description": "r.txt"}],
            output_schema={"type": "object", "required": ["status"]},
        )
    )
    scripted_provider.enqueue_tool_call("write", {"path": "r.txt", "content": "ok"}).enqueue_text('{"status": "ok"}')
    async with protocol_kernel() as kernel:
        result = await submit(kernel, "#spec report ok")
        assert result.evaluation_passed is True
        service = kernel.service("ouroboros")
        seed = service.seeds.get(result.seed_id)
        with pytest.raises(AttributeError):
            seed.goal = "something wider"  # type: ignore[misc]
        with pytest.raises(sqlite3.IntegrityError):  # a stored version is never overwritten either
            service.seeds.save(msgspec.structs.replace(seed, goal="something wider"))
        assert service.seeds.get(seed.id).goal == seed.goal
        stored = service.get_seed(result.seed_id)
        assert set(stored) >= {
            "id",
            "generation",
            "parent_id",
            "goal",
            "constraints",
            "acceptance_criteria",
            "ontology",
            "original_request",
            "output_schema",
            "created_at",
        }
        assert stored["original_request"] == "report ok" and stored["parent_id"] is None
        assert stored["acceptance_criteria"][0]["check"]["argv"] == ["grep", "-q", "ok", "r.txt"]
        on_disk = json.loads((kernel.paths.workspace / "seeds" / f"{seed.id}.json").read_text())
        assert on_disk == msgspec.to_builtins(seed)
        # What `oxios seeds list|show|evolution` call on a running daemon.
        assert kernel.rpc["seeds.list"]()[0]["id"] == seed.id
        assert kernel.rpc["seeds.get"](seed.id)["evaluation"]["passed"] is True
        assert [g["id"] for g in kernel.rpc["seeds.evolution"](seed.id)] == [seed.id]
        from oxios.kernel import NotFound

        with pytest.raises(NotFound, match="no seed nope"):
            kernel.rpc["seeds.get"]("nope")


async def test_broken_checks_in_a_draft_get_a_corrective_retry(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(seed_json(file_criterion("c1", "/etc/passwd", "root")))  # outside the workspace
    scripted_provider.enqueue_text(seed_json(file_criterion("c1", "../../etc/passwd", "root")))  # still outside
    async with protocol_kernel() as kernel:
        result = await submit(kernel, "#spec read the passwords")
        assert result.phase_reached == "Seed" and "relative to the workspace" in result.error
        assert "relative to the workspace" in scripted_provider.requests[-1].messages[-1].text  # the retry named it
    for bad, why in [
        ({"id": "c1", "description": "d", "check": {"kind": "command", "argv": []}}, "needs argv"),
        ({"id": "c1", "description": "d", "check": {"kind": "shell", "argv": ["ls"]}}, "kind"),
    ]:
        from oxios.ouroboros.seed import validate_draft

        with pytest.raises(ValueError, match=why):
            validate_draft({"goal": "g", "acceptance_criteria": [bad]})
    with pytest.raises(ValueError, match="unique"):
        validate_draft({"goal": "g", "acceptance_criteria": [{"id": "a", "description": "x"}, {"id": "a", "description": "y"}]})
    with pytest.raises(ValueError, match="not a valid JSON schema"):
        validate_draft({"goal": "g", "acceptance_criteria": [{"id": "a", "description": "x"}], "output_schema": {"type": 3}})


async def test_a_file_check_never_follows_a_symlink_out_of_the_workspace(protocol_kernel, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    async with protocol_kernel() as kernel:
        (kernel.paths.workspace / "link.txt").symlink_to(secret)
        context = kernel.context(agent_id="eval", interactive=False)
        ok, note = await run_check(kernel, Check(kind="file", path="link.txt", equals="nope"), context)
        assert ok is False and "outside the workspace" in note and "hunter2" not in note
        ok, note = await run_check(kernel, Check(kind="file", path="/etc/hostname", exists=True), context)
        assert ok is False and "unusable" in note  # a stored seed with an absolute path is refused at run time too


# -- execute ------------------------------------------------------------------------------------


async def test_execution_wears_the_persona_its_model_and_tools_and_keeps_a_transcript(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(seed_json({"id": "c1", "description": "lists the workspace"}))
    scripted_provider.enqueue_tool_call("ls", {"path": "."}).enqueue_text("The workspace is empty.")
    scripted_provider.enqueue_text(judge(("c1", 0.9, "list returned nothing")))
    async with protocol_kernel() as kernel:
        kernel.service("personas").create(
            "Lister", system_prompt="You are Lister.", model="scripted/lister-model", tools=["tier:read"]
        )
        result = await submit(kernel, "#spec list the workspace", persona="Lister")
        assert result.evaluation_passed is True, result
        execute = scripted_provider.requests[2]
        assert "You are Lister." in execute.system and f"seed {result.seed_id}" in execute.system
        assert execute.model == "lister-model"
        offered = {t.name for t in execute.tools}
        assert "ls" in offered and "write" not in offered and "exec" not in offered  # the persona's tools only
        evaluation = kernel.service("ouroboros").get_seed(result.seed_id)["evaluation"]
        assert {"action": "tool.call", "resource": "ls", "allowed": True} in evaluation["transcript"]
        assert "ls" in scripted_provider.requests[-1].messages[0].text.split("Tools the agent used:")[1]  # the judge saw it


# -- evaluate -----------------------------------------------------------------------------------


async def test_output_schema_is_checked_mechanically(protocol_kernel, scripted_provider) -> None:
    schema = {"type": "object", "required": ["count"], "properties": {"count": {"type": "integer"}}}
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(seed_json(file_criterion("c1", "n.txt", "3"), output_schema=schema))
    scripted_provider.enqueue_tool_call("write", {"path": "n.txt", "content": "3"}).enqueue_text('{"count": "three"}')
    scripted_provider.enqueue_text(judge(("c1", 1.0, "n.txt holds 3")))
    async with protocol_kernel(max_generations=1) as kernel:
        result = await submit(kernel, "#spec count")
        evaluation = kernel.service("ouroboros").get_seed(result.seed_id)["evaluation"]
        assert evaluation["mechanical_pass"] is False and result.evaluation_passed is False
        assert "does not match output_schema" in evaluation["schema_error"]
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(seed_json(file_criterion("c1", "n.txt", "3"), output_schema=schema))
    scripted_provider.enqueue_tool_call("write", {"path": "n.txt", "content": "3"}).enqueue_text('```json\n{"count": 3}\n```')
    async with protocol_kernel(max_generations=1) as kernel:
        result = await submit(kernel, "#spec count")
        evaluation = kernel.service("ouroboros").get_seed(result.seed_id)["evaluation"]
        assert result.evaluation_passed is True and evaluation["judge"] == "none"  # all mechanical: no judge call


async def test_judge_rubric_verdicts_and_notes_per_criterion(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(
        seed_json(
            file_criterion("c1", "a.txt", "A"),
            {"id": "c2", "description": "explains the design"},
            {"id": "c3", "description": "mentions risks"},
            {"id": "c4", "description": "is polite"},
        )
    )
    scripted_provider.enqueue_tool_call("write", {"path": "a.txt", "content": "B"}).enqueue_text("wrote it")
    scripted_provider.enqueue_text(
        json.dumps(
            {
                "criteria": [
                    {"id": "c1", "score": 0.9, "evidence": "file exists", "note": "looks fine"},
                    {"id": "c2", "score": 0.75, "evidence": "paragraph 2", "note": "core done"},
                    {"id": "c3", "score": 0.55, "evidence": "one risk named", "note": "partial"},
                    {"id": "c4", "score": 1.0, "evidence": "", "note": "I believe so"},
                ],
                "score": 0.8,
            }
        )
    )
    async with protocol_kernel(max_generations=1) as kernel:
        result = await submit(kernel, "#spec design doc")
        assert "strict evaluator" in scripted_provider.requests[-1].system
        assert "complete 0.9-1.0" in scripted_provider.requests[-1].system
        by_id = {c["id"]: c for c in kernel.service("ouroboros").get_seed(result.seed_id)["evaluation"]["criteria"]}
        assert by_id["c1"]["score"] == 0.0 and by_id["c1"]["verdict"] == "fail"  # the judge never overrules a check
        assert by_id["c1"]["note"].startswith("a.txt contains 'B', expected 'A'") and "judge: looks fine" in by_id["c1"]["note"]
        assert (by_id["c2"]["verdict"], by_id["c3"]["verdict"]) == ("pass", "partial")
        assert by_id["c4"]["score"] == 0.5 and "no evidence" in by_id["c4"]["note"]


async def test_malformed_judge_gets_exactly_one_retry(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(seed_json({"id": "c1", "description": "clear"}))
    scripted_provider.enqueue_text("An explanation.")
    scripted_provider.enqueue_text('{"criteria": [{"id": "c1", "score": 7}]}')  # out of range
    scripted_provider.enqueue_text(judge(("c1", 0.95, "the explanation defines its terms")))
    async with protocol_kernel(max_generations=1) as kernel:
        result = await submit(kernel, "#spec explain")
        assert result.evaluation_passed is True
        judge_requests = [r for r in scripted_provider.requests if "strict evaluator" in (r.system or "")]
        assert len(judge_requests) == 2 and "between 0 and 1" in judge_requests[1].messages[-1].text


async def test_interpreter_check_is_refused_headless_with_the_policy_reason(protocol_kernel, scripted_provider) -> None:
    code = "open('ran.txt', 'w').write('ran')"
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(
        seed_json({"id": "c1", "description": "runs", "check": {"kind": "command", "argv": ["python3", "-c", code]}})
    )
    scripted_provider.enqueue_text("done")
    scripted_provider.enqueue_text(judge(("c1", 1.0, "it ran")))
    async with protocol_kernel(max_generations=1) as kernel:
        result = await submit(kernel, "#spec run a script", interactive=True)
        assert result.evaluation_passed is False
        c1 = kernel.service("ouroboros").get_seed(result.seed_id)["evaluation"]["criteria"][0]
        assert c1["passed"] is False and c1["score"] == 0.0
        assert "the exec policy refused it" in c1["note"] and "no human can answer in a headless run" in c1["note"]
        assert "python3 -c runs code" in c1["note"]
        assert not (kernel.paths.workspace / "ran.txt").exists()
        # A standing grant for exactly this command is the way to allow it.
        kernel.service("approvals").grant(
            Action(kind="exec", argv=["python3", "-c", code]), scope="global", scope_id="", by="test"
        )
        ok, note = await run_check(kernel, Check(kind="command", argv=["python3", "-c", code]), kernel.context(interactive=False))
        assert ok is True and "exited 0" in note and (kernel.paths.workspace / "ran.txt").read_text() == "ran"


def test_the_seed_writer_is_told_which_commands_a_check_may_use() -> None:
    from oxios.ouroboros.protocol import seed_system

    text = " ".join(seed_system(["git", "grep", "python3", "node", "cat"]).split())
    assert "may use only git, grep, cat." in text and "never use one in a check" in text


# -- evolve -------------------------------------------------------------------------------------


def _evaluation(seed: Seed, scores: dict[str, float]) -> Evaluation:
    from oxios.ouroboros.evaluate import CriterionResult

    return Evaluation(
        seed_id=seed.id,
        passed=False,
        mechanical_pass=True,
        score=0.5,
        criteria=[CriterionResult(id=i, score=s) for i, s in scores.items()],
    )


def test_the_evolution_guard_narrows_whatever_the_model_writes() -> None:
    check = Check(kind="command", argv=["grep", "-q", "x", "f"])
    parent = Seed(
        goal="Write f with x",
        constraints=["only f"],
        acceptance_criteria=[
            Criterion(id="keep", description="f exists"),
            Criterion(id="fix", description="f holds x", check=check),
            Criterion(id="gone", description="f is short"),
        ],
        output_schema={"type": "object"},
    )
    evaluation = _evaluation(parent, {"keep": 0.9, "fix": 0.0, "gone": 0.4})
    draft = SeedDraft(
        goal="Write f with x, and also deploy it to production",  # wider
        constraints=["write x exactly"],  # "only f" dropped
        acceptance_criteria=[
            Criterion(id="keep", description="f exists somewhere"),  # a passing criterion changed
            Criterion(id="fix", description="f holds exactly x"),  # rewritten, but its check dropped
            Criterion(id="new", description="f ends with a newline"),  # "gone" dropped, one added
        ],
        output_schema=None,
    )
    child, corrections = narrow(parent, draft, evaluation)
    assert child.goal == parent.goal and child.generation == 1 and child.parent_id == parent.id
    assert child.constraints == ["only f", "write x exactly"]
    by_id = {c.id: c for c in child.acceptance_criteria}
    assert [c.id for c in child.acceptance_criteria] == ["keep", "fix", "gone", "new"]
    assert by_id["keep"] == parent.acceptance_criteria[0]
    assert by_id["fix"].description == "f holds exactly x" and by_id["fix"].check == check
    assert by_id["gone"] == parent.acceptance_criteria[2]
    assert child.output_schema == {"type": "object"} and child.original_request == parent.original_request
    assert len(corrections) == 5, corrections


async def test_evolution_through_the_protocol_is_guarded_and_announced(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(seed_json(file_criterion("c1", "a.txt", "A"), file_criterion("c2", "b.txt", "B")))
    scripted_provider.enqueue_tool_call("write", {"path": "a.txt", "content": "A"}).enqueue_text("wrote a only")
    scripted_provider.enqueue_text(judge(("c1", 1.0, "a.txt holds A"), ("c2", 0.0, "no b.txt")))
    # The model tries to widen: a new goal, c2 (the failure) dropped, c1 loosened.
    scripted_provider.enqueue_text(
        json.dumps({"goal": "Do whatever", "acceptance_criteria": [{"id": "c1", "description": "anything"}]})
    )
    scripted_provider.enqueue_tool_call("write", {"path": "b.txt", "content": "B"}).enqueue_text("wrote b too")
    async with protocol_kernel() as kernel:
        events = kernel.subscribe(
            types={"phase.started", "phase.completed", "seed.created", "evaluation.result", "evolution.started"}
        )
        result = await submit(kernel, "#spec write a.txt and b.txt")
        assert result.evaluation_passed is True and result.phase_reached == "Evolve"
        lineage = kernel.service("ouroboros").evolution(result.seed_id)
        gen0, gen1 = lineage[0]["seed"], lineage[1]["seed"]
        assert gen1["goal"] == gen0["goal"] and gen1["acceptance_criteria"] == gen0["acceptance_criteria"]
        seen = drain(events)
        created = [e for e in seen if e.type == "seed.created"]
        assert len(created) == 2 and created[1].data["parent_id"] == gen0["id"] and len(created[1].data["guard"]) == 4
        started = [e.data["phase"] for e in seen if e.type == "phase.started"]
        assert started == ["Interview", "Seed", "Execute", "Evaluate", "Evolve", "Execute", "Evaluate"]
        assert [e.data["phase"] for e in seen if e.type == "phase.completed"] == started
        assert [e.data["passed"] for e in seen if e.type == "evaluation.result"] == [False, True]
        assert [e.type for e in seen].count("evolution.started") == 1


async def test_max_generations_returns_the_best_and_says_which(protocol_kernel, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(seed_json({"id": "c1", "description": "a good haiku"}))
    for i, score in enumerate([0.6, 0.3, 0.5]):
        scripted_provider.enqueue_text(f"haiku attempt {i}")
        scripted_provider.enqueue_text(judge(("c1", score, f"attempt {i}")))
        if i < 2:
            scripted_provider.enqueue_text(seed_json({"id": "c1", "description": "a 5-7-5 haiku"}))
    async with protocol_kernel() as kernel:
        events = kernel.subscribe(types={"evolution.max_reached"})
        result = await submit(kernel, "#plan write a haiku")
        assert result.evaluation_passed is False and result.phase_reached == "Evolve"
        assert result.response.startswith("haiku attempt 0") and "generation 0 (the best of 3 generations)" in result.response
        lineage = kernel.service("ouroboros").evolution(result.seed_id)
        assert result.seed_id == lineage[0]["id"] and [g["generation"] for g in lineage] == [0, 1, 2]
        maxed = await events.get(timeout=10)
        assert maxed.data["generations"] == 3 and maxed.data["best_seed_id"] == lineage[0]["id"]


async def test_a_later_generation_that_cannot_run_keeps_the_best_so_far(protocol_kernel, scripted_provider) -> None:
    from oxios.providers.errors import ProviderUnavailableError

    scripted_provider.enqueue_text(json.dumps(CLEAR))
    scripted_provider.enqueue_text(seed_json({"id": "c1", "description": "a good haiku"}))
    scripted_provider.enqueue_text("haiku attempt 0")
    scripted_provider.enqueue_text(judge(("c1", 0.6, "attempt 0")))
    scripted_provider.enqueue_text(seed_json({"id": "c1", "description": "a 5-7-5 haiku"}))
    scripted_provider.enqueue_error(ProviderUnavailableError("down", status=500))  # generation 1's agent cannot think
    async with protocol_kernel({"llm": {"max_retries": 0}}) as kernel:
        result = await submit(kernel, "#plan write a haiku")
        assert result.seed_id == kernel.service("ouroboros").evolution(result.seed_id)[0]["id"]
        assert result.response.startswith("haiku attempt 0") and "generation 1 could not run (failed" in result.response
        assert result.evaluation_passed is False and result.error is None
        assert scripted_provider.remaining == 0
