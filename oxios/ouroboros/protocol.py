"""The protocol itself (service ``ouroboros``): route, interview, seed, execute, evaluate, evolve."""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

import msgspec

from oxios_hookspecs import IncomingMessage, Message, Usage

from ..gateway import ChatResult
from .evaluate import Evaluation, evaluate
from .interview import Question, assess, format_questions
from .llm import JsonReplyError, ask_json
from .seed import Criterion, Entity, Seed, SeedStore, render

log = logging.getLogger(__name__)

PENDING = "ouroboros.pending"

ROUTER_SYSTEM = """Classify the user's message for an AI agent operating system.
"task": asks for work to be done (create, change, fix, build, analyse, run something) with a checkable outcome.
"conversation": a question, chit-chat, or a request for information or opinion.
Reply with only JSON: {"kind": "task" | "conversation", "why": "..."}"""

SEED_SYSTEM = """Write a precise specification (a "seed") for an AI agent that will do the task with tools
(files in its workspace, allowlisted commands). Keep the scope to what was asked. Each acceptance criterion
should be checkable; add a mechanical check when one is obvious: {"kind": "command", "argv": ["binary", "arg"]}
(exit code 0 = pass; no shell syntax) or {"kind": "file", "path": "relative/path", "contains": "..."}
or {"kind": "file", "path": "...", "equals": "..."}.
Reply with only JSON: {"goal": "...", "constraints": ["..."], "acceptance_criteria": [{"id": "c1",
"description": "...", "check": null}], "ontology": [{"name": "...", "description": "..."}], "output_schema": null}"""

EVOLVE_SYSTEM = """A task run did not pass its evaluation. Write the next-generation seed. Narrow the scope,
never widen it: keep the goal, keep every constraint, keep every criterion that passed unchanged, and rewrite
only what failed so the next run can succeed (clearer criteria, added constraints that prevent the failure).
Reply with only JSON in the same shape as the seed you are given."""

Phase = Literal["Interview", "Seed", "Execute", "Evaluate", "Evolve"]


class SeedDraft(msgspec.Struct, kw_only=True):
    goal: str
    constraints: list[str] = []
    acceptance_criteria: list[Criterion] = []
    ontology: list[Entity] = []
    output_schema: dict[str, Any] | None = None


def _draft(data: Any) -> SeedDraft:
    draft = msgspec.convert(data, SeedDraft, strict=False)
    if not draft.goal.strip():
        raise ValueError("the seed needs a goal")
    if not draft.acceptance_criteria:
        raise ValueError("the seed needs at least one acceptance criterion")
    ids = [c.id for c in draft.acceptance_criteria]
    if len(set(ids)) != len(ids):
        raise ValueError("acceptance criteria ids must be unique")
    return draft


class Generation(msgspec.Struct, kw_only=True):
    seed: Seed
    evaluation: Evaluation | None = None
    agent_id: str | None = None
    response: str = ""
    status: str = ""
    error: str | None = None

    @property
    def evaluable(self) -> bool:
        """Worth evaluating: the agent finished, or stopped for a reason other than money."""
        return self.status == "completed" or (self.status == "stopped" and "budget" not in (self.error or "").lower())


