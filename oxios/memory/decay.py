"""Ebbinghaus-style forgetting and the tier each record belongs in.

Strength is ``importance * retention``; retention falls as ``exp(-rate * days)``
since the record was last used. Every access and every bit of protection
flattens the curve (spaced repetition), and a pinned record never fades.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from oxios_hookspecs import MemoryRecord

from .kinds import decay_rate

Clock = Callable[[], float]
DAY = 86400.0
PROTECTED_AT = 0.8  # protection at or above this: never pruned
HOT_ABOVE = 0.7  # strength needed for the hot tier (pinned records are always hot)
COLD_BELOW = 0.15  # strength under which a record is archived


def system_clock() -> float:
    return time.time()


def retention(record: MemoryRecord, now: float) -> float:
    """How much of the record is still remembered, between 0 and 1."""
    if record.pinned:
        return 1.0
    days = max(0.0, now - max(record.accessed, record.created)) / DAY
    slowdown = (1.0 + math.log1p(max(0, record.access_count))) * (1.0 + 4.0 * max(0.0, record.protection))
    return math.exp(-decay_rate(record.type) * days / slowdown)


def strength(record: MemoryRecord, now: float) -> float:
    return record.importance * retention(record, now)


def is_protected(record: MemoryRecord) -> bool:
    return record.pinned or record.protection >= PROTECTED_AT


def auto_protection(record: MemoryRecord) -> float:
    """Protection earned by use: frequent access and appearing in many sessions."""
    earned = 0.05 * record.access_count + 0.15 * max(0, len(record.session_ids) - 1)
    return round(min(1.0, max(record.protection, earned)), 4)


@dataclass(frozen=True)
class TierPlan:
    """Where each record should live; ``moves`` maps id -> (old tier, new tier)."""

    moves: dict[str, tuple[str, str]]
    hot_tokens: int


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def plan_tiers(records: Iterable[MemoryRecord], now: float, hot_token_budget: int) -> TierPlan:
    """Pinned first, then the strongest records fill the hot tier up to the token budget;
    weak ones go cold; the rest are warm."""
    scored = sorted(((strength(r, now), r) for r in records), key=lambda p: (not p[1].pinned, -p[0]))
    moves: dict[str, tuple[str, str]] = {}
    hot_tokens = 0
    for score, record in scored:
        cost = estimate_tokens(record.content)
        if record.pinned or (score >= HOT_ABOVE and hot_tokens + cost <= hot_token_budget):
            target = "hot"
            hot_tokens += cost
        elif score < COLD_BELOW:
            target = "cold"
        else:
            # Archived stays archived unless it earns hot: otherwise summarised episodes
            # would bounce between warm and cold on every run.
            target = "cold" if record.tier == "cold" else "warm"
        if target != record.tier:
            moves[record.id] = (record.tier, target)
    return TierPlan(moves=moves, hot_tokens=hot_tokens)
