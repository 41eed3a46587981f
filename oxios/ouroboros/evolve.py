"""Evolution: the next-generation seed, narrowed from the failures, never widened.

The model proposes; :func:`narrow` enforces. Whatever the model wrote, the
child keeps the parent's goal, every parent constraint, and every criterion
that passed exactly as it was; a failed criterion may be rewritten but not
dropped, and one that had a mechanical check keeps a check. A required
criterion (a cron job's, see :class:`~oxios.ouroboros.seed.Requirements`) is
kept exactly as it was even when it failed. New constraints and new criteria
(more requirements, a narrower scope) are welcome; the draft cannot mark its
own criteria required.
"""

from __future__ import annotations

import json

import msgspec

from .evaluate import Evaluation
from .seed import Criterion, Seed, SeedDraft

SYSTEM = """A task run did not pass its evaluation. Write the next-generation seed. Narrow the scope,
never widen it: keep the goal, keep every constraint, keep every criterion that passed unchanged, and rewrite
only what failed so the next run can succeed (clearer criteria, added constraints that prevent the failure).
A check the exec policy refused (for example an interpreter such as python3, which needs a human's approval
and is refused in an unattended evaluation) must be replaced by a check that uses an allowed command or a
file check. A criterion marked "required" was set by whoever gave the task: it stays word for word.
Reply with only JSON in the same shape as the seed you are given."""


def prompt(seed: Seed, evaluation: Evaluation, response: str) -> str:
    failures = [{"id": c.id, "score": c.score, "verdict": c.verdict, "note": c.note} for c in evaluation.failures()]
    parts = [
        f"Current seed:\n{msgspec.json.encode(seed).decode()}",
        f"Failed criteria:\n{json.dumps(failures, indent=1)}",
    ]
    if evaluation.schema_error:
        parts.append(f"Output schema problem: {evaluation.schema_error}")
    parts.append(f"The agent's answer was:\n{response[:4000]}")
    return "\n\n".join(parts)


def narrow(parent: Seed, draft: SeedDraft, evaluation: Evaluation) -> tuple[Seed, list[str]]:
    """The child seed, and what the guard had to correct in the model's draft (empty when nothing)."""
    corrections: list[str] = []
    if draft.goal.strip() != parent.goal.strip():
        corrections.append(f"kept the goal (the draft changed it to {draft.goal[:120]!r})")
    dropped = [c for c in parent.constraints if c not in draft.constraints]
    if dropped:
        corrections.append(f"restored {len(dropped)} constraint(s) the draft dropped")
    constraints = [*parent.constraints, *(c for c in draft.constraints if c not in parent.constraints)]

    failed = {c.id for c in evaluation.failures()}
    proposed = {c.id: msgspec.structs.replace(c, required=False) for c in draft.acceptance_criteria}
    criteria: list[Criterion] = []
    for old in parent.acceptance_criteria:
        new = proposed.get(old.id)
        if old.required:
            if new is None:
                corrections.append(f"restored required criterion {old.id} (a required criterion is never dropped)")
            elif new != msgspec.structs.replace(old, required=False):
                corrections.append(f"kept required criterion {old.id} word for word")
            criteria.append(old)
        elif old.id not in failed:
            if new != old:
                corrections.append(f"kept passing criterion {old.id} as it was")
            criteria.append(old)
        elif new is None:
            corrections.append(f"restored failed criterion {old.id} (a failed criterion is rewritten, not dropped)")
            criteria.append(old)
        elif old.check is not None and new.check is None:
            corrections.append(f"kept the mechanical check of criterion {old.id}")
            criteria.append(msgspec.structs.replace(new, check=old.check))
        else:
            criteria.append(new)
    known = {c.id for c in parent.acceptance_criteria}
    criteria += [c for c in proposed.values() if c.id not in known]  # added requirements narrow the scope

    if draft.output_schema != parent.output_schema and draft.output_schema is not None:
        corrections.append("kept the output_schema")
    child = Seed(
        generation=parent.generation + 1,
        parent_id=parent.id,
        goal=parent.goal,
        constraints=constraints,
        acceptance_criteria=criteria,
        ontology=draft.ontology or parent.ontology,
        original_request=parent.original_request,
        output_schema=parent.output_schema,
        session_id=parent.session_id,
    )
    return child, corrections
