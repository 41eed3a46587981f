"""Proactive recall: the memory block a turn loop puts in front of the model.

Hot memories are always included (up to ``hot_token_budget``); then the
hybrid hits for the current text fill ``recall_token_budget``. The topic
tracker says when a session has moved on, so recall can be re-run then.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from oxios_hookspecs import MemoryHit, MemoryRecord

from .decay import estimate_tokens

SHIFT_BELOW = 0.3  # cosine between consecutive user texts under which the topic has changed


def _line(record: MemoryRecord) -> str:
    label = record.type.replace("_", " ")
    text = " ".join(record.content.split())
    return f"- [{label}] {text}"


def format_block(hot: list[MemoryRecord], hits: list[MemoryHit], hot_budget: int, recall_budget: int) -> str:
    lines: list[str] = []
    used = 0
    shown: set[str] = set()
    for record in hot:
        line = _line(record)
        cost = estimate_tokens(line)
        if used + cost > hot_budget:
            continue
        lines.append(line)
        used += cost
        shown.add(record.id)
    hot_lines = lines
    relevant: list[str] = []
    used = 0
    for hit in hits:
        if hit.record.id in shown:
            continue
        line = _line(hit.record)
        cost = estimate_tokens(line)
        if used + cost > recall_budget:
            break
        relevant.append(line)
        used += cost
    if not hot_lines and not relevant:
        return ""
    parts = ["<memory>"]
    if hot_lines:
        parts += ["Always remembered:", *hot_lines]
    if relevant:
        parts += ["Relevant memories:", *relevant]
    parts.append("</memory>")
    return "\n".join(parts)


class TopicTracker:
    """Remembers the last recall vector per session (bounded) to notice topic shifts."""

    def __init__(self, capacity: int = 1000) -> None:
        self.last: OrderedDict[str, np.ndarray] = OrderedDict()
        self.capacity = capacity

    def shifted(self, session_id: str, vector: np.ndarray) -> bool:
        previous = self.last.get(session_id)
        self.last[session_id] = vector
        self.last.move_to_end(session_id)
        while len(self.last) > self.capacity:
            self.last.popitem(last=False)
        if previous is None:
            return True
        if not np.any(vector) or not np.any(previous):
            return False
        return float(vector @ previous) < SHIFT_BELOW
