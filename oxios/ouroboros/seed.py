"""The seed: an immutable, versioned specification, kept in state and as workspace/seeds/<id>.json."""

from __future__ import annotations

import json
import time
from pathlib import PurePosixPath
from typing import Any, Literal

import msgspec

from oxios_hookspecs import new_id

from ..config import write_atomic
from ..kernel import NotFound

MIGRATIONS = [
    """
    CREATE TABLE seeds (
        id TEXT PRIMARY KEY,
        generation INTEGER NOT NULL,
        parent_id TEXT REFERENCES seeds(id),
        root_id TEXT NOT NULL,
        session_id TEXT,
        body TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX seeds_root ON seeds(root_id, generation);
    CREATE TABLE seed_evaluations (
        seed_id TEXT PRIMARY KEY REFERENCES seeds(id) ON DELETE CASCADE,
        agent_id TEXT,
        passed INTEGER NOT NULL,
        mechanical_pass INTEGER NOT NULL,
        score REAL NOT NULL,
        body TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
]


class Check(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A mechanical check: a command whose exit code decides, or a file expectation."""

    kind: Literal["command", "file"]
    argv: list[str] = []
    path: str = ""
    exists: bool = True
    contains: str | None = None
    equals: str | None = None
    timeout_secs: float = 60.0

    def problem(self) -> str | None:
        """Why this check cannot work as written, or None."""
        if self.kind == "command":
            if not self.argv or not all(isinstance(a, str) and a for a in self.argv):
                return "a command check needs argv: a non-empty list of non-empty strings"
        else:
            path = PurePosixPath(self.path)
            if not self.path.strip() or path.is_absolute() or ".." in path.parts:
                return f"a file check needs a path relative to the workspace, without '..' (got {self.path!r})"
        if not 0 < self.timeout_secs <= 3600:
            return "a check's timeout_secs must be between 0 and 3600"
        return None


class Criterion(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    description: str
    check: Check | None = None
    required: bool = False  # the caller's own (a cron job's): Oxios keeps it word for word in every generation


class Entity(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    description: str = ""


class Seed(msgspec.Struct, kw_only=True, frozen=True):
    id: str = msgspec.field(default_factory=new_id)
    generation: int = 0
    parent_id: str | None = None
    goal: str
    constraints: list[str] = []
    acceptance_criteria: list[Criterion] = []
    ontology: list[Entity] = []
    original_request: str = ""
    output_schema: dict[str, Any] | None = None
    created_at: float = msgspec.field(default_factory=time.time)
    session_id: str | None = None


class SeedDraft(msgspec.Struct, kw_only=True):
    """What the model writes for a seed; the protocol adds id, generation, lineage and the request."""

    goal: str
    constraints: list[str] = []
    acceptance_criteria: list[Criterion] = []
    ontology: list[Entity] = []
    output_schema: dict[str, Any] | None = None


def validate_draft(data: Any, *, needs_criteria: bool = True) -> SeedDraft:
    """A usable draft, or ValueError naming what is wrong (the model gets one corrective retry).

    ``needs_criteria=False`` when required criteria will be bound into it anyway.
    """
    draft = msgspec.convert(data, SeedDraft, strict=False)
    if not draft.goal.strip():
        raise ValueError("the seed needs a goal")
    if needs_criteria and not draft.acceptance_criteria:
        raise ValueError("the seed needs at least one acceptance criterion")
    ids = [c.id for c in draft.acceptance_criteria]
    if len(set(ids)) != len(ids):
        raise ValueError("acceptance criteria ids must be unique")
    for c in draft.acceptance_criteria:
        problem = c.check.problem() if c.check is not None else None
        if problem:
            raise ValueError(f"criterion {c.id}: {problem}")
    if draft.output_schema is not None:
        import jsonschema

        try:
            jsonschema.validators.validator_for(draft.output_schema).check_schema(draft.output_schema)
        except jsonschema.SchemaError as err:
            raise ValueError(f"output_schema is not a valid JSON schema: {err.message}") from None
    return draft


class Requirements(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Constraints and acceptance criteria a caller made binding (a cron job's), as plain text.

    :func:`bind` merges them into the seed writer's draft in code, and
    :func:`oxios.ouroboros.evolve.narrow` keeps them in every later generation,
    so no model reply can drop or reword them. Criteria carry no mechanical
    check (a job declares text only): the judge scores them.
    """

    constraints: list[str] = []
    acceptance_criteria: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.constraints or self.acceptance_criteria)

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> Requirements:
        """``metadata.constraints`` and ``metadata.acceptance_criteria``: lists of strings (blank ones skipped)."""
        lists: dict[str, list[str]] = {}
        for key in ("constraints", "acceptance_criteria"):
            value = metadata.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"metadata.{key} must be a list of strings, got {value!r:.120}")
            lists[key] = list(dict.fromkeys(v.strip() for v in value if v.strip()))
        return cls(**lists)

    def criteria(self) -> list[Criterion]:
        return [
            Criterion(id=f"required-{i}", description=text, required=True) for i, text in enumerate(self.acceptance_criteria, 1)
        ]


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _free_id(wanted: str, taken: set[str]) -> str:
    candidate, n = f"{wanted}-draft", 2
    while candidate in taken:
        candidate, n = f"{wanted}-draft{n}", n + 1
    return candidate


def bind(draft: SeedDraft, required: Requirements) -> tuple[SeedDraft, list[str]]:
    """The draft with every required constraint and criterion in it, word for word, first; and what was added.

    The draft's own criteria stay (unpinned: a model cannot mark its own criteria required),
    except a plain repeat of a required criterion (same text, no check); one that repeats it with
    a mechanical check stays as extra evidence. A draft id that collides with ``required-N`` is renamed.
    """
    added: list[str] = []
    missing = [c for c in required.constraints if c not in draft.constraints]
    if missing:
        added.append(f"added {len(missing)} required constraint(s) the draft left out")
    constraints = [*required.constraints, *(c for c in draft.constraints if c not in required.constraints)]
    pinned = required.criteria()
    taken = {c.id for c in pinned} | {c.id for c in draft.acceptance_criteria}
    own: list[Criterion] = []
    for criterion in draft.acceptance_criteria:
        criterion = msgspec.structs.replace(criterion, required=False)
        if criterion.check is None and any(_same_text(criterion.description, p.description) for p in pinned):
            continue
        if criterion.id in {p.id for p in pinned}:
            criterion = msgspec.structs.replace(criterion, id=_free_id(criterion.id, taken))
            taken.add(criterion.id)
        own.append(criterion)
    for p in pinned:
        if not any(_same_text(p.description, c.description) for c in draft.acceptance_criteria):
            added.append(f"added required criterion {p.id} the draft left out")
    bound = msgspec.structs.replace(draft, constraints=constraints, acceptance_criteria=[*pinned, *own])
    return bound, added


def render(seed: Seed) -> str:
    """The seed as the executing agent sees it in its system prompt."""
    lines = [f"You are executing seed {seed.id} (generation {seed.generation}).", f"Goal: {seed.goal}"]
    if seed.constraints:
        lines.append("Constraints:")
        lines += [f"- {c}" for c in seed.constraints]
    if seed.acceptance_criteria:
        lines.append("Acceptance criteria (your work is checked against each):")
        for c in seed.acceptance_criteria:
            lines.append(f"- [{c.id}] {c.description}" + (" (required by whoever set the task)" if c.required else ""))
    if seed.ontology:
        lines.append("Entities: " + "; ".join(f"{e.name}: {e.description}" if e.description else e.name for e in seed.ontology))
    if seed.output_schema:
        lines.append("Your final answer must be JSON matching this schema: " + json.dumps(seed.output_schema))
    lines.append("Do the work with your tools, then reply with what you did and the evidence that each criterion is met.")
    return "\n".join(lines)


class SeedStore:
    """Seeds and their evaluations in the state store, mirrored to workspace/seeds/<id>.json."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.state = kernel.state
        self.state.migrate("ouroboros", MIGRATIONS)
        self.folder = kernel.paths.workspace / "seeds"

    def save(self, seed: Seed) -> Seed:
        root = seed.id if seed.parent_id is None else self._row(seed.parent_id)["root_id"]
        body = msgspec.json.encode(seed).decode()
        self.state.execute(
            "INSERT INTO seeds(id, generation, parent_id, root_id, session_id, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seed.id, seed.generation, seed.parent_id, root, seed.session_id, body, seed.created_at),
        )
        write_atomic(self.folder / f"{seed.id}.json", json.dumps(json.loads(body), indent=2), mode=0o644)
        return seed

    def _row(self, seed_id: str) -> Any:
        row = self.state.one("SELECT * FROM seeds WHERE id = ?", (seed_id,))
        if row is None:
            raise NotFound(f"no seed {seed_id}")
        return row

    def get(self, seed_id: str) -> Seed:
        return msgspec.json.decode(self._row(seed_id)["body"], type=Seed)

    def record_evaluation(self, seed_id: str, agent_id: str | None, evaluation: dict[str, Any]) -> None:
        self.state.execute(
            "INSERT OR REPLACE INTO seed_evaluations(seed_id, agent_id, passed, mechanical_pass, score, body, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                seed_id,
                agent_id,
                int(evaluation["passed"]),
                int(evaluation["mechanical_pass"]),
                evaluation["score"],
                json.dumps(evaluation),
                time.time(),
            ),
        )

    def evaluation(self, seed_id: str) -> dict[str, Any] | None:
        row = self.state.one("SELECT body FROM seed_evaluations WHERE seed_id = ?", (seed_id,))
        return json.loads(row["body"]) if row else None

    def list(self, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        rows = self.state.all(
            "SELECT s.id, s.generation, s.parent_id, s.root_id, s.session_id, s.created_at, s.body,"
            " e.passed, e.score FROM seeds s LEFT JOIN seed_evaluations e ON e.seed_id = s.id"
            " ORDER BY s.created_at DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [self._summary(r) for r in rows]

    def count(self) -> int:
        return int(self.state.one("SELECT count(*) AS n FROM seeds")["n"])

    def evolution(self, seed_id: str) -> list[dict[str, Any]]:
        """Every generation of the lineage ``seed_id`` belongs to, oldest first, with evaluations."""
        root = self._row(seed_id)["root_id"]
        rows = self.state.all(
            "SELECT s.*, e.passed, e.score FROM seeds s LEFT JOIN seed_evaluations e ON e.seed_id = s.id"
            " WHERE s.root_id = ? ORDER BY s.generation, s.created_at",
            (root,),
        )
        return [{**self._summary(r), "seed": json.loads(r["body"]), "evaluation": self.evaluation(r["id"])} for r in rows]

    @staticmethod
    def _summary(row: Any) -> dict[str, Any]:
        body = json.loads(row["body"])
        return {
            "id": row["id"],
            "generation": row["generation"],
            "parent_id": row["parent_id"],
            "root_id": row["root_id"],
            "session_id": row["session_id"],
            "goal": body["goal"],
            "created_at": row["created_at"],
            "evaluation_passed": None if row["passed"] is None else bool(row["passed"]),
            "score": row["score"],
        }
