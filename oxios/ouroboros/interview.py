"""The interview: how clear is the task, what to ask, what to assume."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from oxios_hookspecs import Usage

from .llm import ask_json

MAX_QUESTIONS = 3

SYSTEM = """You assess how well a task request is specified before an AI agent executes it.
Score each dimension from 0 to 1: goal (is the outcome clear?), constraints (are limits, tools, formats,
locations clear?), criteria (can success be checked?). When something is unclear, propose at most 3
concrete questions, each with a kind: "single" (pick one of options), "multi" (pick several), "yes_no",
or "free"; and list the assumptions you would make if nobody answers.
Reply with only JSON: {"goal": 0.0, "constraints": 0.0, "criteria": 0.0,
"questions": [{"text": "...", "kind": "single", "options": ["..."]}], "assumptions": ["..."]}"""


class Question(msgspec.Struct, kw_only=True):
    text: str
    kind: Literal["single", "multi", "yes_no", "free"] = "free"
    options: list[str] = []


class Clarity(msgspec.Struct, kw_only=True):
    goal: float
    constraints: float
    criteria: float
    questions: list[Question] = []
    assumptions: list[str] = []

    @property
    def ambiguity(self) -> float:
        """1 - (0.4 goal + 0.3 constraints + 0.3 criteria), the seed documents' formula."""
        return round(1.0 - (0.4 * self.goal + 0.3 * self.constraints + 0.3 * self.criteria), 4)


def _validate(data: Any) -> Clarity:
    clarity = msgspec.convert(data, Clarity, strict=False)
    for name in ("goal", "constraints", "criteria"):
        value = getattr(clarity, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    return msgspec.structs.replace(clarity, questions=clarity.questions[:MAX_QUESTIONS])


async def assess(
    kernel: Any, request: str, answers: list[dict[str, str]], *, model: str = "", usage: list[Usage] | None = None
) -> Clarity:
    prompt = f"Task request:\n{request}"
    if answers:
        prompt += "\n\nAnswers the user already gave:\n" + "\n".join(f"Q: {a['question']}\nA: {a['answer']}" for a in answers)
    return await ask_json(kernel, SYSTEM, prompt, validate=_validate, model=model, usage=usage)


def format_questions(questions: list[Question]) -> str:
    """Questions as a chat message; the user answers in their next message."""
    lines = ["Before I start, a few questions (answer in one message; anything you skip I will assume):"]
    for i, q in enumerate(questions, 1):
        line = f"{i}. {q.text}"
        if q.kind == "yes_no":
            line += " (yes / no)"
        elif q.options:
            line += f" ({'pick one' if q.kind == 'single' else 'pick any'}: {', '.join(q.options)})"
        lines.append(line)
    return "\n".join(lines)
