"""Memory types, auto-classification, Ebbinghaus decay and tier moves, driven by a fake clock."""

from __future__ import annotations

import pytest
from memory_fixtures import DAY, T0

from oxios.memory import decay
from oxios.memory.kinds import KINDS, base_importance, classify, normalize_type
from oxios_hookspecs import MemoryRecord


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("My name is Ada and I work as a data engineer", "user_profile"),
        ("I prefer dark mode and short answers", "preference"),
        ("We decided to use Postgres instead of MySQL for billing", "decision"),
        ("How to rotate the TLS certificate: run `certbot renew` then reload nginx", "skill"),
        ("Yesterday the deploy failed because the disk was full", "episode"),
        ("Session summary: we refactored the parser and added tests", "session"),
        ("user: hi\nassistant: hello, how can I help?", "conversation"),
        ("The staging server runs Ubuntu 24.04", "fact"),
        ("A monad is defined as a monoid in the category of endofunctors, which " + "explains a lot " * 30, "knowledge"),
    ],
)
def test_classification_from_content(text: str, kind: str) -> None:
    assert classify(text) == kind


def test_types_have_importance_and_decay_and_aliases_resolve() -> None:
    assert len(KINDS) == 9
    assert base_importance("user_profile") > base_importance("fact") > base_importance("conversation")
    assert KINDS["user_profile"].decay_per_day < KINDS["episode"].decay_per_day < KINDS["conversation"].decay_per_day
    assert normalize_type("profile") == "user_profile"
    assert normalize_type("Preference") == "preference"
    assert normalize_type("auto") is None and normalize_type("") is None
    with pytest.raises(ValueError, match="unknown memory type"):
        normalize_type("gossip")


def rec(kind: str = "fact", **kw) -> MemoryRecord:
    return MemoryRecord(
        content=kw.pop("content", "x" * 40),
        type=kind,
        importance=kw.pop("importance", base_importance(kind)),
        created=T0,
        accessed=T0,
        **kw,
    )


def test_decay_follows_the_forgetting_curve() -> None:
    r = rec("episode")
    assert decay.retention(r, T0) == pytest.approx(1.0)
    month = decay.retention(r, T0 + 30 * DAY)
    year = decay.retention(r, T0 + 365 * DAY)
    assert 0 < year < month < 1
    # A user profile fades far slower than an episode.
    assert decay.retention(rec("user_profile"), T0 + 365 * DAY) > 0.4 > decay.retention(rec("episode"), T0 + 365 * DAY)


def test_access_and_protection_slow_decay_and_pins_never_fade() -> None:
    later = T0 + 60 * DAY
    plain = decay.retention(rec("fact"), later)
    used = decay.retention(rec("fact", access_count=10), later)
    protected = decay.retention(rec("fact", protection=0.5), later)
    assert plain < used and plain < protected
    assert decay.retention(rec("conversation", pinned=True), T0 + 3650 * DAY) == 1.0
    assert decay.is_protected(rec("fact", protection=0.9)) and not decay.is_protected(rec("fact", protection=0.2))


def test_auto_protection_grows_with_use_and_sessions() -> None:
    assert decay.auto_protection(rec("fact")) == 0.0
    assert decay.auto_protection(rec("fact", access_count=4)) == pytest.approx(0.2)
    assert decay.auto_protection(rec("fact", session_ids=["a", "b", "c"])) == pytest.approx(0.3)
    assert decay.auto_protection(rec("fact", access_count=100)) == 1.0


def test_tier_moves_over_time() -> None:
    profile = rec("user_profile", tier="warm")
    episode = rec("episode", tier="warm")
    pinned = rec("conversation", tier="warm", pinned=True)
    plan = decay.plan_tiers([profile, episode, pinned], T0, hot_token_budget=3000)
    assert plan.moves[profile.id] == ("warm", "hot")
    assert plan.moves[pinned.id] == ("warm", "hot")
    assert episode.id not in plan.moves  # warm stays warm while fresh

    later = T0 + 120 * DAY
    episode.tier = "warm"
    plan = decay.plan_tiers([profile, episode, pinned], later, hot_token_budget=3000)
    assert plan.moves[episode.id] == ("warm", "cold")
    assert plan.moves[pinned.id] == ("warm", "hot")


def test_hot_tier_respects_the_token_budget() -> None:
    records = [rec("preference", content="p" * 400, tier="warm") for _ in range(5)]  # 100 tokens each
    plan = decay.plan_tiers(records, T0, hot_token_budget=250)
    assert sum(1 for _, new in plan.moves.values() if new == "hot") == 2
    assert plan.hot_tokens <= 250


def test_archived_records_stay_cold_unless_they_earn_hot() -> None:
    archived = rec("episode", tier="cold")  # fresh, strong enough for warm
    assert decay.plan_tiers([archived], T0, 3000).moves == {}
    pinned = rec("episode", tier="cold", pinned=True)
    assert decay.plan_tiers([pinned], T0, 3000).moves[pinned.id] == ("cold", "hot")
