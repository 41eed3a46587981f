"""Interview questions in a chat: choices as buttons, the answers sent back as one message.

The Ouroboros interview asks up to three structured questions (single choice,
multiple choice, yes/no, free text). A chat channel shows each as its own
message, with a button per choice. A pressed button records the choice; once
every question is answered by a button (a multiple-choice one by its "Done"
button) the answers go back to the agent as one message. A typed message
answers what is left (a free-text question, or anything skipped) and sends
everything. Forms live in the state store, so a daemon restart keeps them.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import msgspec

from oxios_hookspecs import new_id

DONE = "done"
MAX_OPTIONS = 20  # Discord allows 25 buttons a message; an interview never needs more than a handful
INTRO = "Before I start, a few questions. Tap an answer, or reply in one message; anything you skip I will assume."


class FormQuestion(msgspec.Struct, kw_only=True):
    text: str
    kind: Literal["single", "multi", "yes_no", "free"] = "free"
    options: list[str] = []
    chosen: list[str] = []
    settled: bool = False  # a single choice made, or a multiple choice confirmed with Done

    @property
    def choices(self) -> list[str]:
        if self.kind == "yes_no":
            return ["Yes", "No"]
        if self.kind in ("single", "multi"):
            return self.options[:MAX_OPTIONS]
        return []


class ChatForm(msgspec.Struct, kw_only=True):
    """One round of interview questions shown in one chat."""

    id: str
    chat_key: str
    session_id: str
    chat_id: str = ""
    thread_id: str = ""
    questions: list[FormQuestion] = []
    created: float = 0.0

    def has_buttons(self) -> bool:
        return any(q.choices for q in self.questions)

    def complete(self) -> bool:
        """Every question answered by a button (a free-text question needs a typed message)."""
        return all(q.settled for q in self.questions)

    def press(self, index: int, token: str) -> str:
        """Record a button press; returns what to tell the person. ValueError for a button that is not there."""
        if not 0 <= index < len(self.questions):
            raise ValueError("That question is not part of this form.")
        q = self.questions[index]
        if q.settled:
            return "Already answered."
        if q.kind == "multi" and token == DONE:
            q.settled = True
            return "Noted: " + (", ".join(q.chosen) or "none of these")
        try:
            choice = q.choices[int(token)]
        except (ValueError, IndexError):
            raise ValueError("That choice is not offered.") from None
        if q.kind == "multi":
            if choice in q.chosen:
                q.chosen.remove(choice)
                return f"Removed: {choice}"
            q.chosen.append(choice)
            return f"Added: {choice}"
        q.chosen, q.settled = [choice], True
        return f"Noted: {choice}"

    def render(self, index: int) -> tuple[str, list[tuple[str, str]]]:
        """The message text of question ``index`` and its buttons as (label, token); no buttons once answered."""
        q = self.questions[index]
        text = f"{index + 1}. {q.text}"
        if q.settled:
            return text + "\n→ " + (", ".join(q.chosen) or "none of these"), []
        if not q.choices:
            return text + "\n(answer in a message)", []
        if q.kind == "multi":
            buttons = [(("✓ " if c in q.chosen else "") + c, str(i)) for i, c in enumerate(q.choices)]
            return text + "\n(pick any, then Done)", [*buttons, ("Done", DONE)]
        return text, [(c, str(i)) for i, c in enumerate(q.choices)]

    def compose(self, typed: str = "") -> str:
        """The answers as one message for the agent; ``typed`` answers what the buttons did not."""
        typed = typed.strip()
        open_questions = [q for q in self.questions if not q.settled and not q.chosen]
        lines = ["Answers to your questions:"]
        used = False
        for i, q in enumerate(self.questions, 1):
            if q.chosen or q.settled:
                answer = ", ".join(q.chosen) or "none of these"
            elif typed and len(open_questions) == 1:
                answer, used = typed, True
            else:
                answer = "(see below)" if typed else "(skipped: assume)"
            lines.append(f"{i}. {q.text} -> {answer}")
        if typed and not used:
            lines += ["", typed]
        return "\n".join(lines)


def form_from_interview(asked: list[Any], *, chat_key: str, session_id: str, chat_id: str, thread_id: str) -> ChatForm | None:
    """A form for the interview's questions (text, kind, options), or None when none has a button to press."""
    try:
        questions = msgspec.convert([msgspec.to_builtins(q) for q in asked], list[FormQuestion], strict=False)
    except (msgspec.ValidationError, TypeError):
        return None
    form = ChatForm(
        id=new_id().replace("-", "")[:10],
        chat_key=chat_key,
        session_id=session_id,
        chat_id=chat_id,
        thread_id=thread_id,
        questions=[msgspec.structs.replace(q, chosen=[], settled=False) for q in questions],
        created=time.time(),
    )
    return form if form.has_buttons() else None


class ChatForms:
    """Open forms of one channel, in the state store (one open form per chat)."""

    def __init__(self, kernel: Any, channel: str) -> None:
        self.kernel = kernel
        self.namespace = f"chatform.{channel}"

    def open(self, form: ChatForm) -> None:
        for key, item in self.kernel.state.kv_items(self.namespace).items():
            if item.get("chat_key") == form.chat_key:
                self.kernel.state.kv_delete(self.namespace, key)
        self.save(form)

    def save(self, form: ChatForm) -> None:
        self.kernel.state.kv_set(self.namespace, form.id, form)

    def get(self, form_id: str) -> ChatForm | None:
        raw = self.kernel.state.kv_get(self.namespace, form_id)
        return msgspec.convert(raw, ChatForm) if raw is not None else None

    def for_chat(self, chat_key: str) -> ChatForm | None:
        for item in self.kernel.state.kv_items(self.namespace).values():
            if item.get("chat_key") == chat_key:
                return msgspec.convert(item, ChatForm)
        return None

    def drop(self, form_id: str) -> None:
        self.kernel.state.kv_delete(self.namespace, form_id)
