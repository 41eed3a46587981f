"""Memory types: base importance, decay rate, and auto-classification from content.

Each type has a base importance (how much it matters when new) and a decay
rate (per day, the Ebbinghaus forgetting rate before access and protection
slow it down). A user's profile fades slowly; yesterday's chatter fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class MemoryKind:
    name: str
    importance: float
    decay_per_day: float
    description: str


KINDS: dict[str, MemoryKind] = {
    k.name: k
    for k in (
        MemoryKind("user_profile", 0.9, 0.002, "who the user is: name, role, location, background"),
        MemoryKind("preference", 0.8, 0.005, "what the user likes, dislikes or wants done a certain way"),
        MemoryKind("decision", 0.7, 0.01, "a choice that was made and should be respected"),
        MemoryKind("skill", 0.7, 0.005, "how to do something: steps, commands, procedures"),
        MemoryKind("knowledge", 0.6, 0.01, "explanations and reference material"),
        MemoryKind("fact", 0.5, 0.02, "a single statement that is true"),
        MemoryKind("episode", 0.4, 0.05, "something that happened"),
        MemoryKind("session", 0.3, 0.1, "a summary of a session"),
        MemoryKind("conversation", 0.2, 0.15, "a transcript excerpt"),
    )
}

TYPE_ALIASES = {"profile": "user_profile", "user": "user_profile", "user profile": "user_profile", "pref": "preference"}

# Ordered: the first type whose pattern matches wins, so specific beats general.
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("conversation", re.compile(r"^\s*(user|assistant|human|ai)\s*:", re.I | re.M)),
    ("session", re.compile(r"\b(session summary|in this session|this session we)\b", re.I)),
    (
        "user_profile",
        re.compile(
            r"\b(my name is|i am a|i'm a|i work (as|at|for)|i live in|i'm from|i am from|my (job|role|title) is|"
            r"user'?s name is|the user is a|user works)\b",
            re.I,
        ),
    ),
    (
        "decision",
        re.compile(
            r"\b(we decided|i decided|decided to|decision|we chose|we will go with|going with|agreed to|settled on)\b", re.I
        ),
    ),
    (
        "preference",
        re.compile(
            r"\b(i (really )?(prefer|like|love|hate|dislike|want|don'?t want|don'?t like)|prefers?|"
            r"favou?rite|rather than|instead of|always use|never use|please (always|never))\b",
            re.I,
        ),
    ),
    (
        "skill",
        re.compile(r"(\bhow to\b|\bsteps?:|\bstep \d|\bto [a-z]+ .{0,40}, run\b|\brun `|\bprocedure\b|^\s*\d+\.\s)", re.I | re.M),
    ),
    (
        "episode",
        re.compile(
            r"\b(yesterday|today|this morning|last (week|night|month)|on (monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
            r"happened|we (met|shipped|released|fixed|deployed|discussed)|incident|outage)\b",
            re.I,
        ),
    ),
]


def normalize_type(value: str | None) -> str | None:
    """The canonical type name, ``None`` for "classify it", or ``ValueError``."""
    if value is None or value.strip().lower() in ("", "auto"):
        return None
    key = value.strip().lower().replace("-", "_")
    key = TYPE_ALIASES.get(key, key)
    if key not in KINDS:
        raise ValueError(f"unknown memory type {value!r}; expected one of: {', '.join(KINDS)}")
    return key


def classify(content: str) -> str:
    """Infer the memory type from content patterns; long explanations are knowledge."""
    for name, pattern in _PATTERNS:
        if pattern.search(content):
            return name
    if len(content) > 400 or re.search(r"\b(is defined as|refers to|means that|consists of)\b", content, re.I):
        return "knowledge"
    return "fact"


def base_importance(type_name: str) -> float:
    kind = KINDS.get(type_name)
    return kind.importance if kind else 0.5


def decay_rate(type_name: str) -> float:
    kind = KINDS.get(type_name)
    return kind.decay_per_day if kind else 0.02