class Ouroboros:
    """Service ``ouroboros``: the gateway hands it every message it wants."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.config = kernel.config.orchestrator
        self.seeds = SeedStore(kernel)

    def apply_config(self, config: Any) -> None:
        """A reloaded config: routing, interview and evaluation settings apply to the next message."""
        self.config = config.orchestrator

    # -- routing ----------------------------------------------------------------

    def _prefix(self, text: str) -> tuple[str | None, str]:
        stripped = text.lstrip()
        for prefix in self.config.force_prefixes:
            if stripped.lower().startswith(prefix.lower()):
                return "task", stripped[len(prefix) :].strip()
        for prefix in self.config.skip_prefixes:
            if stripped.lower().startswith(prefix.lower()):
                return "conversation", stripped[len(prefix) :].strip()
        return None, text

    async def should_handle(self, message: IncomingMessage, session: dict[str, Any]) -> bool:
        # A caller that knows (cron, A2A ...) says so in metadata instead of a prefix in the text.
        route = (message.metadata or {}).get("route")
        if route in ("protocol", "chat"):
            return route == "protocol"
        if self.kernel.state.kv_get(PENDING, session["id"]) is not None:
            return not self._prefix(message.content)[0] == "conversation"
        forced, _ = self._prefix(message.content)
        if forced is not None:
            return forced == "task"
        if self.config.default_mode != "auto":
            return self.config.default_mode == "protocol"
        return await self.classify(message.content) == "task"

    async def classify(self, text: str) -> str:
        """One LLM call; anything unusable counts as conversation (the cheap, safe path)."""

        def validate(data: Any) -> str:
            kind = data.get("kind") if isinstance(data, dict) else None
            if kind not in ("task", "conversation"):
                raise ValueError('kind must be "task" or "conversation"')
            return kind

        try:
            return await ask_json(self.kernel, ROUTER_SYSTEM, text, validate=validate, max_tokens=200)
        except JsonReplyError:
            return "conversation"

    # -- the protocol -------------------------------------------------------------

    async def handle(self, message: IncomingMessage, session: dict[str, Any], on_token: Any = None) -> ChatResult:
        started = time.monotonic()
        usage: list[Usage] = []
        pending = self.kernel.state.kv_get(PENDING, session["id"])
        if pending is not None:
            request, answers, round_no = pending["request"], pending["answers"], pending["round"] + 1
            answers = [*answers, {"question": "\n".join(pending["questions"]), "answer": message.content}]
        else:
            request, answers, round_no = self._prefix(message.content)[1] or message.content, [], 1
        meta = message.metadata or {}
        model = str(meta.get("model") or "")
        can_ask = message.interactive and not meta.get("no_interview")

        self._phase_started("Interview", session)
        try:
            clarity = await assess(self.kernel, request, answers, model=model, usage=usage)
        except JsonReplyError as err:
            log.warning("ouroboros: interview reply unusable (%s); proceeding without scores", err)
            clarity = None
        ambiguous = clarity is not None and clarity.ambiguity > self.config.ambiguity_threshold
        if ambiguous and can_ask and clarity.questions and round_no <= self.config.max_interview_rounds:
            questions = [q.text for q in clarity.questions]
            self.kernel.state.kv_set(
                PENDING, session["id"], {"request": request, "answers": answers, "round": round_no, "questions": questions}
            )
            self._phase_completed("Interview", session, ambiguity=clarity.ambiguity, asked=len(questions))
            return self._result(format_questions(clarity.questions), session, "Interview", None, None, None, started)
        self.kernel.state.kv_delete(PENDING, session["id"])
        assumptions = clarity.assumptions if ambiguous and clarity is not None else []
        self._phase_completed(
            "Interview", session, ambiguity=clarity.ambiguity if clarity else None, assumptions=len(assumptions)
        )

        self._phase_started("Seed", session)
        try:
            seed = await self._new_seed(request, answers, assumptions, session, model, usage)
        except JsonReplyError as err:
            return self._result(
                f"I could not turn this into a specification: {err}", session, "Seed", None, False, None, started, error=str(err)
            )
        self._phase_completed("Seed", session, seed_id=seed.id)

        best: Generation | None = None
        phase: Phase = "Execute"
        for generation in range(self.config.max_generations):
            if generation:
                phase = "Evolve"
            run = await self._execute(seed, request, session, message, on_token)
            if not run.evaluable:
                # The agent could not work (provider down, killed, budget gone): stop here and say why.
                return self._result(
                    run.response,
                    session,
                    "Execute",
                    run.seed.id,
                    False,
                    run.agent_id,
                    started,
                    error=f"{run.status}: {run.error}" if run.error else run.status,
                )
            self._phase_started("Evaluate", session, seed_id=seed.id)
            context = self.kernel.context(agent_id=run.agent_id or "", session_id=session["id"], interactive=False)
            evaluation = await evaluate(
                self.kernel,
                seed,
                run.response,
                run_transcript(self.kernel, run),
                context,
                min_score=self.config.min_score,
                model=model,
                usage=usage,
            )
            run.evaluation = evaluation
            self.seeds.record_evaluation(
                seed.id,
                run.agent_id,
                {
                    **msgspec.to_builtins(evaluation),
                    "response": run.response,
                    "agent_id": run.agent_id,
                    "agent_status": run.status,
                },
            )
            self.kernel.publish(
                "evaluation.result",
                seed_id=seed.id,
                score=evaluation.score,
                mechanical_pass=evaluation.mechanical_pass,
                passed=evaluation.passed,
                generation=seed.generation,
            )
            self._phase_completed("Evaluate", session, seed_id=seed.id, passed=evaluation.passed)
            if best is None or best.evaluation is None or _rank(evaluation) > _rank(best.evaluation):
                best = run
            if evaluation.passed:
                break
            if generation + 1 >= self.config.max_generations:
                self.kernel.publish(
                    "evolution.max_reached", seed_id=seed.id, generations=self.config.max_generations, best_seed_id=best.seed.id
                )
                break
            self.kernel.publish("evolution.started", seed_id=seed.id, generation=seed.generation + 1)
            self._phase_started("Evolve", session, seed_id=seed.id)
            try:
                seed = await self._evolve(seed, evaluation, run.response, model, usage)
            except JsonReplyError as err:
                log.warning("ouroboros: evolution reply unusable (%s); stopping with the best generation", err)
                break
            self._phase_completed("Evolve", session, seed_id=seed.id)
            if on_token is not None:
                await on_token(f"\n\n[evaluation failed; evolving to generation {seed.generation}]\n\n")
        assert best is not None and best.evaluation is not None
        ev = best.evaluation
        footer = (
            f"\n\n[seed {best.seed.id[:8]}, generation {best.seed.generation}: evaluation "
            f"{'passed' if ev.passed else 'failed'} (score {ev.score:.2f}"
            f"{', mechanical checks passed' if ev.mechanical_pass else ', mechanical checks failed'})]"
        )
        return self._result(
            best.response + footer,
            session,
            phase if phase == "Evolve" else "Evaluate",
            best.seed.id,
            ev.passed,
            best.agent_id,
            started,
        )

    async def _new_seed(
        self,
        request: str,
        answers: list[dict[str, str]],
        assumptions: list[str],
        session: dict[str, Any],
        model: str,
        usage: list[Usage],
    ) -> Seed:
        prompt = f"Task request:\n{request}"
        if answers:
            prompt += "\n\nClarifications from the user:\n" + "\n".join(f"Q: {a['question']}\nA: {a['answer']}" for a in answers)
        if assumptions:
            prompt += "\n\nAssumptions to write into the constraints:\n" + "\n".join(f"- {a}" for a in assumptions)
        draft = await ask_json(self.kernel, SEED_SYSTEM, prompt, validate=_draft, model=model, usage=usage)
        constraints = [
            *draft.constraints,
            *(f"Assumption: {a}" for a in assumptions if f"Assumption: {a}" not in draft.constraints),
        ]
        seed = Seed(
            goal=draft.goal,
            constraints=constraints,
            acceptance_criteria=draft.acceptance_criteria,
            ontology=draft.ontology,
            original_request=request,
            output_schema=draft.output_schema,
            session_id=session["id"],
        )
        self.seeds.save(seed)
        self.kernel.publish("seed.created", seed_id=seed.id, generation=0, parent_id=None, session_id=session["id"])
        return seed

    async def _evolve(self, seed: Seed, evaluation: Evaluation, response: str, model: str, usage: list[Usage]) -> Seed:
        failures = [{"id": c.id, "score": c.score, "note": c.note} for c in evaluation.failures()]
        prompt = (
            f"Current seed:\n{msgspec.json.encode(seed).decode()}\n\nFailed criteria:\n{failures}\n"
            f"{'Output schema problem: ' + evaluation.schema_error if evaluation.schema_error else ''}\n"
            f"The agent's answer was:\n{response[:4000]}"
        )
        draft = await ask_json(self.kernel, EVOLVE_SYSTEM, prompt, validate=_draft, model=model, usage=usage)
        # Narrow, never widen: the goal stays, constraints only grow, passing criteria stay as they were.
        passed = {c.id for c in evaluation.criteria if c.passed is not False and (c.score is None or c.score >= 0.7)}
        kept = [c for c in seed.acceptance_criteria if c.id in passed]
        rewritten = [c for c in draft.acceptance_criteria if c.id not in passed]
        constraints = [*seed.constraints, *(c for c in draft.constraints if c not in seed.constraints)]
        child = Seed(
            generation=seed.generation + 1,
            parent_id=seed.id,
            goal=seed.goal,
            constraints=constraints,
            acceptance_criteria=kept + rewritten or seed.acceptance_criteria,
            ontology=draft.ontology or seed.ontology,
            original_request=seed.original_request,
            output_schema=seed.output_schema,
            session_id=seed.session_id,
        )
        self.seeds.save(child)
        self.kernel.publish(
            "seed.created", seed_id=child.id, generation=child.generation, parent_id=seed.id, session_id=seed.session_id
        )
        return child

    async def _execute(
        self, seed: Seed, request: str, session: dict[str, Any], message: IncomingMessage, on_token: Any
    ) -> Generation:
        self._phase_started("Execute", session, seed_id=seed.id)
        agents = self.kernel.service("agents")
        personas = self.kernel.services.get("personas")
        persona = personas.resolve(message.persona or session.get("persona")) if personas is not None else None
        history = self.kernel.service("sessions").history(session["id"])
        if history and history[-1].role == "user":
            history = history[:-1]  # the protocol states the task itself, below
        messages = [*history, Message.user(f"{request}\n\n(Work to seed {seed.id}.)")]
        meta = message.metadata or {}
        agent_id = await agents.spawn(
            seed.goal,
            session_id=session["id"],
            messages=messages,
            system=agents.system_prompt(persona, extra=render(seed)),
            model=str(meta.get("model") or ""),
            persona=(persona or {}).get("name"),
            role=meta.get("role"),  # a caller's role (an API token's) holds in the protocol too
            interactive=message.interactive,
            on_token=on_token,
        )
        record = await agents.wait(agent_id)
        response = record.get("result") or ""
        if record["status"] != "completed" and record.get("error"):
            response = (response + "\n\n" if response else "") + f"[{record['status']}: {record['error']}]"
        self._phase_completed("Execute", session, seed_id=seed.id, agent_id=agent_id, status=record["status"])
        return Generation(seed=seed, agent_id=agent_id, response=response, status=record["status"], error=record.get("error"))

    # -- helpers ------------------------------------------------------------------

    def _phase_started(self, phase: Phase, session: dict[str, Any], **data: Any) -> None:
        self.kernel.publish("phase.started", phase=phase, session_id=session["id"], **data)

    def _phase_completed(self, phase: Phase, session: dict[str, Any], **data: Any) -> None:
        self.kernel.publish("phase.completed", phase=phase, session_id=session["id"], **data)

    def _result(
        self,
        response: str,
        session: dict[str, Any],
        phase: Phase,
        seed_id: str | None,
        passed: bool | None,
        agent_id: str | None,
        started: float,
        *,
        error: str | None = None,
    ) -> ChatResult:
        return ChatResult(
            response=response,
            session_id=session["id"],
            seed_id=seed_id,
            agent_id=agent_id,
            phase_reached=phase,
            evaluation_passed=passed,
            exit_code=0 if error is None else 1,
            duration_ms=int((time.monotonic() - started) * 1000),
            error=error,
        )

    # -- facade for the web API and the CLI ---------------------------------------------

    def list_seeds(self, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        return self.seeds.list(limit=limit, offset=offset)

    def count_seeds(self) -> int:
        return self.seeds.count()

    def get_seed(self, seed_id: str) -> dict[str, Any]:
        seed = self.seeds.get(seed_id)
        return {**msgspec.to_builtins(seed), "evaluation": self.seeds.evaluation(seed_id)}

    def evolution(self, seed_id: str) -> list[dict[str, Any]]:
        return self.seeds.evolution(seed_id)

    def pending_interview(self, session_id: str) -> dict[str, Any] | None:
        return self.kernel.state.kv_get(PENDING, session_id)

    def status(self) -> dict[str, Any]:
        return {"healthy": True, "seeds": self.seeds.count(), "mode": self.config.default_mode}


def _rank(evaluation: Evaluation) -> tuple[bool, bool, float]:
    return (evaluation.passed, evaluation.mechanical_pass, evaluation.score)


def run_transcript(kernel: Any, run: Generation) -> list[dict[str, Any]]:
    """The tools the executing agent used, from the audit chain when it is there."""
    audit = kernel.services.get("audit")
    if audit is None or not run.agent_id or not hasattr(audit, "entries"):
        return []
    try:
        entries = audit.entries(agent=run.agent_id, limit=200, newest_first=False)
    except Exception:  # the transcript is evidence for the judge, never a reason to fail
        log.exception("ouroboros: could not read the audit chain")
        return []
    return [
        {"action": e.get("action"), "resource": e.get("resource"), "allowed": e.get("allowed")}
        for e in entries
        if isinstance(e, dict)
    ]


def start(kernel: Any) -> Ouroboros:
    service = Ouroboros(kernel)
    kernel.expose("seeds.list", lambda limit=50, offset=0: service.list_seeds(limit=limit, offset=offset))
    kernel.expose("seeds.get", service.get_seed)
    kernel.expose("seeds.evolution", service.evolution)
    return service


__all__ = ["Generation", "Ouroboros", "Question", "start"]
