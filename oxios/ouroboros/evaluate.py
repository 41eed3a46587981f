"""Evaluation: mechanical checks first, then an LLM judge with a rubric for the rest."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Literal

import msgspec

from oxios_hookspecs import Action, ActionContext

from ..agent.processes import run_command
from ..security.exec_rules import clamp_timeout, resolve_binary, scrub_env
from .llm import JsonReplyError, Meter, ask_json, extract_json
from .seed import Check, Criterion, Seed

log = logging.getLogger(__name__)

# When the judge cannot be understood even after a retry, assume little.
FALLBACK_SCORE = 0.3
UNEVIDENCED_CAP = 0.5
# A criterion passes at "core done" (0.7) or better; "partial" is 0.5 to 0.7.
PASS_SCORE = 0.7
PARTIAL_SCORE = 0.5
MAX_CHECKED_BYTES = 5_000_000

JUDGE_SYSTEM = """You are a strict evaluator. Judge an agent's work against each acceptance criterion.
Rubric for each criterion's score: complete 0.9-1.0; core done 0.7-0.8; partial 0.5-0.6; failed below 0.5.
A claim without evidence (a command output, a file's content, a tool result) scores at most 0.5.
Reply with only JSON: {"criteria": [{"id": "...", "verdict": "pass|partial|fail", "score": 0.0,
"evidence": "...", "note": "..."}], "score": 0.0}"""


Verdict = Literal["pass", "partial", "fail"]


def verdict_for(score: float) -> Verdict:
    return "pass" if score >= PASS_SCORE else "partial" if score >= PARTIAL_SCORE else "fail"


class CriterionResult(msgspec.Struct, kw_only=True):
    id: str
    passed: bool | None = None  # None: not mechanically checked
    score: float | None = None
    verdict: Verdict | None = None  # from the final score, by the rubric
    note: str = ""
    evidence: str = ""
    mechanical: bool = False

    @property
    def succeeded(self) -> bool:
        return self.passed is not False and self.score is not None and self.score >= PASS_SCORE


class Evaluation(msgspec.Struct, kw_only=True):
    seed_id: str
    passed: bool
    mechanical_pass: bool
    score: float
    criteria: list[CriterionResult] = []
    judge: Literal["none", "llm", "fallback"] = "none"
    schema_error: str | None = None

    def failures(self) -> list[CriterionResult]:
        return [c for c in self.criteria if not c.succeeded]


async def run_check(kernel: Any, check: Check, context: ActionContext) -> tuple[bool, str]:
    """Run one mechanical check under the same policy as the agent's own tools.

    Checks run unattended: an action the policy would ask a human about (an
    interpreter such as ``python3 -c``) is allowed only by a standing approval
    grant and otherwise fails the criterion, with the policy's reason as its note.
    """
    problem = check.problem()
    if problem:
        return False, f"the check is unusable: {problem}"
    workspace = Path(kernel.paths.workspace)
    if check.kind == "command":
        shown = f"`{' '.join(check.argv)}`"
        auth = await kernel.authorize(Action(kind="exec", argv=check.argv, mode="structured", cwd=str(workspace)), context)
        if not auth.allowed:
            return False, f"check {shown} was not run: the exec policy refused it: {auth.reason}"
        env = scrub_env(kernel.config.exec.env_passthrough)
        binary = resolve_binary(check.argv[0], env)
        if binary is None:
            return False, f"check command {check.argv[0]} was not found on PATH"
        result = await run_command(
            argv=[binary, *check.argv[1:]],
            cwd=str(workspace),
            env=env,
            timeout=clamp_timeout(check.timeout_secs, kernel.config),
            max_output_bytes=4000,
            agent_id=context.agent_id,
        )
        tail = result.output.strip()[-400:]
        if result.timed_out:
            return False, f"{shown} timed out"
        return result.exit_code == 0, f"{shown} exited {result.exit_code}" + (f": {tail}" if tail else "")
    target = workspace / check.path
    auth = await kernel.authorize(Action(kind="path", path=str(target), access="read"), context)
    if not auth.allowed:
        return False, f"cannot read {check.path}: {auth.reason}"
    return await asyncio.to_thread(_check_file, workspace, check)


def _check_file(workspace: Path, check: Check) -> tuple[bool, str]:
    target = workspace / check.path
    if not target.resolve().is_relative_to(workspace.resolve()):  # a symlink out of the workspace
        return False, f"{check.path} leads outside the workspace"
    if not target.is_file():
        return (not check.exists), f"{check.path} does not exist"
    if not check.exists:
        return False, f"{check.path} exists but should not"
    with target.open("rb") as fh:
        raw = fh.read(MAX_CHECKED_BYTES + 1)
    if len(raw) > MAX_CHECKED_BYTES:
        return False, f"{check.path} is larger than {MAX_CHECKED_BYTES} bytes, too large to check"
    content = raw.decode(errors="replace")
    if check.equals is not None and content.strip() != check.equals.strip():
        return False, f"{check.path} contains {content.strip()[:200]!r}, expected {check.equals.strip()[:200]!r}"
    if check.contains is not None and check.contains not in content:
        return False, f"{check.path} does not contain {check.contains!r}"
    return True, f"{check.path} is as expected"


def check_schema(schema: dict[str, Any] | None, response: str) -> str | None:
    if not schema:
        return None
    import jsonschema

    try:
        value = extract_json(response)
    except ValueError as err:
        return f"the answer is not JSON: {err}"
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as err:
        return f"the answer does not match output_schema: {err.message}"
    return None


def _judge_validator(ids: set[str]) -> Any:
    def validate(data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("criteria"), list):
            raise ValueError('expected {"criteria": [...], "score": ...}')
        out = {}
        for item in data["criteria"]:
            score = float(item["score"])
            if not 0 <= score <= 1:
                raise ValueError(f"score {score} is not between 0 and 1")
            out[str(item["id"])] = {
                "score": score,
                "evidence": str(item.get("evidence") or ""),
                "note": str(item.get("note") or ""),
            }
        missing = ids - set(out)
        if missing:
            raise ValueError(f"no verdict for criteria {sorted(missing)}")
        return out

    return validate


async def evaluate(
    kernel: Any,
    seed: Seed,
    response: str,
    transcript: list[dict[str, Any]],
    context: ActionContext,
    *,
    min_score: float,
    model: str = "",
    meter: Meter | None = None,
) -> Evaluation:
    """Mechanical checks, then the judge; raises BudgetExceeded when the run's account cannot pay the judge."""
    results: dict[str, CriterionResult] = {}
    for criterion in seed.acceptance_criteria:
        if criterion.check is None:
            results[criterion.id] = CriterionResult(id=criterion.id)
            continue
        ok, note = await run_check(kernel, criterion.check, context)
        results[criterion.id] = CriterionResult(
            id=criterion.id, passed=ok, score=1.0 if ok else 0.0, note=note, evidence=note, mechanical=True
        )
    schema_error = check_schema(seed.output_schema, response)
    mechanical_pass = all(r.passed is not False for r in results.values()) and schema_error is None
    to_judge = [c for c in seed.acceptance_criteria if results[c.id].passed is None or not mechanical_pass]
    judge: Literal["none", "llm", "fallback"] = "none"
    if to_judge:
        judged = await _judge(kernel, seed, to_judge, results, response, transcript, model=model, meter=meter)
        judge = "fallback" if judged is None else "llm"
        for criterion in to_judge:
            result = results[criterion.id]
            if judged is None:
                if not result.mechanical:
                    result.score, result.note = FALLBACK_SCORE, "the judge's reply could not be understood"
                continue
            verdict = judged[criterion.id]
            score = verdict["score"]
            if result.mechanical:
                # The check's outcome is the evidence; the judge never overrules a failed check,
                # and the check's own note (an exit code, a policy refusal) stays first.
                score = min(score, result.score or 0.0)
                result.note = f"{result.note}; judge: {verdict['note']}" if verdict["note"] else result.note
            else:
                result.note = verdict["note"] or result.note
                if not verdict["evidence"].strip() and score > UNEVIDENCED_CAP:
                    score = UNEVIDENCED_CAP  # a claim without evidence is capped
                    result.note = f"{result.note} (capped at {UNEVIDENCED_CAP}: no evidence)".strip()
            result.score, result.evidence = score, verdict["evidence"] or result.evidence
    for result in results.values():
        if result.score is not None:
            result.verdict = verdict_for(result.score)
    scores = [r.score for r in results.values() if r.score is not None]
    score = round(sum(scores) / len(scores), 4) if scores else (1.0 if mechanical_pass else 0.0)
    return Evaluation(
        seed_id=seed.id,
        passed=mechanical_pass and score >= min_score,
        mechanical_pass=mechanical_pass,
        score=score,
        criteria=list(results.values()),
        judge=judge,
        schema_error=schema_error,
    )


async def _judge(
    kernel: Any,
    seed: Seed,
    criteria: list[Criterion],
    results: dict[str, CriterionResult],
    response: str,
    transcript: list[dict[str, Any]],
    *,
    model: str,
    meter: Meter | None,
) -> dict[str, Any] | None:
    lines = [f"Goal: {seed.goal}", "Criteria to judge:"]
    for c in criteria:
        known = results[c.id]
        lines.append(f"- [{c.id}] {c.description}" + (f" (mechanical check: {known.note})" if known.mechanical else ""))
    lines += [
        "",
        "Tools the agent used: " + (json.dumps(transcript)[:3000] if transcript else "none"),
        "",
        "The agent's final answer:",
        response[:8000],
    ]
    try:
        return await ask_json(
            kernel,
            JUDGE_SYSTEM,
            "\n".join(lines),
            validate=_judge_validator({c.id for c in criteria}),
            model=model,
            meter=meter,
            phase="Evaluate",
        )
    except JsonReplyError as err:
        log.warning("ouroboros: judge reply unusable after a retry (%s); using the fallback score", err)
        return None
