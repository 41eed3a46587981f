"""The interview: how clear is the task, what to ask, what to assume."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import msgspec

from .llm import Meter, ask_json

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


def _tidy(question: Question) -> Question | None:
    """A question a person can answer: a choice has options, yes/no has none of its own, text is non-empty."""
    text = question.text.strip()
    if not text:
        return None
    options = [o.strip() for o in question.options if o.strip()]
    options = list(dict.fromkeys(options))  # unique, in order
    kind = question.kind
    if kind in ("single", "multi") and len(options) < 2:
        kind, options = "free", []  # a choice of fewer than two is no choice: ask it as free text
    if kind in ("yes_no", "free"):
        options = []
    return Question(text=text, kind=kind, options=options)


def _validate(data: Any) -> Clarity:
    clarity = msgspec.convert(data, Clarity, strict=False)
    for name in ("goal", "constraints", "criteria"):
        value = getattr(clarity, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    questions = [q for q in map(_tidy, clarity.questions) if q is not None]
    assumptions = [a.strip() for a in clarity.assumptions if a.strip()]
    return msgspec.structs.replace(clarity, questions=questions[:MAX_QUESTIONS], assumptions=assumptions)


async def assess(
    kernel: Any, request: str, answers: list[dict[str, str]], *, model: str = "", meter: Meter | None = None
) -> Clarity:
    prompt = f"Task request:\n{request}"
    if answers:
        prompt += "\n\nAnswers the user already gave:\n" + "\n".join(f"Q: {a['question']}\nA: {a['answer']}" for a in answers)
    return await ask_json(kernel, SYSTEM, prompt, validate=_validate, model=model, meter=meter, phase="Interview")


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


def answer_in_terminal(questions: list[Question], ask: Callable[[str], str], say: Callable[[str], None]) -> str:
    """Ask each question on a terminal, one prompt per question, and return the answers as one message.

    ``ask(prompt)`` reads a line (raises EOFError at the end of input); ``say`` prints.
    A choice is answered by number or by text; an empty line skips the question
    (the protocol then assumes). The end of input skips the rest.
    """
    say("Before I start, a few questions (Enter skips one; I will assume):")
    lines: list[str] = []
    for i, q in enumerate(questions, 1):
        say(f"{i}. {q.text}")
        for n, option in enumerate(q.options, 1):
            say(f"   {n}) {option}")
        hint = {"single": "number or text", "multi": "numbers or texts, comma-separated", "yes_no": "y/n", "free": ""}[q.kind]
        answer: str | None = None
        while answer is None:
            try:
                raw = ask(f"   > ({hint}) " if hint else "   > ").strip()
            except EOFError:
                return "\n".join(lines) or "(no answers)"
            answer, problem = _parse_answer(q, raw)
            if problem:
                say(f"   {problem}")
        lines.append(f"{i}. {q.text} -> {answer or '(skipped: assume)'}")
    return "\n".join(lines)


def _parse_answer(question: Question, raw: str) -> tuple[str | None, str]:
    """(answer, "") when ``raw`` answers ``question`` (empty: skipped), else (None, why not)."""
    if not raw:
        return "", ""
    if question.kind == "yes_no":
        word = raw.lower()
        if word in ("y", "yes"):
            return "yes", ""
        if word in ("n", "no"):
            return "no", ""
        return None, "answer y or n (Enter skips)"
    if question.kind in ("single", "multi"):
        parts = [p.strip() for p in raw.split(",")] if question.kind == "multi" else [raw]
        picked = []
        for part in parts:
            if part.isdigit():
                if not 1 <= int(part) <= len(question.options):
                    return None, f"pick a number from 1 to {len(question.options)} (Enter skips)"
                picked.append(question.options[int(part) - 1])
            elif part:
                picked.append(part)  # an answer of their own is fine: they know better than the options
        return ", ".join(picked), ""
    return raw, ""
