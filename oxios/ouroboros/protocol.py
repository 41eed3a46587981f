"""The protocol itself (service ``ouroboros``): route, interview, seed, execute, evaluate, evolve.

One message is one run with one budget account (``ouroboros:<message id>``,
the default limits): the protocol's own model calls are charged to it and
the executing agents share it, so a run that would pass its limit stops,
in whatever phase, with the reason.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

import msgspec

from oxios_hookspecs import IncomingMessage, Message

from ..agent.budget import BudgetExceeded
from ..gateway import ChatResult
from ..security.exec_rules import interpreter_name
from . import evolve
from .evaluate import Evaluation, evaluate
from .interview import Question, assess, format_questions
from .llm import JsonReplyError, Meter, ask_json
from .seed import Requirements, Seed, SeedStore, bind, render, validate_draft

log = logging.getLogger(__name__)

PENDING = "ouroboros.pending"

ROUTER_SYSTEM = """Classify the user's message for an AI agent operating system.
"task": asks for work to be done (create, change, fix, build, analyse, run something) with a checkable outcome.
"conversation": a question, chit-chat, or a request for information or opinion.
Reply with only JSON: {"kind": "task" | "conversation", "why": "..."}"""

SEED_SYSTEM = """Write a precise specification (a "seed") for an AI agent that will do the task with tools
(files in its workspace, allowlisted commands). Keep the scope to what was asked. Each acceptance criterion
should be checkable; add a mechanical check when one is obvious: {{"kind": "command", "argv": ["binary", "arg"]}}
(run in the workspace; exit code 0 = pass; no shell syntax) or {{"kind": "file", "path": "relative/path", "contains": "..."}}
or {{"kind": "file", "path": "...", "equals": "..."}}. Checks run unattended: a command check may use only
{commands}. An interpreter (python3 -c, python3 script.py, node ...) needs a human's approval and is refused
in the evaluation, so never use one in a check.
Reply with only JSON: {{"goal": "...", "constraints": ["..."], "acceptance_criteria": [{{"id": "c1",
"description": "...", "check": null}}], "ontology": [{{"name": "...", "description": "..."}}], "output_schema": null}}"""


def seed_system(allowed_commands: list[str]) -> str:
    """The seed prompt, naming the commands a check can actually run (interpreters left out)."""
    usable = [c for c in allowed_commands if interpreter_name(c) is None]
    return SEED_SYSTEM.format(commands=", ".join(usable) if usable else "no command (use file checks)")


Phase = Literal["Interview", "Seed", "Execute", "Evaluate", "Evolve"]

# Who makes the model call each phase pays for, as a budget stop names it.
CALLERS = {"Classify": "the routing call", "Interview": "the interview", "Seed": "the seed writer"}
CALLERS |= {"Evaluate": "the judge", "Evolve": "evolution"}


def run_account(message: IncomingMessage) -> str:
    """The budget account of the protocol run that answers ``message``."""
    return f"ouroboros:{message.id}"


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
        """("task" | "conversation" | None, the text without its prefix); a prefix is a whole word."""
        stripped = text.lstrip()
        for kind, prefixes in (("task", self.config.force_prefixes), ("conversation", self.config.skip_prefixes)):
            for prefix in prefixes:
                head, rest = stripped[: len(prefix)], stripped[len(prefix) :]
                if prefix and head.lower() == prefix.lower() and (not rest or rest[0].isspace()):
                    return kind, rest.strip()
        return None, text

    async def should_handle(self, message: IncomingMessage, session: dict[str, Any]) -> bool:
        # A caller that knows (cron, A2A ...) says so in metadata instead of a prefix in the text.
        route = (message.metadata or {}).get("route")
        if route in ("protocol", "chat"):
            return route == "protocol"
        forced, _ = self._prefix(message.content)
        if forced is not None:
            return forced == "task"
        if self.kernel.state.kv_get(PENDING, session["id"]) is not None:
            return True  # the answers to the interview's questions
        if self.config.default_mode != "auto":
            return self.config.default_mode == "protocol"
        meter = Meter(self.kernel, run_account(message), session["id"])
        kind = await self.classify(message.content, meter=meter)
        if kind != "task":
            meter.forget()  # the turn loop answers it, under an account of its own
        return kind == "task"

    async def classify(self, text: str, *, meter: Meter | None = None) -> str:
        """Exactly one LLM call; anything unusable counts as conversation (the cheap, safe path).

        A call the budget refuses counts as conversation too: the turn loop then stops with the budget's reason.
        """

        def validate(data: Any) -> str:
            kind = data.get("kind") if isinstance(data, dict) else None
            if kind not in ("task", "conversation"):
                raise ValueError('kind must be "task" or "conversation"')
            return kind

        try:
            return await ask_json(
                self.kernel, ROUTER_SYSTEM, text, validate=validate, max_tokens=200, attempts=1, meter=meter, phase="Classify"
            )
        except JsonReplyError:
            return "conversation"
        except BudgetExceeded as err:
            log.info("ouroboros: no budget to classify a message (%s); answering it as conversation", err)
            return "conversation"

    # -- the protocol -------------------------------------------------------------

    async def handle(self, message: IncomingMessage, session: dict[str, Any], on_token: Any = None) -> ChatResult:
        meter = Meter(self.kernel, run_account(message), session["id"])
        try:
            return await self._handle(message, session, on_token, meter)
        finally:
            meter.forget()

    async def _handle(self, message: IncomingMessage, session: dict[str, Any], on_token: Any, meter: Meter) -> ChatResult:
        started = time.monotonic()
        forced, text = self._prefix(message.content)
        pending = None if forced == "task" else self.kernel.state.kv_get(PENDING, session["id"])  # "#spec" starts over
        if pending is not None:
            request, round_no = pending["request"], pending["round"] + 1
            asked = "\n".join(_question_text(q) for q in pending["questions"])
            answers = [*pending["answers"], {"question": asked, "answer": message.content}]
        else:
            request, answers, round_no = (text if forced else message.content).strip(), [], 1
        if not request:
            problem = "there is no task after the prefix: write what to do, e.g. `#spec create hello.txt containing hi`"
            return self._result(problem, session, "Interview", None, None, None, started, error="empty task")
        meta = message.metadata or {}
        try:  # a caller's binding constraints and criteria (a cron job's); the answers to questions carry none
            required = Requirements.from_metadata(meta) or msgspec.convert((pending or {}).get("required", {}), Requirements)
        except (ValueError, msgspec.ValidationError) as err:
            return self._result(str(err), session, "Interview", None, None, None, started, error=str(err))
        persona = self._persona(message, session)
        model = str(meta.get("model") or (persona or {}).get("model") or "")
        # A channel that can put questions to a person though its run is headless says so with ask_questions.
        can_ask = (message.interactive or bool(meta.get("ask_questions"))) and not meta.get("no_interview")

        self._phase_started("Interview", session)
        try:
            clarity = await assess(self.kernel, request, answers, model=model, meter=meter)
        except JsonReplyError as err:
            log.warning("ouroboros: interview reply unusable (%s); proceeding without scores", err)
            clarity = None
        except BudgetExceeded as err:
            return self._budget_stop(err, "Interview", session, started)
        ambiguous = clarity is not None and clarity.ambiguity > self.config.ambiguity_threshold
        if ambiguous and can_ask and clarity.questions and round_no <= self.config.max_interview_rounds:
            questions = [msgspec.to_builtins(q) for q in clarity.questions]
            waiting = {"request": request, "answers": answers, "round": round_no, "questions": questions}
            if required:
                waiting["required"] = msgspec.to_builtins(required)
            self.kernel.state.kv_set(PENDING, session["id"], waiting)
            self._phase_completed(
                "Interview", session, ambiguity=clarity.ambiguity, asked=len(questions), round=round_no, questions=questions
            )
            return self._result(format_questions(clarity.questions), session, "Interview", None, None, None, started)
        self.kernel.state.kv_delete(PENDING, session["id"])
        assumptions = clarity.assumptions if ambiguous and clarity is not None else []
        self._phase_completed(
            "Interview", session, ambiguity=clarity.ambiguity if clarity else None, assumptions=len(assumptions)
        )

        self._phase_started("Seed", session)
        try:
            seed = await self._new_seed(request, answers, assumptions, required, session, model, meter)
        except JsonReplyError as err:
            return self._result(
                f"I could not turn this into a specification: {err}", session, "Seed", None, False, None, started, error=str(err)
            )
        except BudgetExceeded as err:
            return self._budget_stop(err, "Seed", session, started)
        self._phase_completed("Seed", session, seed_id=seed.id)

        best: Generation | None = None
        runs = 0
        phase: Phase = "Execute"
        stopped_early = ""
        budget_error: str | None = None  # the run's budget stopped it after a generation was judged
        for generation in range(self.config.max_generations):
            if generation:
                phase = "Evolve"
            run = await self._execute(seed, request, session, message, persona, model, on_token, meter.account_id)
            if not run.evaluable:
                why = f"{run.status}: {run.error}" if run.error else run.status
                if best is None:
                    # The agent could not work (provider down, killed, budget gone): stop here and say why.
                    return self._result(run.response, session, "Execute", run.seed.id, False, run.agent_id, started, error=why)
                stopped_early = f"generation {run.seed.generation} could not run ({why})"
                if run.status == "stopped":  # its turn loop found the run's budget used up
                    budget_error = why
                break
            runs += 1
            try:
                evaluation = await self._evaluate(run, session, model, meter)
            except BudgetExceeded as err:
                if best is None:
                    return self._budget_stop(err, "Evaluate", session, started, run=run)
                budget_error = self._budget_reason(err, "Evaluate")
                self._phase_completed("Evaluate", session, seed_id=run.seed.id, error=budget_error)
                stopped_early = f"generation {run.seed.generation} was not judged ({budget_error})"
                break
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
                seed, corrections = await self._evolve(seed, evaluation, run.response, model, meter)
            except JsonReplyError as err:
                log.warning("ouroboros: evolution reply unusable (%s); stopping with the best generation", err)
                stopped_early = f"evolution failed ({err})"
                break
            except BudgetExceeded as err:
                budget_error = self._budget_reason(err, "Evolve")
                self._phase_completed("Evolve", session, seed_id=seed.id, error=budget_error)
                stopped_early = f"no generation {seed.generation + 1} ({budget_error})"
                break
            self._phase_completed("Evolve", session, seed_id=seed.id, parent_id=seed.parent_id, guard=corrections)
            if on_token is not None:
                await on_token(f"\n\n[evaluation failed; evolving to generation {seed.generation}]\n\n")
        assert best is not None and best.evaluation is not None
        ev = best.evaluation
        footer = (
            f"\n\n[seed {best.seed.id[:8]}, generation {best.seed.generation}"
            f"{f' (the best of {runs} generations)' if runs > 1 else ''}: evaluation "
            f"{'passed' if ev.passed else 'failed'} (score {ev.score:.2f}"
            f"{', mechanical checks passed' if ev.mechanical_pass else ', mechanical checks failed'})"
            f"{'; ' + stopped_early if stopped_early else ''}]"
        )
        if on_token is not None:  # a streaming channel printed the generations as they ran: it needs the verdict too
            await on_token(footer)
        return self._result(
            best.response + footer,
            session,
            phase if phase == "Evolve" else "Evaluate",
            best.seed.id,
            ev.passed,
            best.agent_id,
            started,
            error=budget_error,
        )

    def _budget_reason(self, err: BudgetExceeded, phase: str) -> str:
        return f"{CALLERS[phase]} was not run, the run's budget is used up: {err}"

    def _budget_stop(
        self, err: BudgetExceeded, phase: Phase, session: dict[str, Any], started: float, *, run: Generation | None = None
    ) -> ChatResult:
        """The run's budget cannot pay for this phase's call: stop here and say so."""
        reason = self._budget_reason(err, phase)
        log.info("ouroboros: %s", reason)
        seed_id = run.seed.id if run is not None else None
        self._phase_completed(phase, session, seed_id=seed_id, error=reason)
        response = f"{run.response}\n\n[{reason}]" if run is not None and run.response else f"Stopped: {reason}."
        return self._result(response, session, phase, seed_id, None, run.agent_id if run else None, started, error=reason)

    async def _evaluate(self, run: Generation, session: dict[str, Any], model: str, meter: Meter) -> Evaluation:
        seed = run.seed
        self._phase_started("Evaluate", session, seed_id=seed.id)
        # Checks run unattended (nobody answers an approval mid-evaluation), in the run's agent and session.
        context = self.kernel.context(agent_id=run.agent_id or "", session_id=session["id"], interactive=False)
        transcript = run_transcript(self.kernel, run)
        evaluation = await evaluate(
            self.kernel,
            seed,
            run.response,
            transcript,
            context,
            min_score=self.config.min_score,
            model=model,
            meter=meter,
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
                "transcript": transcript,
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
        return evaluation

    async def _new_seed(
        self,
        request: str,
        answers: list[dict[str, str]],
        assumptions: list[str],
        required: Requirements,
        session: dict[str, Any],
        model: str,
        meter: Meter,
    ) -> Seed:
        prompt = f"Task request:\n{request}"
        if answers:
            prompt += "\n\nClarifications from the user:\n" + "\n".join(f"Q: {a['question']}\nA: {a['answer']}" for a in answers)
        if assumptions:
            prompt += "\n\nAssumptions to write into the constraints:\n" + "\n".join(f"- {a}" for a in assumptions)
        if required:
            prompt += "\n\n" + _required_text(required)
        system = seed_system(self.kernel.config.exec.allowed_commands)

        def validate(data: Any) -> Any:
            return validate_draft(data, needs_criteria=not required.acceptance_criteria)

        draft = await ask_json(self.kernel, system, prompt, validate=validate, model=model, meter=meter, phase="Seed")
        # Like evolve.narrow(): the required items go in by code, whatever the writer wrote.
        draft, added = bind(draft, required)
        if added:
            log.info("ouroboros: bound the caller's requirements into the seed: %s", "; ".join(added))
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
        self.kernel.publish("seed.created", seed_id=seed.id, generation=0, parent_id=None, session_id=session["id"], guard=added)
        return seed

    async def _evolve(
        self, seed: Seed, evaluation: Evaluation, response: str, model: str, meter: Meter
    ) -> tuple[Seed, list[str]]:
        prompt = evolve.prompt(seed, evaluation, response)
        draft = await ask_json(
            self.kernel, evolve.SYSTEM, prompt, validate=validate_draft, model=model, meter=meter, phase="Evolve"
        )
        child, corrections = evolve.narrow(seed, draft, evaluation)  # the guard, not the prompt, keeps the scope
        if corrections:
            log.info("ouroboros: evolution guard corrected seed %s: %s", child.id, "; ".join(corrections))
        self.seeds.save(child)
        self.kernel.publish(
            "seed.created",
            seed_id=child.id,
            generation=child.generation,
            parent_id=seed.id,
            session_id=seed.session_id,
            guard=corrections,
        )
        return child, corrections

    def _persona(self, message: IncomingMessage, session: dict[str, Any]) -> dict[str, Any] | None:
        personas = self.kernel.services.get("personas")
        return personas.resolve(message.persona or session.get("persona")) if personas is not None else None

    async def _execute(
        self,
        seed: Seed,
        request: str,
        session: dict[str, Any],
        message: IncomingMessage,
        persona: dict[str, Any] | None,
        model: str,
        on_token: Any,
        account: str,
    ) -> Generation:
        self._phase_started("Execute", session, seed_id=seed.id)
        agents = self.kernel.service("agents")
        history = self.kernel.service("sessions").history(session["id"])
        if history and history[-1].role == "user":
            history = history[:-1]  # the protocol states the task itself, below
        messages = [*history, Message.user(f"{request}\n\n(Work to seed {seed.id}.)")]
        meta = message.metadata or {}
        agent_id = agents.fork(
            seed.goal,
            session_id=session["id"],
            messages=messages,
            system=agents.system_prompt(persona, extra=render(seed)),
            model=model,
            persona=(persona or {}).get("name"),
            role=meta.get("role"),  # a caller's role (an API token's) holds in the protocol too
            priority=int(meta.get("priority", 0)),
            interactive=message.interactive,
            on_token=on_token,
        )
        budget = self.kernel.services.get("budget")
        if budget is not None:
            budget.share(agent_id, account)  # the agent works on the run's budget, not a fresh one
        await agents.exec(agent_id)
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
        """The interview waiting for the session's next message: request, round, questions (text, kind, options)."""
        return self.kernel.state.kv_get(PENDING, session_id)

    def pending_questions(self, session_id: str) -> list[Question]:
        """The questions a channel should put to the user now (empty when nothing is pending)."""
        pending = self.pending_interview(session_id)
        if pending is None:
            return []
        return [Question(text=q) if isinstance(q, str) else msgspec.convert(q, Question) for q in pending["questions"]]

    def status(self) -> dict[str, Any]:
        return {"healthy": True, "seeds": self.seeds.count(), "mode": self.config.default_mode}


def _required_text(required: Requirements) -> str:
    """How the seed writer learns what Oxios will add to its draft anyway."""
    lines = ["Binding requirements (Oxios adds these to the seed word for word; do not repeat them):"]
    lines += [f"- constraint: {c}" for c in required.constraints]
    lines += [f"- acceptance criterion: {c}" for c in required.acceptance_criteria]
    lines.append("You may add criteria with mechanical checks that verify them.")
    return "\n".join(lines)


def _question_text(question: Any) -> str:
    """A pending question as text (older pending records hold plain strings)."""
    return question if isinstance(question, str) else str(question.get("text", ""))


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
